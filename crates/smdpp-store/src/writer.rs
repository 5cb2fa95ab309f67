//! Write turns, and on SQLite the group commit of concurrent writes.
//!
//! Every write of the store runs in a [`WriteTurn`]: its statements go to
//! [`WriteTurn::conn`] (or a transaction from [`WriteTurn::begin`]), and the write method
//! ends with [`WriteTurn::finish`], which returns only when the write is durable.
//!
//! * **PostgreSQL**: a turn is a connection checked out of the pool; each write commits on
//!   its own (many writers run at once, the server orders them).
//! * **SQLite** has one writer per database, so this process has one writer connection,
//!   separate from the pool of read connections (which are `query_only`: a write that
//!   forgot its turn fails loudly instead of taking the file lock behind the writer's
//!   back). Turns take the writer in FIFO order. The first turn of a *batch* opens a
//!   `BEGIN IMMEDIATE` transaction; each turn runs inside its own `SAVEPOINT`, released
//!   when it succeeds and rolled back when it fails, so a failed write leaves nothing
//!   behind and never disturbs the others. The batch commits (one `COMMIT`, one fsync
//!   under `synchronous = FULL`) when its last member finishes: the writers that were
//!   queued when the batch opened, or earlier when no writer is waiting. A successful
//!   [`WriteTurn::finish`] waits for that commit and returns its outcome: no caller is
//!   told "done" before its write is durable, and when the commit fails every member of
//!   the batch gets the error (nothing of the batch is stored).
//!
//! That is group commit: the writers that queue while one commit is being fsynced share
//! the next commit, so the number of fsyncs per second no longer bounds the number of
//! writes per second, and a write still costs one fsync of latency, not more.
//!
//! A turn dropped without `finish` (an error returned with `?` before it, or the caller's
//! future cancelled) leaves its savepoint to be rolled back by the next user of the writer;
//! a member waiting for a batch whose closing member vanished commits the batch itself
//! after [`STALL`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::pool::PoolConnection;
use sqlx::{Any, Connection, Pool, Transaction};
use tokio::sync::{Mutex, MutexGuard, OwnedMutexGuard, watch};

use crate::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

/// How long a batch member waits for the batch's closing member before it commits the
/// batch itself (only when that member was cancelled or dropped its turn mid-way).
pub(crate) const STALL: Duration = Duration::from_millis(200);

/// Most turns in one batch (bounds the latency a batch adds to its first member).
const MAX_BATCH: usize = 64;

/// The name of every turn's savepoint (savepoints nest by name in SQLite; a turn's own
/// transaction, from [`WriteTurn::begin`], is sqlx's nested savepoint inside it).
const TURN_SAVEPOINT: &str = "smdpp_turn";

/// What the members of one batch learn: `None` while open, then the commit's outcome.
type Outcome = Option<std::result::Result<(), String>>;

/// The SQLite writer: one connection (a pool of one), its open batch and its queue.
pub(crate) struct Writer {
    pool: Pool<Any>,
    batch: Arc<Mutex<Batch>>,
    /// Turns waiting for the writer (not yet holding it).
    queued: AtomicUsize,
    /// Turns that ended with `finish`, and the commits of the batches holding them.
    finished: AtomicU64,
    commits: AtomicU64,
}

/// What the SQLite writer did since the store was opened ([`crate::Store::writer_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterStats {
    /// Write turns ended (each one write method call).
    pub turns: u64,
    /// Batches committed (fsyncs under `synchronous = FULL`).
    pub commits: u64,
}

/// The open batch (if any) of the writer connection.
pub(crate) struct Batch {
    tx: Option<Transaction<'static, Any>>,
    /// Identifies the batch; bumped when it commits or aborts.
    id: u64,
    /// Turns that joined the open batch.
    members: usize,
    /// Members whose savepoint was released (their writes are in the batch).
    kept: usize,
    /// The batch closes after this many members (the queue when it opened, plus one).
    target: usize,
    /// A turn was dropped without `finish`: its savepoint is still open.
    abandoned: bool,
    done: watch::Sender<Outcome>,
}

impl Writer {
    pub(crate) fn new(pool: Pool<Any>) -> Writer {
        Writer {
            pool,
            batch: Arc::new(Mutex::new(Batch {
                tx: None,
                id: 0,
                members: 0,
                kept: 0,
                target: 1,
                abandoned: false,
                done: watch::channel(None).0,
            })),
            queued: AtomicUsize::new(0),
            finished: AtomicU64::new(0),
            commits: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            turns: self.finished.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
        }
    }

    /// The writer connection's pool (for migrations, before any turn runs).
    pub(crate) fn pool(&self) -> &Pool<Any> {
        &self.pool
    }

    async fn lock(&self) -> MutexGuard<'_, Batch> {
        let _queued = Queued::new(&self.queued);
        self.batch.lock().await
    }

    /// Takes the writer with no batch open and nothing left to commit (for a long
    /// transaction of its own: bulk import). Commits the open batch first.
    pub(crate) async fn exclusive(&self) -> Result<OwnedMutexGuard<Batch>> {
        let mut b = {
            let _queued = Queued::new(&self.queued);
            Arc::clone(&self.batch).lock_owned().await
        };
        self.close(&mut b).await?;
        Ok(b)
    }

    /// Opens a turn in `b`: rolls back an abandoned turn, opens the batch if none is open,
    /// starts the turn's savepoint.
    async fn open_turn(&self, b: &mut Batch) -> Result<Transaction<'static, Any>> {
        self.tidy(b).await;
        let mut tx = match b.tx.take() {
            Some(tx) => tx,
            None => {
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                b.members = 0;
                b.kept = 0;
                b.target = (self.queued.load(Ordering::SeqCst) + 1).min(MAX_BATCH);
                tx
            }
        };
        if let Err(e) = savepoint(&mut tx, "SAVEPOINT").await {
            b.tx = Some(tx);
            self.abort(b, &e).await;
            return Err(e);
        }
        b.members += 1;
        Ok(tx)
    }

    /// Rolls back the savepoint of a turn that was dropped without `finish`.
    async fn tidy(&self, b: &mut Batch) {
        if !std::mem::take(&mut b.abandoned) {
            return;
        }
        let Some(tx) = b.tx.as_mut() else { return };
        if let Err(e) = rollback_turn(tx).await {
            self.abort(b, &e).await;
        }
    }

    /// Commits the open batch (rolls it back when no member kept anything) and tells its
    /// members the outcome. Nothing to do without an open batch.
    async fn close(&self, b: &mut Batch) -> Result<()> {
        self.tidy(b).await;
        let Some(tx) = b.tx.take() else {
            return Ok(());
        };
        let outcome = if b.kept == 0 {
            tx.rollback().await.map_err(StoreError::from)
        } else {
            self.commits.fetch_add(1, Ordering::Relaxed);
            tx.commit().await.map_err(StoreError::from)
        };
        self.settle(b, outcome.as_ref().map(|_| ()).map_err(ToString::to_string));
        outcome
    }

    /// Rolls the open batch back after a failure of the connection itself, telling its
    /// members.
    async fn abort(&self, b: &mut Batch, why: &StoreError) {
        b.abandoned = false;
        if let Some(tx) = b.tx.take() {
            // The connection may be unusable; the rollback is best effort (sqlx rolls
            // back a dropped transaction too).
            let _ = tx.rollback().await;
        }
        self.settle(b, Err(why.to_string()));
    }

    /// Publishes a batch's outcome and starts the next batch's.
    fn settle(&self, b: &mut Batch, outcome: std::result::Result<(), String>) {
        let next = watch::channel(None).0;
        std::mem::replace(&mut b.done, next).send_replace(Some(outcome));
        b.id += 1;
        b.members = 0;
        b.kept = 0;
    }

    /// Waits for batch `id` to settle (committing it after [`STALL`] if its closing member
    /// vanished).
    async fn wait(&self, mut rx: watch::Receiver<Outcome>, id: u64) -> Result<()> {
        loop {
            // The outcome is copied out at once: the watch's read guard must not live
            // across the await below.
            let settled = match tokio::time::timeout(STALL, rx.wait_for(Option::is_some)).await {
                Ok(Ok(outcome)) => Some(outcome.clone().unwrap_or(Ok(()))),
                Ok(Err(_)) => Some(Err("the writer stopped before the commit".to_owned())),
                Err(_) => None,
            };
            match settled {
                Some(Ok(())) => return Ok(()),
                Some(Err(e)) => {
                    return Err(StoreError::Database(format!(
                        "the write was not committed: {e}"
                    )));
                }
                None => {
                    let mut b = self.lock().await;
                    if b.id == id {
                        // Still open and nobody left to close it: close it now. Its outcome
                        // reaches `rx` (an error is also returned here; `rx` has it too).
                        let _ = self.close(&mut b).await;
                    }
                }
            }
        }
    }
}

/// Counts a turn as queued while it waits for the writer.
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Queued(n)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn savepoint(tx: &mut AnyConnection, verb: &str) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!("{verb} {TURN_SAVEPOINT}")))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn rollback_turn(tx: &mut AnyConnection) -> Result<()> {
    savepoint(tx, "ROLLBACK TO").await?;
    savepoint(tx, "RELEASE").await
}

/// The right to write; see the module docs.
pub(crate) struct WriteTurn<'s> {
    kind: Kind<'s>,
}

enum Kind<'s> {
    /// PostgreSQL: a pooled connection; every write commits on its own.
    Pooled(PoolConnection<Any>),
    /// SQLite: the writer, held, with the open batch's transaction.
    Batched {
        writer: &'s Writer,
        batch: MutexGuard<'s, Batch>,
        tx: Option<Transaction<'static, Any>>,
    },
    /// Finished (only seen by `drop` after `finish`).
    Done,
}

impl<'s> WriteTurn<'s> {
    /// A turn on a pooled connection (PostgreSQL, or an in-memory SQLite database).
    pub(crate) async fn pooled(pool: &Pool<Any>) -> Result<WriteTurn<'s>> {
        Ok(WriteTurn {
            kind: Kind::Pooled(pool.acquire().await?),
        })
    }

    /// A turn on the SQLite writer, in FIFO order with the other turns.
    pub(crate) async fn batched(writer: &'s Writer) -> Result<WriteTurn<'s>> {
        let mut batch = writer.lock().await;
        let tx = writer.open_turn(&mut batch).await?;
        Ok(WriteTurn {
            kind: Kind::Batched {
                writer,
                batch,
                tx: Some(tx),
            },
        })
    }

    /// The connection this turn's statements run on.
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        match &mut self.kind {
            Kind::Pooled(c) => c,
            // `tx` is only taken by `finish` (which consumes the turn) and `drop`, and
            // `Done` only exists inside `finish`.
            Kind::Batched { tx: Some(t), .. } => t,
            Kind::Batched { tx: None, .. } | Kind::Done => {
                unreachable!("a write turn's transaction is present until the turn ends")
            }
        }
    }

    /// A transaction inside the turn: `BEGIN` on PostgreSQL, a savepoint of the batch on
    /// SQLite. Commit it before [`WriteTurn::finish`]; dropped, it rolls back.
    pub(crate) async fn begin(&mut self) -> Result<Transaction<'_, Any>> {
        Ok(self.conn().begin().await?)
    }

    /// Ends the turn with the write method's `result`. On success, returns once the write
    /// is durable (on SQLite: once its batch committed, with the batch's error if the
    /// commit failed). On failure, the turn's writes are rolled back and `result` returned.
    pub(crate) async fn finish<T>(mut self, result: Result<T>) -> Result<T> {
        let (writer, mut batch, mut tx) = match std::mem::replace(&mut self.kind, Kind::Done) {
            Kind::Pooled(_) | Kind::Done => return result,
            Kind::Batched { writer, batch, tx } => match tx {
                Some(tx) => (writer, batch, tx),
                None => return result,
            },
        };
        let ended = match &result {
            Ok(_) => savepoint(&mut tx, "RELEASE").await,
            Err(_) => rollback_turn(&mut tx).await,
        };
        batch.tx = Some(tx);
        writer.finished.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = ended {
            writer.abort(&mut batch, &e).await;
            return Err(e);
        }
        if result.is_ok() {
            batch.kept += 1;
        }
        let last = batch.members >= batch.target || writer.queued.load(Ordering::SeqCst) == 0;
        if last {
            let closed = writer.close(&mut batch).await;
            return match (result, closed) {
                (Ok(v), Ok(())) => Ok(v),
                (Ok(_), Err(e)) => Err(StoreError::Database(format!(
                    "the write was not committed: {e}"
                ))),
                (Err(e), _) => Err(e),
            };
        }
        let value = result?;
        let (rx, id) = (batch.done.subscribe(), batch.id);
        drop(batch);
        writer.wait(rx, id).await?;
        Ok(value)
    }
}

impl Drop for WriteTurn<'_> {
    fn drop(&mut self) {
        if let Kind::Batched { batch, tx, .. } = &mut self.kind
            && let Some(tx) = tx.take()
        {
            batch.tx = Some(tx);
            batch.abandoned = true;
        }
    }
}
