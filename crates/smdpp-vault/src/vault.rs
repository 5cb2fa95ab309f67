//! [`Vault`]: the DEKs in memory, sealing and opening, rotation and re-wrapping.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::VaultError;
use crate::envelope::{HEADER_LEN, NONCE_LEN, SealedBlob, VERSION};
use crate::kek::{Dek, Kek, WrappedDek};

/// One unwrapped DEK: its bytes (for re-wrapping), the expanded AES key and its record.
struct Entry {
    dek: Dek,
    key: LessSafeKey,
    record: WrappedDek,
}

impl Entry {
    fn new(dek: Dek, record: WrappedDek) -> Result<Self, VaultError> {
        let unbound = UnboundKey::new(&AES_256_GCM, dek.expose())
            .map_err(|_| VaultError::Crypto("AES-256-GCM key setup failed"))?;
        Ok(Entry {
            dek,
            key: LessSafeKey::new(unbound),
            record,
        })
    }
}

struct Inner {
    kek: Arc<dyn Kek>,
    /// Never empty; the highest id is the active DEK.
    deks: BTreeMap<u32, Entry>,
}

impl Inner {
    fn active(&self) -> Result<(u32, &Entry), VaultError> {
        self.deks
            .last_key_value()
            .map(|(id, e)| (*id, e))
            .ok_or_else(|| VaultError::Records("no data-encryption key".into()))
    }

    fn unwrap_record(&self, r: &WrappedDek) -> Result<Entry, VaultError> {
        if r.kek_id != self.kek.id() {
            return Err(VaultError::KekMismatch {
                dek_id: r.dek_id,
                record: r.kek_id.clone(),
                kek: self.kek.id().to_owned(),
            });
        }
        let dek = self.kek.unwrap(r.dek_id, &r.wrapped)?;
        Entry::new(dek, r.clone())
    }
}

/// The data-encryption keys of one deployment, unwrapped in memory, and the KEK that wraps
/// them. Share it as `Arc<Vault>`: every method takes `&self`, rotation included, so
/// sealing and opening continue while keys rotate.
///
/// `Debug` shows the KEK id and the DEK ids only.
pub struct Vault {
    inner: RwLock<Inner>,
}

impl Vault {
    /// A new vault with one fresh DEK (id 1) wrapped under `kek`. Persist
    /// [`Vault::records`] before sealing anything with it.
    pub fn create(kek: Arc<dyn Kek>) -> Result<Self, VaultError> {
        let dek = Dek::generate()?;
        let record = WrappedDek {
            dek_id: 1,
            kek_id: kek.id().to_owned(),
            wrapped: kek.wrap(1, &dek)?,
        };
        let entry = Entry::new(dek, record)?;
        Ok(Vault {
            inner: RwLock::new(Inner {
                kek,
                deks: BTreeMap::from([(1, entry)]),
            }),
        })
    }

    /// A vault from persisted records, unwrapping each with `kek`. Every record must name
    /// `kek` ([`VaultError::KekMismatch`]) and unwrap ([`VaultError::Unwrap`]).
    pub fn load(kek: Arc<dyn Kek>, records: &[WrappedDek]) -> Result<Self, VaultError> {
        if records.is_empty() {
            return Err(VaultError::Records(
                "no wrapped data-encryption key to load".into(),
            ));
        }
        let mut inner = Inner {
            kek,
            deks: BTreeMap::new(),
        };
        for r in records {
            if inner.deks.contains_key(&r.dek_id) {
                return Err(VaultError::Records(format!(
                    "data-encryption key {} listed twice",
                    r.dek_id
                )));
            }
            let e = inner.unwrap_record(r)?;
            inner.deks.insert(r.dek_id, e);
        }
        Ok(Vault {
            inner: RwLock::new(inner),
        })
    }

    // A poisoned lock only means another thread panicked while holding it; every write
    // below replaces or inserts whole entries, so the map is consistent and usable.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds DEKs persisted by another node (after a rotation there); records already held
    /// are skipped. Call it when [`Vault::open`] reports [`VaultError::UnknownDek`].
    pub fn refresh(&self, records: &[WrappedDek]) -> Result<(), VaultError> {
        let mut inner = self.write();
        for r in records {
            if inner.deks.contains_key(&r.dek_id) {
                continue;
            }
            let e = inner.unwrap_record(r)?;
            inner.deks.insert(r.dek_id, e);
        }
        Ok(())
    }

    /// The wrapped DEK records to persist, by ascending id.
    pub fn records(&self) -> Vec<WrappedDek> {
        self.read()
            .deks
            .values()
            .map(|e| e.record.clone())
            .collect()
    }

    /// The id of the active DEK (the one sealing).
    pub fn active_dek_id(&self) -> u32 {
        self.read().deks.last_key_value().map_or(0, |(id, _)| *id)
    }

    /// The ids of every DEK held.
    pub fn dek_ids(&self) -> Vec<u32> {
        self.read().deks.keys().copied().collect()
    }

    /// The id of the KEK wrapping the DEKs.
    pub fn kek_id(&self) -> String {
        self.read().kek.id().to_owned()
    }

    /// Encrypts `plaintext` under the active DEK, binding `aad` (see
    /// [`crate::record_aad`]).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<SealedBlob, VaultError> {
        let inner = self.read();
        let (id, e) = inner.active()?;
        seal_with(id, e, plaintext, aad)
    }

    /// Decrypts `blob`, which must have been sealed with the same `aad`.
    pub fn open(&self, blob: &SealedBlob, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let inner = self.read();
        let e = inner
            .deks
            .get(&blob.dek_id())
            .ok_or(VaultError::UnknownDek(blob.dek_id()))?;
        let mut full_aad = Vec::with_capacity(HEADER_LEN + aad.len());
        full_aad.extend_from_slice(blob.header());
        full_aad.extend_from_slice(aad);
        let mut buf = Zeroizing::new(blob.ct_and_tag().to_vec());
        let len = e
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(blob.nonce()),
                Aad::from(full_aad),
                buf.as_mut_slice(),
            )
            .map_err(|_| VaultError::Decrypt)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }

    /// Parses stored bytes and opens them ([`SealedBlob::from_bytes`] then
    /// [`Vault::open`]).
    pub fn open_bytes(&self, bytes: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        self.open(&SealedBlob::parse(bytes)?, aad)
    }

    /// Creates a new DEK (id = highest + 1), makes it the active one and returns its record
    /// to persist. Older DEKs stay and keep opening what they sealed.
    pub fn rotate_dek(&self) -> Result<WrappedDek, VaultError> {
        let mut inner = self.write();
        let (last, _) = inner.active()?;
        let id = last
            .checked_add(1)
            .ok_or_else(|| VaultError::Records("data-encryption key ids exhausted".into()))?;
        let dek = Dek::generate()?;
        let record = WrappedDek {
            dek_id: id,
            kek_id: inner.kek.id().to_owned(),
            wrapped: inner.kek.wrap(id, &dek)?,
        };
        let entry = Entry::new(dek, record.clone())?;
        inner.deks.insert(id, entry);
        Ok(record)
    }

    /// Whether `blob` was sealed under another DEK than the active one.
    pub fn needs_reseal(&self, blob: &SealedBlob) -> bool {
        blob.dek_id() != self.active_dek_id()
    }

    /// Opens `blob` and seals its plaintext again under the active DEK (same `aad`).
    pub fn reseal(&self, blob: &SealedBlob, aad: &[u8]) -> Result<SealedBlob, VaultError> {
        let plain = self.open(blob, aad)?;
        self.seal(&plain, aad)
    }

    /// Forgets DEK `dek_id` once no stored blob uses it (the caller deletes its record).
    /// The active DEK cannot be retired.
    pub fn retire_dek(&self, dek_id: u32) -> Result<(), VaultError> {
        let mut inner = self.write();
        let (active, _) = inner.active()?;
        if dek_id == active {
            return Err(VaultError::RetireActive(dek_id));
        }
        inner
            .deks
            .remove(&dek_id)
            .map(|_| ())
            .ok_or(VaultError::UnknownDek(dek_id))
    }

    /// Undoes [`Vault::rotate_dek`] whose record could not be persisted: forgets DEK
    /// `dek_id` if it is the active one and an older DEK remains (which becomes active).
    pub fn abandon_dek(&self, dek_id: u32) -> Result<(), VaultError> {
        let mut inner = self.write();
        let (active, _) = inner.active()?;
        if dek_id != active || inner.deks.len() < 2 {
            return Err(VaultError::Records(format!(
                "data-encryption key {dek_id} is not a rotation that can be undone"
            )));
        }
        inner.deks.remove(&dek_id);
        Ok(())
    }

    /// Wraps every DEK under `new_kek`, switches the vault to it and returns the new
    /// records to persist (replacing the old ones by `dek_id`). Sealed data is untouched.
    /// Nothing changes if a wrap fails.
    pub fn rewrap(&self, new_kek: Arc<dyn Kek>) -> Result<Vec<WrappedDek>, VaultError> {
        let mut inner = self.write();
        let mut records = Vec::with_capacity(inner.deks.len());
        for (id, e) in &inner.deks {
            records.push(WrappedDek {
                dek_id: *id,
                kek_id: new_kek.id().to_owned(),
                wrapped: new_kek.wrap(*id, &e.dek)?,
            });
        }
        for r in &records {
            if let Some(e) = inner.deks.get_mut(&r.dek_id) {
                e.record = r.clone();
            }
        }
        inner.kek = new_kek;
        Ok(records)
    }
}

fn seal_with(id: u32, e: &Entry, plaintext: &[u8], aad: &[u8]) -> Result<SealedBlob, VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| VaultError::Crypto("random generator failed"))?;
    let mut full_aad = Vec::with_capacity(HEADER_LEN + aad.len());
    full_aad.push(VERSION);
    full_aad.extend_from_slice(&id.to_be_bytes());
    full_aad.extend_from_slice(aad);
    let mut buf = Zeroizing::new(Vec::with_capacity(plaintext.len() + 16));
    buf.extend_from_slice(plaintext);
    e.key
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(full_aad),
            &mut *buf,
        )
        .map_err(|_| VaultError::Crypto("AES-256-GCM seal failed"))?;
    // After sealing, `buf` holds ciphertext and tag only (no plaintext left to wipe).
    Ok(SealedBlob::assemble(id, &nonce, &buf))
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.read();
        f.debug_struct("Vault")
            .field("kek_id", &inner.kek.id())
            .field("dek_ids", &inner.deks.keys().collect::<Vec<_>>())
            .finish()
    }
}
