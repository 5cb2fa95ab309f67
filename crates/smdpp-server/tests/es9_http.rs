//! End-to-end tests of the ES9+ HTTP layer: a real server on 127.0.0.1 over real TLS (a
//! throwaway P-256 certificate made at test time), real HTTP/1.1 and HTTP/2 clients, and
//! openssl s_client. The only stand-in is `CannedService`, since the SM-DP+ core is not written
//! yet.

#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, RootCertStore};
use serde_json::{Value, json};
use smdpp_core::es9_json::{
    AuthenticateClientAnswer, AuthenticateClientRequest, AuthenticateClientResponse,
    CancelSessionRequest, GetBoundProfilePackageRequest, GetBoundProfilePackageResponse,
    HandleNotificationRequest, InitiateAuthenticationRequest, InitiateAuthenticationResponse,
    TransactionId,
};
use smdpp_core::status::{self, Es9Error};
use smdpp_server::tls::{TlsSetupError, load_certificate_chain, load_private_key, server_config};
use smdpp_server::{Es9HttpConfig, Es9Service, ListenMode, ServeOptions};
use tokio::sync::oneshot;

// ---------------------------------------------------------------------------------------------
// Test service

/// Canned answers. Special transactionIds: `DEAD` unknown, `51EE` sleeps 300 ms, `5105` sleeps
/// 5 s, `BAD0` panics.
struct CannedService;

fn tid() -> TransactionId {
    "0102030405060708".parse().unwrap()
}

async fn special(t: &TransactionId) -> Result<(), Es9Error> {
    match t.to_hex().as_str() {
        "DEAD" => Err(Es9Error::from_code(status::TRANSACTION_ID_UNKNOWN)),
        "8A7C" => Err(Es9Error::from_code(status::MATCHING_ID_REFUSED)),
        "51EE" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(())
        }
        "5105" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        }
        "BAD0" => panic!("test panic"),
        _ => Ok(()),
    }
}

impl Es9Service for CannedService {
    async fn initiate_authentication(
        &self,
        request: InitiateAuthenticationRequest,
    ) -> Result<InitiateAuthenticationResponse, Es9Error> {
        if request.smdp_address != "127.0.0.1" {
            return Err(Es9Error::from_code(status::SMDP_ADDRESS_REFUSED));
        }
        Ok(InitiateAuthenticationResponse {
            transaction_id: tid(),
            server_signed1: vec![0x30, 0x00],
            server_signature1: vec![0x5f, 0x37, 0x00],
            euicc_ci_pkid_to_be_used: vec![0x04, 0x00],
            server_certificate: vec![0x30, 0x01, 0x00],
        })
    }

    async fn authenticate_client(
        &self,
        request: AuthenticateClientRequest,
    ) -> Result<AuthenticateClientAnswer, Es9Error> {
        special(&request.transaction_id).await?;
        Ok(AuthenticateClientResponse {
            transaction_id: request.transaction_id,
            profile_metadata: vec![0xbf, 0x25, 0x00],
            smdp_signed2: vec![0x30, 0x00],
            smdp_signature2: vec![0x5f, 0x37, 0x00],
            smdp_certificate: vec![0x30, 0x00],
        }
        .into())
    }

    async fn get_bound_profile_package(
        &self,
        request: GetBoundProfilePackageRequest,
    ) -> Result<GetBoundProfilePackageResponse, Es9Error> {
        special(&request.transaction_id).await?;
        Ok(GetBoundProfilePackageResponse {
            transaction_id: request.transaction_id,
            bound_profile_package: vec![0xbf, 0x36, 0x00],
        })
    }

    async fn handle_notification(
        &self,
        request: HandleNotificationRequest,
    ) -> Result<(), Es9Error> {
        match request.pending_notification.first() {
            Some(0xff) => Err(Es9Error::new(
                status::FUNCTION_PROVIDER_INACCESSIBLE,
                "store down",
            )),
            Some(0xee) => Err(Es9Error::new(
                status::PROTOCOL_FORMAT_INVALID,
                "not a PendingNotification",
            )),
            _ => Ok(()),
        }
    }

    async fn cancel_session(&self, request: CancelSessionRequest) -> Result<(), Es9Error> {
        special(&request.transaction_id).await
    }
}

// ---------------------------------------------------------------------------------------------
// Server harness

struct TestPki {
    _dir: tempfile::TempDir,
    cert_path: std::path::PathBuf,
    key_path: std::path::PathBuf,
    cert_der: CertificateDer<'static>,
}

fn make_pki() -> TestPki {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("dptls.pem");
    let key_path = dir.path().join("dptls.key");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    TestPki {
        cert_der: cert.der().clone(),
        _dir: dir,
        cert_path,
        key_path,
    }
}

struct TestServer {
    addr: SocketAddr,
    pki: Option<TestPki>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    async fn start(tls: bool, config: Es9HttpConfig) -> Self {
        let options = ServeOptions {
            shutdown_grace: Duration::from_secs(5),
            ..ServeOptions::default()
        };
        Self::start_with(tls, config, options).await
    }

    async fn start_with(tls: bool, config: Es9HttpConfig, options: ServeOptions) -> Self {
        let pki = tls.then(make_pki);
        let mode = match &pki {
            Some(pki) => ListenMode::Tls(
                smdpp_server::tls::server_config_from_pem_files(&pki.cert_path, &pki.key_path)
                    .unwrap(),
            ),
            None => ListenMode::PlainHttp,
        };
        let listener = smdpp_server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let router = smdpp_server::router(Arc::new(CannedService), config);
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(smdpp_server::serve_with(
            listener,
            mode,
            router,
            async {
                let _ = stopped.await;
            },
            options,
        ));
        Self {
            addr,
            pki,
            stop: Some(stop),
            done,
        }
    }

    async fn tls() -> Self {
        Self::start(true, Es9HttpConfig::default()).await
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.done)
            .await
            .expect("server did not stop")
            .unwrap()
            .unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Client

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tls {
    V12,
    V13,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Alpn {
    H1,
    H2,
}

struct Reply {
    status: u16,
    headers: hyper::HeaderMap,
    body: Bytes,
    tls_version: Option<ProtocolVersion>,
    suite: Option<rustls::CipherSuite>,
    alpn: Option<Vec<u8>>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts HTTP 200 + Failed with this code; returns the message.
    fn assert_failed(&self, code: &status::StatusCode) -> String {
        self.assert_failed_with(200, code)
    }

    /// A failed function execution status answered with HTTP `http_status`.
    fn assert_failed_with(&self, http_status: u16, code: &status::StatusCode) -> String {
        assert_eq!(
            self.status,
            http_status,
            "body: {:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/json;charset=UTF-8")
        );
        assert_eq!(self.header("x-admin-protocol"), Some("gsma/rsp/v2.2.0"));
        let v = self.json();
        let st = &v["header"]["functionExecutionStatus"];
        assert_eq!(st["status"], "Failed", "{v}");
        assert_eq!(st["statusCodeData"]["subjectCode"], code.subject(), "{v}");
        assert_eq!(st["statusCodeData"]["reasonCode"], code.reason(), "{v}");
        assert_eq!(
            v.as_object().unwrap().len(),
            1,
            "no body members on failure: {v}"
        );
        st["statusCodeData"]["message"].as_str().unwrap().to_owned()
    }

    fn assert_success(&self) -> Value {
        assert_eq!(
            self.status,
            200,
            "body: {:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/json;charset=UTF-8")
        );
        assert_eq!(self.header("x-admin-protocol"), Some("gsma/rsp/v2.2.0"));
        let v = self.json();
        assert_eq!(
            v["header"],
            json!({"functionExecutionStatus": {"status": "Executed-Success"}})
        );
        v
    }
}

fn client_config(root: &CertificateDer<'static>, tls: Tls, alpn: Alpn) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match tls {
        Tls::V12 => &[&rustls::version::TLS12],
        Tls::V13 => &[&rustls::version::TLS13],
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = match alpn {
        Alpn::H1 => vec![b"http/1.1".to_vec()],
        Alpn::H2 => vec![b"h2".to_vec()],
    };
    Arc::new(config)
}

/// lpac's headers.
fn lpac_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("user-agent", "gsma-rsp-lpad"),
        ("x-admin-protocol", "gsma/rsp/v2.2.2"),
        ("content-type", "application/json"),
    ]
}

async fn send_on<IO>(
    io: IO,
    alpn: Alpn,
    authority: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (u16, hyper::HeaderMap, Bytes)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = Request::builder().method(method);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let response = match alpn {
        Alpn::H2 => {
            let req = builder
                .uri(format!("https://{authority}{path}"))
                .body(Full::new(body))
                .unwrap();
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            sender.send_request(req).await.unwrap()
        }
        Alpn::H1 => {
            let req = builder
                .uri(path)
                .header("host", authority)
                .body(Full::new(body))
                .unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
                .await
                .unwrap();
            tokio::spawn(conn);
            sender.send_request(req).await.unwrap()
        }
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

/// One request on a new TLS connection (as lpac does).
async fn https(
    server: &TestServer,
    tls: Tls,
    alpn: Alpn,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let pki = server.pki.as_ref().unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_config(&pki.cert_der, tls, alpn));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let stream = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (_, conn) = stream.get_ref();
    let tls_version = conn.protocol_version();
    let suite = conn.negotiated_cipher_suite().map(|s| s.suite());
    let alpn_got = conn.alpn_protocol().map(<[u8]>::to_vec);
    let authority = format!("localhost:{}", server.addr.port());
    let (status, headers, body) =
        send_on(stream, alpn, &authority, method, path, headers, body.into()).await;
    Reply {
        status,
        headers,
        body,
        tls_version,
        suite,
        alpn: alpn_got,
    }
}

/// One request over plain HTTP/1.1.
async fn http(server: &TestServer, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let authority = format!("127.0.0.1:{}", server.addr.port());
    let (status, headers, body) = send_on(
        tcp,
        Alpn::H1,
        &authority,
        Method::POST,
        path,
        headers,
        Bytes::from(body.to_owned()),
    )
    .await;
    Reply {
        status,
        headers,
        body,
        tls_version: None,
        suite: None,
        alpn: None,
    }
}

const INITIATE: &str = "/gsma/rsp2/es9plus/initiateAuthentication";
const AUTH_CLIENT: &str = "/gsma/rsp2/es9plus/authenticateClient";
const GET_BPP: &str = "/gsma/rsp2/es9plus/getBoundProfilePackage";
const NOTIFY: &str = "/gsma/rsp2/es9plus/handleNotification";
const CANCEL: &str = "/gsma/rsp2/es9plus/cancelSession";

fn initiate_body() -> String {
    json!({
        "smdpAddress": "127.0.0.1",
        "euiccChallenge": "AAECAwQFBgcICQoLDA0ODw==",
        "euiccInfo1": "vyAggQMCAgA="
    })
    .to_string()
}

fn auth_client_body(tid: &str) -> String {
    json!({"transactionId": tid, "authenticateServerResponse": "vzgA"}).to_string()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn tls13_h2_initiate_authentication_success() {
    let server = TestServer::tls().await;
    let r = https(
        &server,
        Tls::V13,
        Alpn::H2,
        Method::POST,
        INITIATE,
        &lpac_headers(),
        initiate_body(),
    )
    .await;
    assert_eq!(r.tls_version, Some(ProtocolVersion::TLSv1_3));
    assert_eq!(r.alpn.as_deref(), Some(&b"h2"[..]));
    let v = r.assert_success();
    assert_eq!(
        v,
        json!({
            "header": {"functionExecutionStatus": {"status": "Executed-Success"}},
            "transactionId": "0102030405060708",
            "serverSigned1": "MAA=",
            "serverSignature1": "XzcA",
            "euiccCiPKIdToBeUsed": "BAA=",
            "serverCertificate": "MAEA"
        })
    );
    server.stop().await;
}

#[tokio::test]
async fn tls12_forced_http1_uses_the_sgp22_suite() {
    let server = TestServer::tls().await;
    let r = https(
        &server,
        Tls::V12,
        Alpn::H1,
        Method::POST,
        AUTH_CLIENT,
        &lpac_headers(),
        auth_client_body("0A0B"),
    )
    .await;
    assert_eq!(r.tls_version, Some(ProtocolVersion::TLSv1_2));
    assert_eq!(
        r.suite,
        Some(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
    );
    assert_eq!(r.alpn.as_deref(), Some(&b"http/1.1"[..]));
    let v = r.assert_success();
    assert_eq!(v["transactionId"], "0A0B");
    assert_eq!(v["profileMetadata"], "vyUA");
    assert_eq!(v["smdpSigned2"], "MAA=");
    assert_eq!(v["smdpSignature2"], "XzcA");
    assert_eq!(v["smdpCertificate"], "MAA=");
    server.stop().await;
}

#[tokio::test]
async fn every_function_over_tls12_h2_and_tls13_h1() {
    let server = TestServer::tls().await;
    for (tls, alpn) in [(Tls::V12, Alpn::H2), (Tls::V13, Alpn::H1)] {
        let r = https(
            &server,
            tls,
            alpn,
            Method::POST,
            GET_BPP,
            &lpac_headers(),
            json!({"transactionId": "0A0B", "prepareDownloadResponse": "vyEA"}).to_string(),
        )
        .await;
        assert_eq!(r.assert_success()["boundProfilePackage"], "vzYA");

        let r = https(
            &server,
            tls,
            alpn,
            Method::POST,
            CANCEL,
            &lpac_headers(),
            json!({"transactionId": "0A0B", "cancelSessionResponse": "v0EA"}).to_string(),
        )
        .await;
        let v = r.assert_success();
        assert_eq!(v.as_object().unwrap().len(), 1, "header only: {v}");

        let r = https(
            &server,
            tls,
            alpn,
            Method::POST,
            NOTIFY,
            &lpac_headers(),
            json!({"pendingNotification": "vzcA"}).to_string(),
        )
        .await;
        assert_eq!(r.status, 204);
        assert!(r.body.is_empty());
        assert_eq!(r.header("content-type"), None);
        assert_eq!(r.header("x-admin-protocol"), Some("gsma/rsp/v2.2.0"));
    }
    server.stop().await;
}

#[tokio::test]
async fn content_type_variants() {
    let server = TestServer::tls().await;
    let with_ct = |ct: &'static str| {
        vec![
            ("x-admin-protocol", "gsma/rsp/v2.2.2"),
            ("content-type", ct),
        ]
    };
    for ok in [
        "application/json;charset=UTF-8",
        "application/json; charset=utf-8",
    ] {
        let r = https(
            &server,
            Tls::V13,
            Alpn::H2,
            Method::POST,
            INITIATE,
            &with_ct(ok),
            initiate_body(),
        )
        .await;
        r.assert_success();
    }
    for bad in [
        "text/plain",
        "application/x-gsma-rsp-asn1",
        "application/json;charset=latin1",
    ] {
        let r = https(
            &server,
            Tls::V13,
            Alpn::H2,
            Method::POST,
            INITIATE,
            &with_ct(bad),
            initiate_body(),
        )
        .await;
        let msg = r.assert_failed(&status::PROTOCOL_FORMAT_INVALID);
        assert!(msg.contains("Content-Type"), "{msg}");
    }
    let r = https(
        &server,
        Tls::V13,
        Alpn::H1,
        Method::POST,
        INITIATE,
        &[("x-admin-protocol", "gsma/rsp/v2.2.2")],
        initiate_body(),
    )
    .await;
    r.assert_failed(&status::PROTOCOL_FORMAT_INVALID);
    server.stop().await;
}

#[tokio::test]
async fn admin_protocol_missing_or_unsupported() {
    let server = TestServer::tls().await;
    let r = https(
        &server,
        Tls::V13,
        Alpn::H2,
        Method::POST,
        INITIATE,
        &[("content-type", "application/json")],
        initiate_body(),
    )
    .await;
    let msg = r.assert_failed(&status::PROTOCOL_VERSION_MISSING);
    assert!(msg.contains("X-Admin-Protocol"), "{msg}");
    for bad in ["gsma/rsp/v1.0.0", "gsma/rsp/v4.0.0", "rsp/2.2.2"] {
        let r = https(
            &server,
            Tls::V13,
            Alpn::H1,
            Method::POST,
            INITIATE,
            &[
                ("content-type", "application/json"),
                ("x-admin-protocol", bad),
            ],
            initiate_body(),
        )
        .await;
        r.assert_failed(&status::PROTOCOL_VERSION_UNSUPPORTED);
    }
    let r = https(
        &server,
        Tls::V13,
        Alpn::H1,
        Method::POST,
        INITIATE,
        &[
            ("content-type", "application/json"),
            ("x-admin-protocol", "gsma/rsp/v3.1.0"),
        ],
        initiate_body(),
    )
    .await;
    r.assert_success();
    server.stop().await;
}

#[tokio::test]
async fn admin_protocol_optional_when_configured_plain_http() {
    let config = Es9HttpConfig {
        require_admin_protocol: false,
        ..Es9HttpConfig::default()
    };
    let server = TestServer::start(false, config).await;
    let r = http(
        &server,
        INITIATE,
        &[("content-type", "application/json")],
        &initiate_body(),
    )
    .await;
    r.assert_success();
    // A wrong value is still refused.
    let r = http(
        &server,
        INITIATE,
        &[
            ("content-type", "application/json"),
            ("x-admin-protocol", "gsma/rsp/v9"),
        ],
        &initiate_body(),
    )
    .await;
    r.assert_failed(&status::PROTOCOL_VERSION_UNSUPPORTED);
    server.stop().await;
}

#[tokio::test]
async fn malformed_requests_fail_with_http_200() {
    let server = TestServer::tls().await;
    let cases: Vec<(&str, String, status::StatusCode)> = vec![
        (
            INITIATE,
            "{not json".to_owned(),
            status::PROTOCOL_FORMAT_INVALID,
        ),
        (INITIATE, "[]".to_owned(), status::PROTOCOL_FORMAT_INVALID),
        (INITIATE, String::new(), status::PROTOCOL_FORMAT_INVALID),
        (
            INITIATE,
            json!({"smdpAddress": "127.0.0.1", "euiccInfo1": "vyAA"}).to_string(),
            status::PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING,
        ),
        (
            INITIATE,
            json!({"smdpAddress": "127.0.0.1", "euiccInfo1": "vyAA",
            "euiccChallenge": "AAEC"})
            .to_string(),
            status::PROTOCOL_FORMAT_INVALID,
        ),
        (
            AUTH_CLIENT,
            json!({"transactionId": "0A0B", "authenticateServerResponse": "%%%"}).to_string(),
            status::PROTOCOL_FORMAT_INVALID,
        ),
        (
            AUTH_CLIENT,
            json!({"transactionId": "XYZ", "authenticateServerResponse": "vzgA"}).to_string(),
            status::PROTOCOL_FORMAT_INVALID,
        ),
        (
            CANCEL,
            json!({"cancelSessionResponse": "v0EA"}).to_string(),
            status::PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING,
        ),
        (
            NOTIFY,
            "{}".to_owned(),
            status::PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING,
        ),
        (
            NOTIFY,
            json!({"pendingNotification": 5}).to_string(),
            status::PROTOCOL_FORMAT_INVALID,
        ),
    ];
    for (path, body, code) in cases {
        let r = https(
            &server,
            Tls::V13,
            Alpn::H2,
            Method::POST,
            path,
            &lpac_headers(),
            body.clone(),
        )
        .await;
        let msg = r.assert_failed(&code);
        assert!(!msg.is_empty(), "{path} {body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn service_errors_are_reported() {
    let server = TestServer::tls().await;
    let r = https(
        &server,
        Tls::V13,
        Alpn::H2,
        Method::POST,
        AUTH_CLIENT,
        &lpac_headers(),
        auth_client_body("DEAD"),
    )
    .await;
    let msg = r.assert_failed(&status::TRANSACTION_ID_UNKNOWN);
    assert_eq!(
        msg,
        "The RSP session identified by the TransactionID is unknown."
    );
    // A service panic becomes 1.2/4.2 and the server keeps serving.
    let r = https(
        &server,
        Tls::V13,
        Alpn::H2,
        Method::POST,
        AUTH_CLIENT,
        &lpac_headers(),
        auth_client_body("BAD0"),
    )
    .await;
    r.assert_failed(&status::FUNCTION_PROVIDER_EXECUTION_ERROR);
    // Notification that can never be processed: 200 Failed; transient failure: 503.
    let r = https(
        &server,
        Tls::V13,
        Alpn::H1,
        Method::POST,
        NOTIFY,
        &lpac_headers(),
        json!({"pendingNotification": "7g=="}).to_string(),
    )
    .await;
    r.assert_failed(&status::PROTOCOL_FORMAT_INVALID);
    let r = https(
        &server,
        Tls::V13,
        Alpn::H1,
        Method::POST,
        NOTIFY,
        &lpac_headers(),
        json!({"pendingNotification": "/w=="}).to_string(),
    )
    .await;
    assert_eq!(r.status, 503);
    let r = https(
        &server,
        Tls::V13,
        Alpn::H2,
        Method::POST,
        AUTH_CLIENT,
        &lpac_headers(),
        auth_client_body("0A0B"),
    )
    .await;
    r.assert_success();
    server.stop().await;
}

#[tokio::test]
async fn request_timeout_fails_cleanly() {
    let config = Es9HttpConfig {
        request_timeout: Duration::from_millis(300),
        ..Es9HttpConfig::default()
    };
    let server = TestServer::start(true, config).await;
    let start = Instant::now();
    let r = https(
        &server,
        Tls::V13,
        Alpn::H2,
        Method::POST,
        AUTH_CLIENT,
        &lpac_headers(),
        auth_client_body("5105"),
    )
    .await;
    r.assert_failed(&status::FUNCTION_PROVIDER_EXECUTION_ERROR);
    assert!(start.elapsed() < Duration::from_secs(3));
    server.stop().await;
}

/// MatchingID guessing: after `refusals_per_minute` answers of `8.2.6/3.8` from one address,
/// every ES9+ call from it gets 429 with Retry-After, without reaching the service; the
/// initiateAuthentication count has its own limit.
#[tokio::test]
async fn rejects_matching_id_guessing_past_the_limit() {
    let config = Es9HttpConfig {
        abuse: smdpp_server::abuse::AbuseLimits {
            initiate_per_minute: 5,
            refusals_per_minute: 3,
            max_tracked: 100,
        },
        ..Es9HttpConfig::default()
    };
    let server = TestServer::start(false, config).await;
    for _ in 0..3 {
        let r = http(
            &server,
            AUTH_CLIENT,
            &lpac_headers(),
            &auth_client_body("8A7C"),
        )
        .await;
        r.assert_failed(&status::MATCHING_ID_REFUSED);
    }
    for body in [auth_client_body("8A7C"), auth_client_body("0A0B")] {
        let r = http(&server, AUTH_CLIENT, &lpac_headers(), &body).await;
        assert_eq!(r.status, 429, "{:?}", String::from_utf8_lossy(&r.body));
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let v = r.json();
        assert_eq!(
            v["header"]["functionExecutionStatus"]["statusCodeData"]["subjectCode"],
            "1.2"
        );
        assert_eq!(
            v["header"]["functionExecutionStatus"]["statusCodeData"]["reasonCode"],
            "5.1"
        );
    }
    server.stop().await;

    // initiateAuthentication: 5 a minute, then 429.
    let config = Es9HttpConfig {
        abuse: smdpp_server::abuse::AbuseLimits {
            initiate_per_minute: 5,
            refusals_per_minute: 0,
            max_tracked: 100,
        },
        ..Es9HttpConfig::default()
    };
    let server = TestServer::start(false, config).await;
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..7 {
            v.push(
                http(&server, INITIATE, &lpac_headers(), &initiate_body())
                    .await
                    .status,
            );
        }
        v
    };
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    // Other functions are not counted against that limit.
    let r = http(
        &server,
        AUTH_CLIENT,
        &lpac_headers(),
        &auth_client_body("0A0B"),
    )
    .await;
    r.assert_success();
    server.stop().await;
}

#[tokio::test]
async fn rejects_oversized_body_with_413() {
    let server = TestServer::tls().await;
    // 2 MiB, valid JSON shape, declared with Content-Length.
    let big = format!(
        r#"{{"transactionId":"0A0B","authenticateServerResponse":"{}"}}"#,
        "A".repeat(2 * 1024 * 1024)
    );
    for alpn in [Alpn::H2, Alpn::H1] {
        let r = https(
            &server,
            Tls::V13,
            alpn,
            Method::POST,
            AUTH_CLIENT,
            &lpac_headers(),
            big.clone(),
        )
        .await;
        let msg = r.assert_failed_with(413, &status::PROTOCOL_FORMAT_INVALID);
        assert!(msg.contains("larger than 1048576"), "{msg}");
    }
    // Just under the limit but a field over its own bound: refused by the JSON layer.
    let body = format!(
        r#"{{"transactionId":"0A0B","authenticateServerResponse":"{}"}}"#,
        "A".repeat(1000 * 1024)
    );
    let r = https(
        &server,
        Tls::V13,
        Alpn::H2,
        Method::POST,
        AUTH_CLIENT,
        &lpac_headers(),
        body,
    )
    .await;
    r.assert_failed(&status::PROTOCOL_FORMAT_INVALID);
    // The server is still fine.
    let r = https(
        &server,
        Tls::V13,
        Alpn::H1,
        Method::POST,
        AUTH_CLIENT,
        &lpac_headers(),
        auth_client_body("0A0B"),
    )
    .await;
    r.assert_success();
    server.stop().await;
}

#[tokio::test]
async fn rejects_oversized_chunked_body_with_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(false, Es9HttpConfig::default()).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST {AUTH_CLIENT} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Admin-Protocol: gsma/rsp/v2.2.2\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("10000\r\n{}\r\n", "A".repeat(0x10000));
    // 2 MiB in 64 KiB chunks, no Content-Length; the server may stop reading after 1 MiB.
    for _ in 0..32 {
        if tcp.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = tcp.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(
        text.contains(r#""subjectCode":"1.3.1","reasonCode":"2.1""#),
        "{text}"
    );
    assert!(text.contains("larger than 1048576"), "{text}");
    server.stop().await;
}

/// The case of the issue: curl sends 2 MiB over TLS (HTTP/1.1, Content-Length) and must read
/// the 413 answer, not a reset connection.
#[tokio::test]
async fn rejects_2mib_body_over_tls_with_a_413_the_client_reads() {
    let server = TestServer::tls().await;
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("big.json");
    std::fs::write(
        &body,
        format!(
            r#"{{"transactionId":"0A0B","authenticateServerResponse":"{}"}}"#,
            "A".repeat(2 * 1024 * 1024)
        ),
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{}{AUTH_CLIENT}", server.addr.port());
    let out = tokio::process::Command::new("curl")
        .args(["-sk", "--http1.1", "-o", "-", "-w", "\n%{http_code}"])
        .args(["-H", "X-Admin-Protocol: gsma/rsp/v2.2.0"])
        .args(["-H", "Content-Type: application/json"])
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg(&url)
        .output()
        .await
        .expect("curl (scripts/test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "curl failed ({}): {text}", out.status);
    assert!(text.ends_with("\n413"), "{text}");
    assert!(text.contains("larger than 1048576"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn routing_404_405_and_healthz() {
    let server = TestServer::tls().await;
    let r = https(
        &server,
        Tls::V13,
        Alpn::H2,
        Method::POST,
        "/gsma/rsp2/es9plus/nope",
        &lpac_headers(),
        "{}",
    )
    .await;
    assert_eq!(r.status, 404);
    let r = https(
        &server,
        Tls::V12,
        Alpn::H1,
        Method::POST,
        "/",
        &lpac_headers(),
        "{}",
    )
    .await;
    assert_eq!(r.status, 404);
    for alpn in [Alpn::H1, Alpn::H2] {
        let r = https(&server, Tls::V13, alpn, Method::GET, INITIATE, &[], "").await;
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("POST"));
        let r = https(&server, Tls::V13, alpn, Method::GET, "/healthz", &[], "").await;
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], b"ok");
    }
    server.stop().await;
}

#[tokio::test]
async fn concurrency_is_bounded() {
    let config = Es9HttpConfig {
        max_in_flight: 1,
        ..Es9HttpConfig::default()
    };
    let server = Arc::new(TestServer::start(true, config).await);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let server = Arc::clone(&server);
        tasks.push(tokio::spawn(async move {
            https(
                &server,
                Tls::V13,
                Alpn::H2,
                Method::POST,
                AUTH_CLIENT,
                &lpac_headers(),
                auth_client_body("51EE"),
            )
            .await
            .assert_success();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Three 300 ms calls through one slot take at least 900 ms.
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    let server = Arc::into_inner(server).unwrap();
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let server = TestServer::tls().await;
    let pki_cert = server.pki.as_ref().unwrap().cert_der.clone();
    let addr = server.addr;
    // Start a slow request, then signal shutdown while it runs.
    let slow = tokio::spawn(async move {
        let connector =
            tokio_rustls::TlsConnector::from(client_config(&pki_cert, Tls::V13, Alpn::H1));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let stream = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        send_on(
            stream,
            Alpn::H1,
            "localhost",
            Method::POST,
            AUTH_CLIENT,
            &lpac_headers(),
            Bytes::from(auth_client_body("51EE")),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop().await;
    let (status, _, body) = slow.await.unwrap();
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["header"]["functionExecutionStatus"]["status"],
        "Executed-Success"
    );
    // The listener is closed.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// A TLS connection to `server` after a completed handshake, on which nothing was sent yet.
async fn tls_connect(
    server: &TestServer,
    alpn: Alpn,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let pki = server.pki.as_ref().unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_config(&pki.cert_der, Tls::V13, alpn));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// Waits (at most `limit`) until the server closes `stream`; returns how long that took.
async fn wait_closed<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, limit: Duration) -> Duration {
    use tokio::io::AsyncReadExt;
    let start = Instant::now();
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Err(_) => panic!("connection still open after {limit:?}"),
            // EOF, or an error such as a missing close_notify: closed either way.
            Ok(Ok(0) | Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

fn short_idle_options(max_connections: usize) -> ServeOptions {
    ServeOptions {
        max_connections,
        idle_timeout: Duration::from_millis(300),
        shutdown_grace: Duration::from_secs(5),
        ..ServeOptions::default()
    }
}

#[tokio::test]
async fn rejects_silent_client_after_idle_timeout() {
    let server =
        TestServer::start_with(true, Es9HttpConfig::default(), short_idle_options(16)).await;
    for alpn in [Alpn::H1, Alpn::H2] {
        // Handshake, then send nothing (not even the HTTP/2 preface): before the fix the
        // protocol sniff waited forever.
        let mut stream = tls_connect(&server, alpn).await;
        let took = wait_closed(&mut stream, Duration::from_secs(5)).await;
        assert!(
            took >= Duration::from_millis(200),
            "{alpn:?}: closed after {took:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn rejects_kept_alive_connection_idle_between_requests() {
    let server =
        TestServer::start_with(true, Es9HttpConfig::default(), short_idle_options(16)).await;
    let stream = tls_connect(&server, Alpn::H1).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let request = Request::builder()
        .uri("/healthz")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
    // The connection is kept alive by the client; the server closes it once idle.
    let start = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("idle keep-alive connection was not closed")
        .unwrap()
        .ok();
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
    server.stop().await;
}

#[tokio::test]
async fn idle_connections_do_not_exhaust_max_connections() {
    let server =
        TestServer::start_with(true, Es9HttpConfig::default(), short_idle_options(2)).await;
    // Two clients take both connection slots and then sit idle.
    let mut idle1 = tls_connect(&server, Alpn::H2).await;
    let mut idle2 = tls_connect(&server, Alpn::H1).await;
    // A third, real request gets a slot once the idle ones are dropped.
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        https(
            &server,
            Tls::V13,
            Alpn::H2,
            Method::POST,
            INITIATE,
            &lpac_headers(),
            initiate_body(),
        ),
    )
    .await
    .expect("a real request starved by idle connections");
    reply.assert_success();
    wait_closed(&mut idle1, Duration::from_secs(1)).await;
    wait_closed(&mut idle2, Duration::from_secs(1)).await;
    server.stop().await;
}

#[tokio::test]
async fn slow_body_upload_does_not_hold_an_in_flight_slot() {
    use tokio::io::AsyncWriteExt;
    let config = Es9HttpConfig {
        max_in_flight: 1,
        request_timeout: Duration::from_secs(3),
        ..Es9HttpConfig::default()
    };
    let server = TestServer::start(true, config).await;
    // An upload that announces 1000 bytes, sends 10, then stalls.
    let mut slow = tls_connect(&server, Alpn::H1).await;
    let head = format!(
        "POST {AUTH_CLIENT} HTTP/1.1\r\nhost: localhost\r\nx-admin-protocol: gsma/rsp/v2.2.2\r\n\
         content-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"transact"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The only slot must still be free for a normal request.
    let start = Instant::now();
    https(
        &server,
        Tls::V13,
        Alpn::H2,
        Method::POST,
        AUTH_CLIENT,
        &lpac_headers(),
        auth_client_body("0102030405060708"),
    )
    .await
    .assert_success();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // The stalled upload is ended by the request time-out, not served.
    let mut response = Vec::new();
    {
        use tokio::io::AsyncReadExt;
        let _ =
            tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut response)).await;
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"reasonCode\":\"4.2\""), "{text}");
    drop(slow);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// TLS configuration

fn openssl_s_client(addr: SocketAddr, args: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new("openssl");
    cmd.arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .args(args)
        .stdin(std::process::Stdio::null());
    let out = cmd.output().expect("openssl CLI not found");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn openssl_negotiates_tls12_ecdhe_ecdsa_aes128_gcm() {
    let server = TestServer::tls().await;
    let addr = server.addr;
    let (ok, text) = tokio::task::spawn_blocking(move || {
        openssl_s_client(
            addr,
            &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
        )
    })
    .await
    .unwrap();
    assert!(ok, "{text}");
    assert!(
        text.contains("Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"),
        "{text}"
    );
    assert!(text.contains("Protocol  : TLSv1.2"), "{text}");
    // OpenSSL offers X25519 first; in TLS 1.2 only secp256r1 is used (SGP.22 2.6.6).
    assert!(text.contains("Server Temp Key: ECDH, prime256v1"), "{text}");
    let (ok, text) = tokio::task::spawn_blocking(move || {
        openssl_s_client(addr, &["-tls1_2", "-groups", "X25519"])
    })
    .await
    .unwrap();
    assert!(!ok && text.contains("handshake failure"), "{text}");
    // The CBC suite of SGP.22 2.6.6 cannot be offered by rustls (documented limitation).
    let (ok, text) = tokio::task::spawn_blocking(move || {
        openssl_s_client(addr, &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"])
    })
    .await
    .unwrap();
    assert!(!ok && text.contains("handshake failure"), "{text}");
    // ALPN h2 with TLS 1.3, like lpac/libcurl.
    let (ok, text) = tokio::task::spawn_blocking(move || {
        openssl_s_client(addr, &["-tls1_3", "-alpn", "h2,http/1.1"])
    })
    .await
    .unwrap();
    assert!(ok, "{text}");
    assert!(text.contains("ALPN protocol: h2"), "{text}");
    server.stop().await;
}

fn write(dir: &Path, name: &str, content: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

#[test]
fn pem_loading_accepts_pkcs8_and_sec1_p256() {
    let pki = make_pki();
    let chain = load_certificate_chain(&pki.cert_path).unwrap();
    assert_eq!(chain.len(), 1);
    // PKCS#8 ("PRIVATE KEY").
    let key = load_private_key(&pki.key_path).unwrap();
    assert!(matches!(key, rustls::pki_types::PrivateKeyDer::Pkcs8(_)));
    server_config(chain.clone(), key).unwrap();
    // SEC1 ("EC PRIVATE KEY"), converted by openssl.
    let sec1 = pki.key_path.with_extension("sec1");
    let out = std::process::Command::new("openssl")
        .args(["ec", "-in"])
        .arg(&pki.key_path)
        .arg("-out")
        .arg(&sec1)
        .output()
        .expect("openssl CLI not found");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read_to_string(&sec1)
            .unwrap()
            .contains("BEGIN EC PRIVATE KEY")
    );
    let key = load_private_key(&sec1).unwrap();
    assert!(matches!(key, rustls::pki_types::PrivateKeyDer::Sec1(_)));
    let config = server_config(chain, key).unwrap();
    assert_eq!(
        config.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
}

#[test]
fn pem_loading_rejects_other_keys_and_mismatches() {
    let pki = make_pki();
    let chain = load_certificate_chain(&pki.cert_path).unwrap();
    // P-384 key: refused (P-256 only).
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p384_path = write(dir.path(), "p384.key", &p384.serialize_pem());
    let err = server_config(chain.clone(), load_private_key(&p384_path).unwrap()).unwrap_err();
    assert!(matches!(err, TlsSetupError::UnsupportedKey), "{err}");
    // Another P-256 key: does not match the certificate.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let other_path = write(dir.path(), "other.key", &other.serialize_pem());
    let err = server_config(chain, load_private_key(&other_path).unwrap()).unwrap_err();
    assert!(matches!(err, TlsSetupError::KeyMismatch(_)), "{err}");
    // Files without the expected PEM sections.
    let empty = write(dir.path(), "empty.pem", "nothing here\n");
    assert!(matches!(
        load_certificate_chain(&empty),
        Err(TlsSetupError::NoCertificate(_))
    ));
    assert!(load_private_key(&empty).is_err());
    assert!(load_private_key(dir.path().join("missing.pem")).is_err());
}
