//! The operator's systems (migration `0008_operator.sql`): profile generators (profiles
//! created on demand from ICCID/IMSI ranges), the core networks subscribers are provisioned
//! in, and the fan-out of lifecycle signals to them and to webhooks.
//!
//! # Lifecycle signals
//! Every profile event ([`crate::EventRecord`]) is examined, inside the transaction that
//! writes it, for a [`Signal`]: `created` (the profile row is inserted), `released`
//! (Allocated/Linked/Confirmed → Released), `installed` (→ Installed), `enabled`,
//! `disabled` (→ Enabled / → Disabled), and the two that a state alone does not tell, set by
//! the caller with [`crate::EventRecord::with_signal`]: `deleted` (the eUICC reported the
//! deletion) and `deactivated` (the operator deactivated the subscription). For a signal, in
//! the same transaction:
//! - a `core-network` outbox row when the profile's type is bound to a core network
//!   (`type_core_network`): `provision` at the type's `provision_at` signal, `deprovision`
//!   (delete or block, per `on_deactivate`) at `deactivated` and `deleted`. The row holds no
//!   secret: the worker opens the sealed Ki/OPc at delivery time. Its id is
//!   `core:<network>:<event id>`.
//! - one `webhook` outbox row per webhook whose event filter matches and whose operator (if
//!   any) owns the profile, id `webhook:<webhook id>:<event id>`, body the event's facts
//!   ([`EventFacts`]), turned into the signed public body by the worker.
//!
//! So a signal reaches the core network and billing exactly when its state change commits,
//! and never when it rolls back; delivery is the outbox's (durable, retried, at least once,
//! same id on every attempt).

use sqlx::AnyConnection;
use std::fmt;
use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::outbox::{NewOutboxRow, OutboxKind};
use super::{Result, Store};
use crate::StoreError;
use crate::model::{EpochMillis, ProfileState, now_ms};
use crate::sql::Sql;

/// A lifecycle signal for the operator's systems (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// The profile was created (imported, added or generated).
    Created,
    /// The order was released for download.
    Released,
    /// The eUICC reported the installation.
    Installed,
    /// The eUICC reported the profile enabled.
    Enabled,
    /// The eUICC reported the profile disabled.
    Disabled,
    /// The eUICC reported the profile deleted.
    Deleted,
    /// The operator deactivated the subscription.
    Deactivated,
}

impl Signal {
    /// Every signal.
    pub const ALL: [Signal; 7] = [
        Signal::Created,
        Signal::Released,
        Signal::Installed,
        Signal::Enabled,
        Signal::Disabled,
        Signal::Deleted,
        Signal::Deactivated,
    ];

    /// The name (`created`, `released`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Created => "created",
            Signal::Released => "released",
            Signal::Installed => "installed",
            Signal::Enabled => "enabled",
            Signal::Disabled => "disabled",
            Signal::Deleted => "deleted",
            Signal::Deactivated => "deactivated",
        }
    }

    /// The signal a state change carries by itself, if any (`deleted` and `deactivated` are
    /// set explicitly by the caller).
    pub fn of_transition(from: Option<ProfileState>, to: ProfileState) -> Option<Signal> {
        use ProfileState as S;
        match (from, to) {
            (None, _) => Some(Signal::Created),
            (Some(S::Allocated | S::Linked | S::Confirmed), S::Released) => Some(Signal::Released),
            (Some(f), S::Installed) if f != S::Installed => Some(Signal::Installed),
            (Some(f), S::Enabled) if f != S::Enabled => Some(Signal::Enabled),
            (Some(f), S::Disabled) if f != S::Disabled => Some(Signal::Disabled),
            _ => None,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Signal {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        Signal::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| StoreError::InvalidInput(format!("unknown event {s:?}")))
    }
}

// ------------------------------------------------------------------------ generators

/// A profile generator row (`profile_generators`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileGenerator {
    /// The profile type it creates profiles of.
    pub profile_type: String,
    /// The policy as JSON (no secrets; interpreted by the service).
    pub policy: String,
    /// The operator's OP sealed with the vault: `(dek_id, sealed)`.
    pub op_sealed: Option<(i64, Vec<u8>)>,
    /// The next unused index of the range.
    pub next_index: i64,
    /// How many profiles the range holds.
    pub size: i64,
    /// When it was created.
    pub created_at: EpochMillis,
}

/// Where a profile type's subscribers are provisioned (`type_core_network`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeCoreNetwork {
    /// The profile type.
    pub profile_type: String,
    /// The core network's name.
    pub core_network: String,
    /// The signal that provisions: [`Signal::Released`] or [`Signal::Installed`].
    pub provision_at: Signal,
    /// What deactivation and deletion do: `delete` or `block`.
    pub on_deactivate: String,
}

/// A core network (`core_networks`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreNetworkRow {
    /// Name.
    pub name: String,
    /// Connector kind (`osmo-hlr`).
    pub kind: String,
    /// Address of its management interface (host:port).
    pub address: String,
    /// When it was added.
    pub created_at: EpochMillis,
}

fn generator_from_row(row: &AnyRow) -> Result<ProfileGenerator> {
    let dek: Option<i64> = row.try_get("op_dek_id")?;
    let sealed: Option<Vec<u8>> = row.try_get("op_sealed")?;
    Ok(ProfileGenerator {
        profile_type: row.try_get("profile_type")?,
        policy: row.try_get("policy")?,
        op_sealed: dek.zip(sealed),
        next_index: row.try_get("next_index")?,
        size: row.try_get("size")?,
        created_at: row.try_get("created_at")?,
    })
}

fn core_network_from_row(row: &AnyRow) -> Result<CoreNetworkRow> {
    Ok(CoreNetworkRow {
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        address: row.try_get("address")?,
        created_at: row.try_get("created_at")?,
    })
}

fn type_core_from_row(row: &AnyRow) -> Result<TypeCoreNetwork> {
    let at: String = row.try_get("provision_at")?;
    Ok(TypeCoreNetwork {
        profile_type: row.try_get("profile_type")?,
        core_network: row.try_get("core_network")?,
        provision_at: at
            .parse()
            .map_err(|_| StoreError::corrupt("type_core_network.provision_at"))?,
        on_deactivate: row.try_get("on_deactivate")?,
    })
}

impl Store {
    /// Gives `profile_type` a generator (its type must exist). [`StoreError::Duplicate`] when
    /// it already has one.
    pub async fn insert_generator(&self, g: &ProfileGenerator) -> Result<()> {
        if g.size <= 0 || g.next_index < 0 || g.next_index > g.size {
            return Err(StoreError::InvalidInput(
                "generator range must hold at least one profile".into(),
            ));
        }
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let (dek, sealed) = match &g.op_sealed {
                Some((d, s)) => (Some(*d), Some(s.clone())),
                None => (None, None),
            };
            let mut q = Sql::new(
                "INSERT INTO profile_generators (profile_type, policy, op_dek_id, op_sealed, \
                 next_index, size, created_at) VALUES (",
            );
            q.bind(g.profile_type.clone())
                .push(", ")
                .bind(g.policy.clone())
                .push(", ")
                .bind(dek)
                .push(", ")
                .bind(sealed)
                .push(", ")
                .bind(g.next_index)
                .push(", ")
                .bind(g.size)
                .push(", ")
                .bind(now_ms())
                .push(")");
            q.build()?.execute(turn.conn()).await?;
            Ok(())
        }
        .await;
        turn.finish(result).await
    }

    /// The generator of `profile_type`, if it has one.
    pub async fn get_generator(&self, profile_type: &str) -> Result<Option<ProfileGenerator>> {
        let mut q = Sql::new(
            "SELECT profile_type, policy, op_dek_id, op_sealed, next_index, size, created_at \
             FROM profile_generators WHERE profile_type = ",
        );
        q.bind(profile_type.to_owned());
        match q.build()?.fetch_optional(&self.pool).await? {
            Some(r) => Ok(Some(generator_from_row(&r)?)),
            None => Ok(None),
        }
    }

    /// Every generator, by type name.
    pub async fn list_generators(&self) -> Result<Vec<ProfileGenerator>> {
        let q = Sql::new(
            "SELECT profile_type, policy, op_dek_id, op_sealed, next_index, size, created_at \
             FROM profile_generators ORDER BY profile_type",
        );
        q.fetch_all(&self.pool, generator_from_row).await
    }

    /// Takes the next index of `profile_type`'s range with ONE conditional UPDATE, so no two
    /// callers (processes, nodes) ever get the same index. `Ok(None)`: the range is
    /// exhausted; [`StoreError::NotFound`]: the type has no generator.
    pub async fn take_generator_index(&self, profile_type: &str) -> Result<Option<i64>> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q = Sql::new(
                "UPDATE profile_generators SET next_index = next_index + 1 WHERE profile_type = ",
            );
            q.bind(profile_type.to_owned())
                .push(" AND next_index < size RETURNING next_index");
            match q.build()?.fetch_optional(turn.conn()).await? {
                Some(row) => {
                    let next: i64 = row.try_get("next_index")?;
                    Ok(Some(next - 1))
                }
                None => {
                    let mut q =
                        Sql::new("SELECT 1 AS one FROM profile_generators WHERE profile_type = ");
                    q.bind(profile_type.to_owned());
                    match q.build()?.fetch_optional(turn.conn()).await? {
                        Some(_) => Ok(None),
                        None => Err(StoreError::NotFound),
                    }
                }
            }
        }
        .await;
        turn.finish(result).await
    }

    // ------------------------------------------------------------------ core networks

    /// Adds a core network. [`StoreError::Duplicate`] when the name is taken.
    pub async fn insert_core_network(&self, c: &CoreNetworkRow) -> Result<()> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q =
                Sql::new("INSERT INTO core_networks (name, kind, address, created_at) VALUES (");
            q.bind(c.name.clone())
                .push(", ")
                .bind(c.kind.clone())
                .push(", ")
                .bind(c.address.clone())
                .push(", ")
                .bind(now_ms())
                .push(")");
            q.build()?.execute(turn.conn()).await?;
            Ok(())
        }
        .await;
        turn.finish(result).await
    }

    /// A core network by name.
    pub async fn get_core_network(&self, name: &str) -> Result<Option<CoreNetworkRow>> {
        let mut q =
            Sql::new("SELECT name, kind, address, created_at FROM core_networks WHERE name = ");
        q.bind(name.to_owned());
        match q.build()?.fetch_optional(&self.pool).await? {
            Some(r) => Ok(Some(core_network_from_row(&r)?)),
            None => Ok(None),
        }
    }

    /// Every core network, by name.
    pub async fn list_core_networks(&self) -> Result<Vec<CoreNetworkRow>> {
        let q = Sql::new("SELECT name, kind, address, created_at FROM core_networks ORDER BY name");
        q.fetch_all(&self.pool, core_network_from_row).await
    }

    /// Removes a core network no profile type uses. `Ok(false)`: no such network;
    /// [`StoreError::Conflict`] (state `in-use`) when a type is bound to it.
    pub async fn delete_core_network(&self, name: &str) -> Result<bool> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q =
                Sql::new("SELECT profile_type FROM type_core_network WHERE core_network = ");
            q.bind(name.to_owned()).push(" LIMIT 1");
            if q.build()?.fetch_optional(turn.conn()).await?.is_some() {
                return Err(StoreError::Conflict {
                    state: "in-use".into(),
                    version: 0,
                });
            }
            let mut q = Sql::new("DELETE FROM core_networks WHERE name = ");
            q.bind(name.to_owned());
            Ok(q.build()?.execute(turn.conn()).await?.rows_affected() > 0)
        }
        .await;
        turn.finish(result).await
    }

    /// Binds a profile type to a core network (replacing an earlier binding).
    pub async fn set_type_core_network(&self, t: &TypeCoreNetwork) -> Result<()> {
        if !matches!(t.provision_at, Signal::Released | Signal::Installed) {
            return Err(StoreError::InvalidInput(
                "provision_at must be released or installed".into(),
            ));
        }
        if !matches!(t.on_deactivate.as_str(), "delete" | "block") {
            return Err(StoreError::InvalidInput(
                "on_deactivate must be delete or block".into(),
            ));
        }
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q = Sql::new(
                "INSERT INTO type_core_network (profile_type, core_network, provision_at, \
                 on_deactivate) VALUES (",
            );
            q.bind(t.profile_type.clone())
                .push(", ")
                .bind(t.core_network.clone())
                .push(", ")
                .bind(t.provision_at.as_str())
                .push(", ")
                .bind(t.on_deactivate.clone())
                .push(
                    ") ON CONFLICT (profile_type) DO UPDATE SET core_network = excluded.core_network, \
                     provision_at = excluded.provision_at, on_deactivate = excluded.on_deactivate",
                );
            q.build()?.execute(turn.conn()).await?;
            Ok(())
        }
        .await;
        turn.finish(result).await
    }

    /// The core network binding of a profile type, if any.
    pub async fn get_type_core_network(
        &self,
        profile_type: &str,
    ) -> Result<Option<TypeCoreNetwork>> {
        let mut q = Sql::new(
            "SELECT profile_type, core_network, provision_at, on_deactivate \
             FROM type_core_network WHERE profile_type = ",
        );
        q.bind(profile_type.to_owned());
        match q.build()?.fetch_optional(&self.pool).await? {
            Some(r) => Ok(Some(type_core_from_row(&r)?)),
            None => Ok(None),
        }
    }

    /// Whether a row of `kind` for `iccid` was queued after the row `seq` (the later one
    /// carries the newer desired state and supersedes it).
    pub async fn newer_outbox_row(&self, kind: OutboxKind, iccid: &str, seq: i64) -> Result<bool> {
        let mut q = Sql::new("SELECT seq FROM outbox WHERE kind = ");
        q.bind(kind.as_str())
            .push(" AND iccid = ")
            .bind(iccid.to_owned())
            .push(" AND seq > ")
            .bind(seq)
            .push(" LIMIT 1");
        Ok(q.build()?.fetch_optional(&self.pool).await?.is_some())
    }
}

// --------------------------------------------------------------------------- fan-out

/// The facts of one signal, as stored in a `webhook` outbox row (camelCase JSON).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFacts {
    /// `evt-<profile_events.id>`: the same for every webhook of this event.
    pub event_id: String,
    /// The signal.
    pub signal: Signal,
    /// When (ms since the epoch).
    pub at: EpochMillis,
    /// The profile.
    pub iccid: String,
    /// Its IMSI, when the server holds its subscriber data.
    pub imsi: Option<String>,
    /// The EID it is bound to.
    pub eid: Option<String>,
    /// Its type.
    pub profile_type: Option<String>,
    /// Its operator.
    pub operator_id: Option<String>,
    /// Its state after the event.
    pub state: ProfileState,
    /// The event's cause or detail.
    pub detail: Option<String>,
}

impl EventFacts {
    /// The stored JSON.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "eventId": self.event_id,
            "event": self.signal.as_str(),
            "at": self.at,
            "iccid": self.iccid,
            "imsi": self.imsi,
            "eid": self.eid,
            "profileType": self.profile_type,
            "operatorId": self.operator_id,
            "state": self.state.as_str(),
            "detail": self.detail,
        })
        .to_string()
    }

    /// Parses [`EventFacts::to_json`]'s output.
    pub fn from_json(s: &str) -> Result<EventFacts> {
        let bad = || StoreError::corrupt("webhook event facts");
        let v: serde_json::Value = serde_json::from_str(s).map_err(|_| bad())?;
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        Ok(EventFacts {
            event_id: text("eventId").ok_or_else(bad)?,
            signal: text("event").ok_or_else(bad)?.parse().map_err(|_| bad())?,
            at: v["at"].as_i64().ok_or_else(bad)?,
            iccid: text("iccid").ok_or_else(bad)?,
            imsi: text("imsi"),
            eid: text("eid"),
            profile_type: text("profileType"),
            operator_id: text("operatorId"),
            state: text("state").ok_or_else(bad)?.parse().map_err(|_| bad())?,
            detail: text("detail"),
        })
    }
}

/// The action of a `core-network` outbox row (its JSON body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreAction {
    /// `provision`, or `delete` / `block` (deprovision).
    pub action: String,
    /// The profile.
    pub iccid: String,
    /// Its IMSI.
    pub imsi: String,
    /// The signal that caused it.
    pub signal: Signal,
}

impl CoreAction {
    /// The stored JSON.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "action": self.action,
            "iccid": self.iccid,
            "imsi": self.imsi,
            "signal": self.signal.as_str(),
        })
        .to_string()
    }

    /// Parses [`CoreAction::to_json`]'s output.
    pub fn from_json(s: &str) -> Result<CoreAction> {
        let bad = || StoreError::corrupt("core-network action");
        let v: serde_json::Value = serde_json::from_str(s).map_err(|_| bad())?;
        let text = |k: &str| v[k].as_str().map(str::to_owned).ok_or_else(bad);
        Ok(CoreAction {
            action: text("action")?,
            iccid: text("iccid")?,
            imsi: text("imsi")?,
            signal: text("signal")?.parse().map_err(|_| bad())?,
        })
    }
}

/// The outbox rows of `signal` for the profile `iccid` (already updated in `tx`), queued by
/// the event insertion in the same transaction (see the module documentation).
pub(crate) async fn signal_rows(
    tx: &mut AnyConnection,
    event_id: i64,
    iccid: &str,
    signal: Signal,
    detail: Option<String>,
    at: EpochMillis,
) -> Result<Vec<NewOutboxRow>> {
    let mut q = Sql::new(
        "SELECT p.operator_id, p.profile_type, p.eid, p.state, s.imsi FROM profiles p \
         LEFT JOIN profile_secrets s ON s.iccid = p.iccid WHERE p.iccid = ",
    );
    q.bind(iccid.to_owned());
    let Some(row) = q.build()?.fetch_optional(&mut *tx).await? else {
        return Ok(Vec::new());
    };
    let operator_id: Option<String> = row.try_get("operator_id")?;
    let profile_type: Option<String> = row.try_get("profile_type")?;
    let eid: Option<String> = row.try_get("eid")?;
    let state: String = row.try_get("state")?;
    let state: ProfileState = state
        .parse()
        .map_err(|_| StoreError::corrupt("profile state"))?;
    let imsi: Option<String> = row.try_get("imsi")?;
    let mut rows = Vec::new();

    // The core network of the profile's type.
    if let (Some(t), Some(imsi)) = (&profile_type, &imsi) {
        let mut q = Sql::new(
            "SELECT profile_type, core_network, provision_at, on_deactivate \
             FROM type_core_network WHERE profile_type = ",
        );
        q.bind(t.clone());
        if let Some(r) = q.build()?.fetch_optional(&mut *tx).await? {
            let binding = type_core_from_row(&r)?;
            let action = if signal == binding.provision_at {
                Some("provision".to_owned())
            } else if matches!(signal, Signal::Deactivated | Signal::Deleted) {
                Some(binding.on_deactivate.clone())
            } else {
                None
            };
            if let Some(action) = action {
                rows.push(NewOutboxRow {
                    id: format!("core:{}:{event_id}", binding.core_network),
                    operator_id: operator_id.clone(),
                    kind: OutboxKind::CoreNetwork,
                    iccid: Some(iccid.to_owned()),
                    target: Some(binding.core_network.clone()),
                    body: CoreAction {
                        action,
                        iccid: iccid.to_owned(),
                        imsi: imsi.clone(),
                        signal,
                    }
                    .to_json(),
                });
            }
        }
    }

    // Webhooks: the same filter as `Store::webhooks_for_event`.
    let hooks =
        super::webhooks::matching_webhook_ids(tx, operator_id.as_deref(), signal.as_str()).await?;
    if hooks.is_empty() {
        return Ok(rows);
    }
    let body = EventFacts {
        event_id: format!("evt-{event_id}"),
        signal,
        at,
        iccid: iccid.to_owned(),
        imsi,
        eid,
        profile_type,
        operator_id: operator_id.clone(),
        state,
        detail,
    }
    .to_json();
    for id in hooks {
        rows.push(NewOutboxRow {
            id: format!("webhook:{id}:{event_id}"),
            operator_id: operator_id.clone(),
            kind: OutboxKind::Webhook,
            iccid: Some(iccid.to_owned()),
            target: Some(id),
            body: body.clone(),
        });
    }
    Ok(rows)
}
