//! `dns-resolve`: resolve a name the way this machine does (its resolver configuration, its
//! hosts file), and compare the answer with the addresses the host is known to have.

use std::net::IpAddr;
use std::time::Duration;

use super::tcp_connect::resolve;
use crate::target::Host;
use crate::wire::{DnsResolveReport, DnsVerdict};

/// Resolves `host` and judges the answer against `expected`.
pub async fn run(host: &Host, expected: &[IpAddr], timeout: Duration) -> DnsResolveReport {
    let resolution = resolve(host, timeout).await;
    DnsResolveReport {
        host: host.clone(),
        resolvers: configured_resolvers(),
        verdict: DnsVerdict::judge(&resolution, expected),
        expected: expected.to_vec(),
        resolution,
    }
}

/// The name servers in the resolver configuration (Unix); empty where it cannot be read.
fn configured_resolvers() -> Vec<String> {
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|text| parse_resolv_conf(&text))
        .unwrap_or_default()
}

fn parse_resolv_conf(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Resolution;

    #[test]
    fn name_servers_are_read_from_the_resolver_configuration() {
        let text = "# comment\nsearch corp.example\nnameserver 10.0.0.53\nnameserver  ::1 \noptions ndots:1\n";
        assert_eq!(parse_resolv_conf(text), ["10.0.0.53", "::1"]);
    }

    #[test]
    fn the_verdict_compares_with_the_known_addresses() {
        let resolved = |addresses: Vec<IpAddr>| Resolution {
            literal: false,
            addresses,
            elapsed_ms: 1.0,
            error: None,
        };
        let a: IpAddr = "10.0.0.5".parse().unwrap();
        let b: IpAddr = "10.0.0.6".parse().unwrap();
        assert_eq!(
            DnsVerdict::judge(&resolved(vec![a]), &[a]),
            DnsVerdict::Matches
        );
        assert_eq!(
            DnsVerdict::judge(&resolved(vec![b]), &[a]),
            DnsVerdict::Differs
        );
        assert_eq!(
            DnsVerdict::judge(&resolved(vec![b]), &[]),
            DnsVerdict::Unverified
        );
        let failed = Resolution {
            error: Some("no such name".into()),
            ..resolved(vec![])
        };
        assert_eq!(DnsVerdict::judge(&failed, &[a]), DnsVerdict::Fails);
    }
}
