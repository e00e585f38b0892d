//! The server's configuration: flags, each also settable from the environment (see
//! `.env.example`), with defaults that run on a developer machine with nothing set.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ipnet::IpNet;

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// PostgreSQL URL. When unset, the server runs its own private PostgreSQL cluster in
    /// STATE_DIR/postgres (created with the system's initdb on first start).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory for the server's signing key and, without DATABASE_URL, its PostgreSQL
    /// cluster [default: /var/lib/rdp-doctor as root, else ~/.local/share/rdp-doctor].
    #[arg(long, env = "RDP_DOCTOR_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

impl StorageArgs {
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(default_state_dir)
    }
}

fn default_state_dir() -> PathBuf {
    let is_root = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    };
    if !is_root {
        if let Some(data) = std::env::var_os("XDG_DATA_HOME") {
            return PathBuf::from(data).join("rdp-doctor");
        }
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(".local/share/rdp-doctor");
        }
    }
    PathBuf::from("/var/lib/rdp-doctor")
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `rdp-doctor serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,

    /// Address and port the portal and the agent API listen on.
    #[arg(long, env = "RDP_DOCTOR_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Directory holding the built site (the `pkg/` folder with the WebAssembly bundle).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// How often agents are asked to send a heartbeat, in seconds.
    #[arg(long, env = "RDP_DOCTOR_HEARTBEAT_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub heartbeat_secs: u64,

    /// Agent to run employees' checks from when none beats from the address a case came from,
    /// by id or host name [default: the agent seen most recently].
    #[arg(long, env = "RDP_DOCTOR_DEFAULT_AGENT")]
    pub default_agent: Option<String>,

    /// Time allowed for each TCP connection attempt of a check, in milliseconds.
    #[arg(long, env = "RDP_DOCTOR_CONNECT_TIMEOUT_MS", default_value_t = 3000, value_parser = clap::value_parser!(u32).range(100..=60_000))]
    pub connect_timeout_ms: u32,

    /// The window over which an employee's agent spreads its connections to the host when it
    /// checks the path for loss (`path-quality`), in milliseconds.
    #[arg(long, env = "RDP_DOCTOR_PATH_QUALITY_WINDOW_MS", default_value_t = agent_client::wire::PATH_QUALITY_DURATION_MS, value_parser = clap::value_parser!(u32).range(1_000..=120_000))]
    pub path_quality_window_ms: u32,

    /// Log format.
    #[arg(
        long,
        env = "RDP_DOCTOR_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// The URL hosts use to reach this server, written into agent install scripts
    /// [default: the URL the request for the script came to].
    #[arg(long, env = "RDP_DOCTOR_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// The Windows agent executable that install scripts download from this server.
    #[arg(
        long,
        env = "RDP_DOCTOR_WINDOWS_AGENT",
        default_value = "target/x86_64-pc-windows-gnu/debug/rdp-doctor-agent.exe"
    )]
    pub windows_agent: PathBuf,

    /// Reverse proxies in front of the server, as addresses or CIDR ranges (comma-separated):
    /// for requests from them the client's address is read from X-Forwarded-For.
    #[arg(
        long,
        env = "RDP_DOCTOR_TRUSTED_PROXIES",
        value_name = "CIDR",
        value_delimiter = ',',
        value_parser = parse_network
    )]
    pub trusted_proxies: Vec<IpNet>,

    /// The company's own network ranges (comma-separated CIDRs): an employee whose request
    /// comes from one is on the corporate network (the diagnosis' `client-network` check).
    #[arg(
        long,
        env = "RDP_DOCTOR_CORPORATE_NETWORKS",
        value_name = "CIDR",
        value_delimiter = ',',
        value_parser = parse_network
    )]
    pub corporate_networks: Vec<IpNet>,

    /// The VPN's address pools (comma-separated CIDRs): an employee whose request comes from
    /// one is on the VPN. Without these and the corporate ranges, `client-network` does not run.
    #[arg(
        long,
        env = "RDP_DOCTOR_VPN_NETWORKS",
        value_name = "CIDR",
        value_delimiter = ',',
        value_parser = parse_network
    )]
    pub vpn_networks: Vec<IpNet>,
}

/// A network range as CIDR (`10.0.0.0/8`), or a single address (`10.0.0.5`).
fn parse_network(raw: &str) -> Result<IpNet, String> {
    let raw = raw.trim();
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| "not an address or a CIDR range (such as 10.0.0.0/8)".to_owned())
}

/// Settings the running application needs, derived from the flags.
#[derive(Debug, Clone)]
pub struct Settings {
    pub heartbeat_interval: Duration,
    /// An agent not heard from for this long counts as offline.
    pub agent_offline_after: Duration,
    pub default_agent: Option<String>,
    pub connect_timeout_ms: u32,
    /// The window of `path-quality`'s connections.
    pub path_quality_window_ms: u32,
    /// A check not finished this long after it was queued ends `timed_out`.
    pub check_deadline: Duration,
    /// Attempts per check before it ends as failed.
    pub max_attempts: i32,
    /// The URL hosts use to reach this server (install scripts), when configured.
    pub public_url: Option<String>,
    /// The Windows agent executable served to install scripts.
    pub windows_agent: PathBuf,
    /// Reverse proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Arc<[IpNet]>,
    /// Where employees' requests come from when they are at the office, and on the VPN.
    pub corporate_networks: Vec<IpNet>,
    pub vpn_networks: Vec<IpNet>,
}

impl Settings {
    pub fn from_args(args: &ServeArgs) -> Self {
        let heartbeat_interval = Duration::from_secs(args.heartbeat_secs);
        Settings {
            heartbeat_interval,
            agent_offline_after: heartbeat_interval * 3,
            default_agent: args.default_agent.clone(),
            connect_timeout_ms: args.connect_timeout_ms,
            path_quality_window_ms: args.path_quality_window_ms,
            public_url: args.public_url.clone(),
            windows_agent: args.windows_agent.clone(),
            trusted_proxies: args.trusted_proxies.clone().into(),
            corporate_networks: args.corporate_networks.clone(),
            vpn_networks: args.vpn_networks.clone(),
            ..Settings::default()
        }
    }
}

impl Settings {
    /// Where the configured networks place an address: the model's `client-network`
    /// outcomes `vpn`, `corporate` or `outside`. None when no network is configured (nothing
    /// to compare with, so no evidence). A VPN pool inside a corporate range counts as VPN.
    pub fn client_network(&self, address: IpAddr) -> Option<&'static str> {
        if self.corporate_networks.is_empty() && self.vpn_networks.is_empty() {
            return None;
        }
        let address = address.to_canonical();
        let within = |nets: &[IpNet]| nets.iter().any(|net| net.contains(&address));
        Some(if within(&self.vpn_networks) {
            "vpn"
        } else if within(&self.corporate_networks) {
            "corporate"
        } else {
            "outside"
        })
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            heartbeat_interval: Duration::from_secs(15),
            agent_offline_after: Duration::from_secs(45),
            default_agent: None,
            connect_timeout_ms: 3000,
            path_quality_window_ms: agent_client::wire::PATH_QUALITY_DURATION_MS,
            check_deadline: Duration::from_secs(300),
            max_attempts: 3,
            public_url: None,
            windows_agent: PathBuf::from("target/x86_64-pc-windows-gnu/debug/rdp-doctor-agent.exe"),
            trusted_proxies: Arc::new([]),
            corporate_networks: Vec::new(),
            vpn_networks: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_networks_place_an_address() {
        let nets = |list: &[&str]| list.iter().map(|n| n.parse().unwrap()).collect::<Vec<_>>();
        let settings = Settings {
            corporate_networks: nets(&["10.0.0.0/8", "fd00::/8"]),
            vpn_networks: nets(&["10.200.0.0/16"]),
            ..Settings::default()
        };
        let place = |raw: &str| settings.client_network(raw.parse().unwrap());
        assert_eq!(place("10.1.2.3"), Some("corporate"));
        assert_eq!(place("fd00::7"), Some("corporate"));
        assert_eq!(place("10.200.4.5"), Some("vpn"));
        assert_eq!(place("198.51.100.7"), Some("outside"));
        assert_eq!(place("::ffff:10.200.0.1"), Some("vpn"));
        let unset = Settings::default();
        assert_eq!(unset.client_network("10.1.2.3".parse().unwrap()), None);
        let vpn_only = Settings {
            vpn_networks: nets(&["10.200.0.0/16"]),
            ..Settings::default()
        };
        assert_eq!(
            vpn_only.client_network("10.1.2.3".parse().unwrap()),
            Some("outside")
        );
    }

    #[test]
    fn networks_are_read_as_ranges_or_single_addresses() {
        let net = |raw| parse_network(raw).map(|net| net.to_string());
        assert_eq!(net("10.0.0.0/8").as_deref(), Ok("10.0.0.0/8"));
        assert_eq!(net(" 10.0.0.5 ").as_deref(), Ok("10.0.0.5/32"));
        assert_eq!(net("fd00::1").as_deref(), Ok("fd00::1/128"));
        // Host bits are dropped, as a range is meant.
        assert_eq!(net("10.1.2.3/16").as_deref(), Ok("10.1.0.0/16"));
        for bad in ["10.0.0.0/33", "corp", "", "10.0.0.0/8/8"] {
            assert_eq!(
                parse_network(bad),
                Err("not an address or a CIDR range (such as 10.0.0.0/8)".to_owned()),
                "{bad:?}"
            );
        }
    }
}
