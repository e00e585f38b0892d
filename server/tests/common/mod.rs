//! Test support: one private PostgreSQL cluster per test binary, a fresh migrated database
//! per test, the real server on port 0, and real agents enrolled through the real API.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use agent_client::agent::api::{router as agent_router, AgentState};
use agent_client::agent::config::Identity;
use agent_client::signing::{Keypair, ReplayGuard};
use server::config::Settings;
use server::embedded_pg::PrivatePostgres;
use server::startup::AppState;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A directory under the system temp dir that the cluster's unprivileged user can enter.
pub fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rdp-doctor-test-{label}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

fn cluster() -> &'static PrivatePostgres {
    static CLUSTER: OnceLock<PrivatePostgres> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        remove_stale_test_dirs();
        let dir = temp_dir("pg").join("postgres");
        // start() blocks and drives its own runtime: keep it off the test's runtime thread.
        std::thread::spawn(move || PrivatePostgres::start(&dir))
            .join()
            .expect("cluster thread")
            .expect("the test PostgreSQL cluster starts")
    })
}

/// Removes what earlier test processes left in the temp dir (their clusters died with them).
fn remove_stale_test_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("rdp-doctor-test-") else {
            continue;
        };
        let pid = rest.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// A new, empty, migrated database.
pub async fn fresh_pool() -> PgPool {
    let pg = cluster();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    pg.ensure_database(&name)
        .await
        .expect("create test database");
    let pool = server::db::connect(pg.connect_options(&name))
        .await
        .expect("connect");
    server::db::MIGRATOR.run(&pool).await.expect("migrate");
    pool
}

/// Settings for tests: short timeouts so offline cases resolve quickly.
pub fn test_settings() -> Settings {
    Settings {
        connect_timeout_ms: 500,
        path_quality_window_ms: 1000,
        ..Settings::default()
    }
}

/// The real server application on a loopback port.
pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub state: AppState,
    pub client: reqwest::Client,
    server: JoinHandle<()>,
    _dispatcher: server::dispatch::WorkerHandles,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(fresh_pool().await, test_settings()).await
}

pub async fn spawn_app_with(pool: PgPool, settings: Settings) -> TestApp {
    spawn_app_serving(pool, settings, Path::new("no-site-in-tests")).await
}

/// The server with a site bundle in `site_root` (its `pkg/` folder).
pub async fn spawn_app_serving(pool: PgPool, settings: Settings, site_root: &Path) -> TestApp {
    let state = AppState::new(pool.clone(), Keypair::generate(), settings);
    state
        .diagnosis
        .reload(&pool)
        .await
        .expect("the learned counts load");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = format!("http://{}", listener.local_addr().unwrap());
    let router = server::startup::router(state.clone(), site_root);
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .expect("server");
    });
    let dispatcher = state.dispatcher.start();
    TestApp {
        address,
        pool,
        state,
        client: reqwest::Client::new(),
        server,
        _dispatcher: dispatcher,
    }
}

impl TestApp {
    /// Waits for an agent's first heartbeat, which tells the server where it listens.
    pub async fn wait_until_listening(&self, agent_id: &str) {
        let agent_id = uuid::Uuid::parse_str(agent_id).expect("an agent id");
        for _ in 0..200 {
            let known: Option<String> =
                sqlx::query_scalar("SELECT listen_url FROM agents WHERE id = $1")
                    .bind(agent_id)
                    .fetch_optional(&self.pool)
                    .await
                    .unwrap()
                    .flatten();
            if known.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the agent never sent a heartbeat");
    }

    pub async fn create_token(&self, uses: u32) -> String {
        server::enrollment::create_token(&self.pool, Duration::from_secs(600), uses)
            .await
            .expect("token")
            .token
    }

    /// Enrolls a real agent through the HTTP API, serves its API on loopback, and sends
    /// its first heartbeat.
    pub async fn spawn_agent(&self) -> TestAgent {
        serve_agent(&self.address, &self.create_token(1).await).await
    }

    pub async fn post_case(&self, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/cases", self.address))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// The case as the API shows it now.
    pub async fn case(&self, id: &str) -> app::case::CaseView {
        self.client
            .get(format!("{}/api/v1/cases/{id}", self.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls the case until its checks are final (30 s at most).
    pub async fn settled_case(&self, id: &str) -> app::case::CaseView {
        for _ in 0..600 {
            let case = self.case(id).await;
            if case.is_settled() {
                return case;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("case {id} did not settle in 30 s");
    }

    /// GETs `path` (from the server's root) and reads the JSON body.
    pub async fn get_json(&self, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

/// Enrolls a real agent with the server at `address`, serves its API on loopback in a
/// runtime of its own (so that stopping it drops every connection, as a dying process
/// would), and sends its first heartbeat.
pub async fn serve_agent(address: &str, token: &str) -> TestAgent {
    let dir = temp_dir("agent");
    let identity =
        agent_client::agent::enroll::enroll(address, token, &dir.join("agent.json"), None)
            .await
            .expect("enrollment succeeds");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind agent");
    listener.set_nonblocking(true).unwrap();
    let listen_url = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::new(AgentState {
        identity,
        replay_guard: ReplayGuard::new(),
    });
    let thread = AgentThread::spawn(dir, 1, {
        let state = state.clone();
        move |stopped| async move {
            let listener = TcpListener::from_std(listener).unwrap();
            tokio::select! {
                _ = axum::serve(listener, agent_router(state)) => {}
                _ = stopped => {}
            }
        }
    });
    agent_client::agent::heartbeat::beat(
        &reqwest::Client::new(),
        &state.identity,
        &listen_url,
        None,
    )
    .await
    .expect("first heartbeat accepted");
    TestAgent {
        state,
        listen_url,
        thread,
    }
}

/// An agent in a thread with a runtime of its own, so that stopping it drops every
/// connection, as a dying process would; and the directory it keeps its state in.
struct AgentThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    dir: PathBuf,
}

impl AgentThread {
    /// Runs `agent` until it returns or [`AgentThread::stop`] fires the receiver it is given.
    fn spawn<F, Fut>(dir: PathBuf, worker_threads: usize, agent: F) -> AgentThread
    where
        F: FnOnce(tokio::sync::oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(worker_threads)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(agent(stopped));
            // Drops every task, in-flight requests included.
            runtime.shutdown_background();
        });
        AgentThread {
            stop: Some(stop),
            thread: Some(thread),
            dir,
        }
    }

    /// Stops the agent and waits for its thread.
    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for AgentThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real agent serving on loopback, enrolled with a [`TestApp`].
pub struct TestAgent {
    pub state: Arc<AgentState>,
    pub listen_url: String,
    thread: AgentThread,
}

impl TestAgent {
    pub fn identity(&self) -> &Identity {
        &self.state.identity
    }

    /// Kills the agent: its port closes and requests in flight are cut off.
    pub async fn stop(&mut self) {
        self.thread.stop().await;
    }
}

/// The whole agent as `rdp-doctor-agent run` runs it (its API with fixes, fix journal,
/// auto-revert of expired downgrades, heartbeats), in a thread with its own runtime.
pub struct RunningAgent {
    pub agent_id: String,
    /// Where the agent itself listens (it may advertise another URL, e.g. a proxy).
    pub listen: std::net::SocketAddr,
    pub config: PathBuf,
    thread: AgentThread,
}

impl RunningAgent {
    /// Enrolls with the server at `address` and runs until dropped; `advertise` replaces the
    /// URL the agent tells the server to call it at.
    pub async fn start(address: &str, token: &str, advertise: Option<String>) -> RunningAgent {
        let listen = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            probe.local_addr().unwrap()
        };
        Self::start_on(address, token, listen, advertise).await
    }

    /// [`RunningAgent::start`], listening on `listen`.
    pub async fn start_on(
        address: &str,
        token: &str,
        listen: std::net::SocketAddr,
        advertise: Option<String>,
    ) -> RunningAgent {
        let dir = temp_dir("full-agent");
        let config = dir.join("agent.json");
        let identity = agent_client::agent::enroll::enroll(address, token, &config, None)
            .await
            .expect("enrollment succeeds");
        let thread = AgentThread::spawn(dir, 2, {
            let config = config.clone();
            move |stopped| async move {
                let stop = async move {
                    let _ = stopped.await;
                };
                agent_client::agent::cli::serve(config, listen, advertise, stop)
                    .await
                    .expect("the agent runs");
            }
        });
        RunningAgent {
            agent_id: identity.agent_id,
            listen,
            config,
            thread,
        }
    }

    /// The agent's fix journal, as a person at the host would list it.
    pub fn journal(&self) -> Vec<agent_client::wire::ActionRecord> {
        let dir = agent_client::host::journal::dir_for_identity(&self.config);
        agent_client::host::journal::Journal::open(&dir)
            .expect("journal")
            .all()
            .expect("journal records")
    }

    /// Stops the agent gracefully and waits for it.
    pub async fn stop(&mut self) {
        self.thread.stop().await;
    }
}
