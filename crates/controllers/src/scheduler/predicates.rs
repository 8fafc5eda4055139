//! Filters: whether a pod fits a node, and if not why, in upstream's words, so that the
//! `PodScheduled=False` condition and the `FailedScheduling` event read like
//! kube-scheduler's ("0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had
//! untolerated taint {dedicated: gpu}. preemption: ...").
//!
//! The filters run in upstream's plugin order and a node stops at the first plugin that
//! rejects it, as in kube-scheduler, so the histogram counts each node under one plugin.

use std::collections::{BTreeMap, BTreeSet};

use super::cache::{NodeFacts, NodeInfo};
use super::incoming::{Incoming, Topology};
use super::resources::Resources;
use crate::matching::first_untolerated;
use k3rs_core::scheduling::tolerates;
use k8s_openapi::api::core::v1::Taint;

/// Why a node cannot take the pod.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    NodeUnschedulable,
    UntoleratedTaint { key: String, value: String },
    NodeAffinity,
    HostPorts,
    TooManyPods,
    Insufficient(String),
    TopologySpread,
    TopologySpreadMissingLabel,
    PodAffinity,
    PodAntiAffinity,
    ExistingAntiAffinity,
}

impl Reason {
    /// Upstream's message for the reason.
    pub fn message(&self) -> String {
        match self {
            Reason::NodeUnschedulable => "node(s) were unschedulable".into(),
            Reason::UntoleratedTaint { key, value } => {
                format!("node(s) had untolerated taint {{{key}: {value}}}")
            }
            Reason::NodeAffinity => "node(s) didn't match Pod's node affinity/selector".into(),
            Reason::HostPorts => {
                "node(s) didn't have free ports for the requested pod ports".into()
            }
            Reason::TooManyPods => "Too many pods".into(),
            Reason::Insufficient(resource) => format!("Insufficient {resource}"),
            Reason::TopologySpread => "node(s) didn't match pod topology spread constraints".into(),
            Reason::TopologySpreadMissingLabel => {
                "node(s) didn't match pod topology spread constraints (missing required label)"
                    .into()
            }
            Reason::PodAffinity => "node(s) didn't match pod affinity rules".into(),
            Reason::PodAntiAffinity => "node(s) didn't match pod anti-affinity rules".into(),
            Reason::ExistingAntiAffinity => {
                "node(s) didn't satisfy existing pods anti-affinity rules".into()
            }
        }
    }

    /// Whether evicting lower-priority pods could lift the reason (upstream's
    /// `Unschedulable` as opposed to `UnschedulableAndUnresolvable`).
    pub fn preemption_may_help(&self) -> bool {
        matches!(
            self,
            Reason::HostPorts
                | Reason::TooManyPods
                | Reason::Insufficient(_)
                | Reason::TopologySpread
                | Reason::PodAntiAffinity
                | Reason::ExistingAntiAffinity
        )
    }
}

/// Every filter on one node; empty when the pod fits.
pub fn filter(pod: &Incoming, node: &NodeInfo, topology: &Topology) -> Vec<Reason> {
    let Some(facts) = &node.facts else {
        return vec![Reason::NodeAffinity];
    };
    let checks: [&dyn Fn() -> Vec<Reason>; 7] = [
        &|| unschedulable(pod, facts),
        &|| taints(pod, &facts.taints),
        &|| node_affinity(pod, &node.name, facts),
        &|| host_ports(pod, node),
        &|| resources(&pod.info.requests, node, facts),
        &|| topology_spread(pod, node, topology),
        &|| inter_pod_affinity(pod, node, topology),
    ];
    for check in checks {
        let reasons = check();
        if !reasons.is_empty() {
            return reasons;
        }
    }
    Vec::new()
}

fn unschedulable(pod: &Incoming, facts: &NodeFacts) -> Vec<Reason> {
    let taint = Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    if facts.unschedulable && !pod.tolerations.iter().any(|t| tolerates(t, &taint)) {
        vec![Reason::NodeUnschedulable]
    } else {
        Vec::new()
    }
}

fn taints(pod: &Incoming, taints: &[Taint]) -> Vec<Reason> {
    match first_untolerated(taints, &pod.tolerations, &["NoSchedule", "NoExecute"]) {
        Some(taint) => vec![Reason::UntoleratedTaint {
            key: taint.key.clone(),
            value: taint.value.clone().unwrap_or_default(),
        }],
        None => Vec::new(),
    }
}

fn node_affinity(pod: &Incoming, name: &str, facts: &NodeFacts) -> Vec<Reason> {
    if pod.matches_node_affinity(name, &facts.labels) {
        Vec::new()
    } else {
        vec![Reason::NodeAffinity]
    }
}

fn host_ports(pod: &Incoming, node: &NodeInfo) -> Vec<Reason> {
    let conflict = pod
        .info
        .host_ports
        .iter()
        .any(|wanted| node.ports.iter().any(|used| used.conflicts(wanted)));
    if conflict {
        vec![Reason::HostPorts]
    } else {
        Vec::new()
    }
}

/// Upstream's NodeResourcesFit: the pod count, then each requested resource against
/// what is left of `allocatable`. Every short resource is reported.
pub fn resources(requests: &Resources, node: &NodeInfo, facts: &NodeFacts) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if node.pod_count + 1 > facts.allowed_pods {
        reasons.push(Reason::TooManyPods);
    }
    let free = &facts.allocatable;
    let used = &node.requested;
    let mut short = |name: &str, wanted: i64, free: i64, used: i64| {
        if wanted > 0 && wanted > free - used {
            reasons.push(Reason::Insufficient(name.to_string()));
        }
    };
    short("cpu", requests.milli_cpu, free.milli_cpu, used.milli_cpu);
    short("memory", requests.memory, free.memory, used.memory);
    short(
        "ephemeral-storage",
        requests.ephemeral_storage,
        free.ephemeral_storage,
        used.ephemeral_storage,
    );
    for (name, wanted) in &requests.scalar {
        let free = free.scalar.get(name).copied().unwrap_or(0);
        let used = used.scalar.get(name).copied().unwrap_or(0);
        short(name, *wanted, free, used);
    }
    reasons
}

/// `DoNotSchedule` constraints: placing the pod must not make its domain exceed the
/// least-populated eligible domain by more than `maxSkew`.
fn topology_spread(pod: &Incoming, node: &NodeInfo, topology: &Topology) -> Vec<Reason> {
    for (constraint, counts) in pod.spread.iter().zip(&topology.spread) {
        if !constraint.hard {
            continue;
        }
        let Some(value) = node.topology_value(&constraint.topology_key) else {
            return vec![Reason::TopologySpreadMissingLabel];
        };
        let here =
            counts.counts.get(value).copied().unwrap_or(0) + u32::from(constraint.self_match);
        if here.saturating_sub(counts.min) > constraint.max_skew {
            return vec![Reason::TopologySpread];
        }
    }
    Vec::new()
}

fn inter_pod_affinity(pod: &Incoming, node: &NodeInfo, topology: &Topology) -> Vec<Reason> {
    // Upstream's order: the pod's affinity, its anti-affinity, then existing pods'.
    if !topology.affinity_satisfied(pod, node) {
        vec![Reason::PodAffinity]
    } else if !topology.anti_affinity_satisfied(pod, node) {
        vec![Reason::PodAntiAffinity]
    } else if !topology.existing_anti_affinity_satisfied(node) {
        vec![Reason::ExistingAntiAffinity]
    } else {
        Vec::new()
    }
}

/// Upstream's FitError text plus its preemption post-filter verdict, for `nodes` nodes
/// that each failed with the given reasons. Each part lists "count reason" entries
/// sorted as strings, as upstream does.
pub fn failure_message(nodes: usize, failures: &[Vec<Reason>]) -> String {
    if nodes == 0 {
        return "no nodes available to schedule pods".into();
    }
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut preemption: BTreeMap<&str, usize> = BTreeMap::new();
    for node in failures {
        let unique: BTreeSet<String> = node.iter().map(Reason::message).collect();
        for message in unique {
            *reasons.entry(message).or_default() += 1;
        }
        let verdict = if !node.is_empty() && node.iter().all(Reason::preemption_may_help) {
            "No preemption victims found for incoming pod"
        } else {
            "Preemption is not helpful for scheduling"
        };
        *preemption.entry(verdict).or_default() += 1;
    }
    let histogram = |counts: Vec<(String, usize)>| {
        let mut parts: Vec<String> = counts
            .into_iter()
            .map(|(reason, count)| format!("{count} {reason}"))
            .collect();
        parts.sort();
        parts.join(", ")
    };
    format!(
        "0/{nodes} nodes are available: {}. preemption: 0/{nodes} nodes are available: {}.",
        histogram(reasons.into_iter().collect()),
        histogram(
            preemption
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::cache::{Cache, PodInfo};
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::{json, Value};
    use std::sync::Arc;

    fn node(name: &str, labels: Value, taints: Value, cpu: &str, pods: u32) -> Node {
        let mut all_labels = json!({"kubernetes.io/hostname": name});
        for (k, v) in labels.as_object().unwrap() {
            all_labels[k] = v.clone();
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": all_labels},
            "spec": {"taints": taints},
            "status": {
                "allocatable": {"cpu": cpu, "memory": "4Gi", "pods": pods.to_string()},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }))
        .unwrap()
    }

    fn pod(name: &str, labels: Value, spec: Value) -> Pod {
        let mut spec = spec;
        if spec.get("containers").is_none() {
            spec["containers"] = json!([{"name": "c"}]);
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": name, "labels": labels},
            "spec": spec,
        }))
        .unwrap()
    }

    fn cluster() -> Cache {
        let mut cache = Cache::default();
        cache.set_node(&node(
            "a",
            json!({"zone": "z1", "disk": "ssd"}),
            json!([]),
            "1",
            110,
        ));
        cache.set_node(&node(
            "b",
            json!({"zone": "z1"}),
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
            "4",
            110,
        ));
        cache.set_node(&node("c", json!({"zone": "z2"}), json!([]), "4", 1));
        cache
    }

    fn reasons_for(cache: &Cache, p: &Pod) -> BTreeMap<String, Vec<Reason>> {
        let incoming = Incoming::new(p, Vec::new());
        let topology = Topology::new(&incoming, cache);
        cache
            .nodes
            .values()
            .map(|n| (n.name.clone(), filter(&incoming, n, &topology)))
            .collect()
    }

    fn feasible(cache: &Cache, p: &Pod) -> Vec<String> {
        reasons_for(cache, p)
            .into_iter()
            .filter(|(_, r)| r.is_empty())
            .map(|(n, _)| n)
            .collect()
    }

    fn place(cache: &mut Cache, p: &Pod, node: &str) {
        cache.place(Arc::new(PodInfo::new(p)), node, false);
    }

    #[test]
    fn selectors_taints_and_tolerations() {
        let cache = cluster();
        let plain = pod("p", json!({}), json!({}));
        assert_eq!(feasible(&cache, &plain), ["a", "c"]);
        let ssd = pod("p", json!({}), json!({"nodeSelector": {"disk": "ssd"}}));
        assert_eq!(feasible(&cache, &ssd), ["a"]);
        let tolerant = pod(
            "p",
            json!({}),
            json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}],
                   "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                       {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}]}}}}),
        );
        assert_eq!(feasible(&cache, &tolerant), ["a", "b"]);
        let by_name = pod(
            "p",
            json!({}),
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}]}}}}),
        );
        assert_eq!(feasible(&cache, &by_name), ["c"]);
    }

    #[test]
    fn resources_ports_and_pod_count() {
        let mut cache = cluster();
        let big = pod(
            "big",
            json!({}),
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}),
        );
        // a has 1 CPU, b is tainted: only c.
        assert_eq!(feasible(&cache, &big), ["c"]);
        place(&mut cache, &big, "c");
        // c takes a single pod: now nothing fits.
        let reasons = reasons_for(&cache, &big);
        assert_eq!(reasons["a"], [Reason::Insufficient("cpu".into())]);
        assert_eq!(reasons["c"], [Reason::TooManyPods]);
        let web = |name| {
            pod(
                name,
                json!({}),
                json!({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}),
            )
        };
        place(&mut cache, &web("w1"), "a");
        assert_eq!(reasons_for(&cache, &web("w2"))["a"], [Reason::HostPorts]);
    }

    #[test]
    fn pod_affinity_and_anti_affinity_by_topology() {
        let mut cache = cluster();
        cache.set_node(&node("d", json!({"zone": "z2"}), json!([]), "4", 110));
        let anti = |name| {
            pod(
                name,
                json!({"app": "db"}),
                json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}]}}}),
            )
        };
        place(&mut cache, &anti("db-1"), "a");
        // Zone z1 (a, b) holds a db: the next one goes to z2 only.
        assert_eq!(feasible(&cache, &anti("db-2")), ["c", "d"]);
        // A plain pod labelled app=db is kept out of z1 by db-1's anti-affinity.
        let plain_db = pod("x", json!({"app": "db"}), json!({}));
        assert_eq!(
            reasons_for(&cache, &plain_db)["a"],
            [Reason::ExistingAntiAffinity]
        );
        // Affinity to app=db: only zone z1 (b is tainted).
        let near = pod(
            "near",
            json!({}),
            json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}]}}}),
        );
        assert_eq!(feasible(&cache, &near), ["a"]);
        // Affinity to a group that does not exist yet: only a pod of that group may start it.
        let first = |labels| {
            pod(
                "first",
                labels,
                json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "zone"}]}}}),
            )
        };
        assert_eq!(
            feasible(&cache, &first(json!({"app": "cache"}))),
            ["a", "c", "d"]
        );
        assert!(feasible(&cache, &first(json!({}))).is_empty());
    }

    #[test]
    fn topology_spread_do_not_schedule() {
        let mut cache = cluster();
        cache.set_node(&node("d", json!({"zone": "z2"}), json!([]), "4", 110));
        let spread = |name| {
            pod(
                name,
                json!({"app": "web"}),
                json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                    "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]}),
            )
        };
        place(&mut cache, &spread("w1"), "a");
        // z1 has one, z2 none: only z2 nodes (b is tainted anyway).
        assert_eq!(feasible(&cache, &spread("w2")), ["c", "d"]);
        place(&mut cache, &spread("w2"), "d");
        place(&mut cache, &spread("w3"), "c");
        // z1 has one, z2 two: only z1.
        assert_eq!(feasible(&cache, &spread("w4")), ["a"]);
        let missing = pod(
            "m",
            json!({"app": "web"}),
            json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "rack",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]}),
        );
        assert_eq!(
            reasons_for(&cache, &missing)["a"],
            [Reason::TopologySpreadMissingLabel]
        );
    }

    #[test]
    fn not_ready_and_unschedulable_nodes_are_skipped() {
        let mut cache = Cache::default();
        let mut down = node("down", json!({}), json!([]), "4", 110);
        down.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "False".into();
        cache.set_node(&down);
        let mut cordoned = node("cordoned", json!({}), json!([]), "4", 110);
        cordoned.spec.as_mut().unwrap().unschedulable = Some(true);
        cache.set_node(&cordoned);
        let reasons = reasons_for(&cache, &pod("p", json!({}), json!({})));
        assert_eq!(reasons["cordoned"], [Reason::NodeUnschedulable]);
        assert_eq!(
            reasons["down"],
            [Reason::UntoleratedTaint {
                key: "node.kubernetes.io/not-ready".into(),
                value: String::new()
            }]
        );
        // The default NoExecute toleration for not-ready does not cover NoSchedule.
        let tolerant = pod(
            "p",
            json!({}),
            json!({"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                "effect": "NoExecute", "tolerationSeconds": 300}]}),
        );
        assert!(feasible(&cache, &tolerant).is_empty());
    }

    #[test]
    fn failure_messages_read_like_upstream() {
        let failures = vec![
            vec![Reason::UntoleratedTaint {
                key: "dedicated".into(),
                value: "gpu".into(),
            }],
            vec![Reason::NodeAffinity],
            vec![Reason::NodeAffinity],
        ];
        assert_eq!(
            failure_message(3, &failures),
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, \
             2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are \
             available: 3 Preemption is not helpful for scheduling."
        );
        let failures = vec![
            vec![
                Reason::Insufficient("cpu".into()),
                Reason::Insufficient("memory".into()),
            ],
            vec![Reason::NodeUnschedulable],
        ];
        assert_eq!(
            failure_message(2, &failures),
            "0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, \
             1 node(s) were unschedulable. preemption: 0/2 nodes are available: \
             1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
        );
        assert_eq!(
            failure_message(0, &[]),
            "no nodes available to schedule pods"
        );
    }
}
