//! SGP.22 v3 Remote Profile Management on the virtual eUICC: ES10b.LoadRpmPackage against
//! packages signed in the test with the PKI's SK.DPauth (no server).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use euicc_sim::state::{EuiccState, NotificationOp, ProfileStateRec};
use euicc_sim::{Es10Error, Euicc};
use rsp_asn1::Codec;
use rsp_asn1::auth::{AuthenticateServerResponse, CtxParams1};
use rsp_asn1::common::{Iccid, ProfileIdentifier, TransactionId, rsp_capability};
use rsp_asn1::es10c::ProfileInfoListResponse;
use rsp_asn1::notification::PendingNotification;
use rsp_asn1::rpm::{
    ListProfileInfoCriteria, LoadRpmPackageRequest, LoadRpmPackageResult,
    LoadRpmPackageResultSigned, RpmCommand, RpmCommandDetails, RpmCommandResultData,
    RpmFinalResult, RpmPackage, SmdpSigned3, UpdateMetadataRequest, smdp_signed3_tbs,
};
use rsp_crypto::KeyCustody;
use rsp_crypto::ecdsa::verify_raw;
use rsp_pki::{DpRole, TestPki};

const ADDR: &str = "smdp.example.com";
const A: &str = "8944000000000000017";
const B: &str = "8944000000000000025";
const TID: [u8; 16] = [0x42; 16];

fn iccid(s: &str) -> Iccid {
    Iccid::from_digits(s).unwrap()
}

fn v3_euicc(pki: &TestPki) -> Euicc {
    let mut st = EuiccState::from_parts(
        &pki.eid,
        pki.euicc.der.clone(),
        &pki.euicc.key,
        pki.eum.der.clone(),
        vec![pki.ci.der.clone()],
    );
    st.v3 = true;
    Euicc::from_state(st).unwrap()
}

fn install(pki: &TestPki, euicc: &mut Euicc, tid: &[u8], iccid: &str) {
    let otpk = authenticate_and_prepare(pki, euicc, tid, ADDR);
    let bpp = make_bpp(pki, tid, &otpk, &pki.eid, iccid, ADDR);
    euicc.load_bound_profile_package(&bpp).unwrap();
}

/// A v3 eUICC with profile A enabled and profile B disabled, no pending notifications.
fn card(pki: &TestPki) -> Euicc {
    let mut e = v3_euicc(pki);
    install(pki, &mut e, &[0x11; 16], A);
    install(pki, &mut e, &[0x12; 16], B);
    e.enable_profile(&ProfileIdentifier::Iccid(iccid(A)));
    for seq in e
        .state()
        .notifications
        .iter()
        .map(|n| n.seq_number)
        .collect::<Vec<_>>()
    {
        e.remove_notification(seq);
    }
    e
}

/// AuthenticateServer with an RPM ctxParams1 and the given CERT.DPauth; returns
/// euiccSignature1.
fn authenticate(
    pki: &TestPki,
    euicc: &mut Euicc,
    tid: &[u8],
    cert: &[u8],
    key: &dyn KeyCustody,
) -> Vec<u8> {
    let ch = euicc.get_euicc_challenge().unwrap();
    let mut req = auth_request(pki, tid, &ch, ADDR, cert, key);
    if let CtxParams1::CommonAuthentication(c) = &mut req.ctx_params1 {
        let mut ctx = (**c).clone();
        ctx.matching_id = None;
        **c = ctx.with_rpm(Some(iccid(A)));
    }
    let AuthenticateServerResponse::Ok(ok) = euicc.authenticate_server(&req, Some(ADDR)) else {
        panic!("authenticate_server failed")
    };
    ok.euicc_signature1
}

fn cmd(details: RpmCommandDetails) -> RpmCommand {
    RpmCommand {
        continue_on_failure: false,
        details,
    }
}

fn cont(details: RpmCommandDetails) -> RpmCommand {
    RpmCommand {
        continue_on_failure: true,
        details,
    }
}

/// LoadRpmPackageRequest signed by `key` over smdpSigned3 ‖ 5F37 euiccSignature1.
fn package(
    tid: &[u8],
    cmds: Vec<RpmCommand>,
    euicc_signature1: &[u8],
    key: &dyn KeyCustody,
) -> LoadRpmPackageRequest {
    let s3 = SmdpSigned3 {
        transaction_id: TransactionId::new(tid).unwrap(),
        rpm_package: RpmPackage(cmds),
        rpm_pending: false,
    };
    let raw = s3.encode();
    let sig = key
        .sign(&smdp_signed3_tbs(&raw, euicc_signature1))
        .unwrap()
        .to_vec();
    LoadRpmPackageRequest::new(s3, sig)
}

/// Authenticate with the PKI's DPauth and load `cmds`; returns the signed result.
fn run(pki: &TestPki, e: &mut Euicc, cmds: Vec<RpmCommand>) -> Box<LoadRpmPackageResultSigned> {
    let sig1 = authenticate(pki, e, &TID, &pki.dpauth.der, &pki.dpauth.key);
    let req = package(&TID, cmds, &sig1, &pki.dpauth.key);
    match e.load_rpm_package(&req).unwrap() {
        LoadRpmPackageResult::Signed(s) => s,
        other => panic!("unexpected {other:?}"),
    }
}

fn results(s: &LoadRpmPackageResultSigned) -> Vec<RpmCommandResultData> {
    match &s.data.final_result {
        RpmFinalResult::ExecutionResults(r) => r.iter().map(|r| r.data.clone()).collect(),
        RpmFinalResult::ErrorCode(c) => panic!("package error {c}"),
    }
}

fn state_of(e: &Euicc, id: &str) -> ProfileStateRec {
    e.state().find_profile(id).unwrap().state
}

fn ops(e: &Euicc) -> Vec<NotificationOp> {
    e.state()
        .notifications
        .iter()
        .map(|n| n.operation)
        .collect()
}

#[test]
fn disable_then_enable_package_changes_state_and_queues_notifications() {
    let pki = pki();
    let mut e = card(&pki);
    let s = run(
        &pki,
        &mut e,
        vec![
            cmd(RpmCommandDetails::Disable { iccid: iccid(A) }),
            cmd(RpmCommandDetails::Enable { iccid: iccid(B) }),
        ],
    );
    assert_eq!(
        results(&s),
        vec![
            RpmCommandResultData::Disable(0),
            RpmCommandResultData::Enable(0)
        ]
    );
    assert_eq!(state_of(&e, A), ProfileStateRec::Disabled);
    assert_eq!(state_of(&e, B), ProfileStateRec::Enabled);
    assert!(
        e.session_info().is_none(),
        "the session ends with the package"
    );

    // Notifications: RPM disable (bit 5) for A, RPM enable (bit 4) for B, the result (bit 7).
    assert_eq!(
        ops(&e),
        vec![
            NotificationOp::RpmDisable,
            NotificationOp::RpmEnable,
            NotificationOp::LoadRpmPackageResult
        ]
    );
    let n = &e.state().notifications;
    for (rec, bit, id) in [(&n[0], 5, A), (&n[1], 4, B)] {
        let PendingNotification::OtherSignedNotification(o) =
            PendingNotification::decode(&rec.pending_notification).unwrap()
        else {
            panic!("not an OtherSignedNotification")
        };
        let m = o.tbs_other_notification.value();
        assert!(m.profile_management_operation.is_set(bit));
        assert_eq!(m.profile_management_operation.bits(), vec![bit]);
        assert_eq!(m.iccid, Some(iccid(id)));
        assert_eq!(m.notification_address, ADDR);
        verify_raw(
            pki.options.curve,
            e.public_key(),
            o.tbs_other_notification.raw(),
            &o.euicc_notification_signature,
        )
        .unwrap();
    }

    // The result: metadata, SM-DP+ OID, signature over the data element, queued as A1.
    let md = &s.data.notification_metadata;
    assert_eq!(md.profile_management_operation.bits(), vec![7]);
    assert_eq!(md.notification_address, ADDR);
    assert_eq!(md.iccid, Some(iccid(A)));
    assert_eq!(md.seq_number, n[2].seq_number);
    assert!(md.seq_number > n[1].seq_number);
    assert_eq!(s.data.transaction_id.as_bytes(), &TID);
    assert_eq!(
        s.data.smdp_oid,
        rsp_asn1::prim::Oid::from_dotted(&pki.options.smdp_oid).unwrap()
    );
    verify_raw(
        pki.options.curve,
        e.public_key(),
        s.signed_bytes(),
        &s.euicc_sign_rpr,
    )
    .unwrap();
    assert_eq!(n[2].pending_notification[0], 0xA1);
    let PendingNotification::LoadRpmPackageResultSigned(q) =
        PendingNotification::decode(&n[2].pending_notification).unwrap()
    else {
        panic!("not a LoadRpmPackageResultSigned")
    };
    assert_eq!(q.signed_bytes(), s.signed_bytes());
    // ListNotification shows it with bit 7.
    let listed = e.list_notifications(None);
    assert_eq!(listed.len(), 3);
    assert!(listed[2].profile_management_operation.is_set(7));
}

#[test]
fn rejects_forged_smdp_signature3() {
    let pki = pki();
    let mut e = card(&pki);
    let sig1 = authenticate(&pki, &mut e, &TID, &pki.dpauth.der, &pki.dpauth.key);
    let mut req = package(
        &TID,
        vec![cmd(RpmCommandDetails::Disable { iccid: iccid(A) })],
        &sig1,
        &pki.dpauth.key,
    );
    *req.smdp_signature3.last_mut().unwrap() ^= 1;
    let LoadRpmPackageResult::Signed(s) = e.load_rpm_package(&req).unwrap() else {
        panic!("not signed")
    };
    assert_eq!(s.data.final_result, RpmFinalResult::ErrorCode(2));
    assert_eq!(state_of(&e, A), ProfileStateRec::Enabled);
    assert_eq!(ops(&e), vec![NotificationOp::LoadRpmPackageResult]);
}

#[test]
fn rejects_smdp_signature3_by_another_key() {
    let pki = pki();
    let mut e = card(&pki);
    let sig1 = authenticate(&pki, &mut e, &TID, &pki.dpauth.der, &pki.dpauth.key);
    // Signed by SK.DPpb instead of SK.DPauth.
    let req = package(
        &TID,
        vec![cmd(RpmCommandDetails::Disable { iccid: iccid(A) })],
        &sig1,
        &pki.dppb.key,
    );
    let LoadRpmPackageResult::Signed(s) = e.load_rpm_package(&req).unwrap() else {
        panic!("not signed")
    };
    assert_eq!(s.data.final_result, RpmFinalResult::ErrorCode(2));
}

#[test]
fn rejects_wrong_transaction_id() {
    let pki = pki();
    let mut e = card(&pki);
    let sig1 = authenticate(&pki, &mut e, &TID, &pki.dpauth.der, &pki.dpauth.key);
    let req = package(
        &[0x43; 16],
        vec![cmd(RpmCommandDetails::Disable { iccid: iccid(A) })],
        &sig1,
        &pki.dpauth.key,
    );
    let LoadRpmPackageResult::Signed(s) = e.load_rpm_package(&req).unwrap() else {
        panic!("not signed")
    };
    assert_eq!(s.data.final_result, RpmFinalResult::ErrorCode(5));
    assert_eq!(s.data.transaction_id.as_bytes(), &TID);
    assert_eq!(state_of(&e, A), ProfileStateRec::Enabled);
}

#[test]
fn rejects_without_session() {
    let pki = pki();
    let mut e = card(&pki);
    let req = package(
        &TID,
        vec![cmd(RpmCommandDetails::Disable { iccid: iccid(A) })],
        &[0; 64],
        &pki.dpauth.key,
    );
    // No session at all, then a session without AuthenticateServer.
    for challenge in [false, true] {
        if challenge {
            e.get_euicc_challenge().unwrap();
        }
        match e.load_rpm_package(&req).unwrap() {
            LoadRpmPackageResult::NotSigned {
                transaction_id,
                error_code,
            } => {
                assert_eq!(error_code, 4);
                assert_eq!(transaction_id.as_bytes(), &TID);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(e.state().notifications.is_empty());
    assert_eq!(state_of(&e, A), ProfileStateRec::Enabled);
    // The same over DER.
    let der = e.handle_es10(&req.encode()).unwrap();
    assert_eq!(
        der,
        [
            vec![0xBF, 0x44, 0x17, 0xA1, 0x15, 0x80, 0x10],
            TID.to_vec(),
            vec![0x02, 0x01, 0x04]
        ]
        .concat()
    );
}

#[test]
fn rejects_delete_of_enabled_profile_and_stops() {
    let pki = pki();
    let mut e = card(&pki);
    let s = run(
        &pki,
        &mut e,
        vec![
            cmd(RpmCommandDetails::Delete { iccid: iccid(A) }),
            cmd(RpmCommandDetails::Disable { iccid: iccid(A) }),
        ],
    );
    assert_eq!(results(&s), vec![RpmCommandResultData::Delete(2)]);
    assert_eq!(state_of(&e, A), ProfileStateRec::Enabled);
    assert_eq!(ops(&e), vec![NotificationOp::LoadRpmPackageResult]);
}

#[test]
fn continue_on_failure_runs_the_next_command() {
    let pki = pki();
    let mut e = card(&pki);
    let s = run(
        &pki,
        &mut e,
        vec![
            cont(RpmCommandDetails::Delete { iccid: iccid(A) }),
            cmd(RpmCommandDetails::Disable { iccid: iccid(A) }),
            cmd(RpmCommandDetails::Delete { iccid: iccid(A) }),
        ],
    );
    assert_eq!(
        results(&s),
        vec![
            RpmCommandResultData::Delete(2),
            RpmCommandResultData::Disable(0),
            RpmCommandResultData::Delete(0)
        ]
    );
    assert!(e.state().find_profile(A).is_none());
    assert_eq!(
        ops(&e),
        vec![
            NotificationOp::RpmDisable,
            NotificationOp::RpmDelete,
            NotificationOp::LoadRpmPackageResult
        ]
    );
}

#[test]
fn rejects_delete_with_ppr2_set_by_update_metadata() {
    let pki = pki();
    let mut e = card(&pki);
    let s = run(
        &pki,
        &mut e,
        vec![
            cmd(RpmCommandDetails::UpdateMetadata {
                iccid: iccid(B),
                request: UpdateMetadataRequest {
                    profile_name: Some("Renamed".into()),
                    profile_policy_rules: Some(vec![2]),
                    ..Default::default()
                },
            }),
            cmd(RpmCommandDetails::Delete { iccid: iccid(B) }),
        ],
    );
    assert_eq!(
        results(&s),
        vec![
            RpmCommandResultData::UpdateMetadata(0),
            RpmCommandResultData::Delete(3)
        ]
    );
    let p = e.state().find_profile(B).unwrap();
    assert_eq!(p.profile_name, "Renamed");
    assert_eq!(p.profile_policy_rules, Some(vec![2]));
}

#[test]
fn rejects_disable_with_ppr1() {
    let pki = pki();
    let mut e = card(&pki);
    let s = run(
        &pki,
        &mut e,
        vec![
            cmd(RpmCommandDetails::UpdateMetadata {
                iccid: iccid(A),
                request: UpdateMetadataRequest {
                    profile_policy_rules: Some(vec![1]),
                    ..Default::default()
                },
            }),
            cmd(RpmCommandDetails::Disable { iccid: iccid(A) }),
        ],
    );
    assert_eq!(
        results(&s),
        vec![
            RpmCommandResultData::UpdateMetadata(0),
            RpmCommandResultData::Disable(3)
        ]
    );
    assert_eq!(state_of(&e, A), ProfileStateRec::Enabled);
}

#[test]
fn rejects_another_smdp_oid_as_disallowed_for_rpm() {
    let pki = pki();
    let mut e = card(&pki);
    let (cert, key) = dp_cert_with_oid(&pki, DpRole::Auth, "2.999.77");
    let sig1 = authenticate(&pki, &mut e, &TID, &cert, &key);
    let req = package(
        &TID,
        vec![
            cont(RpmCommandDetails::Enable { iccid: iccid(B) }),
            cont(RpmCommandDetails::Disable { iccid: iccid(A) }),
            cont(RpmCommandDetails::Delete { iccid: iccid(B) }),
            cmd(RpmCommandDetails::Enable {
                iccid: iccid("8944000000000000991"),
            }),
        ],
        &sig1,
        &key,
    );
    let LoadRpmPackageResult::Signed(s) = e.load_rpm_package(&req).unwrap() else {
        panic!("not signed")
    };
    assert_eq!(
        results(&s),
        vec![
            RpmCommandResultData::Enable(9),
            RpmCommandResultData::Disable(10),
            RpmCommandResultData::Delete(3),
            RpmCommandResultData::Enable(1)
        ]
    );
    assert_eq!(
        s.data.smdp_oid,
        rsp_asn1::prim::Oid::from_dotted("2.999.77").unwrap()
    );
    assert_eq!(state_of(&e, A), ProfileStateRec::Enabled);
    assert_eq!(state_of(&e, B), ProfileStateRec::Disabled);
}

#[test]
fn list_profile_info_and_contact_pcmp() {
    let pki = pki();
    let mut e = card(&pki);
    let s = run(
        &pki,
        &mut e,
        vec![
            cmd(RpmCommandDetails::ListProfileInfo {
                criteria: ListProfileInfoCriteria::Iccid(iccid(B)),
                tag_list: Some(vec![0x5A, 0x9F, 0x70]),
            }),
            cmd(RpmCommandDetails::ContactPcmp {
                iccid: iccid(A),
                dpi_rpm: None,
            }),
        ],
    );
    let r = results(&s);
    assert_eq!(r.len(), 2);
    let RpmCommandResultData::ListProfileInfo(raw) = &r[0] else {
        panic!("not a list")
    };
    assert!(r[0].is_ok());
    let ProfileInfoListResponse::Ok(list) = ProfileInfoListResponse::decode(raw).unwrap() else {
        panic!("list error")
    };
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].iccid, Some(iccid(B)));
    assert!(list[0].profile_name.is_none(), "tagList respected");
    assert_eq!(
        r[1],
        RpmCommandResultData::ContactPcmp(vec![0xA0, 0x03, 0x81, 0x01, 0x0D])
    );
    assert!(!r[1].is_ok());
}

#[test]
fn load_rpm_package_over_der() {
    let pki = pki();
    let mut e = card(&pki);
    let sig1 = authenticate(&pki, &mut e, &TID, &pki.dpauth.der, &pki.dpauth.key);
    let req = package(
        &TID,
        vec![cmd(RpmCommandDetails::Disable { iccid: iccid(A) })],
        &sig1,
        &pki.dpauth.key,
    );
    let der = e.handle_es10(&req.encode()).unwrap();
    let LoadRpmPackageResult::Signed(s) = LoadRpmPackageResult::decode(&der).unwrap() else {
        panic!("not signed")
    };
    assert_eq!(results(&s), vec![RpmCommandResultData::Disable(0)]);
    verify_raw(
        pki.options.curve,
        e.public_key(),
        s.signed_bytes(),
        &s.euicc_sign_rpr,
    )
    .unwrap();
}

#[test]
fn v2_only_euicc_refuses_load_rpm_package() {
    let pki = pki();
    let mut e = euicc_for(&pki);
    assert!(!e.is_v3());
    let info2 = e.euicc_info2();
    assert!(!info2.rsp_capability.is_set(rsp_capability::RPM_SUPPORT));
    assert!(info2.highest_svn.is_none());
    assert!(e.euicc_info1().highest_svn.is_none());
    install(&pki, &mut e, &[0x11; 16], A);
    let sig1 = authenticate(&pki, &mut e, &TID, &pki.dpauth.der, &pki.dpauth.key);
    let req = package(
        &TID,
        vec![cmd(RpmCommandDetails::Enable { iccid: iccid(A) })],
        &sig1,
        &pki.dpauth.key,
    );
    assert!(matches!(
        e.load_rpm_package(&req),
        Err(Es10Error::UnknownCommand)
    ));
    assert!(matches!(
        e.handle_es10(&req.encode()),
        Err(Es10Error::UnknownCommand)
    ));
    assert_eq!(state_of(&e, A), ProfileStateRec::Disabled);
}

#[test]
fn v3_euicc_announces_rpm_support() {
    let pki = pki();
    let e = v3_euicc(&pki);
    let info2 = e.euicc_info2();
    assert!(info2.rsp_capability.is_set(rsp_capability::RPM_SUPPORT));
    assert_eq!(info2.highest_svn.as_ref().unwrap().as_bytes(), &[3, 1, 0]);
    assert_eq!(info2.svn.as_bytes(), &[2, 2, 2]);
    let info1 = e.euicc_info1();
    assert_eq!(info1.highest_svn.as_ref().unwrap().as_bytes(), &[3, 1, 0]);
    // Both still encode and decode.
    let d2 = rsp_asn1::euicc_info::EuiccInfo2::decode(&info2.encode()).unwrap();
    assert!(d2.rsp_capability.is_set(rsp_capability::RPM_SUPPORT));
    rsp_asn1::euicc_info::EuiccInfo1::decode(&info1.encode()).unwrap();
}

#[test]
fn old_state_files_without_v3_stay_v2() {
    let pki = pki();
    let e = v3_euicc(&pki);
    let mut v: serde_json::Value = serde_json::to_value(e.state()).unwrap();
    assert_eq!(v["v3"], serde_json::Value::Bool(true));
    v.as_object_mut().unwrap().remove("v3");
    let st: EuiccState = serde_json::from_value(v).unwrap();
    assert!(!st.v3);
}

// ---------------------------------------------------------------------------------------------
// The LPA: Lpa::poll against the in-test SM-DP+ (plain HTTP on 127.0.0.1)

use euicc_sim::lpa::{DownloadOptions, Lpa, PollOptions, Transport};
use std::sync::{Arc, Mutex};

const POLL_ICCID: &str = "8944000000000000033";

/// A v3 eUICC with one profile downloaded (and enabled) from the mini SM-DP+.
async fn polling_setup() -> (Arc<Mutex<MiniDp>>, Euicc, Lpa) {
    let pki = Arc::new(loopback_pki());
    let dp = Arc::new(Mutex::new(MiniDp::new(pki.clone())));
    dp.lock().unwrap().orders.insert(
        "M1".into(),
        Order {
            iccid: POLL_ICCID.into(),
            cc: None,
        },
    );
    let addr = serve(dp.clone(), false).await;
    let mut e = v3_euicc(&pki);
    let lpa = Lpa::new(Transport::Http).unwrap();
    lpa.download(
        &mut e,
        &format!("LPA:1$127.0.0.1:{}$M1", addr.port()),
        &DownloadOptions::default(),
    )
    .await
    .unwrap();
    e.enable_profile(&ProfileIdentifier::Iccid(iccid(POLL_ICCID)));
    lpa.process_notifications(&mut e).await;
    assert!(e.state().notifications.is_empty());
    dp.lock().unwrap().notifications.clear();
    (dp, e, lpa)
}

#[tokio::test]
async fn poll_runs_chained_packages_and_delivers_notifications() {
    let (dp, mut e, lpa) = polling_setup().await;
    {
        let mut d = dp.lock().unwrap();
        d.rpm.push((
            POLL_ICCID.into(),
            RpmPackage(vec![cmd(RpmCommandDetails::Disable {
                iccid: iccid(POLL_ICCID),
            })]),
        ));
        d.rpm.push((
            POLL_ICCID.into(),
            RpmPackage(vec![cmd(RpmCommandDetails::Enable {
                iccid: iccid(POLL_ICCID),
            })]),
        ));
        d.admin_protocols.clear();
    }
    let r = lpa.poll(&mut e, &PollOptions::default()).await.unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(r.packages.len(), 2, "rpmPending makes the LPA poll again");
    assert!(r.packages[0].rpm_pending);
    assert_eq!(r.packages[0].commands[0].command, "disable");
    assert_eq!(r.packages[0].commands[0].code, Some(0));
    assert!(r.packages[1].commands[0].ok);
    assert!(r.packages.iter().all(|p| p.result_sent));
    assert_eq!(r.nothing_pending, Vec::<String>::new());
    assert_eq!(
        e.state().find_profile(POLL_ICCID).unwrap().state,
        ProfileStateRec::Enabled
    );
    assert!(e.state().notifications.is_empty(), "all delivered");
    let d = dp.lock().unwrap();
    // 2 results (A1) + RPM disable + RPM enable notifications.
    assert_eq!(d.notifications.len(), 4);
    assert_eq!(d.notifications.iter().filter(|n| n[0] == 0xA1).count(), 2);
    assert!(
        d.admin_protocols
            .iter()
            .all(|a| a == euicc_sim::http::ADMIN_PROTOCOL_V3),
        "{:?}",
        d.admin_protocols
    );
    let lines = euicc_sim::cli::poll_lines(&r);
    assert_eq!(
        lines,
        vec![
            format!("disable {POLL_ICCID}: ok"),
            format!("enable {POLL_ICCID}: ok")
        ]
    );
}

#[tokio::test]
async fn poll_without_pending_rpm_and_without_consent() {
    let (dp, mut e, lpa) = polling_setup().await;
    let r = lpa.poll(&mut e, &PollOptions::default()).await.unwrap();
    assert!(r.packages.is_empty());
    assert_eq!(r.nothing_pending, vec![POLL_ICCID.to_owned()]);
    assert_eq!(euicc_sim::cli::poll_lines(&r), vec!["no pending RPM"]);
    assert!(e.session_info().is_none());

    dp.lock().unwrap().rpm.push((
        POLL_ICCID.into(),
        RpmPackage(vec![cmd(RpmCommandDetails::Disable {
            iccid: iccid(POLL_ICCID),
        })]),
    ));
    let opts = PollOptions {
        rpm_consent: false,
        ..PollOptions::default()
    };
    let r = lpa.poll(&mut e, &opts).await.unwrap();
    assert_eq!(r.packages.len(), 1);
    assert!(r.packages[0].rejected);
    assert_eq!(r.packages[0].commands[0].code, None);
    assert_eq!(
        e.state().find_profile(POLL_ICCID).unwrap().state,
        ProfileStateRec::Enabled
    );
    let d = dp.lock().unwrap();
    assert_eq!(d.cancels.len(), 1);
    let rsp_asn1::cancel::CancelSessionResponse::Ok(ok) =
        rsp_asn1::cancel::CancelSessionResponse::decode(&d.cancels[0]).unwrap()
    else {
        panic!("cancel error")
    };
    assert_eq!(
        ok.euicc_cancel_session_signed.value().reason,
        rsp_asn1::cancel::CancelSessionReason::EndUserRejection
    );
}

#[tokio::test]
async fn poll_refuses_a_v2_euicc() {
    let pki = pki();
    let mut e = euicc_for(&pki);
    let lpa = Lpa::new(Transport::Http).unwrap();
    let err = lpa
        .poll(&mut e, &PollOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("v2 only"), "{err}");
}

#[test]
fn cli_init_svn_choice() {
    use clap::Parser;
    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        cmd: euicc_sim::cli::EuiccCommand,
    }
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    pki.write_to(&pki_dir).unwrap();
    let p = pki_dir.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut v = vec!["euicc"];
        v.extend_from_slice(args);
        euicc_sim::cli::run(T::try_parse_from(v).unwrap().cmd)
    };
    let v3 = dir.path().join("v3.json");
    run(&["init", "--state", v3.to_str().unwrap(), "--pki", p]).unwrap();
    assert!(EuiccState::load(&v3).unwrap().v3);
    let v2 = dir.path().join("v2.json");
    run(&[
        "init",
        "--state",
        v2.to_str().unwrap(),
        "--pki",
        p,
        "--svn",
        "2.2.2",
    ])
    .unwrap();
    assert!(!EuiccState::load(&v2).unwrap().v3);
    let bad = dir.path().join("bad.json");
    let e = run(&[
        "init",
        "--state",
        bad.to_str().unwrap(),
        "--pki",
        p,
        "--svn",
        "4",
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("--svn"), "{e}");
    // A v3 card without profiles: nothing to poll.
    run(&["poll", "--state", v3.to_str().unwrap(), "--http"]).unwrap();
    let e = run(&["poll", "--state", v2.to_str().unwrap(), "--http"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("v2 only"), "{e}");
}
