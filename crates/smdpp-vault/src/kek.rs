//! Data-encryption keys ([`Dek`]), the key-encryption key abstraction ([`Kek`]), wrapped DEK
//! records ([`WrappedDek`]) and the key-file KEK ([`FileKek`]).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::VaultError;
use crate::envelope::{NONCE_LEN, TAG_LEN};

/// Length of a DEK and of a [`FileKek`] key.
pub const KEY_LEN: usize = 32;

/// Domain-separation label of the DEK wrapping AAD.
const WRAP_LABEL: &[u8] = b"smdpp-vault/dek/v1";
/// Domain-separation label of the key-file KEK id.
const KEK_ID_LABEL: &[u8] = b"smdpp-vault/kek-id/v1";

/// A data-encryption key: 32 bytes, zeroized on drop, never printed.
#[derive(Clone)]
pub struct Dek(Zeroizing<[u8; KEY_LEN]>);

impl Dek {
    /// A fresh random DEK.
    pub fn generate() -> Result<Self, VaultError> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        aws_lc_rs::rand::fill(k.as_mut_slice())
            .map_err(|_| VaultError::Crypto("random generator failed"))?;
        Ok(Dek(k))
    }

    /// A DEK from its bytes (what a [`Kek`] returns when unwrapping).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Dek(Zeroizing::new(bytes))
    }

    /// The key bytes. Only [`Kek`] implementations and the vault use them.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for Dek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dek(<redacted>)")
    }
}

/// A DEK wrapped under a KEK: what the store persists (one row per `dek_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedDek {
    /// The DEK's id, as written in every blob it seals.
    pub dek_id: u32,
    /// The id of the KEK that wrapped it ([`Kek::id`]).
    pub kek_id: String,
    /// The wrapped key, in the KEK's own format.
    pub wrapped: Vec<u8>,
}

/// A key-encryption key: wraps and unwraps DEKs. Implemented by [`FileKek`] now and by an
/// HSM-backed key later; the vault only ever sees wrapped DEKs and this trait.
pub trait Kek: Send + Sync {
    /// A stable identifier of this key (recorded with every DEK it wraps). It must not
    /// reveal the key.
    fn id(&self) -> &str;

    /// Wraps `dek` (whose id is `dek_id`, to be bound into the wrapping).
    fn wrap(&self, dek_id: u32, dek: &Dek) -> Result<Vec<u8>, VaultError>;

    /// Unwraps what [`Kek::wrap`] returned for `dek_id`; fails with
    /// [`VaultError::Unwrap`] on a wrong key or tampered input.
    fn unwrap(&self, dek_id: u32, wrapped: &[u8]) -> Result<Dek, VaultError>;
}

/// A KEK held in a file: 32 bytes, raw or as 64 hex digits (surrounding whitespace
/// allowed). The file must not be accessible to group or others (mode 0600 or stricter);
/// [`FileKek::create`] makes one that way.
///
/// The id is `file:` followed by 16 hex digits of SHA-256 over a fixed label and the key,
/// so the same key file always has the same id and the id does not reveal the key.
pub struct FileKek {
    key: LessSafeKey,
    id: String,
}

impl FileKek {
    /// Creates a new random key at `path` (64 hex digits and a newline), mode 0600. Refuses
    /// to overwrite an existing file.
    pub fn create(path: &Path) -> Result<Self, VaultError> {
        let key = Dek::generate()?;
        // Sized up front: a growing buffer would leave an unwiped copy of the key behind.
        let mut text = Zeroizing::new(String::with_capacity(2 * KEY_LEN + 1));
        text.push_str(&Zeroizing::new(hex::encode(key.expose())));
        text.push('\n');
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let io = |source| VaultError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut f = opts.open(path).map_err(io)?;
        if let Err(e) = f.write_all(text.as_bytes()).and_then(|()| f.sync_all()) {
            // Do not leave a partial key file behind (best effort; the write error wins).
            let _ = std::fs::remove_file(path);
            return Err(io(e));
        }
        // The directory entry too: a crash right after the first start must not lose the
        // key while the database already holds data-encryption keys wrapped under it.
        #[cfg(unix)]
        if let Some(dir) = path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Self::from_key(key.expose())
    }

    /// Loads the key at `path`, refusing a file that group or others can access.
    pub fn load(path: &Path) -> Result<Self, VaultError> {
        let io = |source| VaultError::Io {
            path: path.to_path_buf(),
            source,
        };
        let f = std::fs::File::open(path).map_err(io)?;
        // Checked on the open handle, so the file checked is the file read.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = f.metadata().map_err(io)?.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(VaultError::InsecureKeyFile {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let mut buf = Zeroizing::new(Vec::with_capacity(80));
        // A key file is at most 64 hex digits plus whitespace; read a little more to detect
        // oversized files without reading a huge one.
        f.take(4096).read_to_end(&mut buf).map_err(io)?;
        let key = parse_key(&buf).map_err(|reason| VaultError::KeyFile {
            path: PathBuf::from(path),
            reason: reason.to_owned(),
        })?;
        Self::from_key(&key)
    }

    /// A KEK from key bytes held elsewhere (tests, keys derived by the caller).
    pub fn from_key(key: &[u8; KEY_LEN]) -> Result<Self, VaultError> {
        let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        h.update(KEK_ID_LABEL);
        h.update(key);
        let digest = h.finish();
        let id = format!(
            "file:{}",
            hex::encode(digest.as_ref().get(..8).unwrap_or_default())
        );
        let unbound = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| VaultError::Crypto("AES-256-GCM key setup failed"))?;
        Ok(FileKek {
            key: LessSafeKey::new(unbound),
            id,
        })
    }

    fn aad(&self, dek_id: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(WRAP_LABEL.len() + 4 + self.id.len());
        aad.extend_from_slice(WRAP_LABEL);
        aad.extend_from_slice(&dek_id.to_be_bytes());
        aad.extend_from_slice(self.id.as_bytes());
        aad
    }
}

/// A 32-byte key from a key file's content: exactly 32 raw bytes, or 64 hex digits with
/// optional surrounding whitespace.
fn parse_key(buf: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, &'static str> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if buf.len() == KEY_LEN {
        key.copy_from_slice(buf);
        return Ok(key);
    }
    let text = buf.trim_ascii();
    if text.len() != 2 * KEY_LEN {
        return Err("expected 32 raw bytes or 64 hex digits");
    }
    hex::decode_to_slice(text, key.as_mut_slice())
        .map_err(|_| "expected 32 raw bytes or 64 hex digits (found a non-hex character)")?;
    Ok(key)
}

impl Kek for FileKek {
    fn id(&self) -> &str {
        &self.id
    }

    fn wrap(&self, dek_id: u32, dek: &Dek) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce)
            .map_err(|_| VaultError::Crypto("random generator failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + KEY_LEN + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(dek.expose());
        let mut body = out.split_off(NONCE_LEN);
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.aad(dek_id)),
                &mut body,
            )
            .map_err(|_| VaultError::Crypto("AES-256-GCM seal failed"))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn unwrap(&self, dek_id: u32, wrapped: &[u8]) -> Result<Dek, VaultError> {
        let fail = || VaultError::Unwrap {
            dek_id,
            kek: self.id.clone(),
        };
        if wrapped.len() != NONCE_LEN + KEY_LEN + TAG_LEN {
            return Err(fail());
        }
        let (nonce, body) = wrapped.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut body = Zeroizing::new(body.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(self.aad(dek_id)), body.as_mut_slice())
            .map_err(|_| fail())?;
        if plain.len() != KEY_LEN {
            return Err(fail());
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(plain);
        Ok(Dek(key))
    }
}

impl std::fmt::Debug for FileKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
