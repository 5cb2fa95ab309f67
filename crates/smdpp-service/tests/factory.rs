//! The profile factory end to end, on SQLite and (when `SMDPP_TEST_PG_URL` is set)
//! PostgreSQL: streaming import of subscriber inventory files (good rows, all or nothing,
//! re-runs, bad headers), UPPs generated from a profile type's template and downloaded by
//! the virtual eUICC over real HTTPS, decoded by Python asn1tools, secrets at rest (nothing
//! secret in the raw SQLite files), DEK rotation and KEK re-wrap while a server runs, and
//! the key file checks. Every negative test is named `rejects_*` or says what is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
// The asn1tools interop of crates/saip's tests (its scripts live there).
#[path = "../../saip/tests/asn1tools/mod.rs"]
mod asn1tools;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use euicc_sim::lpa::{DownloadOptions, DownloadOutcome, Lpa};
use rsp_crypto::Curve;
use rsp_pki::TestPki;
use saip::{OperatorKey, SecretText, TemplateSource, Upp, bcd};
use smdpp_inventory::{Format, Options, RowError};
use smdpp_service::assembly::open_factory;
use smdpp_service::factory::{Factory, FactoryError, SubscriberSecrets};
use smdpp_service::inventory::{
    ImportOptions, ImportSummary, NotifyOn, Ppr, build_profile_type, import_file,
};
use smdpp_store::{
    EventRecord, Expect, NewProfile, Patch, ProfileFilter, ProfileMetadata, ProfileState,
    ProfileUpdate, Store, StoreError,
};
use smdpp_vault::{FileKek, HEADER_LEN, Kek, NONCE_LEN, SealedBlob, VaultError};

// ------------------------------------------------------------------ inventory rows

const HEADER: &str = "iccid,imsi,ki,opc,pin1,puk1,pin2,puk2,adm1,spn";
const TYPE: &str = "factory-test";
const TYPE_SPN: &str = "Factory SP";
const TYPE_NAME: &str = "Factory test profile";

/// One subscriber of an inventory file.
#[derive(Clone, Debug)]
struct Sub {
    iccid: String,
    imsi: String,
    ki: String,
    opc: String,
    pin1: String,
    puk1: String,
    pin2: String,
    puk2: String,
    adm1: String,
    spn: String,
}

/// ICCID number `n`: `89 49 0` + 13 digits + the Luhn digit (19 digits).
fn iccid(n: u64) -> String {
    saip::personalize::iccid_with_luhn(&format!("89490{n:013}")).unwrap()
}

/// IMSI number `n` on the test network 001/01.
fn imsi(n: u64) -> String {
    format!("00101{n:010}")
}

impl Sub {
    /// Subscriber `n`, with values distinct per subscriber.
    fn new(n: u64) -> Sub {
        Sub {
            iccid: iccid(n),
            imsi: imsi(n),
            ki: format!("4B49{n:028X}"),
            opc: format!("4F50{n:028x}"),
            pin1: format!("{:04}", 1000 + n),
            puk1: format!("{:08}", 11_000_000 + n),
            pin2: format!("{:08}", 22_000_000 + n),
            puk2: format!("{:08}", 33_000_000 + n),
            adm1: format!("{:08}", 44_000_000 + n),
            spn: "Factory".into(),
        }
    }

    fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            self.iccid,
            self.imsi,
            self.ki,
            self.opc,
            self.pin1,
            self.puk1,
            self.pin2,
            self.puk2,
            self.adm1,
            self.spn
        )
    }

    /// What the factory must have sealed for this row.
    fn secrets(&self) -> SubscriberSecrets {
        SubscriberSecrets {
            mnc_len: 2,
            ki: SecretText::from(self.ki.as_str()),
            operator_key: OperatorKey::Opc(SecretText::from(self.opc.as_str())),
            pin1: SecretText::from(self.pin1.as_str()),
            puk1: SecretText::from(self.puk1.as_str()),
            pin2: SecretText::from(self.pin2.as_str()),
            puk2: SecretText::from(self.puk2.as_str()),
            adm1: SecretText::from(self.adm1.as_str()),
            spn: Some(self.spn.clone()),
        }
    }
}

fn csv_of(rows: &[&str]) -> String {
    let mut s = format!("{HEADER}\n");
    for r in rows {
        s.push_str(r);
    }
    s
}

/// The file of `subs`, one row each.
fn csv_of_subs<'a>(subs: impl IntoIterator<Item = &'a Sub>) -> String {
    let rows: Vec<String> = subs.into_iter().map(Sub::csv).collect();
    csv_of(&rows.iter().map(String::as_str).collect::<Vec<_>>())
}

fn row_err(line: u64, field: &str, message: &str) -> RowError {
    RowError {
        line,
        field: Some(field.to_owned()),
        message: message.to_owned(),
    }
}

/// An import's summary: rows read, imported, already present, rejected, rolled back, and
/// the rejected rows' errors.
fn summary(
    rows: u64,
    imported: u64,
    already_present: u64,
    rejected: u64,
    rolled_back: u64,
    errors: Vec<RowError>,
) -> ImportSummary {
    ImportSummary {
        rows,
        imported,
        already_present,
        rejected,
        rolled_back,
        errors,
    }
}

// ------------------------------------------------------------------ store + factory

/// The store of `db` and a factory over it with the key file `<dir>/vault.kek`, like a
/// CLI process opens them.
async fn open(dir: &Path, db: &Db) -> (Store, Arc<Factory>) {
    let store = Store::connect(&db.url).await.unwrap();
    let factory = open_factory(&store, &dir.join("vault.kek")).await.unwrap();
    (store, factory)
}

/// Creates profile type `name` from the built-in USIM+ISIM Milenage template with the
/// limits `cc_attempts` and `download_attempts`.
async fn add_type_with_limits(f: &Factory, name: &str, cc_attempts: i64, download_attempts: i64) {
    let t = build_profile_type(
        name,
        &TemplateSource::usim_isim_milenage(),
        TYPE_SPN,
        TYPE_NAME,
        None,
        None,
        &[NotifyOn::Install, NotifyOn::Delete],
        &[],
        Some(cc_attempts),
        Some(download_attempts),
    )
    .unwrap();
    // Through the factory: the template is stored sealed.
    f.add_profile_type(&t).await.unwrap();
}

/// Creates profile type `name` (limits 5 and 7).
async fn add_type(f: &Factory, name: &str) {
    add_type_with_limits(f, name, 5, 7).await;
}

struct Imported {
    summary: ImportSummary,
    /// Every row `on_reject` saw.
    rejected: Vec<RowError>,
    /// The bytes read of the last progress report.
    last_progress: Option<u64>,
    /// Progress reports (one per batch).
    progress_calls: usize,
}

fn options(profile_type: &str, operator: Option<&str>, all: bool, batch: usize) -> ImportOptions {
    ImportOptions {
        profile_type: profile_type.to_owned(),
        operator: operator.map(str::to_owned),
        all_or_nothing: all,
        reader: Options::default(),
        batch_rows: batch,
    }
}

async fn import_with(
    store: &Store,
    factory: &Arc<Factory>,
    csv: &str,
    opts: &ImportOptions,
) -> anyhow::Result<Imported> {
    let mut rejected = Vec::new();
    let mut last_progress = None;
    let mut progress_calls = 0;
    let summary = import_file(
        store,
        factory,
        Format::Csv,
        std::io::Cursor::new(csv.as_bytes().to_vec()),
        opts,
        |e| {
            rejected.push(e.clone());
            Ok(())
        },
        |bytes, _| {
            last_progress = Some(bytes);
            progress_calls += 1;
        },
    )
    .await?;
    Ok(Imported {
        summary,
        rejected,
        last_progress,
        progress_calls,
    })
}

async fn import(
    store: &Store,
    factory: &Arc<Factory>,
    csv: &str,
    all_or_nothing: bool,
    batch: usize,
) -> Imported {
    import_with(
        store,
        factory,
        csv,
        &options(TYPE, None, all_or_nothing, batch),
    )
    .await
    .unwrap()
}

/// Imports the file of `subs`; every row must be imported.
async fn import_all<'a>(
    store: &Store,
    factory: &Arc<Factory>,
    subs: impl IntoIterator<Item = &'a Sub>,
    all_or_nothing: bool,
    batch: usize,
) {
    let subs: Vec<&Sub> = subs.into_iter().collect();
    let csv = csv_of_subs(subs.iter().copied());
    let out = import(store, factory, &csv, all_or_nothing, batch).await;
    assert_eq!(out.summary.imported, subs.len() as u64, "{:?}", out.summary);
}

/// The ICCIDs of the profiles of `TYPE`, in order, each checked to be Available.
async fn available_of_type(store: &Store) -> Vec<String> {
    let list = store
        .list_profiles(&ProfileFilter {
            profile_type: Some(TYPE.into()),
            limit: Some(1000),
            ..ProfileFilter::default()
        })
        .await
        .unwrap();
    for p in &list {
        assert_eq!(p.state, ProfileState::Available, "{}", p.iccid);
    }
    list.into_iter().map(|p| p.iccid).collect()
}

async fn profile_count(store: &Store) -> usize {
    store
        .list_profiles(&ProfileFilter {
            limit: Some(1000),
            ..ProfileFilter::default()
        })
        .await
        .unwrap()
        .len()
}

/// Each of `subs` is an imported, Available profile of `TYPE` (limits from the type, no
/// operator, no order, no stored package) whose sealed secrets hold exactly its values.
async fn assert_imported(store: &Store, factory: &Factory, subs: &[&Sub]) {
    for s in subs {
        let p = store.get_profile(&s.iccid).await.unwrap().unwrap();
        assert_eq!(p.state, ProfileState::Available);
        assert_eq!(p.profile_type.as_deref(), Some(TYPE));
        assert_eq!(p.operator_id, None);
        assert_eq!(p.matching_id, None);
        assert_eq!(p.upp, None);
        assert_eq!(p.cc_attempt_limit, Some(5));
        assert_eq!(p.download_attempt_limit, Some(7));
        let sealed = store.get_sealed_secrets(&s.iccid).await.unwrap().unwrap();
        assert_eq!(sealed.iccid, s.iccid);
        assert_eq!(sealed.imsi, s.imsi);
        assert_eq!(
            i64::from(SealedBlob::parse(&sealed.sealed).unwrap().dek_id()),
            sealed.dek_id
        );
        assert_eq!(factory.open_secrets(&sealed).await.unwrap(), s.secrets());
    }
}

/// The ids of the DEKs in the database.
async fn dek_ids(store: &Store) -> Vec<i64> {
    let deks = store.vault_deks().await.unwrap();
    deks.iter().map(|d| d.dek_id).collect()
}

/// The DEK that seals the secrets of `s`.
async fn dek_of(store: &Store, s: &Sub) -> i64 {
    store
        .get_sealed_secrets(&s.iccid)
        .await
        .unwrap()
        .unwrap()
        .dek_id
}

/// `factory` opens the sealed secrets of each of `subs` to exactly its values; with
/// `dek`, each is sealed under that DEK (the record's id and the blob's own).
async fn assert_opens<'a>(
    store: &Store,
    factory: &Factory,
    subs: impl IntoIterator<Item = &'a Sub>,
    dek: Option<i64>,
) {
    for s in subs {
        let sealed = store.get_sealed_secrets(&s.iccid).await.unwrap().unwrap();
        if let Some(dek) = dek {
            assert_eq!(sealed.dek_id, dek, "{}", s.iccid);
            assert_eq!(
                i64::from(SealedBlob::parse(&sealed.sealed).unwrap().dek_id()),
                dek,
                "{}",
                s.iccid
            );
        }
        assert_eq!(
            factory.open_secrets(&sealed).await.unwrap(),
            s.secrets(),
            "{}",
            s.iccid
        );
    }
}

// ------------------------------------------------------------------ 1. good rows

async fn import_good_rows_and_report_bad_ones(dir: &Path, db: &Db) {
    let (store, factory) = open(dir, db).await;
    add_type(&factory, TYPE).await;
    let good: Vec<Sub> = [1, 2, 9, 11].into_iter().map(Sub::new).collect();

    // Line 4: the Luhn digit of ICCID 3 is off by one.
    let mut bad_luhn = Sub::new(3);
    let last = bad_luhn.iccid.pop().unwrap().to_digit(10).unwrap() as u8;
    let wrong = (last + 1) % 10;
    bad_luhn.iccid.push(char::from(b'0' + wrong));
    // Line 5: a Ki of 30 hex digits.
    let mut short_ki = Sub::new(4);
    short_ki.ki.truncate(30);
    // Line 6: ICCID of line 2 again (with a new IMSI).
    let mut dup_iccid = Sub::new(5);
    dup_iccid.iccid = good[0].iccid.clone();
    // Line 7: IMSI of line 3 again (with a new ICCID).
    let mut dup_imsi = Sub::new(6);
    dup_imsi.imsi = good[1].imsi.clone();
    // Line 8: PIN1 empty.
    let mut no_pin1 = Sub::new(7);
    no_pin1.pin1 = String::new();
    // Line 10: neither OPc nor OP.
    let mut no_opc = Sub::new(8);
    no_opc.opc = String::new();

    let csv = csv_of(&[
        &good[0].csv(),
        &good[1].csv(),
        &bad_luhn.csv(),
        &short_ki.csv(),
        &dup_iccid.csv(),
        &dup_imsi.csv(),
        &no_pin1.csv(),
        &good[2].csv(),
        &no_opc.csv(),
        &good[3].csv(),
    ]);
    // Batches of 2 rows: several transactions, rejections spread over them.
    let out = import(&store, &factory, &csv, false, 2).await;
    let expected_errors = vec![
        row_err(
            4,
            "iccid",
            &format!(
                "ICCID {}: Luhn check digit should be {last}, got {wrong}",
                bad_luhn.iccid
            ),
        ),
        row_err(
            5,
            "ki",
            "Ki must be exactly 16 bytes (32 hex digits), got 30 hex digits",
        ),
        row_err(
            6,
            "iccid",
            &format!(
                "duplicate ICCID {}: already on an earlier row of this file",
                good[0].iccid
            ),
        ),
        row_err(
            7,
            "imsi",
            &format!(
                "duplicate IMSI {}: already on an earlier row of this file",
                good[1].imsi
            ),
        ),
        row_err(8, "pin1", "required value missing"),
        row_err(10, "opc", "required value missing (opc or op)"),
    ];
    assert_eq!(
        out.summary,
        summary(10, 4, 0, 6, 0, expected_errors.clone())
    );
    assert_eq!(out.rejected, expected_errors, "on_reject saw every row");
    assert_eq!(out.last_progress, Some(csv.len() as u64));

    let mut want: Vec<String> = good.iter().map(|s| s.iccid.clone()).collect();
    want.sort();
    assert_eq!(available_of_type(&store).await, want);
    assert_eq!(profile_count(&store).await, 4);
    assert_eq!(
        store.count_profiles_of_type(TYPE).await.unwrap(),
        vec![(ProfileState::Available, 4)]
    );
    assert_imported(&store, &factory, &good.iter().collect::<Vec<_>>()).await;
    for s in [&bad_luhn, &short_ki, &dup_imsi, &no_pin1, &no_opc] {
        if saip::personalize::check_iccid(&s.iccid).is_ok() {
            assert_eq!(
                store.get_profile(&s.iccid).await.unwrap(),
                None,
                "{}",
                s.iccid
            );
            assert_eq!(store.get_sealed_secrets(&s.iccid).await.unwrap(), None);
        }
    }
    store.close().await;
}

// ------------------------------------------------------------------ 2. all or nothing

async fn all_or_nothing_imports_none_when_a_row_is_bad(dir: &Path, db: &Db) {
    let (store, factory) = open(dir, db).await;
    add_type(&factory, TYPE).await;
    let good: Vec<Sub> = (1..=5).map(Sub::new).collect();
    let mut bad = Sub::new(6);
    bad.puk1 = "1234567".into();
    // The bad row (line 6) comes after two full batches of 2 that were already written
    // inside the transaction.
    let csv = csv_of(&[
        &good[0].csv(),
        &good[1].csv(),
        &good[2].csv(),
        &good[3].csv(),
        &bad.csv(),
        &good[4].csv(),
    ]);
    let out = import(&store, &factory, &csv, true, 2).await;
    let errors = vec![row_err(
        6,
        "puk1",
        "PUK1 must be exactly 8 decimal digits (got 7 characters)",
    )];
    assert_eq!(out.summary, summary(6, 0, 0, 1, 5, errors.clone()));
    assert_eq!(out.rejected, errors);
    assert_eq!(profile_count(&store).await, 0);
    assert_eq!(store.count_profiles_of_type(TYPE).await.unwrap(), vec![]);
    for s in &good {
        assert_eq!(store.get_sealed_secrets(&s.iccid).await.unwrap(), None);
    }

    // A conflict only the database sees (ICCID 1 already imported with another IMSI),
    // found after the rows before it were inserted: everything is rolled back too.
    let first = import(&store, &factory, &csv_of(&[&good[0].csv()]), false, 2).await;
    assert_eq!(first.summary.imported, 1);
    let mut clash = Sub::new(7);
    clash.iccid = good[0].iccid.clone();
    let csv = csv_of(&[&good[1].csv(), &good[2].csv(), &clash.csv()]);
    let out = import(&store, &factory, &csv, true, 2).await;
    assert_eq!(
        out.summary,
        summary(
            3,
            0,
            0,
            1,
            2,
            vec![row_err(
                4,
                "iccid",
                "ICCID already in the inventory with other subscriber data, type or operator"
            )]
        )
    );
    assert_eq!(available_of_type(&store).await, vec![good[0].iccid.clone()]);
    assert_eq!(
        store.get_sealed_secrets(&good[1].iccid).await.unwrap(),
        None
    );
    store.close().await;
}

async fn all_or_nothing_imports_all_when_every_row_is_good(dir: &Path, db: &Db) {
    let (store, factory) = open(dir, db).await;
    add_type(&factory, TYPE).await;
    let good: Vec<Sub> = (1..=5).map(Sub::new).collect();
    let csv = csv_of_subs(&good);
    let out = import(&store, &factory, &csv, true, 2).await;
    assert_eq!(out.summary, summary(5, 5, 0, 0, 0, vec![]));
    assert!(out.rejected.is_empty());
    let mut want: Vec<String> = good.iter().map(|s| s.iccid.clone()).collect();
    want.sort();
    assert_eq!(available_of_type(&store).await, want);
    assert_imported(&store, &factory, &good.iter().collect::<Vec<_>>()).await;
    store.close().await;
}

// ------------------------------------------------------------------ 3. re-runs

async fn rerunning_an_import_is_harmless(dir: &Path, db: &Db) {
    let (store, factory) = open(dir, db).await;
    add_type(&factory, TYPE).await;
    add_type(&factory, "other-type").await;
    let good: Vec<Sub> = (1..=4).map(Sub::new).collect();
    let csv = csv_of_subs(&good);
    let first = import(&store, &factory, &csv, false, 3).await;
    assert_eq!(first.summary.imported, 4);
    let sealed_before = store.get_sealed_secrets(&good[0].iccid).await.unwrap();

    for all in [false, true] {
        let again = import(&store, &factory, &csv, all, 3).await;
        assert_eq!(
            again.summary,
            summary(4, 0, 4, 0, 0, vec![]),
            "all_or_nothing={all}"
        );
        assert_eq!(profile_count(&store).await, 4);
        // Nothing was re-sealed or rewritten.
        assert_eq!(
            store.get_sealed_secrets(&good[0].iccid).await.unwrap(),
            sealed_before
        );
    }

    // The same ICCID with another IMSI; a new ICCID with an IMSI in use; a present
    // ICCID + IMSI of another type; then a good new row.
    let mut other_imsi = Sub::new(5);
    other_imsi.iccid = good[0].iccid.clone();
    let mut reused_imsi = Sub::new(6);
    reused_imsi.imsi = good[1].imsi.clone();
    let fresh = Sub::new(7);
    let csv2 = csv_of(&[&other_imsi.csv(), &reused_imsi.csv(), &fresh.csv()]);
    let out = import(&store, &factory, &csv2, false, 3).await;
    let iccid_msg = "ICCID already in the inventory with other subscriber data, type or operator";
    assert_eq!(
        out.summary,
        summary(
            3,
            1,
            0,
            2,
            0,
            vec![
                row_err(2, "iccid", iccid_msg),
                row_err(3, "imsi", "IMSI already used by another ICCID"),
            ]
        )
    );
    // Same ICCID and IMSI, other type / with an operator: not "already present".
    let csv3 = csv_of(&[&good[2].csv()]);
    let out = import_with(
        &store,
        &factory,
        &csv3,
        &options("other-type", None, false, 10),
    )
    .await
    .unwrap();
    assert_eq!(out.summary.rejected, 1);
    assert_eq!(out.summary.errors, vec![row_err(2, "iccid", iccid_msg)]);
    smdpp_service::operators::add_operator(&store, "op-x", &client_cert("op-x").cert_der, None)
        .await
        .unwrap();
    let out = import_with(
        &store,
        &factory,
        &csv3,
        &options(TYPE, Some("op-x"), false, 10),
    )
    .await
    .unwrap();
    assert_eq!(out.summary.errors, vec![row_err(2, "iccid", iccid_msg)]);

    assert_eq!(profile_count(&store).await, 5);
    // The rows in conflict left the stored ones alone.
    assert_imported(&store, &factory, &[&good[0], &good[1], &good[2], &fresh]).await;
    assert_eq!(store.get_profile(&reused_imsi.iccid).await.unwrap(), None);
    store.close().await;
}

// ------------------------------------------------------------------ 4. refusals

async fn rejects_bad_header(dir: &Path, db: &Db) {
    let (store, factory) = open(dir, db).await;
    add_type(&factory, TYPE).await;
    let row = Sub::new(1).csv();
    let cases = [
        (
            format!("{HEADER},colour\n{}", row.replace('\n', ",red\n")),
            "line 1: unknown column \"colour\"; known columns are iccid, imsi, ki, opc, op, \
             pin1, puk1, pin2, puk2, adm1, spn, mnc_len",
        ),
        (
            "iccid,imsi,ki,opc,pin1,puk1,pin2,adm1,spn\n8949000000000000018,001010000000001,\
             000102030405060708090a0b0c0d0e0f,00112233445566778899aabbccddeeff,1234,\
             12345678,5678,12345678,x\n"
                .to_owned(),
            "missing required column puk2",
        ),
        (
            format!(
                "iccid,imsi,ki,pin1,puk1,pin2,puk2,adm1\n{}",
                "8949000000000000018,001010000000001,000102030405060708090a0b0c0d0e0f,\
                 1234,12345678,5678,87654321,12345678\n"
            ),
            "missing required column opc (or op)",
        ),
        (
            format!("{HEADER},ICCID\n{row}"),
            "line 1: column \"iccid\" appears twice",
        ),
        (String::new(), "no header row: the file is empty"),
    ];
    for all in [false, true] {
        for (csv, message) in &cases {
            let err = import_with(&store, &factory, csv, &options(TYPE, None, all, 10))
                .await
                .err()
                .unwrap_or_else(|| panic!("{message}: accepted"));
            assert_eq!(err.to_string(), *message);
        }
    }
    assert_eq!(profile_count(&store).await, 0);
    assert_eq!(
        store.get_sealed_secrets(&Sub::new(1).iccid).await.unwrap(),
        None
    );
    store.close().await;
}

/// A good one-row file imported with `opts` is refused as a whole with `message`.
async fn assert_import_refused(dir: &Path, db: &Db, opts: &ImportOptions, message: &str) {
    let (store, factory) = open(dir, db).await;
    add_type(&factory, TYPE).await;
    let csv = csv_of(&[&Sub::new(1).csv()]);
    let err = import_with(&store, &factory, &csv, opts)
        .await
        .err()
        .unwrap();
    assert_eq!(err.to_string(), message);
    assert_eq!(profile_count(&store).await, 0);
    store.close().await;
}

async fn rejects_unknown_type(dir: &Path, db: &Db) {
    assert_import_refused(
        dir,
        db,
        &options("nope", None, false, 10),
        "unknown profile type \"nope\" (create it with `smdpp types add`)",
    )
    .await;
}

async fn rejects_unknown_operator(dir: &Path, db: &Db) {
    assert_import_refused(
        dir,
        db,
        &options(TYPE, Some("nope"), true, 10),
        "unknown operator \"nope\" (register it with `smdpp operators add`)",
    )
    .await;
}

/// A file whose rows are all rejected (here: IMSIs of another network than `--home-plmn`)
/// is read batch by batch like any other: every row reported, progress after each batch.
async fn rejects_every_row_of_another_network(dir: &Path, db: &Db) {
    let (store, factory) = open(dir, db).await;
    add_type(&factory, TYPE).await;
    let subs: Vec<Sub> = (1..=6).map(Sub::new).collect();
    let csv = csv_of_subs(&subs);
    let mut opts = options(TYPE, None, false, 2);
    opts.reader.home_plmn = Some("00102".into());
    let out = import_with(&store, &factory, &csv, &opts).await.unwrap();
    let errors: Vec<RowError> = subs
        .iter()
        .zip(2..)
        .map(|(s, line)| {
            row_err(
                line,
                "imsi",
                &format!(
                    "IMSI {}: MCC/MNC 00101 does not match the home PLMN 00102",
                    s.imsi
                ),
            )
        })
        .collect();
    assert_eq!(out.summary, summary(6, 0, 0, 6, 0, errors.clone()));
    assert_eq!(out.rejected, errors);
    // Three batches of two rejected rows, and the end of the file.
    assert_eq!(out.progress_calls, 4);
    assert_eq!(out.last_progress, Some(csv.len() as u64));
    assert_eq!(profile_count(&store).await, 0);
    store.close().await;
}

// ------------------------------------------------------------------ server environment

struct Env {
    pki: TestPki,
    server: Server,
    lpa: Lpa,
}

async fn env(dir: &Path, db: &Db) -> Env {
    let (pki, s) = pki_settings(dir, db, Curve::NistP256);
    let server = Server::start_lpa(s).await;
    add_type(server.factory(), TYPE).await;
    let lpa = sim_lpa(&[&pki]);
    Env { pki, server, lpa }
}

impl Env {
    fn factory(&self) -> Arc<Factory> {
        Arc::clone(self.server.prepared.engine.factory().unwrap())
    }

    fn kek_file(&self) -> PathBuf {
        self.server.settings.kek_file.clone()
    }

    async fn import(&self, subs: &[&Sub]) {
        import_all(
            self.server.store(),
            &self.factory(),
            subs.iter().copied(),
            true,
            100,
        )
        .await;
    }

    /// Releases an imported profile as a download order (as `seed_demo` does); returns
    /// its MatchingID.
    async fn release(&self, iccid: &str) -> String {
        let mid = smdpp_service::upp::generate_matching_id().unwrap();
        self.server
            .store()
            .transition(
                iccid,
                &Expect::states(&[ProfileState::Available]),
                &ProfileUpdate {
                    state: Some(ProfileState::Released),
                    matching_id: Patch::Set(mid.clone()),
                    ..ProfileUpdate::default()
                },
                &EventRecord::by("test").with_cause("factory test order"),
            )
            .await
            .unwrap();
        mid
    }

    async fn download(&self, euicc: &mut euicc_sim::Euicc, mid: &str) -> DownloadOutcome {
        let ac = format!("LPA:1${}${mid}", self.server.address());
        self.lpa
            .download(euicc, &ac, &DownloadOptions::default())
            .await
            .unwrap()
    }
}

fn hex16(s: &str) -> [u8; 16] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// The eUICC installed exactly the personalization of `s` (decoded with `saip`).
fn assert_package_of(package: &[u8], s: &Sub) {
    let upp = Upp::decode(package).unwrap();
    assert_eq!(upp.iccid().unwrap(), s.iccid);
    assert_eq!(upp.ef_iccid().unwrap(), s.iccid);
    assert_eq!(upp.imsi().unwrap(), s.imsi);
    let aka = upp.aka_parameters();
    assert_eq!(aka.len(), 2, "USIM and ISIM");
    for (_, a) in aka {
        let p = a.algo_parameter().unwrap();
        assert_eq!(p.key.expose(), hex16(&s.ki));
        assert_eq!(p.opc.expose(), hex16(&s.opc));
    }
    let code = |v: &str| {
        let mut b = [0xFFu8; 8];
        b[..v.len()].copy_from_slice(v.as_bytes());
        b
    };
    assert_eq!(upp.pin(0x01).unwrap().expose(), code(&s.pin1));
    assert_eq!(upp.pin(0x81).unwrap().expose(), code(&s.pin2));
    assert_eq!(upp.pin(0x0A).unwrap().expose(), code(&s.adm1));
    assert_eq!(upp.puk(0x01).unwrap().expose(), code(&s.puk1));
    assert_eq!(upp.puk(0x81).unwrap().expose(), code(&s.puk2));
}

// ------------------------------------------------------------------ 5. secrets at rest

fn find(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

async fn raw_database_file_reveals_no_secret(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let subs: Vec<Sub> = (0..3u64)
        .map(|i| {
            let mut s = Sub::new(100 + i);
            s.ki = format!("A1B2C3D4E5F60718293A4B5C6D7E8F9{i}");
            s.opc = format!("0F1E2D3C4B5A69788796A5B4C3D2E1F{i}");
            s.pin1 = format!("7391826{i}");
            s.puk1 = format!("5820391{i}");
            s.pin2 = format!("4619283{i}");
            s.puk2 = format!("9182736{i}");
            s.adm1 = format!("3847291{i}");
            s
        })
        .collect();
    e.import(&subs.iter().collect::<Vec<_>>()).await;
    let ts48 = std::fs::read(TS48).unwrap();
    let (ts48_mid, ts48_iccid) = e.server.add(&ts48, None, None).await;
    let mid = e.release(&subs[0].iccid).await;
    let mut euicc = sim_euicc(&e.pki);
    let out = e.download(&mut euicc, &mid).await;
    assert_eq!(out.iccid, subs[0].iccid);
    assert!(out.notification_sent);
    assert_package_of(&euicc.state().profiles[0].profile_package, &subs[0]);
    let out = e.download(&mut euicc, &ts48_mid).await;
    assert_eq!(out.iccid, ts48_iccid);
    assert_eq!(euicc.state().profiles[1].profile_package, ts48);
    for iccid in [&subs[0].iccid, &ts48_iccid] {
        assert_eq!(e.server.profile(iccid).await.state, ProfileState::Installed);
    }
    // Both packages exist at rest only sealed.
    let stored = e.server.profile(&ts48_iccid).await.upp.unwrap();
    assert_eq!(SealedBlob::parse(&stored).unwrap().dek_id(), 1);
    e.server.stop().await;

    let ts48_upp = Upp::decode(&ts48).unwrap();
    let ts48_aka = ts48_upp.aka_parameters();
    assert!(!ts48_aka.is_empty());
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for (_, a) in &ts48_aka {
        let p = a.algo_parameter().unwrap();
        // The TS.48 Ki is a real value; its OPc may be all zeros, which any page of the
        // file holds and says nothing about the key: such a value is not searched for.
        assert!(p.key.expose().iter().any(|&b| b != p.key.expose()[0]));
        for k in [p.key.expose(), p.opc.expose()] {
            if k.iter().any(|&b| b != k[0]) {
                keys.push(k.to_vec());
            }
        }
    }
    for s in &subs {
        keys.push(hex16(&s.ki).to_vec());
        keys.push(hex16(&s.opc).to_vec());
    }
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for k in &keys {
        needles.push((format!("raw {}", hex::encode(k)), k.clone()));
        needles.push((
            format!("upper {}", hex::encode(k)),
            hex::encode_upper(k).into_bytes(),
        ));
        needles.push((
            format!("lower {}", hex::encode(k)),
            hex::encode(k).into_bytes(),
        ));
    }
    for s in &subs {
        for v in [&s.pin1, &s.puk1, &s.pin2, &s.puk2, &s.adm1] {
            needles.push((format!("ascii {v}"), v.clone().into_bytes()));
        }
    }

    let db_file = dir.join("smdpp.db");
    // The file with its WAL, read as one snapshot: the last connection of a closing pool
    // checkpoints the WAL into the file and deletes it, possibly while it is being read;
    // then the file alone is read again.
    let snapshot = || -> Option<Vec<(PathBuf, Vec<u8>)>> {
        let mut files = vec![(db_file.clone(), std::fs::read(&db_file).ok()?)];
        for suffix in ["-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{suffix}", db_file.display()));
            if p.exists() {
                let bytes = std::fs::read(&p).ok()?;
                files.push((p, bytes));
            }
        }
        Some(files)
    };
    let files = (0..20)
        .find_map(|_| {
            snapshot().or_else(|| {
                std::thread::sleep(std::time::Duration::from_millis(50));
                None
            })
        })
        .expect("the database file could not be read");
    let mut all = Vec::new();
    for (f, bytes) in &files {
        for (what, n) in &needles {
            assert!(!find(bytes, n), "{} contains {what}", f.display());
        }
        all.extend_from_slice(bytes);
    }
    // The scan reads the data: what is stored in the clear is found.
    for s in &subs {
        assert!(find(&all, s.imsi.as_bytes()), "IMSI {} not found", s.imsi);
        assert!(
            find(&all, s.iccid.as_bytes()),
            "ICCID {} not found",
            s.iccid
        );
    }
    assert!(find(&all, ts48_iccid.as_bytes()));
}

// ------------------------------------------------------------------ 6. download

async fn virtual_euicc_downloads_an_imported_profile(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let s = Sub::new(42);
    e.import(&[&s]).await;
    let mid = e.release(&s.iccid).await;
    let mut euicc = sim_euicc(&e.pki);
    let out = e.download(&mut euicc, &mid).await;
    assert_eq!(out.iccid, s.iccid);
    assert_eq!(out.service_provider_name, TYPE_SPN);
    assert_eq!(out.profile_name, TYPE_NAME);
    assert_eq!(out.upp_info.header_iccid.as_deref(), Some(s.iccid.as_str()));
    assert_eq!(out.upp_info.ef_iccid.as_deref(), Some(s.iccid.as_str()));
    assert_eq!(out.upp_info.imsi.as_deref(), Some(s.imsi.as_str()));
    assert_eq!(out.upp_info.ef_spn.as_deref(), Some(s.spn.as_str()));
    assert!(out.notification_sent, "{:?}", out.notification_error);
    let p = e.server.profile(&s.iccid).await;
    assert_eq!(p.state, ProfileState::Installed);
    assert_eq!(p.eid.as_deref(), Some(euicc.eid()));
    let installed = &euicc.state().profiles;
    assert_eq!(installed.len(), 1);
    assert_package_of(&installed[0].profile_package, &s);
    // The server generates the same package again (nothing random in it).
    let again = e.server.factory().upp_for(&p).await.unwrap();
    assert_eq!(again.as_slice(), installed[0].profile_package.as_slice());
    e.server.stop().await;
}

// ------------------------------------------------------------------ 6b. ES2+ by type

/// Profile `iccid` of `server`, checked to be in `state` with the (cc attempt, download
/// attempt) limits `limits`.
async fn profile_with_limits(
    server: &Server,
    iccid: &str,
    state: ProfileState,
    limits: (Option<i64>, Option<i64>),
) -> smdpp_store::Profile {
    let p = server.profile(iccid).await;
    assert_eq!(p.state, state, "{iccid}");
    assert_eq!(
        (p.cc_attempt_limit, p.download_attempt_limit),
        limits,
        "{iccid}"
    );
    p
}

/// Imported inventory served over ES2+: DownloadOrder by `profileType` claims one of the
/// operator's Available imported profiles of that type (never one of another type);
/// ConfirmOrder gives the order the type's limits, also after a CancelOrder back to
/// Available cleared the profile's own; the virtual eUICC downloads the imported
/// subscriber with the Activation Code and Confirmation Code; none left is `8.2.5/3.7`.
async fn es2_download_order_by_type_delivers_an_imported_profile(dir: &Path, db: &Db) {
    const ES2_TYPE: &str = "es2-type";
    const OP: &str = "op-factory";
    // The ES2_TYPE's (cc_attempts, download_attempts).
    const TYPE_LIMITS: (Option<i64>, Option<i64>) = (Some(2), Some(4));
    let e = env(dir, db).await;
    let store = e.server.store();
    // cc_attempts 2, download_attempts 4: neither is the server default (3 and 5).
    add_type_with_limits(e.server.factory(), ES2_TYPE, 2, 4).await;
    let defaults = smdpp_service::Limits::default();
    assert_ne!(
        (defaults.cc_attempt_limit, defaults.download_attempt_limit),
        (2, 4)
    );
    let cert = client_cert("op-factory.example");
    store
        .insert_operator(&smdpp_store::NewOperator {
            id: OP.into(),
            cert_sha256: Some(smdpp_service::es2::cert_fingerprint(&cert.cert_der)),
            cert_subject: None,
            callback_url: None,
            callback_ca: None,
        })
        .await
        .unwrap();

    // 3 rows of the type for the operator, 1 row of another type (TYPE) for it too.
    let subs: Vec<Sub> = (60..63).map(Sub::new).collect();
    let csv = csv_of_subs(&subs);
    let out = import_with(
        store,
        &e.factory(),
        &csv,
        &options(ES2_TYPE, Some(OP), true, 100),
    )
    .await
    .unwrap();
    assert_eq!(out.summary.imported, 3, "{:?}", out.summary);
    let other = Sub::new(70);
    let out = import_with(
        store,
        &e.factory(),
        &csv_of(&[&other.csv()]),
        &options(TYPE, Some(OP), true, 100),
    )
    .await
    .unwrap();
    assert_eq!(out.summary.imported, 1, "{:?}", out.summary);
    let sub_of = |iccid: &str| -> Sub {
        subs.iter()
            .find(|s| s.iccid == iccid)
            .unwrap_or_else(|| panic!("{iccid} is not one of the imported rows of {ES2_TYPE}"))
            .clone()
    };
    // An ES2+ call of OP that must succeed; a DownloadOrder by type.
    let call = |function: &'static str, body: serde_json::Value| {
        let call = es2_call(&e.server, OP, &cert, function, body);
        async move {
            let r = call.await;
            assert_es2_success(function, &r);
            r
        }
    };
    let by_type = || serde_json::json!({"profileType": ES2_TYPE});

    // Order 1: by type, released with a Confirmation Code, downloaded.
    let r = call("downloadOrder", by_type()).await;
    let first = sub_of(r["iccid"].as_str().unwrap());
    let p = e.server.profile(&first.iccid).await;
    assert_eq!(p.state, ProfileState::Allocated);
    assert_eq!(p.operator_id.as_deref(), Some(OP));
    assert_eq!(p.profile_type.as_deref(), Some(ES2_TYPE));
    let r = call(
        "confirmOrder",
        serde_json::json!({"iccid": first.iccid, "confirmationCode": "4711",
            "releaseFlag": true}),
    )
    .await;
    let mid = r["matchingId"].as_str().unwrap().to_owned();
    assert_eq!(r["smdpAddress"], e.server.address());
    let p = profile_with_limits(&e.server, &first.iccid, ProfileState::Released, TYPE_LIMITS).await;
    assert_eq!(p.matching_id.as_deref(), Some(mid.as_str()));
    let mut euicc = sim_euicc(&e.pki);
    let ac = format!("LPA:1${}${mid}$$1", e.server.address());
    let out = e
        .lpa
        .download(
            &mut euicc,
            &ac,
            &DownloadOptions {
                confirmation_code: Some("4711".into()),
                ..DownloadOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(out.iccid, first.iccid);
    assert_eq!(out.upp_info.ef_iccid.as_deref(), Some(first.iccid.as_str()));
    assert_eq!(out.upp_info.imsi.as_deref(), Some(first.imsi.as_str()));
    assert!(out.notification_sent, "{:?}", out.notification_error);
    assert_package_of(&euicc.state().profiles[0].profile_package, &first);
    let p = e.server.profile(&first.iccid).await;
    assert_eq!(p.state, ProfileState::Installed);
    assert_eq!(p.eid.as_deref(), Some(euicc.eid()));

    // Order 2: by type (another profile), confirmed, cancelled back to Available.
    let r = call("downloadOrder", by_type()).await;
    let second = sub_of(r["iccid"].as_str().unwrap());
    assert_ne!(second.iccid, first.iccid);
    call(
        "confirmOrder",
        serde_json::json!({"iccid": second.iccid, "confirmationCode": "1234",
            "releaseFlag": false}),
    )
    .await;
    profile_with_limits(
        &e.server,
        &second.iccid,
        ProfileState::Confirmed,
        TYPE_LIMITS,
    )
    .await;
    call(
        "cancelOrder",
        serde_json::json!({"iccid": second.iccid,
            "finalProfileStatusIndicator": "Available"}),
    )
    .await;
    let p = profile_with_limits(
        &e.server,
        &second.iccid,
        ProfileState::Available,
        (None, None),
    )
    .await;
    assert_eq!((p.matching_id, p.eid, p.cc_hash), (None, None, None));
    assert_eq!(p.operator_id.as_deref(), Some(OP));

    // The cancelled profile ordered again (by its ICCID): the limits come from the type.
    let r = call(
        "downloadOrder",
        serde_json::json!({"iccid": second.iccid, "profileType": ES2_TYPE}),
    )
    .await;
    assert_eq!(r["iccid"], second.iccid.as_str());
    assert_eq!(
        e.server.profile(&second.iccid).await.state,
        ProfileState::Allocated
    );
    call(
        "confirmOrder",
        serde_json::json!({"iccid": second.iccid, "releaseFlag": true}),
    )
    .await;
    profile_with_limits(
        &e.server,
        &second.iccid,
        ProfileState::Released,
        TYPE_LIMITS,
    )
    .await;

    // The third by type; then none of the type is Available: 8.2.5/3.7, and the profile
    // of the other type is not taken.
    let r = call("downloadOrder", by_type()).await;
    let third = sub_of(r["iccid"].as_str().unwrap());
    let mut seen = [&first.iccid, &second.iccid, &third.iccid];
    seen.sort();
    let mut all: Vec<&String> = subs.iter().map(|s| &s.iccid).collect();
    all.sort();
    assert_eq!(seen.to_vec(), all, "each imported row ordered once");
    let r = es2_call(&e.server, OP, &cert, "downloadOrder", by_type()).await;
    let fes = &r["header"]["functionExecutionStatus"];
    assert_eq!(fes["status"], "Failed", "{r}");
    // `8.2.5/3.7` Unavailable of Table 24 (`status::PROFILE_TYPE_UNAVAILABLE`): the
    // operator has profiles of the type, none Available.
    let unavailable = &smdpp_core::status::PROFILE_TYPE_UNAVAILABLE;
    assert_eq!(
        (unavailable.subject(), unavailable.reason()),
        ("8.2.5", "3.7")
    );
    assert_eq!(fes["statusCodeData"]["subjectCode"], "8.2.5", "{r}");
    assert_eq!(fes["statusCodeData"]["reasonCode"], "3.7", "{r}");
    assert!(r.get("iccid").is_none(), "{r}");
    let p = e.server.profile(&other.iccid).await;
    assert_eq!(p.state, ProfileState::Available);
    assert_eq!(p.profile_type.as_deref(), Some(TYPE));
    let mut counts = store.count_profiles_of_type(ES2_TYPE).await.unwrap();
    counts.sort_by_key(|(state, _)| state.as_str());
    assert_eq!(
        counts,
        vec![
            (ProfileState::Allocated, 1),
            (ProfileState::Installed, 1),
            (ProfileState::Released, 1),
        ]
    );
    e.server.stop().await;
}

// ------------------------------------------------------------------ 7. asn1tools

async fn asn1tools_decodes_a_generated_upp(dir: &Path, db: &Db) {
    if !asn1tools::ready("asn1tools_decodes_a_generated_upp") {
        return;
    }
    let e = env(dir, db).await;
    let mut s = Sub::new(77);
    s.ki = "000102030405060708090A0B0C0D0E0F".into();
    s.opc = "f0e0d0c0b0a090807060504030201000".into();
    s.pin1 = "4711".into();
    s.puk1 = "31415926".into();
    s.pin2 = "0815".into();
    s.puk2 = "27182818".into();
    s.adm1 = "16180339".into();
    e.import(&[&s]).await;
    let profile = e.server.profile(&s.iccid).await;
    let upp = e.server.factory().upp_for(&profile).await.unwrap();
    let upp = upp.to_vec();
    let reply = tokio::task::spawn_blocking(move || asn1tools::decode_pes(&upp))
        .await
        .unwrap();
    let v = &reply["values"];
    assert_eq!(
        v["header_iccid"],
        hex::encode(bcd::iccid_to_plain(&s.iccid).unwrap()).as_str()
    );
    let f = &v["files"];
    assert_eq!(
        f["mf/ef-iccid"],
        hex::encode(bcd::iccid_to_ef(&s.iccid).unwrap()).as_str()
    );
    // IMSI 001010000000077: length 8, parity nibble 9, then swapped digit pairs.
    assert_eq!(s.imsi, "001010000000077");
    assert_eq!(f["usim/ef-imsi"], "080910100000000077");
    let aka = v["aka"].as_array().unwrap();
    assert_eq!(aka.len(), 2);
    for a in aka {
        assert_eq!(a["algorithm"], 1);
        assert_eq!(a["key"], "000102030405060708090a0b0c0d0e0f");
        assert_eq!(a["opc"], "f0e0d0c0b0a090807060504030201000");
    }
    let has = |list: &serde_json::Value, k: u64, val: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p[0] == k && p[1] == val)
    };
    let pins = &v["pins"];
    assert!(has(pins, 1, "34373131ffffffff"), "PIN1 {pins:?}");
    assert!(has(pins, 0x81, "30383135ffffffff"), "PIN2 {pins:?}");
    assert!(has(pins, 0x0A, &hex::encode("16180339")), "ADM1 {pins:?}");
    let puks = &v["puks"];
    assert!(has(puks, 1, &hex::encode("31415926")), "PUK1 {puks:?}");
    assert!(has(puks, 0x81, &hex::encode("27182818")), "PUK2 {puks:?}");
    e.server.stop().await;
}

// ------------------------------------------------------------------ 8. key rotation

/// Opening a factory over `store` with the key file `kek` is refused; the message.
async fn open_refused(store: &Store, kek: &Path) -> String {
    open_factory(store, kek)
        .await
        .expect_err("key file refused")
        .to_string()
}

/// The refusal of the key file `file`, which holds KEK `held`, for a database whose DEKs
/// are wrapped by KEK `wanted`.
fn wrong_kek(file: &Path, wanted: &str, held: &str) -> String {
    format!(
        "key file {}: the database's data-encryption keys are wrapped by key-encryption \
         key {wanted}, but the key file holds {held}: point kek_file (--kek-file, \
         SMDPP_KEK_FILE) at the key file whose id is {wanted}",
        file.display()
    )
}

async fn dek_rotation_reseals_everything_while_serving(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    let subs: Vec<Sub> = (1..=4).map(Sub::new).collect();
    e.import(&subs.iter().collect::<Vec<_>>()).await;
    let ts48 = std::fs::read(TS48).unwrap();
    let (ts48_mid, ts48_iccid) = e.server.add(&ts48, None, None).await;
    let server_factory = e.factory();
    assert_eq!(server_factory.vault().dek_ids(), vec![1]);

    // A second process: its own connection and factory, from the same key file.
    let cli_store = Store::connect(&db.url).await.unwrap();
    let cli = open_factory(&cli_store, &e.kek_file()).await.unwrap();
    let mut progress = Vec::new();
    let (new_id, resealed) = cli.rotate_dek(|n| progress.push(n)).await.unwrap();
    assert_eq!(new_id, 2);
    assert_eq!(
        resealed, 6,
        "4 secrets records + 1 profile-type template + 1 stored package"
    );
    assert_eq!(progress.last(), Some(&6));
    // The old DEK is kept: the server still seals under it until it reloads the keys.
    assert_eq!(cli.vault().dek_ids(), vec![1, 2]);
    assert_eq!(cli.vault().active_dek_id(), 2);
    let deks = cli_store.vault_deks().await.unwrap();
    assert_eq!(
        deks.iter().map(|d| d.dek_id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_opens(&cli_store, &cli, &subs, Some(2)).await;
    let stored = e.server.profile(&ts48_iccid).await.upp.unwrap();
    assert_eq!(SealedBlob::parse(&stored).unwrap().dek_id(), 2);
    // The server has not seen DEK 2 yet.
    assert_eq!(server_factory.vault().dek_ids(), vec![1]);
    assert_eq!(server_factory.vault().active_dek_id(), 1);

    // The running server opens blobs of DEK 2 by reloading the keys.
    let mut euicc = sim_euicc(&e.pki);
    let mid = e.release(&subs[0].iccid).await;
    let out = e.download(&mut euicc, &mid).await;
    assert_eq!(out.iccid, subs[0].iccid);
    assert_eq!(out.upp_info.imsi.as_deref(), Some(subs[0].imsi.as_str()));
    assert_package_of(&euicc.state().profiles[0].profile_package, &subs[0]);
    assert_eq!(server_factory.vault().dek_ids(), vec![1, 2]);
    let out = e.download(&mut euicc, &ts48_mid).await;
    assert_eq!(out.iccid, ts48_iccid);
    assert_eq!(euicc.state().profiles[1].profile_package, ts48);

    // Re-wrap under a new key-encryption key.
    let old_kek = e.kek_file();
    let old_id = FileKek::load(&old_kek).unwrap().id().to_owned();
    let new_kek = dir.join("new-vault.kek");
    let kek = Arc::new(FileKek::create(&new_kek).unwrap());
    let new_id = kek.id().to_owned();
    assert_ne!(new_id, old_id);
    assert_eq!(cli.rewrap(kek).await.unwrap(), new_id);
    let deks = cli_store.vault_deks().await.unwrap();
    assert_eq!(
        deks.iter()
            .map(|d| (d.dek_id, d.kek_id.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, new_id.as_str()), (2, new_id.as_str())]
    );

    // The old key file no longer opens the database; the message names both keys.
    let err = open_refused(&cli_store, &old_kek).await;
    assert!(err.contains(&old_id), "{err}");
    assert!(err.contains(&new_id), "{err}");
    assert_eq!(err, wrong_kek(&old_kek, &new_id, &old_id));
    // The new one does, and opens secrets and packages.
    let reopened = open_factory(&cli_store, &new_kek).await.unwrap();
    assert_eq!(reopened.vault().kek_id(), new_id);
    assert_opens(&cli_store, &reopened, &subs, None).await;
    let p = e.server.profile(&ts48_iccid).await;
    assert_eq!(
        reopened.upp_for(&p).await.unwrap().as_slice(),
        ts48.as_slice()
    );

    // The running server is not affected by the re-wrap.
    let mid = e.release(&subs[1].iccid).await;
    let out = e.download(&mut euicc, &mid).await;
    assert_eq!(out.iccid, subs[1].iccid);
    assert_package_of(&euicc.state().profiles[2].profile_package, &subs[1]);
    cli_store.close().await;
    e.server.stop().await;
}

/// A DEK rotation by a new process over `store` with the key file `kek`, during which
/// (after the first re-seal batch) each `(f, s)` of `late` stores `s` sealed by `f`, whose
/// active DEK is older. The new process's factory and the new DEK's id.
async fn rotate_during(
    store: &Store,
    kek: &Path,
    late: &[(&Arc<Factory>, &Sub)],
) -> (Arc<Factory>, u32) {
    let rotating = open_factory(store, kek).await.unwrap();
    let mut first = true;
    let (id, _) = rotating
        .rotate_dek(|_| {
            if std::mem::take(&mut first) {
                for (f, s) in late {
                    let (store, f, s) = (store.clone(), Arc::clone(f), (*s).clone());
                    tokio::task::block_in_place(move || {
                        tokio::runtime::Handle::current()
                            .block_on(async move { import_all(&store, &f, [&s], false, 10).await })
                    });
                }
            }
        })
        .await
        .unwrap();
    (rotating, id)
}

/// Rows sealed by a process that still seals under an older DEK (an import that started
/// before the rotation) and stored after the rotation's re-seal pass keep their DEK: a
/// rotation deletes no DEK, and with rows left under two old DEKs retiring deletes neither.
async fn rotation_keeps_every_old_dek_still_in_use(dir: &Path, db: &Db) {
    let (store, f1) = open(dir, db).await;
    add_type(&f1, TYPE).await;
    let a: Vec<Sub> = (10..=12).map(Sub::new).collect();
    import_all(&store, &f1, &a, false, 10).await;
    let kek = dir.join("vault.kek");

    // Rotation to DEK 2; meanwhile f1 (DEK 1) stores b.
    let b = Sub::new(1);
    let (f2, id) = rotate_during(&store, &kek, &[(&f1, &b)]).await;
    assert_eq!(id, 2);
    assert_eq!(dek_ids(&store).await, vec![1, 2]);
    assert_eq!(dek_of(&store, &b).await, 1);

    // Rotation to DEK 3; meanwhile f1 (DEK 1) stores c and f2 (DEK 2) stores d.
    let (c, d) = (Sub::new(2), Sub::new(3));
    let (_, id) = rotate_during(&store, &kek, &[(&f1, &c), (&f2, &d)]).await;
    assert_eq!(id, 3);
    assert_eq!(dek_ids(&store).await, vec![1, 2, 3]);
    assert_eq!(dek_of(&store, &c).await, 1);
    assert_eq!(dek_of(&store, &d).await, 2);
    // Every row opens in a new process.
    let f4 = open_factory(&store, &kek).await.unwrap();
    assert_opens(&store, &f4, a.iter().chain([&b, &c, &d]), None).await;
    // Both old DEKs are still in use (c under 1, d under 2): retiring deletes nothing.
    assert_eq!(f4.retire_unused().await.unwrap(), Vec::<u32>::new());
    assert_eq!(dek_ids(&store).await, vec![1, 2, 3]);
    assert_eq!(f4.vault().dek_ids(), vec![1, 2, 3]);
    // The next rotation re-seals them all, keeping the old DEKs; retiring then deletes them.
    let (id, n) = f4.rotate_dek(|_| {}).await.unwrap();
    // 6 secrets records and the template of TYPE.
    assert_eq!((id, n), (4, 7));
    assert_eq!(dek_ids(&store).await, vec![1, 2, 3, 4]);
    assert_eq!(f4.retire_unused().await.unwrap(), vec![1, 2, 3]);
    assert_eq!(dek_ids(&store).await, vec![4]);
    assert_eq!(f4.vault().dek_ids(), vec![4]);
    let f5 = open_factory(&store, &kek).await.unwrap();
    assert_opens(&store, &f5, a.iter().chain([&b, &c, &d]), Some(4)).await;
    store.close().await;
}

/// `smdpp keys retire`: after two rotations, a factory opened before the first one (a
/// server not restarted) still seals under DEK 1; retiring deletes DEK 2, which nothing
/// uses, and keeps DEK 1, and every record still opens. Once a rotation has re-sealed
/// everything, retiring deletes every old DEK and keeps only the active one.
async fn retire_deletes_only_unused_old_deks(dir: &Path, db: &Db) {
    let (store, f1) = open(dir, db).await;
    add_type(&f1, TYPE).await;
    let kek = dir.join("vault.kek");
    let a: Vec<Sub> = (20..=22).map(Sub::new).collect();
    import_all(&store, &f1, &a, false, 10).await;
    // A fresh database: nothing to retire.
    assert_eq!(f1.retire_unused().await.unwrap(), Vec::<u32>::new());
    assert_eq!(dek_ids(&store).await, vec![1]);

    // Opened before the first rotation: it knows DEK 1 only and seals under it. It has
    // compiled the type (an import running since before the rotation): a template it had
    // to open after the rotation would make it load the new DEK.
    let stale = open_factory(&store, &kek).await.unwrap();
    stale.profile_type(TYPE).await.unwrap();

    // Rotation to DEK 2; afterwards the stale factory stores b under DEK 1.
    // Each rotation re-seals the template of TYPE too.
    assert_eq!(f1.rotate_dek(|_| {}).await.unwrap(), (2, 4));
    assert_eq!(dek_ids(&store).await, vec![1, 2]);
    let b = Sub::new(4);
    import_all(&store, &stale, [&b], false, 10).await;
    assert_eq!(dek_of(&store, &b).await, 1);

    // Rotation to DEK 3 (a new process); afterwards the stale factory stores c under DEK 1.
    let f2 = open_factory(&store, &kek).await.unwrap();
    assert_eq!(f2.rotate_dek(|_| {}).await.unwrap(), (3, 5));
    assert_eq!(dek_ids(&store).await, vec![1, 2, 3]);
    let c = Sub::new(5);
    import_all(&store, &stale, [&c], false, 10).await;
    assert_eq!(stale.vault().dek_ids(), vec![1]);
    for s in a.iter().chain([&b]) {
        assert_eq!(dek_of(&store, s).await, 3, "{}", s.iccid);
    }
    assert_eq!(dek_of(&store, &c).await, 1);

    // Retiring (a new process) deletes DEK 2 only: DEK 1 still seals c.
    let f3 = open_factory(&store, &kek).await.unwrap();
    assert_eq!(f3.retire_unused().await.unwrap(), vec![2]);
    assert_eq!(f3.vault().dek_ids(), vec![1, 3]);
    assert_eq!(dek_ids(&store).await, vec![1, 3]);
    // Again: nothing more to retire.
    assert_eq!(f3.retire_unused().await.unwrap(), Vec::<u32>::new());
    assert_eq!(dek_ids(&store).await, vec![1, 3]);
    // Every record opens in a new process, and in the stale one (reloading DEK 3).
    let fresh = open_factory(&store, &kek).await.unwrap();
    assert_eq!(fresh.vault().dek_ids(), vec![1, 3]);
    for f in [&fresh, &stale] {
        assert_opens(&store, f, a.iter().chain([&b, &c]), None).await;
    }
    assert_eq!(stale.vault().dek_ids(), vec![1, 3]);

    // Another rotation re-seals everything under DEK 4; retiring then deletes DEKs 1 and 3.
    let f4 = open_factory(&store, &kek).await.unwrap();
    assert_eq!(f4.rotate_dek(|_| {}).await.unwrap(), (4, 6));
    assert_eq!(dek_ids(&store).await, vec![1, 3, 4]);
    assert_eq!(f4.retire_unused().await.unwrap(), vec![1, 3]);
    assert_eq!(f4.vault().dek_ids(), vec![4]);
    assert_eq!(dek_ids(&store).await, vec![4]);
    assert_eq!(f4.retire_unused().await.unwrap(), Vec::<u32>::new());
    let fresh = open_factory(&store, &kek).await.unwrap();
    assert_eq!(fresh.vault().dek_ids(), vec![4]);
    assert_opens(&store, &fresh, a.iter().chain([&b, &c]), Some(4)).await;
    store.close().await;
}

// ------------------------------------------------------------------ 9. key file

async fn wrong_or_missing_kek_file_is_refused(dir: &Path, db: &Db) {
    let store = Store::connect(&db.url).await.unwrap();
    // A fresh database and no key file: the key file is created, mode 0600, and DEK 1.
    let kek = dir.join("keys").join("vault.kek");
    let factory = open_factory(&store, &kek).await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kek).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let id = FileKek::load(&kek).unwrap().id().to_owned();
    assert_eq!(factory.vault().kek_id(), id);
    let deks = store.vault_deks().await.unwrap();
    assert_eq!(deks.len(), 1);
    assert_eq!((deks[0].dek_id, deks[0].kek_id.as_str()), (1, id.as_str()));

    // Missing: refused, naming the file and the key id; no new key file is made.
    let missing = dir.join("elsewhere.kek");
    let err = open_refused(&store, &missing).await;
    assert_eq!(
        err,
        format!(
            "key file {} is missing: the database's secrets are sealed under \
             key-encryption key {id}",
            missing.display()
        )
    );
    assert!(!missing.exists());

    // Another key: refused with both ids.
    let other = dir.join("other.kek");
    let other_id = FileKek::create(&other).unwrap().id().to_owned();
    let err = open_refused(&store, &other).await;
    assert_eq!(err, wrong_kek(&other, &id, &other_id));

    // A key file others can read: refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = open_factory(&store, &kek).await.expect_err("0644 refused");
        // The whole chain, each part once.
        assert_eq!(
            format!("{err:#}"),
            format!(
                "key file {}: mode 0644 gives group/other access; it must be 0600 or \
                 stricter (chmod 600)",
                kek.display()
            )
        );
        std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // The right one still opens, and nothing was added by the refusals.
    let right = open_factory(&store, &kek).await.unwrap();
    assert_eq!(store.vault_deks().await.unwrap(), deks);
    // A duplicate type name is refused by the store.
    add_type(&right, TYPE).await;
    let t = store.get_profile_type(TYPE).await.unwrap().unwrap();
    assert!(matches!(
        store.insert_profile_type(&t).await,
        Err(StoreError::Duplicate { .. })
    ));
    store.close().await;
}

// ------------------------------------------------------------------ 10. re-import, templates

const CHANGED_SECRETS: &str = "ICCID already imported with other values (Ki, OPc/OP, PIN, PUK, \
                               ADM1, SPN or MNC length differ); nothing changed";

/// A re-run row with the ICCID, IMSI, type and operator of a stored one but another Ki is
/// refused (it is not "already present"): the stored secrets stay, the other rows of the
/// file are imported; with --all-or-nothing nothing is.
async fn rejects_reimport_with_changed_secrets(dir: &Path, db: &Db) {
    let (store, factory) = open(dir, db).await;
    add_type(&factory, TYPE).await;
    let subs: Vec<Sub> = (1..=3).map(Sub::new).collect();
    import_all(&store, &factory, &subs, false, 10).await;
    let sealed_before = store.get_sealed_secrets(&subs[1].iccid).await.unwrap();

    let mut changed = subs[1].clone();
    changed.ki = "00112233445566778899AABBCCDDEEFF".into();
    let fresh = Sub::new(4);
    let csv = csv_of_subs([&subs[0], &changed, &subs[2], &fresh]);
    let errors = vec![row_err(3, "iccid", CHANGED_SECRETS)];

    // All or nothing: the refusal rolls back the new row.
    let out = import(&store, &factory, &csv, true, 10).await;
    assert_eq!(out.summary, summary(4, 0, 2, 1, 1, errors.clone()));
    assert_eq!(out.rejected, errors);
    assert_eq!(store.get_profile(&fresh.iccid).await.unwrap(), None);

    // Row by row (batches of 2: the refused row and a re-run in one): the others go in.
    let out = import(&store, &factory, &csv, false, 2).await;
    assert_eq!(out.summary, summary(4, 1, 2, 1, 0, errors.clone()));
    assert_eq!(out.rejected, errors);
    assert_eq!(
        store.get_sealed_secrets(&subs[1].iccid).await.unwrap(),
        sealed_before,
        "stored secrets unchanged"
    );
    assert_imported(&store, &factory, &[&subs[0], &subs[1], &subs[2], &fresh]).await;
    assert_eq!(profile_count(&store).await, 4);
    // The original file is still a harmless re-run.
    let again = import(&store, &factory, &csv_of_subs(&subs), false, 10).await;
    assert_eq!(again.summary, summary(3, 0, 3, 0, 0, vec![]));
    store.close().await;
}

/// The built-in template's TOML with `from` replaced by `to` (which must occur once).
fn template_with(from: &str, to: &str) -> TemplateSource {
    let text = saip::template::USIM_ISIM_MILENAGE_TOML;
    assert_eq!(text.matches(from).count(), 1, "{from}");
    TemplateSource::from_toml(text.replace(from, to))
}

/// Creates profile type `name` from `template` (limits 5 and 7, no PPRs).
async fn add_type_from(f: &Factory, name: &str, template: &TemplateSource, ppr: &[Ppr]) {
    let t = build_profile_type(
        name,
        template,
        TYPE_SPN,
        TYPE_NAME,
        None,
        None,
        &[NotifyOn::Install, NotifyOn::Delete],
        ppr,
        Some(5),
        Some(7),
    )
    .unwrap();
    f.add_profile_type(&t).await.unwrap();
}

/// Personalization refuses what the row checks accept when the template's files are too
/// small for the derived values: with a 50-octet ISIM EF.IMPI, the IMPI of a 15-digit IMSI
/// (`<IMSI>@ims.mnc001.mcc001.3gppnetwork.org`, 49 characters, 51 octets as a TLV) does not
/// fit, that of a 14-digit IMSI does. Such a row is refused at import, not at download.
async fn rejects_rows_that_do_not_fit_the_template(dir: &Path, db: &Db) {
    const SMALL: &str = "small-impi";
    let (store, factory) = open(dir, db).await;
    let template = template_with(
        "size = 64\ncontent = \"80 00\"                   # personalization: <IMSI>@",
        "size = 50\ncontent = \"80 00\"                   # personalization: <IMSI>@",
    );
    add_type_from(&factory, SMALL, &template, &[]).await;
    let too_long = Sub::new(1);
    assert_eq!(too_long.imsi.len(), 15);
    let mut fits = Sub::new(2);
    fits.imsi = format!("00101{:09}", 2);
    let too_long2 = Sub::new(3);
    let mut fits2 = Sub::new(4);
    fits2.imsi = format!("00101{:09}", 4);
    let csv = csv_of_subs([&too_long, &fits, &too_long2, &fits2]);
    let message = format!(
        "does not fit the template of type \"{SMALL}\": IMPI: 51 octets do not fit the \
         50-octet file"
    );
    // No field: the row's values are each valid, the template cannot hold them together.
    let errors: Vec<RowError> = [2, 4]
        .into_iter()
        .map(|line| RowError {
            line,
            field: None,
            message: message.clone(),
        })
        .collect();
    for all in [true, false] {
        let out = import_with(&store, &factory, &csv, &options(SMALL, None, all, 3))
            .await
            .unwrap();
        let (imported, rolled_back) = if all { (0, 2) } else { (2, 0) };
        assert_eq!(
            out.summary,
            summary(4, imported, 0, 2, rolled_back, errors.clone()),
            "all_or_nothing={all}"
        );
        assert_eq!(out.rejected, errors);
    }
    for s in [&too_long, &too_long2] {
        assert_eq!(store.get_profile(&s.iccid).await.unwrap(), None);
        assert_eq!(store.get_sealed_secrets(&s.iccid).await.unwrap(), None);
    }
    // The rows that fit were imported and generate their package.
    for s in [&fits, &fits2] {
        let p = store.get_profile(&s.iccid).await.unwrap().unwrap();
        assert_eq!(p.profile_type.as_deref(), Some(SMALL));
        let upp = factory.upp_for(&p).await.unwrap();
        let upp = Upp::decode(&upp).unwrap();
        assert_eq!(upp.imsi().unwrap(), s.imsi);
    }
    store.close().await;
}

/// A profile type's template is stored sealed: the raw SQLite files hold neither its name
/// nor its description line nor a file definition of it; the type still generates its
/// packages, also after a rotation re-sealed the template and in a new process.
async fn template_is_sealed_at_rest(dir: &Path, db: &Db) {
    const CANARY_NAME: &str = "canary-tmpl-5c1f08e2";
    const CANARY_DESCRIPTION: &str = "Canary description 9b7d3a41, must stay sealed";
    let template = template_with("usim-isim-milenage\"", &format!("{CANARY_NAME}\""));
    let template = TemplateSource::from_toml(template.text().replace(
        "USIM + ISIM, Milenage, MNO-SD without OTA keys; minimal mandatory file set",
        CANARY_DESCRIPTION,
    ));
    let (store, factory) = open(dir, db).await;
    add_type_from(&factory, TYPE, &template, &[]).await;
    let row = store.get_profile_type(TYPE).await.unwrap().unwrap();
    assert_eq!(SealedBlob::parse(&row.template).unwrap().dek_id(), 1);
    assert_eq!(
        factory.open_template(&row).await.unwrap().as_str(),
        template.text()
    );
    let s = Sub::new(9);
    import_all(&store, &factory, [&s], false, 10).await;
    let p = store.get_profile(&s.iccid).await.unwrap().unwrap();
    let upp = factory.upp_for(&p).await.unwrap();
    assert_eq!(Upp::decode(&upp).unwrap().imsi().unwrap(), s.imsi);
    assert_eq!(
        factory.profile_type(TYPE).await.unwrap().template.name(),
        CANARY_NAME
    );

    // A rotation re-seals it; a new process compiles it from the stored blob.
    assert_eq!(factory.rotate_dek(|_| {}).await.unwrap(), (2, 2));
    let row = store.get_profile_type(TYPE).await.unwrap().unwrap();
    assert_eq!(SealedBlob::parse(&row.template).unwrap().dek_id(), 2);
    assert_eq!(factory.retire_unused().await.unwrap(), vec![1]);
    store.close().await;
    let (store, fresh) = open(dir, db).await;
    assert_eq!(
        fresh.profile_type(TYPE).await.unwrap().template.name(),
        CANARY_NAME
    );
    let p = store.get_profile(&s.iccid).await.unwrap().unwrap();
    assert_eq!(
        fresh.upp_for(&p).await.unwrap().as_slice(),
        upp.as_slice(),
        "the same package"
    );
    store.close().await;

    let db_file = dir.join("smdpp.db");
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", db_file.display()));
        if p.exists() {
            all.extend_from_slice(&std::fs::read(&p).unwrap());
        }
    }
    for needle in [
        CANARY_NAME,
        CANARY_DESCRIPTION,
        "9b7d3a41",
        "[pe.files.ef-impi]",
        "hplmn_act",
    ] {
        assert!(
            !find(&all, needle.as_bytes()),
            "the database holds {needle:?}"
        );
    }
    // The scan reads the data: what is stored in the clear is found.
    for clear in [TYPE, TYPE_SPN, TYPE_NAME, s.imsi.as_str()] {
        assert!(find(&all, clear.as_bytes()), "{clear:?} not found");
    }
}

/// A process started before a rotation (a server not restarted) that has not compiled a
/// type yet opens its template re-sealed under the new DEK by reloading the keys, as it
/// does for secrets records.
async fn running_server_opens_a_template_resealed_by_a_rotation(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    // Another process imports and rotates; the server has compiled no type.
    let cli_store = Store::connect(&db.url).await.unwrap();
    let cli = open_factory(&cli_store, &e.kek_file()).await.unwrap();
    let s = Sub::new(31);
    import_all(&cli_store, &cli, [&s], true, 10).await;
    assert_eq!(cli.rotate_dek(|_| {}).await.unwrap(), (2, 2));
    let row = cli_store.get_profile_type(TYPE).await.unwrap().unwrap();
    assert_eq!(SealedBlob::parse(&row.template).unwrap().dek_id(), 2);
    assert_eq!(e.factory().vault().dek_ids(), vec![1]);

    let mid = e.release(&s.iccid).await;
    let mut euicc = sim_euicc(&e.pki);
    let out = e.download(&mut euicc, &mid).await;
    assert_eq!(out.iccid, s.iccid);
    assert_package_of(&euicc.state().profiles[0].profile_package, &s);
    assert_eq!(e.factory().vault().dek_ids(), vec![1, 2]);
    cli_store.close().await;
    e.server.stop().await;
}

/// `profile_secrets.dek_id` references `vault_deks`: a DEK a secrets record uses cannot be
/// deleted, even when it was stored (by a process started before the rotation) after the
/// check of `retire_unused`; and a record cannot be stored under a deleted DEK.
async fn retire_keeps_a_dek_referenced_by_the_foreign_key(dir: &Path, db: &Db) {
    let (store, f1) = open(dir, db).await;
    add_type(&f1, TYPE).await;
    let kek = dir.join("vault.kek");
    let a: Vec<Sub> = (40..=41).map(Sub::new).collect();
    import_all(&store, &f1, &a, false, 10).await;
    // Opened before the rotation, the type compiled: seals under DEK 1.
    let stale = open_factory(&store, &kek).await.unwrap();
    stale.profile_type(TYPE).await.unwrap();
    assert_eq!(f1.rotate_dek(|_| {}).await.unwrap(), (2, 3));
    let b = Sub::new(42);
    import_all(&store, &stale, [&b], false, 10).await;
    assert_eq!(dek_of(&store, &b).await, 1);

    // The store itself refuses to delete DEK 1 (what retire_unused relies on when a row
    // arrives between its check and its delete).
    assert!(!store.delete_vault_dek(1).await.unwrap());
    assert_eq!(dek_ids(&store).await, vec![1, 2]);
    assert_eq!(f1.retire_unused().await.unwrap(), Vec::<u32>::new());
    assert_eq!(f1.vault().dek_ids(), vec![1, 2]);
    assert_opens(&store, &f1, a.iter().chain([&b]), None).await;

    // Re-sealed under DEK 3, DEKs 1 and 2 go; the stale process (DEK 1 only) can no longer
    // store a record: the import fails and writes nothing.
    let (id, n) = f1.rotate_dek(|_| {}).await.unwrap();
    assert_eq!((id, n), (3, 4), "3 secrets records and the template");
    assert_eq!(f1.retire_unused().await.unwrap(), vec![1, 2]);
    assert_eq!(dek_ids(&store).await, vec![3]);
    assert_eq!(stale.vault().dek_ids(), vec![1]);
    let c = Sub::new(43);
    let err = import_with(
        &store,
        &stale,
        &csv_of_subs([&c]),
        &options(TYPE, None, false, 10),
    )
    .await
    .err()
    .expect("a record under a deleted DEK is refused");
    assert!(
        format!("{err:#}")
            .to_ascii_lowercase()
            .contains("foreign key"),
        "{err:#}"
    );
    assert_eq!(store.get_profile(&c.iccid).await.unwrap(), None);
    assert_eq!(store.get_sealed_secrets(&c.iccid).await.unwrap(), None);
    assert_eq!(dek_ids(&store).await, vec![3]);
    assert_opens(&store, &f1, a.iter().chain([&b]), Some(3)).await;
    store.close().await;
}

// ------------------------------------------------------------------ 11. packages in the clear

/// A package written into `profiles.upp` in the clear (by an older version, or by someone
/// with write access to the database but not the key) is not served: the factory refuses
/// it, so a download fails; the next start of the server seals it, and the download works.
async fn rejects_a_package_stored_in_the_clear(dir: &Path, db: &Db) {
    let Env { pki, server, lpa } = env(dir, db).await;
    let ts48 = std::fs::read(TS48).unwrap();
    let iccid = Upp::decode(&ts48).unwrap().iccid().unwrap();
    let mid = smdpp_service::upp::generate_matching_id().unwrap();
    let mut p = NewProfile::available(iccid.clone(), None);
    p.state = ProfileState::Released;
    p.matching_id = Some(mid.clone());
    p.upp = Some(ts48.clone());
    server
        .store()
        .insert_profile(
            &p,
            &EventRecord::by("test").with_cause("written in the clear"),
        )
        .await
        .unwrap();
    let side = server.sidecar().await;
    side.put_metadata(
        &iccid,
        &ProfileMetadata {
            service_provider_name: "Clear SP".into(),
            profile_name: "Clear profile".into(),
            profile_class: None,
        },
    )
    .await
    .unwrap();
    side.close().await;

    let stored = server.profile(&iccid).await;
    assert_eq!(stored.upp.as_deref(), Some(ts48.as_slice()));
    let err = server
        .factory()
        .upp_for(&stored)
        .await
        .expect_err("a package in the clear is refused");
    assert!(
        err.to_string().ends_with(&format!(
            "the package of {iccid} is stored in the clear; `smdpp serve` seals such \
             packages when it starts"
        )),
        "{err}"
    );
    let ac = format!("LPA:1${}${mid}", server.address());
    let mut euicc = sim_euicc(&pki);
    assert!(
        lpa.download(&mut euicc, &ac, &DownloadOptions::default())
            .await
            .is_err(),
        "downloaded a package stored in the clear"
    );
    assert!(euicc.state().profiles.is_empty());
    let p = server.profile(&iccid).await;
    assert_eq!(p.state, ProfileState::Released);
    assert_eq!(p.upp.as_deref(), Some(ts48.as_slice()), "left as it was");

    // A restart seals it in place; then it downloads.
    let settings = server.stop().await;
    let server = Server::start_lpa(settings).await;
    let sealed = server.profile(&iccid).await.upp.unwrap();
    assert_eq!(SealedBlob::parse(&sealed).unwrap().dek_id(), 1);
    assert!(!find(&sealed, &ts48[..64]));
    let out = lpa
        .download(&mut euicc, &ac, &DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!(out.iccid, iccid);
    assert_eq!(euicc.state().profiles[0].profile_package, ts48);
    assert_eq!(server.profile(&iccid).await.state, ProfileState::Installed);
    server.stop().await;
}

// ------------------------------------------------------------------ 12. PPRs and owner

/// A type with PPRs: the StoreMetadataRequest carries profilePolicyRules and profileOwner,
/// the MCC/MNC of the profile's IMSI coded as in TS 24.008 (a 2-digit MNC: digit 3 = F; a
/// 3-digit one from the row's mnc_len). A type without PPRs sends no profileOwner.
async fn metadata_carries_profile_owner_with_pprs(dir: &Path, db: &Db) {
    const PPR_TYPE: &str = "ppr-type";
    let e = env(dir, db).await;
    let store = e.server.store();
    add_type_from(
        e.server.factory(),
        PPR_TYPE,
        &TemplateSource::usim_isim_milenage(),
        &[Ppr::Ppr2],
    )
    .await;
    // MCC 001, MNC 01.
    let mnc2 = Sub::new(50);
    let out = import_with(
        store,
        &e.factory(),
        &csv_of_subs([&mnc2]),
        &options(PPR_TYPE, None, true, 10),
    )
    .await
    .unwrap();
    assert_eq!(out.summary.imported, 1, "{:?}", out.summary);
    // MCC 310, MNC 410.
    let mut mnc3 = Sub::new(51);
    mnc3.imsi = "310410000000051".into();
    let mut opts = options(PPR_TYPE, None, true, 10);
    opts.reader.default_mnc_len = 3;
    let out = import_with(store, &e.factory(), &csv_of_subs([&mnc3]), &opts)
        .await
        .unwrap();
    assert_eq!(out.summary.imported, 1, "{:?}", out.summary);
    // No PPRs.
    let plain = Sub::new(52);
    e.import(&[&plain]).await;

    let mut euicc = sim_euicc(&e.pki);
    for s in [&mnc2, &mnc3, &plain] {
        let mid = e.release(&s.iccid).await;
        let out = e.download(&mut euicc, &mid).await;
        assert_eq!(out.iccid, s.iccid);
    }
    let installed = &euicc.state().profiles;
    // (ICCID, profilePolicyRules bits, profileOwner mcc_mnc) of each installed profile.
    type Installed<'a> = (&'a str, Option<Vec<u32>>, Option<&'a str>);
    let got: Vec<Installed> = installed
        .iter()
        .map(|p| {
            (
                p.iccid.as_str(),
                p.profile_policy_rules.clone(),
                p.profile_owner_mcc_mnc.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (mnc2.iccid.as_str(), Some(vec![2]), Some("00F110")),
            (mnc3.iccid.as_str(), Some(vec![2]), Some("130014")),
            (plain.iccid.as_str(), None, None),
        ]
    );
    // The StoreMetadataRequest as received, decoded.
    let meta = rsp_asn1::bpp::StoreMetadataRequest::decode(&installed[0].store_metadata).unwrap();
    let owner = meta.profile_owner.unwrap();
    assert_eq!(owner.mcc_mnc, [0x00, 0xF1, 0x10]);
    assert_eq!((owner.gid1, owner.gid2), (None, None));
    assert_eq!(
        meta.profile_policy_rules,
        Some(vec![rsp_asn1::common::ppr_ids::PPR2])
    );
    e.server.stop().await;
}

// ------------------------------------------------------------------ 13. rows changed behind the key

/// What a sealed record that does not open (another row's, tampered) fails with.
const DOES_NOT_OPEN: &str =
    "sealed blob failed authentication (wrong record, tampered data or wrong key)";

/// A connection of its own to the database of `db`, writing rows behind the store's back
/// (as someone with write access to the database but not the key could).
async fn raw_pool(db: &Db) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&db.url).await.unwrap()
}

/// The IMSI stored beside the secrets record of `iccid`.
async fn raw_imsi(raw: &sqlx::AnyPool, iccid: &str) -> String {
    sqlx::query_scalar("SELECT imsi FROM profile_secrets WHERE iccid = $1")
        .bind(iccid.to_owned())
        .fetch_one(raw)
        .await
        .unwrap()
}

async fn raw_set_imsi(raw: &sqlx::AnyPool, iccid: &str, imsi: &str) {
    let done = sqlx::query("UPDATE profile_secrets SET imsi = $1 WHERE iccid = $2")
        .bind(imsi.to_owned())
        .bind(iccid.to_owned())
        .execute(raw)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1, "{iccid}");
}

/// Swaps the IMSIs stored beside the secrets records of `a` and `b` (through a temporary
/// value: the IMSI column is UNIQUE).
async fn raw_swap_imsis(raw: &sqlx::AnyPool, a: &str, b: &str) {
    let (imsi_a, imsi_b) = (raw_imsi(raw, a).await, raw_imsi(raw, b).await);
    raw_set_imsi(raw, a, "swapping").await;
    raw_set_imsi(raw, b, &imsi_a).await;
    raw_set_imsi(raw, a, &imsi_b).await;
}

/// The sealed secrets record of `iccid` as stored.
async fn raw_sealed(raw: &sqlx::AnyPool, iccid: &str) -> Vec<u8> {
    sqlx::query_scalar("SELECT sealed FROM profile_secrets WHERE iccid = $1")
        .bind(iccid.to_owned())
        .fetch_one(raw)
        .await
        .unwrap()
}

/// Stores `sealed` as the secrets record of `iccid`, its DEK id left as it is.
async fn raw_set_sealed(raw: &sqlx::AnyPool, iccid: &str, sealed: &[u8]) {
    let done = sqlx::query("UPDATE profile_secrets SET sealed = $1 WHERE iccid = $2")
        .bind(sealed.to_vec())
        .bind(iccid.to_owned())
        .execute(raw)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1, "{iccid}");
}

/// A sealed secrets record binds the IMSI stored beside it in the clear: with the IMSIs of
/// two rows swapped in the database, neither record opens and neither package is made (an
/// error, not a package with another subscriber's IMSI); swapped back, both open again.
async fn rejects_swapped_imsis(dir: &Path, db: &Db) {
    let (store, factory) = open(dir, db).await;
    add_type(&factory, TYPE).await;
    let (a, b) = (Sub::new(60), Sub::new(61));
    import_all(&store, &factory, [&a, &b], false, 10).await;
    let raw = raw_pool(db).await;

    raw_swap_imsis(&raw, &a.iccid, &b.iccid).await;
    for (s, other) in [(&a, &b), (&b, &a)] {
        let sealed = store.get_sealed_secrets(&s.iccid).await.unwrap().unwrap();
        assert_eq!(sealed.imsi, other.imsi, "swapped");
        assert_eq!(sealed.dek_id, 1);
        let err = factory
            .open_secrets(&sealed)
            .await
            .expect_err("a record beside another row's IMSI does not open");
        assert!(
            matches!(err, FactoryError::Vault(VaultError::Decrypt)),
            "{err:?}"
        );
        assert_eq!(err.to_string(), DOES_NOT_OPEN);
        let p = store.get_profile(&s.iccid).await.unwrap().unwrap();
        let err = factory
            .upp_for(&p)
            .await
            .expect_err("no package with another row's IMSI");
        assert!(
            matches!(err, FactoryError::Vault(VaultError::Decrypt)),
            "{err:?}"
        );
        assert_eq!(err.to_string(), DOES_NOT_OPEN);
    }

    // Swapped back, both open again, also in a new process.
    raw_swap_imsis(&raw, &a.iccid, &b.iccid).await;
    raw.close().await;
    let fresh = open_factory(&store, &dir.join("vault.kek")).await.unwrap();
    for f in [&factory, &fresh] {
        assert_opens(&store, f, [&a, &b], Some(1)).await;
        for s in [&a, &b] {
            let p = store.get_profile(&s.iccid).await.unwrap().unwrap();
            let upp = f.upp_for(&p).await.unwrap();
            assert_eq!(Upp::decode(&upp).unwrap().imsi().unwrap(), s.imsi);
        }
    }
    store.close().await;
}

/// A DEK rotation does not stop at a record that does not open (tampered): it re-seals
/// the others, keeps that one as it is, and names it in its error; the new DEK is active
/// and the old one is kept (still in use). Once the record is repaired, `reseal_all`
/// (`smdpp keys reseal`) re-seals it, and the old DEK can be retired.
async fn rotation_skips_and_names_records_that_do_not_open(dir: &Path, db: &Db) {
    let (store, factory) = open(dir, db).await;
    add_type(&factory, TYPE).await;
    let subs: Vec<Sub> = (70..=72).map(Sub::new).collect();
    import_all(&store, &factory, &subs, false, 10).await;
    let raw = raw_pool(db).await;

    // The middle row's ciphertext, one byte flipped; its DEK id kept.
    let bad = &subs[1];
    let original = raw_sealed(&raw, &bad.iccid).await;
    let mut tampered = original.clone();
    tampered[HEADER_LEN + NONCE_LEN] ^= 0x01;
    raw_set_sealed(&raw, &bad.iccid, &tampered).await;
    let sealed = store.get_sealed_secrets(&bad.iccid).await.unwrap().unwrap();
    assert_eq!(
        (sealed.dek_id, sealed.sealed.as_slice()),
        (1, &tampered[..])
    );
    let err = factory.open_secrets(&sealed).await.unwrap_err();
    assert_eq!(err.to_string(), DOES_NOT_OPEN);

    let mut progress = Vec::new();
    let err = factory
        .rotate_dek(|n| progress.push(n))
        .await
        .expect_err("a record that does not open is reported");
    assert!(matches!(err, FactoryError::Keys(_)), "{err:?}");
    // The 2 other secrets records and the template of TYPE were re-sealed.
    assert_eq!(
        err.to_string(),
        format!(
            "1 record could not be re-sealed (they do not open): secrets of {}; 3 others \
             were; data-encryption key 2 is active; repair or remove them and run \
             `smdpp keys reseal`",
            bad.iccid
        )
    );
    assert_eq!(progress.last(), Some(&3));
    assert_eq!(dek_ids(&store).await, vec![1, 2]);
    assert_eq!(factory.vault().active_dek_id(), 2);
    assert_opens(&store, &factory, [&subs[0], &subs[2]], Some(2)).await;
    let row = store.get_profile_type(TYPE).await.unwrap().unwrap();
    assert_eq!(SealedBlob::parse(&row.template).unwrap().dek_id(), 2);
    let sealed = store.get_sealed_secrets(&bad.iccid).await.unwrap().unwrap();
    assert_eq!(
        (sealed.dek_id, sealed.sealed.as_slice()),
        (1, &tampered[..]),
        "left as it was"
    );
    // DEK 1 still seals it: not retired.
    assert_eq!(factory.retire_unused().await.unwrap(), Vec::<u32>::new());
    // Again (`smdpp keys reseal`): the same record named, nothing else to do.
    let err = factory.reseal_all(|_| {}).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "1 record could not be re-sealed (they do not open): secrets of {}; 0 others \
             were; data-encryption key 2 is active; repair or remove them and run \
             `smdpp keys reseal`",
            bad.iccid
        )
    );

    // Repaired, the record is re-sealed by `reseal_all` (a new process), and DEK 1 retired.
    raw_set_sealed(&raw, &bad.iccid, &original).await;
    raw.close().await;
    let fresh = open_factory(&store, &dir.join("vault.kek")).await.unwrap();
    assert_eq!(fresh.reseal_all(|_| {}).await.unwrap(), 1);
    assert_opens(&store, &fresh, &subs, Some(2)).await;
    assert_eq!(fresh.reseal_all(|_| {}).await.unwrap(), 0);
    assert_eq!(fresh.retire_unused().await.unwrap(), vec![1]);
    assert_eq!(dek_ids(&store).await, vec![2]);
    assert_opens(&store, &fresh, &subs, Some(2)).await;
    store.close().await;
}

// ------------------------------------------------------------------ runners

both_backends!(
    import_good_rows_and_report_bad_ones,
    all_or_nothing_imports_none_when_a_row_is_bad,
    all_or_nothing_imports_all_when_every_row_is_good,
    rerunning_an_import_is_harmless,
    rejects_bad_header,
    rejects_unknown_type,
    rejects_unknown_operator,
    rejects_every_row_of_another_network,
    virtual_euicc_downloads_an_imported_profile,
    es2_download_order_by_type_delivers_an_imported_profile,
    asn1tools_decodes_a_generated_upp,
    dek_rotation_reseals_everything_while_serving,
    rotation_keeps_every_old_dek_still_in_use,
    retire_deletes_only_unused_old_deks,
    wrong_or_missing_kek_file_is_refused,
    rejects_reimport_with_changed_secrets,
    rejects_rows_that_do_not_fit_the_template,
    running_server_opens_a_template_resealed_by_a_rotation,
    retire_keeps_a_dek_referenced_by_the_foreign_key,
    rejects_a_package_stored_in_the_clear,
    metadata_carries_profile_owner_with_pprs,
    rejects_swapped_imsis,
    rotation_skips_and_names_records_that_do_not_open;
    // The raw database file is what a copy of the disk shows.
    sqlite_only: raw_database_file_reveals_no_secret,
    template_is_sealed_at_rest,
);
