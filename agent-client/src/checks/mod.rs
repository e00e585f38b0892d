//! The allowlisted checks. Each one is a typed function; [`run`] is the only way in.

pub mod dns_resolve;
pub mod path_quality;
pub mod rdp;
pub mod revocation;
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
        id: "agent-port-connect",
        parameters: "--target HOST:PORT [--timeout-ms N]",
        summary: "a TCP connection to the port the RDP host's agent listens on: is that computer reachable at all",
        default_timeout_ms: 3000,
    },
    CheckInfo {
        id: "dns-resolve",
        parameters: "--target HOST [--param expected=IP[,IP...]] [--timeout-ms N]",
        summary: "resolve a name as this machine does; compare with the addresses the host has",
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
    CheckInfo {
        id: "clock-compare",
        parameters: "--target HOST[:PORT] [--timeout-ms N] [--param tolerance_s=300]",
        summary: "the host's clock, read over RDP from its NTLM challenge (needs NLA), against this one",
        default_timeout_ms: 5000,
    },
    CheckInfo {
        id: "revocation-fetch",
        parameters: "--target HOST[:PORT] [--timeout-ms N]",
        summary: "fetch, and time, the revocation and root-list data a Windows client needs for the host's certificate",
        default_timeout_ms: 5000,
    },
    CheckInfo {
        id: "path-quality",
        parameters: "--target HOST[:PORT] [--timeout-ms N] [--param duration_ms=30000] [--param probes=30]",
        summary: "timed TCP connections spread over a window: does the path to the host lose packets",
        default_timeout_ms: 3000,
    },
    // Host checks (`crate::host`): the agent's own machine, no --target.
    CheckInfo {
        id: "firewall-rule",
        parameters: "(Windows)",
        summary: "firewall rules of the Remote Desktop and Remote Desktop (WebSocket) groups, per profile",
        default_timeout_ms: HOST_WINDOWS_MS,
    },
    CheckInfo {
        id: "rdp-enabled",
        parameters: "(Windows)",
        summary: "fDenyTSConnections locally and by Group Policy",
        default_timeout_ms: HOST_WINDOWS_MS,
    },
    CheckInfo {
        id: "rdp-services",
        parameters: "(Windows)",
        summary: "TermService, UmRdpService and SessionEnv: state and start type",
        default_timeout_ms: HOST_WINDOWS_MS,
    },
    CheckInfo {
        id: "rdp-listener",
        parameters: "(Windows)",
        summary: "PortNumber of RDP-Tcp and what listens on that port",
        default_timeout_ms: HOST_WINDOWS_MS,
    },
    CheckInfo {
        id: "session-limits",
        parameters: "(Windows)",
        summary: "drain mode and connection limits",
        default_timeout_ms: HOST_WINDOWS_MS,
    },
    CheckInfo {
        id: "rdp-certificate",
        parameters: "(Windows)",
        summary: "the Remote Desktop certificate store and events 1057/1058/36870",
        default_timeout_ms: HOST_WINDOWS_MS,
    },
    CheckInfo {
        id: "cert-binding",
        parameters: "(Windows)",
        summary: "SSLCertificateSHA1Hash compared with the certificate stores",
        default_timeout_ms: HOST_WINDOWS_MS,
    },
    CheckInfo {
        id: "machinekeys-acl",
        parameters: "(Windows)",
        summary: "MachineKeys permissions against Microsoft's documented default",
        default_timeout_ms: HOST_WINDOWS_MS,
    },
    CheckInfo {
        id: "schannel-tls12",
        parameters: "(Windows)",
        summary: "Schannel protocol settings (TLS 1.2 server) and event 36871",
        default_timeout_ms: HOST_WINDOWS_MS,
    },
    CheckInfo {
        id: "security-layer",
        parameters: "(Windows)",
        summary: "SecurityLayer, MinEncryptionLevel and FIPS policy, event 1050",
        default_timeout_ms: HOST_WINDOWS_MS,
    },
    CheckInfo {
        id: "credssp-policy",
        parameters: "(Windows)",
        summary: "AllowEncryptionOracle and the CredSSP (tspkg.dll) version on this side",
        default_timeout_ms: HOST_WINDOWS_MS,
    },
    CheckInfo {
        id: "secure-channel",
        parameters: "(Windows)",
        summary: "NLA (UserAuthentication) and the domain secure channel",
        default_timeout_ms: HOST_WINDOWS_MS,
    },
    CheckInfo {
        id: "host-event-log",
        parameters: "(Windows) [--param since_minutes=60]",
        summary: "RemoteConnectionManager, Schannel and RdpCoreTS events that matter",
        default_timeout_ms: HOST_WINDOWS_MS,
    },
    CheckInfo {
        id: "vpn-tunnel-events",
        parameters: "(Windows, the employee's PC) [--param since_minutes=60]",
        summary: "a VPN adapter up, and VPN tunnels dropped in the window",
        default_timeout_ms: HOST_WINDOWS_MS,
    },
    CheckInfo {
        id: "xrdp-listening",
        parameters: "(Linux) [--param config=/etc/xrdp/xrdp.ini] [--param port=3389]",
        summary: "xrdp running and listening on the port its ini names (and clients use)",
        default_timeout_ms: HOST_LINUX_MS,
    },
    CheckInfo {
        id: "xrdp-security-layer",
        parameters: "(Linux) [--param config=/etc/xrdp/xrdp.ini]",
        summary: "xrdp's security_layer, crypt_level and TLS settings",
        default_timeout_ms: HOST_LINUX_MS,
    },
    CheckInfo {
        id: "xrdp-certificate",
        parameters: "(Linux) [--param config=/etc/xrdp/xrdp.ini]",
        summary: "xrdp's certificate and key: readable, matching, in date",
        default_timeout_ms: HOST_LINUX_MS,
    },
    CheckInfo {
        id: "xrdp-firewall",
        parameters: "(Linux) [--param config=...] [--param port=N]",
        summary: "nftables rules that drop or reject the RDP port",
        default_timeout_ms: HOST_LINUX_MS,
    },
];

const HOST_WINDOWS_MS: u32 = crate::host::report::DEFAULT_WINDOWS_TIMEOUT_MS;
const HOST_LINUX_MS: u32 = crate::host::report::DEFAULT_LINUX_TIMEOUT_MS;

/// Looks a check up by id.
pub fn info(id: &str) -> Option<&'static CheckInfo> {
    CATALOGUE.iter().find(|c| c.id == id)
}

/// Runs one check and reports what it observed. Checks never fail as a whole: what went
/// wrong (a name that does not resolve, a port that does not answer) is part of the report.
pub async fn run(spec: &CheckSpec) -> CheckReport {
    let millis = |ms: &u32| Duration::from_millis(u64::from(*ms));
    match spec {
        CheckSpec::TcpConnect { target, timeout_ms }
        | CheckSpec::AgentPortConnect { target, timeout_ms } => {
            CheckReport::TcpConnect(tcp_connect::run(target, millis(timeout_ms)).await)
        }
        CheckSpec::RdpNegotiate { target, timeout_ms } => {
            CheckReport::RdpNegotiate(Box::new(rdp::negotiate(target, millis(timeout_ms)).await))
        }
        CheckSpec::DnsResolve {
            host,
            expected,
            timeout_ms,
        } => CheckReport::DnsResolve(dns_resolve::run(host, expected, millis(timeout_ms)).await),
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
        CheckSpec::ClockCompare {
            target,
            tolerance_s,
            timeout_ms,
        } => CheckReport::ClockCompare(Box::new(
            rdp::clock_compare(target, *tolerance_s, millis(timeout_ms)).await,
        )),
        CheckSpec::RevocationFetch { target, timeout_ms } => {
            CheckReport::RevocationFetch(Box::new(
                revocation::run(
                    target,
                    millis(timeout_ms),
                    &revocation::platform_root_lists(),
                )
                .await,
            ))
        }
        CheckSpec::PathQuality {
            target,
            timeout_ms,
            duration_ms,
            probes,
        } => CheckReport::PathQuality(Box::new(
            path_quality::run(target, millis(timeout_ms), *duration_ms, *probes).await,
        )),
        CheckSpec::Host(host) => CheckReport::Host(Box::new(crate::host::checks::run(host).await)),
    }
}

/// Milliseconds with a tenth of a millisecond kept, as reports show them.
pub(crate) fn elapsed_ms(since: std::time::Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
}
