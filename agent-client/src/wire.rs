//! The JSON messages exchanged between the server and its agents, and the paths they use.
//!
//! Every request in either direction is signed (see `signing`); these types are the bodies.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::host::report::{HostCheckReport, HostCheckSpec};
use crate::rdp::clock::{ClockCompareReport, DEFAULT_TOLERANCE_S};
use crate::rdp::report::{RdpNegotiateReport, RdpTlsReport};
use crate::target::{CheckTarget, Host};

/// Server endpoint where an agent trades an enrollment token for an identity.
pub const ENROLL_PATH: &str = "/api/agent/v1/enroll";
/// Server endpoint that receives agent heartbeats.
pub const HEARTBEAT_PATH: &str = "/api/agent/v1/heartbeat";
/// Agent endpoint that runs one check.
pub const RUN_CHECK_PATH: &str = "/v1/checks/run";
/// Agent endpoint that runs (or, with `dry_run`, previews) one fix: [`FixRequest`] in,
/// [`FixResponse`] out.
pub const RUN_FIX_PATH: &str = "/v1/fixes/run";
/// Agent endpoint that rolls a fix back by action id: [`RollbackRequest`] in,
/// [`ActionRecord`] out.
pub const ROLLBACK_FIX_PATH: &str = "/v1/fixes/rollback";
/// Agent endpoint that lists the fix journal (including downgrades the agent reverted by
/// itself): [`JournalRequest`] in, [`JournalResponse`] out.
pub const FIX_JOURNAL_PATH: &str = "/v1/fixes/journal";

// The fix messages live with the fixes (`host::fix`); they are part of the wire contract.
pub use crate::host::fix::{
    ActionRecord, ActionState, ApprovalClaims, ApprovalToken, FixRequest, FixResponse, FixSpec,
    FixTier, JournalRequest, JournalResponse, PlannedChange, RollbackRequest,
};

/// The error body every RDP Doctor JSON API answers with on failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A stable machine-readable code, e.g. `token_expired`.
    pub code: String,
    /// One sentence for a person.
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

/// Sent once by a new agent; signed with the agent's freshly made key (key id `enroll`),
/// which proves that it holds the private half of `public_key`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub token: String,
    /// The agent's Ed25519 public key, base64.
    pub public_key: String,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    /// Where the server can reach the agent's API, if known yet (heartbeats update it).
    pub listen_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub agent_id: String,
    /// The server's Ed25519 public key, base64: the agent accepts requests signed by it only.
    pub server_public_key: String,
    pub heartbeat_interval_secs: u64,
}

/// Periodic sign of life from an agent, signed with its key (key id = agent id).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    pub listen_url: String,
    /// The newest change in the agent's fix journal (seconds since the Unix epoch), so the
    /// server reads the journal when something happened there, e.g. a downgrade the agent
    /// reverted by itself when its approval expired.
    #[serde(default)]
    pub journal_changed_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    pub heartbeat_interval_secs: u64,
}

/// A check the server asks an agent to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRequest {
    /// The server's id for this run, echoed in logs on both sides.
    pub run_id: String,
    pub check: CheckSpec,
}

/// The allowlisted checks with their typed parameters. Nothing else can be asked of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "kebab-case")]
pub enum CheckSpec {
    /// Resolve the host, then try a TCP connection to each address.
    TcpConnect {
        target: CheckTarget,
        /// Time allowed for each connection attempt.
        timeout_ms: u32,
    },
    /// A TCP connection to the port the RDP host's own agent listens on: whether that
    /// computer answers at all, whatever happens on its RDP port. Reported as `tcp-connect`.
    AgentPortConnect {
        target: CheckTarget,
        /// Time allowed for each connection attempt.
        timeout_ms: u32,
    },
    /// X.224 Connection Request with RDP_NEG_REQ for several protocol sets: what the
    /// server accepts, or which negotiation failure it answers.
    RdpNegotiate {
        target: CheckTarget,
        /// Time allowed for each step (connecting, each reply).
        timeout_ms: u32,
    },
    /// Negotiate, then the TLS handshake on the same connection: version, certificate, and
    /// (when `probe_versions`) every TLS version the server accepts.
    RdpTls {
        target: CheckTarget,
        /// Time allowed for each step (connecting, each reply, the handshake).
        timeout_ms: u32,
        #[serde(default = "default_true")]
        probe_versions: bool,
    },
    /// Resolve a host name as this machine does, and compare the addresses with the ones
    /// the host is known to have (when given).
    DnsResolve {
        host: Host,
        #[serde(default)]
        expected: Vec<IpAddr>,
        timeout_ms: u32,
    },
    /// Read the host's clock over RDP (the MsvAvTimestamp of the NTLM challenge that CredSSP
    /// sends before any credential) and compare it with the agent's.
    ClockCompare {
        target: CheckTarget,
        /// The largest difference, in seconds, called in sync (Kerberos allows 300).
        #[serde(default = "default_tolerance_s")]
        tolerance_s: u32,
        /// Time allowed for each step (connecting, each reply, the handshake).
        timeout_ms: u32,
    },
    /// What a Windows client fetches before it trusts the host's certificate, fetched the
    /// same way and timed: the certificate's revocation and issuer addresses (read with an
    /// `rdp-tls` handshake) and Windows' trusted-root list. A client that cannot get them
    /// quickly hangs at "Securing remote connection".
    RevocationFetch {
        target: CheckTarget,
        /// Time allowed for each step: the handshake's, and each fetch. A fetch that takes
        /// longer is one the employee waits for.
        timeout_ms: u32,
    },
    /// TCP connections to the host's Remote Desktop port spread over a window, each timed:
    /// does the path lose packets (a connection that needs a retransmission, or gets no
    /// answer while others do)?
    PathQuality {
        target: CheckTarget,
        /// Time allowed for each connection.
        timeout_ms: u32,
        /// The window the connections are spread over (at most 120 000).
        #[serde(default = "default_path_duration_ms")]
        duration_ms: u32,
        /// How many connections (at most 120).
        #[serde(default = "default_path_probes")]
        probes: u32,
    },
    /// A check of the host the agent runs on (Windows or xrdp), tagged by its own id.
    #[serde(untagged)]
    Host(HostCheckSpec),
}

fn default_path_duration_ms() -> u32 {
    PATH_QUALITY_DURATION_MS
}

fn default_path_probes() -> u32 {
    PATH_QUALITY_PROBES
}

/// `path-quality`'s window unless the request says otherwise.
pub const PATH_QUALITY_DURATION_MS: u32 = 30_000;
/// `path-quality`'s number of connections unless the request says otherwise.
pub const PATH_QUALITY_PROBES: u32 = 30;

fn default_true() -> bool {
    true
}

fn default_tolerance_s() -> u32 {
    DEFAULT_TOLERANCE_S
}

impl CheckSpec {
    /// The check's stable id, as the knowledge model names it.
    pub fn id(&self) -> &'static str {
        match self {
            CheckSpec::TcpConnect { .. } => "tcp-connect",
            CheckSpec::AgentPortConnect { .. } => "agent-port-connect",
            CheckSpec::RdpNegotiate { .. } => "rdp-negotiate",
            CheckSpec::RdpTls { .. } => "rdp-tls",
            CheckSpec::DnsResolve { .. } => "dns-resolve",
            CheckSpec::ClockCompare { .. } => "clock-compare",
            CheckSpec::RevocationFetch { .. } => "revocation-fetch",
            CheckSpec::PathQuality { .. } => "path-quality",
            CheckSpec::Host(host) => host.id(),
        }
    }

    /// The computer the check probes; `None` for host checks (the agent's own machine).
    pub fn target(&self) -> Option<&CheckTarget> {
        match self {
            CheckSpec::TcpConnect { target, .. }
            | CheckSpec::AgentPortConnect { target, .. }
            | CheckSpec::RdpNegotiate { target, .. }
            | CheckSpec::RdpTls { target, .. }
            | CheckSpec::ClockCompare { target, .. }
            | CheckSpec::RevocationFetch { target, .. }
            | CheckSpec::PathQuality { target, .. } => Some(target),
            CheckSpec::DnsResolve { .. } | CheckSpec::Host(_) => None,
        }
    }
}

/// What a check observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "kebab-case")]
pub enum CheckReport {
    TcpConnect(TcpConnectReport),
    RdpNegotiate(Box<RdpNegotiateReport>),
    RdpTls(Box<RdpTlsReport>),
    DnsResolve(DnsResolveReport),
    ClockCompare(Box<ClockCompareReport>),
    RevocationFetch(Box<RevocationFetchReport>),
    PathQuality(Box<PathQualityReport>),
    /// A host check's report, tagged by the host check's own id.
    #[serde(untagged)]
    Host(Box<HostCheckReport>),
}

/// Result of `path-quality`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathQualityReport {
    pub target: CheckTarget,
    pub resolution_error: Option<String>,
    /// The address connected to (the first the name resolves to, as a client uses).
    pub address: Option<SocketAddr>,
    /// Every connection, in order.
    pub attempts: Vec<ConnectAttempt>,
    /// The median time of the connections made: the path's round trip, about.
    pub median_ms: Option<f64>,
    /// Connections that took a retransmission (a lost SYN or SYN-ACK).
    pub retransmitted: u32,
    /// Connections that got no answer, or failed on the way, while others were answered.
    pub lost: u32,
    pub verdict: PathVerdict,
    pub elapsed_ms: f64,
}

/// What `path-quality` concluded (the knowledge model's outcome ids where it has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathVerdict {
    /// Every connection was answered within about one round trip.
    Stable,
    /// Some connection took a retransmission or got no answer.
    Lossy,
    /// No connection was made: nothing to judge the path by.
    Unreachable,
    /// The name did not resolve.
    NotResolved,
}

/// Result of `revocation-fetch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevocationFetchReport {
    pub target: CheckTarget,
    /// Why the host's certificate could not be read (its own addresses are then unknown).
    pub certificate_error: Option<String>,
    /// Every address fetched or found, in the order a Windows client fetches them.
    pub fetches: Vec<UrlFetch>,
    pub verdict: RevocationVerdict,
    pub elapsed_ms: f64,
}

/// One address the client needs before it trusts the certificate, and how fetching it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UrlFetch {
    pub url: String,
    pub purpose: UrlPurpose,
    pub outcome: FetchOutcome,
    pub elapsed_ms: f64,
}

/// Why a client fetches an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UrlPurpose {
    /// A CRL distribution point of a certificate in the chain.
    Crl,
    /// An OCSP responder (authority information access).
    Ocsp,
    /// The issuer's certificate (authority information access), for an incomplete chain.
    CaIssuers,
    /// Windows' list of trusted roots (automatic root update), fetched for a root it does
    /// not know, such as the self-signed certificate of a Remote Desktop host.
    RootList,
}

/// How one fetch went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum FetchOutcome {
    /// An HTTP answer came back in time, whatever its status: the client waits no longer.
    Answered { status: u16, bytes: u64 },
    /// The fetch failed before the time was up (refused, name not found): the client gives
    /// up just as quickly.
    Failed { error: String },
    /// No answer in the time allowed: the client waits this long, or longer.
    TimedOut,
    /// Not fetched: an address this check does not fetch (LDAP, HTTPS).
    NotProbed { reason: String },
}

/// What `revocation-fetch` concluded (the knowledge model's outcome ids where it has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevocationVerdict {
    /// Everything fetched came back, or failed, in time.
    Fast,
    /// At least one fetch took longer than the time allowed.
    SlowOrBlocked,
    /// The certificate names nothing to fetch and no root list applies.
    NothingToFetch,
    /// Nothing could be fetched and something may be needed (the certificate could not be
    /// read, or only names addresses this check does not fetch): no evidence either way.
    Unverified,
}

impl RevocationVerdict {
    /// Judges a run from its fetches and whether the certificate was read.
    pub fn judge(certificate_read: bool, fetches: &[UrlFetch]) -> Self {
        let probed = |f: &&UrlFetch| !matches!(f.outcome, FetchOutcome::NotProbed { .. });
        if fetches
            .iter()
            .any(|f| matches!(f.outcome, FetchOutcome::TimedOut))
        {
            RevocationVerdict::SlowOrBlocked
        } else if fetches.iter().any(|f| probed(&f)) {
            RevocationVerdict::Fast
        } else if certificate_read && fetches.is_empty() {
            RevocationVerdict::NothingToFetch
        } else {
            RevocationVerdict::Unverified
        }
    }
}

/// Result of `dns-resolve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsResolveReport {
    pub host: Host,
    /// The name servers this machine asks (from its resolver configuration), if known.
    pub resolvers: Vec<String>,
    pub resolution: Resolution,
    /// The addresses the host is known to have, as given with the request.
    pub expected: Vec<IpAddr>,
    pub verdict: DnsVerdict,
}

/// What `dns-resolve` concluded (the knowledge model's outcome ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsVerdict {
    /// At least one resolved address is one the host has.
    Matches,
    /// The name resolves, but to none of the host's addresses: a stale or wrong record.
    Differs,
    /// The name does not resolve.
    Fails,
    /// It resolves; with no known addresses to compare, nothing more can be said.
    Unverified,
}

impl DnsVerdict {
    /// Compares a resolution with the addresses the host is known to have.
    pub fn judge(resolution: &Resolution, expected: &[IpAddr]) -> Self {
        if resolution.error.is_some() || resolution.addresses.is_empty() {
            DnsVerdict::Fails
        } else if expected.is_empty() {
            DnsVerdict::Unverified
        } else if resolution.addresses.iter().any(|a| expected.contains(a)) {
            DnsVerdict::Matches
        } else {
            DnsVerdict::Differs
        }
    }
}

/// Result of `tcp-connect`: name resolution, then one connection attempt per address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpConnectReport {
    pub target: CheckTarget,
    pub resolution: Resolution,
    pub attempts: Vec<ConnectAttempt>,
    pub verdict: Reachability,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    /// True when the target was an address and no lookup was needed.
    pub literal: bool,
    pub addresses: Vec<IpAddr>,
    pub elapsed_ms: f64,
    /// Why the name did not resolve, when it did not.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectAttempt {
    pub address: SocketAddr,
    pub state: PortState,
    pub elapsed_ms: f64,
    /// The operating system's words for an unexpected failure.
    pub detail: Option<String>,
}

/// What one TCP connection attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortState {
    /// Something accepted the connection.
    Open,
    /// The host answered with a reset: reachable, but nothing listens on the port.
    Refused,
    /// No answer before the timeout: a firewall drops the traffic, or the host is off.
    NoAnswer,
    /// The network reported the host or network unreachable.
    Unreachable,
    /// Any other failure (see `detail`).
    Error,
}

/// The overall answer of `tcp-connect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reachability {
    /// At least one address accepted the connection.
    Open,
    /// Every address answered, none accepted.
    Refused,
    /// No address answered at all.
    NoAnswer,
    /// The name did not resolve to any address.
    NotResolved,
    /// Addresses failed in other ways (unreachable, errors).
    Unreachable,
}

impl Reachability {
    /// Summarises the attempts made after a successful resolution.
    pub fn from_attempts(attempts: &[ConnectAttempt]) -> Self {
        let any = |s: PortState| attempts.iter().any(|a| a.state == s);
        if attempts.is_empty() {
            Reachability::NotResolved
        } else if any(PortState::Open) {
            Reachability::Open
        } else if any(PortState::Refused) {
            Reachability::Refused
        } else if any(PortState::NoAnswer) {
            Reachability::NoAnswer
        } else {
            Reachability::Unreachable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_specs_are_tagged_by_their_stable_id() {
        let spec = CheckSpec::TcpConnect {
            target: CheckTarget::parse("pc1:3390").unwrap(),
            timeout_ms: 2000,
        };
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["check"], spec.id());
        assert_eq!(json["target"]["host"], "pc1");
        let back: CheckSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn clock_compare_specs_default_the_tolerance_and_name_their_target() {
        let json =
            r#"{"check":"clock-compare","target":{"host":"pc1","port":3389},"timeout_ms":5000}"#;
        let spec: CheckSpec = serde_json::from_str(json).unwrap();
        assert_eq!(
            spec,
            CheckSpec::ClockCompare {
                target: CheckTarget::parse("pc1").unwrap(),
                tolerance_s: 300,
                timeout_ms: 5000,
            }
        );
        assert_eq!(spec.id(), "clock-compare");
        assert_eq!(spec.target().map(|t| t.port), Some(3389));
        let back = serde_json::to_value(&spec).unwrap();
        assert_eq!(back["tolerance_s"], 300);
        assert_eq!(serde_json::from_value::<CheckSpec>(back).unwrap(), spec);
    }

    #[test]
    fn unknown_checks_and_invalid_targets_do_not_deserialize() {
        let shell = r#"{"check":"shell","command":"rm -rf /"}"#;
        assert!(serde_json::from_str::<CheckSpec>(shell).is_err());
        let bad_host =
            r#"{"check":"tcp-connect","target":{"host":"a b","port":3389},"timeout_ms":1}"#;
        assert!(serde_json::from_str::<CheckSpec>(bad_host).is_err());
    }

    #[test]
    fn host_checks_travel_as_check_specs_under_their_own_ids() {
        let spec: CheckSpec =
            serde_json::from_str(r#"{"check":"rdp-listener","timeout_ms":1000}"#).unwrap();
        assert_eq!(spec.id(), "rdp-listener");
        assert!(spec.target().is_none());
        assert_eq!(
            serde_json::to_value(&spec).unwrap()["check"],
            "rdp-listener"
        );
        let report = CheckReport::Host(Box::new(crate::host::report::HostCheckReport::RdpEnabled(
            crate::host::report::HostReport::failed(
                crate::host::report::HostCheckError {
                    kind: crate::host::report::HostErrorKind::Unsupported,
                    message: "not Windows".into(),
                },
                1.0,
            ),
        )));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["check"], "rdp-enabled");
        assert_eq!(serde_json::from_value::<CheckReport>(json).unwrap(), report);
    }
}
