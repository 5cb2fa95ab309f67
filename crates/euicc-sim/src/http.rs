//! The ES9+ HTTP client of the LPA: HTTP/1.1 POSTs of JSON over TLS (tokio-rustls) or plain
//! TCP (for a TLS-terminating proxy), one connection per call (like lpac) by default, or with
//! [`Es9Client::with_keep_alive`] HTTP/1.1 keep-alive: idle connections are pooled per
//! SM-DP+ address and re-used by the next call (of any clone of the client).
//!
//! TLS server authentication follows SGP.22 section 3.1.2 step 5: the server's certificate
//! must be a valid CERT.DP.TLS chaining to one of the eUICC's trusted CIs
//! ([`rsp_pki::validate_dp_chain`] with [`rsp_pki::DpRole::Tls`]), and its dNSName must match
//! the host when the SM-DP+ address is a host name (IP literals are checked for the chain
//! only). Handshake signatures are checked by rustls' own `verify_tls12_signature` /
//! `verify_tls13_signature`. [`Transport::HttpsInsecure`] skips the certificate check for
//! labs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::Serialize;
use serde::de::DeserializeOwned;
use smdpp_core::es9_json::Es9Function;
use smdpp_core::status::FunctionExecutionStatus;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::lpa::{LpaError, ServerError};

/// The largest response body accepted (a BPP is at most 4 MiB, base64 adds a third).
pub const MAX_RESPONSE_BODY: usize = 8 * 1024 * 1024;

/// `User-Agent` sent on every request.
pub const USER_AGENT: &str = "gsma-rsp-lpad";
/// `X-Admin-Protocol` sent on every request (by default; see
/// [`Es9Client::with_admin_protocol`]).
pub const ADMIN_PROTOCOL: &str = "gsma/rsp/v2.2.0";
/// `X-Admin-Protocol` the LPA sends for an SGP.22 v3 eUICC.
pub const ADMIN_PROTOCOL_V3: &str = "gsma/rsp/v3.0.0";

/// How to reach the SM-DP+.
#[derive(Clone, Debug)]
pub enum Transport {
    /// HTTPS; the server certificate must be a CERT.DP.TLS under one of these CIs.
    Https(rsp_pki::TrustStore),
    /// HTTPS without checking the server certificate (labs only).
    HttpsInsecure,
    /// Plain HTTP (behind a TLS-terminating proxy, or an in-test server).
    Http,
}

/// A raw HTTP reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// An HTTP/1.1 connection's request handle.
type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Idle keep-alive connections by SM-DP+ address.
type IdlePool = Arc<Mutex<HashMap<String, Vec<Sender>>>>;

/// Most idle connections kept per address.
const MAX_IDLE_PER_ADDRESS: usize = 1024;

/// The ES9+ client; cheap to clone and share between many simulated devices (clones share
/// the TLS configuration, hence its session cache, and the keep-alive pool).
#[derive(Clone)]
pub struct Es9Client {
    tls: Option<TlsConnector>,
    /// The OpenSSL client of [`Es9Client::with_openssl`], used instead of `tls`.
    openssl: Option<Arc<OpenSslClient>>,
    /// The CIs CERT.DP.TLS must chain to (`None`: not checked, or plain HTTP).
    trust: Option<rsp_pki::TrustStore>,
    timeout: Duration,
    idle: Option<IdlePool>,
    admin_protocol: &'static str,
}

impl std::fmt::Debug for Es9Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Es9Client")
            .field("tls", &self.tls.is_some())
            .field("openssl", &self.openssl.is_some())
            .field("timeout", &self.timeout)
            .field("keep_alive", &self.idle.is_some())
            .finish()
    }
}

#[derive(Debug)]
struct CiVerifier {
    trust: rsp_pki::TrustStore,
    provider: Arc<CryptoProvider>,
}

fn name_matches(pattern: &str, host: &str) -> bool {
    let (p, h) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    match p.strip_prefix("*.") {
        Some(suffix) => h
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => p == h,
    }
}

impl ServerCertVerifier for CiVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let now = time::OffsetDateTime::from_unix_timestamp(secs)
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let host = match server_name {
            ServerName::DnsName(name) => Dialled::Name(name.as_ref()),
            ServerName::IpAddress(ip) => Dialled::Ip(std::net::IpAddr::from(*ip)),
            _ => {
                return Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName,
                ));
            }
        };
        check_dp_tls(&self.trust, end_entity.as_ref(), host, now).map_err(|e| match e {
            DpTlsError::Chain(e) => rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(e))),
            ),
            DpTlsError::Name => {
                rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)
            }
        })?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
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
        verify_tls13_signature(
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

/// The server the LPA dialled.
#[derive(Clone, Copy, Debug)]
enum Dialled<'a> {
    Name(&'a str),
    Ip(std::net::IpAddr),
}

impl<'a> Dialled<'a> {
    fn of(host: &'a str) -> Dialled<'a> {
        match host.parse::<std::net::IpAddr>() {
            Ok(ip) => Dialled::Ip(ip),
            Err(_) => Dialled::Name(host),
        }
    }
}

/// Why a server certificate is not a usable CERT.DP.TLS.
#[derive(Debug)]
enum DpTlsError {
    Chain(rsp_pki::PkiError),
    Name,
}

impl std::fmt::Display for DpTlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DpTlsError::Chain(e) => write!(f, "invalid CERT.DP.TLS: {e}"),
            DpTlsError::Name => f.write_str("CERT.DP.TLS is not valid for the dialled name"),
        }
    }
}

/// SGP.22 section 3.1.2 step 5: `leaf` is a valid CERT.DP.TLS under one of the CIs, naming
/// the server dialled: a dNSName for a host name, an iPAddress entry for an IP literal
/// (RFC 6125 / RFC 5280 4.2.1.6).
fn check_dp_tls(
    trust: &rsp_pki::TrustStore,
    leaf: &[u8],
    dialled: Dialled<'_>,
    now: time::OffsetDateTime,
) -> Result<(), DpTlsError> {
    let dp = rsp_pki::validate_dp_chain(trust, leaf, rsp_pki::DpRole::Tls, now)
        .map_err(DpTlsError::Chain)?;
    let name_ok = match dialled {
        Dialled::Name(name) => dp.dns_names.iter().any(|n| name_matches(n, name)),
        Dialled::Ip(ip) => dp.ip_addresses.contains(&ip),
    };
    if name_ok {
        Ok(())
    } else {
        Err(DpTlsError::Name)
    }
}

/// The TLS parameters of [`Es9Client::with_openssl`] (OpenSSL syntax), for reaching an
/// SM-DP+ with a suite, curve or certificate rustls does not support: the CBC-SHA256 suite
/// and brainpoolP256r1 of SGP.22 2.6.6.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenSslOptions {
    /// TLS 1.2 cipher list, e.g. `ECDHE-ECDSA-AES128-SHA256`.
    pub cipher_list: String,
    /// Key exchange groups, e.g. `brainpoolP256r1`.
    pub groups: String,
    /// Offer TLS 1.2 only (what 2.6.6 specifies); otherwise TLS 1.3 too.
    pub tls12_only: bool,
}

impl Default for OpenSslOptions {
    /// Both suites and both curves of 2.6.6, TLS 1.2 only.
    fn default() -> Self {
        OpenSslOptions {
            cipher_list: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256".into(),
            groups: "P-256:brainpoolP256r1".into(),
            tls12_only: true,
        }
    }
}

struct OpenSslClient {
    connector: openssl::ssl::SslConnector,
}

#[derive(Debug)]
struct NoCertCheck {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoCertCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
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
        verify_tls13_signature(
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

/// Split `host[:port]` / `[v6]:port`.
pub fn split_address(address: &str, default_port: u16) -> Result<(String, u16), LpaError> {
    let bad = || LpaError::InvalidInput(format!("invalid SM-DP+ address {address:?}"));
    if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if after.is_empty() => default_port,
            None => return Err(bad()),
        };
        return Ok((host.to_owned(), port));
    }
    match address.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => {
            let port = p.parse().map_err(|_| bad())?;
            if h.is_empty() {
                return Err(bad());
            }
            Ok((h.to_owned(), port))
        }
        _ if address.is_empty() || address.contains(['/', ' ']) => Err(bad()),
        _ => Ok((address.to_owned(), default_port)),
    }
}

impl Es9Client {
    /// A client for `transport`, with a 60 s timeout per call.
    pub fn new(transport: Transport) -> Result<Es9Client, LpaError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let trust = match &transport {
            Transport::Https(t) => Some(t.clone()),
            _ => None,
        };
        let verifier: Arc<dyn ServerCertVerifier> = match transport {
            Transport::Http => {
                return Ok(Es9Client {
                    tls: None,
                    openssl: None,
                    trust: None,
                    timeout: Duration::from_secs(60),
                    idle: None,
                    admin_protocol: ADMIN_PROTOCOL,
                });
            }
            Transport::Https(trust) => Arc::new(CiVerifier {
                trust,
                provider: provider.clone(),
            }),
            Transport::HttpsInsecure => Arc::new(NoCertCheck {
                provider: provider.clone(),
            }),
        };
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| LpaError::Transport(format!("TLS configuration: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Es9Client {
            tls: Some(TlsConnector::from(Arc::new(cfg))),
            openssl: None,
            trust,
            timeout: Duration::from_secs(60),
            idle: None,
            admin_protocol: ADMIN_PROTOCOL,
        })
    }

    /// Re-use connections (HTTP/1.1 keep-alive, pooled per address and shared by the clones
    /// made after this call) instead of one connection per call. A pooled connection the
    /// server has closed is detected before the request is written and replaced by a new
    /// one; a request is never sent twice.
    pub fn with_keep_alive(mut self, keep_alive: bool) -> Es9Client {
        self.idle = keep_alive.then(IdlePool::default);
        self
    }

    /// Speak TLS with OpenSSL instead of rustls, with these parameters: the server's
    /// certificate is checked after the handshake exactly as with rustls (a CERT.DP.TLS under
    /// the trusted CIs naming the dialled host, unless the transport is
    /// [`Transport::HttpsInsecure`]); OpenSSL verifies the handshake signatures. Fails for a
    /// plain-HTTP client or parameters OpenSSL refuses.
    pub fn with_openssl(mut self, options: &OpenSslOptions) -> Result<Es9Client, LpaError> {
        if self.tls.is_none() {
            return Err(LpaError::InvalidInput(
                "an OpenSSL client needs an HTTPS transport".into(),
            ));
        }
        let conf = |what: &str, e: openssl::error::ErrorStack| {
            LpaError::InvalidInput(format!("OpenSSL TLS {what}: {e}"))
        };
        use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
        let mut b =
            SslConnector::builder(SslMethod::tls_client()).map_err(|e| conf("context", e))?;
        b.set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(|e| conf("versions", e))?;
        if options.tls12_only {
            b.set_max_proto_version(Some(SslVersion::TLS1_2))
                .map_err(|e| conf("versions", e))?;
        }
        b.set_cipher_list(&options.cipher_list)
            .map_err(|e| conf("cipher list", e))?;
        b.set_groups_list(&options.groups)
            .map_err(|e| conf("groups", e))?;
        b.set_alpn_protos(b"\x08http/1.1")
            .map_err(|e| conf("ALPN", e))?;
        // The chain is checked after the handshake by check_dp_tls (SGP.22 rules, which
        // OpenSSL's verifier does not know); the handshake signatures are OpenSSL's.
        b.set_verify(SslVerifyMode::NONE);
        self.openssl = Some(Arc::new(OpenSslClient {
            connector: b.build(),
        }));
        Ok(self)
    }

    /// Whether connections are re-used.
    pub fn keep_alive(&self) -> bool {
        self.idle.is_some()
    }

    /// An idle pooled connection to `address` that is ready for a request.
    async fn take_idle(&self, address: &str) -> Option<Sender> {
        let idle = self.idle.as_ref()?;
        loop {
            let candidate = {
                let mut map = idle.lock().ok()?;
                map.get_mut(address)?.pop()?
            };
            let mut sender = candidate;
            if sender.is_closed() {
                continue;
            }
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    /// Returns a connection to the pool after a complete exchange.
    fn put_idle(&self, address: &str, sender: Sender) {
        if let Some(idle) = &self.idle
            && !sender.is_closed()
            && let Ok(mut map) = idle.lock()
        {
            let list = map.entry(address.to_owned()).or_default();
            if list.len() < MAX_IDLE_PER_ADDRESS {
                list.push(sender);
            }
        }
    }

    /// Opens a connection (TCP, TLS, HTTP/1.1 handshake) to `address`.
    async fn connect(&self, address: &str, host: &str, port: u16) -> Result<Sender, LpaError> {
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| LpaError::Transport(format!("connecting to {address}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        if let Some(ossl) = &self.openssl {
            return self.connect_openssl(ossl, address, host, tcp).await;
        }
        match &self.tls {
            Some(tls) => {
                let name = ServerName::try_from(host.to_owned()).map_err(|e| {
                    LpaError::InvalidInput(format!("{host:?} is not a server name: {e}"))
                })?;
                let stream = tls.connect(name, tcp).await.map_err(|e| {
                    LpaError::Transport(format!("TLS handshake with {address}: {e}"))
                })?;
                handshake(TokioIo::new(stream)).await
            }
            None => handshake(TokioIo::new(tcp)).await,
        }
    }

    async fn connect_openssl(
        &self,
        ossl: &OpenSslClient,
        address: &str,
        host: &str,
        tcp: TcpStream,
    ) -> Result<Sender, LpaError> {
        let fail = |e: String| LpaError::Transport(format!("TLS handshake with {address}: {e}"));
        let mut config = ossl
            .connector
            .configure()
            .map_err(|e| fail(e.to_string()))?;
        config.set_verify_hostname(false);
        let dialled = Dialled::of(host);
        if matches!(dialled, Dialled::Ip(_)) {
            config.set_use_server_name_indication(false);
        }
        let ssl = config.into_ssl(host).map_err(|e| fail(e.to_string()))?;
        let mut stream =
            tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| fail(e.to_string()))?;
        std::pin::Pin::new(&mut stream)
            .connect()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if let Some(trust) = &self.trust {
            let leaf = stream
                .ssl()
                .peer_certificate()
                .and_then(|c| c.to_der().ok())
                .ok_or_else(|| fail("the server sent no certificate".into()))?;
            check_dp_tls(trust, &leaf, dialled, time::OffsetDateTime::now_utc())
                .map_err(|e| fail(e.to_string()))?;
        }
        handshake(TokioIo::new(stream)).await
    }

    /// Send `protocol` as `X-Admin-Protocol` (default [`ADMIN_PROTOCOL`]; the LPA uses
    /// [`ADMIN_PROTOCOL_V3`] for a v3 eUICC).
    pub fn with_admin_protocol(mut self, protocol: &'static str) -> Es9Client {
        self.admin_protocol = protocol;
        self
    }

    /// The `X-Admin-Protocol` value sent.
    pub fn admin_protocol(&self) -> &'static str {
        self.admin_protocol
    }

    /// Set the per-call timeout (connect + TLS + request + response).
    pub fn with_timeout(mut self, timeout: Duration) -> Es9Client {
        self.timeout = timeout;
        self
    }

    /// Whether calls use TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// POST `body` (JSON) to `path` on the server at `address` (`host[:port]`).
    pub async fn post(
        &self,
        address: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<HttpReply, LpaError> {
        let default_port = if self.tls.is_some() { 443 } else { 80 };
        let (host, port) = split_address(address, default_port)?;
        let req = Request::post(path)
            .header(hyper::header::HOST, address)
            .header(hyper::header::USER_AGENT, USER_AGENT)
            .header("X-Admin-Protocol", self.admin_protocol)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| LpaError::InvalidInput(format!("building the request: {e}")))?;
        let fut = async {
            let mut sender = match self.take_idle(address).await {
                Some(s) => s,
                None => self.connect(address, &host, port).await?,
            };
            let reply = exchange(&mut sender, req).await?;
            // Without keep-alive the sender is dropped here, which closes the connection.
            self.put_idle(address, sender);
            Ok(reply)
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| LpaError::Transport(format!("{address}{path}: timed out")))?
    }

    /// Call an ES9+ function that returns output data: the reply must be HTTP 2xx with
    /// `header.functionExecutionStatus`; `Failed` becomes [`LpaError::Server`].
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        address: &str,
        function: Es9Function,
        req: &Req,
    ) -> Result<Resp, LpaError> {
        let body = serde_json::to_vec(req)
            .map_err(|e| LpaError::InvalidInput(format!("serializing the request: {e}")))?;
        let reply = self.post(address, function.path(), body).await?;
        check_http(function, &reply)?;
        parse_response(function, &reply.body)
    }

    /// Call an ES9+ function without output data (HandleNotification, CancelSession): any 2xx
    /// is success unless the body carries a `Failed` status.
    pub async fn call_no_output<Req: Serialize>(
        &self,
        address: &str,
        function: Es9Function,
        req: &Req,
    ) -> Result<(), LpaError> {
        let body = serde_json::to_vec(req)
            .map_err(|e| LpaError::InvalidInput(format!("serializing the request: {e}")))?;
        let reply = self.post(address, function.path(), body).await?;
        check_http(function, &reply)?;
        if reply.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let v: serde_json::Value =
            serde_json::from_slice(&reply.body).map_err(|e| LpaError::Protocol {
                function,
                detail: format!("response is not JSON: {e}"),
            })?;
        check_status(function, &v)
    }
}

/// The HTTP/1.1 handshake; the connection is driven by a task that ends when the connection
/// closes (the server closes it, or every [`Sender`] of it is dropped).
async fn handshake<IO>(io: IO) -> Result<Sender, LpaError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| LpaError::Transport(format!("HTTP handshake: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One request/response exchange on a connection; the body is read completely.
async fn exchange(sender: &mut Sender, req: Request<Full<Bytes>>) -> Result<HttpReply, LpaError> {
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| LpaError::Transport(format!("HTTP request: {e}")))?;
    let status = resp.status().as_u16();
    let body = Limited::new(resp.into_body(), MAX_RESPONSE_BODY)
        .collect()
        .await
        .map_err(|e| LpaError::Transport(format!("reading the response: {e}")))?
        .to_bytes()
        .to_vec();
    Ok(HttpReply { status, body })
}

fn check_http(function: Es9Function, reply: &HttpReply) -> Result<(), LpaError> {
    if (200..300).contains(&reply.status) {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&reply.body);
    Err(LpaError::Http {
        function,
        status: reply.status,
        body: text.chars().take(512).collect(),
    })
}

fn check_status(function: Es9Function, v: &serde_json::Value) -> Result<(), LpaError> {
    let Some(st) = v.pointer("/header/functionExecutionStatus") else {
        return Err(LpaError::Protocol {
            function,
            detail: "header.functionExecutionStatus missing".into(),
        });
    };
    let st: FunctionExecutionStatus =
        serde_json::from_value(st.clone()).map_err(|e| LpaError::Protocol {
            function,
            detail: format!("bad functionExecutionStatus: {e}"),
        })?;
    if st.status.is_executed() {
        return Ok(());
    }
    let data = st.status_code_data.clone();
    Err(LpaError::Server(ServerError {
        function,
        status: st.status,
        subject_code: data
            .as_ref()
            .map(|d| d.subject_code.clone())
            .unwrap_or_default(),
        reason_code: data
            .as_ref()
            .map(|d| d.reason_code.clone())
            .unwrap_or_default(),
        subject_identifier: data.as_ref().and_then(|d| d.subject_identifier.clone()),
        message: data.and_then(|d| d.message),
    }))
}

/// Parse an ES9+ JSON response with output data.
pub fn parse_response<T: DeserializeOwned>(
    function: Es9Function,
    body: &[u8],
) -> Result<T, LpaError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| LpaError::Protocol {
        function,
        detail: format!("response is not JSON: {e}"),
    })?;
    check_status(function, &v)?;
    serde_json::from_value(v).map_err(|e| LpaError::Protocol {
        function,
        detail: format!("bad response body: {e}"),
    })
}
