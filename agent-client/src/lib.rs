//! RDP Doctor's host agent and the contract it shares with the server.
//!
//! The server depends on this crate for the wire types ([`wire`]), the validated check
//! target ([`target`]) and request signing ([`signing`]), so both sides use one definition.
//! The agent program itself lives in [`agent`] behind the `agent` feature.

pub mod host;
pub mod rdp;
pub mod target;
pub mod wire;

#[cfg(feature = "signing")]
pub mod signing;

#[cfg(feature = "http")]
pub mod signed_http;

#[cfg(feature = "checks")]
pub mod checks;

#[cfg(feature = "shutdown")]
pub mod shutdown;

#[cfg(feature = "agent")]
pub mod agent;

/// The version of this agent, reported at enrollment and in heartbeats.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The innermost error message, which for connection failures says what actually happened
/// (for signed calls and for the downloads of `revocation-fetch`, both over reqwest).
#[cfg(any(feature = "http", feature = "checks"))]
pub(crate) fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The TCP port Remote Desktop listens on unless configured otherwise.
pub const DEFAULT_RDP_PORT: u16 = 3389;
