//! The one error type of the portal's server functions, shown to employees as it is.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

use crate::case::{CaseForm, FieldError};

/// Why a portal request failed, in words for a stressed employee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PortalError {
    /// A form field was refused; the form comes back with what was typed.
    #[error("{}", .error.message)]
    Invalid {
        error: FieldError,
        submitted: Box<CaseForm>,
    },
    #[error("We could not find this case. Check the link, or start a new case.")]
    CaseNotFound,
    /// The request was understood and refused (e.g. an answer the question does not have).
    #[error("{0}")]
    Rejected(String),
    #[error("RDP Doctor is having trouble right now. Please try again in a minute.")]
    Unavailable,
    /// The request itself did not get through (network, serialization).
    #[error("The request did not get through ({0}). Please try again.")]
    Transport(String),
}

impl PortalError {
    /// The refused field, if this is a validation error.
    pub fn field_error(&self) -> Option<&FieldError> {
        match self {
            PortalError::Invalid { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl FromServerFnError for PortalError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        PortalError::Transport(value.to_string())
    }
}
