//! Certificate revocation (SGP.22 section 4.6) through the real ES9+ engine over HTTPS:
//! CRLs from files and from an HTTP URL (refreshed), revoked EUM / eUICC certificates, a CRL
//! past nextUpdate under both policies, our own revoked certificate at start-up, and the
//! configuration errors. SQLite only (revocation does not touch the database).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../smdpp-service/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rsp_crypto::Curve;
use rsp_pki::{CrlBuilder, StalePolicy, TestPki, crl_to_pem};
use smdpp::cli::ServeArgs;
use smdpp_core::status;
use smdpp_service::assembly::Settings;
use smdpp_store::ProfileState;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CRL of `issuer` (certificate DER, key) revoking `serials`, valid from `this_update`
/// to `next_update`, with CRL number `number`.
fn crl(
    issuer: &rsp_pki::IssuedCert,
    serials: &[&[u8]],
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    number: u64,
) -> Vec<u8> {
    let cert = issuer.cert().unwrap();
    let mut b = CrlBuilder::for_issuer(&cert, time::Duration::days(1)).unwrap();
    b.this_update = this_update.replace_nanosecond(0).unwrap();
    b.next_update = next_update.replace_nanosecond(0).unwrap();
    b.crl_number = number;
    for s in serials {
        b.revoke(s);
    }
    b.sign(&issuer.key).unwrap()
}

fn fresh(issuer: &rsp_pki::IssuedCert, serials: &[&[u8]]) -> Vec<u8> {
    let now = OffsetDateTime::now_utc();
    crl(issuer, serials, now, now + time::Duration::days(7), 1)
}

fn write_crl(dir: &Path, name: &str, der: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, crl_to_pem(der)).unwrap();
    p
}

fn serial(c: &rsp_pki::IssuedCert) -> Vec<u8> {
    c.cert().unwrap().serial_number().to_vec()
}

async fn start_with(dir: &Path, db: &Db, edit: impl FnOnce(&TestPki, &mut Settings)) -> Env {
    let (pki, mut s) = pki_settings(dir, db, Curve::NistP256);
    edit(&pki, &mut s);
    let server = Server::start(s).await;
    Env::new(pki, server).await
}

struct Env {
    pki: TestPki,
    server: Server,
    /// MatchingID and ICCID of the one order.
    order: (String, String),
}

impl Env {
    async fn new(pki: TestPki, server: Server) -> Env {
        let upp = std::fs::read(TS48).unwrap();
        let order = server.add(&upp, None, None).await;
        Env { pki, server, order }
    }

    /// A server restarted on the same data (the order is kept).
    async fn restarted(self, edit: impl FnOnce(&mut Settings)) -> Env {
        let mut s = self.server.stop().await;
        edit(&mut s);
        let server = Server::start(s).await;
        Env {
            pki: self.pki,
            server,
            order: self.order,
        }
    }
}

/// AuthenticateClient of `card` for the order: the result, and the order's state afterwards.
async fn try_authenticate_card(
    e: &Env,
    card: &Card,
) -> (Result<Authenticated, status::Es9Error>, ProfileState) {
    let r = authenticate(&e.server, card, Some(&e.order.0)).await;
    (r, e.server.profile(&e.order.1).await.state)
}

/// [`try_authenticate_card`] for the test PKI's eUICC.
async fn try_authenticate(e: &Env) -> (Result<Authenticated, status::Es9Error>, ProfileState) {
    try_authenticate_card(e, &Card::from_pki(&e.pki)).await
}

async fn rejects_revoked_eum(dir: &Path, db: &Db) {
    let crl_dir = dir.join("crl");
    std::fs::create_dir_all(&crl_dir).unwrap();
    let e = start_with(dir, db, |pki, s| {
        let der = fresh(&pki.ci, &[&serial(&pki.eum)]);
        s.revocation.files.push(write_crl(&crl_dir, "ci.crl", &der));
    })
    .await;
    let (r, state) = try_authenticate(&e).await;
    let err = r.map(|_| ()).unwrap_err();
    // Table 43 has no "revoked" reason: a revoked EUM certificate is invalid (4.5.2.2).
    assert_eq!(err.code, status::EUM_CERTIFICATE_INVALID, "{}", err.message);
    assert!(err.message.contains("revoked"), "{}", err.message);
    // Refused before the order is touched.
    assert_eq!(state, ProfileState::Released);
    e.server.stop().await;
}

async fn rejects_revoked_euicc(dir: &Path, db: &Db) {
    let crl_dir = dir.join("crl");
    std::fs::create_dir_all(&crl_dir).unwrap();
    let e = start_with(dir, db, |pki, s| {
        // A CI CRL that lists someone else, and the EUM's CRL listing our eUICC.
        let ci = fresh(&pki.ci, &[&[0x42, 0x42]]);
        s.revocation.files.push(write_crl(&crl_dir, "ci.crl", &ci));
        let eum = fresh(&pki.eum, &[&serial(&pki.euicc)]);
        s.revocation
            .files
            .push(write_crl(&crl_dir, "eum.crl", &eum));
    })
    .await;
    let (r, state) = try_authenticate(&e).await;
    let err = r.map(|_| ()).unwrap_err();
    assert_eq!(
        err.code,
        status::EUICC_CERTIFICATE_INVALID,
        "{}",
        err.message
    );
    assert!(err.message.contains("revoked"), "{}", err.message);
    assert_eq!(state, ProfileState::Released);
    // Another eUICC of the same EUM is not revoked: it authenticates.
    let other = rsp_pki::eid_with_check_digits("890490320000000000000000000777").unwrap();
    let sibling = Card::sibling(&e.pki, &other);
    try_authenticate_card(&e, &sibling).await.0.unwrap();
    e.server.stop().await;
}

/// Policy (docs/OPERATIONS.md, Revocation): a CRL past its nextUpdate refuses what it covers
/// by default (the EUM under a stale CI CRL: 8.1.2/6.1); `warn` uses it anyway.
async fn rejects_stale_crl(dir: &Path, db: &Db) {
    let crl_dir = dir.join("crl");
    std::fs::create_dir_all(&crl_dir).unwrap();
    let now = OffsetDateTime::now_utc();
    let stale = |pki: &TestPki| {
        crl(
            &pki.ci,
            &[],
            now - time::Duration::days(10),
            now - time::Duration::days(3),
            1,
        )
    };
    let e = start_with(dir, db, |pki, s| {
        s.revocation
            .files
            .push(write_crl(&crl_dir, "ci.crl", &stale(pki)));
    })
    .await;
    let (r, state) = try_authenticate(&e).await;
    let err = r.map(|_| ()).unwrap_err();
    assert_eq!(err.code, status::EUM_CERTIFICATE_INVALID, "{}", err.message);
    assert!(
        err.message.contains("revocation status unknown"),
        "{}",
        err.message
    );
    assert_eq!(state, ProfileState::Released);
    // The same server restarted with the warn-only policy accepts.
    let e = e
        .restarted(|s| s.revocation.stale_policy = StalePolicy::Warn)
        .await;
    let (r, _) = try_authenticate(&e).await;
    r.unwrap();
    e.server.stop().await;
}

/// With CRLs that list other serials the download goes through; no CRL for an issuer means
/// no check.
async fn accepts_unrevoked_chain(dir: &Path, db: &Db) {
    let crl_dir = dir.join("crl");
    std::fs::create_dir_all(&crl_dir).unwrap();
    let e = start_with(dir, db, |pki, s| {
        let ci = fresh(&pki.ci, &[&[0x01, 0x02, 0x03]]);
        s.revocation.files.push(write_crl(&crl_dir, "ci.crl", &ci));
    })
    .await;
    let (r, _) = try_authenticate(&e).await;
    r.unwrap();
    e.server.stop().await;
}

/// Our own DPauth on the CI CRL: the server does not start, and says why.
async fn rejects_revoked_own_certificate(dir: &Path, db: &Db) {
    let (pki, mut s) = pki_settings(dir, db, Curve::NistP256);
    let der = fresh(&pki.ci, &[&serial(&pki.dpauth)]);
    s.revocation.files.push(write_crl(dir, "ci.crl", &der));
    let err = smdpp_service::assembly::prepare(s.clone())
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("our certificate CERT.DPauth.ECDSA is refused by the configured CRLs")
            && text.contains("revoked"),
        "{text}"
    );
    // DPtls too.
    let der = crl(
        &pki.ci,
        &[&serial(&pki.dptls)],
        OffsetDateTime::now_utc(),
        OffsetDateTime::now_utc() + time::Duration::days(1),
        2,
    );
    s.revocation.files = vec![write_crl(dir, "ci2.crl", &der)];
    let text = format!(
        "{:#}",
        smdpp_service::assembly::prepare(s).await.unwrap_err()
    );
    assert!(text.contains("CERT.DP.TLS"), "{text}");
}

/// A CRL file that is not a CRL, or not signed by its CI: a start-up error naming the file.
async fn rejects_bad_crl_file(dir: &Path, db: &Db) {
    let (pki, mut s) = pki_settings(dir, db, Curve::NistP256);
    let bad = dir.join("bad.crl");
    std::fs::write(&bad, b"not a CRL").unwrap();
    s.revocation.files = vec![bad.clone()];
    let text = format!(
        "{:#}",
        smdpp_service::assembly::prepare(s.clone())
            .await
            .unwrap_err()
    );
    assert!(
        text.contains(&format!("CRL {}", bad.display())) && text.contains("malformed CRL"),
        "{text}"
    );
    // Signed by the EUM key but naming the CI (AKI, issuer): bad signature.
    let ci = pki.ci.cert().unwrap();
    let b = CrlBuilder::for_issuer(&ci, time::Duration::days(1)).unwrap();
    let forged = b.sign(&pki.eum.key).unwrap();
    s.revocation.files = vec![write_crl(dir, "forged.crl", &forged)];
    let text = format!(
        "{:#}",
        smdpp_service::assembly::prepare(s).await.unwrap_err()
    );
    assert!(
        text.contains("CRL signature does not verify with the issuer's key"),
        "{text}"
    );
}

/// A minimal HTTP server answering every request with the current body (or 503 when none).
async fn crl_http_server(body: Arc<Mutex<Option<Vec<u8>>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let body = body.lock().unwrap().clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let reply = match body {
                    Some(b) => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            b.len()
                        )
                        .into_bytes();
                        r.extend_from_slice(&b);
                        r
                    }
                    None => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                };
                let _ = sock.write_all(&reply).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}/ci.crl")
}

/// A CRL URL refreshed every second: first nothing revoked (accepted), then the EUM revoked
/// (refused after the refresh), then the URL failing (the last good CRL is kept: still
/// refused).
async fn crl_url_is_refreshed_and_failures_keep_the_last_good(dir: &Path, db: &Db) {
    let body = Arc::new(Mutex::new(None));
    let url = crl_http_server(Arc::clone(&body)).await;
    let (pki, mut s) = pki_settings(dir, db, Curve::NistP256);
    let now = OffsetDateTime::now_utc();
    let week = now + time::Duration::days(7);
    *body.lock().unwrap() = Some(crl(&pki.ci, &[], now, week, 1));
    s.revocation.urls.push(url);
    s.revocation.refresh = Duration::from_secs(1);
    let server = Server::start(s).await;
    let e = Env::new(pki, server).await;
    let (r, _) = try_authenticate(&e).await;
    r.unwrap();
    // The CI revokes the EUM: CRL number 2, served as DER.
    let revoked = crl(&e.pki.ci, &[&serial(&e.pki.eum)], now, week, 2);
    *body.lock().unwrap() = Some(revoked);
    let mut refused = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let (Err(err), _) = try_authenticate(&e).await {
            assert_eq!(err.code, status::EUM_CERTIFICATE_INVALID, "{}", err.message);
            refused = true;
            break;
        }
    }
    assert!(refused, "the refreshed CRL was never applied");
    // An older CRL (number 1) offered again, then the URL failing: the last good is kept.
    *body.lock().unwrap() = Some(crl(&e.pki.ci, &[], now, week, 1));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (r, _) = try_authenticate(&e).await;
    assert_eq!(
        r.map(|_| ()).unwrap_err().code,
        status::EUM_CERTIFICATE_INVALID
    );
    *body.lock().unwrap() = None;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (r, _) = try_authenticate(&e).await;
    assert_eq!(
        r.map(|_| ()).unwrap_err().code,
        status::EUM_CERTIFICATE_INVALID
    );
    e.server.stop().await;
}

fn resolve_err(args: &[&str]) -> String {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }
    let cli = Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).unwrap();
    format!("{:#}", cli.serve.resolve().unwrap_err())
}

async fn rejects_bad_crl_settings(dir: &Path, _db: &Db) {
    let d = dir.to_str().unwrap();
    assert_eq!(
        resolve_err(&[
            "--data-dir",
            d,
            "--crl-url",
            "https://ci.example.com/ci.crl"
        ]),
        "CRL URL \"https://ci.example.com/ci.crl\": only http:// is supported (SGP.22 section 4.5.2.1.3)"
    );
    assert_eq!(
        resolve_err(&["--data-dir", d, "--crl-url", "http://"]),
        "CRL URL \"http://\" is not a URL"
    );
    assert_eq!(
        resolve_err(&["--data-dir", d, "--crl-stale-policy", "ignore"]),
        "crl stale policy: invalid stale-CRL policy \"ignore\" (expected refuse or warn)"
    );
}

/// The TOML keys, with the flags' lists added to the file's.
async fn crl_settings_from_file_and_flags(dir: &Path, _db: &Db) {
    let toml = dir.join("smdpp.toml");
    std::fs::write(
        &toml,
        "crl = [\"/etc/smdpp/ci.crl\"]\ncrl_url = [\"http://ci.example.com/ci.crl\"]\n\
         crl_refresh_secs = 600\ncrl_stale_policy = \"warn\"\ncert_expiry_warn_days = 10\n",
    )
    .unwrap();
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }
    let cli = Cli::try_parse_from([
        "serve",
        "--config",
        toml.to_str().unwrap(),
        "--crl",
        "/tmp/eum.crl",
        "--crl-url",
        "http://127.0.0.1:8080/eum.crl",
    ])
    .unwrap();
    let r = cli.serve.resolve().unwrap().revocation;
    assert_eq!(
        r.files,
        vec![
            PathBuf::from("/etc/smdpp/ci.crl"),
            PathBuf::from("/tmp/eum.crl")
        ]
    );
    assert_eq!(
        r.urls,
        vec![
            "http://ci.example.com/ci.crl".to_owned(),
            "http://127.0.0.1:8080/eum.crl".to_owned()
        ]
    );
    assert_eq!(r.refresh, Duration::from_secs(600));
    assert_eq!(r.stale_policy, StalePolicy::Warn);
    assert_eq!(r.cert_expiry_warn, Duration::from_secs(10 * 86_400));
    // Flags win over the file.
    let cli = Cli::try_parse_from([
        "serve",
        "--config",
        toml.to_str().unwrap(),
        "--crl-stale-policy",
        "refuse",
        "--crl-refresh-secs",
        "0",
    ])
    .unwrap();
    let r = cli.serve.resolve().unwrap().revocation;
    assert_eq!(r.stale_policy, StalePolicy::Refuse);
    assert_eq!(r.refresh, Duration::ZERO);
    // Defaults.
    let r = ServeArgs::default().resolve().unwrap().revocation;
    assert_eq!(r, smdpp_service::revocation::RevocationConfig::default());
    assert_eq!(r.refresh, Duration::from_secs(3600));
    assert_eq!(r.stale_policy, StalePolicy::Refuse);
    assert_eq!(r.cert_expiry_warn, Duration::from_secs(30 * 86_400));
}

both_backends!(; sqlite_only:
    crl_settings_from_file_and_flags,
    rejects_revoked_eum,
    rejects_revoked_euicc,
    rejects_stale_crl,
    accepts_unrevoked_chain,
    rejects_revoked_own_certificate,
    rejects_bad_crl_file,
    crl_url_is_refreshed_and_failures_keep_the_last_good,
    rejects_bad_crl_settings,
);
