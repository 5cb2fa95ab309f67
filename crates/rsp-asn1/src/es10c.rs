//! ES10c local profile management and ES10c/ES10a eUICC data (SGP.22 v2.2 sections
//! 5.7.3, 5.7.15–5.7.20): `GetEuiccDataRequest/Response` (`BF3E`, EID in `5A`),
//! `EuiccConfiguredAddressesRequest/Response` (`BF3C`), `ProfileInfoListRequest/Response`
//! (`BF2D`, `ProfileInfo` `E3`), `EnableProfileRequest/Response` (`BF31`),
//! `DisableProfileRequest/Response` (`BF32`), `DeleteProfileRequest/Response` (`BF33`),
//! `SetNicknameRequest/Response` (`BF29`) and `EuiccMemoryResetRequest/Response` (`BF34`).
//!
//! `ProfileInfo.profileClass` is `DEFAULT operational` in the v2 schema but `OPTIONAL` in
//! v2.2 Annex H. Decoding accepts an explicit `operational` and holds it as absent (`None`,
//! which means `operational`); encoding follows DER for the DEFAULT and omits it.

use crate::codec::{
    BitString, Codec, Extensions, FieldValue, SeqCodec, SeqOfElement, explicit_inner, int_enum,
    opt, opt_utf8, put, put_opt, req, write_wrapped,
};
use crate::common::{
    DpProprietaryData, Eid, Iccid, IconType, NotificationConfigurationInformation, Octet1,
    OctetTo16, OperatorId, PprIds, ProfileClass, ProfileIdentifier, ProfileState, TAG_AID,
    TAG_ICCID, TAG_TAG_LIST,
};
use crate::error::DecodeError;
use crate::tlv::{Reader, Tag, Tlv};

fn c(n: u32) -> Tag {
    Tag::context(n)
}
fn cc(n: u32) -> Tag {
    Tag::context_constructed(n)
}

/// `GetEuiccDataRequest ::= [62] SEQUENCE { tagList [APPLICATION 28] Octet1 }` (tag
/// `BF3E`; the tag list SHALL be `5A`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetEuiccDataRequest {
    /// The requested tag (`5A` for the EID).
    pub tag_list: Octet1,
}

impl SeqCodec for GetEuiccDataRequest {
    const TAG: Tag = Tag(0xBF3E);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag_list = req(r, TAG_TAG_LIST, "tagList")?;
        r.finish()?;
        Ok(GetEuiccDataRequest { tag_list })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, TAG_TAG_LIST, &self.tag_list);
    }
}

/// `GetEuiccDataResponse ::= [62] SEQUENCE { eidValue [APPLICATION 26] Octet16 }` (tag
/// `BF3E`; `5A`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetEuiccDataResponse {
    /// The EID.
    pub eid_value: Eid,
}

impl SeqCodec for GetEuiccDataResponse {
    const TAG: Tag = Tag(0xBF3E);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let eid_value = req(r, TAG_ICCID, "eidValue")?;
        r.finish()?;
        Ok(GetEuiccDataResponse { eid_value })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, TAG_ICCID, &self.eid_value);
    }
}

/// `EuiccConfiguredAddressesRequest ::= [60] SEQUENCE {}` (tag `BF3C`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct EuiccConfiguredAddressesRequest;

impl SeqCodec for EuiccConfiguredAddressesRequest {
    const TAG: Tag = Tag(0xBF3C);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.finish()?;
        Ok(EuiccConfiguredAddressesRequest)
    }
    fn encode_body(&self, _out: &mut Vec<u8>) {}
}

/// `EuiccConfiguredAddressesResponse ::= [60] SEQUENCE { defaultDpAddress UTF8String
/// OPTIONAL, rootDsAddress UTF8String }` (tag `BF3C`; AUTOMATIC `80`, `81`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EuiccConfiguredAddressesResponse {
    /// Default SM-DP+ address.
    pub default_dp_address: Option<String>,
    /// Root SM-DS address.
    pub root_ds_address: String,
}

impl SeqCodec for EuiccConfiguredAddressesResponse {
    const TAG: Tag = Tag(0xBF3C);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = EuiccConfiguredAddressesResponse {
            default_dp_address: opt(r, c(0), "defaultDpAddress")?,
            root_ds_address: req(r, c(1), "rootDsAddress")?,
        };
        let _ = Extensions::read_rest(r)?;
        Ok(v)
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put_opt(out, c(0), &self.default_dp_address);
        put(out, c(1), &self.root_ds_address);
    }
}

/// `searchCriteria [0] CHOICE { isdpAid [APPLICATION 15], iccid Iccid, profileClass [21] }`
/// of `ProfileInfoListRequest` (`A0` explicit around `4F` / `5A` / `95`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileSearchCriteria {
    /// `isdpAid`.
    IsdpAid(OctetTo16),
    /// `iccid`.
    Iccid(Iccid),
    /// `profileClass`.
    ProfileClass(ProfileClass),
}

/// `ProfileInfoListRequest ::= [45] SEQUENCE { searchCriteria [0] CHOICE OPTIONAL,
/// tagList [APPLICATION 28] OCTET STRING OPTIONAL }` (tag `BF2D`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ProfileInfoListRequest {
    /// The filter.
    pub search_criteria: Option<ProfileSearchCriteria>,
    /// The tags of `ProfileInfo` to return (`5C`).
    pub tag_list: Option<Vec<u8>>,
}

impl SeqCodec for ProfileInfoListRequest {
    const TAG: Tag = Tag(0xBF2D);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let search_criteria = match r.read_optional(cc(0))? {
            None => None,
            Some(t) => {
                let i = explicit_inner(&t, cc(0))?;
                Some(match i.tag {
                    TAG_AID => {
                        ProfileSearchCriteria::IsdpAid(FieldValue::decode_value(&i, "isdpAid")?)
                    }
                    TAG_ICCID => {
                        ProfileSearchCriteria::Iccid(FieldValue::decode_value(&i, "iccid")?)
                    }
                    x if x == c(21) => ProfileSearchCriteria::ProfileClass(
                        FieldValue::decode_value(&i, "profileClass")?,
                    ),
                    found => {
                        return Err(DecodeError::UnexpectedTag {
                            expected: TAG_ICCID,
                            found,
                        });
                    }
                })
            }
        };
        let tag_list = opt(r, TAG_TAG_LIST, "tagList")?;
        r.finish()?;
        Ok(ProfileInfoListRequest {
            search_criteria,
            tag_list,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        if let Some(sc) = &self.search_criteria {
            write_wrapped(out, cc(0), |o| match sc {
                ProfileSearchCriteria::IsdpAid(a) => put(o, TAG_AID, a),
                ProfileSearchCriteria::Iccid(i) => put(o, TAG_ICCID, i),
                ProfileSearchCriteria::ProfileClass(p) => put(o, c(21), p),
            });
        }
        put_opt(out, TAG_TAG_LIST, &self.tag_list);
    }
}

/// `ProfileInfo ::= [PRIVATE 3] SEQUENCE` (tag `E3`), SGP.22 section 5.7.15. All
/// components optional; unknown trailing components kept.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ProfileInfo {
    /// `iccid` (`5A`).
    pub iccid: Option<Iccid>,
    /// `isdpAid` (`4F`).
    pub isdp_aid: Option<OctetTo16>,
    /// `profileState [112]` (`9F70`).
    pub profile_state: Option<ProfileState>,
    /// `profileNickname [16]` (`90`, 0..64 octets).
    pub profile_nickname: Option<String>,
    /// `serviceProviderName [17]` (`91`, 0..32 octets).
    pub service_provider_name: Option<String>,
    /// `profileName [18]` (`92`, 0..64 octets).
    pub profile_name: Option<String>,
    /// `iconType [19]` (`93`).
    pub icon_type: Option<IconType>,
    /// `icon [20]` (`94`, 0..1024 octets).
    pub icon: Option<Vec<u8>>,
    /// `profileClass [21]` (`95`); absent means `operational` (DEFAULT).
    pub profile_class: Option<ProfileClass>,
    /// `notificationConfigurationInfo [22]` (`B6`).
    pub notification_configuration_info: Option<Vec<NotificationConfigurationInformation>>,
    /// `profileOwner [23]` (`B7`).
    pub profile_owner: Option<OperatorId>,
    /// `dpProprietaryData [24]` (`B8`).
    pub dp_proprietary_data: Option<DpProprietaryData>,
    /// `profilePolicyRules [25]` (`99`).
    pub profile_policy_rules: Option<PprIds>,
    /// Unknown trailing components, kept verbatim.
    pub extensions: Extensions,
}

impl SeqOfElement for ProfileInfo {
    const ELEM_TAG: Tag = Tag(0xE3);
}

impl SeqCodec for ProfileInfo {
    const TAG: Tag = Tag(0xE3);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = ProfileInfo {
            iccid: opt(r, TAG_ICCID, "iccid")?,
            isdp_aid: opt(r, TAG_AID, "isdpAid")?,
            profile_state: opt(r, Tag(0x9F70), "profileState")?,
            profile_nickname: opt_utf8(r, c(16), "profileNickname", 64)?,
            service_provider_name: opt_utf8(r, c(17), "serviceProviderName", 32)?,
            profile_name: opt_utf8(r, c(18), "profileName", 64)?,
            icon_type: opt(r, c(19), "iconType")?,
            icon: opt(r, c(20), "icon")?,
            // An explicit `operational` is the DEFAULT: held as absent, as the encoder
            // writes it, so that decode -> encode -> decode gives the same value.
            profile_class: opt(r, c(21), "profileClass")?
                .filter(|pc: &ProfileClass| *pc != ProfileClass::Operational),
            notification_configuration_info: opt(r, cc(22), "notificationConfigurationInfo")?,
            profile_owner: opt(r, cc(23), "profileOwner")?,
            dp_proprietary_data: opt(r, cc(24), "dpProprietaryData")?,
            profile_policy_rules: opt::<BitString>(r, c(25), "profilePolicyRules")?,
            extensions: Extensions::read_rest(r)?,
        };
        if let Some(icon) = &v.icon {
            crate::codec::check_size(icon.len(), "icon", 0, 1024)?;
        }
        Ok(v)
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put_opt(out, TAG_ICCID, &self.iccid);
        put_opt(out, TAG_AID, &self.isdp_aid);
        put_opt(out, Tag(0x9F70), &self.profile_state);
        put_opt(out, c(16), &self.profile_nickname);
        put_opt(out, c(17), &self.service_provider_name);
        put_opt(out, c(18), &self.profile_name);
        put_opt(out, c(19), &self.icon_type);
        put_opt(out, c(20), &self.icon);
        if let Some(pc) = self.profile_class
            && pc != ProfileClass::Operational
        {
            put(out, c(21), &pc);
        }
        put_opt(out, cc(22), &self.notification_configuration_info);
        put_opt(out, cc(23), &self.profile_owner);
        put_opt(out, cc(24), &self.dp_proprietary_data);
        put_opt(out, c(25), &self.profile_policy_rules);
        self.extensions.encode_into(out);
    }
}

int_enum!(
    /// `ProfileInfoListError ::= INTEGER {incorrectInputValues(1), profileChangeOngoing(11)
    /// (v3, RPM), undefinedError(127)}`.
    ProfileInfoListError { IncorrectInputValues = 1, ProfileChangeOngoing = 11, UndefinedError = 127 }
);

/// `ProfileInfoListResponse ::= [45] CHOICE { profileInfoListOk SEQUENCE OF ProfileInfo,
/// profileInfoListError }` (tag `BF2D`; `A0`, `81`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileInfoListResponse {
    /// `profileInfoListOk`.
    Ok(Vec<ProfileInfo>),
    /// `profileInfoListError`.
    Error(ProfileInfoListError),
}

impl ProfileInfoListResponse {
    /// The CHOICE's own tag (`BF2D`).
    pub const TAG: Tag = Tag(0xBF2D);

    /// Decode from the alternative's element (`A0` list or `81` error).
    pub fn decode_alternative(i: &Tlv<'_>) -> Result<Self, DecodeError> {
        match i.tag {
            x if x == cc(0) => Ok(Self::Ok(FieldValue::decode_value(i, "profileInfoListOk")?)),
            x if x == c(1) => Ok(Self::Error(FieldValue::decode_value(i, "error")?)),
            found => Err(DecodeError::UnexpectedTag {
                expected: cc(0),
                found,
            }),
        }
    }

    /// Append the alternative's element.
    pub fn encode_alternative(&self, o: &mut Vec<u8>) {
        match self {
            Self::Ok(v) => put(o, cc(0), v),
            Self::Error(e) => put(o, c(1), e),
        }
    }
}

impl Codec for ProfileInfoListResponse {
    fn decode_tlv(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        Self::decode_alternative(&explicit_inner(t, Self::TAG)?)
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        write_wrapped(out, Self::TAG, |o| self.encode_alternative(o));
    }
}

macro_rules! profile_op_request {
    ($(#[$m:meta])* $name:ident, $tag:expr) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            /// `profileIdentifier` (AUTOMATIC explicit `A0` around `4F` / `5A`).
            pub profile_identifier: ProfileIdentifier,
            /// `refreshFlag` (`81`): whether a REFRESH is required.
            pub refresh_flag: bool,
        }

        impl SeqCodec for $name {
            const TAG: Tag = Tag($tag);
            fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let pi = explicit_inner(&r.read_expect(cc(0))?, cc(0))?;
                let profile_identifier = ProfileIdentifier::decode_tlv(&pi)?;
                let refresh_flag = req(r, c(1), "refreshFlag")?;
                r.finish()?;
                Ok($name { profile_identifier, refresh_flag })
            }
            fn encode_body(&self, out: &mut Vec<u8>) {
                write_wrapped(out, cc(0), |o| self.profile_identifier.encode_into(o));
                put(out, c(1), &self.refresh_flag);
            }
        }
    };
}

macro_rules! result_response {
    ($(#[$m:meta])* $name:ident, $tag:expr, $field:ident, $fname:literal, $ty:ty) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            /// The result (AUTOMATIC `80`).
            pub $field: $ty,
        }

        impl SeqCodec for $name {
            const TAG: Tag = Tag($tag);
            fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let $field = req(r, c(0), $fname)?;
                r.finish()?;
                Ok($name { $field })
            }
            fn encode_body(&self, out: &mut Vec<u8>) {
                put(out, c(0), &self.$field);
            }
        }
    };
}

profile_op_request!(
    /// `EnableProfileRequest ::= [49] SEQUENCE { profileIdentifier CHOICE, refreshFlag
    /// BOOLEAN }` (tag `BF31`).
    EnableProfileRequest, 0xBF31
);
profile_op_request!(
    /// `DisableProfileRequest ::= [50] SEQUENCE { profileIdentifier CHOICE, refreshFlag
    /// BOOLEAN }` (tag `BF32`).
    DisableProfileRequest, 0xBF32
);

int_enum!(
    /// `enableResult INTEGER` (v2.2 adds catBusy(5)).
    EnableResult {
        Ok = 0,
        IccidOrAidNotFound = 1,
        ProfileNotInDisabledState = 2,
        DisallowedByPolicy = 3,
        WrongProfileReenabling = 4,
        CatBusy = 5,
        UndefinedError = 127,
    }
);
int_enum!(
    /// `disableResult INTEGER` (v2.2 adds catBusy(5)).
    DisableResult {
        Ok = 0,
        IccidOrAidNotFound = 1,
        ProfileNotInEnabledState = 2,
        DisallowedByPolicy = 3,
        CatBusy = 5,
        UndefinedError = 127,
    }
);
int_enum!(
    /// `deleteResult INTEGER`.
    DeleteResult {
        Ok = 0,
        IccidOrAidNotFound = 1,
        ProfileNotInDisabledState = 2,
        DisallowedByPolicy = 3,
        UndefinedError = 127,
    }
);
int_enum!(
    /// `setNicknameResult INTEGER`.
    SetNicknameResult { Ok = 0, IccidNotFound = 1, UndefinedError = 127 }
);
int_enum!(
    /// `resetResult INTEGER` (v2.2 adds catBusy(5)).
    ResetResult { Ok = 0, NothingToDelete = 1, CatBusy = 5, UndefinedError = 127 }
);

result_response!(
    /// `EnableProfileResponse ::= [49] SEQUENCE { enableResult }` (tag `BF31`).
    EnableProfileResponse, 0xBF31, enable_result, "enableResult", EnableResult
);
result_response!(
    /// `DisableProfileResponse ::= [50] SEQUENCE { disableResult }` (tag `BF32`).
    DisableProfileResponse, 0xBF32, disable_result, "disableResult", DisableResult
);
result_response!(
    /// `DeleteProfileResponse ::= [51] SEQUENCE { deleteResult }` (tag `BF33`).
    DeleteProfileResponse, 0xBF33, delete_result, "deleteResult", DeleteResult
);
result_response!(
    /// `SetNicknameResponse ::= [41] SEQUENCE { setNicknameResult }` (tag `BF29`).
    SetNicknameResponse, 0xBF29, set_nickname_result, "setNicknameResult", SetNicknameResult
);
result_response!(
    /// `EuiccMemoryResetResponse ::= [52] SEQUENCE { resetResult }` (tag `BF34`).
    EuiccMemoryResetResponse, 0xBF34, reset_result, "resetResult", ResetResult
);

/// `DeleteProfileRequest ::= [51] CHOICE { isdpAid [APPLICATION 15], iccid Iccid }`
/// (tag `BF33` around `4F` / `5A`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteProfileRequest(pub ProfileIdentifier);

impl Codec for DeleteProfileRequest {
    fn decode_tlv(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        ProfileIdentifier::decode_tlv(&explicit_inner(t, Tag(0xBF33))?).map(DeleteProfileRequest)
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        write_wrapped(out, Tag(0xBF33), |o| self.0.encode_into(o));
    }
}

/// `SetNicknameRequest ::= [41] SEQUENCE { iccid Iccid, profileNickname [16] UTF8String
/// (SIZE(0..64)) }` (tag `BF29`; `5A`, `90`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetNicknameRequest {
    /// The Profile.
    pub iccid: Iccid,
    /// The new nickname.
    pub profile_nickname: String,
}

impl SeqCodec for SetNicknameRequest {
    const TAG: Tag = Tag(0xBF29);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let iccid = req(r, TAG_ICCID, "iccid")?;
        let profile_nickname = crate::codec::req_utf8(r, c(16), "profileNickname", 64)?;
        r.finish()?;
        Ok(SetNicknameRequest {
            iccid,
            profile_nickname,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, TAG_ICCID, &self.iccid);
        put(out, c(16), &self.profile_nickname);
    }
}

/// `EuiccMemoryResetRequest ::= [52] SEQUENCE { resetOptions [2] BIT STRING
/// {deleteOperationalProfiles(0), deleteFieldLoadedTestProfiles(1),
/// resetDefaultSmdpAddress(2)} }` (tag `BF34`; `82`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EuiccMemoryResetRequest {
    /// The reset options.
    pub reset_options: BitString,
}

impl SeqCodec for EuiccMemoryResetRequest {
    const TAG: Tag = Tag(0xBF34);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let reset_options = req(r, c(2), "resetOptions")?;
        r.finish()?;
        Ok(EuiccMemoryResetRequest { reset_options })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(2), &self.reset_options);
    }
}
