//! A Deployment's status from its ReplicaSets, and its `Progressing` / `Available` /
//! `ReplicaFailure` conditions with upstream's reasons and messages (kubectl's
//! `rollout status` and `describe` read them).

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{json, Value};

use super::revision::{available, replicas};
use super::rollout::{desired_replicas, max_unavailable};

pub const PROGRESSING: &str = "Progressing";
pub const AVAILABLE: &str = "Available";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";

pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: jiff::Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

pub fn get<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
}

/// Set a condition unless one with the same status and reason exists; a condition whose
/// status does not change keeps its transition time.
pub fn set(status: &mut DeploymentStatus, mut condition: DeploymentCondition) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if let Some(current) = conditions.iter().find(|c| c.type_ == condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return;
        }
        if current.status == condition.status {
            condition.last_transition_time = current.last_transition_time.clone();
        }
    }
    conditions.retain(|c| c.type_ != condition.type_);
    conditions.push(condition);
}

pub fn remove(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
    }
}

pub fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .is_some_and(|s| s != i32::MAX)
}

/// Counts from the ReplicaSets, plus the `Available` condition.
pub fn calculate(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    now: jiff::Timestamp,
) -> DeploymentStatus {
    let status_of = |rs: &ReplicaSet| rs.status.clone().unwrap_or_default();
    let available_total: i32 = all.iter().map(|rs| available(rs)).sum();
    let spec_total: i32 = all.iter().map(|rs| replicas(rs)).sum();
    let current = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(all.iter().map(|rs| status_of(rs).replicas).sum()),
        updated_replicas: Some(new.map_or(0, |rs| status_of(rs).replicas)),
        ready_replicas: Some(
            all.iter()
                .map(|rs| status_of(rs).ready_replicas.unwrap_or(0))
                .sum(),
        ),
        available_replicas: Some(available_total),
        unavailable_replicas: Some((spec_total - available_total).max(0)),
        collision_count: current.collision_count,
        conditions: current.conditions.clone(),
        terminating_replicas: None,
    };
    let desired = desired_replicas(d);
    if available_total >= desired - max_unavailable(d) {
        set(
            &mut status,
            condition(
                AVAILABLE,
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
                now,
            ),
        );
    } else {
        set(
            &mut status,
            condition(
                AVAILABLE,
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
                now,
            ),
        );
    }
    status
}

fn count(n: Option<i32>) -> i32 {
    n.unwrap_or(0)
}

/// Every new pod is updated and available, and the status describes the latest spec.
pub fn is_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let desired = desired_replicas(d);
    count(status.updated_replicas) == desired
        && count(status.replicas) == desired
        && count(status.available_replicas) == desired
        && status.observed_generation >= d.metadata.generation
}

/// Something moved forward since the last recorded status.
fn is_progressing(d: &Deployment, status: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_olds = count(old.replicas) - count(old.updated_replicas);
    let new_olds = count(status.replicas) - count(status.updated_replicas);
    count(status.updated_replicas) > count(old.updated_replicas)
        || new_olds < old_olds
        || count(status.ready_replicas) > count(old.ready_replicas)
        || count(status.available_replicas) > count(old.available_replicas)
}

fn deadline(d: &Deployment) -> i64 {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .map_or(0, i64::from)
}

fn timed_out(d: &Deployment, status: &DeploymentStatus, now: jiff::Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(progressing) = get(status, PROGRESSING) else {
        return false;
    };
    match progressing.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => progressing
            .last_update_time
            .as_ref()
            .is_some_and(|t| t.0.as_second() + deadline(d) < now.as_second()),
    }
}

/// The status after a rollout step (upstream's `syncRolloutStatus`): counts, and the
/// `Progressing` condition moved to complete, progressing or timed out.
pub fn rollout(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    now: jiff::Timestamp,
) -> DeploymentStatus {
    let mut status = calculate(d, all, new, now);
    if !has_progress_deadline(d) {
        remove(&mut status, PROGRESSING);
    }
    let current = d.status.as_ref().and_then(|s| get(s, PROGRESSING));
    let already_complete = count(status.replicas) == count(status.updated_replicas)
        && current.is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
    let subject = match new.and_then(|rs| rs.metadata.name.as_deref()) {
        Some(name) => format!("ReplicaSet \"{name}\""),
        None => format!(
            "Deployment \"{}\"",
            d.metadata.name.as_deref().unwrap_or_default()
        ),
    };
    if has_progress_deadline(d) && !already_complete {
        if is_complete(d, &status) {
            let message = format!("{subject} has successfully progressed.");
            set(
                &mut status,
                condition(PROGRESSING, "True", NEW_RS_AVAILABLE, message, now),
            );
        } else if is_progressing(d, &status) {
            let message = format!("{subject} is progressing.");
            let mut progressing = condition(PROGRESSING, "True", RS_UPDATED, message, now);
            // Progress refreshes lastUpdateTime even when the reason stays the same.
            if let Some(current) = current {
                if current.status == "True" {
                    progressing.last_transition_time = current.last_transition_time.clone();
                }
                remove(&mut status, PROGRESSING);
            }
            set(&mut status, progressing);
        } else if timed_out(d, &status, now) {
            let message = format!("{subject} has timed out progressing.");
            set(
                &mut status,
                condition(PROGRESSING, "False", TIMED_OUT, message, now),
            );
        }
    }
    match replica_failure(all, new) {
        Some(failure) => set(&mut status, failure),
        None => remove(&mut status, REPLICA_FAILURE),
    }
    status
}

/// The new ReplicaSet's `ReplicaFailure` condition, else any old one's.
fn replica_failure(all: &[&ReplicaSet], new: Option<&ReplicaSet>) -> Option<DeploymentCondition> {
    let failure_of = |rs: &ReplicaSet| {
        let c = rs
            .status
            .as_ref()?
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == REPLICA_FAILURE)?;
        Some(DeploymentCondition {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            last_update_time: c.last_transition_time.clone(),
            last_transition_time: c.last_transition_time.clone(),
        })
    };
    new.and_then(failure_of)
        .or_else(|| all.iter().find_map(|rs| failure_of(rs)))
}

/// When to look again at a rollout that made no progress, to notice its deadline.
pub fn recheck_after(
    d: &Deployment,
    status: &DeploymentStatus,
    now: jiff::Timestamp,
) -> Option<Duration> {
    if !has_progress_deadline(d) || d.spec.as_ref().and_then(|s| s.paused) == Some(true) {
        return None;
    }
    let progressing = get(status, PROGRESSING)?;
    if is_complete(d, status) || progressing.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let since = progressing.last_update_time.as_ref()?.0.as_second();
    let left = since + deadline(d) - now.as_second();
    Some(Duration::from_secs(left.max(0) as u64 + 1))
}

/// The merge patch writing `status`: zero counts are removed as upstream omits them.
pub fn patch(status: &DeploymentStatus) -> Value {
    let positive = |n: Option<i32>| n.filter(|n| *n > 0).map_or(Value::Null, Value::from);
    json!({"status": {
        "observedGeneration": status.observed_generation,
        "replicas": positive(status.replicas),
        "updatedReplicas": positive(status.updated_replicas),
        "readyReplicas": positive(status.ready_replicas),
        "availableReplicas": positive(status.available_replicas),
        "unavailableReplicas": positive(status.unavailable_replicas),
        "collisionCount": status.collision_count,
        "conditions": status.conditions,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(status: Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 3, "progressDeadlineSeconds": 600,
                "selector": {"matchLabels": {"app": "web"}}, "template": {},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}},
            "status": status,
        }))
        .unwrap()
    }

    fn set_with(name: &str, replicas: i32, ready: i32, available: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {}},
            "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": available},
        }))
        .unwrap()
    }

    #[test]
    fn complete_rollout_reports_new_replica_set_available() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let d = deployment(json!({}));
        let new = set_with("web-abc", 3, 3, 3);
        let status = rollout(&d, &[&new], Some(&new), now);
        assert_eq!(status.updated_replicas, Some(3));
        let progressing = get(&status, PROGRESSING).unwrap();
        assert_eq!(progressing.reason.as_deref(), Some(NEW_RS_AVAILABLE));
        assert_eq!(
            progressing.message.as_deref(),
            Some("ReplicaSet \"web-abc\" has successfully progressed.")
        );
        assert_eq!(get(&status, AVAILABLE).unwrap().status, "True");
        assert_eq!(patch(&status)["status"]["unavailableReplicas"], Value::Null);
    }

    #[test]
    fn progress_then_timeout() {
        let start: jiff::Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let d = deployment(json!({"replicas": 3, "updatedReplicas": 0, "availableReplicas": 3}));
        let old = set_with("web-old", 3, 3, 3);
        let new = set_with("web-new", 1, 0, 0);
        let status = rollout(&d, &[&old, &new], Some(&new), start);
        assert_eq!(
            get(&status, PROGRESSING).unwrap().reason.as_deref(),
            Some(RS_UPDATED)
        );
        assert_eq!(status.unavailable_replicas, Some(1));
        // Nothing changes for longer than the deadline.
        let mut stuck = d.clone();
        stuck.status = Some(status);
        let later = start + jiff::SignedDuration::from_secs(601);
        let status = rollout(&stuck, &[&old, &new], Some(&new), later);
        let progressing = get(&status, PROGRESSING).unwrap();
        assert_eq!(progressing.reason.as_deref(), Some(TIMED_OUT));
        assert_eq!(progressing.status, "False");
        assert_eq!(
            recheck_after(&stuck, stuck.status.as_ref().unwrap(), start),
            Some(Duration::from_secs(601))
        );
    }

    #[test]
    fn availability_follows_max_unavailable() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let d = deployment(json!({}));
        let rs = set_with("web-a", 3, 2, 2);
        let status = calculate(&d, &[&rs], Some(&rs), now);
        let available = get(&status, AVAILABLE).unwrap();
        assert_eq!(
            available.reason.as_deref(),
            Some("MinimumReplicasUnavailable")
        );
    }
}
