//! The agent's identity on disk: its id, its private key and the server it trusts.
//!
//! The file is JSON, written atomically and readable only by its owner.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::signing::{public_key_from_base64, Keypair};

/// What `enroll` writes and `run` reads.
#[derive(Serialize, Deserialize)]
pub struct IdentityFile {
    pub agent_id: String,
    pub server_url: String,
    pub server_public_key: String,
    pub private_key: String,
}

/// A loaded, validated identity.
#[derive(Debug)]
pub struct Identity {
    pub agent_id: String,
    pub server_url: String,
    pub server_key: VerifyingKey,
    pub key: Keypair,
}

/// Where the identity lives unless `--config` says otherwise.
pub fn default_path() -> PathBuf {
    if cfg!(windows) {
        let base = std::env::var_os("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into());
        return PathBuf::from(base).join("RDP Doctor").join("agent.json");
    }
    match std::env::var_os("HOME") {
        Some(home) if !running_as_root() => {
            PathBuf::from(home).join(".config/rdp-doctor/agent.json")
        }
        _ => PathBuf::from("/etc/rdp-doctor/agent.json"),
    }
}

/// Whether this process runs as root: a service's state then lives under /etc.
fn running_as_root() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // /proc/self belongs to the process's effective user.
        fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

impl Identity {
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the agent identity {} (enroll first with `rdp-doctor-agent enroll`)",
                path.display()
            )
        })?;
        let file: IdentityFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid agent identity file", path.display()))?;
        Ok(Identity {
            server_key: public_key_from_base64(&file.server_public_key)
                .with_context(|| format!("{}: bad server_public_key", path.display()))?,
            key: Keypair::from_secret_base64(&file.private_key)
                .with_context(|| format!("{}: bad private_key", path.display()))?,
            agent_id: file.agent_id,
            server_url: file.server_url,
        })
    }

    /// Writes the identity atomically (temporary file, then rename), mode 0600 on Unix.
    pub fn save(&self, path: &Path, server_public_key: &str) -> Result<()> {
        let file = IdentityFile {
            agent_id: self.agent_id.clone(),
            server_url: self.server_url.clone(),
            server_public_key: server_public_key.to_owned(),
            private_key: self.key.secret_base64(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        }
        let tmp = path.with_extension("json.tmp");
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut out = options
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        out.write_all(serde_json::to_string_pretty(&file)?.as_bytes())?;
        out.sync_all()?;
        fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}
