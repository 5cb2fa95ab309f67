//! This crate's own tables (migration `0002_service.sql` of smdpp-store): profile display
//! metadata and the BPP cache.
//!
//! The store runs the migration; this module reaches the tables through its own small
//! connection pool on the same database URL, because the store's repository API does not
//! cover them. Only runtime queries with numbered placeholders, which SQLite and PostgreSQL
//! both accept through the sqlx `Any` driver.

use std::time::Duration;

use smdpp_store::{EpochMillis, StoreError, normalize_iccid};
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, Pool, Row};

/// Display metadata of a profile (the variable part of StoreMetadataRequest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileMetadata {
    /// serviceProviderName (at most 32 bytes).
    pub service_provider_name: String,
    /// profileName (at most 64 bytes).
    pub profile_name: String,
    /// profileClass (0 test, 1 provisioning, 2 operational), absent when `None`.
    pub profile_class: Option<i64>,
}

/// A cached BPP (SGP.22 section 3.1.3.2: re-used when the eUICC presents the same otPK).
#[derive(Clone, PartialEq, Eq)]
pub struct CachedBpp {
    /// The EID the BPP is bound to.
    pub eid: String,
    /// otPK.EUICC.ECKA it is bound to.
    pub euicc_otpk: Vec<u8>,
    /// The transactionId its InitialiseSecureChannel carries (hex).
    pub transaction_id: String,
    /// The BoundProfilePackage DER.
    pub bpp: Vec<u8>,
}

impl std::fmt::Debug for CachedBpp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedBpp")
            .field("transaction_id", &self.transaction_id)
            .field("bpp_len", &self.bpp.len())
            .finish_non_exhaustive()
    }
}

/// Handle to the service tables.
#[derive(Clone)]
pub struct Sidecar {
    pool: Pool<Any>,
}

impl std::fmt::Debug for Sidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sidecar").finish_non_exhaustive()
    }
}

fn db(e: sqlx::Error) -> StoreError {
    StoreError::Database(match e {
        sqlx::Error::Database(d) => d.message().to_owned(),
        other => other.to_string(),
    })
}

impl Sidecar {
    /// Connects to the database the store uses (the store must have been connected first, so
    /// that migrations ran). The URL is never echoed in errors.
    pub async fn connect(url: &str) -> Result<Sidecar, StoreError> {
        sqlx::any::install_default_drivers();
        let mut opts = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30));
        let url = if url.starts_with("sqlite:") {
            opts = opts.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA busy_timeout = 10000")
                        .fetch_all(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
            if url.contains("mode=") {
                url.to_owned()
            } else if url.contains('?') {
                format!("{url}&mode=rw")
            } else {
                format!("{url}?mode=rw")
            }
        } else {
            url.to_owned()
        };
        let pool = opts
            .connect(&url)
            .await
            .map_err(|_| StoreError::Database("cannot connect (service tables)".into()))?;
        Ok(Sidecar { pool })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Inserts or replaces the metadata of a profile.
    pub async fn put_metadata(&self, iccid: &str, m: &ProfileMetadata) -> Result<(), StoreError> {
        let iccid = normalize_iccid(iccid)?;
        sqlx::query("DELETE FROM service_profile_metadata WHERE iccid = $1")
            .bind(iccid.clone())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO service_profile_metadata (iccid, service_provider_name, profile_name, \
             profile_class) VALUES ($1, $2, $3, $4)",
        )
        .bind(iccid)
        .bind(m.service_provider_name.clone())
        .bind(m.profile_name.clone())
        .bind(m.profile_class)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// The metadata of a profile, if stored.
    pub async fn get_metadata(&self, iccid: &str) -> Result<Option<ProfileMetadata>, StoreError> {
        let iccid = normalize_iccid(iccid)?;
        let row = sqlx::query(
            "SELECT service_provider_name, profile_name, profile_class \
             FROM service_profile_metadata WHERE iccid = $1",
        )
        .bind(iccid)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|r| {
            Ok(ProfileMetadata {
                service_provider_name: r.try_get(0).map_err(db)?,
                profile_name: r.try_get(1).map_err(db)?,
                profile_class: r.try_get(2).map_err(db)?,
            })
        })
        .transpose()
    }

    /// Stores (replacing) the BPP built for a profile.
    pub async fn put_bpp(
        &self,
        iccid: &str,
        bpp: &CachedBpp,
        now: EpochMillis,
    ) -> Result<(), StoreError> {
        let iccid = normalize_iccid(iccid)?;
        self.delete_bpp(&iccid).await?;
        sqlx::query(
            "INSERT INTO service_bpp_cache (iccid, eid, euicc_otpk, transaction_id, bpp, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(iccid)
        .bind(bpp.eid.clone())
        .bind(bpp.euicc_otpk.clone())
        .bind(bpp.transaction_id.clone())
        .bind(bpp.bpp.clone())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// The cached BPP of a profile.
    pub async fn get_bpp(&self, iccid: &str) -> Result<Option<CachedBpp>, StoreError> {
        let iccid = normalize_iccid(iccid)?;
        let row = sqlx::query(
            "SELECT eid, euicc_otpk, transaction_id, bpp FROM service_bpp_cache WHERE iccid = $1",
        )
        .bind(iccid)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|r| {
            Ok(CachedBpp {
                eid: r.try_get(0).map_err(db)?,
                euicc_otpk: r.try_get(1).map_err(db)?,
                transaction_id: r.try_get(2).map_err(db)?,
                bpp: r.try_get(3).map_err(db)?,
            })
        })
        .transpose()
    }

    /// Drops the cached BPP of a profile (after installation or termination).
    pub async fn delete_bpp(&self, iccid: &str) -> Result<(), StoreError> {
        let iccid = normalize_iccid(iccid)?;
        sqlx::query("DELETE FROM service_bpp_cache WHERE iccid = $1")
            .bind(iccid)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}
