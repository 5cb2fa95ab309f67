//! Per-client limits on ES9+ (issue #13, abuse limits): what one address may try.
//!
//! A device downloads a profile with one initiateAuthentication and one authenticateClient; a
//! client that guesses MatchingIDs needs one authenticateClient per guess, each refused with
//! `8.2.6/3.8` (MatchingID refused) or, for a wrong Confirmation Code, `8.2.7/3.8`. Per client
//! IP address and per fixed one-minute window this module counts
//!
//! - initiateAuthentication calls (default 6,000 a minute: generous, because many devices
//!   can share one address behind carrier-grade NAT; a load generator on one address needs
//!   0, no limit), and
//! - ES9+ answers that refused a MatchingID or a Confirmation Code (default 20 a minute);
//!
//! and once either count is over its limit, further ES9+ calls from that address are
//! answered **HTTP 429** with `Retry-After` (the seconds left in the window) and the
//! `1.2/5.1` status as JSON (Function Provider / Inaccessible: retry later), without reaching
//! the engine. A limit of 0 disables that count. The Confirmation Code also has its own limit
//! per order, in the engine (`cc_attempt_limit`: the order is terminated).
//!
//! The counts are per node and in memory (a restart forgets them; with N nodes behind a
//! round-robin balancer a client gets up to N times the limit). The address is the TCP peer:
//! behind a proxy that does not pass the client's address through, configure the limits on
//! the proxy instead. At most [`AbuseLimits::max_tracked`] addresses are tracked; when full,
//! expired windows are dropped first, then the map is cleared (fail open, never block
//! everyone).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode as HttpStatus};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use smdpp_core::es9_json::{EmptyBody, ResponseMessage};
use smdpp_core::status::{
    CONFIRMATION_CODE_REFUSED, Es9Error, FUNCTION_PROVIDER_INACCESSIBLE, MATCHING_ID_REFUSED,
};

use crate::http::LogInfo;

/// The TCP peer address of a connection, set by the listener (never from the request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Per-address limits (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbuseLimits {
    /// initiateAuthentication calls per address per minute (0: no limit).
    pub initiate_per_minute: u32,
    /// Refused MatchingIDs and Confirmation Codes per address per minute (0: no limit).
    pub refusals_per_minute: u32,
    /// Addresses tracked at most.
    pub max_tracked: usize,
}

impl Default for AbuseLimits {
    fn default() -> Self {
        AbuseLimits {
            initiate_per_minute: 6_000,
            refusals_per_minute: 20,
            max_tracked: 100_000,
        }
    }
}

const WINDOW: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
struct Window {
    start: Instant,
    initiate: u32,
    refusals: u32,
}

/// The counters of one router.
#[derive(Debug)]
pub(crate) struct AbuseGuard {
    limits: AbuseLimits,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl AbuseGuard {
    pub(crate) fn new(limits: AbuseLimits) -> Arc<AbuseGuard> {
        Arc::new(AbuseGuard {
            limits,
            windows: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a call; `Some(seconds left)` when the address is over a limit.
    fn admit(&self, ip: IpAddr, initiate: bool, now: Instant) -> Option<u64> {
        let mut map = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.limits.max_tracked && !map.contains_key(&ip) {
            map.retain(|_, w| now.duration_since(w.start) < WINDOW);
            if map.len() >= self.limits.max_tracked {
                map.clear();
            }
        }
        let w = map.entry(ip).or_insert(Window {
            start: now,
            initiate: 0,
            refusals: 0,
        });
        if now.duration_since(w.start) >= WINDOW {
            *w = Window {
                start: now,
                initiate: 0,
                refusals: 0,
            };
        }
        let over = |count: u32, limit: u32| limit > 0 && count >= limit;
        if over(w.refusals, self.limits.refusals_per_minute)
            || (initiate && over(w.initiate, self.limits.initiate_per_minute))
        {
            let left = WINDOW.saturating_sub(now.duration_since(w.start));
            return Some(left.as_secs().max(1));
        }
        if initiate {
            w.initiate += 1;
        }
        None
    }

    fn refused(&self, ip: IpAddr) {
        let mut map = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = map.get_mut(&ip) {
            w.refusals = w.refusals.saturating_add(1);
        }
    }
}

/// The middleware (layered by [`crate::http::router`] on the ES9+ routes).
pub(crate) async fn limit(guard: Arc<AbuseGuard>, request: Request, next: Next) -> Response {
    let Some(ClientAddr(ip)) = request.extensions().get::<ClientAddr>().copied() else {
        return next.run(request).await;
    };
    let initiate = request.uri().path().ends_with("/initiateAuthentication");
    if let Some(retry_after) = guard.admit(ip, initiate, Instant::now()) {
        tracing::warn!(%ip, retry_after, "ES9+ client over its limit; refused");
        return too_many(retry_after);
    }
    let response = next.run(request).await;
    let refused = response
        .extensions()
        .get::<LogInfo>()
        .and_then(|l| l.failure.as_ref())
        .is_some_and(|c| *c == MATCHING_ID_REFUSED || *c == CONFIRMATION_CODE_REFUSED);
    if refused {
        guard.refused(ip);
    }
    response
}

fn too_many(retry_after: u64) -> Response {
    let error = Es9Error::new(
        FUNCTION_PROVIDER_INACCESSIBLE,
        "too many requests or refused MatchingIDs from this address; retry later",
    );
    let body =
        serde_json::to_vec(&ResponseMessage::<EmptyBody>::failed(&error)).unwrap_or_default();
    let mut r = (HttpStatus::TOO_MANY_REQUESTS, body).into_response();
    let h = r.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(crate::http::JSON_CONTENT_TYPE),
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        h.insert(axum::http::header::RETRY_AFTER, v);
    }
    r.extensions_mut().insert(LogInfo {
        failure: Some(FUNCTION_PROVIDER_INACCESSIBLE),
        ..LogInfo::default()
    });
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_refusals_past_the_limit_until_the_window_ends() {
        let g = AbuseGuard::new(AbuseLimits {
            initiate_per_minute: 3,
            refusals_per_minute: 2,
            max_tracked: 10,
        });
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(g.admit(ip, true, t0), None);
        }
        assert_eq!(g.admit(ip, true, t0), Some(60));
        assert_eq!(g.admit(ip, false, t0), None, "other calls are not counted");
        g.refused(ip);
        g.refused(ip);
        assert_eq!(g.admit(ip, false, t0 + Duration::from_secs(20)), Some(40));
        assert_eq!(g.admit(other, true, t0), None, "per address");
        assert_eq!(g.admit(ip, true, t0 + WINDOW), None, "a new window");
    }

    #[test]
    fn rejects_nothing_when_full_or_disabled() {
        let g = AbuseGuard::new(AbuseLimits {
            initiate_per_minute: 0,
            refusals_per_minute: 0,
            max_tracked: 2,
        });
        let t0 = Instant::now();
        for i in 0..10u8 {
            let ip: IpAddr = [10, 0, 0, i].into();
            for _ in 0..5 {
                g.refused(ip);
                assert_eq!(g.admit(ip, true, t0), None);
            }
        }
        assert!(
            g.windows
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
                <= 2
        );
    }
}
