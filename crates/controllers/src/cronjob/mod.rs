//! The CronJob controller: creates a Job for each scheduled time, as upstream's
//! `cronjob-controller` (v2) does. It honours `timeZone`, `startingDeadlineSeconds`,
//! `concurrencyPolicy` (Allow, Forbid, Replace), `suspend` and the history limits, and
//! keeps `status.active`, `lastScheduleTime` and `lastSuccessfulTime`.
//!
//! Each scheduled time maps to one Job name (`<cronjob>-<minutes since epoch>`), so a
//! retried or repeated sync can never start the same run twice. Watches CronJobs and the
//! Jobs they own; a sync that finds nothing due comes back at the next scheduled time.

mod plan;
mod schedule;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::context::Recorder;
use futures::StreamExt;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource, ResourceExt};
use tracing::{debug, warn};

use crate::context::{self, Context, RETRY_AFTER_ERROR};
use crate::error::{is_conflict, is_not_found, KubeContext};
use crate::pod_control;
use crate::{Error, Result};
use plan::JobFacts;
use schedule::Schedule;

/// Upstream adds this much to the wait for the next scheduled time, so the sync lands
/// just after it.
const NEXT_SCHEDULE_SLACK: Duration = Duration::from_millis(100);

struct CronJobController {
    client: kube::Client,
    jobs: Store<Job>,
    recorder: Recorder,
    /// CronJob uid → its resourceVersion before our last status write: while the store
    /// still shows it, the store is behind us and a sync would work from old status.
    stale: Mutex<HashMap<String, String>>,
}

pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let client = ctx.client.clone();
    // Our own reflector on Jobs: the controller needs their store, not only triggers.
    let (jobs, writer) = reflector::store::<Job>();
    let job_changes = watcher::watcher(Api::<Job>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .touched_objects();
    let controller = Controller::new(
        Api::<CronJob>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns_stream(job_changes);
    let state = Arc::new(CronJobController {
        jobs,
        recorder: ctx.recorder("cronjob-controller"),
        client,
        stale: Mutex::default(),
    });
    controller
        .run(reconcile, error_policy, state)
        .for_each(|result| async move {
            if let Err(err) = result {
                debug!(error = %err, "cronjob sync failed");
            }
        })
        .await;
    Ok(())
}

fn error_policy(cronjob: Arc<CronJob>, err: &Error, _: Arc<CronJobController>) -> Action {
    warn!(cronjob = %cronjob.name_any(), error = %err, "cronjob sync failed; retrying");
    match err {
        Error::Kube { source, .. } if is_conflict(source) => {
            Action::requeue(Duration::from_secs(1))
        }
        _ => Action::requeue(RETRY_AFTER_ERROR),
    }
}

async fn reconcile(cronjob: Arc<CronJob>, c: Arc<CronJobController>) -> Result<Action> {
    let uid = cronjob.uid().unwrap_or_default();
    if c.store_is_behind(&uid, cronjob.resource_version().as_deref()) {
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    let namespace = cronjob.namespace().unwrap_or_default();
    let owned: Vec<JobFacts> = c
        .jobs
        .state()
        .iter()
        .filter(|j| j.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter(|j| pod_control::is_controlled_by(&j.metadata, &uid))
        .map(|j| JobFacts::of(j))
        .collect();
    let mut status = cronjob.status.clone().unwrap_or_default();
    c.track_active(&cronjob, &owned, &mut status).await?;
    let action = if cronjob.meta().deletion_timestamp.is_some() {
        Action::await_change()
    } else {
        c.prune_history(&cronjob, &owned).await;
        c.schedule(&cronjob, &mut status).await?
    };
    c.write_status(&cronjob, status).await?;
    Ok(action)
}

impl CronJobController {
    fn jobs_api(&self, namespace: &str) -> Api<Job> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn store_is_behind(&self, uid: &str, version: Option<&str>) -> bool {
        let mut stale = self.stale.lock().unwrap_or_else(|e| e.into_inner());
        match stale.get(uid) {
            Some(old) if Some(old.as_str()) == version => true,
            Some(_) => {
                stale.remove(uid);
                false
            }
            None => false,
        }
    }

    /// Drop finished or vanished Jobs from `status.active` (with `SawCompletedJob`), and
    /// advance `lastSuccessfulTime`.
    async fn track_active(
        &self,
        cronjob: &CronJob,
        owned: &[JobFacts],
        status: &mut CronJobStatus,
    ) -> Result<()> {
        let namespace = cronjob.namespace().unwrap_or_default();
        let mut active = Vec::new();
        for reference in status.active.take().unwrap_or_default() {
            let uid = reference.uid.clone().unwrap_or_default();
            let facts = match owned.iter().find(|j| j.uid == uid) {
                Some(facts) => Some(facts.clone()),
                // Not in the store: either just created or really gone; ask.
                None => self.lookup(&namespace, &reference, &uid).await?,
            };
            match facts {
                Some(JobFacts { finished: None, .. }) => active.push(reference),
                Some(JobFacts {
                    finished: Some(condition),
                    name,
                    ..
                }) => {
                    self.event(
                        cronjob,
                        false,
                        "SawCompletedJob",
                        &format!("Saw completed job: {name}, condition: {condition}"),
                    )
                    .await;
                }
                None => {}
            }
        }
        status.active = Some(active).filter(|a| !a.is_empty());
        let latest_success = owned
            .iter()
            .filter(|j| j.finished == Some("Complete"))
            .filter_map(|j| j.completed)
            .max();
        if let Some(t) = latest_success {
            let known = status.last_successful_time.as_ref().map(|t| t.0);
            if known.is_none_or(|k| t > k) {
                status.last_successful_time = Some(Time(t));
            }
        }
        Ok(())
    }

    async fn lookup(
        &self,
        namespace: &str,
        reference: &ObjectReference,
        uid: &str,
    ) -> Result<Option<JobFacts>> {
        let name = reference.name.clone().unwrap_or_default();
        match self.jobs_api(namespace).get(&name).await {
            Ok(job) if job.uid().as_deref() == Some(uid) => Ok(Some(JobFacts::of(&job))),
            Ok(_) => Ok(None),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(err).context(format!("reading job {name}")),
        }
    }

    /// Delete finished Jobs beyond the history limits (upstream defaults 3 and 1).
    async fn prune_history(&self, cronjob: &CronJob, owned: &[JobFacts]) {
        let spec = cronjob.spec.as_ref();
        let doomed = plan::beyond_history(
            owned,
            spec.and_then(|s| s.successful_jobs_history_limit)
                .or(Some(3)),
            spec.and_then(|s| s.failed_jobs_history_limit).or(Some(1)),
        );
        let api = self.jobs_api(&cronjob.namespace().unwrap_or_default());
        for name in doomed {
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {
                    self.event(
                        cronjob,
                        false,
                        "SuccessfulDelete",
                        &format!("Deleted job {name}"),
                    )
                    .await
                }
                Err(err) if is_not_found(&err) => {}
                Err(err) => {
                    warn!(job = %name, error = %err, "deleting an old cronjob job failed");
                    self.event(
                        cronjob,
                        true,
                        "FailedDelete",
                        &format!("Deleted job: {err}"),
                    )
                    .await;
                }
            }
        }
    }

    /// Start the Job that is due, if any, and say when to look again.
    async fn schedule(&self, cronjob: &CronJob, status: &mut CronJobStatus) -> Result<Action> {
        let Some(spec) = cronjob.spec.as_ref() else {
            return Ok(Action::await_change());
        };
        let tz = match spec.time_zone.as_deref() {
            None => TimeZone::system(),
            Some(name) => match TimeZone::get(name) {
                Ok(tz) => tz,
                Err(err) => {
                    self.event(
                        cronjob,
                        true,
                        "UnknownTimeZone",
                        &format!("invalid timeZone: {name:?}: {err}"),
                    )
                    .await;
                    return Ok(Action::await_change());
                }
            },
        };
        let schedule = match Schedule::parse(&spec.schedule) {
            Ok(schedule) => schedule,
            Err(err) => {
                self.event(
                    cronjob,
                    true,
                    "UnparseableSchedule",
                    &format!("unparseable schedule: {:?} : {err}", spec.schedule),
                )
                .await;
                return Ok(Action::await_change());
            }
        };
        if spec.suspend == Some(true) {
            return Ok(Action::await_change());
        }
        let now = Timestamp::now();
        let next = || match schedule.next_after(now, &tz) {
            Some(t) => Action::requeue(
                Duration::try_from(t.duration_since(now)).unwrap_or_default() + NEXT_SCHEDULE_SLACK,
            ),
            None => Action::await_change(),
        };
        let created = cronjob
            .meta()
            .creation_timestamp
            .as_ref()
            .map_or(now, |t| t.0);
        let last = status.last_schedule_time.as_ref().map(|t| t.0);
        let Some(due) = plan::due(
            &schedule,
            &tz,
            last,
            created,
            spec.starting_deadline_seconds,
            now,
        ) else {
            return Ok(next());
        };
        if due.too_many_missed {
            self.event(
                cronjob,
                true,
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
            )
            .await;
        }
        if plan::too_late(due.scheduled, spec.starting_deadline_seconds, now) {
            self.event(
                cronjob,
                true,
                "MissSchedule",
                &format!(
                    "Missed scheduled time to start a job: {}",
                    rfc1123(due.scheduled)
                ),
            )
            .await;
            return Ok(next());
        }
        let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
        let active = status.active.clone().unwrap_or_default();
        if policy == "Forbid" && !active.is_empty() {
            // lastScheduleTime stays, so the run starts once the active one ends if it
            // is still within its starting deadline, as upstream behaves.
            self.event(
                cronjob,
                false,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            )
            .await;
            return Ok(next());
        }
        if policy == "Replace" {
            self.replace_active(cronjob, status, &active).await?;
        }
        self.start(cronjob, status, due.scheduled, &tz).await?;
        Ok(next())
    }

    async fn replace_active(
        &self,
        cronjob: &CronJob,
        status: &mut CronJobStatus,
        active: &[ObjectReference],
    ) -> Result<()> {
        let api = self.jobs_api(&cronjob.namespace().unwrap_or_default());
        for reference in active {
            let name = reference.name.clone().unwrap_or_default();
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {
                    self.event(
                        cronjob,
                        false,
                        "SuccessfulDelete",
                        &format!("Deleted job {name}"),
                    )
                    .await
                }
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err).context(format!("deleting active job {name}")),
            }
        }
        status.active = None;
        Ok(())
    }

    async fn start(
        &self,
        cronjob: &CronJob,
        status: &mut CronJobStatus,
        scheduled: Timestamp,
        tz: &TimeZone,
    ) -> Result<()> {
        let job = plan::job_for(cronjob, scheduled, tz);
        let name = job.name_any();
        let api = self.jobs_api(&cronjob.namespace().unwrap_or_default());
        let job = match api.create(&PostParams::default(), &job).await {
            Ok(job) => {
                self.event(
                    cronjob,
                    false,
                    "SuccessfulCreate",
                    &format!("Created job {name}"),
                )
                .await;
                job
            }
            // Created by an earlier sync whose status write was lost.
            Err(err) if is_conflict(&err) => api
                .get(&name)
                .await
                .context(format!("reading existing job {name}"))?,
            Err(err) => {
                self.event(
                    cronjob,
                    true,
                    "FailedCreate",
                    &format!("Error creating job: {err}"),
                )
                .await;
                return Err(err).context(format!("creating job {name}"));
            }
        };
        let ours = pod_control::is_controlled_by(&job.metadata, &cronjob.uid().unwrap_or_default());
        let uid = job.uid();
        let active = status.active.get_or_insert_with(Vec::new);
        if ours && JobFacts::of(&job).finished.is_none() && !active.iter().any(|r| r.uid == uid) {
            active.push(ObjectReference {
                api_version: Some("batch/v1".into()),
                kind: Some("Job".into()),
                name: Some(name),
                namespace: job.namespace(),
                uid,
                resource_version: job.resource_version(),
                field_path: None,
            });
        }
        status.last_schedule_time = Some(Time(scheduled));
        Ok(())
    }

    async fn write_status(&self, cronjob: &CronJob, status: CronJobStatus) -> Result<()> {
        let current = cronjob.status.clone().unwrap_or_default();
        if current == status {
            return Ok(());
        }
        let mut updated = cronjob.clone();
        updated.status = Some(status);
        let name = cronjob.name_any();
        Api::<CronJob>::namespaced(
            self.client.clone(),
            &cronjob.namespace().unwrap_or_default(),
        )
        .replace_status(&name, &PostParams::default(), &updated)
        .await
        .context(format!("updating the status of cronjob {name}"))?;
        if let (Some(uid), Some(version)) = (cronjob.uid(), cronjob.resource_version()) {
            let mut stale = self.stale.lock().unwrap_or_else(|e| e.into_inner());
            stale.insert(uid, version);
        }
        Ok(())
    }

    async fn event(&self, cronjob: &CronJob, warning: bool, reason: &str, message: &str) {
        let reference = cronjob.object_ref(&());
        context::publish(
            &self.recorder,
            &reference,
            warning,
            reason,
            reason,
            message.to_string(),
        )
        .await;
    }
}

/// Go's `time.RFC1123Z` in UTC, as upstream's MissSchedule event prints it.
fn rfc1123(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC)
        .strftime("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}
