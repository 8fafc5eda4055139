//! Periodic compaction: keeps the newest `retain` revisions of history and drops the
//! rest, so the datastore does not grow without bound. Backend-agnostic; the SQLite
//! backend runs one itself (see `SqliteOptions`), another backend can use
//! [`spawn_compactor`].

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn, Instrument};

use crate::{Backend, Result};

/// Runs `compact(current - retain)` every `interval` until `shutdown` is cancelled.
pub fn spawn_compactor(
    backend: Arc<dyn Backend>,
    interval: Duration,
    retain: i64,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let weak = Arc::downgrade(&backend);
    drop(backend);
    spawn_weak_compactor(weak, interval, retain, shutdown)
}

/// Like [`spawn_compactor`] but does not keep the backend alive: the task ends when the
/// last strong reference goes away. Used by backends that own their compactor.
pub(crate) fn spawn_weak_compactor<B: Backend + ?Sized>(
    backend: Weak<B>,
    interval: Duration,
    retain: i64,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    k3rs_core::task::spawn(
        async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick fires immediately; skip it so opening the store stays fast.
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                let Some(backend) = backend.upgrade() else {
                    return;
                };
                if let Err(error) = compact_once(backend.as_ref(), retain).await {
                    if matches!(error, crate::Error::Closed) {
                        return;
                    }
                    warn!(error = %error, "periodic compaction failed");
                }
            }
        }
        .instrument(tracing::info_span!("store-compactor")),
    )
}

/// One compaction round; returns the revision compacted to, if any.
pub(crate) async fn compact_once<B: Backend + ?Sized>(
    backend: &B,
    retain: i64,
) -> Result<Option<i64>> {
    let current = backend.current_revision().await?;
    let target = current - retain.max(0);
    if target <= backend.compacted_revision().await? {
        return Ok(None);
    }
    backend.compact(target).await?;
    debug!(revision = target, "compacted");
    Ok(Some(target))
}
