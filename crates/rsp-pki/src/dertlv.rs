//! A minimal DER TLV reader and writer.
//!
//! `x509-cert` does the strict structural parse of certificates. This module exists for the
//! three things it cannot do for us:
//!
//! * slicing the *original* encoding of `tbsCertificate`, `issuer` and `subject` (signatures
//!   are verified over the exact received bytes, never over a re-encoding);
//! * decoding OIDs leniently: `const-oid` 0.10 rejects arcs such as `2.999.10` (X.660 allows a
//!   second arc above 39 under `joint-iso-itu-t(2)`), and the SGP.26 test certificates carry
//!   exactly such OIDs in their subjectAltName registeredID;
//! * building certificates by hand (the test PKI generator), which lets us label brainpool keys
//!   and sign through [`rsp_crypto::KeyCustody`].
//!
//! Only single-byte tags (tag number below 31) are handled, which is all X.509 needs.

use crate::PkiError;

/// One decoded TLV: its tag byte, its contents, and the full encoding (header + contents).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

fn malformed(what: &'static str) -> PkiError {
    PkiError::malformed(what)
}

/// Reads one TLV from the front of `input`, returning it and the rest.
///
/// Enforces DER length rules: definite lengths only, minimal length encoding.
pub(crate) fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), PkiError> {
    let (&tag, rest) = input
        .split_first()
        .ok_or_else(|| malformed("truncated TLV tag"))?;
    if tag & 0x1F == 0x1F {
        return Err(malformed("multi-byte tags are not supported"));
    }
    let (&first, mut rest) = rest
        .split_first()
        .ok_or_else(|| malformed("truncated TLV length"))?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return Err(malformed("indefinite or oversized length"));
        }
        if rest.len() < n {
            return Err(malformed("truncated TLV length"));
        }
        let (len_bytes, r) = rest.split_at(n);
        rest = r;
        // Invariant: n >= 1, checked above.
        if len_bytes[0] == 0 {
            return Err(malformed("non-minimal length encoding"));
        }
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 {
            return Err(malformed("non-minimal length encoding"));
        }
        len
    };
    if rest.len() < len {
        return Err(malformed("truncated TLV value"));
    }
    let header_len = input.len() - rest.len();
    let (value, rest) = rest.split_at(len);
    Ok((
        Tlv {
            tag,
            value,
            raw: &input[..header_len + len],
        },
        rest,
    ))
}

/// Reads exactly one TLV with the expected tag, with nothing after it.
pub(crate) fn read_single<'a>(
    input: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<Tlv<'a>, PkiError> {
    let (tlv, rest) = read_tlv(input)?;
    if tlv.tag != tag {
        return Err(malformed(what));
    }
    if !rest.is_empty() {
        return Err(PkiError::malformed(format!("trailing bytes after {what}")));
    }
    Ok(tlv)
}

/// Splits the contents of a constructed value into its child TLVs.
pub(crate) fn children(mut value: &[u8]) -> Result<Vec<Tlv<'_>>, PkiError> {
    let mut out = Vec::new();
    while !value.is_empty() {
        let (tlv, rest) = read_tlv(value)?;
        out.push(tlv);
        value = rest;
    }
    Ok(out)
}

/// Decodes OID contents octets to dotted form, accepting any arc value X.660 allows
/// (including `2.999.x`, which `const-oid` rejects).
pub(crate) fn oid_to_dotted(bytes: &[u8]) -> Result<String, PkiError> {
    if bytes.is_empty() || bytes.last().is_some_and(|b| b & 0x80 != 0) {
        return Err(malformed("invalid OBJECT IDENTIFIER"));
    }
    let mut arcs: Vec<u128> = Vec::new();
    let mut acc: u128 = 0;
    let mut start = true;
    for &b in bytes {
        if start && b == 0x80 {
            return Err(malformed("non-minimal OBJECT IDENTIFIER arc"));
        }
        start = false;
        if acc > (u128::MAX >> 7) {
            return Err(malformed("OBJECT IDENTIFIER arc too large"));
        }
        acc = (acc << 7) | u128::from(b & 0x7F);
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
            start = true;
        }
    }
    let mut out = String::new();
    // Invariant: `bytes` is non-empty and ends with a byte without the continuation bit, so
    // at least one arc was pushed.
    let first = arcs[0];
    let (a, b) = if first < 40 {
        (0, first)
    } else if first < 80 {
        (1, first - 40)
    } else {
        (2, first - 80)
    };
    out.push_str(&format!("{a}.{b}"));
    for arc in &arcs[1..] {
        out.push_str(&format!(".{arc}"));
    }
    Ok(out)
}

/// Encodes a dotted OID to its contents octets (any X.660 arcs, including `2.999.x`).
pub(crate) fn dotted_to_oid(dotted: &str) -> Result<Vec<u8>, PkiError> {
    let bad = || PkiError::InvalidOption(format!("invalid OID {dotted:?}"));
    let arcs: Vec<u128> = dotted
        .split('.')
        .map(|s| {
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                Err(bad())
            } else {
                s.parse::<u128>().map_err(|_| bad())
            }
        })
        .collect::<Result<_, _>>()?;
    if arcs.len() < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] > 39) {
        return Err(bad());
    }
    let first = arcs[0]
        .checked_mul(40)
        .and_then(|v| v.checked_add(arcs[1]))
        .ok_or_else(bad)?;
    let mut out = Vec::new();
    for arc in std::iter::once(first).chain(arcs[2..].iter().copied()) {
        let mut groups = vec![(arc & 0x7F) as u8];
        let mut v = arc >> 7;
        while v > 0 {
            groups.push(((v & 0x7F) as u8) | 0x80);
            v >>= 7;
        }
        groups.reverse();
        out.extend_from_slice(&groups);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

/// Encodes one TLV.
pub(crate) fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    out.push(tag);
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
    out
}

/// Tag constants used by the writer and the parser.
pub(crate) mod tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    pub const UTF8_STRING: u8 = 0x0C;
    pub const PRINTABLE_STRING: u8 = 0x13;
    pub const TELETEX_STRING: u8 = 0x14;
    pub const IA5_STRING: u8 = 0x16;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
}

/// `SEQUENCE { parts... }`.
pub(crate) fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SEQUENCE, &parts.concat())
}

/// `SET { parts... }` (callers pass a single element or already-sorted elements).
pub(crate) fn set(parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SET, &parts.concat())
}

/// `OBJECT IDENTIFIER` from a dotted string.
pub(crate) fn oid(dotted: &str) -> Result<Vec<u8>, PkiError> {
    Ok(tlv(tag::OID, &dotted_to_oid(dotted)?))
}

/// Non-negative `INTEGER` from big-endian magnitude bytes.
pub(crate) fn uint(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = {
        let skip = magnitude.iter().take_while(|b| **b == 0).count();
        let t = &magnitude[skip..];
        if t.is_empty() { &[0] } else { t }
    };
    let mut v = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        v.push(0);
    }
    v.extend_from_slice(trimmed);
    tlv(tag::INTEGER, &v)
}

/// `BOOLEAN TRUE`.
pub(crate) fn bool_true() -> Vec<u8> {
    tlv(tag::BOOLEAN, &[0xFF])
}

/// `BIT STRING` with zero unused bits.
pub(crate) fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.push(0);
    v.extend_from_slice(bytes);
    tlv(tag::BIT_STRING, &v)
}

/// `BIT STRING` for a named-bit list (KeyUsage) given the bit positions set, DER-minimal
/// (trailing zero bits removed, unused-bit count set accordingly).
pub(crate) fn named_bits(bits: &[u8]) -> Vec<u8> {
    let Some(&max) = bits.iter().max() else {
        return tlv(tag::BIT_STRING, &[0]);
    };
    let nbytes = usize::from(max / 8) + 1;
    let mut bytes = vec![0u8; nbytes];
    for &b in bits {
        bytes[usize::from(b / 8)] |= 0x80 >> (b % 8);
    }
    let unused = 7 - (max % 8);
    let mut v = Vec::with_capacity(nbytes + 1);
    v.push(unused);
    v.extend_from_slice(&bytes);
    tlv(tag::BIT_STRING, &v)
}

/// `OCTET STRING`.
pub(crate) fn octet_string(bytes: &[u8]) -> Vec<u8> {
    tlv(tag::OCTET_STRING, bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn oid_round_trip_including_2_999() {
        for s in [
            "2.999.10",
            "2.23.146.1.2.1.4",
            "1.2.840.10045.3.1.7",
            "1.3.36.3.3.2.8.1.1.7",
            "0.9.2342.19200300.100.1.1",
            "2.999",
        ] {
            let enc = dotted_to_oid(s).unwrap();
            assert_eq!(oid_to_dotted(&enc).unwrap(), s);
        }
        assert_eq!(dotted_to_oid("2.999.10").unwrap(), vec![0x88, 0x37, 0x0A]);
        assert!(dotted_to_oid("1.40").is_err());
        assert!(dotted_to_oid("3.1").is_err());
        assert!(dotted_to_oid("1..2").is_err());
        assert!(oid_to_dotted(&[0x2A, 0x86]).is_err());
        assert!(oid_to_dotted(&[0x80, 0x01]).is_err());
    }

    #[test]
    fn rejects_non_minimal_lengths() {
        assert!(read_tlv(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).is_err());
        assert!(read_tlv(&[0x04, 0x80]).is_err());
        assert!(read_tlv(&[0x04, 0x03, 1, 2]).is_err());
        let long = tlv(0x04, &[7u8; 300]);
        let (t, rest) = read_tlv(&long).unwrap();
        assert_eq!(t.value.len(), 300);
        assert!(rest.is_empty());
    }

    #[test]
    fn named_bits_are_minimal() {
        // digitalSignature only: 03 02 07 80
        assert_eq!(named_bits(&[0]), vec![0x03, 0x02, 0x07, 0x80]);
        // keyCertSign + cRLSign: 03 02 01 06
        assert_eq!(named_bits(&[5, 6]), vec![0x03, 0x02, 0x01, 0x06]);
        assert_eq!(uint(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(uint(&[0, 0, 5]), vec![0x02, 0x01, 0x05]);
    }
}
