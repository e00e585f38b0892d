//! `revocation-fetch`: what a Windows client downloads before it trusts a Remote Desktop
//! host's certificate, downloaded the same way and timed. When those downloads hang (a
//! network without internet access that drops the traffic instead of refusing it), the
//! Remote Desktop client sits at "Securing remote connection" and then fails
//! (`revocation-check-hang`).
//!
//! The addresses are the CRL distribution points and the OCSP and issuer addresses of every
//! certificate the host sends (read with an `rdp-tls` handshake), then Windows' trusted-root
//! list, which CryptoAPI fetches for a root it does not know, such as a host's self-signed
//! certificate. They are fetched one after another, as CryptoAPI does, each within the time
//! allowed; any HTTP answer counts as an answer. LDAP and HTTPS addresses are listed, not
//! fetched.

use std::time::{Duration, Instant};

use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::elapsed_ms;
use super::rdp::tls::tls_with_chain;
use super::rdp::TlsOptions;
use crate::target::CheckTarget;
use crate::wire::{FetchOutcome, RevocationFetchReport, RevocationVerdict, UrlFetch, UrlPurpose};

/// Where Windows fetches its list of trusted roots from, unless a policy names a mirror.
pub const WINDOWS_ROOT_LIST_URL: &str =
    "http://ctldl.windowsupdate.com/msdownload/update/v3/static/trustedr/en/authrootstl.cab";

/// Names the root-list address for networks that mirror it (the `RootDirUrl` policy), or
/// turns the root-list fetch off when empty; read by the agent for every run.
pub const ROOT_LIST_URL_VARIABLE: &str = "RDP_DOCTOR_ROOT_LIST_URL";

/// At most this many addresses are fetched (a chain names a handful at most).
pub const MAX_FETCHES: usize = 8;

/// At most this much of one download is read; the time it takes is what matters.
const MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;

/// The root lists this computer's Remote Desktop client fetches: Windows' own list on
/// Windows, none elsewhere (other clients do not fetch one), unless
/// [`ROOT_LIST_URL_VARIABLE`] says otherwise.
pub fn platform_root_lists() -> Vec<String> {
    match std::env::var(ROOT_LIST_URL_VARIABLE) {
        Ok(url) if url.trim().is_empty() => Vec::new(),
        Ok(url) => vec![url.trim().to_owned()],
        Err(_) if cfg!(windows) => vec![WINDOWS_ROOT_LIST_URL.to_owned()],
        Err(_) => Vec::new(),
    }
}

/// Runs `revocation-fetch` against `target`, fetching `root_lists` after the certificate's
/// own addresses. `timeout` bounds each step of the handshake and each fetch.
pub async fn run(
    target: &CheckTarget,
    timeout: Duration,
    root_lists: &[String],
) -> RevocationFetchReport {
    let started = Instant::now();
    let options = TlsOptions {
        probe_versions: false,
        ..TlsOptions::default()
    };
    let (tls, chain) = tls_with_chain(target, timeout, &options).await;
    let certificate_error = if chain.is_empty() {
        Some(format!(
            "no certificate was read from {target}: {}",
            tls.verdict.explanation()
        ))
    } else {
        tls.certificate_error.clone()
    };
    let mut wanted: Vec<(String, UrlPurpose)> =
        chain.iter().flat_map(|der| certificate_urls(der)).collect();
    wanted.extend(
        root_lists
            .iter()
            .map(|url| (url.clone(), UrlPurpose::RootList)),
    );
    let mut seen = std::collections::BTreeSet::new();
    wanted.retain(|(url, _)| seen.insert(url.clone()));
    wanted.truncate(MAX_FETCHES);

    let client = reqwest::Client::builder().timeout(timeout).build();
    let mut fetches = Vec::with_capacity(wanted.len());
    for (url, purpose) in wanted {
        let fetch_started = Instant::now();
        let outcome = match (&client, not_fetched_because(&url)) {
            (_, Some(reason)) => FetchOutcome::NotProbed { reason },
            (Ok(client), None) => fetch(client, &url).await,
            (Err(e), None) => FetchOutcome::Failed {
                error: format!("no HTTP client: {e}"),
            },
        };
        fetches.push(UrlFetch {
            url,
            purpose,
            outcome,
            elapsed_ms: elapsed_ms(fetch_started),
        });
    }
    let verdict = RevocationVerdict::judge(certificate_error.is_none(), &fetches);
    RevocationFetchReport {
        target: target.clone(),
        certificate_error,
        fetches,
        verdict,
        elapsed_ms: elapsed_ms(started),
    }
}

/// The revocation and issuer addresses one DER certificate names, in the order CryptoAPI
/// tries them: CRL distribution points, then OCSP, then the issuer's certificate.
pub fn certificate_urls(der: &[u8]) -> Vec<(String, UrlPurpose)> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut crls = Vec::new();
    let mut access = Vec::new();
    for extension in cert.extensions() {
        match extension.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    {
                        crls.extend(uris(names).map(|uri| (uri, UrlPurpose::Crl)));
                    }
                }
            }
            ParsedExtension::AuthorityInfoAccess(info) => {
                for description in info.iter() {
                    let purpose = match description.access_method.to_id_string().as_str() {
                        "1.3.6.1.5.5.7.48.1" => UrlPurpose::Ocsp,
                        "1.3.6.1.5.5.7.48.2" => UrlPurpose::CaIssuers,
                        _ => continue,
                    };
                    if let GeneralName::URI(uri) = &description.access_location {
                        access.push(((*uri).to_owned(), purpose));
                    }
                }
            }
            _ => {}
        }
    }
    // OCSP before the issuer's certificate, whatever order the extension lists them in.
    access.sort_by_key(|(_, purpose)| *purpose != UrlPurpose::Ocsp);
    crls.extend(access);
    crls
}

fn uris<'a>(names: &'a [GeneralName<'a>]) -> impl Iterator<Item = String> + 'a {
    names.iter().filter_map(|name| match name {
        GeneralName::URI(uri) => Some((*uri).to_owned()),
        _ => None,
    })
}

/// Why an address is listed but not fetched, if it is not fetched.
fn not_fetched_because(url: &str) -> Option<String> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http") if reqwest::Url::parse(url).is_ok() => None,
        Some("http") => Some("not a valid address".to_owned()),
        Some("ldap") => Some("an LDAP address (a domain controller); not fetched".to_owned()),
        Some("https") => Some("an HTTPS address; not fetched".to_owned()),
        _ => Some("not an HTTP address; not fetched".to_owned()),
    }
}

/// One download, read to its end (or [`MAX_BODY_BYTES`]) within the client's time limit.
async fn fetch(client: &reqwest::Client, url: &str) -> FetchOutcome {
    let failed = |e: reqwest::Error| {
        if e.is_timeout() {
            FetchOutcome::TimedOut
        } else {
            FetchOutcome::Failed {
                error: describe(&e),
            }
        }
    };
    let mut response = match client.get(url).send().await {
        Ok(response) => response,
        Err(e) => return failed(e),
    };
    let status = response.status().as_u16();
    let mut bytes = 0u64;
    while bytes < MAX_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes += chunk.len() as u64,
            Ok(None) => break,
            Err(e) => return failed(e),
        }
    }
    FetchOutcome::Answered { status, bytes }
}

/// What went wrong, in one line, without the address (the report has it).
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    format!("{what}: {}", crate::root_cause(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_addresses_are_fetched() {
        assert_eq!(not_fetched_because("http://crl.example/ca.crl"), None);
        assert!(
            not_fetched_because("ldap:///CN=ca,CN=CDP?certificateRevocationList")
                .unwrap()
                .contains("LDAP")
        );
        assert!(not_fetched_because("https://ocsp.example")
            .unwrap()
            .contains("HTTPS"));
        assert!(not_fetched_because("file://x").is_some());
        assert!(not_fetched_because("http://").is_some());
    }

    fn fetch_with(outcome: FetchOutcome) -> UrlFetch {
        UrlFetch {
            url: "http://crl.example/ca.crl".to_owned(),
            purpose: UrlPurpose::Crl,
            outcome,
            elapsed_ms: 1.0,
        }
    }

    #[test]
    fn one_fetch_past_its_time_makes_the_run_slow() {
        let answered = fetch_with(FetchOutcome::Answered {
            status: 404,
            bytes: 0,
        });
        let failed = fetch_with(FetchOutcome::Failed {
            error: "refused".to_owned(),
        });
        let ldap = fetch_with(FetchOutcome::NotProbed {
            reason: "LDAP".to_owned(),
        });
        let judge = RevocationVerdict::judge;
        assert_eq!(
            judge(true, &[answered.clone(), failed.clone()]),
            RevocationVerdict::Fast
        );
        assert_eq!(
            judge(true, &[answered, fetch_with(FetchOutcome::TimedOut)]),
            RevocationVerdict::SlowOrBlocked
        );
        assert_eq!(judge(true, &[]), RevocationVerdict::NothingToFetch);
        assert_eq!(judge(false, &[]), RevocationVerdict::Unverified);
        assert_eq!(
            judge(true, std::slice::from_ref(&ldap)),
            RevocationVerdict::Unverified
        );
        assert_eq!(judge(false, &[ldap, failed]), RevocationVerdict::Fast);
    }
}
