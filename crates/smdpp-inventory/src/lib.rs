//! The pure part of `smdpp profiles import --type TYPE FILE`: a streaming, validating
//! reader of subscriber inventory files, without any database.
//!
//! # Input formats
//!
//! - **CSV** ([`Format::Csv`], RFC 4180): a header row is required; fields may be quoted
//!   (`"a,b"`, `""` for a quote, line breaks inside quotes), records end in LF or CRLF,
//!   empty lines are skipped and a UTF-8 byte order mark is ignored. Header names are
//!   matched case-insensitively after trimming spaces.
//! - **JSON lines** ([`Format::JsonLines`]): one JSON object per line with the same field
//!   names; blank lines are skipped. Values are JSON strings (`mnc_len` may also be a
//!   number); `null` or `""` means absent.
//!
//! # Fields
//!
//! | name | required | rule |
//! |---|---|---|
//! | `iccid` | yes | 19 or 20 digits, prefix 89, Luhn check digit last |
//! | `imsi` | yes | 6..15 digits; MCC + MNC must match `home_plmn` when one is configured |
//! | `ki` | yes | 32 hex digits |
//! | `opc` or `op` | one of them | 32 hex digits (OPc, or OP to derive it from) |
//! | `pin1`, `pin2` | yes | 4..8 digits |
//! | `puk1`, `puk2` | yes | exactly 8 digits |
//! | `adm1` | yes | 8 digits or 16 hex digits |
//! | `spn` | no | at most 16 characters of the GSM default alphabet subset |
//! | `mnc_len` | no | 2 or 3 (default [`Options::default_mnc_len`]) |
//!
//! The rules and the messages are those of `saip` personalization
//! ([`saip::Template::personalize`]), so a row accepted here personalizes. A CSV header with
//! an unknown or a missing column, or a record longer than [`Options::max_record_bytes`],
//! stops the import ([`ImportError`]); anything wrong in a row rejects that row only
//! ([`RowError`] with its line number and field). Each row is checked against the rows
//! before it for a duplicate ICCID or IMSI with exact 8-byte keys (no false positives,
//! about 40 MB for a million rows).
//!
//! # Secrets
//!
//! Ki, OPc/OP, PINs, PUKs and ADM1 are held as [`saip::SecretText`] (zeroized on drop,
//! redacted in `Debug`); input buffers are zeroized on drop; no error message contains a
//! secret value.
//!
//! # Use
//!
//! ```
//! use smdpp_inventory::{Format, Options, Report, RowReader};
//!
//! let csv = "iccid,imsi,ki,opc,pin1,puk1,pin2,puk2,adm1\n\
//!            8949000000000000018,001010000000001,000102030405060708090a0b0c0d0e0f,\
//!            00112233445566778899aabbccddeeff,1234,12345678,5678,87654321,12345678\n";
//! let mut rows = RowReader::new(Format::Csv, csv.as_bytes(), Options::default()).unwrap();
//! let mut report = Report::new(100);
//! while let Some(row) = rows.next_row().unwrap() {
//!     if let Some(row) = report.record(row) {
//!         assert_eq!(row.iccid, "8949000000000000018");
//!     }
//! }
//! assert_eq!((report.accepted(), report.rejected()), (1, 0));
//! ```

mod csv;
mod dedup;
mod error;
mod jsonl;
mod reader;
mod report;
mod row;

pub use error::{ImportError, RowError};
pub use reader::{Format, Options, RowReader};
pub use report::Report;
pub use row::{Field, Row};
