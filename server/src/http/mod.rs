//! Every HTTP route of the server, grouped by who calls it. Handlers live in one module per
//! resource; this is the one place that lists them all.

pub mod agents;
pub mod cases;
pub mod error;
pub mod health;

use axum::routing::{get, post};
use axum::Router;

use crate::startup::AppState;

/// The API routes (the portal's pages and server functions are added in `startup`).
pub fn api_router(state: AppState) -> Router {
    // Used by agents: signed with the agent's key (enrollment: with the key it enrolls).
    let for_agents = Router::new()
        .route(agent_client::wire::ENROLL_PATH, post(agents::enroll))
        .route(agent_client::wire::HEARTBEAT_PATH, post(agents::heartbeat));

    // Used by the portal's browser code and by scripts: JSON over HTTP.
    let for_portal = Router::new()
        .route("/api/v1/cases", post(cases::create_case))
        .route("/api/v1/cases/{id}", get(cases::get_case))
        .route("/api/v1/cases/{id}/events", get(cases::case_events));

    // Used by operators and load balancers.
    let for_operations = Router::new().route("/healthz", get(health::healthz));

    Router::new()
        .merge(for_agents)
        .merge(for_portal)
        .merge(for_operations)
        .with_state(state)
}
