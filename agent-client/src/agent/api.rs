//! The agent's HTTP API: the server's signed requests in, signed reports out.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;

use crate::agent::config::Identity;
use crate::host::fix::Requester;
use crate::host::service::{FixService, FixServiceError};
use crate::signed_http::{auth_failure, request_signature, signed_json, verify_incoming};
use crate::signing::{AuthError, ReplayGuard, RequestSignature};
use crate::wire::{
    CheckRequest, ErrorBody, FixRequest, JournalRequest, RollbackRequest, FIX_JOURNAL_PATH,
    ROLLBACK_FIX_PATH, RUN_CHECK_PATH, RUN_FIX_PATH,
};

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

/// What the fix routes need: the agent's state (identity, replay guard) and the fixes.
#[derive(Debug, Clone)]
pub struct FixState {
    pub agent: Arc<AgentState>,
    pub fixes: Arc<FixService>,
}

/// The routes the server calls, fixes included: run or preview a fix, roll one back, read
/// the journal. Every one is verified exactly as [`RUN_CHECK_PATH`] is.
pub fn router_with_fixes(state: Arc<AgentState>, fixes: Arc<FixService>) -> Router {
    let fix_state = FixState {
        agent: state.clone(),
        fixes,
    };
    router(state).merge(
        Router::new()
            .route(RUN_FIX_PATH, post(run_fix))
            .route(ROLLBACK_FIX_PATH, post(rollback_fix))
            .route(FIX_JOURNAL_PATH, post(list_journal))
            .with_state(fix_state),
    )
}

/// The checks of [`run_check`]: a signature by the server's key, fresh, with a new nonce.
fn verify_server_request(
    state: &AgentState,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    body: &Bytes,
) -> Result<RequestSignature, Box<Response>> {
    let signature = request_signature(headers).map_err(|e| Box::new(auth_failure(&e)))?;
    if signature.key_id != SERVER_KEY_ID {
        return Err(Box::new(auth_failure(&AuthError::UnknownKey)));
    }
    verify_incoming(
        &state.identity.server_key,
        &signature,
        method,
        path,
        body,
        &state.replay_guard,
    )
    .map_err(|e| Box::new(auth_failure(&e)))?;
    Ok(signature)
}

/// Reads a verified body, or answers 422 (signed) when it is not the expected message.
fn read_body<T: serde::de::DeserializeOwned>(
    state: &AgentState,
    nonce: &str,
    body: &Bytes,
    what: &str,
) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        let error = ErrorBody::new("invalid_request", format!("not a valid {what}: {e}"));
        Box::new(signed_json(
            &state.identity.key,
            nonce,
            StatusCode::UNPROCESSABLE_ENTITY,
            &error,
        ))
    })
}

/// A fix service error as a signed reply; journal failures are logged once and answered
/// without their detail.
fn fix_error(state: &AgentState, nonce: &str, error: FixServiceError) -> Response {
    let (status, code, message) = match &error {
        FixServiceError::Invalid(m) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            m.clone(),
        ),
        FixServiceError::NotFound(_) => {
            (StatusCode::NOT_FOUND, "unknown_action", error.to_string())
        }
        FixServiceError::Conflict(m) => (StatusCode::CONFLICT, "rollback_conflict", m.clone()),
        FixServiceError::Journal(e) => {
            tracing::error!(error = %e, "the fix journal failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "journal_failed",
                "the agent could not read or write its fix journal".to_owned(),
            )
        }
    };
    signed_json(
        &state.identity.key,
        nonce,
        status,
        &ErrorBody::new(code, message),
    )
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FixServiceError> + Send + 'static,
) -> Result<T, FixServiceError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(FixServiceError::Journal(std::io::Error::other(
            e.to_string(),
        )))
    })
}

async fn run_fix(
    State(state): State<FixState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let agent = &state.agent;
    let signature = match verify_server_request(agent, &method, &headers, RUN_FIX_PATH, &body) {
        Ok(signature) => signature,
        Err(response) => return *response,
    };
    let request: FixRequest = match read_body(agent, &signature.nonce, &body, "fix request") {
        Ok(request) => request,
        Err(response) => return *response,
    };
    tracing::info!(
        fix = request.fix.id(),
        dry_run = request.dry_run,
        "fix requested"
    );
    let fixes = state.fixes.clone();
    match blocking(move || fixes.run(request, Requester::Server)).await {
        Ok(response) => signed_json(
            &agent.identity.key,
            &signature.nonce,
            StatusCode::OK,
            &response,
        ),
        Err(e) => fix_error(agent, &signature.nonce, e),
    }
}

async fn rollback_fix(
    State(state): State<FixState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let agent = &state.agent;
    let signature = match verify_server_request(agent, &method, &headers, ROLLBACK_FIX_PATH, &body)
    {
        Ok(signature) => signature,
        Err(response) => return *response,
    };
    let request: RollbackRequest =
        match read_body(agent, &signature.nonce, &body, "rollback request") {
            Ok(request) => request,
            Err(response) => return *response,
        };
    tracing::info!(action.id = %request.action_id, "rollback requested");
    let fixes = state.fixes.clone();
    match blocking(move || fixes.rollback(request, Requester::Server)).await {
        Ok(record) => signed_json(
            &agent.identity.key,
            &signature.nonce,
            StatusCode::OK,
            &record,
        ),
        Err(e) => fix_error(agent, &signature.nonce, e),
    }
}

async fn list_journal(
    State(state): State<FixState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let agent = &state.agent;
    let signature = match verify_server_request(agent, &method, &headers, FIX_JOURNAL_PATH, &body) {
        Ok(signature) => signature,
        Err(response) => return *response,
    };
    let request: JournalRequest = match read_body(agent, &signature.nonce, &body, "journal request")
    {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let fixes = state.fixes.clone();
    match blocking(move || fixes.list(&request)).await {
        Ok(journal) => signed_json(
            &agent.identity.key,
            &signature.nonce,
            StatusCode::OK,
            &journal,
        ),
        Err(e) => fix_error(agent, &signature.nonce, e),
    }
}
