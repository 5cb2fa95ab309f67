//! Profiles generated on demand by two `smdpp serve` PROCESSES sharing one PostgreSQL
//! database (two nodes): 50 concurrent ES2+ DownloadOrders by profileType, half to each
//! node, sent by 50 `curl` processes over HTTPS with the operator's client certificate
//! (an independent client), allocate 50 distinct ICCIDs and IMSIs from the type's ranges
//! and lose no index. Then the range runs out: the next order is refused with 8.2.5/3.7 and
//! `smdpp profiles generate` says the range is exhausted.
//!
//! Needs PostgreSQL (`SMDPP_TEST_PG_URL`; skipped with a notice without it unless
//! `SMDPP_REQUIRE_PG=1`), `openssl` and `curl` (installed by scripts/test.sh).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smdpp");

struct Child {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Child {
    fn spawn(args: &[&str], log: &Path) -> Child {
        let mut child = Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("SMDPP_DATA_DIR")
            .env_remove("SMDPP_DATABASE_URL")
            .env_remove("SMDPP_CONFIG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let l = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        Child { child, lines }
    }

    fn wait_for(&self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        while !self
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
        {
            assert!(start.elapsed() < timeout, "no {needle:?} from the server");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SMDPP_DATA_DIR")
        .env_remove("SMDPP_DATABASE_URL")
        .output()
        .unwrap()
}

fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "smdpp {args:?} failed: {}{}",
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

fn pg_exec(url: &str, sql: &str) -> Vec<String> {
    use sqlx::{Connection, Row};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = sqlx::postgres::PgConnection::connect(url).await.unwrap();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).unwrap_or_default())
            .collect()
    })
}

/// A fresh database on the test server: its URL.
fn pg_database() -> Option<String> {
    let admin = match std::env::var("SMDPP_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(
                std::env::var("SMDPP_REQUIRE_PG").as_deref() != Ok("1"),
                "SMDPP_REQUIRE_PG=1 but SMDPP_TEST_PG_URL is not set"
            );
            eprintln!("SKIPPED: SMDPP_TEST_PG_URL not set");
            return None;
        }
    };
    let name = format!("smdpp_gen_proc_{}", std::process::id());
    pg_exec(&admin, &format!("CREATE DATABASE {name}"));
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b.to_owned(), Some(q.to_owned())),
        None => (admin.clone(), None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host = match base[scheme_end..].find('/') {
        Some(p) => base[..p + scheme_end].to_owned(),
        None => base.clone(),
    };
    Some(match query {
        Some(q) => format!("{host}/{name}?{q}"),
        None => format!("{host}/{name}"),
    })
}

/// A self-signed P-256 client certificate made by openssl: (cert, key) paths.
fn operator_cert(dir: &Path) -> (String, String) {
    let cert = dir.join("op.pem");
    let key = dir.join("op.key");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=operator-gen.example",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        cert.to_str().unwrap().to_owned(),
        key.to_str().unwrap().to_owned(),
    )
}

/// One ES2+ DownloadOrder by `curl`: the response JSON.
fn curl_order(port: u16, cert: &str, key: &str, n: usize) -> std::process::Child {
    let body = format!(
        r#"{{"header":{{"functionRequesterIdentifier":"op-gen","functionCallIdentifier":"gen-{n}"}},"profileType":"gen"}}"#
    );
    Command::new("curl")
        .args([
            "-sS",
            "-k",
            "--max-time",
            "60",
            "--cert",
            cert,
            "--key",
            key,
            "-H",
            "Content-Type: application/json",
            "-H",
            "X-Admin-Protocol: gsma/rsp/v2.2.0",
            "--data",
            &body,
            &format!("https://127.0.0.1:{port}/gsma/rsp2/es2plus/downloadOrder"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn json_of(out: Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn postgres_two_nodes_allocate_distinct_identifiers_under_concurrency() {
    let Some(url) = pg_database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("node-a");
    let b = dir.path().join("node-b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let a_s = a.to_str().unwrap();
    let kek = a.join("vault.kek");
    let kek_s = kek.to_str().unwrap();
    let common = ["--database-url", url.as_str(), "--kek-file", kek_s];
    let with = |v: Vec<&str>, data: &str| -> Vec<String> {
        let mut out: Vec<String> = v.into_iter().map(str::to_owned).collect();
        out.extend(["--data-dir".to_owned(), data.to_owned()]);
        out.extend(common.iter().map(|s| (*s).to_owned()));
        out
    };
    let call = |args: Vec<String>| {
        let r: Vec<&str> = args.iter().map(String::as_str).collect();
        run_ok(&r)
    };
    call(with(
        vec![
            "types",
            "add",
            "gen",
            "--spn",
            "Gen",
            "--profile-name",
            "Generated",
        ],
        a_s,
    ));
    // 60 ICCIDs but only 55 IMSIs: the range holds 55 profiles.
    let out = call(with(
        vec![
            "types",
            "generator",
            "gen",
            "--iccid-range",
            "894400000000000000-894400000000000059",
            "--imsi-range",
            "001019000000001-001019000000055",
        ],
        a_s,
    ));
    assert!(out.contains("55 ICCIDs"), "{out}");
    let (cert, key) = operator_cert(dir.path());
    call(with(
        vec!["operators", "add", "--id", "op-gen", "--cert", &cert],
        a_s,
    ));

    let (pa, pb) = (free_port(), free_port());
    let la = format!("127.0.0.1:{pa}");
    let lb = format!("127.0.0.1:{pb}");
    let node_a = Child::spawn(
        &[
            "serve",
            "--listen",
            &la,
            "--data-dir",
            a_s,
            "--database-url",
            &url,
            "--kek-file",
            kek_s,
        ],
        &dir.path().join("node-a.log"),
    );
    node_a.wait_for("run a virtual device against it", Duration::from_secs(60));
    let pki = a.join("pki");
    let node_b = Child::spawn(
        &[
            "serve",
            "--listen",
            &lb,
            "--data-dir",
            b.to_str().unwrap(),
            "--database-url",
            &url,
            "--kek-file",
            kek_s,
            "--pki",
            pki.to_str().unwrap(),
        ],
        &dir.path().join("node-b.log"),
    );
    node_b.wait_for("run a virtual device against it", Duration::from_secs(60));

    // 50 concurrent orders, alternating between the nodes.
    let children: Vec<_> = (0..50)
        .map(|n| curl_order(if n % 2 == 0 { pa } else { pb }, &cert, &key, n))
        .collect();
    let mut iccids = HashSet::new();
    for c in children {
        let v = json_of(c.wait_with_output().unwrap());
        assert_eq!(
            v["header"]["functionExecutionStatus"]["status"], "Executed-Success",
            "{v}"
        );
        assert!(iccids.insert(v["iccid"].as_str().unwrap().to_owned()));
    }
    assert_eq!(iccids.len(), 50);
    let imsis: HashSet<String> = pg_exec(
        &url,
        "SELECT s.imsi FROM profile_secrets s JOIN profiles p ON p.iccid = s.iccid \
         WHERE p.profile_type = 'gen'",
    )
    .into_iter()
    .collect();
    assert_eq!(imsis.len(), 50, "50 distinct IMSIs");
    assert!(imsis.iter().all(|i| i.starts_with("0010190000000")));
    // Every index taken is one of the 50 profiles (none skipped: the range does not overlap the
    // demo profile's IMSI; an overlap would be skipped and logged).
    let next: i64 = pg_exec(
        &url,
        "SELECT CAST(next_index AS TEXT) FROM profile_generators WHERE profile_type = 'gen'",
    )[0]
    .parse()
    .unwrap();
    let logs = || {
        ["node-a.log", "node-b.log"]
            .map(|f| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default())
            .join("\n")
    };
    let skipped = i64::try_from(logs().matches("index skipped").count()).unwrap();
    assert_eq!(
        next,
        50 + skipped,
        "indices = profiles + logged skips; logs:\n{}",
        logs()
    );

    // The pool is filled ahead of time up to the end of the range, then it is exhausted.
    let out = run(&with(
        vec![
            "profiles",
            "generate",
            "--type",
            "gen",
            "--count",
            "10",
            "--operator",
            "op-gen",
        ],
        a_s,
    )
    .iter()
    .map(String::as_str)
    .collect::<Vec<_>>());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the ICCID/IMSI range of profile type \"gen\" is exhausted (55 profiles); 5 of 10 generated"),
        "{err}"
    );
    let available = pg_exec(
        &url,
        "SELECT iccid FROM profiles WHERE profile_type = 'gen' AND state = 'available'",
    )
    .len();
    assert_eq!(
        available,
        usize::try_from(55 - next).unwrap(),
        "the pool holds the rest of the range"
    );
    // The pool's profiles are ordered first; then the next order is refused with 8.2.5/3.7.
    for n in 0..available {
        let v = json_of(
            curl_order(pb, &cert, &key, 100 + n)
                .wait_with_output()
                .unwrap(),
        );
        assert_eq!(
            v["header"]["functionExecutionStatus"]["status"], "Executed-Success",
            "{v}"
        );
    }
    let v = json_of(curl_order(pa, &cert, &key, 200).wait_with_output().unwrap());
    let fes = &v["header"]["functionExecutionStatus"];
    assert_eq!(fes["status"], "Failed", "{v}");
    assert_eq!(fes["statusCodeData"]["subjectCode"], "8.2.5");
    assert_eq!(fes["statusCodeData"]["reasonCode"], "3.7");
    drop(node_a);
    drop(node_b);
}
