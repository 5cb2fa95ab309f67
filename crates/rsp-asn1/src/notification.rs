//! Notifications (SGP.22 v2.2 sections 3.5, 5.6.4, 5.7.9–5.7.11):
//! `NotificationMetadata` (`BF2F`), `PendingNotification` (CHOICE of
//! `ProfileInstallationResult` `BF37` / `OtherSignedNotification` `30`) with
//! `tbsOtherNotification` kept as received, ES10b `ListNotification` (`BF28`),
//! `RetrieveNotificationsList` (`BF2B`), `NotificationSent` (`BF30`, RemoveNotificationFromList)
//! and the ES9+ ASN.1 binding `HandleNotification` (`BF3D`).

use crate::codec::{
    Certificate, Codec, Extensions, FieldValue, SeqCodec, SeqOfElement, Signed, decode_seq_of,
    encode_seq_of, explicit_inner, int_enum, opt, put, put_opt, req, write_wrapped,
};
use crate::common::{Iccid, NotificationEvent, TAG_ICCID, TAG_SIGNATURE, read_signature};
use crate::download::ProfileInstallationResult;
use crate::error::DecodeError;
use crate::tlv::{Reader, Tag, Tlv, write_tlv};

fn c(n: u32) -> Tag {
    Tag::context(n)
}
fn cc(n: u32) -> Tag {
    Tag::context_constructed(n)
}

/// `NotificationMetadata ::= [47] SEQUENCE { seqNumber [0] INTEGER,
/// profileManagementOperation [1] NotificationEvent, notificationAddress UTF8String,
/// iccid Iccid OPTIONAL }` (tag `BF2F`; `80`, `81`, `0C`, `5A`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationMetadata {
    /// Sequence number.
    pub seq_number: i64,
    /// The operation (exactly one bit set).
    pub profile_management_operation: NotificationEvent,
    /// FQDN to send the notification to.
    pub notification_address: String,
    /// ICCID of the Profile.
    pub iccid: Option<Iccid>,
    /// Unknown trailing components, kept verbatim.
    pub extensions: Extensions,
}

impl SeqCodec for NotificationMetadata {
    const TAG: Tag = Tag(0xBF2F);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NotificationMetadata {
            seq_number: req(r, c(0), "seqNumber")?,
            profile_management_operation: req(r, c(1), "profileManagementOperation")?,
            notification_address: req(r, Tag::UTF8_STRING, "notificationAddress")?,
            iccid: opt(r, TAG_ICCID, "iccid")?,
            extensions: Extensions::read_rest(r)?,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.seq_number);
        put(out, c(1), &self.profile_management_operation);
        put(out, Tag::UTF8_STRING, &self.notification_address);
        put_opt(out, TAG_ICCID, &self.iccid);
        self.extensions.encode_into(out);
    }
}

impl SeqOfElement for NotificationMetadata {
    const ELEM_TAG: Tag = Tag(0xBF2F);
}

/// `OtherSignedNotification ::= SEQUENCE { tbsOtherNotification NotificationMetadata,
/// euiccNotificationSignature [APPLICATION 55], euiccCertificate, eumCertificate }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherSignedNotification {
    /// `tbsOtherNotification` with the exact received bytes (the signature covers them).
    pub tbs_other_notification: Signed<NotificationMetadata>,
    /// `euiccNotificationSignature` (contents of `5F37`).
    pub euicc_notification_signature: Vec<u8>,
    /// CERT.EUICC.ECDSA.
    pub euicc_certificate: Certificate,
    /// CERT.EUM.ECDSA.
    pub eum_certificate: Certificate,
}

impl SeqCodec for OtherSignedNotification {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = OtherSignedNotification {
            tbs_other_notification: Signed::decode_tlv(&r.read_expect(NotificationMetadata::TAG)?)?,
            euicc_notification_signature: read_signature(r, "euiccNotificationSignature")?,
            euicc_certificate: Certificate::read(r)?,
            eum_certificate: Certificate::read(r)?,
        };
        r.finish()?;
        Ok(v)
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        self.tbs_other_notification.encode_into(out);
        write_tlv(out, TAG_SIGNATURE, &self.euicc_notification_signature);
        self.euicc_certificate.encode_into(out);
        self.eum_certificate.encode_into(out);
    }
}

/// `PendingNotification ::= CHOICE { profileInstallationResult [55] (BF37),
/// otherSignedNotification (30), loadRpmPackageResultSigned [1] (A1, v3) }`.
///
/// The v3 alternative is an implicit `[1]` on the SEQUENCE `LoadRpmPackageResultSigned`:
/// `A1` replaces its `30` and the contents are its two components, the data element (`A0`
/// strictly, `30` in the lenient reading) and `euiccSignRPR` (`81`, or `5F37`). It is not
/// the `BF44` `LoadRpmPackageResult` CHOICE: the LPA takes the body of the `BF44`'s `A0`
/// alternative and sends it unchanged under `A1`, so the signed data element is the same
/// bytes in both places. It carries no certificate; the SM-DP+ verifies with the PK.EUICC
/// kept from AuthenticateClient.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PendingNotification {
    /// `profileInstallationResult`.
    ProfileInstallationResult(Box<ProfileInstallationResult>),
    /// `otherSignedNotification`.
    OtherSignedNotification(Box<OtherSignedNotification>),
    /// SGP.22 v3 `loadRpmPackageResultSigned [1]` (`A1`): the eUICC-signed result of an RPM
    /// package (see [`crate::rpm`]).
    LoadRpmPackageResultSigned(Box<crate::rpm::LoadRpmPackageResultSigned>),
}

impl Codec for PendingNotification {
    fn decode_tlv(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        match t.tag {
            x if x == ProfileInstallationResult::TAG => Ok(Self::ProfileInstallationResult(
                Box::new(ProfileInstallationResult::decode_tlv(t)?),
            )),
            Tag::SEQUENCE => Ok(Self::OtherSignedNotification(Box::new(
                OtherSignedNotification::decode_tlv(t)?,
            ))),
            x if x == cc(1) => Ok(Self::LoadRpmPackageResultSigned(Box::new(
                crate::rpm::LoadRpmPackageResultSigned::decode_tagged(t)?,
            ))),
            found => Err(DecodeError::UnexpectedTag {
                expected: ProfileInstallationResult::TAG,
                found,
            }),
        }
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Self::ProfileInstallationResult(v) => v.encode_into(out),
            Self::OtherSignedNotification(v) => v.encode_into(out),
            Self::LoadRpmPackageResultSigned(v) => v.encode_tagged(cc(1), out),
        }
    }
}

/// `ListNotificationRequest ::= [40] SEQUENCE { profileManagementOperation [1]
/// NotificationEvent OPTIONAL }` (tag `BF28`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListNotificationRequest {
    /// Filter on the operation.
    pub profile_management_operation: Option<NotificationEvent>,
}

impl SeqCodec for ListNotificationRequest {
    const TAG: Tag = Tag(0xBF28);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let profile_management_operation = opt(r, c(1), "profileManagementOperation")?;
        r.finish()?;
        Ok(ListNotificationRequest {
            profile_management_operation,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put_opt(out, c(1), &self.profile_management_operation);
    }
}

int_enum!(
    /// `listNotificationsResultError INTEGER {undefinedError(127)}`.
    ListNotificationsResultError { UndefinedError = 127 }
);

/// `ListNotificationResponse ::= [40] CHOICE { notificationMetadataList SEQUENCE OF
/// NotificationMetadata, listNotificationsResultError INTEGER }` (tag `BF28`; `A0`, `81`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListNotificationResponse {
    /// `notificationMetadataList`.
    List(Vec<NotificationMetadata>),
    /// `listNotificationsResultError`.
    Error(ListNotificationsResultError),
}

impl Codec for ListNotificationResponse {
    fn decode_tlv(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        let i = explicit_inner(t, Tag(0xBF28))?;
        match i.tag {
            x if x == cc(0) => Ok(Self::List(FieldValue::decode_value(
                &i,
                "notificationMetadataList",
            )?)),
            x if x == c(1) => Ok(Self::Error(FieldValue::decode_value(&i, "error")?)),
            found => Err(DecodeError::UnexpectedTag {
                expected: cc(0),
                found,
            }),
        }
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        write_wrapped(out, Tag(0xBF28), |o| match self {
            Self::List(v) => put(o, cc(0), v),
            Self::Error(e) => put(o, c(1), e),
        });
    }
}

/// `searchCriteria CHOICE { seqNumber [0] INTEGER, profileManagementOperation [1]
/// NotificationEvent }` of `RetrieveNotificationsListRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotificationSearchCriteria {
    /// `seqNumber`.
    SeqNumber(i64),
    /// `profileManagementOperation`.
    ProfileManagementOperation(NotificationEvent),
}

/// `RetrieveNotificationsListRequest ::= [43] SEQUENCE { searchCriteria CHOICE {...}
/// OPTIONAL }` (tag `BF2B`; the untagged CHOICE gets AUTOMATIC explicit `A0`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RetrieveNotificationsListRequest {
    /// The filter.
    pub search_criteria: Option<NotificationSearchCriteria>,
}

impl SeqCodec for RetrieveNotificationsListRequest {
    const TAG: Tag = Tag(0xBF2B);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let search_criteria = match r.read_optional(cc(0))? {
            None => None,
            Some(t) => {
                let i = explicit_inner(&t, cc(0))?;
                Some(match i.tag {
                    x if x == c(0) => {
                        NotificationSearchCriteria::SeqNumber(i64::decode_value(&i, "seqNumber")?)
                    }
                    x if x == c(1) => NotificationSearchCriteria::ProfileManagementOperation(
                        FieldValue::decode_value(&i, "profileManagementOperation")?,
                    ),
                    found => {
                        return Err(DecodeError::UnexpectedTag {
                            expected: c(0),
                            found,
                        });
                    }
                })
            }
        };
        r.finish()?;
        Ok(RetrieveNotificationsListRequest { search_criteria })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        if let Some(sc) = &self.search_criteria {
            write_wrapped(out, cc(0), |o| match sc {
                NotificationSearchCriteria::SeqNumber(n) => put(o, c(0), n),
                NotificationSearchCriteria::ProfileManagementOperation(e) => put(o, c(1), e),
            });
        }
    }
}

int_enum!(
    /// `notificationsListResultError INTEGER {noResultAvailable(1), undefinedError(127)}`.
    NotificationsListResultError { NoResultAvailable = 1, UndefinedError = 127 }
);

/// `RetrieveNotificationsListResponse ::= [43] CHOICE { notificationList SEQUENCE OF
/// PendingNotification, notificationsListResultError INTEGER }` (tag `BF2B`; `A0`, `81`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetrieveNotificationsListResponse {
    /// `notificationList`.
    List(Vec<PendingNotification>),
    /// `notificationsListResultError`.
    Error(NotificationsListResultError),
}

impl Codec for RetrieveNotificationsListResponse {
    fn decode_tlv(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        let i = explicit_inner(t, Tag(0xBF2B))?;
        match i.tag {
            x if x == cc(0) => Ok(Self::List(decode_seq_of(&i)?)),
            x if x == c(1) => Ok(Self::Error(FieldValue::decode_value(&i, "error")?)),
            found => Err(DecodeError::UnexpectedTag {
                expected: cc(0),
                found,
            }),
        }
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        write_wrapped(out, Tag(0xBF2B), |o| match self {
            Self::List(v) => encode_seq_of(v, cc(0), o),
            Self::Error(e) => put(o, c(1), e),
        });
    }
}

/// `NotificationSentRequest ::= [48] SEQUENCE { seqNumber [0] INTEGER }` (tag `BF30`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationSentRequest {
    /// Sequence number of the notification to remove.
    pub seq_number: i64,
}

impl SeqCodec for NotificationSentRequest {
    const TAG: Tag = Tag(0xBF30);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let seq_number = req(r, c(0), "seqNumber")?;
        r.finish()?;
        Ok(NotificationSentRequest { seq_number })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.seq_number);
    }
}

int_enum!(
    /// `deleteNotificationStatus INTEGER {ok(0), nothingToDelete(1), undefinedError(127)}`.
    DeleteNotificationStatus { Ok = 0, NothingToDelete = 1, UndefinedError = 127 }
);

/// `NotificationSentResponse ::= [48] SEQUENCE { deleteNotificationStatus INTEGER }`
/// (tag `BF30`; AUTOMATIC `80`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationSentResponse {
    /// The result.
    pub delete_notification_status: DeleteNotificationStatus,
}

impl SeqCodec for NotificationSentResponse {
    const TAG: Tag = Tag(0xBF30);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let delete_notification_status = req(r, c(0), "deleteNotificationStatus")?;
        r.finish()?;
        Ok(NotificationSentResponse {
            delete_notification_status,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.delete_notification_status);
    }
}

/// `HandleNotification ::= [61] SEQUENCE { pendingNotification PendingNotification }`
/// (tag `BF3D`; the untagged CHOICE gets AUTOMATIC explicit `A0`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandleNotification {
    /// The notification.
    pub pending_notification: PendingNotification,
}

impl SeqCodec for HandleNotification {
    const TAG: Tag = Tag(0xBF3D);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let inner = explicit_inner(&r.read_expect(cc(0))?, cc(0))?;
        let pending_notification = PendingNotification::decode_tlv(&inner)?;
        r.finish()?;
        Ok(HandleNotification {
            pending_notification,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        write_wrapped(out, cc(0), |o| self.pending_notification.encode_into(o));
    }
}
