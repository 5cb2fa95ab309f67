//! Interoperability of the project's template with Python asn1tools compiled from
//! `PE_Definitions-3.3.1.asn`: the personalized package is split into PEs, asn1tools decodes
//! each as `ProfileElement`, re-encodes it identically, and finds ICCID, IMSI, Ki/OPc, PINs,
//! PUKs and the ISIM identities at their places.
//!
//! Without python3 + asn1tools the test prints a skip notice, unless
//! `SMDPP_REQUIRE_INTEROP=1`, in which case it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod asn1tools;

use saip::{OperatorKey, Personalization, Template, bcd};

#[test]
fn asn1tools_decodes_personalized_template() {
    if !asn1tools::ready("asn1tools_decodes_personalized_template") {
        return;
    }
    let ki = "000102030405060708090a0b0c0d0e0f";
    let opc = "f0e0d0c0b0a090807060504030201000";
    let p = Personalization {
        iccid: "8949001234567890128".into(),
        imsi: "262011234567890".into(),
        mnc_len: 2,
        ki: ki.into(),
        operator_key: OperatorKey::Opc(opc.into()),
        pin1: "4711".into(),
        puk1: "31415926".into(),
        pin2: "0815".into(),
        puk2: "27182818".into(),
        adm1: "16180339".into(),
        spn: Some("Example".into()),
        home_plmn: Some("26201".into()),
        file_overrides: Vec::new(),
    };
    let upp = Template::usim_isim_milenage()
        .unwrap()
        .personalize(&p)
        .unwrap();
    let reply = asn1tools::decode_pes(&upp.encode());
    let v = &reply["values"];
    assert_eq!(
        v["header_iccid"],
        hex::encode(bcd::iccid_to_plain(&p.iccid).unwrap()).as_str()
    );
    assert_eq!(
        v["services"],
        serde_json::json!(["isim", "milenage", "usim"])
    );
    assert_eq!(v["template_ids"]["usim"], "2.23.143.1.2.4");
    let f = &v["files"];
    assert_eq!(
        f["mf/ef-iccid"],
        hex::encode(bcd::iccid_to_ef(&p.iccid).unwrap()).as_str()
    );
    assert_eq!(f["usim/ef-imsi"], "082926102143658709");
    assert_eq!(f["usim/ef-ad"], "00000002");
    assert_eq!(
        &f["opt-usim/ef-hplmnwact"].as_str().unwrap()[..10],
        "62f210c880"
    );
    let impi = f["isim/ef-impi"].as_str().unwrap();
    let want = hex::encode("262011234567890@ims.mnc001.mcc262.3gppnetwork.org");
    assert!(impi.starts_with(&format!("8031{want}")), "{impi}");
    let aka = v["aka"].as_array().unwrap();
    assert_eq!(aka.len(), 2);
    for a in aka {
        assert_eq!(a["algorithm"], 1);
        assert_eq!(a["key"], ki);
        assert_eq!(a["opc"], opc);
    }
    let pins = v["pins"].as_array().unwrap();
    let has = |list: &Vec<serde_json::Value>, k: u64, val: &str| {
        list.iter().any(|p| p[0] == k && p[1] == val)
    };
    assert!(has(pins, 1, "34373131ffffffff"), "PIN1 {pins:?}");
    assert!(has(pins, 0x81, "30383135ffffffff"), "PIN2");
    assert!(has(pins, 0x0A, &hex::encode("16180339")), "ADM1");
    let puks = v["puks"].as_array().unwrap();
    assert!(has(puks, 1, &hex::encode("31415926")), "PUK1");
    assert!(has(puks, 0x81, &hex::encode("27182818")), "PUK2");
    assert_eq!(v["sd_instance_aid"], "a000000151000000");
    eprintln!(
        "asn1tools: {} template PEs decoded and re-encoded identically",
        reply["pes"].as_array().unwrap().len()
    );
}
