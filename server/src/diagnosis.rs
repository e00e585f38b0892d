//! Diagnosis sessions tied to cases, and learning from them.
//!
//! A session is the engine's [`Session`] stored as JSON. Every change runs in one transaction
//! that locks the session row (`FOR UPDATE`), applies the engine call, and stores the session
//! with one history row; when the engine refuses (unknown id, a value the question lacks, a
//! closed session) the transaction is dropped and nothing changes. Closing a session adds what
//! it taught (the engine's [`LearnedCounts`]) to the counts tables in the same transaction;
//! afterwards the served model is rebuilt from the shipped model plus every count so far.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use engine::articles::cascade_attribution;
use engine::learning::RunCounts;
use engine::session::Attempt;
use engine::{
    AnswerInput, CheckLocation, CheckResult, CompiledModel, FixTier, LearnedCounts, Model,
    OutcomeCounts, RankedArticle, Session, SessionError, SessionState, StepKind,
};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

/// The intake questions a case's stored dialog codes answer when its session starts.
const ERROR_CODE_QUESTION: &str = "error_code";
const EXTENDED_CODE_QUESTION: &str = "extended_code";

/// The model the server diagnoses with: the shipped expert model plus the learned counts.
/// Cheap to clone; every clone sees the same, rebuilt, model.
#[derive(Debug, Clone)]
pub struct DiagnosisModel {
    /// The expert model as shipped; learning is always applied to it, never to a learned model.
    expert: Arc<Model>,
    current: Arc<RwLock<Arc<CompiledModel>>>,
    /// Serialises rebuilds, so that the last model stored is built from the last read of the
    /// counts.
    rebuilding: Arc<tokio::sync::Mutex<()>>,
}

impl DiagnosisModel {
    /// The shipped model, before any learned counts are read: call [`DiagnosisModel::reload`].
    pub fn shipped() -> DiagnosisModel {
        DiagnosisModel {
            expert: Arc::new(Model::shipped()),
            current: Arc::new(RwLock::new(Arc::new(CompiledModel::shipped()))),
            rebuilding: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The model to diagnose with now.
    pub fn current(&self) -> Arc<CompiledModel> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The expert model's `model_version`.
    pub fn version(&self) -> &str {
        &self.expert.model_version
    }

    /// Rebuilds the served model from the expert model and the counts stored so far.
    pub async fn reload(&self, pool: &PgPool) -> anyhow::Result<()> {
        let _one_at_a_time = self.rebuilding.lock().await;
        let counts = load_learned_counts(pool)
            .await
            .context("Failed to read the learned counts")?;
        let compiled =
            CompiledModel::new(self.expert.with_learned(&counts)).map_err(|problems| {
                let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
                anyhow!(
                    "the model with learned counts is invalid: {}",
                    problems.join("; ")
                )
            })?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(compiled);
        Ok(())
    }
}

/// Why a diagnosis request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DiagnosisError {
    #[error("no such case")]
    CaseNotFound,
    #[error("no such diagnosis session")]
    SessionNotFound,
    /// `session_id` is None when the open session was closed while this one was refused.
    #[error(
        "case {case_id} already has an open diagnosis session{}; close it before starting another",
        .session_id.map(|id| format!(" ({id})")).unwrap_or_default()
    )]
    AlreadyOpen {
        case_id: Uuid,
        session_id: Option<Uuid>,
    },
    /// The engine refused the input; nothing was stored.
    #[error(transparent)]
    Refused(#[from] SessionError),
    /// The articles request listed none.
    #[error("list at least one article in `shown`")]
    NothingShown,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// One change to a session.
#[derive(Debug, Clone)]
pub enum Action {
    /// An answer as given (for a code question, the code as typed).
    Answer { question: String, answer: String },
    /// A check's outcome, or that it could not run.
    Check { check: String, result: CheckResult },
    /// Whether a fix resolved the fault.
    Fix { fix: String, resolved: bool },
    /// Articles shown top first, and the one that worked if any (cascade attribution).
    Articles {
        shown: Vec<String>,
        worked: Option<String>,
    },
    /// The end of the session, with the cause a technician confirmed if any.
    Close { confirmed_cause: Option<String> },
}

impl Action {
    fn apply(&self, session: &mut Session, model: &CompiledModel) -> Result<(), DiagnosisError> {
        match self {
            Action::Answer { question, answer } => session.answer(model, question, answer)?,
            Action::Check { check, result } => {
                session.record_check(model, check, result.clone())?
            }
            Action::Fix { fix, resolved } => session.record_fix(model, fix, *resolved)?,
            Action::Articles { shown, worked } => {
                if shown.is_empty() {
                    return Err(DiagnosisError::NothingShown);
                }
                let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
                session.record_articles(model, &shown, worked.as_deref())?;
            }
            Action::Close { confirmed_cause } => {
                session.close(model, confirmed_cause.as_deref())?
            }
        }
        Ok(())
    }

    /// The history row: kind, subject and detail, as recorded after the change.
    fn event(&self, session: &Session) -> (&'static str, Option<String>, serde_json::Value) {
        match self {
            Action::Answer { question, answer } => (
                "answer",
                Some(question.clone()),
                serde_json::json!({"answer": answer, "recorded": session.answers().get(question)}),
            ),
            Action::Check { check, result } => (
                "check",
                Some(check.clone()),
                serde_json::json!({"outcome": String::from(result.clone())}),
            ),
            Action::Fix { fix, resolved } => (
                "fix",
                Some(fix.clone()),
                serde_json::json!({"resolved": resolved}),
            ),
            Action::Articles { shown, worked } => {
                let shown_refs: Vec<&str> = shown.iter().map(String::as_str).collect();
                // What cascade attribution made of it: the articles counted as tried, in order.
                let attributed: Vec<serde_json::Value> =
                    cascade_attribution(&shown_refs, worked.as_deref())
                        .into_iter()
                        .map(|(id, resolved)| serde_json::json!({"id": id, "resolved": resolved}))
                        .collect();
                (
                    "articles",
                    None,
                    serde_json::json!({"shown": shown, "worked": worked, "attributed": attributed}),
                )
            }
            Action::Close { confirmed_cause } => (
                "closed",
                confirmed_cause.clone(),
                serde_json::json!({"confirmed_cause": confirmed_cause}),
            ),
        }
    }
}

/// A session as the API shows it: the engine's state with names and texts from the model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiagnosisView {
    pub id: Uuid,
    pub case_id: Uuid,
    pub model_version: String,
    /// Seeds the article exploration; the portal passes it to its own copy of the engine.
    pub seed: u64,
    pub closed: bool,
    pub confirmed_cause: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Every cause, most likely first.
    pub causes: Vec<CauseView>,
    /// The question or check to ask next; None once the engine says to stop asking.
    pub next_step: Option<NextStepView>,
    pub stop_asking: bool,
    /// Fixes in the order to try them; escalation to the helpdesk comes after the last.
    pub fixes: Vec<FixView>,
    /// Articles not yet tried, best first.
    pub articles: Vec<RankedArticle>,
    /// Expected seconds to repair when following `fixes` then escalating.
    pub expected_cost_of_repair: f64,
    /// What has been recorded so far.
    pub evidence: EvidenceView,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CauseView {
    pub id: String,
    pub name: String,
    pub probability: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NextStepView {
    pub id: String,
    #[serde(flatten)]
    pub detail: StepDetail,
    pub information_gain_bits: f64,
    pub expected_cost_after: f64,
}

/// What to show for the next step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepDetail {
    /// Ask the employee `text`; they answer with one of `answers` (or type a code).
    Question {
        text: String,
        input: AnswerInput,
        answers: Vec<ValueView>,
    },
    /// Run a check; report one of `outcomes`, or `not_run`.
    Check {
        name: String,
        runs_on: CheckLocation,
        outcomes: Vec<ValueView>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValueView {
    pub id: String,
    pub label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FixView {
    pub id: String,
    pub name: String,
    pub tier: FixTier,
    pub action: Option<String>,
    pub probability: f64,
    pub cost: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvidenceView {
    /// Question id → recorded answer id.
    pub answers: BTreeMap<String, String>,
    /// Check id → outcome id or `not_run`.
    pub checks: BTreeMap<String, CheckResult>,
    pub fixes: Vec<Attempt>,
    pub articles: Vec<Attempt>,
}

/// One row of a session's history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventView {
    pub kind: String,
    pub subject: Option<String>,
    pub detail: serde_json::Value,
    pub top_cause: String,
    pub top_probability: f64,
    pub at: DateTime<Utc>,
}

/// An article in the helpdesk's static ranking.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArticleRank {
    pub id: String,
    pub title: String,
    /// Weight of readers it helped (fractional after uncertain closes).
    pub resolved: f64,
    /// Weight of readers who tried it.
    pub tried: f64,
    /// Lower bound of the 95% Wilson interval of its resolve rate, computed in SQL.
    pub wilson_lower_bound: f64,
}

/// The session row, locked or not.
struct SessionRow {
    case_id: Uuid,
    session: Session,
    seed: i64,
    model_version: String,
    confirmed_cause: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
}

type SessionTuple = (
    Uuid,
    Json<Session>,
    i64,
    String,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

impl From<SessionTuple> for SessionRow {
    fn from(row: SessionTuple) -> Self {
        let (case_id, session, seed, model_version, confirmed_cause, created, updated, closed) =
            row;
        SessionRow {
            case_id,
            session: session.0,
            seed,
            model_version,
            confirmed_cause,
            created_at: created,
            updated_at: updated,
            closed_at: closed,
        }
    }
}

const SESSION_COLUMNS: &str = "case_id, session, seed, model_version, confirmed_cause, \
                               created_at, updated_at, closed_at";

async fn fetch_session(
    conn: &mut PgConnection,
    id: Uuid,
    for_update: bool,
) -> sqlx::Result<Option<SessionRow>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let row: Option<SessionTuple> = sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM diagnosis_sessions WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(SessionRow::from))
}

/// A 53-bit seed: exact in JSON for any client.
fn new_seed() -> u64 {
    Uuid::new_v4().as_u64_pair().0 >> 11
}

/// Starts a session for a case. The dialog codes stored with the case answer the intake
/// questions at once, so they shape the very first step.
pub async fn start(
    pool: &PgPool,
    model: &DiagnosisModel,
    case_id: Uuid,
) -> Result<DiagnosisView, DiagnosisError> {
    let compiled = model.current();
    let codes: Option<(Option<i64>, Option<i64>)> =
        sqlx::query_as("SELECT error_code, extended_code FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_optional(pool)
            .await?;
    let (error_code, extended_code) = codes.ok_or(DiagnosisError::CaseNotFound)?;
    let seed = new_seed();
    let mut session = Session::new(seed);
    let mut prefilled = BTreeMap::new();
    for (question, code) in [
        (ERROR_CODE_QUESTION, error_code),
        (EXTENDED_CODE_QUESTION, extended_code),
    ] {
        let Some(code) = code else { continue };
        let typed = format!("0x{code:x}");
        match session.answer(&compiled, question, &typed) {
            Ok(()) => {
                prefilled.insert(question, typed);
            }
            // A model without this intake question simply does not learn it from the case.
            Err(e) => tracing::warn!(error = %e, "a stored dialog code was not used"),
        }
    }
    let id = Uuid::new_v4();
    let state = session_state(&compiled, &session, id)?;
    let mut tx = pool.begin().await?;
    let inserted: sqlx::Result<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "INSERT INTO diagnosis_sessions (id, case_id, session, seed, model_version) \
         VALUES ($1, $2, $3, $4, $5) RETURNING created_at, updated_at",
    )
    .bind(id)
    .bind(case_id)
    .bind(Json(&session))
    .bind(i64::try_from(seed).context("seed out of range")?)
    .bind(model.version())
    .fetch_one(&mut *tx)
    .await;
    let (created_at, updated_at) = match inserted {
        Ok(times) => times,
        Err(sqlx::Error::Database(e))
            if e.constraint() == Some("diagnosis_sessions_one_open_per_case") =>
        {
            drop(tx);
            let open: Option<Uuid> = sqlx::query_scalar(
                "SELECT id FROM diagnosis_sessions WHERE case_id = $1 AND status = 'open'",
            )
            .bind(case_id)
            .fetch_optional(pool)
            .await?;
            return Err(DiagnosisError::AlreadyOpen {
                case_id,
                session_id: open,
            });
        }
        Err(sqlx::Error::Database(e))
            if e.constraint() == Some("diagnosis_sessions_case_id_fkey") =>
        {
            return Err(DiagnosisError::CaseNotFound)
        }
        Err(e) => return Err(e.into()),
    };
    insert_event(
        &mut tx,
        id,
        "started",
        None,
        &serde_json::json!({"model_version": model.version(), "seed": seed, "prefilled": prefilled}),
        &state,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(case.id = %case_id, diagnosis.id = %id, "diagnosis started");
    let row = SessionRow {
        case_id,
        session,
        seed: i64::try_from(seed).unwrap_or(0),
        model_version: model.version().to_owned(),
        confirmed_cause: None,
        created_at,
        updated_at,
        closed_at: None,
    };
    Ok(view(&compiled, id, row, state))
}

/// Reads a session and what the engine makes of it now.
pub async fn load(
    pool: &PgPool,
    model: &DiagnosisModel,
    id: Uuid,
) -> Result<DiagnosisView, DiagnosisError> {
    let (compiled, row, state) = read_session(pool, model, id).await?;
    Ok(view(&compiled, id, row, state))
}

/// A session as stored, the model it is read with, and what the engine makes of it.
async fn read_session(
    pool: &PgPool,
    model: &DiagnosisModel,
    id: Uuid,
) -> Result<(Arc<CompiledModel>, SessionRow, SessionState), DiagnosisError> {
    let compiled = model.current();
    let mut conn = pool.acquire().await?;
    let row = fetch_session(&mut conn, id, false)
        .await?
        .ok_or(DiagnosisError::SessionNotFound)?;
    let state = session_state(&compiled, &row.session, id)?;
    Ok((compiled, row, state))
}

/// Applies one change to a session, in a transaction holding its row lock. A refused change
/// stores nothing. Closing also adds the session's counts and then rebuilds the model.
pub async fn apply(
    pool: &PgPool,
    model: &DiagnosisModel,
    id: Uuid,
    action: &Action,
) -> Result<DiagnosisView, DiagnosisError> {
    apply_with(pool, model, id, action, Recorded::Replace).await
}

/// What a check result does to one the session already holds for the same check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recorded {
    /// The new result replaces it (what the server learns itself, or a caller of the API).
    Replace,
    /// The session keeps it (the catch-up's reading of finished runs, which may be older than
    /// what the server recorded meanwhile).
    Keep,
}

async fn apply_with(
    pool: &PgPool,
    model: &DiagnosisModel,
    id: Uuid,
    action: &Action,
    recorded: Recorded,
) -> Result<DiagnosisView, DiagnosisError> {
    let compiled = model.current();
    let mut tx = pool.begin().await?;
    let mut row = fetch_session(&mut tx, id, true)
        .await?
        .ok_or(DiagnosisError::SessionNotFound)?;
    if let Action::Check { check, result } = action {
        let held = row.session.check_results().get(check);
        let unchanged = held == Some(result) || (recorded == Recorded::Keep && held.is_some());
        if unchanged && !row.session.is_closed() {
            // The same evidence again (a finished check and the portal's catch-up can both
            // record it), or a catch-up that finds the check recorded meanwhile: nothing
            // changes, and the history keeps one entry.
            drop(tx);
            let state = session_state(&compiled, &row.session, id)?;
            return Ok(view(&compiled, id, row, state));
        }
    }
    action.apply(&mut row.session, &compiled)?;
    let state = session_state(&compiled, &row.session, id)?;
    let (kind, subject, detail) = action.event(&row.session);
    let closing = matches!(action, Action::Close { .. });
    if closing {
        let mut taught = LearnedCounts::default();
        taught
            .add_case(&compiled, &row.session)
            .context("Failed to count a closed session")?;
        add_learned_counts(&mut tx, &taught).await?;
        row.confirmed_cause = row
            .session
            .closure()
            .and_then(|c| c.confirmed_cause.clone());
    }
    let (updated_at, closed_at): (DateTime<Utc>, Option<DateTime<Utc>>) = sqlx::query_as(
        "UPDATE diagnosis_sessions SET session = $2, updated_at = now(), \
             status = CASE WHEN $3 THEN 'closed'::diagnosis_status ELSE status END, \
             closed_at = CASE WHEN $3 THEN now() ELSE closed_at END, \
             confirmed_cause = $4 \
         WHERE id = $1 RETURNING updated_at, closed_at",
    )
    .bind(id)
    .bind(Json(&row.session))
    .bind(closing)
    .bind(&row.confirmed_cause)
    .fetch_one(&mut *tx)
    .await?;
    insert_event(&mut tx, id, kind, subject.as_deref(), &detail, &state).await?;
    tx.commit().await?;
    row.updated_at = updated_at;
    row.closed_at = closed_at;
    if closing {
        tracing::info!(diagnosis.id = %id, confirmed = row.confirmed_cause.is_some(), "diagnosis closed");
        // The close is stored; a failed rebuild leaves the previous model serving until the next.
        if let Err(e) = model.reload(pool).await {
            tracing::error!(error = %format!("{e:#}"), "the diagnosis model was not rebuilt");
        }
    }
    Ok(view(&compiled, id, row, state))
}

/// A session's history, oldest first.
pub async fn history(pool: &PgPool, id: Uuid) -> Result<Vec<EventView>, DiagnosisError> {
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM diagnosis_sessions WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    exists.ok_or(DiagnosisError::SessionNotFound)?;
    type EventRow = (
        String,
        Option<String>,
        serde_json::Value,
        String,
        f64,
        DateTime<Utc>,
    );
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT kind::text, subject, detail, top_cause, top_probability, created_at \
         FROM diagnosis_events WHERE session_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(kind, subject, detail, top_cause, top_probability, at)| EventView {
                kind,
                subject,
                detail,
                top_cause,
                top_probability,
                at,
            },
        )
        .collect())
}

/// The helpdesk's static article ranking: every article of the model with its outcome counts
/// (for one cause, or summed over causes) ordered by the Wilson lower bound, computed in SQL.
pub async fn article_ranking(
    pool: &PgPool,
    model: &DiagnosisModel,
    cause: Option<&str>,
) -> Result<Vec<ArticleRank>, DiagnosisError> {
    let compiled = model.current();
    let document = compiled.model();
    if let Some(cause) = cause {
        if !document.causes.iter().any(|c| c.id == cause) {
            return Err(SessionError::UnknownCause(cause.to_owned()).into());
        }
    }
    let ids: Vec<&str> = document.articles.iter().map(|a| a.id.as_str()).collect();
    let rows: Vec<(String, f64, f64, f64)> = sqlx::query_as(
        "SELECT a.id, counts.resolved, counts.tried, wilson_lower_bound(counts.resolved, counts.tried) AS lower_bound \
         FROM unnest($1::text[]) WITH ORDINALITY AS a(id, position) \
         CROSS JOIN LATERAL ( \
             SELECT COALESCE(sum(o.resolved), 0) AS resolved, COALESCE(sum(o.resolved + o.failed), 0) AS tried \
             FROM article_outcomes o \
             WHERE o.article_id = a.id AND ($2::text IS NULL OR o.cause_id = $2) \
         ) counts \
         ORDER BY lower_bound DESC, counts.tried DESC, a.position",
    )
    .bind(&ids)
    .bind(cause)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, resolved, tried, wilson_lower_bound)| {
            let title = document
                .articles
                .iter()
                .find(|a| a.id == id)
                .map(|a| a.title.clone())
                .unwrap_or_default();
            ArticleRank {
                id,
                title,
                resolved,
                tried,
                wilson_lower_bound,
            }
        })
        .collect())
}

/// The engine's state; a stored session naming ids the model no longer has is a server fault.
fn session_state(
    model: &CompiledModel,
    session: &Session,
    id: Uuid,
) -> Result<SessionState, DiagnosisError> {
    session.state(model).map_err(|e| {
        DiagnosisError::Internal(anyhow!(
            "diagnosis session {id} does not fit the current model: {e}"
        ))
    })
}

async fn insert_event(
    tx: &mut Transaction<'_, Postgres>,
    session_id: Uuid,
    kind: &str,
    subject: Option<&str>,
    detail: &serde_json::Value,
    state: &SessionState,
) -> sqlx::Result<()> {
    let top = state.causes.first();
    sqlx::query(
        "INSERT INTO diagnosis_events (session_id, kind, subject, detail, top_cause, top_probability) \
         VALUES ($1, $2::diagnosis_event_kind, $3, $4, $5, $6)",
    )
    .bind(session_id)
    .bind(kind)
    .bind(subject)
    .bind(detail)
    .bind(top.map_or("", |c| c.id.as_str()))
    .bind(top.map_or(0.0, |c| c.probability))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn view(model: &CompiledModel, id: Uuid, row: SessionRow, state: SessionState) -> DiagnosisView {
    let document = model.model();
    let cause_name = |cause: &str| {
        document
            .causes
            .iter()
            .find(|c| c.id == cause)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    };
    let next_step = state.next_step.map(|step| {
        let detail = match step.kind {
            StepKind::Question => {
                let question = document.questions.iter().find(|q| q.id == step.id);
                StepDetail::Question {
                    text: question.map(|q| q.text.clone()).unwrap_or_default(),
                    input: question.map(|q| q.input).unwrap_or_default(),
                    answers: question
                        .map(|q| {
                            q.answers
                                .iter()
                                .map(|a| ValueView {
                                    id: a.id.clone(),
                                    label: a.label.clone(),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            }
            StepKind::Check { runs_on } => {
                let check = document.checks.iter().find(|c| c.id == step.id);
                StepDetail::Check {
                    name: check.map(|c| c.name.clone()).unwrap_or_default(),
                    runs_on,
                    outcomes: check
                        .map(|c| {
                            c.outcomes
                                .iter()
                                .map(|o| ValueView {
                                    id: o.id.clone(),
                                    label: o.label.clone(),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            }
        };
        NextStepView {
            id: step.id,
            detail,
            information_gain_bits: step.information_gain_bits,
            expected_cost_after: step.expected_cost_after,
        }
    });
    let fixes = state
        .fixes
        .into_iter()
        .map(|fix| FixView {
            name: document
                .fixes
                .iter()
                .find(|f| f.id == fix.id)
                .map(|f| f.name.clone())
                .unwrap_or_default(),
            id: fix.id,
            tier: fix.tier,
            action: fix.action,
            probability: fix.probability,
            cost: fix.cost,
        })
        .collect();
    let evidence = EvidenceView {
        answers: row.session.answers().clone(),
        checks: row.session.check_results().clone(),
        fixes: row.session.fix_attempts().to_vec(),
        articles: row.session.article_attempts().to_vec(),
    };
    DiagnosisView {
        id,
        case_id: row.case_id,
        model_version: row.model_version,
        seed: u64::try_from(row.seed).unwrap_or(0),
        closed: state.closed,
        confirmed_cause: row.confirmed_cause,
        created_at: row.created_at,
        updated_at: row.updated_at,
        closed_at: row.closed_at,
        causes: state
            .causes
            .into_iter()
            .map(|c| CauseView {
                name: cause_name(&c.id),
                id: c.id,
                probability: c.probability,
            })
            .collect(),
        next_step,
        stop_asking: state.stop_asking,
        fixes,
        articles: state.articles,
        expected_cost_of_repair: state.expected_cost_of_repair,
        evidence,
    }
}

/// Every learned count so far, read in one snapshot.
pub async fn load_learned_counts(pool: &PgPool) -> sqlx::Result<LearnedCounts> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut counts = LearnedCounts::default();
    let causes: Vec<(String, f64)> =
        sqlx::query_as("SELECT cause_id, weight FROM learned_cause_counts")
            .fetch_all(&mut *tx)
            .await?;
    counts.causes.extend(causes);
    let observations: Vec<(String, String, String, String, f64)> = sqlx::query_as(
        "SELECT source, item_id, cause_id, value_id, weight FROM learned_observation_counts",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (source, item, cause, value, weight) in observations {
        let table = if source == "question" {
            &mut counts.answers
        } else {
            &mut counts.checks
        };
        table
            .entry(item)
            .or_default()
            .entry(cause)
            .or_default()
            .insert(value, weight);
    }
    let runs: Vec<(String, f64, f64)> =
        sqlx::query_as("SELECT check_id, ran, not_run FROM learned_check_runs")
            .fetch_all(&mut *tx)
            .await?;
    counts.check_runs.extend(
        runs.into_iter()
            .map(|(check, ran, not_run)| (check, RunCounts { ran, not_run })),
    );
    for (table, key, target) in [
        ("learned_fix_outcomes", "fix_id", &mut counts.fixes),
        ("article_outcomes", "article_id", &mut counts.articles),
    ] {
        let rows: Vec<(String, String, f64, f64)> = sqlx::query_as(&format!(
            "SELECT {key}, cause_id, resolved, failed FROM {table}"
        ))
        .fetch_all(&mut *tx)
        .await?;
        for (item, cause, resolved, failed) in rows {
            target
                .entry(item)
                .or_default()
                .insert(cause, OutcomeCounts { resolved, failed });
        }
    }
    tx.commit().await?;
    Ok(counts)
}

/// Adds one closed session's counts (`taught`) to the stored ones: additive upserts only.
async fn add_learned_counts(
    tx: &mut Transaction<'_, Postgres>,
    taught: &LearnedCounts,
) -> sqlx::Result<()> {
    let (causes, weights): (Vec<&str>, Vec<f64>) =
        taught.causes.iter().map(|(c, w)| (c.as_str(), *w)).unzip();
    sqlx::query(
        "INSERT INTO learned_cause_counts (cause_id, weight) SELECT * FROM unnest($1::text[], $2::float8[]) \
         ON CONFLICT (cause_id) DO UPDATE SET weight = learned_cause_counts.weight + EXCLUDED.weight",
    )
    .bind(&causes)
    .bind(&weights)
    .execute(&mut **tx)
    .await?;

    let mut observations: [Vec<&str>; 4] = Default::default();
    let mut observation_weights = Vec::new();
    for (source, table) in [("question", &taught.answers), ("check", &taught.checks)] {
        for (item, by_cause) in table {
            for (cause, by_value) in by_cause {
                for (value, weight) in by_value {
                    for (column, text) in observations.iter_mut().zip([
                        source,
                        item.as_str(),
                        cause.as_str(),
                        value.as_str(),
                    ]) {
                        column.push(text);
                    }
                    observation_weights.push(*weight);
                }
            }
        }
    }
    let [sources, items, causes, values] = &observations;
    sqlx::query(
        "INSERT INTO learned_observation_counts (source, item_id, cause_id, value_id, weight) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[]) \
         ON CONFLICT (source, item_id, cause_id, value_id) \
         DO UPDATE SET weight = learned_observation_counts.weight + EXCLUDED.weight",
    )
    .bind(sources)
    .bind(items)
    .bind(causes)
    .bind(values)
    .bind(&observation_weights)
    .execute(&mut **tx)
    .await?;

    let checks: Vec<&str> = taught.check_runs.keys().map(String::as_str).collect();
    let ran: Vec<f64> = taught.check_runs.values().map(|r| r.ran).collect();
    let not_run: Vec<f64> = taught.check_runs.values().map(|r| r.not_run).collect();
    sqlx::query(
        "INSERT INTO learned_check_runs (check_id, ran, not_run) \
         SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[]) \
         ON CONFLICT (check_id) DO UPDATE SET ran = learned_check_runs.ran + EXCLUDED.ran, \
             not_run = learned_check_runs.not_run + EXCLUDED.not_run",
    )
    .bind(&checks)
    .bind(&ran)
    .bind(&not_run)
    .execute(&mut **tx)
    .await?;

    for (table, key, outcomes) in [
        ("learned_fix_outcomes", "fix_id", &taught.fixes),
        ("article_outcomes", "article_id", &taught.articles),
    ] {
        let mut items = Vec::new();
        let mut causes = Vec::new();
        let mut resolved = Vec::new();
        let mut failed = Vec::new();
        for (item, by_cause) in outcomes {
            for (cause, counts) in by_cause {
                items.push(item.as_str());
                causes.push(cause.as_str());
                resolved.push(counts.resolved);
                failed.push(counts.failed);
            }
        }
        sqlx::query(&format!(
            "INSERT INTO {table} ({key}, cause_id, resolved, failed) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[]) \
             ON CONFLICT ({key}, cause_id) DO UPDATE SET resolved = {table}.resolved + EXCLUDED.resolved, \
                 failed = {table}.failed + EXCLUDED.failed"
        ))
        .bind(&items)
        .bind(&causes)
        .bind(&resolved)
        .bind(&failed)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The case's most recent diagnosis session (the open one if there is one), as the portal
/// shows it.
pub async fn latest_for_case(
    pool: &PgPool,
    model: &DiagnosisModel,
    case_id: Uuid,
) -> Result<Option<DiagnosisView>, DiagnosisError> {
    match latest_session_id(pool, case_id).await? {
        Some(id) => load(pool, model, id).await.map(Some),
        None => Ok(None),
    }
}

/// The case's open session, or else its most recent one.
async fn latest_session_id(pool: &PgPool, case_id: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "SELECT id FROM diagnosis_sessions WHERE case_id = $1 \
         ORDER BY (status = 'open') DESC, created_at DESC LIMIT 1",
    )
    .bind(case_id)
    .fetch_optional(pool)
    .await
}

/// Applies `action` to the case's open session, if it has one.
pub async fn apply_to_case(
    pool: &PgPool,
    model: &DiagnosisModel,
    case_id: Uuid,
    action: &Action,
) -> Result<Option<DiagnosisView>, DiagnosisError> {
    let open: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM diagnosis_sessions WHERE case_id = $1 AND status = 'open'",
    )
    .bind(case_id)
    .fetch_optional(pool)
    .await?;
    match open {
        Some(id) => apply(pool, model, id, action).await.map(Some),
        None => Ok(None),
    }
}

/// Records what the server knows of the host's agent as the model's `host-heartbeat`
/// check: heartbeats `recent` or `stopped`. A model without that check does not use it.
pub async fn record_host_heartbeat(
    pool: &PgPool,
    model: &DiagnosisModel,
    case_id: Uuid,
    beating: bool,
) {
    let outcome = if beating { "recent" } else { "stopped" };
    record_outcome_for_case(
        pool,
        model,
        case_id,
        HOST_HEARTBEAT_CHECK,
        outcome.to_owned(),
    )
    .await;
}

/// Records which part of the network the employee's report came from as the model's
/// `client-network` check: `corporate`, `vpn` or `outside` (`Settings::client_network`).
pub async fn record_client_network(
    pool: &PgPool,
    model: &DiagnosisModel,
    case_id: Uuid,
    network: &str,
) {
    record_outcome_for_case(
        pool,
        model,
        case_id,
        CLIENT_NETWORK_CHECK,
        network.to_owned(),
    )
    .await;
}

/// Records a check's outcome in the case's diagnosis; a check the model does not know, or an
/// outcome already recorded, changes nothing and is not an error for the caller.
async fn record_outcome_for_case(
    pool: &PgPool,
    model: &DiagnosisModel,
    case_id: Uuid,
    check: &str,
    outcome: String,
) {
    let action = Action::Check {
        check: check.to_owned(),
        result: CheckResult::Outcome(outcome),
    };
    match apply_to_case(pool, model, case_id, &action).await {
        Ok(_) => {}
        Err(DiagnosisError::Refused(e)) => {
            tracing::debug!(case.id = %case_id, check, error = %e, "check not used by the diagnosis")
        }
        Err(e) => {
            tracing::warn!(case.id = %case_id, check, error = %e, "could not record a check in the diagnosis")
        }
    }
}

/// The model's check of the host agent's heartbeats, which the server answers itself.
pub const HOST_HEARTBEAT_CHECK: &str = "host-heartbeat";

/// The model's check of where the employee's PC connects from, which the server answers
/// from the address the case came from.
pub const CLIENT_NETWORK_CHECK: &str = "client-network";

/// The case's most recent diagnosis as the portal shows it, with its evidence so that the
/// browser can take the next step itself.
pub async fn portal_summary_for_case(
    pool: &PgPool,
    model: &DiagnosisModel,
    case_id: Uuid,
) -> Result<Option<app::case::DiagnosisSummary>, DiagnosisError> {
    let Some(id) = latest_session_id(pool, case_id).await? else {
        return Ok(None);
    };
    let (compiled, row, state) = read_session(pool, model, id).await?;
    Ok(Some(app::diagnosis::summarize(
        &compiled,
        &crate::fixes::agent_fixes_of(compiled.model()),
        &id.to_string(),
        &row.session,
        &state,
    )))
}

/// The model the server diagnoses with now, for the browser's own steps.
pub fn portal_model(model: &DiagnosisModel) -> app::diagnosis::PortalModel {
    let compiled = model.current();
    app::diagnosis::PortalModel {
        agent_fixes: crate::fixes::agent_fixes_of(compiled.model()),
        model: compiled.model().clone(),
    }
}

/// The portal's flow: records every check whose runs are over ([`app::diagnosis::finished_checks`]):
/// what a finished run found (a run can finish before its session starts), or that nothing
/// ran it (not run: no evidence). Every check starts with the case, so the employee is never
/// asked what a check has already told, and waits only when the engine wants a check still
/// in flight.
///
/// Finished runs call this concurrently and need no lock between them: each pass reads the
/// runs after its own run's end is stored, so a run is always read as over by some pass, and
/// a check another pass recorded first is kept (`Recorded::Keep`), adding no history entry.
pub async fn catch_up_on_checks(pool: &PgPool, model: &DiagnosisModel, case_id: Uuid) {
    let view = match latest_for_case(pool, model, case_id).await {
        Ok(Some(view)) if !view.closed => view,
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(case.id = %case_id, error = %e, "could not read the case's diagnosis");
            return;
        }
    };
    let runs = match crate::cases::check_runs(pool, case_id).await {
        Ok(runs) => runs,
        Err(e) => {
            tracing::warn!(case.id = %case_id, error = %e, "could not look at the case's checks");
            return;
        }
    };
    let compiled = model.current();
    for (check, result) in app::diagnosis::finished_checks(&compiled, &view.evidence.checks, &runs)
    {
        let action = Action::Check {
            check: check.clone(),
            result,
        };
        match apply_with(pool, model, view.id, &action, Recorded::Keep).await {
            Ok(_) => tracing::debug!(case.id = %case_id, check, "check caught up in the diagnosis"),
            // Recorded meanwhile (the session may also have closed): nothing more to do here.
            Err(DiagnosisError::Refused(_)) => {}
            Err(e) => {
                tracing::warn!(case.id = %case_id, check, error = %e, "could not record a check in the diagnosis");
                return;
            }
        }
    }
}
