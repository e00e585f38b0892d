//! The cases API against a real database: validation, storage, dispatch to a real agent; and
//! how the portal's site bundle is served.

mod common;

use agent_client::wire::{CheckReport, Reachability};
use app::case::CheckStatus;
use common::spawn_app;
use serde_json::json;

#[tokio::test]
async fn healthz_reports_the_database() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["database"], "ok");
}

#[tokio::test]
async fn the_site_bundle_is_sent_gzipped_to_browsers_that_accept_it() {
    let site = common::temp_dir("site");
    let pkg = site.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    let wasm: Vec<u8> = (0..20_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect();
    std::fs::write(pkg.join("rdp_doctor_bg.wasm"), &wasm).unwrap();
    let gzip = std::process::Command::new("gzip")
        .args(["-9", "-n", "-k"])
        .arg(pkg.join("rdp_doctor_bg.wasm"))
        .status()
        .expect("gzip runs");
    assert!(gzip.success());
    let gzipped = std::fs::read(pkg.join("rdp_doctor_bg.wasm.gz")).unwrap();
    assert!(gzipped.len() < wasm.len() / 4, "{} bytes", gzipped.len());

    let app =
        common::spawn_app_serving(common::fresh_pool().await, common::test_settings(), &site).await;
    let url = format!("{}/pkg/rdp_doctor_bg.wasm", app.address);
    let get = |encoding: &'static str| {
        let request = app.client.get(&url);
        let request = if encoding.is_empty() {
            request
        } else {
            request.header("accept-encoding", encoding)
        };
        async move { request.send().await.unwrap() }
    };

    let compressed = get("gzip, deflate, br").await;
    assert_eq!(compressed.status(), 200);
    assert_eq!(compressed.headers()["content-encoding"], "gzip");
    // Browsers compile WebAssembly while it streams only when it comes as application/wasm.
    assert_eq!(compressed.headers()["content-type"], "application/wasm");
    assert_eq!(
        compressed.bytes().await.unwrap().as_ref(),
        gzipped.as_slice()
    );

    let plain = get("").await;
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.bytes().await.unwrap().as_ref(), wasm.as_slice());

    let missing = app
        .client
        .get(format!("{}/pkg/missing.wasm", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    std::fs::remove_dir_all(&site).ok();
}

#[tokio::test]
async fn bad_case_input_is_refused_with_a_specific_message_and_nothing_is_stored() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"host": ""}),
            422,
            "invalid_host",
            "Enter the name or address",
        ),
        (
            json!({"host": "bad host"}),
            422,
            "invalid_host",
            "is not a valid computer name",
        ),
        (
            json!({"host": "pc1", "port": "0"}),
            422,
            "invalid_port",
            "from 1 to 65535",
        ),
        (
            json!({"host": "pc1", "port": "65536"}),
            422,
            "invalid_port",
            "from 1 to 65535",
        ),
        (
            json!({"host": "a".repeat(300)}),
            422,
            "invalid_host",
            "too long",
        ),
        (
            json!({"host": "pc1", "error_code": "0xZZ"}),
            422,
            "invalid_error_code",
            "copy it from the dialog",
        ),
        (json!({"port": "3389"}), 400, "bad_json", "host"),
    ];
    for (body, status, code, message) in cases {
        let response = app.post_case(body.clone()).await;
        assert_eq!(response.status(), status, "{body}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "{body}");
        let text = error["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{body}: {text}");
    }
    let malformed = app
        .client
        .post(format!("{}/api/v1/cases", app.address))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(app.count("cases").await, 0);
    assert_eq!(app.count("jobs").await, 0);
}

#[tokio::test]
async fn an_unknown_case_or_endpoint_is_a_json_404() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/cases/00000000-0000-4000-8000-000000000000",
        "/api/v1/cases/not-a-uuid",
        "/api/v1/nothing-here",
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "not_found", "{path}");
    }
}

#[tokio::test]
async fn a_case_is_checked_by_a_real_agent_and_the_result_is_stored() {
    let app = spawn_app().await;
    let _agent = app.spawn_agent().await;
    let listening = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listening.local_addr().unwrap().port();

    let response = app
        .post_case(json!({"host": "127.0.0.1", "port": port.to_string(), "error_code": "0x904", "extended_code": "0x7"}))
        .await;
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["url"], format!("/cases/{id}"));

    let case = app.settled_case(id).await;
    assert_eq!(
        (case.error_code, case.extended_code),
        (Some(0x904), Some(0x7))
    );
    let run = &case.checks[0];
    assert_eq!(run.check_id, "tcp-connect");
    assert_eq!(run.status, CheckStatus::Succeeded);
    let Some(CheckReport::TcpConnect(report)) = &run.report else {
        panic!("no report: {run:?}")
    };
    assert_eq!(report.verdict, Reachability::Open);
    assert_eq!(report.attempts[0].address.port(), port);
    assert!(report.resolution.literal);
}

#[tokio::test]
async fn a_closed_port_is_reported_as_refused() {
    let app = spawn_app().await;
    let _agent = app.spawn_agent().await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let created: serde_json::Value = app
        .post_case(json!({"host": "127.0.0.1", "port": port.to_string()}))
        .await
        .json()
        .await
        .unwrap();
    let case = app.settled_case(created["id"].as_str().unwrap()).await;
    let Some(CheckReport::TcpConnect(report)) = &case.checks[0].report else {
        panic!()
    };
    assert_eq!(report.verdict, Reachability::Refused);
}

#[tokio::test]
async fn an_offline_agent_gives_a_clear_state_quickly() {
    let app = spawn_app().await;
    let mut agent = app.spawn_agent().await;
    agent.stop().await;
    let started = std::time::Instant::now();
    let created: serde_json::Value = app
        .post_case(json!({"host": "127.0.0.1"}))
        .await
        .json()
        .await
        .unwrap();
    let case = app.settled_case(created["id"].as_str().unwrap()).await;
    assert_eq!(case.checks[0].status, CheckStatus::AgentOffline);
    let problem = case.checks[0].problem.as_deref().unwrap();
    assert!(problem.contains("did not answer"), "{problem}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn without_any_agent_the_case_says_so() {
    let app = spawn_app().await;
    let created: serde_json::Value = app
        .post_case(json!({"host": "localhost"}))
        .await
        .json()
        .await
        .unwrap();
    let case = app.settled_case(created["id"].as_str().unwrap()).await;
    assert_eq!(case.checks[0].status, CheckStatus::NoAgent);
}

#[tokio::test]
async fn the_event_stream_pushes_the_result_when_it_arrives() {
    let app = spawn_app().await;
    let _agent = app.spawn_agent().await;
    let listening = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listening.local_addr().unwrap().port();
    let created: serde_json::Value = app
        .post_case(json!({"host": "127.0.0.1", "port": port.to_string()}))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let mut stream = app
        .client
        .get(format!("{}/api/v1/cases/{id}/events", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains("\"succeeded\"") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("a result within 10 s");
        seen.push_str(&String::from_utf8_lossy(
            &chunk.unwrap().expect("stream open"),
        ));
    }
    assert!(seen.starts_with("data: "), "{seen}");
    assert!(seen.contains("\"verdict\":\"open\""), "{seen}");
}

#[tokio::test]
async fn a_case_starts_a_diagnosis_that_its_checks_feed_and_that_then_asks_the_employee() {
    let app = spawn_app().await;
    let _agent = app.spawn_agent().await;
    let listening = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listening.local_addr().unwrap().port();
    let created: serde_json::Value = app
        .post_case(json!({"host": "127.0.0.1", "port": port.to_string(), "error_code": "0x904", "extended_code": "0x7"}))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    app.settled_case(id).await;
    // The last check's evidence lands just after its run is final.
    let mut case = app.settled_case(id).await;
    for _ in 0..100 {
        if case
            .diagnosis
            .as_ref()
            .is_some_and(|d| d.question.is_some())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        case = app.settled_case(id).await;
    }
    let diagnosis = case.diagnosis.expect("every case has a diagnosis");
    let question = diagnosis
        .question
        .expect("once the checks are in, the employee is asked a question");
    assert!(!question.answers.is_empty());

    let session: serde_json::Value = app
        .client
        .get(format!(
            "{}/api/v1/diagnosis/{}",
            app.address, diagnosis.session_id
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let checks = &session["evidence"]["checks"];
    assert_eq!(checks["tcp-connect"], "open", "{session}");
    assert_eq!(checks["tcp-connect-from-server"], "open", "{session}");
    assert_eq!(
        checks["rdp-negotiate"], "no-answer",
        "a port that is not RDP: {session}"
    );
    assert_eq!(session["evidence"]["answers"]["error_code"], "0x904");

    let events: Vec<serde_json::Value> = app
        .client
        .get(format!(
            "{}/api/v1/diagnosis/{}/events",
            app.address, diagnosis.session_id
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let recorded: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "check")
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    let mut unique = recorded.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        recorded.len(),
        unique.len(),
        "each check recorded once: {recorded:?}"
    );
}
