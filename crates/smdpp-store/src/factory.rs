//! The profile factory's tables (migration `0005_factory.sql`): profile types, the sealed
//! subscriber secrets of imported profiles, and the vault's wrapped data-encryption keys.
//!
//! The store never sees a plaintext secret: `profile_secrets.sealed` and the wrapped DEKs are
//! opaque bytes produced by `smdpp-vault` in the service layer.
//!
//! Bulk import goes through an [`ImportTx`]: a write transaction that classifies and inserts
//! batches of rows (each row = its `profiles` row + its `profile_secrets` row, both or
//! neither). The caller commits per batch (keep the good rows) or once at the end (all or
//! nothing).

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Result, Store};
use crate::StoreError;
use crate::model::{EpochMillis, ProfileState, normalize_iccid, now_ms};
use crate::sql::Sql;

/// Rows per multi-row statement. Small on purpose: sqlx's SQLite driver looks each bound
/// parameter up by name, which costs time linear in the statement's parameter count, so a
/// statement's binding cost grows with the square of its rows. At 1,000 rows per statement a
/// million-row import spent 85% of its CPU time in `sqlite3_bind_parameter_name` (perf);
/// at 100 rows it imports five times faster.
pub const IMPORT_CHUNK: usize = 100;

/// A profile type (table `profile_types`).
#[derive(Clone, PartialEq, Eq)]
pub struct ProfileType {
    /// Unique name, used as ES2+ `profileType`.
    pub name: String,
    /// TOML source of the SAIP template the packages are generated from, sealed by the
    /// service layer (opaque bytes here).
    pub template: Vec<u8>,
    /// serviceProviderName of the profile metadata (at most 32 bytes).
    pub service_provider_name: String,
    /// profileName of the profile metadata (at most 64 bytes).
    pub profile_name: String,
    /// profileClass (0 test, 1 provisioning, 2 operational); `None` leaves it out.
    pub profile_class: Option<i64>,
    /// iconType (0 JPG, 1 PNG).
    pub icon_type: Option<i64>,
    /// The icon file.
    pub icon: Option<Vec<u8>>,
    /// profileManagementOperation bits for which the eUICC sends notifications to us
    /// (bit 0 install, 1 enable, 2 disable, 3 delete), as a bit mask `1 << bit`.
    pub notification_events: i64,
    /// profilePolicyRules bits (bit 1 ppr1, bit 2 ppr2) as a mask `1 << bit`; `None` = no PPRs.
    pub ppr_bits: Option<i64>,
    /// Confirmation-code attempts allowed for profiles of this type.
    pub cc_attempt_limit: Option<i64>,
    /// Download attempts allowed for profiles of this type.
    pub download_attempt_limit: Option<i64>,
    /// When the type was created.
    pub created_at: EpochMillis,
    /// What a delete notification from the eUICC does to a profile of this type.
    pub on_delete: OnDelete,
}

/// What happens to a profile once its eUICC reports it deleted (`smdpp types add
/// --on-delete`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OnDelete {
    /// Unavailable: the ICCID is never handed out again (the default).
    #[default]
    Retire,
    /// Available for a new order: EID binding, counters, MatchingID and cached BPP cleared.
    Reuse,
}

impl OnDelete {
    /// The stored (and command-line) text form.
    pub const fn as_str(self) -> &'static str {
        match self {
            OnDelete::Retire => "retire",
            OnDelete::Reuse => "reuse",
        }
    }
}

impl std::fmt::Display for OnDelete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OnDelete {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "retire" => Ok(OnDelete::Retire),
            "reuse" => Ok(OnDelete::Reuse),
            _ => Err(StoreError::InvalidInput(format!(
                "on-delete must be retire or reuse, not {s:?}"
            ))),
        }
    }
}

impl std::fmt::Debug for ProfileType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileType")
            .field("name", &self.name)
            .field("template_len", &self.template.len())
            .field("service_provider_name", &self.service_provider_name)
            .field("profile_name", &self.profile_name)
            .field("profile_class", &self.profile_class)
            .field("icon_len", &self.icon.as_ref().map(Vec::len))
            .field("notification_events", &self.notification_events)
            .field("ppr_bits", &self.ppr_bits)
            .field("cc_attempt_limit", &self.cc_attempt_limit)
            .field("download_attempt_limit", &self.download_attempt_limit)
            .field("on_delete", &self.on_delete)
            .finish()
    }
}

/// A wrapped data-encryption key as stored (table `vault_deks`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DekRecord {
    /// DEK number (1, 2, ...); the highest is the active one.
    pub dek_id: i64,
    /// Id of the key-encryption key that wrapped it.
    pub kek_id: String,
    /// The wrapped key.
    pub wrapped: Vec<u8>,
}

/// The sealed secrets of one imported profile (table `profile_secrets`).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecrets {
    /// ICCID.
    pub iccid: String,
    /// IMSI (not secret).
    pub imsi: String,
    /// DEK that sealed `sealed`.
    pub dek_id: i64,
    /// The sealed record (opaque to the store).
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SealedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecrets")
            .field("iccid", &self.iccid)
            .field("imsi", &self.imsi)
            .field("dek_id", &self.dek_id)
            .field("sealed_len", &self.sealed.len())
            .finish()
    }
}

/// One row to import: an Available profile of a type, with its sealed secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRow {
    /// The secrets (ICCID, IMSI, sealed record).
    pub secrets: SealedSecrets,
    /// Profile type (must exist).
    pub profile_type: String,
    /// Owning operator (must exist when set).
    pub operator_id: Option<String>,
    /// Confirmation-code attempt limit (from the type).
    pub cc_attempt_limit: Option<i64>,
    /// Download attempt limit (from the type).
    pub download_attempt_limit: Option<i64>,
}

/// What happened to one [`ImportRow`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Inserted (pending the transaction's commit).
    Inserted,
    /// The same ICCID with the same IMSI, type and operator is already in the store: a
    /// re-run of an import; nothing written.
    AlreadyPresent,
    /// The ICCID is already used by a different profile (other IMSI, type or operator, or a
    /// profile that was not imported).
    DuplicateIccid,
    /// The same ICCID, IMSI, type and operator are in the store with other secrets (a
    /// corrected file re-imported): nothing written. Only from
    /// [`ImportTx::insert_batch_checked`].
    ChangedSecrets,
    /// The IMSI is already used by another ICCID.
    DuplicateImsi,
}

/// A write transaction for bulk import; see the module docs. Dropped without
/// [`ImportTx::commit`], it rolls back.
pub struct ImportTx {
    tx: Transaction<'static, Any>,
    backend: crate::Backend,
    /// On SQLite: the writer, held until the import ends (declared after `tx`, so the
    /// transaction ends before the writer is released).
    _turn: Option<tokio::sync::OwnedMutexGuard<crate::writer::Batch>>,
}

impl std::fmt::Debug for ImportTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportTx").finish_non_exhaustive()
    }
}

const TYPE_COLS: &str = "name, template, service_provider_name, profile_name, profile_class, \
     icon_type, icon, notification_events, ppr_bits, cc_attempt_limit, download_attempt_limit, \
     created_at, on_delete";

fn type_from_row(row: &AnyRow) -> Result<ProfileType> {
    Ok(ProfileType {
        name: row.try_get("name")?,
        template: row.try_get("template")?,
        service_provider_name: row.try_get("service_provider_name")?,
        profile_name: row.try_get("profile_name")?,
        profile_class: row.try_get("profile_class")?,
        icon_type: row.try_get("icon_type")?,
        icon: row.try_get("icon")?,
        notification_events: row.try_get("notification_events")?,
        ppr_bits: row.try_get("ppr_bits")?,
        cc_attempt_limit: row.try_get("cc_attempt_limit")?,
        download_attempt_limit: row.try_get("download_attempt_limit")?,
        created_at: row.try_get("created_at")?,
        on_delete: row
            .try_get::<String, _>("on_delete")?
            .parse()
            .map_err(|_| StoreError::corrupt("profile type on_delete"))?,
    })
}

fn secrets_from_row(row: &AnyRow) -> Result<SealedSecrets> {
    Ok(SealedSecrets {
        iccid: row.try_get("iccid")?,
        imsi: row.try_get("imsi")?,
        dek_id: row.try_get("dek_id")?,
        sealed: row.try_get("sealed")?,
    })
}

/// `(iccid, upp)` of a row.
fn iccid_and_upp(row: &AnyRow) -> Result<(String, Vec<u8>)> {
    Ok((row.try_get("iccid")?, row.try_get("upp")?))
}

/// Appends `(p1, p2, ...)` binding `values`.
fn push_in_list(q: &mut Sql, values: impl IntoIterator<Item = String>) {
    q.push("(");
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.bind(v);
    }
    q.push(")");
}

impl Store {
    // ---------------------------------------------------------------- profile types

    /// Inserts a profile type; [`StoreError::Duplicate`] if the name is taken.
    pub async fn insert_profile_type(&self, t: &ProfileType) -> Result<()> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q = Sql::new("INSERT INTO profile_types (");
            q.push(TYPE_COLS).push(") VALUES (");
            q.bind(t.name.clone())
                .push(", ")
                .bind(t.template.clone())
                .push(", ")
                .bind(t.service_provider_name.clone())
                .push(", ")
                .bind(t.profile_name.clone())
                .push(", ")
                .bind(t.profile_class)
                .push(", ")
                .bind(t.icon_type)
                .push(", ")
                .bind(t.icon.clone())
                .push(", ")
                .bind(t.notification_events)
                .push(", ")
                .bind(t.ppr_bits)
                .push(", ")
                .bind(t.cc_attempt_limit)
                .push(", ")
                .bind(t.download_attempt_limit)
                .push(", ")
                .bind(t.created_at)
                .push(", ")
                .bind(t.on_delete.as_str())
                .push(")");
            match q.build()?.execute(turn.conn()).await {
                Ok(_) => Ok(()),
                Err(e) => match StoreError::from(e) {
                    StoreError::Duplicate { .. } => Err(StoreError::Duplicate {
                        key: "profile type name".into(),
                    }),
                    other => Err(other),
                },
            }
        }
        .await;
        turn.finish(result).await
    }

    /// Replaces the metadata of type `name` (service provider name, profile name, icon,
    /// PPRs, on-delete policy) with those of `t`; `false` when there is no such type. The
    /// template, limits and notification operations are not changed (`smdpp types update`).
    pub async fn update_profile_type_metadata(&self, name: &str, t: &ProfileType) -> Result<bool> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q = Sql::new("UPDATE profile_types SET service_provider_name = ");
            q.bind(t.service_provider_name.clone())
                .push(", profile_name = ")
                .bind(t.profile_name.clone())
                .push(", icon_type = ")
                .bind(t.icon_type)
                .push(", icon = ")
                .bind(t.icon.clone())
                .push(", ppr_bits = ")
                .bind(t.ppr_bits)
                .push(", on_delete = ")
                .bind(t.on_delete.as_str())
                .push(" WHERE name = ")
                .bind(name.to_owned());
            Ok(q.build()?.execute(turn.conn()).await?.rows_affected() == 1)
        }
        .await;
        turn.finish(result).await
    }

    /// The profile type `name`.
    pub async fn get_profile_type(&self, name: &str) -> Result<Option<ProfileType>> {
        let mut q = Sql::new("SELECT ");
        q.push(TYPE_COLS)
            .push(" FROM profile_types WHERE name = ")
            .bind(name.to_owned());
        q.fetch_optional(&self.pool, type_from_row).await
    }

    /// Every profile type, by name.
    pub async fn list_profile_types(&self) -> Result<Vec<ProfileType>> {
        let mut q = Sql::new("SELECT ");
        q.push(TYPE_COLS).push(" FROM profile_types ORDER BY name");
        q.fetch_all(&self.pool, type_from_row).await
    }

    /// Replaces a type's sealed template if it is still `old` (compare-and-set, for
    /// re-sealing under a new DEK); whether it was replaced.
    pub async fn replace_type_template(&self, name: &str, old: &[u8], new: &[u8]) -> Result<bool> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q = Sql::new("UPDATE profile_types SET template = ");
            q.bind(new.to_vec())
                .push(" WHERE name = ")
                .bind(name.to_owned())
                .push(" AND template = ")
                .bind(old.to_vec());
            Ok(q.build()?.execute(turn.conn()).await?.rows_affected() == 1)
        }
        .await;
        turn.finish(result).await
    }

    /// Number of profiles per state for one type (states with none are left out).
    pub async fn count_profiles_of_type(&self, name: &str) -> Result<Vec<(ProfileState, i64)>> {
        let mut q = Sql::new("SELECT state, COUNT(*) AS n FROM profiles WHERE profile_type = ");
        q.bind(name.to_owned())
            .push(" GROUP BY state ORDER BY state");
        let rows = q.build()?.fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let s: String = r.try_get("state")?;
            let n: i64 = r.try_get("n")?;
            out.push((
                s.parse()
                    .map_err(|_| StoreError::corrupt("profile state"))?,
                n,
            ));
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- vault keys

    /// Every wrapped DEK, by id.
    pub async fn vault_deks(&self) -> Result<Vec<DekRecord>> {
        let rows = sqlx::query("SELECT dek_id, kek_id, wrapped FROM vault_deks ORDER BY dek_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DekRecord {
                    dek_id: r.try_get("dek_id")?,
                    kek_id: r.try_get("kek_id")?,
                    wrapped: r.try_get("wrapped")?,
                })
            })
            .collect()
    }

    /// Stores a new wrapped DEK; [`StoreError::Duplicate`] if its id exists (another node
    /// created one first: reload and retry).
    pub async fn insert_vault_dek(&self, d: &DekRecord) -> Result<()> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q =
                Sql::new("INSERT INTO vault_deks (dek_id, kek_id, wrapped, created_at) VALUES (");
            q.bind(d.dek_id)
                .push(", ")
                .bind(d.kek_id.clone())
                .push(", ")
                .bind(d.wrapped.clone())
                .push(", ")
                .bind(now_ms())
                .push(")");
            match q.build()?.execute(turn.conn()).await {
                Ok(_) => Ok(()),
                Err(e) => match StoreError::from(e) {
                    StoreError::Duplicate { .. } => Err(StoreError::Duplicate {
                        key: "dek_id".into(),
                    }),
                    other => Err(other),
                },
            }
        }
        .await;
        turn.finish(result).await
    }

    /// Replaces the wrapping of every DEK in `records` (a KEK re-wrap), in one transaction.
    /// Each record's DEK must exist.
    pub async fn rewrap_vault_deks(&self, records: &[DekRecord]) -> Result<()> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut tx = turn.begin().await?;
            for d in records {
                let mut q = Sql::new("UPDATE vault_deks SET kek_id = ");
                q.bind(d.kek_id.clone())
                    .push(", wrapped = ")
                    .bind(d.wrapped.clone())
                    .push(" WHERE dek_id = ")
                    .bind(d.dek_id);
                if q.build()?.execute(&mut *tx).await?.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Err(StoreError::NotFound);
                }
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        turn.finish(result).await
    }

    /// Deletes a DEK record; `false` when it does not exist or a secrets record still uses
    /// it (the foreign key of `profile_secrets.dek_id` refuses the delete).
    pub async fn delete_vault_dek(&self, dek_id: i64) -> Result<bool> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q = Sql::new("DELETE FROM vault_deks WHERE dek_id = ");
            q.bind(dek_id);
            match q.build()?.execute(turn.conn()).await {
                Ok(r) => Ok(r.rows_affected() > 0),
                Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
        .await;
        turn.finish(result).await
    }

    // ---------------------------------------------------------------- secrets

    /// The sealed secrets of a profile.
    pub async fn get_sealed_secrets(&self, iccid: &str) -> Result<Option<SealedSecrets>> {
        let iccid = normalize_iccid(iccid)?;
        let mut q =
            Sql::new("SELECT iccid, imsi, dek_id, sealed FROM profile_secrets WHERE iccid = ");
        q.bind(iccid);
        q.fetch_optional(&self.pool, secrets_from_row).await
    }

    /// A page of sealed secrets not sealed under `dek_id` (for re-sealing after a DEK
    /// rotation), by ICCID after `after`.
    pub async fn sealed_secrets_not_under(
        &self,
        dek_id: i64,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SealedSecrets>> {
        let mut q =
            Sql::new("SELECT iccid, imsi, dek_id, sealed FROM profile_secrets WHERE dek_id <> ");
        q.bind(dek_id);
        if let Some(a) = after {
            q.push(" AND iccid > ").bind(a.to_owned());
        }
        q.push(" ORDER BY iccid LIMIT ")
            .bind(i64::from(limit.clamp(1, 10_000)));
        q.fetch_all(&self.pool, secrets_from_row).await
    }

    /// Replaces sealed blobs if they are still the ones read (compare-and-set on the old
    /// blob), in one transaction; returns how many were replaced.
    pub async fn reseal_secrets(&self, updates: &[(SealedSecrets, Vec<u8>, i64)]) -> Result<u64> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut tx = turn.begin().await?;
            let mut n = 0;
            for (old, sealed, dek_id) in updates {
                let mut q = Sql::new("UPDATE profile_secrets SET sealed = ");
                q.bind(sealed.clone())
                    .push(", dek_id = ")
                    .bind(*dek_id)
                    .push(" WHERE iccid = ")
                    .bind(old.iccid.clone())
                    .push(" AND sealed = ")
                    .bind(old.sealed.clone());
                n += q.build()?.execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            Ok(n)
        }
        .await;
        turn.finish(result).await
    }

    /// A page of `(iccid, upp)` of profiles that hold a stored UPP, by ICCID after `after`.
    pub async fn stored_upps(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let mut q = Sql::new("SELECT iccid, upp FROM profiles WHERE upp IS NOT NULL");
        if let Some(a) = after {
            q.push(" AND iccid > ").bind(a.to_owned());
        }
        q.push(" ORDER BY iccid LIMIT ")
            .bind(i64::from(limit.clamp(1, 10_000)));
        q.fetch_all(&self.pool, iccid_and_upp).await
    }

    /// Up to `limit` `(iccid, upp)` of profiles whose stored package is in the clear (first
    /// byte `A0`, a ProfileHeader; sealed blobs start `01`), filtered in SQL so that a start
    /// does not read every stored package.
    pub async fn plaintext_upps(&self, limit: u32) -> Result<Vec<(String, Vec<u8>)>> {
        let first_byte_is_a0 = match self.backend {
            super::Backend::Sqlite => "substr(upp, 1, 1) = X'A0'",
            super::Backend::Postgres => "get_byte(upp, 0) = 160",
        };
        let mut q = Sql::new("SELECT iccid, upp FROM profiles WHERE upp IS NOT NULL AND ");
        q.push(first_byte_is_a0)
            .push(" ORDER BY iccid LIMIT ")
            .bind(i64::from(limit.clamp(1, 10_000)));
        q.fetch_all(&self.pool, iccid_and_upp).await
    }

    /// Replaces a stored UPP if it is still `old` (compare-and-set); whether it was replaced.
    /// The profile's version is not bumped: the package's content is unchanged, only its
    /// protection at rest.
    pub async fn replace_stored_upp(&self, iccid: &str, old: &[u8], new: &[u8]) -> Result<bool> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q = Sql::new("UPDATE profiles SET upp = ");
            q.bind(new.to_vec())
                .push(" WHERE iccid = ")
                .bind(iccid.to_owned())
                .push(" AND upp = ")
                .bind(old.to_vec());
            Ok(q.build()?.execute(turn.conn()).await?.rows_affected() == 1)
        }
        .await;
        turn.finish(result).await
    }

    // ---------------------------------------------------------------- import

    /// Starts an import transaction (see [`ImportTx`]). On SQLite it holds this process's
    /// write turn and the database write lock until committed or dropped.
    pub async fn begin_import(&self) -> Result<ImportTx> {
        let (tx, turn) = match &self.writer {
            // The writer connection, with no batch open: the import is a transaction of
            // its own, committed when the caller says so.
            Some(w) => {
                let turn = w.exclusive().await?;
                (w.pool().begin_with("BEGIN IMMEDIATE").await?, Some(turn))
            }
            None => (self.pool.begin().await?, None),
        };
        Ok(ImportTx {
            tx,
            backend: self.backend,
            _turn: turn,
        })
    }
}

impl ImportTx {
    /// Classifies and inserts `rows` (see [`ImportOutcome`]); the outcome of row `i` is
    /// element `i`. Rows repeating an ICCID or IMSI of an earlier row of the same call are
    /// duplicates. Nothing is visible to others before [`ImportTx::commit`].
    pub async fn insert_batch(&mut self, rows: &[ImportRow]) -> Result<Vec<ImportOutcome>> {
        self.insert_batch_checked(rows, |_, _| true).await
    }

    /// [`ImportTx::insert_batch`], where a row that would be `AlreadyPresent` is so only if
    /// `same_secrets(row, stored sealed record)` holds, and `ChangedSecrets` otherwise.
    pub async fn insert_batch_checked(
        &mut self,
        rows: &[ImportRow],
        same_secrets: impl Fn(&ImportRow, &[u8]) -> bool,
    ) -> Result<Vec<ImportOutcome>> {
        let mut outcomes = Vec::with_capacity(rows.len());
        // Fix: the ICCIDs inserted by earlier chunks of this call. A later chunk reads them
        // back from the database like any stored row, so an exact repeat of a row of an
        // earlier chunk was classified AlreadyPresent (its own secrets silently dropped)
        // instead of DuplicateIccid as within one chunk.
        let mut earlier = std::collections::HashSet::new();
        for chunk in rows.chunks(IMPORT_CHUNK) {
            outcomes.extend(
                self.insert_chunk(chunk, &mut earlier, &same_secrets)
                    .await?,
            );
        }
        Ok(outcomes)
    }

    async fn insert_chunk(
        &mut self,
        rows: &[ImportRow],
        earlier: &mut std::collections::HashSet<String>,
        same_secrets: &impl Fn(&ImportRow, &[u8]) -> bool,
    ) -> Result<Vec<ImportOutcome>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut iccids = Vec::with_capacity(rows.len());
        for r in rows {
            iccids.push(normalize_iccid(&r.secrets.iccid)?);
        }
        // Existing profiles with these ICCIDs: (type, operator, imported IMSI).
        let mut q = Sql::new(
            "SELECT p.iccid AS iccid, p.profile_type AS profile_type, p.operator_id AS operator_id, \
             s.imsi AS imsi, s.sealed AS sealed FROM profiles p \
             LEFT JOIN profile_secrets s ON s.iccid = p.iccid WHERE p.iccid IN ",
        );
        push_in_list(&mut q, iccids.iter().cloned());
        type Existing = (Option<String>, Option<String>, Option<String>);
        let mut stored_sealed: HashMap<String, Vec<u8>> = HashMap::new();
        let mut by_iccid: HashMap<String, Existing> = HashMap::new();
        for r in q.build()?.fetch_all(&mut *self.tx).await? {
            if let Some(sealed) = r.try_get::<Option<Vec<u8>>, _>("sealed")? {
                stored_sealed.insert(r.try_get("iccid")?, sealed);
            }
            by_iccid.insert(
                r.try_get("iccid")?,
                (
                    r.try_get("profile_type")?,
                    r.try_get("operator_id")?,
                    r.try_get("imsi")?,
                ),
            );
        }
        // Existing IMSIs: which ICCID holds each.
        let mut q = Sql::new("SELECT imsi, iccid FROM profile_secrets WHERE imsi IN ");
        push_in_list(&mut q, rows.iter().map(|r| r.secrets.imsi.clone()));
        let mut by_imsi: HashMap<String, String> = HashMap::new();
        for r in q.build()?.fetch_all(&mut *self.tx).await? {
            by_imsi.insert(r.try_get("imsi")?, r.try_get("iccid")?);
        }

        let mut outcomes = Vec::with_capacity(rows.len());
        let mut insert = Vec::with_capacity(rows.len());
        for (r, iccid) in rows.iter().zip(&iccids) {
            let outcome = if earlier.contains(iccid) {
                ImportOutcome::DuplicateIccid
            } else if let Some((t, o, imsi)) = by_iccid.get(iccid) {
                if t.as_deref() == Some(r.profile_type.as_str())
                    && o == &r.operator_id
                    && imsi.as_deref() == Some(r.secrets.imsi.as_str())
                {
                    match stored_sealed.get(iccid) {
                        Some(stored) if !same_secrets(r, stored) => ImportOutcome::ChangedSecrets,
                        _ => ImportOutcome::AlreadyPresent,
                    }
                } else {
                    ImportOutcome::DuplicateIccid
                }
            } else if by_imsi.contains_key(&r.secrets.imsi) {
                ImportOutcome::DuplicateImsi
            } else {
                // Claim both keys so a later row of this chunk is a duplicate.
                by_iccid.insert(
                    iccid.clone(),
                    (None, None, Some(format!("\u{0}{}", r.secrets.imsi))),
                );
                by_imsi.insert(r.secrets.imsi.clone(), iccid.clone());
                earlier.insert(iccid.clone());
                insert.push((r, iccid));
                ImportOutcome::Inserted
            };
            outcomes.push(outcome);
        }
        if insert.is_empty() {
            return Ok(outcomes);
        }

        let now = now_ms();
        let mut q = Sql::new(
            "INSERT INTO profiles (iccid, operator_id, profile_type, state, cc_attempt_limit, \
             download_attempt_limit, created_at, updated_at) VALUES ",
        );
        for (i, (r, iccid)) in insert.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.bind((*iccid).clone())
                .push(", ")
                .bind(r.operator_id.clone())
                .push(", ")
                .bind(r.profile_type.clone())
                .push(", ")
                .bind(ProfileState::Available.as_str())
                .push(", ")
                .bind(r.cc_attempt_limit)
                .push(", ")
                .bind(r.download_attempt_limit)
                .push(", ")
                .bind(now)
                .push(", ")
                .bind(now)
                .push(")");
        }
        q.build()?.execute(&mut *self.tx).await?;

        let mut q = Sql::new("INSERT INTO profile_secrets (iccid, imsi, dek_id, sealed) VALUES ");
        for (i, (r, iccid)) in insert.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.bind((*iccid).clone())
                .push(", ")
                .bind(r.secrets.imsi.clone())
                .push(", ")
                .bind(r.secrets.dek_id)
                .push(", ")
                .bind(r.secrets.sealed.clone())
                .push(")");
        }
        q.build()?.execute(&mut *self.tx).await?;

        // The creation event of each profile (from_state NULL), like `insert_profile`.
        let mut q = Sql::new(
            "INSERT INTO profile_events (iccid, at, from_state, to_state, cause, detail, actor) \
             VALUES ",
        );
        for (i, (_, iccid)) in insert.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.bind((*iccid).clone())
                .push(", ")
                .bind(now)
                .push(", NULL, ")
                .bind(ProfileState::Available.as_str())
                .push(", 'imported', NULL, 'import')");
        }
        q.build()?.execute(&mut *self.tx).await?;

        // The `created` signal for the operator's webhooks (see the `operator` module), only
        // looked up when there is a webhook at all.
        let hooks = Sql::new("SELECT id FROM webhooks LIMIT 1");
        if hooks
            .build()?
            .fetch_optional(&mut *self.tx)
            .await?
            .is_some()
        {
            for (_, iccid) in &insert {
                let mut q =
                    Sql::new("SELECT id FROM profile_events WHERE from_state IS NULL AND iccid = ");
                q.bind((*iccid).clone()).push(" ORDER BY id DESC LIMIT 1");
                let row = q.build()?.fetch_one(&mut *self.tx).await?;
                let event_id: i64 = row.try_get("id")?;
                let rows = super::operator::signal_rows(
                    &mut self.tx,
                    event_id,
                    iccid,
                    super::operator::Signal::Created,
                    Some("imported".into()),
                    now,
                )
                .await?;
                super::outbox::insert_rows(&mut self.tx, &rows, now).await?;
            }
        }
        Ok(outcomes)
    }

    /// [`Store::transition`] of a profile inside this transaction (e.g. a profile generated
    /// for an order, reserved before anyone else can see it as Available).
    pub async fn transition(
        &mut self,
        iccid: &str,
        expect: &crate::Expect,
        update: &crate::ProfileUpdate,
        event: &crate::EventRecord,
    ) -> Result<crate::Profile> {
        super::transition_tx(self.backend, &mut self.tx, iccid, expect, update, event).await
    }

    /// Appends `entry` to the audit trail inside this transaction (one record per import
    /// run: the profiles it creates have no record of their own).
    pub async fn audit(&mut self, entry: &crate::AuditEntry) -> Result<crate::AuditRecord> {
        super::audit::append_tx(&mut self.tx, entry).await
    }

    /// Makes every batch inserted so far visible, atomically.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Discards every batch inserted so far.
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}
