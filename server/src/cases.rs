//! Cases: what an employee reported, stored with the checks run for it.

use agent_client::wire::{CheckReport, CheckSpec};
use app::case::{CaseView, CheckRunView, CheckStatus, NewCase};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// The status names as the `check_run_status` enum spells them.
fn status_from_db(status: &str) -> CheckStatus {
    match status {
        "queued" => CheckStatus::Queued,
        "running" => CheckStatus::Running,
        "succeeded" => CheckStatus::Succeeded,
        "agent_offline" => CheckStatus::AgentOffline,
        "no_agent" => CheckStatus::NoAgent,
        _ => CheckStatus::Failed,
    }
}

/// A case and its first check, as stored by [`open_case`].
#[derive(Debug, Clone, Copy)]
pub struct OpenedCase {
    pub case_id: Uuid,
    pub run_id: Uuid,
    /// False when no agent is enrolled, so the run was stored as `no_agent`.
    pub dispatchable: bool,
}

/// Stores the case and its first check (`tcp-connect` to the target) in one transaction.
pub async fn open_case(
    pool: &PgPool,
    case: &NewCase,
    agent: Option<Uuid>,
    connect_timeout_ms: u32,
) -> sqlx::Result<OpenedCase> {
    let case_id = Uuid::new_v4();
    let run_id = Uuid::new_v4();
    let spec = CheckSpec::TcpConnect {
        target: case.target.clone(),
        timeout_ms: connect_timeout_ms,
    };
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO cases (id, error_code, extended_code, target_host, target_port) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(case_id)
    .bind(case.error_code.map(i64::from))
    .bind(case.extended_code.map(i64::from))
    .bind(case.target.host.as_str())
    .bind(i32::from(case.target.port))
    .execute(&mut *tx)
    .await?;
    let (status, problem) = match agent {
        Some(_) => ("queued", None),
        None => (
            "no_agent",
            Some("No agent is enrolled with RDP Doctor yet, so nothing can run checks."),
        ),
    };
    sqlx::query(
        "INSERT INTO check_runs (id, case_id, agent_id, check_id, spec, status, problem, finished_at) \
         VALUES ($1, $2, $3, $4, $5, $6::check_run_status, $7, CASE WHEN $6 = 'queued' THEN NULL ELSE now() END)",
    )
    .bind(run_id)
    .bind(case_id)
    .bind(agent)
    .bind(spec.id())
    .bind(sqlx::types::Json(&spec))
    .bind(status)
    .bind(problem)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(OpenedCase {
        case_id,
        run_id,
        dispatchable: agent.is_some(),
    })
}

type CaseRow = (Uuid, DateTime<Utc>, Option<i64>, Option<i64>, String, i32);
type RunRow = (
    String,
    String,
    Option<String>,
    Option<sqlx::types::Json<CheckReport>>,
    Option<String>,
);

/// Loads a case with its checks, oldest check first.
pub async fn load_case(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<CaseView>> {
    let case: Option<CaseRow> = sqlx::query_as(
        "SELECT id, created_at, error_code, extended_code, target_host, target_port FROM cases WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some((id, created_at, error_code, extended_code, target_host, target_port)) = case else {
        return Ok(None);
    };
    let runs: Vec<RunRow> = sqlx::query_as(
        "SELECT r.check_id, r.status::text, a.hostname, r.report, r.problem \
         FROM check_runs r LEFT JOIN agents a ON a.id = r.agent_id \
         WHERE r.case_id = $1 ORDER BY r.created_at, r.id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(Some(CaseView {
        id: id.to_string(),
        created_at: created_at.to_rfc3339(),
        error_code: error_code.and_then(|c| u32::try_from(c).ok()),
        extended_code: extended_code.and_then(|c| u32::try_from(c).ok()),
        target_host,
        target_port: u16::try_from(target_port).unwrap_or(0),
        checks: runs
            .into_iter()
            .map(
                |(check_id, status, agent_hostname, report, problem)| CheckRunView {
                    check_id,
                    status: status_from_db(&status),
                    agent_hostname,
                    report: report.map(|r| r.0),
                    problem,
                },
            )
            .collect(),
    }))
}

/// Opens a case for an employee and starts its first check on the chosen agent.
pub async fn open_and_dispatch(
    state: &crate::startup::AppState,
    case: &NewCase,
) -> sqlx::Result<Uuid> {
    let agent =
        crate::agents::pick_for_check(&state.pool, state.settings.default_agent.as_deref()).await?;
    let opened = open_case(&state.pool, case, agent, state.settings.connect_timeout_ms).await?;
    tracing::info!(case.id = %opened.case_id, run.id = %opened.run_id, "case opened");
    if opened.dispatchable {
        state.dispatcher.spawn(opened.run_id);
    }
    Ok(opened.case_id)
}
