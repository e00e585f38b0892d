//! Routes for fixes: ask for one on a case (the portal, scripts), and approve a downgrade
//! (helpdesk accounts only).

use std::collections::BTreeMap;

use agent_client::wire::FixSpec;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::cases::parse_case_id;
use super::error::{ApiError, ApiJson};
use crate::fixes::{
    approve, queue_fix, undo, ApprovalOrder, ApprovalView, FixError, FixOrder, RollbackError,
};
use crate::helpdesk::Helpdesk;
use crate::startup::AppState;

/// `POST /api/v1/cases/{id}/fixes`: the fix's catalogue id and its parameters (as
/// `rdp-doctor-agent fix run ID --param KEY=VALUE` takes them), and optionally the agent, a
/// dry run, and for a downgrade the helpdesk's approval.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixBody {
    pub fix: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub agent_id: Option<Uuid>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub approval_id: Option<Uuid>,
}

#[derive(Debug, Serialize)]
pub struct FixQueued {
    pub job_id: Uuid,
    pub status: &'static str,
}

impl From<FixError> for ApiError {
    fn from(error: FixError) -> Self {
        let invalid = |field: &str, e: &FixError| ApiError::Invalid {
            field: field.to_owned(),
            message: e.to_string(),
        };
        match error {
            FixError::UnknownCase => ApiError::NotFound("case"),
            FixError::UnknownApproval => invalid("approval_id", &error),
            FixError::UnknownAgent(_) => invalid("agent_id", &error),
            FixError::NoAgent | FixError::NoAgentOnHost(_) => ApiError::Conflict(error.to_string()),
            FixError::ApprovalRequired(_) => ApiError::Forbidden {
                code: "approval_required",
                message: error.to_string(),
            },
            FixError::ApprovalMismatch(_)
            | FixError::ApprovalExpired(_)
            | FixError::ApprovalUsed => ApiError::Forbidden {
                code: "approval_not_valid",
                message: error.to_string(),
            },
            FixError::NotADowngrade(_) | FixError::UnknownFix(_) => invalid("fix", &error),
            FixError::BadDuration => invalid("valid_for_secs", &error),
            FixError::BadReason => invalid("reason", &error),
            FixError::Database(e) => ApiError::Database(e),
        }
    }
}

/// Queues a fix for the case; the case's events report it as the agent answers.
pub async fn post_fix(
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    ApiJson(body): ApiJson<FixBody>,
) -> Result<(StatusCode, Json<FixQueued>), ApiError> {
    let case_id = parse_case_id(&case_id)?;
    let fix =
        FixSpec::from_params(&body.fix, &body.params).map_err(|message| ApiError::Invalid {
            field: "fix".to_owned(),
            message,
        })?;
    let order = FixOrder {
        fix,
        agent_id: body.agent_id,
        dry_run: body.dry_run,
        approval_id: body.approval_id,
        requested_by: "employee".to_owned(),
    };
    let job_id = queue_fix(&state.pool, &state.settings, case_id, order).await?;
    state.dispatcher.wake();
    Ok((
        StatusCode::ACCEPTED,
        Json(FixQueued {
            job_id,
            status: "queued",
        }),
    ))
}

impl From<RollbackError> for ApiError {
    fn from(error: RollbackError) -> Self {
        match error {
            RollbackError::UnknownJob(_) => ApiError::NotFound("fix job"),
            RollbackError::NothingInEffect(m) | RollbackError::Refused(m) => ApiError::Conflict(m),
            RollbackError::AgentUnavailable(m) => ApiError::Unavailable(m),
            RollbackError::Database(e) => ApiError::Database(e),
        }
    }
}

/// `POST /api/v1/cases/{id}/fixes/{job_id}/rollback`: undoes what a fix changed, from the
/// snapshot the agent took before changing anything; answers with the fix job as it is now.
pub async fn post_rollback(
    State(state): State<AppState>,
    Path((case_id, job_id)): Path<(String, String)>,
) -> Result<Json<app::case::FixRunView>, ApiError> {
    let case_id = parse_case_id(&case_id)?;
    let job_id = Uuid::parse_str(&job_id).map_err(|_| ApiError::NotFound("fix job"))?;
    let run = undo(&state.pool, &state.dispatcher, case_id, job_id).await?;
    Ok(Json(run))
}

/// `POST /api/v1/cases/{id}/approvals`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBody {
    pub agent_id: Uuid,
    pub fix: String,
    /// How long the downgrade may stay; the agent reverts it then.
    pub valid_for_secs: i64,
    pub reason: String,
}

/// A helpdesk account approves one downgrade on one agent for this case.
pub async fn post_approval(
    State(state): State<AppState>,
    helpdesk: Helpdesk,
    Path(case_id): Path<String>,
    ApiJson(body): ApiJson<ApprovalBody>,
) -> Result<(StatusCode, Json<ApprovalView>), ApiError> {
    let case_id = parse_case_id(&case_id)?;
    let order = ApprovalOrder {
        agent_id: body.agent_id,
        fix: body.fix,
        valid_for_secs: body.valid_for_secs,
        reason: body.reason,
    };
    let view = approve(&state.pool, &state.server_key, case_id, &helpdesk, order).await?;
    Ok((StatusCode::CREATED, Json(view)))
}
