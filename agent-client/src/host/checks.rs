//! The host checks: what each reads through the [`HostPlatform`] and what the reading
//! means. Every check returns a report, never an error: a check that cannot run (a Windows
//! check on Linux, a denied read, a timeout) says so in its report.

use std::fs;
use std::io::Read;
use std::time::{Duration, Instant, SystemTime};

use super::linux::{
    first_certificate_der, ini_get, key_matches_certificate, key_size, nft_port_verdict,
    port_from_setting, private_key_public_half, xrdp_cert_paths, PublicHalf,
};
use super::platform::{
    keys, AclTarget, EventQuery, EventRecord, FixedProgram, HostPlatform, PlatformError,
};
use super::report::*;
use super::windows::{
    parse_adapters_json, parse_firewall_rule, parse_sddl_dacl, parse_secure_channel_json,
};
use crate::rdp::report::Validity;

/// What a check function found: the observation, its outcome, how sure, and why.
struct Found<T, O> {
    observed: T,
    outcome: Option<O>,
    confidence: Confidence,
    findings: Vec<String>,
}

type CheckResult<T, O> = Result<Found<T, O>, PlatformError>;

fn report<T, O>(started: Instant, result: CheckResult<T, O>) -> HostReport<T, O> {
    let elapsed_ms = crate::checks::elapsed_ms(started);
    match result {
        Ok(found) => HostReport {
            outcome: found.outcome,
            confidence: found.confidence,
            observed: Some(found.observed),
            findings: found.findings,
            error: None,
            elapsed_ms,
        },
        Err(e) => HostReport::failed(e.to_check_error(), elapsed_ms),
    }
}

/// The current time as RFC 3339 UTC to the second, the form certificate dates use.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The longest any host check may run.
pub const MAX_TIMEOUT_MS: u32 = 120_000;

/// Runs a host check on this machine, within its timeout.
pub async fn run(spec: &HostCheckSpec) -> HostCheckReport {
    // A check holds a blocking thread: whatever the caller asks, it gets at most 2 minutes.
    let timeout = Duration::from_millis(u64::from(spec.timeout_ms().clamp(1, MAX_TIMEOUT_MS)));
    let started = Instant::now();
    let owned = spec.clone();
    let task = tokio::task::spawn_blocking(move || {
        let platform = super::platform::native(timeout);
        run_blocking(&owned, platform.as_ref())
    });
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(report)) => report,
        Ok(Err(join)) => failed_report(
            spec,
            HostCheckError {
                kind: HostErrorKind::Failed,
                message: format!("the check stopped unexpectedly: {join}"),
            },
            crate::checks::elapsed_ms(started),
        ),
        Err(_) => failed_report(
            spec,
            HostCheckError {
                kind: HostErrorKind::TimedOut,
                message: format!("the check did not finish within {timeout:?}"),
            },
            crate::checks::elapsed_ms(started),
        ),
    }
}

/// A report for `spec` that says it could not run.
pub fn failed_report(
    spec: &HostCheckSpec,
    error: HostCheckError,
    elapsed_ms: f64,
) -> HostCheckReport {
    macro_rules! failed {
        ($variant:ident) => {
            HostCheckReport::$variant(HostReport::failed(error, elapsed_ms))
        };
    }
    match spec {
        HostCheckSpec::FirewallRule { .. } => failed!(FirewallRule),
        HostCheckSpec::RdpEnabled { .. } => failed!(RdpEnabled),
        HostCheckSpec::RdpServices { .. } => failed!(RdpServices),
        HostCheckSpec::RdpListener { .. } => failed!(RdpListener),
        HostCheckSpec::SessionLimits { .. } => failed!(SessionLimits),
        HostCheckSpec::RdpCertificate { .. } => failed!(RdpCertificate),
        HostCheckSpec::CertBinding { .. } => failed!(CertBinding),
        HostCheckSpec::MachinekeysAcl { .. } => failed!(MachinekeysAcl),
        HostCheckSpec::SchannelTls12 { .. } => failed!(SchannelTls12),
        HostCheckSpec::SecurityLayer { .. } => failed!(SecurityLayer),
        HostCheckSpec::CredsspPolicy { .. } => failed!(CredsspPolicy),
        HostCheckSpec::SecureChannel { .. } => failed!(SecureChannel),
        HostCheckSpec::HostEventLog { .. } => failed!(HostEventLog),
        HostCheckSpec::VpnTunnelEvents { .. } => failed!(VpnTunnelEvents),
        HostCheckSpec::XrdpListening { .. } => failed!(XrdpListening),
        HostCheckSpec::XrdpSecurityLayer { .. } => failed!(XrdpSecurityLayer),
        HostCheckSpec::XrdpCertificate { .. } => failed!(XrdpCertificate),
        HostCheckSpec::XrdpFirewall { .. } => failed!(XrdpFirewall),
    }
}

/// Runs a host check against a platform (blocking).
pub fn run_blocking(spec: &HostCheckSpec, p: &dyn HostPlatform) -> HostCheckReport {
    let t = Instant::now();
    match spec {
        HostCheckSpec::FirewallRule { .. } => {
            HostCheckReport::FirewallRule(report(t, firewall_rule(p)))
        }
        HostCheckSpec::RdpEnabled { .. } => HostCheckReport::RdpEnabled(report(t, rdp_enabled(p))),
        HostCheckSpec::RdpServices { .. } => {
            HostCheckReport::RdpServices(report(t, rdp_services(p)))
        }
        HostCheckSpec::RdpListener { .. } => {
            HostCheckReport::RdpListener(report(t, rdp_listener(p)))
        }
        HostCheckSpec::SessionLimits { .. } => {
            HostCheckReport::SessionLimits(report(t, session_limits(p)))
        }
        HostCheckSpec::RdpCertificate { .. } => {
            HostCheckReport::RdpCertificate(report(t, rdp_certificate(p)))
        }
        HostCheckSpec::CertBinding { .. } => {
            HostCheckReport::CertBinding(report(t, cert_binding(p)))
        }
        HostCheckSpec::MachinekeysAcl { .. } => {
            HostCheckReport::MachinekeysAcl(report(t, machinekeys_acl(p)))
        }
        HostCheckSpec::SchannelTls12 { .. } => {
            HostCheckReport::SchannelTls12(report(t, schannel_tls12(p)))
        }
        HostCheckSpec::SecurityLayer { .. } => {
            HostCheckReport::SecurityLayer(report(t, security_layer(p)))
        }
        HostCheckSpec::CredsspPolicy { .. } => {
            HostCheckReport::CredsspPolicy(report(t, credssp_policy(p)))
        }
        HostCheckSpec::SecureChannel { .. } => {
            HostCheckReport::SecureChannel(report(t, secure_channel(p)))
        }
        HostCheckSpec::HostEventLog { since_minutes, .. } => {
            HostCheckReport::HostEventLog(report(t, host_event_log(p, *since_minutes)))
        }
        HostCheckSpec::VpnTunnelEvents { since_minutes, .. } => {
            HostCheckReport::VpnTunnelEvents(report(t, vpn_tunnel_events(p, *since_minutes)))
        }
        HostCheckSpec::XrdpListening { config, port, .. } => {
            HostCheckReport::XrdpListening(report(t, xrdp_listening(p, config, *port)))
        }
        HostCheckSpec::XrdpSecurityLayer { config, .. } => {
            HostCheckReport::XrdpSecurityLayer(report(t, xrdp_security_layer(config)))
        }
        HostCheckSpec::XrdpCertificate { config, .. } => {
            HostCheckReport::XrdpCertificate(report(t, xrdp_certificate(config, SystemTime::now())))
        }
        HostCheckSpec::XrdpFirewall { config, port, .. } => {
            HostCheckReport::XrdpFirewall(report(t, xrdp_firewall(p, config, *port)))
        }
    }
}

fn dword(p: &dyn HostPlatform, key: &str, name: &str) -> Result<Option<u32>, PlatformError> {
    Ok(p.reg_get(key, name)?.and_then(|v| v.as_dword()))
}

// ---------------------------------------------------------------------------------------
// Windows

/// The firewall group resource of "Remote Desktop (WebSocket)" rules.
const WEBSOCKET_GROUP: &str = "@FirewallAPI.dll,-28782";
/// The rule that lets RDP in over TCP.
pub const USER_MODE_TCP_RULE: &str = "RemoteDesktop-UserMode-In-TCP";

/// Whether a rule belongs to the WebSocket group (TCP 3387/3392).
pub fn is_websocket_rule(rule: &FirewallRule) -> bool {
    rule.group.as_deref() == Some(WEBSOCKET_GROUP)
        || rule.name.eq_ignore_ascii_case("RemoteDesktop-In-TCP-WS")
        || rule.name.eq_ignore_ascii_case("RemoteDesktop-In-TCP-WSS")
}

/// The RDP-related rules of both stores: every `RemoteDesktop-*` rule, and any inbound
/// TCP rule for the RDP port.
pub fn rdp_firewall_rules(
    p: &dyn HostPlatform,
    port: u16,
) -> Result<Vec<FirewallRule>, PlatformError> {
    let mut rules = Vec::new();
    for (key, store) in [
        (keys::FIREWALL_RULES, RuleStore::Local),
        (keys::FIREWALL_POLICY_RULES, RuleStore::Policy),
    ] {
        for (name, value) in p.reg_values(key)? {
            let Some(data) = value.as_str() else {
                continue;
            };
            let Some(rule) = parse_firewall_rule(&name, store, data) else {
                continue;
            };
            let named = name.to_ascii_lowercase().starts_with("remotedesktop-");
            let for_port = rule.direction.eq_ignore_ascii_case("In")
                && rule.protocol == Some(6)
                && rule.local_ports.iter().any(|p| p == &port.to_string());
            if named || for_port {
                rules.push(rule);
            }
        }
    }
    Ok(rules)
}

fn firewall_rule(p: &dyn HostPlatform) -> CheckResult<FirewallObserved, FirewallOutcome> {
    let port_number = dword(p, keys::RDP_TCP, "PortNumber")?;
    let port = port_number
        .and_then(|n| u16::try_from(n).ok())
        .unwrap_or(crate::DEFAULT_RDP_PORT);
    let all = rdp_firewall_rules(p, port)?;
    let (websocket_rules, rules): (Vec<_>, Vec<_>) = all.into_iter().partition(is_websocket_rule);
    let mut profiles = Vec::new();
    for (name, key) in keys::FIREWALL_PROFILES {
        profiles.push(FirewallProfile {
            name: (*name).to_owned(),
            firewall_enabled: dword(p, key, "EnableFirewall")?.map(|v| v != 0),
        });
    }
    let mut findings = Vec::new();
    let (active_profiles, mut confidence) = match p.active_firewall_profiles() {
        Ok(active) => (active, Confidence::High),
        Err(e) => {
            findings.push(format!(
                "The active network profile could not be read ({e}); every profile was considered."
            ));
            (Vec::new(), Confidence::Medium)
        }
    };
    let considered: Vec<String> = if active_profiles.is_empty() {
        vec!["Domain".into(), "Private".into(), "Public".into()]
    } else {
        active_profiles.clone()
    };
    let firewall_on = |profile: &str| {
        profiles
            .iter()
            .find(|p| p.name == profile)
            .and_then(|p| p.firewall_enabled)
            .unwrap_or(true)
    };
    let mut open = true;
    for profile in &considered {
        if !firewall_on(profile) {
            findings.push(format!("The firewall is off in the {profile} profile."));
            continue;
        }
        let allowed = rules.iter().any(|r| {
            r.enabled
                && r.action.eq_ignore_ascii_case("Allow")
                && r.applies_to(profile)
                && r.covers_rdp_port(port)
        });
        if !allowed {
            open = false;
            findings.push(format!(
                "No enabled rule lets TCP {port} in on the {profile} profile."
            ));
        }
    }
    for rule in rules
        .iter()
        .filter(|r| r.enabled && r.action.eq_ignore_ascii_case("Block") && r.covers_rdp_port(port))
    {
        if considered
            .iter()
            .any(|profile| rule.applies_to(profile) && firewall_on(profile))
        {
            open = false;
            findings.push(format!(
                "The {:?} rule {} blocks Remote Desktop (a block rule wins over allow rules).",
                rule.store, rule.name
            ));
        }
    }
    match rules
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(USER_MODE_TCP_RULE))
    {
        Some(rule) if !rule.enabled => findings.push(format!("{USER_MODE_TCP_RULE} is disabled.")),
        Some(rule) if !rule.local_ports.iter().any(|lp| lp == &port.to_string()) => {
            findings.push(format!(
                "{USER_MODE_TCP_RULE} allows port {} but the listener uses {port}.",
                rule.local_ports.join(",")
            ))
        }
        Some(_) => {}
        None => {
            findings.push(format!("There is no {USER_MODE_TCP_RULE} rule."));
            confidence = confidence.min(Confidence::Medium);
        }
    }
    let websocket_on = websocket_rules.iter().filter(|r| r.enabled).count();
    if !websocket_rules.is_empty() {
        findings.push(format!(
            "Remote Desktop (WebSocket): {websocket_on} of {} rules enabled.",
            websocket_rules.len()
        ));
    }
    Ok(Found {
        observed: FirewallObserved {
            rules,
            websocket_rules,
            profiles,
            active_profiles,
            rdp_port: port_number.and_then(|n| u16::try_from(n).ok()),
        },
        outcome: Some(if open {
            FirewallOutcome::Enabled
        } else {
            FirewallOutcome::Disabled
        }),
        confidence,
        findings,
    })
}

fn rdp_enabled(p: &dyn HostPlatform) -> CheckResult<RdpEnabledObserved, RdpEnabledOutcome> {
    let local_deny = dword(p, keys::TERMINAL_SERVER, "fDenyTSConnections")?;
    let policy_deny = dword(p, keys::TS_POLICY, "fDenyTSConnections")?;
    let mut findings = Vec::new();
    let (outcome, confidence) = match (policy_deny, local_deny) {
        (Some(1), _) => {
            findings.push("Group Policy denies Remote Desktop connections (fDenyTSConnections=1 under Policies); only the policy's owner can change that.".to_owned());
            (Some(RdpEnabledOutcome::DeniedByPolicy), Confidence::High)
        }
        (Some(0), local) => {
            if local == Some(1) {
                findings.push(
                    "The local setting denies connections, but Group Policy allows them and wins."
                        .to_owned(),
                );
            }
            (Some(RdpEnabledOutcome::Allowed), Confidence::High)
        }
        (_, Some(1)) => {
            findings.push(
                "Remote Desktop is turned off on this computer (fDenyTSConnections=1).".to_owned(),
            );
            (Some(RdpEnabledOutcome::DeniedLocally), Confidence::High)
        }
        (_, Some(0)) => (Some(RdpEnabledOutcome::Allowed), Confidence::High),
        _ => {
            findings.push(
                "fDenyTSConnections is not set; Windows then denies connections by default."
                    .to_owned(),
            );
            (Some(RdpEnabledOutcome::DeniedLocally), Confidence::Medium)
        }
    };
    Ok(Found {
        observed: RdpEnabledObserved {
            local_deny,
            policy_deny,
        },
        outcome,
        confidence,
        findings,
    })
}

/// The services Remote Desktop needs, in start order.
pub const RDP_SERVICES: &[&str] = &["TermService", "UmRdpService", "SessionEnv"];

fn rdp_services(p: &dyn HostPlatform) -> CheckResult<ServicesObserved, ServicesOutcome> {
    let mut services = Vec::new();
    for name in RDP_SERVICES {
        services.push(p.service(name)?);
    }
    let mut findings = Vec::new();
    for s in &services {
        if s.state != ServiceState::Running {
            findings.push(format!("{} is {:?}.", s.name, s.state));
        }
        if s.start_type == Some(StartType::Disabled) {
            findings.push(format!(
                "{} is disabled: starting it needs its start type changed first.",
                s.name
            ));
        }
    }
    let core_running = services
        .iter()
        .filter(|s| s.name != "SessionEnv")
        .all(|s| s.state == ServiceState::Running);
    Ok(Found {
        observed: ServicesObserved { services },
        outcome: Some(if core_running {
            ServicesOutcome::Running
        } else {
            ServicesOutcome::Stopped
        }),
        confidence: Confidence::High,
        findings,
    })
}

fn rdp_listener(p: &dyn HostPlatform) -> CheckResult<ListenerObserved, ListenerOutcome> {
    let port_number = dword(p, keys::RDP_TCP, "PortNumber")?;
    let win_station_enabled = dword(p, keys::RDP_TCP, "fEnableWinStation")?;
    let termservice = p.service("TermService")?;
    let port = port_number
        .and_then(|n| u16::try_from(n).ok())
        .unwrap_or(crate::DEFAULT_RDP_PORT);
    let listeners: Vec<TcpListenerInfo> = p
        .tcp_listeners()?
        .into_iter()
        .filter(|l| l.port == port || l.port == crate::DEFAULT_RDP_PORT)
        .collect();
    let on_port: Vec<&TcpListenerInfo> = listeners.iter().filter(|l| l.port == port).collect();
    let rdp_holds = on_port
        .iter()
        .any(|l| termservice.pid.is_some() && l.pid == termservice.pid);
    let mut findings = Vec::new();
    let mut confidence = if termservice.pid.is_some() {
        Confidence::High
    } else {
        Confidence::Medium
    };
    if port != crate::DEFAULT_RDP_PORT {
        findings.push(format!(
            "PortNumber is {port}: clients must connect to HOST:{port}, or the port be restored to 3389."
        ));
    }
    if win_station_enabled == Some(0) {
        findings.push("fEnableWinStation is 0: the RDP-Tcp listener is disabled.".to_owned());
    }
    let outcome = if rdp_holds {
        if port == crate::DEFAULT_RDP_PORT {
            ListenerOutcome::Listening3389
        } else {
            ListenerOutcome::OtherPort
        }
    } else if let Some(other) = on_port.first() {
        if termservice.pid.is_none() && other.process.as_deref() == Some("svchost") {
            // svchost on the port while TermService reports no pid: most likely RDP itself.
            confidence = Confidence::Low;
        }
        findings.push(format!(
            "Port {port} is held by {} (pid {}), not by TermService.",
            other.process.as_deref().unwrap_or("an unknown process"),
            other
                .pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into())
        ));
        ListenerOutcome::PortTaken
    } else {
        findings.push(format!("Nothing listens on TCP {port}."));
        ListenerOutcome::NotListening
    };
    Ok(Found {
        observed: ListenerObserved {
            port_number,
            win_station_enabled,
            termservice_pid: termservice.pid,
            listeners,
        },
        outcome: Some(outcome),
        confidence,
        findings,
    })
}

fn session_limits(
    p: &dyn HostPlatform,
) -> CheckResult<SessionLimitsObserved, SessionLimitsOutcome> {
    let drain_mode = dword(p, keys::TERMINAL_SERVER, "TSServerDrainMode")?;
    let max_instance_count = dword(p, keys::RDP_TCP, "MaxInstanceCount")?;
    let policy_max_instance_count = dword(p, keys::TS_POLICY, "MaxInstanceCount")?;
    let single_session_per_user = match dword(p, keys::TS_POLICY, "fSingleSessionPerUser")? {
        Some(v) => Some(v),
        None => dword(p, keys::TERMINAL_SERVER, "fSingleSessionPerUser")?,
    };
    let mut findings = Vec::new();
    let mut outcome = SessionLimitsOutcome::Accepting;
    let mut confidence = Confidence::High;
    if let Some(mode @ (1 | 2)) = drain_mode {
        findings.push(format!(
            "Drain mode is on (TSServerDrainMode={mode}): new logons are refused."
        ));
        outcome = SessionLimitsOutcome::Refusing;
    }
    let limit = policy_max_instance_count.or(max_instance_count);
    match limit {
        Some(0) => {
            findings.push("MaxInstanceCount is 0: no connections are allowed.".to_owned());
            outcome = SessionLimitsOutcome::Refusing;
            confidence = Confidence::Medium;
        }
        Some(n) if n != u32::MAX && n != 999_999 => {
            findings.push(format!(
                "At most {n} connections are allowed; the agent does not count the open ones."
            ));
            confidence = Confidence::Medium;
        }
        _ => {}
    }
    Ok(Found {
        observed: SessionLimitsObserved {
            drain_mode,
            max_instance_count,
            policy_max_instance_count,
            single_session_per_user,
        },
        outcome: Some(outcome),
        confidence,
        findings,
    })
}

const RCM: &str = "Microsoft-Windows-TerminalServices-RemoteConnectionManager";
const RCM_ADMIN: &str = "Microsoft-Windows-TerminalServices-RemoteConnectionManager/Admin";
const RDPCORETS: &str = "Microsoft-Windows-RemoteDesktopServices-RdpCoreTS";
const RDPCORETS_LOG: &str = "Microsoft-Windows-RemoteDesktopServices-RdpCoreTS/Operational";

/// Events of `ids` from `provider`, from every channel it logs to, merged and summarised.
fn recent_events(
    p: &dyn HostPlatform,
    provider: &'static str,
    channels: &[&'static str],
    ids: &[u32],
    since_minutes: u32,
) -> Result<Vec<EventRecord>, PlatformError> {
    let mut all: Vec<EventRecord> = Vec::new();
    for channel in channels {
        let found = p.events(&EventQuery {
            channel,
            provider,
            ids: ids.to_vec(),
            since_minutes,
            max_events: 200,
        })?;
        for event in found {
            if !all.iter().any(|e| e.id == event.id && e.time == event.time) {
                all.push(event);
            }
        }
    }
    Ok(all)
}

/// Groups events by provider and id: count, last time, last message.
pub fn summarise(events: &[EventRecord]) -> Vec<EventSummary> {
    let mut out: Vec<EventSummary> = Vec::new();
    for e in events {
        match out
            .iter_mut()
            .find(|s| s.provider == e.provider && s.id == e.id)
        {
            Some(s) => {
                s.count += 1;
                if e.time > s.last_at {
                    s.last_at = e.time.clone();
                    s.last_message = e.message.clone();
                }
            }
            None => out.push(EventSummary {
                provider: e.provider.clone(),
                id: e.id,
                count: 1,
                last_at: e.time.clone(),
                last_message: e.message.clone(),
            }),
        }
    }
    out.sort_by_key(|s| s.id);
    out
}

/// Whether a certificate can serve TLS now: in date, with a private key that opens.
pub fn certificate_usable(cert: &StoreCertificate, now: &str) -> bool {
    cert.valid_at(now) && cert.has_private_key && cert.private_key_readable != Some(false)
}

fn describe_cert(cert: &StoreCertificate, now: &str) -> Option<String> {
    if now > cert.not_after.as_str() {
        Some(format!(
            "{} ({}) expired on {}.",
            cert.subject, cert.thumbprint, cert.not_after
        ))
    } else if now < cert.not_before.as_str() {
        Some(format!(
            "{} ({}) is not valid before {}.",
            cert.subject, cert.thumbprint, cert.not_before
        ))
    } else if !cert.has_private_key {
        Some(format!(
            "{} ({}) has no private key.",
            cert.subject, cert.thumbprint
        ))
    } else if cert.private_key_readable == Some(false) {
        Some(format!(
            "The private key of {} ({}) cannot be opened (MachineKeys permissions?).",
            cert.subject, cert.thumbprint
        ))
    } else {
        None
    }
}

fn rdp_certificate(
    p: &dyn HostPlatform,
) -> CheckResult<CertificateStoreObserved, CertificateOutcome> {
    let now = now_rfc3339();
    let certificates = p.cert_store(CertStore::RemoteDesktop)?;
    let mut findings = Vec::new();
    let (events, events_read) = match (
        recent_events(p, RCM, &["System", RCM_ADMIN], &[1057, 1058], 60),
        recent_events(p, "Schannel", &["System"], &[36870], 60),
    ) {
        (Ok(mut a), Ok(b)) => {
            a.extend(b);
            (summarise(&a), true)
        }
        (Err(e), _) | (_, Err(e)) => {
            findings.push(format!("The event log could not be read: {e}"));
            (Vec::new(), false)
        }
    };
    let bound = p
        .reg_get(keys::RDP_TCP, "SSLCertificateSHA1Hash")?
        .is_some();
    for cert in &certificates {
        if let Some(problem) = describe_cert(cert, &now) {
            findings.push(problem);
        }
    }
    for e in &events {
        findings.push(format!(
            "Event {} from {} x{} in the last hour (last {}).",
            e.id, e.provider, e.count, e.last_at
        ));
    }
    let usable = certificates.iter().any(|c| certificate_usable(c, &now));
    if certificates.is_empty() {
        findings.push("The Remote Desktop certificate store is empty.".to_owned());
    }
    if bound {
        findings.push(
            "SSLCertificateSHA1Hash binds another certificate; see the cert-binding check."
                .to_owned(),
        );
    }
    let known_keys = certificates
        .iter()
        .all(|c| c.private_key_readable.is_some());
    // With a binding, this store is not what Remote Desktop uses; without the events or the
    // key test, a store that looks fine may still fail.
    let confidence = if bound {
        Confidence::Low
    } else if known_keys && events_read {
        Confidence::High
    } else {
        Confidence::Medium
    };
    if usable && !events.is_empty() {
        findings.push(
            "A usable certificate is in the store now; the events may be from before Windows replaced one."
                .to_owned(),
        );
    }
    let outcome = if usable {
        CertificateOutcome::Valid
    } else {
        CertificateOutcome::ExpiredOrUnreadable
    };
    Ok(Found {
        observed: CertificateStoreObserved {
            certificates,
            checked_at: now,
            events,
        },
        outcome: Some(outcome),
        confidence,
        findings,
    })
}

fn cert_binding(p: &dyn HostPlatform) -> CheckResult<CertBindingObserved, CertBindingOutcome> {
    let now = now_rfc3339();
    let value = p.reg_get(keys::RDP_TCP, "SSLCertificateSHA1Hash")?;
    let mut findings = Vec::new();
    let bound_thumbprint = match &value {
        None => None,
        Some(RegValue::RegBinary(bytes)) => match Thumbprint::parse(&bytes.to_string()) {
            Ok(t) => Some(t),
            Err(_) => {
                findings.push(format!(
                    "SSLCertificateSHA1Hash holds {} bytes, not the 20 of a SHA-1 thumbprint.",
                    bytes.0.len()
                ));
                None
            }
        },
        Some(other) => {
            findings.push(format!(
                "SSLCertificateSHA1Hash has the wrong type: {other}."
            ));
            None
        }
    };
    let Some(thumbprint) = bound_thumbprint.clone() else {
        let outcome = if value.is_none() {
            CertBindingOutcome::SelfSignedDefault
        } else {
            CertBindingOutcome::BoundMissing
        };
        return Ok(Found {
            observed: CertBindingObserved {
                bound_thumbprint: None,
                found_in: None,
                certificate: None,
                checked_at: now,
            },
            outcome: Some(outcome),
            confidence: Confidence::High,
            findings,
        });
    };
    let mut found = None;
    for store in [CertStore::RemoteDesktop, CertStore::My] {
        if let Some(cert) = p
            .cert_store(store)?
            .into_iter()
            .find(|c| c.thumbprint == thumbprint)
        {
            found = Some((store, cert));
            break;
        }
    }
    let outcome = match &found {
        Some((_, cert)) if certificate_usable(cert, &now) => CertBindingOutcome::BoundValid,
        Some((store, cert)) => {
            findings.push(format!(
                "The bound certificate is in {}: {}",
                store.name(),
                describe_cert(cert, &now).unwrap_or_default()
            ));
            CertBindingOutcome::BoundMissing
        }
        None => {
            findings.push(format!("SSLCertificateSHA1Hash names {thumbprint}, which is in neither the Remote Desktop nor the My store."));
            CertBindingOutcome::BoundMissing
        }
    };
    let confidence = match &found {
        Some((_, c)) if c.private_key_readable.is_none() => Confidence::Medium,
        _ => Confidence::High,
    };
    Ok(Found {
        observed: CertBindingObserved {
            bound_thumbprint,
            found_in: found.as_ref().map(|(s, _)| *s),
            certificate: found.map(|(_, c)| c),
            checked_at: now,
        },
        outcome: Some(outcome),
        confidence,
        findings,
    })
}

/// The grants of Microsoft's documented MachineKeys default (KB 278381): Everyone gets
/// list/read, create/write, append, read/write extended attributes and attributes, and
/// read permissions on the folder; Administrators get full control.
pub const MACHINEKEYS_GRANTS: &[(&str, u32, &str)] = &[
    ("WD", 0x0002_019F, "(A;;0x12019f;;;WD)"),
    ("BA", 0x001F_01FF, "(A;;FA;;;BA)"),
];

/// The documented grants an SDDL's DACL lacks, as the ACE strings that would add them.
pub fn machinekeys_missing(aces: &[AceSummary]) -> Vec<String> {
    MACHINEKEYS_GRANTS
        .iter()
        .filter(|(trustee, needed, _)| {
            let granted = aces
                .iter()
                .filter(|a| a.kind == "A" && a.trustee == *trustee && !a.flags.contains("IO"))
                .fold(0u32, |mask, a| mask | a.rights);
            // GENERIC_ALL stands for full control.
            let granted = if granted & 0x1000_0000 != 0 {
                0x001F_01FF | granted
            } else {
                granted
            };
            granted & needed != *needed
        })
        .map(|(_, _, ace)| (*ace).to_owned())
        .collect()
}

fn machinekeys_acl(p: &dyn HostPlatform) -> CheckResult<MachineKeysObserved, AclOutcome> {
    let sddl = p.acl_sddl(AclTarget::MachineKeys)?;
    let aces = parse_sddl_dacl(&sddl);
    let missing = machinekeys_missing(&aces);
    let denies: Vec<AceSummary> = aces.iter().filter(|a| a.kind == "D").cloned().collect();
    let mut findings = Vec::new();
    for ace in &missing {
        findings.push(format!("MachineKeys lacks the default grant {ace}."));
    }
    for deny in &denies {
        findings.push(format!(
            "MachineKeys denies rights 0x{:x} to {}.",
            deny.rights, deny.trustee
        ));
    }
    let outcome = if missing.is_empty() && denies.is_empty() {
        AclOutcome::Default
    } else {
        AclOutcome::Broken
    };
    Ok(Found {
        observed: MachineKeysObserved {
            path: AclTarget::MachineKeys.display().to_owned(),
            sddl,
            aces,
            missing,
            denies,
        },
        outcome: Some(outcome),
        // Extra grants are allowed; only what the default has is checked.
        confidence: Confidence::Medium,
        findings,
    })
}

fn schannel_tls12(p: &dyn HostPlatform) -> CheckResult<SchannelObserved, SchannelOutcome> {
    let mut protocols = Vec::new();
    for protocol in ["TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"] {
        for side in ["Server", "Client"] {
            let key = format!("{}\\{protocol}\\{side}", keys::SCHANNEL_PROTOCOLS);
            protocols.push(SchannelProtocol {
                protocol: protocol.to_owned(),
                side: side.to_owned(),
                enabled: dword(p, &key, "Enabled")?,
                disabled_by_default: dword(p, &key, "DisabledByDefault")?,
            });
        }
    }
    let mut findings = Vec::new();
    let events = match recent_events(p, "Schannel", &["System"], &[36871], 60) {
        Ok(events) => summarise(&events),
        Err(e) => {
            findings.push(format!("The event log could not be read: {e}"));
            Vec::new()
        }
    };
    let tls12 = protocols
        .iter()
        .find(|s| s.protocol == "TLS 1.2" && s.side == "Server")
        .cloned()
        .expect("TLS 1.2 Server was read");
    for s in protocols.iter().filter(|s| s.turned_off()) {
        findings.push(format!(
            "{} {} is turned off in Schannel.",
            s.protocol, s.side
        ));
    }
    for e in &events {
        findings.push(format!(
            "Schannel event 36871 x{} in the last hour: a TLS handshake failed on this host.",
            e.count
        ));
    }
    let explicit = tls12.enabled.is_some() || tls12.disabled_by_default.is_some();
    if !explicit {
        findings.push("TLS 1.2 Server has no Schannel values: the Windows default applies (on since Windows 8.1 / Server 2012 R2).".to_owned());
    }
    Ok(Found {
        observed: SchannelObserved { protocols, events },
        outcome: Some(if tls12.turned_off() {
            SchannelOutcome::Disabled
        } else {
            SchannelOutcome::Enabled
        }),
        confidence: if explicit {
            Confidence::High
        } else {
            Confidence::Medium
        },
        findings,
    })
}

fn security_layer(
    p: &dyn HostPlatform,
) -> CheckResult<SecurityLayerObserved, SecurityLayerOutcome> {
    let security_layer = dword(p, keys::RDP_TCP, "SecurityLayer")?;
    let policy_security_layer = dword(p, keys::TS_POLICY, "SecurityLayer")?;
    let min_encryption_level = dword(p, keys::RDP_TCP, "MinEncryptionLevel")?;
    let policy_min_encryption_level = dword(p, keys::TS_POLICY, "MinEncryptionLevel")?;
    let fips_enabled = dword(p, keys::FIPS_POLICY, "Enabled")?;
    let mut findings = Vec::new();
    let events = match recent_events(p, RCM, &["System", RCM_ADMIN], &[1050], 60) {
        Ok(events) => summarise(&events),
        Err(e) => {
            findings.push(format!("The event log could not be read: {e}"));
            Vec::new()
        }
    };
    let layer = policy_security_layer.or(security_layer);
    let level = policy_min_encryption_level.or(min_encryption_level);
    if policy_security_layer.is_some() {
        findings
            .push("Group Policy sets the security layer; a local change has no effect.".to_owned());
    }
    for e in &events {
        findings.push(format!(
            "Event 1050 x{}: the security layer found an error in the protocol stream.",
            e.count
        ));
    }
    let (outcome, confidence) = if fips_enabled == Some(1) || level == Some(4) {
        findings.push(
            "FIPS-compliant encryption is enforced; clients without it are refused.".to_owned(),
        );
        (Some(SecurityLayerOutcome::FipsEnforced), Confidence::High)
    } else {
        match layer {
            Some(0) => {
                findings.push("SecurityLayer=0: Standard RDP Security only; clients that require TLS or NLA are refused.".to_owned());
                (Some(SecurityLayerOutcome::RdpOnly), Confidence::High)
            }
            Some(1) => (Some(SecurityLayerOutcome::Negotiate), Confidence::High),
            Some(2) => (Some(SecurityLayerOutcome::Tls), Confidence::High),
            Some(other) => {
                findings.push(format!("SecurityLayer={other} is not a known value."));
                (None, Confidence::Low)
            }
            None => {
                findings.push("SecurityLayer is not set; the Windows default applies.".to_owned());
                (None, Confidence::Low)
            }
        }
    };
    Ok(Found {
        observed: SecurityLayerObserved {
            security_layer,
            policy_security_layer,
            min_encryption_level,
            policy_min_encryption_level,
            fips_enabled,
            events,
        },
        outcome,
        confidence,
        findings,
    })
}

fn credssp_policy(p: &dyn HostPlatform) -> CheckResult<CredSspObserved, CredSspOutcome> {
    let allow_encryption_oracle = dword(p, keys::CREDSSP, "AllowEncryptionOracle")?;
    let mut findings = Vec::new();
    let tspkg_version = match p.run(&FixedProgram::TspkgVersion) {
        Ok(out) if out.success() && !out.stdout.trim().is_empty() => {
            Some(out.stdout.trim().to_owned())
        }
        Ok(out) => {
            findings.push(format!(
                "The tspkg.dll version could not be read: {}",
                out.stderr.trim()
            ));
            None
        }
        Err(e) => {
            findings.push(format!("The tspkg.dll version could not be read: {e}"));
            None
        }
    };
    findings.push(match allow_encryption_oracle {
        Some(0) => "AllowEncryptionOracle=0 (Force Updated Clients): this side refuses peers without the 2018 CredSSP update.".to_owned(),
        Some(1) => "AllowEncryptionOracle=1 (Mitigated): this side refuses to fall back to an unpatched server.".to_owned(),
        Some(2) => "AllowEncryptionOracle=2 (Vulnerable): this side accepts unpatched peers (a security downgrade).".to_owned(),
        Some(other) => format!("AllowEncryptionOracle={other} is not a known value."),
        None => "AllowEncryptionOracle is not set: an updated Windows behaves as Mitigated (1).".to_owned(),
    });
    findings.push(
        "A mismatch needs both sides: RDP Doctor compares this with the CredSSP version the other computer answers with."
            .to_owned(),
    );
    Ok(Found {
        observed: CredSspObserved {
            allow_encryption_oracle,
            tspkg_version,
        },
        outcome: None,
        confidence: Confidence::Low,
        findings,
    })
}

fn secure_channel(
    p: &dyn HostPlatform,
) -> CheckResult<SecureChannelObserved, SecureChannelOutcome> {
    let user_authentication = dword(p, keys::RDP_TCP, "UserAuthentication")?;
    let policy_user_authentication = dword(p, keys::TS_POLICY, "UserAuthentication")?;
    let out = p.run(&FixedProgram::SecureChannel)?;
    if !out.success() {
        return Err(PlatformError::Failed(format!(
            "the secure channel test failed: {}",
            out.stderr.trim()
        )));
    }
    let json = parse_secure_channel_json(&out.stdout).map_err(PlatformError::Failed)?;
    let nla = policy_user_authentication.or(user_authentication);
    let mut findings = Vec::new();
    if nla == Some(1) {
        findings.push("NLA is required: the host must reach a domain controller to check domain accounts before a session starts.".to_owned());
    } else if nla == Some(0) {
        findings.push("NLA is not required (UserAuthentication=0).".to_owned());
    }
    let outcome = if !json.part_of_domain {
        findings.push("The host is not in a domain; NLA uses local accounts.".to_owned());
        SecureChannelOutcome::Ok
    } else if json.secure_channel == Some(true) {
        SecureChannelOutcome::Ok
    } else {
        findings.push(format!(
            "The secure channel to {} is broken{}.",
            json.domain.as_deref().unwrap_or("the domain"),
            json.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
        SecureChannelOutcome::Broken
    };
    Ok(Found {
        observed: SecureChannelObserved {
            user_authentication,
            policy_user_authentication,
            part_of_domain: Some(json.part_of_domain),
            domain: json.domain.filter(|d| !d.is_empty()),
            secure_channel_ok: json.secure_channel,
            secure_channel_error: json.error,
        },
        outcome: Some(outcome),
        confidence: Confidence::High,
        findings,
    })
}

fn host_event_log(
    p: &dyn HostPlatform,
    since_minutes: u32,
) -> CheckResult<EventLogObserved, EventLogOutcome> {
    let mut findings = Vec::new();
    let mut events = Vec::new();
    let mut failures = 0;
    let queries: [(&'static str, &[&'static str], &[u32]); 3] = [
        (RCM, &["System", RCM_ADMIN], &[1057, 1058, 1050, 1068, 1069]),
        ("Schannel", &["System"], &[36870, 36871, 36874, 36888]),
        (RDPCORETS, &[RDPCORETS_LOG], &[98, 99, 131]),
    ];
    let mut rdpcorets_read = false;
    for (provider, channels, ids) in queries {
        match recent_events(p, provider, channels, ids, since_minutes) {
            Ok(found) => {
                rdpcorets_read |= provider == RDPCORETS;
                events.extend(found);
            }
            Err(e) => {
                failures += 1;
                findings.push(format!("{provider} events could not be read: {e}"));
            }
        }
    }
    if failures == queries.len() {
        return Err(PlatformError::Failed(findings.join(" ")));
    }
    let summaries = summarise(&events);
    let count = |ids: &[u32]| -> u32 {
        summaries
            .iter()
            .filter(|s| ids.contains(&s.id))
            .map(|s| s.count)
            .sum()
    };
    let connection_attempts = count(&[131]);
    for s in &summaries {
        findings.push(format!(
            "{} event {} x{} (last {}).",
            s.provider, s.id, s.count, s.last_at
        ));
    }
    let outcome = if count(&[1057, 1058, 36870]) > 0 {
        EventLogOutcome::CertificateErrors
    } else if count(&[36871, 36874, 36888]) > 0 {
        EventLogOutcome::TlsErrors
    } else if count(&[1050]) > 0 {
        EventLogOutcome::SecurityLayerErrors
    } else if count(&[1068, 1069]) > 0 {
        EventLogOutcome::LicensingErrors
    } else if rdpcorets_read && connection_attempts == 0 {
        EventLogOutcome::NoConnectionAttempts
    } else {
        EventLogOutcome::ConnectionsNoErrors
    };
    Ok(Found {
        observed: EventLogObserved {
            since_minutes,
            events: summaries,
            connection_attempts,
        },
        outcome: Some(outcome),
        confidence: if failures == 0 {
            Confidence::High
        } else {
            Confidence::Medium
        },
        findings,
    })
}

/// Words in an adapter's description that mark a VPN's virtual adapter: the built-in client
/// (WAN Miniport), the usual corporate clients, and the open tunnels. Hyper-V's and other
/// virtual switches are not VPNs.
const VPN_ADAPTER_WORDS: &[&str] = &[
    "vpn",
    "wan miniport",
    "anyconnect",
    "pangp",
    "globalprotect",
    "fortinet",
    "fortissl",
    "juniper",
    "pulse secure",
    "ivanti",
    "zscaler",
    "check point",
    "sonicwall",
    "f5 networks",
    "tap-windows",
    "wintun",
    "wireguard",
    "openvpn",
];

/// Whether an adapter description names a VPN's adapter.
pub fn is_vpn_adapter(description: &str) -> bool {
    let description = description.to_ascii_lowercase();
    VPN_ADAPTER_WORDS
        .iter()
        .any(|word| description.contains(word))
}

const NETWORK_PROFILE: &str = "Microsoft-Windows-NetworkProfile";
const NETWORK_PROFILE_LOG: &str = "Microsoft-Windows-NetworkProfile/Operational";

fn vpn_tunnel_events(
    p: &dyn HostPlatform,
    since_minutes: u32,
) -> CheckResult<VpnObserved, VpnOutcome> {
    let mut findings = Vec::new();
    // What could not be read, of the three sources: the adapters and two event logs.
    let mut failures: Vec<(&str, PlatformError)> = Vec::new();
    let adapters = match p.run(&FixedProgram::AdaptersUp) {
        Ok(out) if out.success() => parse_adapters_json(&out.stdout).map_err(PlatformError::Failed),
        Ok(out) => Err(PlatformError::Failed(format!(
            "the network adapters could not be listed: {}",
            out.stderr.trim()
        ))),
        Err(e) => Err(e),
    };
    let vpn_adapters: Vec<NetworkAdapter> = match adapters {
        Ok(adapters) => adapters
            .into_iter()
            .filter(|a| is_vpn_adapter(&a.description))
            .collect(),
        Err(e) => {
            failures.push(("the network adapters", e));
            Vec::new()
        }
    };
    let mut dropped: Vec<EventRecord> = Vec::new();
    // A network that went away is a tunnel drop only when its adapter is a VPN's; the
    // message names the adapter ("Desc: ...").
    match recent_events(
        p,
        NETWORK_PROFILE,
        &[NETWORK_PROFILE_LOG],
        &[10001],
        since_minutes,
    ) {
        Ok(events) => dropped.extend(
            events
                .into_iter()
                .filter(|e| e.message.as_deref().is_some_and(is_vpn_adapter)),
        ),
        Err(e) => failures.push(("the NetworkProfile events", e)),
    }
    match recent_events(
        p,
        "RasClient",
        &["Application"],
        &[20226, 20227],
        since_minutes,
    ) {
        Ok(events) => dropped.extend(events),
        Err(e) => failures.push(("the RasClient events", e)),
    }
    if failures.len() == 3 {
        // Nothing read: the first reason stands for all (on Linux: not available here).
        return Err(failures.swap_remove(0).1);
    }
    let drops = summarise(&dropped);
    for adapter in &vpn_adapters {
        findings.push(format!(
            "VPN adapter up: {} ({}).",
            adapter.name, adapter.description
        ));
    }
    for s in &drops {
        findings.push(format!(
            "{} event {} x{} in the last {since_minutes} minutes (last {}).",
            s.provider, s.id, s.count, s.last_at
        ));
    }
    findings.extend(
        failures
            .iter()
            .map(|(what, e)| format!("Could not read {what}: {e}")),
    );
    let outcome = if !drops.is_empty() {
        VpnOutcome::Drops
    } else if !vpn_adapters.is_empty() {
        VpnOutcome::Stable
    } else {
        VpnOutcome::NoVpn
    };
    Ok(Found {
        observed: VpnObserved {
            since_minutes,
            vpn_adapters,
            drops,
        },
        outcome: Some(outcome),
        // A VPN whose adapter description names none of the known words reads as no VPN.
        confidence: if failures.is_empty() {
            Confidence::Medium
        } else {
            Confidence::Low
        },
        findings,
    })
}

// ---------------------------------------------------------------------------------------
// Linux (xrdp)

fn read_ini(config: &IniPath) -> Result<String, PlatformError> {
    fs::read_to_string(config.as_str()).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            PlatformError::AccessDenied(format!("cannot read {config}: {e}"))
        }
        _ => PlatformError::Failed(format!("cannot read {config}: {e}")),
    })
}

/// The port xrdp listens on by its ini (3389 when `port` is missing or unreadable).
pub fn xrdp_port(ini: &str) -> (Option<String>, Option<u16>) {
    let setting = ini_get(ini, "Globals", "port");
    let port = match &setting {
        Some(s) => port_from_setting(s),
        None => Some(crate::DEFAULT_RDP_PORT),
    };
    (setting, port)
}

fn xrdp_listening(
    p: &dyn HostPlatform,
    config: &IniPath,
    clients_port: Option<u16>,
) -> CheckResult<XrdpListeningObserved, XrdpListeningOutcome> {
    let ini = read_ini(config)?;
    let (port_setting, configured_port) = xrdp_port(&ini);
    let xrdp_processes: Vec<ProcessInfo> = p
        .processes()?
        .into_iter()
        .filter(|proc| proc.name == "xrdp")
        .collect();
    let listeners: Vec<TcpListenerInfo> = match configured_port {
        Some(port) => p
            .tcp_listeners()?
            .into_iter()
            .filter(|l| l.port == port)
            .collect(),
        None => Vec::new(),
    };
    let mut findings = Vec::new();
    let mut confidence = Confidence::High;
    let by_xrdp = listeners
        .iter()
        .any(|l| l.process.as_deref() == Some("xrdp"));
    let unknown_owner = listeners.iter().any(|l| l.pid.is_none());
    let elsewhere = clients_port.filter(|port| Some(*port) != configured_port);
    let outcome = if configured_port.is_none() {
        findings.push(format!(
            "The port setting {:?} is not a TCP port the agent can check.",
            port_setting.as_deref().unwrap_or("")
        ));
        confidence = Confidence::Low;
        None
    } else if by_xrdp || (unknown_owner && !xrdp_processes.is_empty()) {
        if !by_xrdp {
            findings.push("Something listens on the port, but its owner could not be read (run the agent as root).".to_owned());
            confidence = Confidence::Medium;
        }
        match elsewhere {
            Some(port) => {
                findings.push(format!(
                    "xrdp listens on port {}, not on port {port} that clients connect to.",
                    configured_port.unwrap_or_default()
                ));
                Some(XrdpListeningOutcome::OtherPort)
            }
            None => Some(XrdpListeningOutcome::Listening),
        }
    } else if let Some(other) = listeners.first() {
        findings.push(format!(
            "Port {} is held by {} (pid {}), not xrdp.",
            other.port,
            other.process.as_deref().unwrap_or("an unknown process"),
            other
                .pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into())
        ));
        Some(XrdpListeningOutcome::PortTaken)
    } else if xrdp_processes.is_empty() {
        findings.push("No xrdp process is running.".to_owned());
        Some(XrdpListeningOutcome::NotRunning)
    } else {
        findings.push(format!(
            "xrdp runs (pid {}) but nothing listens on port {}.",
            xrdp_processes[0].pid,
            configured_port.unwrap_or_default()
        ));
        Some(XrdpListeningOutcome::NotListening)
    };
    Ok(Found {
        observed: XrdpListeningObserved {
            config: config.clone(),
            port_setting,
            configured_port,
            xrdp_processes,
            listeners,
        },
        outcome,
        confidence,
        findings,
    })
}

fn xrdp_security_layer(config: &IniPath) -> CheckResult<XrdpSecurityObserved, XrdpSecurityOutcome> {
    let ini = read_ini(config)?;
    let get = |key: &str| ini_get(&ini, "Globals", key).filter(|v| !v.is_empty());
    let security_layer = get("security_layer");
    let crypt_level = get("crypt_level");
    let mut findings = Vec::new();
    let mut confidence = Confidence::High;
    let outcome = match security_layer
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("negotiate") => XrdpSecurityOutcome::Negotiate,
        Some("tls") => {
            findings.push("security_layer=tls: clients that offer only Standard RDP Security are refused (SSL_REQUIRED_BY_SERVER).".to_owned());
            XrdpSecurityOutcome::Tls
        }
        Some("rdp") => {
            findings.push("security_layer=rdp: Standard RDP Security only; clients that require TLS or NLA refuse to connect.".to_owned());
            XrdpSecurityOutcome::RdpOnly
        }
        Some(other) => {
            findings.push(format!("security_layer={other} is not a value xrdp knows."));
            confidence = Confidence::Medium;
            XrdpSecurityOutcome::Unrecognised
        }
        None => {
            findings.push("security_layer is not set; xrdp negotiates by default.".to_owned());
            confidence = Confidence::Medium;
            XrdpSecurityOutcome::Negotiate
        }
    };
    if crypt_level.as_deref() == Some("fips") {
        findings
            .push("crypt_level=fips: Standard RDP Security needs FIPS-capable clients.".to_owned());
    }
    Ok(Found {
        observed: XrdpSecurityObserved {
            config: config.clone(),
            security_layer,
            crypt_level,
            ssl_protocols: get("ssl_protocols"),
            tls_ciphers: get("tls_ciphers"),
        },
        outcome: Some(outcome),
        confidence,
        findings,
    })
}

/// What the agent finds at a path: existence, readability, link target, mode; and the bytes.
pub fn read_file_state(path: &str) -> (FileState, Option<Vec<u8>>) {
    let link = fs::symlink_metadata(path).ok();
    let symlink_to = link
        .as_ref()
        .filter(|m| m.file_type().is_symlink())
        .and_then(|_| fs::read_link(path).ok())
        .map(|t| t.display().to_string());
    let meta = fs::metadata(path).ok();
    let mut bytes = None;
    let readable = match fs::File::open(path) {
        Ok(mut f) => {
            let mut buf = Vec::new();
            let ok = f.read_to_end(&mut buf).is_ok();
            if ok {
                bytes = Some(buf);
            }
            ok
        }
        Err(_) => false,
    };
    (
        FileState {
            path: path.to_owned(),
            exists: meta.is_some(),
            readable,
            symlink_to,
            mode: meta.map(|m| unix_mode(&m)),
        },
        bytes,
    )
}

#[cfg(unix)]
fn unix_mode(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn unix_mode(_: &fs::Metadata) -> u32 {
    0
}

/// The certificate and key at two paths, analysed as xrdp would use them.
pub fn analyse_pair(
    cert_path: &str,
    key_path: &str,
    now: SystemTime,
) -> (
    FileState,
    FileState,
    Option<crate::rdp::report::CertificateReport>,
    Option<PublicHalf>,
    Option<bool>,
    Vec<String>,
) {
    let mut findings = Vec::new();
    let (cert_state, cert_bytes) = read_file_state(cert_path);
    let (key_state, key_bytes) = read_file_state(key_path);
    let host = crate::target::Host::parse(&super::this_host_name())
        .or_else(|_| crate::target::Host::parse("localhost"))
        .expect("localhost is a valid host name");
    let cert_der = cert_bytes.as_deref().and_then(first_certificate_der);
    let certificate = match &cert_der {
        Some(der) => match crate::checks::rdp::cert::analyse(der, &host, now) {
            Ok(report) => Some(report),
            Err(e) => {
                findings.push(format!("{cert_path}: {e}"));
                None
            }
        },
        None => {
            if cert_state.readable {
                findings.push(format!("{cert_path} holds no PEM certificate."));
            }
            None
        }
    };
    let half = match key_bytes.as_deref().map(private_key_public_half) {
        Some(Ok(half)) => Some(half),
        Some(Err(e)) => {
            findings.push(format!("{key_path}: {e}"));
            None
        }
        None => None,
    };
    let matches = match (&half, &cert_der) {
        (Some(half), Some(der)) => key_matches_certificate(half, der),
        _ => None,
    };
    (cert_state, key_state, certificate, half, matches, findings)
}

fn xrdp_certificate(
    config: &IniPath,
    now: SystemTime,
) -> CheckResult<XrdpCertificateObserved, XrdpCertificateOutcome> {
    let ini = read_ini(config)?;
    let (cert_path, key_path) = xrdp_cert_paths(&ini);
    let (certificate_file, key_file, certificate, half, key_matches, mut findings) =
        analyse_pair(&cert_path, &key_path, now);
    let key_bits = half.as_ref().and_then(key_size);
    let key_algorithm = half.as_ref().map(|h| match h {
        PublicHalf::Rsa { .. } => "RSA".to_owned(),
        PublicHalf::Ec { .. } => "EC".to_owned(),
    });
    let mut confidence = Confidence::High;
    let outcome = if !certificate_file.exists || !key_file.exists {
        for f in [&certificate_file, &key_file]
            .into_iter()
            .filter(|f| !f.exists)
        {
            findings.push(format!(
                "{} does not exist{}.",
                f.path,
                f.symlink_to
                    .as_ref()
                    .map(|t| format!(" (a dangling link to {t})"))
                    .unwrap_or_default()
            ));
        }
        XrdpCertificateOutcome::Missing
    } else if !certificate_file.readable
        || !key_file.readable
        || certificate.is_none()
        || half.is_none()
    {
        for f in [&certificate_file, &key_file]
            .into_iter()
            .filter(|f| !f.readable)
        {
            findings.push(format!("{} cannot be read by the agent.", f.path));
        }
        XrdpCertificateOutcome::Unreadable
    } else if key_matches == Some(false) {
        findings.push("The private key does not belong to the certificate: xrdp selects TLS, then drops the connection at the handshake.".to_owned());
        XrdpCertificateOutcome::KeyMismatch
    } else {
        let cert = certificate.as_ref().expect("checked above");
        if key_matches.is_none() {
            confidence = Confidence::Medium;
            findings.push("Whether the key matches the certificate could not be told (the key file lacks its public half).".to_owned());
        }
        match cert.validity {
            Validity::Expired => {
                findings.push(format!("The certificate expired on {}.", cert.not_after));
                XrdpCertificateOutcome::Expired
            }
            Validity::NotYetValid => {
                findings.push(format!(
                    "The certificate is not valid before {}.",
                    cert.not_before
                ));
                XrdpCertificateOutcome::NotYetValid
            }
            Validity::Valid
                if key_algorithm.as_deref() == Some("RSA")
                    && key_bits.is_some_and(|b| b < 2048) =>
            {
                findings.push(format!("The RSA key has {} bits; xrdp disconnects TLS clients with keys under 2048 bits.", key_bits.unwrap_or_default()));
                XrdpCertificateOutcome::WeakKey
            }
            Validity::Valid => XrdpCertificateOutcome::Ok,
        }
    };
    if let Some(mode) = key_file.mode {
        if mode & 0o004 != 0 {
            findings.push(format!(
                "{} is readable by every user (mode {mode:o}).",
                key_file.path
            ));
        }
    }
    Ok(Found {
        observed: XrdpCertificateObserved {
            config: config.clone(),
            certificate_file,
            key_file,
            certificate,
            key_matches,
            key_algorithm,
            key_bits,
        },
        outcome: Some(outcome),
        confidence,
        findings,
    })
}

fn xrdp_firewall(
    p: &dyn HostPlatform,
    config: &IniPath,
    port: Option<u16>,
) -> CheckResult<XrdpFirewallObserved, XrdpFirewallOutcome> {
    let port = match port {
        Some(port) => port,
        None => {
            let ini = read_ini(config)?;
            xrdp_port(&ini).1.unwrap_or(crate::DEFAULT_RDP_PORT)
        }
    };
    let out = p.run(&FixedProgram::NftRuleset)?;
    if !out.success() {
        let said = out.stderr.trim().to_owned();
        return Err(if said.contains("Operation not permitted") {
            PlatformError::AccessDenied(format!("nft list ruleset: {said}"))
        } else {
            PlatformError::Failed(format!("nft list ruleset: {said}"))
        });
    }
    let verdict = nft_port_verdict(&out.stdout, port).map_err(PlatformError::Failed)?;
    let mut findings = Vec::new();
    for rule in &verdict.rules {
        if rule.verdict != "accept" {
            findings.push(format!(
                "{} {} {}: {}{}",
                rule.family,
                rule.table,
                rule.chain,
                rule.verdict,
                if rule.conditions.is_empty() {
                    String::new()
                } else {
                    format!(" when {}", rule.conditions.join(" and "))
                }
            ));
        }
    }
    for chain in &verdict.drop_policy_chains {
        findings.push(format!("The chain {chain} drops what no rule accepts."));
    }
    if verdict.input_chains == 0 {
        findings.push("nftables has no input chain: it filters nothing coming in.".to_owned());
    }
    let jumps = verdict
        .rules
        .iter()
        .any(|r| r.verdict.starts_with("jump") || r.verdict.starts_with("goto"));
    Ok(Found {
        observed: XrdpFirewallObserved {
            port,
            rules: verdict.rules,
            drop_policy_chains: verdict.drop_policy_chains,
            input_chains: verdict.input_chains,
        },
        outcome: Some(verdict.outcome),
        confidence: if jumps {
            Confidence::Medium
        } else {
            Confidence::High
        },
        findings,
    })
}
