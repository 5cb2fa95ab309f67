//! The sealed-value envelope ([`SealedBlob`]) and the record AAD ([`record_aad`]).

use crate::VaultError;

/// Format version written by this build.
pub const VERSION: u8 = 1;
/// Length of the GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Length of the GCM tag.
pub const TAG_LEN: usize = 16;
/// Length of the header bound into the AAD: version byte and `dek_id`.
pub const HEADER_LEN: usize = 1 + 4;
/// Length of a blob sealing an empty plaintext.
pub const MIN_BLOB_LEN: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// A sealed value: `version || dek_id (u32 BE) || nonce (12) || ciphertext || tag (16)`.
///
/// A `SealedBlob` is always well-formed (version 1, long enough); whether it opens is
/// decided by [`crate::Vault::open`]. `Debug` shows the version, key id and length only.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedBlob {
    bytes: Vec<u8>,
}

impl SealedBlob {
    /// Checks the framing of stored bytes (version and minimum length).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, VaultError> {
        let version = *bytes.first().ok_or(VaultError::Truncated {
            len: 0,
            min: MIN_BLOB_LEN,
        })?;
        if version != VERSION {
            return Err(VaultError::UnsupportedVersion(version));
        }
        if bytes.len() < MIN_BLOB_LEN {
            return Err(VaultError::Truncated {
                len: bytes.len(),
                min: MIN_BLOB_LEN,
            });
        }
        Ok(SealedBlob { bytes })
    }

    /// Like [`SealedBlob::from_bytes`], copying the slice.
    pub fn parse(bytes: &[u8]) -> Result<Self, VaultError> {
        Self::from_bytes(bytes.to_vec())
    }

    /// Assembles a blob from its parts (the vault's sealing path).
    pub(crate) fn assemble(dek_id: u32, nonce: &[u8; NONCE_LEN], ct_and_tag: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ct_and_tag.len());
        bytes.push(VERSION);
        bytes.extend_from_slice(&dek_id.to_be_bytes());
        bytes.extend_from_slice(nonce);
        bytes.extend_from_slice(ct_and_tag);
        SealedBlob { bytes }
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes to store, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The format version (always [`VERSION`]).
    pub fn version(&self) -> u8 {
        self.bytes.first().copied().unwrap_or_default()
    }

    /// The id of the DEK that sealed this blob.
    pub fn dek_id(&self) -> u32 {
        let mut id = [0u8; 4];
        if let Some(b) = self.bytes.get(1..HEADER_LEN) {
            id.copy_from_slice(b);
        }
        u32::from_be_bytes(id)
    }

    /// The header (`version || dek_id`), bound into the GCM additional data.
    pub(crate) fn header(&self) -> &[u8] {
        self.bytes.get(..HEADER_LEN).unwrap_or_default()
    }

    /// The nonce.
    pub(crate) fn nonce(&self) -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        if let Some(b) = self.bytes.get(HEADER_LEN..HEADER_LEN + NONCE_LEN) {
            n.copy_from_slice(b);
        }
        n
    }

    /// Ciphertext followed by the tag.
    pub(crate) fn ct_and_tag(&self) -> &[u8] {
        self.bytes.get(HEADER_LEN + NONCE_LEN..).unwrap_or_default()
    }
}

impl std::fmt::Debug for SealedBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SealedBlob(v{}, dek {}, {} bytes)",
            self.version(),
            self.dek_id(),
            self.bytes.len()
        )
    }
}

/// Additional data naming one stored value: `table`, the row's key (e.g. the ICCID) and
/// `column`, each preceded by its length (u32 BE) so that no two different triples give
/// the same bytes.
///
/// ```
/// let a = smdpp_vault::record_aad("profiles", "8949000000000000018", "ki");
/// assert_ne!(a, smdpp_vault::record_aad("profiles", "8949000000000000018", "opc"));
/// ```
pub fn record_aad(table: &str, row_key: &str, column: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + table.len() + row_key.len() + column.len());
    for part in [table, row_key, column] {
        // A part longer than u32::MAX bytes cannot occur for table/ICCID/column names;
        // saturating keeps the function total.
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}
