//! Enrollment and heartbeats over HTTP, with the real signing, against a real database.

mod common;

use std::time::Duration;

use agent_client::signed_http::{post_json, CallError, Signer};
use agent_client::signing::{Keypair, ENROLL_KEY_ID};
use agent_client::wire::{
    EnrollRequest, EnrollResponse, HeartbeatRequest, HeartbeatResponse, ENROLL_PATH, HEARTBEAT_PATH,
};
use common::{spawn_app, temp_dir, TestApp};

fn enroll_request(key: &Keypair, token: &str) -> EnrollRequest {
    EnrollRequest {
        token: token.to_owned(),
        public_key: key.public_base64(),
        hostname: "pc-test".into(),
        os: "linux x86_64".into(),
        agent_version: "0.1.0".into(),
        listen_url: Some("http://127.0.0.1:7410".into()),
    }
}

async fn try_enroll(
    app: &TestApp,
    signing_key: &Keypair,
    request: &EnrollRequest,
) -> Result<EnrollResponse, CallError> {
    let signer = Signer {
        key: signing_key,
        key_id: ENROLL_KEY_ID,
        peer_key: None,
    };
    post_json(
        &app.client,
        &app.address,
        ENROLL_PATH,
        signer,
        request,
        Duration::from_secs(5),
    )
    .await
}

fn refusal(result: Result<EnrollResponse, CallError>) -> (u16, String, String) {
    match result {
        Err(CallError::Refused { status, body }) => (status, body.error.code, body.error.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn enrollment_registers_the_agent_and_consumes_the_token() {
    let app = spawn_app().await;
    let token = app.create_token(1).await;
    let key = Keypair::generate();
    let reply = try_enroll(&app, &key, &enroll_request(&key, &token))
        .await
        .unwrap();
    assert_eq!(
        reply.server_public_key,
        app.state.server_key.public_base64()
    );
    let (hostname, stored_key): (String, String) =
        sqlx::query_as("SELECT hostname, public_key FROM agents")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (hostname.as_str(), stored_key),
        ("pc-test", key.public_base64())
    );
    let uses: i32 = sqlx::query_scalar("SELECT uses FROM enrollment_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(uses, 1);
}

#[tokio::test]
async fn enrollment_rejects_a_reused_token() {
    let app = spawn_app().await;
    let token = app.create_token(1).await;
    let first = Keypair::generate();
    try_enroll(&app, &first, &enroll_request(&first, &token))
        .await
        .unwrap();
    let second = Keypair::generate();
    let (status, code, message) =
        refusal(try_enroll(&app, &second, &enroll_request(&second, &token)).await);
    assert_eq!((status, code.as_str()), (401, "token_used_up"));
    assert!(message.contains("used up"), "{message}");
    assert_eq!(app.count("agents").await, 1);
}

#[tokio::test]
async fn enrollment_rejects_an_expired_token_and_stores_nothing() {
    let app = spawn_app().await;
    let token = app.create_token(5).await;
    sqlx::query("UPDATE enrollment_tokens SET expires_at = now() - interval '1 minute'")
        .execute(&app.pool)
        .await
        .unwrap();
    let key = Keypair::generate();
    let (status, code, message) =
        refusal(try_enroll(&app, &key, &enroll_request(&key, &token)).await);
    assert_eq!((status, code.as_str()), (401, "token_expired"));
    assert!(message.contains("expired"), "{message}");
    assert_eq!(app.count("agents").await, 0);
    let uses: i32 = sqlx::query_scalar("SELECT uses FROM enrollment_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(uses, 0);
}

#[tokio::test]
async fn enrollment_rejects_an_unknown_token() {
    let app = spawn_app().await;
    let key = Keypair::generate();
    let (status, code, _) =
        refusal(try_enroll(&app, &key, &enroll_request(&key, "rdpd_enroll_forged")).await);
    assert_eq!((status, code.as_str()), (401, "unknown_token"));
}

#[tokio::test]
async fn enrollment_rejects_a_key_the_request_is_not_signed_with() {
    let app = spawn_app().await;
    let token = app.create_token(1).await;
    let claimed = Keypair::generate();
    let actual_signer = Keypair::generate();
    let (status, code, _) =
        refusal(try_enroll(&app, &actual_signer, &enroll_request(&claimed, &token)).await);
    assert_eq!((status, code.as_str()), (401, "bad_signature"));
    let uses: i32 = sqlx::query_scalar("SELECT uses FROM enrollment_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(uses, 0, "a refused enrollment must not consume the token");
}

#[tokio::test]
async fn the_agent_explains_a_bad_token_in_one_line_and_writes_no_identity() {
    let app = spawn_app().await;
    let dir = temp_dir("cli");
    let identity = dir.join("agent.json");
    let error =
        agent_client::agent::enroll::enroll(&app.address, "rdpd_enroll_nope", &identity, None)
            .await
            .expect_err("an unknown token is refused");
    assert_eq!(
        format!("{error:#}"),
        "enrollment refused: this enrollment token is not known to the server"
    );
    assert!(!identity.exists());
}

#[tokio::test]
async fn heartbeats_must_be_signed_by_the_enrolled_key() {
    let app = spawn_app().await;
    let agent = app.spawn_agent().await;
    let identity = agent.identity();
    let beat = HeartbeatRequest {
        hostname: "pc-test".into(),
        os: "linux".into(),
        agent_version: "0.1.0".into(),
        listen_url: agent.listen_url.clone(),
        journal_changed_at: None,
    };
    let genuine = Signer {
        key: &identity.key,
        key_id: &identity.agent_id,
        peer_key: Some(&identity.server_key),
    };
    let reply: HeartbeatResponse = post_json(
        &app.client,
        &app.address,
        HEARTBEAT_PATH,
        genuine,
        &beat,
        Duration::from_secs(5),
    )
    .await
    .expect("a genuine heartbeat is accepted and its reply verifies");
    assert_eq!(reply.heartbeat_interval_secs, 15);

    let impostor = Keypair::generate();
    let forged = Signer {
        key: &impostor,
        key_id: &identity.agent_id,
        peer_key: Some(&identity.server_key),
    };
    let result: Result<HeartbeatResponse, _> = post_json(
        &app.client,
        &app.address,
        HEARTBEAT_PATH,
        forged,
        &beat,
        Duration::from_secs(5),
    )
    .await;
    match result {
        Err(CallError::Refused { status: 401, body }) => {
            assert_eq!(body.error.code, "bad_signature")
        }
        other => panic!("forged heartbeat: {other:?}"),
    }
}

#[tokio::test]
async fn agents_are_listed_with_their_version_and_online_state() {
    let app = spawn_app().await;
    let agent = app.spawn_agent().await;
    // For the helpdesk and operators only.
    let anonymous = app
        .client
        .get(format!("{}/api/v1/agents", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
    let token = server::helpdesk::add_account(&app.pool, "operator")
        .await
        .unwrap();
    let list = || async {
        let agents: serde_json::Value = app
            .client
            .get(format!("{}/api/v1/agents", app.address))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        agents
    };
    let agents = list().await;
    assert_eq!(agents.as_array().unwrap().len(), 1);
    assert_eq!(agents[0]["id"], agent.identity().agent_id.as_str());
    assert_eq!(agents[0]["agent_version"], agent_client::AGENT_VERSION);
    assert_eq!(agents[0]["online"], true);
    assert_eq!(agents[0]["listen_url"], agent.listen_url.as_str());

    sqlx::query("UPDATE agents SET last_seen_at = now() - interval '1 hour'")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(list().await[0]["online"], false);
}
