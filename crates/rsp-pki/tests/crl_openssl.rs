//! The CRLs [`rsp_pki::CrlBuilder`] writes are parsed and verified (with the CI certificate)
//! by the OpenSSL command line tool, on both curves.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use rsp_crypto::Curve;
use rsp_pki::{Crl, CrlBuilder, crl_to_pem};

const OPENSSL: &str = "/usr/bin/openssl";

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(OPENSSL)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn openssl_parses_and_verifies_our_crls() {
    if !Path::new(OPENSSL).exists() {
        eprintln!("skipping: {OPENSSL} not installed");
        return;
    }
    for curve in Curve::ALL {
        let p = common::pki(curve);
        let dir = common::temp_dir(&format!("crl-openssl-{}", curve.name()));
        p.write_to(&dir).unwrap();
        let ci = p.ci.cert().unwrap();
        let eum = p.eum.cert().unwrap();
        let mut b = CrlBuilder::for_issuer(&ci, time::Duration::days(30)).unwrap();
        b.crl_number = 7;
        b.revoke(eum.serial_number());
        b.revoke(&[0x00, 0x80, 0x01]);
        let der = b.sign(&p.ci.key).unwrap();
        std::fs::write(dir.join("ci.crl"), crl_to_pem(&der)).unwrap();
        let (ok, text) = openssl(
            &dir,
            &[
                "crl", "-in", "ci.crl", "-noout", "-text", "-CAfile", "ci.pem",
            ],
        );
        assert!(ok, "{curve}: openssl crl: {text}");
        assert!(text.contains("verify OK"), "{curve}: {text}");
        assert!(text.contains("Version 2"), "{curve}: {text}");
        let serial_hex = hex::encode_upper(eum.serial_number());
        assert!(
            text.contains(&serial_hex),
            "{curve}: {serial_hex} not in {text}"
        );
        assert!(text.contains("8001"), "{curve}: {text}");
        assert!(text.contains("X509v3 CRL Number"), "{curve}: {text}");
        assert!(
            text.contains("X509v3 Authority Key Identifier"),
            "{curve}: {text}"
        );
        // And our parser reads its own PEM back.
        let crl = Crl::from_bytes(&std::fs::read(dir.join("ci.crl")).unwrap()).unwrap();
        crl.verify_issued_by(&ci).unwrap();
        assert!(crl.is_revoked(eum.serial_number()));
        assert!(crl.is_revoked(&[0x80, 0x01]));
    }
}
