//! [`Es9Engine`]: the ES9+ functions of SGP.22 v2.2 section 5.6 on top of the store.
//!
//! Every check is written in the order of the specification text and returns a
//! [`Failure`]; [`Failure::to_es9`] maps it to the status code (one place). Decisions where the
//! specification leaves a choice are documented here and on the function concerned:
//!
//! - calls in the wrong order for a transaction (GetBoundProfilePackage before
//!   AuthenticateClient, AuthenticateClient twice, a call after the session ended) are refused
//!   with `8.10.1/3.9`: the RSP session in the state the call needs is unknown;
//! - a failed AuthenticateClient/GetBoundProfilePackage after the order lookup ends the
//!   session (the eUICC side of it is spent); the LPA starts over;
//! - CancelSession on a session that already ended (or is unknown) is refused with
//!   `8.10.1/3.9` and does not touch the order: a cancel that lpac sends automatically after
//!   the server itself refused a call must not terminate the order a second time.
//! - a session is bound to one generation of its order: the profile version that
//!   AuthenticateClient's counted attempt returned (and, after delivery, the version of the
//!   Downloaded order). GetBoundProfilePackage, CancelSession and the
//!   ProfileInstallationResult act on the order only in that generation (compare-and-set on
//!   state, version and EID); otherwise GetBoundProfilePackage and CancelSession are refused
//!   `8.10.1/3.9` (the RSP session is no longer valid) and a PIR is acknowledged and ignored.
//!   A newer AuthenticateClient for the same order therefore supersedes older sessions.
//!   ES2+.CancelOrder also ends every session of the order in its transaction;
//! - the order is linked to the EID at GetBoundProfilePackage, after the Confirmation Code
//!   check (section 3.1.3.2 step 9), not at AuthenticateClient: an Activation Code alone
//!   cannot lock an order to another eUICC (an order the operator linked keeps its EID check);
//! - a ProfileInstallationResult moves the order only from the session that delivered the
//!   current BPP and still awaits a result (state delivered, the cached BPP's transactionId),
//!   and only when its ICCID and smdpOid (when present) are the session's; a duplicate
//!   (EID, seqNumber) whose session still awaits its result is applied (a retry after a
//!   failure between recording and transition).
//!
//! - AuthenticateClient also checks that the SVN of the signed euiccInfo2 equals the SVN of
//!   euiccInfo1 (section 3.1.2 step 16); Table 43 has no code for it, so it is reported like
//!   the other step-16 verifications of eUICC-signed data, `8.1/6.1`;
//! - the eligibility check (section 3.1.3 step 3, Annex F; see
//!   `Es9Engine::check_eligibility`) runs after the download attempt is counted; a failure
//!   (`8.1/4.8` insufficient memory / no additional profile, `8.2.5/4.3` no eligible profile)
//!   sets the order to Error, as section 3.1.3 step 5 requires;
//! - an expired order (`8.8.5/4.10`) is refused and keeps its state: sections 5.6.2/5.6.3
//!   only define the status code;
//! - the notificationAddress in the profile metadata is our SM-DP+ address including a
//!   non-default port, so that notifications reach a server on e.g. `127.0.0.1:8443`.
//!
//! Nothing secret is logged: no keys, no Confirmation Code or its hashes, no profile bytes.

use std::sync::Arc;

use rsp_asn1::auth::{AuthenticateServerResponse, CtxParams1, ServerSigned1, SignatureTlv, SkiTlv};
use rsp_asn1::bpp::{
    BoundProfilePackage, ConfigureIsdpRequest, NotificationConfigurationInformation,
    StoreMetadataRequest,
};
use rsp_asn1::cancel::{CancelSessionReason, CancelSessionResponse};
use rsp_asn1::common::{Eid, Iccid, Octet16, SubjectKeyIdentifier, TransactionId as AsnTid};
use rsp_asn1::download::{FinalResult, PrepareDownloadResponse, SmdpSigned2};
use rsp_asn1::euicc_info::EuiccInfo1;
use rsp_asn1::notification::PendingNotification;
use rsp_asn1::tlv::write_tlv;
use rsp_asn1::{Codec, Tag};
use rsp_crypto::Curve;
use rsp_crypto::bpp::{BppParams, ProfileProtection, build_bpp, smdp_sign_data};
use rsp_crypto::ecdsa::verify_raw;
use rsp_pki::validate_euicc_chain;
use sha2::{Digest, Sha256};
use smdpp_core::callbacks::point;
use smdpp_core::es9_json::{
    AuthenticateClientAnswer, AuthenticateClientRequest, AuthenticateClientResponse,
    CancelSessionRequest, GetBoundProfilePackageRequest, GetBoundProfilePackageResponse,
    HandleNotificationRequest, InitiateAuthenticationRequest, InitiateAuthenticationResponse,
    TransactionId,
};
use smdpp_core::status::{self, Es9Error, FunctionExecutionStatus};
use smdpp_server::Es9Service;
use smdpp_store::{
    Counter, EventRecord, Expect, NewNotification, NewSession, Patch, Profile, ProfileFilter,
    ProfileState, ProfileUpdate, RecordOutcome, Session, SessionUpdate, Store, StoreError, now_ms,
};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::config::ServiceConfig;
use crate::factory::Factory;
use crate::failure::Failure;
use crate::keys::{KeySet, ServerKeys};
use crate::outbox;
use crate::session::{EuiccBinding, Phase, SessionData, state};
use crate::sidecar::{CachedBpp, Sidecar};
use crate::upp::random_bytes;

/// The actor name written in profile events.
const ACTOR: &str = "es9plus";
/// hostId of the BPP's control reference template (SGP.22 section 5.5.1; any 1..16 bytes).
const HOST_ID: &[u8] = b"smdpp";
/// Profile states from which a download may (re)start: Released, or Downloaded for a retry
/// after a failed installation (SGP.22 section 3.1.3 step 3, Table 6b).
const DOWNLOADABLE: [ProfileState; 2] = [ProfileState::Released, ProfileState::Downloaded];
/// Profile states from which an ES9+ failure terminates the order (to Error).
const TERMINABLE: [ProfileState; 5] = [
    ProfileState::Released,
    ProfileState::Downloaded,
    ProfileState::Confirmed,
    ProfileState::Linked,
    ProfileState::Allocated,
];

type Result<T> = std::result::Result<T, Failure>;

/// What the StoreMetadataRequest and the eligibility check of a profile use: the
/// per-profile metadata (`smdpp profiles add`, ES2+ orders) or, for an imported profile,
/// its type's.
#[derive(Debug, Clone, Default)]
struct Meta {
    spn: String,
    name: String,
    class: Option<i64>,
    icon: Option<(u64, Vec<u8>)>,
    /// profileManagementOperation bits that send notifications to us.
    notify_bits: Vec<u32>,
    /// profilePolicyRules bits.
    ppr_bits: Option<Vec<u32>>,
    /// profileOwner (MCC/MNC of the IMSI), sent with PPRs: the eUICC checks PPRs against
    /// its Rules Authorisation Table by Profile Owner (SGP.22 section 2.9.2).
    owner: Option<rsp_asn1::common::OperatorId>,
}

/// The set bits of a mask `1 << bit` (bits 0..=31).
fn mask_bits(mask: i64) -> Vec<u32> {
    (0..32).filter(|b| mask & (1 << b) != 0).collect()
}

/// Notifications requested when the profile (or its type) does not say: every operation
/// (section 3.5; bits 0 install, 1 enable, 2 disable, 3 delete of profileManagementOperation),
/// so that the server's view of the profile follows the eUICC's.
const DEFAULT_NOTIFY_BITS: [u32; 4] = [0, 1, 2, 3];

/// The ES9+ engine: implements [`Es9Service`].
pub struct Es9Engine {
    store: Store,
    sidecar: Sidecar,
    keys: Arc<ServerKeys>,
    config: ServiceConfig,
    factory: Option<Arc<Factory>>,
    open_sessions: OpenSessions,
    eid_refusals: EidRefusals,
}

/// Refused MatchingIDs and Confirmation Codes per EID in the current one-minute window (see
/// [`Limits::refusals_per_eid_per_minute`]); at most [`EidRefusals::MAX_TRACKED`] EIDs, then
/// expired windows are dropped and, if still full, all (fail open).
#[derive(Debug, Default)]
struct EidRefusals {
    windows: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, u32)>>,
}

impl EidRefusals {
    const WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
    const MAX_TRACKED: usize = 100_000;

    /// Whether `eid` is over `limit` in its current window.
    fn over(&self, eid: &str, limit: u32) -> bool {
        if limit == 0 {
            return false;
        }
        let map = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(eid)
            .is_some_and(|(start, n)| start.elapsed() < Self::WINDOW && *n >= limit)
    }

    /// Counts one refusal for `eid`.
    fn refused(&self, eid: &str) {
        let now = std::time::Instant::now();
        let mut map = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= Self::MAX_TRACKED && !map.contains_key(eid) {
            map.retain(|_, (start, _)| now.duration_since(*start) < Self::WINDOW);
            if map.len() >= Self::MAX_TRACKED {
                map.clear();
            }
        }
        let w = map.entry(eid.to_owned()).or_insert((now, 0));
        if now.duration_since(w.0) >= Self::WINDOW {
            *w = (now, 0);
        }
        w.1 = w.1.saturating_add(1);
    }

    /// Refuses `eid` when over `limit`; otherwise counts `result` if it is a refusal.
    fn check<T>(&self, eid: &str, limit: u32, result: Result<T>) -> Result<T> {
        if matches!(result, Err(Failure::MatchingIdRefused | Failure::CcRefused)) && limit > 0 {
            self.refused(eid);
        }
        result
    }
}

/// The engine's view of how many sessions are open (see [`Limits::max_open_sessions`]): the
/// database count, read at most once a second, plus the sessions this node opened since.
#[derive(Debug, Default)]
struct OpenSessions {
    read: std::sync::Mutex<Option<(std::time::Instant, i64)>>,
    since: std::sync::atomic::AtomicI64,
}

impl std::fmt::Debug for Es9Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Es9Engine")
            .field("config", &self.config)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

fn unhex(s: &str) -> Result<Vec<u8>> {
    hex::decode(s).map_err(|_| Failure::Internal("corrupt session blob".into()))
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn curve_by_name(name: &str) -> Result<Curve> {
    Curve::ALL
        .into_iter()
        .find(|c| c.name() == name)
        .ok_or_else(|| Failure::Internal("unknown curve in session".into()))
}

/// `SHA256(SHA256(CC) || transactionId)` from the stored `SHA256(CC)` (SGP.22 section 4.7,
/// 3.1.3.2 step 8).
pub fn expected_hash_cc(cc_sha256: &[u8], transaction_id: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(cc_sha256);
    h.update(transaction_id);
    h.finalize().into()
}

/// The stored name of the session's next phase, when [`Phase::allows`] the move; a move
/// outside the flow is refused as an invalid RSP session (`8.10.1/3.9`) and logged.
fn advance(from: &str, to: Phase) -> Result<&'static str> {
    Phase::advance(from, to).map_err(|e| {
        tracing::warn!(error = %e, "session move refused");
        Failure::UnknownTransaction("the session cannot make this move")
    })
}

fn sig_tlv(sig: &[u8]) -> Vec<u8> {
    SignatureTlv(sig.to_vec()).encode()
}

impl Es9Engine {
    /// An engine over `store` (migrated) and its service tables.
    pub fn new(
        store: Store,
        sidecar: Sidecar,
        keys: Arc<ServerKeys>,
        config: ServiceConfig,
    ) -> Self {
        Es9Engine {
            store,
            sidecar,
            keys,
            config,
            factory: None,
            open_sessions: OpenSessions::default(),
            eid_refusals: EidRefusals::default(),
        }
    }

    /// Refuses a new session when the bound on open sessions is reached.
    async fn check_open_sessions(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        let max = self.config.limits.max_open_sessions;
        if max <= 0 {
            return Ok(());
        }
        let cached = *self
            .open_sessions
            .read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let base = match cached {
            Some((at, n)) if at.elapsed() < std::time::Duration::from_secs(1) => n,
            _ => {
                let n = self
                    .store
                    .count_sessions(
                        &[
                            state::INITIATED,
                            state::AUTHENTICATING,
                            state::AUTHENTICATED,
                            state::BINDING,
                        ],
                        now_ms(),
                    )
                    .await?;
                *self
                    .open_sessions
                    .read
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((std::time::Instant::now(), n));
                self.open_sessions.since.store(0, Ordering::Relaxed);
                n
            }
        };
        if base + self.open_sessions.since.load(Ordering::Relaxed) >= max {
            tracing::warn!(
                open = base,
                max,
                "bound on open RSP sessions reached; initiateAuthentication refused"
            );
            return Err(Failure::SessionsFull);
        }
        self.open_sessions.since.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Uses `factory` for profile packages: sealed stored packages are opened, and imported
    /// profiles are generated from their type's template at GetBoundProfilePackage. Without
    /// a factory only packages stored in the clear can be served.
    pub fn with_factory(mut self, factory: Arc<Factory>) -> Self {
        self.factory = Some(factory);
        self
    }

    /// The profile factory, if configured.
    pub fn factory(&self) -> Option<&Arc<Factory>> {
        self.factory.as_ref()
    }

    /// The package of a profile, in a buffer wiped on drop (see [`Factory::upp_for`]).
    async fn profile_upp(&self, profile: &Profile) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        match (&self.factory, &profile.upp) {
            (Some(f), _) => f
                .upp_for(profile)
                .await
                .map_err(|e| Failure::Internal(format!("profile package: {e}"))),
            (None, Some(upp)) if crate::factory::is_plaintext_upp(upp) => {
                Ok(zeroize::Zeroizing::new(upp.clone()))
            }
            (None, _) => Err(Failure::Internal(
                "profile package needs the vault, which is not configured".into(),
            )),
        }
    }

    /// Size and ProfileHeader version of a profile's package (see
    /// [`Factory::package_facts`]).
    async fn package_facts(&self, profile: &Profile) -> Result<(usize, Option<(u8, u8)>)> {
        match &self.factory {
            Some(f) => f
                .package_facts(profile)
                .await
                .map_err(|e| Failure::Internal(format!("profile package: {e}"))),
            None => {
                let upp = self.profile_upp(profile).await?;
                Ok((upp.len(), upp_version(&upp)))
            }
        }
    }

    /// The service tables (profile metadata, BPP cache).
    pub fn sidecar(&self) -> &Sidecar {
        &self.sidecar
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The trust store and key sets the engine signs and verifies with.
    pub fn keys(&self) -> &ServerKeys {
        &self.keys
    }

    // ------------------------------------------------------------------ sessions

    async fn load_session(&self, tid: &TransactionId) -> Result<(Session, SessionData)> {
        let s = self
            .store
            .get_session(&tid.to_hex(), now_ms())
            .await?
            .ok_or(Failure::UnknownTransaction("no live session for it"))?;
        let data = SessionData::from_bytes(&s.data)
            .map_err(|_| Failure::Internal("corrupt session blob".into()))?;
        Ok((s, data))
    }

    /// Compare-and-set of the session to `new_state`; a lost race is `8.10.1/3.9`.
    async fn cas_session(
        &self,
        s: &Session,
        to: Phase,
        data: &SessionData,
        iccid: Patch<String>,
        eid: Patch<String>,
        expires_at: Option<i64>,
    ) -> Result<Session> {
        let update = SessionUpdate {
            state: advance(&s.state, to)?.to_owned(),
            data: data.to_bytes(),
            eid,
            iccid,
            expires_at,
        };
        match self
            .store
            .update_session_cas(&s.transaction_id, s.version, &update, now_ms())
            .await
        {
            Ok(s) => Ok(s),
            Err(StoreError::Conflict { .. }) => Err(Failure::UnknownTransaction(
                "another call for this transaction is in progress or completed",
            )),
            Err(StoreError::NotFound | StoreError::Expired) => {
                Err(Failure::UnknownTransaction("session expired"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Best-effort end of a claimed session after a failure (the failure is what the caller
    /// reports; a store error here is only logged).
    async fn end_session(&self, s: &Session, data: &SessionData) {
        if let Err(e) = self
            .cas_session(s, Phase::Ended, data, Patch::Keep, Patch::Keep, None)
            .await
        {
            tracing::warn!(transaction_id = %s.transaction_id, error = %e, "could not end session");
        }
    }

    /// Terminates the order (Error) with `cause`; `notify` (a HandleDownloadProgressInfo)
    /// and the ES12.DeleteEvent of a registered event are queued in the same transaction.
    async fn profile_to_error(
        &self,
        p: &Profile,
        cause: &str,
        notify: Option<smdpp_store::NewOutboxRow>,
    ) -> Result<()> {
        let update = ProfileUpdate {
            error_cause: Patch::Set(cause.to_owned()),
            ..ProfileUpdate::to_state(ProfileState::Error)
        };
        let expect = Expect::states(&TERMINABLE);
        match self
            .store
            .transition(
                &p.iccid,
                &expect,
                &update,
                &EventRecord::by(ACTOR)
                    .with_cause(cause)
                    .with_outbox(notify.into_iter().chain(outbox::es12_delete(p))),
            )
            .await
        {
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.sidecar.delete_bpp(&p.iccid).await?;
        tracing::info!(iccid = %p.iccid, cause, "order terminated");
        Ok(())
    }

    // ------------------------------------------------------- InitiateAuthentication

    /// ES9+.InitiateAuthentication (SGP.22 section 5.6.1, 3.1.2 steps 6-10).
    pub async fn do_initiate(
        &self,
        req: InitiateAuthenticationRequest,
    ) -> Result<InitiateAuthenticationResponse> {
        let info1 = EuiccInfo1::decode(&req.euicc_info1)
            .map_err(|e| Failure::Malformed(format!("euiccInfo1 ({e})")))?;
        // Table 37 / section 2.6.7: we implement SGP.22 v2.x.
        let svn = info1.svn.as_bytes();
        if svn.first() != Some(&2) {
            return Err(Failure::SvnUnsupported);
        }
        if !self.config.is_our_address(&req.smdp_address) {
            return Err(Failure::WrongSmdpAddress);
        }
        let for_signing: Vec<Vec<u8>> = info1
            .ci_pkid_list_for_signing
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let for_verification: Vec<Vec<u8>> = info1
            .ci_pkid_list_for_verification
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let signing_ci = self
            .keys
            .choose_signing_ci(&for_signing)
            .ok_or(Failure::NoSigningCi)?;
        let set = self
            .keys
            .choose_key_set(&signing_ci, &for_verification)
            .ok_or(Failure::NoDpAuthForCi)?;

        self.check_open_sessions().await?;
        let tid_bytes = random_bytes::<16>()?;
        let server_challenge = random_bytes::<16>()?;
        let tid = TransactionId::from_bytes(&tid_bytes)
            .map_err(|_| Failure::Internal("transaction id".into()))?;
        let euicc_challenge = Octet16::new(&req.euicc_challenge)
            .map_err(|_| Failure::Malformed("euiccChallenge".into()))?;
        let signed1 = ServerSigned1 {
            transaction_id: AsnTid::new(&tid_bytes)
                .map_err(|_| Failure::Internal("transaction id".into()))?,
            euicc_challenge,
            // The address as the LPA sent it (equal to ours ignoring case), so that an LPA
            // comparing it with its Activation Code finds the same text.
            server_address: req.smdp_address.clone(),
            server_challenge: Octet16::new(&server_challenge)
                .map_err(|_| Failure::Internal("challenge".into()))?,
        };
        let signed1_der = signed1.encode();
        let sig = set
            .dpauth_key
            .sign(&signed1_der)
            .map_err(|e| Failure::Internal(format!("DPauth signature: {e}")))?;

        let data = SessionData {
            server_challenge: hex::encode(server_challenge),
            euicc_challenge: hex::encode(&req.euicc_challenge),
            svn: hex::encode(svn),
            signing_ci: hex::encode(&signing_ci),
            key_set_ci: hex::encode(&set.ci_ski),
            server_address: req.smdp_address.clone(),
            euicc: None,
            delivered_otpk: None,
            delivered_order_version: None,
            rpm_order: None,
        };
        let now = now_ms();
        let new = NewSession {
            transaction_id: tid.to_hex(),
            state: state::INITIATED.to_owned(),
            eid: None,
            iccid: None,
            data: data.to_bytes(),
            created_at: now,
            expires_at: now.saturating_add(ms(self.config.limits.session_ttl)),
        };
        match self.store.put_session(&new).await {
            Ok(_) => {}
            // 128 random bits colliding is not going to happen; refuse rather than overwrite.
            Err(StoreError::Duplicate { .. }) => {
                return Err(Failure::Internal("transactionId collision".into()));
            }
            Err(e) => return Err(e.into()),
        }
        record_in_span("transaction_id", &tid.to_string());
        tracing::info!(transaction_id = %tid, "session initiated");
        Ok(InitiateAuthenticationResponse {
            transaction_id: tid,
            server_signed1: signed1_der,
            server_signature1: sig_tlv(&sig),
            euicc_ci_pkid_to_be_used: SkiTlv(
                SubjectKeyIdentifier::new(&signing_ci)
                    .map_err(|_| Failure::Internal("CI key id".into()))?,
            )
            .encode(),
            server_certificate: set.dpauth_cert.clone(),
        })
    }

    fn key_set(&self, data: &SessionData) -> Result<&KeySet> {
        self.keys.set_for(&unhex(&data.key_set_ci)?).ok_or_else(|| {
            Failure::Internal("key set of the session is no longer configured".into())
        })
    }

    // ---------------------------------------------------------- AuthenticateClient

    /// ES9+.AuthenticateClient (SGP.22 section 5.6.3, 3.1.2 step 16-17, 3.1.3 steps 3-6).
    pub async fn do_authenticate(
        &self,
        req: AuthenticateClientRequest,
    ) -> Result<AuthenticateClientAnswer> {
        let (session, mut data) = self.load_session(&req.transaction_id).await?;
        if session.state != state::INITIATED {
            return Err(Failure::UnknownTransaction(
                "not awaiting AuthenticateClient",
            ));
        }
        let resp = AuthenticateServerResponse::decode(&req.authenticate_server_response)
            .map_err(|e| Failure::Malformed(format!("authenticateServerResponse ({e})")))?;
        let ok = match resp {
            AuthenticateServerResponse::Ok(ok) => ok,
            AuthenticateServerResponse::Error(e) => {
                return Err(Failure::EuiccReportedError(format!(
                    "authenticateErrorCode {}",
                    e.authenticate_error_code.to_i64()
                )));
            }
        };
        let signed1 = ok.euicc_signed1.value();
        // Correlate the two TransactionIDs (section 5.6.3).
        if signed1.transaction_id.as_bytes() != req.transaction_id.as_bytes() {
            return Err(Failure::UnknownTransaction(
                "euiccSigned1.transactionId differs",
            ));
        }
        // EUM and eUICC certificates (section 4.5.2.2).
        let euicc = validate_euicc_chain(
            &self.keys.trust,
            ok.eum_certificate.as_der(),
            ok.euicc_certificate.as_der(),
            OffsetDateTime::now_utc(),
        )
        .map_err(Failure::Chain)?;
        // The eUICC must have signed with the CI we told it to use (euiccCiPKIdToBeUsed).
        if euicc.ci_ski != unhex(&data.signing_ci)? {
            return Err(Failure::Chain(rsp_pki::PkiError::UnknownCi {
                role: rsp_pki::CertRole::Eum,
                aki_hex: hex::encode(&euicc.ci_ski),
            }));
        }
        // Section 4.5.2.2: not revoked, nor any certificate of its chain (CRLs, section 4.6;
        // the snapshot in memory, no I/O). Codes: see `failure::chain_code`.
        self.keys
            .revocation
            .check_euicc(&self.keys.trust, &euicc)
            .map_err(Failure::Chain)?;
        // euiccSignature1 over the received euiccSigned1 bytes (section 5.7.13).
        verify_raw(
            euicc.curve,
            &euicc.public_key,
            ok.euicc_signed1.raw(),
            &ok.euicc_signature1,
        )
        .map_err(|_| Failure::EuiccVerification("euiccSignature1 does not verify"))?;
        if signed1.server_challenge.as_bytes() != unhex(&data.server_challenge)?.as_slice() {
            return Err(Failure::EuiccVerification("serverChallenge mismatch"));
        }
        if !signed1
            .server_address
            .eq_ignore_ascii_case(&data.server_address)
        {
            return Err(Failure::EuiccVerification("serverAddress mismatch"));
        }
        // Section 3.1.2 step 16: "Verify that the SVN included in the euiccInfo2 is the same
        // as the SVN which was delivered in the step (6)" (euiccInfo1 of
        // InitiateAuthentication). Table 43 has no code of its own for this; it is one of the
        // step-16 verifications of data signed by the eUICC, like the serverChallenge, so it
        // is reported as `8.1/6.1` (eUICC verification failed). Like the other verifications
        // before the session is claimed, it leaves the session and the order untouched.
        if signed1.euicc_info2.svn.as_bytes() != unhex(&data.svn)?.as_slice() {
            return Err(Failure::EuiccVerification(
                "SVN in euiccInfo2 differs from the SVN in euiccInfo1",
            ));
        }
        let (matching_id, rpm_ask) = match &signed1.ctx_params1 {
            CtxParams1::CommonAuthentication(c) => (
                c.matching_id.clone().filter(|m| !m.is_empty()),
                c.asks_rpm().then(|| c.iccid().map(|i| i.to_digits())),
            ),
            CtxParams1::Unknown(_) => {
                return Err(Failure::Malformed(
                    "ctxParams1 (unsupported alternative)".into(),
                ));
            }
        };
        let eid = euicc.eid.clone();
        record_in_span("eid", &eid);

        // SGP.22 v3: an LPA that asks for Remote Profile Management (operationType rpm)
        // gets the waiting RPM package; a v2 LPA never asks and never gets one.
        let (answer, session) = match rpm_ask {
            Some(iccid) => {
                // Claim the session: from here on exactly one call proceeds.
                let claimed = self
                    .cas_session(
                        &session,
                        Phase::Authenticating,
                        &data,
                        Patch::Keep,
                        Patch::Set(eid.clone()),
                        None,
                    )
                    .await?;
                let answer = self
                    .authenticate_rpm(
                        &claimed,
                        &mut data,
                        &eid,
                        matching_id.as_deref(),
                        iccid.as_deref(),
                        &ok,
                        &euicc,
                    )
                    .await;
                (answer, claimed)
            }
            // A download: no claim; the order's attempt, the session's move to
            // authenticated and the outbox row commit together at the end, conditional on
            // the session version read above, so of two concurrent calls one proceeds.
            None => (
                self.authenticate_order(
                    &session,
                    &mut data,
                    &eid,
                    matching_id.as_deref(),
                    &ok,
                    &euicc,
                )
                .await
                .map(Into::into),
                session,
            ),
        };
        match answer {
            Ok(r) => Ok(r),
            Err(f) => {
                self.end_session(&session, &data).await;
                Err(f)
            }
        }
    }

    /// The RPM branch of AuthenticateClient (SGP.22 v3; `../shared/docs/rpm-v3-digest.md`
    /// §5.3): the oldest RPM package waiting for this eUICC (for the MatchingID or the ICCID
    /// the LPA named, when it named one) is signed as `smdpSigned3` with SK.DPauth over
    /// `smdpSigned3 ‖ euiccSignature1` and marked delivered by this session, which keeps the
    /// eUICC key that must sign the result. `rpmPending` says more packages wait.
    #[allow(clippy::too_many_arguments)]
    async fn authenticate_rpm(
        &self,
        claimed: &Session,
        data: &mut SessionData,
        eid: &str,
        matching_id: Option<&str>,
        iccid: Option<&str>,
        ok: &rsp_asn1::auth::AuthenticateResponseOk,
        euicc: &rsp_pki::ValidatedEuicc,
    ) -> Result<AuthenticateClientAnswer> {
        let info2 = &ok.euicc_signed1.value().euicc_info2;
        let rpm_support = info2
            .rsp_capability
            .is_set(rsp_asn1::common::rsp_capability::RPM_SUPPORT);
        let svn = hex::encode(info2.svn.as_bytes());
        if let Err(e) = self
            .store
            .put_euicc_capabilities(&smdpp_store::EuiccCapabilities {
                eid: eid.to_owned(),
                svn: svn.clone(),
                rpm_support,
                updated_at: now_ms(),
            })
            .await
        {
            tracing::warn!(error = %e, "eUICC capabilities not recorded");
        }
        if !rpm_support {
            return Err(Failure::RpmNotSupported);
        }
        // A package delivered by a session that ended without a result (its session has
        // expired) is handed out again.
        let redeliver_before = now_ms().saturating_sub(ms(self.config.limits.session_ttl));
        let waiting: Vec<smdpp_store::RpmOrder> = self
            .store
            .waiting_rpm_orders(eid, iccid, redeliver_before)
            .await?
            .into_iter()
            .filter(|o| matching_id.is_none_or(|m| m == o.id))
            .collect();
        let Some(order) = waiting.first().cloned() else {
            return Err(Failure::NoRpmPending);
        };
        let more = waiting.len() > 1
            || (iccid.is_some()
                && !self
                    .store
                    .waiting_rpm_orders(eid, None, redeliver_before)
                    .await?
                    .iter()
                    .all(|o| o.id == order.id));
        let package = rsp_asn1::rpm::RpmPackage::decode(&order.package)
            .map_err(|e| Failure::Internal(format!("stored RPM package: {e}")))?;
        let tid = AsnTid::new(claimed_tid(claimed)?.as_slice())
            .map_err(|_| Failure::Internal("transaction id".into()))?;
        let signed3 = rsp_asn1::rpm::SmdpSigned3 {
            transaction_id: tid,
            rpm_package: package,
            rpm_pending: more,
        };
        let signed3_der = signed3.encode();
        let tbs = rsp_asn1::rpm::smdp_signed3_tbs(&signed3_der, &ok.euicc_signature1);
        let sig3 = self
            .key_set(data)?
            .dpauth_key
            .sign(&tbs)
            .map_err(|e| Failure::Internal(format!("DPauth signature: {e}")))?;
        if !self
            .store
            .rpm_order_delivered(
                &order.id,
                order.version,
                &claimed.transaction_id,
                euicc.curve.name(),
                &euicc.public_key,
            )
            .await?
        {
            // Another session took it in the meantime.
            return Err(Failure::NoRpmPending);
        }
        data.euicc = Some(EuiccBinding {
            eid: eid.to_owned(),
            curve: euicc.curve.name().to_owned(),
            public_key: hex::encode(&euicc.public_key),
            iccid: order.iccid.clone(),
            cc_required: false,
            smdp_signature2_tlv: String::new(),
            profile_metadata: String::new(),
            offered_otpk: None,
            order_version: None,
            svn: Some(svn),
            rpm_support,
        });
        data.rpm_order = Some(order.id.clone());
        self.cas_session(
            claimed,
            Phase::RpmDelivered,
            data,
            Patch::Set(order.iccid.clone()),
            Patch::Keep,
            None,
        )
        .await?;
        tracing::info!(
            transaction_id = %claimed.transaction_id,
            iccid = %order.iccid,
            commands = %order.commands,
            "RPM package delivered"
        );
        Ok(AuthenticateClientAnswer::Rpm(
            smdpp_core::es9_json::AuthenticateClientRpmResponse {
                transaction_id: TransactionId::from_bytes(&claimed_tid(claimed)?)
                    .map_err(|_| Failure::Internal("transaction id".into()))?,
                smdp_signed3: signed3_der,
                smdp_signature3: sig_tlv(&sig3),
            },
        ))
    }

    /// Order lookup (section 5.6.3 rules) and the AuthenticateClient response.
    async fn authenticate_order(
        &self,
        claimed: &Session,
        data: &mut SessionData,
        eid: &str,
        matching_id: Option<&str>,
        ok: &rsp_asn1::auth::AuthenticateResponseOk,
        euicc: &rsp_pki::ValidatedEuicc,
    ) -> Result<AuthenticateClientResponse> {
        let limit = self.config.limits.refusals_per_eid_per_minute;
        if self.eid_refusals.over(eid, limit) {
            return Err(Failure::EidThrottled);
        }
        let found = self.find_order(eid, matching_id).await;
        let profile = self.eid_refusals.check(eid, limit, found)?;
        if !DOWNLOADABLE.contains(&profile.state) {
            return Err(Failure::NotReleased);
        }
        let now = now_ms();
        if profile.expires_at.is_some_and(|e| e <= now) {
            return Err(Failure::OrderExpired);
        }
        // Download attempt counter (section 3.1.3 start conditions): the attempt that exceeds
        // the limit terminates the order.
        let limit = profile
            .download_attempt_limit
            .unwrap_or(self.config.limits.download_attempt_limit);
        if profile.download_attempts.saturating_add(1) > limit {
            // Table 32c; point 1 "Eligibility and retry limit check" (Table 32a).
            let notify = outbox::hdpi_failed(
                &profile,
                Some(eid),
                point::ELIGIBILITY,
                &status::DOWNLOAD_ORDER_RETRIES_EXCEEDED,
            );
            self.profile_to_error(&profile, "download attempts exceeded", notify)
                .await?;
            return Err(Failure::DownloadAttemptsExceeded);
        }
        // Count the attempt; the order stays Released (or Downloaded) until a BPP is
        // delivered (Table 6b). The order is NOT linked to this EID here: section 3.1.3.2
        // step 9 links it at GetBoundProfilePackage, after the Confirmation Code check
        // (step 7-8), so that an Activation Code alone cannot lock the order to another
        // eUICC. An order the operator created with an EID keeps that EID (checked in
        // `find_order`). The version this returns is the order generation of the session.
        let update = ProfileUpdate {
            download_attempts: smdpp_store::CounterOp::Add(1),
            ..ProfileUpdate::default()
        };
        let expect = Expect::states(&DOWNLOADABLE).and_version(profile.version);
        let event = EventRecord::by(ACTOR).with_cause("authenticateClient");

        // Eligibility (section 3.1.3 steps 3 and 5, Annex F), decided on the order as read
        // (the attempt counter does not enter it). A failure counts the attempt, then sets
        // the order to Error (step 5: "Set the Profile ... in 'Error' state") and stops the
        // procedure; both are rare, so they keep their own two commits.
        let stored_metadata = self.stored_metadata(&profile).await?;
        let facts = self.package_facts(&profile).await?;
        if let Err(f) = self.check_eligibility(
            facts,
            stored_metadata.as_ref(),
            &ok.euicc_signed1.value().euicc_info2,
        ) {
            let profile = match self
                .store
                .transition(&profile.iccid, &expect, &update, &event)
                .await
            {
                Ok(p) => p,
                Err(StoreError::Conflict { .. }) => return Err(Failure::NotReleased),
                Err(e) => return Err(e.into()),
            };
            let notify =
                outbox::hdpi_failed(&profile, Some(eid), point::ELIGIBILITY, &f.to_es9().code);
            self.profile_to_error(&profile, &format!("eligibility check failed: {f}"), notify)
                .await?;
            return Err(f);
        }

        let set = self.key_set(data)?;
        let metadata = self.profile_metadata(&profile, stored_metadata)?;
        let cc_required = profile.cc_hash.is_some();
        // A BPP cached for this eUICC is announced by its otPK (section 3.1.3.2, 5.7.5).
        let offered_otpk = match self.sidecar.get_bpp(&profile.iccid).await? {
            Some(c) if c.eid == eid => Some(c.euicc_otpk),
            Some(_) => {
                self.sidecar.delete_bpp(&profile.iccid).await?;
                None
            }
            None => None,
        };
        let tid = AsnTid::new(claimed_tid(claimed)?.as_slice())
            .map_err(|_| Failure::Internal("transaction id".into()))?;
        let signed2 = SmdpSigned2 {
            transaction_id: tid,
            cc_required_flag: cc_required,
            bpp_euicc_otpk: offered_otpk.clone(),
        };
        let signed2_der = signed2.encode();
        // smdpSignature2 covers smdpSigned2 || euiccSignature1 (with its 5F37 tag), section
        // 5.7.5 ("ES10b.PrepareDownload": the eUICC verifies it over the same concatenation).
        let mut tbs = signed2_der.clone();
        write_tlv(&mut tbs, Tag(0x5F37), &ok.euicc_signature1);
        let sig2 = set
            .dppb_key
            .sign(&tbs)
            .map_err(|e| Failure::Internal(format!("DPpb signature: {e}")))?;
        let sig2_tlv = sig_tlv(&sig2);

        data.euicc = Some(EuiccBinding {
            eid: eid.to_owned(),
            curve: euicc.curve.name().to_owned(),
            public_key: hex::encode(&euicc.public_key),
            iccid: profile.iccid.clone(),
            cc_required,
            smdp_signature2_tlv: hex::encode(&sig2_tlv),
            profile_metadata: hex::encode(&metadata),
            offered_otpk: offered_otpk.as_ref().map(hex::encode),
            // The transition below expects the version read and bumps it by one: that is
            // the order generation of this session.
            order_version: Some(profile.version.saturating_add(1)),
            svn: Some(hex::encode(
                ok.euicc_signed1.value().euicc_info2.svn.as_bytes(),
            )),
            rpm_support: ok
                .euicc_signed1
                .value()
                .euicc_info2
                .rsp_capability
                .is_set(rsp_asn1::common::rsp_capability::RPM_SUPPORT),
        });
        let ttl = now_ms().saturating_add(ms(self.config.limits.session_ttl));
        let session_update = SessionUpdate {
            state: advance(&claimed.state, Phase::Authenticated)?.to_owned(),
            data: data.to_bytes(),
            eid: Patch::Set(eid.to_owned()),
            iccid: Patch::Set(profile.iccid.clone()),
            expires_at: Some(ttl),
        };
        // Section 3.1.3 step 4: the eligibility check passed (point 1, no state change),
        // queued with the counted attempt and the session's move, in ONE commit.
        let event = event.with_outbox(outbox::hdpi(
            &profile,
            Some(eid),
            point::ELIGIBILITY,
            FunctionExecutionStatus::success(),
            None,
        ));
        match self
            .store
            .transition_with_session(
                &profile.iccid,
                &expect,
                &update,
                &event,
                (&claimed.transaction_id, claimed.version, &session_update),
                now_ms(),
            )
            .await
        {
            Ok((p, _)) if p.version == profile.version.saturating_add(1) => {}
            Ok(_) => {
                return Err(Failure::Internal(
                    "the order's version did not advance by one".into(),
                ));
            }
            // A conflict on the profile carries a profile state: another call moved the
            // order (when that call was this session's own concurrent twin, the session
            // moved too, and the answer is the twin's: the session is no longer valid).
            Err(StoreError::Conflict { state, .. }) if state.parse::<ProfileState>().is_ok() => {
                return Err(
                    match self
                        .store
                        .get_session(&claimed.transaction_id, now_ms())
                        .await?
                    {
                        Some(s) if s.version == claimed.version => Failure::NotReleased,
                        _ => Failure::UnknownTransaction(
                            "another call for this transaction is in progress or completed",
                        ),
                    },
                );
            }
            Err(StoreError::Conflict { .. }) => {
                return Err(Failure::UnknownTransaction(
                    "another call for this transaction is in progress or completed",
                ));
            }
            Err(StoreError::NotFound | StoreError::Expired) => {
                return Err(Failure::UnknownTransaction("session expired"));
            }
            Err(e) => return Err(e.into()),
        }
        record_in_span("iccid", &profile.iccid);
        tracing::info!(transaction_id = %claimed.transaction_id, iccid = %profile.iccid, cc_required, "eUICC authenticated");
        Ok(AuthenticateClientResponse {
            transaction_id: TransactionId::from_bytes(&claimed_tid(claimed)?)
                .map_err(|_| Failure::Internal("transaction id".into()))?,
            profile_metadata: metadata,
            smdp_signed2: signed2_der,
            smdp_signature2: sig2_tlv,
            smdp_certificate: set.dppb_cert.clone(),
        })
    }

    /// The dynamic eligibility check (DEC) of SGP.22 Annex F on the signed euiccInfo2
    /// (section 3.1.3 step 3: the checks "SHALL include the check if the eUICC can install
    /// one more Profile"):
    ///
    /// - `rspCapability.additionalProfile` (bit 0; section 5.7.8: "set to '1' to indicate
    ///   that at least one more Profile can be installed") must be set, whatever the number of
    ///   profiles already installed: a clear bit means this eUICC cannot take one more
    ///   profile, reported as `8.1/4.8` (Table 43 "eUICC does not have sufficient space for
    ///   this Profile");
    /// - when `extCardResource` (ETSI TS 102 226 TLVs) carries the free non-volatile memory
    ///   (tag `82`), it must be at least the size of the profile package (the UPP size is the
    ///   estimate: the installed profile is not smaller than its package), else `8.1/4.8`; an
    ///   `extCardResource` that cannot be parsed is not used for this check;
    /// - a Test Profile (profileClass test(0)) needs `rspCapability.testProfileSupport`
    ///   (bit 3), else `8.2.5/4.3` (no eligible profile);
    /// - the UPP's ProfileHeader version (major, minor) must not be newer than the eUICC's
    ///   `profileVersion`, else `8.2.5/4.3`.
    ///
    /// - a profile whose type sets Profile Policy Rules is refused (`8.2.5/4.3`) when the
    ///   eUICC lists one of them in `forbiddenProfilePolicyRules` (section 5.7.8: "the SM-DP+
    ///   SHALL not deliver a Profile containing a PPR 'forbidden' by the eUICC").
    ///
    /// The static check (SEC) is the operator's (Annex F).
    fn check_eligibility(
        &self,
        (upp_len, upp_version): (usize, Option<(u8, u8)>),
        metadata: Option<&Meta>,
        info2: &rsp_asn1::euicc_info::EuiccInfo2,
    ) -> Result<()> {
        if !info2.rsp_capability.is_set(RSP_CAP_ADDITIONAL_PROFILE) {
            return Err(Failure::InsufficientMemory(
                "the eUICC cannot install an additional profile",
            ));
        }
        if let Some(free) = free_nvm(&info2.ext_card_resource)
            && free < u64::try_from(upp_len).unwrap_or(u64::MAX)
        {
            return Err(Failure::InsufficientMemory(
                "free non-volatile memory is smaller than the profile package",
            ));
        }
        let class = metadata.and_then(|m| m.class);
        if class == Some(PROFILE_CLASS_TEST)
            && !info2.rsp_capability.is_set(RSP_CAP_TEST_PROFILE_SUPPORT)
        {
            return Err(Failure::NoEligibleProfile(
                "test profile for an eUICC without testProfileSupport",
            ));
        }
        // Section 5.7.8 (forbiddenProfilePolicyRules).
        if let (Some(pprs), Some(forbidden)) = (
            metadata.and_then(|m| m.ppr_bits.as_ref()),
            info2.forbidden_profile_policy_rules.as_ref(),
        ) && pprs.iter().any(|b| forbidden.is_set(*b))
        {
            return Err(Failure::NoEligibleProfile(
                "the profile carries a policy rule the eUICC forbids",
            ));
        }
        if let Some((major, minor)) = upp_version {
            let v = info2.profile_version.as_bytes();
            if let [em, en, ..] = v
                && (major, minor) > (*em, *en)
            {
                return Err(Failure::NoEligibleProfile(
                    "profile package version newer than the eUICC supports",
                ));
            }
        }
        Ok(())
    }

    /// Finds the pending order (section 5.6.3):
    /// - with a MatchingID: the order with that MatchingID; if it is bound to an EID, that
    ///   EID must be this eUICC's (`8.1.1/3.8`); none is `8.2.6/3.8`;
    /// - without: a downloadable order bound to this EID (Default SM-DP+ / SM-DS flows); none
    ///   is a verification failure, reported as `8.2.6/3.8` (the empty MatchingID is refused).
    async fn find_order(&self, eid: &str, matching_id: Option<&str>) -> Result<Profile> {
        match matching_id {
            Some(mid) => {
                // MatchingIDs are upper case (section 4.1.1); accept an LPA that lowered it.
                let p = match self.store.find_profile_by_matching_id(mid).await? {
                    Some(p) => Some(p),
                    None => {
                        self.store
                            .find_profile_by_matching_id(&mid.to_ascii_uppercase())
                            .await?
                    }
                };
                let p = p.ok_or(Failure::MatchingIdRefused)?;
                if p.eid.as_deref().is_some_and(|bound| bound != eid) {
                    return Err(Failure::EidMismatch);
                }
                Ok(p)
            }
            None => {
                for st in DOWNLOADABLE {
                    let list = self
                        .store
                        .list_profiles(&ProfileFilter {
                            eid: Some(eid.to_owned()),
                            state: Some(st),
                            limit: Some(1),
                            ..ProfileFilter::default()
                        })
                        .await?;
                    if let Some(p) = list.into_iter().next() {
                        return Ok(p);
                    }
                }
                Err(Failure::MatchingIdRefused)
            }
        }
    }

    /// The metadata of a profile: its own (stored with the order), else its type's.
    async fn stored_metadata(&self, p: &Profile) -> Result<Option<Meta>> {
        if let Some(m) = self.sidecar.get_metadata(&p.iccid).await? {
            return Ok(Some(Meta {
                spn: m.service_provider_name,
                name: m.profile_name,
                class: m.profile_class,
                notify_bits: DEFAULT_NOTIFY_BITS.to_vec(),
                ..Meta::default()
            }));
        }
        let (Some(f), Some(name)) = (&self.factory, p.profile_type.as_deref()) else {
            return Ok(None);
        };
        let t = match f.profile_type(name).await {
            Ok(t) => t,
            Err(crate::factory::FactoryError::UnknownType(_)) => return Ok(None),
            Err(e) => return Err(Failure::Internal(format!("profile type: {e}"))),
        };
        let r = &t.row;
        let ppr_bits = r.ppr_bits.map(mask_bits).filter(|b| !b.is_empty());
        let owner = match (&ppr_bits, self.store.get_sealed_secrets(&p.iccid).await?) {
            (Some(_), Some(sealed)) => {
                let secrets = f
                    .open_secrets(&sealed)
                    .await
                    .map_err(|e| Failure::Internal(format!("subscriber secrets: {e}")))?;
                let plmn = sealed
                    .imsi
                    .get(..3 + usize::from(secrets.mnc_len))
                    .unwrap_or_default();
                Some(rsp_asn1::common::OperatorId {
                    mcc_mnc: saip::personalize::plmn_octets(plmn),
                    gid1: None,
                    gid2: None,
                })
            }
            _ => None,
        };
        Ok(Some(Meta {
            spn: r.service_provider_name.clone(),
            name: r.profile_name.clone(),
            class: r.profile_class,
            icon: match (r.icon_type, &r.icon) {
                (Some(t), Some(i)) => u64::try_from(t).ok().map(|t| (t, i.clone())),
                _ => None,
            },
            notify_bits: mask_bits(r.notification_events),
            ppr_bits,
            owner,
        }))
    }

    /// The StoreMetadataRequest (section 5.5.3) of a profile, from its stored metadata.
    fn profile_metadata(&self, p: &Profile, m: Option<Meta>) -> Result<Vec<u8>> {
        let iccid = Iccid::from_digits(&p.iccid)
            .ok_or_else(|| Failure::Internal("stored ICCID is not 19/20 digits".into()))?;
        let m = m.unwrap_or_else(|| Meta {
            name: format!("Profile {}", p.iccid),
            notify_bits: DEFAULT_NOTIFY_BITS.to_vec(),
            ..Meta::default()
        });
        let (icon_type, icon) = match m.icon {
            Some((t, i)) => (Some(t), Some(i)),
            None => (None, None),
        };
        // notificationAddress is an "FQDN" in section 5.5.3; our address keeps its port when
        // it is not 443 (a lab server on 127.0.0.1:8443), or the notifications could not
        // reach us (the LPA sends them to this address, section 3.5).
        let host = self.config.smdp_address.clone();
        let smr = StoreMetadataRequest {
            iccid: iccid.0,
            service_provider_name: m.spn,
            profile_name: m.name,
            icon_type,
            icon,
            profile_class: m.class.and_then(|c| u64::try_from(c).ok()),
            // The operations whose notifications come back to us (section 5.5.3, 3.5):
            // installation and deletion unless the profile type says otherwise.
            notification_configuration_info: (!m.notify_bits.is_empty()).then(|| {
                vec![NotificationConfigurationInformation {
                    profile_management_operation: rsp_asn1::BitString::from_bits(&m.notify_bits),
                    notification_address: host,
                }]
            }),
            profile_owner: m.owner,
            profile_policy_rules: m.ppr_bits,
            extensions: Vec::new(),
        };
        Ok(smr.encode())
    }

    // ------------------------------------------------------ GetBoundProfilePackage

    /// ES9+.GetBoundProfilePackage (SGP.22 section 5.6.2, 3.1.3.2 steps 6-11).
    pub async fn do_get_bpp(
        &self,
        req: GetBoundProfilePackageRequest,
    ) -> Result<GetBoundProfilePackageResponse> {
        let (session, mut data) = self.load_session(&req.transaction_id).await?;
        let binding = data.euicc.clone().ok_or(Failure::UnknownTransaction(
            "not awaiting GetBoundProfilePackage",
        ))?;
        let resp = PrepareDownloadResponse::decode(&req.prepare_download_response)
            .map_err(|e| Failure::Malformed(format!("prepareDownloadResponse ({e})")))?;
        let ok = match resp {
            PrepareDownloadResponse::Ok(ok) => ok,
            PrepareDownloadResponse::Error(e) => {
                return Err(Failure::EuiccReportedError(format!(
                    "downloadErrorCode {}",
                    e.download_error_code.to_i64()
                )));
            }
        };
        let signed2 = ok.euicc_signed2.value();
        if signed2.transaction_id.as_bytes() != req.transaction_id.as_bytes() {
            return Err(Failure::UnknownTransaction(
                "euiccSigned2.transactionId differs",
            ));
        }
        // euiccSignature2 over euiccSigned2 || smdpSignature2 (with tag), section 5.7.5.
        let mut tbs = ok.euicc_signed2.raw().to_vec();
        tbs.extend_from_slice(&unhex(&binding.smdp_signature2_tlv)?);
        verify_raw(
            curve_by_name(&binding.curve)?,
            &unhex(&binding.public_key)?,
            &tbs,
            &ok.euicc_signature2,
        )
        .map_err(|_| Failure::EuiccVerification("euiccSignature2 does not verify"))?;

        match session.state.as_str() {
            state::AUTHENTICATED => {}
            // A lost response: the same request again gets the same BPP.
            state::DELIVERED
                if data.delivered_otpk.as_deref()
                    == Some(hex::encode(&signed2.euicc_otpk).as_str()) =>
            {
                if let Some(c) = self.sidecar.get_bpp(&binding.iccid).await?
                    && c.transaction_id == session.transaction_id
                    && c.euicc_otpk == signed2.euicc_otpk
                {
                    return Ok(GetBoundProfilePackageResponse {
                        transaction_id: req.transaction_id,
                        bound_profile_package: c.bpp,
                    });
                }
                return Err(Failure::UnknownTransaction("BPP already delivered"));
            }
            _ => {
                return Err(Failure::UnknownTransaction(
                    "not awaiting GetBoundProfilePackage",
                ));
            }
        }
        // No claim: the delivery (order Downloaded, session delivered, the BPP cached, the
        // outbox row) commits at the end, conditional on the session version read above and
        // on the order's generation, so of two concurrent calls one delivers.
        let claimed = session;
        match self
            .bind_and_deliver(
                &claimed,
                &mut data,
                &binding,
                &signed2.euicc_otpk,
                signed2.hash_cc.as_ref().map(|h| h.as_bytes().to_vec()),
            )
            .await
        {
            Ok(bpp) => Ok(GetBoundProfilePackageResponse {
                transaction_id: req.transaction_id,
                bound_profile_package: bpp,
            }),
            Err(f) => {
                self.end_session(&claimed, &data).await;
                Err(f)
            }
        }
    }

    async fn bind_and_deliver(
        &self,
        claimed: &Session,
        data: &mut SessionData,
        binding: &EuiccBinding,
        euicc_otpk: &[u8],
        hash_cc: Option<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let tid = claimed_tid(claimed)?;
        let profile = self
            .store
            .get_profile(&binding.iccid)
            .await?
            .ok_or(Failure::NotReleased)?;
        if !DOWNLOADABLE.contains(&profile.state) {
            return Err(Failure::NotReleased);
        }
        if profile.expires_at.is_some_and(|e| e <= now_ms()) {
            return Err(Failure::OrderExpired);
        }
        // The order must still be the one this session authenticated for (same generation):
        // an order cancelled and re-issued, or touched by another session since, is not
        // this session's to download (`8.10.1/3.9`, the RSP session is no longer valid).
        let generation = binding.order_version.ok_or(Failure::UnknownTransaction(
            "session without an order generation",
        ))?;
        if profile.version != generation {
            return Err(Failure::UnknownTransaction(
                "the order changed since AuthenticateClient",
            ));
        }
        if profile.eid.as_deref().is_some_and(|e| e != binding.eid) {
            return Err(Failure::EidMismatch);
        }
        // Confirmation Code (section 4.7, 3.1.3.2 step 8).
        if let Some(h1) = &profile.cc_hash {
            let given = hash_cc.ok_or(Failure::CcMissing)?;
            let expected = expected_hash_cc(h1, &tid);
            if !bool::from(expected.ct_eq(given.as_slice())) {
                let v = match self
                    .store
                    .increment_counter(
                        &profile.iccid,
                        Counter::CcAttempts,
                        &Expect::states(&DOWNLOADABLE).and_version(generation),
                    )
                    .await
                {
                    Ok(v) => v,
                    Err(StoreError::Conflict { .. }) => {
                        return Err(Failure::UnknownTransaction(
                            "the order changed since AuthenticateClient",
                        ));
                    }
                    Err(e) => return Err(e.into()),
                };
                let limit = v.limit.unwrap_or(self.config.limits.cc_attempt_limit);
                tracing::info!(iccid = %profile.iccid, attempts = v.value, limit, "wrong confirmation code");
                if v.value > limit {
                    // Table 32c; point 2 "Confirmation Failure" (3.1.3.2 step 8).
                    let notify = outbox::hdpi_failed(
                        &profile,
                        Some(&binding.eid),
                        point::CONFIRMATION_FAILURE,
                        &status::CONFIRMATION_CODE_RETRIES_EXCEEDED,
                    );
                    self.profile_to_error(&profile, "confirmation code attempts exceeded", notify)
                        .await?;
                    return Err(Failure::CcAttemptsExceeded);
                }
                if self.config.limits.refusals_per_eid_per_minute > 0 {
                    self.eid_refusals.refused(&binding.eid);
                }
                return Err(Failure::CcRefused);
            }
        }
        let set = self.key_set(data)?;
        let eid = Eid::from_digits(&binding.eid)
            .ok_or_else(|| Failure::Internal("EID in session is not 32 digits".into()))?;
        let cached = self.sidecar.get_bpp(&profile.iccid).await?;
        // The BPP to cache for this transaction, written only once the transition below has
        // committed: a session of an older generation that builds a BPP and then loses the
        // compare-and-set must not replace the cache entry of the session that won (the PIR
        // is matched against the cached transactionId).
        let (bpp, to_cache) = match cached {
            // Re-use (section 3.1.3.2 step 10): same eUICC, same otPK.
            Some(c) if c.eid == binding.eid && c.euicc_otpk == euicc_otpk => {
                if c.transaction_id == claimed.transaction_id {
                    (c.bpp, None)
                } else {
                    let b = resign_iscr(&c.bpp, &tid, euicc_otpk, set)?;
                    tracing::info!(iccid = %profile.iccid, "BPP re-used with a new InitialiseSecureChannel signature");
                    let entry = CachedBpp {
                        transaction_id: claimed.transaction_id.clone(),
                        bpp: b.clone(),
                        ..c
                    };
                    (b, Some(entry))
                }
            }
            Some(c) if c.eid == binding.eid && !self.config.limits.rebind_on_new_otpk => {
                return Err(Failure::BppRebindRefused);
            }
            _ => {
                // Generated (or opened) now, wiped when this block ends: nothing
                // personalized is kept in the clear (the BPP is encrypted under session
                // keys that are dropped with the one-time key).
                let upp = self.profile_upp(&profile).await?;
                let upp = upp.as_slice();
                let metadata = unhex(&binding.profile_metadata)?;
                let configure_isdp = ConfigureIsdpRequest::default().encode();
                let params = BppParams {
                    dp_pb: set.dppb_key.as_ref(),
                    transaction_id: &tid,
                    euicc_otpk,
                    eid: &eid.0,
                    host_id: HOST_ID,
                    configure_isdp: &configure_isdp,
                    store_metadata: &metadata,
                };
                // A fresh otSK.DP.ECKA is generated inside and dropped (zeroized) when the
                // BPP is built (section 3.1.3.2 step 11); the profile is encrypted under the
                // session keys.
                let built = build_bpp(&params, ProfileProtection::SessionKeys { upp }, None)
                    .map_err(|e| Failure::Internal(format!("BPP build: {e}")))?;
                let entry = CachedBpp {
                    eid: binding.eid.clone(),
                    euicc_otpk: euicc_otpk.to_vec(),
                    transaction_id: claimed.transaction_id.clone(),
                    bpp: built.der.clone(),
                };
                (built.der, Some(entry))
            }
        };
        data.delivered_otpk = Some(hex::encode(euicc_otpk));
        // The transition below expects version `generation` and bumps it by one.
        data.delivered_order_version = Some(generation.saturating_add(1));
        let until = now_ms().saturating_add(ms(self.config.limits.pir_wait));
        let session_update = SessionUpdate {
            state: advance(&claimed.state, Phase::Delivered)?.to_owned(),
            data: data.to_bytes(),
            eid: Patch::Keep,
            iccid: Patch::Keep,
            expires_at: Some(until),
        };
        // The order becomes Downloaded, linked to this EID (section 3.1.3.2 step 9, after
        // the Confirmation Code check), and the session Delivered, in one transaction; only
        // while the order is still in this session's generation and not linked to another
        // EID.
        let update = ProfileUpdate {
            eid: Patch::Set(binding.eid.clone()),
            ..ProfileUpdate::to_state(ProfileState::Downloaded)
        };
        let writes = smdpp_store::StepWrites {
            put_bpp: to_cache.as_ref(),
            ..Default::default()
        };
        match self
            .store
            .transition_with_session_and(
                &profile.iccid,
                &Expect::states(&DOWNLOADABLE)
                    .and_version(generation)
                    .and_eid_unset_or(binding.eid.clone()),
                &update,
                // Point 3 "BPP download" (3.1.3.2 step 10), committed with the transition.
                &EventRecord::by(ACTOR)
                    .with_cause("bpp delivered")
                    .with_outbox(outbox::hdpi(
                        &profile,
                        Some(&binding.eid),
                        point::BPP_DOWNLOAD,
                        FunctionExecutionStatus::success(),
                        None,
                    )),
                (&claimed.transaction_id, claimed.version, &session_update),
                &writes,
                now_ms(),
            )
            .await
        {
            Ok(_) => {}
            // A conflict on the profile carries a profile state; one on the session a
            // session state (the two sets of names are disjoint).
            Err(StoreError::Conflict { state, .. }) if state.parse::<ProfileState>().is_ok() => {
                return Err(
                    if state
                        .parse::<ProfileState>()
                        .is_ok_and(|st| DOWNLOADABLE.contains(&st))
                    {
                        // Still downloadable: another generation of the order.
                        Failure::UnknownTransaction("the order changed since AuthenticateClient")
                    } else {
                        Failure::NotReleased
                    },
                );
            }
            Err(StoreError::Conflict { .. }) => {
                return Err(Failure::UnknownTransaction(
                    "another call for this transaction is in progress or completed",
                ));
            }
            Err(StoreError::Expired) => return Err(Failure::UnknownTransaction("session expired")),
            Err(e) => return Err(e.into()),
        }
        record_in_span("iccid", &profile.iccid);
        tracing::info!(transaction_id = %claimed.transaction_id, iccid = %profile.iccid, "BPP delivered");
        Ok(bpp)
    }

    // ---------------------------------------------------------- HandleNotification

    /// ES9+.HandleNotification (SGP.22 section 5.6.4, 3.1.3.3, 3.5). Always acknowledged for
    /// well-formed input; what cannot be verified is logged and not recorded.
    pub async fn do_notification(&self, req: HandleNotificationRequest) -> Result<()> {
        let n = PendingNotification::decode(&req.pending_notification)
            .map_err(|e| Failure::Malformed(format!("pendingNotification ({e})")))?;
        match n {
            PendingNotification::ProfileInstallationResult(pir) => {
                self.handle_pir(&pir, &req.pending_notification).await
            }
            PendingNotification::OtherSignedNotification(o) => {
                self.handle_other_notification(&o, &req.pending_notification)
                    .await
            }
            PendingNotification::LoadRpmPackageResultSigned(r) => {
                self.handle_rpm_result(&r, &req.pending_notification).await
            }
            _ => {
                tracing::info!("notification of a kind this server does not handle; ignored");
                Ok(())
            }
        }
    }

    /// A ProfileInstallationResult (sections 3.1.3.3, 5.6.4).
    ///
    /// A success result signed by the eUICC of the session, for the session's ICCID, installs
    /// the order while it is Downloaded for that EID, whichever session of the order
    /// delivered the BPP the card installed: when the same Activation Code was run twice
    /// (lpac sends no result until `notification process`), the second session's BPP is
    /// refused by the card (errorReason 9, ICCID already exists) and the first session's
    /// success is the truth. A failure result only moves the order from the session that
    /// delivered the current BPP, in its generation; and errorReason 9 from the order's own
    /// EID does not make it Error: the profile is on that eUICC, its own result follows.
    async fn handle_pir(
        &self,
        pir: &rsp_asn1::download::ProfileInstallationResult,
        raw: &[u8],
    ) -> Result<()> {
        let d = &pir.profile_installation_result_data;
        let tid = hex::encode_upper(d.value().transaction_id.as_bytes());
        let Some(s) = self.store.get_session(&tid, now_ms()).await? else {
            tracing::info!(transaction_id = %tid, "PIR for an unknown transaction ignored");
            return Ok(());
        };
        let data = SessionData::from_bytes(&s.data)
            .map_err(|_| Failure::Internal("corrupt session blob".into()))?;
        let Some(b) = data.euicc.clone() else {
            tracing::info!(transaction_id = %tid, "PIR before authentication ignored");
            return Ok(());
        };
        if verify_raw(
            curve_by_name(&b.curve)?,
            &unhex(&b.public_key)?,
            d.raw(),
            &pir.euicc_sign_pir,
        )
        .is_err()
        {
            tracing::warn!(transaction_id = %tid, "PIR signature does not verify; ignored");
            return Ok(());
        }
        let meta = &d.value().notification_metadata;
        // The PIR must be about this session's order (section 5.6.4: the SM-DP+ identifies
        // the Profile from the transactionId; a PIR naming another ICCID or another SM-DP+
        // is not this session's).
        if meta.iccid.is_some_and(|i| i.to_digits() != b.iccid) {
            tracing::warn!(transaction_id = %tid, "PIR for another ICCID than the session's; ignored");
            return Ok(());
        }
        if let Some(oid) = &d.value().smdp_oid
            && oid.to_dotted() != self.key_set(&data)?.smdp_oid
        {
            tracing::warn!(transaction_id = %tid, "PIR for another SM-DP+ OID; ignored");
            return Ok(());
        }
        // The notification is recorded (replay detection on EID and seqNumber) in the
        // transaction of the transition below; a PIR that changes nothing records it alone.
        let notification = NewNotification {
            eid: b.eid.clone(),
            seq_number: meta.seq_number,
            iccid: Some(b.iccid.clone()),
            event: "install".into(),
            raw: raw.to_vec(),
            received_at: now_ms(),
        };
        let record_alone = || self.store.record_notification(&notification);
        record_in_span("eid", &b.eid);
        record_in_span("iccid", &b.iccid);
        let success = matches!(d.value().final_result, FinalResult::Success(_));
        let (to, cause) = match &d.value().final_result {
            FinalResult::Success(_) => (ProfileState::Installed, "installed".to_owned()),
            FinalResult::Error(e) => (
                ProfileState::Error,
                format!(
                    "installation failed: bppCommandId={} errorReason={}",
                    e.bpp_command_id.to_i64(),
                    e.error_reason.to_i64()
                ),
            ),
        };
        let before = self.store.get_profile(&b.iccid).await?;
        if let FinalResult::Error(e) = &d.value().final_result
            && e.error_reason
                == rsp_asn1::download::ErrorReason::InstallFailedDueToIccidAlreadyExistsOnEuicc
            && before
                .as_ref()
                .is_some_and(|p| p.eid.as_deref() == Some(b.eid.as_str()))
        {
            tracing::info!(
                transaction_id = %tid,
                iccid = %b.iccid,
                "PIR: the profile is already on the order's own eUICC (errorReason 9); order not changed"
            );
            let _ = record_alone().await?;
            if s.state != state::ENDED {
                let _ = self
                    .cas_session(&s, Phase::Ended, &data, Patch::Keep, Patch::Keep, None)
                    .await;
            }
            return Ok(());
        }
        // A failure result moves the order only from the session that delivered the current
        // BPP and still waits for its result (a late PIR of an older or ended session must
        // not). A duplicate (EID, seqNumber) whose session still waits is the retry of a PIR
        // whose recording committed but whose transition did not: apply it (the transition is
        // idempotent: it expects Downloaded in this generation).
        let mut expect = Expect::state(ProfileState::Downloaded).and_eid_unset_or(b.eid.clone());
        if !success {
            if s.state != state::DELIVERED {
                let outcome = record_alone().await?;
                tracing::info!(
                    transaction_id = %tid,
                    state = %s.state,
                    duplicate = (outcome == RecordOutcome::Duplicate),
                    "PIR for a session not awaiting one; order not changed"
                );
                return Ok(());
            }
            let Some(generation) = data.delivered_order_version else {
                let _ = record_alone().await?;
                tracing::warn!(transaction_id = %tid, "PIR for a session without a delivered order generation; ignored");
                return Ok(());
            };
            match self.sidecar.get_bpp(&b.iccid).await? {
                Some(c) if c.transaction_id == s.transaction_id && c.eid == b.eid => {}
                _ => {
                    let _ = record_alone().await?;
                    tracing::warn!(transaction_id = %tid, "PIR of a session that is not the one that delivered the current BPP; ignored");
                    return Ok(());
                }
            }
            expect = expect.and_version(generation);
        } else if before
            .as_ref()
            .is_none_or(|p| p.eid.as_deref() != Some(b.eid.as_str()))
        {
            let _ = record_alone().await?;
            tracing::warn!(transaction_id = %tid, "successful PIR from an eUICC the order is not bound to; ignored");
            return Ok(());
        }
        let mut update = ProfileUpdate::to_state(to);
        if to == ProfileState::Error {
            update.error_cause = Patch::Set(cause.clone());
        }
        // Point 4 and the SM-DS event deletion (3.1.3.3 steps 9-10), committed with the
        // transition.
        let event = EventRecord::by(ACTOR)
            .with_cause(cause.clone())
            .with_detail(format!("eid={} seqNumber={}", b.eid, meta.seq_number))
            .with_outbox(before.iter().flat_map(|p| {
                outbox::hdpi_pir(p, &b.eid, &d.value().final_result, &cause)
                    .into_iter()
                    .chain(outbox::es12_delete(p))
            }));
        let session_update = SessionUpdate {
            state: state::ENDED.to_owned(),
            data: data.to_bytes(),
            eid: Patch::Keep,
            iccid: Patch::Keep,
            expires_at: None,
        };
        // What this eUICC announced, for the RPM orders that may follow.
        let caps = smdpp_store::EuiccCapabilities {
            eid: b.eid.clone(),
            svn: b.svn.clone().unwrap_or_else(|| data.svn.clone()),
            rpm_support: b.rpm_support,
            updated_at: now_ms(),
        };
        // The profile transition, the end of the session, the notification, the dropped
        // BPP cache entry and (after a success) the eUICC's capabilities in ONE transaction
        // (a session that already ended, e.g. superseded and cancelled, is not touched:
        // then the transition and the rest commit separately).
        let result = if s.state == state::ENDED {
            match self
                .store
                .transition(&b.iccid, &expect, &update, &event)
                .await
            {
                Ok(_) => {
                    let _ = record_alone().await?;
                    self.sidecar.delete_bpp(&b.iccid).await?;
                    if success && let Err(e) = self.store.put_euicc_capabilities(&caps).await {
                        tracing::warn!(error = %e, "eUICC capabilities not recorded");
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            }
        } else {
            advance(&s.state, Phase::Ended)?;
            let writes = smdpp_store::StepWrites {
                notification: Some(&notification),
                delete_bpp: true,
                capabilities: success.then_some(&caps),
                ..Default::default()
            };
            self.store
                .transition_with_session_and(
                    &b.iccid,
                    &expect,
                    &update,
                    &event,
                    (&s.transaction_id, s.version, &session_update),
                    &writes,
                    now_ms(),
                )
                .await
                .map(|_| ())
        };
        match result {
            Ok(()) => {}
            // A conflict on the profile carries a profile state: the order is no longer the
            // one this session delivered; end the session only.
            Err(StoreError::Conflict { state, .. }) if state.parse::<ProfileState>().is_ok() => {
                let _ = record_alone().await?;
                tracing::warn!(iccid = %b.iccid, %state, "PIR for an order not Downloaded (in this session's generation); order not changed");
                if s.state != state::ENDED {
                    let _ = self
                        .cas_session(&s, Phase::Ended, &data, Patch::Keep, Patch::Keep, None)
                        .await;
                }
                return Ok(());
            }
            // The session moved on (a concurrent PIR or CancelSession handled it).
            Err(StoreError::Conflict { .. } | StoreError::NotFound | StoreError::Expired) => {
                let _ = record_alone().await?;
                tracing::info!(transaction_id = %tid, "PIR raced with another call of the session; order not changed");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        smdpp_server::metrics::global().download(if success { "success" } else { "failure" });
        tracing::info!(iccid = %b.iccid, %cause, "profile installation result");
        Ok(())
    }

    /// The eUICC-signed result of an RPM package (SGP.22 v3 LoadRpmPackageResult, carried by
    /// HandleNotification; digest §5.5). It is bound to the transaction that delivered the
    /// package: the order is found by transactionId, the signature checked with the eUICC
    /// key recorded at delivery over the data element as received (and, for an `A0` element,
    /// once more over the same element tagged `30`), the smdpOid must be ours. The order ends
    /// executed (every command ok) or failed, once: a replayed result, or one for another
    /// transaction or with a forged signature, is acknowledged and changes nothing. The
    /// per-command outcome reaches the operator as HandleDownloadProgressInfo point 103.
    async fn handle_rpm_result(
        &self,
        r: &rsp_asn1::rpm::LoadRpmPackageResultSigned,
        raw: &[u8],
    ) -> Result<()> {
        use rsp_asn1::rpm::{ResultForm, RpmFinalResult};
        let tid = hex::encode_upper(r.data.transaction_id.as_bytes());
        let Some(order) = self.store.rpm_order_by_transaction(&tid).await? else {
            tracing::warn!(transaction_id = %tid, "RPM result for a transaction that delivered no RPM package; ignored");
            return Ok(());
        };
        let (Some(curve), Some(key)) = (&order.euicc_curve, &order.euicc_key) else {
            tracing::warn!(transaction_id = %tid, "RPM result for an order without an eUICC key; ignored");
            return Ok(());
        };
        let curve = curve_by_name(curve)?;
        let verified = verify_raw(curve, key, r.signed_bytes(), &r.euicc_sign_rpr).is_ok()
            || (r.form == ResultForm::Automatic
                && verify_raw(curve, key, &r.signed_bytes_as_sequence(), &r.euicc_sign_rpr)
                    .is_ok());
        if !verified {
            tracing::warn!(transaction_id = %tid, "RPM result signature does not verify; ignored");
            return Ok(());
        }
        let oid = r.data.smdp_oid.to_dotted();
        if !self.keys.sets.iter().any(|s| s.smdp_oid == oid) {
            tracing::warn!(transaction_id = %tid, %oid, "RPM result for another SM-DP+ OID; ignored");
            return Ok(());
        }
        let meta = &r.data.notification_metadata;
        let outcome = self
            .store
            .record_notification(&NewNotification {
                eid: order.eid.clone(),
                seq_number: meta.seq_number,
                iccid: Some(order.iccid.clone()),
                event: "rpmResult".into(),
                raw: raw.to_vec(),
                received_at: now_ms(),
            })
            .await?;
        let (ok, summary) = match &r.data.final_result {
            RpmFinalResult::ExecutionResults(results) => {
                let planned = order.commands.split(',').count();
                let all_ok = results.len() == planned && results.iter().all(|x| x.data.is_ok());
                let text = results
                    .iter()
                    .map(|x| {
                        let code = x.data.code();
                        format!(
                            "{}{}: {}",
                            x.data.name(),
                            x.iccid.map(|i| format!(" {i}")).unwrap_or_default(),
                            if x.data.is_ok() {
                                "ok".to_owned()
                            } else {
                                format!("error {code}")
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                let text = if results.len() < planned {
                    format!("{text}; {} not run", planned - results.len())
                } else {
                    text
                };
                (all_ok, text)
            }
            RpmFinalResult::ErrorCode(n) => (false, format!("package refused: error {n}")),
        };
        let profile = self.store.get_profile(&order.iccid).await?;
        let status = if ok {
            FunctionExecutionStatus::success()
        } else {
            FunctionExecutionStatus::failed(
                &smdpp_core::callbacks::CANCEL_UNDEFINED_REASON,
                Some(summary.clone()),
            )
        };
        let event = EventRecord::by(ACTOR)
            .with_cause(format!(
                "rpm {}: {}",
                if ok { "executed" } else { "failed" },
                order.commands
            ))
            .with_detail(format!(
                "matchingId={} eid={} seqNumber={} {summary}",
                order.id, order.eid, meta.seq_number
            ))
            .with_outbox(profile.iter().filter_map(|p| {
                outbox::hdpi(
                    p,
                    Some(&order.eid),
                    point::RPM_RESULT,
                    status.clone(),
                    Some(raw),
                )
            }));
        let finished = self
            .store
            .finish_rpm_order(&smdpp_store::RpmFinish {
                id: &order.id,
                from: &[smdpp_store::RpmOrderState::Delivered],
                transaction_id: Some(&tid),
                to: if ok {
                    smdpp_store::RpmOrderState::Executed
                } else {
                    smdpp_store::RpmOrderState::Failed
                },
                result: Some(raw),
                summary: Some(&summary),
                event: &event,
            })
            .await?;
        if finished.is_none() {
            tracing::info!(
                transaction_id = %tid,
                duplicate = (outcome == RecordOutcome::Duplicate),
                "RPM result for an order not awaiting one (replayed); ignored"
            );
            return Ok(());
        }
        if let Some(s) = self.store.get_session(&tid, now_ms()).await?
            && s.state == state::RPM_DELIVERED
            && let Ok(d) = SessionData::from_bytes(&s.data)
        {
            let _ = self
                .cas_session(&s, Phase::Ended, &d, Patch::Keep, Patch::Keep, None)
                .await;
        }
        tracing::info!(transaction_id = %tid, %summary, "RPM result");
        Ok(())
    }

    /// An enable, disable or delete notification (section 3.5; v3 adds the RPM variants,
    /// bits 4 to 6): verified against the eUICC's certificate chain, recorded once per
    /// (EID, seqNumber), and applied to the profile's state when it is newer than what was
    /// applied before ([`Store::apply_device_report`]). The move, its event and the
    /// HandleDownloadProgressInfo to the owning operator (points 100 to 102) commit together.
    async fn handle_other_notification(
        &self,
        o: &rsp_asn1::notification::OtherSignedNotification,
        raw: &[u8],
    ) -> Result<()> {
        let v = match validate_euicc_chain(
            &self.keys.trust,
            o.eum_certificate.as_der(),
            o.euicc_certificate.as_der(),
            OffsetDateTime::now_utc(),
        ) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "notification with an invalid certificate chain ignored");
                return Ok(());
            }
        };
        if let Err(e) = self.keys.revocation.check_euicc(&self.keys.trust, &v) {
            tracing::warn!(error = %e, "notification from a revoked certificate chain ignored");
            return Ok(());
        }
        if verify_raw(
            v.curve,
            &v.public_key,
            o.tbs_other_notification.raw(),
            &o.euicc_notification_signature,
        )
        .is_err()
        {
            tracing::warn!("notification signature does not verify; ignored");
            return Ok(());
        }
        let meta = o.tbs_other_notification.value();
        let Some(op) = DeviceOperation::of(&meta.profile_management_operation) else {
            tracing::info!("notification without an operation this server tracks; ignored");
            return Ok(());
        };
        let iccid = meta.iccid.map(|i| i.to_digits());
        let outcome = self
            .store
            .record_notification(&NewNotification {
                eid: v.eid.clone(),
                seq_number: meta.seq_number,
                iccid: iccid.clone(),
                event: op.name().to_owned(),
                raw: raw.to_vec(),
                received_at: now_ms(),
            })
            .await?;
        let Some(iccid) = iccid else {
            tracing::info!(
                event = op.name(),
                "notification without an ICCID; recorded only"
            );
            return Ok(());
        };
        let Some(profile) = self.store.get_profile(&iccid).await? else {
            tracing::info!(event = op.name(), %iccid, "notification for a profile this server does not hold; recorded only");
            return Ok(());
        };
        let on_delete = match &profile.profile_type {
            Some(t) => self
                .store
                .get_profile_type(t)
                .await?
                .map_or(smdpp_store::OnDelete::Retire, |t| t.on_delete),
            None => smdpp_store::OnDelete::Retire,
        };
        let (update, cause) = op.update(on_delete);
        let detail = format!("eid={} seqNumber={}", v.eid, meta.seq_number);
        let mut event = EventRecord::by(ACTOR)
            .with_cause(cause)
            .with_detail(detail)
            .with_outbox(outbox::hdpi(
                &profile,
                Some(&v.eid),
                op.point(),
                FunctionExecutionStatus::success(),
                Some(raw),
            ));
        if op == DeviceOperation::Delete {
            event = event.with_signal(smdpp_store::Signal::Deleted);
        }
        let report = smdpp_store::DeviceReport {
            iccid: &iccid,
            eid: &v.eid,
            seq_number: meta.seq_number,
            from: &ProfileState::ON_EUICC,
            update: &update,
            event: &event,
            forget_device: update.state == Some(ProfileState::Available),
        };
        match self.store.apply_device_report(&report).await? {
            smdpp_store::DeviceOutcome::Applied(p) => {
                tracing::info!(event = op.name(), iccid = %p.iccid, state = %p.state, "profile state from the eUICC");
            }
            other => {
                tracing::info!(
                    event = op.name(),
                    %iccid,
                    duplicate = (outcome == RecordOutcome::Duplicate),
                    outcome = ?other,
                    "notification recorded; profile state not changed"
                );
            }
        }
        Ok(())
    }

    // --------------------------------------------------------------- CancelSession

    /// CancelSession of a session that delivered an RPM package (digest §5.3, §9 #10):
    /// postponed(1) and timeout(2) put the order back to pending (the LPA asks again later);
    /// any other reason (endUserRejection 0, rpmDisabled 27, invalidRpmPackage 28,
    /// loadRpmPackageError 29, ...) cancels it and reports it to the operator (point 103,
    /// Failed with the reason).
    async fn cancel_rpm(
        &self,
        session: &Session,
        data: &SessionData,
        order_id: &str,
        reason: i64,
    ) -> Result<()> {
        let keep = reason == 1 || reason == 2;
        let cause = format!("rpm cancelled by the LPA: reason {reason}");
        let profile = match self.store.get_rpm_order(order_id).await? {
            Some(o) => self.store.get_profile(&o.iccid).await?,
            None => None,
        };
        let status = FunctionExecutionStatus::failed(
            &smdpp_core::callbacks::CANCEL_UNDEFINED_REASON,
            Some(cause.clone()),
        );
        let event =
            EventRecord::by(ACTOR)
                .with_cause(cause.clone())
                .with_outbox(profile.iter().filter(|_| !keep).filter_map(|p| {
                    outbox::hdpi(p, None, point::RPM_RESULT, status.clone(), None)
                }));
        let summary = format!("cancelled by the LPA (reason {reason})");
        self.store
            .finish_rpm_order(&smdpp_store::RpmFinish {
                id: order_id,
                from: &[smdpp_store::RpmOrderState::Delivered],
                transaction_id: Some(&session.transaction_id),
                to: if keep {
                    smdpp_store::RpmOrderState::Pending
                } else {
                    smdpp_store::RpmOrderState::Cancelled
                },
                result: None,
                summary: (!keep).then_some(summary.as_str()),
                event: &event,
            })
            .await?;
        self.cas_session(session, Phase::Ended, data, Patch::Keep, Patch::Keep, None)
            .await?;
        tracing::info!(transaction_id = %session.transaction_id, reason, "RPM session cancelled");
        Ok(())
    }

    /// ES9+.CancelSession (SGP.22 section 5.6.5, 3.1.3.1).
    ///
    /// postponed(1) and timeout(2) end the session and keep the order as it is (Released,
    /// or Downloaded); every other reason terminates the order (Error, with the reason as
    /// cause). A session that already ended, or that has no eUICC key yet (before
    /// AuthenticateClient), is refused with `8.10.1/3.9` and the order is not touched.
    pub async fn do_cancel(&self, req: CancelSessionRequest) -> Result<()> {
        let (session, data) = self.load_session(&req.transaction_id).await?;
        if session.state == state::ENDED {
            return Err(Failure::UnknownTransaction("session already ended"));
        }
        let Some(b) = data.euicc.clone() else {
            return Err(Failure::UnknownTransaction(
                "no authenticated eUICC in this session",
            ));
        };
        let resp = CancelSessionResponse::decode(&req.cancel_session_response)
            .map_err(|e| Failure::Malformed(format!("cancelSessionResponse ({e})")))?;
        let ok = match resp {
            CancelSessionResponse::Ok(ok) => ok,
            CancelSessionResponse::Error(e) => {
                return Err(Failure::EuiccReportedError(format!(
                    "cancelSessionResponseError {e:?}"
                )));
            }
        };
        verify_raw(
            curve_by_name(&b.curve)?,
            &unhex(&b.public_key)?,
            ok.euicc_cancel_session_signed.raw(),
            &ok.euicc_cancel_session_signature,
        )
        .map_err(|_| Failure::EuiccVerification("euiccCancelSessionSignature does not verify"))?;
        let signed = ok.euicc_cancel_session_signed.value();
        let set = self.key_set(&data)?;
        if signed.smdp_oid.to_dotted() != set.smdp_oid {
            return Err(Failure::WrongSmdpOid);
        }
        if signed.transaction_id.as_bytes() != req.transaction_id.as_bytes() {
            return Err(Failure::UnknownTransaction("signed transactionId differs"));
        }
        if matches!(
            session.state.as_str(),
            state::AUTHENTICATING | state::BINDING
        ) {
            return Err(Failure::UnknownTransaction(
                "another call for this transaction is in progress",
            ));
        }
        let reason = signed.reason;
        if session.state == state::RPM_DELIVERED
            && let Some(order_id) = data.rpm_order.clone()
        {
            return self
                .cancel_rpm(&session, &data, &order_id, reason.to_i64())
                .await;
        }
        if matches!(
            reason,
            CancelSessionReason::Postponed | CancelSessionReason::Timeout
        ) {
            self.cas_session(
                &session,
                Phase::Ended,
                &data,
                Patch::Keep,
                Patch::Keep,
                None,
            )
            .await?;
            tracing::info!(transaction_id = %session.transaction_id, ?reason, "session cancelled; order kept");
            return Ok(());
        }
        // The order generation this session may terminate: the one it authenticated for, or,
        // after delivery, the one it delivered (and only while the cached BPP is still this
        // session's). Anything else is an order this session no longer speaks for: the
        // session ends, the order is not touched, and the call is refused `8.10.1/3.9`.
        let generation = match session.state.as_str() {
            state::DELIVERED => match self.sidecar.get_bpp(&b.iccid).await? {
                Some(c) if c.transaction_id == session.transaction_id && c.eid == b.eid => {
                    data.delivered_order_version
                }
                _ => None,
            },
            _ => b.order_version,
        };
        let expect = match generation {
            Some(g) if session.state == state::DELIVERED => Expect::state(ProfileState::Downloaded)
                .and_version(g)
                .and_eid_unset_or(b.eid.clone()),
            Some(g) => Expect::states(&DOWNLOADABLE)
                .and_version(g)
                .and_eid_unset_or(b.eid.clone()),
            None => {
                self.cas_session(
                    &session,
                    Phase::Ended,
                    &data,
                    Patch::Keep,
                    Patch::Keep,
                    None,
                )
                .await?;
                return Err(Failure::UnknownTransaction(
                    "the session no longer holds the order",
                ));
            }
        };
        let cause = format!("cancelSession: {reason:?} ({})", reason.to_i64());
        // Section 5.6.5 steps 8-10: HandleDownloadProgressInfo Failed with the Table 32b code
        // and the SM-DS event deletion, committed with the transition.
        let cancel_rows = outbox::cancel_rows(
            self.store.get_profile(&b.iccid).await?.as_ref(),
            &b.eid,
            session.state == state::DELIVERED,
            reason.to_i64(),
        );
        let update = ProfileUpdate {
            error_cause: Patch::Set(cause.clone()),
            ..ProfileUpdate::to_state(ProfileState::Error)
        };
        let session_update = SessionUpdate {
            state: advance(&session.state, Phase::Ended)?.to_owned(),
            data: data.to_bytes(),
            eid: Patch::Keep,
            iccid: Patch::Keep,
            expires_at: None,
        };
        // The end of the session and the termination of the order in one transaction.
        match self
            .store
            .transition_with_session(
                &b.iccid,
                &expect,
                &update,
                &EventRecord::by(ACTOR)
                    .with_cause(cause.clone())
                    .with_outbox(cancel_rows),
                (&session.transaction_id, session.version, &session_update),
                now_ms(),
            )
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict { state, .. }) if state.parse::<ProfileState>().is_ok() => {
                self.cas_session(
                    &session,
                    Phase::Ended,
                    &data,
                    Patch::Keep,
                    Patch::Keep,
                    None,
                )
                .await?;
                return Err(Failure::UnknownTransaction(
                    "the order changed since this session; order not changed",
                ));
            }
            Err(StoreError::Conflict { .. }) => {
                return Err(Failure::UnknownTransaction(
                    "another call for this transaction is in progress or completed",
                ));
            }
            Err(StoreError::NotFound) => {
                // The profile is gone (or the session): end the session, nothing else.
                self.end_session(&session, &data).await;
            }
            Err(StoreError::Expired) => {
                return Err(Failure::UnknownTransaction("session expired"));
            }
            Err(e) => return Err(e.into()),
        }
        self.sidecar.delete_bpp(&b.iccid).await?;
        tracing::info!(iccid = %b.iccid, cause, "order terminated");
        Ok(())
    }
}

/// `RspCapability.additionalProfile` (section 5.7.8).
const RSP_CAP_ADDITIONAL_PROFILE: u32 = 0;
/// `RspCapability.testProfileSupport` (section 5.7.8).
const RSP_CAP_TEST_PROFILE_SUPPORT: u32 = 3;
/// `ProfileClass` test(0) (section 2.4a.1.1, StoreMetadataRequest).
const PROFILE_CLASS_TEST: i64 = 0;

/// The profile operation a notification reports (profileManagementOperation, SGP.22 section
/// 5.7.1 `NotificationEvent`; v3 adds the RPM variants 4 to 6, which move the state alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DeviceOperation {
    Enable,
    Disable,
    Delete,
}

impl DeviceOperation {
    /// The first operation bit set, if it is one this server tracks (install comes as a PIR).
    fn of(bits: &rsp_asn1::BitString) -> Option<DeviceOperation> {
        use rsp_asn1::common::notification_event as ne;
        if bits.is_set(ne::ENABLE) || bits.is_set(4) {
            Some(DeviceOperation::Enable)
        } else if bits.is_set(ne::DISABLE) || bits.is_set(5) {
            Some(DeviceOperation::Disable)
        } else if bits.is_set(ne::DELETE) || bits.is_set(6) {
            Some(DeviceOperation::Delete)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            DeviceOperation::Enable => "enable",
            DeviceOperation::Disable => "disable",
            DeviceOperation::Delete => "delete",
        }
    }

    /// The custom notification point of HandleDownloadProgressInfo (Table 32a note 1).
    fn point(self) -> u32 {
        match self {
            DeviceOperation::Enable => point::ENABLED,
            DeviceOperation::Disable => point::DISABLED,
            DeviceOperation::Delete => point::DELETED,
        }
    }

    /// The profile change and the event cause. A delete retires the profile (Unavailable)
    /// or returns it to Available with every trace of its last order cleared, as its type
    /// says.
    fn update(self, on_delete: smdpp_store::OnDelete) -> (ProfileUpdate, &'static str) {
        match self {
            DeviceOperation::Enable => (ProfileUpdate::to_state(ProfileState::Enabled), "enabled"),
            DeviceOperation::Disable => {
                (ProfileUpdate::to_state(ProfileState::Disabled), "disabled")
            }
            DeviceOperation::Delete => match on_delete {
                smdpp_store::OnDelete::Retire => (
                    ProfileUpdate::to_state(ProfileState::Unavailable),
                    "deleted; retired",
                ),
                smdpp_store::OnDelete::Reuse => (
                    ProfileUpdate {
                        state: Some(ProfileState::Available),
                        eid: Patch::Clear,
                        matching_id: Patch::Clear,
                        cc_hash: Patch::Clear,
                        cc_attempts: smdpp_store::CounterOp::Set(0),
                        download_attempts: smdpp_store::CounterOp::Set(0),
                        error_cause: Patch::Clear,
                        smds_address: Patch::Clear,
                        expires_at: Patch::Clear,
                        ..ProfileUpdate::default()
                    },
                    "deleted; reused",
                ),
            },
        }
    }
}

/// The free non-volatile memory (tag `82`, ETSI TS 102 226 Extended Card Resource
/// Information) of an `extCardResource`, in bytes; `None` when absent or malformed.
pub fn free_nvm(ext_card_resource: &[u8]) -> Option<u64> {
    let mut rest = ext_card_resource;
    while let [tag, len, tail @ ..] = rest {
        let len = usize::from(*len);
        // Only short-form lengths occur here; anything else is malformed.
        if len > 0x7F || tail.len() < len {
            return None;
        }
        let (value, next) = tail.split_at(len);
        if *tag == 0x82 {
            if value.is_empty() || value.len() > 8 {
                return None;
            }
            return Some(value.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)));
        }
        rest = next;
    }
    None
}

/// The `(major-version, minor-version)` of the ProfileHeader of a UPP, if readable.
fn upp_version(upp: &[u8]) -> Option<(u8, u8)> {
    crate::upp::version_from_upp(upp)
}

/// The transactionId bytes of a session row.
fn claimed_tid(s: &Session) -> Result<Vec<u8>> {
    hex::decode(&s.transaction_id).map_err(|_| Failure::Internal("stored transactionId".into()))
}

/// Re-signs the InitialiseSecureChannelRequest of a cached BPP for a new transaction: the
/// session keys depend only on the key agreement, the hostId and the EID (Annex G), not on
/// the transactionId, so every segment stays valid; only `transactionId` and `smdpSign`
/// (section 5.5.1) change.
fn resign_iscr(bpp: &[u8], tid: &[u8], euicc_otpk: &[u8], set: &KeySet) -> Result<Vec<u8>> {
    let mut decoded = BoundProfilePackage::decode(bpp)
        .map_err(|e| Failure::Internal(format!("cached BPP: {e}")))?;
    decoded.initialise_secure_channel.transaction_id = tid;
    decoded.initialise_secure_channel.smdp_sign = &[];
    let sig = set
        .dppb_key
        .sign(&smdp_sign_data(
            &decoded.initialise_secure_channel,
            euicc_otpk,
        ))
        .map_err(|e| Failure::Internal(format!("DPpb signature: {e}")))?;
    decoded.initialise_secure_channel.smdp_sign = &sig;
    Ok(decoded.encode())
}

/// One span per ES9+ call of a session (SGP.22 3.1.3), carrying the session's transactionId
/// and, once known, the EID and ICCID; every log line of the call has them. No secret and no
/// MatchingID is ever recorded in it.
fn es9_span(function: &'static str, transaction_id: Option<&TransactionId>) -> tracing::Span {
    let span = tracing::info_span!(
        "es9",
        function,
        transaction_id = tracing::field::Empty,
        eid = tracing::field::Empty,
        iccid = tracing::field::Empty,
    );
    if let Some(t) = transaction_id {
        span.record("transaction_id", tracing::field::display(t));
    }
    span
}

/// Adds a fact learned during the call to its span (see [`es9_span`]).
fn record_in_span(field: &'static str, value: &str) {
    tracing::Span::current().record(field, value);
}

impl Es9Service for Es9Engine {
    async fn initiate_authentication(
        &self,
        request: InitiateAuthenticationRequest,
    ) -> std::result::Result<InitiateAuthenticationResponse, Es9Error> {
        self.do_initiate(request)
            .instrument(es9_span("initiateAuthentication", None))
            .await
            .map_err(report)
    }

    async fn authenticate_client(
        &self,
        request: AuthenticateClientRequest,
    ) -> std::result::Result<AuthenticateClientAnswer, Es9Error> {
        let span = es9_span("authenticateClient", Some(&request.transaction_id));
        self.do_authenticate(request)
            .instrument(span)
            .await
            .map_err(report)
    }

    async fn get_bound_profile_package(
        &self,
        request: GetBoundProfilePackageRequest,
    ) -> std::result::Result<GetBoundProfilePackageResponse, Es9Error> {
        let span = es9_span("getBoundProfilePackage", Some(&request.transaction_id));
        self.do_get_bpp(request)
            .instrument(span)
            .await
            .map_err(report)
    }

    async fn handle_notification(
        &self,
        request: HandleNotificationRequest,
    ) -> std::result::Result<(), Es9Error> {
        self.do_notification(request)
            .instrument(es9_span("handleNotification", None))
            .await
            .map_err(report)
    }

    async fn cancel_session(
        &self,
        request: CancelSessionRequest,
    ) -> std::result::Result<(), Es9Error> {
        let span = es9_span("cancelSession", Some(&request.transaction_id));
        self.do_cancel(request)
            .instrument(span)
            .await
            .map_err(report)
    }
}

fn report(f: Failure) -> Es9Error {
    match &f {
        Failure::Internal(detail) => tracing::error!(%detail, "ES9+ internal failure"),
        other => tracing::info!(failure = %other, "ES9+ call refused"),
    }
    f.to_es9()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::free_nvm;

    #[test]
    fn free_nvm_reads_tag_82() {
        assert_eq!(
            free_nvm(&[0x81, 0x01, 0x00, 0x82, 0x04, 0x00, 0x10, 0x00, 0x00]),
            Some(0x0010_0000)
        );
        assert_eq!(free_nvm(&[0x81, 0x01, 0x00]), None);
        assert_eq!(free_nvm(&[0x82, 0x05, 0x00]), None);
        assert_eq!(free_nvm(&[]), None);
    }
}
