//! The OpenAPI 3.1 description of the JSON API, kept by hand in `server/openapi.json` and served
//! as written (a test checks that every route it lists answers as it says).

use axum::http::header;
use axum::response::IntoResponse;

/// The description, embedded at build time.
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

/// `GET /api/openapi.json`
pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
