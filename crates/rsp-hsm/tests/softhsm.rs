//! rsp-hsm against a real SoftHSM2 token: signatures verify with the software verifier on
//! both curves, ECDH equals the software ECDH with the same scalar, the session pool under
//! concurrent use, the vault KEK on the token, and the refusals.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` at `C_Initialize`, and a test may not change its own
//! environment, so each test runs itself again in a child process with a private token
//! directory in the environment ([`in_child`]).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rsp_crypto::{Curve, KeyCustody, SoftwareKey};
use rsp_hsm::softhsm::SoftHsm;
use rsp_hsm::{HsmKek, HsmKey, SOFTHSM2_MODULE, Token, TokenConfig, admin};
use smdpp_vault::{Kek, Vault};
use zeroize::Zeroizing;

const TOKEN: &str = "rsp-hsm-test";
const PIN: &str = "1234-test";

/// Runs `body` in a child process of this test binary with a fresh SoftHSM2 token
/// (label [`TOKEN`], PIN [`PIN`]). Returns `false` in the parent (the child did the work).
fn in_child(name: &str) -> bool {
    if std::env::var_os("RSP_HSM_CHILD").is_some() {
        return true;
    }
    if SoftHsm::skip() {
        return false;
    }
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::create(dir.path()).unwrap();
    hsm.init_token(TOKEN, PIN).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env("RSP_HSM_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {name} failed:\n{stdout}\n{stderr}"
    );
    false
}

fn config(pin: &str, pool_size: usize) -> TokenConfig {
    TokenConfig {
        module: Path::new(SOFTHSM2_MODULE).to_path_buf(),
        token_label: TOKEN.to_owned(),
        pin: Zeroizing::new(pin.to_owned()),
        pool_size,
    }
}

fn open() -> Arc<Token> {
    Token::open(&config(PIN, 0)).unwrap()
}

fn import(token: &Token, label: &str, curve: Curve) -> SoftwareKey {
    let soft = SoftwareKey::generate(curve).unwrap();
    admin::import_pem(token, label, &soft.to_pkcs8_pem()).unwrap();
    soft
}

#[test]
fn sign_verifies_with_the_software_verifier_on_both_curves() {
    if !in_child("sign_verifies_with_the_software_verifier_on_both_curves") {
        return;
    }
    let token = open();
    for (label, curve) in [("p256", Curve::NistP256), ("bp", Curve::BrainpoolP256r1)] {
        let soft = import(&token, label, curve);
        let key = HsmKey::open(Arc::clone(&token), label).unwrap();
        assert_eq!(key.curve(), curve);
        assert_eq!(key.public_key(), soft.public_key());
        let msg = b"euiccSigned1 || serverSigned1";
        let sig = key.sign(msg).unwrap();
        rsp_crypto::ecdsa::verify_raw(curve, key.public_key(), msg, &sig).unwrap();
        assert!(rsp_crypto::ecdsa::verify_raw(curve, key.public_key(), b"other", &sig).is_err());
        // A key generated on the token works the same way.
        let generated = format!("{label}-gen");
        let summary = admin::generate_ec(&token, &generated, curve).unwrap();
        let key = HsmKey::open(Arc::clone(&token), &generated).unwrap();
        assert_eq!(
            summary.public_fingerprint.unwrap(),
            admin::fingerprint(key.public_key())
        );
        let sig = key.sign(msg).unwrap();
        rsp_crypto::ecdsa::verify_raw(curve, key.public_key(), msg, &sig).unwrap();
    }
}

#[test]
fn ecdh_equals_the_software_ecdh_with_the_same_scalar() {
    if !in_child("ecdh_equals_the_software_ecdh_with_the_same_scalar") {
        return;
    }
    let token = open();
    for (label, curve) in [("p256", Curve::NistP256), ("bp", Curve::BrainpoolP256r1)] {
        let soft = import(&token, label, curve);
        let key = HsmKey::open(Arc::clone(&token), label).unwrap();
        let peer = SoftwareKey::generate(curve).unwrap();
        let on_token = key.ecdh(peer.public_key()).unwrap();
        let in_software = soft.ecdh(peer.public_key()).unwrap();
        assert_eq!(on_token.as_bytes(), in_software.as_bytes());
        assert_eq!(
            on_token.as_bytes(),
            peer.ecdh(soft.public_key()).unwrap().as_bytes()
        );
        // A point that is not on the curve is refused like the software key refuses it.
        let mut bad = peer.public_key().to_vec();
        bad[64] ^= 1;
        assert_eq!(
            key.ecdh(&bad).unwrap_err().to_string(),
            soft.ecdh(&bad).unwrap_err().to_string()
        );
    }
}

#[test]
fn pool_serves_concurrent_signers() {
    if !in_child("pool_serves_concurrent_signers") {
        return;
    }
    // Two sessions, eight threads: operations wait for a free session, none fails.
    let token = Token::open(&config(PIN, 2)).unwrap();
    import(&token, "k", Curve::NistP256);
    let key = Arc::new(HsmKey::open(Arc::clone(&token), "k").unwrap());
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let key = Arc::clone(&key);
            std::thread::spawn(move || {
                for j in 0..50 {
                    let msg = format!("thread {i} message {j}");
                    let sig = key.sign(msg.as_bytes()).unwrap();
                    rsp_crypto::ecdsa::verify_raw(
                        Curve::NistP256,
                        key.public_key(),
                        msg.as_bytes(),
                        &sig,
                    )
                    .unwrap();
                    let peer = SoftwareKey::generate(Curve::NistP256).unwrap();
                    key.ecdh(peer.public_key()).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn kek_on_the_token_wraps_and_unwraps_deks() {
    if !in_child("kek_on_the_token_wraps_and_unwraps_deks") {
        return;
    }
    let token = open();
    admin::generate_aes(&token, "kek").unwrap();
    let kek: Arc<dyn Kek> = Arc::new(HsmKek::open(Arc::clone(&token), "kek").unwrap());
    assert!(kek.id().starts_with("pkcs11:kek:"), "{}", kek.id());
    let vault = Vault::create(Arc::clone(&kek)).unwrap();
    let aad = smdpp_vault::record_aad("profiles", "8949", "ki");
    let blob = vault.seal(b"0123456789abcdef", &aad).unwrap();
    let records = vault.records();
    // A second vault from the persisted records opens the blob (the DEK unwrapped on the token).
    let again = Vault::load(Arc::clone(&kek), &records).unwrap();
    assert_eq!(
        again.open(&blob, &aad).unwrap().as_slice(),
        b"0123456789abcdef"
    );
    // The wrapping is bound to the DEK id, and tampering is detected.
    let r = &records[0];
    assert!(kek.unwrap(r.dek_id + 1, &r.wrapped).is_err());
    let mut tampered = r.wrapped.clone();
    tampered[20] ^= 1;
    assert_eq!(
        kek.unwrap(r.dek_id, &tampered).unwrap_err().to_string(),
        smdpp_vault::VaultError::Unwrap {
            dek_id: r.dek_id,
            kek: kek.id().to_owned()
        }
        .to_string()
    );
}

#[test]
fn list_shows_labels_curves_and_fingerprints() {
    if !in_child("list_shows_labels_curves_and_fingerprints") {
        return;
    }
    let token = open();
    let soft = import(&token, "dpauth", Curve::BrainpoolP256r1);
    admin::generate_aes(&token, "kek").unwrap();
    let listed = admin::list(&token).unwrap();
    let lines: Vec<String> = listed.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            format!(
                "dpauth\tEC brainpoolP256r1\tpublic key SHA-256 {}",
                admin::fingerprint(soft.public_key())
            ),
            "kek\tAES".to_owned(),
        ]
    );
    let text = lines.join("\n");
    assert!(!text.contains(&hex::encode(soft.expose_scalar())));
}

#[test]
fn rejects_a_label_in_use() {
    if !in_child("rejects_a_label_in_use") {
        return;
    }
    let token = open();
    import(&token, "dpauth", Curve::NistP256);
    let e = admin::generate_ec(&token, "dpauth", Curve::NistP256).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("an object labelled \"dpauth\" exists already on the PKCS#11 token \"{TOKEN}\"")
    );
}

#[test]
fn rejects_missing_token_object() {
    if !in_child("rejects_missing_token_object") {
        return;
    }
    let token = open();
    let e = HsmKey::open(Arc::clone(&token), "dpauth").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("no EC private key labelled \"dpauth\" on the PKCS#11 token \"{TOKEN}\"")
    );
    let e = HsmKek::open(token, "kek").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("no AES key labelled \"kek\" on the PKCS#11 token \"{TOKEN}\"")
    );
}

#[test]
fn rejects_wrong_hsm_pin() {
    if !in_child("rejects_wrong_hsm_pin") {
        return;
    }
    let e = Token::open(&config("not-the-pin", 0)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("the PKCS#11 token \"{TOKEN}\" refused the PIN (CKR_PIN_INCORRECT)")
    );
    let e = Token::open(&TokenConfig {
        token_label: "no-such-token".to_owned(),
        ..config(PIN, 0)
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("no PKCS#11 token labelled \"no-such-token\" in {SOFTHSM2_MODULE}")
    );
}
