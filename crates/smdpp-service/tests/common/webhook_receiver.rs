//! A webhook endpoint for tests: our own hyper server on 127.0.0.1 (HTTPS with a server
//! certificate from a CA of its own, or plain HTTP), recording every request as received
//! (raw body bytes and headers), checking its `Smdpp-Signature` with
//! `smdpp_core::webhook::verify` once it knows the secret, and answering the statuses it was
//! told to (then 200; 401 when the signature does not verify).
//!
//! Included with `#[path = "common/webhook_receiver.rs"] mod webhook_receiver;`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls::pki_types::PrivateKeyDer;
use smdpp_core::webhook::{DEFAULT_TOLERANCE_SECS, SignatureError, verify};

/// One request as received.
#[derive(Clone, Debug)]
pub struct Hit {
    /// Request method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names in lower case (the last value of a repeated header).
    pub headers: HashMap<String, String>,
    /// The body bytes exactly as received.
    pub body: Vec<u8>,
    /// The signature check, when the receiver knew a secret.
    pub verified: Option<Result<(), SignatureError>>,
    /// The status answered.
    pub status: u16,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct State {
    hits: Vec<Hit>,
    answers: VecDeque<u16>,
    secret: Option<Vec<u8>>,
}

pub struct WebhookReceiver {
    pub addr: SocketAddr,
    /// `https` or `http`.
    pub scheme: &'static str,
    /// PEM of the CA that issued the server certificate (HTTPS only).
    pub ca_pem: Option<String>,
    /// That PEM written to a file (HTTPS only).
    pub ca_file: Option<PathBuf>,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl WebhookReceiver {
    /// HTTPS on 127.0.0.1 with a certificate issued by a CA written to `dir/webhook-ca.pem`.
    pub async fn https(dir: &Path) -> WebhookReceiver {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "webhook receiver test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        let ca_file = dir.join("webhook-ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        Self::start(Some(Arc::new(tls)), Some(ca.pem()), Some(ca_file)).await
    }

    /// Plain HTTP on 127.0.0.1.
    pub async fn http() -> WebhookReceiver {
        Self::start(None, None, None).await
    }

    async fn start(
        tls: Option<Arc<rustls::ServerConfig>>,
        ca_pem: Option<String>,
        ca_file: Option<PathBuf>,
    ) -> WebhookReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let st = Arc::clone(&state);
        let task = tokio::spawn(async move {
            let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let st = Arc::clone(&st);
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let st = Arc::clone(&st);
                            async move {
                                let method = req.method().to_string();
                                let path = req
                                    .uri()
                                    .path_and_query()
                                    .map_or("/", |p| p.as_str())
                                    .to_owned();
                                let headers = req
                                    .headers()
                                    .iter()
                                    .map(|(k, v)| {
                                        (
                                            k.as_str().to_ascii_lowercase(),
                                            v.to_str().unwrap_or("").to_owned(),
                                        )
                                    })
                                    .collect::<HashMap<_, _>>();
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let mut s = st.lock().unwrap();
                                let verified = s.secret.as_ref().map(|secret| {
                                    verify(
                                        headers.get("smdpp-signature").map_or("", String::as_str),
                                        &body,
                                        secret,
                                        unix_now(),
                                        DEFAULT_TOLERANCE_SECS,
                                    )
                                });
                                let status = match &verified {
                                    Some(Err(_)) => 401,
                                    _ => s.answers.pop_front().unwrap_or(200),
                                };
                                s.hits.push(Hit {
                                    method,
                                    path,
                                    headers,
                                    body: body.to_vec(),
                                    verified,
                                    status,
                                });
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .body(Full::new(Bytes::from_static(b"{}")))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(a) => {
                            let Ok(tls) = a.accept(tcp).await else {
                                return;
                            };
                            let _ = http
                                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                                .await;
                        }
                        None => {
                            let _ = http
                                .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                                .await;
                        }
                    }
                });
            }
        });
        WebhookReceiver {
            addr,
            scheme,
            ca_pem,
            ca_file,
            state,
            task,
        }
    }

    /// `scheme://127.0.0.1:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.addr.port())
    }

    /// From now on, checks each request's signature with `secret` (and answers 401 when it
    /// does not verify).
    pub fn set_secret(&self, secret: &[u8]) {
        self.state.lock().unwrap().secret = Some(secret.to_vec());
    }

    /// The statuses to answer the next requests with (then 200).
    pub fn answer(&self, statuses: &[u16]) {
        self.state.lock().unwrap().answers.extend(statuses);
    }

    /// Every request so far, in arrival order.
    pub fn hits(&self) -> Vec<Hit> {
        self.state.lock().unwrap().hits.clone()
    }
}
