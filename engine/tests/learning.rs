//! Learning: resolved cases move the model the way the counts say.

mod common;

use common::{probability, small_model, SMALL_MODEL};
use engine::{CompiledModel, LearnedCounts, Model, Session, SessionError};

fn resolved_case(model: &CompiledModel, cause: Option<&str>, answers: &[(&str, &str)]) -> Session {
    let mut session = Session::new(1);
    for (question, answer) in answers {
        session.answer(model, question, answer).unwrap();
    }
    session.close(model, cause).unwrap();
    session
}

#[test]
fn confirmed_cases_add_one_count_each_and_the_rows_follow_the_dirichlet_mean() {
    let model = small_model();
    let mut counts = LearnedCounts::default();
    for _ in 0..30 {
        counts
            .add_case(
                &model,
                &resolved_case(&model, Some("clock-skew"), &[("by_ip_works", "yes")]),
            )
            .unwrap();
    }
    assert_eq!(counts.causes["clock-skew"], 30.0);
    assert_eq!(counts.answers["by_ip_works"]["clock-skew"]["yes"], 30.0);

    let learned = Model::from_toml(SMALL_MODEL).unwrap().with_learned(&counts);
    assert_eq!(
        learned
            .causes
            .iter()
            .find(|c| c.id == "clock-skew")
            .unwrap()
            .prior,
        2.0 + 30.0
    );
    // The prior row (0.1 before slip) weighs as likelihood_strength = 10 answers as given:
    // P(yes) = (10 · (0.9·0.1 + 0.1·0.9) + 30) / (10 + 30) = 0.795 as given, which is
    // (0.795 - 0.1) / 0.8 = 0.86875 before slip.
    let row = &learned
        .questions
        .iter()
        .find(|q| q.id == "by_ip_works")
        .unwrap()
        .likelihood["clock-skew"];
    assert!((row["yes"] - 0.86875).abs() < 1e-12, "{row:?}");
    assert!((row["yes"] + row["no"] - 1.0).abs() < 1e-12);

    // Those counts now make "yes" point at clock-skew as well as at dns-stale.
    let learned = CompiledModel::new(learned).unwrap();
    let (mut before, mut after) = (Session::new(1), Session::new(1));
    before.answer(&model, "by_ip_works", "yes").unwrap();
    after.answer(&learned, "by_ip_works", "yes").unwrap();
    assert!(
        probability(&learned, &after, "clock-skew")
            > 2.0 * probability(&model, &before, "clock-skew")
    );
}

#[test]
fn an_unconfirmed_close_spreads_one_case_over_the_posterior() {
    let model = small_model();
    let session = resolved_case(&model, None, &[("by_ip_works", "yes")]);
    let mut counts = LearnedCounts::default();
    counts.add_case(&model, &session).unwrap();
    let total: f64 = counts.causes.values().sum();
    assert!((total - 1.0).abs() < 1e-9, "{total}");
    let dns = counts.causes["dns-stale"];
    assert!((dns - probability(&model, &session, "dns-stale")).abs() < 1e-12);
    assert!((counts.answers["by_ip_works"]["dns-stale"]["yes"] - dns).abs() < 1e-12);
}

#[test]
fn fix_and_article_outcomes_are_learned_per_cause() {
    let model = small_model();
    let mut counts = LearnedCounts::default();
    for _ in 0..10 {
        let mut session = Session::new(1);
        session.record_fix(&model, "flush-dns", false).unwrap();
        session.record_fix(&model, "connect-by-ip", true).unwrap();
        session
            .record_articles(&model, &["kb-wake", "kb-dns"], Some("kb-dns"))
            .unwrap();
        session.close(&model, Some("dns-stale")).unwrap();
        counts.add_case(&model, &session).unwrap();
    }
    let learned = Model::from_toml(SMALL_MODEL).unwrap().with_learned(&counts);
    let flush = learned.fixes.iter().find(|f| f.id == "flush-dns").unwrap();
    // (10 · 0.7 + 0) / (10 + 10)
    assert!((flush.resolves["dns-stale"] - 0.35).abs() < 1e-12);
    let wake = learned.articles.iter().find(|a| a.id == "kb-wake").unwrap();
    assert_eq!(wake.outcomes["dns-stale"].failed, 10.0);
    let dns = learned.articles.iter().find(|a| a.id == "kb-dns").unwrap();
    assert_eq!(dns.outcomes["dns-stale"].resolved, 10.0);

    // The learned article beliefs move kb-dns's chance for a dns-stale case up.
    let learned = CompiledModel::new(learned).unwrap();
    let mut session = Session::new(1);
    session.answer(&model, "by_ip_works", "yes").unwrap();
    let chance = |m: &CompiledModel| {
        session
            .state(m)
            .unwrap()
            .articles
            .iter()
            .find(|a| a.id == "kb-dns")
            .unwrap()
            .probability
    };
    assert!(chance(&learned) > chance(&model));
}

#[test]
fn forgetting_scales_every_count_and_learning_needs_a_closed_session() {
    let model = small_model();
    let mut counts = LearnedCounts::default();
    let mut session = resolved_case(&model, Some("host-offline"), &[("host_may_be_off", "yes")]);
    counts.add_case(&model, &session).unwrap();
    counts.decay(0.5);
    assert_eq!(counts.causes["host-offline"], 0.5);
    assert_eq!(
        counts.answers["host_may_be_off"]["host-offline"]["yes"],
        0.5
    );
    session = Session::new(2);
    assert_eq!(
        counts.add_case(&model, &session),
        Err(SessionError::NotClosed)
    );
}

#[test]
fn learned_counts_round_trip_through_json_for_the_database() {
    let model = small_model();
    let mut counts = LearnedCounts::default();
    counts
        .add_case(
            &model,
            &resolved_case(&model, Some("dns-stale"), &[("by_ip_works", "yes")]),
        )
        .unwrap();
    let json = serde_json::to_string(&counts).unwrap();
    assert_eq!(
        serde_json::from_str::<LearnedCounts>(&json).unwrap(),
        counts
    );
    assert_eq!(
        serde_json::from_str::<LearnedCounts>("{}").unwrap(),
        LearnedCounts::default()
    );
}

/// Counts for every question and check row of the small model: `cases` answers per row in the
/// proportions the model itself gives (slip applied), except where `overrides` says otherwise.
fn counts_like_the_model(cases: f64, overrides: &[(&str, &str, &str)]) -> LearnedCounts {
    let model = Model::from_toml(SMALL_MODEL).unwrap();
    let slip = model.settings.slip;
    let mut counts = LearnedCounts::default();
    for question in &model.questions {
        let values: Vec<&str> = question
            .answers
            .iter()
            .map(|a| a.id.as_str())
            .filter(|v| *v != "dont_know")
            .collect();
        for cause in &model.causes {
            let row = question
                .likelihood
                .get(&cause.id)
                .or_else(|| question.likelihood.get("default"))
                .unwrap();
            let stated_sum: f64 = values.iter().filter_map(|v| row.get(*v)).sum();
            let unstated = values.iter().filter(|v| !row.contains_key(**v)).count() as f64;
            let by_answer = counts
                .answers
                .entry(question.id.clone())
                .or_default()
                .entry(cause.id.clone())
                .or_default();
            for value in &values {
                let stated = row
                    .get(*value)
                    .copied()
                    .unwrap_or((1.0 - stated_sum) / unstated);
                let given =
                    (1.0 - slip) * stated + slip * (1.0 - stated) / (values.len() - 1) as f64;
                by_answer.insert((*value).to_owned(), cases * given);
            }
        }
    }
    for (question, cause, answer) in overrides {
        let by_answer = counts
            .answers
            .get_mut(*question)
            .unwrap()
            .get_mut(*cause)
            .unwrap();
        by_answer.values_mut().for_each(|n| *n = 0.0);
        by_answer.insert((*answer).to_owned(), cases);
    }
    counts
}

#[test]
fn a_fitted_row_prior_keeps_rows_that_agree_and_follows_rows_that_do_not() {
    let model = Model::from_toml(SMALL_MODEL).unwrap();
    // Host-offline cases all say that connecting by IP works, where the model expects 10%.
    let counts = counts_like_the_model(20.0, &[("by_ip_works", "host-offline", "yes")]);
    let prior = counts
        .fit_row_prior(&model)
        .expect("20 rows of 20 cases each");
    assert!(prior.near > prior.far, "{prior:?}");
    assert!(prior.near_share > 0.5, "most rows agree: {prior:?}");

    let learned = model.with_learned_rows(&counts, &prior);
    let row = |question: &str, cause: &str| {
        learned
            .questions
            .iter()
            .find(|q| q.id == question)
            .unwrap()
            .likelihood[cause]["yes"]
    };
    assert!(
        row("by_ip_works", "host-offline") > 0.85,
        "follows the counts"
    );
    assert!(
        (row("by_ip_works", "dns-stale") - 0.9).abs() < 0.01,
        "keeps the model's 0.9"
    );
    assert!(
        (row("colleagues_connect", "clock-skew") - 0.7).abs() < 0.01,
        "keeps the model's 0.7"
    );

    // A single strength of 10 must trust the model's row against twenty cases.
    let fixed = model.with_learned(&counts);
    let fixed_row = fixed
        .questions
        .iter()
        .find(|q| q.id == "by_ip_works")
        .unwrap()
        .likelihood["host-offline"]["yes"];
    assert!(fixed_row < row("by_ip_works", "host-offline"));
}

#[test]
fn too_few_counts_fit_no_row_prior() {
    let model = Model::from_toml(SMALL_MODEL).unwrap();
    assert_eq!(LearnedCounts::default().fit_row_prior(&model), None);
    // One case per row says nothing about a strength.
    assert_eq!(counts_like_the_model(1.0, &[]).fit_row_prior(&model), None);
}
