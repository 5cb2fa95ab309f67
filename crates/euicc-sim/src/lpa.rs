//! The LPA: profile download (SGP.22 section 3.1.2 + 3.1.3) and notification delivery
//! (section 3.5) between an [`Euicc`] and an SM-DP+ reached over ES9+ ([`Es9Client`]).
//!
//! ```text
//! GetEUICCChallenge + GetEUICCInfo1 → initiateAuthentication → AuthenticateServer
//!   → authenticateClient → PrepareDownload → getBoundProfilePackage
//!   → LoadBoundProfilePackage → handleNotification(PIR) → RemoveNotificationFromList
//! ```
//!
//! Failure handling, like a real LPA:
//! - the eUICC refuses AuthenticateServer: the `authenticateResponseError` is still sent in
//!   authenticateClient (the SM-DP+ learns why), then [`LpaError::Euicc`];
//! - after AuthenticateServer succeeded, any other failure (server `Failed`, HTTP/transport
//!   error, eUICC refusing PrepareDownload, missing Confirmation Code) cancels the session:
//!   ES10b.CancelSession with a reason fitting the cause, then ES9+ cancelSession;
//! - a ProfileInstallationResult with an `errorResult` is *not* cancelled: it is delivered with
//!   handleNotification and reported as [`LpaError::InstallFailed`].
//!
//! Negative tests drive the same flow with [`DownloadHooks`] (see [`Tamper`]) to change any
//! message before it is sent, or stop after a step and continue by hand with [`Lpa::client`].

use rsp_asn1::Codec;
use rsp_asn1::Signed;
use rsp_asn1::auth::{
    AuthenticateServerRequest, AuthenticateServerResponse, CtxParams1,
    CtxParamsForCommonAuthentication, SignatureTlv, SkiTlv,
};
use rsp_asn1::cancel::{CancelSessionReason, CancelSessionRequest, CancelSessionResponse};
use rsp_asn1::common::{Octet32, TransactionId as AsnTid};
use rsp_asn1::download::{
    FinalResult, PrepareDownloadRequest, PrepareDownloadResponse, ProfileInstallationResult,
    SmdpSigned2,
};
use rsp_asn1::euicc_info::{DeviceCapabilities, DeviceInfo};
use rsp_asn1::{Certificate, Extensions};
use smdpp_core::ActivationCode;
use smdpp_core::es9_json::{self as es9, Es9Function, TransactionId as JsonTid};
use smdpp_core::status::ExecutionStatus;

use crate::euicc::Euicc;
pub use crate::http::{Es9Client, Transport};

#[path = "lpa_rpm.rs"]
mod rpm;
pub use rpm::{PollFailure, PollOptions, PollReport, RpmCommandOutcome, RpmPackageOutcome};

/// TAC sent when no IMEI is given (the one lpac uses).
pub const DEFAULT_TAC: [u8; 4] = [0x35, 0x29, 0x06, 0x11];

/// An SM-DP+ `Failed` response (`header.functionExecutionStatus`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    /// The ES9+ function.
    pub function: Es9Function,
    /// `Failed` or `Expired` (or whatever non-success status was sent).
    pub status: ExecutionStatus,
    /// `statusCodeData.subjectCode` (empty if absent).
    pub subject_code: String,
    /// `statusCodeData.reasonCode` (empty if absent).
    pub reason_code: String,
    /// `statusCodeData.subjectIdentifier`.
    pub subject_identifier: Option<String>,
    /// `statusCodeData.message`.
    pub message: Option<String>,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed: {}/{}",
            self.function, self.subject_code, self.reason_code
        )?;
        if let Some(m) = &self.message {
            write!(f, " ({m})")?;
        }
        Ok(())
    }
}

/// A step of the download, for hooks and errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// ES9+ initiateAuthentication.
    InitiateAuthentication,
    /// ES10b.AuthenticateServer.
    AuthenticateServer,
    /// ES9+ authenticateClient.
    AuthenticateClient,
    /// ES10b.PrepareDownload.
    PrepareDownload,
    /// ES9+ getBoundProfilePackage.
    GetBoundProfilePackage,
    /// ES10b.LoadBoundProfilePackage.
    LoadBoundProfilePackage,
    /// ES9+ handleNotification (the PIR).
    HandleNotification,
    /// ES10b.LoadRpmPackage (SGP.22 v3 RPM, [`Lpa::poll`]).
    LoadRpmPackage,
}

/// Errors of the LPA.
#[derive(Clone, Debug, thiserror::Error)]
pub enum LpaError {
    /// The SM-DP+ answered with `Failed` (subject/reason codes inside).
    #[error("{0}")]
    Server(ServerError),
    /// The SM-DP+ answered with a non-2xx HTTP status.
    #[error("{function}: HTTP status {status}")]
    Http {
        /// The function called.
        function: Es9Function,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// Connection, TLS or timeout problem.
    #[error("transport: {0}")]
    Transport(String),
    /// A response that is not what ES9+ specifies.
    #[error("{function}: unexpected response: {detail}")]
    Protocol {
        /// The function called.
        function: Es9Function,
        /// What was wrong.
        detail: String,
    },
    /// The eUICC refused a function.
    #[error("eUICC refused {step:?}: {detail}")]
    Euicc {
        /// Where.
        step: Step,
        /// The function's error code (authenticateErrorCode, downloadErrorCode, ...).
        code: Option<i64>,
        /// Text.
        detail: String,
    },
    /// The profile was not installed (the ProfileInstallationResult has an errorResult).
    #[error(
        "profile installation failed: bppCommandId {bpp_command_id}, errorReason {error_reason}"
    )]
    InstallFailed {
        /// BppCommandId of the errorResult.
        bpp_command_id: i64,
        /// ErrorReason of the errorResult.
        error_reason: i64,
        /// Sequence number of the PIR notification.
        seq_number: i64,
        /// Whether the PIR was delivered (and removed from the eUICC).
        notification_sent: bool,
    },
    /// The SM-DP+ requires a Confirmation Code and none was given.
    #[error("a confirmation code is required for this profile (use --cc)")]
    ConfirmationCodeRequired,
    /// Bad input (activation code, IMEI, address...).
    #[error("{0}")]
    InvalidInput(String),
    /// A hook returned [`Flow::Stop`] before `step`; the session is left open.
    #[error("stopped by a hook before {step:?}")]
    Stopped {
        /// The step that was not performed.
        step: Step,
        /// The transaction ID, when known.
        transaction_id: Option<JsonTid>,
    },
}

impl LpaError {
    /// `(subjectCode, reasonCode)` if this is a server `Failed` response.
    pub fn server_code(&self) -> Option<(&str, &str)> {
        match self {
            LpaError::Server(s) => Some((&s.subject_code, &s.reason_code)),
            _ => None,
        }
    }
}

/// Whether to go on after a hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Perform the step.
    Continue,
    /// Stop before the step; the download returns [`LpaError::Stopped`] without cancelling.
    Stop,
}

/// Hooks called with every message just before it is sent (ES9+ JSON requests, ES10
/// commands). Each can modify the message or stop the flow. All default to "continue
/// unchanged".
#[allow(unused_variables)]
pub trait DownloadHooks: Send {
    /// Before ES9+ initiateAuthentication.
    fn initiate_authentication(&mut self, req: &mut es9::InitiateAuthenticationRequest) -> Flow {
        Flow::Continue
    }
    /// Before ES10b.AuthenticateServer.
    fn authenticate_server(&mut self, req: &mut AuthenticateServerRequest) -> Flow {
        Flow::Continue
    }
    /// Before ES9+ authenticateClient.
    fn authenticate_client(&mut self, req: &mut es9::AuthenticateClientRequest) -> Flow {
        Flow::Continue
    }
    /// Before ES10b.PrepareDownload.
    fn prepare_download(&mut self, req: &mut PrepareDownloadRequest) -> Flow {
        Flow::Continue
    }
    /// Before ES9+ getBoundProfilePackage.
    fn get_bound_profile_package(&mut self, req: &mut es9::GetBoundProfilePackageRequest) -> Flow {
        Flow::Continue
    }
    /// Before ES10b.LoadBoundProfilePackage (the complete BPP).
    fn load_bound_profile_package(&mut self, bpp: &mut Vec<u8>) -> Flow {
        Flow::Continue
    }
    /// Before ES9+ handleNotification of the PIR.
    fn handle_notification(&mut self, req: &mut es9::HandleNotificationRequest) -> Flow {
        Flow::Continue
    }
}

/// No hooks.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHooks;
impl DownloadHooks for NoHooks {}

/// Ready-made tampering for negative tests, and a record of what was sent.
#[derive(Clone, Debug, Default)]
pub struct Tamper {
    /// Flip a bit of euiccSignature1 in authenticateClient.
    pub forge_euicc_signature1: bool,
    /// Flip a bit of euiccSignature2 in getBoundProfilePackage.
    pub forge_euicc_signature2: bool,
    /// Use this transactionId in the JSON of authenticateClient and getBoundProfilePackage
    /// (e.g. one from an earlier session: replay).
    pub transaction_id: Option<JsonTid>,
    /// Flip a bit in the last byte (a MAC byte) of the last `86` segment of the BPP.
    pub corrupt_bpp_mac: bool,
    /// Stop before this step (the session stays open).
    pub stop_before: Option<Step>,
    /// The last authenticateClient request sent.
    pub sent_authenticate_client: Option<es9::AuthenticateClientRequest>,
    /// The last getBoundProfilePackage request sent.
    pub sent_get_bound_profile_package: Option<es9::GetBoundProfilePackageRequest>,
    /// The last BPP received (before tampering).
    pub received_bpp: Option<Vec<u8>>,
}

impl Tamper {
    fn stop(&self, step: Step) -> Flow {
        if self.stop_before == Some(step) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

fn flip_last(v: &mut [u8]) {
    if let Some(b) = v.last_mut() {
        *b ^= 0x01;
    }
}

impl DownloadHooks for Tamper {
    fn initiate_authentication(&mut self, _req: &mut es9::InitiateAuthenticationRequest) -> Flow {
        self.stop(Step::InitiateAuthentication)
    }
    fn authenticate_server(&mut self, _req: &mut AuthenticateServerRequest) -> Flow {
        self.stop(Step::AuthenticateServer)
    }
    fn authenticate_client(&mut self, req: &mut es9::AuthenticateClientRequest) -> Flow {
        if self.forge_euicc_signature1
            && let Ok(AuthenticateServerResponse::Ok(mut ok)) =
                AuthenticateServerResponse::decode(&req.authenticate_server_response)
        {
            flip_last(&mut ok.euicc_signature1);
            req.authenticate_server_response = AuthenticateServerResponse::Ok(ok).encode();
        }
        if let Some(t) = &self.transaction_id {
            req.transaction_id = t.clone();
        }
        let flow = self.stop(Step::AuthenticateClient);
        if flow == Flow::Continue {
            self.sent_authenticate_client = Some(req.clone());
        }
        flow
    }
    fn prepare_download(&mut self, _req: &mut PrepareDownloadRequest) -> Flow {
        self.stop(Step::PrepareDownload)
    }
    fn get_bound_profile_package(&mut self, req: &mut es9::GetBoundProfilePackageRequest) -> Flow {
        if self.forge_euicc_signature2
            && let Ok(PrepareDownloadResponse::Ok(mut ok)) =
                PrepareDownloadResponse::decode(&req.prepare_download_response)
        {
            flip_last(&mut ok.euicc_signature2);
            req.prepare_download_response = PrepareDownloadResponse::Ok(ok).encode();
        }
        if let Some(t) = &self.transaction_id {
            req.transaction_id = t.clone();
        }
        let flow = self.stop(Step::GetBoundProfilePackage);
        if flow == Flow::Continue {
            self.sent_get_bound_profile_package = Some(req.clone());
        }
        flow
    }
    fn load_bound_profile_package(&mut self, bpp: &mut Vec<u8>) -> Flow {
        self.received_bpp = Some(bpp.clone());
        if self.corrupt_bpp_mac {
            flip_last(bpp);
        }
        self.stop(Step::LoadBoundProfilePackage)
    }
    fn handle_notification(&mut self, _req: &mut es9::HandleNotificationRequest) -> Flow {
        self.stop(Step::HandleNotification)
    }
}

/// Download parameters besides the Activation Code.
#[derive(Clone, Debug)]
pub struct DownloadOptions {
    /// The Confirmation Code, if the operator issued one.
    pub confirmation_code: Option<String>,
    /// IMEI (15 or 16 digits); its first 8 digits become the TAC.
    pub imei: Option<String>,
    /// Deliver the PIR with handleNotification at the end (and remove it on success).
    pub send_pir: bool,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            confirmation_code: None,
            imei: None,
            send_pir: true,
        }
    }
}

/// The result of a successful download.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DownloadOutcome {
    /// The transactionId (hex).
    pub transaction_id: String,
    /// The installed profile's ICCID.
    pub iccid: String,
    /// Its ISD-P AID (hex).
    pub isdp_aid: String,
    /// Service provider name from the metadata.
    pub service_provider_name: String,
    /// Profile name from the metadata.
    pub profile_name: String,
    /// ICCID, IMSI and SPN found in the installed UPP (`None` where it has none, e.g. a
    /// package that is not SAIP). Serialized flat: `header_iccid`, `ef_iccid`, `imsi`,
    /// `ef_spn`.
    #[serde(flatten)]
    pub upp_info: crate::upp_info::UppInfo,
    /// Sequence number of the PIR notification.
    pub seq_number: i64,
    /// Whether the PIR was delivered and removed from the eUICC.
    pub notification_sent: bool,
    /// Why the PIR could not be delivered, if so.
    pub notification_error: Option<String>,
}

/// The outcome of delivering one notification.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NotificationDelivery {
    /// Sequence number.
    pub seq_number: i64,
    /// Operation name.
    pub operation: String,
    /// Where it went.
    pub address: String,
    /// Error text, if delivery failed (the notification then stays on the eUICC).
    pub error: Option<String>,
}

/// Encode an IMEI (15 or 16 digits) as 8 BCD octets (swapped nibbles, `F` padded) and its
/// TAC (first 4 octets).
pub fn encode_imei(imei: &str) -> Result<([u8; 4], Vec<u8>), LpaError> {
    if !(imei.len() == 15 || imei.len() == 16) || !imei.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LpaError::InvalidInput(format!(
            "IMEI {imei:?} must be 15 or 16 digits"
        )));
    }
    let mut nibbles: Vec<u8> = imei.bytes().map(|b| b - b'0').collect();
    nibbles.resize(16, 0xF);
    let octets: Vec<u8> = nibbles.chunks(2).map(|p| (p[1] << 4) | p[0]).collect();
    let mut tac = [0u8; 4];
    tac.copy_from_slice(&octets[..4]);
    Ok((tac, octets))
}

/// The LPA: an ES9+ client plus the flows. Clone it freely; clones share the TLS config.
#[derive(Clone, Debug)]
pub struct Lpa {
    client: Es9Client,
}

struct Ctx<'a> {
    address: &'a str,
    json_tid: Option<JsonTid>,
    asn_tid: Option<AsnTid>,
}

impl Lpa {
    /// An LPA reaching SM-DP+s over `transport`.
    pub fn new(transport: Transport) -> Result<Lpa, LpaError> {
        Ok(Lpa {
            client: Es9Client::new(transport)?,
        })
    }

    /// An LPA using an existing client.
    pub fn with_client(client: Es9Client) -> Lpa {
        Lpa { client }
    }

    /// This LPA talking for `euicc`: `X-Admin-Protocol` is
    /// [`crate::http::ADMIN_PROTOCOL_V3`] for a v3 eUICC, else [`crate::http::ADMIN_PROTOCOL`].
    pub fn for_euicc(&self, euicc: &Euicc) -> Lpa {
        let protocol = if euicc.is_v3() {
            crate::http::ADMIN_PROTOCOL_V3
        } else {
            crate::http::ADMIN_PROTOCOL
        };
        Lpa {
            client: self.client.clone().with_admin_protocol(protocol),
        }
    }

    /// The ES9+ client, for raw calls (`client().call(address, Es9Function::..., &req)`).
    pub fn client(&self) -> &Es9Client {
        &self.client
    }

    /// Download and install a profile ([`Lpa::download_with`] without hooks).
    pub async fn download(
        &self,
        euicc: &mut Euicc,
        activation_code: &str,
        opts: &DownloadOptions,
    ) -> Result<DownloadOutcome, LpaError> {
        self.download_with(euicc, activation_code, opts, &mut NoHooks)
            .await
    }

    /// Download and install a profile, calling `hooks` before every message is sent.
    pub async fn download_with(
        &self,
        euicc: &mut Euicc,
        activation_code: &str,
        opts: &DownloadOptions,
        hooks: &mut dyn DownloadHooks,
    ) -> Result<DownloadOutcome, LpaError> {
        let ac = ActivationCode::parse(activation_code)
            .map_err(|e| LpaError::InvalidInput(format!("activation code: {e}")))?;
        if ac.confirmation_code_required && opts.confirmation_code.is_none() {
            return Err(LpaError::ConfirmationCodeRequired);
        }
        let (tac, imei) = match &opts.imei {
            Some(i) => {
                let (t, b) = encode_imei(i)?;
                (t, Some(b))
            }
            None => (DEFAULT_TAC, None),
        };
        let mut ctx = Ctx {
            address: &ac.smdp_address,
            json_tid: None,
            asn_tid: None,
        };
        let r = self
            .for_euicc(euicc)
            .download_inner(euicc, &ac, opts, hooks, &mut ctx, tac, imei)
            .await;
        if let Err(e) = euicc.save_if_dirty() {
            return Err(LpaError::InvalidInput(format!(
                "saving the eUICC state: {e}"
            )));
        }
        r
    }

    async fn stopped(step: Step, ctx: &Ctx<'_>) -> LpaError {
        LpaError::Stopped {
            step,
            transaction_id: ctx.json_tid.clone(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn download_inner(
        &self,
        euicc: &mut Euicc,
        ac: &ActivationCode,
        opts: &DownloadOptions,
        hooks: &mut dyn DownloadHooks,
        ctx: &mut Ctx<'_>,
        tac: [u8; 4],
        imei: Option<Vec<u8>>,
    ) -> Result<DownloadOutcome, LpaError> {
        let address = ctx.address;
        let challenge = euicc
            .get_euicc_challenge()
            .map_err(|e| LpaError::InvalidInput(e.to_string()))?;
        let mut ia_req = es9::InitiateAuthenticationRequest {
            header: None,
            euicc_challenge: challenge.to_vec(),
            euicc_info1: euicc.euicc_info1().encode(),
            smdp_address: address.to_owned(),
        };
        if hooks.initiate_authentication(&mut ia_req) == Flow::Stop {
            return Err(Self::stopped(Step::InitiateAuthentication, ctx).await);
        }
        let ia: es9::InitiateAuthenticationResponse = self
            .client
            .call(address, Es9Function::InitiateAuthentication, &ia_req)
            .await?;
        ctx.json_tid = Some(ia.transaction_id.clone());

        // ES10b.AuthenticateServer
        let f = Es9Function::InitiateAuthentication;
        let proto = |detail: String| LpaError::Protocol {
            function: f,
            detail,
        };
        let server_signed1 =
            Signed::decode(&ia.server_signed1).map_err(|e| proto(format!("serverSigned1: {e}")))?;
        let server_signature1 = SignatureTlv::decode(&ia.server_signature1)
            .map_err(|e| proto(format!("serverSignature1: {e}")))?
            .0;
        let ci = SkiTlv::decode(&ia.euicc_ci_pkid_to_be_used)
            .map_err(|e| proto(format!("euiccCiPKIdToBeUsed: {e}")))?
            .0;
        let server_certificate = Certificate::decode(&ia.server_certificate)
            .map_err(|e| proto(format!("serverCertificate: {e}")))?;
        let mut as_req = AuthenticateServerRequest {
            server_signed1,
            server_signature1,
            euicc_ci_pkid_to_be_used: ci,
            server_certificate,
            ctx_params1: CtxParams1::CommonAuthentication(Box::new(
                CtxParamsForCommonAuthentication {
                    operation_type: None,
                    iccid: None,
                    matching_id_source: None,
                    matching_id: Some(ac.matching_id.clone()),
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
                },
            )),
        };
        ctx.asn_tid = Some(as_req.server_signed1.value().transaction_id.clone());
        if hooks.authenticate_server(&mut as_req) == Flow::Stop {
            return Err(Self::stopped(Step::AuthenticateServer, ctx).await);
        }
        let asr = euicc.authenticate_server(&as_req, Some(address));
        let eu_err = match &asr {
            AuthenticateServerResponse::Error(e) => Some(e.authenticate_error_code),
            AuthenticateServerResponse::Ok(_) => None,
        };
        let mut ac_req = es9::AuthenticateClientRequest {
            header: None,
            transaction_id: ia.transaction_id.clone(),
            authenticate_server_response: asr.encode(),
        };
        if hooks.authenticate_client(&mut ac_req) == Flow::Stop {
            return Err(Self::stopped(Step::AuthenticateClient, ctx).await);
        }
        if let Some(code) = eu_err {
            // Tell the SM-DP+ why (it answers Failed), then report the eUICC's refusal.
            let _ = self
                .client
                .call::<_, es9::AuthenticateClientResponse>(
                    address,
                    Es9Function::AuthenticateClient,
                    &ac_req,
                )
                .await;
            return Err(LpaError::Euicc {
                step: Step::AuthenticateServer,
                code: Some(code.to_i64()),
                detail: format!("authenticateErrorCode {code:?}"),
            });
        }
        // From here on, failures cancel the session.
        match self
            .after_authentication(euicc, opts, hooks, ctx, ac_req)
            .await
        {
            Ok(o) => Ok(o),
            Err((e, Some(reason))) => {
                let _ = self.cancel_ctx(euicc, ctx, reason).await;
                Err(e)
            }
            Err((e, None)) => Err(e),
        }
    }

    async fn cancel_ctx(
        &self,
        euicc: &mut Euicc,
        ctx: &Ctx<'_>,
        reason: CancelSessionReason,
    ) -> Result<(), LpaError> {
        let (Some(asn), Some(json)) = (&ctx.asn_tid, &ctx.json_tid) else {
            return Ok(());
        };
        self.cancel_session(euicc, ctx.address, asn, json, reason)
            .await
    }

    /// ES10b.CancelSession then ES9+ cancelSession with the eUICC's signed response.
    pub async fn cancel_session(
        &self,
        euicc: &mut Euicc,
        address: &str,
        transaction_id: &AsnTid,
        json_transaction_id: &JsonTid,
        reason: CancelSessionReason,
    ) -> Result<(), LpaError> {
        let resp = euicc.cancel_session(&CancelSessionRequest {
            transaction_id: transaction_id.clone(),
            reason,
        });
        if let CancelSessionResponse::Error(e) = &resp {
            return Err(LpaError::Euicc {
                step: Step::LoadBoundProfilePackage,
                code: Some(e.to_i64()),
                detail: format!("CancelSession refused: {e:?}"),
            });
        }
        let req = es9::CancelSessionRequest {
            header: None,
            transaction_id: json_transaction_id.clone(),
            cancel_session_response: resp.encode(),
        };
        self.client
            .call_no_output(address, Es9Function::CancelSession, &req)
            .await
    }

    async fn after_authentication(
        &self,
        euicc: &mut Euicc,
        opts: &DownloadOptions,
        hooks: &mut dyn DownloadHooks,
        ctx: &Ctx<'_>,
        ac_req: es9::AuthenticateClientRequest,
    ) -> Result<DownloadOutcome, (LpaError, Option<CancelSessionReason>)> {
        use CancelSessionReason as R;
        let address = ctx.address;
        let server_fail = |e: LpaError| {
            let reason = match &e {
                LpaError::Transport(_) => R::Timeout,
                _ => R::UndefinedReason,
            };
            (e, Some(reason))
        };
        let acr: es9::AuthenticateClientResponse = self
            .client
            .call(address, Es9Function::AuthenticateClient, &ac_req)
            .await
            .map_err(server_fail)?;
        let f = Es9Function::AuthenticateClient;
        let proto = |detail: String| {
            (
                LpaError::Protocol {
                    function: f,
                    detail,
                },
                Some(R::UndefinedReason),
            )
        };
        let meta = rsp_asn1::bpp::StoreMetadataRequest::decode(&acr.profile_metadata)
            .map_err(|e| proto(format!("profileMetadata: {e}")))?;
        let smdp_signed2: Signed<SmdpSigned2> =
            Signed::decode(&acr.smdp_signed2).map_err(|e| proto(format!("smdpSigned2: {e}")))?;
        let smdp_signature2 = SignatureTlv::decode(&acr.smdp_signature2)
            .map_err(|e| proto(format!("smdpSignature2: {e}")))?
            .0;
        let smdp_certificate = Certificate::decode(&acr.smdp_certificate)
            .map_err(|e| proto(format!("smdpCertificate: {e}")))?;
        let hash_cc = match (
            &opts.confirmation_code,
            smdp_signed2.value().cc_required_flag,
        ) {
            (Some(cc), _) => Some(
                Octet32::new(&crate::util::hash_confirmation_code(
                    cc,
                    smdp_signed2.value().transaction_id.as_bytes(),
                ))
                .map_err(|e| proto(e.to_string()))?,
            ),
            (None, true) => {
                return Err((
                    LpaError::ConfirmationCodeRequired,
                    Some(R::EndUserRejection),
                ));
            }
            (None, false) => None,
        };
        let mut pd_req = PrepareDownloadRequest {
            smdp_signed2,
            smdp_signature2,
            hash_cc,
            smdp_certificate,
        };
        if hooks.prepare_download(&mut pd_req) == Flow::Stop {
            return Err((Self::stopped(Step::PrepareDownload, ctx).await, None));
        }
        let pdr = euicc.prepare_download(&pd_req);
        if let PrepareDownloadResponse::Error(e) = &pdr {
            return Err((
                LpaError::Euicc {
                    step: Step::PrepareDownload,
                    code: Some(e.download_error_code.to_i64()),
                    detail: format!("downloadErrorCode {:?}", e.download_error_code),
                },
                Some(R::UndefinedReason),
            ));
        }
        let mut gb_req = es9::GetBoundProfilePackageRequest {
            header: None,
            transaction_id: ac_req.transaction_id.clone(),
            prepare_download_response: pdr.encode(),
        };
        if hooks.get_bound_profile_package(&mut gb_req) == Flow::Stop {
            return Err((Self::stopped(Step::GetBoundProfilePackage, ctx).await, None));
        }
        let gbr: es9::GetBoundProfilePackageResponse = self
            .client
            .call(address, Es9Function::GetBoundProfilePackage, &gb_req)
            .await
            .map_err(server_fail)?;
        let mut bpp = gbr.bound_profile_package;
        if hooks.load_bound_profile_package(&mut bpp) == Flow::Stop {
            return Err((
                Self::stopped(Step::LoadBoundProfilePackage, ctx).await,
                None,
            ));
        }
        let pir = euicc.load_bound_profile_package(&bpp).map_err(|e| {
            (
                LpaError::Euicc {
                    step: Step::LoadBoundProfilePackage,
                    code: None,
                    detail: e.to_string(),
                },
                Some(R::LoadBppExecutionError),
            )
        })?;
        // From here the session is over on the eUICC: no cancel.
        let _ = euicc.save_if_dirty();
        let data = pir.profile_installation_result_data.value();
        let seq = data.notification_metadata.seq_number;
        let (mut sent, mut send_err) = (false, None);
        if opts.send_pir {
            match self
                .deliver(
                    euicc,
                    seq,
                    &pir,
                    &data.notification_metadata.notification_address,
                    hooks,
                )
                .await
            {
                Ok(()) => sent = true,
                Err(e) => send_err = Some(e.to_string()),
            }
        }
        match &data.final_result {
            FinalResult::Success(s) => Ok(DownloadOutcome {
                transaction_id: ac_req.transaction_id.to_hex(),
                iccid: rsp_asn1::common::Iccid(meta.iccid).to_digits(),
                isdp_aid: hex::encode_upper(&s.aid),
                service_provider_name: meta.service_provider_name.clone(),
                profile_name: meta.profile_name.clone(),
                upp_info: euicc
                    .state()
                    .find_profile(&hex::encode_upper(&s.aid))
                    .map(|p| p.upp_info.clone())
                    .unwrap_or_default(),
                seq_number: seq,
                notification_sent: sent,
                notification_error: send_err,
            }),
            FinalResult::Error(e) => Err((
                LpaError::InstallFailed {
                    bpp_command_id: e.bpp_command_id.to_i64(),
                    error_reason: e.error_reason.to_i64(),
                    seq_number: seq,
                    notification_sent: sent,
                },
                None,
            )),
        }
    }

    async fn deliver(
        &self,
        euicc: &mut Euicc,
        seq: i64,
        pir: &ProfileInstallationResult,
        address: &str,
        hooks: &mut dyn DownloadHooks,
    ) -> Result<(), LpaError> {
        let mut req = es9::HandleNotificationRequest {
            header: None,
            pending_notification: pir.encode(),
        };
        if hooks.handle_notification(&mut req) == Flow::Stop {
            return Err(LpaError::Stopped {
                step: Step::HandleNotification,
                transaction_id: None,
            });
        }
        self.client
            .call_no_output(address, Es9Function::HandleNotification, &req)
            .await?;
        euicc.remove_notification(seq);
        euicc
            .save_if_dirty()
            .map_err(|e| LpaError::InvalidInput(format!("saving the eUICC state: {e}")))
    }

    /// Send one pending notification to its notificationAddress; remove it from the eUICC on
    /// HTTP 2xx.
    pub async fn send_notification(&self, euicc: &mut Euicc, seq: i64) -> Result<(), LpaError> {
        let Some(n) = euicc
            .state()
            .notifications
            .iter()
            .find(|n| n.seq_number == seq)
            .cloned()
        else {
            return Err(LpaError::InvalidInput(format!(
                "no pending notification with seqNumber {seq}"
            )));
        };
        let req = es9::HandleNotificationRequest {
            header: None,
            pending_notification: n.pending_notification.clone(),
        };
        self.for_euicc(euicc)
            .client
            .call_no_output(&n.address, Es9Function::HandleNotification, &req)
            .await?;
        euicc.remove_notification(seq);
        euicc
            .save_if_dirty()
            .map_err(|e| LpaError::InvalidInput(format!("saving the eUICC state: {e}")))
    }

    /// Deliver every pending notification (in sequence order); failures are reported per
    /// notification and leave it on the eUICC.
    pub async fn process_notifications(&self, euicc: &mut Euicc) -> Vec<NotificationDelivery> {
        let pending: Vec<_> = euicc.state().notifications.clone();
        let mut out = Vec::new();
        for n in pending {
            let r = self.send_notification(euicc, n.seq_number).await;
            out.push(NotificationDelivery {
                seq_number: n.seq_number,
                operation: n.operation.name().to_owned(),
                address: n.address.clone(),
                error: r.err().map(|e| e.to_string()),
            });
        }
        out
    }
}
