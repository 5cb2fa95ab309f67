//! Profiles created on demand: a profile type with a generation policy (an ICCID range with
//! its Luhn digit, an IMSI range, the MNC length, how OPc is obtained) makes its own
//! subscribers when an order finds no Available profile of the type, or ahead of time with
//! `smdpp profiles generate --type T --count N`.
//!
//! Profile number `i` of the range (0-based) has ICCID `iccid_first + i` with its Luhn check
//! digit appended (ITU-T E.118; the body keeps its width, 18 or 19 digits) and IMSI
//! `imsi_first + i` (same width). `i` is taken with one conditional UPDATE of the store
//! ([`smdpp_store::Store::take_generator_index`]), so concurrent orders, processes and nodes
//! on one database never share an index; the UNIQUE constraints on ICCID and IMSI guard the
//! rest (an index whose ICCID or IMSI was imported by hand is skipped, and counts as used).
//! An index taken by a generation that then fails is not reused (a gap in the range).
//!
//! Per profile, from the OS CSPRNG (aws-lc-rs): Ki (128 bits), OPc (128 bits, or derived
//! from the operator's OP with Milenage's `OPc = AES_Ki(OP) xor OP` when the policy has an
//! OP, which is sealed with the vault like every other secret), PIN1/PIN2 (policy length,
//! default 4 digits), PUK1/PUK2 (8 digits) and ADM1 (8 digits). The secrets are checked
//! against the type's template and sealed exactly as imported ones ([`Factory::seal_secrets`]);
//! nothing secret is kept in memory beyond the call (zeroized buffers) or written in clear.

use saip::{OperatorKey, SecretText};
use serde::{Deserialize, Serialize};
use smdpp_store::{
    EventRecord, Expect, ImportOutcome, ImportRow, Profile, ProfileGenerator, ProfileState,
    ProfileType, ProfileUpdate, SealedSecrets, StoreError,
};
use smdpp_vault::record_aad;
use zeroize::Zeroizing;

use crate::factory::{Factory, FactoryError, SubscriberSecrets};

/// The stored generation policy of a type (JSON in `profile_generators.policy`, no secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerationPolicy {
    /// The first ICCID of the range without its check digit (18 or 19 digits).
    pub iccid_first: String,
    /// The first IMSI of the range (6 to 15 digits, normally 15).
    pub imsi_first: String,
    /// Number of MNC digits in the IMSIs (2 or 3).
    pub mnc_len: u8,
    /// How many profiles the range holds.
    pub size: u64,
    /// Whether OPc is derived from a sealed operator OP (`true`) or drawn at random.
    pub opc_from_op: bool,
    /// Digits of PIN1 and PIN2 (4 to 8).
    pub pin_digits: u8,
}

/// Why a generation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The range is used up.
    #[error("the ICCID/IMSI range of profile type {0:?} is exhausted")]
    Exhausted(String),
    /// The type has no generation policy.
    #[error("profile type {0:?} has no generation policy")]
    NoPolicy(String),
    /// The policy is not valid.
    #[error("generation policy: {0}")]
    Invalid(String),
    /// The factory (templates, sealing) failed.
    #[error(transparent)]
    Factory(#[from] FactoryError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parses a range `FIRST-LAST` (or `FIRST..LAST`) of equal-width decimal numbers; returns
/// the first and the count.
pub fn parse_range(
    s: &str,
    what: &str,
    widths: std::ops::RangeInclusive<usize>,
) -> Result<(String, u64), String> {
    let (a, b) = s
        .split_once("..")
        .or_else(|| s.split_once('-'))
        .ok_or_else(|| format!("{what} range {s:?}: expected FIRST-LAST"))?;
    let (a, b) = (a.trim(), b.trim());
    for x in [a, b] {
        if !widths.contains(&x.len()) || !x.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "{what} range {s:?}: {x:?} is not {}-{} decimal digits",
                widths.start(),
                widths.end()
            ));
        }
    }
    if a.len() != b.len() {
        return Err(format!(
            "{what} range {s:?}: both ends must have the same number of digits"
        ));
    }
    let (x, y): (u128, u128) = (
        a.parse().map_err(|_| "bad number")?,
        b.parse().map_err(|_| "bad number")?,
    );
    if y < x {
        return Err(format!(
            "{what} range {s:?}: the last is lower than the first"
        ));
    }
    let count = u64::try_from(y - x + 1).map_err(|_| format!("{what} range {s:?} is too large"))?;
    Ok((a.to_owned(), count))
}

/// `first + i` with the width of `first`, or `None` past the width.
fn nth(first: &str, i: u64) -> Option<String> {
    let v = first.parse::<u128>().ok()?.checked_add(u128::from(i))?;
    let s = format!("{v:0width$}", width = first.len());
    (s.len() == first.len()).then_some(s)
}

impl GenerationPolicy {
    /// Checks the policy: widths, the range fits its digits, lengths.
    pub fn validate(&self) -> Result<(), String> {
        if !(18..=19).contains(&self.iccid_first.len())
            || !self.iccid_first.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(
                "the ICCID range must be of 18 or 19 digits (the Luhn digit is added)".into(),
            );
        }
        if !(6..=15).contains(&self.imsi_first.len())
            || !self.imsi_first.bytes().all(|b| b.is_ascii_digit())
        {
            return Err("the IMSI range must be of 6 to 15 digits".into());
        }
        if !matches!(self.mnc_len, 2 | 3) {
            return Err("the MNC length must be 2 or 3".into());
        }
        if !(4..=8).contains(&self.pin_digits) {
            return Err("PINs must have 4 to 8 digits".into());
        }
        if self.size == 0 || i64::try_from(self.size).is_err() {
            return Err("the range must hold at least one profile".into());
        }
        let last = self.size - 1;
        if nth(&self.iccid_first, last).is_none() || nth(&self.imsi_first, last).is_none() {
            return Err("the range does not fit the ICCID/IMSI digits".into());
        }
        Ok(())
    }

    /// The ICCID of profile `i` (Luhn digit appended).
    pub fn iccid_at(&self, i: u64) -> Option<String> {
        saip::personalize::iccid_with_luhn(&nth(&self.iccid_first, i)?).ok()
    }

    /// The IMSI of profile `i`.
    pub fn imsi_at(&self, i: u64) -> Option<String> {
        nth(&self.imsi_first, i)
    }
}

/// The additional data of a generator's sealed OP.
pub fn op_aad(profile_type: &str) -> Vec<u8> {
    record_aad("profile_generators", profile_type, "op")
}

/// `n` random decimal digits (rejection sampling: uniform).
fn random_digits(n: usize) -> Result<SecretText, GenerateError> {
    let mut out = Zeroizing::new(String::with_capacity(n));
    while out.len() < n {
        let buf = Zeroizing::new(random::<32>()?);
        for b in buf.iter() {
            if *b < 250 && out.len() < n {
                out.push(char::from(b'0' + b % 10));
            }
        }
    }
    Ok(SecretText::from(out.as_str()))
}

fn random<const N: usize>() -> Result<[u8; N], GenerateError> {
    crate::upp::random_bytes::<N>().map_err(|_| GenerateError::Invalid("system RNG failure".into()))
}

fn hex_secret(b: &[u8]) -> SecretText {
    let h = Zeroizing::new(hex::encode_upper(b));
    SecretText::from(h.as_str())
}

/// Most indices one generation call skips over (ICCIDs/IMSIs already taken by hand).
const MAX_SKIPS: usize = 64;

impl Factory {
    /// Gives `profile_type` a generation policy; `op` (32 hex digits) when OPc is derived
    /// from the operator's OP (sealed with the vault).
    pub async fn add_generator(
        &self,
        profile_type: &str,
        policy: &GenerationPolicy,
        op: Option<&SecretText>,
    ) -> Result<(), GenerateError> {
        policy.validate().map_err(GenerateError::Invalid)?;
        if policy.opc_from_op != op.is_some() {
            return Err(GenerateError::Invalid(
                "an OP is needed exactly when OPc is derived from it".into(),
            ));
        }
        if self.store().get_profile_type(profile_type).await?.is_none() {
            return Err(FactoryError::UnknownType(profile_type.to_owned()).into());
        }
        let op_sealed = match op {
            Some(op) => {
                let raw = Zeroizing::new(
                    hex::decode(op.expose())
                        .ok()
                        .filter(|v| v.len() == 16)
                        .ok_or_else(|| GenerateError::Invalid("OP must be 32 hex digits".into()))?,
                );
                let blob = self
                    .vault()
                    .seal(&raw, &op_aad(profile_type))
                    .map_err(FactoryError::from)?;
                Some((i64::from(blob.dek_id()), blob.into_bytes()))
            }
            None => None,
        };
        let policy_json = serde_json::to_string(policy)
            .map_err(|e| GenerateError::Invalid(format!("policy: {e}")))?;
        self.store()
            .insert_generator(&ProfileGenerator {
                profile_type: profile_type.to_owned(),
                policy: policy_json,
                op_sealed,
                next_index: 0,
                size: i64::try_from(policy.size).unwrap_or(i64::MAX),
                created_at: 0,
            })
            .await?;
        Ok(())
    }

    /// The policy of `profile_type`, if it generates its profiles.
    pub async fn generation_policy(
        &self,
        profile_type: &str,
    ) -> Result<Option<(GenerationPolicy, ProfileGenerator)>, GenerateError> {
        let Some(g) = self.store().get_generator(profile_type).await? else {
            return Ok(None);
        };
        let p: GenerationPolicy = serde_json::from_str(&g.policy).map_err(|_| {
            GenerateError::Invalid(format!("stored policy of {profile_type:?} is malformed"))
        })?;
        Ok(Some((p, g)))
    }

    /// Creates `count` new Available profiles of `ptype` owned by `operator` and returns
    /// their ICCIDs (committed). When the range runs out after `0 < k < count` profiles, the
    /// `k` are returned (fewer than asked); with none made, [`GenerateError::Exhausted`].
    pub async fn generate(
        &self,
        ptype: &ProfileType,
        operator: Option<&str>,
        count: usize,
    ) -> Result<Vec<String>, GenerateError> {
        Ok(self
            .generate_inner(ptype, operator, count, None)
            .await?
            .into_iter()
            .map(|(iccid, _)| iccid)
            .collect())
    }

    /// Creates ONE profile of `ptype` for an order and applies `update` / `event` to it in
    /// the same transaction as its insertion, so no concurrent order can claim it as
    /// Available in between. Returns the reserved profile.
    pub async fn generate_reserved(
        &self,
        ptype: &ProfileType,
        operator: Option<&str>,
        update: &ProfileUpdate,
        event: &EventRecord,
    ) -> Result<Profile, GenerateError> {
        self.generate_inner(ptype, operator, 1, Some((update, event)))
            .await?
            .pop()
            .and_then(|(_, p)| p)
            .ok_or_else(|| GenerateError::Exhausted(ptype.name.clone()))
    }

    async fn generate_inner(
        &self,
        ptype: &ProfileType,
        operator: Option<&str>,
        count: usize,
        reserve: Option<(&ProfileUpdate, &EventRecord)>,
    ) -> Result<Vec<(String, Option<Profile>)>, GenerateError> {
        let Some((policy, g)) = self.generation_policy(&ptype.name).await? else {
            return Err(GenerateError::NoPolicy(ptype.name.clone()));
        };
        let op = match &g.op_sealed {
            Some((_, sealed)) => {
                let raw = self.open_sealed(sealed, &op_aad(&ptype.name)).await?;
                let op: [u8; 16] = raw
                    .as_slice()
                    .try_into()
                    .map_err(|_| GenerateError::Invalid("stored OP is malformed".into()))?;
                Some(Zeroizing::new(op))
            }
            None => None,
        };
        let compiled = self.profile_type(&ptype.name).await?;
        let mut made = Vec::with_capacity(count);
        let mut skips = 0usize;
        while made.len() < count {
            let Some(index) = self.store().take_generator_index(&ptype.name).await? else {
                if made.is_empty() {
                    return Err(GenerateError::Exhausted(ptype.name.clone()));
                }
                tracing::warn!(profile_type = %ptype.name, generated = made.len(), "generation range exhausted");
                return Ok(made);
            };
            let index = u64::try_from(index).unwrap_or(u64::MAX);
            let (Some(iccid), Some(imsi)) = (policy.iccid_at(index), policy.imsi_at(index)) else {
                return Err(GenerateError::Invalid(
                    "the range does not fit its digits".into(),
                ));
            };
            let ki = Zeroizing::new(random::<16>()?);
            let opc = match &op {
                Some(op) => Zeroizing::new(saip::milenage::compute_opc(&ki, op).map_err(|_| {
                    GenerateError::Invalid("Milenage OPc derivation failed".into())
                })?),
                None => Zeroizing::new(random::<16>()?),
            };
            let pin_len = usize::from(policy.pin_digits);
            let secrets = SubscriberSecrets {
                mnc_len: policy.mnc_len,
                ki: hex_secret(&*ki),
                operator_key: OperatorKey::Opc(hex_secret(&*opc)),
                pin1: random_digits(pin_len)?,
                puk1: random_digits(8)?,
                pin2: random_digits(pin_len)?,
                puk2: random_digits(8)?,
                adm1: random_digits(8)?,
                spn: None,
            };
            // The same check as an import: the template must take these values.
            let p = secrets.personalization(&iccid, &imsi);
            compiled
                .template
                .personalize(&p)
                .map_err(|e| FactoryError::Personalize {
                    iccid: iccid.clone(),
                    why: e.to_string(),
                })?;
            let (sealed, dek_id) = self.seal_secrets(&iccid, &imsi, &secrets)?;
            let row = ImportRow {
                secrets: SealedSecrets {
                    iccid: iccid.clone(),
                    imsi: imsi.clone(),
                    dek_id,
                    sealed,
                },
                profile_type: ptype.name.clone(),
                operator_id: operator.map(str::to_owned),
                cc_attempt_limit: ptype.cc_attempt_limit,
                download_attempt_limit: ptype.download_attempt_limit,
            };
            let mut tx = self.store().begin_import().await?;
            let (outcome, why) = match tx.insert_batch(std::slice::from_ref(&row)).await {
                Ok(o) => {
                    let why = format!("{:?}", o.first());
                    (o, why)
                }
                Err(StoreError::Duplicate { key }) => (
                    vec![ImportOutcome::DuplicateIccid],
                    format!("duplicate {key}"),
                ),
                Err(e) => return Err(e.into()),
            };
            if outcome.first() == Some(&ImportOutcome::Inserted) {
                let p = match reserve {
                    Some((update, event)) => Some({
                        // Its creation, in the audit trail like any state change (a profile
                        // generated in bulk is counted in the run's one record instead).
                        let created = smdpp_store::AuditEntry::new(
                            event.actor.clone(),
                            "profile.state",
                            iccid.clone(),
                        )
                        .with_reason("generated")
                        .with_details(serde_json::json!({
                            "from": null,
                            "to": "available",
                            "profileType": ptype.name,
                        }));
                        tx.audit(&created).await?;
                        tx.transition(
                            &iccid,
                            &Expect::state(ProfileState::Available),
                            update,
                            event,
                        )
                        .await?
                    }),
                    None => None,
                };
                tx.commit().await?;
                made.push((iccid, p));
            } else {
                tx.rollback().await?;
                skips += 1;
                tracing::warn!(profile_type = %ptype.name, %iccid, why, "generated ICCID or IMSI already in use; index skipped");
                if skips > MAX_SKIPS {
                    return Err(GenerateError::Invalid(format!(
                        "more than {MAX_SKIPS} ICCIDs/IMSIs of the range of {:?} are already in use",
                        ptype.name
                    )));
                }
            }
        }
        Ok(made)
    }
}
