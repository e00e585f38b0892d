//! Fixes through the real `rdp-doctor-agent` program: the signed fix routes of `agent run`
//! (refusals, approvals, idempotent repeats, rollback, the journal), a downgrade reverted by
//! the agent when its approval expires - also when the agent was killed and started again -
//! and `rdp-doctor-agent fix` starting a real xrdp whose answers change with the fixes.

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_client::host::approval;
use agent_client::host::fix::*;
use agent_client::host::report::IniPath;
use agent_client::rdp::report::NegotiateVerdict;
use agent_client::signed_http::{post_json, CallError, Signer};
use agent_client::signing::{sign_request, unix_now, Keypair};
use agent_client::wire::{FIX_JOURNAL_PATH, ROLLBACK_FIX_PATH, RUN_FIX_PATH};
use support::{
    free_port, override_ini, require_program, require_root, target, CertSpec, Pki, TempDir,
};

const AGENT_ID: &str = "agent-under-test";
const AGENT_BIN: &str = env!("CARGO_BIN_EXE_rdp-doctor-agent");

/// An identity file as `enroll` writes it, for a server key the test holds.
struct Identity {
    dir: TempDir,
    server: Keypair,
    agent_key: Keypair,
}

impl Identity {
    fn new(label: &str) -> Identity {
        let id = Identity {
            dir: TempDir::new(label),
            server: Keypair::generate(),
            agent_key: Keypair::generate(),
        };
        let file = serde_json::json!({
            "agent_id": AGENT_ID,
            // Heartbeats fail quietly: nothing listens there.
            "server_url": "http://127.0.0.1:9",
            "server_public_key": id.server.public_base64(),
            "private_key": id.agent_key.secret_base64(),
        });
        fs::write(id.path(), file.to_string()).unwrap();
        id
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("agent.json")
    }

    fn approval(&self, agent: &str, fix: &str, case: &str, expires_at: i64) -> ApprovalToken {
        approval::issue(
            &self.server,
            &ApprovalClaims {
                approval_id: format!("ap-{}", unix_now()) + &format!("-{fix}-{agent}-{expires_at}"),
                agent_id: agent.into(),
                fix: fix.into(),
                case_id: case.into(),
                approved_by: "helpdesk-1".into(),
                issued_at: unix_now(),
                expires_at,
            },
        )
    }
}

/// `rdp-doctor-agent run` on a loopback port; killed (SIGKILL) on drop.
struct Agent {
    child: Child,
    url: String,
}

impl Agent {
    fn start(identity: &Identity) -> Agent {
        let mut child = Command::new(AGENT_BIN)
            .args(["run", "--listen", "127.0.0.1:0", "--config"])
            .arg(identity.path())
            .env("RDP_DOCTOR_AGENT_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the agent starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .last()
            .filter(|u| u.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Agent { child, url }
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
    identity: &Identity,
    agent: &Agent,
    path: &str,
    body: &Req,
) -> Result<Resp, CallError> {
    let peer = identity.agent_key.public_key();
    post_json(
        &reqwest::Client::new(),
        &agent.url,
        path,
        Signer {
            key: &identity.server,
            key_id: "server",
            peer_key: Some(&peer),
        },
        body,
        Duration::from_secs(60),
    )
    .await
}

fn ini(dir: &Path, globals: &[(&str, String)]) -> IniPath {
    let system =
        fs::read_to_string("/etc/xrdp/xrdp.ini").expect("/etc/xrdp/xrdp.ini (package xrdp)");
    let path = dir.join("xrdp.ini");
    fs::write(&path, override_ini(&system, &[("Globals", globals)])).unwrap();
    IniPath::parse(path.to_str().unwrap()).unwrap()
}

fn fix_request(key: &str, fix: FixSpec, approval: Option<ApprovalToken>) -> FixRequest {
    FixRequest {
        idempotency_key: key.into(),
        case_id: Some("case-42".into()),
        fix,
        dry_run: false,
        approval,
    }
}

fn state(record: &ActionRecord) -> String {
    serde_json::to_value(&record.state).unwrap()["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn reason(record: &ActionRecord) -> String {
    match &record.state {
        ActionState::Refused { reason } => reason.clone(),
        other => panic!("not refused: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_downgrade_over_the_api_needs_a_valid_approval_and_is_reverted_after_a_restart() {
    let identity = Identity::new("host-agent-downgrade");
    let config = ini(
        identity.dir.path(),
        &[("security_layer", "negotiate".into())],
    );
    let original = fs::read(config.as_str()).unwrap();
    let fix = FixSpec::XrdpSetSecurityLayerRdp {
        config: config.clone(),
    };
    let agent = Agent::start(&identity);

    // Refused: no approval, a forged one, one for another host, an expired one.
    let now = unix_now();
    let forger = Identity::new("host-agent-forger");
    let refusals = [
        (None, "only with an approval"),
        (
            Some(forger.approval(AGENT_ID, fix.id(), "case-42", now + 60)),
            "not signed by this agent's server",
        ),
        (
            Some(identity.approval("agent-elsewhere", fix.id(), "case-42", now + 60)),
            "another agent",
        ),
        (
            Some(identity.approval(AGENT_ID, fix.id(), "case-42", now - 1)),
            "expired",
        ),
    ];
    for (i, (token, why)) in refusals.into_iter().enumerate() {
        let response: FixResponse = call(
            &identity,
            &agent,
            RUN_FIX_PATH,
            &fix_request(&format!("refused-{i:04}"), fix.clone(), token),
        )
        .await
        .unwrap();
        assert!(
            reason(&response.action).contains(why),
            "{why}: {:?}",
            response.action.state
        );
    }
    assert_eq!(
        fs::read(config.as_str()).unwrap(),
        original,
        "nothing changed"
    );

    // Approved for a few seconds: applied.
    let expires_at = unix_now() + 4;
    let approved = fix_request(
        "downgrade-0001",
        fix.clone(),
        Some(identity.approval(AGENT_ID, fix.id(), "case-42", expires_at)),
    );
    let response: FixResponse = call(&identity, &agent, RUN_FIX_PATH, &approved)
        .await
        .unwrap();
    assert_eq!(state(&response.action), "applied", "{:#?}", response.action);
    assert_eq!(response.action.revert_at, Some(expires_at));
    assert!(fs::read_to_string(config.as_str())
        .unwrap()
        .contains("\nsecurity_layer=rdp\n"));

    // The agent dies before the approval expires, and comes back after it has.
    agent.kill();
    while unix_now() <= expires_at {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        fs::read_to_string(config.as_str())
            .unwrap()
            .contains("\nsecurity_layer=rdp\n"),
        "still downgraded while no agent runs"
    );
    let agent = Agent::start(&identity);
    let started = Instant::now();
    let record = loop {
        let journal: JournalResponse = call(
            &identity,
            &agent,
            FIX_JOURNAL_PATH,
            &JournalRequest::default(),
        )
        .await
        .unwrap();
        let record = journal
            .actions
            .into_iter()
            .find(|a| a.action_id == response.action.action_id)
            .expect("the action is in the journal");
        if state(&record) == "auto-reverted" {
            break record;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not reverted: {:?}",
            record.state
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        record
            .history
            .iter()
            .any(|h| h.what.contains("restored byte for byte")),
        "{:#?}",
        record.history
    );
    assert_eq!(
        fs::read(config.as_str()).unwrap(),
        original,
        "exact bytes after the revert"
    );

    // The server retrying its request gets the record, not a second downgrade.
    let again: FixResponse = call(&identity, &agent, RUN_FIX_PATH, &approved)
        .await
        .unwrap();
    assert!(again.repeated);
    assert_eq!(state(&again.action), "auto-reverted");
    assert_eq!(fs::read(config.as_str()).unwrap(), original);
}

#[tokio::test]
async fn a_running_agent_reverts_a_downgrade_when_its_approval_expires() {
    let identity = Identity::new("host-agent-expiry");
    let config = ini(identity.dir.path(), &[("security_layer", "tls".into())]);
    let original = fs::read(config.as_str()).unwrap();
    let fix = FixSpec::XrdpSetSecurityLayerRdp {
        config: config.clone(),
    };
    let agent = Agent::start(&identity);
    let expires_at = unix_now() + 3;
    let request = fix_request(
        "expiry-00001",
        fix.clone(),
        Some(identity.approval(AGENT_ID, fix.id(), "case-42", expires_at)),
    );
    let response: FixResponse = call(&identity, &agent, RUN_FIX_PATH, &request)
        .await
        .unwrap();
    assert_eq!(state(&response.action), "applied");
    let started = Instant::now();
    // The journal is written after the file: wait for the record, then look at both.
    let record = loop {
        let journal: JournalResponse = call(
            &identity,
            &agent,
            FIX_JOURNAL_PATH,
            &JournalRequest::default(),
        )
        .await
        .unwrap();
        assert_eq!(journal.agent_id, AGENT_ID);
        let record = journal.actions[0].clone();
        if state(&record) == "auto-reverted" {
            break record;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not reverted in time: {:?}",
            record.state
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ActionState::AutoReverted { at } = record.state else {
        unreachable!()
    };
    assert!(at >= expires_at, "not reverted before the expiry");
    assert_eq!(fs::read(config.as_str()).unwrap(), original);
}

#[tokio::test]
async fn fix_routes_verify_like_the_check_route_and_roll_back_by_action_id() {
    let identity = Identity::new("host-agent-routes");
    let config = ini(identity.dir.path(), &[("security_layer", "rdp".into())]);
    let original = fs::read(config.as_str()).unwrap();
    let agent = Agent::start(&identity);
    let client = reqwest::Client::new();
    let body = serde_json::to_vec(&fix_request(
        "routes-00001",
        FixSpec::XrdpSetSecurityLayerNegotiate {
            config: config.clone(),
        },
        None,
    ))
    .unwrap();

    // Unsigned, signed by someone else, replayed: refused before anything runs.
    let send = |body: Vec<u8>, signature: Option<agent_client::signing::RequestSignature>| {
        let mut request = client
            .post(format!("{}{RUN_FIX_PATH}", agent.url))
            .body(body);
        for (name, value) in signature.map(|s| s.headers().to_vec()).unwrap_or_default() {
            request = request.header(name, value);
        }
        request.send()
    };
    assert_eq!(send(body.clone(), None).await.unwrap().status(), 401);
    let forged = sign_request(&Keypair::generate(), "server", "POST", RUN_FIX_PATH, &body);
    assert_eq!(
        send(body.clone(), Some(forged)).await.unwrap().status(),
        401
    );
    let signed = sign_request(&identity.server, "server", "POST", RUN_FIX_PATH, &body);
    assert_eq!(
        send(body.clone(), Some(signed.clone()))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        send(body.clone(), Some(signed)).await.unwrap().status(),
        401,
        "replayed"
    );
    assert!(fs::read_to_string(config.as_str())
        .unwrap()
        .contains("\nsecurity_layer=negotiate\n"));

    // A command string is not a fix.
    let shell =
        br#"{"idempotency_key":"routes-00002","fix":{"fix":"shell","command":"id"}}"#.to_vec();
    let signature = sign_request(&identity.server, "server", "POST", RUN_FIX_PATH, &shell);
    assert_eq!(send(shell, Some(signature)).await.unwrap().status(), 422);

    // Rollback by action id, and its errors.
    let journal: JournalResponse = call(
        &identity,
        &agent,
        FIX_JOURNAL_PATH,
        &JournalRequest::default(),
    )
    .await
    .unwrap();
    let action_id = journal.actions[0].action_id.clone();
    let record: ActionRecord = call(
        &identity,
        &agent,
        ROLLBACK_FIX_PATH,
        &RollbackRequest {
            action_id,
            force: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(state(&record), "rolled-back");
    assert_eq!(fs::read(config.as_str()).unwrap(), original);
    let missing = call::<_, ActionRecord>(
        &identity,
        &agent,
        ROLLBACK_FIX_PATH,
        &RollbackRequest {
            action_id: "00000000000000000000-000000000000".into(),
            force: false,
        },
    )
    .await;
    assert!(
        matches!(missing, Err(CallError::Refused { status: 404, .. })),
        "{missing:?}"
    );
    // The journal directory sits beside the identity.
    assert!(identity.dir.path().join("journal/actions").is_dir());
}

// ---------------------------------------------------------------------------------------
// A real xrdp, started and changed by the agent's fixes

/// Kills every xrdp started with a given ini, whatever happens to the test.
struct XrdpReaper(String);

impl Drop for XrdpReaper {
    fn drop(&mut self) {
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&self.0) {
                if let Some(pid) = entry.file_name().to_str() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
        }
    }
}

/// `rdp-doctor-agent ARGS --json`, optionally inside a private mount namespace with its
/// own /run/xrdp (xrdp refuses to start while any xrdp.pid exists there).
fn agent_cli(args: &[&str], in_namespace: bool) -> (bool, String) {
    let mut command = if in_namespace {
        let mut c = Command::new("unshare");
        c.args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            "mkdir -p /run/xrdp && mount -t tmpfs rdpd-host-test /run/xrdp && exec \"$@\"",
            "sh",
            AGENT_BIN,
        ]);
        c
    } else {
        Command::new(AGENT_BIN)
    };
    let out = command
        .args(args)
        .arg("--json")
        .env("RDP_DOCTOR_AGENT_LOG", "warn")
        .output()
        .expect("the agent runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !stdout.is_empty(),
        "no output: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), stdout)
}

async fn verdict(port: u16) -> NegotiateVerdict {
    agent_client::checks::rdp::negotiate(&target("127.0.0.1", port), Duration::from_secs(5))
        .await
        .verdict
}

#[tokio::test]
async fn the_agent_starts_xrdp_changes_what_it_answers_and_rolls_both_back() {
    require_root();
    require_program("xrdp", "xrdp");
    require_program("unshare", "util-linux");
    let mut pki = Pki::new();
    let files = pki.cert(&CertSpec::good());
    let dir = TempDir::new("host-agent-xrdp");
    let port = free_port();
    let config = ini(
        dir.path(),
        &[
            ("port", format!("tcp://127.0.0.1:{port}")),
            ("security_layer", "rdp".into()),
            ("certificate", files.cert.display().to_string()),
            ("key_file", files.key.display().to_string()),
            ("LogFile", dir.path().join("xrdp.log").display().to_string()),
        ],
    );
    let _reaper = XrdpReaper(config.to_string());
    let identity = dir.path().join("agent.json");
    let identity = identity.to_str().unwrap();
    let original = fs::read(config.as_str()).unwrap();

    let (ok, out) = agent_cli(
        &[
            "fix",
            "run",
            "xrdp-start",
            "--param",
            &format!("config={config}"),
            "--config",
            identity,
        ],
        true,
    );
    assert!(ok, "{out}");
    let started: FixResponse = serde_json::from_str(&out).unwrap();
    assert_eq!(state(&started.action), "applied", "{out}");
    let Some(Applied::StartedProcess { pid, .. }) = started.action.applied.first() else {
        panic!("no process recorded: {out}")
    };
    assert_eq!(verdict(port).await, NegotiateVerdict::StandardRdpOnly);

    let (ok, out) = agent_cli(
        &[
            "fix",
            "run",
            "xrdp-set-security-layer-negotiate",
            "--param",
            &format!("config={config}"),
            "--config",
            identity,
        ],
        false,
    );
    assert!(ok, "{out}");
    let negotiate: FixResponse = serde_json::from_str(&out).unwrap();
    assert_eq!(state(&negotiate.action), "applied");
    // xrdp reads its ini at every connection: the same process now offers TLS.
    assert_eq!(verdict(port).await, NegotiateVerdict::EnhancedSecurity);

    let (ok, out) = agent_cli(
        &[
            "fix",
            "rollback",
            &negotiate.action.action_id,
            "--config",
            identity,
        ],
        false,
    );
    assert!(ok, "{out}");
    assert_eq!(fs::read(config.as_str()).unwrap(), original);
    assert_eq!(verdict(port).await, NegotiateVerdict::StandardRdpOnly);

    let (ok, out) = agent_cli(
        &[
            "fix",
            "rollback",
            &started.action.action_id,
            "--config",
            identity,
        ],
        false,
    );
    assert!(ok, "{out}");
    let stopped: ActionRecord = serde_json::from_str(&out).unwrap();
    assert_eq!(state(&stopped), "rolled-back");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "xrdp {pid} still runs"
    );
    assert_eq!(verdict(port).await, NegotiateVerdict::Unreachable);

    // Starting it again while something else holds the port is refused.
    let holder = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (ok, out) = agent_cli(
        &[
            "fix",
            "run",
            "xrdp-start",
            "--param",
            &format!("config={config}"),
            "--config",
            identity,
        ],
        true,
    );
    assert!(!ok);
    let refused: FixResponse = serde_json::from_str(&out).unwrap();
    assert!(reason(&refused.action).contains(&format!("port {port} is held by")));
    drop(holder);

    let (_, out) = agent_cli(&["journal", "--config", identity], false);
    let journal: JournalResponse = serde_json::from_str(&out).unwrap();
    let states: Vec<String> = journal.actions.iter().map(state).collect();
    assert_eq!(states, ["rolled-back", "rolled-back", "refused"]);
}
