//! More SGP.22 v3 RPM vectors of `../shared/docs/rpm-v3-digest.md` §3 (value <-> bytes):
//! AuthenticateClientOkRpm (A3) and the A3 -> 30 retag into LoadRpmPackageRequest,
//! ctxParams operationType / iccid / matchingIdSource, NotificationEvent and
//! EuiccRspCapability bits, contactPcmp and listProfileInfo results in both `BF2D` forms,
//! UpdateMetadataRequest, RpmPackage in its two tag forms; and `rejects_*` cases.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use rsp_asn1::auth::{
    AuthenticateClientError, AuthenticateClientResponseEs9, CtxParamsForCommonAuthentication,
    MatchingIdSource,
};
use rsp_asn1::codec::{BitString, Signed, TaggedChoiceForm};
use rsp_asn1::common::{Iccid, TransactionId, notification_event, rsp_capability};
use rsp_asn1::es10c::{ProfileInfo, ProfileInfoListError, ProfileInfoListResponse};
use rsp_asn1::notification::PendingNotification;
use rsp_asn1::prim::Oid;
use rsp_asn1::rpm::*;
use rsp_asn1::tlv::Tag;
use rsp_asn1::{Codec, DecodeError};

const ICCID: [u8; 10] = [0x98, 0x00, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0x32, 0x14];

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// A TLV with a short-form length.
fn t(tag: &str, content: Vec<u8>) -> Vec<u8> {
    let mut v = h(tag);
    assert!(content.len() < 0x80);
    v.push(content.len() as u8);
    v.extend(content);
    v
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn iccid() -> Iccid {
    Iccid(ICCID)
}

fn tx() -> Vec<u8> {
    (0u8..16).collect()
}

/// `30 26 80 10 <tx> A1 10 30 0E A2 0C 5A 0A <iccid> 82 00` (digest §3).
fn smdp_signed3_der() -> Vec<u8> {
    let mut v = h("30 26 80 10");
    v.extend(tx());
    v.extend(h("A1 10 30 0E A2 0C 5A 0A"));
    v.extend(ICCID);
    v.extend(h("82 00"));
    v
}

fn smdp_signed3() -> SmdpSigned3 {
    SmdpSigned3 {
        transaction_id: TransactionId::new(&tx()).unwrap(),
        rpm_package: RpmPackage(vec![RpmCommand {
            continue_on_failure: false,
            details: RpmCommandDetails::Disable { iccid: iccid() },
        }]),
        rpm_pending: true,
    }
}

fn rs() -> Vec<u8> {
    (0x40u8..0x80).collect()
}

/// `BF 3B 7F A2 7D 80 10 <tx> A3 26 80 10 <tx> A1 10 … 82 00 5F 37 40 <r||s>`.
fn ok_rpm_der() -> Vec<u8> {
    let mut v = h("BF 3B 7F A2 7D 80 10");
    v.extend(tx());
    let s3 = smdp_signed3_der();
    v.push(0xA3);
    v.extend(&s3[1..]);
    v.extend(h("5F 37 40"));
    v.extend(rs());
    v
}

#[test]
fn authenticate_client_ok_rpm_vector_both_ways() {
    let value = AuthenticateClientResponseEs9::OkRpm(Box::new(AuthenticateClientOkRpm {
        transaction_id: TransactionId::new(&tx()).unwrap(),
        smdp_signed3: Signed::new(smdp_signed3()),
        smdp_signature3: rs(),
    }));
    let der = ok_rpm_der();
    assert_eq!(value.encode(), der);
    assert_eq!(AuthenticateClientResponseEs9::decode(&der).unwrap(), value);
}

#[test]
fn smdp_signed3_a3_is_kept_in_its_30_form_and_becomes_the_load_request() {
    // Trap 1: A3 in AuthenticateClientOkRpm, 30 in LoadRpmPackageRequest; the Signed bytes
    // are the 30 form, i.e. what the eUICC verifies.
    let AuthenticateClientResponseEs9::OkRpm(ok) =
        AuthenticateClientResponseEs9::decode(&ok_rpm_der()).unwrap()
    else {
        panic!("okRpm expected")
    };
    assert_eq!(ok.smdp_signed3.raw(), smdp_signed3_der().as_slice());
    assert_eq!(ok.smdp_signed3.value(), &smdp_signed3());
    let load = LoadRpmPackageRequest::from_authenticate_client_ok_rpm(&ok, None);
    // LoadRpmPackageRequest: BF 44 6B 30 26 … 82 00 5F 37 40 <r||s>.
    let mut want = h("BF 44 6B");
    want.extend(smdp_signed3_der());
    want.extend(h("5F 37 40"));
    want.extend(rs());
    assert_eq!(load.encode(), want);
    let back = LoadRpmPackageRequest::decode(&want).unwrap();
    assert_eq!(back.smdp_signed3_raw, smdp_signed3_der());
    assert_eq!(back, load);
    // The signed input: the 30 form, then 5F37 40 euiccSignature1.
    let tbs = smdp_signed3_tbs(ok.smdp_signed3.raw(), &[7; 64]);
    assert_eq!(&tbs[..0x28], smdp_signed3_der().as_slice());
    assert_eq!(&tbs[0x28..0x2B], &[0x5F, 0x37, 0x40]);
    assert_eq!(tbs.len(), 0x28 + 67);
}

#[test]
fn rejects_smdp_signed3_tagged_30_in_authenticate_client_ok_rpm() {
    // The untagged form is the LoadRpmPackageRequest one; inside okRpm it must be A3.
    let mut der = ok_rpm_der();
    der[2 + 3 + 18] = 0x30;
    assert!(matches!(
        AuthenticateClientResponseEs9::decode(&der),
        Err(DecodeError::UnexpectedTag { .. })
    ));
}

#[test]
fn rejects_malformed_authenticate_client_ok_rpm() {
    let der = ok_rpm_der();
    for n in [0, 1, 3, 10, der.len() / 2, der.len() - 1] {
        assert!(
            AuthenticateClientResponseEs9::decode(&der[..n]).is_err(),
            "truncated at {n}"
        );
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(matches!(
        AuthenticateClientResponseEs9::decode(&trailing),
        Err(DecodeError::TrailingBytes(1))
    ));
    // authenticateClientOkDeviceChange (A3) is not modelled.
    assert!(AuthenticateClientResponseEs9::decode(&h("BF 3B 02 A3 00")).is_err());
    // The v3 error codes still decode (unknown values kept).
    assert_eq!(
        AuthenticateClientResponseEs9::decode(&h("BF 3B 03 81 01 0D")).unwrap(),
        AuthenticateClientResponseEs9::Error(AuthenticateClientError::Unknown(13))
    );
}

fn ctx_vector() -> Vec<u8> {
    h("30 1B 80 04 4D 49 44 31 A1 08 80 04 35 29 06 11 A1 00 82 02 06 40 A3 05 82 03 88 37 14")
}

#[test]
fn ctx_params_v3_vector_both_ways() {
    let c = CtxParamsForCommonAuthentication::decode(&ctx_vector()).unwrap();
    assert_eq!(c.matching_id.as_deref(), Some("MID1"));
    assert_eq!(
        c.operation_type,
        Some(BitString::from_bits(&[OPERATION_TYPE_RPM]))
    );
    assert!(c.asks_rpm() && !c.asks_profile_download());
    assert_eq!(c.iccid, None);
    assert_eq!(
        c.matching_id_source,
        Some(MatchingIdSource::SmdsOid(
            Oid::from_dotted("2.999.20").unwrap()
        ))
    );
    assert!(c.extensions.is_empty());
    assert_eq!(c.encode(), ctx_vector());
    // value -> bytes from a literal.
    let built = CtxParamsForCommonAuthentication {
        operation_type: Some(BitString::from_bits(&[1])),
        matching_id_source: Some(MatchingIdSource::SmdsOid(
            Oid::from_dotted("2.999.20").unwrap(),
        )),
        ..c.clone()
    };
    assert_eq!(built.encode(), ctx_vector());
}

#[test]
fn ctx_params_v2_shape_is_unchanged_and_defaults_to_download() {
    let v2 = h("30 10 80 04 4D 49 44 31 A1 08 80 04 35 29 06 11 A1 00");
    let c = CtxParamsForCommonAuthentication::decode(&v2).unwrap();
    assert_eq!(c.operation_type, None);
    assert_eq!(c.iccid, None);
    assert_eq!(c.matching_id_source, None);
    assert!(c.asks_profile_download() && !c.asks_rpm());
    assert_eq!(c.encode(), v2);
    // with_rpm sets the typed fields: 82 02 06 40 then 5A.
    let r = c.with_rpm(Some(iccid()));
    let mut want = h("30 20 80 04 4D 49 44 31 A1 08 80 04 35 29 06 11 A1 00 82 02 06 40 5A 0A");
    want.extend(ICCID);
    assert_eq!(r.encode(), want);
    assert_eq!(r.iccid(), Some(iccid()));
}

#[test]
fn ctx_params_matching_id_source_alternatives_and_vendor_extension() {
    // {deviceInfo, {profileDownload, rpm}, iccid, none, vendorSpecificExtension kept raw}
    let mut der = h("30 29 A1 08 80 04 35 29 06 11 A1 00 82 02 06 C0 5A 0A");
    der.extend(ICCID);
    der.extend(h("A3 02 80 00 A4 09 30 07 80 01 01 A1 02 05 00"));
    let c = CtxParamsForCommonAuthentication::decode(&der).unwrap();
    assert!(c.asks_rpm() && c.asks_profile_download());
    assert_eq!(c.iccid, Some(iccid()));
    assert_eq!(c.matching_id_source, Some(MatchingIdSource::None));
    assert_eq!(c.extensions.0, vec![h("A4 09 30 07 80 01 01 A1 02 05 00")]);
    assert_eq!(c.encode(), der);
    let ac = h("30 0E A1 08 80 04 35 29 06 11 A1 00 A3 02 81 00");
    let c = CtxParamsForCommonAuthentication::decode(&ac).unwrap();
    assert_eq!(c.matching_id_source, Some(MatchingIdSource::ActivationCode));
    assert_eq!(c.encode(), ac);
    // An explicit DEFAULT value and trailing zero bits are accepted and kept (lenient).
    let explicit = h("30 0F A1 08 80 04 35 29 06 11 A1 00 82 03 00 80 00");
    let c = CtxParamsForCommonAuthentication::decode(&explicit).unwrap();
    assert!(c.asks_profile_download());
    assert_eq!(c.encode(), explicit);
}

#[test]
fn rejects_bad_ctx_params_v3_components() {
    let base = "A1 08 80 04 35 29 06 11 A1 00";
    // matchingIdSource with an unknown alternative, with a non-empty NULL, with two inside.
    for tail in ["A3 02 84 00", "A3 03 80 01 00", "A3 04 80 00 81 00"] {
        let inner = h(&format!("{base} {tail}"));
        let mut der = vec![0x30, inner.len() as u8];
        der.extend(inner);
        assert!(
            CtxParamsForCommonAuthentication::decode(&der).is_err(),
            "{tail}"
        );
    }
    // An 11-byte ICCID.
    let mut der = h("30 17 A1 08 80 04 35 29 06 11 A1 00 5A 0B");
    der.extend(ICCID);
    der.push(0);
    assert!(CtxParamsForCommonAuthentication::decode(&der).is_err());
}

#[test]
fn notification_event_and_rsp_capability_bits() {
    use rsp_asn1::codec::FieldValue;
    let enc = |b: &BitString| {
        let mut v = Vec::new();
        b.encode_value(Tag::BIT_STRING, &mut v);
        v
    };
    let rpm_enable = BitString::from_bits(&[notification_event::RPM_ENABLE]);
    assert_eq!(enc(&rpm_enable), h("03 02 03 08"));
    let result = BitString::from_bits(&[notification_event::LOAD_RPM_PACKAGE_RESULT]);
    assert_eq!(enc(&result), h("03 02 00 01"));
    let t = rsp_asn1::tlv::parse_single(&[0x03, 0x02, 0x00, 0x01]).unwrap();
    assert_eq!(BitString::decode_value(&t, "e").unwrap(), result);
    assert_eq!(
        [
            notification_event::RPM_DISABLE,
            notification_event::RPM_DELETE
        ],
        [5, 6]
    );
    let cap = BitString::from_bits(&[rsp_capability::RPM_SUPPORT]);
    assert_eq!(enc(&cap), h("03 02 05 20"));
}

#[test]
fn contact_pcmp_no_lpr_configuration_result() {
    let mut der = h("30 11 5A 0A");
    der.extend(ICCID);
    der.extend(h("A0 03 81 01 0D"));
    let r = RpmCommandResult::decode(&der).unwrap();
    assert_eq!(
        r.data.contact_pcmp().unwrap().unwrap(),
        ContactPcmpResponse::Error(ContactPcmpError::NoLprConfiguration)
    );
    assert_eq!(r.data.code(), 13);
    assert!(!r.data.is_ok());
    let built = RpmCommandResult {
        iccid: Some(iccid()),
        data: RpmCommandResultData::contact_pcmp_from(&ContactPcmpResponse::Error(
            ContactPcmpError::NoLprConfiguration,
        )),
    };
    assert_eq!(built.encode(), der);
    // The ok alternative: A0 { A0 { 80 address } }.
    let ok = ContactPcmpResponse::Ok {
        pcmp_address: "pcmp.example".into(),
    };
    let raw = ok.encode_result_element();
    assert_eq!(&raw[..6], &h("A0 10 A0 0E 80 0C"));
    let r = RpmCommandResultData::contact_pcmp_from(&ok);
    assert!(r.is_ok());
    assert_eq!(r.contact_pcmp().unwrap().unwrap(), ok);
}

#[test]
fn enable_disallowed_for_rpm_result_names_its_value() {
    let mut der = h("30 12 5A 0A");
    der.extend(ICCID);
    der.extend(h("BF 31 03 80 01 09"));
    let r = RpmCommandResult::decode(&der).unwrap();
    let RpmCommandResultData::Enable(n) = r.data else {
        panic!("enable expected")
    };
    assert_eq!(
        RpmEnableResult::from_i64(n),
        RpmEnableResult::DisallowedForRpm
    );
    assert_eq!(
        RpmDisableResult::from_i64(10),
        RpmDisableResult::DisallowedForRpm
    );
    assert_eq!(
        UpdateMetadataResult::from_i64(14),
        UpdateMetadataResult::InvalidRpmConfiguration
    );
    assert_eq!(
        RpmProcessingTerminated::from_i64(5),
        RpmProcessingTerminated::CommandAfterContactPcmp
    );
    assert_eq!(RpmDeleteResult::from_i64(42), RpmDeleteResult::Unknown(42));
    assert_eq!(
        LoadRpmPackageErrorCodeNotSigned::from_i64(4),
        LoadRpmPackageErrorCodeNotSigned::NoSession
    );
    assert_eq!(
        LoadRpmPackageErrorCodeSigned::from_i64(5),
        LoadRpmPackageErrorCodeSigned::InvalidTransactionId
    );
}

#[test]
fn list_profile_info_result_single_and_doubled_bf2d() {
    let list = ProfileInfoListResponse::Ok(vec![ProfileInfo {
        iccid: Some(iccid()),
        ..ProfileInfo::default()
    }]);
    // X.680: one BF2D (as ES10c.GetProfilesInfo); asn1tools: BF2D BF2D.
    let mut single = h("30 13 BF 2D 10 A0 0E E3 0C 5A 0A");
    single.extend(ICCID);
    let mut doubled = h("30 16 BF 2D 13 BF 2D 10 A0 0E E3 0C 5A 0A");
    doubled.extend(ICCID);
    for (der, form) in [
        (&single, TaggedChoiceForm::Implicit),
        (&doubled, TaggedChoiceForm::Nested),
    ] {
        let r = RpmCommandResult::decode(der).unwrap();
        assert_eq!(r.iccid, None);
        assert_eq!(
            r.data.list_profile_info().unwrap().unwrap(),
            (list.clone(), form)
        );
        assert!(r.data.is_ok());
        assert_eq!(&r.encode(), der);
        let built = RpmCommandResult {
            iccid: None,
            data: RpmCommandResultData::list_profile_info_from(&list, form),
        };
        assert_eq!(&built.encode(), der);
    }
    // profileChangeOngoing (11) in the doubled form is an error, not ok.
    let r = RpmCommandResult::decode(&h("30 09 BF 2D 06 BF 2D 03 81 01 0B")).unwrap();
    assert_eq!(
        r.data.list_profile_info().unwrap().unwrap().0,
        ProfileInfoListResponse::Error(ProfileInfoListError::ProfileChangeOngoing)
    );
    assert_eq!(r.data.code(), 11);
    assert!(!r.data.is_ok());
}

#[test]
fn rejects_malformed_list_profile_info_and_contact_pcmp_results() {
    for bad in [
        "30 05 BF 2D 02 82 00",          // neither A0 nor 81
        "30 08 BF 2D 05 81 01 01 05 00", // two alternatives
        "30 06 BF 2D 03 A0 01 00",       // A0 with a malformed element
        "30 07 BF 2D 04 A0 02 30 00",    // a list element that is not E3
        "30 04 A0 02 82 00",             // contactPcmp: unknown alternative
        "30 06 A0 04 A0 02 81 00",       // contactPcmp ok without 80 address
        "30 05 A0 03 81 01 0D 00",       // bad length
    ] {
        assert!(RpmCommandResult::decode(&h(bad)).is_err(), "{bad}");
    }
}

#[test]
fn rejects_update_metadata_result_as_bf2a_and_accepts_only_9f2a() {
    let mut ok = h("30 10 5A 0A");
    ok.extend(ICCID);
    ok.extend(h("9F 2A 01 00"));
    let r = RpmCommandResult::decode(&ok).unwrap();
    assert_eq!(r.data, RpmCommandResultData::UpdateMetadata(0));
    assert_eq!(r.encode(), ok);
    // Trap 3: the schema comment says 'BF2A', but [42] INTEGER is primitive.
    let mut bad = ok.clone();
    bad[14] = 0xBF;
    assert!(RpmCommandResult::decode(&bad).is_err());
    let mut bad = h("30 11 5A 0A");
    bad.extend(ICCID);
    bad.extend(h("BF 2A 03 02 01 00"));
    assert!(RpmCommandResult::decode(&bad).is_err());
}

#[test]
fn rejects_unknown_result_alternative_and_missing_data() {
    let mut der = h("30 0F 5A 0A");
    der.extend(ICCID);
    der.extend(h("BF 34 00"));
    assert!(matches!(
        RpmCommandResult::decode(&der),
        Err(DecodeError::UnexpectedTag { .. })
    ));
    let mut der = h("30 0C 5A 0A");
    der.extend(ICCID);
    assert!(RpmCommandResult::decode(&der).is_err());
}

#[test]
fn update_metadata_request_empty_and_full() {
    assert_eq!(
        UpdateMetadataRequest::decode(&h("BF 2A 00")).unwrap(),
        UpdateMetadataRequest::default()
    );
    assert_eq!(UpdateMetadataRequest::default().encode(), h("BF 2A 00"));
    // 91, 92, 93, 94, 99, then v3 components (B6, 5C, BA, 9B) kept in order.
    let der = h(concat!(
        "BF 2A 37 91 02 4F 70 92 03 4E 65 77 93 01 01 94 02 89 50 99 02 06 40",
        " B6 0C 30 0A 80 02 03 08 81 04 64 2E 65 78",
        " 5C 01 9B",
        " BA 09 A0 02 30 00 83 03 88 37 01",
        " 9B 05 68 2E 65 78 61"
    ));
    let u = UpdateMetadataRequest::decode(&der).unwrap();
    assert_eq!(u.service_provider_name.as_deref(), Some("Op"));
    assert_eq!(u.profile_name.as_deref(), Some("New"));
    assert_eq!(u.icon_type, Some(1));
    assert_eq!(u.icon, Some(vec![0x89, 0x50]));
    assert_eq!(u.profile_policy_rules, Some(vec![1]));
    assert_eq!(u.other.len(), 4);
    assert_eq!(u.other[0][0], 0xB6);
    assert_eq!(u.encode(), der);
}

#[test]
fn rejects_malformed_update_metadata_request() {
    // serviceProviderName longer than 32 octets.
    let mut der = vec![0xBF, 0x2A, 35, 0x91, 33];
    der.extend([b'x'; 33]);
    assert!(UpdateMetadataRequest::decode(&der).is_err());
    // PPR bits with trailing zero bits (not DER).
    assert!(UpdateMetadataRequest::decode(&h("BF 2A 04 99 02 00 40")).is_err());
    // A malformed trailing component.
    assert!(UpdateMetadataRequest::decode(&h("BF 2A 04 BA 02 01 05")).is_err());
    // Trailing bytes after the element.
    assert!(matches!(
        UpdateMetadataRequest::decode(&h("BF 2A 00 00")),
        Err(DecodeError::TrailingBytes(1))
    ));
}

#[test]
fn rpm_package_standalone_and_a1_forms() {
    let pkg = smdp_signed3().rpm_package;
    let mut standalone = h("30 10 30 0E A2 0C 5A 0A");
    standalone.extend(ICCID);
    assert_eq!(pkg.encode(), standalone);
    assert_eq!(RpmPackage::decode(&standalone).unwrap(), pkg);
    let mut a1 = standalone.clone();
    a1[0] = 0xA1;
    assert_eq!(pkg.encode_with_tag(RpmPackage::SMDP_SIGNED3_TAG), a1);
    assert_eq!(
        RpmPackage::decode_with_tag(&a1, RpmPackage::SMDP_SIGNED3_TAG).unwrap(),
        pkg
    );
    // Each form is refused where the other is expected.
    assert!(RpmPackage::decode(&a1).is_err());
    assert!(RpmPackage::decode_with_tag(&standalone, RpmPackage::SMDP_SIGNED3_TAG).is_err());
    assert_eq!(RpmPackage::decode(&h("30 00")).unwrap(), RpmPackage(vec![]));
}

#[test]
fn rejects_malformed_rpm_commands() {
    let ic = || t("5A", ICCID.to_vec());
    for (bad, why) in [
        (t("30", t("A0", ic())), "unknown command [0]"),
        (t("30", t("A7", ic())), "unknown command [7]"),
        (t("30", t("30", ic())), "untagged command"),
        (
            t("30", cat(&[h("80 01 00"), t("A2", ic())])),
            "continueOnFailure not NULL",
        ),
        (
            t("30", cat(&[t("A2", ic()), h("80 00")])),
            "continueOnFailure after the command",
        ),
        (
            t("30", cat(&[t("A2", ic()), t("A1", ic())])),
            "two commands in one",
        ),
        (t("30", t("A2", t("4F", ICCID.to_vec()))), "disable by AID"),
        (t("30", t("A2", cat(&[ic(), ic()]))), "two ICCIDs"),
        (t("30", t("A2", vec![])), "no ICCID"),
        (
            t("30", t("A4", t("A0", cat(&[ic(), h("5C 01 5A")])))),
            "searchCriteria with two elements",
        ),
        (
            t("30", t("A4", cat(&[ic(), h("5C 00")]))),
            "criteria not in A0",
        ),
        (t("30", t("A4", t("A0", h("81 01 01")))), "criteria by [1]"),
        (
            t("30", t("A5", cat(&[ic(), h("BF 2B 00")]))),
            "updateMetadata with a wrong request tag",
        ),
        (t("30", t("A5", ic())), "updateMetadata without request"),
        (
            t("30", t("A6", cat(&[ic(), h("04 02 64 70")]))),
            "dpiRpm as OCTET STRING",
        ),
        (
            t("30", t("A6", cat(&[ic(), h("0C 01 FF")]))),
            "dpiRpm not UTF-8",
        ),
        (
            t("30", t("A2", t("5A", ICCID[..9].to_vec()))),
            "9-byte ICCID",
        ),
        (
            t("30", t("A2", t("5A", [&ICCID[..], &[0]].concat()))),
            "11-byte ICCID",
        ),
    ] {
        assert!(RpmCommand::decode(&bad).is_err(), "{why}");
    }
    // An 11-byte ICCID inside a package inside SmdpSigned3.
    let long = t("A2", t("5A", [&ICCID[..], &[0]].concat()));
    let s3 = t("30", cat(&[h("80 01 01"), t("A1", t("30", long))]));
    assert!(SmdpSigned3::decode(&s3).is_err());
    // The same with a 10-byte ICCID decodes.
    let s3 = t("30", cat(&[h("80 01 01"), t("A1", t("30", t("A2", ic())))]));
    assert!(SmdpSigned3::decode(&s3).is_ok());
}

#[test]
fn rejects_malformed_smdp_signed3_and_load_request() {
    let der = smdp_signed3_der();
    for n in 0..der.len() {
        assert!(SmdpSigned3::decode(&der[..n]).is_err(), "truncated at {n}");
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(SmdpSigned3::decode(&trailing).is_err());
    // rpmPackage with its standalone tag 30 instead of A1.
    let mut wrong = der.clone();
    wrong[20] = 0x30;
    assert!(SmdpSigned3::decode(&wrong).is_err());
    // rpmPending that is not NULL.
    let mut pending = der.clone();
    let n = pending.len();
    pending[n - 1] = 0x01;
    pending.push(0x00);
    pending[1] += 1;
    assert!(SmdpSigned3::decode(&pending).is_err());
    // LoadRpmPackageRequest: missing signature, port as 81, trailing element.
    assert!(LoadRpmPackageRequest::decode(&h("BF 44 07 30 05 80 01 01 A1 00")).is_err());
    assert!(
        LoadRpmPackageRequest::decode(&h("BF 44 0E 30 05 80 01 01 A1 00 5F 37 01 01 81 01 01"))
            .is_err()
    );
    assert!(
        LoadRpmPackageRequest::decode(&h(
            "BF 44 10 30 05 80 01 01 A1 00 5F 37 01 01 02 01 01 05 00"
        ))
        .is_err()
    );
}

fn signed_vector() -> Vec<u8> {
    let mut v = h("BF 44 57 A0 55 A0 4D 80 01 AA BF 2F 13 80 01 05 81 02 00 01 0C 0A");
    v.extend(b"dp.example");
    v.extend(h("06 03 88 37 0A A2 2D A0 2B 30 12 5A 0A"));
    v.extend(ICCID);
    v.extend(h("BF 32 03 80 01 00 30 10 5A 0A"));
    v.extend(ICCID);
    v.extend(h("9F 2A 01 00 30 03 02 01 05 81 04 01 02 03 04"));
    v
}

#[test]
fn signed_result_candidates_are_as_received_then_retagged_30() {
    let der = signed_vector();
    let LoadRpmPackageResult::Signed(s) = LoadRpmPackageResult::decode(&der).unwrap() else {
        panic!("signed expected")
    };
    let c = s.signed_data_candidates();
    assert_eq!(c.len(), 2);
    assert_eq!(c[0], der[5..5 + 0x4F].to_vec());
    let mut retagged = c[0].clone();
    retagged[0] = 0x30;
    assert_eq!(c[1], retagged);
    // Received as 30 + 5F37: a single candidate, the bytes as received.
    let mut body = retagged.clone();
    body.extend(h("5F 37 04 01 02 03 04"));
    let mut lenient = vec![0xBF, 0x44, (body.len() + 2) as u8, 0xA0, body.len() as u8];
    lenient.extend(&body);
    let LoadRpmPackageResult::Signed(l) = LoadRpmPackageResult::decode(&lenient).unwrap() else {
        panic!("signed expected")
    };
    assert_eq!(l.form, ResultForm::Universal);
    assert_eq!(l.signed_data_candidates(), vec![retagged]);
    assert_eq!(LoadRpmPackageResult::Signed(l.clone()).encode(), lenient);
    // As a notification: A1 over the same body.
    let p = l.clone().into_pending_notification();
    let enc = p.encode();
    assert_eq!(enc[0], 0xA1);
    assert_eq!(&enc[2..], body.as_slice());
    assert_eq!(PendingNotification::decode(&enc).unwrap(), p);
}

#[test]
fn rejects_malformed_signed_results() {
    let der = signed_vector();
    for n in [0, 2, 3, 5, 20, der.len() - 5, der.len() - 1] {
        assert!(LoadRpmPackageResult::decode(&der[..n]).is_err(), "cut {n}");
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(matches!(
        LoadRpmPackageResult::decode(&trailing),
        Err(DecodeError::TrailingBytes(1))
    ));
    // Lenient data tag 30 with the strict signature tag 81 (a mix).
    let mut mixed = der.clone();
    mixed[5] = 0x30;
    assert!(LoadRpmPackageResult::decode(&mixed).is_err());
    // The signed result wrapped in BF44 where a PendingNotification is expected.
    assert!(PendingNotification::decode(&der).is_err());
    // finalResult with an unknown alternative (82).
    let data = cat(&[
        h("80 01 AA"),
        t("BF 2F", h("80 01 05 81 02 00 01 0C 02 64 70")),
        h("06 01 01"),
        t("A2", h("82 00")),
    ]);
    let bad = t("BF 44", t("A0", cat(&[t("A0", data), h("81 00")])));
    assert!(LoadRpmPackageResult::decode(&bad).is_err());
    // notSigned with the error code as 81.
    assert!(LoadRpmPackageResult::decode(&h("BF 44 08 A1 06 80 01 01 81 01 04")).is_err());
}
