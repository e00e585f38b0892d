//! Cases: what an employee reported, stored with the checks run for it (and, from
//! [`crate::fixes`], the fixes asked for it).

use std::collections::BTreeMap;
use std::net::IpAddr;

use agent_client::host::report::HostCheckSpec;
use agent_client::target::CheckTarget;
use agent_client::wire::{CheckReport, CheckSpec};
use app::case::{CaseView, CheckRunView, CheckStatus, NewCase};
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::agents::{for_employee, on_host, pick_for_check, summary, AgentSummary};
use crate::config::Settings;
use crate::diagnosis::DiagnosisModel;
use engine::CheckLocation;
use uuid::Uuid;

/// The status names as the `job_status` enum spells them.
pub(crate) fn status_from_db(status: &str) -> CheckStatus {
    match status {
        "queued" => CheckStatus::Queued,
        "sent" => CheckStatus::Sent,
        "running" => CheckStatus::Running,
        "succeeded" => CheckStatus::Succeeded,
        "agent_offline" => CheckStatus::AgentOffline,
        "no_agent" => CheckStatus::NoAgent,
        "timed_out" => CheckStatus::TimedOut,
        "cancelled" => CheckStatus::Cancelled,
        _ => CheckStatus::Failed,
    }
}

/// Who runs a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// An enrolled agent (if there is none, the run is stored as `no_agent`).
    Agent(Option<Uuid>),
    /// The server itself: a vantage point independent of any agent.
    Server,
}

/// A check to queue for a case.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub spec: CheckSpec,
    pub runner: Runner,
}

/// The agents a case involves: the employee's, which probes the host from the employee's
/// side, and the one on the host the case is about, when that computer has one.
#[derive(Debug, Clone, Default)]
pub struct CaseAgents {
    pub client: Option<AgentSummary>,
    pub host: Option<AgentSummary>,
}

impl CaseAgents {
    /// Finds both for a new case reported `from` an address: the host's is the agent that
    /// runs on the case's computer; the employee's is the agent on the PC the report came
    /// from ([`for_employee`]), else the configured default one, else the one heard from most
    /// recently.
    pub async fn find(
        pool: &PgPool,
        case: &NewCase,
        from: Option<IpAddr>,
        settings: &Settings,
    ) -> sqlx::Result<Self> {
        let offline_after = settings.agent_offline_after;
        let host = on_host(pool, &case.target.host, offline_after).await?;
        let on_employee_pc = match from {
            Some(from) => {
                for_employee(pool, from, host.as_ref().map(|h| h.id), offline_after).await?
            }
            None => None,
        };
        let client = match on_employee_pc {
            Some(agent) => Some(agent),
            None => match pick_for_check(pool, settings.default_agent.as_deref()).await? {
                Some(id) => summary(pool, id, offline_after).await?,
                None => None,
            },
        };
        Ok(CaseAgents { client, host })
    }
}

/// The checks a new case starts with, all queued at once (they only read, never change);
/// the diagnosis records each result as soon as it is in:
///
/// - from the employee's agent and from the server: can they reach the port; from the
///   employee's agent: what the RDP server answers (security protocols, TLS certificate),
///   whether the host's clock and the PC's agree (read over CredSSP), and whether the PC
///   gets the revocation and root-list data for the host's certificate quickly, and
///   whether the path to the host loses packets (connections spread over the configured
///   window, 30 seconds by default);
/// - from the employee's agent, when the host has an agent of its own on another computer:
///   does the host answer at all, on the port that agent listens on; and when the case names
///   the host by name and that agent gave its address: does the name resolve to it (a
///   loopback address counts only for an employee's agent on the same computer);
/// - every Windows check of the model (`checks` with where it runs), on the agent where the
///   model says it runs, when that agent is on Windows; on a Linux host's agent, the xrdp
///   checks that answer the model's host checks ([`app::diagnosis::XRDP_COUNTERPARTS`]).
///
/// A check with nowhere to run is not queued: the diagnosis takes it as not run.
pub fn first_checks(
    case: &NewCase,
    agents: &CaseAgents,
    checks: &[(&str, CheckLocation)],
    settings: &Settings,
) -> Vec<PlannedRun> {
    let target = case.target.clone();
    let timeout_ms = settings.connect_timeout_ms;
    let client = Runner::Agent(agents.client.as_ref().map(|agent| agent.id));
    let mut runs = vec![
        PlannedRun {
            spec: CheckSpec::TcpConnect {
                target: target.clone(),
                timeout_ms,
            },
            runner: client,
        },
        PlannedRun {
            spec: CheckSpec::TcpConnect {
                target: target.clone(),
                timeout_ms,
            },
            runner: Runner::Server,
        },
        PlannedRun {
            spec: CheckSpec::RdpNegotiate {
                target: target.clone(),
                timeout_ms,
            },
            runner: client,
        },
        PlannedRun {
            spec: CheckSpec::RdpTls {
                target: target.clone(),
                timeout_ms,
                probe_versions: true,
            },
            runner: client,
        },
        PlannedRun {
            spec: CheckSpec::ClockCompare {
                target: target.clone(),
                tolerance_s: agent_client::rdp::clock::DEFAULT_TOLERANCE_S,
                timeout_ms,
            },
            runner: client,
        },
        PlannedRun {
            spec: CheckSpec::RevocationFetch {
                target: target.clone(),
                timeout_ms,
            },
            runner: client,
        },
        PlannedRun {
            spec: CheckSpec::PathQuality {
                target: target.clone(),
                timeout_ms,
                duration_ms: settings.path_quality_window_ms,
                probes: agent_client::wire::PATH_QUALITY_PROBES,
            },
            runner: client,
        },
    ];
    if let (Some(client), Some(host)) = (&agents.client, &agents.host) {
        if let Some(host_agent) = host_agent_as_seen_by(client, host) {
            // Whether the host's computer answers at all, on the port its own agent listens
            // on (from another computer: the employee's agent may be the host's own).
            if client.id != host.id {
                runs.push(PlannedRun {
                    spec: CheckSpec::AgentPortConnect {
                        target: host_agent.clone(),
                        timeout_ms,
                    },
                    runner: Runner::Agent(Some(client.id)),
                });
            }
            // Whether the name the employee typed leads to the address the host's agent gave.
            if let (None, Some(address)) = (target.host.ip(), host_agent.host.ip()) {
                runs.push(PlannedRun {
                    spec: CheckSpec::DnsResolve {
                        host: target.host.clone(),
                        expected: vec![address],
                        timeout_ms,
                    },
                    runner: Runner::Agent(Some(client.id)),
                });
            }
        }
    }
    for (id, location) in checks {
        let agent = match location {
            CheckLocation::Client => agents.client.as_ref(),
            CheckLocation::Host => agents.host.as_ref(),
            CheckLocation::Server => None,
        };
        let spec = match agent {
            Some(agent) if agent.is_windows() => {
                HostCheckSpec::from_params(id, None, &BTreeMap::new()).ok()
            }
            Some(agent) if agent.is_linux() && *location == CheckLocation::Host => {
                xrdp_counterpart(id, target.port)
            }
            _ => None,
        };
        if let (Some(agent), Some(spec)) = (agent, spec) {
            runs.push(PlannedRun {
                spec: CheckSpec::Host(spec),
                runner: Runner::Agent(Some(agent.id)),
            });
        }
    }
    runs
}

/// The xrdp check that answers the model's host check `model_check` on a Linux host (xrdp's
/// own ini, `/etc/xrdp/xrdp.ini`), asked about the port the employee connects to.
fn xrdp_counterpart(model_check: &str, port: u16) -> Option<HostCheckSpec> {
    let (_, xrdp_check) = app::diagnosis::XRDP_COUNTERPARTS
        .iter()
        .find(|(model, _)| *model == model_check)?;
    let mut params = BTreeMap::new();
    if matches!(*xrdp_check, "xrdp-listening" | "xrdp-firewall") {
        params.insert("port".to_owned(), port.to_string());
    }
    HostCheckSpec::from_params(xrdp_check, None, &params).ok()
}

/// Where the host's agent listens, as the employee's agent can use it: a loopback address
/// names the host only to an agent on that same computer (one heard from loopback too).
fn host_agent_as_seen_by(client: &AgentSummary, host: &AgentSummary) -> Option<CheckTarget> {
    let listen = host.listen_target()?;
    let loopback = listen.host.ip().is_some_and(|ip| ip.is_loopback());
    let client_here = client.seen_from.is_some_and(|from| from.is_loopback());
    (!loopback || client_here).then_some(listen)
}

/// Stores the case and its first checks in one transaction; the dispatcher hears of them
/// when it commits. Returns the case id.
pub async fn open_case(
    pool: &PgPool,
    case: &NewCase,
    reported_from: Option<IpAddr>,
    runs: &[PlannedRun],
    settings: &Settings,
) -> sqlx::Result<Uuid> {
    let case_id = Uuid::new_v4();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO cases (id, error_code, extended_code, target_host, target_port, reported_from) \
         VALUES ($1, $2, $3, $4, $5, $6::inet)",
    )
    .bind(case_id)
    .bind(case.error_code.map(i64::from))
    .bind(case.extended_code.map(i64::from))
    .bind(case.target.host.as_str())
    .bind(i32::from(case.target.port))
    .bind(reported_from.map(|address| address.to_string()))
    .execute(&mut *tx)
    .await?;
    let deadline =
        Utc::now() + chrono::Duration::from_std(settings.check_deadline).unwrap_or_default();
    for run in runs {
        let (runner, agent, status, problem) = match run.runner {
            Runner::Server => ("server", None, "queued", None),
            Runner::Agent(Some(agent)) => ("agent", Some(agent), "queued", None),
            Runner::Agent(None) => (
                "agent",
                None,
                "no_agent",
                Some("No agent is enrolled with RDP Doctor yet, so nothing can run checks."),
            ),
        };
        let run_id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO jobs (id, case_id, agent_id, runner, catalogue_id, spec, status, problem,                  idempotency_key, max_attempts, deadline, finished_at)              VALUES ($1, $2, $3, $4, $5, $6, $7::job_status, $8, $9, $10, $11,                  CASE WHEN $7 = 'queued' THEN NULL ELSE now() END)",
        )
        .bind(run_id)
        .bind(case_id)
        .bind(agent)
        .bind(runner)
        .bind(run.spec.id())
        .bind(sqlx::types::Json(&run.spec))
        .bind(status)
        .bind(problem)
        .bind(run_id)
        .bind(settings.max_attempts)
        .bind(deadline)
        .execute(&mut *tx)
        .await?;
    }
    crate::dispatch::announce_queued(&mut tx).await?;
    tx.commit().await?;
    Ok(case_id)
}

type CaseRow = (Uuid, DateTime<Utc>, Option<i64>, Option<i64>, String, i32);
type RunRow = (
    String,
    String,
    String,
    Option<String>,
    Option<sqlx::types::Json<CheckReport>>,
    Option<String>,
);

/// Loads a case with its checks (in the order they were queued) and its diagnosis.
pub async fn load_case(
    pool: &PgPool,
    model: &DiagnosisModel,
    id: Uuid,
) -> sqlx::Result<Option<CaseView>> {
    let case: Option<CaseRow> = sqlx::query_as(
        "SELECT id, created_at, error_code, extended_code, target_host, target_port FROM cases WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some((id, created_at, error_code, extended_code, target_host, target_port)) = case else {
        return Ok(None);
    };
    let checks = check_runs(pool, id).await?;
    let fixes = crate::fixes::for_case(pool, id).await?;
    let diagnosis = match crate::diagnosis::portal_summary_for_case(pool, model, id).await {
        Ok(summary) => summary,
        Err(crate::diagnosis::DiagnosisError::Database(e)) => return Err(e),
        Err(e) => {
            // A session the current model cannot read (e.g. a removed id) must not hide the
            // case and its checks.
            tracing::warn!(case.id = %id, error = %e, "the case's diagnosis could not be shown");
            None
        }
    };
    Ok(Some(CaseView {
        diagnosis,
        fixes,
        id: id.to_string(),
        created_at: created_at.to_rfc3339(),
        error_code: error_code.and_then(|c| u32::try_from(c).ok()),
        extended_code: extended_code.and_then(|c| u32::try_from(c).ok()),
        target_host,
        target_port: u16::try_from(target_port).unwrap_or(0),
        checks,
    }))
}

/// A case's check runs, in the order they were queued.
pub async fn check_runs(pool: &PgPool, case_id: Uuid) -> sqlx::Result<Vec<CheckRunView>> {
    let runs: Vec<RunRow> = sqlx::query_as(
        "SELECT r.catalogue_id, r.runner, r.status::text, a.hostname, r.report, r.problem \
         FROM jobs r LEFT JOIN agents a ON a.id = r.agent_id \
         WHERE r.case_id = $1 AND r.kind = 'check' ORDER BY r.seq",
    )
    .bind(case_id)
    .fetch_all(pool)
    .await?;
    Ok(runs
        .into_iter()
        .map(
            |(check_id, runner, status, agent_hostname, report, problem)| CheckRunView {
                check_id,
                run_by_server: runner == "server",
                status: status_from_db(&status),
                agent_hostname,
                report: report.map(|r| r.0),
                problem,
            },
        )
        .collect())
}

/// Opens a case for an employee, reported `from` the address of the employee's PC when
/// known, and queues its first checks.
pub async fn open_and_dispatch(
    state: &crate::startup::AppState,
    case: &NewCase,
    from: Option<IpAddr>,
) -> sqlx::Result<Uuid> {
    let agents = CaseAgents::find(&state.pool, case, from, &state.settings).await?;
    let model = state.diagnosis.current();
    let checks: Vec<(&str, CheckLocation)> = model
        .model()
        .checks
        .iter()
        .map(|check| (check.id.as_str(), check.runs_on))
        .collect();
    let runs = first_checks(case, &agents, &checks, &state.settings);
    let case_id = open_case(&state.pool, case, from, &runs, &state.settings).await?;
    tracing::info!(case.id = %case_id, runs = runs.len(), "case opened");
    state.dispatcher.wake();
    // The diagnosis starts with the case; the checks feed it as they finish. A case is
    // still worth having without it, so a failure here is logged, not returned.
    match crate::diagnosis::start(&state.pool, &state.diagnosis, case_id).await {
        Ok(_) => {
            // The server knows these already: whether the host's agent still beats, and
            // which part of the network the employee's report came from.
            if let Some(host) = &agents.host {
                crate::diagnosis::record_host_heartbeat(
                    &state.pool,
                    &state.diagnosis,
                    case_id,
                    host.online,
                )
                .await;
            }
            if let Some(network) = from.and_then(|from| state.settings.client_network(from)) {
                crate::diagnosis::record_client_network(
                    &state.pool,
                    &state.diagnosis,
                    case_id,
                    network,
                )
                .await;
            }
            crate::diagnosis::catch_up_on_checks(&state.pool, &state.diagnosis, case_id).await
        }
        Err(e) => {
            tracing::error!(case.id = %case_id, error = %e, "could not start the case's diagnosis")
        }
    }
    Ok(case_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(listen_url: &str, seen_from: &str) -> AgentSummary {
        AgentSummary {
            seen_from: seen_from.parse().ok(),
            ..crate::agents::example_agent("pc", Some(listen_url))
        }
    }

    /// The ids of the checks a case for `pc-042.corp.example` starts with, on the client agent.
    fn client_checks(client: AgentSummary, host: AgentSummary) -> Vec<&'static str> {
        let case = NewCase {
            target: agent_client::target::CheckTarget::parse("pc-042.corp.example").unwrap(),
            error_code: None,
            extended_code: None,
        };
        let client_id = client.id;
        let agents = CaseAgents {
            client: Some(client),
            host: Some(host),
        };
        first_checks(&case, &agents, &[], &Settings::default())
            .into_iter()
            .filter(|run| run.runner == Runner::Agent(Some(client_id)))
            .map(|run| run.spec.id())
            .filter(|id| matches!(*id, "agent-port-connect" | "dns-resolve"))
            .collect()
    }

    #[test]
    fn the_host_agents_address_is_used_only_where_it_means_that_computer() {
        let remote_pc = || agent("http://10.1.1.1:7443", "10.1.1.1");
        let same_pc = || agent("http://127.0.0.1:7443", "127.0.0.1");
        let host_on_lan = || agent("http://10.2.2.2:7443", "10.2.2.2");
        let host_on_loopback = || agent("http://127.0.0.1:7070", "127.0.0.1");
        assert_eq!(
            client_checks(remote_pc(), host_on_lan()),
            ["agent-port-connect", "dns-resolve"]
        );
        // 127.0.0.1 on the employee's PC is the employee's PC, not the host.
        assert!(client_checks(remote_pc(), host_on_loopback()).is_empty());
        assert_eq!(
            client_checks(same_pc(), host_on_loopback()),
            ["agent-port-connect", "dns-resolve"]
        );
        // The host's own agent does not probe itself.
        let host = host_on_lan();
        assert_eq!(client_checks(host.clone(), host), ["dns-resolve"]);
    }

    #[test]
    fn a_linux_host_answers_the_models_host_checks_with_xrdp_checks_on_the_employees_port() {
        let linux = |name: &str, url: &str| AgentSummary {
            os: "linux x86_64".to_owned(),
            ..crate::agents::example_agent(name, Some(url))
        };
        let (employee, host) = (
            linux("employee", "http://10.1.1.1:7443"),
            linux("pc", "http://10.2.2.2:7443"),
        );
        let host_id = host.id;
        let case = NewCase {
            target: CheckTarget::parse("pc-042.corp.example:3390").unwrap(),
            error_code: None,
            extended_code: None,
        };
        let model_checks = [
            ("rdp-listener", CheckLocation::Host),
            ("firewall-rule", CheckLocation::Host),
            ("schannel-tls12", CheckLocation::Host),
            ("credssp-policy", CheckLocation::Client),
        ];
        let agents = CaseAgents {
            client: Some(employee),
            host: Some(host),
        };
        let on_host: Vec<HostCheckSpec> =
            first_checks(&case, &agents, &model_checks, &Settings::default())
                .into_iter()
                .filter(|run| run.runner == Runner::Agent(Some(host_id)))
                .filter_map(|run| match run.spec {
                    CheckSpec::Host(spec) => Some(spec),
                    _ => None,
                })
                .collect();
        // No xrdp counterpart for Schannel; nothing Windows-only on the employee's Linux PC.
        assert_eq!(
            on_host,
            [
                HostCheckSpec::from_params(
                    "xrdp-listening",
                    None,
                    &BTreeMap::from([("port".to_owned(), "3390".to_owned())])
                )
                .unwrap(),
                HostCheckSpec::from_params(
                    "xrdp-firewall",
                    None,
                    &BTreeMap::from([("port".to_owned(), "3390".to_owned())])
                )
                .unwrap(),
            ]
        );
        let everything = first_checks(&case, &agents, &model_checks, &Settings::default());
        assert!(
            !everything.iter().any(
                |run| matches!(&run.spec, CheckSpec::Host(spec) if spec.id() == "credssp-policy")
            ),
            "{everything:?}"
        );
    }

    #[test]
    fn an_employees_windows_pc_runs_the_models_client_checks() {
        let employee = crate::agents::example_agent("LT-0815", Some("http://10.1.1.1:7443"));
        let employee_id = employee.id;
        let case = NewCase {
            target: CheckTarget::parse("pc-042.corp.example").unwrap(),
            error_code: None,
            extended_code: None,
        };
        let agents = CaseAgents {
            client: Some(employee),
            host: None,
        };
        let model_checks = [
            ("credssp-policy", CheckLocation::Client),
            ("vpn-tunnel-events", CheckLocation::Client),
            ("licensing-cache", CheckLocation::Client),
        ];
        let mut on_employee_pc: Vec<&str> =
            first_checks(&case, &agents, &model_checks, &Settings::default())
                .into_iter()
                .filter(|run| run.runner == Runner::Agent(Some(employee_id)))
                .filter_map(|run| match run.spec {
                    CheckSpec::Host(spec) => Some(spec.id()),
                    _ => None,
                })
                .collect();
        on_employee_pc.sort();
        // licensing-cache has no agent check yet: it is not queued.
        assert_eq!(on_employee_pc, ["credssp-policy", "vpn-tunnel-events"]);
    }
}
