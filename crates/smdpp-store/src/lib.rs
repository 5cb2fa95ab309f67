//! Storage layer of the SM-DP+.
//!
//! One code path serves SQLite (the default: a single file, WAL journal) and
//! PostgreSQL (for scale-out), through the sqlx `Any` driver with runtime
//! queries. Only booleans, integers, text and blobs cross the driver; times
//! are `i64` milliseconds since the Unix epoch.
//!
//! The store holds no business rules (which transitions are legal, what a
//! limit means): those live in `smdpp-core`. What it guarantees is
//! atomicity: every state change is one transaction whose UPDATE is
//! conditional on the expected state and/or version, and the matching history
//! event is written in that same transaction. Of several concurrent callers
//! starting from the same state, exactly one wins; the others get
//! [`StoreError::Conflict`] and nothing is written for them.
//!
//! Every write runs in a write turn (`writer` module): on SQLite one writer connection,
//! separate from the `query_only` read pool, takes the writes in FIFO order and commits
//! the ones queued together in one transaction (group commit, each write in a savepoint of
//! its own); a write method returns only once its write is durable. On PostgreSQL a turn
//! is a pooled connection and each write commits on its own.
//!
//! Tables (see `migrations/`): `profiles`, `profile_events` (append-only),
//! `rsp_sessions` (opaque session blobs owned by the core) and
//! `notifications` (unique on `(eid, seq_number)` for replay detection), and for ES2+
//! `operators` (tenants, keyed by client-certificate fingerprint) and `es2_calls`
//! (functionCallIdentifier replay records), and for the profile factory `profile_types`,
//! `profile_secrets` (sealed subscriber secrets) and `vault_deks` (wrapped DEKs), and the
//! audit trail `audit_log` (append-only, hash-chained; see [`AuditEntry`]) with its head
//! `audit_head`.
//! Migrations are written once, with `{{BLOB}}`/`{{AUTO_ID}}` placeholders
//! rendered per [`Backend`], and run on [`Store::connect`].
//!
//! # Testing
//!
//! `tests/battery.rs` runs every test against a fresh SQLite file and, when
//! `SMDPP_TEST_PG_URL` (an admin URL) is set, against a fresh PostgreSQL
//! database created per test. `scripts/pg-test.sh` starts a throwaway server:
//!
//! ```text
//! source scripts/pg-test.sh && trap pg_test_stop EXIT
//! SMDPP_REQUIRE_PG=1 cargo test -p smdpp-store
//! ```
//!
//! With `SMDPP_REQUIRE_PG=1` and no URL the PostgreSQL tests fail instead of
//! printing a skip notice.

mod error;
mod model;
mod sql;
mod store;
mod writer;

pub use error::StoreError;
pub use model::{
    CachedBpp, ClaimFilter, Counter, CounterOp, CounterValue, EpochMillis, Es2CallOutcome,
    Es2CallRecord, EventRecord, Expect, NewNotification, NewOperator, NewProfile, NewSession,
    Notification, Operator, Patch, Profile, ProfileEvent, ProfileFilter, ProfileMetadata,
    ProfileState, ProfileUpdate, RecordOutcome, Session, SessionUpdate, StepDone, StepWrites,
    normalize_iccid, now_ms,
};
pub use store::audit::{
    AuditEntry, AuditFault, AuditFilter, AuditRecord, AuditReport, GENESIS_HASH, audit_hash,
    mask_matching_id, mask_matching_ids_in,
};
pub use store::console::{ConsoleSession, ConsoleUser, OutboxStats, PoolStatus};
pub use store::device::{DeviceOutcome, DeviceReport, EuiccCapabilities};
pub use store::factory::{
    DekRecord, IMPORT_CHUNK, ImportOutcome, ImportRow, ImportTx, OnDelete, ProfileType,
    SealedSecrets,
};
pub use store::operator::{
    CoreAction, CoreNetworkRow, EventFacts, ProfileGenerator, Signal, TypeCoreNetwork,
};
pub use store::outbox::{NewOutboxRow, OutboxKind, OutboxRow, OutboxState};
pub use store::rpm::{NewRpmOrder, RpmFinish, RpmOrder, RpmOrderState};
pub use store::webhooks::Webhook;
pub use store::{Backend, SqliteSynchronous, Store, StoreOptions};
pub use writer::WriterStats;
