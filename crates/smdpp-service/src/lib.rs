//! The SM-DP+ ES9+ service of SGP.22 v2.2 section 5.6, and the server assembly around it.
//!
//! - [`es9`]: [`Es9Engine`], the implementation of [`smdpp_server::Es9Service`]: every
//!   check of sections 5.6.1-5.6.5 and 3.1.2/3.1.3, with sessions persisted in the store so
//!   that a download survives a server restart between two calls.
//! - [`es2`]: [`Es2Engine`], ES2+ (section 5.3) with operators as tenants and the profile
//!   state machine of section 3.1.6.
//! - [`factory`]: the profile factory at run time: the vault (secrets sealed at rest),
//!   profile types and their templates, UPP generation at download time.
//! - [`export`]: the subscribers as CSV, an osmo-hlr VTY script or Open5GS documents for a
//!   core network; Ki/OPc only in a passphrase-encrypted file.
//! - [`rpm`]: SGP.22 v3 Remote Profile Management orders (ES2+.RpmOrder), deactivation and
//!   metadata updates of installed profiles, on [`Es2Engine`].
//! - [`failure`]: the one place where a failed check becomes an SGP.22 subject/reason code.
//! - [`keys`]: the SM-DP+ key sets (one DPauth + DPpb pair per trusted CI) and trust store.
//! - [`revocation`]: CRLs (section 4.6) loaded from files and URLs, refreshed, checked at
//!   AuthenticateClient and against our own certificates at start-up.
//! - [`session`]: the persisted per-transaction session record and its state machine.
//! - [`sidecar`]: this crate's own tables (profile metadata, BPP cache; migration
//!   `0002_service.sql` of the store).
//! - [`upp`]: Unprotected Profile Package helpers (ICCID extraction, demo profile,
//!   MatchingID generation).
//! - [`config`]: the resolved service configuration (who we are, per-order limits).
//! - [`assembly`]: the configuration and assembly of a server from its settings (the TOML
//!   file, the data location, [`assembly::prepare`] and [`assembly::run`]), shared by
//!   `smdpp serve` and the one-shot commands.
//! - [`inventory`]: profile types from their parts, the subscriber-data import into the
//!   factory, and the demo inventory.
//! - [`hsm`]: keys on a PKCS#11 token (`pkcs11:object=LABEL` references); [`hsm_bench`]:
//!   the HSM benchmark behind `smdpp bench hsm`.
//! - [`outbox`]: outbound calls (HandleDownloadProgressInfo, ES12) queued with the state
//!   change that causes them, and their delivery worker.
//! - [`webhooks`]: signed webhooks for billing and provisioning (secrets sealed with the
//!   vault, delivery of one event).
//! - [`operators`]: registering operators (the tenants of ES2+).
//! - [`generate`]: generating profile types (ICCID and IMSI ranges, on demand or ahead of
//!   time); [`core_network`]: provisioning subscribers in a core network (HLR/HSS).
//! - [`admin`]: the lookups behind the operators' admin API; [`ops`]: health and
//!   certificate status for the admin listener; [`purge`]: the periodic purge of expired
//!   sessions and old ES2+ call records.
//! - [`display`]: how stored values are shown (RFC 3339 times).
//!
//! The command-line code (clap arguments and their handlers: `smdpp serve`, `smdpp
//! profiles ...`, ...) lives next to the binary, in the `smdpp` crate.

pub mod admin;
pub mod assembly;
pub mod config;
pub mod core_network;
pub mod display;
pub mod es2;
pub mod es9;
pub mod export;
pub mod factory;
pub mod failure;
pub mod generate;
pub mod hsm;
pub mod hsm_bench;
pub mod inventory;
pub mod keys;
pub mod operators;
pub mod ops;
pub mod outbox;
pub mod purge;
pub mod revocation;
pub mod rpm;
pub mod session;
pub mod sidecar;
pub mod upp;
pub mod webhooks;

pub use config::{Limits, ServiceConfig};
pub use es2::Es2Engine;
pub use es9::Es9Engine;
pub use failure::Failure;
pub use keys::{KeySet, ServerKeys};
