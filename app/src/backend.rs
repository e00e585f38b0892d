//! What the portal needs from the server, as a trait the server crate implements.
//!
//! The `app` crate cannot depend on the `server` crate (the server renders the app), so
//! server functions reach the database and the dispatcher through this interface, provided
//! as a Leptos context on every request.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use crate::case::{CaseView, NewCase};
use crate::diagnosis::PortalModel;
use crate::error::PortalError;

/// A boxed future, so the trait can be used as `dyn Portal`.
pub type PortalFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PortalError>> + Send + 'a>>;

/// The server side of the portal.
pub trait Portal: Send + Sync + 'static {
    /// Stores a new case reported from the computer at `from` (when known), queues its first
    /// checks, and returns the case id.
    fn open_case(&self, case: NewCase, from: Option<IpAddr>) -> PortalFuture<'_, String>;
    /// Loads a case as the portal shows it.
    fn case(&self, id: String) -> PortalFuture<'_, CaseView>;
    /// Records the employee's answer to a diagnosis question of the case.
    fn answer(&self, case_id: String, question: String, answer: String) -> PortalFuture<'_, ()>;
    /// Asks the agent to apply a suggested fix (by its knowledge-model id) for the case.
    fn apply_fix(&self, case_id: String, fix: String) -> PortalFuture<'_, ()>;
    /// Records whether a suggested fix made Remote Desktop work again.
    fn fix_outcome(&self, case_id: String, fix: String, worked: bool) -> PortalFuture<'_, ()>;
    /// Undoes a fix applied for the case (by its job id), from the agent's snapshot.
    fn undo_fix(&self, case_id: String, job_id: String) -> PortalFuture<'_, ()>;
    /// The model the server diagnoses with now.
    fn diagnosis_model(&self) -> PortalFuture<'_, PortalModel>;
}

/// The handle server functions look up in the Leptos context.
pub type PortalHandle = Arc<dyn Portal>;

/// The address of the computer a request came from, as the server worked it out (through
/// the reverse proxies it trusts). The server sets it on every request as an extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The address the request being handled came from, when the server set it.
pub fn client_address() -> Option<IpAddr> {
    leptos::prelude::use_context::<http::request::Parts>()?
        .extensions
        .get::<ClientAddress>()
        .map(|address| address.0)
}
