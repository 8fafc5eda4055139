//! The scheduler (`default-scheduler`): assigns each pending pod that names it (or no
//! scheduler) to a node, as kube-scheduler does, by POSTing a `Binding`.
//!
//! One task owns all scheduling state: the [`cache::Cache`] of nodes and placed pods
//! (fed by the shared Pod and Node informers, never by LISTs), and the [`queue::Queue`].
//! Decisions are made one pod at a time in that task, so two pods cannot both take the
//! last slot of a node; the chosen node is *assumed* at once and the Binding is sent by a
//! separate task, with up to [`MAX_BINDINGS_IN_FLIGHT`] at a time, which is where the API
//! round trips go. A pod that fits nowhere gets `PodScheduled=False` (`Unschedulable`)
//! and a `FailedScheduling` event with upstream's message, and waits in the queue until
//! the cluster changes.
//!
//! Not done here: preemption (the message says no victims were found), volume topology,
//! image locality, namespace selectors of affinity terms with labels, and the
//! `SchedulingGated` condition (gated pods simply wait).

mod cache;
mod incoming;
mod predicates;
mod queue;
mod resources;
mod scoring;

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use serde_json::json;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use crate::context::{publish, Context, Recorder};
use crate::error::is_not_found;
use crate::{Error, Result};
use cache::{pod_key, Cache, PodInfo};
use incoming::{Incoming, Topology};
use queue::Queue;

/// The name pods ask for in `spec.schedulerName` (the API defaults it).
pub const SCHEDULER_NAME: &str = "default-scheduler";
/// Bindings sent concurrently; decisions stay sequential.
pub const MAX_BINDINGS_IN_FLIGHT: usize = 32;

pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let (services, services_writer) = reflector::store::<Service>();
    let services_api: Api<Service> = Api::all(ctx.client.clone());
    let services_driver = reflector::reflector(
        services_writer,
        watcher::watcher(services_api, watcher::Config::default()).default_backoff(),
    )
    .for_each(|_| futures::future::ready(()));
    let mut services_driver = std::pin::pin!(services_driver);

    // Subscribe before reading the stores so that no change falls between the two.
    let mut pods = ctx.pods.subscribe().boxed();
    let mut nodes = ctx.nodes.subscribe().boxed();
    let mut scheduler = Scheduler::new(ctx.clone(), services);
    // Every node and placed pod is accounted for before the first decision; the
    // subscriptions replay the same objects, which changes nothing.
    for node in ctx.nodes.store().state() {
        scheduler.on_node(&node);
    }
    for pod in ctx.pods.store().state() {
        scheduler.on_pod(&pod);
    }
    info!(nodes = scheduler.cache.nodes.len(), "scheduler started");

    let (results_tx, mut results) = mpsc::unbounded_channel();
    let in_flight = Arc::new(Semaphore::new(MAX_BINDINGS_IN_FLIGHT));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = &mut services_driver => return Err(stopped("the Service watch ended")),
            pod = pods.next() => match pod {
                Some(Ok(pod)) => scheduler.on_pod(&pod),
                Some(Err(_)) => {}
                None => return Err(stopped("the pod informer ended")),
            },
            node = nodes.next() => match node {
                Some(Ok(node)) => scheduler.on_node(&node),
                Some(Err(_)) => {}
                None => return Err(stopped("the node informer ended")),
            },
            Some(result) = results.recv() => scheduler.on_binding_result(result),
            _ = tick.tick() => scheduler.queue.release_due(Instant::now()),
            Ok(permit) = in_flight.clone().acquire_owned(), if scheduler.queue.has_active() => {
                scheduler.schedule_one(permit, &results_tx);
            }
        }
    }
}

fn stopped(reason: &str) -> Error {
    Error::Stopped {
        controller: "scheduler".into(),
        reason: reason.into(),
    }
}

/// How a Binding went, reported back to the scheduling task.
struct BindingResult {
    key: String,
    node: String,
    error: Option<kube::Error>,
}

struct Scheduler {
    ctx: Arc<Context>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    services: Store<Service>,
    recorder: Recorder,
    cache: Cache,
    queue: Queue,
    /// Rotates among equally scored nodes.
    turn: usize,
}

impl Scheduler {
    fn new(ctx: Arc<Context>, services: Store<Service>) -> Scheduler {
        Scheduler {
            pods: ctx.pods.store(),
            nodes: ctx.nodes.store(),
            recorder: ctx.recorder(SCHEDULER_NAME),
            services,
            ctx,
            cache: Cache::default(),
            queue: Queue::default(),
            turn: 0,
        }
    }

    /// A pod changed (or was deleted): bring the cache and queue in line with the pod's
    /// current state in the store, which may be newer than the event.
    fn on_pod(&mut self, seen: &Pod) {
        let key = pod_key(seen);
        let reference = ObjectRef::new(seen.metadata.name.as_deref().unwrap_or_default())
            .within(seen.metadata.namespace.as_deref().unwrap_or_default());
        match self.pods.get(&reference) {
            Some(pod) if !is_finished(&pod) => match assigned_node(&pod) {
                Some(node) => self.pod_placed(&key, &pod, node),
                None => self.pod_pending(&key, &pod),
            },
            _ => self.pod_gone(&key),
        }
    }

    fn pod_gone(&mut self, key: &str) {
        self.queue.remove(key);
        if self.cache.forget(key).is_some() {
            // Freed resources, ports or anti-affinity may let a waiting pod fit.
            self.queue.wake_all();
            self.queue.release_due(Instant::now());
        }
    }

    fn pod_placed(&mut self, key: &str, pod: &Pod, node: &str) {
        self.queue.remove(key);
        if let Some(placement) = self.cache.placement(key) {
            let unchanged = placement.node == node
                && Some(&placement.info.uid) == pod.metadata.uid.as_ref()
                && Some(&placement.info.labels)
                    == pod.metadata.labels.as_ref().or(Some(&BTreeMap::new()));
            if unchanged {
                self.cache.confirm(key);
                return;
            }
        }
        self.cache.place(Arc::new(PodInfo::new(pod)), node, false);
        self.queue.wake_pod_affinity();
    }

    fn pod_pending(&mut self, key: &str, pod: &Pod) {
        if !waits_for_us(pod) {
            self.queue.remove(key);
            return;
        }
        if let Some(placement) = self.cache.placement(key) {
            if placement.assumed && Some(&placement.info.uid) == pod.metadata.uid.as_ref() {
                return; // Its binding is on the way.
            }
            self.cache.forget(key);
        }
        match self.queue.waiting_fingerprint(key) {
            Some(before) if before != fingerprint(pod) => {
                self.queue.wake(key);
                self.queue.release_due(Instant::now());
            }
            Some(_) => {}
            None => self.queue.add(key),
        }
    }

    fn on_node(&mut self, seen: &Node) {
        let name = seen.metadata.name.clone().unwrap_or_default();
        match self.nodes.get(&ObjectRef::new(&name)) {
            Some(node) => {
                if self.cache.set_node(&node) {
                    self.queue.wake_all();
                    self.queue.release_due(Instant::now());
                }
            }
            None => self.cache.remove_node(&name),
        }
    }

    /// Take the next pod from the queue, pick its node, assume it there and send the
    /// Binding; or report why it fits nowhere.
    fn schedule_one(
        &mut self,
        permit: OwnedSemaphorePermit,
        results: &mpsc::UnboundedSender<BindingResult>,
    ) {
        let Some(key) = self.queue.pop() else { return };
        let Some(pod) = self.pending_pod(&key) else {
            self.queue.remove(&key);
            return;
        };
        let incoming = Incoming::new(&pod, self.service_selectors(&pod));
        let topology = Topology::new(&incoming, &self.cache);
        let mut feasible = Vec::new();
        let mut failures = Vec::new();
        for node in self.cache.nodes.values().filter(|n| n.facts.is_some()) {
            let reasons = predicates::filter(&incoming, node, &topology);
            if reasons.is_empty() {
                feasible.push(node);
            } else {
                failures.push(reasons);
            }
        }
        let scores = scoring::score(&incoming, &feasible, &topology);
        let Some(chosen) = scoring::best(&scores, self.turn) else {
            let message = predicates::failure_message(failures.len(), &failures);
            self.unschedulable(&key, pod.clone(), &incoming, message);
            return;
        };
        self.turn = self.turn.wrapping_add(1);
        let node = feasible[chosen].name.clone();
        self.cache.place(incoming.info.clone(), &node, true);
        self.queue.remove(&key);
        debug!(pod = %key, node = %node, "scheduled");
        k3rs_core::task::spawn(bind(
            self.ctx.client.clone(),
            self.recorder.clone(),
            pod,
            node,
            permit,
            results.clone(),
        ));
    }

    /// The pod behind `key` if it still waits for this scheduler.
    fn pending_pod(&self, key: &str) -> Option<Arc<Pod>> {
        let (namespace, name) = key.split_once('/')?;
        let pod = self.pods.get(&ObjectRef::new(name).within(namespace))?;
        let pending = assigned_node(&pod).is_none()
            && waits_for_us(&pod)
            && !is_finished(&pod)
            && self.cache.placement(key).is_none();
        pending.then_some(pod)
    }

    /// Selectors of the Services in the pod's namespace that select it; only needed
    /// when the pod has no controller owner to spread by.
    fn service_selectors(&self, pod: &Pod) -> Vec<BTreeMap<String, String>> {
        if crate::pod_control::controller_ref(&pod.metadata).is_some() {
            return Vec::new();
        }
        let namespace = pod.metadata.namespace.as_deref();
        let empty = BTreeMap::new();
        let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
        self.services
            .state()
            .iter()
            .filter(|s| s.metadata.namespace.as_deref() == namespace)
            .filter_map(|s| s.spec.as_ref()?.selector.clone())
            .filter(|sel| !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
            .collect()
    }

    fn unschedulable(&mut self, key: &str, pod: Arc<Pod>, incoming: &Incoming, message: String) {
        debug!(pod = %key, %message, "unschedulable");
        self.queue.park(
            key,
            Instant::now(),
            fingerprint(&pod),
            !incoming.affinity.is_empty(),
        );
        k3rs_core::task::spawn(report_unschedulable(
            self.ctx.client.clone(),
            self.recorder.clone(),
            pod,
            message,
        ));
    }

    fn on_binding_result(&mut self, result: BindingResult) {
        let Some(error) = result.error else { return };
        let still_assumed = self
            .cache
            .placement(&result.key)
            .is_some_and(|p| p.assumed && p.node == result.node);
        if still_assumed {
            self.cache.forget(&result.key);
        }
        if is_not_found(&error) {
            self.queue.remove(&result.key);
        } else {
            warn!(pod = %result.key, node = %result.node, error = %error, "binding failed; will retry");
            self.queue.retry_later(&result.key, Instant::now());
        }
    }
}

/// POST the Binding, then record the `Scheduled` event (after giving the slot back, as
/// events are best effort and must not slow bindings down).
async fn bind(
    client: kube::Client,
    recorder: Recorder,
    pod: Arc<Pod>,
    node: String,
    permit: OwnedSemaphorePermit,
    results: mpsc::UnboundedSender<BindingResult>,
) {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client, &namespace);
    let binding = json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": namespace, "uid": pod.metadata.uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    let outcome = api
        .create_subresource::<_, serde_json::Value>(
            "binding",
            &name,
            &PostParams::default(),
            &binding,
        )
        .await;
    drop(permit);
    let key = format!("{namespace}/{name}");
    match outcome {
        Ok(_) => {
            let _ = results.send(BindingResult {
                key,
                node: node.clone(),
                error: None,
            });
            let note = format!("Successfully assigned {namespace}/{name} to {node}");
            publish(
                &recorder,
                &pod.object_ref(&()),
                false,
                "Scheduled",
                "Binding",
                note,
            )
            .await;
        }
        Err(error) => {
            let _ = results.send(BindingResult {
                key,
                node,
                error: Some(error),
            });
        }
    }
}

/// Set `PodScheduled=False` (reason `Unschedulable`) unless the pod already says exactly
/// that, and record `FailedScheduling`.
async fn report_unschedulable(
    client: kube::Client,
    recorder: Recorder,
    pod: Arc<Pod>,
    message: String,
) {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    if let Some(patch) = unschedulable_condition_patch(&pod, &message, jiff::Timestamp::now()) {
        let api: Api<Pod> = Api::namespaced(client, &namespace);
        if let Err(err) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            debug!(pod = %name, error = %err, "PodScheduled condition not written");
        }
    }
    let reference: ObjectReference = pod.object_ref(&());
    publish(
        &recorder,
        &reference,
        true,
        "FailedScheduling",
        "Scheduling",
        message,
    )
    .await;
}

/// The status patch for `PodScheduled=False`, or `None` when the pod already carries the
/// same condition. The transition time only moves when the status changes.
fn unschedulable_condition_patch(
    pod: &Pod,
    message: &str,
    now: jiff::Timestamp,
) -> Option<serde_json::Value> {
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
    if let Some(c) = current {
        if c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
            && c.message.as_deref() == Some(message)
        {
            return None;
        }
    }
    let transition = current
        .filter(|c| c.status == "False")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(now);
    Some(json!({"status": {"conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": transition.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }]}}))
}

fn assigned_node(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()?
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

fn is_ours(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .is_none_or(|n| n.is_empty() || n == SCHEDULER_NAME)
}

/// An unassigned pod this scheduler should place now: it names this scheduler, is not
/// being deleted, and has no scheduling gates left (a gated pod waits until whoever
/// added the gates removes them).
fn waits_for_us(pod: &Pod) -> bool {
    let gated = pod
        .spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|g| !g.is_empty());
    is_ours(pod) && pod.metadata.deletion_timestamp.is_none() && !gated
}

/// Succeeded and Failed pods hold no resources (upstream's scheduler does not even
/// watch them).
fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// A digest of what scheduling reads from a pod (labels and spec), to notice a waiting
/// pod that was changed rather than merely had its status written.
fn fingerprint(pod: &Pod) -> u64 {
    let mut hasher = DefaultHasher::new();
    serde_json::to_string(&pod.metadata.labels)
        .unwrap_or_default()
        .hash(&mut hasher);
    serde_json::to_string(&pod.spec)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_condition_is_written_only_when_it_changes() {
        let now: jiff::Timestamp = "2025-01-02T03:04:05Z".parse().unwrap();
        let fresh = pod(json!({"metadata": {"name": "p"}}));
        let patch = unschedulable_condition_patch(&fresh, "0/1 nodes", now).unwrap();
        assert_eq!(
            patch["status"]["conditions"][0]["lastTransitionTime"],
            "2025-01-02T03:04:05Z"
        );
        let waiting = pod(
            json!({"metadata": {"name": "p"}, "status": {"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes", "lastTransitionTime": "2024-12-31T00:00:00Z"}]}}),
        );
        assert!(unschedulable_condition_patch(&waiting, "0/1 nodes", now).is_none());
        // A new message keeps the original transition time.
        let patch = unschedulable_condition_patch(&waiting, "0/2 nodes", now).unwrap();
        assert_eq!(
            patch["status"]["conditions"][0]["lastTransitionTime"],
            "2024-12-31T00:00:00Z"
        );
    }

    #[test]
    fn only_pods_for_this_scheduler_count() {
        assert!(is_ours(&pod(json!({"spec": {"containers": []}}))));
        assert!(is_ours(&pod(
            json!({"spec": {"containers": [], "schedulerName": "default-scheduler"}})
        )));
        assert!(!is_ours(&pod(
            json!({"spec": {"containers": [], "schedulerName": "other"}})
        )));
        assert!(is_finished(&pod(json!({"status": {"phase": "Succeeded"}}))));
        assert!(!waits_for_us(&pod(
            json!({"spec": {"containers": [], "schedulingGates": [{"name": "wait"}]}})
        )));
        assert!(!waits_for_us(&pod(
            json!({"metadata": {"deletionTimestamp": "2025-01-01T00:00:00Z"}, "spec": {"containers": []}})
        )));
        assert_eq!(
            assigned_node(&pod(json!({"spec": {"containers": [], "nodeName": "n1"}}))),
            Some("n1")
        );
    }
}
