//! The allowlisted checks. Each one is a typed function; [`run`] is the only way in.

pub mod rdp;
pub mod tcp_connect;

use std::time::Duration;

use crate::wire::{CheckReport, CheckSpec};

/// What `rdp-doctor-agent checks` lists: every check an agent can run, with its parameters.
#[derive(Debug, Clone, Copy)]
pub struct CheckInfo {
    pub id: &'static str,
    pub parameters: &'static str,
    pub summary: &'static str,
    /// Time allowed for each step when the caller does not say.
    pub default_timeout_ms: u32,
}

/// The allowlist, as people read it. `CheckSpec` is the same list as the wire reads it.
pub const CATALOGUE: &[CheckInfo] = &[
    CheckInfo {
        id: "tcp-connect",
        parameters: "--target HOST[:PORT] [--timeout-ms N]",
        summary: "resolve the host, then try a TCP connection to each of its addresses",
        default_timeout_ms: 3000,
    },
    CheckInfo {
        id: "rdp-negotiate",
        parameters: "--target HOST[:PORT] [--timeout-ms N]",
        summary: "X.224 negotiation: which security protocols the server selects or refuses",
        default_timeout_ms: 5000,
    },
    CheckInfo {
        id: "rdp-tls",
        parameters: "--target HOST[:PORT] [--timeout-ms N] [--param probe_versions=true|false]",
        summary: "TLS after negotiation: version, certificate, and the TLS versions accepted",
        default_timeout_ms: 5000,
    },
];

/// Looks a check up by id.
pub fn info(id: &str) -> Option<&'static CheckInfo> {
    CATALOGUE.iter().find(|c| c.id == id)
}

/// Runs one check and reports what it observed. Checks never fail as a whole: what went
/// wrong (a name that does not resolve, a port that does not answer) is part of the report.
pub async fn run(spec: &CheckSpec) -> CheckReport {
    let millis = |ms: &u32| Duration::from_millis(u64::from(*ms));
    match spec {
        CheckSpec::TcpConnect { target, timeout_ms } => {
            CheckReport::TcpConnect(tcp_connect::run(target, millis(timeout_ms)).await)
        }
        CheckSpec::RdpNegotiate { target, timeout_ms } => {
            CheckReport::RdpNegotiate(Box::new(rdp::negotiate(target, millis(timeout_ms)).await))
        }
        CheckSpec::RdpTls {
            target,
            timeout_ms,
            probe_versions,
        } => {
            let options = rdp::TlsOptions {
                probe_versions: *probe_versions,
                ..rdp::TlsOptions::default()
            };
            CheckReport::RdpTls(Box::new(
                rdp::tls_with(target, millis(timeout_ms), &options).await,
            ))
        }
    }
}

/// Milliseconds with a tenth of a millisecond kept, as reports show them.
pub(crate) fn elapsed_ms(since: std::time::Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
}
