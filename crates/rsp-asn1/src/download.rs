//! Profile download messages (SGP.22 v2.2 sections 3.1.3, 5.6.2, 5.7.5, 5.7.6, 5.6.3):
//! `SmdpSigned2`, `PrepareDownloadRequest` (`BF21`), `PrepareDownloadResponse` (`BF21`
//! CHOICE) with `EUICCSigned2` kept as received, `ProfileInstallationResult` (`BF37`) with
//! `ProfileInstallationResultData` (`BF27`) kept as received, and the ES9+ ASN.1 binding of
//! `GetBoundProfilePackageRequest/Response` (`BF3A`).
//!
//! `ProfileInstallationResultData.smdpOid` is OPTIONAL in the v2 schema and mandatory in
//! v2.2 Annex H; it is decoded as optional (both accepted).
//!
//! `GetBoundProfilePackageRequest.prepareDownloadResponse` is `[33]` over the
//! `[33] CHOICE`: see [`TaggedChoiceForm`] (X.680-implicit by default, both decoded).
//! The Bound Profile Package inside `GetBoundProfilePackageOk` is kept raw here; it is
//! typed by the BPP module.

use crate::codec::{
    Certificate, Codec, Extensions, FieldValue, SeqCodec, Signed, TaggedChoiceForm, explicit_inner,
    int_enum, ok_error_choice, opt, put, put_opt, req, tagged_choice_alternative, write_wrapped,
};
use crate::common::{Octet32, TAG_AID, TAG_OTPK, TAG_SIGNATURE, TransactionId, read_signature};
use crate::error::DecodeError;
use crate::notification::NotificationMetadata;
use crate::prim::Oid;
use crate::tlv::{Reader, Tag, Tlv, write_tlv};

fn c(n: u32) -> Tag {
    Tag::context(n)
}
fn cc(n: u32) -> Tag {
    Tag::context_constructed(n)
}

/// `SmdpSigned2 ::= SEQUENCE { transactionId [0], ccRequiredFlag BOOLEAN, bppEuiccOtpk
/// [APPLICATION 73] OCTET STRING OPTIONAL }` (`80`, `01`, `5F49`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmdpSigned2 {
    /// Transaction ID.
    pub transaction_id: TransactionId,
    /// Whether the Confirmation Code is required.
    pub cc_required_flag: bool,
    /// otPK.EUICC.ECKA already used for binding the BPP (retry case).
    pub bpp_euicc_otpk: Option<Vec<u8>>,
}

impl SeqCodec for SmdpSigned2 {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = SmdpSigned2 {
            transaction_id: req(r, c(0), "transactionId")?,
            cc_required_flag: req(r, Tag::BOOLEAN, "ccRequiredFlag")?,
            bpp_euicc_otpk: opt(r, TAG_OTPK, "bppEuiccOtpk")?,
        };
        r.finish()?;
        Ok(v)
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.transaction_id);
        put(out, Tag::BOOLEAN, &self.cc_required_flag);
        put_opt(out, TAG_OTPK, &self.bpp_euicc_otpk);
    }
}

/// `PrepareDownloadRequest ::= [33] SEQUENCE { smdpSigned2, smdpSignature2 [APPLICATION
/// 55], hashCc Octet32 OPTIONAL, smdpCertificate Certificate }` (tag `BF21`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareDownloadRequest {
    /// `smdpSigned2` with its exact bytes.
    pub smdp_signed2: Signed<SmdpSigned2>,
    /// `smdpSignature2` (contents of `5F37`).
    pub smdp_signature2: Vec<u8>,
    /// Hash of the Confirmation Code.
    pub hash_cc: Option<Octet32>,
    /// CERT.DPpb.ECDSA.
    pub smdp_certificate: Certificate,
}

impl SeqCodec for PrepareDownloadRequest {
    const TAG: Tag = Tag(0xBF21);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = PrepareDownloadRequest {
            smdp_signed2: Signed::decode_tlv(&r.read_expect(Tag::SEQUENCE)?)?,
            smdp_signature2: read_signature(r, "smdpSignature2")?,
            hash_cc: opt(r, Tag::OCTET_STRING, "hashCc")?,
            smdp_certificate: Certificate::read(r)?,
        };
        r.finish()?;
        Ok(v)
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        self.smdp_signed2.encode_into(out);
        write_tlv(out, TAG_SIGNATURE, &self.smdp_signature2);
        put_opt(out, Tag::OCTET_STRING, &self.hash_cc);
        self.smdp_certificate.encode_into(out);
    }
}

/// `EUICCSigned2 ::= SEQUENCE { transactionId [0], euiccOtpk [APPLICATION 73], hashCc
/// Octet32 OPTIONAL }` (`80`, `5F49`, `04`) — signed by the eUICC (euiccSignature2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EuiccSigned2 {
    /// Transaction ID.
    pub transaction_id: TransactionId,
    /// otPK.EUICC.ECKA.
    pub euicc_otpk: Vec<u8>,
    /// Hash of the Confirmation Code.
    pub hash_cc: Option<Octet32>,
    /// Unknown trailing components, kept verbatim.
    pub extensions: Extensions,
}

impl SeqCodec for EuiccSigned2 {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(EuiccSigned2 {
            transaction_id: req(r, c(0), "transactionId")?,
            euicc_otpk: req(r, TAG_OTPK, "euiccOtpk")?,
            hash_cc: opt(r, Tag::OCTET_STRING, "hashCc")?,
            extensions: Extensions::read_rest(r)?,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.transaction_id);
        put(out, TAG_OTPK, &self.euicc_otpk);
        put_opt(out, Tag::OCTET_STRING, &self.hash_cc);
        self.extensions.encode_into(out);
    }
}

/// `PrepareDownloadResponseOk ::= SEQUENCE { euiccSigned2, euiccSignature2 [APPLICATION 55] }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareDownloadResponseOk {
    /// `euiccSigned2` with the exact received bytes.
    pub euicc_signed2: Signed<EuiccSigned2>,
    /// `euiccSignature2` (contents of `5F37`).
    pub euicc_signature2: Vec<u8>,
}

impl SeqCodec for PrepareDownloadResponseOk {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = PrepareDownloadResponseOk {
            euicc_signed2: Signed::decode_tlv(&r.read_expect(Tag::SEQUENCE)?)?,
            euicc_signature2: read_signature(r, "euiccSignature2")?,
        };
        r.finish()?;
        Ok(v)
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        self.euicc_signed2.encode_into(out);
        write_tlv(out, TAG_SIGNATURE, &self.euicc_signature2);
    }
}

int_enum!(
    /// `DownloadErrorCode ::= INTEGER`.
    DownloadErrorCode {
        InvalidCertificate = 1,
        InvalidSignature = 2,
        UnsupportedCurve = 3,
        NoSessionContext = 4,
        InvalidTransactionId = 5,
        UndefinedError = 127,
    }
);

/// `PrepareDownloadResponseError ::= SEQUENCE { transactionId [0], downloadErrorCode }`
/// (`80`, `02`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareDownloadResponseError {
    /// Transaction ID.
    pub transaction_id: TransactionId,
    /// The error.
    pub download_error_code: DownloadErrorCode,
}

impl SeqCodec for PrepareDownloadResponseError {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = PrepareDownloadResponseError {
            transaction_id: req(r, c(0), "transactionId")?,
            download_error_code: req(r, Tag::INTEGER, "downloadErrorCode")?,
        };
        r.finish()?;
        Ok(v)
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.transaction_id);
        put(out, Tag::INTEGER, &self.download_error_code);
    }
}

/// `PrepareDownloadResponse ::= [33] CHOICE` (tag `BF21`; `A0` ok, `A1` error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrepareDownloadResponse {
    /// `downloadResponseOk`.
    Ok(PrepareDownloadResponseOk),
    /// `downloadResponseError`.
    Error(PrepareDownloadResponseError),
}

ok_error_choice!(
    PrepareDownloadResponse,
    Tag(0xBF21),
    Ok(PrepareDownloadResponseOk, cc(0)),
    Error(PrepareDownloadResponseError, cc(1))
);

int_enum!(
    /// `BppCommandId ::= INTEGER`.
    BppCommandId {
        InitialiseSecureChannel = 0,
        ConfigureIsdp = 1,
        StoreMetadata = 2,
        StoreMetadata2 = 3,
        ReplaceSessionKeys = 4,
        LoadProfileElements = 5,
    }
);

int_enum!(
    /// `ErrorReason ::= INTEGER` (v2.2 renames 13 to installFailedDueToDataMismatch).
    ErrorReason {
        IncorrectInputValues = 1,
        InvalidSignature = 2,
        InvalidTransactionId = 3,
        UnsupportedCrtValues = 4,
        UnsupportedRemoteOperationType = 5,
        UnsupportedProfileClass = 6,
        Scp03tStructureError = 7,
        Scp03tSecurityError = 8,
        InstallFailedDueToIccidAlreadyExistsOnEuicc = 9,
        InstallFailedDueToInsufficientMemoryForProfile = 10,
        InstallFailedDueToInterruption = 11,
        InstallFailedDueToPeProcessingError = 12,
        InstallFailedDueToIccidMismatch = 13,
        TestProfileInstallFailedDueToInvalidNaaKey = 14,
        PprNotAllowed = 15,
        InstallFailedDueToUnknownError = 127,
    }
);

/// `SuccessResult ::= SEQUENCE { aid [APPLICATION 15] OCTET STRING (SIZE(5..16)),
/// simaResponse OCTET STRING }` (`4F`, `04`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuccessResult {
    /// AID of the ISD-P.
    pub aid: Vec<u8>,
    /// The EUICCResponse(s) of the SIMalliance profile package.
    pub sima_response: Vec<u8>,
}

impl SeqCodec for SuccessResult {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let aid = crate::prim::decode_octets(&r.read_expect(TAG_AID)?, "aid", 5, 16)?.to_vec();
        let sima_response = req(r, Tag::OCTET_STRING, "simaResponse")?;
        r.finish()?;
        Ok(SuccessResult { aid, sima_response })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, TAG_AID, &self.aid);
        put(out, Tag::OCTET_STRING, &self.sima_response);
    }
}

/// `ErrorResult ::= SEQUENCE { bppCommandId, errorReason, simaResponse OCTET STRING
/// OPTIONAL }` — AUTOMATIC `80`, `81`, `82`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorResult {
    /// The BPP command that failed.
    pub bpp_command_id: BppCommandId,
    /// Why.
    pub error_reason: ErrorReason,
    /// The EUICCResponse(s), if any.
    pub sima_response: Option<Vec<u8>>,
}

impl SeqCodec for ErrorResult {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = ErrorResult {
            bpp_command_id: req(r, c(0), "bppCommandId")?,
            error_reason: req(r, c(1), "errorReason")?,
            sima_response: opt(r, c(2), "simaResponse")?,
        };
        r.finish()?;
        Ok(v)
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.bpp_command_id);
        put(out, c(1), &self.error_reason);
        put_opt(out, c(2), &self.sima_response);
    }
}

/// `finalResult [2] CHOICE { successResult SuccessResult, errorResult ErrorResult }`
/// (`A2` explicit around `A0` / `A1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinalResult {
    /// `successResult`.
    Success(SuccessResult),
    /// `errorResult`.
    Error(ErrorResult),
}

/// `ProfileInstallationResultData ::= [39] SEQUENCE { transactionId [0],
/// notificationMetadata [47], smdpOid OBJECT IDENTIFIER OPTIONAL, finalResult [2] CHOICE }`
/// (tag `BF27`) — signed by the eUICC (euiccSignPIR).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileInstallationResultData {
    /// Transaction ID.
    pub transaction_id: TransactionId,
    /// Notification metadata (`BF2F`).
    pub notification_metadata: NotificationMetadata,
    /// SM-DP+ OID (optional in v2, mandatory in v2.2).
    pub smdp_oid: Option<Oid>,
    /// The result.
    pub final_result: FinalResult,
    /// Unknown trailing components, kept verbatim.
    pub extensions: Extensions,
}

impl SeqCodec for ProfileInstallationResultData {
    const TAG: Tag = Tag(0xBF27);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let transaction_id = req(r, c(0), "transactionId")?;
        let notification_metadata = req(r, NotificationMetadata::TAG, "notificationMetadata")?;
        let smdp_oid = opt(r, Tag::OID, "smdpOid")?;
        let fr = explicit_inner(&r.read_expect(cc(2))?, cc(2))?;
        let final_result = match fr.tag {
            x if x == cc(0) => {
                FinalResult::Success(FieldValue::decode_value(&fr, "successResult")?)
            }
            x if x == cc(1) => FinalResult::Error(FieldValue::decode_value(&fr, "errorResult")?),
            found => {
                return Err(DecodeError::UnexpectedTag {
                    expected: cc(0),
                    found,
                });
            }
        };
        let extensions = Extensions::read_rest(r)?;
        Ok(ProfileInstallationResultData {
            transaction_id,
            notification_metadata,
            smdp_oid,
            final_result,
            extensions,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.transaction_id);
        put(out, NotificationMetadata::TAG, &self.notification_metadata);
        put_opt(out, Tag::OID, &self.smdp_oid);
        write_wrapped(out, cc(2), |o| match &self.final_result {
            FinalResult::Success(s) => put(o, cc(0), s),
            FinalResult::Error(e) => put(o, cc(1), e),
        });
        self.extensions.encode_into(out);
    }
}

/// `ProfileInstallationResult ::= [55] SEQUENCE { profileInstallationResultData [39],
/// euiccSignPIR EuiccSignPIR }` (tag `BF37`; `BF27`, `5F37`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileInstallationResult {
    /// The signed data with its exact received bytes.
    pub profile_installation_result_data: Signed<ProfileInstallationResultData>,
    /// `euiccSignPIR` (contents of `5F37`).
    pub euicc_sign_pir: Vec<u8>,
}

impl SeqCodec for ProfileInstallationResult {
    const TAG: Tag = Tag(0xBF37);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = ProfileInstallationResult {
            profile_installation_result_data: Signed::decode_tlv(
                &r.read_expect(ProfileInstallationResultData::TAG)?,
            )?,
            euicc_sign_pir: read_signature(r, "euiccSignPIR")?,
        };
        r.finish()?;
        Ok(v)
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        self.profile_installation_result_data.encode_into(out);
        write_tlv(out, TAG_SIGNATURE, &self.euicc_sign_pir);
    }
}

/// `GetBoundProfilePackageRequest ::= [58] SEQUENCE { transactionId [0],
/// prepareDownloadResponse [33] PrepareDownloadResponse }` (tag `BF3A`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetBoundProfilePackageRequest {
    /// Transaction ID.
    pub transaction_id: TransactionId,
    /// The ES10b.PrepareDownload response relayed by the LPA.
    pub prepare_download_response: PrepareDownloadResponse,
    /// Encoding form of the tagged CHOICE component (see [`TaggedChoiceForm`]).
    pub form: TaggedChoiceForm,
}

impl SeqCodec for GetBoundProfilePackageRequest {
    const TAG: Tag = Tag(0xBF3A);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let transaction_id = req(r, c(0), "transactionId")?;
        let t = r.read_expect(PrepareDownloadResponse::TAG)?;
        let (alt, form) = tagged_choice_alternative(&t, PrepareDownloadResponse::TAG)?;
        let prepare_download_response = PrepareDownloadResponse::decode_alternative(&alt)?;
        r.finish()?;
        Ok(GetBoundProfilePackageRequest {
            transaction_id,
            prepare_download_response,
            form,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.transaction_id);
        match self.form {
            TaggedChoiceForm::Implicit => write_wrapped(out, PrepareDownloadResponse::TAG, |o| {
                self.prepare_download_response.encode_alternative(o)
            }),
            TaggedChoiceForm::Nested => write_wrapped(out, PrepareDownloadResponse::TAG, |o| {
                self.prepare_download_response.encode_into(o)
            }),
        }
    }
}

/// `GetBoundProfilePackageOk ::= SEQUENCE { transactionId [0], boundProfilePackage [54] }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetBoundProfilePackageOk {
    /// Transaction ID.
    pub transaction_id: TransactionId,
    /// The complete `BoundProfilePackage` element (`BF36`), kept raw (typed in the BPP
    /// module).
    pub bound_profile_package: Vec<u8>,
}

impl SeqCodec for GetBoundProfilePackageOk {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let transaction_id = req(r, c(0), "transactionId")?;
        let bound_profile_package = crate::common::read_raw_constructed(r, cc(54))?;
        r.finish()?;
        Ok(GetBoundProfilePackageOk {
            transaction_id,
            bound_profile_package,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.transaction_id);
        out.extend_from_slice(&self.bound_profile_package);
    }
}

int_enum!(
    /// `getBoundProfilePackageError INTEGER`.
    GetBoundProfilePackageError {
        EuiccSignatureInvalid = 1,
        ConfirmationCodeMissing = 2,
        ConfirmationCodeRefused = 3,
        ConfirmationCodeRetriesExceeded = 4,
        BppRebindingRefused = 5,
        DownloadOrderExpired = 6,
        InvalidTransactionId = 95,
        UndefinedError = 127,
    }
);

/// `GetBoundProfilePackageResponse ::= [58] CHOICE` (tag `BF3A`; `A0` ok, `81` error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GetBoundProfilePackageResponse {
    /// `getBoundProfilePackageOk`.
    Ok(GetBoundProfilePackageOk),
    /// `getBoundProfilePackageError`.
    Error(GetBoundProfilePackageError),
}

impl Codec for GetBoundProfilePackageResponse {
    fn decode_tlv(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        let i = explicit_inner(t, Tag(0xBF3A))?;
        match i.tag {
            x if x == cc(0) => Ok(Self::Ok(FieldValue::decode_value(&i, "ok")?)),
            x if x == c(1) => Ok(Self::Error(FieldValue::decode_value(&i, "error")?)),
            found => Err(DecodeError::UnexpectedTag {
                expected: cc(0),
                found,
            }),
        }
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        write_wrapped(out, Tag(0xBF3A), |o| match self {
            Self::Ok(v) => put(o, cc(0), v),
            Self::Error(e) => put(o, c(1), e),
        });
    }
}
