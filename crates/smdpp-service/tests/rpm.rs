//! SGP.22 v3 Remote Profile Management and deactivation, server side, over real HTTPS with a
//! hand-made eUICC (tests/common `Card`) whose every signature is real: the operator's RPM
//! order (engine of ES2+.RpmOrder), the package handed out in AuthenticateClient (signature
//! checked here with CERT.DPauth), the eUICC-signed LoadRpmPackageResult in
//! HandleNotification, CancelSession of an RPM session, and DeactivateSubscription in each
//! Table 6b state. On SQLite and (when `SMDPP_TEST_PG_URL` is set) PostgreSQL. Every negative
//! test is named `rejects_*`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;

use common::*;
use rsp_asn1::Codec;
use rsp_asn1::common::{Iccid as AsnIccid, TransactionId as AsnTid};
use rsp_asn1::notification::{NotificationMetadata, PendingNotification};
use rsp_asn1::rpm::{
    LoadRpmPackageResultDataSigned, LoadRpmPackageResultSigned, ResultForm, RpmCommandDetails,
    RpmCommandResult, RpmCommandResultData, RpmFinalResult, SmdpSigned3,
};
use rsp_crypto::{Curve, KeyCustody, SoftwareKey};
use rsp_pki::TestPki;
use serde_json::json;
use smdpp_core::es2_json::{Es2RequestHeader, Iccid};
use smdpp_core::es9_json::AuthenticateClientRpmResponse;
use smdpp_core::rpm_json::{
    DeactivateRequest, DeactivationMode, DeactivationReason, RpmCommandName, RpmCommandSpec,
    RpmOrderRequest,
};
use smdpp_core::status::{self, StatusCode};
use smdpp_service::{Es2Engine, Limits, ServiceConfig};
use smdpp_store::{
    EventRecord, Expect, NewOperator, OutboxRow, Patch, ProfileState, ProfileUpdate, RpmOrderState,
};

const OP: &str = "op-rpm";
const OTHER: &str = "op-other";

struct Env {
    pki: TestPki,
    server: Server,
}

async fn env(dir: &Path, db: &Db) -> Env {
    let (pki, s) = pki_settings(dir, db, Curve::NistP256);
    let server = Server::start(s).await;
    for id in [OP, OTHER] {
        server
            .store()
            .insert_operator(&NewOperator {
                id: id.into(),
                cert_sha256: None,
                cert_subject: None,
                callback_url: None,
                callback_ca: None,
            })
            .await
            .unwrap();
    }
    Env { pki, server }
}

impl Env {
    async fn engine(&self) -> Es2Engine {
        Es2Engine::new(
            self.server.store().clone(),
            self.server.sidecar().await,
            ServiceConfig {
                smdp_address: ADDRESS.into(),
                limits: Limits::default(),
            },
        )
    }

    fn oid(&self) -> String {
        self.pki.options.smdp_oid.clone()
    }

    /// A profile of `OP`, released.
    async fn order(&self) -> (String, String) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let upp = smdpp_service::upp::demo_upp(&format!("8999907{n:012}")).unwrap();
        let (mid, iccid) = self.server.add(&upp, None, None).await;
        self.server
            .store()
            .transition(
                &iccid,
                &Expect::any(),
                &ProfileUpdate {
                    operator_id: Patch::Set(OP.into()),
                    ..ProfileUpdate::default()
                },
                &EventRecord::by("test"),
            )
            .await
            .unwrap();
        (mid, iccid)
    }

    /// A profile of `OP` downloaded and installed on `card`.
    async fn installed(&self, card: &Card) -> String {
        let (mid, iccid) = self.order().await;
        let a = authenticate(&self.server, card, Some(&mid)).await.unwrap();
        let otk = SoftwareKey::generate(card.curve).unwrap();
        get_bpp(&self.server, card, &a, &otk, None, false)
            .await
            .unwrap();
        notify(
            &self.server,
            &card.pir(&a.tid, 1, &iccid, &self.oid(), true),
        )
        .await
        .unwrap();
        assert_eq!(
            self.server.profile(&iccid).await.state,
            ProfileState::Installed
        );
        iccid
    }

    async fn rpm(
        &self,
        operator: &str,
        iccid: &str,
        commands: &[(RpmCommandName, bool)],
    ) -> Result<String, smdpp_core::status::Es9Error> {
        let req = RpmOrderRequest {
            header: header(),
            eid: None,
            rpm_script: None,
            iccid: Iccid::parse(iccid),
            commands: Some(
                commands
                    .iter()
                    .map(|(c, k)| RpmCommandSpec {
                        command: *c,
                        continue_on_failure: *k,
                        metadata: None,
                    })
                    .collect(),
            ),
            matching_id: None,
        };
        self.engine()
            .await
            .rpm_order(operator, &req)
            .await
            .map(|r| r.matching_id)
    }

    /// AuthenticateClient asking for RPM; the answer and euiccSignature1.
    async fn ask(
        &self,
        card: &mut Card,
    ) -> Result<(AuthenticateClientRpmResponse, Vec<u8>, String), smdpp_core::status::Es9Error>
    {
        let init = initiate(&self.server, card).await?;
        card.rpm_ask = Some(None);
        let asr = card.authenticate_server(&init, None, false, None);
        card.rpm_ask = None;
        let sig1 = match rsp_asn1::auth::AuthenticateServerResponse::decode(&asr).unwrap() {
            rsp_asn1::auth::AuthenticateServerResponse::Ok(ok) => ok.euicc_signature1.clone(),
            _ => unreachable!(),
        };
        let r: AuthenticateClientRpmResponse = self
            .server
            .post(
                "authenticateClient",
                json!({
                    "transactionId": init.transaction_id.to_hex(),
                    "authenticateServerResponse": b64(&asr),
                }),
            )
            .await?;
        // smdpSignature3 over smdpSigned3 || 5F37 euiccSignature1, with CERT.DPauth's key.
        let dpauth = rsp_pki::Certificate::from_der(&init.server_certificate).unwrap();
        let tbs = rsp_asn1::rpm::smdp_signed3_tbs(&r.smdp_signed3, &sig1);
        let sig = rsp_asn1::auth::SignatureTlv::decode(&r.smdp_signature3).unwrap();
        rsp_crypto::ecdsa::verify_raw(dpauth.curve(), dpauth.public_key(), &tbs, &sig.0)
            .expect("smdpSignature3 verifies with CERT.DPauth");
        Ok((r, sig1, init.transaction_id.to_hex()))
    }
}

fn header() -> Es2RequestHeader {
    Es2RequestHeader {
        function_requester_identifier: OP.into(),
        function_call_identifier: "t".into(),
    }
}

fn rpm_card(pki: &TestPki) -> Card {
    let mut c = Card::from_pki(pki);
    c.rsp_capability = vec![0, 2];
    c
}

/// The eUICC's signed result for `tid`, with `results`, signed by `key`.
fn result(
    card: &Card,
    tid: &[u8],
    seq: i64,
    oid: &str,
    iccid: &str,
    results: RpmFinalResult,
    key: Option<&SoftwareKey>,
) -> Vec<u8> {
    let data = LoadRpmPackageResultDataSigned {
        transaction_id: AsnTid::new(tid).unwrap(),
        notification_metadata: NotificationMetadata {
            seq_number: seq,
            profile_management_operation: rsp_asn1::BitString::from_bits(&[7]),
            notification_address: ADDRESS.into(),
            iccid: AsnIccid::from_digits(iccid),
            extensions: Default::default(),
        },
        smdp_oid: rsp_asn1::prim::Oid::from_dotted(oid).unwrap(),
        final_result: results,
    };
    let tbs = LoadRpmPackageResultSigned::data_bytes(&data, ResultForm::Automatic);
    let sig = match key {
        Some(k) => k.sign(&tbs).unwrap().to_vec(),
        None => card.sign(&tbs),
    };
    PendingNotification::LoadRpmPackageResultSigned(Box::new(
        LoadRpmPackageResultSigned::from_parts(data, sig, ResultForm::Automatic),
    ))
    .encode()
}

fn ok_results(iccid: &str, n: usize) -> RpmFinalResult {
    let i = AsnIccid::from_digits(iccid);
    RpmFinalResult::ExecutionResults(
        [
            RpmCommandResultData::Disable(0),
            RpmCommandResultData::Delete(0),
        ][..n]
            .iter()
            .map(|d| RpmCommandResult {
                iccid: i,
                data: d.clone(),
            })
            .collect(),
    )
}

async fn hdpi_rows(e: &Env, iccid: &str, point: u32) -> Vec<OutboxRow> {
    e.server
        .store()
        .list_outbox(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.iccid.as_deref() == Some(iccid))
        .filter(|r| {
            serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["notificationPointId"]
                == point
        })
        .collect()
}

fn assert_es2(r: Result<String, smdpp_core::status::Es9Error>, code: &StatusCode) {
    match r {
        Ok(v) => panic!("expected {code}, got {v}"),
        Err(e) => assert_eq!(&e.code, code, "{}", e.message),
    }
}

// ------------------------------------------------------------------------- tests

async fn rpm_disable_delete_end_to_end(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let mut card = rpm_card(&e.pki);
    let iccid = e.installed(&card).await;
    let mid = e
        .rpm(
            OP,
            &iccid,
            &[
                (RpmCommandName::Disable, true),
                (RpmCommandName::Delete, false),
            ],
        )
        .await
        .unwrap();
    let (r, _sig1, tid) = e.ask(&mut card).await.unwrap();
    let signed3 = SmdpSigned3::decode(&r.smdp_signed3).unwrap();
    assert_eq!(hex::encode_upper(signed3.transaction_id.as_bytes()), tid);
    assert!(!signed3.rpm_pending);
    let cmds = &signed3.rpm_package.0;
    assert_eq!(cmds.len(), 2);
    assert!(cmds[0].continue_on_failure);
    assert!(matches!(cmds[0].details, RpmCommandDetails::Disable { .. }));
    assert!(matches!(cmds[1].details, RpmCommandDetails::Delete { .. }));
    let o = e.server.store().get_rpm_order(&mid).await.unwrap().unwrap();
    assert_eq!(o.state, RpmOrderState::Delivered);
    assert_eq!(o.transaction_id.as_deref(), Some(tid.as_str()));

    let res = result(
        &card,
        signed3.transaction_id.as_bytes(),
        7,
        &e.oid(),
        &iccid,
        ok_results(&iccid, 2),
        None,
    );
    notify(&e.server, &res).await.unwrap();
    let o = e.server.store().get_rpm_order(&mid).await.unwrap().unwrap();
    assert_eq!(o.state, RpmOrderState::Executed);
    assert_eq!(
        o.result_summary.as_deref(),
        Some(format!("disable {iccid}: ok; delete {iccid}: ok").as_str())
    );
    assert_eq!(o.result.as_deref(), Some(res.as_slice()));
    let rows = hdpi_rows(&e, &iccid, 103).await;
    assert_eq!(rows.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&rows[0].body).unwrap();
    assert_eq!(
        body["notificationPointStatus"]["status"],
        "Executed-Success"
    );
    assert_eq!(body["resultData"], b64(&res));
    let events = e.server.store().events_for(&iccid).await.unwrap();
    assert!(
        events
            .iter()
            .any(|ev| ev.cause.as_deref() == Some("rpm ordered: disable,delete"))
    );
    assert!(
        events
            .iter()
            .any(|ev| ev.cause.as_deref() == Some("rpm executed: disable,delete"))
    );

    // Replayed result: acknowledged, nothing changes.
    notify(&e.server, &res).await.unwrap();
    assert_eq!(hdpi_rows(&e, &iccid, 103).await.len(), 1);
    // Nothing more waits.
    assert_code(
        e.ask(&mut card).await.map(|_| ()),
        &status::MATCHING_ID_REFUSED,
    );
    e.server.stop().await;
}

async fn rejects_forged_replayed_and_foreign_results(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let mut card = rpm_card(&e.pki);
    let iccid = e.installed(&card).await;
    let mid = e
        .rpm(OP, &iccid, &[(RpmCommandName::Disable, false)])
        .await
        .unwrap();
    let (r, _, _) = e.ask(&mut card).await.unwrap();
    let tid = SmdpSigned3::decode(&r.smdp_signed3)
        .unwrap()
        .transaction_id
        .as_bytes()
        .to_vec();
    let delivered = || async {
        e.server
            .store()
            .get_rpm_order(&mid)
            .await
            .unwrap()
            .unwrap()
            .state
    };
    // Forged: signed by another key.
    let other = SoftwareKey::generate(Curve::NistP256).unwrap();
    let forged = result(
        &card,
        &tid,
        8,
        &e.oid(),
        &iccid,
        ok_results(&iccid, 1),
        Some(&other),
    );
    notify(&e.server, &forged).await.unwrap();
    assert_eq!(delivered().await, RpmOrderState::Delivered);
    // For another transaction.
    let foreign = result(
        &card,
        &[9u8; 16],
        9,
        &e.oid(),
        &iccid,
        ok_results(&iccid, 1),
        None,
    );
    notify(&e.server, &foreign).await.unwrap();
    assert_eq!(delivered().await, RpmOrderState::Delivered);
    // For another SM-DP+ OID.
    let wrong_oid = result(
        &card,
        &tid,
        10,
        "2.999.77",
        &iccid,
        ok_results(&iccid, 1),
        None,
    );
    notify(&e.server, &wrong_oid).await.unwrap();
    assert_eq!(delivered().await, RpmOrderState::Delivered);
    // A failure result ends the order as failed, once.
    let failed = result(
        &card,
        &tid,
        11,
        &e.oid(),
        &iccid,
        RpmFinalResult::ExecutionResults(vec![RpmCommandResult {
            iccid: AsnIccid::from_digits(&iccid),
            data: RpmCommandResultData::Disable(2),
        }]),
        None,
    );
    notify(&e.server, &failed).await.unwrap();
    assert_eq!(delivered().await, RpmOrderState::Failed);
    let rows = hdpi_rows(&e, &iccid, 103).await;
    assert_eq!(rows.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&rows[0].body).unwrap();
    assert_eq!(body["notificationPointStatus"]["status"], "Failed");
    // Replayed success after the failure: nothing changes.
    let late = result(
        &card,
        &tid,
        12,
        &e.oid(),
        &iccid,
        ok_results(&iccid, 1),
        None,
    );
    notify(&e.server, &late).await.unwrap();
    assert_eq!(delivered().await, RpmOrderState::Failed);
    assert_eq!(hdpi_rows(&e, &iccid, 103).await.len(), 1);
    e.server.stop().await;
}

async fn rejects_rpm_orders(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let card = rpm_card(&e.pki);
    let iccid = e.installed(&card).await;
    // Another operator's profile, and an unknown ICCID: the same code.
    assert_es2(
        e.rpm(OTHER, &iccid, &[(RpmCommandName::Disable, false)])
            .await,
        &status::ICCID_UNKNOWN,
    );
    assert_es2(
        e.rpm(
            OP,
            "8999999999999999999",
            &[(RpmCommandName::Disable, false)],
        )
        .await,
        &status::ICCID_UNKNOWN,
    );
    // A profile not on an eUICC.
    let (_, released) = e.order().await;
    assert_es2(
        e.rpm(OP, &released, &[(RpmCommandName::Enable, false)])
            .await,
        &status::ICCID_INVALID_TRANSITION,
    );
    // A v2-only eUICC (no rpmSupport announced).
    let mut v2card = Card::from_pki(&e.pki);
    v2card.rsp_capability = vec![0];
    let e2_iccid = {
        // Re-use the same card identity on a fresh profile: the capabilities recorded at
        // installation are replaced by the last session's (no RPM).
        e.installed(&v2card).await
    };
    assert_es2(
        e.rpm(OP, &e2_iccid, &[(RpmCommandName::Disable, false)])
            .await,
        &status::EID_REFUSED,
    );
    // No order was stored for any of these.
    assert!(
        e.server
            .store()
            .rpm_orders_for(&iccid)
            .await
            .unwrap()
            .is_empty()
    );
    // An LPA asking for RPM for a v2 eUICC is refused 8.1.1/3.8; a v2 LPA never asks.
    let mut asking_v2 = v2card;
    assert_code(
        e.ask(&mut asking_v2).await.map(|_| ()),
        &status::EID_REFUSED,
    );
    e.server.stop().await;
}

async fn cancel_session_of_an_rpm_session(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let mut card = rpm_card(&e.pki);
    let iccid = e.installed(&card).await;
    let mid = e
        .rpm(OP, &iccid, &[(RpmCommandName::Disable, false)])
        .await
        .unwrap();
    let state = || async {
        e.server
            .store()
            .get_rpm_order(&mid)
            .await
            .unwrap()
            .unwrap()
            .state
    };
    // postponed(1): back to pending, handed out again.
    let (r, _, tid) = e.ask(&mut card).await.unwrap();
    let tidb = SmdpSigned3::decode(&r.smdp_signed3).unwrap().transaction_id;
    cancel(&e.server, &tid, &card.cancel(tidb.as_bytes(), &e.oid(), 1))
        .await
        .unwrap();
    assert_eq!(state().await, RpmOrderState::Pending);
    // endUserRejection(0): cancelled and reported.
    let (r, _, tid) = e.ask(&mut card).await.unwrap();
    let tidb = SmdpSigned3::decode(&r.smdp_signed3).unwrap().transaction_id;
    cancel(&e.server, &tid, &card.cancel(tidb.as_bytes(), &e.oid(), 0))
        .await
        .unwrap();
    assert_eq!(state().await, RpmOrderState::Cancelled);
    assert_eq!(hdpi_rows(&e, &iccid, 103).await.len(), 1);
    assert_code(
        e.ask(&mut card).await.map(|_| ()),
        &status::MATCHING_ID_REFUSED,
    );
    e.server.stop().await;
}

async fn deactivate(
    e: &Env,
    iccid: &str,
    mode: DeactivationMode,
) -> Result<(String, String), StatusCode> {
    e.engine()
        .await
        .deactivate(
            OP,
            &DeactivateRequest {
                header: header(),
                iccid: Iccid::parse(iccid).unwrap(),
                reason: DeactivationReason::Stolen,
                mode,
            },
        )
        .await
        .map(|r| (r.action, r.state))
        .map_err(|e| e.code)
}

async fn deactivation_in_each_state(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let card = rpm_card(&e.pki);
    // Released: the order is cancelled, the profile returns to the inventory.
    let (_, released) = e.order().await;
    assert_eq!(
        deactivate(&e, &released, DeactivationMode::Disable)
            .await
            .unwrap(),
        ("orderCancelled".into(), "available".into())
    );
    assert_eq!(hdpi_rows(&e, &released, 104).await.len(), 1);
    let body: serde_json::Value =
        serde_json::from_str(&hdpi_rows(&e, &released, 104).await[0].body).unwrap();
    assert_eq!(body["deactivationReason"], "stolen");
    // Available now: nothing to deactivate.
    assert_eq!(
        deactivate(&e, &released, DeactivationMode::Disable).await,
        Err(status::ICCID_INVALID_TRANSITION)
    );
    // Downloaded (no result yet): retired.
    let (mid, downloaded) = e.order().await;
    let a = authenticate(&e.server, &card_for_download(&e.pki), Some(&mid))
        .await
        .unwrap();
    let otk = SoftwareKey::generate(Curve::NistP256).unwrap();
    get_bpp(&e.server, &card_for_download(&e.pki), &a, &otk, None, false)
        .await
        .unwrap();
    assert_eq!(
        deactivate(&e, &downloaded, DeactivationMode::Delete)
            .await
            .unwrap(),
        ("retired".into(), "unavailable".into())
    );
    // Installed on an RPM eUICC: an RPM disable + delete is queued.
    let installed = e.installed(&card).await;
    let (action, state) = deactivate(&e, &installed, DeactivationMode::Delete)
        .await
        .unwrap();
    assert_eq!(
        (action.as_str(), state.as_str()),
        ("rpmQueued", "installed")
    );
    let orders = e.server.store().rpm_orders_for(&installed).await.unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].commands, "disable,delete");
    assert_eq!(orders[0].origin, "deactivation:stolen");
    assert_eq!(hdpi_rows(&e, &installed, 104).await.len(), 1);
    // Installed on a v2 eUICC: recorded and notified only.
    let mut v2 = Card::from_pki(&e.pki);
    v2.rsp_capability = vec![0];
    let on_v2 = e.installed(&v2).await;
    assert_eq!(
        deactivate(&e, &on_v2, DeactivationMode::Disable)
            .await
            .unwrap(),
        ("recorded".into(), "installed".into())
    );
    assert!(
        e.server
            .store()
            .rpm_orders_for(&on_v2)
            .await
            .unwrap()
            .is_empty()
    );
    // Error: retired.
    let (mid, failed) = e.order().await;
    let c = card_for_download(&e.pki);
    let a = authenticate(&e.server, &c, Some(&mid)).await.unwrap();
    let otk = SoftwareKey::generate(Curve::NistP256).unwrap();
    get_bpp(&e.server, &c, &a, &otk, None, false).await.unwrap();
    notify(&e.server, &c.pir(&a.tid, 50, &failed, &e.oid(), false))
        .await
        .unwrap();
    assert_eq!(e.server.profile(&failed).await.state, ProfileState::Error);
    assert_eq!(
        deactivate(&e, &failed, DeactivationMode::Disable)
            .await
            .unwrap(),
        ("retired".into(), "unavailable".into())
    );
    // Unavailable: refused.
    assert_eq!(
        deactivate(&e, &failed, DeactivationMode::Disable).await,
        Err(status::ICCID_INVALID_TRANSITION)
    );
    e.server.stop().await;
}

fn card_for_download(pki: &TestPki) -> Card {
    let mut c = Card::from_pki(pki);
    c.rsp_capability = vec![0, 2];
    c
}

both_backends!(
    rpm_disable_delete_end_to_end,
    rejects_forged_replayed_and_foreign_results,
    rejects_rpm_orders,
    cancel_session_of_an_rpm_session,
    deactivation_in_each_state,
);
