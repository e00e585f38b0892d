//! The Linux host checks and fixes for xrdp hosts, for real on this machine: xrdp started on
//! loopback (in a private mount namespace, by the shared test support), sockets and
//! processes read from `/proc`, certificates made with `openssl`, nftables rules in tables
//! the tests own (deleted afterwards), and fixes applied to ini, certificate and key files
//! in temporary directories, rolled back to the exact bytes.

mod support;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use agent_client::host::checks::run_blocking;
use agent_client::host::fix::*;
use agent_client::host::journal::Journal;
use agent_client::host::linux::{nft_port_verdict, LinuxPlatform};
use agent_client::host::platform::HostPlatform;
use agent_client::host::report::*;
use agent_client::host::service::FixService;
use agent_client::rdp::report::TlsVerdict;
use support::{
    free_port, override_ini, require_program, require_root, CertFiles, CertSpec, Dates, Issuer,
    KeyKind, Pki, TempDir, Xrdp, XrdpConfig,
};

fn linux() -> LinuxPlatform {
    LinuxPlatform::new(Duration::from_secs(10))
}

/// A copy of the system's xrdp.ini with `[Globals]` overrides, written to `dir`.
fn write_ini(dir: &Path, name: &str, globals: &[(&str, String)]) -> IniPath {
    let system =
        fs::read_to_string("/etc/xrdp/xrdp.ini").expect("/etc/xrdp/xrdp.ini (package xrdp)");
    let path = dir.join(name);
    fs::write(&path, override_ini(&system, &[("Globals", globals)])).unwrap();
    IniPath::parse(path.to_str().unwrap()).unwrap()
}

fn check(spec: HostCheckSpec) -> HostCheckReport {
    run_blocking(&spec, &linux())
}

// ---------------------------------------------------------------------------------------
// xrdp-listening

/// The `--config` of the process that listens on a port, read from `/proc`.
fn config_of_listener(port: u16) -> (u32, IniPath) {
    let listener = linux()
        .tcp_listeners()
        .unwrap()
        .into_iter()
        .find(|l| l.port == port)
        .expect("something listens");
    let pid = listener.pid.expect("owner known (root)");
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let at = args
        .iter()
        .position(|a| a == "--config")
        .expect("started with --config");
    (pid, IniPath::parse(&args[at + 1]).unwrap())
}

#[test]
fn xrdp_listening_finds_a_running_xrdp_on_the_port_its_ini_names() {
    require_root();
    let mut pki = Pki::new();
    let files = pki.cert(&CertSpec::good());
    let xrdp = Xrdp::start(&XrdpConfig::new("negotiate", &files));
    let (pid, config) = config_of_listener(xrdp.port);
    let HostCheckReport::XrdpListening(report) = check(HostCheckSpec::XrdpListening {
        timeout_ms: 5000,
        config,
        port: None,
    }) else {
        panic!()
    };
    assert_eq!(
        report.outcome,
        Some(XrdpListeningOutcome::Listening),
        "{:?}",
        report.findings
    );
    assert_eq!(report.confidence, Confidence::High);
    let observed = report.observed.unwrap();
    assert_eq!(observed.configured_port, Some(xrdp.port));
    assert_eq!(
        observed.port_setting.as_deref(),
        Some(format!("tcp://127.0.0.1:{}", xrdp.port).as_str())
    );
    assert!(observed.xrdp_processes.iter().any(|p| p.pid == pid));
    assert!(observed.listeners.iter().any(|l| l.address == "127.0.0.1"
        && l.pid == Some(pid)
        && l.process.as_deref() == Some("xrdp")));
}

#[test]
fn xrdp_listening_on_another_port_than_clients_use_is_other_port() {
    require_root();
    let mut pki = Pki::new();
    let files = pki.cert(&CertSpec::good());
    let xrdp = Xrdp::start(&XrdpConfig::new("negotiate", &files));
    let (_, config) = config_of_listener(xrdp.port);
    let listening = |port: Option<u16>| {
        let HostCheckReport::XrdpListening(report) = check(HostCheckSpec::XrdpListening {
            timeout_ms: 5000,
            config: config.clone(),
            port,
        }) else {
            panic!()
        };
        report
    };
    let elsewhere = listening(Some(3389));
    assert_eq!(
        elsewhere.outcome,
        Some(XrdpListeningOutcome::OtherPort),
        "{:?}",
        elsewhere.findings
    );
    assert!(
        elsewhere
            .findings
            .iter()
            .any(|f| f.contains(&format!("listens on port {}, not on port 3389", xrdp.port))),
        "{:?}",
        elsewhere.findings
    );
    assert_eq!(
        listening(Some(xrdp.port)).outcome,
        Some(XrdpListeningOutcome::Listening)
    );
}

#[test]
fn another_program_on_the_xrdp_port_is_reported_as_port_taken() {
    require_root();
    let dir = TempDir::new("host-port-taken");
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let config = write_ini(
        dir.path(),
        "xrdp.ini",
        &[("port", format!("tcp://127.0.0.1:{port}"))],
    );
    let HostCheckReport::XrdpListening(report) = check(HostCheckSpec::XrdpListening {
        timeout_ms: 5000,
        config,
        port: None,
    }) else {
        panic!()
    };
    assert_eq!(report.outcome, Some(XrdpListeningOutcome::PortTaken));
    let observed = report.observed.unwrap();
    assert_eq!(observed.listeners.len(), 1);
    assert_eq!(observed.listeners[0].pid, Some(std::process::id()));
}

#[test]
fn nothing_on_the_xrdp_port_is_not_listening_or_not_running() {
    let dir = TempDir::new("host-not-listening");
    let port = free_port();
    let config = write_ini(dir.path(), "xrdp.ini", &[("port", port.to_string())]);
    let HostCheckReport::XrdpListening(report) = check(HostCheckSpec::XrdpListening {
        timeout_ms: 5000,
        config,
        port: None,
    }) else {
        panic!()
    };
    // Other tests may run their own xrdp at the same time: either outcome is right, as long
    // as nothing is found on this port.
    assert!(
        matches!(
            report.outcome,
            Some(XrdpListeningOutcome::NotRunning | XrdpListeningOutcome::NotListening)
        ),
        "{:?}",
        report.outcome
    );
    assert!(report.observed.unwrap().listeners.is_empty());
}

#[test]
fn a_missing_ini_is_reported_not_fatal() {
    let config = IniPath::parse("/nonexistent/rdpd/xrdp.ini").unwrap();
    let HostCheckReport::XrdpListening(report) = check(HostCheckSpec::XrdpListening {
        timeout_ms: 5000,
        config,
        port: None,
    }) else {
        panic!()
    };
    assert_eq!(report.outcome, None);
    assert_eq!(report.error.unwrap().kind, HostErrorKind::Failed);
}

// ---------------------------------------------------------------------------------------
// xrdp-security-layer

#[test]
fn xrdp_security_layer_reads_each_setting() {
    let dir = TempDir::new("host-layer");
    for (value, outcome, confidence) in [
        (Some("rdp"), XrdpSecurityOutcome::RdpOnly, Confidence::High),
        (Some("tls"), XrdpSecurityOutcome::Tls, Confidence::High),
        (
            Some("negotiate"),
            XrdpSecurityOutcome::Negotiate,
            Confidence::High,
        ),
        (
            Some("bogus"),
            XrdpSecurityOutcome::Unrecognised,
            Confidence::Medium,
        ),
        (None, XrdpSecurityOutcome::Negotiate, Confidence::Medium),
    ] {
        let system = fs::read_to_string("/etc/xrdp/xrdp.ini").unwrap();
        let text: String = system
            .lines()
            .filter(|l| !l.trim_start().starts_with("security_layer"))
            .map(|l| format!("{l}\n"))
            .collect();
        let text = match value {
            Some(v) => override_ini(&text, &[("Globals", &[("security_layer", v.to_owned())])]),
            None => text,
        };
        let path = dir
            .path()
            .join(format!("layer-{}.ini", value.unwrap_or("unset")));
        fs::write(&path, text).unwrap();
        let config = IniPath::parse(path.to_str().unwrap()).unwrap();
        let HostCheckReport::XrdpSecurityLayer(report) = check(HostCheckSpec::XrdpSecurityLayer {
            timeout_ms: 5000,
            config,
        }) else {
            panic!()
        };
        assert_eq!(report.outcome, Some(outcome), "{value:?}");
        assert_eq!(report.confidence, confidence, "{value:?}");
        assert_eq!(report.observed.unwrap().security_layer.as_deref(), value);
    }
}

// ---------------------------------------------------------------------------------------
// xrdp-certificate

fn cert_check(
    dir: &Path,
    name: &str,
    cert: &Path,
    key: &Path,
) -> HostReport<XrdpCertificateObserved, XrdpCertificateOutcome> {
    let config = write_ini(
        dir,
        name,
        &[
            ("certificate", cert.display().to_string()),
            ("key_file", key.display().to_string()),
        ],
    );
    let HostCheckReport::XrdpCertificate(report) = check(HostCheckSpec::XrdpCertificate {
        timeout_ms: 5000,
        config,
    }) else {
        panic!()
    };
    report
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn xrdp_certificate_tells_good_mismatched_expired_weak_and_missing_pairs_apart() {
    let mut pki = Pki::new();
    let dir = TempDir::new("host-cert");
    let good = pki.cert(&CertSpec::good());
    let other = pki.cert(&CertSpec::good());
    let expired = pki.cert(&CertSpec {
        dates: Dates::Range("20200101000000Z", "20210101000000Z"),
        ..CertSpec::good()
    });
    let future = pki.cert(&CertSpec {
        dates: Dates::Range("20990101000000Z", "21000101000000Z"),
        ..CertSpec::good()
    });
    let weak = pki.cert(&CertSpec {
        key: KeyKind::Rsa(1024),
        ..CertSpec::good()
    });
    let ec = pki.cert(&CertSpec {
        key: KeyKind::EcP256,
        issuer: Issuer::SelfSigned,
        ..CertSpec::good()
    });

    let report = cert_check(dir.path(), "good.ini", &good.cert, &good.key);
    assert_eq!(
        report.outcome,
        Some(XrdpCertificateOutcome::Ok),
        "{:?}",
        report.findings
    );
    let observed = report.observed.unwrap();
    assert_eq!(observed.key_matches, Some(true));
    assert_eq!(
        (observed.key_algorithm.as_deref(), observed.key_bits),
        (Some("RSA"), Some(2048))
    );
    let cert = observed.certificate.unwrap();
    assert_eq!(cert.sha1_thumbprint, good.openssl_sha1());
    assert!(!cert.self_signed);

    let report = cert_check(dir.path(), "mismatch.ini", &good.cert, &other.key);
    assert_eq!(report.outcome, Some(XrdpCertificateOutcome::KeyMismatch));
    assert_eq!(report.observed.unwrap().key_matches, Some(false));

    assert_eq!(
        cert_check(dir.path(), "expired.ini", &expired.cert, &expired.key).outcome,
        Some(XrdpCertificateOutcome::Expired)
    );
    assert_eq!(
        cert_check(dir.path(), "future.ini", &future.cert, &future.key).outcome,
        Some(XrdpCertificateOutcome::NotYetValid)
    );
    let report = cert_check(dir.path(), "weak.ini", &weak.cert, &weak.key);
    assert_eq!(report.outcome, Some(XrdpCertificateOutcome::WeakKey));
    assert_eq!(report.observed.unwrap().key_bits, Some(1024));

    let report = cert_check(dir.path(), "ec.ini", &ec.cert, &ec.key);
    assert_eq!(
        report.outcome,
        Some(XrdpCertificateOutcome::Ok),
        "{:?}",
        report.findings
    );
    let observed = report.observed.unwrap();
    assert_eq!(
        (
            observed.key_algorithm.as_deref(),
            observed.key_bits,
            observed.key_matches
        ),
        (Some("EC"), Some(256), Some(true))
    );
    assert!(observed.certificate.unwrap().self_signed);

    // The traditional PKCS#1 form of the same key matches too; a SEC1 EC key as well.
    let pkcs1 = dir.path().join("pkcs1.pem");
    openssl(&[
        "rsa",
        "-in",
        good.key.to_str().unwrap(),
        "-traditional",
        "-out",
        pkcs1.to_str().unwrap(),
    ]);
    assert!(fs::read_to_string(&pkcs1)
        .unwrap()
        .starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let report = cert_check(dir.path(), "pkcs1.ini", &good.cert, &pkcs1);
    assert_eq!(report.observed.unwrap().key_matches, Some(true));
    let sec1 = dir.path().join("sec1.pem");
    openssl(&[
        "ec",
        "-in",
        ec.key.to_str().unwrap(),
        "-out",
        sec1.to_str().unwrap(),
    ]);
    assert!(fs::read_to_string(&sec1)
        .unwrap()
        .starts_with("-----BEGIN EC PRIVATE KEY-----"));
    assert_eq!(
        cert_check(dir.path(), "sec1.ini", &ec.cert, &sec1)
            .observed
            .unwrap()
            .key_matches,
        Some(true)
    );

    let report = cert_check(
        dir.path(),
        "missing.ini",
        &dir.path().join("nope.pem"),
        &good.key,
    );
    assert_eq!(report.outcome, Some(XrdpCertificateOutcome::Missing));

    // A symbolic link is followed and reported; a dangling one reads as missing.
    let link = dir.path().join("link.pem");
    symlink(&good.cert, &link).unwrap();
    let report = cert_check(dir.path(), "link.ini", &link, &good.key);
    assert_eq!(report.outcome, Some(XrdpCertificateOutcome::Ok));
    assert_eq!(
        report.observed.unwrap().certificate_file.symlink_to,
        Some(good.cert.display().to_string())
    );
    let dangling = dir.path().join("dangling.pem");
    symlink(dir.path().join("gone.pem"), &dangling).unwrap();
    assert_eq!(
        cert_check(dir.path(), "dangling.ini", &dangling, &good.key).outcome,
        Some(XrdpCertificateOutcome::Missing)
    );
}

#[tokio::test]
async fn a_pair_the_check_calls_mismatched_is_one_xrdp_cannot_serve_tls_with() {
    require_root();
    let mut pki = Pki::new();
    let dir = TempDir::new("host-cert-xrdp");
    let good = pki.cert(&CertSpec::good());
    let other = pki.cert(&CertSpec::good());
    let broken = CertFiles {
        cert: good.cert.clone(),
        key: other.key.clone(),
    };
    for (files, outcome, verdict) in [
        (&good, XrdpCertificateOutcome::Ok, TlsVerdict::Ok),
        (
            &broken,
            XrdpCertificateOutcome::KeyMismatch,
            TlsVerdict::CertificateOrKeyBroken,
        ),
    ] {
        let report = cert_check(dir.path(), "pair.ini", &files.cert, &files.key);
        assert_eq!(report.outcome, Some(outcome));
        let xrdp = Xrdp::start(&XrdpConfig::new("tls", files));
        let tls = agent_client::checks::rdp::tls(&xrdp.target(), Duration::from_secs(5)).await;
        assert_eq!(
            tls.verdict, verdict,
            "the real xrdp agrees with the host check"
        );
    }
}

// ---------------------------------------------------------------------------------------
// xrdp-firewall

/// An nftables table of the test's own; deleted on drop.
struct NftTable(String);

impl NftTable {
    fn new(label: &str, rules: &[String]) -> NftTable {
        require_root();
        require_program("nft", "nftables");
        let name = format!("rdpd_{label}_{}", std::process::id());
        let mut script = format!(
            "table inet {name} {{\n chain input {{\n  type filter hook input priority 0; policy accept;\n"
        );
        for rule in rules {
            script.push_str(&format!("  {rule}\n"));
        }
        script.push_str(" }\n}\n");
        let file = std::env::temp_dir().join(format!("{name}.nft"));
        fs::write(&file, script).unwrap();
        let out = Command::new("nft").arg("-f").arg(&file).output().unwrap();
        let _ = fs::remove_file(&file);
        assert!(
            out.status.success(),
            "nft -f: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        NftTable(name)
    }
}

impl Drop for NftTable {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.0])
            .status();
    }
}

fn firewall(port: u16) -> HostReport<XrdpFirewallObserved, XrdpFirewallOutcome> {
    let HostCheckReport::XrdpFirewall(report) = check(HostCheckSpec::XrdpFirewall {
        timeout_ms: 5000,
        config: IniPath::default(),
        port: Some(port),
    }) else {
        panic!()
    };
    report
}

#[test]
fn xrdp_firewall_sees_drop_and_conditional_reject_rules_of_real_nftables() {
    let blocked = free_port();
    let conditional = free_port();
    let open = free_port();
    let _table = NftTable::new(
        "fw",
        &[
            format!("tcp dport {blocked} drop"),
            format!("iif \"lo\" tcp dport {conditional} reject with tcp reset"),
        ],
    );
    let report = firewall(blocked);
    assert_eq!(report.error, None);
    assert_eq!(
        report.outcome,
        Some(XrdpFirewallOutcome::Blocked),
        "{:?}",
        report.findings
    );
    let rules = report.observed.unwrap().rules;
    assert!(rules.iter().any(|r| r.table.starts_with("rdpd_fw_")
        && r.verdict == "drop"
        && r.conditions.is_empty()));

    let report = firewall(conditional);
    assert_eq!(
        report.outcome,
        Some(XrdpFirewallOutcome::BlockedConditionally)
    );
    let rules = report.observed.unwrap().rules;
    let rule = rules
        .iter()
        .find(|r| r.table.starts_with("rdpd_fw_"))
        .unwrap();
    assert_eq!(rule.verdict, "reject");
    assert_eq!(rule.conditions, ["meta iif == lo"]);

    let report = firewall(open);
    assert_eq!(
        report.outcome,
        Some(XrdpFirewallOutcome::Open),
        "{:?}",
        report.findings
    );
}

#[test]
fn the_nftables_verdict_of_a_recorded_ruleset() {
    let json = fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/linux/nft_ruleset_recorded.json"),
    )
    .unwrap();
    let verdict = |port| nft_port_verdict(&json, port).unwrap().outcome;
    // Policy drop; loopback and 10.0.0.0/8 accepted for 3389: some packets get through.
    assert_eq!(verdict(3389), XrdpFirewallOutcome::BlockedConditionally);
    // 443 is in the named set @allowed_ports: accepted for every packet.
    assert_eq!(verdict(443), XrdpFirewallOutcome::Open);
    // A drop rule in the second table's chain, whatever the first one says.
    assert_eq!(verdict(3392), XrdpFirewallOutcome::Blocked);
    assert_eq!(verdict(3393), XrdpFirewallOutcome::Blocked);
    let detail = nft_port_verdict(&json, 3391).unwrap();
    assert!(detail.rules.iter().any(|r| r.verdict == "jump rdp_checks"));
    assert_eq!(detail.drop_policy_chains, ["inet rdpd_fixture input"]);
    assert_eq!(detail.input_chains, 2);
    // Established-connection rules never decide a new connection.
    assert!(!nft_port_verdict(&json, 5500)
        .unwrap()
        .rules
        .iter()
        .any(|r| r.conditions.iter().any(|c| c.contains("ct state"))));
    assert!(nft_port_verdict("{}", 3389).is_err());
}

// ---------------------------------------------------------------------------------------
// Fixes on real files

struct Fixes {
    dir: TempDir,
    service: FixService,
}

fn fixes(label: &str) -> Fixes {
    let dir = TempDir::new(label);
    let journal = Journal::open(&dir.path().join("journal")).unwrap();
    let service = FixService::new(Arc::new(linux()), journal, "agent-linux", None);
    Fixes { dir, service }
}

fn req(key: &str, fix: FixSpec, dry_run: bool) -> FixRequest {
    FixRequest {
        idempotency_key: key.into(),
        case_id: Some("case-1".into()),
        fix,
        dry_run,
        approval: None,
    }
}

fn state(record: &ActionRecord) -> String {
    serde_json::to_value(&record.state).unwrap()["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn security_layer(config: &IniPath) -> Option<String> {
    let HostCheckReport::XrdpSecurityLayer(report) = check(HostCheckSpec::XrdpSecurityLayer {
        timeout_ms: 5000,
        config: config.clone(),
    }) else {
        panic!()
    };
    report.observed.unwrap().security_layer
}

#[test]
fn set_security_layer_negotiate_changes_one_line_and_rollback_restores_the_exact_bytes() {
    let f = fixes("host-fix-layer");
    let config = write_ini(
        f.dir.path(),
        "xrdp.ini",
        &[("security_layer", "tls".into())],
    );
    fs::set_permissions(config.as_str(), fs::Permissions::from_mode(0o640)).unwrap();
    let original = fs::read(config.as_str()).unwrap();
    let fix = FixSpec::XrdpSetSecurityLayerNegotiate {
        config: config.clone(),
    };

    let preview = f
        .service
        .run(req("layer-dry-01", fix.clone(), true), Requester::Local)
        .unwrap()
        .action;
    assert_eq!(state(&preview), "dry-run");
    assert_eq!(preview.plan[0].from, "tls");
    assert_eq!(preview.plan[0].to, "negotiate");
    assert_eq!(
        fs::read(config.as_str()).unwrap(),
        original,
        "a dry run writes nothing"
    );

    let action = f
        .service
        .run(req("layer-run-01", fix.clone(), false), Requester::Local)
        .unwrap()
        .action;
    assert_eq!(state(&action), "applied", "{action:#?}");
    let changed = fs::read_to_string(config.as_str()).unwrap();
    assert_eq!(
        changed,
        String::from_utf8(original.clone()).unwrap().replacen(
            "security_layer=tls",
            "security_layer=negotiate",
            1
        )
    );
    assert_eq!(security_layer(&config).as_deref(), Some("negotiate"));
    assert_eq!(
        fs::metadata(config.as_str()).unwrap().mode() & 0o777,
        0o640,
        "the mode is kept"
    );

    // Repeating the request applies nothing, even though the file changed meanwhile.
    fs::write(config.as_str(), &original).unwrap();
    let repeated = f
        .service
        .run(req("layer-run-01", fix.clone(), false), Requester::Local)
        .unwrap();
    assert!(repeated.repeated);
    assert_eq!(fs::read(config.as_str()).unwrap(), original);
    fs::write(config.as_str(), changed.as_bytes()).unwrap();

    let back = f
        .service
        .rollback(
            RollbackRequest {
                action_id: action.action_id.clone(),
                force: false,
            },
            Requester::Local,
        )
        .unwrap();
    assert_eq!(state(&back), "rolled-back");
    assert_eq!(fs::read(config.as_str()).unwrap(), original, "exact bytes");
    assert_eq!(fs::metadata(config.as_str()).unwrap().mode() & 0o777, 0o640);
}

#[test]
fn a_rollback_after_someone_edited_the_ini_puts_back_only_the_setting() {
    let f = fixes("host-fix-edited");
    let config = write_ini(
        f.dir.path(),
        "xrdp.ini",
        &[("security_layer", "tls".into())],
    );
    let action = f
        .service
        .run(
            req(
                "layer-run-02",
                FixSpec::XrdpSetSecurityLayerNegotiate {
                    config: config.clone(),
                },
                false,
            ),
            Requester::Local,
        )
        .unwrap()
        .action;
    let edited = fs::read_to_string(config.as_str())
        .unwrap()
        .replace("max_bpp=", "max_bpp=16\n;was max_bpp=");
    fs::write(config.as_str(), &edited).unwrap();
    f.service
        .rollback(
            RollbackRequest {
                action_id: action.action_id,
                force: false,
            },
            Requester::Local,
        )
        .unwrap();
    let now = fs::read_to_string(config.as_str()).unwrap();
    assert_eq!(
        now,
        edited.replacen("security_layer=negotiate", "security_layer=tls", 1)
    );
}

#[test]
fn restore_certificate_replaces_a_broken_pair_and_rollback_restores_the_link_and_bytes() {
    let mut pki = Pki::new();
    let f = fixes("host-fix-cert");
    let good = pki.cert(&CertSpec::good());
    let stale = pki.cert(&CertSpec {
        dates: Dates::Range("20200101000000Z", "20210101000000Z"),
        ..CertSpec::good()
    });
    let wrong_key = pki.key(KeyKind::Rsa(2048));
    // What xrdp uses now: a link to an expired certificate and a key of another pair.
    let cert_target = f.dir.path().join("cert.pem");
    let key_target = f.dir.path().join("key.pem");
    symlink(&stale.cert, &cert_target).unwrap();
    fs::copy(&wrong_key, &key_target).unwrap();
    fs::set_permissions(&key_target, fs::Permissions::from_mode(0o640)).unwrap();
    let key_before = fs::read(&key_target).unwrap();
    let config = write_ini(
        f.dir.path(),
        "xrdp.ini",
        &[
            ("certificate", cert_target.display().to_string()),
            ("key_file", key_target.display().to_string()),
        ],
    );
    let outcome = |config: &IniPath| {
        let HostCheckReport::XrdpCertificate(r) = check(HostCheckSpec::XrdpCertificate {
            timeout_ms: 5000,
            config: config.clone(),
        }) else {
            panic!()
        };
        r.outcome
    };
    assert_eq!(outcome(&config), Some(XrdpCertificateOutcome::KeyMismatch));
    let fix = FixSpec::XrdpRestoreCertificate {
        config: config.clone(),
        certificate: PemPath::parse(good.cert.to_str().unwrap()).unwrap(),
        key_file: PemPath::parse(good.key.to_str().unwrap()).unwrap(),
    };
    let action = f
        .service
        .run(req("cert-run-0001", fix, false), Requester::Local)
        .unwrap()
        .action;
    assert_eq!(state(&action), "applied", "{action:#?}");
    assert_eq!(outcome(&config), Some(XrdpCertificateOutcome::Ok));
    assert!(!fs::symlink_metadata(&cert_target)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::read(&cert_target).unwrap(),
        fs::read(&good.cert).unwrap()
    );
    assert_eq!(
        fs::metadata(&key_target).unwrap().mode() & 0o777,
        0o640,
        "the key keeps its mode"
    );
    // The old key's bytes are in the journal, private to the agent.
    let blob = f
        .dir
        .path()
        .join("journal/snapshots")
        .join(&action.action_id)
        .join("key");
    assert_eq!(fs::read(&blob).unwrap(), key_before);
    assert_eq!(fs::metadata(&blob).unwrap().mode() & 0o777, 0o600);

    f.service
        .rollback(
            RollbackRequest {
                action_id: action.action_id,
                force: false,
            },
            Requester::Local,
        )
        .unwrap();
    assert_eq!(
        fs::read_link(&cert_target).unwrap(),
        stale.cert,
        "the link is back"
    );
    assert_eq!(fs::read(&key_target).unwrap(), key_before, "exact bytes");
    assert_eq!(fs::metadata(&key_target).unwrap().mode() & 0o777, 0o640);
    assert_eq!(outcome(&config), Some(XrdpCertificateOutcome::KeyMismatch));
}

#[test]
fn restore_certificate_refuses_a_source_pair_that_would_not_work() {
    let mut pki = Pki::new();
    let f = fixes("host-fix-cert-refused");
    let good = pki.cert(&CertSpec::good());
    let other_key = pki.key(KeyKind::Rsa(2048));
    let expired = pki.cert(&CertSpec {
        dates: Dates::Range("20200101000000Z", "20210101000000Z"),
        ..CertSpec::good()
    });
    let cert_target = f.dir.path().join("cert.pem");
    let key_target = f.dir.path().join("key.pem");
    fs::write(&cert_target, "old cert").unwrap();
    fs::write(&key_target, "old key").unwrap();
    let config = write_ini(
        f.dir.path(),
        "xrdp.ini",
        &[
            ("certificate", cert_target.display().to_string()),
            ("key_file", key_target.display().to_string()),
        ],
    );
    for (i, (cert, key, why)) in [
        (&good.cert, &other_key, "is not the key of"),
        (&expired.cert, &expired.key, "not valid now"),
    ]
    .into_iter()
    .enumerate()
    {
        let fix = FixSpec::XrdpRestoreCertificate {
            config: config.clone(),
            certificate: PemPath::parse(cert.to_str().unwrap()).unwrap(),
            key_file: PemPath::parse(key.to_str().unwrap()).unwrap(),
        };
        let action = f
            .service
            .run(
                req(&format!("cert-refused-{i}"), fix, false),
                Requester::Local,
            )
            .unwrap()
            .action;
        let ActionState::Refused { reason } = &action.state else {
            panic!("{:?}", action.state)
        };
        assert!(reason.contains(why), "{reason}");
    }
    assert_eq!(fs::read_to_string(&cert_target).unwrap(), "old cert");
    assert_eq!(fs::read_to_string(&key_target).unwrap(), "old key");
}

#[test]
fn the_journal_records_every_linux_action_with_its_time_order() {
    let f = fixes("host-fix-journal");
    let config = write_ini(
        f.dir.path(),
        "xrdp.ini",
        &[("security_layer", "rdp".into())],
    );
    let fix = FixSpec::XrdpSetSecurityLayerNegotiate { config };
    f.service
        .run(req("journal-0001", fix.clone(), true), Requester::Local)
        .unwrap();
    let applied = f
        .service
        .run(req("journal-0002", fix.clone(), false), Requester::Local)
        .unwrap()
        .action;
    // The same setting again while the first is in effect: refused, and journaled too.
    let refused = f
        .service
        .run(req("journal-0003", fix, false), Requester::Local)
        .unwrap()
        .action;
    assert_eq!(state(&refused), "refused");
    let actions = f.service.list(&JournalRequest::default()).unwrap().actions;
    let states: Vec<String> = actions.iter().map(state).collect();
    assert_eq!(states, ["dry-run", "applied", "refused"]);
    assert_eq!(actions[1].action_id, applied.action_id);
}
