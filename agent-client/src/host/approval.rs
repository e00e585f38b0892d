//! Approvals for downgrades: the server signs [`ApprovalClaims`] with its Ed25519 key; the
//! agent verifies them with the server key in its identity and checks that they name this
//! agent, this fix and this case, and have not expired. The signed message is
//! `rdp-doctor-approval-v1\n` followed by the exact claims JSON carried in the token, so it
//! can never be confused with a signed request or reply.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};

use super::fix::{ApprovalClaims, ApprovalToken, MAX_DOWNGRADE_SECS};
use crate::signing::{Keypair, MAX_CLOCK_SKEW_SECS};

const DOMAIN: &[u8] = b"rdp-doctor-approval-v1\n";

/// Why an approval was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("the approval is not a well-formed token")]
    Malformed,
    #[error("the approval is not signed by this agent's server")]
    BadSignature,
    #[error("the approval is for another agent ({0})")]
    WrongAgent(String),
    #[error("the approval is for another fix ({0})")]
    WrongFix(String),
    #[error("the approval is for another case ({0})")]
    WrongCase(String),
    #[error("the approval expired")]
    Expired,
    #[error("the approval was issued in the future (check the clocks)")]
    NotYetValid,
    #[error("the approval lasts longer than the {MAX_DOWNGRADE_SECS} s a downgrade may stay")]
    TooLong,
}

/// Signs claims with the server's key (the server calls this when a person approves).
pub fn issue(server_key: &Keypair, claims: &ApprovalClaims) -> ApprovalToken {
    let json = serde_json::to_vec(claims).expect("claims serialise");
    let signature = signing_key(server_key).sign(&message(&json));
    ApprovalToken(format!(
        "v1.{}.{}",
        URL_SAFE_NO_PAD.encode(&json),
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    ))
}

/// Checks the signature and returns the claims (nothing else is checked here).
pub fn verify_signature(
    token: &ApprovalToken,
    server_key: &VerifyingKey,
) -> Result<ApprovalClaims, ApprovalError> {
    let mut parts = token.0.split('.');
    let (Some("v1"), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ApprovalError::Malformed);
    };
    let json = URL_SAFE_NO_PAD
        .decode(claims)
        .map_err(|_| ApprovalError::Malformed)?;
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| ApprovalError::Malformed)?
        .try_into()
        .map_err(|_| ApprovalError::Malformed)?;
    server_key
        .verify(&message(&json), &Signature::from_bytes(&signature))
        .map_err(|_| ApprovalError::BadSignature)?;
    serde_json::from_slice(&json).map_err(|_| ApprovalError::Malformed)
}

/// Verifies an approval for running `fix` for `case_id` on `agent_id` at `now` (seconds
/// since the epoch), and returns its claims.
pub fn verify(
    token: &ApprovalToken,
    server_key: &VerifyingKey,
    agent_id: &str,
    fix: &str,
    case_id: Option<&str>,
    now: i64,
) -> Result<ApprovalClaims, ApprovalError> {
    let claims = verify_signature(token, server_key)?;
    if claims.agent_id != agent_id {
        return Err(ApprovalError::WrongAgent(claims.agent_id));
    }
    if claims.fix != fix {
        return Err(ApprovalError::WrongFix(claims.fix));
    }
    if case_id != Some(claims.case_id.as_str()) {
        return Err(ApprovalError::WrongCase(claims.case_id));
    }
    if claims.issued_at > now + MAX_CLOCK_SKEW_SECS {
        return Err(ApprovalError::NotYetValid);
    }
    if now >= claims.expires_at {
        return Err(ApprovalError::Expired);
    }
    if claims.expires_at - claims.issued_at.min(now) > MAX_DOWNGRADE_SECS {
        return Err(ApprovalError::TooLong);
    }
    Ok(claims)
}

fn message(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DOMAIN.len() + json.len());
    out.extend_from_slice(DOMAIN);
    out.extend_from_slice(json);
    out
}

/// The Ed25519 key inside a [`Keypair`] (which keeps its key private to `signing`): rebuilt
/// from the key's own storage form.
fn signing_key(key: &Keypair) -> SigningKey {
    let bytes: [u8; 32] = STANDARD
        .decode(key.secret_base64())
        .ok()
        .and_then(|b| b.try_into().ok())
        .expect("a Keypair's secret is 32 bytes of base64");
    SigningKey::from_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::unix_now;

    fn claims(now: i64) -> ApprovalClaims {
        ApprovalClaims {
            approval_id: "ap-1".into(),
            agent_id: "agent-a".into(),
            fix: "disable-nla".into(),
            case_id: "case-7".into(),
            approved_by: "helpdesk".into(),
            issued_at: now,
            expires_at: now + 600,
        }
    }

    #[test]
    fn an_issued_approval_verifies_for_its_agent_fix_and_case_only() {
        let server = Keypair::generate();
        let now = unix_now();
        let token = issue(&server, &claims(now));
        let pk = server.public_key();
        assert_eq!(
            verify(&token, &pk, "agent-a", "disable-nla", Some("case-7"), now).unwrap(),
            claims(now)
        );
        assert_eq!(
            verify(&token, &pk, "agent-b", "disable-nla", Some("case-7"), now),
            Err(ApprovalError::WrongAgent("agent-a".into()))
        );
        assert!(matches!(
            verify(
                &token,
                &pk,
                "agent-a",
                "allow-encryption-oracle",
                Some("case-7"),
                now
            ),
            Err(ApprovalError::WrongFix(_))
        ));
        assert!(matches!(
            verify(&token, &pk, "agent-a", "disable-nla", Some("case-8"), now),
            Err(ApprovalError::WrongCase(_))
        ));
        assert_eq!(
            verify(
                &token,
                &pk,
                "agent-a",
                "disable-nla",
                Some("case-7"),
                now + 600
            ),
            Err(ApprovalError::Expired)
        );
    }

    #[test]
    fn forged_and_altered_approvals_are_refused() {
        let server = Keypair::generate();
        let other = Keypair::generate();
        let now = unix_now();
        let forged = issue(&other, &claims(now));
        assert_eq!(
            verify(
                &forged,
                &server.public_key(),
                "agent-a",
                "disable-nla",
                Some("case-7"),
                now
            ),
            Err(ApprovalError::BadSignature)
        );
        // Same signature, claims edited to another agent.
        let token = issue(&server, &claims(now));
        let parts: Vec<&str> = token.0.split('.').collect();
        let mut edited = claims(now);
        edited.agent_id = "agent-b".into();
        let altered = ApprovalToken(format!(
            "v1.{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&edited).unwrap()),
            parts[2]
        ));
        assert_eq!(
            verify(
                &altered,
                &server.public_key(),
                "agent-b",
                "disable-nla",
                Some("case-7"),
                now
            ),
            Err(ApprovalError::BadSignature)
        );
        assert_eq!(
            verify(
                &ApprovalToken("junk".into()),
                &server.public_key(),
                "a",
                "b",
                None,
                now
            ),
            Err(ApprovalError::Malformed)
        );
    }

    #[test]
    fn approvals_longer_than_the_limit_are_refused() {
        let server = Keypair::generate();
        let now = unix_now();
        let mut long = claims(now);
        long.expires_at = now + MAX_DOWNGRADE_SECS + 60;
        let token = issue(&server, &long);
        assert_eq!(
            verify(
                &token,
                &server.public_key(),
                "agent-a",
                "disable-nla",
                Some("case-7"),
                now
            ),
            Err(ApprovalError::TooLong)
        );
    }
}
