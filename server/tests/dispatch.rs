//! The durable dispatcher: restarts and dead agents lose no run, a hung check ends
//! `timed_out` without holding up others, an agent with stopped heartbeats is reported at
//! once, and two servers sharing the queue run each check once.

mod common;

use std::process::Stdio;
use std::time::Duration;

use app::case::{CaseView, CheckStatus};
use common::{fresh_pool, spawn_app, spawn_app_with, temp_dir, test_settings};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A loopback port that never answers (a full accept queue that is never drained).
async fn no_answer_port() -> (Child, u16) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../e2e/support/no-answer-port.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = lines
        .next_line()
        .await
        .unwrap()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (child, port)
}

async fn case_status(client: &reqwest::Client, base: &str, id: &str) -> CaseView {
    client
        .get(format!("{base}/api/v1/cases/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn open_case(client: &reqwest::Client, base: &str, host: &str, port: u16) -> String {
    let created: serde_json::Value = client
        .post(format!("{base}/api/v1/cases"))
        .json(&json!({"host": host, "port": port.to_string()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"].as_str().expect("a case id").to_owned()
}

#[tokio::test]
async fn an_agent_whose_heartbeats_stopped_is_reported_offline_at_once() {
    let app = spawn_app().await;
    let _agent = app.spawn_agent().await;
    sqlx::query("UPDATE agents SET last_seen_at = now() - interval '10 minutes'")
        .execute(&app.pool)
        .await
        .unwrap();
    let id = open_case(&app.client, &app.address, "127.0.0.1", 9).await;
    let case = app.settled_case(&id).await;
    let run = &case.checks[0];
    assert_eq!(run.status, CheckStatus::AgentOffline);
    assert!(run
        .problem
        .as_deref()
        .unwrap()
        .contains("heartbeats have stopped"));
    let attempts: i32 = sqlx::query_scalar(
        "SELECT attempts FROM jobs WHERE runner = 'agent' AND catalogue_id = 'tcp-connect'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(attempts, 1, "no retries for an agent known to be offline");
}

#[tokio::test]
async fn an_agent_killed_mid_check_leaves_a_clear_state() {
    let mut settings = test_settings();
    settings.connect_timeout_ms = 2000;
    let app = spawn_app_with(fresh_pool().await, settings).await;
    let mut agent = app.spawn_agent().await;
    let (_silent, port) = no_answer_port().await;
    let id = open_case(&app.client, &app.address, "127.0.0.1", port).await;
    // Wait until the agent has the check in hand, then kill it.
    for _ in 0..100 {
        if app.case(&id).await.checks[0].status == CheckStatus::Sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    agent.stop().await;
    let case = app.settled_case(&id).await;
    assert_eq!(case.checks[0].status, CheckStatus::AgentOffline);
    let (attempts, last_error): (i32, Option<String>) = sqlx::query_as(
        "SELECT attempts, last_error FROM jobs WHERE runner = 'agent' AND catalogue_id = 'tcp-connect'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(attempts, 3, "retried up to the limit before giving up");
    assert!(last_error.unwrap().contains("did not answer"));
}

#[tokio::test]
async fn a_hung_check_times_out_without_holding_up_the_queue() {
    let mut settings = test_settings();
    settings.connect_timeout_ms = 200;
    settings.check_deadline = Duration::from_secs(3);
    let app = spawn_app_with(fresh_pool().await, settings).await;
    let _agent = app.spawn_agent().await;
    // The agent's address now leads to something that accepts the server's connection and
    // never answers.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_url = format!("http://{}", hung.local_addr().unwrap());
    sqlx::query("UPDATE agents SET listen_url = $1")
        .bind(&hung_url)
        .execute(&app.pool)
        .await
        .unwrap();
    let hung_case = open_case(&app.client, &app.address, "127.0.0.1", 9).await;

    // Meanwhile a check run by the server itself finishes at once.
    let listening = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listening.local_addr().unwrap().port();
    let started = std::time::Instant::now();
    let other = open_case(&app.client, &app.address, "127.0.0.1", port).await;
    loop {
        let case = app.case(&other).await;
        if case.checks[1].status == CheckStatus::Succeeded {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the server's own check waited behind the hung one"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let case = app.settled_case(&hung_case).await;
    let statuses: Vec<CheckStatus> = case
        .checks
        .iter()
        .filter(|c| !c.run_by_server)
        .map(|c| c.status)
        .collect();
    assert!(
        statuses
            .iter()
            .all(|s| *s == CheckStatus::TimedOut || *s == CheckStatus::Succeeded),
        "{statuses:?}"
    );
    assert!(statuses.contains(&CheckStatus::TimedOut), "{statuses:?}");
    drop(hung);
}

#[tokio::test]
async fn two_servers_sharing_the_queue_run_each_check_once() {
    let pool = fresh_pool().await;
    let first = spawn_app_with(pool.clone(), test_settings()).await;
    let second = spawn_app_with(pool.clone(), test_settings()).await;
    let listening = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listening.local_addr().unwrap().port();
    let mut ids = Vec::new();
    for i in 0..20 {
        let app = if i % 2 == 0 { &first } else { &second };
        ids.push(open_case(&app.client, &app.address, "127.0.0.1", port).await);
    }
    for id in &ids {
        let case = first.settled_case(id).await;
        assert_eq!(
            case.checks[1].status,
            CheckStatus::Succeeded,
            "the server's own check"
        );
    }
    let attempts: Vec<i32> =
        sqlx::query_scalar("SELECT attempts FROM jobs WHERE runner = 'server'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(attempts.len(), 20);
    assert!(attempts.iter().all(|a| *a == 1), "{attempts:?}");
}

#[tokio::test]
async fn a_server_killed_mid_check_resumes_the_run_after_a_restart() {
    const BIN: &str = env!("CARGO_BIN_EXE_rdp-doctor");
    let state = temp_dir("kill");
    let start = || {
        let state = state.clone();
        async move {
            let mut child = Command::new(BIN)
                .args([
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--site-root",
                    "no-site",
                    "--connect-timeout-ms",
                    "1000",
                ])
                .arg("--state-dir")
                .arg(&state)
                .env("RUST_LOG", "error")
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let line = tokio::time::timeout(Duration::from_secs(90), lines.next_line())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let url = line
                .strip_prefix("RDP Doctor is running at ")
                .unwrap()
                .trim_end_matches('/')
                .to_owned();
            (child, url)
        }
    };
    let (mut server, url) = start().await;
    let token = std::process::Command::new(BIN)
        .args(["token", "create"])
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let agent = common::serve_agent(&url, &token).await;
    let client = reqwest::Client::new();
    let (_silent, port) = no_answer_port().await;
    let id = open_case(&client, &url, "127.0.0.1", port).await;
    for _ in 0..100 {
        if case_status(&client, &url, &id).await.checks[0].status == CheckStatus::Sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().await.unwrap(); // SIGKILL: no graceful anything
    server.wait().await.unwrap();

    let (_server, url) = start().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let case = loop {
        let case = case_status(&client, &url, &id).await;
        if case.checks[0].status.is_final() {
            break case;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the interrupted run never finished: {case:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(case.checks[0].status, CheckStatus::Succeeded, "{case:?}");
    let report = serde_json::to_value(case.checks[0].report.as_ref().unwrap()).unwrap();
    assert_eq!(report["verdict"], "no-answer");
    drop(agent);
    let _ = std::fs::remove_dir_all(&state);
}
