//! A real agent listening on loopback: signed requests run checks; forged, stale, replayed
//! and unknown requests are refused.

use std::sync::Arc;

use agent_client::agent::api::{router, AgentState, SERVER_KEY_ID};
use agent_client::agent::config::Identity;
use agent_client::signing::{
    sign_request, sign_request_at, unix_now, verify_response, Keypair, ReplayGuard,
    RequestSignature, ResponseSignature,
};
use agent_client::target::CheckTarget;
use agent_client::wire::{CheckReport, CheckRequest, CheckSpec, Reachability, RUN_CHECK_PATH};

struct Harness {
    url: String,
    server_key: Keypair,
    agent_public: ed25519_dalek::VerifyingKey,
    client: reqwest::Client,
}

async fn start_agent() -> Harness {
    let server_key = Keypair::generate();
    let agent_key = Keypair::generate();
    let agent_public = agent_key.public_key();
    let state = Arc::new(AgentState {
        identity: Identity {
            agent_id: "agent-under-test".into(),
            server_url: "http://127.0.0.1:1".into(),
            server_key: server_key.public_key(),
            key: agent_key,
        },
        replay_guard: ReplayGuard::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    Harness {
        url,
        server_key,
        agent_public,
        client: reqwest::Client::new(),
    }
}

fn check_body(port: u16) -> Vec<u8> {
    serde_json::to_vec(&CheckRequest {
        run_id: "run-1".into(),
        check: CheckSpec::TcpConnect {
            target: CheckTarget::parse(&format!("127.0.0.1:{port}")).unwrap(),
            timeout_ms: 1000,
        },
    })
    .unwrap()
}

impl Harness {
    async fn send(&self, body: Vec<u8>, signature: &RequestSignature) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{RUN_CHECK_PATH}", self.url))
            .body(body);
        for (name, value) in signature.headers() {
            request = request.header(name, value);
        }
        request.send().await.unwrap()
    }

    fn sign(&self, body: &[u8]) -> RequestSignature {
        sign_request(
            &self.server_key,
            SERVER_KEY_ID,
            "POST",
            RUN_CHECK_PATH,
            body,
        )
    }
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn a_signed_request_runs_the_check_and_the_reply_is_signed_by_the_agent() {
    let agent = start_agent().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let body = check_body(listener.local_addr().unwrap().port());
    let signature = agent.sign(&body);
    let response = agent.send(body, &signature).await;
    assert_eq!(response.status(), 200);
    let reply_signature = ResponseSignature::from_headers(|n| {
        response.headers().get(n).and_then(|v| v.to_str().ok())
    })
    .unwrap();
    let bytes = response.bytes().await.unwrap();
    verify_response(
        &agent.agent_public,
        &reply_signature,
        200,
        &signature.nonce,
        &bytes,
    )
    .expect("reply verifies");
    let report: CheckReport = serde_json::from_slice(&bytes).unwrap();
    let CheckReport::TcpConnect(report) = report else {
        panic!("not a tcp-connect report: {report:?}")
    };
    assert_eq!(report.verdict, Reachability::Open);
}

#[tokio::test]
async fn a_forged_request_is_refused() {
    let agent = start_agent().await;
    let body = check_body(9);
    let forger = Keypair::generate();
    let forged = sign_request(&forger, SERVER_KEY_ID, "POST", RUN_CHECK_PATH, &body);
    assert_eq!(
        error_code(agent.send(body.clone(), &forged).await).await,
        (401, "bad_signature".into())
    );

    // A genuine signature over another body does not cover this one.
    let other = agent.sign(&check_body(10));
    assert_eq!(
        error_code(agent.send(body, &other).await).await,
        (401, "bad_signature".into())
    );
}

#[tokio::test]
async fn a_stale_request_is_refused() {
    let agent = start_agent().await;
    let body = check_body(9);
    // Signed as the server would have two minutes ago: only its age is wrong.
    let stale = sign_request_at(
        &agent.server_key,
        SERVER_KEY_ID,
        "POST",
        RUN_CHECK_PATH,
        &body,
        unix_now() - 120,
    );
    assert_eq!(
        error_code(agent.send(body, &stale).await).await,
        (401, "stale_request".into())
    );
}

#[tokio::test]
async fn a_replayed_request_is_refused() {
    let agent = start_agent().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let body = check_body(closed);
    let signature = agent.sign(&body);
    assert_eq!(agent.send(body.clone(), &signature).await.status(), 200);
    assert_eq!(
        error_code(agent.send(body, &signature).await).await,
        (401, "replayed_request".into())
    );
}

#[tokio::test]
async fn an_unsigned_request_or_an_unknown_check_is_refused() {
    let agent = start_agent().await;
    let unsigned = agent
        .client
        .post(format!("{}{RUN_CHECK_PATH}", agent.url))
        .body(check_body(9))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(unsigned).await, (401, "bad_signature".into()));

    let shell = br#"{"run_id":"x","check":{"check":"shell","command":"id"}}"#.to_vec();
    let signature = agent.sign(&shell);
    assert_eq!(
        error_code(agent.send(shell, &signature).await).await,
        (422, "invalid_check".into())
    );
}
