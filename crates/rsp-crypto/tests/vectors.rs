//! Byte-exact reproduction of every entry of the shared RSP crypto vectors (ECKA, KDF,
//! SCP03t sessions and a full BPP decode). Activation codes are tested elsewhere.

// Test code: a malformed vector file should abort the test loudly.
#![allow(clippy::panic)]

use base64::Engine as _;
use rsp_crypto::Curve;
use rsp_crypto::kdf::{SessionKeys, derive_session_keys};
use rsp_crypto::otk::EphemeralKey;
use rsp_crypto::scp03t::Scp03tSession;
use serde_json::Value;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/rsp-crypto-vectors.json"
);

fn vectors() -> Value {
    let text = std::fs::read_to_string(VECTORS).expect("read vectors");
    serde_json::from_str(&text).expect("parse vectors")
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn b64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("b64 string"))
        .expect("b64")
}

fn arr16(v: &Value) -> [u8; 16] {
    hx(v).try_into().expect("16 bytes")
}

fn keys(v: &Value) -> SessionKeys {
    SessionKeys {
        s_enc: arr16(&v["s_enc"]),
        s_mac: arr16(&v["s_mac"]),
        initial_mcv: arr16(&v["initial_mcv"]),
    }
}

fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not a list"))
}

#[test]
fn ecka_vectors() {
    let v = vectors();
    let entries = list(&v, "ecka");
    assert!(!entries.is_empty());
    for e in entries {
        let curve = match e["curve"].as_str() {
            Some("NIST P-256") => Curve::NistP256,
            Some("brainpoolP256r1") => Curve::BrainpoolP256r1,
            other => panic!("unknown curve {other:?}"),
        };
        let k = EphemeralKey::from_scalar(curve, &hx(&e["smdp_otsk"])).expect("otsk");
        assert_eq!(
            k.public_key(),
            hx(&e["smdp_otpk"]).as_slice(),
            "{}",
            e["name"]
        );
        let z = k.agree(&hx(&e["euicc_otpk"])).expect("agree");
        assert_eq!(
            z.as_bytes().as_slice(),
            hx(&e["expect_shared_secret"]).as_slice(),
            "{}",
            e["name"]
        );
        // The same agreement through a long-term SoftwareKey.
        let sk = rsp_crypto::SoftwareKey::from_scalar(curve, &hx(&e["smdp_otsk"])).expect("sk");
        let z2 = rsp_crypto::KeyCustody::ecdh(&sk, &hx(&e["euicc_otpk"])).expect("ecdh");
        assert_eq!(
            z2.as_bytes().as_slice(),
            hx(&e["expect_shared_secret"]).as_slice()
        );
    }
}

#[test]
fn kdf_vectors() {
    let v = vectors();
    let entries = list(&v, "kdf");
    assert!(!entries.is_empty());
    for e in entries {
        let z: [u8; 32] = hx(&e["shared_secret"]).try_into().expect("32");
        let key_type = hx(&e["key_type"]);
        let key_len = u8::try_from(e["key_length"].as_u64().expect("len")).expect("u8");
        let got = derive_session_keys(
            &rsp_crypto::SharedSecret::from_bytes(z),
            key_type[0],
            key_len,
            &hx(&e["host_id"]),
            &hx(&e["eid"]),
        )
        .expect("derive");
        assert_eq!(got, keys(&e["expect"]), "{}", e["name"]);
    }
}

#[test]
fn scp03t_session_vectors() {
    let v = vectors();
    let sessions = list(&v, "scp03t_sessions");
    assert!(!sessions.is_empty());
    let mut steps_run = 0;
    for s in sessions {
        let k = keys(&s["keys"]);
        let mut tx = Scp03tSession::new(&k).expect("tx");
        let mut rx = Scp03tSession::new(&k).expect("rx");
        for step in list(s, "steps") {
            let tag = hx(&step["tag"])[0];
            let plain = hx(&step["plain"]);
            let seg = match step["op"].as_str() {
                Some("encrypt_and_mac") => tx.protect_encrypt_mac(tag, &plain).expect("protect"),
                Some("mac_only") => tx.protect_mac_only(tag, &plain).expect("protect"),
                other => panic!("unknown op {other:?}"),
            };
            assert_eq!(
                hex::encode(&seg),
                step["expect_segment"].as_str().expect("s"),
                "{}",
                step["note"]
            );
            assert_eq!(rx.unprotect(&seg).expect("unprotect"), plain);
            steps_run += 1;
        }
    }
    assert!(steps_run >= 5);
}

#[test]
fn bpp_decode_vectors() {
    use rsp_asn1::bpp::{BoundProfilePackage, StoreMetadataRequest};
    use rsp_crypto::bpp::open_bpp_with_keys;
    let v = vectors();
    let entries = list(&v, "bpp_decode");
    assert!(!entries.is_empty());
    for e in entries {
        let der = b64(&e["bpp_b64"]);
        // This SM-DP+ protects the profile with fixed PPKs but sends no ReplaceSessionKeys
        // (no secondSequenceOf87), and wraps each SCP03t TLV once more in its [7]/[8]/[6]
        // element; the PPKs are supplied out of band as the vector says.
        let ppk = keys(&e["ppk_keys"]);
        let opened = open_bpp_with_keys(&der, &keys(&e["session_keys"]), Some(&ppk)).expect("open");
        assert_eq!(opened.configure_isdp, hx(&e["expect_configure_isdp"]));
        assert_eq!(opened.store_metadata, hx(&e["expect_store_metadata"]));
        assert_eq!(opened.ppk.as_ref(), Some(&keys(&e["ppk_keys"])));
        assert_eq!(opened.upp.as_slice(), b64(&e["expect_upp_b64"]).as_slice());
        // The typed decoders agree and re-encode byte-exactly.
        let bpp = BoundProfilePackage::decode(&der).expect("decode");
        assert_eq!(bpp.encode(), der);
        assert_eq!(bpp.initialise_secure_channel.remote_op_id, 1);
        assert_eq!(
            bpp.initialise_secure_channel.control_ref_template.key_type,
            0x88
        );
        // The trace's profile segments are 1036-byte SCP03t TLVs (1008-byte chunks), over
        // the 1020 limit of section 2.5.3; the opener accepts larger segments on receipt.
        assert!(bpp.second_sequence_of_87.is_none());
        let smr = StoreMetadataRequest::decode(&opened.store_metadata).expect("smr");
        assert_eq!(smr.encode(), opened.store_metadata);
    }
}
