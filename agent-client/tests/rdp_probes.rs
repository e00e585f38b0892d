//! `rdp-negotiate` and `rdp-tls` against real RDP servers on loopback: xrdp configured as
//! `rdp`, `tls` and `negotiate`, with good and broken certificates and restricted TLS
//! versions; FreeRDP's shadow server with `/sec:nla` and `/sec:rdp`; a closed port; and a
//! few fake peers on loopback that answer badly on purpose.
//!
//! Needs root and the Debian packages in `support::PACKAGES`; without them the tests fail
//! with a message saying what to install.

#![cfg(feature = "checks")]

mod support;

use std::time::Duration;

use agent_client::checks::rdp::cert::{NameSource, SelfSignature, Validity};
use agent_client::checks::rdp::hello::TlsVersion;
use agent_client::checks::rdp::{
    negotiate, negotiate_with, tls, tls_with, FailureCode, HandshakeOutcome, NegRspFlag,
    NegotiateOptions, NegotiateVerdict, NegotiationOutcome, ProbeMethod, Protocol, ProtocolSet,
    RdpNegotiateReport, RdpTlsReport, SignatureCheck, Support, TlsOptions, TlsProblem, TlsVerdict,
    VersionResult,
};
use agent_client::wire::PortState;
use support::{target, CertSpec, Dates, Issuer, KeyKind, Pki, Shadow, Xrdp, XrdpConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STEP: Duration = Duration::from_secs(3);

fn outcome_of(report: &RdpNegotiateReport, requested: ProtocolSet) -> &NegotiationOutcome {
    &report
        .attempts
        .iter()
        .find(|a| a.requested == requested)
        .unwrap_or_else(|| panic!("no attempt for {requested}: {report:#?}"))
        .outcome
}

fn selected(report: &RdpNegotiateReport, requested: ProtocolSet) -> Option<Protocol> {
    outcome_of(report, requested).selected()
}

fn failure(report: &RdpNegotiateReport, requested: ProtocolSet) -> Option<FailureCode> {
    match outcome_of(report, requested) {
        NegotiationOutcome::Failure { code, .. } => Some(*code),
        _ => None,
    }
}

fn version_result(report: &RdpTlsReport, version: TlsVersion) -> &VersionResult {
    &report
        .versions
        .iter()
        .find(|p| p.version == version)
        .unwrap_or_else(|| panic!("{version} not probed: {report:#?}"))
        .result
}

fn xrdp_with(layer: &'static str, pki: &mut Pki, spec: &CertSpec) -> Xrdp {
    let files = pki.cert(spec);
    Xrdp::start(&XrdpConfig::new(layer, &files))
}

// ---------------------------------------------------------------------------------------
// rdp-negotiate against xrdp

#[tokio::test]
async fn xrdp_security_layer_rdp_selects_standard_rdp_whatever_is_asked() {
    let mut pki = Pki::new();
    let xrdp = xrdp_with("rdp", &mut pki, &CertSpec::good());
    let report = negotiate(&xrdp.target(), STEP).await;
    assert_eq!(report.attempts.len(), 4, "{report:#?}");
    for attempt in &report.attempts {
        assert_eq!(
            attempt.outcome.selected(),
            Some(Protocol::Rdp),
            "{report:#?}"
        );
    }
    assert_eq!(report.verdict, NegotiateVerdict::StandardRdpOnly);
    assert_eq!(report.summary.accepted, vec![Protocol::Rdp]);
    assert_eq!(report.summary.standard_rdp, Support::Accepted);
    assert_eq!(
        report.summary.tls,
        Support::Refused,
        "SSL asked alone, RDP selected"
    );
    assert_eq!(report.address.unwrap().port(), xrdp.port);

    let tls_report = tls(&xrdp.target(), STEP).await;
    assert_eq!(
        tls_report.verdict,
        TlsVerdict::TlsNotOffered,
        "{tls_report:#?}"
    );
    assert!(matches!(
        tls_report.handshake.outcome,
        HandshakeOutcome::NotAttempted { .. }
    ));
    assert!(tls_report.certificate.is_none() && tls_report.versions.is_empty());
}

#[tokio::test]
async fn xrdp_security_layer_tls_requires_tls_and_says_so_by_name() {
    let mut pki = Pki::new();
    let xrdp = xrdp_with("tls", &mut pki, &CertSpec::good());
    let report = negotiate(&xrdp.target(), STEP).await;
    assert_eq!(
        failure(&report, ProtocolSet::RDP),
        Some(FailureCode::SslRequiredByServer),
        "{report:#?}"
    );
    for set in [
        ProtocolSet::SSL,
        ProtocolSet::SSL_HYBRID,
        ProtocolSet::SSL_HYBRID_EX,
    ] {
        assert_eq!(selected(&report, set), Some(Protocol::Ssl), "{report:#?}");
    }
    let NegotiationOutcome::Selected { flag_names, .. } = outcome_of(&report, ProtocolSet::SSL)
    else {
        unreachable!()
    };
    assert!(flag_names.contains(&NegRspFlag::ExtendedClientDataSupported));
    assert_eq!(report.verdict, NegotiateVerdict::EnhancedSecurity);
    assert!(report.summary.tls_required && !report.summary.nla_required);
    assert_eq!(
        report.summary.credssp,
        Support::NotChosen,
        "xrdp never selects CredSSP"
    );
    assert_eq!(report.summary.preferred, Some(Protocol::Ssl));

    // The JSON names protocols and failures as the specification does.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["verdict"], "enhanced-security");
    assert_eq!(
        json["attempts"][0]["requested"],
        serde_json::json!(["PROTOCOL_RDP"])
    );
    assert_eq!(json["attempts"][0]["outcome"]["result"], "failure");
    assert_eq!(
        json["attempts"][0]["outcome"]["code"],
        "SSL_REQUIRED_BY_SERVER"
    );
    assert_eq!(json["attempts"][1]["outcome"]["protocol"], "PROTOCOL_SSL");
    assert_eq!(
        json["summary"]["accepted"],
        serde_json::json!(["PROTOCOL_SSL"])
    );
    let back: RdpNegotiateReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
}

#[tokio::test]
async fn xrdp_security_layer_negotiate_accepts_standard_rdp_and_tls() {
    let mut pki = Pki::new();
    let xrdp = xrdp_with("negotiate", &mut pki, &CertSpec::good());
    let report = negotiate(&xrdp.target(), STEP).await;
    assert_eq!(
        selected(&report, ProtocolSet::RDP),
        Some(Protocol::Rdp),
        "{report:#?}"
    );
    assert_eq!(
        selected(&report, ProtocolSet::SSL),
        Some(Protocol::Ssl),
        "{report:#?}"
    );
    assert_eq!(report.summary.accepted, vec![Protocol::Rdp, Protocol::Ssl]);
    assert_eq!(
        (report.summary.standard_rdp, report.summary.tls),
        (Support::Accepted, Support::Accepted)
    );
    assert!(report.summary.failures.is_empty());
    assert_eq!(report.verdict, NegotiateVerdict::EnhancedSecurity);
}

#[tokio::test]
async fn a_cookie_is_sent_and_a_bad_one_is_not() {
    let mut pki = Pki::new();
    let xrdp = xrdp_with("tls", &mut pki, &CertSpec::good());
    let options = NegotiateOptions {
        cookie: Some("rdpdoctor".to_owned()),
        requests: vec![ProtocolSet::SSL],
    };
    let report = negotiate_with(&xrdp.target(), STEP, &options).await;
    assert_eq!(report.cookie.as_deref(), Some("rdpdoctor"));
    assert_eq!(
        selected(&report, ProtocolSet::SSL),
        Some(Protocol::Ssl),
        "{report:#?}"
    );
    let options = NegotiateOptions {
        cookie: Some("two words\r\n".to_owned()),
        requests: vec![ProtocolSet::RDP],
    };
    let report = negotiate_with(&xrdp.target(), STEP, &options).await;
    assert_eq!(report.cookie, None);
    assert_eq!(
        failure(&report, ProtocolSet::RDP),
        Some(FailureCode::SslRequiredByServer)
    );
}

#[tokio::test]
async fn xrdp_tls_without_certificate_answers_ssl_cert_not_on_server() {
    let dir = support::TempDir::new("nocert");
    let missing = support::CertFiles {
        cert: dir.path().join("missing-cert.pem"),
        key: dir.path().join("missing-key.pem"),
    };
    let xrdp = Xrdp::start(&XrdpConfig::new("tls", &missing));
    let report = negotiate(&xrdp.target(), STEP).await;
    assert_eq!(
        failure(&report, ProtocolSet::SSL),
        Some(FailureCode::SslCertNotOnServer),
        "{report:#?}"
    );
    assert_eq!(report.verdict, NegotiateVerdict::CertificateMissing);
    let json = serde_json::to_value(&report).unwrap();
    // xrdp checks for the certificate before anything else: even a request for Standard
    // RDP Security gets SSL_CERT_NOT_ON_SERVER, not SSL_REQUIRED_BY_SERVER.
    assert_eq!(
        failure(&report, ProtocolSet::RDP),
        Some(FailureCode::SslCertNotOnServer),
        "{report:#?}"
    );
    assert_eq!(
        json["summary"]["failures"],
        serde_json::json!(["SSL_CERT_NOT_ON_SERVER"])
    );

    let tls_report = tls(&xrdp.target(), STEP).await;
    assert_eq!(
        tls_report.verdict,
        TlsVerdict::CertificateMissing,
        "{tls_report:#?}"
    );
}

#[tokio::test]
async fn xrdp_negotiate_without_certificate_falls_back_to_standard_rdp() {
    let dir = support::TempDir::new("nocert");
    let missing = support::CertFiles {
        cert: dir.path().join("missing-cert.pem"),
        key: dir.path().join("missing-key.pem"),
    };
    let xrdp = Xrdp::start(&XrdpConfig::new("negotiate", &missing));
    let report = negotiate(&xrdp.target(), STEP).await;
    assert_eq!(
        selected(&report, ProtocolSet::SSL),
        Some(Protocol::Rdp),
        "{report:#?}"
    );
    assert_eq!(report.verdict, NegotiateVerdict::StandardRdpOnly);
    let tls_report = tls(&xrdp.target(), STEP).await;
    assert_eq!(
        tls_report.verdict,
        TlsVerdict::TlsNotOffered,
        "{tls_report:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// rdp-tls against xrdp

#[tokio::test]
async fn a_good_ca_issued_certificate_is_reported_in_full() {
    let mut pki = Pki::new();
    let files = pki.cert(&CertSpec::good());
    let xrdp = Xrdp::start(&XrdpConfig::new("tls", &files));
    let report = tls(&xrdp.target(), STEP).await;
    assert_eq!(
        report.verdict,
        TlsVerdict::Ok,
        "{report:#?}\n{}",
        xrdp.log()
    );
    let HandshakeOutcome::Established {
        version,
        cipher_suite,
        server_signature,
    } = &report.handshake.outcome
    else {
        panic!("{report:#?}")
    };
    assert_eq!(*version, TlsVersion::Tls13);
    assert!(
        cipher_suite.starts_with("TLS_AES_") || cipher_suite.starts_with("TLS_CHACHA20"),
        "{cipher_suite}"
    );
    assert_eq!(*server_signature, SignatureCheck::Verified);
    assert_eq!(report.certificate_source, Some(ProbeMethod::Rustls));

    let cert = report.certificate.as_ref().unwrap();
    assert_eq!(cert.subject, "CN=localhost");
    assert_eq!(cert.issuer, "CN=RDP Doctor Test CA");
    assert!(!cert.self_signed);
    assert_eq!(cert.self_signature, SelfSignature::NotSelfIssued);
    assert_eq!(cert.validity, Validity::Valid);
    assert!(
        (28..=30).contains(&cert.days_until_expiry),
        "{}",
        cert.days_until_expiry
    );
    assert_eq!(cert.dns_names, vec!["localhost".to_owned()]);
    assert_eq!(
        cert.ip_addresses,
        vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(cert.name_match.matched);
    assert_eq!(cert.name_match.matched_by, Some(NameSource::IpSan));
    assert_eq!(
        (cert.public_key.algorithm.as_str(), cert.public_key.bits),
        ("RSA", Some(2048))
    );
    assert_eq!(cert.signature_algorithm, "sha256WithRSAEncryption");
    assert_eq!(cert.extended_key_usage, vec!["server-auth".to_owned()]);
    assert_eq!(
        cert.sha1_thumbprint,
        files.openssl_sha1(),
        "thumbprint agrees with openssl"
    );
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    // xrdp's default ssl_protocols: TLS 1.2 and 1.3 only; 1.0 and 1.1 refused by alert.
    assert_eq!(
        report.accepted_versions,
        vec![TlsVersion::Tls12, TlsVersion::Tls13]
    );
    for old in [TlsVersion::Tls10, TlsVersion::Tls11] {
        assert!(
            matches!(version_result(&report, old), VersionResult::Refused { reason } if reason == "protocol_version"),
            "{report:#?}"
        );
    }

    // By name, the DNS alternative name matches.
    let by_name = tls_with(
        &target("localhost", xrdp.port),
        STEP,
        &TlsOptions {
            probe_versions: false,
            ..TlsOptions::default()
        },
    )
    .await;
    let cert = by_name
        .certificate
        .as_ref()
        .unwrap_or_else(|| panic!("{by_name:#?}"));
    assert_eq!(
        cert.name_match.matched_by,
        Some(NameSource::DnsSan),
        "{by_name:#?}"
    );
    assert_eq!(by_name.verdict, TlsVerdict::Ok);
    assert!(by_name.versions.is_empty());
}

#[tokio::test]
async fn an_expired_certificate_is_reported_as_expired() {
    let mut pki = Pki::new();
    let spec = CertSpec {
        dates: Dates::Range("20200101000000Z", "20210101000000Z"),
        ..CertSpec::good()
    };
    let xrdp = xrdp_with("tls", &mut pki, &spec);
    let report = tls(&xrdp.target(), STEP).await;
    assert_eq!(
        report.verdict,
        TlsVerdict::CertificateExpired,
        "{report:#?}"
    );
    let cert = report.certificate.as_ref().unwrap();
    assert_eq!(cert.validity, Validity::Expired);
    assert_eq!(cert.not_after, "2021-01-01T00:00:00Z");
    assert!(cert.days_until_expiry < -1500);
    assert!(report.problems.contains(&TlsProblem::CertificateExpired));
}

#[tokio::test]
async fn a_certificate_not_yet_valid_is_reported_as_such() {
    let mut pki = Pki::new();
    let spec = CertSpec {
        dates: Dates::Range("20990101000000Z", "20991231000000Z"),
        ..CertSpec::good()
    };
    let xrdp = xrdp_with("tls", &mut pki, &spec);
    let report = tls(&xrdp.target(), STEP).await;
    assert_eq!(
        report.verdict,
        TlsVerdict::CertificateNotYetValid,
        "{report:#?}"
    );
    assert_eq!(
        report.certificate.as_ref().unwrap().not_before,
        "2099-01-01T00:00:00Z"
    );
}

#[tokio::test]
async fn a_self_signed_certificate_is_recognised_by_its_signature() {
    let mut pki = Pki::new();
    let spec = CertSpec {
        issuer: Issuer::SelfSigned,
        key: KeyKind::EcP256,
        ..CertSpec::good()
    };
    let xrdp = xrdp_with("tls", &mut pki, &spec);
    let report = tls(&xrdp.target(), STEP).await;
    assert_eq!(report.verdict, TlsVerdict::SelfSigned, "{report:#?}");
    let cert = report.certificate.as_ref().unwrap();
    assert!(cert.self_signed);
    assert_eq!(cert.self_signature, SelfSignature::Verified);
    assert_eq!(cert.subject, cert.issuer);
    assert_eq!(cert.public_key.algorithm, "EC");
    assert_eq!(cert.public_key.curve.as_deref(), Some("P-256"));
    assert_eq!(cert.signature_algorithm, "ecdsa-with-SHA256");
    assert!(matches!(
        report.handshake.outcome,
        HandshakeOutcome::Established {
            server_signature: SignatureCheck::Verified,
            ..
        }
    ));
}

#[tokio::test]
async fn a_wrong_name_certificate_does_not_match_the_host() {
    let mut pki = Pki::new();
    let spec = CertSpec {
        common_name: "wrong.example".to_owned(),
        alt_names: vec!["DNS:wrong.example".to_owned()],
        ..CertSpec::good()
    };
    let xrdp = xrdp_with("tls", &mut pki, &spec);
    for host in ["127.0.0.1", "localhost"] {
        let report = tls_with(
            &target(host, xrdp.port),
            STEP,
            &TlsOptions {
                probe_versions: false,
                ..TlsOptions::default()
            },
        )
        .await;
        assert_eq!(
            report.verdict,
            TlsVerdict::NameMismatch,
            "{host}: {report:#?}"
        );
        let cert = report.certificate.as_ref().unwrap();
        assert!(!cert.name_match.matched);
        assert_eq!(cert.name_match.asked, host);
        assert_eq!(cert.dns_names, vec!["wrong.example".to_owned()]);
    }
}

#[tokio::test]
async fn a_mismatched_key_is_a_plaintext_disconnect_not_a_generic_error() {
    let mut pki = Pki::new();
    let files = pki.cert(&CertSpec::good());
    let other_key = pki.key(KeyKind::Rsa(2048));
    let mut config = XrdpConfig::new("tls", &files);
    config.key_file = other_key;
    let xrdp = Xrdp::start(&config);
    let report = tls(&xrdp.target(), STEP).await;
    assert_eq!(
        report.verdict,
        TlsVerdict::CertificateOrKeyBroken,
        "{report:#?}"
    );
    let HandshakeOutcome::PlaintextDisconnect { pdu, first_bytes } = &report.handshake.outcome
    else {
        panic!("{report:#?}")
    };
    assert_eq!(
        pdu,
        "an MCS Disconnect Provider Ultimatum (rn-user-requested)"
    );
    assert!(first_bytes.starts_with("0300"), "{first_bytes}");
    assert_eq!(
        report.problems.first(),
        Some(&TlsProblem::PlaintextDisconnect)
    );
    assert!(
        report.certificate.is_none(),
        "xrdp never sends the certificate"
    );
    for version in TlsVersion::PROBED {
        assert!(
            matches!(
                version_result(&report, version),
                VersionResult::PlaintextDisconnect { .. }
            ),
            "{version}: {report:#?}"
        );
    }
    assert!(report.accepted_versions.is_empty());
}

#[tokio::test]
async fn a_1024_bit_key_is_refused_by_xrdp_at_the_default_security_level() {
    let mut pki = Pki::new();
    let spec = CertSpec {
        key: KeyKind::Rsa(1024),
        ..CertSpec::good()
    };
    let xrdp = xrdp_with("tls", &mut pki, &spec);
    let report = tls_with(
        &xrdp.target(),
        STEP,
        &TlsOptions {
            probe_versions: false,
            ..TlsOptions::default()
        },
    )
    .await;
    assert_eq!(
        report.verdict,
        TlsVerdict::CertificateOrKeyBroken,
        "{report:#?}"
    );
    assert!(matches!(
        report.handshake.outcome,
        HandshakeOutcome::PlaintextDisconnect { .. }
    ));
}

#[tokio::test]
async fn a_1024_bit_key_served_at_security_level_0_is_reported_as_weak() {
    let mut pki = Pki::new();
    let files = pki.cert(&CertSpec {
        key: KeyKind::Rsa(1024),
        ..CertSpec::good()
    });
    let mut config = XrdpConfig::new("tls", &files);
    config.tls_ciphers = Some("DEFAULT:@SECLEVEL=0");
    let xrdp = Xrdp::start(&config);
    let report = tls_with(
        &xrdp.target(),
        STEP,
        &TlsOptions {
            probe_versions: false,
            ..TlsOptions::default()
        },
    )
    .await;
    let cert = report
        .certificate
        .as_ref()
        .unwrap_or_else(|| panic!("{report:#?}"));
    assert_eq!(cert.public_key.bits, Some(1024));
    assert!(
        report.problems.contains(&TlsProblem::WeakKey),
        "{report:#?}"
    );
    assert!(matches!(
        report.handshake.outcome,
        HandshakeOutcome::Established {
            server_signature: SignatureCheck::Unsupported,
            ..
        }
    ));
    assert_eq!(
        report.verdict,
        TlsVerdict::Ok,
        "weak, but working and well named"
    );
}

#[tokio::test]
async fn ssl_protocols_restricted_to_tls12() {
    let mut pki = Pki::new();
    let files = pki.cert(&CertSpec::good());
    let mut config = XrdpConfig::new("tls", &files);
    config.ssl_protocols = "TLSv1.2";
    let xrdp = Xrdp::start(&config);
    let report = tls(&xrdp.target(), STEP).await;
    assert_eq!(
        report.accepted_versions,
        vec![TlsVersion::Tls12],
        "{report:#?}"
    );
    assert!(matches!(
        &report.handshake.outcome,
        HandshakeOutcome::Established { version: TlsVersion::Tls12, cipher_suite, .. } if cipher_suite.starts_with("TLS_ECDHE_")
    ));
    assert!(
        matches!(
            version_result(&report, TlsVersion::Tls13),
            VersionResult::Refused { .. }
        ),
        "{report:#?}"
    );
    assert_eq!(report.verdict, TlsVerdict::Ok);
}

#[tokio::test]
async fn ssl_protocols_restricted_to_tls13() {
    let mut pki = Pki::new();
    let files = pki.cert(&CertSpec::good());
    let mut config = XrdpConfig::new("tls", &files);
    config.ssl_protocols = "TLSv1.3";
    let xrdp = Xrdp::start(&config);
    let report = tls(&xrdp.target(), STEP).await;
    assert_eq!(
        report.accepted_versions,
        vec![TlsVersion::Tls13],
        "{report:#?}"
    );
    assert!(
        matches!(
            version_result(&report, TlsVersion::Tls12),
            VersionResult::Refused { .. }
        ),
        "{report:#?}"
    );
    assert_eq!(report.verdict, TlsVerdict::Ok);
}

#[tokio::test]
async fn legacy_tls_versions_are_found_with_the_raw_client_hello() {
    let mut pki = Pki::new();
    let files = pki.cert(&CertSpec::good());
    let mut config = XrdpConfig::new("tls", &files);
    config.ssl_protocols = "TLSv1, TLSv1.1, TLSv1.2";
    config.tls_ciphers = Some("DEFAULT:@SECLEVEL=0");
    let xrdp = Xrdp::start(&config);
    let report = tls(&xrdp.target(), STEP).await;
    assert_eq!(
        report.accepted_versions,
        vec![TlsVersion::Tls10, TlsVersion::Tls11, TlsVersion::Tls12],
        "{report:#?}"
    );
    let probe = report
        .versions
        .iter()
        .find(|p| p.version == TlsVersion::Tls10)
        .unwrap();
    assert_eq!(probe.method, ProbeMethod::RawClientHello);
    assert!(report.problems.contains(&TlsProblem::LegacyTlsAccepted));
    assert_eq!(report.verdict, TlsVerdict::Ok);
}

#[tokio::test]
async fn a_server_with_only_tls10_is_only_legacy_tls_and_its_certificate_is_still_read() {
    let mut pki = Pki::new();
    let files = pki.cert(&CertSpec::good());
    let mut config = XrdpConfig::new("tls", &files);
    config.ssl_protocols = "TLSv1";
    config.tls_ciphers = Some("DEFAULT:@SECLEVEL=0");
    let xrdp = Xrdp::start(&config);
    let report = tls(&xrdp.target(), STEP).await;
    assert_eq!(report.verdict, TlsVerdict::OnlyLegacyTls, "{report:#?}");
    assert_eq!(report.accepted_versions, vec![TlsVersion::Tls10]);
    assert!(matches!(
        &report.handshake.outcome,
        HandshakeOutcome::Alert { alert } if alert == "protocol_version"
    ));
    assert_eq!(report.certificate_source, Some(ProbeMethod::RawClientHello));
    let cert = report.certificate.as_ref().unwrap();
    assert_eq!(cert.sha1_thumbprint, files.openssl_sha1());
}

#[tokio::test]
async fn tls12_with_only_suites_rustls_lacks_is_still_found() {
    let mut pki = Pki::new();
    let files = pki.cert(&CertSpec::good());
    let mut config = XrdpConfig::new("tls", &files);
    config.ssl_protocols = "TLSv1.2";
    config.tls_ciphers = Some("AES128-SHA");
    let xrdp = Xrdp::start(&config);
    let report = tls(&xrdp.target(), STEP).await;
    assert!(
        !matches!(
            report.handshake.outcome,
            HandshakeOutcome::Established { .. }
        ),
        "{report:#?}"
    );
    let probe = report
        .versions
        .iter()
        .find(|p| p.version == TlsVersion::Tls12)
        .unwrap();
    assert_eq!(probe.method, ProbeMethod::RawClientHello, "{report:#?}");
    assert!(
        matches!(&probe.result, VersionResult::Accepted { cipher_suite, note: Some(_) } if cipher_suite == "TLS_RSA_WITH_AES_128_CBC_SHA"),
        "{report:#?}"
    );
    assert_eq!(report.problems, vec![TlsProblem::LegacyCipherSuitesOnly]);
    assert_eq!(report.certificate_source, Some(ProbeMethod::RawClientHello));
    assert_eq!(report.verdict, TlsVerdict::Ok, "{report:#?}");
}

// ---------------------------------------------------------------------------------------
// FreeRDP's shadow server

#[tokio::test]
async fn freerdp_shadow_with_nla_selects_credssp_and_requires_it() {
    let shadow = Shadow::start("nla");
    let report = negotiate(&shadow.target(), STEP).await;
    assert_eq!(
        failure(&report, ProtocolSet::RDP),
        Some(FailureCode::HybridRequiredByServer),
        "{report:#?}"
    );
    assert_eq!(
        failure(&report, ProtocolSet::SSL),
        Some(FailureCode::HybridRequiredByServer)
    );
    assert_eq!(
        selected(&report, ProtocolSet::SSL_HYBRID),
        Some(Protocol::Hybrid)
    );
    assert!(report.summary.nla_required);
    assert_eq!(report.summary.credssp, Support::Accepted);
    assert_eq!(report.summary.preferred, Some(Protocol::Hybrid));
    assert_eq!(report.verdict, NegotiateVerdict::EnhancedSecurity);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["attempts"][0]["outcome"]["code"],
        "HYBRID_REQUIRED_BY_SERVER"
    );

    // CredSSP starts with TLS on the same connection.
    let tls_report = tls_with(
        &shadow.target(),
        STEP,
        &TlsOptions {
            probe_versions: false,
            ..TlsOptions::default()
        },
    )
    .await;
    let negotiation = tls_report.negotiation.as_ref().unwrap();
    assert_eq!(
        negotiation.outcome.selected(),
        Some(Protocol::Hybrid),
        "{tls_report:#?}"
    );
    assert!(
        matches!(
            tls_report.handshake.outcome,
            HandshakeOutcome::Established { .. }
        ),
        "{tls_report:#?}"
    );
    let cert = tls_report.certificate.as_ref().unwrap();
    assert_eq!(
        cert.sha1_thumbprint,
        support::openssl_sha1(&shadow.certificate())
    );
    // FreeRDP makes a self-signed certificate for its host name, without alternative names:
    // an address never matches it.
    assert!(cert.self_signed && cert.ip_addresses.is_empty());
    assert_eq!(cert.self_signature, SelfSignature::Verified);
    assert_eq!(
        tls_report.verdict,
        TlsVerdict::NameMismatch,
        "{tls_report:#?}"
    );
}

#[tokio::test]
async fn freerdp_shadow_with_rdp_security_refuses_tls() {
    let shadow = Shadow::start("rdp");
    let report = negotiate(&shadow.target(), STEP).await;
    assert_eq!(
        selected(&report, ProtocolSet::RDP),
        Some(Protocol::Rdp),
        "{report:#?}"
    );
    assert_eq!(
        failure(&report, ProtocolSet::SSL),
        Some(FailureCode::SslNotAllowedByServer)
    );
    assert_eq!(report.summary.tls, Support::Refused);
    assert_eq!(report.verdict, NegotiateVerdict::StandardRdpOnly);
    let tls_report = tls(&shadow.target(), STEP).await;
    assert_eq!(
        tls_report.verdict,
        TlsVerdict::TlsNotOffered,
        "{tls_report:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// No server, and servers that answer badly

#[tokio::test]
async fn a_closed_port_is_unreachable_for_both_probes() {
    let port = support::free_port();
    let report = negotiate(&target("127.0.0.1", port), STEP).await;
    assert_eq!(report.verdict, NegotiateVerdict::Unreachable);
    assert_eq!(report.connect.len(), 1);
    assert_eq!(report.connect[0].state, PortState::Refused);
    assert!(report.attempts.is_empty() && report.address.is_none());
    let tls_report = tls(&target("127.0.0.1", port), STEP).await;
    assert_eq!(tls_report.verdict, TlsVerdict::Unreachable);
    assert!(tls_report.negotiation.is_none());
}

/// A loopback server that answers each read of every connection with the next of
/// `replies` (then closes, or keeps the connection open when `hold`).
async fn fake_peer(replies: &'static [&'static [u8]], hold: bool) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                for reply in replies {
                    let mut buf = [0u8; 2048];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket.write_all(reply).await;
                }
                if hold {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
            });
        }
    });
    port
}

const CONFIRM_SSL: &[u8] =
    b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00\x02\x01\x08\x00\x01\x00\x00\x00";

#[tokio::test]
async fn peers_that_answer_badly_are_described_not_panicked_on() {
    let short = Duration::from_millis(400);
    let options = NegotiateOptions {
        cookie: None,
        requests: vec![ProtocolSet::SSL],
    };

    let port = fake_peer(&[b""], false).await;
    let report = negotiate_with(&target("127.0.0.1", port), short, &options).await;
    assert_eq!(
        report.verdict,
        NegotiateVerdict::ConnectionClosed,
        "{report:#?}"
    );

    let port = fake_peer(&[b""], true).await;
    let report = negotiate_with(&target("127.0.0.1", port), short, &options).await;
    assert_eq!(report.verdict, NegotiateVerdict::NoReply, "{report:#?}");

    let port = fake_peer(&[b"HTTP/1.1 400 Bad Request\r\n\r\n"], false).await;
    let report = negotiate_with(&target("127.0.0.1", port), short, &options).await;
    assert_eq!(report.verdict, NegotiateVerdict::NotRdp, "{report:#?}");
    assert!(
        matches!(outcome_of(&report, ProtocolSet::SSL), NegotiationOutcome::Unexpected { what, first_bytes } if what.contains("HTTP") && first_bytes.starts_with("48545450"))
    );

    // A Connection Confirm cut short, then the connection closed.
    let port = fake_peer(&[&[0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00]], false).await;
    let report = negotiate_with(&target("127.0.0.1", port), short, &options).await;
    assert!(
        matches!(
            outcome_of(&report, ProtocolSet::SSL),
            NegotiationOutcome::Closed { received: 7, .. }
        ),
        "{report:#?}"
    );
    assert_eq!(report.verdict, NegotiateVerdict::ConnectionClosed);

    // A complete TPKT packet whose negotiation data is malformed.
    let port = fake_peer(
        &[&[
            0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x02, 0x00, 0x09,
            0x00, 0x01, 0x00, 0x00, 0x00,
        ]],
        false,
    )
    .await;
    let report = negotiate_with(&target("127.0.0.1", port), short, &options).await;
    assert!(
        matches!(outcome_of(&report, ProtocolSet::SSL), NegotiationOutcome::Unexpected { what, .. } if what.contains("negotiation data")),
        "{report:#?}"
    );

    // A server that selects TLS and then never answers the ClientHello.
    let no_tls = TlsOptions {
        probe_versions: false,
        ..TlsOptions::default()
    };
    let port = fake_peer(&[CONFIRM_SSL], true).await;
    let report = tls_with(&target("127.0.0.1", port), short, &no_tls).await;
    assert!(
        matches!(report.handshake.outcome, HandshakeOutcome::NoReply { .. }),
        "{report:#?}"
    );
    assert_eq!(report.verdict, TlsVerdict::HandshakeFailed);

    // ... or answers it with an SSH banner.
    let port = fake_peer(&[CONFIRM_SSL, b"SSH-2.0-OpenSSH_9.2\r\n"], false).await;
    let report = tls_with(&target("127.0.0.1", port), short, &no_tls).await;
    assert!(
        matches!(&report.handshake.outcome, HandshakeOutcome::NotTls { what, .. } if what.contains("SSH")),
        "{report:#?}"
    );

    // ... or with a broken TLS record: rustls's error is reported, the probe goes on.
    let port = fake_peer(
        &[CONFIRM_SSL, b"\x16\x03\x03\x00\x05\x02\x00\x00\x01\x00"],
        true,
    )
    .await;
    let report = tls(&target("127.0.0.1", port), short).await;
    assert!(
        matches!(report.handshake.outcome, HandshakeOutcome::Failed { .. }),
        "{report:#?}"
    );
    assert_eq!(report.versions.len(), 4);
    assert_eq!(report.verdict, TlsVerdict::HandshakeFailed);
}
