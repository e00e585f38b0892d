//! `rdp-tls`: negotiate TLS (or CredSSP, which starts with TLS) as a client does, then do
//! the TLS handshake on the same connection (MS-RDPBCGR 5.4.5.1) with a verifier that
//! accepts any certificate but records the chain, and report the version, the cipher suite
//! and the certificate. Then, each on a fresh connection and a fresh negotiation, find
//! which TLS versions the server accepts: 1.0 and 1.1 with a hand-made ClientHello
//! ([`super::hello`]), 1.2 and 1.3 with rustls pinned to that version.
//!
//! A server that answers the ClientHello with plaintext RDP bytes (xrdp sends an MCS
//! Disconnect Provider Ultimatum when its key does not match its certificate, or its key is
//! too weak for its TLS library) is reported as a broken host certificate or key.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme,
    SupportedProtocolVersion,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::cert::{self, Validity};
use super::hello::{self, FlightError, Progress, ServerAnswer};
use super::negotiate::exchange;
use super::{connect_once, guess_service, hex, is_reset, locate, read_until};
use crate::checks::elapsed_ms;
pub use crate::rdp::report::{
    HandshakeOutcome, ProbeMethod, RdpTlsReport, SignatureCheck, TlsHandshake, TlsOptions,
    TlsProblem, TlsVerdict, TlsVersion, TlsVersionProbe, VersionResult,
};
use crate::rdp::report::{NegotiationAttempt, NegotiationOutcome};
use crate::rdp::x224::{self, ConnectionRequest, FailureCode, Protocol};
use crate::target::{CheckTarget, Host};

/// Runs `rdp-tls` with the default options.
pub async fn tls(target: &CheckTarget, timeout: Duration) -> RdpTlsReport {
    tls_with(target, timeout, &TlsOptions::default()).await
}

/// Runs `rdp-tls`. `timeout` bounds each step (connect, negotiation reply, handshake).
pub async fn tls_with(
    target: &CheckTarget,
    timeout: Duration,
    options: &TlsOptions,
) -> RdpTlsReport {
    tls_with_chain(target, timeout, options).await.0
}

/// Runs `rdp-tls` and also hands back the certificate chain the server sent, as DER (empty
/// when none was read).
pub(crate) async fn tls_with_chain(
    target: &CheckTarget,
    timeout: Duration,
    options: &TlsOptions,
) -> (RdpTlsReport, Vec<Vec<u8>>) {
    let started = Instant::now();
    let request = ConnectionRequest {
        cookie: options
            .cookie
            .clone()
            .filter(|c| x224::validate_cookie(c).is_ok()),
        requested: options.requested,
        flags: 0,
    };
    let located = locate(target, timeout).await;
    let mut report = RdpTlsReport {
        target: target.clone(),
        resolution_error: located.resolution_error,
        connect: located.connect,
        address: located.address,
        negotiation: None,
        handshake: TlsHandshake {
            outcome: HandshakeOutcome::NotAttempted {
                reason: "no TCP connection".to_owned(),
            },
            elapsed_ms: 0.0,
        },
        certificate: None,
        certificate_source: None,
        certificate_error: None,
        chain: Vec::new(),
        versions: Vec::new(),
        accepted_versions: Vec::new(),
        problems: Vec::new(),
        verdict: TlsVerdict::Unreachable,
        elapsed_ms: 0.0,
    };
    let (Some(address), Some(mut stream)) = (located.address, located.stream) else {
        report.verdict = if report.resolution_error.is_some() {
            TlsVerdict::NotResolved
        } else {
            TlsVerdict::Unreachable
        };
        report.elapsed_ms = elapsed_ms(started);
        return (report, Vec::new());
    };

    let negotiation_started = Instant::now();
    let outcome = exchange(&mut stream, &request, timeout).await;
    let negotiation = NegotiationAttempt {
        requested: request.requested,
        elapsed_ms: elapsed_ms(negotiation_started),
        outcome,
    };
    let mut raw_certificates: Option<Vec<Vec<u8>>> = None;
    if selects_tls(&negotiation.outcome) {
        let run =
            rustls_handshake(&mut stream, &target.host, rustls::DEFAULT_VERSIONS, timeout).await;
        report.handshake = TlsHandshake {
            outcome: run.outcome,
            elapsed_ms: run.elapsed_ms,
        };
        if !run.chain.is_empty() {
            report.certificate_source = Some(ProbeMethod::Rustls);
            raw_certificates = Some(run.chain);
        }
    } else {
        report.handshake.outcome = HandshakeOutcome::NotAttempted {
            reason: format!(
                "the negotiation did not select TLS: {}",
                describe(&negotiation.outcome)
            ),
        };
    }
    drop(stream);

    if options.probe_versions && selects_tls(&negotiation.outcome) {
        for version in TlsVersion::PROBED {
            let (probe, certificates) =
                probe_version(address, &target.host, &request, version, timeout).await;
            if raw_certificates.is_none() && !certificates.is_empty() {
                report.certificate_source = Some(probe.method);
                raw_certificates = Some(certificates);
            }
            report.versions.push(probe);
        }
    }
    report.accepted_versions = report
        .versions
        .iter()
        .filter(|p| p.result.accepted())
        .map(|p| p.version)
        .collect();
    if let HandshakeOutcome::Established { version, .. } = &report.handshake.outcome {
        if !report.accepted_versions.contains(version) && report.versions.is_empty() {
            report.accepted_versions.push(*version);
        }
    }

    if let Some(chain) = &raw_certificates {
        report.chain = chain.iter().map(|der| cert::chain_entry(der)).collect();
        match cert::analyse(&chain[0], &target.host, SystemTime::now()) {
            Ok(c) => report.certificate = Some(c),
            Err(e) => report.certificate_error = Some(e.to_string()),
        }
    }
    report.negotiation = Some(negotiation);
    report.problems = problems(&report);
    report.verdict = verdict(&report);
    report.elapsed_ms = elapsed_ms(started);
    (report, raw_certificates.unwrap_or_default())
}

fn selects_tls(outcome: &NegotiationOutcome) -> bool {
    matches!(outcome, NegotiationOutcome::Selected { protocol, .. } if protocol.starts_with_tls())
}

pub(crate) fn describe(outcome: &NegotiationOutcome) -> String {
    match outcome {
        NegotiationOutcome::Selected { protocol, .. } => format!("it selected {protocol}"),
        NegotiationOutcome::Failure { code, .. } => format!("the server answered {code}"),
        NegotiationOutcome::NoNegotiationData => {
            "the server sent no negotiation data (Standard RDP Security)".into()
        }
        NegotiationOutcome::ConnectFailed { state, .. } => {
            format!("the TCP connection failed ({state:?})")
        }
        NegotiationOutcome::NoReply { .. } => "no reply to the connection request".into(),
        NegotiationOutcome::Closed { .. } => "the server closed the connection".into(),
        NegotiationOutcome::Unexpected { what, .. } => format!("unexpected reply: {what}"),
        NegotiationOutcome::Error { detail } => detail.clone(),
    }
}

fn problems(report: &RdpTlsReport) -> Vec<TlsProblem> {
    let mut out = Vec::new();
    match &report.handshake.outcome {
        HandshakeOutcome::PlaintextDisconnect { .. } => out.push(TlsProblem::PlaintextDisconnect),
        HandshakeOutcome::Established {
            server_signature: SignatureCheck::Invalid,
            ..
        } => out.push(TlsProblem::ServerSignatureInvalid),
        HandshakeOutcome::Established { .. } | HandshakeOutcome::NotAttempted { .. } => {}
        _ => out.push(TlsProblem::HandshakeFailed),
    }
    if report.certificate_error.is_some() {
        out.push(TlsProblem::CertificateUnreadable);
    }
    let accepted = |v: TlsVersion| report.accepted_versions.contains(&v);
    let modern = accepted(TlsVersion::Tls12) || accepted(TlsVersion::Tls13);
    if !report.versions.is_empty()
        && !modern
        && report.accepted_versions.iter().any(|v| v.is_legacy())
    {
        out.push(TlsProblem::NoModernTls);
    }
    if let Some(c) = &report.certificate {
        match c.validity {
            Validity::Expired => out.push(TlsProblem::CertificateExpired),
            Validity::NotYetValid => out.push(TlsProblem::CertificateNotYetValid),
            Validity::Valid => {}
        }
        if !c.name_match.matched {
            out.push(TlsProblem::NameMismatch);
        }
        if c.self_signed {
            out.push(TlsProblem::SelfSigned);
        }
        if c.public_key.is_weak() {
            out.push(TlsProblem::WeakKey);
        }
        let server_usage = ["any", "server-auth", "remote-desktop-auth"];
        if !c.extended_key_usage.is_empty()
            && !c
                .extended_key_usage
                .iter()
                .any(|u| server_usage.contains(&u.as_str()))
        {
            out.push(TlsProblem::NoServerAuthUsage);
        }
    }
    if report.accepted_versions.iter().any(|v| v.is_legacy()) {
        out.push(TlsProblem::LegacyTlsAccepted);
    }
    let tls12_raw_only = report.versions.iter().any(|p| {
        p.version == TlsVersion::Tls12
            && p.method == ProbeMethod::RawClientHello
            && p.result.accepted()
    });
    if tls12_raw_only && !accepted(TlsVersion::Tls13) {
        out.push(TlsProblem::LegacyCipherSuitesOnly);
        // The handshake failed for want of a suite this probe's TLS library implements,
        // not because of the server: Windows clients do offer those suites.
        out.retain(|p| *p != TlsProblem::HandshakeFailed);
    }
    out
}

fn verdict(report: &RdpTlsReport) -> TlsVerdict {
    if report.resolution_error.is_some() {
        return TlsVerdict::NotResolved;
    }
    let Some(negotiation) = &report.negotiation else {
        return TlsVerdict::Unreachable;
    };
    if !selects_tls(&negotiation.outcome) {
        return match &negotiation.outcome {
            NegotiationOutcome::Failure {
                code: FailureCode::SslCertNotOnServer,
                ..
            } => TlsVerdict::CertificateMissing,
            NegotiationOutcome::Failure {
                code: FailureCode::SslNotAllowedByServer,
                ..
            }
            | NegotiationOutcome::NoNegotiationData => TlsVerdict::TlsNotOffered,
            NegotiationOutcome::Selected {
                protocol: Protocol::Rdp,
                ..
            } => TlsVerdict::TlsNotOffered,
            NegotiationOutcome::ConnectFailed { .. } => TlsVerdict::Unreachable,
            _ => TlsVerdict::NegotiationFailed,
        };
    }
    let has = |p: TlsProblem| report.problems.contains(&p);
    if has(TlsProblem::PlaintextDisconnect)
        || has(TlsProblem::ServerSignatureInvalid)
        || has(TlsProblem::CertificateUnreadable)
    {
        return TlsVerdict::CertificateOrKeyBroken;
    }
    if has(TlsProblem::NoModernTls) {
        return TlsVerdict::OnlyLegacyTls;
    }
    let established = matches!(
        report.handshake.outcome,
        HandshakeOutcome::Established { .. }
    );
    if !established && !has(TlsProblem::LegacyCipherSuitesOnly) {
        return TlsVerdict::HandshakeFailed;
    }
    if report.certificate.is_none() {
        return TlsVerdict::HandshakeFailed;
    }
    if has(TlsProblem::CertificateExpired) {
        TlsVerdict::CertificateExpired
    } else if has(TlsProblem::CertificateNotYetValid) {
        TlsVerdict::CertificateNotYetValid
    } else if has(TlsProblem::NameMismatch) {
        TlsVerdict::NameMismatch
    } else if has(TlsProblem::SelfSigned) {
        TlsVerdict::SelfSigned
    } else {
        TlsVerdict::Ok
    }
}

/// One version on a fresh connection with a fresh negotiation. Returns the certificates seen
/// in clear (raw probes of TLS 1.0-1.2 only).
async fn probe_version(
    address: SocketAddr,
    host: &Host,
    request: &ConnectionRequest,
    version: TlsVersion,
    timeout: Duration,
) -> (TlsVersionProbe, Vec<Vec<u8>>) {
    let started = Instant::now();
    let method = match version {
        TlsVersion::Tls12 | TlsVersion::Tls13 => ProbeMethod::Rustls,
        _ => ProbeMethod::RawClientHello,
    };
    let finish = |method, result, certificates| {
        (
            TlsVersionProbe {
                version,
                method,
                result,
                elapsed_ms: elapsed_ms(started),
            },
            certificates,
        )
    };
    let mut stream = match negotiated_connection(address, request, timeout).await {
        Ok(stream) => stream,
        Err(reason) => return finish(method, VersionResult::NotTested { reason }, Vec::new()),
    };
    if method == ProbeMethod::RawClientHello {
        let (result, certificates) = raw_probe(&mut stream, host, version, timeout).await;
        return finish(method, result, certificates);
    }
    let pinned: &[&'static SupportedProtocolVersion] = if version == TlsVersion::Tls13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12]
    };
    let run = rustls_handshake(&mut stream, host, pinned, timeout).await;
    drop(stream);
    let result = match run.outcome {
        HandshakeOutcome::Established {
            version: got,
            cipher_suite,
            ..
        } if got == version => VersionResult::Accepted {
            cipher_suite,
            note: None,
        },
        HandshakeOutcome::Established { version: got, .. } => {
            VersionResult::OtherVersion { answered: got }
        }
        HandshakeOutcome::Alert { alert } => VersionResult::Refused { reason: alert },
        HandshakeOutcome::PlaintextDisconnect { pdu, .. } => {
            VersionResult::PlaintextDisconnect { pdu }
        }
        HandshakeOutcome::Closed { received, .. } => VersionResult::Closed { received },
        HandshakeOutcome::NoReply { .. } => VersionResult::NoReply,
        HandshakeOutcome::NotTls { first_bytes, .. } => VersionResult::NotTls { first_bytes },
        HandshakeOutcome::Failed { detail } => VersionResult::Refused { reason: detail },
        HandshakeOutcome::NotAttempted { reason } => VersionResult::NotTested { reason },
    };
    // rustls offers only AEAD suites with ECDHE. A TLS 1.2 server limited to older suites
    // (RSA key exchange, CBC: Windows Server 2012 R2 with an RSA certificate, for one)
    // refuses it; ask again with the raw ClientHello, which offers those too.
    let refused = matches!(
        result,
        VersionResult::Refused { .. } | VersionResult::Closed { .. }
    );
    if version == TlsVersion::Tls12 && refused {
        if let Ok(mut stream) = negotiated_connection(address, request, timeout).await {
            if let (VersionResult::Accepted { cipher_suite, .. }, certificates) =
                raw_probe(&mut stream, host, version, timeout).await
            {
                let refusal = match &result {
                    VersionResult::Refused { reason } => reason.clone(),
                    _ => "connection closed".to_owned(),
                };
                let note = Some(format!(
                    "the server refused the rustls handshake ({refusal}), which offers only ECDHE \
                     with AEAD suites, and accepted {cipher_suite} from the raw ClientHello"
                ));
                return finish(
                    ProbeMethod::RawClientHello,
                    VersionResult::Accepted { cipher_suite, note },
                    certificates,
                );
            }
        }
    }
    finish(method, result, Vec::new())
}

/// A new TCP connection on which the server selected a TLS-based protocol.
async fn negotiated_connection(
    address: SocketAddr,
    request: &ConnectionRequest,
    timeout: Duration,
) -> Result<TcpStream, String> {
    let (attempt, stream) = connect_once(address, timeout).await;
    let Some(mut stream) = stream else {
        return Err(format!("the TCP connection failed ({:?})", attempt.state));
    };
    let outcome = exchange(&mut stream, request, timeout).await;
    if selects_tls(&outcome) {
        Ok(stream)
    } else {
        Err(format!(
            "the negotiation did not select TLS: {}",
            describe(&outcome)
        ))
    }
}

/// Sends the hand-made ClientHello for `version` and reads the answer up to the server's
/// certificate.
async fn raw_probe(
    stream: &mut TcpStream,
    host: &Host,
    version: TlsVersion,
    timeout: Duration,
) -> (VersionResult, Vec<Vec<u8>>) {
    let mut random = [0u8; 32];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).is_err() {
        // A probe needs no secret randomness; a clock-derived value will do.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        random[..16].copy_from_slice(&nanos.to_be_bytes());
    }
    let sni = if host.ip().is_none() {
        Some(host.as_str())
    } else {
        None
    };
    let hello_bytes = hello::client_hello(version, sni, random);
    let deadline = Instant::now() + timeout;
    match tokio::time::timeout_at(deadline.into(), stream.write_all(&hello_bytes)).await {
        Err(_) => return (VersionResult::NoReply, Vec::new()),
        Ok(Err(e)) if is_reset(&e) => return (VersionResult::Closed { received: 0 }, Vec::new()),
        Ok(Err(e)) => {
            return (
                VersionResult::Failed {
                    detail: e.to_string(),
                },
                Vec::new(),
            )
        }
        Ok(Ok(())) => {}
    }
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::time::timeout_at(deadline.into(), stream.read(&mut chunk)).await;
        let ended = match read {
            Ok(Ok(0)) => Some(VersionResult::Closed {
                received: buf.len(),
            }),
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                None
            }
            Ok(Err(e)) if is_reset(&e) => Some(VersionResult::Closed {
                received: buf.len(),
            }),
            Ok(Err(e)) => Some(VersionResult::Failed {
                detail: e.to_string(),
            }),
            Err(_) => Some(VersionResult::NoReply),
        };
        if let Some(end) = ended {
            // The hello alone is an answer when the rest never comes.
            return match hello::hello_so_far(&buf) {
                Some((answered, suite)) => (hello_result(version, answered, suite), Vec::new()),
                None => (end, Vec::new()),
            };
        }
        if buf.len() >= 2 && buf[0] == x224::TPKT_VERSION && buf[1] == 0 {
            let want = x224::tpkt_length(&buf, x224::MAX_CONFIRM_LEN).unwrap_or(buf.len());
            let _ = read_until(
                stream,
                &mut buf,
                want,
                deadline.min(Instant::now() + Duration::from_secs(1)),
            )
            .await;
            return (
                VersionResult::PlaintextDisconnect {
                    pdu: x224::describe_tpkt(&buf),
                },
                Vec::new(),
            );
        }
        match hello::parse_flight(&buf) {
            Ok(Progress::NeedMore) => {}
            Ok(Progress::Done(ServerAnswer::Hello {
                version: answered,
                cipher_suite,
                certificates,
            })) => return (hello_result(version, answered, cipher_suite), certificates),
            Ok(Progress::Done(ServerAnswer::Alert { description, .. })) => {
                return (
                    VersionResult::Refused {
                        reason: hello::alert_name(description),
                    },
                    Vec::new(),
                )
            }
            Err(FlightError::NotTls(_)) => {
                return (
                    VersionResult::NotTls {
                        first_bytes: hex(&buf),
                    },
                    Vec::new(),
                )
            }
            Err(e) => {
                return (
                    VersionResult::Failed {
                        detail: e.to_string(),
                    },
                    Vec::new(),
                )
            }
        }
    }
}

fn hello_result(asked: TlsVersion, answered: TlsVersion, suite: u16) -> VersionResult {
    if answered == asked {
        VersionResult::Accepted {
            cipher_suite: hello::cipher_suite_name(suite),
            note: None,
        }
    } else {
        VersionResult::OtherVersion { answered }
    }
}

/// What a rustls handshake produced.
pub(crate) struct HandshakeRun {
    pub outcome: HandshakeOutcome,
    /// The certificates the server sent, leaf first, DER.
    pub chain: Vec<Vec<u8>>,
    pub elapsed_ms: f64,
}

/// A handshake that ends the TLS session (close_notify) once established.
async fn rustls_handshake(
    stream: &mut TcpStream,
    host: &Host,
    versions: &[&'static SupportedProtocolVersion],
    timeout: Duration,
) -> HandshakeRun {
    let (run, conn) = rustls_open(stream, host, versions, timeout).await;
    if let Some(mut conn) = conn {
        conn.send_close_notify();
        let mut out = Vec::new();
        while conn.wants_write() && conn.write_tls(&mut out).is_ok() {}
        let _ = tokio::time::timeout(Duration::from_millis(200), stream.write_all(&out)).await;
    }
    run
}

/// The handshake (every certificate accepted and recorded), leaving the session open: the
/// connection is returned when the handshake completed, for a protocol that runs inside
/// TLS (CredSSP).
pub(crate) async fn rustls_open(
    stream: &mut TcpStream,
    host: &Host,
    versions: &[&'static SupportedProtocolVersion],
    timeout: Duration,
) -> (HandshakeRun, Option<ClientConnection>) {
    let started = Instant::now();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let recorder = Arc::new(Recorder {
        algorithms: provider.signature_verification_algorithms,
        seen: Mutex::new(Seen::default()),
    });
    let failed = |detail: String| {
        (
            HandshakeRun {
                outcome: HandshakeOutcome::Failed { detail },
                chain: Vec::new(),
                elapsed_ms: elapsed_ms(started),
            },
            None,
        )
    };
    let config =
        match ClientConfig::builder_with_provider(provider).with_protocol_versions(versions) {
            Ok(builder) => builder
                .dangerous()
                .with_custom_certificate_verifier(recorder.clone())
                .with_no_client_auth(),
            Err(e) => return failed(e.to_string()),
        };
    let name = match ServerName::try_from(host.as_str().to_owned()) {
        Ok(name) => name,
        Err(e) => return failed(e.to_string()),
    };
    let mut conn = match ClientConnection::new(Arc::new(config), name) {
        Ok(conn) => conn,
        Err(e) => return failed(e.to_string()),
    };
    let result = drive(stream, &mut conn, timeout).await;
    let (chain, signature) = recorder.take();
    let (outcome, conn) = match result {
        Ok(()) => (
            HandshakeOutcome::Established {
                version: conn
                    .protocol_version()
                    .map(|v| TlsVersion::from_wire(u16::from(v)))
                    .unwrap_or(TlsVersion::Unknown(0)),
                cipher_suite: conn
                    .negotiated_cipher_suite()
                    .map(|s| hello::cipher_suite_name(u16::from(s.suite())))
                    .unwrap_or_default(),
                server_signature: signature.unwrap_or(SignatureCheck::NotChecked),
            },
            Some(conn),
        ),
        Err(outcome) => (outcome, None),
    };
    (
        HandshakeRun {
            outcome,
            chain,
            elapsed_ms: elapsed_ms(started),
        },
        conn,
    )
}

/// Moves TLS records between the socket and rustls until the handshake completes. The
/// first bytes from the server are looked at before rustls sees them, so that plaintext RDP
/// is recognised as such.
async fn drive(
    stream: &mut TcpStream,
    conn: &mut ClientConnection,
    timeout: Duration,
) -> Result<(), HandshakeOutcome> {
    let deadline = Instant::now() + timeout;
    let mut head: Vec<u8> = Vec::new();
    let mut classified = false;
    let mut received = 0usize;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        while conn.wants_write() {
            let mut out = Vec::new();
            if let Err(e) = conn.write_tls(&mut out) {
                return Err(HandshakeOutcome::Failed {
                    detail: e.to_string(),
                });
            }
            match tokio::time::timeout_at(deadline.into(), stream.write_all(&out)).await {
                Err(_) => return Err(HandshakeOutcome::NoReply { received }),
                Ok(Err(e)) if is_reset(&e) => {
                    return Err(HandshakeOutcome::Closed {
                        received,
                        reset: true,
                    })
                }
                Ok(Err(e)) => {
                    return Err(HandshakeOutcome::Failed {
                        detail: e.to_string(),
                    })
                }
                Ok(Ok(())) => {}
            }
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        let n = match tokio::time::timeout_at(deadline.into(), stream.read(&mut chunk)).await {
            Err(_) => return Err(HandshakeOutcome::NoReply { received }),
            Ok(Ok(0)) => {
                if !classified && !head.is_empty() && !hello::looks_like_tls(&head) {
                    return Err(not_tls(&head));
                }
                return Err(HandshakeOutcome::Closed {
                    received,
                    reset: false,
                });
            }
            Ok(Ok(n)) => n,
            Ok(Err(e)) if is_reset(&e) => {
                return Err(HandshakeOutcome::Closed {
                    received,
                    reset: true,
                })
            }
            Ok(Err(e)) => {
                return Err(HandshakeOutcome::Failed {
                    detail: e.to_string(),
                })
            }
        };
        received += n;
        if classified {
            feed(conn, &chunk[..n])?;
            continue;
        }
        head.extend_from_slice(&chunk[..n]);
        if head.len() < 2 {
            continue;
        }
        if head[0] == x224::TPKT_VERSION && head[1] == 0 {
            let want = x224::tpkt_length(&head, x224::MAX_CONFIRM_LEN).unwrap_or(head.len());
            let more = deadline.min(Instant::now() + Duration::from_secs(1));
            let _ = read_until(stream, &mut head, want, more).await;
            return Err(HandshakeOutcome::PlaintextDisconnect {
                pdu: x224::describe_tpkt(&head),
                first_bytes: hex(&head),
            });
        }
        if !hello::looks_like_tls(&head) {
            return Err(not_tls(&head));
        }
        classified = true;
        feed(conn, &head)?;
        head.clear();
    }
}

fn not_tls(head: &[u8]) -> HandshakeOutcome {
    HandshakeOutcome::NotTls {
        what: guess_service(head),
        first_bytes: hex(head),
    }
}

/// Hands bytes from the socket to rustls; a TLS error or alert ends the session.
pub(crate) fn feed(conn: &mut ClientConnection, mut data: &[u8]) -> Result<(), HandshakeOutcome> {
    while !data.is_empty() {
        if let Err(e) = conn.read_tls(&mut data) {
            return Err(HandshakeOutcome::Failed {
                detail: e.to_string(),
            });
        }
        if let Err(e) = conn.process_new_packets() {
            return Err(match e {
                rustls::Error::AlertReceived(alert) => HandshakeOutcome::Alert {
                    alert: hello::alert_name(u8::from(alert)),
                },
                other => HandshakeOutcome::Failed {
                    detail: other.to_string(),
                },
            });
        }
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Seen {
    chain: Vec<Vec<u8>>,
    signature: Option<SignatureCheck>,
}

/// A certificate verifier that accepts every certificate and records what it was shown:
/// the probe reports on the certificate instead of refusing it.
#[derive(Debug)]
struct Recorder {
    algorithms: WebPkiSupportedAlgorithms,
    seen: Mutex<Seen>,
}

impl Recorder {
    fn take(&self) -> (Vec<Vec<u8>>, Option<SignatureCheck>) {
        match self.seen.lock() {
            Ok(mut seen) => (std::mem::take(&mut seen.chain), seen.signature),
            Err(_) => (Vec::new(), None),
        }
    }

    fn record_signature(
        &self,
        cert: &CertificateDer<'_>,
        result: Result<HandshakeSignatureValid, rustls::Error>,
    ) {
        let check = match result {
            Ok(_) => SignatureCheck::Verified,
            // ring refuses RSA keys under 2048 bits whatever the signature.
            Err(_) if cert::rsa_key_bits(cert.as_ref()).is_some_and(|bits| bits < 2048) => {
                SignatureCheck::Unsupported
            }
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)) => {
                SignatureCheck::Invalid
            }
            Err(_) => SignatureCheck::Unsupported,
        };
        if let Ok(mut seen) = self.seen.lock() {
            seen.signature = Some(check);
        }
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.as_ref().to_vec())
                .collect();
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let result = rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms);
        self.record_signature(cert, result);
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let result = rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms);
        self.record_signature(cert, result);
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
