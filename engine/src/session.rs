//! A diagnosis session: serialisable state (answers, check results, fix and article outcomes,
//! closure) and the operations the server and the portal call on it.
//!
//! A session holds ids, not positions, so that it can be stored as JSON and read back against
//! the model the server runs now; every operation takes that model. An operation that fails
//! changes nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::articles::{cascade_attribution, rank_articles};
use crate::compiled::{CompiledModel, ObservationSource};
use crate::inference::Belief;
use crate::model::{CheckLocation, FixTier};
use crate::next_step::advise;
use crate::rng::Rng;

/// One diagnosis in progress or closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    seed: u64,
    answers: BTreeMap<String, String>,
    checks: BTreeMap<String, CheckResult>,
    fixes: Vec<Attempt>,
    articles: Vec<Attempt>,
    closed: Option<Closure>,
}

/// What a check reported. In JSON an outcome id, or `"not_run"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum CheckResult {
    /// The check ran and reported this outcome id.
    Outcome(String),
    /// The check could not run: no evidence.
    NotRun,
}

impl CheckResult {
    /// The JSON spelling of [`CheckResult::NotRun`].
    pub const NOT_RUN: &'static str = "not_run";
}

impl From<String> for CheckResult {
    fn from(text: String) -> Self {
        if text == CheckResult::NOT_RUN {
            CheckResult::NotRun
        } else {
            CheckResult::Outcome(text)
        }
    }
}

impl From<CheckResult> for String {
    fn from(result: CheckResult) -> Self {
        match result {
            CheckResult::Outcome(outcome) => outcome,
            CheckResult::NotRun => CheckResult::NOT_RUN.to_owned(),
        }
    }
}

/// A fix or article that was tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// The fix or article id.
    pub id: String,
    /// Whether it resolved the fault.
    pub resolved: bool,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    /// The cause a technician confirmed, if any; otherwise learning uses the posterior.
    pub confirmed_cause: Option<String>,
}

/// Why an operation on a session was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// No question has this id.
    UnknownQuestion(String),
    /// The question has no such answer value.
    UnknownAnswer {
        /// The question id.
        question: String,
        /// The answer given.
        answer: String,
        /// The answer values it has.
        expected: Vec<String>,
    },
    /// A code question got text that is not a code.
    NotACode {
        /// The question id.
        question: String,
        /// What was typed.
        text: String,
    },
    /// No check has this id.
    UnknownCheck(String),
    /// The check has no such outcome.
    UnknownOutcome {
        /// The check id.
        check: String,
        /// The outcome given.
        outcome: String,
        /// The outcomes it has.
        expected: Vec<String>,
    },
    /// No fix has this id.
    UnknownFix(String),
    /// No article has this id.
    UnknownArticle(String),
    /// No cause has this id.
    UnknownCause(String),
    /// The article said to have worked was not among those shown.
    NotShown(String),
    /// This fix or article already has an outcome in this session.
    AlreadyRecorded(String),
    /// The session is closed and takes no more evidence.
    Closed,
    /// Learning needs a closed session.
    NotClosed,
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::UnknownQuestion(id) => write!(f, "unknown question `{id}`"),
            SessionError::UnknownAnswer {
                question,
                answer,
                expected,
            } => write!(
                f,
                "question `{question}` has no answer `{answer}` (expected one of: {})",
                expected.join(", ")
            ),
            SessionError::NotACode { question, text } => {
                write!(
                    f,
                    "question `{question}` expects a code such as 0x904, got `{text}`"
                )
            }
            SessionError::UnknownCheck(id) => write!(f, "unknown check `{id}`"),
            SessionError::UnknownOutcome {
                check,
                outcome,
                expected,
            } => write!(
                f,
                "check `{check}` has no outcome `{outcome}` (expected one of: {}, or {})",
                expected.join(", "),
                CheckResult::NOT_RUN
            ),
            SessionError::UnknownFix(id) => write!(f, "unknown fix `{id}`"),
            SessionError::UnknownArticle(id) => write!(f, "unknown article `{id}`"),
            SessionError::UnknownCause(id) => write!(f, "unknown cause `{id}`"),
            SessionError::NotShown(id) => {
                write!(f, "article `{id}` was not among the articles shown")
            }
            SessionError::AlreadyRecorded(id) => {
                write!(f, "`{id}` already has an outcome in this session")
            }
            SessionError::Closed => f.write_str("the session is closed"),
            SessionError::NotClosed => {
                f.write_str("the session is still open; close it before learning from it")
            }
        }
    }
}

impl std::error::Error for SessionError {}

/// Everything the portal shows after a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    /// Every cause, most likely first.
    pub causes: Vec<RankedCause>,
    /// The question or check to ask next; None when asking is over.
    pub next_step: Option<NextStep>,
    /// True when the engine says: stop asking and act on the fixes.
    pub stop_asking: bool,
    /// Fixes in the order to try them (updating P-over-C); escalation comes after the last.
    pub fixes: Vec<RankedFix>,
    /// Articles not yet tried, best first.
    pub articles: Vec<RankedArticle>,
    /// Expected seconds to repair when following `fixes` then escalating.
    pub expected_cost_of_repair: f64,
    /// Whether the session is closed.
    pub closed: bool,
}

/// A cause and its posterior probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedCause {
    /// The cause id.
    pub id: String,
    /// P(cause | evidence).
    pub probability: f64,
}

/// The next question or check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextStep {
    /// The question or check id.
    pub id: String,
    /// Question, or check with where it runs.
    #[serde(flatten)]
    pub kind: StepKind,
    /// Expected information gain, in bits.
    pub information_gain_bits: f64,
    /// Expected cost of repair after asking, asking included (seconds).
    pub expected_cost_after: f64,
}

/// Whether the next step is a question or a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    /// Ask the employee.
    Question,
    /// Run a check.
    Check {
        /// Where it runs.
        runs_on: CheckLocation,
    },
}

/// A fix in the proposed order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedFix {
    /// The fix id.
    pub id: String,
    /// Its risk tier.
    pub tier: FixTier,
    /// The agent action that performs it, if any.
    pub action: Option<String>,
    /// P(it resolves the fault | evidence).
    pub probability: f64,
    /// Seconds it takes.
    pub cost: f64,
}

/// An article in the proposed order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedArticle {
    /// The article id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Expected chance that it resolves the fault.
    pub probability: f64,
}

impl Session {
    /// A new, empty session; `seed` fixes its article exploration.
    pub fn new(seed: u64) -> Session {
        Session {
            seed,
            answers: BTreeMap::new(),
            checks: BTreeMap::new(),
            fixes: Vec::new(),
            articles: Vec::new(),
            closed: None,
        }
    }

    /// Answers given, by question id (code questions hold the matched answer id).
    pub fn answers(&self) -> &BTreeMap<String, String> {
        &self.answers
    }

    /// Check results, by check id.
    pub fn check_results(&self) -> &BTreeMap<String, CheckResult> {
        &self.checks
    }

    /// Fixes tried, in order.
    pub fn fix_attempts(&self) -> &[Attempt] {
        &self.fixes
    }

    /// Articles tried, in order.
    pub fn article_attempts(&self) -> &[Attempt] {
        &self.articles
    }

    /// How the session ended, if it has.
    pub fn closure(&self) -> Option<&Closure> {
        self.closed.as_ref()
    }

    /// Records an answer (replacing an earlier one to the same question). For a code question
    /// `answer` may be the code as typed, e.g. `0x904`.
    pub fn answer(
        &mut self,
        model: &CompiledModel,
        question: &str,
        answer: &str,
    ) -> Result<(), SessionError> {
        self.ensure_open()?;
        let (_, answer_id, _) = model.read_answer(question, answer)?;
        self.answers.insert(question.to_owned(), answer_id);
        Ok(())
    }

    /// Records what a check reported (replacing an earlier result of the same check).
    pub fn record_check(
        &mut self,
        model: &CompiledModel,
        check: &str,
        result: CheckResult,
    ) -> Result<(), SessionError> {
        self.ensure_open()?;
        model.read_check(check, &result)?;
        self.checks.insert(check.to_owned(), result);
        Ok(())
    }

    /// Records whether a fix resolved the fault; a failed fix is evidence against the causes it
    /// should have resolved.
    pub fn record_fix(
        &mut self,
        model: &CompiledModel,
        fix: &str,
        resolved: bool,
    ) -> Result<(), SessionError> {
        self.ensure_open()?;
        model
            .fix_position(fix)
            .ok_or_else(|| SessionError::UnknownFix(fix.to_owned()))?;
        if self.fixes.iter().any(|a| a.id == fix) {
            return Err(SessionError::AlreadyRecorded(fix.to_owned()));
        }
        self.fixes.push(Attempt {
            id: fix.to_owned(),
            resolved,
        });
        Ok(())
    }

    /// Records what the employee did with a list of articles shown to them, top first: by
    /// cascade attribution those above `worked` failed and those below taught nothing.
    pub fn record_articles(
        &mut self,
        model: &CompiledModel,
        shown: &[&str],
        worked: Option<&str>,
    ) -> Result<(), SessionError> {
        self.ensure_open()?;
        for (position, article) in shown.iter().enumerate() {
            model
                .article_position(article)
                .ok_or_else(|| SessionError::UnknownArticle((*article).to_owned()))?;
            if shown[..position].contains(article) || self.articles.iter().any(|a| a.id == *article)
            {
                return Err(SessionError::AlreadyRecorded((*article).to_owned()));
            }
        }
        if let Some(worked) = worked {
            if !shown.contains(&worked) {
                return Err(SessionError::NotShown(worked.to_owned()));
            }
        }
        for (article, resolved) in cascade_attribution(shown, worked) {
            self.articles.push(Attempt {
                id: article.to_owned(),
                resolved,
            });
        }
        Ok(())
    }

    /// Closes the session, with the cause a technician confirmed if there is one.
    pub fn close(
        &mut self,
        model: &CompiledModel,
        confirmed_cause: Option<&str>,
    ) -> Result<(), SessionError> {
        self.ensure_open()?;
        if let Some(cause) = confirmed_cause {
            model
                .cause_position(cause)
                .ok_or_else(|| SessionError::UnknownCause(cause.to_owned()))?;
        }
        self.closed = Some(Closure {
            confirmed_cause: confirmed_cause.map(str::to_owned),
        });
        Ok(())
    }

    /// Whether the session is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Ranked causes, the next step, the fix and article order, and whether to stop asking.
    /// Fails only when the stored evidence names ids the model no longer has.
    pub fn state(&self, model: &CompiledModel) -> Result<SessionState, SessionError> {
        let belief = self.belief(model)?;
        let advice = advise(model, &belief);
        let mut causes: Vec<RankedCause> = advice
            .posterior
            .iter()
            .enumerate()
            .map(|(cause, p)| RankedCause {
                id: model.cause_id(cause).to_owned(),
                probability: *p,
            })
            .collect();
        causes.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        let document = model.model();
        let fixes = advice
            .fix_order
            .iter()
            .map(|&f| {
                let fix = &document.fixes[f];
                let action = &model.repair_actions[f];
                RankedFix {
                    id: fix.id.clone(),
                    tier: fix.tier,
                    action: fix.action.clone(),
                    probability: action
                        .resolves
                        .iter()
                        .map(|(c, r)| advice.posterior[*c] * r)
                        .sum(),
                    cost: fix.cost,
                }
            })
            .collect();
        let mut tried = vec![false; document.articles.len()];
        for attempt in &self.articles {
            if let Some(article) = model.article_position(&attempt.id) {
                tried[article] = true;
            }
        }
        // A fresh stream per amount of evidence: the ranking explores, yet reading the same
        // state twice shows the same list.
        let evidence_count =
            (self.answers.len() + self.checks.len() + self.fixes.len() + self.articles.len())
                as u64;
        let mut rng = Rng::seeded(self.seed ^ evidence_count.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let articles = rank_articles(model, &advice.posterior, &tried, &mut rng)
            .into_iter()
            .map(|score| {
                let article = &document.articles[score.article];
                RankedArticle {
                    id: article.id.clone(),
                    title: article.title.clone(),
                    probability: score.expected,
                }
            })
            .collect();
        let next_step = advice.next.filter(|_| !self.is_closed()).map(|candidate| {
            let kind = match model.observations[candidate.observation].source {
                ObservationSource::Question(_) => StepKind::Question,
                ObservationSource::Check(c) => StepKind::Check {
                    runs_on: document.checks[c].runs_on,
                },
            };
            NextStep {
                id: model.observation_id(candidate.observation).to_owned(),
                kind,
                information_gain_bits: candidate.information_gain,
                expected_cost_after: candidate.expected_cost_after,
            }
        });
        Ok(SessionState {
            causes,
            stop_asking: next_step.is_none(),
            next_step,
            fixes,
            articles,
            expected_cost_of_repair: advice.expected_cost_of_repair,
            closed: self.is_closed(),
        })
    }

    /// The session's evidence against `model`.
    pub(crate) fn belief(&self, model: &CompiledModel) -> Result<Belief, SessionError> {
        let mut belief = Belief::new(model);
        for (question, answer) in &self.answers {
            let (observation, _, reading) = model.read_answer(question, answer)?;
            belief.observe(model, observation, reading);
        }
        for (check, result) in &self.checks {
            let (observation, reading) = model.read_check(check, result)?;
            belief.observe(model, observation, reading);
        }
        for attempt in &self.fixes {
            let fix = model
                .fix_position(&attempt.id)
                .ok_or_else(|| SessionError::UnknownFix(attempt.id.clone()))?;
            belief.record_fix(model, fix, attempt.resolved);
        }
        for attempt in &self.articles {
            let article = model
                .article_position(&attempt.id)
                .ok_or_else(|| SessionError::UnknownArticle(attempt.id.clone()))?;
            belief.record_article(model, article, attempt.resolved);
        }
        Ok(belief)
    }

    fn ensure_open(&self) -> Result<(), SessionError> {
        if self.is_closed() {
            Err(SessionError::Closed)
        } else {
            Ok(())
        }
    }
}
