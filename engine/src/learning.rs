//! Learning from resolved cases: every probability is the model's prior pseudo-counts plus the
//! (weighted) counts of closed sessions, with optional forgetting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::compiled::CompiledModel;
use crate::inference::{with_slip, without_slip};
use crate::model::{
    row_for, spread_row, Check, Model, OutcomeCounts, Question, Settings, DONT_KNOW,
};
use crate::session::{CheckResult, Session, SessionError};

/// Posterior weights below this are not stored: they cannot move any estimate, and leaving
/// them out keeps the stored counts small.
const WEIGHT_FLOOR: f64 = 1e-6;

/// Bounds of a learned probability, so that a learned row stays inside (0, 1) and no answer
/// can ever rule a cause out.
const LEARNED_BOUNDS: (f64, f64) = (1e-3, 1.0 - 1e-3);

/// Counts from resolved cases, kept apart from the model so that the server can store them
/// (as JSON) and combine them with whatever model it runs: see [`Model::with_learned`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LearnedCounts {
    /// Cause id → weight of cases.
    #[serde(default)]
    pub causes: BTreeMap<String, f64>,
    /// Question id → cause id → answer id → weight.
    #[serde(default)]
    pub answers: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>,
    /// Check id → cause id → outcome id → weight.
    #[serde(default)]
    pub checks: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>,
    /// Check id → how often it ran and did not.
    #[serde(default)]
    pub check_runs: BTreeMap<String, RunCounts>,
    /// Fix id → cause id → outcomes.
    #[serde(default)]
    pub fixes: BTreeMap<String, BTreeMap<String, OutcomeCounts>>,
    /// Article id → cause id → outcomes.
    #[serde(default)]
    pub articles: BTreeMap<String, BTreeMap<String, OutcomeCounts>>,
}

/// How often a check ran and how often it could not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RunCounts {
    /// Times it ran.
    pub ran: f64,
    /// Times it could not run.
    pub not_run: f64,
}

impl LearnedCounts {
    /// Adds a closed session: a confirmed cause counts 1 for that cause, an unconfirmed close
    /// spreads 1 over the causes by the session's posterior.
    pub fn add_case(
        &mut self,
        model: &CompiledModel,
        session: &Session,
    ) -> Result<(), SessionError> {
        let closure = session.closure().ok_or(SessionError::NotClosed)?;
        let weights: Vec<(String, f64)> = match &closure.confirmed_cause {
            Some(cause) => vec![(cause.clone(), 1.0)],
            None => {
                let posterior = session.belief(model)?.posterior(model);
                posterior
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| **w >= WEIGHT_FLOOR)
                    .map(|(c, w)| (model.cause_id(c).to_owned(), *w))
                    .collect()
            }
        };
        for (cause, weight) in &weights {
            *self.causes.entry(cause.clone()).or_default() += weight;
            for (question, answer) in session.answers() {
                let by_answer = self
                    .answers
                    .entry(question.clone())
                    .or_default()
                    .entry(cause.clone())
                    .or_default();
                *by_answer.entry(answer.clone()).or_default() += weight;
            }
            for (check, result) in session.check_results() {
                if let CheckResult::Outcome(outcome) = result {
                    let by_outcome = self
                        .checks
                        .entry(check.clone())
                        .or_default()
                        .entry(cause.clone())
                        .or_default();
                    *by_outcome.entry(outcome.clone()).or_default() += weight;
                }
            }
            for attempt in session.fix_attempts() {
                let counts = self
                    .fixes
                    .entry(attempt.id.clone())
                    .or_default()
                    .entry(cause.clone())
                    .or_default();
                add_outcome(counts, attempt.resolved, *weight);
            }
            for attempt in session.article_attempts() {
                let counts = self
                    .articles
                    .entry(attempt.id.clone())
                    .or_default()
                    .entry(cause.clone())
                    .or_default();
                add_outcome(counts, attempt.resolved, *weight);
            }
        }
        for (check, result) in session.check_results() {
            let runs = self.check_runs.entry(check.clone()).or_default();
            match result {
                CheckResult::Outcome(_) => runs.ran += 1.0,
                CheckResult::NotRun => runs.not_run += 1.0,
            }
        }
        Ok(())
    }

    /// Forgetting: multiplies every count by `factor` (0.98-0.995 per period follows drift such
    /// as a patch wave).
    pub fn decay(&mut self, factor: f64) {
        let scale =
            |counts: &mut BTreeMap<String, f64>| counts.values_mut().for_each(|w| *w *= factor);
        scale(&mut self.causes);
        for by_cause in self.answers.values_mut().chain(self.checks.values_mut()) {
            by_cause.values_mut().for_each(scale);
        }
        for runs in self.check_runs.values_mut() {
            runs.ran *= factor;
            runs.not_run *= factor;
        }
        for by_cause in self.fixes.values_mut().chain(self.articles.values_mut()) {
            for counts in by_cause.values_mut() {
                counts.resolved *= factor;
                counts.failed *= factor;
            }
        }
    }
}

fn add_outcome(counts: &mut OutcomeCounts, resolved: bool, weight: f64) {
    if resolved {
        counts.resolved += weight;
    } else {
        counts.failed += weight;
    }
}

impl Model {
    /// This model with `counts` added to its prior pseudo-counts. Each likelihood row and fix
    /// probability weighs as `settings.likelihood_strength` cases; cause priors are already
    /// pseudo-counts. Answers are counted as given, so the slip rate is taken out again before
    /// a row is stored. Counts for ids this model does not have are ignored. Apply it to the
    /// expert model with all counts so far, not to an already learned model.
    pub fn with_learned(&self, counts: &LearnedCounts) -> Model {
        self.learned(counts, RowBlend::Fixed(self.settings.likelihood_strength))
    }

    /// Like [`Model::with_learned`], but every question and check row is learned under `prior`
    /// (usually [`LearnedCounts::fit_row_prior`]): the posterior mean of a two-part Dirichlet
    /// prior, so that a row whose counts agree with the model keeps close to it and a row whose
    /// counts disagree follows the counts. Fix probabilities, `fails_to_run`, cause priors and
    /// articles learn exactly as in `with_learned`.
    pub fn with_learned_rows(&self, counts: &LearnedCounts, prior: &RowPrior) -> Model {
        self.learned(counts, RowBlend::Mixture(*prior))
    }

    fn learned(&self, counts: &LearnedCounts, rows: RowBlend) -> Model {
        let mut model = self.clone();
        let strength = model.settings.likelihood_strength;
        let slip = model.settings.slip;
        for cause in &mut model.causes {
            cause.prior += counts.causes.get(&cause.id).copied().unwrap_or(0.0);
        }
        let known_cause = |id: &str| self.causes.iter().any(|c| c.id == id);
        for question in &mut model.questions {
            let Some(by_cause) = counts.answers.get(&question.id) else {
                continue;
            };
            let values: Vec<String> = question
                .informative_answers()
                .map(|a| a.id.clone())
                .collect();
            let value_refs: Vec<&str> = values.iter().map(String::as_str).collect();
            let informative_dont_know = question.dont_know_is_informative();
            let base_dont_know = question.base_dont_know_rate(&model.settings);
            for (cause, answer_counts) in by_cause.iter().filter(|(c, _)| known_cause(c)) {
                let Some((prior, observed)) =
                    answer_row(question, cause, &value_refs, answer_counts, &self.settings)
                else {
                    continue;
                };
                let Some(mut learned) = rows.blend(&prior, &observed) else {
                    continue;
                };
                let mut new_row: BTreeMap<String, f64> = BTreeMap::new();
                if informative_dont_know {
                    let dont_know = learned.pop().unwrap_or(base_dont_know);
                    learned.iter_mut().for_each(|p| *p /= 1.0 - dont_know);
                    new_row.insert(DONT_KNOW.to_owned(), clamp_learned(dont_know));
                }
                let answered = bounded_distribution(&without_slip(&learned, slip));
                new_row.extend(values.iter().cloned().zip(answered));
                question.likelihood.insert(cause.clone(), new_row);
            }
        }
        for check in &mut model.checks {
            if let Some(runs) = counts.check_runs.get(&check.id) {
                let total = runs.ran + runs.not_run;
                check.fails_to_run = ((strength * check.fails_to_run + runs.not_run)
                    / (strength + total))
                    .min(LEARNED_BOUNDS.1);
            }
            let Some(by_cause) = counts.checks.get(&check.id) else {
                continue;
            };
            let values: Vec<String> = check.outcomes.iter().map(|o| o.id.clone()).collect();
            let value_refs: Vec<&str> = values.iter().map(String::as_str).collect();
            for (cause, outcome_counts) in by_cause.iter().filter(|(c, _)| known_cause(c)) {
                let Some((prior, observed)) =
                    outcome_row(check, cause, &value_refs, outcome_counts)
                else {
                    continue;
                };
                if let Some(learned) = rows.blend(&prior, &observed) {
                    let new_row = values
                        .iter()
                        .cloned()
                        .zip(bounded_distribution(&learned))
                        .collect();
                    check.likelihood.insert(cause.clone(), new_row);
                }
            }
        }
        for fix in &mut model.fixes {
            let Some(by_cause) = counts.fixes.get(&fix.id) else {
                continue;
            };
            for (cause, outcome) in by_cause.iter().filter(|(c, _)| known_cause(c)) {
                let prior = fix.resolves.get(cause).copied().unwrap_or(0.0);
                let attempts = outcome.resolved + outcome.failed;
                let learned = (strength * prior + outcome.resolved) / (strength + attempts);
                // A fix the expert never linked to a cause stays unlinked until it resolves one.
                if learned > 0.0 {
                    fix.resolves.insert(
                        cause.clone(),
                        learned.clamp(LEARNED_BOUNDS.0, LEARNED_BOUNDS.1),
                    );
                }
            }
        }
        for article in &mut model.articles {
            let Some(by_cause) = counts.articles.get(&article.id) else {
                continue;
            };
            for (cause, outcome) in by_cause.iter().filter(|(c, _)| known_cause(c)) {
                let counts = article.outcomes.entry(cause.clone()).or_default();
                counts.resolved += outcome.resolved;
                counts.failed += outcome.failed;
            }
        }
        model
    }
}

/// How learning weighs a likelihood row of the model against counts from resolved cases.
#[derive(Debug, Clone, Copy)]
enum RowBlend {
    /// The row weighs as this many cases (`settings.likelihood_strength`).
    Fixed(f64),
    /// A fitted two-part prior: see [`RowPrior`].
    Mixture(RowPrior),
}

impl RowBlend {
    fn blend(&self, prior: &[f64], counts: &[f64]) -> Option<Vec<f64>> {
        match self {
            RowBlend::Fixed(strength) => blend(prior, counts, *strength),
            RowBlend::Mixture(row_prior) => row_prior.posterior_mean(prior, counts),
        }
    }
}

/// A prior for the likelihood rows of a model, fitted to counts from resolved cases by
/// empirical Bayes ([`LearnedCounts::fit_row_prior`]).
///
/// Each row (one question or check, one cause) is a priori one of two kinds: with probability
/// `near_share` it is Dirichlet around the model's row with `near` pseudo-counts (the model is
/// about right for this cause), otherwise Dirichlet around it with `far` pseudo-counts (the
/// model knows little about this cause here). A single strength for every row must either
/// trust rows the data contradict or let sampling noise into rows the model had right: with a
/// flat start most rows are the pooled answer frequencies and stay there, while a few rows are
/// what tells a cause apart. Learning takes each row's posterior mean under this mixture, which
/// for one new case is the exact Bayesian predictive probability of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RowPrior {
    /// Pseudo-counts of a row that agrees with the model.
    pub near: f64,
    /// Pseudo-counts of a row that differs from the model.
    pub far: f64,
    /// Prior probability that a row agrees with the model.
    pub near_share: f64,
}

impl RowPrior {
    /// The posterior mean of a row given its counts; None when there are no counts.
    fn posterior_mean(&self, prior: &[f64], counts: &[f64]) -> Option<Vec<f64>> {
        let near = blend(prior, counts, self.near)?;
        let far = blend(prior, counts, self.far)?;
        let (log_near, log_far) = self.component_log_evidence(prior, counts);
        let share_near = 1.0 / (1.0 + (log_far - log_near).exp());
        Some(
            near.iter()
                .zip(&far)
                .map(|(n, f)| share_near * n + (1.0 - share_near) * f)
                .collect(),
        )
    }

    /// ln(share · P(counts | near)) and ln((1 - share) · P(counts | far)).
    fn component_log_evidence(&self, prior: &[f64], counts: &[f64]) -> (f64, f64) {
        (
            self.near_share.ln() + dirichlet_multinomial_log_evidence(prior, counts, self.near),
            (1.0 - self.near_share).ln()
                + dirichlet_multinomial_log_evidence(prior, counts, self.far),
        )
    }

    /// ln P(counts) under the mixture.
    fn log_evidence(&self, prior: &[f64], counts: &[f64]) -> f64 {
        let (a, b) = self.component_log_evidence(prior, counts);
        let top = a.max(b);
        top + ((a - top).exp() + (b - top).exp()).ln()
    }
}

/// Rows need at least this many cases each to say anything about a strength: with one count
/// the marginal likelihood of a row does not depend on it.
const FIT_MIN_ROW_CASES: f64 = 2.0;
/// Fewer informative rows than this and [`LearnedCounts::fit_row_prior`] declines.
const FIT_MIN_ROWS: usize = 20;
/// Search ranges of the fit (pseudo-counts, and the share of rows near the model).
const NEAR_RANGE: (f64, f64) = (1.0, 10_000.0);
const FAR_RANGE: (f64, f64) = (0.05, 100.0);
const SHARE_RANGE: (f64, f64) = (0.01, 0.99);

impl LearnedCounts {
    /// Fits a [`RowPrior`] for `model`'s likelihood rows to these counts by empirical Bayes:
    /// the (near, far, near share) that maximise the marginal likelihood of every row's counts
    /// (Dirichlet-multinomial, mixed over the two kinds), by coordinate ascent with golden-
    /// section searches. Deterministic. None when fewer than 20 rows hold at least 2 cases,
    /// where [`Model::with_learned`] and its fixed strength are the better choice.
    pub fn fit_row_prior(&self, model: &Model) -> Option<RowPrior> {
        let rows: Vec<(Vec<f64>, Vec<f64>)> = learnable_rows(model, self)
            .into_iter()
            .filter(|(_, counts)| counts.iter().sum::<f64>() >= FIT_MIN_ROW_CASES)
            .collect();
        if rows.len() < FIT_MIN_ROWS {
            return None;
        }
        let evidence = |candidate: &RowPrior| -> f64 {
            rows.iter()
                .map(|(prior, counts)| candidate.log_evidence(prior, counts))
                .sum()
        };
        let mut fitted = RowPrior {
            near: 100.0,
            far: 2.0,
            near_share: 0.5,
        };
        for _ in 0..6 {
            fitted.near = golden_section_max(
                |x| {
                    evidence(&RowPrior {
                        near: x.exp(),
                        ..fitted
                    })
                },
                NEAR_RANGE.0.ln(),
                NEAR_RANGE.1.ln(),
            )
            .exp();
            fitted.far = golden_section_max(
                |x| {
                    evidence(&RowPrior {
                        far: x.exp(),
                        ..fitted
                    })
                },
                FAR_RANGE.0.ln(),
                FAR_RANGE.1.ln(),
            )
            .exp();
            fitted.near_share = golden_section_max(
                |x| {
                    evidence(&RowPrior {
                        near_share: x,
                        ..fitted
                    })
                },
                SHARE_RANGE.0,
                SHARE_RANGE.1,
            );
        }
        if fitted.far > fitted.near {
            // The names follow the strengths: "near" is always the stronger pull to the model.
            fitted = RowPrior {
                near: fitted.far,
                far: fitted.near,
                near_share: 1.0 - fitted.near_share,
            };
        }
        Some(fitted)
    }
}

/// The maximum of a unimodal `f` on [low, high], to well within a thousandth of the range.
fn golden_section_max(f: impl Fn(f64) -> f64, mut low: f64, mut high: f64) -> f64 {
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let mut left = high - ratio * (high - low);
    let mut right = low + ratio * (high - low);
    let (mut f_left, mut f_right) = (f(left), f(right));
    for _ in 0..32 {
        if f_left < f_right {
            low = left;
            left = right;
            f_left = f_right;
            right = low + ratio * (high - low);
            f_right = f(right);
        } else {
            high = right;
            right = left;
            f_right = f_left;
            left = high - ratio * (high - low);
            f_left = f(left);
        }
    }
    (low + high) / 2.0
}

/// ln P(counts | Dirichlet(strength · prior)) for a multinomial row, up to the multinomial
/// coefficient (which does not depend on the prior):
/// `lnΓ(a) − lnΓ(a + N) + Σ_k [lnΓ(a·p_k + n_k) − lnΓ(a·p_k)]`.
fn dirichlet_multinomial_log_evidence(prior: &[f64], counts: &[f64], strength: f64) -> f64 {
    let total: f64 = counts.iter().sum();
    ln_gamma(strength) - ln_gamma(strength + total)
        + prior
            .iter()
            .zip(counts)
            .filter(|(_, n)| **n > 0.0)
            .map(|(p, n)| ln_gamma(strength * p + n) - ln_gamma(strength * p))
            .sum::<f64>()
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine terms; relative error below 1e-13).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1 − x) = π / sin(πx).
        std::f64::consts::PI.ln() - (std::f64::consts::PI * x).sin().ln() - ln_gamma(1.0 - x)
    } else {
        let x = x - 1.0;
        let t = x + G + 0.5;
        let series = COEFFICIENTS[1..]
            .iter()
            .enumerate()
            .fold(COEFFICIENTS[0], |sum, (i, c)| {
                sum + c / (x + i as f64 + 1.0)
            });
        0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
    }
}

/// A question row in the space of answers as given, as learning sees it: the model's row for
/// `cause` with the slip applied (and "I don't know" as a value where the model makes it
/// evidence), and the counts of the same values. None when the model has no usable row.
fn answer_row(
    question: &Question,
    cause: &str,
    values: &[&str],
    answer_counts: &BTreeMap<String, f64>,
    settings: &Settings,
) -> Option<(Vec<f64>, Vec<f64>)> {
    let row = row_for(&question.likelihood, cause)?;
    let stated = spread_row(row, values).ok()?;
    let mut prior = with_slip(&stated, settings.slip);
    let mut observed: Vec<f64> = values
        .iter()
        .map(|v| answer_counts.get(*v).copied().unwrap_or(0.0))
        .collect();
    if question.dont_know_is_informative() {
        let dont_know = row
            .get(DONT_KNOW)
            .copied()
            .unwrap_or(question.base_dont_know_rate(settings));
        prior.iter_mut().for_each(|p| *p *= 1.0 - dont_know);
        prior.push(dont_know);
        observed.push(answer_counts.get(DONT_KNOW).copied().unwrap_or(0.0));
    }
    Some((prior, observed))
}

/// A check row as learning sees it: the model's outcome probabilities for `cause` (checks have
/// no slip) and the counts of the same outcomes.
fn outcome_row(
    check: &Check,
    cause: &str,
    values: &[&str],
    outcome_counts: &BTreeMap<String, f64>,
) -> Option<(Vec<f64>, Vec<f64>)> {
    let prior = spread_row(row_for(&check.likelihood, cause)?, values).ok()?;
    let observed = values
        .iter()
        .map(|v| outcome_counts.get(*v).copied().unwrap_or(0.0))
        .collect();
    Some((prior, observed))
}

/// Every question and check row of `model` that `counts` has data for, as (prior, counts).
fn learnable_rows(model: &Model, counts: &LearnedCounts) -> Vec<(Vec<f64>, Vec<f64>)> {
    let known_cause = |id: &str| model.causes.iter().any(|c| c.id == id);
    let mut rows = Vec::new();
    for question in &model.questions {
        let Some(by_cause) = counts.answers.get(&question.id) else {
            continue;
        };
        let values: Vec<&str> = question
            .informative_answers()
            .map(|a| a.id.as_str())
            .collect();
        rows.extend(
            by_cause
                .iter()
                .filter(|(c, _)| known_cause(c))
                .filter_map(|(cause, n)| answer_row(question, cause, &values, n, &model.settings)),
        );
    }
    for check in &model.checks {
        let Some(by_cause) = counts.checks.get(&check.id) else {
            continue;
        };
        let values: Vec<&str> = check.outcomes.iter().map(|o| o.id.as_str()).collect();
        rows.extend(
            by_cause
                .iter()
                .filter(|(c, _)| known_cause(c))
                .filter_map(|(cause, n)| outcome_row(check, cause, &values, n)),
        );
    }
    rows
}

/// Dirichlet posterior mean: `(strength · prior + counts) / (strength + Σ counts)`; None when
/// there are no counts.
fn blend(prior: &[f64], counts: &[f64], strength: f64) -> Option<Vec<f64>> {
    let total: f64 = counts.iter().sum();
    (total > 0.0).then(|| {
        prior
            .iter()
            .zip(counts)
            .map(|(p, n)| (strength * p + n) / (strength + total))
            .collect()
    })
}

fn clamp_learned(p: f64) -> f64 {
    p.clamp(LEARNED_BOUNDS.0, LEARNED_BOUNDS.1)
}

/// Clamps into the learned bounds and renormalises, so the row is a distribution inside (0, 1).
fn bounded_distribution(distribution: &[f64]) -> Vec<f64> {
    let clamped: Vec<f64> = distribution.iter().map(|p| clamp_learned(*p)).collect();
    let total: f64 = clamped.iter().sum();
    clamped.iter().map(|p| p / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blending_weighs_the_prior_as_strength_cases() {
        let learned = blend(&[0.5, 0.5], &[10.0, 0.0], 10.0).unwrap();
        assert_eq!(learned, vec![0.75, 0.25]);
        assert_eq!(blend(&[0.5, 0.5], &[0.0, 0.0], 10.0), None);
    }

    #[test]
    fn log_gamma_matches_factorials_and_half_integers() {
        for (n, factorial) in [(1.0, 1.0), (2.0, 1.0), (5.0, 24.0), (11.0, 3_628_800.0)] {
            assert!((ln_gamma(n) - f64::ln(factorial)).abs() < 1e-10, "{n}");
        }
        // Γ(1/2) = √π, Γ(0.1) ≈ 9.513507698668732.
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-10);
        assert!((ln_gamma(0.1) - 9.513_507_698_668_732_f64.ln()).abs() < 1e-10);
    }

    #[test]
    fn the_evidence_of_a_row_is_the_chance_of_its_counts_in_order() {
        // Beta(1, 1) with one success then one failure: 1/2 · 1/3.
        let evidence = dirichlet_multinomial_log_evidence(&[0.5, 0.5], &[1.0, 1.0], 2.0);
        assert!((evidence - (1.0f64 / 6.0).ln()).abs() < 1e-12);
    }

    #[test]
    fn the_mixture_mean_follows_the_part_the_counts_support() {
        let prior = RowPrior {
            near: 200.0,
            far: 1.0,
            near_share: 0.5,
        };
        // Counts that agree with the model's row stay with it.
        let agreeing = prior.posterior_mean(&[0.5, 0.5], &[7.0, 6.0]).unwrap();
        assert!((agreeing[0] - 0.5).abs() < 0.02, "{agreeing:?}");
        // Counts far from it are followed almost as they are.
        let disagreeing = prior.posterior_mean(&[0.5, 0.5], &[19.0, 1.0]).unwrap();
        assert!(disagreeing[0] > 0.85, "{disagreeing:?}");
        assert_eq!(prior.posterior_mean(&[0.5, 0.5], &[0.0, 0.0]), None);
    }

    #[test]
    fn golden_section_finds_the_top_of_a_parabola() {
        let top = golden_section_max(|x| -(x - 1.3) * (x - 1.3), -4.0, 9.0);
        assert!((top - 1.3).abs() < 1e-3, "{top}");
    }
}
