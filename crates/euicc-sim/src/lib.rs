//! A software eUICC and an LPA for testing an SGP.22 (v2.2) SM-DP+.
//!
//! - [`state`]: the persistent eUICC state (EID, certificates and key, trusted CIs, profiles,
//!   pending notifications, one sequence counter), saved atomically as JSON.
//! - [`euicc`]: [`Euicc`], the ES10a/b/c functions with the checks a card performs, as typed
//!   messages or DER ([`Euicc::handle_es10`]).
//! - [`cert_cache`]: [`CertCache`], an opt-in cache of validated CERT.DPauth/DPpb chains
//!   shared by the virtual cards of a load run (signatures are still verified every time).
//! - [`apdu`]: [`ApduCard`], the same card behind ISO 7816 APDUs (SELECT, MANAGE CHANNEL,
//!   STORE DATA chaining, segmented LoadBoundProfilePackage, GET RESPONSE).
//! - [`lpac`]: a driver for lpac's `stdio` APDU backend (JSON lines).
//! - [`lpa`]: the LPA: an ES9+ client over HTTPS (server certificate checked against the
//!   trusted CIs) and the download / notification flows, with hooks for negative tests.
//! - [`upp_info`]: [`UppInfo`], the ICCID, IMSI and SPN read from an installed profile's
//!   UPP (SAIP) and recorded with it.
//! - [`usim`]: the USIM of an installed profile: AUTHENTICATE (3GPP TS 31.102 7.1.2, 3G
//!   context) with Milenage and the TS 33.102 Annex C sequence number array.
//! - [`cli`]: the `smdpp euicc ...` subcommands.

pub mod apdu;
pub mod cert_cache;
pub mod cli;
pub mod error;
pub mod euicc;
pub mod http;
pub mod lpa;
pub mod lpac;
pub mod state;
pub mod upp_info;
pub mod usim;
pub mod util;

pub use apdu::ApduCard;
pub use cert_cache::{CertCache, CertCacheStats};
pub use error::{Es10Error, SimError};
pub use euicc::{Euicc, Quirks};
pub use state::{EuiccState, Provisioning};
pub use upp_info::UppInfo;
