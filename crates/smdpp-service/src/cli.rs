//! `smdpp serve` and `smdpp profiles ...`: clap arguments and their implementation.
//!
//! The `smdpp` binary mounts these:
//!
//! ```ignore
//! #[derive(Subcommand)]
//! enum Command {
//!     /// Run the SM-DP+ (ES9+ over HTTPS).
//!     Serve(smdpp_service::cli::ServeArgs),
//!     /// Manage the profile inventory.
//!     Profiles {
//!         #[command(subcommand)]
//!         command: smdpp_service::cli::ProfilesCommand,
//!     },
//! }
//! // ... Command::Serve(a) => smdpp_service::cli::serve_blocking(a),
//! //     Command::Profiles { command } => smdpp_service::cli::profiles_blocking(command),
//! ```
//!
//! Configuration precedence: command-line flag, then environment (`SMDPP_*`, through clap),
//! then the TOML file given with `--config` (unknown keys are refused), then the defaults:
//!
//! | setting | default |
//! |---|---|
//! | `listen` | `127.0.0.1:8443` |
//! | `smdp_address` | the listen address (`host:port`, the port dropped when 443) |
//! | `data_dir` | `./smdpp-data` |
//! | `database_url` | `sqlite://<data_dir>/smdpp.db` (`postgres://...` works too) |
//! | `pki` | `<data_dir>/pki`, generated (P-256) on first start when it has no `dpauth.pem` |
//! | `session_ttl_secs` | 600 |
//! | `pir_wait_secs` | 604800 (7 days) |
//! | `download_attempt_limit` | 5 |
//! | `cc_attempt_limit` | 3 |
//! | `rebind_on_new_otpk` | true |
//! | `plain_http` | false (HTTPS with CERT.DP.TLS) |
//! | `purge_interval_secs` | 60 (expired sessions, old ES2+ call records; 0 disables) |
//! | `es2_call_retention_secs` | 604800 (7 days) |
//! | `sqlite_synchronous` | `full` (`normal`: see [`smdpp_store::SqliteSynchronous`]) |
//! | `kek_file` | `<data_dir>/vault.kek`, created (mode 0600) on first start with an empty database |
//! | `admin_listen` | `127.0.0.1:8081` (metrics, health, console; `off` disables; the default is skipped when taken) |
//! | `console_session_ttl_secs` | 28800 (8 hours) |
//! | `limit_initiate_per_minute` | 6000 per client address (0: none; see `smdpp_server::abuse`) |
//! | `limit_refusals_per_minute` | 20 refused MatchingIDs / Confirmation Codes per client address |
//! | `max_open_sessions` | 100000 sessions before BPP delivery, all nodes (0: no bound) |
//! | `limit_refusals_per_eid_per_minute` | 10 refused MatchingIDs / Confirmation Codes per EID (0: none) |
//! | `crl`, `crl_url` | none (no revocation check; see [`crate::revocation`]) |
//! | `crl_refresh_secs` | 3600 (0: no refresh) |
//! | `crl_stale_policy` | `refuse` (a CRL past nextUpdate refuses what it covers; `warn`) |
//! | `cert_expiry_warn_days` | 30 (0: no warning) |
//!
//! CLI errors are reported with `anyhow` (this is the outermost layer); the engine below
//! uses typed errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use rsp_crypto::{Curve, KeyCustody, SoftwareKey};
use rsp_pki::{Certificate, PkiOptions, TrustStore};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use smdpp_core::ActivationCode;
use smdpp_server::{Es9HttpConfig, ListenMode, TlsConfig};
use smdpp_store::{
    EventRecord, NewProfile, ProfileFilter, ProfileState, SqliteSynchronous, Store, StoreError,
    StoreOptions, normalize_iccid,
};
use tokio::net::TcpListener;

use crate::config::{Limits, ServiceConfig};
use crate::es2::Es2Engine;
use crate::factory::Factory;
use crate::keys::{KeySet, ServerKeys};
use crate::purge::PurgeTask;
use crate::service::Es9Engine;
use crate::sidecar::{ProfileMetadata, Sidecar};
use crate::upp::{generate_matching_id, iccid_from_upp};

/// Where the server's data lives; shared by every subcommand that works on it.
#[derive(Args, Debug, Clone, Default)]
pub struct DataArgs {
    /// Data directory (database, generated PKI).
    #[arg(long, env = "SMDPP_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `sqlite://FILE` or `postgres://...` (default: SQLite in the data dir).
    #[arg(long, env = "SMDPP_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// TOML configuration file.
    #[arg(long = "config", env = "SMDPP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Key-encryption key file sealing the secrets at rest (default DATA_DIR/vault.kek,
    /// created with mode 0600 on first use).
    #[arg(long, env = "SMDPP_KEK_FILE")]
    pub kek_file: Option<PathBuf>,
}

/// `smdpp serve`.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Data location and configuration file.
    #[command(flatten)]
    pub data: DataArgs,
    /// Listen address (default 127.0.0.1:8443).
    #[arg(long, env = "SMDPP_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Our SM-DP+ address `FQDN[:port]` as in Activation Codes (default: the listen address).
    #[arg(long, env = "SMDPP_SMDP_ADDRESS")]
    pub smdp_address: Option<String>,
    /// PKI directory (layout of `smdpp pki init`; default DATA_DIR/pki, generated if missing).
    #[arg(long, env = "SMDPP_PKI")]
    pub pki: Option<PathBuf>,
    /// CERT.DPauth.ECDSA (PEM or DER), overriding the PKI directory.
    #[arg(long, env = "SMDPP_DPAUTH_CERT")]
    pub dpauth_cert: Option<PathBuf>,
    /// SK.DPauth.ECDSA (PEM).
    #[arg(long, env = "SMDPP_DPAUTH_KEY")]
    pub dpauth_key: Option<PathBuf>,
    /// CERT.DPpb.ECDSA (PEM or DER).
    #[arg(long, env = "SMDPP_DPPB_CERT")]
    pub dppb_cert: Option<PathBuf>,
    /// SK.DPpb.ECDSA (PEM).
    #[arg(long, env = "SMDPP_DPPB_KEY")]
    pub dppb_key: Option<PathBuf>,
    /// CERT.DP.TLS chain (PEM, leaf first).
    #[arg(long, env = "SMDPP_DPTLS_CERT")]
    pub dptls_cert: Option<PathBuf>,
    /// SK.DP.TLS (PEM, P-256).
    #[arg(long, env = "SMDPP_DPTLS_KEY")]
    pub dptls_key: Option<PathBuf>,
    /// The PKCS#11 token holding keys named `pkcs11:object=LABEL` (see
    /// [`crate::hsm_cli`]).
    #[command(flatten)]
    pub pkcs11: crate::hsm_cli::Pkcs11Args,
    /// Extra trusted CI certificate (PEM or DER); repeatable.
    #[arg(long = "trusted-ci")]
    pub trusted_ci: Vec<PathBuf>,
    /// Serve plain HTTP instead of HTTPS (only behind a TLS-terminating proxy, or tests).
    #[arg(long, env = "SMDPP_PLAIN_HTTP")]
    pub plain_http: bool,
    /// TLS implementation of the listener: `rustls` (default: GCM suite, P-256) or `openssl`
    /// (adds the CBC-SHA256 suite and brainpoolP256r1 of SGP.22 2.6.6, and a brainpool
    /// CERT.DP.TLS).
    #[arg(long, env = "SMDPP_TLS_BACKEND", value_enum)]
    pub tls_backend: Option<TlsBackend>,
    /// RSP session time-to-live between calls, seconds (default 600).
    #[arg(long, env = "SMDPP_SESSION_TTL_SECS")]
    pub session_ttl_secs: Option<u64>,
    /// Download attempts per order (default 5).
    #[arg(long, env = "SMDPP_DOWNLOAD_ATTEMPT_LIMIT")]
    pub download_attempt_limit: Option<i64>,
    /// Wrong Confirmation Codes tolerated per order (default 3).
    #[arg(long, env = "SMDPP_CC_ATTEMPT_LIMIT")]
    pub cc_attempt_limit: Option<i64>,
    /// SQLite durability: `full` (default; every commit fsynced, survives power loss) or
    /// `normal` (WAL fsynced at checkpoints only: survives a process crash, but an OS crash
    /// or power loss can lose the last committed transactions). Ignored on PostgreSQL.
    #[arg(long, env = "SMDPP_SQLITE_SYNCHRONOUS")]
    pub sqlite_synchronous: Option<SqliteSynchronous>,
    /// Admin listener (plain HTTP: /metrics, /healthz, /readyz and the web console), `ADDR`
    /// or `off`. Default 127.0.0.1:8081; when that default is taken the server starts
    /// without it (with a warning), an address given here must bind.
    #[arg(long, env = "SMDPP_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// Lifetime of a web-console log-in, seconds (default 28800, 8 hours).
    #[arg(long, env = "SMDPP_CONSOLE_SESSION_TTL_SECS")]
    pub console_session_ttl_secs: Option<u64>,
    /// initiateAuthentication calls allowed per client address per minute (default 6000;
    /// 0: no limit, e.g. for a load generator).
    #[arg(long, env = "SMDPP_LIMIT_INITIATE_PER_MINUTE")]
    pub limit_initiate_per_minute: Option<u32>,
    /// Refused MatchingIDs / Confirmation Codes allowed per client address per minute before
    /// its ES9+ calls are answered 429 (default 20; 0: no limit).
    #[arg(long, env = "SMDPP_LIMIT_REFUSALS_PER_MINUTE")]
    pub limit_refusals_per_minute: Option<u32>,
    /// RSP sessions open before their BPP is delivered, across all nodes (default 100000;
    /// 0: no bound); beyond it initiateAuthentication is refused with 1.2/5.1. A negative
    /// value is refused (it used to mean "no bound" silently).
    #[arg(long, env = "SMDPP_MAX_OPEN_SESSIONS", value_parser = clap::value_parser!(i64).range(0..))]
    pub max_open_sessions: Option<i64>,
    /// Refused MatchingIDs / Confirmation Codes allowed per EID per minute before that
    /// eUICC's calls are refused with 1.2/5.1 (default 10; 0: no limit).
    #[arg(long, env = "SMDPP_LIMIT_REFUSALS_PER_EID_PER_MINUTE")]
    pub limit_refusals_per_eid_per_minute: Option<u32>,
    /// Certificate revocation (CRLs) and expiry warnings (boxed: keeps the command enum
    /// small).
    #[command(flatten)]
    pub revocation: Box<RevocationArgs>,
}

/// The revocation flags of `smdpp serve` (see [`crate::revocation`]).
#[derive(Args, Debug, Clone, Default)]
pub struct RevocationArgs {
    /// CRL file (DER or PEM) of a trusted CI, or of an EUM; repeatable. Re-read at every
    /// refresh. A file that does not load is a start-up error.
    #[arg(long = "crl")]
    pub crl: Vec<PathBuf>,
    /// CRL URL (`http://`), fetched at start and at every refresh; repeatable. A failed
    /// fetch keeps the last good CRL and logs a warning.
    #[arg(long = "crl-url")]
    pub crl_url: Vec<String>,
    /// CRL refresh interval, seconds (default 3600; 0: no refresh).
    #[arg(long, env = "SMDPP_CRL_REFRESH_SECS")]
    pub crl_refresh_secs: Option<u64>,
    /// What a CRL past its nextUpdate does: `refuse` (default: the certificates it covers
    /// are refused, 8.1.2/6.1 or 8.1.3/6.1) or `warn` (used anyway, with a warning).
    #[arg(long, env = "SMDPP_CRL_STALE_POLICY")]
    pub crl_stale_policy: Option<String>,
    /// Warn when one of our certificates or a trusted CI expires within this many days
    /// (default 30; 0: no warning).
    #[arg(long, env = "SMDPP_CERT_EXPIRY_WARN_DAYS")]
    pub cert_expiry_warn_days: Option<u64>,
}

/// `smdpp profiles ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum ProfilesCommand {
    /// Import a UPP (SAIP DER) as a Released download order and print its Activation Code.
    Add {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
        /// The Unprotected Profile Package (DER); the ICCID is read from its ProfileHeader.
        #[arg(long)]
        upp: PathBuf,
        /// MatchingID (0-9 A-Z '-'); generated when absent.
        #[arg(long)]
        matching_id: Option<String>,
        /// Confirmation Code; only its SHA-256 is stored.
        #[arg(long)]
        confirmation_code: Option<String>,
        /// Service provider name shown by the LPA.
        #[arg(long, default_value = "smdpp")]
        spn: String,
        /// Profile name shown by the LPA (default: `Profile <ICCID>`).
        #[arg(long)]
        name: Option<String>,
        /// SM-DP+ address for the printed Activation Code (default: the file's
        /// `smdp_address`, else the one `serve` last served this data at, else as `serve`
        /// resolves it).
        #[arg(long, env = "SMDPP_SMDP_ADDRESS")]
        smdp_address: Option<String>,
    },
    /// Import subscriber data (CSV or JSON lines) as Available profiles of a type.
    Import(crate::factory_cli::ImportArgs),
    /// Create Available profiles of a generating type ahead of time (a pool).
    Generate(crate::operator_cli::GenerateArgs),
    /// List the profiles.
    List {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
        /// Only profiles of this type.
        #[arg(long = "type")]
        profile_type: Option<String>,
        /// Only profiles in this state (available, allocated, ..., installed, error).
        #[arg(long, value_parser = parse_state)]
        state: Option<ProfileState>,
        /// Only profiles of this operator.
        #[arg(long)]
        operator: Option<String>,
    },
    /// Show one profile and its history.
    Show {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
        /// The ICCID.
        iccid: String,
    },
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
    /// See [`ServeArgs::listen`].
    pub listen: Option<SocketAddr>,
    /// See [`ServeArgs::smdp_address`].
    pub smdp_address: Option<String>,
    /// See [`DataArgs::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// See [`DataArgs::database_url`].
    pub database_url: Option<String>,
    /// See [`ServeArgs::pki`].
    pub pki: Option<PathBuf>,
    /// See [`ServeArgs::dpauth_cert`].
    pub dpauth_cert: Option<PathBuf>,
    /// See [`ServeArgs::dpauth_key`].
    pub dpauth_key: Option<PathBuf>,
    /// See [`ServeArgs::dppb_cert`].
    pub dppb_cert: Option<PathBuf>,
    /// See [`ServeArgs::dppb_key`].
    pub dppb_key: Option<PathBuf>,
    /// See [`ServeArgs::dptls_cert`].
    pub dptls_cert: Option<PathBuf>,
    /// See [`ServeArgs::dptls_key`].
    pub dptls_key: Option<PathBuf>,
    /// See [`crate::hsm_cli::Pkcs11Args::pkcs11_module`].
    pub pkcs11_module: Option<PathBuf>,
    /// See [`crate::hsm_cli::Pkcs11Args::pkcs11_token`].
    pub pkcs11_token: Option<String>,
    /// See [`crate::hsm_cli::Pkcs11Args::pkcs11_pin_file`].
    pub pkcs11_pin_file: Option<PathBuf>,
    /// See [`ServeArgs::trusted_ci`].
    #[serde(default)]
    pub trusted_ci: Vec<PathBuf>,
    /// Further key sets, for other CIs.
    #[serde(default)]
    pub key_sets: Vec<KeySetFile>,
    /// See [`ServeArgs::plain_http`].
    pub plain_http: Option<bool>,
    /// See [`ServeArgs::tls_backend`]: `"rustls"` or `"openssl"`.
    pub tls_backend: Option<TlsBackend>,
    /// See [`ServeArgs::session_ttl_secs`].
    pub session_ttl_secs: Option<u64>,
    /// How long to wait for the ProfileInstallationResult, seconds.
    pub pir_wait_secs: Option<u64>,
    /// See [`ServeArgs::download_attempt_limit`].
    pub download_attempt_limit: Option<i64>,
    /// See [`ServeArgs::cc_attempt_limit`].
    pub cc_attempt_limit: Option<i64>,
    /// See [`Limits::rebind_on_new_otpk`].
    pub rebind_on_new_otpk: Option<bool>,
    /// Seed a demo profile when the inventory is empty (default true).
    pub demo_profile: Option<bool>,
    /// See [`Limits::purge_interval`], seconds.
    pub purge_interval_secs: Option<u64>,
    /// See [`Limits::es2_call_retention`], seconds.
    pub es2_call_retention_secs: Option<u64>,
    /// See [`ServeArgs::sqlite_synchronous`]: `"full"` or `"normal"`.
    pub sqlite_synchronous: Option<String>,
    /// See [`DataArgs::kek_file`].
    pub kek_file: Option<PathBuf>,
    /// See [`ServeArgs::admin_listen`].
    pub admin_listen: Option<String>,
    /// See [`ServeArgs::console_session_ttl_secs`].
    pub console_session_ttl_secs: Option<u64>,
    /// See [`ServeArgs::limit_initiate_per_minute`].
    pub limit_initiate_per_minute: Option<u32>,
    /// See [`ServeArgs::limit_refusals_per_minute`].
    pub limit_refusals_per_minute: Option<u32>,
    /// See [`ServeArgs::max_open_sessions`].
    pub max_open_sessions: Option<i64>,
    /// See [`ServeArgs::limit_refusals_per_eid_per_minute`].
    pub limit_refusals_per_eid_per_minute: Option<u32>,
    /// See [`RevocationArgs::crl`] (the flag's files are added to these).
    #[serde(default)]
    pub crl: Vec<PathBuf>,
    /// See [`RevocationArgs::crl_url`] (the flag's URLs are added to these).
    #[serde(default)]
    pub crl_url: Vec<String>,
    /// See [`RevocationArgs::crl_refresh_secs`].
    pub crl_refresh_secs: Option<u64>,
    /// See [`RevocationArgs::crl_stale_policy`]: `"refuse"` or `"warn"`.
    pub crl_stale_policy: Option<String>,
    /// See [`RevocationArgs::cert_expiry_warn_days`].
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
    pub pkcs11: Option<crate::hsm_cli::Pkcs11Settings>,
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

fn parse_admin_listen(text: &str) -> Result<AdminListen> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(AdminListen::Off);
    }
    text.parse()
        .map(AdminListen::At)
        .map_err(|_| anyhow!("admin listen: {text:?} is neither an address (IP:PORT) nor `off`"))
}

/// `host:port`, with the port dropped when it is 443.
pub(crate) fn address_of(listen: SocketAddr) -> String {
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

pub(crate) fn data_location(d: &DataArgs, file: &FileConfig) -> Result<(PathBuf, String)> {
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

pub(crate) fn load_file(d: &DataArgs) -> Result<FileConfig> {
    match &d.config {
        Some(p) => FileConfig::load(p),
        None => Ok(FileConfig::default()),
    }
}

impl ServeArgs {
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
            kek_file: crate::factory_cli::kek_location(&self.data, &f, &data_dir),
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
    if let Some(key) = crate::hsm_cli::token_key(path, token)? {
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

/// Opens (and migrates) the store of a data location, as the one-shot commands do.
pub async fn open_data_store(d: &DataArgs) -> Result<Store> {
    let f = load_file(d)?;
    let (dir, url) = data_location(d, &f)?;
    Ok(open_store(&dir, &url).await?.0)
}

pub(crate) async fn open_store(data_dir: &Path, url: &str) -> Result<(Store, Sidecar)> {
    open_store_with(data_dir, url, &StoreOptions::default()).await
}

pub(crate) async fn open_store_with(
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
            crate::hsm_cli::token_key(&key, token.as_ref())?,
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
    let factory = match crate::hsm_cli::token_kek(&settings.kek_file, token.as_ref())? {
        Some(kek) => crate::factory_cli::open_factory_kek(&store, kek, true).await?,
        None => crate::factory_cli::open_factory(&store, &settings.kek_file).await?,
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
            Some(crate::factory_cli::seed_demo(&store, &factory).await?.1)
        } else {
            // A later start: the demo order, if it still waits for its download, is shown
            // again (with this start's address).
            store
                .list_profiles(&ProfileFilter {
                    profile_type: Some(crate::factory_cli::DEMO_TYPE.to_owned()),
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

/// `smdpp serve`: prepare, print how to use it, serve until Ctrl-C.
pub async fn serve(args: ServeArgs) -> Result<()> {
    serve_with(args, None).await
}

/// Binds the admin listener as `s.admin_listen` says (`None` when off, or when the default
/// address is taken).
async fn bind_admin(s: &Settings) -> Result<Option<TcpListener>> {
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

/// [`serve`] with extra routes on the admin listener (the binary adds the web console).
pub async fn serve_with(args: ServeArgs, extra: Option<AdminRoutes>) -> Result<()> {
    let settings = args.resolve()?;
    let prepared = prepare(settings).await?;
    let listener = smdpp_server::bind(prepared.settings.listen)
        .await
        .with_context(|| format!("binding {}", prepared.settings.listen))?;
    let s = &prepared.settings;
    // For the other commands' Activation Codes (crate::config::public_address).
    prepared
        .store
        .set_setting(crate::config::PUBLIC_ADDRESS, &s.smdp_address)
        .await
        .context("recording the SM-DP+ address")?;
    let scheme = if prepared.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!(
        "SM-DP+ listening on {scheme}://{} (SM-DP+ address {})",
        listener.local_addr()?,
        s.smdp_address
    );
    println!("data directory: {}", s.data_dir.display());
    println!(
        "PKI: {}{}",
        s.pki_dir.display(),
        if prepared.generated_pki {
            " (generated now)"
        } else {
            ""
        }
    );
    if let Some(ac) = &prepared.demo_activation_code {
        println!(
            "demo inventory: {} test profiles of type {:?} (MCC/MNC 001/01); one is released:",
            crate::factory_cli::DEMO_PROFILES,
            crate::factory_cli::DEMO_TYPE
        );
        println!("demo profile Activation Code: {ac}");
    }
    if let Some(qr) = &prepared.demo_qr {
        println!("its QR code: {}", qr.display());
    }
    println!("run a virtual device against it:");
    println!(
        "  smdpp euicc init --state dev.json --pki {}",
        s.pki_dir.display()
    );
    println!(
        "  smdpp euicc download --state dev.json 'LPA:1${}$<matching id>'",
        s.smdp_address
    );
    let admin = match bind_admin(s).await? {
        Some(l) => {
            println!(
                "admin listener: http://{}/ (metrics, health, console)",
                l.local_addr()?
            );
            Some((l, admin_router(&prepared, extra)))
        }
        None => None,
    };
    run_with_admin(&prepared, listener, admin, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    prepared.store.close().await;
    Ok(())
}

/// [`serve`] on a new multi-threaded tokio runtime.
pub fn serve_blocking(args: ServeArgs) -> Result<()> {
    serve_blocking_with(args, None)
}

/// [`serve_with`] on a new multi-threaded tokio runtime.
pub fn serve_blocking_with(args: ServeArgs, extra: Option<AdminRoutes>) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve_with(args, extra))
}

/// A profile state by its name (`available`, `released`, ...).
fn parse_state(s: &str) -> std::result::Result<ProfileState, String> {
    s.to_ascii_lowercase().parse().map_err(|_| {
        format!(
            "unknown state {s:?}; one of: {}",
            ProfileState::ALL.map(|st| st.as_str()).join(", ")
        )
    })
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

/// Imports a UPP as a Released order; returns `(matching id, iccid)`.
#[allow(clippy::too_many_arguments)]
pub async fn add_profile(
    store: &Store,
    sidecar: &Sidecar,
    factory: &Factory,
    upp: &[u8],
    matching_id: Option<String>,
    confirmation_code: Option<&str>,
    spn: &str,
    name: Option<String>,
) -> Result<(String, String)> {
    let iccid = iccid_from_upp(upp)?;
    let iccid = normalize_iccid(&iccid)?;
    let matching_id = match matching_id {
        Some(m) => {
            smdpp_core::activation_code::validate_matching_id(&m).map_err(|e| anyhow!("{e}"))?;
            m
        }
        None => generate_matching_id().map_err(|e| anyhow!("{e}"))?,
    };
    if spn.len() > 32 {
        bail!("service provider name is longer than 32 bytes");
    }
    let name = name.unwrap_or_else(|| format!("Profile {iccid}"));
    if name.len() > 64 {
        bail!("profile name is longer than 64 bytes");
    }
    let p = NewProfile {
        iccid: iccid.clone(),
        operator_id: None,
        profile_type: None,
        state: ProfileState::Released,
        matching_id: Some(matching_id.clone()),
        eid: None,
        // Only SHA-256(CC) is kept (SGP.22 section 4.7).
        cc_hash: confirmation_code.map(|cc| Sha256::digest(cc.as_bytes()).to_vec()),
        cc_attempt_limit: None,
        download_attempt_limit: None,
        // Sealed at rest (its keys are secrets).
        upp: Some(factory.seal_upp(&iccid, upp)?),
        smds_address: None,
        expires_at: None,
    };
    match store
        .insert_profile(
            &p,
            &EventRecord::by(crate::audit_cli::cli_actor()).with_cause("profiles add"),
        )
        .await
    {
        Ok(_) => {}
        Err(StoreError::Duplicate { key }) => bail!("a profile with this {key} already exists"),
        Err(e) => return Err(e.into()),
    }
    sidecar
        .put_metadata(
            &iccid,
            &ProfileMetadata {
                service_provider_name: spn.to_owned(),
                profile_name: name,
                profile_class: None,
            },
        )
        .await?;
    Ok((matching_id, iccid))
}

/// `smdpp profiles ...`.
pub async fn profiles(cmd: ProfilesCommand) -> Result<()> {
    match cmd {
        ProfilesCommand::Add {
            data,
            upp,
            matching_id,
            confirmation_code,
            spn,
            name,
            smdp_address,
        } => {
            let f = load_file(&data)?;
            let (dir, url) = data_location(&data, &f)?;
            let bytes =
                std::fs::read(&upp).with_context(|| format!("reading {}", upp.display()))?;
            let (store, sidecar) = open_store(&dir, &url).await?;
            let address = crate::config::public_address(&store, smdp_address, &f).await?;
            let factory = crate::factory_cli::open_factory(
                &store,
                &crate::factory_cli::kek_location(&data, &f, &dir),
            )
            .await?;
            let (mid, iccid) = add_profile(
                &store,
                &sidecar,
                &factory,
                &bytes,
                matching_id,
                confirmation_code.as_deref(),
                &spn,
                name,
            )
            .await?;
            println!("added profile {iccid} (Released)");
            println!(
                "Activation Code: {}",
                activation_code(&address, &mid, confirmation_code.is_some())
            );
            store.close().await;
        }
        ProfilesCommand::Import(a) => crate::factory_cli::import_command(a).await?,
        ProfilesCommand::Generate(a) => crate::operator_cli::profiles_generate(a).await?,
        ProfilesCommand::List {
            data,
            profile_type,
            state,
            operator,
        } => {
            let f = load_file(&data)?;
            let (dir, url) = data_location(&data, &f)?;
            let (store, _) = open_store(&dir, &url).await?;
            let mut after = None;
            loop {
                let page = store
                    .list_profiles(&ProfileFilter {
                        profile_type: profile_type.clone(),
                        state,
                        operator_id: operator.clone(),
                        after_iccid: after.clone(),
                        limit: Some(500),
                        ..ProfileFilter::default()
                    })
                    .await?;
                for p in &page {
                    println!(
                        "{}  {:<10}  mid={}  eid={}  downloads={}  cc_attempts={}{}",
                        p.iccid,
                        p.state,
                        p.matching_id.as_deref().unwrap_or("-"),
                        p.eid.as_deref().unwrap_or("-"),
                        p.download_attempts,
                        p.cc_attempts,
                        p.error_cause
                            .as_deref()
                            .map(|c| format!("  cause={c}"))
                            .unwrap_or_default()
                    );
                }
                match page.last() {
                    Some(p) if page.len() == 500 => after = Some(p.iccid.clone()),
                    _ => break,
                }
            }
            store.close().await;
        }
        ProfilesCommand::Show { data, iccid } => {
            let f = load_file(&data)?;
            let (dir, url) = data_location(&data, &f)?;
            let (store, sidecar) = open_store(&dir, &url).await?;
            let p = store
                .get_profile(&iccid)
                .await?
                .ok_or_else(|| anyhow!("no profile {iccid}"))?;
            println!("iccid:              {}", p.iccid);
            println!("state:              {}", p.state);
            println!(
                "matching id:        {}",
                p.matching_id.as_deref().unwrap_or("-")
            );
            println!("eid:                {}", p.eid.as_deref().unwrap_or("-"));
            println!("cc required:        {}", p.cc_hash.is_some());
            println!("download attempts:  {}", p.download_attempts);
            println!("cc attempts:        {}", p.cc_attempts);
            println!(
                "error cause:        {}",
                p.error_cause.as_deref().unwrap_or("-")
            );
            println!(
                "profile type:       {}",
                p.profile_type.as_deref().unwrap_or("-")
            );
            println!(
                "operator:           {}",
                p.operator_id.as_deref().unwrap_or("-")
            );
            // Never a secret: the IMSI, and where the secrets are (sealed, under which key).
            if let Some(sec) = store.get_sealed_secrets(&p.iccid).await? {
                println!("imsi:               {}", sec.imsi);
                println!(
                    "subscriber secrets: sealed (AES-256-GCM, data-encryption key {})",
                    sec.dek_id
                );
            }
            if let Some(upp) = &p.upp {
                println!(
                    "stored package:     {} bytes, {}",
                    upp.len(),
                    if crate::factory::is_plaintext_upp(upp) {
                        "in the clear (sealed at the next `smdpp serve` start)"
                    } else {
                        "sealed"
                    }
                );
            }
            if let Some(m) = sidecar.get_metadata(&p.iccid).await? {
                println!("service provider:   {}", m.service_provider_name);
                println!("profile name:       {}", m.profile_name);
            }
            if let Some((eid, seq)) = store.device_seq(&p.iccid).await? {
                println!("last notification:  seqNumber {seq} from {eid}");
            }
            for o in store.rpm_orders_for(&p.iccid).await? {
                println!(
                    "rpm order:          {}  {}  {}  {}{}",
                    o.id,
                    o.commands,
                    o.state,
                    crate::display::rfc3339(o.updated_at),
                    o.result_summary
                        .as_deref()
                        .map_or(String::new(), |r| format!("  ({r})"))
                );
            }
            println!("history:");
            for e in store.events_for(&p.iccid).await? {
                println!(
                    "  {}  {} -> {}  {}  {}{}",
                    crate::display::rfc3339(e.at),
                    e.from_state.map_or("-".to_owned(), |s| s.to_string()),
                    e.to_state,
                    e.actor,
                    e.cause.as_deref().unwrap_or(""),
                    e.detail
                        .as_deref()
                        .map_or(String::new(), |d| format!("  ({d})"))
                );
            }
            store.close().await;
        }
    }
    Ok(())
}

/// [`profiles`] on a current-thread tokio runtime.
pub fn profiles_blocking(cmd: ProfilesCommand) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(profiles(cmd))
}
