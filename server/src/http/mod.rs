//! Every HTTP route of the server, grouped by who calls it. Handlers live in one module per
//! resource; this is the one place that lists them all.

pub mod agents;
pub mod cases;
pub mod diagnosis;
pub mod error;
pub mod fixes;
pub mod health;
pub mod install;
pub mod openapi;
pub mod origin;

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
        .route("/api/v1/cases/{id}/events", get(cases::case_events))
        .route("/api/v1/cases/{id}/fixes", post(fixes::post_fix))
        .route(
            "/api/v1/cases/{id}/fixes/{job_id}/rollback",
            post(fixes::post_rollback),
        )
        .route(
            "/api/v1/cases/{id}/diagnosis",
            post(diagnosis::start_diagnosis),
        )
        .route(
            "/api/v1/diagnosis/{session_id}",
            get(diagnosis::get_diagnosis),
        )
        .route(
            "/api/v1/diagnosis/{session_id}/events",
            get(diagnosis::get_diagnosis_events),
        )
        .route(
            "/api/v1/diagnosis/{session_id}/answers",
            post(diagnosis::post_answer),
        )
        .route(
            "/api/v1/diagnosis/{session_id}/checks",
            post(diagnosis::post_check),
        )
        .route(
            "/api/v1/diagnosis/{session_id}/fixes",
            post(diagnosis::post_fix),
        )
        .route(
            "/api/v1/diagnosis/{session_id}/articles",
            post(diagnosis::post_articles),
        )
        .route(
            "/api/v1/diagnosis/{session_id}/close",
            post(diagnosis::close_diagnosis),
        )
        .route(
            "/api/v1/articles/ranking",
            get(diagnosis::get_article_ranking),
        )
        .route("/api/openapi.json", get(openapi::openapi_json));

    // Used by operators and the helpdesk, and by load balancers.
    let for_operations = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/api/v1/agents", get(agents::list_agents))
        // Helpdesk accounts only (bearer token).
        .route("/api/v1/cases/{id}/approvals", post(fixes::post_approval))
        // Installing agents: the script carries a token; the executable is public.
        .route(
            "/api/v1/agents/install/windows.ps1",
            get(install::windows_script),
        )
        .route(
            "/downloads/rdp-doctor-agent.exe",
            get(install::windows_agent),
        );

    Router::new()
        .merge(for_agents)
        .merge(for_portal)
        .merge(for_operations)
        .with_state(state)
}
