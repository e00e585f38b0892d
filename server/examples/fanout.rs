//! Fan-out benchmark: one check dispatched to N enrolled agents (default 1,000) until every
//! result is stored, against a bare loop of signed `reqwest` calls to the same agents, in the
//! same run. The fleet is simulated in this process: N real agent HTTP servers on loopback,
//! each with its own Ed25519 key, verifying the server's signatures and signing replies.
//!
//! `cargo run --release -p server --example fanout -- [N] [ROUNDS]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_client::agent::api::{router, AgentState};
use agent_client::agent::config::Identity;
use agent_client::signed_http::{post_json, Signer};
use agent_client::signing::{Keypair, ReplayGuard};
use agent_client::target::CheckTarget;
use agent_client::wire::{CheckReport, CheckRequest, CheckSpec, RUN_CHECK_PATH};
use anyhow::{Context, Result};
use futures::future::join_all;
use server::config::Settings;
use server::embedded_pg::PrivatePostgres;
use server::startup::AppState;
use sqlx::PgPool;
use uuid::Uuid;

struct FleetAgent {
    id: Uuid,
    url: String,
    public_key: ed25519_dalek::VerifyingKey,
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()
        .context("N must be a number")?
        .unwrap_or(1000);
    let rounds: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()
        .context("ROUNDS must be a number")?
        .unwrap_or(3);

    let dir = std::env::temp_dir().join(format!("rdp-doctor-fanout-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    }
    let pg_dir = dir.join("postgres");
    let pg = tokio::task::spawn_blocking(move || PrivatePostgres::start(&pg_dir)).await??;
    pg.ensure_database("fanout").await?;
    let pool = server::db::connect(pg.connect_options("fanout")).await?;
    server::db::MIGRATOR.run(&pool).await?;

    let server_key = Keypair::generate();
    let fleet = start_fleet(&pool, &server_key, n).await?;
    // What every agent probes: a port on loopback that accepts connections.
    let target_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let target = CheckTarget::parse(&target_listener.local_addr()?.to_string())
        .map_err(|e| anyhow::anyhow!(e))?;
    let spec = CheckSpec::TcpConnect {
        target,
        timeout_ms: 2000,
    };

    let state = AppState::new(
        pool.clone(),
        Keypair::from_secret_base64(&server_key.secret_base64())?,
        Settings::default(),
    );
    let _worker = state.dispatcher.start();
    let client = reqwest::Client::new();

    println!("fan-out of one tcp-connect check to {n} agents on loopback, {rounds} rounds each (wall time)");
    println!();
    println!("| round | bare signed reqwest loop (ms) | dispatcher, until every result is stored (ms) | ratio |");
    println!("|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let bare = bare_loop(&client, &server_key, &fleet, &spec).await?;
        let dispatched = dispatch_round(&pool, &state, &fleet, &spec).await?;
        let ratio = dispatched.as_secs_f64() / bare.as_secs_f64();
        ratios.push(ratio);
        println!(
            "| {round} | {:.0} | {:.0} | {ratio:.2} |",
            bare.as_secs_f64() * 1000.0,
            dispatched.as_secs_f64() * 1000.0
        );
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!();
    println!(
        "median ratio {median:.2} (target ≤ 1.5): {}",
        if median <= 1.5 { "met" } else { "NOT MET" }
    );

    drop(_worker);
    pool.close().await;
    tokio::task::spawn_blocking(move || pg.stop()).await??;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Starts N agents, each on its own loopback port, and enrolls them in the database.
async fn start_fleet(pool: &PgPool, server_key: &Keypair, n: usize) -> Result<Vec<FleetAgent>> {
    let token_id = Uuid::new_v4();
    sqlx::query("INSERT INTO enrollment_tokens (id, token_hash, expires_at, max_uses) VALUES ($1, $2, now() + interval '1 hour', $3)")
        .bind(token_id)
        .bind(token_id.to_string())
        .bind(i32::try_from(n)?)
        .execute(pool)
        .await?;
    let mut fleet = Vec::with_capacity(n);
    for i in 0..n {
        let id = Uuid::new_v4();
        let key = Keypair::generate();
        let public_key = key.public_key();
        let public_base64 = key.public_base64();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(AgentState {
            identity: Identity {
                agent_id: id.to_string(),
                server_url: "http://127.0.0.1:1".into(),
                server_key: server_key.public_key(),
                key,
            },
            replay_guard: ReplayGuard::new(),
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, router(state)).await;
        });
        sqlx::query(
            "INSERT INTO agents (id, public_key, hostname, os, agent_version, listen_url, last_seen_at, enrolled_with) \
             VALUES ($1, $2, $3, 'linux', $4, $5, now(), $6)",
        )
        .bind(id)
        .bind(public_base64)
        .bind(format!("fleet-{i:04}"))
        .bind(agent_client::AGENT_VERSION)
        .bind(&url)
        .bind(token_id)
        .execute(pool)
        .await?;
        fleet.push(FleetAgent {
            id,
            url,
            public_key,
        });
    }
    Ok(fleet)
}

/// The baseline: the same signed request to every agent at once, reply signatures verified.
async fn bare_loop(
    client: &reqwest::Client,
    key: &Keypair,
    fleet: &[FleetAgent],
    spec: &CheckSpec,
) -> Result<Duration> {
    let started = Instant::now();
    let calls = fleet.iter().map(|agent| {
        let request = CheckRequest {
            run_id: Uuid::new_v4().to_string(),
            check: spec.clone(),
        };
        async move {
            let signer = Signer {
                key,
                key_id: "server",
                peer_key: Some(&agent.public_key),
            };
            post_json::<_, CheckReport>(
                client,
                &agent.url,
                RUN_CHECK_PATH,
                signer,
                &request,
                Duration::from_secs(30),
            )
            .await
        }
    });
    for result in join_all(calls).await {
        result.context("a bare call failed")?;
    }
    Ok(started.elapsed())
}

/// Queues one run per agent in one transaction and waits until every result is stored.
async fn dispatch_round(
    pool: &PgPool,
    state: &AppState,
    fleet: &[FleetAgent],
    spec: &CheckSpec,
) -> Result<Duration> {
    let case_id = Uuid::new_v4();
    let target = spec
        .target()
        .context("the benchmark's check has a target")?;
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO cases (id, target_host, target_port) VALUES ($1, $2, $3)")
        .bind(case_id)
        .bind(target.host.as_str())
        .bind(i32::from(target.port))
        .execute(&mut *tx)
        .await?;
    let ids: Vec<Uuid> = fleet.iter().map(|_| Uuid::new_v4()).collect();
    let agents: Vec<Uuid> = fleet.iter().map(|a| a.id).collect();
    sqlx::query(
        "INSERT INTO jobs (id, case_id, agent_id, runner, catalogue_id, spec, idempotency_key, deadline) \
         SELECT id, $1, agent, 'agent', $3, $4, id, now() + interval '5 minutes' FROM unnest($2::uuid[], $5::uuid[]) AS t(id, agent)",
    )
    .bind(case_id)
    .bind(&ids)
    .bind(spec.id())
    .bind(sqlx::types::Json(spec))
    .bind(&agents)
    .execute(&mut *tx)
    .await?;
    server::dispatch::announce_queued(&mut tx).await?;
    tx.commit().await?;
    state.dispatcher.wake();
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE case_id = $1 AND status = 'succeeded'",
        )
        .bind(case_id)
        .fetch_one(pool)
        .await?;
        if done as usize == fleet.len() {
            return Ok(started.elapsed());
        }
        let failed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE case_id = $1 AND status NOT IN ('queued', 'sent', 'succeeded')",
        )
        .bind(case_id)
        .fetch_one(pool)
        .await?;
        anyhow::ensure!(failed == 0, "{failed} runs did not succeed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
