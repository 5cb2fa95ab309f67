//! SGP.23 (v1.15) SM-DP+ ES9+ test sequences that no other test file covers, named after
//! the sequence (see docs/CONFORMANCE.md for the whole map). The real server over HTTPS on a
//! SQLite file, with the test eUICC of `common` (`Card`) as the device.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use common::*;
use rsp_asn1::Codec;
use rsp_asn1::auth::ServerSigned1;
use rsp_asn1::bpp::{BoundProfilePackage, StoreMetadataRequest};
use rsp_crypto::{Curve, KeyCustody, SoftwareKey};
use rsp_pki::TestPki;
use smdpp_core::status;
use smdpp_service::factory::Factory;
use smdpp_service::inventory::{
    ImportOptions, NotifyOn, ProfileClass, build_profile_type, import_file,
};
use smdpp_service::upp::demo_upp;
use smdpp_store::{EventRecord, Expect, Patch, ProfileState, ProfileUpdate};

struct Env {
    pki: TestPki,
    server: Server,
}

async fn env(dir: &Path, curve: Curve) -> Env {
    let db = Db::sqlite(dir);
    let (pki, mut s) = pki_settings(dir, &db, curve);
    if curve != Curve::NistP256 {
        // TLS is P-256 only: the DPtls of a separate P-256 PKI.
        separate_tls_pki(dir, &mut s);
    }
    let server = Server::start(s).await;
    Env { pki, server }
}

impl Env {
    fn oid(&self) -> String {
        self.pki.options.smdp_oid.clone()
    }

    /// A Released order for a demo profile numbered `n`: (MatchingID, ICCID).
    async fn order(&self, n: u32) -> (String, String) {
        let upp = demo_upp(&format!("899990000000001{n:04}")).unwrap();
        self.server.add(&upp, None, None).await
    }

    /// authenticateClient and getBoundProfilePackage for `mid`.
    async fn delivered(&self, card: &Card, mid: &str) -> Authenticated {
        let a = authenticate(&self.server, card, Some(mid)).await.unwrap();
        let otk = SoftwareKey::generate(card.curve).unwrap();
        get_bpp(&self.server, card, &a, &otk, None, false)
            .await
            .unwrap();
        a
    }

    async fn state(&self, iccid: &str) -> ProfileState {
        self.server.profile(iccid).await.state
    }
}

/// Runs `async fn NAME(dir: &Path)` as a test with a fresh temporary directory.
macro_rules! sqlite_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$name(dir.path()).await;
                }
            }
        )*
    };
}

// -------------------------------------------------------- 4.3.12 InitiateAuthentication

/// TC_SM-DP+_ES9+.InitiateAuthenticationNIST #02: every call gets its own transactionId and
/// serverChallenge.
async fn initiate_authentication_nist_02_unique_transaction_id_and_challenge(dir: &Path) {
    let e = env(dir, Curve::NistP256).await;
    let card = Card::from_pki(&e.pki);
    let (mut tids, mut challenges) = (HashSet::new(), HashSet::new());
    for _ in 0..8 {
        let r = initiate(&e.server, &card).await.unwrap();
        let s1 = ServerSigned1::decode(&r.server_signed1).unwrap();
        assert_eq!(s1.transaction_id.as_bytes(), r.transaction_id.as_bytes());
        tids.insert(r.transaction_id.to_hex());
        challenges.insert(s1.server_challenge.as_bytes().to_vec());
    }
    assert_eq!(tids.len(), 8);
    assert_eq!(challenges.len(), 8);
    e.server.stop().await;
}

/// TC_SM-DP+_ES9+.InitiateAuthenticationNIST #07, #08, #09: eUICCs of v2.2.1, v2.2.2 and
/// v2.3 are served (and can go on to authenticate).
async fn initiate_authentication_nist_07_09_euicc_versions(dir: &Path) {
    let e = env(dir, Curve::NistP256).await;
    let (mid, _) = e.order(1).await;
    for svn in [[2, 2, 1], [2, 2, 2], [2, 3, 0]] {
        let mut card = Card::from_pki(&e.pki);
        card.svn = svn;
        let r = initiate(&e.server, &card).await;
        assert!(r.is_ok(), "svn {svn:?}: {r:?}");
        authenticate(&e.server, &card, Some(&mid))
            .await
            .unwrap_or_else(|err| panic!("svn {svn:?}: {err:?}"));
    }
    e.server.stop().await;
}

/// TC_SM-DP+_ES9+.InitiateAuthenticationBRP #01: a brainpoolP256r1 eUICC gets a
/// brainpoolP256r1 CERT.DPauth.ECDSA and a serverSignature1 it verifies (inside
/// `Card::authenticate_server`).
async fn initiate_authentication_brp_01_nominal(dir: &Path) {
    let e = env(dir, Curve::BrainpoolP256r1).await;
    let (mid, _) = e.order(2).await;
    let card = Card::from_pki(&e.pki);
    let r = initiate(&e.server, &card).await.unwrap();
    let dpauth = rsp_pki::Certificate::from_der(&r.server_certificate).unwrap();
    assert_eq!(dpauth.curve(), Curve::BrainpoolP256r1);
    authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    e.server.stop().await;
}

// ------------------------------------------------------------ 4.3.14 AuthenticateClient

/// A copy of the PKI's EUM certificate re-issued by the CI with `tweak`, and a card whose
/// eUICC certificate it issued.
fn card_under_eum(pki: &TestPki, tweak: impl FnOnce(&mut rsp_pki::CertBuilder)) -> Card {
    let ci = pki.ci.cert().unwrap();
    let o = &pki.options;
    let mut b = rsp_pki::eum_template(
        &ci,
        o.curve,
        pki.eum.key.public_key(),
        &o.eum_organization,
        &o.eum_oid,
        &[&pki.eid[..8]],
        o.eum_range_form,
    )
    .unwrap();
    tweak(&mut b);
    let eum_der = b.sign(&pki.ci.key).unwrap();
    let eum = rsp_pki::Certificate::from_der(&eum_der).unwrap();
    let (euicc_der, key) = rsp_pki::issue_euicc(&eum, &pki.eum.key, &pki.eid).unwrap();
    let mut card = Card::from_pki(pki);
    card.eum_der = eum_der;
    card.euicc_der = euicc_der;
    card.key = key;
    card
}

/// TC_SM-DP+_ES9+.AuthenticateClientNIST_ErrorCases #1: an EUM certificate whose CI
/// signature does not verify: 8.1.2/6.1; the order is untouched.
async fn authenticate_client_nist_error_01_invalid_eum_certificate(dir: &Path) {
    let e = env(dir, Curve::NistP256).await;
    let (mid, iccid) = e.order(3).await;
    let mut card = card_under_eum(&e.pki, |_| {});
    // The last octet is inside the signature's s value.
    let last = card.eum_der.len() - 1;
    card.eum_der[last] ^= 0x01;
    assert_code(
        authenticate(&e.server, &card, Some(&mid)).await.map(|_| ()),
        &status::EUM_CERTIFICATE_INVALID,
    );
    assert_eq!(e.state(&iccid).await, ProfileState::Released);
    e.server.stop().await;
}

/// TC_SM-DP+_ES9+.AuthenticateClientNIST_ErrorCases #2: an expired EUM certificate:
/// 8.1.2/6.3.
async fn authenticate_client_nist_error_02_expired_eum_certificate(dir: &Path) {
    let e = env(dir, Curve::NistP256).await;
    let (mid, iccid) = e.order(4).await;
    let card = card_under_eum(&e.pki, |b| {
        b.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(30);
        b.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    });
    assert_code(
        authenticate(&e.server, &card, Some(&mid)).await.map(|_| ()),
        &status::EUM_CERTIFICATE_EXPIRED,
    );
    assert_eq!(e.state(&iccid).await, ProfileState::Released);
    e.server.stop().await;
}

/// TC_SM-DP+_ES9+.AuthenticateClientNIST_ErrorCases #10: the transactionId inside
/// euiccSigned1 is not the one of the JSON transport layer: 8.10.1/3.9.
async fn authenticate_client_nist_error_10_unknown_transaction_id_in_euicc_signed1(dir: &Path) {
    let e = env(dir, Curve::NistP256).await;
    let (mid, iccid) = e.order(5).await;
    let card = Card::from_pki(&e.pki);
    let first = initiate(&e.server, &card).await.unwrap();
    let second = initiate(&e.server, &card).await.unwrap();
    // Signed over the second session's serverSigned1, sent in the first session.
    let asr = card.authenticate_server(&second, Some(&mid), false, None);
    let r: Result<smdpp_core::es9_json::AuthenticateClientResponse, _> = e
        .server
        .post(
            "authenticateClient",
            serde_json::json!({
                "transactionId": first.transaction_id.to_hex(),
                "authenticateServerResponse": b64(&asr),
            }),
        )
        .await;
    assert_code(r, &status::TRANSACTION_ID_UNKNOWN);
    assert_eq!(e.state(&iccid).await, ProfileState::Released);
    assert_eq!(e.server.profile(&iccid).await.download_attempts, 0);
    e.server.stop().await;
}

// -------------------------------------------------------- 4.3.13 GetBoundProfilePackage

/// TC_SM-DP+_ES9+.GetBoundProfilePackage_ErrorCasesNIST #03: the transactionId inside
/// euiccSigned2 is not the session's: 8.10.1/3.9, nothing delivered.
async fn get_bpp_nist_error_03_unknown_transaction_id_in_euicc_signed2(dir: &Path) {
    let e = env(dir, Curve::NistP256).await;
    let (mid, iccid) = e.order(6).await;
    let card = Card::from_pki(&e.pki);
    let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    let otk = SoftwareKey::generate(card.curve).unwrap();
    let pdr = card.prepare_download(
        &[0x5A; 16],
        &a.auth,
        &a.sig1_tlv,
        otk.public_key(),
        None,
        false,
    );
    let r: Result<smdpp_core::es9_json::GetBoundProfilePackageResponse, _> = e
        .server
        .post(
            "getBoundProfilePackage",
            serde_json::json!({
                "transactionId": a.tid_hex,
                "prepareDownloadResponse": b64(&pdr),
            }),
        )
        .await;
    assert_code(r, &status::TRANSACTION_ID_UNKNOWN);
    assert_eq!(e.state(&iccid).await, ProfileState::Released);
    e.server.stop().await;
}

/// A PNG of exactly 1024 octets (the StoreMetadata icon limit): with it the
/// StoreMetadataRequest no longer fits one 1020-octet segment.
fn big_png() -> Vec<u8> {
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    png.resize(1024, 0x5A);
    png
}

/// TC_SM-DP+_ES9+.GetBoundProfilePackageNIST #05: S-ENC/S-MAC with the StoreMetadata split
/// over two `88` segments (a profile type with a 1 KB icon): the BPP carries the metadata
/// in two or more segments of at most 1020 octets, the eUICC side reassembles exactly the
/// profileMetadata of authenticateClient, and the profile installs.
async fn get_bpp_nist_05_store_metadata_over_two_segments(dir: &Path) {
    let e = env(dir, Curve::NistP256).await;
    let factory: Arc<Factory> = Arc::clone(e.server.prepared.engine.factory().unwrap());
    let t = build_profile_type(
        "big-icon",
        &saip::TemplateSource::usim_isim_milenage(),
        "Conformance SP",
        "Two-segment metadata profile",
        Some(ProfileClass::Operational),
        Some(big_png()),
        &[NotifyOn::Install],
        &[],
        None,
        None,
    )
    .unwrap();
    factory.add_profile_type(&t).await.unwrap();
    let iccid = saip::personalize::iccid_with_luhn("894900000000000042").unwrap();
    let csv = format!(
        "iccid,imsi,ki,opc,pin1,puk1,pin2,puk2,adm1\n{iccid},001010000000042,\
         000102030405060708090A0B0C0D0E0F,0F0E0D0C0B0A09080706050403020100,\
         1234,12345678,5678,87654321,11111111\n"
    );
    let summary = import_file(
        e.server.store(),
        &factory,
        smdpp_inventory::Format::Csv,
        std::io::Cursor::new(csv.into_bytes()),
        &ImportOptions {
            profile_type: "big-icon".into(),
            operator: None,
            all_or_nothing: true,
            reader: smdpp_inventory::Options::default(),
            batch_rows: 10,
        },
        |r| panic!("row refused: {r:?}"),
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(summary.imported, 1);
    let mid = smdpp_service::upp::generate_matching_id().unwrap();
    e.server
        .store()
        .transition(
            &iccid,
            &Expect::states(&[ProfileState::Available]),
            &ProfileUpdate {
                state: Some(ProfileState::Released),
                matching_id: Patch::Set(mid.clone()),
                ..ProfileUpdate::default()
            },
            &EventRecord::by("test"),
        )
        .await
        .unwrap();

    let card = Card::from_pki(&e.pki);
    let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    let meta = StoreMetadataRequest::decode(&a.auth.profile_metadata).unwrap();
    assert_eq!(meta.icon.as_deref(), Some(big_png().as_slice()));
    assert!(a.auth.profile_metadata.len() > 1020);
    let otk = SoftwareKey::generate(card.curve).unwrap();
    let r = get_bpp(&e.server, &card, &a, &otk, None, false)
        .await
        .unwrap();
    let bpp = BoundProfilePackage::decode(&r.bound_profile_package).unwrap();
    assert!(
        bpp.sequence_of_88.len() >= 2,
        "StoreMetadata in 2+ segments"
    );
    assert!(bpp.sequence_of_88.iter().all(|s| s.len() <= 1020));
    let opened = card.open(
        &r.bound_profile_package,
        &a.auth.smdp_certificate,
        &otk,
        &a.tid,
    );
    assert_eq!(opened.store_metadata, a.auth.profile_metadata);
    assert!(opened.ppk.is_none(), "session keys only (no PPK)");
    notify(&e.server, &card.pir(&a.tid, 1, &iccid, &e.oid(), true))
        .await
        .unwrap();
    assert_eq!(e.state(&iccid).await, ProfileState::Installed);
    e.server.stop().await;
}

// ------------------------------------------------------------ 4.3.15 HandleNotification

/// TC_SM-DP+_ES9+_HandleNotificationNIST #04-#18: a ProfileInstallationResult with an
/// errorResult (each errorReason an eUICC can report, except 9 "ICCID already exists",
/// which for the order's own eUICC means the profile is there) is acknowledged and ends the
/// order in Error with the reason recorded; a repeat changes nothing.
async fn handle_notification_nist_04_18_pir_error_reasons(dir: &Path) {
    let e = env(dir, Curve::NistP256).await;
    let card = Card::from_pki(&e.pki);
    for (i, reason) in [1i64, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 127]
        .into_iter()
        .enumerate()
    {
        let (mid, iccid) = e.order(100 + u32::try_from(i).unwrap()).await;
        let a = e.delivered(&card, &mid).await;
        let seq = 10 + i64::try_from(i).unwrap();
        let pir = card.pir_with(&a.tid, seq, &iccid, &e.oid(), Some(reason));
        notify(&e.server, &pir).await.unwrap();
        let p = e.server.profile(&iccid).await;
        assert_eq!(p.state, ProfileState::Error, "errorReason {reason}");
        assert!(
            p.error_cause
                .as_deref()
                .unwrap_or("")
                .contains(&format!("errorReason={reason}")),
            "errorReason {reason}: {:?}",
            p.error_cause
        );
        notify(&e.server, &pir).await.unwrap();
        assert_eq!(e.state(&iccid).await, ProfileState::Error);
    }
    e.server.stop().await;
}

// ----------------------------------------------------------------- 4.3.16 CancelSession

/// Every CancelSessionReason with the Table 6b outcome: postponed and timeout keep the
/// order, the others terminate it.
const REASONS: [(i64, bool); 7] = [
    (0, true),   // endUserRejection
    (1, false),  // postponed
    (2, false),  // timeout
    (3, true),   // pprNotAllowed
    (4, true),   // metadataMismatch
    (5, true),   // loadBppExecutionError
    (127, true), // undefinedReason
];

/// Cancels after getBoundProfilePackage with each reason; then the same session is
/// unknown (8.10.1/3.9) and nothing more changes.
async fn cancel_after_bpp(e: &Env, base: u32) {
    let card = Card::from_pki(&e.pki);
    for (i, (reason, terminates)) in REASONS.into_iter().enumerate() {
        let (mid, iccid) = e.order(base + u32::try_from(i).unwrap()).await;
        let a = e.delivered(&card, &mid).await;
        assert_eq!(e.state(&iccid).await, ProfileState::Downloaded);
        cancel(
            &e.server,
            &a.tid_hex,
            &card.cancel(&a.tid, &e.oid(), reason),
        )
        .await
        .unwrap_or_else(|err| panic!("reason {reason}: {err:?}"));
        let want = if terminates {
            ProfileState::Error
        } else {
            ProfileState::Downloaded
        };
        assert_eq!(e.state(&iccid).await, want, "reason {reason}");
        assert_code(
            cancel(&e.server, &a.tid_hex, &card.cancel(&a.tid, &e.oid(), 0)).await,
            &status::TRANSACTION_ID_UNKNOWN,
        );
        assert_eq!(e.state(&iccid).await, want, "reason {reason}");
        if !terminates {
            // The order stays available for a further retry (section 3.1.5).
            e.delivered(&card, &mid).await;
            assert_eq!(e.state(&iccid).await, ProfileState::Downloaded);
        }
    }
}

/// TC_SM-DP+_ES9+.CancelSession_After_GetBoundProfilePackageNIST #01-#07 (and the
/// "session already cancelled" error case).
async fn cancel_session_after_get_bpp_nist_each_reason(dir: &Path) {
    let e = env(dir, Curve::NistP256).await;
    cancel_after_bpp(&e, 200).await;
    e.server.stop().await;
}

/// TC_SM-DP+_ES9+.CancelSession_After_AuthenticateClientBRP and
/// TC_SM-DP+_ES9+.CancelSession_After_GetBoundProfilePackageBRP: the NIST sequences with
/// brainpoolP256r1 certificates (euiccCancelSessionSignature verified on brainpool).
async fn cancel_session_brp_after_authenticate_and_after_bpp(dir: &Path) {
    let e = env(dir, Curve::BrainpoolP256r1).await;
    let card = Card::from_pki(&e.pki);
    for (i, (reason, terminates)) in REASONS.into_iter().enumerate() {
        let (mid, iccid) = e.order(300 + u32::try_from(i).unwrap()).await;
        let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
        cancel(
            &e.server,
            &a.tid_hex,
            &card.cancel(&a.tid, &e.oid(), reason),
        )
        .await
        .unwrap();
        let want = if terminates {
            ProfileState::Error
        } else {
            ProfileState::Released
        };
        assert_eq!(e.state(&iccid).await, want, "reason {reason}");
    }
    cancel_after_bpp(&e, 400).await;
    e.server.stop().await;
}

// ------------------------------------------------- more sequences (AuthenticateClient)

impl Env {
    /// A Released order linked to `card`'s EID (Default SM-DP+, section 3.1.1), optionally
    /// with a Confirmation Code: (MatchingID, ICCID).
    async fn linked_order(&self, n: u32, card: &Card, cc: Option<&str>) -> (String, String) {
        let upp = demo_upp(&format!("899990000000001{n:04}")).unwrap();
        let (mid, iccid) = self.server.add(&upp, None, cc).await;
        self.server
            .store()
            .transition(
                &iccid,
                &Expect::any(),
                &ProfileUpdate {
                    eid: Patch::Set(card.eid.clone()),
                    ..ProfileUpdate::default()
                },
                &EventRecord::by("test"),
            )
            .await
            .unwrap();
        (mid, iccid)
    }
}

/// TC_SM-DP+_ES9+.AuthenticateClientNIST #02: Default SM-DP+ use case (no MatchingID, the
/// order found by the EID) with a Confirmation Code: ccRequiredFlag set, the right code
/// downloads.
async fn authenticate_client_nist_02_default_smdp_with_cc(dir: &Path) {
    let e = env(dir, Curve::NistP256).await;
    let card = Card::from_pki(&e.pki);
    let (_, iccid) = e.linked_order(500, &card, Some("7788")).await;
    let a = authenticate(&e.server, &card, None).await.unwrap();
    let s2 = rsp_asn1::download::SmdpSigned2::decode(&a.auth.smdp_signed2).unwrap();
    assert!(s2.cc_required_flag);
    let otk = SoftwareKey::generate(card.curve).unwrap();
    get_bpp(&e.server, &card, &a, &otk, Some("7788"), false)
        .await
        .unwrap();
    assert_eq!(e.state(&iccid).await, ProfileState::Downloaded);
    e.server.stop().await;
}

/// TC_SM-DP+_ES9+.AuthenticateClientNIST #03: Default SM-DP+ use case, second attempt after
/// one refused for an invalid MatchingID (8.2.6/3.8, nothing counted): the second attempt,
/// without MatchingID, succeeds.
async fn authenticate_client_nist_03_default_smdp_second_attempt(dir: &Path) {
    let e = env(dir, Curve::NistP256).await;
    let card = Card::from_pki(&e.pki);
    let (_, iccid) = e.linked_order(501, &card, None).await;
    assert_code(
        authenticate(&e.server, &card, Some("WRONG-MATCHING-ID"))
            .await
            .map(|_| ()),
        &status::MATCHING_ID_REFUSED,
    );
    assert_eq!(e.server.profile(&iccid).await.download_attempts, 0);
    e.delivered(&card, &e.server.profile(&iccid).await.matching_id.unwrap())
        .await;
    assert_eq!(e.state(&iccid).await, ProfileState::Downloaded);
    e.server.stop().await;
}

/// TC_SM-DP+_ES9+.AuthenticateClientNIST #14-#18: the MatchingID omitted, or present and
/// empty (what an LPA sends for a Default SM-DP+, section 3.1.3 step 2), both find the order
/// linked to the EID.
async fn authenticate_client_nist_14_18_matching_id_omitted_or_empty(dir: &Path) {
    let e = env(dir, Curve::NistP256).await;
    let card = Card::from_pki(&e.pki);
    for (n, mid) in [(502, None), (503, Some(""))] {
        let (_, iccid) = e.linked_order(n, &card, None).await;
        let a = authenticate(&e.server, &card, mid)
            .await
            .unwrap_or_else(|err| panic!("{mid:?}: {err:?}"));
        let otk = SoftwareKey::generate(card.curve).unwrap();
        get_bpp(&e.server, &card, &a, &otk, None, false)
            .await
            .unwrap();
        assert_eq!(e.state(&iccid).await, ProfileState::Downloaded, "{mid:?}");
    }
    e.server.stop().await;
}

/// TC_SM-DP+_ES9+.AuthenticateClientNIST_ErrorCases #8: an order not yet released
/// (Confirmed): 8.2/1.2, no attempt counted.
async fn authenticate_client_nist_error_08_profile_not_released(dir: &Path) {
    let e = env(dir, Curve::NistP256).await;
    let (mid, iccid) = e.order(504).await;
    e.server
        .store()
        .transition(
            &iccid,
            &Expect::any(),
            &ProfileUpdate::to_state(ProfileState::Confirmed),
            &EventRecord::by("test"),
        )
        .await
        .unwrap();
    let card = Card::from_pki(&e.pki);
    assert_code(
        authenticate(&e.server, &card, Some(&mid)).await.map(|_| ()),
        &status::PROFILE_NOT_RELEASED,
    );
    let p = e.server.profile(&iccid).await;
    assert_eq!((p.state, p.download_attempts), (ProfileState::Confirmed, 0));
    e.server.stop().await;
}

/// TC_SM-DP+_ES9+.GetBoundProfilePackage_ErrorCasesNIST #02: getBoundProfilePackage with a
/// transactionId (JSON) that names no session: 8.10.1/3.9.
async fn get_bpp_nist_error_02_unknown_transaction_id_in_json(dir: &Path) {
    let e = env(dir, Curve::NistP256).await;
    let (mid, iccid) = e.order(505).await;
    let card = Card::from_pki(&e.pki);
    let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    let otk = SoftwareKey::generate(card.curve).unwrap();
    let pdr = card.prepare_download(&a.tid, &a.auth, &a.sig1_tlv, otk.public_key(), None, false);
    let r: Result<smdpp_core::es9_json::GetBoundProfilePackageResponse, _> = e
        .server
        .post(
            "getBoundProfilePackage",
            serde_json::json!({
                "transactionId": "0102030405060708090A0B0C0D0E0F10",
                "prepareDownloadResponse": b64(&pdr),
            }),
        )
        .await;
    assert_code(r, &status::TRANSACTION_ID_UNKNOWN);
    assert_eq!(e.state(&iccid).await, ProfileState::Released);
    e.server.stop().await;
}

/// One interrupted attempt with the Confirmation Code: BPP delivered for `otk`, then the
/// LPA postpones (the eUICC keeps its one-time key).
async fn interrupted_with_cc(e: &Env, card: &Card, mid: &str, otk: &SoftwareKey) -> Vec<u8> {
    let a = authenticate(&e.server, card, Some(mid)).await.unwrap();
    let r = get_bpp(&e.server, card, &a, otk, Some("2468"), false)
        .await
        .unwrap();
    cancel(&e.server, &a.tid_hex, &card.cancel(&a.tid, &e.oid(), 1))
        .await
        .unwrap();
    r.bound_profile_package
}

/// TC_SM-DP+_ES9+.AuthenticateClient_RetryCases_Reuse_OTPK and
/// TC_SM-DP+_ES9+.GetBoundProfilePackage_RetryCases_ReuseOTPK_NIST #02 (S-ENC/S-MAC, with
/// Confirmation Code) and #06 (the eUICC does not take the offered otPK and sends a new
/// one, with Confirmation Code): the retry's smdpSigned2 offers the otPK of the bound BPP;
/// the same otPK gets the same segments, a new one a re-bound BPP; both install.
async fn retry_reuse_otpk_nist_02_06_with_cc(dir: &Path) {
    let e = env(dir, Curve::NistP256).await;
    let card = Card::from_pki(&e.pki);
    for (n, reuse) in [(506u32, true), (507, false)] {
        let upp = demo_upp(&format!("899990000000001{n:04}")).unwrap();
        let (mid, iccid) = e.server.add(&upp, None, Some("2468")).await;
        let otk1 = SoftwareKey::generate(card.curve).unwrap();
        let first = interrupted_with_cc(&e, &card, &mid, &otk1).await;
        assert_eq!(e.state(&iccid).await, ProfileState::Downloaded);

        let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
        let s2 = rsp_asn1::download::SmdpSigned2::decode(&a.auth.smdp_signed2).unwrap();
        assert!(s2.cc_required_flag);
        assert_eq!(
            s2.bpp_euicc_otpk.as_deref(),
            Some(otk1.public_key()),
            "the retry offers the bound otPK"
        );
        let otk = if reuse {
            otk1
        } else {
            SoftwareKey::generate(card.curve).unwrap()
        };
        let r = get_bpp(&e.server, &card, &a, &otk, Some("2468"), false)
            .await
            .unwrap();
        let (b1, b2) = (
            BoundProfilePackage::decode(&first).unwrap(),
            BoundProfilePackage::decode(&r.bound_profile_package).unwrap(),
        );
        assert_eq!(
            b1.sequence_of_86 == b2.sequence_of_86,
            reuse,
            "reuse {reuse}"
        );
        let opened = card.open(
            &r.bound_profile_package,
            &a.auth.smdp_certificate,
            &otk,
            &a.tid,
        );
        assert_eq!(opened.upp.as_slice(), upp.as_slice());
        notify(
            &e.server,
            &card.pir(&a.tid, i64::from(n), &iccid, &e.oid(), true),
        )
        .await
        .unwrap();
        assert_eq!(e.state(&iccid).await, ProfileState::Installed);
    }
    e.server.stop().await;
}

/// TC_SM-DP+_ES9+.CancelSession_After_AuthenticateClientNIST, error case: a
/// euiccCancelSessionSignature that does not verify: 8.1/6.1, nothing changes and the
/// session can still be cancelled properly.
async fn cancel_session_nist_error_invalid_signature(dir: &Path) {
    let e = env(dir, Curve::NistP256).await;
    let (mid, iccid) = e.order(508).await;
    let card = Card::from_pki(&e.pki);
    let a = authenticate(&e.server, &card, Some(&mid)).await.unwrap();
    let mut body = card.cancel(&a.tid, &e.oid(), 0);
    let last = body.len() - 1;
    body[last] ^= 0x01;
    assert_code(
        cancel(&e.server, &a.tid_hex, &body).await,
        &status::EUICC_VERIFICATION_FAILED,
    );
    assert_eq!(e.state(&iccid).await, ProfileState::Released);
    cancel(&e.server, &a.tid_hex, &card.cancel(&a.tid, &e.oid(), 0))
        .await
        .unwrap();
    assert_eq!(e.state(&iccid).await, ProfileState::Error);
    e.server.stop().await;
}

sqlite_tests!(
    initiate_authentication_nist_02_unique_transaction_id_and_challenge,
    initiate_authentication_nist_07_09_euicc_versions,
    initiate_authentication_brp_01_nominal,
    authenticate_client_nist_error_01_invalid_eum_certificate,
    authenticate_client_nist_error_02_expired_eum_certificate,
    authenticate_client_nist_error_10_unknown_transaction_id_in_euicc_signed1,
    get_bpp_nist_error_03_unknown_transaction_id_in_euicc_signed2,
    get_bpp_nist_05_store_metadata_over_two_segments,
    handle_notification_nist_04_18_pir_error_reasons,
    cancel_session_after_get_bpp_nist_each_reason,
    cancel_session_brp_after_authenticate_and_after_bpp,
    authenticate_client_nist_02_default_smdp_with_cc,
    authenticate_client_nist_03_default_smdp_second_attempt,
    authenticate_client_nist_14_18_matching_id_omitted_or_empty,
    authenticate_client_nist_error_08_profile_not_released,
    get_bpp_nist_error_02_unknown_transaction_id_in_json,
    retry_reuse_otpk_nist_02_06_with_cc,
    cancel_session_nist_error_invalid_signature,
);
