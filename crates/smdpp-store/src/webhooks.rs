//! Signed webhooks (table `webhooks` of migration `0008_operator.sql`): where billing and
//! provisioning systems are told of profile events.
//!
//! A row is a URL, an event filter (`events`: `*` or a comma-separated list of event names
//! such as `installed,deleted`, stored lower-case without spaces), an optional operator
//! (the webhook then only hears of that operator's profiles), the HMAC secret sealed with
//! the vault (`secret_sealed` under `dek_id`; the store never sees it in the clear) and an
//! optional PEM bundle of CAs trusted for the endpoint. Which names exist, and what each
//! means, is `smdpp-core::webhook`'s business; the store only checks the shape.
//!
//! [`matching_webhook_ids`] (inside a transaction) and [`Store::webhooks_for_event`] say
//! which webhooks an event of a profile goes to.

use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store};
use crate::StoreError;
use crate::model::{EpochMillis, now_ms};
use crate::sql::Sql;

/// Column list of `webhooks`, in the order [`webhook_from_row`] reads.
const WEBHOOK_COLS: &str = "id, url, events, operator_id, dek_id, secret_sealed, ca, created_at";

/// A webhook row (`webhooks`). `Debug` leaves out the sealed secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Its id.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// `*` or a comma-separated list of event names (lower-case, no spaces).
    pub events: String,
    /// Only events of this operator's profiles, when set.
    pub operator_id: Option<String>,
    /// The vault DEK that sealed the secret.
    pub dek_id: i64,
    /// The HMAC secret, sealed with the vault.
    pub secret_sealed: Vec<u8>,
    /// PEM bundle of the CAs trusted for the endpoint's TLS certificate, if it has its own.
    pub ca: Option<String>,
    /// When it was added (set by [`Store::insert_webhook`]).
    pub created_at: EpochMillis,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("operator_id", &self.operator_id)
            .field("dek_id", &self.dek_id)
            .field("ca", &self.ca.is_some())
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

fn webhook_from_row(row: &AnyRow) -> Result<Webhook> {
    Ok(Webhook {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        events: row.try_get("events")?,
        operator_id: row.try_get("operator_id")?,
        dek_id: row.try_get("dek_id")?,
        secret_sealed: row.try_get("secret_sealed")?,
        ca: row.try_get("ca")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Whether `name` can be an event name: 1 to 32 lower-case ASCII letters (so it can be
/// matched with LIKE without escaping).
fn is_event_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 32 && name.bytes().all(|b| b.is_ascii_lowercase())
}

/// `events` in its stored form: `*`, or names of [`is_event_name`] joined by `,`.
fn normalize_events(events: &str) -> Result<String> {
    let events = events.trim();
    if events == "*" {
        return Ok("*".into());
    }
    let mut names: Vec<String> = Vec::new();
    for item in events.split(',') {
        let name = item.trim().to_ascii_lowercase();
        if !is_event_name(&name) {
            return Err(StoreError::InvalidInput(format!(
                "webhook events must be * or a comma-separated list of event names, not {events:?}"
            )));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names.join(","))
}

/// The ids of the webhooks an `event` of a profile of `operator_id` goes to, inside `tx`:
/// `events` is `*` or lists `event`, and `operator_id` is NULL or the profile's (a webhook
/// limited to an operator never hears of a profile without one). By id.
/// [`StoreError::InvalidInput`] when `event` cannot be an event name.
pub(crate) async fn matching_webhook_ids(
    tx: &mut AnyConnection,
    operator_id: Option<&str>,
    event: &str,
) -> Result<Vec<String>> {
    if !is_event_name(event) {
        return Err(StoreError::InvalidInput(format!(
            "not an event name: {event:?}"
        )));
    }
    let mut q =
        Sql::new("SELECT id FROM webhooks WHERE (events = '*' OR (',' || events || ',') LIKE ");
    q.bind(format!("%,{event},%"));
    match operator_id {
        Some(op) => {
            q.push(") AND (operator_id IS NULL OR operator_id = ")
                .bind(op.to_owned())
                .push(")");
        }
        None => {
            q.push(") AND operator_id IS NULL");
        }
    }
    q.push(" ORDER BY id");
    q.build()?
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok(r.try_get("id")?))
        .collect()
}

impl Store {
    /// Adds a webhook (`created_at` is set to now; `events` is checked for its shape and
    /// stored lower-case without spaces or duplicates). [`StoreError::Duplicate`] when the
    /// id is taken, [`StoreError::InvalidInput`] for an empty id or URL or a malformed
    /// event list.
    pub async fn insert_webhook(&self, w: &Webhook) -> Result<()> {
        if w.id.trim().is_empty() || w.url.trim().is_empty() {
            return Err(StoreError::InvalidInput(
                "a webhook needs an id and a URL".into(),
            ));
        }
        let events = normalize_events(&w.events)?;
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q = Sql::new("INSERT INTO webhooks (");
            q.push(WEBHOOK_COLS)
                .push(") VALUES (")
                .bind(w.id.clone())
                .push(", ")
                .bind(w.url.clone())
                .push(", ")
                .bind(events)
                .push(", ")
                .bind(w.operator_id.clone())
                .push(", ")
                .bind(w.dek_id)
                .push(", ")
                .bind(w.secret_sealed.clone())
                .push(", ")
                .bind(w.ca.clone())
                .push(", ")
                .bind(now_ms())
                .push(")");
            q.build()?.execute(turn.conn()).await?;
            Ok(())
        }
        .await;
        turn.finish(result).await
    }

    /// Every webhook, by id.
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        let mut q = Sql::new("SELECT ");
        q.push(WEBHOOK_COLS).push(" FROM webhooks ORDER BY id");
        q.fetch_all(&self.pool, webhook_from_row).await
    }

    /// The webhook `id`, if it exists.
    pub async fn get_webhook(&self, id: &str) -> Result<Option<Webhook>> {
        let mut q = Sql::new("SELECT ");
        q.push(WEBHOOK_COLS)
            .push(" FROM webhooks WHERE id = ")
            .bind(id.to_owned());
        q.fetch_optional(&self.pool, webhook_from_row).await
    }

    /// Removes the webhook `id`; whether it existed. Its queued outbox rows stay (and fail
    /// at delivery: the webhook is gone).
    pub async fn delete_webhook(&self, id: &str) -> Result<bool> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q = Sql::new("DELETE FROM webhooks WHERE id = ");
            q.bind(id.to_owned());
            Ok(q.build()?.execute(turn.conn()).await?.rows_affected() > 0)
        }
        .await;
        turn.finish(result).await
    }

    /// The ids of the webhooks an `event` (e.g. `installed`) of a profile owned by
    /// `operator_id` goes to (the query of `matching_webhook_ids`, which the event insertion
    /// runs inside its own transaction, here in a transaction of its own).
    pub async fn webhooks_for_event(
        &self,
        operator_id: Option<&str>,
        event: &str,
    ) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let ids = matching_webhook_ids(&mut tx, operator_id, event).await;
        tx.rollback().await?;
        ids
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn events_are_normalized() {
        assert_eq!(normalize_events(" * ").unwrap(), "*");
        assert_eq!(
            normalize_events("Installed, deleted,installed").unwrap(),
            "installed,deleted"
        );
    }

    #[test]
    fn rejects_malformed_event_lists() {
        for bad in [
            "",
            "installed,",
            "*,installed",
            "in%stalled",
            "a_b",
            "profile.installed",
        ] {
            assert!(
                matches!(normalize_events(bad), Err(StoreError::InvalidInput(_))),
                "{bad:?}"
            );
        }
    }
}
