//! The diagnosis API against a real database: a whole session, refused input that changes
//! nothing, learning from closed cases, the helpdesk's Wilson ranking, and the OpenAPI
//! description checked against the running server.

mod common;

use std::collections::BTreeSet;

use common::{spawn_app, spawn_app_with, test_settings, TestApp};
use engine::articles::wilson_lower_bound;
use engine::{CompiledModel, LearnedCounts, Model, Session};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Stores a case directly, without the portal flow's automatic diagnosis and checks, so that
/// each test drives its session alone; returns its id.
async fn open_case(app: &TestApp, body: Value) -> String {
    let code = |field: &str| {
        body[field]
            .as_str()
            .map(|c| i64::from_str_radix(c.trim_start_matches("0x"), 16).unwrap())
    };
    let id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO cases (id, target_host, target_port, error_code, extended_code) VALUES ($1, $2, 3389, $3, $4)",
    )
    .bind(id)
    .bind(body["host"].as_str().unwrap())
    .bind(code("error_code"))
    .bind(code("extended_code"))
    .execute(&app.pool)
    .await
    .unwrap();
    id.to_string()
}

async fn start(app: &TestApp, case_id: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/api/v1/cases/{case_id}/diagnosis", app.address))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Opens a case without dialog codes and starts a session for it; returns the state.
async fn new_session(app: &TestApp) -> Value {
    let case_id = open_case(app, json!({"host": "pc-0423"})).await;
    let (status, state) = start(app, &case_id).await;
    assert_eq!(status, 201, "{state}");
    state
}

async fn post(app: &TestApp, session: &str, action: &str, body: Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!(
            "{}/api/v1/diagnosis/{session}/{action}",
            app.address
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Posts an action that must be accepted; returns the new state.
async fn ok(app: &TestApp, session: &str, action: &str, body: Value) -> Value {
    let (status, state) = post(app, session, action, body.clone()).await;
    assert_eq!(status, 200, "{action} {body}: {state}");
    state
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    app.get_json(path).await
}

/// The same with a helpdesk account's token (made on first use).
async fn get_as_helpdesk(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let token = server::helpdesk::add_account(&app.pool, "ranking-reader")
        .await
        .unwrap();
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

fn id(state: &Value) -> String {
    state["id"].as_str().unwrap().to_owned()
}

fn probability(state: &Value, cause: &str) -> f64 {
    state["causes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == cause)
        .unwrap_or_else(|| panic!("no cause {cause} in {state}"))["probability"]
        .as_f64()
        .unwrap()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Everything a refused request must leave as it was: the stored session row, its history,
/// and the learned counts.
async fn snapshot(app: &TestApp, session: &str) -> (Value, i64, Value) {
    let row: Value = sqlx::query_scalar(
        "SELECT jsonb_build_object('session', session, 'status', status::text, \
         'updated_at', updated_at, 'closed_at', closed_at, 'confirmed_cause', confirmed_cause) \
         FROM diagnosis_sessions WHERE id = $1::uuid",
    )
    .bind(session)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM diagnosis_events WHERE session_id = $1::uuid")
            .bind(session)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let learned: Value = sqlx::query_scalar(
        "SELECT jsonb_build_array( \
           (SELECT coalesce(jsonb_agg(t ORDER BY cause_id), '[]') FROM learned_cause_counts t), \
           (SELECT coalesce(jsonb_agg(t ORDER BY source, item_id, cause_id, value_id), '[]') FROM learned_observation_counts t), \
           (SELECT coalesce(jsonb_agg(t ORDER BY check_id), '[]') FROM learned_check_runs t), \
           (SELECT coalesce(jsonb_agg(t ORDER BY fix_id, cause_id), '[]') FROM learned_fix_outcomes t), \
           (SELECT coalesce(jsonb_agg(t ORDER BY article_id, cause_id), '[]') FROM article_outcomes t))",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    (row, events, learned)
}

fn assert_is_distribution(state: &Value) {
    let causes = state["causes"].as_array().unwrap();
    let total: f64 = causes
        .iter()
        .map(|c| c["probability"].as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-9, "probabilities sum to {total}");
    let probabilities: Vec<f64> = causes
        .iter()
        .map(|c| c["probability"].as_f64().unwrap())
        .collect();
    assert!(
        probabilities.windows(2).all(|w| w[0] >= w[1]),
        "not ranked: {probabilities:?}"
    );
    assert!(probabilities.iter().all(|p| *p > 0.0));
}

#[tokio::test]
async fn a_diagnosis_session_runs_from_start_to_close_and_keeps_its_history() {
    let app = spawn_app().await;
    let started = new_session(&app).await;
    let session = id(&started);
    assert_is_distribution(&started);
    assert_eq!(started["closed"], false);
    assert_eq!(started["stop_asking"], false);
    assert_eq!(started["model_version"], Model::shipped().model_version);
    // Without codes on the case, the engine asks for the dialog's code first.
    let step = &started["next_step"];
    assert_eq!(step["id"], "error_code");
    assert_eq!(step["kind"], "question");
    assert_eq!(step["input"], "code");
    assert!(step["text"].as_str().unwrap().contains("error code"));
    assert!(ids(&step["answers"]).contains(&"dont_know".to_owned()));
    assert!(!started["fixes"].as_array().unwrap().is_empty());
    assert!(!started["articles"].as_array().unwrap().is_empty());

    // A typed code is matched to the answer it stands for.
    let state = ok(
        &app,
        &session,
        "answers",
        json!({"question": "error_code", "answer": "Error code: 0x1D07"}),
    )
    .await;
    assert_eq!(
        state["evidence"]["answers"]["error_code"],
        "time-difference"
    );
    assert_eq!(state["next_step"]["id"], "extended_code");
    let before_clock = probability(&state, "clock-skew");
    ok(
        &app,
        &session,
        "answers",
        json!({"question": "extended_code", "answer": "0x7"}),
    )
    .await;
    let state = ok(
        &app,
        &session,
        "answers",
        json!({"question": "clock_right", "answer": "wrong"}),
    )
    .await;
    assert!(probability(&state, "clock-skew") > before_clock);
    assert_ne!(state["next_step"]["id"], "clock_right");

    let state = ok(
        &app,
        &session,
        "checks",
        json!({"check": "clock-compare", "outcome": "skewed"}),
    )
    .await;
    assert_eq!(state["causes"][0]["id"], "clock-skew");
    assert_eq!(state["evidence"]["checks"]["clock-compare"], "skewed");
    // A check that could not run is recorded but is no evidence.
    let not_run = ok(
        &app,
        &session,
        "checks",
        json!({"check": "host-event-log", "outcome": "not_run"}),
    )
    .await;
    assert_eq!(not_run["evidence"]["checks"]["host-event-log"], "not_run");
    assert_eq!(not_run["causes"], state["causes"]);

    // A failed fix leaves the proposed order and counts as evidence.
    let first_fix = not_run["fixes"][0]["id"].as_str().unwrap().to_owned();
    let state = ok(
        &app,
        &session,
        "fixes",
        json!({"fix": first_fix, "resolved": false}),
    )
    .await;
    assert!(!ids(&state["fixes"]).contains(&first_fix));
    assert_eq!(
        state["evidence"]["fixes"],
        json!([{"id": first_fix, "resolved": false}])
    );

    // Cascade attribution: the first article shown failed, the second worked.
    let shown: Vec<String> = ids(&state["articles"]).into_iter().take(3).collect();
    let state = ok(
        &app,
        &session,
        "articles",
        json!({"shown": shown, "worked": shown[1]}),
    )
    .await;
    assert_eq!(
        state["evidence"]["articles"],
        json!([{"id": shown[0], "resolved": false}, {"id": shown[1], "resolved": true}])
    );
    let left = ids(&state["articles"]);
    assert!(!left.contains(&shown[0]) && !left.contains(&shown[1]));
    assert!(
        left.contains(&shown[2]),
        "an article below the one that worked was not tried"
    );

    let closed = ok(
        &app,
        &session,
        "close",
        json!({"confirmed_cause": "clock-skew"}),
    )
    .await;
    assert_eq!(closed["closed"], true);
    assert_eq!(closed["confirmed_cause"], "clock-skew");
    assert!(closed["closed_at"].is_string());
    assert_eq!(closed["next_step"], Value::Null);
    assert_eq!(closed["stop_asking"], true);

    let (status, read) = get(&app, &format!("/api/v1/diagnosis/{session}")).await;
    assert_eq!(status, 200);
    assert_eq!(read["evidence"], closed["evidence"]);
    assert_eq!(read["closed_at"], closed["closed_at"]);
    assert_eq!(read["confirmed_cause"], "clock-skew");

    let (status, history) = get(&app, &format!("/api/v1/diagnosis/{session}/events")).await;
    assert_eq!(status, 200);
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["started", "answer", "answer", "answer", "check", "check", "fix", "articles", "closed"]
    );
    assert_eq!(history[1]["subject"], "error_code");
    assert_eq!(
        history[1]["detail"],
        json!({"answer": "Error code: 0x1D07", "recorded": "time-difference"})
    );
    assert_eq!(history[4]["top_cause"], "clock-skew");
    assert_eq!(
        history[7]["detail"]["attributed"],
        json!([{"id": shown[0], "resolved": false}, {"id": shown[1], "resolved": true}])
    );
    assert_eq!(history[8]["subject"], "clock-skew");

    let status: String =
        sqlx::query_scalar("SELECT status::text FROM diagnosis_sessions WHERE id = $1::uuid")
            .bind(&session)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(status, "closed");
    let learned: f64 =
        sqlx::query_scalar("SELECT weight FROM learned_cause_counts WHERE cause_id = 'clock-skew'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(learned, 1.0);
}

#[tokio::test]
async fn a_case_with_dialog_codes_starts_with_its_intake_questions_answered() {
    let app = spawn_app().await;
    let case_id = open_case(
        &app,
        json!({"host": "pc-0423", "error_code": "0x904", "extended_code": "0x7"}),
    )
    .await;
    let (status, state) = start(&app, &case_id).await;
    assert_eq!(status, 201);
    assert_eq!(state["case_id"], case_id);
    assert_eq!(
        state["evidence"]["answers"],
        json!({"error_code": "0x904", "extended_code": "0x7"})
    );
    let next = state["next_step"]["id"].as_str().unwrap();
    assert!(next != "error_code" && next != "extended_code", "{next}");

    // The same evidence in the engine, locally, gives the same ranking.
    let model = CompiledModel::shipped();
    let mut local = Session::new(0);
    local.answer(&model, "error_code", "0x904").unwrap();
    local.answer(&model, "extended_code", "0x7").unwrap();
    let expected = local.state(&model).unwrap();
    for cause in &expected.causes {
        assert!((probability(&state, &cause.id) - cause.probability).abs() < 1e-12);
    }
    assert_eq!(state["next_step"]["id"], expected.next_step.unwrap().id);

    let (_, history) = get(&app, &format!("/api/v1/diagnosis/{}/events", id(&state))).await;
    assert_eq!(history[0]["kind"], "started");
    assert_eq!(
        history[0]["detail"]["prefilled"],
        json!({"error_code": "0x904", "extended_code": "0x7"})
    );
}

#[tokio::test]
async fn a_case_has_at_most_one_open_session() {
    let app = spawn_app().await;
    let case_id = open_case(&app, json!({"host": "pc-0423"})).await;
    let (status, first) = start(&app, &case_id).await;
    assert_eq!(status, 201);
    let (status, error) = start(&app, &case_id).await;
    assert_eq!(status, 409);
    assert_eq!(error["error"]["code"], "conflict");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains(&id(&first)), "{message}");
    assert_eq!(app.count("diagnosis_sessions").await, 1);
    assert_eq!(app.count("diagnosis_events").await, 1);

    ok(&app, &id(&first), "close", json!({})).await;
    let (status, second) = start(&app, &case_id).await;
    assert_eq!(status, 201);
    assert_ne!(id(&second), id(&first));

    for unknown in ["00000000-0000-4000-8000-000000000000", "not-a-uuid"] {
        let (status, error) = start(&app, unknown).await;
        assert_eq!(status, 404, "{unknown}");
        assert_eq!(error["error"]["message"], "no such case");
    }
}

#[tokio::test]
async fn bad_input_gets_a_specific_4xx_and_changes_nothing() {
    let app = spawn_app().await;
    let session = id(&new_session(&app).await);
    ok(
        &app,
        &session,
        "fixes",
        json!({"fix": "flush-dns", "resolved": false}),
    )
    .await;
    ok(&app, &session, "articles", json!({"shown": ["kb-clock"]})).await;
    let before = snapshot(&app, &session).await;
    let cases = [
        (
            "answers",
            json!({"question": "on_vnp", "answer": "yes"}),
            422,
            "invalid_question",
            "unknown question `on_vnp`",
        ),
        (
            "answers",
            json!({"question": "on_vpn", "answer": "maybe"}),
            422,
            "invalid_answer",
            "question `on_vpn` has no answer `maybe` (expected one of: yes, no, dont_know)",
        ),
        (
            "answers",
            json!({"question": "error_code", "answer": "banana"}),
            422,
            "invalid_answer",
            "expects a code such as 0x904, got `banana`",
        ),
        (
            "checks",
            json!({"check": "tcp-conect", "outcome": "open"}),
            422,
            "invalid_check",
            "unknown check `tcp-conect`",
        ),
        (
            "checks",
            json!({"check": "tcp-connect", "outcome": "half-open"}),
            422,
            "invalid_outcome",
            "check `tcp-connect` has no outcome `half-open`",
        ),
        (
            "fixes",
            json!({"fix": "reboot-the-universe", "resolved": true}),
            422,
            "invalid_fix",
            "unknown fix `reboot-the-universe`",
        ),
        (
            "fixes",
            json!({"fix": "flush-dns", "resolved": true}),
            409,
            "conflict",
            "`flush-dns` already has an outcome in this session",
        ),
        (
            "articles",
            json!({"shown": ["kb-vpn-drops", "kb-nope"]}),
            422,
            "invalid_article",
            "unknown article `kb-nope`",
        ),
        (
            "articles",
            json!({"shown": ["kb-vpn-drops"], "worked": "kb-credssp"}),
            422,
            "invalid_worked",
            "article `kb-credssp` was not among the articles shown",
        ),
        (
            "articles",
            json!({"shown": []}),
            422,
            "invalid_shown",
            "list at least one article",
        ),
        (
            "articles",
            json!({"shown": ["kb-clock"]}),
            409,
            "conflict",
            "`kb-clock` already has an outcome",
        ),
        (
            "close",
            json!({"confirmed_cause": "gremlins"}),
            422,
            "invalid_cause",
            "unknown cause `gremlins`",
        ),
        (
            "close",
            json!({"confirmed": "clock-skew"}),
            400,
            "bad_json",
            "unknown field `confirmed`",
        ),
        (
            "answers",
            json!({"question": "on_vpn"}),
            400,
            "bad_json",
            "missing field `answer`",
        ),
        (
            "fixes",
            json!({"fix": "flush-dns", "resolved": "yes"}),
            400,
            "bad_json",
            "invalid type",
        ),
    ];
    for (action, body, status, code, message) in cases {
        let (got, error) = post(&app, &session, action, body.clone()).await;
        assert_eq!(got, status, "{action} {body}: {error}");
        assert_eq!(error["error"]["code"], code, "{action} {body}");
        let text = error["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{action} {body}: {text}");
        assert_eq!(
            snapshot(&app, &session).await,
            before,
            "{action} {body} changed something"
        );
    }
    let malformed = app
        .client
        .post(format!(
            "{}/api/v1/diagnosis/{session}/answers",
            app.address
        ))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    for unknown in ["00000000-0000-4000-8000-000000000000", "not-a-uuid"] {
        let (status, error) = post(
            &app,
            unknown,
            "answers",
            json!({"question": "on_vpn", "answer": "yes"}),
        )
        .await;
        assert_eq!(status, 404);
        assert_eq!(error["error"]["message"], "no such diagnosis session");
        for path in [
            format!("/api/v1/diagnosis/{unknown}"),
            format!("/api/v1/diagnosis/{unknown}/events"),
        ] {
            assert_eq!(get(&app, &path).await.0, 404, "{path}");
        }
    }
    assert_eq!(snapshot(&app, &session).await, before);

    // A closed session takes nothing more, and is not counted twice.
    ok(
        &app,
        &session,
        "close",
        json!({"confirmed_cause": "dns-stale"}),
    )
    .await;
    let closed = snapshot(&app, &session).await;
    assert_ne!(closed, before);
    for (action, body) in [
        ("answers", json!({"question": "on_vpn", "answer": "yes"})),
        ("checks", json!({"check": "tcp-connect", "outcome": "open"})),
        ("fixes", json!({"fix": "reconnect-vpn", "resolved": true})),
        ("articles", json!({"shown": ["kb-vpn-drops"]})),
        ("close", json!({"confirmed_cause": "clock-skew"})),
        ("close", json!({})),
    ] {
        let (status, error) = post(&app, &session, action, body.clone()).await;
        assert_eq!(status, 409, "{action} {body}");
        assert_eq!(error["error"]["message"], "the session is closed");
        assert_eq!(
            snapshot(&app, &session).await,
            closed,
            "{action} {body} changed something"
        );
    }
}

#[tokio::test]
async fn the_same_check_result_twice_is_one_entry_in_the_history() {
    // A finished check and the portal's catch-up may both record it.
    let app = spawn_app().await;
    let session = id(&new_session(&app).await);
    let same = json!({"check": "tcp-connect", "outcome": "no-answer"});
    let first = ok(&app, &session, "checks", same.clone()).await;
    let second = ok(&app, &session, "checks", same).await;
    assert_eq!(first["causes"], second["causes"]);
    let changed = ok(
        &app,
        &session,
        "checks",
        json!({"check": "tcp-connect", "outcome": "open"}),
    )
    .await;
    assert_ne!(
        changed["causes"], first["causes"],
        "a new result replaces the old"
    );
    let (_, events) = get(&app, &format!("/api/v1/diagnosis/{session}/events")).await;
    let checks: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "check")
        .collect();
    assert_eq!(checks.len(), 2, "{events:#}");
}

#[tokio::test]
async fn concurrent_changes_to_one_session_are_all_kept() {
    let app = spawn_app().await;
    let session = id(&new_session(&app).await);
    // Each request reads, changes and writes the stored session: without the row lock, two at
    // once would both start from the same version and one change would be lost.
    let fixes: Vec<String> = Model::shipped()
        .fixes
        .iter()
        .take(12)
        .map(|f| f.id.clone())
        .collect();
    let requests = fixes.iter().map(|fix| {
        post(
            &app,
            &session,
            "fixes",
            json!({"fix": fix, "resolved": false}),
        )
    });
    for (status, state) in futures::future::join_all(requests).await {
        assert_eq!(status, 200, "{state}");
    }
    let (_, state) = get(&app, &format!("/api/v1/diagnosis/{session}")).await;
    let recorded: BTreeSet<String> = ids(&state["evidence"]["fixes"]).into_iter().collect();
    assert_eq!(recorded, fixes.iter().cloned().collect());
    let (_, history) = get(&app, &format!("/api/v1/diagnosis/{session}/events")).await;
    assert_eq!(history.as_array().unwrap().len(), 1 + fixes.len());
}

/// Replays one server-side session on a local engine session, so the test can predict what the
/// server learns.
async fn run_case(app: &TestApp, model: &CompiledModel, actions: &[(&str, Value)]) -> Session {
    let session = id(&new_session(app).await);
    let mut local = Session::new(0);
    for (action, body) in actions {
        ok(app, &session, action, body.clone()).await;
        match *action {
            "answers" => local
                .answer(
                    model,
                    body["question"].as_str().unwrap(),
                    body["answer"].as_str().unwrap(),
                )
                .unwrap(),
            "fixes" => local
                .record_fix(
                    model,
                    body["fix"].as_str().unwrap(),
                    body["resolved"].as_bool().unwrap(),
                )
                .unwrap(),
            "close" => local
                .close(model, body["confirmed_cause"].as_str())
                .unwrap(),
            other => panic!("not replayed locally: {other}"),
        }
    }
    local
}

#[tokio::test]
async fn closing_resolved_cases_moves_new_sessions_the_way_the_counts_say() {
    let app = spawn_app().await;
    let shipped = Model::shipped();
    let total_prior: f64 = shipped.causes.iter().map(|c| c.prior).sum();
    let clock_prior = shipped
        .causes
        .iter()
        .find(|c| c.id == "clock-skew")
        .unwrap()
        .prior;

    let fresh = new_session(&app).await;
    let p0 = probability(&fresh, "clock-skew");
    assert!((p0 - clock_prior / total_prior).abs() < 1e-12);

    // Five cases confirmed as clock skew, each with a wrong clock and a resync that worked.
    const N: usize = 5;
    let mut counts = LearnedCounts::default();
    let expert = CompiledModel::shipped();
    for _ in 0..N {
        let local = run_case(
            &app,
            &expert,
            &[
                (
                    "answers",
                    json!({"question": "clock_right", "answer": "wrong"}),
                ),
                ("fixes", json!({"fix": "resync-clock", "resolved": true})),
                ("close", json!({"confirmed_cause": "clock-skew"})),
            ],
        )
        .await;
        counts.add_case(&expert, &local).unwrap();
    }

    // The prior is the pseudo-count plus the cases: (4 + 5) / (108 + 5).
    let fresh = new_session(&app).await;
    let p1 = probability(&fresh, "clock-skew");
    let by_counts = (clock_prior + N as f64) / (total_prior + N as f64);
    assert!((p1 - by_counts).abs() < 1e-12, "{p1} vs {by_counts}");
    assert!(p1 > p0);
    let other = probability(&fresh, "dns-stale");
    assert!((other - 8.0 / (total_prior + N as f64)).abs() < 1e-12);

    // An uncertain close spreads one case over the causes by the posterior of the model the
    // server runs now (the one learned from the five cases).
    let learned = CompiledModel::new(shipped.with_learned(&counts)).unwrap();
    let local = run_case(
        &app,
        &learned,
        &[
            ("answers", json!({"question": "on_vpn", "answer": "yes"})),
            (
                "answers",
                json!({"question": "intermittent", "answer": "sometimes"}),
            ),
            ("close", json!({})),
        ],
    )
    .await;
    counts.add_case(&learned, &local).unwrap();
    let learned = CompiledModel::new(shipped.with_learned(&counts)).unwrap();

    // A new session with the same answer as the confirmed cases: the server's posterior is the
    // engine's with every count added, and differs from the expert model's.
    let session = new_session(&app).await;
    let state = ok(
        &app,
        &id(&session),
        "answers",
        json!({"question": "clock_right", "answer": "wrong"}),
    )
    .await;
    let mut local = Session::new(0);
    local.answer(&learned, "clock_right", "wrong").unwrap();
    let expected = local.state(&learned).unwrap();
    for cause in &expected.causes {
        let served = probability(&state, &cause.id);
        assert!(
            (served - cause.probability).abs() < 1e-9,
            "{}: {served} vs {}",
            cause.id,
            cause.probability
        );
    }
    let unlearned = {
        let mut s = Session::new(0);
        s.answer(&expert, "clock_right", "wrong").unwrap();
        s.state(&expert).unwrap()
    };
    let unlearned_clock = unlearned
        .causes
        .iter()
        .find(|c| c.id == "clock-skew")
        .unwrap()
        .probability;
    assert!(probability(&state, "clock-skew") > unlearned_clock + 0.01);
    let resync = |fixes: &Value| {
        fixes
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == "resync-clock")
            .map(|f| f["probability"].as_f64().unwrap())
    };
    let expected_resync = expected
        .fixes
        .iter()
        .find(|f| f.id == "resync-clock")
        .unwrap()
        .probability;
    assert!((resync(&state["fixes"]).unwrap() - expected_resync).abs() < 1e-9);

    // The counts are in PostgreSQL: a restarted server starts from them.
    let restarted = spawn_app_with(app.pool.clone(), test_settings()).await;
    let again = new_session(&restarted).await;
    for cause in Session::new(0).state(&learned).unwrap().causes {
        let served = probability(&again, &cause.id);
        assert!((served - cause.probability).abs() < 1e-9, "{}", cause.id);
    }
    assert!(
        (probability(&again, "clock-skew") - p1).abs() > 1e-6,
        "the sixth case counts too"
    );
}

#[tokio::test]
async fn the_article_ranking_orders_by_the_wilson_lower_bound_computed_in_sql() {
    let app = spawn_app().await;
    // (article, cause, resolved, failed)
    let rows = [
        ("kb-clock", "clock-skew", 8.0, 2.0),
        ("kb-vpn-drops", "vpn-unstable", 70.0, 10.0),
        ("kb-vpn-drops", "dns-stale", 10.0, 10.0),
        ("kb-credssp", "credssp-oracle", 1.0, 0.0),
        ("kb-licensing", "licensing-cache", 0.5, 0.25),
        ("kb-remote-computer-off", "host-offline", 0.0, 3.0),
        ("kb-no-longer-in-the-model", "other", 50.0, 0.0),
    ];
    for (article, cause, resolved, failed) in rows {
        sqlx::query("INSERT INTO article_outcomes (article_id, cause_id, resolved, failed) VALUES ($1, $2, $3, $4)")
            .bind(article)
            .bind(cause)
            .bind(resolved)
            .bind(failed)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    // The helpdesk's view: nobody else reads it.
    let (status, refused) = get(&app, "/api/v1/articles/ranking").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["error"]["code"], "helpdesk_login_required");
    let (status, ranking) = get_as_helpdesk(&app, "/api/v1/articles/ranking").await;
    assert_eq!(status, 200);
    let articles = ranking["articles"].as_array().unwrap();
    let model = Model::shipped();
    assert_eq!(articles.len(), model.articles.len());
    let expected = |article: &str| -> (f64, f64) {
        rows.iter()
            .filter(|r| r.0 == article)
            .fold((0.0, 0.0), |(s, n), r| (s + r.2, n + r.2 + r.3))
    };
    for article in articles {
        let article_id = article["id"].as_str().unwrap();
        let (s, n) = expected(article_id);
        assert_eq!(article["resolved"].as_f64().unwrap(), s, "{article_id}");
        assert_eq!(article["tried"].as_f64().unwrap(), n, "{article_id}");
        let bound = article["wilson_lower_bound"].as_f64().unwrap();
        assert!(
            (bound - wilson_lower_bound(s, n, 1.96)).abs() < 1e-12,
            "{article_id}: {bound}"
        );
        let title = &model
            .articles
            .iter()
            .find(|a| a.id == article_id)
            .unwrap()
            .title;
        assert_eq!(article["title"], title.as_str());
    }
    // 80 of 100 beats 8 of 10 beats 1 of 1 beats 0.5 of 0.75; at a bound of 0, 0 of 3 comes
    // before the untried (more tries first), and those keep the model's order.
    assert_eq!(
        &ids(&ranking["articles"])[..5],
        [
            "kb-vpn-drops",
            "kb-clock",
            "kb-credssp",
            "kb-licensing",
            "kb-remote-computer-off"
        ]
    );
    let untried: Vec<String> = model
        .articles
        .iter()
        .map(|a| a.id.clone())
        .filter(|article| expected(article).1 == 0.0)
        .collect();
    assert_eq!(&ids(&ranking["articles"])[5..], untried.as_slice());
    let bounds: Vec<f64> = articles
        .iter()
        .map(|a| a["wilson_lower_bound"].as_f64().unwrap())
        .collect();
    assert!(bounds.windows(2).all(|w| w[0] >= w[1]), "{bounds:?}");

    let (status, for_vpn) =
        get_as_helpdesk(&app, "/api/v1/articles/ranking?cause=vpn-unstable").await;
    assert_eq!(status, 200);
    assert_eq!(for_vpn["cause"], "vpn-unstable");
    assert_eq!(for_vpn["articles"][0]["id"], "kb-vpn-drops");
    assert_eq!(for_vpn["articles"][0]["tried"], 80.0);
    let bound = for_vpn["articles"][0]["wilson_lower_bound"]
        .as_f64()
        .unwrap();
    assert!((bound - wilson_lower_bound(70.0, 80.0, 1.96)).abs() < 1e-12);
    assert_eq!(for_vpn["articles"][1]["tried"], 0.0);

    let (status, error) = get_as_helpdesk(&app, "/api/v1/articles/ranking?cause=gremlins").await;
    assert_eq!(status, 422);
    assert_eq!(error["error"]["code"], "invalid_cause");
}

#[tokio::test]
async fn articles_from_closed_sessions_reach_the_ranking_by_cascade_attribution() {
    let app = spawn_app().await;
    let session = id(&new_session(&app).await);
    ok(
        &app,
        &session,
        "articles",
        json!({"shown": ["kb-vpn-drops", "kb-clock", "kb-credssp"], "worked": "kb-clock"}),
    )
    .await;
    // Open sessions teach nothing yet: the cause is not known.
    let (_, ranking) = get_as_helpdesk(&app, "/api/v1/articles/ranking").await;
    assert!(ranking["articles"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["tried"] == 0.0));

    ok(
        &app,
        &session,
        "close",
        json!({"confirmed_cause": "clock-skew"}),
    )
    .await;
    let (_, ranking) = get_as_helpdesk(&app, "/api/v1/articles/ranking?cause=clock-skew").await;
    let find = |article: &str| {
        ranking["articles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == article)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (
            find("kb-clock")["resolved"].clone(),
            find("kb-clock")["tried"].clone()
        ),
        (json!(1.0), json!(1.0))
    );
    assert_eq!(
        (
            find("kb-vpn-drops")["resolved"].clone(),
            find("kb-vpn-drops")["tried"].clone()
        ),
        (json!(0.0), json!(1.0))
    );
    assert_eq!(
        find("kb-credssp")["tried"],
        0.0,
        "below the one that worked: not tried"
    );
    assert_eq!(ranking["articles"][0]["id"], "kb-clock");
}

/// Follows `$ref`s inside the description.
fn resolve<'a>(spec: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(reference) = schema["$ref"].as_str() {
        let pointer = reference.trim_start_matches('#');
        schema = spec
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling {reference}"));
    }
    schema
}

/// Checks a JSON value against the subset of JSON Schema the description uses: `$ref`,
/// `oneOf`, `type`, `const`, `enum`, `required`, `properties`, `items`, `minimum`, `maximum`.
fn conforms(spec: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(spec, schema);
    if let Some(branches) = schema["oneOf"].as_array() {
        let matching = branches
            .iter()
            .filter(|branch| conforms(spec, branch, value, at).is_ok())
            .count();
        return match matching {
            1 => Ok(()),
            n => Err(format!("{at}: {value} matches {n} of the oneOf branches")),
        };
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect(),
        };
        let fits = |t: &str| match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            other => panic!("{at}: unexpected type {other}"),
        };
        if !types.iter().any(|t| fits(t)) {
            return Err(format!("{at}: {value} is not of type {types:?}"));
        }
    }
    if let Some(constant) = schema.get("const") {
        if constant != value {
            return Err(format!("{at}: {value} is not {constant}"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(number) = value.as_f64() {
        if schema["minimum"].as_f64().is_some_and(|min| number < min)
            || schema["maximum"].as_f64().is_some_and(|max| number > max)
        {
            return Err(format!("{at}: {number} is out of range"));
        }
    }
    if let Some(object) = value.as_object() {
        for field in schema["required"].as_array().into_iter().flatten() {
            let field = field.as_str().unwrap();
            if !object.contains_key(field) {
                return Err(format!("{at}: `{field}` is missing"));
            }
        }
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            if let Some(inner) = object.get(field) {
                conforms(spec, property, inner, &format!("{at}.{field}"))?;
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (index, item) in list.iter().enumerate() {
            conforms(spec, items, item, &format!("{at}[{index}]"))?;
        }
    }
    Ok(())
}

/// A refused request: its status must be the expected one and listed for the operation, and
/// its body must fit the schema listed for that status.
/// Applies a fix for the case through the API (the xrdp security layer, on a temporary
/// xrdp.ini) and returns its job id once the agent has applied it.
async fn applied_fix(app: &TestApp, case_id: &str, agent: &common::RunningAgent) -> String {
    app.wait_until_listening(&agent.agent_id).await;
    let ini = common::temp_dir("openapi-ini").join("xrdp.ini");
    std::fs::write(&ini, "[Globals]\nport=3389\nsecurity_layer=tls\n").unwrap();
    let response = app
        .client
        .post(format!("{}/api/v1/cases/{case_id}/fixes", app.address))
        .json(&json!({
            "fix": "xrdp-set-security-layer-negotiate",
            "params": {"config": ini.to_str().unwrap()},
            "agent_id": agent.agent_id,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let job_id = response.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..600 {
        let (_, case) = get(app, &format!("/api/v1/cases/{case_id}")).await;
        let applied =
            case["fixes"].as_array().unwrap().iter().any(|f| {
                f["job_id"] == job_id.as_str() && f["action"]["state"]["state"] == "applied"
            });
        if applied {
            return job_id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "the fix was not applied: {:#}",
        get(app, &format!("/api/v1/cases/{case_id}")).await.1
    );
}

async fn assert_refused(
    spec: &Value,
    operation: &Value,
    label: &str,
    response: reqwest::Response,
    expected: u16,
) {
    let status = response.status().as_u16();
    assert_eq!(status, expected, "{label}");
    let listed = &operation["responses"][status.to_string()];
    assert!(!listed.is_null(), "{label} does not list {status}");
    let schema = resolve(spec, listed)
        .pointer("/content/application~1json/schema")
        .unwrap_or_else(|| panic!("{label}: {status} has no JSON schema"));
    let body: Value = response.json().await.unwrap();
    if let Err(problem) = conforms(spec, schema, &body, "body") {
        panic!("{label} answered {status} outside its schema: {problem}");
    }
}

#[tokio::test]
async fn every_route_in_the_openapi_description_answers_with_a_status_it_lists() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/api/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let spec: Value = response.json().await.unwrap();
    assert_eq!(spec["openapi"], "3.1.0");

    let mut operations: Vec<(String, String, Value)> = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations.push((method.to_uppercase(), path.clone(), operation.clone()));
        }
    }
    let listed: BTreeSet<(String, String)> = operations
        .iter()
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("GET", "/healthz"),
        ("GET", "/api/openapi.json"),
        ("POST", "/api/v1/cases"),
        ("GET", "/api/v1/cases/{id}"),
        ("GET", "/api/v1/cases/{id}/events"),
        ("POST", "/api/v1/cases/{id}/diagnosis"),
        ("GET", "/api/v1/diagnosis/{session_id}"),
        ("GET", "/api/v1/diagnosis/{session_id}/events"),
        ("POST", "/api/v1/diagnosis/{session_id}/answers"),
        ("POST", "/api/v1/diagnosis/{session_id}/checks"),
        ("POST", "/api/v1/diagnosis/{session_id}/fixes"),
        ("POST", "/api/v1/diagnosis/{session_id}/articles"),
        ("POST", "/api/v1/diagnosis/{session_id}/close"),
        ("GET", "/api/v1/articles/ranking"),
        ("GET", "/api/v1/agents"),
        ("POST", "/api/v1/cases/{id}/fixes"),
        ("POST", "/api/v1/cases/{id}/fixes/{job_id}/rollback"),
        ("POST", "/api/v1/cases/{id}/approvals"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(listed, expected, "the description and the API differ");

    // An agent to run fixes, and a helpdesk account for the routes that need one.
    let agent = app.spawn_agent().await;
    let helpdesk = server::helpdesk::add_account(&app.pool, "openapi-test")
        .await
        .unwrap();
    // Real ids: a session on one case, and another case with no session yet.
    let session = id(&new_session(&app).await);
    let case_id = open_case(&app, json!({"host": "pc-0424"})).await;
    // A fix applied for real on that case (on an xrdp.ini of our own), for the routes about
    // one fix job.
    let fixer = common::RunningAgent::start(&app.address, &app.create_token(1).await, None).await;
    let job_id = applied_fix(&app, &case_id, &fixer).await;
    let unknown = "00000000-0000-4000-8000-000000000000";
    // Closing comes last, so every other action meets an open session.
    operations.sort_by_key(|(_, path, _)| path.ends_with("/close"));
    for (method, path, operation) in &operations {
        let statuses: BTreeSet<u16> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(|s| s.parse().unwrap())
            .collect();
        let label = format!("{method} {path}");
        // The examples name an example agent: use the real one.
        let example = operation
            .pointer("/requestBody/content/application~1json/example")
            .map(|e| {
                serde_json::from_str::<Value>(&e.to_string().replace(
                    "00000000-0000-4000-8000-0000000a9e47",
                    &agent.identity().agent_id,
                ))
                .unwrap()
            });
        let example = example.as_ref();
        let secured = operation.get("security").is_some();
        let request = |ids: (&str, &str)| {
            let url = format!(
                "{}{}",
                app.address,
                path.replace("{id}", ids.0)
                    .replace("{session_id}", ids.1)
                    .replace("{job_id}", if ids.0 == unknown { unknown } else { &job_id })
            );
            let mut request = app.client.request(method.parse().unwrap(), url);
            if secured {
                request = request.bearer_auth(&helpdesk);
            }
            match example {
                Some(body) => request.json(body),
                None => request,
            }
        };

        let response = request((&case_id, &session)).send().await.unwrap();
        let status = response.status().as_u16();
        assert!(
            statuses.contains(&status),
            "{method} {path} answered {status}, not one of {statuses:?}"
        );
        assert!(
            (200..300).contains(&status),
            "{method} {path} answered {status} with valid input"
        );
        let schema = operation["responses"][status.to_string()]
            .pointer("/content/application~1json/schema")
            .cloned();
        if let Some(schema) = schema {
            let body: Value = response.json().await.unwrap();
            if let Err(problem) = conforms(&spec, &schema, &body, "body") {
                panic!("{method} {path} answered {status} outside its schema: {problem}");
            }
        }

        if path.contains('{') {
            let response = request((unknown, unknown)).send().await.unwrap();
            assert_refused(&spec, operation, &label, response, 404).await;
        }
        if example.is_some() {
            let url = format!(
                "{}{}",
                app.address,
                path.replace("{id}", &case_id)
                    .replace("{session_id}", &session)
            );
            let mut malformed = app.client.request(method.parse().unwrap(), url);
            if secured {
                malformed = malformed.bearer_auth(&helpdesk);
            }
            let malformed = malformed
                .header("content-type", "application/json")
                .body("{not json")
                .send()
                .await
                .unwrap();
            assert_refused(&spec, operation, &label, malformed, 400).await;
        }
    }
}
