//! `smdpp bench factory`: the server-side cost of producing one personalized Bound Profile
//! Package at download time, per profile, in one thread.
//!
//! For each profile the timed path is what an SM-DP+ that personalizes at download time
//! does between "this order is being downloaded" and "here is the BPP":
//!
//! 1. **Open the sealed secrets.** One AES-256-GCM [`Vault::open`] of the profile's sealed
//!    subscriber secrets: the server's own record
//!    ([`SubscriberSecrets::encode`]: MNC length, Ki, OPc, PIN1/PUK1, PIN2/PUK2, ADM1, SPN;
//!    about 120 bytes) with the server's additional data ([`secrets_aad`]), sealed up front
//!    by a vault whose KEK is a [`FileKek`]. Only `open` is timed.
//! 2. **Personalize.** Decode the opened record ([`SubscriberSecrets::decode`]) into a
//!    [`Personalization`], run [`Template::personalize`] on the built-in USIM+ISIM Milenage
//!    template (compiled once, before the clock) and encode the UPP to DER
//!    ([`saip::Upp::encode`]), as `smdpp_service::factory::Factory::upp_for` does.
//! 3. **Bind.** [`build_bpp`] with [`ProfileProtection::SessionKeys`] on P-256, as the
//!    ES9+ GetBoundProfilePackage handler calls it: a fresh otSK.DP.ECKA, ECKA with the
//!    eUICC's one-time key, the Annex G KDF, `smdpSign`, and SCP03t encrypt+MAC of the
//!    ConfigureISDP, StoreMetadata and profile segments.
//!
//! Not timed: generating each profile's identifiers and secrets and sealing them (import
//! work), building the StoreMetadataRequest (the server builds it at AuthenticateClient),
//! the eUICC side (its one-time key is generated once, like
//! [`rsp_crypto::bench::try_per_download_floor`]), and storage. Every profile has distinct
//! ICCID (with a valid Luhn digit), IMSI, Ki, OPc, PINs and TransactionID.
//!
//! The values are deterministic bench data (a SplitMix64 sequence), not keys; they are
//! never printed.
//!
//! ```text
//! let report = smdpp_bench::factory::run_factory_bench(2000)?;
//! println!("{report}");
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rsp_asn1::bpp::{
    ConfigureIsdpRequest, NotificationConfigurationInformation, StoreMetadataRequest,
};
use rsp_asn1::common::Iccid;
use rsp_crypto::bpp::{BppParams, OpenParams, ProfileProtection, build_bpp, open_bpp};
use rsp_crypto::otk::AgreementKey;
use rsp_crypto::{Curve, KeyCustody, SoftwareKey};
use saip::personalize::iccid_with_luhn;
use saip::{OperatorKey, Personalization, SecretText, Template, Upp};
use serde::Serialize;
use smdpp_service::factory::{SubscriberSecrets, secrets_aad};
use smdpp_vault::{FileKek, SealedBlob, Vault};
use zeroize::Zeroizing;

use crate::stats::percentile;

/// The curve of the bench's key set.
pub const CURVE: Curve = Curve::NistP256;
/// hostId of the BPP's control reference template (the server uses the same).
const HOST_ID: &[u8] = b"smdpp";
/// The KEK of the bench vault (a test key; the DEK under it is random per run).
const BENCH_KEK: [u8; 32] = [7u8; 32];
/// The EID bound into the session keys (a fixed test EID: one eUICC downloading).
const EID: [u8; 16] = [
    0x89, 0x04, 0x90, 0x32, 0x12, 0x34, 0x51, 0x23, 0x45, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x35,
];
/// The SM-DP+ address in the notification configuration of the metadata.
const SMDP_ADDRESS: &str = "smdp.example.com";

/// Median and 90th percentile (nearest rank) of one step, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct StepTiming {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
}

impl StepTiming {
    fn from_samples(samples: &mut [Duration]) -> StepTiming {
        samples.sort_unstable();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        StepTiming {
            p50_us: us(percentile(samples, 50.0)),
            p90_us: us(percentile(samples, 90.0)),
        }
    }
}

/// What [`run_factory_bench`] measured: per-profile timings of each step and of the whole,
/// and the sizes of what was produced (those of the last profile; all profiles have the
/// same shape).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FactoryReport {
    /// The curve of the key set (`P-256`).
    pub curve: String,
    /// Profiles produced (timed).
    pub iterations: u32,
    /// Step 1: AES-256-GCM open of the sealed secrets record.
    pub open_secrets: StepTiming,
    /// Step 2: parse the secrets, personalize the template, encode the UPP.
    pub personalize: StepTiming,
    /// Step 3: build the BPP (one-time key, ECKA, KDF, smdpSign, SCP03t).
    pub build_bpp: StepTiming,
    /// Steps 1-3 of one profile, measured as one interval.
    pub total: StepTiming,
    /// Plaintext secrets record, bytes.
    pub secrets_bytes: usize,
    /// Sealed secrets blob (header, nonce, ciphertext, tag), bytes.
    pub sealed_bytes: usize,
    /// Personalized UPP, DER bytes.
    pub upp_bytes: usize,
    /// Bound Profile Package, DER bytes.
    pub bpp_bytes: usize,
}

impl FactoryReport {
    /// Profiles per second on one core at the median total.
    pub fn profiles_per_second(&self) -> f64 {
        if self.total.p50_us > 0.0 {
            1e6 / self.total.p50_us
        } else {
            0.0
        }
    }
}

impl fmt::Display for FactoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "personalized BPP per profile, {} session keys ({} profiles, one thread):",
            self.curve, self.iterations
        )?;
        writeln!(f, "  {:<36} {:>10} {:>10}", "step", "median us", "p90 us")?;
        let rows = [
            ("1. open sealed secrets (AES-GCM)", self.open_secrets),
            ("2. personalize template + DER", self.personalize),
            ("3. build BPP (ECKA, sign, SCP03t)", self.build_bpp),
            ("total", self.total),
        ];
        for (name, t) in rows {
            writeln!(f, "  {name:<36} {:>10.1} {:>10.1}", t.p50_us, t.p90_us)?;
        }
        writeln!(
            f,
            "  ~{:.0} profiles/s/core at the median total",
            self.profiles_per_second()
        )?;
        write!(
            f,
            "  sizes: secrets {} B (sealed {} B), UPP {} B, BPP {} B",
            self.secrets_bytes, self.sealed_bytes, self.upp_bytes, self.bpp_bytes
        )
    }
}

/// Measure `iterations` profiles (at least 1) on a fresh P-256 key set (SK.DPpb.ECDSA and
/// the eUICC's one-time key generated here).
pub fn run_factory_bench(iterations: u32) -> Result<FactoryReport> {
    let keys = BenchKeys::generate()?;
    let (report, last) = run_with(iterations, &keys)?;
    check_last(&keys, &last)?;
    Ok(report)
}

/// Untimed self-check of a run: the eUICC side opens the last BPP (smdpSign, ECKA, KDF,
/// every MAC), which carries the metadata and exactly the UPP personalized in the timed
/// path, and that UPP is the one personalized from that profile's own identifiers and
/// secrets.
fn check_last(keys: &BenchKeys, last: &LastProfile) -> Result<()> {
    let opened = open_bpp(
        &last.bpp_der,
        &OpenParams {
            curve: CURVE,
            dp_pb_public: keys.dp_pb.public_key(),
            euicc_otpk: keys.euicc_ot.public_key(),
            eid: &EID,
            expected_transaction_id: Some(&last.transaction_id),
        },
        AgreementKey::Custody(&keys.euicc_ot),
    )
    .map_err(|e| anyhow!("the BPP does not open: {e}"))?;
    if opened.upp.as_slice() != last.upp_der.as_slice() {
        bail!("the UPP in the BPP differs from the personalized one");
    }
    if opened.store_metadata != last.store_metadata {
        bail!("the StoreMetadataRequest in the BPP differs");
    }
    let inputs = ProfileInputs::new(last.index)?;
    let upp = Upp::decode(&opened.upp).context("decoding the UPP of the BPP")?;
    if upp.iccid()? != inputs.iccid || upp.imsi()? != inputs.imsi {
        bail!("the UPP in the BPP has another ICCID or IMSI");
    }
    let expected = Template::usim_isim_milenage()?
        .personalize(&personalization(
            &inputs.iccid,
            &inputs.imsi,
            &inputs.record,
        )?)?
        .encode();
    if expected != last.upp_der {
        bail!("the personalized UPP is not the one of the profile's secrets");
    }
    Ok(())
}

/// The keys of a run: the SM-DP+'s BPP signing key and the eUICC side (which a test needs
/// to open the BPP again).
struct BenchKeys {
    dp_pb: SoftwareKey,
    /// otSK/otPK.EUICC.ECKA; a custody key so the test can agree with it after the run.
    euicc_ot: SoftwareKey,
}

impl BenchKeys {
    fn generate() -> Result<BenchKeys> {
        Ok(BenchKeys {
            dp_pb: SoftwareKey::generate(CURVE).context("SK.DPpb.ECDSA")?,
            euicc_ot: SoftwareKey::generate(CURVE).context("otSK.EUICC.ECKA")?,
        })
    }
}

/// One profile's inputs, prepared before the clock.
struct Prepared {
    iccid: String,
    imsi: String,
    aad: Vec<u8>,
    sealed: SealedBlob,
    store_metadata: Vec<u8>,
    transaction_id: [u8; 16],
}

/// The last profile produced, for checks.
struct LastProfile {
    index: u32,
    transaction_id: [u8; 16],
    store_metadata: Vec<u8>,
    upp_der: Vec<u8>,
    bpp_der: Vec<u8>,
}

fn run_with(iterations: u32, keys: &BenchKeys) -> Result<(FactoryReport, LastProfile)> {
    let iterations = iterations.max(1);
    let n = iterations as usize;
    let kek = FileKek::from_key(&BENCH_KEK).context("bench KEK")?;
    let vault = Vault::create(Arc::new(kek)).context("bench vault")?;
    let template = Template::usim_isim_milenage().context("built-in template")?;
    let configure_isdp = ConfigureIsdpRequest::default().encode();

    // ---- untimed: each profile's identifiers, sealed secrets and metadata
    let mut secrets_bytes = 0;
    let mut prepared = Vec::with_capacity(n);
    for i in 0..iterations {
        let p = ProfileInputs::new(i)?;
        let aad = secrets_aad(&p.iccid, &p.imsi);
        let sealed = vault
            .seal(&p.record, &aad)
            .context("sealing the secrets record")?;
        secrets_bytes = p.record.len();
        prepared.push(Prepared {
            store_metadata: store_metadata(&p.iccid)?,
            transaction_id: transaction_id(i),
            iccid: p.iccid,
            imsi: p.imsi,
            aad,
            sealed,
        });
    }
    let sealed_bytes = prepared.first().map_or(0, |p| p.sealed.as_bytes().len());

    // ---- timed
    let (mut open_t, mut perso_t, mut bpp_t, mut total_t) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut last = None;
    for (i, p) in (0..iterations).zip(&prepared) {
        let t0 = Instant::now();
        let record = vault
            .open(&p.sealed, &p.aad)
            .context("opening the secrets record")?;
        let t1 = Instant::now();
        let perso = personalization(&p.iccid, &p.imsi, &record)?;
        // Like the server: the package lives in a buffer wiped on drop.
        let upp_der = Zeroizing::new(
            template
                .personalize(&perso)
                .context("personalizing the template")?
                .encode(),
        );
        let t2 = Instant::now();
        let params = BppParams {
            dp_pb: &keys.dp_pb,
            transaction_id: &p.transaction_id,
            euicc_otpk: keys.euicc_ot.public_key(),
            eid: &EID,
            host_id: HOST_ID,
            configure_isdp: &configure_isdp,
            store_metadata: &p.store_metadata,
        };
        let built = build_bpp(
            &params,
            ProfileProtection::SessionKeys { upp: &upp_der },
            None,
        )
        .context("building the BPP")?;
        let t3 = Instant::now();
        open_t.push(t1 - t0);
        perso_t.push(t2 - t1);
        bpp_t.push(t3 - t2);
        total_t.push(t3 - t0);
        drop(perso);
        drop(record);
        if i + 1 == iterations {
            last = Some(LastProfile {
                index: i,
                transaction_id: p.transaction_id,
                store_metadata: p.store_metadata.clone(),
                upp_der: upp_der.to_vec(),
                bpp_der: built.der,
            });
        } else {
            std::hint::black_box(&built.der);
        }
    }
    let last = last.ok_or_else(|| anyhow!("no profile produced"))?;
    let report = FactoryReport {
        curve: CURVE.to_string(),
        iterations,
        open_secrets: StepTiming::from_samples(&mut open_t),
        personalize: StepTiming::from_samples(&mut perso_t),
        build_bpp: StepTiming::from_samples(&mut bpp_t),
        total: StepTiming::from_samples(&mut total_t),
        secrets_bytes,
        sealed_bytes,
        upp_bytes: last.upp_der.len(),
        bpp_bytes: last.bpp_der.len(),
    };
    Ok((report, last))
}

/// The identifiers and the plaintext secrets record of profile `i`.
struct ProfileInputs {
    iccid: String,
    imsi: String,
    /// [`SubscriberSecrets::encode`], as the server seals it at import (wiped on drop).
    record: Zeroizing<Vec<u8>>,
}

impl ProfileInputs {
    fn new(i: u32) -> Result<ProfileInputs> {
        // Test ranges: ICCID 89 49 0099 + 10-digit serial + Luhn (19 digits), IMSI MCC 262
        // MNC 01 + 10-digit MSIN.
        let iccid = iccid_with_luhn(&format!("89490099{i:010}")).context("ICCID")?;
        let imsi = format!("26201{i:010}");
        let mut rng = SplitMix64(0x5EED_FAC7_0000_0000 ^ u64::from(i));
        let text = SecretText::from;
        let ki = text(format!("{:016x}{:016x}", rng.next(), rng.next()));
        let opc = text(format!("{:016x}{:016x}", rng.next(), rng.next()));
        let secrets = SubscriberSecrets {
            mnc_len: 2,
            ki,
            operator_key: OperatorKey::Opc(opc),
            pin1: text(format!("{:04}", rng.next() % 10_000)),
            puk1: text(format!("{:08}", rng.next() % 100_000_000)),
            pin2: text(format!("{:04}", rng.next() % 10_000)),
            puk2: text(format!("{:08}", rng.next() % 100_000_000)),
            adm1: text(format!("{:08}", rng.next() % 100_000_000)),
            spn: Some("Factory Bench".into()),
        };
        Ok(ProfileInputs {
            iccid,
            imsi,
            record: secrets.encode().context("secrets record")?,
        })
    }
}

/// A [`Personalization`] from a profile's identifiers and its opened secrets record, as the
/// server's `Factory::upp_for` makes it.
fn personalization(iccid: &str, imsi: &str, record: &[u8]) -> Result<Personalization> {
    let secrets = SubscriberSecrets::decode(record)
        .ok_or_else(|| anyhow!("the secrets record of {iccid} is malformed"))?;
    Ok(secrets.personalization(iccid, imsi))
}

/// The StoreMetadataRequest of a profile, shaped like the server's.
fn store_metadata(iccid: &str) -> Result<Vec<u8>> {
    let iccid =
        Iccid::from_digits(iccid).ok_or_else(|| anyhow!("ICCID {iccid} not 19/20 digits"))?;
    Ok(StoreMetadataRequest {
        iccid: iccid.0,
        service_provider_name: "Factory Bench".into(),
        profile_name: "Factory Bench Profile".into(),
        icon_type: None,
        icon: None,
        profile_class: Some(2),
        notification_configuration_info: Some(vec![NotificationConfigurationInformation {
            profile_management_operation: rsp_asn1::BitString::from_bits(&[0, 3]),
            notification_address: SMDP_ADDRESS.into(),
        }]),
        profile_owner: None,
        profile_policy_rules: None,
        extensions: Vec::new(),
    }
    .encode())
}

/// A distinct 16-byte TransactionID per profile.
fn transaction_id(i: u32) -> [u8; 16] {
    let mut rng = SplitMix64(0x7A1D_0000_0000_0000 ^ u64::from(i));
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&rng.next().to_be_bytes());
    t[8..].copy_from_slice(&rng.next().to_be_bytes());
    t
}

/// SplitMix64: deterministic, distinct bench values (not a source of keys).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factory_bench_produces_openable_bpps() -> Result<()> {
        let keys = BenchKeys::generate()?;
        let (r, last) = run_with(3, &keys)?;
        assert_eq!(r.iterations, 3);
        for t in [r.open_secrets, r.personalize, r.build_bpp, r.total] {
            assert!(t.p50_us > 0.0 && t.p90_us >= t.p50_us);
        }
        assert!(r.total.p90_us >= r.build_bpp.p50_us.min(r.personalize.p50_us));
        assert!((100..200).contains(&r.secrets_bytes), "{}", r.secrets_bytes);
        assert_eq!(r.sealed_bytes, r.secrets_bytes + smdpp_vault::MIN_BLOB_LEN);
        assert!((1_000..64 * 1024).contains(&r.upp_bytes), "{}", r.upp_bytes);
        // The BPP carries the whole UPP (encrypted, plus MACs), the metadata and the ISCR.
        assert!(
            r.bpp_bytes > r.upp_bytes + 100,
            "{} {}",
            r.bpp_bytes,
            r.upp_bytes
        );
        assert!(r.bpp_bytes < 2 * r.upp_bytes);
        assert!(r.to_string().contains("build BPP"));

        // The eUICC side opens the last BPP and finds the personalized UPP.
        check_last(&keys, &last)?;
        let opened = open_bpp(
            &last.bpp_der,
            &OpenParams {
                curve: CURVE,
                dp_pb_public: keys.dp_pb.public_key(),
                euicc_otpk: keys.euicc_ot.public_key(),
                eid: &EID,
                expected_transaction_id: Some(&last.transaction_id),
            },
            AgreementKey::Custody(&keys.euicc_ot),
        )
        .map_err(|e| anyhow!("open_bpp: {e}"))?;
        assert!(opened.upp.as_slice() == last.upp_der.as_slice());
        assert_eq!(
            Upp::decode(&opened.upp)?.iccid()?,
            ProfileInputs::new(2)?.iccid
        );

        // A BPP bound to another eUICC key does not open.
        let other = SoftwareKey::generate(CURVE)?;
        let wrong = open_bpp(
            &last.bpp_der,
            &OpenParams {
                curve: CURVE,
                dp_pb_public: keys.dp_pb.public_key(),
                euicc_otpk: keys.euicc_ot.public_key(),
                eid: &EID,
                expected_transaction_id: None,
            },
            AgreementKey::Custody(&other),
        );
        assert!(wrong.is_err());
        Ok(())
    }

    #[test]
    fn profiles_are_distinct_and_luhn_valid() -> Result<()> {
        let a = ProfileInputs::new(0)?;
        let b = ProfileInputs::new(1)?;
        saip::personalize::check_iccid(&a.iccid)?;
        saip::personalize::check_iccid(&b.iccid)?;
        assert_ne!(a.iccid, b.iccid);
        assert_ne!(a.imsi, b.imsi);
        assert!(a.record != b.record);
        assert_ne!(transaction_id(0), transaction_id(1));
        Ok(())
    }

    /// `cargo test -p smdpp-bench --release -- --ignored factory --nocapture`
    #[test]
    #[ignore = "benchmark; run in release"]
    fn factory_bench_print() -> Result<()> {
        println!("{}", run_factory_bench(2000)?);
        Ok(())
    }
}
