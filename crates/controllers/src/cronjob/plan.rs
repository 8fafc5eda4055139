//! The CronJob controller's decisions as pure functions: which scheduled time is due,
//! which finished Jobs fall out of the history limits, and the Job to create for a
//! scheduled time. Nothing here talks to the API.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::schedule::Schedule;
use crate::pod_control;

/// Annotation with the time a Job was scheduled for (RFC 3339).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// More missed start times than this is reported as likely clock skew or a missing
/// `startingDeadlineSeconds` (upstream's limit).
const TOO_MANY_MISSED: usize = 100;

/// The scheduled time that is due now, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Due {
    pub scheduled: Timestamp,
    /// More than 100 start times were missed.
    pub too_many_missed: bool,
}

/// The latest start time in `(earliest, now]`, where `earliest` is the last scheduled
/// time (or the CronJob's creation), moved forward to `now - startingDeadlineSeconds`.
pub fn due(
    schedule: &Schedule,
    tz: &TimeZone,
    last_scheduled: Option<Timestamp>,
    created: Timestamp,
    starting_deadline_seconds: Option<i64>,
    now: Timestamp,
) -> Option<Due> {
    let mut earliest = last_scheduled.unwrap_or(created);
    if let Some(deadline) = starting_deadline_seconds {
        let window_start = Timestamp::from_second(now.as_second() - deadline).ok()?;
        earliest = earliest.max(window_start);
    }
    let scheduled = schedule.latest_at_or_before(now, tz)?;
    if scheduled <= earliest {
        return None;
    }
    let mut missed = 0;
    let mut t = earliest;
    while let Some(next) = schedule.next_after(t, tz).filter(|n| *n <= now) {
        missed += 1;
        if missed > TOO_MANY_MISSED {
            break;
        }
        t = next;
    }
    Some(Due {
        scheduled,
        too_many_missed: missed > TOO_MANY_MISSED,
    })
}

/// A due time older than `startingDeadlineSeconds` is skipped (`MissSchedule`).
pub fn too_late(
    scheduled: Timestamp,
    starting_deadline_seconds: Option<i64>,
    now: Timestamp,
) -> bool {
    starting_deadline_seconds.is_some_and(|d| scheduled.as_second() + d < now.as_second())
}

/// What the controller needs about each owned Job.
#[derive(Clone, Debug, PartialEq)]
pub struct JobFacts {
    pub name: String,
    pub uid: String,
    /// `Complete` or `Failed` once finished.
    pub finished: Option<&'static str>,
    pub started: Option<Timestamp>,
    pub completed: Option<Timestamp>,
}

impl JobFacts {
    pub fn of(job: &Job) -> JobFacts {
        let status = job.status.as_ref();
        let finished = status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| c.status == "True")
            .find_map(|c| match c.type_.as_str() {
                "Complete" => Some("Complete"),
                "Failed" => Some("Failed"),
                _ => None,
            });
        JobFacts {
            name: job.metadata.name.clone().unwrap_or_default(),
            uid: job.metadata.uid.clone().unwrap_or_default(),
            finished,
            started: status.and_then(|s| s.start_time.as_ref()).map(|t| t.0),
            completed: status.and_then(|s| s.completion_time.as_ref()).map(|t| t.0),
        }
    }
}

/// Finished Jobs beyond the history limits, oldest first (by start time; never-started
/// Jobs count as newest, as upstream sorts them).
pub fn beyond_history(
    jobs: &[JobFacts],
    successful_limit: Option<i32>,
    failed_limit: Option<i32>,
) -> Vec<String> {
    let mut doomed = Vec::new();
    for (kind, limit) in [("Complete", successful_limit), ("Failed", failed_limit)] {
        let Some(limit) = limit else {
            continue;
        };
        let mut finished: Vec<&JobFacts> =
            jobs.iter().filter(|j| j.finished == Some(kind)).collect();
        finished.sort_by(|a, b| {
            (a.started.is_none(), a.started, &a.name).cmp(&(
                b.started.is_none(),
                b.started,
                &b.name,
            ))
        });
        let excess = finished.len().saturating_sub(limit.max(0) as usize);
        doomed.extend(finished.into_iter().take(excess).map(|j| j.name.clone()));
    }
    doomed
}

/// Upstream's Job name: the CronJob name and the scheduled time in minutes since the
/// epoch, so one scheduled time can only ever create one Job.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// The Job for `scheduled`: the template's labels, annotations and spec, owned by the
/// CronJob, annotated with the scheduled time in the CronJob's zone.
pub fn job_for(cronjob: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Job {
    let spec = cronjob.spec.as_ref();
    let template = spec.map(|s| s.job_template.clone()).unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut annotations: BTreeMap<String, String> = meta.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), rfc3339(scheduled, tz));
    let name = cronjob.metadata.name.clone().unwrap_or_default();
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&name, scheduled)),
            namespace: cronjob.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![pod_control::owner_reference(cronjob)]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// RFC 3339 with the zone's offset, `Z` for UTC (as Go formats it).
fn rfc3339(t: Timestamp, tz: &TimeZone) -> String {
    let zoned = t.to_zoned(tz.clone());
    if zoned.offset().seconds() == 0 {
        return zoned.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    }
    zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn due_picks_the_latest_missed_time() {
        let every_minute = Schedule::parse("* * * * *").unwrap();
        let utc = TimeZone::UTC;
        let created = at("2025-01-01T10:00:30Z");
        assert_eq!(
            due(
                &every_minute,
                &utc,
                None,
                created,
                None,
                at("2025-01-01T10:00:50Z")
            ),
            None
        );
        let d = due(
            &every_minute,
            &utc,
            None,
            created,
            None,
            at("2025-01-01T10:03:10Z"),
        )
        .unwrap();
        assert_eq!(d.scheduled, at("2025-01-01T10:03:00Z"));
        assert!(!d.too_many_missed);
        // Already ran at 10:03.
        let last = Some(at("2025-01-01T10:03:00Z"));
        assert_eq!(
            due(
                &every_minute,
                &utc,
                last,
                created,
                None,
                at("2025-01-01T10:03:50Z")
            ),
            None
        );
        let d = due(
            &every_minute,
            &utc,
            None,
            created,
            None,
            at("2025-01-01T13:00:00Z"),
        )
        .unwrap();
        assert!(d.too_many_missed);
        // A starting deadline narrows the window and silences the warning.
        let d = due(
            &every_minute,
            &utc,
            None,
            created,
            Some(200),
            at("2025-01-01T13:00:00Z"),
        )
        .unwrap();
        assert!(!d.too_many_missed);
        let hourly = Schedule::parse("0 * * * *").unwrap();
        assert_eq!(
            due(
                &hourly,
                &utc,
                None,
                created,
                Some(60),
                at("2025-01-01T11:30:00Z")
            ),
            None
        );
    }

    #[test]
    fn lateness_follows_the_starting_deadline() {
        let now = at("2025-01-01T10:05:00Z");
        assert!(!too_late(at("2025-01-01T10:00:00Z"), None, now));
        assert!(!too_late(at("2025-01-01T10:00:00Z"), Some(300), now));
        assert!(too_late(at("2025-01-01T10:00:00Z"), Some(299), now));
    }

    fn facts(name: &str, finished: Option<&'static str>, started: Option<&str>) -> JobFacts {
        JobFacts {
            name: name.into(),
            uid: name.into(),
            finished,
            started: started.map(at),
            completed: None,
        }
    }

    #[test]
    fn history_keeps_the_newest() {
        let jobs = [
            facts("c", Some("Complete"), Some("2025-01-01T10:02:00Z")),
            facts("a", Some("Complete"), Some("2025-01-01T10:00:00Z")),
            facts("never", Some("Complete"), None),
            facts("b", Some("Complete"), Some("2025-01-01T10:01:00Z")),
            facts("f1", Some("Failed"), Some("2025-01-01T10:00:00Z")),
            facts("f2", Some("Failed"), Some("2025-01-01T10:01:00Z")),
            facts("running", None, Some("2025-01-01T09:00:00Z")),
        ];
        assert_eq!(
            beyond_history(&jobs, Some(2), Some(1)),
            vec!["a", "b", "f1"]
        );
        assert_eq!(beyond_history(&jobs, None, Some(0)), vec!["f1", "f2"]);
    }

    #[test]
    fn jobs_are_named_and_annotated_by_scheduled_time() {
        let cronjob: CronJob = serde_json::from_value(json!({
            "metadata": {"name": "hello", "namespace": "ns", "uid": "cj-1"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {
                "metadata": {"labels": {"app": "hello"}},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
            }},
        }))
        .unwrap();
        let scheduled = at("2025-01-01T10:03:00Z");
        let job = job_for(&cronjob, scheduled, &TimeZone::UTC);
        assert_eq!(job.metadata.name.as_deref(), Some("hello-28928763"));
        assert_eq!(job.metadata.labels.as_ref().unwrap()["app"], "hello");
        assert_eq!(
            job.metadata.annotations.as_ref().unwrap()[SCHEDULED_TIMESTAMP],
            "2025-01-01T10:03:00Z"
        );
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("CronJob", "cj-1", Some(true))
        );
        assert!(job.spec.is_some());
        if let Ok(tz) = TimeZone::get("Asia/Kolkata") {
            assert_eq!(rfc3339(scheduled, &tz), "2025-01-01T15:33:00+05:30");
        }
    }
}
