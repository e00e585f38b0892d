//! Server functions: the portal's calls from the browser (or from a plain form post) to
//! the server.

use leptos::prelude::*;

use crate::case::{CaseForm, CaseView};
use crate::diagnosis::PortalModel;
use crate::error::PortalError;

#[cfg(feature = "ssr")]
fn portal() -> Result<crate::backend::PortalHandle, PortalError> {
    use_context::<crate::backend::PortalHandle>().ok_or(PortalError::Unavailable)
}

/// Opens a case from the home page's form and sends the browser to it.
#[server(endpoint = "open_case")]
pub async fn open_case(form: CaseForm) -> Result<(), PortalError> {
    let case = form.validate().map_err(|error| PortalError::Invalid {
        error,
        submitted: Box::new(form.clone()),
    })?;
    let from = crate::backend::client_address();
    let id = portal()?.open_case(case, from).await?;
    leptos_axum::redirect(&format!("/cases/{id}"));
    Ok(())
}

/// Loads a case for its page.
#[server(endpoint = "case")]
pub async fn load_case(id: String) -> Result<CaseView, PortalError> {
    portal()?.case(id).await
}

/// Records an answer to the case's current diagnosis question.
#[server(endpoint = "answer")]
pub async fn answer_question(
    case_id: String,
    question: String,
    answer: String,
) -> Result<(), PortalError> {
    portal()?.answer(case_id.clone(), question, answer).await?;
    // Without JavaScript the browser comes back to the case page, now one question further.
    leptos_axum::redirect(&format!("/cases/{case_id}"));
    Ok(())
}

/// Asks the agent to apply a suggested fix for the case.
#[server(endpoint = "apply_fix")]
pub async fn apply_fix(case_id: String, fix: String) -> Result<(), PortalError> {
    portal()?.apply_fix(case_id.clone(), fix).await?;
    leptos_axum::redirect(&format!("/cases/{case_id}"));
    Ok(())
}

/// Records whether a suggested fix worked; a fix that did not is evidence, and the order of
/// what to try next is recomputed.
#[server(endpoint = "fix_outcome")]
pub async fn fix_outcome(case_id: String, fix: String, worked: bool) -> Result<(), PortalError> {
    portal()?.fix_outcome(case_id.clone(), fix, worked).await?;
    leptos_axum::redirect(&format!("/cases/{case_id}"));
    Ok(())
}

/// Undoes a fix applied for the case, from the snapshot the agent took before changing
/// anything.
#[server(endpoint = "undo_fix")]
pub async fn undo_fix(case_id: String, job_id: String) -> Result<(), PortalError> {
    portal()?.undo_fix(case_id.clone(), job_id).await?;
    leptos_axum::redirect(&format!("/cases/{case_id}"));
    Ok(())
}

/// The model the server diagnoses with (the expert model with the learned counts), so that
/// the browser can take the next step itself while the server records an answer.
#[server(endpoint = "diagnosis_model")]
pub async fn diagnosis_model() -> Result<PortalModel, PortalError> {
    portal()?.diagnosis_model().await
}
