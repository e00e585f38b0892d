//! Which checks a new case queues, and where: the network probes from the employee's agent
//! (the one heard from the address the case came from) and the server, the name check when
//! the host's agent gave its address, the host agent's port from the employee's agent, the
//! network the case came from, and the model's Windows checks on the agent of the host the
//! case names (real agents on loopback; the "Windows" host is a real agent whose system the
//! test sets in the database, and it answers those checks as a Linux agent does: not
//! available here); and the evidence a real RDP server gives: xrdp's own checks on a Linux
//! host, and the CredSSP version FreeRDP's shadow server answers with.

mod common;

#[path = "../../agent-client/tests/support/mod.rs"]
mod rdp_peers;

use std::time::Duration;

use common::{spawn_app_with, test_settings, TestAgent, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

/// The case's queued checks as (check id, runner, agent).
async fn queued(app: &TestApp, case_id: &str) -> Vec<(String, String, Option<Uuid>, Value)> {
    let rows: Vec<(String, String, Option<Uuid>, sqlx::types::Json<Value>)> = sqlx::query_as(
        "SELECT catalogue_id, runner, agent_id, spec FROM jobs WHERE case_id = $1 ORDER BY created_at, catalogue_id",
    )
    .bind(Uuid::parse_str(case_id).unwrap())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(check, runner, agent, spec)| (check, runner, agent, spec.0))
        .collect()
}

/// The ids of the case's queued checks, sorted.
async fn queued_ids(app: &TestApp, case_id: &str) -> Vec<String> {
    let mut ids: Vec<String> = queued(app, case_id)
        .await
        .into_iter()
        .map(|(check, ..)| check)
        .collect();
    ids.sort();
    ids
}

async fn set_agent(app: &TestApp, id: &str, hostname: &str, os: &str, seen_secs_ago: i64) {
    sqlx::query(
        "UPDATE agents SET hostname = $2, os = $3, \
         last_seen_at = now() - make_interval(secs => $4) WHERE id = $1",
    )
    .bind(Uuid::parse_str(id).unwrap())
    .bind(hostname)
    .bind(os)
    .bind(seen_secs_ago as f64)
    .execute(&app.pool)
    .await
    .unwrap();
}

async fn open(app: &TestApp, host: &str) -> String {
    let response = app
        .post_case(
            json!({"host": host, "port": "3389", "error_code": "0x904", "extended_code": "0x7"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    created["id"].as_str().unwrap().to_owned()
}

/// The case's diagnosis session once its checks are over: every check of the model is in its
/// evidence (what a run found, or not run), and it has moved on to the employee (a question,
/// or nothing more to ask): it never waits for a finished run.
async fn diagnosis_after_checks(app: &TestApp, case_id: &str) -> Value {
    app.settled_case(case_id).await;
    let model_checks = engine::Model::shipped().checks.len();
    let mut last = Value::Null;
    for _ in 0..200 {
        let case = app.settled_case(case_id).await;
        let diagnosis = case.diagnosis.expect("every case has a diagnosis");
        let (status, session) = app
            .get_json(&format!("/api/v1/diagnosis/{}", diagnosis.session_id))
            .await;
        assert_eq!(status, 200);
        let recorded = session["evidence"]["checks"]
            .as_object()
            .map_or(0, |checks| checks.len());
        if !diagnosis.waiting_for_checks && recorded == model_checks {
            return session;
        }
        last = session;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the diagnosis did not record every check once they were over: {last:#}");
}

const NETWORK_CHECKS: [&str; 7] = [
    "clock-compare",
    "path-quality",
    "rdp-negotiate",
    "rdp-tls",
    "revocation-fetch",
    "tcp-connect",
    "tcp-connect",
];

/// The model's checks that a Windows host's agent runs (the model's `runs_on = "host"`).
const WINDOWS_HOST_CHECKS: [&str; 11] = [
    "cert-binding",
    "firewall-rule",
    "host-event-log",
    "rdp-certificate",
    "rdp-enabled",
    "rdp-listener",
    "rdp-services",
    "schannel-tls12",
    "secure-channel",
    "security-layer",
    "session-limits",
];

/// A server whose employees' checks run on the agent `EMPLOYEE-PC` (on Linux), and a
/// second real agent that the server knows as the Windows computer `PC-042`.
async fn employee_and_windows_host() -> (TestApp, TestAgent, TestAgent) {
    let app = spawn_app_with(
        common::fresh_pool().await,
        server::config::Settings {
            default_agent: Some("EMPLOYEE-PC".to_owned()),
            ..test_settings()
        },
    )
    .await;
    let employee = app.spawn_agent().await;
    let host = app.spawn_agent().await;
    set_agent(
        &app,
        &employee.identity().agent_id,
        "EMPLOYEE-PC",
        "linux x86_64",
        0,
    )
    .await;
    // Windows reports the short name; the employee types the full one.
    set_agent(
        &app,
        &host.identity().agent_id,
        "PC-042",
        "windows x86_64",
        5,
    )
    .await;
    (app, employee, host)
}

#[tokio::test]
async fn a_windows_host_with_an_agent_gets_the_models_host_checks_on_that_agent() {
    let (app, employee, host) = employee_and_windows_host().await;
    let employee_id = employee.identity().agent_id.clone();
    let host_id = host.identity().agent_id.clone();

    let case_id = open(&app, "pc-042.corp.example").await;
    let runs = queued(&app, &case_id).await;
    let on = |agent: &str| Some(Uuid::parse_str(agent).unwrap());
    let mut host_checks: Vec<&str> = runs
        .iter()
        .filter(|(_, _, agent, _)| *agent == on(&host_id))
        .map(|(check, ..)| check.as_str())
        .collect();
    host_checks.sort();
    assert_eq!(host_checks, WINDOWS_HOST_CHECKS, "{runs:#?}");
    let mut employee_checks: Vec<&str> = runs
        .iter()
        .filter(|(_, _, agent, _)| *agent == on(&employee_id))
        .map(|(check, ..)| check.as_str())
        .collect();
    employee_checks.sort();
    // The employee's PC is not on Windows: no CredSSP policy check there.
    assert_eq!(
        employee_checks,
        [
            "agent-port-connect",
            "clock-compare",
            "dns-resolve",
            "path-quality",
            "rdp-negotiate",
            "rdp-tls",
            "revocation-fetch",
            "tcp-connect"
        ]
    );
    let agent_port = runs
        .iter()
        .find(|(check, ..)| check == "agent-port-connect")
        .unwrap();
    let target = &agent_port.3["target"];
    assert_eq!(
        format!(
            "http://{}:{}",
            target["host"].as_str().unwrap(),
            target["port"]
        ),
        host.listen_url,
        "the port the host's agent listens on"
    );
    let dns = runs
        .iter()
        .find(|(check, ..)| check == "dns-resolve")
        .unwrap();
    assert_eq!(dns.3["host"], "pc-042.corp.example");
    assert_eq!(
        dns.3["expected"],
        json!(["127.0.0.1"]),
        "the address the host's agent listens at"
    );
    assert!(runs
        .iter()
        .any(|(check, runner, ..)| check == "tcp-connect" && runner == "server"));

    // The host's agent answers every Windows check (as not available on its system); the
    // diagnosis records each of those as not run, and moves on to the employee.
    let session = diagnosis_after_checks(&app, &case_id).await;
    let checks = &session["evidence"]["checks"];
    assert_eq!(
        checks["host-heartbeat"], "recent",
        "the server knows the host's agent beats: {session:#}"
    );
    assert_eq!(
        checks["agent-port-connect"], "open",
        "the host's agent answers from the employee's PC: {session:#}"
    );
    let case = app.settled_case(&case_id).await;
    let host_runs: Vec<_> = case
        .checks
        .iter()
        .filter(|run| WINDOWS_HOST_CHECKS.contains(&run.check_id.as_str()))
        .collect();
    assert_eq!(host_runs.len(), WINDOWS_HOST_CHECKS.len());
    for run in host_runs {
        assert_eq!(run.agent_hostname.as_deref(), Some("PC-042"), "{run:?}");
        assert!(run.status.is_final(), "{}: {:?}", run.check_id, run.status);
    }
    for check in WINDOWS_HOST_CHECKS {
        let result = &checks[check];
        assert_eq!(result, "not_run", "{check} had no outcome to give");
    }
}

#[tokio::test]
async fn a_host_whose_agent_went_silent_is_known_as_such_and_its_checks_end_at_once() {
    let (app, _employee, mut host) = employee_and_windows_host().await;
    let host_id = host.identity().agent_id.clone();
    host.stop().await;
    // Ten minutes without a heartbeat, far past the offline window.
    set_agent(&app, &host_id, "PC-042", "windows x86_64", 600).await;

    let case_id = open(&app, "PC-042").await;
    let session = diagnosis_after_checks(&app, &case_id).await;
    assert_eq!(session["evidence"]["checks"]["host-heartbeat"], "stopped");
    let case = app.settled_case(&case_id).await;
    let host_runs: Vec<_> = case
        .checks
        .iter()
        .filter(|run| run.agent_hostname.as_deref() == Some("PC-042"))
        .collect();
    assert_eq!(host_runs.len(), WINDOWS_HOST_CHECKS.len());
    assert!(host_runs
        .iter()
        .all(|run| run.status == app::case::CheckStatus::AgentOffline));
}

#[tokio::test]
async fn a_host_without_an_agent_gets_the_network_checks_only() {
    let app = spawn_app_with(common::fresh_pool().await, test_settings()).await;
    let agent = app.spawn_agent().await;
    let agent_id = agent.identity().agent_id.clone();
    app.wait_until_listening(&agent_id).await;

    // No agent runs on pc-999: nothing to ask its agent, no address to check the name with.
    let elsewhere = open(&app, "pc-999").await;
    assert_eq!(queued_ids(&app, &elsewhere).await, NETWORK_CHECKS);
    let session = diagnosis_after_checks(&app, &elsewhere).await;
    let heartbeat = &session["evidence"]["checks"]["host-heartbeat"];
    assert_eq!(heartbeat, "not_run", "no agent, no heartbeat to know of");
}

#[tokio::test]
async fn a_linux_hosts_agent_answers_the_models_host_checks_with_its_xrdp_checks() {
    use app::case::CheckStatus;
    use app::diagnosis::{catch_up_check, check_evidence, XRDP_COUNTERPARTS};
    use engine::CheckResult;

    let app = spawn_app_with(common::fresh_pool().await, test_settings()).await;
    let agent = app.spawn_agent().await;
    let agent_id = agent.identity().agent_id.clone();
    app.wait_until_listening(&agent_id).await;

    // 127.0.0.1 is this computer, whose agent is on Linux: its heartbeat is known, there is
    // no name to resolve, and xrdp's checks stand for the model's host checks.
    let here = open(&app, "127.0.0.1").await;
    let mut expected: Vec<&str> = NETWORK_CHECKS.to_vec();
    expected.extend(XRDP_COUNTERPARTS.iter().map(|(_, xrdp)| *xrdp));
    expected.sort();
    assert_eq!(queued_ids(&app, &here).await, expected);
    let runs = queued(&app, &here).await;
    for xrdp in ["xrdp-listening", "xrdp-firewall"] {
        let (_, _, on, spec) = runs.iter().find(|(check, ..)| check == xrdp).unwrap();
        assert_eq!(*on, Some(Uuid::parse_str(&agent_id).unwrap()));
        assert_eq!(
            spec["port"], 3389,
            "asked about the employee's port: {spec}"
        );
    }

    let session = diagnosis_after_checks(&app, &here).await;
    assert_eq!(session["evidence"]["checks"]["host-heartbeat"], "recent");
    let case = app.settled_case(&here).await;
    for (model_check, xrdp_check) in XRDP_COUNTERPARTS {
        let run = case
            .checks
            .iter()
            .find(|run| run.check_id == xrdp_check)
            .unwrap();
        assert_eq!(run.status, CheckStatus::Succeeded, "{run:?}");
        // What the diagnosis records once the run is over, asked for or not: the xrdp run's
        // outcome in the model's terms, or no evidence.
        let read = check_evidence(&run.check_id, false, run.report.as_ref().unwrap())
            .map(|(check, outcome)| {
                assert_eq!(check, model_check);
                CheckResult::Outcome(outcome)
            })
            .unwrap_or(CheckResult::NotRun);
        assert_eq!(
            catch_up_check(model_check, &case.checks),
            Some(read.clone())
        );
        let held = &session["evidence"]["checks"][model_check];
        assert_eq!(
            *held,
            serde_json::to_value(&read).unwrap(),
            "{model_check}: the session holds {held}, the run says {read:?}"
        );
    }
    // Debian's xrdp.ini negotiates: the one outcome every machine with the package agrees on.
    assert_eq!(
        catch_up_check("security-layer", &case.checks),
        Some(CheckResult::Outcome("negotiate".to_owned()))
    );
}

/// Sets where the server last heard an agent from, and when.
async fn set_seen(app: &TestApp, id: &str, from: &str, seen_secs_from_now: i64) {
    sqlx::query(
        "UPDATE agents SET seen_from = $2::inet, \
         last_seen_at = now() + make_interval(secs => $3) WHERE id = $1",
    )
    .bind(Uuid::parse_str(id).unwrap())
    .bind(from)
    .bind(seen_secs_from_now as f64)
    .execute(&app.pool)
    .await
    .unwrap();
}

/// Opens a case for `pc-999` as if the employee's browser were at `client`, through the
/// reverse proxy the server trusts (this test's loopback client).
async fn open_through_proxy(app: &TestApp, client: Option<&str>) -> String {
    let mut request = app
        .client
        .post(format!("{}/api/v1/cases", app.address))
        .json(&json!({"host": "pc-999", "error_code": "0x904"}));
    if let Some(client) = client {
        request = request.header("X-Forwarded-For", format!("203.0.113.66, {client}"));
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    created["id"].as_str().unwrap().to_owned()
}

/// The address the server stored the case as coming from.
async fn reported_from(app: &TestApp, case_id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT host(reported_from) FROM cases WHERE id = $1")
        .bind(Uuid::parse_str(case_id).unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// The agents that run the case's checks.
async fn agents_of(app: &TestApp, case_id: &str) -> Vec<Uuid> {
    let mut agents: Vec<Uuid> = queued(app, case_id)
        .await
        .into_iter()
        .filter_map(|(_, _, agent, _)| agent)
        .collect();
    agents.sort();
    agents.dedup();
    agents
}

#[tokio::test]
async fn the_employees_checks_run_on_the_agent_of_the_pc_the_case_came_from() {
    let app = spawn_app_with(
        common::fresh_pool().await,
        server::config::Settings {
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()].into(),
            corporate_networks: vec!["10.0.0.0/8".parse().unwrap()],
            vpn_networks: vec!["10.200.0.0/16".parse().unwrap()],
            ..test_settings()
        },
    )
    .await;
    let employee = app.spawn_agent().await;
    let colleague = app.spawn_agent().await;
    let employee_id = Uuid::parse_str(&employee.identity().agent_id).unwrap();
    let colleague_id = Uuid::parse_str(&colleague.identity().agent_id).unwrap();
    // The employee's agent beats from the employee's address; a colleague's PC, at the
    // office, was heard from more recently (it used to get every case).
    set_seen(&app, &employee.identity().agent_id, "10.200.7.7", 0).await;
    set_seen(&app, &colleague.identity().agent_id, "10.20.30.40", 60).await;

    let from_vpn = open_through_proxy(&app, Some("10.200.7.7")).await;
    assert_eq!(agents_of(&app, &from_vpn).await, [employee_id]);
    assert_eq!(
        reported_from(&app, &from_vpn).await.as_deref(),
        Some("10.200.7.7")
    );
    let session = diagnosis_after_checks(&app, &from_vpn).await;
    assert_eq!(session["evidence"]["checks"]["client-network"], "vpn");

    let from_office = open_through_proxy(&app, Some("10.20.30.40")).await;
    assert_eq!(agents_of(&app, &from_office).await, [colleague_id]);
    let session = diagnosis_after_checks(&app, &from_office).await;
    assert_eq!(session["evidence"]["checks"]["client-network"], "corporate");

    // Without the proxy's header the request comes from loopback itself: outside the
    // company's ranges, and no agent beats from there (the most recent one runs the checks).
    let direct = open_through_proxy(&app, None).await;
    assert_eq!(agents_of(&app, &direct).await, [colleague_id]);
    let session = diagnosis_after_checks(&app, &direct).await;
    assert_eq!(session["evidence"]["checks"]["client-network"], "outside");
}

#[tokio::test]
async fn without_configured_networks_the_client_network_is_not_guessed() {
    let app = spawn_app_with(common::fresh_pool().await, test_settings()).await;
    let _agent = app.spawn_agent().await;
    // An untrusted peer cannot pose as another computer with the header.
    let case_id = open_through_proxy(&app, Some("10.200.7.7")).await;
    assert_eq!(
        reported_from(&app, &case_id).await.as_deref(),
        Some("127.0.0.1")
    );
    let session = diagnosis_after_checks(&app, &case_id).await;
    let network = &session["evidence"]["checks"]["client-network"];
    assert_eq!(network, "not_run", "nothing to compare the address with");
}

#[tokio::test]
async fn a_hosts_credssp_version_read_by_the_employees_probe_judges_credssp_policy() {
    use app::diagnosis::catch_up_check;
    use engine::CheckResult;

    // A real CredSSP (NLA) server with the 2018 nonce binding, as an updated Windows host.
    let shadow = rdp_peers::Shadow::start("nla");
    let app = spawn_app_with(common::fresh_pool().await, test_settings()).await;
    let agent = app.spawn_agent().await;
    app.wait_until_listening(&agent.identity().agent_id).await;

    let response = app
        .post_case(json!({
            "host": "127.0.0.1", "port": shadow.port.to_string(),
            "error_code": "0x904", "extended_code": "0x7"
        }))
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let case_id = created["id"].as_str().unwrap().to_owned();
    let session = diagnosis_after_checks(&app, &case_id).await;
    let case = app.settled_case(&case_id).await;
    let probe = case
        .checks
        .iter()
        .find(|run| run.check_id == "clock-compare")
        .unwrap();
    let Some(agent_client::wire::CheckReport::ClockCompare(report)) = &probe.report else {
        panic!("{probe:?}");
    };
    let version = report.credssp.as_ref().expect("a CredSSP answer").version;
    assert!(
        version >= 5,
        "FreeRDP binds the key with a nonce: {version}"
    );
    // The employee's PC here runs no Windows agent: an up-to-date client is assumed, and an
    // updated host suits it.
    let judged = catch_up_check("credssp-policy", &case.checks);
    assert_eq!(judged, Some(CheckResult::Outcome("consistent".to_owned())));
    assert_eq!(
        session["evidence"]["checks"]["credssp-policy"],
        "consistent"
    );
}
