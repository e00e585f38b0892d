//! Article ranking: Thompson sampling is seeded and explores; the Wilson bound ranks by evidence.

mod common;

use common::{small_model, SMALL_MODEL};
use engine::articles::wilson_lower_bound;
use engine::{CompiledModel, Model, OutcomeCounts, Session};

#[test]
fn the_same_seed_and_evidence_rank_articles_the_same_way() {
    let model = small_model();
    let mut session = Session::new(42);
    session.answer(&model, "by_ip_works", "yes").unwrap();
    assert_eq!(
        session.state(&model).unwrap().articles,
        session.state(&model).unwrap().articles
    );
}

#[test]
fn thompson_sampling_sometimes_explores_an_uncertain_article() {
    // Two articles with the same expected rate for every cause; one is backed by many outcomes,
    // the other by none, so only the sampled ranking can tell them apart.
    let mut document = Model::from_toml(SMALL_MODEL).unwrap();
    let dns = document
        .articles
        .iter()
        .position(|a| a.id == "kb-dns")
        .unwrap();
    let mut twin = document.articles[dns].clone();
    twin.id = "kb-dns-new".into();
    document.articles.push(twin);
    let model = CompiledModel::new(document).unwrap();
    let mut first = std::collections::BTreeMap::new();
    for seed in 0..200 {
        let mut session = Session::new(seed);
        session.answer(&model, "by_ip_works", "yes").unwrap();
        let top = session.state(&model).unwrap().articles[0].id.clone();
        *first.entry(top).or_insert(0) += 1;
    }
    assert!(first.get("kb-dns").copied().unwrap_or(0) > 20, "{first:?}");
    assert!(
        first.get("kb-dns-new").copied().unwrap_or(0) > 20,
        "{first:?}"
    );
}

#[test]
fn outcomes_shrink_toward_the_article_overall_rate_and_move_its_score() {
    let mut document = Model::from_toml(SMALL_MODEL).unwrap();
    let wake = document
        .articles
        .iter()
        .position(|a| a.id == "kb-wake")
        .unwrap();
    // The wake article turned out to fix clock problems (the wake-up resynchronised the clock).
    document.articles[wake].outcomes.insert(
        "clock-skew".into(),
        OutcomeCounts {
            resolved: 40.0,
            failed: 0.0,
        },
    );
    let learned = CompiledModel::new(document).unwrap();
    let model = small_model();
    let mut session = Session::new(1);
    session.answer(&model, "error_code", "7431").unwrap();
    let chance = |m: &CompiledModel| {
        session
            .state(m)
            .unwrap()
            .articles
            .iter()
            .find(|a| a.id == "kb-wake")
            .unwrap()
            .probability
    };
    assert!(
        chance(&learned) > chance(&model) + 0.3,
        "{} vs {}",
        chance(&learned),
        chance(&model)
    );
}

#[test]
fn the_wilson_bound_prefers_more_evidence_at_the_same_rate() {
    assert!(wilson_lower_bound(45.0, 50.0, 1.96) > wilson_lower_bound(9.0, 10.0, 1.96));
    assert!(wilson_lower_bound(9.0, 10.0, 1.96) < 0.9);
}
