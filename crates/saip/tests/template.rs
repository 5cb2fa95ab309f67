//! The built-in template: compiles, round-trips, personalizes; every validation rule
//! refuses what it should; secrets never show in `Debug` or error messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use saip::milenage::{compute_opc, verify_milenage};
use saip::personalize::{check_iccid, code_secret, iccid_with_luhn};
use saip::{
    FileOverride, OperatorKey, PeBody, PeType, Personalization, PersonalizationError, Template,
    TemplateError, TemplateSource, Upp, bcd,
};

// 3GPP TS 35.208 test set 1 as the subscriber's Ki / OP.
const KI: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
const OP: &str = "cdc202d5123e20f62b6d676ac72cb318";
const OPC: &str = "cd63cb71954a9f4e48a5994e37a02baf";
const RAND: &str = "23553cbe9637a89d218ae64dae47bf35";
const RES: &str = "a54211d5e3ba50bf";

fn template() -> Template {
    Template::usim_isim_milenage().unwrap()
}

fn perso() -> Personalization {
    Personalization {
        iccid: "8949001234567890128".into(),
        imsi: "262011234567890".into(),
        mnc_len: 2,
        ki: KI.into(),
        operator_key: OperatorKey::Opc(OPC.into()),
        pin1: "4711".into(),
        puk1: "31415926".into(),
        pin2: "0815".into(),
        puk2: "27182818".into(),
        adm1: "16180339".into(),
        spn: Some("Example Mobile".into()),
        home_plmn: None,
        file_overrides: Vec::new(),
    }
}

fn content(upp: &Upp, pe: PeType, file: &str) -> Vec<u8> {
    upp.template_file(pe, file)
        .unwrap()
        .content()
        .unwrap()
        .to_vec()
}

#[test]
fn builtin_template_compiles_and_round_trips() {
    let t = template();
    assert_eq!(t.name(), "usim-isim-milenage");
    let upp = t.upp();
    upp.check_complete().unwrap();
    let der = upp.encode();
    let again = Upp::decode(&der).unwrap();
    assert_eq!(&again, upp);
    assert_eq!(again.encode(), der);
    let types: Vec<&str> = upp.summary().iter().map(|p| p.pe_type.name()).collect();
    assert_eq!(
        types,
        [
            "header",
            "mf",
            "pukCodes",
            "pinCodes",
            "usim",
            "opt-usim",
            "pinCodes",
            "akaParameter",
            "isim",
            "pinCodes",
            "akaParameter",
            "securityDomain",
            "end"
        ]
    );
    // Identifications are unique and ascending.
    let ids: Vec<u16> = upp
        .summary()
        .iter()
        .filter_map(|p| p.identification)
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let h = upp.header().unwrap();
    assert_eq!(h.mandatory_services.names(), ["usim", "isim", "milenage"]);
    assert_eq!(upp.iccid().unwrap(), "8999000000000000005");
    assert_eq!(upp.ef_iccid().unwrap(), "8999000000000000005");
    assert_eq!(upp.imsi().unwrap(), "001010000000001");
    // Compiling twice gives the same bytes.
    assert_eq!(template().upp().encode(), der);
    eprintln!("template: {} PEs, {} bytes", upp.elements.len(), der.len());
}

/// Our file IDs agree with the TS.48 reference profiles wherever both define the same
/// file of the same template PE (ADF temporary IDs excepted). Read-only comparison.
#[test]
fn template_file_ids_agree_with_ts48() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/profiles/ts48");
    let path = format!("{dir}/TS48v5_SAIP2.3_NoBERTLV.der");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!("SKIP: {path} not readable");
        return;
    };
    let reference = Upp::decode(&bytes).unwrap();
    let ours = template();
    let mut compared = 0;
    for pe in &ours.upp().elements {
        let PeBody::Template(t) = &pe.body else {
            continue;
        };
        for f in &t.files {
            let name = f.name.unwrap();
            if name.starts_with("adf-") {
                continue;
            }
            let Some(our_fid) = f.file.fcp().and_then(|c| c.file_id) else {
                continue;
            };
            let Some(theirs) = reference.template_file(pe.pe_type, name) else {
                continue;
            };
            if let Some(fid) = theirs.fcp().and_then(|c| c.file_id) {
                assert_eq!(our_fid, fid, "{} / {name}", pe.pe_type.name());
                compared += 1;
            }
        }
    }
    assert!(compared >= 15, "only {compared} files compared");
}

#[test]
fn personalized_upp_has_the_values_at_their_places() {
    let t = template();
    let p = perso();
    let upp = t.personalize(&p).unwrap();
    // Decodes with our codec.
    let upp = Upp::decode(&upp.encode()).unwrap();
    upp.check_complete().unwrap();
    assert_eq!(upp.iccid().unwrap(), p.iccid);
    assert_eq!(upp.ef_iccid().unwrap(), p.iccid);
    assert_eq!(
        upp.header().unwrap().iccid,
        bcd::iccid_to_plain(&p.iccid).unwrap()
    );
    assert_eq!(upp.imsi().unwrap(), p.imsi);
    assert_eq!(
        content(&upp, PeType::Usim, "ef-imsi"),
        [0x08, 0x29, 0x26, 0x10, 0x21, 0x43, 0x65, 0x87, 0x09]
    );
    assert_eq!(
        content(&upp, PeType::Usim, "ef-ad"),
        [0x00, 0x00, 0x00, 0x02]
    );
    assert_eq!(content(&upp, PeType::Usim, "ef-acc"), [0x00, 0x01]);
    let spn = content(&upp, PeType::Usim, "ef-spn");
    assert_eq!(spn.len(), 17);
    assert_eq!(spn[0], 0x01);
    assert_eq!(&spn[1..15], b"Example Mobile");
    assert_eq!(&spn[15..], [0xFF, 0xFF]);
    let hplmn = content(&upp, PeType::OptUsim, "ef-hplmnwact");
    assert_eq!(&hplmn[..5], [0x62, 0xF2, 0x10, 0xC8, 0x80]);
    assert_eq!(&hplmn[5..], [0xFF, 0xFF, 0xFF, 0x00, 0x00]);

    let domain = "ims.mnc001.mcc262.3gppnetwork.org";
    let impi = format!("262011234567890@{domain}");
    let tlv = |s: &str, size: usize| {
        let mut v = vec![0x80, s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v.resize(size, 0xFF);
        v
    };
    assert_eq!(content(&upp, PeType::Isim, "ef-impi"), tlv(&impi, 64));
    assert_eq!(content(&upp, PeType::Isim, "ef-domain"), tlv(domain, 48));
    let impu = content(&upp, PeType::Isim, "ef-impu");
    assert_eq!(&impu[..64], tlv(&format!("sip:{impi}"), 64));

    let aka = upp.aka_parameters();
    assert_eq!(aka.len(), 2);
    for (_, a) in aka {
        let ap = a.algo_parameter().unwrap();
        assert_eq!(ap.algorithm_id, saip::AlgorithmId::Milenage);
        assert_eq!(hex::encode(ap.key.expose()), KI);
        assert_eq!(hex::encode(ap.opc.expose()), OPC);
        // The written Ki/OPc answer the TS 35.208 set 1 challenge.
        let ki: [u8; 16] = ap.key.expose().try_into().unwrap();
        let opc: [u8; 16] = ap.opc.expose().try_into().unwrap();
        let rand: [u8; 16] = hex::decode(RAND).unwrap().try_into().unwrap();
        assert!(verify_milenage(&ki, &opc, &rand, &hex::decode(RES).unwrap()).unwrap());
    }
    assert_eq!(upp.pin(0x01), code_secret("4711").as_ref());
    assert_eq!(upp.pin(0x81), code_secret("0815").as_ref());
    assert_eq!(upp.pin(0x0A), code_secret("16180339").as_ref());
    assert_eq!(upp.puk(0x01), code_secret("31415926").as_ref());
    assert_eq!(upp.puk(0x81), code_secret("27182818").as_ref());
    // Both PIN2 definitions (USIM and ISIM) are written.
    let pin2_count = upp
        .elements
        .iter()
        .filter_map(|e| match &e.body {
            PeBody::PinCodes(p) => Some(p),
            _ => None,
        })
        .flat_map(|p| match &p.codes {
            saip::PinCodesChoice::PinConfig(l) => l.clone(),
            saip::PinCodesChoice::FilePath(_) => Vec::new(),
        })
        .filter(|c| c.key_reference == 0x81 && Some(&c.pin_value) == code_secret("0815").as_ref())
        .count();
    assert_eq!(pin2_count, 2);
    // The template itself is untouched.
    assert_eq!(t.upp().imsi().unwrap(), "001010000000001");
}

#[test]
fn three_digit_mnc_op_derivation_hex_adm_and_overrides() {
    let t = template();
    let mut p = perso();
    p.imsi = "310410123456789".into();
    p.mnc_len = 3;
    p.home_plmn = Some("310410".into());
    p.operator_key = OperatorKey::Op(OP.into());
    p.adm1 = "0102030405060708".into();
    p.spn = None;
    p.file_overrides = vec![FileOverride {
        pe: PeType::Usim,
        file: "ef-fplmn".into(),
        content: hex::decode("13F021FFFFFFFFFFFFFFFFFF").unwrap(),
    }];
    let upp = t.personalize(&p).unwrap();
    assert_eq!(
        content(&upp, PeType::Usim, "ef-ad"),
        [0x00, 0x00, 0x00, 0x03]
    );
    assert_eq!(content(&upp, PeType::Usim, "ef-acc"), [0x02, 0x00]);
    assert_eq!(
        &content(&upp, PeType::OptUsim, "ef-hplmnwact")[..3],
        [0x13, 0x00, 0x14]
    );
    let impi = content(&upp, PeType::Isim, "ef-impi");
    assert!(
        String::from_utf8_lossy(&impi)
            .contains("310410123456789@ims.mnc410.mcc310.3gppnetwork.org")
    );
    let ki: [u8; 16] = hex::decode(KI).unwrap().try_into().unwrap();
    let op: [u8; 16] = hex::decode(OP).unwrap().try_into().unwrap();
    let opc = compute_opc(&ki, &op).unwrap();
    assert_eq!(hex::encode(opc), OPC);
    for (_, a) in upp.aka_parameters() {
        assert_eq!(a.algo_parameter().unwrap().opc.expose(), opc);
    }
    assert_eq!(upp.pin(0x0A).unwrap().expose(), [1, 2, 3, 4, 5, 6, 7, 8]);
    // SPN kept from the template.
    assert_eq!(&content(&upp, PeType::Usim, "ef-spn")[1..6], b"smdpp");
    assert_eq!(
        content(&upp, PeType::Usim, "ef-fplmn"),
        hex::decode("13F021FFFFFFFFFFFFFFFFFF").unwrap()
    );
}

fn refuse(f: impl FnOnce(&mut Personalization)) -> PersonalizationError {
    let mut p = perso();
    f(&mut p);
    template().personalize(&p).unwrap_err()
}

#[test]
fn rejects_bad_luhn() {
    let e = refuse(|p| p.iccid = "8949001234567890123".into());
    assert_eq!(
        e.to_string(),
        "ICCID 8949001234567890123: Luhn check digit should be 8, got 3"
    );
    assert!(matches!(
        e,
        PersonalizationError::IccidLuhn {
            expected: 8,
            got: 3,
            ..
        }
    ));
    // 20-digit ICCIDs are Luhn-checked too.
    assert!(check_iccid("89000123456789012341").is_ok());
    assert!(matches!(
        check_iccid("89000123456789012342"),
        Err(PersonalizationError::IccidLuhn { expected: 1, .. })
    ));
    assert_eq!(
        iccid_with_luhn("894900123456789012").unwrap(),
        "8949001234567890128"
    );
}

#[test]
fn rejects_iccid_length_prefix_and_letters() {
    assert!(matches!(
        refuse(|p| p.iccid = "894900123456789012".into()),
        PersonalizationError::IccidLength { len: 18, .. }
    ));
    assert!(matches!(
        refuse(|p| p.iccid = "894900123456789012345".into()),
        PersonalizationError::IccidLength { len: 21, .. }
    ));
    assert!(matches!(
        refuse(|p| p.iccid = "9949001234567890128".into()),
        PersonalizationError::IccidPrefix { .. }
    ));
    let e = refuse(|p| p.iccid = "89490012345678901A8".into());
    assert!(matches!(
        e,
        PersonalizationError::IccidNotDigits { position: 18, .. }
    ));
}

#[test]
fn rejects_short_ki() {
    let e = refuse(|p| p.ki = KI[..30].into());
    assert_eq!(
        e.to_string(),
        "Ki must be exactly 16 bytes (32 hex digits), got 30 hex digits"
    );
    assert!(matches!(
        refuse(|p| p.operator_key = OperatorKey::Opc(format!("{OPC}00").into())),
        PersonalizationError::KeyLength {
            what: "OPc",
            digits: 34
        }
    ));
    assert!(matches!(
        refuse(|p| p.operator_key = OperatorKey::Op("zz".repeat(16).into())),
        PersonalizationError::KeyNotHex {
            what: "OP",
            position: 1
        }
    ));
}

#[test]
fn rejects_imsi_mcc_mnc_mismatch() {
    let e = refuse(|p| p.home_plmn = Some("26202".into()));
    assert_eq!(
        e.to_string(),
        "IMSI 262011234567890: MCC/MNC 26201 does not match the home PLMN 26202"
    );
    assert!(matches!(
        refuse(|p| p.home_plmn = Some("262010".into())),
        PersonalizationError::HomePlmn { expected: 5, .. }
    ));
}

#[test]
fn rejects_mnc_length_4_and_bad_imsi() {
    assert_eq!(
        refuse(|p| p.mnc_len = 4).to_string(),
        "MNC length must be 2 or 3, got 4"
    );
    assert!(matches!(
        refuse(|p| p.imsi = "2620112345678901".into()),
        PersonalizationError::ImsiLength { len: 16, .. }
    ));
    assert!(matches!(
        refuse(|p| p.imsi = "26201123456789X".into()),
        PersonalizationError::ImsiNotDigits { position: 15, .. }
    ));
}

#[test]
fn rejects_pin_letters_and_bad_puk_adm() {
    let e = refuse(|p| p.pin1 = "12a4".into());
    assert_eq!(
        e.to_string(),
        "PIN1 must be 4 to 8 decimal digits (got 4 characters, character 3 is not a decimal digit)"
    );
    assert!(!e.to_string().contains("12a4"));
    assert!(matches!(
        refuse(|p| p.pin2 = "123".into()),
        PersonalizationError::Code { what: "PIN2", .. }
    ));
    assert!(matches!(
        refuse(|p| p.puk1 = "1234567".into()),
        PersonalizationError::Code { what: "PUK1", .. }
    ));
    assert!(matches!(
        refuse(|p| p.puk2 = "1234567X".into()),
        PersonalizationError::Code { what: "PUK2", .. }
    ));
    assert!(matches!(
        refuse(|p| p.adm1 = "1234".into()),
        PersonalizationError::Code { what: "ADM1", .. }
    ));
    assert!(matches!(
        refuse(|p| p.adm1 = "0102030405060G08".into()),
        PersonalizationError::Code { what: "ADM1", .. }
    ));
}

#[test]
fn rejects_bad_spn_and_overrides() {
    assert!(matches!(
        refuse(|p| p.spn = Some("A name far too long".into())),
        PersonalizationError::Spn { .. }
    ));
    assert!(matches!(
        refuse(|p| p.spn = Some("Caf\u{e9}".into())),
        PersonalizationError::Spn { .. }
    ));
    let e = refuse(|p| {
        p.file_overrides = vec![FileOverride {
            pe: PeType::Usim,
            file: "ef-imsi".into(),
            content: vec![0; 9],
        }]
    });
    assert_eq!(
        e.to_string(),
        "file override usim/ef-imsi: not overridable in template usim-isim-milenage"
    );
    assert!(matches!(
        refuse(|p| {
            p.file_overrides = vec![FileOverride {
                pe: PeType::Usim,
                file: "ef-fplmn".into(),
                content: vec![0xFF; 13],
            }]
        }),
        PersonalizationError::OverrideTooLong {
            len: 13,
            size: 12,
            ..
        }
    ));
}

#[test]
fn debug_never_shows_secrets() {
    let p = perso();
    let dbg = format!("{p:?}");
    for secret in [KI, OPC, "4711", "31415926", "0815", "27182818", "16180339"] {
        assert!(!dbg.contains(secret), "Debug shows {secret}: {dbg}");
    }
    assert!(dbg.contains("262011234567890"));
    let upp = template().personalize(&p).unwrap();
    let dbg = format!("{upp:?}");
    let ki_bytes = format!("{:?}", hex::decode(KI).unwrap());
    assert!(!dbg.contains(&ki_bytes[1..20]));
    assert!(!dbg.to_lowercase().contains(KI));
    // Every error message is free of secret values.
    for e in [
        refuse(|p| p.ki = "465b5ce8b199b49faa5f0a2ee238a6".into()),
        refuse(|p| p.pin1 = "98765432x".into()),
        refuse(|p| p.adm1 = "A1B2C3D4E5F6A7B".into()),
    ] {
        let s = format!("{e} {e:?}");
        for secret in ["465b5ce8", "98765432", "A1B2C3D4"] {
            assert!(!s.contains(secret), "{s}");
        }
    }
}

fn compile_err(src: &str) -> TemplateError {
    Template::compile(&TemplateSource::from_toml(src)).unwrap_err()
}

#[test]
fn template_compile_errors_are_located() {
    let base = TemplateSource::usim_isim_milenage().text().to_owned();
    // Unknown key.
    let e = compile_err(&base.replace("mandated = true", "mandatory = true"));
    assert!(matches!(e, TemplateError::Syntax(_)), "{e}");
    // Unknown file name.
    let e = compile_err(&base.replace("[pe.files.ef-keysPS]", "[pe.files.ef-keysps]"));
    assert_eq!(
        e.to_string(),
        "template pe[3] (usim) / ef-keysps: no such file in usim"
    );
    // Mandatory file missing.
    let e = compile_err(&base.replace("[pe.files.ef-ecc]", "[pe.files.ef-netpar]"));
    assert_eq!(
        e.to_string(),
        "template pe[3] (usim): mandatory file ef-ecc missing"
    );
    // Content larger than the file.
    let e = compile_err(&base.replace("content = \"0002\"", "content = \"000002\""));
    assert!(
        e.to_string()
            .contains("ef-acc / content: 3 octets for a 2-octet file"),
        "{e}"
    );
    // Bad placeholder ICCID.
    let e = compile_err(&base.replace("8999000000000000005", "8999000000000000006"));
    assert!(
        e.to_string()
            .contains("Luhn check digit should be 5, got 6"),
        "{e}"
    );
    // A personalization target cannot be overridable.
    let e = compile_err(&base.replace("\"usim/ef-fplmn\",", "\"usim/ef-imsi\","));
    assert!(e.to_string().contains("cannot be overridden"), "{e}");
    // Personalization target missing (no PIN2).
    let e = compile_err(&base.replace(
        "key_ref = 0x81, value = \"9999\"",
        "key_ref = 0x82, value = \"9999\"",
    ));
    assert!(e.to_string().contains("PIN2 (81) not defined"), "{e}");
}
