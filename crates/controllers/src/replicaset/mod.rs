//! The ReplicaSet controller: keeps `spec.replicas` pods that match a ReplicaSet's
//! selector and are controlled by it, adopting matching orphans and releasing pods
//! that stopped matching, and reports what it sees in the ReplicaSet's status.
//!
//! Pods are read from the shared informer (never listed), and changes to them reach
//! their owner through the informer's subscription. Creates and deletes are remembered
//! in [`expectations`] until the informer shows them, so a reconcile that runs before
//! the informer caught up does not create or delete the same pods twice. The Deployment
//! controller drives this one only through `spec.replicas` and the template.

pub(crate) mod events;
mod expectations;
mod ranking;
pub(crate) mod selector;
mod status;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, warn};

use crate::context::{Context, RETRY_AFTER_ERROR};
use crate::error::{is_not_found, KubeContext};
use crate::pod_control::{
    controller_ref, generate_name_prefix, is_active, is_terminating, owner_reference,
    pod_from_template, slow_start_batch,
};
use crate::{Error, Result};
use events::EventSink;
use expectations::{Expectations, Key, Seen};
use status::Failure;

/// At most this many pods are created or deleted by one sync (upstream's
/// `burstReplicas`); the rest follow in the next one.
const BURST: usize = 500;

/// How often a ReplicaSet waiting for the informer is looked at again, in case the
/// event that would wake it never comes.
const EXPECTATIONS_RECHECK: Duration = Duration::from_secs(5);

/// What every reconcile of the ReplicaSet controller shares: the term's context, the
/// expectations of pods not yet seen and the event sink.
struct ReplicaSetController {
    ctx: Arc<Context>,
    expectations: Arc<Expectations>,
    events: EventSink,
}

pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let controller = Controller::new(
        Api::<ReplicaSet>::all(ctx.client.clone()),
        watcher::Config::default(),
    );
    let sets = controller.store();
    let expectations = Arc::new(Expectations::default());
    let (events, drain) = EventSink::new(ctx.clone(), "replicaset-controller");
    let mapper = {
        let expectations = expectations.clone();
        move |pod: Pod| sets_for_pod(&pod, &sets, &expectations)
    };
    let pods = ctx.pods.subscribe();
    let state = Arc::new(ReplicaSetController {
        ctx,
        expectations,
        events,
    });
    let controller = controller
        .watches_stream(pods, mapper)
        .run(reconcile, error_policy, state)
        .for_each(|result| async move {
            if let Err(err) = result {
                debug!(error = %err, "replicaset controller");
            }
        });
    futures::future::join(controller, drain).await;
    Err(Error::Stopped {
        controller: "replicaset".into(),
        reason: "watch ended".into(),
    })
}

/// The ReplicaSets a pod event concerns: its controller, or for an orphan every
/// ReplicaSet of its namespace that would adopt it.
fn sets_for_pod(
    pod: &Pod,
    sets: &Store<ReplicaSet>,
    expectations: &Expectations,
) -> Vec<ObjectRef<ReplicaSet>> {
    let Some(ns) = pod.metadata.namespace.as_deref() else {
        return Vec::new();
    };
    if let Some(owner) = controller_ref(&pod.metadata) {
        if owner.kind != "ReplicaSet" || owner.api_version != "apps/v1" {
            return Vec::new();
        }
        if let Some(name) = pod.metadata.name.as_deref() {
            expectations.observed(&(ns.to_string(), owner.name.clone()), name);
        }
        return vec![ObjectRef::new(&owner.name).within(ns)];
    }
    if is_terminating(pod) {
        return Vec::new();
    }
    sets.state()
        .iter()
        .filter(|rs| rs.metadata.namespace.as_deref() == Some(ns))
        .filter(|rs| rs.spec.as_ref().is_some_and(|s| selects(&s.selector, pod)))
        .map(|rs| ObjectRef::from_obj(rs.as_ref()))
        .collect()
}

/// A ReplicaSet never selects everything, even with an empty selector.
fn selects(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    pod: &Pod,
) -> bool {
    !selector::is_empty(selector) && selector::matches(selector, pod.metadata.labels.as_ref())
}

fn error_policy(rs: Arc<ReplicaSet>, err: &Error, _state: Arc<ReplicaSetController>) -> Action {
    warn!(namespace = rs.namespace().unwrap_or_default(), replicaset = %rs.name_any(), error = %err, "sync failed; retrying");
    Action::requeue(RETRY_AFTER_ERROR)
}

async fn reconcile(rs: Arc<ReplicaSet>, state: Arc<ReplicaSetController>) -> Result<Action> {
    let ns = rs.namespace().unwrap_or_default();
    let key: Key = (ns.clone(), rs.name_any());
    let in_namespace: Vec<Arc<Pod>> = state
        .ctx
        .pods
        .store()
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
        .collect();
    let owned = claim_pods(&rs, &in_namespace, &state).await?;
    let active: Vec<&Pod> = owned
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| is_active(p))
        .collect();

    let by_name: HashMap<&str, &Pod> = in_namespace
        .iter()
        .filter_map(|p| Some((p.metadata.name.as_deref()?, p.as_ref())))
        .collect();
    let synced = state
        .expectations
        .satisfied(&key, |name| match by_name.get(name) {
            None => Seen::Absent,
            Some(pod) => Seen::Present {
                uid: pod.metadata.uid.as_deref().unwrap_or_default(),
                terminating: is_terminating(pod),
            },
        });
    let failure = if synced && rs.metadata.deletion_timestamp.is_none() {
        manage_replicas(&rs, &key, &active, &state).await.err()
    } else {
        None
    };

    let (status, available_in) =
        status::calculate(&rs, &active, failure.as_ref(), jiff::Timestamp::now());
    write_status(&rs, &status, &state).await?;
    if let Some(failure) = failure {
        return Err(Error::Invalid(format!(
            "{} for {}/{}: {}",
            failure.reason, key.0, key.1, failure.message
        )));
    }
    Ok(match available_in {
        Some(after) => Action::requeue(after),
        None if !synced => Action::requeue(EXPECTATIONS_RECHECK),
        None => Action::await_change(),
    })
}

/// The pods this ReplicaSet controls after adopting matching orphans and releasing
/// owned pods that no longer match (upstream's `ClaimPods`).
async fn claim_pods(
    rs: &ReplicaSet,
    in_namespace: &[Arc<Pod>],
    state: &ReplicaSetController,
) -> Result<Vec<Arc<Pod>>> {
    let uid = rs.metadata.uid.as_deref().unwrap_or_default();
    let Some(spec) = rs.spec.as_ref() else {
        return Ok(Vec::new());
    };
    let deleting = rs.metadata.deletion_timestamp.is_some();
    let mut claimed = Vec::new();
    for pod in in_namespace {
        let matches = selects(&spec.selector, pod);
        match controller_ref(&pod.metadata) {
            Some(owner) if owner.uid == uid => {
                if matches {
                    claimed.push(pod.clone());
                } else if !deleting && !is_terminating(pod) {
                    set_pod_owners(pod, owners_without(pod, uid), state).await?;
                }
            }
            None if matches && !deleting && !is_terminating(pod) => {
                let mut owners = pod.metadata.owner_references.clone().unwrap_or_default();
                owners.push(owner_reference(rs));
                if let Some(adopted) = set_pod_owners(pod, Some(owners), state).await? {
                    claimed.push(Arc::new(adopted));
                }
            }
            _ => {}
        }
    }
    Ok(claimed)
}

fn owners_without(
    pod: &Pod,
    uid: &str,
) -> Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>> {
    let rest: Vec<_> = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != uid)
        .cloned()
        .collect();
    (!rest.is_empty()).then_some(rest)
}

/// Replace a pod's owner references, only if the pod is still the version we looked
/// at (uid and resourceVersion preconditions). `None` when the pod is gone.
async fn set_pod_owners(
    pod: &Pod,
    owners: Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
    state: &ReplicaSetController,
) -> Result<Option<Pod>> {
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(
        state.ctx.client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let patch = json!({"metadata": {
        "ownerReferences": owners,
        "uid": pod.metadata.uid,
        "resourceVersion": pod.metadata.resource_version,
    }});
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(pod) => Ok(Some(pod)),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(err).context(format!("updating owners of pod {name}")),
    }
}

async fn manage_replicas(
    rs: &ReplicaSet,
    key: &Key,
    active: &[&Pod],
    state: &ReplicaSetController,
) -> Result<(), Failure> {
    let desired = rs
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(0) as usize;
    let current = active.len();
    if current < desired {
        create_pods(rs, key, (desired - current).min(BURST), state).await
    } else if current > desired {
        delete_pods(rs, key, active, (current - desired).min(BURST), state).await
    } else {
        Ok(())
    }
}

async fn create_pods(
    rs: &ReplicaSet,
    key: &Key,
    count: usize,
    state: &ReplicaSetController,
) -> Result<(), Failure> {
    let Some(template) = rs.spec.as_ref().and_then(|s| s.template.as_ref()) else {
        return Err(Failure {
            reason: "FailedCreate",
            message: "the ReplicaSet has no pod template".into(),
        });
    };
    let (ns, name) = key;
    let pod = pod_from_template(
        template,
        owner_reference(rs),
        ns,
        None,
        Some(generate_name_prefix(name)),
    );
    let api: Api<Pod> = Api::namespaced(state.ctx.client.clone(), ns);
    let reference = rs.object_ref(&());
    let (_, error) = slow_start_batch(count, |_| {
        let (api, pod, reference) = (&api, &pod, &reference);
        async move {
            let created = api.create(&PostParams::default(), pod).await?;
            let pod_name = created.name_any();
            state.expectations.created(key, pod_name.clone());
            state.events.normal(
                reference,
                "SuccessfulCreate",
                "Create",
                format!("Created pod: {pod_name}"),
            );
            Ok::<(), kube::Error>(())
        }
    })
    .await;
    match error {
        None => Ok(()),
        Some(err) => {
            let message = api_message(&err);
            // A namespace being deleted refuses new pods; that is expected, not news.
            if !message.contains("being terminated") {
                state.events.warning(
                    &reference,
                    "FailedCreate",
                    "Create",
                    format!("Error creating: {message}"),
                );
            }
            Err(Failure {
                reason: "FailedCreate",
                message,
            })
        }
    }
}

async fn delete_pods(
    rs: &ReplicaSet,
    key: &Key,
    active: &[&Pod],
    count: usize,
    state: &ReplicaSetController,
) -> Result<(), Failure> {
    let doomed: Vec<&Pod> = ranking::deletion_order(active)
        .into_iter()
        .take(count)
        .collect();
    for pod in &doomed {
        state.expectations.deleting(
            key,
            pod.name_any(),
            pod.metadata.uid.clone().unwrap_or_default(),
        );
    }
    let api: Api<Pod> = Api::namespaced(state.ctx.client.clone(), &key.0);
    let reference = rs.object_ref(&());
    let results = futures::future::join_all(doomed.iter().map(|pod| {
        let name = pod.name_any();
        let api = &api;
        async move {
            let result = api.delete(&name, &DeleteParams::default()).await;
            (name, result)
        }
    }))
    .await;
    let mut failure = None;
    for (name, result) in results {
        match result {
            Ok(_) => state.events.normal(
                &reference,
                "SuccessfulDelete",
                "Delete",
                format!("Deleted pod: {name}"),
            ),
            Err(err) if is_not_found(&err) => {}
            Err(err) => {
                state.expectations.delete_failed(key, &name);
                let message = api_message(&err);
                state.events.warning(
                    &reference,
                    "FailedDelete",
                    "Delete",
                    format!("Error deleting: {message}"),
                );
                failure.get_or_insert(Failure {
                    reason: "FailedDelete",
                    message,
                });
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

async fn write_status(
    rs: &ReplicaSet,
    status: &k8s_openapi::api::apps::v1::ReplicaSetStatus,
    state: &ReplicaSetController,
) -> Result<()> {
    let patch = status::patch(status);
    let current = rs.status.as_ref().map(status::patch);
    if current.as_ref() == Some(&patch) {
        return Ok(());
    }
    let name = rs.name_any();
    let api: Api<ReplicaSet> = Api::namespaced(
        state.ctx.client.clone(),
        &rs.namespace().unwrap_or_default(),
    );
    match api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err).context(format!("updating status of replicaset {name}")),
    }
}

/// The API's own message for a refused request, as upstream quotes it in events.
pub fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}
