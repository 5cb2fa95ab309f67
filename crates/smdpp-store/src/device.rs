//! What eUICCs report about installed profiles (migration `0006_remote.sql`): the per-profile
//! notification sequence guard (`profile_device`) and the capabilities each eUICC announced
//! (`euicc_capabilities`).
//!
//! A notification from an eUICC (SGP.22 section 3.5: enable, disable, delete; v3 RPM
//! results) moves the profile's state through [`Store::apply_device_report`]: in ONE
//! transaction the profile row is locked, its EID checked, the report's seqNumber compared
//! with the highest one applied so far, and the transition, its event, its outbox rows and
//! the new highest seqNumber written. So a duplicate (same EID and seqNumber) is applied
//! once however often it arrives, and an older notification that arrives after a newer one
//! changes nothing (seqNumbers grow per eUICC, section 5.7.1 / 5.7.3).

use sqlx::Row;

use super::{Result, Store};
use crate::StoreError;
use crate::model::{EpochMillis, EventRecord, Expect, Profile, ProfileState, ProfileUpdate};
use crate::model::{normalize_iccid, now_ms};
use crate::sql::Sql;

/// A state change an eUICC reported for one of its profiles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceReport<'a> {
    /// The profile.
    pub iccid: &'a str,
    /// The eUICC that reported it (from its verified certificate).
    pub eid: &'a str,
    /// The notification's seqNumber.
    pub seq_number: i64,
    /// States the profile may be in for the report to apply.
    pub from: &'a [ProfileState],
    /// The change.
    pub update: &'a ProfileUpdate,
    /// Its event (and outbox rows).
    pub event: &'a EventRecord,
    /// The profile leaves the eUICC's account (reuse after delete): forget its sequence
    /// guard and its cached BPP, so that the next eUICC starts afresh.
    pub forget_device: bool,
}

/// Outcome of [`Store::apply_device_report`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum DeviceOutcome {
    /// Applied; the profile after the change.
    Applied(Box<Profile>),
    /// A report with this or a higher seqNumber was already applied (a duplicate, or an
    /// older notification arriving late): nothing written.
    Stale {
        /// The highest seqNumber applied so far.
        last_seq: i64,
    },
    /// The profile is not bound to this EID: nothing written.
    OtherEid,
    /// The profile is in a state the report does not apply to: nothing written.
    WrongState(ProfileState),
    /// No such profile.
    NotFound,
}

/// What an eUICC announced (EUICCInfo2) in its last authenticated session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EuiccCapabilities {
    /// EID.
    pub eid: String,
    /// Highest SVN it announced, e.g. `2.2.2` or `3.1.0`.
    pub svn: String,
    /// Whether it announced Remote Profile Management support (v3 `rpmSupport`).
    pub rpm_support: bool,
    /// When it was recorded.
    pub updated_at: EpochMillis,
}

impl Store {
    /// Applies an eUICC's report to its profile, once per (profile, EID, seqNumber) and
    /// never backwards (see the module documentation).
    pub async fn apply_device_report(&self, r: &DeviceReport<'_>) -> Result<DeviceOutcome> {
        let iccid = normalize_iccid(r.iccid)?;
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut tx = turn.begin().await?;
            let mut q = Sql::new("SELECT state, eid FROM profiles WHERE iccid = ");
            q.bind(iccid.clone()).push(self.backend.for_update());
            let Some(row) = q.build()?.fetch_optional(&mut *tx).await? else {
                tx.rollback().await?;
                return Ok(DeviceOutcome::NotFound);
            };
            let state: String = row.try_get("state")?;
            let state: ProfileState = state
                .parse()
                .map_err(|_| StoreError::corrupt("profile state"))?;
            let eid: Option<String> = row.try_get("eid")?;
            if eid.as_deref() != Some(r.eid) {
                tx.rollback().await?;
                return Ok(DeviceOutcome::OtherEid);
            }
            let mut q = Sql::new("SELECT eid, last_seq FROM profile_device WHERE iccid = ");
            q.bind(iccid.clone());
            if let Some(row) = q.build()?.fetch_optional(&mut *tx).await? {
                let dev_eid: String = row.try_get("eid")?;
                let last_seq: i64 = row.try_get("last_seq")?;
                if dev_eid == r.eid && last_seq >= r.seq_number {
                    tx.rollback().await?;
                    return Ok(DeviceOutcome::Stale { last_seq });
                }
            }
            if !r.from.contains(&state) {
                tx.rollback().await?;
                return Ok(DeviceOutcome::WrongState(state));
            }
            let profile = match self
                .transition_in(
                    &mut tx,
                    &iccid,
                    &Expect::states(r.from).and_eid_unset_or(r.eid),
                    r.update,
                    r.event,
                )
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    tx.rollback().await?;
                    return Err(e);
                }
            };
            let now = now_ms();
            if r.forget_device {
                for table in ["profile_device", "service_bpp_cache"] {
                    let mut q = Sql::new(&format!("DELETE FROM {table} WHERE iccid = "));
                    q.bind(iccid.clone());
                    q.build()?.execute(&mut *tx).await?;
                }
            } else {
                let mut q = Sql::new(
                    "INSERT INTO profile_device (iccid, eid, last_seq, updated_at) VALUES (",
                );
                q.bind(iccid.clone())
                    .push(", ")
                    .bind(r.eid.to_owned())
                    .push(", ")
                    .bind(r.seq_number)
                    .push(", ")
                    .bind(now)
                    .push(
                        ") ON CONFLICT (iccid) DO UPDATE SET eid = excluded.eid, \
                         last_seq = excluded.last_seq, updated_at = excluded.updated_at",
                    );
                q.build()?.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(DeviceOutcome::Applied(Box::new(profile)))
        }
        .await;
        turn.finish(result).await
    }

    /// The highest seqNumber applied to the profile's state, with the EID that sent it.
    pub async fn device_seq(&self, iccid: &str) -> Result<Option<(String, i64)>> {
        let mut q = Sql::new("SELECT eid, last_seq FROM profile_device WHERE iccid = ");
        q.bind(normalize_iccid(iccid)?);
        q.fetch_optional(&self.pool, |row| {
            Ok((row.try_get("eid")?, row.try_get("last_seq")?))
        })
        .await
    }

    /// Records (replaces) what an eUICC announced.
    pub async fn put_euicc_capabilities(&self, c: &EuiccCapabilities) -> Result<()> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            capabilities_put_query(c)
                .build()?
                .execute(turn.conn())
                .await?;
            Ok(())
        }
        .await;
        turn.finish(result).await
    }

    /// What an eUICC announced last, if it ever authenticated here.
    pub async fn get_euicc_capabilities(&self, eid: &str) -> Result<Option<EuiccCapabilities>> {
        let mut q = Sql::new(
            "SELECT eid, svn, rpm_support, updated_at FROM euicc_capabilities WHERE eid = ",
        );
        q.bind(eid.to_owned());
        q.fetch_optional(&self.pool, |row| {
            Ok(EuiccCapabilities {
                eid: row.try_get("eid")?,
                svn: row.try_get("svn")?,
                rpm_support: row.try_get::<i64, _>("rpm_support")? != 0,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .await
    }
}

/// The upsert of what an eUICC announced (also written inside an ES9+ call's transaction,
/// see [`Store::transition_with_session_and`]).
pub(crate) fn capabilities_put_query(c: &EuiccCapabilities) -> Sql {
    let mut q =
        Sql::new("INSERT INTO euicc_capabilities (eid, svn, rpm_support, updated_at) VALUES (");
    q.bind(c.eid.clone())
        .push(", ")
        .bind(c.svn.clone())
        .push(", ")
        .bind(i64::from(c.rpm_support))
        .push(", ")
        .bind(c.updated_at)
        .push(
            ") ON CONFLICT (eid) DO UPDATE SET svn = excluded.svn, \
             rpm_support = excluded.rpm_support, updated_at = excluded.updated_at",
        );
    q
}
