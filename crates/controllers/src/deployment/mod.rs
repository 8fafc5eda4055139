//! The Deployment controller: turns a Deployment into ReplicaSets, one per pod
//! template, named `<deployment>-<pod-template-hash>`, and moves replicas from the old
//! ones to the new one as the strategy allows (RollingUpdate within maxSurge and
//! maxUnavailable, or Recreate), keeping revision annotations for `kubectl rollout`,
//! pruning old ReplicaSets beyond `revisionHistoryLimit` and reporting progress in the
//! Deployment's status and conditions.
//!
//! It never touches pods itself (the ReplicaSet controller does); it only reads them
//! from the shared informer to know when a Recreate rollout's old pods are gone.
//! ReplicaSets come from this controller's own reflector store, and every write to a
//! ReplicaSet carries the resourceVersion it was computed from, so a decision based on
//! a stale cache fails with a conflict and is retried instead of being applied.

mod revision;
mod rollout;
mod status;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use tracing::{debug, warn};

use crate::context::{Context, RETRY_AFTER_ERROR};
use crate::error::is_conflict;
use crate::replicaset::events::EventSink;
use crate::{Error, Result};

/// A write lost a race with another writer: the event that caused it is already on
/// its way, so look again soon.
const RETRY_AFTER_CONFLICT: Duration = Duration::from_millis(500);

/// What every reconcile of the Deployment controller shares: the term's context, the
/// ReplicaSet cache and the event sink.
struct DeploymentController {
    ctx: Arc<Context>,
    sets: Store<ReplicaSet>,
    events: EventSink,
}

pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let (sets, writer) = reflector::store::<ReplicaSet>();
    let set_changes = watcher::watcher(
        Api::<ReplicaSet>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(writer)
    .touched_objects();
    let (events, drain) = EventSink::new(ctx.clone(), "deployment-controller");
    let state = Arc::new(DeploymentController { ctx, sets, events });
    let controller = Controller::new(
        Api::<Deployment>::all(state.ctx.client.clone()),
        watcher::Config::default(),
    )
    .owns_stream(set_changes)
    .run(reconcile, error_policy, state)
    .for_each(|result| async move {
        if let Err(err) = result {
            debug!(error = %err, "deployment controller");
        }
    });
    futures::future::join(controller, drain).await;
    Err(Error::Stopped {
        controller: "deployment".into(),
        reason: "watch ended".into(),
    })
}

async fn reconcile(d: Arc<Deployment>, state: Arc<DeploymentController>) -> Result<Action> {
    // Deciding without the ReplicaSets would start a second rollout.
    let _ = state.sets.wait_until_ready().await;
    sync::Sync::new(&state, Deployment::clone(&d)).run().await
}

fn error_policy(d: Arc<Deployment>, err: &Error, _state: Arc<DeploymentController>) -> Action {
    if let Error::Kube { source, .. } = err {
        if is_conflict(source) {
            debug!(deployment = %d.name_any(), error = %err, "conflict; retrying");
            return Action::requeue(RETRY_AFTER_CONFLICT);
        }
    }
    warn!(namespace = d.namespace().unwrap_or_default(), deployment = %d.name_any(), error = %err, "sync failed; retrying");
    Action::requeue(RETRY_AFTER_ERROR)
}
