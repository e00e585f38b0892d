//! The agent's HTTP API: the server's signed requests in, signed reports out.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;

use crate::agent::config::Identity;
use crate::signed_http::{auth_failure, request_signature, signed_json, verify_incoming};
use crate::signing::{AuthError, ReplayGuard};
use crate::wire::{CheckRequest, ErrorBody, RUN_CHECK_PATH};

/// The key id the server signs its requests with.
pub const SERVER_KEY_ID: &str = "server";

/// What every request handler needs.
#[derive(Debug)]
pub struct AgentState {
    pub identity: Identity,
    pub replay_guard: ReplayGuard,
}

/// The routes the server calls.
pub fn router(state: Arc<AgentState>) -> Router {
    Router::new()
        .route(RUN_CHECK_PATH, post(run_check))
        .with_state(state)
}

async fn run_check(
    State(state): State<Arc<AgentState>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signature = match request_signature(&headers) {
        Ok(sig) => sig,
        Err(e) => return auth_failure(&e),
    };
    if signature.key_id != SERVER_KEY_ID {
        return auth_failure(&AuthError::UnknownKey);
    }
    if let Err(e) = verify_incoming(
        &state.identity.server_key,
        &signature,
        &method,
        RUN_CHECK_PATH,
        &body,
        &state.replay_guard,
    ) {
        return auth_failure(&e);
    }
    let key = &state.identity.key;
    let request: CheckRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            let error = ErrorBody::new("invalid_check", format!("not a known check request: {e}"));
            return signed_json(
                key,
                &signature.nonce,
                StatusCode::UNPROCESSABLE_ENTITY,
                &error,
            );
        }
    };
    tracing::info!(run.id = %request.run_id, check = request.check.id(), "running check");
    let report = crate::checks::run(&request.check).await;
    signed_json(key, &signature.nonce, StatusCode::OK, &report)
}
