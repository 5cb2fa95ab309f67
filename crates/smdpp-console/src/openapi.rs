//! The OpenAPI 3.0 document of the admin listener, served at its `GET /openapi.json`: the
//! operations endpoints (`/metrics`, `/healthz`, `/readyz`) and the console's JSON API. The
//! ES2+ interface and the certificate-authenticated admin API keep their own document on the
//! ES9+/ES2+ listener (`smdpp_server::openapi`).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The document.
pub fn console_openapi() -> Value {
    let errors = json!({
        "401": {"description": "not logged in, or the session expired",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        "503": {"description": "database unreachable",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    });
    let with = |extra: Value| {
        let mut r = errors.clone();
        if let (Some(r), Some(e)) = (r.as_object_mut(), extra.as_object()) {
            r.extend(e.clone());
        }
        r
    };
    json!({
        "openapi": "3.0.3",
        "info": {"title": "smdpp admin listener: operations and console API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Plain HTTP on the admin listener (default 127.0.0.1:8081). The console API \
                uses the session cookie of a console log-in (POST /login, form fields username and password)."},
        "paths": {
            "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus metrics (text format 0.0.4)",
                "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/healthz": {"get": {"operationId": "healthz", "summary": "The process is alive",
                "responses": {"200": {"description": "ok"}}}},
            "/readyz": {"get": {"operationId": "readyz", "summary": "Database reachable and keys loaded",
                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready, with the reason"}}}},
            "/console/api/dashboard": {"get": {"operationId": "consoleDashboard",
                "summary": "Downloads and failures per minute, profiles by state, failures by SGP.22 code, outbox depth",
                "security": [{"consoleSession": []}],
                "responses": with(json!({"200": {"description": "dashboard",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Dashboard"}}}}}))}},
            "/console/api/profiles": {"get": {"operationId": "consoleProfiles",
                "summary": "Search the inventory (within the user's operator)",
                "security": [{"consoleSession": []}],
                "parameters": [
                    {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "ICCID, EID or IMSI"},
                    {"name": "state", "in": "query", "schema": {"type": "string"}},
                    {"name": "type", "in": "query", "schema": {"type": "string"}},
                    {"name": "operator", "in": "query", "schema": {"type": "string"}}],
                "responses": with(json!({"200": {"description": "profiles (at most 200)",
                    "content": {"application/json": {"schema": {"type": "array",
                        "items": {"$ref": "#/components/schemas/Profile"}}}}}}))}},
            "/console/api/profiles/{iccid}": {"get": {"operationId": "consoleProfile",
                "summary": "One profile with its timeline and outbound calls",
                "security": [{"consoleSession": []}],
                "parameters": [{"name": "iccid", "in": "path", "required": true,
                    "schema": {"type": "string", "pattern": "^[0-9]{19}[0-9F]?$"}}],
                "responses": with(json!({
                    "200": {"description": "the profile", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Profile"}}}},
                    "404": {"description": "unknown, or another operator's", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}))}}
        },
        "components": {
            "securitySchemes": {"consoleSession": {"type": "apiKey", "in": "cookie", "name": crate::auth::COOKIE}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"],
                    "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
                "Profile": {"type": "object", "required": ["iccid", "state"], "properties": {
                    "iccid": {"type": "string"}, "state": {"type": "string"},
                    "profileType": {"type": "string", "nullable": true},
                    "operator": {"type": "string", "nullable": true},
                    "eid": {"type": "string", "nullable": true},
                    "downloadAttempts": {"type": "integer"},
                    "errorCause": {"type": "string", "nullable": true},
                    "updatedAt": {"type": "string"},
                    "timeline": {"type": "array", "items": {"type": "object"}},
                    "outbound": {"type": "array", "items": {"type": "object"}}}},
                "Dashboard": {"type": "object", "properties": {
                    "perMinute": {"type": "array", "items": {"type": "object", "properties": {
                        "minute": {"type": "string"}, "downloads": {"type": "integer"}, "failed": {"type": "integer"}}}},
                    "profilesByState": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "failuresByCode": {"type": "array", "items": {"type": "object"}},
                    "outbox": {"type": "object", "nullable": true}}}
            }
        }
    })
}

/// `GET /openapi.json`.
pub async fn document() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        console_openapi().to_string(),
    )
        .into_response()
}
