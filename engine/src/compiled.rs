//! The validated model indexed for inference: likelihood tables by position, slip applied,
//! article Beta parameters computed once.

use std::collections::HashMap;

use crate::codes::{parse_code, CodePattern};
use crate::inference::{with_slip, Reading};
use crate::model::{row_for, spread_row, AnswerInput, Model, Question, DONT_KNOW};
use crate::repair::RepairAction;
use crate::session::{CheckResult, SessionError};
use crate::validate::{validate, Problem};

/// A model checked by [`validate`] and laid out for fast inference. Build it once (at server
/// start, or after learning) and share it: every session operation borrows it.
#[derive(Debug, Clone)]
pub struct CompiledModel {
    model: Model,
    pub(crate) prior: Vec<f64>,
    pub(crate) log_prior: Vec<f64>,
    pub(crate) observations: Vec<Observation>,
    pub(crate) group_temperatures: Vec<f64>,
    /// The fixes in model order, then escalation to the helpdesk at index `fixes.len()`.
    pub(crate) repair_actions: Vec<RepairAction>,
    pub(crate) articles: Vec<ArticleBelief>,
    cause_index: HashMap<String, usize>,
    observation_index: HashMap<String, usize>,
    fix_index: HashMap<String, usize>,
    article_index: HashMap<String, usize>,
}

/// Where an observation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObservationSource {
    Question(usize),
    Check(usize),
}

/// A question or check as the inference sees it.
#[derive(Debug, Clone)]
pub(crate) struct Observation {
    pub(crate) source: ObservationSource,
    pub(crate) cost: f64,
    pub(crate) intake: bool,
    pub(crate) group: Option<usize>,
    /// Ids of the readings that are evidence: answer values (with "I don't know" when the model
    /// makes it informative) or check outcomes.
    pub(crate) value_ids: Vec<String>,
    /// `likelihood[value][cause]` = P(value | cause, a reading was obtained), slip applied.
    pub(crate) likelihood: Vec<Vec<f64>>,
    pub(crate) log_likelihood: Vec<Vec<f64>>,
    /// Cause-independent chance of no evidence: an uninformative "I don't know", or a check
    /// that did not run.
    pub(crate) no_result: f64,
}

impl Observation {
    pub(crate) fn is_check(&self) -> bool {
        matches!(self.source, ObservationSource::Check(_))
    }
}

/// Beta(alpha, beta) beliefs, per cause, about one article resolving the fault.
#[derive(Debug, Clone)]
pub(crate) struct ArticleBelief {
    pub(crate) alpha: Vec<f64>,
    pub(crate) beta: Vec<f64>,
}

impl ArticleBelief {
    pub(crate) fn mean(&self, cause: usize) -> f64 {
        self.alpha[cause] / (self.alpha[cause] + self.beta[cause])
    }
}

/// Bounds of the model's own guess of an article's resolve rate, so that every Beta is proper
/// and data can still move an article toward causes the expert did not expect it to help.
const ARTICLE_PRIOR_BOUNDS: (f64, f64) = (0.01, 0.99);

impl CompiledModel {
    /// Validates and compiles `model`; on any problem returns them all.
    pub fn new(model: Model) -> Result<CompiledModel, Vec<Problem>> {
        let problems = validate(&model);
        if !problems.is_empty() {
            return Err(problems);
        }
        let cause_ids: Vec<&str> = model.causes.iter().map(|c| c.id.as_str()).collect();
        let total_prior: f64 = model.causes.iter().map(|c| c.prior).sum();
        let prior: Vec<f64> = model.causes.iter().map(|c| c.prior / total_prior).collect();
        let observations: Vec<Observation> = (0..model.questions.len())
            .map(|q| compile_question(&model, q, &cause_ids))
            .chain((0..model.checks.len()).map(|c| compile_check(&model, c, &cause_ids)))
            .collect();
        let mut repair_actions: Vec<RepairAction> = model
            .fixes
            .iter()
            .map(|fix| RepairAction {
                cost: fix.cost,
                resolves: fix
                    .resolves
                    .iter()
                    .filter_map(|(cause, p)| Some((cause_ids.iter().position(|c| c == cause)?, *p)))
                    .collect(),
            })
            .collect();
        let articles = compile_articles(&model, &repair_actions, &prior, &cause_ids);
        repair_actions.push(RepairAction {
            cost: model.settings.escalation_cost,
            resolves: (0..cause_ids.len()).map(|c| (c, 1.0)).collect(),
        });
        let index_of = |ids: Vec<&str>| -> HashMap<String, usize> {
            ids.into_iter()
                .enumerate()
                .map(|(i, id)| (id.to_owned(), i))
                .collect()
        };
        Ok(CompiledModel {
            log_prior: prior.iter().map(|p| p.ln()).collect(),
            prior,
            group_temperatures: model.groups.iter().map(|g| g.temperature).collect(),
            observations,
            repair_actions,
            articles,
            cause_index: index_of(cause_ids),
            observation_index: index_of(
                model
                    .questions
                    .iter()
                    .map(|q| q.id.as_str())
                    .chain(model.checks.iter().map(|c| c.id.as_str()))
                    .collect(),
            ),
            fix_index: index_of(model.fixes.iter().map(|f| f.id.as_str()).collect()),
            article_index: index_of(model.articles.iter().map(|a| a.id.as_str()).collect()),
            model,
        })
    }

    /// The shipped 0x904 model, compiled.
    pub fn shipped() -> CompiledModel {
        CompiledModel::new(Model::shipped())
            .expect("the shipped model is valid: tests check it on every build")
    }

    /// The model document this was compiled from.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Number of causes, the leak included.
    pub fn cause_count(&self) -> usize {
        self.prior.len()
    }

    pub(crate) fn cause_id(&self, cause: usize) -> &str {
        &self.model.causes[cause].id
    }

    pub(crate) fn cause_position(&self, id: &str) -> Option<usize> {
        self.cause_index.get(id).copied()
    }

    pub(crate) fn fix_position(&self, id: &str) -> Option<usize> {
        self.fix_index.get(id).copied()
    }

    pub(crate) fn article_position(&self, id: &str) -> Option<usize> {
        self.article_index.get(id).copied()
    }

    pub(crate) fn fix_count(&self) -> usize {
        self.model.fixes.len()
    }

    /// The id of a question or check by observation position.
    pub(crate) fn observation_id(&self, observation: usize) -> &str {
        match self.observations[observation].source {
            ObservationSource::Question(q) => &self.model.questions[q].id,
            ObservationSource::Check(c) => &self.model.checks[c].id,
        }
    }

    /// The observation position and document of a question id (checks are not questions).
    pub(crate) fn question_by_id(&self, id: &str) -> Option<(usize, &Question)> {
        let observation = *self.observation_index.get(id)?;
        match self.observations[observation].source {
            ObservationSource::Question(q) => Some((observation, &self.model.questions[q])),
            ObservationSource::Check(_) => None,
        }
    }

    /// The observation position of a check id.
    pub(crate) fn check_position(&self, id: &str) -> Option<usize> {
        self.observation_index
            .get(id)
            .copied()
            .filter(|&o| matches!(self.observations[o].source, ObservationSource::Check(_)))
    }

    /// What an answer to a question tells the engine. For a code question `answer` may be an
    /// answer id or a code as typed. Returns the canonical answer id too.
    pub(crate) fn read_answer(
        &self,
        question_id: &str,
        answer: &str,
    ) -> Result<(usize, String, Reading), SessionError> {
        let (observation, question) = self
            .question_by_id(question_id)
            .ok_or_else(|| SessionError::UnknownQuestion(question_id.to_owned()))?;
        let answer_id = match question.answers.iter().find(|a| a.id == answer) {
            Some(value) => value.id.clone(),
            None if question.input == AnswerInput::Code => match_code(question, answer)?,
            None => {
                return Err(SessionError::UnknownAnswer {
                    question: question_id.to_owned(),
                    answer: answer.to_owned(),
                    expected: question.answers.iter().map(|a| a.id.clone()).collect(),
                })
            }
        };
        let reading = match self.observations[observation]
            .value_ids
            .iter()
            .position(|v| *v == answer_id)
        {
            Some(value) => Reading::Value(value),
            // Only an uninformative "I don't know" is missing from the evidence values.
            None => Reading::NoResult,
        };
        Ok((observation, answer_id, reading))
    }

    /// What a check result tells the engine.
    pub(crate) fn read_check(
        &self,
        check_id: &str,
        result: &CheckResult,
    ) -> Result<(usize, Reading), SessionError> {
        let observation = self
            .check_position(check_id)
            .ok_or_else(|| SessionError::UnknownCheck(check_id.to_owned()))?;
        let reading = match result {
            CheckResult::NotRun => Reading::NoResult,
            CheckResult::Outcome(outcome) => {
                let values = &self.observations[observation].value_ids;
                let value = values.iter().position(|v| v == outcome).ok_or_else(|| {
                    SessionError::UnknownOutcome {
                        check: check_id.to_owned(),
                        outcome: outcome.clone(),
                        expected: values.clone(),
                    }
                })?;
                Reading::Value(value)
            }
        };
        Ok((observation, reading))
    }
}

fn match_code(question: &Question, typed: &str) -> Result<String, SessionError> {
    let code = parse_code(typed).ok_or_else(|| SessionError::NotACode {
        question: question.id.clone(),
        text: typed.to_owned(),
    })?;
    let matched = question.answers.iter().find(|answer| {
        answer
            .codes
            .iter()
            .filter_map(|c| CodePattern::parse(c))
            .any(|pattern| pattern.contains(code))
    });
    Ok(match matched {
        Some(answer) => answer.id.clone(),
        // Validation guarantees a code question names its fallback value.
        None => question.unmatched_code.clone().unwrap_or_default(),
    })
}

fn compile_question(model: &Model, index: usize, cause_ids: &[&str]) -> Observation {
    let question = &model.questions[index];
    let values: Vec<&str> = question
        .informative_answers()
        .map(|a| a.id.as_str())
        .collect();
    let base_dont_know = question.base_dont_know_rate(&model.settings);
    let informative_dont_know = question.dont_know_is_informative();
    // per_cause[c] = the distribution over the evidence values for cause c.
    let per_cause: Vec<Vec<f64>> = cause_ids
        .iter()
        .map(|cause| {
            let row =
                row_for(&question.likelihood, cause).expect("validated: every cause has a row");
            let stated = spread_row(row, &values).expect("validated: rows are distributions");
            let answered = with_slip(&stated, model.settings.slip);
            if informative_dont_know {
                let dont_know = row.get(DONT_KNOW).copied().unwrap_or(base_dont_know);
                let mut full: Vec<f64> = answered.iter().map(|p| (1.0 - dont_know) * p).collect();
                full.push(dont_know);
                full
            } else {
                answered
            }
        })
        .collect();
    let mut value_ids: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
    if informative_dont_know {
        value_ids.push(DONT_KNOW.to_owned());
    }
    let (likelihood, log_likelihood) = by_value(value_ids.len(), &per_cause);
    Observation {
        source: ObservationSource::Question(index),
        cost: question.cost.unwrap_or(model.settings.question_cost),
        intake: question.intake,
        group: question
            .group
            .as_ref()
            .and_then(|g| model.groups.iter().position(|x| &x.id == g)),
        value_ids,
        likelihood,
        log_likelihood,
        no_result: if informative_dont_know {
            0.0
        } else {
            base_dont_know
        },
    }
}

fn compile_check(model: &Model, index: usize, cause_ids: &[&str]) -> Observation {
    let check = &model.checks[index];
    let values: Vec<&str> = check.outcomes.iter().map(|o| o.id.as_str()).collect();
    let per_cause: Vec<Vec<f64>> = cause_ids
        .iter()
        .map(|cause| {
            let row = row_for(&check.likelihood, cause).expect("validated: every cause has a row");
            spread_row(row, &values).expect("validated: rows are distributions")
        })
        .collect();
    let (likelihood, log_likelihood) = by_value(values.len(), &per_cause);
    Observation {
        source: ObservationSource::Check(index),
        cost: check.cost,
        intake: false,
        group: None,
        value_ids: values.iter().map(|v| (*v).to_owned()).collect(),
        likelihood,
        log_likelihood,
        no_result: check.fails_to_run,
    }
}

/// Turns per-cause rows into per-value rows, as inference reads them, with their logarithms.
fn by_value(values: usize, per_cause: &[Vec<f64>]) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let likelihood: Vec<Vec<f64>> = (0..values)
        .map(|value| per_cause.iter().map(|row| row[value]).collect())
        .collect();
    let log_likelihood = likelihood
        .iter()
        .map(|row| row.iter().map(|p| p.ln()).collect())
        .collect();
    (likelihood, log_likelihood)
}

/// Beta beliefs per (cause, article): the model's guess `p0` (the chance that one of the
/// article's fixes resolves the cause) with `article_prior_strength` pseudo-counts, plus
/// `article_shrinkage` pseudo-counts at the article's overall resolve rate, plus outcomes.
fn compile_articles(
    model: &Model,
    fixes: &[RepairAction],
    prior: &[f64],
    cause_ids: &[&str],
) -> Vec<ArticleBelief> {
    let strength = model.settings.article_prior_strength;
    let shrinkage = model.settings.article_shrinkage;
    model
        .articles
        .iter()
        .map(|article| {
            let described: Vec<&RepairAction> = article
                .fixes
                .iter()
                .filter_map(|id| model.fixes.iter().position(|f| &f.id == id))
                .map(|f| &fixes[f])
                .collect();
            let guess: Vec<f64> = (0..cause_ids.len())
                .map(|cause| {
                    let fails: f64 = described
                        .iter()
                        .map(|fix| 1.0 - fix.resolve_probability_for(cause))
                        .product();
                    (1.0 - fails).clamp(ARTICLE_PRIOR_BOUNDS.0, ARTICLE_PRIOR_BOUNDS.1)
                })
                .collect();
            let counts: Vec<(f64, f64)> = cause_ids
                .iter()
                .map(|cause| {
                    article
                        .outcomes
                        .get(*cause)
                        .map_or((0.0, 0.0), |o| (o.resolved, o.failed))
                })
                .collect();
            let expected_rate: f64 = guess.iter().zip(prior).map(|(g, p)| g * p).sum();
            let resolved: f64 = counts.iter().map(|c| c.0).sum();
            let attempts: f64 = counts.iter().map(|c| c.0 + c.1).sum();
            let overall_rate = (resolved + strength * expected_rate) / (attempts + strength);
            ArticleBelief {
                alpha: guess
                    .iter()
                    .zip(&counts)
                    .map(|(g, c)| strength * g + shrinkage * overall_rate + c.0)
                    .collect(),
                beta: guess
                    .iter()
                    .zip(&counts)
                    .map(|(g, c)| strength * (1.0 - g) + shrinkage * (1.0 - overall_rate) + c.1)
                    .collect(),
            }
        })
        .collect()
}
