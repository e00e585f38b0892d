//! Enrollment tokens and the enrollment of agents.
//!
//! A token is 32 random bytes shown once to the administrator; only its SHA-256 is stored.
//! Enrolling consumes one use of the token and registers the agent's public key, in one
//! transaction, so a refused enrollment changes nothing.

use std::time::Duration;

use agent_client::signing::{
    public_key_from_base64, random_bytes, sha256_hex, verify_request, AuthError, ReplayGuard,
    RequestSignature, ENROLL_KEY_ID,
};
use agent_client::wire::EnrollRequest;
use anyhow::Context;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// Tokens start with this, so they are recognisable in a config file or a secret scanner.
pub const TOKEN_PREFIX: &str = "rdpd_enroll_";

/// A new secret: `prefix` and 32 random bytes in URL-safe base64. Only its SHA-256 is stored.
pub fn new_secret(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

/// A freshly created token: the only time its clear text exists.
#[derive(Debug)]
pub struct NewToken {
    pub id: Uuid,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Creates a token valid for `valid_for`, usable `uses` times.
pub async fn create_token(
    pool: &PgPool,
    valid_for: Duration,
    uses: u32,
) -> anyhow::Result<NewToken> {
    let token = new_secret(TOKEN_PREFIX);
    let id = Uuid::new_v4();
    let expires_at = Utc::now() + chrono::Duration::from_std(valid_for)?;
    sqlx::query(
        "INSERT INTO enrollment_tokens (id, token_hash, expires_at, max_uses) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(sha256_hex(token.as_bytes()))
    .bind(expires_at)
    .bind(i32::try_from(uses).context("too many uses")?)
    .execute(pool)
    .await
    .context("Failed to store the enrollment token")?;
    Ok(NewToken {
        id,
        token,
        expires_at,
    })
}

/// Why an enrollment was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("this enrollment token is not known to the server")]
    UnknownToken,
    #[error(
        "this enrollment token expired at {0}; create a new one with `rdp-doctor token create`"
    )]
    TokenExpired(DateTime<Utc>),
    #[error(
        "this enrollment token has been used up; create a new one with `rdp-doctor token create`"
    )]
    TokenUsedUp,
    #[error("the enrollment request is not signed by the key it registers: {0}")]
    BadProof(AuthError),
    #[error("{0}")]
    InvalidField(String),
    #[error("this agent key is already enrolled")]
    KeyAlreadyEnrolled,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Longest host name, OS or version string accepted from an agent.
const MAX_AGENT_TEXT: usize = 255;

/// Verifies the enrollment request and, if the token allows it, registers the agent.
pub async fn enroll_agent(
    pool: &PgPool,
    request: &EnrollRequest,
    signature: &RequestSignature,
    path: &str,
    body: &[u8],
    replay_guard: &ReplayGuard,
) -> Result<Uuid, EnrollError> {
    let key = public_key_from_base64(&request.public_key)
        .map_err(|_| EnrollError::InvalidField("public_key is not a base64 Ed25519 key".into()))?;
    if signature.key_id != ENROLL_KEY_ID {
        return Err(EnrollError::BadProof(AuthError::UnknownKey));
    }
    verify_request(&key, signature, "POST", path, body, replay_guard)
        .map_err(EnrollError::BadProof)?;
    for (name, value) in [
        ("hostname", &request.hostname),
        ("os", &request.os),
        ("agent_version", &request.agent_version),
    ] {
        if value.trim().is_empty() || value.len() > MAX_AGENT_TEXT {
            return Err(EnrollError::InvalidField(format!(
                "{name} must be between 1 and {MAX_AGENT_TEXT} characters"
            )));
        }
    }
    if let Some(url) = &request.listen_url {
        validate_listen_url(url).map_err(EnrollError::InvalidField)?;
    }

    let mut tx = pool.begin().await?;
    let token: Option<(Uuid, DateTime<Utc>, i32, i32)> = sqlx::query_as(
        "SELECT id, expires_at, uses, max_uses FROM enrollment_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(sha256_hex(request.token.trim().as_bytes()))
    .fetch_optional(&mut *tx)
    .await?;
    let (token_id, expires_at, uses, max_uses) = token.ok_or(EnrollError::UnknownToken)?;
    ensure_usable(expires_at, uses, max_uses)?;
    sqlx::query("UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = $1")
        .bind(token_id)
        .execute(&mut *tx)
        .await?;
    let agent_id = Uuid::new_v4();
    let inserted = sqlx::query(
        "INSERT INTO agents (id, public_key, hostname, os, agent_version, listen_url, enrolled_with) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(agent_id)
    .bind(&request.public_key)
    .bind(request.hostname.trim())
    .bind(request.os.trim())
    .bind(request.agent_version.trim())
    .bind(&request.listen_url)
    .bind(token_id)
    .execute(&mut *tx)
    .await;
    if let Err(sqlx::Error::Database(e)) = &inserted {
        if e.constraint() == Some("agents_public_key_key") {
            return Err(EnrollError::KeyAlreadyEnrolled);
        }
    }
    inserted?;
    tx.commit().await?;
    tracing::info!(agent.id = %agent_id, agent.hostname = %request.hostname, "agent enrolled");
    Ok(agent_id)
}

/// Refuses a token that expired or has no use left.
fn ensure_usable(expires_at: DateTime<Utc>, uses: i32, max_uses: i32) -> Result<(), EnrollError> {
    if expires_at <= Utc::now() {
        return Err(EnrollError::TokenExpired(expires_at));
    }
    if uses >= max_uses {
        return Err(EnrollError::TokenUsedUp);
    }
    Ok(())
}

/// Whether `token` could enroll an agent now (without using it up).
pub async fn check_token(pool: &PgPool, token: &str) -> Result<(), EnrollError> {
    let row: Option<(DateTime<Utc>, i32, i32)> = sqlx::query_as(
        "SELECT expires_at, uses, max_uses FROM enrollment_tokens WHERE token_hash = $1",
    )
    .bind(sha256_hex(token.trim().as_bytes()))
    .fetch_optional(pool)
    .await?;
    let (expires_at, uses, max_uses) = row.ok_or(EnrollError::UnknownToken)?;
    ensure_usable(expires_at, uses, max_uses)
}

/// An agent's listen URL must be a plain http(s) origin the server can call.
pub fn validate_listen_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| "listen_url must start with http:// or https://".to_owned())?;
    let authority = rest.trim_end_matches('/');
    if url.len() > MAX_AGENT_TEXT
        || authority.is_empty()
        || authority.contains(['/', '?', '#', '@', ' '])
    {
        return Err("listen_url must be an origin such as http://10.0.0.5:7410".to_owned());
    }
    Ok(())
}
