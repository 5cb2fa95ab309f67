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
use smdpp_inventory::{Format, Options, RowError, RowReader};
use smdpp_store::{
    EventRecord, Expect, ImportOutcome, ImportRow, Patch, ProfileState, ProfileType, ProfileUpdate,
    SealedSecrets, Store, now_ms,
};

use crate::cli::{DataArgs, FileConfig, data_location, load_file};
use crate::factory::{Factory, SubscriberSecrets, load_or_create_kek};

/// Rows per database batch (and per transaction without `--all-or-nothing`).
pub const BATCH_ROWS: usize = 5000;
/// Rejected rows printed on the terminal (all of them go to `--report`).
const PRINTED_REJECTS: usize = 20;

/// The key-encryption key file: flag/environment, then the configuration file, then
/// `<data dir>/vault.kek`.
pub(crate) fn kek_location(d: &DataArgs, file: &FileConfig, data_dir: &Path) -> PathBuf {
    d.kek_file
        .clone()
        .or_else(|| file.kek_file.clone())
        .unwrap_or_else(|| data_dir.join("vault.kek"))
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
    if let Some(kek) = crate::hsm_cli::token_kek(kek_file, None)? {
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

async fn open_all(data: &DataArgs) -> Result<(Store, Arc<Factory>)> {
    open_all_with(data, true).await
}

pub(crate) async fn open_all_with(data: &DataArgs, create: bool) -> Result<(Store, Arc<Factory>)> {
    let f = load_file(data)?;
    let (dir, url) = data_location(data, &f)?;
    let (store, _) = crate::cli::open_store(&dir, &url).await?;
    match open_factory_with(&store, &kek_location(data, &f, &dir), create).await {
        Ok(factory) => Ok((store, factory)),
        Err(e) => {
            store.close().await;
            Err(e)
        }
    }
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

/// Counts of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Rows read (excluding the header and blank lines).
    pub rows: u64,
    /// Rows inserted (and committed).
    pub imported: u64,
    /// Rows already present (re-run).
    pub already_present: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// With `--all-or-nothing` and a rejected row: the rows that would have been imported
    /// and were rolled back.
    pub rolled_back: u64,
    /// The first rejected rows.
    pub errors: Vec<RowError>,
}

/// Settings of [`import_file`] beyond the file and the store.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Profile type.
    pub profile_type: String,
    /// Owning operator.
    pub operator: Option<String>,
    /// One transaction for everything.
    pub all_or_nothing: bool,
    /// Reader settings (MNC length default, home PLMN).
    pub reader: Options,
    /// Rows per batch.
    pub batch_rows: usize,
}

/// One batch from the reader thread: the rows to insert with their line numbers, and the
/// rows the reader rejected.
struct Batch {
    rows: Vec<ImportRow>,
    lines: Vec<u64>,
    rejected: Vec<RowError>,
    bytes_read: u64,
}

fn row_error(line: u64, field: &str, message: &str) -> RowError {
    // RowError's constructor is crate-private in smdpp-inventory; build it by its fields.
    RowError {
        line,
        field: Some(field.to_owned()),
        message: message.to_owned(),
    }
}

/// Imports `input` (see the module docs). `on_reject` sees every rejected row as it is
/// found (the report file); `progress` gets `(bytes read, summary so far)` after each batch.
pub async fn import_file<R: std::io::BufRead + Send + 'static>(
    store: &Store,
    factory: &Arc<Factory>,
    format: Format,
    input: R,
    opts: &ImportOptions,
    mut on_reject: impl FnMut(&RowError) -> Result<()>,
    mut progress: impl FnMut(u64, &ImportSummary),
) -> Result<ImportSummary> {
    let ptype = store
        .get_profile_type(&opts.profile_type)
        .await?
        .ok_or_else(|| {
            anyhow!(
                "unknown profile type {:?} (create it with `smdpp types add`)",
                opts.profile_type
            )
        })?;
    if let Some(op) = &opts.operator
        && store.get_operator(op).await?.is_none()
    {
        bail!("unknown operator {op:?} (register it with `smdpp operators add`)");
    }
    // Fails on a bad header before anything is written.
    let mut reader = RowReader::new(format, input, opts.reader.clone())?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Batch>>(2);
    let batch_rows = opts.batch_rows.max(1);
    let fac = Arc::clone(factory);
    // Every row is personalized once with the type's template (and the result dropped):
    // a row the template cannot take is rejected now, not at download time.
    let compiled = factory
        .profile_type(&ptype.name)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let template = ImportRow {
        secrets: SealedSecrets {
            iccid: String::new(),
            imsi: String::new(),
            dek_id: 0,
            sealed: Vec::new(),
        },
        profile_type: ptype.name.clone(),
        operator_id: opts.operator.clone(),
        cc_attempt_limit: ptype.cc_attempt_limit,
        download_attempt_limit: ptype.download_attempt_limit,
    };
    // Reading, validation and sealing run on a blocking thread, one batch ahead of the
    // database (the channel holds two batches: memory stays bounded).
    let producer = tokio::task::spawn_blocking(move || {
        let mut batch = Batch {
            rows: Vec::with_capacity(batch_rows),
            lines: Vec::with_capacity(batch_rows),
            rejected: Vec::new(),
            bytes_read: 0,
        };
        loop {
            let next = match reader.next_row() {
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.blocking_send(Err(anyhow!(e)));
                    return;
                }
            };
            let done = next.is_none();
            match next {
                Some(Ok(row)) => {
                    let p = row.personalization();
                    if let Err(e) = compiled.template.personalize(&p) {
                        batch.rejected.push(RowError {
                            line: row.line,
                            field: None,
                            message: format!(
                                "does not fit the template of type {:?}: {e}",
                                compiled.row.name
                            ),
                        });
                        continue;
                    }
                    let secrets = SubscriberSecrets::from_personalization(&p);
                    match fac.seal_secrets(&row.iccid, &row.imsi, &secrets) {
                        Ok((sealed, dek_id)) => {
                            let mut r = template.clone();
                            r.secrets = SealedSecrets {
                                iccid: row.iccid.clone(),
                                imsi: row.imsi.clone(),
                                dek_id,
                                sealed,
                            };
                            batch.rows.push(r);
                            batch.lines.push(row.line);
                        }
                        Err(e) => {
                            let _ = tx.blocking_send(Err(anyhow!(e)));
                            return;
                        }
                    }
                }
                Some(Err(e)) => batch.rejected.push(e),
                None => {}
            }
            // Fix: rejected rows count towards the batch too. Counting only good rows, a
            // file whose rows are all rejected (a wrong --home-plmn, say) kept every
            // RowError of the file in memory and reported no progress until its end.
            if done || batch.rows.len() + batch.rejected.len() >= batch_rows {
                batch.bytes_read = reader.bytes_read();
                let full = std::mem::replace(
                    &mut batch,
                    Batch {
                        rows: Vec::with_capacity(batch_rows),
                        lines: Vec::with_capacity(batch_rows),
                        rejected: Vec::new(),
                        bytes_read: 0,
                    },
                );
                if tx.blocking_send(Ok(full)).is_err() || done {
                    return;
                }
            }
        }
    });

    let mut summary = ImportSummary::default();
    let mut pending_rollback = 0u64;
    let mut one_tx = if opts.all_or_nothing {
        Some(store.begin_import().await?)
    } else {
        None
    };
    let mut reject = |summary: &mut ImportSummary, e: RowError| -> Result<()> {
        summary.rejected += 1;
        on_reject(&e)?;
        if summary.errors.len() < 1000 {
            summary.errors.push(e);
        }
        Ok(())
    };
    while let Some(batch) = rx.recv().await {
        let batch = batch?;
        summary.rows += (batch.rows.len() + batch.rejected.len()) as u64;
        for e in batch.rejected {
            reject(&mut summary, e)?;
        }
        // Once a row is rejected in all-or-nothing mode nothing will be committed: keep
        // reading to report every bad row, but stop writing.
        let writing = !(opts.all_or_nothing && summary.rejected > 0);
        if !batch.rows.is_empty() {
            // A re-run row is "already present" only with the same secrets.
            let same = |r: &ImportRow, stored: &[u8]| {
                factory.same_secrets(&r.secrets.iccid, &r.secrets.imsi, &r.secrets.sealed, stored)
            };
            let outcomes = match (&mut one_tx, writing) {
                (Some(t), true) => t.insert_batch_checked(&batch.rows, same).await?,
                (Some(_), false) => Vec::new(),
                (None, _) => {
                    let mut t = store.begin_import().await?;
                    let o = t.insert_batch_checked(&batch.rows, same).await?;
                    t.commit().await?;
                    o
                }
            };
            if !writing {
                // Not written: each row counts as "would have been imported".
                pending_rollback += batch.rows.len() as u64;
            }
            for (o, line) in outcomes.iter().zip(&batch.lines) {
                match o {
                    ImportOutcome::Inserted if opts.all_or_nothing => pending_rollback += 1,
                    ImportOutcome::Inserted => summary.imported += 1,
                    ImportOutcome::AlreadyPresent => summary.already_present += 1,
                    ImportOutcome::DuplicateIccid => reject(
                        &mut summary,
                        row_error(
                            *line,
                            "iccid",
                            "ICCID already in the inventory with other subscriber data, type \
                             or operator",
                        ),
                    )?,
                    ImportOutcome::DuplicateImsi => reject(
                        &mut summary,
                        row_error(*line, "imsi", "IMSI already used by another ICCID"),
                    )?,
                    ImportOutcome::ChangedSecrets => reject(
                        &mut summary,
                        row_error(
                            *line,
                            "iccid",
                            "ICCID already imported with other values (Ki, OPc/OP, PIN, PUK, \
                             ADM1, SPN or MNC length differ); nothing changed",
                        ),
                    )?,
                }
            }
        }
        progress(batch.bytes_read, &summary);
    }
    producer.await.map_err(|e| anyhow!("reader thread: {e}"))?;
    if let Some(t) = one_tx {
        if summary.rejected == 0 {
            t.commit().await?;
            summary.imported = pending_rollback;
        } else {
            t.rollback().await?;
            summary.rolled_back = pending_rollback;
        }
    }
    Ok(summary)
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

/// The notifications a type asks for by default: every operation (SGP.22 section 3.5), so
/// that the server's view of each installed profile follows the eUICC's.
pub const ALL_NOTIFY: [NotifyArg; 4] = [
    NotifyArg::Install,
    NotifyArg::Enable,
    NotifyArg::Disable,
    NotifyArg::Delete,
];

/// A profile type from its parts, validated: the template compiles, the names fit
/// StoreMetadataRequest (section 5.5.3), the icon is a PNG or JPEG of at most 1024 bytes.
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
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        bail!("profile type name must be 1 to 64 printable characters");
    }
    Template::compile(template).map_err(|e| anyhow!("template: {e}"))?;
    if spn.len() > 32 {
        bail!("service provider name is longer than 32 bytes");
    }
    if profile_name.len() > 64 {
        bail!("profile name is longer than 64 bytes");
    }
    let icon_type = match &icon {
        None => None,
        Some(i) if i.len() > 1024 => bail!("icon is {} bytes; at most 1024 are allowed", i.len()),
        Some(i) if i.starts_with(&[0x89, b'P', b'N', b'G']) => Some(1),
        Some(i) if i.starts_with(&[0xFF, 0xD8]) => Some(0),
        Some(_) => bail!("icon must be a PNG or JPEG file"),
    };
    for (what, v) in [
        ("cc-attempts", cc_attempts),
        ("download-attempts", download_attempts),
    ] {
        if let Some(n) = v
            && !(1..=1000).contains(&n)
        {
            bail!("--{what} must be 1 to 1000");
        }
    }
    let notification_events = notify.iter().fold(0i64, |m, n| {
        m | 1
            << match n {
                NotifyArg::Install => 0,
                NotifyArg::Enable => 1,
                NotifyArg::Disable => 2,
                NotifyArg::Delete => 3,
            }
    });
    let ppr_bits = ppr.iter().fold(0i64, |m, p| {
        m | 1
            << match p {
                PprArg::Ppr1 => 1,
                PprArg::Ppr2 => 2,
            }
    });
    Ok(ProfileType {
        name: name.to_owned(),
        // The TOML source; `Factory::add_profile_type` seals it before it is stored.
        template: template.text().as_bytes().to_vec(),
        service_provider_name: spn.to_owned(),
        profile_name: profile_name.to_owned(),
        profile_class: class.map(|c| match c {
            ClassArg::Test => 0,
            ClassArg::Provisioning => 1,
            ClassArg::Operational => 2,
        }),
        icon_type,
        icon,
        notification_events,
        ppr_bits: (ppr_bits != 0).then_some(ppr_bits),
        cc_attempt_limit: cc_attempts,
        download_attempt_limit: download_attempts,
        created_at: now_ms(),
        on_delete: smdpp_store::OnDelete::default(),
    })
}

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
                Err(crate::factory::FactoryError::Store(smdpp_store::StoreError::Duplicate {
                    ..
                })) => bail!("a profile type named {:?} already exists", t.name),
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
                crate::display::rfc3339(t.created_at)
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

// ------------------------------------------------------------------ demo

/// Name of the demo profile type.
pub const DEMO_TYPE: &str = "demo";
/// Demo profiles seeded.
pub const DEMO_PROFILES: u32 = 5;

/// The demo inventory file (CSV): test MCC/MNC 001/01, ICCIDs in the test range
/// `89 999 01 ...`, random Ki and OPc per profile, test PINs.
pub fn demo_csv(count: u32) -> Result<String> {
    let mut s = String::from("iccid,imsi,ki,opc,pin1,puk1,pin2,puk2,adm1,spn\n");
    for i in 1..=count {
        let iccid = saip::personalize::iccid_with_luhn(&format!("8999901{:011}", i))
            .map_err(|e| anyhow!("{e}"))?;
        let imsi = format!("00101{:010}", i);
        let ki = crate::upp::random_bytes::<16>().map_err(|e| anyhow!("{e}"))?;
        let opc = crate::upp::random_bytes::<16>().map_err(|e| anyhow!("{e}"))?;
        s.push_str(&format!(
            "{iccid},{imsi},{},{},0000,12345678,0000,12345678,88888888,smdpp demo\n",
            hex::encode_upper(ki),
            hex::encode_upper(opc)
        ));
    }
    Ok(s)
}

/// Seeds the demo type and [`DEMO_PROFILES`] demo profiles through the import path and
/// releases the first one as a download order. Returns `(ICCID, MatchingID)`.
pub async fn seed_demo(store: &Store, factory: &Arc<Factory>) -> Result<(String, String)> {
    if store.get_profile_type(DEMO_TYPE).await?.is_none() {
        let t = build_profile_type(
            DEMO_TYPE,
            &TemplateSource::usim_isim_milenage(),
            "smdpp demo",
            "Demo profile (test network 001/01)",
            None,
            None,
            &ALL_NOTIFY,
            &[],
            None,
            None,
        )?;
        match factory.add_profile_type(&t).await {
            Ok(())
            | Err(crate::factory::FactoryError::Store(smdpp_store::StoreError::Duplicate {
                ..
            })) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let csv = demo_csv(DEMO_PROFILES)?;
    let first_iccid = csv
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').next())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("demo inventory"))?;
    let summary = import_file(
        store,
        factory,
        Format::Csv,
        std::io::Cursor::new(csv.into_bytes()),
        &ImportOptions {
            profile_type: DEMO_TYPE.to_owned(),
            operator: None,
            all_or_nothing: true,
            reader: Options::default(),
            batch_rows: BATCH_ROWS,
        },
        |_| Ok(()),
        |_, _| {},
    )
    .await?;
    if summary.rejected > 0 {
        bail!("demo inventory rejected: {:?}", summary.errors);
    }
    let mid = crate::upp::generate_matching_id().map_err(|e| anyhow!("{e}"))?;
    store
        .transition(
            &first_iccid,
            &Expect::states(&[ProfileState::Available]),
            &ProfileUpdate {
                state: Some(ProfileState::Released),
                matching_id: Patch::Set(mid.clone()),
                ..ProfileUpdate::default()
            },
            &EventRecord::by("serve").with_cause("demo order"),
        )
        .await?;
    Ok((first_iccid, mid))
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
