//! SGP.22 RSP message types with strict, total DER encoding and decoding.
//!
//! Layers:
//! - [`tlv`]: DER tag-length-value reading and writing (strict, bounded, panic-free).
//! - [`prim`]: primitive values (INTEGER, BOOLEAN, OCTET STRING, OID, BIT STRING, ...).
//! - [`error`]: the [`DecodeError`] every decoder returns.
//! - [`bpp`]: the Bound Profile Package and the ES8+ commands inside it.

pub mod bpp;
pub mod error;
pub mod prim;
pub mod tlv;

pub use error::DecodeError;
pub use tlv::{Reader, Tag, Tlv};
