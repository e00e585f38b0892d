//! The agents the server knows: heartbeats, online state, and which agent runs a check.

use std::net::IpAddr;
use std::time::Duration;

use agent_client::signing::public_key_from_base64;
use agent_client::target::{CheckTarget, Host};
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
        heard_within(self.last_seen_at, window)
    }
}

/// Whether the last heartbeat (if any) arrived within `window`.
fn heard_within(last_seen_at: Option<DateTime<Utc>>, window: Duration) -> bool {
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    last_seen_at.is_some_and(|seen| Utc::now() - seen <= window)
}

impl AgentSummary {
    /// Whether the agent runs on Windows (and so can run the Windows host checks).
    pub fn is_windows(&self) -> bool {
        self.os.split_whitespace().next() == Some("windows")
    }

    /// Whether the agent runs on Linux (where the RDP server it can check is xrdp).
    pub fn is_linux(&self) -> bool {
        self.os.split_whitespace().next() == Some("linux")
    }

    /// The address the agent tells the server to call it at, when that is an address
    /// rather than a name: one of the addresses its computer has.
    pub fn address(&self) -> Option<IpAddr> {
        self.listen_target()?.host.ip()
    }

    /// Where the agent listens, as a target to connect to (the port its URL gives, or the
    /// scheme's).
    pub fn listen_target(&self) -> Option<CheckTarget> {
        let url = reqwest::Url::parse(self.listen_url.as_deref()?).ok()?;
        let host = Host::parse(url.host_str()?).ok()?;
        let port = url.port_or_known_default()?;
        Some(CheckTarget { host, port })
    }

    /// Whether the agent runs on the computer `target` names: by host name (or its first
    /// label, since Windows reports `PC-042` for `pc-042.corp.example`), or by address.
    /// `localhost` and loopback addresses name the computer the agent shares with the
    /// server.
    pub fn runs_on(&self, target: &Host) -> bool {
        let first_label = |name: &str| name.split('.').next().unwrap_or(name).to_owned();
        let target_name = target.as_str().to_ascii_lowercase();
        match target.ip() {
            Some(ip) if ip.is_loopback() => self.address().is_some_and(|a| a.is_loopback()),
            Some(ip) => self.address() == Some(ip),
            None if target_name == "localhost" => self.address().is_some_and(|a| a.is_loopback()),
            None => {
                let hostname = self.hostname.to_ascii_lowercase();
                hostname == target_name || first_label(&hostname) == first_label(&target_name)
            }
        }
    }
}

/// The columns of an [`AgentSummary`], in its field order.
const SUMMARY_COLUMNS: &str =
    "id, hostname, os, agent_version, listen_url, enrolled_at, last_seen_at, host(seen_from)";

type SummaryRow = (
    Uuid,
    String,
    String,
    String,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<String>,
);

fn summary_from_row(
    (id, hostname, os, agent_version, listen_url, enrolled_at, last_seen_at, seen_from): SummaryRow,
    offline_after: Duration,
) -> AgentSummary {
    AgentSummary {
        online: heard_within(last_seen_at, offline_after),
        id,
        hostname,
        os,
        agent_version,
        listen_url,
        enrolled_at,
        last_seen_at,
        seen_from: seen_from.and_then(|address| address.parse().ok()),
    }
}

/// Loads one agent; `online` is judged against `offline_after`.
pub async fn summary(
    pool: &PgPool,
    id: Uuid,
    offline_after: Duration,
) -> sqlx::Result<Option<AgentSummary>> {
    let row: Option<SummaryRow> = sqlx::query_as(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM agents WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| summary_from_row(row, offline_after)))
}

/// The agent on the computer a case is about ([`AgentSummary::runs_on`]), the one heard from
/// most recently if several are; None when that computer has no agent. `online` is judged
/// against `offline_after`.
pub async fn on_host(
    pool: &PgPool,
    target: &Host,
    offline_after: Duration,
) -> sqlx::Result<Option<AgentSummary>> {
    // The database narrows the search to names and addresses that can match; the rule
    // itself is `runs_on`.
    let name = target.as_str().to_ascii_lowercase();
    let first_label = name.split('.').next().unwrap_or(&name).to_owned();
    let in_url: Vec<String> = match target.ip() {
        Some(ip) if ip.is_loopback() => loopback_in_url(),
        None if name == "localhost" => loopback_in_url(),
        Some(IpAddr::V4(ip)) => vec![format!("//{ip}:"), format!("//{ip}/")],
        Some(IpAddr::V6(ip)) => vec![format!("//[{ip}]")],
        None => Vec::new(),
    };
    let rows: Vec<SummaryRow> = sqlx::query_as(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM agents \
         WHERE split_part(lower(hostname), '.', 1) = $1 \
            OR (listen_url IS NOT NULL AND EXISTS \
                (SELECT 1 FROM unnest($2::text[]) AS part WHERE position(part IN lower(listen_url)) > 0)) \
         ORDER BY last_seen_at DESC NULLS LAST, enrolled_at DESC"
    ))
    .bind(&first_label)
    .bind(&in_url)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| summary_from_row(row, offline_after))
        .find(|agent| agent.runs_on(target)))
}

/// The agent on the employee's own PC: the one whose heartbeats come from the address the
/// employee's case came `from` (the server sees both through the same network), the one
/// heard from most recently if several share it (behind NAT), never the agent `except` (the
/// case's host). None when no agent beats from there.
pub async fn for_employee(
    pool: &PgPool,
    from: IpAddr,
    except: Option<Uuid>,
    offline_after: Duration,
) -> sqlx::Result<Option<AgentSummary>> {
    let row: Option<SummaryRow> = sqlx::query_as(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM agents \
         WHERE seen_from = $1::inet AND id IS DISTINCT FROM $2 \
         ORDER BY last_seen_at DESC NULLS LAST, enrolled_at DESC LIMIT 1"
    ))
    .bind(from.to_canonical().to_string())
    .bind(except)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| summary_from_row(row, offline_after)))
}

/// How a loopback address can appear in an agent's URL.
fn loopback_in_url() -> Vec<String> {
    ["//127.", "//[::1]", "//localhost"]
        .map(str::to_owned)
        .to_vec()
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

/// Records a heartbeat, and the address it came `from` (the address the server sees the
/// agent's computer at, as it sees the employee's browser: see [`for_employee`]).
pub async fn record_heartbeat(
    pool: &PgPool,
    id: Uuid,
    beat: &HeartbeatRequest,
    from: Option<IpAddr>,
) -> sqlx::Result<HeartbeatNews> {
    let journal_ahead: Option<bool> = sqlx::query_scalar(
        "UPDATE agents SET last_seen_at = now(), listen_url = $2, hostname = $3, os = $4, agent_version = $5, \
             journal_changed_at = $6, seen_from = coalesce($7::inet, seen_from) \
         WHERE id = $1 \
         RETURNING coalesce($6 > coalesce(journal_read_at, -1), false)",
    )
    .bind(id)
    .bind(&beat.listen_url)
    .bind(beat.hostname.trim())
    .bind(beat.os.trim())
    .bind(beat.agent_version.trim())
    .bind(beat.journal_changed_at)
    .bind(from.map(|address| address.to_string()))
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

/// An enrolled agent as operators and cases see it: which computer it runs on, its system,
/// and whether it is still heard from.
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
    /// The address the last heartbeat came from, as the server saw it.
    pub seen_from: Option<IpAddr>,
}

/// Every enrolled agent, most recently seen first.
pub async fn list(pool: &PgPool, offline_after: Duration) -> sqlx::Result<Vec<AgentSummary>> {
    let rows: Vec<SummaryRow> = sqlx::query_as(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM agents ORDER BY last_seen_at DESC NULLS LAST, enrolled_at DESC"
    ))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| summary_from_row(row, offline_after))
        .collect())
}

/// An agent as unit tests need one: a Windows computer `hostname` listening at `listen_url`,
/// never heard from.
#[cfg(test)]
pub(crate) fn example_agent(hostname: &str, listen_url: Option<&str>) -> AgentSummary {
    AgentSummary {
        id: Uuid::new_v4(),
        hostname: hostname.to_owned(),
        os: "windows x86_64".to_owned(),
        agent_version: "0.1.0".to_owned(),
        listen_url: listen_url.map(str::to_owned),
        enrolled_at: Utc::now(),
        last_seen_at: None,
        online: false,
        seen_from: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::example_agent as agent;

    fn host(name: &str) -> Host {
        Host::parse(name).unwrap()
    }

    #[test]
    fn an_agent_runs_on_the_computer_its_name_or_address_names() {
        let pc = agent("PC-042", Some("http://10.1.2.3:7443"));
        assert!(pc.runs_on(&host("pc-042")));
        assert!(pc.runs_on(&host("PC-042.corp.example")));
        assert!(pc.runs_on(&host("10.1.2.3")));
        assert!(!pc.runs_on(&host("pc-0420")));
        assert!(!pc.runs_on(&host("pc-043.corp.example")));
        assert!(!pc.runs_on(&host("10.1.2.4")));
        assert!(!pc.runs_on(&host("localhost")));
        let fqdn = agent("pc-042.corp.example", None);
        assert!(fqdn.runs_on(&host("PC-042")));
        assert!(!fqdn.runs_on(&host("10.1.2.3")), "no address known");
        let here = agent("build-7", Some("http://127.0.0.1:7070"));
        assert!(here.runs_on(&host("localhost")));
        assert!(here.runs_on(&host("127.0.0.1")));
        assert!(here.runs_on(&host("::1")));
    }

    #[test]
    fn the_address_is_read_from_the_url_the_agent_gave() {
        assert_eq!(
            agent("a", Some("http://10.1.2.3:7443")).address(),
            Some("10.1.2.3".parse().unwrap())
        );
        assert_eq!(
            agent("a", Some("https://[fd00::5]:7443/")).address(),
            Some("fd00::5".parse().unwrap())
        );
        assert_eq!(agent("a", Some("http://pc-042:7443")).address(), None);
        let target = |url| agent("a", Some(url)).listen_target().map(|t| t.to_string());
        assert_eq!(
            target("http://10.1.2.3:7443").as_deref(),
            Some("10.1.2.3:7443")
        );
        assert_eq!(
            target("https://[fd00::5]/").as_deref(),
            Some("[fd00::5]:443")
        );
        assert_eq!(target("http://pc-042:7443").as_deref(), Some("pc-042:7443"));
        assert_eq!(target("not a url"), None);
        assert_eq!(agent("a", Some("not a url")).address(), None);
        assert_eq!(agent("a", None).address(), None);
        assert!(agent("a", None).is_windows());
        let linux = AgentSummary {
            os: "linux x86_64".to_owned(),
            ..agent("a", None)
        };
        assert!(!linux.is_windows());
        assert!(linux.is_linux());
        assert!(!agent("a", None).is_linux());
    }
}
