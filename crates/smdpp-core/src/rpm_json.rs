//! JSON bodies of the operator calls for installed profiles: `ES2+.RpmOrder` (SGP.22 v3
//! Remote Profile Management) and our `DeactivateSubscription` beside ES2+.
//!
//! The v3 JSON schema of RpmOrder was not available (see `../shared/docs/rpm-v3-digest.md`
//! §5.1): the members follow the v3 procedure text as quoted publicly: `eid`, `rpmScript`
//! (base64 of the DER `RpmPackage`), `matchingId`. As our own extension, an operator may send
//! `iccid` and a list of `commands` instead of `rpmScript`, and the SM-DP+ builds the
//! package:
//!
//! ```json
//! {"header":{...},"iccid":"8900...","commands":[
//!   {"command":"disable","continueOnFailure":true},{"command":"delete"}]}
//! ```
//!
//! `updateMetadata` in that form takes the profile type's current metadata (service
//! provider name, profile name, icon, PPRs) unless `metadata` gives the values.
//!
//! Exactly one of `rpmScript` and `commands` is required (`1.3.1/2.2` when neither is
//! present, `1.3.1/2.1` when both are); `commands` needs `iccid` (`8.2.1/2.3`).

use serde::{Deserialize, Serialize};

use crate::es2_json::{
    Eid, Es2Call, Es2Error, Es2Function, Es2Request, Es2RequestHeader, Iccid, de_opt_matching_id,
};
use crate::status::{
    EID_INVALID, ICCID_CONDITIONAL_MISSING, PROTOCOL_FORMAT_INVALID,
    PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING,
};

/// Largest `rpmScript` accepted (DER bytes). SGP.22 v3 bounds the package the eUICC takes
/// (`commandPackageTooLarge`); 1057 bytes is the value publicly described. Larger packages
/// are refused at order time with `1.3.1/2.1`.
pub const MAX_RPM_PACKAGE: usize = 1057;

/// Commands in one order of the `commands` form.
pub const MAX_COMMANDS: usize = 8;

/// One command of the `commands` form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RpmCommandName {
    /// Enable the profile.
    Enable,
    /// Disable the profile.
    Disable,
    /// Delete the profile.
    Delete,
    /// Read the profile's ProfileInfo.
    ListProfileInfo,
    /// Update the profile's metadata.
    UpdateMetadata,
}

impl RpmCommandName {
    /// The name as written on the command line and in `commands`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RpmCommandName::Enable => "enable",
            RpmCommandName::Disable => "disable",
            RpmCommandName::Delete => "delete",
            RpmCommandName::ListProfileInfo => "listProfileInfo",
            RpmCommandName::UpdateMetadata => "updateMetadata",
        }
    }
}

/// Metadata values for `updateMetadata` (each optional; absent ones are not changed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataValues {
    /// serviceProviderName (at most 32 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_provider_name: Option<String>,
    /// profileName (at most 64 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
}

/// One entry of `commands`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpmCommandSpec {
    /// Which command.
    pub command: RpmCommandName,
    /// Go on with the next command if this one fails.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continue_on_failure: bool,
    /// For `updateMetadata`: the values; absent = the profile type's current metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataValues>,
}

/// `ES2+.RpmOrder` request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpmOrderRequest {
    /// Request header.
    pub header: Es2RequestHeader,
    /// The eUICC (when given, it must be the one the profiles are on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<Eid>,
    /// base64 of the DER `RpmPackage`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_b64",
        rename = "rpmScript"
    )]
    pub rpm_script: Option<Vec<u8>>,
    /// The profile, for the `commands` form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iccid: Option<Iccid>,
    /// The commands, in order (our extension; see the module documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<RpmCommandSpec>>,
    /// MatchingID for the order (generated when absent).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_matching_id"
    )]
    pub matching_id: Option<String>,
}

impl Es2Request for RpmOrderRequest {
    const FUNCTION: Es2Function = Es2Function::RpmOrder;
    const REQUIRED_FIELDS: &'static [&'static str] = &[];
    fn header(&self) -> &Es2RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), Es2Error> {
        if let Some(e) = &self.eid
            && !e.check_digits_ok()
        {
            return Err(Es2Error::new(EID_INVALID, "the EID check digits are wrong"));
        }
        if let Some(m) = &self.matching_id {
            crate::es2_json::validate_matching_id(m)?;
        }
        match (&self.rpm_script, &self.commands) {
            (None, None) => Err(Es2Error::new(
                PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING,
                "mandatory element 'rpmScript' is missing (or give 'iccid' and 'commands')",
            )),
            (Some(_), Some(_)) => Err(Es2Error::new(
                PROTOCOL_FORMAT_INVALID,
                "give either 'rpmScript' or 'commands', not both",
            )),
            (Some(s), None) if s.is_empty() || s.len() > MAX_RPM_PACKAGE => Err(Es2Error::new(
                PROTOCOL_FORMAT_INVALID,
                format!("rpmScript must be 1 to {MAX_RPM_PACKAGE} bytes"),
            )),
            (Some(_), None) => Ok(()),
            (None, Some(c)) => {
                if self.iccid.is_none() {
                    return Err(Es2Error::new(
                        ICCID_CONDITIONAL_MISSING,
                        "'commands' needs 'iccid'",
                    ));
                }
                if c.is_empty() || c.len() > MAX_COMMANDS {
                    return Err(Es2Error::new(
                        PROTOCOL_FORMAT_INVALID,
                        format!("'commands' must hold 1 to {MAX_COMMANDS} commands"),
                    ));
                }
                Ok(())
            }
        }
    }
    fn into_call(self) -> Es2Call {
        Es2Call::RpmOrder(self)
    }
}

/// `ES2+.RpmOrder` response body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpmOrderResponse {
    /// The order's MatchingID (also its id in `smdpp orders show`).
    pub matching_id: String,
}

/// Why a subscription is deactivated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeactivationReason {
    /// The device was lost.
    Lost,
    /// The device was stolen.
    Stolen,
    /// The subscription ended.
    Terminated,
}

impl DeactivationReason {
    /// The name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeactivationReason::Lost => "lost",
            DeactivationReason::Stolen => "stolen",
            DeactivationReason::Terminated => "terminated",
        }
    }
}

/// What to do with an installed profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeactivationMode {
    /// Disable it on the eUICC (RPM disable).
    Disable,
    /// Delete it from the eUICC (RPM disable, continuing on failure, then delete).
    Delete,
}

impl DeactivationMode {
    /// The name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeactivationMode::Disable => "disable",
            DeactivationMode::Delete => "delete",
        }
    }
}

/// `DeactivateSubscription` request (our function beside ES2+, same header and
/// authentication): end a subscription whatever state its profile is in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeactivateRequest {
    /// Request header.
    pub header: Es2RequestHeader,
    /// The profile.
    pub iccid: Iccid,
    /// Why.
    pub reason: DeactivationReason,
    /// What to do when the profile is on an eUICC (default disable).
    #[serde(default = "default_mode")]
    pub mode: DeactivationMode,
}

fn default_mode() -> DeactivationMode {
    DeactivationMode::Disable
}

impl Es2Request for DeactivateRequest {
    const FUNCTION: Es2Function = Es2Function::DeactivateSubscription;
    const REQUIRED_FIELDS: &'static [&'static str] = &["iccid", "reason"];
    fn header(&self) -> &Es2RequestHeader {
        &self.header
    }
    fn validate(&self) -> Result<(), Es2Error> {
        Ok(())
    }
    fn into_call(self) -> Es2Call {
        Es2Call::DeactivateSubscription(self)
    }
}

/// `DeactivateSubscription` response body: what was done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeactivateResponse {
    /// `orderCancelled` (the pending order was cancelled, Table 6b), `retired` (the profile
    /// was delivered but not reported installed, or in Error: Unavailable), `rpmQueued` (an
    /// RPM disable/delete waits for the eUICC) or `recorded` (the eUICC cannot be reached by
    /// RPM; only the operator's systems are told).
    pub action: String,
    /// The profile's state after the call.
    pub state: String,
    /// The MatchingID of the queued RPM order, when one was queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching_id: Option<String>,
}

mod opt_b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        if text.len() > 4 * super::MAX_RPM_PACKAGE {
            return Err(serde::de::Error::custom("rpmScript is too long"));
        }
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(Some)
            .map_err(|_| serde::de::Error::custom("rpmScript is not base64"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::es2_json::parse_es2_request;
    use crate::status::StatusCode;

    const H: &str =
        r#""header":{"functionRequesterIdentifier":"op1","functionCallIdentifier":"c1"}"#;

    fn code(body: &str) -> StatusCode {
        parse_es2_request::<RpmOrderRequest>(body.as_bytes())
            .unwrap_err()
            .code
    }

    #[test]
    fn commands_form_parses() {
        let body = format!(
            r#"{{{H},"iccid":"8999901000000000018","commands":[{{"command":"disable","continueOnFailure":true}},{{"command":"delete"}}]}}"#
        );
        let r: RpmOrderRequest = parse_es2_request(body.as_bytes()).unwrap();
        let c = r.commands.unwrap();
        assert_eq!(c.len(), 2);
        assert!(c[0].continue_on_failure);
        assert_eq!(c[1].command, RpmCommandName::Delete);
    }

    #[test]
    fn script_form_parses() {
        let body =
            format!(r#"{{{H},"eid":"89049032123451234512345678901235","rpmScript":"MA4="}}"#);
        let r: RpmOrderRequest = parse_es2_request(body.as_bytes()).unwrap();
        assert_eq!(r.rpm_script.unwrap(), vec![0x30, 0x0E]);
    }

    #[test]
    fn rejects_neither_or_both_forms() {
        assert_eq!(code(&format!("{{{H}}}")).to_string(), "1.3.1/2.2");
        assert_eq!(
            code(&format!(
                r#"{{{H},"iccid":"8999901000000000018","rpmScript":"MA4=","commands":[{{"command":"enable"}}]}}"#
            ))
            .to_string(),
            "1.3.1/2.1"
        );
    }

    #[test]
    fn rejects_commands_without_iccid_empty_or_unknown() {
        assert_eq!(
            code(&format!(r#"{{{H},"commands":[{{"command":"enable"}}]}}"#)).to_string(),
            "8.2.1/2.3"
        );
        assert_eq!(
            code(&format!(
                r#"{{{H},"iccid":"8999901000000000018","commands":[]}}"#
            ))
            .to_string(),
            "1.3.1/2.1"
        );
        assert_eq!(
            code(&format!(
                r#"{{{H},"iccid":"8999901000000000018","commands":[{{"command":"reboot"}}]}}"#
            ))
            .to_string(),
            "1.3.1/2.1"
        );
    }

    #[test]
    fn rejects_bad_or_oversized_script() {
        assert_eq!(
            code(&format!(r#"{{{H},"rpmScript":"not base64!"}}"#)).to_string(),
            "1.3.1/2.1"
        );
        let big = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            vec![0u8; MAX_RPM_PACKAGE + 1],
        );
        assert_eq!(
            code(&format!(r#"{{{H},"rpmScript":"{big}"}}"#)).to_string(),
            "1.3.1/2.1"
        );
        assert_eq!(
            code(&format!(r#"{{{H},"rpmScript":""}}"#)).to_string(),
            "1.3.1/2.1"
        );
    }

    #[test]
    fn deactivate_parses_with_default_mode_and_rejects_unknown_reason() {
        let body = format!(r#"{{{H},"iccid":"8999901000000000018","reason":"stolen"}}"#);
        let r: DeactivateRequest = parse_es2_request(body.as_bytes()).unwrap();
        assert_eq!(r.mode, DeactivationMode::Disable);
        assert_eq!(r.reason, DeactivationReason::Stolen);
        let bad = format!(r#"{{{H},"iccid":"8999901000000000018","reason":"bored"}}"#);
        assert_eq!(
            parse_es2_request::<DeactivateRequest>(bad.as_bytes())
                .unwrap_err()
                .code
                .to_string(),
            "1.3.1/2.1"
        );
        let missing = format!(r#"{{{H},"iccid":"8999901000000000018"}}"#);
        assert_eq!(
            parse_es2_request::<DeactivateRequest>(missing.as_bytes())
                .unwrap_err()
                .code
                .to_string(),
            "1.3.1/2.2"
        );
    }
}
