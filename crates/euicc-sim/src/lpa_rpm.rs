//! RPM polling (SGP.22 v3 Remote Profile Management), the LPA side.
//!
//! ```text
//! per installed profile (its SM-DP+ = the address it was downloaded from):
//!   GetEUICCChallenge + GetEUICCInfo1 → initiateAuthentication
//!   → AuthenticateServer (ctxParams1: operationType {rpm}, iccid, no matchingId)
//!   → authenticateClient → authenticateClientOkRpm {smdpSigned3, smdpSignature3}
//!   → [consent] LoadRpmPackage → handleNotification(loadRpmPackageResult)
//!   → the other pending notifications; again while rpmPending
//! ```
//! `8.2.6/3.8` at authenticateClient means "nothing pending" for that profile. Without
//! consent ([`PollOptions::rpm_consent`] `false`) the session is cancelled with
//! `endUserRejection`.

use rsp_asn1::Codec;
use rsp_asn1::Signed;
use rsp_asn1::auth::{
    AuthenticateServerRequest, AuthenticateServerResponse, CtxParams1,
    CtxParamsForCommonAuthentication, SignatureTlv, SkiTlv,
};
use rsp_asn1::cancel::CancelSessionReason;
use rsp_asn1::common::Iccid;
use rsp_asn1::euicc_info::{DeviceCapabilities, DeviceInfo};
use rsp_asn1::rpm::{
    LoadRpmPackageRequest, LoadRpmPackageResult, RpmCommandResult, RpmFinalResult, SmdpSigned3,
};
use rsp_asn1::{Certificate, Extensions};
use smdpp_core::es9_json::{self as es9, Es9Function};

use super::{DEFAULT_TAC, Lpa, LpaError, NotificationDelivery, Step, encode_imei};
use crate::euicc::Euicc;

/// Options of [`Lpa::poll`].
#[derive(Clone, Debug)]
pub struct PollOptions {
    /// The end user agrees to RPM (default `true`). When `false` a received package is not
    /// loaded: the session is cancelled with `endUserRejection(0)`.
    pub rpm_consent: bool,
    /// Poll only for this profile (ICCID digits); every installed profile when `None`.
    pub iccid: Option<String>,
    /// Device IMEI (15 or 16 digits); its first 8 digits become the TAC.
    pub imei: Option<String>,
    /// Most packages fetched per profile in one poll (a guard against a server that always
    /// sets `rpmPending`).
    pub max_packages: usize,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions {
            rpm_consent: true,
            iccid: None,
            imei: None,
            max_packages: 8,
        }
    }
}

/// One command of a received package and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RpmCommandOutcome {
    /// The command (`enable`, `disable`, `delete`, `listProfileInfo`, `updateMetadata`,
    /// `contactPcmp`).
    pub command: String,
    /// Its ICCID, if it names one.
    pub iccid: Option<String>,
    /// The result code (0 ok; see [`rsp_asn1::rpm::RpmCommandResultData::code`]); `None`
    /// when the command was not run.
    pub code: Option<i64>,
    /// Whether it succeeded.
    pub ok: bool,
    /// The complete `RpmCommandResult` (hex DER), when the command was run.
    pub result_der: Option<String>,
}

/// One RPM package received from an SM-DP+.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RpmPackageOutcome {
    /// The SM-DP+ polled.
    pub smdp_address: String,
    /// The ICCID the LPA polled for.
    pub polled_iccid: String,
    /// The transactionId (hex).
    pub transaction_id: String,
    /// `smdpSigned3.rpmPending`: more packages wait.
    pub rpm_pending: bool,
    /// The commands, in package order.
    pub commands: Vec<RpmCommandOutcome>,
    /// The package-level error code of the result, if any (signed: invalidSignature 2,
    /// invalidTransactionId 5; not signed: noSession 4; undefinedError 127).
    pub package_error: Option<i64>,
    /// The end user refused (no LoadRpmPackage; the session was cancelled).
    pub rejected: bool,
    /// Whether the signed result was delivered to the SM-DP+ (and removed from the eUICC).
    pub result_sent: bool,
    /// Why the result could not be delivered, if so.
    pub result_error: Option<String>,
}

/// A profile whose poll failed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PollFailure {
    /// The SM-DP+ polled.
    pub smdp_address: String,
    /// The ICCID polled for.
    pub iccid: String,
    /// What went wrong.
    pub error: String,
}

/// What [`Lpa::poll`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PollReport {
    /// The packages received, in order.
    pub packages: Vec<RpmPackageOutcome>,
    /// The ICCIDs for which the SM-DP+ had nothing pending (`8.2.6/3.8`).
    pub nothing_pending: Vec<String>,
    /// The polls that failed.
    pub failures: Vec<PollFailure>,
    /// The other pending notifications sent after the packages.
    pub notifications: Vec<NotificationDelivery>,
}

fn outcomes(s3: &SmdpSigned3, results: &[RpmCommandResult]) -> Vec<RpmCommandOutcome> {
    s3.rpm_package
        .0
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let r = results.get(i);
            RpmCommandOutcome {
                command: c.details.name().to_owned(),
                iccid: c.details.iccid().map(|i| i.to_digits()),
                code: r.map(|r| r.data.code()),
                ok: r.is_some_and(|r| r.data.is_ok()),
                result_der: r.map(|r| hex::encode_upper(r.encode())),
            }
        })
        .collect()
}

impl Lpa {
    /// Poll the SM-DP+ of every installed profile (or of [`PollOptions::iccid`]) for RPM
    /// packages and execute them (see the module documentation of `lpa_rpm.rs`). A v2-only
    /// eUICC cannot take part: [`LpaError::InvalidInput`]. Failures of one profile's poll
    /// are reported in [`PollReport::failures`] and do not stop the others.
    pub async fn poll(
        &self,
        euicc: &mut Euicc,
        opts: &PollOptions,
    ) -> Result<PollReport, LpaError> {
        if !euicc.is_v3() {
            return Err(LpaError::InvalidInput(
                "this eUICC is SGP.22 v2 only (no RPM support); create it without --svn 2.x".into(),
            ));
        }
        let (tac, imei) = match &opts.imei {
            Some(i) => {
                let (t, b) = encode_imei(i)?;
                (t, Some(b))
            }
            None => (DEFAULT_TAC, None),
        };
        let want = opts
            .iccid
            .as_deref()
            .map(|i| i.trim().trim_end_matches(['F', 'f']).to_owned());
        let targets: Vec<(String, String)> = euicc
            .state()
            .profiles
            .iter()
            .filter(|p| want.as_ref().is_none_or(|w| *w == p.iccid))
            .map(|p| (p.smdp_address.clone(), p.iccid.clone()))
            .collect();
        if let Some(w) = &want
            && targets.is_empty()
        {
            return Err(LpaError::InvalidInput(format!("no installed profile {w}")));
        }
        let lpa = self.for_euicc(euicc);
        let mut report = PollReport::default();
        for (address, iccid_digits) in targets {
            let Some(iccid) = Iccid::from_digits(&iccid_digits) else {
                continue;
            };
            for _ in 0..opts.max_packages.max(1) {
                // An earlier package may have deleted the profile.
                if euicc.state().find_profile(&iccid_digits).is_none() {
                    break;
                }
                match lpa
                    .poll_once(euicc, &address, iccid, opts, tac, imei.clone())
                    .await
                {
                    Ok(None) => {
                        report.nothing_pending.push(iccid_digits.clone());
                        break;
                    }
                    Ok(Some(o)) => {
                        let again = o.rpm_pending && !o.rejected;
                        report.packages.push(o);
                        if !again {
                            break;
                        }
                    }
                    Err(e) => {
                        report.failures.push(PollFailure {
                            smdp_address: address.clone(),
                            iccid: iccid_digits.clone(),
                            error: e.to_string(),
                        });
                        break;
                    }
                }
            }
        }
        if !report.packages.is_empty() {
            report.notifications = lpa.process_notifications(euicc).await;
        }
        euicc
            .save_if_dirty()
            .map_err(|e| LpaError::InvalidInput(format!("saving the eUICC state: {e}")))?;
        Ok(report)
    }

    /// One RSP session asking `address` for an RPM package for `iccid`; `None` when
    /// nothing is pending.
    async fn poll_once(
        &self,
        euicc: &mut Euicc,
        address: &str,
        iccid: Iccid,
        opts: &PollOptions,
        tac: [u8; 4],
        imei: Option<Vec<u8>>,
    ) -> Result<Option<RpmPackageOutcome>, LpaError> {
        let challenge = euicc
            .get_euicc_challenge()
            .map_err(|e| LpaError::InvalidInput(e.to_string()))?;
        let ia_req = es9::InitiateAuthenticationRequest {
            header: None,
            euicc_challenge: challenge.to_vec(),
            euicc_info1: euicc.euicc_info1().encode(),
            smdp_address: address.to_owned(),
        };
        let ia: es9::InitiateAuthenticationResponse = self
            .client
            .call(address, Es9Function::InitiateAuthentication, &ia_req)
            .await?;
        let proto = |function: Es9Function, detail: String| LpaError::Protocol { function, detail };
        let f = Es9Function::InitiateAuthentication;
        let server_signed1 = Signed::decode(&ia.server_signed1)
            .map_err(|e| proto(f, format!("serverSigned1: {e}")))?;
        let server_signature1 = SignatureTlv::decode(&ia.server_signature1)
            .map_err(|e| proto(f, format!("serverSignature1: {e}")))?
            .0;
        let ci = SkiTlv::decode(&ia.euicc_ci_pkid_to_be_used)
            .map_err(|e| proto(f, format!("euiccCiPKIdToBeUsed: {e}")))?
            .0;
        let server_certificate = Certificate::decode(&ia.server_certificate)
            .map_err(|e| proto(f, format!("serverCertificate: {e}")))?;
        let ctx = CtxParamsForCommonAuthentication {
            operation_type: None,
            iccid: None,
            matching_id_source: None,
            matching_id: None,
            device_info: DeviceInfo {
                tac: tac.to_vec(),
                device_capabilities: DeviceCapabilities::default(),
                imei,
                preferred_languages: None,
                device_test_mode: false,
                lpa_rsp_capability: None,
                extensions: Extensions(Vec::new()),
            },
            extensions: Extensions(Vec::new()),
        }
        .with_rpm(Some(iccid));
        let as_req = AuthenticateServerRequest {
            server_signed1,
            server_signature1,
            euicc_ci_pkid_to_be_used: ci,
            server_certificate,
            ctx_params1: CtxParams1::CommonAuthentication(Box::new(ctx)),
        };
        let asn_tid = as_req.server_signed1.value().transaction_id.clone();
        let asr = euicc.authenticate_server(&as_req, Some(address));
        let ac_req = es9::AuthenticateClientRequest {
            header: None,
            transaction_id: ia.transaction_id.clone(),
            authenticate_server_response: asr.encode(),
        };
        if let AuthenticateServerResponse::Error(e) = &asr {
            let _ = self
                .client
                .call::<_, es9::AuthenticateClientAnswer>(
                    address,
                    Es9Function::AuthenticateClient,
                    &ac_req,
                )
                .await;
            let code = e.authenticate_error_code;
            return Err(LpaError::Euicc {
                step: Step::AuthenticateServer,
                code: Some(code.to_i64()),
                detail: format!("authenticateErrorCode {code:?}"),
            });
        }
        let json_tid = ia.transaction_id.clone();
        let answer: es9::AuthenticateClientAnswer = match self
            .client
            .call(address, Es9Function::AuthenticateClient, &ac_req)
            .await
        {
            Ok(a) => a,
            Err(LpaError::Server(s)) => {
                // The SM-DP+ closed its side; drop the card's session too.
                euicc.reset();
                if s.subject_code == "8.2.6" && s.reason_code == "3.8" {
                    return Ok(None);
                }
                return Err(LpaError::Server(s));
            }
            Err(e) => {
                let reason = match &e {
                    LpaError::Transport(_) => CancelSessionReason::Timeout,
                    _ => CancelSessionReason::UndefinedReason,
                };
                let _ = self
                    .cancel_session(euicc, address, &asn_tid, &json_tid, reason)
                    .await;
                return Err(e);
            }
        };
        let f = Es9Function::AuthenticateClient;
        let rpm = match answer {
            es9::AuthenticateClientAnswer::Rpm(r) => r,
            es9::AuthenticateClientAnswer::Download(_) => {
                let _ = self
                    .cancel_session(
                        euicc,
                        address,
                        &asn_tid,
                        &json_tid,
                        CancelSessionReason::UndefinedReason,
                    )
                    .await;
                return Err(proto(
                    f,
                    "a profile download answer to an RPM request".into(),
                ));
            }
        };
        let decoded = SmdpSigned3::decode(&rpm.smdp_signed3)
            .map_err(|e| format!("smdpSigned3: {e}"))
            .and_then(|s3| {
                SignatureTlv::decode(&rpm.smdp_signature3)
                    .map(|s| (s3, s.0))
                    .map_err(|e| format!("smdpSignature3: {e}"))
            });
        let (s3, smdp_signature3) = match decoded {
            Ok(v) => v,
            Err(detail) => {
                // invalidRpmPackage(28).
                let _ = self
                    .cancel_session(
                        euicc,
                        address,
                        &asn_tid,
                        &json_tid,
                        CancelSessionReason::from_i64(28),
                    )
                    .await;
                return Err(proto(f, detail));
            }
        };
        let mut out = RpmPackageOutcome {
            smdp_address: address.to_owned(),
            polled_iccid: iccid.to_digits(),
            transaction_id: json_tid.to_hex(),
            rpm_pending: s3.rpm_pending,
            commands: outcomes(&s3, &[]),
            package_error: None,
            rejected: false,
            result_sent: false,
            result_error: None,
        };
        if !opts.rpm_consent {
            out.rejected = true;
            self.cancel_session(
                euicc,
                address,
                &asn_tid,
                &json_tid,
                CancelSessionReason::EndUserRejection,
            )
            .await?;
            return Ok(Some(out));
        }
        let req = LoadRpmPackageRequest {
            smdp_signed3: s3.clone(),
            smdp_signed3_raw: rpm.smdp_signed3.clone(),
            smdp_signature3,
            target_esim_port: None,
        };
        let result = euicc.load_rpm_package(&req).map_err(|e| LpaError::Euicc {
            step: Step::LoadRpmPackage,
            code: None,
            detail: e.to_string(),
        })?;
        let _ = euicc.save_if_dirty();
        match result {
            LoadRpmPackageResult::NotSigned { error_code, .. } => {
                out.package_error = Some(error_code);
            }
            LoadRpmPackageResult::Signed(signed) => {
                match &signed.data.final_result {
                    RpmFinalResult::ExecutionResults(r) => out.commands = outcomes(&s3, r),
                    RpmFinalResult::ErrorCode(c) => out.package_error = Some(*c),
                }
                let seq = signed.data.notification_metadata.seq_number;
                match self.send_notification(euicc, seq).await {
                    Ok(()) => out.result_sent = true,
                    Err(e) => out.result_error = Some(e.to_string()),
                }
            }
        }
        Ok(Some(out))
    }
}
