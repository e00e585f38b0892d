//! Windows fixes through the fake host, and everything around a fix that does not depend on
//! the platform: snapshots and exact rollbacks, dry runs, verification failures, the
//! journal on disk, idempotency, approvals for downgrades (missing, forged, expired, for
//! another host or case, reused), and the automatic revert of expired downgrades, including
//! after the agent restarts.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_client::host::approval;
use agent_client::host::checks::run_blocking;
use agent_client::host::exec::ProgramOutput;
use agent_client::host::fake::{self_signed, FakeHost, FakeState};
use agent_client::host::fix::*;
use agent_client::host::journal::Journal;
use agent_client::host::platform::{keys, FixedProgram, HostPlatform};
use agent_client::host::report::*;
use agent_client::host::service::{FixService, FixServiceError};
use agent_client::signing::{unix_now, Keypair};
use support::TempDir;

const AGENT: &str = "agent-a";

struct Setup {
    host: FakeHost,
    dir: TempDir,
    server: Keypair,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            host: FakeHost::healthy_windows(),
            dir: TempDir::new("host-fixes"),
            server: Keypair::generate(),
        }
    }

    /// A fix service as a freshly started agent has it: the journal is read from disk.
    fn service(&self) -> FixService {
        FixService::new(
            Arc::new(self.host.clone()),
            Journal::open(&self.journal_dir()).unwrap(),
            AGENT,
            Some(self.server.public_key()),
        )
    }

    fn journal_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("journal")
    }

    fn approval(&self, fix: &str, case: &str, expires_in: i64) -> ApprovalToken {
        let now = unix_now();
        approval::issue(
            &self.server,
            &ApprovalClaims {
                approval_id: format!("ap-{fix}-{case}-{expires_in}-{}", rand_suffix()),
                agent_id: AGENT.into(),
                fix: fix.into(),
                case_id: case.into(),
                approved_by: "helpdesk-1".into(),
                issued_at: now,
                expires_at: now + expires_in,
            },
        )
    }

    fn registry(&self) -> BTreeMap<(String, String), (String, RegValue)> {
        self.host.with(|s: &mut FakeState| s.registry.clone())
    }
}

fn rand_suffix() -> String {
    agent_client::signing::random_bytes::<4>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn request(key: &str, fix: FixSpec) -> FixRequest {
    FixRequest {
        idempotency_key: key.into(),
        case_id: Some("case-1".into()),
        fix,
        dry_run: false,
        approval: None,
    }
}

fn run(service: &FixService, req: FixRequest) -> ActionRecord {
    service.run(req, Requester::Server).unwrap().action
}

fn rollback(service: &FixService, action: &ActionRecord) -> ActionRecord {
    service
        .rollback(
            RollbackRequest {
                action_id: action.action_id.clone(),
                force: false,
            },
            Requester::Server,
        )
        .unwrap()
}

fn assert_state(record: &ActionRecord, expected: &str) {
    let actual = serde_json::to_value(&record.state).unwrap()["state"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(actual, expected, "{:#?}", record);
}

// ---------------------------------------------------------------------------------------
// Safe and change fixes: apply, verify, roll back exactly

#[test]
fn enable_tls12_sets_both_values_and_rollback_restores_the_exact_registry() {
    let s = Setup::new();
    s.host
        .set_value(keys::TLS12_SERVER, "Enabled", RegValue::RegDword(0));
    let before = s.registry();
    let svc = s.service();
    let action = run(&svc, request("tls12-000001", FixSpec::EnableTls12));
    assert_state(&action, "applied");
    assert_eq!(
        s.host.value(keys::TLS12_SERVER, "Enabled"),
        Some(RegValue::RegDword(1))
    );
    assert_eq!(
        s.host.value(keys::TLS12_SERVER, "DisabledByDefault"),
        Some(RegValue::RegDword(0))
    );
    assert_eq!(action.plan.len(), 2);
    assert!(action
        .verification
        .as_deref()
        .unwrap()
        .contains("Enabled = REG_DWORD 1"));
    let snapshot = action.snapshot.clone().unwrap();
    assert!(snapshot.items.contains(&StateItem::Registry {
        key: keys::TLS12_SERVER.into(),
        name: "DisabledByDefault".into(),
        value: None
    }));
    let back = rollback(&svc, &action);
    assert_state(&back, "rolled-back");
    // DisabledByDefault did not exist before: it is deleted again, not set to 0.
    assert_eq!(s.registry(), before);
}

#[test]
fn start_rdp_services_starts_the_stopped_ones_and_rollback_stops_only_those() {
    let s = Setup::new();
    s.host.service_stop("UmRdpService").unwrap();
    s.host.service_stop("SessionEnv").unwrap();
    let svc = s.service();
    let action = run(&svc, request("services-0001", FixSpec::StartRdpServices));
    assert_state(&action, "applied");
    for name in ["TermService", "UmRdpService", "SessionEnv"] {
        assert_eq!(
            s.host.service(name).unwrap().state,
            ServiceState::Running,
            "{name}"
        );
    }
    let back = rollback(&svc, &action);
    assert_state(&back, "rolled-back");
    assert_eq!(
        s.host.service("TermService").unwrap().state,
        ServiceState::Running
    );
    assert_eq!(
        s.host.service("UmRdpService").unwrap().state,
        ServiceState::Stopped
    );
    assert_eq!(
        s.host.service("SessionEnv").unwrap().state,
        ServiceState::Stopped
    );
    let log = s.host.log();
    assert!(!log
        .iter()
        .any(|l| l == "service_stop TermService" || l == "service_start TermService"));
}

#[test]
fn a_disabled_service_is_a_refused_precondition_and_nothing_changes() {
    let s = Setup::new();
    s.host.with(|st| {
        let um = st.services.get_mut("UmRdpService").unwrap();
        um.state = ServiceState::Stopped;
        um.start_type = Some(StartType::Disabled);
    });
    let action = run(
        &s.service(),
        request("services-0002", FixSpec::StartRdpServices),
    );
    assert_state(&action, "refused");
    assert!(s.host.log().iter().all(|l| !l.starts_with("service_start")));
}

#[test]
fn enable_firewall_rule_enables_the_group_and_rollback_restores_the_rule_strings() {
    let s = Setup::new();
    s.host
        .firewall_set_enabled("RemoteDesktop-UserMode-In-TCP", false)
        .unwrap();
    s.host
        .firewall_set_enabled("RemoteDesktop-Shadow-In-TCP", false)
        .unwrap();
    let before = s.registry();
    let svc = s.service();
    let action = run(&svc, request("firewall-001", FixSpec::EnableFirewallRule));
    assert_state(&action, "applied");
    assert_eq!(action.plan.len(), 2);
    let HostCheckReport::FirewallRule(check) =
        run_blocking(&HostCheckSpec::FirewallRule { timeout_ms: 1 }, &s.host)
    else {
        panic!()
    };
    assert_eq!(check.outcome, Some(FirewallOutcome::Enabled));
    // The WebSocket rules belong to the other fix and stay disabled.
    assert!(check
        .observed
        .unwrap()
        .websocket_rules
        .iter()
        .all(|r| !r.enabled));
    rollback(&svc, &action);
    assert_eq!(s.registry(), before);
}

#[test]
fn enable_gateway_transport_enables_only_the_websocket_rules() {
    let s = Setup::new();
    let svc = s.service();
    let action = run(
        &svc,
        request("gateway-0001", FixSpec::EnableGatewayTransport),
    );
    assert_state(&action, "applied");
    let targets: Vec<&str> = action.plan.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "firewall rule RemoteDesktop-In-TCP-WS",
            "firewall rule RemoteDesktop-In-TCP-WSS"
        ]
    );
    let before_rollback = s.registry();
    rollback(&svc, &action);
    assert_ne!(s.registry(), before_rollback);
    let HostCheckReport::FirewallRule(check) =
        run_blocking(&HostCheckSpec::FirewallRule { timeout_ms: 1 }, &s.host)
    else {
        panic!()
    };
    assert!(check
        .observed
        .unwrap()
        .websocket_rules
        .iter()
        .all(|r| !r.enabled));
}

#[test]
fn a_group_policy_block_rule_refuses_enabling_local_rules() {
    let s = Setup::new();
    s.host.set_value(
        keys::FIREWALL_POLICY_RULES,
        "{6B1D7C5E}",
        RegValue::RegSz("v2.30|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=3389|".into()),
    );
    let action = run(
        &s.service(),
        request("firewall-002", FixSpec::EnableFirewallRule),
    );
    assert_state(&action, "refused");
    let ActionState::Refused { reason } = &action.state else {
        unreachable!()
    };
    assert!(reason.contains("{6B1D7C5E}"), "{reason}");
}

#[test]
fn restore_rdp_port_moves_the_listener_back_and_rollback_moves_it_again() {
    let s = Setup::new();
    s.host
        .set_value(keys::RDP_TCP, "PortNumber", RegValue::RegDword(3390));
    s.host.service_stop("TermService").unwrap();
    s.host.service_start("TermService").unwrap();
    let listening = |port: u16| {
        s.host
            .tcp_listeners()
            .unwrap()
            .iter()
            .any(|l| l.port == port)
    };
    assert!(listening(3390) && !listening(3389));
    let svc = s.service();
    let action = run(
        &svc,
        request("port-000001", FixSpec::RestoreRdpPort { port: 3389 }),
    );
    assert_state(&action, "applied");
    assert!(listening(3389) && !listening(3390));
    assert!(
        action.plan.iter().any(|c| c.to.contains("disconnected")),
        "the plan warns about sessions"
    );
    rollback(&svc, &action);
    assert_eq!(
        s.host.value(keys::RDP_TCP, "PortNumber"),
        Some(RegValue::RegDword(3390))
    );
    assert!(listening(3390) && !listening(3389));
}

#[test]
fn restore_rdp_port_is_refused_when_another_program_holds_the_port() {
    let s = Setup::new();
    s.host
        .set_value(keys::RDP_TCP, "PortNumber", RegValue::RegDword(3390));
    s.host.with(|st| {
        st.listeners.push(TcpListenerInfo {
            address: "0.0.0.0".into(),
            port: 3389,
            pid: Some(4412),
            process: Some("teamviewer_service".into()),
        })
    });
    let action = run(
        &s.service(),
        request("port-000002", FixSpec::RestoreRdpPort { port: 3389 }),
    );
    assert_state(&action, "refused");
    assert_eq!(
        s.host.value(keys::RDP_TCP, "PortNumber"),
        Some(RegValue::RegDword(3390))
    );
}

#[test]
fn renew_rdp_certificate_sets_the_old_one_aside_and_rollback_puts_every_store_back() {
    let s = Setup::new();
    let expired = self_signed(
        "PC-0423",
        "a1",
        "2001-01-01T00:00:00Z",
        "2002-01-01T00:00:00Z",
    );
    let fresh = self_signed(
        "PC-0423",
        "b2",
        "2000-01-01T00:00:00Z",
        "2999-01-01T00:00:00Z",
    );
    let broken_acl = "O:SYG:SYD:PAI(A;;0x120089;;;WD)(A;;FA;;;SY)";
    s.host.with(|st| {
        st.stores
            .insert(CertStore::RemoteDesktop, vec![expired.clone()]);
        st.regenerated_certificate = Some(fresh.clone());
        st.acls.insert("MachineKeys".into(), broken_acl.into());
    });
    let svc = s.service();
    let action = run(&svc, request("cert-000001", FixSpec::RenewRdpCertificate));
    assert_state(&action, "applied");
    let stores = s.host.with(|st| st.stores.clone());
    assert_eq!(
        stores[&CertStore::RemoteDesktop],
        std::slice::from_ref(&fresh)
    );
    assert_eq!(stores[&CertStore::Backup], std::slice::from_ref(&expired));
    let acl = s
        .host
        .acl_sddl(agent_client::host::platform::AclTarget::MachineKeys)
        .unwrap();
    assert_eq!(acl, format!("{broken_acl}(A;;0x12019f;;;WD)(A;;FA;;;BA)"));
    let HostCheckReport::RdpCertificate(check) =
        run_blocking(&HostCheckSpec::RdpCertificate { timeout_ms: 1 }, &s.host)
    else {
        panic!()
    };
    assert_eq!(check.outcome, Some(CertificateOutcome::Valid));

    let back = rollback(&svc, &action);
    assert_state(&back, "rolled-back");
    let stores = s.host.with(|st| st.stores.clone());
    assert_eq!(
        stores[&CertStore::RemoteDesktop],
        [expired],
        "the store lists what it did before"
    );
    assert_eq!(
        stores[&CertStore::Backup],
        [fresh],
        "the new one is set aside, not deleted"
    );
    assert_eq!(
        s.host
            .acl_sddl(agent_client::host::platform::AclTarget::MachineKeys)
            .unwrap(),
        broken_acl
    );
}

#[test]
fn when_windows_makes_no_new_certificate_the_fix_fails_and_is_rolled_back() {
    let s = Setup::new();
    let expired = self_signed(
        "PC-0423",
        "a1",
        "2001-01-01T00:00:00Z",
        "2002-01-01T00:00:00Z",
    );
    s.host.with(|st| {
        st.stores
            .insert(CertStore::RemoteDesktop, vec![expired.clone()]);
        st.regenerated_certificate = None;
    });
    let action = run(
        &s.service(),
        request("cert-000002", FixSpec::RenewRdpCertificate),
    );
    let ActionState::Failed { rolled_back, error } = &action.state else {
        panic!("{:?}", action.state)
    };
    assert!(*rolled_back);
    assert!(error.contains("no new usable certificate"), "{error}");
    assert_eq!(
        s.host
            .with(|st| st.stores[&CertStore::RemoteDesktop].clone()),
        [expired]
    );
}

#[test]
fn a_bound_certificate_refuses_renewing_the_self_signed_one() {
    let s = Setup::new();
    s.host.set_value(
        keys::RDP_TCP,
        "SSLCertificateSHA1Hash",
        RegValue::RegBinary(HexBytes(vec![1; 20])),
    );
    let action = run(
        &s.service(),
        request("cert-000003", FixSpec::RenewRdpCertificate),
    );
    assert_state(&action, "refused");
}

#[test]
fn reset_licensing_cache_exports_then_deletes_and_rollback_imports_the_same_values() {
    let s = Setup::new();
    let hw = format!("{}\\HardwareID", keys::MSLICENSING);
    let store = format!("{}\\Store\\LICENSE000", keys::MSLICENSING);
    s.host.set_value(
        &hw,
        "ClientHWID",
        RegValue::RegBinary(HexBytes(vec![2, 0, 3, 4])),
    );
    s.host.set_value(
        &store,
        "ClLicense",
        RegValue::RegBinary(HexBytes(vec![9; 16])),
    );
    let before = s.registry();
    let svc = s.service();
    let action = run(&svc, request("licence-0001", FixSpec::ResetLicensingCache));
    assert_state(&action, "applied");
    assert_eq!(s.host.value(&hw, "ClientHWID"), None);
    // The export is in the journal's snapshot directory, private to the agent.
    let Some(StateItem::RegistryTree {
        blob: Some(blob),
        sha256: Some(_),
        ..
    }) = action.snapshot.as_ref().unwrap().items.first()
    else {
        panic!("no export recorded")
    };
    let blob_path = s
        .journal_dir()
        .join("snapshots")
        .join(&action.action_id)
        .join(blob);
    assert!(blob_path.is_file());
    assert_private(&blob_path, 0o600);
    rollback(&svc, &action);
    assert_eq!(s.registry(), before);
}

#[test]
fn flush_dns_and_resync_clock_run_their_program_and_have_nothing_to_restore() {
    let s = Setup::new();
    s.host.with(|st| {
        st.programs.insert(
            format!("{:?}", FixedProgram::FlushDns),
            ProgramOutput::ok("Successfully flushed the DNS Resolver Cache."),
        );
        st.programs.insert(
            format!("{:?}", FixedProgram::ResyncClock),
            ProgramOutput::failed(
                1,
                "",
                "The computer did not resync because no time data was available.",
            ),
        );
    });
    let svc = s.service();
    let flush = run(&svc, request("dns-00000001", FixSpec::FlushDns));
    assert_state(&flush, "applied");
    assert!(matches!(
        flush.snapshot.as_ref().unwrap().items[0],
        StateItem::Nothing { .. }
    ));
    let back = rollback(&svc, &flush);
    assert!(back
        .history
        .last()
        .unwrap()
        .what
        .contains("nothing to restore"));
    let clock = run(&svc, request("clock-0000001", FixSpec::ResyncClock));
    let ActionState::Failed { error, .. } = &clock.state else {
        panic!("{:?}", clock.state)
    };
    assert!(error.contains("no time data"), "{error}");
    assert_eq!(s.host.log(), ["run FlushDns", "run ResyncClock"]);
}

#[test]
fn set_security_layer_negotiate_is_refused_when_group_policy_sets_it() {
    let s = Setup::new();
    s.host
        .set_value(keys::RDP_TCP, "SecurityLayer", RegValue::RegDword(0));
    s.host
        .set_value(keys::TS_POLICY, "SecurityLayer", RegValue::RegDword(0));
    let action = run(
        &s.service(),
        request("layer-000001", FixSpec::SetSecurityLayerNegotiate),
    );
    assert_state(&action, "refused");
    assert_eq!(
        s.host.value(keys::RDP_TCP, "SecurityLayer"),
        Some(RegValue::RegDword(0))
    );
}

#[test]
fn a_change_that_does_not_stick_fails_verification_and_is_rolled_back() {
    let s = Setup::new();
    s.host
        .set_value(keys::RDP_TCP, "SecurityLayer", RegValue::RegDword(0));
    s.host.with(|st| {
        st.sticky
            .insert((keys::RDP_TCP.to_ascii_lowercase(), "securitylayer".into()));
    });
    let action = run(
        &s.service(),
        request("layer-000002", FixSpec::SetSecurityLayerNegotiate),
    );
    let ActionState::Failed { error, rolled_back } = &action.state else {
        panic!("{:?}", action.state)
    };
    assert!(error.contains("reads REG_DWORD 0"), "{error}");
    assert!(*rolled_back);
    assert!(action
        .history
        .iter()
        .any(|h| h.what.starts_with("rolled back")));
}

#[test]
fn a_dry_run_shows_the_plan_and_changes_nothing() {
    let s = Setup::new();
    s.host
        .set_value(keys::RDP_TCP, "SecurityLayer", RegValue::RegDword(0));
    let before = s.registry();
    let mut req = request("dry-run-0001", FixSpec::SetSecurityLayerNegotiate);
    req.dry_run = true;
    let action = run(&s.service(), req);
    assert_state(&action, "dry-run");
    assert_eq!(
        action.plan,
        [PlannedChange {
            target: format!("{}\\SecurityLayer", keys::RDP_TCP),
            from: "REG_DWORD 0 (0x0)".into(),
            to: "REG_DWORD 1 (0x1)".into()
        }]
    );
    assert_eq!(s.registry(), before);
    assert!(s.host.log().is_empty(), "{:?}", s.host.log());
}

#[test]
fn a_fix_whose_state_is_already_in_place_changes_nothing() {
    let s = Setup::new();
    let action = run(
        &s.service(),
        request("layer-000003", FixSpec::SetSecurityLayerNegotiate),
    );
    assert_state(&action, "already-in-place");
    assert!(s.host.log().is_empty());
}

// ---------------------------------------------------------------------------------------
// Journal, restart, drift

#[test]
fn a_rollback_works_from_the_journal_after_the_agent_restarts() {
    let s = Setup::new();
    s.host
        .set_value(keys::RDP_TCP, "SecurityLayer", RegValue::RegDword(2));
    let before = s.registry();
    let action = run(
        &s.service(),
        request("restart-0001", FixSpec::SetSecurityLayerNegotiate),
    );
    assert_state(&action, "applied");
    // A new process: nothing in memory, only the journal on disk.
    let restarted = s.service();
    let back = rollback(&restarted, &action);
    assert_state(&back, "rolled-back");
    assert_eq!(s.registry(), before);
    let journal = restarted.list(&JournalRequest::default()).unwrap();
    assert_eq!(journal.actions.len(), 1);
    assert_state(&journal.actions[0], "rolled-back");
    // Journal files and directories are private to the agent.
    assert_private(&s.journal_dir(), 0o700);
    assert_private(
        &s.journal_dir()
            .join("actions")
            .join(format!("{}.json", action.action_id)),
        0o600,
    );
}

#[test]
fn an_interrupted_apply_is_rolled_back_from_its_snapshot_after_a_restart() {
    let s = Setup::new();
    s.host
        .set_value(keys::TLS12_SERVER, "Enabled", RegValue::RegDword(0));
    let before = s.registry();
    // Record the snapshot as a real run would, then "crash" half-way through the change.
    let mut req = request("crash-000001", FixSpec::EnableTls12);
    req.dry_run = true;
    let mut record = run(&s.service(), req);
    s.host
        .set_value(keys::TLS12_SERVER, "Enabled", RegValue::RegDword(1));
    record.state = ActionState::Applying;
    record.dry_run = false;
    Journal::open(&s.journal_dir())
        .unwrap()
        .save(&record)
        .unwrap();
    let back = rollback(&s.service(), &record);
    assert_state(&back, "rolled-back");
    assert_eq!(s.registry(), before);
}

#[test]
fn a_rollback_leaves_a_value_someone_changed_since_unless_forced() {
    let s = Setup::new();
    s.host
        .set_value(keys::RDP_TCP, "SecurityLayer", RegValue::RegDword(0));
    let svc = s.service();
    let action = run(
        &svc,
        request("drift-000001", FixSpec::SetSecurityLayerNegotiate),
    );
    s.host
        .set_value(keys::RDP_TCP, "SecurityLayer", RegValue::RegDword(2));
    let back = rollback(&svc, &action);
    assert!(back
        .history
        .last()
        .unwrap()
        .what
        .contains("changed since the fix"));
    assert_eq!(
        s.host.value(keys::RDP_TCP, "SecurityLayer"),
        Some(RegValue::RegDword(2))
    );
    // Already rolled back: a second request returns the record without touching anything.
    let again = svc
        .rollback(
            RollbackRequest {
                action_id: action.action_id.clone(),
                force: true,
            },
            Requester::Server,
        )
        .unwrap();
    assert_eq!(again, back);
    assert_eq!(
        s.host.value(keys::RDP_TCP, "SecurityLayer"),
        Some(RegValue::RegDword(2))
    );
}

#[test]
fn rolling_back_something_that_changed_nothing_or_does_not_exist_is_an_error() {
    let s = Setup::new();
    let svc = s.service();
    let action = run(
        &svc,
        request("noop-0000001", FixSpec::SetSecurityLayerNegotiate),
    );
    assert_state(&action, "already-in-place");
    assert!(matches!(
        svc.rollback(
            RollbackRequest {
                action_id: action.action_id,
                force: false
            },
            Requester::Server
        ),
        Err(FixServiceError::Conflict(_))
    ));
    assert!(matches!(
        svc.rollback(
            RollbackRequest {
                action_id: "0000000000-ffffffffffffffff".into(),
                force: false
            },
            Requester::Server
        ),
        Err(FixServiceError::NotFound(_))
    ));
    assert!(matches!(
        svc.rollback(
            RollbackRequest {
                action_id: "../../etc/passwd".into(),
                force: false
            },
            Requester::Server
        ),
        Err(FixServiceError::NotFound(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Idempotency

#[test]
fn a_repeated_idempotency_key_returns_the_first_record_and_applies_once() {
    let s = Setup::new();
    s.host
        .set_value(keys::RDP_TCP, "SecurityLayer", RegValue::RegDword(0));
    let svc = s.service();
    let first = svc
        .run(
            request("same-key-0001", FixSpec::SetSecurityLayerNegotiate),
            Requester::Server,
        )
        .unwrap();
    assert!(!first.repeated);
    // Someone puts the old value back; a retried request must still not apply again.
    s.host
        .set_value(keys::RDP_TCP, "SecurityLayer", RegValue::RegDword(0));
    let second = s
        .service()
        .run(
            request("same-key-0001", FixSpec::SetSecurityLayerNegotiate),
            Requester::Server,
        )
        .unwrap();
    assert!(second.repeated);
    assert_eq!(second.action, first.action);
    assert_eq!(
        s.host.value(keys::RDP_TCP, "SecurityLayer"),
        Some(RegValue::RegDword(0))
    );
    assert_eq!(
        s.host
            .log()
            .iter()
            .filter(|l| l.starts_with("reg_set"))
            .count(),
        1
    );
}

#[test]
fn an_idempotency_key_reused_for_another_fix_or_malformed_is_refused() {
    let s = Setup::new();
    let svc = s.service();
    run(
        &svc,
        request("same-key-0002", FixSpec::SetSecurityLayerNegotiate),
    );
    assert!(matches!(
        svc.run(
            request("same-key-0002", FixSpec::EnableTls12),
            Requester::Server
        ),
        Err(FixServiceError::Invalid(_))
    ));
    assert!(matches!(
        svc.run(request("bad key", FixSpec::EnableTls12), Requester::Server),
        Err(FixServiceError::Invalid(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Downgrades and approvals

fn downgrade(s: &Setup, key: &str, approval: Option<ApprovalToken>) -> ActionRecord {
    let mut req = request(key, FixSpec::DisableNla);
    req.approval = approval;
    run(&s.service(), req)
}

fn refusal(record: &ActionRecord) -> String {
    match &record.state {
        ActionState::Refused { reason } => reason.clone(),
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn a_downgrade_is_refused_without_an_approval() {
    let s = Setup::new();
    let action = downgrade(&s, "nla-00000001", None);
    assert!(refusal(&action).contains("only with an approval"));
    assert_eq!(
        s.host.value(keys::RDP_TCP, "UserAuthentication"),
        Some(RegValue::RegDword(1))
    );
    // A dry run of a downgrade needs no approval and changes nothing.
    let mut req = request("nla-00000002", FixSpec::DisableNla);
    req.dry_run = true;
    assert_state(&run(&s.service(), req), "dry-run");
    assert!(s.host.log().is_empty());
}

#[test]
fn a_downgrade_is_refused_with_a_forged_expired_other_host_or_other_case_approval() {
    let s = Setup::new();
    let now = unix_now();
    let claims = |agent: &str, fix: &str, case: &str, expires_at: i64| ApprovalClaims {
        approval_id: format!("ap-{}", rand_suffix()),
        agent_id: agent.into(),
        fix: fix.into(),
        case_id: case.into(),
        approved_by: "helpdesk-1".into(),
        issued_at: now - 600,
        expires_at,
    };
    let forger = Keypair::generate();
    let cases = [
        (
            approval::issue(&forger, &claims(AGENT, "disable-nla", "case-1", now + 600)),
            "not signed by this agent's server",
        ),
        (
            approval::issue(&s.server, &claims(AGENT, "disable-nla", "case-1", now - 1)),
            "expired",
        ),
        (
            approval::issue(
                &s.server,
                &claims("agent-b", "disable-nla", "case-1", now + 600),
            ),
            "another agent",
        ),
        (
            approval::issue(
                &s.server,
                &claims(AGENT, "disable-nla", "case-2", now + 600),
            ),
            "another case",
        ),
        (
            approval::issue(
                &s.server,
                &claims(AGENT, "allow-encryption-oracle", "case-1", now + 600),
            ),
            "another fix",
        ),
        (
            ApprovalToken("v1.e30.AAAA".into()),
            "not a well-formed token",
        ),
    ];
    for (i, (token, why)) in cases.into_iter().enumerate() {
        let action = downgrade(&s, &format!("nla-bad-{i:04}"), Some(token));
        let reason = refusal(&action);
        assert!(reason.contains(why), "{why}: {reason}");
    }
    assert_eq!(
        s.host.value(keys::RDP_TCP, "UserAuthentication"),
        Some(RegValue::RegDword(1))
    );
    assert!(s.host.log().is_empty(), "{:?}", s.host.log());
    // Every refusal is in the journal.
    assert_eq!(
        s.service()
            .list(&JournalRequest::default())
            .unwrap()
            .actions
            .len(),
        6
    );
}

#[test]
fn a_downgrade_runs_with_an_approval_and_is_reverted_when_it_expires() {
    let s = Setup::new();
    let token = s.approval("disable-nla", "case-1", 600);
    let action = downgrade(&s, "nla-00000003", Some(token));
    assert_state(&action, "applied");
    assert_eq!(
        s.host.value(keys::RDP_TCP, "UserAuthentication"),
        Some(RegValue::RegDword(0))
    );
    let revert_at = action.revert_at.unwrap();
    assert_eq!(action.approval.as_ref().unwrap().case_id, "case-1");
    let svc = s.service();
    assert!(svc.revert_expired(revert_at - 1).unwrap().is_empty());
    assert_eq!(svc.next_revert_at().unwrap(), Some(revert_at));
    let reverted = svc.revert_expired(revert_at).unwrap();
    assert_eq!(reverted.len(), 1);
    assert_state(&reverted[0], "auto-reverted");
    assert_eq!(
        s.host.value(keys::RDP_TCP, "UserAuthentication"),
        Some(RegValue::RegDword(1))
    );
    assert_eq!(svc.next_revert_at().unwrap(), None);
    // The server learns it from the journal.
    let journal = svc
        .list(&JournalRequest {
            updated_since: Some(action.updated_at),
        })
        .unwrap();
    assert_eq!(journal.agent_id, AGENT);
    assert_state(&journal.actions[0], "auto-reverted");
}

#[test]
fn an_expired_downgrade_is_reverted_by_the_background_task_after_a_restart() {
    let s = Setup::new();
    s.host.set_value(
        keys::CREDSSP,
        "AllowEncryptionOracle",
        RegValue::RegDword(1),
    );
    let before = s.registry();
    let mut req = request("oracle-00001", FixSpec::AllowEncryptionOracle);
    req.approval = Some(s.approval("allow-encryption-oracle", "case-1", 2));
    {
        let first = s.service();
        let action = run(&first, req);
        assert_state(&action, "applied");
        assert_eq!(
            s.host.value(keys::CREDSSP, "AllowEncryptionOracle"),
            Some(RegValue::RegDword(2))
        );
        // The agent stops here: the service and its memory are gone.
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let restarted = Arc::new(s.service());
    let task = rt.spawn(restarted.clone().auto_revert_forever());
    let started = Instant::now();
    // The journal is written after the registry: wait for the record, then look at both.
    let journal = loop {
        let journal = restarted.list(&JournalRequest::default()).unwrap();
        if matches!(journal.actions[0].state, ActionState::AutoReverted { .. }) {
            break journal;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not reverted in time"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    task.abort();
    assert_eq!(s.registry(), before);
    let ActionState::AutoReverted { at } = journal.actions[0].state else {
        unreachable!()
    };
    assert!(
        at >= journal.actions[0].revert_at.unwrap(),
        "not before the expiry"
    );
    assert!(journal.actions[0]
        .history
        .iter()
        .any(|h| h.what.starts_with("rolled back by Agent")));
}

#[test]
fn a_second_downgrade_of_the_same_setting_is_refused_while_the_first_is_in_effect() {
    let s = Setup::new();
    let first = downgrade(
        &s,
        "nla-00000004",
        Some(s.approval("disable-nla", "case-1", 600)),
    );
    assert_state(&first, "applied");
    let second = downgrade(
        &s,
        "nla-00000005",
        Some(s.approval("disable-nla", "case-1", 600)),
    );
    assert!(refusal(&second).contains(&first.action_id));
    // Rolled back, the setting is free again.
    rollback(&s.service(), &first);
    assert_state(
        &downgrade(
            &s,
            "nla-00000006",
            Some(s.approval("disable-nla", "case-1", 600)),
        ),
        "applied",
    );
}

#[test]
fn an_approval_is_used_once() {
    let s = Setup::new();
    let token = s.approval("disable-nla", "case-1", 600);
    let first = downgrade(&s, "nla-00000007", Some(token.clone()));
    rollback(&s.service(), &first);
    let again = downgrade(&s, "nla-00000008", Some(token));
    assert!(refusal(&again).contains("already used"));
}

#[test]
fn a_policy_that_requires_nla_refuses_turning_it_off_locally() {
    let s = Setup::new();
    s.host
        .set_value(keys::TS_POLICY, "UserAuthentication", RegValue::RegDword(1));
    let action = downgrade(
        &s,
        "nla-00000009",
        Some(s.approval("disable-nla", "case-1", 600)),
    );
    assert!(refusal(&action).contains("Group Policy"));
}

fn assert_private(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let actual = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(actual, mode, "{}", path.display());
}
