//! The persistent part of the virtual eUICC: identity (EID, certificates, private key),
//! trusted CIs, installed profiles, pending notifications and the single notification
//! sequence counter.
//!
//! Like a card's NVM, the state holds secrets: the eUICC private key, the installed
//! packages and, for each installed profile with a Milenage USIM, its Ki and OPc and the
//! sequence numbers the card has accepted ([`ProfileRecord::usim`], see [`crate::usim`]).
//! The SQN the card has accepted is kept in its state file, so a replayed AUTN is refused
//! after a restart too. None of these is printed: `Debug` of the records redacts them.
//!
//! The state is a JSON document. [`EuiccState::save`] writes it atomically (a temporary file
//! in the same directory, then `rename`), with mode 0600 on Unix because of these secrets.
//! Binary values are base64 (standard alphabet). RSP session data (challenge,
//! transactionId, one-time keys) is deliberately **not** part of the state: a card loses it
//! on reset, and so does this simulator when the process ends.

use std::path::{Path, PathBuf};

use rsp_crypto::{KeyCustody, SoftwareKey};
use rsp_pki::Certificate;
use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::upp_info::UppInfo;
use crate::usim::UsimState;

/// Version of the JSON layout written by this crate.
pub const STATE_FORMAT: u32 = 1;

/// The ISD-R AID (SGP.22 section 2.2.3).
pub const ISD_R_AID: [u8; 16] = [
    0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00,
];

/// The first 12 bytes of every ISD-P AID this simulator allocates
/// (`A0000005591010FFFFFFFF89` followed by a 4-byte counter starting at `00001000`).
pub const ISD_P_AID_PREFIX: [u8; 12] = [
    0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89,
];

/// Default Root SM-DS address reported by EuiccConfiguredAddresses.
pub const DEFAULT_ROOT_DS: &str = "lpa.ds.gsma.com";

pub(crate) mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }

    pub mod opt {
        use super::*;
        pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.serialize_str(&STANDARD.encode(v)),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| {
                    STANDARD
                        .decode(s.as_bytes())
                        .map_err(serde::de::Error::custom)
                })
                .transpose()
        }
    }

    pub mod list {
        use super::*;
        use serde::ser::SerializeSeq;
        pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for item in v {
                seq.serialize_element(&STANDARD.encode(item))?;
            }
            seq.end()
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
            Vec::<String>::deserialize(d)?
                .into_iter()
                .map(|s| {
                    STANDARD
                        .decode(s.as_bytes())
                        .map_err(serde::de::Error::custom)
                })
                .collect()
        }
    }
}

/// Enabled or disabled (SGP.22 `ProfileState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileStateRec {
    /// `disabled(0)`.
    Disabled,
    /// `enabled(1)`.
    Enabled,
}

/// One `NotificationConfigurationInformation` entry of a profile's metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationConfig {
    /// `NotificationEvent` bit numbers (0 install, 1 enable, 2 disable, 3 delete).
    pub operations: Vec<u32>,
    /// Where notifications for these operations go.
    pub address: String,
}

/// An installed profile (an ISD-P with its metadata and package). `Debug` shows the sizes
/// of the package and metadata only (the package holds Ki, OPc, PINs) and redacts the USIM
/// keys.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileRecord {
    /// ICCID digits (19 or 20).
    pub iccid: String,
    /// ISD-P AID, upper-case hex.
    pub isdp_aid: String,
    /// Enabled or disabled.
    pub state: ProfileStateRec,
    /// End-user nickname.
    pub nickname: Option<String>,
    /// Service provider name from the metadata.
    pub service_provider_name: String,
    /// Profile name from the metadata.
    pub profile_name: String,
    /// Profile class: 0 test, 1 provisioning, 2 operational.
    pub profile_class: i64,
    /// Icon type: 0 jpg, 1 png.
    pub icon_type: Option<i64>,
    /// Icon bytes.
    #[serde(with = "b64::opt", default)]
    pub icon: Option<Vec<u8>>,
    /// Notification configuration from the metadata.
    pub notification_configuration: Vec<NotificationConfig>,
    /// Profile policy rules (PprIds bit numbers), if any.
    pub profile_policy_rules: Option<Vec<u32>>,
    /// Profile owner MCC/MNC (3 bytes, hex), if any.
    pub profile_owner_mcc_mnc: Option<String>,
    /// The SM-DP+ OID (from CERT.DPpb) that installed the profile.
    pub smdp_oid: Option<String>,
    /// The SM-DP+ address used for the download.
    pub smdp_address: String,
    /// The StoreMetadataRequest (`BF25`) as received.
    #[serde(with = "b64")]
    pub store_metadata: Vec<u8>,
    /// The decrypted profile package (UPP) as received.
    #[serde(with = "b64")]
    pub profile_package: Vec<u8>,
    /// ICCID, IMSI and SPN read from the package at installation (all `None` when it is
    /// not a parsable SAIP package). Absent in state files written before this field
    /// existed; [`EuiccState::load`] then reads them from `profile_package`.
    #[serde(default)]
    pub upp_info: UppInfo,
    /// The USIM's Milenage keys and accepted sequence numbers, read from the package's
    /// `akaParameter` at installation ([`UsimState::from_upp`]); `None` when the package has
    /// no Milenage USIM (another algorithm, no `akaParameter`, not SAIP): AUTHENTICATE is
    /// then not supported. Absent in state files written before this field existed;
    /// [`EuiccState::load`] then reads it from `profile_package` (with a fresh SQN array).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usim: Option<UsimState>,
}

impl std::fmt::Debug for ProfileRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileRecord")
            .field("iccid", &self.iccid)
            .field("isdp_aid", &self.isdp_aid)
            .field("state", &self.state)
            .field("nickname", &self.nickname)
            .field("service_provider_name", &self.service_provider_name)
            .field("profile_name", &self.profile_name)
            .field("profile_class", &self.profile_class)
            .field("icon_type", &self.icon_type)
            .field("icon", &self.icon.as_ref().map(Vec::len))
            .field(
                "notification_configuration",
                &self.notification_configuration,
            )
            .field("profile_policy_rules", &self.profile_policy_rules)
            .field("profile_owner_mcc_mnc", &self.profile_owner_mcc_mnc)
            .field("smdp_oid", &self.smdp_oid)
            .field("smdp_address", &self.smdp_address)
            .field(
                "store_metadata",
                &format_args!("<{} bytes>", self.store_metadata.len()),
            )
            .field(
                "profile_package",
                &format_args!("<{} bytes redacted>", self.profile_package.len()),
            )
            .field("upp_info", &self.upp_info)
            .field("usim", &self.usim)
            .finish()
    }
}

/// The operation a notification reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationOp {
    /// Profile installation (the notification is a ProfileInstallationResult).
    Install,
    /// Profile enabled.
    Enable,
    /// Profile disabled.
    Disable,
    /// Profile deleted.
    Delete,
    /// Profile enabled by RPM (v3 `notificationRpmEnable`, bit 4).
    #[serde(rename = "rpmEnable")]
    RpmEnable,
    /// Profile disabled by RPM (v3 `notificationRpmDisable`, bit 5).
    #[serde(rename = "rpmDisable")]
    RpmDisable,
    /// Profile deleted by RPM (v3 `notificationRpmDelete`, bit 6).
    #[serde(rename = "rpmDelete")]
    RpmDelete,
    /// The signed result of an RPM package (v3 `loadRpmPackageResult`, bit 7; the
    /// notification is a `LoadRpmPackageResultSigned`).
    #[serde(rename = "loadRpmPackageResult")]
    LoadRpmPackageResult,
}

impl NotificationOp {
    /// The `NotificationEvent` bit number.
    pub fn bit(self) -> u32 {
        match self {
            NotificationOp::Install => 0,
            NotificationOp::Enable => 1,
            NotificationOp::Disable => 2,
            NotificationOp::Delete => 3,
            NotificationOp::RpmEnable => 4,
            NotificationOp::RpmDisable => 5,
            NotificationOp::RpmDelete => 6,
            NotificationOp::LoadRpmPackageResult => 7,
        }
    }

    /// For an RPM enable/disable/delete, the local operation whose entry in a profile's
    /// notification configuration also asks for it (4 -> 1, 5 -> 2, 6 -> 3).
    pub fn local_equivalent(self) -> Option<NotificationOp> {
        match self {
            NotificationOp::RpmEnable => Some(NotificationOp::Enable),
            NotificationOp::RpmDisable => Some(NotificationOp::Disable),
            NotificationOp::RpmDelete => Some(NotificationOp::Delete),
            _ => None,
        }
    }

    /// Map a bit number back.
    pub fn from_bit(bit: u32) -> Option<NotificationOp> {
        match bit {
            0 => Some(NotificationOp::Install),
            1 => Some(NotificationOp::Enable),
            2 => Some(NotificationOp::Disable),
            3 => Some(NotificationOp::Delete),
            4 => Some(NotificationOp::RpmEnable),
            5 => Some(NotificationOp::RpmDisable),
            6 => Some(NotificationOp::RpmDelete),
            7 => Some(NotificationOp::LoadRpmPackageResult),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            NotificationOp::Install => "install",
            NotificationOp::Enable => "enable",
            NotificationOp::Disable => "disable",
            NotificationOp::Delete => "delete",
            NotificationOp::RpmEnable => "rpmEnable",
            NotificationOp::RpmDisable => "rpmDisable",
            NotificationOp::RpmDelete => "rpmDelete",
            NotificationOp::LoadRpmPackageResult => "loadRpmPackageResult",
        }
    }
}

/// A pending notification: its metadata and the complete signed `PendingNotification` DER
/// (`BF37` ProfileInstallationResult, `30` OtherSignedNotification or `A1`
/// LoadRpmPackageResultSigned).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRecord {
    /// Sequence number (from the single eUICC counter).
    pub seq_number: i64,
    /// Operation.
    pub operation: NotificationOp,
    /// notificationAddress.
    pub address: String,
    /// ICCID digits, when known.
    pub iccid: Option<String>,
    /// The signed notification, DER.
    #[serde(with = "b64")]
    pub pending_notification: Vec<u8>,
}

/// The persistent eUICC state.
#[derive(Clone, Serialize, Deserialize)]
pub struct EuiccState {
    /// Layout version ([`STATE_FORMAT`]).
    pub format: u32,
    /// EID, 32 digits.
    pub eid: String,
    /// CERT.EUICC.ECDSA, DER.
    #[serde(with = "b64")]
    pub euicc_certificate: Vec<u8>,
    /// SK.EUICC.ECDSA as PKCS#8 PEM. Never printed by this crate.
    pub euicc_private_key_pem: String,
    /// CERT.EUM.ECDSA, DER.
    #[serde(with = "b64")]
    pub eum_certificate: Vec<u8>,
    /// Trusted CI certificates (PK.CI.ECDSA for verification), DER.
    #[serde(with = "b64::list")]
    pub trusted_ci_certificates: Vec<Vec<u8>>,
    /// Default SM-DP+ address (ES10a).
    pub default_smdp_address: Option<String>,
    /// Root SM-DS address (ES10a).
    pub root_ds_address: String,
    /// Installed profiles.
    pub profiles: Vec<ProfileRecord>,
    /// Pending notifications, in sequence order.
    pub notifications: Vec<NotificationRecord>,
    /// The next notification sequence number (one counter for all notifications).
    pub next_seq_number: i64,
    /// The next ISD-P AID counter.
    pub next_isdp_index: u32,
    /// SGP.22 v3 behaviour: EUICCInfo1/2 announce `highestSvn` 3.1.0 and `rpmSupport`, and
    /// ES10b.LoadRpmPackage (Remote Profile Management) is accepted. `false` is a v2.2.2
    /// card (LoadRpmPackage is an unknown command). State files written before this field
    /// existed read as `false`, so they keep behaving exactly as before; `smdpp euicc init`
    /// writes `true` unless `--svn 2.x` is given. The lowest SVN announced is 2.2.2 either
    /// way.
    #[serde(default)]
    pub v3: bool,
}

impl std::fmt::Debug for EuiccState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EuiccState")
            .field("eid", &self.eid)
            .field("profiles", &self.profiles.len())
            .field("notifications", &self.notifications.len())
            .field("next_seq_number", &self.next_seq_number)
            .finish_non_exhaustive()
    }
}

/// What a new eUICC is made from: the EUM that signs its certificate and the CIs it trusts.
pub struct Provisioning {
    /// CERT.EUM.ECDSA, DER.
    pub eum_certificate: Vec<u8>,
    /// SK.EUM.ECDSA (signs the new eUICC certificate).
    pub eum_key: Box<dyn KeyCustody>,
    /// Trusted CI certificates, DER (the EUM's CI must be among them).
    pub trusted_cis: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Provisioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioning")
            .field("trusted_cis", &self.trusted_cis.len())
            .finish_non_exhaustive()
    }
}

impl Provisioning {
    /// Read a PKI directory as written by `smdpp pki init` / [`rsp_pki::TestPki::write_to`]:
    /// `eum.pem` + `eum.key` (required), `ci.pem` and `trusted-ci/*.pem` (trusted CIs).
    pub fn from_pki_dir(dir: &Path) -> Result<Provisioning, SimError> {
        let read = |name: &str| -> Result<String, SimError> {
            let p = dir.join(name);
            std::fs::read_to_string(&p).map_err(|e| SimError::io(&p, &e))
        };
        let eum = Certificate::from_pem(&read("eum.pem")?)
            .map_err(|e| SimError::Pki(format!("eum.pem: {e}")))?;
        let eum_key = SoftwareKey::from_pem(&read("eum.key")?)
            .map_err(|e| SimError::Pki(format!("eum.key: {e}")))?;
        let mut cis: Vec<Vec<u8>> = Certificate::from_pem_bundle(&read("ci.pem")?)
            .map_err(|e| SimError::Pki(format!("ci.pem: {e}")))?
            .iter()
            .map(|c| c.der().to_vec())
            .collect();
        let extra = dir.join(rsp_pki::EXTRA_CI_DIR);
        if extra.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&extra)
                .map_err(|e| SimError::io(&extra, &e))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pem"))
                .collect();
            files.sort();
            for f in files {
                let text = std::fs::read_to_string(&f).map_err(|e| SimError::io(&f, &e))?;
                for c in Certificate::from_pem_bundle(&text)
                    .map_err(|e| SimError::Pki(format!("{}: {e}", f.display())))?
                {
                    cis.push(c.der().to_vec());
                }
            }
        }
        Ok(Provisioning {
            eum_certificate: eum.der().to_vec(),
            eum_key: Box::new(eum_key),
            trusted_cis: cis,
        })
    }
}

/// The IIN prefixes (EID ranges) an EUM certificate permits: `permittedEins`, else the
/// `serialNumber` of nameConstraints permitted subtrees.
pub fn eum_eid_prefixes(eum: &Certificate) -> Vec<String> {
    if let Some(p) = eum.permitted_eins()
        && !p.value.is_empty()
    {
        return p.value.clone();
    }
    eum.name_constraints()
        .map(|nc| {
            nc.value
                .permitted
                .iter()
                .filter_map(|s| s.serial_number.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Derive a random, valid EID (correct check digits) inside one of `prefixes`.
pub fn random_eid(prefixes: &[String]) -> Result<String, SimError> {
    let prefix = prefixes
        .iter()
        .find(|p| p.len() <= 30 && p.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| SimError::Pki("the EUM certificate states no usable EID range".into()))?;
    let mut rnd = [0u8; 30];
    crate::util::random_fill(&mut rnd)?;
    let mut first30 = prefix.clone();
    for b in rnd.iter().take(30 - prefix.len()) {
        first30.push(char::from(b'0' + b % 10));
    }
    rsp_pki::eid_with_check_digits(&first30).map_err(|e| SimError::Pki(e.to_string()))
}

impl EuiccState {
    /// A new eUICC identity: checks or derives the EID (inside the EUM's range, with valid
    /// check digits), generates the eUICC key pair and has the EUM sign CERT.EUICC.ECDSA.
    /// The resulting chain is validated against the trusted CIs before it is returned.
    pub fn generate(prov: &Provisioning, eid: Option<&str>) -> Result<EuiccState, SimError> {
        let eum = Certificate::from_der(&prov.eum_certificate)
            .map_err(|e| SimError::Pki(format!("EUM certificate: {e}")))?;
        let prefixes = eum_eid_prefixes(&eum);
        let eid = match eid {
            Some(e) => {
                if !rsp_pki::is_eid_syntax(e) {
                    return Err(SimError::InvalidInput(format!(
                        "EID {e:?} is not 32 decimal digits"
                    )));
                }
                if !rsp_pki::eid_check_digits_ok(e) {
                    return Err(SimError::InvalidInput(format!(
                        "EID {e} has wrong check digits (the last two digits)"
                    )));
                }
                if !prefixes.is_empty() && !prefixes.iter().any(|p| e.starts_with(p.as_str())) {
                    return Err(SimError::InvalidInput(format!(
                        "EID {e} is outside the EUM's permitted range {prefixes:?}"
                    )));
                }
                e.to_owned()
            }
            None => random_eid(&prefixes)?,
        };
        let (der, key) = rsp_pki::issue_euicc(&eum, prov.eum_key.as_ref(), &eid)
            .map_err(|e| SimError::Pki(format!("issuing the eUICC certificate: {e}")))?;
        let state = EuiccState::from_parts(
            &eid,
            der,
            &key,
            prov.eum_certificate.clone(),
            prov.trusted_cis.clone(),
        );
        let store = state.trust_store()?;
        rsp_pki::validate_euicc_chain(
            &store,
            &state.eum_certificate,
            &state.euicc_certificate,
            time::OffsetDateTime::now_utc(),
        )
        .map_err(|e| SimError::Pki(format!("the new eUICC chain does not validate: {e}")))?;
        Ok(state)
    }

    /// A state from existing credentials (for example [`rsp_pki::TestPki`]'s eUICC). It is a
    /// v2.2.2 card ([`EuiccState::v3`] `false`); set the field for a v3 one.
    pub fn from_parts(
        eid: &str,
        euicc_certificate: Vec<u8>,
        euicc_key: &SoftwareKey,
        eum_certificate: Vec<u8>,
        trusted_cis: Vec<Vec<u8>>,
    ) -> EuiccState {
        EuiccState {
            format: STATE_FORMAT,
            eid: eid.to_owned(),
            euicc_certificate,
            euicc_private_key_pem: euicc_key.to_pkcs8_pem(),
            eum_certificate,
            trusted_ci_certificates: trusted_cis,
            default_smdp_address: None,
            root_ds_address: DEFAULT_ROOT_DS.to_owned(),
            profiles: Vec::new(),
            notifications: Vec::new(),
            next_seq_number: 1,
            next_isdp_index: 0x1000,
            v3: false,
        }
    }

    /// [`EuiccState::generate`] and write it to `path`; refuses to overwrite an existing file.
    pub fn create(
        path: &Path,
        prov: &Provisioning,
        eid: Option<&str>,
    ) -> Result<EuiccState, SimError> {
        EuiccState::create_with(path, prov, eid, false)
    }

    /// [`EuiccState::create`] choosing the SGP.22 version: `v3` makes a card that announces
    /// v3 and Remote Profile Management support (see [`EuiccState::v3`]).
    pub fn create_with(
        path: &Path,
        prov: &Provisioning,
        eid: Option<&str>,
        v3: bool,
    ) -> Result<EuiccState, SimError> {
        if path.exists() {
            return Err(SimError::InvalidInput(format!(
                "{} already exists; refusing to overwrite an eUICC state",
                path.display()
            )));
        }
        let mut state = EuiccState::generate(prov, eid)?;
        state.v3 = v3;
        state.save(path)?;
        Ok(state)
    }

    /// Read a state file. Profiles recorded without [`ProfileRecord::upp_info`] or
    /// [`ProfileRecord::usim`] (older files, or a package without a Milenage USIM) get them
    /// from their stored package.
    pub fn load(path: &Path) -> Result<EuiccState, SimError> {
        let text = std::fs::read(path).map_err(|e| SimError::io(path, &e))?;
        let mut state: EuiccState = serde_json::from_slice(&text).map_err(|e| {
            SimError::InvalidInput(format!(
                "{} is not an eUICC state file: {e}",
                path.display()
            ))
        })?;
        if state.format != STATE_FORMAT {
            return Err(SimError::InvalidInput(format!(
                "{}: unsupported state format {}",
                path.display(),
                state.format
            )));
        }
        for p in state.profiles.iter_mut().filter(|p| p.upp_info.is_empty()) {
            p.upp_info = UppInfo::from_upp(&p.profile_package);
        }
        for p in state.profiles.iter_mut().filter(|p| p.usim.is_none()) {
            p.usim = UsimState::from_upp_der(&p.profile_package).ok();
        }
        Ok(state)
    }

    /// Write the state atomically (temporary file + rename), mode 0600 on Unix (it holds the
    /// eUICC private key and the profiles' Ki/OPc).
    pub fn save(&self, path: &Path) -> Result<(), SimError> {
        use std::io::Write;
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| SimError::InvalidInput(format!("serializing the state: {e}")))?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "euicc.json".into());
        let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| SimError::io(&tmp, &e))?;
        // `mode` applies only when the file is created: also restrict a left-over one.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| SimError::io(&tmp, &e))?;
        }
        f.write_all(&json).map_err(|e| SimError::io(&tmp, &e))?;
        f.sync_all().map_err(|e| SimError::io(&tmp, &e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| SimError::io(path, &e))
    }

    /// A trust store with the trusted CIs.
    pub fn trust_store(&self) -> Result<rsp_pki::TrustStore, SimError> {
        let mut s = rsp_pki::TrustStore::new();
        for der in &self.trusted_ci_certificates {
            s.add_ci_der(der)
                .map_err(|e| SimError::Pki(format!("trusted CI: {e}")))?;
        }
        Ok(s)
    }

    /// The profile with this ICCID (digits) or ISD-P AID (hex, any case).
    pub fn find_profile(&self, id: &str) -> Option<&ProfileRecord> {
        let norm = id.trim().trim_end_matches(['F', 'f']);
        self.profiles
            .iter()
            .find(|p| p.iccid == norm || p.isdp_aid.eq_ignore_ascii_case(id.trim()))
    }
}
