//! Secrets at rest for the SM-DP+: Ki, OPc, PINs/PUKs, ADM keys and any key inside a stored
//! UPP are sealed with AES-256-GCM before they reach the database, so the database file
//! alone reveals none of them.
//!
//! # Key hierarchy
//!
//! - A **data-encryption key** ([`Dek`], 32 random bytes) encrypts the secrets. DEKs are
//!   numbered (`dek_id`, a `u32` starting at 1); the one with the highest id is *active*
//!   and seals new data, the older ones are kept to open what they sealed.
//! - A **key-encryption key** ([`Kek`]) wraps every DEK. Only wrapped DEKs
//!   ([`WrappedDek`]) are persisted (by `smdpp-store`). The KEK lives outside the database:
//!   a key file now ([`FileKek`]), an HSM later (another [`Kek`] implementation).
//!
//! # Formats
//!
//! A sealed value ([`SealedBlob`]) is, byte for byte:
//!
//! ```text
//! version (1 byte, 0x01) || dek_id (4 bytes, big-endian) || nonce (12 random bytes)
//!   || ciphertext || GCM tag (16 bytes)
//! ```
//!
//! The GCM additional data is `version || dek_id || aad`, where `aad` names the record
//! the value belongs to (use [`record_aad`], e.g. table + ICCID + column), so a blob copied
//! to another row or column no longer opens.
//!
//! A [`FileKek`] wraps a DEK as `nonce (12) || AES-256-GCM(KEK, DEK) (32) || tag (16)` with
//! the additional data `"smdpp-vault/dek/v1" || dek_id (4 bytes BE) || kek_id`.
//!
//! # Rotation without downtime (`smdpp keys rotate`)
//!
//! - New DEK: [`Vault::rotate_dek`] creates and activates it and returns the record to
//!   persist; old DEKs stay readable. [`Vault::reseal`] moves a blob to the active DEK (a
//!   background job can walk the rows, using [`Vault::needs_reseal`] to skip done ones);
//!   when no blob uses an old DEK any more, [`Vault::retire_dek`] forgets it. Other nodes
//!   that meet an unknown `dek_id` ([`VaultError::UnknownDek`]) reload the records and call
//!   [`Vault::refresh`].
//! - New KEK: [`Vault::rewrap`] wraps every DEK under the new KEK and returns the records to
//!   persist; no sealed data changes.
//!
//! Random 96-bit nonces keep AES-GCM safe for about 2^32 seals per DEK; rotate the DEK
//! long before that (a million-profile import with ten secrets each is 2^23.3 seals).
//!
//! Key bytes are zeroized on drop, and no `Debug` output of this crate contains them.

mod envelope;
mod error;
mod kek;
mod vault;

pub use envelope::{HEADER_LEN, MIN_BLOB_LEN, NONCE_LEN, SealedBlob, TAG_LEN, VERSION, record_aad};
pub use error::VaultError;
pub use kek::{Dek, FileKek, Kek, WrappedDek};
pub use vault::Vault;
