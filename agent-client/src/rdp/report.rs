//! The data the RDP probes report, and their options: plain serde types with no dependency
//! beyond `serde`, the crate's `target` and `wire` types and the names in [`super::x224`]
//! (which needs only `serde` and `thiserror`). Nothing here does I/O or cryptography, so
//! these types can be used (or moved) where the probes themselves are not compiled, e.g. in
//! wire types that the portal deserialises without the `checks` feature.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::x224::{FailureCode, NegRspFlag, Protocol, ProtocolSet};
use crate::target::CheckTarget;
use crate::wire::{ConnectAttempt, PortState};

// ---------------------------------------------------------------------------------------
// rdp-negotiate

/// What to ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NegotiateOptions {
    /// The `mstshash` cookie to send (2.2.1.1), if any. Servers ignore it; load balancers
    /// and RD Connection Broker may route on it.
    pub cookie: Option<String>,
    /// The protocol sets to ask for, one connection each, in this order.
    pub requests: Vec<ProtocolSet>,
}

impl Default for NegotiateOptions {
    fn default() -> Self {
        NegotiateOptions {
            cookie: None,
            requests: vec![
                ProtocolSet::RDP,
                ProtocolSet::SSL,
                ProtocolSet::SSL_HYBRID,
                ProtocolSet::SSL_HYBRID_EX,
            ],
        }
    }
}

/// Result of `rdp-negotiate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RdpNegotiateReport {
    pub target: CheckTarget,
    /// Why the name did not resolve, when it did not.
    pub resolution_error: Option<String>,
    /// The TCP connection attempts made to find an address that answers.
    pub connect: Vec<ConnectAttempt>,
    /// The address every request went to.
    pub address: Option<SocketAddr>,
    pub cookie: Option<String>,
    /// One per requested protocol set.
    pub attempts: Vec<NegotiationAttempt>,
    pub summary: NegotiationSummary,
    pub verdict: NegotiateVerdict,
    pub elapsed_ms: f64,
}

/// One Connection Request on its own connection, and what came back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NegotiationAttempt {
    /// `requestedProtocols`, by name (`["PROTOCOL_RDP"]` for Standard RDP Security only).
    pub requested: ProtocolSet,
    pub elapsed_ms: f64,
    pub outcome: NegotiationOutcome,
}

/// What the server did with one Connection Request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum NegotiationOutcome {
    /// RDP_NEG_RSP: the server selected `protocol`.
    Selected {
        protocol: Protocol,
        /// The raw flags byte.
        flags: u8,
        flag_names: Vec<NegRspFlag>,
    },
    /// RDP_NEG_FAILURE with its code.
    Failure { code: FailureCode, meaning: String },
    /// A Connection Confirm without negotiation data: a server older than RDP 5.2, using
    /// Standard RDP Security.
    NoNegotiationData,
    /// The TCP connection itself failed.
    ConnectFailed {
        state: PortState,
        detail: Option<String>,
    },
    /// The connection opened but no complete reply came before the timeout.
    NoReply {
        received: usize,
        first_bytes: String,
    },
    /// The server closed (or reset) the connection before a complete reply.
    Closed {
        received: usize,
        first_bytes: String,
        reset: bool,
    },
    /// Something answered, but not with a valid Connection Confirm.
    Unexpected { what: String, first_bytes: String },
    /// Another socket error.
    Error { detail: String },
}

impl NegotiationOutcome {
    /// The protocol selected, counting a confirm without negotiation data as Standard RDP.
    pub fn selected(&self) -> Option<Protocol> {
        match self {
            NegotiationOutcome::Selected { protocol, .. } => Some(*protocol),
            NegotiationOutcome::NoNegotiationData => Some(Protocol::Rdp),
            _ => None,
        }
    }

    /// True when the server gave an RDP answer (a selection or a failure code).
    pub fn answered(&self) -> bool {
        matches!(
            self,
            NegotiationOutcome::Selected { .. }
                | NegotiationOutcome::Failure { .. }
                | NegotiationOutcome::NoNegotiationData
        )
    }
}

/// What the answers add up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NegotiationSummary {
    /// Every protocol the server selected for some request.
    pub accepted: Vec<Protocol>,
    /// Every failure code the server answered with, first seen first.
    pub failures: Vec<FailureCode>,
    /// What the server selected for the widest request it answered with a selection: its
    /// preference among what a modern client offers.
    pub preferred: Option<Protocol>,
    /// Standard RDP Security (asked alone).
    pub standard_rdp: Support,
    /// TLS.
    pub tls: Support,
    /// CredSSP (PROTOCOL_HYBRID or PROTOCOL_HYBRID_EX): Network Level Authentication.
    pub credssp: Support,
    /// The server answered HYBRID_REQUIRED_BY_SERVER: clients without NLA cannot connect.
    pub nla_required: bool,
    /// The server answered SSL_REQUIRED_BY_SERVER: clients limited to Standard RDP Security
    /// cannot connect.
    pub tls_required: bool,
    /// Requests that got no RDP answer at all (closed, timed out, garbage).
    pub unanswered: usize,
}

/// What the server did with a protocol over all requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Support {
    /// Selected for at least one request.
    Accepted,
    /// A request offering it got a failure code, or a selection of something not offered.
    Refused,
    /// Offered along with others, the server always chose another.
    NotChosen,
    /// No answered request offered it.
    Unknown,
}

/// The overall answer of `rdp-negotiate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NegotiateVerdict {
    /// The server selects TLS or CredSSP (Enhanced RDP Security): the usual, working state.
    EnhancedSecurity,
    /// The server has no certificate it can use (SSL_CERT_NOT_ON_SERVER) and accepts no TLS
    /// or CredSSP: the Remote Desktop certificate is missing or unreadable.
    CertificateMissing,
    /// The server only does Standard RDP Security (or predates negotiation).
    StandardRdpOnly,
    /// Every request was answered with a failure code.
    Refused,
    /// Something other than an RDP server answered.
    NotRdp,
    /// TCP connected, then the server closed the connection without answering: the
    /// listener is broken or another program holds the port (the 0x904 signature).
    ConnectionClosed,
    /// TCP connected but nothing answered the request in time.
    NoReply,
    /// No TCP connection could be made.
    Unreachable,
    /// The host name did not resolve.
    NotResolved,
}

impl NegotiateVerdict {
    /// One sentence for a person.
    pub fn explanation(self) -> &'static str {
        match self {
            NegotiateVerdict::EnhancedSecurity => "The server negotiates TLS or CredSSP (Enhanced RDP Security).",
            NegotiateVerdict::CertificateMissing => {
                "The server has no usable certificate (SSL_CERT_NOT_ON_SERVER), so TLS and NLA connections fail."
            }
            NegotiateVerdict::StandardRdpOnly => {
                "The server only offers Standard RDP Security; clients that require TLS or NLA cannot connect."
            }
            NegotiateVerdict::Refused => "The server refused every protocol set offered.",
            NegotiateVerdict::NotRdp => "Something that is not an RDP server answered on this port.",
            NegotiateVerdict::ConnectionClosed => {
                "The port accepts TCP connections but the server closes them without an RDP answer."
            }
            NegotiateVerdict::NoReply => "The port accepts TCP connections but nothing answers the RDP request.",
            NegotiateVerdict::Unreachable => "No TCP connection to the port could be made.",
            NegotiateVerdict::NotResolved => "The host name did not resolve.",
        }
    }
}

// ---------------------------------------------------------------------------------------
// rdp-tls

/// What to ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsOptions {
    /// The `mstshash` cookie to send, if any.
    pub cookie: Option<String>,
    /// The protocols to request before the handshake. The default is what mstsc asks for
    /// (SSL|HYBRID|HYBRID_EX): the server then selects TLS or CredSSP, both of which begin
    /// with the TLS handshake.
    pub requested: ProtocolSet,
    /// Whether to find which TLS versions the server accepts (four more connections).
    pub probe_versions: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            cookie: None,
            requested: ProtocolSet::SSL_HYBRID_EX,
            probe_versions: true,
        }
    }
}

/// Result of `rdp-tls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RdpTlsReport {
    pub target: CheckTarget,
    pub resolution_error: Option<String>,
    pub connect: Vec<ConnectAttempt>,
    pub address: Option<SocketAddr>,
    /// The negotiation on the connection the handshake used (absent when no TCP
    /// connection could be made).
    pub negotiation: Option<NegotiationAttempt>,
    pub handshake: TlsHandshake,
    /// The server's (leaf) certificate.
    pub certificate: Option<CertificateReport>,
    /// Where the certificate was read: the main handshake, or (when that failed) the clear
    /// text of a TLS 1.0-1.2 handshake started with the raw ClientHello.
    pub certificate_source: Option<ProbeMethod>,
    /// Why the certificate the server sent could not be read.
    pub certificate_error: Option<String>,
    /// Every certificate the server sent, leaf first.
    pub chain: Vec<ChainEntry>,
    /// One per TLS version probed, oldest first (empty when not asked for).
    pub versions: Vec<TlsVersionProbe>,
    /// The versions the server accepted, oldest first.
    pub accepted_versions: Vec<TlsVersion>,
    /// Everything worth fixing or knowing, most serious first.
    pub problems: Vec<TlsProblem>,
    pub verdict: TlsVerdict,
    pub elapsed_ms: f64,
}

/// The TLS handshake on the negotiated connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsHandshake {
    pub outcome: HandshakeOutcome,
    pub elapsed_ms: f64,
}

/// How a TLS handshake ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum HandshakeOutcome {
    Established {
        version: TlsVersion,
        /// IANA name, e.g. `TLS_AES_256_GCM_SHA384`.
        cipher_suite: String,
        /// Whether the server's handshake signature verifies with the certificate's key,
        /// i.e. whether the server holds the private key of the certificate it sent.
        server_signature: SignatureCheck,
    },
    /// The server answered the ClientHello with plaintext RDP: its certificate or private
    /// key is broken (missing, unreadable, not matching, or too weak for its TLS library).
    PlaintextDisconnect { pdu: String, first_bytes: String },
    /// The server sent a TLS alert.
    Alert { alert: String },
    /// The server closed (or reset) the connection during the handshake.
    Closed { received: usize, reset: bool },
    /// Nothing (more) came before the timeout.
    NoReply { received: usize },
    /// The server answered with bytes that are neither TLS nor RDP.
    NotTls { what: String, first_bytes: String },
    /// The handshake failed in another way (TLS error on our side, socket error).
    Failed { detail: String },
    /// No handshake was tried because the negotiation did not select a TLS-based protocol.
    NotAttempted { reason: String },
}

/// The server's handshake signature against the certificate's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureCheck {
    Verified,
    /// The signature does not verify: the server does not hold the certificate's key.
    Invalid,
    /// The scheme or key cannot be checked here (e.g. RSA keys under 2048 bits).
    Unsupported,
    /// The handshake carried no server signature to check.
    NotChecked,
}

/// How a version was probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeMethod {
    /// rustls, limited to the one version.
    Rustls,
    /// A hand-made ClientHello offering only that version; the answer is read up to the
    /// certificate and the connection dropped.
    RawClientHello,
}

/// Whether the server accepts one TLS version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsVersionProbe {
    pub version: TlsVersion,
    pub method: ProbeMethod,
    pub result: VersionResult,
    pub elapsed_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum VersionResult {
    Accepted {
        cipher_suite: String,
        /// Set when only the raw ClientHello got an answer: the server accepts this version
        /// only with cipher suites that rustls does not implement.
        note: Option<String>,
    },
    /// The server refused with a TLS alert (named) or rustls gave up on its answer.
    Refused {
        reason: String,
    },
    /// The server answered with another version (TLS 1.0-1.2 downgrade).
    OtherVersion {
        answered: TlsVersion,
    },
    PlaintextDisconnect {
        pdu: String,
    },
    Closed {
        received: usize,
    },
    NoReply,
    NotTls {
        first_bytes: String,
    },
    Failed {
        detail: String,
    },
    /// The fresh negotiation on this connection did not select a TLS-based protocol.
    NotTested {
        reason: String,
    },
}

impl VersionResult {
    pub fn accepted(&self) -> bool {
        matches!(self, VersionResult::Accepted { .. })
    }
}

/// A finding worth reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsProblem {
    PlaintextDisconnect,
    ServerSignatureInvalid,
    CertificateUnreadable,
    HandshakeFailed,
    NoModernTls,
    CertificateExpired,
    CertificateNotYetValid,
    NameMismatch,
    SelfSigned,
    WeakKey,
    /// The certificate lists extended key usages, none of them server authentication.
    NoServerAuthUsage,
    /// TLS 1.0 or 1.1 is accepted (deprecated, RFC 8996).
    LegacyTlsAccepted,
    /// TLS 1.2 works only with cipher suites outside current recommendations (RSA key
    /// exchange, CBC), and TLS 1.3 is not offered.
    LegacyCipherSuitesOnly,
}

/// The overall answer of `rdp-tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsVerdict {
    /// The handshake works, the certificate is in date, names the host and is not
    /// self-signed (whether clients trust its issuer is not checked here).
    Ok,
    /// Works, but the certificate is self-signed: clients warn unless they trust it.
    SelfSigned,
    /// The certificate does not name the host asked for.
    NameMismatch,
    CertificateNotYetValid,
    CertificateExpired,
    /// The handshake fails with TLS 1.2 and 1.3, while TLS 1.0 or 1.1 works.
    OnlyLegacyTls,
    /// The handshake failed for another reason (see `handshake`).
    HandshakeFailed,
    /// The server's certificate or private key is broken: it answered TLS with a
    /// plaintext disconnect, signed with a key that is not the certificate's, or sent a
    /// certificate that cannot be read.
    CertificateOrKeyBroken,
    /// The server has no certificate it can use (SSL_CERT_NOT_ON_SERVER).
    CertificateMissing,
    /// The server does not offer TLS (Standard RDP Security only).
    TlsNotOffered,
    /// The negotiation before TLS failed (see `negotiation`).
    NegotiationFailed,
    Unreachable,
    NotResolved,
}

impl TlsVerdict {
    /// One sentence for a person.
    pub fn explanation(self) -> &'static str {
        match self {
            TlsVerdict::Ok => "TLS works and the certificate is in date and names this computer.",
            TlsVerdict::SelfSigned => "TLS works with a self-signed certificate; clients warn unless they trust it.",
            TlsVerdict::NameMismatch => "The certificate does not name the computer as it was asked for.",
            TlsVerdict::CertificateNotYetValid => "The certificate is not valid yet (check both clocks).",
            TlsVerdict::CertificateExpired => "The certificate has expired.",
            TlsVerdict::OnlyLegacyTls => "The server only accepts TLS 1.0 or 1.1, which current clients refuse.",
            TlsVerdict::HandshakeFailed => "The TLS handshake failed.",
            TlsVerdict::CertificateOrKeyBroken => {
                "The host's certificate or private key is broken: the server cannot complete TLS with it."
            }
            TlsVerdict::CertificateMissing => "The server has no usable certificate for TLS.",
            TlsVerdict::TlsNotOffered => "The server does not offer TLS (Standard RDP Security only).",
            TlsVerdict::NegotiationFailed => "The RDP negotiation before TLS failed.",
            TlsVerdict::Unreachable => "No TCP connection to the port could be made.",
            TlsVerdict::NotResolved => "The host name did not resolve.",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Certificates

/// The fields of one certificate that matter for a Remote Desktop connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateReport {
    /// Subject distinguished name, e.g. `CN=pc-0423.corp.example.com`.
    pub subject: String,
    pub subject_common_name: Option<String>,
    pub issuer: String,
    /// Serial number, hex bytes separated by colons.
    pub serial: String,
    /// RFC 3339, UTC, e.g. `2021-01-01T00:00:00Z`.
    pub not_before: String,
    /// RFC 3339, UTC.
    pub not_after: String,
    /// Against this computer's clock when the probe ran.
    pub validity: Validity,
    /// Whole days until `not_after` (negative once expired).
    pub days_until_expiry: i64,
    /// DNS names in the subject alternative name extension.
    pub dns_names: Vec<String>,
    /// IP addresses in the subject alternative name extension.
    pub ip_addresses: Vec<IpAddr>,
    /// Subject equals issuer and the signature verifies with the certificate's own key (or,
    /// when the signature algorithm cannot be checked here, subject equals issuer).
    pub self_signed: bool,
    /// How `self_signed` was decided.
    pub self_signature: SelfSignature,
    pub name_match: NameMatch,
    pub public_key: PublicKeyInfo,
    /// e.g. `sha256WithRSAEncryption`.
    pub signature_algorithm: String,
    /// Extended key usages, by name where known (`server-auth`, `client-auth`,
    /// `remote-desktop-auth`), else by OID; empty when the extension is absent (any usage).
    pub extended_key_usage: Vec<String>,
    /// SHA-1 of the DER certificate in upper-case hex without separators: the form of the
    /// Windows thumbprint and of `SSLCertificateSHA1Hash`.
    pub sha1_thumbprint: String,
    pub sha256_fingerprint: String,
}

/// The certificate's dates against the local clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Validity {
    Valid,
    Expired,
    NotYetValid,
}

/// How self-signedness was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelfSignature {
    /// Subject equals issuer and the signature verifies with the certificate's own key.
    Verified,
    /// Subject equals issuer, but the signature does not verify with the certificate's own
    /// key: issued by another key that uses the same name.
    Invalid,
    /// Subject equals issuer; the signature algorithm or key cannot be checked here.
    NamesOnly,
    /// Subject and issuer differ: issued by someone else.
    NotSelfIssued,
}

/// The certificate's names against the host name the probe was asked to reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameMatch {
    /// The name or address asked for.
    pub asked: String,
    pub matched: bool,
    /// Which certificate field matched.
    pub matched_by: Option<NameSource>,
    /// The entry that matched, e.g. `*.corp.example.com`.
    pub matched_entry: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameSource {
    DnsSan,
    IpSan,
    /// The subject common name, consulted only when there is no DNS name in the alternative
    /// names (RFC 6125 6.4.4), which is how Windows' self-signed RDP certificates are made.
    SubjectCn,
}

/// The certificate's public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyInfo {
    /// `RSA`, `EC`, `Ed25519`, `Ed448`, `DSA`, or the algorithm OID.
    pub algorithm: String,
    /// Key size in bits (RSA modulus, curve size), when known.
    pub bits: Option<u32>,
    /// The named curve of an EC key, e.g. `P-256`.
    pub curve: Option<String>,
}

impl PublicKeyInfo {
    /// Keys that current clients and servers refuse or warn about: RSA under 2048 bits.
    pub fn is_weak(&self) -> bool {
        self.algorithm == "RSA" && self.bits.is_some_and(|b| b < 2048)
    }
}

/// A short line for each certificate of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainEntry {
    pub subject: String,
    pub issuer: String,
    pub sha256_fingerprint: String,
}

// ---------------------------------------------------------------------------------------
// TLS versions

/// A TLS protocol version, serialised as `"TLSv1.2"` and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsVersion {
    Ssl3,
    Tls10,
    Tls11,
    Tls12,
    Tls13,
    Unknown(u16),
}

impl TlsVersion {
    /// The four versions a probe tries, oldest first.
    pub const PROBED: [TlsVersion; 4] = [
        TlsVersion::Tls10,
        TlsVersion::Tls11,
        TlsVersion::Tls12,
        TlsVersion::Tls13,
    ];

    pub fn from_wire(value: u16) -> Self {
        match value {
            0x0300 => TlsVersion::Ssl3,
            0x0301 => TlsVersion::Tls10,
            0x0302 => TlsVersion::Tls11,
            0x0303 => TlsVersion::Tls12,
            0x0304 => TlsVersion::Tls13,
            other => TlsVersion::Unknown(other),
        }
    }

    pub fn wire(self) -> u16 {
        match self {
            TlsVersion::Ssl3 => 0x0300,
            TlsVersion::Tls10 => 0x0301,
            TlsVersion::Tls11 => 0x0302,
            TlsVersion::Tls12 => 0x0303,
            TlsVersion::Tls13 => 0x0304,
            TlsVersion::Unknown(v) => v,
        }
    }

    pub fn name(self) -> String {
        match self {
            TlsVersion::Ssl3 => "SSLv3".to_owned(),
            TlsVersion::Tls10 => "TLSv1.0".to_owned(),
            TlsVersion::Tls11 => "TLSv1.1".to_owned(),
            TlsVersion::Tls12 => "TLSv1.2".to_owned(),
            TlsVersion::Tls13 => "TLSv1.3".to_owned(),
            TlsVersion::Unknown(v) => format!("UNKNOWN_{v:#06x}"),
        }
    }

    /// TLS 1.0 and 1.1 (and SSL 3): deprecated by RFC 8996.
    pub fn is_legacy(self) -> bool {
        matches!(
            self,
            TlsVersion::Ssl3 | TlsVersion::Tls10 | TlsVersion::Tls11
        )
    }

    fn parse_name(name: &str) -> Option<Self> {
        Some(match name {
            "SSLv3" => TlsVersion::Ssl3,
            "TLSv1.0" => TlsVersion::Tls10,
            "TLSv1.1" => TlsVersion::Tls11,
            "TLSv1.2" => TlsVersion::Tls12,
            "TLSv1.3" => TlsVersion::Tls13,
            other => TlsVersion::from_wire(
                u16::from_str_radix(other.strip_prefix("UNKNOWN_0x")?, 16).ok()?,
            ),
        })
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for TlsVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        TlsVersion::parse_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown TLS version {name:?}")))
    }
}
