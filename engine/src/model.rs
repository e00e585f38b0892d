//! The knowledge model as a versioned, human-editable TOML document, and the shipped 0x904 model.
//!
//! This is the editable form: plain data with string ids, possibly invalid. [`crate::validate`]
//! checks it and [`crate::CompiledModel`] turns a valid one into indexed tables for inference.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The format version this engine reads; a model file states it in `format_version`.
pub const FORMAT_VERSION: u32 = 1;
/// The answer value every question offers for "I don't know".
pub const DONT_KNOW: &str = "dont_know";
/// The likelihood row that applies to every cause without a row of its own.
pub const DEFAULT_ROW: &str = "default";
/// The leak cause: none of the catalogued causes.
pub const LEAK_CAUSE: &str = "other";

const SHIPPED_0X904: &str = include_str!("../models/0x904.toml");

/// A knowledge model: causes, the questions and checks that tell them apart, and the fixes and
/// articles that resolve them. Probabilities are stated per cause; see `docs/MODEL-FORMAT.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// The file format version, [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The content version, bumped by the knowledge engineer on every change.
    pub model_version: String,
    /// What the model diagnoses.
    pub title: String,
    /// Engine parameters (slip rate, stop threshold, costs, learning strengths).
    #[serde(default)]
    pub settings: Settings,
    /// The cause catalogue, including the leak cause [`LEAK_CAUSE`].
    pub causes: Vec<Cause>,
    /// Groups of correlated questions whose evidence is tempered.
    #[serde(default)]
    pub groups: Vec<Group>,
    /// Questions the employee answers.
    pub questions: Vec<Question>,
    /// Automated checks run by an agent or the server.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// Repairs, each with the causes it resolves.
    pub fixes: Vec<Fix>,
    /// Knowledge-base articles, each describing some fixes.
    #[serde(default)]
    pub articles: Vec<Article>,
}

/// Engine parameters stored with the model, so that a model file fully determines behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Slip rate ε: the chance that an employee gives a wrong answer to a question.
    pub slip: f64,
    /// Chance that an employee answers "I don't know" where the question does not say.
    pub dont_know_rate: f64,
    /// Stop asking once the most likely cause reaches this probability.
    pub stop_threshold: f64,
    /// Questions and checks expected to gain less than this many bits are never asked.
    pub min_information_gain: f64,
    /// Next-step candidates whose expected cost lies within this fraction of the best one count
    /// as tied, and the tie goes to the larger information gain.
    pub tie_tolerance: f64,
    /// Seconds an employee needs to answer a question, unless the question says otherwise.
    pub question_cost: f64,
    /// Seconds the helpdesk needs once the engine escalates: the cost of giving up on fixes.
    pub escalation_cost: f64,
    /// Equivalent sample size of each likelihood row and fix probability when learning.
    pub likelihood_strength: f64,
    /// Pseudo-counts behind the model's own guess of how well an article resolves a cause.
    pub article_prior_strength: f64,
    /// Pseudo-counts pulling every (cause, article) rate toward the article's overall rate.
    pub article_shrinkage: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            slip: 0.05,
            dont_know_rate: 0.1,
            stop_threshold: 0.9,
            min_information_gain: 0.01,
            tie_tolerance: 0.1,
            question_cost: 20.0,
            escalation_cost: 3600.0,
            likelihood_strength: 10.0,
            article_prior_strength: 4.0,
            article_shrinkage: 2.0,
        }
    }
}

/// One cause in the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cause {
    /// Stable id, as in the domain catalogue.
    pub id: String,
    /// A short name for technicians.
    pub name: String,
    /// Prior weight as a pseudo-count; priors are these weights normalised.
    pub prior: f64,
}

/// Correlated questions: asked together they are two ways of learning the same thing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Stable id that questions name in `group`.
    pub id: String,
    /// In (0, 1]: each answer after the first in the group counts as this fraction of an
    /// independent one (1 = fully independent).
    pub temperature: f64,
}

/// Per-cause probabilities of answer values (or check outcomes), keyed by cause id or
/// [`DEFAULT_ROW`]; see `docs/MODEL-FORMAT.md` for how omitted values are filled in.
pub type LikelihoodRow = BTreeMap<String, f64>;

/// How the employee gives an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerInput {
    /// Picks one of the answer values.
    #[default]
    Choice,
    /// Types a code from the error dialog, matched against the values' `codes`.
    Code,
}

/// A question for the employee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Stable id.
    pub id: String,
    /// What the employee reads: plain words for a stressed non-technical person.
    pub text: String,
    /// Intake questions are asked first, in file order, before the engine chooses.
    #[serde(default)]
    pub intake: bool,
    /// Choice or typed code.
    #[serde(default)]
    pub input: AnswerInput,
    /// For a code question: the answer value a typed code that matches no value falls into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched_code: Option<String>,
    /// The correlated group this question belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Seconds to answer, overriding `settings.question_cost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// Chance of "I don't know", overriding `settings.dont_know_rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dont_know_rate: Option<f64>,
    /// The answer values, including [`DONT_KNOW`].
    pub answers: Vec<AnswerValue>,
    /// Likelihood rows: cause id (or [`DEFAULT_ROW`]) → answer value id → probability.
    pub likelihood: BTreeMap<String, LikelihoodRow>,
}

/// One answer an employee can give.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerValue {
    /// Stable id.
    pub id: String,
    /// What the employee reads.
    pub label: String,
    /// For a code question: the codes or ranges (`"256-267"`) this value stands for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<String>,
}

/// Where a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckLocation {
    /// On the employee's PC, by its agent.
    Client,
    /// On the RDP host, by its agent.
    Host,
    /// On the RDP Doctor server.
    Server,
}

/// An automated check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// Stable id, shared with the agent's check catalogue.
    pub id: String,
    /// A short description for technicians.
    pub name: String,
    /// Where it runs.
    pub runs_on: CheckLocation,
    /// Seconds it takes.
    pub cost: f64,
    /// Chance that it cannot run (agent missing or offline, timeout); no result is no evidence.
    pub fails_to_run: f64,
    /// The outcomes it reports.
    pub outcomes: Vec<CheckOutcome>,
    /// Likelihood rows: cause id (or [`DEFAULT_ROW`]) → outcome id → probability.
    pub likelihood: BTreeMap<String, LikelihoodRow>,
}

/// One outcome a check can report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckOutcome {
    /// Stable id.
    pub id: String,
    /// A short description.
    pub label: String,
}

/// How much a fix risks, from the domain brief.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixTier {
    /// Trivially reversible.
    Safe,
    /// A reversible configuration change; the prior state is recorded first.
    Change,
    /// Weakens security: temporary, approved, reverted automatically.
    Downgrade,
}

/// A repair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fix {
    /// Stable id.
    pub id: String,
    /// A short description.
    pub name: String,
    /// Its risk tier.
    pub tier: FixTier,
    /// Seconds it takes, approvals included.
    pub cost: f64,
    /// The agent action that performs it, if an agent can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Cause id → probability that this fix resolves the fault when that is the cause; causes
    /// not listed are never resolved by it.
    pub resolves: BTreeMap<String, f64>,
}

/// A knowledge-base article.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Article {
    /// Stable id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// The fixes it walks the reader through.
    pub fixes: Vec<String>,
    /// Outcome counts per cause id (from the expert or learned from resolved cases).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outcomes: BTreeMap<String, OutcomeCounts>,
}

/// Weighted counts of attempts that resolved the fault and that did not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeCounts {
    /// Weight of attempts that resolved it.
    pub resolved: f64,
    /// Weight of attempts that did not.
    pub failed: f64,
}

/// A TOML syntax or shape error, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the error, when the parser knows it.
    pub line: Option<usize>,
    /// 1-based column of the error, when the parser knows it.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "line {line}, column {column}: {}", self.message)
            }
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ParseError {}

impl Model {
    /// Parses a model file. Only syntax and shape are checked here; call [`crate::validate`]
    /// for the content.
    pub fn from_toml(text: &str) -> Result<Model, ParseError> {
        toml::from_str(text).map_err(|error| {
            let (line, column) = match error.span() {
                Some(span) => {
                    let (line, column) = line_and_column(text, span.start);
                    (Some(line), Some(column))
                }
                None => (None, None),
            };
            ParseError {
                line,
                column,
                message: error.message().trim().to_owned(),
            }
        })
    }

    /// The 0x904 model the engine ships with (`engine/models/0x904.toml`).
    pub fn shipped() -> Model {
        Model::from_toml(SHIPPED_0X904)
            .expect("the shipped model parses: tests load it on every build")
    }

    /// The text of the shipped model file.
    pub fn shipped_toml() -> &'static str {
        SHIPPED_0X904
    }
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Question {
    /// The answer values that carry evidence about the cause: all but [`DONT_KNOW`].
    pub(crate) fn informative_answers(&self) -> impl Iterator<Item = &AnswerValue> {
        self.answers.iter().filter(|a| a.id != DONT_KNOW)
    }

    /// The chance of "I don't know" when no cause row states one.
    pub(crate) fn base_dont_know_rate(&self, settings: &Settings) -> f64 {
        self.dont_know_rate.unwrap_or(settings.dont_know_rate)
    }

    /// True when some likelihood row gives "I don't know" its own probability, which makes it
    /// evidence.
    pub(crate) fn dont_know_is_informative(&self) -> bool {
        self.likelihood
            .values()
            .any(|row| row.contains_key(DONT_KNOW))
    }
}

/// The row that applies to `cause`: its own, else the default row.
pub(crate) fn row_for<'a>(
    likelihood: &'a BTreeMap<String, LikelihoodRow>,
    cause: &str,
) -> Option<&'a LikelihoodRow> {
    likelihood
        .get(cause)
        .or_else(|| likelihood.get(DEFAULT_ROW))
}

/// Tolerance on a row's sum: rows are typed by hand with a few decimals.
const ROW_SUM_TOLERANCE: f64 = 1e-6;

/// The full distribution over `values` that `row` states: values the row omits share what the
/// stated ones leave equally. Keys outside `values` other than [`DONT_KNOW`] are errors.
pub(crate) fn spread_row(row: &LikelihoodRow, values: &[&str]) -> Result<Vec<f64>, String> {
    if let Some(unknown) = row
        .keys()
        .find(|k| *k != DONT_KNOW && !values.contains(&k.as_str()))
    {
        return Err(format!(
            "unknown value `{unknown}` (expected one of: {})",
            values.join(", ")
        ));
    }
    if let Some((value, p)) = row.iter().find(|(_, p)| !(**p > 0.0 && **p < 1.0)) {
        return Err(format!("probability of `{value}` is {p}, outside (0, 1)"));
    }
    let stated: f64 = values.iter().filter_map(|v| row.get(*v)).sum();
    let omitted = values.iter().filter(|v| !row.contains_key(**v)).count();
    if omitted == 0 {
        if (stated - 1.0).abs() > ROW_SUM_TOLERANCE {
            return Err(format!("probabilities sum to {stated}, not 1"));
        }
    } else if stated >= 1.0 - ROW_SUM_TOLERANCE {
        return Err(format!(
            "stated probabilities sum to {stated}, leaving nothing for the {omitted} omitted value(s)"
        ));
    }
    let share = if omitted == 0 {
        0.0
    } else {
        (1.0 - stated) / omitted as f64
    };
    Ok(values
        .iter()
        .map(|v| row.get(*v).copied().unwrap_or(share))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(entries: &[(&str, f64)]) -> LikelihoodRow {
        entries.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn omitted_values_share_the_remainder_equally() {
        let spread = spread_row(&row(&[("a", 0.4)]), &["a", "b", "c"]).unwrap();
        assert_eq!(spread, vec![0.4, 0.3, 0.3]);
    }

    #[test]
    fn rows_that_cannot_be_a_distribution_are_refused_with_a_reason() {
        let values = ["yes", "no"];
        assert!(spread_row(&row(&[("yes", 0.5), ("no", 0.4)]), &values)
            .unwrap_err()
            .contains("sum to 0.9"));
        assert!(spread_row(&row(&[("yes", 1.0)]), &values)
            .unwrap_err()
            .contains("outside (0, 1)"));
        assert!(spread_row(&row(&[("maybe", 0.5)]), &values)
            .unwrap_err()
            .contains("unknown value `maybe`"));
        assert!(spread_row(&row(&[("yes", 0.99999999)]), &values)
            .unwrap_err()
            .contains("nothing for"));
    }

    #[test]
    fn a_parse_error_names_line_and_column() {
        let error = Model::from_toml("format_version = 1\nmodel_version = \n").unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(error.column.is_some());
        let error = Model::from_toml("format_version = 1\nbogus = 3\n").unwrap_err();
        assert!(error.message.contains("bogus"), "{}", error.message);
    }

    #[test]
    fn the_shipped_model_parses_and_round_trips_through_json() {
        let model = Model::shipped();
        let json = serde_json::to_string(&model).unwrap();
        assert_eq!(serde_json::from_str::<Model>(&json).unwrap(), model);
    }
}
