//! ES9+ JSON request and response bodies (SGP.22 section 6.5.2).
//!
//! These types serve both sides: the SM-DP+ deserializes requests and serializes responses, an
//! LPA does the opposite. Field names are exactly those of SGP.22 v2.2 sections 6.5.2.6-6.5.2.10
//! (and what lpac sends).
//!
//! Wire rules implemented here:
//! - Binary fields are standard base64 (RFC 4648 alphabet `+/`). On input, ASCII whitespace
//!   (space, tab, CR, LF) anywhere in the value is ignored and padding is optional; trailing
//!   non-zero bits are refused. Output is padded standard base64 without whitespace.
//! - Every binary field has a decoded size bound (see [`limits`]); a value outside it is refused
//!   before it is decoded.
//! - `transactionId` is the hexadecimal representation of 1 to 16 bytes (pattern
//!   `^[0-9A-F]{2,32}$`); we accept either case and an even number of digits, and always write
//!   upper case. See [`TransactionId`].
//! - Requests may carry the `header` object of section 6.5.1.3 (`functionRequesterIdentifier`,
//!   `functionCallIdentifier`), although section 6.5.1.1 says ES9+ messages do not; it is
//!   accepted and kept, never required. Unknown request fields are ignored.
//! - Responses are `{"header":{"functionExecutionStatus":{...}}, ...body fields}`, see
//!   [`ResponseMessage`]. A failed response has no body fields.
//!
//! [`parse_request`] is the server-side entry point: it maps malformed input to the status codes
//! documented in [`crate::status`] (`1.3.1/2.1` invalid, `1.3.1/2.2` mandatory element missing).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::status::{
    Es9Error, FunctionExecutionStatus, PROTOCOL_FORMAT_INVALID,
    PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING,
};

/// Decoded size bounds (bytes) of the binary fields, and length bounds of the string fields.
///
/// The request bounds are generous multiples of what a real eUICC produces; the response
/// bounds protect an LPA from a hostile server.
pub mod limits {
    /// `euiccChallenge`: exactly 16 bytes (Table 35: Binary\[16\]).
    pub const EUICC_CHALLENGE: usize = 16;
    /// `euiccInfo1` (EUICCInfo1 TLV: SVN and two lists of CI key identifiers).
    pub const EUICC_INFO1: usize = 2 * 1024;
    /// `smdpAddress` in characters: a 253-character FQDN plus `:65535`, rounded up.
    pub const SMDP_ADDRESS: usize = 261;
    /// `authenticateServerResponse` (two certificates, EUICCInfo2, ctxParams1, signature).
    pub const AUTHENTICATE_SERVER_RESPONSE: usize = 32 * 1024;
    /// `prepareDownloadResponse`.
    pub const PREPARE_DOWNLOAD_RESPONSE: usize = 4 * 1024;
    /// `pendingNotification` (may hold two certificates).
    pub const PENDING_NOTIFICATION: usize = 32 * 1024;
    /// `cancelSessionResponse`.
    pub const CANCEL_SESSION_RESPONSE: usize = 4 * 1024;
    /// `serverSigned1`, `smdpSigned2`.
    pub const SIGNED_DATA: usize = 4 * 1024;
    /// `serverSignature1`, `smdpSignature2` (a `5F37` TLV of 64 bytes for P-256).
    pub const SIGNATURE: usize = 512;
    /// `euiccCiPKIdToBeUsed` (an `04` TLV of a 20-byte key identifier).
    pub const CI_PKID: usize = 256;
    /// `serverCertificate`, `smdpCertificate`.
    pub const CERTIFICATE: usize = 8 * 1024;
    /// `profileMetadata` (StoreMetadataRequest, may hold an icon).
    pub const PROFILE_METADATA: usize = 64 * 1024;
    /// `boundProfilePackage`.
    pub const BOUND_PROFILE_PACKAGE: usize = 4 * 1024 * 1024;
    /// Each string of the optional request `header`.
    pub const HEADER_STRING: usize = 1024;
}

// ---------------------------------------------------------------------------------------------
// Functions

/// The five ES9+ functions (section 6.5.2, Table 57).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Es9Function {
    /// `ES9+.InitiateAuthentication`.
    InitiateAuthentication,
    /// `ES9+.AuthenticateClient`.
    AuthenticateClient,
    /// `ES9+.GetBoundProfilePackage`.
    GetBoundProfilePackage,
    /// `ES9+.HandleNotification` (MEP Notification: 204 No Content on success).
    HandleNotification,
    /// `ES9+.CancelSession`.
    CancelSession,
}

impl Es9Function {
    /// All functions, in Table 57 order.
    pub const ALL: [Self; 5] = [
        Self::InitiateAuthentication,
        Self::AuthenticateClient,
        Self::GetBoundProfilePackage,
        Self::HandleNotification,
        Self::CancelSession,
    ];

    /// The HTTP path (Table 57), e.g. `/gsma/rsp2/es9plus/initiateAuthentication`.
    pub const fn path(self) -> &'static str {
        match self {
            Self::InitiateAuthentication => "/gsma/rsp2/es9plus/initiateAuthentication",
            Self::AuthenticateClient => "/gsma/rsp2/es9plus/authenticateClient",
            Self::GetBoundProfilePackage => "/gsma/rsp2/es9plus/getBoundProfilePackage",
            Self::HandleNotification => "/gsma/rsp2/es9plus/handleNotification",
            Self::CancelSession => "/gsma/rsp2/es9plus/cancelSession",
        }
    }

    /// The function name as in the specification, e.g. `InitiateAuthentication`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::InitiateAuthentication => "InitiateAuthentication",
            Self::AuthenticateClient => "AuthenticateClient",
            Self::GetBoundProfilePackage => "GetBoundProfilePackage",
            Self::HandleNotification => "HandleNotification",
            Self::CancelSession => "CancelSession",
        }
    }

    /// Whether the function uses the Notification MEP (empty body, HTTP 204) rather than
    /// synchronous request-response (section 6.2, 6.3).
    pub const fn is_notification(self) -> bool {
        matches!(self, Self::HandleNotification)
    }
}

impl fmt::Display for Es9Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ES9+.{}", self.name())
    }
}

// ---------------------------------------------------------------------------------------------
// TransactionId

/// An RSP session TransactionID: 1 to 16 bytes (section 3.1.1.4), written on ES9+ as upper-case
/// hexadecimal (pattern `^[0-9A-F]{2,32}$`).
///
/// Parsing accepts lower case too (an LPA echoes what it was given, but be lenient); an odd
/// number of digits is refused.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(Vec<u8>);

/// Why a TransactionID was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidTransactionId {
    /// Not 1 to 16 bytes (2 to 32 hex digits).
    #[error("transactionId must be 1 to 16 bytes (2 to 32 hex digits)")]
    Length,
    /// Not hexadecimal, or an odd number of digits.
    #[error("transactionId must be an even number of hexadecimal digits")]
    NotHex,
}

impl TransactionId {
    /// Maximum length in bytes.
    pub const MAX_LEN: usize = 16;

    /// From raw bytes (1 to 16).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidTransactionId> {
        if bytes.is_empty() || bytes.len() > Self::MAX_LEN {
            return Err(InvalidTransactionId::Length);
        }
        Ok(Self(bytes.to_vec()))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Upper-case hexadecimal, as sent on ES9+.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
        let mut out = String::with_capacity(self.0.len() * 2);
        for b in &self.0 {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
        out
    }
}

impl FromStr for TransactionId {
    type Err = InvalidTransactionId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() < 2 || s.len() > 2 * Self::MAX_LEN {
            return Err(InvalidTransactionId::Length);
        }
        if !s.len().is_multiple_of(2) {
            return Err(InvalidTransactionId::NotHex);
        }
        fn nibble(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            }
        }
        s.as_bytes()
            .chunks_exact(2)
            .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
            .collect::<Option<Vec<u8>>>()
            .map(Self)
            .ok_or(InvalidTransactionId::NotHex)
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransactionId({})", self.to_hex())
    }
}

impl Serialize for TransactionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for TransactionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = bounded_string::<_, 64>(deserializer)?;
        s.parse().map_err(D::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// base64 helpers

/// Why a base64 field was refused. The text never contains the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Base64FieldError {
    /// The encoded value is longer than the bound allows.
    #[error("base64 value too long: at most {max} decoded bytes allowed")]
    TooLong {
        /// The bound in decoded bytes.
        max: usize,
    },
    /// The decoded value has the wrong size.
    #[error("decoded value is {len} bytes; {min} to {max} allowed")]
    BadLength {
        /// Decoded length.
        len: usize,
        /// Minimum.
        min: usize,
        /// Maximum.
        max: usize,
    },
    /// Not valid standard base64.
    #[error("invalid base64")]
    Invalid,
}

const B64_STANDARD: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64_LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Encodes as padded standard base64.
pub fn encode_base64(bytes: &[u8]) -> String {
    B64_STANDARD.encode(bytes)
}

/// Decodes standard base64, ignoring ASCII whitespace, padding optional, and checks that the
/// result is `min..=max` bytes. Oversized input is refused before decoding.
pub fn decode_base64_bounded(
    text: &str,
    min: usize,
    max: usize,
) -> Result<Vec<u8>, Base64FieldError> {
    let max_encoded = max.div_ceil(3).saturating_mul(4);
    let mut compact = Vec::with_capacity(text.len().min(max_encoded));
    for b in text.bytes() {
        if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            continue;
        }
        if compact.len() == max_encoded {
            return Err(Base64FieldError::TooLong { max });
        }
        compact.push(b);
    }
    let decoded = B64_LENIENT
        .decode(&compact)
        .map_err(|_| Base64FieldError::Invalid)?;
    if decoded.len() < min || decoded.len() > max {
        return Err(Base64FieldError::BadLength {
            len: decoded.len(),
            min,
            max,
        });
    }
    Ok(decoded)
}

/// Deserializes a string of at most `MAX` bytes (UTF-8) without echoing it in errors.
fn bounded_string<'de, D: Deserializer<'de>, const MAX: usize>(
    deserializer: D,
) -> Result<String, D::Error> {
    let s = String::deserialize(deserializer)?;
    if s.len() > MAX {
        return Err(D::Error::custom(format_args!(
            "string too long: at most {MAX} bytes allowed"
        )));
    }
    Ok(s)
}

/// Serde helpers for base64 `Vec<u8>` fields; used through `serialize_with`/`deserialize_with`.
pub mod b64 {
    use super::*;

    /// Serializes bytes as padded standard base64.
    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&encode_base64(bytes))
    }

    /// Deserializes a base64 string into `MIN..=MAX` bytes (see [`decode_base64_bounded`]).
    pub fn deserialize<'de, const MIN: usize, const MAX: usize, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        // The encoded text may carry whitespace; allow generously for it, the body size limit
        // of the transport bounds it anyway.
        let s = String::deserialize(deserializer)?;
        decode_base64_bounded(&s, MIN, MAX).map_err(D::Error::custom)
    }
}

fn deserialize_smdp_address<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    bounded_string::<_, { limits::SMDP_ADDRESS }>(d)
}

fn deserialize_header_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| {
            if s.len() > limits::HEADER_STRING {
                Err(D::Error::custom("header string too long"))
            } else {
                Ok(s)
            }
        })
        .transpose()
}

// ---------------------------------------------------------------------------------------------
// Request header and requests

/// The optional `header` of a request (section 6.5.1.3). Not sent by LPAs on ES9+ (6.5.1.1);
/// accepted, kept, and otherwise ignored. Both members are optional here to be tolerant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestHeader {
    /// `functionRequesterIdentifier`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_header_string"
    )]
    pub function_requester_identifier: Option<String>,
    /// `functionCallIdentifier`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_header_string"
    )]
    pub function_call_identifier: Option<String>,
}

/// What every ES9+ request type provides to the transport layer.
pub trait Es9Request: Serialize + DeserializeOwned + Send + 'static {
    /// The function this request is for.
    const FUNCTION: Es9Function;
    /// The JSON members the schema marks `required`.
    const REQUIRED_FIELDS: &'static [&'static str];
    /// The request's transactionId, if the function has one.
    fn transaction_id(&self) -> Option<&TransactionId>;
}

/// `ES9+.InitiateAuthentication` request body (section 6.5.2.6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitiateAuthenticationRequest {
    /// Optional request header (not used on ES9+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeader>,
    /// `euiccChallenge`: 16 random bytes from the eUICC.
    #[serde(
        rename = "euiccChallenge",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<{ limits::EUICC_CHALLENGE }, { limits::EUICC_CHALLENGE }, _>"
    )]
    pub euicc_challenge: Vec<u8>,
    /// `euiccInfo1`: the encoded EUICCInfo1 data object (tag `BF20`).
    #[serde(
        rename = "euiccInfo1",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<1, { limits::EUICC_INFO1 }, _>"
    )]
    pub euicc_info1: Vec<u8>,
    /// `smdpAddress`: the SM-DP+ address as known by the LPA (may include `:port`).
    #[serde(rename = "smdpAddress", deserialize_with = "deserialize_smdp_address")]
    pub smdp_address: String,
}

impl Es9Request for InitiateAuthenticationRequest {
    const FUNCTION: Es9Function = Es9Function::InitiateAuthentication;
    const REQUIRED_FIELDS: &'static [&'static str] =
        &["euiccChallenge", "euiccInfo1", "smdpAddress"];
    fn transaction_id(&self) -> Option<&TransactionId> {
        None
    }
}

/// `ES9+.AuthenticateClient` request body (section 6.5.2.8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticateClientRequest {
    /// Optional request header (not used on ES9+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeader>,
    /// `transactionId`.
    #[serde(rename = "transactionId")]
    pub transaction_id: TransactionId,
    /// `authenticateServerResponse`: the encoded AuthenticateServerResponse (tag `BF38`).
    #[serde(
        rename = "authenticateServerResponse",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<1, { limits::AUTHENTICATE_SERVER_RESPONSE }, _>"
    )]
    pub authenticate_server_response: Vec<u8>,
}

impl Es9Request for AuthenticateClientRequest {
    const FUNCTION: Es9Function = Es9Function::AuthenticateClient;
    const REQUIRED_FIELDS: &'static [&'static str] =
        &["transactionId", "authenticateServerResponse"];
    fn transaction_id(&self) -> Option<&TransactionId> {
        Some(&self.transaction_id)
    }
}

/// `ES9+.GetBoundProfilePackage` request body (section 6.5.2.7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetBoundProfilePackageRequest {
    /// Optional request header (not used on ES9+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeader>,
    /// `transactionId`.
    #[serde(rename = "transactionId")]
    pub transaction_id: TransactionId,
    /// `prepareDownloadResponse`: the encoded PrepareDownloadResponse (tag `BF21`).
    #[serde(
        rename = "prepareDownloadResponse",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<1, { limits::PREPARE_DOWNLOAD_RESPONSE }, _>"
    )]
    pub prepare_download_response: Vec<u8>,
}

impl Es9Request for GetBoundProfilePackageRequest {
    const FUNCTION: Es9Function = Es9Function::GetBoundProfilePackage;
    const REQUIRED_FIELDS: &'static [&'static str] = &["transactionId", "prepareDownloadResponse"];
    fn transaction_id(&self) -> Option<&TransactionId> {
        Some(&self.transaction_id)
    }
}

/// `ES9+.HandleNotification` request body (section 6.5.2.9).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandleNotificationRequest {
    /// Optional request header (not used on ES9+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeader>,
    /// `pendingNotification`: the encoded PendingNotification (`BF37` PIR or `30`
    /// OtherSignedNotification).
    #[serde(
        rename = "pendingNotification",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<1, { limits::PENDING_NOTIFICATION }, _>"
    )]
    pub pending_notification: Vec<u8>,
}

impl Es9Request for HandleNotificationRequest {
    const FUNCTION: Es9Function = Es9Function::HandleNotification;
    const REQUIRED_FIELDS: &'static [&'static str] = &["pendingNotification"];
    fn transaction_id(&self) -> Option<&TransactionId> {
        None
    }
}

/// `ES9+.CancelSession` request body (section 6.5.2.10).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelSessionRequest {
    /// Optional request header (not used on ES9+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeader>,
    /// `transactionId`.
    #[serde(rename = "transactionId")]
    pub transaction_id: TransactionId,
    /// `cancelSessionResponse`: the encoded CancelSessionResponse (tag `BF41`).
    #[serde(
        rename = "cancelSessionResponse",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<1, { limits::CANCEL_SESSION_RESPONSE }, _>"
    )]
    pub cancel_session_response: Vec<u8>,
}

impl Es9Request for CancelSessionRequest {
    const FUNCTION: Es9Function = Es9Function::CancelSession;
    const REQUIRED_FIELDS: &'static [&'static str] = &["transactionId", "cancelSessionResponse"];
    fn transaction_id(&self) -> Option<&TransactionId> {
        Some(&self.transaction_id)
    }
}

// ---------------------------------------------------------------------------------------------
// Response bodies

/// `ES9+.InitiateAuthentication` response body (section 6.5.2.6). The four binary members are
/// encoded data objects including their tags (Table 36 note).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitiateAuthenticationResponse {
    /// `transactionId`.
    #[serde(rename = "transactionId")]
    pub transaction_id: TransactionId,
    /// `serverSigned1` (a `30` SEQUENCE).
    #[serde(
        rename = "serverSigned1",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<1, { limits::SIGNED_DATA }, _>"
    )]
    pub server_signed1: Vec<u8>,
    /// `serverSignature1` (a `5F37` TLV).
    #[serde(
        rename = "serverSignature1",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<1, { limits::SIGNATURE }, _>"
    )]
    pub server_signature1: Vec<u8>,
    /// `euiccCiPKIdToBeUsed` (an `04` TLV).
    #[serde(
        rename = "euiccCiPKIdToBeUsed",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<1, { limits::CI_PKID }, _>"
    )]
    pub euicc_ci_pkid_to_be_used: Vec<u8>,
    /// `serverCertificate` (CERT.DPauth.ECDSA, DER).
    #[serde(
        rename = "serverCertificate",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<1, { limits::CERTIFICATE }, _>"
    )]
    pub server_certificate: Vec<u8>,
}

/// `ES9+.AuthenticateClient` response body (section 6.5.2.8). All members are required by the
/// JSON schema (Table 42 marks four of them conditional, present for profile download).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticateClientResponse {
    /// `transactionId`.
    #[serde(rename = "transactionId")]
    pub transaction_id: TransactionId,
    /// `profileMetadata` (StoreMetadataRequest, tag `BF25`).
    #[serde(
        rename = "profileMetadata",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<1, { limits::PROFILE_METADATA }, _>"
    )]
    pub profile_metadata: Vec<u8>,
    /// `smdpSigned2` (a `30` SEQUENCE).
    #[serde(
        rename = "smdpSigned2",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<1, { limits::SIGNED_DATA }, _>"
    )]
    pub smdp_signed2: Vec<u8>,
    /// `smdpSignature2` (a `5F37` TLV).
    #[serde(
        rename = "smdpSignature2",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<1, { limits::SIGNATURE }, _>"
    )]
    pub smdp_signature2: Vec<u8>,
    /// `smdpCertificate` (CERT.DPpb.ECDSA, DER).
    #[serde(
        rename = "smdpCertificate",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<1, { limits::CERTIFICATE }, _>"
    )]
    pub smdp_certificate: Vec<u8>,
}

/// The v3 Remote Profile Management answer of `ES9+.AuthenticateClient`
/// (`authenticateClientOkRpm`, SGP.22 v3; the v3 JSON schema was not available, so the member
/// names follow the ASN.1 and the v2 pattern: base64 of complete TLVs). It carries no
/// certificate: the eUICC verifies smdpSignature3 with the CERT.DPauth.SIG of this session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticateClientRpmResponse {
    /// `transactionId`.
    #[serde(rename = "transactionId")]
    pub transaction_id: TransactionId,
    /// `smdpSigned3` as a `30` SEQUENCE (the form LoadRpmPackage carries and the eUICC
    /// verifies).
    #[serde(
        rename = "smdpSigned3",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<1, { limits::SIGNED_DATA }, _>"
    )]
    pub smdp_signed3: Vec<u8>,
    /// `smdpSignature3` (a `5F37` TLV).
    #[serde(
        rename = "smdpSignature3",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<1, { limits::SIGNATURE }, _>"
    )]
    pub smdp_signature3: Vec<u8>,
}

/// What `ES9+.AuthenticateClient` answers: a profile download (v2 and v3) or, to a v3 LPA
/// that asked for it (`operationType` rpm), a Remote Profile Management package. Untagged in
/// JSON: the members tell them apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AuthenticateClientAnswer {
    /// `authenticateClientOk` (profile download).
    Download(AuthenticateClientResponse),
    /// `authenticateClientOkRpm`.
    Rpm(AuthenticateClientRpmResponse),
}

impl From<AuthenticateClientResponse> for AuthenticateClientAnswer {
    fn from(r: AuthenticateClientResponse) -> Self {
        AuthenticateClientAnswer::Download(r)
    }
}

/// `ES9+.GetBoundProfilePackage` response body (section 6.5.2.7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetBoundProfilePackageResponse {
    /// `transactionId`.
    #[serde(rename = "transactionId")]
    pub transaction_id: TransactionId,
    /// `boundProfilePackage` (tag `BF36`).
    #[serde(
        rename = "boundProfilePackage",
        serialize_with = "b64::serialize",
        deserialize_with = "b64::deserialize::<1, { limits::BOUND_PROFILE_PACKAGE }, _>"
    )]
    pub bound_profile_package: Vec<u8>,
}

/// The empty response body of `ES9+.CancelSession` (section 6.5.2.10: header only) and, for
/// symmetry, of `ES9+.HandleNotification` (which is answered with 204 and no body at all).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyBody {}

// ---------------------------------------------------------------------------------------------
// Response envelope

/// `header` of a response (section 6.5.1.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseHeader {
    /// `functionExecutionStatus`.
    pub function_execution_status: FunctionExecutionStatus,
}

/// A complete response message: `{"header":{...}, ...body}` (section 6.5.1.2).
///
/// `body` is `Some` for an executed function (`Executed-Success`/`Executed-WithWarning`) and
/// `None` otherwise; its members are flattened next to `header`. Deserialization reads the body
/// only when the status says the function was executed, and ignores unknown members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResponseMessage<T> {
    /// The response header.
    pub header: ResponseHeader,
    /// The function's output, when executed.
    #[serde(flatten)]
    pub body: Option<T>,
}

impl<T> ResponseMessage<T> {
    /// An `Executed-Success` response carrying `body`.
    pub fn success(body: T) -> Self {
        Self {
            header: ResponseHeader {
                function_execution_status: FunctionExecutionStatus::success(),
            },
            body: Some(body),
        }
    }

    /// A `Failed` response for `error`, without body.
    pub fn failed(error: &Es9Error) -> Self {
        Self {
            header: ResponseHeader {
                function_execution_status: error.to_execution_status(),
            },
            body: None,
        }
    }

    /// The body if the function was executed, else the error it reported.
    ///
    /// A non-executed status without a valid status code becomes `1.2/4.2`; an executed status
    /// without body (impossible after deserialization) becomes `1.3.1/2.2`.
    pub fn into_result(self) -> Result<T, Es9Error> {
        let status = &self.header.function_execution_status;
        if status.status.is_executed() {
            self.body.ok_or_else(|| {
                Es9Error::new(
                    PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING,
                    "response body missing",
                )
            })
        } else {
            Err(Es9Error::from_execution_status(status).unwrap_or_else(|| {
                Es9Error::new(
                    crate::status::FUNCTION_PROVIDER_EXECUTION_ERROR,
                    "function failed without a status code",
                )
            }))
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for ResponseMessage<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let header = map
            .remove("header")
            .ok_or_else(|| D::Error::missing_field("header"))?;
        let header = ResponseHeader::deserialize(header).map_err(D::Error::custom)?;
        let body = if header.function_execution_status.status.is_executed() {
            Some(T::deserialize(serde_json::Value::Object(map)).map_err(D::Error::custom)?)
        } else {
            None
        };
        Ok(Self { header, body })
    }
}

// ---------------------------------------------------------------------------------------------
// Server-side request parsing

/// Parses a request body, mapping every problem to the status code to report:
///
/// - not JSON, not a JSON object: `1.3.1/2.1` (Protocol Format / Invalid);
/// - a required member absent or `null`: `1.3.1/2.2` (Protocol Format / Mandatory Element
///   Missing), naming the member;
/// - a member of the wrong type, bad base64, bad transactionId, value out of bounds: `1.3.1/2.1`.
///
/// Error messages never contain request values (only member names and bounds), except that a
/// number or boolean given where a string is expected may be quoted by the JSON library.
pub fn parse_request<T: Es9Request>(body: &[u8]) -> Result<T, Es9Error> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        Es9Error::new(
            PROTOCOL_FORMAT_INVALID,
            format!(
                "request body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    let Some(object) = value.as_object() else {
        return Err(Es9Error::new(
            PROTOCOL_FORMAT_INVALID,
            "request body is not a JSON object",
        ));
    };
    for field in T::REQUIRED_FIELDS {
        if object.get(*field).is_none_or(serde_json::Value::is_null) {
            return Err(Es9Error::new(
                PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING,
                format!("mandatory element '{field}' is missing"),
            ));
        }
    }
    T::deserialize(value).map_err(|e| {
        Es9Error::new(
            PROTOCOL_FORMAT_INVALID,
            format!("invalid {} request: {e}", T::FUNCTION.name()),
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::status::{ExecutionStatus, TRANSACTION_ID_UNKNOWN};

    fn code_of<T: Es9Request + fmt::Debug>(body: &str) -> crate::status::StatusCode {
        parse_request::<T>(body.as_bytes()).unwrap_err().code
    }

    #[test]
    fn golden_initiate_authentication_request_from_lpac() {
        // As lpac sends it: flat, unformatted, no header.
        let body = r#"{"smdpAddress":"127.0.0.1:8443","euiccChallenge":"AAECAwQFBgcICQoLDA0ODw==","euiccInfo1":"vyAggQMCAgCiCwQJgfM8v4r7fUjdpQsECYHzPL+K+31I3Q=="}"#;
        let req: InitiateAuthenticationRequest = parse_request(body.as_bytes()).unwrap();
        assert_eq!(req.smdp_address, "127.0.0.1:8443");
        assert_eq!(req.euicc_challenge, (0u8..16).collect::<Vec<_>>());
        assert_eq!(&req.euicc_info1[..2], &[0xbf, 0x20]);
        assert!(req.header.is_none());
        assert!(req.transaction_id().is_none());
        let round: InitiateAuthenticationRequest =
            serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        assert_eq!(round, req);
    }

    #[test]
    fn golden_request_serialization() {
        let req = AuthenticateClientRequest {
            header: None,
            transaction_id: "0A1B".parse().unwrap(),
            authenticate_server_response: vec![0xbf, 0x38, 0x00],
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"transactionId":"0A1B","authenticateServerResponse":"vzgA"}"#
        );
        let req = CancelSessionRequest {
            header: None,
            transaction_id: "FF".parse().unwrap(),
            cancel_session_response: vec![0xbf, 0x41, 0x00],
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"transactionId":"FF","cancelSessionResponse":"v0EA"}"#
        );
        let req = GetBoundProfilePackageRequest {
            header: None,
            transaction_id: "01".parse().unwrap(),
            prepare_download_response: vec![0xbf, 0x21, 0x00],
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"transactionId":"01","prepareDownloadResponse":"vyEA"}"#
        );
        let req = HandleNotificationRequest {
            header: None,
            pending_notification: vec![0xbf, 0x37, 0x00],
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"pendingNotification":"vzcA"}"#
        );
    }

    #[test]
    fn accepts_header_unknown_fields_whitespace_and_lowercase_tid() {
        let body = r#"{
            "header": {"functionRequesterIdentifier": "lpa", "functionCallIdentifier": "42"},
            "transactionId": "0a1b2c",
            "authenticateServerResponse": "vzgA\r\nvzgA\n",
            "somethingNew": [1, 2, 3]
        }"#;
        let req: AuthenticateClientRequest = parse_request(body.as_bytes()).unwrap();
        assert_eq!(req.transaction_id.as_bytes(), &[0x0a, 0x1b, 0x2c]);
        assert_eq!(req.transaction_id.to_string(), "0A1B2C");
        assert_eq!(
            req.authenticate_server_response,
            [0xbf, 0x38, 0, 0xbf, 0x38, 0]
        );
        let header = req.header.unwrap();
        assert_eq!(header.function_requester_identifier.as_deref(), Some("lpa"));
        assert_eq!(header.function_call_identifier.as_deref(), Some("42"));
    }

    #[test]
    fn accepts_unpadded_base64() {
        let body = r#"{"pendingNotification":"vzcA3w"}"#;
        let req: HandleNotificationRequest = parse_request(body.as_bytes()).unwrap();
        assert_eq!(req.pending_notification, [0xbf, 0x37, 0x00, 0xdf]);
    }

    #[test]
    fn rejects_bad_base64() {
        for bad in ["vzcA!", "v", "vzcA===", "-_8A", "vzd="] {
            let body = format!(r#"{{"pendingNotification":"{bad}"}}"#);
            let err = parse_request::<HandleNotificationRequest>(body.as_bytes()).unwrap_err();
            assert_eq!(err.code, PROTOCOL_FORMAT_INVALID, "{bad}");
            if bad.len() >= 4 {
                assert!(!err.message.contains(bad), "message echoes the value");
            }
        }
    }

    #[test]
    fn rejects_missing_fields() {
        assert_eq!(
            code_of::<CancelSessionRequest>(r#"{"transactionId":"01"}"#),
            PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING
        );
        let err = parse_request::<InitiateAuthenticationRequest>(
            br#"{"euiccChallenge":"AAECAwQFBgcICQoLDA0ODw==","euiccInfo1":null,"smdpAddress":"x"}"#,
        )
        .unwrap_err();
        assert_eq!(err.code, PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING);
        assert!(err.message.contains("euiccInfo1"));
        assert_eq!(
            code_of::<HandleNotificationRequest>("{}"),
            PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING
        );
    }

    #[test]
    fn rejects_malformed_json_and_non_objects() {
        for body in ["", "{", "not json", "[]", "\"x\"", "null", "{\"a\":1}}"] {
            assert_eq!(
                code_of::<HandleNotificationRequest>(body),
                PROTOCOL_FORMAT_INVALID,
                "{body:?}"
            );
        }
    }

    #[test]
    fn rejects_wrong_types_and_bad_transaction_ids() {
        for tid in ["5", "true", "\"\"", "\"ABC\"", "\"XY\"", "{}", "\"0A 1B\""] {
            let body = format!(r#"{{"transactionId":{tid},"cancelSessionResponse":"v0EA"}}"#);
            assert_eq!(
                code_of::<CancelSessionRequest>(&body),
                PROTOCOL_FORMAT_INVALID,
                "{tid}"
            );
        }
        let long = "00".repeat(17);
        let body = format!(r#"{{"transactionId":"{long}","cancelSessionResponse":"v0EA"}}"#);
        assert_eq!(
            code_of::<CancelSessionRequest>(&body),
            PROTOCOL_FORMAT_INVALID
        );
    }

    #[test]
    fn rejects_oversized_values() {
        // euiccChallenge must be exactly 16 bytes.
        let body = r#"{"euiccChallenge":"AAECAwQFBgcICQoLDA0ODxA=","euiccInfo1":"vyAA","smdpAddress":"a"}"#;
        assert_eq!(
            code_of::<InitiateAuthenticationRequest>(body),
            PROTOCOL_FORMAT_INVALID
        );
        let address = "a".repeat(limits::SMDP_ADDRESS + 1);
        let body = format!(
            r#"{{"euiccChallenge":"AAECAwQFBgcICQoLDA0ODw==","euiccInfo1":"vyAA","smdpAddress":"{address}"}}"#
        );
        let err = parse_request::<InitiateAuthenticationRequest>(body.as_bytes()).unwrap_err();
        assert_eq!(err.code, PROTOCOL_FORMAT_INVALID);
        assert!(!err.message.contains(&address));
        let big = encode_base64(&vec![0u8; limits::CANCEL_SESSION_RESPONSE + 1]);
        let body = format!(r#"{{"transactionId":"01","cancelSessionResponse":"{big}"}}"#);
        assert_eq!(
            code_of::<CancelSessionRequest>(&body),
            PROTOCOL_FORMAT_INVALID
        );
        let bigger = encode_base64(&vec![0u8; limits::CANCEL_SESSION_RESPONSE + 3]);
        assert_eq!(
            decode_base64_bounded(&bigger, 1, limits::CANCEL_SESSION_RESPONSE),
            Err(Base64FieldError::TooLong {
                max: limits::CANCEL_SESSION_RESPONSE
            })
        );
        assert_eq!(
            code_of::<CancelSessionRequest>(r#"{"transactionId":"01","cancelSessionResponse":""}"#),
            PROTOCOL_FORMAT_INVALID
        );
        let header = "h".repeat(limits::HEADER_STRING + 1);
        let body = format!(
            r#"{{"header":{{"functionCallIdentifier":"{header}"}},"pendingNotification":"vzcA"}}"#
        );
        assert_eq!(
            code_of::<HandleNotificationRequest>(&body),
            PROTOCOL_FORMAT_INVALID
        );
    }

    #[test]
    fn golden_success_response() {
        let msg = ResponseMessage::success(InitiateAuthenticationResponse {
            transaction_id: "0102".parse().unwrap(),
            server_signed1: vec![0x30, 0x00],
            server_signature1: vec![0x5f, 0x37, 0x00],
            euicc_ci_pkid_to_be_used: vec![0x04, 0x00],
            server_certificate: vec![0x30, 0x01, 0x00],
        });
        let json = serde_json::to_string(&msg).unwrap();
        assert_eq!(
            json,
            r#"{"header":{"functionExecutionStatus":{"status":"Executed-Success"}},"transactionId":"0102","serverSigned1":"MAA=","serverSignature1":"XzcA","euiccCiPKIdToBeUsed":"BAA=","serverCertificate":"MAEA"}"#
        );
        let back: ResponseMessage<InitiateAuthenticationResponse> =
            serde_json::from_str(&json).unwrap();
        assert_eq!(back, msg);
        assert_eq!(back.into_result().unwrap().server_signed1, [0x30, 0x00]);
    }

    #[test]
    fn golden_authenticate_client_and_bpp_responses() {
        let msg = ResponseMessage::success(AuthenticateClientResponse {
            transaction_id: "AB".parse().unwrap(),
            profile_metadata: vec![0xbf, 0x25, 0x00],
            smdp_signed2: vec![0x30, 0x00],
            smdp_signature2: vec![0x5f, 0x37, 0x00],
            smdp_certificate: vec![0x30, 0x00],
        });
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"header":{"functionExecutionStatus":{"status":"Executed-Success"}},"transactionId":"AB","profileMetadata":"vyUA","smdpSigned2":"MAA=","smdpSignature2":"XzcA","smdpCertificate":"MAA="}"#
        );
        let msg = ResponseMessage::success(GetBoundProfilePackageResponse {
            transaction_id: "AB".parse().unwrap(),
            bound_profile_package: vec![0xbf, 0x36, 0x00],
        });
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"header":{"functionExecutionStatus":{"status":"Executed-Success"}},"transactionId":"AB","boundProfilePackage":"vzYA"}"#
        );
        let msg = ResponseMessage::success(EmptyBody {});
        let json = serde_json::to_string(&msg).unwrap();
        assert_eq!(
            json,
            r#"{"header":{"functionExecutionStatus":{"status":"Executed-Success"}}}"#
        );
        let back: ResponseMessage<EmptyBody> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.into_result(), Ok(EmptyBody {}));
    }

    #[test]
    fn golden_failed_response() {
        let err = Es9Error::from_code(TRANSACTION_ID_UNKNOWN);
        let msg = ResponseMessage::<GetBoundProfilePackageResponse>::failed(&err);
        let json = serde_json::to_string(&msg).unwrap();
        assert_eq!(
            json,
            r#"{"header":{"functionExecutionStatus":{"status":"Failed","statusCodeData":{"subjectCode":"8.10.1","reasonCode":"3.9","message":"The RSP session identified by the TransactionID is unknown."}}}}"#
        );
        let back: ResponseMessage<GetBoundProfilePackageResponse> =
            serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.header.function_execution_status.status,
            ExecutionStatus::Failed
        );
        assert_eq!(back.into_result(), Err(err));
    }

    #[test]
    fn client_side_response_parsing_is_tolerant_and_bounded() {
        // Whitespace in response base64 (lpac strips it too), unknown members ignored.
        let json = r#"{"header":{"functionExecutionStatus":{"status":"Executed-Success"}},"transactionId":"AB","boundProfilePackage":"vzYA\nvzYA","extra":1}"#;
        let msg: ResponseMessage<GetBoundProfilePackageResponse> =
            serde_json::from_str(json).unwrap();
        assert_eq!(msg.into_result().unwrap().bound_profile_package.len(), 6);
        // Missing header, missing body member.
        assert!(
            serde_json::from_str::<ResponseMessage<EmptyBody>>(r#"{"transactionId":"AB"}"#)
                .is_err()
        );
        let json = r#"{"header":{"functionExecutionStatus":{"status":"Executed-Success"}},"transactionId":"AB"}"#;
        assert!(
            serde_json::from_str::<ResponseMessage<GetBoundProfilePackageResponse>>(json).is_err()
        );
        // Oversized signature.
        let sig = encode_base64(&vec![0u8; limits::SIGNATURE + 1]);
        let json = format!(
            r#"{{"header":{{"functionExecutionStatus":{{"status":"Executed-Success"}}}},"transactionId":"AB","profileMetadata":"vyUA","smdpSigned2":"MAA=","smdpSignature2":"{sig}","smdpCertificate":"MAA="}}"#
        );
        assert!(
            serde_json::from_str::<ResponseMessage<AuthenticateClientResponse>>(&json).is_err()
        );
        // A Failed status without code still maps to an error.
        let json = r#"{"header":{"functionExecutionStatus":{"status":"Failed"}}}"#;
        let msg: ResponseMessage<EmptyBody> = serde_json::from_str(json).unwrap();
        assert_eq!(
            msg.into_result().unwrap_err().code,
            crate::status::FUNCTION_PROVIDER_EXECUTION_ERROR
        );
    }

    #[test]
    fn transaction_id_bounds() {
        assert!(TransactionId::from_bytes(&[]).is_err());
        assert!(TransactionId::from_bytes(&[0; 17]).is_err());
        let tid = TransactionId::from_bytes(&[0xde, 0xad]).unwrap();
        assert_eq!(tid.to_hex(), "DEAD");
        assert_eq!(format!("{tid:?}"), "TransactionId(DEAD)");
        assert_eq!(
            "".parse::<TransactionId>(),
            Err(InvalidTransactionId::Length)
        );
        assert_eq!(
            "A".parse::<TransactionId>(),
            Err(InvalidTransactionId::Length)
        );
        assert_eq!(
            "ABC".parse::<TransactionId>(),
            Err(InvalidTransactionId::NotHex)
        );
        assert_eq!(
            "G0".parse::<TransactionId>(),
            Err(InvalidTransactionId::NotHex)
        );
        assert_eq!(
            "00112233445566778899AABBCCDDEEFF"
                .parse::<TransactionId>()
                .unwrap()
                .as_bytes()
                .len(),
            16
        );
    }

    #[test]
    fn function_paths() {
        let paths: Vec<_> = Es9Function::ALL.iter().map(|f| f.path()).collect();
        assert_eq!(
            paths,
            [
                "/gsma/rsp2/es9plus/initiateAuthentication",
                "/gsma/rsp2/es9plus/authenticateClient",
                "/gsma/rsp2/es9plus/getBoundProfilePackage",
                "/gsma/rsp2/es9plus/handleNotification",
                "/gsma/rsp2/es9plus/cancelSession",
            ]
        );
        assert!(Es9Function::HandleNotification.is_notification());
        assert!(!Es9Function::CancelSession.is_notification());
        assert_eq!(
            Es9Function::GetBoundProfilePackage.to_string(),
            "ES9+.GetBoundProfilePackage"
        );
    }
}
