//! The profile factory at run time: the vault (a key-encryption key outside the database,
//! data-encryption keys wrapped in it inside the database), sealing and opening of subscriber
//! secrets and stored packages, profile types with their compiled templates, and the
//! generation of a personalized UPP inside GetBoundProfilePackage.
//!
//! What is stored, and how:
//! - an imported profile: a `profiles` row (state Available, its type) and a
//!   `profile_secrets` row: the IMSI in the clear, and Ki, OPc/OP, PIN1/PUK1/PIN2/PUK2, ADM1,
//!   the MNC length and SPN as one AES-256-GCM sealed record ([`SubscriberSecrets`]) whose
//!   additional data names the row (`profile_secrets`, ICCID and IMSI, `sealed`);
//! - an uploaded package (`smdpp profiles add --upp`): `profiles.upp` holds the package
//!   sealed the same way (additional data `profiles`, ICCID, `upp`). A package stored in the
//!   clear by an older version (it starts with a ProfileHeader tag `A0`, a sealed blob with
//!   its version byte `01`) is not served ([`Factory::open_stored_upp`] refuses it);
//!   [`Factory::seal_plaintext_upps`] (run by `smdpp serve` at start) seals it in place;
//! - a profile type: its template's TOML source sealed the same way (additional data
//!   `profile_types`, type name, `template`).
//!
//! At download time [`Factory::upp_for`] opens the secrets, personalizes the type's template
//! and returns the package in a buffer that is wiped on drop; the caller protects it into
//! a BPP (SGP.22 section 2.5.3, 5.5) and drops it. Nothing personalized is kept in plaintext.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use saip::{OperatorKey, Personalization, SecretText, Template, TemplateSource};
use smdpp_store::{DekRecord, Profile, ProfileType, SealedSecrets, Store, StoreError};
use smdpp_vault::{FileKek, Kek, SealedBlob, Vault, VaultError, WrappedDek, record_aad};
use zeroize::Zeroizing;

/// Why the factory failed. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FactoryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing, opening or key handling failed.
    // Transparent: with `#[error("vault: {0}")]` and `#[from]` (a source) a `{:#}` chain
    // printed the vault's message twice (e.g. "key file F: vault: key file F: mode 0644
    // ...: key file F: mode 0644 ..." from `smdpp keys status`).
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A stored record does not decode.
    #[error("stored secrets of {iccid} are malformed")]
    Corrupt {
        /// The profile.
        iccid: String,
    },
    /// The profile has neither a stored package nor imported secrets with a type.
    #[error("profile {0} has no package and no imported subscriber data")]
    NoSource(String),
    /// The profile's type is unknown.
    #[error("profile type {0:?} does not exist")]
    UnknownType(String),
    /// The type's template does not compile.
    #[error("template of profile type {name:?}: {why}")]
    Template {
        /// Type name.
        name: String,
        /// Compiler message.
        why: String,
    },
    /// Personalization refused the stored values.
    #[error("personalizing {iccid}: {why}")]
    Personalize {
        /// The profile.
        iccid: String,
        /// The refusal (never contains a secret value).
        why: String,
    },
    /// The key file or the stored keys do not fit together.
    #[error("{0}")]
    Keys(String),
}

type Result<T> = std::result::Result<T, FactoryError>;

/// Version byte of the [`SubscriberSecrets`] record.
const SECRETS_V1: u8 = 1;

/// The secret part of a profile's subscriber data, as sealed in `profile_secrets`.
/// `Debug` redacts every secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberSecrets {
    /// MNC length of the IMSI (2 or 3).
    pub mnc_len: u8,
    /// Ki.
    pub ki: SecretText,
    /// OPc or OP.
    pub operator_key: OperatorKey,
    /// PIN1.
    pub pin1: SecretText,
    /// PUK1.
    pub puk1: SecretText,
    /// PIN2.
    pub pin2: SecretText,
    /// PUK2.
    pub puk2: SecretText,
    /// ADM1.
    pub adm1: SecretText,
    /// Service provider name, when the row gave one (not secret, kept with the rest).
    pub spn: Option<String>,
}

impl SubscriberSecrets {
    /// The secret fields of a personalization.
    pub fn from_personalization(p: &Personalization) -> SubscriberSecrets {
        SubscriberSecrets {
            mnc_len: p.mnc_len,
            ki: p.ki.clone(),
            operator_key: p.operator_key.clone(),
            pin1: p.pin1.clone(),
            puk1: p.puk1.clone(),
            pin2: p.pin2.clone(),
            puk2: p.puk2.clone(),
            adm1: p.adm1.clone(),
            spn: p.spn.clone(),
        }
    }

    /// The personalization of `iccid`/`imsi` with these secrets.
    pub fn personalization(&self, iccid: &str, imsi: &str) -> Personalization {
        Personalization {
            iccid: iccid.to_owned(),
            imsi: imsi.to_owned(),
            mnc_len: self.mnc_len,
            ki: self.ki.clone(),
            operator_key: self.operator_key.clone(),
            pin1: self.pin1.clone(),
            puk1: self.puk1.clone(),
            pin2: self.pin2.clone(),
            puk2: self.puk2.clone(),
            adm1: self.adm1.clone(),
            spn: self.spn.clone(),
            home_plmn: None,
            file_overrides: Vec::new(),
        }
    }

    /// The record: `01 || mnc_len || op_kind (0 OPc, 1 OP) || has_spn`, then Ki, OPc/OP,
    /// PIN1, PUK1, PIN2, PUK2, ADM1 and SPN (empty when absent), each as one length byte and
    /// its UTF-8 text. Returned in a buffer wiped on drop.
    /// `None` when a field is longer than 255 bytes (validated input never is).
    pub fn encode(&self) -> Option<Zeroizing<Vec<u8>>> {
        let (kind, op) = match &self.operator_key {
            OperatorKey::Opc(s) => (0u8, s),
            OperatorKey::Op(s) => (1u8, s),
        };
        let spn = self.spn.as_deref().unwrap_or("");
        let fields = [
            self.ki.expose(),
            op.expose(),
            self.pin1.expose(),
            self.puk1.expose(),
            self.pin2.expose(),
            self.puk2.expose(),
            self.adm1.expose(),
            spn,
        ];
        // Exact capacity: the buffer never grows, so no unwiped copy is left behind.
        let len = 4 + fields.iter().map(|f| 1 + f.len()).sum::<usize>();
        let mut out = Zeroizing::new(Vec::with_capacity(len));
        out.extend_from_slice(&[SECRETS_V1, self.mnc_len, kind, u8::from(self.spn.is_some())]);
        for f in fields {
            out.push(u8::try_from(f.len()).ok()?);
            out.extend_from_slice(f.as_bytes());
        }
        Some(out)
    }

    /// Whether two records hold the same values, hex keys compared without regard to case
    /// (`0a..` and `0A..` are one Ki).
    pub fn same_values(&self, other: &SubscriberSecrets) -> bool {
        let hex_eq = |a: &SecretText, b: &SecretText| a.expose().eq_ignore_ascii_case(b.expose());
        let op_eq = match (&self.operator_key, &other.operator_key) {
            (OperatorKey::Opc(a), OperatorKey::Opc(b))
            | (OperatorKey::Op(a), OperatorKey::Op(b)) => hex_eq(a, b),
            _ => false,
        };
        self.mnc_len == other.mnc_len
            && hex_eq(&self.ki, &other.ki)
            && op_eq
            && self.pin1 == other.pin1
            && self.puk1 == other.puk1
            && self.pin2 == other.pin2
            && self.puk2 == other.puk2
            && hex_eq(&self.adm1, &other.adm1)
            && self.spn == other.spn
    }

    /// Parses [`SubscriberSecrets::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Option<SubscriberSecrets> {
        let (head, mut rest) = bytes.split_at_checked(4)?;
        let [SECRETS_V1, mnc_len, kind, has_spn] = *head else {
            return None;
        };
        let mut fields: Vec<SecretText> = Vec::with_capacity(8);
        for _ in 0..8 {
            let (&len, tail) = rest.split_first()?;
            let (v, tail) = tail.split_at_checked(usize::from(len))?;
            fields.push(SecretText::from(std::str::from_utf8(v).ok()?));
            rest = tail;
        }
        if !rest.is_empty() {
            return None;
        }
        let spn = fields.pop()?;
        let mut f = fields.into_iter();
        let mut next = || f.next();
        let ki = next()?;
        let op = next()?;
        Some(SubscriberSecrets {
            mnc_len,
            ki,
            operator_key: match kind {
                0 => OperatorKey::Opc(op),
                1 => OperatorKey::Op(op),
                _ => return None,
            },
            pin1: next()?,
            puk1: next()?,
            pin2: next()?,
            puk2: next()?,
            adm1: next()?,
            spn: match has_spn {
                0 => None,
                1 => Some(spn.expose().to_owned()),
                _ => return None,
            },
        })
    }
}

/// The additional data binding a sealed secrets record to its row: the ICCID and the IMSI
/// stored beside it (in the clear), so neither can be swapped with another row's.
pub fn secrets_aad(iccid: &str, imsi: &str) -> Vec<u8> {
    record_aad("profile_secrets", &format!("{iccid}/{imsi}"), "sealed")
}

/// The additional data binding a sealed template source to its profile type.
pub fn template_aad(type_name: &str) -> Vec<u8> {
    record_aad("profile_types", type_name, "template")
}

/// The additional data binding a sealed stored package to its row.
pub fn upp_aad(iccid: &str) -> Vec<u8> {
    record_aad("profiles", iccid, "upp")
}

fn to_record(w: &WrappedDek) -> DekRecord {
    DekRecord {
        dek_id: i64::from(w.dek_id),
        kek_id: w.kek_id.clone(),
        wrapped: w.wrapped.clone(),
    }
}

fn from_records(records: &[DekRecord]) -> Result<Vec<WrappedDek>> {
    records
        .iter()
        .map(|r| {
            Ok(WrappedDek {
                dek_id: u32::try_from(r.dek_id)
                    .map_err(|_| FactoryError::Keys(format!("bad stored DEK id {}", r.dek_id)))?,
                kek_id: r.kek_id.clone(),
                wrapped: r.wrapped.clone(),
            })
        })
        .collect()
}

/// Loads the KEK at `path`; with `create`, makes a new one there when the file is missing.
/// Returns the key and whether it was created now.
pub fn load_or_create_kek(path: &Path, create: bool) -> Result<(Arc<dyn Kek>, bool)> {
    if create && !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| FactoryError::Keys(format!("creating {}: {e}", dir.display())))?;
        }
        return Ok((Arc::new(FileKek::create(path)?), true));
    }
    Ok((Arc::new(FileKek::load(path)?), false))
}

/// A compiled type: its row and its template.
#[derive(Debug)]
pub struct CompiledType {
    /// The stored type.
    pub row: ProfileType,
    /// Its template, compiled.
    pub template: Template,
    /// Size in bytes of the template's package.
    pub package_len: usize,
    /// ProfileHeader (major, minor) version of the template's package.
    pub package_version: Option<(u8, u8)>,
}

/// See the module docs. Share as `Arc<Factory>`.
pub struct Factory {
    store: Store,
    vault: Vault,
    types: Mutex<HashMap<String, Arc<CompiledType>>>,
}

impl std::fmt::Debug for Factory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factory")
            .field("vault", &self.vault)
            .finish_non_exhaustive()
    }
}

impl Factory {
    /// The factory over `store` with the key-encryption key `kek`: loads the wrapped DEKs,
    /// or creates DEK 1 when the database has none. A KEK that did not wrap the stored DEKs
    /// is refused with both key ids (never the keys).
    pub async fn open(store: Store, kek: Arc<dyn Kek>) -> Result<Factory> {
        let mut records = store.vault_deks().await?;
        if records.is_empty() {
            let fresh = Vault::create(Arc::clone(&kek))?;
            let rec = fresh
                .records()
                .first()
                .map(to_record)
                .ok_or_else(|| FactoryError::Keys("new vault without a key".into()))?;
            match store.insert_vault_dek(&rec).await {
                Ok(()) => {
                    return Ok(Factory {
                        store,
                        vault: fresh,
                        types: Mutex::default(),
                    });
                }
                // Another process created DEK 1 first: use theirs.
                Err(StoreError::Duplicate { .. }) => records = store.vault_deks().await?,
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(r) = records.iter().find(|r| r.kek_id != kek.id()) {
            return Err(FactoryError::Keys(format!(
                "the database's data-encryption keys are wrapped by key-encryption key {}, \
                 but the key file holds {}: point kek_file (--kek-file, SMDPP_KEK_FILE) at the \
                 key file whose id is {}",
                r.kek_id,
                kek.id(),
                r.kek_id
            )));
        }
        let vault = Vault::load(kek, &from_records(&records)?)?;
        Ok(Factory {
            store,
            vault,
            types: Mutex::default(),
        })
    }

    /// The vault.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Opens `bytes` sealed with `aad`, reloading the DEKs once when the blob names a DEK
    /// created by another process since this one started.
    async fn open_blob(&self, bytes: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match self.vault.open_bytes(bytes, aad) {
            Err(VaultError::UnknownDek(_)) => {
                let records = from_records(&self.store.vault_deks().await?)?;
                self.vault.refresh(&records)?;
                Ok(self.vault.open_bytes(bytes, aad)?)
            }
            other => Ok(other?),
        }
    }

    /// Opens a blob this factory sealed under `aad` (e.g. a generator's OP, a webhook
    /// secret), refreshing the DEKs once when it was sealed by another process.
    pub async fn open_sealed(&self, bytes: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.open_blob(bytes, aad).await
    }

    /// Seals the secrets record of `iccid` / `imsi`; returns the blob and the DEK id that
    /// sealed it.
    pub fn seal_secrets(
        &self,
        iccid: &str,
        imsi: &str,
        s: &SubscriberSecrets,
    ) -> Result<(Vec<u8>, i64)> {
        let record = s.encode().ok_or_else(|| FactoryError::Corrupt {
            iccid: iccid.to_owned(),
        })?;
        let blob = self.vault.seal(&record, &secrets_aad(iccid, imsi))?;
        let dek = i64::from(blob.dek_id());
        Ok((blob.into_bytes(), dek))
    }

    /// Whether two sealed records of `iccid` hold the same secrets (both open, equal). A
    /// record that does not open counts as different.
    pub fn same_secrets(&self, iccid: &str, imsi: &str, a: &[u8], b: &[u8]) -> bool {
        let aad = secrets_aad(iccid, imsi);
        match (
            self.vault.open_bytes(a, &aad),
            self.vault.open_bytes(b, &aad),
        ) {
            (Ok(x), Ok(y)) => {
                match (SubscriberSecrets::decode(&x), SubscriberSecrets::decode(&y)) {
                    (Some(x), Some(y)) => x.same_values(&y),
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// Opens a stored secrets record.
    pub async fn open_secrets(&self, s: &SealedSecrets) -> Result<SubscriberSecrets> {
        let plain = self
            .open_blob(&s.sealed, &secrets_aad(&s.iccid, &s.imsi))
            .await?;
        SubscriberSecrets::decode(&plain).ok_or_else(|| FactoryError::Corrupt {
            iccid: s.iccid.clone(),
        })
    }

    /// Seals a package to store in `profiles.upp` of `iccid`.
    pub fn seal_upp(&self, iccid: &str, upp: &[u8]) -> Result<Vec<u8>> {
        Ok(self.vault.seal(upp, &upp_aad(iccid))?.into_bytes())
    }

    /// The package held in `profiles.upp`. Only a sealed one: a package in the clear (left
    /// by an older version; `smdpp serve` seals those at start) is refused, so a row written
    /// into the database without the key cannot inject a package of its choosing.
    pub async fn open_stored_upp(&self, iccid: &str, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if is_plaintext_upp(stored) {
            return Err(FactoryError::Keys(format!(
                "the package of {iccid} is stored in the clear; `smdpp serve` seals such \
                 packages when it starts"
            )));
        }
        self.open_blob(stored, &upp_aad(iccid)).await
    }

    /// The type `name` with its compiled template (cached: a type is never changed).
    pub async fn profile_type(&self, name: &str) -> Result<Arc<CompiledType>> {
        if let Some(t) = self.cached_type(name) {
            return Ok(t);
        }
        let row = self
            .store
            .get_profile_type(name)
            .await?
            .ok_or_else(|| FactoryError::UnknownType(name.to_owned()))?;
        let text = self.open_template(&row).await?;
        let template =
            Template::compile(&TemplateSource::from_toml(text.as_str())).map_err(|e| {
                FactoryError::Template {
                    name: name.to_owned(),
                    why: e.to_string(),
                }
            })?;
        let upp = template.upp().encode();
        let t = Arc::new(CompiledType {
            row,
            package_len: upp.len(),
            package_version: crate::upp::version_from_upp(&upp),
            template,
        });
        if let Ok(mut m) = self.types.lock() {
            m.insert(name.to_owned(), Arc::clone(&t));
        }
        Ok(t)
    }

    /// Stores a profile type (from `build_profile_type`, whose `template` holds the TOML
    /// source), its template sealed: a template may hold keys shared by every profile of
    /// the type. [`StoreError::Duplicate`] if the name is taken.
    pub async fn add_profile_type(&self, t: &ProfileType) -> Result<()> {
        let mut sealed = t.clone();
        sealed.template = self
            .vault
            .seal(&t.template, &template_aad(&t.name))?
            .into_bytes();
        Ok(self.store.insert_profile_type(&sealed).await?)
    }

    /// The TOML source of a stored type's template. Like any blob, one sealed under a DEK
    /// this process has not seen (a rotation by another process re-seals templates too)
    /// reloads the keys.
    pub async fn open_template(&self, row: &ProfileType) -> Result<Zeroizing<String>> {
        let plain = self
            .open_blob(&row.template, &template_aad(&row.name))
            .await?;
        let text = std::str::from_utf8(&plain).map_err(|_| FactoryError::Template {
            name: row.name.clone(),
            why: "stored template is not UTF-8".into(),
        })?;
        Ok(Zeroizing::new(text.to_owned()))
    }

    fn cached_type(&self, name: &str) -> Option<Arc<CompiledType>> {
        self.types.lock().ok()?.get(name).cloned()
    }

    /// The Unprotected Profile Package of `profile`, in a buffer wiped on drop: its stored
    /// package (opened), or its type's template personalized with its opened secrets.
    pub async fn upp_for(&self, profile: &Profile) -> Result<Zeroizing<Vec<u8>>> {
        if let Some(stored) = &profile.upp {
            return self.open_stored_upp(&profile.iccid, stored).await;
        }
        let (Some(type_name), Some(sealed)) = (
            profile.profile_type.as_deref(),
            self.store.get_sealed_secrets(&profile.iccid).await?,
        ) else {
            return Err(FactoryError::NoSource(profile.iccid.clone()));
        };
        let t = self.profile_type(type_name).await?;
        let secrets = self.open_secrets(&sealed).await?;
        let upp = t
            .template
            .personalize(&secrets.personalization(&profile.iccid, &sealed.imsi))
            .map_err(|e| FactoryError::Personalize {
                iccid: profile.iccid.clone(),
                why: e.to_string(),
            })?;
        Ok(Zeroizing::new(upp.encode()))
    }

    /// What the eligibility check needs to know of a profile's package without building it:
    /// its size in bytes and its ProfileHeader (major, minor) version. For a generated
    /// profile these are the template's (personalization changes contents, not structure,
    /// and at most a few bytes of length).
    pub async fn package_facts(&self, profile: &Profile) -> Result<(usize, Option<(u8, u8)>)> {
        if let Some(stored) = &profile.upp {
            let upp = self.open_stored_upp(&profile.iccid, stored).await?;
            return Ok((upp.len(), crate::upp::version_from_upp(&upp)));
        }
        match profile.profile_type.as_deref() {
            Some(name) => {
                let t = self.profile_type(name).await?;
                Ok((t.package_len, t.package_version))
            }
            None => Err(FactoryError::NoSource(profile.iccid.clone())),
        }
    }

    /// Seals every package stored in the clear (by a version before the vault); returns how
    /// many. Safe to run while serving: each row is replaced only if unchanged.
    pub async fn seal_plaintext_upps(&self) -> Result<u64> {
        let mut n = 0;
        loop {
            let page = self.store.plaintext_upps(500).await?;
            let mut sealed_now = 0;
            for (iccid, upp) in &page {
                let sealed = self.seal_upp(iccid, upp)?;
                if self.store.replace_stored_upp(iccid, upp, &sealed).await? {
                    sealed_now += 1;
                }
            }
            n += sealed_now;
            // Done when a page comes back short, or nothing of a page could be replaced
            // (every row changed under us: the next start takes them).
            if page.len() < 500 || sealed_now == 0 {
                return Ok(n);
            }
        }
    }

    /// Creates a new DEK, stores it, and re-seals every stored secret record, profile-type
    /// template and package under it (in batches, each row compare-and-set, so a running server keeps working:
    /// it opens blobs of either DEK, reloading the new one on first sight). Old DEKs are
    /// kept: a process started before the rotation (a server, an import) keeps sealing
    /// under the DEK it knows until it reloads, and what it writes must stay readable;
    /// [`Factory::retire_unused`] deletes them later. Returns `(new dek id, rows re-sealed)`.
    pub async fn rotate_dek(&self, mut progress: impl FnMut(u64)) -> Result<(u32, u64)> {
        // Another process may have rotated since this one loaded the keys: start from the
        // stored set, so the new id is the next free one.
        self.vault
            .refresh(&from_records(&self.store.vault_deks().await?)?)?;
        let record = self.vault.rotate_dek()?;
        if let Err(e) = self.store.insert_vault_dek(&to_record(&record)).await {
            // Not stored (a concurrent rotation took the id): forget it again, so nothing
            // is sealed under a key no other process can read.
            let _ = self.vault.abandon_dek(record.dek_id);
            return Err(e.into());
        }
        let done = self.reseal_all(&mut progress).await?;
        Ok((record.dek_id, done))
    }

    /// Re-seals every stored secrets record, profile-type template and package that is not
    /// under the active DEK (`smdpp keys reseal`: finishes a rotation that stopped). A record
    /// that cannot be re-sealed (it does not open) is skipped and named in the error at the
    /// end; the others are done. Returns how many were re-sealed.
    pub async fn reseal_all(&self, mut progress: impl FnMut(u64)) -> Result<u64> {
        self.vault
            .refresh(&from_records(&self.store.vault_deks().await?)?)?;
        let active = self.vault.active_dek_id();
        let mut done = 0u64;
        let mut failed: Vec<String> = Vec::new();
        // Secrets records.
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .sealed_secrets_not_under(i64::from(active), after.as_deref(), 1000)
                .await?;
            let mut updates = Vec::with_capacity(page.len());
            for s in &page {
                match SealedBlob::parse(&s.sealed)
                    .and_then(|b| self.vault.reseal(&b, &secrets_aad(&s.iccid, &s.imsi)))
                {
                    Ok(new) => updates.push((s.clone(), new.into_bytes(), i64::from(active))),
                    Err(_) => failed.push(format!("secrets of {}", s.iccid)),
                }
            }
            done += self.store.reseal_secrets(&updates).await?;
            progress(done);
            match page.last() {
                Some(s) if page.len() == 1000 => after = Some(s.iccid.clone()),
                _ => break,
            }
        }
        // Templates of the profile types.
        for t in self.store.list_profile_types().await? {
            let new = match SealedBlob::parse(&t.template) {
                Ok(blob) if !self.vault.needs_reseal(&blob) => continue,
                Ok(blob) => self.vault.reseal(&blob, &template_aad(&t.name)),
                Err(e) => Err(e),
            };
            match new {
                Ok(new) => {
                    if self
                        .store
                        .replace_type_template(&t.name, &t.template, new.as_bytes())
                        .await?
                    {
                        done += 1;
                    }
                }
                Err(_) => failed.push(format!("template of type {:?}", t.name)),
            }
        }
        // Stored packages.
        let mut after: Option<String> = None;
        loop {
            let page = self.store.stored_upps(after.as_deref(), 500).await?;
            for (iccid, stored) in &page {
                let new = if is_plaintext_upp(stored) {
                    self.seal_upp(iccid, stored)
                } else {
                    match SealedBlob::parse(stored) {
                        Ok(blob) if !self.vault.needs_reseal(&blob) => continue,
                        Ok(blob) => self
                            .vault
                            .reseal(&blob, &upp_aad(iccid))
                            .map(SealedBlob::into_bytes)
                            .map_err(FactoryError::from),
                        Err(e) => Err(e.into()),
                    }
                };
                match new {
                    Ok(new) => {
                        if self.store.replace_stored_upp(iccid, stored, &new).await? {
                            done += 1;
                        }
                    }
                    Err(_) => failed.push(format!("package of {iccid}")),
                }
            }
            progress(done);
            match page.last() {
                Some((iccid, _)) if page.len() == 500 => after = Some(iccid.clone()),
                _ => break,
            }
        }
        if !failed.is_empty() {
            return Err(FactoryError::Keys(format!(
                "{} could not be re-sealed (they do not open): {}{}; {done} others were; \
                 data-encryption key {active} is active; repair or remove them and run \
                 `smdpp keys reseal`",
                if failed.len() == 1 {
                    "1 record".to_owned()
                } else {
                    format!("{} records", failed.len())
                },
                failed
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if failed.len() > 5 { ", ..." } else { "" }
            )));
        }
        Ok(done)
    }

    /// Deletes every DEK other than the active one that no stored secrets record or
    /// package uses any more (`smdpp keys retire`); returns their ids. Run it only when
    /// every process started before the last rotation has been restarted (or has re-read
    /// the keys): such a process may still seal new records under an old DEK.
    pub async fn retire_unused(&self) -> Result<Vec<u32>> {
        let records = from_records(&self.store.vault_deks().await?)?;
        self.vault.refresh(&records)?;
        let active = self.vault.active_dek_id();
        // One pass over every record not under the active DEK (after a re-seal there are
        // few), so no DEK still in use is deleted.
        let in_use = self.deks_in_use(active).await?;
        let mut retired = Vec::new();
        for old in self.vault.dek_ids() {
            if old == active || in_use.contains(&old) {
                continue;
            }
            // Deleted here (not already by another process, and no record stored under it
            // in between: the foreign key refuses the delete then); only then is it
            // forgotten in memory.
            if self.store.delete_vault_dek(i64::from(old)).await? {
                self.vault.retire_dek(old)?;
                retired.push(old);
            }
        }
        Ok(retired)
    }

    /// The DEK ids that sealed a stored secrets record (among those not under `active`), a
    /// profile-type template or a stored package.
    async fn deks_in_use(&self, active: u32) -> Result<std::collections::BTreeSet<u32>> {
        let mut used = std::collections::BTreeSet::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .sealed_secrets_not_under(i64::from(active), after.as_deref(), 1000)
                .await?;
            used.extend(page.iter().filter_map(|s| u32::try_from(s.dek_id).ok()));
            match page.last() {
                Some(s) if page.len() == 1000 => after = Some(s.iccid.clone()),
                _ => break,
            }
        }
        let dek_of = |blob: &[u8]| SealedBlob::parse(blob).ok().map(|b| b.dek_id());
        for t in self.store.list_profile_types().await? {
            used.extend(dek_of(&t.template));
        }
        let mut after: Option<String> = None;
        loop {
            let page = self.store.stored_upps(after.as_deref(), 500).await?;
            for (_, stored) in &page {
                if !is_plaintext_upp(stored) {
                    used.extend(dek_of(stored));
                }
            }
            match page.last() {
                Some((iccid, _)) if page.len() == 500 => after = Some(iccid.clone()),
                _ => return Ok(used),
            }
        }
    }

    /// Re-wraps every DEK under `new_kek` and stores the new wrappings in one transaction.
    /// Sealed data does not change. The caller switches the configuration to the new key
    /// file; a running server keeps its unwrapped DEKs and is not affected, but it cannot
    /// unwrap a DEK created under the new KEK: restart servers with the new key file before
    /// the next DEK rotation.
    pub async fn rewrap(&self, new_kek: Arc<dyn Kek>) -> Result<String> {
        // Every stored DEK, including one another process created since this one started:
        // a DEK left wrapped under the old KEK would make the new key file unusable.
        self.vault
            .refresh(&from_records(&self.store.vault_deks().await?)?)?;
        let records = self.vault.rewrap(Arc::clone(&new_kek))?;
        let records: Vec<DekRecord> = records.iter().map(to_record).collect();
        self.store.rewrap_vault_deks(&records).await?;
        Ok(new_kek.id().to_owned())
    }
}

/// Whether a stored `profiles.upp` value is a package in the clear (ProfileHeader tag `A0`)
/// rather than a sealed blob (version byte `01`).
pub fn is_plaintext_upp(stored: &[u8]) -> bool {
    stored.first() == Some(&0xA0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> SubscriberSecrets {
        SubscriberSecrets {
            mnc_len: 2,
            ki: "000102030405060708090A0B0C0D0E0F".into(),
            operator_key: OperatorKey::Op("101112131415161718191A1B1C1D1E1F".into()),
            pin1: "1234".into(),
            puk1: "12345678".into(),
            pin2: "5678".into(),
            puk2: "87654321".into(),
            adm1: "0123456789ABCDEF".into(),
            spn: Some("Test".into()),
        }
    }

    #[test]
    fn secrets_record_round_trips() {
        let s = sample();
        let enc = s.encode().unwrap();
        assert_eq!(enc.capacity(), enc.len());
        assert_eq!(SubscriberSecrets::decode(&enc).unwrap(), s);
        let mut none = s.clone();
        none.spn = None;
        assert_eq!(
            SubscriberSecrets::decode(&none.encode().unwrap()).unwrap(),
            none
        );
        let mut long = s.clone();
        long.spn = Some("x".repeat(256));
        assert!(long.encode().is_none());
    }

    #[test]
    fn rejects_malformed_secrets_records() {
        let enc = sample().encode().unwrap();
        for cut in 0..enc.len() {
            assert!(
                SubscriberSecrets::decode(&enc[..cut]).is_none(),
                "cut {cut}"
            );
        }
        let mut long = enc.to_vec();
        long.push(0);
        assert!(SubscriberSecrets::decode(&long).is_none());
        let mut bad = enc.to_vec();
        bad[0] = 2;
        assert!(SubscriberSecrets::decode(&bad).is_none());
        let mut bad = enc.to_vec();
        bad[2] = 7;
        assert!(SubscriberSecrets::decode(&bad).is_none());
    }

    #[test]
    fn same_values_ignores_hex_case_only() {
        let a = sample();
        let mut b = sample();
        b.ki = "000102030405060708090a0b0c0d0e0f".into();
        assert!(a.same_values(&b));
        b.pin1 = "4321".into();
        assert!(!a.same_values(&b));
        let mut c = sample();
        c.operator_key = OperatorKey::Opc("101112131415161718191A1B1C1D1E1F".into());
        assert!(!a.same_values(&c));
    }

    #[test]
    fn debug_redacts() {
        let d = format!("{:?}", sample());
        assert!(!d.contains("000102030405"), "{d}");
        assert!(!d.contains("12345678"), "{d}");
    }
}
