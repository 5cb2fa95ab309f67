//! The durable outbox across a crash of the real process: `smdpp serve` is SIGKILLed after a
//! download committed its state changes (and the ES2+.HandleDownloadProgressInfo rows that go
//! with them, SGP.22 section 5.3.5) but before the operator's endpoint acknowledged any of
//! them; after a restart on the same data directory every pending callback is delivered.
//!
//! The operator endpoint is a real HTTPS server in this test process (hyper + tokio-rustls)
//! whose certificate chains to a CA given to the server as `SMDPP_OUTBOX_CA_FILE`, and which
//! accepts only the server's CERT.DP.TLS as client certificate. It answers 503 until it is
//! switched to accept, so the rows stay pending (with failed attempts) until the crash.
//! Everything else is done by `smdpp` processes: `pki init`, `operators add`, `orders
//! import/create/confirm`, `serve`, `euicc init/download` and `outbox list`. SQLite only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};

const BIN: &str = env!("CARGO_BIN_EXE_smdpp");
const HDPI: &str = "/gsma/rsp2/es2plus/handleDownloadProgressInfo";
/// The fixed delay between attempts of a row. The kill is placed where no row is due (see
/// the test), which needs a delay well above the time the download takes.
const BACKOFF_MS: u64 = 5000;

// ----------------------------------------------------------------- processes

/// A child process killed (SIGKILL) and reaped on drop; its stdout lines are collected.
struct Child {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Child {
    fn spawn(args: &[&str], envs: &[(&str, String)]) -> Child {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("RUST_LOG", "warn")
            .env_remove("SMDPP_DATA_DIR")
            .env_remove("SMDPP_DATABASE_URL")
            .env_remove("SMDPP_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let l2 = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        Child { child, lines }
    }

    fn wait_for(&mut self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            if self
                .lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
            {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "smdpp exited ({status}) before printing {needle:?}; stdout: {:?}",
                    self.lines.lock().unwrap()
                );
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {needle:?}; stdout: {:?}",
                self.lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL (`Child::kill` on Unix) and reap.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

fn run_ok(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("SMDPP_DATA_DIR")
        .env_remove("SMDPP_DATABASE_URL")
        .env_remove("SMDPP_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "smdpp {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `smdpp serve` with a fast outbox trusting `ca_file`; returns once it serves.
fn serve(port: u16, data: &Path, ca_file: &Path) -> Child {
    let listen = format!("127.0.0.1:{port}");
    let envs = [
        ("SMDPP_OUTBOX_CA_FILE", ca_file.to_str().unwrap().to_owned()),
        ("SMDPP_OUTBOX_POLL_MS", "20".to_owned()),
        ("SMDPP_OUTBOX_INITIAL_BACKOFF_MS", BACKOFF_MS.to_string()),
        ("SMDPP_OUTBOX_MAX_BACKOFF_MS", BACKOFF_MS.to_string()),
        ("SMDPP_OUTBOX_MAX_ATTEMPTS", "100000".to_owned()),
    ];
    let mut c = Child::spawn(
        &[
            "serve",
            "--listen",
            &listen,
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &envs,
    );
    // The listener is bound before the instructions are printed.
    c.wait_for("run a virtual device against it", Duration::from_secs(60));
    c
}

/// One row of `smdpp outbox list`.
#[derive(Debug, Clone)]
struct Row {
    id: String,
    state: String,
    kind: String,
    attempts: u32,
    iccid: String,
}

fn outbox_list(data: &Path) -> Vec<Row> {
    let out = run_ok(&["outbox", "list", "--data-dir", data.to_str().unwrap()]);
    out.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(f.len() >= 6, "{out}");
            Row {
                id: f[0].to_owned(),
                state: f[1].to_owned(),
                kind: f[2].to_owned(),
                attempts: f[3].parse().unwrap(),
                iccid: f[4].to_owned(),
            }
        })
        .collect()
}

/// Polls `outbox list` until `done` holds (or panics after `timeout` with the rows).
fn poll_outbox(data: &Path, timeout: Duration, mut done: impl FnMut(&[Row]) -> bool) -> Vec<Row> {
    let start = Instant::now();
    loop {
        let rows = outbox_list(data);
        if done(&rows) {
            return rows;
        }
        assert!(start.elapsed() < timeout, "timed out; outbox: {rows:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ----------------------------------------------------------------- the receiver

/// Accepts exactly one client certificate (the SM-DP+'s CERT.DP.TLS) and checks the
/// handshake signature with it.
#[derive(Debug)]
struct PinnedClient {
    leaf: Vec<u8>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ClientCertVerifier for PinnedClient {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_slice() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "unexpected client certificate".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What the receiver saw: refused attempts (503) and accepted calls (204), as
/// (functionCallIdentifier, body).
#[derive(Default)]
struct Seen {
    refused: Vec<(String, Instant)>,
    accepted: Vec<(String, serde_json::Value)>,
}

/// The operator's HTTPS endpoint, on its own runtime; answers 503 until `accept` is set.
struct Receiver {
    addr: SocketAddr,
    ca_file: PathBuf,
    accept: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    fn start(dir: &Path, client_leaf: Vec<u8>) -> Receiver {
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
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (acc, sn) = (Arc::clone(&accept), Arc::clone(&seen));
        rt.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let (acc, sn) = (Arc::clone(&acc), Arc::clone(&sn));
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (acc, sn) = (Arc::clone(&acc), Arc::clone(&sn));
                            async move {
                                let path = req.uri().path().to_owned();
                                let body = req.into_body().collect().await?.to_bytes();
                                let body: serde_json::Value =
                                    serde_json::from_slice(&body).unwrap_or_default();
                                let id = body["header"]["functionCallIdentifier"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_owned();
                                let status = if path != HDPI {
                                    404
                                } else if acc.load(Ordering::SeqCst) {
                                    sn.lock().unwrap().accepted.push((id, body));
                                    204
                                } else {
                                    sn.lock().unwrap().refused.push((id, Instant::now()));
                                    503
                                };
                                Ok::<_, hyper::Error>(
                                    hyper::Response::builder()
                                        .status(status)
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
        });
        Receiver {
            addr,
            ca_file,
            accept,
            seen,
            _rt: rt,
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }
}

// ----------------------------------------------------------------- the test

#[test]
fn sqlite_callbacks_pending_at_sigkill_are_delivered_after_restart() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let pki = data.join("pki");
    run_ok(&[
        "pki",
        "init",
        "--out",
        pki.to_str().unwrap(),
        "--smdp-address",
        "127.0.0.1",
    ]);
    let dptls = CertificateDer::from_pem_file(pki.join("dptls.pem")).unwrap();
    let rx = Receiver::start(dir.path(), dptls.as_ref().to_vec());

    // The operator (callback URL = the receiver) and a released order.
    let op_key = rcgen::KeyPair::generate().unwrap();
    let op_cert = rcgen::CertificateParams::new(vec!["operator-one".to_owned()])
        .unwrap()
        .self_signed(&op_key)
        .unwrap();
    let op_pem = dir.path().join("op.pem");
    std::fs::write(&op_pem, op_cert.pem()).unwrap();
    let callback = rx.url();
    run_ok(&[
        "operators",
        "add",
        "--id",
        "OP1",
        "--cert",
        op_pem.to_str().unwrap(),
        "--callback-url",
        &callback,
        "--data-dir",
        data_s,
    ]);
    let iccid = "8999900000000000777";
    let upp = dir.path().join("p.der");
    std::fs::write(&upp, smdpp_service::upp::demo_upp(iccid).unwrap()).unwrap();
    let scope = ["--data-dir", data_s, "--operator", "OP1"];
    let orders = |args: &[&str]| {
        let mut v = vec!["orders"];
        v.extend_from_slice(args);
        v.extend_from_slice(&scope);
        run_ok(&v)
    };
    let out = orders(&[
        "import",
        "--upp",
        upp.to_str().unwrap(),
        "--profile-type",
        "crash",
    ]);
    // The ICCID as stored (the UPP may carry it with a padding/check digit).
    let iccid = out
        .split_whitespace()
        .skip_while(|w| *w != "imported")
        .nth(1)
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    assert!(iccid.starts_with("8999900000000000777"), "{out}");
    orders(&["create", "--iccid", &iccid]);
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let out = orders(&["confirm", &iccid, "--release", "--smdp-address", &address]);
    let ac = out
        .lines()
        .find_map(|l| l.strip_prefix("Activation Code: "))
        .unwrap_or_else(|| panic!("{out}"))
        .trim()
        .to_owned();

    // Serve; a device downloads the profile: the state changes commit with their callbacks,
    // which the receiver refuses.
    let mut server = serve(port, &data, &rx.ca_file);
    let state = dir.path().join("dev.json");
    let state_s = state.to_str().unwrap();
    run_ok(&[
        "euicc",
        "init",
        "--state",
        state_s,
        "--pki",
        pki.to_str().unwrap(),
    ]);
    run_ok(&["euicc", "download", "--state", state_s, &ac]);
    let listed = run_ok(&["profiles", "list", "--data-dir", data_s]);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&iccid))
        .unwrap_or_else(|| panic!("{iccid} not listed:\n{listed}"));
    assert!(line.contains(" installed "), "{line}");

    // Every row pending and tried at least once (refused): the worker runs and the crash
    // comes between the state changes and their acknowledged callbacks.
    //
    // The kill is placed where no attempt is in flight: a row claimed by the killed worker
    // stays leased for request_timeout * 16 + 5 s (minutes) after the crash, which a test
    // cannot wait for. Safe moment: `outbox list` shows for every row as many attempts as
    // the receiver refused for its id (each refused attempt recorded, its lease released),
    // and no row is due yet (next attempt = recorded failure + BACKOFF_MS, and the failure is
    // recorded after the receiver answered).
    let backoff = Duration::from_millis(BACKOFF_MS);
    let margin = Duration::from_millis(1500);
    let start = Instant::now();
    let pending: BTreeSet<String> = loop {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no moment without an attempt in flight; outbox: {:#?}",
            outbox_list(&data)
        );
        let rows = outbox_list(&data);
        if rows.len() < 3 || rows.iter().any(|r| r.attempts == 0) {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        assert!(
            rows.iter()
                .all(|r| r.state == "pending" && r.kind == "hdpi" && r.iccid == iccid),
            "{rows:#?}"
        );
        let seen = rx.seen.lock().unwrap();
        assert!(seen.accepted.is_empty());
        let mut quiet = true;
        for r in &rows {
            let tries: Vec<Instant> = seen
                .refused
                .iter()
                .filter(|(id, _)| *id == r.id)
                .map(|(_, at)| *at)
                .collect();
            let due = tries.iter().max().map(|t| *t + backoff);
            quiet &= u32::try_from(tries.len()).unwrap() == r.attempts
                && due.is_some_and(|d| Instant::now() + margin < d);
        }
        if quiet {
            // Killed while the receiver's lock is held: no request can complete meanwhile.
            server.kill();
            break rows.iter().map(|r| r.id.clone()).collect();
        }
        drop(seen);
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(pending.len() >= 3, "{pending:?}");

    rx.accept.store(true, Ordering::SeqCst);
    // Nothing is sent while the server is down.
    assert!(rx.seen.lock().unwrap().accepted.is_empty());

    let server2 = serve(port, &data, &rx.ca_file);
    let after = poll_outbox(&data, Duration::from_secs(15), |rows| {
        rows.iter().all(|r| r.state == "delivered")
    });
    let after_ids: BTreeSet<String> = after.iter().map(|r| r.id.clone()).collect();
    assert_eq!(after_ids, pending, "no row lost or added: {after:#?}");
    let seen = rx.seen.lock().unwrap();
    let accepted: HashSet<&String> = seen.accepted.iter().map(|(id, _)| id).collect();
    for id in &pending {
        assert!(accepted.contains(id), "{id} not received; got {accepted:?}");
    }
    for (id, body) in &seen.accepted {
        assert!(pending.contains(id), "unexpected call {id}: {body}");
        assert_eq!(body["iccid"], iccid.as_str(), "{body}");
    }
    let mut points: Vec<i64> = seen
        .accepted
        .iter()
        .map(|(_, b)| b["notificationPointId"].as_i64().unwrap())
        .collect();
    points.sort_unstable();
    points.dedup();
    assert_eq!(
        points,
        vec![1, 3, 4],
        "eligibility, BPP download, installation"
    );
    drop(seen);
    drop(server2);
    eprintln!("outbox_process: {:?}", t0.elapsed());
}
