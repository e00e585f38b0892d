//! `model replay`: past cases replayed against a (possibly edited) model, one JSON line each.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{compile, load_model, model_name, CliError};
use crate::compiled::CompiledModel;
use crate::inference::{Belief, Reading};
use crate::next_step::advise;
use crate::pacing::{CaseClock, ChecksArrive};
use crate::session::{CheckResult, SessionError};

/// Options of `rdp-doctor model replay [--model FILE] --cases CASES.jsonl [--stop P]
/// [--max-questions N] [--checks parallel|on-request]`.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// The model file; the shipped model when None.
    pub model: Option<PathBuf>,
    /// Stop threshold overriding the model's.
    pub stop: Option<f64>,
    /// Ask at most this many questions and checks per case.
    pub max_questions: Option<usize>,
    /// When the case's check outcomes reach the engine: as the deployment records them (each
    /// once its result is in, `cost` seconds after the case opened), or only when asked for.
    pub checks: ChecksArrive,
}

/// One input line: what is known about a past case. A question not listed counts as not
/// answerable when the engine asks it; a check not listed as not run (no evidence).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayCase {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    answers: BTreeMap<String, String>,
    #[serde(default)]
    checks: BTreeMap<String, CheckResult>,
}

/// One output line.
#[derive(Debug, Serialize)]
struct ReplayOutcome {
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    /// Question and check ids in the order the engine asked them (a check it waited for).
    asked: Vec<String>,
    /// Check ids recorded as their results came in, without the engine asking, in order.
    checks_in: Vec<String>,
    /// Causes at or above [`RANKING_FLOOR`], most likely first.
    ranking: Vec<RankedProbability>,
    /// Fix ids in the order to try them.
    fixes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct RankedProbability {
    cause: String,
    probability: f64,
}

/// Causes below this are left out of a replayed ranking: twenty near-zero entries per line
/// would bury the ones a knowledge engineer compares.
const RANKING_FLOOR: f64 = 0.001;

/// Replays every line of `cases` (JSON: `{"id"?, "answers": {question: answer}, "checks":
/// {check: outcome or "not_run"}}`) and writes one JSON line per case; a bad line stops the
/// replay with an error naming its line number.
pub fn replay(
    options: &ReplayOptions,
    cases: impl BufRead,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let name = model_name(options.model.as_deref());
    let mut document = load_model(options.model.as_ref())?;
    if let Some(stop) = options.stop {
        document.settings.stop_threshold = stop;
    }
    let model = compile(document, &name)?;
    for (index, line) in cases.lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|e| CliError(format!("cannot read line {number}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let case: ReplayCase =
            serde_json::from_str(&line).map_err(|e| CliError(format!("line {number}: {e}")))?;
        let outcome = replay_case(&model, case, number, options)
            .map_err(|e| CliError(format!("line {number}: {e}")))?;
        serde_json::to_writer(&mut *out, &outcome)
            .map_err(|e| CliError(format!("cannot write line {number}: {e}")))?;
        writeln!(out)?;
    }
    Ok(())
}

fn replay_case(
    model: &CompiledModel,
    case: ReplayCase,
    line: usize,
    options: &ReplayOptions,
) -> Result<ReplayOutcome, SessionError> {
    // Every entry is checked up front, so a typo fails even where the engine never asks.
    let mut known: HashMap<usize, Reading> = HashMap::new();
    for (question, answer) in &case.answers {
        let (observation, _, reading) = model.read_answer(question, answer)?;
        known.insert(observation, reading);
    }
    for (check, result) in &case.checks {
        let (observation, reading) = model.read_check(check, result)?;
        known.insert(observation, reading);
    }
    let reading = |observation: usize| {
        known
            .get(&observation)
            .copied()
            .unwrap_or(Reading::NoResult)
    };
    let mut belief = Belief::new(model);
    let mut clock = CaseClock::new(options.checks);
    let mut asked = Vec::new();
    let mut checks_in = Vec::new();
    let advice = loop {
        for observation in clock.arrived(model, &belief) {
            belief.observe(model, observation, reading(observation));
            checks_in.push(model.observation_id(observation).to_owned());
        }
        let advice = advise(model, &belief);
        let Some(next) = advice.next else {
            break advice;
        };
        if options.max_questions.is_some_and(|max| asked.len() >= max) {
            break advice;
        }
        clock.take(model, next.observation);
        belief.observe(model, next.observation, reading(next.observation));
        asked.push(model.observation_id(next.observation).to_owned());
    };
    let mut ranking: Vec<RankedProbability> = advice
        .posterior
        .iter()
        .enumerate()
        .filter(|(_, p)| **p >= RANKING_FLOOR)
        .map(|(cause, p)| RankedProbability {
            cause: model.cause_id(cause).to_owned(),
            probability: (p * 1e4).round() / 1e4,
        })
        .collect();
    ranking.sort_by(|a, b| {
        b.probability
            .total_cmp(&a.probability)
            .then_with(|| a.cause.cmp(&b.cause))
    });
    Ok(ReplayOutcome {
        line,
        id: case.id,
        asked,
        checks_in,
        ranking,
        fixes: advice
            .fix_order
            .iter()
            .map(|&f| model.model().fixes[f].id.clone())
            .collect(),
    })
}
