//! The server's side of the portal: implements `app::backend::Portal` for the server
//! functions, over the same case functions the JSON API uses.

use app::backend::{Portal, PortalFuture};
use app::case::{CaseView, NewCase};
use app::error::PortalError;
use uuid::Uuid;

use crate::cases::{load_case, open_and_dispatch};
use crate::startup::AppState;

/// The portal backend: the application state, seen through the portal's interface.
#[derive(Debug, Clone)]
pub struct PortalBackend(pub AppState);

fn unavailable(error: sqlx::Error) -> PortalError {
    tracing::error!(error = %error, "portal request failed");
    PortalError::Unavailable
}

impl Portal for PortalBackend {
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
            load_case(&self.0.pool, id)
                .await
                .map_err(unavailable)?
                .ok_or(PortalError::CaseNotFound)
        })
    }
}
