//! A small RFC 4180 record reader: quoted fields (`""` inside quotes is a quote, line
//! breaks inside quotes belong to the field), LF or CRLF record ends, empty lines skipped.
//! Memory is bounded by the longest record, itself bounded by a limit.

use std::io::BufRead;

use zeroize::Zeroizing;

use crate::ImportError;

/// Reads physical lines with a length limit, counting lines and bytes.
pub(crate) struct Lines<R> {
    inner: R,
    /// Lines read so far.
    pub(crate) line: u64,
    /// Bytes read so far.
    pub(crate) bytes: u64,
    /// Whether the next line is the first one (BOM check).
    first: bool,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(inner: R) -> Self {
        Lines {
            inner,
            line: 0,
            bytes: 0,
            first: true,
        }
    }

    /// Appends the next line (terminator included) to `buf`, reading at most `remaining`
    /// bytes of it; `Ok(false)` at end of input. A UTF-8 BOM opening the input is dropped.
    /// A longer line is [`ImportError::RecordTooLong`] for the record starting on
    /// `record_line` under the record limit `limit`.
    pub(crate) fn read_line(
        &mut self,
        buf: &mut Vec<u8>,
        remaining: usize,
        record_line: u64,
        limit: usize,
    ) -> Result<bool, ImportError> {
        let start = buf.len();
        let max = u64::try_from(remaining.saturating_add(1)).unwrap_or(u64::MAX);
        let n = std::io::Read::take(&mut self.inner, max)
            .read_until(b'\n', buf)
            .map_err(|source| ImportError::Io {
                line: self.line,
                source,
            })?;
        if n == 0 {
            return Ok(false);
        }
        self.bytes += u64::try_from(n).unwrap_or(u64::MAX);
        if n > remaining {
            return Err(ImportError::RecordTooLong {
                line: record_line,
                limit,
            });
        }
        self.line += 1;
        if self.first {
            self.first = false;
            if buf[start..].starts_with(b"\xEF\xBB\xBF") {
                buf.drain(start..start + 3);
            }
        }
        Ok(true)
    }
}

/// A record being parsed: all fields' bytes in one buffer, and where each ends.
#[derive(Default)]
pub(crate) struct Record {
    pub(crate) data: Zeroizing<Vec<u8>>,
    pub(crate) ends: Vec<usize>,
    /// Line where the record starts.
    pub(crate) line: u64,
}

impl Record {
    /// The bytes of field `i`.
    pub(crate) fn field(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { *self.ends.get(i - 1)? };
        self.data.get(start..end)
    }

    /// Number of fields.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }
}

/// What went wrong inside one record (the row is rejected, reading continues).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// A `"` inside an unquoted field.
    QuoteInUnquoted { field: usize },
    /// Something other than `,` or the line end after a closing quote.
    AfterClosingQuote { field: usize },
    /// End of input inside a quoted field.
    Unterminated { field: usize },
}

impl Malformed {
    pub(crate) fn message(&self) -> String {
        match self {
            Malformed::QuoteInUnquoted { field } => {
                format!(
                    "field {field}: a quote inside an unquoted field (quote the whole field and double the quote)"
                )
            }
            Malformed::AfterClosingQuote { field } => {
                format!("field {field}: unexpected character after a closing quote")
            }
            Malformed::Unterminated { field } => {
                format!("field {field}: quoted field not closed before the end of the file")
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Unquoted,
    Quoted,
    QuoteSeen,
}

/// Reads CSV records.
pub(crate) struct CsvRecords<R> {
    pub(crate) lines: Lines<R>,
    line_buf: Zeroizing<Vec<u8>>,
    limit: usize,
}

impl<R: BufRead> CsvRecords<R> {
    pub(crate) fn new(inner: R, limit: usize) -> Self {
        CsvRecords {
            lines: Lines::new(inner),
            line_buf: Zeroizing::new(Vec::new()),
            limit,
        }
    }

    /// Reads the next non-empty record into `rec`: `Ok(None)` at end of input,
    /// `Ok(Some(Err(_)))` for a malformed record (its lines are consumed).
    pub(crate) fn next(
        &mut self,
        rec: &mut Record,
    ) -> Result<Option<Result<(), Malformed>>, ImportError> {
        rec.data.clear();
        rec.ends.clear();
        let mut state = State::Start;
        let mut total = 0usize;
        let mut first_line = true;
        loop {
            self.line_buf.clear();
            let line_no = if first_line {
                self.lines.line + 1
            } else {
                rec.line
            };
            let remaining = self.limit.saturating_sub(total);
            if !self
                .lines
                .read_line(&mut self.line_buf, remaining, line_no, self.limit)?
            {
                if first_line {
                    return Ok(None);
                }
                // End of input inside a quoted field (the only way to get here).
                return Ok(Some(Err(Malformed::Unterminated {
                    field: rec.ends.len() + 1,
                })));
            }
            total += self.line_buf.len();
            let line: &[u8] = &self.line_buf;
            let (content, term) = split_terminator(line);
            if first_line {
                rec.line = self.lines.line;
                if content.is_empty() {
                    continue; // empty line between records
                }
                first_line = false;
            }
            for &b in content {
                match state {
                    State::Start => match b {
                        b'"' => state = State::Quoted,
                        b',' => rec.ends.push(rec.data.len()),
                        _ => {
                            rec.data.push(b);
                            state = State::Unquoted;
                        }
                    },
                    State::Unquoted => match b {
                        b',' => {
                            rec.ends.push(rec.data.len());
                            state = State::Start;
                        }
                        b'"' => {
                            return Ok(Some(Err(Malformed::QuoteInUnquoted {
                                field: rec.ends.len() + 1,
                            })));
                        }
                        _ => rec.data.push(b),
                    },
                    State::Quoted => match b {
                        b'"' => state = State::QuoteSeen,
                        _ => rec.data.push(b),
                    },
                    State::QuoteSeen => match b {
                        b'"' => {
                            rec.data.push(b'"');
                            state = State::Quoted;
                        }
                        b',' => {
                            rec.ends.push(rec.data.len());
                            state = State::Start;
                        }
                        _ => {
                            return Ok(Some(Err(Malformed::AfterClosingQuote {
                                field: rec.ends.len() + 1,
                            })));
                        }
                    },
                }
            }
            if state == State::Quoted {
                if term.is_empty() {
                    return Ok(Some(Err(Malformed::Unterminated {
                        field: rec.ends.len() + 1,
                    })));
                }
                // The line break belongs to the quoted field; the record goes on.
                rec.data.extend_from_slice(term);
                continue;
            }
            rec.ends.push(rec.data.len());
            return Ok(Some(Ok(())));
        }
    }
}

/// Splits a line into its content and its terminator (`\n`, `\r\n` or nothing).
fn split_terminator(line: &[u8]) -> (&[u8], &[u8]) {
    let n = if line.ends_with(b"\r\n") {
        2
    } else if line.ends_with(b"\n") {
        1
    } else {
        0
    };
    line.split_at(line.len() - n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn records(input: &str) -> Vec<Result<Vec<String>, Malformed>> {
        let mut r = CsvRecords::new(input.as_bytes(), 1 << 16);
        let mut rec = Record::default();
        let mut out = Vec::new();
        while let Some(res) = r.next(&mut rec).unwrap() {
            out.push(res.map(|()| {
                (0..rec.len())
                    .map(|i| String::from_utf8(rec.field(i).unwrap().to_vec()).unwrap())
                    .collect()
            }));
        }
        out
    }

    #[test]
    fn rfc4180_cases() {
        let s = |v: &[&str]| Ok(v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(records("a,b\r\nc,d"), vec![s(&["a", "b"]), s(&["c", "d"])]);
        assert_eq!(
            records("\"a,1\",\"x\"\"y\",\n\n\"multi\r\nline\",z\n"),
            vec![s(&["a,1", "x\"y", ""]), s(&["multi\r\nline", "z"])]
        );
        assert_eq!(records(",\n\"\"\n"), vec![s(&["", ""]), s(&[""])]);
        assert_eq!(
            records("a\"b,c\n"),
            vec![Err(Malformed::QuoteInUnquoted { field: 1 })]
        );
        assert_eq!(
            records("\"a\"b,c\nok\n"),
            vec![Err(Malformed::AfterClosingQuote { field: 1 }), s(&["ok"])]
        );
        assert_eq!(
            records("x,\"open\nstill"),
            vec![Err(Malformed::Unterminated { field: 2 })]
        );
        assert_eq!(records("\u{feff}h\n"), vec![s(&["h"])]);
    }

    #[test]
    fn rejects_overlong_record() {
        let mut r = CsvRecords::new("aaaaaaaaaa\n".as_bytes(), 5);
        let mut rec = Record::default();
        assert!(matches!(
            r.next(&mut rec),
            Err(ImportError::RecordTooLong { line: 1, limit: 5 })
        ));
        // A quoted record over several lines counts all of them.
        let mut r = CsvRecords::new("\"ab\nab\nab\n".as_bytes(), 8);
        assert!(matches!(
            r.next(&mut rec),
            Err(ImportError::RecordTooLong { line: 1, limit: 8 })
        ));
    }
}
