//! Scores: among the nodes that fit, which suits the pod best. Each plugin gives every
//! feasible node 0..=100 (normalised across the feasible nodes, as upstream's
//! `NormalizeScore`), and the weighted sum decides. Weights are upstream's defaults:
//! TaintToleration 3, NodeAffinity 2, InterPodAffinity 2, PodTopologySpread 2,
//! NodeResourcesFit (least allocated) 1, NodeResourcesBalancedAllocation 1.

use super::cache::NodeInfo;
use super::incoming::{Incoming, Topology, ZONE_KEY};
use crate::matching::node_term_matches;
use k3rs_core::scheduling::tolerates;

const MAX: i64 = 100;

/// The weighted score of each node in `nodes` (all of which passed the filters).
pub fn score(pod: &Incoming, nodes: &[&NodeInfo], topology: &Topology) -> Vec<i64> {
    let taints = reverse(nodes.iter().map(|n| prefer_no_schedule(pod, n)).collect());
    let affinity = by_max(
        nodes
            .iter()
            .map(|n| preferred_node_affinity(pod, n))
            .collect(),
    );
    let pod_affinity = min_max(
        nodes
            .iter()
            .map(|n| preferred_pod_affinity(n, topology))
            .collect(),
    );
    let spread = reverse(
        nodes
            .iter()
            .map(|n| spread_count(pod, n, topology))
            .collect(),
    );
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            3 * taints[i]
                + 2 * affinity[i]
                + 2 * pod_affinity[i]
                + 2 * spread[i]
                + least_allocated(pod, n)
                + balanced_allocation(pod, n)
        })
        .collect()
}

/// The index of the highest score; ties go round-robin by `turn`, so equal nodes fill
/// evenly (upstream picks among ties at random).
pub fn best(scores: &[i64], turn: usize) -> Option<usize> {
    let top = *scores.iter().max()?;
    let ties: Vec<usize> = (0..scores.len()).filter(|i| scores[*i] == top).collect();
    Some(ties[turn % ties.len()])
}

/// Untolerated `PreferNoSchedule` taints (fewer is better).
fn prefer_no_schedule(pod: &Incoming, node: &NodeInfo) -> i64 {
    let Some(facts) = &node.facts else { return 0 };
    facts
        .taints
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule")
        .filter(|t| !pod.tolerations.iter().any(|tol| tolerates(tol, t)))
        .count() as i64
}

/// Sum of the weights of the preferred node affinity terms the node matches.
fn preferred_node_affinity(pod: &Incoming, node: &NodeInfo) -> i64 {
    let Some(facts) = &node.facts else { return 0 };
    pod.preferred_node_terms
        .iter()
        .filter(|t| node_term_matches(&t.preference, &node.name, &facts.labels))
        .map(|t| i64::from(t.weight))
        .sum()
}

/// Preferred pod affinity minus anti-affinity, weighted by matching pods in the domain.
fn preferred_pod_affinity(node: &NodeInfo, topology: &Topology) -> i64 {
    topology
        .preferred
        .iter()
        .map(|(weight, key, counts)| {
            let n = node
                .topology_value(key)
                .and_then(|v| counts.get(v))
                .copied()
                .unwrap_or(0);
            weight * i64::from(n)
        })
        .sum()
}

/// How many pods the pod would be spread against in the node's domains (fewer is
/// better): its `ScheduleAnyway` constraints, or, without constraints, upstream's
/// default spreading of pods of one owner (or Service) over hosts and zones.
fn spread_count(pod: &Incoming, node: &NodeInfo, topology: &Topology) -> i64 {
    if !pod.spread.is_empty() {
        return pod
            .spread
            .iter()
            .zip(&topology.spread)
            .filter(|(c, _)| !c.hard)
            .map(|(c, counts)| {
                node.topology_value(&c.topology_key)
                    .and_then(|v| counts.counts.get(v))
                    .copied()
                    .map_or(0, i64::from)
            })
            .sum();
    }
    let on_node = topology
        .siblings_by_node
        .get(&node.name)
        .copied()
        .unwrap_or(0);
    let in_zone = node
        .topology_value(ZONE_KEY)
        .and_then(|z| topology.siblings_by_zone.get(z))
        .copied()
        .unwrap_or(0);
    i64::from(on_node) * 2 + i64::from(in_zone)
}

/// Upstream's LeastAllocated: the share of CPU and memory left after placing the pod.
fn least_allocated(pod: &Incoming, node: &NodeInfo) -> i64 {
    let Some(facts) = &node.facts else { return 0 };
    let free = |requested: i64, allocatable: i64| {
        if allocatable <= 0 || requested > allocatable {
            0
        } else {
            (allocatable - requested) * MAX / allocatable
        }
    };
    let cpu = free(
        node.non_zero.0 + pod.info.non_zero.0,
        facts.allocatable.milli_cpu,
    );
    let memory = free(
        node.non_zero.1 + pod.info.non_zero.1,
        facts.allocatable.memory,
    );
    (cpu + memory) / 2
}

/// Upstream's BalancedAllocation: CPU and memory used in similar proportions.
fn balanced_allocation(pod: &Incoming, node: &NodeInfo) -> i64 {
    let Some(facts) = &node.facts else { return 0 };
    let fraction = |requested: i64, allocatable: i64| {
        if allocatable <= 0 {
            1.0
        } else {
            (requested as f64 / allocatable as f64).min(1.0)
        }
    };
    let cpu = fraction(
        node.non_zero.0 + pod.info.non_zero.0,
        facts.allocatable.milli_cpu,
    );
    let memory = fraction(
        node.non_zero.1 + pod.info.non_zero.1,
        facts.allocatable.memory,
    );
    // The standard deviation of two values is half their distance.
    let deviation = (cpu - memory).abs() / 2.0;
    ((1.0 - deviation) * MAX as f64) as i64
}

/// Higher raw value, higher score: `raw * 100 / max`.
fn by_max(raw: Vec<i64>) -> Vec<i64> {
    let max = raw.iter().copied().max().unwrap_or(0);
    raw.into_iter()
        .map(|v| if max > 0 { v * MAX / max } else { 0 })
        .collect()
}

/// Lower raw value, higher score: `100 - raw * 100 / max`.
fn reverse(raw: Vec<i64>) -> Vec<i64> {
    let max = raw.iter().copied().max().unwrap_or(0);
    raw.into_iter()
        .map(|v| if max > 0 { MAX - v * MAX / max } else { MAX })
        .collect()
}

/// Scaled onto 0..=100 between the lowest and highest raw values.
fn min_max(raw: Vec<i64>) -> Vec<i64> {
    let max = raw.iter().copied().max().unwrap_or(0);
    let min = raw.iter().copied().min().unwrap_or(0);
    raw.into_iter()
        .map(|v| {
            if max > min {
                (v - min) * MAX / (max - min)
            } else {
                0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::cache::{Cache, PodInfo};
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::{json, Value};
    use std::sync::Arc;

    fn node(name: &str, labels: Value, taints: Value) -> Node {
        let mut all = json!({"kubernetes.io/hostname": name});
        for (k, v) in labels.as_object().unwrap() {
            all[k] = v.clone();
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": all},
            "spec": {"taints": taints},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap()
    }

    fn pod(name: &str, labels: Value, spec: Value, owner: Option<&str>) -> Pod {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "c"}]);
        let owners: Vec<Value> = owner
            .map(|uid| json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": uid, "controller": true}))
            .into_iter()
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "labels": labels, "ownerReferences": owners},
            "spec": spec,
        }))
        .unwrap()
    }

    /// Schedule `p` on the best node of `cache` (every node fits) and place it there.
    fn schedule(
        cache: &mut Cache,
        p: &Pod,
        services: Vec<std::collections::BTreeMap<String, String>>,
    ) -> String {
        let incoming = Incoming::new(p, services);
        let topology = Topology::new(&incoming, cache);
        let nodes: Vec<&NodeInfo> = cache.nodes.values().collect();
        let scores = score(&incoming, &nodes, &topology);
        let chosen = nodes[best(&scores, 0).unwrap()].name.clone();
        cache.place(Arc::new(PodInfo::new(p)), &chosen, true);
        chosen
    }

    fn three_nodes() -> Cache {
        let mut cache = Cache::default();
        for name in ["n1", "n2", "n3"] {
            cache.set_node(&node(name, json!({}), json!([])));
        }
        cache
    }

    fn spread_of(placed: &[String]) -> Vec<usize> {
        ["n1", "n2", "n3"]
            .iter()
            .map(|n| placed.iter().filter(|p| p == n).count())
            .collect()
    }

    #[test]
    fn replicas_of_one_owner_spread_across_nodes() {
        let mut cache = three_nodes();
        // Unrelated pods crowd n1 a little; the replicas still spread evenly.
        cache.place(
            Arc::new(PodInfo::new(&pod("other", json!({}), json!({}), None))),
            "n1",
            false,
        );
        let placed: Vec<String> = (0..6)
            .map(|i| {
                schedule(
                    &mut cache,
                    &pod(
                        &format!("r{i}"),
                        json!({"app": "web"}),
                        json!({}),
                        Some("rs-1"),
                    ),
                    vec![],
                )
            })
            .collect();
        assert_eq!(spread_of(&placed), [2, 2, 2]);
    }

    #[test]
    fn pods_selected_by_a_service_spread_without_an_owner() {
        let mut cache = three_nodes();
        let selector: std::collections::BTreeMap<String, String> =
            [("app".to_string(), "api".to_string())].into();
        let placed: Vec<String> = (0..6)
            .map(|i| {
                schedule(
                    &mut cache,
                    &pod(&format!("a{i}"), json!({"app": "api"}), json!({}), None),
                    vec![selector.clone()],
                )
            })
            .collect();
        assert_eq!(spread_of(&placed), [2, 2, 2]);
    }

    #[test]
    fn preferences_steer_the_choice() {
        let mut cache = Cache::default();
        cache.set_node(&node(
            "soft",
            json!({}),
            json!([{"key": "k", "effect": "PreferNoSchedule"}]),
        ));
        cache.set_node(&node("ssd", json!({"disk": "ssd"}), json!([])));
        cache.set_node(&node("plain", json!({}), json!([])));
        let prefers_ssd = pod(
            "p",
            json!({}),
            json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}}),
            None,
        );
        assert_eq!(schedule(&mut cache, &prefers_ssd, vec![]), "ssd");
        // Without preferences the PreferNoSchedule node loses to the emptier plain node.
        assert_eq!(
            schedule(&mut cache, &pod("q", json!({}), json!({}), None), vec![]),
            "plain"
        );
        // Preferred pod affinity to app=cache follows the pod that has it.
        cache.place(
            Arc::new(PodInfo::new(&pod(
                "cache",
                json!({"app": "cache"}),
                json!({}),
                None,
            ))),
            "ssd",
            false,
        );
        let near_cache = pod(
            "near",
            json!({}),
            json!({"affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "cache"}},
                 "topologyKey": "kubernetes.io/hostname"}}]}}}),
            None,
        );
        assert_eq!(schedule(&mut cache, &near_cache, vec![]), "ssd");
    }

    #[test]
    fn ties_rotate() {
        assert_eq!(best(&[5, 7, 7, 1], 0), Some(1));
        assert_eq!(best(&[5, 7, 7, 1], 1), Some(2));
        assert_eq!(best(&[], 0), None);
    }
}
