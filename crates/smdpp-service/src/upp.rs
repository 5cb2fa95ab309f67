//! Unprotected Profile Package helpers: the ICCID of a UPP, a minimal demo UPP, MatchingIDs.
//!
//! A UPP is a sequence of SIMalliance/TCA Profile Elements (PE_Definitions 3.3.1). The first
//! PE is the ProfileHeader, the `header [0]` alternative of the ProfileElement CHOICE
//! (tag `A0`), whose components are automatically tagged: `major-version [0]`,
//! `minor-version [1]`, `profileType [2] OPTIONAL`, `iccid [3] OCTET STRING (SIZE (10))`, ...
//! The TS.48 test profiles carry the ICCID there as plain BCD (`89 00 01 23 ...` for
//! `89000123456789012341`), while EF.ICCID inside the profile holds the nibble-swapped form.

use rsp_asn1::tlv::{Reader, Tag};

/// Why a UPP was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UppError {
    /// The first element is not a ProfileHeader (`A0`) or is not well-formed DER/BER TLV.
    #[error("the UPP does not start with a ProfileHeader PE: {0}")]
    NoHeader(String),
    /// The header has no 10-byte `iccid [3]`.
    #[error("the ProfileHeader has no 10-byte iccid")]
    NoIccid,
    /// The ICCID digits are not decimal.
    #[error("the ProfileHeader iccid is not BCD digits")]
    BadIccid,
}

/// Reads the ICCID (19 or 20 digits) from the ProfileHeader PE at the start of a UPP.
/// Tolerant: only the header's outer TLV and its components up to `iccid` are parsed; the
/// rest of the package is not looked at.
pub fn iccid_from_upp(upp: &[u8]) -> Result<String, UppError> {
    let mut r = Reader::new(upp);
    let header = r.read().map_err(|e| UppError::NoHeader(e.to_string()))?;
    if header.tag != Tag::context_constructed(0) {
        return Err(UppError::NoHeader(format!("first tag is {:?}", header.tag)));
    }
    let mut hr = header
        .reader()
        .map_err(|e| UppError::NoHeader(e.to_string()))?;
    while !hr.is_empty() {
        let t = hr.read().map_err(|e| UppError::NoHeader(e.to_string()))?;
        if t.tag == Tag::context(3) {
            if t.value.len() != 10 {
                return Err(UppError::NoIccid);
            }
            return bcd_digits(t.value);
        }
    }
    Err(UppError::NoIccid)
}

/// The `(major-version [0], minor-version [1])` of the ProfileHeader PE at the start of a
/// UPP; `None` when the header or either field is missing or not one byte.
pub fn version_from_upp(upp: &[u8]) -> Option<(u8, u8)> {
    let mut r = Reader::new(upp);
    let header = r.read().ok()?;
    if header.tag != Tag::context_constructed(0) {
        return None;
    }
    let mut hr = header.reader().ok()?;
    let (mut major, mut minor) = (None, None);
    while !hr.is_empty() && (major.is_none() || minor.is_none()) {
        let t = hr.read().ok()?;
        match (t.tag, t.value) {
            (tag, [v]) if tag == Tag::context(0) => major = Some(*v),
            (tag, [v]) if tag == Tag::context(1) => minor = Some(*v),
            _ => {}
        }
    }
    Some((major?, minor?))
}

fn bcd_digits(bytes: &[u8]) -> Result<String, UppError> {
    let mut s = String::with_capacity(20);
    for b in bytes {
        for n in [b >> 4, b & 0x0F] {
            match n {
                0..=9 => s.push(char::from(b'0' + n)),
                0x0F => {}
                _ => return Err(UppError::BadIccid),
            }
        }
    }
    if s.len() == 19 || s.len() == 20 {
        Ok(s)
    } else {
        Err(UppError::BadIccid)
    }
}

/// A minimal UPP: a ProfileHeader (version 2.3, profileType "smdpp demo", the ICCID, empty
/// mandatory-services and GFSTE lists) and an End PE. Enough for the download protocol; not
/// a functional SIM profile.
pub fn demo_upp(iccid: &str) -> Option<Vec<u8>> {
    if !(iccid.len() == 19 || iccid.len() == 20) || !iccid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nibbles: Vec<u8> = iccid.bytes().map(|b| b - b'0').collect();
    if nibbles.len() == 19 {
        nibbles.push(0x0F);
    }
    let bcd: Vec<u8> = nibbles.chunks(2).map(|p| (p[0] << 4) | p[1]).collect();
    let profile_type = b"smdpp demo";
    let mut h = vec![
        0x80,
        0x01,
        0x02,
        0x81,
        0x01,
        0x03,
        0x82,
        profile_type.len() as u8,
    ];
    h.extend_from_slice(profile_type);
    h.extend_from_slice(&[0x83, 0x0A]);
    h.extend_from_slice(&bcd);
    h.extend_from_slice(&[0xA5, 0x00, 0xA6, 0x00]);
    let mut out = vec![0xA0, h.len() as u8];
    out.extend_from_slice(&h);
    // PE-End [10]: end-header PEHeader { identification 1 }.
    out.extend_from_slice(&[0xAA, 0x05, 0xA0, 0x03, 0x81, 0x01, 0x01]);
    Some(out)
}

/// `n` random bytes from the system CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], crate::Failure> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).map_err(|_| crate::Failure::Internal("RNG failure".into()))?;
    Ok(out)
}

/// Alphabet of generated MatchingIDs (SGP.22 section 4.1.1: upper-case `0-9 A-Z`).
const MATCHING_ID_ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A fresh MatchingID: 25 characters of `0-9A-Z` (about 129 bits) in five groups of five
/// joined by `-`, e.g. `4F0ZK-...`.
pub fn generate_matching_id() -> Result<String, crate::Failure> {
    let mut out = String::with_capacity(29);
    let mut produced = 0;
    while produced < 25 {
        let buf = random_bytes::<32>()?;
        for b in buf {
            // Rejection sampling: 252 = 7 * 36, so values below it are uniform mod 36.
            if b < 252 && produced < 25 {
                if produced > 0 && produced % 5 == 0 {
                    out.push('-');
                }
                out.push(char::from(MATCHING_ID_ALPHABET[usize::from(b % 36)]));
                produced += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn demo_upp_round_trips_its_iccid() {
        let upp = demo_upp("8999900000000000017").unwrap();
        assert_eq!(iccid_from_upp(&upp).unwrap(), "8999900000000000017");
    }

    #[test]
    fn upp_versions() {
        let upp = demo_upp("8999900000000000017").unwrap();
        assert_eq!(version_from_upp(&upp), Some((2, 3)));
        assert_eq!(version_from_upp(&[0x30, 0x00]), None);
        let path = "/work/shared/profiles/ts48/TS48v5_SAIP2.3_NoBERTLV.der";
        if let Ok(upp) = std::fs::read(path) {
            assert_eq!(version_from_upp(&upp).map(|v| v.0), Some(2));
        }
    }

    #[test]
    fn ts48_iccid() {
        let path = "/work/shared/profiles/ts48/TS48v5_SAIP2.3_NoBERTLV.der";
        if let Ok(upp) = std::fs::read(path) {
            assert_eq!(iccid_from_upp(&upp).unwrap(), "89000123456789012341");
        }
    }

    #[test]
    fn matching_ids_are_well_formed() {
        let a = generate_matching_id().unwrap();
        let b = generate_matching_id().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 29);
        assert!(
            a.bytes()
                .all(|c| c == b'-' || c.is_ascii_digit() || c.is_ascii_uppercase())
        );
        smdpp_core::activation_code::validate_matching_id(&a).unwrap();
    }
}
