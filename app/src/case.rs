//! A case as the portal shows it, the form that opens one, and how that form is validated.
//!
//! These types travel between the server and the browser, and the validation runs on both
//! sides from this one definition.

use agent_client::target::{CheckTarget, TargetError};
use agent_client::wire::{ActionState, CheckReport, PlannedChange};
use serde::{Deserialize, Serialize};

/// Longest text accepted in any single form field.
pub const MAX_FIELD_LEN: usize = 253;

/// What the employee typed, kept verbatim so a refused form can be shown again as it was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseForm {
    pub host: String,
    #[serde(default)]
    pub port: String,
    #[serde(default)]
    pub error_code: String,
    #[serde(default)]
    pub extended_code: String,
}

/// A validated request to open a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCase {
    pub target: CheckTarget,
    pub error_code: Option<u32>,
    pub extended_code: Option<u32>,
}

/// A refused field: which one, and what to tell the employee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl CaseForm {
    /// Validates the form. The first problem found is reported, field by field in the order
    /// the form shows them.
    pub fn validate(&self) -> Result<NewCase, FieldError> {
        let too_long = |field: &str, value: &str| {
            (value.chars().count() > MAX_FIELD_LEN).then(|| FieldError {
                field: field.to_owned(),
                message: format!("This field is too long (at most {MAX_FIELD_LEN} characters)."),
            })
        };
        for (field, value) in [
            ("error_code", &self.error_code),
            ("extended_code", &self.extended_code),
            ("host", &self.host),
            ("port", &self.port),
        ] {
            if let Some(error) = too_long(field, value) {
                return Err(error);
            }
        }
        let error_code = parse_code(&self.error_code).map_err(|message| FieldError {
            field: "error_code".into(),
            message,
        })?;
        let extended_code = parse_code(&self.extended_code).map_err(|message| FieldError {
            field: "extended_code".into(),
            message,
        })?;
        let target =
            CheckTarget::from_fields(&self.host, &self.port).map_err(|e: TargetError| {
                FieldError {
                    field: e.field().to_owned(),
                    message: e.to_string(),
                }
            })?;
        Ok(NewCase {
            target,
            error_code,
            extended_code,
        })
    }
}

/// Reads a code as the Remote Desktop dialog prints it: `0x904` (hex) or `2308` (decimal).
/// Blank means "not given".
pub fn parse_code(raw: &str) -> Result<Option<u32>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let parsed = match raw.strip_prefix("0x").or_else(|| raw.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => raw.parse::<u32>(),
    };
    parsed.map(Some).map_err(|_| {
        format!("\"{raw}\" is not a code as Remote Desktop shows it: copy it from the dialog, e.g. 0x904 or 0x7.")
    })
}

/// Formats a code the way the dialog shows it.
pub fn format_code(code: u32) -> String {
    format!("0x{code:x}")
}

/// Where a check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Queued,
    /// Sent to the agent; waiting for its report.
    Sent,
    Running,
    Succeeded,
    Failed,
    AgentOffline,
    NoAgent,
    TimedOut,
    Cancelled,
}

impl CheckStatus {
    /// No further change will come for this run.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            CheckStatus::Queued | CheckStatus::Sent | CheckStatus::Running
        )
    }
}

/// One check run for a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRunView {
    pub check_id: String,
    /// Run by the server itself rather than by an agent.
    pub run_by_server: bool,
    pub status: CheckStatus,
    /// The host name of the agent that ran (or was to run) the check.
    pub agent_hostname: Option<String>,
    pub report: Option<CheckReport>,
    /// Why there is no report, for the employee.
    pub problem: Option<String>,
}

/// One fix asked for a case, and what the agent did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixRunView {
    pub job_id: String,
    /// The fix's catalogue id, e.g. `xrdp-start`.
    pub fix_id: String,
    /// `safe`, `change` or `downgrade`.
    pub tier: String,
    pub dry_run: bool,
    /// `employee`, or the helpdesk account that asked for it.
    pub requested_by: String,
    /// Where the job stands (`succeeded` once the agent applied it or found it in place).
    pub status: CheckStatus,
    pub agent_hostname: Option<String>,
    /// What the agent did, from its journal; newer news (rolled back, reverted when the
    /// approval expired) replaces older.
    pub action: Option<FixActionView>,
    /// Why the fix did not happen or failed, for the employee.
    pub problem: Option<String>,
}

/// The part of an agent's journal record a case shows (the snapshot stays on the host).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixActionView {
    pub action_id: String,
    pub state: ActionState,
    /// What changed (or, for a dry run, would change).
    pub plan: Vec<PlannedChange>,
    /// What the verification re-read.
    pub verification: Option<String>,
    /// When a downgrade is reverted by the agent itself (seconds since the Unix epoch).
    pub revert_at: Option<i64>,
    /// The agent answered a retried request with its first record: applied once.
    pub repeated: bool,
}

impl FixActionView {
    /// The state's name as the API spells it (`applied`, `rolled-back`, ...).
    pub fn state_name(&self) -> String {
        action_state_name(&self.state)
    }

    /// Whether "undo" means anything: something of the fix is (or may be) in place.
    pub fn can_be_undone(&self) -> bool {
        self.state.in_effect()
    }
}

/// An agent action state's name as the API spells it (`applied`, `rolled-back`, ...).
pub fn action_state_name(state: &ActionState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v["state"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A case as the portal shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseView {
    pub id: String,
    /// RFC 3339.
    pub created_at: String,
    pub error_code: Option<u32>,
    pub extended_code: Option<u32>,
    pub target_host: String,
    pub target_port: u16,
    pub checks: Vec<CheckRunView>,
    /// Fixes asked for the case, oldest first.
    #[serde(default)]
    pub fixes: Vec<FixRunView>,
    /// What the diagnosis engine makes of the case so far.
    pub diagnosis: Option<DiagnosisSummary>,
}

/// The diagnosis as the employee sees it: likely causes, the next question, what to try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosisSummary {
    pub session_id: String,
    /// The most likely causes, most likely first.
    pub causes: Vec<LikelyCause>,
    /// The question to ask the employee next, if the engine wants one answered.
    pub question: Option<PendingQuestion>,
    /// The engine has enough to act on.
    pub stop_asking: bool,
    /// The engine waits for a check still running before it asks anything.
    pub waiting_for_checks: bool,
    /// Fixes in the order to try them (most likely to work per minute spent first).
    pub fixes: Vec<SuggestedFix>,
    pub closed: bool,
    /// The evidence so far, so that the browser can take the next step itself
    /// ([`crate::diagnosis::preview_answer`]).
    #[serde(default)]
    pub session: Option<engine::Session>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LikelyCause {
    pub id: String,
    pub name: String,
    pub probability: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingQuestion {
    pub id: String,
    pub text: String,
    /// The answer is a code typed from the dialog rather than a choice.
    pub typed: bool,
    pub answers: Vec<AnswerChoice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerChoice {
    pub id: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuggestedFix {
    pub id: String,
    pub name: String,
    /// `safe`, `change` or `downgrade` (weakens security: needs the helpdesk's approval).
    pub tier: String,
    pub probability: f64,
    /// The agent fix that performs it, when an agent can (the portal offers to apply it).
    #[serde(default)]
    pub agent_fix: Option<String>,
}

impl CaseView {
    /// Whether every check has reached a final state and the diagnosis has taken them in.
    pub fn is_settled(&self) -> bool {
        self.checks.iter().all(|c| c.status.is_final())
            && self.fixes.iter().all(|f| f.status.is_final())
            && !self
                .diagnosis
                .as_ref()
                .is_some_and(|d| d.waiting_for_checks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(host: &str, port: &str, code: &str) -> CaseForm {
        CaseForm {
            host: host.into(),
            port: port.into(),
            error_code: code.into(),
            extended_code: String::new(),
        }
    }

    #[test]
    fn a_typical_form_validates() {
        let case = form("pc-0423", "", "0x904").validate().unwrap();
        assert_eq!(case.target.port, 3389);
        assert_eq!(case.error_code, Some(0x904));
        assert_eq!(case.extended_code, None);
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(form("", "", "").validate().unwrap_err().field, "host");
        assert_eq!(
            form("pc", "70000", "").validate().unwrap_err().field,
            "port"
        );
        assert_eq!(
            form("pc", "", "0xZZ").validate().unwrap_err().field,
            "error_code"
        );
        let long = "a".repeat(MAX_FIELD_LEN + 1);
        let error = form("pc", "", &long).validate().unwrap_err();
        assert_eq!(error.field, "error_code");
        assert!(error.message.contains("too long"));
    }

    #[test]
    fn codes_read_as_the_dialog_prints_them() {
        assert_eq!(parse_code("0x904"), Ok(Some(2308)));
        assert_eq!(parse_code("2308"), Ok(Some(2308)));
        assert_eq!(parse_code(" "), Ok(None));
        assert!(parse_code("-1").is_err());
        assert_eq!(format_code(2308), "0x904");
    }
}
