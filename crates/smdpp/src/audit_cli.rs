//! `smdpp audit list|verify`: the audit trail (issue #13) from the command line, and the
//! helpers the state-changing commands use to append their record.
//!
//! The trail itself (tables, hash chain, verification) lives in the store
//! ([`smdpp_store::AuditEntry`]); every profile state change appends its record there in the
//! same transaction. The commands of this crate that change something else (operators,
//! types, keys, webhooks, the outbox, imports) append one record each with [`record`], as
//! `cli:<unix user>` ([`cli_actor`]).

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use smdpp_store::{AuditEntry, AuditFilter, AuditRecord, Store};

use crate::cli::{DataArgs, data_location, load_file, open_store};
pub use smdpp_service::assembly::cli_actor;
use smdpp_service::display::rfc3339;

/// `smdpp audit ...`.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Show audit records, oldest first (with --limit: the most recent N).
    List {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
        /// Only records at or after this time (RFC 3339, e.g. 2026-12-07T10:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Only records about this subject (an ICCID, an operator id, ...).
        #[arg(long)]
        subject: Option<String>,
        /// Only records by this actor (e.g. `es2:op-1`, `cli:alice`, `console:bob`).
        #[arg(long)]
        actor: Option<String>,
        /// At most this many records (the most recent).
        #[arg(long)]
        limit: Option<i64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Check the whole chain: every record's hash, its link to the previous one, seq
    /// continuity and the head. Exit status 1 and the first bad record when it is broken.
    Verify {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
    },
}

/// Appends one record for a command-line action, as [`cli_actor`].
pub async fn record(
    store: &Store,
    action: &str,
    subject: &str,
    details: serde_json::Value,
) -> Result<()> {
    store
        .append_audit(&AuditEntry::new(cli_actor(), action, subject).with_details(details))
        .await
        .with_context(|| format!("writing the audit record of {action} {subject}"))?;
    Ok(())
}

/// Parses an RFC 3339 time into milliseconds since the Unix epoch.
fn parse_since(s: &str) -> Result<i64> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
        anyhow!("--since: {s:?} is not an RFC 3339 time (e.g. 2026-12-07T10:00:00Z)")
    })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| anyhow!("--since: {s:?} is out of range"))
}

fn json_line(r: &AuditRecord) -> serde_json::Value {
    let details = serde_json::from_str::<serde_json::Value>(&r.details)
        .unwrap_or_else(|_| serde_json::Value::String(r.details.clone()));
    serde_json::json!({
        "seq": r.seq,
        "at": rfc3339(r.at),
        "atMs": r.at,
        "actor": r.actor,
        "action": r.action,
        "subject": r.subject,
        "reason": r.reason,
        "details": details,
        "prevHash": r.prev_hash,
        "hash": r.hash,
    })
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// Runs an `audit` command. A broken chain is an error whose message names the first bad
/// record (`audit: record 17 altered (hash mismatch)`).
pub async fn audit(cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::List {
            data,
            since,
            subject,
            actor,
            limit,
            json,
        } => {
            let since = since.as_deref().map(parse_since).transpose()?;
            if limit.is_some_and(|l| l < 1) {
                bail!("--limit must be at least 1");
            }
            let store = open(&data).await?;
            let records = store
                .list_audit(&AuditFilter {
                    since,
                    subject,
                    actor,
                    limit,
                })
                .await?;
            for r in &records {
                if json {
                    println!("{}", json_line(r));
                } else {
                    println!(
                        "{:>6}  {}  {}  {}  {}  {}  {}",
                        r.seq,
                        rfc3339(r.at),
                        r.actor,
                        r.action,
                        dash(&r.subject),
                        dash(&r.reason),
                        r.details
                    );
                }
            }
            store.close().await;
        }
        AuditCommand::Verify { data } => {
            let store = open(&data).await?;
            let report = store.verify_audit().await?;
            store.close().await;
            if let Some(fault) = report.fault {
                bail!("audit: {fault}");
            }
            println!("audit: {} records, chain intact", report.records);
        }
    }
    Ok(())
}

async fn open(data: &DataArgs) -> Result<Store> {
    let file = load_file(data)?;
    let (data_dir, url) = data_location(data, &file)?;
    Ok(open_store(&data_dir, &url).await?.0)
}

/// [`audit`] on a current-thread tokio runtime.
pub fn audit_blocking(cmd: AuditCommand) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(audit(cmd))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn since_parses_rfc3339_and_rejects_garbage() {
        assert_eq!(parse_since("1970-01-01T00:00:01.5Z").unwrap(), 1500);
        assert_eq!(
            parse_since("2026-12-07T10:00:00+01:00").unwrap(),
            1_796_634_000_000
        );
        assert_eq!(
            parse_since("yesterday").unwrap_err().to_string(),
            "--since: \"yesterday\" is not an RFC 3339 time (e.g. 2026-12-07T10:00:00Z)"
        );
    }
}
