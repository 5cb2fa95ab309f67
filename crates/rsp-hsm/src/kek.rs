//! [`HsmKek`]: the vault's key-encryption key as an AES-256 key on the token.
//!
//! A DEK is wrapped as `nonce (12) || AES-256-GCM(KEK, DEK) (32) || tag (16)`, computed by
//! the token (`CKM_AES_GCM`), with the additional data
//! `"smdpp-vault/dek/pkcs11/v1" || dek_id (4 bytes BE) || kek_id`. The nonce comes from the
//! token's generator. The KEK itself is never read: it is created with
//! `CKA_SENSITIVE=true, CKA_EXTRACTABLE=false` ([`crate::admin::generate_aes`]).

use std::sync::Arc;

use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use smdpp_vault::{Dek, Kek, VaultError};
use zeroize::{Zeroize, Zeroizing};

use crate::error::HsmError;
use crate::token::Token;

const WRAP_LABEL: &[u8] = b"smdpp-vault/dek/pkcs11/v1";
const NONCE_LEN: usize = 12;
const DEK_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// An AES key on a PKCS#11 token wrapping the vault's DEKs.
///
/// Its [`Kek::id`] is `pkcs11:<label>` followed by `:<CKA_ID in hex>` when the object has
/// an id (keys made by [`crate::admin::generate_aes`] get a random one), so a key
/// regenerated under the same label is told apart from the old one.
pub struct HsmKek {
    token: Arc<Token>,
    handle: ObjectHandle,
    id: String,
}

impl std::fmt::Debug for HsmKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmKek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl HsmKek {
    /// The AES key labelled `label` on `token`.
    pub fn open(token: Arc<Token>, label: &str) -> Result<HsmKek, HsmError> {
        let handle = token.find_one(ObjectClass::SECRET_KEY, "AES key", label)?;
        let attrs = token.attributes(handle, &[AttributeType::Id])?;
        let cka_id = attrs.iter().find_map(|a| match a {
            Attribute::Id(v) if !v.is_empty() => Some(hex::encode(v)),
            _ => None,
        });
        let id = match cka_id {
            Some(h) => format!("pkcs11:{label}:{h}"),
            None => format!("pkcs11:{label}"),
        };
        Ok(HsmKek { token, handle, id })
    }

    fn aad(&self, dek_id: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(WRAP_LABEL.len() + 4 + self.id.len());
        aad.extend_from_slice(WRAP_LABEL);
        aad.extend_from_slice(&dek_id.to_be_bytes());
        aad.extend_from_slice(self.id.as_bytes());
        aad
    }

    fn failed(&self, op: &'static str, e: cryptoki::error::Error) -> VaultError {
        tracing::error!(kek = %self.id, error = %HsmError::Call { op, source: e }, "HSM KEK operation failed");
        VaultError::Crypto("HSM key-encryption key operation failed")
    }
}

impl Kek for HsmKek {
    fn id(&self) -> &str {
        &self.id
    }

    fn wrap(&self, dek_id: u32, dek: &Dek) -> Result<Vec<u8>, VaultError> {
        let session = self.token.session();
        let mut nonce = [0u8; NONCE_LEN];
        session
            .generate_random_slice(&mut nonce)
            .map_err(|e| self.failed("C_GenerateRandom", e))?;
        let aad = self.aad(dek_id);
        let mut iv = nonce;
        let params = GcmParams::new(&mut iv, &aad, 128.into())
            .map_err(|_| VaultError::Crypto("GCM parameters"))?;
        let sealed = session
            .encrypt(&Mechanism::AesGcm(params), self.handle, dek.expose())
            .map_err(|e| self.failed("C_Encrypt", e))?;
        if sealed.len() != DEK_LEN + TAG_LEN {
            return Err(VaultError::Crypto("HSM AES-GCM output length"));
        }
        let mut out = Vec::with_capacity(NONCE_LEN + DEK_LEN + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn unwrap(&self, dek_id: u32, wrapped: &[u8]) -> Result<Dek, VaultError> {
        let fail = || VaultError::Unwrap {
            dek_id,
            kek: self.id.clone(),
        };
        if wrapped.len() != NONCE_LEN + DEK_LEN + TAG_LEN {
            return Err(fail());
        }
        let (nonce, body) = wrapped.split_at(NONCE_LEN);
        let mut iv = [0u8; NONCE_LEN];
        iv.copy_from_slice(nonce);
        let aad = self.aad(dek_id);
        let params = GcmParams::new(&mut iv, &aad, 128.into())
            .map_err(|_| VaultError::Crypto("GCM parameters"))?;
        let mut plain = Zeroizing::new(
            self.token
                .session()
                .decrypt(&Mechanism::AesGcm(params), self.handle, body)
                // A wrong tag (wrong key, tampered record) is the expected failure here.
                .map_err(|_| fail())?,
        );
        let key = <[u8; DEK_LEN]>::try_from(plain.as_slice()).map_err(|_| fail());
        plain.zeroize();
        Ok(Dek::from_bytes(key?))
    }
}
