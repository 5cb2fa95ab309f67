//! RSP cryptography for an SGP.22 SM-DP+ (and the eUICC side, for tests and simulation).
//!
//! - [`curve`]: the two SGP.22 curves, NIST P-256 and brainpoolP256r1.
//! - [`ecdsa`]: ECDSA-SHA256 verification, TR-03111 `r || s` and X9.62 DER signatures.
//! - [`keys`]: [`KeyCustody`] and the in-memory [`SoftwareKey`].
//! - [`otk`]: one-time key pairs for ECKA.
//! - [`kdf`]: X9.63 KDF and the SGP.22 Annex G session key derivation.
//! - [`scp03t`]: SCP03t segment protection and verification.
//! - [`bpp`]: Bound Profile Package building (SM-DP+) and opening (eUICC).
//! - [`bench`](mod@bench): the per-download crypto cost floor.
//!
//! P-256 runs on aws-lc-rs; brainpoolP256r1 on the pure-Rust `bp256` crate.

pub mod bench;
pub mod bpp;
pub mod curve;
pub mod ecdsa;
pub mod error;
pub mod kdf;
pub mod keys;
pub mod otk;
mod pem;
pub mod scp03t;

pub use curve::Curve;
pub use error::CryptoError;
pub use keys::{KeyCustody, SharedSecret, SoftwareKey};
