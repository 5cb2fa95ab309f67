//! [`RowReader`]: the streaming reader over either format, with validation and duplicate
//! detection.

use std::io::BufRead;
use std::path::Path;

use zeroize::Zeroizing;

use crate::csv::{CsvRecords, Lines, Record};
use crate::dedup::{Dup, Seen};
use crate::row::{FIELD_COUNT, Field, Row, Values, validate};
use crate::{ImportError, RowError, jsonl};

/// The input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV with a header row (RFC 4180).
    Csv,
    /// One JSON object per line.
    JsonLines,
}

impl Format {
    /// The format a file name's extension implies: `.csv` is CSV; `.jsonl`, `.ndjson` and
    /// `.json` are JSON lines.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// Reading and validation settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// MNC length of rows without `mnc_len` (default 2).
    pub default_mnc_len: u8,
    /// When set, every IMSI must start with this MCC + MNC (the profile type's home PLMN).
    pub home_plmn: Option<String>,
    /// Longest record accepted, in bytes (default 64 KiB); a longer one stops the import.
    pub max_record_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            default_mnc_len: 2,
            home_plmn: None,
            max_record_bytes: 64 * 1024,
        }
    }
}

enum Source<R> {
    Csv {
        records: CsvRecords<R>,
        /// Field of each CSV column, in column order.
        columns: Vec<Field>,
        record: Record,
    },
    Json {
        lines: Lines<R>,
        buf: Zeroizing<Vec<u8>>,
    },
}

/// Streams validated rows out of an inventory file.
///
/// [`RowReader::next_row`] returns `Ok(Some(Ok(row)))` for a valid row,
/// `Ok(Some(Err(row_error)))` for a rejected one (reading goes on), `Ok(None)` at the end
/// and `Err(_)` when the import must stop (I/O error, overlong record). As an
/// [`Iterator`] it yields the same, stopping after the first fatal error.
///
/// Memory is bounded: one record at a time, plus 8 bytes per accepted ICCID and IMSI for
/// duplicate detection.
pub struct RowReader<R> {
    source: Source<R>,
    opts: Options,
    seen: Seen,
    failed: bool,
}

impl<R: BufRead> RowReader<R> {
    /// A reader of `format`. For CSV, reads and checks the header row here.
    pub fn new(format: Format, input: R, opts: Options) -> Result<Self, ImportError> {
        let source = match format {
            Format::Csv => {
                let mut records = CsvRecords::new(input, opts.max_record_bytes);
                let mut record = Record::default();
                let columns = read_header(&mut records, &mut record)?;
                Source::Csv {
                    records,
                    columns,
                    record,
                }
            }
            Format::JsonLines => Source::Json {
                lines: Lines::new(input),
                buf: Zeroizing::new(Vec::new()),
            },
        };
        Ok(RowReader {
            source,
            opts,
            seen: Seen::default(),
            failed: false,
        })
    }

    /// A CSV reader ([`RowReader::new`] with [`Format::Csv`]).
    pub fn csv(input: R, opts: Options) -> Result<Self, ImportError> {
        Self::new(Format::Csv, input, opts)
    }

    /// A JSON lines reader ([`RowReader::new`] with [`Format::JsonLines`]).
    pub fn json_lines(input: R, opts: Options) -> Result<Self, ImportError> {
        Self::new(Format::JsonLines, input, opts)
    }

    /// Bytes consumed so far (for a progress bar against the file size).
    pub fn bytes_read(&self) -> u64 {
        match &self.source {
            Source::Csv { records, .. } => records.lines.bytes,
            Source::Json { lines, .. } => lines.bytes,
        }
    }

    /// Lines consumed so far.
    pub fn lines_read(&self) -> u64 {
        match &self.source {
            Source::Csv { records, .. } => records.lines.line,
            Source::Json { lines, .. } => lines.line,
        }
    }

    /// The CSV columns in file order (empty for JSON lines).
    pub fn columns(&self) -> &[Field] {
        match &self.source {
            Source::Csv { columns, .. } => columns,
            Source::Json { .. } => &[],
        }
    }

    /// The next row; see the type's documentation.
    pub fn next_row(&mut self) -> Result<Option<Result<Row, RowError>>, ImportError> {
        let res = match &mut self.source {
            Source::Csv {
                records,
                columns,
                record,
            } => next_csv(records, columns, record, &self.opts),
            Source::Json { lines, buf } => next_json(lines, buf, &self.opts),
        }?;
        Ok(res.map(|r| {
            r.and_then(|row| match self.seen.insert(&row.iccid, &row.imsi) {
                Ok(()) => Ok(row),
                Err(Dup::Iccid) => Err(RowError::new(
                    row.line,
                    Some(Field::Iccid.name()),
                    format!(
                        "duplicate ICCID {}: already on an earlier row of this file",
                        row.iccid
                    ),
                )),
                Err(Dup::Imsi) => Err(RowError::new(
                    row.line,
                    Some(Field::Imsi.name()),
                    format!(
                        "duplicate IMSI {}: already on an earlier row of this file",
                        row.imsi
                    ),
                )),
            })
        }))
    }
}

impl<R: BufRead> Iterator for RowReader<R> {
    type Item = Result<Result<Row, RowError>, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_row() {
            Ok(r) => r.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

fn read_header<R: BufRead>(
    records: &mut CsvRecords<R>,
    record: &mut Record,
) -> Result<Vec<Field>, ImportError> {
    let line = records.lines.line + 1;
    match records.next(record)? {
        None => return Err(ImportError::Empty),
        Some(Err(m)) => {
            return Err(ImportError::Header {
                line: record.line.max(line),
                message: m.message(),
            });
        }
        Some(Ok(())) => {}
    }
    let line = record.line;
    let mut columns = Vec::with_capacity(record.len());
    for i in 0..record.len() {
        let raw = record.field(i).unwrap_or_default();
        let name = String::from_utf8_lossy(raw).trim().to_ascii_lowercase();
        let field = Field::from_name(&name).ok_or_else(|| ImportError::UnknownColumn {
            column: String::from_utf8_lossy(raw).into_owned(),
            line,
        })?;
        if columns.contains(&field) {
            return Err(ImportError::DuplicateColumn { column: name, line });
        }
        columns.push(field);
    }
    for f in Field::REQUIRED {
        if !columns.contains(&f) {
            return Err(ImportError::MissingColumn(f.name()));
        }
    }
    if !columns.contains(&Field::Opc) && !columns.contains(&Field::Op) {
        return Err(ImportError::MissingColumn("opc (or op)"));
    }
    Ok(columns)
}

fn next_csv<R: BufRead>(
    records: &mut CsvRecords<R>,
    columns: &[Field],
    record: &mut Record,
    opts: &Options,
) -> Result<Option<Result<Row, RowError>>, ImportError> {
    let malformed = match records.next(record)? {
        None => return Ok(None),
        Some(Err(m)) => Some(m),
        Some(Ok(())) => None,
    };
    let line = record.line;
    if let Some(m) = malformed {
        return Ok(Some(Err(RowError::new(line, None, m.message()))));
    }
    if record.len() != columns.len() {
        return Ok(Some(Err(RowError::new(
            line,
            None,
            format!(
                "{} fields, but the header has {} columns",
                record.len(),
                columns.len()
            ),
        ))));
    }
    let mut values: Values<'_> = [None; FIELD_COUNT];
    for (i, field) in columns.iter().enumerate() {
        let raw = record.field(i).unwrap_or_default();
        let Ok(s) = std::str::from_utf8(raw) else {
            return Ok(Some(Err(RowError::new(
                line,
                Some(field.name()),
                "not valid UTF-8",
            ))));
        };
        if !s.is_empty() {
            values[field.index()] = Some(s);
        }
    }
    Ok(Some(validate(line, &values, opts)))
}

fn next_json<R: BufRead>(
    lines: &mut Lines<R>,
    buf: &mut Zeroizing<Vec<u8>>,
    opts: &Options,
) -> Result<Option<Result<Row, RowError>>, ImportError> {
    loop {
        buf.clear();
        let line_no = lines.line + 1;
        if !lines.read_line(buf, opts.max_record_bytes, line_no, opts.max_record_bytes)? {
            return Ok(None);
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let row = match jsonl::parse_line(buf) {
            Ok(row) => row,
            Err(message) => return Ok(Some(Err(RowError::new(line_no, None, message)))),
        };
        if let Some((field, message)) = row.problem {
            return Ok(Some(Err(RowError::new(line_no, Some(&field), message))));
        }
        let mut values: Values<'_> = [None; FIELD_COUNT];
        for (slot, v) in values.iter_mut().zip(row.values.iter()) {
            *slot = v.as_deref().map(String::as_str).filter(|s| !s.is_empty());
        }
        return Ok(Some(validate(line_no, &values, opts)));
    }
}
