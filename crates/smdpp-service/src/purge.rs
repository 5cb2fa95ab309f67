//! The periodic purge started by [`crate::assembly::run`]: deletes expired RSP sessions
//! ([`Store::purge_expired`]) and ES2+ functionCallIdentifier records older than the replay
//! window ([`Store::purge_es2_calls`]), so that neither table grows without bound.
//!
//! It runs once when started and then every [`Limits::purge_interval`]
//! (see [`crate::config::Limits`]), logs what it deleted, and stops with the server.

use std::time::Duration;

use smdpp_store::{Store, StoreError, now_ms};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

#[cfg(doc)]
use crate::config::Limits;

/// What one purge deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    /// Expired RSP sessions deleted.
    pub sessions: u64,
    /// ES2+ call records deleted.
    pub es2_calls: u64,
}

/// Deletes the sessions expired now and the ES2+ call records created more than
/// `es2_call_retention` ago.
pub async fn purge_once(
    store: &Store,
    es2_call_retention: Duration,
) -> Result<PurgeCounts, StoreError> {
    let now = now_ms();
    let sessions = store.purge_expired(now).await?;
    let retention_ms = i64::try_from(es2_call_retention.as_millis()).unwrap_or(i64::MAX);
    let es2_calls = store
        .purge_es2_calls(now.saturating_sub(retention_ms))
        .await?;
    Ok(PurgeCounts {
        sessions,
        es2_calls,
    })
}

/// The running purge task; [`PurgeTask::stop`] ends it.
#[derive(Debug)]
pub struct PurgeTask {
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl PurgeTask {
    /// Starts purging `store` every `interval` (the first run is immediate). A zero
    /// `interval` disables purging: nothing is started.
    pub fn spawn(store: Store, interval: Duration, es2_call_retention: Duration) -> PurgeTask {
        if interval.is_zero() {
            tracing::info!("periodic purge disabled (interval 0)");
            return PurgeTask {
                stop: None,
                handle: None,
            };
        }
        let (stop, mut stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticks.tick() => {}
                }
                match purge_once(&store, es2_call_retention).await {
                    Ok(c) if c.sessions > 0 || c.es2_calls > 0 => tracing::info!(
                        sessions = c.sessions,
                        es2_calls = c.es2_calls,
                        "purged expired sessions and old ES2+ call records"
                    ),
                    Ok(_) => tracing::debug!("purge: nothing to delete"),
                    Err(e) => tracing::warn!(error = %e, "purge failed; retrying next interval"),
                }
            }
        });
        PurgeTask {
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Stops the task, after the purge in progress (if any) has finished.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take()
            && let Err(e) = handle.await
        {
            tracing::warn!(error = %e, "purge task ended abnormally");
        }
    }
}
