//! SCP03t segment protection as SGP.22 uses it (sections 2.5.3, 2.5.4, 2.6.4, 5.5; the
//! mechanism is SGP.02 section 4.1.3.3).
//!
//! For each segment with tag `T` (`86`, `87` or `88`) and payload `P`:
//! - encrypted segments (`86`, `87`): `P = AES-128-CBC(S-ENC, ICV, data || 80 00..)`, padding
//!   always added (ISO/IEC 9797-1 method 2), `ICV = AES-128(S-ENC, counter)` with the
//!   block counter as a 16-byte big-endian integer starting at 1;
//! - MAC-only segments (`88`, StoreMetadata): `P = data`;
//! - `MAC = AES-CMAC(S-MAC, MCV || T || L || P)` where `L` is the DER length of `P || MAC`;
//!   the full 16-byte CMAC becomes the next MCV and its first 8 bytes are appended.
//!
//! The counter is incremented for every segment, MAC-only ones included (section 2.5.4:
//! "incremented each time a TLV with tag '86', '87' or '88' is received"). A segment never
//! exceeds 1020 bytes including tag, length and MAC (section 2.5.3), so an encrypted segment
//! carries at most 1007 bytes of data and a MAC-only one at most 1008.

use crate::error::CryptoError;
use crate::kdf::SessionKeys;
use aws_lc_rs::cipher::{
    AES_128, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use aws_lc_rs::cmac;
use rsp_asn1::tlv::{Tag, parse_single, write_len};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Largest segment, tag + length + payload + MAC (SGP.22 section 2.5.3).
pub const MAX_SEGMENT_LEN: usize = 1020;
/// Largest payload of one segment: 1020 - 1 (tag) - 3 (length) - 8 (MAC).
pub const MAX_PAYLOAD_LEN: usize = 1008;
/// Largest plaintext of one encrypted segment: 1008 bytes of ciphertext minus the mandatory
/// padding byte (the NOTE in section 2.5.3).
pub const MAX_ENCRYPTED_PLAINTEXT: usize = 1007;
/// Largest data of one MAC-only segment.
pub const MAX_MAC_ONLY_DATA: usize = MAX_PAYLOAD_LEN;
/// Length of the truncated MAC.
pub const MAC_LEN: usize = 8;

/// Tag of Profile Package segments.
pub const TAG_86: u8 = 0x86;
/// Tag of encrypted ES8+ command segments (ConfigureISDP, ReplaceSessionKeys).
pub const TAG_87: u8 = 0x87;
/// Tag of MAC-only segments (StoreMetadata).
pub const TAG_88: u8 = 0x88;

/// One SCP03t key set with its running state (block counter and MAC chaining value).
pub struct Scp03tSession {
    enc_key: Zeroizing<[u8; 16]>,
    mac_key: cmac::Key,
    mcv: Zeroizing<[u8; 16]>,
    counter: u128,
}

impl std::fmt::Debug for Scp03tSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scp03tSession")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

/// Whether a segment tag means an encrypted payload.
fn is_encrypted(tag: u8) -> Result<bool, CryptoError> {
    match tag {
        TAG_86 | TAG_87 => Ok(true),
        TAG_88 => Ok(false),
        _ => Err(CryptoError::Scp03tStructure(
            "segment tag is not 86, 87 or 88",
        )),
    }
}

impl Scp03tSession {
    /// Start a session: counter 1, MCV = the key set's initial MAC chaining value.
    pub fn new(keys: &SessionKeys) -> Result<Scp03tSession, CryptoError> {
        let mac_key = cmac::Key::new(cmac::AES_128, &keys.s_mac)
            .map_err(|_| CryptoError::Backend("CMAC key"))?;
        Ok(Scp03tSession {
            enc_key: Zeroizing::new(keys.s_enc),
            mac_key,
            mcv: Zeroizing::new(keys.initial_mcv),
            counter: 1,
        })
    }

    /// The block counter the next segment will use.
    pub fn counter(&self) -> u128 {
        self.counter
    }

    /// Protect `data` according to the tag: encrypt and MAC for `86`/`87`, MAC only for `88`.
    pub fn protect(&mut self, tag: u8, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if is_encrypted(tag)? {
            self.protect_encrypt_mac(tag, data)
        } else {
            self.protect_mac_only(tag, data)
        }
    }

    /// Encrypt and MAC one segment (at most [`MAX_ENCRYPTED_PLAINTEXT`] bytes of `plain`).
    pub fn protect_encrypt_mac(&mut self, tag: u8, plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if plain.len() > MAX_ENCRYPTED_PLAINTEXT {
            return Err(CryptoError::Length(
                "plaintext exceeds 1007 bytes for one segment",
            ));
        }
        let padded_len = (plain.len() / 16 + 1) * 16;
        let mut buf = Zeroizing::new(Vec::with_capacity(padded_len));
        buf.extend_from_slice(plain);
        buf.push(0x80);
        buf.resize(padded_len, 0);
        let iv = self.icv()?;
        let key = UnboundCipherKey::new(&AES_128, self.enc_key.as_slice())
            .map_err(|_| CryptoError::Backend("AES key"))?;
        EncryptingKey::cbc(key)
            .and_then(|k| {
                k.less_safe_encrypt(buf.as_mut_slice(), EncryptionContext::Iv128(iv.into()))
            })
            .map_err(|_| CryptoError::Backend("AES-CBC encryption"))?;
        self.finish_segment(tag, &buf)
    }

    /// MAC one segment without encryption (at most [`MAX_MAC_ONLY_DATA`] bytes).
    pub fn protect_mac_only(&mut self, tag: u8, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if data.len() > MAX_MAC_ONLY_DATA {
            return Err(CryptoError::Length(
                "data exceeds 1008 bytes for one segment",
            ));
        }
        self.finish_segment(tag, data)
    }

    /// Protect data of any length as a run of segments, each at most 1020 bytes. Encrypted
    /// tags cut the data in 1007-byte chunks, MAC-only tags in 1008-byte chunks.
    pub fn protect_all(&mut self, tag: u8, data: &[u8]) -> Result<Vec<Vec<u8>>, CryptoError> {
        let chunk = if is_encrypted(tag)? {
            MAX_ENCRYPTED_PLAINTEXT
        } else {
            MAX_MAC_ONLY_DATA
        };
        if data.is_empty() {
            return Ok(vec![self.protect(tag, data)?]);
        }
        data.chunks(chunk).map(|c| self.protect(tag, c)).collect()
    }

    fn finish_segment(&mut self, tag: u8, payload: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::with_capacity(payload.len() + 12);
        out.push(tag);
        write_len(&mut out, payload.len() + MAC_LEN);
        out.extend_from_slice(payload);
        let full = self.cmac(&out)?;
        out.extend_from_slice(full.get(..MAC_LEN).unwrap_or_default());
        *self.mcv = full;
        self.counter = self.counter.wrapping_add(1);
        Ok(out)
    }

    /// CMAC over `MCV || header || payload`.
    fn cmac(&self, header_and_payload: &[u8]) -> Result<[u8; 16], CryptoError> {
        let mut ctx = cmac::Context::with_key(&self.mac_key);
        ctx.update(self.mcv.as_slice())
            .map_err(|_| CryptoError::Backend("CMAC"))?;
        ctx.update(header_and_payload)
            .map_err(|_| CryptoError::Backend("CMAC"))?;
        let tag = ctx.sign().map_err(|_| CryptoError::Backend("CMAC"))?;
        <[u8; 16]>::try_from(tag.as_ref()).map_err(|_| CryptoError::Backend("CMAC length"))
    }

    /// `ICV = AES-128-ECB(S-ENC, counter)`.
    fn icv(&self) -> Result<[u8; 16], CryptoError> {
        let mut block = self.counter.to_be_bytes();
        let key = UnboundCipherKey::new(&AES_128, self.enc_key.as_slice())
            .map_err(|_| CryptoError::Backend("AES key"))?;
        EncryptingKey::ecb(key)
            .and_then(|k| k.less_safe_encrypt(&mut block, EncryptionContext::None))
            .map_err(|_| CryptoError::Backend("AES-ECB"))?;
        Ok(block)
    }

    /// Verify (and for `86`/`87` decrypt) one segment, returning its data. The MAC is
    /// compared in constant time. On any error the session state is left unchanged.
    ///
    /// Errors: [`CryptoError::Scp03tStructure`] for a segment that is not one well-formed
    /// `86`/`87`/`88` TLV or whose ciphertext is not a whole number of blocks;
    /// [`CryptoError::Scp03tSecurity`] for a MAC mismatch or bad padding.
    pub fn unprotect(&mut self, segment: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let tlv = parse_single(segment)
            .map_err(|_| CryptoError::Scp03tStructure("segment is not one TLV"))?;
        let tag =
            u8::try_from(tlv.tag.0).map_err(|_| CryptoError::Scp03tStructure("segment tag"))?;
        if tlv.tag != Tag(u32::from(tag)) {
            return Err(CryptoError::Scp03tStructure("segment tag"));
        }
        let encrypted = is_encrypted(tag)?;
        let body_len = tlv
            .value
            .len()
            .checked_sub(MAC_LEN)
            .ok_or(CryptoError::Scp03tStructure("segment shorter than its MAC"))?;
        let header_len = segment.len() - tlv.value.len();
        let (authenticated, mac) = segment.split_at(header_len + body_len);
        let payload = authenticated.get(header_len..).unwrap_or_default();
        if encrypted && (payload.is_empty() || payload.len() % 16 != 0) {
            return Err(CryptoError::Scp03tStructure(
                "ciphertext is not whole AES blocks",
            ));
        }
        let full = self.cmac(authenticated)?;
        let expected = full.get(..MAC_LEN).unwrap_or_default();
        if !bool::from(expected.ct_eq(mac)) {
            return Err(CryptoError::Scp03tSecurity("MAC verification failed"));
        }
        let data = if encrypted {
            let iv = self.icv()?;
            let mut buf = Zeroizing::new(payload.to_vec());
            let key = UnboundCipherKey::new(&AES_128, self.enc_key.as_slice())
                .map_err(|_| CryptoError::Backend("AES key"))?;
            DecryptingKey::cbc(key)
                .and_then(|k| {
                    k.decrypt(buf.as_mut_slice(), DecryptionContext::Iv128(iv.into()))
                        .map(|_| ())
                })
                .map_err(|_| CryptoError::Backend("AES-CBC decryption"))?;
            let mut plain = unpad(&buf)?.to_vec();
            plain.shrink_to_fit();
            plain
        } else {
            payload.to_vec()
        };
        *self.mcv = full;
        self.counter = self.counter.wrapping_add(1);
        Ok(data)
    }
}

impl Drop for Scp03tSession {
    fn drop(&mut self) {
        self.counter.zeroize();
    }
}

/// Remove `80 00..` padding: it must lie within the last block. A bad pad after a valid MAC
/// is reported as a security error (the eUICC cannot tell it from a tampered key set).
fn unpad(buf: &[u8]) -> Result<&[u8], CryptoError> {
    let zeros = buf.iter().rev().take_while(|&&b| b == 0).count();
    let end = buf.len() - zeros;
    if zeros >= 16 || end == 0 || buf.get(end - 1) != Some(&0x80) {
        return Err(CryptoError::Scp03tSecurity("bad padding"));
    }
    Ok(buf.get(..end - 1).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SessionKeys {
        SessionKeys {
            s_enc: [1; 16],
            s_mac: [2; 16],
            initial_mcv: [3; 16],
        }
    }

    #[test]
    fn round_trip_all_sizes() {
        for len in [0usize, 1, 15, 16, 17, 1006, 1007] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut tx = Scp03tSession::new(&keys()).expect("tx");
            let mut rx = Scp03tSession::new(&keys()).expect("rx");
            for tag in [TAG_87, TAG_88, TAG_86] {
                let seg = tx.protect(tag, &data).expect("protect");
                assert!(seg.len() <= MAX_SEGMENT_LEN, "{len} -> {}", seg.len());
                assert_eq!(rx.unprotect(&seg).expect("unprotect"), data);
            }
        }
    }

    #[test]
    fn full_segments_are_exactly_1020_bytes() {
        let mut tx = Scp03tSession::new(&keys()).expect("tx");
        assert_eq!(tx.protect(TAG_86, &[0x55; 1007]).expect("p").len(), 1020);
        assert_eq!(tx.protect(TAG_88, &[0x55; 1008]).expect("p").len(), 1020);
        assert!(tx.protect(TAG_86, &[0x55; 1008]).is_err());
        assert!(tx.protect(TAG_88, &[0x55; 1009]).is_err());
    }

    #[test]
    fn rejects_tampered_mac_without_state_change() {
        let mut tx = Scp03tSession::new(&keys()).expect("tx");
        let mut rx = Scp03tSession::new(&keys()).expect("rx");
        let seg = tx.protect(TAG_87, b"hello").expect("p");
        let mut bad = seg.clone();
        if let Some(b) = bad.last_mut() {
            *b ^= 1;
        }
        assert!(matches!(
            rx.unprotect(&bad),
            Err(CryptoError::Scp03tSecurity(_))
        ));
        assert_eq!(rx.counter(), 1);
        assert_eq!(rx.unprotect(&seg).expect("good"), b"hello");
    }

    #[test]
    fn rejects_malformed_segments() {
        let mut rx = Scp03tSession::new(&keys()).expect("rx");
        assert!(matches!(
            rx.unprotect(&[0x87, 0x04, 1, 2, 3, 4]),
            Err(CryptoError::Scp03tStructure(_))
        ));
        assert!(matches!(
            rx.unprotect(&[0x85, 0x08, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(CryptoError::Scp03tStructure(_))
        ));
        assert!(matches!(
            rx.unprotect(&[0x87, 0x09, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(CryptoError::Scp03tStructure(_))
        ));
        // encrypted payload of 1 byte (not a block multiple)
        assert!(matches!(
            rx.unprotect(&[0x87, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(CryptoError::Scp03tStructure(_))
        ));
    }
}
