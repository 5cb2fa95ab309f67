//! [`HsmKey`]: an EC key pair on the token used through [`KeyCustody`].

use std::sync::Arc;

use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use rsp_crypto::keys::{PUBLIC_KEY_LEN, normalize_public_key};
use rsp_crypto::{CryptoError, Curve, KeyCustody, SharedSecret};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::error::HsmError;
use crate::token::Token;

/// An EC private key on a PKCS#11 token (P-256 or brainpoolP256r1), found by its
/// `CKA_LABEL`; the public point comes from the public-key object with the same label.
pub struct HsmKey {
    token: Arc<Token>,
    label: String,
    handle: ObjectHandle,
    curve: Curve,
    public: [u8; PUBLIC_KEY_LEN],
}

impl std::fmt::Debug for HsmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmKey")
            .field("token", &self.token.label())
            .field("label", &self.label)
            .field("curve", &self.curve)
            .finish_non_exhaustive()
    }
}

/// The curve named by a DER `CKA_EC_PARAMS` (a named-curve OID).
pub(crate) fn curve_of_params(params: &[u8]) -> Option<Curve> {
    match params {
        [0x06, len, oid @ ..] if usize::from(*len) == oid.len() => Curve::from_oid_bytes(oid),
        _ => None,
    }
}

/// `CKA_EC_PARAMS` for `curve`: the DER named-curve OID.
pub(crate) fn params_of_curve(curve: Curve) -> Vec<u8> {
    let oid = curve.oid_bytes();
    let mut out = Vec::with_capacity(oid.len() + 2);
    out.push(0x06);
    // Both OIDs are short (8 and 9 bytes).
    out.push(u8::try_from(oid.len()).unwrap_or(0));
    out.extend_from_slice(oid);
    out
}

/// The uncompressed point inside `CKA_EC_POINT` (a DER OCTET STRING; some modules give the
/// bare point).
pub(crate) fn point_of_attribute(value: &[u8]) -> Option<&[u8]> {
    match value {
        [0x04, 0x41, point @ ..] if point.len() == PUBLIC_KEY_LEN => Some(point),
        point if point.len() == PUBLIC_KEY_LEN && point.first() == Some(&0x04) => Some(point),
        _ => None,
    }
}

/// The public key of the EC pair labelled `label`: its curve and point.
pub(crate) fn public_of(
    token: &Token,
    label: &str,
) -> Result<(Curve, [u8; PUBLIC_KEY_LEN]), HsmError> {
    let bad = |reason| HsmError::BadKey {
        label: label.to_owned(),
        reason,
    };
    let public = token.find_one(ObjectClass::PUBLIC_KEY, "EC public key", label)?;
    let attrs = token.attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])?;
    let mut curve = None;
    let mut point = None;
    for a in &attrs {
        match a {
            Attribute::EcParams(p) => curve = curve_of_params(p),
            Attribute::EcPoint(p) => point = point_of_attribute(p).map(<[u8]>::to_vec),
            _ => {}
        }
    }
    let curve = curve.ok_or_else(|| bad("the curve is neither P-256 nor brainpoolP256r1"))?;
    let point = point.ok_or_else(|| bad("CKA_EC_POINT is not an uncompressed point"))?;
    let point = normalize_public_key(curve, &point).map_err(|_| bad("invalid public point"))?;
    Ok((curve, point))
}

impl HsmKey {
    /// The key pair labelled `label` on `token`: the private key (`CKO_PRIVATE_KEY`) and the
    /// public key (`CKO_PUBLIC_KEY`, for the point and the curve).
    ///
    /// A missing private key is [`HsmError::MissingObject`].
    pub fn open(token: Arc<Token>, label: &str) -> Result<HsmKey, HsmError> {
        let handle = token.find_one(ObjectClass::PRIVATE_KEY, "EC private key", label)?;
        let (curve, public) = public_of(&token, label)?;
        Ok(HsmKey {
            token,
            label: label.to_owned(),
            handle,
            curve,
            public,
        })
    }

    /// The object label.
    pub fn label(&self) -> &str {
        &self.label
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<[u8; 64], HsmError> {
        let sig = self
            .token
            .session()
            .sign(&Mechanism::Ecdsa, self.handle, digest)
            .map_err(HsmError::call("C_Sign"))?;
        self.token.count_signature();
        <[u8; 64]>::try_from(sig.as_slice()).map_err(|_| HsmError::BadKey {
            label: self.label.clone(),
            reason: "the token returned a signature that is not 64 bytes",
        })
    }

    fn derive(&self, peer: &[u8]) -> Result<SharedSecret, HsmError> {
        let session = self.token.session();
        let params = Ecdh1DeriveParams::new(EcKdf::null(), peer);
        // An ephemeral session object (CKA_TOKEN=false) the secret is read from, then
        // destroyed.
        let secret = session
            .derive_key(
                &Mechanism::Ecdh1Derive(params),
                self.handle,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::Token(false),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                    Attribute::ValueLen(32.into()),
                ],
            )
            .map_err(HsmError::call("C_DeriveKey"))?;
        self.token.count_derivation();
        let value = session.get_attributes(secret, &[AttributeType::Value]);
        let destroyed = session.destroy_object(secret);
        let mut attrs = value.map_err(HsmError::call("C_GetAttributeValue"))?;
        destroyed.map_err(HsmError::call("C_DestroyObject"))?;
        let mut out = None;
        for a in &mut attrs {
            if let Attribute::Value(v) = a {
                if let Ok(z) = <[u8; 32]>::try_from(v.as_slice()) {
                    out = Some(SharedSecret::from_bytes(z));
                }
                v.zeroize();
            }
        }
        out.ok_or(HsmError::BadKey {
            label: self.label.clone(),
            reason: "the derived secret is not 32 bytes",
        })
    }
}

impl KeyCustody for HsmKey {
    fn curve(&self) -> Curve {
        self.curve
    }

    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], CryptoError> {
        let digest = Sha256::digest(msg);
        self.sign_digest(&digest).map_err(|e| {
            tracing::error!(key = %self.label, error = %e, "HSM signature failed");
            CryptoError::Backend("HSM signature")
        })
    }

    fn ecdh(&self, peer_public: &[u8]) -> Result<SharedSecret, CryptoError> {
        // Checked here so that a bad point gets the same error as with a software key.
        let peer = normalize_public_key(self.curve, peer_public)?;
        self.derive(&peer).map_err(|e| {
            tracing::error!(key = %self.label, error = %e, "HSM key agreement failed");
            CryptoError::Backend("HSM key agreement")
        })
    }
}
