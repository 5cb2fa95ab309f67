//! An installed profile follows the eUICC: the enable, disable and delete notifications of
//! SGP.22 section 3.5 (and the v3 RPM variants, profileManagementOperation bits 4 to 6) move
//! its state (Installed -> Enabled / Disabled -> Unavailable, or Available again when its
//! type says `reuse`), once per (profile, EID, seqNumber) and never backwards, each move with
//! one profile event and one ES2+.HandleDownloadProgressInfo to the owning operator (custom
//! points 100 enabled, 101 disabled, 102 deleted; `resultData` = the signed notification).
//!
//! End to end: the REAL virtual eUICC + LPA of `crates/euicc-sim` over HTTPS to the server,
//! and the outbox worker delivering over REAL mutual TLS to an HTTPS receiver started here
//! (the receiver of `outbox.rs`: a hyper server accepting only CERT.DP.TLS as client
//! certificate, recording every call). Hand-made notifications (`Card::other_notification`)
//! cover what the virtual eUICC never sends: v3 RPM bits, forged signatures, another eUICC's
//! claim on the ICCID. On SQLite and (when `SMDPP_TEST_PG_URL` is set) PostgreSQL. Every
//! negative test is named `rejects_*` or says what does not happen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::*;
use euicc_sim::Euicc;
use euicc_sim::lpa::{DownloadOptions, Lpa};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rsp_asn1::common::{Iccid, ProfileIdentifier};
use rsp_asn1::es10c::{DeleteResult, DisableResult, EnableResult};
use rsp_crypto::Curve;
use rsp_pki::TestPki;
use rustls::pki_types::PrivateKeyDer;
use saip::TemplateSource;
use serde_json::{Value, json};
use smdpp_service::inventory::import_inventory;
use smdpp_service::inventory::{ALL_NOTIFY, build_profile_type};
use smdpp_service::operators::add_operator;
use smdpp_service::outbox::OutboxConfig;
use smdpp_service::upp::demo_upp;
use smdpp_store::{OnDelete, OutboxKind, OutboxRow, OutboxState, ProfileEvent, ProfileState};

// ------------------------------------------------------------------- the receiver

/// One call as received.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    body: Value,
}

impl Received {
    fn point(&self) -> i64 {
        self.body["notificationPointId"].as_i64().unwrap()
    }
    fn id(&self) -> String {
        self.body["header"]["functionCallIdentifier"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// The operator's callback endpoint: HTTPS on a fixed port, stoppable and restartable,
/// answering every HandleDownloadProgressInfo 204 (section 6.3).
struct Receiver {
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    calls: Arc<Mutex<Vec<Received>>>,
    task: Option<tokio::task::JoinHandle<()>>,
    ca_file: PathBuf,
}

impl Receiver {
    /// A receiver whose server certificate (for 127.0.0.1) is issued by a CA written to
    /// `dir/receiver-ca.pem`, and which accepts only `client_leaf`.
    async fn new(dir: &Path, client_leaf: Vec<u8>) -> Receiver {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "receiver test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        let ca_file = dir.join("receiver-ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(Arc::new(PinnedClient {
                leaf: client_leaf,
                provider,
            }))
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut r = Receiver {
            addr,
            tls: Arc::new(tls),
            calls: Arc::new(Mutex::new(vec![])),
            task: None,
            ca_file,
        };
        r.serve(listener);
        r
    }

    fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&self.tls));
        let calls = Arc::clone(&self.calls);
        self.task = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let calls = Arc::clone(&calls);
                conns.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let calls = Arc::clone(&calls);
                            async move {
                                let path = req.uri().path().to_owned();
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let body: Value = serde_json::from_slice(&body).unwrap();
                                calls.lock().unwrap().push(Received { path, body });
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(204)
                                        .body(Full::new(Bytes::new()))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                        .await;
                });
            }
        }));
    }

    /// Stops accepting (and drops open connections): the endpoint is down.
    async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Listens again on the same address.
    async fn restart(&mut self) {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_reuseaddr(true).unwrap();
        sock.bind(self.addr).unwrap();
        let listener = sock.listen(64).unwrap();
        self.serve(listener);
    }

    fn calls(&self) -> Vec<Received> {
        self.calls.lock().unwrap().clone()
    }

    /// Every HandleDownloadProgressInfo call (repeats included) about `iccid` at one of the
    /// custom points (100 and above), in arrival order.
    fn remote(&self, iccid: &str) -> Vec<Received> {
        self.calls()
            .into_iter()
            .filter(|c| c.path == "/gsma/rsp2/es2plus/handleDownloadProgressInfo")
            .filter(|c| c.body["iccid"] == iccid && c.point() >= 100)
            .collect()
    }

    /// [`Receiver::remote`], first delivery per functionCallIdentifier.
    fn remote_unique(&self, iccid: &str) -> Vec<Received> {
        let mut seen = HashSet::new();
        self.remote(iccid)
            .into_iter()
            .filter(|c| seen.insert(c.id()))
            .collect()
    }
}

// ------------------------------------------------------------------------ harness

struct Env {
    pki: TestPki,
    server: Server,
    lpa: Lpa,
    op: ClientCert,
    rx: Receiver,
}

/// Millisecond polling and backoff (outbox.rs's pattern): the receiver's CA is trusted
/// through `ca_file` (SMDPP_OUTBOX_CA_FILE), the operator has no CA of its own.
fn fast_outbox(ca_file: PathBuf) -> OutboxConfig {
    OutboxConfig {
        ca_file: Some(ca_file),
        poll_interval: Duration::from_millis(20),
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        max_attempts: 200,
        request_timeout: Duration::from_secs(3),
        ..OutboxConfig::default()
    }
}

async fn env(dir: &Path, db: &Db) -> Env {
    let (pki, mut s) = pki_settings(dir, db, Curve::NistP256);
    let rx = Receiver::new(dir, pki.dptls.der.clone()).await;
    s.limits.outbox = fast_outbox(rx.ca_file.clone());
    let server = Server::start_lpa(s).await;
    let lpa = sim_lpa(&[&pki]);
    let op = client_cert("operator-a.example");
    add_operator(server.store(), "op-a", &op.cert_der, Some(rx.base_url()))
        .await
        .unwrap();
    Env {
        pki,
        server,
        lpa,
        op,
        rx,
    }
}

static ICCIDS: AtomicU64 = AtomicU64::new(0);

/// A fresh ICCID (19 digits; each test has its own database).
fn fresh_iccid() -> String {
    format!("8999904{:012}", ICCIDS.fetch_add(1, Ordering::Relaxed))
}

fn pid(iccid: &str) -> ProfileIdentifier {
    ProfileIdentifier::Iccid(Iccid::from_digits(iccid).unwrap())
}

/// What the eUICC has queued: (seqNumber, PendingNotification DER).
fn pending(euicc: &Euicc) -> Vec<(i64, Vec<u8>)> {
    euicc
        .state()
        .notifications
        .iter()
        .map(|n| (n.seq_number, n.pending_notification.clone()))
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Enable,
    Disable,
    Delete,
}

impl Env {
    fn ac(&self, mid: &str) -> String {
        format!("LPA:1${}${mid}", self.server.address())
    }

    /// Profile type `name` (the built-in template, default notifications) whose delete
    /// notification does `on_delete`.
    async fn add_type(&self, name: &str, on_delete: OnDelete) {
        let mut t = build_profile_type(
            name,
            &TemplateSource::usim_isim_milenage(),
            "Test SP",
            "Test profile",
            None,
            None,
            &ALL_NOTIFY,
            &[],
            None,
            None,
        )
        .unwrap();
        assert_eq!(t.on_delete, OnDelete::Retire, "retire is the default");
        t.on_delete = on_delete;
        self.server.factory().add_profile_type(&t).await.unwrap();
    }

    /// A profile of op-a with `profile_type` in the inventory (its own UPP and metadata).
    async fn inventory(&self, profile_type: &str) -> String {
        let side = self.server.sidecar().await;
        let upp = demo_upp(&fresh_iccid()).unwrap();
        let iccid = import_inventory(
            self.server.store(),
            &side,
            self.server.factory(),
            "op-a",
            &upp,
            profile_type,
            "Test SP",
            None,
        )
        .await
        .unwrap();
        side.close().await;
        iccid
    }

    async fn call(&self, function: &str, body: Value) -> Value {
        let v = es2_call(&self.server, "op-a", &self.op, function, body).await;
        assert_es2_success(function, &v);
        v
    }

    /// ES2+ DownloadOrder + ConfirmOrder(releaseFlag) for `iccid`; returns the MatchingID.
    async fn release(&self, iccid: &str, cc: Option<&str>) -> String {
        self.call("downloadOrder", json!({"iccid": iccid})).await;
        let mut c = json!({"iccid": iccid, "releaseFlag": true});
        if let Some(cc) = cc {
            c["confirmationCode"] = json!(cc);
        }
        let r = self.call("confirmOrder", c).await;
        r["matchingId"].as_str().unwrap().to_owned()
    }

    /// A fresh profile of `profile_type`, ordered and released; returns (ICCID, MatchingID).
    async fn order(&self, profile_type: &str, cc: Option<&str>) -> (String, String) {
        let iccid = self.inventory(profile_type).await;
        let mid = self.release(&iccid, cc).await;
        (iccid, mid)
    }

    /// Downloads `mid` onto `euicc` and delivers its PIR: the profile is Installed on that
    /// EID. Returns the PIR as sent.
    async fn install(
        &self,
        euicc: &mut Euicc,
        iccid: &str,
        mid: &str,
        cc: Option<&str>,
    ) -> Vec<u8> {
        let out = self
            .lpa
            .download(
                euicc,
                &self.ac(mid),
                &DownloadOptions {
                    confirmation_code: cc.map(str::to_owned),
                    send_pir: false,
                    ..DownloadOptions::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(out.iccid, iccid);
        let queued = pending(euicc);
        assert_eq!(queued.len(), 1, "only the PIR is queued");
        assert_eq!(queued[0].0, out.seq_number);
        let d = self.lpa.process_notifications(euicc).await;
        assert!(d.iter().all(|d| d.error.is_none()), "{d:?}");
        let p = self.server.profile(iccid).await;
        assert_eq!(p.state, ProfileState::Installed);
        assert_eq!(p.eid.as_deref(), Some(euicc.eid()));
        assert!(pending(euicc).is_empty());
        queued[0].1.clone()
    }

    /// Runs `op` on the eUICC (which queues its notification, as the profile's metadata
    /// asks for every operation) and lets the LPA deliver it; returns what was sent.
    async fn act(&self, euicc: &mut Euicc, iccid: &str, op: Op) -> (i64, Vec<u8>) {
        queue(euicc, iccid, op);
        let queued = pending(euicc);
        assert_eq!(queued.len(), 1, "{op:?}: one notification queued");
        let d = self.lpa.process_notifications(euicc).await;
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].error, None, "{d:?}");
        assert!(
            pending(euicc).is_empty(),
            "delivered notifications are removed"
        );
        queued[0].clone()
    }

    /// POSTs a PendingNotification to ES9+ HandleNotification (as an LPA would); returns the
    /// HTTP status.
    async fn send(&self, raw: &[u8]) -> u16 {
        self.server
            .post_status(
                "handleNotification",
                json!({ "pendingNotification": b64(raw) }),
            )
            .await
    }

    async fn state(&self, iccid: &str) -> ProfileState {
        self.server.profile(iccid).await.state
    }

    async fn events(&self, iccid: &str) -> Vec<ProfileEvent> {
        self.server.store().events_for(iccid).await.unwrap()
    }

    /// The HandleDownloadProgressInfo rows at custom points about `iccid`, in order.
    async fn remote_rows(&self, iccid: &str) -> Vec<OutboxRow> {
        self.server
            .store()
            .list_outbox(None, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.iccid.as_deref() == Some(iccid) && row_point(r) >= 100)
            .collect()
    }

    async fn outbox_len(&self) -> usize {
        self.server
            .store()
            .list_outbox(None, 10_000)
            .await
            .unwrap()
            .len()
    }

    async fn notifications_of(&self, eid: &str) -> usize {
        self.server
            .store()
            .list_notifications(eid)
            .await
            .unwrap()
            .len()
    }
}

/// Queues `op`'s notification on the eUICC (the operation must succeed).
fn queue(euicc: &mut Euicc, iccid: &str, op: Op) {
    let id = pid(iccid);
    match op {
        Op::Enable => assert_eq!(euicc.enable_profile(&id), EnableResult::Ok),
        Op::Disable => assert_eq!(euicc.disable_profile(&id), DisableResult::Ok),
        Op::Delete => assert_eq!(euicc.delete_profile(&id), DeleteResult::Ok),
    }
}

fn row_point(r: &OutboxRow) -> i64 {
    serde_json::from_str::<Value>(&r.body).unwrap()["notificationPointId"]
        .as_i64()
        .unwrap()
}

fn unb64(s: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.as_str().unwrap())
        .unwrap()
}

/// Waits until every outbox row is delivered (or panics after 20 s with the table).
async fn all_delivered(e: &Env) -> Vec<OutboxRow> {
    let store = e.server.store();
    for _ in 0..1000 {
        let rows = store.list_outbox(None, 10_000).await.unwrap();
        if !rows.is_empty() && rows.iter().all(|r| r.state == OutboxState::Delivered) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "not all delivered: {:?}",
        store.list_outbox(None, 10_000).await.unwrap()
    );
}

/// Long enough for the worker (polling every 20 ms) to send anything still due.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

/// The event is the move `from` -> `to` with `cause`, caused by (`eid`, `seq`) over ES9+.
fn assert_event(
    ev: &ProfileEvent,
    from: ProfileState,
    to: ProfileState,
    cause: &str,
    eid: &str,
    seq: i64,
) {
    assert_eq!(ev.from_state, Some(from), "{ev:?}");
    assert_eq!(ev.to_state, to, "{ev:?}");
    assert_eq!(ev.cause.as_deref(), Some(cause), "{ev:?}");
    assert_eq!(
        ev.detail.as_deref(),
        Some(format!("eid={eid} seqNumber={seq}").as_str()),
        "{ev:?}"
    );
    assert_eq!(ev.actor, "es9plus", "{ev:?}");
}

/// The outbox row and the receiver's call are the HandleDownloadProgressInfo of a
/// notification: point, Executed-Success, ICCID, EID, type and the DER sent as resultData.
fn assert_callback(
    row: &OutboxRow,
    call: &Received,
    point: i64,
    iccid: &str,
    eid: &str,
    profile_type: &str,
    raw: &[u8],
) {
    assert_eq!(row.kind, OutboxKind::Hdpi);
    assert_eq!(row.operator_id.as_deref(), Some("op-a"));
    assert_eq!(row.iccid.as_deref(), Some(iccid));
    assert_eq!(row.state, OutboxState::Delivered);
    assert_eq!(call.id(), row.id, "functionCallIdentifier is the row id");
    let b = &call.body;
    assert_eq!(b["notificationPointId"], point, "{b}");
    assert_eq!(
        b["notificationPointStatus"]["status"], "Executed-Success",
        "{b}"
    );
    assert_eq!(b["iccid"], iccid);
    assert_eq!(b["eid"], eid);
    assert_eq!(b["profileType"], profile_type);
    assert_eq!(
        unb64(&b["resultData"]),
        raw,
        "resultData is the notification"
    );
    let ts = b["timestamp"].as_str().unwrap();
    assert!(ts.len() == 20 && ts.ends_with('Z'), "{ts}");
    let stored: Value = serde_json::from_str(&row.body).unwrap();
    assert_eq!(stored["notificationPointId"], point);
    assert_eq!(unb64(&stored["resultData"]), raw);
}

// -------------------------------------------------------------------------- tests

/// The virtual eUICC enables, disables, enables, disables and deletes its profile; after
/// each delivery the server holds the state the eUICC reported, one event per move (cause,
/// EID and seqNumber), and the operator receives exactly one callback per notification
/// (points 100/101/100/101/102, in order, resultData = the DER sent). Then every
/// notification (the PIR too) is sent again: 204 each, and nothing changes anywhere.
async fn enable_disable_delete_move_the_state_and_reach_the_operator_once(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let (iccid, mid) = e.order("OBX", None).await;
    let mut euicc = sim_euicc(&e.pki);
    let eid = euicc.eid().to_owned();
    let pir = e.install(&mut euicc, &iccid, &mid, None).await;
    use ProfileState::{Disabled, Enabled, Installed, Unavailable};
    let steps = [
        (Op::Enable, Installed, Enabled, 100, "enabled"),
        (Op::Disable, Enabled, Disabled, 101, "disabled"),
        (Op::Enable, Disabled, Enabled, 100, "enabled"),
        (Op::Disable, Enabled, Disabled, 101, "disabled"),
        (Op::Delete, Disabled, Unavailable, 102, "deleted; retired"),
    ];
    let mut sent = vec![];
    let mut last_seq = None;
    for (op, from, to, point, cause) in steps {
        let before = e.events(&iccid).await.len();
        let (seq, raw) = e.act(&mut euicc, &iccid, op).await;
        assert!(last_seq < Some(seq), "seqNumbers grow");
        last_seq = Some(seq);
        assert_eq!(e.state(&iccid).await, to, "{op:?}");
        let events = e.events(&iccid).await;
        assert_eq!(events.len(), before + 1, "{op:?}: one event");
        assert_event(&events[before], from, to, cause, &eid, seq);
        assert_eq!(
            e.server.store().device_seq(&iccid).await.unwrap(),
            Some((eid.clone(), seq))
        );
        sent.push((seq, raw, point));
    }
    let p = e.server.profile(&iccid).await;
    assert_eq!(
        p.eid.as_deref(),
        Some(eid.as_str()),
        "a retired profile keeps its EID"
    );
    assert_eq!(p.operator_id.as_deref(), Some("op-a"));

    // The operator: one row and one call per notification, in order.
    all_delivered(&e).await;
    let rows = e.remote_rows(&iccid).await;
    let calls = e.rx.remote(&iccid);
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(calls.len(), 5, "each delivered once: {calls:?}");
    assert!(rows.iter().all(|r| r.attempts == 1));
    for ((row, call), (_, raw, point)) in rows.iter().zip(&calls).zip(&sent) {
        assert_callback(row, call, *point, &iccid, &eid, "OBX", raw);
    }

    // Everything again, as an LPA retrying: acknowledged, applied never twice.
    let events = e.events(&iccid).await.len();
    let outbox = e.outbox_len().await;
    let recorded = e.notifications_of(&eid).await;
    assert_eq!(recorded, 6, "the PIR and five notifications");
    for raw in std::iter::once(&pir).chain(sent.iter().map(|s| &s.1)) {
        assert_eq!(e.send(raw).await, 204);
        assert_eq!(e.state(&iccid).await, Unavailable);
        assert_eq!(e.events(&iccid).await.len(), events, "no new event");
        assert_eq!(e.outbox_len().await, outbox, "no new outbox row");
    }
    // Through the LPA's own client too (the resent delete).
    e.lpa
        .client()
        .call_no_output(
            &e.server.address(),
            smdpp_core::es9_json::Es9Function::HandleNotification,
            &smdpp_core::es9_json::HandleNotificationRequest {
                header: None,
                pending_notification: sent[4].1.clone(),
            },
        )
        .await
        .unwrap();
    settle().await;
    assert_eq!(e.state(&iccid).await, Unavailable);
    assert_eq!(e.events(&iccid).await.len(), events);
    assert_eq!(e.outbox_len().await, outbox);
    assert_eq!(e.notifications_of(&eid).await, recorded, "recorded once");
    assert_eq!(e.rx.remote(&iccid).len(), 5, "no callback for a repeat");
    assert_eq!(
        e.server.store().device_seq(&iccid).await.unwrap(),
        Some((eid.clone(), sent[4].0))
    );
    e.server.stop().await;
}

/// Enable (seq n) and disable (seq n+1) queued together, delivered n+1 first: the profile is
/// Disabled, and the late enable (older) is acknowledged but changes nothing: no event, no
/// callback, the guard stays at n+1.
async fn older_notification_does_not_roll_back(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let (iccid, mid) = e.order("OBX", None).await;
    let mut euicc = sim_euicc(&e.pki);
    let eid = euicc.eid().to_owned();
    e.install(&mut euicc, &iccid, &mid, None).await;
    queue(&mut euicc, &iccid, Op::Enable);
    queue(&mut euicc, &iccid, Op::Disable);
    let q = pending(&euicc);
    assert_eq!(q.len(), 2);
    let (n, enable) = q[0].clone();
    let (n1, disable) = q[1].clone();
    assert_eq!(n1, n + 1);
    let before = e.events(&iccid).await.len();

    e.lpa.send_notification(&mut euicc, n1).await.unwrap();
    assert_eq!(e.state(&iccid).await, ProfileState::Disabled);
    e.lpa.send_notification(&mut euicc, n).await.unwrap();
    assert_eq!(
        e.state(&iccid).await,
        ProfileState::Disabled,
        "no roll-back"
    );
    assert!(pending(&euicc).is_empty());

    let events = e.events(&iccid).await;
    assert_eq!(events.len(), before + 1, "{events:?}");
    assert_event(
        &events[before],
        ProfileState::Installed,
        ProfileState::Disabled,
        "disabled",
        &eid,
        n1,
    );
    assert_eq!(
        e.server.store().device_seq(&iccid).await.unwrap(),
        Some((eid.clone(), n1))
    );
    // Both were received and recorded; only the newer one moved the state.
    let recorded = e.server.store().list_notifications(&eid).await.unwrap();
    let events_of: HashMap<i64, String> = recorded
        .iter()
        .map(|r| (r.seq_number, r.event.clone()))
        .collect();
    assert_eq!(events_of.get(&n).map(String::as_str), Some("enable"));
    assert_eq!(events_of.get(&n1).map(String::as_str), Some("disable"));

    all_delivered(&e).await;
    let rows = e.remote_rows(&iccid).await;
    let calls = e.rx.remote(&iccid);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_callback(&rows[0], &calls[0], 101, &iccid, &eid, "OBX", &disable);
    // The enable sent once more: still nothing.
    assert_eq!(e.send(&enable).await, 204);
    settle().await;
    assert_eq!(e.state(&iccid).await, ProfileState::Disabled);
    assert_eq!(e.events(&iccid).await.len(), before + 1);
    assert_eq!(e.remote_rows(&iccid).await.len(), 1);
    assert_eq!(e.rx.remote(&iccid).len(), 1);
    e.server.stop().await;
}

/// The operator's endpoint is down while five notifications are processed (the states move
/// regardless, the rows wait and are retried); once it listens again on the same port each
/// callback arrives, every row id once after de-duplication, two enables, two disables and
/// one delete, each with its own notification as resultData.
async fn receiver_down_then_up_gets_each_notification_once(dir: &Path, db: &Db) {
    let mut e = env(dir, db).await;
    e.rx.stop().await;
    let (iccid, mid) = e.order("OBX", None).await;
    let mut euicc = sim_euicc(&e.pki);
    let eid = euicc.eid().to_owned();
    e.install(&mut euicc, &iccid, &mid, None).await;
    let mut sent = HashMap::new();
    for (op, to) in [
        (Op::Enable, ProfileState::Enabled),
        (Op::Disable, ProfileState::Disabled),
        (Op::Enable, ProfileState::Enabled),
        (Op::Disable, ProfileState::Disabled),
        (Op::Delete, ProfileState::Unavailable),
    ] {
        let (seq, raw) = e.act(&mut euicc, &iccid, op).await;
        assert_eq!(e.state(&iccid).await, to);
        sent.insert(seq, raw);
    }
    // Three download points and five remote ones, all failing for now.
    for _ in 0..500 {
        let rows = e.server.store().list_outbox(None, 100).await.unwrap();
        if rows.len() == 8 && rows.iter().all(|r| r.attempts >= 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pending_rows = e
        .server
        .store()
        .list_outbox(Some(OutboxState::Pending), 100)
        .await
        .unwrap();
    assert_eq!(pending_rows.len(), 8, "{pending_rows:?}");
    assert!(
        pending_rows
            .iter()
            .all(|r| r.attempts >= 2 && r.last_error.is_some()),
        "{pending_rows:?}"
    );
    assert!(e.rx.calls().is_empty());

    e.rx.restart().await;
    all_delivered(&e).await;
    settle().await;
    let rows = e.remote_rows(&iccid).await;
    assert_eq!(rows.len(), 5);
    let want: HashSet<String> = rows.iter().map(|r| r.id.clone()).collect();
    let unique = e.rx.remote_unique(&iccid);
    let got: HashSet<String> = unique.iter().map(Received::id).collect();
    assert_eq!(got, want, "every row once, no stranger");
    assert_eq!(unique.len(), 5);
    let mut per_point: HashMap<i64, usize> = HashMap::new();
    for c in &unique {
        *per_point.entry(c.point()).or_default() += 1;
    }
    assert_eq!(per_point, HashMap::from([(100, 2), (101, 2), (102, 1)]));
    // Each call carries one of the notifications sent, each notification in one call.
    let mut carried: Vec<Vec<u8>> = unique
        .iter()
        .map(|c| unb64(&c.body["resultData"]))
        .collect();
    let mut want_raw: Vec<Vec<u8>> = sent.values().cloned().collect();
    carried.sort();
    want_raw.sort();
    assert_eq!(carried, want_raw);
    for c in &unique {
        assert_eq!(c.body["eid"], eid.as_str());
        assert_eq!(
            c.body["notificationPointStatus"]["status"],
            "Executed-Success"
        );
    }
    // The download points arrived too, and nothing is left to send.
    assert!(
        e.server
            .store()
            .list_outbox(None, 100)
            .await
            .unwrap()
            .iter()
            .all(|r| r.state == OutboxState::Delivered)
    );
    e.server.stop().await;
}

/// A delete retires the profile (Unavailable, never ordered again) when its type says
/// nothing (`retire` is the default of `types add`), and also for a profile without any
/// type or operator (no callback then).
async fn delete_retires_by_default(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    e.add_type("RET", OnDelete::Retire).await;
    let (iccid, mid) = e.order("RET", None).await;
    let mut euicc = sim_euicc(&e.pki);
    let eid = euicc.eid().to_owned();
    e.install(&mut euicc, &iccid, &mid, None).await;
    let before = e.events(&iccid).await.len();
    // Installed (disabled on the card) -> deleted.
    let (seq, raw) = e.act(&mut euicc, &iccid, Op::Delete).await;
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Unavailable);
    assert_eq!(p.eid.as_deref(), Some(eid.as_str()));
    let events = e.events(&iccid).await;
    assert_eq!(events.len(), before + 1);
    assert_event(
        &events[before],
        ProfileState::Installed,
        ProfileState::Unavailable,
        "deleted; retired",
        &eid,
        seq,
    );
    all_delivered(&e).await;
    let rows = e.remote_rows(&iccid).await;
    let calls = e.rx.remote(&iccid);
    assert_eq!((rows.len(), calls.len()), (1, 1));
    assert_callback(&rows[0], &calls[0], 102, &iccid, &eid, "RET", &raw);
    // A retired ICCID is not handed out again.
    let v = es2_call(
        &e.server,
        "op-a",
        &e.op,
        "downloadOrder",
        json!({"iccid": iccid}),
    )
    .await;
    assert_eq!(
        v["header"]["functionExecutionStatus"]["status"], "Failed",
        "{v}"
    );
    assert_eq!(e.state(&iccid).await, ProfileState::Unavailable);

    // A profile without type nor operator (`profiles add`): retired, nobody to call.
    let upp = demo_upp(&fresh_iccid()).unwrap();
    let (mid2, iccid2) = e.server.add(&upp, None, None).await;
    let p2 = e.server.profile(&iccid2).await;
    assert_eq!((p2.profile_type, p2.operator_id), (None, None));
    let mut euicc2 = sim_euicc(&e.pki);
    let eid2 = euicc2.eid().to_owned();
    e.install(&mut euicc2, &iccid2, &mid2, None).await;
    let outbox = e.outbox_len().await;
    // Its metadata asked for every operation: enable, disable and delete all arrive.
    let (s1, _) = e.act(&mut euicc2, &iccid2, Op::Enable).await;
    assert_eq!(e.state(&iccid2).await, ProfileState::Enabled);
    let (s2, _) = e.act(&mut euicc2, &iccid2, Op::Disable).await;
    assert_eq!(e.state(&iccid2).await, ProfileState::Disabled);
    let (s3, _) = e.act(&mut euicc2, &iccid2, Op::Delete).await;
    assert_eq!(e.state(&iccid2).await, ProfileState::Unavailable);
    let events = e.events(&iccid2).await;
    let n = events.len();
    assert_event(
        &events[n - 3],
        ProfileState::Installed,
        ProfileState::Enabled,
        "enabled",
        &eid2,
        s1,
    );
    assert_event(
        &events[n - 2],
        ProfileState::Enabled,
        ProfileState::Disabled,
        "disabled",
        &eid2,
        s2,
    );
    assert_event(
        &events[n - 1],
        ProfileState::Disabled,
        ProfileState::Unavailable,
        "deleted; retired",
        &eid2,
        s3,
    );
    settle().await;
    assert_eq!(e.outbox_len().await, outbox, "no operator, no callback");
    assert!(e.rx.remote(&iccid2).is_empty());
    e.server.stop().await;
}

/// A type with `on_delete = reuse`: the delete returns the profile to Available with every
/// trace of its order cleared (EID, MatchingID, Confirmation Code hash, counters, SM-DS
/// address, expiry, error cause, sequence guard, cached BPP); a new order then downloads it
/// to a DIFFERENT eUICC, whose notifications apply from its own seqNumbers, while the first
/// eUICC's notifications change nothing any more.
async fn delete_reuses_when_the_type_says_so(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    e.add_type("REUSE", OnDelete::Reuse).await;
    assert_eq!(
        e.server
            .store()
            .get_profile_type("REUSE")
            .await
            .unwrap()
            .unwrap()
            .on_delete,
        OnDelete::Reuse
    );
    let (iccid, mid) = e.order("REUSE", Some("1234")).await;
    let p = e.server.profile(&iccid).await;
    assert!(p.cc_hash.is_some());
    let mut first = sim_euicc(&e.pki);
    let eid1 = first.eid().to_owned();
    e.install(&mut first, &iccid, &mid, Some("1234")).await;
    assert!(e.server.profile(&iccid).await.download_attempts > 0);
    let (_, enable1) = e.act(&mut first, &iccid, Op::Enable).await;
    e.act(&mut first, &iccid, Op::Disable).await;
    assert_eq!(e.state(&iccid).await, ProfileState::Disabled);
    let before = e.events(&iccid).await.len();
    let (seq, delete1) = e.act(&mut first, &iccid, Op::Delete).await;

    let p = e.server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Available);
    assert_eq!(p.eid, None);
    assert_eq!(p.matching_id, None);
    assert_eq!(p.cc_hash, None);
    assert_eq!(p.cc_attempts, 0);
    assert_eq!(p.download_attempts, 0);
    assert_eq!(p.error_cause, None);
    assert_eq!(p.smds_address, None);
    assert_eq!(p.expires_at, None);
    assert_eq!(p.operator_id.as_deref(), Some("op-a"), "still op-a's");
    assert_eq!(p.profile_type.as_deref(), Some("REUSE"));
    assert!(p.upp.is_some(), "its package is kept for the next order");
    assert_eq!(e.server.store().device_seq(&iccid).await.unwrap(), None);
    let side = e.server.sidecar().await;
    assert!(side.get_bpp(&iccid).await.unwrap().is_none());
    side.close().await;
    let events = e.events(&iccid).await;
    assert_eq!(events.len(), before + 1);
    assert_event(
        &events[before],
        ProfileState::Disabled,
        ProfileState::Available,
        "deleted; reused",
        &eid1,
        seq,
    );
    all_delivered(&e).await;
    let rows = e.remote_rows(&iccid).await;
    let calls = e.rx.remote(&iccid);
    assert_eq!((rows.len(), calls.len()), (3, 3));
    assert_callback(&rows[2], &calls[2], 102, &iccid, &eid1, "REUSE", &delete1);

    // The first eUICC's notifications again: it no longer holds the profile.
    for raw in [&enable1, &delete1] {
        assert_eq!(e.send(raw).await, 204);
        assert_eq!(e.state(&iccid).await, ProfileState::Available);
    }
    assert_eq!(e.events(&iccid).await.len(), before + 1);

    // A new order for the same ICCID, downloaded by another eUICC.
    let mid2 = e.release(&iccid, None).await;
    assert_ne!(mid2, mid);
    let mut second = sim_euicc(&e.pki);
    let eid2 = second.eid().to_owned();
    assert_ne!(eid2, eid1);
    e.install(&mut second, &iccid, &mid2, None).await;
    let before = e.events(&iccid).await.len();
    let (seq2, enable2) = e.act(&mut second, &iccid, Op::Enable).await;
    assert_eq!(e.state(&iccid).await, ProfileState::Enabled);
    let events = e.events(&iccid).await;
    assert_eq!(events.len(), before + 1);
    assert_event(
        &events[before],
        ProfileState::Installed,
        ProfileState::Enabled,
        "enabled",
        &eid2,
        seq2,
    );
    assert_eq!(
        e.server.store().device_seq(&iccid).await.unwrap(),
        Some((eid2.clone(), seq2))
    );
    // The first eUICC's old delete still changes nothing (the profile is on another EID).
    assert_eq!(e.send(&delete1).await, 204);
    assert_eq!(e.state(&iccid).await, ProfileState::Enabled);
    assert_eq!(e.events(&iccid).await.len(), before + 1);

    all_delivered(&e).await;
    let rows = e.remote_rows(&iccid).await;
    let calls = e.rx.remote(&iccid);
    assert_eq!((rows.len(), calls.len()), (4, 4));
    assert_callback(&rows[3], &calls[3], 100, &iccid, &eid2, "REUSE", &enable2);
    e.server.stop().await;
}

/// A correctly signed notification (an eUICC of the same EUM, so its chain verifies) about
/// the profile's ICCID from an eUICC that is not the profile's: acknowledged, nothing changes
/// (state, events, outbox, sequence guard); the genuine eUICC's delete still applies.
async fn rejects_notification_from_another_eid(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let (iccid, mid) = e.order("OBX", None).await;
    let mut euicc = sim_euicc(&e.pki);
    let eid = euicc.eid().to_owned();
    e.install(&mut euicc, &iccid, &mid, None).await;
    let other_eid = sim_euicc(&e.pki).eid().to_owned();
    assert_ne!(other_eid, eid);
    let other = Card::sibling(&e.pki, &other_eid);
    let events = e.events(&iccid).await.len();
    let outbox = e.outbox_len().await;
    for (seq, bit) in [(1000, 3), (1001, 1), (1002, 2), (1003, 6), (1004, 4)] {
        let raw = other.other_notification(seq, &iccid, bit, false);
        assert_eq!(e.send(&raw).await, 204, "bit {bit}");
        assert_eq!(e.state(&iccid).await, ProfileState::Installed, "bit {bit}");
    }
    settle().await;
    let p = e.server.profile(&iccid).await;
    assert_eq!(p.eid.as_deref(), Some(eid.as_str()));
    assert_eq!(e.events(&iccid).await.len(), events);
    assert_eq!(e.outbox_len().await, outbox);
    assert!(e.remote_rows(&iccid).await.is_empty());
    assert!(e.rx.remote(&iccid).is_empty());
    assert_eq!(e.server.store().device_seq(&iccid).await.unwrap(), None);
    // The profile's own eUICC (with its small seqNumbers) is unaffected.
    let (seq, raw) = e.act(&mut euicc, &iccid, Op::Delete).await;
    assert!(seq < 1000);
    assert_eq!(e.state(&iccid).await, ProfileState::Unavailable);
    all_delivered(&e).await;
    let rows = e.remote_rows(&iccid).await;
    let calls = e.rx.remote(&iccid);
    assert_eq!((rows.len(), calls.len()), (1, 1));
    assert_callback(&rows[0], &calls[0], 102, &iccid, &eid, "OBX", &raw);
    e.server.stop().await;
}

/// Hand-made notifications with the SGP.22 v3 RPM bits 4 (enable), 5 (disable) and
/// 6 (delete), signed for the profile's EID: the same moves, causes and callbacks as bits
/// 1, 2 and 3; a repeat changes nothing.
async fn v3_rpm_bits_move_the_state(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let (iccid, mid) = e.order("OBX", None).await;
    let mut euicc = sim_euicc(&e.pki);
    let eid = euicc.eid().to_owned();
    e.install(&mut euicc, &iccid, &mid, None).await;
    // Another certificate for the same EID under the same EUM: what the server checks is the
    // chain and the EID in it.
    let card = Card::sibling(&e.pki, &eid);
    use ProfileState::{Disabled, Enabled, Installed, Unavailable};
    let steps = [
        (100, 4, Installed, Enabled, 100, "enabled"),
        (101, 5, Enabled, Disabled, 101, "disabled"),
        (102, 4, Disabled, Enabled, 100, "enabled"),
        (103, 5, Enabled, Disabled, 101, "disabled"),
        (104, 6, Disabled, Unavailable, 102, "deleted; retired"),
    ];
    let mut sent = vec![];
    for (seq, bit, from, to, point, cause) in steps {
        let before = e.events(&iccid).await.len();
        let raw = card.other_notification(seq, &iccid, bit, false);
        assert_eq!(e.send(&raw).await, 204);
        assert_eq!(e.state(&iccid).await, to, "bit {bit}");
        let events = e.events(&iccid).await;
        assert_eq!(events.len(), before + 1, "bit {bit}");
        assert_event(&events[before], from, to, cause, &eid, seq);
        sent.push((raw, point));
    }
    let recorded = e.server.store().list_notifications(&eid).await.unwrap();
    let names: Vec<_> = recorded
        .iter()
        .filter(|n| n.seq_number >= 100)
        .map(|n| n.event.as_str())
        .collect();
    assert_eq!(names, ["enable", "disable", "enable", "disable", "delete"]);
    all_delivered(&e).await;
    let rows = e.remote_rows(&iccid).await;
    let calls = e.rx.remote(&iccid);
    assert_eq!((rows.len(), calls.len()), (5, 5));
    for ((row, call), (raw, point)) in rows.iter().zip(&calls).zip(&sent) {
        assert_callback(row, call, *point, &iccid, &eid, "OBX", raw);
    }
    // Repeats (the newest and an older one), and a newer enable for the deleted profile
    // (nothing to enable: the profile is no longer on the eUICC).
    let events = e.events(&iccid).await.len();
    let outbox = e.outbox_len().await;
    let late = card.other_notification(105, &iccid, 4, false);
    for raw in [&sent[4].0, &sent[0].0, &late] {
        assert_eq!(e.send(raw).await, 204);
    }
    settle().await;
    assert_eq!(e.state(&iccid).await, Unavailable);
    assert_eq!(e.events(&iccid).await.len(), events);
    assert_eq!(e.outbox_len().await, outbox);
    assert_eq!(e.rx.remote(&iccid).len(), 5);
    assert_eq!(
        e.server.store().device_seq(&iccid).await.unwrap(),
        Some((eid.clone(), 104))
    );
    e.server.stop().await;
}

/// Notifications whose signature does not verify (every operation bit), or whose
/// certificate chain leads to a CI the server does not trust: 204, nothing changes and
/// nothing is recorded; the seqNumber they claimed is still free for the genuine
/// notification, which then applies.
async fn forged_notification_changes_nothing(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let (iccid, mid) = e.order("OBX", None).await;
    let mut euicc = sim_euicc(&e.pki);
    let eid = euicc.eid().to_owned();
    e.install(&mut euicc, &iccid, &mid, None).await;
    let card = Card::sibling(&e.pki, &eid);
    let stranger = Card::sibling(&make_pki(Curve::NistP256), &eid);
    let events = e.events(&iccid).await.len();
    let outbox = e.outbox_len().await;
    let recorded = e.notifications_of(&eid).await;
    assert_eq!(recorded, 1, "the PIR");
    for bit in [1, 2, 3, 4, 5, 6] {
        let forged = card.other_notification(50, &iccid, bit, true);
        assert_eq!(e.send(&forged).await, 204, "bit {bit}");
        let untrusted = stranger.other_notification(50, &iccid, bit, false);
        assert_eq!(e.send(&untrusted).await, 204, "bit {bit}");
        assert_eq!(e.state(&iccid).await, ProfileState::Installed, "bit {bit}");
    }
    settle().await;
    assert_eq!(e.events(&iccid).await.len(), events);
    assert_eq!(e.outbox_len().await, outbox);
    assert!(e.rx.remote(&iccid).is_empty());
    assert_eq!(e.notifications_of(&eid).await, recorded, "nothing recorded");
    assert_eq!(e.server.store().device_seq(&iccid).await.unwrap(), None);
    // The genuine notification with the same seqNumber applies.
    let raw = card.other_notification(50, &iccid, 3, false);
    assert_eq!(e.send(&raw).await, 204);
    assert_eq!(e.state(&iccid).await, ProfileState::Unavailable);
    let ev = e.events(&iccid).await;
    assert_eq!(ev.len(), events + 1);
    assert_event(
        &ev[events],
        ProfileState::Installed,
        ProfileState::Unavailable,
        "deleted; retired",
        &eid,
        50,
    );
    all_delivered(&e).await;
    let rows = e.remote_rows(&iccid).await;
    let calls = e.rx.remote(&iccid);
    assert_eq!((rows.len(), calls.len()), (1, 1));
    assert_callback(&rows[0], &calls[0], 102, &iccid, &eid, "OBX", &raw);
    e.server.stop().await;
}

/// The same notifications sent many times at once (an LPA retrying while the first answer
/// is on its way), an enable (seq n) and a disable (seq n+1) racing: every call gets 204,
/// each seqNumber moves the state at most once, the newer always wins (Disabled), and every
/// move has exactly one event and one callback.
async fn concurrent_repeats_apply_once(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let (iccid, mid) = e.order("OBX", None).await;
    let mut euicc = sim_euicc(&e.pki);
    let eid = euicc.eid().to_owned();
    e.install(&mut euicc, &iccid, &mid, None).await;
    queue(&mut euicc, &iccid, Op::Enable);
    queue(&mut euicc, &iccid, Op::Disable);
    let q = pending(&euicc);
    let (n, n1) = (q[0].0, q[1].0);
    let before = e.events(&iccid).await.len();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let raw = q[i % 2].1.clone();
        let addr = e.server.addr;
        let leaf = e.server.tls_leaf.clone();
        tasks.spawn(async move {
            let body = json!({ "pendingNotification": b64(&raw) }).to_string();
            https_post(addr, &leaf, "handleNotification", &body).await.0
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 204);
    }
    assert_eq!(e.state(&iccid).await, ProfileState::Disabled);
    assert_eq!(
        e.server.store().device_seq(&iccid).await.unwrap(),
        Some((eid.clone(), n1))
    );
    let events = e.events(&iccid).await[before..].to_vec();
    let of = |seq: i64| {
        let d = format!("eid={eid} seqNumber={seq}");
        events
            .iter()
            .filter(|ev| ev.detail.as_deref() == Some(d.as_str()))
            .count()
    };
    assert_eq!(of(n1), 1, "{events:?}");
    assert!(of(n) <= 1, "{events:?}");
    assert_eq!(events.len(), of(n) + of(n1), "{events:?}");
    assert_eq!(events.last().unwrap().cause.as_deref(), Some("disabled"));
    all_delivered(&e).await;
    settle().await;
    let rows = e.remote_rows(&iccid).await;
    assert_eq!(rows.len(), events.len(), "{rows:?}");
    assert_eq!(e.rx.remote(&iccid).len(), rows.len());
    assert_eq!(
        e.notifications_of(&eid).await,
        3,
        "the PIR, n and n+1, once each"
    );
    e.server.stop().await;
}

/// A v3 virtual eUICC (announces rpmSupport, highestSvn 3.1.0).
fn v3_euicc(pki: &TestPki) -> Euicc {
    let prov = euicc_sim::Provisioning {
        eum_certificate: pki.eum.der.clone(),
        eum_key: Box::new(rsp_crypto::SoftwareKey::from_pem(&pki.eum.key.to_pkcs8_pem()).unwrap()),
        trusted_cis: vec![pki.ci.der.clone()],
    };
    let mut st = euicc_sim::state::EuiccState::generate(&prov, None).unwrap();
    st.v3 = true;
    Euicc::from_state(st).unwrap()
}

/// ES2+.RpmOrder over mutual TLS, then `Lpa::poll` of the v3 virtual eUICC against the real
/// server: enable; a two-command package (disable + updateMetadata); listProfileInfo; delete.
/// The eUICC's RPM notifications (bits 4-6) move the state, every signed result reaches the
/// operator once (point 103) and ends its order executed; a v2 eUICC is refused at order
/// time; a replayed RpmOrder (same functionCallIdentifier) returns the same MatchingID.
async fn rpm_orders_run_on_a_v3_euicc_with_results_at_the_operator(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    e.add_type("rpm", OnDelete::Retire).await;
    let (iccid, mid) = e.order("rpm", None).await;
    let mut euicc = v3_euicc(&e.pki);
    e.install(&mut euicc, &iccid, &mid, None).await;
    let opts = euicc_sim::lpa::PollOptions::default();
    let (server, op) = (&e.server, &e.op);
    let order = |cmds: Value, fci: &str| {
        let mut body = json!({"iccid": iccid, "commands": cmds});
        body["header"] =
            json!({"functionRequesterIdentifier": "op-a", "functionCallIdentifier": fci});
        async move {
            let (status, bytes) =
                es2_request(server, "rpmOrder", &body.to_string(), Some(op)).await;
            assert_eq!(status, 200);
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            assert_es2_success("rpmOrder", &v);
            v["matchingId"].as_str().unwrap().to_owned()
        }
    };

    // 1. enable
    let m1 = order(json!([{"command": "enable"}]), "rpm-1").await;
    assert_eq!(
        order(json!([{"command": "enable"}]), "rpm-1").await,
        m1,
        "replay"
    );
    let r = e.lpa.poll(&mut euicc, &opts).await.unwrap();
    assert_eq!(r.packages.len(), 1, "{r:?}");
    assert!(
        r.packages[0].result_sent && r.packages[0].commands[0].ok,
        "{r:?}"
    );
    settle().await;
    assert_eq!(e.state(&iccid).await, ProfileState::Enabled);
    // 2. disable + updateMetadata in one package
    order(
        json!([{"command": "disable"}, {"command": "updateMetadata", "metadata": {"profileName": "Renamed"}}]),
        "rpm-2",
    )
    .await;
    let r = e.lpa.poll(&mut euicc, &opts).await.unwrap();
    let cmds = &r.packages[0].commands;
    assert_eq!(cmds.len(), 2, "{r:?}");
    assert!(cmds.iter().all(|c| c.ok), "{r:?}");
    settle().await;
    assert_eq!(e.state(&iccid).await, ProfileState::Disabled);
    // 2b. the type's metadata changes (`smdpp types update`): the installed profile gets
    // it through an RPM updateMetadata (`smdpp orders update-metadata --type`).
    let mut t = e
        .server
        .store()
        .get_profile_type("rpm")
        .await
        .unwrap()
        .unwrap();
    t.service_provider_name = "New SP".into();
    assert!(
        e.server
            .store()
            .update_profile_type_metadata("rpm", &t)
            .await
            .unwrap()
    );
    let engine = smdpp_service::Es2Engine::new(
        e.server.store().clone(),
        e.server.sidecar().await,
        smdpp_service::ServiceConfig {
            smdp_address: e.server.address(),
            limits: smdpp_service::Limits::default(),
        },
    );
    let upd = engine.queue_metadata_update("op-a", &iccid).await.unwrap();
    assert_eq!(upd.commands, "updateMetadata");
    assert_eq!(upd.origin, "metadata-update");
    let r = e.lpa.poll(&mut euicc, &opts).await.unwrap();
    assert!(r.packages[0].commands[0].ok, "{r:?}");
    let on_card = euicc
        .state()
        .profiles
        .iter()
        .find(|p| p.iccid == iccid)
        .unwrap();
    assert_eq!(on_card.service_provider_name, "New SP", "{on_card:?}");
    // 3. delete
    order(json!([{"command": "delete"}]), "rpm-3").await;
    let r = e.lpa.poll(&mut euicc, &opts).await.unwrap();
    assert!(r.packages[0].commands[0].ok, "{r:?}");
    settle().await;
    assert_eq!(e.state(&iccid).await, ProfileState::Unavailable);
    assert!(euicc.state().profiles.iter().all(|p| p.iccid != iccid));
    // Every order executed; nothing more waits.
    let orders = e.server.store().rpm_orders_for(&iccid).await.unwrap();
    assert_eq!(orders.len(), 4);
    assert!(
        orders
            .iter()
            .all(|o| o.state == smdpp_store::RpmOrderState::Executed),
        "{orders:?}"
    );
    // The operator got each result once (103) and the moves (100, 101, 102).
    all_delivered(&e).await;
    let mut points: HashMap<i64, usize> = HashMap::new();
    for c in e.rx.remote_unique(&iccid) {
        *points.entry(c.point()).or_default() += 1;
    }
    assert_eq!(points.get(&103), Some(&4), "{points:?}");
    assert_eq!(points.get(&100), Some(&1), "{points:?}");
    assert_eq!(points.get(&101), Some(&1), "{points:?}");
    assert_eq!(points.get(&102), Some(&1), "{points:?}");

    // A v2 eUICC: refused at order time with 8.1.1/3.8.
    let (iccid2, mid2) = e.order("rpm", None).await;
    let mut v2 = sim_euicc(&e.pki);
    e.install(&mut v2, &iccid2, &mid2, None).await;
    let v = es2_call(
        &e.server,
        "op-a",
        &e.op,
        "rpmOrder",
        json!({"iccid": iccid2, "commands": [{"command": "disable"}]}),
    )
    .await;
    assert_eq!(v["header"]["functionExecutionStatus"]["status"], "Failed");
    assert_eq!(
        v["header"]["functionExecutionStatus"]["statusCodeData"]["subjectCode"],
        "8.1.1"
    );
    assert_eq!(
        v["header"]["functionExecutionStatus"]["statusCodeData"]["reasonCode"],
        "3.8"
    );
    e.server.stop().await;
}

both_backends!(
    rpm_orders_run_on_a_v3_euicc_with_results_at_the_operator,
    enable_disable_delete_move_the_state_and_reach_the_operator_once,
    older_notification_does_not_roll_back,
    receiver_down_then_up_gets_each_notification_once,
    delete_retires_by_default,
    delete_reuses_when_the_type_says_so,
    rejects_notification_from_another_eid,
    v3_rpm_bits_move_the_state,
    forged_notification_changes_nothing,
    concurrent_repeats_apply_once,
);
