//! Every way an ES9+ call can fail, and the single mapping to SGP.22 status codes.
//!
//! Handlers return a [`Failure`]; [`Failure::to_es9`] is the only place that chooses the
//! subject/reason code (SGP.22 v2.2 Tables 37, 40, 43 and 46) and the message sent to the LPA.
//! Messages never contain keys, confirmation codes, profile data, EIDs or MatchingIDs.

use rsp_pki::{CertRole, PkiError};
use smdpp_core::status::{self, Es9Error};

/// A failed ES9+ check or an internal failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// InitiateAuthentication: the eUICC's SVN is not supported (Table 37, `8.8.3/3.1`).
    #[error("unsupported SVN")]
    SvnUnsupported,
    /// InitiateAuthentication: `smdpAddress` is not ours (Table 37, `8.8.1/3.8`).
    #[error("wrong SM-DP+ address")]
    WrongSmdpAddress,
    /// InitiateAuthentication: no CI of `euiccCiPKIdListForSigning` is trusted
    /// (Table 37, `8.8.2/3.1`).
    #[error("no supported CI for signing")]
    NoSigningCi,
    /// InitiateAuthentication: no DPauth chains to a CI of
    /// `euiccCiPKIdListForVerification` (Table 37, `8.8.4/3.7`).
    #[error("no DPauth certificate for the eUICC's CIs")]
    NoDpAuthForCi,
    /// The transactionId is unknown, expired, or the session is not in a state that accepts
    /// this call (Tables 40, 43, 46, `8.10.1/3.9`).
    #[error("unknown transaction: {0}")]
    UnknownTransaction(&'static str),
    /// A certificate of the eUICC chain was refused (Table 43, `8.1.2/*`, `8.1.3/*`,
    /// `8.11.1/3.9`).
    #[error("certificate chain: {0}")]
    Chain(PkiError),
    /// An eUICC signature or the serverChallenge/serverAddress is invalid (`8.1/6.1`).
    #[error("eUICC verification failed: {0}")]
    EuiccVerification(&'static str),
    /// The eUICC reported an error instead of a signed response (`8.1/6.1`).
    #[error("eUICC returned an error: {0}")]
    EuiccReportedError(String),
    /// MatchingID refused (Table 43, `8.2.6/3.8`).
    #[error("MatchingID refused")]
    MatchingIdRefused,
    /// Eligibility: the eUICC cannot take this profile (no additional profile possible, or
    /// not enough free memory) (Table 43, `8.1/4.8`).
    #[error("insufficient memory: {0}")]
    InsufficientMemory(&'static str),
    /// Eligibility: the profile does not suit this eUICC/device (Table 43, `8.2.5/4.3`).
    #[error("no eligible profile: {0}")]
    NoEligibleProfile(&'static str),
    /// The order is bound to another EID (Table 43, `8.1.1/3.8`).
    #[error("EID mismatch")]
    EidMismatch,
    /// The LPA asked for Remote Profile Management (v3 `operationType` rpm) for an eUICC
    /// whose euiccInfo2 announces no `rpmSupport` (`8.1.1/3.8`, EID refused).
    #[error("RPM not supported by the eUICC")]
    RpmNotSupported,
    /// The LPA asked for Remote Profile Management and no package is waiting for this eUICC
    /// (and MatchingID / ICCID, when given) (`8.2.6/3.8`, as for a download without order).
    #[error("no RPM package pending")]
    NoRpmPending,
    /// The profile is not Released (Table 43, `8.2/1.2`).
    #[error("profile not released")]
    NotReleased,
    /// The download order has expired (Tables 40, 43, `8.8.5/4.10`).
    #[error("download order expired")]
    OrderExpired,
    /// Too many download attempts (Table 43, `8.8.5/6.4`).
    #[error("download attempts exceeded")]
    DownloadAttemptsExceeded,
    /// Confirmation Code required but absent (Table 40, `8.2.7/2.2`).
    #[error("confirmation code missing")]
    CcMissing,
    /// Confirmation Code wrong (Table 40, `8.2.7/3.8`).
    #[error("confirmation code refused")]
    CcRefused,
    /// Too many Confirmation Code attempts (Table 40, `8.2.7/6.4`).
    #[error("confirmation code attempts exceeded")]
    CcAttemptsExceeded,
    /// A BPP exists for another one-time key of this eUICC (Table 40, `8.2/3.7`).
    #[error("BPP not available for a new binding")]
    BppRebindRefused,
    /// CancelSession: the smdpOid is not ours (Table 46, `8.8/3.10`).
    #[error("wrong SM-DP+ OID")]
    WrongSmdpOid,
    /// The request content could not be decoded (`1.3.1/2.1`).
    #[error("malformed {0}")]
    Malformed(String),
    /// The store is unreachable (`1.2/5.1`).
    #[error("store unavailable")]
    StoreUnavailable,
    /// Too many RSP sessions open (the engine's bound; `1.2/5.1`).
    #[error("too many open RSP sessions")]
    SessionsFull,
    /// This eUICC had too many MatchingIDs or Confirmation Codes refused this minute
    /// (`1.2/5.1`, see `Limits::refusals_per_eid_per_minute`).
    #[error("too many refused attempts by this eUICC")]
    EidThrottled,
    /// Any other internal failure (`1.2/4.2`); the detail is logged, not sent.
    #[error("internal: {0}")]
    Internal(String),
}

impl Failure {
    /// The SGP.22 error reported to the LPA for this failure.
    pub fn to_es9(&self) -> Es9Error {
        use Failure::*;
        let (code, message): (status::StatusCode, String) = match self {
            SvnUnsupported => (
                status::SVN_UNSUPPORTED,
                "The eUICC's specification version is not supported by this SM-DP+.".into(),
            ),
            WrongSmdpAddress => (
                status::SMDP_ADDRESS_REFUSED,
                "The smdpAddress does not designate this SM-DP+.".into(),
            ),
            NoSigningCi => (
                status::SECURITY_CONFIGURATION_UNSUPPORTED,
                "None of the eUICC's CI key identifiers for signing is trusted by this SM-DP+."
                    .into(),
            ),
            NoDpAuthForCi => (
                status::SMDP_CERTIFICATE_UNAVAILABLE,
                "This SM-DP+ has no CERT.DPauth.ECDSA under a CI the eUICC can verify.".into(),
            ),
            UnknownTransaction(why) => (
                status::TRANSACTION_ID_UNKNOWN,
                format!("The RSP session identified by the TransactionID is unknown ({why})."),
            ),
            Chain(e) => chain_code(e),
            EuiccVerification(what) => (
                status::EUICC_VERIFICATION_FAILED,
                format!("eUICC verification failed: {what}."),
            ),
            EuiccReportedError(what) => (
                status::EUICC_VERIFICATION_FAILED,
                format!("The eUICC returned an error: {what}."),
            ),
            MatchingIdRefused => (
                status::MATCHING_ID_REFUSED,
                "No pending download order for this MatchingID / eUICC.".into(),
            ),
            InsufficientMemory(what) => (
                status::EUICC_INSUFFICIENT_MEMORY,
                format!("The eUICC does not have sufficient space for this profile: {what}; the order is terminated."),
            ),
            NoEligibleProfile(what) => (
                status::NO_ELIGIBLE_PROFILE,
                format!("No eligible profile for this eUICC/device: {what}; the order is terminated."),
            ),
            EidMismatch => (
                status::EID_REFUSED,
                "The download order is bound to another eUICC.".into(),
            ),
            RpmNotSupported => (
                status::EID_REFUSED,
                "The eUICC does not announce Remote Profile Management support.".into(),
            ),
            NoRpmPending => (
                status::MATCHING_ID_REFUSED,
                "No Remote Profile Management package is pending for this eUICC.".into(),
            ),
            NotReleased => (
                status::PROFILE_NOT_RELEASED,
                "The profile has not been released for download.".into(),
            ),
            OrderExpired => (
                status::DOWNLOAD_ORDER_EXPIRED,
                "The download order has expired.".into(),
            ),
            DownloadAttemptsExceeded => (
                status::DOWNLOAD_ORDER_RETRIES_EXCEEDED,
                "The maximum number of download attempts has been exceeded; the order is terminated."
                    .into(),
            ),
            CcMissing => (
                status::CONFIRMATION_CODE_MISSING,
                "A Confirmation Code is required.".into(),
            ),
            CcRefused => (
                status::CONFIRMATION_CODE_REFUSED,
                "The Confirmation Code is wrong; start the download again to retry.".into(),
            ),
            CcAttemptsExceeded => (
                status::CONFIRMATION_CODE_RETRIES_EXCEEDED,
                "The maximum number of Confirmation Code attempts has been exceeded; the order is terminated."
                    .into(),
            ),
            BppRebindRefused => (
                status::BPP_UNAVAILABLE_FOR_NEW_BINDING,
                "A Bound Profile Package already exists for another one-time key of this eUICC."
                    .into(),
            ),
            WrongSmdpOid => (
                status::SMDP_OID_INVALID,
                "The smdpOid does not designate this SM-DP+.".into(),
            ),
            Malformed(what) => (
                status::PROTOCOL_FORMAT_INVALID,
                format!("Malformed {what}."),
            ),
            StoreUnavailable => (
                status::FUNCTION_PROVIDER_INACCESSIBLE,
                "The SM-DP+ is temporarily unavailable.".into(),
            ),
            SessionsFull => (
                status::FUNCTION_PROVIDER_INACCESSIBLE,
                "Too many download sessions are open; retry later.".into(),
            ),
            EidThrottled => (
                status::FUNCTION_PROVIDER_INACCESSIBLE,
                "Too many refused attempts by this eUICC; retry later.".into(),
            ),
            Internal(_) => (
                status::FUNCTION_PROVIDER_EXECUTION_ERROR,
                "The SM-DP+ could not execute the function.".into(),
            ),
        };
        Es9Error::new(code, message)
    }
}

/// Certificate chain errors (Table 43): an unknown CI is `8.11.1/3.9`; an expired (or not yet
/// valid) EUM/eUICC certificate is `8.1.x/6.3`; anything else wrong with the EUM is
/// `8.1.2/6.1` and with the eUICC (including an EID outside the EUM's range) `8.1.3/6.1`.
///
/// Revocation (section 4.6): Table 43 has no "revoked" reason; section 4.5.2.2 makes a
/// revoked certificate (or one whose revocation status cannot be established because its
/// issuer's CRL is past nextUpdate) an invalid certificate, so a revoked or unknown-status EUM
/// is `8.1.2/6.1`, eUICC `8.1.3/6.1`, and a revoked CI `8.11.1/3.9` (no longer a trusted
/// root).
fn chain_code(e: &PkiError) -> (status::StatusCode, String) {
    let role = e.role();
    let is_time = matches!(e, PkiError::Expired { .. } | PkiError::NotYetValid { .. });
    match (e, role) {
        (PkiError::UnknownCi { .. }, _) | (_, Some(CertRole::Ci)) => (
            status::CI_PUBLIC_KEY_UNKNOWN,
            "The CI of the EUM certificate is not trusted by this SM-DP+.".into(),
        ),
        (_, Some(CertRole::Eum)) if is_time => (
            status::EUM_CERTIFICATE_EXPIRED,
            "The EUM certificate has expired or is not yet valid.".into(),
        ),
        (_, Some(CertRole::Eum)) => (
            status::EUM_CERTIFICATE_INVALID,
            format!("The EUM certificate is invalid: {}.", short_reason(e)),
        ),
        _ if is_time => (
            status::EUICC_CERTIFICATE_EXPIRED,
            "The eUICC certificate has expired or is not yet valid.".into(),
        ),
        _ => (
            status::EUICC_CERTIFICATE_INVALID,
            format!("The eUICC certificate is invalid: {}.", short_reason(e)),
        ),
    }
}

/// A description of a chain error that carries no identifiers (no EID).
fn short_reason(e: &PkiError) -> &'static str {
    match e {
        PkiError::Malformed { .. } => "malformed",
        PkiError::UnsupportedAlgorithm { .. } => "unsupported algorithm",
        PkiError::UnsupportedCurve { .. } => "unsupported curve",
        PkiError::InvalidSignature { .. } => "signature does not verify",
        PkiError::WrongRole { .. } => "wrong certificate policy",
        PkiError::BadKeyUsage { .. } => "bad keyUsage",
        PkiError::BadBasicConstraints { .. } => "bad basicConstraints",
        PkiError::CurveMismatch { .. } => "curve differs from the issuer's",
        PkiError::MissingExtension { .. } => "missing extension",
        PkiError::UnsupportedCriticalExtension { .. } => "unsupported critical extension",
        PkiError::IssuerMismatch { .. } => "not issued by the presented issuer",
        PkiError::InvalidEid(_) => "invalid EID",
        PkiError::EidOutsideEumRange { .. } => "EID outside the EUM's permitted range",
        PkiError::OrganizationNotPermitted { .. } => "organization not permitted by the EUM",
        PkiError::EumWithoutEidRange => "EUM does not restrict its EID range",
        PkiError::Revoked { .. } => "revoked (listed on its issuer's CRL)",
        PkiError::RevocationUnknown { .. } => {
            "revocation status unknown (the issuer's CRL is past its nextUpdate or unusable)"
        }
        _ => "rejected",
    }
}

impl From<smdpp_store::StoreError> for Failure {
    fn from(e: smdpp_store::StoreError) -> Self {
        match e {
            smdpp_store::StoreError::Database(_) => Failure::StoreUnavailable,
            other => Failure::Internal(other.to_string()),
        }
    }
}

impl From<Failure> for Es9Error {
    fn from(f: Failure) -> Self {
        f.to_es9()
    }
}
