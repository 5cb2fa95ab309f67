//! `smdpp serve` and `smdpp profiles ...`: clap arguments and their implementation.
//!
//! The `smdpp` binary mounts these:
//!
//! ```ignore
//! #[derive(Subcommand)]
//! enum Command {
//!     /// Run the SM-DP+ (ES9+ over HTTPS).
//!     Serve(smdpp::cli::ServeArgs),
//!     /// Manage the profile inventory.
//!     Profiles {
//!         #[command(subcommand)]
//!         command: smdpp::cli::ProfilesCommand,
//!     },
//! }
//! // ... Command::Serve(a) => smdpp::cli::serve_blocking(a),
//! //     Command::Profiles { command } => smdpp::cli::profiles_blocking(command),
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
//! | `crl`, `crl_url` | none (no revocation check; see [`smdpp_service::revocation`]) |
//! | `crl_refresh_secs` | 3600 (0: no refresh) |
//! | `crl_stale_policy` | `refuse` (a CRL past nextUpdate refuses what it covers; `warn`) |
//! | `cert_expiry_warn_days` | 30 (0: no warning) |
//!
//! CLI errors are reported with `anyhow` (this is the outermost layer); the engine below
//! uses typed errors.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use smdpp_store::{ProfileFilter, ProfileState, SqliteSynchronous, Store};

use smdpp_service::assembly::bind_admin;
pub(crate) use smdpp_service::assembly::open_store;
pub use smdpp_service::assembly::{
    AdminListen, AdminRoutes, DEFAULT_ADMIN_LISTEN, DataLocation, FileConfig, KeySetFile, Prepared,
    RevocationOptions, ServeOptions, Settings, TlsBackend, activation_code, admin_router,
    es2_engine, load_keys, prepare, run, run_with_admin,
};
pub use smdpp_service::inventory::add_profile;

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

/// The revocation flags of `smdpp serve` (see [`smdpp_service::revocation`]).
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

impl DataArgs {
    /// The engine's view of these flags.
    pub fn location(&self) -> DataLocation {
        DataLocation {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            config: self.config.clone(),
            kek_file: self.kek_file.clone(),
        }
    }
}

/// [`smdpp_service::assembly::data_location`] of these flags.
pub(crate) fn data_location(d: &DataArgs, file: &FileConfig) -> Result<(PathBuf, String)> {
    smdpp_service::assembly::data_location(&d.location(), file)
}

/// [`smdpp_service::assembly::load_file`] of these flags.
pub(crate) fn load_file(d: &DataArgs) -> Result<FileConfig> {
    smdpp_service::assembly::load_file(&d.location())
}

impl ServeArgs {
    /// Resolves flags/environment over the file over the defaults
    /// ([`ServeOptions::resolve`] of [`ServeArgs::options`]).
    pub fn resolve(&self) -> Result<Settings> {
        self.options().resolve()
    }

    /// The engine's view of these flags.
    pub fn options(&self) -> ServeOptions {
        let r = &self.revocation;
        ServeOptions {
            data: self.data.location(),
            listen: self.listen,
            smdp_address: self.smdp_address.clone(),
            pki: self.pki.clone(),
            dpauth_cert: self.dpauth_cert.clone(),
            dpauth_key: self.dpauth_key.clone(),
            dppb_cert: self.dppb_cert.clone(),
            dppb_key: self.dppb_key.clone(),
            dptls_cert: self.dptls_cert.clone(),
            dptls_key: self.dptls_key.clone(),
            trusted_ci: self.trusted_ci.clone(),
            plain_http: self.plain_http,
            tls_backend: self.tls_backend,
            session_ttl_secs: self.session_ttl_secs,
            download_attempt_limit: self.download_attempt_limit,
            cc_attempt_limit: self.cc_attempt_limit,
            sqlite_synchronous: self.sqlite_synchronous,
            admin_listen: self.admin_listen.clone(),
            console_session_ttl_secs: self.console_session_ttl_secs,
            limit_initiate_per_minute: self.limit_initiate_per_minute,
            limit_refusals_per_minute: self.limit_refusals_per_minute,
            max_open_sessions: self.max_open_sessions,
            limit_refusals_per_eid_per_minute: self.limit_refusals_per_eid_per_minute,
            pkcs11: self.pkcs11.options(),
            revocation: RevocationOptions {
                crl: r.crl.clone(),
                crl_url: r.crl_url.clone(),
                crl_refresh_secs: r.crl_refresh_secs,
                crl_stale_policy: r.crl_stale_policy.clone(),
                cert_expiry_warn_days: r.cert_expiry_warn_days,
            },
        }
    }
}

/// Opens (and migrates) the store of a data location, as the one-shot commands do.
pub async fn open_data_store(d: &DataArgs) -> Result<Store> {
    smdpp_service::assembly::open_data_store(&d.location()).await
}

/// `smdpp serve`: prepare, print how to use it, serve until Ctrl-C.
pub async fn serve(args: ServeArgs) -> Result<()> {
    serve_with(args, None).await
}

/// [`serve`] with extra routes on the admin listener (the binary adds the web console).
pub async fn serve_with(args: ServeArgs, extra: Option<AdminRoutes>) -> Result<()> {
    let settings = args.resolve()?;
    let prepared = prepare(settings).await?;
    let listener = smdpp_server::bind(prepared.settings.listen)
        .await
        .with_context(|| format!("binding {}", prepared.settings.listen))?;
    let s = &prepared.settings;
    // For the other commands' Activation Codes (smdpp_service::config::public_address).
    prepared
        .store
        .set_setting(smdpp_service::config::PUBLIC_ADDRESS, &s.smdp_address)
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
            smdpp_service::inventory::DEMO_PROFILES,
            smdpp_service::inventory::DEMO_TYPE
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
            let address = smdpp_service::config::public_address(&store, smdp_address, &f).await?;
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
                    if smdpp_service::factory::is_plaintext_upp(upp) {
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
                    smdpp_service::display::rfc3339(o.updated_at),
                    o.result_summary
                        .as_deref()
                        .map_or(String::new(), |r| format!("  ({r})"))
                );
            }
            println!("history:");
            for e in store.events_for(&p.iccid).await? {
                println!(
                    "  {}  {} -> {}  {}  {}{}",
                    smdpp_service::display::rfc3339(e.at),
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
