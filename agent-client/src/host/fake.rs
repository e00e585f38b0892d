//! An in-memory Windows host for tests: a registry, a service manager, firewall rules (kept,
//! as on Windows, as registry strings), certificate stores, ACLs, events, listening sockets
//! and canned program outputs. Clones share one state, so a test can drop an agent and
//! start another against the same "machine". Failures can be injected per operation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use super::exec::ProgramOutput;
use super::platform::{
    keys, AclTarget, EventQuery, EventRecord, FixedProgram, HostPlatform, PResult, PlatformError,
};
use super::report::{
    CertStore, ProcessInfo, RegValue, ServiceState, ServiceStatus, StartType, StoreCertificate,
    TcpListenerInfo, Thumbprint,
};
use super::windows::set_rule_active;

/// The fake machine's state; tests set it up through [`FakeHost::with`].
#[derive(Debug, Default)]
pub struct FakeState {
    /// (key, value name) in lower case -> (value name as written, value).
    pub registry: BTreeMap<(String, String), (String, RegValue)>,
    pub services: BTreeMap<String, ServiceStatus>,
    pub active_profiles: Vec<String>,
    pub stores: BTreeMap<CertStore, Vec<StoreCertificate>>,
    pub acls: BTreeMap<AclTargetKey, String>,
    pub events: Vec<EventRecord>,
    pub listeners: Vec<TcpListenerInfo>,
    pub processes: Vec<ProcessInfo>,
    /// Outputs of fixed programs, by `format!("{program:?}")`.
    pub programs: BTreeMap<String, ProgramOutput>,
    /// When SessionEnv starts and the Remote Desktop store is empty, Windows makes a new
    /// self-signed certificate: this one.
    pub regenerated_certificate: Option<StoreCertificate>,
    /// Operations (`reg_set`, `service_start`, ...) that fail with "access denied".
    pub failing: BTreeSet<String>,
    /// Registry values whose writes are accepted but do nothing (a policy that puts the
    /// value back): verification catches it.
    pub sticky: BTreeSet<(String, String)>,
    /// Every changing operation, in order, for assertions.
    pub log: Vec<String>,
    next_pid: u32,
}

/// [`AclTarget`] as a map key.
pub type AclTargetKey = String;

fn acl_key(target: AclTarget) -> AclTargetKey {
    format!("{target:?}")
}

fn reg_key(key: &str, name: &str) -> (String, String) {
    (key.to_ascii_lowercase(), name.to_ascii_lowercase())
}

/// The fake host. Cheap to clone; clones share the machine.
#[derive(Debug, Clone, Default)]
pub struct FakeHost {
    state: Arc<Mutex<FakeState>>,
}

impl FakeHost {
    pub fn new() -> Self {
        Self::default()
    }

    /// A Windows 10/11-like host where Remote Desktop works: the values, services, rules
    /// and certificate a freshly enabled host has.
    pub fn healthy_windows() -> Self {
        let host = FakeHost::new();
        host.with(|s| {
            let mut set = |key: &str, name: &str, value: RegValue| {
                s.registry
                    .insert(reg_key(key, name), (name.to_owned(), value));
            };
            set(keys::TERMINAL_SERVER, "fDenyTSConnections", RegValue::RegDword(0));
            set(keys::TERMINAL_SERVER, "TSServerDrainMode", RegValue::RegDword(0));
            set(keys::RDP_TCP, "PortNumber", RegValue::RegDword(3389));
            set(keys::RDP_TCP, "SecurityLayer", RegValue::RegDword(1));
            set(keys::RDP_TCP, "MinEncryptionLevel", RegValue::RegDword(2));
            set(keys::RDP_TCP, "UserAuthentication", RegValue::RegDword(1));
            set(keys::RDP_TCP, "fEnableWinStation", RegValue::RegDword(1));
            set(keys::RDP_TCP, "MaxInstanceCount", RegValue::RegDword(0xFFFF_FFFF));
            set(keys::FIPS_POLICY, "Enabled", RegValue::RegDword(0));
            for (rule, data) in [
                (
                    "RemoteDesktop-UserMode-In-TCP",
                    "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28775|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|",
                ),
                (
                    "RemoteDesktop-UserMode-In-UDP",
                    "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=17|LPort=3389|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28776|Desc=@FirewallAPI.dll,-28777|EmbedCtxt=@FirewallAPI.dll,-28752|",
                ),
                (
                    "RemoteDesktop-Shadow-In-TCP",
                    "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|App=%SystemRoot%\\system32\\RdpSa.exe|Name=@FirewallAPI.dll,-28778|Desc=@FirewallAPI.dll,-28779|EmbedCtxt=@FirewallAPI.dll,-28752|Edge=TRUE|Defer=App|",
                ),
                (
                    "RemoteDesktop-In-TCP-WS",
                    "v2.33|Action=Allow|Active=FALSE|Dir=In|Protocol=6|LPort=3387|App=System|Name=@FirewallAPI.dll,-28780|Desc=@FirewallAPI.dll,-28781|EmbedCtxt=@FirewallAPI.dll,-28782|",
                ),
                (
                    "RemoteDesktop-In-TCP-WSS",
                    "v2.33|Action=Allow|Active=FALSE|Dir=In|Protocol=6|LPort=3392|App=System|Name=@FirewallAPI.dll,-28783|Desc=@FirewallAPI.dll,-28784|EmbedCtxt=@FirewallAPI.dll,-28782|",
                ),
            ] {
                set(keys::FIREWALL_RULES, rule, RegValue::RegSz(data.to_owned()));
            }
            for (_, key) in keys::FIREWALL_PROFILES {
                set(key, "EnableFirewall", RegValue::RegDword(1));
            }
            s.active_profiles = vec!["Private".to_owned()];
            s.next_pid = 1000;
            for (name, start_type) in [
                ("TermService", StartType::Demand),
                ("UmRdpService", StartType::Demand),
                ("SessionEnv", StartType::Demand),
            ] {
                s.next_pid += 4;
                s.services.insert(
                    name.to_owned(),
                    ServiceStatus {
                        name: name.to_owned(),
                        state: ServiceState::Running,
                        start_type: Some(start_type),
                        pid: Some(s.next_pid),
                    },
                );
            }
            let termservice = s.services["TermService"].pid;
            s.listeners = vec![
                TcpListenerInfo {
                    address: "0.0.0.0".into(),
                    port: 3389,
                    pid: termservice,
                    process: Some("svchost".into()),
                },
                TcpListenerInfo {
                    address: "::".into(),
                    port: 3389,
                    pid: termservice,
                    process: Some("svchost".into()),
                },
            ];
            s.stores.insert(
                CertStore::RemoteDesktop,
                vec![self_signed("PC-0423", "11", "2026-01-01T00:00:00Z", "2026-07-01T00:00:00Z")],
            );
            s.acls.insert(
                acl_key(AclTarget::MachineKeys),
                "O:SYG:SYD:PAI(A;;0x12019f;;;WD)(A;;FA;;;BA)".to_owned(),
            );
        });
        host
    }

    /// Changes the state.
    pub fn with<T>(&self, change: impl FnOnce(&mut FakeState) -> T) -> T {
        change(&mut self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A registry value as the fake holds it.
    pub fn value(&self, key: &str, name: &str) -> Option<RegValue> {
        self.lock()
            .registry
            .get(&reg_key(key, name))
            .map(|(_, v)| v.clone())
    }

    pub fn set_value(&self, key: &str, name: &str, value: RegValue) {
        self.lock()
            .registry
            .insert(reg_key(key, name), (name.to_owned(), value));
    }

    pub fn remove_value(&self, key: &str, name: &str) {
        self.lock().registry.remove(&reg_key(key, name));
    }

    pub fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    fn check(&self, op: &str) -> PResult<()> {
        if self.lock().failing.contains(op) {
            return Err(PlatformError::AccessDenied(format!(
                "{op} refused by the test"
            )));
        }
        Ok(())
    }

    fn record(&self, entry: String) {
        self.lock().log.push(entry);
    }
}

/// A self-signed certificate as the store lists it; `tag` makes the thumbprint unique.
pub fn self_signed(host: &str, tag: &str, not_before: &str, not_after: &str) -> StoreCertificate {
    let hex: String = tag
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect::<String>();
    let thumb = format!("{:0>40}", hex.to_ascii_uppercase());
    StoreCertificate {
        thumbprint: Thumbprint::parse(&thumb).expect("40 hex digits"),
        subject: format!("CN={host}"),
        issuer: format!("CN={host}"),
        not_before: not_before.to_owned(),
        not_after: not_after.to_owned(),
        has_private_key: true,
        private_key_readable: Some(true),
    }
}

impl HostPlatform for FakeHost {
    fn reg_get(&self, key: &str, name: &str) -> PResult<Option<RegValue>> {
        self.check("reg_get")?;
        Ok(self.value(key, name))
    }

    fn reg_values(&self, key: &str) -> PResult<Vec<(String, RegValue)>> {
        self.check("reg_get")?;
        let key = key.to_ascii_lowercase();
        Ok(self
            .lock()
            .registry
            .iter()
            .filter(|((k, _), _)| *k == key)
            .map(|(_, (name, value))| (name.clone(), value.clone()))
            .collect())
    }

    fn reg_set(&self, key: &str, name: &str, value: &RegValue) -> PResult<()> {
        self.check("reg_set")?;
        self.record(format!("reg_set {key}\\{name} = {value}"));
        if self.lock().sticky.contains(&reg_key(key, name)) {
            return Ok(());
        }
        self.set_value(key, name, value.clone());
        Ok(())
    }

    fn reg_delete(&self, key: &str, name: &str) -> PResult<()> {
        self.check("reg_delete")?;
        self.record(format!("reg_delete {key}\\{name}"));
        self.remove_value(key, name);
        Ok(())
    }

    fn reg_export(&self, key: &str) -> PResult<Option<Vec<u8>>> {
        self.check("reg_export")?;
        let prefix = key.to_ascii_lowercase();
        let state = self.lock();
        let values: Vec<(&String, &String, &RegValue)> = state
            .registry
            .iter()
            .filter(|((k, _), _)| *k == prefix || k.starts_with(&format!("{prefix}\\")))
            .map(|((k, _), (name, value))| (k, name, value))
            .collect();
        if values.is_empty() {
            return Ok(None);
        }
        // Not the `reg export` format: the fake's own, which only the fake imports.
        Ok(Some(
            serde_json::to_vec(&values).map_err(|e| PlatformError::Failed(e.to_string()))?,
        ))
    }

    fn reg_import(&self, export: &[u8]) -> PResult<()> {
        self.check("reg_import")?;
        let values: Vec<(String, String, RegValue)> = serde_json::from_slice(export)
            .map_err(|e| PlatformError::Failed(format!("not a fake export: {e}")))?;
        self.record(format!("reg_import {} values", values.len()));
        let mut state = self.lock();
        for (key, name, value) in values {
            state
                .registry
                .insert((key, name.to_ascii_lowercase()), (name, value));
        }
        Ok(())
    }

    fn reg_delete_key(&self, key: &str) -> PResult<()> {
        self.check("reg_delete_key")?;
        self.record(format!("reg_delete_key {key}"));
        let prefix = key.to_ascii_lowercase();
        self.lock()
            .registry
            .retain(|(k, _), _| !(*k == prefix || k.starts_with(&format!("{prefix}\\"))));
        Ok(())
    }

    fn service(&self, name: &str) -> PResult<ServiceStatus> {
        self.check("service")?;
        Ok(self
            .lock()
            .services
            .get(name)
            .cloned()
            .unwrap_or(ServiceStatus {
                name: name.to_owned(),
                state: ServiceState::NotInstalled,
                start_type: None,
                pid: None,
            }))
    }

    fn service_start(&self, name: &str) -> PResult<()> {
        self.check("service_start")?;
        self.record(format!("service_start {name}"));
        let mut state = self.lock();
        state.next_pid += 4;
        let pid = state.next_pid;
        let service = state
            .services
            .get_mut(name)
            .ok_or_else(|| PlatformError::Failed(format!("{name} is not installed")))?;
        if service.start_type == Some(StartType::Disabled) {
            return Err(PlatformError::Failed(format!(
                "{name} is disabled and cannot be started (1058)"
            )));
        }
        if service.state != ServiceState::Running {
            service.state = ServiceState::Running;
            service.pid = Some(pid);
        }
        if name == "SessionEnv" {
            let empty = state
                .stores
                .get(&CertStore::RemoteDesktop)
                .is_none_or(Vec::is_empty);
            if empty {
                if let Some(cert) = state.regenerated_certificate.clone() {
                    state
                        .stores
                        .entry(CertStore::RemoteDesktop)
                        .or_default()
                        .push(cert);
                }
            }
        }
        if name == "TermService" {
            // The listener follows PortNumber when TermService starts.
            let port = state
                .registry
                .get(&reg_key(keys::RDP_TCP, "PortNumber"))
                .and_then(|(_, v)| v.as_dword())
                .unwrap_or(3389) as u16;
            state
                .listeners
                .retain(|l| l.pid != Some(pid) && l.process.as_deref() != Some("svchost"));
            state.listeners.push(TcpListenerInfo {
                address: "0.0.0.0".into(),
                port,
                pid: Some(pid),
                process: Some("svchost".into()),
            });
        }
        Ok(())
    }

    fn service_stop(&self, name: &str) -> PResult<()> {
        self.check("service_stop")?;
        self.record(format!("service_stop {name}"));
        let mut state = self.lock();
        let pid = match state.services.get_mut(name) {
            Some(service) => {
                service.state = ServiceState::Stopped;
                service.pid.take()
            }
            None => return Err(PlatformError::Failed(format!("{name} is not installed"))),
        };
        if pid.is_some() {
            state.listeners.retain(|l| l.pid != pid);
        }
        Ok(())
    }

    fn firewall_set_enabled(&self, rule: &str, enabled: bool) -> PResult<()> {
        self.check("firewall_set_enabled")?;
        self.record(format!("firewall_set_enabled {rule} {enabled}"));
        let mut state = self.lock();
        let entry = state
            .registry
            .get_mut(&reg_key(keys::FIREWALL_RULES, rule))
            .ok_or_else(|| PlatformError::Failed(format!("no rule named {rule}")))?;
        if let RegValue::RegSz(data) = &mut entry.1 {
            *data = set_rule_active(data, enabled);
        }
        Ok(())
    }

    fn active_firewall_profiles(&self) -> PResult<Vec<String>> {
        self.check("active_firewall_profiles")?;
        Ok(self.lock().active_profiles.clone())
    }

    fn cert_store(&self, store: CertStore) -> PResult<Vec<StoreCertificate>> {
        self.check("cert_store")?;
        Ok(self.lock().stores.get(&store).cloned().unwrap_or_default())
    }

    fn cert_move(&self, thumbprint: &Thumbprint, from: CertStore, to: CertStore) -> PResult<()> {
        self.check("cert_move")?;
        self.record(format!("cert_move {thumbprint} {from:?} -> {to:?}"));
        let mut state = self.lock();
        let source = state.stores.entry(from).or_default();
        let at = source
            .iter()
            .position(|c| &c.thumbprint == thumbprint)
            .ok_or_else(|| PlatformError::Failed(format!("{thumbprint} is not in {from:?}")))?;
        let cert = source.remove(at);
        state.stores.entry(to).or_default().push(cert);
        Ok(())
    }

    fn acl_sddl(&self, target: AclTarget) -> PResult<String> {
        self.check("acl_sddl")?;
        self.lock()
            .acls
            .get(&acl_key(target))
            .cloned()
            .ok_or_else(|| PlatformError::Failed(format!("no ACL for {}", target.display())))
    }

    fn set_acl_sddl(&self, target: AclTarget, sddl: &str) -> PResult<()> {
        self.check("set_acl_sddl")?;
        self.record(format!("set_acl_sddl {} {sddl}", target.display()));
        self.lock().acls.insert(acl_key(target), sddl.to_owned());
        Ok(())
    }

    fn events(&self, query: &EventQuery) -> PResult<Vec<EventRecord>> {
        self.check("events")?;
        let mut events: Vec<EventRecord> = self
            .lock()
            .events
            .iter()
            .filter(|e| e.provider == query.provider && query.ids.contains(&e.id))
            .cloned()
            .collect();
        events.sort_by(|a, b| b.time.cmp(&a.time));
        events.truncate(query.max_events as usize);
        Ok(events)
    }

    fn tcp_listeners(&self) -> PResult<Vec<TcpListenerInfo>> {
        self.check("tcp_listeners")?;
        Ok(self.lock().listeners.clone())
    }

    fn processes(&self) -> PResult<Vec<ProcessInfo>> {
        self.check("processes")?;
        Ok(self.lock().processes.clone())
    }

    fn run(&self, program: &FixedProgram) -> PResult<ProgramOutput> {
        let name = format!("{program:?}");
        self.check(&name)?;
        self.record(format!("run {name}"));
        self.lock()
            .programs
            .get(&name)
            .cloned()
            .ok_or_else(|| PlatformError::Failed(format!("the fake has no output for {name}")))
    }

    fn settle_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(50)
    }
}
