//! Fixes through the server, against the whole real agent: a fix asked on a case runs on the
//! agent and the case shows what changed, and can be undone from the agent's snapshot; a
//! retried fix (its first reply lost) is applied
//! once; a downgrade needs a helpdesk approval, and when the approval expires the agent
//! reverts it by itself and the server hears of it; bad requests change nothing.
//!
//! The fixes are the Linux xrdp ones, run for real on an xrdp.ini in a temporary directory.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agent_client::wire::ActionState;
use app::case::{CheckStatus, FixRunView};
use common::{spawn_app_with, temp_dir, test_settings, RunningAgent, TestApp};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A small xrdp.ini: the fixes change `security_layer` in `[Globals]` and nothing else.
fn write_ini(security_layer: &str) -> (std::path::PathBuf, String) {
    let dir = temp_dir("fix-ini");
    let path = dir.join("xrdp.ini");
    let text = format!(
        "[Globals]\n; written by the fixes test\nini_version=1\nport=3389\nsecurity_layer={security_layer}\ncrypt_level=high\n\n[Xorg]\nname=Xorg\nlib=libxup.so\n"
    );
    std::fs::write(&path, &text).unwrap();
    let shown = path.to_str().unwrap().to_owned();
    (path, shown)
}

fn security_layer(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("security_layer="))
        .unwrap()
        .to_owned()
}

async fn open_case(app: &TestApp) -> String {
    // Nothing listens on port 9 of loopback: the first checks end quickly.
    let response = app
        .post_case(json!({"host": "127.0.0.1", "port": "9", "error_code": "0x904"}))
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn post(app: &TestApp, path: &str, body: Value, bearer: Option<&str>) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!("{}{path}", app.address))
        .json(&body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls the case until `done` holds for its fix (60 s at most).
async fn wait_for_fix(
    app: &TestApp,
    case_id: &str,
    done: impl Fn(&FixRunView) -> bool,
) -> FixRunView {
    for _ in 0..600 {
        let view = app.case(case_id).await;
        if let Some(fix) = view.fixes.last() {
            if done(fix) {
                return fix.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the fix did not get there: {:#?}",
        app.case(case_id).await.fixes
    );
}

fn settings_with_fast_heartbeats() -> server::config::Settings {
    server::config::Settings {
        heartbeat_interval: Duration::from_secs(1),
        agent_offline_after: Duration::from_secs(5),
        ..test_settings()
    }
}

async fn app_and_agent(advertise: Option<String>) -> (TestApp, RunningAgent) {
    let app = spawn_app_with(common::fresh_pool().await, settings_with_fast_heartbeats()).await;
    let token = app.create_token(1).await;
    let agent = RunningAgent::start(&app.address, &token, advertise).await;
    app.wait_until_listening(&agent.agent_id).await;
    (app, agent)
}

#[tokio::test]
async fn a_fix_asked_on_a_case_runs_on_the_agent_and_the_case_shows_what_changed() {
    let (app, agent) = app_and_agent(None).await;
    let case_id = open_case(&app).await;
    let (ini, ini_path) = write_ini("tls");

    // A dry run first: says what would change, changes nothing.
    let (status, body) = post(
        &app,
        &format!("/api/v1/cases/{case_id}/fixes"),
        json!({"fix": "xrdp-set-security-layer-negotiate", "params": {"config": ini_path}, "dry_run": true}),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let dry = wait_for_fix(&app, &case_id, |f| f.status.is_final()).await;
    assert_eq!(dry.status, CheckStatus::Succeeded, "{dry:#?}");
    assert!(dry.dry_run);
    let action = dry.action.unwrap();
    assert_eq!(action.state, ActionState::DryRun);
    assert!(
        action
            .plan
            .iter()
            .any(|c| c.from.contains("tls") && c.to.contains("negotiate")),
        "{:?}",
        action.plan
    );
    assert_eq!(security_layer(&ini), "tls");

    let (status, _) = post(
        &app,
        &format!("/api/v1/cases/{case_id}/fixes"),
        json!({"fix": "xrdp-set-security-layer-negotiate", "params": {"config": ini_path}}),
        None,
    )
    .await;
    assert_eq!(status, 202);
    let applied = wait_for_fix(&app, &case_id, |f| f.status.is_final() && !f.dry_run).await;
    assert_eq!(applied.status, CheckStatus::Succeeded, "{applied:#?}");
    assert_eq!(applied.tier, "change");
    assert_eq!(applied.requested_by, "employee");
    let action = applied.action.unwrap();
    assert_eq!(action.state, ActionState::Applied);
    assert!(!action.repeated);
    assert_eq!(security_layer(&ini), "negotiate");
    // The agent's own journal holds the same action, with its snapshot.
    let journal = agent.journal();
    let record = journal
        .iter()
        .find(|r| r.action_id == action.action_id)
        .expect("the action is in the agent's journal");
    assert!(record.snapshot.is_some());
    assert_eq!(record.case_id.as_deref(), Some(case_id.as_str()));

    // A dry run changed nothing: there is nothing to undo, and nothing is asked of the agent.
    let rollback = |job: &str| format!("/api/v1/cases/{case_id}/fixes/{job}/rollback");
    let (status, body) = post(&app, &rollback(&dry.job_id), json!({}), None).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dry-run"),
        "{body}"
    );
    // Unknown jobs, and a job of another case, are not found.
    let unknown = "00000000-0000-4000-8000-000000000000";
    let (status, _) = post(&app, &rollback(unknown), json!({}), None).await;
    assert_eq!(status, 404);
    let (status, _) = post(&app, &rollback("not-a-job"), json!({}), None).await;
    assert_eq!(status, 404);
    let other_case = open_case(&app).await;
    let (status, _) = post(
        &app,
        &format!(
            "/api/v1/cases/{other_case}/fixes/{}/rollback",
            applied.job_id
        ),
        json!({}),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(security_layer(&ini), "negotiate", "nothing was undone");

    // The applied fix is undone from the agent's snapshot, and the case shows it at once.
    let (status, body) = post(&app, &rollback(&applied.job_id), json!({}), None).await;
    assert_eq!(status, 200, "{body}");
    let undone: FixRunView = serde_json::from_value(body).unwrap();
    let state = undone.action.unwrap().state;
    assert!(matches!(state, ActionState::RolledBack { .. }), "{state:?}");
    assert_eq!(security_layer(&ini), "tls");
    let shown = app.case(&case_id).await;
    let shown = shown
        .fixes
        .iter()
        .find(|f| f.job_id == applied.job_id)
        .unwrap();
    assert!(matches!(
        shown.action.as_ref().unwrap().state,
        ActionState::RolledBack { .. }
    ));
    // Once undone, there is nothing left to undo.
    let (status, _) = post(&app, &rollback(&applied.job_id), json!({}), None).await;
    assert_eq!(status, 409);
    assert_eq!(security_layer(&ini), "tls");
}

/// Forwards to the agent, but cuts the connection of the first fix request as soon as the
/// agent starts replying: the agent has applied the fix, the server never hears so.
async fn lossy_proxy(agent: std::net::SocketAddr) -> (String, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let cut_done = Arc::new(AtomicBool::new(false));
    let cut = cut_done.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let cut = cut.clone();
            tokio::spawn(async move {
                let Ok(mut upstream) = TcpStream::connect(agent).await else {
                    return;
                };
                let mut request = vec![0u8; 64 * 1024];
                let mut from_client = [0u8; 16 * 1024];
                let mut from_agent = [0u8; 16 * 1024];
                let mut sabotage = false;
                loop {
                    tokio::select! {
                        n = client.read(&mut from_client) => {
                            let Ok(n) = n else { return };
                            if n == 0 { return; }
                            request.clear();
                            request.extend_from_slice(&from_client[..n]);
                            if !cut.load(Ordering::SeqCst)
                                && String::from_utf8_lossy(&request).contains("POST /v1/fixes/run")
                            {
                                sabotage = true;
                            }
                            if upstream.write_all(&from_client[..n]).await.is_err() { return; }
                        }
                        n = upstream.read(&mut from_agent) => {
                            let Ok(n) = n else { return };
                            if n == 0 { return; }
                            if sabotage && !cut.swap(true, Ordering::SeqCst) {
                                // The reply is lost: drop both connections.
                                return;
                            }
                            if client.write_all(&from_agent[..n]).await.is_err() { return; }
                        }
                    }
                }
            });
        }
    });
    (url, cut_done)
}

#[tokio::test]
async fn a_retried_fix_whose_first_reply_was_lost_is_applied_once() {
    // The agent tells the server to call it through the lossy proxy.
    let listen_probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let agent_port = listen_probe.local_addr().unwrap();
    drop(listen_probe);
    let (proxy_url, cut) = lossy_proxy(agent_port).await;
    let app = spawn_app_with(common::fresh_pool().await, settings_with_fast_heartbeats()).await;
    let token = app.create_token(1).await;
    let agent = RunningAgent::start_on(&app.address, &token, agent_port, Some(proxy_url)).await;
    app.wait_until_listening(&agent.agent_id).await;
    let case_id = open_case(&app).await;
    let (ini, ini_path) = write_ini("rdp");

    let (status, body) = post(
        &app,
        &format!("/api/v1/cases/{case_id}/fixes"),
        json!({"fix": "xrdp-set-security-layer-negotiate", "params": {"config": ini_path}}),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let job_id = body["job_id"].as_str().unwrap().to_owned();
    let fix = wait_for_fix(&app, &case_id, |f| f.status.is_final()).await;
    assert!(cut.load(Ordering::SeqCst), "the first reply was cut off");
    assert_eq!(fix.status, CheckStatus::Succeeded, "{fix:#?}");
    let action = fix.action.unwrap();
    assert!(
        action.repeated,
        "the second attempt got the first attempt's record back"
    );
    assert_eq!(action.state, ActionState::Applied);
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM jobs WHERE id = $1::uuid")
        .bind(&job_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        attempts, 2,
        "one attempt lost its reply, the retry succeeded"
    );
    // Applied once: one action for the job's key in the agent's journal, changed once.
    let journal = agent.journal();
    let for_job: Vec<_> = journal
        .iter()
        .filter(|r| r.idempotency_key == format!("job-{job_id}"))
        .collect();
    assert_eq!(for_job.len(), 1, "{journal:#?}");
    assert_eq!(
        for_job[0]
            .history
            .iter()
            .filter(|h| h.what.starts_with("changed"))
            .count(),
        1,
        "{:#?}",
        for_job[0].history
    );
    assert_eq!(security_layer(&ini), "negotiate");
}

#[tokio::test]
async fn a_downgrade_needs_a_helpdesk_approval_and_the_agent_reverts_it_when_it_expires() {
    let (app, agent) = app_and_agent(None).await;
    let case_id = open_case(&app).await;
    let other_case = open_case(&app).await;
    let (ini, ini_path) = write_ini("tls");
    let fixes = format!("/api/v1/cases/{case_id}/fixes");
    let approvals = format!("/api/v1/cases/{case_id}/approvals");
    let downgrade = json!({"fix": "xrdp-set-security-layer-rdp", "params": {"config": ini_path}});

    // Without an approval: refused, nothing queued.
    let (status, body) = post(&app, &fixes, downgrade.clone(), None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "approval_required");
    let fix_jobs = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM jobs WHERE kind = 'fix'")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    assert_eq!(fix_jobs().await, 0);

    // Approving takes a helpdesk account.
    let approval = json!({"agent_id": agent.agent_id, "fix": "xrdp-set-security-layer-rdp",
                          "valid_for_secs": 12, "reason": "NLA broken on this host, ticket 4711"});
    let (status, body) = post(&app, &approvals, approval.clone(), None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "helpdesk_login_required");
    let (status, _) = post(
        &app,
        &approvals,
        approval.clone(),
        Some("rdpd_helpdesk_forged"),
    )
    .await;
    assert_eq!(status, 401);
    let token = server::helpdesk::add_account(&app.pool, "alice")
        .await
        .unwrap();
    // Only downgrades take approvals, within the allowed length, with a reason.
    let mut bad = approval.clone();
    bad["fix"] = json!("xrdp-set-security-layer-negotiate");
    let (status, body) = post(&app, &approvals, bad, Some(&token)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_fix"))
    );
    let mut bad = approval.clone();
    bad["valid_for_secs"] = json!(9 * 3600);
    let (status, body) = post(&app, &approvals, bad, Some(&token)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_valid_for_secs"))
    );
    let mut bad = approval.clone();
    bad["reason"] = json!("  ");
    let (status, _) = post(&app, &approvals, bad, Some(&token)).await;
    assert_eq!(status, 422);
    assert_eq!(app.count("fix_approvals").await, 0);

    let (status, approved) = post(&app, &approvals, approval.clone(), Some(&token)).await;
    assert_eq!(status, 201, "{approved}");
    assert_eq!(approved["approved_by"], "alice");
    let approval_id = approved["approval_id"].as_str().unwrap().to_owned();

    // The approval is for this case only.
    let mut elsewhere = downgrade.clone();
    elsewhere["approval_id"] = json!(approval_id);
    let (status, body) = post(
        &app,
        &format!("/api/v1/cases/{other_case}/fixes"),
        elsewhere,
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "approval_not_valid");
    assert_eq!(fix_jobs().await, 0);

    let mut approved_fix = downgrade.clone();
    approved_fix["approval_id"] = json!(approval_id);
    let (status, body) = post(&app, &fixes, approved_fix.clone(), None).await;
    assert_eq!(status, 202, "{body}");
    let applied = wait_for_fix(&app, &case_id, |f| f.status.is_final()).await;
    assert_eq!(applied.status, CheckStatus::Succeeded, "{applied:#?}");
    assert_eq!(applied.tier, "downgrade");
    let action = applied.action.unwrap();
    assert_eq!(action.state, ActionState::Applied);
    assert!(action.revert_at.is_some());
    assert_eq!(security_layer(&ini), "rdp");

    // An approval is good for one fix.
    let (status, body) = post(&app, &fixes, approved_fix, None).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already used"));

    // At expiry the agent reverts the downgrade by itself, and its next heartbeat makes the
    // server read the news into the case.
    let reverted = wait_for_fix(&app, &case_id, |f| {
        matches!(
            f.action.as_ref().map(|a| &a.state),
            Some(ActionState::AutoReverted { .. })
        )
    })
    .await;
    assert_eq!(reverted.job_id, applied.job_id);
    assert_eq!(security_layer(&ini), "tls");
    drop(agent);
}

#[tokio::test]
async fn bad_fix_requests_get_a_specific_error_and_change_nothing() {
    let (app, _agent) = app_and_agent(None).await;
    let case_id = open_case(&app).await;
    let fixes = format!("/api/v1/cases/{case_id}/fixes");
    let cases = [
        (json!({"fix": "shell", "params": {}}), 422, "invalid_fix"),
        (
            json!({"fix": "xrdp-start", "params": {"cmd": "rm -rf /"}}),
            422,
            "invalid_fix",
        ),
        (
            json!({"fix": "xrdp-start", "params": {"config": "/etc/passwd"}}),
            422,
            "invalid_fix",
        ),
        (
            json!({"fix": "flush-dns", "surprise": true}),
            400,
            "bad_json",
        ),
        (
            json!({"fix": "flush-dns", "agent_id": "00000000-0000-0000-0000-000000000000"}),
            422,
            "invalid_agent_id",
        ),
        (
            json!({"fix": "flush-dns", "approval_id": "00000000-0000-0000-0000-000000000000"}),
            422,
            "invalid_fix",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = post(&app, &fixes, body.clone(), None).await;
        assert_eq!(got, status, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} -> {answer}");
    }
    let (status, _) = post(
        &app,
        "/api/v1/cases/00000000-0000-0000-0000-000000000000/fixes",
        json!({"fix": "flush-dns"}),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // A fix of the host when no agent runs on that host: refused, never sent to the agent
    // that does exist (it runs on another computer). Naming an agent is still possible.
    let response = app
        .post_case(json!({"host": "pc-042.corp.example", "error_code": "0x904"}))
        .await;
    assert_eq!(response.status(), 201);
    let elsewhere: Value = response.json().await.unwrap();
    let elsewhere_fixes = format!("/api/v1/cases/{}/fixes", elsewhere["id"].as_str().unwrap());
    let (got, answer) = post(
        &app,
        &elsewhere_fixes,
        json!({"fix": "xrdp-start", "params": {}}),
        None,
    )
    .await;
    assert_eq!(got, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "conflict", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no agent runs on pc-042.corp.example"),
        "{message}"
    );

    let fix_jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'fix'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(fix_jobs, 0);
}
