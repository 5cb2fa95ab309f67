//! The durable outbox end to end: ES2+.HandleDownloadProgressInfo (SGP.22 section 5.3.5) and
//! ES12.RegisterEvent/DeleteEvent (section 5.9) delivered by the worker of `serve` over REAL
//! mutual TLS to a REAL HTTPS receiver started here (our own hyper server with a TLS
//! client-certificate check pinned to the server's CERT.DP.TLS, recording every call), with
//! the virtual eUICC of `crates/euicc-sim` driving the downloads. On SQLite and (when
//! `SMDPP_TEST_PG_URL` is set) PostgreSQL. Backoff is in milliseconds to keep tests short.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use euicc_sim::lpa::{DownloadOptions, Lpa};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rsp_crypto::{Curve, KeyCustody};
use rsp_pki::TestPki;
use rustls::pki_types::PrivateKeyDer;
use serde_json::{Value, json};
use smdpp_service::inventory::import_inventory;
use smdpp_service::operators::add_operator;
use smdpp_service::outbox::OutboxConfig;
use smdpp_service::upp::demo_upp;
use smdpp_store::{OutboxKind, OutboxRow, OutboxState, ProfileState, Store};

// ------------------------------------------------------------------- the receiver

/// One call as received.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    admin_protocol: Option<String>,
    body: Value,
}

/// An operator / SM-DS endpoint: HTTPS on a fixed port, stoppable and restartable.
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
        Receiver::with_versions(dir, client_leaf, rustls::DEFAULT_VERSIONS).await
    }

    /// [`Receiver::new`] speaking only the TLS `versions`.
    async fn with_versions(
        dir: &Path,
        client_leaf: Vec<u8>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Receiver {
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
            .with_protocol_versions(versions)
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

    fn smds_address(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
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
                    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let calls = Arc::clone(&calls);
                        async move {
                            let path = req.uri().path().to_owned();
                            let admin_protocol = req
                                .headers()
                                .get("x-admin-protocol")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned);
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let body: Value = serde_json::from_slice(&body).unwrap();
                            calls.lock().unwrap().push(Received {
                                path: path.clone(),
                                admin_protocol,
                                body,
                            });
                            let resp = if path.ends_with("handleDownloadProgressInfo") {
                                // Section 6.3: a notification is answered 204, empty body.
                                hyper::Response::builder()
                                    .status(204)
                                    .body(Full::new(Bytes::new()))
                            } else {
                                hyper::Response::builder()
                                    .status(200)
                                    .header("content-type", "application/json")
                                    .header("x-admin-protocol", "gsma/rsp/v2.2.0")
                                    .body(Full::new(Bytes::from(
                                        json!({"header":{"functionExecutionStatus":{"status":"Executed-Success"}}})
                                            .to_string(),
                                    )))
                            };
                            Ok::<_, std::convert::Infallible>(resp.unwrap())
                        }
                    });
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

    /// Calls on `path_suffix`, first delivery per functionCallIdentifier, in arrival order.
    fn unique(&self, path_suffix: &str) -> Vec<Received> {
        let mut seen = HashSet::new();
        self.calls()
            .into_iter()
            .filter(|c| c.path.ends_with(path_suffix))
            .filter(|c| {
                seen.insert(
                    c.body["header"]["functionCallIdentifier"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            })
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

async fn env_with(
    dir: &Path,
    db: &Db,
    tweak: impl FnOnce(&mut smdpp_service::assembly::Settings),
) -> Env {
    let (pki, mut s) = pki_settings(dir, db, Curve::NistP256);
    let rx = Receiver::new(dir, pki.dptls.der.clone()).await;
    s.limits.outbox = fast_outbox(rx.ca_file.clone());
    tweak(&mut s);
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

static ICCIDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Env {
    fn ac(&self, mid: &str) -> String {
        format!("LPA:1${}${mid}", self.server.address())
    }

    async fn inventory(&self, profile_type: &str) -> String {
        let side = self.server.sidecar().await;
        let n = ICCIDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let upp = demo_upp(&format!("8999902{n:012}")).unwrap();
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

    /// DownloadOrder + ConfirmOrder(releaseFlag) for a fresh profile; returns (ICCID,
    /// MatchingID).
    async fn order(&self, extra_confirm: Value, eid: Option<&str>) -> (String, String) {
        let iccid = self.inventory("OBX").await;
        let mut dl = json!({"iccid": iccid});
        if let Some(e) = eid {
            dl["eid"] = json!(e);
        }
        self.call("downloadOrder", dl).await;
        let mut c = json!({"iccid": iccid, "releaseFlag": true});
        for (k, v) in extra_confirm.as_object().unwrap() {
            c[k] = v.clone();
        }
        let r = self.call("confirmOrder", c).await;
        (iccid, r["matchingId"].as_str().unwrap().to_owned())
    }
}

/// Waits until every outbox row is delivered (or panics after 20 s with the table).
async fn all_delivered(store: &Store) -> Vec<OutboxRow> {
    for _ in 0..1000 {
        let rows = store.list_outbox(None, 1000).await.unwrap();
        if !rows.is_empty() && rows.iter().all(|r| r.state == OutboxState::Delivered) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "not all delivered: {:?}",
        store.list_outbox(None, 1000).await.unwrap()
    );
}

fn points(calls: &[Received]) -> Vec<(i64, String)> {
    calls
        .iter()
        .map(|c| {
            (
                c.body["notificationPointId"].as_i64().unwrap(),
                c.body["notificationPointStatus"]["status"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

/// Every row id was received at least once on `suffix`, and nothing else was.
fn assert_ids_received(rows: &[OutboxRow], kind: OutboxKind, rx: &Receiver, suffix: &str) {
    let want: HashSet<String> = rows
        .iter()
        .filter(|r| r.kind == kind)
        .map(|r| r.id.clone())
        .collect();
    let got: HashSet<String> = rx
        .unique(suffix)
        .iter()
        .map(|c| {
            c.body["header"]["functionCallIdentifier"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(want, got, "{kind}: every queued id delivered, no stranger");
}

// -------------------------------------------------------------------------- tests

/// A full ES2+ order + download: points 1 (eligibility), 3 (BPP download) and 4 (BPP
/// installation, with resultData) arrive in that order, with the ES2+ header (our address as
/// requester, the stable row id as functionCallIdentifier), each id once.
async fn hdpi_for_a_download(dir: &Path, db: &Db) {
    let e = env_with(dir, db, |_| {}).await;
    let (iccid, mid) = e.order(json!({}), None).await;
    let mut euicc = sim_euicc(&e.pki);
    let out = e
        .lpa
        .download(&mut euicc, &e.ac(&mid), &DownloadOptions::default())
        .await
        .unwrap();
    assert!(out.notification_sent);
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Installed
    );
    let rows = all_delivered(e.server.store()).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.kind == OutboxKind::Hdpi && r.attempts == 1)
    );
    let calls = e.rx.unique("handleDownloadProgressInfo");
    assert_eq!(
        points(&calls),
        vec![
            (1, "Executed-Success".to_owned()),
            (3, "Executed-Success".to_owned()),
            (4, "Executed-Success".to_owned())
        ]
    );
    // In order, with the stored ids.
    let ids: Vec<_> = calls
        .iter()
        .map(|c| c.body["header"]["functionCallIdentifier"].as_str().unwrap())
        .collect();
    let row_ids: Vec<_> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, row_ids);
    for c in &calls {
        assert_eq!(c.path, "/gsma/rsp2/es2plus/handleDownloadProgressInfo");
        assert_eq!(c.admin_protocol.as_deref(), Some("gsma/rsp/v2.2.0"));
        assert_eq!(
            c.body["header"]["functionRequesterIdentifier"],
            e.server.address()
        );
        assert_eq!(c.body["iccid"], iccid.as_str());
        assert_eq!(c.body["eid"], euicc.eid());
        assert_eq!(c.body["profileType"], "OBX");
        let ts = c.body["timestamp"].as_str().unwrap();
        assert!(ts.len() == 20 && ts.ends_with('Z'), "{ts}");
    }
    // resultData: base64 of finalResult [2] (tag A2) with successResult [0] (A0).
    use base64::Engine as _;
    let rd = base64::engine::general_purpose::STANDARD
        .decode(calls[2].body["resultData"].as_str().unwrap())
        .unwrap();
    assert_eq!(&rd[..1], &[0xA2]);
    assert_eq!(rd[2], 0xA0);
    assert!(calls[0].body.get("resultData").is_none());
    e.server.stop().await;
}

/// The receiver is down while the download happens; once it is back every callback arrives
/// (retries with backoff), each id at least once, and `list` shows them delivered.
async fn hdpi_survives_receiver_outage(dir: &Path, db: &Db) {
    let mut e = env_with(dir, db, |_| {}).await;
    e.rx.stop().await;
    let (iccid, mid) = e.order(json!({}), None).await;
    let mut euicc = sim_euicc(&e.pki);
    e.lpa
        .download(&mut euicc, &e.ac(&mid), &DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Installed
    );
    // Let a few attempts fail.
    for _ in 0..500 {
        let rows = e.server.store().list_outbox(None, 100).await.unwrap();
        if rows.len() == 3 && rows.iter().all(|r| r.attempts >= 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pending = e
        .server
        .store()
        .list_outbox(Some(OutboxState::Pending), 100)
        .await
        .unwrap();
    assert_eq!(pending.len(), 3);
    assert!(
        pending
            .iter()
            .all(|r| r.attempts >= 2 && r.last_error.is_some())
    );
    assert!(e.rx.calls().is_empty());
    e.rx.restart().await;
    let rows = all_delivered(e.server.store()).await;
    assert_ids_received(&rows, OutboxKind::Hdpi, &e.rx, "handleDownloadProgressInfo");
    let mut pts: Vec<_> = points(&e.rx.unique("handleDownloadProgressInfo"))
        .into_iter()
        .map(|p| p.0)
        .collect();
    pts.sort_unstable();
    assert_eq!(pts, vec![1, 3, 4]);
    e.server.stop().await;
}

/// Wrong Confirmation Codes until the limit: the order goes to Error and the operator gets
/// point 2 Failed with `8.2.7/6.4` (Table 32c).
async fn hdpi_cc_retries_exceeded(dir: &Path, db: &Db) {
    let e = env_with(dir, db, |s| s.limits.cc_attempt_limit = 1).await;
    let (iccid, mid) = e.order(json!({"confirmationCode": "1234"}), None).await;
    let mut euicc = sim_euicc(&e.pki);
    let wrong = DownloadOptions {
        confirmation_code: Some("9999".into()),
        ..DownloadOptions::default()
    };
    let err = e
        .lpa
        .download(&mut euicc, &e.ac(&mid), &wrong)
        .await
        .unwrap_err();
    assert_eq!(lpa_code(&err), ("8.2.7".into(), "3.8".into()));
    let err = e
        .lpa
        .download(&mut euicc, &e.ac(&mid), &wrong)
        .await
        .unwrap_err();
    assert_eq!(lpa_code(&err), ("8.2.7".into(), "6.4".into()));
    assert_eq!(e.server.profile(&iccid).await.state, ProfileState::Error);
    let rows = all_delivered(e.server.store()).await;
    let calls = e.rx.unique("handleDownloadProgressInfo");
    assert_ids_received(&rows, OutboxKind::Hdpi, &e.rx, "handleDownloadProgressInfo");
    // Two eligibility successes (one per attempt), then the terminal point 2.
    assert_eq!(
        points(&calls),
        vec![
            (1, "Executed-Success".to_owned()),
            (1, "Executed-Success".to_owned()),
            (2, "Failed".to_owned())
        ]
    );
    let last = &calls[2].body["notificationPointStatus"]["statusCodeData"];
    assert_eq!(last["subjectCode"], "8.2.7");
    assert_eq!(last["reasonCode"], "6.4");
    e.server.stop().await;
}

/// ConfirmOrder with smdsAddress: ES12.RegisterEvent (eventId = MatchingID) at release and
/// ES12.DeleteEvent after the installation, received by a fake SM-DS; a second order
/// cancelled with CancelOrder gets its DeleteEvent too.
async fn es12_register_and_delete(dir: &Path, db: &Db) {
    let e = env_with(dir, db, |_| {}).await;
    let mut euicc = sim_euicc(&e.pki);
    let eid = euicc.eid().to_owned();
    let smds = e.rx.smds_address();
    let (iccid, mid) = e
        .order(json!({"smdsAddress": smds, "eid": eid}), Some(&eid))
        .await;
    e.lpa
        .download(&mut euicc, &e.ac(&mid), &DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Installed
    );
    // A second order, released then cancelled.
    let (iccid2, mid2) = e
        .order(json!({"smdsAddress": smds, "eid": eid}), Some(&eid))
        .await;
    e.call(
        "cancelOrder",
        json!({"iccid": iccid2, "eid": eid, "matchingId": mid2, "finalProfileStatusIndicator": "Available"}),
    )
    .await;
    let rows = all_delivered(e.server.store()).await;
    assert_ids_received(
        &rows,
        OutboxKind::Es12Register,
        &e.rx,
        "/es12/registerEvent",
    );
    assert_ids_received(&rows, OutboxKind::Es12Delete, &e.rx, "/es12/deleteEvent");
    let reg = e.rx.unique("/es12/registerEvent");
    let del = e.rx.unique("/es12/deleteEvent");
    assert_eq!(reg.len(), 2);
    assert_eq!(del.len(), 2);
    for (calls, m) in [(&reg, &mid), (&del, &mid)] {
        assert_eq!(calls[0].body["eventId"], m.as_str());
        assert_eq!(calls[0].body["eid"], eid.as_str());
    }
    assert_eq!(reg[1].body["eventId"], mid2.as_str());
    assert_eq!(del[1].body["eventId"], mid2.as_str());
    assert_eq!(reg[0].body["rspServerAddress"], e.server.address());
    assert_eq!(reg[0].body["forwardingIndicator"], true);
    assert!(del[0].body.get("rspServerAddress").is_none());
    // The first order's RegisterEvent came before its DeleteEvent.
    let all = e.rx.calls();
    let pos = |id: &Value| {
        all.iter()
            .position(|c| &c.body["header"]["functionCallIdentifier"] == id)
            .unwrap()
    };
    assert!(
        pos(&reg[0].body["header"]["functionCallIdentifier"])
            < pos(&del[0].body["header"]["functionCallIdentifier"])
    );
    e.server.stop().await;
}

/// Rows queued while the receiver is down survive a restart of the server (drop and
/// re-create on the same database) and are delivered by the new worker.
async fn pending_rows_survive_server_restart(dir: &Path, db: &Db) {
    let mut e = env_with(dir, db, |_| {}).await;
    e.rx.stop().await;
    let (iccid, mid) = e.order(json!({}), None).await;
    let mut euicc = sim_euicc(&e.pki);
    e.lpa
        .download(&mut euicc, &e.ac(&mid), &DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!(
        e.server.profile(&iccid).await.state,
        ProfileState::Installed
    );
    let Env {
        pki: _,
        server,
        lpa: _,
        op: _,
        mut rx,
    } = e;
    let settings = server.stop().await;
    rx.restart().await;
    let server = Server::start_lpa(settings).await;
    let rows = all_delivered(server.store()).await;
    assert_eq!(rows.len(), 3);
    assert_ids_received(&rows, OutboxKind::Hdpi, &rx, "handleDownloadProgressInfo");
    server.stop().await;
}

/// A receiver that never comes back: after `max_attempts` the rows are `failed`, with the
/// last error, and are not sent again.
async fn rejects_undeliverable_after_max_attempts(dir: &Path, db: &Db) {
    let mut e = env_with(dir, db, |s| {
        s.limits.outbox.max_attempts = 3;
    })
    .await;
    e.rx.stop().await;
    let (_iccid, mid) = e.order(json!({}), None).await;
    let mut euicc = sim_euicc(&e.pki);
    e.lpa
        .download(&mut euicc, &e.ac(&mid), &DownloadOptions::default())
        .await
        .unwrap();
    for _ in 0..1000 {
        let rows = e.server.store().list_outbox(None, 100).await.unwrap();
        if rows.len() == 3 && rows.iter().all(|r| r.state == OutboxState::Failed) {
            assert!(
                rows.iter()
                    .all(|r| r.attempts == 3 && r.last_error.is_some())
            );
            let text = smdpp_service::outbox::format_rows(&rows);
            assert!(text.contains("failed"), "{text}");
            e.server.stop().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "{:?}",
        e.server.store().list_outbox(None, 100).await.unwrap()
    );
}

/// Terminal CancelSession reasons give a `Failed` HandleDownloadProgressInfo with the
/// Table 32b code (point 2: cancelled before any BPP download); postponed(1) gives none.
async fn hdpi_cancel_session_table_32b(dir: &Path, db: &Db) {
    use euicc_sim::lpa::{LpaError, Step};
    use rsp_asn1::cancel::CancelSessionReason;
    let e = env_with(dir, db, |_| {}).await;
    let mut euicc = sim_euicc(&e.pki);
    for (reason, want) in [
        (CancelSessionReason::Postponed, None),
        (
            CancelSessionReason::EndUserRejection,
            Some(("8.8.5", "3.8")),
        ),
        (CancelSessionReason::PprNotAllowed, Some(("8.2.8", "1.2"))),
        (
            CancelSessionReason::MetadataMismatch,
            Some(("8.2.9", "3.11")),
        ),
        (
            CancelSessionReason::LoadBppExecutionError,
            Some(("8.2.10", "4.2")),
        ),
        (CancelSessionReason::UndefinedReason, Some(("8", "4.2"))),
    ] {
        let (iccid, mid) = e.order(json!({}), None).await;
        let mut h = Capture::stop_before(Step::PrepareDownload);
        let err = e
            .lpa
            .download_with(&mut euicc, &e.ac(&mid), &DownloadOptions::default(), &mut h)
            .await
            .unwrap_err();
        let LpaError::Stopped {
            transaction_id: Some(tid),
            ..
        } = err
        else {
            panic!("{err}")
        };
        let asn = rsp_asn1::common::TransactionId::new(tid.as_bytes()).unwrap();
        e.lpa
            .cancel_session(&mut euicc, &e.server.address(), &asn, &tid, reason)
            .await
            .unwrap();
        all_delivered(e.server.store()).await;
        let calls: Vec<_> =
            e.rx.unique("handleDownloadProgressInfo")
                .into_iter()
                .filter(|c| c.body["iccid"] == iccid.as_str())
                .collect();
        // Point 1 (eligibility passed), then the cancellation if terminal.
        assert_eq!(calls[0].body["notificationPointId"], 1);
        match want {
            None => assert_eq!(calls.len(), 1, "{reason:?}"),
            Some((subject, reason_code)) => {
                assert_eq!(calls.len(), 2, "{reason:?}");
                assert_eq!(calls[1].body["notificationPointId"], 2);
                let st = &calls[1].body["notificationPointStatus"];
                assert_eq!(st["status"], "Failed");
                assert_eq!(st["statusCodeData"]["subjectCode"], subject, "{reason:?}");
                assert_eq!(
                    st["statusCodeData"]["reasonCode"], reason_code,
                    "{reason:?}"
                );
            }
        }
    }
    e.server.stop().await;
}

/// The store's lease: concurrent claimers get disjoint rows; only the lease holder records
/// an outcome; an expired lease lets another worker take the row over (and the old holder's
/// late outcome is refused).
async fn lease_is_exclusive(dir: &Path, db: &Db) {
    let store = Store::connect(&db.url).await.unwrap();
    let _ = dir;
    let rows: Vec<_> = (0..20)
        .map(|i| smdpp_store::NewOutboxRow {
            id: format!("row-{i:02}"),
            operator_id: Some("op".into()),
            kind: OutboxKind::Hdpi,
            iccid: None,
            target: Some("https://127.0.0.1:1/x".into()),
            body: "{}".into(),
        })
        .collect();
    store.enqueue_outbox(&rows).await.unwrap();
    // A duplicate id is refused and writes nothing.
    assert!(store.enqueue_outbox(&rows[..1]).await.is_err());
    let now = smdpp_store::now_ms();
    let mut tasks = vec![];
    for w in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = vec![];
            loop {
                let got = store
                    .claim_outbox(now, 3, 60_000, &format!("w{w}"))
                    .await
                    .unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|r| r.id));
            }
            mine
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "no row leased twice");
    assert_eq!(all.len(), 20);
    // Exactly one of the workers holds row-00.
    let mut holder = None;
    for w in 0..4 {
        if store
            .outbox_retry("row-00", &format!("w{w}"), now + 1, "x")
            .await
            .unwrap()
        {
            assert!(holder.replace(w).is_none(), "only one holder");
        }
    }
    assert!(holder.is_some(), "the holder could record the outcome");
    // row-00 is pending again without lease, due at now+1: a new worker takes it with a
    // short lease, which then runs out; a third takes it over; the second's outcome is refused.
    let t = now + 10;
    assert_eq!(
        store.claim_outbox(t, 1, 5, "short").await.unwrap()[0].id,
        "row-00"
    );
    assert!(
        store
            .claim_outbox(t + 1, 1, 5, "other")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.claim_outbox(t + 10, 1, 60_000, "late").await.unwrap()[0].id,
        "row-00"
    );
    assert!(
        !store
            .outbox_delivered("row-00", "short", t + 11)
            .await
            .unwrap()
    );
    assert!(
        store
            .outbox_delivered("row-00", "late", t + 11)
            .await
            .unwrap()
    );
    assert!(
        !store
            .outbox_delivered("row-00", "late", t + 12)
            .await
            .unwrap(),
        "once"
    );
    let done = store
        .list_outbox(Some(OutboxState::Delivered), 100)
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].attempts, 2);
    assert_eq!(
        store
            .list_outbox(Some(OutboxState::Pending), 100)
            .await
            .unwrap()
            .len(),
        19
    );
    store.close().await;
}

// ------------------------------------------------------- per-operator callback CAs

/// A server whose outbox has no `SMDPP_OUTBOX_CA_FILE` unless `ca_file` says so (the
/// configuration is passed in, no environment variable).
async fn server_with_ca_file(dir: &Path, db: &Db, ca_file: Option<PathBuf>) -> (TestPki, Server) {
    let (pki, mut s) = pki_settings(dir, db, Curve::NistP256);
    s.limits.outbox = OutboxConfig {
        ca_file,
        ..fast_outbox(PathBuf::new())
    };
    let server = Server::start_lpa(s).await;
    (pki, server)
}

/// A receiver in its own sub-directory `name` of `dir` (its own CA).
async fn receiver(dir: &Path, name: &str, client_leaf: &[u8]) -> Receiver {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).unwrap();
    Receiver::new(&sub, client_leaf.to_vec()).await
}

/// Registers `id` with its callbacks at `rx` and `ca` (the path of a PEM bundle) as its CA.
async fn operator_with_ca(server: &Server, id: &str, rx: &Receiver, ca: &Path) {
    let cert = client_cert(&format!("{id}.example"));
    smdpp_service::operators::add_operator_with_ca(
        server.store(),
        id,
        &cert.cert_der,
        Some(rx.base_url()),
        Some(std::fs::read_to_string(ca).unwrap()),
    )
    .await
    .unwrap();
}

/// Queues `n` HandleDownloadProgressInfo rows for `operator`; returns their ids.
async fn queue_hdpi(store: &Store, operator: &str, n: usize) -> Vec<String> {
    let rows: Vec<_> = (0..n)
        .map(|i| smdpp_store::NewOutboxRow {
            id: format!("{operator}-{i}-{}", smdpp_store::now_ms()),
            operator_id: Some(operator.to_owned()),
            kind: OutboxKind::Hdpi,
            iccid: None,
            target: None,
            body: json!({"iccid": "89000123456789012341", "notificationPointId": 1}).to_string(),
        })
        .collect();
    store.enqueue_outbox(&rows).await.unwrap();
    rows.into_iter().map(|r| r.id).collect()
}

fn received_ids(rx: &Receiver) -> HashSet<String> {
    rx.unique("handleDownloadProgressInfo")
        .iter()
        .map(|c| {
            c.body["header"]["functionCallIdentifier"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// No SMDPP_OUTBOX_CA_FILE: a receiver whose certificate chains to the CA registered for its
/// operator (`--callback-ca`) gets the operator's callbacks.
async fn delivers_to_receiver_of_operator_ca(dir: &Path, db: &Db) {
    let (pki, server) = server_with_ca_file(dir, db, None).await;
    let rx = receiver(dir, "rx-a", &pki.dptls.der).await;
    operator_with_ca(&server, "op-ca", &rx, &rx.ca_file).await;
    let ids = queue_hdpi(server.store(), "op-ca", 2).await;
    let rows = all_delivered(server.store()).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(received_ids(&rx), ids.into_iter().collect::<HashSet<_>>());
    server.stop().await;
}

/// A receiver whose certificate is NOT issued by the operator's CA is refused in the TLS
/// handshake: the row stays pending (retried), its last error names the certificate, and
/// nothing arrives. The per-operator CA replaces the CA file: that the file trusts the
/// receiver does not help.
async fn refuses_receiver_not_signed_by_operator_ca(dir: &Path, db: &Db) {
    let (pki, server) = {
        let (pki, mut s) = pki_settings(dir, db, Curve::NistP256);
        let rx_b_dir = dir.join("rx-b");
        std::fs::create_dir_all(&rx_b_dir).unwrap();
        s.limits.outbox = fast_outbox(rx_b_dir.join("receiver-ca.pem"));
        (pki, s)
    };
    let rx_a = receiver(dir, "rx-a", &pki.dptls.der).await;
    let rx_b = receiver(dir, "rx-b", &pki.dptls.der).await;
    let server = Server::start_lpa(server).await;
    // Callbacks at rx-b, trusting only rx-a's CA.
    operator_with_ca(&server, "op-wrong", &rx_b, &rx_a.ca_file).await;
    queue_hdpi(server.store(), "op-wrong", 1).await;
    let mut last = Vec::new();
    for _ in 0..500 {
        last = server.store().list_outbox(None, 10).await.unwrap();
        if last.len() == 1 && last[0].attempts >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(last.len(), 1);
    let row = &last[0];
    assert!(row.attempts >= 2, "{row:?}");
    assert_eq!(
        row.state,
        OutboxState::Pending,
        "retried, not given up: {row:?}"
    );
    let error = row.last_error.as_deref().unwrap_or_default();
    assert!(error.contains("certificate"), "{error}");
    assert!(rx_b.calls().is_empty());
    assert!(rx_a.calls().is_empty());
    server.stop().await;
}

/// Two operators, each with its own CA and receiver: each gets exactly its own callbacks
/// (the cached client configurations do not mix).
async fn two_operators_with_their_own_cas(dir: &Path, db: &Db) {
    let (pki, server) = server_with_ca_file(dir, db, None).await;
    let rx_a = receiver(dir, "rx-a", &pki.dptls.der).await;
    let rx_b = receiver(dir, "rx-b", &pki.dptls.der).await;
    operator_with_ca(&server, "op-a", &rx_a, &rx_a.ca_file).await;
    operator_with_ca(&server, "op-b", &rx_b, &rx_b.ca_file).await;
    let mut want_a = queue_hdpi(server.store(), "op-a", 2).await;
    let mut want_b = queue_hdpi(server.store(), "op-b", 2).await;
    all_delivered(server.store()).await;
    // More rows after the configurations are cached.
    want_a.extend(queue_hdpi(server.store(), "op-a", 1).await);
    want_b.extend(queue_hdpi(server.store(), "op-b", 1).await);
    let rows = all_delivered(server.store()).await;
    assert_eq!(rows.len(), 6);
    assert_eq!(
        received_ids(&rx_a),
        want_a.into_iter().collect::<HashSet<_>>()
    );
    assert_eq!(
        received_ids(&rx_b),
        want_b.into_iter().collect::<HashSet<_>>()
    );
    server.stop().await;
}

/// The start-up check names the operators whose callbacks cannot be delivered (rows stored
/// before the CLI checked them): a non-https URL, a CA that does not parse; an operator
/// without a callback URL is not a problem.
async fn check_operators_names_undeliverable(dir: &Path, db: &Db) {
    let _ = dir;
    let store = Store::connect(&db.url).await.unwrap();
    for (id, url, ca) in [
        ("op-http", Some("http://op.example/es2"), None),
        (
            "op-badca",
            Some("https://op.example/es2"),
            Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        ),
        ("op-none", None, None),
        ("op-ok", Some("https://op.example:8443/es2"), None),
    ] {
        store
            .insert_operator(&smdpp_store::NewOperator {
                id: id.to_owned(),
                cert_sha256: None,
                cert_subject: None,
                callback_url: url.map(str::to_owned),
                callback_ca: ca.map(str::to_owned),
            })
            .await
            .unwrap();
    }
    let mut problems = smdpp_service::outbox::check_operators(&store)
        .await
        .unwrap();
    problems.sort_by(|a, b| a.operator_id.cmp(&b.operator_id));
    let got: Vec<_> = problems
        .iter()
        .map(|p| (p.operator_id.as_str(), p.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("op-badca", "callback CA: certificate 1 does not parse"),
            ("op-http", "callback URL: not an https:// URL"),
        ]
    );
    store.close().await;
}

// ------------------------------------------------ the client key on a PKCS#11 token

/// The outbox's TLS client key on SoftHSM2 (`client_key = pkcs11:object=LABEL`, the path
/// `OutboxWorker::new_with_token` takes): HandleDownloadProgressInfo reaches a real HTTPS
/// receiver that REQUIRES a client certificate, accepts only ours (pinned) and verifies the
/// handshake signature with it, over TLS 1.2 (SGP.22 section 2.6.6, the ES2+ transport) and
/// TLS 1.3. The key never exists as a file: it is generated in memory, imported into the
/// token (non-extractable) and dropped; the token's signature counter shows each handshake
/// was signed there. The server's own DPauth/DPpb/DPtls stay software keys here.
///
/// SoftHSM2 reads `SOFTHSM2_CONF` at initialisation and a test cannot set its own
/// environment, so the test runs itself again in a child process with a private token
/// directory (the child does the work).
#[test]
fn outbox_client_key_on_softhsm() {
    const CHILD: &str = "SMDPP_OUTBOX_HSM_CHILD";
    let name = "outbox_client_key_on_softhsm";
    if std::env::var_os(CHILD).is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(outbox_client_key_on_softhsm_child());
        return;
    }
    if rsp_hsm::softhsm::SoftHsm::skip() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("SOFTHSM2_CONF", scratch.path().join("softhsm2.conf"))
        .env(CHILD, "1")
        .env_remove(hsm::CUSTODY_ENV)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {name} failed:\n{stdout}\n{stderr}"
    );
}

async fn outbox_client_key_on_softhsm_child() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let t = hsm::token();
    // The client identity: a P-256 key made here, imported into the token, and a
    // certificate for it; only the certificate is written to disk.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["smdp.example".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let on_token = hsm::import_pem(
        "outbox-client",
        &zeroize::Zeroizing::new(key.serialize_pem()),
    );
    assert_eq!(
        on_token.public_key(),
        rsp_crypto::SoftwareKey::from_pem(&key.serialize_pem())
            .unwrap()
            .public_key()
    );
    drop(key);
    let cert_file = dir.join("outbox-client.pem");
    std::fs::write(&cert_file, cert.pem()).unwrap();
    for (name, version) in [
        ("tls12", &rustls::version::TLS12),
        ("tls13", &rustls::version::TLS13),
    ] {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let rx = Receiver::with_versions(&sub, cert.der().to_vec(), &[version]).await;
        let (_pki, mut s) = pki_settings(&sub, &Db::sqlite(&sub), Curve::NistP256);
        s.pkcs11 = Some(t.settings.clone());
        s.limits.outbox = OutboxConfig {
            client_cert: Some(cert_file.clone()),
            client_key: Some(PathBuf::from("pkcs11:object=outbox-client")),
            ..fast_outbox(rx.ca_file.clone())
        };
        let server = Server::start_lpa(s).await;
        assert!(
            server.settings.dpauth_key.is_none(),
            "DPauth stays a file here"
        );
        let op = client_cert("operator-a.example");
        add_operator(server.store(), "op-a", &op.cert_der, Some(rx.base_url()))
            .await
            .unwrap();
        let before = t.token.signatures();
        let ids = queue_hdpi(server.store(), "op-a", 2).await;
        let rows = all_delivered(server.store()).await;
        assert_eq!(rows.len(), 2, "{name}");
        assert_eq!(
            received_ids(&rx),
            ids.into_iter().collect::<HashSet<_>>(),
            "{name}"
        );
        let signed = t.token.signatures() - before;
        assert!(signed >= 1, "{name}: the token signed {signed} handshakes");
        server.stop().await;
    }
}

both_backends!(
    delivers_to_receiver_of_operator_ca,
    refuses_receiver_not_signed_by_operator_ca,
    two_operators_with_their_own_cas,
    check_operators_names_undeliverable,
    hdpi_for_a_download,
    hdpi_survives_receiver_outage,
    hdpi_cc_retries_exceeded,
    es12_register_and_delete,
    pending_rows_survive_server_restart,
    rejects_undeliverable_after_max_attempts,
    lease_is_exclusive,
    hdpi_cancel_session_table_32b,
);
