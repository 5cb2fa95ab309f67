//! Profiles created on demand: a profile type with a generation policy (ICCID range with
//! Luhn digit, IMSI range, OPc random or from the operator's OP) creates a profile when an
//! ES2+ DownloadOrder by profileType finds none Available; the ICCID/IMSI allocation is
//! unique under concurrency (50 concurrent DownloadOrders); an exhausted range is a clear
//! ES2+ error (8.2.5/3.7) and changes nothing. Real HTTPS with mutual TLS to a real server,
//! on SQLite and (when `SMDPP_TEST_PG_URL` is set) PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use common::*;
use rsp_crypto::Curve;
use saip::{OperatorKey, SecretText, TemplateSource};
use serde_json::{Value, json};
use smdpp_service::generate::{GenerationPolicy, parse_range};
use smdpp_service::inventory::{ALL_NOTIFY, build_profile_type};
use smdpp_service::operators::add_operator;
use smdpp_store::ProfileState;

struct Env {
    server: Server,
    op: ClientCert,
}

async fn env(dir: &Path, db: &Db) -> Env {
    let (_pki, s) = pki_settings(dir, db, Curve::NistP256);
    let server = Server::start(s).await;
    let op = client_cert("operator-a.example");
    add_operator(server.store(), "op-a", &op.cert_der, None)
        .await
        .unwrap();
    Env { server, op }
}

fn policy(size: u64, opc_from_op: bool) -> GenerationPolicy {
    GenerationPolicy {
        iccid_first: "894400000000000000".into(),
        imsi_first: "001010000000001".into(),
        mnc_len: 2,
        size,
        opc_from_op,
        pin_digits: 4,
    }
}

const OP: &str = "CDC202D5123E20F62B6D676AC72CB318";

impl Env {
    async fn generating_type(&self, name: &str, size: u64, with_op: bool) {
        let t = build_profile_type(
            name,
            &TemplateSource::usim_isim_milenage(),
            "Gen SP",
            "Generated",
            None,
            None,
            &ALL_NOTIFY,
            &[],
            None,
            None,
        )
        .unwrap();
        let f = self.server.factory();
        f.add_profile_type(&t).await.unwrap();
        let op = SecretText::from(OP);
        f.add_generator(name, &policy(size, with_op), with_op.then_some(&op))
            .await
            .unwrap();
    }

    async fn order(&self, profile_type: &str) -> Value {
        es2_call(
            &self.server,
            "op-a",
            &self.op,
            "downloadOrder",
            json!({"profileType": profile_type}),
        )
        .await
    }
}

fn luhn_ok(iccid: &str) -> bool {
    let digits: Vec<u32> = iccid.chars().map(|c| c.to_digit(10).unwrap()).collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[test]
fn ranges_parse_and_number_with_luhn() {
    assert_eq!(
        parse_range("894400000000000000-894400000000000009", "ICCID", 18..=19).unwrap(),
        ("894400000000000000".to_owned(), 10)
    );
    assert_eq!(
        parse_range("001010000000001..001010000000100", "IMSI", 6..=15).unwrap(),
        ("001010000000001".to_owned(), 100)
    );
    let p = policy(10, false);
    p.validate().unwrap();
    let i0 = p.iccid_at(0).unwrap();
    assert_eq!(i0.len(), 19);
    assert!(i0.starts_with("894400000000000000"));
    assert!(luhn_ok(&i0), "{i0}");
    assert!(luhn_ok(&p.iccid_at(7).unwrap()));
    assert_eq!(p.imsi_at(9).unwrap(), "001010000000010");
}

#[test]
fn rejects_bad_ranges() {
    for (s, msg) in [
        (
            "89440000000000000-89440000000000001",
            "is not 18-19 decimal digits",
        ),
        (
            "894400000000000009-894400000000000000",
            "the last is lower than the first",
        ),
        (
            "8944000000000000000-894400000000000000",
            "same number of digits",
        ),
        ("894400000000000000", "expected FIRST-LAST"),
        (
            "89440000000000000x-894400000000000001",
            "is not 18-19 decimal digits",
        ),
    ] {
        let e = parse_range(s, "ICCID", 18..=19).unwrap_err();
        assert!(e.contains(msg), "{s}: {e}");
    }
    // A range running past its digits.
    let mut p = policy(10, false);
    p.iccid_first = "999999999999999995".into();
    assert_eq!(
        p.validate().unwrap_err(),
        "the range does not fit the ICCID/IMSI digits"
    );
    let mut p = policy(10, false);
    p.mnc_len = 4;
    assert_eq!(p.validate().unwrap_err(), "the MNC length must be 2 or 3");
}

async fn download_order_creates_profiles_on_demand(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    e.generating_type("gen", 100, true).await;
    let p = policy(100, true);
    let mut seen = Vec::new();
    for i in 0..3u64 {
        let v = e.order("gen").await;
        assert_es2_success("downloadOrder", &v);
        let iccid = v["iccid"].as_str().unwrap().to_owned();
        assert_eq!(iccid, p.iccid_at(i).unwrap());
        let prof = e.server.profile(&iccid).await;
        assert_eq!(prof.state, ProfileState::Allocated);
        assert_eq!(prof.operator_id.as_deref(), Some("op-a"));
        assert_eq!(prof.profile_type.as_deref(), Some("gen"));
        seen.push(iccid);
    }
    // Secrets: sealed like imported ones; OPc derived from the OP; random PINs.
    let sealed = e
        .server
        .store()
        .get_sealed_secrets(&seen[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sealed.imsi, "001010000000001");
    let s = e.server.factory().open_secrets(&sealed).await.unwrap();
    let ki: [u8; 16] = hex::decode(s.ki.expose()).unwrap().try_into().unwrap();
    let op: [u8; 16] = hex::decode(OP).unwrap().try_into().unwrap();
    let OperatorKey::Opc(opc) = &s.operator_key else {
        panic!("generated profiles carry OPc");
    };
    assert_eq!(
        hex::decode(opc.expose()).unwrap(),
        saip::milenage::compute_opc(&ki, &op).unwrap()
    );
    assert_eq!(s.pin1.expose().len(), 4);
    assert_eq!(s.puk1.expose().len(), 8);
    assert!(s.adm1.expose().bytes().all(|b| b.is_ascii_digit()));
    let sealed1 = e
        .server
        .store()
        .get_sealed_secrets(&seen[1])
        .await
        .unwrap()
        .unwrap();
    let s1 = e.server.factory().open_secrets(&sealed1).await.unwrap();
    assert_ne!(s.ki.expose(), s1.ki.expose(), "Ki drawn per profile");
    // The sealed record does not contain the Ki in clear.
    assert!(
        !sealed
            .sealed
            .windows(32)
            .any(|w| w.eq_ignore_ascii_case(s.ki.expose().as_bytes()))
    );
    // The profile's history says it was created, then reserved, generated on demand.
    let ev = e.server.store().events_for(&seen[0]).await.unwrap();
    assert_eq!(ev[0].from_state, None);
    assert_eq!(ev[1].to_state, ProfileState::Allocated);
    assert_eq!(ev[1].detail.as_deref(), Some("generated on demand"));

    // A pool generated ahead of time is used first.
    let t = e
        .server
        .store()
        .get_profile_type("gen")
        .await
        .unwrap()
        .unwrap();
    let pool = e
        .server
        .factory()
        .generate(&t, Some("op-a"), 2)
        .await
        .unwrap();
    assert_eq!(pool, vec![p.iccid_at(3).unwrap(), p.iccid_at(4).unwrap()]);
    let v = e.order("gen").await;
    assert_eq!(v["iccid"], json!(pool[0]));
    e.server.stop().await;
}

async fn fifty_concurrent_orders_get_distinct_identifiers(dir: &Path, db: &Db) {
    let e = Arc::new(env(dir, db).await);
    e.generating_type("gen", 1000, false).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let e = Arc::clone(&e);
        tasks.push(tokio::spawn(async move { e.order("gen").await }));
    }
    let mut iccids = HashSet::new();
    let mut imsis = HashSet::new();
    for t in tasks {
        let v = t.await.unwrap();
        assert_es2_success("downloadOrder", &v);
        let iccid = v["iccid"].as_str().unwrap().to_owned();
        let s = e
            .server
            .store()
            .get_sealed_secrets(&iccid)
            .await
            .unwrap()
            .unwrap();
        assert!(imsis.insert(s.imsi), "IMSI allocated twice");
        assert!(iccids.insert(iccid), "ICCID allocated twice");
    }
    assert_eq!(iccids.len(), 50);
    let g = e
        .server
        .store()
        .get_generator("gen")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.next_index, 50, "one index per order, none lost");
    match Arc::try_unwrap(e) {
        Ok(e) => {
            e.server.stop().await;
        }
        Err(_) => panic!("env still shared"),
    }
}

async fn rejects_range_exhausted(dir: &Path, db: &Db) {
    let e = env(dir, db).await;
    e.generating_type("small", 2, false).await;
    for _ in 0..2 {
        assert_es2_success("downloadOrder", &e.order("small").await);
    }
    let v = e.order("small").await;
    let fes = &v["header"]["functionExecutionStatus"];
    assert_eq!(fes["status"], "Failed", "{v}");
    assert_eq!(fes["statusCodeData"]["subjectCode"], "8.2.5");
    assert_eq!(fes["statusCodeData"]["reasonCode"], "3.7");
    assert_eq!(
        fes["statusCodeData"]["message"],
        "the ICCID/IMSI range of this Profile Type is exhausted"
    );
    // Nothing was created by the refused order.
    let list = e
        .server
        .store()
        .list_profiles(&smdpp_store::ProfileFilter {
            profile_type: Some("small".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    e.server.stop().await;
}

both_backends!(
    download_order_creates_profiles_on_demand,
    fifty_concurrent_orders_get_distinct_identifiers,
    rejects_range_exhausted,
);
