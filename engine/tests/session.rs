//! The session API: typed errors that change nothing, state contents, serialisation.

mod common;

use common::{probability, small_model};
use engine::{CheckResult, CompiledModel, Session, SessionError, StepKind};

fn started(model: &CompiledModel) -> Session {
    let mut session = Session::new(7);
    session.answer(model, "error_code", "0x904").unwrap();
    session.answer(model, "by_ip_works", "no").unwrap();
    session
}

#[test]
fn an_unknown_question_is_refused_by_name_and_changes_nothing() {
    let model = small_model();
    let mut session = started(&model);
    let before = session.clone();
    let error = session.answer(&model, "on_vpm", "yes").unwrap_err();
    assert_eq!(error, SessionError::UnknownQuestion("on_vpm".into()));
    assert_eq!(error.to_string(), "unknown question `on_vpm`");
    assert_eq!(session, before);
}

#[test]
fn an_answer_the_question_does_not_have_is_refused_with_the_allowed_values() {
    let model = small_model();
    let mut session = started(&model);
    let before = session.clone();
    let error = session.answer(&model, "by_ip_works", "maybe").unwrap_err();
    assert_eq!(
        error.to_string(),
        "question `by_ip_works` has no answer `maybe` (expected one of: yes, no, dont_know)"
    );
    assert_eq!(session, before);
    let error = session.answer(&model, "error_code", "no idea").unwrap_err();
    assert!(matches!(error, SessionError::NotACode { .. }), "{error}");
    assert_eq!(session, before);
}

#[test]
fn bad_check_fix_and_article_input_is_refused_and_changes_nothing() {
    let model = small_model();
    let mut session = started(&model);
    let before = session.clone();
    assert_eq!(
        session.record_check(&model, "clock", CheckResult::NotRun),
        Err(SessionError::UnknownCheck("clock".into()))
    );
    assert!(matches!(
        session.record_check(&model, "clock-compare", CheckResult::Outcome("late".into())),
        Err(SessionError::UnknownOutcome { .. })
    ));
    assert_eq!(
        session.record_check(&model, "by_ip_works", CheckResult::NotRun),
        Err(SessionError::UnknownCheck("by_ip_works".into()))
    );
    assert_eq!(
        session.record_fix(&model, "reboot", false),
        Err(SessionError::UnknownFix("reboot".into()))
    );
    assert_eq!(
        session.record_articles(&model, &["kb-dns", "kb-nope"], None),
        Err(SessionError::UnknownArticle("kb-nope".into()))
    );
    assert_eq!(
        session.record_articles(&model, &["kb-dns"], Some("kb-wake")),
        Err(SessionError::NotShown("kb-wake".into()))
    );
    assert_eq!(
        session.close(&model, Some("gremlins")),
        Err(SessionError::UnknownCause("gremlins".into()))
    );
    assert_eq!(session, before);
    session.record_fix(&model, "flush-dns", false).unwrap();
    let after_fix = session.clone();
    assert_eq!(
        session.record_fix(&model, "flush-dns", true),
        Err(SessionError::AlreadyRecorded("flush-dns".into()))
    );
    assert_eq!(session, after_fix);
}

#[test]
fn a_closed_session_takes_no_more_evidence_and_still_reads() {
    let model = small_model();
    let mut session = started(&model);
    session.close(&model, Some("dns-stale")).unwrap();
    let closed = session.clone();
    assert_eq!(
        session.answer(&model, "by_ip_works", "yes"),
        Err(SessionError::Closed)
    );
    assert_eq!(
        session.record_check(&model, "clock-compare", CheckResult::NotRun),
        Err(SessionError::Closed)
    );
    assert_eq!(
        session.record_fix(&model, "flush-dns", true),
        Err(SessionError::Closed)
    );
    assert_eq!(session.close(&model, None), Err(SessionError::Closed));
    assert_eq!(session, closed);
    let state = session.state(&model).unwrap();
    assert!(state.closed && state.stop_asking && state.next_step.is_none());
}

#[test]
fn codes_are_matched_as_typed_and_stored_as_answer_ids() {
    let model = small_model();
    let mut session = Session::new(1);
    session
        .answer(&model, "error_code", "Error code: 0x1D07")
        .unwrap();
    assert_eq!(session.answers()["error_code"], "time");
    session.answer(&model, "error_code", "0x204").unwrap();
    assert_eq!(session.answers()["error_code"], "other-code");
}

#[test]
fn the_state_ranks_causes_orders_fixes_and_articles_and_says_what_to_ask() {
    let model = small_model();
    let mut session = Session::new(3);
    let first = session.state(&model).unwrap();
    assert_eq!(
        first.next_step.as_ref().map(|s| s.id.as_str()),
        Some("error_code"),
        "the intake comes first"
    );
    assert!(!first.stop_asking);
    session.answer(&model, "error_code", "0x904").unwrap();
    session.answer(&model, "by_ip_works", "yes").unwrap();
    session.answer(&model, "colleagues_connect", "yes").unwrap();
    let state = session.state(&model).unwrap();
    assert_eq!(state.causes[0].id, "dns-stale");
    assert!(state
        .causes
        .windows(2)
        .all(|w| w[0].probability >= w[1].probability));
    assert_eq!(
        state.fixes[0].id, "flush-dns",
        "cheap and likely comes first"
    );
    assert_eq!(state.articles[0].id, "kb-dns");
    assert!(state.expected_cost_of_repair > 0.0);
    if let Some(step) = &state.next_step {
        assert!(step.information_gain_bits > 0.0);
        if step.id == "clock-compare" {
            assert_eq!(
                step.kind,
                StepKind::Check {
                    runs_on: engine::CheckLocation::Client
                }
            );
        }
    }
}

#[test]
fn enough_evidence_says_stop_asking_and_act() {
    let model = small_model();
    let mut session = Session::new(3);
    session.answer(&model, "error_code", "7431").unwrap();
    session
        .record_check(
            &model,
            "clock-compare",
            CheckResult::Outcome("skewed".into()),
        )
        .unwrap();
    let state = session.state(&model).unwrap();
    assert_eq!(state.causes[0].id, "clock-skew");
    assert!(state.causes[0].probability >= 0.9);
    assert!(state.stop_asking && state.next_step.is_none());
    assert_eq!(state.fixes[0].id, "resync-clock");
}

#[test]
fn a_failed_fix_is_evidence_against_the_causes_it_addresses_and_leaves_the_order() {
    let model = small_model();
    let mut session = started(&model);
    let before = probability(&model, &session, "dns-stale");
    session.record_fix(&model, "flush-dns", false).unwrap();
    assert!(probability(&model, &session, "dns-stale") < before);
    let state = session.state(&model).unwrap();
    assert!(
        state.fixes.iter().all(|f| f.id != "flush-dns"),
        "a tried fix is not proposed again"
    );
}

#[test]
fn articles_above_the_one_that_worked_count_as_failed() {
    let model = small_model();
    let mut session = started(&model);
    session
        .record_articles(&model, &["kb-wake", "kb-dns", "kb-clock"], Some("kb-dns"))
        .unwrap();
    let attempts: Vec<(&str, bool)> = session
        .article_attempts()
        .iter()
        .map(|a| (a.id.as_str(), a.resolved))
        .collect();
    assert_eq!(attempts, vec![("kb-wake", false), ("kb-dns", true)]);
    let state = session.state(&model).unwrap();
    assert_eq!(
        state
            .articles
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>(),
        vec!["kb-clock"]
    );
    assert_eq!(
        session.record_articles(&model, &["kb-dns"], None),
        Err(SessionError::AlreadyRecorded("kb-dns".into()))
    );
}

#[test]
fn a_session_round_trips_through_json_with_the_same_state() {
    let model = small_model();
    let mut session = started(&model);
    session
        .record_check(&model, "clock-compare", CheckResult::NotRun)
        .unwrap();
    session.record_fix(&model, "wake-host", false).unwrap();
    let json = serde_json::to_string(&session).unwrap();
    assert!(json.contains(r#""clock-compare":"not_run""#), "{json}");
    let restored: Session = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, session);
    assert_eq!(
        restored.state(&model).unwrap(),
        session.state(&model).unwrap()
    );
    let state_json = serde_json::to_value(session.state(&model).unwrap()).unwrap();
    assert!(state_json["causes"].is_array() && state_json["stop_asking"].is_boolean());
}

#[test]
fn a_stored_session_that_names_ids_the_model_dropped_fails_to_read() {
    let model = small_model();
    let stored = r#"{"seed":1,"answers":{"gone_question":"yes"},"checks":{},"fixes":[],"articles":[],"closed":null}"#;
    let session: Session = serde_json::from_str(stored).unwrap();
    assert_eq!(
        session.state(&model),
        Err(SessionError::UnknownQuestion("gone_question".into()))
    );
}

#[test]
fn the_dialog_codes_shape_the_very_first_chosen_step() {
    let model = CompiledModel::shipped();
    let first_step = |error_code: &str, extended: &str| {
        let mut session = Session::new(1);
        assert_eq!(
            session.state(&model).unwrap().next_step.unwrap().id,
            "error_code"
        );
        session.answer(&model, "error_code", error_code).unwrap();
        assert_eq!(
            session.state(&model).unwrap().next_step.unwrap().id,
            "extended_code"
        );
        session.answer(&model, "extended_code", extended).unwrap();
        let state = session.state(&model).unwrap();
        (state.next_step.unwrap().id, state.causes[0].id.clone())
    };
    let denied = first_step("0x904", "0x7");
    let connect_failed = first_step("0x204", "0x0");
    let time = first_step("7431", "0x7");
    let gateway = first_step("50331672", "0x0");
    let licensing = first_step("0x904", "262");
    assert_eq!(time.1, "clock-skew");
    assert_eq!(gateway.1, "gateway-websocket");
    assert_eq!(licensing.1, "licensing-cache");
    // A refused connection looks at the host's stack first, a failed connect at reachability,
    // a gateway code at the gateway.
    assert_eq!(denied.0, "host-event-log");
    assert_eq!(connect_failed.0, "tcp-connect-from-server");
    assert_eq!(gateway.0, "gateway-probe");
}

#[test]
fn the_host_agents_port_answering_says_nothing_about_the_name() {
    // The server probes the host agent's port at the address that agent reported, not by the
    // name the employee typed: a stale name does not keep it from answering.
    let model = CompiledModel::shipped();
    let mut session = Session::new(1);
    session.answer(&model, "error_code", "0x204").unwrap();
    session
        .record_check(
            &model,
            "dns-resolve",
            CheckResult::Outcome("differs".into()),
        )
        .unwrap();
    let stale_against_other = |session: &Session| {
        probability(&model, session, "dns-stale") / probability(&model, session, "other")
    };
    let before = stale_against_other(&session);
    session
        .record_check(
            &model,
            "agent-port-connect",
            CheckResult::Outcome("open".into()),
        )
        .unwrap();
    let after = stale_against_other(&session);
    assert!(
        (after / before - 1.0).abs() < 0.1,
        "dns-stale against other moved from {before} to {after}"
    );
}

#[test]
fn a_dialog_that_names_credssp_or_the_lsa_points_at_its_cause() {
    let model = CompiledModel::shipped();
    let after_dialog = |text: &str| {
        let mut session = Session::new(1);
        session.answer(&model, "error_code", "0x904").unwrap();
        session.answer(&model, "extended_code", "0x7").unwrap();
        session.answer(&model, "dialog_text", text).unwrap();
        let state = session.state(&model).unwrap();
        (state.causes[0].id.clone(), state.causes[0].probability)
    };
    let (credssp, credssp_p) = after_dialog("credssp");
    let (lsa, _) = after_dialog("lsa");
    let (_, generic_p) = after_dialog("authentication");
    assert_eq!(credssp, "credssp-oracle");
    assert_eq!(lsa, "nla-domain");
    assert!(
        credssp_p > generic_p + 0.2,
        "naming CredSSP ({credssp_p}) tells more than a plain authentication error ({generic_p})"
    );
}
