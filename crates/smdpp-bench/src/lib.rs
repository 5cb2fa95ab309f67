//! `smdpp bench load`: the SM-DP+ load generator.
//!
//! ```text
//! smdpp bench load --url https://127.0.0.1:8443 --devices 200 --downloads 3000 --data-dir DIR
//! ```
//!
//! runs N concurrent virtual devices against a running SM-DP+ and prints downloads/s, the
//! p50/p99/max latency of each ES9+ call, the failures by SGP.22 subjectCode/reasonCode (or
//! transport stage), and, when the server runs on this machine, the server's CPU time per
//! download next to the per-download crypto floor measured in the same run
//! ([`rsp_crypto::bench::try_per_download_floor`], what `smdpp bench crypto` prints), as a
//! ratio. `--json` prints the same report as JSON.
//!
//! # Phases
//!
//! 1. **Checks.** Flags are validated and the URL is probed with one TCP connection, so an
//!    unreachable server is reported before anything is written.
//! 2. **Inventory**, through the server's own import path. There is no admin API yet, so
//!    the bench takes the server's `--data-dir` / `--database-url` / `--config` (the same
//!    flags and environment as `smdpp serve`, resolved the same way) and imports M profiles
//!    with [`smdpp_service::inventory::add_profile`], the function behind
//!    `smdpp profiles add --upp`: M distinct copies of one UPP template (the demo UPP padded
//!    to `--profile-bytes`, 20 KiB by default like the crypto floor's SCP03t share, or a
//!    `--upp` file), each with its own test-range ICCID with a valid Luhn digit
//!    ([`inventory`]), as Released orders with fresh MatchingIDs.
//! 3. **Devices.** N eUICCs are issued by the EUM of `--pki` (default: the server's PKI
//!    directory) with [`euicc_sim::Euicc::generate`], before the timed phase: certificate
//!    issuance is not server work. One device per concurrent task, each downloading several
//!    profiles in turn (M/N each), like a fleet of N phones; a fresh device per download
//!    would add M certificate issuances and change nothing on the server, which validates
//!    the eUICC and EUM certificates on every download either way.
//! 4. **Timed phase.** N tasks on a multi-thread tokio runtime take MatchingIDs from a shared
//!    queue and run the complete download with the euicc-sim LPA: initiateAuthentication,
//!    authenticateClient, getBoundProfilePackage, handleNotification with the
//!    ProfileInstallationResult. Each ES9+ call is timed through the LPA's hooks
//!    ([`driver`]). A download counts as complete when the profile is installed and the PIR
//!    was acknowledged. Server and load generator CPU time (`utime + stime` of
//!    `/proc/PID/stat`, [`procfs`]) are read before and after. The server process is
//!    `--server-pid`, or found by its listening socket when the URL's host is local.
//! 5. **Floor.** The crypto floor runs after the timed phase, in this process, with the
//!    server idle: `--floor-iterations` downloads' worth of crypto on the curve of the PKI.
//!
//! # Reading the figures on one machine
//!
//! With server and load generator on the same cores, both compete for CPU: the load
//! generator's own CPU per download (the virtual eUICC does the card-side crypto: two
//! certificate-chain validations, a key agreement, decryption of the BPP, two signatures)
//! is printed next to the server's, because throughput is bounded by their sum divided by
//! the number of cores. Latencies are client-side wall time and include waiting for a CPU.
//!
//! # Mounting
//!
//! ```ignore
//! #[derive(Subcommand)]
//! enum BenchCommand {
//!     /// The per-download crypto floor.
//!     Crypto { /* ... */ },
//!     /// Load a running SM-DP+ with N virtual devices and M downloads.
//!     Load(smdpp_bench::BenchArgs),
//! }
//! // ... BenchCommand::Load(args) => smdpp_bench::run(args),
//! ```

pub mod driver;
pub mod factory;
pub mod inventory;
pub mod procfs;
pub mod stats;
pub mod synth;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use euicc_sim::lpa::{Es9Client, Lpa, Transport};
use euicc_sim::{CertCache, Euicc, Provisioning};
use rsp_crypto::Curve;
use serde::Serialize;
use smdpp_service::assembly::{DataLocation, ServeOptions};

use crate::driver::{CALLS, DeviceResult, Queue};
use crate::inventory::{Inventory, UppTemplate};
use crate::stats::{ErrorTally, LatencySummary, merge_tally, summarize};

/// `smdpp bench load`: load a running SM-DP+.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// The SM-DP+: `https://HOST[:PORT]` (or `http://` for a plain-HTTP server). HOST:PORT is
    /// also the SM-DP+ address put in the Activation Codes, so it must be the server's.
    #[arg(long)]
    pub url: String,
    /// Concurrent virtual devices.
    #[arg(long, default_value_t = 200)]
    pub devices: usize,
    /// Complete downloads to perform (one new profile each).
    #[arg(long, default_value_t = 3000)]
    pub downloads: usize,
    /// The server's data directory: the profiles are imported into its database (same flag
    /// and environment as `serve`; default ./smdpp-data).
    #[arg(long, env = "SMDPP_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The server's database URL, when not the SQLite file of the data directory.
    #[arg(long, env = "SMDPP_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The server's TOML configuration file (for its data location).
    #[arg(long = "config", env = "SMDPP_CONFIG")]
    pub config: Option<PathBuf>,
    /// PKI directory with the EUM (eum.pem + eum.key) and CI that issue the devices
    /// (default: the server's, DATA_DIR/pki).
    #[arg(long)]
    pub pki: Option<PathBuf>,
    /// UPP template (SAIP DER with a ProfileHeader); its ICCID is replaced per profile.
    /// Default: the demo UPP padded to --profile-bytes.
    #[arg(long)]
    pub upp: Option<PathBuf>,
    /// Size of the default profile package, bytes (the crypto floor assumes 20 KiB).
    #[arg(long, default_value_t = 20 * 1024)]
    pub profile_bytes: usize,
    /// A server process ID, for its CPU time; repeat it for several nodes (`--server-pid P1
    /// --server-pid P2 ...`): each node's CPU is reported and summed. Default: the process
    /// listening on the URL's port, when the host is this machine.
    #[arg(long = "server-pid", value_name = "PID", value_parser = clap::value_parser!(u32).range(1..))]
    pub server_pid: Vec<u32>,
    /// The PostgreSQL server's postmaster PID: the CPU of that process tree (the postmaster,
    /// every backend and auxiliary process below it, including those that exited during the
    /// run) is reported as database CPU and added to the server's.
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(1..))]
    pub postgres_pid: Option<u32>,
    /// Let the virtual cards cache the SM-DP+ certificate chains they validated (CERT.DPauth
    /// and CERT.DPpb, once per exact certificate, shared by all devices), so that the load
    /// generator costs less; serverSignature1, smdpSignature2 and smdpSign are still verified
    /// on every download. Default: every card check on every download.
    #[arg(long)]
    pub cache_server_certs: bool,
    /// Downloads' worth of crypto for the floor (0: skip the floor).
    #[arg(long, default_value_t = 500)]
    pub floor_iterations: u32,
    /// Timeout of each ES9+ call, seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
    /// Do not check the server's TLS certificate (labs only).
    #[arg(long)]
    pub insecure: bool,
    /// Worker threads of the load generator (default: one per CPU).
    #[arg(long)]
    pub client_threads: Option<usize>,
    /// Re-use connections between ES9+ calls (HTTP/1.1 keep-alive, pooled). Default: a new
    /// connection (and TLS handshake) per call, like lpac.
    #[arg(long)]
    pub keep_alive: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

impl BenchArgs {
    /// Arguments with the defaults of the command line for `url`.
    pub fn new(url: impl Into<String>) -> BenchArgs {
        BenchArgs {
            url: url.into(),
            devices: 200,
            downloads: 3000,
            data_dir: None,
            database_url: None,
            config: None,
            pki: None,
            upp: None,
            profile_bytes: 20 * 1024,
            server_pid: Vec::new(),
            postgres_pid: None,
            cache_server_certs: false,
            floor_iterations: 500,
            timeout_secs: 60,
            insecure: false,
            client_threads: None,
            keep_alive: false,
            json: false,
        }
    }
}

/// CPU time of one process (or of several, summed) over the timed phase.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CpuFigures {
    /// The process, or the processes summed (server nodes; the postmaster for the database).
    pub pids: Vec<u32>,
    /// CPU seconds (user + system) during the timed phase.
    pub cpu_s: f64,
    /// CPU milliseconds per completed download.
    pub per_download_ms: f64,
    /// Average cores busy: `cpu_s` over the wall time.
    pub cores: f64,
}

/// The virtual cards' certificate cache over the run (`--cache-server-certs`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CertCacheFigures {
    /// Chain validations answered from the cache (validity re-checked).
    pub hits: u64,
    /// Chain validations done in full.
    pub misses: u64,
    /// Distinct certificates cached.
    pub entries: usize,
}

/// The crypto floor measured in this run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FloorFigures {
    /// Curve.
    pub curve: String,
    /// Iterations measured.
    pub iterations: u32,
    /// Median crypto time of one download, milliseconds.
    pub per_download_ms: f64,
    /// Median of the 3 signatures, milliseconds.
    pub sign_ms: f64,
    /// Median of the 5 verifications, milliseconds.
    pub verify_ms: f64,
    /// Median of the one-time key + ECKA, milliseconds.
    pub otk_ecdh_ms: f64,
    /// Median of SCP03t over 20 KiB, milliseconds.
    pub scp03t_ms: f64,
}

/// Everything a run measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchReport {
    /// The server URL.
    pub url: String,
    /// The SM-DP+ address used in the Activation Codes.
    pub smdp_address: String,
    /// Curve of the devices' PKI.
    pub curve: String,
    /// Whether connections were re-used between calls (`--keep-alive`).
    pub keep_alive: bool,
    /// Concurrent devices.
    pub devices: usize,
    /// Downloads attempted.
    pub downloads: usize,
    /// Size of each profile package, bytes.
    pub profile_bytes: usize,
    /// Seconds spent importing the inventory (not timed).
    pub import_s: f64,
    /// Seconds spent issuing the devices (not timed).
    pub devices_s: f64,
    /// Complete downloads (installed, PIR acknowledged).
    pub completed: u64,
    /// Failed downloads.
    pub failed: u64,
    /// Wall time of the timed phase, seconds.
    pub wall_s: f64,
    /// `completed / wall_s`.
    pub downloads_per_s: f64,
    /// Latency of each ES9+ call (successful calls of completed downloads), then of the
    /// whole download (`download`).
    pub latency: Vec<LatencySummary>,
    /// Failed downloads by error key.
    pub errors: ErrorTally,
    /// Whether the virtual cards cached the DP certificate chains (`--cache-server-certs`).
    pub cache_server_certs: bool,
    /// The cards' certificate cache counters, with `--cache-server-certs`.
    pub cert_cache: Option<CertCacheFigures>,
    /// Server CPU, when the server process is known and is not this process: the sum over
    /// the nodes.
    pub server_cpu: Option<CpuFigures>,
    /// Each server node's CPU (one entry per `--server-pid`, or the detected listener).
    pub server_nodes: Vec<CpuFigures>,
    /// Why there is no server CPU figure, if there is none.
    pub server_cpu_note: Option<String>,
    /// `downloads_per_s / server_cpu.cores`: complete downloads per second per core the
    /// server nodes used.
    pub downloads_per_node_core: Option<f64>,
    /// The PostgreSQL process tree's CPU (`--postgres-pid`).
    pub database_cpu: Option<CpuFigures>,
    /// Processes of the PostgreSQL tree seen at the end of the run (postmaster included).
    pub database_processes: Option<usize>,
    /// Why there is no database CPU figure although `--postgres-pid` was given.
    pub database_cpu_note: Option<String>,
    /// Server plus database CPU per complete download, milliseconds.
    pub server_and_database_cpu_per_download_ms: Option<f64>,
    /// `server_and_database_cpu_per_download_ms / floor.per_download_ms`.
    pub server_and_database_cpu_over_floor: Option<f64>,
    /// This process's CPU (the virtual devices and LPAs).
    pub client_cpu: Option<CpuFigures>,
    /// The crypto floor measured after the timed phase.
    pub floor: Option<FloorFigures>,
    /// `server_cpu.per_download_ms / floor.per_download_ms`.
    pub server_cpu_over_floor: Option<f64>,
}

/// The SM-DP+ address (`host[:port]`) and whether TLS is used, from `--url`.
pub fn parse_url(url: &str) -> Result<(String, bool)> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        bail!("--url {url:?}: must start with https:// or http://");
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        bail!("--url {url:?}: give only the scheme and HOST[:PORT] (ES9+ paths are fixed)");
    }
    smdpp_core::activation_code::validate_address(authority)
        .map_err(|e| anyhow!("--url {url:?}: {e}"))?;
    Ok((authority.to_owned(), tls))
}

fn validate(args: &BenchArgs) -> Result<()> {
    if args.devices == 0 {
        bail!("--devices must be at least 1");
    }
    if args.downloads == 0 {
        bail!("--downloads must be at least 1");
    }
    if args.downloads > inventory::MAX_DOWNLOADS {
        bail!("--downloads must be at most {}", inventory::MAX_DOWNLOADS);
    }
    if args.timeout_secs == 0 {
        bail!("--timeout-secs must be at least 1");
    }
    if args.client_threads == Some(0) {
        bail!("--client-threads must be at least 1");
    }
    for (i, p) in args.server_pid.iter().enumerate() {
        if args.server_pid[..i].contains(p) {
            bail!("--server-pid {p} is given twice");
        }
        if !procfs::process_exists(*p) {
            bail!("--server-pid {p}: no such process (or not readable in /proc)");
        }
    }
    if let Some(p) = args.postgres_pid {
        if args.server_pid.contains(&p) {
            bail!("--postgres-pid {p} is also a --server-pid");
        }
        match procfs::comm(p) {
            None => bail!("--postgres-pid {p}: no such process (or not readable in /proc)"),
            Some(c) if c != "postgres" => bail!(
                "--postgres-pid {p}: process {p} is {c:?}, not a PostgreSQL server (\"postgres\")"
            ),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Whether `host` names this machine (loopback or one of its addresses is not checked
/// beyond loopback and `localhost`).
fn is_local_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

/// Progress goes to stderr so that stdout carries only the report (text or JSON).
fn progress(msg: &str) {
    eprintln!("{msg}");
}

fn cpu_figures(
    pids: Vec<u32>,
    before: Option<Duration>,
    after: Option<Duration>,
    completed: u64,
    wall: Duration,
) -> Option<CpuFigures> {
    let used = after?.checked_sub(before?)?;
    let cpu_s = used.as_secs_f64();
    Some(CpuFigures {
        pids,
        cpu_s,
        per_download_ms: if completed > 0 {
            cpu_s * 1e3 / completed as f64
        } else {
            0.0
        },
        cores: if wall.is_zero() {
            0.0
        } else {
            cpu_s / wall.as_secs_f64()
        },
    })
}

/// Per-node and total server CPU from each node's CPU time read before and after the timed
/// phase (`(pid, before, after)`). A node that could not be read both times has no figure;
/// the total is then `None` and the note names it.
pub fn server_figures(
    nodes: &[(u32, Option<Duration>, Option<Duration>)],
    completed: u64,
    wall: Duration,
) -> (Vec<CpuFigures>, Option<CpuFigures>, Option<String>) {
    let mut per_node = Vec::with_capacity(nodes.len());
    let mut missing = Vec::new();
    let mut total = Duration::ZERO;
    for &(pid, before, after) in nodes {
        match (
            cpu_figures(vec![pid], before, after, completed, wall),
            before,
            after,
        ) {
            (Some(f), Some(b), Some(a)) => {
                total += a.saturating_sub(b);
                per_node.push(f);
            }
            _ => missing.push(pid.to_string()),
        }
    }
    if nodes.is_empty() {
        return (per_node, None, None);
    }
    if !missing.is_empty() {
        let note = format!(
            "server process {} could not be read before and after the run",
            missing.join(", ")
        );
        return (per_node, None, Some(note));
    }
    let pids = nodes.iter().map(|n| n.0).collect();
    let total = cpu_figures(pids, Some(Duration::ZERO), Some(total), completed, wall);
    (per_node, total, None)
}

/// Runs the benchmark on the current tokio runtime (multi-threaded) and returns the report.
/// Progress lines go to stderr.
pub async fn run_async(args: BenchArgs) -> Result<BenchReport> {
    validate(&args)?;
    let (address, tls) = parse_url(&args.url)?;
    let (host, port) = euicc_sim::http::split_address(&address, if tls { 443 } else { 80 })
        .map_err(|e| anyhow!("--url: {e}"))?;

    // 1. Is anything listening?
    let probe = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await;
    match probe {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => bail!(
            "cannot reach the SM-DP+ at {address} ({}): {e}; is `smdpp serve` running there?",
            args.url
        ),
        Err(_) => bail!(
            "cannot reach the SM-DP+ at {address} ({}): no answer within 5 s",
            args.url
        ),
    }

    // 2. Where the server's data and PKI are (resolved exactly like `serve`).
    let settings = ServeOptions {
        data: DataLocation {
            data_dir: args.data_dir.clone(),
            database_url: args.database_url.clone(),
            config: args.config.clone(),
            kek_file: None,
        },
        pki: args.pki.clone(),
        ..ServeOptions::default()
    }
    .resolve()
    .context("resolving the server's data location")?;
    let prov = Provisioning::from_pki_dir(&settings.pki_dir).map_err(|e| {
        anyhow!(
            "the devices' PKI ({}): {e}; give the server's --pki or --data-dir",
            settings.pki_dir.display()
        )
    })?;
    let curve: Curve = prov.eum_key.curve();
    let template = match &args.upp {
        Some(p) => UppTemplate::from_file(p)?,
        None => UppTemplate::demo(args.profile_bytes)?,
    };
    let devices = args.devices.min(args.downloads);

    // 3. The inventory, through the import path of `smdpp profiles add`.
    progress(&format!(
        "importing {} profiles ({} bytes each) into {}",
        args.downloads,
        template.len(),
        settings.data_dir.display()
    ));
    let t0 = Instant::now();
    let inventory = Inventory::open(&settings.database_url, &settings.kek_file).await?;
    let run_number = inventory::random_run_number()?;
    let imported = inventory
        .import(&template, run_number, args.downloads)
        .await;
    inventory.close().await;
    let ids = imported?;
    let import_s = t0.elapsed().as_secs_f64();

    // 4. The devices, before the clock starts.
    progress(&format!(
        "issuing {devices} eUICCs ({curve}) from {}",
        settings.pki_dir.display()
    ));
    let t0 = Instant::now();
    let cert_cache = args.cache_server_certs.then(CertCache::new);
    let mut euiccs = Vec::with_capacity(devices);
    for _ in 0..devices {
        let mut e = Euicc::generate(&prov, None).map_err(|e| anyhow!("issuing a device: {e}"))?;
        e.set_cert_cache(cert_cache.clone());
        euiccs.push(e);
    }
    let devices_s = t0.elapsed().as_secs_f64();
    let transport = match (tls, args.insecure) {
        (false, _) => Transport::Http,
        (true, true) => Transport::HttpsInsecure,
        (true, false) => Transport::Https(
            euiccs
                .first()
                .ok_or_else(|| anyhow!("no device"))?
                .state()
                .trust_store()
                .map_err(|e| anyhow!("the devices' trusted CIs: {e}"))?,
        ),
    };
    let client = Es9Client::new(transport)
        .map_err(|e| anyhow!("{e}"))?
        .with_timeout(Duration::from_secs(args.timeout_secs))
        .with_keep_alive(args.keep_alive);
    let lpa = Lpa::with_client(client);

    // Whose CPU to measure.
    let own_pid = std::process::id();
    let (mut server_pids, mut server_cpu_note) = if !args.server_pid.is_empty() {
        (args.server_pid.clone(), None)
    } else if is_local_host(&host) {
        match procfs::listener_pid(port) {
            Some(p) => (vec![p], None),
            None => (
                Vec::new(),
                Some(format!(
                    "no process of this user found listening on port {port}; pass --server-pid"
                )),
            ),
        }
    } else {
        (
            Vec::new(),
            Some("the server is not on this machine (or pass --server-pid)".to_owned()),
        )
    };
    if server_pids.contains(&own_pid) {
        server_cpu_note =
            Some("the server runs inside the load generator's process: CPU not separable".into());
        server_pids.clear();
    }
    let tps = procfs::clock_ticks_per_second();
    let read_nodes = |pids: &[u32]| -> Vec<Option<Duration>> {
        pids.iter()
            .map(|&p| procfs::process_cpu(Some(p), tps))
            .collect()
    };

    // 5. The timed phase.
    progress(&format!(
        "running {} downloads with {devices} concurrent devices against {}",
        args.downloads, args.url
    ));
    let queue = Arc::new(Queue::new(ids));
    let smdp_address: Arc<str> = Arc::from(address.as_str());
    let db_before = args
        .postgres_pid
        .and_then(|p| procfs::process_tree_cpu(p, tps));
    let server_before = read_nodes(&server_pids);
    let client_before = procfs::process_cpu(None, tps);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(devices);
    for e in euiccs {
        tasks.push(tokio::spawn(driver::run_device(
            lpa.clone(),
            e,
            Arc::clone(&smdp_address),
            Arc::clone(&queue),
        )));
    }
    let mut results: Vec<DeviceResult> = Vec::with_capacity(devices);
    let mut panicked = 0u64;
    for t in tasks {
        match t.await {
            Ok(r) => results.push(r),
            Err(_) => panicked += 1,
        }
    }
    let wall = started.elapsed();
    let server_after = read_nodes(&server_pids);
    let client_after = procfs::process_cpu(None, tps);
    let db_after = args
        .postgres_pid
        .and_then(|p| procfs::process_tree_cpu(p, tps));

    // Merge.
    let mut per_call: [Vec<Duration>; 4] = Default::default();
    let mut whole = Vec::new();
    let mut errors = ErrorTally::new();
    let mut completed = 0u64;
    for r in results {
        completed += r.completed;
        for (acc, v) in per_call.iter_mut().zip(r.calls) {
            acc.extend(v);
        }
        whole.extend(r.downloads);
        merge_tally(&mut errors, r.errors);
    }
    if panicked > 0 {
        *errors.entry("device task panicked".into()).or_default() += panicked;
    }
    let failed = (args.downloads as u64).saturating_sub(completed);
    let mut latency: Vec<LatencySummary> = per_call
        .iter_mut()
        .zip(CALLS)
        .map(|(v, name)| summarize(name, v))
        .collect();
    latency.push(summarize("download", &mut whole));

    let nodes: Vec<(u32, Option<Duration>, Option<Duration>)> = server_pids
        .iter()
        .zip(server_before)
        .zip(server_after)
        .map(|((&p, b), a)| (p, b, a))
        .collect();
    let (server_nodes, server_cpu, note) = server_figures(&nodes, completed, wall);
    if server_cpu_note.is_none() {
        server_cpu_note = note;
    }
    let client_cpu = cpu_figures(vec![own_pid], client_before, client_after, completed, wall);
    let (database_cpu, database_processes, database_cpu_note) = match args.postgres_pid {
        None => (None, None, None),
        Some(p) => match (db_before, db_after) {
            (Some((b, _)), Some((a, n))) => (
                cpu_figures(vec![p], Some(b), Some(a), completed, wall),
                Some(n),
                None,
            ),
            _ => (
                None,
                None,
                Some(format!(
                    "the PostgreSQL process {p} could not be read before and after the run"
                )),
            ),
        },
    };
    let cert_cache = cert_cache.map(|c| {
        let s = c.stats();
        CertCacheFigures {
            hits: s.hits,
            misses: s.misses,
            entries: s.entries,
        }
    });

    // 6. The floor, with the server idle.
    let floor = if args.floor_iterations > 0 {
        progress(&format!(
            "measuring the crypto floor ({curve}, {} iterations)",
            args.floor_iterations
        ));
        let iterations = args.floor_iterations;
        let r = tokio::task::spawn_blocking(move || {
            rsp_crypto::bench::try_per_download_floor(curve, iterations)
        })
        .await
        .context("the crypto floor task")?
        .context("measuring the crypto floor")?;
        Some(FloorFigures {
            curve: curve.name().to_owned(),
            iterations: r.iterations,
            per_download_ms: r.per_download_us / 1e3,
            sign_ms: r.sign_us / 1e3,
            verify_ms: r.verify_us / 1e3,
            otk_ecdh_ms: r.otk_ecdh_us / 1e3,
            scp03t_ms: r.scp03t_us / 1e3,
        })
    } else {
        None
    };
    let server_cpu_over_floor = match (&server_cpu, &floor) {
        (Some(s), Some(f)) if f.per_download_ms > 0.0 && completed > 0 => {
            Some(s.per_download_ms / f.per_download_ms)
        }
        _ => None,
    };

    let server_and_database_cpu_per_download_ms = match (&server_cpu, &database_cpu) {
        (Some(s), Some(d)) if completed > 0 => Some(s.per_download_ms + d.per_download_ms),
        _ => None,
    };
    let server_and_database_cpu_over_floor = match (server_and_database_cpu_per_download_ms, &floor)
    {
        (Some(sd), Some(f)) if f.per_download_ms > 0.0 => Some(sd / f.per_download_ms),
        _ => None,
    };
    let wall_s = wall.as_secs_f64();
    let downloads_per_s = if wall_s > 0.0 {
        completed as f64 / wall_s
    } else {
        0.0
    };
    let downloads_per_node_core = server_cpu
        .as_ref()
        .filter(|s| s.cores > 0.0)
        .map(|s| downloads_per_s / s.cores);
    Ok(BenchReport {
        url: args.url.clone(),
        smdp_address: address,
        curve: curve.name().to_owned(),
        keep_alive: args.keep_alive,
        devices,
        downloads: args.downloads,
        profile_bytes: template.len(),
        import_s,
        devices_s,
        completed,
        failed,
        wall_s,
        downloads_per_s,
        latency,
        errors,
        cache_server_certs: args.cache_server_certs,
        cert_cache,
        server_cpu,
        server_nodes,
        server_cpu_note,
        downloads_per_node_core,
        database_cpu,
        database_processes,
        database_cpu_note,
        server_and_database_cpu_per_download_ms,
        server_and_database_cpu_over_floor,
        client_cpu,
        floor,
        server_cpu_over_floor,
    })
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "smdpp bench: {} downloads, {} devices, {} ({}), profile {} bytes, {}",
            self.downloads,
            self.devices,
            self.url,
            self.curve,
            self.profile_bytes,
            if self.keep_alive {
                "keep-alive connections"
            } else {
                "one connection per call"
            }
        )?;
        writeln!(
            f,
            "  setup (not timed): import {:.2} s, devices {:.2} s",
            self.import_s, self.devices_s
        )?;
        writeln!(
            f,
            "  completed {} of {} in {:.3} s: {:.1} downloads/s",
            self.completed, self.downloads, self.wall_s, self.downloads_per_s
        )?;
        writeln!(
            f,
            "  latency, client wall time (ms)     count      p50      p99      max     mean"
        )?;
        for l in &self.latency {
            writeln!(
                f,
                "    {:<30} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                l.call, l.count, l.p50_ms, l.p99_ms, l.max_ms, l.mean_ms
            )?;
        }
        if self.errors.is_empty() {
            writeln!(f, "  errors: none")?;
        } else {
            writeln!(f, "  errors ({} failed downloads):", self.failed)?;
            for (k, v) in &self.errors {
                writeln!(f, "    {v:>7}  {k}")?;
            }
        }
        match &self.cert_cache {
            Some(c) => writeln!(
                f,
                "  cards: cache the DP chains (--cache-server-certs): CERT.DPauth/DPpb validated once per certificate ({} full validations, {} cache hits); server signatures verified on every download",
                c.misses, c.hits
            )?,
            None => writeln!(
                f,
                "  cards: every card check on every download (no certificate cache)"
            )?,
        }
        let pids = |p: &[u32]| p.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        match &self.server_cpu {
            Some(s) if s.pids.len() > 1 => {
                writeln!(
                    f,
                    "  server CPU:         {:.3} ms/download ({:.2} s, {:.2} cores, {} nodes)",
                    s.per_download_ms,
                    s.cpu_s,
                    s.cores,
                    s.pids.len()
                )?;
                for n in &self.server_nodes {
                    writeln!(
                        f,
                        "    node pid {:<10} {:.3} ms/download ({:.2} s, {:.2} cores)",
                        pids(&n.pids),
                        n.per_download_ms,
                        n.cpu_s,
                        n.cores
                    )?;
                }
            }
            Some(s) => writeln!(
                f,
                "  server CPU:         {:.3} ms/download ({:.2} s, {:.2} cores, pid {})",
                s.per_download_ms,
                s.cpu_s,
                s.cores,
                pids(&s.pids)
            )?,
            None => {
                writeln!(
                    f,
                    "  server CPU:         n/a ({})",
                    self.server_cpu_note.as_deref().unwrap_or("unknown")
                )?;
                for n in &self.server_nodes {
                    writeln!(
                        f,
                        "    node pid {:<10} {:.3} ms/download ({:.2} s, {:.2} cores)",
                        pids(&n.pids),
                        n.per_download_ms,
                        n.cpu_s,
                        n.cores
                    )?;
                }
            }
        }
        if let Some(d) = self.downloads_per_node_core {
            writeln!(f, "  downloads/s per node-core: {d:.1}")?;
        }
        match (&self.database_cpu, &self.database_cpu_note) {
            (Some(d), _) => writeln!(
                f,
                "  database CPU:       {:.3} ms/download ({:.2} s, {:.2} cores, postgres pid {} and its {} processes)",
                d.per_download_ms,
                d.cpu_s,
                d.cores,
                pids(&d.pids),
                self.database_processes.unwrap_or(0).saturating_sub(1)
            )?,
            (None, Some(n)) => writeln!(f, "  database CPU:       n/a ({n})")?,
            (None, None) => {}
        }
        if let Some(sd) = self.server_and_database_cpu_per_download_ms {
            writeln!(f, "  server + database CPU: {sd:.3} ms/download")?;
        }
        if let Some(c) = &self.client_cpu {
            writeln!(
                f,
                "  load generator CPU: {:.3} ms/download ({:.2} s, {:.2} cores)",
                c.per_download_ms, c.cpu_s, c.cores
            )?;
        }
        match &self.floor {
            Some(fl) => writeln!(
                f,
                "  crypto floor:       {:.3} ms/download ({}, median of {}: sign {:.3}, verify {:.3}, otk+ECKA {:.3}, SCP03t {:.3})",
                fl.per_download_ms,
                fl.curve,
                fl.iterations,
                fl.sign_ms,
                fl.verify_ms,
                fl.otk_ecdh_ms,
                fl.scp03t_ms
            )?,
            None => writeln!(f, "  crypto floor:       not measured")?,
        }
        match self.server_cpu_over_floor {
            Some(r) => write!(f, "  server CPU / crypto floor: {r:.2}x")?,
            None => write!(f, "  server CPU / crypto floor: n/a")?,
        }
        if let Some(r) = self.server_and_database_cpu_over_floor {
            write!(f, "\n  server + database CPU / crypto floor: {r:.2}x")?;
        }
        Ok(())
    }
}

/// `smdpp bench load`: builds a multi-thread runtime, runs the benchmark, prints the report
/// (text, or JSON with `--json`). Fails when no download completed.
pub fn run(args: BenchArgs) -> Result<()> {
    validate(&args)?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = args.client_threads {
        rt.worker_threads(n);
    }
    let rt = rt.build().context("starting the runtime")?;
    if cfg!(debug_assertions) {
        eprintln!("note: this is a debug build; run with --release for meaningful figures");
    }
    let json = args.json;
    let report = rt.block_on(run_async(args))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("serializing the report")?
        );
    } else {
        println!("{report}");
    }
    if report.completed == 0 {
        bail!("no download completed");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("https://127.0.0.1:8443").unwrap(),
            ("127.0.0.1:8443".into(), true)
        );
        assert_eq!(
            parse_url("http://smdp.example.com/").unwrap(),
            ("smdp.example.com".into(), false)
        );
    }

    #[test]
    fn rejects_bad_urls() {
        assert!(parse_url("127.0.0.1:8443").is_err());
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("https://").is_err());
        assert!(parse_url("https://h/gsma/rsp2").is_err());
        assert!(parse_url("https://user@h").is_err());
    }

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(extra: &[&str]) -> Result<BenchArgs, String> {
        use clap::Parser;
        let mut argv = vec!["bench", "--url", "https://127.0.0.1:8443"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv)
            .map(|c| c.bench)
            .map_err(|e| e.to_string())
    }

    /// The first line of a clap error.
    fn first_line(e: &str) -> &str {
        e.lines().next().unwrap_or("")
    }

    #[test]
    fn new_flags_parse_and_default_off() {
        let a = parse(&[]).unwrap();
        assert!(a.server_pid.is_empty() && a.postgres_pid.is_none() && !a.cache_server_certs);
        let d = BenchArgs::new("https://127.0.0.1:8443");
        assert!(d.server_pid.is_empty() && d.postgres_pid.is_none() && !d.cache_server_certs);
        let a = parse(&[
            "--server-pid",
            "11",
            "--server-pid",
            "12",
            "--server-pid",
            "13",
        ])
        .unwrap();
        assert_eq!(a.server_pid, [11, 12, 13]);
        let a = parse(&[
            "--server-pid",
            "11",
            "--postgres-pid",
            "7",
            "--cache-server-certs",
        ])
        .unwrap();
        assert_eq!((a.server_pid, a.postgres_pid), (vec![11], Some(7)));
        assert!(a.cache_server_certs);
    }

    #[test]
    fn rejects_garbage_pids_with_clap_messages() {
        let e = parse(&["--server-pid", "abc"]).unwrap_err();
        assert_eq!(
            first_line(&e),
            "error: invalid value 'abc' for '--server-pid <PID>': invalid digit found in string"
        );
        let e = parse(&["--server-pid", "0"]).unwrap_err();
        assert_eq!(
            first_line(&e),
            "error: invalid value '0' for '--server-pid <PID>': 0 is not in 1..=4294967295"
        );
        let e = parse(&["--server-pid", "-3"]).unwrap_err();
        assert!(
            first_line(&e).starts_with("error: unexpected argument '-3'"),
            "{e}"
        );
        let e = parse(&["--postgres-pid", "5x"]).unwrap_err();
        assert_eq!(
            first_line(&e),
            "error: invalid value '5x' for '--postgres-pid <PID>': invalid digit found in string"
        );
        let e = parse(&["--postgres-pid", "1", "--postgres-pid", "2"]).unwrap_err();
        assert_eq!(
            first_line(&e),
            "error: the argument '--postgres-pid <PID>' cannot be used multiple times"
        );
        let e = parse(&["--cache-server-certs=yes"]).unwrap_err();
        assert_eq!(
            first_line(&e),
            "error: unexpected value 'yes' for '--cache-server-certs' found; no more were expected"
        );
    }

    #[test]
    fn rejects_pids_that_are_not_the_processes_asked_for() {
        let own = std::process::id();
        let mut a = BenchArgs::new("https://127.0.0.1:8443");
        a.server_pid = vec![own, own];
        assert_eq!(
            validate(&a).unwrap_err().to_string(),
            format!("--server-pid {own} is given twice")
        );
        // A PID that no process has (above the kernel's pid_max).
        a.server_pid = vec![own, 4_194_305];
        assert_eq!(
            validate(&a).unwrap_err().to_string(),
            "--server-pid 4194305: no such process (or not readable in /proc)"
        );
        a.server_pid = vec![own];
        a.postgres_pid = Some(own);
        assert_eq!(
            validate(&a).unwrap_err().to_string(),
            format!("--postgres-pid {own} is also a --server-pid")
        );
        a.server_pid.clear();
        a.postgres_pid = Some(4_194_305);
        assert_eq!(
            validate(&a).unwrap_err().to_string(),
            "--postgres-pid 4194305: no such process (or not readable in /proc)"
        );
        // This test process is not a postmaster.
        a.postgres_pid = Some(own);
        let comm = procfs::comm(own).unwrap();
        assert_eq!(
            validate(&a).unwrap_err().to_string(),
            format!(
                "--postgres-pid {own}: process {own} is {comm:?}, not a PostgreSQL server (\"postgres\")"
            )
        );
    }

    /// Kills and reaps a child process when dropped.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn server_figures_of_three_real_processes() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let tps = procfs::clock_ticks_per_second();
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::write(&run, b"").unwrap();
        let spin = format!("while [ -e '{}' ]; do :; done", run.display());
        // Two busy "nodes" and an idle one.
        let spawn = |script: &str| {
            Reap(
                std::process::Command::new("sh")
                    .arg("-c")
                    .arg(script)
                    .spawn()
                    .unwrap(),
            )
        };
        let nodes = [spawn(&spin), spawn(&spin), spawn("exec sleep 60")];
        let pids: Vec<u32> = nodes.iter().map(|n| n.0.id()).collect();
        let read = || -> Vec<Option<Duration>> {
            pids.iter()
                .map(|&p| procfs::process_cpu(Some(p), tps))
                .collect()
        };
        let before = read();
        let started = Instant::now();
        // Until each busy node has used at least 0.3 s of CPU (at most 60 s).
        let mut after = read();
        while started.elapsed() < Duration::from_secs(60)
            && after[..2]
                .iter()
                .zip(&before)
                .any(|(a, b)| a.unwrap() - b.unwrap() < Duration::from_millis(300))
        {
            std::thread::sleep(Duration::from_millis(50));
            after = read();
        }
        let wall = started.elapsed();
        std::fs::remove_file(&run).unwrap();
        let readings: Vec<_> = pids
            .iter()
            .zip(before.iter().zip(&after))
            .map(|(&p, (&b, &a))| (p, b, a))
            .collect();
        let (per_node, total, note) = server_figures(&readings, 100, wall);
        assert_eq!(note, None);
        assert_eq!(per_node.len(), 3);
        let total = total.unwrap();
        assert_eq!(total.pids, pids);
        let sum: f64 = per_node.iter().map(|n| n.cpu_s).sum();
        assert!((total.cpu_s - sum).abs() < 1e-9, "{total:?} {per_node:?}");
        assert!(
            per_node[0].cpu_s >= 0.3 && per_node[1].cpu_s >= 0.3,
            "{per_node:?}"
        );
        assert!(per_node[2].cpu_s < 0.05, "{per_node:?}");
        assert!((total.per_download_ms - sum * 1e3 / 100.0).abs() < 1e-9);
        assert!((total.cores - sum / wall.as_secs_f64()).abs() < 1e-9);
        // A node gone before the second reading: its figure and the total are missing.
        let mut gone = readings.clone();
        gone[1].2 = None;
        let (per_node, total, note) = server_figures(&gone, 100, wall);
        assert_eq!(per_node.len(), 2);
        assert!(total.is_none());
        assert_eq!(
            note.unwrap(),
            format!(
                "server process {} could not be read before and after the run",
                pids[1]
            )
        );
        assert_eq!(server_figures(&[], 1, wall), (Vec::new(), None, None));
    }

    #[test]
    fn local_hosts() {
        assert!(is_local_host("127.0.0.1"));
        assert!(is_local_host("::1"));
        assert!(is_local_host("LOCALHOST"));
        assert!(!is_local_host("smdp.example.com"));
        assert!(!is_local_host("10.0.0.1"));
    }
}
