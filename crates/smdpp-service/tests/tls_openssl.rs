//! The OpenSSL listener (`--tls-backend openssl`, SGP.22 v2.2 section 2.6.6): complete
//! downloads by the virtual eUICC and LPA over TLS 1.2 with
//! TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 on P-256 and on brainpoolP256r1 (a brainpool
//! CERT.DP.TLS and brainpool key exchange), over the GCM suite, and with the rustls LPA;
//! `openssl s_client` and `curl` as independent clients; what each backend refuses.
//!
//! The LPA's OpenSSL client is given exactly one suite and one group, so a completed download
//! proves the server negotiated them. SQLite and (when `SMDPP_TEST_PG_URL` is set)
//! PostgreSQL for the downloads; the client-only cases run on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use euicc_sim::http::OpenSslOptions;
use euicc_sim::lpa::{DownloadOptions, Lpa, Transport};
use rsp_crypto::Curve;
use rsp_pki::TestPki;
use smdpp_service::assembly::TlsBackend;
use smdpp_store::ProfileState;

const CBC: &str = "ECDHE-ECDSA-AES128-SHA256";
const GCM: &str = "ECDHE-ECDSA-AES128-GCM-SHA256";

/// A server on the OpenSSL listener with a PKI (DPtls included) on `curve`.
async fn openssl_server(dir: &Path, db: &Db, curve: Curve) -> (TestPki, Server) {
    let (pki, mut s) = pki_settings(dir, db, curve);
    s.tls_backend = TlsBackend::Openssl;
    (pki, Server::start_lpa(s).await)
}

/// An LPA on OpenSSL offering TLS 1.2 with only `cipher` and `group`.
fn openssl_lpa(pki: &TestPki, cipher: &str, group: &str) -> Lpa {
    let client = euicc_sim::http::Es9Client::new(Transport::Https(pki.trust_store().unwrap()))
        .unwrap()
        .with_openssl(&OpenSslOptions {
            cipher_list: cipher.into(),
            groups: group.into(),
            tls12_only: true,
        })
        .unwrap();
    Lpa::with_client(client)
}

/// A complete download (through the PIR) by `lpa` from `server`: Installed, bound to the card.
async fn download(server: &Server, pki: &TestPki, lpa: &Lpa) {
    let upp = std::fs::read(TS48).unwrap();
    let (mid, iccid) = server.add(&upp, None, None).await;
    let mut euicc = sim_euicc(pki);
    let ac = format!("LPA:1${}${mid}", server.address());
    let out = lpa
        .download(&mut euicc, &ac, &DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!(out.iccid, iccid);
    assert!(out.notification_sent);
    let p = server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Installed);
    assert_eq!(p.eid.as_deref(), Some(euicc.eid()));
    assert_eq!(euicc.state().profiles[0].profile_package, upp);
}

async fn download_cbc_suite_p256(dir: &Path, db: &Db) {
    let (pki, server) = openssl_server(dir, db, Curve::NistP256).await;
    download(&server, &pki, &openssl_lpa(&pki, CBC, "P-256")).await;
    server.stop().await;
}

async fn download_cbc_suite_brainpool_tls(dir: &Path, db: &Db) {
    // Every key brainpool, CERT.DP.TLS included (SGP.26 CERT_S_SM_DP_TLS_BRP's shape).
    let (pki, server) = openssl_server(dir, db, Curve::BrainpoolP256r1).await;
    download(&server, &pki, &openssl_lpa(&pki, CBC, "brainpoolP256r1")).await;
    server.stop().await;
}

async fn download_gcm_suite_brainpool_tls(dir: &Path, db: &Db) {
    let (pki, server) = openssl_server(dir, db, Curve::BrainpoolP256r1).await;
    download(&server, &pki, &openssl_lpa(&pki, GCM, "brainpoolP256r1")).await;
    server.stop().await;
}

async fn download_with_the_rustls_lpa(dir: &Path, db: &Db) {
    // The default LPA (rustls: TLS 1.3 first, GCM) against the OpenSSL listener.
    let (pki, server) = openssl_server(dir, db, Curve::NistP256).await;
    download(&server, &pki, &sim_lpa(&[&pki])).await;
    server.stop().await;
}

/// `openssl s_client` as an independent client: one HTTP request over TLS 1.2 with exactly
/// `cipher` and `curve`; returns (s_client's output, whether it connected).
fn s_client(port: u16, cipher: &str, curve: &str) -> (String, bool) {
    let request = format!(
        "POST /gsma/rsp2/es9plus/initiateAuthentication HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Type: application/json\r\nX-Admin-Protocol: gsma/rsp/v2.2.0\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-tls1_2",
            "-cipher",
            cipher,
            "-curves",
            curve,
            "-ign_eof",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is installed (scripts/test.sh installs it)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let connected = text.contains(&format!("Cipher is {cipher}"));
    (text, connected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s_client_negotiates_the_cbc_suite_on_brainpool() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path());
    let (_pki, server) = openssl_server(dir.path(), &db, Curve::BrainpoolP256r1).await;
    let port = server.addr.port();
    let (text, connected) =
        tokio::task::spawn_blocking(move || s_client(port, CBC, "brainpoolP256r1"))
            .await
            .unwrap();
    assert!(connected, "{text}");
    assert!(text.contains("Protocol  : TLSv1.2"), "{text}");
    assert!(text.contains("brainpoolP256r1"), "server temp key: {text}");
    // A real ES9+ answer over that connection: an empty request is a format error.
    assert!(text.contains("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"status\":\"Failed\""), "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s_client_negotiates_both_suites_on_p256() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path());
    let (_pki, server) = openssl_server(dir.path(), &db, Curve::NistP256).await;
    let port = server.addr.port();
    for cipher in [CBC, GCM] {
        let (text, connected) =
            tokio::task::spawn_blocking(move || s_client(port, cipher, "P-256"))
                .await
                .unwrap();
        assert!(connected, "{cipher}: {text}");
        assert!(text.contains("HTTP/1.1 200"), "{text}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_suites_and_curves_outside_sgp22() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path());
    let (_pki, server) = openssl_server(dir.path(), &db, Curve::NistP256).await;
    let port = server.addr.port();
    // Not in 2.6.6: an AES-256 CBC suite, and the secp384r1 group.
    for (cipher, curve) in [("ECDHE-ECDSA-AES256-SHA384", "P-256"), (CBC, "P-384")] {
        let (text, connected) = tokio::task::spawn_blocking(move || s_client(port, cipher, curve))
            .await
            .unwrap();
        assert!(!connected, "{cipher} / {curve} must be refused: {text}");
        assert!(!text.contains("HTTP/1.1"), "{text}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_cbc_suite_on_the_rustls_backend() {
    // The documented gap of the default backend: rustls has no CBC suite.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path());
    let (pki, s) = pki_settings(dir.path(), &db, Curve::NistP256);
    let server = Server::start_lpa(s).await;
    let lpa = openssl_lpa(&pki, CBC, "P-256");
    let mut euicc = sim_euicc(&pki);
    let ac = format!("LPA:1${}$X", server.address());
    let err = lpa
        .download(&mut euicc, &ac, &DownloadOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TLS handshake with"), "{err}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_brainpool_dptls_on_the_rustls_backend() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path());
    let (_pki, s) = pki_settings(dir.path(), &db, Curve::BrainpoolP256r1);
    let err = smdpp_service::assembly::prepare(s).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "TLS certificate (CERT.DP.TLS must be P-256 with --tls-backend rustls; \
         --tls-backend openssl also takes brainpoolP256r1)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_a_dptls_key_of_another_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path());
    let (_pki, mut s) = pki_settings(dir.path(), &db, Curve::NistP256);
    s.tls_backend = TlsBackend::Openssl;
    // The DPauth key is not the DPtls certificate's.
    s.dptls_key = Some(s.pki_dir.join("dpauth.key"));
    let err = smdpp_service::assembly::prepare(s).await.unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "TLS certificate for the OpenSSL listener: the TLS private key does not match the certificate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_a_server_certificate_under_another_ci() {
    // The LPA's OpenSSL client applies SGP.22 3.1.2 step 5 like its rustls client does.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path());
    let (_pki, server) = openssl_server(dir.path(), &db, Curve::NistP256).await;
    let other = make_pki(Curve::NistP256);
    let lpa = openssl_lpa(&other, CBC, "P-256");
    let mut euicc = sim_euicc(&other);
    let ac = format!("LPA:1${}$X", server.address());
    let err = lpa
        .download(&mut euicc, &ac, &DownloadOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid CERT.DP.TLS"), "{err}");
    server.stop().await;
}

both_backends!(
    download_cbc_suite_p256,
    download_cbc_suite_brainpool_tls,
    download_gcm_suite_brainpool_tls,
    download_with_the_rustls_lpa,
);
