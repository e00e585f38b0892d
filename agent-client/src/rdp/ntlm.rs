//! The two NTLM messages of MS-NLMP that reveal a host's clock without any credential: the
//! client's NEGOTIATE_MESSAGE (2.2.1.1), written here, and the server's CHALLENGE_MESSAGE
//! (2.2.1.2), read here with its AV pairs (2.2.2.1: names and MsvAvTimestamp, a FILETIME)
//! and its VERSION (2.2.2.10). Every offset and length in the challenge is checked against
//! the message; malformed input is an error, never a panic.

use thiserror::Error;

/// `"NTLMSSP\0"`, the start of every NTLM message.
pub const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
/// MessageType of a NEGOTIATE_MESSAGE.
pub const NEGOTIATE: u32 = 1;
/// MessageType of a CHALLENGE_MESSAGE.
pub const CHALLENGE: u32 = 2;

/// NegotiateFlags bits (MS-NLMP 2.2.2.5) this module uses or reports.
pub mod flags {
    pub const UNICODE: u32 = 0x0000_0001;
    pub const OEM: u32 = 0x0000_0002;
    pub const REQUEST_TARGET: u32 = 0x0000_0004;
    pub const SIGN: u32 = 0x0000_0010;
    pub const SEAL: u32 = 0x0000_0020;
    pub const NTLM: u32 = 0x0000_0200;
    pub const ALWAYS_SIGN: u32 = 0x0000_8000;
    pub const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
    pub const TARGET_TYPE_SERVER: u32 = 0x0002_0000;
    pub const EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
    pub const TARGET_INFO: u32 = 0x0080_0000;
    pub const VERSION: u32 = 0x0200_0000;
    pub const NEGOTIATE_128: u32 = 0x2000_0000;
    pub const KEY_EXCH: u32 = 0x4000_0000;
    pub const NEGOTIATE_56: u32 = 0x8000_0000;
}

/// AvId values (MS-NLMP 2.2.2.1).
pub mod av {
    pub const EOL: u16 = 0x0000;
    pub const NB_COMPUTER_NAME: u16 = 0x0001;
    pub const NB_DOMAIN_NAME: u16 = 0x0002;
    pub const DNS_COMPUTER_NAME: u16 = 0x0003;
    pub const DNS_DOMAIN_NAME: u16 = 0x0004;
    pub const DNS_TREE_NAME: u16 = 0x0005;
    pub const FLAGS: u16 = 0x0006;
    pub const TIMESTAMP: u16 = 0x0007;
    pub const SINGLE_HOST: u16 = 0x0008;
    pub const TARGET_NAME: u16 = 0x0009;
    pub const CHANNEL_BINDINGS: u16 = 0x000A;
}

/// The flags this client sends: Unicode, NTLM with extended session security, 128- and
/// 56-bit keys, key exchange, signing and sealing, the target name, and VERSION (which asks
/// the server to send its own version in the challenge).
pub const CLIENT_FLAGS: u32 = flags::UNICODE
    | flags::REQUEST_TARGET
    | flags::SIGN
    | flags::SEAL
    | flags::NTLM
    | flags::ALWAYS_SIGN
    | flags::EXTENDED_SESSIONSECURITY
    | flags::VERSION
    | flags::NEGOTIATE_128
    | flags::KEY_EXCH
    | flags::NEGOTIATE_56;

/// The length of a NEGOTIATE_MESSAGE with a VERSION and no domain or workstation.
pub const NEGOTIATE_LEN: usize = 40;

/// 100-nanosecond intervals from 1601-01-01 (the FILETIME epoch) to 1970-01-01.
pub const FILETIME_UNIX_EPOCH: u64 = 116_444_736_000_000_000;

/// A NEGOTIATE_MESSAGE with no domain and no workstation name (nothing that identifies this
/// client), and a VERSION field of 10.0 build 0, NTLM revision 15.
pub fn negotiate_message() -> Vec<u8> {
    let mut m = Vec::with_capacity(NEGOTIATE_LEN);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&NEGOTIATE.to_le_bytes());
    m.extend_from_slice(&CLIENT_FLAGS.to_le_bytes());
    // DomainNameFields and WorkstationFields: empty, offset at the end of the message.
    for _ in 0..2 {
        m.extend_from_slice(&0u16.to_le_bytes());
        m.extend_from_slice(&0u16.to_le_bytes());
        m.extend_from_slice(&(NEGOTIATE_LEN as u32).to_le_bytes());
    }
    // VERSION: major, minor, build, 3 reserved bytes, NTLMSSP_REVISION_W2K3.
    m.extend_from_slice(&[10, 0, 0, 0, 0, 0, 0, 0x0F]);
    m
}

/// Why a token is not a readable CHALLENGE_MESSAGE.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NtlmError {
    #[error("the NTLM message is {0} bytes, shorter than a CHALLENGE_MESSAGE header")]
    TooShort(usize),
    #[error("the token does not start with the NTLMSSP signature")]
    BadSignature,
    #[error("NTLM message type {0}, not a CHALLENGE_MESSAGE (2)")]
    NotChallenge(u32),
    #[error("the {field} field ({len} bytes at offset {offset}) lies outside the {message_len}-byte message")]
    FieldOutOfBounds {
        field: &'static str,
        offset: u32,
        len: u16,
        message_len: usize,
    },
    #[error("the AV pair at offset {at} of TargetInfo runs past its end")]
    AvPairTruncated { at: usize },
    #[error("the AV pair {id:#06x} has length {len}, expected {expected}")]
    AvPairLength { id: u16, len: u16, expected: u16 },
}

/// The VERSION structure (2.2.2.10): the server's Windows version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
    pub build: u16,
    /// NTLMRevisionCurrent (15 for NTLMSSP_REVISION_W2K3).
    pub ntlm_revision: u8,
}

/// What TargetInfo says, by AV pair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetInfo {
    pub nb_computer_name: Option<String>,
    pub nb_domain_name: Option<String>,
    pub dns_computer_name: Option<String>,
    pub dns_domain_name: Option<String>,
    pub dns_tree_name: Option<String>,
    /// MsvAvFlags.
    pub flags: Option<u32>,
    /// MsvAvTimestamp: the server's clock as a FILETIME (100 ns units since 1601-01-01 UTC).
    pub timestamp: Option<u64>,
    /// MsvAvTargetName (a client's field; servers do not normally send it).
    pub target_name: Option<String>,
    /// Every AvId in the order sent (MsvAvEOL included when present).
    pub ids: Vec<u16>,
    /// Whether the list ended with MsvAvEOL, as MS-NLMP requires.
    pub terminated: bool,
}

/// A CHALLENGE_MESSAGE, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub flags: u32,
    /// TargetName: the server's domain (TARGET_TYPE_DOMAIN) or computer
    /// (TARGET_TYPE_SERVER) name.
    pub target_name: Option<String>,
    pub server_challenge: [u8; 8],
    pub target_info: TargetInfo,
    /// Present when the server set NTLMSSP_NEGOTIATE_VERSION.
    pub version: Option<Version>,
}

/// The fixed part of a CHALLENGE_MESSAGE up to and including TargetInfoFields.
const CHALLENGE_HEADER_LEN: usize = 48;
/// The same with the VERSION field.
const CHALLENGE_HEADER_WITH_VERSION_LEN: usize = 56;

/// Reads a CHALLENGE_MESSAGE.
pub fn parse_challenge(message: &[u8]) -> Result<Challenge, NtlmError> {
    if message.len() >= 8 && &message[..8] != SIGNATURE {
        return Err(NtlmError::BadSignature);
    }
    if message.len() < 12 {
        return Err(NtlmError::TooShort(message.len()));
    }
    let message_type = u32_at(message, 8);
    if message_type != CHALLENGE {
        return Err(NtlmError::NotChallenge(message_type));
    }
    // Servers before Windows NT 4.0 SP4 sent no TargetInfo (32 bytes); everything since
    // sends at least the 48-byte header.
    if message.len() < 32 {
        return Err(NtlmError::TooShort(message.len()));
    }
    let flags = u32_at(message, 20);
    let mut server_challenge = [0u8; 8];
    server_challenge.copy_from_slice(&message[24..32]);
    let target_name_bytes = field(message, 12, "TargetName")?;
    let target_name = (!target_name_bytes.is_empty()).then(|| {
        if flags & flags::UNICODE != 0 {
            utf16(target_name_bytes)
        } else {
            target_name_bytes.iter().map(|b| char::from(*b)).collect()
        }
    });
    let target_info = if message.len() >= CHALLENGE_HEADER_LEN {
        parse_target_info(field(message, 40, "TargetInfo")?)?
    } else {
        TargetInfo::default()
    };
    let version = (flags & flags::VERSION != 0
        && message.len() >= CHALLENGE_HEADER_WITH_VERSION_LEN)
        .then(|| Version {
            major: message[48],
            minor: message[49],
            build: u16::from_le_bytes([message[50], message[51]]),
            ntlm_revision: message[55],
        });
    Ok(Challenge {
        flags,
        target_name,
        server_challenge,
        target_info,
        version,
    })
}

/// The AV pairs of a TargetInfo field.
pub fn parse_target_info(bytes: &[u8]) -> Result<TargetInfo, NtlmError> {
    let mut info = TargetInfo::default();
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + 4) else {
            return Err(NtlmError::AvPairTruncated { at });
        };
        let id = u16::from_le_bytes([header[0], header[1]]);
        let len = u16::from_le_bytes([header[2], header[3]]);
        let start = at + 4;
        let Some(value) = bytes.get(start..start + usize::from(len)) else {
            return Err(NtlmError::AvPairTruncated { at });
        };
        info.ids.push(id);
        at = start + usize::from(len);
        let exact = |expected: u16| {
            if len == expected {
                Ok(())
            } else {
                Err(NtlmError::AvPairLength { id, len, expected })
            }
        };
        match id {
            av::EOL => {
                exact(0)?;
                info.terminated = true;
                break;
            }
            av::NB_COMPUTER_NAME => info.nb_computer_name = Some(utf16(value)),
            av::NB_DOMAIN_NAME => info.nb_domain_name = Some(utf16(value)),
            av::DNS_COMPUTER_NAME => info.dns_computer_name = Some(utf16(value)),
            av::DNS_DOMAIN_NAME => info.dns_domain_name = Some(utf16(value)),
            av::DNS_TREE_NAME => info.dns_tree_name = Some(utf16(value)),
            av::TARGET_NAME => info.target_name = Some(utf16(value)),
            av::FLAGS => {
                exact(4)?;
                info.flags = Some(u32_at(value, 0));
            }
            av::TIMESTAMP => {
                exact(8)?;
                let mut raw = [0u8; 8];
                raw.copy_from_slice(value);
                info.timestamp = Some(u64::from_le_bytes(raw));
            }
            _ => {}
        }
    }
    Ok(info)
}

/// A FILETIME as seconds and nanoseconds since the Unix epoch (negative before 1970).
pub fn filetime_to_unix(filetime: u64) -> (i64, u32) {
    let since = i128::from(filetime) - i128::from(FILETIME_UNIX_EPOCH);
    let secs = since.div_euclid(10_000_000);
    let nanos = since.rem_euclid(10_000_000) * 100;
    (secs as i64, nanos as u32)
}

/// A payload field: `len` (u16), `maxlen` (u16), `offset` (u32) at `at`.
fn field<'a>(message: &'a [u8], at: usize, name: &'static str) -> Result<&'a [u8], NtlmError> {
    let len = u16::from_le_bytes([message[at], message[at + 1]]);
    let offset = u32_at(message, at + 4);
    if len == 0 {
        return Ok(&[]);
    }
    let start = offset as usize;
    start
        .checked_add(usize::from(len))
        .and_then(|end| message.get(start..end))
        .ok_or(NtlmError::FieldOutOfBounds {
            field: name,
            offset,
            len,
            message_len: message.len(),
        })
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// UTF-16LE, with unpaired surrogates (and an odd last byte) replaced.
fn utf16(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|pair| match pair {
            [lo, hi] => u16::from_le_bytes([*lo, *hi]),
            _ => 0xFFFD,
        })
        .collect();
    String::from_utf16_lossy(&units)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn utf16le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn pair(id: u16, value: &[u8]) -> Vec<u8> {
        [
            &id.to_le_bytes()[..],
            &(value.len() as u16).to_le_bytes(),
            value,
        ]
        .concat()
    }

    /// A CHALLENGE_MESSAGE as a Windows server in domain CORP would send it.
    pub(crate) fn sample_challenge(timestamp: u64) -> Vec<u8> {
        let target_name = utf16le("CORP");
        let info = [
            pair(av::NB_DOMAIN_NAME, &utf16le("CORP")),
            pair(av::NB_COMPUTER_NAME, &utf16le("PC-0423")),
            pair(av::DNS_DOMAIN_NAME, &utf16le("corp.example.com")),
            pair(av::DNS_COMPUTER_NAME, &utf16le("pc-0423.corp.example.com")),
            pair(av::DNS_TREE_NAME, &utf16le("corp.example.com")),
            pair(av::TIMESTAMP, &timestamp.to_le_bytes()),
            pair(av::EOL, &[]),
        ]
        .concat();
        let flags = flags::UNICODE
            | flags::NTLM
            | flags::TARGET_TYPE_DOMAIN
            | flags::TARGET_INFO
            | flags::VERSION
            | flags::EXTENDED_SESSIONSECURITY;
        let name_offset = 56u32;
        let info_offset = name_offset + target_name.len() as u32;
        let mut m = Vec::new();
        m.extend_from_slice(SIGNATURE);
        m.extend_from_slice(&CHALLENGE.to_le_bytes());
        m.extend_from_slice(&(target_name.len() as u16).to_le_bytes());
        m.extend_from_slice(&(target_name.len() as u16).to_le_bytes());
        m.extend_from_slice(&name_offset.to_le_bytes());
        m.extend_from_slice(&flags.to_le_bytes());
        m.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&(info.len() as u16).to_le_bytes());
        m.extend_from_slice(&(info.len() as u16).to_le_bytes());
        m.extend_from_slice(&info_offset.to_le_bytes());
        // Windows Server 2022: 10.0 build 20348, revision 15.
        m.extend_from_slice(&[10, 0, 0x7C, 0x4F, 0, 0, 0, 0x0F]);
        m.extend_from_slice(&target_name);
        m.extend_from_slice(&info);
        m
    }

    #[test]
    fn the_negotiate_message_has_the_layout_of_ms_nlmp() {
        let m = negotiate_message();
        assert_eq!(m.len(), NEGOTIATE_LEN);
        assert_eq!(&m[..8], b"NTLMSSP\0");
        assert_eq!(&m[8..12], &[1, 0, 0, 0]);
        assert_eq!(u32_at(&m, 12), CLIENT_FLAGS);
        assert_eq!(CLIENT_FLAGS, 0xE208_8235);
        // Empty domain and workstation, offsets at the end.
        assert_eq!(&m[16..24], &[0, 0, 0, 0, 40, 0, 0, 0]);
        assert_eq!(&m[24..32], &[0, 0, 0, 0, 40, 0, 0, 0]);
        assert_eq!(m[39], 0x0F);
    }

    #[test]
    fn a_windows_like_challenge_is_read_in_full() {
        // 2024-05-01T12:00:00Z.
        let filetime = FILETIME_UNIX_EPOCH + 1_714_564_800 * 10_000_000 + 1_234_567;
        let c = parse_challenge(&sample_challenge(filetime)).unwrap();
        assert_eq!(c.target_name.as_deref(), Some("CORP"));
        assert_eq!(c.server_challenge, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(c.flags & flags::TARGET_TYPE_DOMAIN != 0);
        let i = &c.target_info;
        assert_eq!(i.nb_domain_name.as_deref(), Some("CORP"));
        assert_eq!(i.nb_computer_name.as_deref(), Some("PC-0423"));
        assert_eq!(i.dns_domain_name.as_deref(), Some("corp.example.com"));
        assert_eq!(
            i.dns_computer_name.as_deref(),
            Some("pc-0423.corp.example.com")
        );
        assert_eq!(i.dns_tree_name.as_deref(), Some("corp.example.com"));
        assert_eq!(i.timestamp, Some(filetime));
        assert!(i.terminated);
        assert_eq!(i.ids, vec![2, 1, 4, 3, 5, 7, 0]);
        assert_eq!(
            c.version,
            Some(Version {
                major: 10,
                minor: 0,
                build: 20348,
                ntlm_revision: 15
            })
        );
        assert_eq!(filetime_to_unix(filetime), (1_714_564_800, 123_456_700));
    }

    #[test]
    fn filetimes_before_1970_and_at_zero_convert_without_overflow() {
        assert_eq!(filetime_to_unix(FILETIME_UNIX_EPOCH), (0, 0));
        assert_eq!(filetime_to_unix(FILETIME_UNIX_EPOCH - 1), (-1, 999_999_900));
        assert_eq!(filetime_to_unix(0), (-11_644_473_600, 0));
        let (secs, _) = filetime_to_unix(u64::MAX);
        assert!(secs > 0);
    }

    #[test]
    fn a_challenge_without_version_or_timestamp_is_read_as_such() {
        let mut m = sample_challenge(1);
        // Clear NTLMSSP_NEGOTIATE_VERSION.
        let flags = u32_at(&m, 20) & !flags::VERSION;
        m[20..24].copy_from_slice(&flags.to_le_bytes());
        let c = parse_challenge(&m).unwrap();
        assert_eq!(c.version, None);

        let info = [
            pair(av::NB_COMPUTER_NAME, &utf16le("HOST")),
            pair(av::EOL, &[]),
        ]
        .concat();
        let i = parse_target_info(&info).unwrap();
        assert_eq!(i.timestamp, None);
        assert_eq!(i.nb_computer_name.as_deref(), Some("HOST"));
        // Without MsvAvEOL the pairs still read, marked unterminated.
        let i = parse_target_info(&pair(av::NB_COMPUTER_NAME, &utf16le("HOST"))).unwrap();
        assert!(!i.terminated);
    }

    #[test]
    fn malformed_challenges_are_errors() {
        let good = sample_challenge(FILETIME_UNIX_EPOCH);
        assert_eq!(
            parse_challenge(b"NTLMSSX\0aaaa"),
            Err(NtlmError::BadSignature)
        );
        let mut negotiate = negotiate_message();
        negotiate.resize(64, 0);
        assert_eq!(parse_challenge(&negotiate), Err(NtlmError::NotChallenge(1)));
        // TargetInfo pointing past the end.
        let mut m = good.clone();
        m[44..48].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        assert!(matches!(
            parse_challenge(&m),
            Err(NtlmError::FieldOutOfBounds {
                field: "TargetInfo",
                ..
            })
        ));
        // TargetName longer than the message.
        let mut m = good.clone();
        m[12..14].copy_from_slice(&0xFFFFu16.to_le_bytes());
        assert!(matches!(
            parse_challenge(&m),
            Err(NtlmError::FieldOutOfBounds {
                field: "TargetName",
                ..
            })
        ));
        // A timestamp of the wrong length.
        let info = pair(av::TIMESTAMP, &[1, 2, 3, 4]);
        assert_eq!(
            parse_target_info(&info),
            Err(NtlmError::AvPairLength {
                id: av::TIMESTAMP,
                len: 4,
                expected: 8
            })
        );
        // An AV pair whose length runs past the list.
        let mut info = pair(av::NB_COMPUTER_NAME, &utf16le("HOST"));
        info[2] = 200;
        assert_eq!(
            parse_target_info(&info),
            Err(NtlmError::AvPairTruncated { at: 0 })
        );
        assert_eq!(
            parse_target_info(&[7, 0, 8]),
            Err(NtlmError::AvPairTruncated { at: 0 })
        );
    }

    #[test]
    fn every_prefix_and_corruption_of_a_challenge_is_handled_without_panicking() {
        let good = sample_challenge(FILETIME_UNIX_EPOCH + 42);
        for cut in 0..good.len() {
            // Cut inside the header or the payload: an error, or (cut after the last field
            // the header points to) a reading; never a panic.
            let _ = parse_challenge(&good[..cut]);
        }
        for cut in 0..CHALLENGE_HEADER_LEN {
            assert!(parse_challenge(&good[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..good.len() {
            for value in [0x00, 0x01, 0x07, 0x7F, 0x80, 0xFE, 0xFF] {
                let mut bent = good.clone();
                bent[i] = value;
                let _ = parse_challenge(&bent);
            }
        }
        for len in 0..64 {
            let _ = parse_target_info(&vec![0xFF; len]);
            let _ = parse_target_info(&vec![0x07; len]);
        }
    }

    #[test]
    fn odd_length_names_are_read_with_a_replacement_character() {
        assert_eq!(utf16(&[b'A', 0, b'B']), "A\u{FFFD}");
        assert_eq!(utf16(&[]), "");
    }
}
