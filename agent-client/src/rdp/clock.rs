//! What `clock-compare` reports: plain serde types, without I/O, so that the server and the
//! portal read the report with the types the agent writes it with (like [`super::report`]).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::credssp::TokenWrapping;
use super::report::{NegotiationAttempt, TlsHandshake};
use super::x224::{FailureCode, Protocol};
use crate::target::CheckTarget;
use crate::wire::{ConnectAttempt, PortState};

/// How far apart the clocks may be before Kerberos (and so CredSSP/NLA with Kerberos)
/// refuses to authenticate: 5 minutes, the default "Maximum tolerance for computer clock
/// synchronization" of a Windows domain.
pub const DEFAULT_TOLERANCE_S: u32 = 300;

/// Result of `clock-compare`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockCompareReport {
    pub target: CheckTarget,
    /// Why the name did not resolve, when it did not.
    pub resolution_error: Option<String>,
    /// The TCP connection attempts made to find an address that answers.
    pub connect: Vec<ConnectAttempt>,
    pub address: Option<SocketAddr>,
    /// The X.224 negotiations: first asking for TLS or CredSSP (`PROTOCOL_SSL |
    /// PROTOCOL_HYBRID`); when the server does not select CredSSP, a second one on a new
    /// connection asking for CredSSP alone, to read the server's refusal by name.
    pub negotiation: Vec<NegotiationAttempt>,
    /// The TLS handshake on the CredSSP connection (no certificate validation).
    pub tls: Option<TlsHandshake>,
    /// The server's first TSRequest.
    pub credssp: Option<CredsspAnswer>,
    /// What the NTLM CHALLENGE_MESSAGE says about the host.
    pub host: Option<NtlmHostInfo>,
    /// The two clocks, when the host's could be read.
    pub clock: Option<ClockReading>,
    /// The largest difference counted as in sync, in seconds.
    pub tolerance_s: u32,
    pub verdict: ClockVerdict,
    /// Why the host's clock could not be read (verdict `could-not-read`).
    pub unreadable: Option<ClockUnreadable>,
    /// One or two sentences for a person: what was observed.
    pub explanation: String,
    pub elapsed_ms: f64,
}

/// The server's answer to the client's first TSRequest (MS-CSSP 2.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredsspAnswer {
    /// The TSRequest `version` the server answered with (2 to 6; the client offers 6).
    /// Versions 5 and up have the nonce-based public key binding that came with the 2018
    /// CredSSP updates (CVE-2018-0886); a lower version suggests a host without them.
    pub version: u32,
    /// `errorCode`, when the server sent one (an NTSTATUS or SSPI status).
    pub error_code: Option<u32>,
    /// Its name, when known (e.g. `STATUS_LOGON_FAILURE`).
    pub error_name: Option<String>,
    /// How the NTLM message was carried, when there was one.
    pub token: Option<TokenWrapping>,
}

/// What the NTLM CHALLENGE_MESSAGE reveals (MS-NLMP 2.2.1.2, AV pairs of 2.2.2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NtlmHostInfo {
    /// TargetName: the NetBIOS domain name of a domain member, or the computer's own name.
    pub target_name: Option<String>,
    /// `domain` (NTLMSSP_TARGET_TYPE_DOMAIN: the host is in a domain) or `server`
    /// (NTLMSSP_TARGET_TYPE_SERVER: a stand-alone host; names its own accounts).
    pub target_type: Option<NtlmTargetType>,
    pub netbios_computer_name: Option<String>,
    pub netbios_domain_name: Option<String>,
    pub dns_computer_name: Option<String>,
    pub dns_domain_name: Option<String>,
    pub dns_tree_name: Option<String>,
    /// The VERSION field (2.2.2.10), when the server sent it: its Windows version.
    pub product_version: Option<ProductVersion>,
    /// NegotiateFlags of the challenge, raw.
    pub negotiate_flags: u32,
    /// The AvIds in TargetInfo, in the order sent.
    pub av_ids: Vec<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NtlmTargetType {
    Domain,
    Server,
}

/// The VERSION structure of MS-NLMP 2.2.2.10.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductVersion {
    pub major: u8,
    pub minor: u8,
    pub build: u16,
    pub ntlm_revision: u8,
    /// `major.minor.build`, e.g. `10.0.20348`.
    pub display: String,
}

/// The host's clock against this computer's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockReading {
    /// MsvAvTimestamp as the host sent it (FILETIME: 100 ns units since 1601-01-01 UTC).
    pub filetime: u64,
    /// The same, RFC 3339 UTC.
    pub host_time: String,
    /// This computer's clock at the midpoint between sending the NTLM negotiate and
    /// receiving the challenge, RFC 3339 UTC.
    pub local_time: String,
    /// Host minus local, seconds (millisecond precision): negative when the host's clock is
    /// behind this computer's.
    pub offset_s: f64,
    /// From sending the TSRequest to receiving the server's answer.
    pub round_trip_ms: f64,
    /// How far the true offset can be from `offset_s`: the host read its clock somewhere
    /// within the round trip (half of it each way), plus one second when the host
    /// stamps whole seconds (FreeRDP and other non-Windows servers do).
    pub uncertainty_s: f64,
    /// The timestamp has no fraction of a second.
    pub whole_seconds: bool,
    /// The verdict is the same anywhere within `offset_s ± uncertainty_s`.
    pub certain: bool,
}

/// The overall answer of `clock-compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClockVerdict {
    /// The clocks differ by no more than the tolerance.
    InSync,
    /// The clocks differ by more than the tolerance: Kerberos and CredSSP refuse to sign
    /// in (errors 0x904 with extended codes 7431 or 6919).
    Skewed,
    /// The host's clock could not be read over RDP (see `unreadable`).
    CouldNotRead,
}

/// Why the host's clock could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum ClockUnreadable {
    /// The host name did not resolve.
    NotResolved { detail: String },
    /// No TCP connection could be made: `refused` is a closed port, `no-answer` a filtered
    /// one or a host that is off.
    Unreachable { state: PortState },
    /// The server answered, but not by selecting CredSSP: it does not offer NLA, so its clock
    /// cannot be read this way. `selected` is what it chose instead when offered TLS or
    /// CredSSP; `failure` is the RDP_NEG_FAILURE it answered to CredSSP alone.
    CredsspNotOffered {
        selected: Option<Protocol>,
        failure: Option<FailureCode>,
    },
    /// The negotiation got no RDP answer (closed, no reply, not RDP).
    NegotiationFailed { detail: String },
    /// The TLS handshake before CredSSP failed.
    TlsFailed { detail: String },
    /// The server closed the connection or said nothing after the client's TSRequest.
    NoCredsspAnswer { detail: String },
    /// The server answered the TSRequest with an error code and no token.
    CredsspError { code: u32, name: Option<String> },
    /// The answer could not be read: not a TSRequest, or a token that is not an NTLM
    /// CHALLENGE_MESSAGE (e.g. Kerberos), or a malformed challenge.
    NoChallenge { detail: String },
    /// The challenge has no MsvAvTimestamp (servers older than Windows Vista / 2008).
    NoTimestamp,
}

impl ClockUnreadable {
    /// One sentence for a person.
    pub fn explanation(&self) -> String {
        match self {
            ClockUnreadable::NotResolved { detail } => {
                format!("The host's clock could not be read: the name did not resolve ({detail}).")
            }
            ClockUnreadable::Unreachable { state } => {
                let how = match state {
                    PortState::Refused => "the port is closed (connection refused)",
                    PortState::NoAnswer => "the port does not answer (filtered, or the host is off)",
                    PortState::Unreachable => "the network reports the host unreachable",
                    _ => "no TCP connection could be made",
                };
                format!("The host's clock could not be read: {how}.")
            }
            ClockUnreadable::CredsspNotOffered { selected, failure } => {
                let mut s = String::from(
                    "The host's clock could not be read over RDP: the server does not offer CredSSP (NLA)",
                );
                if let Some(p) = selected {
                    s.push_str(&format!("; offered TLS or CredSSP it selected {p}"));
                }
                if let Some(f) = failure {
                    s.push_str(&format!("; asked for CredSSP alone it answered {f}"));
                }
                s.push('.');
                s
            }
            ClockUnreadable::NegotiationFailed { detail } => {
                format!("The host's clock could not be read: the RDP negotiation failed ({detail}).")
            }
            ClockUnreadable::TlsFailed { detail } => {
                format!("The host's clock could not be read: the TLS handshake failed ({detail}).")
            }
            ClockUnreadable::NoCredsspAnswer { detail } => {
                format!("The host's clock could not be read: no CredSSP answer ({detail}).")
            }
            ClockUnreadable::CredsspError { code, name } => format!(
                "The host's clock could not be read: the server answered CredSSP with error {code:#010x}{}.",
                name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
            ),
            ClockUnreadable::NoChallenge { detail } => {
                format!("The host's clock could not be read: no NTLM challenge in its answer ({detail}).")
            }
            ClockUnreadable::NoTimestamp => {
                "The host's clock could not be read: its NTLM challenge carries no timestamp.".to_owned()
            }
        }
    }
}
