//! What a server's certificate says, for a report: names, validity against the local clock,
//! self-signed or not, the key, and whether it matches the host name asked for (RFC 6125).
//! Parsing with `x509-parser`; signatures and thumbprints with `ring`.

use std::net::IpAddr;
use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat};
use ring::{digest, signature};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

pub use crate::rdp::report::{
    CertificateReport, ChainEntry, NameMatch, NameSource, PublicKeyInfo, SelfSignature, Validity,
};
use crate::target::Host;

/// Why a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server's certificate could not be parsed: {0}")]
pub struct CertificateError(pub String);

/// Analyses one DER certificate against the host asked for and the local clock.
pub fn analyse(
    der: &[u8],
    asked: &Host,
    now: SystemTime,
) -> Result<CertificateReport, CertificateError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| CertificateError(e.to_string()))?;
    let not_before_ts = cert.validity().not_before.timestamp();
    let not_after_ts = cert.validity().not_after.timestamp();
    let now_ts = match now.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let validity = if now_ts < not_before_ts {
        Validity::NotYetValid
    } else if now_ts > not_after_ts {
        Validity::Expired
    } else {
        Validity::Valid
    };

    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        ip_addresses.push(ip);
                    }
                }
                _ => {}
            }
        }
    }
    let subject_common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);

    let self_issued = cert.subject().as_raw() == cert.issuer().as_raw();
    let self_signature = if !self_issued {
        SelfSignature::NotSelfIssued
    } else {
        match verify_own_signature(&cert) {
            Some(true) => SelfSignature::Verified,
            Some(false) => SelfSignature::Invalid,
            None => SelfSignature::NamesOnly,
        }
    };
    let self_signed = matches!(
        self_signature,
        SelfSignature::Verified | SelfSignature::NamesOnly
    );

    let name_match = match_name(
        asked,
        &dns_names,
        &ip_addresses,
        subject_common_name.as_deref(),
    );

    let extended_key_usage = match cert.extended_key_usage() {
        Ok(Some(eku)) => {
            let eku = eku.value;
            let mut out = Vec::new();
            for (set, name) in [
                (eku.any, "any"),
                (eku.server_auth, "server-auth"),
                (eku.client_auth, "client-auth"),
                (eku.code_signing, "code-signing"),
                (eku.email_protection, "email-protection"),
                (eku.time_stamping, "time-stamping"),
                (eku.ocsp_signing, "ocsp-signing"),
            ] {
                if set {
                    out.push(name.to_owned());
                }
            }
            for oid in &eku.other {
                let id = oid.to_id_string();
                out.push(if id == "1.3.6.1.4.1.311.54.1.2" {
                    "remote-desktop-auth".to_owned()
                } else {
                    id
                });
            }
            out
        }
        _ => Vec::new(),
    };

    Ok(CertificateReport {
        subject: cert.subject().to_string(),
        subject_common_name,
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        not_before: timestamp(not_before_ts),
        not_after: timestamp(not_after_ts),
        validity,
        days_until_expiry: (not_after_ts - now_ts).div_euclid(86_400),
        dns_names,
        ip_addresses,
        self_signed,
        self_signature,
        name_match,
        public_key: public_key_info(cert.public_key()),
        signature_algorithm: signature_algorithm_name(
            &cert.signature_algorithm.algorithm.to_id_string(),
        ),
        extended_key_usage,
        sha1_thumbprint: hex_upper(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref()),
        sha256_fingerprint: hex_upper(digest::digest(&digest::SHA256, der).as_ref()),
    })
}

/// The one-line summary of a certificate in a chain (None when it does not parse).
pub fn chain_entry(der: &[u8]) -> ChainEntry {
    let sha256_fingerprint = hex_upper(digest::digest(&digest::SHA256, der).as_ref());
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => ChainEntry {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            sha256_fingerprint,
        },
        Err(e) => ChainEntry {
            subject: format!("(unparsable certificate: {e})"),
            issuer: String::new(),
            sha256_fingerprint,
        },
    }
}

/// RFC 3339 in UTC, to the second.
fn timestamp(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_ED448: &str = "1.3.101.113";
const OID_DSA: &str = "1.2.840.10040.4.1";

fn curve_name(oid: &str) -> Option<(&'static str, u32)> {
    Some(match oid {
        "1.2.840.10045.3.1.7" => ("P-256", 256),
        "1.3.132.0.34" => ("P-384", 384),
        "1.3.132.0.35" => ("P-521", 521),
        _ => return None,
    })
}

fn public_key_info(spki: &SubjectPublicKeyInfo<'_>) -> PublicKeyInfo {
    let oid = spki.algorithm.algorithm.to_id_string();
    match oid.as_str() {
        OID_RSA => PublicKeyInfo {
            algorithm: "RSA".to_owned(),
            bits: rsa_bits(spki),
            curve: None,
        },
        OID_EC => {
            let curve_oid = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            let named = curve_oid.as_deref().and_then(curve_name);
            PublicKeyInfo {
                algorithm: "EC".to_owned(),
                bits: named.map(|(_, bits)| bits),
                curve: named.map(|(name, _)| name.to_owned()).or(curve_oid),
            }
        }
        OID_ED25519 => PublicKeyInfo {
            algorithm: "Ed25519".to_owned(),
            bits: Some(256),
            curve: None,
        },
        OID_ED448 => PublicKeyInfo {
            algorithm: "Ed448".to_owned(),
            bits: Some(456),
            curve: None,
        },
        OID_DSA => PublicKeyInfo {
            algorithm: "DSA".to_owned(),
            bits: None,
            curve: None,
        },
        _ => PublicKeyInfo {
            algorithm: oid,
            bits: None,
            curve: None,
        },
    }
}

/// The RSA modulus size of a DER certificate's key (`None` for other keys or garbage).
pub fn rsa_key_bits(der: &[u8]) -> Option<u32> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    rsa_bits(cert.public_key())
}

/// The exact bit length of an RSA key's modulus (`None` for other keys).
fn rsa_bits(spki: &SubjectPublicKeyInfo<'_>) -> Option<u32> {
    match spki.parsed().ok()? {
        PublicKey::RSA(rsa) => modulus_bits(rsa.modulus),
        _ => None,
    }
}

/// The bit length of a big-endian unsigned integer, leading zero bytes ignored.
fn modulus_bits(modulus: &[u8]) -> Option<u32> {
    let first = modulus.iter().position(|b| *b != 0)?;
    let modulus = &modulus[first..];
    Some((modulus.len() as u32 - 1) * 8 + (8 - modulus[0].leading_zeros()))
}

fn signature_algorithm_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        other => return other.to_owned(),
    }
    .to_owned()
}

/// Checks a self-issued certificate's signature with its own key. `None` when the algorithm
/// (or key size) is not one `ring` verifies. Legacy 1024-bit RSA is accepted here: the
/// question is who signed, not whether the signature is strong.
fn verify_own_signature(cert: &X509Certificate<'_>) -> Option<bool> {
    let spki = cert.public_key();
    let key = spki.subject_public_key.data.as_ref();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    let rsa_bits = rsa_bits(spki).unwrap_or(0);
    let algorithm: &dyn signature::VerificationAlgorithm =
        match cert.signature_algorithm.algorithm.to_id_string().as_str() {
            "1.2.840.113549.1.1.5" => &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
            "1.2.840.113549.1.1.11" if rsa_bits < 2048 => {
                &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
            }
            "1.2.840.113549.1.1.11" => &signature::RSA_PKCS1_2048_8192_SHA256,
            "1.2.840.113549.1.1.12" if rsa_bits >= 2048 => &signature::RSA_PKCS1_2048_8192_SHA384,
            "1.2.840.113549.1.1.13" if rsa_bits < 2048 => {
                &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
            }
            "1.2.840.113549.1.1.13" => &signature::RSA_PKCS1_2048_8192_SHA512,
            "1.2.840.10045.4.3.2" => match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => &signature::ECDSA_P256_SHA256_ASN1,
                Some("1.3.132.0.34") => &signature::ECDSA_P384_SHA256_ASN1,
                _ => return None,
            },
            "1.2.840.10045.4.3.3" => match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => &signature::ECDSA_P256_SHA384_ASN1,
                Some("1.3.132.0.34") => &signature::ECDSA_P384_SHA384_ASN1,
                _ => return None,
            },
            "1.3.101.112" => &signature::ED25519,
            _ => return None,
        };
    let tbs: &[u8] = cert.tbs_certificate.as_ref();
    Some(
        signature::UnparsedPublicKey::new(algorithm, key)
            .verify(tbs, cert.signature_value.data.as_ref())
            .is_ok(),
    )
}

/// Matches the host asked for against the certificate's names: an IP address against the IP
/// addresses of the alternative names; a DNS name against the DNS names there, or, only when
/// there is none, against the subject common name (RFC 6125 6.4.4).
pub fn match_name(
    asked: &Host,
    dns_names: &[String],
    ips: &[IpAddr],
    common_name: Option<&str>,
) -> NameMatch {
    let mut result = NameMatch {
        asked: asked.as_str().to_owned(),
        matched: false,
        matched_by: None,
        matched_entry: None,
    };
    if let Some(ip) = asked.ip() {
        if let Some(found) = ips.iter().find(|candidate| **candidate == ip) {
            result.matched = true;
            result.matched_by = Some(NameSource::IpSan);
            result.matched_entry = Some(found.to_string());
        }
        return result;
    }
    let name = asked.as_str();
    if let Some(found) = dns_names
        .iter()
        .find(|pattern| dns_name_matches(pattern, name))
    {
        result.matched = true;
        result.matched_by = Some(NameSource::DnsSan);
        result.matched_entry = Some(found.clone());
    } else if dns_names.is_empty() {
        if let Some(cn) = common_name.filter(|cn| dns_name_matches(cn, name)) {
            result.matched = true;
            result.matched_by = Some(NameSource::SubjectCn);
            result.matched_entry = Some(cn.to_owned());
        }
    }
    result
}

/// RFC 6125 6.4.3 as current clients apply it (and RFC 9525 requires): case-insensitive, a
/// trailing dot ignored, and a wildcard only as the whole left-most label, standing for
/// exactly one label, under at least two labels (`*.example.com` matches `pc.example.com`,
/// not `example.com`, `a.pc.example.com` or `*.com`). Partial-label wildcards such as
/// `pc*.example.com` never match.
pub fn dns_name_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if pattern.is_empty() || name.is_empty() {
        return false;
    }
    match pattern.strip_prefix("*.") {
        Some(base) => {
            if base.contains('*') || !base.contains('.') {
                return false;
            }
            match name.split_once('.') {
                Some((first, rest)) => !first.is_empty() && rest == base,
                None => false,
            }
        }
        None => !pattern.contains('*') && pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> Host {
        Host::parse(s).unwrap()
    }

    #[test]
    fn wildcards_follow_rfc_6125() {
        assert!(dns_name_matches("pc1.corp.example", "PC1.corp.example"));
        assert!(dns_name_matches("pc1.corp.example.", "pc1.corp.example"));
        assert!(dns_name_matches("*.corp.example", "pc1.corp.example"));
        assert!(dns_name_matches("*.Corp.Example", "pc1.corp.example."));
        assert!(!dns_name_matches("*.corp.example", "corp.example"));
        assert!(!dns_name_matches("*.corp.example", "a.pc1.corp.example"));
        assert!(
            !dns_name_matches("*.example", "corp.example"),
            "no wildcard over a single label"
        );
        assert!(!dns_name_matches("pc*.corp.example", "pc1.corp.example"));
        assert!(!dns_name_matches("pc1.*.example", "pc1.corp.example"));
        assert!(!dns_name_matches("*", "pc1"));
        assert!(!dns_name_matches("", "pc1"));
        assert!(!dns_name_matches("pc1.corp.example", "pc2.corp.example"));
    }

    #[test]
    fn addresses_match_only_ip_alternative_names() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let m = match_name(
            &host("10.1.2.3"),
            &["10.1.2.3".to_owned()],
            &[],
            Some("10.1.2.3"),
        );
        assert!(
            !m.matched,
            "an address is not compared with DNS names or the CN"
        );
        let m = match_name(&host("10.1.2.3"), &[], &[ip], None);
        assert_eq!((m.matched, m.matched_by), (true, Some(NameSource::IpSan)));
        let m = match_name(&host("::1"), &[], &["::1".parse().unwrap()], None);
        assert!(m.matched);
    }

    #[test]
    fn the_common_name_counts_only_without_dns_alternative_names() {
        let m = match_name(
            &host("pc1.corp.example"),
            &[],
            &[],
            Some("PC1.corp.example"),
        );
        assert_eq!(m.matched_by, Some(NameSource::SubjectCn));
        let m = match_name(
            &host("pc1.corp.example"),
            &["other.corp.example".to_owned()],
            &[],
            Some("pc1.corp.example"),
        );
        assert!(!m.matched);
        let m = match_name(&host("pc1"), &[], &[], Some("pc1.corp.example"));
        assert!(!m.matched, "a short name does not match the FQDN");
        let m = match_name(
            &host("pc1.corp.example"),
            &["*.corp.example".to_owned()],
            &[],
            None,
        );
        assert_eq!(m.matched_entry.as_deref(), Some("*.corp.example"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(analyse(b"not a certificate", &host("pc1"), SystemTime::now()).is_err());
        assert!(analyse(&[], &host("pc1"), SystemTime::now()).is_err());
        assert!(chain_entry(&[0x30, 0x03, 0x02])
            .subject
            .contains("unparsable"));
    }

    #[test]
    fn modulus_bits_are_exact() {
        let mut modulus = vec![0x00, 0xC1];
        modulus.extend(std::iter::repeat_n(0x55, 255));
        assert_eq!(modulus_bits(&modulus), Some(2048));
        assert_eq!(modulus_bits(&[0x00, 0x7f, 0xff]), Some(15));
        assert_eq!(modulus_bits(&[0, 0]), None);
    }
}
