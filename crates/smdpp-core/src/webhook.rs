//! Signed webhooks for billing and provisioning systems: the event names, the JSON body
//! POSTed for each event, and the signature scheme. No I/O here: the sender is
//! `smdpp-service::webhooks`, the queue is the store's outbox.
//!
//! # Events
//!
//! [`WebhookEvent`] names what happened to a profile (`created`, `released`, `installed`,
//! `enabled`, `disabled`, `deleted`, `deactivated`); a webhook subscribes to `*` or to a
//! comma-separated list of those names ([`EventFilter`]). The body's `type` is the name
//! prefixed with `profile.` (`profile.installed`); `smdpp webhooks test` sends
//! [`WebhookEvent::Test`] (`webhook.test`), which no filter can name and which carries no
//! profile.
//!
//! # Body
//!
//! [`WebhookBody`], camelCase JSON:
//!
//! ```json
//! {"id": "webhook:wh_1f..:42", "type": "profile.installed",
//!  "occurredAt": "2026-12-07T03:21:14.123Z", "iccid": "8988...", "imsi": "00101...",
//!  "eid": "8904...", "profileType": "retail", "operatorId": "op-a",
//!  "state": "installed", "detail": "..."}
//! ```
//!
//! Optional members are left out when they have no value. A body never holds a secret
//! (no Ki, OPc, PIN, PUK, Activation Code or Confirmation Code).
//!
//! # Signature
//!
//! Each request carries
//!
//! ```text
//! Smdpp-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." || body)>
//! Smdpp-Event-Id: <id>
//! Smdpp-Event-Type: <type>
//! ```
//!
//! where `body` is the exact bytes of the request body, the HMAC key is the webhook's secret
//! as shown by `smdpp webhooks add` (its UTF-8 bytes, `whsec_...` included) and the hex is
//! lowercase. [`sign`] makes the header value, [`verify`] checks one.
//!
//! # Replay safety (the receiver's side)
//!
//! Delivery is at least once: the same event may arrive again (a retry after a lost answer,
//! a lease that ran out), always with the same `id`, and each attempt is signed afresh with
//! its own `t`. A receiver therefore
//! 1. verifies the signature over the raw body BEFORE parsing it,
//! 2. refuses a `t` more than a tolerance away from its clock ([`DEFAULT_TOLERANCE_SECS`],
//!    5 minutes): a captured request cannot be replayed later, and
//! 3. de-duplicates by `id` (keeping the ids it processed for at least the tolerance, in
//!    practice for as long as retries may come), so a replay within the tolerance, or a
//!    retry, is processed once.
//!
//! For a secret rotation the header may carry several `v1=` values (one per secret); a
//! receiver accepts the request when one of them matches one of its secrets.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::hmac;
use serde::{Deserialize, Serialize};

/// Name of the signature header.
pub const SIGNATURE_HEADER: &str = "Smdpp-Signature";
/// Name of the header carrying the event id (the body's `id`).
pub const EVENT_ID_HEADER: &str = "Smdpp-Event-Id";
/// Name of the header carrying the event type (the body's `type`).
pub const EVENT_TYPE_HEADER: &str = "Smdpp-Event-Type";
/// The tolerance a receiver should allow between `t` and its clock, in seconds.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// What happened to a profile (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WebhookEvent {
    /// The profile was created: imported (`smdpp profiles import`, `orders import`, the demo
    /// inventory) or generated.
    Created,
    /// The order was released for download: ConfirmOrder with releaseFlag, or
    /// ReleaseProfile.
    Released,
    /// The eUICC reported a successful installation (ProfileInstallationResult).
    Installed,
    /// The eUICC reported the profile enabled (notification).
    Enabled,
    /// The eUICC reported the profile disabled (notification).
    Disabled,
    /// The eUICC reported the profile deleted (notification).
    Deleted,
    /// The operator deactivated the subscription.
    Deactivated,
    /// A test request (`smdpp webhooks test`): no profile, never queued, not a filter name.
    Test,
}

impl WebhookEvent {
    /// The profile events, in lifecycle order (every event but [`WebhookEvent::Test`]).
    pub const PROFILE_EVENTS: [WebhookEvent; 7] = [
        WebhookEvent::Created,
        WebhookEvent::Released,
        WebhookEvent::Installed,
        WebhookEvent::Enabled,
        WebhookEvent::Disabled,
        WebhookEvent::Deleted,
        WebhookEvent::Deactivated,
    ];

    /// The name used in filters and in the outbox (`installed`, ...; `test`).
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::Created => "created",
            WebhookEvent::Released => "released",
            WebhookEvent::Installed => "installed",
            WebhookEvent::Enabled => "enabled",
            WebhookEvent::Disabled => "disabled",
            WebhookEvent::Deleted => "deleted",
            WebhookEvent::Deactivated => "deactivated",
            WebhookEvent::Test => "test",
        }
    }

    /// The body's `type` and the `Smdpp-Event-Type` header: `profile.<name>`, or
    /// `webhook.test`.
    pub fn type_name(self) -> &'static str {
        match self {
            WebhookEvent::Created => "profile.created",
            WebhookEvent::Released => "profile.released",
            WebhookEvent::Installed => "profile.installed",
            WebhookEvent::Enabled => "profile.enabled",
            WebhookEvent::Disabled => "profile.disabled",
            WebhookEvent::Deleted => "profile.deleted",
            WebhookEvent::Deactivated => "profile.deactivated",
            WebhookEvent::Test => "webhook.test",
        }
    }

    /// The event of a `type` value ([`WebhookEvent::type_name`]'s inverse).
    pub fn from_type_name(s: &str) -> Option<WebhookEvent> {
        Self::PROFILE_EVENTS
            .into_iter()
            .chain([WebhookEvent::Test])
            .find(|e| e.type_name() == s)
    }
}

impl fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event name that is not one of ours, or an event list that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventNameError {
    /// Not an event name.
    #[error(
        "unknown event {0:?} (expected * or a comma-separated list of created, released, \
         installed, enabled, disabled, deleted, deactivated)"
    )]
    Unknown(String),
    /// `test` in a filter: test requests are only sent by `smdpp webhooks test`.
    #[error("\"test\" cannot be subscribed to: test requests are sent by `smdpp webhooks test`")]
    Test,
    /// An empty list or an empty item (`installed,,deleted`).
    #[error("the event list is empty or has an empty item")]
    Empty,
    /// `*` together with names.
    #[error("* cannot be combined with event names")]
    StarWithNames,
}

impl FromStr for WebhookEvent {
    type Err = EventNameError;
    /// Parses a name of [`WebhookEvent::as_str`] (ASCII case-insensitive, surrounding spaces
    /// ignored).
    fn from_str(s: &str) -> Result<Self, EventNameError> {
        let name = s.trim();
        Self::PROFILE_EVENTS
            .into_iter()
            .chain([WebhookEvent::Test])
            .find(|e| e.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| EventNameError::Unknown(name.to_owned()))
    }
}

/// Which events a webhook receives: `*` (every profile event) or a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventFilter {
    /// `*`: every profile event, including ones added in later versions.
    All,
    /// These events (non-empty, without duplicates, in lifecycle order).
    Only(Vec<WebhookEvent>),
}

impl EventFilter {
    /// Parses `*` or a comma-separated list of event names (`installed, deleted`); names are
    /// ASCII case-insensitive, duplicates are dropped. Refuses unknown names, `test`, empty
    /// items and `*` mixed with names.
    pub fn parse(s: &str) -> Result<EventFilter, EventNameError> {
        let s = s.trim();
        if s == "*" {
            return Ok(EventFilter::All);
        }
        let mut events = Vec::new();
        for item in s.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(EventNameError::Empty);
            }
            if item == "*" {
                return Err(EventNameError::StarWithNames);
            }
            let e: WebhookEvent = item.parse()?;
            if e == WebhookEvent::Test {
                return Err(EventNameError::Test);
            }
            if !events.contains(&e) {
                events.push(e);
            }
        }
        events.sort();
        Ok(EventFilter::Only(events))
    }

    /// Whether `event` passes the filter ([`WebhookEvent::Test`] passes every filter: it is
    /// only ever sent on demand).
    pub fn matches(&self, event: WebhookEvent) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Only(list) => event == WebhookEvent::Test || list.contains(&event),
        }
    }
}

impl fmt::Display for EventFilter {
    /// The stored form: `*`, or the names joined by `,` without spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventFilter::All => f.write_str("*"),
            EventFilter::Only(list) => {
                for (i, e) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(e.as_str())?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for EventFilter {
    type Err = EventNameError;
    fn from_str(s: &str) -> Result<Self, EventNameError> {
        EventFilter::parse(s)
    }
}

// ------------------------------------------------------------------------------- body

/// The JSON body of one webhook request (see the module documentation). Never holds a
/// secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookBody {
    /// Stable event id: the same on every attempt; receivers de-duplicate by it.
    pub id: String,
    /// `profile.<event>` or `webhook.test` ([`WebhookEvent::type_name`]).
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the event happened (RFC 3339, UTC, milliseconds; [`rfc3339_utc`]).
    pub occurred_at: String,
    /// The profile's ICCID (always present for `profile.*` events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iccid: Option<String>,
    /// Its IMSI, when the SM-DP+ holds its subscriber data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imsi: Option<String>,
    /// The EID of the eUICC the profile is bound to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    /// Its profile type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_type: Option<String>,
    /// The owning operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    /// The profile's state after the event (`available`, `released`, `installed`,
    /// `enabled`, `disabled`, `unavailable`, ...; always present for `profile.*` events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// What caused it, in words (e.g. `eid=... seqNumber=...`, a deactivation reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl WebhookBody {
    /// A body of `event` with id `id` at `occurred_at_ms` (milliseconds since the epoch) and
    /// no profile facts yet.
    pub fn new(id: impl Into<String>, event: WebhookEvent, occurred_at_ms: i64) -> WebhookBody {
        WebhookBody {
            id: id.into(),
            event_type: event.type_name().to_owned(),
            occurred_at: rfc3339_utc(occurred_at_ms),
            iccid: None,
            imsi: None,
            eid: None,
            profile_type: None,
            operator_id: None,
            state: None,
            detail: None,
        }
    }

    /// The event of [`WebhookBody::event_type`], if it is one of ours.
    pub fn event(&self) -> Option<WebhookEvent> {
        WebhookEvent::from_type_name(&self.event_type)
    }

    /// The JSON text sent (and signed).
    pub fn to_json(&self) -> String {
        // A struct of strings always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `ms` (milliseconds since the Unix epoch) as RFC 3339 UTC with milliseconds
/// (`2026-12-07T03:21:14.123Z`); years outside 0000-9999 are clamped to that range.
pub fn rfc3339_utc(ms: i64) -> String {
    // Proleptic Gregorian calendar from days since 1970-01-01 (civil-from-days).
    const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    const MIN_MS: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00.000Z
    let ms = ms.clamp(MIN_MS, MAX_MS);
    let millis = ms.rem_euclid(1000);
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, (sod % 3600) / 60, sod % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{millis:03}Z")
}

// -------------------------------------------------------------------------- signature

/// HMAC-SHA256 of `data` under `key` (RFC 2104 with SHA-256, aws-lc).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// The signed message: `"<t>."` followed by the body bytes.
fn signed_message(t: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(t.len() + 1 + body.len());
    m.extend_from_slice(t.as_bytes());
    m.push(b'.');
    m.extend_from_slice(body);
    m
}

/// The `Smdpp-Signature` header value for `body` sent at `t` (Unix seconds):
/// `t=<t>,v1=<lowercase hex HMAC-SHA256(secret, "<t>." || body)>`.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    let t = t.to_string();
    let mac = hmac_sha256(secret, &signed_message(&t, body));
    format!("t={t},v1={}", hex::encode(mac))
}

/// Why a request's signature is not accepted. The messages name no secret and no MAC.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// No `Smdpp-Signature` header (or an empty one).
    #[error("no Smdpp-Signature header")]
    Missing,
    /// The header is not a comma-separated list of `key=value` items.
    #[error("malformed Smdpp-Signature header: {0}")]
    Malformed(&'static str),
    /// No `t=` item.
    #[error("the Smdpp-Signature header has no timestamp (t=)")]
    NoTimestamp,
    /// No `v1=` item.
    #[error("the Smdpp-Signature header has no v1 signature")]
    NoSignature,
    /// No `v1=` value matches the body under this secret.
    #[error("the signature does not match")]
    Mismatch,
    /// `t` is older than the tolerance.
    #[error("the timestamp is {age} s old (tolerance {tolerance} s)")]
    TooOld {
        /// Seconds between `t` and now.
        age: u64,
        /// The tolerance.
        tolerance: u64,
    },
    /// `t` is further in the future than the tolerance.
    #[error("the timestamp is {ahead} s in the future (tolerance {tolerance} s)")]
    InFuture {
        /// Seconds between now and `t`.
        ahead: u64,
        /// The tolerance.
        tolerance: u64,
    },
}

/// Checks a `Smdpp-Signature` header value against `body` (the exact bytes received) and
/// `secret`, at `now` (Unix seconds), allowing `tolerance` seconds between `t` and `now`
/// in either direction ([`DEFAULT_TOLERANCE_SECS`] is the recommended value).
///
/// The header is `key=value` items separated by commas (spaces around them ignored): exactly
/// one `t` (decimal digits), one or more `v1` (64 hex digits; several during a secret
/// rotation: one matching is enough), other keys ignored (later schemes). MACs are compared
/// in constant time. A signature that matches with a `t` outside the tolerance is
/// [`SignatureError::TooOld`] / [`SignatureError::InFuture`]. Replays inside the tolerance
/// are the receiver's to catch, by the event id (see the module documentation).
pub fn verify(
    header: &str,
    body: &[u8],
    secret: &[u8],
    now: i64,
    tolerance: u64,
) -> Result<(), SignatureError> {
    let header = header.trim();
    if header.is_empty() {
        return Err(SignatureError::Missing);
    }
    let mut t: Option<&str> = None;
    let mut macs: Vec<[u8; 32]> = Vec::new();
    for item in header.split(',') {
        let item = item.trim();
        let Some((k, v)) = item.split_once('=') else {
            return Err(SignatureError::Malformed("an item is not key=value"));
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "t" => {
                if t.is_some() {
                    return Err(SignatureError::Malformed("more than one t="));
                }
                if v.is_empty() || v.len() > 18 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(SignatureError::Malformed("t is not a number of seconds"));
                }
                t = Some(v);
            }
            "v1" => {
                let mut mac = [0u8; 32];
                if v.len() != 64 || hex::decode_to_slice(v, &mut mac).is_err() {
                    return Err(SignatureError::Malformed("v1 is not 64 hex digits"));
                }
                macs.push(mac);
            }
            "" => return Err(SignatureError::Malformed("an item has no key")),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::NoTimestamp)?;
    if macs.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let message = signed_message(t, body);
    // Every value is checked, so the time taken does not tell which one matched.
    let matched = macs.iter().fold(false, |ok, mac| {
        hmac::verify(&key, &message, mac).is_ok() | ok
    });
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    // At most 18 digits: fits in i64.
    let t: i64 = t
        .parse()
        .map_err(|_| SignatureError::Malformed("t is not a number of seconds"))?;
    let diff = i128::from(now) - i128::from(t);
    let tol = i128::from(tolerance);
    if diff > tol {
        return Err(SignatureError::TooOld {
            age: u64::try_from(diff).unwrap_or(u64::MAX),
            tolerance,
        });
    }
    if -diff > tol {
        return Err(SignatureError::InFuture {
            ahead: u64::try_from(-diff).unwrap_or(u64::MAX),
            tolerance,
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test-secret";
    const BODY: &[u8] = br#"{"id":"evt-1","type":"profile.installed"}"#;
    const NOW: i64 = 1_796_613_674;

    #[test]
    fn hmac_sha256_rfc4231_vectors() {
        // RFC 4231 test case 1.
        assert_eq!(
            hex::encode(hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signs_t_dot_body() {
        let h = sign(SECRET, NOW, BODY);
        let mut msg = format!("{NOW}.").into_bytes();
        msg.extend_from_slice(BODY);
        assert_eq!(
            h,
            format!("t={NOW},v1={}", hex::encode(hmac_sha256(SECRET, &msg)))
        );
        assert!(
            h[h.find("v1=").unwrap() + 3..]
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        );
        assert_eq!(
            verify(&h, BODY, SECRET, NOW, DEFAULT_TOLERANCE_SECS),
            Ok(())
        );
    }

    #[test]
    fn accepts_within_tolerance_and_spaces_and_unknown_keys() {
        let h = sign(SECRET, NOW - 300, BODY);
        assert_eq!(verify(&h, BODY, SECRET, NOW, 300), Ok(()));
        let h = sign(SECRET, NOW + 300, BODY);
        assert_eq!(verify(&h, BODY, SECRET, NOW, 300), Ok(()));
        let v1 = sign(SECRET, NOW, BODY)
            .split_once(",v1=")
            .unwrap()
            .1
            .to_owned();
        let spaced = format!(" t={NOW} , v0=ignored , v1={} ", v1.to_uppercase());
        assert_eq!(verify(&spaced, BODY, SECRET, NOW, 300), Ok(()));
    }

    #[test]
    fn accepts_several_v1_for_rotation() {
        let old = sign(b"old-secret-value", NOW, BODY);
        let new = sign(SECRET, NOW, BODY);
        let v_old = old.split_once(",v1=").unwrap().1;
        let v_new = new.split_once(",v1=").unwrap().1;
        let both = format!("t={NOW},v1={v_old},v1={v_new}");
        assert_eq!(verify(&both, BODY, SECRET, NOW, 300), Ok(()));
        assert_eq!(verify(&both, BODY, b"old-secret-value", NOW, 300), Ok(()));
        assert_eq!(
            verify(&both, BODY, b"a third secret", NOW, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rejects_missing_header() {
        assert_eq!(
            verify("", BODY, SECRET, NOW, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify("  ", BODY, SECRET, NOW, 300),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn rejects_garbled_headers() {
        let v1 = "0".repeat(64);
        for (h, why) in [
            ("garbage".to_owned(), "an item is not key=value"),
            (format!("t={NOW};v1={v1}"), "t is not a number of seconds"),
            (format!("t=-5,v1={v1}"), "t is not a number of seconds"),
            (format!("t=,v1={v1}"), "t is not a number of seconds"),
            (format!("t=1e9,v1={v1}"), "t is not a number of seconds"),
            (
                format!("t=99999999999999999999,v1={v1}"),
                "t is not a number of seconds",
            ),
            (format!("t={NOW},t={NOW},v1={v1}"), "more than one t="),
            (format!("t={NOW},v1=abc"), "v1 is not 64 hex digits"),
            (
                format!("t={NOW},v1={}", "z".repeat(64)),
                "v1 is not 64 hex digits",
            ),
            (format!("t={NOW},,v1={v1}"), "an item is not key=value"),
            (format!("t={NOW},=x,v1={v1}"), "an item has no key"),
        ] {
            assert_eq!(
                verify(&h, BODY, SECRET, NOW, 300),
                Err(SignatureError::Malformed(why)),
                "{h}"
            );
        }
    }

    #[test]
    fn rejects_header_without_timestamp() {
        let h = sign(SECRET, NOW, BODY);
        let v1 = h.split_once(',').unwrap().1;
        assert_eq!(
            verify(v1, BODY, SECRET, NOW, 300),
            Err(SignatureError::NoTimestamp)
        );
    }

    #[test]
    fn rejects_header_without_signature() {
        assert_eq!(
            verify(&format!("t={NOW}"), BODY, SECRET, NOW, 300),
            Err(SignatureError::NoSignature)
        );
        assert_eq!(
            verify(&format!("t={NOW},v0=abc"), BODY, SECRET, NOW, 300),
            Err(SignatureError::NoSignature)
        );
    }

    #[test]
    fn rejects_wrong_signature() {
        let h = sign(SECRET, NOW, BODY);
        assert_eq!(
            verify(&h, BODY, b"another secret", NOW, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&h, b"{\"id\":\"evt-2\"}", SECRET, NOW, 300),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = h.replacen(&format!("t={NOW}"), &format!("t={}", NOW + 1), 1);
        assert_eq!(
            verify(&moved, BODY, SECRET, NOW, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rejects_old_timestamp() {
        let h = sign(SECRET, NOW - 301, BODY);
        assert_eq!(
            verify(&h, BODY, SECRET, NOW, 300),
            Err(SignatureError::TooOld {
                age: 301,
                tolerance: 300
            })
        );
    }

    #[test]
    fn rejects_future_timestamp() {
        let h = sign(SECRET, NOW + 301, BODY);
        assert_eq!(
            verify(&h, BODY, SECRET, NOW, 300),
            Err(SignatureError::InFuture {
                ahead: 301,
                tolerance: 300
            })
        );
    }

    #[test]
    fn event_names_round_trip() {
        for e in WebhookEvent::PROFILE_EVENTS
            .into_iter()
            .chain([WebhookEvent::Test])
        {
            assert_eq!(e.as_str().parse::<WebhookEvent>(), Ok(e));
            assert_eq!(WebhookEvent::from_type_name(e.type_name()), Some(e));
        }
        assert_eq!(
            " Installed ".parse::<WebhookEvent>(),
            Ok(WebhookEvent::Installed)
        );
        assert_eq!(WebhookEvent::Installed.type_name(), "profile.installed");
        assert_eq!(WebhookEvent::from_type_name("installed"), None);
    }

    #[test]
    fn filters_parse_and_print() {
        assert_eq!(EventFilter::parse(" * "), Ok(EventFilter::All));
        let f = EventFilter::parse("deleted, installed,Installed").unwrap();
        assert_eq!(
            f,
            EventFilter::Only(vec![WebhookEvent::Installed, WebhookEvent::Deleted])
        );
        assert_eq!(f.to_string(), "installed,deleted");
        assert!(f.matches(WebhookEvent::Deleted));
        assert!(!f.matches(WebhookEvent::Created));
        assert!(f.matches(WebhookEvent::Test));
        assert!(EventFilter::All.matches(WebhookEvent::Deactivated));
        assert_eq!(EventFilter::All.to_string(), "*");
    }

    #[test]
    fn rejects_unknown_event_names() {
        let e = EventFilter::parse("installed,bogus").unwrap_err();
        assert_eq!(e, EventNameError::Unknown("bogus".into()));
        assert_eq!(
            e.to_string(),
            "unknown event \"bogus\" (expected * or a comma-separated list of created, \
             released, installed, enabled, disabled, deleted, deactivated)"
        );
        assert_eq!(
            EventFilter::parse("profile.installed"),
            Err(EventNameError::Unknown("profile.installed".into()))
        );
    }

    #[test]
    fn rejects_bad_event_lists() {
        assert_eq!(EventFilter::parse(""), Err(EventNameError::Empty));
        assert_eq!(EventFilter::parse("installed,"), Err(EventNameError::Empty));
        assert_eq!(
            EventFilter::parse("*,installed"),
            Err(EventNameError::StarWithNames)
        );
        assert_eq!(EventFilter::parse("test"), Err(EventNameError::Test));
    }

    #[test]
    fn body_is_camel_case_without_empty_members() {
        let mut b = WebhookBody::new("evt-7", WebhookEvent::Installed, 1_796_613_674_123);
        b.iccid = Some("8988247000001234567".into());
        b.profile_type = Some("retail".into());
        b.state = Some("installed".into());
        let v: serde_json::Value = serde_json::from_str(&b.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "id": "evt-7",
                "type": "profile.installed",
                "occurredAt": "2026-12-07T03:21:14.123Z",
                "iccid": "8988247000001234567",
                "profileType": "retail",
                "state": "installed",
            })
        );
        let back: WebhookBody = serde_json::from_value(v).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.event(), Some(WebhookEvent::Installed));
    }

    #[test]
    fn rfc3339_formats_utc_milliseconds() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(1_796_613_674_123), "2026-12-07T03:21:14.123Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_utc(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_utc(i64::MIN), "0000-01-01T00:00:00.000Z");
    }
}
