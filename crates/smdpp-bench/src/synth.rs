//! Synthetic subscriber inventories for import benchmarks: `smdpp bench gen-inventory`.
//!
//! Row `i` has ICCID `89 999 03 iiiiiiiiiiii L` (test issuer range, Luhn digit `L`), IMSI
//! `00101 iiiiiiiiii` (test PLMN 001/01), and Ki / OPc / PINs / PUKs / ADM1 derived from `i`
//! and a per-file seed, so every row is distinct and two files with different seeds share
//! no secret. The values are test data, not secrets.

use std::io::Write;

use anyhow::Result;

/// Writes a CSV inventory of `rows` rows (header included) to `w`; `start` is the index of
/// the first row (to make files that do not overlap).
pub fn write_inventory_csv(w: &mut impl Write, rows: u64, start: u64, seed: u64) -> Result<()> {
    writeln!(w, "iccid,imsi,ki,opc,pin1,puk1,pin2,puk2,adm1,spn")?;
    for i in start..start.saturating_add(rows) {
        let body = format!("8999903{i:012}");
        let x = u128::from(i ^ seed);
        writeln!(
            w,
            "{body}{},00101{i:010},{:032X},{:032X},{:04},{:08},{:04},{:08},{:08},Bench",
            saip::personalize::luhn_digit(&body).unwrap_or(0),
            x.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
            x.wrapping_mul(0xC2B2_AE3D_27D4_EB4F_1656_67B1_9E37_79F9) ^ 0xA5A5,
            i % 10_000,
            i % 100_000_000,
            (i + 7) % 10_000,
            (i + 13) % 100_000_000,
            (i + 29) % 100_000_000,
        )?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_rows_are_accepted_by_the_importer() {
        let mut buf = Vec::new();
        write_inventory_csv(&mut buf, 50, 1000, 42).unwrap();
        let mut r =
            smdpp_inventory::RowReader::csv(buf.as_slice(), smdpp_inventory::Options::default())
                .unwrap();
        let mut report = smdpp_inventory::Report::new(10);
        while let Some(row) = r.next_row().unwrap() {
            report.record(row);
        }
        assert_eq!(
            (report.accepted(), report.rejected()),
            (50, 0),
            "{:?}",
            report.errors()
        );
    }
}
