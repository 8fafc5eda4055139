//! Upstream's TTL-after-finished controller, folded into the Job controller's sync: a
//! finished Job with `ttlSecondsAfterFinished` is deleted once that many seconds have
//! passed since its `Complete`/`Failed` condition. Its pods are left to the garbage
//! collector.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{DeleteParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use tracing::info;

use super::plan;
use crate::error::{is_not_found, KubeContext};
use crate::Result;

/// How long until a finished Job expires: `None` without a TTL, zero when it is due.
pub fn time_left(job: &Job, now: Timestamp) -> Option<Duration> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let finished = plan::finished_at_time(job)?;
    let expires = finished.as_second() + i64::from(ttl.max(0));
    Some(Duration::from_secs(
        (expires - now.as_second()).max(0) as u64
    ))
}

/// Delete the Job if its TTL has run out, otherwise come back when it will have.
pub async fn enforce(api: &Api<Job>, job: &Job) -> Result<Action> {
    let Some(left) = time_left(job, Timestamp::now()) else {
        return Ok(Action::await_change());
    };
    if !left.is_zero() {
        return Ok(Action::requeue(left + Duration::from_millis(100)));
    }
    // The uid precondition keeps a Job recreated under the same name safe.
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: job.uid(),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    info!(job = %job.name_any(), "deleting finished job after its TTL");
    match api.delete(&job.name_any(), &params).await {
        Err(err) if is_not_found(&err) => {}
        other => {
            other.context(format!("deleting expired job {}", job.name_any()))?;
        }
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_from_the_terminal_condition() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "j"},
            "spec": {"ttlSecondsAfterFinished": 30, "template": {}},
            "status": {"conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"},
                {"type": "Complete", "status": "True", "lastTransitionTime": "2025-01-01T00:00:10Z"},
            ]},
        }))
        .unwrap();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            time_left(&job, at("2025-01-01T00:00:20Z")),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            time_left(&job, at("2025-01-01T00:01:00Z")),
            Some(Duration::ZERO)
        );
        let mut running = job.clone();
        running.status = None;
        assert_eq!(time_left(&running, at("2025-01-01T00:00:20Z")), None);
    }
}
