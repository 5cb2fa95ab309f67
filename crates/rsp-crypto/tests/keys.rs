//! Keys and signatures: round trips on both curves, the SGP.26 key files, PEM/DER forms.

use rsp_crypto::ecdsa::{der_to_raw, raw_to_der, verify_der, verify_raw};
use rsp_crypto::keys::{public_key_from_pem, public_key_from_spki};
use rsp_crypto::{CryptoError, Curve, KeyCustody, SoftwareKey};

const SGP26: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/certs/sgp26");

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{SGP26}/{rel}")).expect("read key file")
}

#[test]
fn sign_verify_round_trip_both_curves() {
    for curve in Curve::ALL {
        let k = SoftwareKey::generate(curve).expect("generate");
        assert_eq!(k.public_key().len(), 65);
        assert_eq!(k.public_key()[0], 4);
        let sig = k.sign(b"message").expect("sign");
        verify_raw(curve, k.public_key(), b"message", &sig).expect("verify raw");
        verify_der(curve, k.public_key(), b"message", &raw_to_der(&sig)).expect("verify der");
        assert_eq!(der_to_raw(&raw_to_der(&sig)), Ok(sig));
        assert_eq!(
            verify_raw(curve, k.public_key(), b"messagf", &sig),
            Err(CryptoError::BadSignature)
        );
    }
}

#[test]
fn sgp26_key_files_load_and_match_their_public_keys() {
    for (name, curve) in [("NIST", Curve::NistP256), ("BRP", Curve::BrainpoolP256r1)] {
        for dir_role in [
            ("DPauth", "DPauth"),
            ("DPauth", "DP2auth"),
            ("DPpb", "DPpb"),
        ] {
            let (dir, role) = dir_role;
            let sk =
                SoftwareKey::from_pem(&read(&format!("{dir}/SK_S_SM_{role}_ECDSA_{name}.pem")))
                    .expect("sk");
            assert_eq!(sk.curve(), curve);
            let (pc, pk) =
                public_key_from_pem(&read(&format!("{dir}/PK_S_SM_{role}_ECDSA_{name}.pem")))
                    .expect("pk");
            assert_eq!(pc, curve);
            assert_eq!(sk.public_key(), pk.as_slice(), "{role} {name}");
            let sig = sk.sign(b"sgp26").expect("sign");
            verify_raw(curve, &pk, b"sgp26", &sig).expect("verify");
        }
    }
}

#[test]
fn pkcs8_pem_round_trip_and_debug_hides_secret() {
    for curve in Curve::ALL {
        let k = SoftwareKey::generate(curve).expect("generate");
        let pem = k.to_pkcs8_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = SoftwareKey::from_pem(&pem).expect("reload");
        assert_eq!(back.public_key(), k.public_key());
        assert_eq!(
            SoftwareKey::from_der(&k.to_pkcs8_der())
                .expect("der")
                .public_key(),
            k.public_key()
        );
        let dbg = format!("{k:?}");
        assert!(dbg.contains("SoftwareKey"));
        // The PKCS#8 body (which holds the scalar) must not appear in Debug output.
        let der = k.to_pkcs8_der();
        let scalar_hex: String = der[36..68].iter().map(|b| format!("{b:02x}")).collect();
        assert!(!dbg.contains(&scalar_hex));
    }
}

#[test]
fn pkcs8_pem_loads_in_openssl_if_available() {
    let Ok(out) = std::process::Command::new("openssl")
        .arg("version")
        .output()
    else {
        return; // openssl not installed: nothing to cross-check
    };
    if !out.status.success() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("rsp-crypto-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    for curve in Curve::ALL {
        let k = SoftwareKey::generate(curve).expect("generate");
        let path = dir.join(format!("{}.pem", curve.name()));
        std::fs::write(&path, k.to_pkcs8_pem()).expect("write");
        let out = std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&path)
            .output()
            .expect("run openssl");
        std::fs::remove_file(&path).ok();
        assert!(
            out.status.success(),
            "openssl refused the {curve} key: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (c, pk) = public_key_from_spki(&out.stdout).expect("spki");
        assert_eq!(c, curve);
        assert_eq!(pk, k.public_key());
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn from_scalar_is_deterministic_and_ecdh_is_symmetric() {
    for curve in Curve::ALL {
        let a = SoftwareKey::from_scalar(curve, &[7u8; 32]).expect("a");
        let a2 = SoftwareKey::from_scalar(curve, &[7u8; 32]).expect("a2");
        assert_eq!(a.public_key(), a2.public_key());
        let b = SoftwareKey::generate(curve).expect("b");
        let ab = a.ecdh(b.public_key()).expect("ab");
        let ba = b.ecdh(a.public_key()).expect("ba");
        assert_eq!(ab.as_bytes(), ba.as_bytes());
    }
}

#[test]
fn rejects_bad_public_key_point() {
    for curve in Curve::ALL {
        let k = SoftwareKey::generate(curve).expect("k");
        let sig = k.sign(b"m").expect("sign");
        let mut bad = k.public_key().to_vec();
        bad[64] ^= 1; // off the curve
        assert_eq!(
            verify_raw(curve, &bad, b"m", &sig),
            Err(CryptoError::InvalidPublicKey(curve))
        );
        assert_eq!(
            k.ecdh(&bad).err(),
            Some(CryptoError::InvalidPublicKey(curve))
        );
        assert!(k.ecdh(&[4u8; 65]).is_err());
        assert!(k.ecdh(&[]).is_err());
    }
}

#[test]
fn rejects_wrong_curve() {
    let p = SoftwareKey::generate(Curve::NistP256).expect("p");
    let b = SoftwareKey::generate(Curve::BrainpoolP256r1).expect("b");
    let sig = p.sign(b"m").expect("sign");
    // A P-256 signature does not verify as brainpool, and a P-256 point is not on brainpool.
    assert!(verify_raw(Curve::BrainpoolP256r1, p.public_key(), b"m", &sig).is_err());
    assert!(b.ecdh(p.public_key()).is_err());
    assert!(p.ecdh(b.public_key()).is_err());
}

#[test]
fn rejects_bad_private_keys() {
    assert!(SoftwareKey::from_scalar(Curve::NistP256, &[0u8; 32]).is_err());
    assert!(SoftwareKey::from_scalar(Curve::NistP256, &[0xFFu8; 32]).is_err());
    assert!(SoftwareKey::from_scalar(Curve::BrainpoolP256r1, &[0xFFu8; 32]).is_err());
    assert!(SoftwareKey::from_scalar(Curve::NistP256, &[1u8; 33]).is_err());
    assert!(SoftwareKey::from_pem("not a pem").is_err());
    assert!(
        SoftwareKey::from_pem("-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n")
            .is_err()
    );
    assert!(SoftwareKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n").is_err());
    assert!(SoftwareKey::from_der(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
    // A SEC1 key whose embedded public key does not match.
    let k = SoftwareKey::generate(Curve::NistP256).expect("k");
    let mut der = k.to_pkcs8_der().to_vec();
    let last = der.len() - 1;
    der[last] ^= 1;
    assert!(SoftwareKey::from_der(&der).is_err());
}

#[test]
fn curve_names_and_oids() {
    assert_eq!(Curve::NistP256.oid(), "1.2.840.10045.3.1.7");
    assert_eq!(Curve::BrainpoolP256r1.oid(), "1.3.36.3.3.2.8.1.1.7");
    assert_eq!(
        Curve::from_oid("1.3.36.3.3.2.8.1.1.7"),
        Some(Curve::BrainpoolP256r1)
    );
    assert_eq!(Curve::NistP256.name(), "P-256");
    assert_eq!(Curve::BrainpoolP256r1.name(), "brainpoolP256r1");
}
