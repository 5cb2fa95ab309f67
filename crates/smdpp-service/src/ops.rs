//! What the admin listener reports about the server (see `smdpp_server::metrics`):
//! readiness (database reachable, keys loaded), the database gauges refreshed at each
//! scrape, and the status of the keys and certificates for the console.

use std::sync::Arc;

use rsp_pki::Certificate;
use smdpp_server::metrics::{Metrics, OpsProbe};
use smdpp_store::{Store, now_ms};
use time::OffsetDateTime;

use crate::keys::ServerKeys;

/// The server's [`OpsProbe`]: the store and the loaded keys.
#[derive(Clone, Debug)]
pub struct ServerProbe {
    store: Store,
    keys: Arc<ServerKeys>,
}

impl ServerProbe {
    /// A probe over `store` and `keys`.
    pub fn new(store: Store, keys: Arc<ServerKeys>) -> ServerProbe {
        ServerProbe { store, keys }
    }
}

impl OpsProbe for ServerProbe {
    async fn ready(&self) -> Result<(), String> {
        if self.keys.sets.is_empty() {
            return Err("no DPauth/DPpb key set loaded".into());
        }
        self.store
            .ping()
            .await
            .map_err(|e| format!("database unreachable: {e}"))
    }

    async fn refresh(&self, m: &'static Metrics) {
        // A failed query leaves the previous values; the scrape itself still answers.
        if let Ok(counts) = self.store.profile_counts(None).await {
            m.profiles.reset();
            for (state, profile_type, n) in counts {
                m.profiles
                    .with_label_values(&[state.as_str(), profile_type.as_deref().unwrap_or("")])
                    .set(n);
            }
        }
        if let Ok(o) = self.store.outbox_stats().await {
            m.outbox_rows.with_label_values(&["pending"]).set(o.pending);
            m.outbox_rows.with_label_values(&["failed"]).set(o.failed);
            #[allow(clippy::cast_precision_loss)]
            let age = o
                .oldest_pending_at
                .map_or(0.0, |t| (now_ms() - t).max(0) as f64 / 1000.0);
            m.outbox_oldest_age
                .with_label_values(&[] as &[&str])
                .set(age);
        }
        let p = self.store.pool_status();
        m.pool.with_label_values(&["idle"]).set(i64::from(p.idle));
        m.pool
            .with_label_values(&["in_use"])
            .set(i64::from(p.size.saturating_sub(p.idle)));
        m.pool_max.set(i64::from(p.max));
    }
}

/// One certificate the server holds, as the console shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateStatus {
    /// What it is (`CERT.DPauth.ECDSA`, ...).
    pub role: String,
    /// Subject CN, or the whole subject when it has no CN.
    pub subject: String,
    /// Curve of its key.
    pub curve: String,
    /// The SM-DP+ OID of the key set.
    pub smdp_oid: String,
    /// End of validity (`YYYY-MM-DD HH:MM UTC`).
    pub not_after: String,
    /// Days left (negative when expired).
    pub days_left: i64,
    /// Where the private key is kept.
    pub custody: String,
}

/// The DPauth and DPpb certificates of every key set (no key material).
pub fn certificate_status(keys: &ServerKeys) -> Vec<CertificateStatus> {
    let now = OffsetDateTime::now_utc();
    let mut out = Vec::new();
    for set in &keys.sets {
        for (role, der) in [
            ("CERT.DPauth.ECDSA", &set.dpauth_cert),
            ("CERT.DPpb.ECDSA", &set.dppb_cert),
        ] {
            let Ok(cert) = Certificate::from_der(der) else {
                continue;
            };
            let not_after = cert.not_after();
            out.push(CertificateStatus {
                role: role.to_owned(),
                subject: cert
                    .subject_attribute("2.5.4.3")
                    .unwrap_or_else(|| "(no CN)".to_owned()),
                curve: format!("{:?}", set.curve),
                smdp_oid: set.smdp_oid.clone(),
                not_after: format!(
                    "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                    not_after.year(),
                    u8::from(not_after.month()),
                    not_after.day(),
                    not_after.hour(),
                    not_after.minute()
                ),
                days_left: (not_after - now).whole_days(),
                custody: "software (PEM file)".to_owned(),
            });
        }
    }
    out
}
