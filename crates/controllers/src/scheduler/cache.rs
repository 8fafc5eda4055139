//! The scheduler's picture of the cluster: per node, what it offers (labels, taints,
//! allocatable) and what the pods placed on it use (requests, host ports, pod count), kept
//! up to date from the shared informers and from the scheduler's own decisions.
//!
//! A pod the scheduler has decided to bind is *assumed* on its node at once, before the
//! binding reaches the API, so the next decision already sees it (upstream's assumed
//! pods); the informer later confirms it, or a failed binding forgets it. Deciding from
//! this cache instead of rescanning pods is what makes one decision cost O(nodes).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::resources::{node_allocatable, non_zero_requests, pod_requests, Resources};
use crate::matching::selector_matches;
use crate::pod_control::controller_ref;

pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";

/// `namespace/name`, the key of pods everywhere in the scheduler.
pub fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// A host port a container binds on its node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// Upstream's rule: same protocol and port, and the same IP or either a wildcard.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        let wildcard = |ip: &str| ip.is_empty() || ip == "0.0.0.0" || ip == "::";
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || wildcard(&self.ip) || wildcard(&other.ip))
    }
}

/// Which namespaces an affinity term looks at.
#[derive(Clone, Debug, PartialEq)]
pub enum Namespaces {
    All,
    Listed(Vec<String>),
}

/// A pod (anti-)affinity term with its namespaces resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct AffinityTerm {
    /// `None` selects no pod, as upstream treats a missing selector.
    pub selector: Option<LabelSelector>,
    pub namespaces: Namespaces,
    pub topology_key: String,
}

impl AffinityTerm {
    /// Resolve a term written in `namespace`: no namespaces and no namespace selector
    /// means the pod's own namespace; an empty namespace selector means all. A non-empty
    /// namespace selector would need namespace labels, which the scheduler does not
    /// watch: only the listed namespaces count then.
    pub fn new(term: &PodAffinityTerm, namespace: &str) -> AffinityTerm {
        let listed = term.namespaces.clone().unwrap_or_default();
        let namespaces = match &term.namespace_selector {
            Some(sel)
                if sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
                    && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty()) =>
            {
                Namespaces::All
            }
            None if listed.is_empty() => Namespaces::Listed(vec![namespace.to_string()]),
            _ => Namespaces::Listed(listed),
        };
        AffinityTerm {
            selector: term.label_selector.clone(),
            namespaces,
            topology_key: term.topology_key.clone(),
        }
    }

    pub fn matches(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        let in_namespace = match &self.namespaces {
            Namespaces::All => true,
            Namespaces::Listed(list) => list.iter().any(|n| n == namespace),
        };
        in_namespace
            && self
                .selector
                .as_ref()
                .is_some_and(|s| selector_matches(s, labels))
    }
}

/// What the scheduler remembers about a placed pod.
#[derive(Debug, PartialEq)]
pub struct PodInfo {
    pub key: String,
    pub namespace: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    /// The controller owner's uid: default spreading counts pods of the same owner.
    pub owner_uid: Option<String>,
    pub requests: Resources,
    /// CPU and memory as scoring counts them.
    pub non_zero: (i64, i64),
    pub host_ports: Vec<HostPort>,
    /// Required anti-affinity terms: other pods must keep away from this one.
    pub anti_affinity: Vec<AffinityTerm>,
}

impl PodInfo {
    pub fn new(pod: &Pod) -> PodInfo {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let host_ports = spec
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.host_port.is_some_and(|h| h > 0))
            .map(|p| HostPort {
                ip: p.host_ip.clone().unwrap_or_default(),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                port: p.host_port.unwrap_or_default(),
            })
            .collect();
        let anti_affinity = spec
            .affinity
            .as_ref()
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|terms| {
                terms
                    .iter()
                    .map(|t| AffinityTerm::new(t, &namespace))
                    .collect()
            })
            .unwrap_or_default();
        PodInfo {
            key: pod_key(pod),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            owner_uid: controller_ref(&pod.metadata).map(|r| r.uid.clone()),
            requests: pod_requests(&spec),
            non_zero: non_zero_requests(&spec),
            host_ports,
            anti_affinity,
            namespace,
        }
    }
}

/// What a node offers and which pods it accepts: the inputs of the filters that do not
/// depend on the pods already there. A change here can make waiting pods schedulable.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFacts {
    pub labels: BTreeMap<String, String>,
    /// The node's taints, plus `not-ready`/`unreachable` NoSchedule for a node that is
    /// not Ready but has not been tainted by the node lifecycle controller yet.
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resources,
    pub allowed_pods: i64,
}

impl NodeFacts {
    pub fn new(node: &Node) -> NodeFacts {
        let spec = node.spec.clone().unwrap_or_default();
        let mut taints = spec.taints.unwrap_or_default();
        if let Some(key) = readiness_taint(node) {
            if !taints
                .iter()
                .any(|t| t.key == key && t.effect == "NoSchedule")
            {
                taints.push(Taint {
                    key: key.to_string(),
                    effect: "NoSchedule".into(),
                    ..Default::default()
                });
            }
        }
        let (allocatable, allowed_pods) = node_allocatable(node);
        NodeFacts {
            labels: node.metadata.labels.clone().unwrap_or_default(),
            taints,
            unschedulable: spec.unschedulable.unwrap_or(false),
            allocatable,
            allowed_pods,
        }
    }
}

/// The taint a node's Ready condition implies: none when Ready, `not-ready` when not,
/// `unreachable` when its kubelet stopped reporting (`Unknown`).
fn readiness_taint(node: &Node) -> Option<&'static str> {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    match ready.map(|c| c.status.as_str()) {
        Some("True") => None,
        Some("Unknown") => Some(UNREACHABLE_TAINT),
        _ => Some(NOT_READY_TAINT),
    }
}

/// One node: its facts (absent while only pods name it) and the pods placed on it.
#[derive(Debug, Default)]
pub struct NodeInfo {
    pub name: String,
    pub facts: Option<NodeFacts>,
    pub requested: Resources,
    pub non_zero: (i64, i64),
    pub pod_count: i64,
    pub ports: Vec<HostPort>,
    pub pods: HashMap<String, Arc<PodInfo>>,
    pub owner_counts: HashMap<String, u32>,
}

impl NodeInfo {
    fn add(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero.0 += pod.non_zero.0;
        self.non_zero.1 += pod.non_zero.1;
        self.pod_count += 1;
        self.ports.extend(pod.host_ports.iter().cloned());
        if let Some(owner) = &pod.owner_uid {
            *self.owner_counts.entry(owner.clone()).or_default() += 1;
        }
        self.pods.insert(pod.key.clone(), pod);
    }

    fn remove(&mut self, key: &str) {
        let Some(pod) = self.pods.remove(key) else {
            return;
        };
        self.requested.subtract(&pod.requests);
        self.non_zero.0 -= pod.non_zero.0;
        self.non_zero.1 -= pod.non_zero.1;
        self.pod_count -= 1;
        for port in &pod.host_ports {
            if let Some(i) = self.ports.iter().position(|p| p == port) {
                self.ports.swap_remove(i);
            }
        }
        if let Some(owner) = &pod.owner_uid {
            if let Some(count) = self.owner_counts.get_mut(owner) {
                *count -= 1;
                if *count == 0 {
                    self.owner_counts.remove(owner);
                }
            }
        }
    }

    /// The node's value for a topology key (`kubernetes.io/hostname`, a zone label).
    pub fn topology_value(&self, key: &str) -> Option<&str> {
        self.facts.as_ref()?.labels.get(key).map(String::as_str)
    }
}

/// Where a pod is placed, and whether only the scheduler knows so far.
#[derive(Debug)]
pub struct Placement {
    pub node: String,
    pub assumed: bool,
    pub info: Arc<PodInfo>,
}

#[derive(Debug, Default)]
pub struct Cache {
    /// Sorted by name so that decisions are reproducible.
    pub nodes: BTreeMap<String, NodeInfo>,
    placed: HashMap<String, Placement>,
    /// Placed pods with required anti-affinity: every decision checks them, so they are
    /// indexed rather than found by scanning all pods.
    with_anti_affinity: HashSet<String>,
}

impl Cache {
    /// Record a node's current state; true when its facts changed (or it is new).
    pub fn set_node(&mut self, node: &Node) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        let facts = NodeFacts::new(node);
        let info = self.nodes.entry(name.clone()).or_insert_with(|| NodeInfo {
            name,
            ..Default::default()
        });
        if info.facts.as_ref() == Some(&facts) {
            return false;
        }
        info.facts = Some(facts);
        true
    }

    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.get_mut(name) {
            info.facts = None;
            if info.pods.is_empty() {
                self.nodes.remove(name);
            }
        }
    }

    pub fn placement(&self, key: &str) -> Option<&Placement> {
        self.placed.get(key)
    }

    /// Place (or move, or refresh) a pod on `node`.
    pub fn place(&mut self, info: Arc<PodInfo>, node: &str, assumed: bool) {
        self.forget(&info.key);
        if !info.anti_affinity.is_empty() {
            self.with_anti_affinity.insert(info.key.clone());
        }
        self.nodes
            .entry(node.to_string())
            .or_insert_with(|| NodeInfo {
                name: node.to_string(),
                ..Default::default()
            })
            .add(info.clone());
        self.placed.insert(
            info.key.clone(),
            Placement {
                node: node.to_string(),
                assumed,
                info,
            },
        );
    }

    /// Mark an assumed pod as seen bound by the API.
    pub fn confirm(&mut self, key: &str) {
        if let Some(placement) = self.placed.get_mut(key) {
            placement.assumed = false;
        }
    }

    /// Remove a pod from its node; returns where it was.
    pub fn forget(&mut self, key: &str) -> Option<Placement> {
        let placement = self.placed.remove(key)?;
        self.with_anti_affinity.remove(key);
        if let Some(node) = self.nodes.get_mut(&placement.node) {
            node.remove(key);
            if node.facts.is_none() && node.pods.is_empty() {
                self.nodes.remove(&placement.node);
            }
        }
        Some(placement)
    }

    /// Placed pods that have required anti-affinity terms, with their nodes.
    pub fn anti_affinity_pods(&self) -> impl Iterator<Item = (&NodeInfo, &PodInfo)> {
        self.with_anti_affinity.iter().filter_map(|key| {
            let placement = self.placed.get(key)?;
            Some((self.nodes.get(&placement.node)?, &*placement.info))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, cpu: &str, host_port: Option<i32>) -> Arc<PodInfo> {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                    "uid": "rs-uid", "controller": true}]},
            "spec": {"containers": [{"name": "c",
                "resources": {"requests": {"cpu": cpu}},
                "ports": host_port.map(|p| vec![json!({"containerPort": 80, "hostPort": p})]).unwrap_or_default()}]},
        }))
        .unwrap();
        Arc::new(PodInfo::new(&pod))
    }

    #[test]
    fn placing_and_forgetting_keeps_node_accounting_exact() {
        let mut cache = Cache::default();
        cache.place(pod("a", "100m", Some(8080)), "n1", true);
        cache.place(pod("b", "250m", None), "n1", false);
        let n1 = &cache.nodes["n1"];
        assert_eq!(n1.requested.milli_cpu, 350);
        assert_eq!(n1.pod_count, 2);
        assert_eq!(n1.ports.len(), 1);
        assert_eq!(n1.owner_counts["rs-uid"], 2);
        // Moving a pod takes it off its old node.
        cache.place(pod("a", "100m", Some(8080)), "n2", false);
        assert_eq!(cache.nodes["n1"].requested.milli_cpu, 250);
        assert!(cache.nodes["n1"].ports.is_empty());
        assert_eq!(cache.nodes["n2"].pod_count, 1);
        assert!(cache.forget("default/b").is_some());
        // A node known only through its pods disappears with them.
        assert!(!cache.nodes.contains_key("n1"));
    }

    #[test]
    fn a_node_that_is_not_ready_carries_the_matching_taint() {
        let node = |status: &str| -> Node {
            serde_json::from_value(json!({
                "metadata": {"name": "n"},
                "status": {"conditions": [{"type": "Ready", "status": status}]},
            }))
            .unwrap()
        };
        assert!(NodeFacts::new(&node("True")).taints.is_empty());
        assert_eq!(
            NodeFacts::new(&node("False")).taints[0].key,
            NOT_READY_TAINT
        );
        assert_eq!(
            NodeFacts::new(&node("Unknown")).taints[0].key,
            UNREACHABLE_TAINT
        );
        let mut cache = Cache::default();
        assert!(cache.set_node(&node("True")));
        assert!(!cache.set_node(&node("True")));
        assert!(cache.set_node(&node("False")));
    }

    #[test]
    fn host_ports_conflict_on_wildcards() {
        let port = |ip: &str, port| HostPort {
            ip: ip.into(),
            protocol: "TCP".into(),
            port,
        };
        assert!(port("", 80).conflicts(&port("10.0.0.1", 80)));
        assert!(port("10.0.0.1", 80).conflicts(&port("10.0.0.1", 80)));
        assert!(!port("10.0.0.1", 80).conflicts(&port("10.0.0.2", 80)));
        assert!(!port("", 80).conflicts(&port("", 81)));
    }
}
