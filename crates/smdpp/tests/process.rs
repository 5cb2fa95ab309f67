//! Process-level tests of the `smdpp` binary: the real `smdpp serve` process on a free
//! 127.0.0.1 port with a temporary data directory (SQLite, and PostgreSQL when
//! `SMDPP_TEST_PG_URL` is set; `SMDPP_REQUIRE_PG=1` makes its absence a failure), driven by
//! `smdpp euicc ...` processes and by the euicc-sim library, and the CLI's error messages.
//!
//! Every child process is owned by a [`Child`] guard that kills it on drop, so a failing
//! test leaves no server behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use euicc_sim::lpa::{DownloadHooks, Flow, Lpa, Step, Transport};
use smdpp_core::es9_json::{self as es9, Es9Function};

const BIN: &str = env!("CARGO_BIN_EXE_smdpp");

fn ts48(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/profiles/ts48")
        .join(name)
}

// ----------------------------------------------------------------- processes

/// A child process killed (SIGKILL) and reaped on drop; its stdout lines are collected.
struct Child {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Child {
    fn spawn(args: &[&str]) -> Child {
        let mut child = Command::new(BIN)
            .args(args)
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
        Child { child, lines }
    }

    /// Waits until a stdout line contains `needle`; returns that line.
    fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
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

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn run_ok(args: &[&str]) -> String {
    let out = run(args);
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

/// `smdpp serve` on `port` and `data`; waits until it printed its instructions (the
/// listener is bound before the first line is printed).
fn serve(port: u16, data: &Path, db_url: Option<&str>) -> (Child, Option<String>) {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "serve",
        "--listen",
        &listen,
        "--data-dir",
        data.to_str().unwrap(),
    ];
    if let Some(u) = db_url {
        args.extend(["--database-url", u]);
    }
    let mut c = Child::spawn(&args);
    c.wait_for("run a virtual device against it", Duration::from_secs(60));
    let ac = c.lines.lock().unwrap().iter().find_map(|l| {
        l.strip_prefix("demo profile Activation Code: ")
            .map(str::to_owned)
    });
    wait_healthy(port);
    (c, ac)
}

/// Polls `GET /healthz` over TLS (certificate not checked: only readiness is probed).
fn wait_healthy(port: u16) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = euicc_sim::http::Es9Client::new(Transport::HttpsInsecure).unwrap();
    let start = Instant::now();
    loop {
        // POST is what the client offers; any HTTP answer (405 for POST /healthz) proves the
        // TLS listener serves.
        let r = rt.block_on(client.post(&format!("127.0.0.1:{port}"), "/healthz", Vec::new()));
        if r.is_ok() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server not ready: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn profiles_list(data: &Path, db_url: Option<&str>) -> String {
    let mut args = vec!["profiles", "list", "--data-dir", data.to_str().unwrap()];
    if let Some(u) = db_url {
        args.extend(["--database-url", u]);
    }
    run_ok(&args)
}

fn assert_installed(list: &str, iccid: &str) {
    let line = list
        .lines()
        .find(|l| l.starts_with(iccid))
        .unwrap_or_else(|| panic!("{iccid} not listed:\n{list}"));
    assert!(line.contains(" installed "), "{line}");
}

// ----------------------------------------------------------------- databases

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh PostgreSQL database (URL, admin URL, name), or `None` when not configured.
fn pg_database(test: &str) -> Option<(String, String, String)> {
    let admin = match std::env::var("SMDPP_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(
                std::env::var("SMDPP_REQUIRE_PG").as_deref() != Ok("1"),
                "SMDPP_REQUIRE_PG=1 but SMDPP_TEST_PG_URL is not set"
            );
            eprintln!("SKIPPED postgres::{test}: SMDPP_TEST_PG_URL not set");
            return None;
        }
    };
    let name = format!(
        "smdpp_proc_{}_{}_{test}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    pg_admin(&admin, &format!("CREATE DATABASE {name}"));
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b.to_owned(), Some(q.to_owned())),
        None => (admin.clone(), None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host = match base[scheme_end..].find('/') {
        Some(p) => &base[..p + scheme_end],
        None => &base,
    };
    let url = match query {
        Some(q) => format!("{host}/{name}?{q}"),
        None => format!("{host}/{name}"),
    };
    Some((url, admin, name))
}

fn pg_admin(admin: &str, sql: &str) {
    use sqlx::Connection;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = sqlx::postgres::PgConnection::connect(admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
}

// ----------------------------------------------------------------- the flow

/// Records the getBoundProfilePackage request and stops before sending it.
#[derive(Default)]
struct StopBeforeBpp {
    request: Option<es9::GetBoundProfilePackageRequest>,
}

impl DownloadHooks for StopBeforeBpp {
    fn get_bound_profile_package(&mut self, req: &mut es9::GetBoundProfilePackageRequest) -> Flow {
        self.request = Some(req.clone());
        Flow::Stop
    }
}

fn end_to_end(dir: &Path, db_url: Option<&str>) {
    let data = dir.join("data");
    let port = free_port();
    let (mut server, demo_ac) = serve(port, &data, db_url);
    let demo_ac = demo_ac.expect("a demo Activation Code on an empty inventory");
    assert!(
        demo_ac.starts_with(&format!("LPA:1$127.0.0.1:{port}$")),
        "{demo_ac}"
    );
    let pki = data.join("pki");
    let state = dir.join("dev.json");
    let state_s = state.to_str().unwrap();

    // 1. The demo profile with the `smdpp euicc` processes.
    run_ok(&[
        "euicc",
        "init",
        "--state",
        state_s,
        "--pki",
        pki.to_str().unwrap(),
    ]);
    let out = run_ok(&["euicc", "download", "--state", state_s, &demo_ac]);
    let demo_iccid = euicc_sim::state::EuiccState::load(&state).unwrap().profiles[0]
        .iccid
        .clone();
    assert!(out.contains(&demo_iccid), "{out}");
    assert_installed(&profiles_list(&data, db_url), &demo_iccid);

    // 2. A TS.48 profile imported with `smdpp profiles add`, downloaded by the CLI; the
    // eUICC holds exactly the file's bytes.
    let file = ts48("TS48v5_SAIP2.3_NoBERTLV.der");
    let address = format!("127.0.0.1:{port}");
    let mut add = vec![
        "profiles",
        "add",
        "--data-dir",
        data.to_str().unwrap(),
        "--upp",
        file.to_str().unwrap(),
        "--smdp-address",
        &address,
    ];
    if let Some(u) = db_url {
        add.extend(["--database-url", u]);
    }
    let out = run_ok(&add);
    let ac = out
        .lines()
        .find_map(|l| l.strip_prefix("Activation Code: "))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    run_ok(&["euicc", "download", "--state", state_s, &ac]);
    let st = euicc_sim::state::EuiccState::load(&state).unwrap();
    let p = st
        .profiles
        .iter()
        .find(|p| p.iccid == "89000123456789012341")
        .unwrap();
    assert_eq!(
        p.profile_package,
        std::fs::read(&file).unwrap(),
        "byte for byte"
    );
    assert_installed(&profiles_list(&data, db_url), "89000123456789012341");

    // 3. SIGKILL between authenticateClient and getBoundProfilePackage, restart on the same
    // data: the download continues.
    let upp = dir.join("third.der");
    std::fs::write(
        &upp,
        smdpp_service::upp::demo_upp("8999900000000000555").unwrap(),
    )
    .unwrap();
    add[5] = upp.to_str().unwrap();
    let out = run_ok(&add);
    let ac = out
        .lines()
        .find_map(|l| l.strip_prefix("Activation Code: "))
        .unwrap()
        .to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let prov_ci = std::fs::read_to_string(pki.join("ci.pem")).unwrap();
    let mut trust = rsp_pki::TrustStore::new();
    trust
        .add_ci_der(rsp_pki::Certificate::from_pem(&prov_ci).unwrap().der())
        .unwrap();
    let lpa = Lpa::new(Transport::Https(trust)).unwrap();
    let mut euicc = euicc_sim::Euicc::open(&state).unwrap();
    let mut hook = StopBeforeBpp::default();
    let err = rt
        .block_on(lpa.download_with(&mut euicc, &ac, &Default::default(), &mut hook))
        .unwrap_err();
    assert!(
        matches!(
            err,
            euicc_sim::lpa::LpaError::Stopped {
                step: Step::GetBoundProfilePackage,
                ..
            }
        ),
        "{err}"
    );
    server.kill();
    let (server2, again) = serve(port, &data, db_url);
    assert_eq!(again, None, "no second demo profile");
    let gbr: es9::GetBoundProfilePackageResponse = rt
        .block_on(lpa.client().call(
            &address,
            Es9Function::GetBoundProfilePackage,
            hook.request.as_ref().unwrap(),
        ))
        .unwrap();
    let pir = euicc
        .load_bound_profile_package(&gbr.bound_profile_package)
        .unwrap();
    let seq = pir
        .profile_installation_result_data
        .value()
        .notification_metadata
        .seq_number;
    rt.block_on(lpa.send_notification(&mut euicc, seq)).unwrap();
    assert_installed(&profiles_list(&data, db_url), "8999900000000000555");
    drop(server2);
}

#[test]
fn sqlite_serve_download_restart() {
    let dir = tempfile::tempdir().unwrap();
    end_to_end(dir.path(), None);
}

#[test]
fn postgres_serve_download_restart() {
    let Some((url, admin, name)) = pg_database("e2e") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    end_to_end(dir.path(), Some(&url));
    pg_admin(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

// ----------------------------------------------------------------- CLI errors

fn assert_fails(args: &[&str], code: i32, needles: &[&str]) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "smdpp {args:?}: {stderr}");
    for n in needles {
        assert!(
            stderr.contains(n),
            "smdpp {args:?}: {n:?} not in {stderr:?}"
        );
    }
}

#[test]
fn rejects_bad_listen_address() {
    assert_fails(
        &["serve", "--listen", "notanaddress"],
        2,
        &[
            "invalid value 'notanaddress' for '--listen",
            "invalid socket address",
        ],
    );
}

#[test]
fn rejects_missing_upp_file() {
    let dir = tempfile::tempdir().unwrap();
    assert_fails(
        &[
            "profiles",
            "add",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--upp",
            "/nonexistent",
        ],
        1,
        &["error: reading /nonexistent", "No such file or directory"],
    );
}

#[test]
fn rejects_pki_init_over_existing_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pki");
    let out_s = out.to_str().unwrap();
    run_ok(&["pki", "init", "--out", out_s]);
    assert_fails(
        &["pki", "init", "--out", out_s],
        1,
        &["already exists; use --force to overwrite"],
    );
    run_ok(&["pki", "init", "--out", out_s, "--force"]);
}

#[test]
fn rejects_bad_activation_code() {
    assert_fails(
        &["ac", "parse", "bad"],
        1,
        &["error: unsupported activation code format \"bad\""],
    );
}

/// `smdpp serve --tls-backend openssl`: the demo profile downloaded by the `smdpp euicc`
/// process, and `openssl s_client` on the CBC suite of SGP.22 2.6.6 against the process.
#[test]
fn openssl_tls_backend_serves_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut c = Child::spawn(&[
        "serve",
        "--listen",
        &listen,
        "--data-dir",
        data.to_str().unwrap(),
        "--admin-listen",
        "off",
        "--tls-backend",
        "openssl",
    ]);
    c.wait_for("run a virtual device against it", Duration::from_secs(60));
    let ac = c
        .lines
        .lock()
        .unwrap()
        .iter()
        .find_map(|l| {
            l.strip_prefix("demo profile Activation Code: ")
                .map(str::to_owned)
        })
        .unwrap();
    wait_healthy(port);
    let state = dir.path().join("dev.json");
    let pki = data.join("pki");
    run_ok(&[
        "euicc",
        "init",
        "--state",
        state.to_str().unwrap(),
        "--pki",
        pki.to_str().unwrap(),
    ]);
    run_ok(&["euicc", "download", "--state", state.to_str().unwrap(), &ac]);
    let iccid = euicc_sim::state::EuiccState::load(&state).unwrap().profiles[0]
        .iccid
        .clone();
    assert_installed(&profiles_list(&data, None), &iccid);
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &listen,
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES128-SHA256",
            "-curves",
            "prime256v1",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Cipher is ECDHE-ECDSA-AES128-SHA256"),
        "{text}"
    );
}

#[test]
fn rejects_unknown_tls_backend() {
    assert_fails(
        &["serve", "--tls-backend", "gnutls"],
        2,
        &["invalid value 'gnutls' for '--tls-backend <TLS_BACKEND>'"],
    );
}
