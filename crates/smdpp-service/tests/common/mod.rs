//! Test harness: the real server (in-process `prepare` + `run` over real TLS on 127.0.0.1:0),
//! an HTTPS JSON client, and a minimal eUICC built from rsp-asn1/rsp-crypto.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rsp_asn1::auth::{
    AuthenticateResponseOk, AuthenticateServerResponse, CtxParams1,
    CtxParamsForCommonAuthentication, EuiccSigned1, ServerSigned1,
};
use rsp_asn1::cancel::{
    CancelSessionReason, CancelSessionResponse, CancelSessionResponseOk, EuiccCancelSessionSigned,
};
use rsp_asn1::common::{
    Eid, Iccid, Octet16, Octet32, SubjectKeyIdentifier, TransactionId, VersionType,
};
use rsp_asn1::download::{
    BppCommandId, ErrorReason, ErrorResult, EuiccSigned2, FinalResult, PrepareDownloadResponse,
    PrepareDownloadResponseOk, ProfileInstallationResult, ProfileInstallationResultData,
    SuccessResult,
};
use rsp_asn1::euicc_info::{DeviceCapabilities, DeviceInfo, EuiccInfo1, EuiccInfo2};
use rsp_asn1::notification::{NotificationMetadata, OtherSignedNotification, PendingNotification};
use rsp_asn1::prim::Oid;
use rsp_asn1::{BitString, Certificate, Codec, Extensions, Signed};
use rsp_crypto::bpp::{OpenParams, OpenedBpp, open_bpp};
use rsp_crypto::otk::AgreementKey;
use rsp_crypto::{Curve, KeyCustody, SoftwareKey};
use rsp_pki::{PkiOptions, TestPki};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use smdpp_core::es9_json::{
    AuthenticateClientResponse, EmptyBody, GetBoundProfilePackageResponse,
    InitiateAuthenticationResponse, ResponseMessage, encode_base64,
};
use smdpp_core::status::{Es9Error, StatusCode};
use smdpp_service::assembly::{Prepared, Settings, prepare, run};
use smdpp_service::config::Limits;
use smdpp_service::sidecar::Sidecar;
use smdpp_store::{Profile, Store};
use tokio::sync::oneshot;

pub mod hsm;

pub const TS48: &str = "/work/shared/profiles/ts48/TS48v5_SAIP2.3_NoBERTLV.der";

// ------------------------------------------------------------------ databases

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Where a test's database lives.
pub struct Db {
    pub url: String,
    pg: Option<(String, String)>,
}

fn with_database(admin: &str, name: &str) -> String {
    // postgres://user@host:port/db?params -> replace the path.
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map(|i| i + scheme_end);
    let host = match path_start {
        Some(p) => &base[..p],
        None => base,
    };
    match query {
        Some(q) => format!("{host}/{name}?{q}"),
        None => format!("{host}/{name}"),
    }
}

impl Db {
    pub fn sqlite(dir: &Path) -> Db {
        Db {
            url: format!("sqlite://{}", dir.join("smdpp.db").display()),
            pg: None,
        }
    }

    pub async fn postgres(test: &str) -> Option<Db> {
        use sqlx::Connection;
        let admin = match std::env::var("SMDPP_TEST_PG_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => {
                if std::env::var("SMDPP_REQUIRE_PG").as_deref() == Ok("1") {
                    panic!("SMDPP_REQUIRE_PG=1 but SMDPP_TEST_PG_URL is not set");
                }
                eprintln!("SKIPPED postgres::{test}: SMDPP_TEST_PG_URL not set");
                return None;
            }
        };
        let name = format!(
            "smdpp_svc_{}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            test
        );
        let mut conn = sqlx::postgres::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        Some(Db {
            url: with_database(&admin, &name),
            pg: Some((admin, name)),
        })
    }

    pub async fn cleanup(&self) {
        use sqlx::Connection;
        if let Some((admin, name)) = &self.pg {
            let mut conn = sqlx::postgres::PgConnection::connect(admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
    }
}

// -------------------------------------------------------------------- server

pub const ADDRESS: &str = "127.0.0.1";

pub fn make_pki(curve: Curve) -> TestPki {
    let mut o = PkiOptions::new(curve);
    o.smdp_address = ADDRESS.into();
    rsp_pki::generate(o).unwrap()
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub prepared: Prepared,
    pub settings: Settings,
    pub tls_leaf: Vec<u8>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub async fn start(settings: Settings) -> Server {
        let listener = smdpp_server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Server::start_on(settings, listener).await
    }

    /// A server whose SM-DP+ address is `127.0.0.1:<port>` (what an LPA puts in
    /// smdpAddress from an Activation Code). Binds `settings.listen` when it has a port
    /// (a restart on the same address), else a free port.
    pub async fn start_lpa(mut settings: Settings) -> Server {
        let listener = smdpp_server::bind(settings.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        settings.listen = addr;
        settings.smdp_address = format!("127.0.0.1:{}", addr.port());
        Server::start_on(settings, listener).await
    }

    /// The SM-DP+ address to put in Activation Codes.
    pub fn address(&self) -> String {
        self.settings.smdp_address.clone()
    }

    /// With `SMDPP_TEST_KEY_CUSTODY=softhsm` the keys of `settings` are moved onto the
    /// process's SoftHSM2 token first ([`hsm::apply`]).
    pub async fn start_on(mut settings: Settings, listener: tokio::net::TcpListener) -> Server {
        hsm::apply(&mut settings);
        let prepared = prepare(settings.clone()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tls_cert = settings
            .dptls_cert
            .clone()
            .unwrap_or_else(|| settings.pki_dir.join("dptls.pem"));
        let pem = std::fs::read_to_string(tls_cert).unwrap();
        let tls_leaf = rsp_pki::Certificate::from_pem_bundle(&pem).unwrap()[0]
            .der()
            .to_vec();
        let (tx, rx) = oneshot::channel::<()>();
        let p2 = prepare_clone(&prepared);
        let task = tokio::spawn(async move {
            run(&p2, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Server {
            addr,
            prepared,
            settings,
            tls_leaf,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) -> Settings {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        self.prepared.store.close().await;
        self.settings
    }

    pub fn store(&self) -> &Store {
        &self.prepared.store
    }

    pub fn factory(&self) -> &smdpp_service::factory::Factory {
        self.prepared
            .engine
            .factory()
            .expect("prepare() configures the factory")
    }

    pub async fn sidecar(&self) -> Sidecar {
        Sidecar::connect(&self.settings.database_url).await.unwrap()
    }

    pub async fn profile(&self, iccid: &str) -> Profile {
        self.store().get_profile(iccid).await.unwrap().unwrap()
    }

    /// Imports a UPP; returns (matching id, iccid).
    pub async fn add(&self, upp: &[u8], mid: Option<&str>, cc: Option<&str>) -> (String, String) {
        let side = self.sidecar().await;
        let r = smdpp_service::inventory::add_profile(
            self.store(),
            &side,
            self.factory(),
            upp,
            mid.map(str::to_owned),
            cc,
            "Test SP",
            Some("Test profile".into()),
        )
        .await
        .unwrap();
        side.close().await;
        r
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        function: &str,
        body: Value,
    ) -> Result<T, Es9Error> {
        let (status, bytes) =
            https_post(self.addr, &self.tls_leaf, function, &body.to_string()).await;
        if status == 204 {
            assert!(bytes.is_empty());
            return serde_json::from_str("{}").map_err(|_| panic!("204"));
        }
        assert_eq!(status, 200, "HTTP status for {function}");
        let msg: ResponseMessage<T> = serde_json::from_slice(&bytes).unwrap();
        msg.into_result()
    }

    pub async fn post_status(&self, function: &str, body: Value) -> u16 {
        https_post(self.addr, &self.tls_leaf, function, &body.to_string())
            .await
            .0
    }
}

/// `Prepared` is not `Clone`; rebuild the parts `run` needs.
fn prepare_clone(p: &Prepared) -> Prepared {
    Prepared {
        settings: p.settings.clone(),
        engine: Arc::clone(&p.engine),
        tls: p.tls.clone(),
        generated_pki: p.generated_pki,
        demo_activation_code: p.demo_activation_code.clone(),
        demo_qr: p.demo_qr.clone(),
        store: p.store.clone(),
    }
}

pub fn settings(data_dir: &Path, pki_dir: PathBuf, db: &Db) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        smdp_address: ADDRESS.into(),
        data_dir: data_dir.to_path_buf(),
        database_url: db.url.clone(),
        pki_dir,
        dpauth_cert: None,
        dpauth_key: None,
        dppb_cert: None,
        dppb_key: None,
        dptls_cert: None,
        dptls_key: None,
        pkcs11: None,
        trusted_ci: Vec::new(),
        key_sets: Vec::new(),
        plain_http: false,
        tls_backend: smdpp_service::assembly::TlsBackend::default(),
        limits: Limits::default(),
        demo_profile: false,
        kek_file: data_dir.join("vault.kek"),
        sqlite_synchronous: smdpp_store::SqliteSynchronous::default(),
        admin_listen: smdpp_service::assembly::AdminListen::Off,
        console_session_ttl: std::time::Duration::from_secs(3600),
        abuse: smdpp_server::abuse::AbuseLimits::default(),
        revocation: Default::default(),
    }
}

/// A fresh test PKI on `curve` written to `<dir>/pki`, and server settings with it, the
/// data directory `<dir>/data` and the database `db`.
pub fn pki_settings(dir: &Path, db: &Db, curve: Curve) -> (TestPki, Settings) {
    let pki = make_pki(curve);
    let pki_dir = dir.join("pki");
    pki.write_to(&pki_dir).unwrap();
    let s = settings(&dir.join("data"), pki_dir, db);
    (pki, s)
}

/// TLS is P-256 only: a separate P-256 PKI written to `<dir>/tls`, whose DPtls the server
/// of `s` presents; returned so that an LPA can trust its CI too.
pub fn separate_tls_pki(dir: &Path, s: &mut Settings) -> TestPki {
    let tls = make_pki(Curve::NistP256);
    let tls_dir = dir.join("tls");
    tls.write_to(&tls_dir).unwrap();
    s.dptls_cert = Some(tls_dir.join("dptls.pem"));
    s.dptls_key = Some(tls_dir.join("dptls.key"));
    tls
}

// ------------------------------------------------------------------- HTTPS

#[derive(Debug)]
struct Pinned {
    leaf: Vec<u8>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "unexpected server certificate".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// One POST on a fresh TLS connection (as lpac does); returns (HTTP status, body).
pub async fn https_post(
    addr: SocketAddr,
    leaf: &[u8],
    function: &str,
    body: &str,
) -> (u16, Vec<u8>) {
    https_request(
        addr,
        leaf,
        "POST",
        &format!("/gsma/rsp2/es9plus/{function}"),
        body,
        None,
    )
    .await
}

/// A TLS client certificate and its PKCS#8 key (DER).
#[derive(Clone)]
pub struct ClientCert {
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

/// A self-signed client certificate, generated now.
pub fn client_cert(name: &str) -> ClientCert {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    ClientCert {
        cert_der: ck.cert.der().to_vec(),
        key_der: ck.signing_key.serialize_der(),
    }
}

/// One request on a fresh TLS connection, optionally with a client certificate (mutual TLS,
/// as ES2+ requires); returns (HTTP status, body).
pub async fn https_request(
    addr: SocketAddr,
    leaf: &[u8],
    method: &str,
    path: &str,
    body: &str,
    client: Option<&ClientCert>,
) -> (u16, Vec<u8>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            leaf: leaf.to_vec(),
            provider,
        }));
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(c) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(c.cert_der.clone())],
                rustls::pki_types::PrivateKeyDer::Pkcs8(c.key_der.clone().into()),
            )
            .unwrap(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", ADDRESS)
        .header("content-type", "application/json")
        .header("x-admin-protocol", "gsma/rsp/v2.2.0")
        .header("user-agent", "gsma-rsp-lpad")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, bytes)
}

// ------------------------------------------------------------------- ES2+

static FCI: AtomicU64 = AtomicU64::new(0);

/// A fresh functionCallIdentifier.
pub fn fci() -> String {
    format!("FCI-{}", FCI.fetch_add(1, Ordering::Relaxed))
}

/// One ES2+ request (`body` as sent) over mutual-TLS HTTPS with `client`'s certificate:
/// (HTTP status, response body).
pub async fn es2_request(
    server: &Server,
    function: &str,
    body: &str,
    client: Option<&ClientCert>,
) -> (u16, Vec<u8>) {
    https_request(
        server.addr,
        &server.tls_leaf,
        "POST",
        &format!("/gsma/rsp2/es2plus/{function}"),
        body,
        client,
    )
    .await
}

/// An ES2+ call as `operator` with its client certificate `cert` and a fresh
/// functionCallIdentifier; checks HTTP 200 and returns the response JSON.
pub async fn es2_call(
    server: &Server,
    operator: &str,
    cert: &ClientCert,
    function: &str,
    mut body: Value,
) -> Value {
    body["header"] = json!({"functionRequesterIdentifier": operator,
        "functionCallIdentifier": fci()});
    let (status, bytes) = es2_request(server, function, &body.to_string(), Some(cert)).await;
    assert_eq!(status, 200, "{function}");
    serde_json::from_slice(&bytes).unwrap()
}

/// The ES2+ response `v` of `function` is `Executed-Success`.
pub fn assert_es2_success(function: &str, v: &Value) {
    assert_eq!(
        v["header"]["functionExecutionStatus"]["status"], "Executed-Success",
        "{function}: {v}"
    );
}

// ------------------------------------------------------------------- eUICC

/// A minimal eUICC: certificates, key, CI lists, and the ES10b computations.
pub struct Card {
    pub curve: Curve,
    pub eid: String,
    pub key: SoftwareKey,
    pub euicc_der: Vec<u8>,
    pub eum_der: Vec<u8>,
    pub sign_cis: Vec<Vec<u8>>,
    pub verify_cis: Vec<Vec<u8>>,
    pub svn: [u8; 3],
    /// euiccInfo2 fields the eligibility check reads.
    pub info2_svn: Option<[u8; 3]>,
    pub rsp_capability: Vec<u32>,
    pub ext_card_resource: Vec<u8>,
    pub profile_version: [u8; 3],
    /// SGP.22 v3: ask for Remote Profile Management (operationType rpm) in
    /// AuthenticateServer, for this ICCID when given.
    pub rpm_ask: Option<Option<rsp_asn1::common::Iccid>>,
}

pub fn ski(der: &[u8]) -> Vec<u8> {
    rsp_pki::Certificate::from_der(der)
        .unwrap()
        .ski()
        .unwrap()
        .to_vec()
}

impl Card {
    pub fn from_pki(pki: &TestPki) -> Card {
        let ci = ski(&pki.ci.der);
        Card {
            curve: pki.options.curve,
            eid: pki.eid.clone(),
            key: SoftwareKey::from_pem(&pki.euicc.key.to_pkcs8_pem()).unwrap(),
            euicc_der: pki.euicc.der.clone(),
            eum_der: pki.eum.der.clone(),
            sign_cis: vec![ci.clone()],
            verify_cis: vec![ci],
            svn: [2, 2, 0],
            info2_svn: None,
            rsp_capability: vec![0],
            ext_card_resource: vec![0x81, 0x01, 0x00, 0x82, 0x04, 0x00, 0x01, 0x00, 0x00],
            profile_version: [2, 3, 1],
            rpm_ask: None,
        }
    }

    /// Another eUICC under the same EUM.
    pub fn sibling(pki: &TestPki, eid: &str) -> Card {
        let eum = pki.eum.cert().unwrap();
        let (der, key) = rsp_pki::issue_euicc(&eum, &pki.eum.key, eid).unwrap();
        let mut c = Card::from_pki(pki);
        c.eid = eid.to_owned();
        c.euicc_der = der;
        c.key = key;
        c
    }

    pub fn info1(&self) -> Vec<u8> {
        EuiccInfo1 {
            svn: VersionType::new(&self.svn).unwrap(),
            ci_pkid_list_for_verification: self
                .verify_cis
                .iter()
                .map(|s| SubjectKeyIdentifier::new(s).unwrap())
                .collect(),
            ci_pkid_list_for_signing: self
                .sign_cis
                .iter()
                .map(|s| SubjectKeyIdentifier::new(s).unwrap())
                .collect(),
            ci_pkid_list_for_signing_v3: None,
            rsp_capability: None,
            highest_svn: None,
            extensions: Extensions::default(),
        }
        .encode()
    }

    fn info2(&self) -> EuiccInfo2 {
        let v = |a: u8, b: u8, c: u8| VersionType::from_parts(a, b, c);
        EuiccInfo2 {
            profile_version: VersionType::new(&self.profile_version).unwrap(),
            svn: VersionType::new(&self.info2_svn.unwrap_or(self.svn)).unwrap(),
            euicc_firmware_ver: v(1, 0, 0),
            ext_card_resource: self.ext_card_resource.clone(),
            uicc_capability: BitString::from_bits(&[1]),
            javacard_version: None,
            globalplatform_version: None,
            rsp_capability: BitString::from_bits(&self.rsp_capability),
            ci_pkid_list_for_verification: self
                .verify_cis
                .iter()
                .map(|s| SubjectKeyIdentifier::new(s).unwrap())
                .collect(),
            ci_pkid_list_for_signing: self
                .sign_cis
                .iter()
                .map(|s| SubjectKeyIdentifier::new(s).unwrap())
                .collect(),
            euicc_category: None,
            forbidden_profile_policy_rules: None,
            pp_version: v(0, 0, 1),
            sas_acreditation_number: "TEST-SAS".into(),
            certification_data_object: None,
            tre_properties: None,
            tre_product_reference: None,
            additional_profile_package_versions: None,
            lpa_mode: None,
            ci_pkid_list_for_signing_v3: None,
            additional_euicc_info: None,
            highest_svn: None,
            extensions: Extensions::default(),
        }
    }

    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        self.key.sign(data).unwrap().to_vec()
    }

    /// ES10b.AuthenticateServer, after checking serverSignature1 with the DPauth key.
    pub fn authenticate_server(
        &self,
        init: &InitiateAuthenticationResponse,
        matching_id: Option<&str>,
        forge: bool,
        server_challenge_override: Option<[u8; 16]>,
    ) -> Vec<u8> {
        let signed1 = ServerSigned1::decode(&init.server_signed1).unwrap();
        let dpauth = rsp_pki::Certificate::from_der(&init.server_certificate).unwrap();
        let sig = rsp_asn1::auth::SignatureTlv::decode(&init.server_signature1).unwrap();
        rsp_crypto::ecdsa::verify_raw(
            dpauth.curve(),
            dpauth.public_key(),
            &init.server_signed1,
            &sig.0,
        )
        .expect("serverSignature1 verifies");
        let challenge = server_challenge_override
            .map(|c| Octet16::new(&c).unwrap())
            .unwrap_or(signed1.server_challenge.clone());
        let s1 = EuiccSigned1 {
            transaction_id: signed1.transaction_id.clone(),
            server_address: signed1.server_address.clone(),
            server_challenge: challenge,
            euicc_info2: self.info2(),
            ctx_params1: CtxParams1::CommonAuthentication(Box::new(
                CtxParamsForCommonAuthentication {
                    operation_type: None,
                    iccid: None,
                    matching_id_source: None,
                    matching_id: matching_id.map(str::to_owned),
                    device_info: DeviceInfo {
                        tac: vec![0x35, 0x29, 0x06, 0x11],
                        device_capabilities: DeviceCapabilities::default(),
                        imei: None,
                        preferred_languages: None,
                        device_test_mode: false,
                        lpa_rsp_capability: None,
                        extensions: Extensions::default(),
                    },
                    extensions: Extensions::default(),
                },
            )),
            extensions: Extensions::default(),
        };
        let s1 = match (&self.rpm_ask, s1.ctx_params1) {
            (Some(iccid), CtxParams1::CommonAuthentication(c)) => EuiccSigned1 {
                ctx_params1: CtxParams1::CommonAuthentication(Box::new(c.with_rpm(*iccid))),
                ..s1
            },
            (_, ctx) => EuiccSigned1 {
                ctx_params1: ctx,
                ..s1
            },
        };
        let signed = Signed::new(s1);
        let mut sig = self.sign(signed.raw());
        if forge {
            sig[10] ^= 0x01;
        }
        AuthenticateServerResponse::Ok(Box::new(AuthenticateResponseOk {
            euicc_signed1: signed,
            euicc_signature1: sig,
            euicc_certificate: Certificate::from_der(&self.euicc_der).unwrap(),
            eum_certificate: Certificate::from_der(&self.eum_der).unwrap(),
        }))
        .encode()
    }

    /// ES10b.PrepareDownload, checking smdpSignature2 with the DPpb key.
    pub fn prepare_download(
        &self,
        tid: &[u8],
        auth: &AuthenticateClientResponse,
        euicc_signature1_tlv: &[u8],
        otpk: &[u8],
        cc: Option<&str>,
        forge: bool,
    ) -> Vec<u8> {
        let dppb = rsp_pki::Certificate::from_der(&auth.smdp_certificate).unwrap();
        let sig2 = rsp_asn1::auth::SignatureTlv::decode(&auth.smdp_signature2).unwrap();
        let mut tbs = auth.smdp_signed2.clone();
        tbs.extend_from_slice(euicc_signature1_tlv);
        rsp_crypto::ecdsa::verify_raw(dppb.curve(), dppb.public_key(), &tbs, &sig2.0)
            .expect("smdpSignature2 verifies");
        let hash_cc = cc.map(|cc| {
            let h1 = Sha256::digest(cc.as_bytes());
            let mut h = Sha256::new();
            h.update(h1);
            h.update(tid);
            Octet32::new(&h.finalize()).unwrap()
        });
        let s2 = Signed::new(EuiccSigned2 {
            transaction_id: TransactionId::new(tid).unwrap(),
            euicc_otpk: otpk.to_vec(),
            hash_cc,
            extensions: Extensions::default(),
        });
        let mut tbs = s2.raw().to_vec();
        tbs.extend_from_slice(&auth.smdp_signature2);
        let mut sig = self.sign(&tbs);
        if forge {
            sig[5] ^= 0x80;
        }
        PrepareDownloadResponse::Ok(PrepareDownloadResponseOk {
            euicc_signed2: s2,
            euicc_signature2: sig,
        })
        .encode()
    }

    /// A PrepareDownloadResponse signed over euiccSigned2 alone (for out-of-order tests).
    pub fn prepare_download_unchecked(&self, tid: &[u8], otpk: &[u8]) -> Vec<u8> {
        let s2 = Signed::new(EuiccSigned2 {
            transaction_id: TransactionId::new(tid).unwrap(),
            euicc_otpk: otpk.to_vec(),
            hash_cc: None,
            extensions: Extensions::default(),
        });
        let sig = self.sign(s2.raw());
        PrepareDownloadResponse::Ok(PrepareDownloadResponseOk {
            euicc_signed2: s2,
            euicc_signature2: sig,
        })
        .encode()
    }

    pub fn open(&self, bpp: &[u8], dppb_der: &[u8], otk: &SoftwareKey, tid: &[u8]) -> OpenedBpp {
        let dppb = rsp_pki::Certificate::from_der(dppb_der).unwrap();
        let eid = Eid::from_digits(&self.eid).unwrap();
        open_bpp(
            bpp,
            &OpenParams {
                curve: self.curve,
                dp_pb_public: dppb.public_key(),
                euicc_otpk: otk.public_key(),
                eid: &eid.0,
                expected_transaction_id: Some(tid),
            },
            AgreementKey::Custody(otk),
        )
        .expect("BPP opens")
    }

    pub fn pir(&self, tid: &[u8], seq: i64, iccid: &str, smdp_oid: &str, ok: bool) -> Vec<u8> {
        self.pir_with(tid, seq, iccid, smdp_oid, (!ok).then_some(12))
    }

    /// A signed PIR: success, or a failure with this errorReason (loadProfileElements).
    pub fn pir_with(
        &self,
        tid: &[u8],
        seq: i64,
        iccid: &str,
        smdp_oid: &str,
        error_reason: Option<i64>,
    ) -> Vec<u8> {
        let final_result = if error_reason.is_none() {
            FinalResult::Success(SuccessResult {
                aid: vec![
                    0xA0, 0, 0, 5, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0, 0, 1, 0,
                ],
                sima_response: vec![0x30, 0x03, 0xA0, 0x01, 0x00],
            })
        } else {
            FinalResult::Error(ErrorResult {
                bpp_command_id: BppCommandId::LoadProfileElements,
                error_reason: ErrorReason::from_i64(error_reason.unwrap_or(12)),
                sima_response: None,
            })
        };
        let data = Signed::new(ProfileInstallationResultData {
            transaction_id: TransactionId::new(tid).unwrap(),
            notification_metadata: NotificationMetadata {
                seq_number: seq,
                profile_management_operation: BitString::from_bits(&[0]),
                notification_address: ADDRESS.into(),
                iccid: Iccid::from_digits(iccid),
                extensions: Extensions::default(),
            },
            smdp_oid: Oid::from_dotted(smdp_oid),
            final_result,
            extensions: Extensions::default(),
        });
        let sig = self.sign(data.raw());
        PendingNotification::ProfileInstallationResult(Box::new(ProfileInstallationResult {
            profile_installation_result_data: data,
            euicc_sign_pir: sig,
        }))
        .encode()
    }

    pub fn other_notification(&self, seq: i64, iccid: &str, bit: u32, forge: bool) -> Vec<u8> {
        let tbs = Signed::new(NotificationMetadata {
            seq_number: seq,
            profile_management_operation: BitString::from_bits(&[bit]),
            notification_address: ADDRESS.into(),
            iccid: Iccid::from_digits(iccid),
            extensions: Extensions::default(),
        });
        let mut sig = self.sign(tbs.raw());
        if forge {
            sig[3] ^= 1;
        }
        PendingNotification::OtherSignedNotification(Box::new(OtherSignedNotification {
            tbs_other_notification: tbs,
            euicc_notification_signature: sig,
            euicc_certificate: Certificate::from_der(&self.euicc_der).unwrap(),
            eum_certificate: Certificate::from_der(&self.eum_der).unwrap(),
        }))
        .encode()
    }

    pub fn cancel(&self, tid: &[u8], smdp_oid: &str, reason: i64) -> Vec<u8> {
        let s = Signed::new(EuiccCancelSessionSigned {
            transaction_id: TransactionId::new(tid).unwrap(),
            smdp_oid: Oid::from_dotted(smdp_oid).unwrap(),
            reason: CancelSessionReason::from_i64(reason),
            extensions: Extensions::default(),
        });
        let sig = self.sign(s.raw());
        CancelSessionResponse::Ok(CancelSessionResponseOk {
            euicc_cancel_session_signed: s,
            euicc_cancel_session_signature: sig,
        })
        .encode()
    }
}

// ----------------------------------------------------------------- flows

pub fn b64(b: &[u8]) -> String {
    encode_base64(b)
}

pub struct Authenticated {
    pub tid_hex: String,
    pub tid: Vec<u8>,
    pub init: InitiateAuthenticationResponse,
    pub auth: AuthenticateClientResponse,
    pub sig1_tlv: Vec<u8>,
}

pub async fn initiate(
    server: &Server,
    card: &Card,
) -> Result<InitiateAuthenticationResponse, Es9Error> {
    server
        .post(
            "initiateAuthentication",
            json!({
                "euiccChallenge": b64(&[7u8; 16]),
                "euiccInfo1": b64(&card.info1()),
                "smdpAddress": ADDRESS,
            }),
        )
        .await
}

pub async fn authenticate_with(
    server: &Server,
    card: &Card,
    init: &InitiateAuthenticationResponse,
    mid: Option<&str>,
    forge: bool,
) -> Result<(AuthenticateClientResponse, Vec<u8>), Es9Error> {
    let asr = card.authenticate_server(init, mid, forge, None);
    let sig1_tlv = match AuthenticateServerResponse::decode(&asr).unwrap() {
        AuthenticateServerResponse::Ok(ok) => {
            rsp_asn1::auth::SignatureTlv(ok.euicc_signature1.clone()).encode()
        }
        _ => unreachable!(),
    };
    server
        .post::<AuthenticateClientResponse>(
            "authenticateClient",
            json!({
                "transactionId": init.transaction_id.to_hex(),
                "authenticateServerResponse": b64(&asr),
            }),
        )
        .await
        .map(|a| (a, sig1_tlv))
}

pub async fn authenticate(
    server: &Server,
    card: &Card,
    mid: Option<&str>,
) -> Result<Authenticated, Es9Error> {
    let init = initiate(server, card).await?;
    let (auth, sig1_tlv) = authenticate_with(server, card, &init, mid, false).await?;
    Ok(Authenticated {
        tid_hex: init.transaction_id.to_hex(),
        tid: init.transaction_id.as_bytes().to_vec(),
        init,
        auth,
        sig1_tlv,
    })
}

pub async fn get_bpp(
    server: &Server,
    card: &Card,
    a: &Authenticated,
    otk: &SoftwareKey,
    cc: Option<&str>,
    forge: bool,
) -> Result<GetBoundProfilePackageResponse, Es9Error> {
    let pdr = card.prepare_download(&a.tid, &a.auth, &a.sig1_tlv, otk.public_key(), cc, forge);
    server
        .post(
            "getBoundProfilePackage",
            json!({
                "transactionId": a.tid_hex,
                "prepareDownloadResponse": b64(&pdr),
            }),
        )
        .await
}

pub async fn notify(server: &Server, pending: &[u8]) -> Result<EmptyBody, Es9Error> {
    server
        .post(
            "handleNotification",
            json!({ "pendingNotification": b64(pending) }),
        )
        .await
}

pub async fn cancel(server: &Server, tid_hex: &str, body: &[u8]) -> Result<EmptyBody, Es9Error> {
    server
        .post(
            "cancelSession",
            json!({ "transactionId": tid_hex, "cancelSessionResponse": b64(body) }),
        )
        .await
}

pub fn assert_code<T: std::fmt::Debug>(r: Result<T, Es9Error>, code: &StatusCode) {
    match r {
        Ok(v) => panic!("expected {code}, got success {v:?}"),
        Err(e) => assert_eq!(&e.code, code, "message: {}", e.message),
    }
}

// ------------------------------------------------------- the real virtual eUICC

/// A virtual eUICC (crates/euicc-sim) issued by the test PKI's EUM, trusting its CI.
pub fn sim_euicc(pki: &TestPki) -> euicc_sim::Euicc {
    let prov = euicc_sim::Provisioning {
        eum_certificate: pki.eum.der.clone(),
        eum_key: Box::new(SoftwareKey::from_pem(&pki.eum.key.to_pkcs8_pem()).unwrap()),
        trusted_cis: vec![pki.ci.der.clone()],
    };
    euicc_sim::Euicc::generate(&prov, None).unwrap()
}

/// An LPA that verifies the server's CERT.DP.TLS against these CIs (SGP.22 section 3.1.2
/// step 5), as a device would.
pub fn sim_lpa(cis: &[&TestPki]) -> euicc_sim::lpa::Lpa {
    let mut trust = cis[0].trust_store().unwrap();
    for p in &cis[1..] {
        trust.add_ci_der(&p.ci.der).unwrap();
    }
    euicc_sim::lpa::Lpa::new(euicc_sim::lpa::Transport::Https(trust)).unwrap()
}

/// `(subjectCode, reasonCode)` of an LPA error that is a server `Failed` response.
pub fn lpa_code(e: &euicc_sim::lpa::LpaError) -> (String, String) {
    match e.server_code() {
        Some((s, r)) => (s.to_owned(), r.to_owned()),
        None => panic!("expected a server status code, got {e}"),
    }
}

pub fn assert_lpa_code<T: std::fmt::Debug>(
    r: Result<T, euicc_sim::lpa::LpaError>,
    code: &StatusCode,
) {
    match r {
        Ok(v) => panic!("expected {code}, got success {v:?}"),
        Err(e) => assert_eq!(
            lpa_code(&e),
            (code.subject().to_owned(), code.reason().to_owned()),
            "{e}"
        ),
    }
}

/// Hooks that record the ES9+ requests and stop before a step.
#[derive(Default)]
pub struct Capture {
    pub stop_before: Option<euicc_sim::lpa::Step>,
    pub euicc_info1_svn: Option<[u8; 3]>,
    pub authenticate_client: Option<smdpp_core::es9_json::AuthenticateClientRequest>,
    pub get_bpp: Option<smdpp_core::es9_json::GetBoundProfilePackageRequest>,
}

impl euicc_sim::lpa::DownloadHooks for Capture {
    fn initiate_authentication(
        &mut self,
        req: &mut smdpp_core::es9_json::InitiateAuthenticationRequest,
    ) -> euicc_sim::lpa::Flow {
        if let Some(svn) = self.euicc_info1_svn {
            let mut info1 = EuiccInfo1::decode(&req.euicc_info1).unwrap();
            info1.svn = VersionType::new(&svn).unwrap();
            req.euicc_info1 = info1.encode();
        }
        self.flow(euicc_sim::lpa::Step::InitiateAuthentication)
    }
    fn authenticate_client(
        &mut self,
        req: &mut smdpp_core::es9_json::AuthenticateClientRequest,
    ) -> euicc_sim::lpa::Flow {
        self.authenticate_client = Some(req.clone());
        self.flow(euicc_sim::lpa::Step::AuthenticateClient)
    }
    fn prepare_download(
        &mut self,
        _req: &mut rsp_asn1::download::PrepareDownloadRequest,
    ) -> euicc_sim::lpa::Flow {
        self.flow(euicc_sim::lpa::Step::PrepareDownload)
    }
    fn get_bound_profile_package(
        &mut self,
        req: &mut smdpp_core::es9_json::GetBoundProfilePackageRequest,
    ) -> euicc_sim::lpa::Flow {
        self.get_bpp = Some(req.clone());
        self.flow(euicc_sim::lpa::Step::GetBoundProfilePackage)
    }
    fn load_bound_profile_package(&mut self, _bpp: &mut Vec<u8>) -> euicc_sim::lpa::Flow {
        self.flow(euicc_sim::lpa::Step::LoadBoundProfilePackage)
    }
}

impl Capture {
    pub fn stop_before(step: euicc_sim::lpa::Step) -> Capture {
        Capture {
            stop_before: Some(step),
            ..Capture::default()
        }
    }
    fn flow(&self, step: euicc_sim::lpa::Step) -> euicc_sim::lpa::Flow {
        if self.stop_before == Some(step) {
            euicc_sim::lpa::Flow::Stop
        } else {
            euicc_sim::lpa::Flow::Continue
        }
    }
}

// ------------------------------------------------------------------ runners

/// Runs each `async fn NAME(dir: &Path, db: &Db)` of the calling test file as the tests
/// `sqlite::NAME` (a fresh temporary directory and SQLite database) and `postgres::NAME`
/// (a fresh PostgreSQL database, see [`Db::postgres`]); the names after `sqlite_only:`
/// run as `sqlite::NAME` only. (admin.rs and cli.rs do not use it.)
#[allow(unused_macros)]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $crate::common::both_backends!($($name),*; sqlite_only:);
    };
    ($($name:ident),* $(,)?; sqlite_only: $($only:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $only() {
                    let dir = tempfile::tempdir().unwrap();
                    let db = $crate::common::Db::sqlite(dir.path());
                    super::$only(dir.path(), &db).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let db = $crate::common::Db::sqlite(dir.path());
                    super::$name(dir.path(), &db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::common::Db::postgres(stringify!($name)).await else {
                        return;
                    };
                    let dir = tempfile::tempdir().unwrap();
                    super::$name(dir.path(), &db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use both_backends;

// ------------------------------------------------ callback receivers (outbox, remote)

/// Accepts exactly one client certificate (the SM-DP+'s CERT.DP.TLS) and checks the
/// handshake signature with it.
#[derive(Debug)]
pub struct PinnedClient {
    pub leaf: Vec<u8>,
    pub provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::server::danger::ClientCertVerifier for PinnedClient {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_slice() {
            Ok(rustls::server::danger::ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "unexpected client certificate".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
