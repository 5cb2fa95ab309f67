//! The operator-side commands as processes: `smdpp operators ...` and `smdpp orders ...` on a
//! temporary data directory (SQLite), through the whole order lifecycle, the QR outputs, and
//! the error messages for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_smdpp");
const ICCID: &str = "89000123456789012341";

fn ts48(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/profiles/ts48")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SMDPP_DATA_DIR")
        .env_remove("SMDPP_DATABASE_URL")
        .env_remove("SMDPP_CONFIG")
        .output()
        .unwrap()
}

fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "smdpp {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn assert_fails(args: &[&str], needle: &str) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "smdpp {args:?} should fail");
    assert!(
        stderr.contains(needle),
        "smdpp {args:?}: {needle:?} not in {stderr:?}"
    );
}

/// A self-signed operator client certificate written by openssl.
fn operator_cert(dir: &Path) -> PathBuf {
    let cert = dir.join("op.pem");
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .arg("ec_paramgen_curve:P-256")
        .args(["-nodes", "-days", "30", "-subj", "/CN=operator-one"])
        .arg("-keyout")
        .arg(dir.join("op.key"))
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(status.status.success(), "openssl req failed");
    cert
}

#[test]
fn order_lifecycle_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let cert = operator_cert(dir.path());
    let out = run_ok(&[
        "operators",
        "add",
        "--id",
        "OP1",
        "--cert",
        cert.to_str().unwrap(),
        "--data-dir",
        data_s,
    ]);
    assert!(out.contains("operator OP1 registered"), "{out}");
    assert!(run_ok(&["operators", "list", "--data-dir", data_s]).contains("OP1"));

    let scope = ["--data-dir", data_s, "--operator", "OP1"];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(scope.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let call = |args: &[&str]| {
        let v = with(args);
        run_ok(&v.iter().map(String::as_str).collect::<Vec<_>>())
    };

    let upp = ts48("TS48v4_SAIP2.3_BERTLV.der");
    let out = call(&[
        "orders",
        "import",
        "--upp",
        upp.to_str().unwrap(),
        "--profile-type",
        "test",
    ]);
    assert!(out.contains(&format!("imported {ICCID}")), "{out}");
    assert!(call(&["orders", "create", "--profile-type", "test"]).contains(ICCID));
    let out = call(&[
        "orders",
        "confirm",
        ICCID,
        "--release",
        "--confirmation-code",
        "97531",
    ]);
    assert!(out.contains("(Released)"), "{out}");
    assert!(out.contains("$$1"), "CC flag in the Activation Code: {out}");

    let png = dir.path().join("qr.png");
    let svg = dir.path().join("qr.svg");
    let out = call(&[
        "orders",
        "qr",
        ICCID,
        "--png",
        png.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(out.starts_with("LPA:1$"), "{out}");
    let png_bytes = std::fs::read(&png).unwrap();
    assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));

    let show = call(&["orders", "show", ICCID]);
    assert!(show.contains("released"), "{show}");
    assert!(
        show.contains("DownloadOrder") && show.contains("ConfirmOrder"),
        "{show}"
    );
    // The confirmation code itself is never printed.
    assert!(!show.contains("97531"), "{show}");

    let out = call(&["orders", "cancel", ICCID, "--final-status", "available"]);
    assert!(out.contains(&format!("cancelled {ICCID}")), "{out}");
    let list = call(&["orders", "list"]);
    assert!(list.contains(ICCID) && list.contains("available"), "{list}");
}

#[test]
fn rejects_unknown_operator() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let upp = ts48("TS48v4_SAIP2.3_BERTLV.der");
    assert_fails(
        &[
            "orders",
            "import",
            "--data-dir",
            data.to_str().unwrap(),
            "--operator",
            "NOBODY",
            "--upp",
            upp.to_str().unwrap(),
            "--profile-type",
            "test",
        ],
        "unknown operator NOBODY",
    );
}

#[test]
fn rejects_operator_certificate_that_is_not_pem() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let out = run(&[
        "operators",
        "add",
        "--id",
        "OP1",
        "--cert",
        bogus.to_str().unwrap(),
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bogus.pem"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `operators add ARGS` on a fresh data directory must fail with exit code 1 and exactly
/// `stderr`, and leave no operator behind.
fn operator_add_refused(dir: &Path, extra: &[&str], stderr: &str) {
    let cert = operator_cert(dir);
    let data = dir.join("data");
    let mut args = vec![
        "operators",
        "add",
        "--id",
        "OP1",
        "--cert",
        cert.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1), "smdpp {args:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        stderr,
        "smdpp {args:?}"
    );
    assert!(out.stdout.is_empty(), "smdpp {args:?}");
    if data.exists() {
        let list = run_ok(&["operators", "list", "--data-dir", data.to_str().unwrap()]);
        assert!(!list.contains("OP1"), "{list}");
    }
}

#[test]
fn rejects_callback_ca_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let g = garbage.to_str().unwrap();
    operator_add_refused(
        dir.path(),
        &[
            "--callback-url",
            "https://op.example/es2",
            "--callback-ca",
            g,
        ],
        &format!("error: --callback-ca {g}: no certificate in it\n"),
    );
}

#[test]
fn rejects_callback_ca_whose_certificate_does_not_parse() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let b = bad.to_str().unwrap();
    operator_add_refused(
        dir.path(),
        &["--callback-ca", b],
        &format!("error: --callback-ca {b}: certificate 1 does not parse\n"),
    );
}

#[test]
fn rejects_callback_url_that_is_not_https() {
    let dir = tempfile::tempdir().unwrap();
    operator_add_refused(
        dir.path(),
        &["--callback-url", "http://op.example/es2"],
        "error: --callback-url: not an https:// URL\n",
    );
    operator_add_refused(
        dir.path(),
        &["--callback-url", "op.example/es2"],
        "error: --callback-url: not an https:// URL\n",
    );
}

#[test]
fn callback_ca_is_stored_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let cert = operator_cert(dir.path());
    let cert_s = cert.to_str().unwrap();
    // The operator's self-signed certificate doubles as a one-certificate CA bundle.
    run_ok(&[
        "operators",
        "add",
        "--id",
        "OP1",
        "--cert",
        cert_s,
        "--callback-url",
        "https://op.example/es2",
        "--callback-ca",
        cert_s,
        "--data-dir",
        data_s,
    ]);
    let show = run_ok(&["operators", "show", "OP1", "--data-dir", data_s]);
    let line = show
        .lines()
        .find(|l| l.starts_with("callback ca:"))
        .unwrap_or_else(|| panic!("{show}"));
    assert!(
        line.contains("operator-one") && line.ends_with("(1 certificate)"),
        "{line}"
    );
    run_ok(&[
        "operators",
        "add",
        "--id",
        "OP2",
        "--cert",
        operator_cert(&{
            let d = dir.path().join("op2");
            std::fs::create_dir_all(&d).unwrap();
            d
        })
        .to_str()
        .unwrap(),
        "--data-dir",
        data_s,
    ]);
    let show = run_ok(&["operators", "show", "OP2", "--data-dir", data_s]);
    assert!(show.contains("callback ca:   system roots\n"), "{show}");
}

/// `smdpp orders rpm | deactivate | update-metadata`: refusals with their SGP.22 codes or
/// clap's messages, and a deactivation of a released order.
#[test]
fn rpm_deactivate_and_update_metadata_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let cert = operator_cert(dir.path());
    run_ok(&[
        "operators",
        "add",
        "--id",
        "OP1",
        "--cert",
        cert.to_str().unwrap(),
        "--data-dir",
        data_s,
    ]);
    let upp = ts48("TS48v4_SAIP2.3_BERTLV.der");
    let scope = ["--data-dir", data_s, "--operator", "OP1"];
    let args = |a: &[&str]| -> Vec<String> {
        a.iter()
            .chain(scope.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let ok = |a: &[&str]| run_ok(&args(a).iter().map(String::as_str).collect::<Vec<_>>());
    let fails = |a: &[&str], needle: &str| {
        assert_fails(
            &args(a).iter().map(String::as_str).collect::<Vec<_>>(),
            needle,
        )
    };
    ok(&[
        "orders",
        "import",
        "--upp",
        upp.to_str().unwrap(),
        "--profile-type",
        "test",
    ]);
    ok(&["orders", "create", "--iccid", ICCID]);
    ok(&["orders", "confirm", ICCID, "--release"]);

    // RPM is only for a profile on an eUICC.
    fails(
        &["orders", "rpm", ICCID, "--command", "disable"],
        "ES2+.RpmOrder is not allowed for a Profile in state released (8.2.1/3.5)",
    );
    fails(
        &["orders", "rpm", ICCID, "--command", "reboot"],
        "invalid value 'reboot'",
    );
    fails(&["orders", "rpm", ICCID], "--command <COMMANDS>");
    fails(
        &["orders", "rpm", "123", "--command", "enable"],
        "ICCID must be 19 or 20 digits",
    );
    fails(
        &[
            "orders",
            "rpm",
            "8999999999999999999",
            "--command",
            "enable",
        ],
        "(8.2.1/3.9)",
    );
    assert!(ok(&["orders", "show", ICCID]).contains("history:"));

    // Deactivation of a released order cancels it.
    fails(
        &["orders", "deactivate", ICCID, "--reason", "bored"],
        "invalid value 'bored'",
    );
    fails(&["orders", "deactivate", ICCID], "--reason <REASON>");
    let out = ok(&["orders", "deactivate", ICCID, "--reason", "stolen"]);
    assert_eq!(
        out,
        format!("deactivated {ICCID}: orderCancelled (state available)\n")
    );
    fails(
        &["orders", "deactivate", ICCID, "--reason", "lost"],
        "DeactivateSubscription is not allowed for a Profile in state available (8.2.1/3.5)",
    );

    // Metadata updates: nothing installed yet.
    fails(&["orders", "update-metadata"], "required");
    let out = ok(&["orders", "update-metadata", "--type", "test"]);
    assert_eq!(out, "0 queued, 0 not queued, of 0 installed profiles\n");
    fails(&["orders", "update-metadata", ICCID], "no update queued");
}
