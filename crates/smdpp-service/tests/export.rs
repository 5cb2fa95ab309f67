//! `smdpp subscribers export` at the library level, on SQLite: a data directory with
//! imported profiles of two types (one with an OPc, one with an OP), one linked to an EID,
//! one owned by an operator, and one profile with only an uploaded package; each format's
//! exact content without and with secrets (the OPc derived from an OP with the TS 35.208
//! test set 1), the filters, the skipped count, and a Python decryption of an encrypted
//! export (`hashlib.pbkdf2_hmac` + `cryptography`'s AESGCM; skipped with a note when
//! `cryptography` is missing, unless `SMDPP_REQUIRE_INTEROP=1`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::sync::Arc;

use saip::TemplateSource;
use smdpp_inventory::{Format, Options};
use smdpp_service::assembly::open_factory;
use smdpp_service::export::{
    ExportFormat, ExportSummary, PBKDF2_ITERATIONS, Passphrase, Selection, export, open_export,
    seal_export,
};
use smdpp_service::factory::Factory;
use smdpp_service::inventory::{ALL_NOTIFY, ImportOptions, build_profile_type, import_file};
use smdpp_store::{
    EventRecord, Expect, NewOperator, NewProfile, Patch, ProfileState, ProfileUpdate, Store,
};
use zeroize::Zeroizing;

const HEADER: &str = "iccid,imsi,ki,opc,op,pin1,puk1,pin2,puk2,adm1";
const KI1: &str = "A1B2C3D4E5F60718293A4B5C6D7E8F90";
const OPC1: &str = "0F1E2D3C4B5A69788796A5B4C3D2E1F0";
// TS 35.208 test set 1 (Ki and OP in lower case, as an inventory may give them).
const KI2: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
const OP2: &str = "cdc202d5123e20f62b6d676ac72cb318";
const KI2_UPPER: &str = "465B5CE8B199B49FAA5F0A2EE238A6BC";
const OPC2: &str = "CD63CB71954A9F4E48A5994E37A02BAF";
const KI3: &str = "C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF";
const OPC3: &str = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF";
const EID: &str = "89049032123451234512345678901235";
const UPP_ICCID: &str = "89000123456789012341";
const PASSPHRASE: &str = "correct horse battery staple";

fn iccid(n: u64) -> String {
    saip::personalize::iccid_with_luhn(&format!("89490{n:013}")).unwrap()
}

fn imsi(n: u64) -> String {
    format!("00101{n:010}")
}

/// An inventory row of subscriber `n` with `ki` and either an OPc or an OP.
fn row(n: u64, ki: &str, opc: &str, op: &str) -> String {
    format!(
        "{},{},{ki},{opc},{op},1234,12345678,5678,87654321,12345678\n",
        iccid(n),
        imsi(n)
    )
}

struct Env {
    _dir: tempfile::TempDir,
    store: Store,
    factory: Arc<Factory>,
}

async fn import(env: &Env, profile_type: &str, operator: Option<&str>, rows: &[String]) {
    let csv = format!("{HEADER}\n{}", rows.concat());
    let s = import_file(
        &env.store,
        &env.factory,
        Format::Csv,
        std::io::Cursor::new(csv.into_bytes()),
        &ImportOptions {
            profile_type: profile_type.to_owned(),
            operator: operator.map(str::to_owned),
            all_or_nothing: true,
            reader: Options::default(),
            batch_rows: 100,
        },
        |_| Ok(()),
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(s.imported, rows.len() as u64, "{s:?}");
}

/// Subscriber 1 (type T1, operator op1, OPc, Available), 2 (T1, OP, Released and linked
/// to [`EID`]), 3 (T2, OPc, Available), and [`UPP_ICCID`]: an uploaded package only.
async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("smdpp.db").display());
    let store = Store::connect(&url).await.unwrap();
    let factory = open_factory(&store, &dir.path().join("vault.kek"))
        .await
        .unwrap();
    for name in ["T1", "T2"] {
        let t = build_profile_type(
            name,
            &TemplateSource::usim_isim_milenage(),
            "SPN",
            "Profile",
            None,
            None,
            &ALL_NOTIFY,
            &[],
            None,
            None,
        )
        .unwrap();
        factory.add_profile_type(&t).await.unwrap();
    }
    store
        .insert_operator(&NewOperator {
            id: "op1".into(),
            cert_sha256: None,
            cert_subject: None,
            callback_url: None,
            callback_ca: None,
        })
        .await
        .unwrap();
    let env = Env {
        _dir: dir,
        store,
        factory,
    };
    import(&env, "T1", Some("op1"), &[row(1, KI1, OPC1, "")]).await;
    import(&env, "T1", None, &[row(2, KI2, "", OP2)]).await;
    import(&env, "T2", None, &[row(3, KI3, OPC3, "")]).await;
    env.store
        .transition(
            &iccid(2),
            &Expect::states(&[ProfileState::Available]),
            &ProfileUpdate {
                state: Some(ProfileState::Released),
                eid: Patch::Set(EID.into()),
                ..ProfileUpdate::default()
            },
            &EventRecord::by("test"),
        )
        .await
        .unwrap();
    let upp = std::fs::read("/work/shared/profiles/ts48/TS48v4_SAIP2.3_BERTLV.der").unwrap();
    let mut p = NewProfile::available(UPP_ICCID, None);
    p.state = ProfileState::Released;
    p.upp = Some(env.factory.seal_upp(UPP_ICCID, &upp).unwrap());
    env.store
        .insert_profile(&p, &EventRecord::by("test"))
        .await
        .unwrap();
    env
}

/// The export of `selection` in `format` (with secrets when `secrets`) as text.
async fn run(
    env: &Env,
    format: ExportFormat,
    secrets: bool,
    selection: &Selection,
) -> (String, ExportSummary) {
    let mut out = Vec::new();
    let summary = export(
        &env.store,
        secrets.then_some(&*env.factory),
        format,
        selection,
        |b| {
            out.extend_from_slice(b);
            Ok(())
        },
    )
    .await
    .unwrap();
    (String::from_utf8(out).unwrap(), summary)
}

async fn all(env: &Env, format: ExportFormat, secrets: bool) -> String {
    let (text, summary) = run(env, format, secrets, &Selection::default()).await;
    assert_eq!(
        summary,
        ExportSummary {
            exported: 3,
            skipped: 1
        }
    );
    text
}

fn no_secret_in(text: &str) {
    for s in [KI1, OPC1, KI2, OP2, OPC2, KI3, OPC3] {
        assert!(
            !text.contains(s) && !text.contains(&s.to_ascii_lowercase()),
            "{s} in {text}"
        );
    }
}

#[tokio::test]
async fn csv_identifiers_and_secrets() {
    let env = env().await;
    let (i1, i2, i3) = (iccid(1), iccid(2), iccid(3));
    let (m1, m2, m3) = (imsi(1), imsi(2), imsi(3));
    let plain = all(&env, ExportFormat::Csv, false).await;
    assert_eq!(
        plain,
        format!(
            "iccid,imsi,msisdn,profile_type,state,eid\n\
             {i1},{m1},,T1,available,\n\
             {i2},{m2},,T1,released,{EID}\n\
             {i3},{m3},,T2,available,\n"
        )
    );
    no_secret_in(&plain);
    // The OP of subscriber 2 is never exported: its OPc is.
    assert_eq!(
        all(&env, ExportFormat::Csv, true).await,
        format!(
            "iccid,imsi,msisdn,profile_type,state,eid,ki,opc\n\
             {i1},{m1},,T1,available,,{KI1},{OPC1}\n\
             {i2},{m2},,T1,released,{EID},{KI2_UPPER},{OPC2}\n\
             {i3},{m3},,T2,available,,{KI3},{OPC3}\n"
        )
    );
}

#[tokio::test]
async fn osmo_hlr_script() {
    let env = env().await;
    let (i1, i2, i3) = (iccid(1), iccid(2), iccid(3));
    let (m1, m2, m3) = (imsi(1), imsi(2), imsi(3));
    let head = "! smdpp subscribers export: osmo-hlr VTY commands (telnet port 4258)\nenable\n";
    let plain = all(&env, ExportFormat::OsmoHlr, false).await;
    assert_eq!(
        plain,
        format!(
            "{head}\
             ! ICCID {i1}, type T1, state available\n\
             subscriber imsi {m1} create\n\
             ! ICCID {i2}, type T1, state released, EID {EID}\n\
             subscriber imsi {m2} create\n\
             ! ICCID {i3}, type T2, state available\n\
             subscriber imsi {m3} create\n"
        )
    );
    no_secret_in(&plain);
    assert_eq!(
        all(&env, ExportFormat::OsmoHlr, true).await,
        format!(
            "{head}\
             ! ICCID {i1}, type T1, state available\n\
             subscriber imsi {m1} create\n\
             subscriber imsi {m1} update aud3g milenage k {KI1} opc {OPC1}\n\
             ! ICCID {i2}, type T1, state released, EID {EID}\n\
             subscriber imsi {m2} create\n\
             subscriber imsi {m2} update aud3g milenage k {KI2_UPPER} opc {OPC2}\n\
             ! ICCID {i3}, type T2, state available\n\
             subscriber imsi {m3} create\n\
             subscriber imsi {m3} update aud3g milenage k {KI3} opc {OPC3}\n"
        )
    );
}

/// The Open5GS document of `imsi` with `security` (already formatted, with its comma)
/// between `slice` and `ambr`.
fn open5gs_doc(imsi: &str, security: &str) -> String {
    let ambr =
        r#"{"downlink":{"value":1000000000,"unit":0},"uplink":{"value":1000000000,"unit":0}}"#;
    format!(
        r#"{{"schema_version":1,"imsi":"{imsi}","msisdn":[],"imeisv":[],"mme_host":[],"mme_realm":[],"purge_flag":[],"slice":[{{"sst":1,"default_indicator":true,"session":[{{"name":"internet","type":3,"qos":{{"index":9,"arp":{{"priority_level":8,"pre_emption_capability":1,"pre_emption_vulnerability":2}}}},"ambr":{ambr},"pcc_rule":[]}}]}}],{security}"ambr":{ambr},"access_restriction_data":32,"subscriber_status":0,"operator_determined_barring":0,"network_access_mode":0,"subscribed_rau_tau_timer":12,"__v":0}}"#
    ) + "\n"
}

fn security(k: &str, opc: &str) -> String {
    format!(
        r#""security":{{"k":"{k}","op":null,"opc":"{opc}","amf":"8000","sqn":{{"$numberLong":"0"}}}},"#
    )
}

#[tokio::test]
async fn open5gs_documents() {
    let env = env().await;
    let plain = all(&env, ExportFormat::Open5gs, false).await;
    assert_eq!(plain, [1, 2, 3].map(|n| open5gs_doc(&imsi(n), "")).concat());
    no_secret_in(&plain);
    let with = all(&env, ExportFormat::Open5gs, true).await;
    assert_eq!(
        with,
        [
            open5gs_doc(&imsi(1), &security(KI1, OPC1)),
            open5gs_doc(&imsi(2), &security(KI2_UPPER, OPC2)),
            open5gs_doc(&imsi(3), &security(KI3, OPC3)),
        ]
        .concat()
    );
    // Every line is one JSON object with the fields Open5GS reads.
    for (line, (n, k, opc)) in
        with.lines()
            .zip([(1, KI1, OPC1), (2, KI2_UPPER, OPC2), (3, KI3, OPC3)])
    {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["imsi"], imsi(n));
        assert_eq!(v["security"]["k"], k);
        assert_eq!(v["security"]["opc"], opc);
        assert!(v["security"]["op"].is_null());
        assert_eq!(v["security"]["sqn"]["$numberLong"], "0");
        assert_eq!(v["slice"][0]["session"][0]["name"], "internet");
    }
}

#[tokio::test]
async fn filters_select_by_type_state_and_operator() {
    let env = env().await;
    let iccids = |text: &str| -> Vec<String> {
        text.lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_owned())
            .collect()
    };
    let cases: [(Selection, Vec<String>, u64); 6] = [
        (
            Selection {
                profile_type: Some("T1".into()),
                ..Selection::default()
            },
            vec![iccid(1), iccid(2)],
            0,
        ),
        (
            Selection {
                states: vec![ProfileState::Released],
                ..Selection::default()
            },
            vec![iccid(2)],
            // The uploaded package is Released too.
            1,
        ),
        (
            Selection {
                states: vec![ProfileState::Available, ProfileState::Installed],
                ..Selection::default()
            },
            vec![iccid(1), iccid(3)],
            0,
        ),
        (
            Selection {
                states: vec![ProfileState::Released, ProfileState::Available],
                ..Selection::default()
            },
            vec![iccid(1), iccid(2), iccid(3)],
            1,
        ),
        (
            Selection {
                operator: Some("op1".into()),
                ..Selection::default()
            },
            vec![iccid(1)],
            0,
        ),
        (
            Selection {
                profile_type: Some("T2".into()),
                states: vec![ProfileState::Released],
                ..Selection::default()
            },
            vec![],
            0,
        ),
    ];
    for (sel, want, skipped) in cases {
        let (text, summary) = run(&env, ExportFormat::Csv, false, &sel).await;
        assert_eq!(iccids(&text), want, "{sel:?}");
        assert_eq!(
            summary,
            ExportSummary {
                exported: want.len() as u64,
                skipped
            },
            "{sel:?}"
        );
    }
}

#[tokio::test]
async fn rejects_unknown_type_and_operator() {
    let env = env().await;
    for (sel, message) in [
        (
            Selection {
                profile_type: Some("nope".into()),
                ..Selection::default()
            },
            "unknown profile type \"nope\" (see `smdpp types list`)",
        ),
        (
            Selection {
                operator: Some("nope".into()),
                ..Selection::default()
            },
            "unknown operator \"nope\" (see `smdpp operators list`)",
        ),
    ] {
        let e = export(&env.store, None, ExportFormat::Csv, &sel, |_| Ok(()))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), message);
    }
}

#[tokio::test]
async fn pages_through_more_than_one_page() {
    let env = env().await;
    let rows: Vec<String> = (100..1300).map(|n| row(n, KI3, OPC3, "")).collect();
    import(&env, "T2", None, &rows).await;
    let (text, summary) = run(
        &env,
        ExportFormat::Csv,
        false,
        &Selection {
            profile_type: Some("T2".into()),
            ..Selection::default()
        },
    )
    .await;
    assert_eq!(
        summary,
        ExportSummary {
            exported: 1201,
            skipped: 0
        }
    );
    let listed: Vec<&str> = text.lines().skip(1).map(|l| &l[..19]).collect();
    let mut want: Vec<String> = std::iter::once(3).chain(100..1300).map(iccid).collect();
    want.sort();
    assert_eq!(listed, want);
}

// ------------------------------------------------------------------ Python interop

fn python_has_cryptography() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import cryptography"])
        .status()
        .is_ok_and(|s| s.success())
}

/// The module docs' Python decryption, run on `file` with the passphrase file `pass`.
fn python_decrypt(file: &Path, pass: &Path) -> Vec<u8> {
    let script = r#"
import hashlib, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"SMDPPX1\n"
iterations = int.from_bytes(data[8:12], "big")
salt, nonce = data[12:28], data[28:40]
passphrase = open(sys.argv[2], "rb").read().split(b"\n")[0].removesuffix(b"\r")
key = hashlib.pbkdf2_hmac("sha256", passphrase, salt, iterations, 32)
sys.stdout.buffer.write(AESGCM(key).decrypt(nonce, data[40:], data[:40]))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .arg(pass)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test]
async fn python_decrypts_an_encrypted_export() {
    if !python_has_cryptography() {
        assert!(
            std::env::var("SMDPP_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "SMDPP_REQUIRE_INTEROP=1 but python3 cannot import cryptography"
        );
        eprintln!("note: python3 `cryptography` is not installed; Python decryption not checked");
        return;
    }
    let env = env().await;
    let plain = all(&env, ExportFormat::Csv, true).await;
    assert!(plain.contains(KI1));
    let dir = tempfile::tempdir().unwrap();
    // A CRLF passphrase file: the line end is not part of the passphrase.
    let pass_file = dir.path().join("pass.txt");
    std::fs::write(&pass_file, format!("{PASSPHRASE}\r\nignored\n")).unwrap();
    let passphrase = Passphrase::read(&pass_file).unwrap();
    let sealed = seal_export(
        Zeroizing::new(plain.as_bytes().to_vec()),
        &passphrase,
        PBKDF2_ITERATIONS,
    )
    .unwrap();
    no_secret_in(&String::from_utf8_lossy(&sealed));
    let file = dir.path().join("subscribers.enc");
    std::fs::write(&file, &sealed).unwrap();
    assert_eq!(python_decrypt(&file, &pass_file), plain.as_bytes());
    assert_eq!(
        open_export(&sealed, &passphrase).unwrap().as_slice(),
        plain.as_bytes()
    );
}
