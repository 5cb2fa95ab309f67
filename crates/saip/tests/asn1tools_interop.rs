//! Interoperability with Python asn1tools compiled from `PE_Definitions-3.3.1.asn`: every
//! TS.48 profile, personalized by this crate (new ICCID, IMSI, Ki, OPc, PIN1), is split
//! into PEs; asn1tools decodes each as `ProfileElement`, must find the new values at their
//! places (ProfileHeader.iccid, mf.ef-iccid, usim.ef-imsi, akaParameter key/opc, pinCodes)
//! and must re-encode each PE to identical bytes.
//!
//! Without python3 + asn1tools the test prints a skip notice, unless
//! `SMDPP_REQUIRE_INTEROP=1`, in which case it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod asn1tools;

use saip::{Upp, bcd};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/profiles/ts48");

#[test]
fn asn1tools_decodes_personalized_pes() {
    if !asn1tools::ready("asn1tools_decodes_personalized_pes") {
        return;
    }
    let iccid = "8949000000000000017";
    let imsi = "262011234567890";
    let ki: Vec<u8> = (0..16).map(|i| 0x10 + i).collect();
    let opc: Vec<u8> = (0..16).map(|i| 0xC0 ^ i).collect();
    let pin1 = bcd::pin_from_digits("2468").unwrap();

    let mut files: Vec<_> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "der"))
        .collect();
    files.sort();
    let mut upps = Vec::new();
    for p in &files {
        let mut upp = Upp::decode(&std::fs::read(p).unwrap()).unwrap();
        upp.set_iccid(iccid).unwrap();
        upp.set_imsi(imsi).unwrap();
        upp.set_ki_opc(&ki, &opc).unwrap();
        upp.set_pin(1, pin1).unwrap();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        upps.push(serde_json::json!({"name": name, "pes": asn1tools::split_pes(&upp.encode())}));
    }
    let reply = asn1tools::run(
        asn1tools::PE_SCRIPT,
        &serde_json::json!({"asn": asn1tools::ASN, "upps": upps}),
    );
    let results = reply["upps"].as_array().unwrap();
    assert_eq!(results.len(), files.len());

    let header_iccid = hex::encode(bcd::iccid_to_plain(iccid).unwrap());
    let ef_iccid = hex::encode(bcd::iccid_to_ef(iccid).unwrap());
    let ef_imsi = hex::encode(bcd::imsi_to_ef(imsi).unwrap());
    let mut pe_count = 0;
    for r in results {
        let name = r["name"].as_str().unwrap();
        for (i, pe) in r["pes"].as_array().unwrap().iter().enumerate() {
            assert!(
                pe["error"].is_null(),
                "{name} PE #{i}: asn1tools: {}",
                pe["error"]
            );
            assert_eq!(
                pe["same"], true,
                "{name} PE #{i} ({}): re-encoding differs",
                pe["type"]
            );
            pe_count += 1;
        }
        let v = &r["values"];
        assert_eq!(
            v["header_iccid"],
            header_iccid.as_str(),
            "{name}: header iccid"
        );
        assert_eq!(v["ef_iccid"], ef_iccid.as_str(), "{name}: EF.ICCID");
        assert_eq!(v["ef_imsi"], ef_imsi.as_str(), "{name}: EF.IMSI");
        let aka = v["aka"].as_array().unwrap();
        assert_eq!(aka.len(), 2, "{name}: AKA PEs");
        for a in aka {
            assert_eq!(a["key"], hex::encode(&ki).as_str(), "{name}: Ki");
            assert_eq!(a["opc"], hex::encode(&opc).as_str(), "{name}: OPc");
        }
        let pins = v["pins"].as_array().unwrap();
        assert!(
            pins.iter()
                .any(|p| p[0] == 1 && p[1] == hex::encode(pin1).as_str()),
            "{name}: PIN1"
        );
    }
    eprintln!(
        "asn1tools: {} personalized TS.48 UPPs, {pe_count} PEs decoded and re-encoded identically",
        results.len()
    );
}
