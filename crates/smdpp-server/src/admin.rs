//! A minimal admin API for operators, on the same HTTPS listener as ES9+ and ES2+:
//!
//! - `GET /smdpp/admin/v1/orders/{iccid}/activation-code`: JSON
//!   `{"iccid", "state", "activationCode"}`;
//! - `GET /smdpp/admin/v1/orders/{iccid}/qr.png`: the Activation Code as a QR code (PNG);
//! - `GET /smdpp/admin/v1/orders/{iccid}/qr.svg`: the same as SVG.
//!
//! Callers are authenticated exactly as on ES2+ ([`crate::es2`]): the [`ClientCertificate`]
//! the listener took from the TLS session, mapped to an operator by [`Es2Service::identify`].
//! Without a certificate (always so on a plain-HTTP listener) the answer is 401, with a
//! certificate of no known operator 403. An order of another operator and an unknown (or
//! malformed) ICCID get the same 404; an order not in a state with an Activation Code
//! (Confirmed, Released, Downloaded) gets 409. Errors are `{"error": code, "message": text}`.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::Serialize;
use serde_json::{Value, json};
use smdpp_core::ActivationCode;

use crate::es2::{ClientCertificate, Es2Caller, Es2Service};
use crate::http::log_requests;

/// The admin path prefix.
pub const ADMIN_PREFIX: &str = "/smdpp/admin/v1";

/// An order's Activation Code, as the admin API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrderActivationCode {
    /// The ICCID as stored (no trailing F).
    pub iccid: String,
    /// The profile state (lower case, as stored).
    pub state: String,
    /// `LPA:1$<SM-DP+ address>$<MatchingID>[$$1]`.
    #[serde(rename = "activationCode")]
    pub activation_code: String,
}

/// Why an admin lookup failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminError {
    /// Unknown ICCID, or not the caller's: answered identically (404).
    NotFound,
    /// The order has no Activation Code in its current state (409).
    Conflict(String),
    /// A back-end failure (503).
    Unavailable,
}

/// The SM-DP+ side of the admin API, free of HTTP.
pub trait AdminService: Send + Sync + 'static {
    /// The Activation Code of `iccid` (as given in the path, a trailing F allowed) if it is
    /// an order of `operator_id`.
    fn activation_code(
        &self,
        operator_id: &str,
        iccid: &str,
    ) -> impl Future<Output = Result<OrderActivationCode, AdminError>> + Send;
}

struct Shared<I, A> {
    identity: Arc<I>,
    admin: Arc<A>,
}

#[derive(Clone, Copy)]
enum Format {
    Json,
    Png,
    Svg,
}

/// The admin routes; `identity` authenticates callers as ES2+ does, `admin` looks orders up.
pub fn admin_router<I: Es2Service, A: AdminService>(identity: Arc<I>, admin: Arc<A>) -> Router {
    let shared = Arc::new(Shared { identity, admin });
    let route = |format: Format| {
        get(
            move |state: State<Arc<Shared<I, A>>>,
                  cert: Option<Extension<ClientCertificate>>,
                  iccid: Path<String>| handler(format, state, cert, iccid),
        )
    };
    Router::new()
        .route(
            &format!("{ADMIN_PREFIX}/orders/{{iccid}}/activation-code"),
            route(Format::Json),
        )
        .route(
            &format!("{ADMIN_PREFIX}/orders/{{iccid}}/qr.png"),
            route(Format::Png),
        )
        .route(
            &format!("{ADMIN_PREFIX}/orders/{{iccid}}/qr.svg"),
            route(Format::Svg),
        )
        .with_state(shared)
        .layer(axum::middleware::from_fn(log_requests))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json!({"error": code, "message": message}).to_string(),
    )
        .into_response()
}

async fn caller<I: Es2Service>(
    identity: &I,
    cert: Option<Extension<ClientCertificate>>,
) -> Result<Es2Caller, Response> {
    let Some(Extension(cert)) = cert else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "the admin API requires a TLS client certificate",
        ));
    };
    identity.identify(&cert.0).await.map_err(|_| {
        error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the TLS client certificate is not registered for any operator",
        )
    })
}

async fn handler<I: Es2Service, A: AdminService>(
    format: Format,
    State(shared): State<Arc<Shared<I, A>>>,
    cert: Option<Extension<ClientCertificate>>,
    Path(iccid): Path<String>,
) -> Response {
    let caller = match caller(shared.identity.as_ref(), cert).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let order = match shared
        .admin
        .activation_code(&caller.operator_id, &iccid)
        .await
    {
        Ok(o) => o,
        Err(AdminError::NotFound) => {
            return error(StatusCode::NOT_FOUND, "not_found", "no such order");
        }
        Err(AdminError::Conflict(m)) => return error(StatusCode::CONFLICT, "conflict", &m),
        Err(AdminError::Unavailable) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "retry later",
            );
        }
    };
    let internal = || {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    };
    let (content_type, body): (&'static str, Vec<u8>) = match format {
        Format::Json => match serde_json::to_vec(&order) {
            Ok(b) => ("application/json", b),
            Err(_) => return internal(),
        },
        Format::Png | Format::Svg => {
            let Ok(ac) = ActivationCode::parse(&order.activation_code) else {
                return internal();
            };
            let drawn = if let Format::Png = format {
                smdpp_core::qr::png(&ac).map(|b| ("image/png", b))
            } else {
                smdpp_core::qr::svg(&ac).map(|s| ("image/svg+xml", s.into_bytes()))
            };
            match drawn {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "QR code rendering failed");
                    return internal();
                }
            }
        }
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// The admin paths for the OpenAPI document.
pub(crate) fn openapi_paths() -> serde_json::Map<String, Value> {
    let iccid = json!({"name": "iccid", "in": "path", "required": true,
        "schema": {"type": "string", "pattern": "^[0-9]{18,20}[Ff]?$"}});
    let errors = json!({
        "401": {"description": "no TLS client certificate"},
        "403": {"description": "client certificate of no known operator"},
        "404": {"description": "no such order of the caller (unknown or another operator's)"},
        "409": {"description": "the order is not Confirmed, Released or Downloaded"}
    });
    let op = |id: &str, summary: &str, content: Value| {
        let mut responses = errors.clone();
        if let Some(o) = responses.as_object_mut() {
            o.insert(
                "200".into(),
                json!({"description": summary, "content": content}),
            );
        }
        json!({"get": {"operationId": id, "summary": summary, "parameters": [iccid.clone()],
            "responses": responses, "security": [{"mutualTLS": []}]}})
    };
    let mut paths = serde_json::Map::new();
    paths.insert(
        format!("{ADMIN_PREFIX}/orders/{{iccid}}/activation-code"),
        op(
            "adminActivationCode",
            "The order's Activation Code",
            json!({"application/json": {"schema": {"type": "object",
                "required": ["iccid", "state", "activationCode"],
                "properties": {"iccid": {"type": "string"}, "state": {"type": "string"},
                    "activationCode": {"type": "string"}}}}}),
        ),
    );
    paths.insert(
        format!("{ADMIN_PREFIX}/orders/{{iccid}}/qr.png"),
        op(
            "adminQrPng",
            "The Activation Code as a QR code (PNG)",
            json!({"image/png": {"schema": {"type": "string", "format": "binary"}}}),
        ),
    );
    paths.insert(
        format!("{ADMIN_PREFIX}/orders/{{iccid}}/qr.svg"),
        op(
            "adminQrSvg",
            "The Activation Code as a QR code (SVG)",
            json!({"image/svg+xml": {"schema": {"type": "string"}}}),
        ),
    );
    paths
}
