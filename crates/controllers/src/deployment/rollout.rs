//! The arithmetic of a rollout, as pure functions of replica counts: how far maxSurge
//! and maxUnavailable let the new ReplicaSet grow and the old ones shrink, and how a
//! resize is shared among the ReplicaSets of an unfinished rollout.

use std::cmp::Reverse;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub fn desired_replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

/// An int, or a percentage of `total` rounded up (surge) or down (unavailable).
pub fn scaled_value(value: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    match value {
        None => 0,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let Some(percent) = s
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<i64>().ok())
            else {
                // Validation rejects anything else; treat it as no room at all.
                return 0;
            };
            let scaled = percent * i64::from(total);
            let value = if round_up {
                (scaled + 99).div_euclid(100)
            } else {
                scaled.div_euclid(100)
            };
            i32::try_from(value).unwrap_or(i32::MAX)
        }
    }
}

/// `(maxSurge, maxUnavailable)` of a rolling update as counts; both zero would
/// deadlock the rollout, so unavailable becomes one (upstream's `ResolveFenceposts`).
fn fenceposts(d: &Deployment) -> (i32, i32) {
    let desired = desired_replicas(d);
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let default = IntOrString::String("25%".into());
    let surge = rolling.map_or(Some(&default), |r| r.max_surge.as_ref());
    let unavailable = rolling.map_or(Some(&default), |r| r.max_unavailable.as_ref());
    let surge = scaled_value(surge, desired, true);
    let mut unavailable = scaled_value(unavailable, desired, false);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

pub fn max_surge(d: &Deployment) -> i32 {
    if is_recreate(d) {
        0
    } else {
        fenceposts(d).0
    }
}

pub fn max_unavailable(d: &Deployment) -> i32 {
    let desired = desired_replicas(d);
    if is_recreate(d) || desired == 0 {
        0
    } else {
        fenceposts(d).1.min(desired)
    }
}

/// How big the new ReplicaSet may get in a rolling update: up to `desired + maxSurge`
/// pods in total, and never more than `desired` itself.
pub fn new_replicas_rolling(desired: i32, max_surge: i32, total: i32, new_replicas: i32) -> i32 {
    let max_total = desired + max_surge;
    if total >= max_total {
        return new_replicas;
    }
    new_replicas + (max_total - total).min(desired - new_replicas)
}

/// How many old pods may go while keeping `desired - maxUnavailable` available,
/// counting the new ReplicaSet's not-yet-available pods as unavailable.
pub fn max_scaled_down(
    total: i32,
    desired: i32,
    max_unavailable: i32,
    new_replicas: i32,
    new_available: i32,
) -> i32 {
    total - (desired - max_unavailable) - (new_replicas - new_available)
}

/// Shrink old ReplicaSets (oldest first, as `(replicas, available)`) by their
/// unavailable pods, at most `budget` in all: those pods serve nothing anyway.
pub fn cleanup_unhealthy(olds: &[(i32, i32)], budget: i32) -> Vec<i32> {
    let mut removed = 0;
    olds.iter()
        .map(|&(replicas, available)| {
            if removed >= budget || replicas == 0 || replicas <= available {
                return replicas;
            }
            let down = (budget - removed).min(replicas - available);
            removed += down;
            replicas - down
        })
        .collect()
}

/// Shrink old ReplicaSets (oldest first) while more than `min_available` pods are
/// available in all.
pub fn scale_down_old(olds: &[i32], available_total: i32, min_available: i32) -> Vec<i32> {
    let mut left = (available_total - min_available).max(0);
    olds.iter()
        .map(|&replicas| {
            let down = replicas.min(left);
            left -= down;
            replicas - down
        })
        .collect()
}

/// One active ReplicaSet as proportional scaling sees it.
pub struct Share {
    pub replicas: i32,
    /// Its `max-replicas` annotation: the deployment's size + surge when last scaled.
    pub max_replicas: Option<i32>,
    /// Creation order (larger is newer), to break ties between equal sizes.
    pub age_rank: usize,
}

/// New sizes (in input order) when a deployment is resized mid-rollout: each active
/// ReplicaSet grows or shrinks in proportion to its share of the previous size, the
/// rounding leftover going to the largest (upstream's proportional scaling).
pub fn proportional(
    sets: &[Share],
    desired: i32,
    max_surge: i32,
    status_replicas: i32,
) -> Vec<i32> {
    let current: i32 = sets.iter().map(|s| s.replicas).sum();
    let allowed = if desired > 0 { desired + max_surge } else { 0 };
    let to_add = allowed - current;
    let mut sizes: Vec<i32> = sets.iter().map(|s| s.replicas).collect();
    if to_add == 0 || sets.is_empty() {
        return sizes;
    }
    // Scaling up favours newer sets of equal size, scaling down older ones.
    let mut order: Vec<usize> = (0..sets.len()).collect();
    if to_add > 0 {
        order.sort_by_key(|&i| (Reverse(sets[i].replicas), Reverse(sets[i].age_rank)));
    } else {
        order.sort_by_key(|&i| (Reverse(sets[i].replicas), sets[i].age_rank));
    }
    let mut added = 0;
    for &i in &order {
        let share = proportion(&sets[i], desired, allowed, status_replicas, to_add, added);
        sizes[i] += share;
        added += share;
    }
    let first = order[0];
    sizes[first] = (sizes[first] + to_add - added).max(0);
    sizes
}

fn proportion(
    set: &Share,
    desired: i32,
    allowed: i32,
    status_replicas: i32,
    to_add: i32,
    added: i32,
) -> i32 {
    if set.replicas == 0 || to_add == added {
        return 0;
    }
    let fraction = if desired == 0 {
        -set.replicas
    } else {
        let before = set
            .max_replicas
            .filter(|m| *m != 0)
            .unwrap_or(status_replicas);
        if before == 0 {
            0
        } else {
            let scaled = f64::from(set.replicas) * f64::from(allowed) / f64::from(before);
            scaled.round() as i32 - set.replicas
        }
    };
    let room = to_add - added;
    if to_add > 0 {
        fraction.min(room)
    } else {
        fraction.max(room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(
        replicas: i32,
        surge: serde_json::Value,
        unavailable: serde_json::Value,
    ) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
            },
        }))
        .unwrap()
    }

    #[test]
    fn surge_rounds_up_and_unavailable_down() {
        let d = deployment(10, json!("25%"), json!("25%"));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (3, 2));
        let d = deployment(3, json!(1), json!(0));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 0));
        // Both zero would never make progress.
        let d = deployment(1, json!("10%"), json!("10%"));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 0));
        let d = deployment(4, json!(0), json!("0%"));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 1));
        let d = deployment(2, json!(0), json!(5));
        assert_eq!(max_unavailable(&d), 2);
    }

    #[test]
    fn new_replica_set_grows_within_surge() {
        // 3 desired, surge 1: 3 old + 0 new -> new may have 1.
        assert_eq!(new_replicas_rolling(3, 1, 3, 0), 1);
        // Already at 4 pods in total: no growth.
        assert_eq!(new_replicas_rolling(3, 1, 4, 1), 1);
        // Never beyond desired.
        assert_eq!(new_replicas_rolling(3, 5, 3, 2), 3);
    }

    #[test]
    fn old_replica_sets_shrink_within_unavailable() {
        // 3 old + 1 new (not available), maxUnavailable 0: nothing may go.
        assert_eq!(max_scaled_down(4, 3, 0, 1, 0), 0);
        // The new pod became available: one old pod may go.
        assert_eq!(max_scaled_down(4, 3, 0, 1, 1), 1);
        assert_eq!(cleanup_unhealthy(&[(3, 1), (2, 2)], 1), vec![2, 2]);
        assert_eq!(cleanup_unhealthy(&[(3, 1), (2, 0)], 5), vec![1, 0]);
        assert_eq!(scale_down_old(&[2, 3], 4, 3), vec![1, 3]);
        assert_eq!(scale_down_old(&[2, 3], 3, 3), vec![2, 3]);
    }

    #[test]
    fn proportional_scaling_keeps_ratios() {
        // 10 replicas, surge 3: new 8 + old 5 = 13; scale to 20 (allowed 25).
        let sets = [
            Share {
                replicas: 5,
                max_replicas: Some(13),
                age_rank: 0,
            },
            Share {
                replicas: 8,
                max_replicas: Some(13),
                age_rank: 1,
            },
        ];
        let sizes = proportional(&sets, 20, 5, 13);
        assert_eq!(sizes.iter().sum::<i32>(), 25);
        assert_eq!(sizes, vec![10, 15]);
        // Scaling to zero empties everything.
        assert_eq!(proportional(&sets, 0, 0, 13), vec![0, 0]);
    }
}
