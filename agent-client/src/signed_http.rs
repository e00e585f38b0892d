//! Signed JSON over HTTP in both directions: calling a peer with `reqwest` and answering a
//! peer from an `axum` handler. The server and the agent use the same two halves.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use ed25519_dalek::VerifyingKey;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::root_cause;
use crate::signing::{
    sign_request, sign_response, verify_request, verify_response, AuthError, Keypair, ReplayGuard,
    RequestSignature, ResponseSignature,
};
use crate::wire::ErrorBody;

/// Who signs an outgoing request, and whose key must have signed the reply.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    pub key: &'a Keypair,
    pub key_id: &'a str,
    /// The peer's key; `None` only for enrollment, before the agent knows the server's key.
    pub peer_key: Option<&'a VerifyingKey>,
}

/// Why a signed call did not produce the expected reply.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("could not reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("no reply from {url} within {timeout:?}")]
    TimedOut { url: String, timeout: Duration },
    #[error("{}", .body.error.message)]
    Refused { status: u16, body: ErrorBody },
    #[error("the reply is not signed by the expected key: {0}")]
    UnauthenticatedReply(AuthError),
    #[error("the reply could not be read: {0}")]
    MalformedReply(String),
}

/// Sends `body` as JSON to `base_url` + `path`, signed, and reads a signed JSON reply.
pub async fn post_json<Req: Serialize, Resp: DeserializeOwned>(
    client: &reqwest::Client,
    base_url: &str,
    path: &str,
    signer: Signer<'_>,
    body: &Req,
    timeout: Duration,
) -> Result<Resp, CallError> {
    let url = format!("{}{}", base_url.trim_end_matches('/'), path);
    let payload = serde_json::to_vec(body).map_err(|e| CallError::MalformedReply(e.to_string()))?;
    let signature = sign_request(signer.key, signer.key_id, "POST", path, &payload);
    let mut request = client
        .post(&url)
        .timeout(timeout)
        .header("content-type", "application/json")
        .body(payload);
    for (name, value) in signature.headers() {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            CallError::TimedOut {
                url: url.clone(),
                timeout,
            }
        } else {
            CallError::Unreachable {
                url: url.clone(),
                reason: root_cause(&e),
            }
        }
    })?;
    let status = response.status().as_u16();
    let reply_signature = ResponseSignature::from_headers(|name| {
        response.headers().get(name).and_then(|v| v.to_str().ok())
    });
    let bytes = response.bytes().await.map_err(|e| {
        if e.is_timeout() {
            CallError::TimedOut {
                url: url.clone(),
                timeout,
            }
        } else {
            CallError::MalformedReply(root_cause(&e))
        }
    })?;
    if let Some(peer_key) = signer.peer_key {
        // Error replies are signed too, but an unsigned refusal (e.g. from a proxy) is still
        // worth reporting as a refusal rather than as a forgery.
        match reply_signature {
            Ok(sig) => verify_response(peer_key, &sig, status, &signature.nonce, &bytes)
                .map_err(CallError::UnauthenticatedReply)?,
            Err(e) if (200..300).contains(&status) => {
                return Err(CallError::UnauthenticatedReply(e))
            }
            Err(_) => {}
        }
    }
    if !(200..300).contains(&status) {
        let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| {
            ErrorBody::new(
                "http_error",
                format!("the peer answered with HTTP status {status}"),
            )
        });
        return Err(CallError::Refused { status, body });
    }
    serde_json::from_slice(&bytes).map_err(|e| CallError::MalformedReply(e.to_string()))
}

/// Reads the signature headers of a received request.
pub fn request_signature(headers: &HeaderMap) -> Result<RequestSignature, AuthError> {
    RequestSignature::from_headers(|name| headers.get(name).and_then(|v| v.to_str().ok()))
}

/// Verifies a received request against the key its signature names.
pub fn verify_incoming(
    key: &VerifyingKey,
    signature: &RequestSignature,
    method: &Method,
    path: &str,
    body: &Bytes,
    replay_guard: &ReplayGuard,
) -> Result<(), AuthError> {
    verify_request(key, signature, method.as_str(), path, body, replay_guard)
}

/// A JSON reply signed for the request that carried `request_nonce`.
pub fn signed_json<T: Serialize>(
    key: &Keypair,
    request_nonce: &str,
    status: StatusCode,
    value: &T,
) -> Response {
    let body = match serde_json::to_vec(value) {
        Ok(body) => body,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let signature = sign_response(key, status.as_u16(), request_nonce, &body);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in signature.headers() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

/// An unsigned JSON error, for requests that could not be authenticated (there is no
/// verified nonce to bind a signature to).
pub fn unsigned_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, axum::Json(ErrorBody::new(code, message))).into_response()
}

/// The reply to a request whose signature did not verify.
pub fn auth_failure(error: &AuthError) -> Response {
    tracing::warn!(reason = %error, "refused an unauthenticated request");
    let code = match error {
        AuthError::Stale => "stale_request",
        AuthError::Replayed => "replayed_request",
        AuthError::UnknownKey => "unknown_key",
        _ => "bad_signature",
    };
    unsigned_error(StatusCode::UNAUTHORIZED, code, error.to_string())
}
