//! What the operators' web console keeps (migration `0009_console.sql`): its users, their
//! log-in sessions, and the read-only aggregates its pages and the `/metrics` endpoint show
//! (profiles by state and type, outbox depth, downloads per minute).
//!
//! The store holds no credential in the clear: a user row has an argon2id hash made by the
//! caller, a session row the SHA-256 of the cookie token. Which role may do what is decided by
//! the console, not here.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store};
use crate::StoreError;
use crate::model::{EpochMillis, ProfileState, now_ms};
use crate::sql::Sql;
use crate::store::outbox::{OUTBOX_COLS, OutboxRow, outbox_from_row};

/// A console user (the password hash is never printed by `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleUser {
    /// Log-in name.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    /// The one operator this user works for; `None` for all.
    pub operator_id: Option<String>,
    /// Creation time.
    pub created_at: EpochMillis,
}

impl std::fmt::Debug for ConsoleUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleUser")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("operator_id", &self.operator_id)
            .finish_non_exhaustive()
    }
}

/// A live console session, with its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSession {
    /// The user.
    pub user: ConsoleUser,
    /// Anti-CSRF token of the session.
    pub csrf: String,
    /// End of the session.
    pub expires_at: EpochMillis,
}

/// Outbox depth, for metrics and the console.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Rows waiting for an attempt.
    pub pending: i64,
    /// Rows given up.
    pub failed: i64,
    /// Creation time of the oldest pending row.
    pub oldest_pending_at: Option<EpochMillis>,
}

/// Connection-pool use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStatus {
    /// Open connections.
    pub size: u32,
    /// Of which idle.
    pub idle: u32,
    /// Configured maximum.
    pub max: u32,
}

fn user_from_row(row: &AnyRow) -> Result<ConsoleUser> {
    Ok(ConsoleUser {
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        role: row.try_get("role")?,
        operator_id: row.try_get("operator_id")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Adds a console user; a taken username is [`StoreError::Duplicate`].
    pub async fn insert_console_user(&self, u: &ConsoleUser) -> Result<()> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q = Sql::new(
                "INSERT INTO console_users (username, password_hash, role, operator_id, created_at) \
                 VALUES (",
            );
            q.bind(u.username.clone())
                .push(", ")
                .bind(u.password_hash.clone())
                .push(", ")
                .bind(u.role.clone())
                .push(", ")
                .bind(u.operator_id.clone())
                .push(", ")
                .bind(u.created_at)
                .push(")");
            q.build()?.execute(turn.conn()).await?;
            Ok(())
        }
        .await;
        turn.finish(result).await
    }

    /// Replaces a user's password hash and ends all their sessions; `false` if no such user.
    pub async fn set_console_password(&self, username: &str, password_hash: &str) -> Result<bool> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut tx = turn.begin().await?;
            let mut q = Sql::new("UPDATE console_users SET password_hash = ");
            q.bind(password_hash.to_owned())
                .push(" WHERE username = ")
                .bind(username.to_owned());
            let changed = q.build()?.execute(&mut *tx).await?.rows_affected() == 1;
            let mut d = Sql::new("DELETE FROM console_sessions WHERE username = ");
            d.bind(username.to_owned());
            d.build()?.execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(changed)
        }
        .await;
        turn.finish(result).await
    }

    /// One user, `None` if unknown.
    pub async fn get_console_user(&self, username: &str) -> Result<Option<ConsoleUser>> {
        let mut q = Sql::new(
            "SELECT username, password_hash, role, operator_id, created_at FROM console_users \
             WHERE username = ",
        );
        q.bind(username.to_owned());
        q.fetch_optional(&self.pool, user_from_row).await
    }

    /// All users, by name.
    pub async fn list_console_users(&self) -> Result<Vec<ConsoleUser>> {
        Sql::new(
            "SELECT username, password_hash, role, operator_id, created_at FROM console_users \
             ORDER BY username",
        )
        .fetch_all(&self.pool, user_from_row)
        .await
    }

    /// Removes a user and their sessions; `false` if there was none.
    pub async fn delete_console_user(&self, username: &str) -> Result<bool> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut tx = turn.begin().await?;
            let mut d = Sql::new("DELETE FROM console_sessions WHERE username = ");
            d.bind(username.to_owned());
            d.build()?.execute(&mut *tx).await?;
            let mut q = Sql::new("DELETE FROM console_users WHERE username = ");
            q.bind(username.to_owned());
            let gone = q.build()?.execute(&mut *tx).await?.rows_affected() == 1;
            tx.commit().await?;
            Ok(gone)
        }
        .await;
        turn.finish(result).await
    }

    /// Records a session (the SHA-256 of its token, hex) and removes sessions that expired
    /// more than a day ago (a recently expired one is kept, so that its browser is told
    /// "session expired" rather than "log in").
    pub async fn insert_console_session(
        &self,
        token_sha256: &str,
        username: &str,
        csrf: &str,
        expires_at: EpochMillis,
    ) -> Result<()> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let now = now_ms();
            let mut tx = turn.begin().await?;
            let mut d = Sql::new("DELETE FROM console_sessions WHERE expires_at <= ");
            d.bind(now - 86_400_000);
            d.build()?.execute(&mut *tx).await?;
            let mut q = Sql::new(
                "INSERT INTO console_sessions (token_sha256, username, csrf, created_at, expires_at) \
                 VALUES (",
            );
            q.bind(token_sha256.to_owned())
                .push(", ")
                .bind(username.to_owned())
                .push(", ")
                .bind(csrf.to_owned())
                .push(", ")
                .bind(now)
                .push(", ")
                .bind(expires_at)
                .push(")");
            q.build()?.execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        turn.finish(result).await
    }

    /// The session whose token hashes to `token_sha256`, with its user, expired or not (the
    /// caller compares [`ConsoleSession::expires_at`], to tell "expired" from "unknown").
    pub async fn get_console_session(&self, token_sha256: &str) -> Result<Option<ConsoleSession>> {
        let mut q = Sql::new(
            "SELECT u.username, u.password_hash, u.role, u.operator_id, u.created_at, s.csrf, \
             s.expires_at FROM console_sessions s JOIN console_users u ON u.username = s.username \
             WHERE s.token_sha256 = ",
        );
        q.bind(token_sha256.to_owned());
        q.fetch_optional(&self.pool, |row| {
            Ok(ConsoleSession {
                user: user_from_row(row)?,
                csrf: row.try_get("csrf")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .await
    }

    /// Ends a session (log-out); `false` if it did not exist.
    pub async fn delete_console_session(&self, token_sha256: &str) -> Result<bool> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q = Sql::new("DELETE FROM console_sessions WHERE token_sha256 = ");
            q.bind(token_sha256.to_owned());
            Ok(q.build()?.execute(turn.conn()).await?.rows_affected() == 1)
        }
        .await;
        turn.finish(result).await
    }

    /// Profiles counted by (state, profile type), optionally of one operator.
    pub async fn profile_counts(
        &self,
        operator_id: Option<&str>,
    ) -> Result<Vec<(ProfileState, Option<String>, i64)>> {
        let mut q = Sql::new("SELECT state, profile_type, COUNT(*) AS n FROM profiles WHERE 1 = 1");
        if let Some(o) = operator_id {
            q.push(" AND operator_id = ").bind(o.to_owned());
        }
        q.push(" GROUP BY state, profile_type ORDER BY state, profile_type");
        q.fetch_all(&self.pool, |row| {
            let state: String = row.try_get("state")?;
            Ok((
                state
                    .parse()
                    .map_err(|_| StoreError::Database(format!("unknown state {state:?}")))?,
                row.try_get("profile_type")?,
                row.try_get("n")?,
            ))
        })
        .await
    }

    /// Outbox depth: pending and failed rows, and the age of the oldest pending one.
    pub async fn outbox_stats(&self) -> Result<OutboxStats> {
        let q = Sql::new(
            "SELECT COALESCE(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
             COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0) AS failed, \
             MIN(CASE WHEN state = 'pending' THEN created_at END) AS oldest FROM outbox",
        );
        let row = q.fetch_optional(&self.pool, |row| {
            Ok(OutboxStats {
                pending: row.try_get("pending")?,
                failed: row.try_get("failed")?,
                oldest_pending_at: row.try_get("oldest")?,
            })
        });
        Ok(row.await?.unwrap_or_default())
    }

    /// Puts a failed outbox row back in the queue for an attempt now (attempts start
    /// again from zero); `false` if the row is not failed (or unknown).
    pub async fn requeue_outbox(&self, id: &str) -> Result<bool> {
        let mut turn = self.write_turn().await?;
        let result: Result<_> = async {
            let mut q = Sql::new(
                "UPDATE outbox SET state = 'pending', attempts = 0, lease_until = NULL, \
                 lease_token = NULL, finished_at = NULL, next_attempt_at = ",
            );
            q.bind(now_ms())
                .push(" WHERE state = 'failed' AND id = ")
                .bind(id.to_owned());
            Ok(q.build()?.execute(turn.conn()).await?.rows_affected() == 1)
        }
        .await;
        turn.finish(result).await
    }

    /// Profile transitions into `to` per minute since `since` (minute start in ms, count),
    /// optionally of one operator's profiles.
    pub async fn transitions_per_minute(
        &self,
        to: ProfileState,
        since: EpochMillis,
        operator_id: Option<&str>,
    ) -> Result<Vec<(EpochMillis, i64)>> {
        let mut q = Sql::new(
            "SELECT (e.at / 60000) * 60000 AS minute, COUNT(*) AS n FROM profile_events e \
             WHERE e.to_state = ",
        );
        q.bind(to.as_str()).push(" AND e.at >= ").bind(since);
        if let Some(o) = operator_id {
            q.push(" AND e.iccid IN (SELECT iccid FROM profiles WHERE operator_id = ")
                .bind(o.to_owned())
                .push(")");
        }
        q.push(" AND (e.from_state IS NULL OR e.from_state <> e.to_state)");
        q.push(" GROUP BY (e.at / 60000) * 60000 ORDER BY minute");
        q.fetch_all(&self.pool, |row| {
            Ok((row.try_get("minute")?, row.try_get("n")?))
        })
        .await
    }

    /// One outbox row by id.
    pub async fn get_outbox_row(&self, id: &str) -> Result<Option<OutboxRow>> {
        let mut q = Sql::new("SELECT ");
        q.push(OUTBOX_COLS)
            .push(" FROM outbox WHERE id = ")
            .bind(id.to_owned());
        q.fetch_optional(&self.pool, outbox_from_row).await
    }

    /// The outbox rows of one profile (callbacks, core network, webhooks), oldest first.
    pub async fn outbox_for_iccid(&self, iccid: &str, limit: u32) -> Result<Vec<OutboxRow>> {
        let mut q = Sql::new("SELECT ");
        q.push(OUTBOX_COLS)
            .push(" FROM outbox WHERE iccid = ")
            .bind(iccid.to_owned())
            .push(" ORDER BY seq LIMIT ")
            .bind(i64::from(limit.clamp(1, 10_000)));
        q.fetch_all(&self.pool, outbox_from_row).await
    }

    /// The ICCID of the profile with this IMSI, if any.
    pub async fn iccid_by_imsi(&self, imsi: &str) -> Result<Option<String>> {
        let mut q = Sql::new("SELECT iccid FROM profile_secrets WHERE imsi = ");
        q.bind(imsi.to_owned());
        q.fetch_optional(&self.pool, |row| Ok(row.try_get("iccid")?))
            .await
    }

    /// Connection-pool use.
    pub fn pool_status(&self) -> PoolStatus {
        PoolStatus {
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }
}
