//! SGP.22 status codes (subjectCode/reasonCode) and the ES9+/ES2+ functionExecutionStatus.
//!
//! A status code is a pair of dotted numbers: the *subject* (what the problem is about, SGP.22
//! v2.2 section 5.2.6.1) and the *reason* (what went wrong, section 5.2.6.2). Failed function
//! executions carry one in `header.functionExecutionStatus.statusCodeData` (section 6.5.1.4).
//!
//! The constants below transcribe the ES9+ "Specific Status Codes" tables of SGP.22 v2.2
//! (Table 37 InitiateAuthentication, Table 40 GetBoundProfilePackage, Table 43
//! AuthenticateClient, Table 46 CancelSession; HandleNotification has none), plus the generic
//! codes this project uses for transport-level problems. The generic pairs are built from the
//! subject and reason lists of section 5.2.6 ("as defined in SGP.02"); the SGP.02 common status
//! code table itself is not available to us, so their pairing is our choice:
//!
//! | situation | code | constant |
//! |---|---|---|
//! | body is not JSON / not an object / a field has the wrong type, bad base64, bad size, unsupported Content-Type | `1.3.1` Protocol Format / `2.1` Invalid | [`PROTOCOL_FORMAT_INVALID`] |
//! | a mandatory JSON field is absent | `1.3.1` Protocol Format / `2.2` Mandatory Element Missing | [`PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING`] |
//! | `X-Admin-Protocol` header absent | `1.3.2` Protocol Version / `2.2` Mandatory Element Missing | [`PROTOCOL_VERSION_MISSING`] |
//! | `X-Admin-Protocol` not `gsma/rsp/v2.*` or `v3.*` | `1.3.2` Protocol Version / `3.1` Unsupported | [`PROTOCOL_VERSION_UNSUPPORTED`] |
//! | internal failure, time-out | `1.2` Function Provider / `4.2` Execution Error | [`FUNCTION_PROVIDER_EXECUTION_ERROR`] |
//! | overloaded / dependency unreachable | `1.2` Function Provider / `5.1` Inaccessible | [`FUNCTION_PROVIDER_INACCESSIBLE`] |
//!
//! The ES2+ constants transcribe Tables 24 (DownloadOrder), 27 (ConfirmOrder), 30 (CancelOrder)
//! and 32 (ReleaseProfile), plus a few ES2+ codes of ours (client certificate, header, EID check
//! digits, MatchingID alphabet), documented on each constant.
//!
//! Two entries of lpac's built-in message table differ from the v2.2 text: lpac has `8.8.5/4.1`
//! where Tables 40 and 43 say `8.8.5/4.10`, and `8.8/3.1` where Table 46 says `8.8/3.10`. We
//! follow the specification.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest subject or reason code we accept from the wire (they are short dotted numbers).
const MAX_CODE_LEN: usize = 32;

/// A (subjectCode, reasonCode) pair, e.g. `8.10.1` / `3.9`.
///
/// Both parts are non-empty dotted decimal numbers (`1`, `8.2.6`, `4.10`). Equality compares the
/// text, so a constant equals the same code parsed from JSON.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StatusCode {
    subject: Cow<'static, str>,
    reason: Cow<'static, str>,
}

/// Why a subject or reason code string was refused by [`StatusCode::parse`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("status code part is not a dotted decimal number of at most 32 characters")]
pub struct InvalidStatusCode;

fn is_dotted_decimal(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_CODE_LEN
        && s.split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

impl StatusCode {
    /// A code from two static strings. Meant for constants; the strings are not checked here
    /// (the unit tests check every constant of this module).
    pub const fn new(subject: &'static str, reason: &'static str) -> Self {
        Self {
            subject: Cow::Borrowed(subject),
            reason: Cow::Borrowed(reason),
        }
    }

    /// Parses a code received from elsewhere, checking both parts are dotted decimal numbers.
    pub fn parse(subject: &str, reason: &str) -> Result<Self, InvalidStatusCode> {
        if is_dotted_decimal(subject) && is_dotted_decimal(reason) {
            Ok(Self {
                subject: Cow::Owned(subject.to_owned()),
                reason: Cow::Owned(reason.to_owned()),
            })
        } else {
            Err(InvalidStatusCode)
        }
    }

    /// The subject code, e.g. `8.10.1`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The reason code, e.g. `3.9`.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The meaning text from the SGP.22 table that defines this code, if it is one of the
    /// constants of this module.
    pub fn description(&self) -> Option<&'static str> {
        ALL.iter()
            .find(|(code, _)| code == self)
            .map(|(_, text)| *text)
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.subject, self.reason)
    }
}

// ---------------------------------------------------------------------------------------------
// Generic codes (section 5.2.6; pairing chosen by this project, see the module docs).

/// `1.3.1` Protocol Format / `2.1` Invalid: the request is not well-formed (not JSON, wrong field
/// type, bad base64, value out of bounds, unsupported Content-Type, body too large).
pub const PROTOCOL_FORMAT_INVALID: StatusCode = StatusCode::new("1.3.1", "2.1");
/// `1.3.1` Protocol Format / `2.2` Mandatory Element Missing: a mandatory JSON element is absent.
pub const PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING: StatusCode = StatusCode::new("1.3.1", "2.2");
/// `1.3.2` Protocol Version / `2.2` Mandatory Element Missing: the `X-Admin-Protocol` header is
/// absent.
pub const PROTOCOL_VERSION_MISSING: StatusCode = StatusCode::new("1.3.2", "2.2");
/// `1.3.2` Protocol Version / `3.1` Unsupported: the `X-Admin-Protocol` version is not supported.
pub const PROTOCOL_VERSION_UNSUPPORTED: StatusCode = StatusCode::new("1.3.2", "3.1");
/// `1.2` Function Provider / `4.2` Execution Error: the SM-DP+ failed internally (or timed out).
pub const FUNCTION_PROVIDER_EXECUTION_ERROR: StatusCode = StatusCode::new("1.2", "4.2");
/// `1.2` Function Provider / `5.1` Inaccessible: the SM-DP+ (or something it depends on) is
/// temporarily unavailable.
pub const FUNCTION_PROVIDER_INACCESSIBLE: StatusCode = StatusCode::new("1.2", "5.1");

// ---------------------------------------------------------------------------------------------
// Table 37: ES9+.InitiateAuthentication specific status codes.

/// `8.8.1` SM-DP+ Address / `3.8` Refused: "Invalid SM-DP+ Address." (Table 37)
pub const SMDP_ADDRESS_REFUSED: StatusCode = StatusCode::new("8.8.1", "3.8");
/// `8.8.2` Security configuration / `3.1` Unsupported: "None of the proposed Public Key
/// Identifiers is supported by the SM-DP+." (Table 37)
pub const SECURITY_CONFIGURATION_UNSUPPORTED: StatusCode = StatusCode::new("8.8.2", "3.1");
/// `8.8.3` Specification Version Number / `3.1` Unsupported: "The Specification Version Number
/// indicated by the eUICC is not supported by the SM-DP+." (Table 37)
pub const SVN_UNSUPPORTED: StatusCode = StatusCode::new("8.8.3", "3.1");
/// `8.8.4` SM-DP+ Certificate / `3.7` Unavailable: "The SM-DP+ has no CERT.DPAuth.ECDSA signed
/// by one of the GSMA CI Public Key supported by the eUICC." (Table 37)
pub const SMDP_CERTIFICATE_UNAVAILABLE: StatusCode = StatusCode::new("8.8.4", "3.7");

// ---------------------------------------------------------------------------------------------
// Table 40: ES9+.GetBoundProfilePackage, Table 43: ES9+.AuthenticateClient and Table 46:
// ES9+.CancelSession specific status codes (shared codes are listed once).

/// `8.1` eUICC / `6.1` Verification Failed: "eUICC signature is invalid." (Tables 40, 46);
/// "eUICC signature is invalid or serverChallenge is invalid." (Table 43)
pub const EUICC_VERIFICATION_FAILED: StatusCode = StatusCode::new("8.1", "6.1");
/// `8.1` eUICC / `4.8` Insufficient Memory: "eUICC does not have sufficient space for this
/// Profile." (Table 43)
pub const EUICC_INSUFFICIENT_MEMORY: StatusCode = StatusCode::new("8.1", "4.8");
/// `8.1.1` EID / `3.8` Refused: "EID doesn't match the expected value." (Table 43)
pub const EID_REFUSED: StatusCode = StatusCode::new("8.1.1", "3.8");
/// `8.1.2` EUM Certificate / `6.1` Verification Failed: "Certificate is invalid." (Table 43)
pub const EUM_CERTIFICATE_INVALID: StatusCode = StatusCode::new("8.1.2", "6.1");
/// `8.1.2` EUM Certificate / `6.3` Expired: "Certificate has expired." (Table 43)
pub const EUM_CERTIFICATE_EXPIRED: StatusCode = StatusCode::new("8.1.2", "6.3");
/// `8.1.3` eUICC Certificate / `6.1` Verification Failed: "Certificate is invalid." (Table 43)
pub const EUICC_CERTIFICATE_INVALID: StatusCode = StatusCode::new("8.1.3", "6.1");
/// `8.1.3` eUICC Certificate / `6.3` Expired: "Certificate has expired." (Table 43)
pub const EUICC_CERTIFICATE_EXPIRED: StatusCode = StatusCode::new("8.1.3", "6.3");
/// `8.2` Profile / `1.2` Not allowed: "Profile has not yet been released." (Table 43)
pub const PROFILE_NOT_RELEASED: StatusCode = StatusCode::new("8.2", "1.2");
/// `8.2` Profile / `3.7` Unavailable: "BPP is not available for a new binding." (Table 40)
pub const BPP_UNAVAILABLE_FOR_NEW_BINDING: StatusCode = StatusCode::new("8.2", "3.7");
/// `8.2.5` Profile Type / `4.3` Stopped on warning: "No eligible Profile for this
/// eUICC/Device." (Table 43)
pub const NO_ELIGIBLE_PROFILE: StatusCode = StatusCode::new("8.2.5", "4.3");
/// `8.2.6` MatchingID / `3.8` Refused: "MatchingID (AC_Token or EventID) is refused."
/// (Table 43)
pub const MATCHING_ID_REFUSED: StatusCode = StatusCode::new("8.2.6", "3.8");
/// `8.2.7` Confirmation Code / `2.2` Mandatory Element Missing: "Confirmation Code is missing."
/// (Table 40)
pub const CONFIRMATION_CODE_MISSING: StatusCode = StatusCode::new("8.2.7", "2.2");
/// `8.2.7` Confirmation Code / `3.8` Refused: "Confirmation Code is refused." (Table 40)
pub const CONFIRMATION_CODE_REFUSED: StatusCode = StatusCode::new("8.2.7", "3.8");
/// `8.2.7` Confirmation Code / `6.4` Maximum number of retries exceeded: "The maximum number of
/// retries for the Confirmation Code has been exceeded." (Table 40)
pub const CONFIRMATION_CODE_RETRIES_EXCEEDED: StatusCode = StatusCode::new("8.2.7", "6.4");
/// `8.8` SM-DP+ / `3.10` Invalid Association: "The provided SM-DP+ OID is invalid." (Table 46)
pub const SMDP_OID_INVALID: StatusCode = StatusCode::new("8.8", "3.10");
/// `8.8.5` Download order / `4.10` Time to Live Expired: "The Download order has expired."
/// (Tables 40, 43)
pub const DOWNLOAD_ORDER_EXPIRED: StatusCode = StatusCode::new("8.8.5", "4.10");
/// `8.8.5` Download order / `6.4` Maximum number of retries exceeded: "The maximum number of
/// retries for the Profile download order has been exceeded." (Table 43)
pub const DOWNLOAD_ORDER_RETRIES_EXCEEDED: StatusCode = StatusCode::new("8.8.5", "6.4");
/// `8.10.1` TransactionId / `3.9` Unknown: "The RSP session identified by the TransactionID is
/// unknown." (Tables 40, 43, 46)
pub const TRANSACTION_ID_UNKNOWN: StatusCode = StatusCode::new("8.10.1", "3.9");
/// `8.11.1` CI Public Key / `3.9` Unknown: "Unknown CI Public Key. The CI used by the EUM
/// Certificate is not a trusted root for the SM-DP+." (Table 43)
pub const CI_PUBLIC_KEY_UNKNOWN: StatusCode = StatusCode::new("8.11.1", "3.9");

// ---------------------------------------------------------------------------------------------
// ES2+ (section 5.3). Tables 24 (DownloadOrder), 27 (ConfirmOrder), 30 (CancelOrder) and 32
// (ReleaseProfile); a code shared by several tables is defined once.

/// `8.2.1` Profile ICCID / `3.9` Unknown: "Indicates that the Profile, identified by this ICCID
/// is unknown to the SM-DP+." (Tables 24, 27, 30, 32). Also answered for a profile of another
/// operator, so that an operator cannot learn which ICCIDs others hold.
pub const ICCID_UNKNOWN: StatusCode = StatusCode::new("8.2.1", "3.9");
/// `8.2.1` Profile ICCID / `1.2` Not Allowed (Authorisation): "Indicates that the function
/// caller is not allowed to perform this function on the target Profile." (Tables 24, 27, 30,
/// 32). Not used for another operator's profile (see [`ICCID_UNKNOWN`]).
pub const ICCID_NOT_ALLOWED: StatusCode = StatusCode::new("8.2.1", "1.2");
/// `8.2.1` Profile ICCID / `3.3` Already in Use: "Indicates that the Profile identified by the
/// provided ICCID is not available." (Table 24); "The profile, identified by this ICCID, is
/// already downloaded." (Table 30)
pub const ICCID_ALREADY_IN_USE: StatusCode = StatusCode::new("8.2.1", "3.3");
/// `8.2.1` Profile ICCID / `3.5` Invalid transition: "Indicates that the target Profile cannot
/// be released." (Table 32). Reason 3.5 is missing from the list of section 5.2.6.2 but used
/// by section 5.3.4; we also answer it for any other ES2+ state change that Table 6b / the
/// section 3.1.6 diagram does not allow and for which the function's table has no code.
pub const ICCID_INVALID_TRANSITION: StatusCode = StatusCode::new("8.2.1", "3.5");
/// `8.2.1` Profile ICCID / `3.10` Invalid Association: "Indicates that a different EID is
/// associated with this ICCID." (Table 30)
pub const ICCID_INVALID_ASSOCIATION: StatusCode = StatusCode::new("8.2.1", "3.10");
/// `8.2.1` Profile ICCID / `2.3` Conditional Parameter missing: an RPM order in the
/// `commands` form without `iccid` (SGP.22 v3 ES2+.RpmOrder: "ICCID missing").
pub const ICCID_CONDITIONAL_MISSING: StatusCode = StatusCode::new("8.2.1", "2.3");
/// `8.2.9` Profile Metadata / `2.3` Conditional Parameter missing: an RPM updateMetadata
/// without metadata, for a profile whose type gives none.
pub const PROFILE_METADATA_MISSING: StatusCode = StatusCode::new("8.2.9", "2.3");
/// `8.2.9` Profile Metadata / `2.1` Invalid: metadata an UpdateMetadataRequest cannot carry
/// (e.g. a service provider name over 32 bytes).
pub const PROFILE_METADATA_INVALID: StatusCode = StatusCode::new("8.2.9", "2.1");
/// `8.2.5` Profile Type / `3.9` Unknown: "Indicates that the Profile Type identified by this
/// Profile Type is unknown to the SM-DP+." (Table 24)
pub const PROFILE_TYPE_UNKNOWN: StatusCode = StatusCode::new("8.2.5", "3.9");
/// `8.2.5` Profile Type / `1.2` Not Allowed (Authorisation): "Indicates that the function
/// caller is not allowed to perform this function on the Profile Type." (Table 24)
pub const PROFILE_TYPE_NOT_ALLOWED: StatusCode = StatusCode::new("8.2.5", "1.2");
/// `8.2.5` Profile Type / `3.7` Unavailable: "No more Profile available for the requested
/// Profile Type." (Table 24)
pub const PROFILE_TYPE_UNAVAILABLE: StatusCode = StatusCode::new("8.2.5", "3.7");
/// `8.2.5` Profile Type / `3.8` Refused: "Indicates that the Profile Type identified by this
/// Profile Type is not aligned with the Profile Type of Profile identified by the ICCID."
/// (Table 24)
pub const PROFILE_TYPE_REFUSED: StatusCode = StatusCode::new("8.2.5", "3.8");
/// `8.2.6` Matching ID / `3.3` Already in Use (Uniqueness): "Conflicting MatchingID value."
/// (Table 27)
pub const MATCHING_ID_ALREADY_IN_USE: StatusCode = StatusCode::new("8.2.6", "3.3");
/// `8.2.6` Matching ID / `3.10` Invalid Association: "Indicates that a different MatchingID is
/// associated with this ICCID." (Table 30)
pub const MATCHING_ID_INVALID_ASSOCIATION: StatusCode = StatusCode::new("8.2.6", "3.10");
/// `8.9` SM-DS / `5.1` Inaccessible: "Indicates that the smdsAddress is invalid or not
/// reachable." (Table 27)
pub const SMDS_INACCESSIBLE: StatusCode = StatusCode::new("8.9", "5.1");
/// `8.9` SM-DS / `4.2` Execution Error: "The cascade SM-DS registration has failed. SM-DS has
/// raised an error." (Table 27)
pub const SMDS_EXECUTION_ERROR: StatusCode = StatusCode::new("8.9", "4.2");
/// `8.1.1` EID / `2.2` Mandatory Element Missing: "Indicates that the EID is missing in the
/// context of this order (SM-DS address provided or MatchingID value is empty)." (Table 27)
pub const EID_MISSING: StatusCode = StatusCode::new("8.1.1", "2.2");
/// `8.1.1` EID / `3.10` Invalid Association: "Indicates that a different EID is already
/// associated with this ICCID." (Table 27)
pub const EID_INVALID_ASSOCIATION: StatusCode = StatusCode::new("8.1.1", "3.10");

// ES2+ codes of this project (pairs built from the section 5.2.6 subject and reason lists; no
// SGP.22 table names them).

/// `1.1` Function Requester / `1.1` Unknown (Identification or Authentication): the ES2+ caller
/// presented no TLS client certificate, or one that no operator is registered with (section
/// 6.1: ES2+ uses mutual authentication).
pub const FUNCTION_REQUESTER_UNKNOWN: StatusCode = StatusCode::new("1.1", "1.1");
/// `1.1` Function Requester / `1.2` Not Allowed (Authorisation): the request's
/// `functionRequesterIdentifier` is not the operator the client certificate belongs to.
pub const FUNCTION_REQUESTER_NOT_ALLOWED: StatusCode = StatusCode::new("1.1", "1.2");
/// `1.1` Function Requester / `3.3` Already in Use: the `functionCallIdentifier` was already
/// used by this operator for a different request.
pub const FUNCTION_CALL_ID_REUSED: StatusCode = StatusCode::new("1.1", "3.3");
/// `1.3.1` Protocol Format / `2.3` Conditional Element Missing: e.g. DownloadOrder with neither
/// `iccid` nor `profileType`.
pub const PROTOCOL_FORMAT_CONDITIONAL_ELEMENT_MISSING: StatusCode = StatusCode::new("1.3.1", "2.3");
/// `8.1.1` EID / `2.1` Invalid: 32 digits whose check digits are wrong (the number mod 97 is
/// not 1).
pub const EID_INVALID: StatusCode = StatusCode::new("8.1.1", "2.1");
/// `8.2.6` Matching ID / `2.1` Invalid: a MatchingID outside `0-9 A-Z -` (section 4.1.1), too
/// long, or empty where an SM-DS address is given (section 5.3.2).
pub const MATCHING_ID_INVALID: StatusCode = StatusCode::new("8.2.6", "2.1");

/// Every constant of this module with its meaning text (from the SGP.22 table, or ours for the
/// generic codes).
pub const ALL: &[(StatusCode, &str)] = &[
    (PROTOCOL_FORMAT_INVALID, "Invalid request format."),
    (
        PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING,
        "A mandatory element of the request is missing.",
    ),
    (
        PROTOCOL_VERSION_MISSING,
        "The X-Admin-Protocol header is missing.",
    ),
    (
        PROTOCOL_VERSION_UNSUPPORTED,
        "The requested protocol version is not supported.",
    ),
    (
        FUNCTION_PROVIDER_EXECUTION_ERROR,
        "The SM-DP+ could not execute the function.",
    ),
    (
        FUNCTION_PROVIDER_INACCESSIBLE,
        "The SM-DP+ is temporarily unavailable.",
    ),
    (SMDP_ADDRESS_REFUSED, "Invalid SM-DP+ Address."),
    (
        SECURITY_CONFIGURATION_UNSUPPORTED,
        "None of the proposed Public Key Identifiers is supported by the SM-DP+.",
    ),
    (
        SVN_UNSUPPORTED,
        "The Specification Version Number indicated by the eUICC is not supported by the SM-DP+.",
    ),
    (
        SMDP_CERTIFICATE_UNAVAILABLE,
        "The SM-DP+ has no CERT.DPAuth.ECDSA signed by one of the GSMA CI Public Key supported by the eUICC.",
    ),
    (
        EUICC_VERIFICATION_FAILED,
        "eUICC signature is invalid or serverChallenge is invalid.",
    ),
    (
        EUICC_INSUFFICIENT_MEMORY,
        "eUICC does not have sufficient space for this Profile.",
    ),
    (EID_REFUSED, "EID doesn't match the expected value."),
    (EUM_CERTIFICATE_INVALID, "EUM Certificate is invalid."),
    (EUM_CERTIFICATE_EXPIRED, "EUM Certificate has expired."),
    (EUICC_CERTIFICATE_INVALID, "eUICC Certificate is invalid."),
    (EUICC_CERTIFICATE_EXPIRED, "eUICC Certificate has expired."),
    (PROFILE_NOT_RELEASED, "Profile has not yet been released."),
    (
        BPP_UNAVAILABLE_FOR_NEW_BINDING,
        "BPP is not available for a new binding.",
    ),
    (
        NO_ELIGIBLE_PROFILE,
        "No eligible Profile for this eUICC/Device.",
    ),
    (
        MATCHING_ID_REFUSED,
        "MatchingID (AC_Token or EventID) is refused.",
    ),
    (CONFIRMATION_CODE_MISSING, "Confirmation Code is missing."),
    (CONFIRMATION_CODE_REFUSED, "Confirmation Code is refused."),
    (
        CONFIRMATION_CODE_RETRIES_EXCEEDED,
        "The maximum number of retries for the Confirmation Code has been exceeded.",
    ),
    (SMDP_OID_INVALID, "The provided SM-DP+ OID is invalid."),
    (DOWNLOAD_ORDER_EXPIRED, "The Download order has expired."),
    (
        DOWNLOAD_ORDER_RETRIES_EXCEEDED,
        "The maximum number of retries for the Profile download order has been exceeded.",
    ),
    (
        TRANSACTION_ID_UNKNOWN,
        "The RSP session identified by the TransactionID is unknown.",
    ),
    (
        CI_PUBLIC_KEY_UNKNOWN,
        "Unknown CI Public Key. The CI used by the EUM Certificate is not a trusted root for the SM-DP+.",
    ),
    (
        ICCID_UNKNOWN,
        "Indicates that the Profile, identified by this ICCID is unknown to the SM-DP+.",
    ),
    (
        ICCID_NOT_ALLOWED,
        "Indicates that the function caller is not allowed to perform this function on the target Profile.",
    ),
    (
        ICCID_ALREADY_IN_USE,
        "Indicates that the Profile identified by the provided ICCID is not available.",
    ),
    (
        ICCID_INVALID_TRANSITION,
        "Indicates that the target Profile cannot be released.",
    ),
    (
        ICCID_INVALID_ASSOCIATION,
        "Indicates that a different EID is associated with this ICCID.",
    ),
    (
        PROFILE_TYPE_UNKNOWN,
        "Indicates that the Profile Type identified by this Profile Type is unknown to the SM-DP+.",
    ),
    (
        PROFILE_TYPE_NOT_ALLOWED,
        "Indicates that the function caller is not allowed to perform this function on the Profile Type.",
    ),
    (
        PROFILE_TYPE_UNAVAILABLE,
        "No more Profile available for the requested Profile Type.",
    ),
    (
        PROFILE_TYPE_REFUSED,
        "Indicates that the Profile Type identified by this Profile Type is not aligned with the Profile Type of Profile identified by the ICCID.",
    ),
    (MATCHING_ID_ALREADY_IN_USE, "Conflicting MatchingID value."),
    (
        MATCHING_ID_INVALID_ASSOCIATION,
        "Indicates that a different MatchingID is associated with this ICCID.",
    ),
    (
        SMDS_INACCESSIBLE,
        "Indicates that the smdsAddress is invalid or not reachable.",
    ),
    (
        SMDS_EXECUTION_ERROR,
        "The cascade SM-DS registration has failed. SM-DS has raised an error.",
    ),
    (
        EID_MISSING,
        "Indicates that the EID is missing in the context of this order (SM-DS address provided or MatchingID value is empty).",
    ),
    (
        EID_INVALID_ASSOCIATION,
        "Indicates that a different EID is already associated with this ICCID.",
    ),
    (
        FUNCTION_REQUESTER_UNKNOWN,
        "The function requester is unknown: no registered TLS client certificate.",
    ),
    (
        FUNCTION_REQUESTER_NOT_ALLOWED,
        "The functionRequesterIdentifier does not match the client certificate.",
    ),
    (
        FUNCTION_CALL_ID_REUSED,
        "The functionCallIdentifier was already used for a different request.",
    ),
    (
        PROTOCOL_FORMAT_CONDITIONAL_ELEMENT_MISSING,
        "A conditional element of the request is missing.",
    ),
    (EID_INVALID, "The EID is invalid (check digits)."),
    (MATCHING_ID_INVALID, "The MatchingID is invalid."),
];

// ---------------------------------------------------------------------------------------------
// functionExecutionStatus (section 6.5.1.4)

/// `functionExecutionStatus.status` (section 6.5.1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExecutionStatus {
    /// `Executed-Success`.
    #[serde(rename = "Executed-Success")]
    ExecutedSuccess,
    /// `Executed-WithWarning`.
    #[serde(rename = "Executed-WithWarning")]
    ExecutedWithWarning,
    /// `Failed`.
    #[serde(rename = "Failed")]
    Failed,
    /// `Expired`.
    #[serde(rename = "Expired")]
    Expired,
}

impl ExecutionStatus {
    /// Whether the function was executed (with or without warning), i.e. the body is present.
    pub fn is_executed(self) -> bool {
        matches!(self, Self::ExecutedSuccess | Self::ExecutedWithWarning)
    }
}

/// `functionExecutionStatus.statusCodeData` (section 6.5.1.4), as on the wire.
///
/// The codes are kept as received strings; [`StatusCodeData::code`] checks and converts them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCodeData {
    /// "OID of the subject code", e.g. `8.10.1`.
    pub subject_code: String,
    /// "OID of the reason code", e.g. `3.9`.
    pub reason_code: String,
    /// "Identifier of the subject" (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_identifier: Option<String>,
    /// "Textual and human readable explanation" (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl StatusCodeData {
    /// The (subject, reason) pair, if both are well-formed dotted numbers.
    pub fn code(&self) -> Result<StatusCode, InvalidStatusCode> {
        StatusCode::parse(&self.subject_code, &self.reason_code)
    }
}

/// `header.functionExecutionStatus` (section 6.5.1.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionExecutionStatus {
    /// The execution status.
    pub status: ExecutionStatus,
    /// The status code; present when the status is not `Executed-Success`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code_data: Option<StatusCodeData>,
}

impl FunctionExecutionStatus {
    /// `{"status":"Executed-Success"}`.
    pub fn success() -> Self {
        Self {
            status: ExecutionStatus::ExecutedSuccess,
            status_code_data: None,
        }
    }

    /// `{"status":"Failed","statusCodeData":{...}}` with the given code and message.
    pub fn failed(code: &StatusCode, message: Option<String>) -> Self {
        Self {
            status: ExecutionStatus::Failed,
            status_code_data: Some(StatusCodeData {
                subject_code: code.subject().to_owned(),
                reason_code: code.reason().to_owned(),
                subject_identifier: None,
                message,
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Es9Error

/// An ES9+ function failure: the status code to report and a human-readable message.
///
/// The message goes to the LPA (and may be shown to the end user); it must never contain secret
/// or personal data (keys, EIDs, matching IDs, confirmation codes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Es9Error {
    /// The (subject, reason) code.
    pub code: StatusCode,
    /// Human-readable explanation, never secret.
    pub message: String,
}

impl Es9Error {
    /// An error with an explicit message.
    pub fn new(code: StatusCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// An error whose message is the code's meaning text from the specification (or a generic
    /// text for a code that is not one of this module's constants).
    pub fn from_code(code: StatusCode) -> Self {
        let message = code
            .description()
            .unwrap_or("The function execution failed.")
            .to_owned();
        Self { code, message }
    }

    /// The `Failed` functionExecutionStatus that reports this error.
    pub fn to_execution_status(&self) -> FunctionExecutionStatus {
        FunctionExecutionStatus::failed(&self.code, Some(self.message.clone()))
    }

    /// Rebuilds an error from a received status; `None` if it carries no (valid) code.
    pub fn from_execution_status(status: &FunctionExecutionStatus) -> Option<Self> {
        let data = status.status_code_data.as_ref()?;
        let code = data.code().ok()?;
        let message = data
            .message
            .clone()
            .or_else(|| code.description().map(str::to_owned))
            .unwrap_or_default();
        Some(Self { code, message })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn all_constants_are_well_formed_and_unique() {
        for (i, (code, text)) in ALL.iter().enumerate() {
            assert!(is_dotted_decimal(code.subject()), "{code}");
            assert!(is_dotted_decimal(code.reason()), "{code}");
            assert!(!text.is_empty());
            for (other, _) in &ALL[i + 1..] {
                assert_ne!(code, other, "duplicate constant");
            }
        }
        assert_eq!(ALL.len(), 29 + 21);
    }

    #[test]
    fn parsed_code_equals_constant() {
        let parsed = StatusCode::parse("8.10.1", "3.9").unwrap();
        assert_eq!(parsed, TRANSACTION_ID_UNKNOWN);
        assert_eq!(parsed.to_string(), "8.10.1/3.9");
        assert_eq!(
            parsed.description(),
            Some("The RSP session identified by the TransactionID is unknown.")
        );
    }

    #[test]
    fn rejects_malformed_codes() {
        for (s, r) in [
            ("", "1"),
            ("8..1", "1"),
            ("8.a", "1"),
            ("8.1.", "3"),
            ("8", " 3"),
        ] {
            assert_eq!(StatusCode::parse(s, r), Err(InvalidStatusCode), "{s}/{r}");
        }
        assert!(StatusCode::parse(&"1".repeat(33), "1").is_err());
    }

    #[test]
    fn golden_failed_status() {
        let st = Es9Error::from_code(TRANSACTION_ID_UNKNOWN).to_execution_status();
        let json = serde_json::to_string(&st).unwrap();
        assert_eq!(
            json,
            r#"{"status":"Failed","statusCodeData":{"subjectCode":"8.10.1","reasonCode":"3.9","message":"The RSP session identified by the TransactionID is unknown."}}"#
        );
        let back: FunctionExecutionStatus = serde_json::from_str(&json).unwrap();
        assert_eq!(back, st);
        let err = Es9Error::from_execution_status(&back).unwrap();
        assert_eq!(err.code, TRANSACTION_ID_UNKNOWN);
    }

    #[test]
    fn golden_success_status() {
        let st = FunctionExecutionStatus::success();
        assert_eq!(
            serde_json::to_string(&st).unwrap(),
            r#"{"status":"Executed-Success"}"#
        );
        for (text, want) in [
            ("Executed-Success", ExecutionStatus::ExecutedSuccess),
            ("Executed-WithWarning", ExecutionStatus::ExecutedWithWarning),
            ("Failed", ExecutionStatus::Failed),
            ("Expired", ExecutionStatus::Expired),
        ] {
            let v: ExecutionStatus = serde_json::from_str(&format!("\"{text}\"")).unwrap();
            assert_eq!(v, want);
        }
        assert!(serde_json::from_str::<ExecutionStatus>("\"failed\"").is_err());
    }

    #[test]
    fn status_code_data_with_subject_identifier_round_trips() {
        let json = r#"{"subjectCode":"1.6","reasonCode":"2.1","subjectIdentifier":"Function","message":"Invalid"}"#;
        let data: StatusCodeData = serde_json::from_str(json).unwrap();
        assert_eq!(data.subject_identifier.as_deref(), Some("Function"));
        assert_eq!(serde_json::to_string(&data).unwrap(), json);
    }
}
