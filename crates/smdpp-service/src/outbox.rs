//! Outbound calls through the durable outbox of `smdpp-store`: what is queued
//! (ES2+.HandleDownloadProgressInfo, SGP.22 section 5.3.5; ES12.RegisterEvent/DeleteEvent,
//! sections 5.9.1/5.9.2) and the delivery worker started by [`crate::assembly::run`].
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
//! - server trust, chosen per row:
//!   - the HandleDownloadProgressInfo of an operator registered with a CA of its own
//!     (`smdpp operators add --callback-ca`, [`smdpp_store::Operator::callback_ca`]): exactly
//!     the CAs of that bundle, nothing else (an operator callback is a business-to-business
//!     endpoint whose CA may be agreed with that operator alone);
//!   - every other row (operators without a CA of their own, ES12 calls to SM-DSs): the
//!     system's trust roots (`rustls-native-certs`, loaded once per process; a warning when
//!     there are none) plus the CAs of [`OutboxConfig::ca_file`] (`SMDPP_OUTBOX_CA_FILE`),
//!     if set.
//!
//!   The rustls configuration of each operator is built once and cached; it is rebuilt
//!   when the operator's CA text changes.
//!
//! The worker always runs. Only when its TLS client identity cannot be loaded is it not
//! started (logged); rows then stay `pending` (nothing is lost). At start, [`check_operators`]
//! warns about every operator whose callbacks cannot be delivered: a callback URL that is
//! not an `https://` URL with a host ([`check_callback_url`]), or a CA of its own that no
//! longer parses ([`callback_roots`]). A receiver whose certificate does not chain to the
//! trusted CAs fails the TLS handshake: the row is retried like any other failed attempt,
//! with the reason in `last_error`.
//!
//! A `204`, or a `200` whose `header.functionExecutionStatus.status` is `Executed-Success`
//! or `Executed-WithWarning`, is a delivery. For ES12, `Failed` with `8.9.5/3.3` (RegisterEvent:
//! EventID already in use) or `8.9.5/3.9` (DeleteEvent: unknown event) also counts: it is the
//! answer to a repeat of a call whose first answer was lost. Anything else (connection
//! error, time-out, other status) is retried after `initial_backoff * 2^(attempts-1)`, capped
//! at `max_backoff`; the attempt number `max_attempts` that fails makes the row `failed`.
//! Rows are sent one by one in insertion order, so a receiver that is up sees them in order;
//! after failures, order is not guaranteed (retries are per row).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use anyhow::{Context, anyhow};
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use smdpp_core::callbacks::{
    self, DeleteEvent, ES12_DELETE_PATH, ES12_REGISTER_PATH, HDPI_PATH, HandleDownloadProgressInfo,
    RegisterEvent,
};
use smdpp_core::status::{FunctionExecutionStatus, StatusCode};
use smdpp_store::{
    NewOutboxRow, OutboxKind, OutboxRow, Profile, ProfileFilter, ProfileState, Store, now_ms,
};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::upp::random_bytes;

/// Outbox delivery settings (part of [`crate::config::Limits`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxConfig {
    /// PEM bundle of CA certificates trusted, in addition to the system's trust roots, for
    /// the TLS certificates of SM-DSs and of operators without a CA of their own
    /// (`SMDPP_OUTBOX_CA_FILE`). `None`: the system's trust roots only.
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
        deactivation_reason: None,
        deactivation_mode: None,
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

// ------------------------------------------------------------------------------- trust

/// Why a callback CA bundle (`smdpp operators add --callback-ca`) cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackCaError {
    /// The text holds no PEM `CERTIFICATE` block.
    #[error("no certificate in it")]
    Empty,
    /// A PEM block is malformed.
    #[error("not a well-formed PEM bundle")]
    Pem,
    /// The certificate at this position (1-based) is not a parseable X.509 certificate.
    #[error("certificate {0} does not parse")]
    Certificate(usize),
}

/// The trust anchors of a callback CA bundle (PEM text): at least one certificate, and every
/// certificate in it parses (other PEM blocks are ignored).
pub fn callback_roots(pem: &str) -> Result<rustls::RootCertStore, CallbackCaError> {
    let mut roots = rustls::RootCertStore::empty();
    for (i, c) in CertificateDer::pem_slice_iter(pem.as_bytes()).enumerate() {
        let c = c.map_err(|_| CallbackCaError::Pem)?;
        roots
            .add(c)
            .map_err(|_| CallbackCaError::Certificate(i + 1))?;
    }
    if roots.is_empty() {
        return Err(CallbackCaError::Empty);
    }
    Ok(roots)
}

/// `Ok` for a URL the worker can POST callbacks to: `https://` with a host, no user
/// information and no query (the function path is appended to it); otherwise why not.
pub fn check_callback_url(url: &str) -> Result<(), &'static str> {
    let url = url.trim();
    if !url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        return Err("not an https:// URL");
    }
    let uri: hyper::Uri = url.parse().map_err(|_| "not a URL")?;
    if uri.scheme_str() != Some("https") {
        return Err("not an https:// URL");
    }
    let authority = uri.authority().ok_or("no host")?;
    if authority.as_str().contains('@') {
        return Err("user information is not allowed in it");
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return Err("no host");
    }
    ServerName::try_from(host.to_owned()).map_err(|_| "invalid host")?;
    if uri.query().is_some() {
        return Err("a query is not allowed in it");
    }
    Ok(())
}

/// The system's trust roots, loaded once per process (`rustls-native-certs`: the platform's
/// store, or `SSL_CERT_FILE`/`SSL_CERT_DIR`). Logs a warning when there are none.
pub(crate) fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() {
            let errors = found
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            tracing::warn!(
                errors = %errors,
                "no system trust roots found: callbacks to operators without --callback-ca \
                 and ES12 calls are trusted only through SMDPP_OUTBOX_CA_FILE"
            );
        } else {
            for e in &found.errors {
                tracing::debug!(error = %e, "system trust roots: a source could not be read");
            }
            tracing::debug!(count = found.certs.len(), "system trust roots loaded");
        }
        found.certs
    })
}

/// An operator whose callbacks cannot be delivered, found by [`check_operators`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackProblem {
    /// The operator.
    pub operator_id: String,
    /// What is wrong (the URL itself is not repeated: it may carry more than an address).
    pub reason: String,
}

/// Checks the callback settings of every registered operator and logs a warning for each
/// operator whose callbacks cannot be delivered (a callback URL that fails
/// [`check_callback_url`], a CA of its own that fails [`callback_roots`]); an operator with
/// no callback URL that owns profiles is only worth an info line. Returns the problems.
pub async fn check_operators(
    store: &Store,
) -> Result<Vec<CallbackProblem>, smdpp_store::StoreError> {
    let mut problems = Vec::new();
    for op in store.list_operators().await? {
        let mut reasons = Vec::new();
        match op.callback_url.as_deref() {
            Some(url) => {
                if let Err(r) = check_callback_url(url) {
                    reasons.push(format!("callback URL: {r}"));
                }
            }
            None => {
                let owned = store
                    .list_profiles(&ProfileFilter {
                        operator_id: Some(op.id.clone()),
                        limit: Some(1),
                        ..ProfileFilter::default()
                    })
                    .await?;
                if !owned.is_empty() {
                    tracing::info!(
                        "operator {}: no callback URL; the download progress of its profiles \
                         is not reported (ES2+.HandleDownloadProgressInfo)",
                        op.id
                    );
                }
            }
        }
        match op.callback_ca.as_deref().map(callback_roots) {
            Some(Err(e)) => reasons.push(format!("callback CA: {e}")),
            Some(Ok(roots)) => tracing::debug!(
                "operator {}: callbacks trust its own CA ({} certificates)",
                op.id,
                roots.len()
            ),
            None => tracing::debug!(
                "operator {}: callbacks trust the system roots and SMDPP_OUTBOX_CA_FILE",
                op.id
            ),
        }
        for reason in reasons {
            tracing::warn!(
                "operator {}: callbacks cannot be delivered: {reason}",
                op.id
            );
            problems.push(CallbackProblem {
                operator_id: op.id.clone(),
                reason,
            });
        }
    }
    Ok(problems)
}

/// The worker's TLS client identity (CERT.DP.TLS or the configured one) and crypto provider,
/// from which each trust store's client configuration is built.
struct ClientIdentity {
    provider: Arc<rustls::crypto::CryptoProvider>,
    chain: Vec<CertificateDer<'static>>,
    key: ClientKey,
}

/// The client key: a PEM file, or a key on the PKCS#11 token (`pkcs11:object=LABEL`).
enum ClientKey {
    File(PrivateKeyDer<'static>),
    Token(Arc<dyn rustls::sign::SigningKey>),
}

/// Always presents the one certificate whose key is on the token.
#[derive(Debug)]
struct TokenClientCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for TokenClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl ClientIdentity {
    /// A client configuration presenting this identity and trusting exactly `roots`.
    fn config(&self, roots: rustls::RootCertStore) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_root_certificates(roots);
        let tls = match &self.key {
            ClientKey::File(key) => builder
                .with_client_auth_cert(self.chain.clone(), key.clone_key())
                .context("outbox client certificate/key")?,
            ClientKey::Token(key) => {
                let certified =
                    rustls::sign::CertifiedKey::new(self.chain.clone(), Arc::clone(key));
                certified
                    .keys_match()
                    .context("outbox client certificate/key on the token")?;
                builder.with_client_cert_resolver(Arc::new(TokenClientCert(Arc::new(certified))))
            }
        };
        Ok(Arc::new(tls))
    }
}

/// The client configuration of one operator with a CA of its own, and the CA text it was
/// built from.
struct OperatorTls {
    ca_pem: String,
    tls: Arc<rustls::ClientConfig>,
}

/// Client configurations per operator id, rebuilt when the operator's CA text changes.
#[derive(Default)]
struct OperatorTlsCache(Mutex<HashMap<String, OperatorTls>>);

impl OperatorTlsCache {
    /// The configuration for operator `id` whose CA bundle is `ca_pem`.
    fn get(
        &self,
        identity: &ClientIdentity,
        id: &str,
        ca_pem: &str,
    ) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = cache.get(id)
            && c.ca_pem == ca_pem
        {
            return Ok(Arc::clone(&c.tls));
        }
        let roots =
            callback_roots(ca_pem).map_err(|e| anyhow!("the callback CA of operator {id}: {e}"))?;
        let tls = identity.config(roots)?;
        cache.insert(
            id.to_owned(),
            OperatorTls {
                ca_pem: ca_pem.to_owned(),
                tls: Arc::clone(&tls),
            },
        );
        Ok(tls)
    }

    /// Forgets operator `id` (it no longer has a CA of its own).
    fn forget(&self, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

// ------------------------------------------------------------------------------ worker

/// Rows claimed per pass.
const BATCH: u32 = 16;

/// One delivery worker: a TLS client identity, its trust stores and the store to drain.
pub struct OutboxWorker {
    store: Store,
    identity: ClientIdentity,
    /// System roots + [`OutboxConfig::ca_file`].
    default_tls: Arc<rustls::ClientConfig>,
    operator_tls: OperatorTlsCache,
    requester: String,
    config: OutboxConfig,
    token: String,
    /// The profile factory: opens the subscriber secrets a core network is provisioned
    /// with, and the webhooks' signing secrets.
    factory: Option<Arc<crate::factory::Factory>>,
    /// TLS client configurations for webhook endpoints (no client certificate).
    webhook_tls: crate::webhooks::WebhookTls,
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
    /// certificate `client_cert`/`client_key` (PEM files). Receivers are trusted as the
    /// module documentation says: an operator's own CA bundle when it has one, else the
    /// system's trust roots plus the CAs of `config.ca_file`.
    pub fn new(
        store: Store,
        requester: impl Into<String>,
        client_cert: &std::path::Path,
        client_key: &std::path::Path,
        config: OutboxConfig,
    ) -> anyhow::Result<OutboxWorker> {
        Self::new_with_token(store, requester, client_cert, client_key, config, None)
    }

    /// [`OutboxWorker::new`]; a `client_key` of the form `pkcs11:object=LABEL` is a P-256
    /// key on `token`.
    pub fn new_with_token(
        store: Store,
        requester: impl Into<String>,
        client_cert: &std::path::Path,
        client_key: &std::path::Path,
        config: OutboxConfig,
        token: Option<&Arc<rsp_hsm::Token>>,
    ) -> anyhow::Result<OutboxWorker> {
        let mut roots = rustls::RootCertStore::empty();
        let (_, ignored) = roots.add_parsable_certificates(system_roots().iter().cloned());
        if ignored > 0 {
            tracing::debug!(ignored, "system trust roots that do not parse were skipped");
        }
        if let Some(ca_file) = &config.ca_file {
            for c in smdpp_server::tls::load_certificate_chain(ca_file)
                .with_context(|| format!("outbox CA file {}", ca_file.display()))?
            {
                roots
                    .add(c)
                    .with_context(|| format!("outbox CA file {}", ca_file.display()))?;
            }
        }
        let chain = smdpp_server::tls::load_certificate_chain(client_cert)
            .context("outbox client certificate")?;
        let key = match crate::hsm::token_key(client_key, token).context("outbox client key")? {
            Some(k) => ClientKey::Token(Arc::new(
                smdpp_server::tls::CustodySigningKey::new(k).ok_or_else(|| {
                    anyhow::anyhow!("outbox client key: the key on the token must be P-256")
                })?,
            )),
            None => ClientKey::File(
                smdpp_server::tls::load_private_key(client_key).context("outbox client key")?,
            ),
        };
        let identity = ClientIdentity {
            provider: Arc::new(smdpp_server::tls::es9_crypto_provider()),
            chain,
            key,
        };
        let webhook_tls = crate::webhooks::WebhookTls::new(config.ca_file.as_deref())?;
        let trusted = roots.len();
        let default_tls = identity.config(roots)?;
        tracing::debug!(
            trusted,
            ca_file = config.ca_file.is_some(),
            "outbox default trust: system roots and SMDPP_OUTBOX_CA_FILE"
        );
        Ok(OutboxWorker {
            store,
            identity,
            default_tls,
            operator_tls: OperatorTlsCache::default(),
            requester: requester.into(),
            config,
            token: new_id(),
            factory: None,
            webhook_tls,
        })
    }

    /// Gives the worker the profile factory (needed for `core-network` and `webhook` rows;
    /// without it they fail with a clear error and are retried).
    pub fn with_factory(mut self, factory: Option<Arc<crate::factory::Factory>>) -> Self {
        self.factory = factory;
        self
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
                    if attempts >= self.config.max_attempts
                        || e.is::<Permanent>()
                        || e.is::<PermanentError>()
                    {
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

    /// Where `row` goes and the TLS client configuration to go there with.
    async fn route(&self, row: &OutboxRow) -> anyhow::Result<(String, Arc<rustls::ClientConfig>)> {
        if let Some(t) = &row.target {
            // ES12: an SM-DS.
            return Ok((t.clone(), Arc::clone(&self.default_tls)));
        }
        let op = match &row.operator_id {
            Some(id) => self.store.get_operator(id).await?,
            None => None,
        };
        let Some(op) = op else {
            return Err(anyhow::Error::new(Permanent(
                "the operator is not registered",
            )));
        };
        let base = op
            .callback_url
            .as_deref()
            .ok_or_else(|| anyhow::Error::new(Permanent("the operator has no callback URL")))?;
        let tls = match op.callback_ca.as_deref() {
            Some(pem) => self.operator_tls.get(&self.identity, &op.id, pem)?,
            None => {
                self.operator_tls.forget(&op.id);
                Arc::clone(&self.default_tls)
            }
        };
        let base = base.trim().trim_end_matches('/');
        let url = if base.ends_with(HDPI_PATH) {
            base.to_owned()
        } else {
            format!("{base}{HDPI_PATH}")
        };
        Ok((url, tls))
    }

    async fn send_webhook(&self, row: &OutboxRow) -> anyhow::Result<()> {
        let Some(f) = self.factory.as_deref() else {
            return Err(anyhow!(
                "no profile factory: webhook secrets cannot be opened"
            ));
        };
        crate::webhooks::deliver_row(
            f,
            &self.store,
            &self.webhook_tls,
            row,
            self.config.request_timeout,
        )
        .await
        .map(|_| ())
        .map_err(crate::webhooks::DeliveryError::into_outbox_error)
    }

    async fn send(&self, row: &OutboxRow) -> anyhow::Result<()> {
        match row.kind {
            OutboxKind::CoreNetwork => {
                return crate::core_network::deliver(
                    &self.store,
                    self.factory.as_deref(),
                    row,
                    self.config.request_timeout,
                )
                .await;
            }
            OutboxKind::Webhook => return self.send_webhook(row).await,
            OutboxKind::Hdpi | OutboxKind::Es12Register | OutboxKind::Es12Delete => {}
        }
        let (url, tls) = self.route(row).await?;
        let body = callbacks::with_header(&row.body, &self.requester, &row.id)
            .map_err(|_| anyhow::Error::new(Permanent("stored body is not a JSON object")))?;
        let (status, resp) =
            tokio::time::timeout(self.config.request_timeout, post(&tls, &url, body))
                .await
                .map_err(|_| anyhow!("time-out"))??;
        accept(row.kind, status, &resp)
    }
}

/// An error retrying cannot fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Permanent(&'static str);

/// An error retrying cannot fix, with its own message (core networks, webhooks): the row
/// fails at once.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct PermanentError(pub String);

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

/// Starts the delivery worker of a prepared server (called by [`crate::assembly::run`]): client
/// identity from [`OutboxConfig::client_cert`]/[`OutboxConfig::client_key`], else the
/// server's CERT.DP.TLS and key; functionRequesterIdentifier = our SM-DP+ address. Also
/// runs [`check_operators`] once (its warnings name each operator whose callbacks cannot be
/// delivered). When the TLS identity cannot be loaded the worker is not started (logged)
/// and queued rows stay pending.
pub fn start(prepared: &crate::assembly::Prepared) -> OutboxTask {
    let s = &prepared.settings;
    let config = prepared.engine.config().limits.outbox.clone();
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
    let store = prepared.store.clone();
    let check = tokio::spawn(async move {
        if let Err(e) = check_operators(&store).await {
            tracing::warn!(error = %e, "could not check the operators' callback settings");
        }
    });
    // The token serve logged in to (cached: no second login).
    let token = match &s.pkcs11 {
        Some(p) => match p.open() {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "outbox: the PKCS#11 token");
                None
            }
        },
        None => None,
    };
    let mut task = match OutboxWorker::new_with_token(
        prepared.store.clone(),
        prepared.engine.config().smdp_address.clone(),
        &cert,
        &key,
        config,
        token.as_ref(),
    ) {
        Ok(w) => {
            let w = w.with_factory(prepared.engine.factory().cloned());
            tracing::info!("outbox delivery started");
            OutboxTask::spawn(w)
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "outbox delivery not started; queued calls stay pending");
            OutboxTask::none()
        }
    };
    task.check = Some(check);
    task
}

/// The running delivery task; [`OutboxTask::stop`] ends it.
#[derive(Debug)]
pub struct OutboxTask {
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
    /// The start-up [`check_operators`] of [`start`].
    check: Option<JoinHandle<()>>,
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
            check: None,
        }
    }

    /// A task that does nothing (no worker configured).
    pub fn none() -> OutboxTask {
        OutboxTask {
            stop: None,
            handle: None,
            check: None,
        }
    }

    /// Stops the task after the pass in progress (if any).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(check) = self.check.take() {
            // Only reads: nothing is lost when it is cut short.
            check.abort();
            let _ = check.await;
        }
        if let Some(handle) = self.handle.take()
            && let Err(e) = handle.await
        {
            tracing::warn!(error = %e, "outbox task ended abnormally");
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

    fn self_signed(cn: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![format!("{cn}.example")]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        (params.self_signed(&key).unwrap(), key)
    }

    #[test]
    fn callback_roots_need_parseable_certificates() {
        let (a, _) = self_signed("ca-a");
        let (b, _) = self_signed("ca-b");
        assert_eq!(callback_roots(&a.pem()).unwrap().len(), 1);
        let both = format!("{}{}", a.pem(), b.pem());
        assert_eq!(callback_roots(&both).unwrap().len(), 2);
        assert_eq!(
            callback_roots("not a certificate").unwrap_err(),
            CallbackCaError::Empty
        );
        assert_eq!(callback_roots("").unwrap_err(), CallbackCaError::Empty);
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(
            callback_roots(&format!("{}{junk}", a.pem())).unwrap_err(),
            CallbackCaError::Certificate(2)
        );
        assert_eq!(
            callback_roots("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
                .unwrap_err(),
            CallbackCaError::Pem
        );
    }

    #[test]
    fn rejects_callback_urls_that_cannot_be_delivered_to() {
        for ok in [
            "https://op.example",
            "https://op.example/es2/",
            "HTTPS://op.example:8443/es2",
            "https://127.0.0.1:9443",
            "https://[::1]:9443/x",
        ] {
            assert_eq!(check_callback_url(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("http://op.example/es2", "not an https:// URL"),
            ("op.example/es2", "not an https:// URL"),
            ("ftp://op.example", "not an https:// URL"),
            ("", "not an https:// URL"),
            ("https://", "not a URL"),
            ("https://op example/", "not a URL"),
            (
                "https://user:secret@op.example/",
                "user information is not allowed in it",
            ),
            ("https://op.example/es2?x=1", "a query is not allowed in it"),
        ] {
            assert_eq!(check_callback_url(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn operator_configurations_are_cached_until_the_ca_changes() {
        let (client, client_key) = self_signed("smdp");
        let identity = ClientIdentity {
            provider: Arc::new(smdpp_server::tls::es9_crypto_provider()),
            chain: vec![client.der().clone()],
            key: ClientKey::File(PrivateKeyDer::Pkcs8(client_key.serialize_der().into())),
        };
        let (a, _) = self_signed("ca-a");
        let (b, _) = self_signed("ca-b");
        let cache = OperatorTlsCache::default();
        let first = cache.get(&identity, "op-a", &a.pem()).unwrap();
        let again = cache.get(&identity, "op-a", &a.pem()).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "same CA text: cached");
        let other = cache.get(&identity, "op-b", &a.pem()).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &other),
            "one configuration per operator"
        );
        let changed = cache.get(&identity, "op-a", &b.pem()).unwrap();
        assert!(!Arc::ptr_eq(&first, &changed), "new CA text: rebuilt");
        let err = cache.get(&identity, "op-a", "garbage").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the callback CA of operator op-a: no certificate in it"
        );
        cache.forget("op-a");
        let rebuilt = cache.get(&identity, "op-a", &b.pem()).unwrap();
        assert!(!Arc::ptr_eq(&changed, &rebuilt), "forgotten: rebuilt");
    }
}
