//! This crate's own tables (migration `0002_service.sql` of smdpp-store): profile display
//! metadata and the BPP cache.
//!
//! A thin handle over the [`Store`], whose repository methods reach these tables on the
//! store's own connection pool (one pool per process: on SQLite the writes of both queue on
//! the store's in-process write lock instead of competing for the file lock).

pub use smdpp_store::{CachedBpp, ProfileMetadata};
use smdpp_store::{EpochMillis, Store, StoreError};

/// Handle to the service tables.
#[derive(Clone)]
pub struct Sidecar {
    store: Store,
}

impl std::fmt::Debug for Sidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sidecar").finish_non_exhaustive()
    }
}

impl Sidecar {
    /// The service tables of `store` (connected, so migrations ran).
    pub fn new(store: Store) -> Sidecar {
        Sidecar { store }
    }

    /// Connects a store of its own to `url` (runs pending migrations); prefer
    /// [`Sidecar::new`] over the store already open. The URL is never echoed in errors.
    pub async fn connect(url: &str) -> Result<Sidecar, StoreError> {
        Ok(Sidecar::new(Store::connect(url).await?))
    }

    /// Closes the underlying store's pool.
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// Inserts or replaces the metadata of a profile.
    pub async fn put_metadata(&self, iccid: &str, m: &ProfileMetadata) -> Result<(), StoreError> {
        self.store.put_profile_metadata(iccid, m).await
    }

    /// The metadata of a profile, if stored.
    pub async fn get_metadata(&self, iccid: &str) -> Result<Option<ProfileMetadata>, StoreError> {
        self.store.get_profile_metadata(iccid).await
    }

    /// Stores (replacing) the BPP built for a profile.
    pub async fn put_bpp(
        &self,
        iccid: &str,
        bpp: &CachedBpp,
        now: EpochMillis,
    ) -> Result<(), StoreError> {
        self.store.put_cached_bpp(iccid, bpp, now).await
    }

    /// The cached BPP of a profile.
    pub async fn get_bpp(&self, iccid: &str) -> Result<Option<CachedBpp>, StoreError> {
        self.store.get_cached_bpp(iccid).await
    }

    /// Drops the cached BPP of a profile (after installation or termination).
    pub async fn delete_bpp(&self, iccid: &str) -> Result<(), StoreError> {
        self.store.delete_cached_bpp(iccid).await.map(|_| ())
    }
}
