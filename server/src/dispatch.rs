//! Dispatch: checks and fixes are durable jobs in PostgreSQL (table `jobs`), run by a worker in
//! every server.
//!
//! A job moves `queued` → `sent` → `succeeded` | `failed` | `agent_offline` | `timed_out`
//! (or `no_agent` / `cancelled`). The worker claims due runs with `FOR UPDATE SKIP LOCKED`,
//! so several servers can share the queue; it wakes on `LISTEN rdp_doctor_jobs` and also
//! polls. Each attempt holds a lease; an attempt whose server died is retried once its lease
//! has passed, so a restart loses no job. A failed attempt is retried with bounded
//! exponential backoff and jitter until `max_attempts` or the run's deadline. Every attempt
//! runs in its own task with its own timeout, so a hung check never holds up the queue. An
//! agent whose heartbeats have stopped is reported offline at once, without retries.
//!
//! A fix job sends the same idempotency key with every attempt: an agent that already applied
//! it answers with its first record instead of applying it again, so a retried fix (say,
//! after its reply was lost) is applied once.
//!
//! Each state change is announced with `NOTIFY rdp_doctor_case_changed`, which every server
//! turns into [`CaseEvents`] for the browsers following that case.

use std::sync::Arc;
use std::time::Duration;

use agent_client::signed_http::{post_json, CallError, Signer};
use agent_client::signing::{random_bytes, Keypair};
use agent_client::wire::{
    ActionRecord, ActionState, ApprovalToken, CheckReport, CheckRequest, CheckSpec, FixRequest,
    FixResponse, JournalRequest, JournalResponse, RollbackRequest, FIX_JOURNAL_PATH,
    ROLLBACK_FIX_PATH, RUN_CHECK_PATH, RUN_FIX_PATH,
};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

use crate::agents;
use crate::config::Settings;
use crate::diagnosis::DiagnosisModel;
use crate::events::CaseEvents;

/// The key id the server signs with; agents accept no other.
pub const SERVER_KEY_ID: &str = "server";
/// Channel that says "a run was queued".
pub const JOBS_CHANNEL: &str = "rdp_doctor_jobs";
/// Channel whose payload is the id of a case whose runs changed.
pub const CASE_CHANGED_CHANNEL: &str = "rdp_doctor_case_changed";

/// How many attempts may be in flight at once in one server.
const MAX_IN_FLIGHT: usize = 1024;
/// How many runs one claim takes at most.
const CLAIM_BATCH: i64 = 256;
/// How often the worker looks for due runs when nothing wakes it.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The longest one attempt at a fix may take (fixes restart services and wait for them).
const FIX_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a rollback may take: it restores a snapshot, and may restart a service.
const ROLLBACK_TIMEOUT: Duration = Duration::from_secs(60);

/// A claimed job: one attempt to make.
#[derive(Debug, sqlx::FromRow)]
struct Attempt {
    id: Uuid,
    case_id: Uuid,
    agent_id: Option<Uuid>,
    runner: String,
    kind: String,
    spec: sqlx::types::Json<serde_json::Value>,
    idempotency_key: Uuid,
    /// A downgrade's approval, signed by this server.
    approval: Option<String>,
    attempts: i32,
    max_attempts: i32,
    deadline: DateTime<Utc>,
}

/// What a job asks for, read from its stored spec.
enum Work {
    Check(CheckSpec),
    Fix(crate::fixes::FixJobSpec),
}

impl Attempt {
    fn work(&self) -> Result<Work, String> {
        let unreadable =
            |e: serde_json::Error| format!("This job's stored request cannot be read: {e}");
        match self.kind.as_str() {
            "fix" => serde_json::from_value(self.spec.0.clone())
                .map(Work::Fix)
                .map_err(unreadable),
            _ => serde_json::from_value(self.spec.0.clone())
                .map(Work::Check)
                .map_err(unreadable),
        }
    }
}

/// What a job produced.
enum JobResult {
    Check(CheckReport),
    Fix(Box<FixResponse>),
}

/// How one attempt ended.
enum Outcome {
    Succeeded(JobResult),
    /// Will not get better by retrying.
    Failed(String),
    /// Might work on another attempt (the agent did not answer, or answered 5xx).
    Retryable {
        problem: String,
        agent_offline: bool,
    },
    /// The agent's heartbeats have stopped: report it now.
    AgentOffline(String),
}

/// Runs check runs: the queue's worker, shared by every request handler.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    pool: PgPool,
    client: reqwest::Client,
    key: Arc<Keypair>,
    events: CaseEvents,
    settings: Arc<Settings>,
    wake: Arc<Notify>,
    in_flight: Arc<Semaphore>,
    /// Finished checks are evidence for the case's diagnosis.
    diagnosis: DiagnosisModel,
}

impl Dispatcher {
    pub fn new(
        pool: PgPool,
        key: Arc<Keypair>,
        events: CaseEvents,
        settings: Arc<Settings>,
        diagnosis: DiagnosisModel,
    ) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .pool_max_idle_per_host(4)
            .build()
            .expect("a reqwest client without TLS options always builds");
        Dispatcher {
            pool,
            client,
            key,
            events,
            settings,
            wake: Arc::new(Notify::new()),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            diagnosis,
        }
    }

    /// Waits (up to `limit`) for the attempts in flight to be recorded, so a graceful
    /// shutdown leaves no run half-done; whatever is still in flight then is retried by the
    /// next server once its lease passes.
    pub async fn drain(&self, limit: Duration) {
        let all = u32::try_from(MAX_IN_FLIGHT).unwrap_or(u32::MAX);
        if tokio::time::timeout(limit, self.in_flight.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("stopping with check attempts still in flight; they will be retried");
        }
    }

    /// Wakes this server's worker at once (other servers hear the `NOTIFY`).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Starts the worker and the notification listener; they stop when the returned
    /// handles are aborted or dropped.
    pub fn start(&self) -> WorkerHandles {
        let worker = tokio::spawn(self.clone().work());
        let listener = tokio::spawn(self.clone().listen());
        WorkerHandles(vec![worker, listener])
    }

    /// The worker loop.
    async fn work(self) {
        loop {
            let claimed = match self.tidy_and_claim().await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::error!(error = %e, "the dispatcher could not reach the database");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let full_batch = claimed.len() as i64 == CLAIM_BATCH;
            for attempt in claimed {
                let permit = match self.in_flight.clone().acquire_owned().await {
                    Ok(permit) => permit,
                    Err(_) => return,
                };
                let this = self.clone();
                tokio::spawn(async move {
                    let id = attempt.id;
                    if let Err(e) = this.make_attempt(attempt).await {
                        tracing::error!(job.id = %id, error = %e, "job attempt could not be recorded");
                    }
                    drop(permit);
                });
            }
            if !full_batch {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            }
        }
    }

    /// Listens for queued runs and case changes announced by any server.
    async fn listen(self) {
        loop {
            match self.listen_until_error().await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "lost the PostgreSQL notification listener; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn listen_until_error(&self) -> sqlx::Result<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener
            .listen_all([JOBS_CHANNEL, CASE_CHANGED_CHANNEL])
            .await?;
        // Anything queued while we were not listening is found by the next claim.
        self.wake();
        loop {
            let notification = listener.recv().await?;
            match notification.channel() {
                JOBS_CHANNEL => self.wake(),
                _ => {
                    if let Ok(case_id) = Uuid::parse_str(notification.payload()) {
                        self.events.case_changed(case_id);
                    }
                }
            }
        }
    }

    /// Recovers attempts whose server died, times out runs past their deadline, then claims
    /// the runs that are due.
    async fn tidy_and_claim(&self) -> sqlx::Result<Vec<Attempt>> {
        let mut tx = self.pool.begin().await?;
        let touched: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE jobs SET \
                 status = CASE WHEN attempts >= max_attempts OR deadline <= now() \
                               THEN 'timed_out'::job_status ELSE 'queued'::job_status END, \
                 problem = CASE WHEN attempts >= max_attempts OR deadline <= now() \
                               THEN 'The check did not finish in time.' END, \
                 finished_at = CASE WHEN attempts >= max_attempts OR deadline <= now() THEN now() END, \
                 last_error = 'the server running this attempt stopped before it finished', \
                 lease_until = NULL, next_attempt_at = now() \
             WHERE status IN ('sent', 'running') AND lease_until < now() \
             RETURNING case_id",
        )
        .fetch_all(&mut *tx)
        .await?;
        let expired: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE jobs SET status = 'timed_out', finished_at = now(), \
                 problem = 'The check did not finish in time.' \
             WHERE status = 'queued' AND deadline <= now() RETURNING case_id",
        )
        .fetch_all(&mut *tx)
        .await?;
        let claimed: Vec<Attempt> = sqlx::query_as(
            "WITH due AS ( \
                 SELECT id FROM jobs \
                 WHERE status = 'queued' AND next_attempt_at <= now() \
                 ORDER BY next_attempt_at \
                 FOR UPDATE SKIP LOCKED \
                 LIMIT $1) \
             UPDATE jobs r SET status = 'sent', attempts = r.attempts + 1, \
                 started_at = coalesce(r.started_at, now()), \
                 lease_until = now() + make_interval(secs => \
                     CASE WHEN r.kind = 'fix' THEN $3 ELSE $2 END) \
             FROM due WHERE r.id = due.id \
             RETURNING r.id, r.case_id, r.agent_id, r.runner, r.kind, r.spec, r.idempotency_key, \
                 (SELECT token FROM fix_approvals a WHERE a.id = r.approval_id) AS approval, \
                 r.attempts, r.max_attempts, r.deadline",
        )
        .bind(CLAIM_BATCH)
        .bind(self.lease_for_attempt().as_secs_f64())
        .bind((FIX_ATTEMPT_TIMEOUT + Duration::from_secs(5)).as_secs_f64())
        .fetch_all(&mut *tx)
        .await?;
        for case_id in touched
            .iter()
            .chain(&expired)
            .chain(claimed.iter().map(|a| &a.case_id))
        {
            announce_case_change(&mut tx, *case_id).await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Longest an attempt may take: the checks make a handful of connections, each with
    /// its own step timeout, so allow for several plus a margin.
    fn attempt_timeout(&self, spec: &CheckSpec) -> Duration {
        let step = |ms: &u32| Duration::from_millis(u64::from(*ms));
        match spec {
            CheckSpec::TcpConnect { timeout_ms, .. }
            | CheckSpec::AgentPortConnect { timeout_ms, .. } => {
                step(timeout_ms) * 6 + Duration::from_secs(2)
            }
            CheckSpec::RdpNegotiate { timeout_ms, .. } => {
                step(timeout_ms) * 10 + Duration::from_secs(2)
            }
            CheckSpec::RdpTls { timeout_ms, .. } => step(timeout_ms) * 20 + Duration::from_secs(2),
            CheckSpec::DnsResolve { timeout_ms, .. } => step(timeout_ms) + Duration::from_secs(2),
            CheckSpec::ClockCompare { timeout_ms, .. } => {
                step(timeout_ms) * 10 + Duration::from_secs(2)
            }
            // The handshake's steps, then one step for each fetch.
            CheckSpec::RevocationFetch { timeout_ms, .. } => {
                let fetches = agent_client::checks::revocation::MAX_FETCHES as u32;
                step(timeout_ms) * (10 + fetches) + Duration::from_secs(2)
            }
            // The window, and the last connection's own time after it.
            CheckSpec::PathQuality {
                timeout_ms,
                duration_ms,
                ..
            } => step(duration_ms) + step(timeout_ms) * 2 + Duration::from_secs(2),
            CheckSpec::Host(host) => step(&host.timeout_ms()) + Duration::from_secs(2),
        }
    }

    /// The lease covers the longest check attempt this server can make (a fix attempt's
    /// lease covers [`FIX_ATTEMPT_TIMEOUT`]).
    fn lease_for_attempt(&self) -> Duration {
        let step = Duration::from_millis(u64::from(self.settings.connect_timeout_ms));
        let path_quality = Duration::from_millis(u64::from(self.settings.path_quality_window_ms));
        (step * 20).max(path_quality + step * 2) + Duration::from_secs(2)
    }

    async fn make_attempt(&self, attempt: Attempt) -> sqlx::Result<()> {
        let outcome = match attempt.work() {
            Err(problem) => Outcome::Failed(problem),
            Ok(Work::Check(spec)) => self.run_check(&attempt, spec).await?,
            Ok(Work::Fix(job)) => self.run_fix(&attempt, job).await?,
        };
        self.record(&attempt, outcome).await
    }

    async fn run_check(&self, attempt: &Attempt, spec: CheckSpec) -> sqlx::Result<Outcome> {
        let limit = self.attempt_timeout(&spec);
        if attempt.runner == "server" {
            return Ok(
                match tokio::time::timeout(limit, agent_client::checks::run(&spec)).await {
                    Ok(report) => Outcome::Succeeded(JobResult::Check(report)),
                    Err(_) => Outcome::Retryable {
                        problem: "The check took too long on the server.".into(),
                        agent_offline: false,
                    },
                },
            );
        }
        let request = CheckRequest {
            run_id: attempt.id.to_string(),
            check: spec,
        };
        Ok(
            match self
                .call_agent(attempt, RUN_CHECK_PATH, &request, limit, "checking agent")
                .await?
            {
                Ok(report) => Outcome::Succeeded(JobResult::Check(report)),
                Err(outcome) => outcome,
            },
        )
    }

    async fn run_fix(
        &self,
        attempt: &Attempt,
        job: crate::fixes::FixJobSpec,
    ) -> sqlx::Result<Outcome> {
        let request = FixRequest {
            // The same key on every attempt: the agent applies the fix at most once.
            idempotency_key: format!("job-{}", attempt.idempotency_key),
            case_id: Some(attempt.case_id.to_string()),
            fix: job.fix,
            dry_run: job.dry_run,
            approval: attempt.approval.clone().map(ApprovalToken),
        };
        Ok(
            match self
                .call_agent(
                    attempt,
                    RUN_FIX_PATH,
                    &request,
                    FIX_ATTEMPT_TIMEOUT,
                    "agent",
                )
                .await?
            {
                Ok(response) => Outcome::Succeeded(JobResult::Fix(Box::new(response))),
                Err(outcome) => outcome,
            },
        )
    }

    /// One signed call to the job's agent; `Err` holds how the attempt ended when the agent
    /// gave no usable reply.
    async fn call_agent<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        attempt: &Attempt,
        path: &str,
        request: &Req,
        limit: Duration,
        role: &str,
    ) -> sqlx::Result<Result<Resp, Outcome>> {
        let job_id = attempt.id;
        let Some(agent_id) = attempt.agent_id else {
            return Ok(Err(Outcome::Failed(
                "No agent was assigned to this job.".into(),
            )));
        };
        let Some(agent) = agents::endpoint(&self.pool, agent_id).await? else {
            return Ok(Err(Outcome::Failed(format!(
                "The {role} assigned to this job is no longer enrolled."
            ))));
        };
        let last_seen = agent
            .last_seen_at
            .map(|t| {
                format!(
                    " It was last heard from at {}.",
                    t.format("%Y-%m-%d %H:%M:%S UTC")
                )
            })
            .unwrap_or_default();
        if !agent.is_online(self.settings.agent_offline_after) {
            return Ok(Err(Outcome::AgentOffline(format!(
                "The {role} on {} is offline: its heartbeats have stopped.{last_seen}",
                agent.hostname
            ))));
        }
        let Some(url) = agent.listen_url.clone() else {
            return Ok(Err(Outcome::AgentOffline(format!(
                "The {role} on {} has not said where it listens yet (it sends that with its first heartbeat).",
                agent.hostname
            ))));
        };
        let signer = Signer {
            key: &self.key,
            key_id: SERVER_KEY_ID,
            peer_key: Some(&agent.public_key),
        };
        let result: Result<Resp, CallError> =
            post_json(&self.client, &url, path, signer, request, limit).await;
        Ok(match result {
            Ok(reply) => Ok(reply),
            Err(e @ (CallError::Unreachable { .. } | CallError::TimedOut { .. })) => {
                tracing::warn!(job.id = %job_id, agent.id = %agent_id, error = %e, "agent did not answer");
                Err(Outcome::Retryable {
                    problem: format!(
                        "The {role} on {} did not answer.{last_seen}",
                        agent.hostname
                    ),
                    agent_offline: matches!(e, CallError::Unreachable { .. }),
                })
            }
            Err(CallError::Refused { status, body }) if status >= 500 => Err(Outcome::Retryable {
                problem: format!(
                    "The {role} on {} failed: {}",
                    agent.hostname, body.error.message
                ),
                agent_offline: false,
            }),
            Err(e) => {
                tracing::warn!(job.id = %job_id, agent.id = %agent_id, error = %e, "agent refused or garbled a job");
                Err(Outcome::Failed(format!(
                    "The {role} on {} could not do it: {e}",
                    agent.hostname
                )))
            }
        })
    }

    /// Reads what changed in an agent's fix journal since the last read and writes it into
    /// the fix jobs it concerns (called when a heartbeat says the journal changed). Failures
    /// are logged; the next heartbeat asks again, since the read mark has not moved.
    pub async fn read_journal(&self, agent_id: Uuid) {
        if let Err(e) = self.try_read_journal(agent_id).await {
            tracing::warn!(agent.id = %agent_id, error = %e, "could not read the agent's fix journal");
        }
    }

    async fn try_read_journal(&self, agent_id: Uuid) -> anyhow::Result<()> {
        let Some(agent) = agents::endpoint(&self.pool, agent_id).await? else {
            return Ok(());
        };
        let Some(url) = agent.listen_url.as_deref() else {
            return Ok(());
        };
        let request = JournalRequest {
            updated_since: agents::journal_read_at(&self.pool, agent_id).await?,
        };
        let signer = Signer {
            key: &self.key,
            key_id: SERVER_KEY_ID,
            peer_key: Some(&agent.public_key),
        };
        let journal: JournalResponse = post_json(
            &self.client,
            url,
            FIX_JOURNAL_PATH,
            signer,
            &request,
            Duration::from_secs(10),
        )
        .await?;
        let changed = crate::fixes::apply_journal(&self.pool, agent_id, &journal.actions).await?;
        for case_id in changed {
            self.events.case_changed(case_id);
        }
        if let Some(newest) = journal.actions.iter().map(|a| a.updated_at).max() {
            agents::mark_journal_read(&self.pool, agent_id, newest).await?;
        }
        Ok(())
    }

    /// Asks the agent that applied a fix to undo it from its snapshot, and writes the agent's
    /// record into the fix job. The agent's rollback is idempotent (an action already undone
    /// answers with its record), so a repeated request is harmless.
    pub async fn roll_back(
        &self,
        target: &crate::fixes::RollbackTarget,
    ) -> Result<ActionRecord, crate::fixes::RollbackError> {
        use crate::fixes::RollbackError;
        let agent = agents::endpoint(&self.pool, target.agent_id)
            .await?
            .ok_or_else(|| {
                RollbackError::AgentUnavailable(
                    "The agent that applied this fix is no longer enrolled.".to_owned(),
                )
            })?;
        let Some(url) = agent.listen_url.as_deref() else {
            return Err(RollbackError::AgentUnavailable(format!(
                "The agent on {} has not said where it listens.",
                agent.hostname
            )));
        };
        let signer = Signer {
            key: &self.key,
            key_id: SERVER_KEY_ID,
            peer_key: Some(&agent.public_key),
        };
        let request = RollbackRequest {
            action_id: target.action_id.clone(),
            force: false,
        };
        let reply: Result<ActionRecord, CallError> = post_json(
            &self.client,
            url,
            ROLLBACK_FIX_PATH,
            signer,
            &request,
            ROLLBACK_TIMEOUT,
        )
        .await;
        let record = reply.map_err(|e| match e {
            CallError::Refused { status, body } if status < 500 => RollbackError::Refused(format!(
                "The agent on {} did not undo it: {}",
                agent.hostname, body.error.message
            )),
            e => {
                tracing::warn!(agent.id = %agent.id, error = %e, "rollback not done");
                RollbackError::AgentUnavailable(format!(
                    "The agent on {} could not be asked to undo it; try again in a minute.",
                    agent.hostname
                ))
            }
        })?;
        tracing::info!(agent.id = %agent.id, action.id = %record.action_id, "fix rolled back");
        let changed =
            crate::fixes::apply_journal(&self.pool, agent.id, std::slice::from_ref(&record))
                .await?;
        for case_id in changed {
            self.events.case_changed(case_id);
        }
        Ok(record)
    }

    /// Stores how the attempt ended; only the attempt that holds the run may finish it.
    async fn record(&self, attempt: &Attempt, outcome: Outcome) -> sqlx::Result<()> {
        let fix_action_id = match &outcome {
            Outcome::Succeeded(JobResult::Fix(response)) => Some(response.action.action_id.clone()),
            _ => None,
        };
        let mut tx = self.pool.begin().await?;
        // Only the attempt that holds the run may finish it.
        let fence = "WHERE id = $1 AND attempts = $2 AND status = 'sent'";
        // A final state: the run is over, with a report or a sentence for the employee.
        let (status, report, problem) = match outcome {
            Outcome::Succeeded(JobResult::Check(report)) => {
                ("succeeded", Some(to_json(&report)), None)
            }
            Outcome::Succeeded(JobResult::Fix(response)) => {
                // The agent answered: the job is done, and the fix's own outcome decides
                // whether it succeeded.
                let problem = match &response.action.state {
                    ActionState::Refused { reason } => {
                        Some(format!("The agent did not apply the fix: {reason}"))
                    }
                    ActionState::Failed { error, rolled_back } => Some(format!(
                        "The fix failed: {error}{}",
                        if *rolled_back {
                            " (the prior state was restored)"
                        } else {
                            ""
                        }
                    )),
                    _ => None,
                };
                let status = if problem.is_some() {
                    "failed"
                } else {
                    "succeeded"
                };
                (status, Some(to_json(&response)), problem)
            }
            Outcome::Failed(problem) => ("failed", None, Some(problem)),
            Outcome::AgentOffline(problem) => ("agent_offline", None, Some(problem)),
            Outcome::Retryable {
                problem,
                agent_offline,
            } => {
                let delay = backoff(attempt.attempts);
                let retry_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                if attempt.attempts < attempt.max_attempts && retry_at < attempt.deadline {
                    sqlx::query(&format!(
                        "UPDATE jobs SET status = 'queued', next_attempt_at = $3, last_error = $4, \
                         lease_until = NULL {fence}"
                    ))
                    .bind(attempt.id)
                    .bind(attempt.attempts)
                    .bind(retry_at)
                    .bind(&problem)
                    .execute(&mut *tx)
                    .await?;
                    announce_case_change(&mut tx, attempt.case_id).await?;
                    return tx.commit().await;
                }
                let status = if agent_offline {
                    "agent_offline"
                } else {
                    "timed_out"
                };
                (status, None, Some(problem))
            }
        };
        let updated = sqlx::query(&format!(
            "UPDATE jobs SET status = $5::job_status, report = $3, problem = $4, \
             fix_action_id = $6, finished_at = now(), lease_until = NULL {fence}"
        ))
        .bind(attempt.id)
        .bind(attempt.attempts)
        .bind(report)
        .bind(problem)
        .bind(status)
        .bind(fix_action_id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            // The lease ran out and another attempt owns the run now: its result counts.
            tracing::warn!(run.id = %attempt.id, attempt = attempt.attempts, "a late attempt finished after its lease");
            return Ok(());
        }
        announce_case_change(&mut tx, attempt.case_id).await?;
        tx.commit().await?;
        if attempt.kind != "fix" {
            // The run is over, with a report or without: the diagnosis records what it found,
            // or takes the check as not run once none of its runs found anything.
            crate::diagnosis::catch_up_on_checks(&self.pool, &self.diagnosis, attempt.case_id)
                .await;
            announce_case_change(&mut *self.pool.acquire().await?, attempt.case_id).await?;
        }
        Ok(())
    }
}

/// Aborts the dispatcher's tasks when dropped.
#[derive(Debug)]
pub struct WorkerHandles(Vec<tokio::task::JoinHandle<()>>);

impl Drop for WorkerHandles {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

/// Says, when the transaction commits, that a run of `case_id` changed.
pub async fn announce_case_change(tx: &mut sqlx::PgConnection, case_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CASE_CHANGED_CHANNEL)
        .bind(case_id.to_string())
        .execute(tx)
        .await?;
    Ok(())
}

/// Says, when the transaction commits, that runs are waiting.
pub async fn announce_queued(tx: &mut sqlx::PgConnection) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(JOBS_CHANNEL)
        .execute(tx)
        .await?;
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("reports and fix records serialise")
}

/// Delay before attempt `attempts + 1`: exponential from 250 ms, capped at 10 s, with jitter
/// (between half and all of it) so that agents coming back are not hit all at once.
fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 16) - 1).unwrap_or(0);
    let full = (250u64 << exponent).min(10_000);
    let jitter =
        u64::from(u16::from_le_bytes(random_bytes::<2>())) * full / 2 / u64::from(u16::MAX);
    Duration::from_millis(full / 2 + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_bounded_and_jittered() {
        for attempts in 1..20i32 {
            let full = (250u64 << (attempts.min(16) - 1)).min(10_000);
            let delay = backoff(attempts).as_millis() as u64;
            assert!(
                delay >= full / 2 && delay <= full,
                "attempt {attempts}: {delay} ms"
            );
        }
        assert!(backoff(30) <= Duration::from_secs(10));
        let delays: std::collections::HashSet<_> = (0..20).map(|_| backoff(5)).collect();
        assert!(delays.len() > 1, "jitter varies the delay");
    }
}
