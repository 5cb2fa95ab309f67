//! The virtual eUICC reads the ICCID, IMSI and SPN of the UPP it installs (SAIP), records
//! them with the profile and reports them; a package that is not SAIP installs as before.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use euicc_sim::lpa::{DownloadOptions, Lpa, Transport};
use euicc_sim::state::ProfileStateRec;
use euicc_sim::{Euicc, UppInfo, cli};
use rsp_asn1::download::FinalResult;
use saip::{OperatorKey, PeType, Personalization, Template, Upp};

const ADDR: &str = "smdp.example.com";
const ICCID: &str = "8949001234567890128";
const IMSI: &str = "262011234567890";
const SPN: &str = "Example Mobile";

/// The built-in template personalized with [`ICCID`], [`IMSI`] and [`SPN`] (3GPP TS 35.208
/// test set 1 as Ki / OPc).
fn personalized_upp() -> Vec<u8> {
    let p = Personalization {
        iccid: ICCID.into(),
        imsi: IMSI.into(),
        mnc_len: 2,
        ki: "465b5ce8b199b49faa5f0a2ee238a6bc".into(),
        operator_key: OperatorKey::Opc("cd63cb71954a9f4e48a5994e37a02baf".into()),
        pin1: "4711".into(),
        puk1: "31415926".into(),
        pin2: "0815".into(),
        puk2: "27182818".into(),
        adm1: "16180339".into(),
        spn: Some(SPN.into()),
        home_plmn: None,
        file_overrides: Vec::new(),
    };
    Template::usim_isim_milenage()
        .unwrap()
        .personalize(&p)
        .unwrap()
        .encode()
}

/// ProfileHeader + end PE only (the personalized package's, so the header names [`ICCID`]).
fn header_only_upp() -> Vec<u8> {
    let full = Upp::decode(&personalized_upp()).unwrap();
    let upp = Upp {
        elements: full
            .elements
            .into_iter()
            .filter(|e| matches!(e.pe_type, PeType::Header | PeType::End))
            .collect(),
    };
    assert_eq!(upp.elements.len(), 2);
    upp.encode()
}

/// The in-process download path of the other tests, with a given UPP.
fn install_upp(pki: &rsp_pki::TestPki, euicc: &mut Euicc, tid: &[u8], iccid: &str, upp: &[u8]) {
    let otpk = authenticate_and_prepare(pki, euicc, tid, ADDR);
    let bpp = make_bpp_with_upp(pki, tid, &otpk, &pki.eid, iccid, ADDR, upp);
    let pir = euicc.load_bound_profile_package(&bpp).unwrap();
    let data = pir.profile_installation_result_data.value();
    assert!(
        matches!(data.final_result, FinalResult::Success(_)),
        "{:?}",
        data.final_result
    );
}

#[test]
fn personalized_upp_reports_imsi_iccid_and_spn_after_install() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("euicc.json");
    let mut euicc = euicc_for(&pki);
    euicc.set_path(Some(path.clone()));
    let upp = personalized_upp();
    install_upp(&pki, &mut euicc, &[0x31; 16], ICCID, &upp);
    let want = UppInfo {
        header_iccid: Some(ICCID.into()),
        ef_iccid: Some(ICCID.into()),
        imsi: Some(IMSI.into()),
        ef_spn: Some(SPN.into()),
    };
    let p = &euicc.state().profiles[0];
    assert_eq!(
        (p.iccid.as_str(), p.state),
        (ICCID, ProfileStateRec::Disabled)
    );
    assert_eq!(p.profile_package, upp);
    assert_eq!(p.upp_info, want);
    assert!(p.upp_info.iccid_mismatches(ICCID).is_empty());

    // Persisted in the state file, and read back.
    euicc.save_if_dirty().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(IMSI), "IMSI not in the state file");
    let again = Euicc::open(&path).unwrap();
    assert_eq!(again.state().profiles[0].upp_info, want);

    // The profile list line.
    let line = cli::profile_line(&again.state().profiles[0]);
    assert!(line.starts_with(ICCID), "{line}");
    assert!(
        line.contains(&format!("IMSI {IMSI}  EF.SPN \"{SPN}\"")),
        "{line}"
    );
    assert!(!line.contains("ProfileHeader") && !line.contains("EF.ICCID"));
}

#[test]
fn header_only_upp_installs_without_imsi() {
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    install_upp(&pki, &mut euicc, &[0x32; 16], ICCID, &header_only_upp());
    let p = &euicc.state().profiles[0];
    assert_eq!(
        p.upp_info,
        UppInfo {
            header_iccid: Some(ICCID.into()),
            ..UppInfo::default()
        }
    );
    assert_eq!(p.upp_info.imsi, None);
    let line = cli::profile_line(p);
    assert!(line.ends_with("IMSI -"), "{line}");
}

#[test]
fn non_saip_upp_installs_with_nothing_recorded() {
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    install_upp(&pki, &mut euicc, &[0x33; 16], ICCID, &junk_upp());
    let p = &euicc.state().profiles[0];
    assert!(p.upp_info.is_empty());
    assert_eq!(p.profile_package, junk_upp());
}

#[test]
fn upp_iccid_differing_from_the_metadata_is_shown() {
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    // The metadata names another ICCID than the package.
    let other = "8944000000000000017";
    install_upp(&pki, &mut euicc, &[0x34; 16], other, &personalized_upp());
    let p = &euicc.state().profiles[0];
    assert_eq!(p.iccid, other);
    assert_eq!(p.upp_info.iccid(), Some(ICCID));
    assert_eq!(
        p.upp_info.iccid_mismatches(other),
        [("ProfileHeader ICCID", ICCID), ("EF.ICCID", ICCID)]
    );
    let line = cli::profile_line(p);
    assert!(
        line.contains(&format!("ProfileHeader ICCID {ICCID}  EF.ICCID {ICCID}")),
        "{line}"
    );
}

#[test]
fn state_file_without_upp_info_still_loads_and_is_backfilled() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.json");
    let mut euicc = euicc_for(&pki);
    euicc.set_path(Some(path.clone()));
    install_upp(&pki, &mut euicc, &[0x35; 16], ICCID, &personalized_upp());
    install_upp(
        &pki,
        &mut euicc,
        &[0x36; 16],
        "8944000000000000025",
        &junk_upp(),
    );
    euicc.save_if_dirty().unwrap();
    // Rewrite the file as an older version wrote it: no `upp_info` in the profiles.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for p in v["profiles"].as_array_mut().unwrap() {
        assert!(p.as_object_mut().unwrap().remove("upp_info").is_some());
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let old = Euicc::open(&path).unwrap();
    let profiles = &old.state().profiles;
    assert_eq!(profiles.len(), 2);
    assert_eq!(profiles[0].upp_info.imsi.as_deref(), Some(IMSI));
    assert_eq!(profiles[0].upp_info.ef_spn.as_deref(), Some(SPN));
    assert!(profiles[1].upp_info.is_empty());
}

#[tokio::test]
async fn lpa_download_outcome_and_cli_line_carry_the_imsi() {
    let pki = Arc::new(loopback_pki());
    let dp = Arc::new(Mutex::new(MiniDp::new(pki.clone())));
    {
        let mut d = dp.lock().unwrap();
        d.orders.insert(
            "PERSO".into(),
            Order {
                iccid: ICCID.into(),
                cc: None,
            },
        );
        d.upps.insert("PERSO".into(), personalized_upp());
        d.orders.insert(
            "HEADER".into(),
            Order {
                iccid: "8944000000000000025".into(),
                cc: None,
            },
        );
        d.upps.insert("HEADER".into(), header_only_upp());
    }
    let addr = serve(dp.clone(), false).await;
    let mut euicc = euicc_for(&pki);
    let lpa = Lpa::new(Transport::Http).unwrap();
    let ac = |mid: &str| format!("LPA:1$127.0.0.1:{}${mid}", addr.port());

    let out = lpa
        .download(&mut euicc, &ac("PERSO"), &DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!(out.iccid, ICCID);
    assert_eq!(out.upp_info.imsi.as_deref(), Some(IMSI));
    assert_eq!(out.upp_info.ef_iccid.as_deref(), Some(ICCID));
    assert_eq!(out.upp_info.ef_spn.as_deref(), Some(SPN));
    assert_eq!(
        cli::installed_line(&out),
        format!(
            "installed {ICCID} (Test Operator / Test Profile) in ISD-P {}, IMSI {IMSI}  EF.SPN \"{SPN}\"",
            out.isdp_aid
        )
    );
    // The JSON output is flat.
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["imsi"], IMSI);
    assert_eq!(json["ef_iccid"], ICCID);

    // The header-only package: installed, the ICCID header differs (this order's ICCID is
    // another), no IMSI.
    let out = lpa
        .download(&mut euicc, &ac("HEADER"), &DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!(out.upp_info.imsi, None);
    assert_eq!(
        serde_json::to_value(&out).unwrap()["imsi"],
        serde_json::Value::Null
    );
    let line = cli::installed_line(&out);
    assert!(
        line.ends_with(&format!(", IMSI -  ProfileHeader ICCID {ICCID}")),
        "{line}"
    );
    assert_eq!(euicc.state().profiles.len(), 2);
}
