#![no_main]
//! Inventory files in JSON lines (`smdpp profiles import`): the streaming reader and per-row validation never panic, whatever the bytes; an accepted row personalizes.

use libfuzzer_sys::fuzz_target;
use smdpp_inventory::{Format, Options, Report, RowReader};

fuzz_target!(|data: &[u8]| {
    // The default options, and a configured home PLMN with a small record bound.
    for opts in [
        Options::default(),
        Options {
            default_mnc_len: 3,
            home_plmn: Some("00101".to_owned()),
            max_record_bytes: 512,
        },
    ] {
        let Ok(mut rows) = RowReader::new(Format::JsonLines, data, opts) else {
            continue;
        };
        let mut report = Report::new(16);
        let mut last_line = 0;
        while let Ok(Some(row)) = rows.next_row() {
            if let Ok(r) = &row {
                assert!(r.line > last_line, "line numbers increase");
                last_line = r.line;
                // What the import does with an accepted row.
                let _ = r.personalization();
            }
            let _ = report.record(row);
        }
        assert!(rows.bytes_read() <= data.len() as u64);
    }
});
