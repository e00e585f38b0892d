//! Routes used by the portal's browser code and by scripts: open a case, read it, and
//! follow its changes as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use app::backend::ClientAddress;
use app::case::CaseForm;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Json};
use futures::stream::{self, Stream, StreamExt};
use serde::Serialize;
use tokio_stream::wrappers::BroadcastStream;
use uuid::Uuid;

use super::error::{ApiError, ApiJson};
use crate::cases::{load_case, open_and_dispatch};
use crate::startup::AppState;

#[derive(Debug, Serialize)]
pub struct CaseCreated {
    pub id: String,
    /// The case's page in the portal.
    pub url: String,
}

pub(super) fn parse_case_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("case"))
}

/// `POST /api/v1/cases` with `{"host": "...", "port": "...", "error_code": "...", "extended_code": "..."}`
pub async fn create_case(
    State(state): State<AppState>,
    from: Option<Extension<ClientAddress>>,
    ApiJson(form): ApiJson<CaseForm>,
) -> Result<(StatusCode, Json<CaseCreated>), ApiError> {
    let case = form.validate().map_err(|e| ApiError::Invalid {
        field: e.field,
        message: e.message,
    })?;
    let from = from.map(|Extension(ClientAddress(address))| address);
    let id = open_and_dispatch(&state, &case, from).await?;
    Ok((
        StatusCode::CREATED,
        Json(CaseCreated {
            id: id.to_string(),
            url: format!("/cases/{id}"),
        }),
    ))
}

/// `GET /api/v1/cases/{id}`
pub async fn get_case(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<app::case::CaseView>, ApiError> {
    let id = parse_case_id(&id)?;
    load_case(&state.pool, &state.diagnosis, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("case"))
}

/// `GET /api/v1/cases/{id}/events`: the case now, then again after every change.
pub async fn case_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = parse_case_id(&id)?;
    // Subscribe before the first read, so a change between the two is not missed.
    let changes = BroadcastStream::new(state.events.subscribe());
    let first = load_case(&state.pool, &state.diagnosis, id)
        .await?
        .ok_or(ApiError::NotFound("case"))?;
    let first_event = stream::once(async move { Some(first) });
    let pool = state.pool.clone();
    let model = state.diagnosis.clone();
    let updates = changes
        .filter_map(move |notice| async move {
            // A lagging receiver skipped notices: reload anyway, the state is in the database.
            match notice {
                Ok(changed) if changed != id => None,
                _ => Some(()),
            }
        })
        .then(move |()| {
            let (pool, model) = (pool.clone(), model.clone());
            async move { load_case(&pool, &model, id).await.ok().flatten() }
        });
    let events = first_event.chain(updates).filter_map(|case| async move {
        let case = case?;
        Event::default().json_data(&case).ok().map(Ok)
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
