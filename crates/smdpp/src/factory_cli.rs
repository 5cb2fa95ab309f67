//! `smdpp profiles import`, `smdpp types ...` and `smdpp keys ...`: the profile factory from
//! the command line, and the demo inventory `smdpp serve` seeds.
//!
//! # Import
//!
//! `smdpp profiles import --type TYPE [--operator OP] [--all-or-nothing] [--report FILE] FILE`
//! reads a CSV or JSON-lines file (format by extension, or `--format`; columns in
//! [`smdpp_inventory`]) as a stream. A reader thread validates each row (the checks of
//! personalization, duplicates within the file) and seals its secrets; the database side
//! inserts batches of rows, each row as its `profiles` row + `profile_secrets` row (both or
//! neither). Rows are then:
//! - **imported** (Available, of the type, owned by the operator when given);
//! - **already present**: the same ICCID with the same IMSI, type and operator is in the
//!   inventory (a re-run of the same file): skipped, not an error, so re-running is harmless;
//! - **rejected**: a bad value, a duplicate within the file, or an ICCID/IMSI held by another
//!   profile. Each is reported with its line, field and reason (the first 20 on the terminal,
//!   all of them in `--report FILE`, a CSV of `line,field,reason`).
//!
//! By default every good row is imported (one transaction per batch of [`BATCH_ROWS`]). With
//! `--all-or-nothing` the whole file is one transaction, rolled back if any row is rejected.
//! The command fails (exit status 1) when a row was rejected, after printing the counts.
//! Memory is bounded: the in-file duplicate sets (about 40 bytes per row) and two batches.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use saip::{Template, TemplateSource};
use smdpp_inventory::{Format, Options};
use smdpp_store::{ProfileState, ProfileType, Store};

use crate::cli::{DataArgs, FileConfig, data_location, load_file};
pub use smdpp_service::assembly::{open_factory, open_factory_kek, open_factory_with};
use smdpp_service::factory::{Factory, load_or_create_kek};
pub use smdpp_service::inventory::{
    BATCH_ROWS, DEMO_PROFILES, DEMO_TYPE, ImportOptions, ImportSummary, demo_csv, import_file,
    seed_demo,
};
use smdpp_service::inventory::{NotifyOn, Ppr, ProfileClass};

/// Rejected rows printed on the terminal (all of them go to `--report`).
const PRINTED_REJECTS: usize = 20;

/// The key-encryption key file: flag/environment, then the configuration file, then
/// `<data dir>/vault.kek` ([`smdpp_service::assembly::kek_location`] of these flags).
pub(crate) fn kek_location(d: &DataArgs, file: &FileConfig, data_dir: &Path) -> PathBuf {
    smdpp_service::assembly::kek_location(&d.location(), file, data_dir)
}

async fn open_all(data: &DataArgs) -> Result<(Store, Arc<Factory>)> {
    open_all_with(data, true).await
}

/// [`smdpp_service::assembly::open_all_with`] of these flags.
pub(crate) async fn open_all_with(data: &DataArgs, create: bool) -> Result<(Store, Arc<Factory>)> {
    smdpp_service::assembly::open_all_with(&data.location(), create).await
}

// ------------------------------------------------------------------ import

/// Input format flag.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatArg {
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// `smdpp profiles import`.
#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// Data location and configuration file.
    #[command(flatten)]
    pub data: DataArgs,
    /// Profile type of the imported profiles (`smdpp types add`).
    #[arg(long = "type")]
    pub profile_type: String,
    /// Operator owning the profiles (`smdpp operators add`); needed for ES2+ DownloadOrder.
    #[arg(long)]
    pub operator: Option<String>,
    /// Import nothing if any row is rejected (one transaction for the whole file).
    #[arg(long)]
    pub all_or_nothing: bool,
    /// Write every rejected row (line, field, reason) to this CSV file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Input format (default: from the extension, `.csv` or `.jsonl`/`.ndjson`).
    #[arg(long)]
    pub format: Option<FormatArg>,
    /// MNC length of rows without an `mnc_len` column (2 or 3).
    #[arg(long, default_value_t = 2)]
    pub mnc_len: u8,
    /// Require every IMSI to start with this MCC+MNC.
    #[arg(long)]
    pub home_plmn: Option<String>,
    /// The inventory file.
    pub file: PathBuf,
}

/// `smdpp profiles import`.
pub async fn import_command(a: ImportArgs) -> Result<()> {
    let format = match a.format {
        Some(FormatArg::Csv) => Format::Csv,
        Some(FormatArg::Jsonl) => Format::JsonLines,
        None => Format::from_path(&a.file).ok_or_else(|| {
            anyhow!(
                "cannot tell the format of {}: use --format csv|jsonl",
                a.file.display()
            )
        })?,
    };
    let file =
        std::fs::File::open(&a.file).with_context(|| format!("opening {}", a.file.display()))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut report = match &a.report {
        Some(p) => {
            let mut f = std::io::BufWriter::new({
                let mut o = std::fs::OpenOptions::new();
                o.write(true).create(true).truncate(true);
                // ICCIDs and IMSIs: not for other users.
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
                let file = o
                    .open(p)
                    .with_context(|| format!("creating {}", p.display()))?;
                // `mode` applies to a new file only: an existing one (an earlier report) is
                // made private too before anything is written to it. Only a regular file: not
                // /dev/null or a terminal.
                #[cfg(unix)]
                if file.metadata().is_ok_and(|m| m.is_file()) {
                    use std::os::unix::fs::PermissionsExt;
                    file.set_permissions(std::fs::Permissions::from_mode(0o600))
                        .with_context(|| format!("making {} private (mode 0600)", p.display()))?;
                }
                file
            });
            writeln!(f, "line,field,reason")?;
            Some(f)
        }
        None => None,
    };
    let (store, factory) = open_all(&a.data).await?;
    let opts = ImportOptions {
        profile_type: a.profile_type.clone(),
        operator: a.operator.clone(),
        all_or_nothing: a.all_or_nothing,
        reader: Options {
            default_mnc_len: a.mnc_len,
            home_plmn: a.home_plmn.clone(),
            ..Options::default()
        },
        batch_rows: BATCH_ROWS,
    };
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last = Instant::now();
    let mut printed = 0usize;
    let result = import_file(
        &store,
        &factory,
        format,
        std::io::BufReader::with_capacity(1 << 16, file),
        &opts,
        |e| {
            if printed < PRINTED_REJECTS {
                println!("rejected {e}");
                printed += 1;
            }
            if let Some(r) = report.as_mut() {
                writeln!(
                    r,
                    "{},{},\"{}\"",
                    e.line,
                    e.field.as_deref().unwrap_or(""),
                    e.message.replace('"', "\"\"")
                )?;
            }
            Ok(())
        },
        |bytes, s| {
            let interval = if tty {
                Duration::from_millis(200)
            } else {
                Duration::from_secs(10)
            };
            if last.elapsed() >= interval {
                last = Instant::now();
                let pct = bytes.saturating_mul(100).checked_div(total).unwrap_or(0);
                let rate = s.rows as f64 / started.elapsed().as_secs_f64().max(1e-3);
                let bar: String = (0..30)
                    .map(|i| if i * 100 < pct * 30 { '#' } else { '.' })
                    .collect();
                let line = format!(
                    "[{bar}] {pct:>3}%  {} rows  {} imported  {} rejected  {:.0} rows/s",
                    s.rows, s.imported, s.rejected, rate
                );
                if tty {
                    eprint!("\r{line}");
                } else {
                    eprintln!("{line}");
                }
            }
        },
    )
    .await;
    if tty {
        eprintln!();
    }
    if let Some(mut r) = report {
        r.flush()?;
    }
    // One audit record per run that imported something (not one per row).
    let recorded = match &result {
        Ok(s) if s.imported > 0 => {
            let details = serde_json::json!({
                "file": a.file.file_name().map(|f| f.to_string_lossy().into_owned()),
                "operator": a.operator,
                "rows": s.rows,
                "imported": s.imported,
                "alreadyPresent": s.already_present,
                "rejected": s.rejected,
            });
            crate::audit_cli::record(&store, "profiles.import", &a.profile_type, details).await
        }
        _ => Ok(()),
    };
    store.close().await;
    let s = result?;
    recorded?;
    if s.rejected as usize > printed {
        println!(
            "... {} more rejected rows{}",
            s.rejected as usize - printed,
            if a.report.is_some() {
                " (all are in the report file)"
            } else {
                " (use --report FILE for all of them)"
            }
        );
    }
    println!(
        "{} in {:.1} s: {} imported, {} already present, {} rejected{}",
        plural(s.rows, "row"),
        started.elapsed().as_secs_f64(),
        s.imported,
        s.already_present,
        s.rejected,
        if s.rolled_back > 0 || (a.all_or_nothing && s.rejected > 0) {
            " (--all-or-nothing: nothing imported)".to_owned()
        } else {
            String::new()
        }
    );
    if s.rejected > 0 {
        bail!(
            "{} rejected; {}",
            plural(s.rejected, "row"),
            if a.all_or_nothing {
                "nothing was imported".to_owned()
            } else if s.already_present > 0 {
                format!(
                    "{} imported, {} already present",
                    s.imported, s.already_present
                )
            } else {
                format!("{} imported", s.imported)
            }
        );
    }
    Ok(())
}

/// `1 row`, `2 rows`.
fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

// ------------------------------------------------------------------ types

/// Profile class flag.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassArg {
    /// test(0).
    Test,
    /// provisioning(1).
    Provisioning,
    /// operational(2).
    Operational,
}

/// Profile management operations (notificationConfigurationInfo bits, SGP.22 5.5.3).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyArg {
    /// notificationInstall(0).
    Install,
    /// notificationEnable(1).
    Enable,
    /// notificationDisable(2).
    Disable,
    /// notificationDelete(3).
    Delete,
}

/// Profile Policy Rules (PprIds bits, SGP.22 2.4a.1.1).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PprArg {
    /// ppr1: disabling of this profile is not allowed.
    Ppr1,
    /// ppr2: deletion of this profile is not allowed.
    Ppr2,
}

/// `smdpp types ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum TypesCommand {
    /// Create a profile type.
    Add(TypeAddArgs),
    /// List the profile types with their inventory counts.
    List {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Change a profile type's metadata (what the phone shows, its PPRs) or on-delete
    /// policy. New downloads get the new metadata at once; installed profiles get it through
    /// Remote Profile Management: `smdpp orders update-metadata --type NAME`.
    Update(TypeUpdateArgs),
    /// Show one profile type.
    Show {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
        /// The type's name.
        name: String,
    },
    /// Make the type create its profiles on demand from an ICCID and an IMSI range.
    Generator(crate::operator_cli::TypeGeneratorArgs),
    /// Provision the type's subscribers in a core network (HLR/HSS).
    CoreNetwork(crate::operator_cli::TypeCoreNetworkArgs),
}

/// `smdpp types add`.
#[derive(Args, Debug, Clone)]
pub struct TypeAddArgs {
    /// Data location and configuration file.
    #[command(flatten)]
    pub data: DataArgs,
    /// Name (the ES2+ `profileType`).
    pub name: String,
    /// Template source (TOML); default: the built-in USIM + ISIM Milenage template.
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// serviceProviderName shown by the LPA (at most 32 bytes).
    #[arg(long)]
    pub spn: String,
    /// profileName shown by the LPA (at most 64 bytes).
    #[arg(long)]
    pub profile_name: String,
    /// profileClass.
    #[arg(long, value_enum)]
    pub class: Option<ClassArg>,
    /// Icon file (PNG or JPEG, at most 1024 bytes).
    #[arg(long)]
    pub icon: Option<PathBuf>,
    /// Operations whose notifications the eUICC sends to this SM-DP+ (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = ALL_NOTIFY)]
    pub notify: Vec<NotifyArg>,
    /// Profile Policy Rules set in the metadata (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub ppr: Vec<PprArg>,
    /// Confirmation-code attempts per order for profiles of this type.
    #[arg(long)]
    pub cc_attempts: Option<i64>,
    /// Download attempts per order for profiles of this type.
    #[arg(long)]
    pub download_attempts: Option<i64>,
    /// What a delete notification from the eUICC does to a profile of this type: retire it
    /// (Unavailable for good) or reuse it (Available for a new order).
    #[arg(long, value_enum, default_value_t = OnDeleteArg::Retire)]
    pub on_delete: OnDeleteArg,
}

/// `smdpp types update`.
#[derive(Args, Debug, Clone)]
pub struct TypeUpdateArgs {
    /// Data location and configuration file.
    #[command(flatten)]
    pub data: DataArgs,
    /// The type's name.
    pub name: String,
    /// New serviceProviderName (at most 32 bytes).
    #[arg(long)]
    pub spn: Option<String>,
    /// New profileName (at most 64 bytes).
    #[arg(long)]
    pub profile_name: Option<String>,
    /// New icon file (PNG or JPEG, at most 1024 bytes).
    #[arg(long, conflicts_with = "no_icon")]
    pub icon: Option<PathBuf>,
    /// Remove the icon.
    #[arg(long)]
    pub no_icon: bool,
    /// New Profile Policy Rules (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', conflicts_with = "no_ppr")]
    pub ppr: Option<Vec<PprArg>>,
    /// Remove the Profile Policy Rules.
    #[arg(long)]
    pub no_ppr: bool,
    /// New on-delete policy.
    #[arg(long, value_enum)]
    pub on_delete: Option<OnDeleteArg>,
}

/// `--on-delete`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDeleteArg {
    /// Unavailable: the ICCID is never handed out again.
    Retire,
    /// Available for a new order (EID binding, counters, MatchingID and cached BPP cleared).
    Reuse,
}

impl From<OnDeleteArg> for smdpp_store::OnDelete {
    fn from(a: OnDeleteArg) -> Self {
        match a {
            OnDeleteArg::Retire => smdpp_store::OnDelete::Retire,
            OnDeleteArg::Reuse => smdpp_store::OnDelete::Reuse,
        }
    }
}

/// A profile type from its parts, validated: the template compiles, the names fit
/// StoreMetadataRequest (section 5.5.3), the icon is a PNG or JPEG of at most 1024 bytes
/// ([`smdpp_service::inventory::build_profile_type`] with the flags' values).
#[allow(clippy::too_many_arguments)]
pub fn build_profile_type(
    name: &str,
    template: &TemplateSource,
    spn: &str,
    profile_name: &str,
    class: Option<ClassArg>,
    icon: Option<Vec<u8>>,
    notify: &[NotifyArg],
    ppr: &[PprArg],
    cc_attempts: Option<i64>,
    download_attempts: Option<i64>,
) -> Result<ProfileType> {
    let notify: Vec<NotifyOn> = notify.iter().map(|&n| n.into()).collect();
    let ppr: Vec<Ppr> = ppr.iter().map(|&p| p.into()).collect();
    smdpp_service::inventory::build_profile_type(
        name,
        template,
        spn,
        profile_name,
        class.map(Into::into),
        icon,
        &notify,
        &ppr,
        cc_attempts,
        download_attempts,
    )
}

impl From<ClassArg> for ProfileClass {
    fn from(c: ClassArg) -> Self {
        match c {
            ClassArg::Test => ProfileClass::Test,
            ClassArg::Provisioning => ProfileClass::Provisioning,
            ClassArg::Operational => ProfileClass::Operational,
        }
    }
}

impl From<NotifyArg> for NotifyOn {
    fn from(n: NotifyArg) -> Self {
        match n {
            NotifyArg::Install => NotifyOn::Install,
            NotifyArg::Enable => NotifyOn::Enable,
            NotifyArg::Disable => NotifyOn::Disable,
            NotifyArg::Delete => NotifyOn::Delete,
        }
    }
}

impl From<PprArg> for Ppr {
    fn from(p: PprArg) -> Self {
        match p {
            PprArg::Ppr1 => Ppr::Ppr1,
            PprArg::Ppr2 => Ppr::Ppr2,
        }
    }
}

/// The notifications a type asks for by default: every operation (SGP.22 section 3.5), so
/// that the server's view of each installed profile follows the eUICC's.
pub const ALL_NOTIFY: [NotifyArg; 4] = [
    NotifyArg::Install,
    NotifyArg::Enable,
    NotifyArg::Disable,
    NotifyArg::Delete,
];

fn class_name(c: Option<i64>) -> &'static str {
    match c {
        Some(0) => "test",
        Some(1) => "provisioning",
        Some(2) => "operational",
        Some(_) => "unknown",
        None => "-",
    }
}

/// `smdpp types ...`.
pub async fn types_command(cmd: TypesCommand) -> Result<()> {
    match cmd {
        TypesCommand::Generator(a) => crate::operator_cli::type_generator(a).await?,
        TypesCommand::CoreNetwork(a) => crate::operator_cli::type_core_network(a).await?,
        TypesCommand::Add(a) => {
            let source = match &a.template {
                Some(p) => TemplateSource::from_toml(
                    std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?,
                ),
                None => TemplateSource::usim_isim_milenage(),
            };
            let icon = match &a.icon {
                Some(p) => {
                    Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)
                }
                None => None,
            };
            let mut t = build_profile_type(
                &a.name,
                &source,
                &a.spn,
                &a.profile_name,
                a.class,
                icon,
                &a.notify,
                &a.ppr,
                a.cc_attempts,
                a.download_attempts,
            )?;
            t.on_delete = a.on_delete.into();
            let (store, factory) = open_all(&a.data).await?;
            let added = factory.add_profile_type(&t).await;
            let recorded = match &added {
                Ok(()) => {
                    let details = serde_json::json!({ "profileName": t.profile_name });
                    crate::audit_cli::record(&store, "type.add", &t.name, details).await
                }
                Err(_) => Ok(()),
            };
            store.close().await;
            recorded?;
            match added {
                Ok(()) => println!("profile type {} created", t.name),
                Err(smdpp_service::factory::FactoryError::Store(
                    smdpp_store::StoreError::Duplicate { .. },
                )) => bail!("a profile type named {:?} already exists", t.name),
                Err(e) => return Err(e.into()),
            }
        }
        TypesCommand::Update(a) => {
            let (store, factory) = open_all_with(&a.data, false).await?;
            let cur = store
                .get_profile_type(&a.name)
                .await?
                .ok_or_else(|| anyhow!("no profile type {:?}", a.name))?;
            let icon = if a.no_icon {
                None
            } else {
                match &a.icon {
                    Some(p) => {
                        Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)
                    }
                    None => cur.icon.clone(),
                }
            };
            let ppr: Vec<PprArg> = if a.no_ppr {
                Vec::new()
            } else if let Some(p) = &a.ppr {
                p.clone()
            } else {
                cur.ppr_bits
                    .map(|b| {
                        [(1, PprArg::Ppr1), (2, PprArg::Ppr2)]
                            .into_iter()
                            .filter(|(bit, _)| b & (1 << bit) != 0)
                            .map(|(_, p)| p)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let text = factory.open_template(&cur).await?;
            let mut t = build_profile_type(
                &cur.name,
                &TemplateSource::from_toml(text.as_str()),
                a.spn.as_deref().unwrap_or(&cur.service_provider_name),
                a.profile_name.as_deref().unwrap_or(&cur.profile_name),
                None,
                icon,
                &[],
                &ppr,
                None,
                None,
            )?;
            t.on_delete = a.on_delete.map_or(cur.on_delete, Into::into);
            store.update_profile_type_metadata(&cur.name, &t).await?;
            let details = serde_json::json!({
                "serviceProviderName": t.service_provider_name,
                "profileName": t.profile_name,
                "onDelete": t.on_delete.to_string(),
            });
            crate::audit_cli::record(&store, "type.update", &cur.name, details).await?;
            let installed: i64 = store
                .count_profiles_of_type(&cur.name)
                .await?
                .iter()
                .filter(|(s, _)| s.is_on_euicc())
                .map(|c| c.1)
                .sum();
            store.close().await;
            println!("profile type {} updated", cur.name);
            if installed > 0 {
                println!(
                    "{installed} installed profile{} of this type still show the old metadata; \
                     send them the new one with: smdpp orders update-metadata --operator OP --type {}",
                    if installed == 1 { "" } else { "s" },
                    cur.name
                );
            }
        }
        TypesCommand::List { data } => {
            let f = load_file(&data)?;
            let (dir, url) = data_location(&data, &f)?;
            let (store, _) = crate::cli::open_store(&dir, &url).await?;
            for t in store.list_profile_types().await? {
                let counts = store.count_profiles_of_type(&t.name).await?;
                let avail = counts
                    .iter()
                    .find(|(s, _)| *s == ProfileState::Available)
                    .map_or(0, |c| c.1);
                let all: i64 = counts.iter().map(|c| c.1).sum();
                println!(
                    "{:<20} {:<12} available={avail} total={all}  spn={:?} name={:?}",
                    t.name,
                    class_name(t.profile_class),
                    t.service_provider_name,
                    t.profile_name
                );
            }
            store.close().await;
        }
        TypesCommand::Show { data, name } => {
            let (store, factory) = open_all_with(&data, false).await?;
            let t = store
                .get_profile_type(&name)
                .await?
                .ok_or_else(|| anyhow!("no profile type {name:?}"))?;
            let text = factory.open_template(&t).await?;
            let template = Template::compile(&TemplateSource::from_toml(text.as_str()))
                .map_err(|e| anyhow!("stored template: {e}"))?;
            println!("name:                 {}", t.name);
            println!("template:             {}", template.name());
            if let Some(d) = template.description() {
                println!("template description: {d}");
            }
            println!("service provider:     {}", t.service_provider_name);
            println!("profile name:         {}", t.profile_name);
            println!("profile class:        {}", class_name(t.profile_class));
            println!(
                "icon:                 {}",
                t.icon
                    .as_ref()
                    .map_or("-".to_owned(), |i| format!("{} bytes", i.len()))
            );
            println!("notification bits:    {:#06b}", t.notification_events);
            println!(
                "policy rule bits:     {}",
                t.ppr_bits.map_or("-".to_owned(), |b| format!("{b:#05b}"))
            );
            println!(
                "cc attempts:          {}",
                t.cc_attempt_limit
                    .map_or("default".to_owned(), |n| n.to_string())
            );
            println!(
                "download attempts:    {}",
                t.download_attempt_limit
                    .map_or("default".to_owned(), |n| n.to_string())
            );
            println!("on delete:            {}", t.on_delete);
            println!(
                "created at:           {}",
                smdpp_service::display::rfc3339(t.created_at)
            );
            for (s, n) in store.count_profiles_of_type(&t.name).await? {
                println!("  {s:<12} {n}");
            }
            store.close().await;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ keys

/// `smdpp keys ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum KeysCommand {
    /// Show the key-encryption key id and the data-encryption keys.
    Status {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Rotate keys without downtime: by default a new data-encryption key, under which every
    /// stored secret is re-sealed (old keys are kept until `smdpp keys retire`); with
    /// `--new-kek FILE`, a new key-encryption key at FILE that re-wraps the data-encryption
    /// keys (no secret is re-sealed).
    Rotate {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
        /// Create a new key-encryption key file here (must not exist) and re-wrap under it.
        #[arg(long)]
        new_kek: Option<PathBuf>,
    },
    /// Re-seal under the active data-encryption key whatever is still under an older one
    /// (finishes a rotation that stopped on a record that does not open).
    Reseal {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Keys on a PKCS#11 token (HSM): import, list, generate, move the vault KEK there.
    Hsm {
        /// The subcommand.
        #[command(subcommand)]
        command: crate::hsm_cli::HsmCommand,
    },
    /// Delete the old data-encryption keys no stored secret uses any more. Run it only after
    /// every server and import started before the last rotation has been restarted.
    Retire {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
    },
}

/// `smdpp keys ...`.
pub async fn keys_command(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Status { data } => {
            let (store, factory) = open_all_with(&data, false).await?;
            let v = factory.vault();
            println!("key-encryption key:   {}", v.kek_id());
            println!("active DEK:           {}", v.active_dek_id());
            println!("DEKs:                 {:?}", v.dek_ids());
            store.close().await;
        }
        KeysCommand::Rotate { data, new_kek } => {
            let (store, factory) = open_all(&data).await?;
            match new_kek {
                None => {
                    let started = Instant::now();
                    let (id, n) = factory
                        .rotate_dek(|n| {
                            if n > 0 && n % 100_000 == 0 {
                                eprintln!("re-sealed {n} records");
                            }
                        })
                        .await?;
                    let details = serde_json::json!({ "dek": id, "resealed": n });
                    crate::audit_cli::record(&store, "keys.rotate", "", details).await?;
                    println!(
                        "new data-encryption key {id} active; {n} records re-sealed in {:.1} s; \
                         keys kept: {:?} (`smdpp keys retire` deletes the unused ones once every \
                         server has been restarted)",
                        started.elapsed().as_secs_f64(),
                        factory.vault().dek_ids()
                    );
                }
                Some(path) => {
                    if path.exists() {
                        bail!(
                            "{} exists; --new-kek creates a new key file",
                            path.display()
                        );
                    }
                    let (kek, _) = load_or_create_kek(&path, true)?;
                    let id = factory.rewrap(kek).await?;
                    let details = serde_json::json!({ "kek": id.to_string() });
                    crate::audit_cli::record(&store, "keys.rewrap", "", details).await?;
                    println!(
                        "data-encryption keys re-wrapped under key-encryption key {id} ({}).",
                        path.display()
                    );
                    println!(
                        "Set kek_file (or --kek-file / SMDPP_KEK_FILE) to {} before the next \
                         start; running servers are not affected. Keep the old key file until \
                         then, and restart the servers before the next `smdpp keys rotate`.",
                        path.display()
                    );
                }
            }
            store.close().await;
        }
        KeysCommand::Retire { data } => retire(data).await?,
        KeysCommand::Hsm { command } => crate::hsm_cli::hsm_command(command).await?,
        KeysCommand::Reseal { data } => {
            let (store, factory) = open_all_with(&data, false).await?;
            let started = Instant::now();
            let done = factory.reseal_all(|_| {}).await;
            let recorded = match &done {
                Ok(n) => {
                    let details = serde_json::json!({ "records": n });
                    crate::audit_cli::record(&store, "keys.reseal", "", details).await
                }
                Err(_) => Ok(()),
            };
            store.close().await;
            let n = done?;
            recorded?;
            println!(
                "{n} records re-sealed under data-encryption key {} in {:.1} s",
                factory.vault().active_dek_id(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

async fn retire(data: DataArgs) -> Result<()> {
    let (store, factory) = open_all_with(&data, false).await?;
    let retired = factory.retire_unused().await;
    let recorded = match &retired {
        Ok(ids) if !ids.is_empty() => {
            let details = serde_json::json!({ "retired": ids });
            crate::audit_cli::record(&store, "keys.retire", "", details).await
        }
        _ => Ok(()),
    };
    store.close().await;
    let retired = retired?;
    recorded?;
    if retired.is_empty() {
        println!("no data-encryption key to retire");
    } else {
        println!("retired data-encryption keys {retired:?}");
    }
    println!("keys kept: {:?}", factory.vault().dek_ids());
    Ok(())
}

pub(crate) fn block_on<F: std::future::Future<Output = Result<()>>>(f: F) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(f)
}

/// [`types_command`] on a new tokio runtime.
pub fn types_blocking(cmd: TypesCommand) -> Result<()> {
    block_on(types_command(cmd))
}

/// [`keys_command`] on a new tokio runtime.
pub fn keys_blocking(cmd: KeysCommand) -> Result<()> {
    block_on(keys_command(cmd))
}
