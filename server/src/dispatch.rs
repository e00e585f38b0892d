//! Dispatch: runs a stored check on its agent and stores what came back.
//!
//! Each run is a row in `check_runs`; it is claimed (`queued` → `running`), sent to the agent
//! as a signed request, and ends `succeeded`, `failed` or `agent_offline`. Runs left
//! unfinished by a stopped server are picked up again at start.

use std::sync::Arc;
use std::time::Duration;

use agent_client::signed_http::{post_json, CallError, Signer};
use agent_client::signing::Keypair;
use agent_client::wire::{CheckReport, CheckRequest, CheckSpec, RUN_CHECK_PATH};
use sqlx::PgPool;
use uuid::Uuid;

use crate::agents;
use crate::config::Settings;
use crate::events::CaseEvents;

/// The key id the server signs with; agents accept no other.
pub const SERVER_KEY_ID: &str = "server";

/// Hands check runs to agents.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    pool: PgPool,
    client: reqwest::Client,
    key: Arc<Keypair>,
    events: CaseEvents,
    settings: Arc<Settings>,
}

/// How a run ended.
enum Ending {
    Succeeded(CheckReport),
    Failed(String),
    AgentOffline(String),
}

impl Dispatcher {
    pub fn new(
        pool: PgPool,
        key: Arc<Keypair>,
        events: CaseEvents,
        settings: Arc<Settings>,
    ) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .build()
            .expect("a reqwest client with default TLS settings always builds");
        Dispatcher {
            pool,
            client,
            key,
            events,
            settings,
        }
    }

    /// Runs `run_id` in the background.
    pub fn spawn(&self, run_id: Uuid) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.execute(run_id).await {
                tracing::error!(run.id = %run_id, error = %e, "check run could not be completed");
            }
        });
    }

    /// Starts again every run a previous server left queued or running.
    pub async fn resume_unfinished(&self) -> sqlx::Result<usize> {
        let runs: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM check_runs WHERE status IN ('queued', 'running') ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        for run in &runs {
            self.spawn(*run);
        }
        Ok(runs.len())
    }

    async fn execute(&self, run_id: Uuid) -> sqlx::Result<()> {
        let claimed: Option<(Uuid, Option<Uuid>, sqlx::types::Json<CheckSpec>)> = sqlx::query_as(
            "UPDATE check_runs SET status = 'running', started_at = now(), attempts = attempts + 1 \
             WHERE id = $1 AND status IN ('queued', 'running') RETURNING case_id, agent_id, spec",
        )
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((case_id, agent_id, spec)) = claimed else {
            return Ok(());
        };
        self.events.case_changed(case_id);
        let ending = match agent_id {
            Some(agent_id) => self.call_agent(run_id, agent_id, spec.0).await?,
            None => Ending::Failed("No agent was assigned to this check.".into()),
        };
        let (status, report, problem) = match ending {
            Ending::Succeeded(report) => ("succeeded", Some(sqlx::types::Json(report)), None),
            Ending::Failed(problem) => ("failed", None, Some(problem)),
            Ending::AgentOffline(problem) => ("agent_offline", None, Some(problem)),
        };
        sqlx::query(
            "UPDATE check_runs SET status = $2::check_run_status, report = $3, problem = $4, finished_at = now() \
             WHERE id = $1",
        )
        .bind(run_id)
        .bind(status)
        .bind(report)
        .bind(problem)
        .execute(&self.pool)
        .await?;
        tracing::info!(run.id = %run_id, case.id = %case_id, status, "check run finished");
        self.events.case_changed(case_id);
        Ok(())
    }

    async fn call_agent(
        &self,
        run_id: Uuid,
        agent_id: Uuid,
        spec: CheckSpec,
    ) -> sqlx::Result<Ending> {
        let Some(agent) = agents::endpoint(&self.pool, agent_id).await? else {
            return Ok(Ending::Failed(
                "The agent assigned to this check is no longer enrolled.".into(),
            ));
        };
        let Some(url) = agent.listen_url.clone() else {
            return Ok(Ending::AgentOffline(format!(
                "The agent on {} has not said where it listens yet (it sends that with its first heartbeat).",
                agent.hostname
            )));
        };
        let request = CheckRequest {
            run_id: run_id.to_string(),
            check: spec,
        };
        let signer = Signer {
            key: &self.key,
            key_id: SERVER_KEY_ID,
            peer_key: Some(&agent.public_key),
        };
        // A check makes one attempt per address; allow for a few addresses plus the lookup.
        let timeout = Duration::from_millis(u64::from(self.settings.connect_timeout_ms)) * 6
            + Duration::from_secs(5);
        let result: Result<CheckReport, CallError> = post_json(
            &self.client,
            &url,
            RUN_CHECK_PATH,
            signer,
            &request,
            timeout,
        )
        .await;
        Ok(match result {
            Ok(report) => Ending::Succeeded(report),
            Err(e @ (CallError::Unreachable { .. } | CallError::TimedOut { .. })) => {
                tracing::warn!(run.id = %run_id, agent.id = %agent_id, error = %e, "agent offline");
                let last_seen = agent
                    .last_seen_at
                    .map(|t| {
                        format!(
                            " It was last heard from at {}.",
                            t.format("%Y-%m-%d %H:%M:%S UTC")
                        )
                    })
                    .unwrap_or_default();
                Ending::AgentOffline(format!(
                    "The checking agent on {} did not answer.{last_seen}",
                    agent.hostname
                ))
            }
            Err(e) => {
                tracing::warn!(run.id = %run_id, agent.id = %agent_id, error = %e, "agent refused or garbled a check");
                Ending::Failed(format!(
                    "The checking agent on {} could not run the check: {e}",
                    agent.hostname
                ))
            }
        })
    }
}
