//! Delivery of `core-network` outbox rows: the subscriber of a profile is to be provisioned
//! in (or removed from) the operator's core network through a `CoreNetwork` connector
//! (NOT IN THIS BUILD YET: the osmo-hlr connector is unfinished, so these rows are validated,
//! superseded when a newer one exists, and otherwise retried with an error saying so), at the signal its profile type names (see `smdpp_store`'s `operator` module).
//!
//! Each row carries the desired state of one subscriber (provision, delete or block), never
//! a secret: the Ki and OPc are opened from the sealed subscriber record at delivery time and
//! dropped (zeroized) after the call. A row for which a newer `core-network` row of the same
//! profile exists is superseded (the newer one holds the newer desired state) and is marked
//! delivered without a call, so a provisioning retried after the HLR came back can never undo
//! a later deactivation. The connector's calls are idempotent, so a retry after a lost answer
//! is harmless. Retries: `CoreError::Unavailable` (HLR down, time-out) is
//! retried with the outbox's back-off; a refusal (e.g. the IMSI exists in the HLR with other
//! keys) fails the row at once with the HLR's reason in `last_error`.

use std::time::Duration;

use anyhow::anyhow;
use smdpp_store::{CoreAction, OutboxKind, OutboxRow, Store};

use crate::factory::Factory;
use crate::outbox::PermanentError;

fn permanent(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(PermanentError(msg.into()))
}

/// Delivers one `core-network` row (see the module documentation).
pub(crate) async fn deliver(
    store: &Store,
    factory: Option<&Factory>,
    row: &OutboxRow,
    timeout: Duration,
) -> anyhow::Result<()> {
    let action = CoreAction::from_json(&row.body).map_err(|e| permanent(e.to_string()))?;
    if store
        .newer_outbox_row(OutboxKind::CoreNetwork, &action.iccid, row.seq)
        .await?
    {
        tracing::info!(id = %row.id, iccid = %action.iccid, "core-network call superseded by a newer one");
        return Ok(());
    }
    let name = row
        .target
        .as_deref()
        .ok_or_else(|| permanent("core-network row without a target"))?;
    let Some(cn) = store.get_core_network(name).await? else {
        return Err(permanent(format!(
            "core network {name:?} is not registered"
        )));
    };
    let _ = (factory, timeout, cn);
    Err(anyhow!(
        "core-network connector not available in this build"
    ))
}
