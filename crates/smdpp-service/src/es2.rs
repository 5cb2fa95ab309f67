//! The ES2+ engine (SGP.22 v2.2 section 5.3): operators as tenants, the profile state machine
//! of section 3.1.6 (Table 6b and the figure after it) for DownloadOrder, ConfirmOrder,
//! CancelOrder and ReleaseProfile, and functionCallIdentifier replay.
//!
//! Every state change is ONE store transaction: a compare-and-set on the profile's version
//! (read just before, after the ownership and state checks) plus the profile event. A refused
//! call changes nothing. The HandleDownloadProgressInfo outbox (section 5.3.5) will add its row
//! to that same transaction.
//!
//! Transitions (section 3.1.6 figure; `→` success, otherwise the code):
//!
//! | function | from | to / code |
//! |---|---|---|
//! | DownloadOrder | Available | Linked (with EID) / Allocated (without) |
//! | DownloadOrder (ICCID) | any other state | `8.2.1/3.3` |
//! | DownloadOrder (type) | no Available profile of the type | `8.2.5/3.7` (`8.2.5/3.9` if the operator has no profile of that type at all) |
//! | ConfirmOrder | Allocated, Linked | Confirmed (releaseFlag false) / Released (true) |
//! | ConfirmOrder | any other state | `8.2.1/3.5` (our choice: Table 27 has no state code) |
//! | ReleaseProfile | Confirmed | Released |
//! | ReleaseProfile | Released | success, nothing changed (section 5.3.4 NOTE) |
//! | ReleaseProfile | any other state | `8.2.1/3.5` |
//! | CancelOrder | Allocated, Linked, Confirmed, Released | Available (order data cleared) / Unavailable |
//! | CancelOrder | Error | Available (order data cleared) / Unavailable (Figure 15: `Error → Available` and `Error → Unavailable` by CancelOrder) |
//! | CancelOrder | Downloaded, Installed, Enabled, Disabled | `8.2.1/3.3` ("already downloaded", Table 30) |
//! | CancelOrder | Available, Unavailable | `8.2.1/3.5` (no pending order) |
//!
//! Downloaded, Installed and Error are reached over ES9+ ([`crate::Es9Engine`]).
//!
//! A refusal because of the profile's state names the refusing function and the state
//! (`refused_in_state`), never the code's description: `8.2.1/3.5`'s text is Table 32's
//! ("cannot be released", ReleaseProfile) and `8.2.1/3.3`'s is Table 24's (DownloadOrder), but
//! ConfirmOrder and CancelOrder answer these codes too.
//!
//! Tenancy: a profile whose `operator_id` is not the caller is answered exactly like an
//! unknown ICCID (`8.2.1/3.9`); `8.2.1/1.2` is never used, so an operator cannot probe which
//! ICCIDs others hold.

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use smdpp_core::es2_json::{
    CancelOrderRequest, ConfirmOrderRequest, ConfirmOrderResponse, DownloadOrderRequest,
    DownloadOrderResponse, Eid, Es2Call, Es2Error, Es2Function, FinalProfileStatusIndicator, Iccid,
    ReleaseProfileRequest,
};
use smdpp_core::es9_json::{EmptyBody, ResponseMessage};
use smdpp_core::status::{
    self, EID_INVALID_ASSOCIATION, EID_MISSING, FUNCTION_CALL_ID_REUSED,
    FUNCTION_PROVIDER_EXECUTION_ERROR, FUNCTION_PROVIDER_INACCESSIBLE, FUNCTION_REQUESTER_UNKNOWN,
    ICCID_ALREADY_IN_USE, ICCID_INVALID_ASSOCIATION, ICCID_INVALID_TRANSITION, ICCID_UNKNOWN,
    MATCHING_ID_ALREADY_IN_USE, MATCHING_ID_INVALID_ASSOCIATION, PROFILE_TYPE_REFUSED,
    PROFILE_TYPE_UNAVAILABLE, PROFILE_TYPE_UNKNOWN, StatusCode,
};
use smdpp_server::{Es2Caller, Es2Service};
use smdpp_store::{
    ClaimFilter, CounterOp, Es2CallOutcome, Es2CallRecord, EventRecord, Expect, Patch, Profile,
    ProfileFilter, ProfileState, ProfileUpdate, Store, StoreError, now_ms,
};

use crate::config::ServiceConfig;
use crate::sidecar::Sidecar;
use crate::upp::generate_matching_id;

type Result<T> = std::result::Result<T, Es2Error>;

/// How often a claim by profile type is retried when it found nothing although an Available
/// profile exists (PostgreSQL `SKIP LOCKED` can miss a row whose lock was just released).
const CLAIM_RETRIES: usize = 8;

/// The ES2+ engine; implements [`Es2Service`].
#[derive(Clone)]
pub struct Es2Engine {
    pub(crate) store: Store,
    pub(crate) sidecar: Sidecar,
    pub(crate) config: Arc<ServiceConfig>,
    /// The profile factory, for types that generate their profiles on demand.
    pub(crate) factory: Option<Arc<crate::factory::Factory>>,
}

impl std::fmt::Debug for Es2Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Es2Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Lower-case hex SHA-256 of a certificate's DER: how operators are identified.
pub fn cert_fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

pub(crate) fn internal(e: StoreError) -> Es2Error {
    tracing::error!(error = %e, "ES2+ store failure");
    Es2Error::new(FUNCTION_PROVIDER_EXECUTION_ERROR, "internal error")
}

pub(crate) fn err(code: StatusCode) -> Es2Error {
    Es2Error::from_code(code)
}

/// The refusal of `function` for a profile in `state` (a state it cannot act on): `code`
/// (`8.2.1/3.5`, or `8.2.1/3.3` for CancelOrder of a downloaded profile, Table 30) with a
/// message naming the function and the state, e.g. `ES2+.ConfirmOrder is not allowed for a
/// Profile in state released`. The one place such messages are built; see the module docs
/// for why the code's description is not used.
pub(crate) fn refused_in_state(function: Es2Function, code: StatusCode, state: &str) -> Es2Error {
    Es2Error::new(
        code,
        format!(
            "ES2+.{} is not allowed for a Profile in state {state}",
            function.name()
        ),
    )
}

/// Whether a failure is transient (not recorded for replay: a retry may execute the call).
pub(crate) fn is_transient(e: &Es2Error) -> bool {
    e.code == FUNCTION_PROVIDER_EXECUTION_ERROR || e.code == FUNCTION_PROVIDER_INACCESSIBLE
}

pub(crate) fn message<T: Serialize>(r: Result<T>) -> serde_json::Value {
    let v = match &r {
        Ok(body) => serde_json::to_value(ResponseMessage::success(body)),
        Err(e) => serde_json::to_value(ResponseMessage::<EmptyBody>::failed(e)),
    };
    v.unwrap_or(serde_json::Value::Null)
}

impl Es2Engine {
    /// An engine over `store` (migrated), the service tables and the configuration (for our
    /// SM-DP+ address and the default per-order limits).
    pub fn new(store: Store, sidecar: Sidecar, config: ServiceConfig) -> Self {
        Es2Engine {
            store,
            sidecar,
            config: Arc::new(config),
            factory: None,
        }
    }

    /// Uses `factory` to create profiles of generating types when an order finds none
    /// Available (see [`crate::generate`]).
    pub fn with_factory(mut self, factory: Option<Arc<crate::factory::Factory>>) -> Self {
        self.factory = factory;
        self
    }

    pub(crate) fn actor(operator: &str) -> String {
        format!("es2:{operator}")
    }

    /// The caller's profile, or `8.2.1/3.9` if it does not exist or belongs to another
    /// operator.
    pub(crate) async fn owned(&self, operator: &str, iccid: &Iccid) -> Result<Profile> {
        match self.store.get_profile(iccid.as_str()).await {
            Ok(Some(p)) if p.operator_id.as_deref() == Some(operator) => Ok(p),
            Ok(_) => Err(err(ICCID_UNKNOWN)),
            Err(StoreError::InvalidInput(_)) => Err(err(ICCID_UNKNOWN)),
            Err(e) => Err(internal(e)),
        }
    }

    // ------------------------------------------------------------------ DownloadOrder

    /// ES2+.DownloadOrder (section 5.3.1): reserves the given ICCID or an Available profile of
    /// the given type owned by `operator`; Linked with an EID, else Allocated.
    pub async fn download_order(
        &self,
        operator: &str,
        req: &DownloadOrderRequest,
    ) -> Result<DownloadOrderResponse> {
        let (target, eid) = match &req.eid {
            Some(e) => (ProfileState::Linked, Patch::Set(e.as_str().to_owned())),
            None => (ProfileState::Allocated, Patch::Clear),
        };
        let update = ProfileUpdate {
            state: Some(target),
            eid,
            ..ProfileUpdate::default()
        };
        let event = EventRecord::by(Self::actor(operator)).with_cause("DownloadOrder");
        if let Some(iccid) = &req.iccid {
            let p = self.owned(operator, iccid).await?;
            if let Some(t) = &req.profile_type
                && p.profile_type.as_deref() != Some(t.as_str())
            {
                return Err(err(PROFILE_TYPE_REFUSED));
            }
            if p.state != ProfileState::Available {
                return Err(err(ICCID_ALREADY_IN_USE));
            }
            return match self
                .store
                .transition(
                    &p.iccid,
                    &Expect::state(ProfileState::Available).and_version(p.version),
                    &update,
                    &event,
                )
                .await
            {
                Ok(p) => Ok(DownloadOrderResponse {
                    iccid: iccid_of(&p)?,
                }),
                Err(StoreError::Conflict { .. }) => Err(err(ICCID_ALREADY_IN_USE)),
                Err(e) => Err(internal(e)),
            };
        }
        let Some(profile_type) = &req.profile_type else {
            // `validate` guarantees one of the two.
            return Err(err(status::PROTOCOL_FORMAT_CONDITIONAL_ELEMENT_MISSING));
        };
        let filter = ClaimFilter {
            profile_type: Some(profile_type.clone()),
            operator_id: Some(operator.to_owned()),
        };
        for _ in 0..CLAIM_RETRIES {
            match self.store.claim_available(&filter, &update, &event).await {
                Ok(Some(p)) => {
                    return Ok(DownloadOrderResponse {
                        iccid: iccid_of(&p)?,
                    });
                }
                Ok(None) => {}
                Err(e) => return Err(internal(e)),
            }
            if !self
                .any_profile(operator, profile_type, Some(ProfileState::Available))
                .await?
            {
                break;
            }
        }
        // None Available: a generating type creates one for this order.
        if let Some(r) = self
            .order_generated(operator, profile_type, &update, &event)
            .await?
        {
            return Ok(r);
        }
        if self.any_profile(operator, profile_type, None).await? {
            Err(err(PROFILE_TYPE_UNAVAILABLE))
        } else {
            Err(err(PROFILE_TYPE_UNKNOWN))
        }
    }

    /// DownloadOrder on a generating type with no Available profile: creates one and
    /// reserves it. `None` when the type does not generate (or the server has no factory).
    /// Range exhausted: `8.2.5/3.7` (Profile Type unavailable) with a message that says so.
    async fn order_generated(
        &self,
        operator: &str,
        profile_type: &str,
        update: &ProfileUpdate,
        event: &EventRecord,
    ) -> Result<Option<DownloadOrderResponse>> {
        let Some(factory) = &self.factory else {
            return Ok(None);
        };
        let Some(ptype) = self
            .store
            .get_profile_type(profile_type)
            .await
            .map_err(internal)?
        else {
            return Ok(None);
        };
        if self
            .store
            .get_generator(profile_type)
            .await
            .map_err(internal)?
            .is_none()
        {
            return Ok(None);
        }
        let event = event.clone().with_detail("generated on demand");
        match factory
            .generate_reserved(&ptype, Some(operator), update, &event)
            .await
        {
            Ok(p) => Ok(Some(DownloadOrderResponse {
                iccid: iccid_of(&p)?,
            })),
            Err(crate::generate::GenerateError::Exhausted(_)) => Err(Es2Error::new(
                PROFILE_TYPE_UNAVAILABLE,
                "the ICCID/IMSI range of this Profile Type is exhausted",
            )),
            Err(e) => {
                tracing::error!(error = %e, profile_type, "profile generation failed");
                Err(Es2Error::new(
                    FUNCTION_PROVIDER_EXECUTION_ERROR,
                    "profile generation failed",
                ))
            }
        }
    }

    async fn any_profile(
        &self,
        operator: &str,
        profile_type: &str,
        state: Option<ProfileState>,
    ) -> Result<bool> {
        let list = self
            .store
            .list_profiles(&ProfileFilter {
                state,
                operator_id: Some(operator.to_owned()),
                profile_type: Some(profile_type.to_owned()),
                limit: Some(1),
                ..ProfileFilter::default()
            })
            .await
            .map_err(internal)?;
        Ok(!list.is_empty())
    }

    // ------------------------------------------------------------------- ConfirmOrder

    /// ES2+.ConfirmOrder (section 5.3.2): Allocated/Linked → Confirmed, or Released with
    /// `releaseFlag`. Stores the MatchingID (given or generated), the EID, `SHA256(CC)` and
    /// the SM-DS address.
    pub async fn confirm_order(
        &self,
        operator: &str,
        req: &ConfirmOrderRequest,
    ) -> Result<ConfirmOrderResponse> {
        let p = self.owned(operator, &req.iccid).await?;
        if !matches!(p.state, ProfileState::Allocated | ProfileState::Linked) {
            return Err(refused_in_state(
                Es2Function::ConfirmOrder,
                ICCID_INVALID_TRANSITION,
                p.state.as_str(),
            ));
        }
        // "If the EID is present in both the DownloadOrder and ConfirmOrder functions it SHALL
        // be the same value" (5.3.2): 8.1.1/3.10.
        if let (Some(given), Some(bound)) = (&req.eid, &p.eid)
            && given.as_str() != bound
        {
            return Err(err(EID_INVALID_ASSOCIATION));
        }
        let eid: Option<String> = req
            .eid
            .as_ref()
            .map(|e| e.as_str().to_owned())
            .or(p.eid.clone());
        // The EID is mandatory when the MatchingID is empty (default SM-DP+) or an SM-DS
        // address is given (Table 27, 8.1.1/2.2).
        let empty_mid = req.matching_id.as_deref() == Some("");
        if eid.is_none() && (empty_mid || req.smds_address.is_some()) {
            return Err(err(EID_MISSING));
        }
        let target = if req.release_flag {
            ProfileState::Released
        } else {
            ProfileState::Confirmed
        };
        let limits = &self.config.limits;
        // Per-order limits: the profile's own, else its profile type's, else the server's.
        // (A profile that went back to Available lost its own; its type still has them.)
        let type_limits = match &p.profile_type {
            Some(t) => self
                .store
                .get_profile_type(t)
                .await
                .map_err(internal)?
                .map(|t| (t.cc_attempt_limit, t.download_attempt_limit)),
            None => None,
        }
        .unwrap_or((None, None));
        let event = EventRecord::by(Self::actor(operator)).with_cause(if req.release_flag {
            "ConfirmOrder releaseFlag=true"
        } else {
            "ConfirmOrder"
        });
        let mut attempts = 0;
        loop {
            attempts += 1;
            let matching_id = match &req.matching_id {
                Some(m) if m.is_empty() => None,
                Some(m) => Some(m.clone()),
                None => Some(generate_matching_id().map_err(|e| {
                    tracing::error!(error = %e, "MatchingID generation failed");
                    err(FUNCTION_PROVIDER_EXECUTION_ERROR)
                })?),
            };
            let update = ProfileUpdate {
                state: Some(target),
                eid: eid.clone().map_or(Patch::Keep, Patch::Set),
                matching_id: matching_id.clone().map_or(Patch::Clear, Patch::Set),
                // Only SHA256(CC) is stored (section 5.3.2, 4.7).
                cc_hash: req.confirmation_code.as_ref().map_or(Patch::Clear, |cc| {
                    Patch::Set(Sha256::digest(cc.expose().as_bytes()).to_vec())
                }),
                cc_attempts: CounterOp::Set(0),
                cc_attempt_limit: Patch::Set(
                    p.cc_attempt_limit
                        .or(type_limits.0)
                        .unwrap_or(limits.cc_attempt_limit),
                ),
                download_attempts: CounterOp::Set(0),
                download_attempt_limit: Patch::Set(
                    p.download_attempt_limit
                        .or(type_limits.1)
                        .unwrap_or(limits.download_attempt_limit),
                ),
                smds_address: req.smds_address.clone().map_or(Patch::Clear, Patch::Set),
                error_cause: Patch::Clear,
                ..ProfileUpdate::default()
            };
            match self
                .store
                .transition(
                    &p.iccid,
                    &Expect::states(&[ProfileState::Allocated, ProfileState::Linked])
                        .and_version(p.version),
                    &update,
                    // ES12.RegisterEvent at release (section 3.6.1), committed with it.
                    &event.clone().with_outbox(
                        req.release_flag
                            .then(|| {
                                crate::outbox::es12_register_with(
                                    &p,
                                    eid.as_deref(),
                                    matching_id.as_deref(),
                                    req.smds_address.as_deref(),
                                    &self.config.smdp_address,
                                )
                            })
                            .flatten(),
                    ),
                )
                .await
            {
                Ok(done) => {
                    return Ok(ConfirmOrderResponse {
                        eid: done.eid.as_deref().and_then(Eid::parse),
                        matching_id: matching_id.unwrap_or_default(),
                        smdp_address: Some(self.config.smdp_address.clone()),
                    });
                }
                Err(StoreError::Duplicate { .. }) => {
                    // A generated MatchingID collided (>= 125 bits: practically never): retry.
                    if req.matching_id.is_some() || attempts >= 3 {
                        return Err(err(MATCHING_ID_ALREADY_IN_USE));
                    }
                }
                Err(StoreError::Conflict { state, .. }) => {
                    return Err(refused_in_state(
                        Es2Function::ConfirmOrder,
                        ICCID_INVALID_TRANSITION,
                        &state,
                    ));
                }
                Err(e) => return Err(internal(e)),
            }
        }
    }

    // ------------------------------------------------------------------ ReleaseProfile

    /// ES2+.ReleaseProfile (section 5.3.4): Confirmed → Released; already Released is a
    /// success without change; anything else `8.2.1/3.5`.
    pub async fn release_profile(
        &self,
        operator: &str,
        req: &ReleaseProfileRequest,
    ) -> Result<EmptyBody> {
        let p = self.owned(operator, &req.iccid).await?;
        match p.state {
            ProfileState::Released => return Ok(EmptyBody {}),
            ProfileState::Confirmed => {}
            other => {
                return Err(refused_in_state(
                    Es2Function::ReleaseProfile,
                    ICCID_INVALID_TRANSITION,
                    other.as_str(),
                ));
            }
        }
        match self
            .store
            .transition(
                &p.iccid,
                &Expect::state(ProfileState::Confirmed).and_version(p.version),
                &ProfileUpdate::to_state(ProfileState::Released),
                &EventRecord::by(Self::actor(operator))
                    .with_cause("ReleaseProfile")
                    .with_outbox(crate::outbox::es12_register(&p, &self.config.smdp_address)),
            )
            .await
        {
            Ok(_) => Ok(EmptyBody {}),
            Err(StoreError::Conflict { state, .. }) if state == ProfileState::Released.as_str() => {
                Ok(EmptyBody {})
            }
            Err(StoreError::Conflict { state, .. }) => Err(refused_in_state(
                Es2Function::ReleaseProfile,
                ICCID_INVALID_TRANSITION,
                &state,
            )),
            Err(e) => Err(internal(e)),
        }
    }

    // --------------------------------------------------------------------- CancelOrder

    /// ES2+.CancelOrder (section 5.3.3): ends a pending order or one that ended in Error; the
    /// profile returns to the inventory (Available, order data cleared) or becomes
    /// Unavailable (Table 29).
    pub async fn cancel_order(
        &self,
        operator: &str,
        req: &CancelOrderRequest,
    ) -> Result<EmptyBody> {
        let p = self.owned(operator, &req.iccid).await?;
        let to_available =
            req.final_profile_status_indicator == FinalProfileStatusIndicator::Available;
        let allowed: &[ProfileState] = match p.state {
            ProfileState::Allocated
            | ProfileState::Linked
            | ProfileState::Confirmed
            | ProfileState::Released => &[
                ProfileState::Allocated,
                ProfileState::Linked,
                ProfileState::Confirmed,
                ProfileState::Released,
            ],
            // Figure 15 (section 3.1.6): Error → Available or Unavailable by CancelOrder, as
            // finalProfileStatusIndicator says (Table 29).
            ProfileState::Error => &[ProfileState::Error],
            // Table 30 "already downloaded": also once the eUICC reported it enabled or
            // disabled (deactivation, `smdpp orders deactivate`, is the way to end those).
            ProfileState::Downloaded
            | ProfileState::Installed
            | ProfileState::Enabled
            | ProfileState::Disabled => {
                return Err(refused_in_state(
                    Es2Function::CancelOrder,
                    ICCID_ALREADY_IN_USE,
                    p.state.as_str(),
                ));
            }
            other => {
                return Err(refused_in_state(
                    Es2Function::CancelOrder,
                    ICCID_INVALID_TRANSITION,
                    other.as_str(),
                ));
            }
        };
        // "If there is an EID already associated with the ICCID, then check that the provided
        // EID is the one associated" (5.3.3). A given EID that differs (or is given for an
        // order without EID) is 8.2.1/3.10; an absent EID is accepted (our choice: the
        // operator may not know the EID a device bound over ES9+).
        if let Some(e) = &req.eid
            && p.eid.as_deref() != Some(e.as_str())
        {
            return Err(err(ICCID_INVALID_ASSOCIATION));
        }
        if let Some(m) = &req.matching_id
            && p.matching_id.as_deref().unwrap_or("") != m.as_str()
        {
            return Err(err(MATCHING_ID_INVALID_ASSOCIATION));
        }
        let update = if to_available {
            ProfileUpdate {
                state: Some(ProfileState::Available),
                eid: Patch::Clear,
                matching_id: Patch::Clear,
                cc_hash: Patch::Clear,
                cc_attempts: CounterOp::Set(0),
                cc_attempt_limit: Patch::Clear,
                download_attempts: CounterOp::Set(0),
                download_attempt_limit: Patch::Clear,
                error_cause: Patch::Clear,
                smds_address: Patch::Clear,
                expires_at: Patch::Clear,
                ..ProfileUpdate::default()
            }
        } else {
            ProfileUpdate {
                state: Some(ProfileState::Unavailable),
                cc_hash: Patch::Clear,
                ..ProfileUpdate::default()
            }
        };
        let event = EventRecord::by(Self::actor(operator))
            .with_cause(if to_available {
                "CancelOrder finalProfileStatusIndicator=Available"
            } else {
                "CancelOrder finalProfileStatusIndicator=Unavailable"
            })
            // ES12.DeleteEvent of a registered event (section 3.6.3), committed with it.
            .with_outbox(crate::outbox::es12_delete(&p));
        // Every ES9+ session of the cancelled order ends in the same transaction: a device
        // that authenticated for it can neither download it after it is re-issued nor send
        // a CancelSession or a result for it (the sessions' order generation no longer
        // matches either; this also ends sessions that have not used it yet).
        match self
            .store
            .transition_ending_sessions(
                &p.iccid,
                &Expect::states(allowed).and_version(p.version),
                &update,
                &event,
                crate::session::state::ENDED,
                now_ms(),
            )
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict { state, .. }) => {
                let code = if state == ProfileState::Downloaded.as_str()
                    || state
                        .parse::<ProfileState>()
                        .is_ok_and(ProfileState::is_on_euicc)
                {
                    ICCID_ALREADY_IN_USE
                } else {
                    ICCID_INVALID_TRANSITION
                };
                return Err(refused_in_state(Es2Function::CancelOrder, code, &state));
            }
            Err(e) => return Err(internal(e)),
        }
        // A BPP cached for the cancelled order must never be served again.
        if let Err(e) = self.sidecar.delete_bpp(&p.iccid).await {
            tracing::warn!(iccid = %p.iccid, error = %e, "could not delete the cached BPP");
        }
        Ok(EmptyBody {})
    }

    // ------------------------------------------------------------------------ dispatch

    /// Runs one call and returns its response message (no replay handling).
    pub async fn dispatch(&self, operator: &str, call: &Es2Call) -> (serde_json::Value, bool) {
        let actor = Self::actor(operator);
        let fci = call.header().function_call_identifier.clone();
        let with_fci = |mut details: serde_json::Value| {
            if let Some(m) = details.as_object_mut() {
                m.insert("functionCallIdentifier".into(), fci.clone().into());
            }
            details
        };
        let (value, transient) = match call {
            Es2Call::DownloadOrder(r) => {
                let res = self.download_order(operator, r).await;
                if let Ok(ok) = &res {
                    let details = with_fci(download_details(r));
                    self.audit_order(
                        &actor,
                        operator,
                        "order.download",
                        ok.iccid.as_str(),
                        details,
                    )
                    .await;
                }
                let t = res.as_ref().err().is_some_and(is_transient);
                (message(res), t)
            }
            Es2Call::ConfirmOrder(r) => {
                let res = self.confirm_order(operator, r).await;
                if res.is_ok() {
                    let details = with_fci(confirm_details(r));
                    self.audit_order(&actor, operator, "order.confirm", r.iccid.as_str(), details)
                        .await;
                }
                let t = res.as_ref().err().is_some_and(is_transient);
                (message(res), t)
            }
            Es2Call::CancelOrder(r) => {
                let res = self.cancel_order(operator, r).await;
                if res.is_ok() {
                    let details = with_fci(cancel_details(r));
                    self.audit_order(&actor, operator, "order.cancel", r.iccid.as_str(), details)
                        .await;
                }
                let t = res.as_ref().err().is_some_and(is_transient);
                (message(res), t)
            }
            Es2Call::ReleaseProfile(r) => {
                let res = self.release_profile(operator, r).await;
                if res.is_ok() {
                    let details = with_fci(serde_json::json!({}));
                    self.audit_order(&actor, operator, "order.release", r.iccid.as_str(), details)
                        .await;
                }
                let t = res.as_ref().err().is_some_and(is_transient);
                (message(res), t)
            }
            Es2Call::RpmOrder(r) => {
                let res = self.rpm_order(operator, r).await;
                if let Ok(ok) = &res {
                    let subject = r.iccid.as_ref().map_or("", |i| i.as_str());
                    let details = with_fci(rpm_details(r, &ok.matching_id));
                    self.audit_order(&actor, operator, "order.rpm", subject, details)
                        .await;
                }
                let t = res.as_ref().err().is_some_and(is_transient);
                (message(res), t)
            }
            Es2Call::DeactivateSubscription(r) => {
                let res = self.deactivate(operator, r).await;
                if let Ok(ok) = &res {
                    let details = with_fci(deactivate_details(r, ok));
                    self.audit_order(
                        &actor,
                        operator,
                        "order.deactivate",
                        r.iccid.as_str(),
                        details,
                    )
                    .await;
                }
                let t = res.as_ref().err().is_some_and(is_transient);
                (message(res), t)
            }
        };
        (value, transient)
    }

    /// Appends the audit record of a successful ES2+ order function: `action`
    /// (`order.download`, `order.confirm`, `order.cancel`, `order.release`, `order.rpm`,
    /// `order.deactivate`) on `iccid` by `actor` (`es2:<operator>` over ES2+, `cli:<user>`,
    /// `console:<user>`), with `operator` added to `details`. A failure to write it is
    /// logged, not returned: the function itself succeeded, and its profile state change is
    /// already in the trail (written in the same transaction).
    pub async fn audit_order(
        &self,
        actor: &str,
        operator: &str,
        action: &str,
        iccid: &str,
        mut details: serde_json::Value,
    ) {
        if let Some(m) = details.as_object_mut() {
            m.insert("operator".into(), operator.into());
        }
        let entry = smdpp_store::AuditEntry::new(actor, action, iccid).with_details(details);
        if let Err(e) = self.store.append_audit(&entry).await {
            tracing::error!(action, iccid, error = %e, "cannot write the audit record");
        }
    }

    /// Runs one call with functionCallIdentifier replay protection: the identifier is
    /// reserved (per operator) before the call executes, so it executes at most once; a
    /// repeat with the same request returns the stored response; a repeat with another
    /// request is refused with `1.1/3.3`; a repeat while the first is still running gets
    /// `1.2/5.1` (retry later). Transient failures (`1.2/4.2`, `1.2/5.1`) release the
    /// identifier.
    pub async fn execute_once(&self, operator: &str, call: &Es2Call) -> serde_json::Value {
        let fci = call.header().function_call_identifier.clone();
        let record = Es2CallRecord {
            operator_id: operator.to_owned(),
            function_call_id: fci.clone(),
            function_name: call.function().name().to_owned(),
            request_sha256: call.digest().to_vec(),
            response: String::new(),
            created_at: now_ms(),
        };
        match self.store.record_es2_call(&record).await {
            Ok(Es2CallOutcome::Inserted) => {}
            Ok(Es2CallOutcome::Existing(prev)) => {
                if prev.function_name != record.function_name
                    || prev.request_sha256 != record.request_sha256
                {
                    return message::<EmptyBody>(Err(err(FUNCTION_CALL_ID_REUSED)));
                }
                if prev.response.is_empty() {
                    return message::<EmptyBody>(Err(Es2Error::new(
                        FUNCTION_PROVIDER_INACCESSIBLE,
                        "this functionCallIdentifier is being executed; retry later",
                    )));
                }
                return serde_json::from_str(&prev.response).unwrap_or_else(|_| {
                    message::<EmptyBody>(Err(err(FUNCTION_PROVIDER_EXECUTION_ERROR)))
                });
            }
            Err(e) => return message::<EmptyBody>(Err(internal(e))),
        }
        let (value, transient) = self.dispatch(operator, call).await;
        let stored = if transient {
            self.store.delete_es2_call(operator, &fci).await.map(|_| ())
        } else {
            self.store
                .complete_es2_call(operator, &fci, &value.to_string())
                .await
        };
        if let Err(e) = stored {
            tracing::error!(error = %e, "could not store the ES2+ call record");
        }
        value
    }

    /// The operator registered with this client certificate.
    pub async fn identify_certificate(&self, der: &[u8]) -> Result<Es2Caller> {
        match self
            .store
            .find_operator_by_cert(&cert_fingerprint(der))
            .await
        {
            Ok(Some(o)) => Ok(Es2Caller { operator_id: o.id }),
            Ok(None) => Err(Es2Error::new(
                FUNCTION_REQUESTER_UNKNOWN,
                "the TLS client certificate is not registered for any operator",
            )),
            Err(e) => {
                tracing::error!(error = %e, "operator lookup failed");
                Err(Es2Error::new(FUNCTION_PROVIDER_INACCESSIBLE, "retry later"))
            }
        }
    }
}

fn iccid_of(p: &Profile) -> Result<Iccid> {
    Iccid::parse(&p.iccid).ok_or_else(|| {
        // Stored ICCIDs are 18-20 digits; ES2+ can only carry 19 or 20.
        Es2Error::new(
            FUNCTION_PROVIDER_EXECUTION_ERROR,
            "the profile's ICCID cannot be expressed on ES2+",
        )
    })
}

impl Es2Service for Es2Engine {
    async fn identify(&self, certificate_der: &[u8]) -> Result<Es2Caller> {
        self.identify_certificate(certificate_der).await
    }

    async fn execute(&self, caller: Es2Caller, call: Es2Call) -> serde_json::Value {
        self.execute_once(&caller.operator_id, &call).await
    }
}

// ------------------------------------------------------------------------- audit details

/// Audit details of a DownloadOrder (no secret: the EID and the requested type).
pub fn download_details(r: &DownloadOrderRequest) -> serde_json::Value {
    serde_json::json!({
        "eid": r.eid.as_ref().map(|e| e.as_str().to_owned()),
        "profileType": r.profile_type,
    })
}

/// Audit details of a ConfirmOrder: the EID, whether it released, whether a Confirmation
/// Code was set (never the code), the MatchingID masked.
pub fn confirm_details(r: &ConfirmOrderRequest) -> serde_json::Value {
    serde_json::json!({
        "eid": r.eid.as_ref().map(|e| e.as_str().to_owned()),
        "releaseFlag": r.release_flag,
        "confirmationCode": r.confirmation_code.is_some(),
        "matchingId": r.matching_id.as_deref().map(smdpp_store::mask_matching_id),
    })
}

/// Audit details of a CancelOrder.
pub fn cancel_details(r: &CancelOrderRequest) -> serde_json::Value {
    serde_json::json!({
        "finalProfileStatusIndicator": serde_json::to_value(r.final_profile_status_indicator)
            .unwrap_or_default(),
    })
}

/// Audit details of an RpmOrder: the commands and the order's MatchingID, masked.
pub fn rpm_details(
    r: &smdpp_core::rpm_json::RpmOrderRequest,
    matching_id: &str,
) -> serde_json::Value {
    serde_json::json!({
        "eid": r.eid.as_ref().map(|e| e.as_str().to_owned()),
        "commands": serde_json::to_value(r.commands.as_ref()).unwrap_or_default(),
        "matchingId": smdpp_store::mask_matching_id(matching_id),
    })
}

/// Audit details of a deactivation: reason, mode and what was done.
pub fn deactivate_details(
    r: &smdpp_core::rpm_json::DeactivateRequest,
    res: &smdpp_core::rpm_json::DeactivateResponse,
) -> serde_json::Value {
    serde_json::json!({
        "reason": serde_json::to_value(r.reason).unwrap_or_default(),
        "mode": serde_json::to_value(r.mode).unwrap_or_default(),
        "result": res.action,
        "state": res.state,
    })
}
