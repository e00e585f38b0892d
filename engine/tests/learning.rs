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
