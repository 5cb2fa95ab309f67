//! Seed corpus generator for the fuzz targets (not a fuzz target itself).
//!
//! ```text
//! seedgen <out-dir> [--own-only] [--shared <dir>]
//! ```
//!
//! Writes one file per seed into `<out-dir>/<target>/`:
//!
//! - every sample message of rsp-asn1's test suite (`crates/rsp-asn1/tests/common`: one rich
//!   value per ES9+/ES10 type, v2 and v3), filed under the target that decodes it;
//! - a BoundProfilePackage and its ES8+ commands built with rsp-asn1's encoders;
//! - the project's own USIM+ISIM Milenage template package (saip) and its Profile Elements;
//! - a generated test PKI (rsp-pki): certificates as DER and PEM, private and public keys;
//! - Activation Codes, inventory CSV / JSON-lines files, ES9+ and ES2+ JSON bodies;
//! - with `--shared <dir>` (the reference material, `../shared`): the GSMA TS.48 test
//!   profiles and the SGP.26 certificates.
//!
//! `--own-only` leaves out every seed that carries bytes of the reference material (the
//! test-suite samples embed an SGP.26 certificate): that is the set committed under
//! `fuzz/seeds/`. Without it the output is a run-time corpus (`fuzz/corpus/`, git-ignored).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

// Built by `cargo fuzz build` with the targets, so it carries their coverage
// instrumentation, whose run-time support lives in libFuzzer.
extern crate libfuzzer_sys;

#[path = "../../../crates/rsp-asn1/tests/common/mod.rs"]
#[allow(unused_imports, clippy::all)]
mod common;

use std::path::{Path, PathBuf};

use rsp_asn1::Codec;

struct Out {
    dir: PathBuf,
    own_only: bool,
    shared_cert: Vec<u8>,
    count: usize,
    bytes: usize,
}

impl Out {
    fn put(&mut self, target: &str, name: &str, data: &[u8]) {
        if self.own_only
            && !self.shared_cert.is_empty()
            && data
                .windows(self.shared_cert.len())
                .any(|w| w == self.shared_cert.as_slice())
        {
            return;
        }
        let dir = self.dir.join(target);
        std::fs::create_dir_all(&dir).expect("create seed directory");
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        std::fs::write(dir.join(safe), data).expect("write seed");
        self.count += 1;
        self.bytes += data.len();
    }
}

/// The fuzz target that decodes the test-suite sample of asn1tools type `type_name`.
fn target_for(type_name: &str) -> &'static str {
    match type_name.trim_start_matches("v3.") {
        "AuthenticateServerResponse" => "authenticate_server_response",
        "PrepareDownloadResponse" => "prepare_download_response",
        "CancelSessionResponse" => "cancel_session_response",
        "EUICCInfo1" => "euicc_info1",
        "EUICCInfo2" => "euicc_info2",
        "PendingNotification"
        | "ProfileInstallationResult"
        | "ProfileInstallationResultData"
        | "OtherSignedNotification" => "pending_notification",
        "RpmPackage"
        | "RpmCommand"
        | "SmdpSigned3"
        | "AuthenticateClientOkRpm"
        | "LoadRpmPackageRequest"
        | "LoadRpmPackageResult"
        | "RpmCommandResult"
        | "UpdateMetadataRequest" => "rpm_messages",
        "ConfigureISDPRequest"
        | "StoreMetadataRequest"
        | "ReplaceSessionKeysRequest"
        | "InitialiseSecureChannelRequest"
        | "BoundProfilePackage" => "bound_profile_package",
        _ => "es10_messages",
    }
}

fn asn1_samples(out: &mut Out) {
    let mut all = common::our_samples();
    all.extend(common::our_v3_samples());
    for (i, (type_name, label, der)) in all.into_iter().enumerate() {
        let target = target_for(type_name);
        out.put(target, &format!("{i:03}-{type_name}-{label}.der"), &der);
        // The v3 RPM package is carried inside other messages; the RPM target sees it too.
        if target == "es10_messages" && type_name.starts_with("v3.") {
            out.put(
                "rpm_messages",
                &format!("{i:03}-{type_name}-{label}.der"),
                &der,
            );
        }
    }
}

fn bpp_seeds(out: &mut Out) {
    use rsp_asn1::bpp::*;
    let tid = [0x11u8; 16];
    let host_id = *b"SMDP-host-id";
    let otpk = [0x04u8; 65];
    let sign = [0x5Au8; 64];
    let iscr = InitialiseSecureChannelRequest {
        remote_op_id: 1,
        transaction_id: &tid,
        control_ref_template: ControlRefTemplate {
            key_type: 0x88,
            key_len: 0x10,
            host_id: &host_id,
        },
        smdp_otpk: &otpk,
        smdp_sign: &sign,
    };
    // Segments as they appear on the wire: complete `87` / `88` / `86` TLVs.
    let seg87 = [0x87u8, 0x04, 1, 2, 3, 4];
    let seg88a = [0x88u8, 0x03, 9, 8, 7];
    let seg88b = [0x88u8, 0x02, 6, 5];
    let seg86 = [0x86u8, 0x05, 0xA0, 0xA1, 0xA2, 0xA3, 0xA4];
    let bpp = BoundProfilePackage {
        initialise_secure_channel: iscr,
        first_sequence_of_87: vec![&seg87],
        sequence_of_88: vec![&seg88a, &seg88b],
        second_sequence_of_87: Some(vec![&seg87]),
        sequence_of_86: vec![&seg86, &seg86],
    };
    out.put("bound_profile_package", "bpp-full.der", &bpp.encode());
    let bpp_min = BoundProfilePackage {
        second_sequence_of_87: None,
        sequence_of_86: vec![&seg86],
        ..bpp
    };
    out.put("bound_profile_package", "bpp-no-ppk.der", &bpp_min.encode());
    out.put("bound_profile_package", "iscr.der", &iscr.encode());
    out.put(
        "bound_profile_package",
        "configure-isdp-empty.der",
        &ConfigureIsdpRequest::default().encode(),
    );
    out.put(
        "bound_profile_package",
        "store-metadata-full.der",
        &common::store_metadata_full().encode(),
    );
}

fn saip_seeds(out: &mut Out) {
    let template = saip::Template::usim_isim_milenage().expect("built-in template compiles");
    let der = template.upp().encode();
    out.put("saip_upp", "usim-isim-milenage-template.der", &der);
    // Each Profile Element on its own: small inputs reach the per-PE decoders quickly.
    let mut r = rsp_asn1::Reader::new(&der);
    let mut i = 0;
    while let Ok(t) = r.read() {
        out.put("saip_upp", &format!("template-pe-{i:02}.der"), t.raw);
        i += 1;
    }
}

/// CRLs of a generated PKI: the CI's revoking the EUM (DER and PEM), the EUM's revoking the
/// eUICC, and an empty one.
fn crl_seeds(out: &mut Out, name: &str, pki: &rsp_pki::TestPki) {
    // nextUpdate = thisUpdate (seedgen has no `time` dependency; a zero Duration is the
    // difference of two equal times).
    let validity = rsp_pki::no_expiry() - rsp_pki::no_expiry();
    for (file, issuer, revoked) in [
        ("ci", &pki.ci, Some(&pki.eum)),
        ("eum", &pki.eum, Some(&pki.euicc)),
        ("ci-empty", &pki.ci, None),
    ] {
        let cert = issuer.cert().expect("issuer");
        let mut b = rsp_pki::CrlBuilder::for_issuer(&cert, validity).expect("CRL builder");
        b.crl_number = 1;
        if let Some(r) = revoked {
            b.revoke(r.cert().expect("revoked").serial_number());
        }
        let der = b.sign(&issuer.key).expect("CRL");
        out.put("crl", &format!("{name}-{file}.crl.der"), &der);
        if file == "ci" {
            out.put(
                "crl",
                &format!("{name}-{file}.crl.pem"),
                rsp_pki::crl_to_pem(&der).as_bytes(),
            );
        }
    }
}

fn pki_seeds(out: &mut Out) {
    use rsp_crypto::Curve;
    for (curve, name) in [(Curve::NistP256, "nist"), (Curve::BrainpoolP256r1, "brp")] {
        let pki = rsp_pki::generate(rsp_pki::PkiOptions::new(curve)).expect("test PKI");
        crl_seeds(out, name, &pki);
        let mut bundle = String::new();
        for (role, c) in [
            ("ci", &pki.ci),
            ("eum", &pki.eum),
            ("euicc", &pki.euicc),
            ("dpauth", &pki.dpauth),
            ("dppb", &pki.dppb),
            ("dptls", &pki.dptls),
        ] {
            out.put("certificate_der", &format!("{name}-{role}.der"), &c.der);
            let pem = c.cert_pem();
            bundle.push_str(&pem);
            if role == "euicc" || role == "dpauth" {
                out.put("pem", &format!("{name}-{role}-cert.pem"), pem.as_bytes());
                out.put(
                    "pem",
                    &format!("{name}-{role}-key.pem"),
                    c.key.to_pkcs8_pem().as_bytes(),
                );
            }
        }
        out.put("pem", &format!("{name}-bundle.pem"), bundle.as_bytes());
    }
}

fn text_seeds(out: &mut Out) {
    for (i, ac) in [
        "LPA:1$smdp.example.com$04386-AGYFT-A74Y8-3F815",
        "1$smdp.example.com$04386-AGYFT-A74Y8-3F815$$1",
        "LPA:1$127.0.0.1:8443$MATCHING-ID-1$1.3.6.1.4.1.31746$1",
        "1$[::1]:8443$$2.999.10",
        "LPA:1$smdp.example.com$ABC$2.999.1",
    ]
    .iter()
    .enumerate()
    {
        out.put("activation_code", &format!("ac-{i}.txt"), ac.as_bytes());
    }

    let header = "iccid,imsi,ki,opc,pin1,puk1,pin2,puk2,adm1\n";
    let row = "8949000000000000018,001010000000001,000102030405060708090a0b0c0d0e0f,\
               00112233445566778899aabbccddeeff,1234,12345678,5678,87654321,12345678\n";
    out.put(
        "inventory_csv",
        "one-row.csv",
        format!("{header}{row}").as_bytes(),
    );
    out.put(
        "inventory_csv",
        "quoted-op-spn.csv",
        b"\xEF\xBB\xBFICCID, imsi ,ki,op,pin1,puk1,pin2,puk2,adm1,spn,mnc_len\r\n\
          \"8949000000000000026\",00101123456789,000102030405060708090A0B0C0D0E0F,\
          00112233445566778899AABBCCDDEEFF,12345678,12345678,1234,87654321,0123456789abcdef,\
          \"Example, \"\"Mobile\"\"\",3\r\n\r\n\
          8949000000000000018,001010000000001,00,00,1,2,3,4,5,,2\r\n",
    );
    out.put(
        "inventory_jsonl",
        "two-rows.jsonl",
        b"{\"iccid\":\"8949000000000000018\",\"imsi\":\"001010000000001\",\
          \"ki\":\"000102030405060708090a0b0c0d0e0f\",\"opc\":\"00112233445566778899aabbccddeeff\",\
          \"pin1\":\"1234\",\"puk1\":\"12345678\",\"pin2\":\"5678\",\"puk2\":\"87654321\",\
          \"adm1\":\"12345678\",\"spn\":\"Example\",\"mnc_len\":2}\n\n\
          {\"iccid\":\"8949000000000000026\",\"imsi\":\"00101123456789\",\
          \"ki\":\"000102030405060708090a0b0c0d0e0f\",\"op\":\"00112233445566778899aabbccddeeff\",\
          \"pin1\":\"1234\",\"puk1\":\"12345678\",\"pin2\":\"5678\",\"puk2\":\"87654321\",\
          \"adm1\":\"0123456789abcdef\",\"spn\":null,\"mnc_len\":\"3\"}\n",
    );

    // ES9+: first byte = shape (see fuzz_targets/es9_json.rs).
    let b64 = |b: &[u8]| smdpp_core::es9_json::encode_base64(b);
    let info1 = b64(&common::euicc_info1().encode());
    let es9: Vec<(u8, String)> = vec![
        (
            0,
            format!(
                r#"{{"euiccChallenge":"{}","euiccInfo1":"{info1}","smdpAddress":"smdp.example.com"}}"#,
                b64(&[7; 16])
            ),
        ),
        (
            1,
            format!(
                r#"{{"transactionId":"0123456789ABCDEF0123456789ABCDEF","authenticateServerResponse":"{}"}}"#,
                b64(&[0xBF, 0x38, 0x00])
            ),
        ),
        (
            2,
            format!(
                r#"{{"transactionId":"0123456789ABCDEF","prepareDownloadResponse":"{}"}}"#,
                b64(&[0xBF, 0x21, 0x00])
            ),
        ),
        (
            3,
            format!(r#"{{"pendingNotification":"{}"}}"#, b64(&[0xBF, 0x37, 0x00])),
        ),
        (
            4,
            format!(
                r#"{{"transactionId":"01","cancelSessionResponse":"{}"}}"#,
                b64(&[0xBF, 0x41, 0x00])
            ),
        ),
        (
            5,
            format!(
                r#"{{"header":{{"functionExecutionStatus":{{"status":"Executed-Success"}}}},"transactionId":"0123456789ABCDEF0123456789ABCDEF","serverSigned1":"{}","serverSignature1":"{}","euiccCiPKIdToBeUsed":"{}","serverCertificate":"{}"}}"#,
                b64(&[0x30, 0x00]),
                b64(&[0x5F, 0x37, 0x00]),
                b64(&[0x04, 0x00]),
                b64(&[0x30, 0x00])
            ),
        ),
        (
            6,
            format!(
                r#"{{"header":{{"functionExecutionStatus":{{"status":"Executed-Success"}}}},"transactionId":"01","profileMetadata":"{}","smdpSigned2":"{}","smdpSignature2":"{}","smdpCertificate":"{}"}}"#,
                b64(&[0xBF, 0x25, 0x00]),
                b64(&[0x30, 0x00]),
                b64(&[0x5F, 0x37, 0x00]),
                b64(&[0x30, 0x00])
            ),
        ),
        (
            7,
            r#"{"header":{"functionExecutionStatus":{"status":"Failed","statusCodeData":{"subjectCode":"8.1","reasonCode":"3.8","message":"x"}}}}"#.to_owned(),
        ),
        (
            7,
            format!(
                r#"{{"header":{{"functionExecutionStatus":{{"status":"Executed-Success"}}}},"transactionId":"01","boundProfilePackage":"{}"}}"#,
                b64(&[0xBF, 0x36, 0x00])
            ),
        ),
    ];
    for (i, (which, body)) in es9.iter().enumerate() {
        let mut v = vec![*which];
        v.extend_from_slice(body.as_bytes());
        out.put("es9_json", &format!("es9-{i:02}.bin"), &v);
    }

    // ES2+: first byte = function index in Es2Function::ALL.
    let hdr = r#""header":{"functionRequesterIdentifier":"OP1","functionCallIdentifier":"call-1"}"#;
    let iccid = "89999010000000000016";
    let eid = "89049032123451234512345678901235";
    let es2: Vec<(u8, String)> = vec![
        (
            0,
            format!(r#"{{{hdr},"eid":"{eid}","iccid":"{iccid}","profileType":"demo"}}"#),
        ),
        (0, format!(r#"{{{hdr},"profileType":"demo"}}"#)),
        (
            1,
            format!(
                r#"{{{hdr},"iccid":"{iccid}","eid":"{eid}","matchingId":"ABC-123","confirmationCode":"1234","smdsAddress":"smds.example.com","releaseFlag":true}}"#
            ),
        ),
        (
            2,
            format!(
                r#"{{{hdr},"iccid":"{iccid}","eid":"{eid}","matchingId":"ABC-123","finalProfileStatusIndicator":"Available"}}"#
            ),
        ),
        (3, format!(r#"{{{hdr},"iccid":"{iccid}"}}"#)),
        (4, format!(r#"{{{hdr},"eid":"{eid}","iccid":"{iccid}"}}"#)),
        (5, format!(r#"{{{hdr},"iccid":"{iccid}"}}"#)),
    ];
    for (i, (which, body)) in es2.iter().enumerate() {
        let mut v = vec![*which];
        v.extend_from_slice(body.as_bytes());
        out.put("es2_json", &format!("es2-{i:02}.bin"), &v);
    }
}

fn shared_seeds(out: &mut Out, shared: &Path) {
    let read_dir = |p: PathBuf| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        v.sort();
        v
    };
    for p in read_dir(shared.join("profiles/ts48")) {
        if p.extension().is_some_and(|e| e == "der") {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            out.put("saip_upp", &name, &std::fs::read(&p).unwrap());
        }
    }
    for sub in ["CertificateIssuer", "DPauth", "DPpb", "DPtls"] {
        for p in read_dir(shared.join("certs/sgp26").join(sub)) {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let data = std::fs::read(&p).unwrap();
            if name.ends_with(".der") && name.starts_with("CERT") {
                out.put("certificate_der", &name, &data);
            } else if name.ends_with(".pem") {
                out.put("pem", &name, &data);
            }
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut own_only = false;
    let mut shared = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--own-only" => own_only = true,
            "--shared" => shared = Some(PathBuf::from(args.next().expect("--shared <dir>"))),
            _ if dir.is_none() => dir = Some(PathBuf::from(a)),
            _ => panic!("usage: seedgen <out-dir> [--own-only] [--shared <dir>]"),
        }
    }
    let dir = dir.expect("usage: seedgen <out-dir> [--own-only] [--shared <dir>]");
    let shared_cert = std::fs::read(common::cert_path()).unwrap_or_default();
    let mut out = Out {
        dir,
        own_only,
        shared_cert,
        count: 0,
        bytes: 0,
    };
    asn1_samples(&mut out);
    bpp_seeds(&mut out);
    saip_seeds(&mut out);
    pki_seeds(&mut out);
    text_seeds(&mut out);
    if let Some(shared) = shared
        && !own_only
    {
        shared_seeds(&mut out, &shared);
    }
    println!(
        "seedgen: {} seeds, {} bytes in {}",
        out.count,
        out.bytes,
        out.dir.display()
    );
}
