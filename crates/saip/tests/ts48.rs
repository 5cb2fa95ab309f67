//! The GSMA TS.48 test profiles (`../shared/profiles/ts48/*.der`): every file decodes, lists
//! its PEs, yields its ICCID and IMSI, round-trips byte for byte, and personalizes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use saip::{PeBody, PeType, ProfileElement, Upp, bcd};

fn corpus_dir() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/profiles/ts48")
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("TS.48 corpus directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "der"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Offsets where each PE ends.
fn pe_boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut r = rsp_asn1::Reader::new(bytes);
    let mut ends = Vec::new();
    while !r.is_empty() {
        r.read().unwrap();
        ends.push(bytes.len() - r.remaining().len());
    }
    ends
}

#[test]
fn every_ts48_profile_decodes_lists_and_round_trips() {
    let files = corpus();
    assert_eq!(
        files.len(),
        18,
        "expected the 18 TS.48 profiles in {}",
        corpus_dir()
    );
    for (name, bytes) in &files {
        let upp = Upp::decode(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        upp.check_complete().unwrap();
        let types: Vec<&str> = upp.summary().iter().map(|p| p.pe_type.name()).collect();
        let iccid = upp.iccid().unwrap();
        let ef_iccid = upp.ef_iccid().unwrap();
        let imsi = upp.imsi().unwrap();
        assert_eq!(iccid, ef_iccid, "{name}: header ICCID vs EF.ICCID");
        assert!(
            iccid.starts_with("89") && iccid.len() >= 19 && imsi.len() == 15,
            "{name}: ICCID {iccid}, IMSI {imsi}"
        );
        eprintln!(
            "{name}: ICCID {iccid} IMSI {imsi} PEs {}: {types:?}",
            types.len()
        );
        for t in [
            "header", "mf", "usim", "opt-usim", "isim", "csim", "pinCodes", "pukCodes",
        ] {
            assert!(types.contains(&t), "{name}: no {t} PE");
        }
        assert_eq!(types.last(), Some(&"end"));
        assert!(
            upp.elements
                .iter()
                .all(|p| !matches!(p.body, PeBody::Raw(_))),
            "{name}: a PE fell back to raw"
        );
        // Whole package and each PE alone round-trip byte for byte.
        assert!(upp.encode() == *bytes, "{name}: re-encoding differs");
        let mut start = 0;
        for (i, end) in pe_boundaries(bytes).into_iter().enumerate() {
            let pe_bytes = &bytes[start..end];
            let pe = ProfileElement::decode(pe_bytes).unwrap();
            assert_eq!(pe, upp.elements[i]);
            assert!(pe.encode() == pe_bytes, "{name}: PE #{i} differs");
            start = end;
        }
    }
}

#[test]
fn every_ts48_profile_personalizes() {
    let ki = [0xA5u8; 16];
    let opc: [u8; 16] = core::array::from_fn(|i| 0xF0 ^ i as u8);
    for (name, bytes) in corpus() {
        let mut upp = Upp::decode(&bytes).unwrap();
        let before = upp.clone();
        upp.set_iccid("8949000000000000017").unwrap();
        upp.set_imsi("262011234567890").unwrap();
        assert_eq!(
            upp.set_ki_opc(&ki, &opc).unwrap(),
            2,
            "{name}: USIM + ISIM AKA PEs"
        );
        assert!(
            upp.set_pin(1, bcd::pin_from_digits("4321").unwrap())
                .unwrap()
                >= 1
        );
        assert_eq!(
            upp.set_puk(1, bcd::pin_from_digits("87654321").unwrap())
                .unwrap(),
            1
        );
        let encoded = upp.encode();
        assert_ne!(encoded, bytes);

        let back = Upp::decode(&encoded).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back, upp);
        assert_eq!(back.iccid().unwrap(), "8949000000000000017");
        assert_eq!(back.ef_iccid().unwrap(), "8949000000000000017");
        assert_eq!(back.imsi().unwrap(), "262011234567890");
        for (_, aka) in back.aka_parameters() {
            let p = aka.algo_parameter().unwrap();
            assert_eq!(p.key.expose(), ki);
            assert_eq!(p.opc.expose(), opc);
        }
        assert_eq!(back.pin(1).unwrap().expose(), b"4321\xFF\xFF\xFF\xFF");
        assert_eq!(back.puk(1).unwrap().expose(), b"87654321");
        assert_eq!(back.encode(), encoded);

        // Only the PEs that carry these values changed.
        for (i, (a, b)) in before.elements.iter().zip(&back.elements).enumerate() {
            let touched = matches!(
                a.pe_type,
                PeType::Header
                    | PeType::Mf
                    | PeType::Usim
                    | PeType::AkaParameter
                    | PeType::PinCodes
                    | PeType::PukCodes
            );
            if !touched {
                assert_eq!(a.encode(), b.encode(), "{name}: PE #{i} changed");
            }
        }
    }
}

#[test]
fn debug_output_redacts_secrets() {
    let (_, bytes) = corpus().into_iter().next().unwrap();
    let mut upp = Upp::decode(&bytes).unwrap();
    upp.set_ki_opc(&[0xA5; 16], &[0x5A; 16]).unwrap();
    let dbg = format!("{upp:?}");
    assert!(dbg.contains("redacted"));
    assert!(!dbg.contains("165, 165"), "Ki bytes in Debug output");
    assert!(!dbg.contains("90, 90"), "OPc bytes in Debug output");
    // PIN '9999' and PUK '11111111' (ASCII) must not appear either.
    assert!(!dbg.contains("57, 57, 57, 57"));
    assert!(!dbg.contains("49, 49, 49, 49"));
}

#[test]
fn truncation_sweep() {
    let path = format!("{}/TS48v5_SAIP2.3_NoBERTLV.der", corpus_dir());
    let bytes = std::fs::read(path).unwrap();
    let ends = pe_boundaries(&bytes);
    for len in 0..bytes.len() {
        let prefix = &bytes[..len];
        let res = Upp::decode(prefix);
        match ends.iter().position(|&e| e == len) {
            // A prefix ending exactly after PE #k is a valid, shorter (incomplete) UPP.
            Some(k) => {
                let upp = res.unwrap_or_else(|e| panic!("prefix {len} at a PE boundary: {e}"));
                assert_eq!(upp.elements.len(), k + 1);
                assert!(upp.check_complete().is_err());
                assert_eq!(upp.encode(), prefix);
            }
            None => {
                let err = res.expect_err("a prefix inside a PE must fail");
                let msg = err.to_string();
                assert!(msg.starts_with("PE #") || msg.starts_with("UPP"), "{msg}");
            }
        }
    }
}

#[test]
fn corruption_sweep_never_panics_and_accepted_inputs_round_trip() {
    let path = format!("{}/TS48v2_SAIP2.3_BERTLV.der", corpus_dir());
    let bytes = std::fs::read(path).unwrap();
    let (mut accepted, mut rejected) = (0usize, 0usize);
    // One flip per byte position, the mask cycling through low bit, high bit, all bits
    // (every position is hit; a full 3x sweep takes a minute in debug builds).
    for i in 0..bytes.len() {
        {
            let x = [0x01u8, 0x80, 0xFF][i % 3];
            let mut v = bytes.clone();
            v[i] ^= x;
            match Upp::decode(&v) {
                Ok(upp) => {
                    accepted += 1;
                    assert!(
                        upp.encode() == v,
                        "accepted corruption at {i} ^ {x:02X} does not round-trip"
                    );
                }
                Err(e) => {
                    rejected += 1;
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
    eprintln!("corruption sweep: {accepted} accepted (valid values), {rejected} rejected");
    assert!(rejected > 0 && accepted > 0);
}

#[test]
fn error_names_pe_index_type_and_path() {
    let path = format!("{}/TS48v5_SAIP2.3_NoBERTLV.der", corpus_dir());
    let mut bytes = std::fs::read(path).unwrap();
    let ends = pe_boundaries(&bytes);
    let upp = Upp::decode(&bytes).unwrap();
    let usim = upp
        .summary()
        .iter()
        .position(|p| p.pe_type == PeType::Usim)
        .unwrap();
    // USIM PE: B3 82 LL LL | A0 05 80 00 81 01 xx | 81 06 <templateID>
    let start = ends[usim - 1];
    assert_eq!(bytes[start + 11], 0x81);
    bytes[start + 11] = 0x80;
    let msg = Upp::decode(&bytes).unwrap_err().to_string();
    assert_eq!(
        msg,
        format!("PE #{usim} (usim) / templateID: expected tag 81, found 80")
    );
}
