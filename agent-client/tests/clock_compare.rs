//! `clock-compare` against real RDP servers on loopback: FreeRDP's shadow server with
//! `/sec:nla` (its clock as it is, and moved 15 minutes back by libfaketime), the shadow
//! server with `/sec:tls` and xrdp with `security_layer=tls` and `negotiate` (no CredSSP), a
//! closed port, and fake peers that break off after the negotiation.
//!
//! Needs root and the Debian packages in `support::PACKAGES`; without them the tests fail
//! with a message saying what to install.

#![cfg(feature = "checks")]

mod support;

use std::time::Duration;

use agent_client::checks::rdp::{
    clock_compare, ClockCompareReport, ClockUnreadable, ClockVerdict, FailureCode,
    HandshakeOutcome, NegotiationOutcome, Protocol, ProtocolSet,
};
use agent_client::wire::{CheckReport, CheckSpec, PortState};
use support::{CertSpec, Pki, Shadow, Xrdp, XrdpConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STEP: Duration = Duration::from_secs(3);

/// The clocks of two processes on one machine differ by nothing; what remains is the
/// shadow server's whole-second timestamp and the round trip.
const SAME_MACHINE_SLACK_S: f64 = 2.0;

fn clock_of(report: &ClockCompareReport) -> &agent_client::checks::rdp::ClockReading {
    report
        .clock
        .as_ref()
        .unwrap_or_else(|| panic!("no clock reading: {report:#?}"))
}

fn short_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .split('.')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn the_clock_of_an_nla_server_on_this_machine_is_in_sync() {
    let shadow = Shadow::start("nla");
    let report = clock_compare(&shadow.target(), 300, STEP).await;
    assert_eq!(report.verdict, ClockVerdict::InSync, "{report:#?}");
    assert_eq!(report.unreadable, None);
    let clock = clock_of(&report);
    assert!(
        clock.offset_s.abs() <= SAME_MACHINE_SLACK_S,
        "offset {} s: {report:#?}",
        clock.offset_s
    );
    // FreeRDP stamps whole seconds (time()), so the uncertainty includes one second.
    assert!(clock.whole_seconds, "{clock:?}");
    assert!(clock.uncertainty_s >= 1.0 && clock.uncertainty_s < 1.0 + STEP.as_secs_f64());
    assert!(clock.round_trip_ms > 0.0 && clock.round_trip_ms < 3000.0);
    assert!(clock.certain);
    assert!(clock.host_time.ends_with('Z') && clock.local_time.ends_with('Z'));

    // The path: CredSSP selected, TLS, TSRequest answered with a raw NTLM challenge.
    assert_eq!(report.negotiation.len(), 1, "{report:#?}");
    assert_eq!(report.negotiation[0].requested, ProtocolSet::SSL_HYBRID);
    assert_eq!(
        report.negotiation[0].outcome.selected(),
        Some(Protocol::Hybrid)
    );
    assert!(matches!(
        report.tls.as_ref().map(|t| &t.outcome),
        Some(HandshakeOutcome::Established { .. })
    ));
    let credssp = report.credssp.as_ref().expect("CredSSP answer");
    // FreeRDP binds the public key with the client's nonce (TSRequest 5 and up), as hosts with
    // the 2018 CredSSP updates do: the portal reads such a host as updated.
    assert!((5..=6).contains(&credssp.version), "{credssp:?}");
    assert_eq!(credssp.error_code, None);

    // What else the challenge says: the host's own names and a product version.
    let host = report.host.as_ref().expect("host information");
    let name = short_hostname();
    assert!(
        host.netbios_computer_name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(&name[..name.len().min(15)])),
        "hostname {name:?}: {host:#?}"
    );
    assert!(
        host.dns_computer_name.as_deref().is_some_and(|n| n
            .to_ascii_lowercase()
            .starts_with(&name.to_ascii_lowercase())),
        "hostname {name:?}: {host:#?}"
    );
    assert!(
        host.av_ids.contains(&7),
        "MsvAvTimestamp among {:?}",
        host.av_ids
    );
    assert!(host.product_version.is_some(), "{host:#?}");

    assert!(
        report.explanation.contains("within the 300 s"),
        "{}",
        report.explanation
    );
}

#[tokio::test]
async fn a_server_fifteen_minutes_behind_is_reported_skewed_by_about_minus_900_s() {
    let shadow = Shadow::start_with_clock_offset("nla", "-15m");
    let report = clock_compare(&shadow.target(), 300, STEP).await;
    assert_eq!(report.verdict, ClockVerdict::Skewed, "{report:#?}");
    let clock = clock_of(&report);
    assert!(
        (clock.offset_s + 900.0).abs() <= SAME_MACHINE_SLACK_S,
        "offset {} s: libfaketime did not move the server's timestamp by -15 min: {report:#?}",
        clock.offset_s
    );
    assert!(clock.certain);
    assert!(
        report.explanation.contains("15 min")
            && report.explanation.contains("behind")
            && report.explanation.contains("more than the 300 s"),
        "{}",
        report.explanation
    );

    // The same server with a tolerance wider than the skew: in sync.
    let wide = clock_compare(&shadow.target(), 1200, STEP).await;
    assert_eq!(wide.verdict, ClockVerdict::InSync, "{wide:#?}");
    assert_eq!(wide.tolerance_s, 1200);
}

#[tokio::test]
async fn the_check_runs_from_its_wire_spec_and_its_report_travels_as_json() {
    let shadow = Shadow::start("nla");
    let spec: CheckSpec = serde_json::from_value(serde_json::json!({
        "check": "clock-compare",
        "target": {"host": "127.0.0.1", "port": shadow.port},
        "timeout_ms": 3000
    }))
    .expect("a spec without tolerance_s takes the default");
    assert_eq!(spec.id(), "clock-compare");
    assert!(matches!(
        spec,
        CheckSpec::ClockCompare {
            tolerance_s: 300,
            ..
        }
    ));
    let report = agent_client::checks::run(&spec).await;
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["check"], "clock-compare");
    assert_eq!(json["verdict"], "in-sync", "{json:#}");
    assert!(json["clock"]["offset_s"].is_number());
    assert_eq!(json["credssp"]["token"], "raw");
    assert_eq!(
        json["negotiation"][0]["outcome"]["protocol"],
        "PROTOCOL_HYBRID"
    );
    let back: CheckReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
}

#[tokio::test]
async fn a_shadow_server_without_nla_does_not_offer_credssp_and_says_so_by_name() {
    let shadow = Shadow::start("tls");
    let report = clock_compare(&shadow.target(), 300, STEP).await;
    assert_eq!(report.verdict, ClockVerdict::CouldNotRead, "{report:#?}");
    assert_eq!(
        report.unreadable,
        Some(ClockUnreadable::CredsspNotOffered {
            selected: Some(Protocol::Ssl),
            failure: Some(FailureCode::SslRequiredByServer),
        }),
        "{report:#?}"
    );
    assert_eq!(report.negotiation.len(), 2);
    assert_eq!(
        report.negotiation[1].requested,
        ProtocolSet(Protocol::PROTOCOL_HYBRID)
    );
    assert!(report.tls.is_none() && report.clock.is_none());
    assert!(
        report.explanation.contains("does not offer CredSSP")
            && report.explanation.contains("SSL_REQUIRED_BY_SERVER"),
        "{}",
        report.explanation
    );
}

#[tokio::test]
async fn xrdp_never_offers_credssp_whatever_its_security_layer() {
    let mut pki = Pki::new();
    let files = pki.cert(&CertSpec::good());
    // security_layer=tls: TLS when offered; a request for CredSSP alone is refused by name.
    let xrdp = Xrdp::start(&XrdpConfig::new("tls", &files));
    let report = clock_compare(&xrdp.target(), 300, STEP).await;
    assert_eq!(
        report.unreadable,
        Some(ClockUnreadable::CredsspNotOffered {
            selected: Some(Protocol::Ssl),
            failure: Some(FailureCode::SslRequiredByServer),
        }),
        "{report:#?}\n{}",
        xrdp.log()
    );
    drop(xrdp);
    // security_layer=negotiate: TLS when offered, Standard RDP for CredSSP alone.
    let xrdp = Xrdp::start(&XrdpConfig::new("negotiate", &files));
    let report = clock_compare(&xrdp.target(), 300, STEP).await;
    assert_eq!(
        report.unreadable,
        Some(ClockUnreadable::CredsspNotOffered {
            selected: Some(Protocol::Ssl),
            failure: None,
        }),
        "{report:#?}"
    );
    assert_eq!(
        report.negotiation[1].outcome.selected(),
        Some(Protocol::Rdp),
        "{report:#?}"
    );
    assert_eq!(report.verdict, ClockVerdict::CouldNotRead);
}

#[tokio::test]
async fn a_closed_port_cannot_be_read_and_the_report_says_it_is_closed() {
    let port = support::free_port();
    let report = clock_compare(&support::target("127.0.0.1", port), 300, STEP).await;
    assert_eq!(report.verdict, ClockVerdict::CouldNotRead);
    assert_eq!(
        report.unreadable,
        Some(ClockUnreadable::Unreachable {
            state: PortState::Refused
        })
    );
    assert!(report.negotiation.is_empty());
    assert!(
        report.explanation.contains("closed"),
        "{}",
        report.explanation
    );
}

/// A loopback peer that reads one request and answers with each of `replies` in turn (one
/// per connection), then closes.
async fn fake_peer(replies: &'static [&'static [u8]]) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        for reply in replies {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 512];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(reply).await;
            // Wait for the client's next move (a ClientHello), then close.
            let _ = tokio::time::timeout(Duration::from_millis(500), socket.read(&mut buf)).await;
        }
    });
    port
}

/// A Connection Confirm selecting PROTOCOL_HYBRID.
const SELECT_HYBRID: &[u8] = &[
    0x03, 0x00, 0x00, 0x13, 0x0E, 0xD0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x02, 0x00, 0x08, 0x00, 0x02,
    0x00, 0x00, 0x00,
];

#[tokio::test]
async fn peers_that_break_off_after_the_negotiation_are_described() {
    // CredSSP selected, then the peer answers the ClientHello with an SSH banner.
    const SSH: &[u8] = &[
        0x03, 0x00, 0x00, 0x13, 0x0E, 0xD0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x02, 0x00, 0x08, 0x00,
        0x02, 0x00, 0x00, 0x00, b'S', b'S', b'H', b'-', b'2', b'.', b'0', b'-', b'x', b'\r', b'\n',
    ];
    let port = fake_peer(&[SSH]).await;
    let report = clock_compare(&support::target("127.0.0.1", port), 300, STEP).await;
    match &report.unreadable {
        Some(ClockUnreadable::TlsFailed { detail }) => {
            assert!(detail.contains("SSH"), "{detail}")
        }
        other => panic!("{other:?}: {report:#?}"),
    }

    // CredSSP selected, then the peer hangs up.
    let port = fake_peer(&[SELECT_HYBRID]).await;
    let report = clock_compare(&support::target("127.0.0.1", port), 300, STEP).await;
    assert!(
        matches!(report.unreadable, Some(ClockUnreadable::TlsFailed { .. })),
        "{report:#?}"
    );
    assert_eq!(report.verdict, ClockVerdict::CouldNotRead);

    // No RDP answer at all.
    let port = fake_peer(&[b"HTTP/1.1 400 Bad Request\r\n\r\n"]).await;
    let report = clock_compare(&support::target("127.0.0.1", port), 300, STEP).await;
    match &report.unreadable {
        Some(ClockUnreadable::NegotiationFailed { detail }) => {
            assert!(detail.contains("HTTP"), "{detail}")
        }
        other => panic!("{other:?}: {report:#?}"),
    }
    assert!(matches!(
        report.negotiation[0].outcome,
        NegotiationOutcome::Unexpected { .. }
    ));
}
