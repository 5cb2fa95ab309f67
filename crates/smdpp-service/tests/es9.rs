//! End-to-end ES9+ tests against the real server over HTTPS, on SQLite and (when
//! `SMDPP_TEST_PG_URL` is set) PostgreSQL. Every negative test is named `rejects_*`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;

use common::*;
use rsp_crypto::{Curve, KeyCustody, SoftwareKey};
use rsp_pki::TestPki;
use smdpp_core::status;
use smdpp_store::ProfileState;

struct Env {
    pki: TestPki,
    server: Server,
}

async fn env(dir: &Path, db: &Db, curve: Curve) -> Env {
    let pki = make_pki(curve);
    let pki_dir = dir.join("pki");
    pki.write_to(&pki_dir).unwrap();
    let mut s = settings(&dir.join("data"), pki_dir, db);
    if curve != Curve::NistP256 {
        // TLS is P-256 only: the DPtls of a separate P-256 PKI.
        let tls = make_pki(Curve::NistP256);
        let tls_dir = dir.join("tls");
        tls.write_to(&tls_dir).unwrap();
        s.dptls_cert = Some(tls_dir.join("dptls.pem"));
        s.dptls_key = Some(tls_dir.join("dptls.key"));
    }
    let server = Server::start(s).await;
    Env { pki, server }
}

fn smdp_oid(e: &Env) -> String {
    e.pki.options.smdp_oid.clone()
}

/// Full download: initiate, authenticate, getBPP, open the BPP, PIR.
async fn download(
    e: &Env,
    card: &Card,
    upp: &[u8],
    mid: &str,
    cc: Option<&str>,
) -> (Authenticated, Vec<u8>) {
    let a = authenticate(&e.server, card, Some(mid)).await.unwrap();
    let otk = SoftwareKey::generate(card.curve).unwrap();
    let bpp = get_bpp(&e.server, card, &a, &otk, cc, false).await.unwrap();
    assert_eq!(bpp.transaction_id.to_hex(), a.tid_hex);
    let opened = card.open(
        &bpp.bound_profile_package,
        &a.auth.smdp_certificate,
        &otk,
        &a.tid,
    );
    assert_eq!(opened.upp.as_slice(), upp, "UPP round-trips byte for byte");
    (a, bpp.bound_profile_package)
}

async fn full_download(dir: &Path, db: &Db, curve: Curve) {
    let e = env(dir, db, curve).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    let (a, _) = download(&e, &card, &upp, &mid, None).await;
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Downloaded);
    assert_eq!(p.eid.as_deref(), Some(card.eid.as_str()));
    notify(&e.server, &card.pir(&a.tid, 1, &iccid, &smdp_oid(&e), true))
        .await
        .unwrap();
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Installed
    );
    // Replayed PIR: acknowledged, nothing changes.
    notify(
        &e.server,
        &card.pir(&a.tid, 1, &iccid, &smdp_oid(&e), false),
    )
    .await
    .unwrap();
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Installed
    );
    e.server.stop().await;
}

async fn full_download_p256(dir: &Path, db: &Db) {
    full_download(dir, db, Curve::NistP256).await;
}

async fn full_download_brainpool(dir: &Path, db: &Db) {
    full_download(dir, db, Curve::BrainpoolP256r1).await;
}

async fn failed_install_goes_to_error(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    let (a, _) = download(&e, &card, &upp, &mid, None).await;
    notify(
        &e.server,
        &card.pir(&a.tid, 1, &iccid, &smdp_oid(&e), false),
    )
    .await
    .unwrap();
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Error);
    assert!(
        p.error_cause
            .unwrap()
            .contains("bppCommandId=5 errorReason=12")
    );
    e.server.stop().await;
}

async fn cc_right(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, Some("CC-TEST-1"), Some("1234")).await;
    let card = Card::from_pki(&e.pki);
    let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    let signed2 = rsp_asn1::download::SmdpSigned2::decode(&a.auth.smdp_signed2).unwrap();
    assert!(signed2.cc_required_flag);
    let otk = SoftwareKey::generate(card.curve).unwrap();
    let bpp = get_bpp(&e.server, &card, &a, &otk, Some("1234"), false)
        .await
        .unwrap();
    card.open(
        &bpp.bound_profile_package,
        &a.auth.smdp_certificate,
        &otk,
        &a.tid,
    );
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Downloaded
    );
    e.server.stop().await;
}

use rsp_asn1::Codec;

async fn rejects_wrong_cc_then_limit(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, Some("1234")).await;
    let card = Card::from_pki(&e.pki);
    // Missing CC: 8.2.7/2.2, not counted.
    let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    let otk = SoftwareKey::generate(card.curve).unwrap();
    assert_code(
        get_bpp(&e.server, &card, &a, &otk, None, false).await,
        &status::CONFIRMATION_CODE_MISSING,
    );
    assert_eq!(e.server.profile(&iccid).await.cc_attempts, 0);
    // Default limit 3: three wrong codes are refused, the fourth terminates the order.
    for n in 1..=3 {
        let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
        let otk = SoftwareKey::generate(card.curve).unwrap();
        assert_code(
            get_bpp(&e.server, &card, &a, &otk, Some("9999"), false).await,
            &status::CONFIRMATION_CODE_REFUSED,
        );
        let p = e.server.profile(&iccid).await;
        assert_eq!(p.cc_attempts, n);
        assert_eq!(p.state, ProfileState::Released);
        // The session is spent: a retry in it is refused.
        assert_code(
            get_bpp(&e.server, &card, &a, &otk, Some("1234"), false).await,
            &status::TRANSACTION_ID_UNKNOWN,
        );
    }
    let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    let otk = SoftwareKey::generate(card.curve).unwrap();
    assert_code(
        get_bpp(&e.server, &card, &a, &otk, Some("0000"), false).await,
        &status::CONFIRMATION_CODE_RETRIES_EXCEEDED,
    );
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Error);
    // The terminated order can no longer be downloaded.
    assert_code(
        authenticate(&e.server, &card, Some(&mid)).await.map(|_| ()),
        &status::PROFILE_NOT_RELEASED,
    );
    e.server.stop().await;
}

async fn rejects_download_attempts_exceeded(dir: &Path, db: &Db) {
    let e = {
        let pki = make_pki(Curve::NistP256);
        let pki_dir = dir.join("pki");
        pki.write_to(&pki_dir).unwrap();
        let mut s = settings(&dir.join("data"), pki_dir, db);
        s.limits.download_attempt_limit = 2;
        Env {
            server: Server::start(s).await,
            pki,
        }
    };
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    assert_code(
        authenticate(&e.server, &card, Some(&mid)).await.map(|_| ()),
        &status::DOWNLOAD_ORDER_RETRIES_EXCEEDED,
    );
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Error);
    assert_eq!(p.download_attempts, 2);
    e.server.stop().await;
}

async fn rejects_unknown_matching_id(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (_mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    assert_code(
        authenticate(&e.server, &card, Some("NO-SUCH-ID"))
            .await
            .map(|_| ()),
        &status::MATCHING_ID_REFUSED,
    );
    // Empty MatchingID and no order bound to this EID: refused too.
    assert_code(
        authenticate(&e.server, &card, None).await.map(|_| ()),
        &status::MATCHING_ID_REFUSED,
    );
    assert_eq!(e.server.profile(&iccid).await.state, ProfileState::Released);
    e.server.stop().await;
}

async fn default_smdp_flow_by_eid(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    // First attempt binds the EID (session postponed), then the empty-MatchingID flow finds it.
    let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    cancel(
        &e.server,
        &a.tid_hex,
        &card.cancel(&a.tid, &smdp_oid(&e), 1),
    )
    .await
    .unwrap();
    let a = authenticate(&e.server, &card, None).await.unwrap();
    let otk = SoftwareKey::generate(card.curve).unwrap();
    get_bpp(&e.server, &card, &a, &otk, None, false)
        .await
        .unwrap();
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Downloaded
    );
    e.server.stop().await;
}

async fn rejects_order_bound_to_other_eid(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    let other_eid = rsp_pki::eid_with_check_digits("890490320000000000000000000777").unwrap();
    let other = Card::sibling(&e.pki, &other_eid);
    assert_code(
        authenticate(&e.server, &other, Some(&mid))
            .await
            .map(|_| ()),
        &status::EID_REFUSED,
    );
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.eid.as_deref(), Some(card.eid.as_str()));
    assert_eq!(p.state, ProfileState::Released);
    e.server.stop().await;
}

async fn rejects_untrusted_ci(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, _) = e.server.add(&upp, None, None).await;
    let foreign = make_pki(Curve::NistP256);
    // Only a foreign CI offered: InitiateAuthentication refuses (8.8.2/3.1).
    let card = Card::from_pki(&foreign);
    assert_code(
        initiate(&e.server, &card).await,
        &status::SECURITY_CONFIGURATION_UNSUPPORTED,
    );
    // Trusted CI claimed, but the EUM chains to the foreign CI: 8.11.1/3.9.
    let mut card = Card::from_pki(&foreign);
    card.sign_cis = vec![ski(&e.pki.ci.der)];
    card.verify_cis = vec![ski(&e.pki.ci.der)];
    assert_code(
        authenticate(&e.server, &card, Some(&mid)).await.map(|_| ()),
        &status::CI_PUBLIC_KEY_UNKNOWN,
    );
    // DPauth only under a CI the eUICC cannot verify: 8.8.4/3.7.
    let mut card = Card::from_pki(&e.pki);
    card.verify_cis = vec![ski(&foreign.ci.der)];
    assert_code(
        initiate(&e.server, &card).await,
        &status::SMDP_CERTIFICATE_UNAVAILABLE,
    );
    e.server.stop().await;
}

async fn rejects_eid_outside_eum_range(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, _) = e.server.add(&upp, None, None).await;
    let eid = rsp_pki::eid_with_check_digits("890490330000000000000000000001").unwrap();
    let card = Card::sibling(&e.pki, &eid);
    assert_code(
        authenticate(&e.server, &card, Some(&mid)).await.map(|_| ()),
        &status::EUICC_CERTIFICATE_INVALID,
    );
    e.server.stop().await;
}

async fn rejects_expired_euicc_cert(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, _) = e.server.add(&upp, None, None).await;
    let mut card = Card::from_pki(&e.pki);
    let eum = e.pki.eum.cert().unwrap();
    let mut b =
        rsp_pki::euicc_template(&eum, card.curve, card.key.public_key(), &card.eid).unwrap();
    b.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    b.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    card.euicc_der = b.sign(&e.pki.eum.key).unwrap();
    assert_code(
        authenticate(&e.server, &card, Some(&mid)).await.map(|_| ()),
        &status::EUICC_CERTIFICATE_EXPIRED,
    );
    e.server.stop().await;
}

async fn rejects_forged_signatures(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    let init = initiate(&e.server, &card).await.unwrap();
    assert_code(
        authenticate_with(&e.server, &card, &init, Some(&mid), true)
            .await
            .map(|_| ()),
        &status::EUICC_VERIFICATION_FAILED,
    );
    // Wrong serverChallenge, correctly signed.
    let init = initiate(&e.server, &card).await.unwrap();
    let asr = card.authenticate_server(&init, Some(&mid), false, Some([0x42; 16]));
    let r: Result<smdpp_core::es9_json::AuthenticateClientResponse, _> = e
        .server
        .post(
            "authenticateClient",
            serde_json::json!({"transactionId": init.transaction_id.to_hex(), "authenticateServerResponse": b64(&asr)}),
        )
        .await;
    assert_code(r, &status::EUICC_VERIFICATION_FAILED);
    // Forged euiccSignature2.
    let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    let otk = SoftwareKey::generate(card.curve).unwrap();
    assert_code(
        get_bpp(&e.server, &card, &a, &otk, None, true).await,
        &status::EUICC_VERIFICATION_FAILED,
    );
    // The session survives a forged call: the genuine one still works.
    get_bpp(&e.server, &card, &a, &otk, None, false)
        .await
        .unwrap();
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Downloaded
    );
    e.server.stop().await;
}

async fn rejects_unknown_and_replayed_transactions(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    // Unknown transactionId.
    let init = initiate(&e.server, &card).await.unwrap();
    let asr = card.authenticate_server(&init, Some(&mid), false, None);
    let r: Result<smdpp_core::es9_json::AuthenticateClientResponse, _> = e
        .server
        .post(
            "authenticateClient",
            serde_json::json!({"transactionId": "00112233445566778899AABBCCDDEEFF", "authenticateServerResponse": b64(&asr)}),
        )
        .await;
    assert_code(r, &status::TRANSACTION_ID_UNKNOWN);
    // Replays: authenticateClient twice, getBPP twice with another key after delivery.
    let (auth, sig1) = authenticate_with(&e.server, &card, &init, Some(&mid), false)
        .await
        .unwrap();
    assert_code(
        authenticate_with(&e.server, &card, &init, Some(&mid), false)
            .await
            .map(|_| ()),
        &status::TRANSACTION_ID_UNKNOWN,
    );
    let a = Authenticated {
        tid_hex: init.transaction_id.to_hex(),
        tid: init.transaction_id.as_bytes().to_vec(),
        init,
        auth,
        sig1_tlv: sig1,
    };
    let otk = SoftwareKey::generate(card.curve).unwrap();
    let first = get_bpp(&e.server, &card, &a, &otk, None, false)
        .await
        .unwrap();
    // The identical request again (lost response): the same BPP.
    let again = get_bpp(&e.server, &card, &a, &otk, None, false)
        .await
        .unwrap();
    assert_eq!(first.bound_profile_package, again.bound_profile_package);
    let otk2 = SoftwareKey::generate(card.curve).unwrap();
    assert_code(
        get_bpp(&e.server, &card, &a, &otk2, None, false).await,
        &status::TRANSACTION_ID_UNKNOWN,
    );
    // PIR for an unknown transaction: acknowledged, nothing recorded.
    notify(
        &e.server,
        &card.pir(&[9; 16], 7, &iccid, &smdp_oid(&e), true),
    )
    .await
    .unwrap();
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Downloaded
    );
    assert!(
        e.server
            .store()
            .list_notifications(&card.eid)
            .await
            .unwrap()
            .is_empty()
    );
    e.server.stop().await;
}

async fn rejects_calls_out_of_order(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (_mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    // getBoundProfilePackage right after initiateAuthentication.
    let init = initiate(&e.server, &card).await.unwrap();
    let tid = init.transaction_id.as_bytes().to_vec();
    let pdr = card.prepare_download_unchecked(&tid, &[4; 65]);
    let r: Result<smdpp_core::es9_json::GetBoundProfilePackageResponse, _> = e
        .server
        .post(
            "getBoundProfilePackage",
            serde_json::json!({"transactionId": init.transaction_id.to_hex(), "prepareDownloadResponse": b64(&pdr)}),
        )
        .await;
    assert_code(r, &status::TRANSACTION_ID_UNKNOWN);
    // cancelSession before authenticateClient.
    assert_code(
        cancel(
            &e.server,
            &init.transaction_id.to_hex(),
            &card.cancel(&tid, &smdp_oid(&e), 0),
        )
        .await,
        &status::TRANSACTION_ID_UNKNOWN,
    );
    assert_eq!(e.server.profile(&iccid).await.state, ProfileState::Released);
    e.server.stop().await;
}

async fn cancel_reasons(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let card = Card::from_pki(&e.pki);
    for (i, (reason, want)) in [
        (1, ProfileState::Released),
        (2, ProfileState::Released),
        (0, ProfileState::Error),
        (3, ProfileState::Error),
        (4, ProfileState::Error),
        (5, ProfileState::Error),
        (127, ProfileState::Error),
    ]
    .into_iter()
    .enumerate()
    {
        let iccid = format!("899990000000000{:04}", 100 + i);
        let upp = smdpp_service::upp::demo_upp(&iccid).unwrap();
        let (mid, iccid) = e.server.add(&upp, None, None).await;
        let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
        // Wrong SM-DP+ OID first: 8.8/3.10, nothing changes.
        assert_code(
            cancel(
                &e.server,
                &a.tid_hex,
                &card.cancel(&a.tid, "2.999.99", reason),
            )
            .await,
            &status::SMDP_OID_INVALID,
        );
        cancel(
            &e.server,
            &a.tid_hex,
            &card.cancel(&a.tid, &smdp_oid(&e), reason),
        )
        .await
        .unwrap();
        let p = e.server.profile(&iccid).await;
        assert_eq!(p.state, want, "reason {reason}");
        if want == ProfileState::Error {
            assert!(p.error_cause.unwrap().contains(&format!("({reason})")));
        }
        // A cancel after the session ended is refused and changes nothing.
        assert_code(
            cancel(
                &e.server,
                &a.tid_hex,
                &card.cancel(&a.tid, &smdp_oid(&e), 0),
            )
            .await,
            &status::TRANSACTION_ID_UNKNOWN,
        );
        assert_eq!(e.server.profile(&iccid).await.state, want);
    }
    e.server.stop().await;
}

async fn bpp_reuse_and_rebind(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    let otk = SoftwareKey::generate(card.curve).unwrap();
    let a1 = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    let b1 = get_bpp(&e.server, &card, &a1, &otk, None, false)
        .await
        .unwrap();
    // Retry (installation interrupted): the server announces the bound otPK.
    let a2 = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    let s2 = rsp_asn1::download::SmdpSigned2::decode(&a2.auth.smdp_signed2).unwrap();
    assert_eq!(s2.bpp_euicc_otpk.as_deref(), Some(otk.public_key()));
    let b2 = get_bpp(&e.server, &card, &a2, &otk, None, false)
        .await
        .unwrap();
    assert_ne!(
        b1.bound_profile_package, b2.bound_profile_package,
        "new ISCR signature"
    );
    let o1 = rsp_asn1::bpp::BoundProfilePackage::decode(&b1.bound_profile_package).unwrap();
    let o2 = rsp_asn1::bpp::BoundProfilePackage::decode(&b2.bound_profile_package).unwrap();
    assert_eq!(o1.sequence_of_86, o2.sequence_of_86, "segments re-used");
    assert_eq!(
        o1.initialise_secure_channel.smdp_otpk,
        o2.initialise_secure_channel.smdp_otpk
    );
    let opened = card.open(
        &b2.bound_profile_package,
        &a2.auth.smdp_certificate,
        &otk,
        &a2.tid,
    );
    assert_eq!(opened.upp.as_slice(), upp.as_slice());
    // A new otPK: re-bound (default policy), and the new BPP opens with the new key.
    let a3 = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    let otk3 = SoftwareKey::generate(card.curve).unwrap();
    let b3 = get_bpp(&e.server, &card, &a3, &otk3, None, false)
        .await
        .unwrap();
    let o3 = rsp_asn1::bpp::BoundProfilePackage::decode(&b3.bound_profile_package).unwrap();
    assert_ne!(
        o3.initialise_secure_channel.smdp_otpk,
        o1.initialise_secure_channel.smdp_otpk
    );
    card.open(
        &b3.bound_profile_package,
        &a3.auth.smdp_certificate,
        &otk3,
        &a3.tid,
    );
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Downloaded
    );
    e.server.stop().await;
}

async fn rejects_new_otpk_when_rebind_disabled(dir: &Path, db: &Db) {
    let pki = make_pki(Curve::NistP256);
    let pki_dir = dir.join("pki");
    pki.write_to(&pki_dir).unwrap();
    let mut s = settings(&dir.join("data"), pki_dir, db);
    s.limits.rebind_on_new_otpk = false;
    let e = Env {
        server: Server::start(s).await,
        pki,
    };
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    let a1 = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    get_bpp(
        &e.server,
        &card,
        &a1,
        &SoftwareKey::generate(card.curve).unwrap(),
        None,
        false,
    )
    .await
    .unwrap();
    let a2 = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    assert_code(
        get_bpp(
            &e.server,
            &card,
            &a2,
            &SoftwareKey::generate(card.curve).unwrap(),
            None,
            false,
        )
        .await,
        &status::BPP_UNAVAILABLE_FOR_NEW_BINDING,
    );
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Downloaded
    );
    e.server.stop().await;
}

async fn restart_between_authenticate_and_bpp(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    let settings = e.server.stop().await;
    let server = Server::start(settings).await;
    let otk = SoftwareKey::generate(card.curve).unwrap();
    let bpp = get_bpp(&server, &card, &a, &otk, None, false)
        .await
        .unwrap();
    let opened = card.open(
        &bpp.bound_profile_package,
        &a.auth.smdp_certificate,
        &otk,
        &a.tid,
    );
    assert_eq!(opened.upp.as_slice(), upp.as_slice());
    assert_eq!(server.profile(&iccid).await.state, ProfileState::Downloaded);
    server.stop().await;
}

async fn other_notifications_recorded_once(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let card = Card::from_pki(&e.pki);
    let iccid = "89000123456789012341";
    notify(&e.server, &card.other_notification(5, iccid, 3, false))
        .await
        .unwrap();
    notify(&e.server, &card.other_notification(5, iccid, 3, false))
        .await
        .unwrap();
    // Forged signature: acknowledged, not recorded.
    notify(&e.server, &card.other_notification(6, iccid, 1, true))
        .await
        .unwrap();
    let list = e
        .server
        .store()
        .list_notifications(&card.eid)
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].event, "delete");
    assert_eq!(list[0].seq_number, 5);
    e.server.stop().await;
}

async fn rejects_initiate_checks(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let mut card = Card::from_pki(&e.pki);
    let r: Result<smdpp_core::es9_json::InitiateAuthenticationResponse, _> = e
        .server
        .post(
            "initiateAuthentication",
            serde_json::json!({"euiccChallenge": b64(&[1; 16]), "euiccInfo1": b64(&card.info1()), "smdpAddress": "other.example.com"}),
        )
        .await;
    assert_code(r, &status::SMDP_ADDRESS_REFUSED);
    card.svn = [3, 0, 0];
    assert_code(initiate(&e.server, &card).await, &status::SVN_UNSUPPORTED);
    e.server.stop().await;
}

/// SGP.26 DPauth/DPpb (NIST) under the SGP.26 CI; the eUICC is under a generated CI that
/// the server also trusts, and verifies the server with the SGP.26 CI.
async fn sgp26_certificates(dir: &Path, db: &Db) {
    let base = "/work/shared/certs/sgp26";
    let pki = make_pki(Curve::NistP256);
    let pki_dir = dir.join("pki");
    pki.write_to(&pki_dir).unwrap();
    let mut s = settings(&dir.join("data"), pki_dir, db);
    s.dpauth_cert = Some(format!("{base}/DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der").into());
    s.dpauth_key = Some(format!("{base}/DPauth/SK_S_SM_DPauth_ECDSA_NIST.pem").into());
    s.dppb_cert = Some(format!("{base}/DPpb/CERT_S_SM_DPpb_ECDSA_NIST.der").into());
    s.dppb_key = Some(format!("{base}/DPpb/SK_S_SM_DPpb_ECDSA_NIST.pem").into());
    s.trusted_ci = vec![format!("{base}/CertificateIssuer/CERT_CI_ECDSA_NIST.der").into()];
    let server = Server::start(s).await;
    let e = Env { server, pki };
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let mut card = Card::from_pki(&e.pki);
    let sgp26_ci =
        std::fs::read(format!("{base}/CertificateIssuer/CERT_CI_ECDSA_NIST.der")).unwrap();
    card.verify_cis = vec![ski(&sgp26_ci)];
    let (a, _) = download(&e, &card, &upp, &mid, None).await;
    let dpauth = rsp_pki::Certificate::from_der(&a.init.server_certificate).unwrap();
    assert_eq!(dpauth.registered_ids(), ["2.999.10".to_owned()]);
    notify(&e.server, &card.pir(&a.tid, 1, &iccid, "2.999.10", true))
        .await
        .unwrap();
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Installed
    );
    e.server.stop().await;
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let db = super::Db::sqlite(dir.path());
                    std::fs::create_dir_all(dir.path()).unwrap();
                    super::$name(dir.path(), &db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = super::Db::postgres(stringify!($name)).await else { return };
                    let dir = tempfile::tempdir().unwrap();
                    super::$name(dir.path(), &db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

both_backends!(
    full_download_p256,
    full_download_brainpool,
    failed_install_goes_to_error,
    cc_right,
    rejects_wrong_cc_then_limit,
    rejects_download_attempts_exceeded,
    rejects_unknown_matching_id,
    default_smdp_flow_by_eid,
    rejects_order_bound_to_other_eid,
    rejects_untrusted_ci,
    rejects_eid_outside_eum_range,
    rejects_expired_euicc_cert,
    rejects_forged_signatures,
    rejects_unknown_and_replayed_transactions,
    rejects_calls_out_of_order,
    cancel_reasons,
    bpp_reuse_and_rebind,
    rejects_new_otpk_when_rebind_disabled,
    restart_between_authenticate_and_bpp,
    other_notifications_recorded_once,
    rejects_initiate_checks,
    sgp26_certificates,
);
