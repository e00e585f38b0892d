//! Enrollment: trade a one-time token for an agent identity the server knows.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::agent::config::Identity;
use crate::signed_http::{post_json, CallError, Signer};
use crate::signing::{public_key_from_base64, Keypair, ENROLL_KEY_ID};
use crate::wire::{EnrollRequest, EnrollResponse, ENROLL_PATH};

/// Makes a key pair, registers it with the server using `token`, and writes the identity.
pub async fn enroll(
    server_url: &str,
    token: &str,
    identity_path: &Path,
    listen_url: Option<String>,
) -> Result<Identity> {
    let server_url = server_url.trim_end_matches('/');
    if !(server_url.starts_with("http://") || server_url.starts_with("https://")) {
        bail!("--server must be an http:// or https:// URL, got {server_url:?}");
    }
    let key = Keypair::generate();
    let request = EnrollRequest {
        token: token.trim().to_owned(),
        public_key: key.public_base64(),
        hostname: super::hostname(),
        os: super::os_description(),
        agent_version: crate::AGENT_VERSION.to_owned(),
        listen_url,
    };
    let signer = Signer {
        key: &key,
        key_id: ENROLL_KEY_ID,
        peer_key: None,
    };
    let client = reqwest::Client::new();
    let reply: EnrollResponse = post_json(
        &client,
        server_url,
        ENROLL_PATH,
        signer,
        &request,
        Duration::from_secs(15),
    )
    .await
    .map_err(|e| match e {
        CallError::Refused { body, .. } => {
            anyhow::anyhow!("enrollment refused: {}", body.error.message)
        }
        other => anyhow::anyhow!("enrollment failed: {other}"),
    })?;
    let identity = Identity {
        agent_id: reply.agent_id,
        server_url: server_url.to_owned(),
        server_key: public_key_from_base64(&reply.server_public_key)
            .context("the server sent an invalid public key")?,
        key,
    };
    identity.save(identity_path, &reply.server_public_key)?;
    Ok(identity)
}
