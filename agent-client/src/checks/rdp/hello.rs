//! A minimal TLS ClientHello for one protocol version (RFC 2246 7.4.1.2, RFC 4346, RFC 5246
//! 7.4.1.2), and a parser for what a server answers to it: ServerHello (and the Certificate
//! message that follows it in TLS 1.0 to 1.2, which travels in the clear), or an alert.
//!
//! This exists because rustls speaks only TLS 1.2 and 1.3: to learn whether a server still
//! accepts TLS 1.0 or 1.1, or accepts TLS 1.2 only with cipher suites rustls does not
//! implement, the probe sends this hand-made hello and reads the first flight. No key
//! exchange follows: the connection is dropped after the server's answer. Pure functions.

pub use crate::rdp::report::TlsVersion;

/// TLS record content types (RFC 5246 6.2.1).
pub const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
pub const CONTENT_ALERT: u8 = 21;
pub const CONTENT_HANDSHAKE: u8 = 22;
pub const CONTENT_APPLICATION_DATA: u8 = 23;

const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const HANDSHAKE_SERVER_HELLO: u8 = 2;
const HANDSHAKE_CERTIFICATE: u8 = 11;
const HANDSHAKE_SERVER_KEY_EXCHANGE: u8 = 12;
const HANDSHAKE_CERTIFICATE_REQUEST: u8 = 13;
const HANDSHAKE_SERVER_HELLO_DONE: u8 = 14;

/// Most bytes of a server's first flight this parser reads (certificate chains included).
pub const MAX_FLIGHT: usize = 256 * 1024;

/// Cipher suites offered with TLS 1.0 and 1.1: everything Windows (Schannel) and OpenSSL
/// servers of that era pick from, strong first, RC4 and 3DES last.
const LEGACY_SUITES: &[u16] = &[
    0xc00a, 0xc014, 0xc009, 0xc013, // ECDHE with AES-CBC-SHA
    0x0039, 0x0033, // DHE-RSA with AES-CBC-SHA
    0x0035, 0x002f, // RSA with AES-CBC-SHA
    0xc012, 0x0016, 0x000a, // 3DES
    0x0005, 0x0004, // RC4
];

/// Cipher suites added for TLS 1.2: the AEAD and SHA-2 suites, including the RSA key
/// exchange and CBC ones that rustls does not implement.
const TLS12_SUITES: &[u16] = &[
    0xc02c, 0xc030, 0xc02b, 0xc02f, 0xcca9, 0xcca8, // ECDHE AEAD
    0x009f, 0x009e, // DHE-RSA AES-GCM
    0xc024, 0xc028, 0xc023, 0xc027, // ECDHE AES-CBC-SHA2
    0x006b, 0x0067, // DHE-RSA AES-CBC-SHA256
    0x009d, 0x009c, 0x003d, 0x003c, // RSA key exchange, SHA-2
];

/// The IANA name of a cipher suite, for the suites this module offers and those rustls
/// negotiates; others are shown by number.
pub fn cipher_suite_name(suite: u16) -> String {
    let name = match suite {
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        0x009e => "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        0x009f => "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        0xc023 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        0xc024 => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        0xc027 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        0xc028 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        0xc009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xc00a => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xc013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xc014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0x0033 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
        0x0039 => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
        0x0067 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
        0x006b => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
        0x009c => "TLS_RSA_WITH_AES_128_GCM_SHA256",
        0x009d => "TLS_RSA_WITH_AES_256_GCM_SHA384",
        0x003c => "TLS_RSA_WITH_AES_128_CBC_SHA256",
        0x003d => "TLS_RSA_WITH_AES_256_CBC_SHA256",
        0x002f => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0xc012 => "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        0x0016 => "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
        0x000a => "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        0x0005 => "TLS_RSA_WITH_RC4_128_SHA",
        0x0004 => "TLS_RSA_WITH_RC4_128_MD5",
        other => return format!("0x{other:04X}"),
    };
    name.to_owned()
}

/// The name of a TLS alert description (RFC 8446 6, RFC 5246 7.2).
pub fn alert_name(description: u8) -> String {
    let name = match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        other => return format!("alert_{other}"),
    };
    name.to_owned()
}

/// Builds a ClientHello record that offers exactly `version` (TLS 1.0, 1.1 or 1.2; no
/// `supported_versions` extension, so a TLS 1.3 server answers with 1.2 or lower). `sni` is
/// sent when the target is a host name.
pub fn client_hello(version: TlsVersion, sni: Option<&str>, random: [u8; 32]) -> Vec<u8> {
    let mut suites: Vec<u16> = Vec::new();
    if version == TlsVersion::Tls12 {
        suites.extend_from_slice(TLS12_SUITES);
    }
    suites.extend_from_slice(LEGACY_SUITES);
    suites.push(0x00ff); // TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746)

    let mut extensions = Vec::new();
    if let Some(name) = sni.filter(|n| !n.is_empty() && n.len() < 256) {
        // server_name (RFC 6066 3): one host_name entry.
        let mut list = vec![0u8];
        list.extend_from_slice(&(name.len() as u16).to_be_bytes());
        list.extend_from_slice(name.as_bytes());
        let mut body = (list.len() as u16).to_be_bytes().to_vec();
        body.extend(list);
        push_extension(&mut extensions, 0x0000, &body);
    }
    // supported_groups (RFC 8422 5.1.1): x25519, secp256r1, secp384r1, secp521r1.
    push_extension(
        &mut extensions,
        0x000a,
        &[0, 8, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18, 0x00, 0x19],
    );
    // ec_point_formats: uncompressed.
    push_extension(&mut extensions, 0x000b, &[1, 0]);
    if version == TlsVersion::Tls12 {
        // signature_algorithms (RFC 5246 7.4.1.4.1, RFC 8446 4.2.3).
        let schemes: [u16; 11] = [
            0x0804, 0x0805, 0x0806, // rsa_pss_rsae_sha256/384/512
            0x0401, 0x0501, 0x0601, // rsa_pkcs1_sha256/384/512
            0x0403, 0x0503, 0x0603, // ecdsa_secp256r1_sha256 ...
            0x0201, 0x0203, // rsa_pkcs1_sha1, ecdsa_sha1
        ];
        let mut body = ((schemes.len() * 2) as u16).to_be_bytes().to_vec();
        for s in schemes {
            body.extend_from_slice(&s.to_be_bytes());
        }
        push_extension(&mut extensions, 0x000d, &body);
    }
    // extended_master_secret (RFC 7627).
    push_extension(&mut extensions, 0x0017, &[]);

    let mut hello = Vec::new();
    hello.extend_from_slice(&version.wire().to_be_bytes());
    hello.extend_from_slice(&random);
    hello.push(0); // no session id
    hello.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in &suites {
        hello.extend_from_slice(&s.to_be_bytes());
    }
    hello.extend_from_slice(&[1, 0]); // compression: null only
    hello.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    hello.extend(extensions);

    let mut handshake = vec![HANDSHAKE_CLIENT_HELLO];
    handshake.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend(hello);

    // The record layer says TLS 1.0 for compatibility with old middleboxes, as clients do.
    let mut record = vec![CONTENT_HANDSHAKE, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

fn push_extension(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// What a server's first flight said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAnswer {
    /// A ServerHello, with the certificates that followed it when the flight had them.
    Hello {
        version: TlsVersion,
        cipher_suite: u16,
        certificates: Vec<Vec<u8>>,
    },
    /// A TLS alert instead of a ServerHello.
    Alert { level: u8, description: u8 },
}

/// How far parsing got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// More bytes are needed.
    NeedMore,
    /// The answer is complete.
    Done(ServerAnswer),
}

/// Why the flight is not TLS, or not a sensible answer to a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlightError {
    #[error("the server answered with bytes that are not TLS (first byte {0:#04x})")]
    NotTls(u8),
    #[error("malformed TLS from the server: {0}")]
    Malformed(&'static str),
    #[error("the server sent more than {MAX_FLIGHT} bytes without finishing its hello")]
    TooLong,
}

/// True when `first` can start a TLS record (a content type, then major version 3).
pub fn looks_like_tls(bytes: &[u8]) -> bool {
    match bytes {
        [] => true,
        [t] => (CONTENT_CHANGE_CIPHER_SPEC..=CONTENT_APPLICATION_DATA).contains(t),
        [t, major, ..] => {
            (CONTENT_CHANGE_CIPHER_SPEC..=CONTENT_APPLICATION_DATA).contains(t) && *major == 3
        }
    }
}

/// Parses the bytes a server has sent so far in answer to [`client_hello`]. Call again with
/// the longer buffer while it answers [`Progress::NeedMore`].
pub fn parse_flight(bytes: &[u8]) -> Result<Progress, FlightError> {
    if bytes.len() > MAX_FLIGHT {
        return Err(FlightError::TooLong);
    }
    if !looks_like_tls(bytes) {
        return Err(FlightError::NotTls(bytes[0]));
    }
    // Reassemble the handshake stream from whole records; an alert ends everything.
    let mut handshake = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() < 5 {
            break;
        }
        let kind = rest[0];
        if !looks_like_tls(&rest[..2]) {
            return Err(FlightError::NotTls(kind));
        }
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if len > 16384 + 2048 {
            return Err(FlightError::Malformed("record longer than TLS allows"));
        }
        if rest.len() < 5 + len {
            break;
        }
        let fragment = &rest[5..5 + len];
        rest = &rest[5 + len..];
        match kind {
            CONTENT_ALERT => {
                if handshake.first() == Some(&HANDSHAKE_SERVER_HELLO) {
                    // An alert after the ServerHello (e.g. the server dislikes something
                    // later): report the hello with what came before.
                    break;
                }
                if fragment.len() < 2 {
                    return Err(FlightError::Malformed("alert shorter than 2 bytes"));
                }
                return Ok(Progress::Done(ServerAnswer::Alert {
                    level: fragment[0],
                    description: fragment[1],
                }));
            }
            CONTENT_HANDSHAKE => handshake.extend_from_slice(fragment),
            // A ChangeCipherSpec ends the clear-text part of the flight.
            CONTENT_CHANGE_CIPHER_SPEC => break,
            _ => {
                return Err(FlightError::Malformed(
                    "application data before the handshake",
                ))
            }
        }
    }
    parse_handshake_messages(&handshake)
}

fn parse_handshake_messages(mut stream: &[u8]) -> Result<Progress, FlightError> {
    let mut hello: Option<(TlsVersion, u16)> = None;
    let mut certificates = Vec::new();
    while stream.len() >= 4 {
        let kind = stream[0];
        let len =
            (usize::from(stream[1]) << 16) | (usize::from(stream[2]) << 8) | usize::from(stream[3]);
        if stream.len() < 4 + len {
            break;
        }
        let body = &stream[4..4 + len];
        stream = &stream[4 + len..];
        match (kind, &hello) {
            (HANDSHAKE_SERVER_HELLO, None) => hello = Some(parse_server_hello(body)?),
            (HANDSHAKE_SERVER_HELLO, Some(_)) => {
                return Err(FlightError::Malformed("two ServerHello messages"))
            }
            (_, None) => {
                return Err(FlightError::Malformed(
                    "a handshake message before the ServerHello",
                ))
            }
            (HANDSHAKE_CERTIFICATE, Some((version, suite))) => {
                certificates = parse_certificate_list(body)?;
                return Ok(Progress::Done(ServerAnswer::Hello {
                    version: *version,
                    cipher_suite: *suite,
                    certificates,
                }));
            }
            (
                HANDSHAKE_SERVER_KEY_EXCHANGE
                | HANDSHAKE_CERTIFICATE_REQUEST
                | HANDSHAKE_SERVER_HELLO_DONE,
                Some((version, suite)),
            ) => {
                // No Certificate message (anonymous suites or resumption): done without one.
                return Ok(Progress::Done(ServerAnswer::Hello {
                    version: *version,
                    cipher_suite: *suite,
                    certificates,
                }));
            }
            (_, Some(_)) => {}
        }
    }
    match hello {
        // TLS 1.3 encrypts everything after the ServerHello: nothing more to read in clear.
        Some((version @ TlsVersion::Tls13, suite), ..) => Ok(Progress::Done(ServerAnswer::Hello {
            version,
            cipher_suite: suite,
            certificates,
        })),
        _ => Ok(Progress::NeedMore),
    }
}

/// After the ServerHello, the answer is complete enough to report when the connection ends
/// or stays silent: what the hello said, without certificates.
pub fn hello_so_far(bytes: &[u8]) -> Option<(TlsVersion, u16)> {
    let mut rest = bytes;
    let mut handshake = Vec::new();
    while rest.len() >= 5 && rest[0] == CONTENT_HANDSHAKE {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        let take = len.min(rest.len() - 5);
        handshake.extend_from_slice(&rest[5..5 + take]);
        rest = &rest[5 + take..];
    }
    if handshake.first() != Some(&HANDSHAKE_SERVER_HELLO) || handshake.len() < 4 {
        return None;
    }
    let len = (usize::from(handshake[1]) << 16)
        | (usize::from(handshake[2]) << 8)
        | usize::from(handshake[3]);
    handshake
        .get(4..4 + len)
        .and_then(|body| parse_server_hello(body).ok())
}

fn parse_server_hello(body: &[u8]) -> Result<(TlsVersion, u16), FlightError> {
    let short = FlightError::Malformed("ServerHello too short");
    if body.len() < 2 + 32 + 1 {
        return Err(short);
    }
    let mut version = TlsVersion::from_wire(u16::from_be_bytes([body[0], body[1]]));
    let session_len = usize::from(body[34]);
    let after_session = 35 + session_len;
    if body.len() < after_session + 3 {
        return Err(short);
    }
    let suite = u16::from_be_bytes([body[after_session], body[after_session + 1]]);
    // Extensions: a supported_versions extension (RFC 8446 4.2.1) carries the real version.
    let mut ext = &body[after_session + 3..];
    if ext.len() >= 2 {
        let total = usize::from(u16::from_be_bytes([ext[0], ext[1]]));
        ext = &ext[2..ext.len().min(2 + total)];
        while ext.len() >= 4 {
            let kind = u16::from_be_bytes([ext[0], ext[1]]);
            let len = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            if ext.len() < 4 + len {
                return Err(FlightError::Malformed("ServerHello extension overruns"));
            }
            if kind == 0x002b && len == 2 {
                version = TlsVersion::from_wire(u16::from_be_bytes([ext[4], ext[5]]));
            }
            ext = &ext[4 + len..];
        }
    }
    Ok((version, suite))
}

fn parse_certificate_list(body: &[u8]) -> Result<Vec<Vec<u8>>, FlightError> {
    let bad = FlightError::Malformed("Certificate message lengths do not add up");
    if body.len() < 3 {
        return Err(bad);
    }
    let total = (usize::from(body[0]) << 16) | (usize::from(body[1]) << 8) | usize::from(body[2]);
    let mut list = body.get(3..3 + total).ok_or(bad.clone())?;
    let mut out = Vec::new();
    while !list.is_empty() {
        if list.len() < 3 {
            return Err(bad);
        }
        let len = (usize::from(list[0]) << 16) | (usize::from(list[1]) << 8) | usize::from(list[2]);
        let der = list.get(3..3 + len).ok_or(bad.clone())?;
        out.push(der.to_vec());
        list = &list[3 + len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![kind, 3, 3];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut h = vec![kind];
        h.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        h.extend_from_slice(body);
        h
    }

    fn server_hello(version: u16, suite: u16, extensions: &[u8]) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend_from_slice(&[7; 32]);
        b.push(32);
        b.extend_from_slice(&[9; 32]);
        b.extend_from_slice(&suite.to_be_bytes());
        b.push(0);
        if !extensions.is_empty() {
            b.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
            b.extend_from_slice(extensions);
        }
        handshake(HANDSHAKE_SERVER_HELLO, &b)
    }

    fn certificate(certs: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for c in certs {
            list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
            list.extend_from_slice(c);
        }
        let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
        body.extend(list);
        handshake(HANDSHAKE_CERTIFICATE, &body)
    }

    #[test]
    fn the_client_hello_is_well_formed_and_offers_one_version() {
        let hello = client_hello(TlsVersion::Tls10, Some("pc1.example"), [0x11; 32]);
        assert_eq!(&hello[..3], &[CONTENT_HANDSHAKE, 3, 1]);
        let record_len = usize::from(u16::from_be_bytes([hello[3], hello[4]]));
        assert_eq!(record_len + 5, hello.len());
        assert_eq!(hello[5], HANDSHAKE_CLIENT_HELLO);
        let hs_len =
            (usize::from(hello[6]) << 16) | (usize::from(hello[7]) << 8) | usize::from(hello[8]);
        assert_eq!(hs_len + 4, record_len);
        assert_eq!(&hello[9..11], &[3, 1], "client_version is TLS 1.0");
        assert_eq!(&hello[11..43], &[0x11; 32]);
        let suites_len = usize::from(u16::from_be_bytes([hello[44], hello[45]]));
        let suites: Vec<u16> = hello[46..46 + suites_len]
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        assert!(suites.contains(&0x002f) && suites.contains(&0x00ff));
        assert!(
            !suites.contains(&0xc02f),
            "no TLS 1.2-only suite in a TLS 1.0 hello"
        );
        let sni = b"pc1.example";
        assert!(hello.windows(sni.len()).any(|w| w == sni));

        let hello12 = client_hello(TlsVersion::Tls12, None, [0; 32]);
        assert_eq!(&hello12[9..11], &[3, 3]);
        assert!(hello12.windows(2).any(|w| w == [0xc0, 0x2f]));
    }

    #[test]
    fn parses_a_tls10_hello_with_its_certificates() {
        let mut flight = record(CONTENT_HANDSHAKE, &server_hello(0x0301, 0xc014, &[]));
        let mut second = certificate(&[b"leaf-der", b"ca-der"]);
        second.extend(handshake(HANDSHAKE_SERVER_HELLO_DONE, &[]));
        flight.extend(record(CONTENT_HANDSHAKE, &second));
        for cut in 0..flight.len() {
            assert_eq!(
                parse_flight(&flight[..cut]),
                Ok(Progress::NeedMore),
                "cut at {cut}"
            );
        }
        assert_eq!(
            parse_flight(&flight),
            Ok(Progress::Done(ServerAnswer::Hello {
                version: TlsVersion::Tls10,
                cipher_suite: 0xc014,
                certificates: vec![b"leaf-der".to_vec(), b"ca-der".to_vec()],
            }))
        );
        assert_eq!(hello_so_far(&flight[..60]), None);
        assert_eq!(
            hello_so_far(&flight[..5 + 4 + 70 + 5]),
            Some((TlsVersion::Tls10, 0xc014))
        );
    }

    #[test]
    fn handshake_messages_may_span_records() {
        let mut stream = server_hello(0x0303, 0x002f, &[]);
        stream.extend(certificate(&[b"leaf"]));
        let (a, b) = stream.split_at(50);
        let mut flight = record(CONTENT_HANDSHAKE, a);
        flight.extend(record(CONTENT_HANDSHAKE, b));
        let Ok(Progress::Done(ServerAnswer::Hello {
            version,
            certificates,
            ..
        })) = parse_flight(&flight)
        else {
            panic!("not parsed")
        };
        assert_eq!(version, TlsVersion::Tls12);
        assert_eq!(certificates, vec![b"leaf".to_vec()]);
    }

    #[test]
    fn supported_versions_gives_the_tls13_version() {
        let flight = record(
            CONTENT_HANDSHAKE,
            &server_hello(0x0303, 0x1301, &[0x00, 0x2b, 0, 2, 3, 4]),
        );
        assert_eq!(
            parse_flight(&flight),
            Ok(Progress::Done(ServerAnswer::Hello {
                version: TlsVersion::Tls13,
                cipher_suite: 0x1301,
                certificates: vec![],
            }))
        );
    }

    #[test]
    fn an_alert_is_the_answer() {
        // OpenSSL refusing TLS 1.0: fatal protocol_version.
        let flight = [21, 3, 1, 0, 2, 2, 70];
        assert_eq!(
            parse_flight(&flight),
            Ok(Progress::Done(ServerAnswer::Alert {
                level: 2,
                description: 70
            }))
        );
        assert_eq!(alert_name(70), "protocol_version");
        assert_eq!(alert_name(200), "alert_200");
    }

    #[test]
    fn plaintext_and_garbage_are_errors() {
        // xrdp's plaintext disconnect.
        assert_eq!(
            parse_flight(&[3, 0, 0, 9, 2, 0xf0, 0x80, 0x21, 0x80]),
            Err(FlightError::NotTls(3))
        );
        assert_eq!(
            parse_flight(b"HTTP/1.1 400"),
            Err(FlightError::NotTls(b'H'))
        );
        assert!(matches!(
            parse_flight(&[21, 3, 1, 0, 1, 2]),
            Err(FlightError::Malformed(_))
        ));
        let bad_cert = record(CONTENT_HANDSHAKE, &{
            let mut s = server_hello(0x0303, 0x002f, &[]);
            s.extend(handshake(HANDSHAKE_CERTIFICATE, &[0, 0, 9, 0, 0, 1]));
            s
        });
        assert!(matches!(
            parse_flight(&bad_cert),
            Err(FlightError::Malformed(_))
        ));
        let early = record(
            CONTENT_HANDSHAKE,
            &handshake(HANDSHAKE_CERTIFICATE, &[0, 0, 0]),
        );
        assert!(matches!(
            parse_flight(&early),
            Err(FlightError::Malformed(_))
        ));
        assert!(looks_like_tls(&[]));
        assert!(!looks_like_tls(&[0x16, 0x00]));
    }

    #[test]
    fn names_and_versions_round_trip() {
        for v in TlsVersion::PROBED {
            let json = serde_json::to_value(v).unwrap();
            assert_eq!(serde_json::from_value::<TlsVersion>(json).unwrap(), v);
        }
        assert_eq!(serde_json::to_value(TlsVersion::Tls12).unwrap(), "TLSv1.2");
        assert_eq!(
            cipher_suite_name(0xc030),
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        );
        assert_eq!(cipher_suite_name(0x1234), "0x1234");
        assert!(TlsVersion::Tls11.is_legacy() && !TlsVersion::Tls12.is_legacy());
    }
}
