//! The Bound Profile Package (SGP.22 section 2.5.4) and the ES8+ functions it carries
//! (section 5.5): InitialiseSecureChannel, ConfigureISDP, StoreMetadata and
//! ReplaceSessionKeys.
//!
//! The module follows `RSPDefinitions` (AUTOMATIC TAGS, EXTENSIBILITY IMPLIED). Where a
//! SEQUENCE has explicitly tagged components (InitialiseSecureChannelRequest, the BPP,
//! ControlRefTemplate, StoreMetadataRequest) automatic tagging does not apply and the tags
//! are the written ones; the others (ReplaceSessionKeysRequest, OperatorID,
//! NotificationConfigurationInformation) get `[0]`, `[1]`, ... in order.
//!
//! Decoders are strict DER and total. Because every SEQUENCE is extensible, unknown
//! components after the known ones are accepted and skipped (StoreMetadata keeps them), but
//! bytes after the outer element are refused.

use crate::codec::{decode_seq_contents, decode_seq_of, encode_seq_as, encode_seq_of};
pub use crate::common::{DpProprietaryData, NotificationConfigurationInformation, OperatorId};
use crate::error::DecodeError;
use crate::prim::{
    decode_fixed, decode_named_bits, decode_octets, decode_uint, decode_utf8, write_int,
    write_named_bits,
};
use crate::tlv::{Tag, Tlv, parse_single, write_tlv};

/// `BoundProfilePackage` tag `[54]` constructed.
pub const TAG_BPP: Tag = Tag(0xBF36);
/// `InitialiseSecureChannelRequest` tag `[35]` constructed.
pub const TAG_ISCR: Tag = Tag(0xBF23);
/// `ConfigureISDPRequest` tag `[36]` constructed.
pub const TAG_CONFIGURE_ISDP: Tag = Tag(0xBF24);
/// `StoreMetadataRequest` tag `[37]` constructed.
pub const TAG_STORE_METADATA: Tag = Tag(0xBF25);
/// `ReplaceSessionKeysRequest` tag `[38]` constructed.
pub const TAG_REPLACE_SESSION_KEYS: Tag = Tag(0xBF26);
/// `smdpOtpk` / `euiccOtpk` `[APPLICATION 73]`.
pub const TAG_OTPK: Tag = Tag(0x5F49);
/// Signatures `[APPLICATION 55]`.
pub const TAG_SIGNATURE: Tag = Tag(0x5F37);
/// `Iccid` `[APPLICATION 26]`.
pub const TAG_ICCID: Tag = Tag(0x5A);

/// `RemoteOpId` value `installBoundProfilePackage`.
pub const REMOTE_OP_INSTALL_BPP: u64 = 1;

/// The TLVs of a segment sequence, each kept as received (tag, length, payload and MAC).
fn read_segments<'a>(t: &Tlv<'a>, seg_tag: Tag) -> Result<Vec<&'a [u8]>, DecodeError> {
    let mut r = t.reader()?;
    let mut out = Vec::new();
    while !r.is_empty() {
        let seg = r.read_expect(seg_tag)?;
        if seg.tag.is_constructed() {
            return Err(DecodeError::invalid("segment", "constructed segment"));
        }
        out.push(seg.raw);
    }
    Ok(out)
}

fn write_segments(out: &mut Vec<u8>, tag: Tag, segments: &[&[u8]]) {
    let inner: Vec<u8> = segments.iter().flat_map(|s| s.iter().copied()).collect();
    write_tlv(out, tag, &inner);
}

/// `BoundProfilePackage ::= [54] SEQUENCE` (tag `BF36`). The segments are complete SCP03t
/// TLVs (`87`, `88`, `86`) borrowed from the input or from the builder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundProfilePackage<'a> {
    /// `initialiseSecureChannelRequest [35]`.
    pub initialise_secure_channel: InitialiseSecureChannelRequest<'a>,
    /// `firstSequenceOf87 [0] SEQUENCE OF [7] OCTET STRING` (ConfigureISDP).
    pub first_sequence_of_87: Vec<&'a [u8]>,
    /// `sequenceOf88 [1] SEQUENCE OF [8] OCTET STRING` (StoreMetadata).
    pub sequence_of_88: Vec<&'a [u8]>,
    /// `secondSequenceOf87 [2] SEQUENCE OF [7] OCTET STRING OPTIONAL` (ReplaceSessionKeys).
    pub second_sequence_of_87: Option<Vec<&'a [u8]>>,
    /// `sequenceOf86 [3] SEQUENCE OF [6] OCTET STRING` (the protected profile).
    pub sequence_of_86: Vec<&'a [u8]>,
}

impl<'a> BoundProfilePackage<'a> {
    /// Decode a complete BPP (nothing may follow it).
    pub fn decode(input: &'a [u8]) -> Result<Self, DecodeError> {
        let top = parse_single(input)?.expect(TAG_BPP)?;
        let mut r = top.reader()?;
        let iscr = r.read_expect(TAG_ISCR)?;
        let initialise_secure_channel = InitialiseSecureChannelRequest::from_tlv(&iscr)?;
        let first_sequence_of_87 = read_segments(&r.read_expect(Tag(0xA0))?, Tag(0x87))?;
        let sequence_of_88 = read_segments(&r.read_expect(Tag(0xA1))?, Tag(0x88))?;
        let second_sequence_of_87 = match r.read_optional(Tag(0xA2))? {
            Some(t) => Some(read_segments(&t, Tag(0x87))?),
            None => None,
        };
        let sequence_of_86 = read_segments(&r.read_expect(Tag(0xA3))?, Tag(0x86))?;
        r.skip_rest()?;
        Ok(BoundProfilePackage {
            initialise_secure_channel,
            first_sequence_of_87,
            sequence_of_88,
            second_sequence_of_87,
            sequence_of_86,
        })
    }

    /// Encode as DER.
    pub fn encode(&self) -> Vec<u8> {
        let seg_total: usize = self
            .first_sequence_of_87
            .iter()
            .chain(&self.sequence_of_88)
            .chain(self.second_sequence_of_87.iter().flatten())
            .chain(&self.sequence_of_86)
            .map(|s| s.len())
            .sum();
        let mut inner = Vec::with_capacity(seg_total + 256);
        inner.extend_from_slice(&self.initialise_secure_channel.encode());
        write_segments(&mut inner, Tag(0xA0), &self.first_sequence_of_87);
        write_segments(&mut inner, Tag(0xA1), &self.sequence_of_88);
        if let Some(s) = &self.second_sequence_of_87 {
            write_segments(&mut inner, Tag(0xA2), s);
        }
        write_segments(&mut inner, Tag(0xA3), &self.sequence_of_86);
        let mut out = Vec::with_capacity(inner.len() + 6);
        write_tlv(&mut out, TAG_BPP, &inner);
        out
    }
}

/// `ControlRefTemplate ::= SEQUENCE`, carried as `[6] IMPLICIT` (tag `A6`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlRefTemplate<'a> {
    /// `keyType [0] Octet1` (AES = `88`).
    pub key_type: u8,
    /// `keyLen [1] Octet1` (`10`).
    pub key_len: u8,
    /// `hostId [4] OctetTo16`.
    pub host_id: &'a [u8],
}

impl<'a> ControlRefTemplate<'a> {
    fn from_tlv(t: &Tlv<'a>) -> Result<Self, DecodeError> {
        let mut r = t.reader()?;
        let [key_type] = decode_fixed::<1>(&r.read_expect(Tag::context(0))?, "keyType")?;
        let [key_len] = decode_fixed::<1>(&r.read_expect(Tag::context(1))?, "keyLen")?;
        let host_id = decode_octets(&r.read_expect(Tag::context(4))?, "hostId", 1, 16)?;
        r.skip_rest()?;
        Ok(ControlRefTemplate {
            key_type,
            key_len,
            host_id,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        let mut inner = Vec::with_capacity(8 + self.host_id.len());
        write_tlv(&mut inner, Tag::context(0), &[self.key_type]);
        write_tlv(&mut inner, Tag::context(1), &[self.key_len]);
        write_tlv(&mut inner, Tag::context(4), self.host_id);
        write_tlv(out, Tag::context_constructed(6), &inner);
    }
}

/// `InitialiseSecureChannelRequest ::= [35] SEQUENCE` (tag `BF23`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitialiseSecureChannelRequest<'a> {
    /// `remoteOpId RemoteOpId` (`[2] INTEGER`, tag `82`); 1 = installBoundProfilePackage.
    pub remote_op_id: u64,
    /// `transactionId [0] TransactionId` (1..16 octets).
    pub transaction_id: &'a [u8],
    /// `controlRefTemplate [6] IMPLICIT ControlRefTemplate`.
    pub control_ref_template: ControlRefTemplate<'a>,
    /// `smdpOtpk [APPLICATION 73] OCTET STRING` (otPK.DP.ECKA).
    pub smdp_otpk: &'a [u8],
    /// `smdpSign [APPLICATION 55] OCTET STRING`.
    pub smdp_sign: &'a [u8],
}

impl<'a> InitialiseSecureChannelRequest<'a> {
    /// Decode one complete `BF23` element.
    pub fn decode(input: &'a [u8]) -> Result<Self, DecodeError> {
        let t = parse_single(input)?.expect(TAG_ISCR)?;
        Self::from_tlv(&t)
    }

    fn from_tlv(t: &Tlv<'a>) -> Result<Self, DecodeError> {
        let mut r = t.reader()?;
        let remote_op_id = decode_uint(&r.read_expect(Tag::context(2))?, "remoteOpId")?;
        let transaction_id =
            decode_octets(&r.read_expect(Tag::context(0))?, "transactionId", 1, 16)?;
        let crt = r.read_expect(Tag::context_constructed(6))?;
        let control_ref_template = ControlRefTemplate::from_tlv(&crt)?;
        let smdp_otpk = decode_octets(&r.read_expect(TAG_OTPK)?, "smdpOtpk", 0, usize::MAX)?;
        let smdp_sign = decode_octets(&r.read_expect(TAG_SIGNATURE)?, "smdpSign", 0, usize::MAX)?;
        r.skip_rest()?;
        Ok(InitialiseSecureChannelRequest {
            remote_op_id,
            transaction_id,
            control_ref_template,
            smdp_otpk,
            smdp_sign,
        })
    }

    /// The concatenated data objects `remoteOpId || transactionId || controlRefTemplate ||
    /// smdpOtpk`, each as a complete TLV: the first part of what `smdpSign` covers (SGP.22
    /// section 5.5.1; the eUICC's `euiccOtpk` TLV follows). The decoder accepts only DER, so
    /// for a decoded request this equals the received bytes.
    pub fn signed_part(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(100 + self.smdp_otpk.len());
        write_int(
            &mut out,
            Tag::context(2),
            i64::try_from(self.remote_op_id).unwrap_or(i64::MAX),
        );
        write_tlv(&mut out, Tag::context(0), self.transaction_id);
        self.control_ref_template.write(&mut out);
        write_tlv(&mut out, TAG_OTPK, self.smdp_otpk);
        out
    }

    /// Encode as DER (`BF23`).
    pub fn encode(&self) -> Vec<u8> {
        let mut inner = self.signed_part();
        write_tlv(&mut inner, TAG_SIGNATURE, self.smdp_sign);
        let mut out = Vec::with_capacity(inner.len() + 4);
        write_tlv(&mut out, TAG_ISCR, &inner);
        out
    }
}

/// `ConfigureISDPRequest ::= [36] SEQUENCE` (tag `BF24`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConfigureIsdpRequest {
    /// `dpProprietaryData [24] DpProprietaryData OPTIONAL` (at most 128 bytes with its header).
    pub dp_proprietary_data: Option<DpProprietaryData>,
}

impl ConfigureIsdpRequest {
    /// Decode one complete `BF24` element.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let t = parse_single(input)?.expect(TAG_CONFIGURE_ISDP)?;
        let mut r = t.reader()?;
        let dp_proprietary_data = match r.read_optional(Tag::context_constructed(24))? {
            Some(d) => {
                if d.raw.len() > 128 {
                    return Err(DecodeError::invalid(
                        "dpProprietaryData",
                        "longer than 128 bytes",
                    ));
                }
                Some(decode_seq_contents::<DpProprietaryData>(&d)?)
            }
            None => None,
        };
        r.skip_rest()?;
        Ok(ConfigureIsdpRequest {
            dp_proprietary_data,
        })
    }

    /// Encode as DER (`BF24`).
    pub fn encode(&self) -> Vec<u8> {
        let mut inner = Vec::new();
        if let Some(d) = &self.dp_proprietary_data {
            encode_seq_as(d, Tag::context_constructed(24), &mut inner);
        }
        let mut out = Vec::with_capacity(inner.len() + 4);
        write_tlv(&mut out, TAG_CONFIGURE_ISDP, &inner);
        out
    }
}

/// `StoreMetadataRequest ::= [37] SEQUENCE` (tag `BF25`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreMetadataRequest {
    /// `iccid Iccid` (`5A`, 10 octets as in EF.ICCID).
    pub iccid: [u8; 10],
    /// `serviceProviderName [17] UTF8String (SIZE(0..32))` (`91`).
    pub service_provider_name: String,
    /// `profileName [18] UTF8String (SIZE(0..64))` (`92`).
    pub profile_name: String,
    /// `iconType [19] IconType OPTIONAL` (`93`; 0 jpg, 1 png).
    pub icon_type: Option<u64>,
    /// `icon [20] OCTET STRING (SIZE(0..1024)) OPTIONAL` (`94`).
    pub icon: Option<Vec<u8>>,
    /// `profileClass [21] ProfileClass` (`95`; 0 test, 1 provisioning, 2 operational).
    /// Annex H has `DEFAULT operational`, later versions `OPTIONAL`; `None` = absent.
    pub profile_class: Option<u64>,
    /// `notificationConfigurationInfo [22] SEQUENCE OF ... OPTIONAL` (`B6`).
    pub notification_configuration_info: Option<Vec<NotificationConfigurationInformation>>,
    /// `profileOwner [23] OperatorID OPTIONAL` (`B7`).
    pub profile_owner: Option<OperatorId>,
    /// `profilePolicyRules [25] PprIds OPTIONAL` (`99`): set bit numbers.
    pub profile_policy_rules: Option<Vec<u32>>,
    /// Unknown extension components after the known ones, as received (complete TLVs).
    pub extensions: Vec<u8>,
}

/// `iconType` (an INTEGER, `jpg(0)`, `png(1)`, others reserved) within `0..=i64::MAX`.
pub(crate) fn decode_icon_type(t: &crate::tlv::Tlv<'_>) -> Result<u64, DecodeError> {
    decode_uint_i64_range(t, "iconType")
}

/// A non-negative INTEGER within `0..=i64::MAX` (what `write_int` encodes back unchanged).
fn decode_uint_i64_range(t: &crate::tlv::Tlv<'_>, field: &'static str) -> Result<u64, DecodeError> {
    let v = decode_uint(t, field)?;
    if i64::try_from(v).is_err() {
        return Err(DecodeError::invalid(field, "integer out of range"));
    }
    Ok(v)
}

impl StoreMetadataRequest {
    /// Decode one complete `BF25` element.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let t = parse_single(input)?.expect(TAG_STORE_METADATA)?;
        let mut r = t.reader()?;
        let iccid = decode_fixed::<10>(&r.read_expect(TAG_ICCID)?, "iccid")?;
        let service_provider_name = decode_utf8(
            &r.read_expect(Tag::context(17))?,
            "serviceProviderName",
            0,
            32,
        )?;
        let profile_name = decode_utf8(&r.read_expect(Tag::context(18))?, "profileName", 0, 64)?;
        // Bounded to what is encoded back (an INTEGER up to i64::MAX), so that decode ->
        // encode -> decode is the identity (found by the bound_profile_package fuzz target).
        let icon_type = r
            .read_optional(Tag::context(19))?
            .map(|t| decode_icon_type(&t))
            .transpose()?;
        let icon = r
            .read_optional(Tag::context(20))?
            .map(|t| decode_octets(&t, "icon", 0, 1024).map(<[u8]>::to_vec))
            .transpose()?;
        if icon.is_some() && icon_type.is_none() {
            return Err(DecodeError::invalid("icon", "present without iconType"));
        }
        // Bounded like iconType: a value above i64::MAX would be encoded back as i64::MAX.
        let profile_class = r
            .read_optional(Tag::context(21))?
            .map(|t| decode_uint_i64_range(&t, "profileClass"))
            .transpose()?;
        let notification_configuration_info = r
            .read_optional(Tag::context_constructed(22))?
            .map(|t| decode_seq_of::<NotificationConfigurationInformation>(&t))
            .transpose()?;
        let profile_owner = r
            .read_optional(Tag::context_constructed(23))?
            .map(|t| decode_seq_contents::<OperatorId>(&t))
            .transpose()?;
        let profile_policy_rules = r
            .read_optional(Tag::context(25))?
            .map(|t| decode_named_bits(&t, "profilePolicyRules"))
            .transpose()?;
        let extensions = r.remaining().to_vec();
        r.skip_rest()?;
        Ok(StoreMetadataRequest {
            iccid,
            service_provider_name,
            profile_name,
            icon_type,
            icon,
            profile_class,
            notification_configuration_info,
            profile_owner,
            profile_policy_rules,
            extensions,
        })
    }

    /// Encode as DER (`BF25`).
    pub fn encode(&self) -> Vec<u8> {
        let mut inner = Vec::with_capacity(128 + self.icon.as_ref().map_or(0, Vec::len));
        write_tlv(&mut inner, TAG_ICCID, &self.iccid);
        write_tlv(
            &mut inner,
            Tag::context(17),
            self.service_provider_name.as_bytes(),
        );
        write_tlv(&mut inner, Tag::context(18), self.profile_name.as_bytes());
        if let Some(v) = self.icon_type {
            write_int(
                &mut inner,
                Tag::context(19),
                i64::try_from(v).unwrap_or(i64::MAX),
            );
        }
        if let Some(icon) = &self.icon {
            write_tlv(&mut inner, Tag::context(20), icon);
        }
        if let Some(v) = self.profile_class {
            write_int(
                &mut inner,
                Tag::context(21),
                i64::try_from(v).unwrap_or(i64::MAX),
            );
        }
        if let Some(list) = &self.notification_configuration_info {
            encode_seq_of(list, Tag::context_constructed(22), &mut inner);
        }
        if let Some(o) = &self.profile_owner {
            encode_seq_as(o, Tag::context_constructed(23), &mut inner);
        }
        if let Some(p) = &self.profile_policy_rules {
            write_named_bits(&mut inner, Tag::context(25), p);
        }
        inner.extend_from_slice(&self.extensions);
        let mut out = Vec::with_capacity(inner.len() + 4);
        write_tlv(&mut out, TAG_STORE_METADATA, &inner);
        out
    }
}

/// `ReplaceSessionKeysRequest ::= [38] SEQUENCE` (tag `BF26`, automatic tags `80`..`82`).
/// `Debug` does not print the keys. Callers holding real keys should zeroize the vectors.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplaceSessionKeysRequest {
    /// `initialMacChainingValue OCTET STRING`.
    pub initial_mac_chaining_value: Vec<u8>,
    /// `ppkEnc OCTET STRING` (PPK-ENC).
    pub ppk_enc: Vec<u8>,
    /// `ppkCmac OCTET STRING` (PPK-MAC).
    pub ppk_cmac: Vec<u8>,
}

impl std::fmt::Debug for ReplaceSessionKeysRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplaceSessionKeysRequest(..)")
    }
}

impl ReplaceSessionKeysRequest {
    /// Decode one complete `BF26` element.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let t = parse_single(input)?.expect(TAG_REPLACE_SESSION_KEYS)?;
        let mut r = t.reader()?;
        let mut field = |tag: Tag, name: &'static str| -> Result<Vec<u8>, DecodeError> {
            Ok(decode_octets(&r.read_expect(tag)?, name, 0, usize::MAX)?.to_vec())
        };
        let initial_mac_chaining_value = field(Tag::context(0), "initialMacChainingValue")?;
        let ppk_enc = field(Tag::context(1), "ppkEnc")?;
        let ppk_cmac = field(Tag::context(2), "ppkCmac")?;
        r.skip_rest()?;
        Ok(ReplaceSessionKeysRequest {
            initial_mac_chaining_value,
            ppk_enc,
            ppk_cmac,
        })
    }

    /// Encode as DER (`BF26`).
    pub fn encode(&self) -> Vec<u8> {
        let mut inner = Vec::with_capacity(54);
        write_tlv(
            &mut inner,
            Tag::context(0),
            &self.initial_mac_chaining_value,
        );
        write_tlv(&mut inner, Tag::context(1), &self.ppk_enc);
        write_tlv(&mut inner, Tag::context(2), &self.ppk_cmac);
        let mut out = Vec::with_capacity(inner.len() + 4);
        write_tlv(&mut out, TAG_REPLACE_SESSION_KEYS, &inner);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_iscr() -> Vec<u8> {
        InitialiseSecureChannelRequest {
            remote_op_id: REMOTE_OP_INSTALL_BPP,
            transaction_id: &[0x11; 16],
            control_ref_template: ControlRefTemplate {
                key_type: 0x88,
                key_len: 0x10,
                host_id: b"mahlzeit",
            },
            smdp_otpk: &[0x04; 65],
            smdp_sign: &[0x55; 64],
        }
        .encode()
    }

    fn sample_bpp() -> Vec<u8> {
        let iscr = sample_iscr();
        let seg87 = [0x87, 0x02, 0xAA, 0xBB];
        let seg88 = [0x88, 0x01, 0xCC];
        let seg86 = [0x86, 0x01, 0xDD];
        BoundProfilePackage {
            initialise_secure_channel: InitialiseSecureChannelRequest::decode(&iscr).expect("iscr"),
            first_sequence_of_87: vec![&seg87],
            sequence_of_88: vec![&seg88, &seg88],
            second_sequence_of_87: Some(vec![&seg87]),
            sequence_of_86: vec![&seg86, &seg86],
        }
        .encode()
    }

    #[test]
    fn iscr_layout_matches_the_spec() {
        let iscr = sample_iscr();
        assert_eq!(&iscr[..2], &[0xBF, 0x23]);
        let body = &iscr[4..];
        assert_eq!(&body[..3], &[0x82, 0x01, 0x01]);
        assert_eq!(&body[3..5], &[0x80, 0x10]);
        assert_eq!(&body[21..23], &[0xA6, 0x10]);
        assert_eq!(&body[23..29], &[0x80, 0x01, 0x88, 0x81, 0x01, 0x10]);
        let parsed = InitialiseSecureChannelRequest::decode(&iscr).expect("decode");
        assert_eq!(parsed.encode(), iscr);
        let signed = parsed.signed_part();
        assert_eq!(&iscr[4..4 + signed.len()], signed.as_slice());
        assert_eq!(
            &iscr[4 + signed.len()..4 + signed.len() + 3],
            &[0x5F, 0x37, 0x40]
        );
    }

    #[test]
    fn bpp_round_trip() {
        let der = sample_bpp();
        let bpp = BoundProfilePackage::decode(&der).expect("decode");
        assert_eq!(bpp.sequence_of_88.len(), 2);
        assert_eq!(bpp.second_sequence_of_87.as_ref().map(Vec::len), Some(1));
        assert_eq!(bpp.sequence_of_86[0], &[0x86, 0x01, 0xDD]);
        assert_eq!(bpp.encode(), der);
    }

    #[test]
    fn rejects_truncated_bpp() {
        let der = sample_bpp();
        for cut in [1, 2, 10, der.len() / 2, der.len() - 1] {
            assert!(
                BoundProfilePackage::decode(&der[..cut]).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn rejects_trailing_bytes_after_bpp() {
        let mut der = sample_bpp();
        der.push(0);
        assert!(matches!(
            BoundProfilePackage::decode(&der),
            Err(DecodeError::TrailingBytes(1))
        ));
    }

    #[test]
    fn rejects_wrong_outer_tag() {
        let mut der = sample_bpp();
        der[1] = 0x37;
        assert!(matches!(
            BoundProfilePackage::decode(&der),
            Err(DecodeError::UnexpectedTag { .. })
        ));
    }

    #[test]
    fn rejects_wrong_segment_tag() {
        let iscr = sample_iscr();
        let seg = [0x86, 0x01, 0xDD];
        let der = BoundProfilePackage {
            initialise_secure_channel: InitialiseSecureChannelRequest::decode(&iscr).expect("iscr"),
            first_sequence_of_87: vec![&seg],
            sequence_of_88: vec![],
            second_sequence_of_87: None,
            sequence_of_86: vec![],
        }
        .encode();
        assert!(matches!(
            BoundProfilePackage::decode(&der),
            Err(DecodeError::UnexpectedTag { .. })
        ));
    }

    #[test]
    fn rejects_missing_sequence_of_86() {
        let iscr = sample_iscr();
        let mut inner = iscr.clone();
        inner.extend_from_slice(&[0xA0, 0x00, 0xA1, 0x00]);
        let mut der = Vec::new();
        write_tlv(&mut der, TAG_BPP, &inner);
        assert!(BoundProfilePackage::decode(&der).is_err());
    }

    #[test]
    fn rejects_oversized_transaction_id_and_host_id() {
        let mut iscr = sample_iscr();
        // Replace the CRT's hostId length with 17 is not possible in place; build one instead.
        let long = [0u8; 17];
        let bad = InitialiseSecureChannelRequest {
            remote_op_id: 1,
            transaction_id: &long,
            control_ref_template: ControlRefTemplate {
                key_type: 0x88,
                key_len: 0x10,
                host_id: b"h",
            },
            smdp_otpk: &[4; 65],
            smdp_sign: &[0; 64],
        }
        .encode();
        assert!(InitialiseSecureChannelRequest::decode(&bad).is_err());
        let bad = InitialiseSecureChannelRequest {
            remote_op_id: 1,
            transaction_id: &[1],
            control_ref_template: ControlRefTemplate {
                key_type: 0x88,
                key_len: 0x10,
                host_id: &long,
            },
            smdp_otpk: &[4; 65],
            smdp_sign: &[0; 64],
        }
        .encode();
        assert!(InitialiseSecureChannelRequest::decode(&bad).is_err());
        iscr.truncate(iscr.len() - 1);
        assert!(InitialiseSecureChannelRequest::decode(&iscr).is_err());
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn rejects_icon_type_above_i64_max() {
        let smr = |icon_type| StoreMetadataRequest {
            iccid: [0x98, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0x32, 0x54, 0xF6],
            service_provider_name: "Operator".into(),
            profile_name: "Profile".into(),
            icon_type,
            icon: None,
            profile_class: None,
            notification_configuration_info: None,
            profile_owner: None,
            profile_policy_rules: None,
            extensions: Vec::new(),
        };
        let der = smr(Some(1)).encode();
        // iconType [19] 1 -> iconType [19] 0x9407_8950_4E47_0102 (> i64::MAX, the value of
        // the fuzz target's crash input); the outer length is short-form here.
        let at = der
            .windows(3)
            .position(|w| w == [0x93, 0x01, 0x01])
            .unwrap();
        let mut bad = der[..at].to_vec();
        bad.extend_from_slice(&[
            0x93, 0x09, 0x00, 0x94, 0x07, 0x89, 0x50, 0x4E, 0x47, 0x01, 0x02,
        ]);
        bad.extend_from_slice(&der[at + 3..]);
        assert!(bad[2] < 0x80);
        bad[2] += 8;
        let e = StoreMetadataRequest::decode(&bad).unwrap_err();
        assert!(e.to_string().contains("iconType"), "{e}");
        // i64::MAX itself decodes and round-trips.
        let max = smr(Some(i64::MAX.unsigned_abs()));
        assert_eq!(StoreMetadataRequest::decode(&max.encode()).unwrap(), max);
    }

    #[test]
    fn store_metadata_round_trip_with_all_fields() {
        let smr = StoreMetadataRequest {
            iccid: [0x98, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0x32, 0x54, 0xF6],
            service_provider_name: "Operator".into(),
            profile_name: "Profile".into(),
            icon_type: Some(1),
            icon: Some(vec![0x89; 300]),
            profile_class: Some(2),
            notification_configuration_info: Some(vec![
                NotificationConfigurationInformation {
                    profile_management_operation: crate::codec::BitString::from_bits(&[0]),
                    notification_address: "smdp.example".into(),
                },
                NotificationConfigurationInformation {
                    profile_management_operation: crate::codec::BitString::from_bits(&[3]),
                    notification_address: "smdp.example".into(),
                },
            ]),
            profile_owner: Some(OperatorId {
                mcc_mnc: [0x00, 0xF1, 0x10],
                gid1: Some(vec![1]),
                gid2: None,
            }),
            profile_policy_rules: Some(vec![1]),
            extensions: vec![],
        };
        let der = smr.encode();
        assert_eq!(StoreMetadataRequest::decode(&der).expect("decode"), smr);
        // install event encodes as minimal named bits (80 02 07 80)
        assert!(der.windows(4).any(|w| w == [0x80, 0x02, 0x07, 0x80]));
    }

    #[test]
    fn store_metadata_keeps_unknown_extensions() {
        let mut smr = StoreMetadataRequest::decode(&hex_smr()).expect("decode");
        smr.extensions = vec![0x9F, 0x20, 0x01, 0x00];
        let der = smr.encode();
        let back = StoreMetadataRequest::decode(&der).expect("decode");
        assert_eq!(back.extensions, vec![0x9F, 0x20, 0x01, 0x00]);
        assert_eq!(back.encode(), der);
    }

    fn hex_smr() -> Vec<u8> {
        // From the SCP03t vectors' StoreMetadata step (ICCID, SPN, name, profileClass test).
        let hex = "bf252d5a0a98001032547698103214910947534d415f54455354921147534d415f544553545f50524f46494c45950100";
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0))
            .collect()
    }

    #[test]
    fn store_metadata_vector_round_trips() {
        let der = hex_smr();
        let smr = StoreMetadataRequest::decode(&der).expect("decode");
        assert_eq!(smr.service_provider_name, "GSMA_TEST");
        assert_eq!(smr.profile_class, Some(0));
        assert_eq!(smr.encode(), der);
    }

    #[test]
    fn rejects_store_metadata_icon_without_type() {
        let smr = StoreMetadataRequest::decode(&hex_smr()).expect("decode");
        let mut bad = smr.clone();
        bad.icon = Some(vec![1, 2, 3]);
        assert!(StoreMetadataRequest::decode(&bad.encode()).is_err());
    }

    #[test]
    fn rejects_store_metadata_long_service_provider_name() {
        let mut smr = StoreMetadataRequest::decode(&hex_smr()).expect("decode");
        smr.service_provider_name = "x".repeat(33);
        assert!(StoreMetadataRequest::decode(&smr.encode()).is_err());
    }

    #[test]
    fn configure_isdp_round_trip() {
        assert_eq!(
            ConfigureIsdpRequest::decode(&[0xBF, 0x24, 0x00]),
            Ok(ConfigureIsdpRequest::default())
        );
        let c = ConfigureIsdpRequest {
            dp_proprietary_data: Some(DpProprietaryData {
                dp_oid: crate::prim::Oid::from_dotted("2.999.10").expect("oid"),
                extensions: crate::codec::Extensions(vec![vec![0x81, 0x01, 0x07]]),
            }),
        };
        let der = c.encode();
        // dpOid carries the automatic tag [0] (80), as asn1tools encodes it.
        assert_eq!(hex::encode(&der), "bf240ab808800388370a810107");
        assert_eq!(ConfigureIsdpRequest::decode(&der), Ok(c));
    }

    #[test]
    fn rejects_configure_isdp_with_trailing_bytes() {
        assert!(ConfigureIsdpRequest::decode(&[0xBF, 0x24, 0x00, 0x00]).is_err());
        assert!(ConfigureIsdpRequest::decode(&[0xBF, 0x25, 0x00]).is_err());
    }

    #[test]
    fn replace_session_keys_round_trip_and_debug_hides_keys() {
        let r = ReplaceSessionKeysRequest {
            initial_mac_chaining_value: vec![0x22; 16],
            ppk_enc: vec![0xAB; 16],
            ppk_cmac: vec![0xCD; 16],
        };
        let der = r.encode();
        assert_eq!(&der[..5], &[0xBF, 0x26, 0x36, 0x80, 0x10]);
        assert_eq!(ReplaceSessionKeysRequest::decode(&der), Ok(r.clone()));
        assert!(!format!("{r:?}").to_lowercase().contains("ab"));
    }

    #[test]
    fn rejects_truncated_replace_session_keys() {
        let r = ReplaceSessionKeysRequest {
            initial_mac_chaining_value: vec![0; 16],
            ppk_enc: vec![1; 16],
            ppk_cmac: vec![2; 16],
        };
        let der = r.encode();
        assert!(ReplaceSessionKeysRequest::decode(&der[..der.len() - 1]).is_err());
        // ppkCmac missing entirely
        let mut short = Vec::new();
        write_tlv(&mut short, TAG_REPLACE_SESSION_KEYS, &der[3..3 + 36]);
        assert!(matches!(
            ReplaceSessionKeysRequest::decode(&short),
            Err(DecodeError::Missing(_))
        ));
    }
}
