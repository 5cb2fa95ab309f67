//! The OpenAPI 3.0 document of our ES2+ interface, served at `GET /openapi.json`.
//!
//! Hand-written from the JSON schemas of SGP.22 v2.2 sections 6.5.1 (header,
//! functionExecutionStatus) and 6.5.2.1-6.5.2.4 (bodies), with the field names of
//! [`smdpp_core::es2_json`] and our length bounds.

use serde_json::{Value, json};
use smdpp_core::es2_json::{Es2Function, limits};

/// The OpenAPI document (OpenAPI 3.0.3).
pub fn es2_openapi() -> Value {
    let iccid = json!({"type": "string", "pattern": "^[0-9]{19}[0-9F]?$",
        "description": "ICCID (SGP.22 5.2.1); a trailing F is accepted and dropped"});
    let eid = json!({"type": "string", "pattern": "^[0-9]{32}$",
        "description": "EID; the check digits (mod 97 = 1) are verified"});
    let matching_id = json!({"type": "string", "pattern": "^[0-9A-Z-]*$",
        "maxLength": limits::MATCHING_ID, "description": "MatchingID (SGP.22 4.1.1)"});
    let mut paths = serde_json::Map::new();
    for f in Es2Function::ALL {
        let name = f.name();
        paths.insert(
            f.path().to_owned(),
            json!({"post": {
                "operationId": name,
                "summary": format!("ES2+.{name} (SGP.22 v2.2 section 5.3)"),
                "parameters": [{"name": "X-Admin-Protocol", "in": "header", "required": true,
                    "schema": {"type": "string", "example": "gsma/rsp/v2.2.0"}}],
                "requestBody": {"required": true, "content": {"application/json": {
                    "schema": {"$ref": format!("#/components/schemas/{name}Request")}}}},
                "responses": {"200": {"description": "Function execution status (success or failure)",
                    "content": {"application/json": {
                        "schema": {"$ref": format!("#/components/schemas/{name}Response")}}}}},
                "security": [{"mutualTLS": []}]
            }}),
        );
    }
    paths.extend(crate::admin::openapi_paths());
    let with_header = |props: Value, required: &[&str]| {
        let mut p = props;
        if let Some(o) = p.as_object_mut() {
            o.insert(
                "header".into(),
                json!({"$ref": "#/components/schemas/RequestHeader"}),
            );
        }
        let mut req: Vec<&str> = vec!["header"];
        req.extend_from_slice(required);
        json!({"type": "object", "properties": p, "required": req})
    };
    let response = |props: Value, required: &[&str]| {
        let mut p = props;
        if let Some(o) = p.as_object_mut() {
            o.insert(
                "header".into(),
                json!({"$ref": "#/components/schemas/ResponseHeader"}),
            );
        }
        let mut req: Vec<&str> = vec!["header"];
        req.extend_from_slice(required);
        json!({"type": "object", "properties": p, "required": req,
            "description": "Body members are present only when the status is Executed-*"})
    };
    json!({
        "openapi": "3.0.3",
        "info": {"title": "smdpp ES2+ (GSMA SGP.22 v2.2)", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"mutualTLS": {"type": "mutualTLS",
                "description": "TLS client certificate registered for the operator (SGP.22 6.1)"}},
            "schemas": {
                "RequestHeader": {"type": "object", "properties": {
                    "functionRequesterIdentifier": {"type": "string", "minLength": 1,
                        "maxLength": limits::HEADER_STRING,
                        "description": "The operator id of the client certificate"},
                    "functionCallIdentifier": {"type": "string", "minLength": 1,
                        "maxLength": limits::HEADER_STRING,
                        "description": "Per-operator call id; a replay returns the stored response"}},
                    "required": ["functionRequesterIdentifier", "functionCallIdentifier"]},
                "StatusCodeData": {"type": "object", "properties": {
                    "subjectCode": {"type": "string"}, "reasonCode": {"type": "string"},
                    "subjectIdentifier": {"type": "string"}, "message": {"type": "string"}},
                    "required": ["subjectCode", "reasonCode"]},
                "FunctionExecutionStatus": {"type": "object", "properties": {
                    "status": {"type": "string", "enum":
                        ["Executed-Success", "Executed-WithWarning", "Failed", "Expired"]},
                    "statusCodeData": {"$ref": "#/components/schemas/StatusCodeData"}},
                    "required": ["status"]},
                "ResponseHeader": {"type": "object", "properties": {
                    "functionExecutionStatus": {"$ref": "#/components/schemas/FunctionExecutionStatus"}},
                    "required": ["functionExecutionStatus"]},
                "DownloadOrderRequest": with_header(json!({
                    "eid": eid, "iccid": iccid,
                    "profileType": {"type": "string", "minLength": 1, "maxLength": limits::PROFILE_TYPE}}), &[]),
                "DownloadOrderResponse": response(json!({"iccid": iccid}), &[]),
                "ConfirmOrderRequest": with_header(json!({
                    "iccid": iccid, "eid": eid, "matchingId": matching_id,
                    "confirmationCode": {"type": "string", "minLength": 1,
                        "maxLength": limits::CONFIRMATION_CODE},
                    "smdsAddress": {"type": "string", "maxLength": limits::SMDS_ADDRESS},
                    "releaseFlag": {"type": "boolean"}}), &["iccid", "releaseFlag"]),
                "ConfirmOrderResponse": response(json!({
                    "eid": eid, "matchingId": {"type": "string"}, "smdpAddress": {"type": "string"}}), &[]),
                "CancelOrderRequest": with_header(json!({
                    "iccid": iccid, "eid": eid, "matchingId": matching_id,
                    "finalProfileStatusIndicator": {"type": "string", "enum": ["Available", "Unavailable"]}}),
                    &["iccid", "finalProfileStatusIndicator"]),
                "CancelOrderResponse": response(json!({}), &[]),
                "ReleaseProfileRequest": with_header(json!({"iccid": iccid}), &["iccid"]),
                "ReleaseProfileResponse": response(json!({}), &[])
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_four_paths_with_schemas() {
        let doc = es2_openapi();
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 4 + 3); // ES2+ and the admin API
        for f in Es2Function::ALL {
            let op = &paths[f.path()]["post"];
            let req_ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap();
            let resp_ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap();
            for r in [req_ref, resp_ref] {
                let name = r.trim_start_matches("#/components/schemas/");
                let schema = &doc["components"]["schemas"][name];
                assert_eq!(schema["type"], "object", "{name}");
                assert!(
                    schema["required"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|v| v == "header")
                );
            }
        }
        let confirm = &doc["components"]["schemas"]["ConfirmOrderRequest"];
        for field in [
            "iccid",
            "eid",
            "matchingId",
            "confirmationCode",
            "smdsAddress",
            "releaseFlag",
        ] {
            assert!(confirm["properties"].get(field).is_some(), "{field}");
        }
    }
}
