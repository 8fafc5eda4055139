//! The Job controller: runs a Job's pods to completion and keeps `status` in step, as
//! upstream's `job-controller` does (completions and parallelism, NonIndexed and Indexed
//! modes, `backoffLimit`, `activeDeadlineSeconds`, `suspend`, `podReplacementPolicy`),
//! plus the TTL-after-finished cleanup.
//!
//! Pods are counted with upstream's finalizer protocol: every pod is created with
//! `batch.kubernetes.io/job-tracking`; a finished pod's uid is first recorded in
//! `status.uncountedTerminatedPods`, then its finalizer is removed, then it moves into the
//! `succeeded`/`failed` counts. Each outcome is therefore counted exactly once even when
//! pods are deleted early or the controller restarts mid-way.
//!
//! Pods are read from the process-wide informer; only Jobs are watched here. Not
//! supported yet: `podFailurePolicy`, `successPolicy`, `backoffLimitPerIndex`.

mod expectations;
mod indexes;
mod plan;
mod ttl_after_finished;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::context::Recorder;
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, warn};

use crate::context::{self, Context, RETRY_AFTER_ERROR};
use crate::error::{is_conflict, is_not_found, KubeContext};
use crate::pod_control;
use crate::{Error, Result};
use expectations::{Expectations, Seen};
use plan::{Backoff, Finish, JobSpecFacts, PodFacts, Situation};

pub use plan::{COMPLETION_INDEX, TRACKING_FINALIZER};

/// `spec.managedBy` value meaning "this controller".
const MANAGED_BY_US: &str = "kubernetes.io/job-controller";
/// Pause while waiting for the informers to show our own writes.
const EXPECTATION_RECHECK: Duration = Duration::from_millis(500);
/// Finalizer removals in flight at once.
const PARALLEL_PATCHES: usize = 16;

struct JobController {
    ctx: Arc<Context>,
    jobs: Store<Job>,
    recorder: Recorder,
    expectations: Expectations,
    /// Failure back-off per Job uid (kept in memory, as upstream does).
    backoff: Mutex<HashMap<String, Backoff>>,
}

pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let controller = Controller::new(
        Api::<Job>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .owns_stream(ctx.pods.subscribe());
    let state = Arc::new(JobController {
        jobs: controller.store(),
        recorder: ctx.recorder("job-controller"),
        expectations: Expectations::default(),
        backoff: Mutex::default(),
        ctx: ctx.clone(),
    });
    let jobs = controller
        .run(reconcile, error_policy, state.clone())
        .for_each(|result| async move {
            if let Err(err) = result {
                debug!(error = %err, "job sync failed");
            }
        });
    futures::join!(jobs, release_orphans(state));
    Ok(())
}

fn error_policy(job: Arc<Job>, err: &Error, _: Arc<JobController>) -> Action {
    warn!(job = %job.name_any(), error = %err, "job sync failed; retrying");
    match err {
        Error::Kube { source, .. } if is_conflict(source) => {
            Action::requeue(Duration::from_secs(1))
        }
        _ => Action::requeue(RETRY_AFTER_ERROR),
    }
}

async fn reconcile(job: Arc<Job>, c: Arc<JobController>) -> Result<Action> {
    let uid = job.uid().unwrap_or_default();
    let namespace = job.namespace().unwrap_or_default();
    let managed_by = job.spec.as_ref().and_then(|s| s.managed_by.as_deref());
    if managed_by.is_some_and(|m| m != MANAGED_BY_US) {
        return Ok(Action::await_change());
    }
    if !c.expectations_met(&job, &namespace, &uid) {
        return Ok(Action::requeue(EXPECTATION_RECHECK));
    }
    let pods = c.owned_pods(&namespace, &uid);
    if job.meta().deletion_timestamp.is_some() {
        c.release_all(&job, &pods).await?;
        return Ok(Action::await_change());
    }
    if plan::is_finished(&job) {
        c.release_all(&job, &pods).await?;
        return ttl_after_finished::enforce(&c.api(&namespace), &job).await;
    }
    c.sync((*job).clone(), &pods).await
}

impl JobController {
    fn api(&self, namespace: &str) -> Api<Job> {
        Api::namespaced(self.ctx.client.clone(), namespace)
    }

    fn pods_api(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.ctx.client.clone(), namespace)
    }

    fn expectations_met(&self, job: &Job, namespace: &str, uid: &str) -> bool {
        let store = self.ctx.pods.store();
        self.expectations.satisfied(
            uid,
            job.meta().resource_version.as_deref(),
            |name| match store.get(&ObjectRef::new(name).within(namespace)) {
                None => Seen::Missing,
                Some(pod) => Seen::Present {
                    uid: pod.uid().unwrap_or_default(),
                    terminating: pod.meta().deletion_timestamp.is_some(),
                    tracked: plan::has_tracking_finalizer(&pod),
                },
            },
        )
    }

    /// The Job's pods, found by controller reference (upstream also adopts orphans
    /// matching the selector; Jobs rarely need it and it would cost a selector match
    /// per pod).
    fn owned_pods(&self, namespace: &str, uid: &str) -> Vec<Arc<Pod>> {
        self.ctx
            .pods
            .store()
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
            .filter(|p| pod_control::is_controlled_by(&p.metadata, uid))
            .collect()
    }

    /// Strip the tracking finalizer from every pod of a Job that no longer counts them.
    async fn release_all(&self, job: &Job, pods: &[Arc<Pod>]) -> Result<()> {
        // Owned items: borrowed ones trip the compiler's higher-ranked lifetime check
        // once the future is spawned.
        let tracked: Vec<Arc<Pod>> = pods
            .iter()
            .filter(|p| plan::has_tracking_finalizer(p))
            .cloned()
            .collect();
        let job_uid = job.uid().unwrap_or_default();
        let results = futures::stream::iter(tracked)
            .map(|pod| {
                let job_uid = &job_uid;
                async move {
                    let result = self.remove_finalizer(&pod).await;
                    if result.is_ok() {
                        self.expectations.unfinalized(
                            job_uid,
                            pod.name_any(),
                            pod.uid().unwrap_or_default(),
                        );
                    }
                    result
                }
            })
            .buffer_unordered(PARALLEL_PATCHES)
            .collect::<Vec<_>>()
            .await;
        results.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(())
    }

    async fn remove_finalizer(&self, pod: &Pod) -> Result<()> {
        let name = pod.name_any();
        strip_finalizer(&self.pods_api(&pod.namespace().unwrap_or_default()), &name)
            .await
            .context(format!(
                "removing the job tracking finalizer from pod {name}"
            ))
    }

    async fn sync(&self, mut job: Job, pods: &[Arc<Pod>]) -> Result<Action> {
        let uid = job.uid().unwrap_or_default();
        let now = Timestamp::now();
        let spec = JobSpecFacts::of(&job);
        let facts: Vec<PodFacts> = pods.iter().map(|p| PodFacts::of(p)).collect();

        // 1. Record newly finished pods before touching their finalizers.
        let mut status = job.status.clone().unwrap_or_default();
        let mut uncounted = Uncounted::of(&status);
        let newly = plan::newly_finished(&facts, &uncounted.all(), spec.only_failed_phase);
        if !newly.is_empty() {
            if newly.iter().any(|(_, ok)| !ok) {
                self.with_backoff(&uid, |b| b.record(&newly, now));
            } else {
                // Successes only: the back-off starts over.
                self.with_backoff_remove(&uid);
            }
            let mut succeeded_indexes = Vec::new();
            for (pod, ok) in &newly {
                uncounted.add(&pod.uid, *ok);
                if *ok && spec.indexed {
                    succeeded_indexes.extend(pod.index);
                }
            }
            if spec.indexed && !succeeded_indexes.is_empty() {
                let existing = status.completed_indexes.clone().unwrap_or_default();
                status.completed_indexes = Some(plan::with_completed(
                    &existing,
                    spec.completions.unwrap_or(0),
                    &succeeded_indexes,
                ))
                .filter(|s| !s.is_empty());
            }
            status.uncounted_terminated_pods = Some(uncounted.to_status());
            job = self.write_status(job, status).await?;
            status = job.status.clone().unwrap_or_default();
        }

        // 2. Release the recorded pods and move them into the counts.
        let released = self.release_uncounted(&job, &facts, &uncounted).await;
        for (_, ok) in uncounted.take(&released) {
            let count = if ok {
                &mut status.succeeded
            } else {
                &mut status.failed
            };
            *count = Some(count.unwrap_or(0) + 1);
        }
        status.uncounted_terminated_pods = Some(uncounted.to_status());

        // 3. Decide and act.
        let conditions = status.conditions.clone().unwrap_or_default();
        let resuming = !spec.suspend
            && conditions
                .iter()
                .any(|c| c.type_ == "Suspended" && c.status == "True");
        if resuming || (status.start_time.is_none() && !spec.suspend) {
            status.start_time = Some(Time(now));
        }
        let completed = indexes::parse(
            status.completed_indexes.as_deref().unwrap_or(""),
            spec.completions.unwrap_or(0),
        );
        let situation = Situation {
            spec: spec.clone(),
            pods: &facts,
            succeeded: status.succeeded.unwrap_or(0) + uncounted.succeeded.len() as i32,
            failed: status.failed.unwrap_or(0) + uncounted.failed.len() as i32,
            completed_indexes: &completed,
            decided: plan::decided(&conditions),
            start_time: status.start_time.as_ref().map(|t| t.0),
            now,
            backoff_remaining: self.backoff_remaining(&uid, now),
        };
        let decision = plan::plan(&situation);
        let removed = self.remove_pods(&job, &facts, &decision.remove, true).await;
        let terminated = self
            .remove_pods(&job, &facts, &decision.terminate, false)
            .await;
        let created = self.create_pods(&job, &decision.create).await;

        // 4. Status.
        let gone: HashSet<&str> = removed
            .iter()
            .chain(&terminated)
            .map(String::as_str)
            .collect();
        let still_active = facts
            .iter()
            .filter(|p| p.is_active() && !gone.contains(p.name.as_str()));
        let (mut active, mut ready) = (0, 0);
        for pod in still_active {
            active += 1;
            ready += i32::from(pod.ready);
        }
        status.active = Some(active + created.0 as i32);
        status.ready = Some(ready);
        let terminating = facts.iter().filter(|p| p.is_terminating()).count() + gone.len();
        status.terminating = Some(terminating as i32);
        let settled = terminating == 0 && active == 0 && created.0 == 0 && uncounted.is_empty();
        let mut events = Vec::new();
        let mut conditions = conditions;
        update_conditions(
            &mut status,
            &mut conditions,
            &decision.finish,
            spec.suspend,
            settled,
            now,
            &mut events,
        );
        status.conditions = Some(conditions).filter(|c| !c.is_empty());
        let finished_now = events.iter().any(|e| e.terminal);
        job = self.write_status(job, status).await?;
        for event in events {
            self.event(&job, event.warning, &event.reason, &event.message)
                .await;
        }
        if let Some(err) = created.1 {
            return Err(err);
        }
        if finished_now {
            self.with_backoff_remove(&uid);
            return ttl_after_finished::enforce(
                &self.api(&job.namespace().unwrap_or_default()),
                &job,
            )
            .await;
        }
        // A finalizer or pod that could not be handled leaves no event to wake us.
        let incomplete = !uncounted.is_empty()
            || removed.len() < decision.remove.len()
            || terminated.len() < decision.terminate.len();
        if incomplete {
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        Ok(decision
            .requeue_after
            .map_or_else(Action::await_change, Action::requeue))
    }

    fn with_backoff<R>(&self, uid: &str, f: impl FnOnce(&mut Backoff) -> R) -> R {
        let mut all = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        f(all.entry(uid.to_string()).or_default())
    }

    fn backoff_remaining(&self, uid: &str, now: Timestamp) -> Duration {
        let all = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        all.get(uid).map_or(Duration::ZERO, |b| b.remaining(now))
    }

    fn with_backoff_remove(&self, uid: &str) {
        let mut all = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        all.remove(uid);
    }

    /// Replace the Job's status, guarded by its resourceVersion so a stale copy never
    /// overwrites newer counts. Skips the write when nothing changed.
    async fn write_status(&self, mut job: Job, status: JobStatus) -> Result<Job> {
        if job.status.as_ref() == Some(&status) {
            return Ok(job);
        }
        let previous = job.meta().resource_version.clone();
        job.status = Some(status);
        let name = job.name_any();
        let written = self
            .api(&job.namespace().unwrap_or_default())
            .replace_status(&name, &PostParams::default(), &job)
            .await
            .context(format!("updating the status of job {name}"))?;
        self.expectations
            .wrote_status(&job.uid().unwrap_or_default(), previous);
        Ok(written)
    }

    /// Remove the finalizer from pods listed as uncounted; returns the uids whose
    /// outcome may now be counted (released, already untracked, or gone).
    async fn release_uncounted(
        &self,
        job: &Job,
        facts: &[PodFacts],
        uncounted: &Uncounted,
    ) -> HashSet<String> {
        let by_uid: HashMap<&str, &PodFacts> = facts.iter().map(|p| (p.uid.as_str(), p)).collect();
        let all = uncounted.all();
        let mut ready: HashSet<String> = all
            .iter()
            .filter(|uid| by_uid.get(uid.as_str()).is_none_or(|p| !p.tracked))
            .cloned()
            .collect();
        let job_uid = job.uid().unwrap_or_default();
        let namespace = job.namespace().unwrap_or_default();
        let tracked: Vec<PodFacts> = all
            .iter()
            .filter_map(|uid| by_uid.get(uid.as_str()).copied())
            .filter(|p| p.tracked)
            .cloned()
            .collect();
        let released = futures::stream::iter(tracked)
            .map(|pod| {
                let namespace = namespace.clone();
                async move {
                    match strip_finalizer(&self.pods_api(&namespace), &pod.name).await {
                        Ok(()) => Some(pod),
                        Err(err) => {
                            warn!(pod = %pod.name, error = %err, "removing the job tracking finalizer failed");
                            None
                        }
                    }
                }
            })
            .buffer_unordered(PARALLEL_PATCHES)
            .collect::<Vec<_>>()
            .await;
        for pod in released.into_iter().flatten() {
            self.expectations
                .unfinalized(&job_uid, pod.name.clone(), pod.uid.clone());
            ready.insert(pod.uid.clone());
        }
        ready
    }

    /// Delete pods by name; `untrack` first strips the finalizer so the pod is not
    /// counted. Returns the names deleted.
    async fn remove_pods(
        &self,
        job: &Job,
        facts: &[PodFacts],
        names: &[String],
        untrack: bool,
    ) -> Vec<String> {
        let job_uid = job.uid().unwrap_or_default();
        let namespace = job.namespace().unwrap_or_default();
        let api = self.pods_api(&namespace);
        let pods: Vec<PodFacts> = facts
            .iter()
            .filter(|p| names.contains(&p.name))
            .cloned()
            .collect();
        let deleted = futures::stream::iter(pods)
            .map(|pod| {
                let api = api.clone();
                let job_uid = job_uid.clone();
                async move {
                    if untrack && pod.tracked {
                        if let Err(err) = strip_finalizer(&api, &pod.name).await {
                            warn!(pod = %pod.name, error = %err, "removing the job tracking finalizer failed");
                            return None;
                        }
                        self.expectations
                            .unfinalized(&job_uid, pod.name.clone(), pod.uid.clone());
                    }
                    match api.delete(&pod.name, &DeleteParams::default()).await {
                        Ok(_) => {
                            self.expectations
                                .deleted(&job_uid, pod.name.clone(), pod.uid.clone());
                            Some(pod.name.clone())
                        }
                        Err(err) if is_not_found(&err) => Some(pod.name.clone()),
                        Err(err) => {
                            warn!(pod = %pod.name, error = %err, "deleting job pod failed");
                            None
                        }
                    }
                }
            })
            .buffer_unordered(PARALLEL_PATCHES)
            .collect::<Vec<_>>()
            .await;
        let deleted: Vec<String> = deleted.into_iter().flatten().collect();
        for name in &deleted {
            self.event(
                job,
                false,
                "SuccessfulDelete",
                &format!("Deleted pod: {name}"),
            )
            .await;
        }
        deleted
    }

    /// Create pods in slow-start batches; returns how many were created and the first
    /// error.
    async fn create_pods(&self, job: &Job, wanted: &[Option<i32>]) -> (usize, Option<Error>) {
        if wanted.is_empty() {
            return (0, None);
        }
        let namespace = job.namespace().unwrap_or_default();
        let api = self.pods_api(&namespace);
        let job_uid = job.uid().unwrap_or_default();
        let (count, err) = pod_control::slow_start_batch(wanted.len(), |i| {
            let pod = pod_for(job, &namespace, wanted[i]);
            let api = api.clone();
            let job_uid = job_uid.clone();
            async move {
                match api.create(&PostParams::default(), &pod).await {
                    Ok(created) => {
                        let name = created.name_any();
                        self.expectations.created(&job_uid, name.clone());
                        self.event(
                            job,
                            false,
                            "SuccessfulCreate",
                            &format!("Created pod: {name}"),
                        )
                        .await;
                        Ok(())
                    }
                    Err(err) => {
                        self.event(job, true, "FailedCreate", &format!("Error creating: {err}"))
                            .await;
                        Err(err)
                    }
                }
            }
        })
        .await;
        let err = err.map(|e| Error::Kube {
            action: format!("creating a pod for job {}", job.name_any()),
            source: e,
        });
        (count, err)
    }

    /// Record an event without waiting for it: a Job creating a thousand pods should
    /// not pay an extra round trip per pod.
    async fn event(&self, job: &Job, warning: bool, reason: &str, message: &str) {
        let reference = job.object_ref(&());
        let recorder = self.recorder.clone();
        let (reason, message) = (reason.to_string(), message.to_string());
        k3rs_core::task::spawn(async move {
            context::publish(&recorder, &reference, warning, &reason, &reason, message).await;
        });
    }
}

/// Remove the tracking finalizer the way upstream patches it (other finalizers stay);
/// a pod already gone counts as done. A patch racing another write of the pod can be
/// refused with a conflict; it is simply tried again.
async fn strip_finalizer(api: &Api<Pod>, name: &str) -> std::result::Result<(), kube::Error> {
    const ATTEMPTS: u32 = 5;
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}});
    let mut attempt = 1;
    loop {
        match api
            .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            Err(err) if is_not_found(&err) => return Ok(()),
            Err(err) if is_conflict(&err) && attempt < ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other.map(|_| ()),
        }
    }
}

/// A Job event to record after its status is written.
struct PendingEvent {
    warning: bool,
    reason: String,
    message: String,
    /// The Job reached `Complete` or `Failed`.
    terminal: bool,
}

/// Upstream's condition sequence: `Suspended` follows `spec.suspend`; a decided outcome
/// first adds `FailureTarget`/`SuccessCriteriaMet`, and `Failed`/`Complete` only once no
/// pod is left running or uncounted.
fn update_conditions(
    status: &mut JobStatus,
    conditions: &mut Vec<k8s_openapi::api::batch::v1::JobCondition>,
    finish: &Option<Finish>,
    suspend: bool,
    settled: bool,
    now: Timestamp,
    events: &mut Vec<PendingEvent>,
) {
    let mut note = |warning: bool, reason: &str, message: &str, terminal: bool| {
        events.push(PendingEvent {
            warning,
            reason: reason.into(),
            message: message.into(),
            terminal,
        })
    };
    match finish {
        None if suspend => {
            if plan::set_condition(
                conditions,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                now,
            ) {
                note(false, "Suspended", "Job suspended", false);
            }
        }
        None => {
            if plan::set_condition(
                conditions,
                "Suspended",
                "False",
                "JobResumed",
                "Job resumed",
                now,
            ) {
                note(false, "Resumed", "Job resumed", false);
            }
        }
        Some(Finish::Failure { reason, message }) => {
            plan::set_condition(conditions, "FailureTarget", "True", reason, message, now);
            if settled && plan::set_condition(conditions, "Failed", "True", reason, message, now) {
                note(true, reason, message, true);
            }
        }
        Some(Finish::Success) => {
            plan::set_condition(
                conditions,
                "SuccessCriteriaMet",
                "True",
                plan::REASON_COMPLETIONS,
                plan::MESSAGE_COMPLETIONS,
                now,
            );
            if settled
                && plan::set_condition(
                    conditions,
                    "Complete",
                    "True",
                    plan::REASON_COMPLETIONS,
                    plan::MESSAGE_COMPLETIONS,
                    now,
                )
            {
                status.completion_time = Some(Time(now));
                note(false, "Completed", "Job completed", true);
            }
        }
    }
}

/// `status.uncountedTerminatedPods` as sets.
struct Uncounted {
    succeeded: BTreeSet<String>,
    failed: BTreeSet<String>,
}

impl Uncounted {
    fn of(status: &JobStatus) -> Uncounted {
        let list = |l: Option<&Vec<String>>| l.into_iter().flatten().cloned().collect();
        let u = status.uncounted_terminated_pods.as_ref();
        Uncounted {
            succeeded: list(u.and_then(|u| u.succeeded.as_ref())),
            failed: list(u.and_then(|u| u.failed.as_ref())),
        }
    }

    fn all(&self) -> HashSet<String> {
        self.succeeded.iter().chain(&self.failed).cloned().collect()
    }

    fn add(&mut self, uid: &str, succeeded: bool) {
        if succeeded {
            self.succeeded.insert(uid.to_string());
        } else {
            self.failed.insert(uid.to_string());
        }
    }

    /// Take out the uids in `ready`, with whether each succeeded.
    fn take(&mut self, ready: &HashSet<String>) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        for (set, ok) in [(&mut self.succeeded, true), (&mut self.failed, false)] {
            set.retain(|uid| {
                let taken = ready.contains(uid);
                if taken {
                    out.push((uid.clone(), ok));
                }
                !taken
            });
        }
        out
    }

    fn is_empty(&self) -> bool {
        self.succeeded.is_empty() && self.failed.is_empty()
    }

    fn to_status(&self) -> UncountedTerminatedPods {
        let list = |s: &BTreeSet<String>| {
            Some(s.iter().cloned().collect::<Vec<_>>()).filter(|l| !l.is_empty())
        };
        UncountedTerminatedPods {
            succeeded: list(&self.succeeded),
            failed: list(&self.failed),
        }
    }
}

/// A pod for the Job (for `index` in Indexed mode), carrying the tracking finalizer.
fn pod_for(job: &Job, namespace: &str, index: Option<i32>) -> Pod {
    let name = job.name_any();
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let prefix = match index {
        Some(i) => pod_control::generate_name_prefix(&format!("{name}-{i}")),
        None => pod_control::generate_name_prefix(&name),
    };
    let mut pod = pod_control::pod_from_template(
        &template,
        pod_control::owner_reference(job),
        namespace,
        None,
        Some(prefix),
    );
    pod.metadata
        .finalizers
        .get_or_insert_with(Vec::new)
        .push(TRACKING_FINALIZER.to_string());
    if let Some(i) = index {
        set_completion_index(&mut pod, &name, i);
    }
    pod
}

/// What upstream adds to an Indexed Job's pod: the index as annotation and label, a
/// stable hostname, and `JOB_COMPLETION_INDEX` from the annotation via the downward API.
fn set_completion_index(pod: &mut Pod, job_name: &str, index: i32) {
    let value = index.to_string();
    pod.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(COMPLETION_INDEX.into(), value.clone());
    pod.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(COMPLETION_INDEX.into(), value);
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    if spec.hostname.is_none() {
        spec.hostname = Some(format!("{job_name}-{index}"));
    }
    let env = EnvVar {
        name: "JOB_COMPLETION_INDEX".into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
            }),
            ..Default::default()
        }),
    };
    let containers = spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten());
    for container in containers {
        let vars = container.env.get_or_insert_with(Vec::new);
        if !vars.iter().any(|v| v.name == env.name) {
            vars.push(env.clone());
        }
    }
}

/// Pods keeping the tracking finalizer after their Job is gone would never be deleted;
/// upstream's orphan queue strips it. Watches the shared pod stream for such pods.
async fn release_orphans(c: Arc<JobController>) {
    let _ = c.jobs.wait_until_ready().await;
    let mut pods = std::pin::pin!(c.ctx.pods.subscribe());
    while let Some(Ok(pod)) = pods.next().await {
        if !plan::has_tracking_finalizer(&pod) {
            continue;
        }
        let owner = pod_control::controller_ref(&pod.metadata)
            .filter(|r| r.kind == "Job" && r.api_version == "batch/v1");
        let job = owner.and_then(|r| {
            c.jobs
                .get(&ObjectRef::new(&r.name).within(&pod.namespace().unwrap_or_default()))
                .filter(|j| j.uid().as_deref() == Some(r.uid.as_str()))
        });
        if job.is_some() {
            continue;
        }
        if let Some(r) = owner {
            c.expectations.forget(&r.uid);
            c.with_backoff_remove(&r.uid);
        }
        if let Err(err) = c.remove_finalizer(&pod).await {
            warn!(pod = %pod.name_any(), error = %err, "releasing an orphaned job pod failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexed_pods_carry_their_index() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "work", "namespace": "ns", "uid": "u1"},
            "spec": {"completionMode": "Indexed", "template": {
                "metadata": {"labels": {"app": "w"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}],
                         "initContainers": [{"name": "i", "image": "busybox",
                             "env": [{"name": "JOB_COMPLETION_INDEX", "value": "mine"}]}]},
            }},
        }))
        .unwrap();
        let pod = pod_for(&job, "ns", Some(3));
        let meta = &pod.metadata;
        assert_eq!(meta.generate_name.as_deref(), Some("work-3-"));
        assert_eq!(meta.finalizers, Some(vec![TRACKING_FINALIZER.to_string()]));
        assert_eq!(meta.annotations.as_ref().unwrap()[COMPLETION_INDEX], "3");
        assert_eq!(meta.labels.as_ref().unwrap()[COMPLETION_INDEX], "3");
        assert_eq!(meta.labels.as_ref().unwrap()["app"], "w");
        let spec = pod.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("work-3"));
        let env = spec.containers[0].env.as_ref().unwrap();
        assert_eq!(
            env[0]
                .value_from
                .as_ref()
                .unwrap()
                .field_ref
                .as_ref()
                .unwrap()
                .field_path,
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        );
        // A variable the user set is left alone.
        let init_env = spec.init_containers.unwrap()[0].env.clone().unwrap();
        assert_eq!(init_env.len(), 1);
        assert_eq!(init_env[0].value.as_deref(), Some("mine"));

        let plain = pod_for(&job, "ns", None);
        assert_eq!(plain.metadata.generate_name.as_deref(), Some("work-"));
    }

    #[test]
    fn uncounted_moves_only_released_pods() {
        let status: JobStatus = serde_json::from_value(json!({
            "uncountedTerminatedPods": {"succeeded": ["a", "b"], "failed": ["c"]},
        }))
        .unwrap();
        let mut u = Uncounted::of(&status);
        let mut taken = u.take(&["a".to_string(), "c".to_string()].into());
        taken.sort();
        assert_eq!(
            taken,
            vec![("a".to_string(), true), ("c".to_string(), false)]
        );
        assert_eq!(
            serde_json::to_value(u.to_status()).unwrap(),
            json!({"succeeded": ["b"]})
        );
    }

    #[test]
    fn finishing_waits_for_pods_to_settle() {
        let now = Timestamp::from_second(1000).unwrap();
        let failure = Some(Finish::Failure {
            reason: plan::REASON_BACKOFF_LIMIT.into(),
            message: plan::MESSAGE_BACKOFF_LIMIT.into(),
        });
        let mut status = JobStatus::default();
        let mut conditions = Vec::new();
        let mut events = Vec::new();
        update_conditions(
            &mut status,
            &mut conditions,
            &failure,
            false,
            false,
            now,
            &mut events,
        );
        let types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, vec!["FailureTarget"]);
        assert!(events.is_empty());
        update_conditions(
            &mut status,
            &mut conditions,
            &failure,
            false,
            true,
            now,
            &mut events,
        );
        let types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, vec!["FailureTarget", "Failed"]);
        assert_eq!(events.len(), 1);
        assert!(events[0].warning && events[0].terminal);
        assert!(status.completion_time.is_none());

        let mut conditions = Vec::new();
        let mut events = Vec::new();
        update_conditions(
            &mut status,
            &mut conditions,
            &Some(Finish::Success),
            false,
            true,
            now,
            &mut events,
        );
        let types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, vec!["SuccessCriteriaMet", "Complete"]);
        assert_eq!(status.completion_time, Some(Time(now)));
        assert_eq!(events[0].reason, "Completed");
    }
}
