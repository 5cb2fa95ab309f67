//! Certificate revocation for the server (SGP.22 section 4.6; the checks of
//! ES9+.AuthenticateClient, section 5.6.3, and of section 4.5.2.2 "not have been revoked").
//!
//! - [`RevocationConfig`]: CRL files (`serve --crl`), CRL URLs (`--crl-url`, plain `http://`,
//!   the scheme SGP.22 section 4.5.2.1.3 gives CRL distribution points), the refresh
//!   interval, the [`StalePolicy`] and how early our own certificates' expiry is warned about.
//! - [`Revocation`]: the current [`RevocationSet`] as an immutable snapshot behind
//!   `RwLock<Arc<..>>`; the ES9+ hot path takes a read lock and clones the `Arc`, never
//!   touches disk or database. A refresh builds a new set and swaps it in.
//! - [`load`]: at start-up, every file must parse and verify (a bad file is a start-up error);
//!   every URL is fetched once (a failed fetch is a warning: the server starts without it).
//! - [`check_own_certificates`]: our DPauth, DPpb and DPtls certificates against the CI CRL
//!   (a revoked one is a start-up error; a stale CRL only a warning here), and a warning for
//!   each own or CI certificate that expires within [`RevocationConfig::cert_expiry_warn`].
//! - [`RefreshTask`]: every [`RevocationConfig::refresh`], re-reads the files and re-fetches
//!   the URLs; a CRL that fails (unreachable, malformed, bad signature, older than the one
//!   held) is logged and the last good one kept. It also repeats the expiry warnings.
//!
//! An issuer for which no CRL is configured is not checked: its certificates are accepted.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use rsp_pki::{
    CertRole, Certificate, Crl, MAX_CRL_LEN, PkiError, RevocationSet, StalePolicy, TrustStore,
    ValidatedEuicc,
};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Default [`RevocationConfig::refresh`]: one hour.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);
/// Default [`RevocationConfig::cert_expiry_warn`]: 30 days.
pub const DEFAULT_EXPIRY_WARN_DAYS: u64 = 30;
/// How long one CRL download may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Where CRLs come from and how they are used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationConfig {
    /// CRL files (DER or PEM), read at start and at every refresh.
    pub files: Vec<PathBuf>,
    /// CRL URLs (`http://`), fetched at start and at every refresh.
    pub urls: Vec<String>,
    /// Refresh interval (default one hour); zero disables refreshing.
    pub refresh: Duration,
    /// What a CRL past nextUpdate does (default [`StalePolicy::Refuse`]).
    pub stale_policy: StalePolicy,
    /// Warn when one of our certificates (or a trusted CI) expires within this
    /// (default 30 days; zero disables the warning).
    pub cert_expiry_warn: Duration,
}

impl Default for RevocationConfig {
    fn default() -> RevocationConfig {
        RevocationConfig {
            files: Vec::new(),
            urls: Vec::new(),
            refresh: DEFAULT_REFRESH,
            stale_policy: StalePolicy::Refuse,
            cert_expiry_warn: Duration::from_secs(DEFAULT_EXPIRY_WARN_DAYS * 86_400),
        }
    }
}

/// Checks a CRL URL: `http://host[:port]/path`.
pub fn validate_url(url: &str) -> Result<()> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| anyhow!("CRL URL {url:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("CRL URL {url:?}: only http:// is supported (SGP.22 section 4.5.2.1.3)");
    }
    if uri.host().is_none_or(str::is_empty) {
        bail!("CRL URL {url:?} has no host");
    }
    Ok(())
}

/// The current CRLs and the stale-CRL policy, shared by the engine and the refresh task.
#[derive(Debug)]
pub struct Revocation {
    current: RwLock<Arc<RevocationSet>>,
    policy: StalePolicy,
    /// Unix seconds of the last "stale CRL used" warning (rate limit: one a minute).
    last_stale_warning: AtomicI64,
}

impl Default for Revocation {
    fn default() -> Revocation {
        Revocation::new(RevocationSet::new(), StalePolicy::Refuse)
    }
}

impl Revocation {
    /// Holds `set` under `policy`.
    pub fn new(set: RevocationSet, policy: StalePolicy) -> Revocation {
        Revocation {
            current: RwLock::new(Arc::new(set)),
            policy,
            last_stale_warning: AtomicI64::new(0),
        }
    }

    /// The current set.
    pub fn snapshot(&self) -> Arc<RevocationSet> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Replaces the current set.
    pub fn replace(&self, set: RevocationSet) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(set);
    }

    /// The stale-CRL policy.
    pub fn policy(&self) -> StalePolicy {
        self.policy
    }

    /// Checks a validated eUICC chain against the current CRLs (see
    /// [`RevocationSet::check_euicc`]); a stale CRL used under [`StalePolicy::Warn`] is logged
    /// (at most once a minute).
    pub fn check_euicc(&self, trust: &TrustStore, chain: &ValidatedEuicc) -> Result<(), PkiError> {
        let now = OffsetDateTime::now_utc();
        let r = self
            .snapshot()
            .check_euicc(trust, chain, now, self.policy)?;
        if !r.stale.is_empty() {
            let secs = now.unix_timestamp();
            let last = self.last_stale_warning.load(Ordering::Relaxed);
            if secs - last >= 60
                && self
                    .last_stale_warning
                    .compare_exchange(last, secs, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::warn!(
                    crls = ?r.stale,
                    "CRL past its nextUpdate used (crl stale policy: warn); refresh it"
                );
            }
        }
        Ok(())
    }
}

/// Adds the CRL in `bytes` (from `source`) to `set`; `Ok(true)` when it was new.
fn add_bytes(
    set: &mut RevocationSet,
    bytes: &[u8],
    source: &str,
    trust: &TrustStore,
) -> Result<bool, rsp_pki::CrlError> {
    let crl = Crl::from_bytes(bytes)?;
    let added = set.add(crl, source, trust, OffsetDateTime::now_utc())?;
    Ok(added == rsp_pki::Added::Installed)
}

fn describe(set: &RevocationSet, source: &str) {
    if let Some(e) = set.iter().find(|e| e.source() == source) {
        let c = e.crl();
        tracing::info!(
            source,
            issuer = ?e.kind(),
            crl_number = %c.crl_number_hex(),
            revoked = c.revoked_count(),
            next_update = %c.next_update(),
            "CRL loaded"
        );
    }
}

/// Fetches one CRL over plain HTTP (GET), at most [`MAX_CRL_LEN`] bytes.
pub async fn fetch(url: &str) -> Result<Vec<u8>> {
    tokio::time::timeout(FETCH_TIMEOUT, fetch_inner(url))
        .await
        .map_err(|_| anyhow!("timed out after {} s", FETCH_TIMEOUT.as_secs()))?
}

async fn fetch_inner(url: &str) -> Result<Vec<u8>> {
    use http_body_util::BodyExt;
    validate_url(url)?;
    let uri: hyper::Uri = url.parse().map_err(|_| anyhow!("not a URL"))?;
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .context("connect")?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .context("HTTP handshake")?;
    let conn = tokio::spawn(conn);
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let req = hyper::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(hyper::header::HOST, authority)
        .header(hyper::header::ACCEPT, "application/pkix-crl")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .context("building the request")?;
    let resp = sender.send_request(req).await.context("sending")?;
    let status = resp.status();
    if !status.is_success() {
        conn.abort();
        bail!("HTTP status {}", status.as_u16());
    }
    let limited = http_body_util::Limited::new(resp.into_body(), MAX_CRL_LEN);
    let body = limited
        .collect()
        .await
        .map_err(|e| anyhow!("reading the response: {e}"))?
        .to_bytes();
    conn.abort();
    Ok(body.to_vec())
}

/// Builds the start-up set: every file must load (error otherwise); every URL is fetched
/// once, a failure only logged.
pub async fn load(config: &RevocationConfig, trust: &TrustStore) -> Result<RevocationSet> {
    let mut set = RevocationSet::new();
    for f in &config.files {
        let source = f.display().to_string();
        let bytes = std::fs::read(f).with_context(|| format!("reading the CRL {source}"))?;
        add_bytes(&mut set, &bytes, &source, trust).with_context(|| format!("CRL {source}"))?;
        describe(&set, &source);
    }
    for url in &config.urls {
        match fetch(url).await {
            Ok(bytes) => match add_bytes(&mut set, &bytes, url, trust) {
                Ok(_) => describe(&set, url),
                Err(e) => {
                    tracing::warn!(url = %url, error = %e, "CRL from URL refused; not used until a refresh succeeds")
                }
            },
            Err(e) => {
                tracing::warn!(url = %url, error = %e, "CRL download failed; not used until a refresh succeeds")
            }
        }
    }
    Ok(set)
}

/// One refresh: a copy of `current` with every file re-read and every URL re-fetched; a
/// source that fails keeps what `current` holds (logged).
pub async fn refresh_once(
    config: &RevocationConfig,
    trust: &TrustStore,
    current: &RevocationSet,
) -> RevocationSet {
    let mut set = current.clone();
    let apply = |set: &mut RevocationSet, bytes: Result<Vec<u8>>, source: &str| match bytes
        .and_then(|b| add_bytes(set, &b, source, trust).map_err(anyhow::Error::new))
    {
        Ok(true) => describe(set, source),
        Ok(false) => tracing::debug!(source, "CRL unchanged"),
        Err(e) => tracing::warn!(
            source,
            error = %format!("{e:#}"),
            "CRL refresh failed; keeping the last good CRL"
        ),
    };
    for f in &config.files {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()));
        apply(&mut set, bytes, &f.display().to_string());
    }
    for url in &config.urls {
        let bytes = fetch(url).await;
        apply(&mut set, bytes, url);
    }
    set
}

/// One of our own certificates, for the start-up checks.
#[derive(Debug, Clone)]
pub struct OwnCertificate {
    /// Its role.
    pub role: CertRole,
    /// The parsed certificate.
    pub cert: Certificate,
}

/// Our certificates: DPauth and DPpb of every key set, and CERT.DP.TLS (the leaf of the PEM
/// chain at `dptls`, when that file exists: plain-HTTP servers may have none).
pub fn own_certificates(
    keys: &crate::keys::ServerKeys,
    dptls: Option<&std::path::Path>,
) -> Result<Vec<OwnCertificate>> {
    let mut out = Vec::new();
    for set in &keys.sets {
        for (role, der) in [
            (CertRole::DpAuth, &set.dpauth_cert),
            (CertRole::DpPb, &set.dppb_cert),
        ] {
            let cert = Certificate::from_der(der).with_context(|| format!("{role}"))?;
            out.push(OwnCertificate { role, cert });
        }
    }
    if let Some(path) = dptls.filter(|p| p.exists()) {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let chain = Certificate::from_pem_bundle(&text)
            .with_context(|| format!("parsing {}", path.display()))?;
        if let Some(cert) = chain.into_iter().next() {
            out.push(OwnCertificate {
                role: CertRole::DpTls,
                cert,
            });
        }
    }
    Ok(out)
}

/// Logs a warning for each certificate that expires within `warn` (or has expired).
pub fn warn_expiring(own: &[OwnCertificate], trust: &TrustStore, warn: Duration) {
    if warn.is_zero() {
        return;
    }
    let now = OffsetDateTime::now_utc();
    let horizon = now + warn;
    let ci = trust.iter().map(|c| (CertRole::Ci, c));
    for (role, cert) in own.iter().map(|o| (o.role, &o.cert)).chain(ci) {
        let not_after = cert.not_after();
        if not_after <= horizon {
            let days_left = (not_after - now).whole_days();
            tracing::warn!(
                certificate = %role,
                subject = cert.common_name().unwrap_or_default(),
                not_after = %not_after,
                days_left,
                "certificate expires soon (or has expired); renew it"
            );
        }
    }
}

/// Checks our own certificates against the CI CRLs of `set`: a revoked one is an error; a
/// CRL past nextUpdate only a warning (the stale-CRL policy is about peers' certificates).
pub fn check_own_certificates(
    own: &[OwnCertificate],
    trust: &TrustStore,
    set: &RevocationSet,
) -> Result<()> {
    let now = OffsetDateTime::now_utc();
    for o in own {
        match set.check_issued(trust, &o.cert, o.role, now, StalePolicy::Warn) {
            Ok(r) if !r.stale.is_empty() => tracing::warn!(
                certificate = %o.role,
                crls = ?r.stale,
                "the CRL covering our certificate is past its nextUpdate"
            ),
            Ok(_) => {}
            Err(e) => bail!(
                "our certificate {} is refused by the configured CRLs: {e}",
                o.role
            ),
        }
    }
    Ok(())
}

/// The running refresh task; [`RefreshTask::stop`] ends it.
#[derive(Debug)]
pub struct RefreshTask {
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl RefreshTask {
    /// Refreshes `revocation` every `config.refresh` (the first time one interval after the
    /// start, which already loaded everything) and repeats the expiry warnings for `own`.
    /// A zero interval starts nothing.
    pub fn spawn(
        revocation: Arc<Revocation>,
        trust: TrustStore,
        config: RevocationConfig,
        own: Vec<OwnCertificate>,
    ) -> RefreshTask {
        if config.refresh.is_zero() {
            return RefreshTask {
                stop: None,
                handle: None,
            };
        }
        let (stop, mut stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(
                tokio::time::Instant::now() + config.refresh,
                config.refresh,
            );
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticks.tick() => {}
                }
                if !config.files.is_empty() || !config.urls.is_empty() {
                    let current = revocation.snapshot();
                    tokio::select! {
                        _ = &mut stopped => break,
                        next = refresh_once(&config, &trust, &current) => revocation.replace(next),
                    }
                }
                warn_expiring(&own, &trust, config.cert_expiry_warn);
            }
        });
        RefreshTask {
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Stops the task (after a refresh in progress).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take()
            && let Err(e) = handle.await
        {
            tracing::warn!(error = %e, "CRL refresh task ended abnormally");
        }
    }
}
