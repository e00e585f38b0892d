//! `path-quality` against real sockets: a clean loopback path, and the agent's command line in
//! a private network namespace whose nftables rules drop a share of the packets at random
//! (a lossy path) or all of them (a path that carries nothing), with Python's `http.server`
//! as the listener on the far side.
//!
//! Needs root (a network namespace, nftables) and the Debian packages `nftables` and
//! `iproute2`; without them the tests fail with a message saying what to install.

#![cfg(feature = "checks")]

mod support;

use std::process::Command;
use std::time::Duration;

use agent_client::checks::path_quality;
use agent_client::wire::{PathVerdict, PortState};
use serde_json::Value;
use support::target;

const AGENT: &str = env!("CARGO_BIN_EXE_rdp-doctor-agent");

#[tokio::test]
async fn a_clean_path_is_stable_and_every_connection_is_timed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let report =
        path_quality::run(&target("127.0.0.1", port), Duration::from_secs(2), 500, 10).await;
    assert_eq!(report.verdict, PathVerdict::Stable, "{report:#?}");
    assert_eq!(report.attempts.len(), 10);
    assert!(report.attempts.iter().all(|a| a.state == PortState::Open));
    assert_eq!((report.retransmitted, report.lost), (0, 0));
    assert!(report.median_ms.unwrap() < 100.0);
    // Spread over the window asked for, not fired at once.
    assert!(report.elapsed_ms >= 450.0, "{report:#?}");
}

/// Runs the agent's `check path-quality` in a new network namespace where `rules` (nftables
/// statements for the output hook) apply to loopback, against Python's HTTP server there.
fn in_namespace(rules: &str, params: &[&str]) -> Value {
    support::require_root();
    support::require_program("nft", "nftables");
    support::require_program("ip", "iproute2");
    support::require_program("unshare", "util-linux");
    support::require_program("python3", "python3");
    let script = r#"
        set -e
        ip link set lo up
        python3 -m http.server 8080 --bind 127.0.0.1 >/dev/null 2>&1 &
        server=$!
        trap 'kill $server' EXIT
        python3 -c 'import socket, time
for _ in range(200):
    try:
        socket.create_connection(("127.0.0.1", 8080), 0.1).close(); break
    except OSError: time.sleep(0.05)'
        nft add table inet rdpdoctor
        nft add chain inet rdpdoctor out '{ type filter hook output priority 0; }'
        nft add rule inet rdpdoctor out tcp dport 8080 $RULE
        nft add rule inet rdpdoctor out tcp sport 8080 $RULE
        "$AGENT" check path-quality --target 127.0.0.1:8080 --json "$@"
    "#;
    let out = Command::new("unshare")
        .args(["--net", "--", "sh", "-c", script, "sh"])
        .args(params)
        .env("AGENT", AGENT)
        .env("RULE", rules)
        .output()
        .expect("unshare runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the agent prints JSON")
}

#[test]
fn a_path_that_drops_a_third_of_its_packets_is_lossy() {
    let report = in_namespace(
        "numgen random mod 100 < 33 drop",
        &[
            "--timeout-ms",
            "2500",
            "--param",
            "duration_ms=1000",
            "--param",
            "probes=20",
        ],
    );
    assert_eq!(report["check"], "path-quality");
    assert_eq!(report["verdict"], "lossy", "{report:#}");
    let retransmitted = report["retransmitted"].as_u64().unwrap();
    let lost = report["lost"].as_u64().unwrap();
    assert!(retransmitted + lost >= 1, "{report:#}");
    // A retransmitted SYN or SYN-ACK costs at least the one-second retransmission timeout.
    let slowest = report["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "open")
        .map(|a| a["elapsed_ms"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(lost > 0 || slowest >= 900.0, "{report:#}");
}

#[test]
fn a_path_that_carries_nothing_cannot_be_judged() {
    let report = in_namespace(
        "drop",
        &[
            "--timeout-ms",
            "300",
            "--param",
            "duration_ms=0",
            "--param",
            "probes=3",
        ],
    );
    assert_eq!(report["verdict"], "unreachable", "{report:#}");
    let attempts = report["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| a["state"] == "no-answer"));
    // The connections wait side by side: the window plus one timeout, not one per connection.
    assert!(report["elapsed_ms"].as_f64().unwrap() < 850.0, "{report:#}");
}

#[test]
fn out_of_range_parameters_are_refused_in_one_line() {
    for (param, expected) in [
        (
            "probes=0",
            "--param probes takes a whole number from 1 to 120",
        ),
        (
            "duration_ms=soon",
            "--param duration_ms takes a whole number",
        ),
        ("window=3", "has no parameter \"window\""),
    ] {
        let out = Command::new(AGENT)
            .args([
                "check",
                "path-quality",
                "--target",
                "127.0.0.1:1",
                "--param",
                param,
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{param}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{param}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}
