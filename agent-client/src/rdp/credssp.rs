//! The CredSSP TSRequest of MS-CSSP 2.2.1 (ASN.1 DER), as far as the first round trip goes:
//! the client's TSRequest carrying an NTLM NEGOTIATE_MESSAGE in `negoTokens`, and the
//! server's answer carrying the CHALLENGE_MESSAGE (or an `errorCode`). A server may wrap its
//! token in SPNEGO (RFC 4178 §4.2.2, NegTokenResp); [`inner_token`] unwraps it.
//!
//! ```text
//! TSRequest ::= SEQUENCE {
//!     version     [0] INTEGER,
//!     negoTokens  [1] NegoData OPTIONAL,
//!     authInfo    [2] OCTET STRING OPTIONAL,
//!     pubKeyAuth  [3] OCTET STRING OPTIONAL,
//!     errorCode   [4] INTEGER OPTIONAL,
//!     clientNonce [5] OCTET STRING OPTIONAL }
//! NegoData ::= SEQUENCE OF SEQUENCE { negoToken [0] OCTET STRING }
//! ```

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::der::{self, context, DerError, Reader, OCTET_STRING, SEQUENCE};
use super::ntlm::SIGNATURE as NTLM_SIGNATURE;

/// The TSRequest version this client announces. Versions 2 to 6 exist (MS-CSSP 2.2.1);
/// the server answers with the lower of its own and this one.
pub const CLIENT_VERSION: i64 = 6;

/// The largest TSRequest this reader accepts. An NTLM challenge fits in well under 2 KiB;
/// Kerberos tokens can be larger, but this client never asks for Kerberos.
pub const MAX_TS_REQUEST_LEN: usize = 64 * 1024;

/// Why a server's TSRequest could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TsRequestError {
    #[error("the TSRequest is not valid DER: {0}")]
    Der(#[from] DerError),
    #[error("the TSRequest has no version field")]
    NoVersion,
    #[error("the TSRequest version {0} is outside 1..=255")]
    BadVersion(i64),
}

/// The fields of a TSRequest this client uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsRequest {
    pub version: u32,
    /// Every `negoToken`, in order.
    pub nego_tokens: Vec<Vec<u8>>,
    /// `errorCode`: an NTSTATUS (or HRESULT) the server reports instead of a token.
    pub error_code: Option<u32>,
    /// Fields present that this client does not use, by number (2 authInfo, 3 pubKeyAuth,
    /// 5 clientNonce, or others).
    pub other_fields: Vec<u8>,
}

/// A TSRequest with `version` and one `negoToken`.
pub fn encode_ts_request(version: i64, nego_token: &[u8]) -> Vec<u8> {
    let token = der::tlv(context(0), &der::octet_string(nego_token));
    let nego_data = der::tlv(SEQUENCE, &der::tlv(SEQUENCE, &token));
    let fields = [
        der::tlv(context(0), &der::integer(version)),
        der::tlv(context(1), &nego_data),
    ]
    .concat();
    der::tlv(SEQUENCE, &fields)
}

/// Reads a complete TSRequest (nothing may follow it).
pub fn parse_ts_request(input: &[u8]) -> Result<TsRequest, TsRequestError> {
    let mut outer = Reader::new(input);
    let body = outer.element()?.expect(SEQUENCE)?;
    outer.finish()?;
    let mut fields = Reader::new(body);
    let mut request = TsRequest {
        version: 0,
        nego_tokens: Vec::new(),
        error_code: None,
        other_fields: Vec::new(),
    };
    let mut version = None;
    while !fields.is_empty() {
        let field = fields.element()?;
        match field.tag {
            t if t == context(0) => {
                let mut inner = Reader::new(field.content);
                version = Some(inner.element()?.integer()?);
                inner.finish()?;
            }
            t if t == context(1) => {
                let mut inner = Reader::new(field.content);
                let list = inner.element()?.expect(SEQUENCE)?;
                inner.finish()?;
                let mut items = Reader::new(list);
                while !items.is_empty() {
                    let item = items.element()?.expect(SEQUENCE)?;
                    let mut item_fields = Reader::new(item);
                    while !item_fields.is_empty() {
                        let f = item_fields.element()?;
                        if f.tag == context(0) {
                            let mut token = Reader::new(f.content);
                            request
                                .nego_tokens
                                .push(token.element()?.expect(OCTET_STRING)?.to_vec());
                            token.finish()?;
                        }
                    }
                }
            }
            t if t == context(4) => {
                let mut inner = Reader::new(field.content);
                // NTSTATUS values are 32-bit; written signed or unsigned, the bits are these.
                request.error_code = Some(inner.element()?.integer()? as u32);
                inner.finish()?;
            }
            other => request.other_fields.push(other & 0x1F),
        }
    }
    match version {
        None => Err(TsRequestError::NoVersion),
        Some(v) if !(1..=255).contains(&v) => Err(TsRequestError::BadVersion(v)),
        Some(v) => {
            request.version = v as u32;
            Ok(request)
        }
    }
}

/// How the server's negoToken carried the NTLM message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenWrapping {
    /// The NTLM message as it is (what Windows answers to a raw NTLM negotiate).
    Raw,
    /// Inside an SPNEGO NegTokenResp `responseToken`.
    Spnego,
}

/// The NTLM message in a negoToken: the token itself when it starts with the NTLMSSP
/// signature, else the `responseToken` of an SPNEGO NegTokenResp. `None` when neither.
pub fn inner_token(token: &[u8]) -> Option<(&[u8], TokenWrapping)> {
    if token.starts_with(NTLM_SIGNATURE) {
        return Some((token, TokenWrapping::Raw));
    }
    // NegotiationToken ::= CHOICE { negTokenInit [0], negTokenResp [1] NegTokenResp }
    // NegTokenResp ::= SEQUENCE { negState [0], supportedMech [1], responseToken [2]
    //                             OCTET STRING, mechListMIC [3] }
    let mut outer = Reader::new(token);
    let resp = outer.element().ok()?.expect(context(1)).ok()?;
    let mut inner = Reader::new(resp);
    let sequence = inner.element().ok()?.expect(SEQUENCE).ok()?;
    let mut fields = Reader::new(sequence);
    while !fields.is_empty() {
        let field = fields.element().ok()?;
        if field.tag == context(2) {
            let found = Reader::new(field.content)
                .element()
                .ok()?
                .expect(OCTET_STRING)
                .ok()?;
            return found
                .starts_with(NTLM_SIGNATURE)
                .then_some((found, TokenWrapping::Spnego));
        }
    }
    None
}

/// The name of an NTSTATUS or SSPI status a server may put in `errorCode`, when known.
pub fn status_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0xC000_006D => "STATUS_LOGON_FAILURE",
        0xC000_0022 => "STATUS_ACCESS_DENIED",
        0xC000_006E => "STATUS_ACCOUNT_RESTRICTION",
        0xC000_0133 => "STATUS_TIME_DIFFERENCE_AT_DC",
        0xC000_00BB => "STATUS_NOT_SUPPORTED",
        0xC000_0001 => "STATUS_UNSUCCESSFUL",
        0x8009_0302 => "SEC_E_UNSUPPORTED_FUNCTION",
        0x8009_0308 => "SEC_E_INVALID_TOKEN",
        0x8009_030C => "SEC_E_LOGON_DENIED",
        0x8009_0311 => "SEC_E_NO_AUTHENTICATING_AUTHORITY",
        0x8009_0324 => "SEC_E_TIME_SKEW",
        0x8009_0331 => "SEC_E_ALGORITHM_MISMATCH",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_ts_request_has_the_layout_of_ms_cssp() {
        let token = b"NTLMSSP\0\x01\0\0\0";
        let bytes = encode_ts_request(6, token);
        let expected = [
            &[0x30, 0x1B][..],                     // TSRequest
            &[0xA0, 0x03, 0x02, 0x01, 0x06],       // version [0] INTEGER 6
            &[0xA1, 0x14, 0x30, 0x12, 0x30, 0x10], // negoTokens [1] SEQUENCE OF SEQUENCE
            &[0xA0, 0x0E, 0x04, 0x0C],             // negoToken [0] OCTET STRING
            token,
        ]
        .concat();
        assert_eq!(bytes, expected);
        let back = parse_ts_request(&bytes).unwrap();
        assert_eq!(back.version, 6);
        assert_eq!(back.nego_tokens, vec![token.to_vec()]);
        assert_eq!(back.error_code, None);
    }

    #[test]
    fn a_long_token_gets_long_form_lengths_and_reads_back() {
        let token = [0x4E; 600];
        let bytes = encode_ts_request(6, &token);
        assert_eq!(&bytes[..2], &[0x30, 0x82]);
        assert_eq!(parse_ts_request(&bytes).unwrap().nego_tokens[0], token);
    }

    #[test]
    fn error_codes_and_unused_fields_are_reported() {
        let fields = [
            der::tlv(context(0), &der::integer(6)),
            der::tlv(context(3), &der::octet_string(&[1, 2])),
            der::tlv(context(4), &der::integer(0xC000_006D)),
        ]
        .concat();
        let bytes = der::tlv(SEQUENCE, &fields);
        let request = parse_ts_request(&bytes).unwrap();
        assert_eq!(request.error_code, Some(0xC000_006D));
        assert_eq!(request.other_fields, vec![3]);
        assert!(request.nego_tokens.is_empty());
        assert_eq!(status_name(0xC000_006D), Some("STATUS_LOGON_FAILURE"));
    }

    #[test]
    fn malformed_requests_are_errors() {
        // No version.
        let bytes = der::tlv(SEQUENCE, &der::tlv(context(4), &der::integer(1)));
        assert_eq!(parse_ts_request(&bytes), Err(TsRequestError::NoVersion));
        // Version 0 and a huge version.
        for v in [0, 256, -1] {
            let bytes = der::tlv(SEQUENCE, &der::tlv(context(0), &der::integer(v)));
            assert_eq!(parse_ts_request(&bytes), Err(TsRequestError::BadVersion(v)));
        }
        // Trailing bytes after the TSRequest.
        let mut bytes = encode_ts_request(6, b"NTLMSSP\0");
        bytes.push(0);
        assert!(matches!(
            parse_ts_request(&bytes),
            Err(TsRequestError::Der(DerError::TrailingBytes(1)))
        ));
        // The version is not an INTEGER.
        let bytes = der::tlv(SEQUENCE, &der::tlv(context(0), &der::octet_string(&[6])));
        assert!(matches!(
            parse_ts_request(&bytes),
            Err(TsRequestError::Der(DerError::UnexpectedTag { .. }))
        ));
        // Not a SEQUENCE at all.
        assert!(parse_ts_request(b"HTTP/1.1 400").is_err());
        assert!(parse_ts_request(&[]).is_err());
    }

    #[test]
    fn every_prefix_and_corruption_of_a_ts_request_is_an_error_not_a_panic() {
        let bytes = encode_ts_request(6, &[0x41; 150]);
        for cut in 0..bytes.len() {
            assert!(parse_ts_request(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            for value in [0x00, 0x01, 0x30, 0x7F, 0x80, 0x81, 0x84, 0xA0, 0xFF] {
                let mut bent = bytes.clone();
                bent[i] = value;
                let _ = parse_ts_request(&bent);
            }
        }
    }

    #[test]
    fn spnego_responses_are_unwrapped() {
        let ntlm = b"NTLMSSP\0\x02\0\0\0rest".to_vec();
        assert_eq!(inner_token(&ntlm), Some((&ntlm[..], TokenWrapping::Raw)));
        // negState accept-incomplete, supportedMech NTLMSSP, responseToken.
        let ntlm_oid = [
            0x06, 0x0A, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0A,
        ];
        let resp = der::tlv(
            SEQUENCE,
            &[
                der::tlv(context(0), &[0x0A, 0x01, 0x01]),
                der::tlv(context(1), &ntlm_oid),
                der::tlv(context(2), &der::octet_string(&ntlm)),
            ]
            .concat(),
        );
        let wrapped = der::tlv(context(1), &resp);
        assert_eq!(
            inner_token(&wrapped),
            Some((&ntlm[..], TokenWrapping::Spnego))
        );
        for cut in 0..wrapped.len() {
            assert_eq!(inner_token(&wrapped[..cut]), None);
        }
        // A Kerberos-looking response token is not NTLM.
        let other = der::tlv(
            context(1),
            &der::tlv(
                SEQUENCE,
                &der::tlv(context(2), &der::octet_string(&[0x60, 0x01, 0x00])),
            ),
        );
        assert_eq!(inner_token(&other), None);
        assert_eq!(inner_token(&[]), None);
    }
}
