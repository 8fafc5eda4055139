//! The StatefulSet controller's decisions, as pure functions of the set's pods: which
//! ordinal to create, which pod to delete (failed, scaled away, or out of date), in the
//! order `podManagementPolicy` and the update strategy demand, and the status counts.
//! Nothing here talks to the API.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use crate::controller_revision::REVISION_HASH_LABEL;
use crate::pod_control::{is_available, is_terminating};

/// What the plan needs to know of the StatefulSet.
#[derive(Clone, Copy, Debug)]
pub struct Settings<'a> {
    pub name: &'a str,
    pub replicas: i32,
    /// `spec.ordinals.start`.
    pub start: i32,
    /// `podManagementPolicy: Parallel`.
    pub parallel: bool,
    /// `updateStrategy.type: RollingUpdate` (else OnDelete).
    pub rolling: bool,
    pub partition: i32,
    pub min_ready_seconds: i32,
    pub now: jiff::Timestamp,
}

/// The current (oldest still in use) and update (the template's) revision names.
#[derive(Clone, Copy, Debug)]
pub struct Revisions<'a> {
    pub current: &'a str,
    pub update: &'a str,
}

/// Which revision a new pod is made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Made {
    Current,
    Update,
}

/// One action on the set's pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Create {
        ordinal: i32,
        from: Made,
    },
    /// Delete the pod `name` (if it still has `uid`); `condemned` when it is outside the
    /// ordinal range (a scale down), so its claims may go too.
    Delete {
        ordinal: i32,
        name: String,
        uid: String,
        condemned: bool,
    },
}

/// The ordinal of pod `pod_name` of set `set_name` (`web-3` → 3).
pub fn ordinal(set_name: &str, pod_name: &str) -> Option<i32> {
    let digits = pod_name.strip_prefix(set_name)?.strip_prefix('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // `web-01` is not a pod of ours: names are rendered without leading zeros.
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    digits.parse().ok()
}

/// The revision name a pod was made from.
pub fn revision_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(REVISION_HASH_LABEL)
        .map(String::as_str)
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

fn is_finished(pod: &Pod) -> bool {
    matches!(phase(pod), Some("Failed") | Some("Succeeded"))
}

/// Running with the Ready condition true (upstream's `isRunningAndReady`).
pub fn is_running_and_ready(pod: &Pod) -> bool {
    phase(pod) == Some("Running") && crate::pod_control::is_ready(pod)
}

/// Running, ready for `minReadySeconds`, and not being deleted.
fn is_healthy(pod: &Pod, set: &Settings) -> bool {
    is_running_and_ready(pod)
        && is_available(pod, set.min_ready_seconds, set.now)
        && !is_terminating(pod)
}

fn delete(ordinal: i32, pod: &Pod, condemned: bool) -> Step {
    Step::Delete {
        ordinal,
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        condemned,
    }
}

/// Pods by ordinal, split into those in range and the condemned (highest first).
fn split<'a>(set: &Settings, pods: &[&'a Pod]) -> (BTreeMap<i32, &'a Pod>, Vec<(i32, &'a Pod)>) {
    let end = set.start + set.replicas;
    let mut replicas = BTreeMap::new();
    let mut condemned = Vec::new();
    for pod in pods {
        let Some(ord) = pod
            .metadata
            .name
            .as_deref()
            .and_then(|n| ordinal(set.name, n))
        else {
            continue;
        };
        if (set.start..end).contains(&ord) {
            replicas.insert(ord, *pod);
        } else {
            condemned.push((ord, *pod));
        }
    }
    condemned.sort_by_key(|(ord, _)| std::cmp::Reverse(*ord));
    (replicas, condemned)
}

/// The next steps (upstream's `updateStatefulSet`). OrderedReady takes one step at a time
/// and only past Running and Ready pods; Parallel creates and deletes everything it can
/// at once. Updates only start once nothing else is to be done, one pod at a time from
/// the highest ordinal down to the partition.
pub fn plan(set: &Settings, pods: &[&Pod], revisions: Revisions) -> Vec<Step> {
    let ordered = !set.parallel;
    let (replicas, condemned) = split(set, pods);
    let mut steps = Vec::new();
    let first_unhealthy = replicas
        .values()
        .chain(condemned.iter().rev().map(|(_, p)| p))
        .find(|p| !is_healthy(p, set))
        .and_then(|p| p.metadata.uid.clone());
    for ord in set.start..set.start + set.replicas {
        match replicas.get(&ord) {
            None => {
                let from = if set.rolling && ord < set.start + set.partition {
                    Made::Current
                } else {
                    Made::Update
                };
                steps.push(Step::Create { ordinal: ord, from });
                if ordered {
                    return steps;
                }
            }
            Some(pod) if is_finished(pod) && !is_terminating(pod) => {
                steps.push(delete(ord, pod, false));
                if ordered {
                    return steps;
                }
            }
            Some(pod) if ordered && !is_healthy(pod, set) => return steps,
            Some(_) => {}
        }
    }
    for (ord, pod) in &condemned {
        if is_terminating(pod) {
            if ordered {
                return steps;
            }
            continue;
        }
        // Scaling down waits for an unhealthy pod to recover, unless that is this pod.
        if ordered && !is_healthy(pod, set) && first_unhealthy != pod.metadata.uid {
            return steps;
        }
        steps.push(delete(*ord, pod, true));
        if ordered {
            return steps;
        }
    }
    if !steps.is_empty() || !set.rolling {
        return steps;
    }
    let update_min = set.start + set.partition.max(0);
    for (ord, pod) in replicas.range(update_min..).rev() {
        if revision_of(pod) != Some(revisions.update) && !is_terminating(pod) {
            steps.push(delete(*ord, pod, false));
            return steps;
        }
        if !is_healthy(pod, set) {
            return steps;
        }
    }
    steps
}

/// The StatefulSet status counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
    pub current: i32,
    pub updated: i32,
    /// Every wanted pod exists, is ready and runs the update revision: the update
    /// revision becomes the current one.
    pub complete: bool,
}

pub fn status(set: &Settings, pods: &[&Pod], revisions: Revisions) -> Counts {
    let mut counts = Counts::default();
    let (replicas, condemned) = split(set, pods);
    let all = replicas.values().chain(condemned.iter().map(|(_, p)| p));
    for pod in all {
        if is_terminating(pod) {
            continue;
        }
        counts.replicas += 1;
        if is_running_and_ready(pod) {
            counts.ready += 1;
            counts.available += i32::from(is_available(pod, set.min_ready_seconds, set.now));
        }
        let revision = revision_of(pod);
        counts.current += i32::from(revision == Some(revisions.current));
        counts.updated += i32::from(revision == Some(revisions.update));
    }
    counts.complete = condemned.is_empty()
        && counts.replicas == set.replicas
        && counts.updated == set.replicas
        && counts.ready == set.replicas;
    if counts.complete {
        counts.current = counts.updated;
    }
    counts
}

/// Seconds until a ready pod becomes available (minReadySeconds), if any is waiting.
pub fn next_availability(set: &Settings, pods: &[&Pod]) -> Option<i64> {
    pods.iter()
        .filter_map(|p| crate::pod_control::ready_since(p))
        .map(|since| since.as_second() + i64::from(set.min_ready_seconds) - set.now.as_second())
        .filter(|wait| *wait > 0)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(replicas: i32, parallel: bool, partition: i32) -> Settings<'static> {
        Settings {
            name: "web",
            replicas,
            start: 0,
            parallel,
            rolling: true,
            partition,
            min_ready_seconds: 0,
            now: jiff::Timestamp::now(),
        }
    }

    const REVS: Revisions = Revisions {
        current: "web-old",
        update: "web-new",
    };

    fn pod(ord: i32, revision: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": format!("web-{ord}"), "uid": format!("u{ord}"),
                "labels": {"controller-revision-hash": revision}},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" },
                 "lastTransitionTime": "2024-01-01T00:00:00Z"}]},
        }))
        .unwrap()
    }

    fn create(ordinal: i32) -> Step {
        Step::Create {
            ordinal,
            from: Made::Update,
        }
    }

    fn deleted(steps: &[Step]) -> Vec<i32> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Delete { ordinal, .. } => Some(*ordinal),
                Step::Create { .. } => None,
            })
            .collect()
    }

    #[test]
    fn ordinals_parse_strictly() {
        assert_eq!(ordinal("web", "web-0"), Some(0));
        assert_eq!(ordinal("web", "web-12"), Some(12));
        assert_eq!(ordinal("web", "web-01"), None);
        assert_eq!(ordinal("web", "web-x"), None);
        assert_eq!(ordinal("web", "webx-1"), None);
        assert_eq!(ordinal("web", "web-"), None);
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time() {
        let set = settings(3, false, 0);
        assert_eq!(plan(&set, &[], REVS), vec![create(0)]);
        let p0 = pod(0, "web-new", false);
        assert!(plan(&set, &[&p0], REVS).is_empty());
        let p0 = pod(0, "web-new", true);
        assert_eq!(plan(&set, &[&p0], REVS), vec![create(1)]);
    }

    #[test]
    fn parallel_creates_everything() {
        let set = settings(3, true, 0);
        let p1 = pod(1, "web-new", false);
        assert_eq!(plan(&set, &[&p1], REVS), vec![create(0), create(2)]);
    }

    #[test]
    fn scale_down_goes_from_the_top() {
        let pods: Vec<Pod> = (0..4).map(|i| pod(i, "web-new", true)).collect();
        let refs: Vec<&Pod> = pods.iter().collect();
        assert_eq!(deleted(&plan(&settings(2, false, 0), &refs, REVS)), vec![3]);
        assert_eq!(
            deleted(&plan(&settings(2, true, 0), &refs, REVS)),
            vec![3, 2]
        );
        // An unhealthy pod below blocks an ordered scale down.
        let mut pods = pods;
        pods[1] = pod(1, "web-new", false);
        let refs: Vec<&Pod> = pods.iter().collect();
        assert!(plan(&settings(2, false, 0), &refs, REVS).is_empty());
    }

    #[test]
    fn rolling_update_respects_partition_and_health() {
        let pods: Vec<Pod> = (0..3).map(|i| pod(i, "web-old", true)).collect();
        let refs: Vec<&Pod> = pods.iter().collect();
        assert_eq!(deleted(&plan(&settings(3, false, 0), &refs, REVS)), vec![2]);
        let pods = [
            pod(0, "web-old", true),
            pod(1, "web-old", true),
            pod(2, "web-new", true),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        assert_eq!(deleted(&plan(&settings(3, false, 0), &refs, REVS)), vec![1]);
        assert!(plan(&settings(3, false, 2), &refs, REVS).is_empty());
        let pods = [
            pod(0, "web-old", true),
            pod(1, "web-old", true),
            pod(2, "web-new", false),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        assert!(plan(&settings(3, true, 0), &refs, REVS).is_empty());
        // Below the partition new pods are made from the current revision.
        assert_eq!(
            plan(&settings(3, true, 2), &[], REVS)[..2],
            [
                Step::Create {
                    ordinal: 0,
                    from: Made::Current
                },
                Step::Create {
                    ordinal: 1,
                    from: Made::Current
                }
            ]
        );
    }

    #[test]
    fn on_delete_never_replaces_running_pods() {
        let set = Settings {
            rolling: false,
            ..settings(2, false, 0)
        };
        let pods = [pod(0, "web-old", true), pod(1, "web-old", true)];
        let refs: Vec<&Pod> = pods.iter().collect();
        assert!(plan(&set, &refs, REVS).is_empty());
        // A pod deleted by the user comes back from the update revision.
        assert_eq!(plan(&set, &refs[..1], REVS), vec![create(1)]);
    }

    #[test]
    fn status_completes_when_all_updated_and_ready() {
        let set = settings(2, false, 0);
        let pods = [pod(0, "web-old", true), pod(1, "web-new", true)];
        let refs: Vec<&Pod> = pods.iter().collect();
        let counts = status(&set, &refs, REVS);
        assert_eq!(
            (
                counts.replicas,
                counts.ready,
                counts.current,
                counts.updated
            ),
            (2, 2, 1, 1)
        );
        assert!(!counts.complete);
        let pods = [pod(0, "web-new", true), pod(1, "web-new", true)];
        let refs: Vec<&Pod> = pods.iter().collect();
        let counts = status(&set, &refs, REVS);
        assert!(counts.complete);
        assert_eq!(counts.current, 2);
    }
}
