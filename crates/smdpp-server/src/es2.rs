//! The ES2+ JSON binding (SGP.22 v2.2 sections 5.3, 6.5.1, 6.5.2.1-6.5.2.4) over mutual TLS
//! (section 6.1): the axum routes `POST /gsma/rsp2/es2plus/{downloadOrder, confirmOrder,
//! cancelOrder, releaseProfile}` and `GET /openapi.json`.
//!
//! ES2+ is served on the same HTTPS listener as ES9+. The TLS configuration
//! ([`crate::tls::server_config_with_client_auth`]) requests a client certificate without
//! requiring one; the listener passes a presented certificate to the handlers as a
//! [`ClientCertificate`] request extension (it cannot be forged by a request header). Every
//! ES2+ request goes through these steps, the first failure being answered HTTP 200 with a
//! `Failed` functionExecutionStatus:
//!
//! 1. A client certificate must be present, else `1.1/1.1` (Function Requester / Unknown). On
//!    a plain-HTTP listener there never is one, so ES2+ is always refused there.
//! 2. `X-Admin-Protocol` and `Content-Type` as for ES9+ ([`crate::http`]).
//! 3. The body (size-limited), then an in-flight slot, as for ES9+.
//! 4. [`Es2Service::identify`] maps the certificate to an operator; unknown: `1.1/1.1`. The
//!    request never reaches the engine.
//! 5. The JSON is parsed and checked ([`smdpp_core::es2_json::parse_es2_call`]).
//! 6. `header.functionRequesterIdentifier` must be the operator's id, else `1.1/1.2`.
//! 7. [`Es2Service::execute`] runs (time-limited; a time-out or panic is `1.2/4.2`) and returns
//!    the complete response message, which is sent as is (so that a replayed
//!    functionCallIdentifier can be answered with the stored message).

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode as HttpStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use smdpp_core::es2_json::{Es2Call, Es2Error, Es2Function, parse_es2_call};
use smdpp_core::es9_json::{EmptyBody, ResponseMessage};
use smdpp_core::status::{
    FUNCTION_PROVIDER_EXECUTION_ERROR, FUNCTION_PROVIDER_INACCESSIBLE,
    FUNCTION_REQUESTER_NOT_ALLOWED, FUNCTION_REQUESTER_UNKNOWN,
};
use tokio::sync::Semaphore;

use crate::http::{
    Es9HttpConfig, JSON_CONTENT_TYPE, LogInfo, check_admin_protocol, check_content_type,
    json_response, log_requests, read_body,
};

/// The DER of the end-entity certificate a TLS client presented (inserted by the listener).
#[derive(Clone, Debug)]
pub struct ClientCertificate(pub Arc<[u8]>);

/// An authenticated ES2+ caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Es2Caller {
    /// The operator id (tenant); also the expected `functionRequesterIdentifier`.
    pub operator_id: String,
}

/// The SM-DP+ side of ES2+, free of HTTP.
pub trait Es2Service: Send + Sync + 'static {
    /// Maps a client certificate (DER) to an operator. `Err` (normally `1.1/1.1`) refuses the
    /// request before it is parsed.
    fn identify(
        &self,
        certificate_der: &[u8],
    ) -> impl Future<Output = Result<Es2Caller, Es2Error>> + Send;

    /// Executes a parsed, authorised call and returns the complete response message
    /// (`{"header":{"functionExecutionStatus":...}, ...}`), success or failure.
    fn execute(
        &self,
        caller: Es2Caller,
        call: Es2Call,
    ) -> impl Future<Output = serde_json::Value> + Send;
}

struct Shared<S> {
    service: Arc<S>,
    config: Es9HttpConfig,
    slots: Arc<Semaphore>,
}

/// The ES2+ routes and `GET /openapi.json`, to be merged with the ES9+ router.
pub fn es2_router<S: Es2Service>(service: Arc<S>, config: Es9HttpConfig) -> Router {
    let slots = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let shared = Arc::new(Shared {
        service,
        config,
        slots,
    });
    let mut router = Router::new();
    for f in Es2Function::ALL {
        router = router.route(
            f.path(),
            post(
                move |state: State<Arc<Shared<S>>>,
                      cert: Option<Extension<ClientCertificate>>,
                      headers: HeaderMap,
                      body: Body| { es2_handler(f, state, cert, headers, body) },
            ),
        );
    }
    router
        .with_state(shared)
        .route("/openapi.json", get(openapi))
        .layer(axum::middleware::from_fn(log_requests))
}

async fn openapi() -> Response {
    let body = serde_json::to_vec_pretty(&crate::openapi::es2_openapi()).unwrap_or_default();
    (
        HttpStatus::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static(JSON_CONTENT_TYPE),
        )],
        body,
    )
        .into_response()
}

async fn es2_handler<S: Es2Service>(
    function: Es2Function,
    State(shared): State<Arc<Shared<S>>>,
    cert: Option<Extension<ClientCertificate>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let admin = shared.config.admin_protocol.clone();
    let mut log = LogInfo::default();
    let message = match run_call(&shared, function, cert, &headers, body, &mut log).await {
        Ok(message) => {
            log.failure = failure_code(&message);
            message
        }
        Err(error) => {
            log.failure = Some(error.code.clone());
            match serde_json::to_value(ResponseMessage::<EmptyBody>::failed(&error)) {
                Ok(v) => v,
                Err(_) => serde_json::Value::Null,
            }
        }
    };
    let mut response = if log.payload_too_large {
        crate::http::payload_too_large(serde_json::to_vec(&message).unwrap_or_default(), admin)
    } else {
        json_response(&message, admin)
    };
    response.extensions_mut().insert(log);
    response
}

fn failure_code(message: &serde_json::Value) -> Option<smdpp_core::status::StatusCode> {
    let data = message
        .pointer("/header/functionExecutionStatus/statusCodeData")?
        .as_object()?;
    smdpp_core::status::StatusCode::parse(
        data.get("subjectCode")?.as_str()?,
        data.get("reasonCode")?.as_str()?,
    )
    .ok()
}

async fn run_call<S: Es2Service>(
    shared: &Shared<S>,
    function: Es2Function,
    cert: Option<Extension<ClientCertificate>>,
    headers: &HeaderMap,
    body: Body,
    log: &mut LogInfo,
) -> Result<serde_json::Value, Es2Error> {
    let deadline = tokio::time::Instant::now() + shared.config.request_timeout;
    // Step 1: mutual TLS (section 6.1).
    let Some(Extension(cert)) = cert else {
        return Err(Es2Error::new(
            FUNCTION_REQUESTER_UNKNOWN,
            "ES2+ requires a TLS client certificate (SGP.22 section 6.1)",
        ));
    };
    check_admin_protocol(headers, shared.config.require_admin_protocol)?;
    check_content_type(headers)?;
    // The body first (bounded), then a slot: a slow upload must not hold a processing slot.
    let bytes = match read_body(headers, body, shared.config.body_limit, deadline).await {
        Ok(b) => b,
        Err(e) => {
            log.payload_too_large = e.too_large;
            return Err(e.error);
        }
    };
    let permit = tokio::time::timeout_at(deadline, Arc::clone(&shared.slots).acquire_owned())
        .await
        .map_err(|_| Es2Error::new(FUNCTION_PROVIDER_INACCESSIBLE, "server busy, retry later"))?
        .map_err(|_| Es2Error::new(FUNCTION_PROVIDER_INACCESSIBLE, "server shutting down"))?;
    let caller = tokio::time::timeout_at(deadline, shared.service.identify(&cert.0))
        .await
        .map_err(|_| Es2Error::new(FUNCTION_PROVIDER_EXECUTION_ERROR, "request timed out"))??;
    let call = parse_es2_call(function, &bytes)?;
    drop(bytes);
    if call.header().function_requester_identifier != caller.operator_id {
        return Err(Es2Error::new(
            FUNCTION_REQUESTER_NOT_ALLOWED,
            "functionRequesterIdentifier is not the operator of the client certificate",
        ));
    }
    let service = Arc::clone(&shared.service);
    let task = tokio::spawn(tokio::time::timeout_at(deadline, async move {
        let _permit = permit;
        service.execute(caller, call).await
    }));
    match task.await {
        Ok(Ok(message)) => Ok(message),
        Ok(Err(_elapsed)) => Err(Es2Error::new(
            FUNCTION_PROVIDER_EXECUTION_ERROR,
            "request timed out",
        )),
        Err(join_error) => {
            tracing::error!(
                function = function.name(),
                panic = join_error.is_panic(),
                "ES2+ service task failed"
            );
            Err(Es2Error::new(
                FUNCTION_PROVIDER_EXECUTION_ERROR,
                "internal error",
            ))
        }
    }
}
