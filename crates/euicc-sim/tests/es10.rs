//! In-process eUICC against an in-test SM-DP+ built from rsp-asn1 / rsp-crypto.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use euicc_sim::Euicc;
use euicc_sim::state::{EuiccState, NotificationOp, ProfileStateRec, Provisioning};
use rsp_asn1::Codec;
use rsp_asn1::auth::{AuthenticateErrorCode, AuthenticateServerResponse};
use rsp_asn1::cancel::{CancelSessionReason, CancelSessionRequest, CancelSessionResponse};
use rsp_asn1::common::{Iccid, ProfileIdentifier, TransactionId};
use rsp_asn1::download::{
    BppCommandId, DownloadErrorCode, ErrorReason, FinalResult, PrepareDownloadResponse,
};
use rsp_asn1::es10c::{DeleteResult, DisableResult, EnableResult};
use rsp_asn1::notification::{
    NotificationSearchCriteria, PendingNotification, RetrieveNotificationsListResponse,
};
use rsp_crypto::KeyCustody;
use rsp_crypto::ecdsa::verify_raw;
use rsp_pki::DpRole;

const ADDR: &str = "smdp.example.com";
const TID: [u8; 16] = [0x11; 16];
const ICCID: &str = "8944000000000000017";

fn install(
    pki: &rsp_pki::TestPki,
    euicc: &mut Euicc,
    tid: &[u8],
    iccid: &str,
) -> rsp_asn1::download::ProfileInstallationResult {
    let otpk = authenticate_and_prepare(pki, euicc, tid, ADDR);
    let bpp = make_bpp(pki, tid, &otpk, &pki.eid, iccid, ADDR);
    euicc.load_bound_profile_package(&bpp).unwrap()
}

#[test]
fn full_download_install_and_signed_pir() {
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    let ch = euicc.get_euicc_challenge().unwrap();
    let req = auth_request(&pki, &TID, &ch, ADDR, &pki.dpauth.der, &pki.dpauth.key);
    let AuthenticateServerResponse::Ok(ok) = euicc.authenticate_server(&req, Some(ADDR)) else {
        panic!("auth")
    };
    // euiccSignature1 verifies with the eUICC key over the exact euiccSigned1 bytes.
    let pk = pki.euicc.key.public_key();
    verify_raw(
        pki.options.curve,
        pk,
        ok.euicc_signed1.raw(),
        &ok.euicc_signature1,
    )
    .unwrap();
    assert_eq!(ok.euicc_signed1.value().transaction_id.as_bytes(), &TID);
    let pd = prepare_request(
        &TID,
        &ok.euicc_signature1,
        false,
        None,
        &pki.dppb.der,
        &pki.dppb.key,
        None,
    );
    let PrepareDownloadResponse::Ok(pok) = euicc.prepare_download(&pd) else {
        panic!("pd")
    };
    let mut msg = pok.euicc_signed2.raw().to_vec();
    msg.extend_from_slice(&sig_tlv(&pd.smdp_signature2));
    verify_raw(pki.options.curve, pk, &msg, &pok.euicc_signature2).unwrap();
    let otpk = pok.euicc_signed2.value().euicc_otpk.clone();
    let bpp = make_bpp(&pki, &TID, &otpk, &pki.eid, ICCID, ADDR);
    let pir = euicc.load_bound_profile_package(&bpp).unwrap();
    let data = pir.profile_installation_result_data.value();
    verify_raw(
        pki.options.curve,
        pk,
        pir.profile_installation_result_data.raw(),
        &pir.euicc_sign_pir,
    )
    .unwrap();
    let FinalResult::Success(s) = &data.final_result else {
        panic!("{:?}", data.final_result)
    };
    assert_eq!(
        hex::encode_upper(&s.aid),
        "A0000005591010FFFFFFFF8900001000"
    );
    assert_eq!(data.notification_metadata.notification_address, ADDR);
    assert_eq!(
        data.smdp_oid.as_ref().unwrap().to_dotted(),
        pki.options.smdp_oid
    );
    assert_eq!(data.notification_metadata.iccid.unwrap().to_digits(), ICCID);
    assert!(
        data.notification_metadata
            .profile_management_operation
            .is_set(0)
    );
    // Installed, disabled; PIR pending; session gone.
    let p = &euicc.state().profiles[0];
    assert_eq!(
        (p.iccid.as_str(), p.state),
        (ICCID, ProfileStateRec::Disabled)
    );
    assert_eq!(p.profile_package.len(), 3000);
    assert_eq!(euicc.state().notifications.len(), 1);
    assert!(euicc.session_info().is_none());
    // PIR retrievable by seq number and decodes as a PendingNotification.
    let seq = data.notification_metadata.seq_number;
    let RetrieveNotificationsListResponse::List(l) =
        euicc.retrieve_notifications(Some(&NotificationSearchCriteria::SeqNumber(seq)))
    else {
        panic!()
    };
    assert!(matches!(
        l[0],
        PendingNotification::ProfileInstallationResult(_)
    ));
}

#[test]
fn enable_disable_delete_produce_signed_notifications_with_increasing_seq() {
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    install(&pki, &mut euicc, &TID, ICCID);
    let id = ProfileIdentifier::Iccid(Iccid::from_digits(ICCID).unwrap());
    assert_eq!(euicc.enable_profile(&id), EnableResult::Ok);
    assert_eq!(
        euicc.enable_profile(&id),
        EnableResult::ProfileNotInDisabledState
    );
    assert_eq!(
        euicc.delete_profile(&id),
        DeleteResult::ProfileNotInDisabledState
    );
    assert_eq!(euicc.disable_profile(&id), DisableResult::Ok);
    assert_eq!(euicc.delete_profile(&id), DeleteResult::Ok);
    assert_eq!(euicc.delete_profile(&id), DeleteResult::IccidOrAidNotFound);
    let n = &euicc.state().notifications;
    let ops: Vec<NotificationOp> = n.iter().map(|n| n.operation).collect();
    assert_eq!(
        ops,
        [
            NotificationOp::Install,
            NotificationOp::Enable,
            NotificationOp::Disable,
            NotificationOp::Delete
        ]
    );
    let seqs: Vec<i64> = n.iter().map(|n| n.seq_number).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    for rec in &n[1..] {
        let PendingNotification::OtherSignedNotification(o) =
            PendingNotification::decode(&rec.pending_notification).unwrap()
        else {
            panic!()
        };
        verify_raw(
            pki.options.curve,
            pki.euicc.key.public_key(),
            o.tbs_other_notification.raw(),
            &o.euicc_notification_signature,
        )
        .unwrap();
        assert_eq!(o.tbs_other_notification.value().seq_number, rec.seq_number);
        assert_eq!(o.tbs_other_notification.value().notification_address, ADDR);
    }
    assert_eq!(euicc.list_notifications(None).len(), 4);
    assert_eq!(
        euicc.remove_notification(seqs[0]),
        rsp_asn1::notification::DeleteNotificationStatus::Ok
    );
    assert_eq!(euicc.list_notifications(None).len(), 3);
}

#[test]
fn state_survives_save_and_load() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("euicc.json");
    let mut euicc = euicc_for(&pki);
    euicc.set_path(Some(path.clone()));
    install(&pki, &mut euicc, &TID, ICCID);
    euicc.save_if_dirty().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(ICCID));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "state file must not be group/world readable"
        );
    }
    let mut again = Euicc::open(&path).unwrap();
    assert_eq!(again.state().profiles.len(), 1);
    assert_eq!(again.state().notifications.len(), 1);
    assert_eq!(again.eid(), pki.eid);
    // The counter continues: a new notification gets a higher seq.
    let id = ProfileIdentifier::Iccid(Iccid::from_digits(ICCID).unwrap());
    assert_eq!(again.enable_profile(&id), EnableResult::Ok);
    let seqs: Vec<i64> = again
        .state()
        .notifications
        .iter()
        .map(|n| n.seq_number)
        .collect();
    assert_eq!(seqs, [1, 2]);
    // A second install on the reloaded card works (same key, same trust).
    install(&pki, &mut again, &[0x22; 8], "8944000000000000025");
    assert_eq!(again.state().profiles.len(), 2);
    assert_eq!(
        again.state().profiles[1].isdp_aid,
        "A0000005591010FFFFFFFF8900001001"
    );
}

#[test]
fn create_from_pki_dir_derives_eid_in_eum_range() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    pki.write_to(dir.path()).unwrap();
    let prov = Provisioning::from_pki_dir(dir.path()).unwrap();
    let path = dir.path().join("card.json");
    let st = EuiccState::create(&path, &prov, None).unwrap();
    assert!(
        st.eid.starts_with(&pki.eid[..8]),
        "{} vs {}",
        st.eid,
        pki.eid
    );
    assert!(rsp_pki::eid_check_digits_ok(&st.eid));
    assert!(
        EuiccState::create(&path, &prov, None).is_err(),
        "no overwrite"
    );
    // Explicit EIDs: wrong check digits / outside range are refused.
    let mut bad = pki.eid.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    let e = EuiccState::generate(&prov, Some(&bad)).unwrap_err();
    assert!(e.to_string().contains("check digits"), "{e}");
    let other = rsp_pki::eid_with_check_digits("123456780000000000000000000001").unwrap();
    let e = EuiccState::generate(&prov, Some(&other)).unwrap_err();
    assert!(e.to_string().contains("outside"), "{e}");
    let ok = EuiccState::generate(&prov, Some(&pki.eid)).unwrap();
    assert_eq!(ok.eid, pki.eid);
    // The created card downloads.
    let mut e = Euicc::open(&path).unwrap();
    let otpk = authenticate_and_prepare(&pki, &mut e, &TID, ADDR);
    let bpp = make_bpp(&pki, &TID, &otpk, &st.eid, ICCID, ADDR);
    let pir = e.load_bound_profile_package(&bpp).unwrap();
    assert!(matches!(
        pir.profile_installation_result_data.value().final_result,
        FinalResult::Success(_)
    ));
}

fn auth_error(
    euicc: &mut Euicc,
    req: &rsp_asn1::auth::AuthenticateServerRequest,
) -> AuthenticateErrorCode {
    match euicc.authenticate_server(req, Some(ADDR)) {
        AuthenticateServerResponse::Error(e) => e.authenticate_error_code,
        AuthenticateServerResponse::Ok(_) => panic!("accepted"),
    }
}

#[test]
fn rejects_bad_server_signature1() {
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    let ch = euicc.get_euicc_challenge().unwrap();
    let mut req = auth_request(&pki, &TID, &ch, ADDR, &pki.dpauth.der, &pki.dpauth.key);
    req.server_signature1[10] ^= 0x40;
    assert_eq!(
        auth_error(&mut euicc, &req),
        AuthenticateErrorCode::InvalidSignature
    );
    // Signed by DPpb's key with the DPauth certificate: also invalid.
    let ch = euicc.get_euicc_challenge().unwrap();
    let req = auth_request(&pki, &TID, &ch, ADDR, &pki.dpauth.der, &pki.dppb.key);
    assert_eq!(
        auth_error(&mut euicc, &req),
        AuthenticateErrorCode::InvalidSignature
    );
}

#[test]
fn rejects_dpauth_from_untrusted_ci() {
    let pki = pki();
    let other = common::pki();
    let mut euicc = euicc_for(&pki);
    let ch = euicc.get_euicc_challenge().unwrap();
    let req = auth_request(&pki, &TID, &ch, ADDR, &other.dpauth.der, &other.dpauth.key);
    assert_eq!(
        auth_error(&mut euicc, &req),
        AuthenticateErrorCode::CiPkUnknown
    );
    // A DPpb certificate presented as server certificate: wrong role.
    let ch = euicc.get_euicc_challenge().unwrap();
    let req = auth_request(&pki, &TID, &ch, ADDR, &pki.dppb.der, &pki.dppb.key);
    assert_eq!(
        auth_error(&mut euicc, &req),
        AuthenticateErrorCode::InvalidOid
    );
}

#[test]
fn rejects_wrong_euicc_challenge_and_missing_session_and_address() {
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    let req = auth_request(&pki, &TID, &[9; 16], ADDR, &pki.dpauth.der, &pki.dpauth.key);
    assert_eq!(
        auth_error(&mut euicc, &req),
        AuthenticateErrorCode::NoSessionContext
    );
    euicc.get_euicc_challenge().unwrap();
    assert_eq!(
        auth_error(&mut euicc, &req),
        AuthenticateErrorCode::EuiccChallengeMismatch
    );
    let ch = euicc.get_euicc_challenge().unwrap();
    let req = auth_request(
        &pki,
        &TID,
        &ch,
        "evil.example.com",
        &pki.dpauth.der,
        &pki.dpauth.key,
    );
    assert_eq!(
        auth_error(&mut euicc, &req),
        AuthenticateErrorCode::UndefinedError
    );
    // Wrong euiccCiPKIdToBeUsed.
    let ch = euicc.get_euicc_challenge().unwrap();
    let mut req = auth_request(&pki, &TID, &ch, ADDR, &pki.dpauth.der, &pki.dpauth.key);
    req.euicc_ci_pkid_to_be_used = rsp_asn1::common::SubjectKeyIdentifier::new(&[1; 20]).unwrap();
    assert_eq!(
        auth_error(&mut euicc, &req),
        AuthenticateErrorCode::CiPkUnknown
    );
}

fn authenticated(pki: &rsp_pki::TestPki, euicc: &mut Euicc) -> Vec<u8> {
    let ch = euicc.get_euicc_challenge().unwrap();
    let req = auth_request(pki, &TID, &ch, ADDR, &pki.dpauth.der, &pki.dpauth.key);
    let AuthenticateServerResponse::Ok(ok) = euicc.authenticate_server(&req, Some(ADDR)) else {
        panic!()
    };
    ok.euicc_signature1
}

fn pd_error(
    euicc: &mut Euicc,
    req: &rsp_asn1::download::PrepareDownloadRequest,
) -> DownloadErrorCode {
    match euicc.prepare_download(req) {
        PrepareDownloadResponse::Error(e) => e.download_error_code,
        PrepareDownloadResponse::Ok(_) => panic!("accepted"),
    }
}

#[test]
fn rejects_dppb_with_different_smdp_oid() {
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    let sig1 = authenticated(&pki, &mut euicc);
    let (der, key) = dp_cert_with_oid(&pki, DpRole::Pb, "2.999.77");
    let req = prepare_request(&TID, &sig1, false, None, &der, &key, None);
    assert_eq!(
        pd_error(&mut euicc, &req),
        DownloadErrorCode::InvalidCertificate
    );
}

#[test]
fn rejects_bad_smdp_signature2_wrong_tid_and_missing_cc() {
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    let sig1 = authenticated(&pki, &mut euicc);
    // Signed over smdpSigned2 only (without euiccSignature1): invalid.
    let mut req = prepare_request(&TID, &sig1, false, None, &pki.dppb.der, &pki.dppb.key, None);
    req.smdp_signature2 = pki.dppb.key.sign(req.smdp_signed2.raw()).unwrap().to_vec();
    assert_eq!(
        pd_error(&mut euicc, &req),
        DownloadErrorCode::InvalidSignature
    );
    let req = prepare_request(
        &[0x99; 16],
        &sig1,
        false,
        None,
        &pki.dppb.der,
        &pki.dppb.key,
        None,
    );
    assert_eq!(
        pd_error(&mut euicc, &req),
        DownloadErrorCode::InvalidTransactionId
    );
    let req = prepare_request(&TID, &sig1, true, None, &pki.dppb.der, &pki.dppb.key, None);
    assert_eq!(
        pd_error(&mut euicc, &req),
        DownloadErrorCode::UndefinedError
    );
    // With hashCc it goes through and hashCc is in euiccSigned2.
    let h = euicc_sim::util::hash_confirmation_code("1234", &TID);
    let req = prepare_request(
        &TID,
        &sig1,
        true,
        Some(h),
        &pki.dppb.der,
        &pki.dppb.key,
        None,
    );
    let PrepareDownloadResponse::Ok(ok) = euicc.prepare_download(&req) else {
        panic!()
    };
    assert_eq!(
        ok.euicc_signed2
            .value()
            .hash_cc
            .as_ref()
            .unwrap()
            .as_bytes(),
        &h
    );
    // No session at all.
    let mut fresh = euicc_for(&pki);
    assert_eq!(
        pd_error(&mut fresh, &req),
        DownloadErrorCode::NoSessionContext
    );
}

#[test]
fn rejects_tampered_bpp_mac_with_scp03t_security_error() {
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    let otpk = authenticate_and_prepare(&pki, &mut euicc, &TID, ADDR);
    let mut bpp = make_bpp(&pki, &TID, &otpk, &pki.eid, ICCID, ADDR);
    let n = bpp.len();
    bpp[n - 1] ^= 0x01; // last byte of the last 86 segment: its MAC
    let pir = euicc.load_bound_profile_package(&bpp).unwrap();
    let data = pir.profile_installation_result_data.value();
    let FinalResult::Error(e) = &data.final_result else {
        panic!("installed")
    };
    assert_eq!(e.bpp_command_id, BppCommandId::LoadProfileElements);
    assert_eq!(e.error_reason, ErrorReason::Scp03tSecurityError);
    verify_raw(
        pki.options.curve,
        pki.euicc.key.public_key(),
        pir.profile_installation_result_data.raw(),
        &pir.euicc_sign_pir,
    )
    .unwrap();
    assert!(euicc.state().profiles.is_empty());
    assert_eq!(
        euicc.state().notifications.len(),
        1,
        "failed PIR is queued too"
    );
    // Session is gone: a second load is refused at transport level.
    assert!(euicc.load_bound_profile_package(&bpp).is_err());
}

#[test]
fn rejects_bpp_with_bad_smdp_sign_and_other_transaction() {
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    let otpk = authenticate_and_prepare(&pki, &mut euicc, &TID, ADDR);
    // BPP bound to another transaction id.
    let bpp = make_bpp(&pki, &[0x33; 16], &otpk, &pki.eid, ICCID, ADDR);
    let pir = euicc.load_bound_profile_package(&bpp).unwrap();
    let FinalResult::Error(e) = &pir.profile_installation_result_data.value().final_result else {
        panic!()
    };
    assert_eq!(e.bpp_command_id, BppCommandId::InitialiseSecureChannel);
    assert_eq!(e.error_reason, ErrorReason::InvalidTransactionId);
}

#[test]
fn rejects_iccid_already_installed() {
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    install(&pki, &mut euicc, &TID, ICCID);
    let pir = install(&pki, &mut euicc, &[0x44; 16], ICCID);
    let FinalResult::Error(e) = &pir.profile_installation_result_data.value().final_result else {
        panic!()
    };
    assert_eq!(
        e.error_reason,
        ErrorReason::InstallFailedDueToIccidAlreadyExistsOnEuicc
    );
    assert_eq!(euicc.state().profiles.len(), 1);
}

#[test]
fn cancel_session_signs_and_retains_otk_for_postponed() {
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    let otpk = authenticate_and_prepare(&pki, &mut euicc, &TID, ADDR);
    let bad = euicc.cancel_session(&CancelSessionRequest {
        transaction_id: TransactionId::new(&[1]).unwrap(),
        reason: CancelSessionReason::Postponed,
    });
    assert!(matches!(bad, CancelSessionResponse::Error(_)));
    let r = euicc.cancel_session(&CancelSessionRequest {
        transaction_id: TransactionId::new(&TID).unwrap(),
        reason: CancelSessionReason::Postponed,
    });
    let CancelSessionResponse::Ok(ok) = r else {
        panic!()
    };
    let signed = ok.euicc_cancel_session_signed.value();
    assert_eq!(signed.smdp_oid.to_dotted(), pki.options.smdp_oid);
    assert_eq!(signed.reason, CancelSessionReason::Postponed);
    verify_raw(
        pki.options.curve,
        pki.euicc.key.public_key(),
        ok.euicc_cancel_session_signed.raw(),
        &ok.euicc_cancel_session_signature,
    )
    .unwrap();
    assert!(euicc.session_info().is_none());
    assert!(euicc.has_retained_otk());
    // Retry: the SM-DP+ names the otPK it bound the BPP to; the card re-uses it.
    let tid2 = [0x66; 16];
    let ch = euicc.get_euicc_challenge().unwrap();
    let req = auth_request(&pki, &tid2, &ch, ADDR, &pki.dpauth.der, &pki.dpauth.key);
    let AuthenticateServerResponse::Ok(ok) = euicc.authenticate_server(&req, Some(ADDR)) else {
        panic!()
    };
    let pd = prepare_request(
        &tid2,
        &ok.euicc_signature1,
        false,
        None,
        &pki.dppb.der,
        &pki.dppb.key,
        Some(otpk.clone()),
    );
    let PrepareDownloadResponse::Ok(pok) = euicc.prepare_download(&pd) else {
        panic!()
    };
    assert_eq!(pok.euicc_signed2.value().euicc_otpk, otpk);
    // The BPP for the re-used key installs.
    let bpp = make_bpp(&pki, &tid2, &otpk, &pki.eid, ICCID, ADDR);
    let pir = euicc.load_bound_profile_package(&bpp).unwrap();
    assert!(matches!(
        pir.profile_installation_result_data.value().final_result,
        FinalResult::Success(_)
    ));
}

#[test]
fn quirk_sends_a_different_otpk_on_retry() {
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    let otpk = authenticate_and_prepare(&pki, &mut euicc, &TID, ADDR);
    euicc.cancel_session(&CancelSessionRequest {
        transaction_id: TransactionId::new(&TID).unwrap(),
        reason: CancelSessionReason::Timeout,
    });
    euicc.quirks.ignore_bpp_euicc_otpk = true;
    let ch = euicc.get_euicc_challenge().unwrap();
    let req = auth_request(&pki, &TID, &ch, ADDR, &pki.dpauth.der, &pki.dpauth.key);
    let AuthenticateServerResponse::Ok(ok) = euicc.authenticate_server(&req, Some(ADDR)) else {
        panic!()
    };
    let pd = prepare_request(
        &TID,
        &ok.euicc_signature1,
        false,
        None,
        &pki.dppb.der,
        &pki.dppb.key,
        Some(otpk.clone()),
    );
    let PrepareDownloadResponse::Ok(pok) = euicc.prepare_download(&pd) else {
        panic!()
    };
    assert_ne!(pok.euicc_signed2.value().euicc_otpk, otpk);
}

#[test]
fn es10_der_dispatch_covers_lpac_surface() {
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    install(&pki, &mut euicc, &TID, ICCID);
    let eid = euicc
        .handle_es10(&hex::decode("BF3E035C015A").unwrap())
        .unwrap();
    assert_eq!(&eid[..5], &[0xBF, 0x3E, 0x12, 0x5A, 0x10]);
    let list = euicc.handle_es10(&hex::decode("BF2D00").unwrap()).unwrap();
    let rsp_asn1::es10c::ProfileInfoListResponse::Ok(l) =
        rsp_asn1::es10c::ProfileInfoListResponse::decode(&list).unwrap()
    else {
        panic!()
    };
    assert_eq!(l[0].iccid.unwrap().to_digits(), ICCID);
    // Tag list: only the ICCID.
    let list = euicc
        .handle_es10(&hex::decode("BF2D035C015A").unwrap())
        .unwrap();
    let rsp_asn1::es10c::ProfileInfoListResponse::Ok(l) =
        rsp_asn1::es10c::ProfileInfoListResponse::decode(&list).unwrap()
    else {
        panic!()
    };
    assert!(l[0].iccid.is_some() && l[0].profile_name.is_none() && l[0].isdp_aid.is_none());
    for cmd in ["BF2000", "BF2200", "BF3C00", "BF2800", "BF4300", "BF2E00"] {
        let r = euicc.handle_es10(&hex::decode(cmd).unwrap()).unwrap();
        assert_eq!(r[..2], hex::decode(&cmd[..4]).unwrap()[..], "{cmd}");
    }
    // RetrieveNotificationsList by seq as lpac sends it, then remove it.
    let r = euicc
        .handle_es10(&hex::decode("BF2B05A003800101").unwrap())
        .unwrap();
    assert_eq!(&r[..2], &[0xBF, 0x2B]);
    let r = euicc
        .handle_es10(&hex::decode("BF3003800101").unwrap())
        .unwrap();
    assert_eq!(r, hex::decode("BF3003800100").unwrap());
    assert_eq!(
        euicc.handle_es10(&[0xBF, 0x7F, 0x00]),
        Err(euicc_sim::Es10Error::UnknownCommand)
    );
    assert_eq!(
        euicc.handle_es10(&[0xBF, 0x2D, 0x05]),
        Err(euicc_sim::Es10Error::InvalidData)
    );
    // Enable via DER (lpac form with refreshFlag).
    let mut cmd = vec![0xBF, 0x31, 0x11, 0xA0, 0x0C, 0x5A, 0x0A];
    cmd.extend_from_slice(&Iccid::from_digits(ICCID).unwrap().0);
    cmd.extend_from_slice(&[0x81, 0x01, 0x00]);
    assert_eq!(
        euicc.handle_es10(&cmd).unwrap(),
        hex::decode("BF3103800100").unwrap()
    );
}
