//! The DaemonSet controller's decisions, as pure functions of what the informers show:
//! which nodes need a pod, which pods must go (upstream's `manage`), which old pods a
//! rolling update replaces next, and the status counts. Nothing here talks to the API.

use std::cmp::Ordering;

use k8s_openapi::api::core::v1::Pod;

use super::placement::Placement;
use crate::controller_revision::REVISION_HASH_LABEL;
use crate::pod_control::{is_available, is_ready, is_terminating};

/// Label recording the DaemonSet generation a pod was made from.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// One node as the DaemonSet sees it.
pub struct NodeView<'a> {
    pub name: &'a str,
    pub placement: Placement,
    /// The DaemonSet's pods for this node, except finished pods already being deleted.
    pub pods: Vec<&'a Pod>,
}

/// What the current template's pods look like.
#[derive(Clone, Copy, Debug)]
pub struct Revision<'a> {
    pub hash: &'a str,
    pub generation: i64,
}

impl Revision<'_> {
    /// Upstream's `IsPodUpdated`: made from this generation or this template hash.
    pub fn is_current(&self, pod: &Pod) -> bool {
        let labels = pod.metadata.labels.as_ref();
        let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
        label(REVISION_HASH_LABEL) == Some(self.hash)
            || label(TEMPLATE_GENERATION_LABEL) == Some(self.generation.to_string().as_str())
    }
}

/// A pod to delete, with the uid we saw (a precondition, so a stale view never deletes a
/// newer pod of the same name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doomed {
    pub name: String,
    pub uid: String,
}

impl Doomed {
    fn of(pod: &Pod) -> Self {
        Doomed {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
        }
    }
}

/// Pods to create (by node) and to delete.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub create_on: Vec<String>,
    pub delete: Vec<Doomed>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create_on.is_empty() && self.delete.is_empty()
    }
}

fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed") | Some("Succeeded")
    )
}

/// Oldest first; among equals, the name decides so the choice is stable.
fn by_age(a: &&Pod, b: &&Pod) -> Ordering {
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    created(a)
        .cmp(&created(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Upstream's `manage`: a pod on every node that should run one, none where none may
/// stay, finished pods replaced, duplicates removed, and pods for nodes that no longer
/// exist (`orphans`) deleted.
pub fn manage(nodes: &[NodeView], orphans: &[&Pod], surge: bool, revision: Revision) -> Plan {
    let mut plan = Plan::default();
    for node in nodes {
        let live: Vec<&Pod> = node
            .pods
            .iter()
            .copied()
            .filter(|p| !is_terminating(p))
            .collect();
        if node.placement.should_run && node.pods.is_empty() {
            plan.create_on.push(node.name.to_string());
            continue;
        }
        if !node.placement.should_continue_running {
            plan.delete.extend(live.iter().map(|p| Doomed::of(p)));
            continue;
        }
        if !node.placement.should_run {
            continue;
        }
        // Finished pods go (the next pass creates their replacement once they are gone).
        plan.delete.extend(
            live.iter()
                .filter(|p| is_finished(p))
                .map(|p| Doomed::of(p)),
        );
        let mut running: Vec<&Pod> = live.into_iter().filter(|p| !is_finished(p)).collect();
        running.sort_by(by_age);
        if surge {
            // Keep the oldest current pod and the oldest old one; a rolling update decides
            // when the old one goes.
            let (current, old): (Vec<&Pod>, Vec<&Pod>) =
                running.into_iter().partition(|p| revision.is_current(p));
            plan.delete
                .extend(current.iter().skip(1).map(|p| Doomed::of(p)));
            plan.delete
                .extend(old.iter().skip(1).map(|p| Doomed::of(p)));
        } else {
            plan.delete
                .extend(running.iter().skip(1).map(|p| Doomed::of(p)));
        }
    }
    plan.delete.extend(
        orphans
            .iter()
            .filter(|p| !is_terminating(p))
            .map(|p| Doomed::of(p)),
    );
    plan
}

/// Rolling-update limits, resolved against the desired number of pods.
#[derive(Clone, Copy, Debug)]
pub struct Rollout {
    pub max_unavailable: usize,
    pub max_surge: usize,
    pub min_ready_seconds: i32,
    pub now: jiff::Timestamp,
}

/// The node's current and old pod, ignoring terminating ones; `None` if it has more than
/// one of either (the manage pass cleans that up first).
fn current_and_old<'a>(
    node: &NodeView<'a>,
    revision: Revision,
) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let mut current = None;
    let mut old = None;
    for pod in node.pods.iter().copied().filter(|p| !is_terminating(p)) {
        let slot = if revision.is_current(pod) {
            &mut current
        } else {
            &mut old
        };
        if slot.replace(pod).is_some() {
            return None;
        }
    }
    Some((current, old))
}

/// Upstream's `rollingUpdate`: replace old pods while at most `max_unavailable` nodes lack
/// an available pod; with `max_surge`, start the new pod next to the old one first and
/// delete the old one once the new one is available.
pub fn rolling_update(nodes: &[NodeView], revision: Revision, rollout: Rollout) -> Plan {
    let available = |p: &Pod| is_available(p, rollout.min_ready_seconds, rollout.now);
    let mut plan = Plan::default();
    let mut unavailable = 0;
    let mut candidates = Vec::new();
    let mut surging = 0;
    let mut surge_candidates = Vec::new();
    for node in nodes.iter().filter(|n| n.placement.should_run) {
        let Some((current, old)) = current_and_old(node, revision) else {
            unavailable += 1;
            surging += 1;
            continue;
        };
        match (current, old) {
            (Some(current), Some(old)) => {
                // Already surged here: the old pod goes once the new one is available.
                if available(current) {
                    plan.delete.push(Doomed::of(old));
                } else {
                    surging += 1;
                    unavailable += usize::from(!available(old));
                }
            }
            (Some(current), None) => unavailable += usize::from(!available(current)),
            (None, Some(old)) if !available(old) => {
                // Nothing to lose: replace it at once.
                unavailable += 1;
                if rollout.max_surge > 0 {
                    plan.create_on.push(node.name.to_string());
                } else {
                    plan.delete.push(Doomed::of(old));
                }
            }
            (None, Some(old)) => {
                candidates.push(Doomed::of(old));
                surge_candidates.push(node.name.to_string());
            }
            // A node with no pod (or only terminating ones) is unavailable.
            (None, None) => unavailable += 1,
        }
    }
    if rollout.max_surge > 0 {
        let room = rollout.max_surge.saturating_sub(surging);
        plan.create_on
            .extend(surge_candidates.into_iter().take(room));
    } else {
        let room = rollout.max_unavailable.saturating_sub(unavailable);
        plan.delete.extend(candidates.into_iter().take(room));
    }
    plan
}

/// The DaemonSet status counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub desired: i32,
    pub current: i32,
    pub misscheduled: i32,
    pub ready: i32,
    pub available: i32,
    pub updated: i32,
}

/// Count nodes as upstream's `updateDaemonSetStatus` does, judging each node by its
/// current pod if it has one, else its oldest pod.
pub fn status(nodes: &[NodeView], revision: Revision, rollout: Rollout) -> Counts {
    let mut counts = Counts::default();
    for node in nodes {
        let scheduled = !node.pods.is_empty();
        if !node.placement.should_run {
            counts.misscheduled += i32::from(scheduled);
            continue;
        }
        counts.desired += 1;
        if !scheduled {
            continue;
        }
        counts.current += 1;
        let mut pods = node.pods.clone();
        pods.sort_by(by_age);
        let pod = pods
            .iter()
            .find(|p| revision.is_current(p) && !is_terminating(p))
            .or(pods.first())
            .copied();
        let Some(pod) = pod else { continue };
        if is_ready(pod) {
            counts.ready += 1;
            counts.available +=
                i32::from(is_available(pod, rollout.min_ready_seconds, rollout.now));
        }
        counts.updated += i32::from(revision.is_current(pod));
    }
    counts
}

/// When a ready pod that is not yet available (minReadySeconds) becomes available, so
/// the status can be refreshed then.
pub fn next_availability(nodes: &[NodeView], rollout: Rollout) -> Option<i64> {
    nodes
        .iter()
        .flat_map(|n| n.pods.iter())
        .filter_map(|p| crate::pod_control::ready_since(p))
        .map(|since| {
            since.as_second() + i64::from(rollout.min_ready_seconds) - rollout.now.as_second()
        })
        .filter(|wait| *wait > 0)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RUN: Placement = Placement {
        should_run: true,
        should_continue_running: true,
    };
    const REV: Revision = Revision {
        hash: "new",
        generation: 2,
    };

    fn pod(name: &str, hash: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "uid": format!("uid-{name}"),
                "labels": {"controller-revision-hash": hash, "pod-template-generation": "1"},
                "creationTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" },
                 "lastTransitionTime": "2024-01-01T00:00:00Z"}]},
        }))
        .unwrap()
    }

    fn rollout(max_unavailable: usize, max_surge: usize) -> Rollout {
        Rollout {
            max_unavailable,
            max_surge,
            min_ready_seconds: 0,
            now: jiff::Timestamp::now(),
        }
    }

    fn names(plan: &Plan) -> Vec<&str> {
        plan.delete.iter().map(|d| d.name.as_str()).collect()
    }

    #[test]
    fn manage_creates_deletes_and_deduplicates() {
        let (a, b1, b2) = (
            pod("a", "new", true),
            pod("b1", "new", true),
            pod("b2", "new", true),
        );
        let mut failed = pod("c", "new", false);
        failed.status.as_mut().unwrap().phase = Some("Failed".into());
        let orphan = pod("gone", "new", true);
        let nodes = [
            NodeView {
                name: "empty",
                placement: RUN,
                pods: vec![],
            },
            NodeView {
                name: "dup",
                placement: RUN,
                pods: vec![&b2, &b1],
            },
            NodeView {
                name: "failed",
                placement: RUN,
                pods: vec![&failed],
            },
            NodeView {
                name: "evicting",
                placement: Placement {
                    should_run: false,
                    should_continue_running: false,
                },
                pods: vec![&a],
            },
            NodeView {
                name: "cordoned",
                placement: Placement {
                    should_run: false,
                    should_continue_running: true,
                },
                pods: vec![],
            },
        ];
        let plan = manage(&nodes, &[&orphan], false, REV);
        assert_eq!(plan.create_on, vec!["empty"]);
        assert_eq!(names(&plan), vec!["b2", "c", "a", "gone"]);
        assert_eq!(plan.delete[0].uid, "uid-b2");
    }

    #[test]
    fn rolling_update_respects_max_unavailable() {
        let (a, b, c) = (
            pod("a", "old", true),
            pod("b", "old", true),
            pod("c", "old", false),
        );
        let nodes = [
            NodeView {
                name: "na",
                placement: RUN,
                pods: vec![&a],
            },
            NodeView {
                name: "nb",
                placement: RUN,
                pods: vec![&b],
            },
        ];
        assert_eq!(
            names(&rolling_update(&nodes, REV, rollout(1, 0))),
            vec!["a"]
        );
        assert_eq!(
            names(&rolling_update(&nodes, REV, rollout(2, 0))),
            vec!["a", "b"]
        );
        // An unavailable old pod is replaced at once and uses up the budget.
        let nodes = [
            NodeView {
                name: "na",
                placement: RUN,
                pods: vec![&a],
            },
            NodeView {
                name: "nc",
                placement: RUN,
                pods: vec![&c],
            },
        ];
        assert_eq!(
            names(&rolling_update(&nodes, REV, rollout(1, 0))),
            vec!["c"]
        );
        // A node waiting for its new pod counts as unavailable.
        let fresh = pod("f", "new", false);
        let nodes = [
            NodeView {
                name: "na",
                placement: RUN,
                pods: vec![&a],
            },
            NodeView {
                name: "nf",
                placement: RUN,
                pods: vec![&fresh],
            },
        ];
        assert!(rolling_update(&nodes, REV, rollout(1, 0)).is_empty());
    }

    #[test]
    fn surge_creates_first_then_deletes() {
        let (a, b) = (pod("a", "old", true), pod("b", "old", true));
        let nodes = [
            NodeView {
                name: "na",
                placement: RUN,
                pods: vec![&a],
            },
            NodeView {
                name: "nb",
                placement: RUN,
                pods: vec![&b],
            },
        ];
        let plan = rolling_update(&nodes, REV, rollout(0, 1));
        assert_eq!(
            (plan.create_on, plan.delete),
            (vec!["na".to_string()], vec![])
        );
        let new_ready = pod("a2", "new", true);
        let nodes = [
            NodeView {
                name: "na",
                placement: RUN,
                pods: vec![&a, &new_ready],
            },
            NodeView {
                name: "nb",
                placement: RUN,
                pods: vec![&b],
            },
        ];
        let plan = rolling_update(&nodes, REV, rollout(0, 1));
        assert_eq!(names(&plan), vec!["a"]);
        assert_eq!(plan.create_on, vec!["nb"]);
    }

    #[test]
    fn status_counts_nodes() {
        let (a, b) = (pod("a", "new", true), pod("b", "old", false));
        let stray = pod("s", "new", true);
        let nodes = [
            NodeView {
                name: "na",
                placement: RUN,
                pods: vec![&a],
            },
            NodeView {
                name: "nb",
                placement: RUN,
                pods: vec![&b],
            },
            NodeView {
                name: "nc",
                placement: RUN,
                pods: vec![],
            },
            NodeView {
                name: "nd",
                placement: Placement {
                    should_run: false,
                    should_continue_running: true,
                },
                pods: vec![&stray],
            },
        ];
        let counts = status(&nodes, REV, rollout(1, 0));
        assert_eq!(
            counts,
            Counts {
                desired: 3,
                current: 2,
                misscheduled: 1,
                ready: 1,
                available: 1,
                updated: 1
            }
        );
    }
}
