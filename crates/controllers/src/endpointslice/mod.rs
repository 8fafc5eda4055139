//! The EndpointSlice controller: for every Service with a selector, `discovery.k8s.io/v1`
//! EndpointSlices (IPv4, at most 100 endpoints each) listing the selected pods with their
//! ready/serving/terminating conditions, owned by the Service so that the garbage
//! collector removes them with it (upstream deletes nothing itself on Service deletion).
//!
//! The plan is computed by [`plan`] from the watched slices; [`tracker`] keeps a sync from
//! acting on a cache that has not seen the previous sync's writes yet. Pod changes reach
//! a Service through the batched triggers shared with the endpoints controller.

pub(crate) mod plan;
pub(crate) mod tracker;

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{Controller, WatchStreamExt};
use kube::{Api, Resource, ResourceExt};
use tracing::{debug, warn};

use crate::context::{self, Context, RETRY_AFTER_ERROR};
use crate::endpoints::service_pods::{managed_selector, selected_pods, trigger_time};
use crate::endpoints::triggers::{batched, services_for_pod, Membership};
use crate::endpoints::{format_time, BATCH_PERIOD, RETRY_AFTER_CONFLICT};
use crate::error::{is_conflict, is_not_found, Error, KubeContext};
use crate::Result;
use plan::{
    desired_groups, node_zone, slice_labels, Plan, Target, CONTROLLER_NAME, LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
};
use tracker::Tracker;

/// How soon a Service whose slices are not yet caught up in the cache is tried again.
const RETRY_WHILE_STALE: Duration = Duration::from_millis(200);

/// What every reconcile of the EndpointSlice controller shares: the term's context, the
/// cache of our slices, the tracker of our own writes and the Service membership index.
struct EndpointSliceController {
    ctx: Arc<Context>,
    slices: Store<EndpointSlice>,
    tracker: Arc<Tracker>,
    membership: Membership,
}

pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let client = ctx.client.clone();
    let tracker = Arc::new(Tracker::default());
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let ours = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={CONTROLLER_NAME}"));
    let observer = tracker.clone();
    let slice_events = reflector::reflector(
        slices_writer,
        watcher::watcher(Api::<EndpointSlice>::all(client.clone()), ours),
    )
    .default_backoff()
    .inspect_ok(move |event| observer.observe(event))
    .touched_objects();
    let state = Arc::new(EndpointSliceController {
        ctx: ctx.clone(),
        slices,
        tracker,
        membership: Membership::default(),
    });

    let (services, services_writer) = reflector::store::<Service>();
    let forget = state.clone();
    let service_events = reflector::reflector(
        services_writer,
        watcher::watcher(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .inspect_ok(move |event| {
        if let Event::Delete(svc) = event {
            let namespace = svc.namespace().unwrap_or_default();
            forget.membership.forget(&namespace, &svc.name_any());
            forget.tracker.forget(&namespace, &svc.name_any());
        }
    })
    .touched_objects();

    let pod_triggers = {
        let (services, state) = (services.clone(), state.clone());
        batched(
            ctx.pods.subscribe(),
            move |pod| services_for_pod(&services, &state.membership, pod),
            BATCH_PERIOD,
        )
    };
    Controller::for_stream(service_events, services)
        .owns_stream(slice_events)
        .reconcile_on(pod_triggers)
        .run(reconcile, error_policy, state)
        .for_each(|result| async move {
            if let Err(err) = result {
                debug!(error = %err, "endpointslice reconcile");
            }
        })
        .await;
    Ok(())
}

async fn reconcile(service: Arc<Service>, state: Arc<EndpointSliceController>) -> Result<Action> {
    let namespace = service.namespace().unwrap_or_default();
    let name = service.name_any();
    if managed_selector(&service).is_none() {
        // Selector-less Services get user-managed (or mirrored) slices.
        state.membership.forget(&namespace, &name);
        state.tracker.forget(&namespace, &name);
        return Ok(Action::await_change());
    }
    let existing: Vec<Arc<EndpointSlice>> = state
        .slices
        .state()
        .into_iter()
        .filter(|s| {
            s.metadata.namespace.as_deref() == Some(namespace.as_str())
                && s.labels().get(LABEL_SERVICE_NAME) == Some(&name)
        })
        .collect();
    if state.tracker.is_stale(&namespace, &name, &existing) {
        return Ok(Action::requeue(RETRY_WHILE_STALE));
    }
    let all_pods = state.ctx.pods.store().state();
    let pods = selected_pods(&service, &all_pods);
    state.membership.record(
        &namespace,
        &name,
        pods.iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect(),
    );
    let nodes = state.ctx.nodes.store();
    let zone = |node: &str| {
        nodes
            .get(&ObjectRef::<Node>::new(node))
            .and_then(|n| node_zone(n.metadata.labels.as_ref()))
    };
    let desired = desired_groups(&service, &pods, zone);
    let target = Target {
        service: &service,
        labels: slice_labels(&service),
        trigger_time: trigger_time(&service, &pods).map(format_time),
    };
    let plan = plan::plan(&target, &existing, desired);
    if plan.is_empty() {
        return Ok(Action::await_change());
    }
    apply(&state, &service, plan).await?;
    Ok(Action::await_change())
}

/// Creates and updates first, deletes last (so traffic never sees fewer endpoints than
/// necessary), recording every successful write in the tracker.
async fn apply(state: &EndpointSliceController, service: &Service, plan: Plan) -> Result<()> {
    let namespace = service.namespace().unwrap_or_default();
    let name = service.name_any();
    let api: Api<EndpointSlice> = Api::namespaced(state.ctx.client.clone(), &namespace);
    let pp = PostParams::default();
    let creates = plan.create.iter().map(|slice| async {
        let created = api.create(&pp, slice).await?;
        state.tracker.wrote(&namespace, &name, &created);
        Ok::<_, kube::Error>(())
    });
    let updates = plan.update.iter().map(|slice| async {
        let updated = api.replace(&slice.name_any(), &pp, slice).await?;
        state.tracker.wrote(&namespace, &name, &updated);
        Ok(())
    });
    let (created, updated) = futures::join!(
        futures::future::join_all(creates),
        futures::future::join_all(updates)
    );
    let deletes = plan.delete.iter().map(|slice| async {
        let slice_name = slice.name_any();
        match api.delete(&slice_name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(err),
        }
        state.tracker.deleted(&namespace, &name, &slice_name);
        Ok(())
    });
    let deleted = futures::future::join_all(deletes).await;
    let first_error = created
        .into_iter()
        .chain(updated)
        .chain(deleted)
        .find_map(|r| r.err());
    let Some(err) = first_error else {
        return Ok(());
    };
    let transient = is_conflict(&err)
        || is_not_found(&err)
        || matches!(&err, kube::Error::Api(s) if s.code == 403);
    if !transient {
        let recorder = state.ctx.recorder("endpoint-slice-controller");
        let note = format!("Error updating Endpoint Slices for Service {namespace}/{name}: {err}");
        context::publish(
            &recorder,
            &service.object_ref(&()),
            true,
            "FailedToUpdateEndpointSlices",
            "Sync",
            note,
        )
        .await;
    }
    Err(err).context(format!("syncing endpointslices of {namespace}/{name}"))
}

fn error_policy(
    _service: Arc<Service>,
    err: &Error,
    _state: Arc<EndpointSliceController>,
) -> Action {
    match err {
        Error::Kube { source, .. } if is_conflict(source) || is_not_found(source) => {
            Action::requeue(RETRY_AFTER_CONFLICT)
        }
        _ => {
            warn!(error = %err, "endpointslice sync failed; retrying");
            Action::requeue(RETRY_AFTER_ERROR)
        }
    }
}
