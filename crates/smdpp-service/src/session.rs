//! The persisted RSP session: one row per transactionId in the store's `rsp_sessions` table,
//! with an expiry and a version for compare-and-set.
//!
//! The state column drives the call order (SGP.22 section 3.1.2/3.1.3):
//!
//! ```text
//! initiated --AuthenticateClient--> authenticated
//! authenticated --GetBoundProfilePackage--> delivered
//! delivered --HandleNotification(PIR)--> ended
//! initiated --AuthenticateClient(RPM)--> authenticating --> rpm-delivered --result--> ended
//! authenticated|delivered|rpm-delivered --CancelSession--> ended
//! any failure of AuthenticateClient or GetBoundProfilePackage --> ended
//! ```
//!
//! A download call advances the session with ONE commit that also carries its profile
//! change (counted attempt, delivery, installation result), its outbox rows and its other
//! writes ([`smdpp_store::Store::transition_with_session_and`]), conditional on the session
//! version the call read: of two concurrent calls for one transaction exactly one commits,
//! the other gets `8.10.1/3.9` and writes nothing. `authenticating` is a claim taken first
//! only by the RPM branch of AuthenticateClient; `binding` was the claim of
//! GetBoundProfilePackage before it committed once, and is still understood (as in
//! progress) in sessions written by an older version. The blob holds no secret
//! (challenges, public keys, signatures, metadata).

use serde::{Deserialize, Serialize};

/// Session states (the `state` column).
pub mod state {
    /// After InitiateAuthentication.
    pub const INITIATED: &str = "initiated";
    /// AuthenticateClient in progress (claim).
    pub const AUTHENTICATING: &str = "authenticating";
    /// After AuthenticateClient.
    pub const AUTHENTICATED: &str = "authenticated";
    /// GetBoundProfilePackage in progress (the claim of older versions; no longer written).
    pub const BINDING: &str = "binding";
    /// BPP delivered, waiting for the ProfileInstallationResult.
    pub const DELIVERED: &str = "delivered";
    /// SGP.22 v3: an RPM package delivered (authenticateClientOkRpm), waiting for the
    /// LoadRpmPackageResult (or a CancelSession).
    pub const RPM_DELIVERED: &str = "rpm-delivered";
    /// Finished (PIR, CancelSession, or a failure). Kept until expiry to answer late calls.
    pub const ENDED: &str = "ended";
}

/// The phases of a persisted RSP session, and the only moves between them (the diagram of
/// the module doc). Every move the ES9+ engine makes goes through [`Phase::advance`];
/// InitiateAuthentication creates a session `initiated`, and a change of the order (ES2+
/// cancel, deactivation) ends every live session of that order at once
/// ([`smdpp_store::Store::transition_ending_sessions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// After InitiateAuthentication.
    Initiated,
    /// The RPM branch of AuthenticateClient in progress (claim); also the download claim
    /// of older versions.
    Authenticating,
    /// After AuthenticateClient: an order selected, smdpSigned2 sent.
    Authenticated,
    /// GetBoundProfilePackage in progress (the claim of older versions; never entered now).
    Binding,
    /// BPP delivered, waiting for the ProfileInstallationResult.
    Delivered,
    /// SGP.22 v3: an RPM package delivered, waiting for its result.
    RpmDelivered,
    /// Finished.
    Ended,
}

/// A move the phases do not allow (a bug in the caller, never peer input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IllegalMove {
    /// The phase the session is in (or its unknown stored name, as `None`).
    pub from: Option<Phase>,
    /// The phase asked for.
    pub to: Phase,
}

impl std::fmt::Display for IllegalMove {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.from {
            Some(from) => write!(
                f,
                "session cannot move from {} to {}",
                from.as_str(),
                self.to.as_str()
            ),
            None => write!(
                f,
                "session in an unknown state cannot move to {}",
                self.to.as_str()
            ),
        }
    }
}

impl Phase {
    /// Every phase.
    pub const ALL: [Phase; 7] = [
        Phase::Initiated,
        Phase::Authenticating,
        Phase::Authenticated,
        Phase::Binding,
        Phase::Delivered,
        Phase::RpmDelivered,
        Phase::Ended,
    ];

    /// The stored name (the `state` column).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Initiated => state::INITIATED,
            Phase::Authenticating => state::AUTHENTICATING,
            Phase::Authenticated => state::AUTHENTICATED,
            Phase::Binding => state::BINDING,
            Phase::Delivered => state::DELIVERED,
            Phase::RpmDelivered => state::RPM_DELIVERED,
            Phase::Ended => state::ENDED,
        }
    }

    /// The phase of a stored name.
    pub fn parse(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// Whether SGP.22 section 3.1.2/3.1.3 (as this server runs it) lets a session move
    /// from `self` to `to`:
    /// - InitiateAuthentication creates `initiated`;
    /// - AuthenticateClient: `initiated` -> `authenticated` (download), or `initiated` ->
    ///   `authenticating` -> `rpm-delivered` (v3 RPM);
    /// - GetBoundProfilePackage: `authenticated` -> `delivered` (`binding` -> `delivered`
    ///   for a claim written by an older version);
    /// - the result (PIR or LoadRpmPackageResult), CancelSession, a failure or the
    ///   order's change: any live phase -> `ended`.
    pub fn allows(self, to: Phase) -> bool {
        use Phase::*;
        matches!(
            (self, to),
            (Initiated, Authenticated | Authenticating)
                | (Authenticating, RpmDelivered | Authenticated)
                | (Authenticated | Binding, Delivered)
                | (
                    Initiated | Authenticating | Authenticated | Binding | Delivered | RpmDelivered,
                    Ended
                )
        )
    }

    /// The stored name to write when a session in stored state `from` moves to `to`, or
    /// the refusal.
    pub fn advance(from: &str, to: Phase) -> Result<&'static str, IllegalMove> {
        match Phase::parse(from) {
            Some(f) if f.allows(to) => Ok(to.as_str()),
            f => Err(IllegalMove { from: f, to }),
        }
    }
}

/// What the eUICC side of a session established in AuthenticateClient.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EuiccBinding {
    /// The EID from CERT.EUICC.ECDSA.
    pub eid: String,
    /// Curve name of PK.EUICC.ECDSA (`Curve::name`).
    pub curve: String,
    /// PK.EUICC.ECDSA, hex.
    pub public_key: String,
    /// The ICCID of the selected order.
    pub iccid: String,
    /// Whether a Confirmation Code is required.
    pub cc_required: bool,
    /// `smdpSignature2` as the complete `5F37` element, hex (covered by euiccSignature2).
    pub smdp_signature2_tlv: String,
    /// The StoreMetadataRequest sent as profileMetadata, hex (re-used in the BPP).
    pub profile_metadata: String,
    /// `bppEuiccOtpk` offered in smdpSigned2, hex.
    pub offered_otpk: Option<String>,
    /// The order generation: the profile version that AuthenticateClient's transition (the
    /// counted attempt) returned. GetBoundProfilePackage and CancelSession only act on the
    /// order while its version is still this one, so a session never outlives a change of
    /// the order (a cancellation and re-issue, another session's attempt). `None` in a
    /// session written by an older version: such a session cannot continue.
    #[serde(default)]
    pub order_version: Option<i64>,
    /// The SVN of the signed euiccInfo2, hex (v3: lowestSvn... highestSvn when present).
    #[serde(default)]
    pub svn: Option<String>,
    /// Whether euiccInfo2 announced Remote Profile Management (v3 `rpmSupport`).
    #[serde(default)]
    pub rpm_support: bool,
}

/// The session blob.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionData {
    /// serverChallenge, hex.
    pub server_challenge: String,
    /// euiccChallenge, hex.
    pub euicc_challenge: String,
    /// SVN from euiccInfo1, hex.
    pub svn: String,
    /// The CI chosen for the eUICC's signatures (`euiccCiPKIdToBeUsed`), hex.
    pub signing_ci: String,
    /// The CI of the key set used (DPauth/DPpb), hex.
    pub key_set_ci: String,
    /// The serverAddress placed in serverSigned1.
    pub server_address: String,
    /// Set by AuthenticateClient.
    pub euicc: Option<EuiccBinding>,
    /// otPK.EUICC of the delivered BPP, hex.
    pub delivered_otpk: Option<String>,
    /// The profile version after this session's delivery (state Downloaded): the
    /// ProfileInstallationResult and CancelSession of this session only act on the order in
    /// that version.
    #[serde(default)]
    pub delivered_order_version: Option<i64>,
    /// SGP.22 v3: the RPM order this session delivered.
    #[serde(default)]
    pub rpm_order: Option<String>,
}

impl SessionData {
    /// Serializes the blob.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Invariant: serializing plain strings/bools/options to JSON cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a stored blob.
    pub fn from_bytes(data: &[u8]) -> Result<SessionData, serde_json::Error> {
        serde_json::from_slice(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_download_path_is_allowed() {
        for (from, to) in [
            (Phase::Initiated, Phase::Authenticated),
            (Phase::Authenticated, Phase::Delivered),
            (Phase::Delivered, Phase::Ended),
            (Phase::Initiated, Phase::Authenticating),
            (Phase::Authenticating, Phase::RpmDelivered),
            (Phase::RpmDelivered, Phase::Ended),
            (Phase::Binding, Phase::Delivered),
        ] {
            assert!(from.allows(to), "{from:?} -> {to:?}");
            assert_eq!(Phase::advance(from.as_str(), to), Ok(to.as_str()));
        }
    }

    #[test]
    fn rejects_moves_outside_the_flow() {
        // Nothing leaves `ended`, nothing goes back, nothing skips AuthenticateClient.
        for to in Phase::ALL {
            assert!(!Phase::Ended.allows(to), "ended -> {to:?}");
            assert!(!to.allows(Phase::Initiated), "{to:?} -> initiated");
        }
        for (from, to) in [
            (Phase::Initiated, Phase::Delivered),
            (Phase::Delivered, Phase::Authenticated),
            (Phase::Authenticated, Phase::RpmDelivered),
            (Phase::RpmDelivered, Phase::Delivered),
            (Phase::Authenticated, Phase::Binding),
        ] {
            assert!(!from.allows(to), "{from:?} -> {to:?}");
        }
        let refusal = |from: &str, to| match Phase::advance(from, to) {
            Err(e) => e.to_string(),
            Ok(name) => format!("allowed: {name}"),
        };
        assert_eq!(
            refusal("ended", Phase::Delivered),
            "session cannot move from ended to delivered"
        );
        assert_eq!(
            refusal("bogus", Phase::Ended),
            "session in an unknown state cannot move to ended"
        );
    }

    #[test]
    fn every_phase_round_trips_its_name() {
        for p in Phase::ALL {
            assert_eq!(Phase::parse(p.as_str()), Some(p));
        }
        assert_eq!(Phase::parse("Initiated"), None);
    }
}
