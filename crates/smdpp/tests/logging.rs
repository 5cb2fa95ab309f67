//! The `tracing` output of the `smdpp` binary as a process: `smdpp serve` writes its log
//! lines to stderr (stdout keeps its instructions), at `info` by default and as `RUST_LOG`
//! says otherwise, and among them the start-up warnings of the outbox about operators whose
//! callbacks cannot be delivered. One-shot commands log only warnings by default.
//!
//! The operators are registered with `smdpp operators add`; the two broken ones are then
//! altered in the SQLite database, as rows stored before the CLI checked them would be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smdpp");

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("SMDPP_DATA_DIR")
        .env_remove("SMDPP_DATABASE_URL")
        .env_remove("SMDPP_CONFIG")
        .env_remove("SMDPP_OUTBOX_CA_FILE")
        .env_remove("RUST_LOG");
    c
}

fn run(args: &[&str]) -> Output {
    command(args).output().unwrap()
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

/// A child process killed (SIGKILL) and reaped on drop; its stdout and stderr lines are
/// collected separately.
struct Child {
    child: std::process::Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn collect(from: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l2 = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            l2.lock().unwrap().push(line);
        }
    });
    lines
}

impl Child {
    /// `smdpp serve` on a free port and `data`, with `RUST_LOG` set to `rust_log` (unset
    /// for `None`); waits until it printed its instructions.
    fn serve(data: &Path, rust_log: Option<&str>) -> Child {
        Child::serve_with(data, rust_log, &[])
    }

    /// [`Child::serve`] with extra arguments.
    fn serve_with(data: &Path, rust_log: Option<&str>, extra: &[&str]) -> Child {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut cmd = command(&[
            "serve",
            "--listen",
            &listen,
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        cmd.args(extra);
        if let Some(v) = rust_log {
            cmd.env("RUST_LOG", v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let mut c = Child {
            child,
            stdout,
            stderr,
        };
        c.wait_for(&c.stdout.clone(), "run a virtual device against it");
        c
    }

    /// Waits (up to 60 s) until a line of `lines` contains `needle`; returns that line.
    fn wait_for(&mut self, lines: &Arc<Mutex<Vec<String>>>, needle: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = lines.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "smdpp exited ({status}) before printing {needle:?}; {}",
                    self.dump()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting for {needle:?}; {}",
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_stderr(&mut self, needle: &str) -> String {
        let lines = Arc::clone(&self.stderr);
        self.wait_for(&lines, needle)
    }

    fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    fn dump(&self) -> String {
        format!("stdout: {:?}\nstderr: {:?}", self.stdout(), self.stderr())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate (PEM) for `name` in `dir`, usable both as an operator's client
/// certificate and as a one-certificate CA bundle.
fn certificate(dir: &Path, name: &str) -> PathBuf {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![format!("{name}.example")]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, cert.pem()).unwrap();
    path
}

/// Changes operator `id`'s `column` in the data directory's SQLite database.
fn alter_operator(data: &Path, id: &str, column: &str, value: &str) {
    use sqlx::Connection;
    let db = data.join("smdpp.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn =
            sqlx::sqlite::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
                .await
                .unwrap();
        let sql = format!("UPDATE operators SET {column} = ? WHERE id = ?");
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .bind(id)
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1);
        conn.close().await.unwrap();
    });
}

/// A data directory with three operators registered through the CLI: `OP-OK` (callbacks
/// to an https URL, system roots), `OP-HTTP` (its URL then changed to http://) and `OP-CA`
/// (its CA then changed to a certificate that does not parse).
fn data_with_operators(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let data_s = data.to_str().unwrap();
    for (id, extra) in [
        ("OP-OK", vec!["--callback-url", "https://ok.example/es2"]),
        (
            "OP-HTTP",
            vec!["--callback-url", "https://http.example/es2"],
        ),
        ("OP-CA", vec!["--callback-url", "https://ca.example/es2"]),
    ] {
        let cert = certificate(dir, &id.to_ascii_lowercase());
        let ca = certificate(dir, &format!("{}-ca", id.to_ascii_lowercase()));
        let mut args = vec![
            "operators",
            "add",
            "--id",
            id,
            "--cert",
            cert.to_str().unwrap(),
            "--data-dir",
            data_s,
        ];
        args.extend(extra);
        if id == "OP-CA" {
            args.extend(["--callback-ca", ca.to_str().unwrap()]);
        }
        let out = run(&args);
        assert!(out.status.success(), "{out:?}");
        // A one-shot command logs nothing below `warn` by default.
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "smdpp {args:?}");
    }
    alter_operator(&data, "OP-HTTP", "callback_url", "http://http.example/es2");
    alter_operator(
        &data,
        "OP-CA",
        "callback_ca",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    assert!(run_ok(&["operators", "list", "--data-dir", data_s]).contains("OP-CA"));
    data
}

const HTTP_WARNING: &str =
    "operator OP-HTTP: callbacks cannot be delivered: callback URL: not an https:// URL";
const CA_WARNING: &str =
    "operator OP-CA: callbacks cannot be delivered: callback CA: certificate 1 does not parse";

#[test]
fn serve_warns_about_undeliverable_callbacks_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_with_operators(dir.path());
    let mut server = Child::serve(&data, None);
    let http = server.wait_stderr(HTTP_WARNING);
    let ca = server.wait_stderr(CA_WARNING);
    assert!(http.contains(" WARN "), "{http}");
    assert!(ca.contains(" WARN "), "{ca}");
    // `info` is the default level of serve; no debug lines.
    server.wait_stderr("outbox delivery started");
    std::thread::sleep(Duration::from_millis(300));
    let stderr = server.stderr();
    assert!(
        !stderr.iter().any(|l| l.contains("OP-OK")),
        "OP-OK is fine: {stderr:?}"
    );
    assert!(
        !stderr.iter().any(|l| l.contains(" DEBUG ")),
        "no debug lines by default: {stderr:?}"
    );
    // Log lines go to stderr only.
    let stdout = server.stdout();
    assert!(
        !stdout
            .iter()
            .any(|l| l.contains(" WARN ") || l.contains(" INFO ")),
        "{stdout:?}"
    );
}

#[test]
fn rust_log_sets_what_serve_prints() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_with_operators(dir.path());
    {
        let mut server = Child::serve(&data, Some("debug"));
        let line = server.wait_stderr("operator OP-OK: callbacks trust the system roots");
        assert!(line.contains(" DEBUG "), "{line}");
        server.wait_stderr(HTTP_WARNING);
    }
    {
        // Only errors: the warnings are not printed.
        let mut server = Child::serve(&data, Some("error"));
        // The start-up check runs right after the listener is up; give it time to log.
        std::thread::sleep(Duration::from_millis(1500));
        let stderr = server.stderr();
        assert!(
            !stderr
                .iter()
                .any(|l| l.contains(" WARN ") || l.contains(" INFO ")),
            "{stderr:?}"
        );
        let _ = server.wait_for(&Arc::clone(&server.stdout), "run a virtual device");
    }
}

#[test]
fn json_logs_carry_the_es9_session_span_and_no_matching_id() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Child::serve_with(
        &data,
        None,
        &["--log-format", "json", "--admin-listen", "off"],
    );
    let ac = server
        .stdout()
        .iter()
        .find_map(|l| {
            l.strip_prefix("demo profile Activation Code: ")
                .map(str::to_owned)
        })
        .unwrap();
    let matching_id = ac.rsplit('$').next().unwrap().to_owned();
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
    server.wait_stderr("profile installation result");
    let lines = server.stderr();
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let auth = parsed
        .iter()
        .find(|v| v["fields"]["message"] == "eUICC authenticated")
        .unwrap_or_else(|| panic!("{lines:?}"));
    let span = &auth["span"];
    assert_eq!(span["name"], "es9");
    assert_eq!(span["function"], "authenticateClient");
    assert_eq!(span["transaction_id"].as_str().unwrap().len(), 32, "{auth}");
    assert_eq!(span["eid"].as_str().unwrap().len(), 32, "{auth}");
    let iccid = span["iccid"].as_str().unwrap();
    let pir = parsed
        .iter()
        .find(|v| v["fields"]["message"] == "profile installation result")
        .unwrap();
    assert_eq!(pir["span"]["iccid"], iccid);
    assert_eq!(pir["span"]["function"], "handleNotification");
    assert!(
        !lines.iter().any(|l| l.contains(&matching_id)),
        "a log line holds the MatchingID"
    );
}
