//! The profile factory's commands as processes, on a temporary data directory (SQLite):
//! `smdpp types add|list|show`, `smdpp profiles import` (CSV and JSON lines, rejected rows,
//! the report file, `--all-or-nothing`, re-runs), `smdpp profiles show` of an imported
//! profile, and `smdpp keys status|rotate|reseal|retire` (a new DEK, a new KEK file,
//! re-sealing what a rotation left, deleting unused DEKs), with the exact
//! messages and exit status of each.
//!
//! Every command's stdout and stderr is checked for the subscriber secrets of the inventory
//! files (Ki, OPc, PINs, PUKs, ADM1) and for the key files' contents: none may appear.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_smdpp");

// Subscriber secrets of every good row (distinctive, so that a leak is unambiguous).
const KI: &str = "A1B2C3D4E5F60718293A4B5C6D7E8F90";
const OPC: &str = "0F1E2D3C4B5A69788796A5B4C3D2E1F0";
const PIN1: &str = "73914682";
const PUK1: &str = "58203716";
const PIN2: &str = "73924683";
const PUK2: &str = "58203717";
const ADM1: &str = "93017465";
const SECRETS: [&str; 7] = [KI, OPC, PIN1, PUK1, PIN2, PUK2, ADM1];

const HEADER: &str = "iccid,imsi,ki,opc,pin1,puk1,pin2,puk2,adm1";

/// The end of the `smdpp keys rotate` line.
const RETIRE_HINT: &str =
    "(`smdpp keys retire` deletes the unused ones once every server has been restarted)";

/// A profile package whose ICCID is [`UPP_ICCID`] (an uploaded, not imported, profile).
fn ts48(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/profiles/ts48")
        .join(name)
}
const UPP_ICCID: &str = "89000123456789012341";

// ----------------------------------------------------------------- inventory rows

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

/// The n-th test ICCID (20 digits, test range 89 999 01, Luhn digit last).
fn iccid(n: u32) -> String {
    let body = format!("8999901{n:012}");
    format!("{body}{}", luhn(&body))
}

/// The n-th test IMSI (MCC 001, MNC 01).
fn imsi(n: u32) -> String {
    format!("00101{n:010}")
}

fn row(iccid: &str, imsi: &str) -> String {
    format!("{iccid},{imsi},{KI},{OPC},{PIN1},{PUK1},{PIN2},{PUK2},{ADM1}")
}

fn good(n: u32) -> String {
    row(&iccid(n), &imsi(n))
}

fn csv(rows: &[String]) -> String {
    let mut s = format!("{HEADER}\n");
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

fn json_row(n: u32, key: &str) -> String {
    format!(
        "{{\"iccid\":\"{}\",\"imsi\":\"{}\",\"ki\":\"{KI}\",\"{key}\":\"{OPC}\",\"pin1\":\"{PIN1}\",\
         \"puk1\":\"{PUK1}\",\"pin2\":\"{PIN2}\",\"puk2\":\"{PUK2}\",\"adm1\":\"{ADM1}\",\"mnc_len\":2}}",
        iccid(n),
        imsi(n)
    )
}

// ----------------------------------------------------------------- processes

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// The caller's `SMDPP_*` variables that would change what the commands under test do.
const SMDPP_ENV: [&str; 6] = [
    "SMDPP_DATA_DIR",
    "SMDPP_DATABASE_URL",
    "SMDPP_CONFIG",
    "SMDPP_KEK_FILE",
    "SMDPP_SMDP_ADDRESS",
    "SMDPP_LISTEN",
];

/// A temporary directory with the data directory `data/` in it.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A new one with the profile type `name` (see [`Env::add_type`]).
    fn with_type(name: &str) -> Env {
        let env = Env::new();
        env.add_type(name);
        env
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Contents of every key file in the directory and the data directory.
    fn key_file_contents(&self) -> Vec<String> {
        let mut out = Vec::new();
        for dir in [self.dir.path().to_path_buf(), self.data()] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "kek") {
                    out.push(std::fs::read_to_string(&p).unwrap().trim().to_owned());
                }
            }
        }
        out
    }

    /// `smdpp ARGS --data-dir DATA` with `envs` set (and no SMDPP_* from the caller's
    /// environment); checks that no secret and no key appears in the output.
    fn run_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Out {
        let mut cmd = Command::new(BIN);
        cmd.args(args).arg("--data-dir").arg(self.data());
        for v in SMDPP_ENV {
            cmd.env_remove(v);
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let out = Out {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        };
        let mut forbidden: Vec<String> = SECRETS
            .iter()
            .flat_map(|s| [s.to_string(), s.to_ascii_lowercase()])
            .collect();
        forbidden.extend(self.key_file_contents());
        for s in &forbidden {
            assert!(
                !out.stdout.contains(s.as_str()) && !out.stderr.contains(s.as_str()),
                "smdpp {args:?} printed a secret {s:?}:\n{}{}",
                out.stdout,
                out.stderr
            );
        }
        out
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_env(args, &[])
    }

    /// Runs a command that must succeed with an empty stderr; returns its stdout.
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

    /// Runs a command that must fail with exit status 1; returns its output.
    fn fails(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        assert_eq!(
            out.code,
            Some(1),
            "smdpp {args:?} should fail: {}{}",
            out.stdout,
            out.stderr
        );
        out
    }

    /// A command that must fail with exactly `stderr` and nothing on stdout.
    fn refused(&self, args: &[&str], stderr: &str) {
        let out = self.fails(args);
        assert_eq!(out.stderr, stderr, "smdpp {args:?}");
        assert_eq!(out.stdout, "", "smdpp {args:?}");
    }

    /// `smdpp types add NAME` with the default template.
    fn add_type(&self, name: &str) {
        assert_eq!(
            self.ok(&type_add(name, "Test SPN", "Test profile", &[])),
            format!("profile type {name} created\n")
        );
    }

    fn import(&self, file: &Path, extra: &[&str]) -> Out {
        self.run(&import_args(file, extra))
    }

    /// An import that must be refused with exactly `stderr` and nothing on stdout.
    fn import_refused(&self, file: &Path, extra: &[&str], stderr: &str) {
        self.refused(&import_args(file, extra), stderr);
    }

    /// Writes the inventory file `name` of `rows` and imports it, which must succeed; the
    /// file.
    fn imported(&self, name: &str, rows: &[String]) -> PathBuf {
        let file = self.write(name, &csv(rows));
        self.ok(&import_args(&file, &[]));
        file
    }

    /// `smdpp profiles add` of a TS.48 package (ICCID [`UPP_ICCID`]); its stdout.
    fn add_upp(&self) -> String {
        let upp = ts48("TS48v4_SAIP2.3_BERTLV.der");
        self.ok(&["profiles", "add", "--upp", upp.to_str().unwrap()])
    }

    /// `smdpp profiles show ICCID` says the secrets are sealed under DEK `dek`.
    fn assert_sealed_under(&self, iccid: &str, dek: u32) {
        let show = self.ok(&["profiles", "show", iccid]);
        assert!(
            show.contains(&format!(
                "\nsubscriber secrets: sealed (AES-256-GCM, data-encryption key {dek})\n"
            )),
            "{show}"
        );
    }

    /// The ICCIDs `smdpp profiles list` prints.
    fn listed_iccids(&self) -> Vec<String> {
        self.ok(&["profiles", "list"])
            .lines()
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    }

    /// `smdpp keys status` (with `extra`): (KEK id, active DEK line, DEKs line).
    fn key_status(&self, extra: &[&str]) -> (String, String, String) {
        let mut args = vec!["keys", "status"];
        args.extend_from_slice(extra);
        let out = self.ok(&args);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        let kek = lines[0]
            .strip_prefix("key-encryption key:   ")
            .unwrap_or_else(|| panic!("{out}"));
        assert_kek_id(kek);
        (kek.to_owned(), lines[1].to_owned(), lines[2].to_owned())
    }
}

/// `smdpp types add NAME --spn SPN --profile-name PROFILE_NAME`, then `extra`.
fn type_add<'a>(
    name: &'a str,
    spn: &'a str,
    profile_name: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "types",
        "add",
        name,
        "--spn",
        spn,
        "--profile-name",
        profile_name,
    ];
    args.extend_from_slice(extra);
    args
}

/// `smdpp profiles import --type T1`, then `extra`, then `file`.
fn import_args<'a>(file: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["profiles", "import", "--type", "T1"];
    args.extend_from_slice(extra);
    args.push(file.to_str().unwrap());
    args
}

/// `out` has exit status `code` and, durations aside, exactly `stdout`.
fn assert_out(out: &Out, code: i32, stdout: &str) {
    assert_eq!(out.code, Some(code), "{}{}", out.stdout, out.stderr);
    assert_eq!(untimed(&out.stdout), stdout);
}

/// What [`Env::key_status`] returns for KEK `kek`, active DEK `active` and DEKs `deks`.
fn status(kek: &str, active: &str, deks: &str) -> (String, String, String) {
    (
        kek.to_owned(),
        format!("active DEK:           {active}"),
        format!("DEKs:                 {deks}"),
    )
}

/// What `smdpp keys rotate` prints (durations aside) when DEK `id` is new, `n` records
/// were re-sealed and `kept` are the DEKs.
fn rotated(id: u32, n: u32, kept: &str) -> String {
    format!(
        "new data-encryption key {id} active; {n} records re-sealed in _ s; keys kept: {kept} \
         {RETIRE_HINT}\n"
    )
}

/// A PNG file of `len` bytes (the signature, then zeros).
fn png(len: usize) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.resize(len, 0);
    png
}

fn assert_kek_id(id: &str) {
    let hex = id.strip_prefix("file:").unwrap_or_else(|| panic!("{id}"));
    assert!(
        hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
}

/// `s` with every ` in 0.1 s` duration replaced by ` in _ s`.
fn untimed(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(" in ") {
        out.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        let n = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if n > 0 && rest[n..].starts_with(" s") {
            out.push('_');
            rest = &rest[n..];
        }
    }
    out.push_str(rest);
    out
}

// ----------------------------------------------------------------- types

#[test]
fn types_add_list_show() {
    let env = Env::with_type("T1");
    let icon = env.path("icon.png");
    std::fs::write(&icon, png(100)).unwrap();
    assert_eq!(
        env.ok(&type_add(
            "IoT-3",
            "Acme",
            "Acme IoT",
            &[
                "--class",
                "operational",
                "--icon",
                icon.to_str().unwrap(),
                "--notify",
                "install,enable",
                "--ppr",
                "ppr1,ppr2",
                "--cc-attempts",
                "3",
                "--download-attempts",
                "7",
            ]
        )),
        "profile type IoT-3 created\n"
    );
    assert_eq!(
        env.ok(&["types", "list"]),
        "IoT-3                operational  available=0 total=0  spn=\"Acme\" name=\"Acme IoT\"\n\
         T1                   -            available=0 total=0  spn=\"Test SPN\" name=\"Test profile\"\n"
    );

    let show = env.ok(&["types", "show", "IoT-3"]);
    // The creation time is RFC 3339 UTC (checked here, then left out of the comparisons).
    let created = show
        .lines()
        .find_map(|l| l.strip_prefix("created at:           "))
        .unwrap();
    assert!(created.len() == 24 && created.ends_with('Z') && created.as_bytes()[10] == b'T');
    let lines: Vec<&str> = show
        .lines()
        .filter(|l| !l.starts_with("created at:"))
        .collect();
    assert_eq!(lines.len(), 12, "{show}");
    assert_eq!(lines[0], "name:                 IoT-3");
    assert_eq!(lines[1], "template:             usim-isim-milenage");
    assert!(lines[2].starts_with("template description: "), "{show}");
    assert_eq!(
        lines[3..],
        [
            "service provider:     Acme",
            "profile name:         Acme IoT",
            "profile class:        operational",
            "icon:                 100 bytes",
            "notification bits:    0b0011",
            "policy rule bits:     0b110",
            "cc attempts:          3",
            "download attempts:    7",
            "on delete:            retire",
        ]
    );

    // With profiles: the counts per state.
    env.imported("inv.csv", &[good(1), good(2)]);
    let show = env.ok(&["types", "show", "T1"]);
    let lines: Vec<&str> = show
        .lines()
        .filter(|l| !l.starts_with("created at:"))
        .collect();
    assert_eq!(
        lines[3..],
        [
            "service provider:     Test SPN",
            "profile name:         Test profile",
            "profile class:        -",
            "icon:                 -",
            // The default --notify: install, enable, disable and delete.
            "notification bits:    0b1111",
            "policy rule bits:     -",
            "cc attempts:          default",
            "download attempts:    default",
            "on delete:            retire",
            "  available    2",
        ]
    );
    assert_eq!(
        env.ok(&["types", "list"]).lines().nth(1),
        Some(
            "T1                   -            available=2 total=2  spn=\"Test SPN\" name=\"Test profile\""
        )
    );
    env.refused(
        &["types", "show", "nope"],
        "error: no profile type \"nope\"\n",
    );
}

#[test]
fn rejects_duplicate_type_name() {
    let env = Env::with_type("T1");
    env.refused(
        &type_add("T1", "Other", "Other", &[]),
        "error: a profile type named \"T1\" already exists\n",
    );
    // The first one is unchanged.
    assert!(
        env.ok(&["types", "show", "T1"])
            .contains("service provider:     Test SPN\n")
    );
}

/// `smdpp types add BAD ...` with `extra` must fail with `stderr`, before the data
/// directory is even created.
fn type_refused(extra: &[&str], stderr: &str) {
    let env = Env::new();
    env.refused(&type_add("BAD", "S", "P", extra), stderr);
    assert!(!env.data().exists(), "nothing written");
}

/// `smdpp types add BAD ... --icon FILE` with the icon file `name` of `content` must fail
/// with `stderr`.
fn icon_refused(name: &str, content: &[u8], stderr: &str) {
    let env = Env::new();
    let icon = env.path(name);
    std::fs::write(&icon, content).unwrap();
    type_refused(&["--icon", icon.to_str().unwrap()], stderr);
}

#[test]
fn rejects_type_icon_too_large() {
    icon_refused(
        "big.png",
        &png(1025),
        "error: icon is 1025 bytes; at most 1024 are allowed\n",
    );
}

#[test]
fn rejects_type_icon_not_png_or_jpeg() {
    icon_refused(
        "icon.gif",
        b"GIF89a....",
        "error: icon must be a PNG or JPEG file\n",
    );
}

#[test]
fn rejects_type_with_bad_template() {
    let env = Env::new();
    // `smdpp types add BAD` with the template file `name` of `content`: must fail.
    let add = |name: &str, content: &str| {
        let bad = env.write(name, content);
        env.fails(&type_add(
            "BAD",
            "S",
            "P",
            &["--template", bad.to_str().unwrap()],
        ))
    };
    let out = add("bad.toml", "garbage = [\n");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .starts_with("error: template: template source: TOML parse error at line 1"),
        "{}",
        out.stderr
    );
    // A template that parses but is not a template.
    let out = add("bad2.toml", "name = \"x\"\n");
    assert!(
        out.stderr.starts_with("error: template: ") && out.stderr.contains("missing field"),
        "{}",
        out.stderr
    );
    let missing = env.path("missing.toml");
    type_refused(
        &["--template", missing.to_str().unwrap()],
        &format!(
            "error: reading {}: No such file or directory (os error 2)\n",
            missing.display()
        ),
    );
    assert!(!env.data().exists(), "nothing written");
}

#[test]
fn rejects_type_spn_longer_than_32_bytes() {
    let env = Env::new();
    // 32 bytes are fine.
    let spn32 = "x".repeat(32);
    assert_eq!(
        env.ok(&type_add("T32", &spn32, "P", &[])),
        "profile type T32 created\n"
    );
    // 33 bytes (here 17 two-byte characters = 34 bytes) are not.
    for spn in ["é".repeat(17), "x".repeat(33)] {
        env.refused(
            &type_add("T33", &spn, "P", &[]),
            "error: service provider name is longer than 32 bytes\n",
        );
    }
    assert!(!env.ok(&["types", "list"]).contains("T33"));
}

#[test]
fn rejects_type_attempt_limits_out_of_range() {
    type_refused(
        &["--cc-attempts", "0"],
        "error: --cc-attempts must be 1 to 1000\n",
    );
    type_refused(
        &["--download-attempts", "1001"],
        "error: --download-attempts must be 1 to 1000\n",
    );
}

// ----------------------------------------------------------------- import

#[test]
fn import_csv_reports_each_rejected_row() {
    let env = Env::with_type("T1");
    let mut bad_luhn = iccid(3);
    let last = bad_luhn.pop().unwrap().to_digit(10).unwrap();
    let wrong = (last + 1) % 10;
    bad_luhn.push(char::from_digit(wrong, 10).unwrap());
    let file = env.write(
        "inv.csv",
        &csv(&[
            good(1),                                                    // line 2
            good(2),                                                    // line 3
            row(&bad_luhn, &imsi(3)),                                   // line 4
            good(4),                                                    // line 5
            good(5).replace(KI, "ABC"),                                 // line 6
            row(&iccid(1), &imsi(6)),                                   // line 7
            row(&iccid(7), &imsi(2)),                                   // line 8
            good(8).replace(PIN1, "73a"),                               // line 9
            format!("{},{}", iccid(9), imsi(9)),                        // line 10
            good(10).replace(&format!(",{ADM1}"), ",1234567890ABCDEF"), // line 11: hex ADM1
        ]),
    );
    let report = env.path("report.csv");
    let out = env.import(&file, &["--report", report.to_str().unwrap()]);
    assert_out(
        &out,
        1,
        &format!(
            "rejected line 4: iccid: ICCID {bad_luhn}: Luhn check digit should be {last}, got {wrong}\n\
             rejected line 6: ki: Ki must be exactly 16 bytes (32 hex digits), got 3 hex digits\n\
             rejected line 7: iccid: duplicate ICCID {}: already on an earlier row of this file\n\
             rejected line 8: imsi: duplicate IMSI {}: already on an earlier row of this file\n\
             rejected line 9: pin1: PIN1 must be 4 to 8 decimal digits (got 3 characters, character 3 is not a decimal digit)\n\
             rejected line 10: 2 fields, but the header has 9 columns\n\
             10 rows in _ s: 4 imported, 0 already present, 6 rejected\n",
            iccid(1),
            imsi(2)
        ),
    );
    assert_eq!(out.stderr, "error: 6 rows rejected; 4 imported\n");
    assert_eq!(
        std::fs::read_to_string(&report).unwrap(),
        format!(
            "line,field,reason\n\
             4,iccid,\"ICCID {bad_luhn}: Luhn check digit should be {last}, got {wrong}\"\n\
             6,ki,\"Ki must be exactly 16 bytes (32 hex digits), got 3 hex digits\"\n\
             7,iccid,\"duplicate ICCID {}: already on an earlier row of this file\"\n\
             8,imsi,\"duplicate IMSI {}: already on an earlier row of this file\"\n\
             9,pin1,\"PIN1 must be 4 to 8 decimal digits (got 3 characters, character 3 is not a decimal digit)\"\n\
             10,,\"2 fields, but the header has 9 columns\"\n",
            iccid(1),
            imsi(2)
        )
    );
    assert_eq!(
        env.listed_iccids(),
        vec![iccid(1), iccid(2), iccid(4), iccid(10)]
    );

    // profiles show: type, IMSI and where the secrets are, never the secrets.
    let show = env.ok(&["profiles", "show", &iccid(1)]);
    for line in [
        format!("iccid:              {}", iccid(1)),
        "state:              available".to_owned(),
        "profile type:       T1".to_owned(),
        "operator:           -".to_owned(),
        format!("imsi:               {}", imsi(1)),
        "subscriber secrets: sealed (AES-256-GCM, data-encryption key 1)".to_owned(),
    ] {
        assert!(show.lines().any(|l| l == line), "{line:?} not in:\n{show}");
    }
    let history: Vec<&str> = show.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(history.len(), 1, "{show}");
    assert!(
        history[0].ends_with("  - -> available  import  imported"),
        "{show}"
    );
    assert!(!show.contains("stored package"), "{show}");
    // The hex ADM1 of line 11 is a secret too.
    assert!(
        !env.ok(&["profiles", "show", &iccid(10)])
            .contains("1234567890ABCDEF")
    );
}

#[test]
fn import_rerun_of_a_good_file_is_harmless() {
    let env = Env::with_type("T1");
    let file = env.write("inv.csv", &csv(&[good(1), good(2), good(3)]));
    for summary in [
        "3 imported, 0 already present",
        "0 imported, 3 already present",
    ] {
        let out = env.import(&file, &[]);
        assert_out(&out, 0, &format!("3 rows in _ s: {summary}, 0 rejected\n"));
        assert_eq!(out.stderr, "");
    }
    assert_eq!(env.listed_iccids(), vec![iccid(1), iccid(2), iccid(3)]);
}

#[test]
fn rejects_rows_clashing_with_the_inventory() {
    let env = Env::with_type("T1");
    env.add_type("T2");
    // An uploaded (not imported) profile.
    assert!(
        env.add_upp()
            .starts_with(&format!("added profile {UPP_ICCID} (Released)\n"))
    );
    let file = env.imported("inv.csv", &[good(1), good(2), good(3)]);

    let clash = env.write(
        "clash.csv",
        &csv(&[
            row(&iccid(1), &imsi(21)), // line 2: ICCID imported with another IMSI
            row(&iccid(22), &imsi(2)), // line 3: IMSI of another ICCID
            good(23),                  // line 4: new
            good(3),                   // line 5: the same row again
            row(UPP_ICCID, &imsi(25)), // line 6: ICCID of an uploaded profile
        ]),
    );
    let out = env.import(&clash, &[]);
    assert_out(
        &out,
        1,
        "rejected line 2: iccid: ICCID already in the inventory with other subscriber data, type or operator\n\
         rejected line 3: imsi: IMSI already used by another ICCID\n\
         rejected line 6: iccid: ICCID already in the inventory with other subscriber data, type or operator\n\
         5 rows in _ s: 1 imported, 1 already present, 3 rejected\n",
    );
    assert_eq!(
        out.stderr,
        "error: 3 rows rejected; 1 imported, 1 already present\n"
    );

    // The same good file under another type: every ICCID is taken.
    let out = env.run(&["profiles", "import", "--type", "T2", file.to_str().unwrap()]);
    assert_out(
        &out,
        1,
        "rejected line 2: iccid: ICCID already in the inventory with other subscriber data, type or operator\n\
         rejected line 3: iccid: ICCID already in the inventory with other subscriber data, type or operator\n\
         rejected line 4: iccid: ICCID already in the inventory with other subscriber data, type or operator\n\
         3 rows in _ s: 0 imported, 0 already present, 3 rejected\n",
    );
    let mut all = vec![
        iccid(1),
        iccid(2),
        iccid(3),
        iccid(23),
        UPP_ICCID.to_owned(),
    ];
    all.sort();
    assert_eq!(env.listed_iccids(), all);
    // The uploaded profile is untouched.
    let show = env.ok(&["profiles", "show", UPP_ICCID]);
    assert!(show.contains("state:              released\n"), "{show}");
    assert!(show.contains("profile type:       -\n"), "{show}");
    assert!(!show.contains("imsi:"), "{show}");
}

#[test]
fn all_or_nothing_imports_nothing_when_a_row_is_rejected() {
    let env = Env::with_type("T1");
    let file = env.write(
        "inv.csv",
        &csv(&[good(1), good(2), good(3).replace(PUK1, "123"), good(4)]),
    );
    let out = env.import(&file, &["--all-or-nothing"]);
    assert_out(
        &out,
        1,
        "rejected line 4: puk1: PUK1 must be exactly 8 decimal digits (got 3 characters)\n\
         4 rows in _ s: 0 imported, 0 already present, 1 rejected (--all-or-nothing: nothing imported)\n",
    );
    assert_eq!(out.stderr, "error: 1 row rejected; nothing was imported\n");
    assert!(env.listed_iccids().is_empty());

    // A database-level clash rolls back too.
    env.imported("ok.csv", &[good(1)]);
    let clash = env.write(
        "clash.csv",
        &csv(&[good(5), row(&iccid(6), &imsi(1)), good(7)]),
    );
    let out = env.import(&clash, &["--all-or-nothing"]);
    assert_out(
        &out,
        1,
        "rejected line 3: imsi: IMSI already used by another ICCID\n\
         3 rows in _ s: 0 imported, 0 already present, 1 rejected (--all-or-nothing: nothing imported)\n",
    );
    assert_eq!(env.listed_iccids(), vec![iccid(1)]);

    // Without a rejected row everything is imported.
    let good_file = env.write("good.csv", &csv(&[good(5), good(7)]));
    let out = env.import(&good_file, &["--all-or-nothing"]);
    assert_out(
        &out,
        0,
        "2 rows in _ s: 2 imported, 0 already present, 0 rejected\n",
    );
    assert_eq!(env.listed_iccids(), vec![iccid(1), iccid(5), iccid(7)]);
}

#[test]
fn import_json_lines() {
    let env = Env::with_type("T1");
    let file = env.write(
        "inv.jsonl",
        &format!(
            "{}\n\n{}\n{{\"iccid\":{}}}\n",
            json_row(1, "opc"),
            json_row(2, "op"),
            iccid(3)
        ),
    );
    let out = env.import(&file, &[]);
    assert_out(
        &out,
        1,
        "rejected line 4: iccid: must be a JSON string, not a number (leading zeros would be lost)\n\
         3 rows in _ s: 2 imported, 0 already present, 1 rejected\n",
    );
    assert_eq!(out.stderr, "error: 1 row rejected; 2 imported\n");
    assert_eq!(env.listed_iccids(), vec![iccid(1), iccid(2)]);
    let show = env.ok(&["profiles", "show", &iccid(2)]);
    assert!(
        show.contains(&format!("\nimsi:               {}\n", imsi(2))),
        "{show}"
    );

    // `.ndjson` is JSON lines too; a re-run is harmless.
    let nd = env.write("inv.ndjson", &format!("{}\n", json_row(1, "opc")));
    assert_out(
        &env.import(&nd, &[]),
        0,
        "1 row in _ s: 0 imported, 1 already present, 0 rejected\n",
    );
}

/// The report file of `smdpp profiles import --report` (ICCIDs, IMSIs) is mode 0600: a new
/// one, and an existing one others could read (an earlier report), which is rewritten.
#[cfg(unix)]
#[test]
fn import_report_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let env = Env::with_type("T1");
    let file = env.write("inv.csv", &csv(&[good(1), good(2).replace(KI, "ABC")]));
    let expected = "line,field,reason\n\
                    3,ki,\"Ki must be exactly 16 bytes (32 hex digits), got 3 hex digits\"\n";

    let report = env.path("report.csv");
    let out = env.import(&file, &["--report", report.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert_eq!(mode(&report), 0o600);
    assert_eq!(std::fs::read_to_string(&report).unwrap(), expected);

    let old = env.write(
        "old-report.csv",
        "an earlier, longer report\n".repeat(10).as_str(),
    );
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.import(&file, &["--report", old.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert_eq!(mode(&old), 0o600);
    assert_eq!(std::fs::read_to_string(&old).unwrap(), expected);
    assert_eq!(env.listed_iccids(), vec![iccid(1)]);
}

/// `smdpp ARGS FILE` on a good one-row inventory FILE must fail with `stderr`, importing
/// nothing.
fn import_of_one_refused(args: &[&str], stderr: &str) {
    let env = Env::with_type("T1");
    let file = env.write("inv.csv", &csv(&[good(1)]));
    let mut args = args.to_vec();
    args.push(file.to_str().unwrap());
    env.refused(&args, stderr);
    assert!(env.listed_iccids().is_empty());
}

#[test]
fn rejects_unknown_type() {
    import_of_one_refused(
        &["profiles", "import", "--type", "NOPE"],
        "error: unknown profile type \"NOPE\" (create it with `smdpp types add`)\n",
    );
}

#[test]
fn rejects_unknown_operator() {
    import_of_one_refused(
        &["profiles", "import", "--type", "T1", "--operator", "NOBODY"],
        "error: unknown operator \"NOBODY\" (register it with `smdpp operators add`)\n",
    );
}

#[test]
fn rejects_unknown_column_before_writing() {
    let env = Env::with_type("T1");
    let file = env.write(
        "inv.csv",
        &format!("{HEADER},colour\n{},red\n{},blue\n", good(1), good(2)),
    );
    env.import_refused(
        &file,
        &[],
        "error: line 1: unknown column \"colour\"; known columns are iccid, imsi, ki, opc, op, \
         pin1, puk1, pin2, puk2, adm1, spn, mnc_len\n",
    );
    // A missing required column is refused the same way.
    let file = env.write("short.csv", &format!("iccid,imsi,ki,opc\n{}\n", iccid(1)));
    env.import_refused(
        &file,
        &["--all-or-nothing"],
        "error: missing required column pin1\n",
    );
    assert!(env.listed_iccids().is_empty());
    assert!(env.ok(&["types", "list"]).contains(" available=0 total=0 "));
}

#[test]
fn rejects_unknown_extension_without_format() {
    let env = Env::with_type("T1");
    let file = env.write("inv.txt", &csv(&[good(1)]));
    env.import_refused(
        &file,
        &[],
        &format!(
            "error: cannot tell the format of {}: use --format csv|jsonl\n",
            file.display()
        ),
    );
    assert!(env.listed_iccids().is_empty());
    // With --format it imports.
    assert_out(
        &env.import(&file, &["--format", "csv"]),
        0,
        "1 row in _ s: 1 imported, 0 already present, 0 rejected\n",
    );
    let jl = env.write("inv.data", &format!("{}\n", json_row(2, "opc")));
    let out = env.import(&jl, &["--format", "jsonl"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(env.listed_iccids(), vec![iccid(1), iccid(2)]);
}

#[test]
fn rejects_imsi_outside_the_home_plmn() {
    let env = Env::with_type("T1");
    let other = "001020000000002";
    let file = env.write("inv.csv", &csv(&[good(1), row(&iccid(2), other)]));
    assert_out(
        &env.import(&file, &["--home-plmn", "00101"]),
        1,
        &format!(
            "rejected line 3: imsi: IMSI {other}: MCC/MNC 00102 does not match the home PLMN 00101\n\
             2 rows in _ s: 1 imported, 0 already present, 1 rejected\n"
        ),
    );
    // With a 3-digit MNC the home PLMN has 6 digits.
    let file = env.write("mnc3.csv", &csv(&[good(3)]));
    let out = env.import(&file, &["--mnc-len", "3", "--home-plmn", "001010"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(env.listed_iccids(), vec![iccid(1), iccid(3)]);
}

// ----------------------------------------------------------------- keys

#[test]
fn keys_status_and_rotate() {
    let env = Env::with_type("T1");
    env.imported("inv.csv", &[good(1), good(2), good(3)]);
    let first = env.key_status(&[]);
    let kek = first.0.clone();
    assert_eq!(first, status(&kek, "1", "[1]"));

    // 3 secrets records and the template of T1.
    assert_eq!(
        untimed(&env.ok(&["keys", "rotate"])),
        rotated(2, 4, "[1, 2]")
    );
    assert_eq!(env.key_status(&[]), status(&kek, "2", "[1, 2]"));
    env.assert_sealed_under(&iccid(2), 2);
    // A stored package is re-sealed too; the next import seals under the new key.
    env.add_upp();
    assert_eq!(
        untimed(&env.ok(&["keys", "rotate"])),
        rotated(3, 5, "[1, 2, 3]")
    );
    assert_eq!(env.key_status(&[]), status(&kek, "3", "[1, 2, 3]"));
    env.imported("more.csv", &[good(4)]);
    env.assert_sealed_under(&iccid(4), 3);
    assert!(
        env.ok(&["profiles", "show", UPP_ICCID])
            .contains("\nstored package:     ")
    );
}

#[test]
fn new_kek_rewraps_and_the_old_key_file_is_refused() {
    let env = Env::with_type("T1");
    let file = env.imported("inv.csv", &[good(1), good(2)]);
    let (old, _, _) = env.key_status(&[]);
    let new_file = env.path("new.kek");
    let nf = new_file.to_str().unwrap();

    let out = env.ok(&["keys", "rotate", "--new-kek", nf]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let new = lines[0]
        .strip_prefix("data-encryption keys re-wrapped under key-encryption key ")
        .and_then(|l| l.strip_suffix(&format!(" ({nf}).")))
        .unwrap_or_else(|| panic!("{out}"));
    assert_kek_id(new);
    assert_ne!(new, old);
    assert_eq!(
        lines[1],
        format!(
            "Set kek_file (or --kek-file / SMDPP_KEK_FILE) to {nf} before the next start; \
             running servers are not affected. Keep the old key file until then, and restart \
             the servers before the next `smdpp keys rotate`."
        )
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&new_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "new key file mode {mode:o}");
    }

    // The old key file (still the default DATA_DIR/vault.kek) no longer opens the database.
    let stderr = format!(
        "error: key file {}: the database's data-encryption keys are wrapped by \
         key-encryption key {new}, but the key file holds {old}: point kek_file (--kek-file, \
         SMDPP_KEK_FILE) at the key file whose id is {new}\n",
        env.data().join("vault.kek").display()
    );
    env.refused(&["keys", "status"], &stderr);
    env.import_refused(&file, &[], &stderr);

    // The new one does, by flag and by environment.
    assert_eq!(env.key_status(&["--kek-file", nf]), status(new, "1", "[1]"));
    let out = env.run_env(&["keys", "status"], &[("SMDPP_KEK_FILE", nf)]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with(&format!("key-encryption key:   {new}\n"))
    );
    // Import and DEK rotation work under the new key.
    let more = env.write("more.csv", &csv(&[good(1), good(3)]));
    assert_out(
        &env.import(&more, &["--kek-file", nf]),
        0,
        "2 rows in _ s: 1 imported, 1 already present, 0 rejected\n",
    );
    // 3 secrets records and the template of T1.
    assert_eq!(
        untimed(&env.ok(&["keys", "rotate", "--kek-file", nf])),
        rotated(2, 4, "[1, 2]")
    );
    // Both DEKs are wrapped under the new key (the old key file still refused), and
    // retiring the unused one works under it.
    env.refused(&["keys", "retire"], &stderr);
    assert_eq!(
        env.ok(&["keys", "retire", "--kek-file", nf]),
        "retired data-encryption keys [1]\nkeys kept: [2]\n"
    );
}

#[test]
fn keys_retire() {
    let env = Env::with_type("T1");
    env.imported("inv.csv", &[good(1), good(2)]);
    let (kek, _, _) = env.key_status(&[]);
    let status = |active: &str, deks: &str| status(&kek, active, deks);
    // Only the active DEK: nothing to retire.
    assert_eq!(
        env.ok(&["keys", "retire"]),
        "no data-encryption key to retire\nkeys kept: [1]\n"
    );
    assert_eq!(env.key_status(&[]), status("1", "[1]"));

    // One rotation (2 secrets records, the template of T1): DEK 1 is kept until retired.
    assert_eq!(
        untimed(&env.ok(&["keys", "rotate"])),
        rotated(2, 3, "[1, 2]")
    );
    assert_eq!(env.key_status(&[]), status("2", "[1, 2]"));
    assert_eq!(
        env.ok(&["keys", "retire"]),
        "retired data-encryption keys [1]\nkeys kept: [2]\n"
    );
    assert_eq!(env.key_status(&[]), status("2", "[2]"));
    assert_eq!(
        env.ok(&["keys", "retire"]),
        "no data-encryption key to retire\nkeys kept: [2]\n"
    );

    // Two rotations (a stored package too): both old DEKs are retired at once.
    env.add_upp();
    for (id, n, kept) in [(3, 4, "[2, 3]"), (4, 4, "[2, 3, 4]")] {
        assert_eq!(untimed(&env.ok(&["keys", "rotate"])), rotated(id, n, kept));
    }
    assert_eq!(
        env.ok(&["keys", "retire"]),
        "retired data-encryption keys [2, 3]\nkeys kept: [4]\n"
    );
    assert_eq!(env.key_status(&[]), status("4", "[4]"));
    // Everything still opens under DEK 4.
    for i in [iccid(1), iccid(2)] {
        env.assert_sealed_under(&i, 4);
    }
    env.imported("more.csv", &[good(3)]);
    env.assert_sealed_under(&iccid(3), 4);
}

/// What `smdpp keys reseal` prints (durations aside) when `n` records were re-sealed under
/// DEK `id`.
fn resealed(n: u32, id: u32) -> String {
    format!("{n} records re-sealed under data-encryption key {id} in _ s\n")
}

/// `smdpp keys reseal` re-seals what is not under the active DEK: after a complete
/// rotation nothing; it changes no key and everything still opens.
#[test]
fn keys_reseal() {
    let env = Env::with_type("T1");
    env.imported("inv.csv", &[good(1), good(2)]);
    let (kek, _, _) = env.key_status(&[]);
    assert_eq!(untimed(&env.ok(&["keys", "reseal"])), resealed(0, 1));
    assert_eq!(env.key_status(&[]), status(&kek, "1", "[1]"));

    // 2 secrets records and the template of T1.
    assert_eq!(
        untimed(&env.ok(&["keys", "rotate"])),
        rotated(2, 3, "[1, 2]")
    );
    assert_eq!(untimed(&env.ok(&["keys", "reseal"])), resealed(0, 2));
    assert_eq!(env.key_status(&[]), status(&kek, "2", "[1, 2]"));
    for i in [iccid(1), iccid(2)] {
        env.assert_sealed_under(&i, 2);
    }
    // DEK 1 is no longer used.
    assert_eq!(
        env.ok(&["keys", "retire"]),
        "retired data-encryption keys [1]\nkeys kept: [2]\n"
    );
    assert_eq!(untimed(&env.ok(&["keys", "reseal"])), resealed(0, 2));
}

/// `smdpp keys reseal` on a database without keys (a fresh data directory) fails like
/// `keys status` and makes neither a key file nor a DEK.
#[test]
fn rejects_keys_reseal_without_keys() {
    let env = Env::new();
    let no_keys = "error: the database has no keys yet (nothing was sealed in it)\n";
    let kek = env.data().join("vault.kek");
    env.refused(&["keys", "reseal"], no_keys);
    assert!(!kek.exists(), "made a key file");
    let other = Env::with_type("T1");
    let other_kek = other.data().join("vault.kek");
    env.refused(
        &["keys", "reseal", "--kek-file", other_kek.to_str().unwrap()],
        no_keys,
    );
    assert!(!kek.exists(), "made a key file");
    env.refused(&["keys", "status"], no_keys);
}

#[test]
fn rejects_new_kek_that_exists() {
    let env = Env::with_type("T1");
    env.imported("inv.csv", &[good(1)]);
    let before = env.key_status(&[]);
    // Even the key file in use.
    let current = env.data().join("vault.kek");
    let content = std::fs::read(&current).unwrap();
    for existing in [current.clone(), env.path("inv.csv")] {
        env.refused(
            &["keys", "rotate", "--new-kek", existing.to_str().unwrap()],
            &format!(
                "error: {} exists; --new-kek creates a new key file\n",
                existing.display()
            ),
        );
    }
    assert_eq!(std::fs::read(&current).unwrap(), content);
    assert_eq!(env.key_status(&[]), before);
}

#[test]
fn rejects_missing_key_file() {
    let env = Env::with_type("T1");
    env.imported("inv.csv", &[good(1)]);
    let (kek, _, _) = env.key_status(&[]);

    let elsewhere = env.path("elsewhere.kek");
    let message = |p: &Path| {
        format!(
            "error: key file {} is missing: the database's secrets are sealed under \
             key-encryption key {kek}\n",
            p.display()
        )
    };
    env.refused(
        &["keys", "status", "--kek-file", elsewhere.to_str().unwrap()],
        &message(&elsewhere),
    );
    assert!(!elsewhere.exists(), "no new key file created");

    // The default key file moved away.
    let default = env.data().join("vault.kek");
    std::fs::rename(&default, &elsewhere).unwrap();
    let more = env.write("more.csv", &csv(&[good(2)]));
    env.import_refused(&more, &[], &message(&default));
    env.refused(&["keys", "rotate"], &message(&default));
    assert!(!default.exists(), "no new key file created");
    assert_eq!(env.listed_iccids(), vec![iccid(1)]);
    // Pointing at it again works.
    let out = env.import(&more, &["--kek-file", elsewhere.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(env.listed_iccids(), vec![iccid(1), iccid(2)]);
}

#[cfg(unix)]
#[test]
fn rejects_key_file_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::with_type("T1");
    env.imported("inv.csv", &[good(1)]);
    let kek = env.data().join("vault.kek");
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
    env.refused(
        &["keys", "status"],
        &format!(
            "error: key file {}: mode 0644 gives group/other access; it must be 0600 or \
             stricter (chmod 600)\n",
            kek.display()
        ),
    );
}

/// `smdpp keys status`, `keys retire` and `types show` only look: on a database without
/// keys (a fresh data directory) they fail and make neither a key file nor a DEK, also when
/// pointed at an existing key file. The first command that seals something makes both.
#[test]
fn rejects_keys_status_without_keys() {
    let env = Env::new();
    let no_keys = "error: the database has no keys yet (nothing was sealed in it)\n";
    let kek = env.data().join("vault.kek");
    for args in [
        &["keys", "status"][..],
        &["keys", "retire"],
        &["types", "show", "T1"],
    ] {
        env.refused(args, no_keys);
        assert!(!kek.exists(), "smdpp {args:?} made a key file");
    }
    let other = Env::with_type("T1");
    let other_kek = other.data().join("vault.kek");
    let other_kek = other_kek.to_str().unwrap();
    for cmd in ["status", "retire"] {
        env.refused(&["keys", cmd, "--kek-file", other_kek], no_keys);
    }
    assert!(!kek.exists());
    assert_eq!(env.ok(&["types", "list"]), "");
    env.refused(&["keys", "status"], no_keys);

    env.add_type("T1");
    assert!(kek.exists());
    let (id, _, _) = env.key_status(&[]);
    assert_eq!(env.key_status(&[]), status(&id, "1", "[1]"));
    assert_ne!(id, other.key_status(&[]).0, "a key of its own");
}

/// `profiles list --type/--state/--operator` filters; an unknown state is refused.
#[test]
fn profiles_list_filters() {
    let env = Env::with_type("T1");
    env.add_type("T2");
    env.imported("a.csv", &[good(1), good(2)]);
    let file = env.write("b.csv", &csv(&[good(3)]));
    env.ok(&["profiles", "import", "--type", "T2", file.to_str().unwrap()]);
    let listed = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["profiles", "list"];
        all.extend_from_slice(args);
        env.ok(&all)
            .lines()
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(listed(&["--type", "T1"]), vec![iccid(1), iccid(2)]);
    assert_eq!(listed(&["--type", "T2"]), vec![iccid(3)]);
    assert_eq!(
        listed(&["--state", "available"]),
        vec![iccid(1), iccid(2), iccid(3)]
    );
    assert!(listed(&["--state", "Released"]).is_empty());
    assert!(listed(&["--operator", "nobody"]).is_empty());
    let out = env.run(&["profiles", "list", "--state", "bogus"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains(
            "unknown state \"bogus\"; one of: available, allocated, linked, confirmed, \
             released, downloaded, installed, enabled, disabled, error, unavailable"
        ),
        "{}",
        out.stderr
    );
}

/// Garbage in flags: an impossible `--mnc-len` rejects every row (nothing imported), and
/// unknown `--class` / `--notify` / `--ppr` values are refused by the argument parser before
/// anything is written.
#[test]
fn rejects_bad_import_and_type_flags() {
    let env = Env::with_type("T1");
    let file = env.write("inv.csv", &csv(&[good(1)]));
    let out = env.import(&file, &["--mnc-len", "4"]);
    assert_out(
        &out,
        1,
        "rejected line 2: mnc_len: MNC length must be 2 or 3, got 4\n\
         1 row in _ s: 0 imported, 0 already present, 1 rejected\n",
    );
    assert!(env.listed_iccids().is_empty());
    for (flag, value) in [
        ("--class", "bogus"),
        ("--notify", "bogus"),
        ("--ppr", "ppr9"),
    ] {
        let mut args = type_add("T9", "SPN", "Name", &[]);
        args.extend_from_slice(&[flag, value]);
        let out = env.run(&args);
        assert_eq!(out.code, Some(2), "{flag}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr
                .contains(&format!("invalid value '{value}' for '{flag}")),
            "{flag}: {}",
            out.stderr
        );
    }
    assert!(!env.ok(&["types", "list"]).contains("T9"));
}

// ----------------------------------------------------------------- the served address

/// A `smdpp serve` process, killed and reaped on drop.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `smdpp serve --listen 127.0.0.1:PORT` (no other option) on the data directory of
/// `env` until it printed its last line of instructions (printed after it bound the port and
/// recorded its address), then kills it; returns its stdout lines.
fn serve_briefly(env: &Env, port: u16) -> Vec<String> {
    use std::io::BufRead;
    let mut cmd = Command::new(BIN);
    cmd.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
    ])
    .arg(env.data())
    .env("RUST_LOG", "warn")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::inherit());
    for v in SMDPP_ENV {
        cmd.env_remove(v);
    }
    let mut serving = Serving(cmd.spawn().unwrap());
    let stdout = serving.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("smdpp serve: {e}; stdout so far: {lines:?}"));
        let last = line.contains("smdpp euicc download");
        lines.push(line);
        if last {
            break;
        }
    }
    drop(serving);
    lines
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Copies the directory `from` with everything in it to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The MatchingID of `Activation Code: LPA:1$<address>$<matching id>` in `out`, whose
/// address must be `address`.
fn activation_code_at(out: &str, address: &str) -> String {
    let prefix = format!("Activation Code: LPA:1${address}$");
    let line = out
        .lines()
        .find(|l| l.starts_with("Activation Code: "))
        .unwrap_or_else(|| panic!("no Activation Code in {out:?}"));
    let mid = line
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{line:?} does not start with {prefix:?}"));
    assert!(
        !mid.is_empty() && mid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "{line:?}"
    );
    mid.to_owned()
}

/// `serve --listen 127.0.0.1:PORT` records the address it serves; a later `profiles add` on
/// the same data (no address option) prints Activation Codes for it, not the default
/// 127.0.0.1:8443. An explicit `--smdp-address` still wins over the recorded address, and a
/// data directory never served keeps the default.
#[test]
fn profiles_add_prints_the_address_serve_recorded() {
    let env = Env::new();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let lines = serve_briefly(&env, port);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("LPA:1${address}$"))),
        "serve prints Activation Codes for its listen address: {lines:?}"
    );
    let copy = Env::new();
    copy_dir(&env.data(), &copy.data());

    let out = env.add_upp();
    assert!(
        out.starts_with(&format!("added profile {UPP_ICCID} (Released)\n")),
        "{out}"
    );
    activation_code_at(&out, &address);

    let upp = ts48("TS48v4_SAIP2.3_BERTLV.der");
    let out = copy.ok(&[
        "profiles",
        "add",
        "--upp",
        upp.to_str().unwrap(),
        "--smdp-address",
        "smdp.example.com",
    ]);
    activation_code_at(&out, "smdp.example.com");

    let never_served = Env::new();
    activation_code_at(&never_served.add_upp(), "127.0.0.1:8443");
}
