//! Bound Profile Package construction (SM-DP+ side) and opening (eUICC side).
//!
//! Building (SGP.22 sections 2.5.3, 2.5.4, 3.1.3.2 and 5.5):
//! 1. a one-time key pair otPK/otSK.DP.ECKA is generated (or supplied, for re-use);
//! 2. `smdpSign` = ECDSA with SK.DPpb over `remoteOpId || transactionId ||
//!    controlRefTemplate || smdpOtpk || euiccOtpk` (section 5.5.1), each a complete TLV,
//!    `euiccOtpk` as `5F49 41 ..` the way PrepareDownloadResponse carries it;
//! 3. ShS = ECKA(otSK.DP, otPK.EUICC), and Annex G derives S-ENC, S-MAC and the initial MCV;
//! 4. ConfigureISDP goes in encrypted `87` segments, StoreMetadata in MAC-only `88`
//!    segments (more than one if it exceeds one segment), then optionally
//!    ReplaceSessionKeys (`87`, PPKs) and the profile in encrypted `86` segments of at most
//!    1020 bytes (1007 bytes of profile data each), under either the session keys or the PPKs.
//!
//! Opening does the same in reverse and reports failures as the `ErrorReason` and
//! `BppCommandId` an eUICC would put in its ProfileInstallationResult.

use crate::curve::Curve;
use crate::ecdsa::verify_raw;
use crate::error::CryptoError;
use crate::kdf::{KEY_LEN_AES128, KEY_TYPE_AES, SessionKeys, derive_session_keys};
use crate::keys::KeyCustody;
use crate::otk::{AgreementKey, EphemeralKey};
use crate::scp03t::{Scp03tSession, TAG_86, TAG_87, TAG_88};
use rsp_asn1::bpp::{
    BoundProfilePackage, ConfigureIsdpRequest, ControlRefTemplate, InitialiseSecureChannelRequest,
    REMOTE_OP_INSTALL_BPP, ReplaceSessionKeysRequest, StoreMetadataRequest, TAG_BPP, TAG_ISCR,
    TAG_OTPK,
};
use rsp_asn1::tlv::{Reader, parse_single, write_tlv};
use zeroize::{Zeroize, Zeroizing};

/// `ErrorReason` of `ProfileInstallationResultData` (RSPDefinitions), for BPP failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorReason {
    /// incorrectInputValues(1).
    IncorrectInputValues = 1,
    /// invalidSignature(2).
    InvalidSignature = 2,
    /// invalidTransactionId(3).
    InvalidTransactionId = 3,
    /// unsupportedCrtValues(4).
    UnsupportedCrtValues = 4,
    /// unsupportedRemoteOperationType(5).
    UnsupportedRemoteOperationType = 5,
    /// unsupportedProfileClass(6).
    UnsupportedProfileClass = 6,
    /// scp03tStructureError(7).
    Scp03tStructureError = 7,
    /// scp03tSecurityError(8).
    Scp03tSecurityError = 8,
    /// installFailedDueToUnknownError(127).
    InstallFailedDueToUnknownError = 127,
}

impl ErrorReason {
    /// The INTEGER value on the wire.
    pub fn value(self) -> i64 {
        self as i64
    }
}

/// `BppCommandId` of `ErrorResult`: which BPP command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BppCommandId {
    /// initialiseSecureChannel(0).
    InitialiseSecureChannel = 0,
    /// configureISDP(1).
    ConfigureIsdp = 1,
    /// storeMetadata(2).
    StoreMetadata = 2,
    /// storeMetadata2(3): a second or later `88` segment.
    StoreMetadata2 = 3,
    /// replaceSessionKeys(4).
    ReplaceSessionKeys = 4,
    /// loadProfileElements(5).
    LoadProfileElements = 5,
}

impl BppCommandId {
    /// The INTEGER value on the wire.
    pub fn value(self) -> i64 {
        self as i64
    }
}

/// Why a BPP was refused, in the terms of a ProfileInstallationResult.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("BPP refused at {command:?}: {reason:?} ({detail})")]
pub struct BppError {
    /// The command being processed.
    pub command: BppCommandId,
    /// The reason an eUICC would report.
    pub reason: ErrorReason,
    /// A short human-readable detail (never key material).
    pub detail: String,
}

impl BppError {
    fn new(command: BppCommandId, reason: ErrorReason, detail: impl std::fmt::Display) -> BppError {
        BppError {
            command,
            reason,
            detail: detail.to_string(),
        }
    }

    fn from_crypto(command: BppCommandId, e: CryptoError) -> BppError {
        let reason = match e {
            CryptoError::Scp03tSecurity(_) => ErrorReason::Scp03tSecurityError,
            CryptoError::Scp03tStructure(_) => ErrorReason::Scp03tStructureError,
            CryptoError::Backend(_) => ErrorReason::InstallFailedDueToUnknownError,
            _ => ErrorReason::IncorrectInputValues,
        };
        BppError::new(command, reason, e)
    }
}

/// The data `smdpSign` covers: the request's signed part followed by `5F49 L euiccOtpk`
/// (SGP.22 section 5.5.1).
pub fn smdp_sign_data(iscr: &InitialiseSecureChannelRequest<'_>, euicc_otpk: &[u8]) -> Vec<u8> {
    let mut data = iscr.signed_part();
    write_tlv(&mut data, TAG_OTPK, euicc_otpk);
    data
}

/// A profile protected in advance with Profile Protection Keys (SGP.22 section 2.5.3):
/// the `86` segments plus the PPKs that a BPP's ReplaceSessionKeys will deliver.
pub struct ProtectedProfile {
    ppk: SessionKeys,
    segments: Vec<Vec<u8>>,
}

impl std::fmt::Debug for ProtectedProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtectedProfile")
            .field("segments", &self.segments.len())
            .finish_non_exhaustive()
    }
}

impl ProtectedProfile {
    /// Protect `upp` (the Unprotected Profile Package, SAIP DER) under `ppk`, or under fresh
    /// random PPKs when `ppk` is `None`.
    pub fn protect(upp: &[u8], ppk: Option<SessionKeys>) -> Result<ProtectedProfile, CryptoError> {
        let ppk = match ppk {
            Some(k) => k,
            None => SessionKeys::random()?,
        };
        let segments = Scp03tSession::new(&ppk)?.protect_all(TAG_86, upp)?;
        Ok(ProtectedProfile { ppk, segments })
    }

    /// The `86` segments.
    pub fn segments(&self) -> &[Vec<u8>] {
        &self.segments
    }

    /// The Profile Protection Keys.
    pub fn ppk(&self) -> &SessionKeys {
        &self.ppk
    }
}

/// How the profile segments (`86`) are protected.
#[derive(Clone, Copy)]
pub enum ProfileProtection<'a> {
    /// Under the session keys from the key agreement (no ReplaceSessionKeys).
    SessionKeys {
        /// The Unprotected Profile Package.
        upp: &'a [u8],
    },
    /// Under fresh random PPKs, delivered by ReplaceSessionKeys.
    RandomPpk {
        /// The Unprotected Profile Package.
        upp: &'a [u8],
    },
    /// A profile protected ahead of time with its PPKs.
    PreProtected(&'a ProtectedProfile),
}

/// The inputs of BPP binding that do not depend on the protection mode.
#[derive(Clone, Copy)]
pub struct BppParams<'a> {
    /// SK.DPpb.ECDSA custody: signs `smdpSign`; its curve is the session's curve.
    pub dp_pb: &'a dyn KeyCustody,
    /// The TransactionID of the RSP session (1..16 bytes).
    pub transaction_id: &'a [u8],
    /// otPK.EUICC.ECKA from the PrepareDownloadResponse (uncompressed point).
    pub euicc_otpk: &'a [u8],
    /// The EID (16 bytes), from CERT.EUICC.ECDSA; input to the KDF.
    pub eid: &'a [u8],
    /// The hostId of the CRT (1..16 bytes).
    pub host_id: &'a [u8],
    /// ConfigureISDPRequest DER (`BF24 ..`).
    pub configure_isdp: &'a [u8],
    /// StoreMetadataRequest DER (`BF25 ..`).
    pub store_metadata: &'a [u8],
}

impl std::fmt::Debug for BppParams<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BppParams")
            .field("curve", &self.dp_pb.curve())
            .finish_non_exhaustive()
    }
}

/// A built BPP.
#[derive(Clone, Debug)]
pub struct BuiltBpp {
    /// The BoundProfilePackage DER (`BF36 ..`).
    pub der: Vec<u8>,
    /// otPK.DP.ECKA as placed in `smdpOtpk`.
    pub smdp_otpk: Vec<u8>,
}

/// Build a Bound Profile Package.
///
/// `smdp_otk` is the SM-DP+ one-time key: `None` generates a fresh one (the normal case); a
/// supplied key lets the caller re-use otSK.DP.ECKA when the eUICC re-presents a stored
/// otPK.EUICC (bppEuiccOtpk, section 3.1.3.2). Callers that want a byte-identical BPP on
/// retry should simply cache [`BuiltBpp`].
pub fn build_bpp(
    params: &BppParams<'_>,
    protection: ProfileProtection<'_>,
    smdp_otk: Option<AgreementKey<'_>>,
) -> Result<BuiltBpp, CryptoError> {
    let curve = params.dp_pb.curve();
    let otk = match smdp_otk {
        Some(k) => k,
        None => AgreementKey::OneTime(EphemeralKey::generate(curve)?),
    };
    if otk.curve() != curve {
        return Err(CryptoError::CurveMismatch);
    }
    let smdp_otpk = otk.public_key().to_vec();
    let crt = ControlRefTemplate {
        key_type: KEY_TYPE_AES,
        key_len: KEY_LEN_AES128,
        host_id: params.host_id,
    };
    let mut iscr = InitialiseSecureChannelRequest {
        remote_op_id: REMOTE_OP_INSTALL_BPP,
        transaction_id: params.transaction_id,
        control_ref_template: crt,
        smdp_otpk: &smdp_otpk,
        smdp_sign: &[],
    };
    if params.transaction_id.is_empty() || params.transaction_id.len() > 16 {
        return Err(CryptoError::Length("transactionId must be 1..16 bytes"));
    }
    let shs = otk.agree(params.euicc_otpk)?;
    let keys = derive_session_keys(
        &shs,
        KEY_TYPE_AES,
        KEY_LEN_AES128,
        params.host_id,
        params.eid,
    )?;
    drop(shs);
    let signature = params
        .dp_pb
        .sign(&smdp_sign_data(&iscr, params.euicc_otpk))?;
    iscr.smdp_sign = &signature;

    let mut session = Scp03tSession::new(&keys)?;
    let first87 = session.protect_all(TAG_87, params.configure_isdp)?;
    let seq88 = session.protect_all(TAG_88, params.store_metadata)?;
    // Either the profile is protected here under the session keys (no ReplaceSessionKeys),
    // or it comes with PPKs that a ReplaceSessionKeys segment delivers.
    let random_ppk: ProtectedProfile;
    let pre: Option<&ProtectedProfile> = match protection {
        ProfileProtection::SessionKeys { .. } => None,
        ProfileProtection::RandomPpk { upp } => {
            random_ppk = ProtectedProfile::protect(upp, None)?;
            Some(&random_ppk)
        }
        ProfileProtection::PreProtected(p) => Some(p),
    };
    let second87 = pre
        .map(|p| rsk_segments(&mut session, p.ppk()))
        .transpose()?;
    let seq86_owned = match protection {
        ProfileProtection::SessionKeys { upp } => session.protect_all(TAG_86, upp)?,
        _ => Vec::new(),
    };
    let seq86: Vec<&[u8]> = match pre {
        Some(p) => p.segments().iter().map(Vec::as_slice).collect(),
        None => seq86_owned.iter().map(Vec::as_slice).collect(),
    };
    let bpp = BoundProfilePackage {
        initialise_secure_channel: iscr,
        first_sequence_of_87: first87.iter().map(Vec::as_slice).collect(),
        sequence_of_88: seq88.iter().map(Vec::as_slice).collect(),
        second_sequence_of_87: second87
            .as_ref()
            .map(|s| s.iter().map(Vec::as_slice).collect()),
        sequence_of_86: seq86,
    };
    Ok(BuiltBpp {
        der: bpp.encode(),
        smdp_otpk,
    })
}

/// The ReplaceSessionKeys `87` segment(s) carrying `ppk` under the session keys.
fn rsk_segments(
    session: &mut Scp03tSession,
    ppk: &SessionKeys,
) -> Result<Vec<Vec<u8>>, CryptoError> {
    let mut rsk = ReplaceSessionKeysRequest {
        initial_mac_chaining_value: ppk.initial_mcv.to_vec(),
        ppk_enc: ppk.s_enc.to_vec(),
        ppk_cmac: ppk.s_mac.to_vec(),
    };
    let der = Zeroizing::new(rsk.encode());
    rsk.initial_mac_chaining_value.zeroize();
    rsk.ppk_enc.zeroize();
    rsk.ppk_cmac.zeroize();
    session.protect_all(TAG_87, &der)
}

/// What the eUICC side needs besides its one-time secret.
#[derive(Clone, Copy, Debug)]
pub struct OpenParams<'a> {
    /// The curve of the session.
    pub curve: Curve,
    /// PK.DPpb.ECDSA (from the verified CERT.DPpb.ECDSA), uncompressed point.
    pub dp_pb_public: &'a [u8],
    /// The eUICC's own otPK.EUICC.ECKA (covered by `smdpSign`).
    pub euicc_otpk: &'a [u8],
    /// The EID (16 bytes).
    pub eid: &'a [u8],
    /// The TransactionID of the ongoing session, if the caller wants it checked.
    pub expected_transaction_id: Option<&'a [u8]>,
}

/// The plaintext content of an opened BPP.
pub struct OpenedBpp {
    /// The TransactionID from the InitialiseSecureChannelRequest.
    pub transaction_id: Vec<u8>,
    /// The hostId from the CRT.
    pub host_id: Vec<u8>,
    /// otPK.DP.ECKA.
    pub smdp_otpk: Vec<u8>,
    /// ConfigureISDPRequest DER.
    pub configure_isdp: Vec<u8>,
    /// StoreMetadataRequest DER (the `88` segments joined).
    pub store_metadata: Vec<u8>,
    /// The PPKs the profile was opened with (delivered by ReplaceSessionKeys, or supplied
    /// out of band), if not the session keys.
    pub ppk: Option<SessionKeys>,
    /// The Unprotected Profile Package (the `86` segments decrypted and joined).
    pub upp: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for OpenedBpp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedBpp")
            .field("configure_isdp_len", &self.configure_isdp.len())
            .field("store_metadata_len", &self.store_metadata.len())
            .field("ppk", &self.ppk.is_some())
            .field("upp_len", &self.upp.len())
            .finish_non_exhaustive()
    }
}

fn decode_bpp(der: &[u8]) -> Result<BoundProfilePackage<'_>, BppError> {
    use BppCommandId::*;
    BoundProfilePackage::decode(der).map_err(|e| {
        // Blame the InitialiseSecureChannel block if it is the part that is malformed,
        // otherwise the segment structure.
        let iscr_ok = Reader::new(der)
            .read_expect(TAG_BPP)
            .and_then(|t| t.reader())
            .and_then(|mut r| r.read_expect(TAG_ISCR))
            .and_then(|t| InitialiseSecureChannelRequest::decode(t.raw))
            .is_ok();
        if iscr_ok {
            BppError::new(ConfigureIsdp, ErrorReason::Scp03tStructureError, e)
        } else {
            BppError::new(
                InitialiseSecureChannel,
                ErrorReason::IncorrectInputValues,
                e,
            )
        }
    })
}

/// Open a BPP as an eUICC: check the InitialiseSecureChannelRequest (remote operation,
/// transaction, CRT, `smdpSign`), agree and derive the keys with `euicc_otsk`, verify every
/// MAC and decrypt. Fails with the ErrorReason a card would report.
pub fn open_bpp(
    der: &[u8],
    params: &OpenParams<'_>,
    euicc_otsk: AgreementKey<'_>,
) -> Result<OpenedBpp, BppError> {
    use BppCommandId::InitialiseSecureChannel as Isc;
    let bpp = decode_bpp(der)?;
    let iscr = &bpp.initialise_secure_channel;
    if euicc_otsk.curve() != params.curve {
        return Err(BppError::new(
            Isc,
            ErrorReason::UnsupportedCrtValues,
            "curve mismatch",
        ));
    }
    let signed = smdp_sign_data(iscr, params.euicc_otpk);
    verify_raw(params.curve, params.dp_pb_public, &signed, iscr.smdp_sign)
        .map_err(|e| BppError::new(Isc, ErrorReason::InvalidSignature, e))?;
    if iscr.remote_op_id != REMOTE_OP_INSTALL_BPP {
        return Err(BppError::new(
            Isc,
            ErrorReason::UnsupportedRemoteOperationType,
            "remoteOpId",
        ));
    }
    if params
        .expected_transaction_id
        .is_some_and(|t| t != iscr.transaction_id)
    {
        return Err(BppError::new(
            Isc,
            ErrorReason::InvalidTransactionId,
            "transactionId mismatch",
        ));
    }
    let crt = iscr.control_ref_template;
    if crt.key_type != KEY_TYPE_AES || crt.key_len != KEY_LEN_AES128 {
        return Err(BppError::new(
            Isc,
            ErrorReason::UnsupportedCrtValues,
            "keyType/keyLen",
        ));
    }
    let shs = euicc_otsk
        .agree(iscr.smdp_otpk)
        .map_err(|e| BppError::new(Isc, ErrorReason::IncorrectInputValues, e))?;
    let keys = derive_session_keys(&shs, crt.key_type, crt.key_len, crt.host_id, params.eid)
        .map_err(|e| BppError::new(Isc, ErrorReason::UnsupportedCrtValues, e))?;
    drop(shs);
    open_segments(&bpp, &keys, None)
}

/// Open a BPP with already known session keys, skipping the signature check and key
/// agreement (for traces and test vectors).
pub fn open_bpp_with_session_keys(der: &[u8], keys: &SessionKeys) -> Result<OpenedBpp, BppError> {
    open_bpp_with_keys(der, keys, None)
}

/// Like [`open_bpp_with_session_keys`], with Profile Protection Keys known out of band:
/// when the BPP carries no ReplaceSessionKeys, the `86` segments are opened with
/// `profile_keys` instead of the session keys. (Some SM-DP+ traces protect the profile with
/// PPKs but omit the `secondSequenceOf87`; this lets such traces be checked.) A
/// ReplaceSessionKeys in the BPP takes precedence.
pub fn open_bpp_with_keys(
    der: &[u8],
    keys: &SessionKeys,
    profile_keys: Option<&SessionKeys>,
) -> Result<OpenedBpp, BppError> {
    let bpp = decode_bpp(der)?;
    open_segments(&bpp, keys, profile_keys)
}

/// The segment inside a doubly wrapped one (`87 L1 [87 L2 payload]`), if `seg` is that.
fn inner_segment(seg: &[u8]) -> Option<&[u8]> {
    let outer = parse_single(seg).ok()?;
    let inner = parse_single(outer.value).ok()?;
    (inner.tag == outer.tag).then_some(outer.value)
}

/// Verifies and decrypts the segments of one BPP in order.
///
/// Two layouts of `SEQUENCE OF [7] OCTET STRING` exist in the field: the spec's (each
/// element *is* the SCP03t TLV, `A0 L 87 L payload`) and one where the SCP03t TLV is the
/// OCTET STRING's value (`A0 L 87 L1 87 L2 payload`; osmo-smdpp produces this). The layout
/// is settled on the first segment by whichever form's MAC verifies, so no guess is made on
/// unauthenticated data, and then applied to every segment.
struct SegmentOpener {
    session: Scp03tSession,
    wrapped: Option<bool>,
}

impl SegmentOpener {
    fn open(&mut self, seg: &[u8], tag: u8, cmd: BppCommandId) -> Result<Vec<u8>, BppError> {
        expect_tag(seg, tag, cmd)?;
        match self.wrapped {
            Some(false) => self
                .session
                .unprotect(seg)
                .map_err(|e| BppError::from_crypto(cmd, e)),
            Some(true) => {
                let inner = inner_segment(seg).ok_or_else(|| {
                    BppError::new(
                        cmd,
                        ErrorReason::Scp03tStructureError,
                        "segment is not wrapped like the first",
                    )
                })?;
                self.session
                    .unprotect(inner)
                    .map_err(|e| BppError::from_crypto(cmd, e))
            }
            None => match self.session.unprotect(seg) {
                Ok(plain) => {
                    self.wrapped = Some(false);
                    Ok(plain)
                }
                Err(first) => match inner_segment(seg).map(|inner| self.session.unprotect(inner)) {
                    Some(Ok(plain)) => {
                        self.wrapped = Some(true);
                        Ok(plain)
                    }
                    _ => Err(BppError::from_crypto(cmd, first)),
                },
            },
        }
    }
}

fn open_segments(
    bpp: &BoundProfilePackage<'_>,
    keys: &SessionKeys,
    profile_keys: Option<&SessionKeys>,
) -> Result<OpenedBpp, BppError> {
    use BppCommandId::*;
    let structure = |c, d: &str| BppError::new(c, ErrorReason::Scp03tStructureError, d);
    let session = Scp03tSession::new(keys).map_err(|e| BppError::from_crypto(ConfigureIsdp, e))?;
    let mut opener = SegmentOpener {
        session,
        wrapped: None,
    };

    if bpp.first_sequence_of_87.is_empty() {
        return Err(structure(ConfigureIsdp, "no ConfigureISDP segment"));
    }
    let mut configure_isdp = Vec::new();
    for seg in &bpp.first_sequence_of_87 {
        configure_isdp.extend(opener.open(seg, TAG_87, ConfigureIsdp)?);
    }
    ConfigureIsdpRequest::decode(&configure_isdp)
        .map_err(|e| BppError::new(ConfigureIsdp, ErrorReason::IncorrectInputValues, e))?;

    if bpp.sequence_of_88.is_empty() {
        return Err(structure(StoreMetadata, "no StoreMetadata segment"));
    }
    let mut store_metadata = Vec::new();
    for (i, seg) in bpp.sequence_of_88.iter().enumerate() {
        let cmd = if i == 0 {
            StoreMetadata
        } else {
            StoreMetadata2
        };
        store_metadata.extend(opener.open(seg, TAG_88, cmd)?);
    }
    StoreMetadataRequest::decode(&store_metadata)
        .map_err(|e| BppError::new(StoreMetadata, ErrorReason::IncorrectInputValues, e))?;

    let mut ppk = None;
    if let Some(second) = &bpp.second_sequence_of_87 {
        if second.is_empty() {
            return Err(structure(ReplaceSessionKeys, "empty secondSequenceOf87"));
        }
        let mut rsk_der = Zeroizing::new(Vec::new());
        for seg in second {
            let mut part = opener.open(seg, TAG_87, ReplaceSessionKeys)?;
            rsk_der.extend_from_slice(&part);
            part.zeroize();
        }
        let mut rsk = ReplaceSessionKeysRequest::decode(&rsk_der)
            .map_err(|e| BppError::new(ReplaceSessionKeys, ErrorReason::IncorrectInputValues, e))?;
        // Section 5.5.4: the new keys must have the length of the keys they replace.
        let k = (|| {
            Some(SessionKeys {
                s_enc: rsk.ppk_enc.as_slice().try_into().ok()?,
                s_mac: rsk.ppk_cmac.as_slice().try_into().ok()?,
                initial_mcv: rsk.initial_mac_chaining_value.as_slice().try_into().ok()?,
            })
        })();
        rsk.ppk_enc.zeroize();
        rsk.ppk_cmac.zeroize();
        rsk.initial_mac_chaining_value.zeroize();
        let k = k.ok_or_else(|| {
            BppError::new(
                ReplaceSessionKeys,
                ErrorReason::IncorrectInputValues,
                "PPK length is not 16",
            )
        })?;
        // Section 2.5.3: new key set, counter back to 1, MCV from the request.
        opener.session =
            Scp03tSession::new(&k).map_err(|e| BppError::from_crypto(ReplaceSessionKeys, e))?;
        ppk = Some(k);
    } else if let Some(k) = profile_keys {
        opener.session =
            Scp03tSession::new(k).map_err(|e| BppError::from_crypto(LoadProfileElements, e))?;
        ppk = Some(k.clone());
    }

    if bpp.sequence_of_86.is_empty() {
        return Err(structure(LoadProfileElements, "no profile segment"));
    }
    let mut upp = Zeroizing::new(Vec::new());
    for seg in &bpp.sequence_of_86 {
        let mut part = opener.open(seg, TAG_86, LoadProfileElements)?;
        upp.extend_from_slice(&part);
        part.zeroize();
    }
    let iscr = &bpp.initialise_secure_channel;
    Ok(OpenedBpp {
        transaction_id: iscr.transaction_id.to_vec(),
        host_id: iscr.control_ref_template.host_id.to_vec(),
        smdp_otpk: iscr.smdp_otpk.to_vec(),
        configure_isdp,
        store_metadata,
        ppk,
        upp,
    })
}

fn expect_tag(seg: &[u8], tag: u8, cmd: BppCommandId) -> Result<(), BppError> {
    if seg.first() == Some(&tag) {
        Ok(())
    } else {
        Err(BppError::new(
            cmd,
            ErrorReason::Scp03tStructureError,
            "unexpected segment tag",
        ))
    }
}
