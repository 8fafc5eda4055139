//! A ReplicaSet's status computed from its pods, and rendered as the merge patch that
//! writes it.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{json, Value};

use crate::pod_control::{is_available, is_ready, ready_since};

pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// Why the last attempt to reach the desired count failed.
pub struct Failure {
    /// `FailedCreate` or `FailedDelete`.
    pub reason: &'static str,
    pub message: String,
}

/// The status for `pods` (the active pods the ReplicaSet controls), and how long until
/// a ready pod becomes available (when `minReadySeconds` holds one back).
pub fn calculate(
    rs: &ReplicaSet,
    pods: &[&Pod],
    failure: Option<&Failure>,
    now: jiff::Timestamp,
) -> (ReplicaSetStatus, Option<Duration>) {
    let spec = rs.spec.as_ref();
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let template_labels = spec
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            template_labels
                .into_iter()
                .flatten()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .count();
    let ready: Vec<&&Pod> = pods.iter().filter(|p| is_ready(p)).collect();
    let available = ready
        .iter()
        .filter(|p| is_available(p, min_ready, now))
        .count();
    let next_available_in = ready
        .iter()
        .filter(|p| !is_available(p, min_ready, now))
        .filter_map(|p| ready_since(p))
        .map(|since| since.as_second() + i64::from(min_ready) - now.as_second())
        .min()
        .map(|secs| Duration::from_secs(secs.max(1) as u64));

    let status = ReplicaSetStatus {
        replicas: count(pods.len()),
        fully_labeled_replicas: Some(count(fully_labeled)),
        ready_replicas: Some(count(ready.len())),
        available_replicas: Some(count(available)),
        observed_generation: rs.metadata.generation,
        conditions: conditions(rs, failure, now),
        terminating_replicas: None,
    };
    (status, next_available_in)
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Keep the existing conditions, adding `ReplicaFailure` on a failure and dropping it
/// once the ReplicaSet manages its pods again.
fn conditions(
    rs: &ReplicaSet,
    failure: Option<&Failure>,
    now: jiff::Timestamp,
) -> Option<Vec<ReplicaSetCondition>> {
    let mut conditions: Vec<ReplicaSetCondition> = rs
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let has_failure = conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
    match failure {
        Some(f) if !has_failure => conditions.push(ReplicaSetCondition {
            type_: REPLICA_FAILURE.into(),
            status: "True".into(),
            reason: Some(f.reason.into()),
            message: Some(f.message.clone()),
            last_transition_time: Some(Time(now)),
        }),
        Some(_) => {}
        None => conditions.retain(|c| c.type_ != REPLICA_FAILURE),
    }
    (!conditions.is_empty()).then_some(conditions)
}

/// The merge patch writing `status`. Zero counts and missing conditions are written as
/// `null` (removing the field), which is how upstream's status reads: zero values are
/// omitted, and a merge patch that left them out would keep a stale number.
pub fn patch(status: &ReplicaSetStatus) -> Value {
    let positive = |n: Option<i32>| n.filter(|n| *n > 0).map_or(Value::Null, Value::from);
    json!({"status": {
        "replicas": status.replicas,
        "fullyLabeledReplicas": positive(status.fully_labeled_replicas),
        "readyReplicas": positive(status.ready_replicas),
        "availableReplicas": positive(status.available_replicas),
        "observedGeneration": status.observed_generation,
        "conditions": status.conditions,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rs(min_ready: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 3},
            "spec": {
                "replicas": 3, "minReadySeconds": min_ready,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web", "tier": "front"}}},
            },
        }))
        .unwrap()
    }

    fn pod(labels: Value, ready_at: Option<&str>) -> Pod {
        let conditions = ready_at.map_or(
            json!([]),
            |t| json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]),
        );
        serde_json::from_value(json!({
            "metadata": {"labels": labels},
            "status": {"phase": "Running", "conditions": conditions},
        }))
        .unwrap()
    }

    #[test]
    fn counts_and_min_ready_requeue() {
        let now: jiff::Timestamp = "2024-01-01T00:01:00Z".parse().unwrap();
        let pods = [
            pod(
                json!({"app": "web", "tier": "front"}),
                Some("2024-01-01T00:00:00Z"),
            ),
            pod(json!({"app": "web"}), Some("2024-01-01T00:00:50Z")),
            pod(json!({"app": "web", "tier": "front"}), None),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let (status, requeue) = calculate(&rs(30), &refs, None, now);
        assert_eq!(status.replicas, 3);
        assert_eq!(status.fully_labeled_replicas, Some(2));
        assert_eq!(status.ready_replicas, Some(2));
        assert_eq!(status.available_replicas, Some(1));
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(requeue, Some(Duration::from_secs(20)));
        let patch = patch(&status);
        assert_eq!(patch["status"]["availableReplicas"], 1);
        assert_eq!(patch["status"]["conditions"], Value::Null);
    }

    #[test]
    fn failure_condition_comes_and_goes() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let failure = Failure {
            reason: "FailedCreate",
            message: "quota".into(),
        };
        let mut set = rs(0);
        let (status, _) = calculate(&set, &[], Some(&failure), now);
        let conditions = status.conditions.clone().unwrap();
        assert_eq!(conditions[0].type_, REPLICA_FAILURE);
        assert_eq!(conditions[0].reason.as_deref(), Some("FailedCreate"));
        assert_eq!(patch(&status)["status"]["readyReplicas"], Value::Null);
        set.status = Some(status);
        let (status, _) = calculate(&set, &[], None, now);
        assert_eq!(status.conditions, None);
    }
}
