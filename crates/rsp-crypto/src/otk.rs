//! One-time (ephemeral) key pairs for ECKA (SGP.22 section 2.6.4: "ephemeral keys are renamed
//! to one-time keys"). An [`EphemeralKey`] is consumed by [`EphemeralKey::agree`], so each
//! private key is used for exactly one agreement and then dropped (and zeroized).

use crate::curve::Curve;
use crate::error::CryptoError;
use crate::keys::{KeyCustody, PUBLIC_KEY_LEN, SharedSecret, random_scalar};
use aws_lc_rs::agreement::{self, ECDH_P256, UnparsedPublicKey};
use bp256::BrainpoolP256r1;
use elliptic_curve::sec1::ToSec1Point;

/// A one-time EC key pair for one key agreement.
pub struct EphemeralKey {
    curve: Curve,
    public: [u8; PUBLIC_KEY_LEN],
    inner: Inner,
}

enum Inner {
    P256(agreement::PrivateKey),
    // `SecretKey` zeroizes its scalar on drop.
    Brainpool(elliptic_curve::SecretKey<BrainpoolP256r1>),
}

impl std::fmt::Debug for EphemeralKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EphemeralKey")
            .field("curve", &self.curve)
            .finish_non_exhaustive()
    }
}

impl EphemeralKey {
    /// Generate a fresh one-time key pair.
    pub fn generate(curve: Curve) -> Result<EphemeralKey, CryptoError> {
        let (public, inner) = match curve {
            Curve::NistP256 => {
                let k = agreement::PrivateKey::generate(&ECDH_P256)
                    .map_err(|_| CryptoError::Backend("P-256 key generation"))?;
                let pk = k
                    .compute_public_key()
                    .map_err(|_| CryptoError::Backend("P-256 public key"))?;
                (copy_point(pk.as_ref(), curve)?, Inner::P256(k))
            }
            Curve::BrainpoolP256r1 => {
                let d = random_scalar(curve)?;
                let k = elliptic_curve::SecretKey::<BrainpoolP256r1>::from_slice(d.as_slice())
                    .map_err(|_| CryptoError::Backend("brainpool key generation"))?;
                let p = k.public_key().to_sec1_point(false);
                (copy_point(p.as_bytes(), curve)?, Inner::Brainpool(k))
            }
        };
        Ok(EphemeralKey {
            curve,
            public,
            inner,
        })
    }

    /// A one-time key from a known scalar (test vectors, simulation).
    pub fn from_scalar(curve: Curve, d: &[u8]) -> Result<EphemeralKey, CryptoError> {
        let bad = CryptoError::InvalidPrivateKey("scalar out of range");
        let (public, inner) = match curve {
            Curve::NistP256 => {
                let k = agreement::PrivateKey::from_private_key(&ECDH_P256, d)
                    .map_err(|_| bad.clone())?;
                let pk = k
                    .compute_public_key()
                    .map_err(|_| CryptoError::Backend("P-256 public key"))?;
                (copy_point(pk.as_ref(), curve)?, Inner::P256(k))
            }
            Curve::BrainpoolP256r1 => {
                let k = elliptic_curve::SecretKey::<BrainpoolP256r1>::from_slice(d)
                    .map_err(|_| bad.clone())?;
                let p = k.public_key().to_sec1_point(false);
                (copy_point(p.as_bytes(), curve)?, Inner::Brainpool(k))
            }
        };
        Ok(EphemeralKey {
            curve,
            public,
            inner,
        })
    }

    /// The curve.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// The one-time public key, uncompressed SEC1 (65 bytes).
    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// ECKA-DH with the peer's one-time public key. Consumes (and so destroys) the key.
    pub fn agree(self, peer_public: &[u8]) -> Result<SharedSecret, CryptoError> {
        match self.inner {
            Inner::P256(k) => agreement::agree(
                &k,
                UnparsedPublicKey::new(&ECDH_P256, peer_public),
                CryptoError::InvalidPublicKey(self.curve),
                SharedSecret::from_slice,
            ),
            Inner::Brainpool(k) => {
                let peer =
                    elliptic_curve::PublicKey::<BrainpoolP256r1>::from_sec1_bytes(peer_public)
                        .map_err(|_| CryptoError::InvalidPublicKey(self.curve))?;
                let shared = k.diffie_hellman(&peer);
                SharedSecret::from_slice(shared.raw_secret_bytes().as_slice())
            }
        }
    }
}

/// The private half of a key agreement: a one-time key used once, or a key held in custody
/// (a stored one-time key being re-used, or an HSM object).
pub enum AgreementKey<'a> {
    /// A one-time key, consumed by the agreement.
    OneTime(EphemeralKey),
    /// A key in custody; it stays usable after the agreement.
    Custody(&'a dyn KeyCustody),
}

impl std::fmt::Debug for AgreementKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgreementKey::OneTime(k) => f.debug_tuple("OneTime").field(k).finish(),
            AgreementKey::Custody(k) => f.debug_tuple("Custody").field(&k.curve()).finish(),
        }
    }
}

impl AgreementKey<'_> {
    /// The curve of the key.
    pub fn curve(&self) -> Curve {
        match self {
            AgreementKey::OneTime(k) => k.curve(),
            AgreementKey::Custody(k) => k.curve(),
        }
    }

    /// The public key (uncompressed SEC1).
    pub fn public_key(&self) -> &[u8] {
        match self {
            AgreementKey::OneTime(k) => k.public_key(),
            AgreementKey::Custody(k) => k.public_key(),
        }
    }

    /// Perform ECKA-DH with `peer_public`.
    pub fn agree(self, peer_public: &[u8]) -> Result<SharedSecret, CryptoError> {
        match self {
            AgreementKey::OneTime(k) => k.agree(peer_public),
            AgreementKey::Custody(k) => k.ecdh(peer_public),
        }
    }
}

fn copy_point(bytes: &[u8], curve: Curve) -> Result<[u8; PUBLIC_KEY_LEN], CryptoError> {
    <[u8; PUBLIC_KEY_LEN]>::try_from(bytes).map_err(|_| CryptoError::InvalidPublicKey(curve))
}
