//! The first RDP exchange, encoded and parsed by hand from the specification: the client
//! X.224 Connection Request with its RDP Negotiation Request (MS-RDPBCGR 2.2.1.1), and the
//! server X.224 Connection Confirm with an RDP Negotiation Response or Failure (2.2.1.2),
//! both inside a TPKT header (T.123 section 8). Pure functions, no I/O.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// TPKT version byte (T.123 section 8).
pub const TPKT_VERSION: u8 = 3;
/// Length of a TPKT header.
pub const TPKT_HEADER_LEN: usize = 4;
/// Largest Connection Confirm this parser accepts. A real one is 11 or 19 bytes; anything
/// much larger is not a Connection Confirm, and the length is bounded before reading it.
pub const MAX_CONFIRM_LEN: usize = 512;

/// X.224 TPDU codes (high nibble of the code byte, X.224 section 13).
pub const TPDU_CONNECTION_REQUEST: u8 = 0xE0;
pub const TPDU_CONNECTION_CONFIRM: u8 = 0xD0;
pub const TPDU_DISCONNECT_REQUEST: u8 = 0x80;
pub const TPDU_DATA: u8 = 0xF0;
pub const TPDU_ERROR: u8 = 0x70;

/// RDP negotiation structure types (2.2.1.1.1, 2.2.1.2.1, 2.2.1.2.2).
pub const TYPE_RDP_NEG_REQ: u8 = 0x01;
pub const TYPE_RDP_NEG_RSP: u8 = 0x02;
pub const TYPE_RDP_NEG_FAILURE: u8 = 0x03;

/// The longest `mstshash` cookie value this client sends (the spec sets no limit; Windows
/// truncates the user name it puts there to 9 characters).
pub const MAX_COOKIE_LEN: usize = 64;

/// A security protocol identifier (the `selectedProtocol` values of 2.2.1.2.1).
/// It serialises as the specification's name, e.g. `"PROTOCOL_SSL"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// Standard RDP Security (5.3).
    Rdp,
    /// TLS (5.4.5.1).
    Ssl,
    /// CredSSP (5.4.5.2): Network Level Authentication.
    Hybrid,
    /// RDSTLS (5.4.5.3).
    Rdstls,
    /// CredSSP with the Early User Authorization Result PDU (2.2.10.2).
    HybridEx,
    /// RDS-AAD-Auth (5.4.5.4).
    Rdsaad,
    /// A value the specification does not define.
    Unknown(u32),
}

impl Protocol {
    pub const PROTOCOL_RDP: u32 = 0x0000_0000;
    pub const PROTOCOL_SSL: u32 = 0x0000_0001;
    pub const PROTOCOL_HYBRID: u32 = 0x0000_0002;
    pub const PROTOCOL_RDSTLS: u32 = 0x0000_0004;
    pub const PROTOCOL_HYBRID_EX: u32 = 0x0000_0008;
    pub const PROTOCOL_RDSAAD: u32 = 0x0000_0010;

    /// The protocols that are bits of `requestedProtocols`, lowest bit first.
    pub const FLAGS: [Protocol; 5] = [
        Protocol::Ssl,
        Protocol::Hybrid,
        Protocol::Rdstls,
        Protocol::HybridEx,
        Protocol::Rdsaad,
    ];

    pub fn from_value(value: u32) -> Self {
        match value {
            Self::PROTOCOL_RDP => Protocol::Rdp,
            Self::PROTOCOL_SSL => Protocol::Ssl,
            Self::PROTOCOL_HYBRID => Protocol::Hybrid,
            Self::PROTOCOL_RDSTLS => Protocol::Rdstls,
            Self::PROTOCOL_HYBRID_EX => Protocol::HybridEx,
            Self::PROTOCOL_RDSAAD => Protocol::Rdsaad,
            other => Protocol::Unknown(other),
        }
    }

    pub fn value(self) -> u32 {
        match self {
            Protocol::Rdp => Self::PROTOCOL_RDP,
            Protocol::Ssl => Self::PROTOCOL_SSL,
            Protocol::Hybrid => Self::PROTOCOL_HYBRID,
            Protocol::Rdstls => Self::PROTOCOL_RDSTLS,
            Protocol::HybridEx => Self::PROTOCOL_HYBRID_EX,
            Protocol::Rdsaad => Self::PROTOCOL_RDSAAD,
            Protocol::Unknown(v) => v,
        }
    }

    /// The specification's name, or `UNKNOWN_PROTOCOL_0x…`.
    pub fn name(self) -> Cow<'static, str> {
        match self {
            Protocol::Rdp => "PROTOCOL_RDP".into(),
            Protocol::Ssl => "PROTOCOL_SSL".into(),
            Protocol::Hybrid => "PROTOCOL_HYBRID".into(),
            Protocol::Rdstls => "PROTOCOL_RDSTLS".into(),
            Protocol::HybridEx => "PROTOCOL_HYBRID_EX".into(),
            Protocol::Rdsaad => "PROTOCOL_RDSAAD".into(),
            Protocol::Unknown(v) => format!("UNKNOWN_PROTOCOL_{v:#010x}").into(),
        }
    }

    /// True for the protocols whose first step after the Connection Confirm is a TLS
    /// handshake on the same connection (TLS itself, and CredSSP, RDSTLS and RDS-AAD-Auth,
    /// which all run inside TLS).
    pub fn starts_with_tls(self) -> bool {
        matches!(
            self,
            Protocol::Ssl
                | Protocol::Hybrid
                | Protocol::HybridEx
                | Protocol::Rdstls
                | Protocol::Rdsaad
        )
    }

    /// True for CredSSP (Network Level Authentication), with or without the early result.
    pub fn is_credssp(self) -> bool {
        matches!(self, Protocol::Hybrid | Protocol::HybridEx)
    }

    fn parse_name(name: &str) -> Option<Self> {
        Some(match name {
            "PROTOCOL_RDP" => Protocol::Rdp,
            "PROTOCOL_SSL" => Protocol::Ssl,
            "PROTOCOL_HYBRID" => Protocol::Hybrid,
            "PROTOCOL_RDSTLS" => Protocol::Rdstls,
            "PROTOCOL_HYBRID_EX" => Protocol::HybridEx,
            "PROTOCOL_RDSAAD" => Protocol::Rdsaad,
            other => {
                let hex = other.strip_prefix("UNKNOWN_PROTOCOL_0x")?;
                Protocol::from_value(u32::from_str_radix(hex, 16).ok()?)
            }
        })
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for Protocol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Protocol::parse_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown RDP protocol name {name:?}")))
    }
}

/// The `requestedProtocols` bit field of an RDP Negotiation Request (2.2.1.1.1). Zero means
/// Standard RDP Security only. It serialises as the list of protocol names, `PROTOCOL_RDP`
/// alone for zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtocolSet(pub u32);

impl ProtocolSet {
    /// Standard RDP Security only.
    pub const RDP: ProtocolSet = ProtocolSet(0);
    /// TLS only.
    pub const SSL: ProtocolSet = ProtocolSet(Protocol::PROTOCOL_SSL);
    /// TLS or CredSSP, what a client that supports NLA but not the early result asks for.
    pub const SSL_HYBRID: ProtocolSet =
        ProtocolSet(Protocol::PROTOCOL_SSL | Protocol::PROTOCOL_HYBRID);
    /// TLS, CredSSP or CredSSP with the early result: what mstsc asks for by default.
    pub const SSL_HYBRID_EX: ProtocolSet = ProtocolSet(
        Protocol::PROTOCOL_SSL | Protocol::PROTOCOL_HYBRID | Protocol::PROTOCOL_HYBRID_EX,
    );

    pub fn of(protocols: &[Protocol]) -> Self {
        ProtocolSet(protocols.iter().fold(0, |acc, p| acc | p.value()))
    }

    /// The protocols in the set, `[PROTOCOL_RDP]` for the empty set; bits the specification
    /// does not define come last, one `Unknown` each.
    pub fn protocols(self) -> Vec<Protocol> {
        if self.0 == 0 {
            return vec![Protocol::Rdp];
        }
        let mut out = Vec::new();
        for bit in 0..32 {
            let value = 1u32 << bit;
            if self.0 & value != 0 {
                out.push(Protocol::from_value(value));
            }
        }
        out
    }

    /// Whether a request with this set offers `protocol` (Standard RDP only for the empty set).
    pub fn offers(self, protocol: Protocol) -> bool {
        match protocol {
            Protocol::Rdp => self.0 == 0,
            other => self.0 & other.value() != 0,
        }
    }
}

impl fmt::Display for ProtocolSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.protocols().iter().map(|p| p.name()).collect();
        f.write_str(&names.join("|"))
    }
}

impl Serialize for ProtocolSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.protocols().serialize(s)
    }
}

impl<'de> Deserialize<'de> for ProtocolSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let protocols = Vec::<Protocol>::deserialize(d)?;
        Ok(ProtocolSet::of(&protocols))
    }
}

/// The `failureCode` of an RDP Negotiation Failure (2.2.1.2.2), serialised by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCode {
    SslRequiredByServer,
    SslNotAllowedByServer,
    SslCertNotOnServer,
    InconsistentFlags,
    HybridRequiredByServer,
    SslWithUserAuthRequiredByServer,
    Unknown(u32),
}

impl FailureCode {
    pub fn from_value(value: u32) -> Self {
        match value {
            1 => FailureCode::SslRequiredByServer,
            2 => FailureCode::SslNotAllowedByServer,
            3 => FailureCode::SslCertNotOnServer,
            4 => FailureCode::InconsistentFlags,
            5 => FailureCode::HybridRequiredByServer,
            6 => FailureCode::SslWithUserAuthRequiredByServer,
            other => FailureCode::Unknown(other),
        }
    }

    pub fn value(self) -> u32 {
        match self {
            FailureCode::SslRequiredByServer => 1,
            FailureCode::SslNotAllowedByServer => 2,
            FailureCode::SslCertNotOnServer => 3,
            FailureCode::InconsistentFlags => 4,
            FailureCode::HybridRequiredByServer => 5,
            FailureCode::SslWithUserAuthRequiredByServer => 6,
            FailureCode::Unknown(v) => v,
        }
    }

    pub fn name(self) -> Cow<'static, str> {
        match self {
            FailureCode::SslRequiredByServer => "SSL_REQUIRED_BY_SERVER".into(),
            FailureCode::SslNotAllowedByServer => "SSL_NOT_ALLOWED_BY_SERVER".into(),
            FailureCode::SslCertNotOnServer => "SSL_CERT_NOT_ON_SERVER".into(),
            FailureCode::InconsistentFlags => "INCONSISTENT_FLAGS".into(),
            FailureCode::HybridRequiredByServer => "HYBRID_REQUIRED_BY_SERVER".into(),
            FailureCode::SslWithUserAuthRequiredByServer => {
                "SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER".into()
            }
            FailureCode::Unknown(v) => format!("UNKNOWN_FAILURE_{v:#010x}").into(),
        }
    }

    /// What the code means, in one sentence for a person (after 2.2.1.2.2).
    pub fn meaning(self) -> &'static str {
        match self {
            FailureCode::SslRequiredByServer => {
                "The server requires TLS or CredSSP (Enhanced RDP Security) and refuses Standard RDP Security."
            }
            FailureCode::SslNotAllowedByServer => {
                "The server is configured for Standard RDP Security only and refuses TLS and CredSSP."
            }
            FailureCode::SslCertNotOnServer => {
                "The server has no usable certificate, so it cannot start TLS."
            }
            FailureCode::InconsistentFlags => {
                "The requested protocols are inconsistent with the security already in effect."
            }
            FailureCode::HybridRequiredByServer => {
                "The server requires CredSSP (Network Level Authentication)."
            }
            FailureCode::SslWithUserAuthRequiredByServer => {
                "The server requires TLS with user authentication."
            }
            FailureCode::Unknown(_) => "A failure code the specification does not define.",
        }
    }

    fn parse_name(name: &str) -> Option<Self> {
        Some(match name {
            "SSL_REQUIRED_BY_SERVER" => FailureCode::SslRequiredByServer,
            "SSL_NOT_ALLOWED_BY_SERVER" => FailureCode::SslNotAllowedByServer,
            "SSL_CERT_NOT_ON_SERVER" => FailureCode::SslCertNotOnServer,
            "INCONSISTENT_FLAGS" => FailureCode::InconsistentFlags,
            "HYBRID_REQUIRED_BY_SERVER" => FailureCode::HybridRequiredByServer,
            "SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER" => FailureCode::SslWithUserAuthRequiredByServer,
            other => {
                let hex = other.strip_prefix("UNKNOWN_FAILURE_0x")?;
                FailureCode::from_value(u32::from_str_radix(hex, 16).ok()?)
            }
        })
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for FailureCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for FailureCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        FailureCode::parse_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown RDP failure code {name:?}")))
    }
}

/// The flags of an RDP Negotiation Response (2.2.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NegRspFlag {
    ExtendedClientDataSupported,
    DynvcGfxProtocolSupported,
    NegrspFlagReserved,
    RestrictedAdminModeSupported,
    RedirectedAuthenticationModeSupported,
}

impl NegRspFlag {
    pub const ALL: [(u8, NegRspFlag); 5] = [
        (0x01, NegRspFlag::ExtendedClientDataSupported),
        (0x02, NegRspFlag::DynvcGfxProtocolSupported),
        (0x04, NegRspFlag::NegrspFlagReserved),
        (0x08, NegRspFlag::RestrictedAdminModeSupported),
        (0x10, NegRspFlag::RedirectedAuthenticationModeSupported),
    ];

    /// The defined flags set in `flags` (undefined bits are left out; keep the raw byte).
    pub fn decode(flags: u8) -> Vec<NegRspFlag> {
        Self::ALL
            .iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|(_, flag)| *flag)
            .collect()
    }
}

/// A client X.224 Connection Request carrying an RDP Negotiation Request (2.2.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRequest {
    /// The `mstshash` value of the optional `Cookie: mstshash=…` line.
    pub cookie: Option<String>,
    /// `requestedProtocols`.
    pub requested: ProtocolSet,
    /// RDP_NEG_REQ flags (RESTRICTED_ADMIN_MODE_REQUIRED etc.); zero for a probe.
    pub flags: u8,
}

/// Why a cookie cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    #[error("the mstshash cookie is longer than {MAX_COOKIE_LEN} characters")]
    TooLong,
    #[error("the mstshash cookie may hold printable ASCII only, without spaces")]
    InvalidCharacter,
}

/// Checks a cookie value: printable ASCII without spaces (so it cannot end the line early),
/// at most [`MAX_COOKIE_LEN`] characters.
pub fn validate_cookie(cookie: &str) -> Result<(), CookieError> {
    if cookie.len() > MAX_COOKIE_LEN {
        return Err(CookieError::TooLong);
    }
    if !cookie.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CookieError::InvalidCharacter);
    }
    Ok(())
}

impl ConnectionRequest {
    pub fn new(requested: ProtocolSet, cookie: Option<&str>) -> Result<Self, CookieError> {
        if let Some(cookie) = cookie {
            validate_cookie(cookie)?;
        }
        Ok(ConnectionRequest {
            cookie: cookie.map(str::to_owned),
            requested,
            flags: 0,
        })
    }

    /// The bytes on the wire: TPKT header, X.224 CR TPDU (DST-REF, SRC-REF and class 0),
    /// the cookie line if any, and the 8-byte RDP_NEG_REQ.
    pub fn encode(&self) -> Vec<u8> {
        let cookie_line = self
            .cookie
            .as_ref()
            .map(|c| format!("Cookie: mstshash={c}\r\n"))
            .unwrap_or_default();
        // Length indicator: the TPDU header after the LI byte itself (6 fixed bytes), plus
        // the variable part (cookie and negotiation request).
        let li = 6 + cookie_line.len() + 8;
        let total = TPKT_HEADER_LEN + 1 + li;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&[TPKT_VERSION, 0]);
        out.extend_from_slice(&(total as u16).to_be_bytes());
        out.push(li as u8);
        out.push(TPDU_CONNECTION_REQUEST);
        out.extend_from_slice(&[0, 0, 0, 0, 0]); // DST-REF, SRC-REF, class and options
        out.extend_from_slice(cookie_line.as_bytes());
        out.push(TYPE_RDP_NEG_REQ);
        out.push(self.flags);
        out.extend_from_slice(&8u16.to_le_bytes());
        out.extend_from_slice(&self.requested.0.to_le_bytes());
        out
    }
}

/// What a well-formed X.224 Connection Confirm carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    /// RDP_NEG_RSP: the protocol the server selected, and its flags byte.
    Selected { protocol: Protocol, flags: u8 },
    /// RDP_NEG_FAILURE.
    Failure { code: FailureCode },
    /// No negotiation data: a server that predates negotiation (RDP 5.0/5.1), which means
    /// Standard RDP Security.
    NoNegotiationData,
}

/// Why the bytes received are not a usable Connection Confirm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfirmError {
    #[error("not a TPKT packet (first byte {0:#04x}, expected 0x03)")]
    NotTpkt(u8),
    #[error("the TPKT length {0} is impossible")]
    BadTpktLength(usize),
    #[error("the packet is shorter ({got} bytes) than its TPKT length ({expected})")]
    Truncated { got: usize, expected: usize },
    #[error("the X.224 length indicator {li} does not fit the {len}-byte packet")]
    BadLengthIndicator { li: usize, len: usize },
    #[error("the server answered with {0} instead of a Connection Confirm")]
    NotConfirm(String),
    #[error("the negotiation data is {0} bytes long; RDP_NEG_RSP and RDP_NEG_FAILURE are 8")]
    BadNegotiationLength(usize),
    #[error("unknown negotiation structure type {0:#04x}")]
    UnknownNegotiationType(u8),
}

/// Reads the packet length from a TPKT header, bounded by `max`.
pub fn tpkt_length(header: &[u8], max: usize) -> Result<usize, ConfirmError> {
    let first = header.first().copied().unwrap_or(0);
    if first != TPKT_VERSION || header.len() < TPKT_HEADER_LEN {
        return Err(ConfirmError::NotTpkt(first));
    }
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    // A TPKT packet carries at least the LI and code bytes of an X.224 TPDU.
    if len < TPKT_HEADER_LEN + 2 || len > max {
        return Err(ConfirmError::BadTpktLength(len));
    }
    Ok(len)
}

/// Parses a whole TPKT packet that should hold an X.224 Connection Confirm (2.2.1.2).
/// Bytes after the TPKT length are ignored.
pub fn parse_confirm(packet: &[u8]) -> Result<Confirm, ConfirmError> {
    let len = tpkt_length(packet, usize::from(u16::MAX))?;
    if packet.len() < len {
        return Err(ConfirmError::Truncated {
            got: packet.len(),
            expected: len,
        });
    }
    let tpdu = &packet[TPKT_HEADER_LEN..len];
    let li = usize::from(tpdu[0]);
    if li + 1 > tpdu.len() || li < 1 {
        return Err(ConfirmError::BadLengthIndicator { li, len });
    }
    let code = tpdu[1] & 0xF0;
    if code != TPDU_CONNECTION_CONFIRM {
        return Err(ConfirmError::NotConfirm(describe_tpkt(packet)));
    }
    // LI covers the code, DST-REF, SRC-REF and class (6 bytes), then the negotiation data.
    if li < 6 {
        return Err(ConfirmError::BadLengthIndicator { li, len });
    }
    let neg = &tpdu[7..=li];
    if neg.is_empty() {
        return Ok(Confirm::NoNegotiationData);
    }
    if neg.len() != 8 {
        return Err(ConfirmError::BadNegotiationLength(neg.len()));
    }
    let declared = usize::from(u16::from_le_bytes([neg[2], neg[3]]));
    if declared != 8 {
        return Err(ConfirmError::BadNegotiationLength(declared));
    }
    let value = u32::from_le_bytes([neg[4], neg[5], neg[6], neg[7]]);
    match neg[0] {
        TYPE_RDP_NEG_RSP => Ok(Confirm::Selected {
            protocol: Protocol::from_value(value),
            flags: neg[1],
        }),
        TYPE_RDP_NEG_FAILURE => Ok(Confirm::Failure {
            code: FailureCode::from_value(value),
        }),
        other => Err(ConfirmError::UnknownNegotiationType(other)),
    }
}

/// Names a plaintext TPKT packet for a report: which X.224 TPDU it is and, for a data TPDU,
/// the MCS PDU it carries when that is a Disconnect Provider Ultimatum (T.125 section 11.15,
/// PER-encoded as in MS-RDPBCGR 2.2.2.3), which xrdp sends when its certificate or key is
/// unusable.
pub fn describe_tpkt(packet: &[u8]) -> String {
    if packet.len() < TPKT_HEADER_LEN + 2 || packet[0] != TPKT_VERSION {
        return "bytes that are not a TPKT packet".to_owned();
    }
    let tpdu = &packet[TPKT_HEADER_LEN..];
    match tpdu[1] & 0xF0 {
        TPDU_CONNECTION_REQUEST => "an X.224 Connection Request".to_owned(),
        TPDU_CONNECTION_CONFIRM => "an X.224 Connection Confirm".to_owned(),
        TPDU_DISCONNECT_REQUEST => "an X.224 Disconnect Request".to_owned(),
        TPDU_ERROR => "an X.224 Error TPDU".to_owned(),
        TPDU_DATA => {
            let li = usize::from(tpdu[0]);
            match tpdu.get(li + 1..) {
                Some(mcs) if !mcs.is_empty() && mcs[0] >> 2 == 8 => {
                    // DomainMCSPDU choice 8: disconnectProviderUltimatum; the 3-bit reason
                    // straddles the first two bytes.
                    let reason = mcs
                        .get(1)
                        .map(|second| ((mcs[0] & 0x03) << 1) | (second >> 7))
                        .map(mcs_disconnect_reason)
                        .unwrap_or("reason missing");
                    format!("an MCS Disconnect Provider Ultimatum ({reason})")
                }
                Some(mcs) if !mcs.is_empty() => {
                    format!("an X.224 Data TPDU (MCS PDU choice {})", mcs[0] >> 2)
                }
                _ => "an empty X.224 Data TPDU".to_owned(),
            }
        }
        other => format!("an X.224 TPDU with code {other:#04x}"),
    }
}

fn mcs_disconnect_reason(reason: u8) -> &'static str {
    match reason {
        0 => "rn-domain-disconnected",
        1 => "rn-provider-initiated",
        2 => "rn-token-purged",
        3 => "rn-user-requested",
        4 => "rn-channel-purged",
        _ => "unknown reason",
    }
}

/// Lower-case hex of at most `max` bytes, with `…` when there were more.
pub fn hex_prefix(bytes: &[u8], max: usize) -> String {
    let mut out: String = bytes.iter().take(max).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn encodes_the_connection_request_of_the_specification_example() {
        // MS-RDPBCGR 4.1.1: cookie "eltons", requestedProtocols = PROTOCOL_RDP.
        let expected = hex(
            "03 00 00 2c 27 e0 00 00 00 00 00 43 6f 6f 6b 69 65 3a 20 6d 73 74 73 68 61 73 68 3d
             65 6c 74 6f 6e 73 0d 0a 01 00 08 00 00 00 00 00",
        );
        let request = ConnectionRequest::new(ProtocolSet::RDP, Some("eltons")).unwrap();
        assert_eq!(request.encode(), expected);
    }

    #[test]
    fn encodes_a_request_without_cookie_with_the_protocol_bits() {
        let request = ConnectionRequest::new(ProtocolSet::SSL_HYBRID_EX, None).unwrap();
        assert_eq!(
            request.encode(),
            hex("03 00 00 13 0e e0 00 00 00 00 00 01 00 08 00 0b 00 00 00")
        );
    }

    #[test]
    fn refuses_cookies_that_would_break_the_line() {
        assert_eq!(
            ConnectionRequest::new(ProtocolSet::RDP, Some("a\r\nb")),
            Err(CookieError::InvalidCharacter)
        );
        assert_eq!(
            ConnectionRequest::new(ProtocolSet::RDP, Some("two words")),
            Err(CookieError::InvalidCharacter)
        );
        assert_eq!(
            validate_cookie(&"x".repeat(MAX_COOKIE_LEN + 1)),
            Err(CookieError::TooLong)
        );
    }

    #[test]
    fn parses_the_negotiation_response_of_the_specification_example() {
        // The hex dump of MS-RDPBCGR 4.1.2 (SRC-REF 0x1234, class 0). Its bytes select
        // PROTOCOL_SSL (01 00 00 00), whatever the annotation of some revisions says.
        let confirm = parse_confirm(&hex(
            "03 00 00 13 0e d0 00 00 12 34 00 02 00 08 00 01 00 00 00",
        ))
        .unwrap();
        assert_eq!(
            confirm,
            Confirm::Selected {
                protocol: Protocol::Ssl,
                flags: 0
            }
        );
        // FreeRDP's shadow server with /sec:rdp, asked for PROTOCOL_RDP (captured).
        let confirm = parse_confirm(&hex(
            "03 00 00 13 0e d0 00 00 00 00 00 02 00 08 00 00 00 00 00",
        ))
        .unwrap();
        assert_eq!(
            confirm,
            Confirm::Selected {
                protocol: Protocol::Rdp,
                flags: 0
            }
        );
    }

    #[test]
    fn parses_a_selection_with_flags() {
        // xrdp with security_layer=tls, asked for PROTOCOL_SSL (captured).
        let confirm = parse_confirm(&hex(
            "03 00 00 13 0e d0 00 00 12 34 00 02 01 08 00 01 00 00 00",
        ))
        .unwrap();
        assert_eq!(
            confirm,
            Confirm::Selected {
                protocol: Protocol::Ssl,
                flags: 0x01
            }
        );
        assert_eq!(NegRspFlag::decode(0x1f).len(), 5);
        assert_eq!(
            NegRspFlag::decode(0x09),
            vec![
                NegRspFlag::ExtendedClientDataSupported,
                NegRspFlag::RestrictedAdminModeSupported
            ]
        );
        // FreeRDP's shadow server with /sec:nla, asked for SSL|HYBRID (captured).
        let confirm = parse_confirm(&hex(
            "03 00 00 13 0e d0 00 00 00 00 00 02 03 08 00 02 00 00 00",
        ))
        .unwrap();
        assert_eq!(
            confirm,
            Confirm::Selected {
                protocol: Protocol::Hybrid,
                flags: 0x03
            }
        );
    }

    #[test]
    fn parses_every_failure_code_by_name() {
        for (value, name) in [
            (1, "SSL_REQUIRED_BY_SERVER"),
            (2, "SSL_NOT_ALLOWED_BY_SERVER"),
            (3, "SSL_CERT_NOT_ON_SERVER"),
            (4, "INCONSISTENT_FLAGS"),
            (5, "HYBRID_REQUIRED_BY_SERVER"),
            (6, "SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER"),
        ] {
            let mut packet = hex("03 00 00 13 0e d0 00 00 12 34 00 03 00 08 00 00 00 00 00");
            packet[15] = value;
            let Confirm::Failure { code } = parse_confirm(&packet).unwrap() else {
                panic!("not a failure")
            };
            assert_eq!(code.name(), name);
            assert_eq!(code.value(), u32::from(value));
            assert_eq!(serde_json::to_value(code).unwrap(), name);
            let back: FailureCode = serde_json::from_value(name.into()).unwrap();
            assert_eq!(back, code);
        }
        let mut packet = hex("03 00 00 13 0e d0 00 00 12 34 00 03 00 08 00 00 00 00 00");
        packet[15] = 0x42;
        let Confirm::Failure { code } = parse_confirm(&packet).unwrap() else {
            panic!("not a failure")
        };
        assert_eq!(code, FailureCode::Unknown(0x42));
        assert_eq!(code.name(), "UNKNOWN_FAILURE_0x00000042");
        let back: FailureCode = serde_json::from_value(code.name().into()).unwrap();
        assert_eq!(back, code);
    }

    #[test]
    fn a_confirm_without_negotiation_data_is_standard_rdp() {
        let confirm = parse_confirm(&hex("03 00 00 0b 06 d0 00 00 12 34 00")).unwrap();
        assert_eq!(confirm, Confirm::NoNegotiationData);
    }

    #[test]
    fn malformed_confirms_are_errors_not_panics() {
        type Check = fn(&ConfirmError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("48 54 54 50", |e| matches!(e, ConfirmError::NotTpkt(0x48))),
            ("03 00 00 02 00 00", |e| {
                matches!(e, ConfirmError::BadTpktLength(2))
            }),
            ("03 00 00 13 0e d0 00 00", |e| {
                matches!(
                    e,
                    ConfirmError::Truncated {
                        got: 8,
                        expected: 19
                    }
                )
            }),
            ("03 00 00 07 0e d0 00", |e| {
                matches!(e, ConfirmError::BadLengthIndicator { .. })
            }),
            ("03 00 00 07 00 d0 00", |e| {
                matches!(e, ConfirmError::BadLengthIndicator { .. })
            }),
            ("03 00 00 09 03 d0 00 00 00", |e| {
                matches!(e, ConfirmError::BadLengthIndicator { .. })
            }),
            ("03 00 00 0f 0a d0 00 00 12 34 00 02 00 08 00", |e| {
                matches!(e, ConfirmError::BadNegotiationLength(4))
            }),
            (
                "03 00 00 13 0e d0 00 00 12 34 00 02 00 09 00 01 00 00 00",
                |e| matches!(e, ConfirmError::BadNegotiationLength(9)),
            ),
            (
                "03 00 00 13 0e d0 00 00 12 34 00 07 00 08 00 01 00 00 00",
                |e| matches!(e, ConfirmError::UnknownNegotiationType(7)),
            ),
            (
                "03 00 00 0b 06 80 00 00 00 00 00",
                |e| matches!(e, ConfirmError::NotConfirm(what) if what.contains("Disconnect Request")),
            ),
            ("", |e| matches!(e, ConfirmError::NotTpkt(0))),
        ];
        for (bytes, check) in cases {
            let err = parse_confirm(&hex(bytes)).unwrap_err();
            assert!(check(&err), "{bytes}: {err:?}");
        }
        // Every prefix of a valid confirm is an error, never a panic.
        let full = hex("03 00 00 13 0e d0 00 00 12 34 00 02 01 08 00 01 00 00 00");
        for cut in 0..full.len() {
            assert!(
                parse_confirm(&full[..cut]).is_err(),
                "prefix of {cut} bytes"
            );
        }
    }

    #[test]
    fn names_the_plaintext_disconnect_xrdp_sends() {
        // xrdp's answer to a ClientHello when its key does not match its certificate
        // (captured): X.224 Data TPDU carrying MCS Disconnect Provider Ultimatum.
        let packet = hex("03 00 00 09 02 f0 80 21 80");
        assert_eq!(
            describe_tpkt(&packet),
            "an MCS Disconnect Provider Ultimatum (rn-user-requested)"
        );
        assert_eq!(
            describe_tpkt(&hex("03 00 00 0b 06 80 00 00 00 00 00")),
            "an X.224 Disconnect Request"
        );
        assert_eq!(
            describe_tpkt(&hex("16 03 01")),
            "bytes that are not a TPKT packet"
        );
    }

    #[test]
    fn protocol_sets_serialise_as_spec_names() {
        assert_eq!(
            serde_json::to_value(ProtocolSet::RDP).unwrap(),
            serde_json::json!(["PROTOCOL_RDP"])
        );
        assert_eq!(
            serde_json::to_value(ProtocolSet::SSL_HYBRID_EX).unwrap(),
            serde_json::json!(["PROTOCOL_SSL", "PROTOCOL_HYBRID", "PROTOCOL_HYBRID_EX"])
        );
        let back: ProtocolSet =
            serde_json::from_value(serde_json::json!(["PROTOCOL_SSL", "PROTOCOL_HYBRID"])).unwrap();
        assert_eq!(back, ProtocolSet::SSL_HYBRID);
        assert_eq!(ProtocolSet(0x40).protocols(), vec![Protocol::Unknown(0x40)]);
        assert_eq!(
            ProtocolSet::SSL_HYBRID.to_string(),
            "PROTOCOL_SSL|PROTOCOL_HYBRID"
        );
        assert!(ProtocolSet::RDP.offers(Protocol::Rdp));
        assert!(!ProtocolSet::SSL.offers(Protocol::Rdp));
        assert!(ProtocolSet::SSL_HYBRID_EX.offers(Protocol::HybridEx));
        assert_eq!(
            serde_json::to_value(Protocol::Hybrid).unwrap(),
            "PROTOCOL_HYBRID"
        );
        assert!(serde_json::from_value::<Protocol>("PROTOCOL_NOPE".into()).is_err());
    }
}
