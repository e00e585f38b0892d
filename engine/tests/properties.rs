//! Property tests over random evidence, with the engine's own seeded generator.

mod common;

use common::{random_evidence, small_model, Evidence};
use engine::rng::Rng;
use engine::{CheckResult, CompiledModel, Session};

const TRIALS: u64 = 200;

fn models() -> Vec<(&'static str, CompiledModel)> {
    vec![
        ("small", small_model()),
        ("shipped", CompiledModel::shipped()),
    ]
}

#[test]
fn the_posterior_sums_to_one_and_no_cause_reaches_zero() {
    for (name, model) in models() {
        let mut rng = Rng::seeded(11);
        for trial in 0..TRIALS {
            let mut session = Session::new(trial);
            for evidence in random_evidence(&model, &mut rng) {
                evidence.apply(&model, &mut session);
                let state = session.state(&model).unwrap();
                let total: f64 = state.causes.iter().map(|c| c.probability).sum();
                assert!(
                    (total - 1.0).abs() < 1e-9,
                    "{name} trial {trial}: sum {total}"
                );
                assert!(
                    state.causes.iter().all(|c| c.probability > 0.0),
                    "{name} trial {trial}: a cause reached 0"
                );
            }
        }
    }
}

#[test]
fn no_cause_reaches_zero_even_against_overwhelming_evidence() {
    let model = CompiledModel::shipped();
    let mut session = Session::new(1);
    // Everything points at the clock, most of it twice over.
    session.answer(&model, "error_code", "7431").unwrap();
    session.answer(&model, "clock_right", "wrong").unwrap();
    session.answer(&model, "other_sites_warn", "yes").unwrap();
    session
        .record_check(
            &model,
            "clock-compare",
            CheckResult::Outcome("skewed".into()),
        )
        .unwrap();
    session
        .record_check(
            &model,
            "rdp-tls",
            CheckResult::Outcome("cert-expired".into()),
        )
        .unwrap();
    session.record_fix(&model, "resync-clock", true).unwrap();
    let state = session.state(&model).unwrap();
    assert_eq!(state.causes[0].id, "clock-skew");
    assert!(state.causes[0].probability > 0.999);
    assert!(state.causes.iter().all(|c| c.probability > 0.0));
}

#[test]
fn the_order_of_answers_does_not_matter() {
    for (name, model) in models() {
        let mut rng = Rng::seeded(12);
        for trial in 0..TRIALS {
            let evidence = random_evidence(&model, &mut rng);
            let mut shuffled = evidence.clone();
            rng.shuffle(&mut shuffled);
            let (mut forward, mut reordered) = (Session::new(trial), Session::new(trial));
            evidence.iter().for_each(|e| e.apply(&model, &mut forward));
            shuffled
                .iter()
                .for_each(|e| e.apply(&model, &mut reordered));
            let (a, b) = (
                forward.state(&model).unwrap(),
                reordered.state(&model).unwrap(),
            );
            for (x, y) in a.causes.iter().zip(&b.causes) {
                assert_eq!(x.id, y.id, "{name} trial {trial}");
                assert!(
                    (x.probability - y.probability).abs() < 1e-12,
                    "{name} trial {trial}"
                );
            }
            assert_eq!(a.next_step, b.next_step, "{name} trial {trial}");
        }
    }
}

#[test]
fn an_uninformative_dont_know_or_a_check_that_did_not_run_changes_nothing() {
    let model = CompiledModel::shipped();
    let mut rng = Rng::seeded(13);
    for trial in 0..TRIALS {
        let mut session = Session::new(trial);
        random_evidence(&model, &mut rng)
            .iter()
            .filter(|e| !matches!(e, Evidence::Answer(q, _) if q == "on_vpn"))
            .filter(|e| !matches!(e, Evidence::Check(c, _) if c == "tcp-connect"))
            .for_each(|e| e.apply(&model, &mut session));
        let before = session.state(&model).unwrap();
        session.answer(&model, "on_vpn", "dont_know").unwrap();
        session
            .record_check(&model, "tcp-connect", CheckResult::NotRun)
            .unwrap();
        let after = session.state(&model).unwrap();
        assert_eq!(before.causes, after.causes, "trial {trial}");
    }
}

#[test]
fn a_dont_know_the_model_gives_likelihoods_is_evidence() {
    let model = small_model();
    let mut session = Session::new(1);
    let before = common::probability(&model, &session, "host-offline");
    session
        .answer(&model, "host_may_be_off", "dont_know")
        .unwrap();
    // P(dont_know | host-offline) = 0.5 against 0.2 elsewhere.
    assert!(common::probability(&model, &session, "host-offline") > before);
}

#[test]
fn a_question_group_counts_its_second_answer_at_the_groups_temperature() {
    let model = small_model();
    let mut one = Session::new(1);
    one.answer(&model, "colleagues_connect", "yes").unwrap();
    let mut two = one.clone();
    two.answer(&model, "other_computer_works", "yes").unwrap();
    let ratio = |session: &Session| {
        common::probability(&model, session, "dns-stale")
            / common::probability(&model, session, "host-offline")
    };
    // With slip 0.1 each "yes" has likelihood 0.9·0.8 + 0.1·0.2 = 0.74 under dns-stale and
    // 0.9·0.2 + 0.1·0.8 = 0.26 under host-offline; equal priors. At temperature 0.5 two answers
    // in a group weigh as 1.5 independent ones.
    let single = 0.74 / 0.26;
    assert!((ratio(&one) - single).abs() < 1e-9, "{}", ratio(&one));
    assert!(
        (ratio(&two) - single.powf(1.5)).abs() < 1e-9,
        "{}",
        ratio(&two)
    );
}
