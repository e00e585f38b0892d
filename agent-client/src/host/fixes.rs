//! The fixes themselves: for each [`FixSpec`], a precondition, a snapshot of the exact prior
//! state, a plan (what would change), the change, a verification that re-reads the state,
//! and a rollback from the snapshot. [`super::service::FixService`] runs these steps in
//! order and keeps the journal.
//!
//! Rollbacks restore only what the fix itself set, and only where the state is still what
//! the fix set (someone may have changed it again since); `force` restores the snapshot
//! regardless. A file the fix wrote and nobody touched since is restored byte for byte.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::checks::{
    analyse_pair, certificate_usable, is_websocket_rule, machinekeys_missing, now_rfc3339,
    rdp_firewall_rules, xrdp_port, RDP_SERVICES,
};
use super::fix::{Applied, FileSnapshot, FixSpec, PemPath, PlannedChange, Snapshot, StateItem};
use super::journal::{sha256_hex, Journal};
use super::linux::{ini_get, ini_has_section, ini_set, key_size, xrdp_cert_paths, PublicHalf};
use super::platform::{keys, AclTarget, FixedProgram, HostPlatform, PlatformError};
use super::report::{
    CertStore, FirewallRule, IniPath, RegValue, ServiceState, StartType, StoreCertificate,
    Thumbprint,
};
use super::windows::parse_sddl_dacl;
use crate::rdp::report::Validity;

/// What the steps of one action share.
pub struct Ctx<'a> {
    pub platform: &'a dyn HostPlatform,
    pub journal: &'a Journal,
    pub action_id: &'a str,
}

/// Why a step did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FixError {
    /// A precondition does not hold; nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// Reading or changing the state failed.
    #[error("{0}")]
    Failed(String),
}

impl From<PlatformError> for FixError {
    fn from(e: PlatformError) -> Self {
        FixError::Failed(e.to_string())
    }
}

impl From<std::io::Error> for FixError {
    fn from(e: std::io::Error) -> Self {
        FixError::Failed(e.to_string())
    }
}

type Step<T> = Result<T, FixError>;

/// The steps of one fix.
pub trait FixSteps {
    /// What state the fix touches, to refuse two actions on the same state at once.
    fn targets(&self) -> Vec<String>;
    fn precondition(&self, ctx: &Ctx<'_>) -> Step<()>;
    fn snapshot(&self, ctx: &Ctx<'_>) -> Step<Snapshot>;
    /// What would change; empty when the state already is what the fix sets.
    fn plan(&self, ctx: &Ctx<'_>, snapshot: &Snapshot) -> Step<Vec<PlannedChange>>;
    fn apply(&self, ctx: &Ctx<'_>, snapshot: &Snapshot) -> Step<Vec<Applied>>;
    /// Re-reads the state; `Err` when it is not what the fix set.
    fn verify(&self, ctx: &Ctx<'_>, applied: &[Applied]) -> Step<String>;
    /// Restores the snapshot; says what it did.
    fn rollback(
        &self,
        ctx: &Ctx<'_>,
        snapshot: &Snapshot,
        applied: &[Applied],
        force: bool,
    ) -> Step<String>;
}

/// The steps for a fix.
pub fn steps(spec: &FixSpec) -> Box<dyn FixSteps> {
    match spec {
        FixSpec::FlushDns => Box::new(ProgramFix {
            program: FixedProgram::FlushDns,
            what: "the DNS client cache",
        }),
        FixSpec::ResyncClock => Box::new(ProgramFix {
            program: FixedProgram::ResyncClock,
            what: "the clock (w32tm /resync)",
        }),
        FixSpec::StartRdpServices => Box::new(StartServices),
        FixSpec::EnableFirewallRule => Box::new(EnableRules { websocket: false }),
        FixSpec::EnableGatewayTransport => Box::new(EnableRules { websocket: true }),
        FixSpec::RestoreRdpPort { port } => Box::new(RestorePort { port: *port }),
        FixSpec::RenewRdpCertificate => Box::new(RenewCertificate),
        FixSpec::EnableTls12 => Box::new(RegistryFix {
            values: vec![
                (keys::TLS12_SERVER, "Enabled", RegValue::RegDword(1)),
                (
                    keys::TLS12_SERVER,
                    "DisabledByDefault",
                    RegValue::RegDword(0),
                ),
            ],
            policy_guard: None,
            note: "Schannel reads these at start: the host needs a restart for them to apply.",
        }),
        FixSpec::SetSecurityLayerNegotiate => Box::new(RegistryFix {
            values: vec![(keys::RDP_TCP, "SecurityLayer", RegValue::RegDword(1))],
            policy_guard: Some((keys::TS_POLICY, "SecurityLayer")),
            note: "New connections negotiate the security layer.",
        }),
        FixSpec::AllowEncryptionOracle => Box::new(RegistryFix {
            values: vec![(
                keys::CREDSSP,
                "AllowEncryptionOracle",
                RegValue::RegDword(2),
            )],
            policy_guard: None,
            note: "CredSSP accepts unpatched peers until this is reverted.",
        }),
        FixSpec::DisableNla => Box::new(RegistryFix {
            values: vec![(keys::RDP_TCP, "UserAuthentication", RegValue::RegDword(0))],
            policy_guard: Some((keys::TS_POLICY, "UserAuthentication")),
            note: "New connections no longer need Network Level Authentication.",
        }),
        FixSpec::ResetLicensingCache => Box::new(ResetLicensing),
        FixSpec::XrdpSetSecurityLayerNegotiate { config } => Box::new(IniFix {
            config: config.clone(),
            key: "security_layer",
            value: "negotiate",
        }),
        FixSpec::XrdpSetSecurityLayerRdp { config } => Box::new(IniFix {
            config: config.clone(),
            key: "security_layer",
            value: "rdp",
        }),
        FixSpec::XrdpRestoreCertificate {
            config,
            certificate,
            key_file,
        } => Box::new(RestoreCertificate {
            config: config.clone(),
            certificate: certificate.clone(),
            key_file: key_file.clone(),
        }),
        FixSpec::XrdpStart { config } => Box::new(XrdpStart {
            config: config.clone(),
        }),
    }
}

/// Polls `done` until it holds or `limit` passes.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if done() {
            return true;
        }
        if started.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100).min(limit));
    }
}

fn shown(value: &Option<RegValue>) -> String {
    value
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "(absent)".to_owned())
}

// ---------------------------------------------------------------------------------------
// Fixed programs with nothing to restore

struct ProgramFix {
    program: FixedProgram,
    what: &'static str,
}

impl FixSteps for ProgramFix {
    fn targets(&self) -> Vec<String> {
        Vec::new()
    }

    fn precondition(&self, _: &Ctx<'_>) -> Step<()> {
        Ok(())
    }

    fn snapshot(&self, _: &Ctx<'_>) -> Step<Snapshot> {
        Ok(Snapshot {
            items: vec![StateItem::Nothing {
                why: format!("{} cannot (and need not) be put back", self.what),
            }],
        })
    }

    fn plan(&self, _: &Ctx<'_>, _: &Snapshot) -> Step<Vec<PlannedChange>> {
        Ok(vec![PlannedChange {
            target: self.what.to_owned(),
            from: "as it is".to_owned(),
            to: match self.program {
                FixedProgram::FlushDns => "emptied".to_owned(),
                _ => "resynchronised with its time source".to_owned(),
            },
        }])
    }

    fn apply(&self, ctx: &Ctx<'_>, _: &Snapshot) -> Step<Vec<Applied>> {
        let out = ctx.platform.run(&self.program)?;
        if !out.success() {
            return Err(FixError::Failed(format!(
                "{:?} exited with {:?}: {} {}",
                self.program,
                out.code,
                out.stdout.trim(),
                out.stderr.trim()
            )));
        }
        Ok(Vec::new())
    }

    fn verify(&self, _: &Ctx<'_>, _: &[Applied]) -> Step<String> {
        Ok(format!("{:?} exited with 0", self.program))
    }

    fn rollback(&self, _: &Ctx<'_>, _: &Snapshot, _: &[Applied], _: bool) -> Step<String> {
        Ok(format!(
            "nothing to restore: {} cannot be put back",
            self.what
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Registry values

struct RegistryFix {
    values: Vec<(&'static str, &'static str, RegValue)>,
    /// A policy value that overrides the local one: when set, the fix cannot help.
    policy_guard: Option<(&'static str, &'static str)>,
    note: &'static str,
}

fn reg_snapshot(
    p: &dyn HostPlatform,
    values: &[(&'static str, &'static str, RegValue)],
) -> Step<Snapshot> {
    let mut items = Vec::new();
    for (key, name, _) in values {
        items.push(StateItem::Registry {
            key: (*key).to_owned(),
            name: (*name).to_owned(),
            value: p.reg_get(key, name)?,
        });
    }
    Ok(Snapshot { items })
}

fn reg_plan(
    snapshot: &Snapshot,
    values: &[(&'static str, &'static str, RegValue)],
) -> Vec<PlannedChange> {
    let mut changes = Vec::new();
    for item in &snapshot.items {
        if let StateItem::Registry { key, name, value } = item {
            if let Some((_, _, desired)) = values.iter().find(|(k, n, _)| k == key && n == name) {
                if value.as_ref() != Some(desired) {
                    changes.push(PlannedChange {
                        target: format!("{key}\\{name}"),
                        from: shown(value),
                        to: desired.to_string(),
                    });
                }
            }
        }
    }
    changes
}

fn reg_verify(
    p: &dyn HostPlatform,
    values: &[(&'static str, &'static str, RegValue)],
) -> Step<String> {
    let mut read = Vec::new();
    for (key, name, desired) in values {
        let now = p.reg_get(key, name)?;
        if now.as_ref() != Some(desired) {
            return Err(FixError::Failed(format!(
                "{key}\\{name} reads {} after the change, not {desired}",
                shown(&now)
            )));
        }
        read.push(format!("{name} = {desired}"));
    }
    Ok(format!("re-read: {}", read.join(", ")))
}

/// Puts each value back where it still holds what the fix set (or everywhere, forced).
fn reg_rollback(
    p: &dyn HostPlatform,
    snapshot: &Snapshot,
    values: &[(&'static str, &'static str, RegValue)],
    force: bool,
) -> Step<String> {
    let mut said = Vec::new();
    for item in &snapshot.items {
        let StateItem::Registry { key, name, value } = item else {
            continue;
        };
        let desired = values
            .iter()
            .find(|(k, n, _)| k == key && n == name)
            .map(|(_, _, v)| v);
        let now = p.reg_get(key, name)?;
        if !force && now.as_ref() != desired && now.as_ref() != value.as_ref() {
            said.push(format!(
                "left {name} at {}: it changed since the fix",
                shown(&now)
            ));
            continue;
        }
        match value {
            Some(prior) => p.reg_set(key, name, prior)?,
            None => p.reg_delete(key, name)?,
        }
        let back = p.reg_get(key, name)?;
        if &back != value {
            return Err(FixError::Failed(format!(
                "{key}\\{name} reads {} after the rollback, not {}",
                shown(&back),
                shown(value)
            )));
        }
        said.push(format!("{name} restored to {}", shown(value)));
    }
    Ok(said.join("; "))
}

impl FixSteps for RegistryFix {
    fn targets(&self) -> Vec<String> {
        self.values
            .iter()
            .map(|(k, n, _)| format!("reg:{k}\\{n}").to_ascii_lowercase())
            .collect()
    }

    fn precondition(&self, ctx: &Ctx<'_>) -> Step<()> {
        if let Some((key, name)) = self.policy_guard {
            if let Some(value) = ctx.platform.reg_get(key, name)? {
                return Err(FixError::Refused(format!(
                    "Group Policy sets {name} ({value}); a local change would have no effect: change the policy"
                )));
            }
        }
        Ok(())
    }

    fn snapshot(&self, ctx: &Ctx<'_>) -> Step<Snapshot> {
        reg_snapshot(ctx.platform, &self.values)
    }

    fn plan(&self, _: &Ctx<'_>, snapshot: &Snapshot) -> Step<Vec<PlannedChange>> {
        Ok(reg_plan(snapshot, &self.values))
    }

    fn apply(&self, ctx: &Ctx<'_>, _: &Snapshot) -> Step<Vec<Applied>> {
        for (key, name, value) in &self.values {
            ctx.platform.reg_set(key, name, value)?;
        }
        Ok(Vec::new())
    }

    fn verify(&self, ctx: &Ctx<'_>, _: &[Applied]) -> Step<String> {
        Ok(format!(
            "{}; {}",
            reg_verify(ctx.platform, &self.values)?,
            self.note
        ))
    }

    fn rollback(
        &self,
        ctx: &Ctx<'_>,
        snapshot: &Snapshot,
        _: &[Applied],
        force: bool,
    ) -> Step<String> {
        reg_rollback(ctx.platform, snapshot, &self.values, force)
    }
}

// ---------------------------------------------------------------------------------------
// Services

struct StartServices;

impl FixSteps for StartServices {
    fn targets(&self) -> Vec<String> {
        RDP_SERVICES
            .iter()
            .map(|s| format!("service:{s}").to_ascii_lowercase())
            .collect()
    }

    fn precondition(&self, ctx: &Ctx<'_>) -> Step<()> {
        for name in RDP_SERVICES {
            let s = ctx.platform.service(name)?;
            if s.state == ServiceState::NotInstalled {
                return Err(FixError::Refused(format!("{name} is not installed")));
            }
            if s.state != ServiceState::Running && s.start_type == Some(StartType::Disabled) {
                return Err(FixError::Refused(format!(
                    "{name} is disabled; starting it needs its start type changed, which this fix does not do"
                )));
            }
        }
        Ok(())
    }

    fn snapshot(&self, ctx: &Ctx<'_>) -> Step<Snapshot> {
        let mut items = Vec::new();
        for name in RDP_SERVICES {
            items.push(StateItem::Service(ctx.platform.service(name)?));
        }
        Ok(Snapshot { items })
    }

    fn plan(&self, _: &Ctx<'_>, snapshot: &Snapshot) -> Step<Vec<PlannedChange>> {
        Ok(snapshot
            .items
            .iter()
            .filter_map(|item| match item {
                StateItem::Service(s) if s.state != ServiceState::Running => Some(PlannedChange {
                    target: format!("service {}", s.name),
                    from: format!("{:?}", s.state),
                    to: "Running".to_owned(),
                }),
                _ => None,
            })
            .collect())
    }

    fn apply(&self, ctx: &Ctx<'_>, snapshot: &Snapshot) -> Step<Vec<Applied>> {
        let mut started = Vec::new();
        for item in &snapshot.items {
            if let StateItem::Service(s) = item {
                if s.state != ServiceState::Running {
                    ctx.platform.service_start(&s.name)?;
                    started.push(s.name.clone());
                }
            }
        }
        Ok(vec![Applied::StartedServices { names: started }])
    }

    fn verify(&self, ctx: &Ctx<'_>, _: &[Applied]) -> Step<String> {
        for name in RDP_SERVICES {
            let s = ctx.platform.service(name)?;
            if s.state != ServiceState::Running {
                return Err(FixError::Failed(format!(
                    "{name} is {:?} after starting it",
                    s.state
                )));
            }
        }
        Ok(format!("re-read: {} running", RDP_SERVICES.join(", ")))
    }

    fn rollback(&self, ctx: &Ctx<'_>, snapshot: &Snapshot, _: &[Applied], _: bool) -> Step<String> {
        // From the snapshot, so that a fix interrupted half-way is undone as well: every
        // service that was not running before and runs now is stopped again, dependents
        // first (UmRdpService depends on TermService).
        let mut stopped = Vec::new();
        for item in snapshot.items.iter().rev() {
            let StateItem::Service(before) = item else {
                continue;
            };
            if before.state == ServiceState::Running {
                continue;
            }
            if ctx.platform.service(&before.name)?.state == ServiceState::Running {
                ctx.platform.service_stop(&before.name)?;
                stopped.push(before.name.clone());
            }
        }
        Ok(if stopped.is_empty() {
            "no service needed stopping".to_owned()
        } else {
            format!("stopped again: {}", stopped.join(", "))
        })
    }
}

// ---------------------------------------------------------------------------------------
// Firewall rules

struct EnableRules {
    websocket: bool,
}

impl EnableRules {
    fn group_rules(&self, p: &dyn HostPlatform) -> Step<(Vec<FirewallRule>, Vec<FirewallRule>)> {
        let port = p
            .reg_get(keys::RDP_TCP, "PortNumber")?
            .and_then(|v| v.as_dword())
            .and_then(|n| u16::try_from(n).ok())
            .unwrap_or(crate::DEFAULT_RDP_PORT);
        let rules = rdp_firewall_rules(p, port)?;
        let (local, policy): (Vec<_>, Vec<_>) = rules
            .into_iter()
            .partition(|r| r.store == super::report::RuleStore::Local);
        let ours = local
            .into_iter()
            .filter(|r| r.name.to_ascii_lowercase().starts_with("remotedesktop-"))
            .filter(|r| is_websocket_rule(r) == self.websocket)
            .collect();
        Ok((ours, policy))
    }
}

impl FixSteps for EnableRules {
    fn targets(&self) -> Vec<String> {
        vec![if self.websocket {
            "firewall:websocket"
        } else {
            "firewall:remote-desktop"
        }
        .to_owned()]
    }

    fn precondition(&self, ctx: &Ctx<'_>) -> Step<()> {
        let (ours, policy) = self.group_rules(ctx.platform)?;
        if ours.is_empty() {
            return Err(FixError::Refused(
                "the host has no rules of this group to enable".to_owned(),
            ));
        }
        if let Some(block) = policy
            .iter()
            .find(|r| r.enabled && r.action.eq_ignore_ascii_case("Block"))
        {
            return Err(FixError::Refused(format!(
                "the Group Policy rule {} blocks Remote Desktop and wins over local rules: change the policy",
                block.name
            )));
        }
        Ok(())
    }

    fn snapshot(&self, ctx: &Ctx<'_>) -> Step<Snapshot> {
        let (ours, _) = self.group_rules(ctx.platform)?;
        Ok(Snapshot {
            items: ours.into_iter().map(StateItem::FirewallRule).collect(),
        })
    }

    fn plan(&self, _: &Ctx<'_>, snapshot: &Snapshot) -> Step<Vec<PlannedChange>> {
        Ok(snapshot
            .items
            .iter()
            .filter_map(|item| match item {
                StateItem::FirewallRule(r) if !r.enabled => Some(PlannedChange {
                    target: format!("firewall rule {}", r.name),
                    from: "disabled".to_owned(),
                    to: "enabled".to_owned(),
                }),
                _ => None,
            })
            .collect())
    }

    fn apply(&self, ctx: &Ctx<'_>, snapshot: &Snapshot) -> Step<Vec<Applied>> {
        let mut names = Vec::new();
        for item in &snapshot.items {
            if let StateItem::FirewallRule(r) = item {
                if !r.enabled {
                    ctx.platform.firewall_set_enabled(&r.name, true)?;
                    names.push(r.name.clone());
                }
            }
        }
        Ok(vec![Applied::EnabledRules { names }])
    }

    fn verify(&self, ctx: &Ctx<'_>, _: &[Applied]) -> Step<String> {
        let (ours, _) = self.group_rules(ctx.platform)?;
        if let Some(off) = ours.iter().find(|r| !r.enabled) {
            return Err(FixError::Failed(format!("{} is still disabled", off.name)));
        }
        Ok(format!(
            "re-read: enabled {}",
            ours.iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    fn rollback(&self, ctx: &Ctx<'_>, snapshot: &Snapshot, _: &[Applied], _: bool) -> Step<String> {
        let mut disabled = Vec::new();
        for item in &snapshot.items {
            if let StateItem::FirewallRule(before) = item {
                if !before.enabled {
                    ctx.platform.firewall_set_enabled(&before.name, false)?;
                    disabled.push(before.name.clone());
                }
            }
        }
        let (now, _) = self.group_rules(ctx.platform)?;
        for item in &snapshot.items {
            if let StateItem::FirewallRule(before) = item {
                if let Some(after) = now.iter().find(|r| r.name == before.name) {
                    if after.enabled != before.enabled {
                        return Err(FixError::Failed(format!(
                            "{} is {} after the rollback",
                            before.name,
                            if after.enabled { "enabled" } else { "disabled" }
                        )));
                    }
                }
            }
        }
        Ok(if disabled.is_empty() {
            "no rule needed disabling".to_owned()
        } else {
            format!("disabled again: {}", disabled.join(", "))
        })
    }
}

// ---------------------------------------------------------------------------------------
// Listener port

struct RestorePort {
    port: u16,
}

impl RestorePort {
    fn values(&self) -> Vec<(&'static str, &'static str, RegValue)> {
        vec![(
            keys::RDP_TCP,
            "PortNumber",
            RegValue::RegDword(u32::from(self.port)),
        )]
    }

    /// Stops UmRdpService (it depends on TermService), restarts TermService, starts
    /// UmRdpService again: the listener picks up PortNumber.
    fn restart(&self, p: &dyn HostPlatform) -> Step<()> {
        let um = p.service("UmRdpService")?;
        if um.state == ServiceState::Running {
            p.service_stop("UmRdpService")?;
        }
        p.service_stop("TermService")?;
        p.service_start("TermService")?;
        if um.state == ServiceState::Running {
            p.service_start("UmRdpService")?;
        }
        Ok(())
    }

    fn listening_on(&self, p: &dyn HostPlatform, port: u16) -> Step<bool> {
        let pid = p.service("TermService")?.pid;
        Ok(pid.is_some()
            && p.tcp_listeners()?
                .iter()
                .any(|l| l.port == port && l.pid == pid))
    }
}

impl FixSteps for RestorePort {
    fn targets(&self) -> Vec<String> {
        vec![
            format!("reg:{}\\portnumber", keys::RDP_TCP).to_ascii_lowercase(),
            "service:termservice".to_owned(),
        ]
    }

    fn precondition(&self, ctx: &Ctx<'_>) -> Step<()> {
        let termservice = ctx.platform.service("TermService")?;
        if let Some(other) = ctx.platform.tcp_listeners()?.into_iter().find(|l| {
            l.port == self.port && (termservice.pid.is_none() || l.pid != termservice.pid)
        }) {
            return Err(FixError::Refused(format!(
                "port {} is held by {} (pid {}): restoring the listener there would fail",
                self.port,
                other.process.as_deref().unwrap_or("another process"),
                other
                    .pid
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "?".into())
            )));
        }
        Ok(())
    }

    fn snapshot(&self, ctx: &Ctx<'_>) -> Step<Snapshot> {
        reg_snapshot(ctx.platform, &self.values())
    }

    fn plan(&self, _: &Ctx<'_>, snapshot: &Snapshot) -> Step<Vec<PlannedChange>> {
        let mut changes = reg_plan(snapshot, &self.values());
        if !changes.is_empty() {
            changes.push(PlannedChange {
                target: "service TermService".to_owned(),
                from: "running".to_owned(),
                to: "restarted (open sessions are disconnected)".to_owned(),
            });
        }
        Ok(changes)
    }

    fn apply(&self, ctx: &Ctx<'_>, _: &Snapshot) -> Step<Vec<Applied>> {
        for (key, name, value) in self.values() {
            ctx.platform.reg_set(key, name, &value)?;
        }
        self.restart(ctx.platform)?;
        Ok(Vec::new())
    }

    fn verify(&self, ctx: &Ctx<'_>, _: &[Applied]) -> Step<String> {
        let read = reg_verify(ctx.platform, &self.values())?;
        let p = ctx.platform;
        if !wait_until(p.settle_timeout(), || {
            self.listening_on(p, self.port).unwrap_or(false)
        }) {
            return Err(FixError::Failed(format!(
                "TermService does not listen on {} after the restart",
                self.port
            )));
        }
        Ok(format!("{read}; TermService listens on {}", self.port))
    }

    fn rollback(
        &self,
        ctx: &Ctx<'_>,
        snapshot: &Snapshot,
        _: &[Applied],
        force: bool,
    ) -> Step<String> {
        let said = reg_rollback(ctx.platform, snapshot, &self.values(), force)?;
        self.restart(ctx.platform)?;
        Ok(format!("{said}; TermService restarted"))
    }
}

// ---------------------------------------------------------------------------------------
// The self-signed RDP certificate

struct RenewCertificate;

fn self_signed_in(certs: &[StoreCertificate]) -> Vec<&StoreCertificate> {
    certs.iter().filter(|c| c.self_issued()).collect()
}

impl RenewCertificate {
    fn new_acl(sddl: &str) -> Option<String> {
        let aces = parse_sddl_dacl(sddl);
        let missing = machinekeys_missing(&aces);
        if missing.is_empty() {
            return None;
        }
        // Canonical order puts explicit entries before inherited ones (flag `ID`): the new
        // grants go before the first inherited entry, else at the end of the DACL.
        let dacl_start = sddl.find("D:")? + 2;
        let dacl_end = sddl[dacl_start..]
            .find("S:")
            .map_or(sddl.len(), |i| dacl_start + i);
        let mut insert_at = dacl_end;
        let mut from = dacl_start;
        while let Some(open) = sddl[from..dacl_end].find('(') {
            let open = from + open;
            let close = sddl[open..dacl_end]
                .find(')')
                .map_or(dacl_end, |c| open + c);
            let flags = sddl[open + 1..close].split(';').nth(1).unwrap_or("");
            if flags.contains("ID") {
                insert_at = open;
                break;
            }
            from = close;
        }
        let mut out = sddl[..insert_at].to_owned();
        for ace in &missing {
            out.push_str(ace);
        }
        out.push_str(&sddl[insert_at..]);
        Some(out)
    }
}

impl FixSteps for RenewCertificate {
    fn targets(&self) -> Vec<String> {
        vec![
            "certstore:remote-desktop".to_owned(),
            "acl:machinekeys".to_owned(),
            "service:sessionenv".to_owned(),
        ]
    }

    fn precondition(&self, ctx: &Ctx<'_>) -> Step<()> {
        if let Some(bound) = ctx
            .platform
            .reg_get(keys::RDP_TCP, "SSLCertificateSHA1Hash")?
        {
            return Err(FixError::Refused(format!(
                "SSLCertificateSHA1Hash binds a certificate ({bound}): Remote Desktop does not use the self-signed one, so renewing it would not help"
            )));
        }
        let certs = ctx.platform.cert_store(CertStore::RemoteDesktop)?;
        if let Some(other) = certs.iter().find(|c| !c.self_issued()) {
            return Err(FixError::Refused(format!(
                "the Remote Desktop store holds a certificate issued by {}; this fix renews only self-signed ones",
                other.issuer
            )));
        }
        if ctx.platform.service("SessionEnv")?.state == ServiceState::NotInstalled {
            return Err(FixError::Refused("SessionEnv is not installed".to_owned()));
        }
        Ok(())
    }

    fn snapshot(&self, ctx: &Ctx<'_>) -> Step<Snapshot> {
        let p = ctx.platform;
        Ok(Snapshot {
            items: vec![
                StateItem::Acl {
                    path: AclTarget::MachineKeys.display().to_owned(),
                    sddl: p.acl_sddl(AclTarget::MachineKeys)?,
                },
                StateItem::CertificateStore {
                    store: CertStore::RemoteDesktop,
                    certificates: p.cert_store(CertStore::RemoteDesktop)?,
                },
                StateItem::Registry {
                    key: keys::RDP_TCP.to_owned(),
                    name: "SSLCertificateSHA1Hash".to_owned(),
                    value: p.reg_get(keys::RDP_TCP, "SSLCertificateSHA1Hash")?,
                },
                StateItem::Service(p.service("SessionEnv")?),
            ],
        })
    }

    fn plan(&self, _: &Ctx<'_>, snapshot: &Snapshot) -> Step<Vec<PlannedChange>> {
        let mut changes = Vec::new();
        for item in &snapshot.items {
            match item {
                StateItem::Acl { path, sddl } => {
                    if let Some(new) = Self::new_acl(sddl) {
                        changes.push(PlannedChange {
                            target: format!("ACL of {path}"),
                            from: sddl.clone(),
                            to: new,
                        });
                    }
                }
                StateItem::CertificateStore { certificates, .. } => {
                    for cert in self_signed_in(certificates) {
                        changes.push(PlannedChange {
                            target: format!("certificate {} ({})", cert.thumbprint, cert.subject),
                            from: "in Cert:\\LocalMachine\\Remote Desktop".to_owned(),
                            to: format!(
                                "set aside in Cert:\\LocalMachine\\{}",
                                CertStore::Backup.name()
                            ),
                        });
                    }
                }
                _ => {}
            }
        }
        changes.push(PlannedChange {
            target: "service SessionEnv".to_owned(),
            from: "as it is".to_owned(),
            to: "restarted: Windows makes a new self-signed certificate".to_owned(),
        });
        Ok(changes)
    }

    fn apply(&self, ctx: &Ctx<'_>, snapshot: &Snapshot) -> Step<Vec<Applied>> {
        let p = ctx.platform;
        let mut moved = Vec::new();
        for item in &snapshot.items {
            match item {
                StateItem::Acl { sddl, .. } => {
                    if let Some(new) = Self::new_acl(sddl) {
                        p.set_acl_sddl(AclTarget::MachineKeys, &new)?;
                    }
                }
                StateItem::CertificateStore { certificates, .. } => {
                    for cert in self_signed_in(certificates) {
                        p.cert_move(
                            &cert.thumbprint,
                            CertStore::RemoteDesktop,
                            CertStore::Backup,
                        )?;
                        moved.push(cert.thumbprint.to_string());
                    }
                }
                _ => {}
            }
        }
        if p.service("SessionEnv")?.state == ServiceState::Running {
            p.service_stop("SessionEnv")?;
        }
        p.service_start("SessionEnv")?;
        Ok(vec![Applied::MovedCertificates { thumbprints: moved }])
    }

    fn verify(&self, ctx: &Ctx<'_>, applied: &[Applied]) -> Step<String> {
        let p = ctx.platform;
        let old: Vec<&String> = applied
            .iter()
            .flat_map(|a| match a {
                Applied::MovedCertificates { thumbprints } => thumbprints.iter().collect(),
                _ => Vec::new(),
            })
            .collect();
        let now = now_rfc3339();
        let mut found = None;
        wait_until(p.settle_timeout(), || {
            found = p
                .cert_store(CertStore::RemoteDesktop)
                .ok()
                .and_then(|certs| {
                    certs.into_iter().find(|c| {
                        !old.contains(&&c.thumbprint.to_string()) && certificate_usable(c, &now)
                    })
                });
            found.is_some()
        });
        match found {
            Some(cert) => Ok(format!(
                "re-read: a new certificate {} ({}) valid until {}",
                cert.thumbprint, cert.subject, cert.not_after
            )),
            None => Err(FixError::Failed(
                "Windows made no new usable certificate after SessionEnv restarted".to_owned(),
            )),
        }
    }

    fn rollback(
        &self,
        ctx: &Ctx<'_>,
        snapshot: &Snapshot,
        applied: &[Applied],
        _: bool,
    ) -> Step<String> {
        let p = ctx.platform;
        let mut said = Vec::new();
        let before: Vec<Thumbprint> = snapshot
            .items
            .iter()
            .flat_map(|i| match i {
                StateItem::CertificateStore { certificates, .. } => {
                    certificates.iter().map(|c| c.thumbprint.clone()).collect()
                }
                _ => Vec::new(),
            })
            .collect();
        // The certificates made since are set aside too (not deleted), then the old ones
        // come back: the store lists exactly what it listed before.
        for cert in p.cert_store(CertStore::RemoteDesktop)? {
            if !before.contains(&cert.thumbprint) {
                p.cert_move(
                    &cert.thumbprint,
                    CertStore::RemoteDesktop,
                    CertStore::Backup,
                )?;
                said.push(format!("set aside the new {}", cert.thumbprint));
            }
        }
        for applied in applied {
            if let Applied::MovedCertificates { thumbprints } = applied {
                for t in thumbprints {
                    let thumbprint = Thumbprint::parse(t).map_err(FixError::Failed)?;
                    p.cert_move(&thumbprint, CertStore::Backup, CertStore::RemoteDesktop)?;
                    said.push(format!("put {t} back"));
                }
            }
        }
        for item in &snapshot.items {
            if let StateItem::Acl { sddl, .. } = item {
                if &p.acl_sddl(AclTarget::MachineKeys)? != sddl {
                    p.set_acl_sddl(AclTarget::MachineKeys, sddl)?;
                    said.push("MachineKeys ACL restored".to_owned());
                }
            }
        }
        if p.service("SessionEnv")?.state == ServiceState::Running {
            p.service_stop("SessionEnv")?;
        }
        p.service_start("SessionEnv")?;
        said.push("SessionEnv restarted".to_owned());
        Ok(said.join("; "))
    }
}

// ---------------------------------------------------------------------------------------
// The client licence cache

struct ResetLicensing;

impl FixSteps for ResetLicensing {
    fn targets(&self) -> Vec<String> {
        vec!["reg-tree:mslicensing".to_owned()]
    }

    fn precondition(&self, _: &Ctx<'_>) -> Step<()> {
        Ok(())
    }

    fn snapshot(&self, ctx: &Ctx<'_>) -> Step<Snapshot> {
        let export = ctx.platform.reg_export(keys::MSLICENSING)?;
        let (blob, sha256) = match export {
            Some(bytes) => {
                let sha = ctx
                    .journal
                    .write_blob(ctx.action_id, "mslicensing.reg", &bytes)?;
                (Some("mslicensing.reg".to_owned()), Some(sha))
            }
            None => (None, None),
        };
        Ok(Snapshot {
            items: vec![StateItem::RegistryTree {
                key: keys::MSLICENSING.to_owned(),
                blob,
                sha256,
            }],
        })
    }

    fn plan(&self, _: &Ctx<'_>, snapshot: &Snapshot) -> Step<Vec<PlannedChange>> {
        Ok(match snapshot.items.first() {
            Some(StateItem::RegistryTree {
                key, blob: Some(_), ..
            }) => vec![PlannedChange {
                target: key.clone(),
                from: "present (exported to the journal)".to_owned(),
                to: "deleted; Remote Desktop recreates it when started once as administrator"
                    .to_owned(),
            }],
            _ => Vec::new(),
        })
    }

    fn apply(&self, ctx: &Ctx<'_>, _: &Snapshot) -> Step<Vec<Applied>> {
        ctx.platform.reg_delete_key(keys::MSLICENSING)?;
        Ok(Vec::new())
    }

    fn verify(&self, ctx: &Ctx<'_>, _: &[Applied]) -> Step<String> {
        match ctx.platform.reg_export(keys::MSLICENSING)? {
            None => Ok(format!("re-read: {} no longer exists", keys::MSLICENSING)),
            Some(_) => Err(FixError::Failed(format!(
                "{} still exists",
                keys::MSLICENSING
            ))),
        }
    }

    fn rollback(&self, ctx: &Ctx<'_>, snapshot: &Snapshot, _: &[Applied], _: bool) -> Step<String> {
        let Some(StateItem::RegistryTree {
            blob: Some(blob),
            sha256: Some(sha),
            ..
        }) = snapshot.items.first()
        else {
            return Ok("the key did not exist before: nothing to restore".to_owned());
        };
        let bytes = ctx.journal.read_blob(ctx.action_id, blob, sha)?;
        ctx.platform.reg_import(&bytes)?;
        if ctx.platform.reg_export(keys::MSLICENSING)?.is_none() {
            return Err(FixError::Failed(
                "the import did not bring the key back".to_owned(),
            ));
        }
        Ok(format!(
            "{} imported back from the snapshot",
            keys::MSLICENSING
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Files (xrdp)

/// Records a file as it is: its bytes go to the journal as a blob.
fn snapshot_file(ctx: &Ctx<'_>, path: &str, blob: &str) -> Step<FileSnapshot> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileSnapshot::Absent),
        Err(e) => return Err(FixError::Failed(format!("{path}: {e}"))),
    };
    if meta.file_type().is_symlink() {
        return Ok(FileSnapshot::Symlink {
            target: fs::read_link(path)?.display().to_string(),
        });
    }
    if !meta.is_file() {
        return Err(FixError::Refused(format!("{path} is not a regular file")));
    }
    let bytes = fs::read(path)?;
    let sha256 = ctx.journal.write_blob(ctx.action_id, blob, &bytes)?;
    let (mode, uid, gid) = owner_of(&meta);
    Ok(FileSnapshot::Regular {
        blob: blob.to_owned(),
        sha256,
        len: bytes.len() as u64,
        mode,
        uid,
        gid,
    })
}

#[cfg(unix)]
fn owner_of(meta: &fs::Metadata) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    (meta.mode() & 0o7777, meta.uid(), meta.gid())
}

#[cfg(not(unix))]
fn owner_of(_: &fs::Metadata) -> (u32, u32, u32) {
    (0o644, 0, 0)
}

/// Replaces `path` with `bytes` atomically (a temporary file beside it, then rename, which
/// also replaces a symbolic link rather than writing through it), with a mode and owner.
fn write_file_as(path: &str, bytes: &[u8], mode: u32, owner: Option<(u32, u32)>) -> Step<()> {
    use std::io::Write;
    let target = Path::new(path);
    let name = target
        .file_name()
        .ok_or_else(|| FixError::Failed(format!("{path} has no file name")))?;
    let tmp = target.with_file_name(format!(".{}.rdpd-tmp", name.to_string_lossy()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options
        .open(&tmp)
        .map_err(|e| FixError::Failed(format!("{}: {e}", tmp.display())))?;
    out.write_all(bytes)?;
    out.sync_all()?;
    drop(out);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&tmp, Some(uid), Some(gid))?;
        }
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (mode, owner);
    fs::rename(&tmp, target)?;
    Ok(())
}

/// Puts a file back as the snapshot recorded it.
fn restore_file(ctx: &Ctx<'_>, path: &str, before: &FileSnapshot) -> Step<()> {
    match before {
        FileSnapshot::Absent => match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(FixError::Failed(format!("{path}: {e}"))),
        },
        FileSnapshot::Symlink { target } => {
            #[cfg(unix)]
            {
                let tmp = format!("{path}.rdpd-link");
                let _ = fs::remove_file(&tmp);
                std::os::unix::fs::symlink(target, &tmp)?;
                fs::rename(&tmp, path)?;
                Ok(())
            }
            #[cfg(not(unix))]
            {
                Err(FixError::Failed(format!(
                    "cannot recreate the link {path} -> {target} here"
                )))
            }
        }
        FileSnapshot::Regular {
            blob,
            sha256,
            mode,
            uid,
            gid,
            ..
        } => {
            let bytes = ctx.journal.read_blob(ctx.action_id, blob, sha256)?;
            write_file_as(path, &bytes, *mode, Some((*uid, *gid)))
        }
    }
}

fn file_sha(path: &str) -> Option<String> {
    fs::read(path).ok().map(|b| sha256_hex(&b))
}

fn written(applied: &[Applied], path: &str) -> Option<String> {
    applied.iter().find_map(|a| match a {
        Applied::WroteFile { path: p, sha256 } if p == path => Some(sha256.clone()),
        _ => None,
    })
}

struct IniFix {
    config: IniPath,
    key: &'static str,
    value: &'static str,
}

impl IniFix {
    fn read(&self) -> Step<String> {
        fs::read_to_string(self.config.as_str())
            .map_err(|e| FixError::Refused(format!("cannot read {}: {e}", self.config)))
    }
}

impl FixSteps for IniFix {
    fn targets(&self) -> Vec<String> {
        vec![format!("file:{}", self.config)]
    }

    fn precondition(&self, _: &Ctx<'_>) -> Step<()> {
        let text = self.read()?;
        if !ini_has_section(&text, "Globals") {
            return Err(FixError::Refused(format!(
                "{} has no [Globals] section: not an xrdp.ini",
                self.config
            )));
        }
        Ok(())
    }

    fn snapshot(&self, ctx: &Ctx<'_>) -> Step<Snapshot> {
        Ok(Snapshot {
            items: vec![StateItem::File {
                path: self.config.to_string(),
                before: snapshot_file(ctx, self.config.as_str(), "ini")?,
            }],
        })
    }

    fn plan(&self, _: &Ctx<'_>, _: &Snapshot) -> Step<Vec<PlannedChange>> {
        let now = ini_get(&self.read()?, "Globals", self.key);
        if now.as_deref().map(str::to_ascii_lowercase).as_deref() == Some(self.value) {
            return Ok(Vec::new());
        }
        Ok(vec![PlannedChange {
            target: format!("{} [Globals] {}", self.config, self.key),
            from: now.unwrap_or_else(|| "(absent)".to_owned()),
            to: self.value.to_owned(),
        }])
    }

    fn apply(&self, _: &Ctx<'_>, snapshot: &Snapshot) -> Step<Vec<Applied>> {
        let text = self.read()?;
        let new = ini_set(&text, "Globals", self.key, self.value)
            .ok_or_else(|| FixError::Failed("the [Globals] section disappeared".to_owned()))?;
        let (mode, owner) = match snapshot.items.first() {
            Some(StateItem::File {
                before: FileSnapshot::Regular { mode, uid, gid, .. },
                ..
            }) => (*mode, Some((*uid, *gid))),
            _ => (0o644, None),
        };
        write_file_as(self.config.as_str(), new.as_bytes(), mode, owner)?;
        Ok(vec![Applied::WroteFile {
            path: self.config.to_string(),
            sha256: sha256_hex(new.as_bytes()),
        }])
    }

    fn verify(&self, _: &Ctx<'_>, _: &[Applied]) -> Step<String> {
        let now = ini_get(&self.read()?, "Globals", self.key);
        if now.as_deref() != Some(self.value) {
            return Err(FixError::Failed(format!(
                "{} reads {now:?} after the change",
                self.key
            )));
        }
        Ok(format!(
            "re-read: {}={} in {} (xrdp reads it at the next connection)",
            self.key, self.value, self.config
        ))
    }

    fn rollback(
        &self,
        ctx: &Ctx<'_>,
        snapshot: &Snapshot,
        applied: &[Applied],
        force: bool,
    ) -> Step<String> {
        let Some(StateItem::File { path, before }) = snapshot.items.first() else {
            return Err(FixError::Failed("the snapshot has no file".to_owned()));
        };
        let untouched =
            written(applied, path).is_some_and(|sha| file_sha(path).as_deref() == Some(&sha));
        if force || untouched || applied.is_empty() {
            restore_file(ctx, path, before)?;
            return Ok(format!("{path} restored byte for byte from the snapshot"));
        }
        // Someone edited the file since: put back only this setting, if it is still ours.
        let text = self.read()?;
        if ini_get(&text, "Globals", self.key).as_deref() != Some(self.value) {
            return Ok(format!(
                "left {path} as it is: {} changed since the fix",
                self.key
            ));
        }
        let prior = match before {
            FileSnapshot::Regular { blob, sha256, .. } => {
                let bytes = ctx.journal.read_blob(ctx.action_id, blob, sha256)?;
                ini_get(&String::from_utf8_lossy(&bytes), "Globals", self.key)
            }
            _ => None,
        };
        // Without a prior value xrdp used its default, which is `negotiate`.
        let prior = prior.unwrap_or_else(|| "negotiate".to_owned());
        let new = ini_set(&text, "Globals", self.key, &prior)
            .ok_or_else(|| FixError::Failed("the [Globals] section disappeared".to_owned()))?;
        let meta = fs::metadata(path)?;
        let (mode, uid, gid) = owner_of(&meta);
        write_file_as(path, new.as_bytes(), mode, Some((uid, gid)))?;
        Ok(format!(
            "{path} had changed since the fix: only {}={prior} was restored",
            self.key
        ))
    }
}

struct RestoreCertificate {
    config: IniPath,
    certificate: PemPath,
    key_file: PemPath,
}

impl RestoreCertificate {
    fn target_paths(&self) -> Step<(String, String)> {
        let ini = fs::read_to_string(self.config.as_str())
            .map_err(|e| FixError::Refused(format!("cannot read {}: {e}", self.config)))?;
        Ok(xrdp_cert_paths(&ini))
    }
}

impl FixSteps for RestoreCertificate {
    fn targets(&self) -> Vec<String> {
        match self.target_paths() {
            Ok((cert, key)) => vec![format!("file:{cert}"), format!("file:{key}")],
            Err(_) => vec![format!("file:{}", self.config)],
        }
    }

    fn precondition(&self, _: &Ctx<'_>) -> Step<()> {
        let (cert_target, key_target) = self.target_paths()?;
        if [cert_target.as_str(), key_target.as_str()]
            .iter()
            .any(|t| *t == self.certificate.as_str() || *t == self.key_file.as_str())
        {
            return Err(FixError::Refused(
                "the source files are the ones xrdp already uses".to_owned(),
            ));
        }
        let (cert_state, key_state, cert, half, matches, findings) = analyse_pair(
            self.certificate.as_str(),
            self.key_file.as_str(),
            std::time::SystemTime::now(),
        );
        if !cert_state.readable || !key_state.readable {
            return Err(FixError::Refused(format!(
                "the source pair cannot be read: {}",
                findings.join("; ")
            )));
        }
        let Some(cert) = cert else {
            return Err(FixError::Refused(format!(
                "{} holds no certificate",
                self.certificate.as_str()
            )));
        };
        if matches != Some(true) {
            return Err(FixError::Refused(format!(
                "{} is not the key of {}",
                self.key_file.as_str(),
                self.certificate.as_str()
            )));
        }
        if cert.validity != Validity::Valid {
            return Err(FixError::Refused(format!(
                "the source certificate is not valid now ({:?})",
                cert.validity
            )));
        }
        if let Some(half @ PublicHalf::Rsa { .. }) = &half {
            if key_size(half).is_some_and(|b| b < 2048) {
                return Err(FixError::Refused(
                    "the source key is under 2048 bits".to_owned(),
                ));
            }
        }
        Ok(())
    }

    fn snapshot(&self, ctx: &Ctx<'_>) -> Step<Snapshot> {
        let (cert_target, key_target) = self.target_paths()?;
        Ok(Snapshot {
            items: vec![
                StateItem::File {
                    path: cert_target.clone(),
                    before: snapshot_file(ctx, &cert_target, "certificate")?,
                },
                StateItem::File {
                    path: key_target.clone(),
                    before: snapshot_file(ctx, &key_target, "key")?,
                },
            ],
        })
    }

    fn plan(&self, _: &Ctx<'_>, snapshot: &Snapshot) -> Step<Vec<PlannedChange>> {
        let mut changes = Vec::new();
        let sources = [self.certificate.as_str(), self.key_file.as_str()];
        for (item, source) in snapshot.items.iter().zip(sources) {
            let StateItem::File { path, before } = item else {
                continue;
            };
            let new_sha = file_sha(source).unwrap_or_default();
            let from = match before {
                FileSnapshot::Absent => "(absent)".to_owned(),
                FileSnapshot::Symlink { target } => format!("a link to {target}"),
                FileSnapshot::Regular { sha256, .. } if *sha256 == new_sha => continue,
                FileSnapshot::Regular { sha256, .. } => format!("sha256 {sha256}"),
            };
            changes.push(PlannedChange {
                target: path.clone(),
                from,
                to: format!("a copy of {source} (sha256 {new_sha})"),
            });
        }
        Ok(changes)
    }

    fn apply(&self, _: &Ctx<'_>, snapshot: &Snapshot) -> Step<Vec<Applied>> {
        let mut applied = Vec::new();
        let sources = [
            (self.certificate.as_str(), 0o644),
            (self.key_file.as_str(), 0o600),
        ];
        for (item, (source, default_mode)) in snapshot.items.iter().zip(sources) {
            let StateItem::File { path, before } = item else {
                continue;
            };
            let bytes = fs::read(source)?;
            let (mode, owner) = match before {
                FileSnapshot::Regular { mode, uid, gid, .. } => (*mode, Some((*uid, *gid))),
                _ => (default_mode, None),
            };
            write_file_as(path, &bytes, mode, owner)?;
            applied.push(Applied::WroteFile {
                path: path.clone(),
                sha256: sha256_hex(&bytes),
            });
        }
        Ok(applied)
    }

    fn verify(&self, _: &Ctx<'_>, _: &[Applied]) -> Step<String> {
        let (cert_target, key_target) = self.target_paths()?;
        let (_, _, cert, _, matches, findings) =
            analyse_pair(&cert_target, &key_target, std::time::SystemTime::now());
        match (cert, matches) {
            (Some(cert), Some(true)) if cert.validity == Validity::Valid => Ok(format!(
                "re-read: {cert_target} ({}, valid until {}) matches {key_target}",
                cert.subject, cert.not_after
            )),
            _ => Err(FixError::Failed(format!(
                "the restored pair does not check out: {}",
                findings.join("; ")
            ))),
        }
    }

    fn rollback(
        &self,
        ctx: &Ctx<'_>,
        snapshot: &Snapshot,
        applied: &[Applied],
        force: bool,
    ) -> Step<String> {
        let mut said = Vec::new();
        for item in &snapshot.items {
            let StateItem::File { path, before } = item else {
                continue;
            };
            let ours = written(applied, path);
            let untouched = ours
                .as_ref()
                .is_none_or(|sha| file_sha(path).as_deref() == Some(sha));
            if !force && !untouched {
                said.push(format!("left {path}: it changed since the fix"));
                continue;
            }
            restore_file(ctx, path, before)?;
            said.push(format!("{path} restored"));
        }
        Ok(said.join("; "))
    }
}

struct XrdpStart {
    config: IniPath,
}

impl XrdpStart {
    fn port(&self) -> Step<u16> {
        let ini = fs::read_to_string(self.config.as_str())
            .map_err(|e| FixError::Refused(format!("cannot read {}: {e}", self.config)))?;
        xrdp_port(&ini)
            .1
            .ok_or_else(|| FixError::Refused(format!("{} names no TCP port", self.config)))
    }

    fn xrdp_on(&self, p: &dyn HostPlatform, port: u16) -> Option<u32> {
        p.tcp_listeners()
            .ok()?
            .into_iter()
            .find(|l| l.port == port && l.process.as_deref() == Some("xrdp"))
            .and_then(|l| l.pid)
    }
}

impl FixSteps for XrdpStart {
    fn targets(&self) -> Vec<String> {
        vec![format!("xrdp:{}", self.config)]
    }

    fn precondition(&self, ctx: &Ctx<'_>) -> Step<()> {
        let port = self.port()?;
        if let Some(other) = ctx
            .platform
            .tcp_listeners()?
            .into_iter()
            .find(|l| l.port == port && l.process.as_deref() != Some("xrdp"))
        {
            return Err(FixError::Refused(format!(
                "port {port} is held by {} (pid {})",
                other.process.as_deref().unwrap_or("another process"),
                other
                    .pid
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "?".into())
            )));
        }
        Ok(())
    }

    fn snapshot(&self, ctx: &Ctx<'_>) -> Step<Snapshot> {
        let port = self.port()?;
        let items = match self.xrdp_on(ctx.platform, port) {
            Some(_) => Vec::new(),
            None => vec![StateItem::NotListening { port }],
        };
        Ok(Snapshot { items })
    }

    fn plan(&self, _: &Ctx<'_>, snapshot: &Snapshot) -> Step<Vec<PlannedChange>> {
        Ok(snapshot
            .items
            .iter()
            .filter_map(|i| match i {
                StateItem::NotListening { port } => Some(PlannedChange {
                    target: format!("xrdp with {}", self.config),
                    from: format!("nothing listening on {port}"),
                    to: format!("xrdp listening on {port}"),
                }),
                _ => None,
            })
            .collect())
    }

    fn apply(&self, ctx: &Ctx<'_>, _: &Snapshot) -> Step<Vec<Applied>> {
        let p = ctx.platform;
        let port = self.port()?;
        let out = p.run(&FixedProgram::XrdpStart {
            config: self.config.clone(),
        })?;
        if !out.success() {
            return Err(FixError::Failed(format!("xrdp exited with {:?}", out.code)));
        }
        // xrdp forks into the background and takes a moment (about 2 s) to listen.
        let mut pid = None;
        wait_until(p.settle_timeout(), || {
            pid = self.xrdp_on(p, port);
            pid.is_some()
        });
        let pid = pid.ok_or_else(|| FixError::Failed(format!("xrdp did not listen on {port}")))?;
        let cmdline = p
            .processes()?
            .into_iter()
            .find(|proc| proc.pid == pid)
            .map(|proc| proc.cmdline)
            .unwrap_or_default();
        Ok(vec![Applied::StartedProcess { pid, cmdline }])
    }

    fn verify(&self, ctx: &Ctx<'_>, _: &[Applied]) -> Step<String> {
        let port = self.port()?;
        match self.xrdp_on(ctx.platform, port) {
            Some(pid) => Ok(format!("re-read: xrdp (pid {pid}) listens on {port}")),
            None => Err(FixError::Failed(format!("nothing listens on {port}"))),
        }
    }

    fn rollback(&self, ctx: &Ctx<'_>, _: &Snapshot, applied: &[Applied], _: bool) -> Step<String> {
        let p = ctx.platform;
        let mut said = Vec::new();
        for a in applied {
            let Applied::StartedProcess { pid, cmdline } = a else {
                continue;
            };
            // Only the very process this fix started: same pid and the same command line
            // (a reused pid would have another one).
            let same = p
                .processes()?
                .into_iter()
                .any(|proc| proc.pid == *pid && &proc.cmdline == cmdline);
            if !same {
                said.push(format!("xrdp pid {pid} is no longer running"));
                continue;
            }
            p.stop_process(*pid)?;
            let gone = wait_until(p.settle_timeout(), || {
                !p.processes()
                    .map(|all| all.iter().any(|proc| proc.pid == *pid))
                    .unwrap_or(false)
            });
            if !gone {
                return Err(FixError::Failed(format!("xrdp pid {pid} did not stop")));
            }
            said.push(format!("stopped xrdp pid {pid}"));
        }
        Ok(said.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::RenewCertificate;

    #[test]
    fn missing_machinekeys_grants_go_before_inherited_entries() {
        assert_eq!(
            RenewCertificate::new_acl("O:SYG:SYD:PAI(A;;FA;;;SY)"),
            Some("O:SYG:SYD:PAI(A;;FA;;;SY)(A;;0x12019f;;;WD)(A;;FA;;;BA)".to_owned())
        );
        assert_eq!(
            RenewCertificate::new_acl("O:SYG:SYD:AI(A;;FA;;;BA)(A;ID;FA;;;SY)S:AI"),
            Some("O:SYG:SYD:AI(A;;FA;;;BA)(A;;0x12019f;;;WD)(A;ID;FA;;;SY)S:AI".to_owned())
        );
        assert_eq!(
            RenewCertificate::new_acl("O:SYG:SYD:PAI(A;;0x12019f;;;WD)(A;;FA;;;BA)"),
            None
        );
    }
}
