//! Node lifecycle, as upstream's node-lifecycle and taint-eviction controllers:
//!
//! - **Health**: every `node_monitor_period` each node's last sign of life (a change of
//!   its Lease's `renewTime` in `kube-node-lease` or of its Ready condition's
//!   `lastHeartbeatTime`, timed by this controller's own clock so that skewed node clocks
//!   do not matter) is checked; after `node_monitor_grace_period` without one, the Ready,
//!   MemoryPressure, DiskPressure and PIDPressure conditions become `Unknown`
//!   (`NodeStatusUnknown`), and pods on the node are marked `Ready=False`.
//! - **Taints from conditions**: Ready `Unknown` taints the node
//!   `node.kubernetes.io/unreachable` (NoExecute and NoSchedule), Ready `False`
//!   `node.kubernetes.io/not-ready`; pressure conditions, NetworkUnavailable and
//!   `spec.unschedulable` get their NoSchedule taints. Only these taints are managed;
//!   any other taint on the node is left as it is.
//! - **Eviction**: a pod on a node with a NoExecute taint it does not tolerate is deleted
//!   at once; one that tolerates it for `tolerationSeconds` is deleted that long after the
//!   taint was added (or the pod created, if later); a toleration without seconds keeps it.
//!
//! Nodes and pods come from the shared informers; only node Leases are watched here.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::context::Recorder;
use futures::{FutureExt, StreamExt};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::context::{publish, Context};
use crate::error::{is_not_found, KubeContext};
use crate::{Error, Result};
use k3rs_core::scheduling::tolerates;

pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
const NO_EXECUTE: &str = "NoExecute";
const NO_SCHEDULE: &str = "NoSchedule";

const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// How long a node that never posted a Ready condition has before it is declared
/// `Unknown` (upstream's `--node-startup-grace-period`).
const NODE_STARTUP_GRACE: Duration = Duration::from_secs(60);
/// Conditions the kubelet owns and that become `Unknown` when it goes silent.
const KUBELET_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];
/// Pods deleted or updated at the same time, so a node full of pods is handled quickly.
const CONCURRENT_POD_WRITES: usize = 16;

// ---------------------------------------------------------------------------------------
// Health: pure bookkeeping of heartbeats.

/// When this controller last saw each node show a sign of life.
#[derive(Debug, Default)]
pub struct Heartbeats {
    seen: HashMap<String, Probe>,
}

#[derive(Debug)]
struct Probe {
    ready_heartbeat: Option<Timestamp>,
    lease_renewed: Option<Timestamp>,
    probed_at: Timestamp,
}

impl Heartbeats {
    /// Record what a node and its Lease say now and return when the node was last seen
    /// alive. `first_probe` is used for a node seen for the first time.
    pub fn observe(
        &mut self,
        node: &str,
        ready_heartbeat: Option<Timestamp>,
        lease_renewed: Option<Timestamp>,
        first_probe: Timestamp,
        now: Timestamp,
    ) -> Timestamp {
        let probe = self.seen.entry(node.to_string()).or_insert(Probe {
            ready_heartbeat,
            lease_renewed,
            probed_at: first_probe,
        });
        let renewed = lease_renewed.is_some()
            && (probe.lease_renewed.is_none() || lease_renewed > probe.lease_renewed);
        if probe.ready_heartbeat != ready_heartbeat || renewed {
            probe.probed_at = now;
        }
        probe.ready_heartbeat = ready_heartbeat;
        probe.lease_renewed = lease_renewed.max(probe.lease_renewed);
        probe.probed_at
    }

    /// Forget nodes that no longer exist.
    pub fn retain(&mut self, nodes: &HashSet<String>) {
        self.seen.retain(|name, _| nodes.contains(name));
    }
}

fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    now.duration_since(since).try_into().unwrap_or_default()
}

fn add_seconds(at: Timestamp, seconds: i64) -> Timestamp {
    at.checked_add(SignedDuration::from_secs(seconds))
        .unwrap_or(if seconds < 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        })
}

// ---------------------------------------------------------------------------------------
// Conditions and taints: pure.

fn condition<'a>(conditions: &'a [NodeCondition], type_: &str) -> Option<&'a NodeCondition> {
    conditions.iter().find(|c| c.type_ == type_)
}

fn status_of(conditions: &[NodeCondition], type_: &str) -> Option<String> {
    condition(conditions, type_).map(|c| c.status.clone())
}

/// The kubelet conditions that must change because the node went silent: present ones
/// become `Unknown` (keeping their last heartbeat), missing ones are added as never
/// updated. Only changed conditions are returned.
pub fn unknown_conditions(
    conditions: &[NodeCondition],
    created: Option<&Time>,
    now: Timestamp,
) -> Vec<NodeCondition> {
    KUBELET_CONDITIONS
        .iter()
        .filter_map(|type_| match condition(conditions, type_) {
            None => Some(NodeCondition {
                type_: type_.to_string(),
                status: "Unknown".into(),
                reason: Some("NodeStatusNeverUpdated".into()),
                message: Some("Kubelet never posted node status.".into()),
                last_heartbeat_time: created.cloned(),
                last_transition_time: Some(Time(now)),
            }),
            Some(c) if c.status != "Unknown" => Some(NodeCondition {
                status: "Unknown".into(),
                reason: Some("NodeStatusUnknown".into()),
                message: Some("Kubelet stopped posting node status.".into()),
                last_transition_time: Some(Time(now)),
                ..c.clone()
            }),
            Some(_) => None,
        })
        .collect()
}

/// `conditions` with `changes` written over them by type.
fn merged(conditions: &[NodeCondition], changes: &[NodeCondition]) -> Vec<NodeCondition> {
    let mut all: Vec<NodeCondition> = conditions
        .iter()
        .filter(|c| condition(changes, &c.type_).is_none())
        .cloned()
        .collect();
    all.extend(changes.iter().cloned());
    all
}

/// Every (key, effect) this controller manages.
const MANAGED_TAINTS: [(&str, &str); 9] = [
    (TAINT_NOT_READY, NO_EXECUTE),
    (TAINT_NOT_READY, NO_SCHEDULE),
    (TAINT_UNREACHABLE, NO_EXECUTE),
    (TAINT_UNREACHABLE, NO_SCHEDULE),
    (TAINT_MEMORY_PRESSURE, NO_SCHEDULE),
    (TAINT_DISK_PRESSURE, NO_SCHEDULE),
    (TAINT_PID_PRESSURE, NO_SCHEDULE),
    (TAINT_NETWORK_UNAVAILABLE, NO_SCHEDULE),
    (TAINT_UNSCHEDULABLE, NO_SCHEDULE),
];

/// The managed taints a node with these conditions should carry.
fn wanted_taints(
    conditions: &[NodeCondition],
    unschedulable: bool,
) -> Vec<(&'static str, &'static str)> {
    let mut wanted = Vec::new();
    match status_of(conditions, "Ready").as_deref() {
        Some("False") => {
            wanted.push((TAINT_NOT_READY, NO_EXECUTE));
            wanted.push((TAINT_NOT_READY, NO_SCHEDULE));
        }
        Some("Unknown") => {
            wanted.push((TAINT_UNREACHABLE, NO_EXECUTE));
            wanted.push((TAINT_UNREACHABLE, NO_SCHEDULE));
        }
        _ => {}
    }
    for (type_, key) in [
        ("MemoryPressure", TAINT_MEMORY_PRESSURE),
        ("DiskPressure", TAINT_DISK_PRESSURE),
        ("PIDPressure", TAINT_PID_PRESSURE),
        ("NetworkUnavailable", TAINT_NETWORK_UNAVAILABLE),
    ] {
        if status_of(conditions, type_).as_deref() == Some("True") {
            wanted.push((key, NO_SCHEDULE));
        }
    }
    if unschedulable {
        wanted.push((TAINT_UNSCHEDULABLE, NO_SCHEDULE));
    }
    wanted
}

/// The node's new taint list, or None when it already matches: managed taints follow
/// the conditions (keeping the `timeAdded` of those that stay), other taints are kept.
pub fn desired_taints(
    current: &[Taint],
    conditions: &[NodeCondition],
    unschedulable: bool,
    now: Timestamp,
) -> Option<Vec<Taint>> {
    let wanted = wanted_taints(conditions, unschedulable);
    let managed = |t: &Taint| MANAGED_TAINTS.contains(&(t.key.as_str(), t.effect.as_str()));
    let is_wanted = |t: &Taint| wanted.contains(&(t.key.as_str(), t.effect.as_str()));
    let mut taints: Vec<Taint> = current
        .iter()
        .filter(|t| !managed(t) || is_wanted(t))
        .cloned()
        .collect();
    let mut changed = taints.len() != current.len();
    for (key, effect) in wanted {
        if !taints.iter().any(|t| t.key == key && t.effect == effect) {
            taints.push(Taint {
                key: key.into(),
                effect: effect.into(),
                value: None,
                time_added: Some(Time(now)),
            });
            changed = true;
        }
    }
    changed.then_some(taints)
}

// ---------------------------------------------------------------------------------------
// Eviction: pure.

/// When a pod must leave its node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Eviction {
    Now,
    At(Timestamp),
    Never,
}

/// When a pod with `tolerations` must go, given its node's NoExecute taints, each with
/// the time it started to apply to this pod.
pub fn eviction(tolerations: &[Toleration], taints: &[(&Taint, Timestamp)]) -> Eviction {
    let mut deadline: Option<Timestamp> = None;
    for (taint, since) in taints {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Eviction::Now;
        }
        // The shortest limit among the tolerations that apply wins; none means forever.
        if let Some(seconds) = matching.iter().filter_map(|t| t.toleration_seconds).min() {
            let at = add_seconds(*since, seconds.max(0));
            deadline = Some(deadline.map_or(at, |d| d.min(at)));
        }
    }
    deadline.map_or(Eviction::Never, Eviction::At)
}

// ---------------------------------------------------------------------------------------
// The health monitor.

struct Monitor {
    ctx: Arc<Context>,
    leases: Store<Lease>,
    heartbeats: Heartbeats,
    recorder: Recorder,
}

impl Monitor {
    async fn pass(&mut self) {
        let now = Timestamp::now();
        let nodes = self.ctx.nodes.store().state();
        let names: HashSet<String> = nodes.iter().map(|n| n.name_any()).collect();
        self.heartbeats.retain(&names);
        let mut silent = HashSet::new();
        for node in &nodes {
            match self.check(node, now).await {
                Ok(true) => {
                    silent.insert(node.name_any());
                }
                Ok(false) => {}
                Err(err) => warn!(node = %node.name_any(), error = %err, "node health: retrying"),
            }
        }
        if !silent.is_empty() {
            self.mark_pods_not_ready(&silent).await;
        }
    }

    fn lease_renewed(&self, node: &str) -> Option<Timestamp> {
        let lease = self
            .leases
            .get(&ObjectRef::new(node).within(NODE_LEASE_NAMESPACE))?;
        lease.spec.as_ref()?.renew_time.as_ref().map(|t| t.0)
    }

    /// Update one node's conditions and taints; true when its Ready condition is
    /// `Unknown` (the kubelet is silent).
    async fn check(&mut self, node: &Node, now: Timestamp) -> Result<bool> {
        let name = node.name_any();
        let conditions = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let ready = condition(&conditions, "Ready");
        let created = node.metadata.creation_timestamp.as_ref();
        let (first_probe, grace) = match ready {
            Some(_) => (now, self.ctx.options.node_monitor_grace_period),
            None => (created.map_or(now, |t| t.0), NODE_STARTUP_GRACE),
        };
        let probed_at = self.heartbeats.observe(
            &name,
            ready
                .and_then(|c| c.last_heartbeat_time.as_ref())
                .map(|t| t.0),
            self.lease_renewed(&name),
            first_probe,
            now,
        );
        let changes = if elapsed(probed_at, now) > grace {
            unknown_conditions(&conditions, created, now)
        } else {
            Vec::new()
        };
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        let mut resource_version = node.resource_version();
        if !changes.is_empty() {
            let patch = json!({"status": {"conditions": changes}});
            let written = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
                .context(format!("marking node {name} Unknown"))?;
            resource_version = written.resource_version();
            if ready.is_some_and(|c| c.status == "True") {
                info!(node = %name, "node stopped posting status");
                self.node_event(node, "NodeNotReady").await;
            }
        }
        let conditions = merged(&conditions, &changes);
        let spec = node.spec.as_ref();
        let current = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        let unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        if let Some(taints) = desired_taints(&current, &conditions, unschedulable, now) {
            // The resourceVersion makes this a compare-and-swap: a taint someone else
            // added meanwhile is never overwritten (409, retried next period).
            let taints = if taints.is_empty() {
                json!(null)
            } else {
                json!(taints)
            };
            let patch = json!({
                "metadata": {"resourceVersion": resource_version},
                "spec": {"taints": taints},
            });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .context(format!("updating the taints of node {name}"))?;
            debug!(node = %name, "taints updated");
        }
        Ok(status_of(&conditions, "Ready").as_deref() == Some("Unknown"))
    }

    /// Upstream's RecordNodeStatusChange: "Node n1 status is now: NodeNotReady".
    async fn node_event(&self, node: &Node, status: &str) {
        publish(
            &self.recorder,
            &node.object_ref(&()),
            false,
            status,
            "NodeStatusChange",
            format!("Node {} status is now: {status}", node.name_any()),
        )
        .await;
    }

    /// Upstream's MarkPodsNotReady: nobody is left to report these pods' readiness.
    async fn mark_pods_not_ready(&self, silent: &HashSet<String>) {
        let stale: Vec<Arc<Pod>> = pods_on(&self.ctx, |node| silent.contains(node))
            .into_iter()
            .filter(|pod| pod_ready_status(pod).is_some_and(|s| s != "False"))
            .collect();
        let now = Timestamp::now();
        futures::stream::iter(stale)
            .for_each_concurrent(CONCURRENT_POD_WRITES, |pod| async move {
                let (ns, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
                let patch = json!({"status": {"conditions": [
                    {"type": "Ready", "status": "False", "lastTransitionTime": Time(now)},
                ]}});
                let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
                match api
                    .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                    .await
                {
                    Ok(_) => {
                        publish(
                            &self.recorder,
                            &pod.object_ref(&()),
                            true,
                            "NodeNotReady",
                            "MarkPodNotReady",
                            "Node is not ready".into(),
                        )
                        .await
                    }
                    Err(err) if is_not_found(&err) => {}
                    Err(err) => {
                        warn!(pod = %format!("{ns}/{name}"), error = %err, "marking pod not ready")
                    }
                }
            })
            .await;
    }
}

fn pod_ready_status(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

/// Pods of the shared informer bound to a node `on` accepts.
fn pods_on(ctx: &Context, on: impl Fn(&str) -> bool) -> Vec<Arc<Pod>> {
    ctx.pods
        .store()
        .state()
        .into_iter()
        .filter(|pod| {
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(&on)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The taint evictor.

struct Evictor {
    ctx: Arc<Context>,
    recorder: Recorder,
    /// When this controller first saw a NoExecute taint that carries no `timeAdded`,
    /// by (node, key, value).
    first_seen: HashMap<(String, String, String), Timestamp>,
    /// Pods already deleted, until the informer shows them terminating or gone.
    evicted: HashSet<String>,
}

impl Evictor {
    /// Evict every pod whose time is up; returns the next deadline still ahead.
    async fn pass(&mut self) -> Option<Timestamp> {
        let now = Timestamp::now();
        let mut tainted: HashMap<String, Vec<Taint>> = HashMap::new();
        for node in self.ctx.nodes.store().state() {
            let taints: Vec<Taint> = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .map(|t| {
                    t.iter()
                        .filter(|t| t.effect == NO_EXECUTE)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if !taints.is_empty() {
                tainted.insert(node.name_any(), taints);
            }
        }
        self.remember_taints(&tainted, now);
        if tainted.is_empty() {
            self.evicted.clear();
            return None;
        }
        let pods = pods_on(&self.ctx, |node| tainted.contains_key(node));
        let live: HashSet<String> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.uid())
            .collect();
        self.evicted.retain(|uid| live.contains(uid));
        let mut next: Option<Timestamp> = None;
        let mut due = Vec::new();
        for pod in pods {
            if pod.metadata.deletion_timestamp.is_some()
                || pod.uid().is_some_and(|uid| self.evicted.contains(&uid))
            {
                continue;
            }
            let node = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            let Some(taints) = tainted.get(&node) else {
                continue;
            };
            match self.eviction_of(&pod, &node, taints) {
                Eviction::Now => due.push(pod),
                Eviction::At(at) if at <= now => due.push(pod),
                Eviction::At(at) => next = Some(next.map_or(at, |n| n.min(at))),
                Eviction::Never => {}
            }
        }
        for pod in &due {
            if let Some(uid) = pod.uid() {
                self.evicted.insert(uid);
            }
        }
        futures::stream::iter(due)
            .for_each_concurrent(CONCURRENT_POD_WRITES, |pod| self.evict(pod))
            .await;
        next
    }

    fn remember_taints(&mut self, tainted: &HashMap<String, Vec<Taint>>, now: Timestamp) {
        let mut present = HashSet::new();
        for (node, taints) in tainted {
            for taint in taints.iter().filter(|t| t.time_added.is_none()) {
                let id = (
                    node.clone(),
                    taint.key.clone(),
                    taint.value.clone().unwrap_or_default(),
                );
                self.first_seen.entry(id.clone()).or_insert(now);
                present.insert(id);
            }
        }
        self.first_seen.retain(|id, _| present.contains(id));
    }

    fn eviction_of(&self, pod: &Pod, node: &str, taints: &[Taint]) -> Eviction {
        let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let since: Vec<(&Taint, Timestamp)> = taints
            .iter()
            .map(|taint| {
                let added = taint.time_added.as_ref().map(|t| t.0).or_else(|| {
                    let id = (
                        node.to_string(),
                        taint.key.clone(),
                        taint.value.clone().unwrap_or_default(),
                    );
                    self.first_seen.get(&id).copied()
                });
                // A pod bound after the taint appeared gets its full toleration too.
                let start = match (added, created) {
                    (Some(a), Some(c)) => a.max(c),
                    (a, c) => a.or(c).unwrap_or_else(Timestamp::now),
                };
                (taint, start)
            })
            .collect();
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or_default();
        eviction(tolerations, &since)
    }

    async fn evict(&self, pod: Arc<Pod>) {
        let (ns, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        // Upstream (1.26+) tells the pod why it is going before deleting it.
        let disruption = json!({"status": {"conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": Time(Timestamp::now()),
        }]}});
        if let Err(err) = api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Strategic(&disruption),
            )
            .await
        {
            debug!(pod = %format!("{ns}/{name}"), error = %err, "DisruptionTarget not recorded");
        }
        publish(
            &self.recorder,
            &pod.object_ref(&()),
            false,
            "TaintManagerEviction",
            "Delete",
            format!("Marking for deletion Pod {ns}/{name}"),
        )
        .await;
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => info!(pod = %format!("{ns}/{name}"), "evicted for a NoExecute taint"),
            Err(err) if is_not_found(&err) => {}
            Err(err) => {
                warn!(pod = %format!("{ns}/{name}"), error = %err, "eviction failed; retrying")
            }
        }
    }
}

/// Evaluate taints whenever a node changes, when the next toleration runs out, and at
/// least every monitor period (which also retries failed deletions).
async fn run_evictor(ctx: Arc<Context>) -> Result<()> {
    let mut evictor = Evictor {
        recorder: ctx.recorder("taint-eviction-controller"),
        ctx: ctx.clone(),
        first_seen: HashMap::new(),
        evicted: HashSet::new(),
    };
    let period = ctx.options.node_monitor_period;
    let mut node_changes = std::pin::pin!(ctx.nodes.subscribe());
    loop {
        let next = evictor.pass().await;
        let now = Timestamp::now();
        let wait = next.map_or(period, |at| elapsed(now, at).min(period));
        tokio::select! {
            change = node_changes.next() => {
                if change.is_none() {
                    return Err(Error::Invalid("the node informer stopped".into()));
                }
                // Drain what is already queued: one pass covers all of it.
                while let Some(Some(_)) = node_changes.next().now_or_never() {}
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn run_monitor(ctx: Arc<Context>, leases: Store<Lease>) -> Result<()> {
    let _ = leases.wait_until_ready().await;
    let mut monitor = Monitor {
        recorder: ctx.recorder("node-controller"),
        heartbeats: Heartbeats::default(),
        ctx: ctx.clone(),
        leases,
    };
    let mut ticks = tokio::time::interval(ctx.options.node_monitor_period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        monitor.pass().await;
    }
}

pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let (leases, writer) = reflector::store::<Lease>();
    let lease_api: Api<Lease> = Api::namespaced(ctx.client.clone(), NODE_LEASE_NAMESPACE);
    let lease_watch = watcher(lease_api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .for_each(|event| async move {
            if let Err(err) = event {
                debug!(error = %err, "node lease watch");
            }
        });
    tokio::select! {
        _ = lease_watch => Err(Error::Invalid("the node lease watch stopped".into())),
        result = run_monitor(ctx.clone(), leases) => result,
        result = run_evictor(ctx) => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn cond(type_: &str, status: &str) -> NodeCondition {
        NodeCondition {
            type_: type_.into(),
            status: status.into(),
            last_heartbeat_time: Some(Time(ts(0))),
            ..Default::default()
        }
    }

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            value: None,
            time_added: Some(Time(ts(0))),
        }
    }

    fn toleration(v: serde_json::Value) -> Toleration {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn heartbeats_count_only_when_they_change() {
        let mut h = Heartbeats::default();
        assert_eq!(
            h.observe("n", Some(ts(0)), Some(ts(0)), ts(10), ts(10)),
            ts(10)
        );
        // Nothing new: the node was last seen at 10.
        assert_eq!(
            h.observe("n", Some(ts(0)), Some(ts(0)), ts(20), ts(20)),
            ts(10)
        );
        // A renewed lease counts, whatever the node's clock says.
        assert_eq!(
            h.observe("n", Some(ts(0)), Some(ts(5)), ts(30), ts(30)),
            ts(30)
        );
        // So does a new Ready heartbeat.
        assert_eq!(
            h.observe("n", Some(ts(3)), Some(ts(5)), ts(40), ts(40)),
            ts(40)
        );
        // An older lease (a recreated one) does not.
        assert_eq!(
            h.observe("n", Some(ts(3)), Some(ts(1)), ts(50), ts(50)),
            ts(40)
        );
        h.retain(&HashSet::new());
        assert_eq!(
            h.observe("n", Some(ts(3)), Some(ts(5)), ts(60), ts(60)),
            ts(60)
        );
    }

    #[test]
    fn a_silent_node_goes_unknown() {
        let conditions = vec![cond("Ready", "True"), cond("MemoryPressure", "False")];
        let changes = unknown_conditions(&conditions, Some(&Time(ts(-100))), ts(50));
        let types: Vec<&str> = changes.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"]
        );
        let ready = &changes[0];
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            ready.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        // The last heartbeat stays what the kubelet wrote.
        assert_eq!(ready.last_heartbeat_time, Some(Time(ts(0))));
        assert_eq!(ready.last_transition_time, Some(Time(ts(50))));
        assert_eq!(changes[2].reason.as_deref(), Some("NodeStatusNeverUpdated"));
        // Already Unknown everywhere: nothing to write.
        let all = merged(&conditions, &changes);
        assert!(unknown_conditions(&all, None, ts(60)).is_empty());
        assert_eq!(all.len(), 4);
    }

    #[test]
    fn taints_follow_the_ready_condition() {
        let now = ts(100);
        let unknown = vec![cond("Ready", "Unknown")];
        let taints = desired_taints(&[], &unknown, false, now).unwrap();
        let keys: Vec<(&str, &str)> = taints
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                (TAINT_UNREACHABLE, NO_EXECUTE),
                (TAINT_UNREACHABLE, NO_SCHEDULE)
            ]
        );
        assert_eq!(taints[0].time_added, Some(Time(now)));
        // Stable once applied.
        assert_eq!(desired_taints(&taints, &unknown, false, ts(200)), None);

        // Not ready replaces unreachable, and foreign taints stay.
        let mut current = taints.clone();
        current.push(taint("example.com/x", NO_EXECUTE));
        let not_ready = desired_taints(&current, &[cond("Ready", "False")], false, now).unwrap();
        let keys: Vec<&str> = not_ready.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["example.com/x", TAINT_NOT_READY, TAINT_NOT_READY]);

        // Recovery removes every managed taint.
        let healthy = desired_taints(&not_ready, &[cond("Ready", "True")], false, now).unwrap();
        assert_eq!(healthy, vec![taint("example.com/x", NO_EXECUTE)]);
        assert_eq!(
            desired_taints(&[], &[cond("Ready", "True")], false, now),
            None
        );
    }

    #[test]
    fn pressure_and_cordon_taints() {
        let conditions = vec![
            cond("Ready", "True"),
            cond("MemoryPressure", "True"),
            cond("DiskPressure", "Unknown"),
        ];
        let taints = desired_taints(&[], &conditions, true, ts(0)).unwrap();
        let keys: Vec<&str> = taints.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, [TAINT_MEMORY_PRESSURE, TAINT_UNSCHEDULABLE]);
        assert!(taints.iter().all(|t| t.effect == NO_SCHEDULE));
    }

    #[test]
    fn eviction_deadlines() {
        let unreachable = taint(TAINT_UNREACHABLE, NO_EXECUTE);
        let custom = taint("example.com/x", NO_EXECUTE);
        let default = toleration(
            json!({"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}),
        );
        let short = toleration(
            json!({"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 3}),
        );
        let forever = toleration(json!({"operator": "Exists"}));
        assert_eq!(eviction(&[], &[(&unreachable, ts(10))]), Eviction::Now);
        assert_eq!(
            eviction(std::slice::from_ref(&default), &[(&unreachable, ts(10))]),
            Eviction::At(ts(310))
        );
        // The shortest applicable toleration wins.
        assert_eq!(
            eviction(&[default.clone(), short], &[(&unreachable, ts(10))]),
            Eviction::At(ts(13))
        );
        assert_eq!(
            eviction(
                std::slice::from_ref(&forever),
                &[(&unreachable, ts(10)), (&custom, ts(20))]
            ),
            Eviction::Never
        );
        // One taint not tolerated at all: out now.
        assert_eq!(
            eviction(&[default], &[(&unreachable, ts(10)), (&custom, ts(20))]),
            Eviction::Now
        );
        assert_eq!(eviction(&[], &[]), Eviction::Never);
        let negative = toleration(json!({"operator": "Exists", "tolerationSeconds": -5}));
        assert_eq!(
            eviction(&[negative], &[(&custom, ts(20))]),
            Eviction::At(ts(20))
        );
    }
}
