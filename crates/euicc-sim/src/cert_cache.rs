//! [`CertCache`]: an opt-in cache of SM-DP+ certificate chains a card has already validated,
//! shared by the virtual eUICCs of a load run so that the load generator costs less than the
//! server it measures (`smdpp bench --cache-server-certs`, issue #12).
//!
//! A real card validates CERT.DPauth.ECDSA (AuthenticateServer) and CERT.DPpb.ECDSA
//! (PrepareDownload) against its trusted CIs on every session. That validation
//! ([`rsp_pki::validate_dp_chain`]) is a pure function of three inputs plus the clock: the
//! certificate's bytes, the role, and the CI certificates the card trusts. Everything but the
//! validity periods (DER parsing, the role's certificate profile, the SM-DP+ OID, the CI's
//! signature over the TBS, the CI lookup) gives the same answer for the same inputs, so the
//! cache stores the [`ValidatedDp`] of a successful validation under a key made of exactly
//! those inputs:
//!
//! - the role (a DPauth hit is never a DPpb hit),
//! - every trusted CI certificate of the card, as DER (a card with other CIs never hits an
//!   entry validated for another trust store),
//! - the certificate's exact DER bytes (a certificate that differs in any byte, re-encoded,
//!   re-signed or forged, is a miss and is validated in full).
//!
//! On a hit the time-dependent checks are done again (the certificate's and its CI's
//! validity at the current time), so a cached certificate that expires is refused exactly as
//! without the cache. Failures are never cached: a refused certificate is validated in full
//! every time it is presented. The server's signatures made with the certificate's key
//! (serverSignature1, smdpSignature2, smdpSign) are not cached at all: the card verifies
//! them on every session with the public key of the (cached) certificate.
//!
//! The default card has no cache ([`crate::Euicc::set_cert_cache`] attaches one); a real
//! card may keep such state too, but the default virtual device does every check each time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rsp_pki::{DpRole, PkiError, TrustStore, ValidatedDp};
use time::OffsetDateTime;

/// Validated SM-DP+ certificates shared by several virtual eUICCs (cheap to clone: one
/// shared map). See the [module documentation](self) for what is and is not cached.
#[derive(Clone, Debug, Default)]
pub struct CertCache {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: Mutex<HashMap<Vec<u8>, Arc<ValidatedDp>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Counters of a [`CertCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CertCacheStats {
    /// Validations answered from the cache (validity re-checked).
    pub hits: u64,
    /// Validations done in full (first sight of a certificate, or a refused one).
    pub misses: u64,
    /// Distinct (role, trust store, certificate) entries held.
    pub entries: usize,
}

/// The part of a cache key that identifies a card's trust store: every trusted CI
/// certificate's DER, each prefixed with its length. Computed once per card.
pub fn trust_key(trust: &TrustStore) -> Vec<u8> {
    let mut out = Vec::new();
    for ci in trust.iter() {
        let der = ci.der();
        out.extend_from_slice(&(der.len() as u64).to_be_bytes());
        out.extend_from_slice(der);
    }
    out
}

fn role_byte(role: DpRole) -> u8 {
    match role {
        DpRole::Auth => 1,
        DpRole::Pb => 2,
        DpRole::Tls => 3,
    }
}

impl CertCache {
    /// An empty cache.
    pub fn new() -> CertCache {
        CertCache::default()
    }

    /// Hits, misses and entries so far.
    pub fn stats(&self) -> CertCacheStats {
        let entries = self.inner.entries.lock().map(|m| m.len()).unwrap_or(0);
        CertCacheStats {
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
            entries,
        }
    }

    /// [`rsp_pki::validate_dp_chain`] of `cert_der` for `role` against `trust` (whose
    /// [`trust_key`] is `trust_id`) at `now`, answered from the cache when these exact bytes
    /// were validated before for this role and trust store; the validity periods of the
    /// certificate and of its CI are then checked again at `now`.
    pub fn validate_dp_chain(
        &self,
        trust: &TrustStore,
        trust_id: &[u8],
        cert_der: &[u8],
        role: DpRole,
        now: OffsetDateTime,
    ) -> Result<ValidatedDp, PkiError> {
        let mut key = Vec::with_capacity(1 + 8 + trust_id.len() + cert_der.len());
        key.push(role_byte(role));
        key.extend_from_slice(&(trust_id.len() as u64).to_be_bytes());
        key.extend_from_slice(trust_id);
        key.extend_from_slice(cert_der);
        let cached = self
            .inner
            .entries
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned());
        if let Some(dp) = cached {
            // The CI is in `trust` (the trust store is part of the key); look it up anyway.
            let ci_valid = trust.get(&dp.ci_ski).is_some_and(|ci| ci.is_valid_at(now));
            if ci_valid && dp.cert.is_valid_at(now) {
                self.inner.hits.fetch_add(1, Ordering::Relaxed);
                return Ok((*dp).clone());
            }
            // Expired or not yet valid: the full validation gives the exact error.
        }
        self.inner.misses.fetch_add(1, Ordering::Relaxed);
        let dp = rsp_pki::validate_dp_chain(trust, cert_der, role, now)?;
        if let Ok(mut m) = self.inner.entries.lock() {
            m.insert(key, Arc::new(dp.clone()));
        }
        Ok(dp)
    }
}
