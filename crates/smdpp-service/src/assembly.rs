//! The configuration and assembly of a server from its settings: what `smdpp serve` and
//! the one-shot commands share below their command-line arguments.
//!
//! - Configuration: the TOML file ([`FileConfig`], unknown keys refused), where the data
//!   lives ([`DataLocation`], [`data_location`], [`kek_location`]) and the resolved
//!   [`Settings`] of a server (the command line layers flags and environment over the file
//!   and the defaults, then hands the result here).
//! - Assembly: [`prepare`] creates the data directory, database and (if missing) a test
//!   PKI, loads the key sets ([`load_keys`]) and CRLs, opens the vault, seeds the demo
//!   inventory and builds the ES9+ engine and its TLS configuration, giving a [`Prepared`]
//!   server; [`run`] / [`run_with_admin`] serve it (ES9+, ES2+, the admin API, the admin
//!   listener, and the purge, outbox and CRL refresh tasks) until shutdown.
//! - Opening a data location's store and profile factory: [`open_store`],
//!   [`open_factory`], [`open_all_with`].
//!
//! Errors are reported with `anyhow`, as the commands that call this report them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use rsp_crypto::{Curve, KeyCustody, SoftwareKey};
use rsp_pki::{Certificate, PkiOptions, TrustStore};
use serde::Deserialize;
use smdpp_core::ActivationCode;
use smdpp_server::{Es9HttpConfig, ListenMode, TlsConfig};
use smdpp_store::{ProfileFilter, ProfileState, SqliteSynchronous, Store, StoreOptions};
use tokio::net::TcpListener;

use crate::config::{Limits, ServiceConfig};
use crate::es2::Es2Engine;
use crate::es9::Es9Engine;
use crate::factory::{Factory, load_or_create_kek};
use crate::keys::{KeySet, ServerKeys};
use crate::purge::PurgeTask;
use crate::sidecar::Sidecar;

/// Where a server's data lives, as given (on the command line: `--data-dir`,
/// `--database-url`, `--config`, `--kek-file`); what is not given comes from the
/// configuration file, then the defaults ([`data_location`], [`kek_location`]).
#[derive(Debug, Clone, Default)]
pub struct DataLocation {
    /// Data directory (database, generated PKI).
    pub data_dir: Option<PathBuf>,
    /// Database URL: `sqlite://FILE` or `postgres://...` (default: SQLite in the data dir).
    pub database_url: Option<String>,
    /// TOML configuration file.
    pub config: Option<PathBuf>,
    /// Key-encryption key file sealing the secrets at rest (default DATA_DIR/vault.kek).
    pub kek_file: Option<PathBuf>,
}

/// Opens (and migrates) the store of a data location, as the one-shot commands do.
pub async fn open_data_store(d: &DataLocation) -> Result<Store> {
    let f = load_file(d)?;
    let (dir, url) = data_location(d, &f)?;
    Ok(open_store(&dir, &url).await?.0)
}

/// An extra DPauth/DPpb key set (for another CI) in the configuration file.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct KeySetFile {
    /// CERT.DPauth.ECDSA.
    pub dpauth_cert: PathBuf,
    /// SK.DPauth.ECDSA.
    pub dpauth_key: PathBuf,
    /// CERT.DPpb.ECDSA.
    pub dppb_cert: PathBuf,
    /// SK.DPpb.ECDSA.
    pub dppb_key: PathBuf,
}

/// The TOML configuration file (every key optional; unknown keys are an error).
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See `--listen`.
    pub listen: Option<SocketAddr>,
    /// See `--smdp-address`.
    pub smdp_address: Option<String>,
    /// See `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// See `--database-url`.
    pub database_url: Option<String>,
    /// See `--pki`.
    pub pki: Option<PathBuf>,
    /// See `--dpauth-cert`.
    pub dpauth_cert: Option<PathBuf>,
    /// See `--dpauth-key`.
    pub dpauth_key: Option<PathBuf>,
    /// See `--dppb-cert`.
    pub dppb_cert: Option<PathBuf>,
    /// See `--dppb-key`.
    pub dppb_key: Option<PathBuf>,
    /// See `--dptls-cert`.
    pub dptls_cert: Option<PathBuf>,
    /// See `--dptls-key`.
    pub dptls_key: Option<PathBuf>,
    /// See `--pkcs11-module`.
    pub pkcs11_module: Option<PathBuf>,
    /// See `--pkcs11-token`.
    pub pkcs11_token: Option<String>,
    /// See `--pkcs11-pin-file`.
    pub pkcs11_pin_file: Option<PathBuf>,
    /// See `--trusted-ci`.
    #[serde(default)]
    pub trusted_ci: Vec<PathBuf>,
    /// Further key sets, for other CIs.
    #[serde(default)]
    pub key_sets: Vec<KeySetFile>,
    /// See `--plain-http`.
    pub plain_http: Option<bool>,
    /// See `--tls-backend`: `"rustls"` or `"openssl"`.
    pub tls_backend: Option<TlsBackend>,
    /// See `--session-ttl-secs`.
    pub session_ttl_secs: Option<u64>,
    /// How long to wait for the ProfileInstallationResult, seconds.
    pub pir_wait_secs: Option<u64>,
    /// See `--download-attempt-limit`.
    pub download_attempt_limit: Option<i64>,
    /// See `--cc-attempt-limit`.
    pub cc_attempt_limit: Option<i64>,
    /// See [`Limits::rebind_on_new_otpk`].
    pub rebind_on_new_otpk: Option<bool>,
    /// Seed a demo profile when the inventory is empty (default true).
    pub demo_profile: Option<bool>,
    /// See [`Limits::purge_interval`], seconds.
    pub purge_interval_secs: Option<u64>,
    /// See [`Limits::es2_call_retention`], seconds.
    pub es2_call_retention_secs: Option<u64>,
    /// See `--sqlite-synchronous`: `"full"` or `"normal"`.
    pub sqlite_synchronous: Option<String>,
    /// See `--kek-file`.
    pub kek_file: Option<PathBuf>,
    /// See `--admin-listen`.
    pub admin_listen: Option<String>,
    /// See `--console-session-ttl-secs`.
    pub console_session_ttl_secs: Option<u64>,
    /// See `--limit-initiate-per-minute`.
    pub limit_initiate_per_minute: Option<u32>,
    /// See `--limit-refusals-per-minute`.
    pub limit_refusals_per_minute: Option<u32>,
    /// See `--max-open-sessions`.
    pub max_open_sessions: Option<i64>,
    /// See `--limit-refusals-per-eid-per-minute`.
    pub limit_refusals_per_eid_per_minute: Option<u32>,
    /// See `--crl` (the flag's files are added to these).
    #[serde(default)]
    pub crl: Vec<PathBuf>,
    /// See `--crl-url` (the flag's URLs are added to these).
    #[serde(default)]
    pub crl_url: Vec<String>,
    /// See `--crl-refresh-secs`.
    pub crl_refresh_secs: Option<u64>,
    /// See `--crl-stale-policy`: `"refuse"` or `"warn"`.
    pub crl_stale_policy: Option<String>,
    /// See `--cert-expiry-warn-days`.
    pub cert_expiry_warn_days: Option<u64>,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<FileConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// Everything `serve` needs, resolved from flags, environment, file and defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Our SM-DP+ address.
    pub smdp_address: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// PKI directory.
    pub pki_dir: PathBuf,
    /// Overrides of the PKI directory files.
    pub dpauth_cert: Option<PathBuf>,
    /// SK.DPauth override.
    pub dpauth_key: Option<PathBuf>,
    /// CERT.DPpb override.
    pub dppb_cert: Option<PathBuf>,
    /// SK.DPpb override.
    pub dppb_key: Option<PathBuf>,
    /// CERT.DP.TLS override.
    pub dptls_cert: Option<PathBuf>,
    /// SK.DP.TLS override.
    pub dptls_key: Option<PathBuf>,
    /// The PKCS#11 token, when keys are on an HSM.
    pub pkcs11: Option<crate::hsm::Pkcs11Settings>,
    /// Extra trusted CIs.
    pub trusted_ci: Vec<PathBuf>,
    /// Extra key sets.
    pub key_sets: Vec<KeySetFile>,
    /// Plain HTTP.
    pub plain_http: bool,
    /// The TLS implementation (when not plain HTTP).
    pub tls_backend: TlsBackend,
    /// Engine limits.
    pub limits: Limits,
    /// Seed a demo profile into an empty inventory.
    pub demo_profile: bool,
    /// SQLite `synchronous` setting.
    pub sqlite_synchronous: SqliteSynchronous,
    /// Key-encryption key file of the vault (secrets at rest).
    pub kek_file: PathBuf,
    /// The admin listener.
    pub admin_listen: AdminListen,
    /// Lifetime of a web-console log-in.
    pub console_session_ttl: Duration,
    /// Per-client-address limits on ES9+.
    pub abuse: smdpp_server::abuse::AbuseLimits,
    /// CRLs and certificate expiry warnings.
    pub revocation: crate::revocation::RevocationConfig,
}

/// `--tls-backend`: which TLS implementation serves ES9+/ES2+.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsBackend {
    /// rustls (aws-lc-rs): TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256 and TLS 1.3, P-256.
    #[default]
    Rustls,
    /// OpenSSL: adds ECDHE-ECDSA-AES128-SHA256 (CBC) and brainpoolP256r1, for key exchange
    /// and as the curve of CERT.DP.TLS ([`smdpp_server::tls_openssl`]).
    Openssl,
}

/// Where the admin listener (metrics, health, console) binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminListen {
    /// The default address: skipped with a warning when it is taken.
    Default(SocketAddr),
    /// An address asked for: must bind.
    At(SocketAddr),
    /// No admin listener.
    Off,
}

/// The default admin listener address (loopback only).
pub const DEFAULT_ADMIN_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8081);

/// `--admin-listen` / `admin_listen`: an address (`IP:PORT`) or `off`.
pub fn parse_admin_listen(text: &str) -> Result<AdminListen> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(AdminListen::Off);
    }
    text.parse()
        .map(AdminListen::At)
        .map_err(|_| anyhow!("admin listen: {text:?} is neither an address (IP:PORT) nor `off`"))
}

/// `host:port`, with the port dropped when it is 443.
pub fn address_of(listen: SocketAddr) -> String {
    if listen.port() == 443 {
        listen.ip().to_string()
    } else {
        format!("{}:{}", listen.ip(), listen.port())
    }
}

fn default_db_url(data_dir: &Path) -> Result<String> {
    let abs = std::path::absolute(data_dir).context("resolving the data directory")?;
    let p = abs.join("smdpp.db");
    let s = p
        .to_str()
        .ok_or_else(|| anyhow!("data directory path is not UTF-8"))?;
    Ok(format!("sqlite://{s}"))
}

/// The data directory and database URL of `d`: given, else the configuration file's, else
/// `./smdpp-data` and SQLite in it.
pub fn data_location(d: &DataLocation, file: &FileConfig) -> Result<(PathBuf, String)> {
    let data_dir = d
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("./smdpp-data"));
    let url = match d.database_url.clone().or_else(|| file.database_url.clone()) {
        Some(u) => u,
        None => default_db_url(&data_dir)?,
    };
    Ok((data_dir, url))
}

/// The configuration file of `d`, parsed (empty when none is given).
pub fn load_file(d: &DataLocation) -> Result<FileConfig> {
    match &d.config {
        Some(p) => FileConfig::load(p),
        None => Ok(FileConfig::default()),
    }
}

/// The key-encryption key file: flag/environment, then the configuration file, then
/// `<data dir>/vault.kek`.
pub fn kek_location(d: &DataLocation, file: &FileConfig, data_dir: &Path) -> PathBuf {
    d.kek_file
        .clone()
        .or_else(|| file.kek_file.clone())
        .unwrap_or_else(|| data_dir.join("vault.kek"))
}

/// What `smdpp serve` is given (its flags and environment), before [`ServeOptions::resolve`]
/// layers it over the configuration file and the defaults. `None` (or empty, or `false`)
/// leaves a setting to the file, else to the default.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Data location and configuration file.
    pub data: DataLocation,
    /// Listen address (default 127.0.0.1:8443).
    pub listen: Option<SocketAddr>,
    /// Our SM-DP+ address `FQDN[:port]` as in Activation Codes (default: the listen address).
    pub smdp_address: Option<String>,
    /// PKI directory (default DATA_DIR/pki, generated if missing).
    pub pki: Option<PathBuf>,
    /// CERT.DPauth.ECDSA (PEM or DER), overriding the PKI directory.
    pub dpauth_cert: Option<PathBuf>,
    /// SK.DPauth.ECDSA (PEM).
    pub dpauth_key: Option<PathBuf>,
    /// CERT.DPpb.ECDSA (PEM or DER).
    pub dppb_cert: Option<PathBuf>,
    /// SK.DPpb.ECDSA (PEM).
    pub dppb_key: Option<PathBuf>,
    /// CERT.DP.TLS chain (PEM, leaf first).
    pub dptls_cert: Option<PathBuf>,
    /// SK.DP.TLS (PEM, P-256).
    pub dptls_key: Option<PathBuf>,
    /// The PKCS#11 token holding keys named `pkcs11:object=LABEL`.
    pub pkcs11: crate::hsm::Pkcs11Options,
    /// Extra trusted CI certificates (PEM or DER), added to the file's.
    pub trusted_ci: Vec<PathBuf>,
    /// Serve plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// TLS implementation of the listener.
    pub tls_backend: Option<TlsBackend>,
    /// RSP session time-to-live between calls, seconds (default 600).
    pub session_ttl_secs: Option<u64>,
    /// Download attempts per order (default 5).
    pub download_attempt_limit: Option<i64>,
    /// Wrong Confirmation Codes tolerated per order (default 3).
    pub cc_attempt_limit: Option<i64>,
    /// SQLite durability (default `full`).
    pub sqlite_synchronous: Option<SqliteSynchronous>,
    /// Admin listener, `ADDR` or `off` (default 127.0.0.1:8081, skipped when taken).
    pub admin_listen: Option<String>,
    /// Lifetime of a web-console log-in, seconds (default 28800, 8 hours).
    pub console_session_ttl_secs: Option<u64>,
    /// initiateAuthentication calls allowed per client address per minute (default 6000).
    pub limit_initiate_per_minute: Option<u32>,
    /// Refused MatchingIDs / Confirmation Codes allowed per client address per minute
    /// (default 20).
    pub limit_refusals_per_minute: Option<u32>,
    /// RSP sessions open before their BPP is delivered, across all nodes (default 100000).
    pub max_open_sessions: Option<i64>,
    /// Refused MatchingIDs / Confirmation Codes allowed per EID per minute (default 10).
    pub limit_refusals_per_eid_per_minute: Option<u32>,
    /// Certificate revocation (CRLs) and expiry warnings.
    pub revocation: RevocationOptions,
}

/// The revocation settings of [`ServeOptions`] (see [`crate::revocation`]).
#[derive(Debug, Clone, Default)]
pub struct RevocationOptions {
    /// CRL files (DER or PEM), added to the file's.
    pub crl: Vec<PathBuf>,
    /// CRL URLs (`http://`), added to the file's.
    pub crl_url: Vec<String>,
    /// CRL refresh interval, seconds (default 3600; 0: no refresh).
    pub crl_refresh_secs: Option<u64>,
    /// `refuse` (default) or `warn`.
    pub crl_stale_policy: Option<String>,
    /// Expiry warning horizon, days (default 30; 0: no warning).
    pub cert_expiry_warn_days: Option<u64>,
}

impl ServeOptions {
    /// Resolves flags/environment over the file over the defaults.
    pub fn resolve(&self) -> Result<Settings> {
        let f = load_file(&self.data)?;
        let (data_dir, database_url) = data_location(&self.data, &f)?;
        let listen = self
            .listen
            .or(f.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443)));
        let smdp_address = self
            .smdp_address
            .clone()
            .or(f.smdp_address.clone())
            .unwrap_or_else(|| address_of(listen));
        smdpp_core::activation_code::validate_address(&smdp_address)
            .map_err(|e| anyhow!("smdp address: {e}"))?;
        let d = Limits::default();
        if let Some(n) = f.max_open_sessions.filter(|n| *n < 0) {
            bail!("max_open_sessions = {n}: must be 0 (no bound) or a positive number of sessions");
        }
        let limits = Limits {
            session_ttl: Duration::from_secs(
                self.session_ttl_secs
                    .or(f.session_ttl_secs)
                    .unwrap_or(d.session_ttl.as_secs()),
            ),
            pir_wait: f.pir_wait_secs.map_or(d.pir_wait, Duration::from_secs),
            download_attempt_limit: self
                .download_attempt_limit
                .or(f.download_attempt_limit)
                .unwrap_or(d.download_attempt_limit),
            cc_attempt_limit: self
                .cc_attempt_limit
                .or(f.cc_attempt_limit)
                .unwrap_or(d.cc_attempt_limit),
            rebind_on_new_otpk: f.rebind_on_new_otpk.unwrap_or(d.rebind_on_new_otpk),
            purge_interval: f
                .purge_interval_secs
                .map_or(d.purge_interval, Duration::from_secs),
            es2_call_retention: f
                .es2_call_retention_secs
                .map_or(d.es2_call_retention, Duration::from_secs),
            outbox: crate::outbox::OutboxConfig::from_env(),
            max_open_sessions: self
                .max_open_sessions
                .or(f.max_open_sessions)
                .unwrap_or(d.max_open_sessions),
            refusals_per_eid_per_minute: self
                .limit_refusals_per_eid_per_minute
                .or(f.limit_refusals_per_eid_per_minute)
                .unwrap_or(d.refusals_per_eid_per_minute),
        };
        let mut trusted_ci = f.trusted_ci.clone();
        trusted_ci.extend(self.trusted_ci.iter().cloned());
        let sqlite_synchronous = match (self.sqlite_synchronous, &f.sqlite_synchronous) {
            (Some(s), _) => s,
            (None, Some(text)) => text
                .parse()
                .map_err(|e| anyhow!("sqlite_synchronous: {e}"))?,
            (None, None) => SqliteSynchronous::default(),
        };
        let admin_listen = match self.admin_listen.as_deref().or(f.admin_listen.as_deref()) {
            Some(text) => parse_admin_listen(text)?,
            None => AdminListen::Default(DEFAULT_ADMIN_LISTEN),
        };
        let console_session_ttl = Duration::from_secs(
            self.console_session_ttl_secs
                .or(f.console_session_ttl_secs)
                .unwrap_or(8 * 3600)
                .max(1),
        );
        let abuse_default = smdpp_server::abuse::AbuseLimits::default();
        let abuse = smdpp_server::abuse::AbuseLimits {
            initiate_per_minute: self
                .limit_initiate_per_minute
                .or(f.limit_initiate_per_minute)
                .unwrap_or(abuse_default.initiate_per_minute),
            refusals_per_minute: self
                .limit_refusals_per_minute
                .or(f.limit_refusals_per_minute)
                .unwrap_or(abuse_default.refusals_per_minute),
            ..abuse_default
        };
        let revocation = self.revocation_config(&f)?;
        Ok(Settings {
            listen,
            smdp_address,
            pki_dir: self
                .pki
                .clone()
                .or(f.pki.clone())
                .unwrap_or_else(|| data_dir.join("pki")),
            kek_file: kek_location(&self.data, &f, &data_dir),
            data_dir,
            database_url,
            dpauth_cert: self.dpauth_cert.clone().or(f.dpauth_cert.clone()),
            dpauth_key: self.dpauth_key.clone().or(f.dpauth_key.clone()),
            dppb_cert: self.dppb_cert.clone().or(f.dppb_cert.clone()),
            dppb_key: self.dppb_key.clone().or(f.dppb_key.clone()),
            dptls_cert: self.dptls_cert.clone().or(f.dptls_cert.clone()),
            dptls_key: self.dptls_key.clone().or(f.dptls_key.clone()),
            pkcs11: self.pkcs11.resolve(
                f.pkcs11_module.as_ref(),
                f.pkcs11_token.as_ref(),
                f.pkcs11_pin_file.as_ref(),
            )?,
            trusted_ci,
            key_sets: f.key_sets.clone(),
            plain_http: self.plain_http || f.plain_http.unwrap_or(false),
            tls_backend: self.tls_backend.or(f.tls_backend).unwrap_or_default(),
            limits,
            demo_profile: f.demo_profile.unwrap_or(true),
            sqlite_synchronous,
            admin_listen,
            console_session_ttl,
            abuse,
            revocation,
        })
    }

    /// The CRL settings: file lists then flag lists; flags over the file for the rest.
    fn revocation_config(&self, f: &FileConfig) -> Result<crate::revocation::RevocationConfig> {
        let d = crate::revocation::RevocationConfig::default();
        let a = &self.revocation;
        let mut files = f.crl.clone();
        files.extend(a.crl.iter().cloned());
        let mut urls = f.crl_url.clone();
        urls.extend(a.crl_url.iter().cloned());
        for u in &urls {
            crate::revocation::validate_url(u)?;
        }
        let stale_policy = match a
            .crl_stale_policy
            .as_deref()
            .or(f.crl_stale_policy.as_deref())
        {
            Some(text) => text
                .parse()
                .map_err(|e: String| anyhow!("crl stale policy: {e}"))?,
            None => d.stale_policy,
        };
        let refresh = a
            .crl_refresh_secs
            .or(f.crl_refresh_secs)
            .map_or(d.refresh, Duration::from_secs);
        let warn_days = a
            .cert_expiry_warn_days
            .or(f.cert_expiry_warn_days)
            .unwrap_or(crate::revocation::DEFAULT_EXPIRY_WARN_DAYS);
        Ok(crate::revocation::RevocationConfig {
            files,
            urls,
            refresh,
            stale_policy,
            cert_expiry_warn: Duration::from_secs(warn_days.saturating_mul(86_400)),
        })
    }
}

/// Reads a certificate file, PEM or DER, as DER.
fn read_cert(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(b"-----") {
        let text = String::from_utf8(bytes).context("PEM is not UTF-8")?;
        Ok(Certificate::from_pem(&text)
            .with_context(|| format!("parsing {}", path.display()))?
            .der()
            .to_vec())
    } else {
        Ok(bytes)
    }
}

fn read_key(path: &Path, token: Option<&Arc<rsp_hsm::Token>>) -> Result<Arc<dyn KeyCustody>> {
    if let Some(key) = crate::hsm::token_key(path, token)? {
        return Ok(key);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let key =
        SoftwareKey::from_pem(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(Arc::new(key))
}

fn add_ci_file(trust: &mut TrustStore, path: &Path) -> Result<()> {
    let der = read_cert(path)?;
    trust
        .add_ci_der(&der)
        .with_context(|| format!("trusted CI {}", path.display()))
}

/// The host part of `host[:port]`.
fn host_of(address: &str) -> &str {
    address.rsplit_once(':').map_or(address, |(h, _)| h)
}

/// Generates a P-256 test PKI into `dir` if it has no `dpauth.pem` and no overrides are set.
fn ensure_pki(s: &Settings) -> Result<bool> {
    let overridden = s.dpauth_cert.is_some() && s.dppb_cert.is_some();
    if overridden || s.pki_dir.join("dpauth.pem").exists() {
        return Ok(false);
    }
    let mut opts = PkiOptions::new(Curve::NistP256);
    opts.smdp_address = host_of(&s.smdp_address).to_owned();
    let pki = rsp_pki::generate(opts).context("generating the test PKI")?;
    pki.write_to(&s.pki_dir).context("writing the test PKI")?;
    Ok(true)
}

/// Loads the trust store and key sets described by `s`; keys named `pkcs11:object=LABEL`
/// are on `token`.
pub fn load_keys(s: &Settings, token: Option<&Arc<rsp_hsm::Token>>) -> Result<ServerKeys> {
    let mut trust = TrustStore::new();
    let ci = s.pki_dir.join("ci.pem");
    if ci.exists() {
        add_ci_file(&mut trust, &ci)?;
    }
    let extra = s.pki_dir.join(rsp_pki::EXTRA_CI_DIR);
    if extra.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&extra)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pem" || x == "der"))
            .collect();
        files.sort();
        for f in files {
            add_ci_file(&mut trust, &f)?;
        }
    }
    for f in &s.trusted_ci {
        add_ci_file(&mut trust, f)?;
    }
    let pick = |o: &Option<PathBuf>, name: &str| o.clone().unwrap_or_else(|| s.pki_dir.join(name));
    let mut sets = vec![
        KeySet::new(
            &trust,
            &read_cert(&pick(&s.dpauth_cert, "dpauth.pem"))?,
            read_key(&pick(&s.dpauth_key, "dpauth.key"), token)?,
            &read_cert(&pick(&s.dppb_cert, "dppb.pem"))?,
            read_key(&pick(&s.dppb_key, "dppb.key"), token)?,
        )
        .context("DPauth/DPpb key set")?,
    ];
    for k in &s.key_sets {
        sets.push(
            KeySet::new(
                &trust,
                &read_cert(&k.dpauth_cert)?,
                read_key(&k.dpauth_key, token)?,
                &read_cert(&k.dppb_cert)?,
                read_key(&k.dppb_key, token)?,
            )
            .context("extra key set")?,
        );
    }
    Ok(ServerKeys::new(trust, sets)?)
}

/// CERT.DP.TLS of `s`: the override, else `dptls.pem` of the PKI directory.
fn dptls_path(s: &Settings) -> PathBuf {
    s.dptls_cert
        .clone()
        .unwrap_or_else(|| s.pki_dir.join("dptls.pem"))
}

/// A server ready to run: engine, transport and what was set up on the way.
pub struct Prepared {
    /// The resolved settings.
    pub settings: Settings,
    /// The engine.
    pub engine: Arc<Es9Engine>,
    /// HTTPS configuration, `None` for plain HTTP.
    pub tls: Option<TlsConfig>,
    /// Whether a test PKI was generated now.
    pub generated_pki: bool,
    /// The Activation Code of the demo profile seeded now, if any.
    pub demo_activation_code: Option<String>,
    /// Where its QR code (PNG) was written.
    pub demo_qr: Option<PathBuf>,
    /// The store.
    pub store: Store,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Opens (and migrates) the store at `url`, creating `data_dir` first for SQLite.
pub async fn open_store(data_dir: &Path, url: &str) -> Result<(Store, Sidecar)> {
    open_store_with(data_dir, url, &StoreOptions::default()).await
}

/// [`open_store`] with store options (SQLite durability).
pub async fn open_store_with(
    data_dir: &Path,
    url: &str,
    options: &StoreOptions,
) -> Result<(Store, Sidecar)> {
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
    }
    let store = Store::connect_with(url, options)
        .await
        .context("opening the database")?;
    let sidecar = Sidecar::new(store.clone());
    Ok((store, sidecar))
}

/// Creates the data directory, database and (if missing) the test PKI, seeds the demo
/// profile into an empty inventory, and builds the engine and TLS configuration.
pub async fn prepare(settings: Settings) -> Result<Prepared> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let generated_pki = ensure_pki(&settings)?;
    // Logged in once; every key on the token shares its session pool.
    let token = match &settings.pkcs11 {
        Some(p) => Some(p.open()?),
        None => None,
    };
    let mut keys = load_keys(&settings, token.as_ref())?;
    // Revocation (SGP.22 section 4.6): the CRLs, our own certificates checked against them
    // (a revoked one stops the start), and early expiry warnings.
    let own = crate::revocation::own_certificates(&keys, Some(&dptls_path(&settings)))?;
    let crls = crate::revocation::load(&settings.revocation, &keys.trust).await?;
    crate::revocation::warn_expiring(&own, &keys.trust, settings.revocation.cert_expiry_warn);
    crate::revocation::check_own_certificates(&own, &keys.trust, &crls)?;
    keys.revocation = Arc::new(crate::revocation::Revocation::new(
        crls,
        settings.revocation.stale_policy,
    ));
    let mut store_options = StoreOptions::default();
    store_options.sqlite_synchronous = settings.sqlite_synchronous;
    let (store, sidecar) =
        open_store_with(&settings.data_dir, &settings.database_url, &store_options).await?;
    let tls = if settings.plain_http {
        None
    } else {
        let cert = settings
            .dptls_cert
            .clone()
            .unwrap_or_else(|| settings.pki_dir.join("dptls.pem"));
        let key = settings
            .dptls_key
            .clone()
            .unwrap_or_else(|| settings.pki_dir.join("dptls.key"));
        // Both backends request (do not require) a client certificate: ES2+ callers are
        // authenticated by it (SGP.22 section 6.1), ES9+ devices present none.
        match (
            crate::hsm::token_key(&key, token.as_ref())?,
            settings.tls_backend,
        ) {
            (Some(on_token), TlsBackend::Rustls) => Some(TlsConfig::Rustls(Arc::new(
                smdpp_server::tls::server_config_with_client_auth_custody(
                    smdpp_server::tls::load_certificate_chain(&cert)?,
                    on_token,
                )
                .context("TLS certificate (CERT.DP.TLS and its key on the token must be P-256)")?,
            ))),
            (Some(_), TlsBackend::Openssl) => {
                bail!(
                    "--tls-backend openssl takes the DPtls key from a file, not from the PKCS#11 token"
                )
            }
            (None, TlsBackend::Rustls) => Some(TlsConfig::Rustls(
                smdpp_server::tls::server_config_with_client_auth_from_pem_files(&cert, &key)
                    .context(
                        "TLS certificate (CERT.DP.TLS must be P-256 with --tls-backend rustls; \
                         --tls-backend openssl also takes brainpoolP256r1)",
                    )?,
            )),
            (None, TlsBackend::Openssl) => Some(TlsConfig::OpenSsl(
                smdpp_server::tls_openssl::acceptor_from_pem_files(&cert, &key)
                    .context("TLS certificate for the OpenSSL listener")?,
            )),
        }
    };
    let factory = match crate::hsm::token_kek(&settings.kek_file, token.as_ref())? {
        Some(kek) => open_factory_kek(&store, kek, true).await?,
        None => open_factory(&store, &settings.kek_file).await?,
    };
    let sealed = factory.seal_plaintext_upps().await?;
    if sealed > 0 {
        tracing::info!(count = sealed, "stored profile packages sealed at rest");
    }
    let mut demo_activation_code = None;
    let mut demo_qr = None;
    if settings.demo_profile {
        let empty = store
            .list_profiles(&ProfileFilter {
                limit: Some(1),
                ..ProfileFilter::default()
            })
            .await?
            .is_empty();
        let mid = if empty {
            Some(crate::inventory::seed_demo(&store, &factory).await?.1)
        } else {
            // A later start: the demo order, if it still waits for its download, is shown
            // again (with this start's address).
            store
                .list_profiles(&ProfileFilter {
                    profile_type: Some(crate::inventory::DEMO_TYPE.to_owned()),
                    state: Some(ProfileState::Released),
                    limit: Some(1),
                    ..ProfileFilter::default()
                })
                .await?
                .into_iter()
                .next()
                .and_then(|p| p.matching_id)
        };
        if let Some(mid) = mid {
            let ac = activation_code(&settings.smdp_address, &mid, false);
            if let Ok(parsed) = ActivationCode::parse(&ac)
                && let Ok(png) = smdpp_core::qr::png(&parsed)
            {
                let path = settings.data_dir.join("demo-activation-code.png");
                if std::fs::write(&path, png).is_ok() {
                    demo_qr = Some(path);
                }
            }
            demo_activation_code = Some(ac);
        }
    }
    let config = ServiceConfig {
        smdp_address: settings.smdp_address.clone(),
        limits: settings.limits.clone(),
    };
    let engine = Arc::new(
        Es9Engine::new(store.clone(), sidecar, Arc::new(keys), config).with_factory(factory),
    );
    Ok(Prepared {
        settings,
        engine,
        tls,
        generated_pki,
        demo_activation_code,
        demo_qr,
        store,
    })
}

/// Runs a prepared server on `listener` until `shutdown` completes: ES9+ and, on the same
/// listener, ES2+ and the operators' admin API (mutual TLS; refused on plain HTTP) and
/// `GET /openapi.json`. While it runs, a [`PurgeTask`] deletes expired sessions and old ES2+
/// call records every [`Limits::purge_interval`]; it is stopped before this returns.
pub async fn run(
    prepared: &Prepared,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    run_with_admin(prepared, listener, None, shutdown).await
}

/// The ES2+ engine over the prepared store (the functions behind ES2+, the CLI and the
/// console).
pub fn es2_engine(prepared: &Prepared) -> Arc<Es2Engine> {
    Arc::new(
        Es2Engine::new(
            prepared.store.clone(),
            prepared.engine.sidecar().clone(),
            prepared.engine.config().clone(),
        )
        .with_factory(prepared.engine.factory().cloned()),
    )
}

/// Routes added to the admin listener by the caller (the web console), built from the
/// prepared server and its ES2+ engine.
pub type AdminRoutes = Box<dyn FnOnce(&Prepared, Arc<Es2Engine>) -> axum::Router + Send>;

/// The admin listener's router: `/metrics`, `/healthz`, `/readyz` and `extra`.
pub fn admin_router(prepared: &Prepared, extra: Option<AdminRoutes>) -> axum::Router {
    let probe = Arc::new(crate::ops::ServerProbe::new(
        prepared.store.clone(),
        Arc::new(prepared.engine.keys().clone()),
    ));
    let ops = smdpp_server::metrics::ops_router(probe);
    match extra {
        Some(build) => ops.merge(build(prepared, es2_engine(prepared))),
        None => ops,
    }
}

/// [`run`], plus the admin listener (plain HTTP) with `admin` routes when given; both stop
/// when `shutdown` completes.
pub async fn run_with_admin(
    prepared: &Prepared,
    listener: TcpListener,
    admin: Option<(TcpListener, axum::Router)>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let es2 = es2_engine(prepared);
    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin_task = admin.map(|(l, router)| {
        tokio::spawn(smdpp_server::serve(
            l,
            ListenMode::PlainHttp,
            router,
            async move {
                let _ = admin_stopped.await;
            },
        ))
    });
    let es9_http = Es9HttpConfig {
        abuse: prepared.settings.abuse.clone(),
        ..Es9HttpConfig::default()
    };
    let router = smdpp_server::router(Arc::clone(&prepared.engine), es9_http)
        .merge(smdpp_server::es2_router(
            Arc::clone(&es2),
            Es9HttpConfig::default(),
        ))
        .merge(smdpp_server::admin_router(
            es2,
            Arc::new(crate::admin::AdminOrders::new(
                prepared.store.clone(),
                prepared.engine.config().smdp_address.clone(),
            )),
        ));
    let mode = match &prepared.tls {
        Some(t) => ListenMode::from(t.clone()),
        None => ListenMode::PlainHttp,
    };
    let limits = &prepared.engine.config().limits;
    let purge = PurgeTask::spawn(
        prepared.store.clone(),
        limits.purge_interval,
        limits.es2_call_retention,
    );
    let outbox = crate::outbox::start(prepared);
    let keys = prepared.engine.keys();
    let crl_refresh = crate::revocation::RefreshTask::spawn(
        Arc::clone(&keys.revocation),
        keys.trust.clone(),
        prepared.settings.revocation.clone(),
        crate::revocation::own_certificates(keys, Some(&dptls_path(&prepared.settings)))
            .unwrap_or_default(),
    );
    let served = smdpp_server::serve(listener, mode, router, shutdown).await;
    crl_refresh.stop().await;
    let _ = stop_admin.send(());
    if let Some(task) = admin_task {
        match task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "admin listener ended with an error"),
            Err(e) => tracing::warn!(error = %e, "admin listener task failed"),
            Ok(Ok(())) => {}
        }
    }
    outbox.stop().await;
    purge.stop().await;
    served
}

/// Binds the admin listener as `s.admin_listen` says (`None` when off, or when the default
/// address is taken).
pub async fn bind_admin(s: &Settings) -> Result<Option<TcpListener>> {
    match s.admin_listen {
        AdminListen::Off => Ok(None),
        AdminListen::At(a) => {
            Ok(Some(smdpp_server::bind(a).await.with_context(|| {
                format!("binding the admin listener {a}")
            })?))
        }
        AdminListen::Default(a) => match smdpp_server::bind(a).await {
            Ok(l) => Ok(Some(l)),
            Err(e) => {
                tracing::warn!(address = %a, error = %e, "admin listener not started (give --admin-listen ADDR or off)");
                Ok(None)
            }
        },
    }
}

/// `LPA:1$<address>$<matching id>[$$1]`.
pub fn activation_code(smdp_address: &str, matching_id: &str, cc_required: bool) -> String {
    ActivationCode {
        smdp_address: smdp_address.to_owned(),
        matching_id: matching_id.to_owned(),
        smdp_oid: None,
        confirmation_code_required: cc_required,
    }
    .to_qr_string()
}

/// Opens the profile factory of `store` with the key file at `kek_file`. The file is
/// created (mode 0600) when it is missing and the database holds no keys yet; a missing
/// file for a database that has keys is an error naming the key id it needs.
pub async fn open_factory(store: &Store, kek_file: &Path) -> Result<Arc<Factory>> {
    open_factory_with(store, kek_file, true).await
}

/// [`open_factory`]; with `create` false a database without keys is an error, whether or
/// not the key file exists, and no key file is made (commands that only look at keys must
/// not make any).
pub async fn open_factory_with(
    store: &Store,
    kek_file: &Path,
    create: bool,
) -> Result<Arc<Factory>> {
    // `pkcs11:object=LABEL`: the key is on the token of the environment.
    if let Some(kek) = crate::hsm::token_kek(kek_file, None)? {
        return open_factory_kek(store, kek, create).await;
    }
    let deks = store.vault_deks().await?;
    if !kek_file.exists()
        && let Some(r) = deks.first()
    {
        bail!(
            "key file {} is missing: the database's secrets are sealed under \
             key-encryption key {}",
            kek_file.display(),
            r.kek_id
        );
    }
    // Before the key file is read: on a fresh data directory there is none either.
    if !create && deks.is_empty() {
        bail!("the database has no keys yet (nothing was sealed in it)");
    }
    // Errors of the key file itself name the file already; a key mismatch gets it below.
    let (kek, _) = load_or_create_kek(kek_file, create)?;
    match Factory::open(store.clone(), kek).await {
        Ok(f) => Ok(Arc::new(f)),
        // A key mismatch does not name the file read: add it.
        Err(e @ crate::factory::FactoryError::Keys(_)) => {
            Err(anyhow!("key file {}: {e}", kek_file.display()))
        }
        Err(e) => Err(e.into()),
    }
}

/// [`open_factory_with`] with a KEK already opened (a key on a PKCS#11 token).
pub async fn open_factory_kek(
    store: &Store,
    kek: Arc<dyn smdpp_vault::Kek>,
    create: bool,
) -> Result<Arc<Factory>> {
    if !create && store.vault_deks().await?.is_empty() {
        bail!("the database has no keys yet (nothing was sealed in it)");
    }
    Ok(Arc::new(Factory::open(store.clone(), kek).await?))
}

/// The store and profile factory of a data location; with `create` false no key is made
/// (see [`open_factory_with`]).
pub async fn open_all_with(data: &DataLocation, create: bool) -> Result<(Store, Arc<Factory>)> {
    let f = load_file(data)?;
    let (dir, url) = data_location(data, &f)?;
    let (store, _) = open_store(&dir, &url).await?;
    match open_factory_with(&store, &kek_location(data, &f, &dir), create).await {
        Ok(factory) => Ok((store, factory)),
        Err(e) => {
            store.close().await;
            Err(e)
        }
    }
}

/// The actor of a command run from a shell: `cli:<unix user>` (`$USER`, else `$LOGNAME`,
/// else `cli:uid-<uid>`).
pub fn cli_actor() -> String {
    let user = ["USER", "LOGNAME"].iter().find_map(|k| {
        std::env::var(k).ok().filter(|v| {
            !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_graphic() && c != ':')
        })
    });
    match user {
        Some(u) => format!("cli:{u}"),
        None => {
            use std::os::unix::fs::MetadataExt;
            match std::fs::metadata("/proc/self") {
                Ok(m) => format!("cli:uid-{}", m.uid()),
                Err(_) => "cli:unknown".to_owned(),
            }
        }
    }
}
