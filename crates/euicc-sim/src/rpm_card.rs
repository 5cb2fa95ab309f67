//! ES10b.LoadRpmPackage: the card side of SGP.22 v3 Remote Profile Management (see
//! `rpm-v3-digest.md` §5.4; the v3 text itself was not available, so the checks below
//! follow the digest and the v2.2 analogues).
//!
//! Package-level checks, in order: an authenticated RSP session (else the unsigned error
//! `noSession 4`), smdpSignature3 with the PK of the session's CERT.DPauth over
//! `smdpSigned3 ‖ 5F37 euiccSignature1` (else the signed `invalidSignature 2`), the
//! transactionId (else `invalidTransactionId 5`). Then each command runs in package order;
//! the first failing command stops the package unless it has `continueOnFailure` (commands
//! not run get no result entry). Per command: the profile exists, the session's SM-DP+ OID
//! installed it (profiles recorded without an installing OID are allowed), the PPRs, the
//! state. Codes used where the digest gives none: updateMetadata of an unknown profile →
//! `commandError 7`, by another SM-DP+ → `undefinedError 127`; contactPcmp of an unknown
//! profile → `commandError 7`, otherwise `noLprConfiguration 13` (no LPR support);
//! listProfileInfo by profileOwnerOid → an empty list (no RpmConfiguration is stored).
//!
//! The signed result is also queued as a `loadRpmPackageResult` (bit 7) notification to
//! the session's SM-DP+; every enable/disable/delete queues the OtherSignedNotification
//! with bit 4/5/6 the profile's notification configuration asks for (its local bit 1/2/3
//! or the RPM bit). The RSP session ends with the command (as after LoadBoundProfilePackage).

use rsp_asn1::common::{Iccid, ProfileIdentifier, ppr_ids};
use rsp_asn1::es10c::{ProfileInfoListRequest, ProfileInfoListResponse, ProfileSearchCriteria};
use rsp_asn1::notification::{NotificationMetadata, PendingNotification};
use rsp_asn1::prim::Oid;
use rsp_asn1::rpm::{
    ListProfileInfoCriteria, LoadRpmPackageRequest, LoadRpmPackageResult,
    LoadRpmPackageResultDataSigned, LoadRpmPackageResultSigned, ResultForm, RpmCommandDetails,
    RpmCommandResult, RpmCommandResultData, RpmFinalResult, UpdateMetadataRequest,
    smdp_signed3_tbs,
};
use rsp_asn1::{BitString, Codec, Extensions};
use rsp_crypto::ecdsa::verify_raw;

use super::{Euicc, Session};
use crate::error::Es10Error;
use crate::state::{NotificationOp, NotificationRecord, ProfileStateRec};

/// `loadRpmPackageErrorCodeSigned invalidSignature`.
const ERR_INVALID_SIGNATURE: i64 = 2;
/// `loadRpmPackageErrorCodeNotSigned noSession`.
const ERR_NO_SESSION: i64 = 4;
/// `loadRpmPackageErrorCodeSigned invalidTransactionId`.
const ERR_INVALID_TRANSACTION_ID: i64 = 5;
/// `undefinedError`.
const ERR_UNDEFINED: i64 = 127;

impl Euicc {
    /// Whether this card implements SGP.22 v3 (announces RPM support and accepts
    /// LoadRpmPackage); see [`crate::EuiccState::v3`].
    pub fn is_v3(&self) -> bool {
        self.state.v3
    }

    /// ES10b.LoadRpmPackage (SGP.22 v3): verify and run an RPM package (see the checks in
    /// the module documentation of this function's source, `rpm_card.rs`, and
    /// `rpm-v3-digest.md` §5.4). Returns the result; a signed result is also queued as a
    /// pending notification. A v2-only card refuses with [`Es10Error::UnknownCommand`].
    pub fn load_rpm_package(
        &mut self,
        req: &LoadRpmPackageRequest,
    ) -> Result<LoadRpmPackageResult, Es10Error> {
        if !self.state.v3 {
            return Err(Es10Error::UnknownCommand);
        }
        let s3 = &req.smdp_signed3;
        let authenticated = self.session.as_ref().is_some_and(|s| s.auth.is_some());
        let Some(Session {
            auth: Some(auth), ..
        }) = authenticated.then(|| self.session.take()).flatten()
        else {
            return Ok(LoadRpmPackageResult::NotSigned {
                transaction_id: s3.transaction_id.clone(),
                error_code: ERR_NO_SESSION,
            });
        };
        let Some(smdp_oid) = Oid::from_dotted(&auth.dpauth.smdp_oid) else {
            return Ok(LoadRpmPackageResult::NotSigned {
                transaction_id: s3.transaction_id.clone(),
                error_code: ERR_UNDEFINED,
            });
        };
        let tbs = smdp_signed3_tbs(&req.smdp_signed3_raw, &auth.euicc_signature1);
        let final_result = if verify_raw(
            auth.dpauth.curve,
            &auth.dpauth.public_key,
            &tbs,
            &req.smdp_signature3,
        )
        .is_err()
        {
            RpmFinalResult::ErrorCode(ERR_INVALID_SIGNATURE)
        } else if s3.transaction_id != auth.transaction_id {
            RpmFinalResult::ErrorCode(ERR_INVALID_TRANSACTION_ID)
        } else {
            let mut results = Vec::new();
            for cmd in &s3.rpm_package.0 {
                let r = self.run_rpm_command(&cmd.details, &auth.dpauth.smdp_oid);
                let ok = r.data.is_ok();
                results.push(r);
                if !ok && !cmd.continue_on_failure {
                    break;
                }
            }
            RpmFinalResult::ExecutionResults(results)
        };
        let first_iccid = s3.rpm_package.0.first().and_then(|c| c.details.iccid());
        let seq = self.next_seq();
        let data = LoadRpmPackageResultDataSigned {
            transaction_id: auth.transaction_id.clone(),
            notification_metadata: NotificationMetadata {
                seq_number: seq,
                profile_management_operation: BitString::from_bits(&[
                    NotificationOp::LoadRpmPackageResult.bit(),
                ]),
                notification_address: auth.server_address.clone(),
                iccid: first_iccid,
                extensions: Extensions(Vec::new()),
            },
            smdp_oid,
            final_result,
        };
        let signature = self.sign(&LoadRpmPackageResultSigned::data_bytes(
            &data,
            ResultForm::Automatic,
        ));
        let signed = LoadRpmPackageResultSigned::from_parts(data, signature, ResultForm::Automatic);
        self.state.notifications.push(NotificationRecord {
            seq_number: seq,
            operation: NotificationOp::LoadRpmPackageResult,
            address: auth.server_address.clone(),
            iccid: first_iccid.map(|i| i.to_digits()),
            pending_notification: PendingNotification::LoadRpmPackageResultSigned(Box::new(
                signed.clone(),
            ))
            .encode(),
        });
        self.dirty = true;
        Ok(LoadRpmPackageResult::Signed(Box::new(signed)))
    }

    fn rpm_index(&self, iccid: &Iccid) -> Option<usize> {
        self.profile_index(&ProfileIdentifier::Iccid(*iccid))
    }

    /// Whether the SM-DP+ with `smdp_oid` may manage the profile at `idx`: it installed it
    /// (or the installing SM-DP+ is unknown: profiles recorded before it was kept).
    fn rpm_authorised(&self, idx: usize, smdp_oid: &str) -> bool {
        self.state.profiles[idx]
            .smdp_oid
            .as_deref()
            .is_none_or(|o| o == smdp_oid)
    }

    fn run_rpm_command(&mut self, cmd: &RpmCommandDetails, smdp_oid: &str) -> RpmCommandResult {
        let with = |iccid: &Iccid, data| RpmCommandResult {
            iccid: Some(*iccid),
            data,
        };
        match cmd {
            RpmCommandDetails::Enable { iccid } => with(
                iccid,
                RpmCommandResultData::Enable(self.rpm_enable(iccid, smdp_oid)),
            ),
            RpmCommandDetails::Disable { iccid } => with(
                iccid,
                RpmCommandResultData::Disable(self.rpm_disable(iccid, smdp_oid)),
            ),
            RpmCommandDetails::Delete { iccid } => with(
                iccid,
                RpmCommandResultData::Delete(self.rpm_delete(iccid, smdp_oid)),
            ),
            RpmCommandDetails::UpdateMetadata { iccid, request } => with(
                iccid,
                RpmCommandResultData::UpdateMetadata(
                    self.rpm_update_metadata(iccid, request, smdp_oid),
                ),
            ),
            RpmCommandDetails::ListProfileInfo { criteria, tag_list } => {
                let list = match criteria {
                    ListProfileInfoCriteria::Iccid(i) => match self.rpm_index(i) {
                        Some(idx) if self.rpm_authorised(idx, smdp_oid) => {
                            self.profiles_info(&ProfileInfoListRequest {
                                search_criteria: Some(ProfileSearchCriteria::Iccid(*i)),
                                tag_list: tag_list.clone(),
                            })
                        }
                        _ => ProfileInfoListResponse::Ok(Vec::new()),
                    },
                    ListProfileInfoCriteria::ProfileOwnerOid(_) => {
                        ProfileInfoListResponse::Ok(Vec::new())
                    }
                };
                RpmCommandResult {
                    iccid: None,
                    data: RpmCommandResultData::ListProfileInfo(list.encode()),
                }
            }
            RpmCommandDetails::ContactPcmp { iccid, .. } => {
                // contactPcmpResult [0] { contactPcmpError [1] }: noLprConfiguration 13
                // (this card has no LPR), commandError 7 for an unknown profile.
                let code = if self.rpm_index(iccid).is_some() {
                    0x0D
                } else {
                    0x07
                };
                with(
                    iccid,
                    RpmCommandResultData::ContactPcmp(vec![0xA0, 0x03, 0x81, 0x01, code]),
                )
            }
        }
    }

    /// enableResult: ok 0, iccidOrAidNotFound 1, profileNotInDisabledState 2,
    /// disallowedByPolicy 3 (PPR1 of the enabled profile), disallowedForRpm 9.
    fn rpm_enable(&mut self, iccid: &Iccid, smdp_oid: &str) -> i64 {
        let Some(idx) = self.rpm_index(iccid) else {
            return 1;
        };
        if !self.rpm_authorised(idx, smdp_oid) {
            return 9;
        }
        if self.state.profiles[idx].state == ProfileStateRec::Enabled {
            return 2;
        }
        let current = self
            .state
            .profiles
            .iter()
            .position(|p| p.state == ProfileStateRec::Enabled);
        if let Some(c) = current {
            if Self::has_ppr(&self.state.profiles[c], ppr_ids::PPR1) {
                return 3;
            }
            self.state.profiles[c].state = ProfileStateRec::Disabled;
            let p = self.state.profiles[c].clone();
            self.other_notifications(&p, NotificationOp::RpmDisable);
        }
        self.state.profiles[idx].state = ProfileStateRec::Enabled;
        self.dirty = true;
        let p = self.state.profiles[idx].clone();
        self.other_notifications(&p, NotificationOp::RpmEnable);
        0
    }

    /// disableResult: ok 0, iccidOrAidNotFound 1, profileNotInEnabledState 2,
    /// disallowedByPolicy 3 (PPR1), disallowedForRpm 10.
    fn rpm_disable(&mut self, iccid: &Iccid, smdp_oid: &str) -> i64 {
        let Some(idx) = self.rpm_index(iccid) else {
            return 1;
        };
        if !self.rpm_authorised(idx, smdp_oid) {
            return 10;
        }
        if Self::has_ppr(&self.state.profiles[idx], ppr_ids::PPR1) {
            return 3;
        }
        if self.state.profiles[idx].state != ProfileStateRec::Enabled {
            return 2;
        }
        self.state.profiles[idx].state = ProfileStateRec::Disabled;
        self.dirty = true;
        let p = self.state.profiles[idx].clone();
        self.other_notifications(&p, NotificationOp::RpmDisable);
        0
    }

    /// deleteResult: ok 0, iccidOrAidNotFound 1, profileNotInDisabledState 2,
    /// disallowedByPolicy 3 (PPR2, or another SM-DP+: delete has no disallowedForRpm).
    fn rpm_delete(&mut self, iccid: &Iccid, smdp_oid: &str) -> i64 {
        let Some(idx) = self.rpm_index(iccid) else {
            return 1;
        };
        if !self.rpm_authorised(idx, smdp_oid) {
            return 3;
        }
        if Self::has_ppr(&self.state.profiles[idx], ppr_ids::PPR2) {
            return 3;
        }
        if self.state.profiles[idx].state != ProfileStateRec::Disabled {
            return 2;
        }
        let p = self.state.profiles.remove(idx);
        self.dirty = true;
        self.other_notifications(&p, NotificationOp::RpmDelete);
        0
    }

    /// updateMetadataResult: ok 0, commandError 7 (unknown profile), undefinedError 127
    /// (another SM-DP+). Applies serviceProviderName, profileName, iconType, icon and the
    /// PPRs; other components are ignored.
    fn rpm_update_metadata(
        &mut self,
        iccid: &Iccid,
        req: &UpdateMetadataRequest,
        smdp_oid: &str,
    ) -> i64 {
        let Some(idx) = self.rpm_index(iccid) else {
            return 7;
        };
        if !self.rpm_authorised(idx, smdp_oid) {
            return ERR_UNDEFINED;
        }
        let p = &mut self.state.profiles[idx];
        if let Some(v) = &req.service_provider_name {
            p.service_provider_name = v.clone();
        }
        if let Some(v) = &req.profile_name {
            p.profile_name = v.clone();
        }
        if let Some(v) = req.icon_type {
            p.icon_type = i64::try_from(v).ok();
        }
        if let Some(v) = &req.icon {
            p.icon = (!v.is_empty()).then(|| v.clone());
        }
        if let Some(v) = &req.profile_policy_rules {
            p.profile_policy_rules = (!v.is_empty()).then(|| v.clone());
        }
        self.dirty = true;
        0
    }
}
