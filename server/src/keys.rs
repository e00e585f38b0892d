//! The server's Ed25519 signing key: made on first start, kept in a file only the server's
//! account can read. Agents receive its public half at enrollment.

use std::fs;
use std::io::Write;
use std::path::Path;

use agent_client::signing::Keypair;
use anyhow::{Context, Result};

const KEY_FILE: &str = "server-signing-key";

/// Loads the key from `state_dir`, creating it (mode 0600) if it does not exist yet.
pub fn load_or_create(state_dir: &Path) -> Result<Keypair> {
    let path = state_dir.join(KEY_FILE);
    if path.exists() {
        let text = fs::read_to_string(&path)
            .with_context(|| format!("Failed to read {}", path.display()))?;
        return Keypair::from_secret_base64(&text)
            .with_context(|| format!("{} does not hold a valid signing key", path.display()));
    }
    fs::create_dir_all(state_dir)
        .with_context(|| format!("Failed to create {}", state_dir.display()))?;
    let key = Keypair::generate();
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .with_context(|| format!("Failed to create {}", path.display()))?;
    file.write_all(key.secret_base64().as_bytes())?;
    file.sync_all()?;
    tracing::info!(public_key = %key.public_base64(), "created the server signing key");
    Ok(key)
}
