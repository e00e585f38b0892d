//! Learning from resolved cases: every probability is the model's prior pseudo-counts plus the
//! (weighted) counts of closed sessions, with optional forgetting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::compiled::CompiledModel;
use crate::inference::{with_slip, without_slip};
use crate::model::{row_for, spread_row, Model, OutcomeCounts, DONT_KNOW};
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
                let Some(row) = row_for(&question.likelihood, cause) else {
                    continue;
                };
                let Ok(stated) = spread_row(row, &value_refs) else {
                    continue;
                };
                let dont_know = row.get(DONT_KNOW).copied().unwrap_or(base_dont_know);
                // Work in the space of answers as given: slip applied, and "I don't know" as a
                // value only where the model makes it evidence.
                let mut prior = with_slip(&stated, slip);
                let mut observed: Vec<f64> = values
                    .iter()
                    .map(|v| answer_counts.get(v).copied().unwrap_or(0.0))
                    .collect();
                if informative_dont_know {
                    prior.iter_mut().for_each(|p| *p *= 1.0 - dont_know);
                    prior.push(dont_know);
                    observed.push(answer_counts.get(DONT_KNOW).copied().unwrap_or(0.0));
                }
                let Some(mut learned) = blend(&prior, &observed, strength) else {
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
                let Some(Ok(prior)) =
                    row_for(&check.likelihood, cause).map(|row| spread_row(row, &value_refs))
                else {
                    continue;
                };
                let observed: Vec<f64> = values
                    .iter()
                    .map(|v| outcome_counts.get(v).copied().unwrap_or(0.0))
                    .collect();
                if let Some(learned) = blend(&prior, &observed, strength) {
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
}
