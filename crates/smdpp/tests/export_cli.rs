//! `smdpp subscribers export` and `smdpp subscribers decrypt` as processes, on a temporary
//! data directory (SQLite) with imported profiles: identifiers to standard output and to a
//! file, an encrypted export with secrets (mode 0600, no Ki in the clear, decrypted back to
//! standard output and to a 0600 file, `--force`), and every refusal with its exact message
//! and exit status: wrong passphrase, truncated and garbled files, `--with-secrets` without
//! a passphrase file or to standard output, an existing output file, a short passphrase, an
//! unknown format (clap's message).
//!
//! No command's stdout or stderr may contain a Ki or an OPc.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_smdpp");

const KI: &str = "A1B2C3D4E5F60718293A4B5C6D7E8F90";
const OPC: &str = "0F1E2D3C4B5A69788796A5B4C3D2E1F0";
const PASSPHRASE: &str = "correct horse battery staple";

const SMDPP_ENV: [&str; 4] = [
    "SMDPP_DATA_DIR",
    "SMDPP_DATABASE_URL",
    "SMDPP_CONFIG",
    "SMDPP_KEK_FILE",
];

fn luhn(body: &str) -> u32 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            match (i % 2 == 0, d * 2) {
                (true, x) if x > 9 => x - 9,
                (true, x) => x,
                (false, _) => d,
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

fn iccid(n: u32) -> String {
    let body = format!("8999901{n:012}");
    format!("{body}{}", luhn(&body))
}

fn imsi(n: u32) -> String {
    format!("00101{n:010}")
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// A data directory with type T1 and subscribers 1 and 2 imported.
    fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        env.ok(&[
            "types",
            "add",
            "T1",
            "--spn",
            "SPN",
            "--profile-name",
            "Profile",
        ]);
        let mut csv = String::from("iccid,imsi,ki,opc,pin1,puk1,pin2,puk2,adm1\n");
        for n in [1, 2] {
            csv.push_str(&format!(
                "{},{},{KI},{OPC},1234,12345678,5678,87654321,12345678\n",
                iccid(n),
                imsi(n)
            ));
        }
        let inv = env.write("inv.csv", &csv);
        env.ok(&["profiles", "import", "--type", "T1", inv.to_str().unwrap()]);
        env.write("pass.txt", &format!("{PASSPHRASE}\n"));
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// `smdpp ARGS --data-dir DIR/data` (and no SMDPP_* of the caller); checks that no
    /// secret appears in the output.
    fn run(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--data-dir")
            .arg(self.dir.path().join("data"));
        self.finish(cmd, args)
    }

    /// `smdpp ARGS` without `--data-dir` (`subscribers decrypt` takes none).
    fn run_bare(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        self.finish(cmd, args)
    }

    fn finish(&self, mut cmd: Command, args: &[&str]) -> Out {
        for v in SMDPP_ENV {
            cmd.env_remove(v);
        }
        let out = cmd.output().unwrap();
        let out = Out {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        };
        // `decrypt` to stdout prints the plaintext by design: the callers check it.
        if args.get(1) != Some(&"decrypt") || args.contains(&"--out") {
            for s in [KI, OPC, &KI.to_ascii_lowercase(), &OPC.to_ascii_lowercase()] {
                assert!(
                    !out.stdout.contains(s) && !out.stderr.contains(s),
                    "smdpp {args:?} printed a secret:\n{}{}",
                    out.stdout,
                    out.stderr
                );
            }
        }
        out
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.code == Some(0) && out.stderr.is_empty(),
            "smdpp {args:?} ({:?}): {}{}",
            out.code,
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    /// A command that must fail with exit status 1, exactly `stderr` and an empty stdout.
    fn refused(&self, out: Out, stderr: &str) {
        assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
        assert_eq!(out.stderr, stderr);
        assert_eq!(out.stdout, "");
    }

    /// `subscribers export --with-secrets --passphrase-file pass.txt --out NAME`, then
    /// `extra`.
    fn export_secrets(&self, name: &str, extra: &[&str]) -> Out {
        let (pass, out) = (self.p("pass.txt"), self.p(name));
        let mut args = vec![
            "subscribers",
            "export",
            "--with-secrets",
            "--passphrase-file",
            &pass,
            "--out",
            &out,
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn decrypt(&self, name: &str, pass: &str, extra: &[&str]) -> Out {
        let (input, pass) = (self.p(name), self.p(pass));
        let mut args = vec![
            "subscribers",
            "decrypt",
            "--in",
            &input,
            "--passphrase-file",
            &pass,
        ];
        args.extend_from_slice(extra);
        self.run_bare(&args)
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn plain_csv() -> String {
    format!(
        "iccid,imsi,msisdn,profile_type,state,eid\n{},{},,T1,available,\n{},{},,T1,available,\n",
        iccid(1),
        imsi(1),
        iccid(2),
        imsi(2)
    )
}

fn secret_csv() -> String {
    format!(
        "iccid,imsi,msisdn,profile_type,state,eid,ki,opc\n\
         {},{},,T1,available,,{KI},{OPC}\n{},{},,T1,available,,{KI},{OPC}\n",
        iccid(1),
        imsi(1),
        iccid(2),
        imsi(2)
    )
}

#[test]
fn identifiers_to_stdout_and_to_a_private_file() {
    let env = Env::new();
    let out = env.run(&["subscribers", "export"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, plain_csv());
    // The data is on stdout: the summary on stderr.
    assert_eq!(
        out.stderr,
        "exported 2 subscribers to standard output (csv, identifiers only)\n"
    );
    let file = env.p("ids.txt");
    assert_eq!(
        env.ok(&[
            "subscribers",
            "export",
            "--format",
            "osmo-hlr",
            "--out",
            &file
        ]),
        format!("exported 2 subscribers to {file} (osmo-hlr, identifiers only)\n")
    );
    assert_eq!(mode(Path::new(&file)), 0o600);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!(
            "! smdpp subscribers export: osmo-hlr VTY commands (telnet port 4258)\nenable\n\
             ! ICCID {}, type T1, state available\nsubscriber imsi {} create\n\
             ! ICCID {}, type T1, state available\nsubscriber imsi {} create\n",
            iccid(1),
            imsi(1),
            iccid(2),
            imsi(2)
        )
    );
}

#[test]
fn encrypted_export_is_private_and_decrypts() {
    let env = Env::new();
    let enc = env.path("subs.enc");
    let out = env.export_secrets("subs.enc", &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert_eq!(
        out.stdout,
        format!(
            "exported 2 subscribers to {0} (csv, with Ki and OPc, encrypted)\n\
             decrypt with: smdpp subscribers decrypt --in {0} --passphrase-file FILE\n",
            enc.display()
        )
    );
    assert_eq!(mode(&enc), 0o600);
    let bytes = std::fs::read(&enc).unwrap();
    assert!(bytes.starts_with(b"SMDPPX1\n"));
    let text = String::from_utf8_lossy(&bytes);
    for s in [KI, OPC, &KI.to_ascii_lowercase(), &imsi(1), &iccid(1)] {
        assert!(!text.contains(s), "{s} in the clear");
    }
    // To standard output.
    let out = env.decrypt("subs.enc", "pass.txt", &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert_eq!(out.stdout, secret_csv());
    // To a private file.
    let plain = env.p("plain.csv");
    let out = env.decrypt("subs.enc", "pass.txt", &["--out", &plain]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!(
            "decrypted {} into {plain} ({} bytes)\n",
            enc.display(),
            secret_csv().len()
        )
    );
    assert_eq!(mode(Path::new(&plain)), 0o600);
    assert_eq!(std::fs::read_to_string(&plain).unwrap(), secret_csv());
}

#[test]
fn force_replaces_an_existing_file_with_a_private_one() {
    let env = Env::new();
    let old = env.write("subs.enc", "old");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let out = env.export_secrets("subs.enc", &["--format", "open5gs", "--force"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(mode(&old), 0o600);
    let plain = env.decrypt("subs.enc", "pass.txt", &[]).stdout;
    assert_eq!(plain.lines().count(), 2);
    assert!(plain.contains(&format!(
        "\"security\":{{\"k\":\"{KI}\",\"op\":null,\"opc\":\"{OPC}\""
    )));
}

#[test]
fn rejects_wrong_passphrase() {
    let env = Env::new();
    assert_eq!(env.export_secrets("subs.enc", &[]).code, Some(0));
    env.write("wrong.txt", "correct horse battery stapler\n");
    let plain = env.p("plain.csv");
    env.refused(
        env.decrypt("subs.enc", "wrong.txt", &["--out", &plain]),
        &format!(
            "error: {}: does not decrypt: wrong passphrase, or the file was changed or \
             truncated\n",
            env.p("subs.enc")
        ),
    );
    assert!(!Path::new(&plain).exists(), "no output file");
    // And nothing on stdout without --out.
    env.refused(
        env.decrypt("subs.enc", "wrong.txt", &[]),
        &format!(
            "error: {}: does not decrypt: wrong passphrase, or the file was changed or \
             truncated\n",
            env.p("subs.enc")
        ),
    );
}

#[test]
fn rejects_truncated_and_garbled_files() {
    let env = Env::new();
    assert_eq!(env.export_secrets("subs.enc", &[]).code, Some(0));
    let bytes = std::fs::read(env.path("subs.enc")).unwrap();
    let enc = env.p("bad.enc");
    let cases: Vec<(Vec<u8>, String)> = vec![
        (
            bytes[..30].to_vec(),
            "truncated: 30 bytes, an encrypted export has at least 56 (header and tag)".into(),
        ),
        (
            bytes[..bytes.len() - 5].to_vec(),
            "does not decrypt: wrong passphrase, or the file was changed or truncated".into(),
        ),
        (
            {
                let mut b = bytes.clone();
                b[60] ^= 0x80;
                b
            },
            "does not decrypt: wrong passphrase, or the file was changed or truncated".into(),
        ),
        (
            {
                let mut b = bytes.clone();
                b[8..12].copy_from_slice(&[0xFF; 4]);
                b
            },
            "unsupported PBKDF2 iteration count 4294967295 (accepted: 600000 to 10000000)".into(),
        ),
        (
            b"iccid,imsi,msisdn,profile_type,state,eid\n".to_vec(),
            "not an encrypted smdpp export (it does not start with SMDPPX1)".into(),
        ),
    ];
    for (content, message) in cases {
        std::fs::write(&enc, content).unwrap();
        env.refused(
            env.decrypt("bad.enc", "pass.txt", &[]),
            &format!("error: {enc}: {message}\n"),
        );
    }
}

#[test]
fn rejects_with_secrets_without_passphrase_file() {
    let env = Env::new();
    let out = env.p("subs.enc");
    env.refused(
        env.run(&["subscribers", "export", "--with-secrets", "--out", &out]),
        "error: --with-secrets needs --passphrase-file FILE: Ki and OPc are only written \
         encrypted with a passphrase\n",
    );
    assert!(!Path::new(&out).exists());
    // And a passphrase file without --with-secrets.
    let pass = env.p("pass.txt");
    env.refused(
        env.run(&[
            "subscribers",
            "export",
            "--passphrase-file",
            &pass,
            "--out",
            &out,
        ]),
        "error: --passphrase-file is only used with --with-secrets (without it no secret is \
         exported and nothing is encrypted)\n",
    );
    assert!(!Path::new(&out).exists());
}

#[test]
fn rejects_secrets_to_stdout() {
    let env = Env::new();
    let pass = env.p("pass.txt");
    let message = "error: --with-secrets needs --out FILE: Ki and OPc are never written to \
                   standard output\n";
    env.refused(
        env.run(&[
            "subscribers",
            "export",
            "--with-secrets",
            "--passphrase-file",
            &pass,
        ]),
        message,
    );
    env.refused(env.export_secrets_to("-"), message);
}

impl Env {
    fn export_secrets_to(&self, out: &str) -> Out {
        let pass = self.p("pass.txt");
        self.run(&[
            "subscribers",
            "export",
            "--with-secrets",
            "--passphrase-file",
            &pass,
            "--out",
            out,
        ])
    }
}

#[test]
fn rejects_existing_out_file_without_force() {
    let env = Env::new();
    let existing = env.write("subs.enc", "keep me");
    env.refused(
        env.export_secrets("subs.enc", &[]),
        &format!(
            "error: {} already exists; use --force to replace it\n",
            existing.display()
        ),
    );
    let plain = env.p("subs.enc");
    env.refused(
        env.run(&["subscribers", "export", "--out", &plain]),
        &format!("error: {plain} already exists; use --force to replace it\n"),
    );
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");
    // decrypt --out too.
    assert_eq!(env.export_secrets("good.enc", &[]).code, Some(0));
    env.refused(
        env.decrypt("good.enc", "pass.txt", &["--out", &plain]),
        &format!("error: {plain} already exists; use --force to replace it\n"),
    );
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");
    // --force does not replace what is not a regular file.
    let dir = env.path("a-directory");
    std::fs::create_dir(&dir).unwrap();
    env.refused(
        env.export_secrets("a-directory", &["--force"]),
        &format!(
            "error: {} exists and is not a regular file; not replacing it\n",
            dir.display()
        ),
    );
}

#[test]
fn rejects_short_passphrase() {
    let env = Env::new();
    let short = env.write("short.txt", "elevenchars\nthe second line does not count\n");
    let out = env.p("subs.enc");
    let short_s = short.to_str().unwrap();
    env.refused(
        env.run(&[
            "subscribers",
            "export",
            "--with-secrets",
            "--passphrase-file",
            short_s,
            "--out",
            &out,
        ]),
        &format!(
            "error: the passphrase (the first line of {short_s}) has fewer than 12 \
             characters; use a longer one\n"
        ),
    );
    assert!(!Path::new(&out).exists());
    let missing = env.p("missing.txt");
    let out2 = env.run(&[
        "subscribers",
        "export",
        "--with-secrets",
        "--passphrase-file",
        &missing,
        "--out",
        &out,
    ]);
    env.refused(
        out2,
        &format!(
            "error: reading the passphrase file {missing}: No such file or directory (os \
             error 2)\n"
        ),
    );
    assert!(!Path::new(&out).exists());
}

#[test]
fn rejects_unknown_format() {
    let env = Env::new();
    let out = env.run(&["subscribers", "export", "--format", "xml"]);
    assert_eq!(out.code, Some(2));
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "error: invalid value 'xml' for '--format <FORMAT>'\n  [possible values: csv, \
         osmo-hlr, open5gs]\n\nFor more information, try '--help'.\n"
    );
    let out = env.run(&["subscribers", "export", "--state", "gone"]);
    assert_eq!(out.code, Some(2));
    assert_eq!(
        out.stderr,
        "error: invalid value 'gone' for '--state <STATE>': unknown state \"gone\"; one of: \
         available, allocated, linked, confirmed, released, downloaded, installed, enabled, \
         disabled, error, unavailable\n\nFor more information, try '--help'.\n"
    );
}
