//! The audit trail (tables `audit_log` and `audit_head` of migration `0010_audit.sql`): an
//! append-only, hash-chained log of every operator and CLI action and every profile state
//! change, with actor, time and reason, never a secret.
//!
//! # The chain
//!
//! Record `seq` (1, 2, 3, ... without gaps) carries `prev_hash`, the `hash` of record
//! `seq - 1` ([`GENESIS_HASH`], 64 zeros, for record 1), and its own `hash`: the SHA-256, as
//! lower-case hex, of its canonical encoding ([`audit_hash`]):
//!
//! ```text
//! "smdpp-audit-v1"                      14 bytes, a domain tag
//! seq                                   8 bytes, big-endian two's complement
//! at                                    8 bytes, big-endian (ms since the Unix epoch)
//! actor, action, subject, reason,
//! details, prev_hash                    each: 4-byte big-endian length, then its UTF-8 bytes
//! ```
//!
//! Every field has a fixed size or a length prefix, so no two different records encode to
//! the same bytes. Altering any field of a record breaks its hash; removing a record leaves
//! a gap in `seq`; moving one breaks the `prev_hash` link of its new position; removing
//! the last records leaves the head ahead of the log. [`Store::verify_audit`] finds the
//! first of these.
//!
//! # Writers
//!
//! [`append_tx`] appends inside the caller's transaction (a profile state change appends
//! its record in the transaction that writes its `profile_events` row, see
//! `insert_event`): `UPDATE audit_head SET seq = seq + 1 ... RETURNING seq, hash` takes the
//! next position and row-locks the head until the transaction ends (PostgreSQL; SQLite has
//! a single writer anyway), so concurrent writers on any number of nodes queue on the head
//! and the chain stays linear; then one INSERT of the record and one UPDATE of the head's
//! hash, three statements by primary key. A rolled-back transaction takes its record and
//! its seq with it, so no gap appears. No code path updates or deletes an `audit_log` row.

use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Result, Store};
use crate::StoreError;
use crate::model::{EpochMillis, now_ms};
use crate::sql::Sql;

/// `prev_hash` of record 1 (and the head's hash while the log is empty).
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Column list of `audit_log`, in the order [`record_from_row`] reads.
const AUDIT_COLS: &str = "seq, at, actor, action, subject, reason, details, prev_hash, hash";

/// Records read per query by [`Store::verify_audit`].
const VERIFY_PAGE: i64 = 1000;

/// A record to append: who did what to what, and why. Never put a secret in any field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Who: `es2:<operator>`, `cli:<unix user>`, `console:<user>`, `es9plus` (the device),
    /// `system`, ...
    pub actor: String,
    /// What: `profile.state`, `order.confirm`, `operator.add`, `keys.rotate`, ...
    pub action: String,
    /// On what: an ICCID, an operator id, a type name, ...; empty when none.
    pub subject: String,
    /// Why; empty when none.
    pub reason: String,
    /// A JSON object with the facts of the action (no secret).
    pub details: serde_json::Value,
}

impl AuditEntry {
    /// An entry with no reason and empty details.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        subject: impl Into<String>,
    ) -> Self {
        AuditEntry {
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            reason: String::new(),
            details: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// Sets the reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// Sets the details (a JSON object).
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// One stored record of the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain (1, 2, ...).
    pub seq: i64,
    /// When (ms since the Unix epoch).
    pub at: EpochMillis,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what (empty when none).
    pub subject: String,
    /// Why (empty when none).
    pub reason: String,
    /// JSON object text.
    pub details: String,
    /// Hash of the previous record ([`GENESIS_HASH`] for record 1).
    pub prev_hash: String,
    /// This record's hash ([`audit_hash`]).
    pub hash: String,
}

impl AuditRecord {
    /// The hash this record's fields call for (equal to [`AuditRecord::hash`] unless the
    /// record was altered).
    pub fn expected_hash(&self) -> String {
        audit_hash(
            self.seq,
            self.at,
            &self.actor,
            &self.action,
            &self.subject,
            &self.reason,
            &self.details,
            &self.prev_hash,
        )
    }
}

/// Which records [`Store::list_audit`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only records at or after this time (ms).
    pub since: Option<EpochMillis>,
    /// Only records with exactly this subject.
    pub subject: Option<String>,
    /// Only records with exactly this actor.
    pub actor: Option<String>,
    /// At most this many records: the most recent ones.
    pub limit: Option<i64>,
}

/// The first defect [`Store::verify_audit`] found. `Display` gives the operator's message
/// (without the `audit: ` prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditFault {
    /// Record `seq` is not in the log: the record before it (`after`, 0 when `seq` is 1) is
    /// followed by `next`.
    Missing {
        /// The first missing position.
        seq: i64,
        /// The last intact position before it (0: none).
        after: i64,
        /// The position that follows it in the log.
        next: i64,
    },
    /// Record `seq`'s fields do not give its hash.
    Altered {
        /// The record.
        seq: i64,
    },
    /// Record `seq`'s `prev_hash` is not the hash of record `seq - 1` (moved, or inserted).
    OutOfOrder {
        /// The record.
        seq: i64,
    },
    /// The head row of the chain is missing.
    HeadMissing,
    /// The head says the chain is longer than the log (its last records were removed).
    HeadAhead {
        /// The head's seq.
        head: i64,
        /// The last record in the log (0: the log is empty).
        last: i64,
    },
    /// The log goes on past the head (records appended outside the writer).
    HeadBehind {
        /// The head's seq.
        head: i64,
    },
    /// The head's hash is not the hash of the last record.
    HeadHash {
        /// The last record.
        seq: i64,
    },
}

impl std::fmt::Display for AuditFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditFault::Missing { seq, after, next } if *after == 0 => {
                write!(f, "record {seq} missing (the log starts at seq {next})")
            }
            AuditFault::Missing { seq, after, next } => {
                write!(
                    f,
                    "record {seq} missing (seq {after} is followed by {next})"
                )
            }
            AuditFault::Altered { seq } => write!(f, "record {seq} altered (hash mismatch)"),
            AuditFault::OutOfOrder { seq } => write!(
                f,
                "record {seq} out of order (its prev_hash is not the hash of record {})",
                seq - 1
            ),
            AuditFault::HeadMissing => f.write_str("head missing (table audit_head is empty)"),
            AuditFault::HeadAhead { head, last: 0 } => {
                write!(f, "head at seq {head} but the log is empty")
            }
            AuditFault::HeadAhead { head, last } => write!(
                f,
                "head at seq {head} but the last record is {last} (record {} missing)",
                last + 1
            ),
            AuditFault::HeadBehind { head } => write!(
                f,
                "record {} not in the chain (the head is at seq {head})",
                head + 1
            ),
            AuditFault::HeadHash { seq } => {
                write!(f, "head hash does not match record {seq}")
            }
        }
    }
}

/// What [`Store::verify_audit`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// Records checked (up to the first fault).
    pub records: i64,
    /// The first defect, `None` when the chain is intact.
    pub fault: Option<AuditFault>,
}

/// The SHA-256 (lower-case hex) of a record's canonical encoding (see the module docs).
#[allow(clippy::too_many_arguments)]
pub fn audit_hash(
    seq: i64,
    at: EpochMillis,
    actor: &str,
    action: &str,
    subject: &str,
    reason: &str,
    details: &str,
    prev_hash: &str,
) -> String {
    let mut h = Sha256::new();
    h.update(b"smdpp-audit-v1");
    h.update(seq.to_be_bytes());
    h.update(at.to_be_bytes());
    for field in [actor, action, subject, reason, details, prev_hash] {
        // A field longer than 4 GiB cannot be bound as one SQL text anyway; saturate.
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        h.update(len.to_be_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

/// A MatchingID as the audit trail shows it: its first 4 characters, then `****` (`****`
/// alone when it has 4 or fewer).
pub fn mask_matching_id(id: &str) -> String {
    if id.chars().count() <= 4 {
        return "****".to_owned();
    }
    let head: String = id.chars().take(4).collect();
    format!("{head}****")
}

/// `text` with the value of every `matchingId=VALUE` (up to the next space) masked with
/// [`mask_matching_id`].
pub fn mask_matching_ids_in(text: &str) -> String {
    const KEY: &str = "matchingId=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(KEY) {
        let (before, after) = rest.split_at(i + KEY.len());
        out.push_str(before);
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        out.push_str(&mask_matching_id(&after[..end]));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn record_from_row(row: &AnyRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        subject: row.try_get("subject")?,
        reason: row.try_get("reason")?,
        details: row.try_get("details")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Appends `entry` to the chain inside `tx` (see the module docs); it becomes visible, with
/// its seq, when `tx` commits and vanishes with it on rollback.
pub(crate) async fn append_tx(tx: &mut AnyConnection, entry: &AuditEntry) -> Result<AuditRecord> {
    let head = Sql::new("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .build()?
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::corrupt("audit head row missing"))?;
    let seq: i64 = head.try_get("seq")?;
    let prev_hash: String = head.try_get("hash")?;
    let details = if entry.details.is_null() {
        "{}".to_owned()
    } else {
        entry.details.to_string()
    };
    let at = now_ms();
    let hash = audit_hash(
        seq,
        at,
        &entry.actor,
        &entry.action,
        &entry.subject,
        &entry.reason,
        &details,
        &prev_hash,
    );
    let mut q = Sql::new(
        "INSERT INTO audit_log (seq, at, actor, action, subject, reason, details, prev_hash, \
         hash) VALUES (",
    );
    q.bind(seq)
        .push(", ")
        .bind(at)
        .push(", ")
        .bind(entry.actor.clone())
        .push(", ")
        .bind(entry.action.clone())
        .push(", ")
        .bind(entry.subject.clone())
        .push(", ")
        .bind(entry.reason.clone())
        .push(", ")
        .bind(details.clone())
        .push(", ")
        .bind(prev_hash.clone())
        .push(", ")
        .bind(hash.clone())
        .push(")");
    q.build()?.execute(&mut *tx).await?;
    let mut q = Sql::new("UPDATE audit_head SET hash = ");
    q.bind(hash.clone()).push(" WHERE id = 1");
    q.build()?.execute(&mut *tx).await?;
    Ok(AuditRecord {
        seq,
        at,
        actor: entry.actor.clone(),
        action: entry.action.clone(),
        subject: entry.subject.clone(),
        reason: entry.reason.clone(),
        details,
        prev_hash,
        hash,
    })
}

/// The `profile.state` record of a profile state change (its `profile_events` row): the
/// event's actor, the ICCID as subject, the event's cause as reason, and the states and the
/// event's detail (MatchingIDs masked) as details.
pub(crate) fn state_change_entry(
    iccid: &str,
    from: Option<&str>,
    to: &str,
    actor: &str,
    cause: Option<&str>,
    detail: Option<&str>,
) -> AuditEntry {
    let mut details = serde_json::Map::new();
    details.insert(
        "from".into(),
        from.map_or(serde_json::Value::Null, Into::into),
    );
    details.insert("to".into(), to.into());
    if let Some(d) = detail {
        details.insert("detail".into(), mask_matching_ids_in(d).into());
    }
    AuditEntry::new(actor, "profile.state", iccid)
        .with_reason(cause.unwrap_or_default())
        .with_details(serde_json::Value::Object(details))
}

impl Store {
    /// Appends `entry` to the audit chain in a transaction of its own (for actions that are
    /// not a profile state change: operator, type, key and webhook management, ES2+ calls,
    /// console actions, ...).
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<AuditRecord> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut tx = turn.begin().await?;
            let rec = append_tx(&mut tx, entry).await?;
            tx.commit().await?;
            Ok(rec)
        }
        .await;
        turn.finish(result).await
    }

    /// The records matching `filter`, oldest first (with a limit: the most recent `limit`
    /// of them).
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        if filter.limit.is_some_and(|l| l < 1) {
            return Err(StoreError::InvalidInput("limit must be at least 1".into()));
        }
        let mut q = Sql::new(&format!("SELECT {AUDIT_COLS} FROM audit_log WHERE 1 = 1"));
        if let Some(since) = filter.since {
            q.push(" AND at >= ").bind(since);
        }
        if let Some(s) = &filter.subject {
            q.push(" AND subject = ").bind(s.clone());
        }
        if let Some(a) = &filter.actor {
            q.push(" AND actor = ").bind(a.clone());
        }
        match filter.limit {
            Some(l) => {
                q.push(" ORDER BY seq DESC LIMIT ").bind(l);
                let mut rows = q.fetch_all(&self.pool, record_from_row).await?;
                rows.reverse();
                Ok(rows)
            }
            None => {
                q.push(" ORDER BY seq");
                q.fetch_all(&self.pool, record_from_row).await
            }
        }
    }

    /// Walks the chain from seq 1, checking each record's hash, its `prev_hash` link and the
    /// continuity of `seq`, then the head; stops at the first defect. Reads one consistent
    /// snapshot (a read transaction; `REPEATABLE READ` on PostgreSQL), so concurrent
    /// writers do not disturb it.
    pub async fn verify_audit(&self) -> Result<AuditReport> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            Sql::new("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .build()?
                .execute(&mut *tx)
                .await?;
        }
        let report = verify_in(&mut tx).await;
        tx.rollback().await?;
        report
    }
}

async fn verify_in(tx: &mut AnyConnection) -> Result<AuditReport> {
    let head = Sql::new("SELECT seq, hash FROM audit_head WHERE id = 1")
        .build()?
        .fetch_optional(&mut *tx)
        .await?;
    let (head_seq, head_hash): (i64, String) = match head {
        Some(r) => (r.try_get("seq")?, r.try_get("hash")?),
        None => {
            return Ok(AuditReport {
                records: 0,
                fault: Some(AuditFault::HeadMissing),
            });
        }
    };
    let mut last_seq = 0i64;
    let mut last_hash = GENESIS_HASH.to_owned();
    let fault = |records: i64, fault: AuditFault| {
        Ok(AuditReport {
            records,
            fault: Some(fault),
        })
    };
    loop {
        let mut q = Sql::new(&format!("SELECT {AUDIT_COLS} FROM audit_log WHERE seq > "));
        q.bind(last_seq)
            .push(" ORDER BY seq LIMIT ")
            .bind(VERIFY_PAGE);
        let rows = q.build()?.fetch_all(&mut *tx).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let r = record_from_row(row)?;
            let want = last_seq + 1;
            if r.seq != want {
                return fault(
                    last_seq,
                    AuditFault::Missing {
                        seq: want,
                        after: last_seq,
                        next: r.seq,
                    },
                );
            }
            if r.seq > head_seq {
                return fault(last_seq, AuditFault::HeadBehind { head: head_seq });
            }
            if r.prev_hash != last_hash {
                return fault(last_seq, AuditFault::OutOfOrder { seq: r.seq });
            }
            if r.expected_hash() != r.hash {
                return fault(last_seq, AuditFault::Altered { seq: r.seq });
            }
            last_seq = r.seq;
            last_hash = r.hash;
        }
    }
    if head_seq != last_seq {
        return fault(
            last_seq,
            AuditFault::HeadAhead {
                head: head_seq,
                last: last_seq,
            },
        );
    }
    if head_hash != last_hash {
        return fault(last_seq, AuditFault::HeadHash { seq: last_seq });
    }
    Ok(AuditReport {
        records: last_seq,
        fault: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_length_prefixed() {
        // Moving a byte from one field to the next changes the hash.
        let a = audit_hash(1, 2, "ab", "c", "", "", "{}", GENESIS_HASH);
        let b = audit_hash(1, 2, "a", "bc", "", "", "{}", GENESIS_HASH);
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(a, audit_hash(1, 2, "ab", "c", "", "", "{}", GENESIS_HASH));
    }

    #[test]
    fn matching_ids_are_masked() {
        assert_eq!(mask_matching_id("ABCD-1234-XYZ"), "ABCD****");
        assert_eq!(mask_matching_id("AB"), "****");
        assert_eq!(
            mask_matching_ids_in("matchingId=QWERTY-1 eid=8904 matchingId=Z"),
            "matchingId=QWER**** eid=8904 matchingId=****"
        );
        assert_eq!(mask_matching_ids_in("no id here"), "no id here");
    }
}
