//! What the host checks are asked and what they report: plain serde types with no I/O, so the
//! server and the WebAssembly portal read them without the `checks` feature (the pattern of
//! `crate::rdp::report`). Outcome enums serialise to the outcome ids of
//! `engine/models/0x904.toml` where the model has the check.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::rdp::report::CertificateReport;

// ---------------------------------------------------------------------------------------
// Shared pieces

/// How much a report's outcome can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confidence {
    /// Not enough was read to say anything (the check could not run).
    None,
    /// Part of the picture was read; the outcome is a hint.
    Low,
    /// The setting was read, but something outside it can still override it.
    Medium,
    /// The state that decides the outcome was read directly.
    High,
}

/// Why a host check could not run (part of its report, never a failure of the request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCheckError {
    pub kind: HostErrorKind,
    /// One sentence for a person.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostErrorKind {
    /// The check does not apply to this operating system (a Windows check on Linux).
    Unsupported,
    /// The agent lacks the rights to read the state.
    AccessDenied,
    /// The check did not finish within its timeout.
    TimedOut,
    /// A program or file gave something that could not be read.
    Failed,
}

/// The envelope of every host check's result: what was read, what it means for the model,
/// and how sure that is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostReport<T, O> {
    /// The model's outcome id, when the observation decides one.
    pub outcome: Option<O>,
    pub confidence: Confidence,
    /// What was read; `None` when the check could not run.
    pub observed: Option<T>,
    /// What stands out, in sentences for the helpdesk.
    pub findings: Vec<String>,
    pub error: Option<HostCheckError>,
    pub elapsed_ms: f64,
}

impl<T, O> HostReport<T, O> {
    /// A report for a check that could not run.
    pub fn failed(error: HostCheckError, elapsed_ms: f64) -> Self {
        HostReport {
            outcome: None,
            confidence: Confidence::None,
            observed: None,
            findings: Vec::new(),
            error: Some(error),
            elapsed_ms,
        }
    }
}

/// A registry value as read or written. Binary data travels as upper-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RegValue {
    RegDword(u32),
    RegQword(u64),
    RegSz(String),
    RegExpandSz(String),
    RegMultiSz(Vec<String>),
    RegBinary(HexBytes),
}

impl RegValue {
    /// The value as a number, for DWORD and QWORD values.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            RegValue::RegDword(v) => Some(u64::from(*v)),
            RegValue::RegQword(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_dword(&self) -> Option<u32> {
        match self {
            RegValue::RegDword(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            RegValue::RegSz(s) | RegValue::RegExpandSz(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for RegValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegValue::RegDword(v) => write!(f, "REG_DWORD {v} (0x{v:x})"),
            RegValue::RegQword(v) => write!(f, "REG_QWORD {v} (0x{v:x})"),
            RegValue::RegSz(s) => write!(f, "REG_SZ {s:?}"),
            RegValue::RegExpandSz(s) => write!(f, "REG_EXPAND_SZ {s:?}"),
            RegValue::RegMultiSz(v) => write!(f, "REG_MULTI_SZ {v:?}"),
            RegValue::RegBinary(b) => write!(f, "REG_BINARY {b}"),
        }
    }
}

/// Bytes shown and sent as upper-case hex without separators.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HexBytes(pub Vec<u8>);

impl fmt::Display for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl From<HexBytes> for String {
    fn from(value: HexBytes) -> String {
        value.to_string()
    }
}

impl TryFrom<String> for HexBytes {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        parse_hex(&value)
            .map(HexBytes)
            .ok_or_else(|| format!("not hex: {value:?}"))
    }
}

/// Hex digits (either case) to bytes; `None` for an odd length or another character.
pub fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A certificate thumbprint: the SHA-1 of the DER certificate, 40 upper-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Thumbprint(String);

impl Thumbprint {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let cleaned: String = raw
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect::<String>()
            .to_ascii_uppercase();
        if cleaned.len() == 40 && cleaned.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(Thumbprint(cleaned))
        } else {
            Err(format!(
                "{raw:?} is not a certificate thumbprint (40 hex digits)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Thumbprint> for String {
    fn from(value: Thumbprint) -> String {
        value.0
    }
}

impl TryFrom<String> for Thumbprint {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Thumbprint::parse(&value)
    }
}

/// An absolute path to an xrdp ini file on the host: the only file path a check or fix
/// accepts from the server. No `..`, no NUL, and the name must end in `.ini`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IniPath(String);

/// Where Debian's xrdp package keeps its configuration.
pub const DEFAULT_XRDP_INI: &str = "/etc/xrdp/xrdp.ini";

impl IniPath {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let invalid = |why: &str| {
            Err(format!(
                "{raw:?} is not accepted as an xrdp ini path: {why}"
            ))
        };
        if !raw.starts_with('/') {
            return invalid("it must be absolute");
        }
        if raw.len() > 1024 || raw.contains('\0') {
            return invalid("too long or contains NUL");
        }
        if raw.split('/').any(|part| part == "..") {
            return invalid("it must not contain `..`");
        }
        if !raw.ends_with(".ini") || raw.ends_with("/.ini") {
            return invalid("the file name must end in .ini");
        }
        Ok(IniPath(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for IniPath {
    fn default() -> Self {
        IniPath(DEFAULT_XRDP_INI.to_owned())
    }
}

impl fmt::Display for IniPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<IniPath> for String {
    fn from(value: IniPath) -> String {
        value.0
    }
}

impl TryFrom<String> for IniPath {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        IniPath::parse(&value)
    }
}

// ---------------------------------------------------------------------------------------
// What the server asks

/// Time allowed for a Windows host check unless the caller says (PowerShell alone can take
/// a few seconds to start on a busy host).
pub const DEFAULT_WINDOWS_TIMEOUT_MS: u32 = 20_000;
/// Time allowed for a Linux host check unless the caller says.
pub const DEFAULT_LINUX_TIMEOUT_MS: u32 = 5_000;
/// How far back `host-event-log` looks unless the caller says.
pub const DEFAULT_EVENT_WINDOW_MINUTES: u32 = 60;

fn windows_timeout() -> u32 {
    DEFAULT_WINDOWS_TIMEOUT_MS
}
fn linux_timeout() -> u32 {
    DEFAULT_LINUX_TIMEOUT_MS
}
fn event_window() -> u32 {
    DEFAULT_EVENT_WINDOW_MINUTES
}

/// The host checks with their typed parameters, tagged by their stable id (the model's id
/// where the model has the check).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "kebab-case")]
pub enum HostCheckSpec {
    /// Windows Defender Firewall rules of the "Remote Desktop" and "Remote Desktop
    /// (WebSocket)" groups, local and policy stores, and the profiles they apply to.
    FirewallRule {
        #[serde(default = "windows_timeout")]
        timeout_ms: u32,
    },
    /// `fDenyTSConnections`, locally and by Group Policy.
    RdpEnabled {
        #[serde(default = "windows_timeout")]
        timeout_ms: u32,
    },
    /// TermService, UmRdpService and SessionEnv: state, start type, process id.
    RdpServices {
        #[serde(default = "windows_timeout")]
        timeout_ms: u32,
    },
    /// `PortNumber` of the RDP-Tcp listener and what listens on that port and on 3389.
    RdpListener {
        #[serde(default = "windows_timeout")]
        timeout_ms: u32,
    },
    /// Drain mode and connection limits.
    SessionLimits {
        #[serde(default = "windows_timeout")]
        timeout_ms: u32,
    },
    /// The `Remote Desktop` certificate store, and events 1057/1058/36870.
    RdpCertificate {
        #[serde(default = "windows_timeout")]
        timeout_ms: u32,
    },
    /// `SSLCertificateSHA1Hash` compared with the certificate stores.
    CertBinding {
        #[serde(default = "windows_timeout")]
        timeout_ms: u32,
    },
    /// The permissions of `MachineKeys`, where the RDP certificate's private key lives.
    MachinekeysAcl {
        #[serde(default = "windows_timeout")]
        timeout_ms: u32,
    },
    /// Schannel protocol settings (TLS 1.2 server above all) and event 36871.
    SchannelTls12 {
        #[serde(default = "windows_timeout")]
        timeout_ms: u32,
    },
    /// `SecurityLayer`, `MinEncryptionLevel` (local and policy), FIPS policy, event 1050.
    SecurityLayer {
        #[serde(default = "windows_timeout")]
        timeout_ms: u32,
    },
    /// `AllowEncryptionOracle` and the CredSSP (tspkg.dll) version on this side.
    CredsspPolicy {
        #[serde(default = "windows_timeout")]
        timeout_ms: u32,
    },
    /// NLA (`UserAuthentication`, local and policy) and the domain secure channel.
    SecureChannel {
        #[serde(default = "windows_timeout")]
        timeout_ms: u32,
    },
    /// RemoteConnectionManager 1057/1058/1050/1068/1069, Schannel 36870/36871/36874/36888,
    /// RdpCoreTS 98/99 (and 131, a connection reaching the RDP stack).
    HostEventLog {
        #[serde(default = "windows_timeout")]
        timeout_ms: u32,
        #[serde(default = "event_window")]
        since_minutes: u32,
    },
    /// On the employee's PC: a VPN adapter up, and VPN tunnels dropped in the window
    /// (NetworkProfile 10001 for a VPN adapter, RasClient 20226/20227).
    VpnTunnelEvents {
        #[serde(default = "windows_timeout")]
        timeout_ms: u32,
        #[serde(default = "event_window")]
        since_minutes: u32,
    },
    /// xrdp running, and listening on the port its ini names.
    XrdpListening {
        #[serde(default = "linux_timeout")]
        timeout_ms: u32,
        #[serde(default)]
        config: IniPath,
        /// The port clients connect to: xrdp listening on another one is `other-port`.
        /// Left out, the ini's port is taken as the right one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
    },
    /// xrdp's `security_layer`, `crypt_level` and TLS settings.
    XrdpSecurityLayer {
        #[serde(default = "linux_timeout")]
        timeout_ms: u32,
        #[serde(default)]
        config: IniPath,
    },
    /// xrdp's certificate and key files: readable, matching each other, in date.
    XrdpCertificate {
        #[serde(default = "linux_timeout")]
        timeout_ms: u32,
        #[serde(default)]
        config: IniPath,
    },
    /// nftables rules that drop or reject the RDP port.
    XrdpFirewall {
        #[serde(default = "linux_timeout")]
        timeout_ms: u32,
        #[serde(default)]
        config: IniPath,
        /// The port to look for; the ini's port when left out.
        #[serde(default)]
        port: Option<u16>,
    },
}

impl HostCheckSpec {
    /// Every host check id, in catalogue order.
    pub const IDS: &'static [&'static str] = &[
        "firewall-rule",
        "rdp-enabled",
        "rdp-services",
        "rdp-listener",
        "session-limits",
        "rdp-certificate",
        "cert-binding",
        "machinekeys-acl",
        "schannel-tls12",
        "security-layer",
        "credssp-policy",
        "secure-channel",
        "host-event-log",
        "vpn-tunnel-events",
        "xrdp-listening",
        "xrdp-security-layer",
        "xrdp-certificate",
        "xrdp-firewall",
    ];

    /// The check's stable id.
    pub fn id(&self) -> &'static str {
        match self {
            HostCheckSpec::FirewallRule { .. } => "firewall-rule",
            HostCheckSpec::RdpEnabled { .. } => "rdp-enabled",
            HostCheckSpec::RdpServices { .. } => "rdp-services",
            HostCheckSpec::RdpListener { .. } => "rdp-listener",
            HostCheckSpec::SessionLimits { .. } => "session-limits",
            HostCheckSpec::RdpCertificate { .. } => "rdp-certificate",
            HostCheckSpec::CertBinding { .. } => "cert-binding",
            HostCheckSpec::MachinekeysAcl { .. } => "machinekeys-acl",
            HostCheckSpec::SchannelTls12 { .. } => "schannel-tls12",
            HostCheckSpec::SecurityLayer { .. } => "security-layer",
            HostCheckSpec::CredsspPolicy { .. } => "credssp-policy",
            HostCheckSpec::SecureChannel { .. } => "secure-channel",
            HostCheckSpec::HostEventLog { .. } => "host-event-log",
            HostCheckSpec::VpnTunnelEvents { .. } => "vpn-tunnel-events",
            HostCheckSpec::XrdpListening { .. } => "xrdp-listening",
            HostCheckSpec::XrdpSecurityLayer { .. } => "xrdp-security-layer",
            HostCheckSpec::XrdpCertificate { .. } => "xrdp-certificate",
            HostCheckSpec::XrdpFirewall { .. } => "xrdp-firewall",
        }
    }

    /// The time the whole check may take.
    pub fn timeout_ms(&self) -> u32 {
        match self {
            HostCheckSpec::FirewallRule { timeout_ms }
            | HostCheckSpec::RdpEnabled { timeout_ms }
            | HostCheckSpec::RdpServices { timeout_ms }
            | HostCheckSpec::RdpListener { timeout_ms }
            | HostCheckSpec::SessionLimits { timeout_ms }
            | HostCheckSpec::RdpCertificate { timeout_ms }
            | HostCheckSpec::CertBinding { timeout_ms }
            | HostCheckSpec::MachinekeysAcl { timeout_ms }
            | HostCheckSpec::SchannelTls12 { timeout_ms }
            | HostCheckSpec::SecurityLayer { timeout_ms }
            | HostCheckSpec::CredsspPolicy { timeout_ms }
            | HostCheckSpec::SecureChannel { timeout_ms }
            | HostCheckSpec::HostEventLog { timeout_ms, .. }
            | HostCheckSpec::VpnTunnelEvents { timeout_ms, .. }
            | HostCheckSpec::XrdpListening { timeout_ms, .. }
            | HostCheckSpec::XrdpSecurityLayer { timeout_ms, .. }
            | HostCheckSpec::XrdpCertificate { timeout_ms, .. }
            | HostCheckSpec::XrdpFirewall { timeout_ms, .. } => *timeout_ms,
        }
    }

    /// Builds a check from its id and `KEY=VALUE` parameters (the command line's words).
    /// Every parameter must be used; an unknown one is an error.
    pub fn from_params(
        id: &str,
        timeout_ms: Option<u32>,
        params: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let mut params = params.clone();
        let win = timeout_ms.unwrap_or(DEFAULT_WINDOWS_TIMEOUT_MS);
        let lin = timeout_ms.unwrap_or(DEFAULT_LINUX_TIMEOUT_MS);
        let mut config = || -> Result<IniPath, String> {
            match params.remove("config") {
                Some(raw) => IniPath::parse(&raw),
                None => Ok(IniPath::default()),
            }
        };
        let since_minutes = |params: &mut BTreeMap<String, String>| -> Result<u32, String> {
            match params.remove("since_minutes") {
                None => Ok(DEFAULT_EVENT_WINDOW_MINUTES),
                Some(raw) => raw
                    .parse::<u32>()
                    .ok()
                    .filter(|m| (1..=10_080).contains(m))
                    .ok_or_else(|| {
                        "since_minutes takes a number of minutes from 1 to 10080".to_owned()
                    }),
            }
        };
        let port = |params: &mut BTreeMap<String, String>| -> Result<Option<u16>, String> {
            params
                .remove("port")
                .map(|raw| {
                    raw.parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| "port takes a number from 1 to 65535".to_owned())
                })
                .transpose()
        };
        let spec = match id {
            "firewall-rule" => HostCheckSpec::FirewallRule { timeout_ms: win },
            "rdp-enabled" => HostCheckSpec::RdpEnabled { timeout_ms: win },
            "rdp-services" => HostCheckSpec::RdpServices { timeout_ms: win },
            "rdp-listener" => HostCheckSpec::RdpListener { timeout_ms: win },
            "session-limits" => HostCheckSpec::SessionLimits { timeout_ms: win },
            "rdp-certificate" => HostCheckSpec::RdpCertificate { timeout_ms: win },
            "cert-binding" => HostCheckSpec::CertBinding { timeout_ms: win },
            "machinekeys-acl" => HostCheckSpec::MachinekeysAcl { timeout_ms: win },
            "schannel-tls12" => HostCheckSpec::SchannelTls12 { timeout_ms: win },
            "security-layer" => HostCheckSpec::SecurityLayer { timeout_ms: win },
            "credssp-policy" => HostCheckSpec::CredsspPolicy { timeout_ms: win },
            "secure-channel" => HostCheckSpec::SecureChannel { timeout_ms: win },
            "host-event-log" => HostCheckSpec::HostEventLog {
                timeout_ms: win,
                since_minutes: since_minutes(&mut params)?,
            },
            "vpn-tunnel-events" => HostCheckSpec::VpnTunnelEvents {
                timeout_ms: win,
                since_minutes: since_minutes(&mut params)?,
            },
            "xrdp-listening" => {
                let config = config()?;
                HostCheckSpec::XrdpListening {
                    timeout_ms: lin,
                    config,
                    port: port(&mut params)?,
                }
            }
            "xrdp-security-layer" => HostCheckSpec::XrdpSecurityLayer {
                timeout_ms: lin,
                config: config()?,
            },
            "xrdp-certificate" => HostCheckSpec::XrdpCertificate {
                timeout_ms: lin,
                config: config()?,
            },
            "xrdp-firewall" => {
                let config = config()?;
                HostCheckSpec::XrdpFirewall {
                    timeout_ms: lin,
                    config,
                    port: port(&mut params)?,
                }
            }
            other => return Err(format!("{other:?} is not a host check")),
        };
        if let Some(unknown) = params.keys().next() {
            return Err(format!("{id} has no parameter {unknown:?}"));
        }
        Ok(spec)
    }
}

// ---------------------------------------------------------------------------------------
// What the checks report

/// What a host check observed, tagged by its id.
// One report per check run, boxed where it travels (`wire::CheckReport::Host`).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "kebab-case")]
pub enum HostCheckReport {
    FirewallRule(HostReport<FirewallObserved, FirewallOutcome>),
    RdpEnabled(HostReport<RdpEnabledObserved, RdpEnabledOutcome>),
    RdpServices(HostReport<ServicesObserved, ServicesOutcome>),
    RdpListener(HostReport<ListenerObserved, ListenerOutcome>),
    SessionLimits(HostReport<SessionLimitsObserved, SessionLimitsOutcome>),
    RdpCertificate(HostReport<CertificateStoreObserved, CertificateOutcome>),
    CertBinding(HostReport<CertBindingObserved, CertBindingOutcome>),
    MachinekeysAcl(HostReport<MachineKeysObserved, AclOutcome>),
    SchannelTls12(HostReport<SchannelObserved, SchannelOutcome>),
    SecurityLayer(HostReport<SecurityLayerObserved, SecurityLayerOutcome>),
    CredsspPolicy(HostReport<CredSspObserved, CredSspOutcome>),
    SecureChannel(HostReport<SecureChannelObserved, SecureChannelOutcome>),
    HostEventLog(HostReport<EventLogObserved, EventLogOutcome>),
    VpnTunnelEvents(HostReport<VpnObserved, VpnOutcome>),
    XrdpListening(HostReport<XrdpListeningObserved, XrdpListeningOutcome>),
    XrdpSecurityLayer(HostReport<XrdpSecurityObserved, XrdpSecurityOutcome>),
    XrdpCertificate(HostReport<XrdpCertificateObserved, XrdpCertificateOutcome>),
    XrdpFirewall(HostReport<XrdpFirewallObserved, XrdpFirewallOutcome>),
}

/// The parts of every report that do not depend on the check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportSummary<'a> {
    pub check: &'static str,
    /// The outcome id, as the model spells it.
    pub outcome: Option<String>,
    pub confidence: Confidence,
    pub findings: &'a [String],
    pub error: Option<&'a HostCheckError>,
}

macro_rules! each_report {
    ($report:expr, $r:ident => $body:expr) => {
        match $report {
            HostCheckReport::FirewallRule($r) => $body,
            HostCheckReport::RdpEnabled($r) => $body,
            HostCheckReport::RdpServices($r) => $body,
            HostCheckReport::RdpListener($r) => $body,
            HostCheckReport::SessionLimits($r) => $body,
            HostCheckReport::RdpCertificate($r) => $body,
            HostCheckReport::CertBinding($r) => $body,
            HostCheckReport::MachinekeysAcl($r) => $body,
            HostCheckReport::SchannelTls12($r) => $body,
            HostCheckReport::SecurityLayer($r) => $body,
            HostCheckReport::CredsspPolicy($r) => $body,
            HostCheckReport::SecureChannel($r) => $body,
            HostCheckReport::HostEventLog($r) => $body,
            HostCheckReport::VpnTunnelEvents($r) => $body,
            HostCheckReport::XrdpListening($r) => $body,
            HostCheckReport::XrdpSecurityLayer($r) => $body,
            HostCheckReport::XrdpCertificate($r) => $body,
            HostCheckReport::XrdpFirewall($r) => $body,
        }
    };
}

fn outcome_name<O: Serialize>(outcome: &Option<O>) -> Option<String> {
    outcome
        .as_ref()
        .and_then(|o| serde_json::to_value(o).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
}

impl HostCheckReport {
    /// The check id this report belongs to.
    pub fn id(&self) -> &'static str {
        match self {
            HostCheckReport::FirewallRule(_) => "firewall-rule",
            HostCheckReport::RdpEnabled(_) => "rdp-enabled",
            HostCheckReport::RdpServices(_) => "rdp-services",
            HostCheckReport::RdpListener(_) => "rdp-listener",
            HostCheckReport::SessionLimits(_) => "session-limits",
            HostCheckReport::RdpCertificate(_) => "rdp-certificate",
            HostCheckReport::CertBinding(_) => "cert-binding",
            HostCheckReport::MachinekeysAcl(_) => "machinekeys-acl",
            HostCheckReport::SchannelTls12(_) => "schannel-tls12",
            HostCheckReport::SecurityLayer(_) => "security-layer",
            HostCheckReport::CredsspPolicy(_) => "credssp-policy",
            HostCheckReport::SecureChannel(_) => "secure-channel",
            HostCheckReport::HostEventLog(_) => "host-event-log",
            HostCheckReport::VpnTunnelEvents(_) => "vpn-tunnel-events",
            HostCheckReport::XrdpListening(_) => "xrdp-listening",
            HostCheckReport::XrdpSecurityLayer(_) => "xrdp-security-layer",
            HostCheckReport::XrdpCertificate(_) => "xrdp-certificate",
            HostCheckReport::XrdpFirewall(_) => "xrdp-firewall",
        }
    }

    /// Outcome, confidence, findings and error, whatever the check.
    pub fn summary(&self) -> ReportSummary<'_> {
        let check = self.id();
        each_report!(self, r => ReportSummary {
            check,
            outcome: outcome_name(&r.outcome),
            confidence: r.confidence,
            findings: &r.findings,
            error: r.error.as_ref(),
        })
    }
}

// --- firewall-rule

/// Which store a firewall rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleStore {
    /// The local rules (`...\SharedAccess\Parameters\FirewallPolicy\FirewallRules`).
    Local,
    /// Rules set by Group Policy (`HKLM\SOFTWARE\Policies\Microsoft\WindowsFirewall\FirewallRules`).
    Policy,
}

/// One firewall rule as stored in the registry (`v2.x|Action=...|Active=...|...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallRule {
    /// The rule's id, e.g. `RemoteDesktop-UserMode-In-TCP`.
    pub name: String,
    pub store: RuleStore,
    pub enabled: bool,
    /// `Allow`, `Block` or `Bypass`.
    pub action: String,
    /// `In` or `Out`.
    pub direction: String,
    /// IP protocol number (6 TCP, 17 UDP), when the rule names one.
    pub protocol: Option<u8>,
    pub local_ports: Vec<String>,
    /// `Domain`, `Private`, `Public`; empty means every profile.
    pub profiles: Vec<String>,
    /// The program the rule is limited to (`App=`), e.g. `%SystemRoot%\system32\RdpSa.exe`.
    #[serde(default)]
    pub program: Option<String>,
    /// The service the rule is limited to (`Svc=`), e.g. `termservice`.
    #[serde(default)]
    pub service: Option<String>,
    /// The rule group's resource string (`EmbedCtxt`), e.g. `@FirewallAPI.dll,-28752`.
    pub group: Option<String>,
}

impl FirewallRule {
    /// Whether the rule applies to a profile (`Domain`, `Private` or `Public`).
    pub fn applies_to(&self, profile: &str) -> bool {
        self.profiles.is_empty()
            || self
                .profiles
                .iter()
                .any(|p| p.eq_ignore_ascii_case(profile))
    }

    /// Whether the rule covers inbound TCP to the Remote Desktop listener on `port`: it names
    /// the port, or names no port and is not limited to another program (the shadowing
    /// rule, for instance, names none but only admits `RdpSa.exe`).
    pub fn covers_rdp_port(&self, port: u16) -> bool {
        if self.protocol.is_some_and(|p| p != 6) || !self.direction.eq_ignore_ascii_case("In") {
            return false;
        }
        if !self.local_ports.is_empty() {
            return self.local_ports.iter().any(|lp| lp == &port.to_string());
        }
        match &self.program {
            None => true,
            Some(app) => {
                let app = app.to_ascii_lowercase();
                (app == "system" || app.ends_with("\\svchost.exe"))
                    && self
                        .service
                        .as_deref()
                        .is_none_or(|s| s.eq_ignore_ascii_case("termservice"))
            }
        }
    }
}

/// One firewall profile and whether the firewall is on in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallProfile {
    /// `Domain`, `Private` or `Public`.
    pub name: String,
    /// `EnableFirewall` of the profile; `None` when not set.
    pub firewall_enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirewallObserved {
    /// Rules of the "Remote Desktop" group (and any other `RemoteDesktop-*` rule).
    pub rules: Vec<FirewallRule>,
    /// Rules of the "Remote Desktop (WebSocket)" group (TCP 3387/3392).
    pub websocket_rules: Vec<FirewallRule>,
    pub profiles: Vec<FirewallProfile>,
    /// The profiles of the networks the host is connected to now, when known.
    pub active_profiles: Vec<String>,
    /// The RDP listener's port, to compare with the rules' ports.
    pub rdp_port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FirewallOutcome {
    Enabled,
    Disabled,
}

// --- rdp-enabled

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdpEnabledObserved {
    /// `fDenyTSConnections` under `HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server`.
    pub local_deny: Option<u32>,
    /// `fDenyTSConnections` under `HKLM\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services`.
    pub policy_deny: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RdpEnabledOutcome {
    Allowed,
    DeniedLocally,
    DeniedByPolicy,
}

// --- rdp-services

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceState {
    Stopped,
    StartPending,
    StopPending,
    Running,
    ContinuePending,
    PausePending,
    Paused,
    /// The service is not installed.
    NotInstalled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartType {
    Boot,
    System,
    Auto,
    Demand,
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub state: ServiceState,
    pub start_type: Option<StartType>,
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicesObserved {
    pub services: Vec<ServiceStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServicesOutcome {
    Running,
    Stopped,
}

// --- rdp-listener

/// A TCP socket listening on this host, and who owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpListenerInfo {
    pub address: String,
    pub port: u16,
    pub pid: Option<u32>,
    /// The owning process's name (`svchost`, `xrdp`), when known.
    pub process: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerObserved {
    /// `PortNumber` under `WinStations\RDP-Tcp`.
    pub port_number: Option<u32>,
    /// `fEnableWinStation` under `WinStations\RDP-Tcp` (1 = the listener is enabled).
    pub win_station_enabled: Option<u32>,
    /// The process id of TermService, which owns the RDP listener.
    pub termservice_pid: Option<u32>,
    /// Sockets listening on `PortNumber` (and on 3389 when that differs).
    pub listeners: Vec<TcpListenerInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ListenerOutcome {
    #[serde(rename = "listening-3389")]
    Listening3389,
    OtherPort,
    NotListening,
    PortTaken,
}

// --- session-limits

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLimitsObserved {
    /// `TSServerDrainMode` (0 accept all, 1 and 2 refuse new logons).
    pub drain_mode: Option<u32>,
    /// `MaxInstanceCount` under `WinStations\RDP-Tcp`.
    pub max_instance_count: Option<u32>,
    /// `MaxInstanceCount` set by Group Policy ("Limit number of connections").
    pub policy_max_instance_count: Option<u32>,
    /// `fSingleSessionPerUser` (local, then policy).
    pub single_session_per_user: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionLimitsOutcome {
    Accepting,
    Refusing,
}

// --- rdp-certificate, cert-binding

/// Windows certificate stores of the local machine that the checks read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CertStore {
    /// `Cert:\LocalMachine\Remote Desktop`, where Windows keeps the self-signed certificate.
    #[serde(rename = "Remote Desktop")]
    RemoteDesktop,
    /// `Cert:\LocalMachine\My`, where a bound certificate usually lives.
    #[serde(rename = "My")]
    My,
    /// A store of the agent's own, where a certificate is set aside (not deleted) by a fix.
    #[serde(rename = "RDPDoctorBackup")]
    Backup,
}

impl CertStore {
    /// The store's name under `Cert:\LocalMachine\`.
    pub fn name(self) -> &'static str {
        match self {
            CertStore::RemoteDesktop => "Remote Desktop",
            CertStore::My => "My",
            CertStore::Backup => "RDPDoctorBackup",
        }
    }
}

/// One certificate in a store, as the certificate store reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCertificate {
    pub thumbprint: Thumbprint,
    pub subject: String,
    pub issuer: String,
    /// RFC 3339, UTC.
    pub not_before: String,
    /// RFC 3339, UTC.
    pub not_after: String,
    pub has_private_key: bool,
    /// Whether the agent (running as SYSTEM) could open the private key; `None` if not tried.
    pub private_key_readable: Option<bool>,
}

impl StoreCertificate {
    /// Whether `now` (RFC 3339, UTC) falls between the dates. RFC 3339 strings in UTC
    /// with the same precision compare as text.
    pub fn valid_at(&self, now_rfc3339: &str) -> bool {
        self.not_before.as_str() <= now_rfc3339 && now_rfc3339 <= self.not_after.as_str()
    }

    pub fn self_issued(&self) -> bool {
        self.subject == self.issuer
    }
}

/// Events of one id in the window, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSummary {
    pub provider: String,
    pub id: u32,
    pub count: u32,
    /// RFC 3339, UTC, of the most recent one.
    pub last_at: String,
    /// The most recent one's message, when rendered.
    pub last_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateStoreObserved {
    pub certificates: Vec<StoreCertificate>,
    /// RFC 3339 time the dates were compared against.
    pub checked_at: String,
    /// 1057/1058 (RemoteConnectionManager) and 36870 (Schannel) in the last hour.
    pub events: Vec<EventSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertificateOutcome {
    Valid,
    ExpiredOrUnreadable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertBindingObserved {
    /// `SSLCertificateSHA1Hash` under `WinStations\RDP-Tcp`, when set.
    pub bound_thumbprint: Option<Thumbprint>,
    /// The store the bound certificate was found in, and the certificate.
    pub found_in: Option<CertStore>,
    pub certificate: Option<StoreCertificate>,
    pub checked_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertBindingOutcome {
    SelfSignedDefault,
    BoundValid,
    BoundMissing,
}

// --- machinekeys-acl

/// One access control entry of an SDDL DACL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AceSummary {
    /// `A` (allow) or `D` (deny).
    pub kind: String,
    /// `OI`, `CI`, `ID`, ... as in SDDL.
    pub flags: String,
    /// The access mask.
    pub rights: u32,
    /// The trustee as SDDL writes it: an alias (`WD`, `BA`, `SY`) or a SID.
    pub trustee: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineKeysObserved {
    pub path: String,
    /// The security descriptor in SDDL, exactly as read.
    pub sddl: String,
    pub aces: Vec<AceSummary>,
    /// Grants of Microsoft's documented default that the DACL lacks (KB 278381).
    pub missing: Vec<String>,
    /// Deny entries, which the default has none of.
    pub denies: Vec<AceSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AclOutcome {
    Default,
    Broken,
}

// --- schannel-tls12

/// One Schannel protocol key (`...\SCHANNEL\Protocols\TLS 1.2\Server`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchannelProtocol {
    /// `TLS 1.0`, `TLS 1.1`, `TLS 1.2`, `TLS 1.3`.
    pub protocol: String,
    /// `Server` or `Client`.
    pub side: String,
    pub enabled: Option<u32>,
    pub disabled_by_default: Option<u32>,
}

impl SchannelProtocol {
    /// Whether the settings turn the protocol off (absent values mean the OS default).
    pub fn turned_off(&self) -> bool {
        self.enabled == Some(0) || self.disabled_by_default == Some(1)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchannelObserved {
    pub protocols: Vec<SchannelProtocol>,
    /// Schannel 36871 in the last hour.
    pub events: Vec<EventSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchannelOutcome {
    Enabled,
    Disabled,
}

// --- security-layer

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityLayerObserved {
    /// `SecurityLayer` under `WinStations\RDP-Tcp` (0 RDP, 1 Negotiate, 2 TLS).
    pub security_layer: Option<u32>,
    /// `SecurityLayer` set by Group Policy; it wins over the local value.
    pub policy_security_layer: Option<u32>,
    /// `MinEncryptionLevel` (1 low, 2 client compatible, 3 high, 4 FIPS).
    pub min_encryption_level: Option<u32>,
    pub policy_min_encryption_level: Option<u32>,
    /// `FipsAlgorithmPolicy\Enabled` under `Control\Lsa`.
    pub fips_enabled: Option<u32>,
    /// RemoteConnectionManager 1050 in the last hour.
    pub events: Vec<EventSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecurityLayerOutcome {
    Negotiate,
    Tls,
    RdpOnly,
    FipsEnforced,
}

// --- credssp-policy

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredSspObserved {
    /// `AllowEncryptionOracle` (0 force updated clients, 1 mitigated, 2 vulnerable).
    pub allow_encryption_oracle: Option<u32>,
    /// The file version of `System32\tspkg.dll`.
    pub tspkg_version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredSspOutcome {
    Consistent,
    Mismatch,
}

// --- secure-channel

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecureChannelObserved {
    /// `UserAuthentication` under `WinStations\RDP-Tcp` (1 = NLA required).
    pub user_authentication: Option<u32>,
    pub policy_user_authentication: Option<u32>,
    pub part_of_domain: Option<bool>,
    pub domain: Option<String>,
    /// `Test-ComputerSecureChannel`, when the host is in a domain.
    pub secure_channel_ok: Option<bool>,
    /// What `Test-ComputerSecureChannel` said when it failed.
    pub secure_channel_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecureChannelOutcome {
    Ok,
    Broken,
}

// --- host-event-log

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLogObserved {
    pub since_minutes: u32,
    pub events: Vec<EventSummary>,
    /// RdpCoreTS 131: TCP connections that reached the RDP stack in the window.
    pub connection_attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventLogOutcome {
    ConnectionsNoErrors,
    NoConnectionAttempts,
    CertificateErrors,
    TlsErrors,
    SecurityLayerErrors,
    LicensingErrors,
}

// --- vpn-tunnel-events

/// A network adapter that is up, as Windows describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAdapter {
    pub name: String,
    /// `InterfaceDescription`, e.g. `PANGP Virtual Ethernet Adapter`.
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpnObserved {
    pub since_minutes: u32,
    /// The adapters that are up and look like a VPN's (by their description).
    pub vpn_adapters: Vec<NetworkAdapter>,
    /// VPN tunnels that went down or failed to come up in the window: NetworkProfile 10001
    /// for a VPN adapter, RasClient 20226 (ended) and 20227 (failed to dial).
    pub drops: Vec<EventSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VpnOutcome {
    /// No VPN adapter is up and none dropped in the window.
    NoVpn,
    /// A VPN adapter is up and no tunnel dropped in the window.
    Stable,
    /// A tunnel dropped or failed to come up in the window.
    Drops,
}

// --- xrdp-listening

/// A running process, from `/proc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub name: String,
    pub cmdline: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XrdpListeningObserved {
    pub config: IniPath,
    /// `port` in `[Globals]`, as written (`3389`, `tcp://127.0.0.1:3390`, ...).
    pub port_setting: Option<String>,
    pub configured_port: Option<u16>,
    pub xrdp_processes: Vec<ProcessInfo>,
    /// Every socket listening on the configured port.
    pub listeners: Vec<TcpListenerInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum XrdpListeningOutcome {
    /// xrdp listens on the configured port (the one clients connect to, when that was given).
    Listening,
    /// xrdp listens, but on another port than the one clients connect to.
    OtherPort,
    /// No xrdp process runs.
    NotRunning,
    /// xrdp runs, but nothing listens on the configured port.
    NotListening,
    /// Another program listens on the configured port.
    PortTaken,
}

// --- xrdp-security-layer

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XrdpSecurityObserved {
    pub config: IniPath,
    pub security_layer: Option<String>,
    pub crypt_level: Option<String>,
    pub ssl_protocols: Option<String>,
    pub tls_ciphers: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum XrdpSecurityOutcome {
    Negotiate,
    Tls,
    RdpOnly,
    /// A value xrdp does not know; it falls back to its default.
    Unrecognised,
}

// --- xrdp-certificate

/// A file the check read, as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    pub path: String,
    pub exists: bool,
    pub readable: bool,
    /// Where the path points, when it is a symbolic link.
    pub symlink_to: Option<String>,
    /// Unix permission bits, e.g. 0o640, when the file exists.
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XrdpCertificateObserved {
    pub config: IniPath,
    pub certificate_file: FileState,
    pub key_file: FileState,
    /// The certificate's fields, when it parsed (names matched against this host's name).
    pub certificate: Option<CertificateReport>,
    /// Whether the private key is the certificate's (public halves compared); `None` when
    /// either could not be read or the key format is not one the agent reads.
    pub key_matches: Option<bool>,
    /// `RSA` or `EC`, and the size, of the private key.
    pub key_algorithm: Option<String>,
    pub key_bits: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum XrdpCertificateOutcome {
    Ok,
    Missing,
    Unreadable,
    KeyMismatch,
    Expired,
    NotYetValid,
    /// An RSA key under 2048 bits: xrdp answers the TLS ClientHello with a disconnect.
    WeakKey,
}

// --- xrdp-firewall

/// One nftables rule that matches the port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NftRuleMatch {
    pub family: String,
    pub table: String,
    pub chain: String,
    pub handle: Option<u64>,
    /// `accept`, `drop`, `reject`, or `jump NAME` / `goto NAME`.
    pub verdict: String,
    /// Other matches of the rule (interface, source address, ...), as nft spells them; empty
    /// when the rule applies to every packet to the port.
    pub conditions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XrdpFirewallObserved {
    pub port: u16,
    /// Rules in input-hook chains that match TCP to the port.
    pub rules: Vec<NftRuleMatch>,
    /// Input-hook chains whose policy is drop, as `family table chain`.
    pub drop_policy_chains: Vec<String>,
    /// How many input-hook chains there are at all.
    pub input_chains: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum XrdpFirewallOutcome {
    /// Nothing in nftables stops TCP to the port.
    Open,
    /// A rule drops or rejects every TCP packet to the port, or a drop policy does.
    Blocked,
    /// A rule drops or rejects TCP to the port for some packets only (an interface, a source).
    BlockedConditionally,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_checks_are_tagged_by_their_ids_and_take_defaults() {
        let spec: HostCheckSpec = serde_json::from_str(r#"{"check":"rdp-listener"}"#).unwrap();
        assert_eq!(
            spec,
            HostCheckSpec::RdpListener {
                timeout_ms: DEFAULT_WINDOWS_TIMEOUT_MS
            }
        );
        for id in HostCheckSpec::IDS {
            let spec = HostCheckSpec::from_params(id, Some(10), &BTreeMap::new()).unwrap();
            assert_eq!(spec.id(), *id);
            assert_eq!(spec.timeout_ms(), 10);
            let json = serde_json::to_value(&spec).unwrap();
            assert_eq!(json["check"], *id);
        }
    }

    #[test]
    fn ini_paths_from_the_server_are_validated() {
        assert!(IniPath::parse("/etc/xrdp/xrdp.ini").is_ok());
        for bad in [
            "etc/xrdp.ini",
            "/etc/../shadow.ini",
            "/etc/passwd",
            "/tmp/.ini",
        ] {
            assert!(IniPath::parse(bad).is_err(), "{bad} accepted");
        }
        let json = r#"{"check":"xrdp-security-layer","config":"/etc/shadow"}"#;
        assert!(serde_json::from_str::<HostCheckSpec>(json).is_err());
    }

    #[test]
    fn unknown_parameters_are_refused() {
        let mut params = BTreeMap::new();
        params.insert("command".to_owned(), "rm -rf /".to_owned());
        assert!(HostCheckSpec::from_params("rdp-enabled", None, &params).is_err());
    }

    #[test]
    fn the_port_clients_use_is_a_typed_parameter_of_the_xrdp_port_checks() {
        let with_port = |id: &str, port: &str| {
            HostCheckSpec::from_params(id, None, &BTreeMap::from([("port".into(), port.into())]))
        };
        assert!(matches!(
            with_port("xrdp-listening", "3390"),
            Ok(HostCheckSpec::XrdpListening {
                port: Some(3390),
                ..
            })
        ));
        for id in ["xrdp-listening", "xrdp-firewall"] {
            for bad in ["0", "65536", "3389; reboot", ""] {
                assert_eq!(
                    with_port(id, bad),
                    Err("port takes a number from 1 to 65535".to_owned()),
                    "{id} {bad}"
                );
            }
        }
        // Only the checks that look at a port take one.
        assert!(with_port("xrdp-security-layer", "3389").is_err());
        // An agent of the previous version's request (no port) still reads.
        let json = r#"{"check":"xrdp-listening"}"#;
        assert!(matches!(
            serde_json::from_str::<HostCheckSpec>(json).unwrap(),
            HostCheckSpec::XrdpListening { port: None, .. }
        ));
    }

    #[test]
    fn registry_values_and_thumbprints_round_trip() {
        let value = RegValue::RegBinary(HexBytes(vec![0xAB, 0x01]));
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(json, r#"{"type":"REG_BINARY","data":"AB01"}"#);
        assert_eq!(serde_json::from_str::<RegValue>(&json).unwrap(), value);
        let t = Thumbprint::parse("ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01")
            .unwrap();
        assert_eq!(t.as_str(), "ABCDEF0123456789ABCDEF0123456789ABCDEF01");
        assert!(Thumbprint::parse("xyz").is_err());
    }

    #[test]
    fn outcomes_use_the_model_ids() {
        let report: HostReport<ListenerObserved, ListenerOutcome> = HostReport {
            outcome: Some(ListenerOutcome::Listening3389),
            confidence: Confidence::High,
            observed: None,
            findings: vec![],
            error: None,
            elapsed_ms: 1.0,
        };
        let wrapped = HostCheckReport::RdpListener(report);
        assert_eq!(wrapped.summary().outcome.as_deref(), Some("listening-3389"));
        let json = serde_json::to_value(&wrapped).unwrap();
        assert_eq!(json["check"], "rdp-listener");
        assert_eq!(json["outcome"], "listening-3389");
    }
}
