//! [`Report`]: counts of accepted and rejected rows, and the first rejected rows.

use crate::{Row, RowError};

/// What an import did: accepted and rejected counts, and the first `max_errors` rejected
/// rows with their line numbers (memory stays bounded however many rows are bad).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    accepted: u64,
    rejected: u64,
    errors: Vec<RowError>,
    max_errors: usize,
}

impl Report {
    /// An empty report keeping at most `max_errors` rejected rows.
    pub fn new(max_errors: usize) -> Self {
        Report {
            accepted: 0,
            rejected: 0,
            errors: Vec::new(),
            max_errors,
        }
    }

    /// Counts one row; returns it when it was accepted.
    pub fn record(&mut self, row: Result<Row, RowError>) -> Option<Row> {
        match row {
            Ok(row) => {
                self.accepted += 1;
                Some(row)
            }
            Err(e) => {
                self.reject(e);
                None
            }
        }
    }

    /// Counts an accepted row.
    pub fn accept(&mut self) {
        self.accepted += 1;
    }

    /// Counts a rejected row, keeping it if fewer than `max_errors` are kept (also for
    /// rows the caller rejects later, e.g. an ICCID already in the database).
    pub fn reject(&mut self, e: RowError) {
        self.rejected += 1;
        if self.errors.len() < self.max_errors {
            self.errors.push(e);
        }
    }

    /// Rows accepted.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Rows rejected.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// The first rejected rows, in file order.
    pub fn errors(&self) -> &[RowError] {
        &self.errors
    }

    /// Whether more rows were rejected than [`Report::errors`] holds.
    pub fn truncated(&self) -> bool {
        self.rejected > self.errors.len() as u64
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} rows accepted, {} rejected",
            self.accepted, self.rejected
        )?;
        for e in &self.errors {
            writeln!(f, "  {e}")?;
        }
        if self.truncated() {
            writeln!(
                f,
                "  ... and {} more rejected rows",
                self.rejected - self.errors.len() as u64
            )?;
        }
        Ok(())
    }
}
