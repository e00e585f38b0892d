//! Single fault plus leak, naive Bayes in log space: evidence in, posterior over causes out.

use crate::compiled::CompiledModel;

/// What one question or check yielded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// An evidence value (index into the observation's `value_ids`).
    Value(usize),
    /// An uninformative "I don't know", or a check that did not run: no evidence.
    NoResult,
}

/// Any fix may seem to work for a cause it does not address (a restart on the way, a transient
/// fault clearing), so a success never drives the other causes to zero.
const COINCIDENTAL_RESOLUTION: f64 = 0.01;

/// Log-weights more than this below the largest are held there: exp(-700) ≈ 1e-304 is still a
/// positive f64, so no cause ever reaches exactly 0.
const LOG_FLOOR: f64 = -700.0;

/// The evidence of one diagnosis, kept as summed log-likelihoods per cause.
#[derive(Debug, Clone)]
pub(crate) struct Belief {
    /// Log prior plus all evidence outside correlated groups.
    base: Vec<f64>,
    /// Per group: the summed log-likelihood of its answers, and how many there are.
    group_sums: Vec<Vec<f64>>,
    group_counts: Vec<usize>,
    /// Per observation: what it yielded, if it was asked.
    pub(crate) observed: Vec<Option<Reading>>,
    pub(crate) fix_tried: Vec<bool>,
}

impl Belief {
    /// The prior: no evidence yet.
    pub(crate) fn new(model: &CompiledModel) -> Belief {
        let causes = model.cause_count();
        Belief {
            base: model.log_prior.clone(),
            group_sums: vec![vec![0.0; causes]; model.group_temperatures.len()],
            group_counts: vec![0; model.group_temperatures.len()],
            observed: vec![None; model.observations.len()],
            fix_tried: vec![false; model.fix_count()],
        }
    }

    /// Adds what an observation yielded; each observation is recorded at most once.
    pub(crate) fn observe(&mut self, model: &CompiledModel, observation: usize, reading: Reading) {
        debug_assert!(
            self.observed[observation].is_none(),
            "observation recorded twice"
        );
        self.observed[observation] = Some(reading);
        let Reading::Value(value) = reading else {
            return;
        };
        let spec = &model.observations[observation];
        let target = match spec.group {
            Some(group) => {
                self.group_counts[group] += 1;
                &mut self.group_sums[group]
            }
            None => &mut self.base,
        };
        for (sum, log_likelihood) in target.iter_mut().zip(&spec.log_likelihood[value]) {
            *sum += log_likelihood;
        }
    }

    /// Adds the outcome of a fix: a failure is evidence P(fails | c) = 1 - P(resolves | c).
    pub(crate) fn record_fix(&mut self, model: &CompiledModel, fix: usize, resolved: bool) {
        self.fix_tried[fix] = true;
        let action = &model.repair_actions[fix];
        for (cause, log_weight) in self.base.iter_mut().enumerate() {
            let p = action.resolve_probability_for(cause);
            *log_weight += if resolved {
                p.max(COINCIDENTAL_RESOLUTION)
            } else {
                1.0 - p
            }
            .ln();
        }
    }

    /// Adds the outcome of an article, with its expected resolve rate per cause.
    pub(crate) fn record_article(&mut self, model: &CompiledModel, article: usize, resolved: bool) {
        let belief = &model.articles[article];
        for (cause, log_weight) in self.base.iter_mut().enumerate() {
            let p = belief.mean(cause);
            *log_weight += if resolved { p } else { 1.0 - p }.ln();
        }
    }

    /// Unnormalised log posterior, correlated groups tempered.
    pub(crate) fn log_posterior(&self, model: &CompiledModel) -> Vec<f64> {
        let mut log_weights = self.base.clone();
        for (group, sums) in self.group_sums.iter().enumerate() {
            let weight = group_weight(model.group_temperatures[group], self.group_counts[group]);
            if weight > 0.0 {
                for (log_weight, sum) in log_weights.iter_mut().zip(sums) {
                    *log_weight += weight * sum;
                }
            }
        }
        log_weights
    }

    /// The posterior over causes.
    pub(crate) fn posterior(&self, model: &CompiledModel) -> Vec<f64> {
        let mut posterior = Vec::new();
        normalize(&self.log_posterior(model), &mut posterior);
        posterior
    }

    /// The unnormalised log posterior had `observation` yielded `value`, given the current one.
    pub(crate) fn log_posterior_after(
        &self,
        model: &CompiledModel,
        current: &[f64],
        observation: usize,
        value: usize,
        out: &mut Vec<f64>,
    ) {
        let spec = &model.observations[observation];
        let log_likelihood = &spec.log_likelihood[value];
        out.clear();
        match spec.group {
            None => out.extend(current.iter().zip(log_likelihood).map(|(l, ll)| l + ll)),
            Some(group) => {
                let temperature = model.group_temperatures[group];
                let count = self.group_counts[group];
                let (old, new) = (
                    group_weight(temperature, count),
                    group_weight(temperature, count + 1),
                );
                let sums = &self.group_sums[group];
                out.extend(
                    current
                        .iter()
                        .zip(sums)
                        .zip(log_likelihood)
                        .map(|((l, sum), ll)| l + (new - old) * sum + new * ll),
                );
            }
        }
    }
}

/// Applies the slip rate ε: with probability ε the employee gives one of the other K-1 answers
/// at random, so P(k|c) = (1-ε)·s_k + ε·(1-s_k)/(K-1); for K = 2 that is (1-ε)·s + ε·(1-s).
pub(crate) fn with_slip(distribution: &[f64], slip: f64) -> Vec<f64> {
    let others = (distribution.len() - 1) as f64;
    distribution
        .iter()
        .map(|s| (1.0 - slip) * s + slip * (1.0 - s) / others)
        .collect()
}

/// The inverse of [`with_slip`]: s_k = (P(k) - ε/(K-1)) / (1 - ε - ε/(K-1)).
pub(crate) fn without_slip(distribution: &[f64], slip: f64) -> Vec<f64> {
    let others = (distribution.len() - 1) as f64;
    let floor = slip / others;
    distribution
        .iter()
        .map(|p| (p - floor) / (1.0 - slip - floor))
        .collect()
}

/// How much each of `count` answers in a correlated group counts: together they weigh as
/// 1 + τ·(count - 1) independent answers.
fn group_weight(temperature: f64, count: usize) -> f64 {
    if count == 0 {
        0.0
    } else {
        (1.0 + temperature * (count - 1) as f64) / count as f64
    }
}

/// Exponentiates and normalises log-weights into `out`, never producing an exact zero.
pub(crate) fn normalize(log_weights: &[f64], out: &mut Vec<f64>) {
    let max = log_weights
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    out.clear();
    out.extend(log_weights.iter().map(|l| (l - max).max(LOG_FLOOR).exp()));
    let total: f64 = out.iter().sum();
    out.iter_mut().for_each(|p| *p /= total);
}

/// Shannon entropy in bits.
pub(crate) fn entropy_bits(distribution: &[f64]) -> f64 {
    -distribution
        .iter()
        .filter(|p| **p > 0.0)
        .map(|p| p * p.log2())
        .sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_log_weights_keep_every_cause_above_zero() {
        let mut posterior = Vec::new();
        normalize(&[0.0, -5000.0, f64::NEG_INFINITY], &mut posterior);
        assert!(posterior.iter().all(|p| *p > 0.0), "{posterior:?}");
        assert!((posterior.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_group_of_answers_weighs_as_one_plus_temperature_times_the_rest() {
        assert_eq!(group_weight(0.5, 0), 0.0);
        assert_eq!(group_weight(0.5, 1), 1.0);
        assert!((2.0 * group_weight(0.5, 2) - 1.5).abs() < 1e-12);
        assert!((3.0 * group_weight(1.0, 3) - 3.0).abs() < 1e-12);
    }

    #[test]
    fn removing_the_slip_undoes_applying_it() {
        let s = [0.7, 0.2, 0.1];
        let slipped = with_slip(&s, 0.1);
        assert!((slipped[0] - (0.9 * 0.7 + 0.1 * 0.3 / 2.0)).abs() < 1e-12);
        assert!((slipped.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        for (a, b) in s.iter().zip(without_slip(&slipped, 0.1)) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn entropy_of_a_fair_coin_is_one_bit() {
        assert!((entropy_bits(&[0.5, 0.5]) - 1.0).abs() < 1e-12);
        assert_eq!(entropy_bits(&[1.0, 0.0]), 0.0);
    }
}
