//! The Windows platform: the registry through `reg.exe`, services through `sc.exe`, events
//! through `wevtutil.exe`, time and DNS through `w32tm.exe` and `ipconfig.exe`, and what
//! has no locale-independent command-line tool (firewall rule switches, certificate stores,
//! ACLs in SDDL, listening sockets) through `powershell.exe -NoProfile -NonInteractive
//! -Command` with one FIXED script per operation. Values reach a script only as environment
//! variables (`$env:RDPD_*`), never as part of its text.
//!
//! [`WindowsPlatform`] is generic over the [`CommandRunner`], so the whole implementation
//! (command lines and output parsing) compiles and is tested on Linux against recorded
//! outputs; only [`super::platform::native`] picks it, on Windows, with the real runner.
//! The parsers are pure functions.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::exec::{CommandLine, CommandRunner, ProgramOutput};
use super::platform::{
    AclTarget, EventQuery, EventRecord, FixedProgram, HostPlatform, PResult, PlatformError,
};
use super::report::{
    AceSummary, CertStore, FirewallRule, NetworkAdapter, RegValue, RuleStore, ServiceState,
    ServiceStatus, StartType, StoreCertificate, TcpListenerInfo, Thumbprint,
};

/// The PowerShell scripts, one per operation. They contain no double quotes and no line
/// breaks (so the command line reaches PowerShell unchanged), and read their inputs from
/// `RDPD_*` environment variables.
pub mod scripts {
    const PRELUDE: &str =
        "$ErrorActionPreference = 'Stop'; [Console]::OutputEncoding = [Text.Encoding]::UTF8; ";

    pub fn enable_rule() -> String {
        format!("{PRELUDE}Enable-NetFirewallRule -Name $env:RDPD_RULE")
    }

    pub fn disable_rule() -> String {
        format!("{PRELUDE}Disable-NetFirewallRule -Name $env:RDPD_RULE")
    }

    pub fn active_profiles() -> String {
        format!(
            "{PRELUDE}ConvertTo-Json -Compress -InputObject @(Get-NetConnectionProfile | ForEach-Object {{ [string]$_.NetworkCategory }})"
        )
    }

    pub fn cert_store() -> String {
        format!(
            "{PRELUDE}$inv = [Globalization.CultureInfo]::InvariantCulture; \
             $fmt = 'yyyy-MM-dd''T''HH:mm:ss''Z'''; \
             $path = 'Cert:\\LocalMachine\\' + $env:RDPD_STORE; \
             if (-not (Test-Path -LiteralPath $path)) {{ '[]'; exit 0 }}; \
             $out = @(Get-ChildItem -LiteralPath $path | ForEach-Object {{ \
               $readable = $null; \
               if ($_.HasPrivateKey) {{ \
                 try {{ $k = [Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($_); \
                        if ($null -eq $k) {{ $k = [Security.Cryptography.X509Certificates.ECDsaCertificateExtensions]::GetECDsaPrivateKey($_) }}; \
                        $readable = ($null -ne $k) }} catch {{ $readable = $false }} }}; \
               [pscustomobject]@{{ Thumbprint = $_.Thumbprint; Subject = $_.Subject; Issuer = $_.Issuer; \
                 NotBefore = $_.NotBefore.ToUniversalTime().ToString($fmt, $inv); \
                 NotAfter = $_.NotAfter.ToUniversalTime().ToString($fmt, $inv); \
                 HasPrivateKey = $_.HasPrivateKey; PrivateKeyReadable = $readable }} }}); \
             ConvertTo-Json -Compress -Depth 3 -InputObject $out"
        )
    }

    pub fn cert_move() -> String {
        format!(
            "{PRELUDE}$dest = 'Cert:\\LocalMachine\\' + $env:RDPD_TO; \
             if (-not (Test-Path -LiteralPath $dest)) {{ New-Item -Path $dest | Out-Null }}; \
             Move-Item -LiteralPath ('Cert:\\LocalMachine\\' + $env:RDPD_FROM + '\\' + $env:RDPD_THUMB) -Destination $dest"
        )
    }

    pub fn get_sddl() -> String {
        format!(
            "{PRELUDE}$path = Join-Path $env:ProgramData $env:RDPD_RELATIVE; (Get-Acl -LiteralPath $path).Sddl"
        )
    }

    pub fn set_sddl() -> String {
        format!(
            "{PRELUDE}$path = Join-Path $env:ProgramData $env:RDPD_RELATIVE; \
             $acl = Get-Acl -LiteralPath $path; \
             $acl.SetSecurityDescriptorSddlForm($env:RDPD_SDDL, [Security.AccessControl.AccessControlSections]::Access); \
             Set-Acl -LiteralPath $path -AclObject $acl"
        )
    }

    pub fn tcp_listeners() -> String {
        format!(
            "{PRELUDE}$out = @(Get-NetTCPConnection -State Listen | ForEach-Object {{ \
               $p = Get-Process -Id $_.OwningProcess -ErrorAction SilentlyContinue; \
               [pscustomobject]@{{ Address = [string]$_.LocalAddress; Port = [int]$_.LocalPort; \
                 Pid = [int]$_.OwningProcess; Process = $(if ($p) {{ $p.ProcessName }} else {{ $null }}) }} }}); \
             ConvertTo-Json -Compress -InputObject $out"
        )
    }

    pub fn secure_channel() -> String {
        format!(
            "{PRELUDE}$cs = Get-CimInstance -ClassName Win32_ComputerSystem; \
             $r = [ordered]@{{ PartOfDomain = [bool]$cs.PartOfDomain; Domain = [string]$cs.Domain; SecureChannel = $null; Error = $null }}; \
             if ($cs.PartOfDomain) {{ try {{ $r.SecureChannel = [bool](Test-ComputerSecureChannel -ErrorAction Stop) }} \
               catch {{ $r.SecureChannel = $false; $r.Error = $_.Exception.Message }} }}; \
             ConvertTo-Json -Compress -InputObject ([pscustomobject]$r)"
        )
    }

    pub fn adapters_up() -> String {
        format!(
            "{PRELUDE}$out = @(Get-NetAdapter | Where-Object {{ $_.Status -eq 'Up' }} | ForEach-Object {{ \
               [pscustomobject]@{{ Name = [string]$_.Name; Description = [string]$_.InterfaceDescription }} }}); \
             ConvertTo-Json -Compress -InputObject $out"
        )
    }

    pub fn tspkg_version() -> String {
        format!(
            "{PRELUDE}(Get-Item -LiteralPath (Join-Path $env:SystemRoot 'System32\\tspkg.dll')).VersionInfo.FileVersion"
        )
    }
}

/// `reg.exe`, `sc.exe`, `wevtutil.exe`, ... with the real runner, or a recording in tests.
#[derive(Debug)]
pub struct WindowsPlatform<R> {
    runner: R,
    step_timeout: Duration,
    temp_dir: PathBuf,
    settle: Duration,
}

impl<R: CommandRunner> WindowsPlatform<R> {
    /// `step_timeout` bounds each program; a service start or stop waits up to 30 s.
    pub fn new(runner: R, step_timeout: Duration) -> Self {
        WindowsPlatform {
            runner,
            step_timeout,
            temp_dir: std::env::temp_dir(),
            settle: Duration::from_secs(30),
        }
    }

    /// Where `reg export`/`reg import` files are written for a moment.
    pub fn with_temp_dir(mut self, dir: PathBuf) -> Self {
        self.temp_dir = dir;
        self
    }

    /// The runner, e.g. for a test to read the command lines it was given.
    pub fn runner(&self) -> &R {
        &self.runner
    }

    /// How long service starts and stops may take (tests make it short).
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    fn exec(&self, command: CommandLine) -> PResult<ProgramOutput> {
        Ok(self.runner.run(&command, self.step_timeout)?)
    }

    fn exec_ok(&self, command: CommandLine) -> PResult<ProgramOutput> {
        let shown = command.display();
        let out = self.exec(command)?;
        if out.success() {
            Ok(out)
        } else {
            Err(program_error(&shown, &out))
        }
    }

    fn powershell(&self, script: String, env: &[(&str, &str)]) -> PResult<ProgramOutput> {
        let mut command = powershell(&script);
        for (name, value) in env {
            command = command.env(name, *value);
        }
        self.exec_ok(command)
    }

    fn temp_file(&self, label: &str) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        self.temp_dir.join(format!(
            "rdpd-{label}-{}-{nanos}-{n}.reg",
            std::process::id()
        ))
    }

    fn wait_for_service(&self, name: &str, wanted: ServiceState) -> PResult<()> {
        let started = Instant::now();
        loop {
            let status = self.service(name)?;
            if status.state == wanted {
                return Ok(());
            }
            if started.elapsed() >= self.settle {
                return Err(PlatformError::TimedOut(format!(
                    "{name} is {:?}, not {wanted:?}, after {:?}",
                    status.state, self.settle
                )));
            }
            std::thread::sleep(Duration::from_millis(250).min(self.settle));
        }
    }
}

/// `powershell.exe -NoProfile -NonInteractive -Command SCRIPT`.
pub fn powershell(script: &str) -> CommandLine {
    CommandLine::new(
        "powershell.exe",
        &["-NoProfile", "-NonInteractive", "-Command"],
    )
    .arg(script)
}

fn program_error(shown: &str, out: &ProgramOutput) -> PlatformError {
    let said = format!("{} {}", out.stdout.trim(), out.stderr.trim());
    let said = said.trim();
    let message = format!(
        "{shown} failed (exit {}): {}",
        out.code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "signal".into()),
        said.chars().take(400).collect::<String>()
    );
    // `reg.exe` and `sc.exe` say "Access is denied" (error 5) in English on English
    // systems; the exit code 5 is the same everywhere.
    if out.code == Some(5) || said.contains("Access is denied") {
        PlatformError::AccessDenied(message)
    } else {
        PlatformError::Failed(message)
    }
}

/// The fixed command line of each [`FixedProgram`] on Windows.
pub fn fixed_program_command(program: &FixedProgram) -> Option<CommandLine> {
    Some(match program {
        FixedProgram::FlushDns => CommandLine::new("ipconfig.exe", &["/flushdns"]),
        FixedProgram::ResyncClock => CommandLine::new("w32tm.exe", &["/resync"]),
        FixedProgram::SecureChannel => powershell(&scripts::secure_channel()),
        FixedProgram::TspkgVersion => powershell(&scripts::tspkg_version()),
        FixedProgram::AdaptersUp => powershell(&scripts::adapters_up()),
        FixedProgram::NftRuleset | FixedProgram::XrdpStart { .. } => return None,
    })
}

/// The `wevtutil qe` command for a query: an XPath built from numbers and constants only.
pub fn wevtutil_command(query: &EventQuery) -> CommandLine {
    let ids = query
        .ids
        .iter()
        .map(|id| format!("EventID={id}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let window_ms = u64::from(query.since_minutes) * 60_000;
    let xpath = format!(
        "*[System[Provider[@Name='{}'] and ({ids}) and TimeCreated[timediff(@SystemTime) <= {window_ms}]]]",
        query.provider
    );
    CommandLine::new("wevtutil.exe", &["qe", query.channel])
        .arg(format!("/q:{xpath}"))
        .arg("/f:RenderedXml")
        .arg(format!("/c:{}", query.max_events))
        .arg("/rd:true")
}

impl<R: CommandRunner> HostPlatform for WindowsPlatform<R> {
    fn reg_get(&self, key: &str, name: &str) -> PResult<Option<RegValue>> {
        let out = self.exec(CommandLine::new("reg.exe", &["query", key, "/v", name]))?;
        match out.code {
            Some(0) => Ok(parse_reg_query(&out.stdout)
                .into_iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)),
            // reg.exe answers 1 both for "not found" and for other failures; access denied
            // is recognised by its text, anything else counts as absent.
            Some(1) if !reg_denied(&out) => Ok(None),
            _ => Err(program_error(&format!("reg query {key} /v {name}"), &out)),
        }
    }

    fn reg_values(&self, key: &str) -> PResult<Vec<(String, RegValue)>> {
        let out = self.exec(CommandLine::new("reg.exe", &["query", key]))?;
        match out.code {
            Some(0) => Ok(parse_reg_query(&out.stdout)),
            Some(1) if !reg_denied(&out) => Ok(Vec::new()),
            _ => Err(program_error(&format!("reg query {key}"), &out)),
        }
    }

    fn reg_set(&self, key: &str, name: &str, value: &RegValue) -> PResult<()> {
        let (kind, data) = reg_add_data(value);
        self.exec_ok(
            CommandLine::new("reg.exe", &["add", key, "/v", name, "/t", kind, "/d"])
                .arg(data)
                .arg("/f"),
        )?;
        Ok(())
    }

    fn reg_delete(&self, key: &str, name: &str) -> PResult<()> {
        if self.reg_get(key, name)?.is_none() {
            return Ok(());
        }
        self.exec_ok(CommandLine::new(
            "reg.exe",
            &["delete", key, "/v", name, "/f"],
        ))?;
        Ok(())
    }

    fn reg_export(&self, key: &str) -> PResult<Option<Vec<u8>>> {
        let file = self.temp_file("export");
        let path = file.display().to_string();
        let out = self.exec(CommandLine::new("reg.exe", &["export", key, &path, "/y"]))?;
        if !out.success() {
            let _ = std::fs::remove_file(&file);
            if out.code == Some(1) && !reg_denied(&out) {
                return Ok(None);
            }
            return Err(program_error(&format!("reg export {key}"), &out));
        }
        let bytes = std::fs::read(&file)
            .map_err(|e| PlatformError::Failed(format!("cannot read {path}: {e}")));
        let _ = std::fs::remove_file(&file);
        bytes.map(Some)
    }

    fn reg_import(&self, export: &[u8]) -> PResult<()> {
        let file = self.temp_file("import");
        std::fs::write(&file, export)
            .map_err(|e| PlatformError::Failed(format!("cannot write {}: {e}", file.display())))?;
        let result = self.exec_ok(CommandLine::new(
            "reg.exe",
            &["import", &file.display().to_string()],
        ));
        let _ = std::fs::remove_file(&file);
        result.map(|_| ())
    }

    fn reg_delete_key(&self, key: &str) -> PResult<()> {
        let out = self.exec(CommandLine::new("reg.exe", &["delete", key, "/f"]))?;
        match out.code {
            Some(0) => Ok(()),
            Some(1) if !reg_denied(&out) => Ok(()),
            _ => Err(program_error(&format!("reg delete {key}"), &out)),
        }
    }

    fn service(&self, name: &str) -> PResult<ServiceStatus> {
        let out = self.exec(CommandLine::new("sc.exe", &["queryex", name]))?;
        if out.code == Some(1060) {
            return Ok(ServiceStatus {
                name: name.to_owned(),
                state: ServiceState::NotInstalled,
                start_type: None,
                pid: None,
            });
        }
        if !out.success() {
            return Err(program_error(&format!("sc queryex {name}"), &out));
        }
        let (state, pid) = parse_sc_queryex(&out.stdout).ok_or_else(|| {
            PlatformError::Failed(format!("sc queryex {name}: unexpected output"))
        })?;
        let qc = self.exec_ok(CommandLine::new("sc.exe", &["qc", name]))?;
        Ok(ServiceStatus {
            name: name.to_owned(),
            state,
            start_type: parse_sc_qc(&qc.stdout),
            pid,
        })
    }

    fn service_start(&self, name: &str) -> PResult<()> {
        let out = self.exec(CommandLine::new("sc.exe", &["start", name]))?;
        // 1056: an instance of the service is already running.
        if !out.success() && out.code != Some(1056) {
            return Err(program_error(&format!("sc start {name}"), &out));
        }
        self.wait_for_service(name, ServiceState::Running)
    }

    fn service_stop(&self, name: &str) -> PResult<()> {
        let out = self.exec(CommandLine::new("sc.exe", &["stop", name]))?;
        // 1062: the service has not been started.
        if !out.success() && out.code != Some(1062) {
            return Err(program_error(&format!("sc stop {name}"), &out));
        }
        self.wait_for_service(name, ServiceState::Stopped)
    }

    fn firewall_set_enabled(&self, rule: &str, enabled: bool) -> PResult<()> {
        let script = if enabled {
            scripts::enable_rule()
        } else {
            scripts::disable_rule()
        };
        self.powershell(script, &[("RDPD_RULE", rule)])?;
        Ok(())
    }

    fn active_firewall_profiles(&self) -> PResult<Vec<String>> {
        let out = self.powershell(scripts::active_profiles(), &[])?;
        let categories: Vec<String> = parse_json_list(&out.stdout)
            .map_err(|e| PlatformError::Failed(format!("network profiles: {e}")))?;
        Ok(categories
            .into_iter()
            .map(|c| match c.as_str() {
                "DomainAuthenticated" => "Domain".to_owned(),
                _ => c,
            })
            .collect())
    }

    fn cert_store(&self, store: CertStore) -> PResult<Vec<StoreCertificate>> {
        let out = self.powershell(scripts::cert_store(), &[("RDPD_STORE", store.name())])?;
        parse_cert_json(&out.stdout)
            .map_err(|e| PlatformError::Failed(format!("certificate store {}: {e}", store.name())))
    }

    fn cert_move(&self, thumbprint: &Thumbprint, from: CertStore, to: CertStore) -> PResult<()> {
        self.powershell(
            scripts::cert_move(),
            &[
                ("RDPD_FROM", from.name()),
                ("RDPD_TO", to.name()),
                ("RDPD_THUMB", thumbprint.as_str()),
            ],
        )?;
        Ok(())
    }

    fn acl_sddl(&self, target: AclTarget) -> PResult<String> {
        let out = self.powershell(
            scripts::get_sddl(),
            &[("RDPD_RELATIVE", acl_relative(target))],
        )?;
        let sddl = out.stdout.trim().to_owned();
        if sddl.is_empty() {
            return Err(PlatformError::Failed(format!(
                "no security descriptor for {}",
                target.display()
            )));
        }
        Ok(sddl)
    }

    fn set_acl_sddl(&self, target: AclTarget, sddl: &str) -> PResult<()> {
        self.powershell(
            scripts::set_sddl(),
            &[("RDPD_RELATIVE", acl_relative(target)), ("RDPD_SDDL", sddl)],
        )?;
        Ok(())
    }

    fn events(&self, query: &EventQuery) -> PResult<Vec<EventRecord>> {
        let out = self.exec(wevtutil_command(query))?;
        match out.code {
            Some(0) => Ok(parse_wevtutil_xml(&out.stdout)),
            // 15007: the channel does not exist on this edition (e.g. no RdpCoreTS log).
            Some(15007) => Ok(Vec::new()),
            _ => Err(program_error(
                &format!("wevtutil qe {}", query.channel),
                &out,
            )),
        }
    }

    fn tcp_listeners(&self) -> PResult<Vec<TcpListenerInfo>> {
        let out = self.powershell(scripts::tcp_listeners(), &[])?;
        parse_listeners_json(&out.stdout)
            .map_err(|e| PlatformError::Failed(format!("listening sockets: {e}")))
    }

    fn run(&self, program: &FixedProgram) -> PResult<ProgramOutput> {
        let command = fixed_program_command(program)
            .ok_or_else(|| PlatformError::unsupported(&format!("{program:?}")))?;
        self.exec(command)
    }

    fn settle_timeout(&self) -> Duration {
        self.settle
    }
}

fn acl_relative(target: AclTarget) -> &'static str {
    match target {
        AclTarget::MachineKeys => r"Microsoft\Crypto\RSA\MachineKeys",
    }
}

fn reg_denied(out: &ProgramOutput) -> bool {
    out.stderr.contains("Access is denied") || out.stdout.contains("Access is denied")
}

/// The `/t` and `/d` arguments of `reg add` for a value.
pub fn reg_add_data(value: &RegValue) -> (&'static str, String) {
    match value {
        RegValue::RegDword(v) => ("REG_DWORD", v.to_string()),
        RegValue::RegQword(v) => ("REG_QWORD", v.to_string()),
        RegValue::RegSz(s) => ("REG_SZ", s.clone()),
        RegValue::RegExpandSz(s) => ("REG_EXPAND_SZ", s.clone()),
        RegValue::RegMultiSz(items) => ("REG_MULTI_SZ", items.join("\\0")),
        RegValue::RegBinary(bytes) => ("REG_BINARY", bytes.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// Parsers (pure; tested against recorded outputs)

/// The values of the first key in `reg query` output (values of subkeys, which only appear
/// with `/s`, are not included). Value types it does not know are skipped.
pub fn parse_reg_query(stdout: &str) -> Vec<(String, RegValue)> {
    let mut values = Vec::new();
    let mut headers = 0;
    for line in stdout.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            headers += 1;
            if headers > 1 {
                break;
            }
            continue;
        }
        if let Some(parsed) = parse_reg_line(line.trim_start()) {
            values.push(parsed);
        }
    }
    values
}

fn parse_reg_line(line: &str) -> Option<(String, RegValue)> {
    let type_at = line.find("    REG_")?;
    let name = line[..type_at].to_owned();
    let rest = &line[type_at + 4..];
    let (kind, data) = match rest.find("    ") {
        Some(i) => (&rest[..i], &rest[i + 4..]),
        None => (rest.trim_end(), ""),
    };
    let number = |d: &str| {
        let d = d.trim();
        d.strip_prefix("0x")
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .or_else(|| d.parse().ok())
    };
    let value = match kind {
        "REG_DWORD" => RegValue::RegDword(u32::try_from(number(data)?).ok()?),
        "REG_QWORD" => RegValue::RegQword(number(data)?),
        "REG_SZ" => RegValue::RegSz(data.to_owned()),
        "REG_EXPAND_SZ" => RegValue::RegExpandSz(data.to_owned()),
        "REG_MULTI_SZ" => RegValue::RegMultiSz(if data.is_empty() {
            Vec::new()
        } else {
            data.split("\\0").map(str::to_owned).collect()
        }),
        "REG_BINARY" => RegValue::RegBinary(super::report::HexBytes(super::report::parse_hex(
            data.trim(),
        )?)),
        _ => return None,
    };
    Some((name, value))
}

/// One firewall rule from its registry value (`v2.33|Action=Allow|Active=TRUE|Dir=In|...`).
pub fn parse_firewall_rule(name: &str, store: RuleStore, data: &str) -> Option<FirewallRule> {
    let mut fields = data.split('|');
    let version = fields.next()?;
    if !version.starts_with('v') {
        return None;
    }
    let mut rule = FirewallRule {
        name: name.to_owned(),
        store,
        enabled: false,
        action: String::new(),
        direction: String::new(),
        protocol: None,
        local_ports: Vec::new(),
        profiles: Vec::new(),
        program: None,
        service: None,
        group: None,
    };
    for field in fields {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        match key {
            "Action" => rule.action = value.to_owned(),
            "Active" => rule.enabled = value.eq_ignore_ascii_case("TRUE"),
            "Dir" => rule.direction = value.to_owned(),
            "Protocol" => rule.protocol = value.parse().ok(),
            "LPort" => rule.local_ports.push(value.to_owned()),
            "Profile" => rule.profiles.push(value.to_owned()),
            "EmbedCtxt" => rule.group = Some(value.to_owned()),
            "App" => rule.program = Some(value.to_owned()),
            "Svc" => rule.service = Some(value.to_owned()),
            _ => {}
        }
    }
    Some(rule)
}

/// Sets `Active=` in a firewall rule's registry string (how the fake enables a rule).
pub fn set_rule_active(data: &str, enabled: bool) -> String {
    let wanted = if enabled {
        "Active=TRUE"
    } else {
        "Active=FALSE"
    };
    data.split('|')
        .map(|field| {
            if field.starts_with("Active=") {
                wanted
            } else {
                field
            }
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// `STATE` and `PID` from `sc queryex` output.
pub fn parse_sc_queryex(stdout: &str) -> Option<(ServiceState, Option<u32>)> {
    let mut state = None;
    let mut pid = None;
    for line in stdout.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let first_number = value.split_whitespace().next().and_then(|n| n.parse().ok());
        match key.trim() {
            "STATE" => {
                state = match first_number? {
                    1 => Some(ServiceState::Stopped),
                    2 => Some(ServiceState::StartPending),
                    3 => Some(ServiceState::StopPending),
                    4 => Some(ServiceState::Running),
                    5 => Some(ServiceState::ContinuePending),
                    6 => Some(ServiceState::PausePending),
                    7 => Some(ServiceState::Paused),
                    _ => None,
                }
            }
            "PID" => pid = first_number.filter(|p| *p != 0),
            _ => {}
        }
    }
    Some((state?, pid))
}

/// `START_TYPE` from `sc qc` output.
pub fn parse_sc_qc(stdout: &str) -> Option<StartType> {
    stdout.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        if key.trim() != "START_TYPE" {
            return None;
        }
        match value.split_whitespace().next()?.parse::<u32>().ok()? {
            0 => Some(StartType::Boot),
            1 => Some(StartType::System),
            2 => Some(StartType::Auto),
            3 => Some(StartType::Demand),
            4 => Some(StartType::Disabled),
            _ => None,
        }
    })
}

/// Events from `wevtutil qe ... /f:RenderedXml` (or `/f:xml`) output: one `<Event>`
/// element after another, without a root element.
pub fn parse_wevtutil_xml(stdout: &str) -> Vec<EventRecord> {
    let mut events = Vec::new();
    for chunk in stdout.split("<Event ").skip(1) {
        let end = chunk.find("</Event>").unwrap_or(chunk.len());
        let event = &chunk[..end];
        let provider = element_start(event, "Provider")
            .and_then(|tag| attribute(tag, "Name"))
            .unwrap_or_default();
        let Some(id) = element_text(event, "EventID").and_then(|t| t.trim().parse().ok()) else {
            continue;
        };
        let time = element_start(event, "TimeCreated")
            .and_then(|tag| attribute(tag, "SystemTime"))
            .map(|t| normalise_time(&t))
            .unwrap_or_default();
        let system = element_text(event, "System").unwrap_or_default();
        let level = element_text(&system, "Level").and_then(|l| l.trim().parse().ok());
        let message = element_text(event, "Message").map(|m| unescape_xml(m.trim()));
        events.push(EventRecord {
            provider,
            id,
            time,
            level,
            message,
        });
    }
    events
}

/// `2024-05-02T08:15:30.1234567Z` to `2024-05-02T08:15:30Z`.
fn normalise_time(raw: &str) -> String {
    match raw.find('.') {
        Some(dot) if raw.ends_with('Z') => format!("{}Z", &raw[..dot]),
        _ => raw.to_owned(),
    }
}

/// The text of the start tag `<name ...>` or `<name .../>`.
fn element_start<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}");
    let mut from = 0;
    while let Some(i) = xml[from..].find(&open) {
        let start = from + i;
        let after = xml[start + open.len()..].chars().next()?;
        if after == ' ' || after == '>' || after == '/' {
            let end = xml[start..].find('>')? + start;
            return Some(&xml[start..=end]);
        }
        from = start + open.len();
    }
    None
}

/// The text between `<name ...>` and `</name>`.
fn element_text(xml: &str, name: &str) -> Option<String> {
    let tag = element_start(xml, name)?;
    if tag.ends_with("/>") {
        return Some(String::new());
    }
    let start = xml.find(tag)? + tag.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].to_owned())
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    for quote in ['\'', '"'] {
        let key = format!(" {name}={quote}");
        if let Some(i) = tag.find(&key) {
            let rest = &tag[i + key.len()..];
            let end = rest.find(quote)?;
            return Some(unescape_xml(&rest[..end]));
        }
    }
    None
}

fn unescape_xml(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#xD;", "")
        .replace("&#xA;", "\n")
        .replace("&amp;", "&")
}

/// PowerShell's `ConvertTo-Json` of a list: an array, or (PowerShell 5.1 with one item
/// piped) the item itself, or nothing at all for an empty list.
pub fn parse_json_list<T: serde::de::DeserializeOwned>(stdout: &str) -> Result<Vec<T>, String> {
    let text = stdout.trim().trim_start_matches('\u{feff}');
    if text.is_empty() || text == "null" {
        return Ok(Vec::new());
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| serde_json::from_value(item).map_err(|e| e.to_string()))
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CertJson {
    thumbprint: String,
    subject: String,
    issuer: String,
    not_before: String,
    not_after: String,
    has_private_key: bool,
    private_key_readable: Option<bool>,
}

/// The certificate store script's output.
pub fn parse_cert_json(stdout: &str) -> Result<Vec<StoreCertificate>, String> {
    parse_json_list::<CertJson>(stdout)?
        .into_iter()
        .map(|c| {
            Ok(StoreCertificate {
                thumbprint: Thumbprint::parse(&c.thumbprint)?,
                subject: c.subject,
                issuer: c.issuer,
                not_before: c.not_before,
                not_after: c.not_after,
                has_private_key: c.has_private_key,
                private_key_readable: c.private_key_readable,
            })
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListenerJson {
    address: String,
    port: u16,
    pid: Option<u32>,
    process: Option<String>,
}

/// The listening-sockets script's output.
pub fn parse_listeners_json(stdout: &str) -> Result<Vec<TcpListenerInfo>, String> {
    Ok(parse_json_list::<ListenerJson>(stdout)?
        .into_iter()
        .map(|l| TcpListenerInfo {
            address: l.address,
            port: l.port,
            pid: l.pid,
            process: l.process,
        })
        .collect())
}

/// What the secure-channel script reports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecureChannelJson {
    pub part_of_domain: bool,
    pub domain: Option<String>,
    pub secure_channel: Option<bool>,
    pub error: Option<String>,
}

/// One adapter as the adapters script reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AdapterJson {
    name: String,
    description: String,
}

/// The adapters script's JSON: a list (PowerShell writes one object for a single adapter and
/// nothing for none).
pub fn parse_adapters_json(stdout: &str) -> Result<Vec<NetworkAdapter>, String> {
    let text = stdout.trim().trim_start_matches('\u{feff}');
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let adapters: Vec<AdapterJson> = if text.starts_with('{') {
        serde_json::from_str(text).map(|one| vec![one])
    } else {
        serde_json::from_str(text)
    }
    .map_err(|e| format!("not the expected JSON: {e}"))?;
    Ok(adapters
        .into_iter()
        .map(|a| NetworkAdapter {
            name: a.name,
            description: a.description,
        })
        .collect())
}

pub fn parse_secure_channel_json(stdout: &str) -> Result<SecureChannelJson, String> {
    serde_json::from_str(stdout.trim().trim_start_matches('\u{feff}'))
        .map_err(|e| format!("not the expected JSON: {e}"))
}

// ---------------------------------------------------------------------------------------
// SDDL

/// The DACL entries of an SDDL string: `(A;OICI;FA;;;BA)` and the like. Object ACEs and
/// conditional expressions are kept with their type; unknown rights strings become 0.
pub fn parse_sddl_dacl(sddl: &str) -> Vec<AceSummary> {
    let Some(dacl_at) = sddl.find("D:") else {
        return Vec::new();
    };
    let dacl = &sddl[dacl_at + 2..];
    let dacl = match dacl.find("S:") {
        Some(sacl) => &dacl[..sacl],
        None => dacl,
    };
    let mut aces = Vec::new();
    let mut rest = dacl;
    while let Some(open) = rest.find('(') {
        let Some(close) = rest[open..].find(')') else {
            break;
        };
        let body = &rest[open + 1..open + close];
        rest = &rest[open + close + 1..];
        let parts: Vec<&str> = body.split(';').collect();
        if parts.len() < 6 {
            continue;
        }
        aces.push(AceSummary {
            kind: parts[0].to_owned(),
            flags: parts[1].to_owned(),
            rights: sddl_rights(parts[2]),
            trustee: parts[5].to_owned(),
        });
    }
    aces
}

/// An SDDL rights field (`FA`, `0x12019f`, `FRFW`, ...) as an access mask.
pub fn sddl_rights(field: &str) -> u32 {
    if let Some(hex) = field
        .strip_prefix("0x")
        .or_else(|| field.strip_prefix("0X"))
    {
        return u32::from_str_radix(hex, 16).unwrap_or(0);
    }
    const CODES: &[(&str, u32)] = &[
        ("GA", 0x1000_0000),
        ("GR", 0x8000_0000),
        ("GW", 0x4000_0000),
        ("GX", 0x2000_0000),
        ("FA", 0x001F_01FF),
        ("FR", 0x0012_0089),
        ("FW", 0x0012_0116),
        ("FX", 0x0012_00A0),
        ("RC", 0x0002_0000),
        ("SD", 0x0001_0000),
        ("WD", 0x0004_0000),
        ("WO", 0x0008_0000),
        ("CC", 0x0000_0001),
        ("DC", 0x0000_0002),
        ("LC", 0x0000_0004),
        ("SW", 0x0000_0008),
        ("RP", 0x0000_0010),
        ("WP", 0x0000_0020),
        ("DT", 0x0000_0040),
        ("LO", 0x0000_0080),
        ("CR", 0x0000_0100),
    ];
    let mut mask = 0;
    let mut i = 0;
    while i + 2 <= field.len() {
        let code = &field[i..i + 2];
        if let Some((_, bits)) = CODES.iter().find(|(c, _)| *c == code) {
            mask |= bits;
        }
        i += 2;
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_have_no_double_quotes_or_line_breaks() {
        for script in [
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
        ] {
            assert!(!script.contains('"'), "{script}");
            assert!(!script.contains('\n'), "{script}");
            assert!(script.starts_with("$ErrorActionPreference = 'Stop'"));
        }
    }

    #[test]
    fn the_event_query_is_built_from_numbers_and_constants() {
        let command = wevtutil_command(&EventQuery {
            channel: "System",
            provider: "Schannel",
            ids: vec![36870, 36871],
            since_minutes: 60,
            max_events: 50,
        });
        assert_eq!(command.program, "wevtutil.exe");
        assert_eq!(
            command.args,
            [
                "qe",
                "System",
                "/q:*[System[Provider[@Name='Schannel'] and (EventID=36870 or EventID=36871) and TimeCreated[timediff(@SystemTime) <= 3600000]]]",
                "/f:RenderedXml",
                "/c:50",
                "/rd:true"
            ]
        );
    }

    #[test]
    fn reg_add_arguments_are_typed() {
        assert_eq!(
            reg_add_data(&RegValue::RegDword(2)),
            ("REG_DWORD", "2".to_owned())
        );
        assert_eq!(
            reg_add_data(&RegValue::RegBinary(super::super::report::HexBytes(vec![
                0xAB, 0x01
            ]))),
            ("REG_BINARY", "AB01".to_owned())
        );
    }

    #[test]
    fn sddl_rights_decode_aliases_and_hex() {
        assert_eq!(sddl_rights("FA"), 0x1F01FF);
        assert_eq!(sddl_rights("0x12019f"), 0x12019F);
        let aces = parse_sddl_dacl("O:SYG:SYD:PAI(A;;0x12019f;;;WD)(D;OICI;FA;;;NS)");
        assert_eq!(aces.len(), 2);
        assert_eq!(aces[1].kind, "D");
        assert_eq!(aces[1].trustee, "NS");
    }
}
