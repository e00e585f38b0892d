//! Assembles the application: state, routes (portal pages, server functions, API), and the
//! listener; runs it until SIGINT/SIGTERM and then shuts down cleanly.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agent_client::signing::{Keypair, ReplayGuard};
use anyhow::{Context, Result};
use app::backend::PortalHandle;
use app::{shell, App};
use axum::extract::MatchedPath;
use axum::http::Request;
use axum::routing::any;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use crate::config::{ServeArgs, Settings};
use crate::db::Database;
use crate::diagnosis::DiagnosisModel;
use crate::dispatch::Dispatcher;
use crate::events::CaseEvents;
use crate::http::{api_router, error::api_not_found};
use crate::portal::PortalBackend;

/// What every handler can reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub server_key: Arc<Keypair>,
    /// Nonces of agent requests already accepted, to refuse replays.
    pub replay_guard: Arc<ReplayGuard>,
    pub events: CaseEvents,
    pub dispatcher: Dispatcher,
    pub settings: Arc<Settings>,
    /// The diagnosis model: shipped, then with the learned counts once `reload`ed.
    pub diagnosis: DiagnosisModel,
}

impl AppState {
    pub fn new(pool: PgPool, server_key: Keypair, settings: Settings) -> Self {
        let server_key = Arc::new(server_key);
        let settings = Arc::new(settings);
        let events = CaseEvents::new();
        let diagnosis = DiagnosisModel::shipped();
        let dispatcher = Dispatcher::new(
            pool.clone(),
            server_key.clone(),
            events.clone(),
            settings.clone(),
            diagnosis.clone(),
        );
        AppState {
            pool,
            server_key,
            replay_guard: Arc::new(ReplayGuard::new()),
            events,
            dispatcher,
            settings,
            diagnosis,
        }
    }
}

/// Leptos settings for a site built into `site_root` (the bundle is in `site_root/pkg`).
pub fn leptos_options(site_root: &Path) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name(app::OUTPUT_NAME)
        .site_root(site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .build()
}

/// The whole HTTP application.
pub fn router(state: AppState, site_root: &Path) -> Router {
    let options = leptos_options(site_root);
    let portal: PortalHandle = Arc::new(PortalBackend(state.clone()));
    let pages = Router::new()
        .leptos_routes_with_context(
            &options,
            generate_route_list(App),
            move || provide_context(portal.clone()),
            {
                let options = options.clone();
                move || shell(options.clone())
            },
        )
        // Unknown /api paths answer JSON; server functions (also under /api) match first.
        .route("/api/{*rest}", any(api_not_found))
        // The bundle, sent gzipped (`make site` writes a `.gz` beside each file) to browsers
        // that accept it: about a quarter of the bytes, which matters over a struggling VPN.
        .nest_service(
            "/pkg",
            ServeDir::new(site_root.join("pkg")).precompressed_gzip(),
        )
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(options);
    let trusted_proxies = state.settings.trusted_proxies.clone();
    api_router(state)
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(
            trusted_proxies,
            crate::http::origin::set_client_address,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                // The matched route, never the raw URI: paths may carry case ids, queries may carry anything.
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("(unmatched)", MatchedPath::as_str);
                tracing::info_span!("http", method = %request.method(), route)
            }),
        )
}

/// `rdp-doctor serve`: runs until SIGINT/SIGTERM.
pub async fn serve(args: ServeArgs) -> Result<()> {
    let state_dir = args.storage.state_dir();
    if !args.site_root.join("pkg").is_dir() {
        tracing::warn!(
            site_root = %args.site_root.display(),
            "the site bundle is missing: pages work, but without JavaScript (build it with `make site`)"
        );
    }
    let db = Database::open(&args.storage, crate::embedded_pg::Ownership::Owner).await?;
    let result = run(&args, &state_dir, db.pool().clone()).await;
    db.close().await;
    result
}

async fn run(args: &ServeArgs, state_dir: &Path, pool: PgPool) -> Result<()> {
    let key = crate::keys::load_or_create(state_dir)?;
    let state = AppState::new(pool, key, Settings::from_args(args));
    state.diagnosis.reload(&state.pool).await?;
    // Runs queued or in flight under a previous server are picked up by the worker.
    let worker = state.dispatcher.start();
    let dispatcher = state.dispatcher.clone();
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("Failed to listen on {}", args.listen))?;
    let address: SocketAddr = listener.local_addr()?;
    let app = router(state, &args.site_root);
    tracing::info!(%address, "RDP Doctor is serving");
    println!("RDP Doctor is running at http://{address}/");
    // With each connection's peer address: see `http::origin`.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(agent_client::shutdown::signal())
    .await
    .context("the HTTP server failed")?;
    tracing::info!("stopping");
    drop(worker);
    dispatcher.drain(Duration::from_secs(10)).await;
    Ok(())
}
