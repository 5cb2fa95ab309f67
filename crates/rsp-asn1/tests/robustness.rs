//! Negative and robustness tests: named `rejects_*` cases per type family, the
//! tagged-CHOICE dual-form decoding, signed-part byte preservation, extensibility, and an
//! exhaustive truncation / single-byte corruption sweep over every sample encoding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use rsp_asn1::auth::*;
use rsp_asn1::cancel::*;
use rsp_asn1::codec::TaggedChoiceForm;
use rsp_asn1::download::*;
use rsp_asn1::es10c::*;
use rsp_asn1::euicc_info::*;
use rsp_asn1::notification::*;
use rsp_asn1::{Codec, DecodeError};

fn with_trailing(mut b: Vec<u8>) -> Vec<u8> {
    b.push(0x00);
    b
}

/// Re-encode `b` with the outer length made non-minimal (long form for a short length).
fn overlong_len(b: &[u8]) -> Vec<u8> {
    let t = rsp_asn1::tlv::parse_single(b).unwrap();
    let hdr = t.raw.len() - t.value.len();
    let len_octets = &b[..hdr];
    let tag_len = if len_octets[0] & 0x1F == 0x1F { 2 } else { 1 };
    let mut out = b[..tag_len].to_vec();
    // a leading zero length octet is never minimal
    out.extend_from_slice(&[
        0x84,
        0x00,
        0x00,
        (t.value.len() >> 8) as u8,
        t.value.len() as u8,
    ]);
    out.extend_from_slice(t.value);
    out
}

fn check_family<T: Codec + std::fmt::Debug>(good: Vec<u8>, wrong_tag: u8) {
    assert!(T::decode(&good).is_ok(), "good sample must decode");
    // truncated
    assert!(T::decode(&good[..good.len() - 1]).is_err(), "truncated");
    assert!(T::decode(&[]).is_err(), "empty");
    // trailing bytes
    assert!(matches!(
        T::decode(&with_trailing(good.clone())),
        Err(DecodeError::TrailingBytes(_))
    ));
    // overlong (non-minimal) length
    assert!(T::decode(&overlong_len(&good)).is_err(), "overlong length");
    // wrong tag
    let mut w = good.clone();
    w[0] = wrong_tag;
    assert!(T::decode(&w).is_err(), "wrong tag");
}

#[test]
fn rejects_malformed_euicc_info() {
    check_family::<EuiccInfo1>(common::euicc_info1().encode(), 0x30);
    check_family::<EuiccInfo2>(common::euicc_info2().encode(), 0x30);
    check_family::<DeviceInfo>(common::device_info().encode(), 0x31);
    // missing mandatory: EUICCInfo1 without svn
    assert!(EuiccInfo1::decode(&[0xBF, 0x20, 0x04, 0xA9, 0x00, 0xAA, 0x00]).is_err());
    // bad size: svn with 2 octets
    assert!(
        EuiccInfo1::decode(&[0xBF, 0x20, 0x08, 0x82, 0x02, 2, 2, 0xA9, 0x00, 0xAA, 0x00]).is_err()
    );
    // bad tac size (5)
    assert!(DeviceInfo::decode(&[0x30, 0x09, 0x80, 0x05, 1, 2, 3, 4, 5, 0xA1, 0x00]).is_err());
    // tac of 4 octets (v2.2) accepted
    assert!(DeviceInfo::decode(&[0x30, 0x08, 0x80, 0x04, 1, 2, 3, 4, 0xA1, 0x00]).is_ok());
}

#[test]
fn rejects_malformed_authentication() {
    check_family::<AuthenticateServerRequest>(common::auth_server_request().encode(), 0x30);
    check_family::<AuthenticateServerResponse>(common::auth_server_response_ok().encode(), 0x30);
    check_family::<AuthenticateServerResponse>(common::auth_server_response_err().encode(), 0xA0);
    check_family::<ServerSigned1>(common::server_signed1().encode(), 0x31);
    // euiccChallenge of 15 octets
    let mut s = common::server_signed1();
    s.euicc_challenge = rsp_asn1::common::Octet16::new(&[0; 16]).unwrap();
    let mut b = s.encode();
    let pos = b.windows(2).position(|w| w == [0x81, 0x10]).unwrap();
    b[pos + 1] = 0x0F;
    b.remove(pos + 2);
    b[1] -= 1;
    assert!(matches!(
        ServerSigned1::decode(&b),
        Err(DecodeError::Invalid { .. })
    ));
    // unknown alternative of AuthenticateServerResponse
    assert!(AuthenticateServerResponse::decode(&[0xBF, 0x38, 0x02, 0xA5, 0x00]).is_err());
    // a transactionId longer than 16 octets
    let mut err = vec![0xBF, 0x38, 0x18, 0xA1, 0x16, 0x80, 0x11];
    err.extend_from_slice(&[1; 17]);
    err.extend_from_slice(&[0x02, 0x01, 0x01]);
    assert!(AuthenticateServerResponse::decode(&err).is_err());
}

#[test]
fn rejects_malformed_download() {
    check_family::<PrepareDownloadRequest>(common::prepare_download_request().encode(), 0x30);
    check_family::<PrepareDownloadResponse>(common::prepare_download_response_ok().encode(), 0x30);
    check_family::<ProfileInstallationResult>(common::pir_ok().encode(), 0x30);
    // missing mandatory finalResult
    let mut d = common::pir_data_ok().encode();
    let fr = d.windows(2).rposition(|w| w[0] == 0xA2).unwrap();
    d.truncate(fr);
    let inner_len = d.len() - 3;
    d[2] = inner_len as u8;
    assert!(ProfileInstallationResultData::decode(&d).is_err());
    // hashCc of 31 octets
    let mut b = common::euicc_signed2().encode();
    let pos = b.windows(2).position(|w| w == [0x04, 0x20]).unwrap();
    b[pos + 1] = 0x1F;
    b.remove(pos + 2);
    b[1] -= 1;
    assert!(EuiccSigned2::decode(&b).is_err());
}

#[test]
fn rejects_malformed_notifications() {
    check_family::<NotificationMetadata>(common::notification_metadata().encode(), 0x30);
    check_family::<OtherSignedNotification>(common::other_signed_notification().encode(), 0xA0);
    check_family::<ListNotificationResponse>(
        ListNotificationResponse::List(vec![common::notification_metadata()]).encode(),
        0x30,
    );
    // ICCID of 9 octets
    let mut b = common::notification_metadata().encode();
    let pos = b.windows(2).position(|w| w == [0x5A, 0x0A]).unwrap();
    b[pos + 1] = 0x09;
    b.remove(pos + 2);
    b[2] -= 1;
    assert!(NotificationMetadata::decode(&b).is_err());
    // PendingNotification with an unexpected tag
    assert!(PendingNotification::decode(&[0x31, 0x00]).is_err());
}

#[test]
fn rejects_malformed_cancel_session() {
    check_family::<CancelSessionResponse>(common::cancel_session_response_ok().encode(), 0x30);
    let req = CancelSessionRequest {
        transaction_id: rsp_asn1::common::TransactionId::new(&[1]).unwrap(),
        reason: CancelSessionReason::Timeout,
    };
    check_family::<CancelSessionRequest>(req.encode(), 0x30);
    // empty transactionId (SIZE(1..16))
    assert!(
        CancelSessionRequest::decode(&[0xBF, 0x41, 0x05, 0x80, 0x00, 0x81, 0x01, 0x00]).is_err()
    );
    // two alternatives inside the CHOICE
    assert!(
        CancelSessionResponse::decode(&[0xBF, 0x41, 0x06, 0x81, 0x01, 0x05, 0x81, 0x01, 0x05])
            .is_err()
    );
}

#[test]
fn rejects_malformed_es10c() {
    let eid = GetEuiccDataResponse {
        eid_value: rsp_asn1::common::Eid([0x89; 16]),
    };
    check_family::<GetEuiccDataResponse>(eid.encode(), 0x30);
    // 15-byte EID
    let mut b = vec![0xBF, 0x3E, 0x11, 0x5A, 0x0F];
    b.extend_from_slice(&[0x89; 15]);
    assert!(matches!(
        GetEuiccDataResponse::decode(&b),
        Err(DecodeError::Invalid { .. })
    ));
    check_family::<ProfileInfoListResponse>(
        ProfileInfoListResponse::Ok(vec![common::profile_info()]).encode(),
        0x30,
    );
    // nickname longer than 64 octets
    let mut pi = common::profile_info();
    pi.profile_nickname = Some("n".repeat(65));
    assert!(ProfileInfo::decode(&pi.encode()).is_err());
    // refreshFlag non-DER boolean
    assert!(
        EnableProfileRequest::decode(&[
            0xBF, 0x31, 0x08, 0xA0, 0x03, 0x4F, 0x01, 0xA0, 0x81, 0x01, 0x01
        ])
        .is_err()
    );
}

/// Found by the `es10_messages` fuzz target: an explicit `profileClass operational` (`95 01
/// 02`, accepted on decode) was kept as `Some(Operational)`, which the encoder omits as the
/// DEFAULT, so decode -> encode -> decode gave a different value. It is now held as absent.
#[test]
fn rejects_explicit_default_profile_class_as_a_distinct_value() {
    use rsp_asn1::common::ProfileClass;
    // E3 { 5A iccid, 95 01 02 }
    let mut b = vec![0xE3, 0x0F, 0x5A, 0x0A];
    b.extend_from_slice(&[0x98, 0x94, 0x44, 0x99, 0x99, 0x99, 0x99, 0x09, 0x20, 0xF3]);
    b.extend_from_slice(&[0x95, 0x01, 0x02]);
    let explicit = ProfileInfo::decode(&b).unwrap();
    assert_eq!(explicit.profile_class, None, "operational is the DEFAULT");
    let encoded = explicit.encode();
    let mut absent = vec![0xE3, 0x0C];
    absent.extend_from_slice(&b[2..b.len() - 3]);
    assert_eq!(encoded, absent, "DER leaves the DEFAULT out");
    assert_eq!(ProfileInfo::decode(&encoded).unwrap(), explicit);
    // The other classes stay explicit and round-trip.
    for (byte, class) in [(0u8, ProfileClass::Test), (1, ProfileClass::Provisioning)] {
        let mut t = b.clone();
        *t.last_mut().unwrap() = byte;
        let v = ProfileInfo::decode(&t).unwrap();
        assert_eq!(v.profile_class, Some(class));
        assert_eq!(v.encode(), t);
    }
    // Inside a ProfileInfoListResponse (the fuzzer's input shape) the round trip is stable.
    let list = ProfileInfoListResponse::Ok(vec![explicit.clone(), ProfileInfo::default()]);
    let again = ProfileInfoListResponse::decode(&list.encode()).unwrap();
    assert_eq!(again, list);
}

/// Found by the `bound_profile_package` fuzz target (smoke run): a StoreMetadataRequest whose
/// `profileClass` is a 9-octet INTEGER above i64::MAX decoded, and was encoded back as
/// i64::MAX, so decode -> encode -> decode changed the value. It is now refused on decode.
#[test]
fn rejects_store_metadata_profile_class_above_i64_max() {
    use rsp_asn1::bpp::StoreMetadataRequest;
    let crash = hex::decode(
        "bf255b5a0a989444999999990920f391084f70657261746f72920c546573742070726f66696c65930101\
         940789504e47010203950900a21bb630048002908110736d64702e6578616d706c652e636f6db7083af1\
         80031000010199020640",
    )
    .unwrap();
    let e = StoreMetadataRequest::decode(&crash).unwrap_err();
    assert!(e.to_string().contains("profileClass"), "{e}");
    // i64::MAX itself decodes and round-trips.
    let mut max = common::store_metadata_full();
    max.profile_class = Some(i64::MAX.unsigned_abs());
    assert_eq!(StoreMetadataRequest::decode(&max.encode()).unwrap(), max);
}

#[test]
fn rejects_excessive_nesting() {
    // an extension component nested 40 deep inside EUICCInfo1
    let mut ext = vec![0x04, 0x00];
    for _ in 0..40 {
        let mut o = vec![0x30];
        rsp_asn1::tlv::write_len(&mut o, ext.len());
        o.extend_from_slice(&ext);
        ext = o;
    }
    let mut body = common::euicc_info1().encode()[3..].to_vec();
    body.extend_from_slice(&ext);
    let mut b = vec![0xBF, 0x20];
    rsp_asn1::tlv::write_len(&mut b, body.len());
    b.extend_from_slice(&body);
    assert_eq!(EuiccInfo1::decode(&b), Err(DecodeError::TooDeep));
}

#[test]
fn tagged_choice_forms_both_decode() {
    // CancelSessionRequestEs9: X.680 form A1 03 81 01 05 and asn1tools form A1 06 BF41 03 81 01 05.
    let implicit = [
        0xBF, 0x41, 0x08, 0x80, 0x01, 0x07, 0xA1, 0x03, 0x81, 0x01, 0x05,
    ];
    let nested = [
        0xBF, 0x41, 0x0B, 0x80, 0x01, 0x07, 0xA1, 0x06, 0xBF, 0x41, 0x03, 0x81, 0x01, 0x05,
    ];
    let a = CancelSessionRequestEs9::decode(&implicit).unwrap();
    let b = CancelSessionRequestEs9::decode(&nested).unwrap();
    assert_eq!(a.form, TaggedChoiceForm::Implicit);
    assert_eq!(b.form, TaggedChoiceForm::Nested);
    assert_eq!(a.cancel_session_response, b.cancel_session_response);
    assert_eq!(a.encode(), implicit);
    assert_eq!(b.encode(), nested);

    // AuthenticateClientRequest and GetBoundProfilePackageRequest: the default (X.680)
    // form embeds the ES10b response element unchanged.
    let asr = common::auth_server_response_ok();
    let req = AuthenticateClientRequest {
        transaction_id: rsp_asn1::common::TransactionId::new(&[1]).unwrap(),
        authenticate_server_response: asr.clone(),
        form: TaggedChoiceForm::default(),
    };
    let enc = req.encode();
    let asr_enc = asr.encode();
    assert!(enc.windows(asr_enc.len()).any(|w| w == asr_enc.as_slice()));
    let back = AuthenticateClientRequest::decode(&enc).unwrap();
    assert_eq!(back, req);
    let nested_req = AuthenticateClientRequest {
        form: TaggedChoiceForm::Nested,
        ..req.clone()
    };
    let back2 = AuthenticateClientRequest::decode(&nested_req.encode()).unwrap();
    assert_eq!(
        back2.authenticate_server_response,
        req.authenticate_server_response
    );

    let g = GetBoundProfilePackageRequest {
        transaction_id: rsp_asn1::common::TransactionId::new(&[1]).unwrap(),
        prepare_download_response: common::prepare_download_response_err(),
        form: TaggedChoiceForm::Implicit,
    };
    assert_eq!(
        GetBoundProfilePackageRequest::decode(&g.encode()).unwrap(),
        g
    );
}

#[test]
fn signed_parts_keep_received_bytes() {
    // An EuiccSigned1 whose EUICCInfo2 has a non-DER (trailing-zero) uiccCapability and an
    // unknown trailing component: the raw bytes are exactly what was received.
    let ok = common::auth_server_response_ok().encode();
    let resp = AuthenticateServerResponse::decode(&ok).unwrap();
    let AuthenticateServerResponse::Ok(inner) = &resp else {
        panic!("ok expected")
    };
    let raw = inner.euicc_signed1.raw();
    assert_eq!(raw, common::euicc_signed1().encode().as_slice());
    assert!(ok.windows(raw.len()).any(|w| w == raw));

    // append an unknown [30] component (9E 01 02) — extensibility
    let enc = common::euicc_info2().encode();
    let t = rsp_asn1::tlv::parse_single(&enc).unwrap();
    let mut body = t.value.to_vec();
    body.extend_from_slice(&[0x9E, 0x01, 0x02]);
    let info2 = rsp_asn1::tlv::tlv(rsp_asn1::Tag(0xBF22), &body);
    let d = EuiccInfo2::decode(&info2).unwrap();
    assert_eq!(d.extensions.0, vec![vec![0x9E, 0x01, 0x02]]);
    assert_eq!(d.encode(), info2);

    // v3 components are typed
    let mut v3 = common::euicc_info2();
    v3.lpa_mode = Some(LpaMode::Lpad);
    v3.highest_svn = Some(rsp_asn1::common::VersionType::from_parts(3, 1, 0));
    v3.tre_properties = Some(rsp_asn1::BitString::from_bits(&[1]));
    assert_eq!(EuiccInfo2::decode(&v3.encode()).unwrap(), v3);

    // ProfileInstallationResultData raw is what euiccSignPIR covers.
    let pir = ProfileInstallationResult::decode(&common::pir_ok().encode()).unwrap();
    assert_eq!(
        pir.profile_installation_result_data.raw(),
        common::pir_data_ok().encode().as_slice()
    );
}

#[test]
fn unknown_enum_values_are_kept() {
    let b = [0xBF, 0x31, 0x03, 0x80, 0x01, 0x63];
    let r = EnableProfileResponse::decode(&b).unwrap();
    assert_eq!(r.enable_result, EnableResult::Unknown(99));
    assert_eq!(r.encode(), b);
}

#[test]
fn truncation_and_corruption_sweep() {
    let mut samples = common::our_samples();
    samples.extend(common::our_v3_samples());
    let mut checked = 0usize;
    for (name, _, good) in &samples {
        let f = common::roundtrip_for(name).expect("mapped");
        assert!(f(good).is_ok(), "{name} must decode");
        for n in 0..good.len() {
            assert!(
                f(&good[..n]).is_err(),
                "{name}: prefix of {n} bytes decoded"
            );
        }
        // single-byte corruption: every position, a few values (all of them for short ones)
        let values: Vec<u8> = if good.len() <= 64 {
            (0..=255).collect()
        } else {
            vec![0x00, 0x01, 0x7F, 0x80, 0xFF]
        };
        for i in 0..good.len() {
            for &v in &values {
                let mut c = good.clone();
                c[i] ^= v;
                let _ = f(&c); // must not panic
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000);
}
