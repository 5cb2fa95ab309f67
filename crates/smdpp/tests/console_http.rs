//! The admin listener of a real `smdpp serve` process over real HTTP: the web console's
//! log-in, sessions, CSRF and operator scoping (each refusal by name), its order actions and
//! QR code, and `/metrics` scraped during a load run (`smdpp bench`) with the counters
//! moving under the right labels. SQLite (a real file); the browser tests are in
//! `console_browser.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smdpp");

/// `smdpp serve` killed on drop; stdout lines collected.
struct Server {
    child: std::process::Child,
    _lines: Arc<Mutex<Vec<String>>>,
    port: u16,
    admin: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(data: &Path, extra: &[&str]) -> Server {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &listen,
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--data-dir", data.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    let start = Instant::now();
    let admin = loop {
        let found = lines.lock().unwrap().iter().find_map(|l| {
            l.strip_prefix("admin listener: http://127.0.0.1:")
                .and_then(|r| r.split('/').next())
                .and_then(|p| p.parse::<u16>().ok())
        });
        if let Some(p) = found {
            break p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no admin listener line: {:?}",
            lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    Server {
        child,
        _lines: lines,
        port,
        admin,
    }
}

fn run(args: &[&str]) -> std::process::Output {
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

/// An HTTP/1.1 answer.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on a new connection (`Connection: close`), plain HTTP on 127.0.0.1.
fn http(port: u16, method: &str, path: &str, cookie: Option<&str>, form: Option<&str>) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = form.unwrap_or("");
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: smdpp_console={c}\r\n"));
    }
    if form.is_some() {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 4 + size..];
    }
}

/// Logs in; returns the session token from `Set-Cookie`.
fn log_in(admin: u16, user: &str, password: &str) -> String {
    let a = http(
        admin,
        "POST",
        "/login",
        None,
        Some(&format!("username={user}&password={password}")),
    );
    assert_eq!(a.status, 303, "{}", a.text());
    assert_eq!(a.header("location"), Some("/"));
    let cookie = a.header("set-cookie").unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("smdpp_console=")
        .unwrap()
        .to_owned()
}

/// The session's CSRF token, from a page's hidden field.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    page[at..at + 32].to_owned()
}

fn add_user(data: &str, pw: &Path, user: &str, role: &str, operator: Option<&str>) {
    let mut args = vec![
        "console",
        "users",
        "add",
        "--data-dir",
        data,
        "--username",
        user,
        "--role",
        role,
        "--password-file",
        pw.to_str().unwrap(),
    ];
    if let Some(o) = operator {
        args.extend(["--operator", o]);
    }
    run_ok(&args);
}

fn add_operator(dir: &Path, data: &str, id: &str) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![format!("{id}.example")])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let pem = dir.join(format!("{id}.pem"));
    std::fs::write(&pem, cert.pem()).unwrap();
    run_ok(&[
        "operators",
        "add",
        "--id",
        id,
        "--cert",
        pem.to_str().unwrap(),
        "--data-dir",
        data,
    ]);
}

/// Imports an Available profile of `operator`, type `t`.
fn import(dir: &Path, data: &str, operator: &str, iccid: &str, t: &str) {
    let upp = dir.join(format!("{iccid}.der"));
    std::fs::write(&upp, smdpp_service::upp::demo_upp(iccid).unwrap()).unwrap();
    run_ok(&[
        "orders",
        "import",
        "--upp",
        upp.to_str().unwrap(),
        "--profile-type",
        t,
        "--data-dir",
        data,
        "--operator",
        operator,
    ]);
}

#[test]
fn console_sessions_csrf_scoping_and_order_actions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    // The first serve creates the database; users and operators are added while it runs.
    let server = serve(&data, &[]);
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "a long enough password\n").unwrap();
    add_operator(dir.path(), data_s, "OPA");
    add_operator(dir.path(), data_s, "OPB");
    add_user(data_s, &pw, "root", "admin", None);
    add_user(data_s, &pw, "alice", "operator", Some("OPA"));
    add_user(data_s, &pw, "victor", "viewer", Some("OPA"));
    import(dir.path(), data_s, "OPA", "8999900000000000101", "ta");
    import(dir.path(), data_s, "OPB", "8999900000000000202", "tb");
    let admin = server.admin;
    let password = "a%20long%20enough%20password";

    // rejects_unauthenticated: pages send to /login, the JSON API answers 401.
    let a = http(admin, "GET", "/profiles", None, None);
    assert_eq!((a.status, a.header("location")), (303, Some("/login")));
    let a = http(admin, "GET", "/console/api/profiles", None, None);
    assert_eq!(a.status, 401);
    assert!(a.text().contains("\"unauthenticated\""), "{}", a.text());
    let a = http(admin, "GET", "/profiles", Some("00ff"), None);
    assert_eq!((a.status, a.header("location")), (303, Some("/login")));

    // rejects_wrong_password (and an unknown user, answered identically).
    for form in [
        "username=alice&password=not-the-password",
        "username=nobody&password=whatever-it-is",
    ] {
        let a = http(admin, "POST", "/login", None, Some(form));
        assert_eq!(a.status, 401);
        assert!(a.text().contains("wrong username or password"));
        assert!(a.header("set-cookie").is_none());
    }

    // Operator A's user: sees its profile, not B's (404 exactly like an unknown ICCID).
    let alice = log_in(admin, "alice", password);
    let page = http(
        admin,
        "GET",
        "/profiles?q=8999900000000000101",
        Some(&alice),
        None,
    );
    assert_eq!(page.status, 200);
    assert!(page.text().contains("data-iccid=\"8999900000000000101\""));
    let a = http(
        admin,
        "GET",
        "/profiles/8999900000000000202",
        Some(&alice),
        None,
    );
    assert_eq!(a.status, 404, "rejects another operator's profile");
    assert!(a.text().contains("no such profile"));
    let unknown = http(
        admin,
        "GET",
        "/profiles/8999900000000009999",
        Some(&alice),
        None,
    );
    assert_eq!(unknown.status, 404);
    let a = http(
        admin,
        "GET",
        "/profiles?q=8999900000000000202",
        Some(&alice),
        None,
    );
    assert!(!a.text().contains("data-iccid=\"8999900000000000202\""));
    let a = http(
        admin,
        "GET",
        "/console/api/profiles/8999900000000000202",
        Some(&alice),
        None,
    );
    assert_eq!(a.status, 404);
    let a = http(
        admin,
        "GET",
        "/orders/8999900000000000202/qr.png",
        Some(&alice),
        None,
    );
    assert_eq!(a.status, 404);

    // rejects_post_without_csrf: nothing happens.
    let csrf = csrf_of(&page.text());
    let a = http(
        admin,
        "POST",
        "/orders",
        Some(&alice),
        Some("profile_type=ta"),
    );
    assert_eq!(a.status, 403);
    assert!(a.text().contains("CSRF"));
    let a = http(
        admin,
        "POST",
        "/orders",
        Some(&alice),
        Some("profile_type=ta&csrf=00000000000000000000000000000000"),
    );
    assert_eq!(a.status, 403);
    let p = http(
        admin,
        "GET",
        "/console/api/profiles/8999900000000000101",
        Some(&alice),
        None,
    );
    assert!(p.text().contains("\"state\":\"available\""), "{}", p.text());

    // An order from the console: DownloadOrder, ConfirmOrder with release, QR code.
    let a = http(
        admin,
        "POST",
        "/orders",
        Some(&alice),
        Some(&format!("profile_type=ta&csrf={csrf}")),
    );
    assert_eq!(a.status, 303, "{}", a.text());
    assert_eq!(a.header("location"), Some("/orders/8999900000000000101"));
    let a = http(
        admin,
        "POST",
        "/orders/8999900000000000101/confirm",
        Some(&alice),
        Some(&format!("matching_id=CONSOLE-1&release=on&csrf={csrf}")),
    );
    assert_eq!(a.status, 303, "{}", a.text());
    let order = http(
        admin,
        "GET",
        "/orders/8999900000000000101",
        Some(&alice),
        None,
    )
    .text();
    assert!(
        order.contains("<strong id=\"order-state\">released</strong>"),
        "{order}"
    );
    let ac = format!("LPA:1$127.0.0.1:{}$CONSOLE-1", server.port);
    assert!(
        order.contains(&format!("<code id=\"activation-code\">{ac}</code>")),
        "{order}"
    );
    let qr = http(
        admin,
        "GET",
        "/orders/8999900000000000101/qr.png",
        Some(&alice),
        None,
    );
    assert_eq!(qr.status, 200);
    assert_eq!(qr.header("content-type"), Some("image/png"));
    assert!(qr.body.starts_with(b"\x89PNG"));
    // An engine refusal keeps its SGP.22 code: releasing a Released order is a success
    // (5.3.4), confirming it again is 8.2.1/3.5.
    let a = http(
        admin,
        "POST",
        "/orders/8999900000000000101/confirm",
        Some(&alice),
        Some(&format!("csrf={csrf}")),
    );
    assert_eq!(a.status, 422);
    assert!(a.text().contains("8.2.1/3.5"), "{}", a.text());
    let timeline = http(
        admin,
        "GET",
        "/profiles/8999900000000000101",
        Some(&alice),
        None,
    )
    .text();
    assert!(
        timeline.matches("<tr class=\"event\">").count() >= 3,
        "{timeline}"
    );

    // A read-only user may look, not act.
    let victor = log_in(admin, "victor", password);
    let vpage = http(
        admin,
        "GET",
        "/orders/8999900000000000101",
        Some(&victor),
        None,
    )
    .text();
    assert!(!vpage.contains("form id=\"cancel\""));
    let a = http(
        admin,
        "POST",
        "/orders/8999900000000000101/cancel",
        Some(&victor),
        Some(&format!("final_status=available&csrf={}", csrf_of(&vpage))),
    );
    assert_eq!(a.status, 403);
    assert!(a.text().contains("read-only"));

    // The admin sees both operators, the types, the keys and the dashboard.
    let root = log_in(admin, "root", password);
    let a = http(
        admin,
        "GET",
        "/profiles/8999900000000000202",
        Some(&root),
        None,
    );
    assert_eq!(a.status, 200);
    let keys = http(admin, "GET", "/keys", Some(&root), None).text();
    assert!(keys.contains("CERT.DPauth.ECDSA") && keys.contains("CERT.DPpb.ECDSA"));
    let types = http(admin, "GET", "/types", Some(&root), None).text();
    assert!(types.contains("<tr data-type=\"demo\">"), "{types}");
    let d = http(admin, "GET", "/console/api/dashboard", Some(&root), None);
    assert_eq!(d.status, 200);
    let d: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
    assert_eq!(d["profilesByState"]["released"], 2, "{d}"); // the demo order and ours
    let doc = http(admin, "GET", "/openapi.json", None, None);
    let doc: serde_json::Value = serde_json::from_slice(&doc.body).unwrap();
    assert!(doc["paths"]["/console/api/profiles/{iccid}"].is_object());

    // Log-out ends the session on the server.
    let page = http(admin, "GET", "/", Some(&root), None).text();
    let a = http(
        admin,
        "POST",
        "/logout",
        Some(&root),
        Some(&format!("csrf={}", csrf_of(&page))),
    );
    assert_eq!((a.status, a.header("location")), (303, Some("/login")));
    let a = http(admin, "GET", "/", Some(&root), None);
    assert_eq!((a.status, a.header("location")), (303, Some("/login")));
}

#[test]
fn rejects_expired_session() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data, &["--console-session-ttl-secs", "1"]);
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "a long enough password\n").unwrap();
    add_user(data.to_str().unwrap(), &pw, "alice", "admin", None);
    let admin = server.admin;
    let alice = log_in(admin, "alice", "a%20long%20enough%20password");
    std::thread::sleep(Duration::from_millis(1200));
    // Another log-in in between does not make the expired session unknown.
    let _bob = log_in(admin, "alice", "a%20long%20enough%20password");
    let a = http(admin, "GET", "/profiles", Some(&alice), None);
    assert_eq!(
        (a.status, a.header("location")),
        (303, Some("/login?expired=1"))
    );
    let a = http(admin, "GET", "/login?expired=1", None, None);
    assert!(a.text().contains("session expired"));
    let a = http(admin, "GET", "/console/api/dashboard", Some(&alice), None);
    assert_eq!(a.status, 401);
    assert!(a.text().contains("session_expired"));
}

#[test]
fn rejects_bad_console_user_commands() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "tiny\n").unwrap();
    let good = dir.path().join("good");
    std::fs::write(&good, "a long enough password\n").unwrap();
    let err = |args: &[&str]| {
        let o = run(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&o.stderr).trim().to_owned()
    };
    let base = |user: &'static str, role: &'static str, pw: &Path| -> Vec<String> {
        [
            "console",
            "users",
            "add",
            "--data-dir",
            data_s,
            "--username",
            user,
            "--role",
            role,
            "--password-file",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([pw.to_str().unwrap().to_owned()])
        .collect()
    };
    let call = |v: Vec<String>| err(&v.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        call(base("u1", "admin", &short)),
        "error: the password must have at least 10 characters"
    );
    assert_eq!(
        call(base("u1", "root", &good)),
        "error: unknown role \"root\"; one of: admin, operator, viewer"
    );
    assert_eq!(
        call(base("u1", "operator", &good)),
        "error: role operator needs --operator"
    );
    assert_eq!(
        call(base("bad name", "admin", &good)),
        "error: username must be 1-64 characters of letters, digits, '.', '_', '-', '@'"
    );
    let mut v = base("u1", "viewer", &good);
    v.extend(["--operator".to_owned(), "NOPE".to_owned()]);
    assert_eq!(
        call(v),
        "error: unknown operator NOPE: register it first with `smdpp operators add`"
    );
    let mut v = base("u1", "admin", &good);
    v.truncate(v.len() - 2);
    assert_eq!(
        call(v),
        "error: give the password with --password-file FILE or SMDPP_CONSOLE_PASSWORD"
    );
    run_ok(
        &base("u1", "admin", &good)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        call(base("u1", "admin", &good)),
        "error: console user u1 already exists"
    );
    assert_eq!(
        err(&[
            "console",
            "users",
            "remove",
            "--data-dir",
            data_s,
            "--username",
            "u2"
        ]),
        "error: no console user u2"
    );
    let list = run_ok(&["console", "users", "list", "--data-dir", data_s]);
    assert_eq!(list, "USERNAME\tROLE\tOPERATOR\nu1\tadmin\t*\n");
    // The stored row holds an argon2id hash, never the password.
    let db = std::fs::read(data.join("smdpp.db")).unwrap();
    let needle = b"a long enough password";
    assert!(!db.windows(needle.len()).any(|w| w == needle));
    assert!(db.windows(10).any(|w| w == b"$argon2id$"));
}

/// Value of the first sample of `name` whose labels contain all of `labels`.
fn sample(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()))
        .next()
        .unwrap_or(0.0)
}

#[test]
fn metrics_move_during_a_load_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data, &[]);
    let admin = server.admin;
    assert_eq!(http(admin, "GET", "/healthz", None, None).text(), "ok");
    let ready = http(admin, "GET", "/readyz", None, None);
    assert_eq!((ready.status, ready.text().as_str()), (200, "ready"));
    // The ES9+ listener does not serve the admin endpoints (TLS there: a plain request fails).
    let before = http(admin, "GET", "/metrics", None, None);
    assert_eq!(before.status, 200);
    assert_eq!(
        before.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let before = before.text();
    let ia = [
        r#"function="initiateAuthentication""#,
        r#"interface="es9""#,
        r#"status="200""#,
    ];
    let n0 = sample(&before, "smdpp_requests_total", &ia);

    let url = format!("https://127.0.0.1:{}", server.port);
    let mut bench = Command::new(BIN)
        .args([
            "bench",
            "--url",
            &url,
            "--devices",
            "4",
            "--downloads",
            "40",
        ])
        .args(["--data-dir", data.to_str().unwrap(), "--insecure"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Scrape while it runs: the counter must be seen moving before the run ends.
    let start = Instant::now();
    let mut seen_moving = false;
    while bench.try_wait().unwrap().is_none() {
        let m = http(admin, "GET", "/metrics", None, None).text();
        let n = sample(&m, "smdpp_requests_total", &ia);
        if n > n0 && n < n0 + 40.0 {
            seen_moving = true;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "bench too slow");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = bench.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        seen_moving,
        "the counter was never seen between start and end of the run"
    );
    let m = http(admin, "GET", "/metrics", None, None).text();
    assert_eq!(sample(&m, "smdpp_requests_total", &ia) - n0, 40.0, "{m}");
    for f in ["authenticateClient", "getBoundProfilePackage"] {
        let l = format!("function=\"{f}\"");
        assert_eq!(
            sample(&m, "smdpp_requests_total", &[&l, r#"status="200""#]),
            40.0,
            "{f}"
        );
        assert_eq!(
            sample(
                &m,
                "smdpp_request_duration_seconds_count",
                &[&l, r#"interface="es9""#]
            ),
            40.0
        );
    }
    assert_eq!(
        sample(
            &m,
            "smdpp_requests_total",
            &[r#"function="handleNotification""#, r#"status="204""#]
        ),
        40.0
    );
    assert_eq!(
        sample(&m, "smdpp_downloads_total", &[r#"result="success""#]),
        40.0
    );
    assert!(sample(&m, "smdpp_tls_handshakes_total", &[r#"result="success""#]) >= 160.0);
    assert!(
        sample(&m, "smdpp_profiles", &[r#"state="installed""#]) >= 40.0,
        "{m}"
    );
    assert!(sample(&m, "process_resident_memory_bytes", &[]) > 1e6);
    assert!(sample(&m, "smdpp_db_pool_max_connections", &[]) >= 1.0);
    // A failed ES9+ call is counted under its SGP.22 code.
    let failed = Command::new("curl")
        .args([
            "-sk",
            "-X",
            "POST",
            "-H",
            "X-Admin-Protocol: gsma/rsp/v2.2.0",
        ])
        .args(["-H", "Content-Type: application/json", "-d", "{}"])
        .arg(format!("{url}/gsma/rsp2/es9plus/authenticateClient"))
        .output()
        .expect("curl (scripts/test.sh installs it)");
    let answer = String::from_utf8_lossy(&failed.stdout).into_owned();
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let code = &v["header"]["functionExecutionStatus"]["statusCodeData"];
    let (subject, reason) = (
        code["subjectCode"].as_str().unwrap(),
        code["reasonCode"].as_str().unwrap(),
    );
    let m = http(admin, "GET", "/metrics", None, None).text();
    let labels = [
        r#"function="authenticateClient""#.to_owned(),
        format!("subject_code=\"{subject}\""),
        format!("reason_code=\"{reason}\""),
    ];
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    assert_eq!(
        sample(&m, "smdpp_function_failures_total", &labels),
        1.0,
        "{answer}\n{m}"
    );
    // The ES9+/ES2+ listener serves neither the metrics nor the console.
    let on_es9 = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{url}/metrics"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&on_es9.stdout), "404");
}

#[test]
fn rejects_bad_admin_listen_values() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let o = run(&["serve", "--data-dir", data_s, "--admin-listen", "nonsense"]);
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "error: admin listen: \"nonsense\" is neither an address (IP:PORT) nor `off`"
    );
    // An address asked for must bind (unlike the default, which is skipped when taken).
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let listen = format!("127.0.0.1:{}", free_port());
    let o = run(&[
        "serve",
        "--data-dir",
        data_s,
        "--listen",
        &listen,
        "--admin-listen",
        &addr,
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("error: binding the admin listener {addr}")),
        "{err}"
    );
}
