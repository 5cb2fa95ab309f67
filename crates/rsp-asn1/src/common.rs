//! Basic SGP.22 types shared by many messages (RSPDefinitions "Basic types" and the
//! profile-metadata sub-types of SGP.22 v2.2 section 5.7.19 / 5.7.15).
//!
//! `Octet8`, `Octet16`, `Octet32`, `OctetTo16`, `VersionType`, `TransactionId`, `Iccid`
//! (`[APPLICATION 26]`, tag `5A`), `Eid`, `SubjectKeyIdentifier`, the named-bit strings
//! (`UICCCapability`, `RspCapability`, `PprIds`, `NotificationEvent`), the integer enums
//! (`ProfileClass`, `ProfileState`, `IconType`), `OperatorId`,
//! `NotificationConfigurationInformation`, `DpProprietaryData` and the
//! `isdpAid`/`iccid` profile identifier CHOICE.
//!
//! The profile-metadata sub-types are also used by `StoreMetadataRequest` in the BPP
//! module, which may define its own copies; they are wire-identical.

use crate::codec::{
    BitString, Extensions, FieldValue, SeqCodec, SeqOfElement, int_enum, octets_type, opt, put,
    put_opt, req,
};
use crate::error::DecodeError;
use crate::prim::{self, Oid};
use crate::tlv::{Reader, Tag, Tlv, write_tlv};

/// `[APPLICATION 26]` — tag `5A` (ICCID, EID value).
pub const TAG_ICCID: Tag = Tag(0x5A);
/// `[APPLICATION 15]` — tag `4F` (ISD-P AID).
pub const TAG_AID: Tag = Tag(0x4F);
/// `[APPLICATION 55]` — tag `5F37` (signatures).
pub const TAG_SIGNATURE: Tag = Tag(0x5F37);
/// `[APPLICATION 73]` — tag `5F49` (one-time public keys).
pub const TAG_OTPK: Tag = Tag(0x5F49);
/// `[APPLICATION 28]` — tag `5C` (tag lists).
pub const TAG_TAG_LIST: Tag = Tag(0x5C);

octets_type!(
    /// `Octet1 ::= OCTET STRING (SIZE(1))`.
    Octet1, "Octet1", 1, 1
);
octets_type!(
    /// `Octet8 ::= OCTET STRING (SIZE(8))`.
    Octet8, "Octet8", 8, 8
);
octets_type!(
    /// `Octet16 ::= OCTET STRING (SIZE(16))` (challenges).
    Octet16, "Octet16", 16, 16
);
octets_type!(
    /// `Octet32 ::= OCTET STRING (SIZE(32))` (hashCc).
    Octet32, "Octet32", 32, 32
);
octets_type!(
    /// `OctetTo16 ::= OCTET STRING (SIZE(1..16))` (AIDs).
    OctetTo16, "OctetTo16", 1, 16
);
octets_type!(
    /// `TransactionId ::= OCTET STRING (SIZE(1..16))`.
    TransactionId, "TransactionId", 1, 16
);
octets_type!(
    /// `VersionType ::= OCTET STRING (SIZE(3))`: major, minor, revision as binary octets.
    VersionType, "VersionType", 3, 3
);
octets_type!(
    /// `SubjectKeyIdentifier` (PKIX1Implicit88 `KeyIdentifier ::= OCTET STRING`), used for
    /// CI public key identifiers.
    SubjectKeyIdentifier, "SubjectKeyIdentifier", 0, usize::MAX
);

impl VersionType {
    /// Build from major, minor and revision.
    pub fn from_parts(major: u8, minor: u8, revision: u8) -> Self {
        VersionType(vec![major, minor, revision])
    }
}

impl SeqOfElement for VersionType {
    const ELEM_TAG: Tag = Tag::OCTET_STRING;
}
impl SeqOfElement for SubjectKeyIdentifier {
    const ELEM_TAG: Tag = Tag::OCTET_STRING;
}
impl SeqOfElement for String {
    const ELEM_TAG: Tag = Tag::UTF8_STRING;
}

/// `Iccid ::= [APPLICATION 26] OCTET STRING (SIZE(10))`, coded as in EF.ICCID: BCD with
/// swapped nibbles, padded with `F` when the ICCID has 19 digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Iccid(pub [u8; 10]);

impl Iccid {
    /// The tag (`5A`).
    pub const TAG: Tag = TAG_ICCID;

    /// Parse the text form: 19 or 20 decimal digits (a trailing `F`/`f` pad is accepted).
    pub fn from_digits(s: &str) -> Option<Self> {
        let s = s.strip_suffix(['F', 'f']).unwrap_or(s);
        if !(s.len() == 19 || s.len() == 20) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut nibbles: Vec<u8> = s.bytes().map(|b| b - b'0').collect();
        if nibbles.len() == 19 {
            nibbles.push(0xF);
        }
        let mut out = [0u8; 10];
        for (o, pair) in out.iter_mut().zip(nibbles.chunks(2)) {
            let lo = pair.first().copied().unwrap_or(0xF);
            let hi = pair.get(1).copied().unwrap_or(0xF);
            *o = (hi << 4) | lo;
        }
        Some(Iccid(out))
    }

    /// The text form: the digits, without the `F` pad. Non-decimal nibbles other than
    /// a final `F` pad are shown as hex digits.
    pub fn to_digits(&self) -> String {
        let mut s = String::with_capacity(20);
        for b in self.0 {
            for n in [b & 0x0F, b >> 4] {
                s.push(
                    char::from_digit(u32::from(n), 16)
                        .unwrap_or('?')
                        .to_ascii_uppercase(),
                );
            }
        }
        if s.ends_with('F') {
            s.pop();
        }
        s
    }
}

impl std::fmt::Display for Iccid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_digits())
    }
}

impl FieldValue for Iccid {
    fn decode_value(t: &Tlv<'_>, _field: &'static str) -> Result<Self, DecodeError> {
        prim::decode_fixed::<10>(t, "Iccid").map(Iccid)
    }
    fn encode_value(&self, tag: Tag, out: &mut Vec<u8>) {
        write_tlv(out, tag, &self.0);
    }
}

/// The EID: 16 octets (`[APPLICATION 26] Octet16` in `GetEuiccDataResponse`), shown as
/// 32 decimal digits (SGP.29 / SGP.22 section 4.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Eid(pub [u8; 16]);

impl Eid {
    /// Parse the 32-digit text form.
    pub fn from_digits(s: &str) -> Option<Self> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut out = [0u8; 16];
        for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks(2)) {
            let hi = pair.first().copied().unwrap_or(b'0') - b'0';
            let lo = pair.get(1).copied().unwrap_or(b'0') - b'0';
            *o = (hi << 4) | lo;
        }
        Some(Eid(out))
    }

    /// The 32-digit text form (hex digits if the octets are not BCD).
    pub fn to_digits(&self) -> String {
        self.0.iter().map(|b| format!("{b:02X}")).collect()
    }
}

impl std::fmt::Display for Eid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_digits())
    }
}

impl FieldValue for Eid {
    fn decode_value(t: &Tlv<'_>, _field: &'static str) -> Result<Self, DecodeError> {
        prim::decode_fixed::<16>(t, "Eid").map(Eid)
    }
    fn encode_value(&self, tag: Tag, out: &mut Vec<u8>) {
        write_tlv(out, tag, &self.0);
    }
}

/// `UICCCapability` named-bit BIT STRING; bit positions in [`uicc_capability`].
pub type UiccCapability = BitString;
/// `RspCapability` named-bit BIT STRING; bit positions in [`rsp_capability`].
pub type RspCapability = BitString;
/// `PprIds` named-bit BIT STRING; bit positions in [`ppr_ids`].
pub type PprIds = BitString;
/// `NotificationEvent` named-bit BIT STRING; bit positions in [`notification_event`].
pub type NotificationEvent = BitString;

/// Named bits of `UICCCapability`.
pub mod uicc_capability {
    /// contactlessSupport(0).
    pub const CONTACTLESS_SUPPORT: u32 = 0;
    /// usimSupport(1).
    pub const USIM_SUPPORT: u32 = 1;
    /// isimSupport(2).
    pub const ISIM_SUPPORT: u32 = 2;
    /// csimSupport(3).
    pub const CSIM_SUPPORT: u32 = 3;
    /// akaMilenage(4).
    pub const AKA_MILENAGE: u32 = 4;
    /// akaCave(5).
    pub const AKA_CAVE: u32 = 5;
    /// akaTuak128(6).
    pub const AKA_TUAK128: u32 = 6;
    /// akaTuak256(7).
    pub const AKA_TUAK256: u32 = 7;
    /// gbaAuthenUsim(10).
    pub const GBA_AUTHEN_USIM: u32 = 10;
    /// gbaAuthenISim(11).
    pub const GBA_AUTHEN_ISIM: u32 = 11;
    /// mbmsAuthenUsim(12).
    pub const MBMS_AUTHEN_USIM: u32 = 12;
    /// eapClient(13).
    pub const EAP_CLIENT: u32 = 13;
    /// javacard(14).
    pub const JAVACARD: u32 = 14;
    /// multos(15).
    pub const MULTOS: u32 = 15;
    /// multipleUsimSupport(16).
    pub const MULTIPLE_USIM_SUPPORT: u32 = 16;
    /// multipleIsimSupport(17).
    pub const MULTIPLE_ISIM_SUPPORT: u32 = 17;
    /// multipleCsimSupport(18).
    pub const MULTIPLE_CSIM_SUPPORT: u32 = 18;
}

/// Named bits of `RspCapability` (v3 `EuiccRspCapability` extends it).
pub mod rsp_capability {
    /// additionalProfile(0).
    pub const ADDITIONAL_PROFILE: u32 = 0;
    /// crlSupport(1) (v3: loadCrlSupport).
    pub const CRL_SUPPORT: u32 = 1;
    /// rpmSupport(2): Remote Profile Management (v3; a v2.2 eUICC sets it to 0).
    pub const RPM_SUPPORT: u32 = 2;
    /// testProfileSupport(3).
    pub const TEST_PROFILE_SUPPORT: u32 = 3;
    /// deviceInfoExtensibilitySupport(4) (v2.2.2 / v3).
    pub const DEVICE_INFO_EXTENSIBILITY_SUPPORT: u32 = 4;
}

/// Named bits of `PprIds`.
pub mod ppr_ids {
    /// pprUpdateControl(0).
    pub const PPR_UPDATE_CONTROL: u32 = 0;
    /// ppr1(1): disabling of this Profile is not allowed.
    pub const PPR1: u32 = 1;
    /// ppr2(2): deletion of this Profile is not allowed.
    pub const PPR2: u32 = 2;
    /// ppr3(3) (v2 schema only).
    pub const PPR3: u32 = 3;
}

/// Named bits of `NotificationEvent` (v3 renames bits 1-3 `notificationLocal*` and adds
/// the RPM bits 4-7).
pub mod notification_event {
    /// notificationInstall(0).
    pub const INSTALL: u32 = 0;
    /// notificationEnable(1) (v3: notificationLocalEnable).
    pub const ENABLE: u32 = 1;
    /// notificationDisable(2) (v3: notificationLocalDisable).
    pub const DISABLE: u32 = 2;
    /// notificationDelete(3) (v3: notificationLocalDelete).
    pub const DELETE: u32 = 3;
    /// notificationRpmEnable(4) (v3, RPM): a Profile enabled by an RPM command.
    pub const RPM_ENABLE: u32 = 4;
    /// notificationRpmDisable(5) (v3, RPM): a Profile disabled by an RPM command.
    pub const RPM_DISABLE: u32 = 5;
    /// notificationRpmDelete(6) (v3, RPM): a Profile deleted by an RPM command.
    pub const RPM_DELETE: u32 = 6;
    /// loadRpmPackageResult(7) (v3, RPM): the signed result of ES10b.LoadRpmPackage.
    pub const LOAD_RPM_PACKAGE_RESULT: u32 = 7;
}

int_enum!(
    /// `ProfileClass ::= INTEGER {test(0), provisioning(1), operational(2)}`.
    ProfileClass { Test = 0, Provisioning = 1, Operational = 2 }
);
int_enum!(
    /// `ProfileState ::= INTEGER {disabled(0), enabled(1)}`.
    ProfileState { Disabled = 0, Enabled = 1 }
);
int_enum!(
    /// `IconType ::= INTEGER {jpg(0), png(1)}`.
    IconType { Jpg = 0, Png = 1 }
);

/// `OperatorID ::= SEQUENCE { mccMnc OCTET STRING (SIZE(3)), gid1 OCTET STRING OPTIONAL,
/// gid2 OCTET STRING OPTIONAL }` (v2.2 spells it `OperatorId`). AUTOMATIC TAGS: `80`, `81`,
/// `82`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorId {
    /// MCC and MNC as in 3GPP TS 24.008 (3 octets).
    pub mcc_mnc: [u8; 3],
    /// Content of EF.GID1.
    pub gid1: Option<Vec<u8>>,
    /// Content of EF.GID2.
    pub gid2: Option<Vec<u8>>,
}

impl SeqCodec for OperatorId {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mcc_mnc = prim::decode_fixed::<3>(&r.read_expect(Tag::context(0))?, "mccMnc")?;
        let gid1 = opt(r, Tag::context(1), "gid1")?;
        let gid2 = opt(r, Tag::context(2), "gid2")?;
        r.finish()?;
        Ok(OperatorId {
            mcc_mnc,
            gid1,
            gid2,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        write_tlv(out, Tag::context(0), &self.mcc_mnc);
        put_opt(out, Tag::context(1), &self.gid1);
        put_opt(out, Tag::context(2), &self.gid2);
    }
}

impl SeqOfElement for OperatorId {
    const ELEM_TAG: Tag = Tag::SEQUENCE;
}

/// `NotificationConfigurationInformation ::= SEQUENCE { profileManagementOperation
/// NotificationEvent, notificationAddress UTF8String }` — AUTOMATIC TAGS `80`, `81`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationConfigurationInformation {
    /// The operations for which a notification is sent.
    pub profile_management_operation: NotificationEvent,
    /// FQDN to send the notification to.
    pub notification_address: String,
}

impl SeqCodec for NotificationConfigurationInformation {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let profile_management_operation = req(r, Tag::context(0), "profileManagementOperation")?;
        let notification_address = req(r, Tag::context(1), "notificationAddress")?;
        r.finish()?;
        Ok(NotificationConfigurationInformation {
            profile_management_operation,
            notification_address,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, Tag::context(0), &self.profile_management_operation);
        put(out, Tag::context(1), &self.notification_address);
    }
}

impl SeqOfElement for NotificationConfigurationInformation {
    const ELEM_TAG: Tag = Tag::SEQUENCE;
}

/// `DpProprietaryData ::= SEQUENCE { dpOid OBJECT IDENTIFIER, ... }` — AUTOMATIC TAGS
/// `80`; further SM-DP+ defined objects MAY follow and are kept in `extensions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpProprietaryData {
    /// OID in the tree of the SM-DP+ that created the Profile.
    pub dp_oid: Oid,
    /// Additional data objects, kept verbatim.
    pub extensions: Extensions,
}

impl SeqCodec for DpProprietaryData {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let dp_oid = req(r, Tag::context(0), "dpOid")?;
        let extensions = Extensions::read_rest(r)?;
        Ok(DpProprietaryData { dp_oid, extensions })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, Tag::context(0), &self.dp_oid);
        self.extensions.encode_into(out);
    }
}

/// The `profileIdentifier CHOICE { isdpAid [APPLICATION 15] OctetTo16, iccid Iccid }` of
/// ES10c Enable/Disable/DeleteProfile (tags `4F` / `5A`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileIdentifier {
    /// AID of the ISD-P (`4F`).
    IsdpAid(OctetTo16),
    /// ICCID (`5A`).
    Iccid(Iccid),
}

impl ProfileIdentifier {
    /// Decode from the alternative's element.
    pub fn decode_tlv(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        match t.tag {
            TAG_AID => OctetTo16::decode_value(t, "isdpAid").map(ProfileIdentifier::IsdpAid),
            TAG_ICCID => Iccid::decode_value(t, "iccid").map(ProfileIdentifier::Iccid),
            found => Err(DecodeError::UnexpectedTag {
                expected: TAG_ICCID,
                found,
            }),
        }
    }

    /// Append the alternative's element.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            ProfileIdentifier::IsdpAid(a) => put(out, TAG_AID, a),
            ProfileIdentifier::Iccid(i) => put(out, TAG_ICCID, i),
        }
    }
}

/// Read a `[APPLICATION 55] OCTET STRING` signature (`5F37`).
pub fn read_signature(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<u8>, DecodeError> {
    req(r, TAG_SIGNATURE, field)
}

/// Read a mandatory element that must be exactly one constructed element, and keep it raw.
pub fn read_raw_constructed(r: &mut Reader<'_>, tag: Tag) -> Result<Vec<u8>, DecodeError> {
    let t = r.read_expect(tag)?;
    crate::codec::check_well_formed(&t)?;
    if !t.tag.is_constructed() {
        return Err(DecodeError::ExpectedConstructed(tag));
    }
    Ok(t.raw.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iccid_text_forms() {
        let i = Iccid::from_digits("8949449999999990023").expect("19 digits");
        assert_eq!(
            i.0,
            [0x98, 0x94, 0x44, 0x99, 0x99, 0x99, 0x99, 0x09, 0x20, 0xF3]
        );
        assert_eq!(i.to_digits(), "8949449999999990023");
        let j = Iccid::from_digits("89494499999999900231").expect("20 digits");
        assert_eq!(j.to_digits(), "89494499999999900231");
        assert_eq!(Iccid::from_digits("8949449999999990023F"), Some(i));
        assert_eq!(Iccid::from_digits("89494"), None);
        assert_eq!(Iccid::from_digits("894944999999999002x"), None);
    }

    #[test]
    fn eid_text_form() {
        let s = "89049032123451234512345678901235";
        let e = Eid::from_digits(s).expect("eid");
        assert_eq!(e.0[0], 0x89);
        assert_eq!(e.to_digits(), s);
        assert_eq!(Eid::from_digits("123"), None);
    }

    #[test]
    fn bitstring_named_bits() {
        let b = BitString::from_bits(&[0, 3]);
        assert_eq!(b.octets(), &[0x90]);
        assert_eq!(b.unused_bits(), 4);
        assert!(b.is_set(3) && !b.is_set(1) && !b.is_set(100));
        assert_eq!(b.bits(), vec![0, 3]);
    }
}
