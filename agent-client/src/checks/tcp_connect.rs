//! `tcp-connect`: resolve the host (every address), then try a TCP connection to each.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::elapsed_ms;
use crate::target::{CheckTarget, Host};
use crate::wire::{ConnectAttempt, PortState, Reachability, Resolution, TcpConnectReport};

/// Default time allowed for one connection attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Resolves `target` and tries every address it resolves to, one after the other.
pub async fn run(target: &CheckTarget, timeout: Duration) -> TcpConnectReport {
    let resolution = resolve(&target.host, timeout).await;
    let mut attempts = Vec::with_capacity(resolution.addresses.len());
    for ip in &resolution.addresses {
        attempts.push(connect(SocketAddr::new(*ip, target.port), timeout).await);
    }
    let verdict = if resolution.error.is_some() {
        Reachability::NotResolved
    } else {
        Reachability::from_attempts(&attempts)
    };
    TcpConnectReport {
        target: target.clone(),
        resolution,
        attempts,
        verdict,
    }
}

/// Resolves a host name to every address it has (an address literal resolves to itself).
pub(crate) async fn resolve(host: &Host, timeout: Duration) -> Resolution {
    let started = Instant::now();
    if let Some(ip) = host.ip() {
        return Resolution {
            literal: true,
            addresses: vec![ip],
            elapsed_ms: 0.0,
            error: None,
        };
    }
    // The port does not matter to the lookup.
    let lookup = tokio::net::lookup_host((host.as_str(), 0));
    let (addresses, error) = match tokio::time::timeout(timeout, lookup).await {
        Ok(Ok(found)) => {
            let mut addresses: Vec<_> = Vec::new();
            for addr in found {
                if !addresses.contains(&addr.ip()) {
                    addresses.push(addr.ip());
                }
            }
            if addresses.is_empty() {
                (addresses, Some("the name has no addresses".to_owned()))
            } else {
                (addresses, None)
            }
        }
        Ok(Err(e)) => (Vec::new(), Some(format!("the name did not resolve: {e}"))),
        Err(_) => (Vec::new(), Some("name resolution timed out".to_owned())),
    };
    Resolution {
        literal: false,
        addresses,
        elapsed_ms: elapsed_ms(started),
        error,
    }
}

/// One connection attempt to one address, timed; the connection is closed at once.
pub(crate) async fn connect(address: SocketAddr, timeout: Duration) -> ConnectAttempt {
    let started = Instant::now();
    let (state, detail) = match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        Ok(Ok(_stream)) => (PortState::Open, None),
        Ok(Err(e)) => match e.kind() {
            ErrorKind::ConnectionRefused => (PortState::Refused, None),
            ErrorKind::TimedOut => (PortState::NoAnswer, None),
            ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
                (PortState::Unreachable, Some(e.to_string()))
            }
            _ => (PortState::Error, Some(e.to_string())),
        },
        Err(_) => (PortState::NoAnswer, None),
    };
    ConnectAttempt {
        address,
        state,
        elapsed_ms: elapsed_ms(started),
        detail,
    }
}
