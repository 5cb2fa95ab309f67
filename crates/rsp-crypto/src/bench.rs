//! A per-download crypto cost floor for the SM-DP+: the CPU time of the cryptography one
//! profile download needs on the server, measured with [`std::time::Instant`].
//!
//! Per download: 3 signatures (serverSignature1, smdpSignature2, smdpSign), 5 verifications
//! (CERT.EUM, CERT.EUICC, euiccSignature1, euiccSignature2, plus one spare for a CRL or
//! the eUICC's otPK binding), one one-time key pair with ECKA, the Annex G KDF, and SCP03t
//! protection (encrypt + MAC) of a 20 KB profile.

use crate::curve::Curve;
use crate::ecdsa::verify_raw;
use crate::error::CryptoError;
use crate::kdf::derive_session_keys;
use crate::keys::{KeyCustody, SoftwareKey};
use crate::otk::EphemeralKey;
use crate::scp03t::{Scp03tSession, TAG_86};
use std::time::Instant;

/// Signatures per download.
pub const SIGNS: u32 = 3;
/// Verifications per download.
pub const VERIFIES: u32 = 5;
/// Profile size protected per download.
pub const PROFILE_BYTES: usize = 20 * 1024;

/// Median timings in microseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct FloorReport {
    /// The curve measured.
    pub curve: Curve,
    /// Iterations (downloads) measured.
    pub iterations: u32,
    /// Median of one download's total.
    pub per_download_us: f64,
    /// Median of the 3 signatures together.
    pub sign_us: f64,
    /// Median of the 5 verifications together.
    pub verify_us: f64,
    /// Median of one one-time key generation plus ECKA.
    pub otk_ecdh_us: f64,
    /// Median of one KDF.
    pub kdf_us: f64,
    /// Median of SCP03t protection of the 20 KB profile.
    pub scp03t_us: f64,
}

impl FloorReport {
    /// Downloads per second per core implied by the median.
    pub fn downloads_per_second(&self) -> f64 {
        if self.per_download_us > 0.0 {
            1e6 / self.per_download_us
        } else {
            0.0
        }
    }
}

impl std::fmt::Display for FloorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "per-download crypto floor, {} ({} iterations, medians):",
            self.curve, self.iterations
        )?;
        writeln!(f, "  {SIGNS} x sign        {:>9.1} us", self.sign_us)?;
        writeln!(f, "  {VERIFIES} x verify      {:>9.1} us", self.verify_us)?;
        writeln!(f, "  otk + ECKA      {:>9.1} us", self.otk_ecdh_us)?;
        writeln!(f, "  KDF             {:>9.1} us", self.kdf_us)?;
        writeln!(f, "  SCP03t 20 KB    {:>9.1} us", self.scp03t_us)?;
        write!(
            f,
            "  total           {:>9.1} us  (~{:.0} downloads/s/core)",
            self.per_download_us,
            self.downloads_per_second()
        )
    }
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn micros(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e6
}

/// Measure the per-download floor over `iterations` simulated downloads (at least 1).
///
/// The software operations measured cannot fail short of a broken RNG or backend; should
/// that happen, every timing in the report is NaN (use [`try_per_download_floor`] to get the
/// error instead).
pub fn per_download_floor(curve: Curve, iterations: u32) -> FloorReport {
    try_per_download_floor(curve, iterations).unwrap_or(FloorReport {
        curve,
        iterations,
        per_download_us: f64::NAN,
        sign_us: f64::NAN,
        verify_us: f64::NAN,
        otk_ecdh_us: f64::NAN,
        kdf_us: f64::NAN,
        scp03t_us: f64::NAN,
    })
}

/// [`per_download_floor`], reporting a backend failure as an error.
pub fn try_per_download_floor(curve: Curve, iterations: u32) -> Result<FloorReport, CryptoError> {
    let iterations = iterations.max(1);
    let server = SoftwareKey::generate(curve)?;
    let peer = SoftwareKey::generate(curve)?;
    let msg = [0x5Au8; 256];
    let peer_sig = peer.sign(&msg)?;
    let eid = [0x89u8; 16];
    let profile: Vec<u8> = (0..PROFILE_BYTES).map(|i| (i % 251) as u8).collect();
    let euicc_otk = EphemeralKey::generate(curve)?;
    let euicc_otpk = euicc_otk.public_key().to_vec();

    let n = iterations as usize;
    let (mut total, mut sign, mut verify, mut otk, mut kdf, mut scp) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for _ in 0..iterations {
        let t0 = Instant::now();

        let t = Instant::now();
        for _ in 0..SIGNS {
            std::hint::black_box(server.sign(std::hint::black_box(&msg))?);
        }
        sign.push(micros(t));

        let t = Instant::now();
        for _ in 0..VERIFIES {
            verify_raw(
                curve,
                peer.public_key(),
                std::hint::black_box(&msg),
                &peer_sig,
            )?;
        }
        verify.push(micros(t));

        let t = Instant::now();
        let k = EphemeralKey::generate(curve)?;
        std::hint::black_box(k.public_key());
        let shs = k.agree(&euicc_otpk)?;
        otk.push(micros(t));

        let t = Instant::now();
        let keys = derive_session_keys(&shs, 0x88, 0x10, b"hostid01", &eid)?;
        kdf.push(micros(t));

        let t = Instant::now();
        let mut session = Scp03tSession::new(&keys)?;
        std::hint::black_box(session.protect_all(TAG_86, &profile)?);
        scp.push(micros(t));

        total.push(micros(t0));
    }
    Ok(FloorReport {
        curve,
        iterations,
        per_download_us: median(&mut total),
        sign_us: median(&mut sign),
        verify_us: median(&mut verify),
        otk_ecdh_us: median(&mut otk),
        kdf_us: median(&mut kdf),
        scp03t_us: median(&mut scp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_runs_on_both_curves() {
        for curve in Curve::ALL {
            let r = try_per_download_floor(curve, 2).expect("floor");
            assert!(r.per_download_us > 0.0);
            assert!(r.per_download_us >= r.sign_us);
            assert!(r.to_string().contains("SCP03t"));
        }
    }

    /// `cargo test -p rsp-crypto --release -- --ignored --nocapture print_floor`
    #[test]
    #[ignore = "benchmark; run in release"]
    fn print_floor() {
        for curve in Curve::ALL {
            println!("{}", per_download_floor(curve, 300));
        }
    }
}
