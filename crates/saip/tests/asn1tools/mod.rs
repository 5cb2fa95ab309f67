//! Running the Python asn1tools scripts of this folder, for the interop tests of this crate
//! and of `crates/smdpp-service/tests/factory.rs` (which includes this file by path).
//!
//! Without python3 + asn1tools a test prints a skip notice, unless
//! `SMDPP_REQUIRE_INTEROP=1`, in which case it fails.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

/// The SAIP ASN.1 module the scripts compile.
pub const ASN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/asn1/PE_Definitions-3.3.1.asn"
);
/// Decodes the PEs of one package and reports what it finds in them.
pub const TEMPLATE_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../saip/tests/asn1tools/template_interop.py"
);
/// Decodes the PEs of several packages and reports the personalized values of each.
pub const PE_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../saip/tests/asn1tools/pe_interop.py"
);

/// Whether python3 can import asn1tools. When not, `test` is skipped (this prints why and
/// returns false), or fails under `SMDPP_REQUIRE_INTEROP=1`.
pub fn ready(test: &str) -> bool {
    let why = match Command::new("python3")
        .args(["-c", "import asn1tools"])
        .output()
    {
        Err(e) => format!("python3 not runnable: {e}"),
        Ok(o) if !o.status.success() => format!(
            "asn1tools not importable: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Ok(_) => return true,
    };
    if std::env::var("SMDPP_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("SMDPP_REQUIRE_INTEROP=1 but the asn1tools interop cannot run: {why}");
    }
    eprintln!("SKIP {test}: {why} (set SMDPP_REQUIRE_INTEROP=1 to make this fatal)");
    false
}

/// The PEs of a package, each as hex.
pub fn split_pes(bytes: &[u8]) -> Vec<String> {
    let mut r = rsp_asn1::Reader::new(bytes);
    let mut v = Vec::new();
    while !r.is_empty() {
        v.push(hex::encode(r.read().unwrap().raw));
    }
    v
}

/// Runs `script` with `request` on its stdin; it must succeed. Its JSON reply.
pub fn run(script: &str, request: &serde_json::Value) -> serde_json::Value {
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(request.to_string().as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "asn1tools script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// [`TEMPLATE_SCRIPT`] on the PEs of `upp`: every PE decodes and re-encodes to identical
/// bytes. Its reply (`values`: what it found in them).
pub fn decode_pes(upp: &[u8]) -> serde_json::Value {
    let pes = split_pes(upp);
    let reply = run(
        TEMPLATE_SCRIPT,
        &serde_json::json!({"asn": ASN, "pes": pes}),
    );
    let decoded = reply["pes"].as_array().unwrap();
    assert_eq!(decoded.len(), pes.len());
    for (i, pe) in decoded.iter().enumerate() {
        assert!(pe["error"].is_null(), "PE #{i}: asn1tools: {}", pe["error"]);
        assert_eq!(
            pe["same"], true,
            "PE #{i} ({}): re-encoding differs",
            pe["type"]
        );
    }
    reply
}
