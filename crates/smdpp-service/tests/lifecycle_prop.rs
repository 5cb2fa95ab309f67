//! Property test of the profile lifecycle (SGP.22 v2.2 section 3.1.6, Table 6b and the
//! state diagram after it): random sequences of ES2+ calls (DownloadOrder, ConfirmOrder,
//! ReleaseProfile, CancelOrder, over mutual-TLS HTTPS) and ES9+ steps of a device
//! (initiateAuthentication + authenticateClient, getBoundProfilePackage with or without the
//! right Confirmation Code, handleNotification with a success or failure
//! ProfileInstallationResult, cancelSession with each reason) against the real server on a
//! SQLite file. After every step the server's profile state must equal the model's, the
//! observed transition must be one the diagram (plus CancelOrder, section 5.3.3) allows,
//! and a call the model refuses must be refused with the model's status code.
//!
//! The model is written from the specification (sections 3.1.3, 3.1.5, 5.3.1-5.3.4,
//! 5.6.2-5.6.5); where the specification leaves a choice open, it follows the choice the
//! engine documents (`smdpp-service::es2` and `smdpp-service::es9`), each named below. One server
//! serves all cases; each case gets a fresh profile and a fresh eUICC (EID), so cases do
//! not see each other. `SMDPP_PROPTEST_CASES` overrides the number of cases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rsp_crypto::{Curve, SoftwareKey};
use rsp_pki::TestPki;
use serde_json::{Value, json};
use smdpp_core::status::{self, StatusCode};
use smdpp_service::inventory::import_inventory;
use smdpp_service::operators::add_operator;
use smdpp_service::upp::demo_upp;
use smdpp_store::ProfileState;

/// Cases run by default (CI); each is a sequence of up to `MAX_STEPS` calls.
const DEFAULT_CASES: u32 = 200;
const MAX_STEPS: usize = 24;
/// Small limits so that the "exceeded" paths are reached in short sequences.
const DOWNLOAD_LIMIT: i64 = 3;
const CC_LIMIT: i64 = 1;
const CC: &str = "1234";

// ------------------------------------------------------------------------------ calls

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EidChoice {
    None,
    Ours,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CcChoice {
    None,
    Right,
    Wrong,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    DownloadOrder(EidChoice),
    ConfirmOrder {
        release: bool,
        cc: bool,
    },
    ReleaseProfile,
    CancelOrder {
        to_available: bool,
    },
    /// initiateAuthentication + authenticateClient, with the last MatchingID the operator
    /// got (or none: the Default SM-DP+ flow by EID).
    Authenticate {
        omit_mid: bool,
    },
    /// getBoundProfilePackage in the current session.
    GetBpp(CcChoice),
    /// handleNotification with the PIR of the last delivered BPP.
    Pir {
        success: bool,
    },
    /// cancelSession of the current session with this CancelSessionReason.
    CancelSession(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let eid = prop_oneof![
        2 => Just(EidChoice::None),
        2 => Just(EidChoice::Ours),
        1 => Just(EidChoice::Other)
    ];
    let cc = prop_oneof![
        1 => Just(CcChoice::None),
        2 => Just(CcChoice::Right),
        2 => Just(CcChoice::Wrong)
    ];
    // endUserRejection(0), postponed(1), timeout(2), pprNotAllowed(3), metadataMismatch(4),
    // loadBppExecutionError(5), undefinedReason(127).
    let reason = prop_oneof![
        Just(0i64),
        Just(1),
        Just(2),
        Just(3),
        Just(4),
        Just(5),
        Just(127)
    ];
    prop_oneof![
        2 => eid.prop_map(Op::DownloadOrder),
        2 => (any::<bool>(), prop::bool::weighted(0.3))
            .prop_map(|(release, cc)| Op::ConfirmOrder { release, cc }),
        2 => Just(Op::ReleaseProfile),
        1 => any::<bool>().prop_map(|to_available| Op::CancelOrder { to_available }),
        4 => prop::bool::weighted(0.2).prop_map(|omit_mid| Op::Authenticate { omit_mid }),
        4 => cc.prop_map(Op::GetBpp),
        3 => any::<bool>().prop_map(|success| Op::Pir { success }),
        2 => reason.prop_map(Op::CancelSession),
    ]
}

/// A sequence: often an order already placed (released, or confirmed and linked to the
/// device) so that the ES9+ states are reached, then random calls.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    let prefix = prop_oneof![
        1 => Just(vec![]),
        2 => prop::bool::weighted(0.5).prop_map(|cc| vec![
            Op::DownloadOrder(EidChoice::None),
            Op::ConfirmOrder { release: true, cc },
        ]),
        1 => Just(vec![
            Op::DownloadOrder(EidChoice::Ours),
            Op::ConfirmOrder { release: false, cc: false },
            Op::ReleaseProfile,
        ]),
    ];
    (prefix, proptest::collection::vec(op(), 1..=MAX_STEPS)).prop_map(|(mut p, tail)| {
        p.extend(tail);
        p
    })
}

// ------------------------------------------------------------------------------ model

use ProfileState as S;

/// What a call should answer: success, or refused with this code.
type Expected = Result<(), StatusCode>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// authenticateClient done in order generation `gen`.
    Authenticated(u64),
    /// BPP delivered; the delivery left the order in generation `gen`.
    Delivered(u64),
    Ended,
}

/// The model of one profile and of the device's sessions for it.
#[derive(Clone, Debug)]
struct Model {
    state: ProfileState,
    eid: EidChoice,
    /// Whether the profile's current MatchingID is the last one the operator got.
    mid_current: bool,
    cc: bool,
    attempts: i64,
    cc_attempts: i64,
    /// Bumped on every change of the order (state, counters, link): a session may only
    /// continue in the generation it authenticated in (section 3.1.3: the RSP session is
    /// bound to the order it was opened for).
    generation: u64,
    /// The device's current session.
    current: Option<Phase>,
    /// The session that delivered the last BPP (phase), kept after it is superseded.
    delivered: Option<Phase>,
    /// Whether `delivered` is the same session as `current`.
    delivered_is_current: bool,
}

impl Model {
    fn new() -> Model {
        Model {
            state: S::Available,
            eid: EidChoice::None,
            mid_current: false,
            cc: false,
            attempts: 0,
            cc_attempts: 0,
            generation: 0,
            current: None,
            delivered: None,
            delivered_is_current: false,
        }
    }

    fn bump(&mut self) {
        self.generation += 1;
    }

    fn set_current(&mut self, p: Phase) {
        self.current = Some(p);
        if self.delivered_is_current {
            self.delivered = self.current;
        }
    }

    fn end_all_sessions(&mut self) {
        if self.current.is_some() {
            self.current = Some(Phase::Ended);
        }
        if self.delivered.is_some() {
            self.delivered = Some(Phase::Ended);
        }
    }

    fn downloadable(&self) -> bool {
        matches!(self.state, S::Released | S::Downloaded)
    }

    /// Applies `op` and returns what the server should answer; `None` when the step is not
    /// applicable (no session to continue, no BPP to report on) and is skipped.
    fn apply(&mut self, op: Op) -> Option<Expected> {
        Some(match op {
            // Section 5.3.1: only an Available profile can be ordered.
            Op::DownloadOrder(eid) => {
                if self.state != S::Available {
                    Err(status::ICCID_ALREADY_IN_USE)
                } else {
                    self.state = if eid == EidChoice::None {
                        S::Allocated
                    } else {
                        S::Linked
                    };
                    self.eid = eid;
                    self.bump();
                    Ok(())
                }
            }
            // Section 5.3.2: Allocated/Linked -> Confirmed, or Released with releaseFlag; a
            // new MatchingID is generated, the counters start again. Any other state: the
            // engine's choice 8.2.1/3.5 (Table 27 has no state code).
            Op::ConfirmOrder { release, cc } => {
                if !matches!(self.state, S::Allocated | S::Linked) {
                    Err(status::ICCID_INVALID_TRANSITION)
                } else {
                    self.state = if release { S::Released } else { S::Confirmed };
                    self.mid_current = true;
                    self.cc = cc;
                    self.attempts = 0;
                    self.cc_attempts = 0;
                    self.bump();
                    Ok(())
                }
            }
            // Section 5.3.4: Confirmed -> Released; Released again is a success (NOTE).
            Op::ReleaseProfile => match self.state {
                S::Confirmed => {
                    self.state = S::Released;
                    self.bump();
                    Ok(())
                }
                S::Released => Ok(()),
                _ => Err(status::ICCID_INVALID_TRANSITION),
            },
            // Section 5.3.3 and Figure 15: a pending order or one in Error; "already
            // downloaded" (Table 30, 8.2.1/3.3) once Downloaded or Installed. The sessions of
            // the order end with it.
            Op::CancelOrder { to_available } => match self.state {
                S::Allocated | S::Linked | S::Confirmed | S::Released | S::Error => {
                    if to_available {
                        self.state = S::Available;
                        self.eid = EidChoice::None;
                        self.mid_current = false;
                        self.attempts = 0;
                        self.cc_attempts = 0;
                    } else {
                        self.state = S::Unavailable;
                    }
                    self.cc = false;
                    self.bump();
                    self.end_all_sessions();
                    Ok(())
                }
                S::Downloaded | S::Installed => Err(status::ICCID_ALREADY_IN_USE),
                _ => Err(status::ICCID_INVALID_TRANSITION),
            },
            // Section 3.1.3 step 3 (and 5.6.3): a pending order for the MatchingID (or, without
            // one, an order linked to this EID), linked to no other EID, Released (or
            // Downloaded for a retry); the attempt is counted and the one over the limit
            // terminates the order. Failures open no session the device goes on with.
            Op::Authenticate { omit_mid } => {
                let found = if omit_mid || !self.mid_current {
                    if omit_mid {
                        self.eid == EidChoice::Ours && self.downloadable()
                    } else {
                        false
                    }
                } else {
                    true
                };
                if !found {
                    return Some(Err(status::MATCHING_ID_REFUSED));
                }
                if self.eid == EidChoice::Other {
                    return Some(Err(status::EID_REFUSED));
                }
                if !self.downloadable() {
                    return Some(Err(status::PROFILE_NOT_RELEASED));
                }
                if self.attempts + 1 > DOWNLOAD_LIMIT {
                    self.state = S::Error;
                    self.bump();
                    return Some(Err(status::DOWNLOAD_ORDER_RETRIES_EXCEEDED));
                }
                self.attempts += 1;
                self.bump();
                self.current = Some(Phase::Authenticated(self.generation));
                self.delivered_is_current = false;
                Ok(())
            }
            // Section 3.1.3.2 steps 6-11 (5.6.2). The session ends on any failure.
            Op::GetBpp(cc) => {
                let phase = self.current?;
                let g = match phase {
                    Phase::Authenticated(g) => g,
                    // A repeated request of a delivered session is not generated (the engine
                    // answers it with the same BPP); an ended session is unknown.
                    Phase::Delivered(_) => return None,
                    Phase::Ended => return Some(Err(status::TRANSACTION_ID_UNKNOWN)),
                };
                self.set_current(Phase::Ended);
                if !self.downloadable() {
                    return Some(Err(status::PROFILE_NOT_RELEASED));
                }
                if g != self.generation {
                    return Some(Err(status::TRANSACTION_ID_UNKNOWN));
                }
                if self.cc {
                    match cc {
                        CcChoice::None => return Some(Err(status::CONFIRMATION_CODE_MISSING)),
                        CcChoice::Wrong => {
                            self.cc_attempts += 1;
                            self.bump();
                            if self.cc_attempts > CC_LIMIT {
                                self.state = S::Error;
                                self.bump();
                                return Some(Err(status::CONFIRMATION_CODE_RETRIES_EXCEEDED));
                            }
                            return Some(Err(status::CONFIRMATION_CODE_REFUSED));
                        }
                        CcChoice::Right => {}
                    }
                }
                self.state = S::Downloaded;
                self.eid = EidChoice::Ours;
                self.bump();
                self.current = Some(Phase::Delivered(self.generation));
                self.delivered = self.current;
                self.delivered_is_current = true;
                Ok(())
            }
            // Section 3.1.3.3 / 5.6.4: always acknowledged. A success installs the order while
            // it is Downloaded for this EID; a failure makes it Error only from the session
            // that delivered the current BPP, in the generation it left (a late result of a
            // superseded session changes nothing).
            Op::Pir { success } => {
                let d = self.delivered?;
                if success {
                    if self.state == S::Downloaded && self.eid == EidChoice::Ours {
                        self.state = S::Installed;
                        self.bump();
                    }
                    self.delivered = Some(Phase::Ended);
                } else if let Phase::Delivered(g) = d {
                    if self.state == S::Downloaded && g == self.generation {
                        self.state = S::Error;
                        self.bump();
                    }
                    self.delivered = Some(Phase::Ended);
                }
                if self.delivered_is_current {
                    self.current = self.delivered;
                }
                Ok(())
            }
            // Section 3.1.5 / 5.6.5: postponed and timeout keep the order; any other reason
            // terminates it (Error), if the session still holds it.
            Op::CancelSession(reason) => {
                let phase = self.current?;
                let holds = match phase {
                    Phase::Ended => return Some(Err(status::TRANSACTION_ID_UNKNOWN)),
                    Phase::Authenticated(g) => self.downloadable() && g == self.generation,
                    Phase::Delivered(g) => self.state == S::Downloaded && g == self.generation,
                };
                self.set_current(Phase::Ended);
                if matches!(reason, 1 | 2) {
                    return Some(Ok(()));
                }
                if !holds {
                    return Some(Err(status::TRANSACTION_ID_UNKNOWN));
                }
                self.state = S::Error;
                self.bump();
                Ok(())
            }
        })
    }
}

/// The transitions Table 6b's diagram allows (plus ES2+.CancelOrder to Available or
/// Unavailable from a pending order or Error, section 5.3.3 / Figure 15, and Error by
/// cancelSession, section 3.1.5); a step that changes nothing is always allowed.
fn allowed(from: ProfileState, to: ProfileState) -> bool {
    from == to
        || matches!(
            (from, to),
            (S::Available, S::Allocated | S::Linked)
                | (S::Allocated | S::Linked, S::Confirmed | S::Released)
                | (S::Confirmed, S::Released)
                | (S::Released, S::Downloaded | S::Error)
                | (S::Downloaded, S::Installed | S::Error)
                | (
                    S::Allocated | S::Linked | S::Confirmed | S::Released | S::Error,
                    S::Available | S::Unavailable
                )
        )
}

// ----------------------------------------------------------------------- the real side

struct World {
    pki: TestPki,
    server: Server,
    op: ClientCert,
}

static SEQ: AtomicU64 = AtomicU64::new(1);

/// What the run exercised: executed steps, the states seen, the transitions observed, and
/// the calls refused (by code), printed at the end.
#[derive(Default)]
struct Stats {
    steps: usize,
    states: std::collections::BTreeSet<String>,
    transitions: std::collections::BTreeSet<String>,
    refused: std::collections::BTreeMap<String, usize>,
}

static STATS: std::sync::Mutex<Option<Stats>> = std::sync::Mutex::new(None);

fn record(from: ProfileState, to: ProfileState, op: &Op, got: &Expected) {
    let mut g = STATS.lock().unwrap();
    let st = g.get_or_insert_with(Stats::default);
    st.steps += 1;
    st.states.insert(to.to_string());
    if from != to {
        st.transitions.insert(format!("{from}->{to}"));
    } else if from == S::Downloaded && matches!(op, Op::GetBpp(_)) && got.is_ok() {
        st.transitions.insert(format!("{from}->{to} (retry)"));
    }
    if let Err(c) = got {
        let name = format!("{op:?}");
        let name = name.split(['(', ' ']).next().unwrap_or("").to_owned();
        *st.refused.entry(format!("{name} {c}")).or_default() += 1;
    }
}

/// A session of the device: what getBoundProfilePackage and cancelSession need.
struct DevSession {
    a: Authenticated,
    otk: SoftwareKey,
}

/// One case: a fresh profile and a fresh eUICC.
struct Case<'w> {
    w: &'w World,
    iccid: String,
    card: Card,
    other_eid: String,
    mid: Option<String>,
    current: Option<DevSession>,
    delivered: Option<Vec<u8>>,
    seq: i64,
}

fn fresh_eid(n: u64) -> String {
    // Under the EUM's IIN 89049032 (rsp_pki's default range).
    rsp_pki::eid_with_check_digits(&format!("89049032{:022}", 1_000_000 + n)).unwrap()
}

fn es2_result(v: &Value) -> Expected {
    let st = &v["header"]["functionExecutionStatus"];
    if st["status"] == "Executed-Success" {
        return Ok(());
    }
    let d = &st["statusCodeData"];
    Err(StatusCode::parse(
        d["subjectCode"].as_str().unwrap_or(""),
        d["reasonCode"].as_str().unwrap_or(""),
    )
    .unwrap_or_else(|_| panic!("no status code in {v}")))
}

fn es9_result<T>(r: Result<T, smdpp_core::status::Es9Error>) -> Expected {
    r.map(|_| ()).map_err(|e| e.code)
}

impl Case<'_> {
    async fn es2(&self, function: &str, body: Value) -> Value {
        es2_call(&self.w.server, "op-a", &self.w.op, function, body).await
    }

    fn smdp_oid(&self) -> String {
        self.w.pki.options.smdp_oid.clone()
    }

    /// Runs `op` on the server and returns its outcome.
    async fn run(&mut self, op: Op) -> Expected {
        let server = &self.w.server;
        match op {
            Op::DownloadOrder(eid) => {
                let mut body = json!({ "iccid": self.iccid });
                match eid {
                    EidChoice::None => {}
                    EidChoice::Ours => body["eid"] = json!(self.card.eid),
                    EidChoice::Other => body["eid"] = json!(self.other_eid),
                }
                es2_result(&self.es2("downloadOrder", body).await)
            }
            Op::ConfirmOrder { release, cc } => {
                let mut body = json!({ "iccid": self.iccid, "releaseFlag": release });
                if cc {
                    body["confirmationCode"] = json!(CC);
                }
                let v = self.es2("confirmOrder", body).await;
                let r = es2_result(&v);
                if r.is_ok() {
                    self.mid = Some(v["matchingId"].as_str().unwrap().to_owned());
                }
                r
            }
            Op::ReleaseProfile => es2_result(
                &self
                    .es2("releaseProfile", json!({ "iccid": self.iccid }))
                    .await,
            ),
            Op::CancelOrder { to_available } => {
                let fin = if to_available {
                    "Available"
                } else {
                    "Unavailable"
                };
                es2_result(
                    &self
                        .es2(
                            "cancelOrder",
                            json!({ "iccid": self.iccid, "finalProfileStatusIndicator": fin }),
                        )
                        .await,
                )
            }
            Op::Authenticate { omit_mid } => {
                // Without a MatchingID the operator ever got, the device uses one that no
                // order has.
                let mid = if omit_mid {
                    None
                } else {
                    Some(self.mid.clone().unwrap_or_else(|| "NO-SUCH-ORDER".into()))
                };
                match authenticate(server, &self.card, mid.as_deref()).await {
                    Ok(a) => {
                        self.current = Some(DevSession {
                            a,
                            otk: SoftwareKey::generate(Curve::NistP256).unwrap(),
                        });
                        Ok(())
                    }
                    Err(e) => Err(e.code),
                }
            }
            Op::GetBpp(cc) => {
                let s = self.current.as_ref().expect("model: a session");
                let code = match cc {
                    CcChoice::None => None,
                    CcChoice::Right => Some(CC),
                    CcChoice::Wrong => Some("9999"),
                };
                let r = get_bpp(server, &self.card, &s.a, &s.otk, code, false).await;
                if r.is_ok() {
                    self.delivered = Some(s.a.tid.clone());
                }
                es9_result(r)
            }
            Op::Pir { success } => {
                let tid = self.delivered.clone().expect("model: a delivery");
                self.seq += 1;
                let pir = self
                    .card
                    .pir(&tid, self.seq, &self.iccid, &self.smdp_oid(), success);
                es9_result(notify(server, &pir).await)
            }
            Op::CancelSession(reason) => {
                let s = self.current.as_ref().expect("model: a session");
                let body = self.card.cancel(&s.a.tid, &self.smdp_oid(), reason);
                es9_result(cancel(server, &s.a.tid_hex, &body).await)
            }
        }
    }
}

async fn run_case(w: &World, ops: &[Op]) -> Result<(), TestCaseError> {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let iccid = format!("8999901{:012}", 500_000 + n);
    let side = w.server.sidecar().await;
    import_inventory(
        w.server.store(),
        &side,
        w.server.factory(),
        "op-a",
        &demo_upp(&iccid).unwrap(),
        "T",
        "Test SP",
        None,
    )
    .await
    .unwrap();
    side.close().await;
    let mut case = Case {
        w,
        iccid: iccid.clone(),
        card: Card::sibling(&w.pki, &fresh_eid(2 * n)),
        other_eid: fresh_eid(2 * n + 1),
        mid: None,
        current: None,
        delivered: None,
        seq: 0,
    };
    let mut model = Model::new();
    for (i, op) in ops.iter().enumerate() {
        let before = model.clone();
        let Some(expected) = model.apply(*op) else {
            continue;
        };
        let from = w.server.profile(&iccid).await.state;
        let got = case.run(*op).await;
        let to = w.server.profile(&iccid).await.state;
        record(from, to, op, &got);
        let trace = || format!("step {i} {op:?} on {before:?}");
        prop_assert!(
            allowed(from, to),
            "forbidden transition {from} -> {to} at {}",
            trace()
        );
        prop_assert_eq!(&got, &expected, "answer at {}", trace());
        prop_assert_eq!(to, model.state, "state at {}", trace());
    }
    Ok(())
}

#[test]
fn lifecycle_follows_table_6b() {
    let cases = std::env::var("SMDPP_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let world = rt.block_on(async {
        let db = Db::sqlite(dir.path());
        let (pki, mut s) = pki_settings(dir.path(), &db, Curve::NistP256);
        s.limits.download_attempt_limit = DOWNLOAD_LIMIT;
        s.limits.cc_attempt_limit = CC_LIMIT;
        // Every case comes from 127.0.0.1 and many calls are refused on purpose: the
        // per-address abuse limits would answer 429.
        s.abuse.initiate_per_minute = 0;
        s.abuse.refusals_per_minute = 0;
        // Likewise the per-EID limit on refused MatchingIDs / Confirmation Codes: a case
        // may refuse the same EID more than 10 times within a minute, and that limit's
        // own answer (1.2/5.1) is not the refusal the model expects.
        s.limits.refusals_per_eid_per_minute = 0;
        let server = Server::start(s).await;
        let op = client_cert("operator-a.example");
        add_operator(server.store(), "op-a", &op.cert_der, None)
            .await
            .unwrap();
        World { pki, server, op }
    });
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let result = runner.run(&ops(), |ops| rt.block_on(run_case(&world, &ops)));
    eprintln!(
        "lifecycle_follows_table_6b: {cases} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(st) = STATS.lock().unwrap().as_ref() {
        eprintln!(
            "{} steps; states {:?}; transitions {:?}; refused {:?}",
            st.steps, st.states, st.transitions, st.refused
        );
    }
    rt.block_on(world.server.stop());
    if let Err(e) = result {
        panic!("{e}");
    }
}
