//! Network faults the probes must name correctly: a port a firewall drops (an nftables table
//! this test owns, removed afterwards) and a name that resolves to the wrong address (a hosts
//! file in a private mount namespace). Traffic stays on loopback.

use std::process::Command;

const AGENT: &str = env!("CARGO_BIN_EXE_rdp-doctor-agent");

/// An nftables table that drops TCP to one loopback port; deleted on drop.
struct DropRule {
    table: String,
}

impl DropRule {
    fn install(port: u16) -> Self {
        let table = format!("rdpd_test_{}_{port}", std::process::id());
        let rules = format!(
            "table inet {table} {{\n  chain input {{\n    type filter hook input priority -10;\n    iif lo tcp dport {port} drop\n  }}\n}}\n"
        );
        let status = Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(rules.as_bytes())?;
                child.wait()
            })
            .expect("nft (nftables) runs; `make test` installs it");
        assert!(
            status.success(),
            "could not install the nftables rule (root and nftables needed)"
        );
        DropRule { table }
    }
}

impl Drop for DropRule {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .status();
    }
}

fn check(args: &[&str]) -> serde_json::Value {
    let output = Command::new(AGENT)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_filtered_port_is_no_answer_not_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    assert_eq!(
        check(&["check", "tcp-connect", "--target", &target])["verdict"],
        "open"
    );

    let _rule = DropRule::install(listener.local_addr().unwrap().port());
    let report = check(&[
        "check",
        "tcp-connect",
        "--target",
        &target,
        "--timeout-ms",
        "500",
    ]);
    assert_eq!(report["verdict"], "no-answer", "{report}");
    assert_eq!(report["attempts"][0]["state"], "no-answer");
    let negotiate = check(&[
        "check",
        "rdp-negotiate",
        "--target",
        &target,
        "--timeout-ms",
        "500",
    ]);
    assert_eq!(negotiate["verdict"], "unreachable", "{negotiate}");
}

#[test]
fn a_name_that_resolves_to_the_wrong_address_is_caught() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("rdp-doctor-hosts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hosts = dir.join("hosts");
    // A stale record: the host really is 127.0.0.1, the name says 127.0.0.2.
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n127.0.0.2 pc-0423.rdp-doctor.test\n",
    )
    .unwrap();
    let script = format!(
        "mount --bind {} /etc/hosts && {AGENT} check dns-resolve --target pc-0423.rdp-doctor.test --param expected=127.0.0.1 --json \
         && {AGENT} check tcp-connect --target pc-0423.rdp-doctor.test:{port} --json",
        hosts.display()
    );
    let output = Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut reports = serde_json::Deserializer::from_str(&stdout).into_iter::<serde_json::Value>();
    let dns = reports.next().unwrap().unwrap();
    assert_eq!(dns["verdict"], "differs", "{dns}");
    assert_eq!(dns["resolution"]["addresses"][0], "127.0.0.2");
    let tcp = reports.next().unwrap().unwrap();
    assert_eq!(
        tcp["verdict"], "refused",
        "nothing listens at the wrong address: {tcp}"
    );
}
