//! The ES9+ JSON binding over HTTP (SGP.22 v2.2 sections 6.2, 6.3, 6.5): the axum router.
//!
//! Routes: `POST /gsma/rsp2/es9plus/{initiateAuthentication, authenticateClient,
//! getBoundProfilePackage, handleNotification, cancelSession}` and `GET /healthz` (200 `ok`).
//! Any other path is 404, another method on an ES9+ path is 405 (with `Allow: POST`).
//!
//! Every ES9+ request goes through these steps, in order; the first failure is answered with
//! **HTTP 200** and `{"header":{"functionExecutionStatus":{"status":"Failed","statusCodeData":
//! {...}}}}` (section 6.3: a function execution status, success or error, is HTTP 200; lpac
//! throws away the body of any non-2xx answer):
//!
//! 1. `X-Admin-Protocol` must be `gsma/rsp/v<x.y[.z]>` with major version 2 or 3 (the prefix is
//!    matched case-insensitively). Section 6.2 says requests SHALL carry it, and lpac always
//!    does, so by default a missing header fails with `1.3.2/2.2` (Protocol Version / Mandatory
//!    Element Missing); [`Es9HttpConfig::require_admin_protocol`] `= false` accepts it missing.
//!    Another value fails with `1.3.2/3.1` (Protocol Version / Unsupported).
//! 2. `Content-Type` must be `application/json`, optionally with `charset=UTF-8` (any case,
//!    quoted or not; other parameters ignored). Missing, another type (including the ASN.1
//!    binding `application/x-gsma-rsp-asn1`, which we do not implement) or another charset
//!    fails with `1.3.1/2.1` (Protocol Format / Invalid).
//! 3. The body is read up to [`Es9HttpConfig::body_limit`] bytes (a larger `Content-Length` is
//!    refused before reading): too large is the one transport-level answer, **HTTP 413** with
//!    the `1.3.1/2.1` status as JSON and `Connection: close`, sent after reading and discarding
//!    up to 8 times the limit of what the client still sends (so that the answer is not lost
//!    to a connection reset). It is read before a slot is taken, so that slow uploads do not
//!    hold processing slots.
//! 4. A slot among [`Es9HttpConfig::max_in_flight`] concurrent requests is awaited; if none
//!    frees up before the request time-out: `1.2/5.1` (Function Provider / Inaccessible).
//! 5. The JSON is checked by [`smdpp_core::es9_json::parse_request`]: not JSON / wrong type /
//!    bad base64 / out of bounds `1.3.1/2.1`, a mandatory member absent `1.3.1/2.2`.
//! 6. The [`Es9Service`] method runs in its own task, bounded by the time left of
//!    [`Es9HttpConfig::request_timeout`]: its `Err` is reported as is; a time-out or panic
//!    becomes `1.2/4.2` (Function Provider / Execution Error).
//!
//! Successful answers: HTTP 200 with `Content-Type: application/json;charset=UTF-8` and the
//! response message, except HandleNotification (MEP Notification, section 6.3): HTTP 204 with
//! an empty body and no Content-Type. CancelSession answers a header-only message (6.5.2.10).
//!
//! One exception for notifications: a HandleNotification whose service call fails with
//! `1.2/5.1` (Inaccessible), or cannot get a slot, is answered HTTP 503 so that the LPA keeps
//! the notification and retries later; any other failure is HTTP 200 `Failed`, which LPAs
//! treat as acknowledged.
//!
//! Every response (errors included) carries `X-Admin-Protocol` with **our** version
//! ([`Es9HttpConfig::admin_protocol`], default `gsma/rsp/v2.2.0`): section 6.2 says the header
//! indicates the highest version supported by the *sender*, so the request's value is not
//! echoed.
//!
//! Logging: one `tracing` event per request with method, path, HTTP status, latency, the
//! transactionId (once parsed) and the SGP.22 status code of a failure. Request and response
//! bodies are never logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode as HttpStatus};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde::Serialize;
use smdpp_core::es9_json::{
    AuthenticateClientRequest, CancelSessionRequest, EmptyBody, Es9Request,
    GetBoundProfilePackageRequest, HandleNotificationRequest, InitiateAuthenticationRequest,
    ResponseMessage, parse_request,
};
use smdpp_core::status::{
    Es9Error, FUNCTION_PROVIDER_EXECUTION_ERROR, FUNCTION_PROVIDER_INACCESSIBLE,
    PROTOCOL_FORMAT_INVALID, PROTOCOL_VERSION_MISSING, PROTOCOL_VERSION_UNSUPPORTED, StatusCode,
};
use tokio::sync::Semaphore;

use crate::service::Es9Service;

/// The `X-Admin-Protocol` header name (section 6.2).
pub const X_ADMIN_PROTOCOL: HeaderName = HeaderName::from_static("x-admin-protocol");

/// The Content-Type of our JSON responses.
pub const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";

/// Settings of the ES9+ HTTP binding. [`Default`] gives production-sane values.
#[derive(Clone, Debug)]
pub struct Es9HttpConfig {
    /// Largest accepted request body in bytes (default 1 MiB).
    pub body_limit: usize,
    /// Time allowed for one request from routing to response: reading the body, waiting for a
    /// slot and the service call (default 30 s).
    pub request_timeout: Duration,
    /// Requests processed at the same time across all connections (default 64).
    pub max_in_flight: usize,
    /// Whether a request without `X-Admin-Protocol` is refused (default `true`).
    pub require_admin_protocol: bool,
    /// The `X-Admin-Protocol` value sent on responses (default `gsma/rsp/v2.2.0`).
    pub admin_protocol: HeaderValue,
    /// Per-client-address limits on ES9+ (see [`crate::abuse`]).
    pub abuse: crate::abuse::AbuseLimits,
}

impl Default for Es9HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_in_flight: 64,
            require_admin_protocol: true,
            admin_protocol: HeaderValue::from_static("gsma/rsp/v2.2.0"),
            abuse: crate::abuse::AbuseLimits::default(),
        }
    }
}

struct Shared<S> {
    service: Arc<S>,
    config: Es9HttpConfig,
    slots: Arc<Semaphore>,
}

/// What the handler tells the logging middleware (kept in the response extensions).
#[derive(Clone, Debug, Default)]
pub(crate) struct LogInfo {
    pub(crate) transaction_id: Option<String>,
    pub(crate) failure: Option<StatusCode>,
    /// The body was over the limit: answered 413.
    pub(crate) payload_too_large: bool,
}

/// Builds the router serving ES9+ with `service`, plus `GET /healthz`.
pub fn router<S: Es9Service>(service: Arc<S>, config: Es9HttpConfig) -> Router {
    let slots = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let guard = crate::abuse::AbuseGuard::new(config.abuse.clone());
    let shared = Arc::new(Shared {
        service,
        config,
        slots,
    });
    Router::new()
        .route(
            InitiateAuthenticationRequest::FUNCTION.path(),
            post(es9_handler::<S, InitiateAuthenticationRequest>),
        )
        .route(
            AuthenticateClientRequest::FUNCTION.path(),
            post(es9_handler::<S, AuthenticateClientRequest>),
        )
        .route(
            GetBoundProfilePackageRequest::FUNCTION.path(),
            post(es9_handler::<S, GetBoundProfilePackageRequest>),
        )
        .route(
            HandleNotificationRequest::FUNCTION.path(),
            post(es9_handler::<S, HandleNotificationRequest>),
        )
        .route(
            CancelSessionRequest::FUNCTION.path(),
            post(es9_handler::<S, CancelSessionRequest>),
        )
        .with_state(shared)
        .layer(middleware::from_fn(move |request, next| {
            crate::abuse::limit(Arc::clone(&guard), request, next)
        }))
        .route("/healthz", get(healthz))
        .layer(middleware::from_fn(log_requests))
}

async fn healthz() -> &'static str {
    "ok"
}

/// Connects a request type to its service method.
trait Dispatch<S: Es9Service>: Es9Request {
    /// The response body type.
    type Output: Serialize + Send + 'static;
    /// Calls the service.
    fn call(self, service: &S) -> impl Future<Output = Result<Self::Output, Es9Error>> + Send;
}

impl<S: Es9Service> Dispatch<S> for InitiateAuthenticationRequest {
    type Output = smdpp_core::es9_json::InitiateAuthenticationResponse;
    fn call(self, service: &S) -> impl Future<Output = Result<Self::Output, Es9Error>> + Send {
        service.initiate_authentication(self)
    }
}

impl<S: Es9Service> Dispatch<S> for AuthenticateClientRequest {
    type Output = smdpp_core::es9_json::AuthenticateClientAnswer;
    fn call(self, service: &S) -> impl Future<Output = Result<Self::Output, Es9Error>> + Send {
        service.authenticate_client(self)
    }
}

impl<S: Es9Service> Dispatch<S> for GetBoundProfilePackageRequest {
    type Output = smdpp_core::es9_json::GetBoundProfilePackageResponse;
    fn call(self, service: &S) -> impl Future<Output = Result<Self::Output, Es9Error>> + Send {
        service.get_bound_profile_package(self)
    }
}

impl<S: Es9Service> Dispatch<S> for HandleNotificationRequest {
    type Output = EmptyBody;
    fn call(self, service: &S) -> impl Future<Output = Result<Self::Output, Es9Error>> + Send {
        let fut = service.handle_notification(self);
        async move { fut.await.map(|()| EmptyBody {}) }
    }
}

impl<S: Es9Service> Dispatch<S> for CancelSessionRequest {
    type Output = EmptyBody;
    fn call(self, service: &S) -> impl Future<Output = Result<Self::Output, Es9Error>> + Send {
        let fut = service.cancel_session(self);
        async move { fut.await.map(|()| EmptyBody {}) }
    }
}

/// One ES9+ function call: checks, body, parse, service, response.
async fn es9_handler<S, R>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    body: Body,
) -> Response
where
    S: Es9Service,
    R: Dispatch<S>,
{
    let deadline = tokio::time::Instant::now() + shared.config.request_timeout;
    let mut log = LogInfo::default();
    let result = run_call::<S, R>(&shared, &headers, body, deadline, &mut log).await;
    let admin = shared.config.admin_protocol.clone();
    let mut response = match result {
        Ok(output) if R::FUNCTION.is_notification() => {
            drop(output);
            (HttpStatus::NO_CONTENT, [(X_ADMIN_PROTOCOL, admin)]).into_response()
        }
        Ok(output) => json_response(&ResponseMessage::success(output), admin),
        Err(error) if log.payload_too_large => {
            log.failure = Some(error.code.clone());
            let body = serde_json::to_vec(&ResponseMessage::<R::Output>::failed(&error))
                .unwrap_or_default();
            payload_too_large(body, admin)
        }
        Err(error) => {
            log.failure = Some(error.code.clone());
            if R::FUNCTION.is_notification() && error.code == FUNCTION_PROVIDER_INACCESSIBLE {
                (HttpStatus::SERVICE_UNAVAILABLE, [(X_ADMIN_PROTOCOL, admin)]).into_response()
            } else {
                json_response(&ResponseMessage::<R::Output>::failed(&error), admin)
            }
        }
    };
    response.extensions_mut().insert(log);
    response
}

async fn run_call<S, R>(
    shared: &Shared<S>,
    headers: &HeaderMap,
    body: Body,
    deadline: tokio::time::Instant,
    log: &mut LogInfo,
) -> Result<R::Output, Es9Error>
where
    S: Es9Service,
    R: Dispatch<S>,
{
    check_admin_protocol(headers, shared.config.require_admin_protocol)?;
    check_content_type(headers)?;

    // The body is read (size- and time-bounded) before taking an in-flight slot, so that a
    // slow upload does not hold one of the slots meant for processing.
    let bytes = match read_body(headers, body, shared.config.body_limit, deadline).await {
        Ok(b) => b,
        Err(e) => {
            log.payload_too_large = e.too_large;
            return Err(e.error);
        }
    };
    let permit = tokio::time::timeout_at(deadline, Arc::clone(&shared.slots).acquire_owned())
        .await
        .map_err(|_| Es9Error::new(FUNCTION_PROVIDER_INACCESSIBLE, "server busy, retry later"))?
        .map_err(|_| Es9Error::new(FUNCTION_PROVIDER_INACCESSIBLE, "server shutting down"))?;
    let request = parse_request::<R>(&bytes)?;
    drop(bytes);
    log.transaction_id = request.transaction_id().map(|t| t.to_hex());

    let service = Arc::clone(&shared.service);
    let task = tokio::spawn(tokio::time::timeout_at(deadline, async move {
        let _permit = permit;
        request.call(&service).await
    }));
    match task.await {
        Ok(Ok(result)) => result,
        Ok(Err(_elapsed)) => Err(Es9Error::new(
            FUNCTION_PROVIDER_EXECUTION_ERROR,
            "request timed out",
        )),
        Err(join_error) => {
            tracing::error!(
                function = R::FUNCTION.name(),
                panic = join_error.is_panic(),
                "ES9+ service task failed"
            );
            Err(Es9Error::new(
                FUNCTION_PROVIDER_EXECUTION_ERROR,
                "internal error",
            ))
        }
    }
}

/// Step 1: `X-Admin-Protocol: gsma/rsp/v2.*` or `v3.*`.
pub(crate) fn check_admin_protocol(headers: &HeaderMap, required: bool) -> Result<(), Es9Error> {
    let mut values = headers.get_all(&X_ADMIN_PROTOCOL).iter();
    let Some(value) = values.next() else {
        return if required {
            Err(Es9Error::new(
                PROTOCOL_VERSION_MISSING,
                "X-Admin-Protocol header is missing",
            ))
        } else {
            Ok(())
        };
    };
    if values.next().is_none() && value.to_str().is_ok_and(admin_protocol_supported) {
        Ok(())
    } else {
        Err(Es9Error::new(
            PROTOCOL_VERSION_UNSUPPORTED,
            "unsupported X-Admin-Protocol; gsma/rsp/v2.x.y or v3.x.y expected",
        ))
    }
}

/// Whether an `X-Admin-Protocol` value names SGP.22 major version 2 or 3.
pub fn admin_protocol_supported(value: &str) -> bool {
    const PREFIX: &str = "gsma/rsp/v";
    let value = value.trim();
    let Some(head) = value.get(..PREFIX.len()) else {
        return false;
    };
    if !head.eq_ignore_ascii_case(PREFIX) {
        return false;
    }
    let parts: Vec<&str> = value[PREFIX.len()..].split('.').collect();
    (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
        && matches!(parts[0], "2" | "3")
}

/// Step 2: `Content-Type: application/json[;charset=UTF-8]`.
pub(crate) fn check_content_type(headers: &HeaderMap) -> Result<(), Es9Error> {
    let invalid = || {
        Es9Error::new(
            PROTOCOL_FORMAT_INVALID,
            "Content-Type must be application/json (charset UTF-8)",
        )
    };
    let value = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(invalid)?;
    if content_type_is_json(value) {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// Whether a Content-Type value is `application/json`, with at most a UTF-8 charset.
pub fn content_type_is_json(value: &str) -> bool {
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|param| {
        let Some((name, val)) = param.split_once('=') else {
            return param.trim().is_empty();
        };
        if !name.trim().eq_ignore_ascii_case("charset") {
            return true;
        }
        let val = val.trim();
        let val = val
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(val);
        val.eq_ignore_ascii_case("utf-8") || val.eq_ignore_ascii_case("utf8")
    })
}

/// Step 3: read at most `limit` bytes before `deadline`.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    deadline: tokio::time::Instant,
) -> Result<axum::body::Bytes, BodyError> {
    let too_large = || BodyError {
        error: Es9Error::new(
            PROTOCOL_FORMAT_INVALID,
            format!("request body larger than {limit} bytes"),
        ),
        too_large: true,
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        drain(body, limit, deadline).await;
        return Err(too_large());
    }
    let mut body = body;
    let mut buf = Vec::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(BodyError::from(Es9Error::new(
                    FUNCTION_PROVIDER_EXECUTION_ERROR,
                    "timed out reading the request body",
                )));
            }
            Ok(None) => return Ok(buf.into()),
            Ok(Some(Err(_))) => {
                return Err(BodyError::from(Es9Error::new(
                    PROTOCOL_FORMAT_INVALID,
                    "could not read the request body",
                )));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                drain(body, limit, deadline).await;
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
}

/// A body that failed to read, and whether because it is over the limit (answered 413).
#[derive(Debug)]
pub(crate) struct BodyError {
    pub(crate) error: Es9Error,
    pub(crate) too_large: bool,
}

impl From<Es9Error> for BodyError {
    fn from(error: Es9Error) -> Self {
        BodyError {
            error,
            too_large: false,
        }
    }
}

/// Reads and discards what is left of an oversized body (at most [`DRAIN_FACTOR`] times the
/// limit, within the request's deadline), so that the 413 answer reaches the client: closing
/// a connection with unread data makes the kernel send a reset, and clients then report the
/// reset instead of the answer.
async fn drain(mut body: Body, limit: usize, deadline: tokio::time::Instant) {
    let cap = limit.saturating_mul(DRAIN_FACTOR);
    let mut seen = 0usize;
    while seen <= cap {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                seen += frame.data_ref().map_or(0, |d| d.len());
            }
            _ => return,
        }
    }
}

/// How much of an oversized body is read and discarded before answering 413.
const DRAIN_FACTOR: usize = 8;

/// The answer to a request whose body is over the limit: 413 with the same
/// `1.3.1/2.1` function execution status as JSON, and `Connection: close`.
pub(crate) fn payload_too_large(message: Vec<u8>, admin: HeaderValue) -> Response {
    (
        HttpStatus::PAYLOAD_TOO_LARGE,
        [
            (CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE)),
            (
                axum::http::header::CONNECTION,
                HeaderValue::from_static("close"),
            ),
            (X_ADMIN_PROTOCOL, admin),
        ],
        message,
    )
        .into_response()
}

/// A 200 JSON response. Serializing our own types cannot fail in practice; if it did, a fixed
/// `1.2/4.2` message is sent instead.
pub(crate) fn json_response<T: Serialize>(message: &T, admin: HeaderValue) -> Response {
    const FALLBACK: &str = r#"{"header":{"functionExecutionStatus":{"status":"Failed","statusCodeData":{"subjectCode":"1.2","reasonCode":"4.2","message":"internal error"}}}}"#;
    let body = match serde_json::to_vec(message) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "could not serialize an ES9+ response");
            FALLBACK.as_bytes().to_vec()
        }
    };
    (
        HttpStatus::OK,
        [
            (CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE)),
            (X_ADMIN_PROTOCOL, admin),
        ],
        body,
    )
        .into_response()
}

/// Logs one line per request; never the body.
pub(crate) async fn log_requests(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let version = request.version();
    let response = next.run(request).await;
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    let info = response.extensions().get::<LogInfo>();
    let transaction_id = info.and_then(|i| i.transaction_id.as_deref());
    let failure = info.and_then(|i| i.failure.as_ref()).map(|c| c.to_string());
    tracing::info!(
        %method,
        path,
        ?version,
        status = response.status().as_u16(),
        latency_ms,
        transaction_id,
        es9_failure = failure.as_deref(),
        "request"
    );
    crate::metrics::global().request(
        &path,
        response.status().as_u16(),
        latency_ms / 1000.0,
        info.and_then(|i| i.failure.as_ref()),
    );
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn admin_protocol_values() {
        for ok in [
            "gsma/rsp/v2.2.2",
            "gsma/rsp/v2.0.0",
            "gsma/rsp/v3.1.0",
            "GSMA/RSP/v2.5",
            " gsma/rsp/v2.1.0 ",
        ] {
            assert!(admin_protocol_supported(ok), "{ok}");
        }
        for bad in [
            "",
            "gsma/rsp/v1.0.0",
            "gsma/rsp/v4.0.0",
            "gsma/rsp/v2",
            "gsma/rsp/v2.x.0",
            "gsma/rsp/v2..0",
            "gsma/rsp/v2.2.2.2",
            "gsma/rsp/2.2.2",
            "gsma/rsp/v22.2.2",
            "gsma/rsp/vé",
        ] {
            assert!(!admin_protocol_supported(bad), "{bad}");
        }
    }

    #[test]
    fn content_type_values() {
        for ok in [
            "application/json",
            "application/json;charset=UTF-8",
            "Application/JSON; charset=utf-8",
            "application/json; charset=\"UTF-8\"",
            "application/json;",
        ] {
            assert!(content_type_is_json(ok), "{ok}");
        }
        for bad in [
            "",
            "text/plain",
            "application/x-gsma-rsp-asn1",
            "application/json; charset=ISO-8859-1",
            "application/jsonx",
            "application/json garbage",
        ] {
            assert!(!content_type_is_json(bad), "{bad}");
        }
    }
}
