//! RDP protocol probes: `rdp-negotiate` (which security protocols the server accepts, from
//! the X.224 Connection Request and Confirm of MS-RDPBCGR 2.2.1.1 and 2.2.1.2), `rdp-tls`
//! (the TLS handshake that follows on the same connection, the certificate, the TLS versions)
//! and `clock-compare` (the host's clock, read from the NTLM challenge of CredSSP).
//!
//! The protocol code is written here on the specification: [`crate::rdp::x224`] (the first
//! RDP exchange), [`hello`] (a raw TLS ClientHello for the versions `rustls` does not speak),
//! [`cert`] (certificate fields), [`crate::rdp::credssp`] and [`crate::rdp::ntlm`] on
//! [`crate::rdp::der`] (the first CredSSP round trip). What the probes report is in [`crate::rdp::report`]: plain
//! serde types without I/O or cryptography, shared with the server and the portal.
//! [`negotiate()`], [`tls()`] and [`clock_compare()`] are the checks; none ever fails as a
//! whole: what went wrong is part of the report. Every read has a timeout.

pub mod cert;
pub mod clock;
pub mod hello;
pub mod negotiate;
pub mod tls;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

pub use crate::rdp::clock::*;
pub use crate::rdp::report::*;
pub use crate::rdp::x224::{self, FailureCode, NegRspFlag, Protocol, ProtocolSet};
pub use clock::clock_compare;
pub use negotiate::{negotiate, negotiate_with};
pub use tls::{tls, tls_with};

use super::elapsed_ms;
use crate::target::CheckTarget;
use crate::wire::{ConnectAttempt, PortState};

/// Default time allowed for each step of a probe (connecting, each reply, a handshake).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many leading bytes of an unexpected reply a report shows, in hex.
const SHOWN_BYTES: usize = 32;

/// Where the probes of one check go: the name resolved, then the first address that accepts
/// a TCP connection (the same address is used for every later connection of the check).
#[derive(Debug)]
pub(crate) struct Located {
    pub resolution_error: Option<String>,
    pub connect: Vec<ConnectAttempt>,
    pub address: Option<SocketAddr>,
    pub stream: Option<TcpStream>,
}

pub(crate) async fn locate(target: &CheckTarget, timeout: Duration) -> Located {
    let resolution = super::tcp_connect::resolve(&target.host, timeout).await;
    if let Some(error) = resolution.error {
        return unresolved(error);
    }
    let addresses = resolution.addresses;
    let mut connect = Vec::new();
    for ip in addresses {
        let address = SocketAddr::new(ip, target.port);
        let (attempt, stream) = connect_once(address, timeout).await;
        connect.push(attempt);
        if let Some(stream) = stream {
            return Located {
                resolution_error: None,
                connect,
                address: Some(address),
                stream: Some(stream),
            };
        }
    }
    Located {
        resolution_error: None,
        connect,
        address: None,
        stream: None,
    }
}

fn unresolved(error: String) -> Located {
    Located {
        resolution_error: Some(error),
        connect: Vec::new(),
        address: None,
        stream: None,
    }
}

/// One TCP connection attempt, described the way `tcp-connect` describes it.
pub(crate) async fn connect_once(
    address: SocketAddr,
    timeout: Duration,
) -> (ConnectAttempt, Option<TcpStream>) {
    let started = Instant::now();
    let (state, detail, stream) =
        match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                (PortState::Open, None, Some(stream))
            }
            Ok(Err(e)) => match e.kind() {
                ErrorKind::ConnectionRefused => (PortState::Refused, None, None),
                ErrorKind::TimedOut => (PortState::NoAnswer, None, None),
                ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
                    (PortState::Unreachable, Some(e.to_string()), None)
                }
                _ => (PortState::Error, Some(e.to_string()), None),
            },
            Err(_) => (PortState::NoAnswer, None, None),
        };
    (
        ConnectAttempt {
            address,
            state,
            elapsed_ms: elapsed_ms(started),
            detail,
        },
        stream,
    )
}

/// How a read of an exact number of bytes ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadEnd {
    /// All the bytes asked for arrived.
    Complete,
    /// The peer closed the connection first (`reset` when it reset it).
    Closed { reset: bool },
    /// Nothing more arrived before the deadline.
    TimedOut,
    /// Another socket error.
    Error(String),
}

/// Appends to `buf` until it holds `want` bytes, the peer closes, or `deadline` passes.
pub(crate) async fn read_until(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    want: usize,
    deadline: Instant,
) -> ReadEnd {
    let mut chunk = [0u8; 4096];
    while buf.len() < want {
        let room = (want - buf.len()).min(chunk.len());
        let read = tokio::time::timeout_at(deadline.into(), stream.read(&mut chunk[..room])).await;
        match read {
            Err(_) => return ReadEnd::TimedOut,
            Ok(Ok(0)) => return ReadEnd::Closed { reset: false },
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) if is_reset(&e) => return ReadEnd::Closed { reset: true },
            Ok(Err(e)) => return ReadEnd::Error(e.to_string()),
        }
    }
    ReadEnd::Complete
}

pub(crate) fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// A guess at what sent bytes that are not an X.224 Connection Confirm, for a report.
pub(crate) fn guess_service(bytes: &[u8]) -> String {
    if bytes.len() >= 2 && (0x14..=0x17).contains(&bytes[0]) && bytes[1] == 3 {
        "a TLS record: the port speaks TLS at once, as a web or gateway server does, not RDP"
            .to_owned()
    } else if bytes.starts_with(b"HTTP/") {
        "an HTTP response: a web server holds the port".to_owned()
    } else if bytes.starts_with(b"SSH-") {
        "an SSH banner: an SSH server holds the port".to_owned()
    } else if bytes.first() == Some(&x224::TPKT_VERSION) {
        x224::describe_tpkt(bytes)
    } else {
        "bytes that are not an RDP reply".to_owned()
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    x224::hex_prefix(bytes, SHOWN_BYTES)
}
