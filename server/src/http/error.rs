//! The JSON API's one error type, mapped to a status and a `{"error": {...}}` body.
//!
//! Server faults are logged once here and answered with an opaque message.

use agent_client::wire::ErrorBody;
use axum::extract::rejection::JsonRejection;
use axum::extract::FromRequest;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What went wrong while answering an API request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field of the request was refused.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// The body is not the JSON the endpoint takes.
    #[error("{0}")]
    BadJson(String),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{0}")]
    Conflict(String),
    /// Something this server needs is missing; try again once it is there.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            ApiError::BadJson(_) => (StatusCode::BAD_REQUEST, "bad_json"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Unauthorized { code, .. } => (StatusCode::UNAUTHORIZED, *code),
            ApiError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, *code),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Database(_) | ApiError::Internal(_) => {
                tracing::error!(error = %self, "request failed");
                let body = ErrorBody::new(
                    "internal",
                    "Something went wrong on the server; it has been logged.",
                );
                return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response();
            }
        };
        let mut body = ErrorBody::new(code, self.to_string());
        if let ApiError::Invalid { field, .. } = &self {
            body.error.code = format!("invalid_{field}");
        }
        (status, axum::Json(body)).into_response()
    }
}

/// `axum::Json`, but a malformed body is answered in the API's error format.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::BadJson(rejection.body_text())
    }
}

/// Unknown `/api/...` paths get JSON, not the portal's HTML 404 page.
pub async fn api_not_found() -> ApiError {
    ApiError::NotFound("API endpoint")
}
