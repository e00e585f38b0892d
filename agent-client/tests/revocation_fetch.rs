//! `revocation-fetch` against a real xrdp on loopback whose certificate names revocation and
//! issuer addresses, served by a real HTTP server (Python's `http.server`) or by a listener
//! that accepts and never answers (a network that drops the traffic); also the agent's
//! command line, with the root-list address taken from its environment.
//!
//! Needs root and the Debian packages in `support::PACKAGES`; without them the tests fail
//! with a message saying what to install.

#![cfg(feature = "checks")]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_client::checks::revocation;
use agent_client::wire::{FetchOutcome, RevocationFetchReport, RevocationVerdict, UrlPurpose};
use support::{free_port, target, CertSpec, Issuer, Pki, TempDir, Xrdp, XrdpConfig};

const AGENT: &str = env!("CARGO_BIN_EXE_rdp-doctor-agent");
const STEP: Duration = Duration::from_millis(1500);

/// Python's HTTP server on a loopback port, serving a directory with a CRL-sized file.
struct HttpServer {
    port: u16,
    child: Child,
    _dir: TempDir,
}

impl HttpServer {
    fn start() -> HttpServer {
        support::require_program("python3", "python3");
        let dir = TempDir::new("http");
        std::fs::write(dir.path().join("ca.crl"), vec![0x30u8; 4096]).unwrap();
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "http.server did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        HttpServer {
            port,
            child,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A listener that accepts connections and never answers, as a network that swallows the
/// request does. Kept open while the value lives.
struct Silent {
    port: u16,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Silent {
    async fn start() -> Silent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let mut held = Vec::new();
            tokio::select! {
                _ = stopped => {}
                _ = async {
                    while let Ok((socket, _)) = listener.accept().await {
                        held.push(socket);
                    }
                } => {}
            }
        });
        Silent { port, _stop: stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

fn xrdp_with_extensions(pki: &mut Pki, extensions: Vec<String>, issuer: Issuer) -> Xrdp {
    let files = pki.cert(&CertSpec {
        extensions,
        issuer,
        ..CertSpec::good()
    });
    Xrdp::start(&XrdpConfig::new("tls", &files))
}

fn fetched(report: &RevocationFetchReport) -> Vec<(UrlPurpose, &str)> {
    report
        .fetches
        .iter()
        .map(|f| (f.purpose, f.url.as_str()))
        .collect()
}

#[tokio::test]
async fn addresses_that_answer_in_time_make_the_run_fast() {
    let http = HttpServer::start();
    let mut pki = Pki::new();
    let (crl, ocsp, issuer, roots) = (
        http.url("ca.crl"),
        http.url("ocsp"),
        http.url("ca.cer"),
        http.url("authrootstl.cab"),
    );
    // The extension lists the issuer first; OCSP is still fetched before it.
    let xrdp = xrdp_with_extensions(
        &mut pki,
        vec![
            format!("crlDistributionPoints = URI:{crl}"),
            format!("authorityInfoAccess = caIssuers;URI:{issuer},OCSP;URI:{ocsp}"),
        ],
        Issuer::TestCa,
    );
    let report = revocation::run(&xrdp.target(), STEP, std::slice::from_ref(&roots)).await;
    assert_eq!(report.verdict, RevocationVerdict::Fast, "{report:#?}");
    assert_eq!(report.certificate_error, None);
    assert_eq!(
        fetched(&report),
        vec![
            (UrlPurpose::Crl, crl.as_str()),
            (UrlPurpose::Ocsp, ocsp.as_str()),
            (UrlPurpose::CaIssuers, issuer.as_str()),
            (UrlPurpose::RootList, roots.as_str()),
        ]
    );
    assert_eq!(
        report.fetches[0].outcome,
        FetchOutcome::Answered {
            status: 200,
            bytes: 4096
        }
    );
    // Any HTTP answer is an answer: the client waits no longer.
    assert!(matches!(
        report.fetches[1].outcome,
        FetchOutcome::Answered { status: 404, .. }
    ));
    assert!(report.fetches.iter().all(|f| f.elapsed_ms < 1500.0));
}

#[tokio::test]
async fn an_address_that_never_answers_makes_the_run_slow_or_blocked() {
    let http = HttpServer::start();
    let silent = Silent::start().await;
    let mut pki = Pki::new();
    let crl = http.url("ca.crl");
    let xrdp = xrdp_with_extensions(
        &mut pki,
        vec![format!("crlDistributionPoints = URI:{crl}")],
        Issuer::TestCa,
    );
    let roots = silent.url("authrootstl.cab");
    let started = Instant::now();
    let report = revocation::run(&xrdp.target(), STEP, std::slice::from_ref(&roots)).await;
    assert_eq!(
        report.verdict,
        RevocationVerdict::SlowOrBlocked,
        "{report:#?}"
    );
    assert!(matches!(
        report.fetches[0].outcome,
        FetchOutcome::Answered { status: 200, .. }
    ));
    assert_eq!(report.fetches[1].purpose, UrlPurpose::RootList);
    assert_eq!(report.fetches[1].outcome, FetchOutcome::TimedOut);
    assert!(report.fetches[1].elapsed_ms >= 1400.0, "{report:#?}");
    // One step for the stalled fetch, not many.
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[tokio::test]
async fn a_refused_address_fails_fast_and_ldap_is_listed_not_fetched() {
    let refused = format!("http://127.0.0.1:{}/ca.crl", free_port());
    let mut pki = Pki::new();
    let ldap = "ldap://dc1.corp.example/CN=Test%20CA%2CCN=CDP%2CDC=corp?certificateRevocationList";
    let xrdp = xrdp_with_extensions(
        &mut pki,
        vec![format!("crlDistributionPoints = URI:{ldap},URI:{refused}")],
        Issuer::TestCa,
    );
    let report = revocation::run(&xrdp.target(), STEP, &[]).await;
    assert_eq!(report.verdict, RevocationVerdict::Fast, "{report:#?}");
    assert!(
        matches!(&report.fetches[0].outcome, FetchOutcome::NotProbed { reason } if reason.contains("LDAP"))
    );
    assert!(
        matches!(&report.fetches[1].outcome, FetchOutcome::Failed { error } if error.contains("connect")),
        "{report:#?}"
    );

    // With only the LDAP address, nothing was fetched and something may be needed.
    let only_ldap = xrdp_with_extensions(
        &mut pki,
        vec![format!("crlDistributionPoints = URI:{ldap}")],
        Issuer::TestCa,
    );
    let report = revocation::run(&only_ldap.target(), STEP, &[]).await;
    assert_eq!(report.verdict, RevocationVerdict::Unverified, "{report:#?}");
}

#[tokio::test]
async fn a_self_signed_certificate_needs_only_the_root_list() {
    let mut pki = Pki::new();
    let xrdp = xrdp_with_extensions(&mut pki, Vec::new(), Issuer::SelfSigned);
    let report = revocation::run(&xrdp.target(), STEP, &[]).await;
    assert_eq!(
        report.verdict,
        RevocationVerdict::NothingToFetch,
        "{report:#?}"
    );
    assert!(report.fetches.is_empty());

    // A closed port: no certificate, but the root list is still what the client fetches.
    let http = HttpServer::start();
    let closed = target("127.0.0.1", free_port());
    let report = revocation::run(&closed, STEP, &[http.url("authrootstl.cab")]).await;
    assert!(report.certificate_error.is_some(), "{report:#?}");
    assert_eq!(report.verdict, RevocationVerdict::Fast);
    let report = revocation::run(&closed, STEP, &[]).await;
    assert_eq!(report.verdict, RevocationVerdict::Unverified);
}

#[tokio::test]
async fn the_agent_takes_the_root_list_address_from_its_environment() {
    let mut pki = Pki::new();
    let xrdp = xrdp_with_extensions(&mut pki, Vec::new(), Issuer::SelfSigned);
    let silent = Silent::start().await;
    let target = xrdp.target().to_string();
    let agent = |root_list: &str| {
        let mut command = tokio::process::Command::new(AGENT);
        command
            .args(["check", "revocation-fetch", "--target", &target])
            .args(["--timeout-ms", "1000", "--json"])
            .env(revocation::ROOT_LIST_URL_VARIABLE, root_list);
        command.output()
    };
    let out = agent(&silent.url("authrootstl.cab")).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["check"], "revocation-fetch");
    assert_eq!(report["verdict"], "slow-or-blocked", "{report:#}");
    assert_eq!(report["fetches"][0]["purpose"], "root-list");
    assert_eq!(report["fetches"][0]["outcome"]["result"], "timed-out");

    // Empty turns the root list off: nothing left to fetch for a self-signed certificate.
    let out = agent("").await.unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "nothing-to-fetch", "{report:#}");

    // Bad input: one line, non-zero exit.
    let out = Command::new(AGENT)
        .args(["check", "revocation-fetch"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs --target"), "{stderr}");
}
