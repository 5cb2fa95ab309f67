//! [`ImportError`] (the whole import stops) and [`RowError`] (one row is rejected).

/// An error that stops the import: the file cannot be read as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Reading the input failed.
    #[error("read error after line {line}: {source}")]
    Io {
        /// Last line read completely.
        line: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The CSV input has no header row.
    #[error("no header row: the file is empty")]
    Empty,
    /// A CSV header column is not a known field.
    #[error(
        "line {line}: unknown column {column:?}; known columns are iccid, imsi, ki, opc, op, pin1, puk1, pin2, puk2, adm1, spn, mnc_len"
    )]
    UnknownColumn {
        /// The column name as written.
        column: String,
        /// The header's line.
        line: u64,
    },
    /// A CSV header names a column twice.
    #[error("line {line}: column {column:?} appears twice")]
    DuplicateColumn {
        /// The column.
        column: String,
        /// The header's line.
        line: u64,
    },
    /// A required column is missing from the CSV header.
    #[error("missing required column {0}")]
    MissingColumn(&'static str),
    /// The CSV header row itself is malformed.
    #[error("line {line}: malformed header: {message}")]
    Header {
        /// The header's line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A record is longer than the configured limit (memory stays bounded).
    #[error("line {line}: record longer than {limit} bytes")]
    RecordTooLong {
        /// The line where the record starts.
        line: u64,
        /// The limit.
        limit: usize,
    },
}

/// One rejected row: where, which field, why. The message never contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line where the row starts (the CSV header is line 1).
    pub line: u64,
    /// The field at fault (`iccid`, `ki`, ...), when one is.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl RowError {
    pub(crate) fn new(line: u64, field: Option<&str>, message: impl Into<String>) -> Self {
        RowError {
            line,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "line {}: {field}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

impl std::error::Error for RowError {}
