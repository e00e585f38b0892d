//! Helpdesk accounts: who may approve a downgrade or roll a fix back.
//!
//! An account is a name and a token made by `rdp-doctor helpdesk add NAME`; the token (32
//! random bytes) is shown once and only its SHA-256 is stored. API calls carry it as
//! `Authorization: Bearer rdpd_helpdesk_...`; the [`Helpdesk`] extractor refuses anything
//! else with a 401 in the API's error format.

use agent_client::signing::sha256_hex;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sqlx::PgPool;
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::startup::AppState;

/// Helpdesk tokens start with this, so a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "rdpd_helpdesk_";

/// A signed-in helpdesk account.
#[derive(Debug, Clone)]
pub struct Helpdesk {
    pub id: Uuid,
    pub name: String,
}

/// Whether a name is acceptable for an account: 1 to 64 of `A-Z a-z 0-9 . _ @ -`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
}

/// Creates an account (or gives an existing one a new token, revoking the old) and returns
/// the token: the only time it exists in clear.
pub async fn add_account(pool: &PgPool, name: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        valid_name(name),
        "{name:?} is not a valid account name: use 1 to 64 letters, digits, '.', '_', '@' or '-'"
    );
    let token = crate::enrollment::new_secret(TOKEN_PREFIX);
    sqlx::query(
        "INSERT INTO helpdesk_accounts (id, name, token_hash) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET token_hash = EXCLUDED.token_hash, revoked_at = NULL",
    )
    .bind(Uuid::new_v4())
    .bind(name)
    .bind(sha256_hex(token.as_bytes()))
    .execute(pool)
    .await?;
    Ok(token)
}

/// Revokes an account's token; false when there is no such account.
pub async fn revoke_account(pool: &PgPool, name: &str) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE helpdesk_accounts SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL",
    )
    .bind(name)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::Unauthorized {
        code: "helpdesk_login_required",
        message: message.to_owned(),
    }
}

impl FromRequestParts<AppState> for Helpdesk {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(unauthorized(
                "This needs a helpdesk account: send `Authorization: Bearer <token>` (see `rdp-doctor helpdesk add`).",
            ));
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| t.starts_with(TOKEN_PREFIX))
            .ok_or_else(|| {
                unauthorized("The Authorization header is not a helpdesk bearer token.")
            })?;
        let account: Option<(Uuid, String)> = sqlx::query_as(
            "SELECT id, name FROM helpdesk_accounts WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(sha256_hex(token.as_bytes()))
        .fetch_optional(&state.pool)
        .await?;
        let (id, name) =
            account.ok_or_else(|| unauthorized("This helpdesk token is unknown or revoked."))?;
        Ok(Helpdesk { id, name })
    }
}
