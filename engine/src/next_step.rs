//! What to do next: the next question or check by expected cost after observation, information
//! gain to break ties and to tell when asking is over, and the fix order by updating P-over-C.

use crate::compiled::CompiledModel;
use crate::inference::{entropy_bits, normalize, Belief};
use crate::repair::p_over_c_among;

/// One step of advice for a diagnosis.
#[derive(Debug, Clone)]
pub(crate) struct Advice {
    pub(crate) posterior: Vec<f64>,
    /// The question or check to ask next; None once asking is over.
    pub(crate) next: Option<Candidate>,
    /// Fix indices in the order to try them, up to the point where escalating is better.
    pub(crate) fix_order: Vec<usize>,
    /// ECR of that order followed by escalation.
    pub(crate) expected_cost_of_repair: f64,
}

/// A question or check worth asking, and why.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub(crate) observation: usize,
    /// `IG(o) = H(C|e) - Σ_k P(o=k|e) · H(C|e, o=k)`, in bits, no-result chance included.
    pub(crate) information_gain: f64,
    /// `ECO(o) = C_o + Σ_k P(o=k|e) · ECR(e ∪ {o=k})`.
    pub(crate) expected_cost_after: f64,
}

/// The posterior, the next step and the fix order for `belief`.
pub(crate) fn advise(model: &CompiledModel, belief: &Belief) -> Advice {
    let log_posterior = belief.log_posterior(model);
    let mut posterior = Vec::with_capacity(log_posterior.len());
    normalize(&log_posterior, &mut posterior);
    let escalation = model.fix_count();
    let repairs: Vec<usize> = (0..=escalation)
        .filter(|&a| a == escalation || !belief.fix_tried[a])
        .collect();
    let mut order = Vec::new();
    let expected_cost_of_repair = p_over_c_among(
        &model.repair_actions,
        &repairs,
        &posterior,
        Some(&mut order),
    );
    let fix_order = order.into_iter().take_while(|&a| a != escalation).collect();
    let evaluator = Evaluator {
        model,
        belief,
        log_posterior: &log_posterior,
        posterior: &posterior,
        repairs: &repairs,
        entropy: entropy_bits(&posterior),
        expected_cost_of_repair,
    };
    let next = evaluator.choose();
    Advice {
        posterior,
        next,
        fix_order,
        expected_cost_of_repair,
    }
}

/// Expected information gain of every question and check given `belief`, asked or not: what a
/// fixed checklist ordered by information gain sorts by.
pub(crate) fn information_gains(model: &CompiledModel, belief: &Belief) -> Vec<f64> {
    let log_posterior = belief.log_posterior(model);
    let mut posterior = Vec::new();
    normalize(&log_posterior, &mut posterior);
    let repairs: Vec<usize> = (0..=model.fix_count()).collect();
    let evaluator = Evaluator {
        model,
        belief,
        log_posterior: &log_posterior,
        posterior: &posterior,
        repairs: &repairs,
        entropy: entropy_bits(&posterior),
        expected_cost_of_repair: p_over_c_among(&model.repair_actions, &repairs, &posterior, None),
    };
    (0..model.observations.len())
        .map(|o| evaluator.evaluate(o).information_gain)
        .collect()
}

struct Evaluator<'a> {
    model: &'a CompiledModel,
    belief: &'a Belief,
    log_posterior: &'a [f64],
    posterior: &'a [f64],
    repairs: &'a [usize],
    entropy: f64,
    expected_cost_of_repair: f64,
}

impl Evaluator<'_> {
    fn choose(&self) -> Option<Candidate> {
        let unasked = |o: &usize| self.belief.observed[*o].is_none();
        let observations = 0..self.model.observations.len();
        // The dialog's codes come first whatever the posterior: they shape every later step.
        if let Some(intake) = observations
            .clone()
            .filter(unasked)
            .find(|&o| self.model.observations[o].intake)
        {
            return Some(self.evaluate(intake));
        }
        let settings = &self.model.model().settings;
        let top = self.posterior.iter().copied().fold(0.0, f64::max);
        if top >= settings.stop_threshold {
            return None;
        }
        let candidates: Vec<Candidate> = observations
            .filter(unasked)
            .map(|o| self.evaluate(o))
            .filter(|c| c.information_gain >= settings.min_information_gain)
            .collect();
        let cheapest = candidates
            .iter()
            .map(|c| c.expected_cost_after)
            .fold(f64::INFINITY, f64::min);
        let tied = cheapest * (1.0 + settings.tie_tolerance);
        candidates
            .into_iter()
            .filter(|c| c.expected_cost_after <= tied)
            .fold(None, |best: Option<Candidate>, c| match best {
                Some(b) if b.information_gain >= c.information_gain => Some(b),
                _ => Some(c),
            })
    }

    fn evaluate(&self, observation: usize) -> Candidate {
        let spec = &self.model.observations[observation];
        let mut log_after = Vec::with_capacity(self.posterior.len());
        let mut after = Vec::with_capacity(self.posterior.len());
        let mut expected_entropy = 0.0;
        let mut expected_cost = 0.0;
        for (value, likelihood) in spec.likelihood.iter().enumerate() {
            let p_value: f64 = self
                .posterior
                .iter()
                .zip(likelihood)
                .map(|(p, l)| p * l)
                .sum();
            if p_value <= 0.0 {
                continue;
            }
            self.belief.log_posterior_after(
                self.model,
                self.log_posterior,
                observation,
                value,
                &mut log_after,
            );
            normalize(&log_after, &mut after);
            expected_entropy += p_value * entropy_bits(&after);
            expected_cost +=
                p_value * p_over_c_among(&self.model.repair_actions, self.repairs, &after, None);
        }
        let answered = 1.0 - spec.no_result;
        Candidate {
            observation,
            information_gain: answered * (self.entropy - expected_entropy),
            expected_cost_after: spec.cost
                + spec.no_result * self.expected_cost_of_repair
                + answered * expected_cost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;

    const MODEL: &str = r#"
format_version = 1
model_version = "ig-test"
title = "Information gain"

[[causes]]
id = "dns-stale"
name = "A"
prior = 5.0

[[causes]]
id = "host-offline"
name = "B"
prior = 3.0

[[causes]]
id = "other"
name = "Leak"
prior = 2.0

[[questions]]
id = "q"
text = "Filler"
answers = [{ id = "yes", label = "Yes" }, { id = "no", label = "No" }, { id = "dont_know", label = "?" }]
[questions.likelihood]
default = { yes = 0.5 }
dns-stale = { yes = 0.6 }

[[checks]]
id = "c"
name = "A check with a rare, telling outcome"
runs_on = "client"
cost = 5.0
fails_to_run = 0.1
outcomes = [{ id = "common", label = "Common" }, { id = "rare", label = "Rare" }]
[checks.likelihood]
default = { rare = 0.02 }
host-offline = { rare = 0.30 }

[[fixes]]
id = "f"
name = "Fix"
tier = "safe"
cost = 60.0
resolves = { dns-stale = 0.9, host-offline = 0.5 }
"#;

    /// IG(o) = (1 - q)·[H(C) - Σ_k P(o=k)·H(C | o=k)], by hand.
    fn by_hand(prior: &[f64], rows: &[[f64; 3]], no_result: f64, weighted: bool) -> f64 {
        let entropy = |p: &[f64]| -> f64 { -p.iter().map(|x| x * x.log2()).sum::<f64>() };
        let mut expected = 0.0;
        for row in rows {
            let joint: Vec<f64> = prior.iter().zip(row).map(|(p, l)| p * l).collect();
            let p_value: f64 = joint.iter().sum();
            let after: Vec<f64> = joint.iter().map(|j| j / p_value).collect();
            let weight = if weighted {
                p_value
            } else {
                1.0 / rows.len() as f64
            };
            expected += weight * entropy(&after);
        }
        (1.0 - no_result) * (entropy(prior) - expected)
    }

    #[test]
    fn information_gain_weighs_each_outcome_by_its_predictive_probability() {
        let model = CompiledModel::new(Model::from_toml(MODEL).unwrap()).unwrap();
        let gains = information_gains(&model, &Belief::new(&model));
        let check = model.check_position("c").unwrap();
        let prior = [0.5, 0.3, 0.2];
        let rows = [[0.98, 0.70, 0.98], [0.02, 0.30, 0.02]];
        let weighted = by_hand(&prior, &rows, 0.1, true);
        assert!(
            (gains[check] - weighted).abs() < 1e-12,
            "{} against {weighted}",
            gains[check]
        );
        // Averaging the outcomes instead would make the rare outcome count half: a different
        // (and here negative) figure, so the test tells the two apart.
        let unweighted = by_hand(&prior, &rows, 0.1, false);
        assert!(
            (weighted - unweighted).abs() > 0.05,
            "{weighted} {unweighted}"
        );
    }
}
