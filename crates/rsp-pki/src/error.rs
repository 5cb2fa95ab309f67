//! The error type of this crate.

use std::fmt;

/// The role a certificate plays in an SGP.22 chain (SGP.22 section 4.5.2, figure 30).
///
/// Used in errors so that callers can tell *which* certificate of a chain failed, which is what
/// the ES9+ reason codes distinguish (e.g. "EUM certificate invalid" versus "eUICC certificate
/// invalid", SGP.22 section 5.6.3.1 / 5.6.5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertRole {
    /// CERT.CI.ECDSA (GSMA Certificate Issuer, self-signed root).
    Ci,
    /// CERT.EUM.ECDSA (eUICC Manufacturer sub-CA).
    Eum,
    /// CERT.EUICC.ECDSA.
    Euicc,
    /// CERT.DPauth.ECDSA.
    DpAuth,
    /// CERT.DPpb.ECDSA.
    DpPb,
    /// CERT.DP.TLS.
    DpTls,
}

impl fmt::Display for CertRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertRole::Ci => "CERT.CI.ECDSA",
            CertRole::Eum => "CERT.EUM.ECDSA",
            CertRole::Euicc => "CERT.EUICC.ECDSA",
            CertRole::DpAuth => "CERT.DPauth.ECDSA",
            CertRole::DpPb => "CERT.DPpb.ECDSA",
            CertRole::DpTls => "CERT.DP.TLS",
        })
    }
}

/// Why a certificate or chain was rejected, or a PKI operation failed.
///
/// The variants are deliberately fine-grained so the server can map them onto the SGP.22
/// ES9+ status codes (e.g. 8.1.3/6.1 "CI public key unknown", 8.1.2/6.1 "EUM certificate
/// invalid", 8.1.3/6.3 "eUICC certificate verification failed", ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The DER (or PEM) encoding is not a well-formed X.509 certificate, or has trailing data.
    #[error("{}malformed certificate: {detail}", role_prefix(*.role))]
    Malformed {
        /// The certificate concerned, when known.
        role: Option<CertRole>,
        /// What is wrong.
        detail: String,
    },
    /// The signature or public key algorithm is not ECDSA-SHA256 / id-ecPublicKey
    /// (SGP.22 section 4.5.2.1.1).
    #[error("{}unsupported algorithm: {detail}", role_prefix(*.role))]
    UnsupportedAlgorithm {
        /// The certificate concerned, when known.
        role: Option<CertRole>,
        /// What was found.
        detail: String,
    },
    /// The public key is on a curve this implementation does not support (e.g. FRP256V1).
    #[error("{}unsupported curve {oid}", role_prefix(*.role))]
    UnsupportedCurve {
        /// The certificate concerned, when known.
        role: Option<CertRole>,
        /// Dotted curve OID.
        oid: String,
    },
    /// No trusted CI has the key identifier the certificate's AuthorityKeyIdentifier names
    /// (the "CI public key unknown" case), or the trust store is empty.
    #[error("{role}: issued by an unknown or untrusted CI (AKI {aki_hex})")]
    UnknownCi {
        /// The certificate whose issuer is unknown.
        role: CertRole,
        /// Hex of the AuthorityKeyIdentifier keyIdentifier (empty if absent).
        aki_hex: String,
    },
    /// A certificate offered as a trust anchor is not an acceptable CI certificate.
    #[error("not a valid CI certificate: {0}")]
    InvalidCi(String),
    /// The signature does not verify with the issuer's public key.
    #[error("{role}: invalid signature")]
    InvalidSignature {
        /// The certificate whose signature failed.
        role: CertRole,
    },
    /// `now` is after notAfter.
    #[error("{role}: expired (notAfter {not_after})")]
    Expired {
        /// The certificate concerned.
        role: CertRole,
        /// notAfter, RFC 3339.
        not_after: String,
    },
    /// `now` is before notBefore.
    #[error("{role}: not yet valid (notBefore {not_before})")]
    NotYetValid {
        /// The certificate concerned.
        role: CertRole,
        /// notBefore, RFC 3339.
        not_before: String,
    },
    /// The certificatePolicies extension lacks the role OID (SGP.22 section 4.5.2.2).
    #[error("{role}: certificatePolicies does not carry {expected} (found {found:?})")]
    WrongRole {
        /// The certificate concerned.
        role: CertRole,
        /// The required policy OID.
        expected: &'static str,
        /// The policy OIDs present.
        found: Vec<String>,
    },
    /// keyUsage is absent or does not have the bit the role requires.
    #[error("{role}: bad keyUsage: {detail}")]
    BadKeyUsage {
        /// The certificate concerned.
        role: CertRole,
        /// What is wrong.
        detail: String,
    },
    /// extKeyUsage is not exactly serverAuth + clientAuth (CERT.DP.TLS).
    #[error("{role}: bad extKeyUsage: {detail}")]
    BadExtendedKeyUsage {
        /// The certificate concerned.
        role: CertRole,
        /// What is wrong.
        detail: String,
    },
    /// basicConstraints is wrong for the role (CA flag, pathLenConstraint).
    #[error("{role}: bad basicConstraints: {detail}")]
    BadBasicConstraints {
        /// The certificate concerned.
        role: CertRole,
        /// What is wrong.
        detail: String,
    },
    /// A certificate of the chain uses a different curve than its issuer
    /// (SGP.22 section 4.5.2: all certificates of a chain point to the same curve).
    #[error("{role}: curve {found} differs from issuer's curve {expected}")]
    CurveMismatch {
        /// The certificate concerned.
        role: CertRole,
        /// The issuer's curve.
        expected: rsp_crypto::Curve,
        /// This certificate's curve.
        found: rsp_crypto::Curve,
    },
    /// A required extension is missing (SGP.22 section 4.5.2.2: "Have all the critical
    /// extension defined for its profile", SKI/AKI mandatory).
    #[error("{role}: missing extension {extension}")]
    MissingExtension {
        /// The certificate concerned.
        role: CertRole,
        /// Name of the missing extension.
        extension: &'static str,
    },
    /// An extension this validator does not understand is marked critical (RFC 5280 4.2).
    #[error("{role}: unsupported critical extension {oid}")]
    UnsupportedCriticalExtension {
        /// The certificate concerned.
        role: CertRole,
        /// Dotted OID of the extension.
        oid: String,
    },
    /// The AuthorityKeyIdentifier / issuer name does not match the issuer certificate.
    #[error("{role}: not issued by the presented issuer: {detail}")]
    IssuerMismatch {
        /// The certificate concerned.
        role: CertRole,
        /// What did not match.
        detail: String,
    },
    /// The eUICC subject has no serialNumber, or it is not a 32-digit EID.
    #[error("invalid EID in eUICC subject: {0}")]
    InvalidEid(String),
    /// The EID (or organization) is not within what the EUM certificate permits
    /// (nameConstraints or permittedEins).
    #[error("EID {eid} is outside the range permitted by the EUM certificate")]
    EidOutsideEumRange {
        /// The EID.
        eid: String,
    },
    /// The eUICC subject's organization is not one the EUM's nameConstraints permits.
    #[error("eUICC organization {organization:?} not permitted by the EUM certificate")]
    OrganizationNotPermitted {
        /// The eUICC subject O attribute (if any).
        organization: Option<String>,
    },
    /// The EUM certificate carries neither nameConstraints nor permittedEins.
    #[error("EUM certificate does not restrict the EIDs it may issue")]
    EumWithoutEidRange,
    /// A SubjectAltName registeredID (SM-DP+ OID) is missing or malformed.
    #[error("{role}: missing or invalid SM-DP+ OID in subjectAltName: {detail}")]
    BadSmdpOid {
        /// The certificate concerned.
        role: CertRole,
        /// What is wrong.
        detail: String,
    },
    /// CERT.DPauth and CERT.DPpb (or DP.TLS) name different SM-DP+ OIDs.
    #[error("SM-DP+ OID mismatch: {first} vs {second}")]
    SmdpOidMismatch {
        /// OID of the first certificate.
        first: String,
        /// OID of the second certificate.
        second: String,
    },
    /// A subjectAltName dNSName is required (CERT.DP.TLS) but absent.
    #[error("{role}: subjectAltName has no dNSName")]
    MissingDnsName {
        /// The certificate concerned.
        role: CertRole,
    },
    /// The certificate is listed on its issuer's CRL (SGP.22 sections 4.5.2.2 and 4.6).
    #[error("{role}: revoked (serial {serial_hex} is on its issuer's CRL)")]
    Revoked {
        /// The revoked certificate.
        role: CertRole,
        /// Its serial number, hex.
        serial_hex: String,
    },
    /// The revocation status of the certificate cannot be established: its issuer's CRL is
    /// past nextUpdate (under the refusing stale-CRL policy) or does not verify.
    #[error("{role}: revocation status unknown: {detail}")]
    RevocationUnknown {
        /// The certificate whose status is unknown.
        role: CertRole,
        /// Why.
        detail: String,
    },
    /// An invalid argument was given to the generator (bad OID, EID, address...).
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A cryptographic operation (signing, key generation, key parsing) failed.
    #[error("crypto error: {0}")]
    Crypto(#[from] rsp_crypto::CryptoError),
    /// Reading or writing PKI files failed.
    #[error("I/O error on {path}: {detail}")]
    Io {
        /// The file concerned.
        path: String,
        /// The OS error text.
        detail: String,
    },
}

fn role_prefix(role: Option<CertRole>) -> String {
    role.map(|r| format!("{r}: ")).unwrap_or_default()
}

impl PkiError {
    /// A [`PkiError::Malformed`] without a role (filled in later by [`PkiError::with_role`]).
    pub(crate) fn malformed(detail: impl Into<String>) -> PkiError {
        PkiError::Malformed {
            role: None,
            detail: detail.into(),
        }
    }

    /// Attaches `role` to the parse-time variants that were produced without one.
    pub fn with_role(self, role: CertRole) -> PkiError {
        match self {
            PkiError::Malformed { role: None, detail } => PkiError::Malformed {
                role: Some(role),
                detail,
            },
            PkiError::UnsupportedAlgorithm { role: None, detail } => {
                PkiError::UnsupportedAlgorithm {
                    role: Some(role),
                    detail,
                }
            }
            PkiError::UnsupportedCurve { role: None, oid } => PkiError::UnsupportedCurve {
                role: Some(role),
                oid,
            },
            other => other,
        }
    }

    /// The certificate of the chain this error is about, if it is about one.
    ///
    /// Lets the server choose between e.g. "EUM certificate invalid" and "eUICC certificate
    /// invalid" reason codes.
    pub fn role(&self) -> Option<CertRole> {
        match self {
            PkiError::Malformed { role, .. }
            | PkiError::UnsupportedAlgorithm { role, .. }
            | PkiError::UnsupportedCurve { role, .. } => *role,
            PkiError::UnknownCi { role, .. }
            | PkiError::InvalidSignature { role }
            | PkiError::Expired { role, .. }
            | PkiError::NotYetValid { role, .. }
            | PkiError::WrongRole { role, .. }
            | PkiError::BadKeyUsage { role, .. }
            | PkiError::BadExtendedKeyUsage { role, .. }
            | PkiError::BadBasicConstraints { role, .. }
            | PkiError::CurveMismatch { role, .. }
            | PkiError::MissingExtension { role, .. }
            | PkiError::UnsupportedCriticalExtension { role, .. }
            | PkiError::IssuerMismatch { role, .. }
            | PkiError::BadSmdpOid { role, .. }
            | PkiError::MissingDnsName { role }
            | PkiError::Revoked { role, .. }
            | PkiError::RevocationUnknown { role, .. } => Some(*role),
            PkiError::InvalidEid(_)
            | PkiError::EidOutsideEumRange { .. }
            | PkiError::OrganizationNotPermitted { .. } => Some(CertRole::Euicc),
            PkiError::EumWithoutEidRange => Some(CertRole::Eum),
            PkiError::InvalidCi(_) => Some(CertRole::Ci),
            PkiError::SmdpOidMismatch { .. }
            | PkiError::InvalidOption(_)
            | PkiError::Crypto(_)
            | PkiError::Io { .. } => None,
        }
    }
}
