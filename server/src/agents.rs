//! The agents the server knows: heartbeats, online state, and which agent runs a check.

use std::time::Duration;

use agent_client::signing::public_key_from_base64;
use agent_client::wire::HeartbeatRequest;
use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use sqlx::PgPool;
use uuid::Uuid;

/// How to reach an agent and check that it is the one answering.
#[derive(Debug, Clone)]
pub struct AgentEndpoint {
    pub id: Uuid,
    pub hostname: String,
    pub listen_url: Option<String>,
    pub public_key: VerifyingKey,
    pub last_seen_at: Option<DateTime<Utc>>,
}

impl AgentEndpoint {
    /// Whether a heartbeat arrived within `window`.
    pub fn is_online(&self, window: Duration) -> bool {
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        self.last_seen_at
            .is_some_and(|seen| Utc::now() - seen <= window)
    }
}

type EndpointRow = (Uuid, String, Option<String>, String, Option<DateTime<Utc>>);

fn endpoint_from_row(
    (id, hostname, listen_url, public_key, last_seen_at): EndpointRow,
) -> Option<AgentEndpoint> {
    // A key that no longer parses cannot authenticate anything: treat the agent as unknown.
    let public_key = public_key_from_base64(&public_key).ok()?;
    Some(AgentEndpoint {
        id,
        hostname,
        listen_url,
        public_key,
        last_seen_at,
    })
}

/// Loads one agent.
pub async fn endpoint(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<AgentEndpoint>> {
    let row: Option<EndpointRow> = sqlx::query_as(
        "SELECT id, hostname, listen_url, public_key, last_seen_at FROM agents WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(endpoint_from_row))
}

/// The agent an employee's check runs on: the configured one (by id or host name), else
/// the agent heard from most recently.
pub async fn pick_for_check(pool: &PgPool, preferred: Option<&str>) -> sqlx::Result<Option<Uuid>> {
    if let Some(preferred) = preferred {
        let by_id = Uuid::parse_str(preferred).ok();
        let found: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM agents WHERE id = $1 OR lower(hostname) = lower($2) \
             ORDER BY last_seen_at DESC NULLS LAST LIMIT 1",
        )
        .bind(by_id)
        .bind(preferred)
        .fetch_optional(pool)
        .await?;
        if found.is_some() {
            return Ok(found);
        }
    }
    sqlx::query_scalar(
        "SELECT id FROM agents ORDER BY last_seen_at DESC NULLS LAST, enrolled_at DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await
}

/// What a heartbeat told the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatNews {
    UnknownAgent,
    Recorded,
    /// The agent's fix journal changed since the server last read it.
    JournalChanged,
}

/// Records a heartbeat.
pub async fn record_heartbeat(
    pool: &PgPool,
    id: Uuid,
    beat: &HeartbeatRequest,
) -> sqlx::Result<HeartbeatNews> {
    let journal_ahead: Option<bool> = sqlx::query_scalar(
        "UPDATE agents SET last_seen_at = now(), listen_url = $2, hostname = $3, os = $4, agent_version = $5, \
             journal_changed_at = $6 \
         WHERE id = $1 \
         RETURNING coalesce($6 > coalesce(journal_read_at, -1), false)",
    )
    .bind(id)
    .bind(&beat.listen_url)
    .bind(beat.hostname.trim())
    .bind(beat.os.trim())
    .bind(beat.agent_version.trim())
    .bind(beat.journal_changed_at)
    .fetch_optional(pool)
    .await?;
    Ok(match journal_ahead {
        None => HeartbeatNews::UnknownAgent,
        Some(false) => HeartbeatNews::Recorded,
        Some(true) => HeartbeatNews::JournalChanged,
    })
}

/// Notes how far the server has read an agent's journal (never backwards).
pub async fn mark_journal_read(pool: &PgPool, id: Uuid, up_to: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE agents SET journal_read_at = greatest(coalesce(journal_read_at, $2), $2) WHERE id = $1",
    )
    .bind(id)
    .bind(up_to)
    .execute(pool)
    .await?;
    Ok(())
}

/// How far the server has read an agent's journal.
pub async fn journal_read_at(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT journal_read_at FROM agents WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
        .map(Option::flatten)
}

/// An agent as operators see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentSummary {
    pub id: Uuid,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    pub listen_url: Option<String>,
    pub enrolled_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// A heartbeat arrived within the offline window.
    pub online: bool,
}

/// Every enrolled agent, most recently seen first.
pub async fn list(pool: &PgPool, offline_after: Duration) -> sqlx::Result<Vec<AgentSummary>> {
    type Row = (
        Uuid,
        String,
        String,
        String,
        Option<String>,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, hostname, os, agent_version, listen_url, enrolled_at, last_seen_at FROM agents \
         ORDER BY last_seen_at DESC NULLS LAST, enrolled_at DESC",
    )
    .fetch_all(pool)
    .await?;
    let window = chrono::Duration::from_std(offline_after).unwrap_or(chrono::Duration::MAX);
    let now = Utc::now();
    Ok(rows
        .into_iter()
        .map(
            |(id, hostname, os, agent_version, listen_url, enrolled_at, last_seen_at)| {
                AgentSummary {
                    online: last_seen_at.is_some_and(|seen| now - seen <= window),
                    id,
                    hostname,
                    os,
                    agent_version,
                    listen_url,
                    enrolled_at,
                    last_seen_at,
                }
            },
        )
        .collect())
}
