//! SGP.22 v3 Remote Profile Management (RPM): the package the SM-DP+ signs
//! ([`SmdpSigned3`] of [`RpmCommand`]s), the ES9+ [`AuthenticateClientOkRpm`] that carries
//! it, the ES10b [`LoadRpmPackageRequest`] and the eUICC's [`LoadRpmPackageResult`], as in
//! `RSPDefinitions-v3.asn` (AUTOMATIC TAGS).
//!
//! Tags (see `../shared/docs/rpm-v3-digest.md` §2-3 for the vectors these follow):
//! - `RpmCommand` `30 { [80 00] continueOnFailure, A1|A2|A3 {5A iccid} | A4 ListProfileInfo |
//!   A5 {5A, BF2A} | A6 {5A, [0C]} }`; `RpmPackage` is a SEQUENCE OF them.
//! - `SmdpSigned3` `30 { 80 tid, A1 {RpmCommand...}, [82 00] }`; `LoadRpmPackageRequest`
//!   `BF44 { 30 smdpSigned3, 5F37 smdpSignature3, [02 port] }`.
//! - `AuthenticateClientOkRpm` `30 { 80 tid, A3 smdpSigned3, 5F37 smdpSignature3 }` (`A2` in
//!   `AuthenticateClientResponseEs9`): here `smdpSigned3` is `[3]` (`A3`), while in
//!   `LoadRpmPackageRequest` it is `30` (trap 1). The eUICC verifies the `30` form, so that
//!   is what [`AuthenticateClientOkRpm::smdp_signed3`] keeps (`A3` is written on encoding).
//! - `LoadRpmPackageResult` `BF44 { A0 signed | A1 notSigned }`. The signed alternative's two
//!   components are type references, so strict AUTOMATIC tagging gives `A0` (data) and `81`
//!   (euiccSignRPR); the reading that "sees through" the references gives `30` and `5F37`.
//!   Both are decoded; [`ResultForm`] records which one arrived and encoding repeats it.
//!   The signature covers the data element exactly as transmitted
//!   ([`LoadRpmPackageResultSigned::signed_bytes`]); [`LoadRpmPackageResultSigned::signed_bytes_as_sequence`]
//!   gives the same element retagged `30` for a verifier that retries (digest §9 #2).
//! - In `PendingNotification` the signed result is `[1]` (`A1`) over the same contents:
//!   the body of the `A0` alternative of `BF44`, moved unchanged under `A1`
//!   ([`LoadRpmPackageResultSigned::into_pending_notification`]).
//! - `updateMetadataResult` is `[42] INTEGER`, primitive `9F2A` (not `BF2A`, which is
//!   refused); `listProfileInfoResult` is a single `BF2D` (a doubled `BF2D BF2D`, as
//!   asn1tools writes it, is accepted too) and kept raw after a full check
//!   ([`RpmCommandResultData::list_profile_info`] types it); `contactPcmpResult` is
//!   `A0 { A0 { 80 pcmpAddress } | 81 n }`, likewise checked, kept raw and typed by
//!   [`RpmCommandResultData::contact_pcmp`].
//! - Result codes are kept as integers (unknown values are not refused); the `int_enum`
//!   types ([`RpmEnableResult`], [`RpmDisableResult`], [`RpmDeleteResult`],
//!   [`UpdateMetadataResult`], [`ContactPcmpError`], [`RpmProcessingTerminated`],
//!   [`LoadRpmPackageErrorCodeSigned`], [`LoadRpmPackageErrorCodeNotSigned`]) name them.
//!
//! The SM-DP+ signs smdpSignature3 over `DER(SmdpSigned3 as 30) ‖ 5F37 euiccSignature1`
//! ([`smdp_signed3_tbs`]; the v3 text was not available, this follows smdpSignature2 of v2
//! section 5.7.5).

use crate::codec::{
    Codec, FieldValue, SeqCodec, Signed, TaggedChoiceForm, explicit_inner, int_enum, opt, put,
    put_opt, req, tagged_choice_alternative, write_wrapped,
};
use crate::common::{Iccid, TAG_ICCID, TAG_SIGNATURE, TransactionId, read_signature};
use crate::error::DecodeError;
use crate::es10c::{ProfileInfoListError, ProfileInfoListResponse};
use crate::notification::NotificationMetadata;
use crate::prim::Oid;
use crate::tlv::{Reader, Tag, Tlv, write_tlv};

fn c(n: u32) -> Tag {
    Tag::context(n)
}
fn cc(n: u32) -> Tag {
    Tag::context_constructed(n)
}

/// `UpdateMetadataRequest` tag (`BF2A`).
pub const TAG_UPDATE_METADATA: Tag = Tag(0xBF2A);
/// `LoadRpmPackageRequest` / `LoadRpmPackageResult` tag (`BF44`).
pub const TAG_LOAD_RPM_PACKAGE: Tag = Tag(0xBF44);
const TAG_PROFILE_INFO_LIST: Tag = Tag(0xBF2D);

/// `UpdateMetadataRequest ::= [42] SEQUENCE` (`BF2A`): every component optional. The common
/// ones are typed; any other component (v3 rpmConfiguration, notificationConfigurationInfo,
/// ...) is kept verbatim in `other` and written after the typed ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateMetadataRequest {
    /// `serviceProviderName [17]` (`91`, at most 32 bytes).
    pub service_provider_name: Option<String>,
    /// `profileName [18]` (`92`, at most 64 bytes).
    pub profile_name: Option<String>,
    /// `iconType [19]` (`93`; 0 jpg, 1 png).
    pub icon_type: Option<u64>,
    /// `icon [20]` (`94`, at most 1024 bytes).
    pub icon: Option<Vec<u8>>,
    /// `profilePolicyRules [25] PprIds` (`99`): the set bits.
    pub profile_policy_rules: Option<Vec<u32>>,
    /// Other components, complete TLVs as received.
    pub other: Vec<Vec<u8>>,
}

impl SeqCodec for UpdateMetadataRequest {
    const TAG: Tag = TAG_UPDATE_METADATA;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let service_provider_name = match r.read_optional(c(17))? {
            Some(t) => Some(crate::prim::decode_utf8(&t, "serviceProviderName", 0, 32)?),
            None => None,
        };
        let profile_name = match r.read_optional(c(18))? {
            Some(t) => Some(crate::prim::decode_utf8(&t, "profileName", 0, 64)?),
            None => None,
        };
        let icon_type = match r.read_optional(c(19))? {
            Some(t) => Some(crate::bpp::decode_icon_type(&t)?),
            None => None,
        };
        let icon = match r.read_optional(c(20))? {
            Some(t) => Some(crate::prim::decode_octets(&t, "icon", 0, 1024)?.to_vec()),
            None => None,
        };
        let profile_policy_rules = match r.read_optional(c(25))? {
            Some(t) => Some(crate::prim::decode_named_bits(&t, "profilePolicyRules")?),
            None => None,
        };
        let mut other = Vec::new();
        while !r.is_empty() {
            let t = r.read()?;
            crate::codec::check_well_formed(&t)?;
            other.push(t.raw.to_vec());
        }
        Ok(UpdateMetadataRequest {
            service_provider_name,
            profile_name,
            icon_type,
            icon,
            profile_policy_rules,
            other,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put_opt(out, c(17), &self.service_provider_name);
        put_opt(out, c(18), &self.profile_name);
        if let Some(t) = self.icon_type {
            crate::prim::write_int(out, c(19), i64::try_from(t).unwrap_or(i64::MAX));
        }
        put_opt(out, c(20), &self.icon);
        if let Some(p) = &self.profile_policy_rules {
            crate::prim::write_named_bits(out, c(25), p);
        }
        for o in &self.other {
            out.extend_from_slice(o);
        }
    }
}

/// `searchCriteria` of `ListProfileInfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListProfileInfoCriteria {
    /// `iccid` (`5A`).
    Iccid(Iccid),
    /// `profileOwnerOid [0]` (`80`).
    ProfileOwnerOid(Oid),
}

/// `RpmCommand.rpmCommandDetails`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RpmCommandDetails {
    /// `enable [1]` (`A1`).
    Enable {
        /// Target profile.
        iccid: Iccid,
    },
    /// `disable [2]` (`A2`).
    Disable {
        /// Target profile.
        iccid: Iccid,
    },
    /// `delete [3]` (`A3`).
    Delete {
        /// Target profile.
        iccid: Iccid,
    },
    /// `listProfileInfo [4]` (`A4 { A0 {5A | 80}, [5C tagList] }`).
    ListProfileInfo {
        /// Which profiles.
        criteria: ListProfileInfoCriteria,
        /// `tagList` (`5C`): the ProfileInfo tags wanted.
        tag_list: Option<Vec<u8>>,
    },
    /// `updateMetadata [5]` (`A5 { 5A, BF2A }`).
    UpdateMetadata {
        /// Target profile.
        iccid: Iccid,
        /// The new metadata.
        request: UpdateMetadataRequest,
    },
    /// `contactPcmp [6]` (`A6 { 5A, [0C dpiRpm] }`).
    ContactPcmp {
        /// Target profile.
        iccid: Iccid,
        /// `dpiRpm`.
        dpi_rpm: Option<String>,
    },
}

impl RpmCommandDetails {
    /// The command's ICCID (`None` for listProfileInfo by owner OID).
    pub fn iccid(&self) -> Option<Iccid> {
        match self {
            RpmCommandDetails::Enable { iccid }
            | RpmCommandDetails::Disable { iccid }
            | RpmCommandDetails::Delete { iccid }
            | RpmCommandDetails::UpdateMetadata { iccid, .. }
            | RpmCommandDetails::ContactPcmp { iccid, .. } => Some(*iccid),
            RpmCommandDetails::ListProfileInfo {
                criteria: ListProfileInfoCriteria::Iccid(i),
                ..
            } => Some(*i),
            RpmCommandDetails::ListProfileInfo { .. } => None,
        }
    }

    /// The command's ASN.1 name.
    pub fn name(&self) -> &'static str {
        match self {
            RpmCommandDetails::Enable { .. } => "enable",
            RpmCommandDetails::Disable { .. } => "disable",
            RpmCommandDetails::Delete { .. } => "delete",
            RpmCommandDetails::ListProfileInfo { .. } => "listProfileInfo",
            RpmCommandDetails::UpdateMetadata { .. } => "updateMetadata",
            RpmCommandDetails::ContactPcmp { .. } => "contactPcmp",
        }
    }
}

/// `RpmCommand ::= SEQUENCE { continueOnFailure [0] NULL OPTIONAL, rpmCommandDetails CHOICE }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpmCommand {
    /// `continueOnFailure`: go on with the next command if this one fails.
    pub continue_on_failure: bool,
    /// The command.
    pub details: RpmCommandDetails,
}

fn iccid_only(t: &Tlv<'_>) -> Result<Iccid, DecodeError> {
    let mut r = t.reader()?;
    let iccid = req(&mut r, TAG_ICCID, "iccid")?;
    r.finish()?;
    Ok(iccid)
}

impl SeqCodec for RpmCommand {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let continue_on_failure = opt::<()>(r, c(0), "continueOnFailure")?.is_some();
        let t = r.read()?;
        let details = match t.tag {
            x if x == cc(1) => RpmCommandDetails::Enable {
                iccid: iccid_only(&t)?,
            },
            x if x == cc(2) => RpmCommandDetails::Disable {
                iccid: iccid_only(&t)?,
            },
            x if x == cc(3) => RpmCommandDetails::Delete {
                iccid: iccid_only(&t)?,
            },
            x if x == cc(4) => {
                let mut i = t.reader()?;
                let sc = i.read_expect(cc(0))?;
                let sc = crate::codec::explicit_inner(&sc, cc(0))?;
                let criteria = match sc.tag {
                    TAG_ICCID => ListProfileInfoCriteria::Iccid(Iccid::decode_value(&sc, "iccid")?),
                    x if x == c(0) => ListProfileInfoCriteria::ProfileOwnerOid(Oid::decode_value(
                        &sc,
                        "profileOwnerOid",
                    )?),
                    found => {
                        return Err(DecodeError::UnexpectedTag {
                            expected: TAG_ICCID,
                            found,
                        });
                    }
                };
                let tag_list = opt(&mut i, Tag::application(28), "tagList")?;
                i.finish()?;
                RpmCommandDetails::ListProfileInfo { criteria, tag_list }
            }
            x if x == cc(5) => {
                let mut i = t.reader()?;
                let iccid = req(&mut i, TAG_ICCID, "iccid")?;
                let request = UpdateMetadataRequest::decode_tlv(&i.read()?)?;
                i.finish()?;
                RpmCommandDetails::UpdateMetadata { iccid, request }
            }
            x if x == cc(6) => {
                let mut i = t.reader()?;
                let iccid = req(&mut i, TAG_ICCID, "iccid")?;
                let dpi_rpm = opt(&mut i, Tag::UTF8_STRING, "dpiRpm")?;
                i.finish()?;
                RpmCommandDetails::ContactPcmp { iccid, dpi_rpm }
            }
            found => {
                return Err(DecodeError::UnexpectedTag {
                    expected: cc(1),
                    found,
                });
            }
        };
        r.finish()?;
        Ok(RpmCommand {
            continue_on_failure,
            details,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        if self.continue_on_failure {
            write_tlv(out, c(0), &[]);
        }
        let mut inner = Vec::new();
        let tag = match &self.details {
            RpmCommandDetails::Enable { iccid } => {
                put(&mut inner, TAG_ICCID, iccid);
                cc(1)
            }
            RpmCommandDetails::Disable { iccid } => {
                put(&mut inner, TAG_ICCID, iccid);
                cc(2)
            }
            RpmCommandDetails::Delete { iccid } => {
                put(&mut inner, TAG_ICCID, iccid);
                cc(3)
            }
            RpmCommandDetails::ListProfileInfo { criteria, tag_list } => {
                let mut sc = Vec::new();
                match criteria {
                    ListProfileInfoCriteria::Iccid(i) => put(&mut sc, TAG_ICCID, i),
                    ListProfileInfoCriteria::ProfileOwnerOid(o) => put(&mut sc, c(0), o),
                }
                write_tlv(&mut inner, cc(0), &sc);
                put_opt(&mut inner, Tag::application(28), tag_list);
                cc(4)
            }
            RpmCommandDetails::UpdateMetadata { iccid, request } => {
                put(&mut inner, TAG_ICCID, iccid);
                request.encode_into(&mut inner);
                cc(5)
            }
            RpmCommandDetails::ContactPcmp { iccid, dpi_rpm } => {
                put(&mut inner, TAG_ICCID, iccid);
                put_opt(&mut inner, Tag::UTF8_STRING, dpi_rpm);
                cc(6)
            }
        };
        write_tlv(out, tag, &inner);
    }
}

/// `RpmPackage ::= SEQUENCE OF RpmCommand` (`30`, how ES2+ `rpmScript` carries it; inside
/// [`SmdpSigned3`] the same contents carry `A1`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RpmPackage(pub Vec<RpmCommand>);

impl RpmPackage {
    fn decode_contents(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        let mut r = t.reader()?;
        let mut cmds = Vec::new();
        while !r.is_empty() {
            cmds.push(RpmCommand::decode_tlv(&r.read()?)?);
        }
        Ok(RpmPackage(cmds))
    }
    fn encode_as(&self, tag: Tag, out: &mut Vec<u8>) {
        let mut inner = Vec::new();
        for c in &self.0 {
            c.encode_into(&mut inner);
        }
        write_tlv(out, tag, &inner);
    }
}

impl RpmPackage {
    /// The tag of `SmdpSigned3.rpmPackage [1]` (`A1`).
    pub const SMDP_SIGNED3_TAG: Tag = Tag(0xA1);

    /// Decode one complete element carrying the implicit tag `tag` (`A1` inside
    /// `SmdpSigned3`); [`Codec::decode`] is the standalone `30` form (ES2+ `rpmScript`).
    pub fn decode_with_tag(input: &[u8], tag: Tag) -> Result<Self, DecodeError> {
        Self::decode_contents(&crate::tlv::parse_single(input)?.expect(tag)?)
    }

    /// The DER under the implicit tag `tag` (`A1` inside `SmdpSigned3`); [`Codec::encode`]
    /// is the standalone `30` form.
    pub fn encode_with_tag(&self, tag: Tag) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_as(tag, &mut out);
        out
    }
}

impl Codec for RpmPackage {
    fn decode_tlv(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        Self::decode_contents(&t.expect(Tag::SEQUENCE)?)
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        self.encode_as(Tag::SEQUENCE, out);
    }
}

/// `SmdpSigned3 ::= SEQUENCE { transactionId [0], rpmPackage [1], rpmPending [2] NULL
/// OPTIONAL }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmdpSigned3 {
    /// The RSP session's TransactionID.
    pub transaction_id: TransactionId,
    /// The commands.
    pub rpm_package: RpmPackage,
    /// More packages wait for this eUICC.
    pub rpm_pending: bool,
}

impl SeqCodec for SmdpSigned3 {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let transaction_id = req(r, c(0), "transactionId")?;
        let rpm_package = RpmPackage::decode_contents(&r.read_expect(cc(1))?)?;
        let rpm_pending = opt::<()>(r, c(2), "rpmPending")?.is_some();
        r.finish()?;
        Ok(SmdpSigned3 {
            transaction_id,
            rpm_package,
            rpm_pending,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.transaction_id);
        self.rpm_package.encode_as(cc(1), out);
        if self.rpm_pending {
            write_tlv(out, c(2), &[]);
        }
    }
}

/// The bytes smdpSignature3 covers: `smdpSigned3` (its `30` encoding as sent in
/// LoadRpmPackageRequest) followed by euiccSignature1 (`euicc_signature1`: the raw r‖s,
/// the contents of `5F37`) as a `5F37` element.
///
/// Open point (digest §4 and §9 #1): the v3 text of this rule was not available; this
/// follows v2.2's smdpSignature2 ("SHALL apply on the concatenated data object smdpSigned2
/// and euiccSignature1") with the `30` form of smdpSigned3 (the form the eUICC receives;
/// [`AuthenticateClientOkRpm::smdp_signed3`] keeps it). Signer and verifiers all call this
/// one function, so a correction lands in one place.
pub fn smdp_signed3_tbs(smdp_signed3_der: &[u8], euicc_signature1: &[u8]) -> Vec<u8> {
    let mut v = smdp_signed3_der.to_vec();
    write_tlv(&mut v, TAG_SIGNATURE, euicc_signature1);
    v
}

/// `AuthenticateClientOkRpm ::= SEQUENCE { transactionId [0], smdpSigned3 [3] SmdpSigned3,
/// smdpSignature3 [APPLICATION 55] }` (`30 { 80, A3, 5F37 }`; `A2` inside
/// `AuthenticateClientResponseEs9`). It has no certificate: the eUICC verifies with the
/// CERT.DPauth.SIG of AuthenticateServer.
///
/// `smdp_signed3` keeps the **`30` form**: the received `A3` contents under a `30` header,
/// which is exactly the element the LPA forwards in [`LoadRpmPackageRequest`] and the
/// eUICC verifies (trap 1). Encoding writes the same contents under `A3`, so a relayed
/// message stays byte-identical. In the ES9+ JSON binding `smdpSigned3` is base64 of
/// `smdp_signed3.raw()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticateClientOkRpm {
    /// The RSP session's TransactionID.
    pub transaction_id: TransactionId,
    /// The signed package, its bytes in the `30` form.
    pub smdp_signed3: Signed<SmdpSigned3>,
    /// smdpSignature3 (r‖s, the contents of `5F37`).
    pub smdp_signature3: Vec<u8>,
}

impl AuthenticateClientOkRpm {
    /// The tag of `smdpSigned3` in this type (`[3]`, `A3`).
    pub const SMDP_SIGNED3_TAG: Tag = Tag(0xA3);
}

impl SeqCodec for AuthenticateClientOkRpm {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let transaction_id = req(r, c(0), "transactionId")?;
        let smdp_signed3 = Signed::decode_implicit_retagged(
            &r.read_expect(Self::SMDP_SIGNED3_TAG)?,
            Self::SMDP_SIGNED3_TAG,
        )?;
        let smdp_signature3 = read_signature(r, "smdpSignature3")?;
        r.finish()?;
        Ok(AuthenticateClientOkRpm {
            transaction_id,
            smdp_signed3,
            smdp_signature3,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.transaction_id);
        self.smdp_signed3.encode_as(Self::SMDP_SIGNED3_TAG, out);
        write_tlv(out, TAG_SIGNATURE, &self.smdp_signature3);
    }
}

/// `LoadRpmPackageRequest ::= [68] SEQUENCE { smdpSigned3, smdpSignature3 [APPLICATION 55],
/// targetEsimPort INTEGER OPTIONAL }` (`BF44`). `smdp_signed3_raw` keeps the received bytes
/// of smdpSigned3, which the signature covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadRpmPackageRequest {
    /// The signed package.
    pub smdp_signed3: SmdpSigned3,
    /// The exact bytes of `smdpSigned3` as received (or as encoded when built locally).
    pub smdp_signed3_raw: Vec<u8>,
    /// smdpSignature3 (r‖s).
    pub smdp_signature3: Vec<u8>,
    /// `targetEsimPort` (multiple enabled profiles).
    pub target_esim_port: Option<i64>,
}

impl LoadRpmPackageRequest {
    /// A request around a locally built `SmdpSigned3`.
    pub fn new(smdp_signed3: SmdpSigned3, smdp_signature3: Vec<u8>) -> Self {
        let smdp_signed3_raw = smdp_signed3.encode();
        LoadRpmPackageRequest {
            smdp_signed3,
            smdp_signed3_raw,
            smdp_signature3,
            target_esim_port: None,
        }
    }

    /// The request an LPA builds from the ES9+ answer: the same smdpSigned3 bytes (the `30`
    /// form, see [`AuthenticateClientOkRpm`]) and signature.
    pub fn from_authenticate_client_ok_rpm(
        ok: &AuthenticateClientOkRpm,
        target_esim_port: Option<i64>,
    ) -> Self {
        LoadRpmPackageRequest {
            smdp_signed3: ok.smdp_signed3.value().clone(),
            smdp_signed3_raw: ok.smdp_signed3.raw().to_vec(),
            smdp_signature3: ok.smdp_signature3.clone(),
            target_esim_port,
        }
    }
}

impl SeqCodec for LoadRpmPackageRequest {
    const TAG: Tag = TAG_LOAD_RPM_PACKAGE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let t = r.read_expect(Tag::SEQUENCE)?;
        let smdp_signed3 = SmdpSigned3::decode_tlv(&t)?;
        let smdp_signature3 = req(r, TAG_SIGNATURE, "smdpSignature3")?;
        let target_esim_port = opt(r, Tag::INTEGER, "targetEsimPort")?;
        r.finish()?;
        Ok(LoadRpmPackageRequest {
            smdp_signed3,
            smdp_signed3_raw: t.raw.to_vec(),
            smdp_signature3,
            target_esim_port,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.smdp_signed3_raw);
        write_tlv(out, TAG_SIGNATURE, &self.smdp_signature3);
        put_opt(out, Tag::INTEGER, &self.target_esim_port);
    }
}

/// `RpmCommandResult.rpmCommandResultData`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RpmCommandResultData {
    /// `enableResult [49]` (`BF31 {80 n [81 port]}`): ok 0, iccidOrAidNotFound 1,
    /// profileNotInDisabledState 2, disallowedByPolicy 3, ..., disallowedForRpm 9.
    Enable(i64),
    /// `disableResult [50]` (`BF32 {80 n}`): ok 0, ..., profileNotInEnabledState 2,
    /// disallowedByPolicy 3, disallowedForRpm 10.
    Disable(i64),
    /// `deleteResult [51]` (`BF33 {80 n}`): ok 0, ..., profileNotInDisabledState 2,
    /// disallowedByPolicy 3.
    Delete(i64),
    /// `listProfileInfoResult [45]` (`BF2D`), the complete element as received.
    ListProfileInfo(Vec<u8>),
    /// `updateMetadataResult [42] INTEGER` (`9F2A`): ok 0, commandError 7, ...
    UpdateMetadata(i64),
    /// `contactPcmpResult [0]` (`A0`), the complete element as received.
    ContactPcmp(Vec<u8>),
    /// `rpmProcessingTerminated INTEGER` (`02`): resultSizeOverflow 1, ..., interruption 3,
    /// commandsWithRefreshExceeded 4, commandAfterContactPcmp 5, commandPackageTooLarge 6.
    Terminated(i64),
}

int_enum!(
    /// `EnableProfileResponse.enableResult` of v3 (the value of
    /// [`RpmCommandResultData::Enable`]).
    RpmEnableResult {
        Ok = 0,
        IccidOrAidNotFound = 1,
        ProfileNotInDisabledState = 2,
        DisallowedByPolicy = 3,
        WrongProfileReenabling = 4,
        CatBusy = 5,
        DisallowedByEnterpriseRule = 6,
        CommandError = 7,
        DisallowedForRpm = 9,
        NoEsimPortAvailable = 10,
        UndefinedError = 127,
    }
);
int_enum!(
    /// `DisableProfileResponse.disableResult` of v3 (the value of
    /// [`RpmCommandResultData::Disable`]).
    RpmDisableResult {
        Ok = 0,
        IccidOrAidNotFound = 1,
        ProfileNotInEnabledState = 2,
        DisallowedByPolicy = 3,
        CatBusy = 5,
        CommandError = 7,
        DisallowedForRpm = 10,
        UndefinedError = 127,
    }
);
int_enum!(
    /// `DeleteProfileResponse.deleteResult` of v3 (the value of
    /// [`RpmCommandResultData::Delete`]).
    RpmDeleteResult {
        Ok = 0,
        IccidOrAidNotFound = 1,
        ProfileNotInDisabledState = 2,
        DisallowedByPolicy = 3,
        DisallowedInTestMode = 4,
        CommandError = 7,
        UndefinedError = 127,
    }
);
int_enum!(
    /// `UpdateMetadataResponse ::= [42] INTEGER` (`9F2A`; the value of
    /// [`RpmCommandResultData::UpdateMetadata`]).
    UpdateMetadataResult {
        Ok = 0,
        EnterpriseConfigurationNotAllowed = 6,
        CommandError = 7,
        PprUpdateInvalidSetting = 12,
        InvalidRpmConfiguration = 14,
        DeleteNotAllowed = 15,
        UndefinedError = 127,
    }
);
int_enum!(
    /// `ContactPcmpResponse.contactPcmpResponseError` (`81`).
    ContactPcmpError {
        ProfileNotEnabled = 2,
        CommandError = 7,
        NoLprConfiguration = 13,
        UndefinedError = 127,
    }
);
int_enum!(
    /// `RpmCommandResult.rpmProcessingTerminated` (`02`; the value of
    /// [`RpmCommandResultData::Terminated`]): why the eUICC stopped at this point.
    RpmProcessingTerminated {
        ResultSizeOverflow = 1,
        UnknownOrDamagedCommand = 2,
        Interruption = 3,
        CommandsWithRefreshExceeded = 4,
        CommandAfterContactPcmp = 5,
        CommandPackageTooLarge = 6,
    }
);
int_enum!(
    /// `LoadRpmPackageErrorCodeSigned` (the value of [`RpmFinalResult::ErrorCode`]).
    LoadRpmPackageErrorCodeSigned { InvalidSignature = 2, InvalidTransactionId = 5, UndefinedError = 127 }
);
int_enum!(
    /// `LoadRpmPackageErrorCodeNotSigned` (the `error_code` of
    /// [`LoadRpmPackageResult::NotSigned`]).
    LoadRpmPackageErrorCodeNotSigned { NoSession = 4, UndefinedError = 127 }
);

/// `ContactPcmpResponse ::= CHOICE { contactPcmpResponseOk SEQUENCE { pcmpAddress
/// UTF8String }, contactPcmpResponseError INTEGER }` (AUTOMATIC `A0 { 80 }` / `81`). As
/// `contactPcmpResult [0]` it sits inside an explicit `A0` (an untagged CHOICE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContactPcmpResponse {
    /// `contactPcmpResponseOk`: the PCMP the LPA is to contact.
    Ok {
        /// `pcmpAddress` (`80`).
        pcmp_address: String,
    },
    /// `contactPcmpResponseError` (`81`).
    Error(ContactPcmpError),
}

impl ContactPcmpResponse {
    /// Decode from the alternative's element (`A0` or `81`).
    pub fn decode_alternative(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        match t.tag {
            x if x == cc(0) => {
                let mut r = t.reader()?;
                let pcmp_address = req(&mut r, c(0), "pcmpAddress")?;
                r.finish()?;
                Ok(ContactPcmpResponse::Ok { pcmp_address })
            }
            x if x == c(1) => Ok(ContactPcmpResponse::Error(ContactPcmpError::decode_value(
                t,
                "contactPcmpResponseError",
            )?)),
            found => Err(DecodeError::UnexpectedTag {
                expected: cc(0),
                found,
            }),
        }
    }

    /// Append the alternative's element.
    pub fn encode_alternative(&self, out: &mut Vec<u8>) {
        match self {
            ContactPcmpResponse::Ok { pcmp_address } => {
                write_wrapped(out, cc(0), |o| put(o, c(0), pcmp_address))
            }
            ContactPcmpResponse::Error(e) => put(out, c(1), e),
        }
    }

    /// Decode a complete `contactPcmpResult` element (`A0 { .. }`).
    pub fn decode_result_element(raw: &[u8]) -> Result<Self, DecodeError> {
        let t = crate::tlv::parse_single(raw)?;
        Self::decode_alternative(&explicit_inner(&t, cc(0))?)
    }

    /// The complete `contactPcmpResult` element (`A0 { .. }`).
    pub fn encode_result_element(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_wrapped(&mut out, cc(0), |o| self.encode_alternative(o));
        out
    }
}

/// Decode a complete `listProfileInfoResult` element, a single `BF2D` or the doubled
/// `BF2D BF2D`.
fn decode_list_profile_info_element(
    raw: &[u8],
) -> Result<(ProfileInfoListResponse, TaggedChoiceForm), DecodeError> {
    let t = crate::tlv::parse_single(raw)?.expect(TAG_PROFILE_INFO_LIST)?;
    let (alt, form) = tagged_choice_alternative(&t, TAG_PROFILE_INFO_LIST)?;
    Ok((ProfileInfoListResponse::decode_alternative(&alt)?, form))
}

impl RpmCommandResultData {
    /// A `listProfileInfoResult` holding `response` in `form` (a single `BF2D` is
    /// [`TaggedChoiceForm::Implicit`], X.680; `BF2D BF2D` is `Nested`, asn1tools').
    pub fn list_profile_info_from(
        response: &ProfileInfoListResponse,
        form: TaggedChoiceForm,
    ) -> Self {
        let mut out = Vec::new();
        match form {
            TaggedChoiceForm::Implicit => response.encode_into(&mut out),
            TaggedChoiceForm::Nested => {
                write_wrapped(&mut out, TAG_PROFILE_INFO_LIST, |o| response.encode_into(o))
            }
        }
        RpmCommandResultData::ListProfileInfo(out)
    }

    /// A `contactPcmpResult` holding `response`.
    pub fn contact_pcmp_from(response: &ContactPcmpResponse) -> Self {
        RpmCommandResultData::ContactPcmp(response.encode_result_element())
    }

    /// The typed `listProfileInfoResult` and the form it came in; `None` for the other
    /// alternatives. Decoding checked it, so the `Err` case arises only for a value built
    /// with arbitrary bytes.
    pub fn list_profile_info(
        &self,
    ) -> Option<Result<(ProfileInfoListResponse, TaggedChoiceForm), DecodeError>> {
        match self {
            RpmCommandResultData::ListProfileInfo(raw) => {
                Some(decode_list_profile_info_element(raw))
            }
            _ => None,
        }
    }

    /// The typed `contactPcmpResult`; `None` for the other alternatives.
    pub fn contact_pcmp(&self) -> Option<Result<ContactPcmpResponse, DecodeError>> {
        match self {
            RpmCommandResultData::ContactPcmp(raw) => {
                Some(ContactPcmpResponse::decode_result_element(raw))
            }
            _ => None,
        }
    }

    /// The result code (0 = ok) where the result is a code; listProfileInfo is 0 when it
    /// holds a list and its `ProfileInfoListError` otherwise, contactPcmp 0 when it holds
    /// an address and its error otherwise (127 if the kept bytes do not decode).
    pub fn code(&self) -> i64 {
        match self {
            RpmCommandResultData::Enable(n)
            | RpmCommandResultData::Disable(n)
            | RpmCommandResultData::Delete(n)
            | RpmCommandResultData::UpdateMetadata(n) => *n,
            RpmCommandResultData::Terminated(n) => *n,
            RpmCommandResultData::ListProfileInfo(raw) => {
                match decode_list_profile_info_element(raw) {
                    Ok((ProfileInfoListResponse::Ok(_), _)) => 0,
                    Ok((ProfileInfoListResponse::Error(e), _)) => e.to_i64(),
                    Err(_) => ProfileInfoListError::UndefinedError.to_i64(),
                }
            }
            RpmCommandResultData::ContactPcmp(raw) => {
                match ContactPcmpResponse::decode_result_element(raw) {
                    Ok(ContactPcmpResponse::Ok { .. }) => 0,
                    Ok(ContactPcmpResponse::Error(e)) => e.to_i64(),
                    Err(_) => ContactPcmpError::UndefinedError.to_i64(),
                }
            }
        }
    }

    /// Whether the command succeeded.
    pub fn is_ok(&self) -> bool {
        !matches!(self, RpmCommandResultData::Terminated(_)) && self.code() == 0
    }

    /// The command name this result belongs to.
    pub fn name(&self) -> &'static str {
        match self {
            RpmCommandResultData::Enable(_) => "enable",
            RpmCommandResultData::Disable(_) => "disable",
            RpmCommandResultData::Delete(_) => "delete",
            RpmCommandResultData::ListProfileInfo(_) => "listProfileInfo",
            RpmCommandResultData::UpdateMetadata(_) => "updateMetadata",
            RpmCommandResultData::ContactPcmp(_) => "contactPcmp",
            RpmCommandResultData::Terminated(_) => "rpmProcessingTerminated",
        }
    }
}

/// `RpmCommandResult ::= SEQUENCE { iccid OPTIONAL, rpmCommandResultData CHOICE }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpmCommandResult {
    /// The command's profile (absent for listProfileInfo and rpmProcessingTerminated).
    pub iccid: Option<Iccid>,
    /// The outcome.
    pub data: RpmCommandResultData,
}

fn first_int(t: &Tlv<'_>, field: &'static str) -> Result<i64, DecodeError> {
    let mut r = t.reader()?;
    let n = req(&mut r, c(0), field)?;
    // v3 enableResult may carry the eSIM port [1]; nothing else.
    let _port: Option<i64> = opt(&mut r, c(1), "eSimPort")?;
    r.finish()?;
    Ok(n)
}

impl SeqCodec for RpmCommandResult {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let iccid = opt(r, TAG_ICCID, "iccid")?;
        let t = r.read()?;
        let data = match t.tag {
            Tag(0xBF31) => RpmCommandResultData::Enable(first_int(&t, "enableResult")?),
            Tag(0xBF32) => RpmCommandResultData::Disable(first_int(&t, "disableResult")?),
            Tag(0xBF33) => RpmCommandResultData::Delete(first_int(&t, "deleteResult")?),
            TAG_PROFILE_INFO_LIST => {
                decode_list_profile_info_element(t.raw)?;
                RpmCommandResultData::ListProfileInfo(t.raw.to_vec())
            }
            Tag(0x9F2A) => {
                RpmCommandResultData::UpdateMetadata(i64::decode_value(&t, "updateMetadataResult")?)
            }
            x if x == cc(0) => {
                ContactPcmpResponse::decode_result_element(t.raw)?;
                RpmCommandResultData::ContactPcmp(t.raw.to_vec())
            }
            Tag::INTEGER => {
                RpmCommandResultData::Terminated(i64::decode_value(&t, "rpmProcessingTerminated")?)
            }
            found => {
                return Err(DecodeError::UnexpectedTag {
                    expected: Tag(0xBF31),
                    found,
                });
            }
        };
        r.finish()?;
        Ok(RpmCommandResult { iccid, data })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put_opt(out, TAG_ICCID, &self.iccid);
        let code = |out: &mut Vec<u8>, tag: Tag, n: i64| {
            let mut i = Vec::new();
            crate::prim::write_int(&mut i, c(0), n);
            write_tlv(out, tag, &i);
        };
        match &self.data {
            RpmCommandResultData::Enable(n) => code(out, Tag(0xBF31), *n),
            RpmCommandResultData::Disable(n) => code(out, Tag(0xBF32), *n),
            RpmCommandResultData::Delete(n) => code(out, Tag(0xBF33), *n),
            RpmCommandResultData::ListProfileInfo(raw) | RpmCommandResultData::ContactPcmp(raw) => {
                out.extend_from_slice(raw);
            }
            RpmCommandResultData::UpdateMetadata(n) => crate::prim::write_int(out, Tag(0x9F2A), *n),
            RpmCommandResultData::Terminated(n) => crate::prim::write_int(out, Tag::INTEGER, *n),
        }
    }
}

/// `finalResult [2] CHOICE` of the signed result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RpmFinalResult {
    /// `rpmPackageExecutionResult` (`A0`): one result per command run, in package order.
    ExecutionResults(Vec<RpmCommandResult>),
    /// `loadRpmPackageErrorCodeSigned` (`81`): invalidSignature 2, invalidTransactionId 5,
    /// undefinedError 127.
    ErrorCode(i64),
}

/// `LoadRpmPackageResultDataSigned`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadRpmPackageResultDataSigned {
    /// The RSP session's TransactionID.
    pub transaction_id: TransactionId,
    /// The notification metadata (seqNumber, operation bit 7, address, ICCID).
    pub notification_metadata: NotificationMetadata,
    /// SM-DP+ OID (from CERT.DPauth.SIG).
    pub smdp_oid: Oid,
    /// The outcome.
    pub final_result: RpmFinalResult,
}

impl SeqCodec for LoadRpmPackageResultDataSigned {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let transaction_id = req(r, c(0), "transactionId")?;
        let notification_metadata = NotificationMetadata::decode_tlv(&r.read()?)?;
        let smdp_oid = req(r, Tag::OID, "smdpOid")?;
        let fr = r.read_expect(cc(2))?;
        let inner = crate::codec::explicit_inner(&fr, cc(2))?;
        let final_result = match inner.tag {
            x if x == cc(0) => {
                let mut rr = inner.reader()?;
                let mut v = Vec::new();
                while !rr.is_empty() {
                    v.push(RpmCommandResult::decode_tlv(&rr.read()?)?);
                }
                RpmFinalResult::ExecutionResults(v)
            }
            x if x == c(1) => RpmFinalResult::ErrorCode(i64::decode_value(
                &inner,
                "loadRpmPackageErrorCodeSigned",
            )?),
            found => {
                return Err(DecodeError::UnexpectedTag {
                    expected: cc(0),
                    found,
                });
            }
        };
        r.finish()?;
        Ok(LoadRpmPackageResultDataSigned {
            transaction_id,
            notification_metadata,
            smdp_oid,
            final_result,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.transaction_id);
        self.notification_metadata.encode_into(out);
        put(out, Tag::OID, &self.smdp_oid);
        let mut inner = Vec::new();
        match &self.final_result {
            RpmFinalResult::ExecutionResults(v) => {
                let mut l = Vec::new();
                for r in v {
                    r.encode_into(&mut l);
                }
                write_tlv(&mut inner, cc(0), &l);
            }
            RpmFinalResult::ErrorCode(n) => crate::prim::write_int(&mut inner, c(1), *n),
        }
        write_tlv(out, cc(2), &inner);
    }
}

/// Which tags a signed result arrived with (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ResultForm {
    /// Strict AUTOMATIC tags: data `A0`, signature `81`.
    #[default]
    Automatic,
    /// The type references' own tags: data `30`, signature `5F37`.
    Universal,
}

/// `LoadRpmPackageResultSigned ::= SEQUENCE { loadRpmPackageResultDataSigned,
/// euiccSignRPR EuiccSign }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadRpmPackageResultSigned {
    /// The signed data.
    pub data: LoadRpmPackageResultDataSigned,
    /// The data element exactly as received (what euiccSignRPR covers).
    pub data_raw: Vec<u8>,
    /// euiccSignRPR (r‖s).
    pub euicc_sign_rpr: Vec<u8>,
    /// The tag form received.
    pub form: ResultForm,
}

impl LoadRpmPackageResultSigned {
    /// The data element of `data` encoded in `form` (sign these bytes, then
    /// [`LoadRpmPackageResultSigned::from_parts`]).
    pub fn data_bytes(data: &LoadRpmPackageResultDataSigned, form: ResultForm) -> Vec<u8> {
        let mut body = Vec::new();
        data.encode_body(&mut body);
        let mut out = Vec::new();
        write_tlv(
            &mut out,
            match form {
                ResultForm::Automatic => cc(0),
                ResultForm::Universal => Tag::SEQUENCE,
            },
            &body,
        );
        out
    }

    /// A result from its data and the signature over [`LoadRpmPackageResultSigned::data_bytes`].
    pub fn from_parts(
        data: LoadRpmPackageResultDataSigned,
        euicc_sign_rpr: Vec<u8>,
        form: ResultForm,
    ) -> Self {
        let data_raw = Self::data_bytes(&data, form);
        LoadRpmPackageResultSigned {
            data,
            data_raw,
            euicc_sign_rpr,
            form,
        }
    }

    /// The bytes euiccSignRPR covers: the data element as received.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.data_raw
    }

    /// The data element with its tag replaced by `30` (a second reading of the signed
    /// input, for a verifier whose first attempt failed on an `A0` element): the received
    /// contents octets, unchanged, under a `30` header.
    pub fn signed_bytes_as_sequence(&self) -> Vec<u8> {
        match crate::tlv::parse_single(&self.data_raw) {
            Ok(t) => crate::tlv::tlv(Tag::SEQUENCE, t.value),
            // data_raw is always one element; fall back to re-encoding the value.
            Err(_) => Self::data_bytes(&self.data, ResultForm::Universal),
        }
    }

    /// The inputs to try when verifying euiccSignRPR, most likely first: the data element
    /// as received, then (when it came as `A0`) the same element retagged `30`.
    pub fn signed_data_candidates(&self) -> Vec<Vec<u8>> {
        let first = self.data_raw.clone();
        let second = self.signed_bytes_as_sequence();
        if first == second {
            vec![first]
        } else {
            vec![first, second]
        }
    }

    /// The `PendingNotification` (`[1]`, `A1`) an LPA forwards in HandleNotification.
    pub fn into_pending_notification(self) -> crate::notification::PendingNotification {
        crate::notification::PendingNotification::LoadRpmPackageResultSigned(Box::new(self))
    }

    fn decode_contents(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        let mut r = t.reader()?;
        let d = r.read()?;
        let form = match d.tag {
            x if x == cc(0) => ResultForm::Automatic,
            Tag::SEQUENCE => ResultForm::Universal,
            found => {
                return Err(DecodeError::UnexpectedTag {
                    expected: cc(0),
                    found,
                });
            }
        };
        let data = crate::codec::decode_seq_contents::<LoadRpmPackageResultDataSigned>(&d)?;
        let sig_tag = match form {
            ResultForm::Automatic => c(1),
            ResultForm::Universal => TAG_SIGNATURE,
        };
        let euicc_sign_rpr = req(&mut r, sig_tag, "euiccSignRPR")?;
        r.finish()?;
        Ok(LoadRpmPackageResultSigned {
            data,
            data_raw: d.raw.to_vec(),
            euicc_sign_rpr,
            form,
        })
    }

    fn encode_as(&self, tag: Tag, out: &mut Vec<u8>) {
        let mut body = self.data_raw.clone();
        let sig_tag = match self.form {
            ResultForm::Automatic => c(1),
            ResultForm::Universal => TAG_SIGNATURE,
        };
        write_tlv(&mut body, sig_tag, &self.euicc_sign_rpr);
        write_tlv(out, tag, &body);
    }

    /// Decode the contents of an element with any tag (`A0` in LoadRpmPackageResult, `A1` in
    /// PendingNotification).
    pub fn decode_tagged(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        Self::decode_contents(t)
    }

    /// Append with `tag`.
    pub fn encode_tagged(&self, tag: Tag, out: &mut Vec<u8>) {
        self.encode_as(tag, out);
    }
}

/// `LoadRpmPackageResult ::= [68] CHOICE { signed, notSigned }` (`BF44 { A0 | A1 }`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadRpmPackageResult {
    /// `loadRpmPackageResultSigned` (`A0`).
    Signed(Box<LoadRpmPackageResultSigned>),
    /// `loadRpmPackageResultNotSigned` (`A1 { 80 tid, 02 code }`): noSession 4,
    /// undefinedError 127.
    NotSigned {
        /// TransactionID.
        transaction_id: TransactionId,
        /// The error.
        error_code: i64,
    },
}

impl Codec for LoadRpmPackageResult {
    fn decode_tlv(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        let inner = crate::codec::explicit_inner(t, TAG_LOAD_RPM_PACKAGE)?;
        match inner.tag {
            x if x == cc(0) => Ok(LoadRpmPackageResult::Signed(Box::new(
                LoadRpmPackageResultSigned::decode_contents(&inner)?,
            ))),
            x if x == cc(1) => {
                let mut r = inner.reader()?;
                let transaction_id = req(&mut r, c(0), "transactionId")?;
                let error_code = req(&mut r, Tag::INTEGER, "loadRpmPackageErrorCodeNotSigned")?;
                r.finish()?;
                Ok(LoadRpmPackageResult::NotSigned {
                    transaction_id,
                    error_code,
                })
            }
            found => Err(DecodeError::UnexpectedTag {
                expected: cc(0),
                found,
            }),
        }
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        let mut inner = Vec::new();
        match self {
            LoadRpmPackageResult::Signed(s) => s.encode_as(cc(0), &mut inner),
            LoadRpmPackageResult::NotSigned {
                transaction_id,
                error_code,
            } => {
                let mut b = Vec::new();
                put(&mut b, c(0), transaction_id);
                crate::prim::write_int(&mut b, Tag::INTEGER, *error_code);
                write_tlv(&mut inner, cc(1), &b);
            }
        }
        write_tlv(out, TAG_LOAD_RPM_PACKAGE, &inner);
    }
}

/// `OperationType` bit `rpm(1)` of CtxParamsForCommonAuthentication (v3); `profileDownload`
/// is bit 0.
pub const OPERATION_TYPE_RPM: u32 = 1;
/// `OperationType` bit `profileDownload(0)`.
pub const OPERATION_TYPE_PROFILE_DOWNLOAD: u32 = 0;
