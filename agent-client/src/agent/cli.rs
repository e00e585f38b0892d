//! The `rdp-doctor-agent` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::agent::api::{router_with_fixes, AgentState};
use crate::agent::config::{default_path, Identity};
use crate::rdp::clock::ClockCompareReport;
use crate::rdp::report::{HandshakeOutcome, RdpNegotiateReport, RdpTlsReport};
use crate::signing::ReplayGuard;
use crate::target::CheckTarget;
use crate::wire::{CheckReport, CheckSpec, DnsResolveReport, PortState, TcpConnectReport};

/// RDP Doctor's host agent: runs allowlisted, signed checks for the RDP Doctor server.
#[derive(Debug, Parser)]
#[command(name = "rdp-doctor-agent", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register this machine with an RDP Doctor server using an enrollment token.
    Enroll {
        /// The server's base URL, e.g. http://rdp-doctor.corp.example:3000
        #[arg(long, env = "RDP_DOCTOR_SERVER")]
        server: String,
        /// The enrollment token printed by `rdp-doctor token create`.
        #[arg(long, env = "RDP_DOCTOR_ENROLL_TOKEN", hide_env_values = true)]
        token: String,
        /// Where to write the agent identity (default: /etc/rdp-doctor/agent.json as root,
        /// ~/.config/rdp-doctor/agent.json otherwise).
        #[arg(long, env = "RDP_DOCTOR_AGENT_CONFIG")]
        config: Option<PathBuf>,
        /// The URL the server should use to reach this agent (heartbeats keep it current).
        #[arg(long)]
        advertise_url: Option<String>,
    },
    /// Serve the agent API and send heartbeats until stopped (SIGINT/SIGTERM).
    Run {
        /// The agent identity written by `enroll`.
        #[arg(long, env = "RDP_DOCTOR_AGENT_CONFIG")]
        config: Option<PathBuf>,
        /// Address and port to listen on (port 0 picks a free one).
        #[arg(
            long,
            env = "RDP_DOCTOR_AGENT_LISTEN",
            default_value = "127.0.0.1:7410"
        )]
        listen: SocketAddr,
        /// The URL the server should use to reach this agent (default: http://LISTEN).
        #[arg(long, env = "RDP_DOCTOR_AGENT_ADVERTISE_URL")]
        advertise_url: Option<String>,
    },
    /// Run as a Windows service (what the install script registers); elsewhere use `run`.
    Service {
        /// The agent identity written by `enroll`.
        #[arg(long, env = "RDP_DOCTOR_AGENT_CONFIG")]
        config: Option<PathBuf>,
        /// Address and port to listen on.
        #[arg(long, default_value = "0.0.0.0:7410")]
        listen: SocketAddr,
        /// The URL the server should use to reach this agent.
        #[arg(long)]
        advertise_url: Option<String>,
    },
    /// Run one check here and print what it found.
    Check {
        /// The check's id (see `rdp-doctor-agent checks`).
        id: String,
        /// HOST or HOST:PORT to probe (port 3389 when left out).
        #[arg(long)]
        target: Option<String>,
        /// Time allowed for each step, in milliseconds [default: the check's own].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=120_000))]
        timeout_ms: Option<u32>,
        /// A check parameter, KEY=VALUE (repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the checks this agent can run, with their parameters.
    Checks,
    /// Fixes on this host: list, run (or --dry-run), roll back.
    Fix {
        #[command(subcommand)]
        command: crate::host::cli::FixCommand,
    },
    /// The journal of fix actions on this host.
    Journal {
        /// The agent identity; the journal lives beside it.
        #[arg(long, env = "RDP_DOCTOR_AGENT_CONFIG")]
        config: Option<PathBuf>,
        /// Print the journal as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Enroll {
            server,
            token,
            config,
            advertise_url,
        } => {
            let path = config.unwrap_or_else(default_path);
            let identity = super::enroll::enroll(&server, &token, &path, advertise_url).await?;
            println!(
                "enrolled as agent {} with {}; identity written to {}",
                identity.agent_id,
                identity.server_url,
                path.display()
            );
            Ok(())
        }
        Command::Run {
            config,
            listen,
            advertise_url,
        } => {
            let config = config.unwrap_or_else(default_path);
            serve(config, listen, advertise_url, crate::shutdown::signal()).await
        }
        Command::Service {
            config,
            listen,
            advertise_url,
        } => {
            super::windows_service::run(config.unwrap_or_else(default_path), listen, advertise_url)
                .await
        }
        Command::Check {
            id,
            target,
            timeout_ms,
            params,
            json,
        } => {
            let spec = check_spec(&id, target.as_deref(), timeout_ms, &params)?;
            let report = crate::checks::run(&spec).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_report(spec.id(), &report);
            }
            Ok(())
        }
        Command::Fix { command } => crate::host::cli::run_fix_command(command).await,
        Command::Journal { config, json } => {
            crate::host::cli::run_journal_command(config, json).await
        }
        Command::Checks => {
            for check in crate::checks::CATALOGUE {
                println!(
                    "{:<14} {}\n{:<14} {}",
                    check.id, check.parameters, "", check.summary
                );
            }
            Ok(())
        }
    }
}

/// Builds the typed request for a check from command-line words.
fn check_spec(
    id: &str,
    target: Option<&str>,
    timeout_ms: Option<u32>,
    params: &[String],
) -> Result<CheckSpec> {
    let info = crate::checks::info(id).with_context(|| {
        format!("unknown check {id:?}; `rdp-doctor-agent checks` lists the known ones")
    })?;
    let mut params = parse_params(params)?;
    if crate::host::report::HostCheckSpec::IDS.contains(&id) {
        if target.is_some() {
            bail!("{id} checks this machine; it takes no --target");
        }
        return crate::host::report::HostCheckSpec::from_params(id, timeout_ms, &params)
            .map(CheckSpec::Host)
            .map_err(|e| anyhow::anyhow!(e));
    }
    let raw_target = target.with_context(|| format!("{id} needs --target HOST[:PORT]"))?;
    let timeout_ms = timeout_ms.unwrap_or(info.default_timeout_ms);
    if id == "dns-resolve" {
        let host =
            crate::target::Host::parse(raw_target).map_err(|e| anyhow::anyhow!("--target: {e}"))?;
        let expected = match params.remove("expected") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|ip| {
                    ip.trim().parse().map_err(|_| {
                        anyhow::anyhow!("--param expected takes IP addresses, not {ip:?}")
                    })
                })
                .collect::<Result<_>>()?,
        };
        if let Some(unknown) = params.keys().next() {
            bail!("{id} has no parameter {unknown:?}; `rdp-doctor-agent checks` lists them");
        }
        return Ok(CheckSpec::DnsResolve {
            host,
            expected,
            timeout_ms,
        });
    }
    let target = CheckTarget::parse(raw_target).map_err(|e| anyhow::anyhow!("--target: {e}"))?;
    let spec = match id {
        "tcp-connect" => CheckSpec::TcpConnect { target, timeout_ms },
        "agent-port-connect" => CheckSpec::AgentPortConnect { target, timeout_ms },
        "rdp-negotiate" => CheckSpec::RdpNegotiate { target, timeout_ms },
        "revocation-fetch" => CheckSpec::RevocationFetch { target, timeout_ms },
        "path-quality" => {
            use crate::checks::path_quality::{MAX_DURATION_MS, MAX_PROBES};
            let mut number = |name: &str, default: u32, range: std::ops::RangeInclusive<u32>| {
                let Some(raw) = params.remove(name) else {
                    return Ok(default);
                };
                raw.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "--param {name} takes a whole number from {} to {}, not {raw:?}",
                            range.start(),
                            range.end()
                        )
                    })
            };
            let duration_ms = number(
                "duration_ms",
                crate::wire::PATH_QUALITY_DURATION_MS,
                0..=MAX_DURATION_MS,
            )?;
            let probes = number("probes", crate::wire::PATH_QUALITY_PROBES, 1..=MAX_PROBES)?;
            CheckSpec::PathQuality {
                target,
                timeout_ms,
                duration_ms,
                probes,
            }
        }
        "rdp-tls" => {
            let probe_versions = match params.remove("probe_versions").as_deref() {
                None | Some("true") => true,
                Some("false") => false,
                Some(other) => bail!("--param probe_versions takes true or false, not {other:?}"),
            };
            CheckSpec::RdpTls {
                target,
                timeout_ms,
                probe_versions,
            }
        }
        "clock-compare" => {
            let tolerance_s = match params.remove("tolerance_s") {
                None => crate::rdp::clock::DEFAULT_TOLERANCE_S,
                Some(raw) => raw.trim().parse().map_err(|_| {
                    anyhow::anyhow!("--param tolerance_s takes whole seconds, not {raw:?}")
                })?,
            };
            CheckSpec::ClockCompare {
                target,
                tolerance_s,
                timeout_ms,
            }
        }
        _ => bail!("check {id:?} cannot be run from the command line"),
    };
    if let Some(unknown) = params.keys().next() {
        bail!("{id} has no parameter {unknown:?}; `rdp-doctor-agent checks` lists them");
    }
    Ok(spec)
}

fn parse_params(raw: &[String]) -> Result<std::collections::BTreeMap<String, String>> {
    raw.iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => bail!("--param takes KEY=VALUE, not {pair:?}"),
        })
        .collect()
}

/// Serves until `stop` resolves (SIGINT/SIGTERM from `run`, the service manager on Windows).
pub async fn serve(
    config: PathBuf,
    listen: SocketAddr,
    advertise_url: Option<String>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let identity = Identity::load(&config)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    let listen_url = advertise_url.unwrap_or_else(|| format!("http://{local}"));
    tracing::info!(agent.id = %identity.agent_id, %listen_url, "agent listening");
    println!("agent {} listening on {listen_url}", identity.agent_id);
    // Fixes keep their journal beside the identity; expired downgrades are reverted from it,
    // including ones applied before this start.
    let journal =
        crate::host::journal::Journal::open(&crate::host::journal::dir_for_identity(&config))
            .with_context(|| format!("cannot open the fix journal beside {}", config.display()))?;
    let fixes = Arc::new(crate::host::service::FixService::new(
        Arc::from(crate::host::platform::native(
            std::time::Duration::from_secs(60),
        )),
        journal,
        identity.agent_id.clone(),
        Some(identity.server_key),
    ));
    let reverts = tokio::spawn(fixes.clone().auto_revert_forever());
    let state = Arc::new(AgentState {
        identity,
        replay_guard: ReplayGuard::new(),
    });
    let heartbeat_state = state.clone();
    let heartbeat_fixes = fixes.clone();
    let heartbeats = tokio::spawn(async move {
        super::heartbeat::run_forever(&heartbeat_state.identity, listen_url, heartbeat_fixes).await;
    });
    axum::serve(listener, router_with_fixes(state, fixes))
        .with_graceful_shutdown(stop)
        .await
        .context("the agent's HTTP server failed")?;
    heartbeats.abort();
    reverts.abort();
    tracing::info!("agent stopped");
    Ok(())
}

/// Prints what the check `id` found, for a person at the terminal.
fn print_report(id: &str, report: &CheckReport) {
    match report {
        CheckReport::TcpConnect(report) => print_tcp_connect(id, report),
        CheckReport::RdpNegotiate(report) => print_rdp_negotiate(report),
        CheckReport::RdpTls(report) => print_rdp_tls(report),
        CheckReport::DnsResolve(report) => print_dns_resolve(report),
        CheckReport::ClockCompare(report) => print_clock_compare(report),
        CheckReport::RevocationFetch(report) => print_revocation_fetch(report),
        CheckReport::PathQuality(report) => print_path_quality(report),
        CheckReport::Host(report) => crate::host::cli::print_host_report(report),
    }
}

/// A value's serde name, as the JSON output spells it.
fn serde_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn print_path_quality(report: &crate::wire::PathQualityReport) {
    println!("path-quality {}", report.target);
    if let Some(error) = &report.resolution_error {
        println!("  name resolution: {error}");
    }
    if let Some(address) = report.address {
        println!("  address: {address}");
    }
    let times: Vec<String> = report
        .attempts
        .iter()
        .map(|a| match a.state {
            crate::wire::PortState::Open => format!("{}", a.elapsed_ms),
            other => serde_name(&other),
        })
        .collect();
    if !times.is_empty() {
        println!("  connections (ms): {}", times.join(" "));
    }
    if let Some(median) = report.median_ms {
        println!(
            "  median {median} ms, retransmitted {}, lost {}",
            report.retransmitted, report.lost
        );
    }
    println!("  verdict: {}", serde_name(&report.verdict));
}

fn print_revocation_fetch(report: &crate::wire::RevocationFetchReport) {
    use crate::wire::FetchOutcome;
    println!("revocation-fetch {}", report.target);
    if let Some(error) = &report.certificate_error {
        println!("  certificate: {error}");
    }
    if report.fetches.is_empty() {
        println!("  nothing to fetch");
    }
    for fetch in &report.fetches {
        let outcome = match &fetch.outcome {
            FetchOutcome::Answered { status, bytes } => format!("HTTP {status}, {bytes} bytes"),
            FetchOutcome::Failed { error } => format!("failed: {error}"),
            FetchOutcome::TimedOut => "no answer in the time allowed".to_owned(),
            FetchOutcome::NotProbed { reason } => reason.clone(),
        };
        println!(
            "  {:<10} {} {outcome} ({} ms)",
            serde_name(&fetch.purpose),
            fetch.url,
            fetch.elapsed_ms
        );
    }
    println!("  verdict: {}", serde_name(&report.verdict));
}

fn print_dns_resolve(report: &DnsResolveReport) {
    println!("dns-resolve {}", report.host);
    if !report.resolvers.is_empty() {
        println!("  resolvers: {}", report.resolvers.join(", "));
    }
    let resolution = &report.resolution;
    match &resolution.error {
        Some(error) => println!("  {error} ({} ms)", resolution.elapsed_ms),
        None => {
            let addresses: Vec<String> = resolution
                .addresses
                .iter()
                .map(ToString::to_string)
                .collect();
            println!(
                "  addresses: {} ({} ms)",
                addresses.join(", "),
                resolution.elapsed_ms
            );
        }
    }
    if !report.expected.is_empty() {
        let expected: Vec<String> = report.expected.iter().map(ToString::to_string).collect();
        println!("  expected: {}", expected.join(", "));
    }
    println!("  verdict: {}", serde_name(&report.verdict));
}

fn print_rdp_negotiate(report: &RdpNegotiateReport) {
    println!("rdp-negotiate {}", report.target);
    if let Some(error) = &report.resolution_error {
        println!("  name resolution: {error}");
    }
    if let Some(address) = report.address {
        println!("  address: {address}");
    }
    for attempt in &report.attempts {
        println!(
            "  asked {:<40} {} ({} ms)",
            attempt.requested.to_string(),
            serde_json::to_string(&attempt.outcome).unwrap_or_default(),
            attempt.elapsed_ms
        );
    }
    println!(
        "  verdict: {} - {}",
        serde_name(&report.verdict),
        report.verdict.explanation()
    );
}

fn print_rdp_tls(report: &RdpTlsReport) {
    println!("rdp-tls {}", report.target);
    match &report.handshake.outcome {
        HandshakeOutcome::Established {
            version,
            cipher_suite,
            ..
        } => {
            println!("  handshake: {version}, {cipher_suite}");
        }
        other => println!(
            "  handshake: {}",
            serde_json::to_string(other).unwrap_or_default()
        ),
    }
    if let Some(cert) = &report.certificate {
        println!(
            "  certificate: {} (issued by {})",
            cert.subject, cert.issuer
        );
        println!(
            "  valid: {} to {} ({})",
            cert.not_before,
            cert.not_after,
            serde_name(&cert.validity)
        );
        println!("  names: {}", cert.dns_names.join(", "));
        println!(
            "  self-signed: {}; names {}: {}",
            cert.self_signed, cert.name_match.asked, cert.name_match.matched
        );
    }
    if !report.versions.is_empty() {
        let accepted: Vec<String> = report
            .accepted_versions
            .iter()
            .map(ToString::to_string)
            .collect();
        println!("  TLS versions accepted: {}", accepted.join(", "));
    }
    for problem in &report.problems {
        println!(
            "  problem: {}",
            serde_json::to_string(problem).unwrap_or_default()
        );
    }
    println!(
        "  verdict: {} - {}",
        serde_name(&report.verdict),
        report.verdict.explanation()
    );
}

fn print_clock_compare(report: &ClockCompareReport) {
    println!("clock-compare {}", report.target);
    if let Some(address) = report.address {
        println!("  address: {address}");
    }
    for attempt in &report.negotiation {
        println!(
            "  asked {:<40} {} ({} ms)",
            attempt.requested.to_string(),
            serde_json::to_string(&attempt.outcome).unwrap_or_default(),
            attempt.elapsed_ms
        );
    }
    if let Some(tls) = &report.tls {
        match &tls.outcome {
            HandshakeOutcome::Established {
                version,
                cipher_suite,
                ..
            } => println!("  TLS: {version}, {cipher_suite}"),
            other => println!(
                "  TLS: {}",
                serde_json::to_string(other).unwrap_or_default()
            ),
        }
    }
    if let Some(credssp) = &report.credssp {
        println!("  CredSSP: TSRequest version {}", credssp.version);
    }
    if let Some(host) = &report.host {
        let names = [
            ("NetBIOS computer", &host.netbios_computer_name),
            ("NetBIOS domain", &host.netbios_domain_name),
            ("DNS computer", &host.dns_computer_name),
            ("DNS domain", &host.dns_domain_name),
        ];
        for (label, value) in names {
            if let Some(value) = value {
                println!("  {label}: {value}");
            }
        }
        if let Some(version) = &host.product_version {
            println!("  product version: {}", version.display);
        }
    }
    if let Some(clock) = &report.clock {
        println!("  host clock:  {}", clock.host_time);
        println!("  local clock: {}", clock.local_time);
        println!(
            "  offset: {:+.3} s ± {:.3} s (round trip {} ms)",
            clock.offset_s, clock.uncertainty_s, clock.round_trip_ms
        );
    }
    println!(
        "  verdict: {} (tolerance {} s) - {}",
        serde_name(&report.verdict),
        report.tolerance_s,
        report.explanation
    );
}

fn print_tcp_connect(id: &str, report: &TcpConnectReport) {
    println!("{id} {}", report.target);
    let resolution = &report.resolution;
    match (&resolution.error, resolution.literal) {
        (Some(error), _) => println!("  name resolution: {error} ({} ms)", resolution.elapsed_ms),
        (None, true) => println!("  name resolution: not needed (an address was given)"),
        (None, false) => {
            let addresses: Vec<String> =
                resolution.addresses.iter().map(|a| a.to_string()).collect();
            println!(
                "  name resolution: {} ({} ms)",
                addresses.join(", "),
                resolution.elapsed_ms
            );
        }
    }
    for attempt in &report.attempts {
        let state = match attempt.state {
            PortState::Open => "open",
            PortState::Refused => "refused",
            PortState::NoAnswer => "no answer",
            PortState::Unreachable => "unreachable",
            PortState::Error => "error",
        };
        let detail = attempt
            .detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        println!(
            "  {:<40} {state:<11} {} ms{detail}",
            attempt.address.to_string(),
            attempt.elapsed_ms
        );
    }
    println!(
        "  verdict: {}",
        serde_json::to_value(report.verdict)
            .map(|v| v.as_str().unwrap_or("").to_owned())
            .unwrap_or_default()
    );
}
