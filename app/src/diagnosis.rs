//! The engine's state as the employee sees it, computed by the very same code on the server
//! (the authoritative record) and in the browser (instant feedback while the server stores
//! an answer).
//!
//! The server sends the page a [`DiagnosisSummary`] that carries the session's evidence, and
//! on request the model it diagnoses with ([`PortalModel`]: the shipped model with the learned
//! counts). With both, the browser takes the next step itself the moment an answer is chosen;
//! the server's own summary replaces that preview as soon as it arrives.

use std::collections::BTreeMap;

use agent_client::host::report::{CredSspObserved, HostCheckReport};
use agent_client::wire::CheckReport;
use engine::{CheckResult, CompiledModel, Model, Session, SessionError, SessionState, StepKind};
use serde::{Deserialize, Serialize};

use crate::case::{
    AnswerChoice, CheckRunView, DiagnosisSummary, LikelyCause, PendingQuestion, SuggestedFix,
};

/// How many causes and fixes the portal shows.
const SHOWN_CAUSES: usize = 5;
const SHOWN_FIXES: usize = 5;

/// The model the server diagnoses with, as the browser receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortalModel {
    /// The expert model with every count learned so far.
    pub model: Model,
    /// For each fix an agent can perform: the agent's fix id (the portal offers to apply it).
    pub agent_fixes: BTreeMap<String, String>,
}

/// [`PortalModel`], compiled for inference in the browser.
#[derive(Debug, Clone)]
pub struct LocalModel {
    pub compiled: CompiledModel,
    pub agent_fixes: BTreeMap<String, String>,
}

impl PortalModel {
    /// Validates and indexes the model; a model the server could serve always compiles.
    pub fn compile(self) -> Result<LocalModel, String> {
        let compiled = CompiledModel::new(self.model).map_err(|problems| {
            let first = problems.first().map(ToString::to_string);
            format!(
                "the diagnosis model does not validate: {}",
                first.unwrap_or_default()
            )
        })?;
        Ok(LocalModel {
            compiled,
            agent_fixes: self.agent_fixes,
        })
    }
}

/// The diagnosis card's content for a session in a given state.
pub fn summarize(
    model: &CompiledModel,
    agent_fixes: &BTreeMap<String, String>,
    session_id: &str,
    session: &Session,
    state: &SessionState,
) -> DiagnosisSummary {
    let document = model.model();
    let question = state
        .next_step
        .as_ref()
        .filter(|step| step.kind == StepKind::Question)
        .and_then(|step| document.questions.iter().find(|q| q.id == step.id))
        .map(|question| PendingQuestion {
            id: question.id.clone(),
            text: question.text.clone(),
            typed: matches!(question.input, engine::AnswerInput::Code),
            answers: question
                .answers
                .iter()
                .map(|a| AnswerChoice {
                    id: a.id.clone(),
                    label: a.label.clone(),
                })
                .collect(),
        });
    // The engine wants a check's result first: one the portal's flow is still running.
    let waiting_for_checks = !state.closed
        && state
            .next_step
            .as_ref()
            .is_some_and(|step| matches!(step.kind, StepKind::Check { .. }));
    let cause_name = |id: &str| {
        let cause = document.causes.iter().find(|c| c.id == id);
        cause.map(|c| c.name.clone()).unwrap_or_default()
    };
    let fix_name = |id: &str| {
        let fix = document.fixes.iter().find(|f| f.id == id);
        fix.map(|f| f.name.clone()).unwrap_or_default()
    };
    DiagnosisSummary {
        session_id: session_id.to_owned(),
        causes: state
            .causes
            .iter()
            .take(SHOWN_CAUSES)
            .map(|c| LikelyCause {
                name: cause_name(&c.id),
                id: c.id.clone(),
                probability: c.probability,
            })
            .collect(),
        question: if state.closed { None } else { question },
        stop_asking: state.stop_asking,
        waiting_for_checks,
        fixes: state
            .fixes
            .iter()
            .take(SHOWN_FIXES)
            .map(|f| SuggestedFix {
                name: fix_name(&f.id),
                id: f.id.clone(),
                tier: serde_json::to_value(f.tier)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                probability: f.probability,
                agent_fix: agent_fixes.get(&f.id).cloned(),
            })
            .collect(),
        closed: state.closed,
        session: Some(session.clone()),
    }
}

/// What the diagnosis becomes once `answer` to `question` is recorded and the checks whose
/// runs are over are caught up (as the server does), worked out locally; None when the engine
/// refuses the answer (the server will say why) or the summary carries no session.
pub fn preview_answer(
    local: &LocalModel,
    summary: &DiagnosisSummary,
    runs: &[CheckRunView],
    question: &str,
    answer: &str,
) -> Option<DiagnosisSummary> {
    let mut session = summary.session.clone()?;
    session.answer(&local.compiled, question, answer).ok()?;
    let state = catch_up_on_checks(&local.compiled, &mut session, runs).ok()?;
    Some(summarize(
        &local.compiled,
        &local.agent_fixes,
        &summary.session_id,
        &session,
        &state,
    ))
}

/// The model's host checks that a Linux host's agent answers with an xrdp check, as
/// (model check, xrdp check): the same question asked of xrdp instead of Windows.
pub const XRDP_COUNTERPARTS: [(&str, &str); 4] = [
    ("rdp-listener", "xrdp-listening"),
    ("security-layer", "xrdp-security-layer"),
    ("rdp-certificate", "xrdp-certificate"),
    ("firewall-rule", "xrdp-firewall"),
];

/// The model's id for a run of the catalogue check `catalogue_id`: the server's own TCP
/// connect is a check of its own (a second vantage point); an xrdp check stands for its
/// Windows counterpart.
pub fn model_check_id(catalogue_id: &str, run_by_server: bool) -> &str {
    match catalogue_id {
        "tcp-connect" if run_by_server => "tcp-connect-from-server",
        other => XRDP_COUNTERPARTS
            .iter()
            .find(|(_, xrdp)| *xrdp == other)
            .map_or(other, |(model, _)| model),
    }
}

/// What a finished run of the catalogue check `catalogue_id` tells the engine: the model's
/// check id and outcome id.
pub fn check_evidence<'a>(
    catalogue_id: &'a str,
    run_by_server: bool,
    report: &CheckReport,
) -> Option<(&'a str, String)> {
    match report {
        CheckReport::TcpConnect(report) if catalogue_id == "agent-port-connect" => {
            use agent_client::wire::Reachability as R;
            // Whether the host's computer answers at all: a reset on the agent's port, or a
            // name that does not resolve, says nothing about that.
            let outcome = match report.verdict {
                R::Open => "open",
                R::NoAnswer | R::Unreachable => "no-answer",
                R::Refused | R::NotResolved => return None,
            };
            Some(("agent-port-connect", outcome.to_owned()))
        }
        CheckReport::TcpConnect(report) => {
            let check = model_check_id("tcp-connect", run_by_server);
            Some((check, serde_name(&report.verdict)?))
        }
        CheckReport::RdpNegotiate(report) => {
            use agent_client::rdp::report::NegotiateVerdict as V;
            use agent_client::rdp::x224::Protocol;
            let outcome = match report.verdict {
                V::EnhancedSecurity => match report.summary.preferred {
                    Some(Protocol::Hybrid | Protocol::HybridEx) => "credssp",
                    _ => "tls",
                },
                V::StandardRdpOnly => "standard-rdp",
                V::Refused | V::CertificateMissing => "negotiation-failure",
                V::NotRdp | V::ConnectionClosed | V::NoReply | V::Unreachable | V::NotResolved => {
                    "no-answer"
                }
            };
            Some(("rdp-negotiate", outcome.to_owned()))
        }
        CheckReport::RdpTls(report) => {
            use agent_client::rdp::report::TlsVerdict as V;
            let outcome = match report.verdict {
                V::Ok | V::SelfSigned | V::NameMismatch => "ok",
                V::CertificateExpired | V::CertificateNotYetValid => "cert-expired",
                V::HandshakeFailed
                | V::CertificateOrKeyBroken
                | V::OnlyLegacyTls
                | V::CertificateMissing => "handshake-failed",
                V::TlsNotOffered | V::NegotiationFailed | V::Unreachable | V::NotResolved => {
                    "no-connection"
                }
            };
            Some(("rdp-tls", outcome.to_owned()))
        }
        CheckReport::DnsResolve(report) => {
            use agent_client::wire::DnsVerdict;
            // Without the host's own addresses there is nothing to compare: no evidence.
            (report.verdict != DnsVerdict::Unverified)
                .then(|| serde_name(&report.verdict))
                .flatten()
                .map(|outcome| ("dns-resolve", outcome))
        }
        CheckReport::ClockCompare(report) => {
            use agent_client::rdp::clock::ClockVerdict as V;
            // A clock that could not be read over RDP is no evidence either way.
            let outcome = match report.verdict {
                V::InSync => "in-sync",
                V::Skewed => "skewed",
                V::CouldNotRead => return None,
            };
            Some(("clock-compare", outcome.to_owned()))
        }
        CheckReport::RevocationFetch(report) => {
            use agent_client::wire::RevocationVerdict as V;
            // Nothing to fetch is nothing to wait for; nothing fetched is no evidence.
            let outcome = match report.verdict {
                V::Fast | V::NothingToFetch => "fast",
                V::SlowOrBlocked => "slow-or-blocked",
                V::Unverified => return None,
            };
            Some(("revocation-fetch", outcome.to_owned()))
        }
        CheckReport::PathQuality(report) => {
            use agent_client::wire::PathVerdict as V;
            // A path that carried no connection at all cannot be judged for loss.
            let outcome = match report.verdict {
                V::Stable => "stable",
                V::Lossy => "lossy",
                V::Unreachable | V::NotResolved => return None,
            };
            Some(("path-quality", outcome.to_owned()))
        }
        CheckReport::Host(report) => host_evidence(report),
    }
}

/// What a host check tells the engine: a Windows check is the model's own (its outcomes are
/// spelled as the model spells them); an xrdp check answers for its Windows counterpart, its
/// outcome read in the model's terms.
fn host_evidence(report: &HostCheckReport) -> Option<(&'static str, String)> {
    use agent_client::host::report::{
        XrdpCertificateOutcome as Certificate, XrdpFirewallOutcome as Firewall,
        XrdpListeningOutcome as Listening, XrdpSecurityOutcome as Layer,
    };
    let outcome = match report {
        HostCheckReport::XrdpListening(r) => match r.outcome? {
            Listening::Listening => "listening-3389",
            Listening::OtherPort => "other-port",
            Listening::PortTaken => "port-taken",
            // xrdp not running is the model's stopped service: nothing listens.
            Listening::NotRunning | Listening::NotListening => "not-listening",
        },
        HostCheckReport::XrdpSecurityLayer(r) => match r.outcome? {
            Layer::Negotiate => "negotiate",
            Layer::Tls => "tls",
            Layer::RdpOnly => "rdp-only",
            // A value xrdp does not know: what it falls back to is not the agent's to say.
            Layer::Unrecognised => return None,
        },
        HostCheckReport::XrdpCertificate(r) => match r.outcome? {
            Certificate::Ok => "valid",
            Certificate::Missing
            | Certificate::Unreadable
            | Certificate::KeyMismatch
            | Certificate::Expired
            | Certificate::NotYetValid
            | Certificate::WeakKey => "expired-or-unreadable",
        },
        HostCheckReport::XrdpFirewall(r) => match r.outcome? {
            Firewall::Open => "enabled",
            Firewall::Blocked => "disabled",
            // Whether the employee's packets are among those dropped is not known.
            Firewall::BlockedConditionally => return None,
        },
        windows => {
            return windows
                .summary()
                .outcome
                .map(|outcome| (windows.id(), outcome))
        }
    };
    Some((model_check_id(report.id(), false), outcome.to_owned()))
}

/// A unit enum's name as serde spells it (the agent's kebab-case ids match the model's).
fn serde_name<T: Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value)
        .ok()?
        .as_str()
        .map(str::to_owned)
}

/// The portal's rule for one of the model's checks, from the case's runs of it: wait while
/// one is still running (None); otherwise record what a finished run found, or, when no run
/// found anything the model reads, that the check did not run (no evidence).
pub fn catch_up_check(check: &str, runs: &[CheckRunView]) -> Option<CheckResult> {
    if check == CREDSSP_CHECK {
        return credssp_consistency(runs);
    }
    let runs_of_check: Vec<&CheckRunView> = runs
        .iter()
        .filter(|run| model_check_id(&run.check_id, run.run_by_server) == check)
        .collect();
    if runs_of_check.iter().any(|run| !run.status.is_final()) {
        return None;
    }
    let reported = runs_of_check.iter().find_map(|run| {
        let (id, outcome) = check_evidence(&run.check_id, run.run_by_server, run.report.as_ref()?)?;
        (id == check).then_some(outcome)
    });
    Some(reported.map_or(CheckResult::NotRun, CheckResult::Outcome))
}

/// The model's check of whether the two computers' CredSSP would let them talk.
const CREDSSP_CHECK: &str = "credssp-policy";

/// The first TSRequest version of the 2018 CredSSP updates (CVE-2018-0886): from 5 on, the
/// public key is bound with the client's nonce (MS-CSSP 2.2.1). A host that answers with a
/// lower version does not have them.
const FIRST_UPDATED_CREDSSP_VERSION: u32 = 5;

/// The first Windows build released with the 2018 CredSSP updates built in (Windows 10 1803,
/// April 2018): `tspkg.dll` of this build or later has them whatever else is installed.
const FIRST_UPDATED_WINDOWS_BUILD: u32 = 17134;

/// The model's `credssp-policy` (would the two computers' CredSSP let them talk?), from what
/// the case's runs saw: the host's CredSSP version, answered to the employee's `clock-compare`
/// probe, and the employee's own `AllowEncryptionOracle` and `tspkg.dll`, read by
/// `credssp-policy` where the employee's PC runs Windows (one side alone cannot say, so that
/// run has no outcome of its own). Waits (None) while either still runs.
fn credssp_consistency(runs: &[CheckRunView]) -> Option<CheckResult> {
    let involved: Vec<&CheckRunView> = runs
        .iter()
        .filter(|run| {
            matches!(run.check_id.as_str(), "clock-compare" | CREDSSP_CHECK) && !run.run_by_server
        })
        .collect();
    if involved.iter().any(|run| !run.status.is_final()) {
        return None;
    }
    let host_version = involved.iter().find_map(|run| match run.report.as_ref()? {
        CheckReport::ClockCompare(report) => report.credssp.as_ref().map(|c| c.version),
        _ => None,
    });
    let employee = involved.iter().find_map(|run| match run.report.as_ref()? {
        CheckReport::Host(report) => match report.as_ref() {
            HostCheckReport::CredsspPolicy(policy) => policy.observed.clone(),
            _ => None,
        },
        _ => None,
    });
    Some(
        credssp_verdict(host_version, employee.as_ref()).map_or(CheckResult::NotRun, |verdict| {
            CheckResult::Outcome(verdict.to_owned())
        }),
    )
}

/// `consistent` or `mismatch` for a host that answered CredSSP with `host_version`, and the
/// employee's PC as its `credssp-policy` run read it (None: not read, as when the PC has no
/// Windows agent; an up-to-date Windows is assumed). None when it cannot be told.
///
/// The updates' rules (Microsoft's KB4093492): an updated client, Mitigated (the default) or
/// Force Updated Clients, refuses a host without them; a Vulnerable one (2) connects to any;
/// an updated host refuses clients without them only under Force Updated Clients, which this
/// side does not read, so a client that may lack them leaves the answer open.
pub fn credssp_verdict(
    host_version: Option<u32>,
    employee: Option<&CredSspObserved>,
) -> Option<&'static str> {
    let host_updated = host_version? >= FIRST_UPDATED_CREDSSP_VERSION;
    let policy = employee.and_then(|e| e.allow_encryption_oracle);
    if policy == Some(2) {
        return Some("consistent");
    }
    // The policy exists only where the updates are; else the DLL's build says.
    let employee_updated = policy.is_some()
        || employee
            .and_then(|e| e.tspkg_version.as_deref())
            .is_none_or(|version| {
                windows_build(version).is_some_and(|build| build >= FIRST_UPDATED_WINDOWS_BUILD)
            });
    match (employee_updated, host_updated) {
        (true, true) => Some("consistent"),
        (true, false) => Some("mismatch"),
        (false, _) => None,
    }
}

/// The build of a Windows file version such as `10.0.19041.3636 (WinBuild.160101.0800)`.
fn windows_build(version: &str) -> Option<u32> {
    version.split(['.', ' ']).nth(2)?.parse().ok()
}

/// The model's checks that `recorded` lacks and whose runs are over, with what they found
/// (the rule of [`catch_up_check`]), in model order. Every check starts with the case, so
/// the portal records each one as soon as its result is in, whatever the engine would ask
/// next: the employee is not asked what a check has already told.
pub fn finished_checks(
    model: &CompiledModel,
    recorded: &BTreeMap<String, CheckResult>,
    runs: &[CheckRunView],
) -> Vec<(String, CheckResult)> {
    model
        .model()
        .checks
        .iter()
        .filter(|check| !recorded.contains_key(&check.id))
        .filter_map(|check| Some((check.id.clone(), catch_up_check(&check.id, runs)?)))
        .collect()
}

/// Records, as the server does whenever a run finishes or a step is taken, every check whose
/// runs are over ([`finished_checks`]), and returns the state that follows.
pub fn catch_up_on_checks(
    model: &CompiledModel,
    session: &mut Session,
    runs: &[CheckRunView],
) -> Result<SessionState, SessionError> {
    for (check, result) in finished_checks(model, session.check_results(), runs) {
        session.record_check(model, &check, result)?;
    }
    session.state(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::CheckStatus;
    use agent_client::target::CheckTarget;
    use agent_client::wire::{Reachability, Resolution, TcpConnectReport};

    fn shipped() -> LocalModel {
        PortalModel {
            model: Model::shipped(),
            agent_fixes: BTreeMap::from([("flush-dns".to_owned(), "flush-dns".to_owned())]),
        }
        .compile()
        .unwrap()
    }

    fn started(local: &LocalModel) -> DiagnosisSummary {
        let mut session = Session::new(7);
        session
            .answer(&local.compiled, "error_code", "0x904")
            .unwrap();
        let state = catch_up_on_checks(&local.compiled, &mut session, &[]).unwrap();
        summarize(&local.compiled, &local.agent_fixes, "s-1", &session, &state)
    }

    #[test]
    fn the_model_survives_the_trip_to_the_browser() {
        let sent = PortalModel {
            model: Model::shipped(),
            agent_fixes: BTreeMap::new(),
        };
        let received: PortalModel =
            serde_json::from_str(&serde_json::to_string(&sent).unwrap()).unwrap();
        assert_eq!(received, sent);
        assert!(received.compile().is_ok());
    }

    #[test]
    fn a_preview_is_what_the_server_computes_for_the_same_answer() {
        let local = shipped();
        let summary = started(&local);
        let question = summary
            .question
            .clone()
            .expect("the engine asks something first");
        let answer = &question.answers.first().expect("a choice").id;
        let preview = preview_answer(&local, &summary, &[], &question.id, answer).unwrap();

        let mut session = summary.session.clone().unwrap();
        session
            .answer(&local.compiled, &question.id, answer)
            .unwrap();
        // What the server does with the same answer: record it, catch up on checks, show.
        let state = catch_up_on_checks(&local.compiled, &mut session, &[]).unwrap();
        let on_server = summarize(&local.compiled, &local.agent_fixes, "s-1", &session, &state);
        assert_eq!(preview, on_server);
        assert_ne!(
            preview.session, summary.session,
            "the answer is in the evidence"
        );
    }

    fn run(
        check: &str,
        by_server: bool,
        status: CheckStatus,
        report: Option<CheckReport>,
    ) -> CheckRunView {
        CheckRunView {
            check_id: check.to_owned(),
            run_by_server: by_server,
            status,
            agent_hostname: None,
            report,
            problem: None,
        }
    }

    fn tcp_report(verdict: Reachability) -> CheckReport {
        CheckReport::TcpConnect(TcpConnectReport {
            target: CheckTarget::parse("pc-1:3389").unwrap(),
            resolution: Resolution {
                literal: false,
                addresses: vec![],
                elapsed_ms: 1.0,
                error: None,
            },
            attempts: vec![],
            verdict,
        })
    }

    #[test]
    fn a_check_still_running_is_waited_for() {
        let runs = [run("tcp-connect", false, CheckStatus::Running, None)];
        assert_eq!(catch_up_check("tcp-connect", &runs), None);
    }

    #[test]
    fn a_finished_run_is_recorded_and_a_missing_one_is_not_run() {
        let runs = [
            run(
                "tcp-connect",
                false,
                CheckStatus::Succeeded,
                Some(tcp_report(Reachability::NoAnswer)),
            ),
            run(
                "tcp-connect",
                true,
                CheckStatus::Succeeded,
                Some(tcp_report(Reachability::Open)),
            ),
            run("rdp-negotiate", false, CheckStatus::AgentOffline, None),
        ];
        assert_eq!(
            catch_up_check("tcp-connect", &runs),
            Some(CheckResult::Outcome("no-answer".to_owned()))
        );
        // The server's own connect is the model's second vantage point.
        assert_eq!(
            catch_up_check("tcp-connect-from-server", &runs),
            Some(CheckResult::Outcome("open".to_owned()))
        );
        assert_eq!(
            catch_up_check("rdp-negotiate", &runs),
            Some(CheckResult::NotRun)
        );
        assert_eq!(
            catch_up_check("firewall-rule", &runs),
            Some(CheckResult::NotRun)
        );
    }

    #[test]
    fn a_connect_to_the_host_agents_port_says_whether_that_computer_answers() {
        let outcome = |verdict| {
            check_evidence("agent-port-connect", false, &tcp_report(verdict))
                .map(|(check, outcome)| format!("{check}={outcome}"))
        };
        assert_eq!(
            outcome(Reachability::Open).as_deref(),
            Some("agent-port-connect=open")
        );
        assert_eq!(
            outcome(Reachability::NoAnswer).as_deref(),
            Some("agent-port-connect=no-answer")
        );
        assert_eq!(
            outcome(Reachability::Unreachable).as_deref(),
            Some("agent-port-connect=no-answer")
        );
        // A reset means the computer is up; only its agent is not listening.
        assert_eq!(outcome(Reachability::Refused), None);
        // The same report from the RDP port is the model's tcp-connect.
        assert_eq!(
            check_evidence("tcp-connect", false, &tcp_report(Reachability::Refused)),
            Some(("tcp-connect", "refused".to_owned()))
        );
        let runs = [run(
            "agent-port-connect",
            false,
            CheckStatus::Succeeded,
            Some(tcp_report(Reachability::NoAnswer)),
        )];
        assert_eq!(
            catch_up_check("agent-port-connect", &runs),
            Some(CheckResult::Outcome("no-answer".to_owned()))
        );
        assert_eq!(
            catch_up_check("tcp-connect", &runs),
            Some(CheckResult::NotRun)
        );
    }

    #[test]
    fn a_revocation_fetch_is_evidence_only_when_something_was_fetched_or_nothing_is_needed() {
        use agent_client::wire::{RevocationFetchReport, RevocationVerdict as V};
        let outcome = |verdict| {
            let report = CheckReport::RevocationFetch(Box::new(RevocationFetchReport {
                target: CheckTarget::parse("pc1").unwrap(),
                certificate_error: None,
                fetches: Vec::new(),
                verdict,
                elapsed_ms: 1.0,
            }));
            check_evidence("revocation-fetch", false, &report).map(|(_, outcome)| outcome)
        };
        assert_eq!(outcome(V::Fast).as_deref(), Some("fast"));
        assert_eq!(outcome(V::NothingToFetch).as_deref(), Some("fast"));
        assert_eq!(
            outcome(V::SlowOrBlocked).as_deref(),
            Some("slow-or-blocked")
        );
        assert_eq!(outcome(V::Unverified), None);
    }

    #[test]
    fn a_path_is_judged_for_loss_only_when_connections_were_made() {
        use agent_client::wire::{PathQualityReport, PathVerdict as V};
        let outcome = |verdict| {
            let report = CheckReport::PathQuality(Box::new(PathQualityReport {
                target: CheckTarget::parse("pc1").unwrap(),
                resolution_error: None,
                address: None,
                attempts: Vec::new(),
                median_ms: None,
                retransmitted: 0,
                lost: 0,
                verdict,
                elapsed_ms: 1.0,
            }));
            check_evidence("path-quality", false, &report).map(|(_, outcome)| outcome)
        };
        assert_eq!(outcome(V::Stable).as_deref(), Some("stable"));
        assert_eq!(outcome(V::Lossy).as_deref(), Some("lossy"));
        assert_eq!(outcome(V::Unreachable), None);
        assert_eq!(outcome(V::NotResolved), None);
    }

    #[test]
    fn catching_up_records_every_finished_check_and_waits_for_running_ones() {
        let local = shipped();
        let checks = local.compiled.model().checks.len();
        // Nothing ran: every check of the model is recorded as not run, and the engine asks
        // the employee.
        let mut session = Session::new(7);
        session
            .answer(&local.compiled, "error_code", "0x904")
            .unwrap();
        let state = catch_up_on_checks(&local.compiled, &mut session, &[]).unwrap();
        assert_eq!(session.check_results().len(), checks);
        assert!(session
            .check_results()
            .values()
            .all(|r| *r == CheckResult::NotRun));
        assert!(state
            .next_step
            .is_some_and(|step| step.kind == StepKind::Question));

        // The client's connect is done, the negotiation still runs, the rest never ran: the
        // connect is recorded whatever the engine would ask next; the negotiation is not.
        let runs = [
            run(
                "tcp-connect",
                false,
                CheckStatus::Succeeded,
                Some(tcp_report(Reachability::NoAnswer)),
            ),
            run("rdp-negotiate", false, CheckStatus::Queued, None),
        ];
        let mut waiting = Session::new(7);
        waiting
            .answer(&local.compiled, "error_code", "0x904")
            .unwrap();
        let finished = finished_checks(&local.compiled, waiting.check_results(), &runs);
        assert_eq!(finished.len(), checks - 1);
        assert!(finished.iter().all(|(id, _)| id != "rdp-negotiate"));
        let state = catch_up_on_checks(&local.compiled, &mut waiting, &runs).unwrap();
        assert_eq!(
            waiting.check_results().get("tcp-connect"),
            Some(&CheckResult::Outcome("no-answer".to_owned()))
        );
        assert!(!waiting.check_results().contains_key("rdp-negotiate"));
        // A second pass finds nothing new, and the engine either asks the employee or waits
        // for the one check still running.
        assert!(finished_checks(&local.compiled, waiting.check_results(), &runs).is_empty());
        let next = state.next_step.unwrap();
        assert!(
            next.kind == StepKind::Question || next.id == "rdp-negotiate",
            "{next:?}"
        );
    }

    #[test]
    fn a_refused_answer_previews_nothing() {
        let local = shipped();
        let summary = started(&local);
        let question = summary.question.clone().unwrap();
        assert!(preview_answer(&local, &summary, &[], &question.id, "no-such-answer").is_none());
        assert!(preview_answer(&local, &summary, &[], "no-such-question", "yes").is_none());
        let without_evidence = DiagnosisSummary {
            session: None,
            ..summary
        };
        let answer = &question.answers[0].id;
        assert!(preview_answer(&local, &without_evidence, &[], &question.id, answer).is_none());
    }

    #[test]
    fn fixes_an_agent_performs_are_marked() {
        let local = shipped();
        let mut session = Session::new(1);
        session
            .answer(&local.compiled, "error_code", "0x904")
            .unwrap();
        session
            .record_check(&local.compiled, "dns-resolve", "differs".to_owned().into())
            .unwrap();
        let state = session.state(&local.compiled).unwrap();
        let summary = summarize(&local.compiled, &local.agent_fixes, "s", &session, &state);
        let flush = summary.fixes.iter().find(|f| f.id == "flush-dns").unwrap();
        assert_eq!(flush.agent_fix.as_deref(), Some("flush-dns"));
        assert!(summary
            .fixes
            .iter()
            .filter(|f| f.id != "flush-dns")
            .all(|f| f.agent_fix.is_none()));
    }

    /// A host check's report that found `outcome` (spelled as the agent spells it).
    fn host_report(check: &str, outcome: &str) -> CheckReport {
        let report = serde_json::json!({
            "check": check, "outcome": outcome, "confidence": "high", "observed": null,
            "findings": [], "error": null, "elapsed_ms": 1.0
        });
        CheckReport::Host(Box::new(serde_json::from_value(report).unwrap()))
    }

    #[test]
    fn an_xrdp_check_answers_for_its_windows_counterpart_in_the_models_terms() {
        let local = shipped();
        let model = local.compiled.model();
        for (model_check, xrdp_check) in XRDP_COUNTERPARTS {
            let check = model.checks.iter().find(|c| c.id == model_check).unwrap();
            assert_eq!(check.runs_on, engine::CheckLocation::Host, "{model_check}");
            assert_eq!(model_check_id(xrdp_check, false), model_check);
        }
        let cases = [
            (
                "xrdp-listening",
                "listening",
                Some(("rdp-listener", "listening-3389")),
            ),
            (
                "xrdp-listening",
                "other-port",
                Some(("rdp-listener", "other-port")),
            ),
            (
                "xrdp-listening",
                "port-taken",
                Some(("rdp-listener", "port-taken")),
            ),
            (
                "xrdp-listening",
                "not-running",
                Some(("rdp-listener", "not-listening")),
            ),
            (
                "xrdp-listening",
                "not-listening",
                Some(("rdp-listener", "not-listening")),
            ),
            (
                "xrdp-security-layer",
                "negotiate",
                Some(("security-layer", "negotiate")),
            ),
            (
                "xrdp-security-layer",
                "tls",
                Some(("security-layer", "tls")),
            ),
            (
                "xrdp-security-layer",
                "rdp-only",
                Some(("security-layer", "rdp-only")),
            ),
            ("xrdp-security-layer", "unrecognised", None),
            ("xrdp-certificate", "ok", Some(("rdp-certificate", "valid"))),
            (
                "xrdp-certificate",
                "key-mismatch",
                Some(("rdp-certificate", "expired-or-unreadable")),
            ),
            (
                "xrdp-certificate",
                "expired",
                Some(("rdp-certificate", "expired-or-unreadable")),
            ),
            (
                "xrdp-certificate",
                "weak-key",
                Some(("rdp-certificate", "expired-or-unreadable")),
            ),
            ("xrdp-firewall", "open", Some(("firewall-rule", "enabled"))),
            (
                "xrdp-firewall",
                "blocked",
                Some(("firewall-rule", "disabled")),
            ),
            ("xrdp-firewall", "blocked-conditionally", None),
        ];
        for (check, outcome, expected) in cases {
            let evidence = check_evidence(check, false, &host_report(check, outcome));
            let evidence = evidence.as_ref().map(|(id, o)| (*id, o.as_str()));
            assert_eq!(evidence, expected, "{check} {outcome}");
            if let Some((model_check, model_outcome)) = evidence {
                // The engine takes it: a check and an outcome the model has.
                let mut session = Session::new(1);
                session
                    .record_check(
                        &local.compiled,
                        model_check,
                        model_outcome.to_owned().into(),
                    )
                    .unwrap();
            }
        }
        // A run of the xrdp check is what the engine waits for when it asks for the model's.
        let run = employee_run(
            "xrdp-listening",
            host_report("xrdp-listening", "other-port"),
        );
        assert_eq!(
            catch_up_check("rdp-listener", &[run]),
            Some(CheckResult::Outcome("other-port".to_owned()))
        );
    }

    /// A finished run of `check_id` on the employee's agent.
    fn employee_run(check_id: &str, report: CheckReport) -> CheckRunView {
        CheckRunView {
            check_id: check_id.to_owned(),
            run_by_server: false,
            agent_hostname: Some("PC-EMPLOYEE".to_owned()),
            status: CheckStatus::Succeeded,
            report: Some(report),
            problem: None,
        }
    }

    /// The employee's `clock-compare` run, with the host's CredSSP answer if it gave one.
    fn clock_compare(credssp_version: Option<u32>) -> CheckRunView {
        let report = serde_json::json!({
            "target": {"host": "pc-042", "port": 3389}, "resolution_error": null, "connect": [],
            "address": null, "negotiation": [], "tls": null,
            "credssp": credssp_version.map(|version| serde_json::json!({
                "version": version, "error_code": null, "error_name": null, "token": null
            })),
            "host": null, "clock": null, "tolerance_s": 300, "verdict": "could-not-read",
            "unreadable": null, "explanation": "", "elapsed_ms": 1.0
        });
        employee_run(
            "clock-compare",
            CheckReport::ClockCompare(Box::new(serde_json::from_value(report).unwrap())),
        )
    }

    /// The employee's `credssp-policy` run on Windows.
    fn employee_policy(allow_encryption_oracle: Option<u32>, tspkg: &str) -> CheckRunView {
        let report = serde_json::json!({
            "check": "credssp-policy", "outcome": null, "confidence": "low",
            "observed": {"allow_encryption_oracle": allow_encryption_oracle, "tspkg_version": tspkg},
            "findings": [], "error": null, "elapsed_ms": 1.0
        });
        employee_run(
            "credssp-policy",
            CheckReport::Host(Box::new(serde_json::from_value(report).unwrap())),
        )
    }

    #[test]
    fn the_two_computers_credssp_is_judged_from_the_hosts_version_and_the_employees_policy() {
        let outcome = |runs: &[CheckRunView]| catch_up_check("credssp-policy", runs);
        let said = |verdict: &str| Some(CheckResult::Outcome(verdict.to_owned()));
        let modern = "10.0.22631.4890 (WinBuild.160101.0800)";
        let old = "6.3.9600.18946 (winblue_ltsb.180206-0600)";
        // A host without the 2018 updates (TSRequest 3 or 4) against an up-to-date client.
        assert_eq!(outcome(&[clock_compare(Some(4))]), said("mismatch"));
        assert_eq!(
            outcome(&[clock_compare(Some(3)), employee_policy(None, modern)]),
            said("mismatch")
        );
        assert_eq!(
            outcome(&[clock_compare(Some(4)), employee_policy(Some(0), old)]),
            said("mismatch"),
            "the policy exists only where the updates are"
        );
        // A Vulnerable client connects to anything; an updated host suits an updated client.
        assert_eq!(
            outcome(&[clock_compare(Some(4)), employee_policy(Some(2), modern)]),
            said("consistent")
        );
        assert_eq!(
            outcome(&[clock_compare(Some(6)), employee_policy(None, modern)]),
            said("consistent")
        );
        // An old client that may lack the updates, or a host that did not answer CredSSP:
        // nothing to tell.
        assert_eq!(
            outcome(&[clock_compare(Some(4)), employee_policy(None, old)]),
            Some(CheckResult::NotRun)
        );
        assert_eq!(outcome(&[clock_compare(None)]), Some(CheckResult::NotRun));
        assert_eq!(outcome(&[]), Some(CheckResult::NotRun));
        // Either run still going: wait for it.
        let mut running = clock_compare(None);
        running.status = CheckStatus::Running;
        running.report = None;
        assert_eq!(outcome(&[running, employee_policy(None, modern)]), None);
    }

    #[test]
    fn windows_builds_are_read_from_file_versions() {
        assert_eq!(
            windows_build("10.0.19041.3636 (WinBuild.160101.0800)"),
            Some(19041)
        );
        assert_eq!(windows_build("6.1.7601.24059"), Some(7601));
        assert_eq!(windows_build("garbage"), None);
    }

    #[test]
    fn the_employees_vpn_tunnel_report_is_the_models_check() {
        let local = shipped();
        for outcome in ["no-vpn", "stable", "drops"] {
            let report = host_report("vpn-tunnel-events", outcome);
            let evidence = check_evidence("vpn-tunnel-events", false, &report);
            assert_eq!(
                evidence,
                Some(("vpn-tunnel-events", outcome.to_owned())),
                "{outcome}"
            );
            let mut session = Session::new(1);
            session
                .record_check(
                    &local.compiled,
                    "vpn-tunnel-events",
                    outcome.to_owned().into(),
                )
                .unwrap();
        }
    }
}
