//! `rdp-negotiate`: ask the server, on separate connections, for several sets of security
//! protocols (X.224 Connection Request with RDP_NEG_REQ, MS-RDPBCGR 2.2.1.1) and record what
//! each Connection Confirm says (RDP_NEG_RSP or RDP_NEG_FAILURE, 2.2.1.2), then summarise
//! what the server accepts and prefers.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{connect_once, guess_service, hex, locate, read_until, ReadEnd};
use crate::checks::elapsed_ms;
pub use crate::rdp::report::{
    NegotiateOptions, NegotiateVerdict, NegotiationAttempt, NegotiationOutcome, NegotiationSummary,
    RdpNegotiateReport, Support,
};
use crate::rdp::x224::{
    self, Confirm, ConnectionRequest, FailureCode, NegRspFlag, Protocol, ProtocolSet,
};
use crate::target::CheckTarget;

/// Runs `rdp-negotiate` with the default protocol sets (RDP; SSL; SSL|HYBRID;
/// SSL|HYBRID|HYBRID_EX) and no cookie.
pub async fn negotiate(target: &CheckTarget, timeout: Duration) -> RdpNegotiateReport {
    negotiate_with(target, timeout, &NegotiateOptions::default()).await
}

/// Runs `rdp-negotiate` with the given protocol sets and cookie. A cookie that is not
/// printable ASCII without spaces is not sent (the report's `cookie` is then null).
pub async fn negotiate_with(
    target: &CheckTarget,
    timeout: Duration,
    options: &NegotiateOptions,
) -> RdpNegotiateReport {
    let started = Instant::now();
    let cookie = options
        .cookie
        .clone()
        .filter(|c| x224::validate_cookie(c).is_ok());
    let mut located = locate(target, timeout).await;
    let mut attempts = Vec::with_capacity(options.requests.len());
    if let Some(address) = located.address {
        for requested in &options.requests {
            let attempt_started = Instant::now();
            let request = ConnectionRequest {
                cookie: cookie.clone(),
                requested: *requested,
                flags: 0,
            };
            let outcome = match located.stream.take() {
                Some(mut stream) => exchange(&mut stream, &request, timeout).await,
                None => match connect_once(address, timeout).await {
                    (_, Some(mut stream)) => exchange(&mut stream, &request, timeout).await,
                    (attempt, None) => NegotiationOutcome::ConnectFailed {
                        state: attempt.state,
                        detail: attempt.detail,
                    },
                },
            };
            attempts.push(NegotiationAttempt {
                requested: *requested,
                elapsed_ms: elapsed_ms(attempt_started),
                outcome,
            });
        }
    }
    let summary = summarise(&attempts);
    let verdict = verdict(
        located.resolution_error.is_some(),
        located.address.is_some(),
        &attempts,
        &summary,
    );
    RdpNegotiateReport {
        target: target.clone(),
        resolution_error: located.resolution_error,
        connect: located.connect,
        address: located.address,
        cookie,
        attempts,
        summary,
        verdict,
        elapsed_ms: elapsed_ms(started),
    }
}

/// Sends one Connection Request on an open connection and reads the Connection Confirm.
/// Each of the write and the read has `timeout`.
pub(crate) async fn exchange(
    stream: &mut TcpStream,
    request: &ConnectionRequest,
    timeout: Duration,
) -> NegotiationOutcome {
    let bytes = request.encode();
    match tokio::time::timeout(timeout, stream.write_all(&bytes)).await {
        Err(_) => {
            return NegotiationOutcome::NoReply {
                received: 0,
                first_bytes: String::new(),
            }
        }
        Ok(Err(e)) if super::is_reset(&e) => {
            return NegotiationOutcome::Closed {
                received: 0,
                first_bytes: String::new(),
                reset: true,
            }
        }
        Ok(Err(e)) => {
            return NegotiationOutcome::Error {
                detail: e.to_string(),
            }
        }
        Ok(Ok(())) => {}
    }
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::with_capacity(32);
    if let Some(outcome) = incomplete(
        read_until(stream, &mut buf, x224::TPKT_HEADER_LEN, deadline).await,
        &buf,
    ) {
        return outcome;
    }
    let len = match x224::tpkt_length(&buf, x224::MAX_CONFIRM_LEN) {
        Ok(len) => len,
        Err(e) => {
            // Not TPKT, or an absurd length: show a little more of what came, briefly.
            let more = Instant::now() + timeout.min(Duration::from_millis(300));
            let _ = read_until(stream, &mut buf, 64, more).await;
            let what = match e {
                x224::ConfirmError::NotTpkt(_) => guess_service(&buf),
                other => other.to_string(),
            };
            return NegotiationOutcome::Unexpected {
                what,
                first_bytes: hex(&buf),
            };
        }
    };
    if let Some(outcome) = incomplete(read_until(stream, &mut buf, len, deadline).await, &buf) {
        return outcome;
    }
    match x224::parse_confirm(&buf) {
        Ok(Confirm::Selected { protocol, flags }) => NegotiationOutcome::Selected {
            protocol,
            flags,
            flag_names: NegRspFlag::decode(flags),
        },
        Ok(Confirm::Failure { code }) => NegotiationOutcome::Failure {
            code,
            meaning: code.meaning().to_owned(),
        },
        Ok(Confirm::NoNegotiationData) => NegotiationOutcome::NoNegotiationData,
        Err(e) => NegotiationOutcome::Unexpected {
            what: e.to_string(),
            first_bytes: hex(&buf),
        },
    }
}

fn incomplete(end: ReadEnd, buf: &[u8]) -> Option<NegotiationOutcome> {
    match end {
        ReadEnd::Complete => None,
        ReadEnd::Closed { reset } => Some(NegotiationOutcome::Closed {
            received: buf.len(),
            first_bytes: hex(buf),
            reset,
        }),
        ReadEnd::TimedOut => Some(NegotiationOutcome::NoReply {
            received: buf.len(),
            first_bytes: hex(buf),
        }),
        ReadEnd::Error(detail) => Some(NegotiationOutcome::Error { detail }),
    }
}

/// Adds up the attempts.
pub fn summarise(attempts: &[NegotiationAttempt]) -> NegotiationSummary {
    let mut accepted: Vec<Protocol> = Vec::new();
    let mut failures: Vec<FailureCode> = Vec::new();
    for attempt in attempts {
        if let Some(p) = attempt.outcome.selected() {
            if !accepted.contains(&p) {
                accepted.push(p);
            }
        }
        if let NegotiationOutcome::Failure { code, .. } = &attempt.outcome {
            if !failures.contains(code) {
                failures.push(*code);
            }
        }
    }
    accepted.sort();
    let preferred = attempts
        .iter()
        .filter(|a| a.outcome.selected().is_some())
        .max_by_key(|a| (a.requested.protocols().len(), a.requested.0))
        .and_then(|a| a.outcome.selected());

    let support = |wanted: &[Protocol]| -> Support {
        let offers = |set: ProtocolSet| wanted.iter().any(|p| set.offers(*p));
        let mut result = Support::Unknown;
        for attempt in attempts.iter().filter(|a| offers(a.requested)) {
            match &attempt.outcome {
                o if o.selected().is_some_and(|p| wanted.contains(&p)) => return Support::Accepted,
                NegotiationOutcome::Failure { .. } => result = Support::Refused,
                o if o.selected().is_some_and(|p| !attempt.requested.offers(p)) => {
                    result = Support::Refused
                }
                o if o.selected().is_some() && result == Support::Unknown => {
                    result = Support::NotChosen
                }
                _ => {}
            }
        }
        result
    };
    NegotiationSummary {
        standard_rdp: support(&[Protocol::Rdp]),
        tls: support(&[Protocol::Ssl]),
        credssp: support(&[Protocol::Hybrid, Protocol::HybridEx]),
        nla_required: failures.contains(&FailureCode::HybridRequiredByServer),
        tls_required: failures.contains(&FailureCode::SslRequiredByServer),
        unanswered: attempts.iter().filter(|a| !a.outcome.answered()).count(),
        accepted,
        failures,
        preferred,
    }
}

fn verdict(
    unresolved: bool,
    connected: bool,
    attempts: &[NegotiationAttempt],
    summary: &NegotiationSummary,
) -> NegotiateVerdict {
    if unresolved {
        return NegotiateVerdict::NotResolved;
    }
    if !connected {
        return NegotiateVerdict::Unreachable;
    }
    let any = |f: fn(&NegotiationOutcome) -> bool| attempts.iter().any(|a| f(&a.outcome));
    if !any(NegotiationOutcome::answered) {
        return if any(|o| matches!(o, NegotiationOutcome::Unexpected { .. })) {
            NegotiateVerdict::NotRdp
        } else if any(|o| {
            matches!(
                o,
                NegotiationOutcome::Closed { .. } | NegotiationOutcome::Error { .. }
            )
        }) {
            NegotiateVerdict::ConnectionClosed
        } else if any(|o| matches!(o, NegotiationOutcome::NoReply { .. })) {
            NegotiateVerdict::NoReply
        } else {
            NegotiateVerdict::Unreachable
        };
    }
    if summary.tls == Support::Accepted || summary.credssp == Support::Accepted {
        NegotiateVerdict::EnhancedSecurity
    } else if summary.failures.contains(&FailureCode::SslCertNotOnServer) {
        NegotiateVerdict::CertificateMissing
    } else if summary.standard_rdp == Support::Accepted || summary.accepted.contains(&Protocol::Rdp)
    {
        NegotiateVerdict::StandardRdpOnly
    } else if summary.accepted.is_empty() {
        NegotiateVerdict::Refused
    } else {
        // Only protocols this probe does not name (RDSTLS, RDS-AAD, unknown) were selected.
        NegotiateVerdict::EnhancedSecurity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(requested: ProtocolSet, outcome: NegotiationOutcome) -> NegotiationAttempt {
        NegotiationAttempt {
            requested,
            elapsed_ms: 1.0,
            outcome,
        }
    }

    fn selected(protocol: Protocol) -> NegotiationOutcome {
        NegotiationOutcome::Selected {
            protocol,
            flags: 0,
            flag_names: vec![],
        }
    }

    fn failure(code: FailureCode) -> NegotiationOutcome {
        NegotiationOutcome::Failure {
            code,
            meaning: code.meaning().to_owned(),
        }
    }

    #[test]
    fn a_windows_like_nla_server() {
        let attempts = [
            attempt(
                ProtocolSet::RDP,
                failure(FailureCode::HybridRequiredByServer),
            ),
            attempt(
                ProtocolSet::SSL,
                failure(FailureCode::HybridRequiredByServer),
            ),
            attempt(ProtocolSet::SSL_HYBRID, selected(Protocol::Hybrid)),
            attempt(ProtocolSet::SSL_HYBRID_EX, selected(Protocol::HybridEx)),
        ];
        let s = summarise(&attempts);
        assert_eq!(s.accepted, vec![Protocol::Hybrid, Protocol::HybridEx]);
        assert_eq!(s.preferred, Some(Protocol::HybridEx));
        assert_eq!(
            (s.standard_rdp, s.tls, s.credssp),
            (Support::Refused, Support::Refused, Support::Accepted)
        );
        assert!(s.nla_required && !s.tls_required);
        assert_eq!(
            verdict(false, true, &attempts, &s),
            NegotiateVerdict::EnhancedSecurity
        );
    }

    #[test]
    fn a_tls_server_that_never_picks_credssp() {
        let attempts = [
            attempt(ProtocolSet::RDP, failure(FailureCode::SslRequiredByServer)),
            attempt(ProtocolSet::SSL, selected(Protocol::Ssl)),
            attempt(ProtocolSet::SSL_HYBRID, selected(Protocol::Ssl)),
        ];
        let s = summarise(&attempts);
        assert_eq!(
            (s.standard_rdp, s.tls, s.credssp),
            (Support::Refused, Support::Accepted, Support::NotChosen)
        );
        assert!(s.tls_required);
        assert_eq!(s.preferred, Some(Protocol::Ssl));
    }

    #[test]
    fn missing_certificate_and_standard_rdp_only() {
        let attempts = [
            attempt(ProtocolSet::RDP, failure(FailureCode::SslRequiredByServer)),
            attempt(ProtocolSet::SSL, failure(FailureCode::SslCertNotOnServer)),
        ];
        let s = summarise(&attempts);
        assert_eq!(
            verdict(false, true, &attempts, &s),
            NegotiateVerdict::CertificateMissing
        );

        let attempts = [
            attempt(ProtocolSet::RDP, selected(Protocol::Rdp)),
            attempt(
                ProtocolSet::SSL,
                failure(FailureCode::SslNotAllowedByServer),
            ),
            attempt(ProtocolSet::SSL_HYBRID, selected(Protocol::Rdp)),
        ];
        let s = summarise(&attempts);
        assert_eq!((s.tls, s.credssp), (Support::Refused, Support::Refused));
        assert_eq!(
            verdict(false, true, &attempts, &s),
            NegotiateVerdict::StandardRdpOnly
        );

        let attempts = [attempt(
            ProtocolSet::SSL,
            NegotiationOutcome::NoNegotiationData,
        )];
        let s = summarise(&attempts);
        assert_eq!(s.accepted, vec![Protocol::Rdp]);
        assert_eq!(
            verdict(false, true, &attempts, &s),
            NegotiateVerdict::StandardRdpOnly
        );
    }

    #[test]
    fn unanswered_requests_pick_the_transport_verdict() {
        let closed = NegotiationOutcome::Closed {
            received: 0,
            first_bytes: String::new(),
            reset: false,
        };
        let attempts = [attempt(ProtocolSet::RDP, closed.clone())];
        let s = summarise(&attempts);
        assert_eq!(s.unanswered, 1);
        assert_eq!(
            verdict(false, true, &attempts, &s),
            NegotiateVerdict::ConnectionClosed
        );
        let attempts = [
            attempt(ProtocolSet::RDP, closed),
            attempt(
                ProtocolSet::SSL,
                NegotiationOutcome::Unexpected {
                    what: "x".into(),
                    first_bytes: String::new(),
                },
            ),
        ];
        assert_eq!(
            verdict(false, true, &attempts, &summarise(&attempts)),
            NegotiateVerdict::NotRdp
        );
        assert_eq!(
            verdict(false, false, &[], &summarise(&[])),
            NegotiateVerdict::Unreachable
        );
        assert_eq!(
            verdict(true, false, &[], &summarise(&[])),
            NegotiateVerdict::NotResolved
        );
    }

    #[test]
    fn outcomes_serialise_with_spec_names() {
        let a = attempt(ProtocolSet::SSL_HYBRID, selected(Protocol::Hybrid));
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(
            json["requested"],
            serde_json::json!(["PROTOCOL_SSL", "PROTOCOL_HYBRID"])
        );
        assert_eq!(json["outcome"]["result"], "selected");
        assert_eq!(json["outcome"]["protocol"], "PROTOCOL_HYBRID");
        let back: NegotiationAttempt = serde_json::from_value(json).unwrap();
        assert_eq!(back, a);
        let f = serde_json::to_value(failure(FailureCode::SslCertNotOnServer)).unwrap();
        assert_eq!(f["result"], "failure");
        assert_eq!(f["code"], "SSL_CERT_NOT_ON_SERVER");
    }
}
