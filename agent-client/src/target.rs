//! The computer a check is aimed at: a validated host name or address and a TCP port.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::DEFAULT_RDP_PORT;

/// Longest host name DNS allows (RFC 1035 2.3.4, without the trailing dot).
pub const MAX_HOST_LEN: usize = 253;

/// Why a host or port was refused. The messages are shown to employees as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("Enter the name or address of the computer you are connecting to.")]
    EmptyHost,
    #[error("That name is too long: a computer name has at most 253 characters.")]
    HostTooLong,
    #[error("\"{0}\" is not a valid computer name or address. Use letters, digits, dots and hyphens, e.g. pc-0423.corp.example.com or 10.1.2.3.")]
    InvalidHost(String),
    #[error("The port must be a number from 1 to 65535 (Remote Desktop normally uses 3389).")]
    InvalidPort,
}

impl TargetError {
    /// The form field the error belongs to.
    pub fn field(&self) -> &'static str {
        match self {
            TargetError::InvalidPort => "port",
            _ => "host",
        }
    }
}

/// A host name (RFC 1123) or an IP address literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Host(String);

impl Host {
    /// Validates a host name or IP literal; surrounding white space is ignored and
    /// brackets around an IPv6 literal are accepted.
    pub fn parse(raw: &str) -> Result<Self, TargetError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(TargetError::EmptyHost);
        }
        if raw.len() > MAX_HOST_LEN {
            return Err(TargetError::HostTooLong);
        }
        let unbracketed = raw
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(raw);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(Host(ip.to_string()));
        }
        let name = raw.strip_suffix('.').unwrap_or(raw);
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        // An all-numeric dotted name that did not parse as an address (e.g. 10.0.0.300)
        // is a typo, not a host name.
        let looks_numeric = name.chars().all(|c| c.is_ascii_digit() || c == '.');
        if name.split('.').all(valid_label) && !looks_numeric {
            Ok(Host(name.to_ascii_lowercase()))
        } else {
            Err(TargetError::InvalidHost(raw.to_owned()))
        }
    }

    /// The IP address, when the host was given as one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.0.parse().ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Host {
    type Error = TargetError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Host::parse(&value)
    }
}

impl From<Host> for String {
    fn from(host: Host) -> String {
        host.0
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a port typed by a person: blank means the Remote Desktop default.
pub fn parse_port(raw: &str) -> Result<u16, TargetError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(DEFAULT_RDP_PORT);
    }
    match raw.parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        _ => Err(TargetError::InvalidPort),
    }
}

/// A host and TCP port to probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedTarget")]
pub struct CheckTarget {
    pub host: Host,
    pub port: u16,
}

/// The wire form of a target before its port is checked (port 0 is not a TCP port).
#[derive(Deserialize)]
struct UncheckedTarget {
    host: Host,
    port: u16,
}

impl TryFrom<UncheckedTarget> for CheckTarget {
    type Error = TargetError;
    fn try_from(raw: UncheckedTarget) -> Result<Self, Self::Error> {
        if raw.port == 0 {
            return Err(TargetError::InvalidPort);
        }
        Ok(CheckTarget {
            host: raw.host,
            port: raw.port,
        })
    }
}

impl CheckTarget {
    /// Parses `HOST`, `HOST:PORT`, `[IPV6]:PORT` or a bare IPv6 address; the port defaults to 3389.
    pub fn parse(raw: &str) -> Result<Self, TargetError> {
        let raw = raw.trim();
        let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
            match rest.split_once(']') {
                Some((host, "")) => (host, ""),
                Some((host, port)) => match port.strip_prefix(':') {
                    Some(port) => (host, port),
                    None => return Err(TargetError::InvalidHost(raw.to_owned())),
                },
                None => return Err(TargetError::InvalidHost(raw.to_owned())),
            }
        } else if raw.matches(':').count() == 1 {
            raw.split_once(':').unwrap_or((raw, ""))
        } else {
            (raw, "")
        };
        if port.is_empty() && raw.ends_with(':') {
            return Err(TargetError::InvalidPort);
        }
        Ok(CheckTarget {
            host: Host::parse(host)?,
            port: parse_port(port)?,
        })
    }

    /// Builds a target from separate host and port fields, as the portal's form sends them.
    pub fn from_fields(host: &str, port: &str) -> Result<Self, TargetError> {
        Ok(CheckTarget {
            host: Host::parse(host)?,
            port: parse_port(port)?,
        })
    }
}

impl fmt::Display for CheckTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host.ip() {
            Some(IpAddr::V6(_)) => write!(f, "[{}]:{}", self.host, self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_addresses_and_ports() {
        let t = CheckTarget::parse("PC-0423.Corp.example.com").unwrap();
        assert_eq!(t.host.as_str(), "pc-0423.corp.example.com");
        assert_eq!(t.port, 3389);
        assert_eq!(CheckTarget::parse("10.1.2.3:3390").unwrap().port, 3390);
        let v6 = CheckTarget::parse("[::1]:4000").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 4000));
        assert_eq!(CheckTarget::parse("fe80::1").unwrap().port, 3389);
        assert_eq!(v6.to_string(), "[::1]:4000");
    }

    #[test]
    fn refuses_malformed_hosts_with_a_specific_error() {
        assert_eq!(Host::parse("  "), Err(TargetError::EmptyHost));
        assert!(matches!(
            Host::parse("bad host"),
            Err(TargetError::InvalidHost(_))
        ));
        assert!(matches!(
            Host::parse("-lead.example"),
            Err(TargetError::InvalidHost(_))
        ));
        assert!(matches!(
            Host::parse("a..b"),
            Err(TargetError::InvalidHost(_))
        ));
        assert!(matches!(
            Host::parse("10.0.0.300"),
            Err(TargetError::InvalidHost(_))
        ));
        assert_eq!(Host::parse(&"a".repeat(254)), Err(TargetError::HostTooLong));
        assert!(matches!(
            Host::parse(&"a".repeat(64)),
            Err(TargetError::InvalidHost(_))
        ));
    }

    #[test]
    fn refuses_ports_outside_the_tcp_range() {
        for bad in ["0", "65536", "-1", "33 89", "abc", "99999999999"] {
            assert_eq!(parse_port(bad), Err(TargetError::InvalidPort), "{bad}");
        }
        assert_eq!(parse_port(""), Ok(3389));
        assert_eq!(parse_port("65535"), Ok(65535));
        assert_eq!(CheckTarget::parse("host:"), Err(TargetError::InvalidPort));
        assert_eq!(CheckTarget::parse("host:0"), Err(TargetError::InvalidPort));
    }
}
