//! `clock-compare`: read the RDP host's clock over RDP itself and compare it with this
//! computer's, the way nmap's `rdp-ntlm-info` reads a host's names.
//!
//! 1. X.224 negotiation asking for TLS or CredSSP (`PROTOCOL_SSL | PROTOCOL_HYBRID`,
//!    MS-RDPBCGR 2.2.1.1). When the server does not select CredSSP, a second connection asks
//!    for CredSSP alone so that the refusal is read by name (RDP_NEG_FAILURE, 2.2.1.2.2).
//! 2. TLS on the same connection (MS-RDPBCGR 5.4.5.2), every certificate accepted: this is a
//!    probe, not a logon.
//! 3. A CredSSP TSRequest (MS-CSSP 2.2.1) carrying an NTLM NEGOTIATE_MESSAGE (MS-NLMP
//!    2.2.1.1); the server answers with a TSRequest carrying its CHALLENGE_MESSAGE
//!    (2.2.1.2), whose TargetInfo holds MsvAvTimestamp, the host's clock as a FILETIME
//!    (2.2.2.1), and the host's NetBIOS and DNS names. No credential is sent; the connection
//!    is dropped after the challenge.
//!
//! The offset is host minus local, local being the midpoint between sending the negotiate
//! and receiving the challenge; the host read its clock somewhere in between, so half the
//! round trip bounds the error.

use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};
use rustls::ClientConnection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::negotiate::exchange;
use super::tls::{describe, feed, rustls_open};
use super::{connect_once, hex, is_reset, locate};
use crate::checks::elapsed_ms;
pub use crate::rdp::clock::{
    ClockCompareReport, ClockReading, ClockUnreadable, ClockVerdict, CredsspAnswer, NtlmHostInfo,
    NtlmTargetType, ProductVersion, DEFAULT_TOLERANCE_S,
};
use crate::rdp::credssp::{self, TsRequest};
use crate::rdp::der;
use crate::rdp::ntlm::{self, Challenge};
use crate::rdp::report::{HandshakeOutcome, NegotiationAttempt, NegotiationOutcome, TlsHandshake};
use crate::rdp::x224::{ConnectionRequest, Protocol, ProtocolSet};
use crate::target::CheckTarget;
use crate::wire::PortState;

/// What a client that offers NLA asks for.
const FIRST_REQUEST: ProtocolSet = ProtocolSet::SSL_HYBRID;
/// CredSSP alone: a server that does not do it must answer with a failure code.
const CREDSSP_ONLY: ProtocolSet = ProtocolSet(Protocol::PROTOCOL_HYBRID);

/// Runs `clock-compare`. `timeout` bounds each step (connect, negotiation reply, TLS
/// handshake, the CredSSP answer); `tolerance_s` is the largest difference called in sync.
pub async fn clock_compare(
    target: &CheckTarget,
    tolerance_s: u32,
    timeout: Duration,
) -> ClockCompareReport {
    let started = Instant::now();
    let located = locate(target, timeout).await;
    let mut report = ClockCompareReport {
        target: target.clone(),
        resolution_error: located.resolution_error,
        connect: located.connect,
        address: located.address,
        negotiation: Vec::new(),
        tls: None,
        credssp: None,
        host: None,
        clock: None,
        tolerance_s,
        verdict: ClockVerdict::CouldNotRead,
        unreadable: None,
        explanation: String::new(),
        elapsed_ms: 0.0,
    };
    let unreadable = read_clock(&mut report, located.address, located.stream, timeout).await;
    finish(&mut report, unreadable);
    report.elapsed_ms = elapsed_ms(started);
    report
}

/// Fills in the report up to the clock; `Err` says why the clock could not be read.
async fn read_clock(
    report: &mut ClockCompareReport,
    address: Option<std::net::SocketAddr>,
    stream: Option<TcpStream>,
    timeout: Duration,
) -> Result<(), ClockUnreadable> {
    if let Some(detail) = &report.resolution_error {
        return Err(ClockUnreadable::NotResolved {
            detail: detail.clone(),
        });
    }
    let (Some(address), Some(stream)) = (address, stream) else {
        return Err(ClockUnreadable::Unreachable {
            state: connect_state(report),
        });
    };

    // 1. Negotiation.
    let mut stream = negotiate_credssp(report, address, stream, timeout).await?;

    // 2. TLS on the same connection.
    let (run, conn) = rustls_open(
        &mut stream,
        &report.target.host,
        rustls::DEFAULT_VERSIONS,
        timeout,
    )
    .await;
    let tls_failure = describe_handshake(&run.outcome);
    report.tls = Some(TlsHandshake {
        outcome: run.outcome,
        elapsed_ms: run.elapsed_ms,
    });
    let Some(mut conn) = conn else {
        return Err(ClockUnreadable::TlsFailed {
            detail: tls_failure,
        });
    };

    // 3. CredSSP: TSRequest with the NTLM negotiate, the server's TSRequest back.
    let exchanged = credssp_round_trip(&mut stream, &mut conn, timeout).await;
    close(&mut stream, &mut conn).await;
    let (answer, sent_at, round_trip) = exchanged?;
    let challenge = challenge_of(report, &answer)?;
    report.host = Some(host_info(&challenge));
    let Some(filetime) = challenge.target_info.timestamp else {
        return Err(ClockUnreadable::NoTimestamp);
    };
    report.clock = Some(reading(filetime, sent_at, round_trip, report.tolerance_s));
    Ok(())
}

/// Negotiates CredSSP on `stream`; when the server chooses something else, asks again on a
/// new connection for CredSSP alone (and goes on with that connection if it is accepted).
async fn negotiate_credssp(
    report: &mut ClockCompareReport,
    address: std::net::SocketAddr,
    mut stream: TcpStream,
    timeout: Duration,
) -> Result<TcpStream, ClockUnreadable> {
    let first = negotiate_once(&mut stream, FIRST_REQUEST, timeout).await;
    let first_outcome = first.outcome.clone();
    report.negotiation.push(first);
    if first_outcome.selected().is_some_and(Protocol::is_credssp) {
        return Ok(stream);
    }
    drop(stream);
    if !first_outcome.answered() {
        return Err(ClockUnreadable::NegotiationFailed {
            detail: describe(&first_outcome),
        });
    }
    let selected = first_outcome.selected();
    let mut failure = match first_outcome {
        NegotiationOutcome::Failure { code, .. } => Some(code),
        _ => None,
    };
    let (attempt, stream) = connect_once(address, timeout).await;
    if let Some(mut stream) = stream {
        let second = negotiate_once(&mut stream, CREDSSP_ONLY, timeout).await;
        let second_outcome = second.outcome.clone();
        report.negotiation.push(second);
        match second_outcome {
            o if o.selected().is_some_and(Protocol::is_credssp) => return Ok(stream),
            NegotiationOutcome::Failure { code, .. } => failure = Some(code),
            _ => {}
        }
    } else {
        report.negotiation.push(NegotiationAttempt {
            requested: CREDSSP_ONLY,
            elapsed_ms: attempt.elapsed_ms,
            outcome: NegotiationOutcome::ConnectFailed {
                state: attempt.state,
                detail: attempt.detail,
            },
        });
    }
    Err(ClockUnreadable::CredsspNotOffered { selected, failure })
}

async fn negotiate_once(
    stream: &mut TcpStream,
    requested: ProtocolSet,
    timeout: Duration,
) -> NegotiationAttempt {
    let started = Instant::now();
    let request = ConnectionRequest {
        cookie: None,
        requested,
        flags: 0,
    };
    let outcome = exchange(stream, &request, timeout).await;
    NegotiationAttempt {
        requested,
        elapsed_ms: elapsed_ms(started),
        outcome,
    }
}

/// Sends the TSRequest with the NTLM negotiate and reads one complete TSRequest back.
/// Returns it with the local clock when it was sent and the round trip.
async fn credssp_round_trip(
    stream: &mut TcpStream,
    conn: &mut ClientConnection,
    timeout: Duration,
) -> Result<(TsRequest, SystemTime, Duration), ClockUnreadable> {
    let no_answer = |detail: String| ClockUnreadable::NoCredsspAnswer { detail };
    let request = credssp::encode_ts_request(credssp::CLIENT_VERSION, &ntlm::negotiate_message());
    conn.writer()
        .write_all(&request)
        .map_err(|e| no_answer(e.to_string()))?;
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)
            .map_err(|e| no_answer(e.to_string()))?;
    }
    let sent_wall = SystemTime::now();
    let sent = Instant::now();
    match tokio::time::timeout(timeout, stream.write_all(&out)).await {
        Err(_) => return Err(no_answer("the TSRequest could not be sent in time".into())),
        Ok(Err(e)) => return Err(no_answer(format!("sending the TSRequest failed: {e}"))),
        Ok(Ok(())) => {}
    }

    let deadline = sent + timeout;
    let mut plain: Vec<u8> = Vec::new();
    let mut answered_at: Option<Instant> = None;
    let mut chunk = vec![0u8; 16 * 1024];
    let mut received = 0usize;
    loop {
        if let Some(total) = complete_len(&plain)? {
            let answer = credssp::parse_ts_request(&plain[..total]).map_err(|e| {
                ClockUnreadable::NoChallenge {
                    detail: format!("{e} (first bytes {})", hex(&plain)),
                }
            })?;
            let round_trip = answered_at.unwrap_or_else(Instant::now) - sent;
            return Ok((answer, sent_wall, round_trip));
        }
        let read = tokio::time::timeout_at(deadline.into(), stream.read(&mut chunk)).await;
        let ended = |how: &str| {
            no_answer(format!(
                "the server {how} after the TSRequest ({received} bytes received)"
            ))
        };
        let n = match read {
            Err(_) => {
                return Err(ended(&format!(
                    "sent nothing complete within {} ms",
                    timeout.as_millis()
                )))
            }
            Ok(Ok(0)) => return Err(ended("closed the connection")),
            Ok(Ok(n)) => n,
            Ok(Err(e)) if is_reset(&e) => return Err(ended("reset the connection")),
            Ok(Err(e)) => return Err(no_answer(e.to_string())),
        };
        let arrived = Instant::now();
        received += n;
        feed(conn, &chunk[..n]).map_err(|o| no_answer(describe_handshake(&o)))?;
        let before = plain.len();
        loop {
            match conn.reader().read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => plain.extend_from_slice(&chunk[..n]),
                Err(_) => break,
            }
            if plain.len() > credssp::MAX_TS_REQUEST_LEN {
                break;
            }
        }
        if plain.len() > before && answered_at.is_none() {
            answered_at = Some(arrived);
        }
    }
}

/// The length of the TSRequest at the front of `plain` once all of it is there.
fn complete_len(plain: &[u8]) -> Result<Option<usize>, ClockUnreadable> {
    let not_ts_request = |detail: String| ClockUnreadable::NoChallenge {
        detail: format!("{detail} (first bytes {})", hex(plain)),
    };
    if plain.is_empty() {
        return Ok(None);
    }
    if plain[0] != der::SEQUENCE {
        return Err(not_ts_request("the answer is not a TSRequest".into()));
    }
    match der::element_len(plain) {
        Ok(Some(total)) if total > credssp::MAX_TS_REQUEST_LEN => Err(not_ts_request(format!(
            "the answer announces {total} bytes, more than a TSRequest with an NTLM challenge"
        ))),
        Ok(Some(total)) if plain.len() >= total => Ok(Some(total)),
        Ok(_) => Ok(None),
        Err(e) => Err(not_ts_request(format!(
            "the answer is not a TSRequest: {e}"
        ))),
    }
}

/// Ends the TLS session politely; the server then drops the half-done logon.
async fn close(stream: &mut TcpStream, conn: &mut ClientConnection) {
    conn.send_close_notify();
    let mut out = Vec::new();
    while conn.wants_write() && conn.write_tls(&mut out).is_ok() {}
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.write_all(&out)).await;
}

/// Records the server's TSRequest and finds the NTLM challenge in it.
fn challenge_of(
    report: &mut ClockCompareReport,
    answer: &TsRequest,
) -> Result<Challenge, ClockUnreadable> {
    let found = answer
        .nego_tokens
        .first()
        .map(|token| (token, credssp::inner_token(token)));
    report.credssp = Some(CredsspAnswer {
        version: answer.version,
        error_code: answer.error_code,
        error_name: answer
            .error_code
            .and_then(credssp::status_name)
            .map(str::to_owned),
        token: found.and_then(|(_, inner)| inner.map(|(_, wrapping)| wrapping)),
    });
    match found {
        None => match answer.error_code {
            Some(code) => Err(ClockUnreadable::CredsspError {
                code,
                name: credssp::status_name(code).map(str::to_owned),
            }),
            None => Err(ClockUnreadable::NoChallenge {
                detail: "the server's TSRequest carries no token".into(),
            }),
        },
        Some((token, None)) => Err(ClockUnreadable::NoChallenge {
            detail: format!(
                "the token is neither NTLM nor SPNEGO-wrapped NTLM (first bytes {})",
                hex(token)
            ),
        }),
        Some((_, Some((message, _)))) => {
            ntlm::parse_challenge(message).map_err(|e| ClockUnreadable::NoChallenge {
                detail: e.to_string(),
            })
        }
    }
}

fn host_info(challenge: &Challenge) -> NtlmHostInfo {
    let info = &challenge.target_info;
    let target_type = if challenge.flags & ntlm::flags::TARGET_TYPE_DOMAIN != 0 {
        Some(NtlmTargetType::Domain)
    } else if challenge.flags & ntlm::flags::TARGET_TYPE_SERVER != 0 {
        Some(NtlmTargetType::Server)
    } else {
        None
    };
    NtlmHostInfo {
        target_name: challenge.target_name.clone(),
        target_type,
        netbios_computer_name: info.nb_computer_name.clone(),
        netbios_domain_name: info.nb_domain_name.clone(),
        dns_computer_name: info.dns_computer_name.clone(),
        dns_domain_name: info.dns_domain_name.clone(),
        dns_tree_name: info.dns_tree_name.clone(),
        product_version: challenge.version.map(|v| ProductVersion {
            major: v.major,
            minor: v.minor,
            build: v.build,
            ntlm_revision: v.ntlm_revision,
            display: format!("{}.{}.{}", v.major, v.minor, v.build),
        }),
        negotiate_flags: challenge.flags,
        av_ids: info.ids.clone(),
    }
}

/// Compares the host's FILETIME with the local clock at the middle of the round trip.
pub(crate) fn reading(
    filetime: u64,
    sent_at: SystemTime,
    round_trip: Duration,
    tolerance_s: u32,
) -> ClockReading {
    let (host_secs, host_nanos) = ntlm::filetime_to_unix(filetime);
    let host = host_secs as f64 + f64::from(host_nanos) / 1e9;
    let local_mid = sent_at + round_trip / 2;
    let local = unix_seconds(local_mid);
    let offset = host - local;
    // The fraction of a second in the stamp, in 100 ns units.
    let fraction = filetime % 10_000_000;
    let whole_seconds = fraction == 0;
    let uncertainty = round_trip.as_secs_f64() / 2.0 + if whole_seconds { 1.0 } else { 0.0 };
    let tolerance = f64::from(tolerance_s);
    let certain = offset.abs() + uncertainty <= tolerance || offset.abs() - uncertainty > tolerance;
    ClockReading {
        filetime,
        host_time: rfc3339(host_secs, host_nanos),
        local_time: DateTime::<Utc>::from(local_mid).to_rfc3339_opts(SecondsFormat::Millis, true),
        offset_s: round_ms(offset),
        round_trip_ms: round_ms(round_trip.as_secs_f64() * 1000.0),
        uncertainty_s: round_ms(uncertainty),
        whole_seconds,
        certain,
    }
}

fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

fn rfc3339(secs: i64, nanos: u32) -> String {
    DateTime::from_timestamp(secs, nanos)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| format!("{secs}s since 1970"))
}

fn round_ms(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// The verdict and the sentence, from what was read.
fn finish(report: &mut ClockCompareReport, result: Result<(), ClockUnreadable>) {
    match (result, &report.clock) {
        (Ok(()), Some(clock)) => {
            let skewed = clock.offset_s.abs() > f64::from(report.tolerance_s);
            report.verdict = if skewed {
                ClockVerdict::Skewed
            } else {
                ClockVerdict::InSync
            };
            report.explanation = explain(clock, report.tolerance_s, skewed);
        }
        (Ok(()), None) => {
            // Not reached: a reading is always made when nothing failed.
            report.verdict = ClockVerdict::CouldNotRead;
            report.unreadable = Some(ClockUnreadable::NoTimestamp);
            report.explanation = ClockUnreadable::NoTimestamp.explanation();
        }
        (Err(why), _) => {
            report.verdict = ClockVerdict::CouldNotRead;
            report.explanation = why.explanation();
            report.unreadable = Some(why);
        }
    }
}

fn explain(clock: &ClockReading, tolerance_s: u32, skewed: bool) -> String {
    let direction = if clock.offset_s < 0.0 {
        "behind"
    } else {
        "ahead of"
    };
    let observed = format!(
        "The host's clock is {} {direction} this computer's ({:+.3} s ± {:.3} s, read from its NTLM challenge)",
        human(clock.offset_s.abs()),
        clock.offset_s,
        clock.uncertainty_s
    );
    let judged = if skewed {
        format!(
            "more than the {tolerance_s} s that Kerberos and CredSSP tolerate: Network Level Authentication fails while the clocks differ this much."
        )
    } else {
        format!("within the {tolerance_s} s that Kerberos and CredSSP tolerate.")
    };
    let caveat = if clock.certain {
        ""
    } else {
        " The difference is close to the tolerance: within the uncertainty the verdict could go either way."
    };
    format!("{observed}, {judged}{caveat}")
}

/// `15 min 0 s`, `2.3 s`, `1 h 2 min 3 s`, `3 d 4 h`.
fn human(seconds: f64) -> String {
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let total = seconds.round() as u64;
    let (d, h, m, s) = (
        total / 86_400,
        total % 86_400 / 3600,
        total % 3600 / 60,
        total % 60,
    );
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min {s} s")
    } else {
        format!("{m} min {s} s")
    }
}

fn connect_state(report: &ClockCompareReport) -> PortState {
    let any = |s: PortState| report.connect.iter().any(|a| a.state == s);
    [
        PortState::Refused,
        PortState::NoAnswer,
        PortState::Unreachable,
    ]
    .into_iter()
    .find(|s| any(*s))
    .unwrap_or(PortState::Error)
}

fn describe_handshake(outcome: &HandshakeOutcome) -> String {
    match outcome {
        HandshakeOutcome::Established { version, .. } => format!("established ({version})"),
        HandshakeOutcome::PlaintextDisconnect { pdu, .. } => {
            format!("the server answered TLS with plaintext RDP: {pdu}")
        }
        HandshakeOutcome::Alert { alert } => format!("TLS alert {alert}"),
        HandshakeOutcome::Closed { received, reset } => format!(
            "the server {} the connection ({received} bytes received)",
            if *reset { "reset" } else { "closed" }
        ),
        HandshakeOutcome::NoReply { received } => {
            format!("no (complete) answer in time ({received} bytes received)")
        }
        HandshakeOutcome::NotTls { what, .. } => format!("not TLS: {what}"),
        HandshakeOutcome::Failed { detail } => detail.clone(),
        HandshakeOutcome::NotAttempted { reason } => reason.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdp::ntlm::FILETIME_UNIX_EPOCH;

    fn filetime_of(t: SystemTime) -> u64 {
        let d = t.duration_since(UNIX_EPOCH).unwrap();
        FILETIME_UNIX_EPOCH + d.as_secs() * 10_000_000 + u64::from(d.subsec_nanos() / 100)
    }

    #[test]
    fn the_offset_uses_the_middle_of_the_round_trip() {
        let sent = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let rtt = Duration::from_millis(200);
        // The host stamped exactly at the middle, 0.1 s after sending, 900 s behind.
        let host = sent + Duration::from_millis(100) - Duration::from_secs(900);
        let r = reading(filetime_of(host) + 1, sent, rtt, 300);
        assert!((r.offset_s + 900.0).abs() < 0.001, "{r:?}");
        assert_eq!(r.round_trip_ms, 200.0);
        assert!(!r.whole_seconds);
        assert_eq!(r.uncertainty_s, 0.1);
        assert!(r.certain);
        assert_eq!(r.local_time, "2023-11-14T22:13:20.100Z");
        assert_eq!(r.host_time, "2023-11-14T21:58:20.100Z");
    }

    #[test]
    fn whole_second_timestamps_widen_the_uncertainty() {
        let sent = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let r = reading(
            filetime_of(sent),
            sent,
            Duration::from_millis(2),
            DEFAULT_TOLERANCE_S,
        );
        assert!(r.whole_seconds);
        assert_eq!(r.uncertainty_s, 1.001);
        assert_eq!(r.offset_s, -0.001);
    }

    #[test]
    fn a_difference_near_the_tolerance_is_not_certain() {
        let sent = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let host = sent + Duration::from_millis(300_200);
        let r = reading(
            filetime_of(host) + 1,
            sent,
            Duration::from_millis(1000),
            300,
        );
        assert!(!r.certain, "{r:?}");
        let r = reading(filetime_of(host) + 1, sent, Duration::from_millis(10), 300);
        assert!(r.certain, "{r:?}");
    }

    #[test]
    fn verdicts_and_sentences() {
        let sent = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut report = ClockCompareReport {
            target: CheckTarget::parse("pc1").unwrap(),
            resolution_error: None,
            connect: vec![],
            address: None,
            negotiation: vec![],
            tls: None,
            credssp: None,
            host: None,
            clock: Some(reading(
                filetime_of(sent - Duration::from_secs(900)) + 1,
                sent,
                Duration::from_millis(4),
                300,
            )),
            tolerance_s: 300,
            verdict: ClockVerdict::CouldNotRead,
            unreadable: None,
            explanation: String::new(),
            elapsed_ms: 0.0,
        };
        finish(&mut report, Ok(()));
        assert_eq!(report.verdict, ClockVerdict::Skewed);
        assert!(
            report.explanation.contains("15 min 0 s behind"),
            "{}",
            report.explanation
        );
        report.tolerance_s = 1000;
        finish(&mut report, Ok(()));
        assert_eq!(report.verdict, ClockVerdict::InSync);

        let why = ClockUnreadable::CredsspNotOffered {
            selected: Some(Protocol::Ssl),
            failure: Some(crate::rdp::x224::FailureCode::SslRequiredByServer),
        };
        finish(&mut report, Err(why.clone()));
        assert_eq!(report.verdict, ClockVerdict::CouldNotRead);
        assert_eq!(report.unreadable, Some(why));
        assert!(report.explanation.contains("SSL_REQUIRED_BY_SERVER"));
        assert!(report.explanation.contains("PROTOCOL_SSL"));

        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["verdict"], "could-not-read");
        assert_eq!(json["unreadable"]["reason"], "credssp-not-offered");
        assert_eq!(json["unreadable"]["failure"], "SSL_REQUIRED_BY_SERVER");
        let back: ClockCompareReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(human(2.34), "2.3 s");
        assert_eq!(human(900.0), "15 min 0 s");
        assert_eq!(human(3723.0), "1 h 2 min 3 s");
        assert_eq!(human(3.0 * 86_400.0 + 4.0 * 3600.0), "3 d 4 h");
    }

    #[test]
    fn a_challenge_maps_to_host_information() {
        let bytes = crate::rdp::ntlm::tests::sample_challenge(FILETIME_UNIX_EPOCH);
        let info = host_info(&ntlm::parse_challenge(&bytes).unwrap());
        assert_eq!(info.target_type, Some(NtlmTargetType::Domain));
        assert_eq!(info.netbios_computer_name.as_deref(), Some("PC-0423"));
        assert_eq!(
            info.product_version.map(|v| v.display).as_deref(),
            Some("10.0.20348")
        );
    }

    #[test]
    fn the_answer_is_complete_once_its_der_length_is_there() {
        let full = credssp::encode_ts_request(6, b"NTLMSSP\0\x02\0\0\0");
        assert_eq!(complete_len(&[]), Ok(None));
        for cut in 1..full.len() {
            assert_eq!(complete_len(&full[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(complete_len(&full), Ok(Some(full.len())));
        assert!(complete_len(b"\x15\x03\x03").is_err());
        assert!(complete_len(&[0x30, 0x84, 0x7F, 0xFF, 0xFF, 0xFF]).is_err());
    }
}
