//! Key derivation: the ANSI X9.63 KDF with SHA-256 (BSI TR-03111 section 4.3.3) and the
//! SGP.22 Annex G derivation of the SCP03t session keys.

use crate::error::CryptoError;
use crate::keys::SharedSecret;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// GlobalPlatform key type for AES (GPCS Table 11-16), the only one SGP.22 uses.
pub const KEY_TYPE_AES: u8 = 0x88;
/// Session key length in bytes (SGP.22 section 5.5.1: "SHALL be 0x10").
pub const KEY_LEN_AES128: u8 = 0x10;

/// ANSI X9.63 KDF with SHA-256: `out = H(Z || 00000001 || info) || H(Z || 00000002 || info) ...`,
/// truncated to `out.len()`. Fails only if more than `2^32 - 1` blocks are asked for.
pub fn x963_sha256(z: &[u8], shared_info: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let counter =
            u32::try_from(i + 1).map_err(|_| CryptoError::Length("X9.63 output too long"))?;
        let mut h = Sha256::new();
        h.update(z);
        h.update(counter.to_be_bytes());
        h.update(shared_info);
        let block = Zeroizing::new(<[u8; 32]>::from(h.finalize()));
        chunk.copy_from_slice(block.get(..chunk.len()).unwrap_or_default());
    }
    Ok(())
}

/// The SCP03t key set of one session: S-ENC, S-MAC and the initial MAC chaining value.
/// Also used for the Profile Protection Keys (PPK-ENC, PPK-MAC, initialMacChainingValue).
/// Zeroized on drop; `Debug` shows no key bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SessionKeys {
    /// S-ENC (or PPK-ENC), AES-128.
    pub s_enc: [u8; 16],
    /// S-MAC (or PPK-MAC), AES-128 CMAC key.
    pub s_mac: [u8; 16],
    /// The MAC chaining value for the first segment.
    pub initial_mcv: [u8; 16],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

impl SessionKeys {
    /// A fresh random key set (for Profile Protection Keys, SGP.22 section 2.5.3).
    pub fn random() -> Result<SessionKeys, CryptoError> {
        let mut k = SessionKeys {
            s_enc: [0; 16],
            s_mac: [0; 16],
            initial_mcv: [0; 16],
        };
        for part in [&mut k.s_enc, &mut k.s_mac, &mut k.initial_mcv] {
            aws_lc_rs::rand::fill(part).map_err(|_| CryptoError::Backend("random generator"))?;
        }
        Ok(k)
    }
}

/// The SGP.22 Annex G derivation.
///
/// `SharedInfo = keyType || keyLength || L(hostId) || hostId || L(EID) || EID`, where the
/// lengths are single bytes (the "LV" form of Annex G; hostId is at most 16 bytes, the EID 16).
/// KeyData is 3 x keyLength bytes of X9.63/SHA-256 output, assigned (Annex G, Table 65) as
/// bytes 1..L = initial MAC chaining value, L+1..2L = S-ENC, 2L+1..3L = S-MAC.
pub fn derive_session_keys(
    shared_secret: &SharedSecret,
    key_type: u8,
    key_length: u8,
    host_id: &[u8],
    eid: &[u8],
) -> Result<SessionKeys, CryptoError> {
    if key_type != KEY_TYPE_AES || key_length != KEY_LEN_AES128 {
        return Err(CryptoError::Length(
            "only AES-128 session keys (88/10) are supported",
        ));
    }
    if host_id.is_empty() || host_id.len() > 16 {
        return Err(CryptoError::Length("hostId must be 1..16 bytes"));
    }
    if eid.is_empty() || eid.len() > 16 {
        return Err(CryptoError::Length("EID must be 1..16 bytes"));
    }
    let mut info = Vec::with_capacity(4 + host_id.len() + eid.len());
    info.push(key_type);
    info.push(key_length);
    // Both lengths are at most 16 (checked above), so they fit a single length byte.
    info.push(host_id.len() as u8);
    info.extend_from_slice(host_id);
    info.push(eid.len() as u8);
    info.extend_from_slice(eid);
    let mut key_data = Zeroizing::new([0u8; 48]);
    x963_sha256(shared_secret.as_bytes(), &info, key_data.as_mut_slice())?;
    let mut keys = SessionKeys {
        s_enc: [0; 16],
        s_mac: [0; 16],
        initial_mcv: [0; 16],
    };
    keys.initial_mcv.copy_from_slice(&key_data[..16]);
    keys.s_enc.copy_from_slice(&key_data[16..32]);
    keys.s_mac.copy_from_slice(&key_data[32..48]);
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x963_output_is_prefix_consistent() {
        let mut a = [0u8; 48];
        let mut b = [0u8; 20];
        x963_sha256(b"zz", b"info", &mut a).expect("kdf");
        x963_sha256(b"zz", b"info", &mut b).expect("kdf");
        assert_eq!(a[..20], b);
    }

    #[test]
    fn rejects_unsupported_crt_values() {
        let s = SharedSecret::from_bytes([1; 32]);
        assert!(derive_session_keys(&s, 0x88, 0x20, &[1], &[0x89; 16]).is_err());
        assert!(derive_session_keys(&s, 0x80, 0x10, &[1], &[0x89; 16]).is_err());
        assert!(derive_session_keys(&s, 0x88, 0x10, &[], &[0x89; 16]).is_err());
        assert!(derive_session_keys(&s, 0x88, 0x10, &[1; 17], &[0x89; 16]).is_err());
    }

    #[test]
    fn debug_hides_keys() {
        let k = SessionKeys {
            s_enc: [0xAB; 16],
            s_mac: [0xAB; 16],
            initial_mcv: [0xAB; 16],
        };
        assert!(!format!("{k:?}").to_lowercase().contains("ab"));
    }
}
