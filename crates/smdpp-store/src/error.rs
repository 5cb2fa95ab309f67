//! Typed errors returned by the store.

/// Errors returned by [`Store`](crate::Store) operations.
///
/// Database driver errors are flattened into [`StoreError::Database`] with a
/// message that never contains the connection URL or bound parameter values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The addressed row (profile, session, ...) does not exist.
    #[error("not found")]
    NotFound,
    /// A unique key is already taken.
    #[error("duplicate {key}")]
    Duplicate {
        /// Best-effort name of the colliding key (`iccid`, `matching_id`,
        /// `transaction_id`, ...), or the constraint as reported by the database.
        key: String,
    },
    /// The row exists but did not match the expected state and/or version;
    /// nothing was written.
    #[error("conflict: current state {state}, version {version}")]
    Conflict {
        /// State of the row at the time of the refusal.
        state: String,
        /// Version of the row at the time of the refusal.
        version: i64,
    },
    /// The row exists but has expired (RSP sessions).
    #[error("expired")]
    Expired,
    /// The caller passed a value the store cannot accept (e.g. a malformed ICCID).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Any other database or driver failure.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    /// Builds an error from a database value that cannot be decoded.
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Database(format!("unexpected stored value: {what}"))
    }
}

/// Column names we can recognise in a unique-violation message or constraint name.
const KNOWN_KEYS: &[&str] = &[
    "matching_id",
    "transaction_id",
    "seq_number",
    "iccid",
    "cert_sha256",
    "function_call_id",
    "es2_calls",
    "operators",
];

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(db) => {
                if db.is_unique_violation() {
                    let hay = format!("{} {}", db.constraint().unwrap_or(""), db.message());
                    let key = KNOWN_KEYS
                        .iter()
                        .find(|k| hay.contains(*k))
                        .map(|k| (*k).to_string())
                        .unwrap_or_else(|| db.constraint().unwrap_or("key").to_string());
                    return StoreError::Duplicate { key };
                }
                // The message of a server error describes the failure, not the
                // parameters; PostgreSQL puts values in `detail`, which we drop.
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                StoreError::Database(format!("[{code}] {}", db.message()))
            }
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut => StoreError::Database("connection pool timed out".into()),
            sqlx::Error::PoolClosed => StoreError::Database("connection pool closed".into()),
            sqlx::Error::Io(io) => StoreError::Database(format!("i/o error: {}", io.kind())),
            sqlx::Error::Tls(_) => StoreError::Database("TLS error".into()),
            sqlx::Error::Protocol(_) => StoreError::Database("protocol error".into()),
            // Configuration errors can echo the URL (and thus a password): never print them.
            sqlx::Error::Configuration(_) => {
                StoreError::Database("invalid database configuration".into())
            }
            sqlx::Error::ColumnDecode { index, .. } => {
                StoreError::Database(format!("cannot decode column {index}"))
            }
            sqlx::Error::ColumnNotFound(c) => StoreError::Database(format!("no column {c}")),
            sqlx::Error::Migrate(m) => StoreError::Database(format!("migration failed: {m}")),
            _ => StoreError::Database("database driver error".into()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(format!("migration failed: {e}"))
    }
}
