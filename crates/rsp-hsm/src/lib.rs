//! PKCS#11 key custody for the SM-DP+: the long-term keys live on an HSM token and are
//! used through it, never read out.
//!
//! - [`Token`]: one PKCS#11 token (module + token label), logged in once with the user PIN,
//!   with a pool of sessions checked out per operation (a `cryptoki::session::Session` is
//!   `Send` but not `Sync`). The module is initialised once per process and per path.
//! - [`HsmKey`]: an EC key pair on the token (P-256 or brainpoolP256r1) implementing
//!   [`rsp_crypto::KeyCustody`]: `CKM_ECDSA` over a SHA-256 digest computed here (the token
//!   returns the TR-03111 `r || s` form SGP.22 uses) and `CKM_ECDH1_DERIVE` with `CKD_NULL`
//!   into an ephemeral, extractable session object holding the shared secret `ShS`.
//! - [`HsmKek`]: an AES-256 key on the token implementing [`smdpp_vault::Kek`]: DEKs are
//!   sealed with `CKM_AES_GCM` on the token; the KEK has `CKA_EXTRACTABLE=false`.
//! - [`admin`]: import a PEM private key, generate EC or AES keys, list the objects
//!   (labels, kinds, curves and public-key fingerprints; never a private value).
//!
//! Private keys imported or generated here are token objects with `CKA_SENSITIVE=true` and
//! `CKA_EXTRACTABLE=false`. No `Debug` output of this crate contains a PIN or a key.

pub mod admin;
mod error;
mod kek;
mod key;
pub mod softhsm;
mod token;

pub use error::HsmError;
pub use kek::HsmKek;
pub use key::HsmKey;
pub use token::{PIN_ENV, Token, TokenConfig};

/// The Debian/Ubuntu path of the SoftHSM2 module (tests and documentation).
pub const SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
