//! The generated PKI verifies with the OpenSSL command line tool, on both curves.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use rsp_crypto::Curve;
use rsp_pki::EumRangeForm;

const OPENSSL: &str = "/usr/bin/openssl";

fn openssl_verify(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(OPENSSL)
        .arg("verify")
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
fn openssl_verifies_generated_chains_on_both_curves() {
    if !Path::new(OPENSSL).exists() {
        eprintln!("skipping: {OPENSSL} not installed");
        return;
    }
    for curve in Curve::ALL {
        let p = common::pki(curve);
        let dir = common::temp_dir(&format!("openssl-{}", curve.name()));
        p.write_to(&dir).unwrap();
        let cases: [&[&str]; 4] = [
            &["-CAfile", "ci.pem", "-untrusted", "eum.pem", "euicc.pem"],
            &["-CAfile", "ci.pem", "dpauth.pem"],
            &["-CAfile", "ci.pem", "dppb.pem"],
            &["-CAfile", "ci.pem", "dptls.pem"],
        ];
        for args in cases {
            let (ok, text) = openssl_verify(&dir, args);
            assert!(
                ok && text.contains(": OK"),
                "{curve}: openssl verify {args:?}: {text}"
            );
        }
        // The TLS certificate is also acceptable for the TLS server and client purposes.
        for purpose in ["sslserver", "sslclient"] {
            let (ok, text) = openssl_verify(
                &dir,
                &["-purpose", purpose, "-CAfile", "ci.pem", "dptls.pem"],
            );
            assert!(ok, "{curve}: -purpose {purpose}: {text}");
        }
        // And OpenSSL can load the private keys.
        for key in ["ci.key", "euicc.key", "dptls.key"] {
            let out = Command::new(OPENSSL)
                .args(["pkey", "-in", key, "-noout"])
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{curve}: openssl pkey {key}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Documents why permittedEins is the default: OpenSSL applies RFC 5280 directoryName
/// matching, where the IIN in serialNumber must equal the whole EID, so it rejects the
/// SGP.22 "variant O" prefix form that our validator accepts.
#[test]
fn openssl_rejects_name_constraints_prefix_form() {
    if !Path::new(OPENSSL).exists() {
        eprintln!("skipping: {OPENSSL} not installed");
        return;
    }
    let p = common::pki_with_form(Curve::NistP256, EumRangeForm::NameConstraintsPrefix);
    let dir = common::temp_dir("openssl-nc");
    p.write_to(&dir).unwrap();
    let (ok, text) = openssl_verify(
        &dir,
        &["-CAfile", "ci.pem", "-untrusted", "eum.pem", "euicc.pem"],
    );
    assert!(!ok, "OpenSSL unexpectedly accepted the prefix form: {text}");
    assert!(
        text.contains("subtree violation"),
        "unexpected OpenSSL failure: {text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
