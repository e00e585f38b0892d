//! The Linux platform, for hosts that run xrdp: listening sockets and processes from
//! `/proc`, `nft -j list ruleset` for the firewall, `xrdp --config` to start it and `kill`
//! to stop it. Also the pure pieces the xrdp checks and fixes share: the ini format, the
//! `port` setting, PEM certificate and key matching, and the nftables verdict for a port.

use std::collections::HashMap;
use std::fs;
use std::time::Duration;

use super::exec::{CommandLine, CommandRunner, ProgramOutput, SystemRunner};
use super::platform::{FixedProgram, HostPlatform, PResult, PlatformError};
use super::report::{NftRuleMatch, ProcessInfo, TcpListenerInfo, XrdpFirewallOutcome};

/// `/proc`, `nft`, `xrdp` and `kill` on this machine.
#[derive(Debug, Clone)]
pub struct LinuxPlatform {
    step_timeout: Duration,
    settle: Duration,
}

impl LinuxPlatform {
    pub fn new(step_timeout: Duration) -> Self {
        LinuxPlatform {
            step_timeout,
            settle: Duration::from_secs(15),
        }
    }

    fn exec(&self, command: CommandLine) -> PResult<ProgramOutput> {
        Ok(SystemRunner.run(&command, self.step_timeout)?)
    }
}

impl HostPlatform for LinuxPlatform {
    fn tcp_listeners(&self) -> PResult<Vec<TcpListenerInfo>> {
        let mut sockets = Vec::new();
        for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
            match fs::read_to_string(file) {
                Ok(text) => sockets.extend(parse_proc_net_tcp(&text, v6)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(PlatformError::Failed(format!("cannot read {file}: {e}"))),
            }
        }
        let owners = socket_owners();
        Ok(sockets
            .into_iter()
            .map(|s| {
                let owner = owners.get(&s.inode);
                TcpListenerInfo {
                    address: s.address,
                    port: s.port,
                    pid: owner.map(|(pid, _)| *pid),
                    process: owner.map(|(_, name)| name.clone()),
                }
            })
            .collect())
    }

    fn processes(&self) -> PResult<Vec<ProcessInfo>> {
        let entries = fs::read_dir("/proc")
            .map_err(|e| PlatformError::Failed(format!("cannot read /proc: {e}")))?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(process) = process_info(pid) {
                out.push(process);
            }
        }
        out.sort_by_key(|p| p.pid);
        Ok(out)
    }

    fn stop_process(&self, pid: u32) -> PResult<()> {
        let out = self.exec(CommandLine::new("kill", &["-s", "TERM"]).arg(pid.to_string()))?;
        if out.success() {
            Ok(())
        } else {
            Err(PlatformError::Failed(format!(
                "kill -s TERM {pid}: {}",
                out.stderr.trim()
            )))
        }
    }

    fn run(&self, program: &FixedProgram) -> PResult<ProgramOutput> {
        let command = match program {
            FixedProgram::NftRuleset => CommandLine::new("nft", &["-j", "list", "ruleset"]),
            FixedProgram::XrdpStart { config } => {
                let mut command = CommandLine::new("xrdp", &["--config", config.as_str()]);
                command.detach = true;
                command
            }
            other => return Err(PlatformError::unsupported(&format!("{other:?}"))),
        };
        self.exec(command)
    }

    fn settle_timeout(&self) -> Duration {
        self.settle
    }
}

/// One process from `/proc/PID`, if it still exists.
pub fn process_info(pid: u32) -> Option<ProcessInfo> {
    let name = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    Some(ProcessInfo {
        pid,
        name: name.trim_end().to_owned(),
        cmdline: cmdline
            .split(|b| *b == 0)
            .filter(|part| !part.is_empty())
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect(),
    })
}

/// Socket inode -> (pid, process name), from `/proc/*/fd`.
fn socket_owners() -> HashMap<u64, (u32, String)> {
    let mut owners = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return owners;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let mut name = None;
        for fd in fds.flatten() {
            let Ok(link) = fs::read_link(fd.path()) else {
                continue;
            };
            let link = link.to_string_lossy();
            if let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
            {
                let name = name.get_or_insert_with(|| {
                    fs::read_to_string(format!("/proc/{pid}/comm"))
                        .map(|n| n.trim_end().to_owned())
                        .unwrap_or_default()
                });
                owners.entry(inode).or_insert((pid, name.clone()));
            }
        }
    }
    owners
}

/// A listening socket from `/proc/net/tcp{,6}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcSocket {
    pub address: String,
    pub port: u16,
    pub inode: u64,
}

/// The LISTEN sockets (state `0A`) of `/proc/net/tcp` or `/proc/net/tcp6`.
pub fn parse_proc_net_tcp(text: &str, v6: bool) -> Vec<ProcSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != "0A" {
                return None;
            }
            let (addr_hex, port_hex) = fields[1].split_once(':')?;
            let port = u16::from_str_radix(port_hex, 16).ok()?;
            let address = if v6 {
                proc_ipv6(addr_hex)?
            } else {
                proc_ipv4(addr_hex)?
            };
            Some(ProcSocket {
                address,
                port,
                inode: fields[9].parse().ok()?,
            })
        })
        .collect()
}

/// `/proc/net/tcp` writes an IPv4 address as one little-endian 32-bit hex number.
fn proc_ipv4(hex: &str) -> Option<String> {
    let n = u32::from_str_radix(hex, 16).ok()?;
    Some(std::net::Ipv4Addr::from(n.swap_bytes()).to_string())
}

/// ... and an IPv6 address as four such numbers.
fn proc_ipv6(hex: &str) -> Option<String> {
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for word in 0..4 {
        let n = u32::from_str_radix(&hex[word * 8..word * 8 + 8], 16).ok()?;
        bytes[word * 4..word * 4 + 4].copy_from_slice(&n.swap_bytes().to_be_bytes());
    }
    Some(std::net::Ipv6Addr::from(bytes).to_string())
}

// ---------------------------------------------------------------------------------------
// xrdp.ini

/// The value of `key` in `[section]` (names compared without case, as xrdp does; the last
/// occurrence wins, as in xrdp's own reading of `[Globals]`). Comments start with `;` or `#`.
pub fn ini_get(text: &str, section: &str, key: &str) -> Option<String> {
    let mut current = String::new();
    let mut found = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with(';') || trimmed.starts_with('#') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            current = name.trim().to_owned();
            continue;
        }
        if !current.eq_ignore_ascii_case(section) {
            continue;
        }
        if let Some((k, v)) = trimmed.split_once('=') {
            if k.trim().eq_ignore_ascii_case(key) {
                found = Some(v.trim().to_owned());
            }
        }
    }
    found
}

/// Whether the ini has a `[section]` header.
pub fn ini_has_section(text: &str, section: &str) -> bool {
    text.lines().any(|line| {
        line.trim()
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .is_some_and(|name| name.trim().eq_ignore_ascii_case(section))
    })
}

/// The ini with `key=value` in `[section]`: every existing occurrence of the key in that
/// section is rewritten in place (keeping everything else byte for byte, line endings
/// included); when there is none, the line is added right after the section header.
/// `None` when the section does not exist.
pub fn ini_set(text: &str, section: &str, key: &str, value: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + key.len() + value.len() + 2);
    let mut current = String::new();
    let mut header_end = None;
    let mut replaced = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let trimmed = body.trim();
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            current = name.trim().to_owned();
            out.push_str(line);
            if current.eq_ignore_ascii_case(section) && header_end.is_none() {
                if ending.is_empty() {
                    out.push('\n');
                }
                header_end = Some(out.len());
            }
            continue;
        }
        let is_comment = trimmed.starts_with(';') || trimmed.starts_with('#');
        if !is_comment && current.eq_ignore_ascii_case(section) {
            if let Some((k, _)) = trimmed.split_once('=') {
                if k.trim().eq_ignore_ascii_case(key) {
                    let indent = &body[..body.len() - body.trim_start().len()];
                    out.push_str(&format!("{indent}{}={value}{ending}", k.trim()));
                    replaced = true;
                    continue;
                }
            }
        }
        out.push_str(line);
    }
    let header_end = header_end?;
    if !replaced {
        let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
        out.insert_str(header_end, &format!("{key}={value}{newline}"));
    }
    Some(out)
}

/// The TCP port of xrdp's `port` setting: `3389`, `tcp://:3389`, `tcp://127.0.0.1:3390`,
/// `tcp6://[::1]:3389`. `None` for vsock and unix sockets, and for nonsense.
pub fn port_from_setting(setting: &str) -> Option<u16> {
    let s = setting.trim();
    let rest = match s.split_once("://") {
        Some(("tcp" | "tcp6", rest)) => rest,
        Some(_) => return None,
        None => s,
    };
    let port = match rest.rsplit_once(':') {
        Some((_, port)) => port,
        None => rest,
    };
    port.parse::<u16>().ok().filter(|p| *p > 0)
}

/// The certificate and key paths xrdp uses: an empty or relative setting falls back to
/// `/etc/xrdp/cert.pem` and `/etc/xrdp/key.pem` (xrdp 0.9 does this silently).
pub fn xrdp_cert_paths(ini: &str) -> (String, String) {
    let pick = |key: &str, default: &str| match ini_get(ini, "Globals", key) {
        Some(path) if path.starts_with('/') => path,
        _ => default.to_owned(),
    };
    (
        pick("certificate", "/etc/xrdp/cert.pem"),
        pick("key_file", "/etc/xrdp/key.pem"),
    )
}

// ---------------------------------------------------------------------------------------
// Certificates and keys

/// The public half of a private key, read from PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicHalf {
    Rsa {
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
    /// The uncompressed point; `None` when the key file does not carry it.
    Ec {
        point: Option<Vec<u8>>,
    },
}

/// Why a key file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no PEM private key in the file")]
    NoKey,
    #[error("the private key is encrypted (xrdp cannot use it without a passphrase either)")]
    Encrypted,
    #[error("the private key is not valid DER: {0}")]
    Malformed(&'static str),
    #[error("unsupported key type")]
    Unsupported,
}

/// Reads the first private key in a PEM file: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE
/// KEY`) or SEC1 (`EC PRIVATE KEY`).
pub fn private_key_public_half(pem: &[u8]) -> Result<PublicHalf, KeyError> {
    use x509_parser::pem::Pem;
    for block in Pem::iter_from_buffer(pem) {
        let Ok(block) = block else {
            break;
        };
        match block.label.as_str() {
            "PRIVATE KEY" => return pkcs8(&block.contents),
            "RSA PRIVATE KEY" => return pkcs1(&block.contents),
            "EC PRIVATE KEY" => return sec1(&block.contents),
            "ENCRYPTED PRIVATE KEY" => return Err(KeyError::Encrypted),
            _ => continue,
        }
    }
    // `Proc-Type: 4,ENCRYPTED` headers make the PEM parser skip the block.
    if String::from_utf8_lossy(pem).contains("ENCRYPTED") {
        return Err(KeyError::Encrypted);
    }
    Err(KeyError::NoKey)
}

const OID_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];

fn pkcs8(der: &[u8]) -> Result<PublicHalf, KeyError> {
    let bad = KeyError::Malformed("PKCS#8");
    let (tag, body, _) = der_tlv(der).ok_or(bad.clone())?;
    if tag != 0x30 {
        return Err(bad);
    }
    let (_, _, rest) = der_tlv(body).ok_or(bad.clone())?; // version
    let (_, algorithm, rest) = der_tlv(rest).ok_or(bad.clone())?;
    let (_, oid, _) = der_tlv(algorithm).ok_or(bad.clone())?;
    let (tag, private, _) = der_tlv(rest).ok_or(bad.clone())?;
    if tag != 0x04 {
        return Err(bad);
    }
    if oid == OID_RSA {
        pkcs1(private)
    } else if oid == OID_EC {
        sec1(private)
    } else {
        Err(KeyError::Unsupported)
    }
}

fn pkcs1(der: &[u8]) -> Result<PublicHalf, KeyError> {
    let bad = KeyError::Malformed("PKCS#1");
    let (tag, body, _) = der_tlv(der).ok_or(bad.clone())?;
    if tag != 0x30 {
        return Err(bad);
    }
    let (_, _, rest) = der_tlv(body).ok_or(bad.clone())?; // version
    let (t1, modulus, rest) = der_tlv(rest).ok_or(bad.clone())?;
    let (t2, exponent, _) = der_tlv(rest).ok_or(bad.clone())?;
    if t1 != 0x02 || t2 != 0x02 {
        return Err(bad);
    }
    Ok(PublicHalf::Rsa {
        modulus: strip_zeros(modulus).to_vec(),
        exponent: strip_zeros(exponent).to_vec(),
    })
}

fn sec1(der: &[u8]) -> Result<PublicHalf, KeyError> {
    let bad = KeyError::Malformed("SEC1");
    let (tag, body, _) = der_tlv(der).ok_or(bad.clone())?;
    if tag != 0x30 {
        return Err(bad);
    }
    let mut rest = body;
    let mut point = None;
    while !rest.is_empty() {
        let (tag, value, next) = der_tlv(rest).ok_or(bad.clone())?;
        if tag == 0xA1 {
            // [1] EXPLICIT BIT STRING: unused-bits byte, then the point.
            let (inner, bits, _) = der_tlv(value).ok_or(bad.clone())?;
            if inner == 0x03 && !bits.is_empty() {
                point = Some(bits[1..].to_vec());
            }
        }
        rest = next;
    }
    Ok(PublicHalf::Ec { point })
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// One DER element: (tag, value, what follows). Lengths up to 4 bytes.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)? as usize;
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let count = first & 0x7F;
        if count == 0 || count > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..count {
            len = (len << 8) | *input.get(2 + i)? as usize;
        }
        (len, 2 + count)
    };
    let end = header.checked_add(len)?;
    if end > input.len() {
        return None;
    }
    Some((tag, &input[header..end], &input[end..]))
}

/// The bits of an RSA modulus or the size of an EC point's curve.
pub fn key_size(half: &PublicHalf) -> Option<u32> {
    match half {
        PublicHalf::Rsa { modulus, .. } => {
            let first = *modulus.first()?;
            Some((modulus.len() as u32 - 1) * 8 + (8 - first.leading_zeros()))
        }
        // An uncompressed point is 04 || X || Y.
        PublicHalf::Ec { point } => point.as_ref().map(|p| ((p.len() as u32 - 1) / 2) * 8),
    }
}

/// Whether a private key belongs to a DER certificate: `None` when it cannot be told (the
/// certificate does not parse, or an EC key file without its public point).
pub fn key_matches_certificate(half: &PublicHalf, cert_der: &[u8]) -> Option<bool> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    use x509_parser::public_key::PublicKey;
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    let parsed = cert.public_key().parsed().ok()?;
    match (half, parsed) {
        (PublicHalf::Rsa { modulus, exponent }, PublicKey::RSA(rsa)) => Some(
            strip_zeros(rsa.modulus) == modulus.as_slice()
                && strip_zeros(rsa.exponent) == exponent.as_slice(),
        ),
        (PublicHalf::Ec { point: Some(point) }, PublicKey::EC(ec)) => {
            Some(ec.data() == point.as_slice())
        }
        (PublicHalf::Ec { point: None }, PublicKey::EC(_)) => None,
        _ => Some(false),
    }
}

/// The first certificate of a PEM file, as DER.
pub fn first_certificate_der(pem: &[u8]) -> Option<Vec<u8>> {
    use x509_parser::pem::Pem;
    Pem::iter_from_buffer(pem)
        .filter_map(Result::ok)
        .find(|block| block.label == "CERTIFICATE")
        .map(|block| block.contents)
}

// ---------------------------------------------------------------------------------------
// nftables

/// What nftables does with TCP to `port`, from `nft -j list ruleset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftVerdict {
    pub outcome: XrdpFirewallOutcome,
    pub rules: Vec<NftRuleMatch>,
    pub drop_policy_chains: Vec<String>,
    pub input_chains: usize,
}

/// Evaluates every base chain on the input hook for "a TCP packet to `port` from anywhere".
///
/// Each base chain is walked in rule order: a rule that matches the port (or any packet)
/// with no other condition ends the walk with its verdict, else the chain's policy decides.
/// Rules that match only some packets (an interface, a source) are collected as
/// conditions. Any chain that ends in drop or reject blocks the port (conditionally, if an
/// earlier rule accepts some packets); rules in chains reached by jump are not followed
/// (the jump is shown as a condition).
pub fn nft_port_verdict(json: &str, port: u16) -> Result<NftVerdict, String> {
    let root: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("nft output is not JSON: {e}"))?;
    let items = root["nftables"]
        .as_array()
        .ok_or("nft output has no `nftables` list")?;
    struct Chain {
        family: String,
        table: String,
        name: String,
        policy: String,
    }
    // Named sets, by (family, table, name), for `tcp dport @name`.
    let mut sets: HashMap<(String, String, String), serde_json::Value> = HashMap::new();
    for item in items {
        let set = &item["set"];
        if set.is_object() {
            sets.insert(
                (
                    str_of(&set["family"]),
                    str_of(&set["table"]),
                    str_of(&set["name"]),
                ),
                serde_json::json!({ "set": set["elem"].as_array().cloned().unwrap_or_default() }),
            );
        }
    }
    let mut chains = Vec::new();
    for item in items {
        let c = &item["chain"];
        if c.is_object() && c["hook"] == "input" {
            chains.push(Chain {
                family: str_of(&c["family"]),
                table: str_of(&c["table"]),
                name: str_of(&c["name"]),
                policy: c["policy"].as_str().unwrap_or("accept").to_owned(),
            });
        }
    }
    let mut verdict = NftVerdict {
        outcome: XrdpFirewallOutcome::Open,
        rules: Vec::new(),
        drop_policy_chains: Vec::new(),
        input_chains: chains.len(),
    };
    let mut blocked = false;
    let mut conditional = false;
    for chain in &chains {
        if chain.policy == "drop" {
            verdict
                .drop_policy_chains
                .push(format!("{} {} {}", chain.family, chain.table, chain.name));
        }
        let mut decided: Option<String> = None;
        let mut some_accepted = false;
        let mut some_dropped = false;
        for item in items {
            let r = &item["rule"];
            if !r.is_object()
                || str_of(&r["family"]) != chain.family
                || str_of(&r["table"]) != chain.table
                || str_of(&r["chain"]) != chain.name
            {
                continue;
            }
            let lookup = |name: &str| {
                sets.get(&(chain.family.clone(), chain.table.clone(), name.to_owned()))
                    .cloned()
            };
            let Some(rule) = evaluate_rule(r, port, &lookup) else {
                continue;
            };
            let terminal = matches!(rule.verdict.as_str(), "accept" | "drop" | "reject");
            let unconditional = rule.conditions.is_empty();
            let shown = NftRuleMatch {
                family: chain.family.clone(),
                table: chain.table.clone(),
                chain: chain.name.clone(),
                handle: r["handle"].as_u64(),
                verdict: rule.verdict.clone(),
                conditions: rule.conditions.clone(),
            };
            verdict.rules.push(shown);
            if terminal && unconditional {
                decided = Some(rule.verdict);
                break;
            }
            match rule.verdict.as_str() {
                "accept" => some_accepted = true,
                "drop" | "reject" => some_dropped = true,
                // A jump may do anything: count it as a condition either way.
                _ => some_dropped = true,
            }
        }
        let end = decided.unwrap_or_else(|| chain.policy.clone());
        if end == "accept" {
            conditional |= some_dropped;
        } else if some_accepted {
            conditional = true;
        } else {
            blocked = true;
        }
    }
    verdict.outcome = if blocked {
        XrdpFirewallOutcome::Blocked
    } else if conditional {
        XrdpFirewallOutcome::BlockedConditionally
    } else {
        XrdpFirewallOutcome::Open
    };
    Ok(verdict)
}

fn str_of(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

struct RuleEval {
    verdict: String,
    conditions: Vec<String>,
}

/// What one rule does to TCP for `port`: `None` when it cannot match such a packet (another
/// port, another protocol) or has no verdict.
fn evaluate_rule(
    rule: &serde_json::Value,
    port: u16,
    sets: &dyn Fn(&str) -> Option<serde_json::Value>,
) -> Option<RuleEval> {
    let mut verdict = None;
    let mut conditions = Vec::new();
    for expr in rule["expr"].as_array()? {
        if let Some(m) = expr.get("match") {
            let left = &m["left"];
            let op = m["op"].as_str().unwrap_or("==");
            let right = &m["right"];
            if let Some(payload) = left.get("payload") {
                let protocol = payload["protocol"].as_str().unwrap_or_default();
                let field = payload["field"].as_str().unwrap_or_default();
                if field == "dport" && matches!(protocol, "tcp" | "th") {
                    let resolved = match right.as_str().and_then(|r| r.strip_prefix('@')) {
                        Some(name) => sets(name),
                        None => Some(right.clone()),
                    };
                    match resolved.as_ref().and_then(|r| port_in(r, port)) {
                        Some(hit) => {
                            let hit = if op == "!=" { !hit } else { hit };
                            if !hit {
                                return None;
                            }
                        }
                        // A set the agent cannot read: the rule may or may not match.
                        None => conditions
                            .push(format!("tcp dport {op} {}", value_strings(right).join(","))),
                    }
                    continue;
                }
                if matches!(protocol, "udp" | "icmp" | "icmpv6" | "sctp") {
                    return None;
                }
            }
            if let Some(ct) = left.get("ct") {
                // A new connection is in state `new`: rules for established, related or
                // invalid packets never decide whether one gets through.
                if ct["key"] == "state" {
                    let states = value_strings(right);
                    let new = states.iter().any(|s| s == "new");
                    if (op == "!=") == new {
                        return None;
                    }
                    continue;
                }
            }
            if let Some(meta) = left.get("meta") {
                if meta["key"] == "l4proto" {
                    let names = value_strings(right);
                    let tcp = names.iter().any(|n| n == "tcp" || n == "6");
                    if (op == "!=") == tcp {
                        return None;
                    }
                    continue;
                }
            }
            conditions.push(format!(
                "{} {op} {}",
                render_left(left),
                value_strings(right).join(",")
            ));
            continue;
        }
        for terminal in ["accept", "drop", "reject"] {
            if expr.get(terminal).is_some() {
                verdict = Some(terminal.to_owned());
            }
        }
        for jump in ["jump", "goto"] {
            if let Some(target) = expr.get(jump) {
                verdict = Some(format!("{jump} {}", str_of(&target["target"])));
            }
        }
    }
    Some(RuleEval {
        verdict: verdict?,
        conditions,
    })
}

/// Whether `port` is in a match's right-hand side: a number, a set, a range. `None` for
/// something it cannot tell (a named set).
fn port_in(right: &serde_json::Value, port: u16) -> Option<bool> {
    if let Some(n) = right.as_u64() {
        return Some(n == u64::from(port));
    }
    if let Some(range) = right.get("range").and_then(|r| r.as_array()) {
        let lo = range.first()?.as_u64()?;
        let hi = range.get(1)?.as_u64()?;
        return Some((lo..=hi).contains(&u64::from(port)));
    }
    if let Some(elem) = right.get("elem") {
        // A set element with options (timeout, comment): `{"elem": {"val": 3389, ...}}`.
        return port_in(&elem["val"], port);
    }
    if let Some(set) = right.get("set").and_then(|s| s.as_array()) {
        for element in set {
            if port_in(element, port)? {
                return Some(true);
            }
        }
        return Some(false);
    }
    if let Some(name) = right.as_str() {
        // A named set (`@allowed`) cannot be resolved here; a service name can.
        return match name {
            "ms-wbt-server" | "rdp" => Some(port == 3389),
            _ if name.starts_with('@') => None,
            _ => Some(false),
        };
    }
    None
}

fn value_strings(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Number(n) => vec![n.to_string()],
        serde_json::Value::Array(items) => items.iter().flat_map(value_strings).collect(),
        serde_json::Value::Object(o) => {
            if let Some(set) = o.get("set").and_then(|s| s.as_array()) {
                set.iter().flat_map(value_strings).collect()
            } else if let Some(prefix) = o.get("prefix") {
                vec![format!(
                    "{}/{}",
                    str_of(&prefix["addr"]),
                    prefix["len"].as_u64().unwrap_or(0)
                )]
            } else {
                vec![v.to_string()]
            }
        }
        other => vec![other.to_string()],
    }
}

fn render_left(left: &serde_json::Value) -> String {
    if let Some(meta) = left.get("meta") {
        return format!("meta {}", str_of(&meta["key"]));
    }
    if let Some(payload) = left.get("payload") {
        return format!(
            "{} {}",
            str_of(&payload["protocol"]),
            str_of(&payload["field"])
        );
    }
    if let Some(ct) = left.get("ct") {
        return format!("ct {}", str_of(&ct["key"]));
    }
    left.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_lines_decode_to_addresses_and_ports() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0D3D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 119737 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:0D3E 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 119738 1\n";
        assert_eq!(
            parse_proc_net_tcp(v4, false),
            [ProcSocket {
                address: "127.0.0.1".into(),
                port: 3389,
                inode: 119737
            }]
        );
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000001000000:0D3D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5555 1\n";
        assert_eq!(parse_proc_net_tcp(v6, true)[0].address, "::1");
    }

    #[test]
    fn ini_values_are_read_per_section_and_set_in_place() {
        let ini =
            "; comment\r\n[Globals]\r\nport=3389\r\nsecurity_layer = tls\r\n[Xorg]\r\nport=-1\r\n";
        assert_eq!(ini_get(ini, "Globals", "port").as_deref(), Some("3389"));
        assert_eq!(ini_get(ini, "xorg", "PORT").as_deref(), Some("-1"));
        assert_eq!(ini_get(ini, "Globals", "missing"), None);
        let set = ini_set(ini, "Globals", "security_layer", "negotiate").unwrap();
        assert_eq!(
            set,
            "; comment\r\n[Globals]\r\nport=3389\r\nsecurity_layer=negotiate\r\n[Xorg]\r\nport=-1\r\n"
        );
        let added = ini_set(ini, "Globals", "crypt_level", "high").unwrap();
        assert!(added.starts_with("; comment\r\n[Globals]\r\ncrypt_level=high\r\nport=3389"));
        assert_eq!(ini_set(ini, "Nope", "a", "b"), None);
    }

    #[test]
    fn port_settings_in_every_form() {
        assert_eq!(port_from_setting("3389"), Some(3389));
        assert_eq!(port_from_setting("tcp://:3390"), Some(3390));
        assert_eq!(port_from_setting("tcp://127.0.0.1:43389"), Some(43389));
        assert_eq!(port_from_setting("tcp6://[::1]:3389"), Some(3389));
        assert_eq!(port_from_setting("vsock://-1:3389"), None);
        assert_eq!(port_from_setting("ask3389"), None);
    }

    #[test]
    fn relative_certificate_paths_fall_back_like_xrdp() {
        let ini = "[Globals]\ncertificate=cert.pem\nkey_file=/srv/k.pem\n";
        assert_eq!(
            xrdp_cert_paths(ini),
            ("/etc/xrdp/cert.pem".to_owned(), "/srv/k.pem".to_owned())
        );
    }

    #[test]
    fn der_lengths_are_bounded() {
        assert!(der_tlv(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]).is_none());
        assert!(der_tlv(&[0x30, 0x03, 0x01]).is_none());
        assert_eq!(
            der_tlv(&[0x02, 0x01, 0x05, 0xAA]),
            Some((0x02, &[0x05][..], &[0xAA][..]))
        );
    }
}
