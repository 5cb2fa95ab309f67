//! SGP.22 section 4.5 certificates: parsing, path validation and a test PKI generator.
//!
//! # Validation
//!
//! SGP.22 chains are *not* WebPKI chains (critical certificatePolicies, directoryName name
//! constraints with prefix semantics, brainpool curves), so this crate implements the
//! section 4.5.2.2 rules itself on top of `x509-cert`:
//!
//! * [`Certificate`] keeps the exact received DER; signatures are verified over the received
//!   `tbsCertificate` bytes, never a re-encoding.
//! * [`TrustStore`] holds one or more GSMA CI certificates, looked up by
//!   SubjectKeyIdentifier ([`TrustStore::choose_ci`] picks one from an eUICC's
//!   `euiccCiPKIdListForSigning`/`...ForVerification`).
//! * [`validate_euicc_chain`] checks CI -> EUM -> eUICC and returns the EID;
//!   [`validate_dp_chain`] checks CI -> DPauth / DPpb / DPtls; [`check_same_smdp_oid`] checks
//!   that DPauth and DPpb name the same SM-DP+ (subjectAltName registeredID).
//! * Every failed rule has its own [`PkiError`] variant, tagged with the [`CertRole`] at fault,
//!   so the server can map it to an ES9+ reason code.
//!
//! Revocation (CRLs, section 4.6): [`Crl`] parses and verifies a CRL, [`RevocationSet`]
//! checks validated chains against the CRLs it holds, [`CrlBuilder`] writes test CRLs (see
//! the `crl` module documentation for the rules and the stale-CRL policy).
//!
//! Not implemented here: OCSP, delta and segmented CRLs, the SGP.22 v3 certificate hierarchy
//! (sub-CAs, v3 role OIDs), SM-DS certificates.
//!
//! Role OIDs (Annex H): see [`oids`].
//!
//! # Test PKI
//!
//! [`generate`] builds CI, EUM, eUICC, DPauth, DPpb and DPtls certificates on P-256 or
//! brainpoolP256r1, signed through [`rsp_crypto::KeyCustody`], and [`TestPki::write_to`] /
//! [`load_dir`] store and read them as PEM files. With the default
//! [`EumRangeForm::PermittedEins`] the chains also verify with `openssl verify`.

mod cert;
mod crl;
mod dertlv;
mod error;
mod generate;
pub mod oids;
mod validate;

pub use cert::{
    Basic, Certificate, DirectorySubtree, EidNameConstraints, Ext, SubjectAltNames, der_to_pem,
    key_usage,
};
pub use crl::{
    Added, Crl, CrlBuilder, CrlEntry, CrlError, CrlIssuerKind, MAX_CRL_LEN, RevocationCheck,
    RevocationSet, StalePolicy, crl_to_pem,
};
pub use error::{CertRole, PkiError};
pub use generate::{
    CertBuilder, EXTRA_CI_DIR, EumRangeForm, IssuedCert, LAYOUT, PkiDir, PkiOptions, TestPki,
    ci_template, dp_template, eid_with_check_digits, encode_name, euicc_template, eum_template,
    ext, generate, issue_euicc, key_identifier, load_dir, no_expiry,
};
pub use validate::{
    DpRole, TrustStore, ValidatedDp, ValidatedEuicc, check_same_smdp_oid, eid_check_digits_ok,
    is_eid_syntax, smdp_oid, validate_dp_chain, validate_euicc_chain,
};
