//! Signed webhooks for billing and provisioning systems: their secrets (sealed with the
//! factory's vault), the delivery of one event (an HTTPS POST signed as
//! `smdpp-core::webhook` says) and `smdpp webhooks add|list|remove|test`. See
//! `docs/WEBHOOKS.md` for the receiver's side.
//!
//! # Queuing and delivery
//!
//! The store queues one `webhook` outbox row per matching webhook in the transaction of the
//! profile event (`target` = the webhook id, `body` = the event's facts, see
//! `smdpp_store::EventFacts`). The outbox worker calls [`deliver_row`] for each attempt:
//! the webhook is looked up by `target`, its secret opened, the public body
//! ([`smdpp_core::webhook::WebhookBody`], `id` = the outbox row id, so the same on every
//! attempt) built and POSTed with `Smdpp-Signature` (signed afresh per attempt with the
//! current time), `Smdpp-Event-Id` and `Smdpp-Event-Type`.
//!
//! Outcomes ([`DeliveryError::is_permanent`]):
//! - any `2xx`: delivered (the response body is not read);
//! - `5xx`, `408`, `429`, a connection, TLS or HTTP failure, a time-out: retried with the
//!   outbox's backoff (same id);
//! - other `4xx` (and `1xx`/`3xx`: redirects are not followed): permanent, the row fails at
//!   once: the receiver refused this request and would refuse it again;
//! - a webhook removed since the event, a URL no longer accepted, a secret that does not
//!   open, a stored body that does not parse: permanent, with the reason.
//!
//! # Trust
//!
//! `https://` URLs ([`crate::outbox::check_callback_url`]'s rules); plain `http://` only to
//! `127.0.0.1`, `[::1]` or `localhost` (a receiver on the same host). The endpoint's
//! certificate must chain to the webhook's own CA bundle (`--ca`) when it has one (only
//! those CAs), else to the system's trust roots plus `SMDPP_OUTBOX_CA_FILE`. No client
//! certificate is presented: the signature authenticates the SM-DP+.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, anyhow};
use base64::Engine as _;
use http_body_util::Full;
use hyper::body::Bytes;
use rustls_pki_types::ServerName;
use smdpp_core::webhook::{
    EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, WebhookBody, WebhookEvent, rfc3339_utc,
    sign,
};
use smdpp_store::{EventFacts, OutboxKind, OutboxRow, Store, Webhook, now_ms};
use smdpp_vault::record_aad;
use zeroize::Zeroizing;

use crate::factory::{Factory, FactoryError};
use crate::outbox::{callback_roots, check_callback_url, new_id, system_roots};

/// Prefix of the generated secrets.
pub const SECRET_PREFIX: &str = "whsec_";
/// Shortest secret accepted from `--secret-file`.
pub const MIN_SECRET_LEN: usize = 16;
/// Longest secret accepted from `--secret-file`.
pub const MAX_SECRET_LEN: usize = 512;

// ---------------------------------------------------------------------------- secrets

/// The additional data binding a sealed webhook secret to its row.
pub fn secret_aad(id: &str) -> Vec<u8> {
    record_aad("webhooks", id, "secret")
}

/// A new secret: `whsec_` and 32 bytes from the OS CSPRNG in base64url without padding.
/// The HMAC key is the text itself (its UTF-8 bytes).
pub fn generate_secret() -> anyhow::Result<Zeroizing<String>> {
    let raw = Zeroizing::new(
        crate::upp::random_bytes::<32>().map_err(|_| anyhow!("the system RNG failed"))?,
    );
    let mut s = Zeroizing::new(String::with_capacity(SECRET_PREFIX.len() + 43));
    s.push_str(SECRET_PREFIX);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(raw.as_slice(), &mut s);
    Ok(s)
}

/// `Ok` for a secret given by the operator: 16 to 512 visible ASCII characters (no spaces,
/// so it can be passed to `openssl -hmac` and compared as typed).
pub fn check_secret(secret: &str) -> Result<(), String> {
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len())
        || !secret.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(format!(
            "the secret must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} visible ASCII characters \
             (no spaces)"
        ));
    }
    Ok(())
}

/// Seals `secret` for the webhook `id`: `(dek_id, sealed)`.
pub fn seal_secret(
    factory: &Factory,
    id: &str,
    secret: &[u8],
) -> Result<(i64, Vec<u8>), FactoryError> {
    let blob = factory.vault().seal(secret, &secret_aad(id))?;
    Ok((i64::from(blob.dek_id()), blob.into_bytes()))
}

/// Opens the secret of `hook`, in a buffer wiped on drop.
pub async fn open_secret(
    factory: &Factory,
    hook: &Webhook,
) -> Result<Zeroizing<Vec<u8>>, FactoryError> {
    factory
        .open_sealed(&hook.secret_sealed, &secret_aad(&hook.id))
        .await
}

// -------------------------------------------------------------------------------- URLs

/// `Ok` for a URL events can be POSTed to: `https://` by the rules of
/// [`check_callback_url`] (a host, no user information, no query), or `http://` to
/// `127.0.0.1`, `[::1]` or `localhost` only; otherwise why not.
pub fn check_webhook_url(url: &str) -> Result<(), &'static str> {
    let url = url.trim();
    if !url
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
    {
        return check_callback_url(url);
    }
    let uri: hyper::Uri = url.parse().map_err(|_| "not a URL")?;
    let authority = uri.authority().ok_or("no host")?;
    if authority.as_str().contains('@') {
        return Err("user information is not allowed in it");
    }
    let host = authority.host();
    if !(host == "127.0.0.1" || host == "[::1]" || host.eq_ignore_ascii_case("localhost")) {
        return Err("http:// is only allowed to 127.0.0.1, [::1] or localhost (use https://)");
    }
    if uri.query().is_some() {
        return Err("a query is not allowed in it");
    }
    Ok(())
}

// ------------------------------------------------------------------------------- trust

/// The TLS client configurations of webhook deliveries: the default one (system roots plus
/// `SMDPP_OUTBOX_CA_FILE`) and one per webhook with a CA of its own, rebuilt when that CA
/// changes. Build one per process (worker, CLI) and keep it.
pub struct WebhookTls {
    provider: Arc<rustls::crypto::CryptoProvider>,
    default: Arc<rustls::ClientConfig>,
    own: Mutex<HashMap<String, (String, Arc<rustls::ClientConfig>)>>,
}

impl std::fmt::Debug for WebhookTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTls").finish_non_exhaustive()
    }
}

impl WebhookTls {
    /// The system's trust roots plus the CAs of `ca_file` (a PEM bundle; the outbox's
    /// [`crate::outbox::OutboxConfig::ca_file`]).
    pub fn new(ca_file: Option<&Path>) -> anyhow::Result<WebhookTls> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        let _ = roots.add_parsable_certificates(system_roots().iter().cloned());
        if let Some(f) = ca_file {
            for c in smdpp_server::tls::load_certificate_chain(f)
                .with_context(|| format!("outbox CA file {}", f.display()))?
            {
                roots
                    .add(c)
                    .with_context(|| format!("outbox CA file {}", f.display()))?;
            }
        }
        let default = client_config(&provider, roots)?;
        Ok(WebhookTls {
            provider,
            default,
            own: Mutex::default(),
        })
    }

    /// The configuration to reach `hook`'s endpoint with.
    pub fn for_webhook(&self, hook: &Webhook) -> Result<Arc<rustls::ClientConfig>, DeliveryError> {
        let mut own = self.own.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(pem) = hook.ca.as_deref() else {
            own.remove(&hook.id);
            return Ok(Arc::clone(&self.default));
        };
        if let Some((text, tls)) = own.get(&hook.id)
            && text == pem
        {
            return Ok(Arc::clone(tls));
        }
        let roots = callback_roots(pem)
            .map_err(|e| DeliveryError::Permanent(format!("the CA of webhook {}: {e}", hook.id)))?;
        let tls = client_config(&self.provider, roots)
            .map_err(|e| DeliveryError::Permanent(format!("webhook {}: {e:#}", hook.id)))?;
        own.insert(hook.id.clone(), (pem.to_owned(), Arc::clone(&tls)));
        Ok(tls)
    }
}

fn client_config(
    provider: &Arc<rustls::crypto::CryptoProvider>,
    roots: rustls::RootCertStore,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::clone(provider))
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

// ---------------------------------------------------------------------------- delivery

/// Why a delivery attempt failed (see the module documentation for what is retried).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The receiver answered a status other than 2xx.
    #[error("the receiver answered HTTP {status}")]
    Status {
        /// The HTTP status.
        status: u16,
    },
    /// Connection, TLS, HTTP or time-out failure: worth retrying.
    #[error("{0}")]
    Transport(String),
    /// Cannot be delivered as it is: retrying will not help.
    #[error("{0}")]
    Permanent(String),
}

impl DeliveryError {
    /// Whether retrying cannot help: a 1xx/3xx/4xx status other than 408 and 429, or a
    /// [`DeliveryError::Permanent`] reason.
    pub fn is_permanent(&self) -> bool {
        match self {
            DeliveryError::Status { status } => {
                !(*status >= 500 || *status == 408 || *status == 429)
            }
            DeliveryError::Transport(_) => false,
            DeliveryError::Permanent(_) => true,
        }
    }

    /// The HTTP status, when the receiver answered one.
    pub fn status(&self) -> Option<u16> {
        match self {
            DeliveryError::Status { status } => Some(*status),
            _ => None,
        }
    }

    /// The error for the outbox worker: a permanent one fails the row at once, any other is
    /// retried with backoff.
    pub fn into_outbox_error(self) -> anyhow::Error {
        if self.is_permanent() {
            anyhow::Error::new(crate::outbox::PermanentError(self.to_string()))
        } else {
            anyhow::Error::new(self)
        }
    }
}

/// One request to send.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    /// The endpoint ([`check_webhook_url`]).
    pub url: &'a str,
    /// The HMAC key.
    pub secret: &'a [u8],
    /// `Smdpp-Event-Id` (the body's `id`).
    pub event_id: &'a str,
    /// `Smdpp-Event-Type` (the body's `type`).
    pub event_type: &'a str,
    /// The JSON body, sent and signed as these exact bytes.
    pub body: &'a str,
    /// The signature's `t` (Unix seconds).
    pub now: i64,
}

/// POSTs `d` once over a fresh connection (HTTPS with `tls`, or plain HTTP to a loopback
/// address), within `timeout` for connect, TLS and the response head. `Ok(status)` for a
/// 2xx answer.
pub async fn deliver(
    tls: &Arc<rustls::ClientConfig>,
    d: &Delivery<'_>,
    timeout: Duration,
) -> Result<u16, DeliveryError> {
    check_webhook_url(d.url).map_err(|why| DeliveryError::Permanent(format!("URL: {why}")))?;
    let status = tokio::time::timeout(timeout, post(tls, d))
        .await
        .map_err(|_| {
            DeliveryError::Transport(format!("time-out after {} s", timeout.as_secs_f32()))
        })??;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(DeliveryError::Status { status })
    }
}

fn transport(what: &str, e: impl std::fmt::Display) -> DeliveryError {
    DeliveryError::Transport(format!("{what}: {e}"))
}

async fn post(tls: &Arc<rustls::ClientConfig>, d: &Delivery<'_>) -> Result<u16, DeliveryError> {
    let bad = |why: &str| DeliveryError::Permanent(why.to_owned());
    let uri: hyper::Uri = d.url.trim().parse().map_err(|_| bad("URL: not a URL"))?;
    let https = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("https"));
    let authority = uri
        .authority()
        .ok_or_else(|| bad("URL: no host"))?
        .as_str()
        .to_owned();
    let host = uri
        .host()
        .ok_or_else(|| bad("URL: no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let signature = sign(d.secret, d.now, d.body.as_bytes());
    let req = hyper::Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("smdpp-webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header(SIGNATURE_HEADER, signature)
        .header(EVENT_ID_HEADER, d.event_id)
        .header(EVENT_TYPE_HEADER, d.event_type)
        .body(Full::new(Bytes::from(d.body.to_owned())))
        .map_err(|_| bad("the event id or type is not a valid header value"))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| transport("connect", e))?;
    if https {
        let name = ServerName::try_from(host).map_err(|_| bad("URL: invalid host"))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
            .connect(name, tcp)
            .await
            .map_err(|e| transport("TLS handshake", e))?;
        send(hyper_util::rt::TokioIo::new(stream), req).await
    } else {
        send(hyper_util::rt::TokioIo::new(tcp), req).await
    }
}

async fn send<IO>(io: IO, req: hyper::Request<Full<Bytes>>) -> Result<u16, DeliveryError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| transport("HTTP handshake", e))?;
    let conn = tokio::spawn(conn);
    let resp = sender.send_request(req).await;
    // The answer's body is not read: only the status counts.
    conn.abort();
    Ok(resp.map_err(|e| transport("sending", e))?.status().as_u16())
}

/// The public body of a `webhook` outbox row and its type: the row's event facts
/// (`smdpp_store::EventFacts`) as a [`WebhookBody`] whose `id` is the row id; a row whose
/// body already is a [`WebhookBody`] is sent as stored.
pub fn row_body(row: &OutboxRow) -> Result<(String, String), DeliveryError> {
    if let Ok(f) = EventFacts::from_json(&row.body) {
        let event: WebhookEvent = f.signal.as_str().parse().map_err(|_| {
            DeliveryError::Permanent(format!("unknown event {:?}", f.signal.as_str()))
        })?;
        let body = WebhookBody {
            id: row.id.clone(),
            event_type: event.type_name().to_owned(),
            occurred_at: rfc3339_utc(f.at),
            iccid: Some(f.iccid),
            imsi: f.imsi,
            eid: f.eid,
            profile_type: f.profile_type,
            operator_id: f.operator_id,
            state: Some(f.state.as_str().to_owned()),
            detail: f.detail,
        };
        return Ok((body.to_json(), body.event_type));
    }
    match serde_json::from_str::<WebhookBody>(&row.body) {
        Ok(b) => Ok((row.body.clone(), b.event_type)),
        Err(_) => Err(DeliveryError::Permanent(
            "the stored body is not a webhook event".into(),
        )),
    }
}

/// The current Unix time in seconds.
fn unix_now() -> i64 {
    now_ms().div_euclid(1000)
}

/// Delivers one attempt of a `webhook` outbox row (see the module documentation): the
/// webhook `row.target` is looked up in `store`, its secret opened with `factory`, the body
/// built by [`row_body`] and POSTed with [`deliver`] (trust from `tls`, at most `timeout`).
/// `Ok(status)` when delivered; a webhook removed since the event is a permanent failure.
pub async fn deliver_row(
    factory: &Factory,
    store: &Store,
    tls: &WebhookTls,
    row: &OutboxRow,
    timeout: Duration,
) -> Result<u16, DeliveryError> {
    if row.kind != OutboxKind::Webhook {
        return Err(DeliveryError::Permanent(format!(
            "not a webhook row ({})",
            row.kind
        )));
    }
    let id = row
        .target
        .as_deref()
        .ok_or_else(|| DeliveryError::Permanent("webhook row without a target".into()))?;
    let hook = store
        .get_webhook(id)
        .await
        .map_err(|e| DeliveryError::Transport(format!("store: {e}")))?
        .ok_or_else(|| {
            DeliveryError::Permanent(format!(
                "webhook {id} was removed; the event is not delivered"
            ))
        })?;
    let (body, event_type) = row_body(row)?;
    send_to(factory, tls, &hook, &row.id, &event_type, &body, timeout).await
}

async fn send_to(
    factory: &Factory,
    tls: &WebhookTls,
    hook: &Webhook,
    event_id: &str,
    event_type: &str,
    body: &str,
    timeout: Duration,
) -> Result<u16, DeliveryError> {
    check_webhook_url(&hook.url)
        .map_err(|why| DeliveryError::Permanent(format!("webhook {}: URL: {why}", hook.id)))?;
    let secret = open_secret(factory, hook).await.map_err(|e| {
        DeliveryError::Permanent(format!(
            "the secret of webhook {} does not open: {e}",
            hook.id
        ))
    })?;
    let config = tls.for_webhook(hook)?;
    deliver(
        &config,
        &Delivery {
            url: &hook.url,
            secret: &secret,
            event_id,
            event_type,
            body,
            now: unix_now(),
        },
        timeout,
    )
    .await
}

/// Sends a `webhook.test` event to the webhook `id` now (not through the outbox):
/// `Ok(status)` for a 2xx answer.
pub async fn send_test(
    factory: &Factory,
    store: &Store,
    tls: &WebhookTls,
    id: &str,
    timeout: Duration,
) -> anyhow::Result<u16> {
    let hook = store
        .get_webhook(id)
        .await?
        .ok_or_else(|| anyhow!("no webhook {id:?}"))?;
    let mut body = WebhookBody::new(format!("test:{}", new_id()), WebhookEvent::Test, now_ms());
    body.operator_id = hook.operator_id.clone();
    body.detail = Some("sent by `smdpp webhooks test`".into());
    let json = body.to_json();
    send_to(
        factory,
        tls,
        &hook,
        &body.id,
        &body.event_type,
        &json,
        timeout,
    )
    .await
    .map_err(|e| anyhow!("webhook {id}: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_whsec_base64url_of_32_bytes() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_ne!(a.as_str(), b.as_str());
        let rest = a.strip_prefix(SECRET_PREFIX).unwrap();
        assert_eq!(rest.len(), 43);
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(rest)
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert_eq!(check_secret(&a), Ok(()));
    }

    #[test]
    fn rejects_unusable_secrets() {
        for bad in [
            "short",
            "has a space in it, long enough",
            &"x".repeat(513),
            "tab\there-long-enough",
        ] {
            assert!(check_secret(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_secret("0123456789abcdef"), Ok(()));
    }

    #[test]
    fn rejects_webhook_urls_that_cannot_be_delivered_to() {
        for ok in [
            "https://billing.example/hooks",
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "HTTP://LOCALHOST:9/x",
            "http://[::1]:9000/",
        ] {
            assert_eq!(check_webhook_url(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            (
                "http://billing.example/hook",
                "http:// is only allowed to 127.0.0.1, [::1] or localhost (use https://)",
            ),
            (
                "http://127.0.0.2/hook",
                "http:// is only allowed to 127.0.0.1, [::1] or localhost (use https://)",
            ),
            (
                "http://user:pw@127.0.0.1/",
                "user information is not allowed in it",
            ),
            ("http://127.0.0.1/?token=1", "a query is not allowed in it"),
            ("ftp://billing.example", "not an https:// URL"),
            ("billing.example/hook", "not an https:// URL"),
            ("https://", "not a URL"),
        ] {
            assert_eq!(check_webhook_url(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn statuses_are_classified() {
        let s = |status| DeliveryError::Status { status }.is_permanent();
        assert!(!s(500) && !s(503) && !s(408) && !s(429));
        assert!(s(400) && s(401) && s(404) && s(410) && s(301));
        assert!(!DeliveryError::Transport("x".into()).is_permanent());
        assert!(DeliveryError::Permanent("x".into()).is_permanent());
        let e = DeliveryError::Status { status: 404 }.into_outbox_error();
        assert!(e.is::<crate::outbox::PermanentError>());
        let e = DeliveryError::Status { status: 503 }.into_outbox_error();
        assert!(!e.is::<crate::outbox::PermanentError>());
        assert_eq!(e.to_string(), "the receiver answered HTTP 503");
    }

    #[test]
    fn row_bodies_become_public_events() {
        let facts = EventFacts {
            event_id: "evt-9".into(),
            signal: smdpp_store::Signal::Installed,
            at: 1_796_613_674_123,
            iccid: "8988247000000000018".into(),
            imsi: Some("001010000000001".into()),
            eid: Some("89049032123451234512345678901235".into()),
            profile_type: Some("retail".into()),
            operator_id: Some("op-a".into()),
            state: smdpp_store::ProfileState::Installed,
            detail: None,
        };
        let row = OutboxRow {
            seq: 1,
            id: "webhook:wh_1:9".into(),
            operator_id: Some("op-a".into()),
            kind: OutboxKind::Webhook,
            iccid: Some(facts.iccid.clone()),
            target: Some("wh_1".into()),
            body: facts.to_json(),
            state: smdpp_store::OutboxState::Pending,
            attempts: 0,
            last_error: None,
            created_at: 0,
            next_attempt_at: 0,
            lease_until: None,
            finished_at: None,
        };
        let (body, ty) = row_body(&row).unwrap();
        assert_eq!(ty, "profile.installed");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "id": "webhook:wh_1:9",
                "type": "profile.installed",
                "occurredAt": "2026-12-07T03:21:14.123Z",
                "iccid": "8988247000000000018",
                "imsi": "001010000000001",
                "eid": "89049032123451234512345678901235",
                "profileType": "retail",
                "operatorId": "op-a",
                "state": "installed",
            })
        );
        // A body stored in the public form is sent as it is.
        let public = OutboxRow {
            body: body.clone(),
            ..row.clone()
        };
        assert_eq!(row_body(&public).unwrap(), (body, ty));
        let junk = OutboxRow {
            body: "[1]".into(),
            ..row
        };
        assert_eq!(
            row_body(&junk).unwrap_err().to_string(),
            "the stored body is not a webhook event"
        );
    }
}
