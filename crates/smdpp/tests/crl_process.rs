//! Revocation end to end with real processes: `smdpp pki init`, `smdpp pki crl` writing a CI
//! CRL that revokes the EUM, `smdpp serve --crl` on a free port, and `smdpp euicc download`
//! (the virtual eUICC) refused with 8.1.2/6.1; then a stale CRL under both policies, our own
//! revoked DPauth refusing the start, and the exact messages of `smdpp pki crl` errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smdpp");

/// `smdpp serve`, killed and reaped on drop.
struct Serve {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    fn start(data: &Path, extra: &[&str]) -> (Serve, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                &listen,
                "--data-dir",
                data.to_str().unwrap(),
                "--admin-listen",
                "off",
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let l2 = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        let mut s = Serve { child, lines };
        let ac = s.wait_for_ac();
        (s, ac)
    }

    /// The demo Activation Code, printed once the listener is bound.
    fn wait_for_ac(&mut self) -> String {
        let start = Instant::now();
        loop {
            let lines = self.lines.lock().unwrap().clone();
            if lines.iter().any(|l| l.contains("run a virtual device")) {
                return lines
                    .iter()
                    .find_map(|l| l.strip_prefix("demo profile Activation Code: "))
                    .expect("a demo Activation Code")
                    .to_owned();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("smdpp serve exited ({status}); stdout: {lines:?}");
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{lines:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "smdpp {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn stderr_of(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "smdpp {args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A fresh PKI in `<dir>/data/pki` (what `serve` uses) and a virtual eUICC under its EUM.
fn setup(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = dir.join("data");
    let pki = data.join("pki");
    run_ok(&[
        "pki",
        "init",
        "--out",
        s(&pki),
        "--smdp-address",
        "127.0.0.1",
    ]);
    let state = dir.join("dev.json");
    run_ok(&["euicc", "init", "--state", s(&state), "--pki", s(&pki)]);
    (data, state)
}

fn ci_crl(pki: &Path, out: &Path, extra: &[&str]) -> String {
    let (cert, key) = (pki.join("ci.pem"), pki.join("ci.key"));
    let mut args = vec![
        "pki",
        "crl",
        "--issuer-cert",
        s(&cert),
        "--issuer-key",
        s(&key),
        "--out",
        s(out),
    ];
    args.extend(extra);
    run_ok(&args)
}

#[test]
fn rejects_revoked_eum_in_a_real_download() {
    let dir = tempfile::tempdir().unwrap();
    let (data, state) = setup(dir.path());
    let pki = data.join("pki");
    let crl = dir.path().join("ci.crl");
    let eum = pki.join("eum.pem");
    let out = ci_crl(&pki, &crl, &["--revoke-cert", s(&eum), "--crl-number", "4"]);
    assert!(out.contains("CRL number 4, 1 revoked"), "{out}");
    let (server, ac) = Serve::start(&data, &["--crl", s(&crl)]);
    let err = stderr_of(&["euicc", "download", "--state", s(&state), &ac]);
    assert!(
        err.contains("ES9+.AuthenticateClient: subjectCode 8.1.2 reasonCode 6.1")
            && err.contains("revoked"),
        "{err}"
    );
    drop(server);

    // The same data without the CRL: the download goes through.
    let (server, ac) = Serve::start(&data, &[]);
    run_ok(&["euicc", "download", "--state", s(&state), &ac]);
    drop(server);
}

#[test]
fn rejects_stale_crl_unless_warn_only() {
    let dir = tempfile::tempdir().unwrap();
    let (data, state) = setup(dir.path());
    let pki = data.join("pki");
    let crl = dir.path().join("stale.crl.der");
    let out = ci_crl(
        &pki,
        &crl,
        &[
            "--this-update",
            "2026-01-01T00:00:00Z",
            "--next-update",
            "2026-01-08T00:00:00Z",
        ],
    );
    assert!(out.contains("(DER,"), "{out}");
    let (server, ac) = Serve::start(&data, &["--crl", s(&crl)]);
    let err = stderr_of(&["euicc", "download", "--state", s(&state), &ac]);
    assert!(
        err.contains("subjectCode 8.1.2 reasonCode 6.1")
            && err.contains("revocation status unknown"),
        "{err}"
    );
    drop(server);
    let (server, ac) = Serve::start(&data, &["--crl", s(&crl), "--crl-stale-policy", "warn"]);
    run_ok(&["euicc", "download", "--state", s(&state), &ac]);
    drop(server);
}

#[test]
fn rejects_revoked_own_certificate_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = setup(dir.path());
    let pki = data.join("pki");
    let crl = dir.path().join("ci.crl");
    ci_crl(&pki, &crl, &["--revoke-cert", s(&pki.join("dppb.pem"))]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let err = stderr_of(&[
        "serve",
        "--listen",
        &listen,
        "--data-dir",
        s(&data),
        "--admin-listen",
        "off",
        "--crl",
        s(&crl),
        "--cert-expiry-warn-days",
        "100000",
    ]);
    assert!(
        err.contains("our certificate CERT.DPpb.ECDSA is refused by the configured CRLs: CERT.DPpb.ECDSA: revoked"),
        "{err}"
    );
    // The expiry warning comes first (every certificate expires within 100000 days).
    assert!(
        err.contains("certificate expires soon (or has expired); renew it")
            && err.contains("certificate=CERT.DPauth.ECDSA"),
        "{err}"
    );
}

#[test]
fn rejects_bad_pki_crl_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    run_ok(&["pki", "init", "--out", s(&pki)]);
    let out = dir.path().join("x.crl");
    let base = |key: &str| {
        vec![
            "pki".to_owned(),
            "crl".to_owned(),
            "--issuer-cert".to_owned(),
            s(&pki.join("ci.pem")).to_owned(),
            "--issuer-key".to_owned(),
            s(&pki.join(key)).to_owned(),
            "--out".to_owned(),
            s(&out).to_owned(),
        ]
    };
    let err_of = |args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        stderr_of(&a)
    };
    assert_eq!(
        err_of(base("eum.key")),
        format!(
            "error: {} is not the key of {}\n",
            pki.join("eum.key").display(),
            pki.join("ci.pem").display()
        )
    );
    let mut a = base("ci.key");
    a.extend(["--revoke".into(), "zz".into()]);
    assert_eq!(
        err_of(a),
        "error: --revoke \"zz\": not a hexadecimal serial number\n"
    );
    let mut a = base("ci.key");
    a.extend(["--revoke".into(), "01".repeat(21)]);
    assert!(err_of(a).contains("longer than 20 octets"));
    let mut a = base("ci.key");
    a.extend([
        "--this-update".into(),
        "2026-01-10T00:00:00Z".into(),
        "--next-update".into(),
        "2026-01-01T00:00:00Z".into(),
    ]);
    assert_eq!(err_of(a), "error: --next-update is before --this-update\n");
    let mut a = base("ci.key");
    a.extend(["--this-update".into(), "2026-01-01".into()]);
    assert!(
        err_of(a).contains("\"2026-01-01\" is not an RFC 3339 time (e.g. 2026-01-31T12:00:00Z)")
    );
    assert!(!out.exists());
}
