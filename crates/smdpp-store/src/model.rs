//! Plain data types exchanged with the store.

use std::fmt;
use std::str::FromStr;

use crate::StoreError;

/// Milliseconds since the Unix epoch, the only time representation in the store.
pub type EpochMillis = i64;

/// Current wall-clock time in epoch milliseconds.
pub fn now_ms() -> EpochMillis {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Normalises an ICCID for use as a key: trims spaces, drops the trailing
/// `F`/`f` padding nibble and requires 18 to 20 ASCII digits.
pub fn normalize_iccid(iccid: &str) -> Result<String, StoreError> {
    let t = iccid.trim();
    let t = t.strip_suffix(['F', 'f']).unwrap_or(t);
    if !(18..=20).contains(&t.len()) || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StoreError::InvalidInput(
            "ICCID must be 18 to 20 decimal digits".into(),
        ));
    }
    Ok(t.to_string())
}

/// Profile state at the SM-DP+ (SGP.22 section 3.1.6, Table 6b).
///
/// Stored as lower-case text. The store enforces no transition rules; those
/// belong to `smdpp-core`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProfileState {
    /// In inventory.
    Available,
    /// Reserved for an order, no EID.
    Allocated,
    /// Reserved and linked to an EID.
    Linked,
    /// MatchingID and confirmation code (if any) set.
    Confirmed,
    /// Ready for download.
    Released,
    /// Bound profile package delivered to the LPA.
    Downloaded,
    /// Installed on the eUICC (and, as SGP.22 section 3.1.3.3 leaves it, disabled there).
    Installed,
    /// Installed and reported enabled by the eUICC (an enable notification, SGP.22 v2
    /// section 3.2.1, or a v3 RPM enable).
    Enabled,
    /// Installed and reported disabled by the eUICC after having been enabled.
    Disabled,
    /// Not installed; see `error_cause`.
    Error,
    /// Cannot be reused.
    Unavailable,
}

impl ProfileState {
    /// Every state, in lifecycle order.
    pub const ALL: [ProfileState; 11] = [
        ProfileState::Available,
        ProfileState::Allocated,
        ProfileState::Linked,
        ProfileState::Confirmed,
        ProfileState::Released,
        ProfileState::Downloaded,
        ProfileState::Installed,
        ProfileState::Enabled,
        ProfileState::Disabled,
        ProfileState::Error,
        ProfileState::Unavailable,
    ];

    /// The states of a profile that is on an eUICC (installed there and not deleted).
    pub const ON_EUICC: [ProfileState; 3] = [
        ProfileState::Installed,
        ProfileState::Enabled,
        ProfileState::Disabled,
    ];

    /// Whether the profile is installed on an eUICC (Installed, Enabled or Disabled).
    pub const fn is_on_euicc(self) -> bool {
        matches!(
            self,
            ProfileState::Installed | ProfileState::Enabled | ProfileState::Disabled
        )
    }

    /// The stored text form.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProfileState::Available => "available",
            ProfileState::Allocated => "allocated",
            ProfileState::Linked => "linked",
            ProfileState::Confirmed => "confirmed",
            ProfileState::Released => "released",
            ProfileState::Downloaded => "downloaded",
            ProfileState::Installed => "installed",
            ProfileState::Enabled => "enabled",
            ProfileState::Disabled => "disabled",
            ProfileState::Error => "error",
            ProfileState::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for ProfileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, not `write_str`: honour width/alignment (`{:<12}` in `smdpp types show`
        // and `smdpp profiles list` was ignored, so their columns did not line up).
        f.pad(self.as_str())
    }
}

impl FromStr for ProfileState {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProfileState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| StoreError::InvalidInput(format!("unknown profile state {s:?}")))
    }
}

/// A profile row.
///
/// `Debug` prints the lengths of `cc_hash` and `upp`, not their bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Profile {
    /// Normalised ICCID (primary key).
    pub iccid: String,
    /// Owning operator, if assigned.
    pub operator_id: Option<String>,
    /// Profile type used to pick inventory.
    pub profile_type: Option<String>,
    /// Current state.
    pub state: ProfileState,
    /// MatchingID of the current order (unique when set).
    pub matching_id: Option<String>,
    /// EID the profile is linked to.
    pub eid: Option<String>,
    /// SHA-256 of the confirmation code (never the code itself).
    pub cc_hash: Option<Vec<u8>>,
    /// Confirmation-code attempts so far.
    pub cc_attempts: i64,
    /// Maximum confirmation-code attempts, if configured.
    pub cc_attempt_limit: Option<i64>,
    /// Download attempts so far.
    pub download_attempts: i64,
    /// Maximum download attempts, if configured.
    pub download_attempt_limit: Option<i64>,
    /// Unprotected profile package.
    pub upp: Option<Vec<u8>>,
    /// Why the profile is in `Error` (or last failed).
    pub error_cause: Option<String>,
    /// SM-DS address for event registration.
    pub smds_address: Option<String>,
    /// Creation time.
    pub created_at: EpochMillis,
    /// Last update time.
    pub updated_at: EpochMillis,
    /// Order expiry, if any.
    pub expires_at: Option<EpochMillis>,
    /// Row version, bumped on every update (for compare-and-set).
    pub version: i64,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("iccid", &self.iccid)
            .field("operator_id", &self.operator_id)
            .field("profile_type", &self.profile_type)
            .field("state", &self.state)
            .field("matching_id", &self.matching_id)
            .field("eid", &self.eid)
            .field("cc_hash_len", &self.cc_hash.as_ref().map(Vec::len))
            .field("cc_attempts", &self.cc_attempts)
            .field("cc_attempt_limit", &self.cc_attempt_limit)
            .field("download_attempts", &self.download_attempts)
            .field("download_attempt_limit", &self.download_attempt_limit)
            .field("upp_len", &self.upp.as_ref().map(Vec::len))
            .field("error_cause", &self.error_cause)
            .field("smds_address", &self.smds_address)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("expires_at", &self.expires_at)
            .field("version", &self.version)
            .finish()
    }
}

/// A profile to insert (counters start at zero, version at zero).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewProfile {
    /// ICCID; normalised by the store.
    pub iccid: String,
    /// Owning operator.
    pub operator_id: Option<String>,
    /// Profile type.
    pub profile_type: Option<String>,
    /// Initial state (usually `Available`).
    pub state: ProfileState,
    /// MatchingID, if already known.
    pub matching_id: Option<String>,
    /// EID, if already linked.
    pub eid: Option<String>,
    /// SHA-256 of the confirmation code.
    pub cc_hash: Option<Vec<u8>>,
    /// Maximum confirmation-code attempts.
    pub cc_attempt_limit: Option<i64>,
    /// Maximum download attempts.
    pub download_attempt_limit: Option<i64>,
    /// Unprotected profile package.
    pub upp: Option<Vec<u8>>,
    /// SM-DS address.
    pub smds_address: Option<String>,
    /// Expiry time.
    pub expires_at: Option<EpochMillis>,
}

impl NewProfile {
    /// An `Available` inventory profile with only its ICCID and type set.
    pub fn available(iccid: impl Into<String>, profile_type: Option<&str>) -> Self {
        NewProfile {
            iccid: iccid.into(),
            operator_id: None,
            profile_type: profile_type.map(str::to_string),
            state: ProfileState::Available,
            matching_id: None,
            eid: None,
            cc_hash: None,
            cc_attempt_limit: None,
            download_attempt_limit: None,
            upp: None,
            smds_address: None,
            expires_at: None,
        }
    }
}

/// How an optional column changes in an update.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Patch<T> {
    /// Leave the column unchanged.
    #[default]
    Keep,
    /// Set the column to this value.
    Set(T),
    /// Set the column to NULL.
    Clear,
}

/// How a counter column changes in an update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CounterOp {
    /// Leave the counter unchanged.
    #[default]
    Keep,
    /// Add this amount (atomically, relative to the stored value).
    Add(i64),
    /// Overwrite with this value (e.g. reset to 0 on recycling).
    Set(i64),
}

/// Changes applied by [`Store::transition`](crate::Store::transition) and
/// [`Store::claim_available`](crate::Store::claim_available).
/// `version` and `updated_at` are always updated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    /// New state; `None` keeps the current one.
    pub state: Option<ProfileState>,
    /// Operator.
    pub operator_id: Patch<String>,
    /// EID.
    pub eid: Patch<String>,
    /// MatchingID (unique: a collision fails with `Duplicate`).
    pub matching_id: Patch<String>,
    /// Confirmation-code hash.
    pub cc_hash: Patch<Vec<u8>>,
    /// Confirmation-code attempt counter.
    pub cc_attempts: CounterOp,
    /// Confirmation-code attempt limit.
    pub cc_attempt_limit: Patch<i64>,
    /// Download attempt counter.
    pub download_attempts: CounterOp,
    /// Download attempt limit.
    pub download_attempt_limit: Patch<i64>,
    /// Profile package.
    pub upp: Patch<Vec<u8>>,
    /// Error cause.
    pub error_cause: Patch<String>,
    /// SM-DS address.
    pub smds_address: Patch<String>,
    /// Expiry.
    pub expires_at: Patch<EpochMillis>,
}

impl ProfileUpdate {
    /// An update that only changes the state.
    pub fn to_state(state: ProfileState) -> Self {
        ProfileUpdate {
            state: Some(state),
            ..Default::default()
        }
    }
}

/// Preconditions for a compare-and-set update. All given conditions must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// Allowed current states; empty means any state.
    pub states: Vec<ProfileState>,
    /// Required current version.
    pub version: Option<i64>,
    /// When set, the current EID must be NULL or equal to this one.
    pub eid_unset_or: Option<String>,
}

impl Expect {
    /// No precondition.
    pub fn any() -> Self {
        Expect::default()
    }

    /// Current state must be `state`.
    pub fn state(state: ProfileState) -> Self {
        Expect {
            states: vec![state],
            version: None,
            ..Expect::default()
        }
    }

    /// Current state must be one of `states`.
    pub fn states(states: &[ProfileState]) -> Self {
        Expect {
            states: states.to_vec(),
            version: None,
            ..Expect::default()
        }
    }

    /// Current version must be `version`.
    pub fn version(version: i64) -> Self {
        Expect {
            states: Vec::new(),
            version: Some(version),
            ..Expect::default()
        }
    }

    /// Adds a version requirement.
    pub fn and_version(mut self, version: i64) -> Self {
        self.version = Some(version);
        self
    }

    /// Adds the requirement that the current EID is NULL or `eid`.
    pub fn and_eid_unset_or(mut self, eid: impl Into<String>) -> Self {
        self.eid_unset_or = Some(eid.into());
        self
    }

    pub(crate) fn matches(&self, state: ProfileState, version: i64, eid: Option<&str>) -> bool {
        (self.states.is_empty() || self.states.contains(&state))
            && self.version.is_none_or(|v| v == version)
            && self
                .eid_unset_or
                .as_deref()
                .is_none_or(|want| eid.is_none_or(|cur| cur == want))
    }
}

/// Who and why, recorded in `profile_events` with a state change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventRecord {
    /// Actor, e.g. `es2:operator-1`, `es9:<transaction id>`, `system`.
    pub actor: String,
    /// Short machine-readable cause, e.g. `cc-limit`.
    pub cause: Option<String>,
    /// Free-text detail.
    pub detail: Option<String>,
    /// Outbound calls to queue in the same transaction as the event (see
    /// [`Store::claim_outbox`](crate::Store::claim_outbox)); empty for most events.
    pub outbox: Vec<crate::NewOutboxRow>,
    /// The lifecycle signal for the operator's systems, when the state change alone does
    /// not tell it ([`crate::Signal::Deleted`], [`crate::Signal::Deactivated`]); `None`:
    /// derived from the transition ([`crate::Signal::of_transition`]).
    pub signal: Option<crate::Signal>,
}

impl EventRecord {
    /// An event with an actor only.
    pub fn by(actor: impl Into<String>) -> Self {
        EventRecord {
            actor: actor.into(),
            ..EventRecord::default()
        }
    }

    /// Adds outbound calls to queue with the event (same transaction).
    pub fn with_outbox(mut self, rows: impl IntoIterator<Item = crate::NewOutboxRow>) -> Self {
        self.outbox.extend(rows);
        self
    }

    /// Sets the lifecycle signal (see [`EventRecord::signal`]).
    pub fn with_signal(mut self, signal: crate::Signal) -> Self {
        self.signal = Some(signal);
        self
    }

    /// Sets the cause.
    pub fn with_cause(mut self, cause: impl Into<String>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// Sets the detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// One row of a profile's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileEvent {
    /// Monotonic id.
    pub id: i64,
    /// Profile.
    pub iccid: String,
    /// When.
    pub at: EpochMillis,
    /// Previous state (`None` for the creation event).
    pub from_state: Option<ProfileState>,
    /// New state.
    pub to_state: ProfileState,
    /// Cause.
    pub cause: Option<String>,
    /// Detail.
    pub detail: Option<String>,
    /// Actor.
    pub actor: String,
}

/// Filter for [`Store::list_profiles`](crate::Store::list_profiles). Results are
/// ordered by ICCID; use `after_iccid` for keyset pagination.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileFilter {
    /// Only this state.
    pub state: Option<ProfileState>,
    /// Only this operator.
    pub operator_id: Option<String>,
    /// Only this profile type.
    pub profile_type: Option<String>,
    /// Only this EID.
    pub eid: Option<String>,
    /// Only ICCIDs strictly greater than this one.
    pub after_iccid: Option<String>,
    /// Maximum rows (default 100, capped at 1000).
    pub limit: Option<u32>,
}

/// Filter for [`Store::claim_available`](crate::Store::claim_available).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimFilter {
    /// Required profile type.
    pub profile_type: Option<String>,
    /// Required operator.
    pub operator_id: Option<String>,
}

/// Counters that can be incremented atomically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Counter {
    /// `cc_attempts`.
    CcAttempts,
    /// `download_attempts`.
    DownloadAttempts,
}

/// Result of an atomic counter increment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterValue {
    /// Counter value after the increment.
    pub value: i64,
    /// Configured limit for this counter.
    pub limit: Option<i64>,
    /// Row version after the increment.
    pub version: i64,
    /// Profile state (unchanged by the increment).
    pub state: ProfileState,
}

/// An RSP session (ES9+ transaction). `state` and `data` are opaque to the store.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// TransactionID (hex), primary key.
    pub transaction_id: String,
    /// Session state name, owned by the core.
    pub state: String,
    /// EID, once known.
    pub eid: Option<String>,
    /// ICCID, once bound to a profile.
    pub iccid: Option<String>,
    /// Serialised session, owned by the core.
    pub data: Vec<u8>,
    /// Creation time.
    pub created_at: EpochMillis,
    /// Last update time.
    pub updated_at: EpochMillis,
    /// Expiry time: the session is gone at or after this instant.
    pub expires_at: EpochMillis,
    /// Row version, bumped on every update.
    pub version: i64,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("transaction_id", &self.transaction_id)
            .field("state", &self.state)
            .field("eid", &self.eid)
            .field("iccid", &self.iccid)
            .field("data_len", &self.data.len())
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("expires_at", &self.expires_at)
            .field("version", &self.version)
            .finish()
    }
}

/// A session to insert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSession {
    /// TransactionID.
    pub transaction_id: String,
    /// Initial state name.
    pub state: String,
    /// EID, if known.
    pub eid: Option<String>,
    /// ICCID, if known.
    pub iccid: Option<String>,
    /// Serialised session.
    pub data: Vec<u8>,
    /// Creation time.
    pub created_at: EpochMillis,
    /// Expiry time.
    pub expires_at: EpochMillis,
}

/// Changes applied by [`Store::update_session_cas`](crate::Store::update_session_cas).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionUpdate {
    /// New state name.
    pub state: String,
    /// New serialised session.
    pub data: Vec<u8>,
    /// EID.
    pub eid: Patch<String>,
    /// ICCID.
    pub iccid: Patch<String>,
    /// New expiry, if extended or shortened.
    pub expires_at: Option<EpochMillis>,
}

/// A notification received on ES9+ HandleNotification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotification {
    /// EID of the sender.
    pub eid: String,
    /// eUICC sequence number (unique per EID).
    pub seq_number: i64,
    /// ICCID the notification is about.
    pub iccid: Option<String>,
    /// Event name (e.g. `install`, `delete`).
    pub event: String,
    /// Raw DER of the notification.
    pub raw: Vec<u8>,
    /// Reception time.
    pub received_at: EpochMillis,
}

/// A stored notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// Monotonic id.
    pub id: i64,
    /// EID.
    pub eid: String,
    /// Sequence number.
    pub seq_number: i64,
    /// ICCID.
    pub iccid: Option<String>,
    /// Event name.
    pub event: String,
    /// Raw DER.
    pub raw: Vec<u8>,
    /// Reception time.
    pub received_at: EpochMillis,
}

/// Outcome of [`Store::record_notification`](crate::Store::record_notification).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum RecordOutcome {
    /// Stored for the first time, with this id.
    Inserted(i64),
    /// `(eid, seq_number)` was already stored: a replay. Nothing was written.
    Duplicate,
}

/// An operator (tenant) allowed to call ES2+ (SGP.22 section 5.3), identified by its TLS
/// client certificate (section 6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    /// Operator id; profiles reference it in `operator_id`.
    pub id: String,
    /// Lower-case hex SHA-256 of the client certificate DER, if a certificate is registered.
    pub cert_sha256: Option<String>,
    /// Subject of the registered certificate (informational).
    pub cert_subject: Option<String>,
    /// Where ES2+.HandleDownloadProgressInfo notifications go (stored for the outbox).
    pub callback_url: Option<String>,
    /// PEM bundle of the CAs trusted for the callback receiver's TLS certificate; `None`:
    /// the system's trust roots.
    pub callback_ca: Option<String>,
    /// Creation time.
    pub created_at: EpochMillis,
}

/// An operator to insert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOperator {
    /// Operator id.
    pub id: String,
    /// Lower-case hex SHA-256 of the client certificate DER.
    pub cert_sha256: Option<String>,
    /// Subject of the certificate (informational).
    pub cert_subject: Option<String>,
    /// Callback URL.
    pub callback_url: Option<String>,
    /// PEM bundle of the CAs trusted for the callback receiver (`None`: system roots).
    pub callback_ca: Option<String>,
}

/// A stored ES2+ function call: the request digest and the response that was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Es2CallRecord {
    /// Calling operator.
    pub operator_id: String,
    /// `functionCallIdentifier` of the request header.
    pub function_call_id: String,
    /// Function name, e.g. `DownloadOrder`.
    pub function_name: String,
    /// SHA-256 of the canonical request (function and body without the header).
    pub request_sha256: Vec<u8>,
    /// The response message (JSON text).
    pub response: String,
    /// When it was stored.
    pub created_at: EpochMillis,
}

/// Outcome of [`Store::record_es2_call`](crate::Store::record_es2_call).
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Es2CallOutcome {
    /// Stored now.
    Inserted,
    /// A record with this (operator, functionCallIdentifier) already existed; it is returned
    /// and nothing was written.
    Existing(Es2CallRecord),
}

/// Display metadata of a profile (the variable part of StoreMetadataRequest, SGP.22 section
/// 5.5.3), in the `service_profile_metadata` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileMetadata {
    /// serviceProviderName (at most 32 bytes).
    pub service_provider_name: String,
    /// profileName (at most 64 bytes).
    pub profile_name: String,
    /// profileClass (0 test, 1 provisioning, 2 operational), absent when `None`.
    pub profile_class: Option<i64>,
}

/// A cached BPP (SGP.22 section 3.1.3.2: re-used when the eUICC presents the same otPK), in
/// the `service_bpp_cache` table. Ciphertext only.
#[derive(Clone, PartialEq, Eq)]
pub struct CachedBpp {
    /// The EID the BPP is bound to.
    pub eid: String,
    /// otPK.EUICC.ECKA it is bound to.
    pub euicc_otpk: Vec<u8>,
    /// The transactionId its InitialiseSecureChannel carries (hex).
    pub transaction_id: String,
    /// The BoundProfilePackage DER.
    pub bpp: Vec<u8>,
}

impl std::fmt::Debug for CachedBpp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedBpp")
            .field("transaction_id", &self.transaction_id)
            .field("bpp_len", &self.bpp.len())
            .finish_non_exhaustive()
    }
}

/// The writes of an ES9+ call that ride in the transaction of its state change
/// ([`Store::transition_with_session_and`](crate::Store::transition_with_session_and)), so that
/// the call commits once.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepWrites<'a> {
    /// A received notification to record (replay detection on `(eid, seq_number)`).
    pub notification: Option<&'a NewNotification>,
    /// The BPP to cache for the profile (replacing any).
    pub put_bpp: Option<&'a CachedBpp>,
    /// Drop the profile's cached BPP.
    pub delete_bpp: bool,
    /// What the eUICC announced, for the RPM orders that may follow.
    pub capabilities: Option<&'a crate::EuiccCapabilities>,
}

/// What [`Store::transition_with_session_and`](crate::Store::transition_with_session_and)
/// committed.
#[derive(Clone, Debug)]
pub struct StepDone {
    /// The profile after the transition.
    pub profile: Profile,
    /// The session after its compare-and-set.
    pub session: Session,
    /// The recording of [`StepWrites::notification`], when one was given.
    pub notification: Option<RecordOutcome>,
}
