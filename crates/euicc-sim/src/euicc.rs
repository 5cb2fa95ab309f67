//! The in-process face of the virtual eUICC: ES10a/b/c functions with the checks a card
//! performs (SGP.22 v2.2 sections 3.1.2, 3.1.3, 5.7).
//!
//! Every function takes and returns the typed `rsp-asn1` messages; [`Euicc::handle_es10`]
//! takes the DER of one complete ES10 command and returns the DER response (this is what the
//! APDU face calls after STORE DATA reassembly). Function errors are typed responses
//! (`authenticateResponseError`, `downloadResponseError`, a ProfileInstallationResult with an
//! `errorResult`, ...); only transport-level refusals are [`Es10Error`]s.
//!
//! The RSP session (eUICC challenge, transactionId, CERT.DPauth/DPpb, one-time key pair) is
//! kept in memory only. [`Euicc::reset`] drops it like a card reset.

use std::path::{Path, PathBuf};

use rsp_asn1::auth::{
    AuthenticateErrorCode, AuthenticateResponseError, AuthenticateResponseOk,
    AuthenticateServerRequest, AuthenticateServerResponse, EuiccSigned1, GetEuiccChallengeRequest,
    GetEuiccChallengeResponse,
};
use rsp_asn1::cancel::{
    CancelSessionReason, CancelSessionRequest, CancelSessionResponse, CancelSessionResponseError,
    CancelSessionResponseOk, EuiccCancelSessionSigned,
};
use rsp_asn1::common::{
    Eid, Iccid, IconType, NotificationConfigurationInformation, Octet16, OctetTo16, ProfileClass,
    ProfileIdentifier, ProfileState, SubjectKeyIdentifier, TAG_SIGNATURE, VersionType, ppr_ids,
    rsp_capability, uicc_capability,
};
use rsp_asn1::download::{
    BppCommandId, DownloadErrorCode, ErrorReason, ErrorResult, EuiccSigned2, FinalResult,
    PrepareDownloadRequest, PrepareDownloadResponse, PrepareDownloadResponseError,
    PrepareDownloadResponseOk, ProfileInstallationResult, ProfileInstallationResultData,
    SuccessResult,
};
use rsp_asn1::es10c::{
    DeleteProfileRequest, DeleteProfileResponse, DeleteResult, DisableProfileRequest,
    DisableProfileResponse, DisableResult, EnableProfileRequest, EnableProfileResponse,
    EnableResult, EuiccConfiguredAddressesRequest, EuiccConfiguredAddressesResponse,
    EuiccMemoryResetRequest, EuiccMemoryResetResponse, GetEuiccDataRequest, GetEuiccDataResponse,
    ProfileInfo, ProfileInfoListRequest, ProfileInfoListResponse, ProfileSearchCriteria,
    ResetResult, SetNicknameRequest, SetNicknameResponse, SetNicknameResult,
};
use rsp_asn1::euicc_info::{
    EuiccCategory, EuiccInfo1, EuiccInfo2, GetEuiccInfo1Request, GetEuiccInfo2Request,
};
use rsp_asn1::notification::{
    DeleteNotificationStatus, ListNotificationRequest, ListNotificationResponse,
    NotificationMetadata, NotificationSearchCriteria, NotificationSentRequest,
    NotificationSentResponse, NotificationsListResultError, OtherSignedNotification,
    PendingNotification, RetrieveNotificationsListRequest, RetrieveNotificationsListResponse,
};
use rsp_asn1::prim::Oid;
use rsp_asn1::tlv::{Tag, write_tlv};
use rsp_asn1::{BitString, Codec, Extensions, Signed};
use rsp_crypto::bpp::{OpenParams, OpenedBpp, open_bpp};
use rsp_crypto::ecdsa::verify_raw;
use rsp_crypto::otk::AgreementKey;
use rsp_crypto::{Curve, KeyCustody, SoftwareKey};
use rsp_pki::{DpRole, PkiError, TrustStore, ValidatedDp};
use time::OffsetDateTime;

use crate::cert_cache::CertCache;
use crate::error::{Es10Error, SimError};
use crate::state::{
    EuiccState, ISD_P_AID_PREFIX, NotificationConfig, NotificationOp, NotificationRecord,
    ProfileRecord, ProfileStateRec, Provisioning,
};
use crate::upp_info::UppInfo;
use crate::usim::{AuthOutcome, UsimError, UsimState};

#[path = "rpm_card.rs"]
mod rpm_card;

/// Deliberate deviations from a correct card, for negative tests of the SM-DP+.
#[derive(Clone, Debug, Default)]
pub struct Quirks {
    /// Ignore `smdpSigned2.bppEuiccOtpk` and always generate a new one-time key (a card that
    /// "sends a different otPK on retry").
    pub ignore_bpp_euicc_otpk: bool,
    /// Do not check `serverSigned1.serverAddress` against the expected address.
    pub skip_server_address_check: bool,
}

struct AuthContext {
    transaction_id: rsp_asn1::common::TransactionId,
    server_address: String,
    dpauth: ValidatedDp,
    euicc_signature1: Vec<u8>,
}

struct DownloadContext {
    dppb_public_key: Vec<u8>,
    curve: Curve,
    smdp_oid: String,
    otk: SoftwareKey,
}

struct Session {
    euicc_challenge: [u8; 16],
    auth: Option<AuthContext>,
    download: Option<DownloadContext>,
}

struct RetainedOtk {
    smdp_oid: String,
    key: SoftwareKey,
}

/// A summary of the RSP session held in memory (for diagnostics and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The eUICC challenge of the session.
    pub euicc_challenge: [u8; 16],
    /// The transactionId, once AuthenticateServer succeeded.
    pub transaction_id: Option<Vec<u8>>,
    /// The server address from serverSigned1, once AuthenticateServer succeeded.
    pub server_address: Option<String>,
    /// Whether PrepareDownload succeeded (a one-time key pair exists).
    pub prepared: bool,
}

/// A virtual eUICC: persistent [`EuiccState`] plus the in-memory RSP session.
pub struct Euicc {
    state: EuiccState,
    path: Option<PathBuf>,
    dirty: bool,
    key: SoftwareKey,
    trust: TrustStore,
    signing_ci_ski: Vec<u8>,
    euicc_cert: rsp_asn1::Certificate,
    eum_cert: rsp_asn1::Certificate,
    session: Option<Session>,
    retained_otk: Option<RetainedOtk>,
    /// An opt-in cache of validated CERT.DPauth/DPpb chains and this card's trust-store key
    /// ([`crate::cert_cache::trust_key`]); `None` (the default): every chain is validated on
    /// every session.
    cert_cache: Option<(CertCache, Vec<u8>)>,
    /// Deliberate misbehaviour for negative tests (all off by default).
    pub quirks: Quirks,
}

impl std::fmt::Debug for Euicc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Euicc")
            .field("eid", &self.state.eid)
            .field("path", &self.path)
            .field("session", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn sig_tlv(sig: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sig.len() + 3);
    write_tlv(&mut out, TAG_SIGNATURE, sig);
    out
}

fn inv<E>(_: E) -> Es10Error {
    Es10Error::InvalidData
}

impl Euicc {
    /// An eUICC from a state, kept in memory only (no file).
    pub fn from_state(state: EuiccState) -> Result<Euicc, SimError> {
        let key = SoftwareKey::from_pem(&state.euicc_private_key_pem)
            .map_err(|e| SimError::Pki(format!("eUICC private key: {e}")))?;
        let trust = state.trust_store()?;
        let eum = rsp_pki::Certificate::from_der(&state.eum_certificate)
            .map_err(|e| SimError::Pki(format!("EUM certificate: {e}")))?;
        let signing_ci_ski = eum
            .aki()
            .ok_or_else(|| SimError::Pki("EUM certificate has no AuthorityKeyIdentifier".into()))?
            .to_vec();
        let euicc_cert = rsp_asn1::Certificate::from_der(&state.euicc_certificate)
            .map_err(|e| SimError::Pki(format!("eUICC certificate: {e}")))?;
        let eum_cert = rsp_asn1::Certificate::from_der(&state.eum_certificate)
            .map_err(|e| SimError::Pki(format!("EUM certificate: {e}")))?;
        if Eid::from_digits(&state.eid).is_none() {
            return Err(SimError::InvalidInput(format!(
                "EID {:?} is not 32 digits",
                state.eid
            )));
        }
        Ok(Euicc {
            state,
            path: None,
            dirty: false,
            key,
            trust,
            signing_ci_ski,
            euicc_cert,
            eum_cert,
            session: None,
            retained_otk: None,
            cert_cache: None,
            quirks: Quirks::default(),
        })
    }

    /// Attach (or with `None` detach) a [`CertCache`] shared with other virtual cards: a
    /// CERT.DPauth/DPpb already validated for this card's trust store is then not
    /// re-validated (its validity period still is), while serverSignature1, smdpSignature2
    /// and smdpSign are verified on every session as before. Off by default; for load
    /// generators (`smdpp bench --cache-server-certs`), not for conformance tests.
    pub fn set_cert_cache(&mut self, cache: Option<CertCache>) {
        self.cert_cache = cache.map(|c| (c, crate::cert_cache::trust_key(&self.trust)));
    }

    /// Whether a [`CertCache`] is attached.
    pub fn caches_server_certs(&self) -> bool {
        self.cert_cache.is_some()
    }

    /// Validates an SM-DP+ certificate chain for `role` against the trusted CIs, through the
    /// cache when one is attached.
    fn validate_dp(&self, cert_der: &[u8], role: DpRole) -> Result<ValidatedDp, PkiError> {
        match &self.cert_cache {
            Some((cache, trust_id)) => {
                cache.validate_dp_chain(&self.trust, trust_id, cert_der, role, now())
            }
            None => rsp_pki::validate_dp_chain(&self.trust, cert_der, role, now()),
        }
    }

    /// A new in-memory virtual eUICC with a fresh key, certificate and (unless given) a
    /// random EID in the EUM's range. Cheap enough to create one per simulated device.
    pub fn generate(prov: &Provisioning, eid: Option<&str>) -> Result<Euicc, SimError> {
        Euicc::from_state(EuiccState::generate(prov, eid)?)
    }

    /// Open a state file; changes are written back by [`Euicc::save_if_dirty`].
    pub fn open(path: &Path) -> Result<Euicc, SimError> {
        let mut e = Euicc::from_state(EuiccState::load(path)?)?;
        e.path = Some(path.to_path_buf());
        Ok(e)
    }

    /// Attach a file: later [`Euicc::save_if_dirty`] calls write there.
    pub fn set_path(&mut self, path: Option<PathBuf>) {
        self.path = path;
        self.dirty = true;
    }

    /// The persistent state.
    pub fn state(&self) -> &EuiccState {
        &self.state
    }

    /// The EID (32 digits).
    pub fn eid(&self) -> &str {
        &self.state.eid
    }

    /// Whether the persistent state changed since the last save.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Write the state to its file if it changed (no-op for in-memory eUICCs).
    pub fn save_if_dirty(&mut self) -> Result<(), SimError> {
        if let (true, Some(p)) = (self.dirty, &self.path) {
            self.state.save(p)?;
        }
        if self.path.is_some() {
            self.dirty = false;
        }
        Ok(())
    }

    /// A card reset: drops the RSP session. A one-time key pair retained for a retry (after
    /// CancelSession `postponed`/`timeout`) survives, as SGP.22 section 5.7.14 allows.
    pub fn reset(&mut self) {
        self.session = None;
    }

    /// The current RSP session, if any.
    pub fn session_info(&self) -> Option<SessionInfo> {
        self.session.as_ref().map(|s| SessionInfo {
            euicc_challenge: s.euicc_challenge,
            transaction_id: s
                .auth
                .as_ref()
                .map(|a| a.transaction_id.as_bytes().to_vec()),
            server_address: s.auth.as_ref().map(|a| a.server_address.clone()),
            prepared: s.download.is_some(),
        })
    }

    /// Whether a one-time key pair is retained for a retry (after CancelSession with
    /// `postponed` or `timeout`).
    pub fn has_retained_otk(&self) -> bool {
        self.retained_otk.is_some()
    }

    /// Forget a retained one-time key pair.
    pub fn drop_retained_otk(&mut self) {
        self.retained_otk = None;
    }

    /// The eUICC's public key (from CERT.EUICC.ECDSA).
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key()
    }

    fn next_seq(&mut self) -> i64 {
        let s = self.state.next_seq_number;
        self.state.next_seq_number = s.saturating_add(1);
        self.dirty = true;
        s
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        // Signing with an in-memory P-256/brainpool key only fails on a backend fault; an
        // all-zero signature then makes the peer's verification fail visibly.
        self.key
            .sign(msg)
            .map(|s| s.to_vec())
            .unwrap_or_else(|_| vec![0; 64])
    }

    // -----------------------------------------------------------------------------------
    // ES10b: information and challenge

    /// ES10b.GetEUICCChallenge: starts a new RSP session (discarding any previous one).
    pub fn get_euicc_challenge(&mut self) -> Result<[u8; 16], SimError> {
        let mut c = [0u8; 16];
        crate::util::random_fill(&mut c)?;
        self.session = Some(Session {
            euicc_challenge: c,
            auth: None,
            download: None,
        });
        Ok(c)
    }

    fn ci_lists(&self) -> (Vec<SubjectKeyIdentifier>, Vec<SubjectKeyIdentifier>) {
        let verification = self
            .trust
            .ci_skis()
            .iter()
            .filter_map(|s| SubjectKeyIdentifier::new(s).ok())
            .collect();
        let signing = SubjectKeyIdentifier::new(&self.signing_ci_ski)
            .map(|s| vec![s])
            .unwrap_or_default();
        (verification, signing)
    }

    /// ES10b.GetEUICCInfo (EUICCInfo1).
    pub fn euicc_info1(&self) -> EuiccInfo1 {
        let (verification, signing) = self.ci_lists();
        EuiccInfo1 {
            svn: VersionType::from_parts(2, 2, 2),
            ci_pkid_list_for_verification: verification,
            ci_pkid_list_for_signing: signing,
            ci_pkid_list_for_signing_v3: None,
            rsp_capability: self.state.v3.then(|| self.rsp_capability_bits()),
            highest_svn: self.highest_svn(),
            extensions: Extensions(Vec::new()),
        }
    }

    /// `euiccRspCapability`: additionalProfile and testProfileSupport, plus rpmSupport on a
    /// v3 card.
    fn rsp_capability_bits(&self) -> BitString {
        let mut bits = vec![
            rsp_capability::ADDITIONAL_PROFILE,
            rsp_capability::TEST_PROFILE_SUPPORT,
        ];
        if self.state.v3 {
            bits.push(rsp_capability::RPM_SUPPORT);
        }
        bits.sort_unstable();
        BitString::from_bits(&bits)
    }

    /// v3 `highestSvn` (3.1.0) on a v3 card.
    fn highest_svn(&self) -> Option<VersionType> {
        self.state.v3.then(|| VersionType::from_parts(3, 1, 0))
    }

    /// ES10b.GetEUICCInfo (EUICCInfo2).
    pub fn euicc_info2(&self) -> EuiccInfo2 {
        let (verification, signing) = self.ci_lists();
        let installed = u8::try_from(self.state.profiles.len()).unwrap_or(u8::MAX);
        EuiccInfo2 {
            profile_version: VersionType::from_parts(2, 3, 1),
            svn: VersionType::from_parts(2, 2, 2),
            euicc_firmware_ver: VersionType::from_parts(0, 1, 0),
            ext_card_resource: vec![
                0x81, 0x01, installed, 0x82, 0x04, 0x00, 0x10, 0x00, 0x00, 0x83, 0x02, 0x10, 0x00,
            ],
            uicc_capability: BitString::from_bits(&[
                uicc_capability::USIM_SUPPORT,
                uicc_capability::ISIM_SUPPORT,
                uicc_capability::AKA_MILENAGE,
                uicc_capability::AKA_TUAK128,
                uicc_capability::JAVACARD,
                uicc_capability::MULTIPLE_USIM_SUPPORT,
            ]),
            javacard_version: Some(VersionType::from_parts(3, 0, 5)),
            globalplatform_version: Some(VersionType::from_parts(2, 3, 1)),
            rsp_capability: self.rsp_capability_bits(),
            ci_pkid_list_for_verification: verification,
            ci_pkid_list_for_signing: signing,
            euicc_category: Some(EuiccCategory::Other),
            forbidden_profile_policy_rules: None,
            pp_version: VersionType::from_parts(2, 3, 1),
            sas_acreditation_number: "EUICC-SIM-TEST".into(),
            certification_data_object: None,
            tre_properties: None,
            tre_product_reference: None,
            additional_profile_package_versions: None,
            lpa_mode: None,
            ci_pkid_list_for_signing_v3: None,
            additional_euicc_info: None,
            highest_svn: self.highest_svn(),
            extensions: Extensions(Vec::new()),
        }
    }

    // -----------------------------------------------------------------------------------
    // ES10b: AuthenticateServer

    /// ES10b.AuthenticateServer (section 5.7.13). Checks, in order: a session exists and is
    /// not yet authenticated (`noSessionContext`), `euiccCiPKIdToBeUsed` is the CI this
    /// eUICC signs under (`ciPKUnknown`), CERT.DPauth validates to a trusted CI with the
    /// DPauth role (`ciPKUnknown`, `unsupportedCurve`, `invalidOid`, `invalidCertificate`),
    /// `serverSignature1` over the received `serverSigned1` bytes (`invalidSignature`),
    /// `euiccChallenge` (`euiccChallengeMismatch`) and, when `expected_address` is given,
    /// `serverAddress` (case-insensitive; `undefinedError`). A failure discards the session.
    pub fn authenticate_server(
        &mut self,
        req: &AuthenticateServerRequest,
        expected_address: Option<&str>,
    ) -> AuthenticateServerResponse {
        let ss1 = req.server_signed1.value();
        match self.check_authenticate_server(req, expected_address) {
            Ok(dpauth) => {
                let signed1 = Signed::new(EuiccSigned1 {
                    transaction_id: ss1.transaction_id.clone(),
                    server_address: ss1.server_address.clone(),
                    server_challenge: ss1.server_challenge.clone(),
                    euicc_info2: self.euicc_info2(),
                    ctx_params1: req.ctx_params1.clone(),
                    extensions: Extensions(Vec::new()),
                });
                let signature = self.sign(signed1.raw());
                if let Some(s) = self.session.as_mut() {
                    s.auth = Some(AuthContext {
                        transaction_id: ss1.transaction_id.clone(),
                        server_address: ss1.server_address.clone(),
                        dpauth: *dpauth,
                        euicc_signature1: signature.clone(),
                    });
                }
                AuthenticateServerResponse::Ok(Box::new(AuthenticateResponseOk {
                    euicc_signed1: signed1,
                    euicc_signature1: signature,
                    euicc_certificate: self.euicc_cert.clone(),
                    eum_certificate: self.eum_cert.clone(),
                }))
            }
            Err(code) => {
                if code != AuthenticateErrorCode::NoSessionContext {
                    self.session = None;
                }
                AuthenticateServerResponse::Error(AuthenticateResponseError {
                    transaction_id: ss1.transaction_id.clone(),
                    authenticate_error_code: code,
                })
            }
        }
    }

    fn check_authenticate_server(
        &self,
        req: &AuthenticateServerRequest,
        expected_address: Option<&str>,
    ) -> Result<Box<ValidatedDp>, AuthenticateErrorCode> {
        use AuthenticateErrorCode as C;
        let ss1 = req.server_signed1.value();
        let session = self.session.as_ref().ok_or(C::NoSessionContext)?;
        if session.auth.is_some() {
            return Err(C::NoSessionContext);
        }
        if req.euicc_ci_pkid_to_be_used.as_bytes() != self.signing_ci_ski.as_slice() {
            return Err(C::CiPkUnknown);
        }
        let dpauth = self
            .validate_dp(req.server_certificate.as_der(), DpRole::Auth)
            .map_err(|e| map_auth_pki_error(&e))?;
        verify_raw(
            dpauth.curve,
            &dpauth.public_key,
            req.server_signed1.raw(),
            &req.server_signature1,
        )
        .map_err(|_| C::InvalidSignature)?;
        if ss1.euicc_challenge.as_bytes() != session.euicc_challenge.as_slice() {
            return Err(C::EuiccChallengeMismatch);
        }
        if let Some(exp) = expected_address
            && !self.quirks.skip_server_address_check
            && !exp.eq_ignore_ascii_case(&ss1.server_address)
        {
            return Err(C::UndefinedError);
        }
        Ok(Box::new(dpauth))
    }

    // -----------------------------------------------------------------------------------
    // ES10b: PrepareDownload

    /// ES10b.PrepareDownload (sections 5.7.5 and 3.1.3.2). Checks, in order: an authenticated
    /// session (`noSessionContext`), CERT.DPpb validates with the DPpb role
    /// (`invalidCertificate` / `unsupportedCurve`), same SM-DP+ OID and same CI as CERT.DPauth
    /// (`invalidCertificate`), `smdpSignature2` over `smdpSigned2 || euiccSignature1`-TLV
    /// (`invalidSignature`), the transactionId (`invalidTransactionId`) and that `hashCc` is
    /// present when `ccRequiredFlag` is set (`undefinedError`). It then re-uses a retained
    /// one-time key pair if `bppEuiccOtpk` names it (same SM-DP+), else generates one on
    /// CERT.DPpb's curve, and signs `euiccSigned2 || smdpSignature2`-TLV.
    pub fn prepare_download(&mut self, req: &PrepareDownloadRequest) -> PrepareDownloadResponse {
        let s2 = req.smdp_signed2.value();
        let dppb = match self.check_prepare_download(req) {
            Ok(d) => d,
            Err(code) => {
                return PrepareDownloadResponse::Error(PrepareDownloadResponseError {
                    transaction_id: s2.transaction_id.clone(),
                    download_error_code: code,
                });
            }
        };
        let retained = match (&s2.bpp_euicc_otpk, self.retained_otk.take()) {
            (Some(pk), Some(r))
                if !self.quirks.ignore_bpp_euicc_otpk
                    && r.key.public_key() == pk.as_slice()
                    && r.smdp_oid == dppb.smdp_oid =>
            {
                Some(r.key)
            }
            (_, r) => {
                self.retained_otk = r;
                None
            }
        };
        let otk = match retained {
            Some(k) => k,
            None => match SoftwareKey::generate(dppb.curve) {
                Ok(k) => k,
                Err(_) => {
                    return PrepareDownloadResponse::Error(PrepareDownloadResponseError {
                        transaction_id: s2.transaction_id.clone(),
                        download_error_code: DownloadErrorCode::UndefinedError,
                    });
                }
            },
        };
        let signed2 = Signed::new(EuiccSigned2 {
            transaction_id: s2.transaction_id.clone(),
            euicc_otpk: otk.public_key().to_vec(),
            hash_cc: req.hash_cc.clone(),
            extensions: Extensions(Vec::new()),
        });
        let mut msg = signed2.raw().to_vec();
        msg.extend_from_slice(&sig_tlv(&req.smdp_signature2));
        let signature = self.sign(&msg);
        if let Some(s) = self.session.as_mut() {
            s.download = Some(DownloadContext {
                dppb_public_key: dppb.public_key.clone(),
                curve: dppb.curve,
                smdp_oid: dppb.smdp_oid.clone(),
                otk,
            });
        }
        PrepareDownloadResponse::Ok(PrepareDownloadResponseOk {
            euicc_signed2: signed2,
            euicc_signature2: signature,
        })
    }

    fn check_prepare_download(
        &self,
        req: &PrepareDownloadRequest,
    ) -> Result<ValidatedDp, DownloadErrorCode> {
        use DownloadErrorCode as C;
        let s2 = req.smdp_signed2.value();
        let auth = self
            .session
            .as_ref()
            .and_then(|s| s.auth.as_ref())
            .ok_or(C::NoSessionContext)?;
        let dppb = self
            .validate_dp(req.smdp_certificate.as_der(), DpRole::Pb)
            .map_err(|e| match e {
                PkiError::UnsupportedCurve { .. } | PkiError::CurveMismatch { .. } => {
                    C::UnsupportedCurve
                }
                _ => C::InvalidCertificate,
            })?;
        rsp_pki::check_same_smdp_oid(&auth.dpauth.cert, &dppb.cert)
            .map_err(|_| C::InvalidCertificate)?;
        if dppb.ci_ski != auth.dpauth.ci_ski {
            return Err(C::InvalidCertificate);
        }
        let mut msg = req.smdp_signed2.raw().to_vec();
        msg.extend_from_slice(&sig_tlv(&auth.euicc_signature1));
        verify_raw(dppb.curve, &dppb.public_key, &msg, &req.smdp_signature2)
            .map_err(|_| C::InvalidSignature)?;
        if s2.transaction_id != auth.transaction_id {
            return Err(C::InvalidTransactionId);
        }
        if s2.cc_required_flag && req.hash_cc.is_none() {
            return Err(C::UndefinedError);
        }
        Ok(dppb)
    }

    // -----------------------------------------------------------------------------------
    // ES10b: LoadBoundProfilePackage

    /// Whether a LoadBoundProfilePackage would be accepted now (PrepareDownload done).
    pub fn ready_for_bpp(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.auth.is_some() && s.download.is_some())
    }

    /// ES10b.LoadBoundProfilePackage with the complete BPP (`BF36`): verifies `smdpSign`,
    /// derives the session keys, verifies and decrypts every SCP03t segment, installs the
    /// profile (disabled; the ICCID, IMSI and SPN found in its UPP are recorded in
    /// [`ProfileRecord::upp_info`], a UPP that is not SAIP installs too) and returns the
    /// signed ProfileInstallationResult, which is also queued as a pending notification. A
    /// failing check yields a PIR with the `errorResult` a card would produce. Without a
    /// prepared RSP session: [`Es10Error::ConditionsNotSatisfied`].
    /// The session (and the one-time private key) is discarded in every case.
    pub fn load_bound_profile_package(
        &mut self,
        bpp: &[u8],
    ) -> Result<ProfileInstallationResult, Es10Error> {
        if !self.ready_for_bpp() {
            return Err(Es10Error::ConditionsNotSatisfied);
        }
        let Some(Session {
            auth: Some(auth),
            download: Some(dl),
            ..
        }) = self.session.take()
        else {
            return Err(Es10Error::ConditionsNotSatisfied);
        };
        let eid = Eid::from_digits(&self.state.eid)
            .map(|e| e.0)
            .unwrap_or([0; 16]);
        let params = OpenParams {
            curve: dl.curve,
            dp_pb_public: &dl.dppb_public_key,
            euicc_otpk: dl.otk.public_key(),
            eid: &eid,
            expected_transaction_id: Some(auth.transaction_id.as_bytes()),
        };
        let (final_result, iccid) = match open_bpp(bpp, &params, AgreementKey::Custody(&dl.otk)) {
            Err(e) => (
                error_result(
                    BppCommandId::from_i64(e.command.value()),
                    ErrorReason::from_i64(e.reason.value()),
                ),
                None,
            ),
            Ok(opened) => self.install(&opened, &auth, &dl),
        };
        let pir = self.make_pir(&auth, &dl.smdp_oid, iccid, final_result);
        drop(dl);
        Ok(pir)
    }

    fn install(
        &mut self,
        opened: &OpenedBpp,
        auth: &AuthContext,
        dl: &DownloadContext,
    ) -> (FinalResult, Option<Iccid>) {
        use rsp_asn1::bpp::{ConfigureIsdpRequest, StoreMetadataRequest};
        if ConfigureIsdpRequest::decode(&opened.configure_isdp).is_err() {
            return (
                error_result(
                    BppCommandId::ConfigureIsdp,
                    ErrorReason::IncorrectInputValues,
                ),
                None,
            );
        }
        let Ok(meta) = StoreMetadataRequest::decode(&opened.store_metadata) else {
            return (
                error_result(
                    BppCommandId::StoreMetadata,
                    ErrorReason::IncorrectInputValues,
                ),
                None,
            );
        };
        let iccid = Iccid(meta.iccid);
        let digits = iccid.to_digits();
        if self.state.profiles.iter().any(|p| p.iccid == digits) {
            return (
                error_result(
                    BppCommandId::StoreMetadata,
                    ErrorReason::InstallFailedDueToIccidAlreadyExistsOnEuicc,
                ),
                Some(iccid),
            );
        }
        if meta.profile_class.is_some_and(|c| c > 2) {
            return (
                error_result(
                    BppCommandId::StoreMetadata,
                    ErrorReason::UnsupportedProfileClass,
                ),
                Some(iccid),
            );
        }
        if opened.upp.is_empty() {
            return (
                error_result(
                    BppCommandId::LoadProfileElements,
                    ErrorReason::InstallFailedDueToPeProcessingError,
                ),
                Some(iccid),
            );
        }
        // Informational identifiers and the USIM keys (kept like a card's NVM); a package
        // that is not parsable SAIP installs all the same, without them.
        let decoded = saip::Upp::decode(&opened.upp).ok();
        let upp_info = decoded
            .as_ref()
            .map(UppInfo::from_decoded)
            .unwrap_or_default();
        let usim = decoded.as_ref().and_then(|u| UsimState::from_upp(u).ok());
        drop(decoded);
        let index = self.state.next_isdp_index;
        self.state.next_isdp_index = index.saturating_add(1);
        let mut aid = ISD_P_AID_PREFIX.to_vec();
        aid.extend_from_slice(&index.to_be_bytes());
        let record = ProfileRecord {
            iccid: digits,
            isdp_aid: hex::encode_upper(&aid),
            state: ProfileStateRec::Disabled,
            nickname: None,
            service_provider_name: meta.service_provider_name.clone(),
            profile_name: meta.profile_name.clone(),
            profile_class: meta
                .profile_class
                .and_then(|c| i64::try_from(c).ok())
                .unwrap_or(2),
            icon_type: meta.icon_type.and_then(|c| i64::try_from(c).ok()),
            icon: meta.icon.clone(),
            notification_configuration: meta
                .notification_configuration_info
                .iter()
                .flatten()
                .map(|n| NotificationConfig {
                    operations: n.profile_management_operation.bits(),
                    address: n.notification_address.clone(),
                })
                .collect(),
            profile_policy_rules: meta.profile_policy_rules.clone(),
            profile_owner_mcc_mnc: meta
                .profile_owner
                .as_ref()
                .map(|o| hex::encode_upper(o.mcc_mnc)),
            smdp_oid: Some(dl.smdp_oid.clone()),
            smdp_address: auth.server_address.clone(),
            store_metadata: opened.store_metadata.clone(),
            profile_package: opened.upp.to_vec(),
            upp_info,
            usim,
        };
        self.state.profiles.push(record);
        self.dirty = true;
        // EUICCResponse { peStatus { PEStatus { status ok(0) } } } (SIMalliance PEDefinitions).
        let sima = vec![0x30, 0x07, 0xA0, 0x05, 0x30, 0x03, 0x80, 0x01, 0x00];
        (
            FinalResult::Success(SuccessResult {
                aid,
                sima_response: sima,
            }),
            Some(iccid),
        )
    }

    // -----------------------------------------------------------------------------------
    // USIM (3GPP TS 31.102 7.1.2)

    /// Send one APDU to the USIM of the installed profile `id` (ICCID digits or ISD-P AID
    /// hex) and return the response (data and SW): the AUTHENTICATE command of
    /// [`crate::usim::process_apdu`], as if that profile's USIM ADF were selected (its
    /// Enabled/Disabled state is not checked). A profile without Milenage USIM keys answers
    /// `6985`. An accepted SQN is recorded and makes the state dirty (save it with
    /// [`Euicc::save_if_dirty`]). Only an unknown profile is an error.
    pub fn usim_apdu(&mut self, id: &str, apdu: &[u8]) -> Result<Vec<u8>, UsimError> {
        let aid = self
            .state
            .find_profile(id)
            .map(|p| p.isdp_aid.clone())
            .ok_or_else(|| UsimError::UnknownProfile(id.trim().to_owned()))?;
        let Some(p) = self.state.profiles.iter_mut().find(|p| p.isdp_aid == aid) else {
            return Err(UsimError::UnknownProfile(id.trim().to_owned()));
        };
        let before = p.usim.as_ref().map(|u| *u.seq_array());
        let resp = crate::usim::process_apdu(p.usim.as_mut(), apdu);
        if p.usim.as_ref().map(|u| *u.seq_array()) != before {
            self.dirty = true;
        }
        Ok(resp)
    }

    /// AUTHENTICATE (3G context) with RAND and AUTN on the USIM of profile `id`, through
    /// the APDU path ([`crate::usim::authenticate_apdu`], [`Euicc::usim_apdu`],
    /// [`crate::usim::parse_response`]): RES/CK/IK, or AUTS for a synchronisation failure;
    /// [`UsimError::MacFailure`] for a wrong MAC, [`UsimError::NotSupported`] (with the
    /// reason) for a profile without Milenage USIM keys.
    pub fn usim_authenticate(
        &mut self,
        id: &str,
        rand: &[u8; 16],
        autn: &[u8; 16],
    ) -> Result<AuthOutcome, UsimError> {
        let resp = self.usim_apdu(id, &crate::usim::authenticate_apdu(rand, autn))?;
        match crate::usim::parse_response(&resp) {
            Err(UsimError::NotSupported(_)) => {
                let why = self
                    .state
                    .find_profile(id)
                    .map(|p| match UsimState::from_upp_der(&p.profile_package) {
                        Err(UsimError::NotSupported(why)) => why,
                        _ => "the profile has no Milenage USIM keys".to_owned(),
                    })
                    .unwrap_or_default();
                Err(UsimError::NotSupported(format!("{why} (SW 6985)")))
            }
            other => other,
        }
    }

    fn make_pir(
        &mut self,
        auth: &AuthContext,
        dppb_smdp_oid: &str,
        iccid: Option<Iccid>,
        final_result: FinalResult,
    ) -> ProfileInstallationResult {
        let seq = self.next_seq();
        let smdp_oid = Oid::from_dotted(dppb_smdp_oid);
        let data = Signed::new(ProfileInstallationResultData {
            transaction_id: auth.transaction_id.clone(),
            notification_metadata: NotificationMetadata {
                seq_number: seq,
                profile_management_operation: BitString::from_bits(
                    &[NotificationOp::Install.bit()],
                ),
                notification_address: auth.server_address.clone(),
                iccid,
                extensions: Extensions(Vec::new()),
            },
            smdp_oid,
            final_result,
            extensions: Extensions(Vec::new()),
        });
        let signature = self.sign(data.raw());
        let pir = ProfileInstallationResult {
            profile_installation_result_data: data,
            euicc_sign_pir: signature,
        };
        self.state.notifications.push(NotificationRecord {
            seq_number: seq,
            operation: NotificationOp::Install,
            address: auth.server_address.clone(),
            iccid: iccid.map(|i| i.to_digits()),
            pending_notification: pir.encode(),
        });
        self.dirty = true;
        pir
    }

    // -----------------------------------------------------------------------------------
    // ES10b: CancelSession

    /// ES10b.CancelSession (section 5.7.14): the transactionId must be the one of the
    /// authenticated session (`invalidTransactionId`). Signs `euiccCancelSessionSigned` with
    /// the SM-DP+ OID of CERT.DPauth, keeps the one-time key pair for a retry when the reason
    /// is `postponed` or `timeout`, and discards the session.
    pub fn cancel_session(&mut self, req: &CancelSessionRequest) -> CancelSessionResponse {
        let matches = self
            .session
            .as_ref()
            .and_then(|s| s.auth.as_ref())
            .is_some_and(|a| a.transaction_id == req.transaction_id);
        if !matches {
            return CancelSessionResponse::Error(CancelSessionResponseError::InvalidTransactionId);
        }
        let Some(session) = self.session.take() else {
            return CancelSessionResponse::Error(CancelSessionResponseError::InvalidTransactionId);
        };
        let Some(auth) = session.auth else {
            return CancelSessionResponse::Error(CancelSessionResponseError::InvalidTransactionId);
        };
        let Some(oid) = Oid::from_dotted(&auth.dpauth.smdp_oid) else {
            return CancelSessionResponse::Error(CancelSessionResponseError::UndefinedError);
        };
        let signed = Signed::new(EuiccCancelSessionSigned {
            transaction_id: req.transaction_id.clone(),
            smdp_oid: oid,
            reason: req.reason,
            extensions: Extensions(Vec::new()),
        });
        let signature = self.sign(signed.raw());
        if matches!(
            req.reason,
            CancelSessionReason::Postponed | CancelSessionReason::Timeout
        ) && let Some(dl) = session.download
        {
            self.retained_otk = Some(RetainedOtk {
                smdp_oid: dl.smdp_oid,
                key: dl.otk,
            });
        }
        CancelSessionResponse::Ok(CancelSessionResponseOk {
            euicc_cancel_session_signed: signed,
            euicc_cancel_session_signature: signature,
        })
    }

    // -----------------------------------------------------------------------------------
    // ES10b: notifications

    /// ES10b.ListNotification: metadata of pending notifications, optionally only those whose
    /// operation bit is set in `filter`.
    pub fn list_notifications(&self, filter: Option<&BitString>) -> Vec<NotificationMetadata> {
        self.state
            .notifications
            .iter()
            .filter(|n| filter.is_none_or(|f| f.is_set(n.operation.bit())))
            .filter_map(|n| metadata_of(&n.pending_notification))
            .collect()
    }

    /// ES10b.RetrieveNotificationsList: the signed notifications, by sequence number or
    /// operation (all when no criteria). An unknown sequence number gives
    /// `noResultAvailable`.
    pub fn retrieve_notifications(
        &self,
        criteria: Option<&NotificationSearchCriteria>,
    ) -> RetrieveNotificationsListResponse {
        let list: Vec<PendingNotification> = self
            .state
            .notifications
            .iter()
            .filter(|n| match criteria {
                None => true,
                Some(NotificationSearchCriteria::SeqNumber(s)) => n.seq_number == *s,
                Some(NotificationSearchCriteria::ProfileManagementOperation(f)) => {
                    f.is_set(n.operation.bit())
                }
            })
            .filter_map(|n| PendingNotification::decode(&n.pending_notification).ok())
            .collect();
        if list.is_empty() && matches!(criteria, Some(NotificationSearchCriteria::SeqNumber(_))) {
            return RetrieveNotificationsListResponse::Error(
                NotificationsListResultError::NoResultAvailable,
            );
        }
        RetrieveNotificationsListResponse::List(list)
    }

    /// ES10b.RemoveNotificationFromList.
    pub fn remove_notification(&mut self, seq_number: i64) -> DeleteNotificationStatus {
        let before = self.state.notifications.len();
        self.state
            .notifications
            .retain(|n| n.seq_number != seq_number);
        if self.state.notifications.len() == before {
            DeleteNotificationStatus::NothingToDelete
        } else {
            self.dirty = true;
            DeleteNotificationStatus::Ok
        }
    }

    fn other_notifications(&mut self, profile: &ProfileRecord, op: NotificationOp) -> Vec<i64> {
        let addresses: Vec<String> = profile
            .notification_configuration
            .iter()
            .filter(|c| {
                c.operations.contains(&op.bit())
                    || op
                        .local_equivalent()
                        .is_some_and(|l| c.operations.contains(&l.bit()))
            })
            .map(|c| c.address.clone())
            .collect();
        let mut seqs = Vec::new();
        for address in addresses {
            let seq = self.next_seq();
            let tbs = Signed::new(NotificationMetadata {
                seq_number: seq,
                profile_management_operation: BitString::from_bits(&[op.bit()]),
                notification_address: address.clone(),
                iccid: Iccid::from_digits(&profile.iccid),
                extensions: Extensions(Vec::new()),
            });
            let signature = self.sign(tbs.raw());
            let n =
                PendingNotification::OtherSignedNotification(Box::new(OtherSignedNotification {
                    tbs_other_notification: tbs,
                    euicc_notification_signature: signature,
                    euicc_certificate: self.euicc_cert.clone(),
                    eum_certificate: self.eum_cert.clone(),
                }));
            self.state.notifications.push(NotificationRecord {
                seq_number: seq,
                operation: op,
                address,
                iccid: Some(profile.iccid.clone()),
                pending_notification: n.encode(),
            });
            seqs.push(seq);
        }
        seqs
    }

    // -----------------------------------------------------------------------------------
    // ES10c

    fn profile_index(&self, id: &ProfileIdentifier) -> Option<usize> {
        self.state.profiles.iter().position(|p| match id {
            ProfileIdentifier::Iccid(i) => p.iccid == i.to_digits(),
            ProfileIdentifier::IsdpAid(a) => p.isdp_aid.eq_ignore_ascii_case(&hex::encode(a)),
        })
    }

    /// ES10c.GetProfilesInfo with the search criteria and tag list of the request.
    pub fn profiles_info(&self, req: &ProfileInfoListRequest) -> ProfileInfoListResponse {
        let tags = req
            .tag_list
            .as_deref()
            .map(crate::util::parse_tag_list)
            .filter(|t| !t.is_empty());
        let want = |t: u32| tags.as_ref().is_none_or(|l| l.contains(&t));
        let list = self
            .state
            .profiles
            .iter()
            .filter(|p| match &req.search_criteria {
                None => true,
                Some(ProfileSearchCriteria::Iccid(i)) => p.iccid == i.to_digits(),
                Some(ProfileSearchCriteria::IsdpAid(a)) => {
                    p.isdp_aid.eq_ignore_ascii_case(&hex::encode(a))
                }
                Some(ProfileSearchCriteria::ProfileClass(c)) => p.profile_class == c.to_i64(),
            })
            .map(|p| {
                let info = profile_info(p);
                ProfileInfo {
                    iccid: info.iccid.filter(|_| want(0x5A)),
                    isdp_aid: info.isdp_aid.filter(|_| want(0x4F)),
                    profile_state: info.profile_state.filter(|_| want(0x9F70)),
                    profile_nickname: info.profile_nickname.filter(|_| want(0x90)),
                    service_provider_name: info.service_provider_name.filter(|_| want(0x91)),
                    profile_name: info.profile_name.filter(|_| want(0x92)),
                    icon_type: info.icon_type.filter(|_| want(0x93)),
                    icon: info.icon.filter(|_| want(0x94)),
                    profile_class: info.profile_class.filter(|_| want(0x95)),
                    notification_configuration_info: info
                        .notification_configuration_info
                        .filter(|_| want(0xB6)),
                    profile_owner: info.profile_owner.filter(|_| want(0xB7)),
                    dp_proprietary_data: None,
                    profile_policy_rules: info.profile_policy_rules.filter(|_| want(0x99)),
                    extensions: Extensions(Vec::new()),
                }
            })
            .collect();
        ProfileInfoListResponse::Ok(list)
    }

    fn has_ppr(p: &ProfileRecord, ppr: u32) -> bool {
        p.profile_policy_rules
            .as_ref()
            .is_some_and(|r| r.contains(&ppr))
    }

    /// ES10c.EnableProfile: disables the currently enabled profile first (PPR1 permitting),
    /// then enables the target; creates the disable/enable notifications the profiles'
    /// notificationConfigurationInfo asks for.
    pub fn enable_profile(&mut self, id: &ProfileIdentifier) -> EnableResult {
        let Some(idx) = self.profile_index(id) else {
            return EnableResult::IccidOrAidNotFound;
        };
        if self.state.profiles[idx].state == ProfileStateRec::Enabled {
            return EnableResult::ProfileNotInDisabledState;
        }
        let current = self
            .state
            .profiles
            .iter()
            .position(|p| p.state == ProfileStateRec::Enabled);
        if let Some(c) = current {
            if Self::has_ppr(&self.state.profiles[c], ppr_ids::PPR1) {
                return EnableResult::DisallowedByPolicy;
            }
            self.state.profiles[c].state = ProfileStateRec::Disabled;
            let p = self.state.profiles[c].clone();
            self.other_notifications(&p, NotificationOp::Disable);
        }
        self.state.profiles[idx].state = ProfileStateRec::Enabled;
        self.dirty = true;
        let p = self.state.profiles[idx].clone();
        self.other_notifications(&p, NotificationOp::Enable);
        EnableResult::Ok
    }

    /// ES10c.DisableProfile (PPR1 forbids it).
    pub fn disable_profile(&mut self, id: &ProfileIdentifier) -> DisableResult {
        let Some(idx) = self.profile_index(id) else {
            return DisableResult::IccidOrAidNotFound;
        };
        if self.state.profiles[idx].state != ProfileStateRec::Enabled {
            return DisableResult::ProfileNotInEnabledState;
        }
        if Self::has_ppr(&self.state.profiles[idx], ppr_ids::PPR1) {
            return DisableResult::DisallowedByPolicy;
        }
        self.state.profiles[idx].state = ProfileStateRec::Disabled;
        self.dirty = true;
        let p = self.state.profiles[idx].clone();
        self.other_notifications(&p, NotificationOp::Disable);
        DisableResult::Ok
    }

    /// ES10c.DeleteProfile (only a disabled profile; PPR2 forbids it).
    pub fn delete_profile(&mut self, id: &ProfileIdentifier) -> DeleteResult {
        let Some(idx) = self.profile_index(id) else {
            return DeleteResult::IccidOrAidNotFound;
        };
        if self.state.profiles[idx].state != ProfileStateRec::Disabled {
            return DeleteResult::ProfileNotInDisabledState;
        }
        if Self::has_ppr(&self.state.profiles[idx], ppr_ids::PPR2) {
            return DeleteResult::DisallowedByPolicy;
        }
        let p = self.state.profiles.remove(idx);
        self.dirty = true;
        self.other_notifications(&p, NotificationOp::Delete);
        DeleteResult::Ok
    }

    /// ES10c.SetNickname.
    pub fn set_nickname(&mut self, iccid: &Iccid, nickname: &str) -> SetNicknameResult {
        let digits = iccid.to_digits();
        match self.state.profiles.iter_mut().find(|p| p.iccid == digits) {
            Some(p) => {
                p.nickname = (!nickname.is_empty()).then(|| nickname.to_owned());
                self.dirty = true;
                SetNicknameResult::Ok
            }
            None => SetNicknameResult::IccidNotFound,
        }
    }

    /// ES10c.eUICCMemoryReset: bit 0 deletes operational profiles, bit 1 test profiles,
    /// bit 2 resets the default SM-DP+ address.
    pub fn memory_reset(&mut self, options: &BitString) -> ResetResult {
        let before = self.state.profiles.len();
        let had_addr = self.state.default_smdp_address.is_some();
        self.state.profiles.retain(|p| {
            !((options.is_set(0) && p.profile_class == 2)
                || (options.is_set(1) && p.profile_class == 0))
        });
        if options.is_set(2) {
            self.state.default_smdp_address = None;
        }
        let changed = self.state.profiles.len() != before || (options.is_set(2) && had_addr);
        if changed {
            self.dirty = true;
            ResetResult::Ok
        } else {
            ResetResult::NothingToDelete
        }
    }

    /// ES10a.GetEuiccConfiguredAddresses.
    pub fn configured_addresses(&self) -> EuiccConfiguredAddressesResponse {
        EuiccConfiguredAddressesResponse {
            default_dp_address: self.state.default_smdp_address.clone(),
            root_ds_address: self.state.root_ds_address.clone(),
        }
    }

    /// ES10a.SetDefaultDpAddress (empty removes it).
    pub fn set_default_dp_address(&mut self, address: &str) {
        self.state.default_smdp_address = (!address.is_empty()).then(|| address.to_owned());
        self.dirty = true;
    }

    // -----------------------------------------------------------------------------------
    // DER dispatch

    /// Execute one complete ES10 command (DER) and return the DER response. A whole BPP
    /// (`BF36`) is accepted here too; the APDU face handles the segmented form.
    pub fn handle_es10(&mut self, cmd: &[u8]) -> Result<Vec<u8>, Es10Error> {
        let t = rsp_asn1::tlv::parse_single(cmd).map_err(inv)?;
        let out = match t.tag.0 {
            0xBF2E => {
                GetEuiccChallengeRequest::decode(cmd).map_err(inv)?;
                let c = self
                    .get_euicc_challenge()
                    .map_err(|_| Es10Error::ConditionsNotSatisfied)?;
                GetEuiccChallengeResponse {
                    euicc_challenge: Octet16::new(&c).map_err(inv)?,
                }
                .encode()
            }
            0xBF20 => {
                GetEuiccInfo1Request::decode(cmd).map_err(inv)?;
                self.euicc_info1().encode()
            }
            0xBF22 => {
                GetEuiccInfo2Request::decode(cmd).map_err(inv)?;
                self.euicc_info2().encode()
            }
            0xBF38 => {
                let req = AuthenticateServerRequest::decode(cmd).map_err(inv)?;
                self.authenticate_server(&req, None).encode()
            }
            0xBF21 => {
                let req = PrepareDownloadRequest::decode(cmd).map_err(inv)?;
                self.prepare_download(&req).encode()
            }
            0xBF36 => self.load_bound_profile_package(cmd)?.encode(),
            0xBF41 => {
                let req = CancelSessionRequest::decode(cmd).map_err(inv)?;
                self.cancel_session(&req).encode()
            }
            0xBF28 => {
                let req = ListNotificationRequest::decode(cmd).map_err(inv)?;
                ListNotificationResponse::List(
                    self.list_notifications(req.profile_management_operation.as_ref()),
                )
                .encode()
            }
            0xBF2B => {
                let req = RetrieveNotificationsListRequest::decode(cmd).map_err(inv)?;
                self.retrieve_notifications(req.search_criteria.as_ref())
                    .encode()
            }
            0xBF30 => {
                let req = NotificationSentRequest::decode(cmd).map_err(inv)?;
                NotificationSentResponse {
                    delete_notification_status: self.remove_notification(req.seq_number),
                }
                .encode()
            }
            0xBF2D => {
                let req = ProfileInfoListRequest::decode(cmd).map_err(inv)?;
                self.profiles_info(&req).encode()
            }
            0xBF31 => {
                let req = EnableProfileRequest::decode(cmd).map_err(inv)?;
                EnableProfileResponse {
                    enable_result: self.enable_profile(&req.profile_identifier),
                }
                .encode()
            }
            0xBF32 => {
                let req = DisableProfileRequest::decode(cmd).map_err(inv)?;
                DisableProfileResponse {
                    disable_result: self.disable_profile(&req.profile_identifier),
                }
                .encode()
            }
            0xBF33 => {
                let req = DeleteProfileRequest::decode(cmd).map_err(inv)?;
                DeleteProfileResponse {
                    delete_result: self.delete_profile(&req.0),
                }
                .encode()
            }
            0xBF29 => {
                let req = SetNicknameRequest::decode(cmd).map_err(inv)?;
                SetNicknameResponse {
                    set_nickname_result: self.set_nickname(&req.iccid, &req.profile_nickname),
                }
                .encode()
            }
            0xBF34 => {
                let req = EuiccMemoryResetRequest::decode(cmd).map_err(inv)?;
                EuiccMemoryResetResponse {
                    reset_result: self.memory_reset(&req.reset_options),
                }
                .encode()
            }
            0xBF3E => {
                let req = GetEuiccDataRequest::decode(cmd).map_err(inv)?;
                if req.tag_list.as_bytes() != [0x5A] {
                    return Err(Es10Error::InvalidData);
                }
                GetEuiccDataResponse {
                    eid_value: Eid::from_digits(&self.state.eid).ok_or(Es10Error::InvalidData)?,
                }
                .encode()
            }
            0xBF3C => {
                EuiccConfiguredAddressesRequest::decode(cmd).map_err(inv)?;
                self.configured_addresses().encode()
            }
            0xBF3F => {
                // SetDefaultDpAddressRequest ::= [63] SEQUENCE { defaultDpAddress UTF8String }
                let mut r = t.reader().map_err(inv)?;
                let a = r.read_expect(Tag::context(0)).map_err(inv)?;
                r.finish().map_err(inv)?;
                let addr = std::str::from_utf8(a.value).map_err(inv)?.to_owned();
                self.set_default_dp_address(&addr);
                vec![0xBF, 0x3F, 0x03, 0x80, 0x01, 0x00]
            }
            0xBF44 if self.state.v3 => {
                let req = rsp_asn1::rpm::LoadRpmPackageRequest::decode(cmd).map_err(inv)?;
                self.load_rpm_package(&req)?.encode()
            }
            // GetRAT: an empty Rules Authorisation Table.
            0xBF43 => vec![0xBF, 0x43, 0x02, 0xA0, 0x00],
            _ => return Err(Es10Error::UnknownCommand),
        };
        Ok(out)
    }
}

fn metadata_of(pending: &[u8]) -> Option<NotificationMetadata> {
    match PendingNotification::decode(pending).ok()? {
        PendingNotification::ProfileInstallationResult(p) => Some(
            p.profile_installation_result_data
                .value()
                .notification_metadata
                .clone(),
        ),
        PendingNotification::OtherSignedNotification(o) => {
            Some(o.tbs_other_notification.value().clone())
        }
        PendingNotification::LoadRpmPackageResultSigned(r) => {
            Some(r.data.notification_metadata.clone())
        }
        _ => None,
    }
}

fn error_result(cmd: BppCommandId, reason: ErrorReason) -> FinalResult {
    FinalResult::Error(ErrorResult {
        bpp_command_id: cmd,
        error_reason: reason,
        sima_response: None,
    })
}

fn map_auth_pki_error(e: &PkiError) -> AuthenticateErrorCode {
    match e {
        PkiError::UnknownCi { .. } => AuthenticateErrorCode::CiPkUnknown,
        PkiError::UnsupportedCurve { .. } | PkiError::CurveMismatch { .. } => {
            AuthenticateErrorCode::UnsupportedCurve
        }
        PkiError::WrongRole { .. } | PkiError::BadSmdpOid { .. } => {
            AuthenticateErrorCode::InvalidOid
        }
        _ => AuthenticateErrorCode::InvalidCertificate,
    }
}

/// The full ProfileInfo of an installed profile.
pub fn profile_info(p: &ProfileRecord) -> ProfileInfo {
    let nci: Vec<NotificationConfigurationInformation> = p
        .notification_configuration
        .iter()
        .map(|c| NotificationConfigurationInformation {
            profile_management_operation: BitString::from_bits(&c.operations),
            notification_address: c.address.clone(),
        })
        .collect();
    ProfileInfo {
        iccid: Iccid::from_digits(&p.iccid),
        isdp_aid: hex::decode(&p.isdp_aid)
            .ok()
            .and_then(|a| OctetTo16::new(&a).ok()),
        profile_state: Some(match p.state {
            ProfileStateRec::Enabled => ProfileState::Enabled,
            ProfileStateRec::Disabled => ProfileState::Disabled,
        }),
        profile_nickname: p.nickname.clone(),
        service_provider_name: Some(p.service_provider_name.clone()),
        profile_name: Some(p.profile_name.clone()),
        icon_type: p.icon_type.map(IconType::from_i64),
        icon: p.icon.clone(),
        profile_class: Some(ProfileClass::from_i64(p.profile_class)),
        notification_configuration_info: (!nci.is_empty()).then_some(nci),
        profile_owner: p
            .profile_owner_mcc_mnc
            .as_ref()
            .and_then(|m| hex::decode(m).ok())
            .and_then(|m| <[u8; 3]>::try_from(m.as_slice()).ok())
            .map(|mcc_mnc| rsp_asn1::common::OperatorId {
                mcc_mnc,
                gid1: None,
                gid2: None,
            }),
        dp_proprietary_data: None,
        profile_policy_rules: p
            .profile_policy_rules
            .as_ref()
            .map(|r| BitString::from_bits(r)),
        extensions: Extensions(Vec::new()),
    }
}
