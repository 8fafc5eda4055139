//! Which pods a ReplicaSet deletes first when it has too many (upstream's
//! `ActivePodsWithRanks`): the ones doing the least useful work go first.

use std::cmp::Ordering;
use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;

use crate::pod_control::ready_since;

/// `pods` ordered so that the first ones are the best to delete: unscheduled before
/// scheduled, pending before unknown before running, not ready before ready, pods
/// doubled up on a node before lonely ones, ready for less time before longer, more
/// restarts before fewer, newer before older.
pub fn deletion_order<'a>(pods: &[&'a Pod]) -> Vec<&'a Pod> {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for pod in pods {
        if let Some(node) = node_name(pod) {
            *per_node.entry(node).or_default() += 1;
        }
    }
    let rank = |pod: &Pod| node_name(pod).map_or(0, |n| per_node.get(n).copied().unwrap_or(0));
    let mut ordered = pods.to_vec();
    ordered.sort_by(|a, b| delete_first(a, rank(a), b, rank(b)));
    ordered
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn phase_rank(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Running") => 2,
        _ => 1,
    }
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| {
            cs.iter().map(|c| c.restart_count).max().unwrap_or(0)
        })
}

/// `Less` when `a` should be deleted before `b`.
fn delete_first(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize) -> Ordering {
    let scheduled = |p: &Pod| node_name(p).is_some();
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| ready_since(a).is_some().cmp(&ready_since(b).is_some()))
        .then_with(|| rank_b.cmp(&rank_a))
        // Ready more recently (a later timestamp) goes first.
        .then_with(|| ready_since(b).cmp(&ready_since(a)))
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| {
            let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(b).cmp(&created(a))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, phase: &str, ready_at: Option<&str>, created: &str) -> Pod {
        let conditions = match ready_at {
            Some(t) => json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]),
            None => json!([]),
        };
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"containers": [], "nodeName": node},
            "status": {"phase": phase, "conditions": conditions},
        }))
        .unwrap()
    }

    fn names(pods: Vec<&Pod>) -> Vec<&str> {
        pods.iter()
            .map(|p| p.metadata.name.as_deref().unwrap())
            .collect()
    }

    #[test]
    fn least_useful_pods_go_first() {
        let t1 = "2024-01-01T00:00:00Z";
        let t2 = "2024-01-01T00:01:00Z";
        let pods = [
            pod("ready-old", "n1", "Running", Some(t1), t1),
            pod("ready-new", "n2", "Running", Some(t2), t1),
            pod("unscheduled", "", "Pending", None, t1),
            pod("pending", "n3", "Pending", None, t1),
            pod("not-ready", "n4", "Running", None, t1),
            pod("not-ready-newer", "n5", "Running", None, t2),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        assert_eq!(
            names(deletion_order(&refs)),
            [
                "unscheduled",
                "pending",
                "not-ready-newer",
                "not-ready",
                "ready-new",
                "ready-old"
            ]
        );
    }

    #[test]
    fn doubled_up_pods_go_before_lonely_ones() {
        let t = "2024-01-01T00:00:00Z";
        let pods = [
            pod("alone", "n1", "Running", Some(t), t),
            pod("shared-a", "n2", "Running", Some(t), t),
            pod("shared-b", "n2", "Running", Some(t), t),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        assert_eq!(names(deletion_order(&refs))[2], "alone");
    }
}
