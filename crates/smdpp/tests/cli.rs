//! The embedded default of `smdpp serve` (no configuration at all) and `smdpp profiles`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../smdpp-service/tests/common/mod.rs"]
mod common;

use common::*;
use rsp_crypto::{Curve, SoftwareKey};
use smdpp::cli::{DataArgs, ProfilesCommand, ServeArgs, profiles};
use smdpp_core::ActivationCode;
use smdpp_service::assembly::FileConfig;
use smdpp_store::ProfileState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_serve_generates_everything_and_serves_the_demo_profile() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ServeArgs {
        data: DataArgs {
            data_dir: Some(data.clone()),
            ..DataArgs::default()
        },
        ..ServeArgs::default()
    };
    let mut settings = args.resolve().unwrap();
    assert_eq!(settings.smdp_address, "127.0.0.1:8443");
    assert!(settings.database_url.starts_with("sqlite://"));
    assert!(settings.demo_profile);
    // Serve on a free port, but keep the address the default resolution produced.
    settings.listen = "127.0.0.1:0".parse().unwrap();
    let server = Server::start(settings).await;
    assert!(server.prepared.generated_pki);
    assert!(data.join("pki/dpauth.pem").exists() && data.join("smdpp.db").exists());
    let ac = server
        .prepared
        .demo_activation_code
        .clone()
        .expect("demo profile seeded");
    let ac = ActivationCode::parse(&ac).unwrap();
    assert_eq!(ac.smdp_address, "127.0.0.1:8443");

    // A device from the generated PKI (its eUICC is under the generated CI).
    let pki_dir = data.join("pki");
    let loaded = rsp_pki::load_dir(&pki_dir).unwrap();
    let euicc = loaded.euicc.as_ref().unwrap();
    let eum = loaded.eum.as_ref().unwrap();
    let ci = ski(loaded.cis[0].der());
    let card = Card {
        curve: Curve::NistP256,
        eid: rsp_pki::Certificate::from_der(&euicc.der)
            .unwrap()
            .subject_attribute(rsp_pki::oids::AT_SERIAL_NUMBER)
            .unwrap(),
        key: SoftwareKey::from_pem(&euicc.key.to_pkcs8_pem()).unwrap(),
        euicc_der: euicc.der.clone(),
        eum_der: eum.der.clone(),
        sign_cis: vec![ci.clone()],
        verify_cis: vec![ci],
        svn: [2, 2, 0],
        info2_svn: None,
        rsp_capability: vec![0],
        ext_card_resource: vec![0x81, 0x01, 0x00, 0x82, 0x04, 0x00, 0x01, 0x00, 0x00],
        profile_version: [2, 3, 1],
        rpm_ask: None,
    };
    let init: smdpp_core::es9_json::InitiateAuthenticationResponse = server
        .post(
            "initiateAuthentication",
            serde_json::json!({"euiccChallenge": b64(&[3; 16]), "euiccInfo1": b64(&card.info1()), "smdpAddress": "127.0.0.1:8443"}),
        )
        .await
        .unwrap();
    let (auth, sig1) = authenticate_with(&server, &card, &init, Some(&ac.matching_id), false)
        .await
        .unwrap();
    let a = Authenticated {
        tid_hex: init.transaction_id.to_hex(),
        tid: init.transaction_id.as_bytes().to_vec(),
        init,
        auth,
        sig1_tlv: sig1,
    };
    let otk = SoftwareKey::generate(Curve::NistP256).unwrap();
    let bpp = get_bpp(&server, &card, &a, &otk, None, false)
        .await
        .unwrap();
    let opened = card.open(
        &bpp.bound_profile_package,
        &a.auth.smdp_certificate,
        &otk,
        &a.tid,
    );
    let iccid = smdpp_service::upp::iccid_from_upp(&opened.upp).unwrap();
    assert!(iccid.starts_with("89999"));
    assert_eq!(server.profile(&iccid).await.state, ProfileState::Downloaded);
    // The demo profile was generated from the built-in template at download time: a full
    // USIM/ISIM package with the test PLMN 001/01.
    let upp = saip::Upp::decode(&opened.upp).unwrap();
    assert_eq!(upp.iccid().unwrap(), iccid);
    assert!(
        upp.imsi().unwrap().starts_with("00101"),
        "{}",
        upp.imsi().unwrap()
    );
    assert!(server.prepared.demo_qr.as_ref().unwrap().exists());
    assert!(data.join("vault.kek").exists());
    let types = server.store().list_profile_types().await.unwrap();
    assert_eq!(types.len(), 1);
    let counts = server.store().count_profiles_of_type("demo").await.unwrap();
    assert!(counts.contains(&(ProfileState::Available, 4)), "{counts:?}");
    let settings = server.stop().await;

    // A second start finds the PKI and a non-empty inventory: nothing generated or seeded.
    let server = Server::start(settings).await;
    assert!(!server.prepared.generated_pki);
    assert!(server.prepared.demo_activation_code.is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_add_list_show() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataArgs {
        data_dir: Some(dir.path().join("data")),
        ..DataArgs::default()
    };
    profiles(ProfilesCommand::Add {
        data: data.clone(),
        upp: TS48.into(),
        matching_id: None,
        confirmation_code: Some("5678".into()),
        spn: "Op".into(),
        name: None,
        smdp_address: Some("smdp.example.com".into()),
    })
    .await
    .unwrap();
    // Same ICCID again: refused.
    assert!(
        profiles(ProfilesCommand::Add {
            data: data.clone(),
            upp: TS48.into(),
            matching_id: Some("ABC-1".into()),
            confirmation_code: None,
            spn: "Op".into(),
            name: None,
            smdp_address: None,
        })
        .await
        .is_err()
    );
    profiles(ProfilesCommand::List {
        data: data.clone(),
        profile_type: None,
        state: None,
        operator: None,
    })
    .await
    .unwrap();
    profiles(ProfilesCommand::Show {
        data: data.clone(),
        iccid: "89000123456789012341".into(),
    })
    .await
    .unwrap();
    let url = format!("sqlite://{}", dir.path().join("data/smdpp.db").display());
    let store = smdpp_store::Store::connect(&url).await.unwrap();
    let p = store
        .get_profile("89000123456789012341")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.state, ProfileState::Released);
    let mid = p.matching_id.unwrap();
    assert_eq!(mid.len(), 29);
    use sha2::Digest;
    assert_eq!(p.cc_hash.unwrap(), sha2::Sha256::digest(b"5678").to_vec());
    // Stored sealed (its keys are secrets); the vault opens it to the file's bytes.
    let stored = p.upp.unwrap();
    let plain = std::fs::read(TS48).unwrap();
    assert_ne!(stored, plain);
    assert!(!smdpp_service::factory::is_plaintext_upp(&stored));
    let factory = smdpp_service::assembly::open_factory(&store, &dir.path().join("data/vault.kek"))
        .await
        .unwrap();
    assert_eq!(
        factory
            .open_stored_upp("89000123456789012341", &stored)
            .await
            .unwrap()
            .as_slice(),
        plain.as_slice()
    );
    store.close().await;
}

#[test]
fn every_ts48_sample_has_a_readable_iccid() {
    for f in std::fs::read_dir("/work/shared/profiles/ts48").unwrap() {
        let p = f.unwrap().path();
        let upp = std::fs::read(&p).unwrap();
        let iccid = smdpp_service::upp::iccid_from_upp(&upp)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(iccid.len(), 20, "{}", p.display());
    }
}

#[test]
fn rejects_unknown_config_keys() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "listen = \"127.0.0.1:9443\"\nsmdp_address = \"smdp.example.com\"\ncc_attempt_limit = 5\n",
    )
    .unwrap();
    let f = FileConfig::load(&good).unwrap();
    assert_eq!(f.cc_attempt_limit, Some(5));
    let args = ServeArgs {
        data: DataArgs {
            config: Some(good),
            data_dir: Some(dir.path().join("d")),
            ..DataArgs::default()
        },
        cc_attempt_limit: Some(7),
        ..ServeArgs::default()
    };
    let s = args.resolve().unwrap();
    assert_eq!(s.smdp_address, "smdp.example.com");
    assert_eq!(s.listen.port(), 9443);
    assert_eq!(s.limits.cc_attempt_limit, 7, "flag wins over file");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "lisen = \"127.0.0.1:1\"\n").unwrap();
    assert!(FileConfig::load(&bad).is_err());
}

/// The demo order is shown again by later starts as long as it waits for its download, with
/// the address of that start; the inventory is seeded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_order_is_shown_again_until_downloaded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ServeArgs {
        data: DataArgs {
            data_dir: Some(data.clone()),
            ..DataArgs::default()
        },
        plain_http: true,
        ..ServeArgs::default()
    };
    let mut settings = args.resolve().unwrap();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    let server = Server::start(settings).await;
    let first =
        ActivationCode::parse(server.prepared.demo_activation_code.as_ref().unwrap()).unwrap();
    let mut settings = server.stop().await;
    settings.smdp_address = "smdp.example.com".into();
    let server = Server::start(settings).await;
    let again =
        ActivationCode::parse(server.prepared.demo_activation_code.as_ref().unwrap()).unwrap();
    assert_eq!(again.matching_id, first.matching_id);
    assert_eq!(again.smdp_address, "smdp.example.com");
    assert!(server.prepared.demo_qr.as_ref().unwrap().exists());
    let counts = server.store().count_profiles_of_type("demo").await.unwrap();
    assert_eq!(
        counts,
        vec![(ProfileState::Available, 4), (ProfileState::Released, 1)]
    );
    server.stop().await;
}
