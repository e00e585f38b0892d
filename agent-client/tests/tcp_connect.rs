//! `tcp-connect` against real sockets: a listening port, a closed port, and a name that does
//! not resolve (in a private mount namespace whose resolver answers nothing, so no query
//! leaves the machine).

use std::process::Command;
use std::time::Duration;

use agent_client::checks::tcp_connect;
use agent_client::target::CheckTarget;
use agent_client::wire::{PortState, Reachability};

const AGENT: &str = env!("CARGO_BIN_EXE_rdp-doctor-agent");

#[tokio::test]
async fn a_listening_port_is_open_with_a_timing() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = CheckTarget::parse(&listener.local_addr().unwrap().to_string()).unwrap();
    let report = tcp_connect::run(&target, Duration::from_secs(2)).await;
    assert_eq!(report.verdict, Reachability::Open);
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(report.attempts[0].state, PortState::Open);
    assert!(report.attempts[0].elapsed_ms < 2000.0);
}

#[tokio::test]
async fn a_closed_port_is_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = CheckTarget::parse(&format!("127.0.0.1:{port}")).unwrap();
    let report = tcp_connect::run(&target, Duration::from_secs(2)).await;
    assert_eq!(report.verdict, Reachability::Refused);
    assert_eq!(report.attempts[0].state, PortState::Refused);
}

#[tokio::test]
async fn localhost_resolves_to_its_addresses_and_each_is_tried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = CheckTarget::parse(&format!("localhost:{port}")).unwrap();
    let report = tcp_connect::run(&target, Duration::from_secs(2)).await;
    assert!(!report.resolution.literal);
    assert!(report.resolution.addresses.iter().any(|a| a.is_loopback()));
    assert_eq!(report.attempts.len(), report.resolution.addresses.len());
    assert_eq!(report.verdict, Reachability::Open);
}

/// Runs the agent's `check` command where DNS points at a closed loopback port.
fn check_without_dns(target: &str) -> std::process::Output {
    check_command_without_dns("tcp-connect", target)
}

fn check_command_without_dns(check: &str, target: &str) -> std::process::Output {
    // One directory per call: tests run in parallel threads of one process.
    let dir =
        std::env::temp_dir().join(format!("rdp-doctor-resolv-{}-{check}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let resolv = dir.join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )
    .unwrap();
    let script = format!(
        "mount --bind {} /etc/resolv.conf && exec {AGENT} check {check} --target {target} --json",
        resolv.display()
    );
    let output = Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux) runs");
    let _ = std::fs::remove_dir_all(&dir);
    output
}

#[test]
fn a_name_that_does_not_resolve_is_reported_as_such() {
    let output = check_without_dns("no-such-host.rdp-doctor.invalid");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["check"], "tcp-connect");
    assert_eq!(report["verdict"], "not-resolved");
    assert!(report["resolution"]["error"]
        .as_str()
        .unwrap()
        .contains("did not resolve"));
    assert_eq!(report["attempts"].as_array().unwrap().len(), 0);
}

#[test]
fn the_check_command_refuses_bad_input_in_one_line() {
    for (args, expected) in [
        (
            vec!["check", "tcp-connect", "--target", "bad host"],
            "is not a valid computer name",
        ),
        (
            vec!["check", "tcp-connect", "--target", "pc1:99999"],
            "from 1 to 65535",
        ),
        (vec!["check", "tcp-connect"], "needs --target"),
        (vec!["check", "rm-rf"], "unknown check"),
    ] {
        let output = Command::new(AGENT).args(&args).output().unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn the_check_command_prints_a_readable_report() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let output = Command::new(AGENT)
        .args(["check", "tcp-connect", "--target", &target])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("{target}  ")) || stdout.contains(&target),
        "{stdout}"
    );
    assert!(stdout.contains("open"), "{stdout}");
    assert!(stdout.contains("verdict: open"), "{stdout}");
}

#[test]
fn agent_port_connect_is_a_connection_to_the_port_it_is_given_and_says_so() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let output = Command::new(AGENT)
        .args(["check", "agent-port-connect", "--target", &target])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with(&format!("agent-port-connect {target}")),
        "{stdout}"
    );
    assert!(stdout.contains("verdict: open"), "{stdout}");
    drop(listener);
    let output = Command::new(AGENT)
        .args(["check", "agent-port-connect", "--target", &target, "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["verdict"], "refused", "{report}");
}

#[test]
fn service_mode_outside_windows_says_to_use_run_in_one_line() {
    let output = Command::new(AGENT)
        .args(["service", "--config", "/nonexistent/agent.json"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("rdp-doctor-agent run"), "{stderr}");
}

#[test]
fn dns_resolve_compares_the_answer_with_the_hosts_addresses() {
    let run = |expected: &str| {
        let output = Command::new(AGENT)
            .args([
                "check",
                "dns-resolve",
                "--target",
                "localhost",
                "--param",
                expected,
                "--json",
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let report = run("expected=127.0.0.1,::1");
    assert_eq!(report["check"], "dns-resolve");
    assert_eq!(report["verdict"], "matches", "{report}");
    assert_eq!(run("expected=192.0.2.10")["verdict"], "differs");

    let output = check_command_without_dns("dns-resolve", "no-such-host.rdp-doctor.invalid");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["verdict"], "fails", "{report}");
    assert_eq!(
        report["resolvers"][0], "127.0.0.1",
        "the resolver this machine asks is reported"
    );

    let bad = Command::new(AGENT)
        .args([
            "check",
            "dns-resolve",
            "--target",
            "localhost",
            "--param",
            "expected=not-an-ip",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("takes IP addresses"));
}
