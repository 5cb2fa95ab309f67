//! SGP.22 RSP message types with strict, total DER encoding and decoding.
//!
//! Layers:
//! - [`tlv`]: DER tag-length-value reading and writing (strict, bounded, panic-free).
//! - [`prim`]: primitive values (INTEGER, BOOLEAN, OCTET STRING, OID, BIT STRING, ...).
//! - [`error`]: the [`DecodeError`] every decoder returns.
//! - [`codec`]: the [`Codec`] trait (`decode(&[u8])` / `encode()`), signed parts kept with
//!   their received bytes ([`Signed`]), raw certificates, named-bit strings, extensions.
//! - [`common`]: basic types (TransactionId, Iccid, Eid, VersionType, ...).
//! - [`euicc_info`]: EUICCInfo1/2, DeviceInfo.
//! - [`auth`]: ES9+/ES10b common mutual authentication messages.
//! - [`download`]: PrepareDownload, ProfileInstallationResult, GetBoundProfilePackage.
//! - [`notification`]: notifications (ES10b list/retrieve/remove, ES9+ HandleNotification).
//! - [`cancel`]: CancelSession (ES10b and ES9+).
//! - [`es10c`]: local profile management and eUICC data (ES10c, ES10a).
//! - [`bpp`]: the Bound Profile Package and the ES8+ commands inside it.
//! - [`rpm`]: SGP.22 v3 Remote Profile Management (RpmPackage, SmdpSigned3,
//!   LoadRpmPackageRequest/Result).
//!
//! All message types implement [`Codec`]; bring it into scope (`use rsp_asn1::Codec;`) to
//! call `T::decode(bytes)` and `value.encode()`.

pub mod auth;
pub mod bpp;
pub mod cancel;
pub mod codec;
pub mod common;
pub mod download;
pub mod error;
pub mod es10c;
pub mod euicc_info;
pub mod notification;
pub mod prim;
pub mod rpm;
pub mod tlv;

pub use codec::{BitString, Certificate, Codec, Extensions, SeqCodec, Signed};
pub use error::DecodeError;
pub use tlv::{Reader, Tag, Tlv};
