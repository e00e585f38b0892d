//! Model validation: every defect in a model document, each with where it is.

use std::collections::{BTreeMap, HashSet};

use crate::codes::CodePattern;
use crate::model::{
    row_for, spread_row, AnswerInput, LikelihoodRow, Model, DEFAULT_ROW, DONT_KNOW, FORMAT_VERSION,
    LEAK_CAUSE,
};

/// One defect in a model, e.g. at `questions[on_vpn].likelihood[dns-stale]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the defect is, as a path into the document.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem in `model`; an empty list means the engine can use it.
pub fn validate(model: &Model) -> Vec<Problem> {
    let mut problems = Problems::default();
    if model.format_version != FORMAT_VERSION {
        problems.add(
            "format_version",
            format!(
                "format {} is not supported (this engine reads {FORMAT_VERSION})",
                model.format_version
            ),
        );
    }
    if model.model_version.trim().is_empty() {
        problems.add("model_version", "must not be empty");
    }
    check_settings(model, &mut problems);
    let causes = check_causes(model, &mut problems);
    check_questions(model, &causes, &mut problems);
    check_checks(model, &causes, &mut problems);
    check_fixes(model, &causes, &mut problems);
    check_articles(model, &causes, &mut problems);
    problems.list
}

#[derive(Default)]
struct Problems {
    list: Vec<Problem>,
}

impl Problems {
    fn add(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.list.push(Problem {
            location: location.into(),
            message: message.into(),
        });
    }

    fn duplicates<'a>(&mut self, section: &str, ids: impl IntoIterator<Item = &'a str>) {
        let mut seen = HashSet::new();
        for id in ids {
            if id.trim().is_empty() {
                self.add(format!("{section}[]"), "an id must not be empty");
            } else if !seen.insert(id) {
                self.add(format!("{section}[{id}]"), format!("duplicate id `{id}`"));
            }
        }
    }
}

fn in_open_unit(p: f64) -> bool {
    p > 0.0 && p < 1.0
}

fn check_settings(model: &Model, problems: &mut Problems) {
    let s = &model.settings;
    let ranges: [(&str, f64, bool, &str); 10] = [
        ("slip", s.slip, (0.0..0.5).contains(&s.slip), "in [0, 0.5)"),
        (
            "dont_know_rate",
            s.dont_know_rate,
            (0.0..1.0).contains(&s.dont_know_rate),
            "in [0, 1)",
        ),
        (
            "stop_threshold",
            s.stop_threshold,
            in_open_unit(s.stop_threshold),
            "in (0, 1)",
        ),
        (
            "min_information_gain",
            s.min_information_gain,
            s.min_information_gain >= 0.0,
            "at least 0",
        ),
        (
            "tie_tolerance",
            s.tie_tolerance,
            s.tie_tolerance >= 0.0,
            "at least 0",
        ),
        (
            "question_cost",
            s.question_cost,
            s.question_cost > 0.0,
            "positive",
        ),
        (
            "escalation_cost",
            s.escalation_cost,
            s.escalation_cost > 0.0,
            "positive",
        ),
        (
            "likelihood_strength",
            s.likelihood_strength,
            s.likelihood_strength > 0.0,
            "positive",
        ),
        (
            "article_prior_strength",
            s.article_prior_strength,
            s.article_prior_strength > 0.0,
            "positive",
        ),
        (
            "article_shrinkage",
            s.article_shrinkage,
            s.article_shrinkage >= 0.0,
            "at least 0",
        ),
    ];
    for (name, value, ok, range) in ranges {
        if !ok {
            problems.add(
                format!("settings.{name}"),
                format!("is {value}, must be {range}"),
            );
        }
    }
}

/// Checks the catalogue and returns the cause ids in order.
fn check_causes<'a>(model: &'a Model, problems: &mut Problems) -> Vec<&'a str> {
    problems.duplicates("causes", model.causes.iter().map(|c| c.id.as_str()));
    for cause in &model.causes {
        if !(cause.prior > 0.0 && cause.prior.is_finite()) {
            problems.add(
                format!("causes[{}].prior", cause.id),
                format!("is {}, must be a positive pseudo-count", cause.prior),
            );
        }
        if cause.id == DEFAULT_ROW {
            problems.add(
                format!("causes[{}]", cause.id),
                format!("`{DEFAULT_ROW}` is reserved for default likelihood rows"),
            );
        }
    }
    if !model.causes.iter().any(|c| c.id == LEAK_CAUSE) {
        problems.add(
            "causes",
            format!("the leak cause `{LEAK_CAUSE}` is missing"),
        );
    }
    model.causes.iter().map(|c| c.id.as_str()).collect()
}

fn check_questions(model: &Model, causes: &[&str], problems: &mut Problems) {
    let observation_ids = model
        .questions
        .iter()
        .map(|q| q.id.as_str())
        .chain(model.checks.iter().map(|c| c.id.as_str()));
    problems.duplicates("questions and checks", observation_ids);
    problems.duplicates("groups", model.groups.iter().map(|g| g.id.as_str()));
    for group in &model.groups {
        if !(group.temperature > 0.0 && group.temperature <= 1.0) {
            problems.add(
                format!("groups[{}].temperature", group.id),
                format!("is {}, must be in (0, 1]", group.temperature),
            );
        }
        let members = model
            .questions
            .iter()
            .filter(|q| q.group.as_deref() == Some(&group.id))
            .count();
        if members < 2 {
            problems.add(
                format!("groups[{}]", group.id),
                format!("has {members} question(s); a group needs at least 2"),
            );
        }
    }
    for question in &model.questions {
        let at = format!("questions[{}]", question.id);
        problems.duplicates(
            &format!("{at}.answers"),
            question.answers.iter().map(|a| a.id.as_str()),
        );
        if !question.answers.iter().any(|a| a.id == DONT_KNOW) {
            problems.add(
                format!("{at}.answers"),
                format!("must offer `{DONT_KNOW}` (\"I don't know\")"),
            );
        }
        let values: Vec<&str> = question
            .informative_answers()
            .map(|a| a.id.as_str())
            .collect();
        if values.len() < 2 {
            problems.add(
                format!("{at}.answers"),
                "needs at least two answers besides `dont_know`",
            );
        }
        if question.text.trim().is_empty() {
            problems.add(format!("{at}.text"), "must not be empty");
        }
        if let Some(group) = &question.group {
            if !model.groups.iter().any(|g| &g.id == group) {
                problems.add(format!("{at}.group"), format!("unknown group `{group}`"));
            }
        }
        if let Some(cost) = question.cost {
            if cost <= 0.0 {
                problems.add(format!("{at}.cost"), format!("is {cost}, must be positive"));
            }
        }
        if let Some(rate) = question.dont_know_rate {
            if !(0.0..1.0).contains(&rate) {
                problems.add(
                    format!("{at}.dont_know_rate"),
                    format!("is {rate}, must be in [0, 1)"),
                );
            }
        }
        check_codes(question, &at, problems);
        let base_dont_know = question.base_dont_know_rate(&model.settings);
        let informative_dont_know = question.dont_know_is_informative();
        let rows = check_rows(&at, &question.likelihood, causes, &values, true, problems);
        if let Some(rows) = rows {
            let effective: Vec<Vec<f64>> = rows
                .into_iter()
                .map(|(row, dont_know)| {
                    let mut full = row;
                    if informative_dont_know {
                        full.push(dont_know.unwrap_or(base_dont_know));
                    }
                    full
                })
                .collect();
            if all_equal(&effective) {
                problems.add(
                    format!("{at}.likelihood"),
                    "every cause has the same likelihoods, so no answer can change any posterior",
                );
            }
        }
    }
}

fn check_codes(question: &crate::model::Question, at: &str, problems: &mut Problems) {
    let with_codes = question.answers.iter().filter(|a| !a.codes.is_empty());
    if question.input != AnswerInput::Code {
        if let Some(answer) = with_codes.into_iter().next() {
            problems.add(
                format!("{at}.answers[{}].codes", answer.id),
                "codes apply only to questions with input = \"code\"",
            );
        }
        if question.unmatched_code.is_some() {
            problems.add(
                format!("{at}.unmatched_code"),
                "applies only to questions with input = \"code\"",
            );
        }
        return;
    }
    let mut patterns: Vec<(&str, CodePattern)> = Vec::new();
    for answer in &question.answers {
        for code in &answer.codes {
            match CodePattern::parse(code) {
                Some(pattern) => {
                    if let Some((other, _)) = patterns.iter().find(|(_, p)| p.overlaps(pattern)) {
                        problems.add(
                            format!("{at}.answers[{}].codes", answer.id),
                            format!("`{code}` overlaps the codes of `{other}`"),
                        );
                    }
                    patterns.push((answer.id.as_str(), pattern));
                }
                None => problems.add(
                    format!("{at}.answers[{}].codes", answer.id),
                    format!("`{code}` is not a code (0x904, 2308) or a range (256-267)"),
                ),
            }
        }
    }
    match &question.unmatched_code {
        Some(value) if !question.answers.iter().any(|a| &a.id == value) => {
            problems.add(
                format!("{at}.unmatched_code"),
                format!("unknown answer `{value}`"),
            );
        }
        Some(_) => {}
        None => problems.add(
            format!("{at}.unmatched_code"),
            "a code question must name the answer for codes that match no value",
        ),
    }
}

fn check_checks(model: &Model, causes: &[&str], problems: &mut Problems) {
    for check in &model.checks {
        let at = format!("checks[{}]", check.id);
        problems.duplicates(
            &format!("{at}.outcomes"),
            check.outcomes.iter().map(|o| o.id.as_str()),
        );
        if check.cost <= 0.0 {
            problems.add(
                format!("{at}.cost"),
                format!("is {}, must be positive", check.cost),
            );
        }
        if !(0.0..1.0).contains(&check.fails_to_run) {
            problems.add(
                format!("{at}.fails_to_run"),
                format!("is {}, must be in [0, 1)", check.fails_to_run),
            );
        }
        let values: Vec<&str> = check.outcomes.iter().map(|o| o.id.as_str()).collect();
        if values.len() < 2 {
            problems.add(format!("{at}.outcomes"), "needs at least two outcomes");
        }
        if let Some(rows) = check_rows(&at, &check.likelihood, causes, &values, false, problems) {
            let effective: Vec<Vec<f64>> = rows.into_iter().map(|(row, _)| row).collect();
            if all_equal(&effective) {
                problems.add(
                    format!("{at}.likelihood"),
                    "every cause has the same likelihoods, so no outcome can change any posterior",
                );
            }
        }
    }
}

/// Checks every row of a likelihood table; returns, per cause, its distribution over `values`
/// and its own "I don't know" probability, or None when some row is defective.
fn check_rows(
    at: &str,
    likelihood: &BTreeMap<String, LikelihoodRow>,
    causes: &[&str],
    values: &[&str],
    allows_dont_know: bool,
    problems: &mut Problems,
) -> Option<Vec<(Vec<f64>, Option<f64>)>> {
    let before = problems.list.len();
    for (key, row) in likelihood {
        let location = format!("{at}.likelihood[{key}]");
        if key != DEFAULT_ROW && !causes.contains(&key.as_str()) {
            problems.add(&location, format!("unknown cause `{key}`"));
        }
        if !allows_dont_know && row.contains_key(DONT_KNOW) {
            problems.add(
                &location,
                format!("checks have no `{DONT_KNOW}`; a check that cannot run is `fails_to_run`"),
            );
        }
        if let Err(message) = spread_row(row, values) {
            problems.add(&location, message);
        }
    }
    for cause in causes {
        if row_for(likelihood, cause).is_none() {
            problems.add(
                format!("{at}.likelihood[{cause}]"),
                format!("no row for cause `{cause}` and no `{DEFAULT_ROW}` row"),
            );
        }
    }
    if problems.list.len() > before {
        return None;
    }
    causes
        .iter()
        .map(|cause| {
            let row = row_for(likelihood, cause)?;
            Some((spread_row(row, values).ok()?, row.get(DONT_KNOW).copied()))
        })
        .collect()
}

fn all_equal(rows: &[Vec<f64>]) -> bool {
    rows.windows(2).all(|pair| {
        pair[0]
            .iter()
            .zip(&pair[1])
            .all(|(a, b)| (a - b).abs() < 1e-12)
    })
}

fn check_fixes(model: &Model, causes: &[&str], problems: &mut Problems) {
    problems.duplicates("fixes", model.fixes.iter().map(|f| f.id.as_str()));
    for fix in &model.fixes {
        let at = format!("fixes[{}]", fix.id);
        if fix.cost <= 0.0 {
            problems.add(
                format!("{at}.cost"),
                format!("is {}, must be positive", fix.cost),
            );
        }
        if fix.resolves.is_empty() {
            problems.add(
                format!("{at}.resolves"),
                "no cause needs this fix: it resolves none",
            );
        }
        for (cause, p) in &fix.resolves {
            let location = format!("{at}.resolves[{cause}]");
            if !causes.contains(&cause.as_str()) {
                problems.add(&location, format!("unknown cause `{cause}`"));
            }
            if !in_open_unit(*p) {
                problems.add(&location, format!("probability {p} is outside (0, 1)"));
            }
        }
    }
}

fn check_articles(model: &Model, causes: &[&str], problems: &mut Problems) {
    problems.duplicates("articles", model.articles.iter().map(|a| a.id.as_str()));
    for article in &model.articles {
        let at = format!("articles[{}]", article.id);
        if article.fixes.is_empty() {
            problems.add(
                format!("{at}.fixes"),
                "an article must describe at least one fix",
            );
        }
        for fix in &article.fixes {
            if !model.fixes.iter().any(|f| &f.id == fix) {
                problems.add(format!("{at}.fixes[{fix}]"), format!("unknown fix `{fix}`"));
            }
        }
        for (cause, counts) in &article.outcomes {
            let location = format!("{at}.outcomes[{cause}]");
            if !causes.contains(&cause.as_str()) {
                problems.add(&location, format!("unknown cause `{cause}`"));
            }
            let valid = |x: f64| x >= 0.0 && x.is_finite();
            if !valid(counts.resolved) || !valid(counts.failed) {
                problems.add(&location, "counts must be finite and not negative");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_model_has_no_problems() {
        let problems = validate(&Model::shipped());
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
