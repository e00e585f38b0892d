//! Routes for diagnosis sessions (used by the portal and by scripts): start one for a case, read
//! its state and history, record answers, check results, fix and article outcomes, close it;
//! and the helpdesk's static article ranking. Bad input is a 4xx that changes nothing.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use engine::{CheckResult, SessionError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{ApiError, ApiJson};
use crate::diagnosis::{self, Action, ArticleRank, DiagnosisError, DiagnosisView, EventView};
use crate::startup::AppState;

impl From<DiagnosisError> for ApiError {
    fn from(error: DiagnosisError) -> Self {
        let invalid = |field: &str, error: &SessionError| ApiError::Invalid {
            field: field.to_owned(),
            message: error.to_string(),
        };
        match error {
            DiagnosisError::CaseNotFound => ApiError::NotFound("case"),
            DiagnosisError::SessionNotFound => ApiError::NotFound("diagnosis session"),
            e @ DiagnosisError::AlreadyOpen { .. } => ApiError::Conflict(e.to_string()),
            DiagnosisError::NothingShown => ApiError::Invalid {
                field: "shown".to_owned(),
                message: DiagnosisError::NothingShown.to_string(),
            },
            DiagnosisError::Refused(e) => match &e {
                SessionError::UnknownQuestion(_) => invalid("question", &e),
                SessionError::UnknownAnswer { .. } | SessionError::NotACode { .. } => {
                    invalid("answer", &e)
                }
                SessionError::UnknownCheck(_) => invalid("check", &e),
                SessionError::UnknownOutcome { .. } => invalid("outcome", &e),
                SessionError::UnknownFix(_) => invalid("fix", &e),
                SessionError::UnknownArticle(_) => invalid("article", &e),
                SessionError::NotShown(_) => invalid("worked", &e),
                SessionError::UnknownCause(_) => invalid("cause", &e),
                SessionError::AlreadyRecorded(_) | SessionError::Closed => {
                    ApiError::Conflict(e.to_string())
                }
                // Learning from an open session is a bug here, not the client's fault.
                SessionError::NotClosed => ApiError::Internal(anyhow::Error::new(e)),
            },
            DiagnosisError::Database(e) => ApiError::Database(e),
            DiagnosisError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// Unparsable ids cannot name anything: they are 404s, like unknown ones.
fn parse_id(raw: &str, what: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(what))
}

/// `POST /api/v1/cases/{id}/diagnosis`: 201 with the new session's state.
pub async fn start_diagnosis(
    State(state): State<AppState>,
    Path(case_id): Path<String>,
) -> Result<(StatusCode, Json<DiagnosisView>), ApiError> {
    let case_id = parse_id(&case_id, "case")?;
    let view = diagnosis::start(&state.pool, &state.diagnosis, case_id).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /api/v1/diagnosis/{session_id}`
pub async fn get_diagnosis(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DiagnosisView>, ApiError> {
    let id = parse_id(&id, "diagnosis session")?;
    Ok(Json(
        diagnosis::load(&state.pool, &state.diagnosis, id).await?,
    ))
}

/// `GET /api/v1/diagnosis/{session_id}/events`: the session's history, oldest first.
pub async fn get_diagnosis_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<EventView>>, ApiError> {
    let id = parse_id(&id, "diagnosis session")?;
    Ok(Json(diagnosis::history(&state.pool, id).await?))
}

async fn apply(
    state: &AppState,
    id: &str,
    action: Action,
) -> Result<Json<DiagnosisView>, ApiError> {
    let id = parse_id(id, "diagnosis session")?;
    Ok(Json(
        diagnosis::apply(&state.pool, &state.diagnosis, id, &action).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    pub question: String,
    /// An answer id, or for a code question the code as typed (`0x904`, `2308`).
    pub answer: String,
}

/// `POST /api/v1/diagnosis/{session_id}/answers`
pub async fn post_answer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AnswerBody>,
) -> Result<Json<DiagnosisView>, ApiError> {
    let action = Action::Answer {
        question: body.question,
        answer: body.answer,
    };
    apply(&state, &id, action).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    pub check: String,
    /// An outcome id of the check, or `not_run`.
    pub outcome: CheckResult,
}

/// `POST /api/v1/diagnosis/{session_id}/checks`
pub async fn post_check(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CheckBody>,
) -> Result<Json<DiagnosisView>, ApiError> {
    let action = Action::Check {
        check: body.check,
        result: body.outcome,
    };
    apply(&state, &id, action).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixBody {
    pub fix: String,
    pub resolved: bool,
}

/// `POST /api/v1/diagnosis/{session_id}/fixes`
pub async fn post_fix(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<FixBody>,
) -> Result<Json<DiagnosisView>, ApiError> {
    let action = Action::Fix {
        fix: body.fix,
        resolved: body.resolved,
    };
    apply(&state, &id, action).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArticlesBody {
    /// The articles shown, top first.
    pub shown: Vec<String>,
    /// The one that resolved the fault, if any.
    #[serde(default)]
    pub worked: Option<String>,
}

/// `POST /api/v1/diagnosis/{session_id}/articles`
pub async fn post_articles(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ArticlesBody>,
) -> Result<Json<DiagnosisView>, ApiError> {
    let action = Action::Articles {
        shown: body.shown,
        worked: body.worked,
    };
    apply(&state, &id, action).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    /// The cause a technician confirmed; without it the engine learns from its posterior.
    #[serde(default)]
    pub confirmed_cause: Option<String>,
}

/// `POST /api/v1/diagnosis/{session_id}/close`
pub async fn close_diagnosis(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CloseBody>,
) -> Result<Json<DiagnosisView>, ApiError> {
    let action = Action::Close {
        confirmed_cause: body.confirmed_cause,
    };
    apply(&state, &id, action).await
}

#[derive(Debug, Deserialize)]
pub struct RankingQuery {
    /// Rank for this cause only; without it, outcomes summed over causes.
    pub cause: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ArticleRanking {
    pub cause: Option<String>,
    /// Best first by the lower bound of the 95% Wilson interval of the resolve rate.
    pub articles: Vec<ArticleRank>,
}

/// `GET /api/v1/articles/ranking[?cause=ID]`: the helpdesk's static view (helpdesk token).
pub async fn get_article_ranking(
    _helpdesk: crate::helpdesk::Helpdesk,
    State(state): State<AppState>,
    Query(query): Query<RankingQuery>,
) -> Result<Json<ArticleRanking>, ApiError> {
    let articles =
        diagnosis::article_ranking(&state.pool, &state.diagnosis, query.cause.as_deref()).await?;
    Ok(Json(ArticleRanking {
        cause: query.cause,
        articles,
    }))
}
