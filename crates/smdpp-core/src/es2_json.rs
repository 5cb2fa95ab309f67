//! ES2+ JSON request and response bodies (SGP.22 v2.2 sections 5.3.1-5.3.4, 6.5.1, 6.5.2.1-
//! 6.5.2.4), shared by the SM-DP+ (which parses requests) and operator-side clients.
//!
//! Wire rules implemented here:
//! - Every ES2+ request carries `header` with `functionRequesterIdentifier` and
//!   `functionCallIdentifier` (section 6.5.1.3; unlike ES9+ it is mandatory). Each is 1 to
//!   [`limits::HEADER_STRING`] characters.
//! - `iccid` follows the pattern `^[0-9]{19}[0-9F]?$` of 6.5.2.1: 19 or 20 digits, or 19 digits
//!   and the `F` padding nibble. It is kept normalised (no `F`) and written that way.
//! - `eid` follows `^[0-9]{32}$`; a pattern violation is a format error (`1.3.1/2.1`). Its check
//!   digits are verified too (the 32-digit number mod 97 must be 1, the ISO/IEC 7064 MOD 97-10
//!   rule of EIDs): wrong check digits are `8.1.1/2.1` ([`crate::status::EID_INVALID`]). Our
//!   choice: an EID with wrong check digits is a typing error that would otherwise bind an
//!   order to an eUICC that cannot exist.
//! - `matchingId` uses the alphabet `0-9 A-Z -` of section 4.1.1 and at most
//!   [`limits::MATCHING_ID`] characters, else `8.2.6/2.1`; an empty string is allowed (the
//!   default SM-DP+ / SM-DS case of section 3.1.1, then the EID is mandatory).
//! - String fields have length bounds ([`limits`]); longer values are `1.3.1/2.1`.
//! - Unknown request members are ignored (forward compatibility, e.g. members of later SGP.22
//!   versions such as `rootDsAddress`).
//! - Responses are [`ResponseMessage`]s: `{"header":{"functionExecutionStatus":{...}}, ...}`.
//!
//! [`parse_es2_request`] is the server-side entry point; malformed input maps to
//! `1.3.1/2.1` (invalid), `1.3.1/2.2` (mandatory element missing, including the header), and
//! the field-specific codes above.

use std::fmt;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

pub use crate::es9_json::ResponseMessage;
use crate::status::{
    EID_INVALID, Es9Error, MATCHING_ID_INVALID, PROTOCOL_FORMAT_CONDITIONAL_ELEMENT_MISSING,
    PROTOCOL_FORMAT_INVALID, PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING,
};

/// An ES2+ function failure: the same shape as an ES9+ one (status code and message).
pub type Es2Error = Es9Error;

/// Length bounds (characters) of the ES2+ string fields.
pub mod limits {
    /// `functionRequesterIdentifier`, `functionCallIdentifier`.
    pub const HEADER_STRING: usize = 256;
    /// `profileType` ("content free information defined by the Operator").
    pub const PROFILE_TYPE: usize = 64;
    /// `matchingId` (section 4.1.1 sets no bound; the Activation Code must stay short).
    pub const MATCHING_ID: usize = 64;
    /// `confirmationCode` (section 4.7 sets no bound).
    pub const CONFIRMATION_CODE: usize = 64;
    /// `smdsAddress`: an FQDN with an optional port.
    pub const SMDS_ADDRESS: usize = 261;
}

// ---------------------------------------------------------------------------------------------
// Functions

/// The four ES2+ functions the SM-DP+ provides (section 5.3, paths of section 6.5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Es2Function {
    /// `ES2+.DownloadOrder` (5.3.1).
    DownloadOrder,
    /// `ES2+.ConfirmOrder` (5.3.2).
    ConfirmOrder,
    /// `ES2+.CancelOrder` (5.3.3).
    CancelOrder,
    /// `ES2+.ReleaseProfile` (5.3.4).
    ReleaseProfile,
    /// `ES2+.RpmOrder` (SGP.22 v3; [`crate::rpm_json`]).
    RpmOrder,
    /// Our `DeactivateSubscription` beside ES2+ ([`crate::rpm_json`]).
    DeactivateSubscription,
}

impl Es2Function {
    /// Every function, in section order (then ours).
    pub const ALL: [Self; 6] = [
        Self::DownloadOrder,
        Self::ConfirmOrder,
        Self::CancelOrder,
        Self::ReleaseProfile,
        Self::RpmOrder,
        Self::DeactivateSubscription,
    ];

    /// The HTTP path, e.g. `/gsma/rsp2/es2plus/downloadOrder`.
    pub const fn path(self) -> &'static str {
        match self {
            Self::DownloadOrder => "/gsma/rsp2/es2plus/downloadOrder",
            Self::ConfirmOrder => "/gsma/rsp2/es2plus/confirmOrder",
            Self::CancelOrder => "/gsma/rsp2/es2plus/cancelOrder",
            Self::ReleaseProfile => "/gsma/rsp2/es2plus/releaseProfile",
            Self::RpmOrder => "/gsma/rsp2/es2plus/rpmOrder",
            Self::DeactivateSubscription => "/smdpp/es2ext/v1/deactivateSubscription",
        }
    }

    /// The function name, e.g. `DownloadOrder`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::DownloadOrder => "DownloadOrder",
            Self::ConfirmOrder => "ConfirmOrder",
            Self::CancelOrder => "CancelOrder",
            Self::ReleaseProfile => "ReleaseProfile",
            Self::RpmOrder => "RpmOrder",
            Self::DeactivateSubscription => "DeactivateSubscription",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Field types

fn bounded_string<'de, D: Deserializer<'de>>(
    d: D,
    max: usize,
    what: &str,
) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.chars().count() > max {
        return Err(D::Error::custom(format!(
            "{what} is longer than {max} characters"
        )));
    }
    Ok(s)
}

/// An ICCID as used on ES2+: 19 or 20 digits, normalised without the `F` padding.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Iccid(String);

impl Iccid {
    /// Parses `^[0-9]{19}[0-9F]?$` (section 6.5.2.1); a trailing `F` is dropped.
    pub fn parse(s: &str) -> Option<Self> {
        let digits = s.strip_suffix('F').unwrap_or(s);
        let ok_len = if digits.len() == s.len() {
            matches!(s.len(), 19 | 20)
        } else {
            digits.len() == 19
        };
        (ok_len && digits.bytes().all(|b| b.is_ascii_digit())).then(|| Self(digits.to_owned()))
    }

    /// The digits (19 or 20, no `F`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Iccid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Iccid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Iccid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Iccid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = bounded_string(d, 20, "iccid")?;
        Self::parse(&s)
            .ok_or_else(|| D::Error::custom("iccid must be 19 or 20 digits, or 19 digits and F"))
    }
}

/// An EID: 32 decimal digits (section 6.5.2.1 pattern). The check digits are verified by
/// [`Eid::check_digits_ok`], separately, so that they get their own status code.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Eid(String);

impl Eid {
    /// Parses 32 digits (the check digits are not verified here).
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit())).then(|| Self(s.to_owned()))
    }

    /// The 32 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the 32-digit number mod 97 equals 1 (ISO/IEC 7064 MOD 97-10 check digits).
    pub fn check_digits_ok(&self) -> bool {
        eid_check_digits_ok(&self.0)
    }
}

/// Whether a 32-digit EID has correct check digits (the number mod 97 equals 1).
pub fn eid_check_digits_ok(eid: &str) -> bool {
    eid.len() == 32
        && eid.bytes().all(|b| b.is_ascii_digit())
        && eid
            .bytes()
            .fold(0u32, |acc, b| (acc * 10 + u32::from(b - b'0')) % 97)
            == 1
}

impl fmt::Debug for Eid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Eid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Eid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Eid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = bounded_string(d, 32, "eid")?;
        Self::parse(&s).ok_or_else(|| D::Error::custom("eid must be 32 digits"))
    }
}

/// A Confirmation Code as received (section 4.7). Its `Debug` never shows the value; the
/// SM-DP+ only stores `SHA256(confirmationCode)`.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ConfirmationCode(String);

impl ConfirmationCode {
    /// Wraps a code.
    pub fn new(code: impl Into<String>) -> Self {
        Self(code.into())
    }

    /// The code (handle with care: never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ConfirmationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConfirmationCode(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for ConfirmationCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = bounded_string(d, limits::CONFIRMATION_CODE, "confirmationCode")?;
        if s.is_empty() {
            return Err(D::Error::custom("confirmationCode is empty"));
        }
        Ok(Self(s))
    }
}

fn de_header_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = bounded_string(d, limits::HEADER_STRING, "header member")?;
    if s.is_empty() {
        return Err(D::Error::custom("header member is empty"));
    }
    Ok(s)
}

fn de_opt_profile_type<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = bounded_string(d, limits::PROFILE_TYPE, "profileType")?;
    if s.is_empty() {
        return Err(D::Error::custom("profileType is empty"));
    }
    Ok(Some(s))
}

pub(crate) fn de_opt_matching_id<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    // The length bound is checked in `validate` (code 8.2.6/2.1), not here.
    let s = bounded_string(d, 4 * limits::MATCHING_ID, "matchingId")?;
    Ok(Some(s))
}

fn de_opt_smds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = bounded_string(d, limits::SMDS_ADDRESS, "smdsAddress")?;
    crate::activation_code::validate_address(&s)
        .map_err(|_| D::Error::custom("smdsAddress is not an FQDN[:port]"))?;
    Ok(Some(s))
}

/// Checks a MatchingID supplied by an operator: `0-9 A-Z -` (section 4.1.1), at most
/// [`limits::MATCHING_ID`] characters; empty is allowed.
pub fn validate_matching_id(m: &str) -> Result<(), Es2Error> {
    if m.len() > limits::MATCHING_ID {
        return Err(Es2Error::new(
            MATCHING_ID_INVALID,
            format!(
                "matchingId is longer than {} characters",
                limits::MATCHING_ID
            ),
        ));
    }
    crate::activation_code::validate_matching_id(m).map_err(|_| {
        Es2Error::new(
            MATCHING_ID_INVALID,
            "matchingId may only contain 0-9, A-Z and '-' (section 4.1.1)",
        )
    })
}

fn check_eid(eid: Option<&Eid>) -> Result<(), Es2Error> {
    match eid {
        Some(e) if !e.check_digits_ok() => {
            Err(Es2Error::new(EID_INVALID, "the EID check digits are wrong"))
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Header and requests

/// The ES2+ request `header` (section 6.5.1.3); both members are mandatory on ES2+.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Es2RequestHeader {
    /// `functionRequesterIdentifier`: who calls (checked against the client certificate).
    #[serde(deserialize_with = "de_header_string")]
    pub function_requester_identifier: String,
    /// `functionCallIdentifier`: identifies the call; a repeated value (per operator) is a
    /// replay.
    #[serde(deserialize_with = "de_header_string")]
    pub function_call_identifier: String,
}

/// What every ES2+ request type provides to the transport layer.
pub trait Es2Request: Serialize + DeserializeOwned + Send + fmt::Debug + 'static {
    /// The function.
    const FUNCTION: Es2Function;
    /// Mandatory body members (besides `header`).
    const REQUIRED_FIELDS: &'static [&'static str];
    /// The request header.
    fn header(&self) -> &Es2RequestHeader;
    /// Checks beyond the JSON schema (EID check digits, MatchingID alphabet, conditional
    /// members).
    fn validate(&self) -> Result<(), Es2Error>;
    /// Wraps the request into an [`Es2Call`].
    fn into_call(self) -> Es2Call;
}

/// `ES2+.DownloadOrder` request (sections 5.3.1, 6.5.2.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadOrderRequest {
    /// Request header.
    pub header: Es2RequestHeader,
    /// Target eUICC, optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<Eid>,
    /// The profile to reserve (conditional: this and/or `profileType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iccid: Option<Iccid>,
    /// The profile type to pick from (conditional).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_profile_type"
    )]
    pub profile_type: Option<String>,
}

impl Es2Request for DownloadOrderRequest {
    const FUNCTION: Es2Function = Es2Function::DownloadOrder;
    const REQUIRED_FIELDS: &'static [&'static str] = &[];
    fn header(&self) -> &Es2RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), Es2Error> {
        check_eid(self.eid.as_ref())?;
        // Table 22: iccid and profileType are both "C"; the NOTE says the operator provides
        // the ICCID and/or the Profile Type.
        if self.iccid.is_none() && self.profile_type.is_none() {
            return Err(Es2Error::new(
                PROTOCOL_FORMAT_CONDITIONAL_ELEMENT_MISSING,
                "iccid or profileType is required",
            ));
        }
        Ok(())
    }
    fn into_call(self) -> Es2Call {
        Es2Call::DownloadOrder(self)
    }
}

/// `ES2+.DownloadOrder` response body (Table 23).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadOrderResponse {
    /// The reserved profile.
    pub iccid: Iccid,
}

/// `ES2+.ConfirmOrder` request (sections 5.3.2, 6.5.2.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmOrderRequest {
    /// Request header.
    pub header: Es2RequestHeader,
    /// The ordered profile.
    pub iccid: Iccid,
    /// Target eUICC, optional (mandatory for the default SM-DP+ / SM-DS cases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<Eid>,
    /// MatchingID chosen by the operator; generated when absent. Empty: no MatchingID
    /// (default SM-DP+).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_matching_id"
    )]
    pub matching_id: Option<String>,
    /// Confirmation Code; only its SHA-256 is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_code: Option<ConfirmationCode>,
    /// SM-DS for Event Registration.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_smds"
    )]
    pub smds_address: Option<String>,
    /// Release immediately.
    pub release_flag: bool,
}

impl Es2Request for ConfirmOrderRequest {
    const FUNCTION: Es2Function = Es2Function::ConfirmOrder;
    const REQUIRED_FIELDS: &'static [&'static str] = &["iccid", "releaseFlag"];
    fn header(&self) -> &Es2RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), Es2Error> {
        check_eid(self.eid.as_ref())?;
        if let Some(m) = &self.matching_id {
            validate_matching_id(m)?;
            // Section 5.3.2: "If SM-DS address is provided: Verify that the MatchingID is not
            // a zero length value."
            if m.is_empty() && self.smds_address.is_some() {
                return Err(Es2Error::new(
                    MATCHING_ID_INVALID,
                    "matchingId must not be empty when smdsAddress is given",
                ));
            }
        }
        Ok(())
    }
    fn into_call(self) -> Es2Call {
        Es2Call::ConfirmOrder(self)
    }
}

/// `ES2+.ConfirmOrder` response body (Table 26).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmOrderResponse {
    /// The EID bound to the order, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<Eid>,
    /// The MatchingID (empty for a default SM-DP+ order).
    pub matching_id: String,
    /// The SM-DP+ address to put in the Activation Code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smdp_address: Option<String>,
}

/// Final Profile Status Indicator of CancelOrder (Table 29).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FinalProfileStatusIndicator {
    /// Return the profile to the inventory.
    Available,
    /// Retire the profile.
    Unavailable,
}

/// `ES2+.CancelOrder` request (sections 5.3.3, 6.5.2.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelOrderRequest {
    /// Request header.
    pub header: Es2RequestHeader,
    /// The ordered profile.
    pub iccid: Iccid,
    /// EID of the order (conditional: when one is associated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<Eid>,
    /// MatchingID of the order (conditional: when one is allocated).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_matching_id"
    )]
    pub matching_id: Option<String>,
    /// What becomes of the profile (Table 28: mandatory).
    pub final_profile_status_indicator: FinalProfileStatusIndicator,
}

impl Es2Request for CancelOrderRequest {
    const FUNCTION: Es2Function = Es2Function::CancelOrder;
    // Table 28 marks finalProfileStatusIndicator "M" (the 6.5.2.3 schema only lists iccid).
    const REQUIRED_FIELDS: &'static [&'static str] = &["iccid", "finalProfileStatusIndicator"];
    fn header(&self) -> &Es2RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), Es2Error> {
        check_eid(self.eid.as_ref())?;
        if let Some(m) = &self.matching_id {
            validate_matching_id(m)?;
        }
        Ok(())
    }
    fn into_call(self) -> Es2Call {
        Es2Call::CancelOrder(self)
    }
}

/// `ES2+.ReleaseProfile` request (sections 5.3.4, 6.5.2.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseProfileRequest {
    /// Request header.
    pub header: Es2RequestHeader,
    /// The profile to release.
    pub iccid: Iccid,
}

impl Es2Request for ReleaseProfileRequest {
    const FUNCTION: Es2Function = Es2Function::ReleaseProfile;
    const REQUIRED_FIELDS: &'static [&'static str] = &["iccid"];
    fn header(&self) -> &Es2RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), Es2Error> {
        Ok(())
    }
    fn into_call(self) -> Es2Call {
        Es2Call::ReleaseProfile(self)
    }
}

/// Any ES2+ request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Es2Call {
    /// DownloadOrder.
    DownloadOrder(DownloadOrderRequest),
    /// ConfirmOrder.
    ConfirmOrder(ConfirmOrderRequest),
    /// CancelOrder.
    CancelOrder(CancelOrderRequest),
    /// ReleaseProfile.
    ReleaseProfile(ReleaseProfileRequest),
    /// RpmOrder.
    RpmOrder(crate::rpm_json::RpmOrderRequest),
    /// DeactivateSubscription.
    DeactivateSubscription(crate::rpm_json::DeactivateRequest),
}

impl Es2Call {
    /// The function.
    pub fn function(&self) -> Es2Function {
        match self {
            Self::DownloadOrder(_) => Es2Function::DownloadOrder,
            Self::ConfirmOrder(_) => Es2Function::ConfirmOrder,
            Self::CancelOrder(_) => Es2Function::CancelOrder,
            Self::ReleaseProfile(_) => Es2Function::ReleaseProfile,
            Self::RpmOrder(_) => Es2Function::RpmOrder,
            Self::DeactivateSubscription(_) => Es2Function::DeactivateSubscription,
        }
    }

    /// The request header.
    pub fn header(&self) -> &Es2RequestHeader {
        match self {
            Self::DownloadOrder(r) => &r.header,
            Self::ConfirmOrder(r) => &r.header,
            Self::CancelOrder(r) => &r.header,
            Self::ReleaseProfile(r) => &r.header,
            Self::RpmOrder(r) => &r.header,
            Self::DeactivateSubscription(r) => &r.header,
        }
    }

    /// SHA-256 over the function name and the request body without its header, in our
    /// canonical serialization (fields in declaration order, normalised ICCID): two requests
    /// with equal digests ask for the same thing. Used to tell a replay of a
    /// functionCallIdentifier from a reuse for a different request.
    pub fn digest(&self) -> [u8; 32] {
        fn body<T: Serialize>(r: &T) -> Vec<u8> {
            let mut v = serde_json::to_value(r).unwrap_or(serde_json::Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.remove("header");
            }
            serde_json::to_vec(&v).unwrap_or_default()
        }
        let mut data = self.function().name().as_bytes().to_vec();
        data.push(0);
        data.extend(match self {
            Self::DownloadOrder(r) => body(r),
            Self::ConfirmOrder(r) => body(r),
            Self::CancelOrder(r) => body(r),
            Self::ReleaseProfile(r) => body(r),
            Self::RpmOrder(r) => body(r),
            Self::DeactivateSubscription(r) => body(r),
        });
        Sha256::digest(&data).into()
    }
}

/// Parses and checks an ES2+ request body.
///
/// Errors: not JSON / not an object / wrong member type / value out of bounds `1.3.1/2.1`;
/// `header` or one of its members or a mandatory body member absent `1.3.1/2.2`; then the
/// [`Es2Request::validate`] codes.
pub fn parse_es2_request<T: Es2Request>(body: &[u8]) -> Result<T, Es2Error> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        Es2Error::new(
            PROTOCOL_FORMAT_INVALID,
            format!(
                "request body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    let Some(object) = value.as_object() else {
        return Err(Es2Error::new(
            PROTOCOL_FORMAT_INVALID,
            "request body is not a JSON object",
        ));
    };
    let missing = |what: &str| {
        Es2Error::new(
            PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING,
            format!("mandatory element '{what}' is missing"),
        )
    };
    let header = match object.get("header") {
        None | Some(serde_json::Value::Null) => return Err(missing("header")),
        Some(h) => h,
    };
    let Some(header) = header.as_object() else {
        return Err(Es2Error::new(
            PROTOCOL_FORMAT_INVALID,
            "header is not a JSON object",
        ));
    };
    for field in ["functionRequesterIdentifier", "functionCallIdentifier"] {
        if header.get(field).is_none_or(serde_json::Value::is_null) {
            return Err(missing(&format!("header.{field}")));
        }
    }
    for field in T::REQUIRED_FIELDS {
        if object.get(*field).is_none_or(serde_json::Value::is_null) {
            return Err(missing(field));
        }
    }
    let request = T::deserialize(value).map_err(|e| {
        Es2Error::new(
            PROTOCOL_FORMAT_INVALID,
            format!("invalid {} request: {e}", T::FUNCTION.name()),
        )
    })?;
    request.validate()?;
    Ok(request)
}

/// Parses a request for `function` into an [`Es2Call`].
pub fn parse_es2_call(function: Es2Function, body: &[u8]) -> Result<Es2Call, Es2Error> {
    Ok(match function {
        Es2Function::DownloadOrder => parse_es2_request::<DownloadOrderRequest>(body)?.into_call(),
        Es2Function::ConfirmOrder => parse_es2_request::<ConfirmOrderRequest>(body)?.into_call(),
        Es2Function::CancelOrder => parse_es2_request::<CancelOrderRequest>(body)?.into_call(),
        Es2Function::ReleaseProfile => {
            parse_es2_request::<ReleaseProfileRequest>(body)?.into_call()
        }
        Es2Function::RpmOrder => {
            parse_es2_request::<crate::rpm_json::RpmOrderRequest>(body)?.into_call()
        }
        Es2Function::DeactivateSubscription => {
            parse_es2_request::<crate::rpm_json::DeactivateRequest>(body)?.into_call()
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::status::StatusCode;

    const EID: &str = "89049032123451234512345678901235";

    fn valid_eid() -> String {
        // Complete 30 digits with the MOD 97-10 check digits.
        let base = &EID[..30];
        let rem = format!("{base}00")
            .bytes()
            .fold(0u32, |acc, b| (acc * 10 + u32::from(b - b'0')) % 97);
        format!("{base}{:02}", 98 - rem)
    }

    fn code<T: Es2Request>(body: &str) -> StatusCode {
        parse_es2_request::<T>(body.as_bytes()).unwrap_err().code
    }

    const H: &str =
        r#""header":{"functionRequesterIdentifier":"op1","functionCallIdentifier":"c1"}"#;

    #[test]
    fn golden_download_order() {
        let eid = valid_eid();
        let body =
            format!(r#"{{{H},"eid":"{eid}","iccid":"8949449999999990023F","profileType":"T1"}}"#);
        let r: DownloadOrderRequest = parse_es2_request(body.as_bytes()).unwrap();
        assert_eq!(r.iccid.as_ref().unwrap().as_str(), "8949449999999990023");
        assert_eq!(r.header.function_call_identifier, "c1");
        let resp = ResponseMessage::success(DownloadOrderResponse {
            iccid: r.iccid.clone().unwrap(),
        });
        assert_eq!(
            serde_json::to_string(&resp).unwrap(),
            r#"{"header":{"functionExecutionStatus":{"status":"Executed-Success"}},"iccid":"8949449999999990023"}"#
        );
    }

    #[test]
    fn iccid_forms() {
        assert!(Iccid::parse("8949449999999990023").is_some());
        assert!(Iccid::parse("89494499999999900231").is_some());
        assert!(Iccid::parse("8949449999999990023F").is_some());
        for bad in [
            "894944999999999002",
            "894944999999999002F",
            "89494499999999900231F",
            "8949449999999990023f",
            "894944999999999002A",
            "",
        ] {
            assert!(Iccid::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn eid_check_digits() {
        assert!(eid_check_digits_ok(&valid_eid()));
        let mut bad = valid_eid();
        bad.replace_range(31..32, if bad.ends_with('0') { "1" } else { "0" });
        assert!(!eid_check_digits_ok(&bad));
    }

    #[test]
    fn rejects_malformed_json() {
        assert_eq!(code::<ReleaseProfileRequest>("{"), PROTOCOL_FORMAT_INVALID);
        assert_eq!(code::<ReleaseProfileRequest>("[]"), PROTOCOL_FORMAT_INVALID);
    }

    #[test]
    fn rejects_missing_header() {
        assert_eq!(
            code::<ReleaseProfileRequest>(r#"{"iccid":"8949449999999990023"}"#),
            PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING
        );
        assert_eq!(
            code::<ReleaseProfileRequest>(
                r#"{"header":{"functionRequesterIdentifier":"x"},"iccid":"8949449999999990023"}"#
            ),
            PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING
        );
        assert_eq!(
            code::<ReleaseProfileRequest>(
                r#"{"header":{"functionRequesterIdentifier":"","functionCallIdentifier":"a"},"iccid":"8949449999999990023"}"#
            ),
            PROTOCOL_FORMAT_INVALID
        );
    }

    #[test]
    fn rejects_bad_iccid() {
        for bad in [
            "123",
            "89494499999999900A3",
            "8949449999999990023FF",
            "\u{0661}",
        ] {
            let body = format!(r#"{{{H},"iccid":"{bad}"}}"#);
            assert_eq!(
                code::<ReleaseProfileRequest>(&body),
                PROTOCOL_FORMAT_INVALID
            );
        }
        assert_eq!(
            code::<ReleaseProfileRequest>(&format!(r#"{{{H},"iccid":12}}"#)),
            PROTOCOL_FORMAT_INVALID
        );
    }

    #[test]
    fn rejects_bad_eid() {
        let body = format!(r#"{{{H},"eid":"1234","profileType":"T"}}"#);
        assert_eq!(code::<DownloadOrderRequest>(&body), PROTOCOL_FORMAT_INVALID);
        let mut bad = valid_eid();
        bad.replace_range(31..32, if bad.ends_with('0') { "1" } else { "0" });
        let body = format!(r#"{{{H},"eid":"{bad}","profileType":"T"}}"#);
        assert_eq!(code::<DownloadOrderRequest>(&body), EID_INVALID);
    }

    #[test]
    fn rejects_bad_matching_id_alphabet() {
        for bad in ["abc", "A B", "A_B", "ÄB"] {
            let body = format!(
                r#"{{{H},"iccid":"8949449999999990023","matchingId":"{bad}","releaseFlag":true}}"#
            );
            assert_eq!(
                code::<ConfirmOrderRequest>(&body),
                MATCHING_ID_INVALID,
                "{bad}"
            );
        }
        let long = "A".repeat(limits::MATCHING_ID + 1);
        let body = format!(
            r#"{{{H},"iccid":"8949449999999990023","matchingId":"{long}","releaseFlag":true}}"#
        );
        assert_eq!(code::<ConfirmOrderRequest>(&body), MATCHING_ID_INVALID);
        let body = format!(
            r#"{{{H},"iccid":"8949449999999990023","matchingId":"","smdsAddress":"smds.example.com","releaseFlag":true}}"#
        );
        assert_eq!(code::<ConfirmOrderRequest>(&body), MATCHING_ID_INVALID);
    }

    #[test]
    fn rejects_oversized_fields() {
        let long = "x".repeat(limits::HEADER_STRING + 1);
        let body = format!(
            r#"{{"header":{{"functionRequesterIdentifier":"a","functionCallIdentifier":"{long}"}},"iccid":"8949449999999990023"}}"#
        );
        assert_eq!(
            code::<ReleaseProfileRequest>(&body),
            PROTOCOL_FORMAT_INVALID
        );
        let long = "x".repeat(limits::PROFILE_TYPE + 1);
        let body = format!(r#"{{{H},"profileType":"{long}"}}"#);
        assert_eq!(code::<DownloadOrderRequest>(&body), PROTOCOL_FORMAT_INVALID);
        let long = "1".repeat(limits::CONFIRMATION_CODE + 1);
        let body = format!(
            r#"{{{H},"iccid":"8949449999999990023","confirmationCode":"{long}","releaseFlag":true}}"#
        );
        assert_eq!(code::<ConfirmOrderRequest>(&body), PROTOCOL_FORMAT_INVALID);
    }

    #[test]
    fn rejects_missing_mandatory_members() {
        assert_eq!(
            code::<ConfirmOrderRequest>(&format!(r#"{{{H},"iccid":"8949449999999990023"}}"#)),
            PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING
        );
        assert_eq!(
            code::<CancelOrderRequest>(&format!(r#"{{{H},"iccid":"8949449999999990023"}}"#)),
            PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING
        );
        assert_eq!(
            code::<CancelOrderRequest>(&format!(
                r#"{{{H},"iccid":"8949449999999990023","finalProfileStatusIndicator":"Gone"}}"#
            )),
            PROTOCOL_FORMAT_INVALID
        );
        assert_eq!(
            code::<DownloadOrderRequest>(&format!(r#"{{{H}}}"#)),
            PROTOCOL_FORMAT_CONDITIONAL_ELEMENT_MISSING
        );
    }

    #[test]
    fn confirmation_code_is_redacted() {
        let body = format!(
            r#"{{{H},"iccid":"8949449999999990023","confirmationCode":"SECRET1234","releaseFlag":false}}"#
        );
        let r: ConfirmOrderRequest = parse_es2_request(body.as_bytes()).unwrap();
        assert!(!format!("{r:?}").contains("SECRET1234"));
        assert_eq!(r.confirmation_code.unwrap().expose(), "SECRET1234");
    }

    #[test]
    fn digest_ignores_header_and_f_padding() {
        let a = parse_es2_call(
            Es2Function::ReleaseProfile,
            format!(r#"{{{H},"iccid":"8949449999999990023F"}}"#).as_bytes(),
        )
        .unwrap();
        let b = parse_es2_call(
            Es2Function::ReleaseProfile,
            br#"{"header":{"functionRequesterIdentifier":"op1","functionCallIdentifier":"zz"},"iccid":"8949449999999990023"}"#,
        )
        .unwrap();
        assert_eq!(a.digest(), b.digest());
        let c = parse_es2_call(
            Es2Function::ReleaseProfile,
            format!(r#"{{{H},"iccid":"8949449999999990024"}}"#).as_bytes(),
        )
        .unwrap();
        assert_ne!(a.digest(), c.digest());
    }
}
