//! The `smdpp` command: argument parsing and wiring only. Every behaviour lives in the library
//! crates (`rsp-pki`, `rsp-crypto`, `smdpp-core`, ...).

mod pki_crl;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use rsp_crypto::Curve;
use smdpp_core::ActivationCode;

/// An open-source GSMA SGP.22 SM-DP+.
#[derive(Parser, Debug)]
#[command(name = "smdpp", version, about, propagate_version = true)]
struct Cli {
    /// Log line format on stderr: `text` (default) or `json` (one JSON object per line, with
    /// the fields of the current span, e.g. an ES9+ call's transactionId, EID and ICCID).
    #[arg(long, global = true, value_enum, env = "SMDPP_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// JSON lines.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the SM-DP+ (ES9+ over HTTPS). With no configuration it creates ./smdpp-data with a
    /// SQLite database, a test PKI and a demo profile, and listens on 127.0.0.1:8443.
    Serve(Box<smdpp::cli::ServeArgs>),
    /// The profile inventory: import subscriber data (CSV / JSON lines) or UPP files, list, show.
    Profiles {
        #[command(subcommand)]
        command: smdpp::cli::ProfilesCommand,
    },
    /// Profile types: template, metadata and limits of the profiles imported under them.
    Types {
        #[command(subcommand)]
        command: smdpp::factory_cli::TypesCommand,
    },
    /// Keys sealing the secrets at rest: status, rotation without downtime.
    Keys {
        #[command(subcommand)]
        command: smdpp::factory_cli::KeysCommand,
    },
    /// ES2+ operators (tenants) and their client certificates.
    Operators {
        #[command(subcommand)]
        command: smdpp::es2_cli::OperatorsCommand,
    },
    /// Download orders: the ES2+ functions from the command line.
    Orders {
        #[command(subcommand)]
        command: smdpp::es2_cli::OrdersCommand,
    },
    /// The web console (its users; the console itself is served by `serve` on the admin
    /// listener).
    Console {
        /// What to do.
        #[command(subcommand)]
        command: smdpp::console_cli::ConsoleCommand,
    },
    /// Core networks (HLR/HSS) that subscribers are provisioned in.
    CoreNetworks {
        #[command(subcommand)]
        command: smdpp::operator_cli::CoreNetworksCommand,
    },
    /// Subscribers for a core network (HLR/HSS): export as CSV, an osmo-hlr VTY script or
    /// Open5GS documents; Ki and OPc only into a passphrase-encrypted file.
    Subscribers {
        #[command(subcommand)]
        command: smdpp::export_cli::SubscribersCommand,
    },
    /// Signed webhooks for billing and provisioning: add, list, remove, test.
    Webhooks {
        #[command(subcommand)]
        command: smdpp::webhooks_cli::WebhooksCommand,
    },
    /// Outbound calls (HandleDownloadProgressInfo, ES12): delivery state.
    Outbox {
        #[command(subcommand)]
        command: smdpp::outbox_cli::OutboxCommand,
    },
    /// The audit trail: list records, verify the hash chain.
    Audit {
        #[command(subcommand)]
        command: smdpp::audit_cli::AuditCommand,
    },
    /// The virtual eUICC and LPA: create a device, download profiles, manage them, answer lpac.
    Euicc {
        #[command(subcommand)]
        command: euicc_sim::cli::EuiccCommand,
    },
    /// Test PKI: certificates and keys for a CI, an EUM, an eUICC and the SM-DP+ roles.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Activation Codes (SGP.22 section 4.1).
    Ac {
        #[command(subcommand)]
        command: AcCommand,
    },
    /// Benchmarks that print figures for this machine: `smdpp bench --url URL --devices N
    /// --downloads M` loads a running SM-DP+; `smdpp bench crypto` prints the crypto floor.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Bench {
        #[command(subcommand)]
        command: Option<BenchCommand>,
        #[command(flatten)]
        load: Option<smdpp_bench::BenchArgs>,
    },
}

#[derive(Subcommand, Debug)]
enum PkiCommand {
    /// Write a test PKI (ci, eum, euicc, dpauth, dppb, dptls: .pem + .key) into a directory.
    Init {
        /// Directory to write (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Curve of every key and certificate.
        #[arg(long, value_enum, default_value_t = CurveArg::Nist)]
        curve: CurveArg,
        /// SM-DP+ address (FQDN) for the DPtls certificate.
        #[arg(long, default_value = "testsmdpplus1.example.com")]
        smdp_address: String,
        /// SM-DP+ OID, carried in the DPauth, DPpb and DPtls subjectAltName.
        #[arg(long, default_value = "2.999.10")]
        smdp_oid: String,
        /// EID of the generated eUICC (32 digits); its first 8 digits become the EUM's range.
        #[arg(long)]
        eid: Option<String>,
        /// Overwrite files that already exist in the directory.
        #[arg(long)]
        force: bool,
    },
    /// Write a CRL (SGP.22 section 4.6) signed with a CI or EUM key, listing serial numbers.
    Crl(pki_crl::CrlArgs),
}

#[derive(Subcommand, Debug)]
enum AcCommand {
    /// Parse an Activation Code and print its fields.
    Parse {
        /// The code, with or without the `LPA:` prefix.
        code: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build an Activation Code from its fields.
    Format {
        /// SM-DP+ address (`FQDN[:port]`).
        #[arg(long)]
        smdp_address: String,
        /// MatchingID (0-9, A-Z, '-'); may be empty.
        #[arg(long, default_value = "")]
        matching_id: String,
        /// SM-DP+ OID.
        #[arg(long)]
        smdp_oid: Option<String>,
        /// Mark that a Confirmation Code is required.
        #[arg(long)]
        cc_required: bool,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// The server's per-download cryptography on this machine: 3 signs, 5 verifies, one
    /// one-time key pair + ECDH, the KDF and SCP03t over a 20 KB profile, on each curve.
    Crypto {
        /// Downloads to measure per curve (the median is reported).
        #[arg(long, default_value_t = 2000)]
        iterations: u32,
        /// Which curve(s).
        #[arg(long, value_enum, default_value_t = CurveChoice::Both)]
        curve: CurveChoice,
    },
    /// Per-profile cost of producing a personalized BPP at download time: open the sealed
    /// secrets, personalize the built-in template, build the BPP (P-256).
    Factory {
        /// Profiles to measure (medians and p90 are reported).
        #[arg(long, default_value_t = 2000)]
        iterations: u32,
    },
    /// ECDSA signatures and ECDH with keys on a PKCS#11 token (same flags as serve) against
    /// software keys, on 1 and several threads: what the token's session pool gives.
    Hsm(smdpp::hsm_bench_cli::HsmBenchArgs),
    /// Write a synthetic subscriber inventory (CSV, test PLMN 001/01) for import benchmarks:
    /// `smdpp bench gen-inventory --rows 1000000 inv.csv`, then `smdpp profiles import`.
    GenInventory {
        /// Rows to write.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Index of the first row (files with other ranges do not overlap).
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// The CSV file to create.
        out: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CurveArg {
    /// NIST P-256.
    Nist,
    /// brainpoolP256r1.
    Brainpool,
}

impl From<CurveArg> for Curve {
    fn from(c: CurveArg) -> Curve {
        match c {
            CurveArg::Nist => Curve::NistP256,
            CurveArg::Brainpool => Curve::BrainpoolP256r1,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CurveChoice {
    /// NIST P-256 and brainpoolP256r1.
    Both,
    /// NIST P-256.
    Nist,
    /// brainpoolP256r1.
    Brainpool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.command, cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Installs the `tracing` subscriber: plain text lines on stderr (stdout stays the commands'
/// output), filtered by `RUST_LOG` (`RUST_LOG=debug`, `RUST_LOG=smdpp_service=debug,warn`,
/// ...; invalid directives are ignored with a note).
///
/// Without `RUST_LOG`, `serve` logs `info` and above, while the one-shot commands log only
/// `warn` and above: their stderr is their error message, which scripts and tests compare
/// exactly, and info lines from the store or the vault would only get in the way there.
fn init_logging(command: &Command, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::filter::LevelFilter;
    let default = match command {
        Command::Serve(_) => LevelFilter::INFO,
        _ => LevelFilter::WARN,
    };
    let filter = EnvFilter::builder()
        .with_default_directive(default.into())
        .from_env_lossy();
    // Fails only when a subscriber is already installed, which main does not do.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// The web console on the admin listener, over the prepared server.
fn console() -> smdpp::cli::AdminRoutes {
    Box::new(|prepared, es2| {
        let s = &prepared.settings;
        let console = smdpp_console::Console {
            store: prepared.store.clone(),
            es2,
            smdp_address: s.smdp_address.clone(),
            session_ttl_ms: i64::try_from(s.console_session_ttl.as_millis()).unwrap_or(i64::MAX),
            secure_cookie: true,
            certificates: smdpp_service::ops::certificate_status(prepared.engine.keys()),
        };
        smdpp_console::router(std::sync::Arc::new(console))
    })
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => smdpp::cli::serve_blocking_with(*args, Some(console())),
        Command::Console { command } => smdpp::console_cli::run_blocking(command),
        Command::Profiles { command } => smdpp::cli::profiles_blocking(command),
        Command::Types { command } => smdpp::factory_cli::types_blocking(command),
        Command::Keys { command } => smdpp::factory_cli::keys_blocking(command),
        Command::Operators { command } => smdpp::es2_cli::operators_blocking(command),
        Command::CoreNetworks { command } => smdpp::operator_cli::core_networks_blocking(command),
        Command::Orders { command } => smdpp::es2_cli::orders_blocking(command),
        Command::Subscribers { command } => smdpp::export_cli::subscribers_blocking(command),
        Command::Webhooks { command } => smdpp::webhooks_cli::webhooks_blocking(command),
        Command::Outbox { command } => smdpp::outbox_cli::outbox_blocking(command),
        Command::Audit { command } => smdpp::audit_cli::audit_blocking(command),
        Command::Euicc { command } => euicc_sim::cli::run(command),
        Command::Pki {
            command:
                PkiCommand::Init {
                    out,
                    curve,
                    smdp_address,
                    smdp_oid,
                    eid,
                    force,
                },
        } => pki_init(out, curve.into(), smdp_address, smdp_oid, eid, force),
        Command::Pki {
            command: PkiCommand::Crl(args),
        } => pki_crl::run(args),
        Command::Ac { command } => ac(command),
        Command::Bench {
            command: Some(BenchCommand::Crypto { iterations, curve }),
            ..
        } => bench_crypto(iterations, curve),
        Command::Bench {
            command: Some(BenchCommand::Factory { iterations }),
            ..
        } => {
            println!("{}", smdpp_bench::factory::run_factory_bench(iterations)?);
            Ok(())
        }
        Command::Bench {
            command: Some(BenchCommand::Hsm(args)),
            ..
        } => {
            print!("{}", smdpp::hsm_bench_cli::run(&args)?);
            Ok(())
        }
        Command::Bench {
            command: Some(BenchCommand::GenInventory { rows, start, out }),
            ..
        } => gen_inventory(rows, start, &out),
        Command::Bench {
            load: Some(args), ..
        } => smdpp_bench::run(args),
        Command::Bench { .. } => {
            bail!("smdpp bench needs --url URL (a load run) or the crypto subcommand")
        }
    }
}

fn pki_init(
    out: PathBuf,
    curve: Curve,
    smdp_address: String,
    smdp_oid: String,
    eid: Option<String>,
    force: bool,
) -> Result<()> {
    smdpp_core::activation_code::validate_address(&smdp_address)
        .map_err(|e| anyhow::anyhow!("--smdp-address: {e}"))?;
    if !force {
        for (cert, key) in rsp_pki::LAYOUT {
            for name in [cert, key] {
                let path = out.join(name);
                if path.exists() {
                    bail!(
                        "{} already exists; use --force to overwrite",
                        path.display()
                    );
                }
            }
        }
    }
    let mut options = rsp_pki::PkiOptions::new(curve);
    options.smdp_address = smdp_address;
    options.smdp_oid = smdp_oid;
    options.eid = eid;
    let pki = rsp_pki::generate(options).context("generating the test PKI")?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    pki.write_to(&out)
        .with_context(|| format!("writing into {}", out.display()))?;
    println!("test PKI ({}) written to {}", curve.name(), out.display());
    println!("  eUICC EID: {}", pki.eid);
    for (cert, key) in rsp_pki::LAYOUT {
        println!("  {cert:<11} {key}");
    }
    println!(
        "check: openssl verify -CAfile {0}/ci.pem -untrusted {0}/eum.pem {0}/euicc.pem",
        out.display()
    );
    Ok(())
}

fn ac(command: AcCommand) -> Result<()> {
    match command {
        AcCommand::Parse { code, json } => {
            let ac = ActivationCode::parse(&code)?;
            if json {
                let v = serde_json::json!({
                    "smdpAddress": ac.smdp_address,
                    "matchingId": ac.matching_id,
                    "smdpOid": ac.smdp_oid,
                    "confirmationCodeRequired": ac.confirmation_code_required,
                });
                println!("{v}");
            } else {
                println!("SM-DP+ address:          {}", ac.smdp_address);
                println!("matching ID:             {}", ac.matching_id);
                println!(
                    "SM-DP+ OID:              {}",
                    ac.smdp_oid.as_deref().unwrap_or("-")
                );
                println!(
                    "confirmation code:       {}",
                    if ac.confirmation_code_required {
                        "required"
                    } else {
                        "not required"
                    }
                );
            }
            Ok(())
        }
        AcCommand::Format {
            smdp_address,
            matching_id,
            smdp_oid,
            cc_required,
        } => {
            let ac = ActivationCode {
                smdp_address,
                matching_id,
                smdp_oid,
                confirmation_code_required: cc_required,
            };
            ac.validate()?;
            println!("{}", ac.to_qr_string());
            Ok(())
        }
    }
}

fn gen_inventory(rows: u64, start: u64, out: &std::path::Path) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .with_context(|| format!("creating {}", out.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
    // Test data: the seed only keeps two generated files from sharing key values.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    smdpp_bench::synth::write_inventory_csv(&mut w, rows, start, seed)?;
    std::io::Write::flush(&mut w)?;
    println!("wrote {rows} rows to {}", out.display());
    Ok(())
}

fn bench_crypto(iterations: u32, choice: CurveChoice) -> Result<()> {
    if iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let curves: &[Curve] = match choice {
        CurveChoice::Both => &[Curve::NistP256, Curve::BrainpoolP256r1],
        CurveChoice::Nist => &[Curve::NistP256],
        CurveChoice::Brainpool => &[Curve::BrainpoolP256r1],
    };
    if cfg!(debug_assertions) {
        eprintln!("note: this is a debug build; run with --release for meaningful figures");
    }
    for &curve in curves {
        let report = rsp_crypto::bench::try_per_download_floor(curve, iterations)
            .with_context(|| format!("benchmarking {}", curve.name()))?;
        println!("{report}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
