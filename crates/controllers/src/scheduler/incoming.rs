//! The pod being scheduled, read once per attempt ([`Incoming`]), and the cluster-wide
//! counts its pod (anti-)affinity and topology spread terms need ([`Topology`]), computed
//! in one pass over the placed pods before the per-node filters run, so that checking
//! a node is a lookup rather than a scan.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    NodeSelectorTerm, Pod, PreferredSchedulingTerm, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::cache::{AffinityTerm, Cache, NodeInfo, PodInfo};
use crate::matching::{node_selector_matches, selector_matches};

pub const ZONE_KEY: &str = "topology.kubernetes.io/zone";

/// A `topologySpreadConstraints` entry, with `matchLabelKeys` folded into the selector.
#[derive(Clone, Debug)]
pub struct SpreadConstraint {
    pub max_skew: u32,
    pub topology_key: String,
    /// `whenUnsatisfiable: DoNotSchedule` (a filter) rather than `ScheduleAnyway` (a score).
    pub hard: bool,
    pub selector: Option<LabelSelector>,
    pub min_domains: u32,
    /// Whether the incoming pod itself matches the selector (it adds one to its domain).
    pub self_match: bool,
}

impl SpreadConstraint {
    fn new(c: &TopologySpreadConstraint, labels: &BTreeMap<String, String>) -> Self {
        let mut selector = c.label_selector.clone();
        if let Some(sel) = selector.as_mut() {
            for key in c.match_label_keys.iter().flatten() {
                if let Some(value) = labels.get(key) {
                    sel.match_labels
                        .get_or_insert_with(BTreeMap::new)
                        .insert(key.clone(), value.clone());
                }
            }
        }
        let self_match = selector
            .as_ref()
            .is_some_and(|s| selector_matches(s, labels));
        SpreadConstraint {
            max_skew: u32::try_from(c.max_skew).unwrap_or(1).max(1),
            topology_key: c.topology_key.clone(),
            hard: c.when_unsatisfiable != "ScheduleAnyway",
            selector,
            min_domains: c
                .min_domains
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(1),
            self_match,
        }
    }

    fn counts(&self, namespace: &str, pod: &PodInfo) -> bool {
        pod.namespace == namespace
            && self
                .selector
                .as_ref()
                .is_some_and(|s| selector_matches(s, &pod.labels))
    }
}

/// What the scheduler needs of the pod it is placing.
#[derive(Debug)]
pub struct Incoming {
    pub info: Arc<PodInfo>,
    pub tolerations: Vec<Toleration>,
    pub node_selector: BTreeMap<String, String>,
    pub required_node_terms: Option<Vec<NodeSelectorTerm>>,
    pub preferred_node_terms: Vec<PreferredSchedulingTerm>,
    pub affinity: Vec<AffinityTerm>,
    /// Preferred pod affinity (positive weight) and anti-affinity (negative weight).
    pub preferred_pod_terms: Vec<(i64, AffinityTerm)>,
    pub spread: Vec<SpreadConstraint>,
    /// Selectors of the Services that select the pod: default spreading counts their pods
    /// when the pod has no controller owner.
    pub service_selectors: Vec<BTreeMap<String, String>>,
}

impl Incoming {
    pub fn new(pod: &Pod, service_selectors: Vec<BTreeMap<String, String>>) -> Incoming {
        let info = Arc::new(PodInfo::new(pod));
        let spec = pod.spec.clone().unwrap_or_default();
        let affinity = spec.affinity.unwrap_or_default();
        let node_affinity = affinity.node_affinity.unwrap_or_default();
        let pod_affinity = affinity.pod_affinity.unwrap_or_default();
        let pod_anti_affinity = affinity.pod_anti_affinity.unwrap_or_default();
        let ns = info.namespace.clone();
        let mut preferred_pod_terms = Vec::new();
        for weighted in pod_affinity
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
        {
            let term = AffinityTerm::new(&weighted.pod_affinity_term, &ns);
            preferred_pod_terms.push((i64::from(weighted.weight), term));
        }
        for weighted in pod_anti_affinity
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
        {
            let term = AffinityTerm::new(&weighted.pod_affinity_term, &ns);
            preferred_pod_terms.push((-i64::from(weighted.weight), term));
        }
        Incoming {
            tolerations: spec.tolerations.unwrap_or_default(),
            node_selector: spec.node_selector.unwrap_or_default(),
            required_node_terms: node_affinity
                .required_during_scheduling_ignored_during_execution
                .map(|s| s.node_selector_terms),
            preferred_node_terms: node_affinity
                .preferred_during_scheduling_ignored_during_execution
                .unwrap_or_default(),
            affinity: pod_affinity
                .required_during_scheduling_ignored_during_execution
                .iter()
                .flatten()
                .map(|t| AffinityTerm::new(t, &ns))
                .collect(),
            preferred_pod_terms,
            spread: spec
                .topology_spread_constraints
                .iter()
                .flatten()
                .map(|c| SpreadConstraint::new(c, &info.labels))
                .collect(),
            service_selectors,
            info,
        }
    }

    /// `nodeSelector` and required node affinity (upstream's NodeAffinity filter).
    pub fn matches_node_affinity(&self, node: &str, labels: &BTreeMap<String, String>) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self
                .required_node_terms
                .as_ref()
                .is_none_or(|terms| node_selector_matches(terms, node, labels))
    }

    fn needs_pod_scan(&self) -> bool {
        !self.info.anti_affinity.is_empty()
            || !self.affinity.is_empty()
            || !self.preferred_pod_terms.is_empty()
            || !self.spread.is_empty()
            || (self.info.owner_uid.is_none() && !self.service_selectors.is_empty())
    }

    /// Whether default spreading counts `pod` as a sibling of the incoming pod.
    fn is_sibling(&self, pod: &PodInfo) -> bool {
        if pod.namespace != self.info.namespace || pod.key == self.info.key {
            return false;
        }
        match &self.info.owner_uid {
            Some(owner) => pod.owner_uid.as_ref() == Some(owner),
            None => self
                .service_selectors
                .iter()
                .any(|sel| sel.iter().all(|(k, v)| pod.labels.get(k) == Some(v))),
        }
    }
}

/// Matching pods per topology domain of one spread constraint.
#[derive(Debug, Default)]
pub struct SpreadCounts {
    pub counts: HashMap<String, u32>,
    /// The smallest count over the eligible domains (0 below `minDomains`).
    pub min: u32,
}

/// Cluster-wide counts for one attempt.
#[derive(Debug, Default)]
pub struct Topology {
    /// Per required affinity term: matching pods per topology value.
    pub affinity: Vec<HashMap<String, u32>>,
    /// Per required anti-affinity term of the incoming pod: values holding a match.
    pub anti_affinity: Vec<HashSet<String>>,
    /// (topology key, value) pairs where a placed pod's required anti-affinity rejects
    /// the incoming pod.
    pub existing_anti_affinity: HashSet<(String, String)>,
    /// Per preferred term: its signed weight, topology key and matching pods per value.
    pub preferred: Vec<(i64, String, HashMap<String, u32>)>,
    pub spread: Vec<SpreadCounts>,
    /// Default spreading: sibling pods per node and per zone.
    pub siblings_by_node: HashMap<String, u32>,
    pub siblings_by_zone: HashMap<String, u32>,
}

impl Topology {
    pub fn new(pod: &Incoming, cache: &Cache) -> Topology {
        let mut topology = Topology {
            affinity: vec![HashMap::new(); pod.affinity.len()],
            anti_affinity: vec![HashSet::new(); pod.info.anti_affinity.len()],
            preferred: pod
                .preferred_pod_terms
                .iter()
                .map(|(w, t)| (*w, t.topology_key.clone(), HashMap::new()))
                .collect(),
            spread: pod.spread.iter().map(|_| SpreadCounts::default()).collect(),
            ..Default::default()
        };
        topology.existing_anti_affinity(pod, cache);
        let scan = pod.needs_pod_scan();
        for node in cache.nodes.values() {
            let Some(facts) = &node.facts else { continue };
            if scan {
                for placed in node.pods.values() {
                    topology.count_pod(pod, node, placed);
                }
            } else if let Some(owner) = &pod.info.owner_uid {
                let n = node.owner_counts.get(owner).copied().unwrap_or(0);
                topology.add_sibling(node, n);
            }
            for (i, constraint) in pod.spread.iter().enumerate() {
                // Domains come from the nodes the pod could go to (nodeAffinityPolicy
                // Honor, upstream's default), even when they hold no matching pod yet.
                if let Some(value) = facts.labels.get(&constraint.topology_key) {
                    if pod.matches_node_affinity(&node.name, &facts.labels) {
                        topology.spread[i].counts.entry(value.clone()).or_default();
                    }
                }
            }
        }
        for (i, constraint) in pod.spread.iter().enumerate() {
            let counts = &mut topology.spread[i];
            counts.min = if (counts.counts.len() as u32) < constraint.min_domains {
                0
            } else {
                counts.counts.values().copied().min().unwrap_or(0)
            };
        }
        topology
    }

    fn add_sibling(&mut self, node: &NodeInfo, n: u32) {
        if n == 0 {
            return;
        }
        *self.siblings_by_node.entry(node.name.clone()).or_default() += n;
        if let Some(zone) = node.topology_value(ZONE_KEY) {
            *self.siblings_by_zone.entry(zone.to_string()).or_default() += n;
        }
    }

    fn count_pod(&mut self, pod: &Incoming, node: &NodeInfo, placed: &PodInfo) {
        if placed.key == pod.info.key {
            return;
        }
        if pod.is_sibling(placed) {
            self.add_sibling(node, 1);
        }
        let value = |key: &str| node.topology_value(key).map(str::to_string);
        for (i, term) in pod.affinity.iter().enumerate() {
            if term.matches(&placed.namespace, &placed.labels) {
                if let Some(v) = value(&term.topology_key) {
                    *self.affinity[i].entry(v).or_default() += 1;
                }
            }
        }
        for (i, term) in pod.info.anti_affinity.iter().enumerate() {
            if term.matches(&placed.namespace, &placed.labels) {
                if let Some(v) = value(&term.topology_key) {
                    self.anti_affinity[i].insert(v);
                }
            }
        }
        for (i, (_, term)) in pod.preferred_pod_terms.iter().enumerate() {
            if term.matches(&placed.namespace, &placed.labels) {
                if let Some(v) = value(&term.topology_key) {
                    *self.preferred[i].2.entry(v).or_default() += 1;
                }
            }
        }
        for (i, constraint) in pod.spread.iter().enumerate() {
            if constraint.counts(&pod.info.namespace, placed) {
                let eligible = node
                    .facts
                    .as_ref()
                    .is_some_and(|f| pod.matches_node_affinity(&node.name, &f.labels));
                if let (true, Some(v)) = (eligible, value(&constraint.topology_key)) {
                    *self.spread[i].counts.entry(v).or_default() += 1;
                }
            }
        }
    }

    fn existing_anti_affinity(&mut self, pod: &Incoming, cache: &Cache) {
        for (node, placed) in cache.anti_affinity_pods() {
            if placed.key == pod.info.key {
                continue;
            }
            for term in &placed.anti_affinity {
                if term.matches(&pod.info.namespace, &pod.info.labels) {
                    if let Some(v) = node.topology_value(&term.topology_key) {
                        self.existing_anti_affinity
                            .insert((term.topology_key.clone(), v.to_string()));
                    }
                }
            }
        }
    }

    /// Required pod affinity on `node` (upstream's InterPodAffinity filter, affinity
    /// half): every term has a matching pod in the node's domain. A pod that matches its
    /// own terms while no other pod does may start the group anywhere with the keys.
    pub fn affinity_satisfied(&self, pod: &Incoming, node: &NodeInfo) -> bool {
        if pod.affinity.is_empty() {
            return true;
        }
        let has_keys = pod
            .affinity
            .iter()
            .all(|t| node.topology_value(&t.topology_key).is_some());
        if self.affinity.iter().all(HashMap::is_empty) {
            return has_keys
                && pod
                    .affinity
                    .iter()
                    .all(|t| t.matches(&pod.info.namespace, &pod.info.labels));
        }
        pod.affinity
            .iter()
            .zip(&self.affinity)
            .all(|(term, counts)| {
                node.topology_value(&term.topology_key)
                    .is_some_and(|v| counts.get(v).is_some_and(|n| *n > 0))
            })
    }

    /// The incoming pod's own required anti-affinity on `node`.
    pub fn anti_affinity_satisfied(&self, pod: &Incoming, node: &NodeInfo) -> bool {
        pod.info
            .anti_affinity
            .iter()
            .zip(&self.anti_affinity)
            .all(|(term, values)| {
                node.topology_value(&term.topology_key)
                    .is_none_or(|v| !values.contains(v))
            })
    }

    /// Placed pods' required anti-affinity against the incoming pod on `node`.
    pub fn existing_anti_affinity_satisfied(&self, node: &NodeInfo) -> bool {
        if self.existing_anti_affinity.is_empty() {
            return true;
        }
        let Some(facts) = &node.facts else {
            return true;
        };
        !facts.labels.iter().any(|(k, v)| {
            self.existing_anti_affinity
                .contains(&(k.clone(), v.clone()))
        })
    }
}
