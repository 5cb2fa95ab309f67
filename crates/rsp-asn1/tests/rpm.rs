//! SGP.22 v3 RPM types against the DER vectors of `../shared/docs/rpm-v3-digest.md` §3
//! (value -> bytes and bytes -> value), the tag traps it lists, and bad input.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use rsp_asn1::Codec;
use rsp_asn1::common::{Iccid, TransactionId};
use rsp_asn1::notification::PendingNotification;
use rsp_asn1::prim::Oid;
use rsp_asn1::rpm::*;

const ICCID: [u8; 10] = [0x98, 0x00, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0x32, 0x14];

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn iccid() -> Iccid {
    Iccid(ICCID)
}

fn with_iccid(pre: &str, post: &str) -> Vec<u8> {
    let mut v = h(pre);
    v.extend_from_slice(&ICCID);
    v.extend(h(post));
    v
}

#[test]
fn disable_command() {
    let c = RpmCommand {
        continue_on_failure: false,
        details: RpmCommandDetails::Disable { iccid: iccid() },
    };
    let der = with_iccid("30 0E A2 0C 5A 0A", "");
    assert_eq!(c.encode(), der);
    assert_eq!(RpmCommand::decode(&der).unwrap(), c);
}

#[test]
fn list_profile_info_by_owner_with_continue_and_tag_list() {
    let c = RpmCommand {
        continue_on_failure: true,
        details: RpmCommandDetails::ListProfileInfo {
            criteria: ListProfileInfoCriteria::ProfileOwnerOid(
                Oid::from_dotted("2.999.1").unwrap(),
            ),
            tag_list: Some(h("5A 9F 70")),
        },
    };
    let der = h("30 10 80 00 A4 0C A0 05 80 03 88 37 01 5C 03 5A 9F 70");
    assert_eq!(c.encode(), der);
    assert_eq!(RpmCommand::decode(&der).unwrap(), c);
}

#[test]
fn update_metadata_and_contact_pcmp_commands() {
    let c = RpmCommand {
        continue_on_failure: false,
        details: RpmCommandDetails::UpdateMetadata {
            iccid: iccid(),
            request: UpdateMetadataRequest {
                profile_name: Some("New".into()),
                ..UpdateMetadataRequest::default()
            },
        },
    };
    let der = with_iccid("30 16 A5 14 5A 0A", "BF 2A 05 92 03 4E 65 77");
    assert_eq!(c.encode(), der);
    assert_eq!(RpmCommand::decode(&der).unwrap(), c);
    let p = RpmCommand {
        continue_on_failure: false,
        details: RpmCommandDetails::ContactPcmp {
            iccid: iccid(),
            dpi_rpm: None,
        },
    };
    let der = with_iccid("30 0E A6 0C 5A 0A", "");
    assert_eq!(p.encode(), der);
    assert_eq!(RpmCommand::decode(&der).unwrap(), p);
}

#[test]
fn smdp_signed3_with_rpm_pending() {
    let tx: Vec<u8> = (0u8..16).collect();
    let s = SmdpSigned3 {
        transaction_id: TransactionId::new(&tx).unwrap(),
        rpm_package: RpmPackage(vec![RpmCommand {
            continue_on_failure: false,
            details: RpmCommandDetails::Disable { iccid: iccid() },
        }]),
        rpm_pending: true,
    };
    let mut der = h("30 26 80 10");
    der.extend(&tx);
    der.extend(with_iccid("A1 10 30 0E A2 0C 5A 0A", "82 00"));
    assert_eq!(s.encode(), der);
    assert_eq!(SmdpSigned3::decode(&der).unwrap(), s);
    // The signed input: the 30 form followed by 5F37 euiccSignature1.
    let tbs = smdp_signed3_tbs(&der, &[1, 2]);
    assert_eq!(&tbs[der.len()..], &[0x5F, 0x37, 0x02, 1, 2]);
}

#[test]
fn load_rpm_package_request_vector() {
    let der = h("BF 44 0E 30 05 80 01 01 A1 00 5F 37 01 01 02 01 01");
    let r = LoadRpmPackageRequest::decode(&der).unwrap();
    assert_eq!(r.smdp_signed3.transaction_id.as_bytes(), &[1]);
    assert!(r.smdp_signed3.rpm_package.0.is_empty());
    assert_eq!(r.smdp_signature3, vec![1]);
    assert_eq!(r.target_esim_port, Some(1));
    assert_eq!(r.smdp_signed3_raw, h("30 05 80 01 01 A1 00"));
    assert_eq!(r.encode(), der);
}

#[test]
fn result_not_signed_vector() {
    let der = h("BF 44 08 A1 06 80 01 01 02 01 04");
    let r = LoadRpmPackageResult::decode(&der).unwrap();
    assert_eq!(
        r,
        LoadRpmPackageResult::NotSigned {
            transaction_id: TransactionId::new(&[1]).unwrap(),
            error_code: 4
        }
    );
    assert_eq!(r.encode(), der);
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
fn result_signed_vector_both_ways() {
    let der = signed_vector();
    let LoadRpmPackageResult::Signed(s) = LoadRpmPackageResult::decode(&der).unwrap() else {
        panic!("signed expected")
    };
    assert_eq!(s.form, ResultForm::Automatic);
    assert_eq!(s.euicc_sign_rpr, vec![1, 2, 3, 4]);
    assert_eq!(s.data.transaction_id.as_bytes(), &[0xAA]);
    assert_eq!(s.data.notification_metadata.seq_number, 5);
    assert!(
        s.data
            .notification_metadata
            .profile_management_operation
            .is_set(7)
    );
    assert_eq!(s.data.smdp_oid.to_dotted(), "2.999.10");
    let RpmFinalResult::ExecutionResults(rs) = &s.data.final_result else {
        panic!("results expected")
    };
    assert_eq!(rs.len(), 3);
    assert_eq!(rs[0].data, RpmCommandResultData::Disable(0));
    assert_eq!(rs[1].data, RpmCommandResultData::UpdateMetadata(0));
    assert_eq!(rs[2].data, RpmCommandResultData::Terminated(5));
    assert!(rs[0].data.is_ok() && rs[1].data.is_ok() && !rs[2].data.is_ok());
    // The signed bytes are the data element as received (A0 ...), 0x4F bytes.
    assert_eq!(s.signed_bytes(), &der[5..5 + 0x4F]);
    assert_eq!(s.signed_bytes_as_sequence()[0], 0x30);
    assert_eq!(LoadRpmPackageResult::Signed(s.clone()).encode(), der);
    // Built locally in the same form, the same bytes.
    let rebuilt = LoadRpmPackageResultSigned::from_parts(
        s.data.clone(),
        vec![1, 2, 3, 4],
        ResultForm::Automatic,
    );
    assert_eq!(
        LoadRpmPackageResult::Signed(Box::new(rebuilt)).encode(),
        der
    );
}

#[test]
fn result_signed_universal_form_is_accepted_and_kept() {
    let der = signed_vector();
    let LoadRpmPackageResult::Signed(s) = LoadRpmPackageResult::decode(&der).unwrap() else {
        panic!()
    };
    let u =
        LoadRpmPackageResultSigned::from_parts(s.data.clone(), vec![9; 64], ResultForm::Universal);
    let enc = LoadRpmPackageResult::Signed(Box::new(u.clone())).encode();
    let LoadRpmPackageResult::Signed(back) = LoadRpmPackageResult::decode(&enc).unwrap() else {
        panic!()
    };
    assert_eq!(back.form, ResultForm::Universal);
    assert_eq!(back.signed_bytes()[0], 0x30);
    assert_eq!(*back, u);
}

#[test]
fn pending_notification_carries_the_signed_result_as_a1() {
    let der = signed_vector();
    let LoadRpmPackageResult::Signed(s) = LoadRpmPackageResult::decode(&der).unwrap() else {
        panic!()
    };
    let p = PendingNotification::LoadRpmPackageResultSigned(s);
    let enc = p.encode();
    assert_eq!(enc[0], 0xA1);
    assert_eq!(&enc[2..], &der[5..]);
    assert_eq!(PendingNotification::decode(&enc).unwrap(), p);
}

#[test]
fn enable_disallowed_for_rpm_result() {
    let der = with_iccid("30 12 5A 0A", "BF 31 03 80 01 09");
    let r = RpmCommandResult::decode(&der).unwrap();
    assert_eq!(r.iccid, Some(iccid()));
    assert_eq!(r.data, RpmCommandResultData::Enable(9));
    assert_eq!(r.encode(), der);
}

#[test]
fn rejects_update_metadata_result_in_constructed_form() {
    // Trap 3: [42] INTEGER is primitive 9F2A; a constructed BF2A is not a result.
    let der = with_iccid("30 11 5A 0A", "BF 2A 03 80 01 00");
    assert!(RpmCommandResult::decode(&der).is_err());
}

#[test]
fn rejects_unknown_command_tag_truncation_and_trailing_bytes() {
    assert!(RpmCommand::decode(&with_iccid("30 0E A7 0C 5A 0A", "")).is_err());
    let good = with_iccid("30 0E A2 0C 5A 0A", "");
    for n in 0..good.len() {
        assert!(RpmCommand::decode(&good[..n]).is_err(), "truncated at {n}");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(RpmCommand::decode(&trailing).is_err());
    // An ICCID of 11 bytes.
    assert!(RpmCommand::decode(&h("30 0F A2 0D 5A 0B 98 00 10 32 54 76 98 10 32 14 00")).is_err());
    // Two elements inside disable.
    assert!(RpmCommand::decode(&with_iccid("30 10 A2 0E 5A 0A", "05 00")).is_err());
}

#[test]
fn rejects_wrong_result_tags() {
    // A2 (neither signed nor notSigned) inside BF44.
    assert!(LoadRpmPackageResult::decode(&h("BF 44 02 A2 00")).is_err());
    // Signed data A0 with a 5F37 signature (mixed forms).
    let mut v = signed_vector();
    let n = v.len();
    v[n - 6] = 0x5F; // 81 04 -> 5F 04 ... not a valid mix
    assert!(LoadRpmPackageResult::decode(&v).is_err());
    // A LoadRpmPackageRequest whose smdpSigned3 carries A3 instead of 30.
    assert!(
        LoadRpmPackageRequest::decode(&h("BF 44 0E A3 05 80 01 01 A1 00 5F 37 01 01 02 01 01"))
            .is_err()
    );
}

#[test]
fn ctx_params_rpm_components_round_trip() {
    use rsp_asn1::auth::CtxParamsForCommonAuthentication;
    use rsp_asn1::euicc_info::DeviceInfo;
    // ctxParamsForCommonAuthentication {matchingId "MID1", deviceInfo {tac 35290611, caps {}}}
    let base = h("30 10 80 04 4D 49 44 31 A1 08 80 04 35 29 06 11 A1 00");
    let c = CtxParamsForCommonAuthentication::decode(&base).unwrap();
    assert!(!c.asks_rpm());
    assert_eq!(c.iccid(), None);
    let _: &DeviceInfo = &c.device_info;
    let r = c.with_rpm(Some(iccid()));
    let enc = r.encode();
    let back = CtxParamsForCommonAuthentication::decode(&enc).unwrap();
    assert!(back.asks_rpm());
    assert_eq!(back.iccid(), Some(iccid()));
    // operationType {rpm} is 82 02 06 40 as in the digest's vector.
    assert!(hex::encode(&enc).contains("82020640"));
}
