//! Outbound calls through the durable outbox of `smdpp-store`: what is queued
//! (ES2+.HandleDownloadProgressInfo, SGP.22 section 5.3.5; ES12.RegisterEvent/DeleteEvent,
//! sections 5.9.1/5.9.2) and the delivery worker started by [`crate::cli::run`].
//!
//! # Queuing
//!
//! The row builders here (`hdpi`, `es12_register`, `es12_delete`) are attached to the
//! profile transition that causes them ([`smdpp_store::EventRecord::with_outbox`]), so the
//! state change and the call to make commit together or not at all. Each row gets a random
//! stable id, sent as `functionCallIdentifier` on every attempt: the receiver de-duplicates
//! by it (delivery is at-least-once).
//!
//! # Delivery
//!
//! [`OutboxTask`] polls [`Store::claim_outbox`] (a lease, so several workers or nodes never
//! send one row at the same time) and POSTs each row over mutual TLS:
//!
//! - client certificate: CERT.DP.TLS and its key (the server's TLS certificate) unless
//!   [`OutboxConfig::client_cert`]/[`OutboxConfig::client_key`] say otherwise (ES2+ and ES12
//!   are mutually authenticated, section 6.1);
//! - server trust: ONLY the CA certificates of [`OutboxConfig::ca_file`] (operators' and
//!   SM-DSs' TLS CAs). There are deliberately no system roots: an operator callback is a
//!   business-to-business endpoint whose CA is agreed, and the workspace carries no root
//!   store. Without a CA file the worker is not started and rows stay `pending` (nothing
//!   is lost; they go out once a CA file is configured).
//!
//! A `204`, or a `200` whose `header.functionExecutionStatus.status` is `Executed-Success`
//! or `Executed-WithWarning`, is a delivery. For ES12, `Failed` with `8.9.5/3.3` (RegisterEvent:
//! EventID already in use) or `8.9.5/3.9` (DeleteEvent: unknown event) also counts: it is the
//! answer to a repeat of a call whose first answer was lost. Anything else (connection
//! error, time-out, other status) is retried after `initial_backoff * 2^(attempts-1)`, capped
//! at `max_backoff`; the attempt number `max_attempts` that fails makes the row `failed`.
//! Rows are sent one by one in insertion order, so a receiver that is up sees them in order;
//! after failures, order is not guaranteed (retries are per row).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls_pki_types::ServerName;
use smdpp_core::callbacks::{
    self, DeleteEvent, ES12_DELETE_PATH, ES12_REGISTER_PATH, HDPI_PATH, HandleDownloadProgressInfo,
    RegisterEvent,
};
use smdpp_core::status::{FunctionExecutionStatus, StatusCode};
use smdpp_store::{NewOutboxRow, OutboxKind, OutboxRow, Profile, ProfileState, Store, now_ms};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::upp::random_bytes;

/// Outbox delivery settings (part of [`crate::config::Limits`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxConfig {
    /// PEM bundle of the CA certificates trusted for receivers' TLS certificates. `None`:
    /// the worker does not run (rows wait).
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM); default CERT.DP.TLS.
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM); default SK.DP.TLS.
    pub client_key: Option<PathBuf>,
    /// How often the worker looks for due rows (default 1 s).
    pub poll_interval: Duration,
    /// Delay after the first failed attempt (default 1 s); doubled per failure.
    pub initial_backoff: Duration,
    /// Longest delay between attempts (default 10 min).
    pub max_backoff: Duration,
    /// Attempts before a row becomes `failed` (default 12: about 1 h of retries with the
    /// default backoff).
    pub max_attempts: u32,
    /// Connect + TLS + response time limit of one attempt (default 10 s).
    pub request_timeout: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            ca_file: None,
            client_cert: None,
            client_key: None,
            poll_interval: Duration::from_secs(1),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(600),
            max_attempts: 12,
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl OutboxConfig {
    /// The defaults with the `SMDPP_OUTBOX_*` environment overrides applied:
    /// `SMDPP_OUTBOX_CA_FILE`, `SMDPP_OUTBOX_CLIENT_CERT`, `SMDPP_OUTBOX_CLIENT_KEY` (paths),
    /// `SMDPP_OUTBOX_MAX_ATTEMPTS`, `SMDPP_OUTBOX_INITIAL_BACKOFF_MS`,
    /// `SMDPP_OUTBOX_MAX_BACKOFF_MS`, `SMDPP_OUTBOX_POLL_MS`. Unparsable numbers are ignored
    /// (with a warning).
    pub fn from_env() -> OutboxConfig {
        fn num(name: &str) -> Option<u64> {
            let v = std::env::var(name).ok()?;
            match v.trim().parse() {
                Ok(n) => Some(n),
                Err(_) => {
                    tracing::warn!(variable = name, "not a number; ignored");
                    None
                }
            }
        }
        let d = OutboxConfig::default();
        let path = |n: &str| std::env::var_os(n).map(PathBuf::from);
        OutboxConfig {
            ca_file: path("SMDPP_OUTBOX_CA_FILE"),
            client_cert: path("SMDPP_OUTBOX_CLIENT_CERT"),
            client_key: path("SMDPP_OUTBOX_CLIENT_KEY"),
            max_attempts: num("SMDPP_OUTBOX_MAX_ATTEMPTS")
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(d.max_attempts),
            initial_backoff: num("SMDPP_OUTBOX_INITIAL_BACKOFF_MS")
                .map_or(d.initial_backoff, Duration::from_millis),
            max_backoff: num("SMDPP_OUTBOX_MAX_BACKOFF_MS")
                .map_or(d.max_backoff, Duration::from_millis),
            poll_interval: num("SMDPP_OUTBOX_POLL_MS")
                .map_or(d.poll_interval, Duration::from_millis),
            ..d
        }
    }

    /// The delay before attempt `attempts + 1`, after `attempts` (>= 1) failures.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let shift = attempts.saturating_sub(1).min(30);
        self.initial_backoff
            .saturating_mul(1u32 << shift)
            .min(self.max_backoff)
    }
}

// ------------------------------------------------------------------------- row builders

/// A random RFC 4122 version-4 style id. Should the system RNG ever fail, the id is made of
/// the time and a process counter instead (still unique within this process).
pub(crate) fn new_id() -> String {
    static FALLBACK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut b = random_bytes::<16>().unwrap_or_else(|_| {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&now_ms().to_be_bytes());
        let n = FALLBACK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        b[8..].copy_from_slice(&n.to_be_bytes());
        b
    });
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Now as `YYYY-MM-DDThh:mm:ssZ` (the DATETIME of section 6.5.2.5).
fn timestamp_now() -> String {
    let t = OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A HandleDownloadProgressInfo for `p` at Table 32a point `point`, or `None` when the
/// profile belongs to no operator (nobody to notify).
pub(crate) fn hdpi(
    p: &Profile,
    eid: Option<&str>,
    point: u32,
    status: FunctionExecutionStatus,
    final_result: Option<&[u8]>,
) -> Option<NewOutboxRow> {
    let operator = p.operator_id.clone()?;
    let body = HandleDownloadProgressInfo {
        eid: eid.map(str::to_owned).or_else(|| p.eid.clone()),
        iccid: p.iccid.clone(),
        profile_type: p.profile_type.clone().unwrap_or_default(),
        timestamp: timestamp_now(),
        notification_point_id: point,
        notification_point_status: status,
        result_data: final_result.map(|r| base64::engine::general_purpose::STANDARD.encode(r)),
    };
    Some(NewOutboxRow {
        id: new_id(),
        operator_id: Some(operator),
        kind: OutboxKind::Hdpi,
        iccid: Some(p.iccid.clone()),
        target: None,
        body: serde_json::to_string(&body).ok()?,
    })
}

/// A `Failed` HandleDownloadProgressInfo with `code`.
pub(crate) fn hdpi_failed(
    p: &Profile,
    eid: Option<&str>,
    point: u32,
    code: &StatusCode,
) -> Option<NewOutboxRow> {
    hdpi(
        p,
        eid,
        point,
        FunctionExecutionStatus::failed(code, None),
        None,
    )
}

/// `https://<smdsAddress><path>`.
fn smds_url(smds_address: &str, path: &str) -> String {
    let a = smds_address.trim().trim_end_matches('/');
    if a.starts_with("https://") {
        format!("{a}{path}")
    } else {
        format!("https://{a}{path}")
    }
}

/// ES12.RegisterEvent for an order released with an SM-DS address (section 3.6.1: the
/// EventID is the MatchingID, forwardingIndicator true for a profile download event), or
/// `None` when the order has no SM-DS address, EID or MatchingID.
pub(crate) fn es12_register(p: &Profile, rsp_server_address: &str) -> Option<NewOutboxRow> {
    es12_register_with(
        p,
        p.eid.as_deref(),
        p.matching_id.as_deref(),
        p.smds_address.as_deref(),
        rsp_server_address,
    )
}

/// [`es12_register`] for the values `p` is about to get (ConfirmOrder with releaseFlag).
pub(crate) fn es12_register_with(
    p: &Profile,
    eid: Option<&str>,
    matching_id: Option<&str>,
    smds_address: Option<&str>,
    rsp_server_address: &str,
) -> Option<NewOutboxRow> {
    let smds = smds_address?;
    let body = RegisterEvent {
        eid: eid?.to_owned(),
        rsp_server_address: rsp_server_address.to_owned(),
        event_id: matching_id.filter(|m| !m.is_empty())?.to_owned(),
        forwarding_indicator: true,
    };
    Some(NewOutboxRow {
        id: new_id(),
        operator_id: p.operator_id.clone(),
        kind: OutboxKind::Es12Register,
        iccid: Some(p.iccid.clone()),
        target: Some(smds_url(smds, ES12_REGISTER_PATH)),
        body: serde_json::to_string(&body).ok()?,
    })
}

/// ES12.DeleteEvent for the event of `p` (section 3.6.3), or `None` when no event was
/// registered for it: no SM-DS address, EID or MatchingID, or `p` (the profile BEFORE the
/// transition) not Released or Downloaded (the event is registered at release).
pub(crate) fn es12_delete(p: &Profile) -> Option<NewOutboxRow> {
    if !matches!(p.state, ProfileState::Released | ProfileState::Downloaded) {
        return None;
    }
    let smds = p.smds_address.as_deref()?;
    let body = DeleteEvent {
        eid: p.eid.clone()?,
        event_id: p.matching_id.clone()?,
    };
    Some(NewOutboxRow {
        id: new_id(),
        operator_id: p.operator_id.clone(),
        kind: OutboxKind::Es12Delete,
        iccid: Some(p.iccid.clone()),
        target: Some(smds_url(smds, ES12_DELETE_PATH)),
        body: serde_json::to_string(&body).ok()?,
    })
}

/// The DER of `finalResult [2] CHOICE {...}` (tag `A2`) of a ProfileInstallationResult:
/// the `resultData` of point 4 (section 5.3.5: "The finalResult data object as contained in
/// the ProfileInstallationResult").
pub(crate) fn final_result_der(fr: &rsp_asn1::download::FinalResult) -> Vec<u8> {
    use rsp_asn1::Tag;
    use rsp_asn1::codec::{put, write_wrapped};
    use rsp_asn1::download::FinalResult;
    let mut out = Vec::new();
    write_wrapped(&mut out, Tag::context_constructed(2), |o| match fr {
        FinalResult::Success(s) => put(o, Tag::context_constructed(0), s),
        FinalResult::Error(e) => put(o, Tag::context_constructed(1), e),
    });
    out
}

/// Point 4 "BPP installation" for a ProfileInstallationResult (section 3.1.3.3 step 9):
/// `Executed-Success` for a successResult; for an errorResult `Failed` with
/// `8.2.10/4.2` (Bound Profile Package - Execution Error: the code Table 32b gives to
/// loadBppExecutionError; section 5.3.5 names no code for a failed PIR) and the
/// bppCommandId/errorReason as message. `resultData` carries the finalResult.
pub(crate) fn hdpi_pir(
    p: &Profile,
    eid: &str,
    fr: &rsp_asn1::download::FinalResult,
    cause: &str,
) -> Option<NewOutboxRow> {
    use rsp_asn1::download::FinalResult;
    let status = match fr {
        FinalResult::Success(_) => FunctionExecutionStatus::success(),
        FinalResult::Error(_) => FunctionExecutionStatus::failed(
            &callbacks::CANCEL_LOAD_BPP_EXECUTION_ERROR,
            Some(cause.to_owned()),
        ),
    };
    hdpi(
        p,
        Some(eid),
        callbacks::point::BPP_INSTALLATION,
        status,
        Some(&final_result_der(fr)),
    )
}

/// The rows of a terminal ES9+.CancelSession (section 5.6.5 steps 8 and 10): a `Failed`
/// HandleDownloadProgressInfo with the Table 32b code of `reason`, at point 4 "BPP
/// installation" when the BPP was delivered in this session, else at point 2 (the session
/// was cancelled during the Download Confirmation sub-procedure, section 3.1.3.2, before
/// any BPP download); plus the ES12.DeleteEvent of a registered event. `p` is the profile
/// before the transition; nothing for a non-terminal reason.
pub(crate) fn cancel_rows(
    p: Option<&Profile>,
    eid: &str,
    delivered: bool,
    reason: i64,
) -> Vec<NewOutboxRow> {
    let (Some(p), Some(code)) = (p, callbacks::cancel_reason_status(reason)) else {
        return Vec::new();
    };
    let pt = if delivered {
        callbacks::point::BPP_INSTALLATION
    } else {
        callbacks::point::CONFIRMATION_FAILURE
    };
    hdpi_failed(p, Some(eid), pt, &code)
        .into_iter()
        .chain(es12_delete(p))
        .collect()
}

// ------------------------------------------------------------------------------ worker

/// Rows claimed per pass.
const BATCH: u32 = 16;

/// One delivery worker: a TLS client identity, a trust store and the store to drain.
pub struct OutboxWorker {
    store: Store,
    tls: Arc<rustls::ClientConfig>,
    requester: String,
    config: OutboxConfig,
    token: String,
}

impl std::fmt::Debug for OutboxWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxWorker")
            .field("requester", &self.requester)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// What one pass of [`OutboxWorker::run_once`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassCounts {
    /// Rows delivered.
    pub delivered: usize,
    /// Rows scheduled for another attempt.
    pub retried: usize,
    /// Rows given up.
    pub failed: usize,
}

impl OutboxWorker {
    /// A worker sending as `requester` (functionRequesterIdentifier) with the client
    /// certificate `client_cert`/`client_key` (PEM files), trusting only the CAs of
    /// `config.ca_file`.
    pub fn new(
        store: Store,
        requester: impl Into<String>,
        client_cert: &std::path::Path,
        client_key: &std::path::Path,
        config: OutboxConfig,
    ) -> anyhow::Result<OutboxWorker> {
        let ca_file = config
            .ca_file
            .clone()
            .ok_or_else(|| anyhow!("no outbox CA file configured"))?;
        let mut roots = rustls::RootCertStore::empty();
        for c in smdpp_server::tls::load_certificate_chain(&ca_file)
            .with_context(|| format!("outbox CA file {}", ca_file.display()))?
        {
            roots
                .add(c)
                .with_context(|| format!("outbox CA file {}", ca_file.display()))?;
        }
        let chain = smdpp_server::tls::load_certificate_chain(client_cert)
            .context("outbox client certificate")?;
        let key = smdpp_server::tls::load_private_key(client_key).context("outbox client key")?;
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            smdpp_server::tls::es9_crypto_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .context("outbox client certificate/key")?;
        Ok(OutboxWorker {
            store,
            tls: Arc::new(tls),
            requester: requester.into(),
            config,
            token: new_id(),
        })
    }

    /// Claims the rows due now and tries each once.
    pub async fn run_once(&self) -> Result<PassCounts, smdpp_store::StoreError> {
        // The lease covers a whole pass (every row of the batch may take the full time-out)
        // plus a margin, so no row of the batch is taken over while this pass still owns it.
        let lease_ms = i64::try_from(
            self.config
                .request_timeout
                .saturating_mul(BATCH)
                .saturating_add(Duration::from_secs(5))
                .as_millis(),
        )
        .unwrap_or(i64::MAX);
        let rows = self
            .store
            .claim_outbox(now_ms(), BATCH, lease_ms, &self.token)
            .await?;
        let mut counts = PassCounts::default();
        for row in rows {
            let outcome = self.send(&row).await;
            let now = now_ms();
            match outcome {
                Ok(()) => {
                    self.store
                        .outbox_delivered(&row.id, &self.token, now)
                        .await?;
                    tracing::info!(id = %row.id, kind = %row.kind, "outbox call delivered");
                    counts.delivered += 1;
                }
                Err(e) => {
                    let attempts =
                        u32::try_from(row.attempts.saturating_add(1)).unwrap_or(u32::MAX);
                    let error = format!("{e:#}");
                    if attempts >= self.config.max_attempts || e.is::<Permanent>() {
                        self.store
                            .outbox_failed(&row.id, &self.token, now, &error)
                            .await?;
                        tracing::warn!(id = %row.id, kind = %row.kind, attempts, %error, "outbox call failed; giving up");
                        counts.failed += 1;
                    } else {
                        let delay = i64::try_from(self.config.backoff(attempts).as_millis())
                            .unwrap_or(i64::MAX);
                        self.store
                            .outbox_retry(&row.id, &self.token, now.saturating_add(delay), &error)
                            .await?;
                        tracing::info!(id = %row.id, kind = %row.kind, attempts, %error, "outbox call failed; will retry");
                        counts.retried += 1;
                    }
                }
            }
        }
        Ok(counts)
    }

    async fn target(&self, row: &OutboxRow) -> anyhow::Result<String> {
        if let Some(t) = &row.target {
            return Ok(t.clone());
        }
        let op = match &row.operator_id {
            Some(id) => self.store.get_operator(id).await?,
            None => None,
        };
        let base = op
            .and_then(|o| o.callback_url)
            .ok_or_else(|| anyhow::Error::new(Permanent("the operator has no callback URL")))?;
        let base = base.trim().trim_end_matches('/');
        Ok(if base.ends_with(HDPI_PATH) {
            base.to_owned()
        } else {
            format!("{base}{HDPI_PATH}")
        })
    }

    async fn send(&self, row: &OutboxRow) -> anyhow::Result<()> {
        let url = self.target(row).await?;
        let body = callbacks::with_header(&row.body, &self.requester, &row.id)
            .map_err(|_| anyhow::Error::new(Permanent("stored body is not a JSON object")))?;
        let (status, resp) =
            tokio::time::timeout(self.config.request_timeout, post(&self.tls, &url, body))
                .await
                .map_err(|_| anyhow!("time-out"))??;
        accept(row.kind, status, &resp)
    }
}

/// An error retrying cannot fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Permanent(&'static str);

/// Whether the receiver's answer acknowledges the call (see the module documentation).
fn accept(kind: OutboxKind, status: u16, body: &[u8]) -> anyhow::Result<()> {
    if status == 204 || (status == 200 && body.iter().all(u8::is_ascii_whitespace)) {
        return Ok(());
    }
    if status != 200 {
        return Err(anyhow!("HTTP status {status}"));
    }
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| anyhow!("response is not JSON"))?;
    let fes: FunctionExecutionStatus =
        serde_json::from_value(v["header"]["functionExecutionStatus"].clone())
            .map_err(|_| anyhow!("response has no functionExecutionStatus"))?;
    if fes.status.is_executed() {
        return Ok(());
    }
    let code = fes
        .status_code_data
        .as_ref()
        .map(|d| (d.subject_code.as_str(), d.reason_code.as_str()));
    match (kind, code) {
        (OutboxKind::Es12Register, Some(("8.9.5", "3.3")))
        | (OutboxKind::Es12Delete, Some(("8.9.5", "3.9"))) => Ok(()),
        (_, Some((s, r))) => Err(anyhow!("receiver answered {:?} {s}/{r}", fes.status)),
        (_, None) => Err(anyhow!("receiver answered {:?}", fes.status)),
    }
}

/// One HTTPS POST on a fresh connection; returns the status and body.
async fn post(
    tls: &Arc<rustls::ClientConfig>,
    url: &str,
    body: String,
) -> anyhow::Result<(u16, Bytes)> {
    let uri: hyper::Uri = url.parse().map_err(|_| anyhow!("invalid target URL"))?;
    if uri.scheme_str() != Some("https") {
        return Err(anyhow::Error::new(Permanent("target URL is not https")));
    }
    let host = uri
        .host()
        .ok_or_else(|| anyhow::Error::new(Permanent("target URL has no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let name = ServerName::try_from(host.clone())
        .map_err(|_| anyhow::Error::new(Permanent("invalid host in target URL")))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .context("connect")?;
    let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
        .connect(name, tcp)
        .await
        .context("TLS handshake")?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
    let conn = tokio::spawn(conn);
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let req = hyper::Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("X-Admin-Protocol", "gsma/rsp/v2.2.0")
        .body(Full::new(Bytes::from(body)))
        .context("building the request")?;
    let resp = sender.send_request(req).await.context("sending")?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .context("reading the response")?
        .to_bytes();
    conn.abort();
    Ok((status, bytes))
}

/// Starts the delivery worker of a prepared server (called by [`crate::cli::run`]): client
/// identity from [`OutboxConfig::client_cert`]/[`OutboxConfig::client_key`], else the
/// server's CERT.DP.TLS and key; functionRequesterIdentifier = our SM-DP+ address. Without
/// a CA file, or when the TLS identity cannot be loaded, nothing is started (logged) and
/// queued rows stay pending.
pub fn start(prepared: &crate::cli::Prepared) -> OutboxTask {
    let s = &prepared.settings;
    let config = prepared.engine.config().limits.outbox.clone();
    if config.ca_file.is_none() {
        tracing::info!(
            "outbox delivery not started: no CA file (SMDPP_OUTBOX_CA_FILE); queued calls stay pending"
        );
        return OutboxTask::none();
    }
    let cert = config
        .client_cert
        .clone()
        .or_else(|| s.dptls_cert.clone())
        .unwrap_or_else(|| s.pki_dir.join("dptls.pem"));
    let key = config
        .client_key
        .clone()
        .or_else(|| s.dptls_key.clone())
        .unwrap_or_else(|| s.pki_dir.join("dptls.key"));
    match OutboxWorker::new(
        prepared.store.clone(),
        prepared.engine.config().smdp_address.clone(),
        &cert,
        &key,
        config,
    ) {
        Ok(w) => OutboxTask::spawn(w),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "outbox delivery not started; queued calls stay pending");
            OutboxTask::none()
        }
    }
}

/// The running delivery task; [`OutboxTask::stop`] ends it.
#[derive(Debug)]
pub struct OutboxTask {
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl OutboxTask {
    /// Runs `worker` every `poll_interval` until stopped.
    pub fn spawn(worker: OutboxWorker) -> OutboxTask {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(worker.config.poll_interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticks.tick() => {}
                }
                // A pass is not interrupted by stop: its leases would otherwise block the
                // rows until they run out.
                if let Err(e) = worker.run_once().await {
                    tracing::warn!(error = %e, "outbox pass failed; retrying next interval");
                }
            }
        });
        OutboxTask {
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// A task that does nothing (no worker configured).
    pub fn none() -> OutboxTask {
        OutboxTask {
            stop: None,
            handle: None,
        }
    }

    /// Stops the task after the pass in progress (if any).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take()
            && let Err(e) = handle.await
        {
            tracing::warn!(error = %e, "outbox task ended abnormally");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let c = OutboxConfig {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            ..OutboxConfig::default()
        };
        assert_eq!(c.backoff(1), Duration::from_millis(10));
        assert_eq!(c.backoff(2), Duration::from_millis(20));
        assert_eq!(c.backoff(3), Duration::from_millis(40));
        assert_eq!(c.backoff(4), Duration::from_millis(50));
        assert_eq!(c.backoff(100), Duration::from_millis(50));
    }

    #[test]
    fn ids_are_uuid_shaped_and_distinct() {
        let a = new_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, new_id());
    }

    #[test]
    fn accepts_and_rejects() {
        assert!(accept(OutboxKind::Hdpi, 204, b"").is_ok());
        assert!(accept(OutboxKind::Hdpi, 500, b"").is_err());
        let ok = br#"{"header":{"functionExecutionStatus":{"status":"Executed-Success"}}}"#;
        assert!(accept(OutboxKind::Es12Register, 200, ok).is_ok());
        let dup = br#"{"header":{"functionExecutionStatus":{"status":"Failed","statusCodeData":{"subjectCode":"8.9.5","reasonCode":"3.3"}}}}"#;
        assert!(accept(OutboxKind::Es12Register, 200, dup).is_ok());
        assert!(accept(OutboxKind::Es12Delete, 200, dup).is_err());
        assert!(accept(OutboxKind::Hdpi, 200, b"not json").is_err());
    }
}

// --------------------------------------------------------------------------------- CLI

/// `smdpp outbox ...`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum OutboxCommand {
    /// Queued outbound calls (HandleDownloadProgressInfo, ES12), oldest first.
    List {
        /// Data location and configuration file.
        #[command(flatten)]
        data: crate::cli::DataArgs,
        /// Only rows in this state.
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// At most this many rows.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

/// `--state` of `smdpp outbox list`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateArg {
    /// Waiting for an attempt.
    Pending,
    /// Acknowledged by the receiver.
    Delivered,
    /// Given up.
    Failed,
}

impl From<StateArg> for smdpp_store::OutboxState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Pending => smdpp_store::OutboxState::Pending,
            StateArg::Delivered => smdpp_store::OutboxState::Delivered,
            StateArg::Failed => smdpp_store::OutboxState::Failed,
        }
    }
}

/// One line per row: id, state, kind, attempts, ICCID, operator, last error. Bodies are not
/// printed (they hold EIDs).
pub fn format_rows(rows: &[OutboxRow]) -> String {
    let mut out = String::from("ID\tSTATE\tKIND\tATTEMPTS\tICCID\tOPERATOR\tLAST ERROR\n");
    for r in rows {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            r.id,
            r.state,
            r.kind,
            r.attempts,
            r.iccid.as_deref().unwrap_or("-"),
            r.operator_id.as_deref().unwrap_or("-"),
            r.last_error.as_deref().unwrap_or("-"),
        ));
    }
    out
}

/// Runs an `smdpp outbox` command.
pub async fn outbox_command(cmd: OutboxCommand) -> anyhow::Result<()> {
    match cmd {
        OutboxCommand::List { data, state, limit } => {
            let f = crate::cli::load_file(&data)?;
            let (dir, url) = crate::cli::data_location(&data, &f)?;
            let (store, _) = crate::cli::open_store(&dir, &url).await?;
            let rows = store.list_outbox(state.map(Into::into), limit).await?;
            print!("{}", format_rows(&rows));
            store.close().await;
        }
    }
    Ok(())
}

/// [`outbox_command`] on a current-thread tokio runtime.
pub fn outbox_blocking(cmd: OutboxCommand) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(outbox_command(cmd))
}
