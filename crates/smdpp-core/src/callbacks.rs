//! The JSON bodies of the calls the SM-DP+ makes (rather than serves):
//! ES2+.HandleDownloadProgressInfo to an operator (SGP.22 sections 5.3.5, 6.5.2.5) and
//! ES12.RegisterEvent / ES12.DeleteEvent to an SM-DS (sections 5.9.1, 5.9.2, 6.5.2.13,
//! 6.5.2.14), plus the status codes of Tables 32b and 32c.
//!
//! The bodies here carry no `header`: the sender adds it per attempt
//! ([`with_header`]), with `functionCallIdentifier` set to the stable id of the queued call.

use serde::{Deserialize, Serialize};

use crate::status::{FunctionExecutionStatus, StatusCode};

/// HTTP path of ES2+.HandleDownloadProgressInfo (section 6.5 function binding table).
pub const HDPI_PATH: &str = "/gsma/rsp2/es2plus/handleDownloadProgressInfo";
/// HTTP path of ES12.RegisterEvent.
pub const ES12_REGISTER_PATH: &str = "/gsma/rsp2/es12/registerEvent";
/// HTTP path of ES12.DeleteEvent.
pub const ES12_DELETE_PATH: &str = "/gsma/rsp2/es12/deleteEvent";

/// `notificationPointId` values of Table 32a ("Defined check points").
pub mod point {
    /// '1' -> Eligibility and retry limit check.
    pub const ELIGIBILITY: u32 = 1;
    /// '2' -> Confirmation Failure.
    pub const CONFIRMATION_FAILURE: u32 = 2;
    /// '3' -> BPP download.
    pub const BPP_DOWNLOAD: u32 = 3;
    /// '4' -> BPP installation.
    pub const BPP_INSTALLATION: u32 = 4;
    /// Custom point (Table 32a note 1: values from 100 are for the SM-DP+'s own use): the
    /// eUICC reported the profile enabled (an enable notification, v2 or v3 RPM).
    /// `resultData` is the base64 of the eUICC-signed notification as received.
    pub const ENABLED: u32 = 100;
    /// Custom point: the eUICC reported the profile disabled. `resultData` as for
    /// [`ENABLED`].
    pub const DISABLED: u32 = 101;
    /// Custom point: the eUICC reported the profile deleted. `resultData` as for
    /// [`ENABLED`].
    pub const DELETED: u32 = 102;
    /// Custom point: the result of a Remote Profile Management package (SGP.22 v3): status
    /// Executed-Success when every command succeeded, else Failed; `resultData` is the base64
    /// of the eUICC-signed LoadRpmPackageResult as received.
    pub const RPM_RESULT: u32 = 103;
    /// Custom point: the operator deactivated the subscription (`smdpp orders deactivate`);
    /// the profile's order was cancelled or an RPM disable/delete was queued.
    pub const DEACTIVATED: u32 = 104;
}

/// Table 32b: endUserRejection(0) -> `8.8.5/3.8` (Download Order - Refused).
pub const CANCEL_END_USER_REJECTION: StatusCode = StatusCode::new("8.8.5", "3.8");
/// Table 32b: pprNotAllowed(3) -> `8.2.8/1.2` (PPR - Not Allowed).
pub const CANCEL_PPR_NOT_ALLOWED: StatusCode = StatusCode::new("8.2.8", "1.2");
/// Table 32b: metadataMismatch(4) -> `8.2.9/3.11` (Profile Metadata - Value has Changed).
pub const CANCEL_METADATA_MISMATCH: StatusCode = StatusCode::new("8.2.9", "3.11");
/// Table 32b: loadBppExecutionError(5) -> `8.2.10/4.2` (Bound Profile Package - Execution
/// Error).
pub const CANCEL_LOAD_BPP_EXECUTION_ERROR: StatusCode = StatusCode::new("8.2.10", "4.2");
/// Table 32b: undefinedReason(127) -> `8/4.2` (eUICC Remote Provisioning - Execution Error).
pub const CANCEL_UNDEFINED_REASON: StatusCode = StatusCode::new("8", "4.2");

/// The status code of Table 32b for a CancelSession reason code (section 5.6.5), or `None`
/// for postponed(1) and timeout(2), which do not terminate the order and are not notified
/// (note under Table 32b). Reason codes the table does not list are reported as
/// undefinedReason.
pub fn cancel_reason_status(reason: i64) -> Option<StatusCode> {
    match reason {
        1 | 2 => None,
        0 => Some(CANCEL_END_USER_REJECTION),
        3 => Some(CANCEL_PPR_NOT_ALLOWED),
        4 => Some(CANCEL_METADATA_MISMATCH),
        5 => Some(CANCEL_LOAD_BPP_EXECUTION_ERROR),
        _ => Some(CANCEL_UNDEFINED_REASON),
    }
}

/// Body of ES2+.HandleDownloadProgressInfo (section 6.5.2.5) without the header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandleDownloadProgressInfo {
    /// EID, when known to the SM-DP+ (conditional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    /// ICCID of the order.
    pub iccid: String,
    /// Profile type of the order.
    pub profile_type: String,
    /// When the point was reached, `YYYY-MM-DDThh:mm:ssZ`.
    pub timestamp: String,
    /// Table 32a point ([`point`]).
    pub notification_point_id: u32,
    /// Outcome at that point.
    pub notification_point_status: FunctionExecutionStatus,
    /// base64 of the PIR's finalResult (point 4), of the eUICC-signed notification (points
    /// 100-102) or of the LoadRpmPackageResult (point 103).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_data: Option<String>,
    /// Point 104 only (our extension): why the subscription was deactivated (`lost`,
    /// `stolen`, `terminated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivation_reason: Option<String>,
    /// Point 104 only: what was asked for an installed profile (`disable`, `delete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivation_mode: Option<String>,
}

/// Body of ES12.RegisterEvent (section 6.5.2.13) without the header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterEvent {
    /// EID of the targeted eUICC.
    pub eid: String,
    /// Where the event is to be processed (our SM-DP+ address).
    pub rsp_server_address: String,
    /// Event id (the MatchingID, section 3.6.1).
    pub event_id: String,
    /// Cascade to the Root SM-DS.
    pub forwarding_indicator: bool,
}

/// Body of ES12.DeleteEvent (section 6.5.2.14) without the header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteEvent {
    /// EID of the targeted eUICC.
    pub eid: String,
    /// Event id given at registration.
    pub event_id: String,
}

/// Adds the ES2+/ES12 request `header` (section 6.5.1.3) to a stored body: the result is
/// `{"header":{"functionRequesterIdentifier":..,"functionCallIdentifier":..}, ...body}`.
/// A body that is not a JSON object is refused.
pub fn with_header(
    body: &str,
    requester: &str,
    call_id: &str,
) -> Result<String, serde_json::Error> {
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(body)?;
    v.insert(
        "header".to_owned(),
        serde_json::json!({
            "functionRequesterIdentifier": requester,
            "functionCallIdentifier": call_id,
        }),
    );
    serde_json::to_string(&v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn table_32b_mapping() {
        assert_eq!(cancel_reason_status(0), Some(CANCEL_END_USER_REJECTION));
        assert_eq!(cancel_reason_status(1), None);
        assert_eq!(cancel_reason_status(2), None);
        assert_eq!(cancel_reason_status(3), Some(CANCEL_PPR_NOT_ALLOWED));
        assert_eq!(cancel_reason_status(4), Some(CANCEL_METADATA_MISMATCH));
        assert_eq!(
            cancel_reason_status(5),
            Some(CANCEL_LOAD_BPP_EXECUTION_ERROR)
        );
        assert_eq!(cancel_reason_status(127), Some(CANCEL_UNDEFINED_REASON));
    }

    #[test]
    fn hdpi_json_shape() {
        let b = HandleDownloadProgressInfo {
            eid: None,
            iccid: "8900000000000000001".into(),
            profile_type: "t".into(),
            timestamp: "2026-01-01T00:00:00Z".into(),
            notification_point_id: point::BPP_DOWNLOAD,
            notification_point_status: FunctionExecutionStatus::success(),
            result_data: None,
            deactivation_reason: None,
            deactivation_mode: None,
        };
        let s = serde_json::to_string(&b).unwrap();
        let h = with_header(&s, "smdp", "id-1").unwrap();
        let v: serde_json::Value = serde_json::from_str(&h).unwrap();
        assert_eq!(v["header"]["functionCallIdentifier"], "id-1");
        assert_eq!(v["notificationPointId"], 3);
        assert_eq!(v["notificationPointStatus"]["status"], "Executed-Success");
        assert!(v.get("eid").is_none());
    }

    #[test]
    fn rejects_non_object_body() {
        assert!(with_header("[1]", "a", "b").is_err());
    }
}
