//! The server's side of the portal: implements `app::backend::Portal` for the server
//! functions, over the same case functions the JSON API uses.

use std::net::IpAddr;

use app::backend::{Portal, PortalFuture};
use app::case::{CaseView, NewCase};
use app::error::PortalError;
use uuid::Uuid;

use agent_client::wire::{FixSpec, FixTier};

use crate::cases::{load_case, open_and_dispatch};
use crate::diagnosis::{apply_to_case, catch_up_on_checks, Action, DiagnosisError};
use crate::dispatch::announce_case_change;
use crate::fixes::{agent_fix_for_action, queue_fix, FixError, FixOrder, RollbackError};
use crate::startup::AppState;

/// The portal backend: the application state, seen through the portal's interface.
#[derive(Debug, Clone)]
pub struct PortalBackend(pub AppState);

fn unavailable(error: sqlx::Error) -> PortalError {
    tracing::error!(error = %error, "portal request failed");
    PortalError::Unavailable
}

impl PortalBackend {
    /// Records an employee's step in the case's diagnosis and tells the case's followers.
    async fn record(&self, case_id: Uuid, action: &Action) -> Result<(), PortalError> {
        match apply_to_case(&self.0.pool, &self.0.diagnosis, case_id, action).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(PortalError::Rejected(
                    "This case's diagnosis is closed.".into(),
                ))
            }
            Err(DiagnosisError::Refused(e)) => return Err(PortalError::Rejected(e.to_string())),
            Err(e) => {
                tracing::error!(case.id = %case_id, error = %e, "a diagnosis step could not be recorded");
                return Err(PortalError::Unavailable);
            }
        }
        catch_up_on_checks(&self.0.pool, &self.0.diagnosis, case_id).await;
        let mut conn = self.0.pool.acquire().await.map_err(unavailable)?;
        announce_case_change(&mut conn, case_id)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

impl Portal for PortalBackend {
    fn undo_fix(&self, case_id: String, job_id: String) -> PortalFuture<'_, ()> {
        Box::pin(async move {
            let case_id = Uuid::parse_str(&case_id).map_err(|_| PortalError::CaseNotFound)?;
            let not_here = || PortalError::Rejected("This fix is not part of this case.".into());
            let job_id = Uuid::parse_str(&job_id).map_err(|_| not_here())?;
            match crate::fixes::undo(&self.0.pool, &self.0.dispatcher, case_id, job_id).await {
                Ok(_) => Ok(()),
                Err(RollbackError::UnknownJob(_)) => Err(not_here()),
                Err(RollbackError::Database(e)) => Err(unavailable(e)),
                Err(
                    e @ (RollbackError::NothingInEffect(_)
                    | RollbackError::Refused(_)
                    | RollbackError::AgentUnavailable(_)),
                ) => Err(PortalError::Rejected(e.to_string())),
            }
        })
    }

    fn diagnosis_model(&self) -> PortalFuture<'_, app::diagnosis::PortalModel> {
        Box::pin(async move { Ok(crate::diagnosis::portal_model(&self.0.diagnosis)) })
    }

    fn answer(&self, case_id: String, question: String, answer: String) -> PortalFuture<'_, ()> {
        Box::pin(async move {
            let case_id = Uuid::parse_str(&case_id).map_err(|_| PortalError::CaseNotFound)?;
            self.record(case_id, &Action::Answer { question, answer })
                .await
        })
    }

    fn apply_fix(&self, case_id: String, fix: String) -> PortalFuture<'_, ()> {
        Box::pin(async move {
            let case_id = Uuid::parse_str(&case_id).map_err(|_| PortalError::CaseNotFound)?;
            let model = self.0.diagnosis.current();
            let known = model.model().fixes.iter().find(|f| f.id == fix);
            let Some(known) = known else {
                return Err(PortalError::Rejected(format!(
                    "{fix:?} is not a known fix."
                )));
            };
            let Some((agent_fix, _)) = known.action.as_deref().and_then(agent_fix_for_action)
            else {
                return Err(PortalError::Rejected(format!(
                    "\"{}\" is done by a person, not by the agent: follow the steps, then say whether it worked.",
                    known.name
                )));
            };
            let spec = FixSpec::from_params(agent_fix, &Default::default())
                .map_err(PortalError::Rejected)?;
            if spec.tier() == FixTier::Downgrade {
                return Err(PortalError::Rejected(format!(
                    "\"{}\" weakens security: the helpdesk must approve it for this case first. Call them with this page's address.",
                    known.name
                )));
            }
            let order = FixOrder {
                fix: spec,
                agent_id: None,
                dry_run: false,
                approval_id: None,
                requested_by: "employee".to_owned(),
            };
            match queue_fix(&self.0.pool, &self.0.settings, case_id, order).await {
                Ok(_) => {
                    self.0.dispatcher.wake();
                    Ok(())
                }
                Err(FixError::UnknownCase) => Err(PortalError::CaseNotFound),
                Err(FixError::Database(e)) => Err(unavailable(e)),
                Err(e) => Err(PortalError::Rejected(e.to_string())),
            }
        })
    }

    fn fix_outcome(&self, case_id: String, fix: String, worked: bool) -> PortalFuture<'_, ()> {
        Box::pin(async move {
            let case_id = Uuid::parse_str(&case_id).map_err(|_| PortalError::CaseNotFound)?;
            let action = Action::Fix {
                fix,
                resolved: worked,
            };
            self.record(case_id, &action).await
        })
    }

    fn open_case(&self, case: NewCase, from: Option<IpAddr>) -> PortalFuture<'_, String> {
        Box::pin(async move {
            let id = open_and_dispatch(&self.0, &case, from)
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
