//! The durable outbox: outbound calls (ES2+.HandleDownloadProgressInfo to operators,
//! ES12.RegisterEvent/DeleteEvent to SM-DSs) stored in the same transaction as the state
//! change that causes them, then delivered by a worker with retries.
//!
//! Life of a row: `pending` (inserted with an [`EventRecord`](crate::EventRecord) through
//! [`EventRecord::with_outbox`](crate::EventRecord::with_outbox), or alone with
//! [`Store::enqueue_outbox`]) → leased by [`Store::claim_outbox`] → `delivered`
//! ([`Store::outbox_delivered`]), back to `pending` later ([`Store::outbox_retry`]) or
//! `failed` ([`Store::outbox_failed`]). A lease is a `(lease_until, lease_token)` pair set
//! by one compare-and-set UPDATE: two workers (or nodes) never hold the same row at once, and
//! the outcome of a send is only recorded by the holder of the current lease. A worker that
//! dies mid-send loses nothing: its lease runs out and the row is sent again with the same
//! id (at-least-once).

use sqlx::AnyConnection;
use std::fmt;
use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store};
use crate::StoreError;
use crate::model::{EpochMillis, now_ms};
use crate::sql::Sql;

/// Column list of `outbox`, in the order [`outbox_from_row`] reads.
pub(crate) const OUTBOX_COLS: &str = "seq, id, operator_id, kind, iccid, target, body, state, attempts, \
     last_error, created_at, next_attempt_at, lease_until, finished_at";

/// What an outbox row calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutboxKind {
    /// ES2+.HandleDownloadProgressInfo to the owning operator (SGP.22 section 5.3.5).
    Hdpi,
    /// ES12.RegisterEvent to an SM-DS (section 5.9.1).
    Es12Register,
    /// ES12.DeleteEvent to an SM-DS (section 5.9.2).
    Es12Delete,
    /// Provisioning or deprovisioning of a subscriber in a core network (`target` = the
    /// core network's name; see [`crate::CoreAction`]).
    CoreNetwork,
    /// A signed webhook (`target` = the webhook id; body = [`crate::EventFacts`]).
    Webhook,
}

impl OutboxKind {
    /// The stored name (`hdpi`, `es12-register`, `es12-delete`).
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Hdpi => "hdpi",
            OutboxKind::Es12Register => "es12-register",
            OutboxKind::Es12Delete => "es12-delete",
            OutboxKind::CoreNetwork => "core-network",
            OutboxKind::Webhook => "webhook",
        }
    }
}

impl fmt::Display for OutboxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutboxKind {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "hdpi" => Ok(OutboxKind::Hdpi),
            "es12-register" => Ok(OutboxKind::Es12Register),
            "es12-delete" => Ok(OutboxKind::Es12Delete),
            "core-network" => Ok(OutboxKind::CoreNetwork),
            "webhook" => Ok(OutboxKind::Webhook),
            _ => Err(StoreError::InvalidInput(format!(
                "unknown outbox kind {s:?}"
            ))),
        }
    }
}

/// Delivery state of an outbox row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutboxState {
    /// Waiting for its (next) attempt.
    Pending,
    /// The receiver acknowledged it.
    Delivered,
    /// Given up (attempts or age exhausted, or not deliverable at all).
    Failed,
}

impl OutboxState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Delivered => "delivered",
            OutboxState::Failed => "failed",
        }
    }
}

impl fmt::Display for OutboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutboxState {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(OutboxState::Pending),
            "delivered" => Ok(OutboxState::Delivered),
            "failed" => Ok(OutboxState::Failed),
            _ => Err(StoreError::InvalidInput(format!(
                "unknown outbox state {s:?}"
            ))),
        }
    }
}

/// An outbound call to queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOutboxRow {
    /// Stable unique id, sent as `functionCallIdentifier` on every attempt.
    pub id: String,
    /// Operator the call belongs to (the recipient of a HandleDownloadProgressInfo).
    pub operator_id: Option<String>,
    /// What the call is.
    pub kind: OutboxKind,
    /// Profile concerned, for listing.
    pub iccid: Option<String>,
    /// Where to send it; `None` means "resolve at delivery time" (the operator's callback URL).
    pub target: Option<String>,
    /// The JSON body without the request header (the worker adds the header).
    pub body: String,
}

/// A stored outbox row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    /// Insertion order.
    pub seq: i64,
    /// Stable unique id (`functionCallIdentifier`).
    pub id: String,
    /// Operator.
    pub operator_id: Option<String>,
    /// Kind.
    pub kind: OutboxKind,
    /// Profile concerned.
    pub iccid: Option<String>,
    /// Target, if fixed at enqueue time.
    pub target: Option<String>,
    /// JSON body without the header.
    pub body: String,
    /// Delivery state.
    pub state: OutboxState,
    /// Attempts made so far.
    pub attempts: i64,
    /// Error of the last failed attempt.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: EpochMillis,
    /// Earliest time of the next attempt.
    pub next_attempt_at: EpochMillis,
    /// End of the current lease, if any.
    pub lease_until: Option<EpochMillis>,
    /// When it became delivered or failed.
    pub finished_at: Option<EpochMillis>,
}

pub(crate) fn outbox_from_row(row: &AnyRow) -> Result<OutboxRow> {
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    Ok(OutboxRow {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        operator_id: row.try_get("operator_id")?,
        kind: kind
            .parse()
            .map_err(|_| StoreError::corrupt("outbox kind"))?,
        iccid: row.try_get("iccid")?,
        target: row.try_get("target")?,
        body: row.try_get("body")?,
        state: state
            .parse()
            .map_err(|_| StoreError::corrupt("outbox state"))?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        lease_until: row.try_get("lease_until")?,
        finished_at: row.try_get("finished_at")?,
    })
}

/// Inserts `rows` as pending, due at `now`, inside `tx`.
pub(crate) async fn insert_rows(
    tx: &mut AnyConnection,
    rows: &[NewOutboxRow],
    now: EpochMillis,
) -> Result<()> {
    for r in rows {
        let mut q = Sql::new(
            "INSERT INTO outbox (id, operator_id, kind, iccid, target, body, state, attempts, \
             created_at, next_attempt_at) VALUES (",
        );
        q.bind(r.id.clone())
            .push(", ")
            .bind(r.operator_id.clone())
            .push(", ")
            .bind(r.kind.as_str())
            .push(", ")
            .bind(r.iccid.clone())
            .push(", ")
            .bind(r.target.clone())
            .push(", ")
            .bind(r.body.clone())
            .push(", 'pending', 0, ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(")");
        q.build()?.execute(&mut *tx).await?;
    }
    Ok(())
}

impl Store {
    /// Queues outbound calls on their own (one transaction), for calls that accompany no
    /// profile transition. With a transition, use
    /// [`EventRecord::with_outbox`](crate::EventRecord::with_outbox) instead so both commit
    /// together. A duplicate id fails with [`StoreError::Duplicate`] and nothing is written.
    pub async fn enqueue_outbox(&self, rows: &[NewOutboxRow]) -> Result<()> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut tx = turn.begin().await?;
            if let Err(e) = insert_rows(&mut tx, rows, now_ms()).await {
                tx.rollback().await?;
                return Err(e);
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        turn.finish(result).await
    }

    /// Leases up to `limit` pending rows due at `now` (oldest first) for `lease_ms`, under
    /// `token`. A row whose lease has not run out is skipped. Returns the leased rows in
    /// insertion order; only the holder of `token` can record their outcome.
    pub async fn claim_outbox(
        &self,
        now: EpochMillis,
        limit: u32,
        lease_ms: i64,
        token: &str,
    ) -> Result<Vec<OutboxRow>> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q = Sql::new("UPDATE outbox SET lease_until = ");
            q.bind(now.saturating_add(lease_ms))
                .push(", lease_token = ")
                .bind(token.to_owned())
                .push(" WHERE seq IN (SELECT seq FROM outbox WHERE state = 'pending' AND next_attempt_at <= ")
                .bind(now)
                .push(" AND (lease_until IS NULL OR lease_until <= ")
                .bind(now)
                .push(") ORDER BY seq LIMIT ")
                .bind(i64::from(limit.clamp(1, 1000)))
                .push(self.backend.skip_locked())
                .push(") AND state = 'pending' AND (lease_until IS NULL OR lease_until <= ")
                .bind(now)
                .push(") RETURNING ")
                .push(OUTBOX_COLS);
            let mut rows = q
                .build()?
                .fetch_all(turn.conn())
                .await?
                .iter()
                .map(outbox_from_row)
                .collect::<Result<Vec<_>>>()?;
            rows.sort_by_key(|r| r.seq);
            Ok(rows)
        }
        .await;
        turn.finish(result).await
    }

    /// Records a successful delivery of a row leased under `token`. `false` when the lease
    /// was lost (another worker took the row over); nothing is written then.
    pub async fn outbox_delivered(&self, id: &str, token: &str, now: EpochMillis) -> Result<bool> {
        let mut q = Sql::new("UPDATE outbox SET state = 'delivered', attempts = attempts + 1, ");
        q.push("last_error = NULL, lease_until = NULL, lease_token = NULL, finished_at = ")
            .bind(now);
        self.finish_leased(q, id, token).await
    }

    /// Records a failed attempt of a row leased under `token` and schedules the next one at
    /// `next_at`. `false` when the lease was lost.
    pub async fn outbox_retry(
        &self,
        id: &str,
        token: &str,
        next_at: EpochMillis,
        error: &str,
    ) -> Result<bool> {
        let mut q = Sql::new("UPDATE outbox SET attempts = attempts + 1, last_error = ");
        q.bind(error.to_owned())
            .push(", next_attempt_at = ")
            .bind(next_at)
            .push(", lease_until = NULL, lease_token = NULL");
        self.finish_leased(q, id, token).await
    }

    /// Records a failed last attempt of a row leased under `token`: the row becomes
    /// `failed` and is never sent again. `false` when the lease was lost.
    pub async fn outbox_failed(
        &self,
        id: &str,
        token: &str,
        now: EpochMillis,
        error: &str,
    ) -> Result<bool> {
        let mut q = Sql::new("UPDATE outbox SET state = 'failed', attempts = attempts + 1, ");
        q.push("last_error = ")
            .bind(error.to_owned())
            .push(", lease_until = NULL, lease_token = NULL, finished_at = ")
            .bind(now);
        self.finish_leased(q, id, token).await
    }

    async fn finish_leased(&self, mut q: Sql, id: &str, token: &str) -> Result<bool> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            q.push(" WHERE id = ")
                .bind(id.to_owned())
                .push(" AND state = 'pending' AND lease_token = ")
                .bind(token.to_owned());
            let done = q.build()?.execute(turn.conn()).await?;
            Ok(done.rows_affected() == 1)
        }
        .await;
        turn.finish(result).await
    }

    /// Lists outbox rows, optionally in one state, in insertion order (at most `limit`).
    pub async fn list_outbox(
        &self,
        state: Option<OutboxState>,
        limit: u32,
    ) -> Result<Vec<OutboxRow>> {
        let mut q = Sql::new("SELECT ");
        q.push(OUTBOX_COLS).push(" FROM outbox WHERE 1 = 1");
        if let Some(s) = state {
            q.push(" AND state = ").bind(s.as_str());
        }
        q.push(" ORDER BY seq LIMIT ")
            .bind(i64::from(limit.clamp(1, 100_000)));
        q.fetch_all(&self.pool, outbox_from_row).await
    }
}
