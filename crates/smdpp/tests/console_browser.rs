//! The web console in a real headless browser: runs `tests/console/test_console.py`
//! (Playwright for Python driving Debian's Chromium) against this build's `smdpp` binary.
//! The script starts its own `smdpp serve`, an HTTPS callback receiver and the virtual eUICC,
//! and checks log-in, search, the timeline after a download, orders and their QR code, the
//! retry of a failed callback, /metrics, and the refusals (wrong password, expired session,
//! CSRF-less POST, another operator's profile). It writes the screenshots in `docs/console/`
//! (or `SMDPP_CONSOLE_SCREENSHOT_DIR`).
//!
//! `scripts/browser-deps.sh` installs what it needs. When python3, Playwright, Chromium or
//! zbarimg is missing, the test prints why and passes, unless `SMDPP_REQUIRE_BROWSER=1`
//! (then it fails).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_smdpp");

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/console/test_console.py")
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What is missing to run the browser tests (empty: everything is there).
fn missing() -> Vec<&'static str> {
    let mut m = Vec::new();
    let chromium =
        std::env::var("SMDPP_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    if !succeeds(Command::new(python()).arg("--version")) {
        m.push("python3");
    } else if !succeeds(
        Command::new(python())
            .arg("-c")
            .arg("import playwright.sync_api"),
    ) {
        m.push("Playwright for Python (pip install playwright)");
    }
    if !Path::new(&chromium).exists() {
        m.push("chromium");
    }
    if !succeeds(Command::new("zbarimg").arg("--version")) {
        m.push("zbarimg (zbar-tools)");
    }
    if !succeeds(Command::new("openssl").arg("version")) {
        m.push("openssl");
    }
    m
}

#[test]
fn console_in_headless_chromium() {
    let required = std::env::var("SMDPP_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let missing = missing();
    if !missing.is_empty() {
        let why = format!(
            "console browser tests need {} (scripts/browser-deps.sh installs them)",
            missing.join(", ")
        );
        assert!(!required, "SMDPP_REQUIRE_BROWSER=1 but {why}");
        eprintln!("SKIPPED: {why}");
        return;
    }
    // The output goes through print! so that the harness shows it for a failure only.
    let out = Command::new(python())
        .arg(script())
        .env("SMDPP_BIN", BIN)
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run tests/console/test_console.py");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "tests/console/test_console.py failed ({}); its output above lists the failed checks",
        out.status
    );
}
