//! Ed25519 signatures on every request and reply between the server and its agents.
//!
//! A request signature covers the method, the path, the key id, a timestamp, a nonce and a
//! SHA-256 of the body; a reply signature covers its status, a hash of its body, its own
//! timestamp and the nonce of the request it answers, so a reply cannot be replayed to another
//! request. Verifiers refuse timestamps outside [`MAX_CLOCK_SKEW_SECS`] and nonces seen before.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

pub const HEADER_KEY_ID: &str = "x-rdpd-key-id";
pub const HEADER_TIMESTAMP: &str = "x-rdpd-timestamp";
pub const HEADER_NONCE: &str = "x-rdpd-nonce";
pub const HEADER_SIGNATURE: &str = "x-rdpd-signature";

/// How far a signed timestamp may be from the verifier's clock, either way.
pub const MAX_CLOCK_SKEW_SECS: i64 = 60;

/// The key id an agent uses on its enrollment request, signed with the key it is enrolling.
pub const ENROLL_KEY_ID: &str = "enroll";

/// Why a signed message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing signature header {0}")]
    MissingHeader(&'static str),
    #[error("malformed signature header {0}")]
    MalformedHeader(&'static str),
    #[error("the signed timestamp is more than {MAX_CLOCK_SKEW_SECS} s from this clock")]
    Stale,
    #[error("this request was already received once (replayed nonce)")]
    Replayed,
    #[error("the signature does not match")]
    BadSignature,
    #[error("the signing key is not known here")]
    UnknownKey,
}

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid base64 Ed25519 key")]
pub struct InvalidKey;

/// A private signing key (the server's, or one agent's).
pub struct Keypair(SigningKey);

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private half.
        write!(f, "Keypair(public: {})", self.public_base64())
    }
}

impl Keypair {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Self {
        Keypair(SigningKey::from_bytes(&random_bytes::<32>()))
    }

    /// Reads a private key stored with [`Keypair::secret_base64`].
    pub fn from_secret_base64(encoded: &str) -> Result<Self, InvalidKey> {
        let bytes: [u8; 32] = BASE64
            .decode(encoded.trim())
            .map_err(|_| InvalidKey)?
            .try_into()
            .map_err(|_| InvalidKey)?;
        Ok(Keypair(SigningKey::from_bytes(&bytes)))
    }

    /// The private key for storage in a file only its owner can read.
    pub fn secret_base64(&self) -> String {
        BASE64.encode(self.0.to_bytes())
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    pub fn public_base64(&self) -> String {
        BASE64.encode(self.0.verifying_key().as_bytes())
    }

    fn sign(&self, message: &[u8]) -> String {
        BASE64.encode(self.0.sign(message).to_bytes())
    }
}

/// Reads a public key sent as base64.
pub fn public_key_from_base64(encoded: &str) -> Result<VerifyingKey, InvalidKey> {
    let bytes: [u8; 32] = BASE64
        .decode(encoded.trim())
        .map_err(|_| InvalidKey)?
        .try_into()
        .map_err(|_| InvalidKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| InvalidKey)
}

/// The signature headers of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSignature {
    pub key_id: String,
    pub timestamp: i64,
    pub nonce: String,
    pub signature: String,
}

impl RequestSignature {
    /// The headers to send, as (name, value) pairs.
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            (HEADER_KEY_ID, self.key_id.clone()),
            (HEADER_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_NONCE, self.nonce.clone()),
            (HEADER_SIGNATURE, self.signature.clone()),
        ]
    }

    /// Reads the headers of a received request through `header(name)`.
    pub fn from_headers<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Result<Self, AuthError> {
        let get = |name: &'static str| header(name).ok_or(AuthError::MissingHeader(name));
        let nonce = get(HEADER_NONCE)?;
        if nonce.len() < 16 || nonce.len() > 64 {
            return Err(AuthError::MalformedHeader(HEADER_NONCE));
        }
        Ok(RequestSignature {
            key_id: get(HEADER_KEY_ID)?.to_owned(),
            timestamp: get(HEADER_TIMESTAMP)?
                .parse()
                .map_err(|_| AuthError::MalformedHeader(HEADER_TIMESTAMP))?,
            nonce: nonce.to_owned(),
            signature: get(HEADER_SIGNATURE)?.to_owned(),
        })
    }
}

/// The signature headers of one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseSignature {
    pub timestamp: i64,
    pub signature: String,
}

impl ResponseSignature {
    pub fn headers(&self) -> [(&'static str, String); 2] {
        [
            (HEADER_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_SIGNATURE, self.signature.clone()),
        ]
    }

    pub fn from_headers<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Result<Self, AuthError> {
        let get = |name: &'static str| header(name).ok_or(AuthError::MissingHeader(name));
        Ok(ResponseSignature {
            timestamp: get(HEADER_TIMESTAMP)?
                .parse()
                .map_err(|_| AuthError::MalformedHeader(HEADER_TIMESTAMP))?,
            signature: get(HEADER_SIGNATURE)?.to_owned(),
        })
    }
}

/// Seconds since the Unix epoch on this machine's clock.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn body_hash(body: &[u8]) -> String {
    hex_lower(&Sha256::digest(body))
}

fn request_message(method: &str, path: &str, sig: &RequestSignature, body: &[u8]) -> Vec<u8> {
    format!(
        "rdp-doctor-request-v1\n{}\n{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path,
        sig.key_id,
        sig.timestamp,
        sig.nonce,
        body_hash(body)
    )
    .into_bytes()
}

fn response_message(status: u16, timestamp: i64, request_nonce: &str, body: &[u8]) -> Vec<u8> {
    format!(
        "rdp-doctor-response-v1\n{status}\n{timestamp}\n{request_nonce}\n{}",
        body_hash(body)
    )
    .into_bytes()
}

/// Signs a request to `path` (path and query, as sent) with `key`, now.
pub fn sign_request(
    key: &Keypair,
    key_id: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> RequestSignature {
    sign_request_at(key, key_id, method, path, body, unix_now())
}

/// Signs a request as of `timestamp` (seconds since the epoch); tests use it to age one.
pub fn sign_request_at(
    key: &Keypair,
    key_id: &str,
    method: &str,
    path: &str,
    body: &[u8],
    timestamp: i64,
) -> RequestSignature {
    let mut sig = RequestSignature {
        key_id: key_id.to_owned(),
        timestamp,
        nonce: hex_lower(&random_bytes::<16>()),
        signature: String::new(),
    };
    sig.signature = key.sign(&request_message(method, path, &sig, body));
    sig
}

fn check_signature(key: &VerifyingKey, message: &[u8], signature: &str) -> Result<(), AuthError> {
    let bytes: [u8; 64] = BASE64
        .decode(signature)
        .map_err(|_| AuthError::MalformedHeader(HEADER_SIGNATURE))?
        .try_into()
        .map_err(|_| AuthError::MalformedHeader(HEADER_SIGNATURE))?;
    key.verify(message, &Signature::from_bytes(&bytes))
        .map_err(|_| AuthError::BadSignature)
}

fn check_fresh(timestamp: i64, now: i64) -> Result<(), AuthError> {
    if (now - timestamp).abs() > MAX_CLOCK_SKEW_SECS {
        Err(AuthError::Stale)
    } else {
        Ok(())
    }
}

/// Verifies a received request: signature, freshness, then that its nonce is new.
pub fn verify_request(
    key: &VerifyingKey,
    sig: &RequestSignature,
    method: &str,
    path: &str,
    body: &[u8],
    replay_guard: &ReplayGuard,
) -> Result<(), AuthError> {
    check_signature(
        key,
        &request_message(method, path, sig, body),
        &sig.signature,
    )?;
    let now = unix_now();
    check_fresh(sig.timestamp, now)?;
    replay_guard.record(&sig.key_id, &sig.nonce, now)
}

/// Signs a reply to the request that carried `request_nonce`.
pub fn sign_response(
    key: &Keypair,
    status: u16,
    request_nonce: &str,
    body: &[u8],
) -> ResponseSignature {
    let timestamp = unix_now();
    ResponseSignature {
        timestamp,
        signature: key.sign(&response_message(status, timestamp, request_nonce, body)),
    }
}

/// Verifies a reply to the request that carried `request_nonce`.
pub fn verify_response(
    key: &VerifyingKey,
    sig: &ResponseSignature,
    status: u16,
    request_nonce: &str,
    body: &[u8],
) -> Result<(), AuthError> {
    check_signature(
        key,
        &response_message(status, sig.timestamp, request_nonce, body),
        &sig.signature,
    )?;
    check_fresh(sig.timestamp, unix_now())
}

/// Remembers the nonces of accepted requests for as long as their timestamps stay fresh.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<(String, String), i64>>,
}

impl ReplayGuard {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a nonce, refusing one that was seen within the freshness window.
    pub fn record(&self, key_id: &str, nonce: &str, now: i64) -> Result<(), AuthError> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Anything older than twice the skew window can no longer pass the freshness check.
        seen.retain(|_, first_seen| now - *first_seen <= 2 * MAX_CLOCK_SKEW_SECS);
        match seen.entry((key_id.to_owned(), nonce.to_owned())) {
            std::collections::hash_map::Entry::Occupied(_) => Err(AuthError::Replayed),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(now);
                Ok(())
            }
        }
    }
}

/// SHA-256 of a secret, hex: how enrollment tokens are stored.
pub fn sha256_hex(data: &[u8]) -> String {
    hex_lower(&Sha256::digest(data))
}

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the operating system's random generator failed");
    bytes
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(key: &Keypair, body: &[u8]) -> RequestSignature {
        sign_request(key, "agent-1", "POST", "/v1/checks/run", body)
    }

    #[test]
    fn a_signed_request_verifies_once() {
        let key = Keypair::generate();
        let guard = ReplayGuard::new();
        let sig = signed(&key, b"{}");
        let verify = || {
            verify_request(
                &key.public_key(),
                &sig,
                "POST",
                "/v1/checks/run",
                b"{}",
                &guard,
            )
        };
        assert_eq!(verify(), Ok(()));
        assert_eq!(verify(), Err(AuthError::Replayed));
    }

    #[test]
    fn tampering_with_any_covered_part_breaks_the_signature() {
        let key = Keypair::generate();
        let sig = signed(&key, b"{}");
        let pk = key.public_key();
        let guard = ReplayGuard::new();
        assert_eq!(
            verify_request(&pk, &sig, "POST", "/v1/checks/run", b"{ }", &guard),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify_request(&pk, &sig, "GET", "/v1/checks/run", b"{}", &guard),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify_request(&pk, &sig, "POST", "/v1/other", b"{}", &guard),
            Err(AuthError::BadSignature)
        );
        let mut later = sig.clone();
        later.timestamp += 1;
        assert_eq!(
            verify_request(&pk, &later, "POST", "/v1/checks/run", b"{}", &guard),
            Err(AuthError::BadSignature)
        );
        let other = Keypair::generate();
        assert_eq!(
            verify_request(
                &other.public_key(),
                &sig,
                "POST",
                "/v1/checks/run",
                b"{}",
                &guard
            ),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn a_stale_request_is_refused_even_with_a_good_signature() {
        let key = Keypair::generate();
        let sig = sign_request_at(
            &key,
            "a",
            "POST",
            "/p",
            b"",
            unix_now() - MAX_CLOCK_SKEW_SECS - 5,
        );
        let guard = ReplayGuard::new();
        assert_eq!(
            verify_request(&key.public_key(), &sig, "POST", "/p", b"", &guard),
            Err(AuthError::Stale)
        );
    }

    #[test]
    fn a_reply_is_bound_to_the_request_it_answers() {
        let key = Keypair::generate();
        let sig = sign_response(&key, 200, "nonce-a-0123456789", b"ok");
        let pk = key.public_key();
        assert_eq!(
            verify_response(&pk, &sig, 200, "nonce-a-0123456789", b"ok"),
            Ok(())
        );
        assert_eq!(
            verify_response(&pk, &sig, 200, "nonce-b-0123456789", b"ok"),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify_response(&pk, &sig, 500, "nonce-a-0123456789", b"ok"),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn keys_round_trip_through_base64_and_reject_garbage() {
        let key = Keypair::generate();
        let again = Keypair::from_secret_base64(&key.secret_base64()).unwrap();
        assert_eq!(again.public_base64(), key.public_base64());
        assert_eq!(
            public_key_from_base64(&key.public_base64()).unwrap(),
            key.public_key()
        );
        assert_eq!(public_key_from_base64("not base64!"), Err(InvalidKey));
        assert_eq!(
            Keypair::from_secret_base64("c2hvcnQ=").err(),
            Some(InvalidKey)
        );
        assert!(!format!("{key:?}").contains(&key.secret_base64()));
    }
}
