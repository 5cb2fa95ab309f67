//! The `smdpp euicc` clap surface: parsing errors and the offline commands.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use clap::Parser;
use euicc_sim::cli::{EuiccCommand, parse_profile_id, run};

#[derive(Parser, Debug)]
#[command(name = "euicc")]
struct T {
    #[command(subcommand)]
    cmd: EuiccCommand,
}

fn parse(args: &[&str]) -> Result<EuiccCommand, String> {
    let mut v = vec!["euicc"];
    v.extend_from_slice(args);
    T::try_parse_from(v)
        .map(|t| t.cmd)
        .map_err(|e| e.to_string())
}

#[test]
fn bad_flags_are_refused_with_clear_messages() {
    let e = parse(&["download", "LPA:1$a$B"]).unwrap_err();
    assert!(e.contains("--state"), "{e}");
    let e = parse(&[
        "download",
        "--state",
        "s",
        "LPA:1$a$B",
        "--insecure",
        "--http",
    ])
    .unwrap_err();
    assert!(e.contains("cannot be used with"), "{e}");
    let e = parse(&["profiles", "frob", "--state", "s"]).unwrap_err();
    assert!(e.contains("frob"), "{e}");
    let e = parse(&["init", "--state", "s"]).unwrap_err();
    assert!(e.contains("--pki"), "{e}");
    assert!(
        parse(&[
            "download",
            "--state",
            "s",
            "LPA:1$a:1$B",
            "--cc",
            "1",
            "--imei",
            "356938035643809"
        ])
        .is_ok()
    );
    let e = parse_profile_id("12345").unwrap_err().to_string();
    assert!(e.contains("neither an ICCID"), "{e}");
    assert!(parse_profile_id("8944000000000000017").is_ok());
    assert!(parse_profile_id("A0000005591010FFFFFFFF8900001000").is_ok());
}

#[test]
fn init_info_profiles_and_errors() {
    let pki = common::pki();
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    pki.write_to(&pki_dir).unwrap();
    let state = dir.path().join("card.json");
    let s = state.to_str().unwrap();
    let p = pki_dir.to_str().unwrap();
    // Missing state file: a helpful message.
    let e = run(parse(&["info", "--state", s]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("euicc init"), "{e}");
    // Bad EID.
    let e = run(parse(&["init", "--state", s, "--pki", p, "--eid", "123"]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("32 decimal digits"), "{e}");
    // Missing PKI dir.
    let e = run(parse(&["init", "--state", s, "--pki", "/nonexistent-pki"]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("eum.pem"), "{e}");
    run(parse(&["init", "--state", s, "--pki", p]).unwrap()).unwrap();
    let e = run(parse(&["init", "--state", s, "--pki", p]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("already exists"), "{e}");
    run(parse(&["info", "--state", s]).unwrap()).unwrap();
    run(parse(&["info", "--state", s, "--json"]).unwrap()).unwrap();
    run(parse(&["profiles", "list", "--state", s]).unwrap()).unwrap();
    run(parse(&["notifications", "list", "--state", s, "--json"]).unwrap()).unwrap();
    let e = run(parse(&["profiles", "enable", "--state", s, "8944000000000000017"]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("IccidOrAidNotFound"), "{e}");
    let e = run(parse(&["download", "--state", s, "not-an-ac"]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("activation code"), "{e}");
    let e = run(parse(&[
        "download",
        "--state",
        s,
        "LPA:1$127.0.0.1:1$X",
        "--imei",
        "12",
    ])
    .unwrap())
    .unwrap_err()
    .to_string();
    assert!(e.contains("IMEI"), "{e}");
    // Nothing listening: a transport error, state intact.
    let e = run(parse(&["download", "--state", s, "LPA:1$127.0.0.1:1$X"]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("transport"), "{e}");
    // The state file never contains the key in a printable command output; it is 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
    }
}
