//! [`VaultError`]: every way sealing, opening and key handling can fail.

use std::path::PathBuf;

/// Why a vault operation failed. Messages never contain key bytes or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The blob is shorter than its fixed parts (header, nonce, tag).
    #[error("sealed blob truncated: {len} bytes, at least {min} needed")]
    Truncated {
        /// Length of the blob given.
        len: usize,
        /// Minimum length of a blob of this version.
        min: usize,
    },
    /// The blob's format version is not one this build reads.
    #[error("sealed blob format version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u8),
    /// The blob was sealed under a DEK this vault does not hold.
    #[error("sealed blob uses data-encryption key {0}, which this vault does not hold")]
    UnknownDek(u32),
    /// GCM authentication failed: wrong additional data (another row or column), a
    /// tampered blob, or a wrong key.
    #[error("sealed blob failed authentication (wrong record, tampered data or wrong key)")]
    Decrypt,
    /// A wrapped DEK names another KEK than the one given.
    #[error("data-encryption key {dek_id} is wrapped under KEK {record}, not under KEK {kek}")]
    KekMismatch {
        /// The DEK.
        dek_id: u32,
        /// KEK id in the record.
        record: String,
        /// Id of the KEK given.
        kek: String,
    },
    /// A wrapped DEK failed authentication under the KEK (wrong KEK or tampered record).
    #[error("data-encryption key {dek_id} could not be unwrapped with KEK {kek}")]
    Unwrap {
        /// The DEK.
        dek_id: u32,
        /// The KEK id.
        kek: String,
    },
    /// Two records for one DEK id disagree, or records are missing.
    #[error("wrapped data-encryption key records: {0}")]
    Records(String),
    /// The active DEK cannot be retired.
    #[error("data-encryption key {0} is the active one and cannot be retired")]
    RetireActive(u32),
    /// A key file is readable or writable by group or others.
    #[error(
        "key file {path}: mode {mode:04o} gives group/other access; it must be 0600 or stricter (chmod 600)"
    )]
    InsecureKeyFile {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file does not hold a 32-byte key (raw, or 64 hex digits).
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the content).
        reason: String,
    },
    /// Reading or writing a key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The crypto backend failed (random generator, key setup).
    #[error("crypto backend failure: {0}")]
    Crypto(&'static str),
}
