//! Primitive ASN.1 values in DER: INTEGER, BOOLEAN, OCTET STRING, UTF8String, NULL,
//! OBJECT IDENTIFIER, BIT STRING and ENUMERATED, each with a strict decoder and an encoder.
//!
//! The decoders take a [`Tlv`] whose tag the caller has already matched (types use IMPLICIT
//! tags heavily, so the tag is not checked here) and validate only the contents octets.

use crate::error::DecodeError;
use crate::tlv::{Tag, Tlv, write_tlv};

/// Decode a non-negative INTEGER (or ENUMERATED) that fits in a u64, in minimal DER form.
pub fn decode_uint(t: &Tlv<'_>, field: &'static str) -> Result<u64, DecodeError> {
    let v = t.value;
    check_integer_form(v, field)?;
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(DecodeError::invalid(field, "negative value"));
    }
    let digits = if v.first() == Some(&0) {
        v.get(1..).unwrap_or(&[])
    } else {
        v
    };
    if digits.len() > 8 {
        return Err(DecodeError::invalid(field, "integer out of range"));
    }
    Ok(digits
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Decode a signed INTEGER that fits in an i64, in minimal DER form.
pub fn decode_int(t: &Tlv<'_>, field: &'static str) -> Result<i64, DecodeError> {
    let v = t.value;
    check_integer_form(v, field)?;
    if v.len() > 8 {
        return Err(DecodeError::invalid(field, "integer out of range"));
    }
    let neg = v.first().is_some_and(|b| b & 0x80 != 0);
    let init: i64 = if neg { -1 } else { 0 };
    Ok(v.iter().fold(init, |acc, &b| (acc << 8) | i64::from(b)))
}

fn check_integer_form(v: &[u8], field: &'static str) -> Result<(), DecodeError> {
    match v {
        [] => Err(DecodeError::invalid(field, "empty integer")),
        [0x00, b, ..] if b & 0x80 == 0 => Err(DecodeError::invalid(field, "non-minimal integer")),
        [0xFF, b, ..] if b & 0x80 != 0 => Err(DecodeError::invalid(field, "non-minimal integer")),
        _ => Ok(()),
    }
}

/// The minimal two's-complement contents octets of a signed integer.
pub fn int_bytes(value: i64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (cur, next) = (bytes[start], bytes[start + 1]);
        if (cur == 0x00 && next & 0x80 == 0) || (cur == 0xFF && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

/// Append an INTEGER (or ENUMERATED, or an IMPLICIT-tagged integer) with the given tag.
pub fn write_int(out: &mut Vec<u8>, tag: Tag, value: i64) {
    write_tlv(out, tag, &int_bytes(value));
}

/// Decode a DER BOOLEAN (0x00 or 0xFF only).
pub fn decode_bool(t: &Tlv<'_>, field: &'static str) -> Result<bool, DecodeError> {
    match t.value {
        [0x00] => Ok(false),
        [0xFF] => Ok(true),
        [_] => Err(DecodeError::invalid(
            field,
            "BOOLEAN must be 00 or FF in DER",
        )),
        _ => Err(DecodeError::invalid(field, "BOOLEAN must be one octet")),
    }
}

/// Append a BOOLEAN.
pub fn write_bool(out: &mut Vec<u8>, tag: Tag, value: bool) {
    write_tlv(out, tag, &[if value { 0xFF } else { 0x00 }]);
}

/// Decode NULL (empty contents).
pub fn decode_null(t: &Tlv<'_>, field: &'static str) -> Result<(), DecodeError> {
    if t.value.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::invalid(field, "NULL must be empty"))
    }
}

/// An OCTET STRING whose size must lie in `min..=max`.
pub fn decode_octets<'a>(
    t: &Tlv<'a>,
    field: &'static str,
    min: usize,
    max: usize,
) -> Result<&'a [u8], DecodeError> {
    if t.tag.is_constructed() {
        return Err(DecodeError::invalid(field, "constructed string is not DER"));
    }
    if t.value.len() < min || t.value.len() > max {
        return Err(DecodeError::invalid(field, "size out of range"));
    }
    Ok(t.value)
}

/// An OCTET STRING of exactly `N` octets.
pub fn decode_fixed<const N: usize>(
    t: &Tlv<'_>,
    field: &'static str,
) -> Result<[u8; N], DecodeError> {
    let v = decode_octets(t, field, N, N)?;
    let mut out = [0u8; N];
    out.copy_from_slice(v);
    Ok(out)
}

/// A UTF8String whose size in octets lies in `min..=max`.
pub fn decode_utf8(
    t: &Tlv<'_>,
    field: &'static str,
    min: usize,
    max: usize,
) -> Result<String, DecodeError> {
    let v = decode_octets(t, field, min, max)?;
    std::str::from_utf8(v)
        .map(str::to_owned)
        .map_err(|_| DecodeError::invalid(field, "not valid UTF-8"))
}

/// An OBJECT IDENTIFIER value, kept as its contents octets (which compare exactly).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Oid(pub Vec<u8>);

impl Oid {
    /// Decode from a tag-matched element, validating the arc encoding.
    pub fn decode(t: &Tlv<'_>, field: &'static str) -> Result<Oid, DecodeError> {
        let v = t.value;
        if v.is_empty() {
            return Err(DecodeError::invalid(field, "empty OBJECT IDENTIFIER"));
        }
        if v.last().is_some_and(|b| b & 0x80 != 0) {
            return Err(DecodeError::invalid(field, "unterminated arc"));
        }
        let mut at_start = true;
        for &b in v {
            if at_start && b == 0x80 {
                return Err(DecodeError::invalid(field, "non-minimal arc"));
            }
            at_start = b & 0x80 == 0;
        }
        Ok(Oid(v.to_vec()))
    }

    /// Parse dotted-decimal text ("2.23.146.1.2.1.0").
    pub fn from_dotted(s: &str) -> Option<Oid> {
        let arcs: Vec<u64> = s
            .split('.')
            .map(|a| a.parse().ok())
            .collect::<Option<_>>()?;
        let (&a0, rest) = arcs.split_first()?;
        let (&a1, rest) = rest.split_first()?;
        if a0 > 2 || (a0 < 2 && a1 >= 40) {
            return None;
        }
        let mut out = Vec::new();
        push_arc(&mut out, a0.checked_mul(40)?.checked_add(a1)?);
        for &a in rest {
            push_arc(&mut out, a);
        }
        Some(Oid(out))
    }

    /// Dotted-decimal text.
    pub fn to_dotted(&self) -> String {
        let mut arcs = Vec::new();
        let mut acc: u64 = 0;
        for &b in &self.0 {
            acc = (acc << 7) | u64::from(b & 0x7F);
            if b & 0x80 == 0 {
                arcs.push(acc);
                acc = 0;
            }
        }
        let mut s = String::new();
        if let Some((&first, rest)) = arcs.split_first() {
            let (a0, a1) = if first < 40 {
                (0, first)
            } else if first < 80 {
                (1, first - 40)
            } else {
                (2, first - 80)
            };
            s = format!("{a0}.{a1}");
            for a in rest {
                s.push('.');
                s.push_str(&a.to_string());
            }
        }
        s
    }

    /// Append with the given tag (usually [`Tag::OID`]).
    pub fn write(&self, out: &mut Vec<u8>, tag: Tag) {
        write_tlv(out, tag, &self.0);
    }
}

impl std::fmt::Debug for Oid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Oid({})", self.to_dotted())
    }
}

fn push_arc(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 10];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = (v & 0x7F) as u8 | if i == tmp.len() - 1 { 0 } else { 0x80 };
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// A BIT STRING as (unused-bit count, octets), DER-checked: unused bits are zero and an
/// empty string has no unused bits.
pub fn decode_bit_string<'a>(
    t: &Tlv<'a>,
    field: &'static str,
) -> Result<(u8, &'a [u8]), DecodeError> {
    let (&unused, bits) = t
        .value
        .split_first()
        .ok_or(DecodeError::invalid(field, "empty BIT STRING"))?;
    if unused > 7 || (bits.is_empty() && unused != 0) {
        return Err(DecodeError::invalid(field, "bad unused-bit count"));
    }
    if let Some(&last) = bits.last()
        && last & ((1u8 << unused) - 1) != 0
    {
        return Err(DecodeError::invalid(field, "unused bits not zero"));
    }
    Ok((unused, bits))
}

/// Decode a named-bit BIT STRING into a list of set bit positions (bit 0 is the first bit).
/// DER requires trailing zero bits to be removed; that is checked.
pub fn decode_named_bits(t: &Tlv<'_>, field: &'static str) -> Result<Vec<u32>, DecodeError> {
    let (unused, bits) = decode_bit_string(t, field)?;
    if let Some(&last) = bits.last()
        && (last == 0 || (last >> unused) & 1 == 0)
    {
        return Err(DecodeError::invalid(
            field,
            "trailing zero bits in named BIT STRING",
        ));
    }
    let mut set = Vec::new();
    for (i, &b) in bits.iter().enumerate() {
        for j in 0..8u32 {
            if b & (0x80 >> j) != 0 {
                set.push(i as u32 * 8 + j);
            }
        }
    }
    Ok(set)
}

/// Append a named-bit BIT STRING in DER form (trailing zero bits removed) from set positions.
pub fn write_named_bits(out: &mut Vec<u8>, tag: Tag, set: &[u32]) {
    let Some(&max) = set.iter().max() else {
        write_tlv(out, tag, &[0]);
        return;
    };
    let nbytes = (max / 8 + 1) as usize;
    let mut bytes = vec![0u8; nbytes + 1];
    for &bit in set {
        if let Some(b) = bytes.get_mut(1 + (bit / 8) as usize) {
            *b |= 0x80 >> (bit % 8);
        }
    }
    bytes[0] = (7 - (max % 8)) as u8;
    write_tlv(out, tag, &bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlv::parse_single;

    fn el(bytes: &[u8]) -> Tlv<'_> {
        parse_single(bytes).expect("tlv")
    }

    #[test]
    fn integers_round_trip() {
        for v in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            -1,
            -128,
            -129,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            write_int(&mut out, Tag::INTEGER, v);
            assert_eq!(decode_int(&el(&out), "x"), Ok(v));
        }
        assert_eq!(decode_uint(&el(&[0x02, 0x02, 0x00, 0x80]), "x"), Ok(128));
    }

    #[test]
    fn rejects_non_minimal_integer() {
        assert!(decode_int(&el(&[0x02, 0x02, 0x00, 0x01]), "x").is_err());
        assert!(decode_int(&el(&[0x02, 0x02, 0xFF, 0x80]), "x").is_err());
        assert!(decode_int(&el(&[0x02, 0x00]), "x").is_err());
        assert!(decode_uint(&el(&[0x02, 0x01, 0x80]), "x").is_err());
    }

    #[test]
    fn rejects_non_der_boolean() {
        assert!(decode_bool(&el(&[0x01, 0x01, 0x01]), "b").is_err());
        assert_eq!(decode_bool(&el(&[0x01, 0x01, 0xFF]), "b"), Ok(true));
    }

    #[test]
    fn oids_round_trip() {
        for s in [
            "2.23.146.1.2.1.0",
            "1.2.840.10045.3.1.7",
            "2.999.10",
            "1.3.36.3.3.2.8.1.1.7",
        ] {
            let oid = Oid::from_dotted(s).expect("parse");
            assert_eq!(oid.to_dotted(), s);
            let mut out = Vec::new();
            oid.write(&mut out, Tag::OID);
            assert_eq!(Oid::decode(&el(&out), "o").expect("decode"), oid);
        }
        assert_eq!(
            Oid::from_dotted("1.2.840.10045.3.1.7").expect("p").0,
            [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
        );
    }

    #[test]
    fn rejects_bad_oid() {
        assert!(Oid::decode(&el(&[0x06, 0x00]), "o").is_err());
        assert!(Oid::decode(&el(&[0x06, 0x02, 0x2A, 0x86]), "o").is_err());
        assert!(Oid::decode(&el(&[0x06, 0x02, 0x80, 0x01]), "o").is_err());
    }

    #[test]
    fn named_bits_round_trip() {
        for set in [vec![], vec![0], vec![1, 3], vec![0, 8, 9], vec![15]] {
            let mut out = Vec::new();
            write_named_bits(&mut out, Tag::BIT_STRING, &set);
            assert_eq!(decode_named_bits(&el(&out), "bits"), Ok(set.clone()));
        }
    }

    #[test]
    fn rejects_named_bits_with_trailing_zeros() {
        assert!(decode_named_bits(&el(&[0x03, 0x02, 0x00, 0x80]), "bits").is_err());
        assert!(decode_bit_string(&el(&[0x03, 0x02, 0x01, 0x81]), "bits").is_err());
    }
}
