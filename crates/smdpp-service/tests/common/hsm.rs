//! Key custody of the in-process test servers: software keys (the PEM files of the test PKI,
//! the default) or, with `SMDPP_TEST_KEY_CUSTODY=softhsm`, the same keys imported into a
//! throwaway SoftHSM2 token so that every download of the suite signs with `rsp_hsm::HsmKey`
//! (SK.DPauth, SK.DPpb and, on the rustls listener, SK.DP.TLS inside the handshake).
//!
//! [`apply`] is called by `Server::start_on` for every server a test starts: it imports the
//! key files the settings name (once per key; labels are derived from the key's public point)
//! and replaces each path by its `pkcs11:object=LABEL` reference, with the token in
//! `Settings::pkcs11`. A server then loads its keys exactly as `smdpp serve --pkcs11-module
//! ... --dpauth-key pkcs11:object=...` does.
//!
//! The token: one per test process, labelled `smdpp-test-<pid>`, created at first use
//! ([`token`], a `OnceLock`). SoftHSM2 takes its configuration from `SOFTHSM2_CONF` when the
//! module is initialised, and a test process cannot set its own environment (the workspace
//! forbids `unsafe`, which `std::env::set_var` needs), so the switch needs `SOFTHSM2_CONF`
//! set by the caller to a file path in a scratch directory: the file is written when missing,
//! with the token directory `<its directory>/tokens` (`scripts/test.sh` uses a `mktemp -d`).
//! With the switch on, a missing SoftHSM2 or `SOFTHSM2_CONF` is a failure, never a silent
//! fallback to software keys; [`assert_in_effect`] proves the keys are on the token.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rsp_crypto::{Curve, KeyCustody, SoftwareKey};
use rsp_hsm::{SOFTHSM2_MODULE, Token, admin};
use smdpp_service::assembly::{Settings, TlsBackend};
use smdpp_service::hsm::{Pkcs11Settings, URI_PREFIX};

/// The switch: `softhsm` (keys on a SoftHSM2 token) or unset / `software`.
pub const CUSTODY_ENV: &str = "SMDPP_TEST_KEY_CUSTODY";

/// Whether the suite runs with its keys on SoftHSM2. Any other value than `softhsm`,
/// `software` or empty is refused (a typo must not run the software suite unnoticed).
pub fn on_token() -> bool {
    match std::env::var(CUSTODY_ENV).as_deref() {
        Ok("softhsm") => true,
        Ok("software" | "") | Err(_) => false,
        Ok(other) => panic!("{CUSTODY_ENV}={other:?}: expected softhsm or software"),
    }
}

/// The per-process token and the keys imported into it.
pub struct TestToken {
    /// What `Settings::pkcs11` gets (module, label, PIN file).
    pub settings: Pkcs11Settings,
    /// The logged-in token (the same `Arc` the servers of this process use: the token is
    /// opened once per process, see `Pkcs11Settings::open`).
    pub token: Arc<Token>,
    /// Labels of the keys imported so far, by public point.
    imported: Mutex<HashMap<Vec<u8>, String>>,
}

/// The token of this process, created on first use. Panics (with the reason) when
/// SoftHSM2 or `SOFTHSM2_CONF` is missing.
pub fn token() -> &'static TestToken {
    static TOKEN: OnceLock<TestToken> = OnceLock::new();
    TOKEN.get_or_init(create)
}

fn create() -> TestToken {
    assert!(
        rsp_hsm::softhsm::SoftHsm::available(),
        "{CUSTODY_ENV}=softhsm but SoftHSM2 is not installed ({SOFTHSM2_MODULE}, \
         softhsm2-util); apt-get install softhsm2"
    );
    let conf = std::env::var_os("SOFTHSM2_CONF")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "{CUSTODY_ENV}=softhsm needs SOFTHSM2_CONF: a file path in a scratch directory \
                 (written when missing, tokens beside it); e.g. \
                 SOFTHSM2_CONF=$(mktemp -d)/softhsm2.conf"
            )
        });
    let dir = conf
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    if !conf.exists() {
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        // Written beside and renamed: another test process may do the same at once.
        let tmp = dir.join(format!(".softhsm2.conf.{}", std::process::id()));
        std::fs::write(
            &tmp,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
                 slots.removable = false\n",
                tokens.display()
            ),
        )
        .unwrap();
        std::fs::rename(&tmp, &conf).unwrap();
    }
    let label = format!("smdpp-test-{}", std::process::id());
    let pin = format!("pin-{}", std::process::id());
    let out = std::process::Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", &label, "--pin", &pin])
        .args(["--so-pin", "so-pin-not-used"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "softhsm2-util --init-token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pin_file = dir.join(format!("pin-{}", std::process::id()));
    std::fs::write(&pin_file, format!("{pin}\n")).unwrap();
    let settings = Pkcs11Settings {
        module: PathBuf::from(SOFTHSM2_MODULE),
        token: label,
        pin_file: Some(pin_file),
    };
    let token = settings.open().unwrap();
    eprintln!(
        "SoftHSM2 test token {:?} ({}), {CUSTODY_ENV}={}",
        settings.token,
        conf.display(),
        if on_token() { "softhsm" } else { "unset" }
    );
    TestToken {
        settings,
        token,
        imported: Mutex::new(HashMap::new()),
    }
}

impl TestToken {
    /// Imports the PEM key at `path` (once per key) and returns its reference
    /// `pkcs11:object=LABEL`; `None` when the file does not hold a key (left to the server to
    /// refuse) or when `p256_only` and the key is brainpool.
    fn import(&self, path: &Path, p256_only: bool) -> Option<PathBuf> {
        let pem = zeroize::Zeroizing::new(std::fs::read_to_string(path).ok()?);
        let key = SoftwareKey::from_pem(&pem).ok()?;
        if p256_only && key.curve() != Curve::NistP256 {
            return None;
        }
        let mut imported = self.imported.lock().unwrap();
        let public = key.public_key().to_vec();
        let label = match imported.get(&public) {
            Some(l) => l.clone(),
            None => {
                let label = format!("k{}", &admin::fingerprint(&public)[..16]);
                admin::import_pem(&self.token, &label, &pem).unwrap();
                imported.insert(public, label.clone());
                label
            }
        };
        Some(PathBuf::from(format!("{URI_PREFIX}object={label}")))
    }

    /// The labels of the EC keys on the token (`smdpp keys hsm list`).
    pub fn labels(&self) -> Vec<String> {
        admin::list(&self.token)
            .unwrap()
            .into_iter()
            .map(|s| s.label)
            .collect()
    }
}

fn is_reference(p: &Path) -> bool {
    p.to_str().is_some_and(|s| s.starts_with(URI_PREFIX))
}

/// Moves the keys of `s` onto the token when the switch is on (see the module
/// documentation); does nothing otherwise, or when `s` already names a token.
pub fn apply(s: &mut Settings) {
    if !on_token() || s.pkcs11.is_some() {
        return;
    }
    let t = token();
    let swap = |slot: &mut Option<PathBuf>, default: PathBuf, p256_only: bool| {
        let path = slot.clone().unwrap_or(default);
        if is_reference(&path) {
            return;
        }
        if let Some(r) = t.import(&path, p256_only) {
            *slot = Some(r);
        }
    };
    swap(&mut s.dpauth_key, s.pki_dir.join("dpauth.key"), false);
    swap(&mut s.dppb_key, s.pki_dir.join("dppb.key"), false);
    // The DPtls key inside the handshake: rustls (P-256) only; the OpenSSL listener takes
    // its key from a file (docs/SECURITY-DESIGN.md, out of scope).
    if !s.plain_http && s.tls_backend == TlsBackend::Rustls {
        swap(&mut s.dptls_key, s.pki_dir.join("dptls.key"), true);
    }
    for k in &mut s.key_sets {
        for slot in [&mut k.dpauth_key, &mut k.dppb_key] {
            if !is_reference(slot)
                && let Some(r) = t.import(slot, false)
            {
                *slot = r;
            }
        }
    }
    s.pkcs11 = Some(t.settings.clone());
}

/// With the switch on: `s` names token objects for DPauth, DPpb (and DPtls on rustls),
/// those objects are on the token, and the token's signature counter grew by at least
/// `min_signatures` since `before` (so the server really signed with the token). Returns
/// whether the switch is on.
pub fn assert_in_effect(s: &Settings, before: u64, min_signatures: u64) -> bool {
    if !on_token() {
        assert!(s.pkcs11.is_none(), "software custody: no token expected");
        return false;
    }
    let t = token();
    assert!(
        s.pkcs11.is_some(),
        "the server was started without the token"
    );
    let labels = t.labels();
    let mut keys = vec![s.dpauth_key.as_ref(), s.dppb_key.as_ref()];
    if !s.plain_http && s.tls_backend == TlsBackend::Rustls {
        keys.push(s.dptls_key.as_ref());
    }
    for k in keys {
        let k = k.expect("a key reference").to_str().unwrap();
        let label = k
            .strip_prefix("pkcs11:object=")
            .unwrap_or_else(|| panic!("{k} is not on the token: silent software fallback"));
        assert!(
            labels.iter().any(|l| l == label),
            "{label} not in {labels:?}"
        );
    }
    let signed = t.token.signatures() - before;
    assert!(
        signed >= min_signatures,
        "the token made {signed} signatures, expected at least {min_signatures}"
    );
    true
}

/// The token's signature counter now (0 with the switch off).
pub fn signatures() -> u64 {
    if on_token() {
        token().token.signatures()
    } else {
        0
    }
}

/// Imports `pem` as `label` on this process's token and opens it (for tests that put one
/// particular key on the token).
pub fn import_pem(label: &str, pem: &str) -> Arc<dyn KeyCustody> {
    let t = token();
    admin::import_pem(&t.token, label, pem).unwrap();
    Arc::new(rsp_hsm::HsmKey::open(Arc::clone(&t.token), label).unwrap())
}
