//! The fixes an agent can apply, and the records it keeps of them: plain serde types shared
//! with the server (which asks for fixes and reads the journal) and compiled without any
//! feature. Applying, snapshotting and rolling back live in `host::fixes` (feature `agent`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::report::{CertStore, FirewallRule, IniPath, RegValue, ServiceStatus, StoreCertificate};

/// How far a fix moves the host's security, and so who may ask for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixTier {
    /// Trivially reversible (flush a cache, start a service).
    Safe,
    /// A reversible configuration change; the prior state is recorded first.
    Change,
    /// Weakens security: runs only with an approval from the server for this case and host,
    /// and is reverted by the agent itself when the approval expires.
    Downgrade,
}

/// Which kind of host a fix applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixPlatform {
    Windows,
    /// Linux hosts running xrdp.
    Linux,
}

/// An absolute path to a PEM certificate or key file given to a fix. No `..`, no NUL; the
/// name must end in `.pem`, `.crt` or `.key`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PemPath(String);

impl PemPath {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let invalid = |why: &str| Err(format!("{raw:?} is not accepted as a PEM path: {why}"));
        if !raw.starts_with('/') {
            return invalid("it must be absolute");
        }
        if raw.len() > 1024 || raw.contains('\0') {
            return invalid("too long or contains NUL");
        }
        if raw.split('/').any(|part| part == "..") {
            return invalid("it must not contain `..`");
        }
        if ![".pem", ".crt", ".key"]
            .iter()
            .any(|ext| raw.ends_with(ext))
        {
            return invalid("the file name must end in .pem, .crt or .key");
        }
        Ok(PemPath(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<PemPath> for String {
    fn from(value: PemPath) -> String {
        value.0
    }
}

impl TryFrom<String> for PemPath {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        PemPath::parse(&value)
    }
}

fn rdp_port() -> u16 {
    crate::DEFAULT_RDP_PORT
}

/// The allowlisted fixes with their typed parameters, tagged by the model's fix ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fix", rename_all = "kebab-case")]
pub enum FixSpec {
    /// `ipconfig /flushdns`.
    FlushDns,
    /// Start TermService, UmRdpService and SessionEnv where stopped.
    StartRdpServices,
    /// Enable the rules of the "Remote Desktop" firewall group.
    EnableFirewallRule,
    /// Enable the rules of the "Remote Desktop (WebSocket)" firewall group.
    EnableGatewayTransport,
    /// Set `PortNumber` back to `port` and restart TermService.
    RestoreRdpPort {
        #[serde(default = "rdp_port")]
        port: u16,
    },
    /// Add the documented MachineKeys grants if missing, set the self-signed certificate
    /// aside, restart SessionEnv: Windows makes a new one.
    RenewRdpCertificate,
    /// Schannel `TLS 1.2\Server`: `Enabled=1`, `DisabledByDefault=0`.
    EnableTls12,
    /// `SecurityLayer=1` (Negotiate).
    SetSecurityLayerNegotiate,
    /// Export, then delete `HKLM\SOFTWARE\Microsoft\MSLicensing`.
    ResetLicensingCache,
    /// `w32tm /resync`.
    ResyncClock,
    /// Downgrade: `AllowEncryptionOracle=2` (vulnerable) until the approval expires.
    AllowEncryptionOracle,
    /// Downgrade: `UserAuthentication=0` (NLA off) until the approval expires.
    DisableNla,
    /// xrdp: `security_layer=negotiate` in `[Globals]` of the ini.
    XrdpSetSecurityLayerNegotiate {
        #[serde(default)]
        config: IniPath,
    },
    /// xrdp: copy a known-good certificate and key over the files the ini names.
    XrdpRestoreCertificate {
        #[serde(default)]
        config: IniPath,
        certificate: PemPath,
        key_file: PemPath,
    },
    /// xrdp: start it with the ini when nothing listens on its port.
    XrdpStart {
        #[serde(default)]
        config: IniPath,
    },
    /// Downgrade, xrdp: `security_layer=rdp` (Standard RDP Security) until the approval expires.
    XrdpSetSecurityLayerRdp {
        #[serde(default)]
        config: IniPath,
    },
}

/// What `rdp-doctor-agent fix list` prints and `docs/HOST-CHECKS-AND-FIXES.md` tabulates.
#[derive(Debug, Clone, Copy)]
pub struct FixInfo {
    pub id: &'static str,
    pub tier: FixTier,
    pub platform: FixPlatform,
    pub parameters: &'static str,
    pub summary: &'static str,
    /// What the snapshot holds, so a rollback restores it exactly.
    pub snapshot: &'static str,
}

/// Every fix, as people read the list.
pub const FIX_CATALOGUE: &[FixInfo] = &[
    FixInfo {
        id: "flush-dns",
        tier: FixTier::Safe,
        platform: FixPlatform::Windows,
        parameters: "",
        summary: "clear the DNS client cache (ipconfig /flushdns)",
        snapshot: "nothing (a cache; rollback is a no-op)",
    },
    FixInfo {
        id: "start-rdp-services",
        tier: FixTier::Safe,
        platform: FixPlatform::Windows,
        parameters: "",
        summary: "start TermService, UmRdpService and SessionEnv where stopped",
        snapshot: "state and start type of the three services; rollback stops the ones it started",
    },
    FixInfo {
        id: "enable-firewall-rule",
        tier: FixTier::Change,
        platform: FixPlatform::Windows,
        parameters: "",
        summary: "enable the rules of the 'Remote Desktop' firewall group",
        snapshot: "every RemoteDesktop-* rule: name, store, enabled",
    },
    FixInfo {
        id: "enable-gateway-transport",
        tier: FixTier::Change,
        platform: FixPlatform::Windows,
        parameters: "",
        summary: "enable the rules of the 'Remote Desktop (WebSocket)' firewall group (TCP 3387/3392)",
        snapshot: "every WebSocket rule: name, store, enabled",
    },
    FixInfo {
        id: "restore-rdp-port",
        tier: FixTier::Change,
        platform: FixPlatform::Windows,
        parameters: "[--param port=3389]",
        summary: "set PortNumber back to 3389 and restart TermService (drops open sessions)",
        snapshot: "PortNumber (type and value, or absent)",
    },
    FixInfo {
        id: "renew-rdp-certificate",
        tier: FixTier::Change,
        platform: FixPlatform::Windows,
        parameters: "",
        summary: "add missing MachineKeys grants, set the self-signed RDP certificate aside, restart SessionEnv so Windows makes a new one",
        snapshot: "MachineKeys SDDL, the Remote Desktop store listing, SSLCertificateSHA1Hash; the old certificate is moved to the RDPDoctorBackup store, not deleted",
    },
    FixInfo {
        id: "enable-tls12",
        tier: FixTier::Change,
        platform: FixPlatform::Windows,
        parameters: "",
        summary: "Schannel TLS 1.2 Server: Enabled=1, DisabledByDefault=0 (takes effect after a restart)",
        snapshot: "both values (type and value, or absent)",
    },
    FixInfo {
        id: "set-security-layer-negotiate",
        tier: FixTier::Change,
        platform: FixPlatform::Windows,
        parameters: "",
        summary: "SecurityLayer=1 (Negotiate) on the RDP-Tcp listener",
        snapshot: "SecurityLayer (type and value, or absent)",
    },
    FixInfo {
        id: "reset-licensing-cache",
        tier: FixTier::Change,
        platform: FixPlatform::Windows,
        parameters: "",
        summary: "export, then delete HKLM\\SOFTWARE\\Microsoft\\MSLicensing (on the employee's PC)",
        snapshot: "the whole key as a reg export file (exact bytes); rollback imports it",
    },
    FixInfo {
        id: "resync-clock",
        tier: FixTier::Safe,
        platform: FixPlatform::Windows,
        parameters: "",
        summary: "resynchronise the clock with its time source (w32tm /resync)",
        snapshot: "nothing (time cannot be put back; rollback is a no-op)",
    },
    FixInfo {
        id: "allow-encryption-oracle",
        tier: FixTier::Downgrade,
        platform: FixPlatform::Windows,
        parameters: "--approval TOKEN --case ID",
        summary: "AllowEncryptionOracle=2 until the approval expires (CredSSP vulnerable; on the employee's PC)",
        snapshot: "AllowEncryptionOracle (type and value, or absent)",
    },
    FixInfo {
        id: "disable-nla",
        tier: FixTier::Downgrade,
        platform: FixPlatform::Windows,
        parameters: "--approval TOKEN --case ID",
        summary: "UserAuthentication=0 (NLA off) until the approval expires",
        snapshot: "UserAuthentication (type and value, or absent)",
    },
    FixInfo {
        id: "xrdp-set-security-layer-negotiate",
        tier: FixTier::Change,
        platform: FixPlatform::Linux,
        parameters: "[--param config=/etc/xrdp/xrdp.ini]",
        summary: "security_layer=negotiate in [Globals]; xrdp reads it on the next connection",
        snapshot: "the ini file's exact bytes, mode and owner",
    },
    FixInfo {
        id: "xrdp-restore-certificate",
        tier: FixTier::Change,
        platform: FixPlatform::Linux,
        parameters: "--param certificate=PATH --param key_file=PATH [--param config=...]",
        summary: "copy a matching, in-date certificate and key over the files the ini names",
        snapshot: "both target files: exact bytes, mode and owner, or the symbolic link, or absence",
    },
    FixInfo {
        id: "xrdp-start",
        tier: FixTier::Safe,
        platform: FixPlatform::Linux,
        parameters: "[--param config=/etc/xrdp/xrdp.ini]",
        summary: "start xrdp with the ini when nothing listens on its port",
        snapshot: "that nothing listened; rollback stops the xrdp it started",
    },
    FixInfo {
        id: "xrdp-set-security-layer-rdp",
        tier: FixTier::Downgrade,
        platform: FixPlatform::Linux,
        parameters: "--approval TOKEN --case ID [--param config=...]",
        summary: "security_layer=rdp (Standard RDP Security) until the approval expires",
        snapshot: "the ini file's exact bytes, mode and owner",
    },
];

impl FixSpec {
    /// The fix's stable id.
    pub fn id(&self) -> &'static str {
        match self {
            FixSpec::FlushDns => "flush-dns",
            FixSpec::StartRdpServices => "start-rdp-services",
            FixSpec::EnableFirewallRule => "enable-firewall-rule",
            FixSpec::EnableGatewayTransport => "enable-gateway-transport",
            FixSpec::RestoreRdpPort { .. } => "restore-rdp-port",
            FixSpec::RenewRdpCertificate => "renew-rdp-certificate",
            FixSpec::EnableTls12 => "enable-tls12",
            FixSpec::SetSecurityLayerNegotiate => "set-security-layer-negotiate",
            FixSpec::ResetLicensingCache => "reset-licensing-cache",
            FixSpec::ResyncClock => "resync-clock",
            FixSpec::AllowEncryptionOracle => "allow-encryption-oracle",
            FixSpec::DisableNla => "disable-nla",
            FixSpec::XrdpSetSecurityLayerNegotiate { .. } => "xrdp-set-security-layer-negotiate",
            FixSpec::XrdpRestoreCertificate { .. } => "xrdp-restore-certificate",
            FixSpec::XrdpStart { .. } => "xrdp-start",
            FixSpec::XrdpSetSecurityLayerRdp { .. } => "xrdp-set-security-layer-rdp",
        }
    }

    pub fn info(&self) -> &'static FixInfo {
        fix_info(self.id()).expect("every fix is in the catalogue")
    }

    pub fn tier(&self) -> FixTier {
        self.info().tier
    }

    /// Builds a fix from its id and `KEY=VALUE` parameters (the command line's words).
    pub fn from_params(id: &str, params: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut params = params.clone();
        let mut config = || -> Result<IniPath, String> {
            match params.remove("config") {
                Some(raw) => IniPath::parse(&raw),
                None => Ok(IniPath::default()),
            }
        };
        let spec = match id {
            "flush-dns" => FixSpec::FlushDns,
            "start-rdp-services" => FixSpec::StartRdpServices,
            "enable-firewall-rule" => FixSpec::EnableFirewallRule,
            "enable-gateway-transport" => FixSpec::EnableGatewayTransport,
            "restore-rdp-port" => {
                let port = match params.remove("port") {
                    None => crate::DEFAULT_RDP_PORT,
                    Some(raw) => raw
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or("port takes a number from 1 to 65535")?,
                };
                FixSpec::RestoreRdpPort { port }
            }
            "renew-rdp-certificate" => FixSpec::RenewRdpCertificate,
            "enable-tls12" => FixSpec::EnableTls12,
            "set-security-layer-negotiate" => FixSpec::SetSecurityLayerNegotiate,
            "reset-licensing-cache" => FixSpec::ResetLicensingCache,
            "resync-clock" => FixSpec::ResyncClock,
            "allow-encryption-oracle" => FixSpec::AllowEncryptionOracle,
            "disable-nla" => FixSpec::DisableNla,
            "xrdp-set-security-layer-negotiate" => {
                FixSpec::XrdpSetSecurityLayerNegotiate { config: config()? }
            }
            "xrdp-restore-certificate" => {
                let config = config()?;
                let mut pem = |key: &str| -> Result<PemPath, String> {
                    let raw = params.remove(key).ok_or_else(|| {
                        format!("xrdp-restore-certificate needs --param {key}=PATH")
                    })?;
                    PemPath::parse(&raw)
                };
                let certificate = pem("certificate")?;
                let key_file = pem("key_file")?;
                FixSpec::XrdpRestoreCertificate {
                    config,
                    certificate,
                    key_file,
                }
            }
            "xrdp-start" => FixSpec::XrdpStart { config: config()? },
            "xrdp-set-security-layer-rdp" => FixSpec::XrdpSetSecurityLayerRdp { config: config()? },
            other => return Err(format!("{other:?} is not a known fix")),
        };
        if let Some(unknown) = params.keys().next() {
            return Err(format!("{id} has no parameter {unknown:?}"));
        }
        Ok(spec)
    }
}

/// Looks a fix up by id.
pub fn fix_info(id: &str) -> Option<&'static FixInfo> {
    FIX_CATALOGUE.iter().find(|f| f.id == id)
}

// ---------------------------------------------------------------------------------------
// Approvals

/// What the server approves: one downgrade, on one agent, for one case, until a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalClaims {
    /// A random id, so an approval is recognisable in logs and journals.
    pub approval_id: String,
    /// The agent (host) the downgrade may run on.
    pub agent_id: String,
    /// The fix id, e.g. `disable-nla`.
    pub fix: String,
    pub case_id: String,
    /// Who approved, for the record (a helpdesk account name).
    pub approved_by: String,
    /// Seconds since the Unix epoch.
    pub issued_at: i64,
    /// Seconds since the Unix epoch. The approval cannot be used after this, and a
    /// downgrade applied with it is reverted by the agent at this time.
    pub expires_at: i64,
}

/// An approval as it travels: `v1.<claims JSON, base64url>.<Ed25519 signature, base64url>`,
/// signed with the server's key over `rdp-doctor-approval-v1\n` + the claims JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApprovalToken(pub String);

impl fmt::Display for ApprovalToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The longest a downgrade may stay in place, whatever an approval says.
pub const MAX_DOWNGRADE_SECS: i64 = 8 * 3600;

// ---------------------------------------------------------------------------------------
// Requests, records, replies

/// A fix the server (or a person at the host) asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixRequest {
    /// Chosen by the caller; a request repeated with the same key returns the first
    /// request's record instead of applying the fix again. 8 to 128 characters of
    /// `A-Z a-z 0-9 . _ : -`.
    pub idempotency_key: String,
    /// The case the fix is for (required for a downgrade: the approval names it).
    #[serde(default)]
    pub case_id: Option<String>,
    pub fix: FixSpec,
    /// Only say what would change.
    #[serde(default)]
    pub dry_run: bool,
    /// Required for a downgrade.
    #[serde(default)]
    pub approval: Option<ApprovalToken>,
}

/// Whether an idempotency key is well formed.
pub fn valid_idempotency_key(key: &str) -> bool {
    (8..=128).contains(&key.len())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
}

/// Undo an applied fix from its snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRequest {
    pub action_id: String,
    /// Roll back even when the state has changed since the fix (someone else changed it
    /// again); without it such a rollback is refused.
    #[serde(default)]
    pub force: bool,
}

/// Ask for the journal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRequest {
    /// Only actions updated at or after this time (seconds since the Unix epoch).
    #[serde(default)]
    pub updated_since: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalResponse {
    pub agent_id: String,
    /// Oldest first.
    pub actions: Vec<ActionRecord>,
}

/// The reply to a fix or rollback request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixResponse {
    /// True when the idempotency key was seen before: `action` is the earlier record and
    /// nothing was applied this time.
    pub repeated: bool,
    pub action: ActionRecord,
}

/// Who asked for an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum Requester {
    /// The server, in a signed request.
    Server,
    /// A person on the host, with `rdp-doctor-agent fix`.
    Local,
    /// The agent itself (an expired downgrade).
    Agent,
}

/// Where an action stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ActionState {
    /// Dry run: `plan` says what would change; nothing changed.
    DryRun,
    /// Nothing changed: a precondition or the approval failed.
    Refused { reason: String },
    /// The state was already what the fix sets; nothing changed.
    AlreadyInPlace,
    /// The change was being made (the snapshot is recorded). Seen after a crash: the change
    /// may be partly in place, and a rollback restores the snapshot.
    Applying,
    /// Changed, and the re-read state is what the fix set.
    Applied,
    /// The change or its verification failed; `rolled_back` says whether the snapshot was
    /// restored.
    Failed { error: String, rolled_back: bool },
    /// Undone from the snapshot on request.
    RolledBack { at: i64, by: Requester },
    /// An expired downgrade, undone from the snapshot by the agent itself.
    AutoReverted { at: i64 },
    /// A rollback was attempted and failed; the agent retries expired downgrades.
    RollbackFailed { at: i64, error: String },
}

impl ActionState {
    /// Whether the fix's change is (or may be) in place on the host.
    pub fn in_effect(&self) -> bool {
        matches!(
            self,
            ActionState::Applied
                | ActionState::Applying
                | ActionState::RollbackFailed { .. }
                | ActionState::Failed {
                    rolled_back: false,
                    ..
                }
        )
    }
}

/// One change a fix makes (or would make).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChange {
    /// What changes, e.g. `HKLM\...\RDP-Tcp\SecurityLayer` or `/etc/xrdp/xrdp.ini`.
    pub target: String,
    pub from: String,
    pub to: String,
}

/// A file as it was before a fix, kept in the journal's snapshot directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FileSnapshot {
    Absent,
    /// A symbolic link (restored as the same link).
    Symlink {
        target: String,
    },
    /// A regular file: its bytes are in `blob` (a file name in the action's snapshot
    /// directory); the hash lets anyone check them without reading them.
    Regular {
        blob: String,
        sha256: String,
        len: u64,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

/// One piece of prior state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "item", rename_all = "kebab-case")]
pub enum StateItem {
    /// A registry value, or its absence.
    Registry {
        key: String,
        name: String,
        value: Option<RegValue>,
    },
    /// A whole registry key exported with `reg export` (bytes in `blob`), or its absence.
    RegistryTree {
        key: String,
        blob: Option<String>,
        sha256: Option<String>,
    },
    Service(ServiceStatus),
    FirewallRule(FirewallRule),
    /// A security descriptor in SDDL.
    Acl {
        path: String,
        sddl: String,
    },
    /// A certificate store listing.
    CertificateStore {
        store: CertStore,
        certificates: Vec<StoreCertificate>,
    },
    File {
        path: String,
        before: FileSnapshot,
    },
    /// A process that did not run (xrdp-start records the port nothing listened on).
    NotListening {
        port: u16,
    },
    /// A fix with nothing to restore says so.
    Nothing {
        why: String,
    },
}

/// The exact prior state a fix recorded before changing anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub items: Vec<StateItem>,
}

/// What a fix changed that its rollback needs besides the snapshot (e.g. the certificate
/// it set aside, the process it started).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Applied {
    /// Services this fix started.
    StartedServices { names: Vec<String> },
    /// Firewall rules this fix enabled.
    EnabledRules { names: Vec<String> },
    /// Certificates this fix moved to the backup store.
    MovedCertificates { thumbprints: Vec<String> },
    /// An xrdp process this fix started (pid and the command line it must still have).
    StartedProcess { pid: u32, cmdline: Vec<String> },
    /// A file this fix wrote, and the SHA-256 of what it wrote (to see later changes).
    WroteFile { path: String, sha256: String },
}

/// The journal's record of one action, kept on the host and readable by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub action_id: String,
    pub idempotency_key: String,
    pub fix: FixSpec,
    pub tier: FixTier,
    pub case_id: Option<String>,
    pub requested_by: Requester,
    /// Seconds since the Unix epoch.
    pub requested_at: i64,
    pub updated_at: i64,
    pub dry_run: bool,
    /// The approval a downgrade ran with.
    pub approval: Option<ApprovalClaims>,
    /// When the agent reverts this downgrade by itself.
    pub revert_at: Option<i64>,
    pub state: ActionState,
    pub plan: Vec<PlannedChange>,
    pub snapshot: Option<Snapshot>,
    #[serde(default)]
    pub applied: Vec<Applied>,
    /// What the verification re-read.
    pub verification: Option<String>,
    /// Every step, in order: `precondition ok`, `snapshot taken`, `changed`, ...
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: i64,
    pub what: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fix_id_round_trips_and_is_catalogued() {
        let mut params = BTreeMap::new();
        params.insert("certificate".to_owned(), "/tmp/c.pem".to_owned());
        params.insert("key_file".to_owned(), "/tmp/k.pem".to_owned());
        for info in FIX_CATALOGUE {
            let mut p = BTreeMap::new();
            if info.id == "xrdp-restore-certificate" {
                p = params.clone();
            }
            let spec = FixSpec::from_params(info.id, &p).unwrap();
            assert_eq!(spec.id(), info.id);
            assert_eq!(spec.tier(), info.tier);
            let json = serde_json::to_value(&spec).unwrap();
            assert_eq!(json["fix"], info.id);
            assert_eq!(serde_json::from_value::<FixSpec>(json).unwrap(), spec);
        }
    }

    #[test]
    fn downgrades_are_the_three_the_brief_names() {
        let downgrades: Vec<&str> = FIX_CATALOGUE
            .iter()
            .filter(|f| f.tier == FixTier::Downgrade)
            .map(|f| f.id)
            .collect();
        assert_eq!(
            downgrades,
            [
                "allow-encryption-oracle",
                "disable-nla",
                "xrdp-set-security-layer-rdp"
            ]
        );
    }

    #[test]
    fn paths_and_keys_are_validated() {
        assert!(PemPath::parse("/etc/xrdp/cert.pem").is_ok());
        assert!(PemPath::parse("/etc/shadow").is_err());
        assert!(PemPath::parse("relative.pem").is_err());
        assert!(serde_json::from_str::<FixSpec>(
            r#"{"fix":"xrdp-restore-certificate","certificate":"/a/../b.pem","key_file":"/k.pem"}"#
        )
        .is_err());
        assert!(valid_idempotency_key("case-12:fix-3"));
        assert!(!valid_idempotency_key("short"));
        assert!(!valid_idempotency_key("has space in it"));
        assert!(serde_json::from_str::<FixSpec>(r#"{"fix":"shell","cmd":"x"}"#).is_err());
    }
}
