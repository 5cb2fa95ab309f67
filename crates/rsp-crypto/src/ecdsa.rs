//! ECDSA with SHA-256 on P-256 and brainpoolP256r1.
//!
//! SGP.22 protocol signatures (euiccSignature1/2, serverSignature1, smdpSignature2,
//! smdpSign) are carried as the BSI TR-03111 plain format: `r || s`, each 32 bytes
//! (SGP.22 section 2.6.5.1 / Annex "ECDSA"). Certificates use the X9.62 DER form
//! `SEQUENCE { r INTEGER, s INTEGER }`. This module verifies both and converts between
//! them.
//!
//! P-256 is handled by aws-lc-rs; brainpoolP256r1 by the pure-Rust `bp256` + `ecdsa` crates.

use crate::curve::Curve;
use crate::error::CryptoError;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey};
use rsp_asn1::tlv::{Reader, Tag, parse_single, write_tlv};

/// Length of a TR-03111 plain signature for a 256-bit curve.
pub const RAW_SIGNATURE_LEN: usize = 64;

/// Verify an ECDSA-SHA256 signature in TR-03111 `r || s` form (64 bytes).
///
/// `public_key` is a SEC1 point (uncompressed 65 bytes; the compressed form is accepted too).
/// Returns [`CryptoError::InvalidPublicKey`] for a key that is not on the curve,
/// [`CryptoError::MalformedSignature`] for a signature of the wrong length, and
/// [`CryptoError::BadSignature`] when the signature does not verify.
pub fn verify_raw(
    curve: Curve,
    public_key: &[u8],
    msg: &[u8],
    sig_rs: &[u8],
) -> Result<(), CryptoError> {
    if sig_rs.len() != RAW_SIGNATURE_LEN {
        return Err(CryptoError::MalformedSignature(
            "TR-03111 signature must be 64 bytes",
        ));
    }
    match curve {
        Curve::NistP256 => {
            let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key)
                .map_err(|_| CryptoError::InvalidPublicKey(curve))?;
            key.verify_sig(msg, sig_rs)
                .map_err(|_| CryptoError::BadSignature)
        }
        Curve::BrainpoolP256r1 => {
            use ecdsa::signature::Verifier;
            let key = ecdsa::VerifyingKey::<bp256::BrainpoolP256r1>::from_sec1_bytes(public_key)
                .map_err(|_| CryptoError::InvalidPublicKey(curve))?;
            // `from_slice` rejects r or s equal to zero or not below the group order.
            let sig = ecdsa::Signature::<bp256::BrainpoolP256r1>::from_slice(sig_rs)
                .map_err(|_| CryptoError::BadSignature)?;
            key.verify(msg, &sig).map_err(|_| CryptoError::BadSignature)
        }
    }
}

/// Verify an ECDSA-SHA256 signature in X9.62 DER form (as in certificates and CRLs).
pub fn verify_der(
    curve: Curve,
    public_key: &[u8],
    msg: &[u8],
    sig_der: &[u8],
) -> Result<(), CryptoError> {
    let raw = der_to_raw(sig_der)?;
    verify_raw(curve, public_key, msg, &raw)
}

/// Convert a TR-03111 `r || s` signature to X9.62 DER.
pub fn raw_to_der(sig_rs: &[u8; 64]) -> Vec<u8> {
    let (r, s) = sig_rs.split_at(32);
    let mut inner = Vec::with_capacity(70);
    write_tlv(&mut inner, Tag::INTEGER, &unsigned_integer_contents(r));
    write_tlv(&mut inner, Tag::INTEGER, &unsigned_integer_contents(s));
    let mut out = Vec::with_capacity(72);
    write_tlv(&mut out, Tag::SEQUENCE, &inner);
    out
}

/// Convert an X9.62 DER signature to TR-03111 `r || s`. Strict: DER minimal integers,
/// positive, non-zero, at most 32 significant bytes, nothing trailing.
pub fn der_to_raw(sig_der: &[u8]) -> Result<[u8; 64], CryptoError> {
    let bad = CryptoError::MalformedSignature;
    let seq = parse_single(sig_der).map_err(|_| bad("not a single DER element"))?;
    if seq.tag != Tag::SEQUENCE {
        return Err(bad("not a SEQUENCE"));
    }
    let mut r = seq.reader().map_err(|_| bad("not a SEQUENCE"))?;
    let mut out = [0u8; 64];
    for half in out.chunks_exact_mut(32) {
        let int = read_integer(&mut r)?;
        let start = 32usize
            .checked_sub(int.len())
            .ok_or(bad("integer longer than 32 bytes"))?;
        half.get_mut(start..)
            .ok_or(bad("integer length"))?
            .copy_from_slice(int);
    }
    r.finish().map_err(|_| bad("trailing data in signature"))?;
    Ok(out)
}

/// Read one INTEGER and return its magnitude without the sign octet.
fn read_integer<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], CryptoError> {
    let bad = CryptoError::MalformedSignature;
    let t = r
        .read_expect(Tag::INTEGER)
        .map_err(|_| bad("expected INTEGER"))?;
    match t.value {
        [] => Err(bad("empty INTEGER")),
        [b, ..] if b & 0x80 != 0 => Err(bad("negative INTEGER")),
        [0] => Err(bad("zero r or s")),
        [0, b, ..] if b & 0x80 == 0 => Err(bad("non-minimal INTEGER")),
        [0, rest @ ..] => Ok(rest),
        v => Ok(v),
    }
}

/// Minimal DER INTEGER contents for an unsigned big-endian magnitude.
fn unsigned_integer_contents(mag: &[u8]) -> Vec<u8> {
    let first = mag.iter().position(|&b| b != 0).unwrap_or(mag.len());
    let digits = mag.get(first..).unwrap_or(&[]);
    let mut v = Vec::with_capacity(digits.len() + 1);
    if digits.first().is_none_or(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(digits);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_raw_round_trip() {
        let mut raw = [0u8; 64];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        raw[0] = 0x80; // r needs a sign octet
        raw[32] = 0;
        raw[33] = 0; // s has leading zeros
        let der = raw_to_der(&raw);
        assert_eq!(der[0], 0x30);
        assert_eq!(&der[2..5], &[0x02, 0x21, 0x00]);
        assert_eq!(der_to_raw(&der), Ok(raw));
    }

    #[test]
    fn rejects_non_minimal_der_signature() {
        // r = 00 01 (non-minimal), s = 01
        let der = [0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01];
        assert!(der_to_raw(&der).is_err());
        // negative r
        let der = [0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01];
        assert!(der_to_raw(&der).is_err());
        // trailing element
        let der = [0x30, 0x09, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x05, 0x00];
        assert!(der_to_raw(&der[..]).is_err());
        // 33-byte magnitude
        let mut der = vec![0x30, 0x26, 0x02, 0x21];
        der.extend_from_slice(&[0x7F; 33]);
        der.extend_from_slice(&[0x02, 0x01, 0x01]);
        assert!(der_to_raw(&der).is_err());
    }

    #[test]
    fn rejects_wrong_raw_signature_length() {
        assert_eq!(
            verify_raw(Curve::NistP256, &[4; 65], b"m", &[1; 63]),
            Err(CryptoError::MalformedSignature(
                "TR-03111 signature must be 64 bytes"
            ))
        );
    }
}
