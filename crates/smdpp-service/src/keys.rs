//! The SM-DP+ credentials: trusted CIs and one DPauth/DPpb key set per CI.
//!
//! SGP.22 allows several CIs (section 2.6.7.1, 4.5.2); the SM-DP+ then holds a
//! CERT.DPauth.ECDSA and CERT.DPpb.ECDSA per CI. Private keys are used only through
//! [`KeyCustody`], so an HSM can replace the software keys later.

use std::fmt;
use std::sync::Arc;

use rsp_crypto::{Curve, KeyCustody};
use rsp_pki::{DpRole, PkiError, TrustStore, check_same_smdp_oid, validate_dp_chain};
use time::OffsetDateTime;

/// Why a key set could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A certificate failed validation against the trust store.
    #[error("{what}: {source}")]
    Pki {
        /// Which certificate.
        what: &'static str,
        /// The validation error.
        source: PkiError,
    },
    /// A private key does not match its certificate.
    #[error("{0} private key does not match its certificate")]
    KeyMismatch(&'static str),
    /// DPauth and DPpb are on different curves or under different CIs.
    #[error("DPauth and DPpb differ: {0}")]
    Inconsistent(&'static str),
    /// No key set at all.
    #[error("no DPauth/DPpb key set configured")]
    Empty,
}

/// One SM-DP+ identity under one CI: CERT.DPauth.ECDSA and CERT.DPpb.ECDSA with their keys.
#[derive(Clone)]
pub struct KeySet {
    /// SubjectKeyIdentifier of the CI both certificates chain to.
    pub ci_ski: Vec<u8>,
    /// The curve of both keys.
    pub curve: Curve,
    /// The SM-DP+ OID (subjectAltName registeredID of both certificates).
    pub smdp_oid: String,
    /// CERT.DPauth.ECDSA, DER.
    pub dpauth_cert: Vec<u8>,
    /// SK.DPauth.ECDSA.
    pub dpauth_key: Arc<dyn KeyCustody>,
    /// CERT.DPpb.ECDSA, DER.
    pub dppb_cert: Vec<u8>,
    /// SK.DPpb.ECDSA.
    pub dppb_key: Arc<dyn KeyCustody>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("ci_ski", &hex::encode(&self.ci_ski))
            .field("curve", &self.curve)
            .field("smdp_oid", &self.smdp_oid)
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// Validates both certificates under `trust` (SGP.22 section 4.5.2.2), checks that the
    /// keys match, that both name the same SM-DP+ OID (section 4.5.2.1.0.4) and chain to the
    /// same CI on the same curve.
    pub fn new(
        trust: &TrustStore,
        dpauth_cert: &[u8],
        dpauth_key: Arc<dyn KeyCustody>,
        dppb_cert: &[u8],
        dppb_key: Arc<dyn KeyCustody>,
    ) -> Result<KeySet, KeyError> {
        let now = OffsetDateTime::now_utc();
        let auth = validate_dp_chain(trust, dpauth_cert, DpRole::Auth, now).map_err(|source| {
            KeyError::Pki {
                what: "CERT.DPauth.ECDSA",
                source,
            }
        })?;
        let pb = validate_dp_chain(trust, dppb_cert, DpRole::Pb, now).map_err(|source| {
            KeyError::Pki {
                what: "CERT.DPpb.ECDSA",
                source,
            }
        })?;
        if auth.public_key != dpauth_key.public_key() {
            return Err(KeyError::KeyMismatch("DPauth"));
        }
        if pb.public_key != dppb_key.public_key() {
            return Err(KeyError::KeyMismatch("DPpb"));
        }
        if auth.ci_ski != pb.ci_ski {
            return Err(KeyError::Inconsistent("issued by different CIs"));
        }
        if auth.curve != pb.curve {
            return Err(KeyError::Inconsistent("different curves"));
        }
        let smdp_oid =
            check_same_smdp_oid(&auth.cert, &pb.cert).map_err(|source| KeyError::Pki {
                what: "DPauth/DPpb SM-DP+ OID",
                source,
            })?;
        Ok(KeySet {
            ci_ski: auth.ci_ski,
            curve: auth.curve,
            smdp_oid,
            dpauth_cert: dpauth_cert.to_vec(),
            dpauth_key,
            dppb_cert: dppb_cert.to_vec(),
            dppb_key,
        })
    }
}

/// Everything the engine needs to authenticate: the trusted CIs and the key sets.
#[derive(Clone, Debug)]
pub struct ServerKeys {
    /// CIs trusted for eUICC chains (and that the key sets chain to).
    pub trust: TrustStore,
    /// Key sets, in operator priority order.
    pub sets: Vec<KeySet>,
    /// The CRLs eUICC chains are checked against (none by default; see
    /// [`crate::revocation`]).
    pub revocation: Arc<crate::revocation::Revocation>,
}

impl ServerKeys {
    /// Bundles a trust store and key sets; at least one key set is required.
    pub fn new(trust: TrustStore, sets: Vec<KeySet>) -> Result<ServerKeys, KeyError> {
        if sets.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(ServerKeys {
            trust,
            sets,
            revocation: Arc::default(),
        })
    }

    /// The key set under the CI `ci_ski`.
    pub fn set_for(&self, ci_ski: &[u8]) -> Option<&KeySet> {
        self.sets.iter().find(|s| s.ci_ski == ci_ski)
    }

    /// The CI used to verify the eUICC (SGP.22 section 5.6.1): the first entry of
    /// `euiccCiPKIdListForSigning` (eUICC priority order) that we trust.
    pub fn choose_signing_ci(&self, for_signing: &[Vec<u8>]) -> Option<Vec<u8>> {
        for_signing
            .iter()
            .find(|id| self.trust.get(id).is_some())
            .cloned()
    }

    /// The key set whose DPauth the eUICC can verify: the one under the signing CI when the
    /// eUICC can verify that CI, else the first CI of `euiccCiPKIdListForVerification` (eUICC
    /// priority order) we hold a key set for.
    pub fn choose_key_set(
        &self,
        signing_ci: &[u8],
        for_verification: &[Vec<u8>],
    ) -> Option<&KeySet> {
        if for_verification.iter().any(|v| v == signing_ci)
            && let Some(s) = self.set_for(signing_ci)
        {
            return Some(s);
        }
        for_verification.iter().find_map(|v| self.set_for(v))
    }
}
