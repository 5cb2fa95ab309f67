//! The operators' web console, served by `smdpp serve` at `/` of the admin listener (never on
//! the ES9+/ES2+ listener).
//!
//! Pages (server-rendered HTML; see [`html`] for the frame and [`auth`] for users, sessions
//! and CSRF):
//!
//! | path | what |
//! |---|---|
//! | `GET /login`, `POST /login`, `POST /logout` | log-in and log-out |
//! | `GET /` | dashboard: downloads and failures per minute (all nodes, from the database), failures by SGP.22 code (this node), profiles by state, outbox depth; refreshed every 5 s |
//! | `GET /profiles?q=&state=&type=&operator=` | inventory; `q` is an ICCID, an EID or an IMSI |
//! | `GET /profiles/{iccid}` | one profile: every state change and every outbound call |
//! | `GET /orders`, `POST /orders` | ES2+ DownloadOrder (by type or ICCID) |
//! | `GET /orders/{iccid}`, `POST /orders/{iccid}/{confirm,release,cancel,deactivate}` | one order: the ES2+ functions, its Activation Code and QR code |
//! | `GET /orders/{iccid}/qr.png` | the QR code |
//! | `GET /outbox?state=`, `POST /outbox/{id}/retry` | outbound calls; a failed one can be queued again |
//! | `GET /types`, `GET /keys` | profile types; certificates and key custody |
//! | `GET /console/api/...` | the same data as JSON (see `GET /openapi.json`) |
//!
//! Order actions call the same engine functions as ES2+ ([`smdpp_service::es2::Es2Engine`]),
//! as the profile's operator, with a `functionCallIdentifier` of `console-<random>`; the
//! engine's refusals are shown with their SGP.22 subjectCode/reasonCode. A user limited to an
//! operator sees only that operator's profiles and outbound calls: anything else is "no such
//! profile" (404), exactly like an unknown ICCID.

pub mod auth;
pub mod html;
pub mod openapi;
mod pages;

use std::sync::Arc;

use smdpp_service::es2::Es2Engine;
use smdpp_service::ops::CertificateStatus;
use smdpp_store::Store;

pub use pages::router;

/// What the console works with.
pub struct Console {
    /// The store.
    pub store: Store,
    /// The ES2+ engine (order actions).
    pub es2: Arc<Es2Engine>,
    /// Our SM-DP+ address (Activation Codes).
    pub smdp_address: String,
    /// Lifetime of a log-in, milliseconds.
    pub session_ttl_ms: i64,
    /// Whether the session cookie is marked `Secure` (false only for plain HTTP).
    pub secure_cookie: bool,
    /// The server's certificates (for the keys page).
    pub certificates: Vec<CertificateStatus>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("smdp_address", &self.smdp_address)
            .finish_non_exhaustive()
    }
}
