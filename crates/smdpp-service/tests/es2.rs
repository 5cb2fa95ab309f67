//! ES2+ end to end over REAL mutual-TLS HTTPS (operator client certificates generated with
//! rcgen), on SQLite and (when `SMDPP_TEST_PG_URL` is set) PostgreSQL: the download
//! initiation use cases of SGP.22 section 3.1.1 with the virtual eUICC of `crates/euicc-sim`,
//! the section 3.1.6 state machine (every valid and invalid transition), tenant isolation,
//! limits, functionCallIdentifier replay, client authentication and concurrency. Every
//! negative test is named `rejects_*`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use euicc_sim::lpa::{DownloadOptions, Lpa, Step};
use rsp_crypto::Curve;
use rsp_pki::TestPki;
use serde_json::{Value, json};
use smdpp_core::status::{self, StatusCode};
use smdpp_service::inventory::import_inventory;
use smdpp_service::operators::add_operator;
use smdpp_service::upp::demo_upp;
use smdpp_store::{EventRecord, Expect, ProfileState, ProfileUpdate};

struct Env {
    pki: TestPki,
    server: Server,
    lpa: Lpa,
    op_a: ClientCert,
    op_b: ClientCert,
}

static ICCIDS: AtomicU64 = AtomicU64::new(0);

fn next_iccid() -> String {
    format!("8999901{:012}", ICCIDS.fetch_add(1, Ordering::Relaxed))
}

async fn env_with(
    dir: &Path,
    db: &Db,
    tweak: impl FnOnce(&mut smdpp_service::assembly::Settings),
) -> Env {
    let (pki, mut s) = pki_settings(dir, db, Curve::NistP256);
    tweak(&mut s);
    let server = Server::start_lpa(s).await;
    let lpa = sim_lpa(&[&pki]);
    let op_a = client_cert("operator-a.example");
    let op_b = client_cert("operator-b.example");
    add_operator(server.store(), "op-a", &op_a.cert_der, None)
        .await
        .unwrap();
    add_operator(
        server.store(),
        "op-b",
        &op_b.cert_der,
        Some("https://op-b.example/es2".into()),
    )
    .await
    .unwrap();
    Env {
        pki,
        server,
        lpa,
        op_a,
        op_b,
    }
}

async fn env(dir: &Path, db: &Db) -> Env {
    env_with(dir, db, |_| {}).await
}

impl Env {
    fn ac(&self, mid: &str) -> String {
        format!("LPA:1${}${mid}", self.server.address())
    }

    /// Imports `n` Available profiles of `profile_type` for `operator`.
    async fn inventory(&self, operator: &str, profile_type: &str, n: usize) -> Vec<String> {
        let side = self.server.sidecar().await;
        let mut out = vec![];
        for _ in 0..n {
            let upp = demo_upp(&next_iccid()).unwrap();
            out.push(
                import_inventory(
                    self.server.store(),
                    &side,
                    self.server.factory(),
                    operator,
                    &upp,
                    profile_type,
                    "Test SP",
                    None,
                )
                .await
                .unwrap(),
            );
        }
        side.close().await;
        out
    }

    /// Raw ES2+ call: (HTTP status, response JSON).
    async fn raw(&self, function: &str, body: &str, client: Option<&ClientCert>) -> (u16, Value) {
        let (st, bytes) = es2_request(&self.server, function, body, client).await;
        (st, serde_json::from_slice(&bytes).unwrap())
    }

    /// An ES2+ call as `operator` ("op-a"/"op-b") with a fresh functionCallIdentifier.
    async fn call(&self, operator: &str, function: &str, body: Value) -> Value {
        let cert = if operator == "op-a" {
            &self.op_a
        } else {
            &self.op_b
        };
        es2_call(&self.server, operator, cert, function, body).await
    }

    async fn state(&self, iccid: &str) -> (ProfileState, i64) {
        let p = self.server.profile(iccid).await;
        (p.state, p.version)
    }

    /// Puts a fresh profile of op-a into `state` (ES9+ states are set through the store).
    async fn profile_in(&self, state: ProfileState) -> String {
        let iccid = self.inventory("op-a", "T", 1).await.remove(0);
        let id = iccid.clone();
        let go = |st| async move {
            self.server
                .store()
                .transition(
                    &id,
                    &Expect::any(),
                    &ProfileUpdate::to_state(st),
                    &EventRecord::by("test"),
                )
                .await
                .unwrap();
        };
        match state {
            ProfileState::Available => {}
            ProfileState::Allocated => {
                ok(&self
                    .call("op-a", "downloadOrder", json!({"iccid": iccid}))
                    .await);
            }
            ProfileState::Linked => {
                ok(&self
                    .call(
                        "op-a",
                        "downloadOrder",
                        json!({"iccid": iccid, "eid": eid()}),
                    )
                    .await);
            }
            ProfileState::Confirmed | ProfileState::Released => {
                ok(&self
                    .call("op-a", "downloadOrder", json!({"iccid": iccid}))
                    .await);
                ok(&self
                    .call(
                        "op-a",
                        "confirmOrder",
                        json!({"iccid": iccid,
                            "releaseFlag": state == ProfileState::Released}),
                    )
                    .await);
            }
            other => go(other).await,
        }
        assert_eq!(self.state(&iccid).await.0, state);
        iccid
    }
}

/// A valid EID (check digits right) that is not the virtual eUICC's.
fn eid() -> String {
    let base = "890490320000000000000000000012";
    let rem = format!("{base}00")
        .bytes()
        .fold(0u32, |acc, b| (acc * 10 + u32::from(b - b'0')) % 97);
    format!("{base}{:02}", 98 - rem)
}

/// 32 digits with wrong check digits.
fn bad_eid() -> String {
    let good = eid();
    let last = good.as_bytes()[31] - b'0';
    format!("{}{}", &good[..31], (last + 1) % 10)
}

fn ok(v: &Value) {
    assert_eq!(
        v["header"]["functionExecutionStatus"]["status"], "Executed-Success",
        "{v}"
    );
}

fn code(v: &Value) -> StatusCode {
    let d = &v["header"]["functionExecutionStatus"]["statusCodeData"];
    assert_eq!(
        v["header"]["functionExecutionStatus"]["status"], "Failed",
        "{v}"
    );
    StatusCode::parse(
        d["subjectCode"].as_str().unwrap(),
        d["reasonCode"].as_str().unwrap(),
    )
    .unwrap()
}

fn assert_code(v: &Value, want: &StatusCode) {
    assert_eq!(&code(v), want, "{v}");
}

/// The message of a failed response.
fn message(v: &Value) -> &str {
    v["header"]["functionExecutionStatus"]["statusCodeData"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {v}"))
}

/// The refusal message of `function` (e.g. `ConfirmOrder`) for a profile in `state`.
fn refused_message(function: &str, state: ProfileState) -> String {
    format!("ES2+.{function} is not allowed for a Profile in state {state}")
}

// ------------------------------------------------------------------------------- use cases

/// Table 6a use case "Activation Code": DownloadOrder (type, no EID) → ConfirmOrder
/// (releaseFlag=true) → the device downloads with the Activation Code → Installed.
async fn activation_code_use_case(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    e.inventory("op-a", "T1", 2).await;
    let r = e
        .call("op-a", "downloadOrder", json!({"profileType": "T1"}))
        .await;
    ok(&r);
    let iccid = r["iccid"].as_str().unwrap().to_owned();
    assert_eq!(e.state(&iccid).await.0, ProfileState::Allocated);
    let r = e
        .call(
            "op-a",
            "confirmOrder",
            json!({"iccid": iccid, "releaseFlag": true}),
        )
        .await;
    ok(&r);
    let mid = r["matchingId"].as_str().unwrap().to_owned();
    assert!(mid.len() >= 25, "generated MatchingID of >= 125 bits");
    assert_eq!(r["smdpAddress"], e.server.address());
    assert!(r.get("eid").is_none());
    assert_eq!(e.state(&iccid).await.0, ProfileState::Released);

    let mut euicc = sim_euicc(&e.pki);
    let out = e
        .lpa
        .download(&mut euicc, &e.ac(&mid), &DownloadOptions::default())
        .await
        .unwrap();
    assert!(out.notification_sent);
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Installed);
    assert_eq!(p.eid.as_deref(), Some(euicc.eid()));
    let states: Vec<_> = e
        .server
        .store()
        .events_for(&iccid)
        .await
        .unwrap()
        .iter()
        .map(|ev| ev.to_state)
        .collect();
    assert!(states.starts_with(&[
        ProfileState::Available,
        ProfileState::Allocated,
        ProfileState::Released
    ]));
    assert_eq!(states.last(), Some(&ProfileState::Installed));
    e.server.stop().await;
}

/// Default SM-DP+ (section 3.1.1): the EID in DownloadOrder, an empty MatchingID, and the
/// device downloads with an Activation Code without MatchingID.
async fn default_smdp_use_case(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let iccid = e.inventory("op-a", "T1", 1).await.remove(0);
    let mut euicc = sim_euicc(&e.pki);
    let r = e
        .call(
            "op-a",
            "downloadOrder",
            json!({"iccid": format!("{iccid}F"), "eid": euicc.eid()}),
        )
        .await;
    ok(&r);
    assert_eq!(r["iccid"], iccid);
    assert_eq!(e.state(&iccid).await.0, ProfileState::Linked);
    let r = e
        .call(
            "op-a",
            "confirmOrder",
            json!({"iccid": iccid, "matchingId": "", "releaseFlag": false}),
        )
        .await;
    ok(&r);
    assert_eq!(r["matchingId"], "");
    assert_eq!(r["eid"], euicc.eid());
    assert_eq!(e.state(&iccid).await.0, ProfileState::Confirmed);
    ok(&e
        .call("op-a", "releaseProfile", json!({"iccid": iccid}))
        .await);
    e.lpa
        .download(&mut euicc, &e.ac(""), &DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!(e.state(&iccid).await.0, ProfileState::Installed);
    e.server.stop().await;
}

// ------------------------------------------------------------------------ state machine

/// Every function in every state: the valid transitions succeed, the invalid ones fail with
/// their code and change nothing (same state, same version).
async fn state_machine(dir: &Path, db: &Db) {
    use ProfileState::*;
    let e = env(dir, db).await;
    let all = [
        Available,
        Allocated,
        Linked,
        Confirmed,
        Released,
        Downloaded,
        Installed,
        Error,
        Unavailable,
    ];
    for from in all {
        // DownloadOrder by ICCID.
        let iccid = e.profile_in(from).await;
        let before = e.state(&iccid).await;
        let r = e
            .call("op-a", "downloadOrder", json!({"iccid": iccid}))
            .await;
        if from == Available {
            ok(&r);
            assert_eq!(e.state(&iccid).await.0, Allocated);
        } else {
            assert_code(&r, &status::ICCID_ALREADY_IN_USE);
            assert_eq!(e.state(&iccid).await, before, "DownloadOrder from {from}");
        }

        // ConfirmOrder, both release flags.
        for release in [false, true] {
            let iccid = e.profile_in(from).await;
            let before = e.state(&iccid).await;
            let r = e
                .call(
                    "op-a",
                    "confirmOrder",
                    json!({"iccid": iccid, "releaseFlag": release}),
                )
                .await;
            if matches!(from, Allocated | Linked) {
                ok(&r);
                let want = if release { Released } else { Confirmed };
                assert_eq!(e.state(&iccid).await.0, want);
            } else {
                assert_code(&r, &status::ICCID_INVALID_TRANSITION);
                assert_eq!(message(&r), refused_message("ConfirmOrder", from));
                assert_eq!(e.state(&iccid).await, before, "ConfirmOrder from {from}");
            }
        }

        // ReleaseProfile.
        let iccid = e.profile_in(from).await;
        let before = e.state(&iccid).await;
        let r = e
            .call("op-a", "releaseProfile", json!({"iccid": iccid}))
            .await;
        match from {
            Confirmed => {
                ok(&r);
                assert_eq!(e.state(&iccid).await.0, Released);
            }
            Released => {
                // Section 5.3.4 NOTE: success, no other action.
                ok(&r);
                assert_eq!(e.state(&iccid).await, before);
            }
            _ => {
                assert_code(&r, &status::ICCID_INVALID_TRANSITION);
                assert_eq!(message(&r), refused_message("ReleaseProfile", from));
                assert_eq!(e.state(&iccid).await, before, "ReleaseProfile from {from}");
            }
        }

        // CancelOrder with both indicators.
        for fin in ["Available", "Unavailable"] {
            let iccid = e.profile_in(from).await;
            let before = e.state(&iccid).await;
            let r = e
                .call(
                    "op-a",
                    "cancelOrder",
                    json!({"iccid": iccid, "finalProfileStatusIndicator": fin}),
                )
                .await;
            // Figure 15 (section 3.1.6): the pending-order states and Error.
            let allowed = matches!(from, Allocated | Linked | Confirmed | Released | Error);
            if allowed {
                ok(&r);
                let p = e.server.profile(&iccid).await;
                if fin == "Available" {
                    assert_eq!(p.state, Available);
                    assert!(p.eid.is_none() && p.matching_id.is_none() && p.cc_hash.is_none());
                } else {
                    assert_eq!(p.state, Unavailable);
                }
            } else {
                let want = if matches!(from, Downloaded | Installed) {
                    status::ICCID_ALREADY_IN_USE
                } else {
                    status::ICCID_INVALID_TRANSITION
                };
                assert_code(&r, &want);
                assert_eq!(message(&r), refused_message("CancelOrder", from));
                assert_eq!(
                    e.state(&iccid).await,
                    before,
                    "CancelOrder({fin}) from {from}"
                );
            }
        }
    }
    e.server.stop().await;
}

/// Profile-type selection and the EID / MatchingID consistency codes.
async fn rejects_inconsistent_orders(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    e.inventory("op-a", "T1", 1).await;
    let iccid = e.inventory("op-a", "T2", 1).await.remove(0);
    // Unknown type / none left / ICCID and type not aligned.
    assert_code(
        &e.call("op-a", "downloadOrder", json!({"profileType": "NOPE"}))
            .await,
        &status::PROFILE_TYPE_UNKNOWN,
    );
    ok(&e
        .call("op-a", "downloadOrder", json!({"profileType": "T1"}))
        .await);
    assert_code(
        &e.call("op-a", "downloadOrder", json!({"profileType": "T1"}))
            .await,
        &status::PROFILE_TYPE_UNAVAILABLE,
    );
    assert_code(
        &e.call(
            "op-a",
            "downloadOrder",
            json!({"iccid": iccid, "profileType": "T1"}),
        )
        .await,
        &status::PROFILE_TYPE_REFUSED,
    );
    assert_code(
        &e.call(
            "op-a",
            "downloadOrder",
            json!({"iccid": "8999999999999999999"}),
        )
        .await,
        &status::ICCID_UNKNOWN,
    );
    // Linked with one EID; ConfirmOrder with another: 8.1.1/3.10, nothing changed.
    ok(&e
        .call(
            "op-a",
            "downloadOrder",
            json!({"iccid": iccid, "eid": eid()}),
        )
        .await);
    let before = e.state(&iccid).await;
    let sim = sim_euicc(&e.pki);
    assert_code(
        &e.call(
            "op-a",
            "confirmOrder",
            json!({"iccid": iccid, "eid": sim.eid(), "releaseFlag": true}),
        )
        .await,
        &status::EID_INVALID_ASSOCIATION,
    );
    assert_eq!(e.state(&iccid).await, before);
    // Default SM-DP+ / SM-DS without EID: 8.1.1/2.2.
    let iccid2 = e.inventory("op-a", "T3", 1).await.remove(0);
    ok(&e
        .call("op-a", "downloadOrder", json!({"iccid": iccid2}))
        .await);
    assert_code(
        &e.call(
            "op-a",
            "confirmOrder",
            json!({"iccid": iccid2, "matchingId": "", "releaseFlag": true}),
        )
        .await,
        &status::EID_MISSING,
    );
    assert_code(
        &e.call(
            "op-a",
            "confirmOrder",
            json!({"iccid": iccid2, "smdsAddress": "smds.example.com", "releaseFlag": true}),
        )
        .await,
        &status::EID_MISSING,
    );
    // MatchingID uniqueness: 8.2.6/3.3.
    ok(&e
        .call(
            "op-a",
            "confirmOrder",
            json!({"iccid": iccid, "matchingId": "MY-ID-1", "confirmationCode": "1234",
                "smdsAddress": "smds.example.com", "releaseFlag": false}),
        )
        .await);
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.smds_address.as_deref(), Some("smds.example.com"));
    assert_eq!(p.cc_hash.as_ref().map(Vec::len), Some(32));
    assert_eq!(p.cc_attempt_limit, Some(3));
    assert_eq!(p.download_attempt_limit, Some(5));
    let before2 = e.state(&iccid2).await;
    assert_code(
        &e.call(
            "op-a",
            "confirmOrder",
            json!({"iccid": iccid2, "matchingId": "MY-ID-1", "releaseFlag": true}),
        )
        .await,
        &status::MATCHING_ID_ALREADY_IN_USE,
    );
    assert_eq!(e.state(&iccid2).await, before2);
    // CancelOrder with another EID / MatchingID: 8.2.1/3.10, 8.2.6/3.10.
    let before = e.state(&iccid).await;
    assert_code(
        &e.call(
            "op-a",
            "cancelOrder",
            json!({"iccid": iccid, "eid": sim.eid(), "finalProfileStatusIndicator": "Available"}),
        )
        .await,
        &status::ICCID_INVALID_ASSOCIATION,
    );
    assert_code(
        &e.call(
            "op-a",
            "cancelOrder",
            json!({"iccid": iccid, "matchingId": "OTHER", "finalProfileStatusIndicator": "Available"}),
        )
        .await,
        &status::MATCHING_ID_INVALID_ASSOCIATION,
    );
    assert_eq!(e.state(&iccid).await, before);
    ok(&e
        .call(
            "op-a",
            "cancelOrder",
            json!({"iccid": iccid, "eid": eid(), "matchingId": "MY-ID-1",
                "finalProfileStatusIndicator": "Available"}),
        )
        .await);
    e.server.stop().await;
}

/// Figure 15 (section 3.1.6): an order that ended in Error over ES9+ (Confirmation Code
/// retries exceeded, EID and MatchingID bound) is cancelled back to the inventory
/// (Available, order data cleared, re-orderable); another one is retired (Unavailable).
/// Each change is one event from Error with the CancelOrder cause.
async fn cancel_order_from_error(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    for fin in ["Available", "Unavailable"] {
        let iccid = e.inventory("op-a", "T", 1).await.remove(0);
        let mut euicc = sim_euicc(&e.pki);
        ok(&e
            .call(
                "op-a",
                "downloadOrder",
                json!({"iccid": iccid, "eid": euicc.eid()}),
            )
            .await);
        let r = e
            .call(
                "op-a",
                "confirmOrder",
                json!({"iccid": iccid, "confirmationCode": "4711", "releaseFlag": true}),
            )
            .await;
        ok(&r);
        let mid = r["matchingId"].as_str().unwrap().to_owned();
        let ac = format!("{}$$1", e.ac(&mid));
        let wrong = DownloadOptions {
            confirmation_code: Some("0000".into()),
            ..DownloadOptions::default()
        };
        for _ in 0..4 {
            assert!(e.lpa.download(&mut euicc, &ac, &wrong).await.is_err());
        }
        let p = e.server.profile(&iccid).await;
        assert_eq!(p.state, ProfileState::Error);
        assert_eq!(p.eid.as_deref(), Some(euicc.eid()));
        let events_before = e.server.store().events_for(&iccid).await.unwrap().len();

        ok(&e
            .call(
                "op-a",
                "cancelOrder",
                json!({"iccid": iccid, "eid": euicc.eid(), "matchingId": mid,
                    "finalProfileStatusIndicator": fin}),
            )
            .await);
        let p = e.server.profile(&iccid).await;
        let events = e.server.store().events_for(&iccid).await.unwrap();
        assert_eq!(events.len(), events_before + 1, "one event");
        let last = events.last().unwrap();
        assert_eq!(last.from_state, Some(ProfileState::Error));
        assert_eq!(last.actor, "es2:op-a");
        assert_eq!(
            last.cause.as_deref(),
            Some(format!("CancelOrder finalProfileStatusIndicator={fin}").as_str())
        );
        if fin == "Available" {
            assert_eq!(p.state, ProfileState::Available);
            assert_eq!(last.to_state, ProfileState::Available);
            assert!(p.eid.is_none() && p.matching_id.is_none() && p.cc_hash.is_none());
            assert_eq!((p.cc_attempts, p.download_attempts), (0, 0));
            assert_eq!(p.error_cause, None);
            // Back in the inventory: it can be ordered again.
            ok(&e
                .call("op-a", "downloadOrder", json!({"iccid": iccid}))
                .await);
            assert_eq!(e.state(&iccid).await.0, ProfileState::Allocated);
        } else {
            assert_eq!(p.state, ProfileState::Unavailable);
            assert_eq!(last.to_state, ProfileState::Unavailable);
            assert_code(
                &e.call("op-a", "downloadOrder", json!({"iccid": iccid}))
                    .await,
                &status::ICCID_ALREADY_IN_USE,
            );
        }
    }
    e.server.stop().await;
}

/// A refusal because of the profile's state names the function that refused, not
/// ReleaseProfile's Table 32 text ("cannot be released") nor DownloadOrder's Table 24 one.
async fn rejects_state_with_the_functions_own_message(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let msg = |v: &Value| message(v).to_owned();
    let confirmed = e.profile_in(ProfileState::Confirmed).await;
    let r = e
        .call(
            "op-a",
            "confirmOrder",
            json!({"iccid": confirmed, "releaseFlag": true}),
        )
        .await;
    assert_code(&r, &status::ICCID_INVALID_TRANSITION);
    assert_eq!(
        msg(&r),
        "ES2+.ConfirmOrder is not allowed for a Profile in state confirmed"
    );
    let allocated = e.profile_in(ProfileState::Allocated).await;
    let r = e
        .call("op-a", "releaseProfile", json!({"iccid": allocated}))
        .await;
    assert_code(&r, &status::ICCID_INVALID_TRANSITION);
    assert_eq!(
        msg(&r),
        "ES2+.ReleaseProfile is not allowed for a Profile in state allocated"
    );
    let available = e.profile_in(ProfileState::Available).await;
    let r = e
        .call(
            "op-a",
            "cancelOrder",
            json!({"iccid": available, "finalProfileStatusIndicator": "Available"}),
        )
        .await;
    assert_code(&r, &status::ICCID_INVALID_TRANSITION);
    assert_eq!(
        msg(&r),
        "ES2+.CancelOrder is not allowed for a Profile in state available"
    );
    let installed = e.profile_in(ProfileState::Installed).await;
    let r = e
        .call(
            "op-a",
            "cancelOrder",
            json!({"iccid": installed, "finalProfileStatusIndicator": "Unavailable"}),
        )
        .await;
    assert_code(&r, &status::ICCID_ALREADY_IN_USE);
    assert_eq!(
        msg(&r),
        "ES2+.CancelOrder is not allowed for a Profile in state installed"
    );
    for (iccid, state) in [
        (&confirmed, ProfileState::Confirmed),
        (&allocated, ProfileState::Allocated),
        (&available, ProfileState::Available),
        (&installed, ProfileState::Installed),
    ] {
        let events = e.server.store().events_for(iccid).await.unwrap();
        assert_eq!(e.state(iccid).await.0, state, "a refusal changes nothing");
        assert_eq!(
            events.last().unwrap().to_state,
            state,
            "and writes no event"
        );
    }
    e.server.stop().await;
}

// -------------------------------------------------------------------------------- tenants

/// Operator B cannot see or touch A's profile: exactly the answer for an unknown ICCID.
async fn rejects_other_operators_profile(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let free = e.inventory("op-a", "TA", 1).await.remove(0);
    let ordered = e.profile_in(ProfileState::Confirmed).await;
    let unknown = "8999999999999999999";
    for iccid in [&free, &ordered] {
        let before = e.state(iccid).await;
        for (f, body) in [
            ("downloadOrder", json!({"iccid": iccid})),
            ("confirmOrder", json!({"iccid": iccid, "releaseFlag": true})),
            ("releaseProfile", json!({"iccid": iccid})),
            (
                "cancelOrder",
                json!({"iccid": iccid, "finalProfileStatusIndicator": "Unavailable"}),
            ),
        ] {
            let theirs = e.call("op-b", f, body.clone()).await;
            let mut body_unknown = body.clone();
            body_unknown["iccid"] = json!(unknown);
            let none = e.call("op-b", f, body_unknown).await;
            assert_code(&theirs, &status::ICCID_UNKNOWN);
            // Same status, same message: indistinguishable from an unknown ICCID.
            assert_eq!(
                theirs["header"]["functionExecutionStatus"],
                none["header"]["functionExecutionStatus"]
            );
        }
        assert_eq!(e.state(iccid).await, before);
    }
    // A's profile type does not exist for B.
    assert_code(
        &e.call("op-b", "downloadOrder", json!({"profileType": "TA"}))
            .await,
        &status::PROFILE_TYPE_UNKNOWN,
    );
    assert_eq!(e.state(&free).await.0, ProfileState::Available);
    e.server.stop().await;
}

// --------------------------------------------------------------------------------- limits

/// Wrong Confirmation Codes until the limit: the order ends in Error.
async fn rejects_wrong_cc_until_error(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let iccid = e.inventory("op-a", "T", 1).await.remove(0);
    ok(&e
        .call("op-a", "downloadOrder", json!({"iccid": iccid}))
        .await);
    let r = e
        .call(
            "op-a",
            "confirmOrder",
            json!({"iccid": iccid, "confirmationCode": "4711", "releaseFlag": true}),
        )
        .await;
    ok(&r);
    let ac = format!("{}$$1", e.ac(r["matchingId"].as_str().unwrap()));
    let mut euicc = sim_euicc(&e.pki);
    let wrong = DownloadOptions {
        confirmation_code: Some("0000".into()),
        ..DownloadOptions::default()
    };
    for _ in 0..3 {
        assert_lpa_code(
            e.lpa.download(&mut euicc, &ac, &wrong).await,
            &status::CONFIRMATION_CODE_REFUSED,
        );
    }
    assert_lpa_code(
        e.lpa.download(&mut euicc, &ac, &wrong).await,
        &status::CONFIRMATION_CODE_RETRIES_EXCEEDED,
    );
    assert_eq!(e.state(&iccid).await.0, ProfileState::Error);
    // The operator retires it.
    ok(&e
        .call(
            "op-a",
            "cancelOrder",
            json!({"iccid": iccid, "finalProfileStatusIndicator": "Unavailable"}),
        )
        .await);
    assert_eq!(e.state(&iccid).await.0, ProfileState::Unavailable);
    e.server.stop().await;
}

/// Download attempts beyond the limit end the order in Error.
async fn rejects_downloads_beyond_limit(dir: &Path, db: &Db) {
    let e = env_with(dir, db, |s| s.limits.download_attempt_limit = 2).await;
    let iccid = e.inventory("op-a", "T", 1).await.remove(0);
    ok(&e
        .call("op-a", "downloadOrder", json!({"iccid": iccid}))
        .await);
    let r = e
        .call(
            "op-a",
            "confirmOrder",
            json!({"iccid": iccid, "releaseFlag": true}),
        )
        .await;
    let ac = e.ac(r["matchingId"].as_str().unwrap());
    assert_eq!(
        e.server.profile(&iccid).await.download_attempt_limit,
        Some(2)
    );
    let mut euicc = sim_euicc(&e.pki);
    for _ in 0..2 {
        let mut stop = Capture::stop_before(Step::GetBoundProfilePackage);
        let _ = e
            .lpa
            .download_with(&mut euicc, &ac, &DownloadOptions::default(), &mut stop)
            .await;
    }
    assert_eq!(e.server.profile(&iccid).await.download_attempts, 2);
    assert_lpa_code(
        e.lpa
            .download(&mut euicc, &ac, &DownloadOptions::default())
            .await,
        &status::DOWNLOAD_ORDER_RETRIES_EXCEEDED,
    );
    assert_eq!(e.state(&iccid).await.0, ProfileState::Error);
    e.server.stop().await;
}

// ------------------------------------------------- ES9+ sessions across an order's life

/// An ES9+ session up to AuthenticateClient with the low-level card of `common`, at this
/// server's address.
async fn authenticate_at(e: &Env, card: &Card, mid: &str) -> Authenticated {
    let init: smdpp_core::es9_json::InitiateAuthenticationResponse = e
        .server
        .post(
            "initiateAuthentication",
            json!({
                "euiccChallenge": b64(&[7u8; 16]),
                "euiccInfo1": b64(&card.info1()),
                "smdpAddress": e.server.address(),
            }),
        )
        .await
        .unwrap();
    let (auth, sig1_tlv) = authenticate_with(&e.server, card, &init, Some(mid), false)
        .await
        .unwrap();
    Authenticated {
        tid_hex: init.transaction_id.to_hex(),
        tid: init.transaction_id.as_bytes().to_vec(),
        init,
        auth,
        sig1_tlv,
    }
}

/// H1: eUICC A authenticates for order X (ICCID I); the operator cancels X (Available); I is
/// re-issued (DownloadOrder + ConfirmOrder release, no Confirmation Code) for eUICC B. A's old
/// session can no longer download I (`8.10.1/3.9`: CancelOrder ended it, and its order
/// generation is gone), B downloads and installs I, and A's stale CancelSession and late
/// ProfileInstallationResult change nothing.
async fn rejects_stale_session_after_cancel_and_reissue(dir: &Path, db: &Db) {
    use rsp_crypto::{KeyCustody, SoftwareKey};
    let e = env(dir, db).await;
    let oid = e.pki.options.smdp_oid.clone();
    let iccid = e.inventory("op-a", "T", 1).await.remove(0);
    ok(&e
        .call("op-a", "downloadOrder", json!({"iccid": iccid}))
        .await);
    let r = e
        .call(
            "op-a",
            "confirmOrder",
            json!({"iccid": iccid, "releaseFlag": true}),
        )
        .await;
    ok(&r);
    let mid_x = r["matchingId"].as_str().unwrap().to_owned();
    let card_a = Card::from_pki(&e.pki);
    let a = authenticate_at(&e, &card_a, &mid_x).await;

    ok(&e
        .call(
            "op-a",
            "cancelOrder",
            json!({"iccid": iccid, "finalProfileStatusIndicator": "Available"}),
        )
        .await);
    assert_eq!(e.state(&iccid).await.0, ProfileState::Available);
    ok(&e
        .call("op-a", "downloadOrder", json!({"iccid": iccid}))
        .await);
    let r = e
        .call(
            "op-a",
            "confirmOrder",
            json!({"iccid": iccid, "releaseFlag": true}),
        )
        .await;
    ok(&r);
    let mid_y = r["matchingId"].as_str().unwrap().to_owned();
    assert_eq!(e.state(&iccid).await.0, ProfileState::Released);

    // A's old session: no BPP.
    let otk_a = SoftwareKey::generate(card_a.curve).unwrap();
    common::assert_code(
        get_bpp(&e.server, &card_a, &a, &otk_a, None, false).await,
        &status::TRANSACTION_ID_UNKNOWN,
    );
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Released);
    assert_eq!(p.eid, None);

    // B downloads I.
    let eid_b = rsp_pki::eid_with_check_digits("890490320000000000000000000779").unwrap();
    let card_b = Card::sibling(&e.pki, &eid_b);
    let b = authenticate_at(&e, &card_b, &mid_y).await;
    let otk_b = SoftwareKey::generate(card_b.curve).unwrap();
    let bpp = get_bpp(&e.server, &card_b, &b, &otk_b, None, false)
        .await
        .unwrap();
    card_b.open(
        &bpp.bound_profile_package,
        &b.auth.smdp_certificate,
        &otk_b,
        &b.tid,
    );
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Downloaded);
    assert_eq!(p.eid.as_deref(), Some(eid_b.as_str()));
    assert_eq!(
        e.server
            .sidecar()
            .await
            .get_bpp(&iccid)
            .await
            .unwrap()
            .unwrap()
            .euicc_otpk,
        otk_b.public_key()
    );

    // A's stale CancelSession (endUserRejection) is refused; the order stays B's.
    common::assert_code(
        cancel(&e.server, &a.tid_hex, &card_a.cancel(&a.tid, &oid, 0)).await,
        &status::TRANSACTION_ID_UNKNOWN,
    );
    // A's late (forged by A, correctly signed) PIR, error and success: acknowledged, ignored.
    notify(&e.server, &card_a.pir(&a.tid, 1, &iccid, &oid, false))
        .await
        .unwrap();
    notify(&e.server, &card_a.pir(&a.tid, 2, &iccid, &oid, true))
        .await
        .unwrap();
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Downloaded);
    assert_eq!(p.eid.as_deref(), Some(eid_b.as_str()));
    assert_eq!(p.error_cause, None);

    // B installs.
    notify(&e.server, &card_b.pir(&b.tid, 1, &iccid, &oid, true))
        .await
        .unwrap();
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Installed);
    assert_eq!(p.eid.as_deref(), Some(eid_b.as_str()));
    e.server.stop().await;
}

// ------------------------------------------------------------------------ replay and auth

/// A repeated functionCallIdentifier: same body → the stored response; another body →
/// refused `1.1/3.3`; the other operator may use the same identifier.
async fn function_call_identifier_replay(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    e.inventory("op-a", "T", 2).await;
    e.inventory("op-b", "T", 1).await;
    let body = json!({"header": {"functionRequesterIdentifier": "op-a",
        "functionCallIdentifier": "same-id"}, "profileType": "T"})
    .to_string();
    let (_, first) = e.raw("downloadOrder", &body, Some(&e.op_a)).await;
    ok(&first);
    let (_, again) = e.raw("downloadOrder", &body, Some(&e.op_a)).await;
    assert_eq!(first, again, "replay returns the stored response");
    // Only one profile was reserved.
    let allocated = e
        .server
        .store()
        .list_profiles(&smdpp_store::ProfileFilter {
            state: Some(ProfileState::Allocated),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(allocated.len(), 1);
    let other = json!({"header": {"functionRequesterIdentifier": "op-a",
        "functionCallIdentifier": "same-id"}, "profileType": "T", "eid": eid()})
    .to_string();
    let (_, refused) = e.raw("downloadOrder", &other, Some(&e.op_a)).await;
    assert_code(&refused, &status::FUNCTION_CALL_ID_REUSED);
    let (_, refused) = e
        .raw(
            "releaseProfile",
            &json!({"header": {"functionRequesterIdentifier": "op-a",
                "functionCallIdentifier": "same-id"}, "iccid": first["iccid"]})
            .to_string(),
            Some(&e.op_a),
        )
        .await;
    assert_code(&refused, &status::FUNCTION_CALL_ID_REUSED);
    let b = json!({"header": {"functionRequesterIdentifier": "op-b",
        "functionCallIdentifier": "same-id"}, "profileType": "T"})
    .to_string();
    let (_, rb) = e.raw("downloadOrder", &b, Some(&e.op_b)).await;
    ok(&rb);
    e.server.stop().await;
}

/// No client certificate, an unknown one, or a requester identifier of another operator:
/// refused before the engine (nothing reserved).
async fn rejects_unauthenticated_callers(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let iccid = e.inventory("op-a", "T", 1).await.remove(0);
    let body = json!({"header": {"functionRequesterIdentifier": "op-a",
        "functionCallIdentifier": "x1"}, "iccid": iccid})
    .to_string();
    let (st, r) = e.raw("downloadOrder", &body, None).await;
    assert_eq!(st, 200);
    assert_code(&r, &status::FUNCTION_REQUESTER_UNKNOWN);
    let stranger = client_cert("stranger.example");
    let (_, r) = e.raw("downloadOrder", &body, Some(&stranger)).await;
    assert_code(&r, &status::FUNCTION_REQUESTER_UNKNOWN);
    let (_, r) = e.raw("downloadOrder", &body, Some(&e.op_b)).await;
    assert_code(&r, &status::FUNCTION_REQUESTER_NOT_ALLOWED);
    assert_eq!(e.state(&iccid).await.0, ProfileState::Available);
    // ES9+ without a client certificate still works on the same listener.
    let status = e
        .server
        .post_status("initiateAuthentication", json!({}))
        .await;
    assert_eq!(status, 200);
    e.server.stop().await;
}

/// ES2+ mutual TLS on the OpenSSL listener (`--tls-backend openssl`): the client certificate
/// reaches the handler as on rustls, so operators are told apart by it, and a whole order runs
/// to Installed.
async fn mutual_tls_on_the_openssl_listener(dir: &Path, db: &Db) {
    let e = env_with(dir, db, |s| {
        s.tls_backend = smdpp_service::assembly::TlsBackend::Openssl;
    })
    .await;
    let iccid = e.inventory("op-a", "T", 1).await.remove(0);
    let body = json!({"header": {"functionRequesterIdentifier": "op-a",
        "functionCallIdentifier": "x1"}, "iccid": iccid})
    .to_string();
    let (_, r) = e.raw("downloadOrder", &body, None).await;
    assert_code(&r, &status::FUNCTION_REQUESTER_UNKNOWN);
    let (_, r) = e.raw("downloadOrder", &body, Some(&e.op_b)).await;
    assert_code(&r, &status::FUNCTION_REQUESTER_NOT_ALLOWED);
    let r = e
        .call("op-a", "downloadOrder", json!({"iccid": iccid}))
        .await;
    ok(&r);
    let r = e
        .call(
            "op-a",
            "confirmOrder",
            json!({"iccid": iccid, "releaseFlag": true}),
        )
        .await;
    ok(&r);
    let mid = r["matchingId"].as_str().unwrap().to_owned();
    let mut euicc = sim_euicc(&e.pki);
    e.lpa
        .download(&mut euicc, &e.ac(&mid), &DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!(e.state(&iccid).await.0, ProfileState::Installed);
    e.server.stop().await;
}

/// Malformed requests over HTTPS: format codes, nothing changed.
async fn rejects_malformed_requests(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let iccid = e.inventory("op-a", "T", 1).await.remove(0);
    let h = json!({"functionRequesterIdentifier": "op-a", "functionCallIdentifier": "m1"});
    let cases: Vec<(&str, String, StatusCode)> =
        vec![
        ("downloadOrder", "{not json".into(), status::PROTOCOL_FORMAT_INVALID),
        (
            "downloadOrder",
            json!({"iccid": iccid}).to_string(),
            status::PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING,
        ),
        (
            "downloadOrder",
            json!({"header": h, "iccid": "12345"}).to_string(),
            status::PROTOCOL_FORMAT_INVALID,
        ),
        (
            "downloadOrder",
            json!({"header": h, "iccid": "89999010000000000AB"}).to_string(),
            status::PROTOCOL_FORMAT_INVALID,
        ),
        (
            "downloadOrder",
            json!({"header": h, "iccid": iccid, "eid": "123"}).to_string(),
            status::PROTOCOL_FORMAT_INVALID,
        ),
        (
            "downloadOrder",
            json!({"header": h, "iccid": iccid, "eid": bad_eid()}).to_string(),
            status::EID_INVALID,
        ),
        (
            "confirmOrder",
            json!({"header": h, "iccid": iccid, "matchingId": "lower-case", "releaseFlag": true})
                .to_string(),
            status::MATCHING_ID_INVALID,
        ),
        (
            "downloadOrder",
            json!({"header": h, "profileType": "x".repeat(1000)}).to_string(),
            status::PROTOCOL_FORMAT_INVALID,
        ),
        (
            "confirmOrder",
            json!({"header": h, "iccid": iccid}).to_string(),
            status::PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING,
        ),
    ];
    for (f, body, want) in cases {
        let (st, r) = e.raw(f, &body, Some(&e.op_a)).await;
        assert_eq!(st, 200);
        assert_code(&r, &want);
    }
    assert_eq!(e.state(&iccid).await.0, ProfileState::Available);
    // A large body (under the 1 MiB transport limit) with an oversized member.
    let big = json!({"header": h, "profileType": "x".repeat(900 * 1024)}).to_string();
    let (_, r) = e.raw("downloadOrder", &big, Some(&e.op_a)).await;
    assert_code(&r, &status::PROTOCOL_FORMAT_INVALID);
    e.server.stop().await;
}

/// `GET /openapi.json` lists the four ES2+ paths.
async fn openapi_document(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let (st, bytes) = https_request(
        e.server.addr,
        &e.server.tls_leaf,
        "GET",
        "/openapi.json",
        "",
        None,
    )
    .await;
    assert_eq!(st, 200);
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    for f in [
        "downloadOrder",
        "confirmOrder",
        "cancelOrder",
        "releaseProfile",
    ] {
        assert!(doc["paths"][format!("/gsma/rsp2/es2plus/{f}")]["post"].is_object());
    }
    e.server.stop().await;
}

// ----------------------------------------------------------------------------- concurrency

/// 50 parallel DownloadOrder calls for a type with 10 Available profiles: exactly 10
/// winners, each a different profile; the rest `8.2.5/3.7`.
async fn concurrent_download_orders(dir: &Path, db: &Db) {
    let e = std::sync::Arc::new(env(dir, db).await);
    let inventory = e.inventory("op-a", "RACE", 10).await;
    let mut tasks = vec![];
    for _ in 0..50 {
        let e = std::sync::Arc::clone(&e);
        tasks.push(tokio::spawn(async move {
            e.call("op-a", "downloadOrder", json!({"profileType": "RACE"}))
                .await
        }));
    }
    let mut won = vec![];
    for t in tasks {
        let r = t.await.unwrap();
        if r["header"]["functionExecutionStatus"]["status"] == "Executed-Success" {
            won.push(r["iccid"].as_str().unwrap().to_owned());
        } else {
            assert_code(&r, &status::PROFILE_TYPE_UNAVAILABLE);
        }
    }
    assert_eq!(won.len(), 10);
    won.sort();
    won.dedup();
    assert_eq!(won.len(), 10, "no profile bound twice");
    for iccid in &inventory {
        assert_eq!(e.state(iccid).await.0, ProfileState::Allocated);
        // Exactly one Available -> Allocated event each.
        let evs = e.server.store().events_for(iccid).await.unwrap();
        assert_eq!(evs.len(), 2);
    }
    let e = std::sync::Arc::into_inner(e).unwrap_or_else(|| panic!("env still shared"));
    e.server.stop().await;
}

/// 50 parallel ConfirmOrder calls on the same ICCID: exactly one winner.
async fn concurrent_confirm_orders(dir: &Path, db: &Db) {
    let e = std::sync::Arc::new(env(dir, db).await);
    let iccid = e.profile_in(ProfileState::Allocated).await;
    let mut tasks = vec![];
    for _ in 0..50 {
        let e = std::sync::Arc::clone(&e);
        let iccid = iccid.clone();
        tasks.push(tokio::spawn(async move {
            e.call(
                "op-a",
                "confirmOrder",
                json!({"iccid": iccid, "releaseFlag": true}),
            )
            .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r["header"]["functionExecutionStatus"]["status"] == "Executed-Success" {
            wins += 1;
        } else {
            assert_code(&r, &status::ICCID_INVALID_TRANSITION);
        }
    }
    assert_eq!(wins, 1);
    let evs = e.server.store().events_for(&iccid).await.unwrap();
    assert_eq!(
        evs.iter()
            .filter(|ev| ev.to_state == ProfileState::Released)
            .count(),
        1
    );
    let e = std::sync::Arc::into_inner(e).unwrap_or_else(|| panic!("env still shared"));
    e.server.stop().await;
}

both_backends!(
    mutual_tls_on_the_openssl_listener,
    activation_code_use_case,
    default_smdp_use_case,
    state_machine,
    rejects_inconsistent_orders,
    cancel_order_from_error,
    rejects_state_with_the_functions_own_message,
    rejects_other_operators_profile,
    rejects_wrong_cc_until_error,
    rejects_downloads_beyond_limit,
    function_call_identifier_replay,
    rejects_unauthenticated_callers,
    rejects_malformed_requests,
    openapi_document,
    concurrent_download_orders,
    concurrent_confirm_orders,
    rejects_stale_session_after_cancel_and_reissue,
);
