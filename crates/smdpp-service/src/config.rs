//! Service configuration: who we are and the per-order limits.
//!
//! The file/environment/flag layering of `smdpp serve` lives in its command-line code (over
//! [`crate::assembly::FileConfig`] and [`crate::assembly::Settings`]); this module holds the
//! resolved values the ES9+ engine runs with.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use smdpp_store::{Store, StoreError};

/// The listen address of `smdpp serve` when neither a flag nor the file sets one.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 8443));

/// Name of the server setting ([`Store::get_setting`]) in which `smdpp serve` records, at
/// every start, the SM-DP+ address it serves (its resolved `smdp_address`).
pub const PUBLIC_ADDRESS: &str = "public_address";

/// The SM-DP+ address a command other than `serve` prints in Activation Codes and QR codes
/// (and gives the ES2+ engine it runs on the data), first found of:
///
/// 1. `flag`: the command's `--smdp-address` (or `SMDPP_SMDP_ADDRESS`), then the
///    configuration file's `smdp_address`;
/// 2. the address `smdpp serve` recorded on this database at its last start
///    ([`PUBLIC_ADDRESS`]): the one the server actually uses, e.g. after
///    `serve --listen 127.0.0.1:39556` without `--smdp-address`;
/// 3. the default `serve` would derive from the file alone: its `listen`, else
///    [`DEFAULT_LISTEN`] (`host:port`, the port dropped when 443).
///
/// `serve` itself uses its own resolution (of its flags, into [`crate::assembly::Settings`])
/// and records it.
pub async fn public_address(
    store: &Store,
    flag: Option<String>,
    file: &crate::assembly::FileConfig,
) -> Result<String, StoreError> {
    if let Some(a) = flag.or_else(|| file.smdp_address.clone()) {
        return Ok(a);
    }
    if let Some(a) = store.get_setting(PUBLIC_ADDRESS).await? {
        return Ok(a);
    }
    Ok(crate::assembly::address_of(
        file.listen.unwrap_or(DEFAULT_LISTEN),
    ))
}

/// Limits and timers of the ES9+ engine. Defaults are documented per field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long an RSP session lives between two calls (default 10 minutes). Each successful
    /// call of InitiateAuthentication/AuthenticateClient restarts the timer.
    pub session_ttl: Duration,
    /// How long a session is kept after the BPP was delivered, waiting for the
    /// ProfileInstallationResult (default 7 days; SGP.22 section 3.1.3.3 lets the PIR arrive
    /// much later, e.g. after the device was offline).
    pub pir_wait: Duration,
    /// Download attempts allowed per order when the order sets none (default 5). The attempt
    /// that makes the counter exceed the limit terminates the order (SGP.22 section 3.1.3
    /// start conditions, `8.8.5/6.4`).
    pub download_attempt_limit: i64,
    /// Wrong Confirmation Codes tolerated per order when the order sets none (default 3). The
    /// wrong code that makes the counter exceed the limit terminates the order (`8.2.7/6.4`).
    pub cc_attempt_limit: i64,
    /// What to do when a retry presents a different otPK.EUICC than the one a cached BPP is
    /// bound to (SGP.22 section 3.1.3.2 step 10 leaves the choice): `true` (default) binds a
    /// new BPP for the same eUICC; `false` refuses with `8.2/3.7`.
    pub rebind_on_new_otpk: bool,
    /// How often `serve` deletes expired RSP sessions and old ES2+ call records (default 60 s;
    /// zero disables the purge). See [`crate::purge`].
    pub purge_interval: Duration,
    /// How long an ES2+ functionCallIdentifier is remembered for replay detection before the
    /// purge deletes its record (default 7 days).
    pub es2_call_retention: Duration,
    /// Delivery of queued outbound calls (HandleDownloadProgressInfo, ES12); see
    /// [`crate::outbox`].
    pub outbox: crate::outbox::OutboxConfig,
    /// RSP sessions that may be open before their BPP is delivered (initiated or
    /// authenticated, not expired), across all nodes (default 100,000; 0: no bound). A new
    /// initiateAuthentication beyond it is refused with `1.2/5.1` (retry later), so that
    /// clients opening sessions they never finish cannot fill the database. The count is
    /// read at most once a second per node, plus this node's sessions since.
    pub max_open_sessions: i64,
    /// Refused MatchingIDs and Confirmation Codes tolerated per EID per minute, on this node
    /// (default 10; 0: no limit). Past it, that eUICC's authenticateClient and
    /// getBoundProfilePackage are refused with `1.2/5.1` (retry later) until the minute
    /// ends. The EID counted is the one of the eUICC certificate the chain check has just
    /// validated, so one client cannot spend another card's allowance. This complements the
    /// per-address limit of `smdpp_server::abuse` for clients spread over many addresses.
    pub refusals_per_eid_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            session_ttl: Duration::from_secs(600),
            pir_wait: Duration::from_secs(7 * 24 * 3600),
            download_attempt_limit: 5,
            cc_attempt_limit: 3,
            rebind_on_new_otpk: true,
            purge_interval: Duration::from_secs(60),
            es2_call_retention: Duration::from_secs(7 * 24 * 3600),
            outbox: crate::outbox::OutboxConfig::default(),
            max_open_sessions: 100_000,
            refusals_per_eid_per_minute: 10,
        }
    }
}

/// The resolved configuration of the ES9+ engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Our SM-DP+ address, `FQDN[:port]`, as it appears in Activation Codes. Compared
    /// case-insensitively with `smdpAddress` (SGP.22 section 5.6.1).
    pub smdp_address: String,
    /// Limits and timers.
    pub limits: Limits,
}

impl ServiceConfig {
    /// A configuration with default limits.
    pub fn new(smdp_address: impl Into<String>) -> Self {
        ServiceConfig {
            smdp_address: smdp_address.into(),
            limits: Limits::default(),
        }
    }

    /// Whether `address` designates this SM-DP+: equal ignoring ASCII case, where an
    /// explicit `:443` counts as no port.
    pub fn is_our_address(&self, address: &str) -> bool {
        fn norm(a: &str) -> String {
            let a = a.trim().to_ascii_lowercase();
            a.strip_suffix(":443").map(str::to_owned).unwrap_or(a)
        }
        norm(address) == norm(&self.smdp_address)
    }
}
