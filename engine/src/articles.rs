//! Knowledge-base articles ranked by outcome: Beta beliefs per (cause, article) scored as
//! `Σ_c P(c|e) · θ(c, article)`, Thompson sampling for exploration, cascade attribution of
//! outcomes, and the Wilson lower bound for the helpdesk's static view.

use crate::compiled::CompiledModel;
use crate::rng::Rng;

/// Causes less likely than this take their mean resolve rate instead of a draw: they cannot
/// move a score, and skipping them keeps a ranking to a few dozen Beta draws.
const SAMPLING_FLOOR: f64 = 1e-4;

/// Lower bound of the Wilson score interval for `successes` out of `trials` at the normal
/// quantile `z` (1.96 for 95%); 0 when there are no trials.
///
/// `(p̂ + z²/2n - z·√(p̂(1-p̂)/n + z²/4n²)) / (1 + z²/n)` with `p̂ = successes / n`.
pub fn wilson_lower_bound(successes: f64, trials: f64, z: f64) -> f64 {
    if trials <= 0.0 {
        return 0.0;
    }
    let p = successes / trials;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * trials);
    let margin = z * (p * (1.0 - p) / trials + z2 / (4.0 * trials * trials)).sqrt();
    ((centre - margin) / (1.0 + z2 / trials)).max(0.0)
}

/// Cascade attribution: the employee reads `shown` top-down and stops at the first article that
/// works. Articles above it were tried and failed, it resolved, those below learn nothing; when
/// none worked (`worked` is None or not shown) every article shown was tried and failed.
pub fn cascade_attribution<'a>(shown: &[&'a str], worked: Option<&str>) -> Vec<(&'a str, bool)> {
    match worked.and_then(|w| shown.iter().position(|s| *s == w)) {
        Some(position) => shown[..=position]
            .iter()
            .enumerate()
            .map(|(i, a)| (*a, i == position))
            .collect(),
        None => shown.iter().map(|a| (*a, false)).collect(),
    }
}

/// One article's place in a ranking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ArticleScore {
    pub(crate) article: usize,
    /// `Σ_c P(c|e) · E[θ(c, article)]`: the chance it resolves the case.
    pub(crate) expected: f64,
    /// The same sum over one Thompson draw of every θ: what the ranking sorts by.
    pub(crate) sampled: f64,
}

/// Articles not yet tried, best first by a Thompson draw from `rng`.
pub(crate) fn rank_articles(
    model: &CompiledModel,
    posterior: &[f64],
    tried: &[bool],
    rng: &mut Rng,
) -> Vec<ArticleScore> {
    let mut scores: Vec<ArticleScore> = model
        .articles
        .iter()
        .enumerate()
        .filter(|(article, _)| !tried[*article])
        .map(|(article, belief)| {
            let mut expected = 0.0;
            let mut sampled = 0.0;
            for (cause, p) in posterior.iter().enumerate() {
                let mean = belief.mean(cause);
                expected += p * mean;
                sampled += p * if *p >= SAMPLING_FLOOR {
                    rng.beta(belief.alpha[cause], belief.beta[cause])
                } else {
                    mean
                };
            }
            ArticleScore {
                article,
                expected,
                sampled,
            }
        })
        .collect();
    scores.sort_by(|a, b| b.sampled.total_cmp(&a.sampled));
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_lower_bound_matches_known_values_and_rewards_evidence() {
        // 8 of 10 at 95%: the textbook value is 0.4902.
        assert!((wilson_lower_bound(8.0, 10.0, 1.96) - 0.4902).abs() < 1e-4);
        assert_eq!(wilson_lower_bound(0.0, 0.0, 1.96), 0.0);
        // The same rate with more trials deserves more trust.
        assert!(wilson_lower_bound(80.0, 100.0, 1.96) > wilson_lower_bound(8.0, 10.0, 1.96));
    }

    #[test]
    fn cascade_marks_articles_above_the_one_that_worked_as_failed_and_ignores_those_below() {
        let shown = ["a", "b", "c", "d"];
        assert_eq!(
            cascade_attribution(&shown, Some("c")),
            vec![("a", false), ("b", false), ("c", true)]
        );
        assert_eq!(cascade_attribution(&shown, Some("a")), vec![("a", true)]);
        assert_eq!(
            cascade_attribution(&shown[..2], None),
            vec![("a", false), ("b", false)]
        );
    }
}
