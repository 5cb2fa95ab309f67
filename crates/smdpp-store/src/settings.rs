//! Server-wide settings (table `server_settings` of migration `0006_remote.sql`): small named
//! facts that `smdpp serve` records for the other commands working on the same data, e.g.
//! the public SM-DP+ address printed in Activation Codes.
//!
//! A setting is one row `(name, value, updated_at)`; writing a name again replaces its value.

use sqlx::Row;

use super::{Result, Store};
use crate::StoreError;
use crate::model::now_ms;
use crate::sql::Sql;

/// Longest setting name accepted.
const MAX_NAME: usize = 128;

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(StoreError::InvalidInput(format!(
            "setting name must be 1 to {MAX_NAME} bytes"
        )));
    }
    Ok(())
}

impl Store {
    /// Records `value` under `name`, replacing a previous value (one statement, atomic).
    /// An empty name, or one longer than 128 bytes, is [`StoreError::InvalidInput`].
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<()> {
        check_name(name)?;
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q = Sql::new("INSERT INTO server_settings (name, value, updated_at) VALUES (");
            q.bind(name.to_owned())
                .push(", ")
                .bind(value.to_owned())
                .push(", ")
                .bind(now_ms())
                .push(
                    ") ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
                     updated_at = excluded.updated_at",
                );
            q.build()?.execute(turn.conn()).await?;
            Ok(())
        }
        .await;
        turn.finish(result).await
    }

    /// The value recorded under `name`, `None` if there is none.
    pub async fn get_setting(&self, name: &str) -> Result<Option<String>> {
        check_name(name)?;
        let mut q = Sql::new("SELECT value FROM server_settings WHERE name = ");
        q.bind(name.to_owned());
        q.fetch_optional(&self.pool, |row| Ok(row.try_get("value")?))
            .await
    }
}
