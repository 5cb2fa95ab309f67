//! Shared helpers for the rsp-pki integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use rsp_crypto::Curve;
use rsp_pki::{EumRangeForm, PkiOptions, TestPki, generate};

/// Path of a file under `/work/shared/certs/sgp26` (read-only reference material).
pub fn sgp26(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/certs/sgp26")
        .join(rel)
}

pub fn read_sgp26(rel: &str) -> Vec<u8> {
    std::fs::read(sgp26(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

pub fn pki(curve: Curve) -> TestPki {
    generate(PkiOptions::new(curve)).unwrap()
}

pub fn pki_with_form(curve: Curve, form: EumRangeForm) -> TestPki {
    let mut o = PkiOptions::new(curve);
    o.eum_range_form = form;
    generate(o).unwrap()
}

/// A fresh empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("rsp-pki-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Replaces the first occurrence of `from` in `der` by `to` (same length).
pub fn patch(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let pos = der
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern not found");
    let mut out = der.to_vec();
    out[pos..pos + to.len()].copy_from_slice(to);
    out
}

/// Midnight UTC on the given date.
pub fn utc(y: i32, m: u8, d: u8) -> time::OffsetDateTime {
    time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d)
        .unwrap()
        .midnight()
        .assume_utc()
}
