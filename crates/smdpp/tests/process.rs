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

/// The `--limit-*` flags (and `--max-open-sessions`) take a whole number: a garbage value,
/// from the flag or from its environment variable, stops `serve` with clap's message
/// naming the flag, before anything is opened.
fn assert_limit_rejected(flag: &str, env: &str, value: &str, reason: &str) {
    let upper = flag
        .trim_start_matches("--")
        .replace('-', "_")
        .to_uppercase();
    let message = format!("invalid value '{value}' for '{flag} <{upper}>': {reason}");
    let arg = format!("{flag}={value}");
    assert_fails(&["serve", &arg], 2, &[&message]);
    let out = Command::new(BIN)
        .arg("serve")
        .env(env, value)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{env}={value}: {stderr}");
    assert!(
        stderr.contains(&message),
        "{env}={value}: {message:?} not in {stderr:?}"
    );
}

#[test]
fn rejects_bad_limit_refusals_per_eid_per_minute() {
    let (flag, env) = (
        "--limit-refusals-per-eid-per-minute",
        "SMDPP_LIMIT_REFUSALS_PER_EID_PER_MINUTE",
    );
    assert_limit_rejected(flag, env, "ten", "invalid digit found in string");
    assert_limit_rejected(flag, env, "-1", "-1 is not in 0..=4294967295");
    assert_limit_rejected(
        flag,
        env,
        "4294967296",
        "4294967296 is not in 0..=4294967295",
    );
    assert_limit_rejected(flag, env, "", "cannot parse integer from empty string");
}

#[test]
fn rejects_bad_limit_refusals_per_minute() {
    let (flag, env) = (
        "--limit-refusals-per-minute",
        "SMDPP_LIMIT_REFUSALS_PER_MINUTE",
    );
    assert_limit_rejected(flag, env, "20/min", "invalid digit found in string");
    assert_limit_rejected(flag, env, "-1", "-1 is not in 0..=4294967295");
}

#[test]
fn rejects_bad_limit_initiate_per_minute() {
    let (flag, env) = (
        "--limit-initiate-per-minute",
        "SMDPP_LIMIT_INITIATE_PER_MINUTE",
    );
    assert_limit_rejected(flag, env, "off", "invalid digit found in string");
    assert_limit_rejected(flag, env, "1.5", "invalid digit found in string");
}

#[test]
fn rejects_bad_max_open_sessions() {
    let (flag, env) = ("--max-open-sessions", "SMDPP_MAX_OPEN_SESSIONS");
    assert_limit_rejected(flag, env, "many", "invalid digit found in string");
    assert_limit_rejected(flag, env, "-5", "-5 is not in 0..9223372036854775807");
    // The configuration file's value is checked too.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("smdpp.toml");
    std::fs::write(&cfg, "max_open_sessions = -5\n").unwrap();
    assert_fails(
        &["serve", "--config", cfg.to_str().unwrap()],
        1,
        &["max_open_sessions = -5: must be 0 (no bound) or a positive number of sessions"],
    );
}

// ----------------------------------------------------------------- many nodes

/// A process that is not `smdpp` (haproxy), killed on drop.
struct Other(std::process::Child);

impl Drop for Other {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `haproxy`, or `None` (skipped) when it is not installed and `SMDPP_REQUIRE_HAPROXY` is
/// not 1.
fn haproxy_binary(test: &str) -> Option<&'static str> {
    let found = Command::new("haproxy")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("haproxy");
    }
    assert!(
        std::env::var("SMDPP_REQUIRE_HAPROXY").as_deref() != Ok("1"),
        "SMDPP_REQUIRE_HAPROXY=1 but haproxy is not installed"
    );
    eprintln!("SKIPPED {test}: haproxy not installed (apt-get install haproxy)");
    None
}

/// `smdpp_downloads_total{result="success"}` on an admin listener, 0 when unreachable.
fn downloads_on(admin_port: u16) -> f64 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", admin_port)) else {
        return 0.0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .find(|l| l.starts_with("smdpp_downloads_total{result=\"success\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Three `smdpp serve` nodes on one PostgreSQL behind a real haproxy (TCP, round-robin per
/// connection, and the LPA opens one connection per ES9+ call, so consecutive calls of one
/// session land on different nodes). One node is SIGKILLed in the middle of a load run: the
/// run goes on through the two others; only downloads with a call in flight on the killed
/// node may fail, each with a clean, tallied error; every completed download is Installed,
/// bound to exactly the EID whose card sent its installation result, and no order is lost.
#[test]
fn three_nodes_behind_haproxy_survive_a_sigkill() {
    let test = "three_nodes_behind_haproxy_survive_a_sigkill";
    let Some(haproxy) = haproxy_binary(test) else {
        return;
    };
    let Some((db_url, _admin, _name)) = pg_database("cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ha_port = free_port();
    let address = format!("127.0.0.1:{ha_port}");
    let node = |port: u16, admin: Option<u16>| {
        let listen = format!("127.0.0.1:{port}");
        let admin = admin.map_or("off".to_owned(), |p| format!("127.0.0.1:{p}"));
        let mut c = Child::spawn(&[
            "serve",
            "--listen",
            &listen,
            "--smdp-address",
            &address,
            "--data-dir",
            data.to_str().unwrap(),
            "--database-url",
            &db_url,
            "--admin-listen",
            &admin,
            "--limit-initiate-per-minute",
            "0",
        ]);
        c.wait_for("run a virtual device against it", Duration::from_secs(60));
        wait_healthy(port);
        c
    };
    let ports = [free_port(), free_port(), free_port()];
    let victim_admin = free_port();
    // The first node creates the PKI and the vault key in the shared data directory.
    let _n1 = node(ports[0], None);
    let mut n2 = node(ports[1], Some(victim_admin));
    let _n3 = node(ports[2], None);

    let cfg = dir.path().join("haproxy.cfg");
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("  server n{i} 127.0.0.1:{p} check inter 200ms fall 1 rise 2\n"))
        .collect();
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 2s\n  \
             timeout client 60s\n  timeout server 60s\n  retries 3\n  option redispatch\n\
             frontend es9\n  bind {address}\n  default_backend nodes\n\
             backend nodes\n  balance roundrobin\n{servers}"
        ),
    )
    .unwrap();
    let _proxy = Other(
        Command::new(haproxy)
            .args(["-db", "-f", cfg.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    wait_healthy(ha_port);

    let devices = 6;
    let downloads = 150;
    let report = dir.path().join("bench.json");
    let url = format!("https://{address}");
    let bench = std::thread::spawn({
        let data = data.clone();
        let db_url = db_url.clone();
        let report = report.clone();
        move || {
            let out = Command::new(BIN)
                .args([
                    "bench",
                    "--url",
                    &url,
                    "--devices",
                    &devices.to_string(),
                    "--downloads",
                    &downloads.to_string(),
                    "--data-dir",
                    data.to_str().unwrap(),
                    "--database-url",
                    &db_url,
                    "--floor-iterations",
                    "10",
                    "--json",
                ])
                .env("RUST_LOG", "warn")
                .output()
                .unwrap();
            std::fs::write(&report, &out.stdout).unwrap();
            out
        }
    });
    // SIGKILL the second node once it has completed a few downloads of the run.
    let start = Instant::now();
    while downloads_on(victim_admin) < 5.0 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "node 2 completed no downloads"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    n2.kill();
    let out = bench.join().unwrap();
    assert!(
        out.status.success(),
        "bench failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let completed = r["completed"].as_u64().unwrap();
    let failed = r["failed"].as_u64().unwrap();
    eprintln!(
        "cluster run: {completed} completed, {failed} failed, errors {}, {} downloads/s",
        r["errors"], r["downloads_per_s"]
    );
    assert_eq!(completed + failed, downloads, "{r}");
    // Only the downloads with a call in flight on the killed node may fail.
    assert!(failed <= devices, "{failed} failed: {}", r["errors"]);
    for (key, _) in r["errors"].as_object().unwrap() {
        // A call cut by the kill (the PIR's included: the card keeps it and sends it again
        // later), or an SGP.22 code.
        let clean = key.contains("transport")
            || key.split(": ").nth(1).is_some_and(|c| {
                c.split('/').count() == 2
                    && c.chars()
                        .all(|ch| ch.is_ascii_digit() || ch == '.' || ch == '/')
            });
        assert!(clean, "unexpected error kind {key:?}: {r}");
    }

    // The database, as the two surviving nodes left it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Row};
        let mut c = sqlx::postgres::PgConnection::connect(&db_url)
            .await
            .unwrap();
        let count = |sql: &'static str| sqlx::query(sql);
        let installed: i64 =
            count("SELECT COUNT(*) FROM profiles WHERE state = 'installed' AND eid IS NOT NULL")
                .fetch_one(&mut c)
                .await
                .unwrap()
                .get(0);
        // Every completed download is Installed; a PIR whose answer was cut by the kill may
        // have been committed before the node died (durable before answering), so those
        // may be Installed too. (The demo profile of the first node is not downloaded.)
        let pir_cut: u64 = r["errors"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with("PIR") || k.starts_with("HandleNotification"))
            .map(|(_, v)| v.as_u64().unwrap())
            .sum();
        let installed = installed as u64;
        assert!(
            (completed..=completed + pir_cut).contains(&installed),
            "{installed} installed for {completed} completed downloads ({pir_cut} PIRs cut)"
        );
        let twice: i64 = count(
            "SELECT COUNT(*) FROM (SELECT iccid FROM notifications GROUP BY iccid \
             HAVING COUNT(DISTINCT eid) > 1) t",
        )
        .fetch_one(&mut c)
        .await
        .unwrap()
        .get(0);
        assert_eq!(twice, 0, "a profile reported by two eUICCs");
        let mismatched: i64 = count(
            "SELECT COUNT(*) FROM profiles p JOIN notifications n ON n.iccid = p.iccid \
             WHERE n.eid <> p.eid",
        )
        .fetch_one(&mut c)
        .await
        .unwrap()
        .get(0);
        assert_eq!(
            mismatched, 0,
            "a profile bound to another EID than its card's"
        );
        let lost: i64 =
            count("SELECT COUNT(*) FROM profiles WHERE state IN ('error', 'unavailable')")
                .fetch_one(&mut c)
                .await
                .unwrap()
                .get(0);
        assert_eq!(lost, 0, "no order ends in Error because a node died");
        c.close().await.unwrap();
    });
}

/// Durable before answered, on SQLite with group commit: `smdpp serve` on its default
/// SQLite file (`synchronous = full`) under 24 concurrent devices is SIGKILLed in the middle
/// of the run. Every download whose last call (the PIR) was answered must be Installed in
/// the file the dead process left, bound to one EID: a write is answered only after the
/// batch holding it committed. (A PIR cut by the kill may have committed just before it,
/// so up to that many more may be Installed.) The file passes `PRAGMA integrity_check`, and
/// a restarted server serves on it.
#[test]
fn sqlite_server_sigkill_loses_no_answered_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let admin = free_port();
    let listen = format!("127.0.0.1:{port}");
    let admin_listen = format!("127.0.0.1:{admin}");
    let serve_args = [
        "serve",
        "--listen",
        &listen,
        "--data-dir",
        data.to_str().unwrap(),
        "--admin-listen",
        &admin_listen,
        "--limit-initiate-per-minute",
        "0",
        "--sqlite-synchronous",
        "full",
    ];
    let mut server = Child::spawn(&serve_args);
    server.wait_for("run a virtual device against it", Duration::from_secs(60));
    wait_healthy(port);

    let report = dir.path().join("bench.json");
    let url = format!("https://{listen}");
    let bench = std::thread::spawn({
        let data = data.clone();
        let report = report.clone();
        move || {
            let out = Command::new(BIN)
                .args([
                    "bench",
                    "--url",
                    &url,
                    "--devices",
                    "24",
                    "--downloads",
                    "400",
                    "--data-dir",
                    data.to_str().unwrap(),
                    "--floor-iterations",
                    "10",
                    "--json",
                ])
                .env("RUST_LOG", "warn")
                .output()
                .unwrap();
            std::fs::write(&report, &out.stdout).unwrap();
            out
        }
    });
    let start = Instant::now();
    while downloads_on(admin) < 40.0 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the server completed no downloads"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill();
    let out = bench.join().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap())
        .unwrap_or_else(|e| {
            panic!(
                "no bench report ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let completed = r["completed"].as_u64().unwrap();
    assert!(completed >= 40, "{r}");
    let pir_cut: u64 = r["errors"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("PIR") || k.starts_with("HandleNotification"))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = data.join("smdpp.db");
    rt.block_on(async {
        use sqlx::{Connection, Row};
        let mut c =
            sqlx::sqlite::SqliteConnection::connect(&format!("sqlite://{}", db.to_str().unwrap()))
                .await
                .unwrap();
        let check: String = sqlx::query("PRAGMA integrity_check")
            .fetch_one(&mut c)
            .await
            .unwrap()
            .get(0);
        assert_eq!(check, "ok");
        let installed: i64 = sqlx::query(
            "SELECT COUNT(*) FROM profiles WHERE state = 'installed' AND eid IS NOT NULL",
        )
        .fetch_one(&mut c)
        .await
        .unwrap()
        .get(0);
        let installed = installed as u64;
        eprintln!("killed after {completed} completed downloads: {installed} installed");
        assert!(
            (completed..=completed + pir_cut).contains(&installed),
            "{installed} installed for {completed} answered downloads ({pir_cut} PIRs cut): {r}"
        );
        let twice: i64 = sqlx::query(
            "SELECT COUNT(*) FROM (SELECT iccid FROM notifications GROUP BY iccid \
             HAVING COUNT(DISTINCT eid) > 1) t",
        )
        .fetch_one(&mut c)
        .await
        .unwrap()
        .get(0);
        assert_eq!(twice, 0, "a profile reported by two eUICCs");
        c.close().await.unwrap();
    });

    // The file the dead server left is served again.
    let mut again = Child::spawn(&serve_args);
    again.wait_for("run a virtual device against it", Duration::from_secs(60));
    wait_healthy(port);
}
