//! The little of ASN.1 DER (ITU-T X.690 §8, §10) that a CredSSP TSRequest needs: writing a
//! tag-length-value with a definite length, INTEGER and OCTET STRING; reading them back with
//! every length checked against the bytes that are really there.
//!
//! Only single-byte tags are supported (every tag of MS-CSSP and SPNEGO is one), and only
//! definite lengths of at most four bytes. Long-form lengths that are not minimal (BER) are
//! accepted when reading, since some encoders produce them; indefinite lengths are not.

use thiserror::Error;

/// Universal tag of INTEGER.
pub const INTEGER: u8 = 0x02;
/// Universal tag of OCTET STRING.
pub const OCTET_STRING: u8 = 0x04;
/// Universal tag of a constructed SEQUENCE (and SEQUENCE OF).
pub const SEQUENCE: u8 = 0x30;

/// The tag of a constructed, context-specific (explicit) field `[n]`, `n` below 31.
pub const fn context(n: u8) -> u8 {
    0xA0 | (n & 0x1F)
}

/// Why bytes are not the DER this module reads.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DerError {
    #[error("the DER data ends early: {need} more bytes needed")]
    Truncated { need: usize },
    #[error("multi-byte ASN.1 tags are not supported (tag byte {0:#04x})")]
    LongTag(u8),
    #[error("indefinite lengths are not allowed in DER")]
    IndefiniteLength,
    #[error("a length of {0} bytes' length is more than this reader accepts")]
    LengthTooLong(usize),
    #[error("expected tag {expected:#04x}, found {found:#04x}")]
    UnexpectedTag { expected: u8, found: u8 },
    #[error("an INTEGER of {0} bytes does not fit in 64 bits")]
    IntegerTooLong(usize),
    #[error("an empty INTEGER")]
    EmptyInteger,
    #[error("{0} bytes follow the last element")]
    TrailingBytes(usize),
}

/// A tag-length-value with the shortest definite length encoding.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_length(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = (len as u64).to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// An INTEGER in the fewest bytes two's complement allows.
pub fn integer(value: i64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let mut start = 0;
    // Drop a leading byte while the next one still carries the sign.
    while start < bytes.len() - 1 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    tlv(INTEGER, &bytes[start..])
}

/// An OCTET STRING.
pub fn octet_string(content: &[u8]) -> Vec<u8> {
    tlv(OCTET_STRING, content)
}

/// One element read from DER input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    pub tag: u8,
    pub content: &'a [u8],
}

impl<'a> Element<'a> {
    /// Fails unless the element has `tag`.
    pub fn expect(self, tag: u8) -> Result<&'a [u8], DerError> {
        if self.tag == tag {
            Ok(self.content)
        } else {
            Err(DerError::UnexpectedTag {
                expected: tag,
                found: self.tag,
            })
        }
    }

    /// The content as an INTEGER (at most 8 bytes).
    pub fn integer(self) -> Result<i64, DerError> {
        decode_integer(self.expect(INTEGER)?)
    }
}

/// Reads elements one after the other from a slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Reader { rest: input }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element; the reader moves past it.
    pub fn element(&mut self) -> Result<Element<'a>, DerError> {
        let (element, rest) = read_element(self.rest)?;
        self.rest = rest;
        Ok(element)
    }

    /// Fails if anything is left.
    pub fn finish(&self) -> Result<(), DerError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DerError::TrailingBytes(self.rest.len()))
        }
    }
}

/// Splits one element off the front of `input`.
pub fn read_element(input: &[u8]) -> Result<(Element<'_>, &[u8]), DerError> {
    let (tag, header, len) = read_header(input)?;
    let total = header
        .checked_add(len)
        .ok_or(DerError::LengthTooLong(len))?;
    if input.len() < total {
        return Err(DerError::Truncated {
            need: total - input.len(),
        });
    }
    Ok((
        Element {
            tag,
            content: &input[header..total],
        },
        &input[total..],
    ))
}

/// How many bytes the element at the front of `input` takes in all, once its header is
/// there: `Ok(None)` while the header itself is incomplete. For reading from a stream.
pub fn element_len(input: &[u8]) -> Result<Option<usize>, DerError> {
    match read_header(input) {
        Ok((_, header, len)) => header
            .checked_add(len)
            .map(Some)
            .ok_or(DerError::LengthTooLong(len)),
        Err(DerError::Truncated { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Tag, header length and content length.
fn read_header(input: &[u8]) -> Result<(u8, usize, usize), DerError> {
    let Some(&tag) = input.first() else {
        return Err(DerError::Truncated { need: 2 });
    };
    if tag & 0x1F == 0x1F {
        return Err(DerError::LongTag(tag));
    }
    let Some(&first) = input.get(1) else {
        return Err(DerError::Truncated { need: 1 });
    };
    if first < 0x80 {
        return Ok((tag, 2, usize::from(first)));
    }
    let count = usize::from(first & 0x7F);
    if count == 0 {
        return Err(DerError::IndefiniteLength);
    }
    if count > 4 {
        return Err(DerError::LengthTooLong(count));
    }
    let Some(bytes) = input.get(2..2 + count) else {
        return Err(DerError::Truncated {
            need: 2 + count - input.len(),
        });
    };
    let len = bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Ok((tag, 2 + count, len))
}

/// Two's complement big-endian, at most 8 bytes (a leading zero byte of a positive value
/// that needs all 64 bits is allowed).
pub fn decode_integer(content: &[u8]) -> Result<i64, DerError> {
    let content = match content {
        [] => return Err(DerError::EmptyInteger),
        [0, rest @ ..] if rest.len() == 8 => {
            // 0x00 then 8 bytes: a positive value of 64 bits; keep the bits.
            return Ok(rest.iter().fold(0i64, |acc, b| (acc << 8) | i64::from(*b)));
        }
        c if c.len() > 8 => return Err(DerError::IntegerTooLong(c.len())),
        c => c,
    };
    let negative = content[0] & 0x80 != 0;
    let start: i64 = if negative { -1 } else { 0 };
    Ok(content
        .iter()
        .fold(start, |acc, b| (acc << 8) | i64::from(*b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_short_form_below_128_and_the_shortest_long_form_above() {
        assert_eq!(tlv(0x04, &[]), [0x04, 0x00]);
        assert_eq!(tlv(0x04, &[7; 127])[..2], [0x04, 0x7F]);
        assert_eq!(tlv(0x04, &[7; 128])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(tlv(0x04, &[7; 256])[..4], [0x04, 0x82, 0x01, 0x00]);
        assert_eq!(tlv(0x04, &[7; 70_000])[..5], [0x04, 0x83, 0x01, 0x11, 0x70]);
    }

    #[test]
    fn integers_are_minimal_twos_complement() {
        assert_eq!(integer(0), [0x02, 0x01, 0x00]);
        assert_eq!(integer(6), [0x02, 0x01, 0x06]);
        assert_eq!(integer(127), [0x02, 0x01, 0x7F]);
        assert_eq!(integer(128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(256), [0x02, 0x02, 0x01, 0x00]);
        assert_eq!(integer(-1), [0x02, 0x01, 0xFF]);
        assert_eq!(integer(-129), [0x02, 0x02, 0xFF, 0x7F]);
        for value in [
            0,
            1,
            6,
            127,
            128,
            255,
            256,
            -1,
            -128,
            -129,
            0xC000_006D,
            i64::MIN,
        ] {
            let bytes = integer(value);
            let (e, rest) = read_element(&bytes).unwrap();
            assert!(rest.is_empty());
            assert_eq!(e.integer().unwrap(), value);
        }
    }

    #[test]
    fn ntstatus_codes_read_the_same_whether_written_signed_or_unsigned() {
        // 0xC000006D as a 5-byte positive INTEGER and as a 4-byte negative one.
        let unsigned = decode_integer(&[0x00, 0xC0, 0x00, 0x00, 0x6D]).unwrap();
        let signed = decode_integer(&[0xC0, 0x00, 0x00, 0x6D]).unwrap();
        assert_eq!(unsigned as u32, 0xC000_006D);
        assert_eq!(signed as u32, 0xC000_006D);
        assert_eq!(
            decode_integer(&[0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]).unwrap(),
            -1
        );
        assert_eq!(decode_integer(&[]), Err(DerError::EmptyInteger));
        assert_eq!(decode_integer(&[1; 9]), Err(DerError::IntegerTooLong(9)));
    }

    #[test]
    fn lengths_are_checked_against_the_input() {
        assert_eq!(
            read_element(&[]).unwrap_err(),
            DerError::Truncated { need: 2 }
        );
        assert_eq!(
            read_element(&[0x30]).unwrap_err(),
            DerError::Truncated { need: 1 }
        );
        assert_eq!(
            read_element(&[0x30, 0x05, 1, 2]).unwrap_err(),
            DerError::Truncated { need: 3 }
        );
        assert_eq!(
            read_element(&[0x30, 0x82, 0x01]).unwrap_err(),
            DerError::Truncated { need: 1 }
        );
        assert_eq!(
            read_element(&[0x30, 0x80, 0, 0]).unwrap_err(),
            DerError::IndefiniteLength
        );
        assert_eq!(
            read_element(&[0x30, 0x85, 1, 1, 1, 1, 1]).unwrap_err(),
            DerError::LengthTooLong(5)
        );
        assert_eq!(
            read_element(&[0x1F, 0x01, 0x00]).unwrap_err(),
            DerError::LongTag(0x1F)
        );
        // Four length bytes of all ones: a length far past the input, not an overflow.
        assert!(matches!(
            read_element(&[0x04, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]).unwrap_err(),
            DerError::Truncated { .. }
        ));
        // A non-minimal long form (BER) is read.
        let (e, rest) = read_element(&[0x04, 0x81, 0x02, 9, 8, 7]).unwrap();
        assert_eq!((e.content, rest), (&[9u8, 8][..], &[7u8][..]));
    }

    #[test]
    fn element_len_waits_for_the_header_and_then_knows_the_total() {
        assert_eq!(element_len(&[]), Ok(None));
        assert_eq!(element_len(&[0x30]), Ok(None));
        assert_eq!(element_len(&[0x30, 0x82, 0x01]), Ok(None));
        assert_eq!(element_len(&[0x30, 0x82, 0x01, 0x00]), Ok(Some(260)));
        assert_eq!(element_len(&[0x30, 0x05]), Ok(Some(7)));
        assert_eq!(element_len(&[0x30, 0x80]), Err(DerError::IndefiniteLength));
    }

    #[test]
    fn every_prefix_and_every_byte_of_a_structure_is_handled_without_panicking() {
        let sample = tlv(
            SEQUENCE,
            &[
                tlv(context(0), &integer(6)),
                tlv(context(1), &octet_string(&[1; 200])),
            ]
            .concat(),
        );
        for cut in 0..sample.len() {
            let _ = read_element(&sample[..cut]);
            let _ = element_len(&sample[..cut]);
        }
        for i in 0..sample.len() {
            for value in [0x00, 0x7F, 0x80, 0x84, 0xFF] {
                let mut bent = sample.clone();
                bent[i] = value;
                if let Ok((outer, _)) = read_element(&bent) {
                    let mut fields = Reader::new(outer.content);
                    while let Ok(field) = fields.element() {
                        let _ = Reader::new(field.content)
                            .element()
                            .and_then(|e| e.integer());
                    }
                }
            }
        }
    }
}
