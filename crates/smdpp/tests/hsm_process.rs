//! Keys on a PKCS#11 token (SoftHSM2), end to end with real processes: `smdpp keys hsm`
//! imports the SGP.22 keys of a test PKI into a private token, `smdpp serve` runs with
//! DPauth, DPpb, DPtls (inside the TLS handshake) and the vault KEK on the token, and
//! `smdpp euicc` downloads over real TLS that verifies CERT.DP.TLS, on P-256 and on
//! brainpoolP256r1 (whose DPtls is a separate P-256 key, also on the token: rustls has no
//! brainpool). Afterwards the server's memory (/proc/PID/mem over /proc/PID/maps), its
//! SQLite files and its captured stderr are searched for the private scalars the test
//! imported: none may be there. Plus the refusals at start-up (wrong PIN, missing object).
//!
//! Without SoftHSM2 the tests print why and pass, unless `SMDPP_REQUIRE_SOFTHSM=1` (CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rsp_crypto::SoftwareKey;
use rsp_hsm::SOFTHSM2_MODULE;
use rsp_hsm::softhsm::SoftHsm;

const BIN: &str = env!("CARGO_BIN_EXE_smdpp");
const TOKEN: &str = "smdpp";
const PIN: &str = "4711-hsm-pin";

fn ts48(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/profiles/ts48")
        .join(name)
}

/// A private SoftHSM2 token directory with one token and a PIN file.
struct Hsm {
    hsm: SoftHsm,
    pin_file: PathBuf,
}

impl Hsm {
    fn new(dir: &Path) -> Hsm {
        let hsm = SoftHsm::create(&dir.join("softhsm")).unwrap();
        hsm.init_token(TOKEN, PIN).unwrap();
        let pin_file = dir.join("pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        Hsm { hsm, pin_file }
    }

    /// `smdpp` with the token in its environment.
    fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env("SOFTHSM2_CONF", &self.hsm.conf)
            .env("SMDPP_PKCS11_MODULE", SOFTHSM2_MODULE)
            .env("SMDPP_PKCS11_TOKEN", TOKEN)
            .env("SMDPP_PKCS11_PIN_FILE", &self.pin_file)
            .env_remove("SMDPP_PKCS11_PIN");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "smdpp {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// `smdpp` (no token in the environment).
fn run_ok(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "smdpp {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process, killed on drop; stdout lines collected, stderr written to a file.
struct Server {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn wait_for(&mut self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("smdpp serve exited ({status}) before printing {needle:?}");
            }
            assert!(start.elapsed() < Duration::from_secs(60), "timed out");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The 32-byte private scalar and the public point of a PEM key file.
fn scalar(pem: &Path) -> ([u8; 32], Vec<u8>) {
    use rsp_crypto::KeyCustody;
    let key = SoftwareKey::from_pem(&std::fs::read_to_string(pem).unwrap()).unwrap();
    (*key.expose_scalar(), key.public_key().to_vec())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The encodings of a scalar a leak would show: raw big-endian bytes (what a DER key
/// document or a software key holds), hex in both cases, and the byte-reversed form of a
/// bignum's little-endian limbs.
fn encodings(d: &[u8; 32]) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("raw", d.to_vec()),
        ("hex", hex::encode(d).into_bytes()),
        ("HEX", hex::encode_upper(d).into_bytes()),
        // Little-endian: how a bignum library keeps it in 64-bit limbs.
        ("reversed", d.iter().rev().copied().collect()),
    ]
}

/// Searches the readable memory of process `pid`, region by region, for `secrets`; returns
/// where they were found. `control` must be found (it proves the scan sees the heap).
fn scan_memory(pid: u32, secrets: &[(String, [u8; 32])], control: &[u8]) -> Vec<String> {
    let mut control_seen = false;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut found = Vec::new();
    let mut scanned = 0usize;
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
            continue;
        }
        let (a, b) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(a, 16).unwrap();
        let end = u64::from_str_radix(b, 16).unwrap();
        let mut buf = vec![0u8; usize::try_from(end - start).unwrap()];
        if mem.seek(SeekFrom::Start(start)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        scanned += buf.len();
        control_seen |= contains(&buf, control);
        for (name, d) in secrets {
            for (enc, bytes) in encodings(d) {
                if contains(&buf, &bytes) {
                    found.push(format!("{name} ({enc}) in {line}"));
                }
            }
        }
    }
    assert!(scanned > 1 << 20, "scanned only {scanned} bytes of memory");
    assert!(
        control_seen,
        "the DPauth public key (held by the server) was not found: the scan is blind"
    );
    eprintln!("scanned {} MiB of the server's memory", scanned >> 20);
    found
}

/// A test PKI for `curve` with its keys on the token, the server with every key there, a
/// download of the demo profile and of an imported TS.48 profile, then the search for the
/// private scalars.
fn download_with_keys_on_token(dir: &Path, curve: &str) {
    let hsm = Hsm::new(dir);
    let pki = dir.join("pki");
    let pki_s = pki.to_str().unwrap();
    run_ok(&[
        "pki",
        "init",
        "--out",
        pki_s,
        "--curve",
        curve,
        "--smdp-address",
        "127.0.0.1",
    ]);
    // TLS is P-256 (rustls): a brainpool set gets a P-256 DPtls from a TLS PKI of its own,
    // which the device trusts as an extra CI.
    let (tls_cert, tls_key) = if curve == "nist" {
        (pki.join("dptls.pem"), pki.join("dptls.key"))
    } else {
        let tls = dir.join("tls");
        run_ok(&[
            "pki",
            "init",
            "--out",
            tls.to_str().unwrap(),
            "--curve",
            "nist",
            "--smdp-address",
            "127.0.0.1",
        ]);
        (tls.join("dptls.pem"), tls.join("dptls.key"))
    };
    let device_pki = dir.join("device-pki");
    std::fs::create_dir_all(device_pki.join("trusted-ci")).unwrap();
    for f in ["eum.pem", "eum.key", "ci.pem"] {
        std::fs::copy(pki.join(f), device_pki.join(f)).unwrap();
    }
    if curve != "nist" {
        std::fs::copy(
            dir.join("tls/ci.pem"),
            device_pki.join("trusted-ci/tls-ci.pem"),
        )
        .unwrap();
    }

    let mut secrets = Vec::new();
    let mut control = Vec::new();
    for (label, file) in [
        ("dpauth", pki.join("dpauth.key")),
        ("dppb", pki.join("dppb.key")),
        ("dptls", tls_key.clone()),
    ] {
        let (d, public) = scalar(&file);
        if label == "dpauth" {
            control = public;
        }
        secrets.push((label.to_owned(), d));
        let out = hsm.run_ok(&[
            "keys",
            "hsm",
            "import",
            "--label",
            label,
            "--key",
            file.to_str().unwrap(),
        ]);
        assert!(out.starts_with(&format!("imported {label}\t")), "{out}");
        // The server must not be able to fall back to the file.
        std::fs::remove_file(&file).unwrap();
    }
    let out = hsm.run_ok(&["keys", "hsm", "generate", "--label", "kek", "--aes"]);
    assert_eq!(out, "generated kek\tAES\n");
    let list = hsm.run_ok(&["keys", "hsm", "list"]);
    assert_eq!(list.lines().count(), 4, "{list}");
    for (name, d) in &secrets {
        assert!(
            !list.contains(&hex::encode(d)),
            "{name} scalar in the listing"
        );
    }

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let data = dir.join("data");
    let stderr_path = dir.join("serve.stderr");
    let mut child = hsm
        .command()
        .args([
            "serve",
            "--listen",
            &listen,
            "--admin-listen",
            "off",
            "--data-dir",
            data.to_str().unwrap(),
            "--pki",
            pki_s,
            "--dpauth-key",
            "pkcs11:object=dpauth",
            "--dppb-key",
            "pkcs11:object=dppb",
            "--dptls-cert",
            tls_cert.to_str().unwrap(),
            "--dptls-key",
            "pkcs11:object=dptls",
            "--kek-file",
            "pkcs11:object=kek",
        ])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let out = child.stdout.take().unwrap();
    let l2 = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            l2.lock().unwrap().push(line);
        }
    });
    let mut server = Server { child, lines };
    server.wait_for("run a virtual device against it");
    let demo_ac = server
        .wait_for("demo profile Activation Code: ")
        .trim_start_matches("demo profile Activation Code: ")
        .to_owned();

    // The device verifies CERT.DP.TLS (signed on the token inside the handshake), then
    // serverSigned1 (DPauth) and smdpSigned2 / the BPP (DPpb, ECKA on the token).
    let state = dir.join("dev.json");
    let state_s = state.to_str().unwrap();
    run_ok(&[
        "euicc",
        "init",
        "--state",
        state_s,
        "--pki",
        device_pki.to_str().unwrap(),
    ]);
    let out = run_ok(&["euicc", "download", "--state", state_s, &demo_ac]);
    assert!(out.contains("installed "), "{out}");

    // A one-shot command seals a profile under the KEK on the token (from the environment)
    // while the server runs; the device downloads it byte for byte.
    let file = ts48("TS48v5_SAIP2.3_NoBERTLV.der");
    let out = hsm.run_ok(&[
        "profiles",
        "add",
        "--data-dir",
        data.to_str().unwrap(),
        "--kek-file",
        "pkcs11:object=kek",
        "--upp",
        file.to_str().unwrap(),
        "--smdp-address",
        &listen,
    ]);
    let ac = out
        .lines()
        .find_map(|l| l.strip_prefix("Activation Code: "))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    run_ok(&["euicc", "download", "--state", state_s, &ac]);
    let st = euicc_sim::state::EuiccState::load(&state).unwrap();
    let p = st
        .profiles
        .iter()
        .find(|p| p.iccid == "89000123456789012341")
        .unwrap();
    assert_eq!(p.profile_package, std::fs::read(&file).unwrap());
    let status = hsm.run_ok(&[
        "keys",
        "status",
        "--data-dir",
        data.to_str().unwrap(),
        "--kek-file",
        "pkcs11:object=kek",
    ]);
    assert!(
        status.starts_with("key-encryption key:   pkcs11:kek:"),
        "{status}"
    );

    // No private scalar in the running server's memory ...
    let found = scan_memory(server.child.id(), &secrets, &control);
    assert!(
        found.is_empty(),
        "private keys in the server's memory: {found:?}"
    );
    // ... nor in its database files, nor in what it logged.
    let mut files = vec![stderr_path.clone()];
    for e in std::fs::read_dir(&data).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("smdpp.db")
        {
            files.push(p);
        }
    }
    assert!(files.len() >= 2, "{files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for (name, d) in &secrets {
            for (enc, b) in encodings(d) {
                assert!(!contains(&bytes, &b), "{name} ({enc}) in {}", f.display());
            }
        }
    }
    let log = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        log.contains("key on the PKCS#11 token label=dpauth"),
        "{log}"
    );
    assert!(!log.contains(PIN), "the PIN was logged");
}

#[test]
fn p256_download_with_every_key_on_softhsm_leaves_no_private_key_in_memory_db_or_logs() {
    if SoftHsm::skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    download_with_keys_on_token(dir.path(), "nist");
}

#[test]
fn brainpool_download_with_every_key_on_softhsm_leaves_no_private_key_in_memory_db_or_logs() {
    if SoftHsm::skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    download_with_keys_on_token(dir.path(), "brainpool");
}

/// `smdpp serve` with the P-256 test PKI whose DPauth is on the token; `extra` replaces or
/// adds flags. Returns the failed start's stderr.
fn failed_start(hsm: &Hsm, dir: &Path, extra: &[&str]) -> String {
    let pki = dir.join("pki");
    if !pki.exists() {
        run_ok(&[
            "pki",
            "init",
            "--out",
            pki.to_str().unwrap(),
            "--smdp-address",
            "127.0.0.1",
        ]);
        hsm.run_ok(&[
            "keys",
            "hsm",
            "import",
            "--label",
            "dpauth",
            "--key",
            pki.join("dpauth.key").to_str().unwrap(),
        ]);
    }
    let listen = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "serve",
        "--listen",
        &listen,
        "--admin-listen",
        "off",
        "--data-dir",
        dir.join("data").to_str().unwrap().to_owned().leak(),
        "--pki",
        pki.to_str().unwrap().to_owned().leak(),
    ];
    args.extend_from_slice(extra);
    let out = hsm
        .command()
        .args(&args)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn rejects_wrong_hsm_pin() {
    if SoftHsm::skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hsm = Hsm::new(dir.path());
    let wrong = dir.path().join("wrong-pin");
    std::fs::write(&wrong, "not-the-pin\n").unwrap();
    let err = failed_start(
        &hsm,
        dir.path(),
        &[
            "--dpauth-key",
            "pkcs11:object=dpauth",
            "--pkcs11-pin-file",
            wrong.to_str().unwrap(),
        ],
    );
    assert_eq!(
        err,
        "error: the PKCS#11 token \"smdpp\" refused the PIN (CKR_PIN_INCORRECT)\n"
    );
    assert!(!err.contains("not-the-pin"));
    // No PIN at all: neither a file nor SMDPP_PKCS11_PIN.
    let out = hsm
        .command()
        .env_remove("SMDPP_PKCS11_PIN_FILE")
        .args(["keys", "hsm", "list"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: PKCS#11 PIN: no PIN: give a PIN file or set SMDPP_PKCS11_PIN\n"
    );
}

#[test]
fn rejects_missing_token_object() {
    if SoftHsm::skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hsm = Hsm::new(dir.path());
    let err = failed_start(
        &hsm,
        dir.path(),
        &["--dppb-key", "pkcs11:object=no-such-key"],
    );
    assert_eq!(
        err,
        "error: no EC private key labelled \"no-such-key\" on the PKCS#11 token \"smdpp\"\n"
    );
    let err = failed_start(
        &hsm,
        dir.path(),
        &[
            "--dpauth-key",
            "pkcs11:object=dpauth",
            "--kek-file",
            "pkcs11:object=kek",
        ],
    );
    assert_eq!(
        err,
        "error: no AES key labelled \"kek\" on the PKCS#11 token \"smdpp\"\n"
    );
}

#[test]
fn rejects_bad_pkcs11_settings() {
    if SoftHsm::skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hsm = Hsm::new(dir.path());
    let err = failed_start(
        &hsm,
        dir.path(),
        &["--dpauth-key", "pkcs11:token=x;object=dpauth"],
    );
    assert_eq!(
        err,
        "error: PKCS#11 key reference \"pkcs11:token=x;object=dpauth\": only \
         `pkcs11:object=LABEL` is supported (the token is --pkcs11-token)\n"
    );
    let out = Command::new(BIN)
        .args(["keys", "hsm", "list", "--pkcs11-module", SOFTHSM2_MODULE])
        .env_remove("SMDPP_PKCS11_TOKEN")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: --pkcs11-module needs --pkcs11-token (the token label)\n"
    );
    let out = hsm
        .command()
        .args(["keys", "hsm", "list", "--pkcs11-token", "other"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("error: no PKCS#11 token labelled \"other\" in {SOFTHSM2_MODULE}\n")
    );
}
