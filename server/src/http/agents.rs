//! Routes used by agents: enrollment and heartbeats. Both are signed; replies to
//! authenticated agents are signed with the server's key.

use agent_client::signed_http::{
    auth_failure, request_signature, signed_json, unsigned_error, verify_incoming,
};
use agent_client::signing::AuthError;
use agent_client::wire::{
    EnrollRequest, EnrollResponse, HeartbeatRequest, HeartbeatResponse, ENROLL_PATH, HEARTBEAT_PATH,
};
use app::backend::ClientAddress;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::Extension;
use uuid::Uuid;

use crate::enrollment::{enroll_agent, validate_listen_url, EnrollError};
use crate::startup::AppState;

/// `POST /api/agent/v1/enroll`
pub async fn enroll(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = match request_signature(&headers) {
        Ok(sig) => sig,
        Err(e) => return auth_failure(&e),
    };
    let request: EnrollRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return unsigned_error(
                StatusCode::BAD_REQUEST,
                "bad_json",
                format!("not an enrollment request: {e}"),
            )
        }
    };
    match enroll_agent(
        &state.pool,
        &request,
        &signature,
        ENROLL_PATH,
        &body,
        &state.replay_guard,
    )
    .await
    {
        Ok(agent_id) => {
            let reply = EnrollResponse {
                agent_id: agent_id.to_string(),
                server_public_key: state.server_key.public_base64(),
                heartbeat_interval_secs: state.settings.heartbeat_interval.as_secs(),
            };
            signed_json(
                &state.server_key,
                &signature.nonce,
                StatusCode::CREATED,
                &reply,
            )
        }
        Err(e) => {
            let (status, code) = match &e {
                EnrollError::UnknownToken => (StatusCode::UNAUTHORIZED, "unknown_token"),
                EnrollError::TokenExpired(_) => (StatusCode::UNAUTHORIZED, "token_expired"),
                EnrollError::TokenUsedUp => (StatusCode::UNAUTHORIZED, "token_used_up"),
                EnrollError::BadProof(_) => (StatusCode::UNAUTHORIZED, "bad_signature"),
                EnrollError::InvalidField(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
                EnrollError::KeyAlreadyEnrolled => (StatusCode::CONFLICT, "key_already_enrolled"),
                EnrollError::Database(db) => {
                    tracing::error!(error = %db, "enrollment failed");
                    return unsigned_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "Something went wrong on the server; it has been logged.",
                    );
                }
            };
            tracing::warn!(code, "enrollment refused");
            unsigned_error(status, code, e.to_string())
        }
    }
}

/// `POST /api/agent/v1/heartbeat`
pub async fn heartbeat(
    State(state): State<AppState>,
    from: Option<Extension<ClientAddress>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signature = match request_signature(&headers) {
        Ok(sig) => sig,
        Err(e) => return auth_failure(&e),
    };
    let Ok(agent_id) = Uuid::parse_str(&signature.key_id) else {
        return auth_failure(&AuthError::UnknownKey);
    };
    let agent = match crate::agents::endpoint(&state.pool, agent_id).await {
        Ok(Some(agent)) => agent,
        Ok(None) => return auth_failure(&AuthError::UnknownKey),
        Err(e) => {
            tracing::error!(error = %e, "heartbeat: database unavailable");
            return unsigned_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is unavailable",
            );
        }
    };
    if let Err(e) = verify_incoming(
        &agent.public_key,
        &signature,
        &method,
        HEARTBEAT_PATH,
        &body,
        &state.replay_guard,
    ) {
        return auth_failure(&e);
    }
    let key = &state.server_key;
    let beat: HeartbeatRequest = match serde_json::from_slice(&body) {
        Ok(beat) => beat,
        Err(e) => {
            let error =
                agent_client::wire::ErrorBody::new("bad_json", format!("not a heartbeat: {e}"));
            return signed_json(key, &signature.nonce, StatusCode::BAD_REQUEST, &error);
        }
    };
    if let Err(message) = validate_listen_url(&beat.listen_url) {
        let error = agent_client::wire::ErrorBody::new("invalid_field", message);
        return signed_json(
            key,
            &signature.nonce,
            StatusCode::UNPROCESSABLE_ENTITY,
            &error,
        );
    }
    let from = from.map(|Extension(ClientAddress(address))| address);
    match crate::agents::record_heartbeat(&state.pool, agent_id, &beat, from).await {
        Ok(news) => {
            if news == crate::agents::HeartbeatNews::JournalChanged {
                let dispatcher = state.dispatcher.clone();
                tokio::spawn(async move { dispatcher.read_journal(agent_id).await });
            }
            let reply = HeartbeatResponse {
                heartbeat_interval_secs: state.settings.heartbeat_interval.as_secs(),
            };
            signed_json(key, &signature.nonce, StatusCode::OK, &reply)
        }
        Err(e) => {
            tracing::error!(error = %e, "heartbeat could not be stored");
            let error =
                agent_client::wire::ErrorBody::new("internal", "the heartbeat could not be stored");
            signed_json(
                key,
                &signature.nonce,
                StatusCode::INTERNAL_SERVER_ERROR,
                &error,
            )
        }
    }
}

/// `GET /api/v1/agents`: every agent with its online state and version.
pub async fn list_agents(
    _helpdesk: crate::helpdesk::Helpdesk,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<crate::agents::AgentSummary>>, super::error::ApiError> {
    let agents = crate::agents::list(&state.pool, state.settings.agent_offline_after).await?;
    Ok(axum::Json(agents))
}
