//! Fixes for a case: which agent runs one, what is checked before it is queued as a job,
//! helpdesk approvals for downgrades, and the agent journal's later news (rolled back,
//! reverted when its approval expired) written back into the job.
//!
//! A fix is queued as a job of kind `fix` in the one durable queue ([`crate::dispatch`]);
//! the dispatcher sends it with the job's idempotency key and, for a downgrade, the approval
//! this module issued. The agent verifies the approval itself: the server's checks here only
//! give the caller a clear error before anything is queued.

use agent_client::host::approval;
use agent_client::host::fix::{fix_info, MAX_DOWNGRADE_SECS};
use agent_client::signing::Keypair;
use agent_client::target::Host;
use agent_client::wire::{ActionRecord, ApprovalClaims, FixResponse, FixSpec, FixTier};
use app::case::{FixActionView, FixRunView};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::Settings;
use crate::helpdesk::Helpdesk;

/// What a fix job stores in `jobs.spec`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FixJobSpec {
    pub fix: FixSpec,
    #[serde(default)]
    pub dry_run: bool,
}

/// Where a fix runs: on the employee's PC, or on the RDP host they connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixSide {
    Client,
    Host,
}

/// Knowledge-model actions an agent performs: the model's action, the agent fix, and where
/// it runs. Model actions not listed (e.g. `host.restart`) are done by people; agent fixes not
/// listed (the xrdp ones) change the host.
const AGENT_FIXES: &[(&str, &str, FixSide)] = &[
    ("client.flush_dns", "flush-dns", FixSide::Client),
    (
        "client.reset_licensing_cache",
        "reset-licensing-cache",
        FixSide::Client,
    ),
    ("client.resync_clock", "resync-clock", FixSide::Client),
    (
        "client.allow_encryption_oracle",
        "allow-encryption-oracle",
        FixSide::Client,
    ),
    (
        "host.start_rdp_services",
        "start-rdp-services",
        FixSide::Host,
    ),
    (
        "host.enable_rdp_firewall_rules",
        "enable-firewall-rule",
        FixSide::Host,
    ),
    (
        "host.enable_rdp_websocket_rule",
        "enable-gateway-transport",
        FixSide::Host,
    ),
    ("host.restore_rdp_port", "restore-rdp-port", FixSide::Host),
    (
        "host.renew_rdp_certificate",
        "renew-rdp-certificate",
        FixSide::Host,
    ),
    ("host.enable_tls12", "enable-tls12", FixSide::Host),
    (
        "host.set_security_layer_negotiate",
        "set-security-layer-negotiate",
        FixSide::Host,
    ),
    ("host.disable_nla", "disable-nla", FixSide::Host),
];

/// The agent fix that performs a knowledge-model action, and where it runs.
pub fn agent_fix_for_action(action: &str) -> Option<(&'static str, FixSide)> {
    AGENT_FIXES
        .iter()
        .find(|(model_action, _, _)| *model_action == action)
        .map(|(_, fix, side)| (*fix, *side))
}

/// For each fix of `model` that an agent performs: the agent's fix id.
pub fn agent_fixes_of(model: &engine::Model) -> std::collections::BTreeMap<String, String> {
    model
        .fixes
        .iter()
        .filter_map(|fix| {
            let (agent_fix, _) = fix.action.as_deref().and_then(agent_fix_for_action)?;
            Some((fix.id.clone(), agent_fix.to_owned()))
        })
        .collect()
}

/// Where an agent fix runs.
pub fn side_of(fix_id: &str) -> FixSide {
    AGENT_FIXES
        .iter()
        .find(|(_, fix, _)| *fix == fix_id)
        .map_or(FixSide::Host, |(_, _, side)| *side)
}

/// The shortest approval: long enough to run the fix and see whether it helps.
pub const MIN_APPROVAL_SECS: i64 = 10;

/// Why a fix or an approval was refused. Nothing is stored when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum FixError {
    #[error("no such case")]
    UnknownCase,
    #[error("no enrolled agent has the id {0}")]
    UnknownAgent(Uuid),
    #[error("no agent is enrolled, so nothing can apply a fix")]
    NoAgent,
    #[error(
        "no agent runs on {0}, so nothing can apply a fix to it there; install the agent on \
         that computer, or name the agent to use (`agent_id`)"
    )]
    NoAgentOnHost(String),
    #[error("{0} weakens security: it needs an approval from the helpdesk (`approval_id`)")]
    ApprovalRequired(&'static str),
    #[error("{0} is not a downgrade; only downgrades take an approval")]
    NotADowngrade(String),
    #[error("{0:?} is not a known fix")]
    UnknownFix(String),
    #[error("no such approval")]
    UnknownApproval,
    #[error("this approval is for {0}")]
    ApprovalMismatch(String),
    #[error("this approval expired at {0}")]
    ApprovalExpired(DateTime<Utc>),
    #[error("this approval was already used by another fix job")]
    ApprovalUsed,
    #[error("an approval lasts from {MIN_APPROVAL_SECS} to {MAX_DOWNGRADE_SECS} seconds")]
    BadDuration,
    #[error("say in a few words why the downgrade is approved (1 to 500 characters)")]
    BadReason,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A fix asked for a case.
#[derive(Debug, Clone)]
pub struct FixOrder {
    pub fix: FixSpec,
    /// The agent to run it; by default, for a fix of the host the agent on the case's host
    /// (refused when that computer has none), for a fix of the employee's PC the default
    /// agent.
    pub agent_id: Option<Uuid>,
    pub dry_run: bool,
    /// Required for a downgrade (not for its dry run).
    pub approval_id: Option<Uuid>,
    /// `employee`, or a helpdesk account's name.
    pub requested_by: String,
}

/// Queues a fix for a case and returns the job's id. Everything is checked first, in one
/// transaction: a refused order stores nothing and leaves its approval unused.
pub async fn queue_fix(
    pool: &PgPool,
    settings: &Settings,
    case_id: Uuid,
    order: FixOrder,
) -> Result<Uuid, FixError> {
    let mut tx = pool.begin().await?;
    let target_host: String = sqlx::query_scalar("SELECT target_host FROM cases WHERE id = $1")
        .bind(case_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(FixError::UnknownCase)?;
    let agent_id = match order.agent_id {
        Some(id) => {
            let known: Option<Uuid> = sqlx::query_scalar("SELECT id FROM agents WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            known.ok_or(FixError::UnknownAgent(id))?
        }
        None => match side_of(order.fix.id()) {
            FixSide::Host => agent_for_host(pool, settings, &target_host)
                .await?
                .ok_or(FixError::NoAgentOnHost(target_host))?,
            FixSide::Client => {
                crate::agents::pick_for_check(pool, settings.default_agent.as_deref())
                    .await?
                    .ok_or(FixError::NoAgent)?
            }
        },
    };
    let fix_id = order.fix.id();
    let tier = order.fix.tier();
    let job_id = Uuid::new_v4();
    let approval_id = match (tier, order.approval_id) {
        (FixTier::Downgrade, Some(approval_id)) => {
            take_approval(&mut tx, approval_id, case_id, agent_id, fix_id).await?;
            Some(approval_id)
        }
        (FixTier::Downgrade, None) if !order.dry_run => {
            return Err(FixError::ApprovalRequired(fix_id))
        }
        (FixTier::Downgrade, None) => None,
        (_, Some(_)) => return Err(FixError::NotADowngrade(fix_id.to_owned())),
        (_, None) => None,
    };
    let deadline =
        Utc::now() + chrono::Duration::from_std(settings.check_deadline).unwrap_or_default();
    let spec = FixJobSpec {
        fix: order.fix,
        dry_run: order.dry_run,
    };
    sqlx::query(
        "INSERT INTO jobs (id, case_id, agent_id, runner, kind, catalogue_id, spec, status, \
             idempotency_key, max_attempts, deadline, requested_by, approval_id) \
         VALUES ($1, $2, $3, 'agent', 'fix', $4, $5, 'queued', $1, $6, $7, $8, $9)",
    )
    .bind(job_id)
    .bind(case_id)
    .bind(agent_id)
    .bind(fix_id)
    .bind(sqlx::types::Json(&spec))
    .bind(settings.max_attempts)
    .bind(deadline)
    .bind(&order.requested_by)
    .bind(approval_id)
    .execute(&mut *tx)
    .await?;
    if let Some(approval_id) = approval_id {
        sqlx::query("UPDATE fix_approvals SET used_by = $2 WHERE id = $1")
            .bind(approval_id)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
    }
    crate::dispatch::announce_queued(&mut tx).await?;
    crate::dispatch::announce_case_change(&mut tx, case_id).await?;
    tx.commit().await?;
    tracing::info!(case.id = %case_id, job.id = %job_id, fix = fix_id, dry_run = spec.dry_run, "fix queued");
    Ok(job_id)
}

/// The agent on the case's host ([`crate::agents::on_host`]). Never another one: a fix of
/// the host applied on some other computer would change the wrong machine.
async fn agent_for_host(
    pool: &PgPool,
    settings: &Settings,
    target_host: &str,
) -> sqlx::Result<Option<Uuid>> {
    let Ok(host) = Host::parse(target_host) else {
        return Ok(None);
    };
    let on_host = crate::agents::on_host(pool, &host, settings.agent_offline_after).await?;
    Ok(on_host.map(|agent| agent.id))
}

/// Checks that an approval covers this case, agent and fix, is in date and unused; locks it
/// until the transaction ends.
async fn take_approval(
    tx: &mut sqlx::PgConnection,
    approval_id: Uuid,
    case_id: Uuid,
    agent_id: Uuid,
    fix_id: &str,
) -> Result<(), FixError> {
    type Row = (Uuid, Uuid, String, DateTime<Utc>, Option<Uuid>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT case_id, agent_id, fix_id, expires_at, used_by FROM fix_approvals \
         WHERE id = $1 FOR UPDATE",
    )
    .bind(approval_id)
    .fetch_optional(&mut *tx)
    .await?;
    let (for_case, for_agent, for_fix, expires_at, used_by) =
        row.ok_or(FixError::UnknownApproval)?;
    if for_case != case_id {
        return Err(FixError::ApprovalMismatch(format!(
            "another case ({for_case})"
        )));
    }
    if for_agent != agent_id {
        return Err(FixError::ApprovalMismatch(format!(
            "another agent ({for_agent})"
        )));
    }
    if for_fix != fix_id {
        return Err(FixError::ApprovalMismatch(format!(
            "another fix ({for_fix})"
        )));
    }
    if used_by.is_some() {
        return Err(FixError::ApprovalUsed);
    }
    if expires_at <= Utc::now() {
        return Err(FixError::ApprovalExpired(expires_at));
    }
    Ok(())
}

/// A helpdesk account's approval of a downgrade.
#[derive(Debug, Clone)]
pub struct ApprovalOrder {
    pub agent_id: Uuid,
    pub fix: String,
    pub valid_for_secs: i64,
    pub reason: String,
}

/// An approval as the API shows it (the signed token goes to the agent only).
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalView {
    pub approval_id: Uuid,
    pub case_id: Uuid,
    pub agent_id: Uuid,
    pub fix: String,
    pub approved_by: String,
    pub reason: String,
    pub issued_at: DateTime<Utc>,
    /// The downgrade cannot start after this, and the agent reverts it at this time.
    pub expires_at: DateTime<Utc>,
}

/// Issues an approval signed with the server's key, for one downgrade on one agent for one
/// case, valid for `valid_for_secs`.
pub async fn approve(
    pool: &PgPool,
    server_key: &Keypair,
    case_id: Uuid,
    by: &Helpdesk,
    order: ApprovalOrder,
) -> Result<ApprovalView, FixError> {
    let info = fix_info(&order.fix).ok_or_else(|| FixError::UnknownFix(order.fix.clone()))?;
    if info.tier != FixTier::Downgrade {
        return Err(FixError::NotADowngrade(order.fix));
    }
    if !(MIN_APPROVAL_SECS..=MAX_DOWNGRADE_SECS).contains(&order.valid_for_secs) {
        return Err(FixError::BadDuration);
    }
    let reason = order.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(FixError::BadReason);
    }
    let mut tx = pool.begin().await?;
    let case_known: Option<Uuid> = sqlx::query_scalar("SELECT id FROM cases WHERE id = $1")
        .bind(case_id)
        .fetch_optional(&mut *tx)
        .await?;
    case_known.ok_or(FixError::UnknownCase)?;
    let agent_known: Option<Uuid> = sqlx::query_scalar("SELECT id FROM agents WHERE id = $1")
        .bind(order.agent_id)
        .fetch_optional(&mut *tx)
        .await?;
    agent_known.ok_or(FixError::UnknownAgent(order.agent_id))?;
    let approval_id = Uuid::new_v4();
    let issued_at = Utc::now();
    let expires_at = issued_at + chrono::Duration::seconds(order.valid_for_secs);
    let claims = ApprovalClaims {
        approval_id: approval_id.to_string(),
        agent_id: order.agent_id.to_string(),
        fix: info.id.to_owned(),
        case_id: case_id.to_string(),
        approved_by: by.name.clone(),
        issued_at: issued_at.timestamp(),
        expires_at: expires_at.timestamp(),
    };
    let token = approval::issue(server_key, &claims);
    sqlx::query(
        "INSERT INTO fix_approvals (id, case_id, agent_id, fix_id, approved_by, reason, \
             issued_at, expires_at, token) \
         VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7), to_timestamp($8), $9)",
    )
    .bind(approval_id)
    .bind(case_id)
    .bind(order.agent_id)
    .bind(info.id)
    .bind(by.id)
    .bind(&reason)
    .bind(claims.issued_at as f64)
    .bind(claims.expires_at as f64)
    .bind(&token.0)
    .execute(&mut *tx)
    .await?;
    crate::dispatch::announce_case_change(&mut tx, case_id).await?;
    tx.commit().await?;
    tracing::info!(case.id = %case_id, approval.id = %approval_id, fix = info.id, approved_by = %by.name, "downgrade approved");
    Ok(ApprovalView {
        approval_id,
        case_id,
        agent_id: order.agent_id,
        fix: info.id.to_owned(),
        approved_by: by.name.clone(),
        reason,
        issued_at: DateTime::from_timestamp(claims.issued_at, 0).unwrap_or(issued_at),
        expires_at: DateTime::from_timestamp(claims.expires_at, 0).unwrap_or(expires_at),
    })
}

type FixRow = (
    Uuid,
    String,
    Option<sqlx::types::Json<FixJobSpec>>,
    Option<String>,
    String,
    Option<String>,
    Option<sqlx::types::Json<FixResponse>>,
    Option<String>,
);

/// The fixes asked for a case, oldest first.
pub async fn for_case(pool: &PgPool, case_id: Uuid) -> sqlx::Result<Vec<FixRunView>> {
    let rows: Vec<FixRow> = sqlx::query_as(
        "SELECT j.id, j.catalogue_id, j.spec, j.requested_by, j.status::text, a.hostname, \
             j.report, j.problem \
         FROM jobs j LEFT JOIN agents a ON a.id = j.agent_id \
         WHERE j.case_id = $1 AND j.kind = 'fix' ORDER BY j.seq",
    )
    .bind(case_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(job_id, fix_id, spec, requested_by, status, agent_hostname, report, problem)| {
                FixRunView {
                    job_id: job_id.to_string(),
                    tier: fix_info(&fix_id)
                        .map(|f| tier_name(f.tier))
                        .unwrap_or("change")
                        .to_owned(),
                    fix_id,
                    dry_run: spec.is_some_and(|s| s.0.dry_run),
                    requested_by: requested_by.unwrap_or_else(|| "employee".to_owned()),
                    status: crate::cases::status_from_db(&status),
                    agent_hostname,
                    action: report.map(|r| action_view(r.0)),
                    problem,
                }
            },
        )
        .collect())
}

fn action_view(response: FixResponse) -> FixActionView {
    let record = response.action;
    FixActionView {
        action_id: record.action_id,
        state: record.state,
        plan: record.plan,
        verification: record.verification,
        revert_at: record.revert_at,
        repeated: response.repeated,
    }
}

/// One fix job of a case as the portal shows it.
pub async fn fix_run(
    pool: &PgPool,
    case_id: Uuid,
    job_id: Uuid,
) -> sqlx::Result<Option<FixRunView>> {
    let job_id = job_id.to_string();
    let runs = for_case(pool, case_id).await?;
    Ok(runs.into_iter().find(|run| run.job_id == job_id))
}

/// Why a fix was not rolled back. Nothing changes on the host or in the job.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("this case has no fix job {0}")]
    UnknownJob(Uuid),
    /// A dry run, a refused or failed fix, one not applied yet, or one already undone.
    #[error("{0}")]
    NothingInEffect(String),
    /// The agent refused: the state changed again since the fix, for example.
    #[error("{0}")]
    Refused(String),
    /// The agent could not be asked.
    #[error("{0}")]
    AgentUnavailable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What a rollback undoes: the agent that applied the fix, and the action in its journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackTarget {
    pub agent_id: Uuid,
    pub action_id: String,
}

/// The applied fix that job `job_id` of the case made, if something of it is in effect.
pub async fn rollback_target(
    pool: &PgPool,
    case_id: Uuid,
    job_id: Uuid,
) -> Result<RollbackTarget, RollbackError> {
    type Row = (
        Option<Uuid>,
        Option<String>,
        Option<sqlx::types::Json<FixResponse>>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT agent_id, fix_action_id, report FROM jobs \
         WHERE id = $1 AND case_id = $2 AND kind = 'fix'",
    )
    .bind(job_id)
    .bind(case_id)
    .fetch_optional(pool)
    .await?;
    let (agent_id, action_id, report) = row.ok_or(RollbackError::UnknownJob(job_id))?;
    let state = report.map(|r| r.0.action.state);
    match (agent_id, action_id, state) {
        (Some(agent_id), Some(action_id), Some(state)) if state.in_effect() => Ok(RollbackTarget {
            agent_id,
            action_id,
        }),
        (_, _, Some(state)) => Err(RollbackError::NothingInEffect(format!(
            "Nothing of this fix is in effect to undo (the agent's record says {}).",
            app::case::action_state_name(&state)
        ))),
        _ => Err(RollbackError::NothingInEffect(
            "This fix has not been applied (yet): there is nothing to undo.".to_owned(),
        )),
    }
}

/// Undoes a fix of a case from the snapshot its agent took; returns the job as the portal
/// shows it now.
pub async fn undo(
    pool: &PgPool,
    dispatcher: &crate::dispatch::Dispatcher,
    case_id: Uuid,
    job_id: Uuid,
) -> Result<FixRunView, RollbackError> {
    let target = rollback_target(pool, case_id, job_id).await?;
    dispatcher.roll_back(&target).await?;
    fix_run(pool, case_id, job_id)
        .await?
        .ok_or(RollbackError::UnknownJob(job_id))
}

/// The tier as the API and the model spell it.
pub fn tier_name(tier: FixTier) -> &'static str {
    match tier {
        FixTier::Safe => "safe",
        FixTier::Change => "change",
        FixTier::Downgrade => "downgrade",
    }
}

/// Writes what an agent's journal says now about the fixes this server asked it for; returns
/// the cases whose fixes changed. Records of actions no job asked for (a person at the
/// host) are left to the host's own journal.
pub async fn apply_journal(
    pool: &PgPool,
    agent_id: Uuid,
    records: &[ActionRecord],
) -> sqlx::Result<Vec<Uuid>> {
    let mut changed = Vec::new();
    let mut tx = pool.begin().await?;
    for record in records {
        let case: Option<Uuid> = sqlx::query_scalar(
            "UPDATE jobs SET report = jsonb_set(report, '{action}', $3) \
             WHERE agent_id = $1 AND fix_action_id = $2 AND report -> 'action' IS DISTINCT FROM $3 \
             RETURNING case_id",
        )
        .bind(agent_id)
        .bind(&record.action_id)
        .bind(sqlx::types::Json(record))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(case_id) = case {
            tracing::info!(agent.id = %agent_id, action.id = %record.action_id, case.id = %case_id, "agent journal news recorded");
            crate::dispatch::announce_case_change(&mut tx, case_id).await?;
            changed.push(case_id);
        }
    }
    tx.commit().await?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapped_action_names_a_catalogued_fix_and_a_model_action() {
        let model = engine::Model::shipped();
        for (action, fix, _) in AGENT_FIXES {
            assert!(fix_info(fix).is_some(), "{fix} is not an agent fix");
            assert!(
                model
                    .fixes
                    .iter()
                    .any(|f| f.action.as_deref() == Some(*action)),
                "{action} is not an action of the shipped model"
            );
        }
        assert_eq!(side_of("flush-dns"), FixSide::Client);
        assert_eq!(side_of("xrdp-start"), FixSide::Host);
    }
}
