//! `model check` and validation: each kind of defect is found and located.

mod common;

use common::SMALL_MODEL;
use engine::cli::{check_model, CheckOptions};
use engine::{validate, CompiledModel, Model};

/// The problems of the small model after replacing `from` with `to` in its text.
fn problems_after(from: &str, to: &str) -> Vec<String> {
    assert!(
        SMALL_MODEL.contains(from),
        "the small model has no `{from}`"
    );
    let model = Model::from_toml(&SMALL_MODEL.replacen(from, to, 1)).expect("still parses");
    validate(&model).iter().map(ToString::to_string).collect()
}

fn assert_problem(problems: &[String], expected: &str) {
    assert!(
        problems.iter().any(|p| p.contains(expected)),
        "no problem containing {expected:?} in {problems:#?}"
    );
}

#[test]
fn the_small_and_the_shipped_models_are_valid() {
    assert_eq!(validate(&Model::from_toml(SMALL_MODEL).unwrap()), vec![]);
    assert_eq!(validate(&Model::shipped()), vec![]);
}

#[test]
fn an_unknown_cause_in_a_likelihood_row_is_located() {
    let problems = problems_after("dns-stale = { yes = 0.9 }", "dns-stal = { yes = 0.9 }");
    assert_problem(
        &problems,
        "questions[by_ip_works].likelihood[dns-stal]: unknown cause `dns-stal`",
    );
}

#[test]
fn an_unknown_answer_value_in_a_row_is_located() {
    let problems = problems_after("dns-stale = { yes = 0.9 }", "dns-stale = { maybe = 0.9 }");
    assert_problem(
        &problems,
        "questions[by_ip_works].likelihood[dns-stale]: unknown value `maybe`",
    );
}

#[test]
fn unknown_ids_in_fixes_and_articles_are_located() {
    assert_problem(
        &problems_after(
            "resolves = { clock-skew = 0.9 }",
            "resolves = { clock = 0.9 }",
        ),
        "fixes[resync-clock].resolves[clock]: unknown cause `clock`",
    );
    assert_problem(
        &problems_after(r#"fixes = ["wake-host"]"#, r#"fixes = ["wake"]"#),
        "articles[kb-wake].fixes[wake]: unknown fix `wake`",
    );
    assert_problem(
        &problems_after(r#"group = "only-me""#, r#"group = "only-you""#),
        "questions[colleagues_connect].group: unknown group `only-you`",
    );
}

#[test]
fn probabilities_outside_the_open_unit_interval_are_refused() {
    assert_problem(
        &problems_after("dns-stale = { yes = 0.9 }", "dns-stale = { yes = 1.0 }"),
        "questions[by_ip_works].likelihood[dns-stale]: probability of `yes` is 1, outside (0, 1)",
    );
    assert_problem(
        &problems_after(
            "resolves = { clock-skew = 0.9 }",
            "resolves = { clock-skew = 0.0 }",
        ),
        "fixes[resync-clock].resolves[clock-skew]: probability 0 is outside (0, 1)",
    );
    assert_problem(
        &problems_after(
            "default = { skewed = 0.02 }",
            "default = { skewed = 0.5, in-sync = 0.6 }",
        ),
        "checks[clock-compare].likelihood[default]: probabilities sum to 1.1, not 1",
    );
}

#[test]
fn a_cause_without_a_row_is_a_missing_row() {
    let problems = problems_after("default = { skewed = 0.02 }\n", "");
    assert_problem(&problems, "checks[clock-compare].likelihood[dns-stale]: no row for cause `dns-stale` and no `default` row");
    assert_problem(
        &problems,
        "checks[clock-compare].likelihood[other]: no row for cause `other`",
    );
}

#[test]
fn a_question_that_cannot_change_any_posterior_is_reported() {
    let problems = problems_after("dns-stale = { yes = 0.9 }", "dns-stale = { yes = 0.1 }");
    assert_problem(
        &problems,
        "questions[by_ip_works].likelihood: every cause has the same likelihoods",
    );
}

#[test]
fn a_fix_that_no_cause_needs_is_reported() {
    let problems = problems_after("resolves = { clock-skew = 0.9 }", "resolves = {}");
    assert_problem(
        &problems,
        "fixes[resync-clock].resolves: no cause needs this fix",
    );
}

#[test]
fn duplicate_ids_are_reported() {
    assert_problem(
        &problems_after(r#"id = "wake-host""#, r#"id = "flush-dns""#),
        "fixes[flush-dns]: duplicate id `flush-dns`",
    );
    assert_problem(
        &problems_after(r#"id = "clock-compare""#, r#"id = "by_ip_works""#),
        "questions and checks[by_ip_works]: duplicate id",
    );
    assert_problem(
        &problems_after(
            r#"id = "no", label = "No" },"#,
            r#"id = "yes", label = "No" },"#,
        ),
        "questions[by_ip_works].answers[yes]: duplicate id `yes`",
    );
}

#[test]
fn a_missing_leak_cause_and_a_bad_code_are_reported() {
    assert_problem(
        &problems_after(r#"id = "other""#, r#"id = "misc""#),
        "causes: the leak cause `other` is missing",
    );
    assert_problem(
        &problems_after(r#"codes = ["7431"]"#, r#"codes = ["7431", "oops"]"#),
        "questions[error_code].answers[time].codes: `oops` is not a code",
    );
    assert_problem(
        &problems_after(r#"codes = ["7431"]"#, r#"codes = ["0x904"]"#),
        "`0x904` overlaps the codes of `0x904`",
    );
}

#[test]
fn a_model_with_problems_does_not_compile() {
    let model =
        Model::from_toml(&SMALL_MODEL.replace("resolves = { clock-skew = 0.9 }", "resolves = {}"))
            .unwrap();
    let problems = CompiledModel::new(model).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].location, "fixes[resync-clock].resolves");
}

#[test]
fn a_parse_error_names_its_line_and_column() {
    let broken = SMALL_MODEL.replacen("prior = 4.0", "prior = ", 1);
    let error = Model::from_toml(&broken).unwrap_err();
    let line = broken
        .lines()
        .position(|l| l.starts_with("prior = ") && l.trim() == "prior =")
        .unwrap()
        + 1;
    assert_eq!(error.line, Some(line));
    assert!(
        error
            .to_string()
            .starts_with(&format!("line {line}, column")),
        "{error}"
    );
    let misspelt = Model::from_toml(&SMALL_MODEL.replacen("runs_on", "run_on", 1)).unwrap_err();
    assert!(misspelt.message.contains("run_on"), "{misspelt}");
}

#[test]
fn check_prints_every_problem_and_fails_and_passes_a_valid_model() {
    let dir = std::env::temp_dir().join(format!("engine-model-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        SMALL_MODEL
            .replace("resolves = { clock-skew = 0.9 }", "resolves = {}")
            .replace("dns-stale = { yes = 0.9 }", "dns-stal = { yes = 0.9 }"),
    )
    .unwrap();
    let mut out = Vec::new();
    let error = check_model(
        &CheckOptions {
            model: Some(bad.clone()),
        },
        &mut out,
    )
    .unwrap_err();
    let printed = String::from_utf8(out).unwrap();
    assert!(
        printed.contains("fixes[resync-clock].resolves: no cause needs this fix"),
        "{printed}"
    );
    assert!(
        printed.contains("questions[by_ip_works].likelihood[dns-stal]: unknown cause"),
        "{printed}"
    );
    assert!(error.to_string().ends_with("problem(s)"), "{error}");
    assert!(!error.to_string().contains('\n'));

    let unparsable = dir.join("unparsable.toml");
    std::fs::write(&unparsable, "format_version = \n").unwrap();
    let error = check_model(
        &CheckOptions {
            model: Some(unparsable),
        },
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("does not parse: line 1, column"),
        "{error}"
    );

    let mut out = Vec::new();
    check_model(&CheckOptions::default(), &mut out).unwrap();
    assert!(String::from_utf8(out)
        .unwrap()
        .starts_with("the shipped model: ok"));
    std::fs::remove_dir_all(dir).unwrap();
}
