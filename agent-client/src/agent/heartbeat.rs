//! Heartbeats: tell the server every so often that this agent is alive, where it listens,
//! and when its fix journal last changed (so the server reads news such as a downgrade the
//! agent reverted by itself).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Client;

use crate::agent::config::Identity;
use crate::host::service::FixService;
use crate::signed_http::{post_json, Signer};
use crate::wire::{HeartbeatRequest, HeartbeatResponse, HEARTBEAT_PATH};

/// Interval used until the server says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);

/// Sends one heartbeat; returns the interval the server asks for.
pub async fn beat(
    client: &Client,
    identity: &Identity,
    listen_url: &str,
    journal_changed_at: Option<i64>,
) -> anyhow::Result<Duration> {
    let request = HeartbeatRequest {
        hostname: super::hostname(),
        os: super::os_description(),
        agent_version: crate::AGENT_VERSION.to_owned(),
        listen_url: listen_url.to_owned(),
        journal_changed_at,
    };
    let signer = Signer {
        key: &identity.key,
        key_id: &identity.agent_id,
        peer_key: Some(&identity.server_key),
    };
    let reply: HeartbeatResponse = post_json(
        client,
        &identity.server_url,
        HEARTBEAT_PATH,
        signer,
        &request,
        Duration::from_secs(10),
    )
    .await?;
    Ok(Duration::from_secs(
        reply.heartbeat_interval_secs.clamp(1, 3600),
    ))
}

/// Beats forever. A failed beat is logged and retried at the next tick, never faster.
pub async fn run_forever(identity: &Identity, listen_url: String, fixes: Arc<FixService>) {
    let client = Client::new();
    let mut interval = DEFAULT_INTERVAL;
    let mut was_failing = false;
    let mut first = true;
    loop {
        let journal = fixes.clone();
        let journal_changed_at = tokio::task::spawn_blocking(move || journal.last_change())
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        match beat(&client, identity, &listen_url, journal_changed_at).await {
            Ok(asked) => {
                if first {
                    tracing::info!(server = %identity.server_url, "first heartbeat accepted by the server");
                } else if was_failing {
                    tracing::info!("heartbeats reach the server again");
                }
                first = false;
                was_failing = false;
                interval = asked;
            }
            Err(e) => {
                if !was_failing {
                    tracing::warn!(error = %e, "heartbeat failed; retrying every interval");
                }
                was_failing = true;
            }
        }
        tokio::time::sleep(interval).await;
    }
}
