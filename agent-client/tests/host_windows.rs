//! The Windows host checks on Linux: the output parsers against recorded Windows outputs
//! (`tests/fixtures/windows/`), the Windows platform driven through a runner that answers
//! with those recordings (so the exact command lines are checked too), and every check's
//! logic against the in-memory fake host.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use agent_client::host::checks::run_blocking;
use agent_client::host::exec::{CommandLine, CommandRunner, ExecError, ProgramOutput};
use agent_client::host::fake::{self_signed, FakeHost};
use agent_client::host::platform::{keys, FixedProgram, HostPlatform};
use agent_client::host::report::*;
use agent_client::host::windows::{
    parse_adapters_json, parse_cert_json, parse_firewall_rule, parse_listeners_json,
    parse_reg_query, parse_sc_qc, parse_sc_queryex, parse_secure_channel_json, parse_wevtutil_xml,
    powershell, scripts, WindowsPlatform,
};

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/windows")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------
// Parsers

#[test]
fn reg_query_output_reads_every_value_type_of_the_first_key_only() {
    let values = parse_reg_query(&fixture("reg_query_rdp_tcp.txt"));
    let get = |name: &str| {
        values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} missing from {values:?}"))
    };
    assert_eq!(values.len(), 21);
    assert_eq!(get("PortNumber"), RegValue::RegDword(3389));
    assert_eq!(get("MaxInstanceCount"), RegValue::RegDword(u32::MAX));
    assert_eq!(get("Comment"), RegValue::RegSz(String::new()));
    assert_eq!(get("WdName"), RegValue::RegSz("Microsoft RDP 8.0".into()));
    assert_eq!(
        get("WFProfilePath"),
        RegValue::RegExpandSz("%SystemDrive%\\Profiles".into())
    );
    assert_eq!(
        get("DefaultDomains"),
        RegValue::RegMultiSz(vec!["corp".into(), "lab".into()])
    );
    let RegValue::RegBinary(hash) = get("SSLCertificateSHA1Hash") else {
        panic!("not binary");
    };
    assert_eq!(hash.0.len(), 20);
    assert_eq!(hash.to_string(), "3F2A1C9B5E7D8A0B4C6E2F1A9D8B7C6E5F4A3B2C");
}

#[test]
fn firewall_rule_strings_parse_into_typed_rules() {
    let values = parse_reg_query(&fixture("reg_query_firewall_rules.txt"));
    let rules: Vec<FirewallRule> = values
        .iter()
        .filter_map(|(name, v)| parse_firewall_rule(name, RuleStore::Local, v.as_str()?))
        .collect();
    assert_eq!(rules.len(), 7);
    let tcp = rules
        .iter()
        .find(|r| r.name == "RemoteDesktop-UserMode-In-TCP")
        .unwrap();
    assert!(!tcp.enabled);
    assert_eq!(tcp.action, "Allow");
    assert_eq!(tcp.protocol, Some(6));
    assert_eq!(tcp.local_ports, ["3389"]);
    assert_eq!(tcp.profiles, ["Domain", "Private"]);
    assert!(tcp.applies_to("private") && !tcp.applies_to("Public"));
    assert_eq!(tcp.group.as_deref(), Some("@FirewallAPI.dll,-28752"));
    let shadow = rules
        .iter()
        .find(|r| r.name == "RemoteDesktop-Shadow-In-TCP")
        .unwrap();
    assert!(shadow.profiles.is_empty() && shadow.applies_to("Public"));
    let ws = rules
        .iter()
        .find(|r| r.name == "RemoteDesktop-In-TCP-WS")
        .unwrap();
    assert_eq!(ws.local_ports, ["3387"]);
    assert_eq!(ws.group.as_deref(), Some("@FirewallAPI.dll,-28782"));
}

#[test]
fn sc_outputs_give_state_pid_and_start_type() {
    assert_eq!(
        parse_sc_queryex(&fixture("sc_queryex_termservice_running.txt")),
        Some((ServiceState::Running, Some(1196)))
    );
    assert_eq!(
        parse_sc_queryex(&fixture("sc_queryex_umrdpservice_stopped.txt")),
        Some((ServiceState::Stopped, None))
    );
    assert_eq!(
        parse_sc_queryex(&fixture("sc_queryex_not_installed.txt")),
        None
    );
    assert_eq!(
        parse_sc_qc(&fixture("sc_qc_termservice.txt")),
        Some(StartType::Demand)
    );
    assert_eq!(
        parse_sc_qc(&fixture("sc_qc_umrdpservice_disabled.txt")),
        Some(StartType::Disabled)
    );
}

#[test]
fn wevtutil_xml_gives_provider_id_time_level_and_message() {
    let events = parse_wevtutil_xml(&fixture("wevtutil_schannel.xml"));
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].provider, "Schannel");
    assert_eq!(events[0].id, 36871);
    assert_eq!(events[0].time, "2026-11-20T09:12:45Z");
    assert_eq!(events[0].level, Some(2));
    assert_eq!(
        events[0].message.as_deref(),
        Some("A fatal error occurred while creating a TLS server credential. The internal error state is 10013.")
    );
    assert_eq!(events[2].id, 36888);
    let rcm = parse_wevtutil_xml(&fixture("wevtutil_rcm_1057.xml"));
    assert_eq!(rcm.len(), 1);
    assert_eq!(
        rcm[0].provider,
        "Microsoft-Windows-TerminalServices-RemoteConnectionManager"
    );
    assert_eq!(rcm[0].id, 1057);
    assert!(rcm[0]
        .message
        .as_deref()
        .unwrap()
        .contains("Keyset does not exist\n."));
    assert!(parse_wevtutil_xml("").is_empty());
}

#[test]
fn powershell_json_lists_read_in_both_shapes() {
    let certs = parse_cert_json(&fixture("ps_cert_store.json")).unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0].private_key_readable, Some(false));
    assert!(!certs[0].valid_at("2026-11-20T10:00:00Z"));
    assert!(certs[1].valid_at("2026-11-20T10:00:00Z"));
    // PowerShell 5.1 writes a one-element list as the element itself; thumbprints of
    // either case become upper case.
    let single = parse_cert_json(&fixture("ps_cert_store_single.json")).unwrap();
    assert_eq!(single.len(), 1);
    assert_eq!(
        single[0].thumbprint.as_str(),
        "1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E"
    );
    assert_eq!(single[0].private_key_readable, None);
    assert!(parse_cert_json("").unwrap().is_empty());
    assert!(parse_cert_json("not json").is_err());
    let listeners = parse_listeners_json(&fixture("ps_listeners.json")).unwrap();
    assert_eq!(listeners.len(), 4);
    assert_eq!(listeners[1].port, 3389);
    assert_eq!(listeners[1].pid, Some(1196));
    let broken = parse_secure_channel_json(&fixture("ps_secure_channel_broken.json")).unwrap();
    assert!(broken.part_of_domain);
    assert_eq!(broken.secure_channel, Some(false));
}

// ---------------------------------------------------------------------------------------
// The Windows platform against recorded outputs

/// Answers commands from the recordings and remembers every command line it was given.
#[derive(Default)]
struct Recorded {
    /// Full `reg query KEY` listings, by key; `reg query KEY /v NAME` is answered with the
    /// matching line of the listing.
    registry: HashMap<String, String>,
    /// Other commands, by their display form.
    answers: HashMap<String, ProgramOutput>,
    calls: Mutex<Vec<CommandLine>>,
}

impl Recorded {
    fn key(mut self, key: &str, listing: &str) -> Self {
        self.registry.insert(key.to_owned(), listing.to_owned());
        self
    }

    fn answer(mut self, command: CommandLine, output: ProgramOutput) -> Self {
        self.answers.insert(command.display(), output);
        self
    }

    fn calls(&self) -> Vec<CommandLine> {
        self.calls.lock().unwrap().clone()
    }
}

fn not_found() -> ProgramOutput {
    ProgramOutput::failed(1, "", &fixture("reg_query_not_found.stderr.txt"))
}

impl CommandRunner for Recorded {
    fn run(&self, command: &CommandLine, _: Duration) -> Result<ProgramOutput, ExecError> {
        self.calls.lock().unwrap().push(command.clone());
        if command.program == "reg.exe" && command.args.first().map(String::as_str) == Some("query")
        {
            let key = &command.args[1];
            let Some(listing) = self.registry.get(key) else {
                return Ok(not_found());
            };
            return Ok(match command.args.get(2).map(String::as_str) {
                None => ProgramOutput::ok(listing),
                Some("/v") => {
                    let name = &command.args[3];
                    let header = listing.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                    match listing.lines().find(|l| {
                        l.trim_start().split("    ").next() == Some(name.as_str())
                            && l.starts_with("    ")
                    }) {
                        Some(line) => ProgramOutput::ok(&format!("\r\n{header}\r\n{line}\r\n\r\n")),
                        None => not_found(),
                    }
                }
                Some(other) => panic!("unexpected reg query argument {other}"),
            });
        }
        match self.answers.get(&command.display()) {
            Some(out) => Ok(out.clone()),
            None => panic!("no recording for {}", command.display()),
        }
    }
}

fn platform(recorded: Recorded) -> WindowsPlatform<Recorded> {
    WindowsPlatform::new(recorded, Duration::from_secs(5)).with_settle(Duration::from_millis(10))
}

fn sc(args: &[&str]) -> CommandLine {
    CommandLine::new("sc.exe", args)
}

/// Every command a check ran is one of the fixed programs; PowerShell only ever gets one of
/// the fixed scripts, with values in `RDPD_*` variables.
fn assert_only_fixed_programs(calls: &[CommandLine]) {
    let fixed_scripts = [
        scripts::enable_rule(),
        scripts::disable_rule(),
        scripts::active_profiles(),
        scripts::cert_store(),
        scripts::cert_move(),
        scripts::get_sddl(),
        scripts::set_sddl(),
        scripts::tcp_listeners(),
        scripts::secure_channel(),
        scripts::tspkg_version(),
        scripts::adapters_up(),
    ];
    for call in calls {
        assert!(
            [
                "reg.exe",
                "sc.exe",
                "wevtutil.exe",
                "powershell.exe",
                "ipconfig.exe",
                "w32tm.exe"
            ]
            .contains(&call.program.as_str()),
            "{}",
            call.display()
        );
        if call.program == "powershell.exe" {
            assert_eq!(
                &call.args[..3],
                ["-NoProfile", "-NonInteractive", "-Command"]
            );
            assert!(
                fixed_scripts.contains(&call.args[3]),
                "not a fixed script: {}",
                call.args[3]
            );
            assert_eq!(call.args.len(), 4);
            assert!(call.env.iter().all(|(name, _)| name.starts_with("RDPD_")));
        }
    }
}

#[test]
fn rdp_listener_from_recorded_outputs_finds_termservice_on_3389() {
    let recorded = Recorded::default()
        .key(keys::RDP_TCP, &fixture("reg_query_rdp_tcp.txt"))
        .answer(
            sc(&["queryex", "TermService"]),
            ProgramOutput::ok(&fixture("sc_queryex_termservice_running.txt")),
        )
        .answer(
            sc(&["qc", "TermService"]),
            ProgramOutput::ok(&fixture("sc_qc_termservice.txt")),
        )
        .answer(
            powershell(&scripts::tcp_listeners()),
            ProgramOutput::ok(&fixture("ps_listeners.json")),
        );
    let p = platform(recorded);
    let HostCheckReport::RdpListener(report) =
        run_blocking(&HostCheckSpec::RdpListener { timeout_ms: 1000 }, &p)
    else {
        panic!("wrong report");
    };
    assert_eq!(report.error, None);
    assert_eq!(report.outcome, Some(ListenerOutcome::Listening3389));
    assert_eq!(report.confidence, Confidence::High);
    let observed = report.observed.unwrap();
    assert_eq!(observed.port_number, Some(3389));
    assert_eq!(observed.termservice_pid, Some(1196));
    assert_eq!(
        observed.listeners.len(),
        2,
        "only the RDP port's sockets are kept"
    );
    let calls = runner(&p).calls();
    assert_only_fixed_programs(&calls);
    assert!(calls
        .iter()
        .any(|c| c.args == ["query", keys::RDP_TCP, "/v", "PortNumber"]));
}

fn runner(p: &WindowsPlatform<Recorded>) -> &Recorded {
    p.runner()
}

#[test]
fn another_program_on_the_port_is_reported_as_port_taken() {
    let recorded = Recorded::default()
        .key(keys::RDP_TCP, &fixture("reg_query_rdp_tcp.txt"))
        .answer(
            sc(&["queryex", "TermService"]),
            ProgramOutput::ok(&fixture("sc_queryex_termservice_running.txt")),
        )
        .answer(
            sc(&["qc", "TermService"]),
            ProgramOutput::ok(&fixture("sc_qc_termservice.txt")),
        )
        .answer(
            powershell(&scripts::tcp_listeners()),
            ProgramOutput::ok(&fixture("ps_listeners_port_taken.json")),
        );
    let p = platform(recorded);
    let HostCheckReport::RdpListener(report) =
        run_blocking(&HostCheckSpec::RdpListener { timeout_ms: 1000 }, &p)
    else {
        panic!("wrong report");
    };
    assert_eq!(report.outcome, Some(ListenerOutcome::PortTaken));
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.contains("teamviewer_service (pid 4412)")),
        "{:?}",
        report.findings
    );
}

fn firewall_platform(policy: Option<&str>) -> WindowsPlatform<Recorded> {
    let mut recorded = Recorded::default()
        .key(
            keys::RDP_TCP,
            &fixture("reg_query_port_number.txt").replace("0xd3e", "0xd3d"),
        )
        .key(
            keys::FIREWALL_RULES,
            &fixture("reg_query_firewall_rules.txt"),
        )
        .key(
            keys::FIREWALL_PROFILES[2].1,
            &fixture("reg_query_profile_enabled.txt"),
        )
        .answer(
            powershell(&scripts::active_profiles()),
            ProgramOutput::ok(&fixture("ps_active_profiles.json")),
        );
    if let Some(policy) = policy {
        recorded = recorded.key(keys::FIREWALL_POLICY_RULES, policy);
    }
    platform(recorded)
}

#[test]
fn firewall_rule_from_recorded_registry_sees_the_disabled_tcp_rule_on_the_domain_profile() {
    let p = firewall_platform(None);
    let HostCheckReport::FirewallRule(report) =
        run_blocking(&HostCheckSpec::FirewallRule { timeout_ms: 1000 }, &p)
    else {
        panic!("wrong report");
    };
    assert_eq!(report.error, None, "{:?}", report.error);
    assert_eq!(report.outcome, Some(FirewallOutcome::Disabled));
    let observed = report.observed.unwrap();
    assert_eq!(observed.active_profiles, ["Domain"]);
    assert_eq!(observed.rules.len(), 3);
    assert_eq!(observed.websocket_rules.len(), 2);
    assert!(report
        .findings
        .iter()
        .any(|f| f == "RemoteDesktop-UserMode-In-TCP is disabled."));
    assert!(report
        .findings
        .iter()
        .any(|f| f.contains("No enabled rule lets TCP 3389 in on the Domain profile")));
    assert_only_fixed_programs(&runner(&p).calls());
}

#[test]
fn a_group_policy_block_rule_is_reported_even_when_local_rules_allow() {
    let p = firewall_platform(Some(&fixture("reg_query_firewall_policy_block.txt")));
    let HostCheckReport::FirewallRule(report) =
        run_blocking(&HostCheckSpec::FirewallRule { timeout_ms: 1000 }, &p)
    else {
        panic!("wrong report");
    };
    assert_eq!(report.outcome, Some(FirewallOutcome::Disabled));
    let observed = report.observed.unwrap();
    assert!(observed
        .rules
        .iter()
        .any(|r| r.store == RuleStore::Policy && r.action == "Block"));
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.contains("Policy rule {6B1D7C5E")),
        "{:?}",
        report.findings
    );
}

#[test]
fn host_event_log_from_recorded_events_reports_certificate_errors_first() {
    use agent_client::host::platform::EventQuery;
    use agent_client::host::windows::wevtutil_command;
    let q = |channel: &'static str, provider: &'static str, ids: &[u32]| {
        wevtutil_command(&EventQuery {
            channel,
            provider,
            ids: ids.to_vec(),
            since_minutes: 60,
            max_events: 200,
        })
    };
    let rcm = "Microsoft-Windows-TerminalServices-RemoteConnectionManager";
    let recorded = Recorded::default()
        .answer(
            q("System", rcm, &[1057, 1058, 1050, 1068, 1069]),
            ProgramOutput::ok(&fixture("wevtutil_rcm_1057.xml")),
        )
        .answer(
            q(
                "Microsoft-Windows-TerminalServices-RemoteConnectionManager/Admin",
                rcm,
                &[1057, 1058, 1050, 1068, 1069],
            ),
            // The channel does not exist on this edition.
            ProgramOutput::failed(
                15007,
                "",
                "Failed to read events. The specified channel could not be found.",
            ),
        )
        .answer(
            q("System", "Schannel", &[36870, 36871, 36874, 36888]),
            ProgramOutput::ok(&fixture("wevtutil_schannel.xml")),
        )
        .answer(
            q(
                "Microsoft-Windows-RemoteDesktopServices-RdpCoreTS/Operational",
                "Microsoft-Windows-RemoteDesktopServices-RdpCoreTS",
                &[98, 99, 131],
            ),
            ProgramOutput::ok(""),
        );
    let p = platform(recorded);
    let HostCheckReport::HostEventLog(report) = run_blocking(
        &HostCheckSpec::HostEventLog {
            timeout_ms: 1000,
            since_minutes: 60,
        },
        &p,
    ) else {
        panic!("wrong report");
    };
    assert_eq!(report.error, None);
    assert_eq!(report.outcome, Some(EventLogOutcome::CertificateErrors));
    let observed = report.observed.unwrap();
    let count = |id: u32| observed.events.iter().find(|e| e.id == id).map(|e| e.count);
    assert_eq!(count(1057), Some(1));
    assert_eq!(count(36871), Some(2));
    assert_eq!(count(36888), Some(1));
    assert_eq!(
        observed
            .events
            .iter()
            .find(|e| e.id == 36871)
            .unwrap()
            .last_at,
        "2026-11-20T09:12:45Z"
    );
    assert_eq!(observed.connection_attempts, 0);
    assert_only_fixed_programs(&runner(&p).calls());
}

#[test]
fn a_denied_registry_read_is_reported_as_access_denied() {
    struct Denied;
    impl CommandRunner for Denied {
        fn run(&self, _: &CommandLine, _: Duration) -> Result<ProgramOutput, ExecError> {
            Ok(ProgramOutput::failed(
                1,
                "",
                &fixture("reg_access_denied.stderr.txt"),
            ))
        }
    }
    let p = WindowsPlatform::new(Denied, Duration::from_secs(1));
    let HostCheckReport::RdpEnabled(report) =
        run_blocking(&HostCheckSpec::RdpEnabled { timeout_ms: 1000 }, &p)
    else {
        panic!("wrong report");
    };
    assert_eq!(report.outcome, None);
    assert_eq!(report.confidence, Confidence::None);
    assert_eq!(report.error.unwrap().kind, HostErrorKind::AccessDenied);
}

#[test]
fn registry_writes_use_typed_reg_add_arguments() {
    let recorded = Recorded::default().answer(
        CommandLine::new(
            "reg.exe",
            &[
                "add",
                keys::RDP_TCP,
                "/v",
                "SecurityLayer",
                "/t",
                "REG_DWORD",
                "/d",
                "1",
                "/f",
            ],
        ),
        ProgramOutput::ok("The operation completed successfully.\r\n"),
    );
    let p = platform(recorded);
    p.reg_set(keys::RDP_TCP, "SecurityLayer", &RegValue::RegDword(1))
        .unwrap();
    let calls = runner(&p).calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].env.is_empty());
}

#[test]
fn certificate_store_script_gets_the_store_name_as_a_variable() {
    let recorded = Recorded::default().answer(
        powershell(&scripts::cert_store()),
        ProgramOutput::ok(&fixture("ps_cert_store.json")),
    );
    let p = platform(recorded);
    let certs = p.cert_store(CertStore::RemoteDesktop).unwrap();
    assert_eq!(certs.len(), 2);
    let calls = runner(&p).calls();
    assert_eq!(
        calls[0].env,
        [("RDPD_STORE".to_owned(), "Remote Desktop".to_owned())]
    );
    assert!(
        !calls[0].args[3].contains("Remote Desktop"),
        "the value is not part of the script"
    );
}

#[test]
fn services_that_do_not_exist_read_as_not_installed() {
    let recorded = Recorded::default().answer(
        sc(&["queryex", "SessionEnv"]),
        ProgramOutput::failed(1060, &fixture("sc_queryex_not_installed.txt"), ""),
    );
    let p = platform(recorded);
    assert_eq!(
        p.service("SessionEnv").unwrap().state,
        ServiceState::NotInstalled
    );
}

#[test]
fn fixed_programs_map_to_fixed_command_lines() {
    use agent_client::host::windows::fixed_program_command;
    assert_eq!(
        fixed_program_command(&FixedProgram::FlushDns).unwrap(),
        CommandLine::new("ipconfig.exe", &["/flushdns"])
    );
    assert_eq!(
        fixed_program_command(&FixedProgram::ResyncClock).unwrap(),
        CommandLine::new("w32tm.exe", &["/resync"])
    );
    assert_eq!(
        fixed_program_command(&FixedProgram::AdaptersUp).unwrap(),
        powershell(&scripts::adapters_up())
    );
    assert!(!scripts::adapters_up().contains(['"', '\n', '\r']));
    assert!(fixed_program_command(&FixedProgram::NftRuleset).is_none());
}

// ---------------------------------------------------------------------------------------
// Every Windows check's logic, through the fake host

fn check(host: &FakeHost, spec: HostCheckSpec) -> HostCheckReport {
    run_blocking(&spec, host)
}

#[test]
fn a_healthy_host_passes_every_windows_check() {
    let host = FakeHost::healthy_windows();
    host.with(|s| {
        s.programs.insert(
            format!("{:?}", FixedProgram::SecureChannel),
            ProgramOutput::ok(&fixture("ps_secure_channel_workgroup.json")),
        );
        s.programs.insert(
            format!("{:?}", FixedProgram::TspkgVersion),
            ProgramOutput::ok("10.0.19041.3636 (WinBuild.160101.0800)\r\n"),
        );
        // A certificate valid around the real clock.
        s.stores.insert(
            CertStore::RemoteDesktop,
            vec![self_signed(
                "PC-0423",
                "22",
                "2000-01-01T00:00:00Z",
                "2999-01-01T00:00:00Z",
            )],
        );
    });
    let expect = [
        ("firewall-rule", "enabled"),
        ("rdp-enabled", "allowed"),
        ("rdp-services", "running"),
        ("rdp-listener", "listening-3389"),
        ("session-limits", "accepting"),
        ("rdp-certificate", "valid"),
        ("cert-binding", "self-signed-default"),
        ("machinekeys-acl", "default"),
        ("schannel-tls12", "enabled"),
        ("security-layer", "negotiate"),
        ("secure-channel", "ok"),
        ("host-event-log", "no-connection-attempts"),
    ];
    for (id, outcome) in expect {
        let spec = HostCheckSpec::from_params(id, Some(1000), &Default::default()).unwrap();
        let report = check(&host, spec);
        let summary = report.summary();
        assert_eq!(summary.error, None, "{id}");
        assert_eq!(
            summary.outcome.as_deref(),
            Some(outcome),
            "{id}: {:?}",
            summary.findings
        );
    }
    let HostCheckReport::CredsspPolicy(credssp) =
        check(&host, HostCheckSpec::CredsspPolicy { timeout_ms: 1 })
    else {
        panic!()
    };
    // One side cannot tell a mismatch: no outcome, and it says so.
    assert_eq!(credssp.outcome, None);
    assert_eq!(
        credssp.observed.unwrap().tspkg_version.as_deref(),
        Some("10.0.19041.3636 (WinBuild.160101.0800)")
    );
}

/// Something that breaks a healthy fake host.
type Breaks = Box<dyn Fn(&FakeHost)>;

#[test]
fn each_broken_setting_gives_its_outcome() {
    let cases: Vec<(&str, Breaks, &str)> = vec![
        (
            "rdp-enabled",
            Box::new(|h| h.set_value(keys::TS_POLICY, "fDenyTSConnections", RegValue::RegDword(1))),
            "denied-by-policy",
        ),
        (
            "rdp-enabled",
            Box::new(|h| {
                h.set_value(
                    keys::TERMINAL_SERVER,
                    "fDenyTSConnections",
                    RegValue::RegDword(1),
                )
            }),
            "denied-locally",
        ),
        (
            "rdp-services",
            Box::new(|h| h.service_stop("UmRdpService").unwrap()),
            "stopped",
        ),
        (
            "rdp-listener",
            Box::new(|h| h.service_stop("TermService").unwrap()),
            "not-listening",
        ),
        (
            "rdp-listener",
            Box::new(|h| {
                h.set_value(keys::RDP_TCP, "PortNumber", RegValue::RegDword(3390));
                h.service_stop("TermService").unwrap();
                h.service_start("TermService").unwrap();
            }),
            "other-port",
        ),
        (
            "session-limits",
            Box::new(|h| {
                h.set_value(
                    keys::TERMINAL_SERVER,
                    "TSServerDrainMode",
                    RegValue::RegDword(1),
                )
            }),
            "refusing",
        ),
        (
            "rdp-certificate",
            Box::new(|h| {
                h.with(|s| {
                    s.stores.insert(
                        CertStore::RemoteDesktop,
                        vec![self_signed(
                            "PC-0423",
                            "33",
                            "2001-01-01T00:00:00Z",
                            "2002-01-01T00:00:00Z",
                        )],
                    );
                })
            }),
            "expired-or-unreadable",
        ),
        (
            "cert-binding",
            Box::new(|h| {
                h.set_value(
                    keys::RDP_TCP,
                    "SSLCertificateSHA1Hash",
                    RegValue::RegBinary(HexBytes(vec![0xAA; 20])),
                )
            }),
            "bound-missing",
        ),
        (
            "machinekeys-acl",
            Box::new(|h| {
                h.with(|s| {
                    s.acls.insert(
                        "MachineKeys".into(),
                        fixture("ps_machinekeys_sddl_broken.txt").trim().to_owned(),
                    );
                })
            }),
            "broken",
        ),
        (
            "schannel-tls12",
            Box::new(|h| h.set_value(keys::TLS12_SERVER, "Enabled", RegValue::RegDword(0))),
            "disabled",
        ),
        (
            "security-layer",
            Box::new(|h| h.set_value(keys::RDP_TCP, "SecurityLayer", RegValue::RegDword(0))),
            "rdp-only",
        ),
        (
            "security-layer",
            Box::new(|h| h.set_value(keys::FIPS_POLICY, "Enabled", RegValue::RegDword(1))),
            "fips-enforced",
        ),
        (
            "firewall-rule",
            Box::new(|h| {
                h.firewall_set_enabled("RemoteDesktop-UserMode-In-TCP", false)
                    .unwrap()
            }),
            "disabled",
        ),
        (
            "firewall-rule",
            Box::new(|h| h.with(|s| s.active_profiles = vec!["Public".into()])),
            "enabled",
        ),
        (
            "secure-channel",
            Box::new(|h| {
                h.with(|s| {
                    s.programs.insert(
                        format!("{:?}", FixedProgram::SecureChannel),
                        ProgramOutput::ok(&fixture("ps_secure_channel_broken.json")),
                    );
                })
            }),
            "broken",
        ),
        (
            "host-event-log",
            Box::new(|h| {
                h.with(|s| {
                    s.events = parse_wevtutil_xml(&fixture("wevtutil_schannel.xml"));
                })
            }),
            "tls-errors",
        ),
    ];
    for (id, breaks, outcome) in cases {
        let host = FakeHost::healthy_windows();
        breaks(&host);
        let spec = HostCheckSpec::from_params(id, Some(1000), &Default::default()).unwrap();
        let report = check(&host, spec);
        let summary = report.summary();
        assert_eq!(summary.error, None, "{id}");
        assert_eq!(
            summary.outcome.as_deref(),
            Some(outcome),
            "{id}: {:?}",
            summary.findings
        );
    }
}

#[test]
fn the_machinekeys_check_names_the_missing_default_grants() {
    let host = FakeHost::healthy_windows();
    host.with(|s| {
        s.acls.insert(
            "MachineKeys".into(),
            fixture("ps_machinekeys_sddl_broken.txt").trim().to_owned(),
        );
    });
    let HostCheckReport::MachinekeysAcl(report) =
        check(&host, HostCheckSpec::MachinekeysAcl { timeout_ms: 1 })
    else {
        panic!()
    };
    let observed = report.observed.unwrap();
    // Everyone has read only (0x120089), Administrators nothing, NETWORK SERVICE is denied.
    assert_eq!(observed.missing, ["(A;;0x12019f;;;WD)", "(A;;FA;;;BA)"]);
    assert_eq!(observed.denies.len(), 1);
    assert_eq!(observed.denies[0].trustee, "NS");
}

#[test]
fn windows_checks_on_this_linux_host_say_they_do_not_apply() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for spec in [
        HostCheckSpec::RdpEnabled { timeout_ms: 2000 },
        HostCheckSpec::VpnTunnelEvents {
            timeout_ms: 2000,
            since_minutes: 60,
        },
    ] {
        let report = rt.block_on(agent_client::host::checks::run(&spec));
        let summary = report.summary();
        assert_eq!(summary.outcome, None, "{}", spec.id());
        assert_eq!(
            summary.error.unwrap().kind,
            HostErrorKind::Unsupported,
            "{}",
            spec.id()
        );
    }
}

// ---------------------------------------------------------------------------------------
// vpn-tunnel-events (the employee's PC)

#[test]
fn adapters_read_as_a_list_a_single_object_or_nothing() {
    let adapters = parse_adapters_json(&fixture("ps_adapters_up.json")).unwrap();
    assert_eq!(adapters.len(), 3);
    assert_eq!(adapters[1].name, "Ethernet 3");
    assert_eq!(
        adapters[1].description,
        "PANGP Virtual Ethernet Adapter Secure"
    );
    let single = parse_adapters_json(&fixture("ps_adapters_up_single.json")).unwrap();
    assert_eq!(single.len(), 1);
    assert_eq!(parse_adapters_json("\u{feff}\r\n").unwrap(), []);
    assert!(parse_adapters_json("Get-NetAdapter : access denied").is_err());
}

#[test]
fn vpn_adapters_are_told_apart_from_other_virtual_ones() {
    use agent_client::host::checks::is_vpn_adapter;
    for vpn in [
        "PANGP Virtual Ethernet Adapter Secure",
        "Cisco AnyConnect Secure Mobility Client Virtual Miniport Adapter for Windows x64",
        "Fortinet SSL VPN Virtual Ethernet Adapter",
        "WAN Miniport (IKEv2)",
        "WireGuard Tunnel",
        "TAP-Windows Adapter V9",
    ] {
        assert!(is_vpn_adapter(vpn), "{vpn}");
    }
    for other in [
        "Hyper-V Virtual Ethernet Adapter",
        "Intel(R) Wi-Fi 6 AX201 160MHz",
        "Realtek USB GbE Family Controller",
    ] {
        assert!(!is_vpn_adapter(other), "{other}");
    }
}

/// The fake host with these adapters up (the script's JSON) and these event-log records.
fn employee_pc(adapters: &str, events: &str) -> FakeHost {
    let host = FakeHost::new();
    host.with(|s| {
        s.programs.insert(
            format!("{:?}", FixedProgram::AdaptersUp),
            ProgramOutput::ok(adapters),
        );
        s.events = parse_wevtutil_xml(events);
    });
    host
}

fn vpn_outcome(host: &FakeHost) -> (Option<VpnOutcome>, HostReport<VpnObserved, VpnOutcome>) {
    let spec =
        HostCheckSpec::from_params("vpn-tunnel-events", Some(1000), &Default::default()).unwrap();
    let HostCheckReport::VpnTunnelEvents(report) = check(host, spec) else {
        panic!("not a vpn-tunnel-events report")
    };
    (report.outcome, report)
}

#[test]
fn a_vpn_adapter_that_went_down_in_the_window_is_a_drop() {
    let drops = fixture("wevtutil_networkprofile_10001.xml");
    let (outcome, report) = vpn_outcome(&employee_pc(&fixture("ps_adapters_up.json"), &drops));
    assert_eq!(outcome, Some(VpnOutcome::Drops), "{:?}", report.findings);
    let observed = report.observed.unwrap();
    // Two disconnects of the VPN's adapter; the Wi-Fi network that went away is not a drop.
    assert_eq!(observed.drops.len(), 1);
    assert_eq!(observed.drops[0].id, 10001);
    assert_eq!(observed.drops[0].count, 2);
    assert_eq!(observed.drops[0].last_at, "2026-11-20T09:41:07Z");
    assert_eq!(observed.vpn_adapters.len(), 1, "Hyper-V's switch is no VPN");
    assert_eq!(observed.since_minutes, 60);
}

#[test]
fn a_vpn_up_without_drops_is_stable_and_no_vpn_adapter_is_no_vpn() {
    let wifi_only = fixture("wevtutil_networkprofile_10001.xml")
        .lines()
        .filter(|line| line.contains("Wi-Fi"))
        .collect::<Vec<_>>()
        .join("\n");
    let (stable, _) = vpn_outcome(&employee_pc(&fixture("ps_adapters_up.json"), &wifi_only));
    assert_eq!(stable, Some(VpnOutcome::Stable));
    let (no_vpn, report) = vpn_outcome(&employee_pc(
        &fixture("ps_adapters_up_single.json"),
        &wifi_only,
    ));
    assert_eq!(no_vpn, Some(VpnOutcome::NoVpn));
    assert_eq!(
        HostCheckReport::VpnTunnelEvents(report)
            .summary()
            .outcome
            .as_deref(),
        Some("no-vpn"),
        "the model's outcome id"
    );
    // The built-in client's failed dial counts as a drop.
    let host = employee_pc(&fixture("ps_adapters_up_single.json"), "");
    host.with(|s| {
        s.events.push(agent_client::host::platform::EventRecord {
            provider: "RasClient".to_owned(),
            id: 20227,
            time: "2026-11-20T09:30:00Z".to_owned(),
            level: Some(2),
            message: Some("CoId={...}: The user dialed a connection named Corp VPN which has failed. The error code returned on failure is 809.".to_owned()),
        });
    });
    assert_eq!(vpn_outcome(&host).0, Some(VpnOutcome::Drops));
}

#[test]
fn nothing_readable_is_an_error_not_an_outcome() {
    let host = employee_pc(&fixture("ps_adapters_up.json"), "");
    host.with(|s| {
        s.failing.insert("events".to_owned());
        s.failing.insert(format!("{:?}", FixedProgram::AdaptersUp));
    });
    let (outcome, report) = vpn_outcome(&host);
    assert_eq!(outcome, None);
    // The reason keeps its kind (the fake refuses access).
    assert_eq!(
        report.error.map(|e| e.kind),
        Some(HostErrorKind::AccessDenied)
    );
    // One source unreadable: an outcome from the rest, with low confidence and a finding.
    host.with(|s| {
        s.failing.remove("events");
    });
    let (outcome, report) = vpn_outcome(&host);
    assert_eq!(outcome, Some(VpnOutcome::NoVpn));
    assert_eq!(report.confidence, Confidence::Low);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.starts_with("Could not read the network adapters")),
        "{:?}",
        report.findings
    );
    // A bad window is refused by name.
    let params = [("since_minutes".to_owned(), "0".to_owned())].into();
    assert_eq!(
        HostCheckSpec::from_params("vpn-tunnel-events", None, &params).unwrap_err(),
        "since_minutes takes a number of minutes from 1 to 10080"
    );
}
