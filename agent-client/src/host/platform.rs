//! The platform trait: everything host checks and fixes read or change on the machine,
//! behind one small interface. Windows implements it with fixed programs
//! ([`super::windows`]), Linux for xrdp hosts with `/proc`, files and `nft`
//! ([`super::linux`]), and tests with an in-memory registry and service manager
//! ([`super::fake`]). Check and fix logic is written once against the trait.

use std::time::Duration;

use super::exec::{ExecError, ProgramOutput};
use super::report::{
    CertStore, HostCheckError, HostErrorKind, IniPath, ProcessInfo, RegValue, ServiceStatus,
    StoreCertificate, TcpListenerInfo, Thumbprint,
};

/// Why the platform could not read or change something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error("{0}")]
    Unsupported(String),
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    TimedOut(String),
}

impl PlatformError {
    pub fn unsupported(what: &str) -> Self {
        PlatformError::Unsupported(format!("{what} is not available on this host"))
    }

    /// The error as a check reports it.
    pub fn to_check_error(&self) -> HostCheckError {
        let kind = match self {
            PlatformError::Unsupported(_) => HostErrorKind::Unsupported,
            PlatformError::AccessDenied(_) => HostErrorKind::AccessDenied,
            PlatformError::Failed(_) => HostErrorKind::Failed,
            PlatformError::TimedOut(_) => HostErrorKind::TimedOut,
        };
        HostCheckError {
            kind,
            message: self.to_string(),
        }
    }
}

impl From<ExecError> for PlatformError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::TimedOut { .. } => PlatformError::TimedOut(e.to_string()),
            ExecError::NotStarted { .. } => PlatformError::Failed(e.to_string()),
        }
    }
}

pub type PResult<T> = Result<T, PlatformError>;

/// Registry keys the checks and fixes use. Only these constants ever reach `reg.exe`.
pub mod keys {
    pub const TERMINAL_SERVER: &str = r"HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server";
    pub const RDP_TCP: &str =
        r"HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp";
    pub const TS_POLICY: &str = r"HKLM\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services";
    pub const FIREWALL_RULES: &str = r"HKLM\SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy\FirewallRules";
    pub const FIREWALL_POLICY_RULES: &str =
        r"HKLM\SOFTWARE\Policies\Microsoft\WindowsFirewall\FirewallRules";
    /// The profile keys, with the profile names Windows shows (Private is `StandardProfile`).
    pub const FIREWALL_PROFILES: &[(&str, &str)] = &[
        (
            "Domain",
            r"HKLM\SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy\DomainProfile",
        ),
        (
            "Private",
            r"HKLM\SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy\StandardProfile",
        ),
        (
            "Public",
            r"HKLM\SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy\PublicProfile",
        ),
    ];
    pub const SCHANNEL_PROTOCOLS: &str =
        r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols";
    pub const TLS12_SERVER: &str = r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Server";
    pub const FIPS_POLICY: &str = r"HKLM\SYSTEM\CurrentControlSet\Control\Lsa\FipsAlgorithmPolicy";
    pub const CREDSSP: &str =
        r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\CredSSP\Parameters";
    pub const MSLICENSING: &str = r"HKLM\SOFTWARE\Microsoft\MSLicensing";
}

/// Files and folders whose permissions the checks read. A typed list, not a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AclTarget {
    /// `%ProgramData%\Microsoft\Crypto\RSA\MachineKeys`.
    MachineKeys,
}

impl AclTarget {
    /// The path as reports show it.
    pub fn display(self) -> &'static str {
        match self {
            AclTarget::MachineKeys => r"%ProgramData%\Microsoft\Crypto\RSA\MachineKeys",
        }
    }
}

/// One event-log query: events of some ids from one provider in one channel, recent only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    pub channel: &'static str,
    pub provider: &'static str,
    pub ids: Vec<u32>,
    pub since_minutes: u32,
    pub max_events: u32,
}

/// One event as read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub provider: String,
    pub id: u32,
    /// RFC 3339, UTC.
    pub time: String,
    pub level: Option<u8>,
    pub message: Option<String>,
}

/// The fixed programs checks and fixes may run, with typed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixedProgram {
    /// `ipconfig /flushdns`.
    FlushDns,
    /// `w32tm /resync`.
    ResyncClock,
    /// Domain membership and `Test-ComputerSecureChannel` (a fixed PowerShell script).
    SecureChannel,
    /// The file version of `System32\tspkg.dll` (a fixed PowerShell script).
    TspkgVersion,
    /// The network adapters that are up, with their descriptions (a fixed PowerShell script).
    AdaptersUp,
    /// `nft -j list ruleset`.
    NftRuleset,
    /// `xrdp --config INI` (it forks into the background).
    XrdpStart { config: IniPath },
}

/// What checks and fixes read and change on a host.
///
/// Every method has a default that answers "not available here", so an implementation
/// provides only what its platform has. Methods block; async callers use `spawn_blocking`.
pub trait HostPlatform: Send + Sync {
    /// A registry value, or `None` when it (or its key) does not exist.
    fn reg_get(&self, key: &str, name: &str) -> PResult<Option<RegValue>> {
        let _ = (key, name);
        Err(PlatformError::unsupported("the Windows registry"))
    }

    /// Every value of a key (empty when the key does not exist).
    fn reg_values(&self, key: &str) -> PResult<Vec<(String, RegValue)>> {
        let _ = key;
        Err(PlatformError::unsupported("the Windows registry"))
    }

    /// Creates or replaces a value (creating the key if needed).
    fn reg_set(&self, key: &str, name: &str, value: &RegValue) -> PResult<()> {
        let _ = (key, name, value);
        Err(PlatformError::unsupported("the Windows registry"))
    }

    /// Deletes a value; deleting one that does not exist is not an error.
    fn reg_delete(&self, key: &str, name: &str) -> PResult<()> {
        let _ = (key, name);
        Err(PlatformError::unsupported("the Windows registry"))
    }

    /// The key and its subkeys as a `reg export` file, or `None` when the key does not exist.
    fn reg_export(&self, key: &str) -> PResult<Option<Vec<u8>>> {
        let _ = key;
        Err(PlatformError::unsupported("the Windows registry"))
    }

    /// Imports a `reg export` file.
    fn reg_import(&self, export: &[u8]) -> PResult<()> {
        let _ = export;
        Err(PlatformError::unsupported("the Windows registry"))
    }

    /// Deletes a key and its subkeys; deleting one that does not exist is not an error.
    fn reg_delete_key(&self, key: &str) -> PResult<()> {
        let _ = key;
        Err(PlatformError::unsupported("the Windows registry"))
    }

    /// A service's state; [`super::report::ServiceState::NotInstalled`] when it does not exist.
    fn service(&self, name: &str) -> PResult<ServiceStatus> {
        let _ = name;
        Err(PlatformError::unsupported("the Windows service manager"))
    }

    /// Starts a service and waits until it runs (or the platform's time limit passes).
    fn service_start(&self, name: &str) -> PResult<()> {
        let _ = name;
        Err(PlatformError::unsupported("the Windows service manager"))
    }

    /// Stops a service and waits until it has stopped.
    fn service_stop(&self, name: &str) -> PResult<()> {
        let _ = name;
        Err(PlatformError::unsupported("the Windows service manager"))
    }

    /// Enables or disables one local firewall rule by its id (e.g.
    /// `RemoteDesktop-UserMode-In-TCP`).
    fn firewall_set_enabled(&self, rule: &str, enabled: bool) -> PResult<()> {
        let _ = (rule, enabled);
        Err(PlatformError::unsupported("Windows Defender Firewall"))
    }

    /// The firewall profiles of the networks the host is on now (`Domain`, `Private`,
    /// `Public`).
    fn active_firewall_profiles(&self) -> PResult<Vec<String>> {
        Err(PlatformError::unsupported("Windows Defender Firewall"))
    }

    /// The certificates of a local-machine store (empty when the store does not exist).
    fn cert_store(&self, store: CertStore) -> PResult<Vec<StoreCertificate>> {
        let _ = store;
        Err(PlatformError::unsupported("the Windows certificate store"))
    }

    /// Moves a certificate, with its properties (the private key link), to another store.
    fn cert_move(&self, thumbprint: &Thumbprint, from: CertStore, to: CertStore) -> PResult<()> {
        let _ = (thumbprint, from, to);
        Err(PlatformError::unsupported("the Windows certificate store"))
    }

    /// The security descriptor of a file or folder, in SDDL.
    fn acl_sddl(&self, target: AclTarget) -> PResult<String> {
        let _ = target;
        Err(PlatformError::unsupported("Windows file permissions"))
    }

    /// Replaces the DACL of a file or folder with the one in an SDDL string.
    fn set_acl_sddl(&self, target: AclTarget, sddl: &str) -> PResult<()> {
        let _ = (target, sddl);
        Err(PlatformError::unsupported("Windows file permissions"))
    }

    /// Recent events, newest first.
    fn events(&self, query: &EventQuery) -> PResult<Vec<EventRecord>> {
        let _ = query;
        Err(PlatformError::unsupported("the Windows event log"))
    }

    /// Every listening TCP socket and its owner.
    fn tcp_listeners(&self) -> PResult<Vec<TcpListenerInfo>> {
        Err(PlatformError::unsupported("listing listening sockets"))
    }

    /// Running processes.
    fn processes(&self) -> PResult<Vec<ProcessInfo>> {
        Err(PlatformError::unsupported("listing processes"))
    }

    /// Asks a process to stop (SIGTERM on Linux).
    fn stop_process(&self, pid: u32) -> PResult<()> {
        let _ = pid;
        Err(PlatformError::unsupported("stopping processes"))
    }

    /// Runs one of the fixed programs.
    fn run(&self, program: &FixedProgram) -> PResult<ProgramOutput> {
        let _ = program;
        Err(PlatformError::unsupported("this program"))
    }

    /// How long to wait for something a change sets in motion (a service starting, a
    /// daemon listening) before the verification gives up.
    fn settle_timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
}

/// The platform this agent runs on.
pub fn native(step_timeout: Duration) -> Box<dyn HostPlatform> {
    #[cfg(windows)]
    {
        Box::new(super::windows::WindowsPlatform::new(
            super::exec::SystemRunner,
            step_timeout,
        ))
    }
    #[cfg(not(windows))]
    {
        Box::new(super::linux::LinuxPlatform::new(step_timeout))
    }
}
