//! `smdpp subscribers export` and `smdpp subscribers decrypt` from the command line: the
//! clap arguments, the output files (mode 0600, `--force`) and the summary line. What is
//! exported, in which format and how it is encrypted is [`smdpp_service::export`].

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use smdpp_store::ProfileState;

use crate::cli::{DataArgs, data_location, load_file};
use crate::factory_cli::{block_on, open_all_with};
use smdpp_service::assembly::open_store;
use smdpp_service::export::*;

/// `smdpp subscribers ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum SubscribersCommand {
    /// Write the subscribers (identifiers; with --with-secrets also Ki and OPc, encrypted)
    /// as CSV, an osmo-hlr VTY script or Open5GS documents.
    Export(ExportArgs),
    /// Decrypt a file written by `export --with-secrets`.
    Decrypt(DecryptArgs),
}

/// `smdpp subscribers export`.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// Data location and configuration file.
    #[command(flatten)]
    pub data: DataArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Only profiles of this type.
    #[arg(long = "type")]
    pub profile_type: Option<String>,
    /// Only profiles in this state (repeatable; default: every state).
    #[arg(long = "state", value_name = "STATE", value_parser = parse_state)]
    pub states: Vec<ProfileState>,
    /// Only profiles of this operator.
    #[arg(long)]
    pub operator: Option<String>,
    /// The file to create (mode 0600); default: standard output (not with --with-secrets).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Add Ki and OPc. The file is then encrypted with the passphrase of --passphrase-file.
    #[arg(long)]
    pub with_secrets: bool,
    /// File whose first line (at least 12 characters) is the passphrase (--with-secrets).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// Replace the --out file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `smdpp subscribers decrypt`.
#[derive(Args, Debug, Clone)]
pub struct DecryptArgs {
    /// The encrypted export.
    #[arg(long = "in")]
    pub input: PathBuf,
    /// File whose first line is the passphrase.
    #[arg(long)]
    pub passphrase_file: PathBuf,
    /// The plaintext file to create (mode 0600); default: standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the --out file if it exists.
    #[arg(long)]
    pub force: bool,
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

// ------------------------------------------------------------------ files

/// Refuses an existing `path` unless `force` (checked before the work, so a long export
/// does not end in this refusal; [`create_private`] checks again).
fn check_out(path: &Path, force: bool) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(_) if !force => bail!(
            "{} already exists; use --force to replace it",
            path.display()
        ),
        Ok(m) if !m.is_file() => bail!(
            "{} exists and is not a regular file; not replacing it",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// Creates `path` anew with mode 0600. With `force`, an existing regular file is removed
/// first (so the new file never inherits its mode); anything else there is refused.
pub fn create_private(path: &Path, force: bool) -> Result<std::fs::File> {
    check_out(path, force)?;
    if force {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("replacing {}", path.display())),
        }
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow!(
                "{} already exists; use --force to replace it",
                path.display()
            )
        } else {
            anyhow!("creating {}: {e}", path.display())
        }
    })
}

/// Writes `parts` into a new private file at `path`; removes it again if writing fails.
fn write_private(path: &Path, force: bool, parts: &[&[u8]]) -> Result<()> {
    let mut f = create_private(path, force)?;
    let written = parts
        .iter()
        .try_for_each(|p| f.write_all(p))
        .and_then(|()| f.sync_all());
    if let Err(e) = written {
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn summary_line(s: &ExportSummary, dest: &str, format: ExportFormat, secrets: bool) -> String {
    let mut line = format!(
        "exported {} to {dest} ({}, {})",
        plural(s.exported, "subscriber"),
        format.name(),
        if secrets {
            "with Ki and OPc, encrypted"
        } else {
            "identifiers only"
        }
    );
    if s.skipped > 0 {
        let _ = write!(
            line,
            "; skipped {} without subscriber data (uploaded package only)",
            plural(s.skipped, "profile")
        );
    }
    line
}

/// `smdpp subscribers export`.
pub async fn export_command(a: ExportArgs) -> Result<()> {
    let out = a.out.as_deref().filter(|p| *p != Path::new("-"));
    if a.with_secrets {
        let Some(pass_file) = &a.passphrase_file else {
            bail!(
                "--with-secrets needs --passphrase-file FILE: Ki and OPc are only written \
                 encrypted with a passphrase"
            );
        };
        let Some(out) = out else {
            bail!(
                "--with-secrets needs --out FILE: Ki and OPc are never written to standard \
                 output"
            );
        };
        let passphrase = Passphrase::read(pass_file)?;
        check_out(out, a.force)?;
        let (store, factory) = open_all_with(&a.data, false).await?;
        let mut plain = SecretBuf::with_capacity(1 << 16);
        let result = export(&store, Some(&factory), a.format, &selection(&a), |b| {
            plain.push(b);
            Ok(())
        })
        .await;
        store.close().await;
        let summary = result?;
        let sealed = seal_export(plain.into_inner(), &passphrase, PBKDF2_ITERATIONS)
            .map_err(|e| anyhow!("{e}"))?;
        write_private(out, a.force, &[&sealed])?;
        println!(
            "{}",
            summary_line(&summary, &out.display().to_string(), a.format, true)
        );
        println!(
            "decrypt with: smdpp subscribers decrypt --in {} --passphrase-file FILE",
            out.display()
        );
        return Ok(());
    }
    if a.passphrase_file.is_some() {
        bail!(
            "--passphrase-file is only used with --with-secrets (without it no secret is \
             exported and nothing is encrypted)"
        );
    }
    if let Some(out) = out {
        check_out(out, a.force)?;
    }
    let f = load_file(&a.data)?;
    let (dir, url) = data_location(&a.data, &f)?;
    let (store, _) = open_store(&dir, &url).await?;
    let sel = selection(&a);
    let result = match out {
        Some(path) => {
            let file = create_private(path, a.force)?;
            let mut w = std::io::BufWriter::with_capacity(1 << 16, file);
            let r = export(&store, None, a.format, &sel, |b| Ok(w.write_all(b)?)).await;
            let r = r.and_then(|s| {
                w.into_inner()
                    .map_err(|e| anyhow!("{}", e.error()))
                    .and_then(|f| Ok(f.sync_all()?))
                    .with_context(|| format!("writing {}", path.display()))?;
                Ok(s)
            });
            if r.is_err() {
                let _ = std::fs::remove_file(path);
            }
            r.map(|s| summary_line(&s, &path.display().to_string(), a.format, false))
                .map(|line| println!("{line}"))
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            let r = export(&store, None, a.format, &sel, |b| Ok(w.write_all(b)?)).await;
            let r = r.and_then(|s| {
                w.flush()?;
                Ok(s)
            });
            // The data is on stdout: the summary goes to stderr.
            r.map(|s| eprintln!("{}", summary_line(&s, "standard output", a.format, false)))
        }
    };
    store.close().await;
    result
}

fn selection(a: &ExportArgs) -> Selection {
    Selection {
        profile_type: a.profile_type.clone(),
        states: a.states.clone(),
        operator: a.operator.clone(),
    }
}

/// `smdpp subscribers decrypt`.
pub fn decrypt_command(a: DecryptArgs) -> Result<()> {
    let out = a.out.as_deref().filter(|p| *p != Path::new("-"));
    let passphrase = Passphrase::read(&a.passphrase_file)?;
    if let Some(out) = out {
        check_out(out, a.force)?;
    }
    let file = std::fs::read(&a.input).with_context(|| format!("reading {}", a.input.display()))?;
    let plain =
        open_export(&file, &passphrase).map_err(|e| anyhow!("{}: {e}", a.input.display()))?;
    match out {
        Some(path) => {
            write_private(path, a.force, &[&plain])?;
            println!(
                "decrypted {} into {} ({} bytes)",
                a.input.display(),
                path.display(),
                plain.len()
            );
        }
        None => {
            let mut w = std::io::stdout().lock();
            w.write_all(&plain)?;
            w.flush()?;
        }
    }
    Ok(())
}

/// `smdpp subscribers ...`.
pub async fn subscribers_command(cmd: SubscribersCommand) -> Result<()> {
    match cmd {
        SubscribersCommand::Export(a) => export_command(a).await,
        SubscribersCommand::Decrypt(a) => decrypt_command(a),
    }
}

/// [`subscribers_command`] on a new tokio runtime.
pub fn subscribers_blocking(cmd: SubscribersCommand) -> Result<()> {
    block_on(subscribers_command(cmd))
}
