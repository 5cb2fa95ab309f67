//! Generates a 1,000,000-row inventory CSV in a temporary file, parses it with
//! [`RowReader`], and prints the elapsed times and the peak resident set size (VmHWM).
//!
//! `cargo run --release -p smdpp-inventory --example parse_1m [ROWS]`

use std::io::{BufReader, BufWriter, Seek, Write};
use std::time::Instant;

use smdpp_inventory::{Options, Report, RowReader};

/// `VmHWM` (peak RSS) of this process from /proc, in kB, when available.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn luhn(digits: &str) -> u32 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 1_000_000,
    };
    let mut file = tempfile::tempfile()?;

    let t = Instant::now();
    {
        let mut w = BufWriter::with_capacity(1 << 16, &mut file);
        writeln!(w, "iccid,imsi,ki,opc,pin1,puk1,pin2,puk2,adm1,spn")?;
        for i in 0..rows {
            let body = format!("894900{i:012}");
            writeln!(
                w,
                "{body}{},00101{i:010},{:032x},{:032X},1234,{:08},5678,87654321,{:016x},Operator {}",
                luhn(&body),
                u128::from(i) * 0x9E37_79B9_7F4A_7C15,
                u128::from(i) ^ 0x0011_2233_4455_6677_8899_AABB_CCDD_EEFF,
                i % 100_000_000,
                i,
                i % 1000
            )?;
        }
        w.flush()?;
    }
    let size = file.metadata()?.len();
    let generated = t.elapsed();
    let rss_after_generation = peak_rss_kb();
    file.rewind()?;

    let t = Instant::now();
    let mut reader = RowReader::csv(BufReader::with_capacity(1 << 16, file), Options::default())?;
    let mut report = Report::new(100);
    while let Some(row) = reader.next_row()? {
        report.record(row);
    }
    let parsed = t.elapsed();

    println!(
        "generated {rows} rows ({:.1} MB) in {:.2} s",
        size as f64 / 1e6,
        generated.as_secs_f64()
    );
    println!(
        "parsed in {:.2} s ({:.0} rows/s): {} accepted, {} rejected",
        parsed.as_secs_f64(),
        rows as f64 / parsed.as_secs_f64(),
        report.accepted(),
        report.rejected()
    );
    match (rss_after_generation, peak_rss_kb()) {
        (Some(a), Some(b)) => println!(
            "peak RSS (VmHWM): {:.1} MB after generating, {:.1} MB after parsing",
            a as f64 / 1024.0,
            b as f64 / 1024.0
        ),
        _ => println!("peak RSS: /proc/self/status not available"),
    }
    if report.rejected() > 0 {
        print!("{report}");
    }
    Ok(())
}
