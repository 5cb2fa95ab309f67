//! Behaviour of the vault: sealing, every rejection, rotation, re-wrapping, key files.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use smdpp_vault::{
    Dek, FileKek, Kek, MIN_BLOB_LEN, SealedBlob, Vault, VaultError, WrappedDek, record_aad,
};

/// A fresh random in-memory KEK (the bytes of a fresh DEK serve as its key).
fn kek() -> Arc<dyn Kek> {
    let key = Dek::generate().unwrap();
    Arc::new(FileKek::from_key(key.expose()).unwrap())
}

fn aad(iccid: &str, column: &str) -> Vec<u8> {
    record_aad("profiles", iccid, column)
}

const ICCID: &str = "8949000000000000018";
const KI: &[u8] = b"000102030405060708090A0B0C0D0E0F";

#[test]
fn round_trip() {
    let v = Vault::create(kek()).unwrap();
    let blob = v.seal(KI, &aad(ICCID, "ki")).unwrap();
    assert_eq!(blob.version(), 1);
    assert_eq!(blob.dek_id(), 1);
    assert_eq!(blob.as_bytes().len(), MIN_BLOB_LEN + KI.len());
    assert_eq!(v.open(&blob, &aad(ICCID, "ki")).unwrap().as_slice(), KI);
    // Through stored bytes, and the empty plaintext.
    let stored = blob.clone().into_bytes();
    assert_eq!(
        v.open_bytes(&stored, &aad(ICCID, "ki")).unwrap().as_slice(),
        KI
    );
    let empty = v.seal(b"", b"x").unwrap();
    assert_eq!(empty.as_bytes().len(), MIN_BLOB_LEN);
    assert!(v.open(&empty, b"x").unwrap().is_empty());
    // Two seals of one value differ (random nonce).
    assert_ne!(blob, v.seal(KI, &aad(ICCID, "ki")).unwrap());
}

#[test]
fn rejects_wrong_aad() {
    let v = Vault::create(kek()).unwrap();
    let blob = v.seal(KI, &aad(ICCID, "ki")).unwrap();
    // Another column of the same row, and the same column of another row.
    assert!(matches!(
        v.open(&blob, &aad(ICCID, "opc")),
        Err(VaultError::Decrypt)
    ));
    assert!(matches!(
        v.open(&blob, &aad("8949000000000000026", "ki")),
        Err(VaultError::Decrypt)
    ));
    assert!(matches!(v.open(&blob, b""), Err(VaultError::Decrypt)));
}

#[test]
fn rejects_tampered_ciphertext() {
    let v = Vault::create(kek()).unwrap();
    let blob = v.seal(KI, &aad(ICCID, "ki")).unwrap();
    let bytes = blob.as_bytes().to_vec();
    // Every byte after the header (nonce, ciphertext, tag): one flipped bit fails.
    for i in 5..bytes.len() {
        let mut t = bytes.clone();
        t[i] ^= 0x01;
        let err = v.open_bytes(&t, &aad(ICCID, "ki")).unwrap_err();
        assert!(matches!(err, VaultError::Decrypt), "byte {i}: {err:?}");
    }
    // A longer or shorter ciphertext.
    let mut t = bytes.clone();
    t.push(0);
    assert!(matches!(
        v.open_bytes(&t, &aad(ICCID, "ki")),
        Err(VaultError::Decrypt)
    ));
    let mut t = bytes.clone();
    t.remove(20);
    assert!(matches!(
        v.open_bytes(&t, &aad(ICCID, "ki")),
        Err(VaultError::Decrypt)
    ));
}

#[test]
fn rejects_truncated_blob() {
    let v = Vault::create(kek()).unwrap();
    let bytes = v.seal(KI, b"a").unwrap().into_bytes();
    for n in [0, 1, 5, 17, MIN_BLOB_LEN - 1] {
        let err = v.open_bytes(&bytes[..n], b"a").unwrap_err();
        match err {
            VaultError::Truncated { len, min } => {
                assert_eq!((len, min), (n, MIN_BLOB_LEN));
            }
            other => panic!("{n}: {other:?}"),
        }
    }
    assert_eq!(
        SealedBlob::parse(&bytes[..3]).unwrap_err().to_string(),
        "sealed blob truncated: 3 bytes, at least 33 needed"
    );
}

#[test]
fn rejects_unknown_key_id() {
    let v = Vault::create(kek()).unwrap();
    let mut bytes = v.seal(KI, b"a").unwrap().into_bytes();
    bytes[4] = 9;
    let err = v.open_bytes(&bytes, b"a").unwrap_err();
    assert!(matches!(err, VaultError::UnknownDek(9)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "sealed blob uses data-encryption key 9, which this vault does not hold"
    );
}

#[test]
fn rejects_wrong_version() {
    let v = Vault::create(kek()).unwrap();
    let mut bytes = v.seal(KI, b"a").unwrap().into_bytes();
    for version in [0u8, 2, 0xFF] {
        bytes[0] = version;
        let err = v.open_bytes(&bytes, b"a").unwrap_err();
        assert!(
            matches!(err, VaultError::UnsupportedVersion(x) if x == version),
            "{err:?}"
        );
    }
}

#[test]
fn rejects_swapped_header_dek_id() {
    // A blob relabelled with another DEK id the vault holds still fails: the header is
    // part of the additional data and the key differs.
    let v = Vault::create(kek()).unwrap();
    let old = v.seal(KI, b"a").unwrap().into_bytes();
    v.rotate_dek().unwrap();
    let mut t = old.clone();
    t[4] = 2;
    assert!(matches!(v.open_bytes(&t, b"a"), Err(VaultError::Decrypt)));
}

#[test]
fn rotation_keeps_old_blobs_readable_and_reseal_moves_them() {
    let v = Vault::create(kek()).unwrap();
    let a = aad(ICCID, "ki");
    let old = v.seal(KI, &a).unwrap();
    let rec = v.rotate_dek().unwrap();
    assert_eq!(rec.dek_id, 2);
    assert_eq!(v.active_dek_id(), 2);
    assert_eq!(v.dek_ids(), vec![1, 2]);
    // Old blobs still open; new seals use DEK 2.
    assert_eq!(v.open(&old, &a).unwrap().as_slice(), KI);
    let new = v.seal(KI, &a).unwrap();
    assert_eq!(new.dek_id(), 2);
    // Reseal moves the old blob to the active DEK.
    assert!(v.needs_reseal(&old));
    let moved = v.reseal(&old, &a).unwrap();
    assert_eq!(moved.dek_id(), 2);
    assert!(!v.needs_reseal(&moved));
    assert_eq!(v.open(&moved, &a).unwrap().as_slice(), KI);
    // Reseal checks the AAD like open does.
    assert!(matches!(v.reseal(&old, b"other"), Err(VaultError::Decrypt)));
    // Retiring DEK 1 leaves the resealed blob readable and the old one unknown.
    assert!(matches!(v.retire_dek(2), Err(VaultError::RetireActive(2))));
    v.retire_dek(1).unwrap();
    assert_eq!(v.open(&moved, &a).unwrap().as_slice(), KI);
    assert!(matches!(v.open(&old, &a), Err(VaultError::UnknownDek(1))));
    assert_eq!(v.records().len(), 1);
}

#[test]
fn records_reload_and_refresh_across_nodes() {
    let k = kek();
    let node_a = Vault::create(k.clone()).unwrap();
    let node_b = Vault::load(k.clone(), &node_a.records()).unwrap();
    let blob1 = node_a.seal(KI, b"r").unwrap();
    assert_eq!(node_b.open(&blob1, b"r").unwrap().as_slice(), KI);
    // Node A rotates; node B meets the new id, refreshes from the store and reads it.
    node_a.rotate_dek().unwrap();
    let blob2 = node_a.seal(KI, b"r").unwrap();
    assert!(matches!(
        node_b.open(&blob2, b"r"),
        Err(VaultError::UnknownDek(2))
    ));
    node_b.refresh(&node_a.records()).unwrap();
    assert_eq!(node_b.open(&blob2, b"r").unwrap().as_slice(), KI);
    assert_eq!(node_b.active_dek_id(), 2);
    // Loading nothing, or a DEK twice, is refused.
    assert!(matches!(
        Vault::load(k.clone(), &[]),
        Err(VaultError::Records(_))
    ));
    let mut twice = node_a.records();
    twice.push(twice[0].clone());
    assert!(matches!(
        Vault::load(k, &twice),
        Err(VaultError::Records(_))
    ));
}

#[test]
fn rewrap_under_new_kek_keeps_everything_readable() {
    let old_kek = kek();
    let v = Vault::create(old_kek.clone()).unwrap();
    let b1 = v.seal(KI, b"r1").unwrap();
    v.rotate_dek().unwrap();
    let b2 = v.seal(b"PIN 1234", b"r2").unwrap();
    let old_records = v.records();

    let new_kek = kek();
    let records = v.rewrap(new_kek.clone()).unwrap();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.kek_id == new_kek.id()));
    assert_eq!(v.kek_id(), new_kek.id());
    assert_eq!(v.records(), records);
    // Sealed data is unchanged and still opens, in this vault and in one loaded anew.
    assert_eq!(v.open(&b1, b"r1").unwrap().as_slice(), KI);
    let reloaded = Vault::load(new_kek.clone(), &records).unwrap();
    assert_eq!(reloaded.open(&b1, b"r1").unwrap().as_slice(), KI);
    assert_eq!(reloaded.open(&b2, b"r2").unwrap().as_slice(), b"PIN 1234");
    // Rotation after rewrap wraps under the new KEK.
    assert_eq!(v.rotate_dek().unwrap().kek_id, new_kek.id());

    // The old KEK cannot load the new records: by id...
    let err = Vault::load(old_kek.clone(), &records).unwrap_err();
    assert!(
        matches!(err, VaultError::KekMismatch { dek_id: 1, .. }),
        "{err:?}"
    );
    // ...and not by cryptography either, even with the id forged.
    let forged: Vec<WrappedDek> = records
        .iter()
        .map(|r| WrappedDek {
            kek_id: old_kek.id().to_owned(),
            ..r.clone()
        })
        .collect();
    let err = Vault::load(old_kek.clone(), &forged).unwrap_err();
    assert!(
        matches!(err, VaultError::Unwrap { dek_id: 1, .. }),
        "{err:?}"
    );
    for r in &records {
        assert!(old_kek.unwrap(r.dek_id, &r.wrapped).is_err());
    }
    // The new KEK does not open the old records.
    assert!(matches!(
        Vault::load(new_kek, &old_records),
        Err(VaultError::KekMismatch { .. })
    ));
}

#[test]
fn rejects_wrapped_dek_under_other_id() {
    // A wrapped DEK moved to another dek_id does not unwrap (the id is bound).
    let k = kek();
    let v = Vault::create(k.clone()).unwrap();
    let mut r = v.records().remove(0);
    r.dek_id = 7;
    assert!(matches!(
        Vault::load(k, &[r]),
        Err(VaultError::Unwrap { dek_id: 7, .. })
    ));
}

#[test]
fn plaintext_never_appears_in_sealed_bytes() {
    let v = Vault::create(kek()).unwrap();
    let marker = b"MARKER-7f3a9c-SECRET-Ki-0011223344556677";
    let mut upp = vec![0xA5u8; 300];
    upp.extend_from_slice(marker);
    upp.extend_from_slice(&[0x5Au8; 300]);
    let blob = v.seal(&upp, b"upp").unwrap();
    let bytes = blob.as_bytes();
    assert!(!bytes.windows(marker.len()).any(|w| w == marker));
    assert!(!bytes.windows(16).any(|w| w == &marker[..16]));
    // Nor in any record, nor in Debug output.
    for r in v.records() {
        assert!(!r.wrapped.windows(8).any(|w| w == &marker[..8]));
    }
    assert!(!format!("{blob:?}{v:?}").contains("MARKER"));
}

#[test]
fn debug_never_prints_key_bytes() {
    let key = [0xABu8; 32];
    let k = FileKek::from_key(&key).unwrap();
    let dek = Dek::from_bytes([0xCDu8; 32]);
    let text = format!("{k:?} {dek:?}");
    assert!(!text.to_lowercase().contains("abab"), "{text}");
    assert!(!text.to_lowercase().contains("cdcd"), "{text}");
    assert!(!text.contains("171"), "{text}");
    let v = Vault::create(Arc::new(k)).unwrap();
    assert!(format!("{v:?}").starts_with("Vault { kek_id: \"file:"));
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn file_kek_create_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek.hex");
    let created = FileKek::create(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.len(), 65);
    assert!(text.ends_with('\n'));
    let loaded = FileKek::load(&path).unwrap();
    assert_eq!(created.id(), loaded.id());
    assert!(created.id().starts_with("file:"));
    assert_eq!(created.id().len(), 5 + 16);
    // A DEK wrapped by one opens with the other.
    let dek = Dek::generate().unwrap();
    let w = created.wrap(3, &dek).unwrap();
    assert_eq!(loaded.unwrap(3, &w).unwrap().expose(), dek.expose());
    // create refuses to overwrite.
    assert!(matches!(FileKek::create(&path), Err(VaultError::Io { .. })));

    // The raw 32-byte form and hex with whitespace give the same key id.
    let raw = dir.path().join("kek.bin");
    let key: Vec<u8> = (0u8..32).collect();
    std::fs::write(&raw, &key).unwrap();
    std::fs::set_permissions(&raw, std::fs::Permissions::from_mode(0o400)).unwrap();
    let hexfile = dir.path().join("kek2.hex");
    std::fs::write(&hexfile, format!("  {}\r\n", hex_upper(&key))).unwrap();
    std::fs::set_permissions(&hexfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        FileKek::load(&raw).unwrap().id(),
        FileKek::load(&hexfile).unwrap().id()
    );
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

#[test]
fn rejects_group_or_world_readable_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek.hex");
    FileKek::create(&path).unwrap();
    for m in [0o644, 0o640, 0o604, 0o660, 0o606] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
        let err = FileKek::load(&path).unwrap_err();
        match &err {
            VaultError::InsecureKeyFile { mode, .. } => assert_eq!(*mode, m),
            other => panic!("{m:o}: {other:?}"),
        }
        if m == 0o644 {
            assert_eq!(
                err.to_string(),
                format!(
                    "key file {}: mode 0644 gives group/other access; it must be 0600 or stricter (chmod 600)",
                    path.display()
                )
            );
        }
    }
}

#[test]
fn rejects_malformed_key_file() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("short", b"0011".to_vec()),
        ("nonhex", [b'g'; 64].to_vec()),
        ("long", vec![b'0'; 5000]),
        ("empty", Vec::new()),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, &content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = FileKek::load(&p).unwrap_err();
        assert!(matches!(err, VaultError::KeyFile { .. }), "{name}: {err:?}");
        assert!(!err.to_string().contains("gggg"));
    }
    assert!(matches!(
        FileKek::load(&dir.path().join("missing")),
        Err(VaultError::Io { .. })
    ));
}

#[test]
fn vault_is_shareable_across_threads() {
    let v = Arc::new(Vault::create(kek()).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let v = v.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let a = format!("{t}/{i}");
                    let b = v.seal(a.as_bytes(), a.as_bytes()).unwrap();
                    if i == 100 && t == 0 {
                        v.rotate_dek().unwrap();
                    }
                    assert_eq!(v.open(&b, a.as_bytes()).unwrap().as_slice(), a.as_bytes());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(v.active_dek_id(), 2);
}

#[test]
fn abandoned_rotation_restores_the_previous_key() {
    let v = Vault::create(kek()).unwrap();
    let sealed = v.seal(b"secret", &aad("8949000000000000018", "x")).unwrap();
    let r = v.rotate_dek().unwrap();
    assert_eq!(v.active_dek_id(), 2);
    v.abandon_dek(r.dek_id).unwrap();
    assert_eq!(v.active_dek_id(), 1);
    assert_eq!(v.dek_ids(), vec![1]);
    assert_eq!(
        v.open(&sealed, &aad("8949000000000000018", "x"))
            .unwrap()
            .as_slice(),
        b"secret"
    );
    // Only the active key of a vault with another key can be abandoned.
    assert!(matches!(v.abandon_dek(1), Err(VaultError::Records(_))));
    let r = v.rotate_dek().unwrap();
    assert!(matches!(v.abandon_dek(1), Err(VaultError::Records(_))));
    assert_eq!(r.dek_id, 2);
}
