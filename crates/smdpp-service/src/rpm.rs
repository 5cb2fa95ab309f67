//! The operator side of SGP.22 v3 Remote Profile Management and of deactivation, on
//! [`Es2Engine`]: `ES2+.RpmOrder` (checked against the operator's profiles and the eUICC's
//! announced capabilities, stored as a pending [`smdpp_store::RpmOrder`]), our
//! `DeactivateSubscription` (by the profile's state: cancel the pending order, retire it, or
//! queue an RPM disable/delete) and metadata updates of installed profiles.
//!
//! The device side (the package handed to the LPA in AuthenticateClient, the eUICC-signed
//! result in HandleNotification) is in [`crate::es9`].
//!
//! Decisions where SGP.22 v3 (not available as text here) or the digest leave a choice:
//! - Codes: an unknown ICCID or another operator's is `8.2.1/3.9` (existence is not
//!   revealed); a profile not on an eUICC (not Installed, Enabled or Disabled) is
//!   `8.2.1/3.5`; a given EID that is not the one the profile is on is `8.1.1/3.10`; an
//!   eUICC that never announced `rpmSupport` (v2 eUICCs, or one never seen) is `8.1.1/3.8`
//!   (EID refused), at order time; a package that does not decode is `1.3.1/2.1`; a
//!   listProfileInfo by Profile Owner OID is `8.2.1/3.10` (operators are not mapped to OIDs
//!   here, so only searches by ICCID are accepted); updateMetadata without values for a
//!   profile without a type is `8.2.9/2.3`.
//! - All commands of one package must target profiles of the caller on the same eUICC.
//! - The order's MatchingID is its id (generated when not given; `8.2.6/3.3` when taken).

use rsp_asn1::Codec;
use rsp_asn1::common::Iccid as AsnIccid;
use rsp_asn1::rpm::{
    ListProfileInfoCriteria, RpmCommand, RpmCommandDetails, RpmPackage, UpdateMetadataRequest,
};
use smdpp_core::callbacks::point;
use smdpp_core::es2_json::{
    CancelOrderRequest, Es2Error, Es2Function, Es2RequestHeader, FinalProfileStatusIndicator, Iccid,
};
use smdpp_core::rpm_json::{
    DeactivateRequest, DeactivateResponse, DeactivationMode, MetadataValues, RpmCommandName,
    RpmCommandSpec, RpmOrderRequest, RpmOrderResponse,
};
use smdpp_core::status::{
    self, EID_INVALID_ASSOCIATION, EID_REFUSED, ICCID_INVALID_ASSOCIATION,
    ICCID_INVALID_TRANSITION, ICCID_UNKNOWN, MATCHING_ID_ALREADY_IN_USE, PROFILE_METADATA_INVALID,
    PROFILE_METADATA_MISSING, PROTOCOL_FORMAT_INVALID,
};
use smdpp_store::{
    EventRecord, Expect, NewRpmOrder, Patch, Profile, ProfileState, ProfileUpdate, RpmOrder,
    StoreError,
};

use crate::es2::{Es2Engine, err, internal, refused_in_state};

type Result<T> = std::result::Result<T, Es2Error>;

/// One command as planned: which, on which profile, with what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedCommand {
    /// Which command.
    pub name: RpmCommandName,
    /// The target profile.
    pub iccid: String,
    /// Go on after a failure of this command.
    pub continue_on_failure: bool,
    /// For updateMetadata: the request.
    pub metadata: Option<UpdateMetadataRequest>,
}

impl PlannedCommand {
    fn to_command(&self) -> Result<RpmCommand> {
        let iccid = AsnIccid::from_digits(&self.iccid)
            .ok_or_else(|| Es2Error::new(ICCID_UNKNOWN, "ICCID cannot be encoded"))?;
        let details = match self.name {
            RpmCommandName::Enable => RpmCommandDetails::Enable { iccid },
            RpmCommandName::Disable => RpmCommandDetails::Disable { iccid },
            RpmCommandName::Delete => RpmCommandDetails::Delete { iccid },
            RpmCommandName::ListProfileInfo => RpmCommandDetails::ListProfileInfo {
                criteria: ListProfileInfoCriteria::Iccid(iccid),
                tag_list: None,
            },
            RpmCommandName::UpdateMetadata => RpmCommandDetails::UpdateMetadata {
                iccid,
                request: self.metadata.clone().unwrap_or_default(),
            },
        };
        Ok(RpmCommand {
            continue_on_failure: self.continue_on_failure,
            details,
        })
    }
}

/// The DER `RpmPackage` of planned commands.
pub fn encode_package(commands: &[PlannedCommand]) -> Result<Vec<u8>> {
    let cmds = commands
        .iter()
        .map(PlannedCommand::to_command)
        .collect::<Result<Vec<_>>>()?;
    Ok(RpmPackage(cmds).encode())
}

/// The commands of a received DER `RpmPackage` (`rpmScript`).
pub fn decode_package(script: &[u8]) -> Result<Vec<PlannedCommand>> {
    let pkg = RpmPackage::decode(script).map_err(|e| {
        Es2Error::new(
            PROTOCOL_FORMAT_INVALID,
            format!("rpmScript is not a DER RpmPackage ({e})"),
        )
    })?;
    if pkg.0.is_empty() {
        return Err(Es2Error::new(
            PROTOCOL_FORMAT_INVALID,
            "rpmScript holds no command",
        ));
    }
    pkg.0
        .into_iter()
        .map(|c| {
            let (name, iccid, metadata) = match c.details {
                RpmCommandDetails::Enable { iccid } => (RpmCommandName::Enable, iccid, None),
                RpmCommandDetails::Disable { iccid } => (RpmCommandName::Disable, iccid, None),
                RpmCommandDetails::Delete { iccid } => (RpmCommandName::Delete, iccid, None),
                RpmCommandDetails::ListProfileInfo {
                    criteria: ListProfileInfoCriteria::Iccid(iccid),
                    ..
                } => (RpmCommandName::ListProfileInfo, iccid, None),
                RpmCommandDetails::ListProfileInfo { .. } => {
                    return Err(Es2Error::new(
                        ICCID_INVALID_ASSOCIATION,
                        "listProfileInfo by Profile Owner OID is not supported; search by ICCID",
                    ));
                }
                RpmCommandDetails::UpdateMetadata { iccid, request } => {
                    (RpmCommandName::UpdateMetadata, iccid, Some(request))
                }
                _ => {
                    return Err(Es2Error::new(
                        PROTOCOL_FORMAT_INVALID,
                        "rpmScript holds a command this SM-DP+ does not order (contactPcmp)",
                    ));
                }
            };
            Ok(PlannedCommand {
                name,
                iccid: iccid.to_digits(),
                continue_on_failure: c.continue_on_failure,
                metadata,
            })
        })
        .collect()
}

/// The comma-separated command names, e.g. `disable,delete`.
pub fn summary(commands: &[PlannedCommand]) -> String {
    commands
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// An UpdateMetadataRequest from explicit values.
fn metadata_from_values(v: &MetadataValues) -> Result<UpdateMetadataRequest> {
    if v.service_provider_name
        .as_ref()
        .is_some_and(|s| s.len() > 32)
        || v.profile_name.as_ref().is_some_and(|s| s.len() > 64)
    {
        return Err(Es2Error::new(
            PROFILE_METADATA_INVALID,
            "service provider name is at most 32 bytes, profile name at most 64",
        ));
    }
    if v.service_provider_name.is_none() && v.profile_name.is_none() {
        return Err(Es2Error::new(
            PROFILE_METADATA_MISSING,
            "updateMetadata 'metadata' gives no value",
        ));
    }
    Ok(UpdateMetadataRequest {
        service_provider_name: v.service_provider_name.clone(),
        profile_name: v.profile_name.clone(),
        ..UpdateMetadataRequest::default()
    })
}

impl Es2Engine {
    /// The UpdateMetadataRequest that brings an installed profile to its type's current
    /// metadata (service provider name, profile name, icon, PPRs).
    pub async fn type_metadata(&self, p: &Profile) -> Result<UpdateMetadataRequest> {
        let Some(t) = &p.profile_type else {
            return Err(Es2Error::new(
                PROFILE_METADATA_MISSING,
                "the profile has no type to take metadata from; give 'metadata'",
            ));
        };
        let t = self
            .store
            .get_profile_type(t)
            .await
            .map_err(internal)?
            .ok_or_else(|| Es2Error::new(PROFILE_METADATA_MISSING, "the profile's type is gone"))?;
        let ppr = t
            .ppr_bits
            .map(|m| (0..32).filter(|b| m & (1 << b) != 0).collect::<Vec<u32>>());
        Ok(UpdateMetadataRequest {
            service_provider_name: Some(t.service_provider_name.clone()),
            profile_name: Some(t.profile_name.clone()),
            icon_type: t.icon_type.and_then(|i| u64::try_from(i).ok()),
            icon: t.icon.clone(),
            profile_policy_rules: Some(ppr.unwrap_or_default()),
            ..UpdateMetadataRequest::default()
        })
    }

    /// ES2+.RpmOrder (SGP.22 v3): checks the commands against the caller's profiles and the
    /// eUICC's capabilities and queues the package (see the module documentation for codes).
    pub async fn rpm_order(
        &self,
        operator: &str,
        req: &RpmOrderRequest,
    ) -> Result<RpmOrderResponse> {
        let mut commands = match (&req.rpm_script, &req.commands, &req.iccid) {
            (Some(script), _, _) => decode_package(script)?,
            (None, Some(specs), Some(iccid)) => specs
                .iter()
                .map(|s| plan(s, iccid))
                .collect::<Result<Vec<_>>>()?,
            // `validate` guarantees one of the forms.
            _ => return Err(err(status::PROTOCOL_FORMAT_MANDATORY_ELEMENT_MISSING)),
        };
        let target = self
            .check_targets(operator, &commands, req.eid.as_ref().map(|e| e.as_str()))
            .await?;
        for c in &mut commands {
            if c.name == RpmCommandName::UpdateMetadata && c.metadata.is_none() {
                let p = self.owned(operator, &iccid_arg(&c.iccid)?).await?;
                c.metadata = Some(self.type_metadata(&p).await?);
            }
        }
        let order = self
            .queue_rpm(
                operator,
                &target,
                &commands,
                req.matching_id.clone(),
                "es2",
                EventRecord::by(Self::actor(operator)),
            )
            .await?;
        Ok(RpmOrderResponse {
            matching_id: order.id,
        })
    }

    /// The profile the commands are for (the first one's), after checking that every target
    /// is a profile of `operator` on the same eUICC that announced RPM support.
    async fn check_targets(
        &self,
        operator: &str,
        commands: &[PlannedCommand],
        eid: Option<&str>,
    ) -> Result<Profile> {
        let mut first: Option<Profile> = None;
        for c in commands {
            let p = self.owned(operator, &iccid_arg(&c.iccid)?).await?;
            if !p.state.is_on_euicc() {
                return Err(refused_in_state(
                    Es2Function::RpmOrder,
                    ICCID_INVALID_TRANSITION,
                    p.state.as_str(),
                ));
            }
            let on = p.eid.clone().unwrap_or_default();
            if eid.is_some_and(|e| e != on)
                || first
                    .as_ref()
                    .is_some_and(|f| f.eid.as_deref() != Some(on.as_str()))
            {
                return Err(Es2Error::new(
                    EID_INVALID_ASSOCIATION,
                    "the profiles are not on this eUICC",
                ));
            }
            if first.is_none() {
                first = Some(p);
            }
        }
        let Some(p) = first else {
            return Err(Es2Error::new(PROTOCOL_FORMAT_INVALID, "no command"));
        };
        self.check_rpm_capable(p.eid.as_deref().unwrap_or_default())
            .await?;
        Ok(p)
    }

    /// `8.1.1/3.8` unless the eUICC announced RPM support in its last session here.
    async fn check_rpm_capable(&self, eid: &str) -> Result<()> {
        match self.store.get_euicc_capabilities(eid).await {
            Ok(Some(c)) if c.rpm_support => Ok(()),
            Ok(Some(c)) => Err(Es2Error::new(
                EID_REFUSED,
                format!(
                    "the eUICC announced no Remote Profile Management support (SVN {})",
                    c.svn
                ),
            )),
            Ok(None) => Err(Es2Error::new(
                EID_REFUSED,
                "the eUICC's capabilities are unknown (it never completed a download here)",
            )),
            Err(e) => Err(internal(e)),
        }
    }

    /// Stores a pending RPM order for `target` with its profile event.
    async fn queue_rpm(
        &self,
        operator: &str,
        target: &Profile,
        commands: &[PlannedCommand],
        matching_id: Option<String>,
        origin: &str,
        event: EventRecord,
    ) -> Result<RpmOrder> {
        let package = encode_package(commands)?;
        if package.len() > smdpp_core::rpm_json::MAX_RPM_PACKAGE {
            return Err(Es2Error::new(
                PROTOCOL_FORMAT_INVALID,
                format!(
                    "the RPM package is {} bytes; at most {} are accepted",
                    package.len(),
                    smdpp_core::rpm_json::MAX_RPM_PACKAGE
                ),
            ));
        }
        let id = match matching_id.filter(|m| !m.is_empty()) {
            Some(m) => m,
            None => crate::upp::generate_matching_id().map_err(|e| {
                Es2Error::new(status::FUNCTION_PROVIDER_EXECUTION_ERROR, e.to_string())
            })?,
        };
        let names = summary(commands);
        let event = event
            .with_cause(format!("rpm ordered: {names}"))
            .with_detail(format!("matchingId={id} origin={origin}"));
        let new = NewRpmOrder {
            id: id.clone(),
            operator_id: operator.to_owned(),
            iccid: target.iccid.clone(),
            eid: target.eid.clone().unwrap_or_default(),
            package,
            commands: names,
            origin: origin.to_owned(),
        };
        match self.store.insert_rpm_order(&new, &event).await {
            Ok(o) => Ok(o),
            Err(StoreError::Duplicate { .. }) => Err(err(MATCHING_ID_ALREADY_IN_USE)),
            Err(e) => Err(internal(e)),
        }
    }

    /// Queues an RPM updateMetadata that brings `iccid` to its type's current metadata
    /// (profile updates when a type's metadata changed).
    pub async fn queue_metadata_update(&self, operator: &str, iccid: &str) -> Result<RpmOrder> {
        let p = self.owned(operator, &iccid_arg(iccid)?).await?;
        let cmd = PlannedCommand {
            name: RpmCommandName::UpdateMetadata,
            iccid: p.iccid.clone(),
            continue_on_failure: false,
            metadata: Some(self.type_metadata(&p).await?),
        };
        let target = self
            .check_targets(operator, std::slice::from_ref(&cmd), None)
            .await?;
        self.queue_rpm(
            operator,
            &target,
            &[cmd],
            None,
            "metadata-update",
            EventRecord::by(Self::actor(operator)),
        )
        .await
    }

    /// DeactivateSubscription (our function beside ES2+; the seed's "terminate subscription,
    /// device lost or stolen"). By the profile's state:
    /// - Allocated, Linked, Confirmed, Released: the pending order is cancelled (Table 6b,
    ///   CancelOrder to Available: the profile never left the SM-DP+, and a new order gets a
    ///   new MatchingID);
    /// - Downloaded (a BPP went to a device, no result yet) and Error: Unavailable (the BPP
    ///   is bound to that eUICC; the ICCID is not handed out again);
    /// - Installed, Enabled, Disabled: an RPM disable (mode disable) or disable-then-delete
    ///   (mode delete) is queued when the eUICC announced RPM support; otherwise the
    ///   deactivation is only recorded and notified;
    /// - Available, Unavailable: refused `8.2.1/3.5` (no subscription to end).
    ///
    /// Every accepted call records the reason as a profile event and queues
    /// HandleDownloadProgressInfo point 104 (deactivation) for the operator's systems.
    pub async fn deactivate(
        &self,
        operator: &str,
        req: &DeactivateRequest,
    ) -> Result<DeactivateResponse> {
        let p = self.owned(operator, &req.iccid).await?;
        let reason = req.reason.as_str();
        let mode = req.mode.as_str();
        let cause = format!("deactivated: {reason} (mode {mode})");
        let notify = |p: &Profile| {
            hdpi_deactivation(p, reason, mode)
                .into_iter()
                .collect::<Vec<_>>()
        };
        match p.state {
            ProfileState::Allocated
            | ProfileState::Linked
            | ProfileState::Confirmed
            | ProfileState::Released => {
                let cancel = CancelOrderRequest {
                    header: Es2RequestHeader {
                        function_requester_identifier: operator.to_owned(),
                        function_call_identifier: format!("deactivate-{}", p.version),
                    },
                    iccid: req.iccid.clone(),
                    eid: None,
                    matching_id: None,
                    final_profile_status_indicator: FinalProfileStatusIndicator::Available,
                };
                self.cancel_order(operator, &cancel).await?;
                let after = self
                    .record_deactivation(&p.iccid, &cause, notify(&p))
                    .await?;
                Ok(DeactivateResponse {
                    action: "orderCancelled".into(),
                    state: after.state.to_string(),
                    matching_id: None,
                })
            }
            ProfileState::Downloaded | ProfileState::Error => {
                let event = EventRecord::by(Self::actor(operator))
                    .with_cause(cause)
                    .with_signal(smdpp_store::Signal::Deactivated)
                    .with_outbox(notify(&p).into_iter().chain(crate::outbox::es12_delete(&p)));
                let update = ProfileUpdate {
                    state: Some(ProfileState::Unavailable),
                    cc_hash: Patch::Clear,
                    ..ProfileUpdate::default()
                };
                let after = match self
                    .store
                    .transition_ending_sessions(
                        &p.iccid,
                        &Expect::state(p.state).and_version(p.version),
                        &update,
                        &event,
                        crate::session::state::ENDED,
                        smdpp_store::now_ms(),
                    )
                    .await
                {
                    Ok((after, _)) => after,
                    Err(StoreError::Conflict { state, .. }) => {
                        return Err(refused_in_state(
                            Es2Function::DeactivateSubscription,
                            ICCID_INVALID_TRANSITION,
                            &state,
                        ));
                    }
                    Err(e) => return Err(internal(e)),
                };
                if let Err(e) = self.sidecar.delete_bpp(&p.iccid).await {
                    tracing::warn!(iccid = %p.iccid, error = %e, "could not delete the cached BPP");
                }
                Ok(DeactivateResponse {
                    action: "retired".into(),
                    state: after.state.to_string(),
                    matching_id: None,
                })
            }
            s if s.is_on_euicc() => {
                let event = EventRecord::by(Self::actor(operator))
                    .with_signal(smdpp_store::Signal::Deactivated)
                    .with_outbox(notify(&p));
                let mut commands = vec![PlannedCommand {
                    name: RpmCommandName::Disable,
                    iccid: p.iccid.clone(),
                    // Delete needs a disabled profile; an already disabled one fails the
                    // disable (profileNotInEnabledState) and the delete goes on.
                    continue_on_failure: req.mode == DeactivationMode::Delete,
                    metadata: None,
                }];
                if req.mode == DeactivationMode::Delete {
                    commands.push(PlannedCommand {
                        name: RpmCommandName::Delete,
                        iccid: p.iccid.clone(),
                        continue_on_failure: false,
                        metadata: None,
                    });
                }
                if self
                    .check_rpm_capable(p.eid.as_deref().unwrap_or_default())
                    .await
                    .is_ok()
                {
                    let order = self
                        .queue_rpm(
                            operator,
                            &p,
                            &commands,
                            None,
                            &format!("deactivation:{reason}"),
                            event.with_detail(cause.clone()),
                        )
                        .await?;
                    Ok(DeactivateResponse {
                        action: "rpmQueued".into(),
                        state: p.state.to_string(),
                        matching_id: Some(order.id),
                    })
                } else {
                    let after = self
                        .record_deactivation(
                            &p.iccid,
                            &format!("{cause}; the eUICC cannot be reached by RPM"),
                            notify(&p),
                        )
                        .await?;
                    Ok(DeactivateResponse {
                        action: "recorded".into(),
                        state: after.state.to_string(),
                        matching_id: None,
                    })
                }
            }
            other => Err(refused_in_state(
                Es2Function::DeactivateSubscription,
                ICCID_INVALID_TRANSITION,
                other.as_str(),
            )),
        }
    }

    /// A profile event (no state change) recording a deactivation, with its outbox rows.
    async fn record_deactivation(
        &self,
        iccid: &str,
        cause: &str,
        outbox: Vec<smdpp_store::NewOutboxRow>,
    ) -> Result<Profile> {
        let p = self
            .store
            .get_profile(iccid)
            .await
            .map_err(internal)?
            .ok_or_else(|| err(ICCID_UNKNOWN))?;
        let event = EventRecord::by("es2")
            .with_cause(cause.to_owned())
            .with_signal(smdpp_store::Signal::Deactivated)
            .with_outbox(outbox);
        self.store
            .transition(
                iccid,
                &Expect::version(p.version),
                &ProfileUpdate::default(),
                &event,
            )
            .await
            .map_err(internal)
    }
}

/// A command of the `commands` form for `iccid`.
fn plan(s: &RpmCommandSpec, iccid: &Iccid) -> Result<PlannedCommand> {
    let metadata = match (&s.command, &s.metadata) {
        (RpmCommandName::UpdateMetadata, Some(v)) => Some(metadata_from_values(v)?),
        _ => None,
    };
    Ok(PlannedCommand {
        name: s.command,
        iccid: iccid.as_str().to_owned(),
        continue_on_failure: s.continue_on_failure,
        metadata,
    })
}

fn iccid_arg(digits: &str) -> Result<Iccid> {
    Iccid::parse(digits).ok_or_else(|| err(ICCID_UNKNOWN))
}

/// HandleDownloadProgressInfo point 104 (deactivation) with the reason and mode, or `None`
/// when the profile has no operator.
fn hdpi_deactivation(p: &Profile, reason: &str, mode: &str) -> Option<smdpp_store::NewOutboxRow> {
    let mut row = crate::outbox::hdpi(
        p,
        None,
        point::DEACTIVATED,
        smdpp_core::status::FunctionExecutionStatus::success(),
        None,
    )?;
    let mut body: smdpp_core::callbacks::HandleDownloadProgressInfo =
        serde_json::from_str(&row.body).ok()?;
    body.deactivation_reason = Some(reason.to_owned());
    body.deactivation_mode = Some(mode.to_owned());
    row.body = serde_json::to_string(&body).ok()?;
    Some(row)
}
