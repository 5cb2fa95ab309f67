//! `smdpp audit list|verify` as processes, on a temporary SQLite data directory and (when
//! `SMDPP_TEST_PG_URL` is set; `SMDPP_REQUIRE_PG=1` makes its absence a failure) on a fresh
//! PostgreSQL database: operator and order commands leave their records, `verify` says the
//! chain is intact, and after the database is tampered with by SQL (a record altered,
//! removed, two records swapped) it exits with status 1 and names the first bad record. A
//! full download (served, with the virtual eUICC) leaves no secret in the trail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smdpp");
const ICCID: &str = "89000123456789012341";
/// The Unix user the commands run as (`$USER`): their actor is `cli:auditor`.
const USER: &str = "auditor";

fn ts48(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/profiles/ts48")
        .join(name)
}

// ----------------------------------------------------------------- databases

/// A data directory, and the PostgreSQL database it uses when it is not SQLite.
struct Db {
    dir: tempfile::TempDir,
    /// The database URL for `--database-url` (SQLite: the default file in the data dir).
    url: String,
    pg: Option<(String, String)>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("data/smdpp.db").display());
        Db { dir, url, pg: None }
    }

    fn postgres(test: &str) -> Option<Db> {
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
            "smdpp_audit_{}_{}_{test}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        exec(&admin, &format!("CREATE DATABASE {name}"));
        let (base, query) = match admin.split_once('?') {
            Some((b, q)) => (b.to_owned(), Some(q.to_owned())),
            None => (admin.clone(), None),
        };
        let scheme_end = base.find("://").map_or(0, |i| i + 3);
        let host = match base[scheme_end..].find('/') {
            Some(p) => base[..p + scheme_end].to_owned(),
            None => base.clone(),
        };
        let url = match query {
            Some(q) => format!("{host}/{name}?{q}"),
            None => format!("{host}/{name}"),
        };
        Some(Db {
            dir: tempfile::tempdir().unwrap(),
            url,
            pg: Some((admin, name)),
        })
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `smdpp ARGS --data-dir D --database-url U` as user [`USER`].
    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(self.data())
            .arg("--database-url")
            .arg(&self.url)
            .env_remove("SMDPP_DATA_DIR")
            .env_remove("SMDPP_DATABASE_URL")
            .env_remove("SMDPP_CONFIG")
            .env_remove("RUST_LOG")
            .env("USER", USER)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "smdpp {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A command that must exit with status 1, exactly `stderr` and nothing on stdout.
    fn refused(&self, args: &[&str], stderr: &str) {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "smdpp {args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            stderr,
            "smdpp {args:?}"
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "", "smdpp {args:?}");
    }

    /// Runs SQL statements on the database directly, as someone tampering with it would.
    fn tamper(&self, sql: &str) {
        exec(&self.url, sql);
    }

    /// Every audit_log row as text (all columns), read directly.
    fn audit_rows(&self) -> Vec<String> {
        use sqlx::{Connection, Row};
        sqlx::any::install_default_drivers();
        block_on(async {
            let mut conn = sqlx::AnyConnection::connect(&self.url).await.unwrap();
            let rows = sqlx::query(
                "SELECT seq, at, actor, action, subject, reason, details, prev_hash, hash \
                 FROM audit_log ORDER BY seq",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            let out = rows
                .iter()
                .map(|r| {
                    let seq: i64 = r.get("seq");
                    let at: i64 = r.get("at");
                    let texts: Vec<String> = [
                        "actor",
                        "action",
                        "subject",
                        "reason",
                        "details",
                        "prev_hash",
                        "hash",
                    ]
                    .iter()
                    .map(|c| r.get::<String, _>(*c))
                    .collect();
                    format!("{seq}|{at}|{}", texts.join("|"))
                })
                .collect();
            conn.close().await.unwrap();
            out
        })
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg {
            exec(
                admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

fn exec(url: &str, sql: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    block_on(async {
        let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
        for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
            sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn.close().await.unwrap();
    });
}

/// A self-signed operator client certificate written by openssl.
fn operator_cert(dir: &Path) -> PathBuf {
    let cert = dir.join("op.pem");
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .arg("ec_paramgen_curve:P-256")
        .args(["-nodes", "-days", "30", "-subj", "/CN=operator-one"])
        .arg("-keyout")
        .arg(dir.join("op.key"))
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(status.status.success(), "openssl req failed");
    cert
}

/// The records `smdpp audit list --json` prints.
fn listed(db: &Db, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["audit", "list", "--json"];
    args.extend_from_slice(extra);
    db.ok(&args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The seq of the first record with `action`.
fn seq_of(records: &[serde_json::Value], action: &str) -> i64 {
    records
        .iter()
        .find(|r| r["action"] == action)
        .unwrap_or_else(|| panic!("no {action} in {records:?}"))["seq"]
        .as_i64()
        .unwrap()
}

/// An operator, an order imported, reserved and confirmed, all through the CLI; the chain is
/// intact. Returns the records.
fn orders_through_the_cli(db: &Db) -> Vec<serde_json::Value> {
    let cert = operator_cert(db.dir.path());
    db.ok(&[
        "operators",
        "add",
        "--id",
        "OP1",
        "--cert",
        cert.to_str().unwrap(),
    ]);
    let upp = ts48("TS48v4_SAIP2.3_BERTLV.der");
    db.ok(&scoped(&[
        "orders",
        "import",
        "--upp",
        upp.to_str().unwrap(),
        "--profile-type",
        "test",
    ]));
    db.ok(&scoped(&["orders", "create", "--profile-type", "test"]));
    db.ok(&scoped(&[
        "orders",
        "confirm",
        ICCID,
        "--release",
        "--confirmation-code",
        "97531",
    ]));
    let records = listed(db, &[]);
    assert_eq!(
        db.ok(&["audit", "verify"]),
        format!("audit: {} records, chain intact\n", records.len())
    );
    records
}

/// `args`, then `--operator OP1`.
fn scoped<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend(["--operator", "OP1"]);
    v
}

// ----------------------------------------------------------------- the tests

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::Db::sqlite());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(db) = super::Db::postgres(stringify!($name)) {
                        super::$name(&db);
                    }
                }
            )*
        }
    };
}

both!(
    commands_leave_records_and_list_filters_them,
    rejects_altered_audit_record,
    rejects_removed_audit_record,
    rejects_reordered_audit_record,
    rejects_removed_last_audit_record,
    rejects_bad_audit_list_values,
);

fn commands_leave_records_and_list_filters_them(db: &Db) {
    let records = orders_through_the_cli(db);
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "operator.add",
            "profile.state",
            "order.import",
            "profile.state",
            "order.download",
            "profile.state",
            "order.confirm",
        ],
        "{records:#?}"
    );
    let seqs: Vec<i64> = records.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
    let confirm = &records[6];
    assert_eq!(confirm["actor"], format!("cli:{USER}"));
    assert_eq!(confirm["subject"], ICCID);
    assert_eq!(confirm["details"]["operator"], "OP1");
    assert_eq!(confirm["details"]["releaseFlag"], true);
    assert_eq!(confirm["details"]["confirmationCode"], true);
    let released = &records[5];
    assert_eq!(released["reason"], "ConfirmOrder releaseFlag=true");
    assert_eq!(released["details"]["from"], "allocated");
    assert_eq!(released["details"]["to"], "released");
    assert_eq!(records[0]["subject"], "OP1");
    assert_eq!(records[0]["actor"], format!("cli:{USER}"));
    assert_eq!(
        records[1]["actor"],
        format!("cli:{USER}"),
        "profile created"
    );

    // Filters.
    let subjects = listed(db, &["--subject", ICCID]);
    assert_eq!(subjects.len(), 6);
    assert_eq!(
        listed(db, &["--actor", "es2:OP1"]).len(),
        2,
        "the engine's transitions"
    );
    let last = listed(db, &["--limit", "2"]);
    assert_eq!(
        last.iter()
            .map(|r| r["seq"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![6, 7]
    );
    assert!(listed(db, &["--since", "2999-01-01T00:00:00Z"]).is_empty());
    assert_eq!(
        listed(db, &["--since", "2020-01-01T00:00:00+02:00"]).len(),
        7
    );
    // The text form: one line per record.
    let text = db.ok(&["audit", "list", "--subject", "OP1"]);
    assert_eq!(text.lines().count(), 1, "{text}");
    let line = text.lines().next().unwrap();
    assert!(line.starts_with("     1  20"), "{line}");
    assert!(
        line.contains(&format!(
            "  cli:{USER}  operator.add  OP1  -  {{\"certSha256\":\""
        )),
        "{line}"
    );
    // Read-only commands leave nothing.
    db.ok(&["operators", "list"]);
    db.ok(&["orders", "show", ICCID, "--operator", "OP1"]);
    assert_eq!(
        db.ok(&["audit", "verify"]),
        "audit: 7 records, chain intact\n"
    );
}

fn rejects_altered_audit_record(db: &Db) {
    let records = orders_through_the_cli(db);
    let seq = seq_of(&records, "order.download");
    db.tamper(&format!(
        "UPDATE audit_log SET reason = 'routine check' WHERE seq = {seq}"
    ));
    db.refused(
        &["audit", "verify"],
        &format!("error: audit: record {seq} altered (hash mismatch)\n"),
    );
    // Its details, too (a record of the first seq).
    db.tamper(&format!(
        "UPDATE audit_log SET reason = '' WHERE seq = {seq}; \
         UPDATE audit_log SET details = '{{}}' WHERE seq = 1"
    ));
    db.refused(
        &["audit", "verify"],
        "error: audit: record 1 altered (hash mismatch)\n",
    );
}

fn rejects_removed_audit_record(db: &Db) {
    let records = orders_through_the_cli(db);
    let seq = seq_of(&records, "order.download");
    db.tamper(&format!("DELETE FROM audit_log WHERE seq = {seq}"));
    db.refused(
        &["audit", "verify"],
        &format!(
            "error: audit: record {seq} missing (seq {} is followed by {})\n",
            seq - 1,
            seq + 1
        ),
    );
}

fn rejects_reordered_audit_record(db: &Db) {
    let records = orders_through_the_cli(db);
    let seq = seq_of(&records, "order.import");
    // Records seq and seq + 1 trade places.
    db.tamper(&format!(
        "UPDATE audit_log SET seq = -1 WHERE seq = {seq}; \
         UPDATE audit_log SET seq = {seq} WHERE seq = {}; \
         UPDATE audit_log SET seq = {} WHERE seq = -1",
        seq + 1,
        seq + 1
    ));
    db.refused(
        &["audit", "verify"],
        &format!(
            "error: audit: record {seq} out of order (its prev_hash is not the hash of record {})\n",
            seq - 1
        ),
    );
}

fn rejects_removed_last_audit_record(db: &Db) {
    let records = orders_through_the_cli(db);
    let last = records.len();
    db.tamper(&format!("DELETE FROM audit_log WHERE seq = {last}"));
    db.refused(
        &["audit", "verify"],
        &format!(
            "error: audit: head at seq {last} but the last record is {} (record {last} missing)\n",
            last - 1
        ),
    );
}

fn rejects_bad_audit_list_values(db: &Db) {
    db.refused(
        &["audit", "list", "--since", "yesterday"],
        "error: --since: \"yesterday\" is not an RFC 3339 time (e.g. 2026-12-07T10:00:00Z)\n",
    );
    db.refused(
        &["audit", "list", "--since", "2026-12-07 10:00"],
        "error: --since: \"2026-12-07 10:00\" is not an RFC 3339 time (e.g. 2026-12-07T10:00:00Z)\n",
    );
    db.refused(
        &["audit", "list", "--limit", "0"],
        "error: --limit must be at least 1\n",
    );
    // An empty trail lists nothing and verifies.
    assert_eq!(db.ok(&["audit", "list"]), "");
    assert_eq!(
        db.ok(&["audit", "verify"]),
        "audit: 0 records, chain intact\n"
    );
}

// ----------------------------------------------------------------- no secret in the trail

const KI: &str = "000102030405060708090A0B0C0D0E0F";
const OPC: &str = "F0E1D2C3B4A5968778695A4B3C2D1E0F";
const PIN1: &str = "73914682";
const PUK1: &str = "58203716";
const PIN2: &str = "73924683";
const PUK2: &str = "58203717";
const ADM1: &str = "93017465";
const CC: &str = "86420";

/// `smdpp serve` in the background, killed and reaped on drop.
struct Server {
    child: std::process::Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db: &Db, port: u16) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", "off", "--data-dir"])
        .arg(db.data())
        .arg("--database-url")
        .arg(&db.url)
        .env_remove("SMDPP_DATA_DIR")
        .env_remove("SMDPP_DATABASE_URL")
        .env_remove("SMDPP_CONFIG")
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
    let server = Server { child };
    let start = Instant::now();
    while !lines
        .lock()
        .unwrap()
        .iter()
        .any(|l: &String| l.contains("run a virtual device against it"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "serve did not start: {:?}",
            lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

#[test]
fn no_secret_in_the_trail_after_a_full_download() {
    let db = Db::sqlite();
    let cert = operator_cert(db.dir.path());
    db.ok(&[
        "operators",
        "add",
        "--id",
        "OP1",
        "--cert",
        cert.to_str().unwrap(),
    ]);
    db.ok(&[
        "types",
        "add",
        "T1",
        "--spn",
        "Test SPN",
        "--profile-name",
        "Test",
    ]);
    let iccid = "89999010000000000013";
    let csv = db.dir.path().join("inv.csv");
    std::fs::write(
        &csv,
        format!(
            "iccid,imsi,ki,opc,pin1,puk1,pin2,puk2,adm1\n\
             {iccid},001010000000001,{KI},{OPC},{PIN1},{PUK1},{PIN2},{PUK2},{ADM1}\n"
        ),
    )
    .unwrap();
    db.ok(&[
        "profiles",
        "import",
        "--type",
        "T1",
        "--operator",
        "OP1",
        csv.to_str().unwrap(),
    ]);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = serve(&db, port);
    let address = format!("127.0.0.1:{port}");
    db.ok(&scoped(&[
        "orders",
        "create",
        "--iccid",
        iccid,
        "--profile-type",
        "T1",
    ]));
    let out = db.ok(&scoped(&[
        "orders",
        "confirm",
        iccid,
        "--release",
        "--confirmation-code",
        CC,
        "--smdp-address",
        &address,
    ]));
    let ac = out
        .lines()
        .find_map(|l| l.strip_prefix("Activation Code: "))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    let matching_id = ac.split('$').nth(2).unwrap().to_owned();
    assert!(matching_id.len() > 8, "{ac}");

    let state = db.dir.path().join("dev.json");
    let pki = db.data().join("pki");
    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "smdpp {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "euicc",
        "init",
        "--state",
        state.to_str().unwrap(),
        "--pki",
        pki.to_str().unwrap(),
    ]);
    run(&[
        "euicc",
        "download",
        "--state",
        state.to_str().unwrap(),
        "--cc",
        CC,
        &ac,
    ]);
    // The installation result reaches the server before `download` returns.
    let start = Instant::now();
    loop {
        let show = db.ok(&["profiles", "show", iccid]);
        if show.contains("installed") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{show}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);

    let rows = db.audit_rows();
    let all = rows.join("\n");
    for secret in [
        KI,
        OPC,
        PIN1,
        PUK1,
        PIN2,
        PUK2,
        ADM1,
        CC,
        matching_id.as_str(),
    ] {
        for form in [secret.to_owned(), secret.to_lowercase()] {
            assert!(!all.contains(&form), "{form:?} in the audit trail:\n{all}");
        }
    }
    let records = listed(&db, &[]);
    let actions: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["actor"].as_str().unwrap(), r["action"].as_str().unwrap()))
        .collect();
    for want in [
        ("cli:auditor", "operator.add"),
        ("cli:auditor", "type.add"),
        ("cli:auditor", "profiles.import"),
        ("cli:auditor", "order.download"),
        ("cli:auditor", "order.confirm"),
        ("es2:OP1", "profile.state"),
    ] {
        assert!(actions.contains(&want), "{want:?} not in {actions:?}");
    }
    let device: Vec<&serde_json::Value> =
        records.iter().filter(|r| r["actor"] == "es9plus").collect();
    assert!(
        device.iter().any(|r| r["details"]["to"] == "installed"),
        "the device-driven transitions: {records:#?}"
    );
    let import = records
        .iter()
        .find(|r| r["action"] == "profiles.import")
        .unwrap();
    assert_eq!(import["subject"], "T1");
    assert_eq!(import["details"]["imported"], 1);
    assert_eq!(
        db.ok(&["audit", "verify"]),
        format!("audit: {} records, chain intact\n", records.len())
    );
}
