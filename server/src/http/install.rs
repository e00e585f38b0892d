//! Routes used by administrators installing agents: the Windows install script for an
//! enrollment token, and the agent executable it downloads from this server.

use askama::Template;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::ApiError;
use crate::enrollment::{check_token, EnrollError};
use crate::startup::AppState;

/// The port agents listen on when installed by the script.
pub const INSTALLED_AGENT_PORT: u16 = 7410;

#[derive(Debug, Deserialize)]
pub struct InstallQuery {
    token: Option<String>,
}

/// The PowerShell installer, rendered for one token.
#[derive(Template)]
#[template(path = "install-windows.ps1", escape = "none")]
struct WindowsInstaller<'a> {
    server_url: &'a str,
    token: &'a str,
    sha256: &'a str,
    agent_port: u16,
}

/// Askama filters for the installer.
mod filters {
    /// Quotes a value for a single-quoted PowerShell string (a `'` is written twice).
    pub fn ps_quote(
        value: impl std::fmt::Display,
        _: &dyn askama::Values,
    ) -> askama::Result<String> {
        Ok(value.to_string().replace('\'', "''"))
    }
}

/// `GET /api/v1/agents/install/windows.ps1?token=...`
pub async fn windows_script(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<InstallQuery>,
) -> Result<Response, ApiError> {
    let token = query
        .token
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::Invalid {
            field: "token".into(),
            message: "add ?token=TOKEN: an enrollment token from `rdp-doctor token create`".into(),
        })?;
    check_token(&state.pool, &token)
        .await
        .map_err(|e| match e {
            EnrollError::Database(db) => ApiError::Database(db),
            other => ApiError::Unauthorized {
                code: "bad_token",
                message: other.to_string(),
            },
        })?;
    let exe = state.settings.windows_agent.clone();
    let sha256 = tokio::task::spawn_blocking(move || {
        std::fs::read(&exe).map(|bytes| agent_client::signing::sha256_hex(&bytes))
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(|_| {
        ApiError::Unavailable(
            "The Windows agent is not built on this server yet (make build-windows).".into(),
        )
    })?;
    let server_url = public_url(&state, &headers);
    let script = WindowsInstaller {
        server_url: &server_url,
        token: token.trim(),
        sha256: &sha256.to_ascii_uppercase(),
        agent_port: INSTALLED_AGENT_PORT,
    }
    .render()
    .map_err(|e| ApiError::Internal(e.into()))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"install-rdp-doctor-agent.ps1\""),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        script,
    )
        .into_response())
}

/// `GET /downloads/rdp-doctor-agent.exe`
pub async fn windows_agent(State(state): State<AppState>) -> Result<Response, ApiError> {
    let bytes = tokio::fs::read(&state.settings.windows_agent)
        .await
        .map_err(|_| ApiError::NotFound("Windows agent build"))?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/vnd.microsoft.portable-executable"),
        )],
        Body::from(bytes),
    )
        .into_response())
}

/// The server's URL as hosts reach it: configured, else as this request reached it.
fn public_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.settings.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}
