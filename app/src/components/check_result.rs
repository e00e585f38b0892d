//! One check's result, told in plain words first and with the measured details after.

use agent_client::rdp::report::{NegotiateVerdict, TlsVerdict};
use agent_client::wire::{CheckReport, PortState, Reachability, TcpConnectReport};
use leptos::prelude::*;

use crate::case::{CheckRunView, CheckStatus};

/// Shows a check run in whatever state it is.
#[component]
pub fn CheckResult(run: CheckRunView) -> impl IntoView {
    let title = check_title(&run.check_id);
    let source = if run.run_by_server {
        "Checked from the RDP Doctor server".to_owned()
    } else {
        run.agent_hostname
            .clone()
            .map(|host| format!("Checked from {host}"))
            .unwrap_or_default()
    };
    let body = match (run.status, run.report) {
        (CheckStatus::Queued | CheckStatus::Sent | CheckStatus::Running, _) => view! {
            <p class="status pending" role="status">
                <span class="spinner" aria-hidden="true"></span>
                "Checking… this usually takes a few seconds."
            </p>
        }
        .into_any(),
        (CheckStatus::Succeeded, Some(CheckReport::TcpConnect(report))) => {
            let to_host_agent = run.check_id == "agent-port-connect";
            view! { <TcpConnectResult report to_host_agent/> }.into_any()
        }
        (CheckStatus::Succeeded, Some(CheckReport::RdpNegotiate(report))) => {
            let tone = if report.verdict == NegotiateVerdict::EnhancedSecurity {
                "good"
            } else {
                "bad"
            };
            view! {
                <p class=format!("status verdict {tone}") data-verdict=format!("{:?}", report.verdict)>
                    {report.verdict.explanation()}
                </p>
            }
            .into_any()
        }
        (CheckStatus::Succeeded, Some(CheckReport::RdpTls(report))) => {
            let tone = if report.verdict == TlsVerdict::Ok {
                "good"
            } else {
                "bad"
            };
            let certificate = report.certificate.map(|c| {
                format!(
                    "Certificate {} issued by {}, valid until {}.",
                    c.subject, c.issuer, c.not_after
                )
            });
            view! {
                <p class=format!("status verdict {tone}") data-verdict=format!("{:?}", report.verdict)>
                    {report.verdict.explanation()}
                </p>
                <p class="hint">{certificate}</p>
            }
            .into_any()
        }
        (CheckStatus::Succeeded, Some(CheckReport::DnsResolve(report))) => {
            let addresses: Vec<String> = report
                .resolution
                .addresses
                .iter()
                .map(ToString::to_string)
                .collect();
            let message = match &report.resolution.error {
                Some(error) => format!("The name {} does not resolve: {error}.", report.host),
                None => format!("{} resolves to {}.", report.host, addresses.join(", ")),
            };
            view! { <p class="status verdict" data-verdict=format!("{:?}", report.verdict)>{message}</p> }.into_any()
        }
        (CheckStatus::Succeeded, Some(CheckReport::ClockCompare(report))) => {
            use agent_client::rdp::clock::ClockVerdict;
            let tone = match report.verdict {
                ClockVerdict::InSync => "good",
                ClockVerdict::Skewed => "bad",
                ClockVerdict::CouldNotRead => "",
            };
            view! {
                <p class=format!("status verdict {tone}") data-verdict=format!("{:?}", report.verdict)>
                    {report.explanation.clone()}
                </p>
            }
            .into_any()
        }
        (CheckStatus::Succeeded, Some(CheckReport::RevocationFetch(report))) => {
            let report = *report;
            view! { <RevocationFetchResult report/> }.into_any()
        }
        (CheckStatus::Succeeded, Some(CheckReport::PathQuality(report))) => {
            let report = *report;
            view! { <PathQualityResult report/> }.into_any()
        }
        (CheckStatus::Succeeded, Some(CheckReport::Host(report))) => {
            let summary = report.summary();
            let outcome = summary
                .outcome
                .clone()
                .unwrap_or_else(|| "no finding".to_owned());
            let findings = summary
                .findings
                .iter()
                .map(|f| view! { <li>{f.clone()}</li> })
                .collect_view();
            view! {
                <p class="status verdict" data-verdict=outcome.clone()>{format!("Result: {outcome}")}</p>
                <ul class="hint">{findings}</ul>
            }
            .into_any()
        }
        (status, _) => {
            let headline = match status {
                CheckStatus::AgentOffline => {
                    "We could not run this check: the checking agent is offline."
                }
                CheckStatus::NoAgent => {
                    "We could not run this check: no checking agent is set up yet."
                }
                _ => "This check could not be completed.",
            };
            let problem = run.problem.unwrap_or_default();
            view! {
                <p class="status problem" data-status=format!("{status:?}")>{headline}</p>
                <p class="hint">{problem}</p>
                <p class="hint">"This says nothing about your computer. The helpdesk has been shown the same message."</p>
            }
            .into_any()
        }
    };
    view! {
        <article
            class="check"
            data-check=run.check_id.clone()
            data-runner=if run.run_by_server { "server" } else { "agent" }
            data-status=format!("{:?}", run.status)
        >
            <h3>{title}</h3>
            <p class="check-source">{source}</p>
            {body}
        </article>
    }
}

fn check_title(check_id: &str) -> String {
    match check_id {
        "tcp-connect" => "Does the computer answer Remote Desktop?".to_owned(),
        "agent-port-connect" => "Does the computer answer at all?".to_owned(),
        "rdp-negotiate" => "Which Remote Desktop security does it offer?".to_owned(),
        "rdp-tls" => "Is its Remote Desktop certificate in order?".to_owned(),
        "dns-resolve" => "Does its name lead to the right address?".to_owned(),
        "clock-compare" => "Do its clock and yours agree?".to_owned(),
        "path-quality" => "Does the way to the computer lose data?".to_owned(),
        "revocation-fetch" => {
            "Can your PC fetch what it needs to trust the computer's certificate?".to_owned()
        }
        "rdp-listener" | "xrdp-listening" => {
            "Is Remote Desktop running there, on the port you use?".to_owned()
        }
        "security-layer" | "xrdp-security-layer" => {
            "Which Remote Desktop security does it require?".to_owned()
        }
        "rdp-certificate" | "xrdp-certificate" => {
            "Can it use its Remote Desktop certificate?".to_owned()
        }
        "credssp-policy" => "Do your PC's and the computer's CredSSP updates match?".to_owned(),
        "vpn-tunnel-events" => "Has your VPN dropped in the last hour?".to_owned(),
        "firewall-rule" | "xrdp-firewall" => {
            "Does its own firewall let Remote Desktop in?".to_owned()
        }
        other => other.to_owned(),
    }
}

/// What a verdict means for the employee: of a connection to the Remote Desktop port, or
/// (`to_host_agent`) to the port the computer's own RDP Doctor agent listens on.
fn verdict_message(report: &TcpConnectReport, to_host_agent: bool) -> (&'static str, String) {
    let host = report.target.host.as_str();
    let port = report.target.port;
    if to_host_agent {
        match report.verdict {
            Reachability::Open => return ("good", format!(
                "Yes: {host} is on and reachable from your PC (its RDP Doctor agent accepts connections on port {port})."
            )),
            Reachability::Refused => return ("", format!(
                "{host} is reachable, but its RDP Doctor agent is not listening on port {port}."
            )),
            Reachability::NoAnswer => return ("bad", format!(
                "{host} did not answer at all, not even its RDP Doctor agent on port {port}. It may be switched off or asleep, or your network cannot reach it."
            )),
            Reachability::NotResolved | Reachability::Unreachable => {}
        }
    }
    match report.verdict {
        Reachability::Open => ("good", format!(
            "Yes: {host} accepts connections on port {port}. The network path works, so the problem is in how the Remote Desktop session is set up (certificate, security settings or sign-in)."
        )),
        Reachability::Refused => ("bad", format!(
            "{host} is reachable, but nothing accepts Remote Desktop on port {port}. Remote Desktop may be turned off there, its service stopped, or it uses another port."
        )),
        Reachability::NoAnswer => ("bad", format!(
            "{host} did not answer on port {port}. It may be switched off or asleep, or a firewall between you blocks Remote Desktop."
        )),
        Reachability::NotResolved => ("bad", format!(
            "The name {host} could not be found. Check the spelling, or try the computer's IP address."
        )),
        Reachability::Unreachable => ("bad", format!(
            "The network has no route to {host}. If you are working away from the office, connect to the VPN first."
        )),
    }
}

#[component]
fn TcpConnectResult(report: TcpConnectReport, to_host_agent: bool) -> impl IntoView {
    let (tone, message) = verdict_message(&report, to_host_agent);
    let resolution = if let Some(error) = &report.resolution.error {
        format!(
            "Name lookup failed after {} ms: {error}",
            report.resolution.elapsed_ms
        )
    } else if report.resolution.literal {
        "An address was given, so no name lookup was needed.".to_owned()
    } else {
        let addresses: Vec<String> = report
            .resolution
            .addresses
            .iter()
            .map(ToString::to_string)
            .collect();
        format!(
            "{} resolves to {} ({} ms).",
            report.target.host,
            addresses.join(", "),
            report.resolution.elapsed_ms
        )
    };
    let attempts = report
        .attempts
        .into_iter()
        .map(|attempt| {
            let state = match attempt.state {
                PortState::Open => "open",
                PortState::Refused => "refused",
                PortState::NoAnswer => "no answer",
                PortState::Unreachable => "unreachable",
                PortState::Error => "error",
            };
            view! {
                <tr>
                    <td><code>{attempt.address.to_string()}</code></td>
                    <td class=format!("state {}", state.replace(' ', "-"))>{state}</td>
                    <td class="number">{format!("{} ms", attempt.elapsed_ms)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p class=format!("status verdict {tone}") data-verdict=format!("{:?}", report.verdict)>{message}</p>
        <details open=true>
            <summary>"Details"</summary>
            <p>{resolution}</p>
            <table class="attempts">
                <caption class="visually-hidden">"Connection attempts"</caption>
                <thead><tr><th scope="col">"Address"</th><th scope="col">"Result"</th><th scope="col">"Time"</th></tr></thead>
                <tbody>{attempts}</tbody>
            </table>
        </details>
    }
}

/// What `revocation-fetch` means for the employee, then each address with how it went.
#[component]
fn RevocationFetchResult(report: agent_client::wire::RevocationFetchReport) -> impl IntoView {
    use agent_client::wire::{FetchOutcome, RevocationVerdict};
    let host = report.target.host.as_str().to_owned();
    let (tone, message) = match report.verdict {
        RevocationVerdict::Fast => ("good", format!(
            "Yes: your PC gets the certificate checks it needs for {host} within seconds, so Remote Desktop does not wait for them."
        )),
        RevocationVerdict::NothingToFetch => ("good", format!(
            "Your PC has nothing to fetch before it trusts {host}'s certificate, so Remote Desktop does not wait for that."
        )),
        RevocationVerdict::SlowOrBlocked => ("bad", format!(
            "No: your PC waits for certificate checks it cannot fetch in time. Remote Desktop then hangs at \"Securing remote connection\" before it fails with {host}."
        )),
        RevocationVerdict::Unverified => ("", format!(
            "We could not tell whether your PC can fetch the certificate checks for {host}."
        )),
    };
    let fetches = report
        .fetches
        .iter()
        .map(|fetch| {
            let outcome = match &fetch.outcome {
                FetchOutcome::Answered { status, .. } => {
                    format!("answered (HTTP {status}) in {} ms", fetch.elapsed_ms)
                }
                FetchOutcome::Failed { error } => {
                    format!("failed after {} ms: {error}", fetch.elapsed_ms)
                }
                FetchOutcome::TimedOut => format!("no answer within {} ms", fetch.elapsed_ms),
                FetchOutcome::NotProbed { reason } => reason.clone(),
            };
            view! { <li>{format!("{}: {outcome}", fetch.url)}</li> }
        })
        .collect_view();
    view! {
        <p class=format!("status verdict {tone}") data-verdict=format!("{:?}", report.verdict)>{message}</p>
        <p class="hint">{report.certificate_error.clone()}</p>
        <ul class="hint">{fetches}</ul>
    }
}

/// What `path-quality` means for the employee, then the figures.
#[component]
fn PathQualityResult(report: agent_client::wire::PathQualityReport) -> impl IntoView {
    use agent_client::wire::PathVerdict;
    let host = report.target.host.as_str().to_owned();
    let tried = report.attempts.len();
    let (tone, message) = match report.verdict {
        PathVerdict::Stable => ("good", format!(
            "No: all {tried} connections to {host} went through at the first try, so the network path is steady."
        )),
        PathVerdict::Lossy => ("bad", format!(
            "Yes: of {tried} connections to {host}, {} had to be sent again and {} got no answer. The network on the way (often the VPN) is dropping data, which breaks Remote Desktop sessions.",
            report.retransmitted, report.lost
        )),
        PathVerdict::Unreachable => ("", format!(
            "No connection to {host} went through, so the path could not be judged."
        )),
        PathVerdict::NotResolved => ("", format!("The name {host} could not be found.")),
    };
    let figures = report
        .median_ms
        .map(|median| format!("Typical connection time {median} ms."));
    view! {
        <p class=format!("status verdict {tone}") data-verdict=format!("{:?}", report.verdict)>{message}</p>
        <p class="hint">{figures}</p>
    }
}
