//! End-to-end ES9+ tests against the real server over HTTPS, on SQLite and (when
//! `SMDPP_TEST_PG_URL` is set) PostgreSQL. Every negative test is named `rejects_*`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;

use common::*;
use rsp_crypto::{Curve, KeyCustody, SoftwareKey};
use rsp_pki::TestPki;
use smdpp_core::status;
use smdpp_core::status::StatusCode;
use smdpp_store::ProfileState;

struct Env {
    pki: TestPki,
    server: Server,
}

async fn env(dir: &Path, db: &Db, curve: Curve) -> Env {
    let (pki, mut s) = pki_settings(dir, db, curve);
    if curve != Curve::NistP256 {
        // TLS is P-256 only: the DPtls of a separate P-256 PKI.
        separate_tls_pki(dir, &mut s);
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

/// The same Activation Code run twice before the first result arrives (lpac sends the PIR
/// only at `notification process`): the second session's BPP is refused by the card with
/// errorReason 9 (ICCID already on the eUICC), which must not make the order Error; the
/// first session's signed success then installs it.
async fn rerun_of_an_installed_activation_code_still_installs(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    let (first, _) = download(&e, &card, &upp, &mid, None).await;
    let (second, _) = download(&e, &card, &upp, &mid, None).await;
    notify(
        &e.server,
        &card.pir_with(&second.tid, 2, &iccid, &smdp_oid(&e), Some(9)),
    )
    .await
    .unwrap();
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Downloaded
    );
    notify(
        &e.server,
        &card.pir(&first.tid, 1, &iccid, &smdp_oid(&e), true),
    )
    .await
    .unwrap();
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Installed
    );
    // errorReason 9 from another eUICC still ends its own session only; a real failure
    // (reason 12) of the delivering session still makes Error (failed_install_goes_to_error).
    e.server.stop().await;
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
        let (pki, mut s) = pki_settings(dir, db, Curve::NistP256);
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

/// One eUICC guessing MatchingIDs: past `refusals_per_eid_per_minute` refusals its calls are
/// refused with `1.2/5.1` (even with a right MatchingID) until the minute ends.
async fn rejects_matching_id_guessing_by_one_eid_past_the_limit(dir: &Path, db: &Db) {
    let (pki, mut s) = pki_settings(dir, db, Curve::NistP256);
    s.limits.refusals_per_eid_per_minute = 2;
    let server = Server::start(s).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = server.add(&upp, None, None).await;
    let card = Card::from_pki(&pki);
    for guess in ["GUESS-1", "GUESS-2"] {
        assert_code(
            authenticate(&server, &card, Some(guess)).await.map(|_| ()),
            &status::MATCHING_ID_REFUSED,
        );
    }
    assert_code(
        authenticate(&server, &card, Some(&mid)).await.map(|_| ()),
        &status::FUNCTION_PROVIDER_INACCESSIBLE,
    );
    assert_eq!(server.profile(&iccid).await.state, ProfileState::Released);
    server.stop().await;
}

async fn default_smdp_flow_by_eid(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    // AuthenticateClient does not link the order (section 3.1.3.2 step 9 links it at
    // GetBoundProfilePackage): a postponed session leaves it unlinked, and the
    // empty-MatchingID flow finds nothing yet.
    let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    cancel(
        &e.server,
        &a.tid_hex,
        &card.cancel(&a.tid, &smdp_oid(&e), 1),
    )
    .await
    .unwrap();
    assert_eq!(e.server.profile(&iccid).await.eid, None);
    assert_code(
        authenticate(&e.server, &card, None).await.map(|_| ()),
        &status::MATCHING_ID_REFUSED,
    );
    // An order the operator linked to the EID (Default SM-DP+, section 3.1.1) is found by it.
    e.server
        .store()
        .transition(
            &iccid,
            &smdpp_store::Expect::any(),
            &smdpp_store::ProfileUpdate {
                eid: smdpp_store::Patch::Set(card.eid.clone()),
                ..smdpp_store::ProfileUpdate::default()
            },
            &smdpp_store::EventRecord::by("test"),
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
    // The order is linked to the EID when its BPP is delivered (section 3.1.3.2 step 9).
    download(&e, &card, &upp, &mid, None).await;
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
    assert_eq!(p.state, ProfileState::Downloaded);
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

/// A client that opens sessions it never finishes: past `max_open_sessions` (all open
/// sessions before BPP delivery, read from the database), initiateAuthentication is refused
/// with 1.2/5.1; once sessions end (expired and purged) new ones are accepted again.
async fn rejects_session_flood_past_the_bound(dir: &Path, db: &Db) {
    let (pki, mut s) = pki_settings(dir, db, Curve::NistP256);
    s.limits.max_open_sessions = 3;
    s.limits.session_ttl = std::time::Duration::from_secs(2);
    let server = Server::start(s).await;
    let e = Env { server, pki };
    let card = Card::from_pki(&e.pki);
    for _ in 0..3 {
        initiate(&e.server, &card).await.unwrap();
    }
    for _ in 0..2 {
        assert_code(
            initiate(&e.server, &card).await,
            &status::FUNCTION_PROVIDER_INACCESSIBLE,
        );
    }
    // The sessions expire; the bound is counted again (at most once a second).
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    e.server
        .store()
        .purge_expired(smdpp_store::now_ms())
        .await
        .unwrap();
    initiate(&e.server, &card).await.unwrap();
    e.server.stop().await;
}

/// SGP.26 DPauth/DPpb (NIST) under the SGP.26 CI; the eUICC is under a generated CI that
/// the server also trusts, and verifies the server with the SGP.26 CI.
async fn sgp26_certificates(dir: &Path, db: &Db) {
    let base = "/work/shared/certs/sgp26";
    let (pki, mut s) = pki_settings(dir, db, Curve::NistP256);
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

async fn rejects_cancel_with_wrong_smdp_oid(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    // A genuinely signed cancel naming another SM-DP+: 8.8/3.10, nothing changes.
    assert_code(
        cancel(&e.server, &a.tid_hex, &card.cancel(&a.tid, "2.999.99", 0)).await,
        &status::SMDP_OID_INVALID,
    );
    assert_eq!(e.server.profile(&iccid).await.state, ProfileState::Released);
    // The session is still usable.
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

/// An eligibility failure (section 3.1.3 step 5): the code, and the order in Error with the
/// attempt counted.
async fn assert_ineligible(
    dir: &Path,
    db: &Db,
    card_tweak: impl FnOnce(&mut Card),
    upp: Option<Vec<u8>>,
    class: Option<i64>,
    code: &StatusCode,
) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = upp.unwrap_or_else(|| std::fs::read(TS48).unwrap());
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    if class.is_some() {
        let side = e.server.sidecar().await;
        let mut m = side.get_metadata(&iccid).await.unwrap().unwrap();
        m.profile_class = class;
        side.put_metadata(&iccid, &m).await.unwrap();
        side.close().await;
    }
    let mut card = Card::from_pki(&e.pki);
    card_tweak(&mut card);
    assert_code(
        authenticate(&e.server, &card, Some(&mid)).await.map(|_| ()),
        code,
    );
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Error);
    assert_eq!(p.download_attempts, 1);
    assert!(
        p.error_cause
            .unwrap()
            .starts_with("eligibility check failed")
    );
    // The order is terminated: a compliant eUICC is refused too.
    let good = Card::from_pki(&e.pki);
    assert_code(
        authenticate(&e.server, &good, Some(&mid)).await.map(|_| ()),
        &status::PROFILE_NOT_RELEASED,
    );
    e.server.stop().await;
}

async fn rejects_euicc_without_additional_profile(dir: &Path, db: &Db) {
    assert_ineligible(
        dir,
        db,
        |c| c.rsp_capability = vec![3],
        None,
        None,
        &status::EUICC_INSUFFICIENT_MEMORY,
    )
    .await;
}

async fn rejects_insufficient_free_memory(dir: &Path, db: &Db) {
    // 4 KiB free non-volatile memory; the TS.48 package is about 12 KB.
    assert_ineligible(
        dir,
        db,
        |c| c.ext_card_resource = vec![0x81, 0x01, 0x02, 0x82, 0x02, 0x10, 0x00, 0x83, 0x01, 0x10],
        None,
        None,
        &status::EUICC_INSUFFICIENT_MEMORY,
    )
    .await;
}

async fn rejects_test_profile_without_test_support(dir: &Path, db: &Db) {
    assert_ineligible(dir, db, |_| {}, None, Some(0), &status::NO_ELIGIBLE_PROFILE).await;
}

async fn rejects_newer_profile_package_version(dir: &Path, db: &Db) {
    // A v2.3 package for an eUICC supporting SAIP 2.1.
    assert_ineligible(
        dir,
        db,
        |c| c.profile_version = [2, 1, 0],
        None,
        None,
        &status::NO_ELIGIBLE_PROFILE,
    )
    .await;
}

async fn eligible_edge_cases(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let side = e.server.sidecar().await;
    let mut m = side.get_metadata(&iccid).await.unwrap().unwrap();
    m.profile_class = Some(0);
    side.put_metadata(&iccid, &m).await.unwrap();
    side.close().await;
    let mut card = Card::from_pki(&e.pki);
    // Exactly enough memory, no 82 tag at all is fine too; test profile with support.
    card.rsp_capability = vec![0, 3];
    card.ext_card_resource = vec![0x81, 0x01, 0x05];
    authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    let len = u16::try_from(upp.len()).unwrap().to_be_bytes();
    card.ext_card_resource = vec![0x82, 0x02, len[0], len[1]];
    let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
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

/// Two identical authenticateClient calls at once: exactly one proceeds, the other gets
/// `8.10.1/3.9` (the session claim is a compare-and-set); the attempt is counted once.
async fn concurrent_authenticate_client_proceeds_once(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    for _ in 0..3 {
        let init = initiate(&e.server, &card).await.unwrap();
        let (r1, r2) = tokio::join!(
            authenticate_with(&e.server, &card, &init, Some(&mid), false),
            authenticate_with(&e.server, &card, &init, Some(&mid), false),
        );
        let (ok, err) = match (r1, r2) {
            (Ok(a), Err(b)) | (Err(b), Ok(a)) => (a, b),
            (a, b) => panic!(
                "expected exactly one success: {:?} / {:?}",
                a.is_ok(),
                b.is_ok()
            ),
        };
        assert_eq!(err.code, status::TRANSACTION_ID_UNKNOWN, "{}", err.message);
        assert_eq!(ok.0.transaction_id, init.transaction_id);
    }
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.download_attempts, 3, "one attempt per session");
    assert_eq!(p.state, ProfileState::Released);
    e.server.stop().await;
}

/// Two getBoundProfilePackage calls for one transaction at once (different otPKs, as two
/// racing LPAs would send): exactly one BPP is bound and delivered, the other call gets
/// `8.10.1/3.9`; the profile is bound once.
async fn concurrent_get_bpp_binds_once(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let card = Card::from_pki(&e.pki);
    for i in 0..3 {
        let iccid = format!("899990000000000{:04}", 300 + i);
        let upp = smdpp_service::upp::demo_upp(&iccid).unwrap();
        let (mid, iccid) = e.server.add(&upp, None, None).await;
        let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
        let k1 = SoftwareKey::generate(card.curve).unwrap();
        let k2 = SoftwareKey::generate(card.curve).unwrap();
        let (r1, r2) = tokio::join!(
            get_bpp(&e.server, &card, &a, &k1, None, false),
            get_bpp(&e.server, &card, &a, &k2, None, false),
        );
        let (bpp, key, err) = match (r1, r2) {
            (Ok(b), Err(x)) => (b, &k1, x),
            (Err(x), Ok(b)) => (b, &k2, x),
            (a, b) => panic!(
                "expected exactly one success: {:?} / {:?}",
                a.is_ok(),
                b.is_ok()
            ),
        };
        assert_eq!(err.code, status::TRANSACTION_ID_UNKNOWN, "{}", err.message);
        // The delivered BPP opens with the winner's key; the cache holds that binding only.
        card.open(
            &bpp.bound_profile_package,
            &a.auth.smdp_certificate,
            key,
            &a.tid,
        );
        let cached = e
            .server
            .sidecar()
            .await
            .get_bpp(&iccid)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cached.euicc_otpk, key.public_key());
        assert_eq!(cached.bpp, bpp.bound_profile_package);
        let events = e.server.store().events_for(&iccid).await.unwrap();
        assert_eq!(
            events
                .iter()
                .filter(|ev| ev.cause.as_deref() == Some("bpp delivered"))
                .count(),
            1,
            "bound once"
        );
        assert_eq!(
            e.server.profile(&iccid).await.state,
            ProfileState::Downloaded
        );
    }
    e.server.stop().await;
}

/// M1: AuthenticateClient with the Activation Code alone (an eUICC that does not know the
/// Confirmation Code) does not link the order to its EID (SGP.22 section 3.1.3.2 step 9 links
/// it at GetBoundProfilePackage, after the Confirmation Code check): the legitimate device
/// then downloads with the right code and installs.
async fn rejects_eid_link_without_confirmation_code(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, Some("1234")).await;
    let attacker_eid = rsp_pki::eid_with_check_digits("890490320000000000000000000778").unwrap();
    let attacker = Card::sibling(&e.pki, &attacker_eid);
    let a = authenticate(&e.server, &attacker, Some(&mid))
        .await
        .unwrap();
    let signed2 =
        <rsp_asn1::download::SmdpSigned2 as rsp_asn1::Codec>::decode(&a.auth.smdp_signed2).unwrap();
    assert!(signed2.cc_required_flag);
    // The attacker stops here (it has no Confirmation Code): the attempt is counted, the
    // order is not linked.
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.eid, None);
    assert_eq!(p.state, ProfileState::Released);
    assert_eq!(p.download_attempts, 1);
    assert_eq!(p.cc_attempts, 0);
    // The attacker's session cannot link it without the code either.
    let otk = SoftwareKey::generate(attacker.curve).unwrap();
    assert_code(
        get_bpp(&e.server, &attacker, &a, &otk, None, false).await,
        &status::CONFIRMATION_CODE_MISSING,
    );
    assert_eq!(e.server.profile(&iccid).await.eid, None);
    // The legitimate device downloads with the code and installs.
    let card = Card::from_pki(&e.pki);
    let (a, _) = download(&e, &card, &upp, &mid, Some("1234")).await;
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Downloaded);
    assert_eq!(p.eid.as_deref(), Some(card.eid.as_str()));
    notify(&e.server, &card.pir(&a.tid, 1, &iccid, &smdp_oid(&e), true))
        .await
        .unwrap();
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Installed);
    assert_eq!(p.eid.as_deref(), Some(card.eid.as_str()));
    // Now linked: the attacker's eUICC is refused.
    assert_code(
        authenticate(&e.server, &attacker, Some(&mid))
            .await
            .map(|_| ()),
        &status::EID_REFUSED,
    );
    e.server.stop().await;
}

/// M4: a ProfileInstallationResult whose (EID, seqNumber) was recorded but whose transition
/// did not commit (simulated by recording it first through the store) still moves the order
/// when it is retried while its session waits for it.
async fn pir_retry_after_recorded_notification_installs(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    let (a, _) = download(&e, &card, &upp, &mid, None).await;
    let pir = card.pir(&a.tid, 1, &iccid, &smdp_oid(&e), true);
    let first = e
        .server
        .store()
        .record_notification(&smdpp_store::NewNotification {
            eid: card.eid.clone(),
            seq_number: 1,
            iccid: Some(iccid.clone()),
            event: "install".into(),
            raw: pir.clone(),
            received_at: smdpp_store::now_ms(),
        })
        .await
        .unwrap();
    assert!(matches!(first, smdpp_store::RecordOutcome::Inserted(_)));
    notify(&e.server, &pir).await.unwrap();
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Installed
    );
    // A replay after the session ended changes nothing.
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
    assert_eq!(
        e.server
            .store()
            .list_notifications(&card.eid)
            .await
            .unwrap()
            .len(),
        1
    );
    e.server.stop().await;
}

/// L1: the result or CancelSession of an older session of the same eUICC, sent after a newer
/// session delivered the BPP, does not move the order; a PIR naming another ICCID neither.
async fn rejects_pir_and_cancel_of_older_session(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    let (old, _) = download(&e, &card, &upp, &mid, None).await;
    // A retry (Downloaded is downloadable again, section 3.1.3) delivers in a new session.
    let (new, _) = download(&e, &card, &upp, &mid, None).await;
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Downloaded
    );
    // The older session's error PIR: acknowledged, the order is not touched.
    notify(
        &e.server,
        &card.pir(&old.tid, 1, &iccid, &smdp_oid(&e), false),
    )
    .await
    .unwrap();
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Downloaded);
    assert_eq!(p.error_cause, None);
    // The older session's CancelSession (endUserRejection): refused, order kept.
    assert_code(
        cancel(
            &e.server,
            &old.tid_hex,
            &card.cancel(&old.tid, &smdp_oid(&e), 0),
        )
        .await,
        &status::TRANSACTION_ID_UNKNOWN,
    );
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Downloaded
    );
    // A PIR of the new session naming another ICCID: not this session's order.
    notify(
        &e.server,
        &card.pir(&new.tid, 2, "89000123456789012358", &smdp_oid(&e), false),
    )
    .await
    .unwrap();
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Downloaded
    );
    // The new session's result installs.
    notify(
        &e.server,
        &card.pir(&new.tid, 3, &iccid, &smdp_oid(&e), true),
    )
    .await
    .unwrap();
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Installed
    );
    e.server.stop().await;
}

async fn set_expiry(e: &Env, iccid: &str, at: i64) {
    e.server
        .store()
        .transition(
            iccid,
            &smdpp_store::Expect::any(),
            &smdpp_store::ProfileUpdate {
                expires_at: smdpp_store::Patch::Set(at),
                ..smdpp_store::ProfileUpdate::default()
            },
            &smdpp_store::EventRecord::by("test").with_cause("expiry"),
        )
        .await
        .unwrap();
}

/// An expired order (Tables 40/43, `8.8.5/4.10`): refused at authenticateClient, and at
/// getBoundProfilePackage when it expired in between. The order keeps its state (the
/// specification only asks for the status code; terminating it is the operator's call).
async fn rejects_expired_order(dir: &Path, db: &Db) {
    let e = env(dir, db, Curve::NistP256).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    let past = smdpp_store::now_ms() - 1_000;
    set_expiry(&e, &iccid, past).await;
    assert_code(
        authenticate(&e.server, &card, Some(&mid)).await.map(|_| ()),
        &status::DOWNLOAD_ORDER_EXPIRED,
    );
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Released);
    assert_eq!(p.download_attempts, 0);
    // Valid for now: authenticated; then it expires before getBoundProfilePackage.
    set_expiry(&e, &iccid, smdpp_store::now_ms() + 60_000).await;
    let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    set_expiry(&e, &iccid, past).await;
    let otk = SoftwareKey::generate(card.curve).unwrap();
    assert_code(
        get_bpp(&e.server, &card, &a, &otk, None, false).await,
        &status::DOWNLOAD_ORDER_EXPIRED,
    );
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Released);
    assert!(
        e.server
            .sidecar()
            .await
            .get_bpp(&iccid)
            .await
            .unwrap()
            .is_none()
    );
    e.server.stop().await;
}

/// The key custody switch is in effect (`SMDPP_TEST_KEY_CUSTODY=softhsm`, see
/// `common/hsm.rs`): the server's DPauth, DPpb and DPtls keys are `pkcs11:object=` references
/// to objects on the token whose public keys are the test PKI's, and a download makes the
/// token sign (serverSignature1, smdpSignature2, smdpSign, the TLS handshakes). With the
/// switch off the same download runs on software keys and no token is configured. A silent
/// fallback to software keys fails here.
async fn key_custody(dir: &Path, db: &Db, curve: Curve) {
    let before = hsm::signatures();
    let e = env(dir, db, curve).await;
    let upp = std::fs::read(TS48).unwrap();
    let (mid, _) = e.server.add(&upp, None, None).await;
    let card = Card::from_pki(&e.pki);
    download(&e, &card, &upp, &mid, None).await;
    let s = &e.server.settings;
    if hsm::assert_in_effect(s, before, 4) {
        let t = hsm::token();
        for (reference, pem) in [
            (&s.dpauth_key, e.pki.dpauth.key.to_pkcs8_pem()),
            (&s.dppb_key, e.pki.dppb.key.to_pkcs8_pem()),
        ] {
            let label = reference.as_ref().unwrap().to_str().unwrap();
            let label = label.strip_prefix("pkcs11:object=").unwrap();
            let on_token = rsp_hsm::HsmKey::open(std::sync::Arc::clone(&t.token), label).unwrap();
            assert_eq!(on_token.curve(), curve);
            assert_eq!(
                on_token.public_key(),
                SoftwareKey::from_pem(&pem).unwrap().public_key()
            );
        }
    }
    e.server.stop().await;
}

async fn key_custody_p256(dir: &Path, db: &Db) {
    key_custody(dir, db, Curve::NistP256).await;
}

async fn key_custody_brainpool(dir: &Path, db: &Db) {
    key_custody(dir, db, Curve::BrainpoolP256r1).await;
}

both_backends!(
    key_custody_p256,
    key_custody_brainpool,
    rerun_of_an_installed_activation_code_still_installs,
    rejects_cancel_with_wrong_smdp_oid,
    rejects_eid_link_without_confirmation_code,
    pir_retry_after_recorded_notification_installs,
    rejects_pir_and_cancel_of_older_session,
    rejects_euicc_without_additional_profile,
    rejects_insufficient_free_memory,
    rejects_test_profile_without_test_support,
    rejects_newer_profile_package_version,
    eligible_edge_cases,
    concurrent_authenticate_client_proceeds_once,
    concurrent_get_bpp_binds_once,
    rejects_expired_order,
    failed_install_goes_to_error,
    rejects_wrong_cc_then_limit,
    rejects_download_attempts_exceeded,
    rejects_unknown_matching_id,
    rejects_matching_id_guessing_by_one_eid_past_the_limit,
    default_smdp_flow_by_eid,
    rejects_order_bound_to_other_eid,
    rejects_untrusted_ci,
    rejects_eid_outside_eum_range,
    rejects_expired_euicc_cert,
    rejects_forged_signatures,
    rejects_unknown_and_replayed_transactions,
    rejects_calls_out_of_order,
    other_notifications_recorded_once,
    rejects_initiate_checks,
    rejects_session_flood_past_the_bound,
    sgp26_certificates,
);
