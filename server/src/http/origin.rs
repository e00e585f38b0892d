//! Where a request comes from: the address of the computer that sent it, read through the
//! reverse proxies the operator trusts.
//!
//! The address is set once per request, as the extension [`ClientAddress`], by
//! [`set_client_address`]; the portal's server functions read it with
//! `app::backend::client_address`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use app::backend::ClientAddress;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The client's address: the peer's, unless the peer is a trusted proxy, then the last
/// address in `X-Forwarded-For` that is not itself a trusted proxy (the entries before it
/// are whatever the client chose to send). IPv4-mapped IPv6 addresses are read as IPv4.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in forwarded.iter().rev() {
        // A malformed entry ends the chain: nothing before it can be vouched for.
        let Ok(ip) = hop.parse::<IpAddr>().map(|ip| ip.to_canonical()) else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// Middleware: sets [`ClientAddress`] on every request that arrived over a socket (the
/// server is served with its connection info).
pub async fn set_client_address(
    State(trusted): State<Arc<[IpNet]>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    if let Some(peer) = peer {
        let address = client_address(peer, request.headers(), &trusted);
        request.extensions_mut().insert(ClientAddress(address));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let proxies = nets(&["10.0.0.5/32", "10.0.9.0/24"]);
        let headers = forwarded(&["203.0.113.9, 10.20.30.40"]);
        // An untrusted peer cannot make itself anybody else.
        assert_eq!(
            client_address(ip("10.20.30.41"), &headers, &proxies),
            ip("10.20.30.41")
        );
        // Through the trusted proxy: the last untrusted hop, not what the client claimed.
        assert_eq!(
            client_address(ip("10.0.0.5"), &headers, &proxies),
            ip("10.20.30.40")
        );
        // Through two trusted proxies, over two header lines.
        let chained = forwarded(&["10.20.30.40", "10.0.9.7"]);
        assert_eq!(
            client_address(ip("10.0.0.5"), &chained, &proxies),
            ip("10.20.30.40")
        );
        // A trusted proxy without the header, or with garbage in it, is the client.
        assert_eq!(
            client_address(ip("10.0.0.5"), &HeaderMap::new(), &proxies),
            ip("10.0.0.5")
        );
        assert_eq!(
            client_address(
                ip("10.0.0.5"),
                &forwarded(&["10.1.1.1, not-an-ip"]),
                &proxies
            ),
            ip("10.0.0.5")
        );
        // No trusted proxy configured: the header is ignored.
        assert_eq!(
            client_address(ip("10.0.0.5"), &headers, &[]),
            ip("10.0.0.5")
        );
        // IPv4 seen on an IPv6 socket.
        assert_eq!(
            client_address(ip("::ffff:10.20.30.40"), &HeaderMap::new(), &[]),
            ip("10.20.30.40")
        );
    }
}
