//! eUICC and Device information: `EUICCInfo1` (`BF20`), `EUICCInfo2` (`BF22`),
//! `DeviceInfo` and `DeviceCapabilities` (SGP.22 v2.2 sections 5.7.8, 5.7.9, 4.2 and
//! 5.6.1), plus the empty `GetEuiccInfo1Request` / `GetEuiccInfo2Request`.
//!
//! These types are **extensible** on purpose: real eUICCs and LPAs send components newer
//! than the SM-DP+'s schema. Decoding therefore:
//! - accepts the v3 components (`RSPDefinitions-v3.asn`) as typed optional fields;
//! - keeps any further unknown trailing components verbatim in an [`Extensions`] field,
//!   which the encoder writes back, so decode → encode reproduces the input;
//! - for `DeviceInfo.tac`, accepts both `Octet8` (v2 schema) and `Octet4` (v2.2 Annex H
//!   and v3, the normative size);
//! - accepts `UICCCapability` / `RspCapability` with trailing zero bits (a non-DER form
//!   some eUICCs produce), keeping the octets as received.

use crate::codec::{
    BitString, Extensions, SeqCodec, check_size, int_enum, opt, opt_bits_lenient, put, put_opt,
    req, req_bits_lenient, req_utf8,
};
use crate::common::{PprIds, RspCapability, SubjectKeyIdentifier, UiccCapability, VersionType};
use crate::error::DecodeError;
use crate::tlv::{Reader, Tag, write_tlv};

fn c(n: u32) -> Tag {
    Tag::context(n)
}
fn cc(n: u32) -> Tag {
    Tag::context_constructed(n)
}

/// `GetEuiccInfo1Request ::= [32] SEQUENCE {}` (tag `BF20`, ES10b.GetEUICCInfo).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct GetEuiccInfo1Request;

impl SeqCodec for GetEuiccInfo1Request {
    const TAG: Tag = Tag(0xBF20);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.finish()?;
        Ok(GetEuiccInfo1Request)
    }
    fn encode_body(&self, _out: &mut Vec<u8>) {}
}

/// `GetEuiccInfo2Request ::= [34] SEQUENCE {}` (tag `BF22`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct GetEuiccInfo2Request;

impl SeqCodec for GetEuiccInfo2Request {
    const TAG: Tag = Tag(0xBF22);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.finish()?;
        Ok(GetEuiccInfo2Request)
    }
    fn encode_body(&self, _out: &mut Vec<u8>) {}
}

/// `EUICCInfo1 ::= [32] SEQUENCE` (tag `BF20`), SGP.22 section 5.7.8, with the v3
/// components as optional fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EuiccInfo1 {
    /// `svn [2] VersionType` (v3: `lowestSvn`).
    pub svn: VersionType,
    /// `euiccCiPKIdListForVerification [9]`.
    pub ci_pkid_list_for_verification: Vec<SubjectKeyIdentifier>,
    /// `euiccCiPKIdListForSigning [10]`.
    pub ci_pkid_list_for_signing: Vec<SubjectKeyIdentifier>,
    /// v3 `euiccCiPKIdListForSigningV3 [17]`.
    pub ci_pkid_list_for_signing_v3: Option<Vec<SubjectKeyIdentifier>>,
    /// v3 `euiccRspCapability [8]`.
    pub rsp_capability: Option<RspCapability>,
    /// v3 `highestSvn [19]`.
    pub highest_svn: Option<VersionType>,
    /// Unknown trailing components, kept verbatim.
    pub extensions: Extensions,
}

impl SeqCodec for EuiccInfo1 {
    const TAG: Tag = Tag(0xBF20);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(EuiccInfo1 {
            svn: req(r, c(2), "svn")?,
            ci_pkid_list_for_verification: req(r, cc(9), "euiccCiPKIdListForVerification")?,
            ci_pkid_list_for_signing: req(r, cc(10), "euiccCiPKIdListForSigning")?,
            ci_pkid_list_for_signing_v3: opt(r, cc(17), "euiccCiPKIdListForSigningV3")?,
            rsp_capability: opt_bits_lenient(r, c(8), "euiccRspCapability")?,
            highest_svn: opt(r, c(19), "highestSvn")?,
            extensions: Extensions::read_rest(r)?,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(2), &self.svn);
        put(out, cc(9), &self.ci_pkid_list_for_verification);
        put(out, cc(10), &self.ci_pkid_list_for_signing);
        put_opt(out, cc(17), &self.ci_pkid_list_for_signing_v3);
        put_opt(out, c(8), &self.rsp_capability);
        put_opt(out, c(19), &self.highest_svn);
        self.extensions.encode_into(out);
    }
}

int_enum!(
    /// `euiccCategory [11] INTEGER {other(0), basicEuicc(1), mediumEuicc(2),
    /// contactlessEuicc(3)}`.
    EuiccCategory { Other = 0, BasicEuicc = 1, MediumEuicc = 2, ContactlessEuicc = 3 }
);

int_enum!(
    /// v3 `LpaMode ::= INTEGER {lpad(0), lpae(1)}`.
    LpaMode { Lpad = 0, Lpae = 1 }
);

/// `CertificationDataObject ::= SEQUENCE { platformLabel UTF8String, discoveryBaseURL
/// UTF8String }` — AUTOMATIC TAGS `80`, `81`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificationDataObject {
    /// Platform_Label (GlobalPlatform DLOA).
    pub platform_label: String,
    /// Discovery Base URL of the SE default DLOA Registrar.
    pub discovery_base_url: String,
}

impl SeqCodec for CertificationDataObject {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let platform_label = req(r, c(0), "platformLabel")?;
        let discovery_base_url = req(r, c(1), "discoveryBaseURL")?;
        let _ = Extensions::read_rest(r)?;
        Ok(CertificationDataObject {
            platform_label,
            discovery_base_url,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.platform_label);
        put(out, c(1), &self.discovery_base_url);
    }
}

/// `EUICCInfo2 ::= [34] SEQUENCE` (tag `BF22`), SGP.22 section 5.7.9, with the v3
/// components as optional fields and unknown trailing components kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EuiccInfo2 {
    /// `profileVersion [1]` (v3: `baseProfilePackageVersion`).
    pub profile_version: VersionType,
    /// `svn [2]` (v3: `lowestSvn`).
    pub svn: VersionType,
    /// `euiccFirmwareVer [3]`.
    pub euicc_firmware_ver: VersionType,
    /// `extCardResource [4]` (ETSI TS 102 226).
    pub ext_card_resource: Vec<u8>,
    /// `uiccCapability [5]`.
    pub uicc_capability: UiccCapability,
    /// `javacardVersion [6]` (v2.2/v3: `ts102241Version`).
    pub javacard_version: Option<VersionType>,
    /// `globalplatformVersion [7]`.
    pub globalplatform_version: Option<VersionType>,
    /// `rspCapability [8]`.
    pub rsp_capability: RspCapability,
    /// `euiccCiPKIdListForVerification [9]`.
    pub ci_pkid_list_for_verification: Vec<SubjectKeyIdentifier>,
    /// `euiccCiPKIdListForSigning [10]`.
    pub ci_pkid_list_for_signing: Vec<SubjectKeyIdentifier>,
    /// `euiccCategory [11]`.
    pub euicc_category: Option<EuiccCategory>,
    /// `forbiddenProfilePolicyRules [25] PprIds` (tag `99`).
    pub forbidden_profile_policy_rules: Option<PprIds>,
    /// `ppVersion VersionType` (tag `04`).
    pub pp_version: VersionType,
    /// `sasAcreditationNumber UTF8String (SIZE(0..64))` (tag `0C`).
    pub sas_acreditation_number: String,
    /// `certificationDataObject [12]`.
    pub certification_data_object: Option<CertificationDataObject>,
    /// v3 `treProperties [13] BIT STRING`.
    pub tre_properties: Option<BitString>,
    /// v3 `treProductReference [14] UTF8String`.
    pub tre_product_reference: Option<String>,
    /// v3 `additionalProfilePackageVersions [15] SEQUENCE OF VersionType`.
    pub additional_profile_package_versions: Option<Vec<VersionType>>,
    /// v3 `lpaMode [16]`.
    pub lpa_mode: Option<LpaMode>,
    /// v3 `euiccCiPKIdListForSigningV3 [17]`.
    pub ci_pkid_list_for_signing_v3: Option<Vec<SubjectKeyIdentifier>>,
    /// v3 `additionalEuiccInfo [18] OCTET STRING (SIZE(0..32))`.
    pub additional_euicc_info: Option<Vec<u8>>,
    /// v3 `highestSvn [19]`.
    pub highest_svn: Option<VersionType>,
    /// Unknown trailing components, kept verbatim.
    pub extensions: Extensions,
}

impl SeqCodec for EuiccInfo2 {
    const TAG: Tag = Tag(0xBF22);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = EuiccInfo2 {
            profile_version: req(r, c(1), "profileVersion")?,
            svn: req(r, c(2), "svn")?,
            euicc_firmware_ver: req(r, c(3), "euiccFirmwareVer")?,
            ext_card_resource: req(r, c(4), "extCardResource")?,
            uicc_capability: req_bits_lenient(r, c(5), "uiccCapability")?,
            javacard_version: opt(r, c(6), "javacardVersion")?,
            globalplatform_version: opt(r, c(7), "globalplatformVersion")?,
            rsp_capability: req_bits_lenient(r, c(8), "rspCapability")?,
            ci_pkid_list_for_verification: req(r, cc(9), "euiccCiPKIdListForVerification")?,
            ci_pkid_list_for_signing: req(r, cc(10), "euiccCiPKIdListForSigning")?,
            euicc_category: opt(r, c(11), "euiccCategory")?,
            forbidden_profile_policy_rules: opt_bits_lenient(
                r,
                c(25),
                "forbiddenProfilePolicyRules",
            )?,
            pp_version: req(r, Tag::OCTET_STRING, "ppVersion")?,
            sas_acreditation_number: req_utf8(r, Tag::UTF8_STRING, "sasAcreditationNumber", 64)?,
            certification_data_object: opt(r, cc(12), "certificationDataObject")?,
            tre_properties: opt_bits_lenient(r, c(13), "treProperties")?,
            tre_product_reference: opt(r, c(14), "treProductReference")?,
            additional_profile_package_versions: opt(
                r,
                cc(15),
                "additionalProfilePackageVersions",
            )?,
            lpa_mode: opt(r, c(16), "lpaMode")?,
            ci_pkid_list_for_signing_v3: opt(r, cc(17), "euiccCiPKIdListForSigningV3")?,
            additional_euicc_info: opt(r, c(18), "additionalEuiccInfo")?,
            highest_svn: opt(r, c(19), "highestSvn")?,
            extensions: Extensions::read_rest(r)?,
        };
        if let Some(a) = &v.additional_euicc_info {
            check_size(a.len(), "additionalEuiccInfo", 0, 32)?;
        }
        Ok(v)
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(1), &self.profile_version);
        put(out, c(2), &self.svn);
        put(out, c(3), &self.euicc_firmware_ver);
        put(out, c(4), &self.ext_card_resource);
        put(out, c(5), &self.uicc_capability);
        put_opt(out, c(6), &self.javacard_version);
        put_opt(out, c(7), &self.globalplatform_version);
        put(out, c(8), &self.rsp_capability);
        put(out, cc(9), &self.ci_pkid_list_for_verification);
        put(out, cc(10), &self.ci_pkid_list_for_signing);
        put_opt(out, c(11), &self.euicc_category);
        put_opt(out, c(25), &self.forbidden_profile_policy_rules);
        put(out, Tag::OCTET_STRING, &self.pp_version);
        put(out, Tag::UTF8_STRING, &self.sas_acreditation_number);
        put_opt(out, cc(12), &self.certification_data_object);
        put_opt(out, c(13), &self.tre_properties);
        put_opt(out, c(14), &self.tre_product_reference);
        put_opt(out, cc(15), &self.additional_profile_package_versions);
        put_opt(out, c(16), &self.lpa_mode);
        put_opt(out, cc(17), &self.ci_pkid_list_for_signing_v3);
        put_opt(out, c(18), &self.additional_euicc_info);
        put_opt(out, c(19), &self.highest_svn);
        self.extensions.encode_into(out);
    }
}

/// `DeviceCapabilities ::= SEQUENCE` — AUTOMATIC TAGS `80`.. in definition order; all
/// components optional; v3 components typed, unknown trailing components kept.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DeviceCapabilities {
    /// `[0] gsmSupportedRelease`.
    pub gsm_supported_release: Option<VersionType>,
    /// `[1] utranSupportedRelease`.
    pub utran_supported_release: Option<VersionType>,
    /// `[2] cdma2000onexSupportedRelease`.
    pub cdma2000onex_supported_release: Option<VersionType>,
    /// `[3] cdma2000hrpdSupportedRelease`.
    pub cdma2000hrpd_supported_release: Option<VersionType>,
    /// `[4] cdma2000ehrpdSupportedRelease`.
    pub cdma2000ehrpd_supported_release: Option<VersionType>,
    /// `[5] eutranSupportedRelease` (v3: `eutranEpcSupportedRelease`).
    pub eutran_supported_release: Option<VersionType>,
    /// `[6] contactlessSupportedRelease`.
    pub contactless_supported_release: Option<VersionType>,
    /// `[7] rspCrlSupportedVersion`.
    pub rsp_crl_supported_version: Option<VersionType>,
    /// `[8]`: `rspRpmSupportedVersion` in the v2 schema, `nrEpcSupportedRelease` in v3
    /// (both `VersionType`, so they share the field).
    pub rsp_rpm_supported_version: Option<VersionType>,
    /// v3 `[9] nr5gcSupportedRelease`.
    pub nr5gc_supported_release: Option<VersionType>,
    /// v3 `[10] eutran5gcSupportedRelease`.
    pub eutran5gc_supported_release: Option<VersionType>,
    /// v3 `[11] lpaSvn`.
    pub lpa_svn: Option<VersionType>,
    /// v3 `[12] catSupportedClasses`.
    pub cat_supported_classes: Option<BitString>,
    /// v3 `[13] euiccFormFactorType` (`removableEuicc(0)`, `nonRemovableEuicc(1)`).
    pub euicc_form_factor_type: Option<i64>,
    /// Unknown trailing components, kept verbatim.
    pub extensions: Extensions,
}

impl SeqCodec for DeviceCapabilities {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DeviceCapabilities {
            gsm_supported_release: opt(r, c(0), "gsmSupportedRelease")?,
            utran_supported_release: opt(r, c(1), "utranSupportedRelease")?,
            cdma2000onex_supported_release: opt(r, c(2), "cdma2000onexSupportedRelease")?,
            cdma2000hrpd_supported_release: opt(r, c(3), "cdma2000hrpdSupportedRelease")?,
            cdma2000ehrpd_supported_release: opt(r, c(4), "cdma2000ehrpdSupportedRelease")?,
            eutran_supported_release: opt(r, c(5), "eutranSupportedRelease")?,
            contactless_supported_release: opt(r, c(6), "contactlessSupportedRelease")?,
            rsp_crl_supported_version: opt(r, c(7), "rspCrlSupportedVersion")?,
            rsp_rpm_supported_version: opt(r, c(8), "rspRpmSupportedVersion")?,
            nr5gc_supported_release: opt(r, c(9), "nr5gcSupportedRelease")?,
            eutran5gc_supported_release: opt(r, c(10), "eutran5gcSupportedRelease")?,
            lpa_svn: opt(r, c(11), "lpaSvn")?,
            cat_supported_classes: opt_bits_lenient(r, c(12), "catSupportedClasses")?,
            euicc_form_factor_type: opt(r, c(13), "euiccFormFactorType")?,
            extensions: Extensions::read_rest(r)?,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put_opt(out, c(0), &self.gsm_supported_release);
        put_opt(out, c(1), &self.utran_supported_release);
        put_opt(out, c(2), &self.cdma2000onex_supported_release);
        put_opt(out, c(3), &self.cdma2000hrpd_supported_release);
        put_opt(out, c(4), &self.cdma2000ehrpd_supported_release);
        put_opt(out, c(5), &self.eutran_supported_release);
        put_opt(out, c(6), &self.contactless_supported_release);
        put_opt(out, c(7), &self.rsp_crl_supported_version);
        put_opt(out, c(8), &self.rsp_rpm_supported_version);
        put_opt(out, c(9), &self.nr5gc_supported_release);
        put_opt(out, c(10), &self.eutran5gc_supported_release);
        put_opt(out, c(11), &self.lpa_svn);
        put_opt(out, c(12), &self.cat_supported_classes);
        put_opt(out, c(13), &self.euicc_form_factor_type);
        self.extensions.encode_into(out);
    }
}

/// `DeviceInfo ::= SEQUENCE { tac, deviceCapabilities, imei OPTIONAL, ... }` — AUTOMATIC
/// TAGS `80`, `A1`, `82`, v3 `A3`, `84`, `85`.
///
/// `tac` is `Octet8` in the v2 schema but `Octet4` in v2.2 Annex H and v3 (a TAC is 8
/// digits = 4 octets); both sizes are accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Type Allocation Code (4 octets per v2.2; 8 accepted for the v2 schema).
    pub tac: Vec<u8>,
    /// Device capabilities.
    pub device_capabilities: DeviceCapabilities,
    /// IMEI (8 octets).
    pub imei: Option<Vec<u8>>,
    /// v3 `preferredLanguages SEQUENCE OF UTF8String`.
    pub preferred_languages: Option<Vec<String>>,
    /// v3 `deviceTestMode NULL`.
    pub device_test_mode: bool,
    /// v3 `lpaRspCapability`.
    pub lpa_rsp_capability: Option<BitString>,
    /// Unknown trailing components, kept verbatim.
    pub extensions: Extensions,
}

impl SeqCodec for DeviceInfo {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tac: Vec<u8> = req(r, c(0), "tac")?;
        if tac.len() != 4 && tac.len() != 8 {
            return Err(DecodeError::invalid(
                "tac",
                "size must be 4 (v2.2) or 8 (v2)",
            ));
        }
        let device_capabilities = req(r, cc(1), "deviceCapabilities")?;
        let imei: Option<Vec<u8>> = opt(r, c(2), "imei")?;
        if let Some(i) = &imei {
            check_size(i.len(), "imei", 8, 8)?;
        }
        let preferred_languages = opt(r, cc(3), "preferredLanguages")?;
        let device_test_mode = opt::<()>(r, c(4), "deviceTestMode")?.is_some();
        let lpa_rsp_capability = opt_bits_lenient(r, c(5), "lpaRspCapability")?;
        let extensions = Extensions::read_rest(r)?;
        Ok(DeviceInfo {
            tac,
            device_capabilities,
            imei,
            preferred_languages,
            device_test_mode,
            lpa_rsp_capability,
            extensions,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.tac);
        put(out, cc(1), &self.device_capabilities);
        put_opt(out, c(2), &self.imei);
        put_opt(out, cc(3), &self.preferred_languages);
        if self.device_test_mode {
            write_tlv(out, c(4), &[]);
        }
        put_opt(out, c(5), &self.lpa_rsp_capability);
        self.extensions.encode_into(out);
    }
}
