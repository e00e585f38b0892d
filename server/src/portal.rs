//! The server's side of the portal: implements `app::backend::Portal` for the server
//! functions, over the same case functions the JSON API uses.

use app::backend::{Portal, PortalFuture};
use app::case::{CaseView, NewCase};
use app::error::PortalError;
use uuid::Uuid;

use crate::cases::{load_case, open_and_dispatch};
use crate::diagnosis::{apply_to_case, catch_up_on_checks, Action, DiagnosisError};
use crate::dispatch::announce_case_change;
use crate::startup::AppState;

/// The portal backend: the application state, seen through the portal's interface.
#[derive(Debug, Clone)]
pub struct PortalBackend(pub AppState);

fn unavailable(error: sqlx::Error) -> PortalError {
    tracing::error!(error = %error, "portal request failed");
    PortalError::Unavailable
}

impl Portal for PortalBackend {
    fn answer(&self, case_id: String, question: String, answer: String) -> PortalFuture<'_, ()> {
        Box::pin(async move {
            let case_id = Uuid::parse_str(&case_id).map_err(|_| PortalError::CaseNotFound)?;
            let action = Action::Answer { question, answer };
            match apply_to_case(&self.0.pool, &self.0.diagnosis, case_id, &action).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(PortalError::Rejected(
                        "This case has no open questions.".into(),
                    ))
                }
                Err(DiagnosisError::Refused(e)) => {
                    return Err(PortalError::Rejected(e.to_string()))
                }
                Err(e) => {
                    tracing::error!(case.id = %case_id, error = %e, "an answer could not be recorded");
                    return Err(PortalError::Unavailable);
                }
            }
            catch_up_on_checks(&self.0.pool, &self.0.diagnosis, case_id).await;
            let mut conn = self.0.pool.acquire().await.map_err(unavailable)?;
            announce_case_change(&mut conn, case_id)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn open_case(&self, case: NewCase) -> PortalFuture<'_, String> {
        Box::pin(async move {
            let id = open_and_dispatch(&self.0, &case)
                .await
                .map_err(unavailable)?;
            Ok(id.to_string())
        })
    }

    fn case(&self, id: String) -> PortalFuture<'_, CaseView> {
        Box::pin(async move {
            let id = Uuid::parse_str(&id).map_err(|_| PortalError::CaseNotFound)?;
            load_case(&self.0.pool, &self.0.diagnosis, id)
                .await
                .map_err(unavailable)?
                .ok_or(PortalError::CaseNotFound)
        })
    }
}
