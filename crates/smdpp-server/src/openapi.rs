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
                "summary": match f {
                    Es2Function::RpmOrder => "ES2+.RpmOrder (SGP.22 v3 Remote Profile Management)".to_owned(),
                    Es2Function::DeactivateSubscription => "DeactivateSubscription (smdpp, beside ES2+): end a subscription whatever the profile's state".to_owned(),
                    _ => format!("ES2+.{name} (SGP.22 v2.2 section 5.3)"),
                },
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
                "ReleaseProfileResponse": response(json!({}), &[]),
                "RpmOrderRequest": with_header(json!({
                    "eid": eid, "matchingId": matching_id,
                    "rpmScript": {"type": "string", "format": "byte",
                        "description": "base64 of the DER RpmPackage (SGP.22 v3); or give iccid + commands"},
                    "iccid": iccid,
                    "commands": {"type": "array", "minItems": 1,
                        "maxItems": smdpp_core::rpm_json::MAX_COMMANDS,
                        "items": {"type": "object", "properties": {
                            "command": {"type": "string", "enum":
                                ["enable", "disable", "delete", "listProfileInfo", "updateMetadata"]},
                            "continueOnFailure": {"type": "boolean"},
                            "metadata": {"type": "object", "properties": {
                                "serviceProviderName": {"type": "string", "maxLength": 32},
                                "profileName": {"type": "string", "maxLength": 64}}}},
                            "required": ["command"]}}}), &[]),
                "RpmOrderResponse": response(json!({"matchingId": {"type": "string"}}), &[]),
                "DeactivateSubscriptionRequest": with_header(json!({
                    "iccid": iccid,
                    "reason": {"type": "string", "enum": ["lost", "stolen", "terminated"]},
                    "mode": {"type": "string", "enum": ["disable", "delete"], "default": "disable"}}),
                    &["iccid", "reason"]),
                "DeactivateSubscriptionResponse": response(json!({
                    "action": {"type": "string", "enum": ["orderCancelled", "retired", "rpmQueued", "recorded"]},
                    "state": {"type": "string"},
                    "matchingId": {"type": "string"}}), &[]),
                "HandleDownloadProgressInfoCallback": {"type": "object",
                    "description": "What the SM-DP+ POSTs to the operator's callback URL (ES2+.HandleDownloadProgressInfo, SGP.22 5.3.5). notificationPointId: 1 eligibility, 2 confirmation failure, 3 BPP download, 4 BPP installation (Table 32a); custom points (Table 32a note 1): 100 enabled, 101 disabled, 102 deleted (resultData = the eUICC-signed notification), 103 RPM result (resultData = the LoadRpmPackageResult), 104 deactivation (deactivationReason, deactivationMode)",
                    "properties": {
                        "header": {"$ref": "#/components/schemas/RequestHeader"},
                        "eid": eid, "iccid": iccid, "profileType": {"type": "string"},
                        "timestamp": {"type": "string"},
                        "notificationPointId": {"type": "integer", "enum": [1, 2, 3, 4, 100, 101, 102, 103, 104]},
                        "notificationPointStatus": {"$ref": "#/components/schemas/FunctionExecutionStatus"},
                        "resultData": {"type": "string", "format": "byte"},
                        "deactivationReason": {"type": "string", "enum": ["lost", "stolen", "terminated"]},
                        "deactivationMode": {"type": "string", "enum": ["disable", "delete"]}},
                    "required": ["header", "iccid", "profileType", "timestamp", "notificationPointId", "notificationPointStatus"]}
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
        assert_eq!(paths.len(), 6 + 3); // ES2+ (with RpmOrder and ours) and the admin API
        assert!(
            doc["components"]["schemas"]["HandleDownloadProgressInfoCallback"]["description"]
                .as_str()
                .unwrap()
                .contains("100 enabled")
        );
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
