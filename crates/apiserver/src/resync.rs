//! Keeping an in-memory view current: rebuild it whenever the store reports a change under
//! a key prefix, from whichever API server made the change. Used for the RBAC policy and
//! the served custom resources.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use tracing::{debug, warn};

use crate::error::ApiResult;
use crate::AppState;

/// After a change, wait this long so a burst (e.g. `kubectl apply` of many objects)
/// causes one rebuild rather than many.
const SETTLE: Duration = Duration::from_millis(20);
/// Pause before watching again after the watch failed.
const RETRY: Duration = Duration::from_millis(500);

/// Call `rebuild` after every burst of changes under `prefix` following `revision`, until
/// shutdown. `rebuild` returns the store revision it read at.
pub fn spawn<F, Fut>(
    state: AppState,
    prefix: &'static str,
    mut revision: i64,
    what: &'static str,
    rebuild: F,
) where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: Future<Output = ApiResult<i64>> + Send,
{
    k3rs_core::task::spawn(async move {
        loop {
            let mut events = match state.store.backend().watch(prefix, revision).await {
                Ok(events) => events,
                Err(err) => {
                    // Typically compaction overtook us: rebuild from scratch, then follow.
                    warn!(error = %err, what, "watch failed; rebuilding");
                    tokio::select! {
                        _ = state.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(RETRY) => {}
                    }
                    match rebuild(state.clone()).await {
                        Ok(rev) => revision = rev,
                        Err(e) => warn!(error = %e, what, "rebuild failed"),
                    }
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    _ = state.shutdown.cancelled() => return,
                    next = events.next() => next,
                };
                match next {
                    Some(Ok(event)) => {
                        revision = revision.max(event.kv.mod_revision);
                        tokio::time::sleep(SETTLE).await;
                        match rebuild(state.clone()).await {
                            Ok(rev) => revision = revision.max(rev),
                            Err(e) => warn!(error = %e, what, "rebuild failed"),
                        }
                        debug!(revision, what, "rebuilt");
                    }
                    // The watch ended (lagging or closed): watch again from where we are.
                    Some(Err(_)) | None => break,
                }
            }
        }
    });
}
