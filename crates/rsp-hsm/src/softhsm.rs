//! Test support: a private SoftHSM2 token directory (its own `SOFTHSM2_CONF`), so tests and
//! demonstrations never touch the machine's tokens.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` when the module is initialised, so the variable must be in
//! the environment of the process that loads the module: tests pass [`SoftHsm::conf`] to a
//! child process (`Command::env`).
//!
//! When the module or `softhsm2-util` is missing, [`SoftHsm::skip`] prints why and tells the
//! test to return, unless `SMDPP_REQUIRE_SOFTHSM=1` (CI), where it panics instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::SOFTHSM2_MODULE;

/// The environment variable that turns a missing SoftHSM2 into a test failure.
pub const REQUIRE_ENV: &str = "SMDPP_REQUIRE_SOFTHSM";

/// A SoftHSM2 configuration with its own token directory.
#[derive(Debug, Clone)]
pub struct SoftHsm {
    /// The configuration file (the value for `SOFTHSM2_CONF`).
    pub conf: PathBuf,
    /// The token directory.
    pub token_dir: PathBuf,
}

impl SoftHsm {
    /// Whether SoftHSM2 (module and `softhsm2-util`) is installed.
    pub fn available() -> bool {
        Path::new(SOFTHSM2_MODULE).exists()
            && Command::new("softhsm2-util")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
    }

    /// `true` when the calling test should return because SoftHSM2 is missing (the reason is
    /// printed). Panics instead when [`REQUIRE_ENV`] is `1`.
    #[allow(clippy::panic)]
    pub fn skip() -> bool {
        if Self::available() {
            return false;
        }
        if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") {
            panic!(
                "SoftHSM2 is required ({REQUIRE_ENV}=1) but {SOFTHSM2_MODULE} or softhsm2-util is missing"
            );
        }
        eprintln!(
            "skipped: SoftHSM2 is not installed ({SOFTHSM2_MODULE}, softhsm2-util); apt-get install softhsm2"
        );
        true
    }

    /// Writes a configuration under `dir` whose token directory is `dir/tokens`.
    pub fn create(dir: &Path) -> std::io::Result<SoftHsm> {
        let token_dir = dir.join("tokens");
        std::fs::create_dir_all(&token_dir)?;
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                token_dir.display()
            ),
        )?;
        Ok(SoftHsm { conf, token_dir })
    }

    /// Initialises a new token labelled `label` in a free slot with user PIN `pin`.
    pub fn init_token(&self, label: &str, pin: &str) -> std::io::Result<()> {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &self.conf)
            .args(["--init-token", "--free", "--label", label, "--pin", pin])
            .args(["--so-pin", "so-pin-not-used"])
            .output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "softhsm2-util --init-token failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }
}
