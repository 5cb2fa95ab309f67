//! SGP.22 v3 Remote Profile Management orders (migration `0007_rpm.sql`): the packages
//! operators ordered for installed profiles, their delivery to an LPA and the eUICC-signed
//! results.
//!
//! Every change of an order that matters to the profile's history (ordered, result) writes a
//! profile event (from and to the profile's current state: RPM does not move the SM-DP+
//! state itself; the eUICC's notifications do) and its outbox rows in the same transaction.

use sqlx::AnyConnection;
use std::fmt;
use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, insert_event};
use crate::StoreError;
use crate::model::{EpochMillis, EventRecord, ProfileState, normalize_iccid, now_ms};
use crate::sql::Sql;

/// Where an RPM order is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RpmOrderState {
    /// Waiting for the LPA to ask.
    Pending,
    /// Handed to the LPA; waiting for the eUICC's result.
    Delivered,
    /// Every command succeeded.
    Executed,
    /// A command failed, or the eUICC refused the package.
    Failed,
    /// Cancelled before the eUICC ran it (by the LPA or the operator).
    Cancelled,
}

impl RpmOrderState {
    /// Every state.
    pub const ALL: [RpmOrderState; 5] = [
        RpmOrderState::Pending,
        RpmOrderState::Delivered,
        RpmOrderState::Executed,
        RpmOrderState::Failed,
        RpmOrderState::Cancelled,
    ];

    /// The stored text form.
    pub const fn as_str(self) -> &'static str {
        match self {
            RpmOrderState::Pending => "pending",
            RpmOrderState::Delivered => "delivered",
            RpmOrderState::Executed => "executed",
            RpmOrderState::Failed => "failed",
            RpmOrderState::Cancelled => "cancelled",
        }
    }

    /// Whether the order is finished (executed, failed or cancelled).
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            RpmOrderState::Executed | RpmOrderState::Failed | RpmOrderState::Cancelled
        )
    }
}

impl fmt::Display for RpmOrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for RpmOrderState {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        RpmOrderState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| StoreError::InvalidInput(format!("unknown RPM order state {s:?}")))
    }
}

/// An RPM order to insert (state pending).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRpmOrder {
    /// Stable id (also the MatchingID an SM-DS event would carry).
    pub id: String,
    /// The ordering operator.
    pub operator_id: String,
    /// The profile the package is for (its first command's ICCID).
    pub iccid: String,
    /// The eUICC the profile is on.
    pub eid: String,
    /// DER of the RpmPackage (SEQUENCE OF RpmCommand).
    pub package: Vec<u8>,
    /// Human-readable list of the commands, e.g. `disable,delete`.
    pub commands: String,
    /// Who asked: `es2`, `cli`, `deactivation:<reason>`, `metadata-update`.
    pub origin: String,
}

/// A stored RPM order.
#[derive(Clone, PartialEq, Eq)]
pub struct RpmOrder {
    /// Id.
    pub id: String,
    /// Operator.
    pub operator_id: String,
    /// ICCID.
    pub iccid: String,
    /// EID.
    pub eid: String,
    /// DER of the RpmPackage.
    pub package: Vec<u8>,
    /// The commands, e.g. `disable,delete`.
    pub commands: String,
    /// Who asked.
    pub origin: String,
    /// State.
    pub state: RpmOrderState,
    /// transactionId (hex) of the session that delivered it.
    pub transaction_id: Option<String>,
    /// Curve name of the eUICC key that must sign the result.
    pub euicc_curve: Option<String>,
    /// That key (PK.EUICC.SIG, uncompressed point).
    pub euicc_key: Option<Vec<u8>>,
    /// The eUICC's LoadRpmPackageResult as received (DER).
    pub result: Option<Vec<u8>>,
    /// Per-command outcome, e.g. `disable: ok; delete: ok`.
    pub result_summary: Option<String>,
    /// Creation time.
    pub created_at: EpochMillis,
    /// Last change.
    pub updated_at: EpochMillis,
    /// Row version (compare-and-set).
    pub version: i64,
}

impl fmt::Debug for RpmOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpmOrder")
            .field("id", &self.id)
            .field("operator_id", &self.operator_id)
            .field("iccid", &self.iccid)
            .field("eid", &self.eid)
            .field("package_len", &self.package.len())
            .field("commands", &self.commands)
            .field("origin", &self.origin)
            .field("state", &self.state)
            .field("transaction_id", &self.transaction_id)
            .field("result_len", &self.result.as_ref().map(Vec::len))
            .field("result_summary", &self.result_summary)
            .field("version", &self.version)
            .finish()
    }
}

const RPM_COLS: &str = "id, operator_id, iccid, eid, package, commands, origin, state, \
     transaction_id, euicc_curve, euicc_key, result, result_summary, created_at, updated_at, \
     version";

fn rpm_from_row(row: &AnyRow) -> Result<RpmOrder> {
    let state: String = row.try_get("state")?;
    Ok(RpmOrder {
        id: row.try_get("id")?,
        operator_id: row.try_get("operator_id")?,
        iccid: row.try_get("iccid")?,
        eid: row.try_get("eid")?,
        package: row.try_get("package")?,
        commands: row.try_get("commands")?,
        origin: row.try_get("origin")?,
        state: state
            .parse()
            .map_err(|_| StoreError::corrupt("RPM order state"))?,
        transaction_id: row.try_get("transaction_id")?,
        euicc_curve: row.try_get("euicc_curve")?,
        euicc_key: row.try_get("euicc_key")?,
        result: row.try_get("result")?,
        result_summary: row.try_get("result_summary")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
    })
}

/// How [`Store::finish_rpm_order`] ends an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpmFinish<'a> {
    /// The order.
    pub id: &'a str,
    /// States it must be in.
    pub from: &'a [RpmOrderState],
    /// When set, the delivering transactionId it must carry.
    pub transaction_id: Option<&'a str>,
    /// New state.
    pub to: RpmOrderState,
    /// The eUICC's result as received.
    pub result: Option<&'a [u8]>,
    /// Per-command outcome.
    pub summary: Option<&'a str>,
    /// The profile event (and its outbox rows) to write with it.
    pub event: &'a EventRecord,
}

impl Store {
    /// Inserts an RPM order with a profile event (the profile keeps its state) and the
    /// event's outbox rows, in one transaction. [`StoreError::NotFound`] when the profile
    /// does not exist.
    pub async fn insert_rpm_order(&self, o: &NewRpmOrder, event: &EventRecord) -> Result<RpmOrder> {
        let iccid = normalize_iccid(&o.iccid)?;
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut tx = turn.begin().await?;
            let state = match profile_state_in(&mut tx, &iccid, self.backend.for_update()).await {
                Ok(s) => s,
                Err(e) => {
                    tx.rollback().await?;
                    return Err(e);
                }
            };
            let now = now_ms();
            let mut q = Sql::new("INSERT INTO rpm_orders (");
            q.push(RPM_COLS).push(") VALUES (");
            q.bind(o.id.clone())
                .push(", ")
                .bind(o.operator_id.clone())
                .push(", ")
                .bind(iccid.clone())
                .push(", ")
                .bind(o.eid.clone())
                .push(", ")
                .bind(o.package.clone())
                .push(", ")
                .bind(o.commands.clone())
                .push(", ")
                .bind(o.origin.clone())
                .push(", ")
                .bind(RpmOrderState::Pending.as_str())
                .push(", NULL, NULL, NULL, NULL, NULL, ")
                .bind(now)
                .push(", ")
                .bind(now)
                .push(", 0) RETURNING ")
                .push(RPM_COLS);
            let row = q.build()?.fetch_one(&mut *tx).await?;
            let order = rpm_from_row(&row)?;
            insert_event(&mut tx, &iccid, now, Some(state), state, event).await?;
            tx.commit().await?;
            Ok(order)
        }
        .await;
        turn.finish(result).await
    }

    /// The RPM order `id`.
    pub async fn get_rpm_order(&self, id: &str) -> Result<Option<RpmOrder>> {
        let mut q = Sql::new("SELECT ");
        q.push(RPM_COLS)
            .push(" FROM rpm_orders WHERE id = ")
            .bind(id.to_owned());
        q.fetch_optional(&self.pool, rpm_from_row).await
    }

    /// The RPM orders of a profile, oldest first.
    pub async fn rpm_orders_for(&self, iccid: &str) -> Result<Vec<RpmOrder>> {
        let mut q = Sql::new("SELECT ");
        q.push(RPM_COLS)
            .push(" FROM rpm_orders WHERE iccid = ")
            .bind(normalize_iccid(iccid)?)
            .push(" ORDER BY created_at, id");
        q.fetch_all(&self.pool, rpm_from_row).await
    }

    /// The RPM order a session delivered.
    pub async fn rpm_order_by_transaction(&self, transaction_id: &str) -> Result<Option<RpmOrder>> {
        let mut q = Sql::new("SELECT ");
        q.push(RPM_COLS)
            .push(" FROM rpm_orders WHERE transaction_id = ")
            .bind(transaction_id.to_owned());
        q.fetch_optional(&self.pool, rpm_from_row).await
    }

    /// The RPM orders waiting for the eUICC `eid` (oldest first; only those for `iccid` when
    /// given): pending ones, and delivered ones last changed before `redeliver_before` (their
    /// session ended without a result).
    pub async fn waiting_rpm_orders(
        &self,
        eid: &str,
        iccid: Option<&str>,
        redeliver_before: EpochMillis,
    ) -> Result<Vec<RpmOrder>> {
        let mut q = Sql::new("SELECT ");
        q.push(RPM_COLS)
            .push(" FROM rpm_orders WHERE eid = ")
            .bind(eid.to_owned())
            .push(" AND (state = ")
            .bind(RpmOrderState::Pending.as_str())
            .push(" OR (state = ")
            .bind(RpmOrderState::Delivered.as_str())
            .push(" AND updated_at < ")
            .bind(redeliver_before)
            .push("))");
        if let Some(i) = iccid {
            q.push(" AND iccid = ").bind(normalize_iccid(i)?);
        }
        q.push(" ORDER BY created_at, id LIMIT 100");
        q.fetch_all(&self.pool, rpm_from_row).await
    }

    /// Marks an order delivered by the session `transaction_id` (compare-and-set on its
    /// version), recording the eUICC key that must sign the result. `false` when the order
    /// changed meanwhile.
    pub async fn rpm_order_delivered(
        &self,
        id: &str,
        version: i64,
        transaction_id: &str,
        euicc_curve: &str,
        euicc_key: &[u8],
    ) -> Result<bool> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q = Sql::new("UPDATE rpm_orders SET state = ");
            q.bind(RpmOrderState::Delivered.as_str())
                .push(", transaction_id = ")
                .bind(transaction_id.to_owned())
                .push(", euicc_curve = ")
                .bind(euicc_curve.to_owned())
                .push(", euicc_key = ")
                .bind(euicc_key.to_vec())
                .push(", updated_at = ")
                .bind(now_ms())
                .push(", version = version + 1 WHERE id = ")
                .bind(id.to_owned())
                .push(" AND version = ")
                .bind(version);
            Ok(q.build()?.execute(turn.conn()).await?.rows_affected() == 1)
        }
        .await;
        turn.finish(result).await
    }

    /// Ends (or re-opens) an order: `from` → `to`, with the result, and the profile event and
    /// its outbox rows, in one transaction. `Ok(None)` when the order is not in one of `from`
    /// (or carries another transactionId): nothing written.
    pub async fn finish_rpm_order(&self, f: &RpmFinish<'_>) -> Result<Option<RpmOrder>> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut tx = turn.begin().await?;
            let now = now_ms();
            let mut q = Sql::new("UPDATE rpm_orders SET state = ");
            q.bind(f.to.as_str())
                .push(", updated_at = ")
                .bind(now)
                .push(", version = version + 1");
            if let Some(r) = f.result {
                q.push(", result = ").bind(r.to_vec());
            }
            if let Some(s) = f.summary {
                q.push(", result_summary = ").bind(s.to_owned());
            }
            q.push(" WHERE id = ")
                .bind(f.id.to_owned())
                .push(" AND state IN (");
            for (i, s) in f.from.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.bind(s.as_str());
            }
            q.push(")");
            if let Some(t) = f.transaction_id {
                q.push(" AND transaction_id = ").bind(t.to_owned());
            }
            q.push(" RETURNING ").push(RPM_COLS);
            let Some(row) = q.build()?.fetch_optional(&mut *tx).await? else {
                tx.rollback().await?;
                return Ok(None);
            };
            let order = rpm_from_row(&row)?;
            let state = match profile_state_in(&mut tx, &order.iccid, "").await {
                Ok(s) => s,
                Err(e) => {
                    tx.rollback().await?;
                    return Err(e);
                }
            };
            insert_event(&mut tx, &order.iccid, now, Some(state), state, f.event).await?;
            tx.commit().await?;
            Ok(Some(order))
        }
        .await;
        turn.finish(result).await
    }
}

/// The state of profile `iccid` inside `tx`.
async fn profile_state_in(tx: &mut AnyConnection, iccid: &str, lock: &str) -> Result<ProfileState> {
    let mut q = Sql::new("SELECT state FROM profiles WHERE iccid = ");
    q.bind(iccid.to_owned()).push(lock);
    let Some(row) = q.build()?.fetch_optional(&mut *tx).await? else {
        return Err(StoreError::NotFound);
    };
    let s: String = row.try_get("state")?;
    s.parse().map_err(|_| StoreError::corrupt("profile state"))
}
