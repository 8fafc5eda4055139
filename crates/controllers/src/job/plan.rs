//! The Job controller's decisions as pure functions: how each owned pod counts, which
//! finished pods still need counting, whether the Job has met its success or failure
//! criteria, and which pods to create or delete. Nothing here talks to the API.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::Pod;

use super::indexes;

/// Finalizer on every pod a Job creates, removed once the pod's outcome is counted in the
/// Job's status, so a pod deleted early still counts exactly once.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Annotation and label carrying an Indexed Job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// Pause before replacing a failed pod, doubled for each further failure (upstream's
/// `DefaultJobPodFailureBackOff` and `MaxJobPodFailureBackOff`).
const FAILURE_BACKOFF: Duration = Duration::from_secs(10);
const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(360);

pub const REASON_BACKOFF_LIMIT: &str = "BackoffLimitExceeded";
pub const MESSAGE_BACKOFF_LIMIT: &str = "Job has reached the specified backoff limit";
pub const REASON_DEADLINE: &str = "DeadlineExceeded";
pub const MESSAGE_DEADLINE: &str = "Job was active longer than specified deadline";
pub const REASON_COMPLETIONS: &str = "CompletionsReached";
pub const MESSAGE_COMPLETIONS: &str = "Reached expected number of succeeded pods";

/// What the controller needs to know about one owned pod.
#[derive(Clone, Debug, PartialEq)]
pub struct PodFacts {
    pub name: String,
    pub uid: String,
    pub phase: Phase,
    /// Has a deletion timestamp.
    pub terminating: bool,
    pub ready: bool,
    /// Still carries the tracking finalizer, so its outcome is not counted yet.
    pub tracked: bool,
    /// The completion index (Indexed Jobs).
    pub index: Option<i32>,
    /// When it finished (for the failure back-off), if it has.
    pub finished_at: Option<Timestamp>,
    pub created: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Running,
    Succeeded,
    Failed,
}

impl PodFacts {
    pub fn of(pod: &Pod) -> PodFacts {
        let status = pod.status.as_ref();
        let phase = match status.and_then(|s| s.phase.as_deref()) {
            Some("Succeeded") => Phase::Succeeded,
            Some("Failed") => Phase::Failed,
            _ => Phase::Running,
        };
        let meta = &pod.metadata;
        PodFacts {
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            phase,
            terminating: meta.deletion_timestamp.is_some(),
            ready: crate::pod_control::is_ready(pod),
            tracked: has_tracking_finalizer(pod),
            index: completion_index(pod),
            finished_at: finished_at(pod),
            created: meta.creation_timestamp.as_ref().map(|t| t.0),
        }
    }

    /// Pending or running and not being deleted.
    pub fn is_active(&self) -> bool {
        self.phase == Phase::Running && !self.terminating
    }

    /// Being deleted but not finished yet (`status.terminating`).
    pub fn is_terminating(&self) -> bool {
        self.phase == Phase::Running && self.terminating
    }

    /// How this pod counts once finished: `Some(true)` succeeded, `Some(false)` failed.
    /// A pod deleted before succeeding counts as failed, unless the Job only replaces
    /// pods that reached the `Failed` phase (`podReplacementPolicy: Failed`).
    pub fn outcome(&self, only_failed_phase: bool) -> Option<bool> {
        match self.phase {
            Phase::Succeeded => Some(true),
            Phase::Failed => Some(false),
            Phase::Running if self.terminating && !only_failed_phase => Some(false),
            Phase::Running => None,
        }
    }
}

pub fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == TRACKING_FINALIZER))
}

fn completion_index(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(COMPLETION_INDEX))
        .or_else(|| pod.metadata.labels.as_ref()?.get(COMPLETION_INDEX))
        .and_then(|v| v.parse().ok())
        .filter(|i| *i >= 0)
}

/// The latest container exit, or the moment the pod turned not-Ready on finishing.
fn finished_at(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref()?;
    let exits = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| {
            Some(
                c.state
                    .as_ref()?
                    .terminated
                    .as_ref()?
                    .finished_at
                    .as_ref()?
                    .0,
            )
        })
        .max();
    exits.or_else(|| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0)
    })
}

/// The spec fields that drive decisions, with upstream's defaults filled in.
#[derive(Clone, Debug)]
pub struct JobSpecFacts {
    pub completions: Option<i32>,
    pub parallelism: i32,
    pub indexed: bool,
    pub backoff_limit: i32,
    pub active_deadline_seconds: Option<i64>,
    pub suspend: bool,
    /// `podReplacementPolicy: Failed`: terminating pods are neither replaced nor counted.
    pub only_failed_phase: bool,
}

impl JobSpecFacts {
    pub fn of(job: &Job) -> JobSpecFacts {
        let spec = job.spec.as_ref();
        JobSpecFacts {
            completions: spec.and_then(|s| s.completions),
            parallelism: spec.and_then(|s| s.parallelism).unwrap_or(1).max(0),
            indexed: spec.and_then(|s| s.completion_mode.as_deref()) == Some("Indexed"),
            backoff_limit: spec.and_then(|s| s.backoff_limit).unwrap_or(6),
            active_deadline_seconds: spec.and_then(|s| s.active_deadline_seconds),
            suspend: spec.and_then(|s| s.suspend).unwrap_or(false),
            only_failed_phase: spec.and_then(|s| s.pod_replacement_policy.as_deref())
                == Some("Failed"),
        }
    }
}

/// Finished pods still carrying the finalizer that are not yet in
/// `uncountedTerminatedPods`: `(pod, succeeded)`.
pub fn newly_finished<'a>(
    pods: &'a [PodFacts],
    uncounted: &HashSet<String>,
    only_failed_phase: bool,
) -> Vec<(&'a PodFacts, bool)> {
    pods.iter()
        .filter(|p| p.tracked && !uncounted.contains(&p.uid))
        .filter_map(|p| Some((p, p.outcome(only_failed_phase)?)))
        .collect()
}

/// Consecutive failures since the last success and when the latest happened, to space
/// out replacements (upstream's `backoffRecord`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Backoff {
    pub failures: u32,
    pub last_failure: Option<Timestamp>,
}

impl Backoff {
    /// Fold in newly finished pods: a success resets the count (failures after it still
    /// count), failures add up.
    pub fn record(&mut self, finished: &[(&PodFacts, bool)], now: Timestamp) {
        let latest_success = finished
            .iter()
            .filter(|(_, ok)| *ok)
            .map(|(p, _)| p.finished_at.unwrap_or(now))
            .max();
        let failures: Vec<Timestamp> = finished
            .iter()
            .filter(|(_, ok)| !*ok)
            .map(|(p, _)| p.finished_at.unwrap_or(now))
            .filter(|t| latest_success.is_none_or(|s| *t > s))
            .collect();
        if latest_success.is_some() {
            *self = Backoff::default();
        }
        if let Some(latest) = failures.iter().max() {
            self.failures += failures.len() as u32;
            self.last_failure = Some(self.last_failure.map_or(*latest, |t| t.max(*latest)));
        }
    }

    /// How long to wait before creating a replacement pod.
    pub fn remaining(&self, now: Timestamp) -> Duration {
        let Some(last) = self.last_failure.filter(|_| self.failures > 0) else {
            return Duration::ZERO;
        };
        let mut wait = FAILURE_BACKOFF;
        for _ in 1..self.failures {
            wait = (wait * 2).min(MAX_FAILURE_BACKOFF);
        }
        let elapsed = Duration::try_from(now.duration_since(last)).unwrap_or(Duration::ZERO);
        wait.saturating_sub(elapsed)
    }
}

/// Why a Job ends.
#[derive(Clone, Debug, PartialEq)]
pub enum Finish {
    Success,
    Failure { reason: String, message: String },
}

/// Everything a decision is made from.
#[derive(Clone, Debug)]
pub struct Situation<'a> {
    pub spec: JobSpecFacts,
    pub pods: &'a [PodFacts],
    /// Counted plus uncounted outcomes.
    pub succeeded: i32,
    pub failed: i32,
    pub completed_indexes: &'a BTreeSet<i32>,
    /// An earlier sync already decided the outcome (`FailureTarget` or
    /// `SuccessCriteriaMet` condition).
    pub decided: Option<Finish>,
    pub start_time: Option<Timestamp>,
    pub now: Timestamp,
    pub backoff_remaining: Duration,
}

/// What to do about the pods.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub finish: Option<Finish>,
    /// Pods to create: `None` for NonIndexed, `Some(index)` for Indexed.
    pub create: Vec<Option<i32>>,
    /// Surplus pods (suspend, scale-down, duplicate index): finalizer removed, deleted,
    /// not counted as failures.
    pub remove: Vec<String>,
    /// Active pods of a finished Job: deleted with the finalizer kept, so they are
    /// counted (as failed) before going away, as upstream does.
    pub terminate: Vec<String>,
    pub requeue_after: Option<Duration>,
}

/// Decide the Job's outcome and the pod changes it needs.
pub fn plan(s: &Situation) -> Plan {
    let active: Vec<&PodFacts> = s.pods.iter().filter(|p| p.is_active()).collect();
    let mut plan = Plan {
        finish: s.decided.clone().or_else(|| finish(s, active.len())),
        ..Plan::default()
    };
    if plan.finish.is_some() {
        plan.terminate = active.iter().map(|p| p.name.clone()).collect();
        return plan;
    }
    if s.spec.suspend {
        plan.remove = active.iter().map(|p| p.name.clone()).collect();
        return plan;
    }
    if let (Some(deadline), Some(start)) = (s.spec.active_deadline_seconds, s.start_time) {
        let left = start.as_second() + deadline - s.now.as_second();
        plan.requeue_after = Some(Duration::from_secs(left.max(1) as u64));
    }
    // Pods still terminating hold their place when only Failed pods are replaced.
    let held = if s.spec.only_failed_phase {
        s.pods.iter().filter(|p| p.is_terminating()).count()
    } else {
        0
    };
    if s.spec.indexed {
        manage_indexed(s, &active, held, &mut plan);
    } else {
        manage_non_indexed(s, &active, held, &mut plan);
    }
    if !plan.create.is_empty() && !s.backoff_remaining.is_zero() {
        plan.create.clear();
        plan.requeue_after = Some(
            plan.requeue_after
                .map_or(s.backoff_remaining, |r| r.min(s.backoff_remaining)),
        );
    }
    plan
}

fn finish(s: &Situation, active: usize) -> Option<Finish> {
    if s.failed > s.spec.backoff_limit {
        return Some(Finish::Failure {
            reason: REASON_BACKOFF_LIMIT.into(),
            message: MESSAGE_BACKOFF_LIMIT.into(),
        });
    }
    if past_deadline(s) {
        return Some(Finish::Failure {
            reason: REASON_DEADLINE.into(),
            message: MESSAGE_DEADLINE.into(),
        });
    }
    let complete = match (s.spec.indexed, s.spec.completions) {
        (true, Some(c)) => s.completed_indexes.len() >= c.max(0) as usize,
        (false, Some(c)) => s.succeeded >= c,
        // A work queue is done once a pod succeeded and the others stopped.
        (_, None) => s.succeeded > 0 && active == 0,
    };
    complete.then_some(Finish::Success)
}

fn past_deadline(s: &Situation) -> bool {
    match (s.spec.active_deadline_seconds, s.start_time) {
        (Some(deadline), Some(start)) if !s.spec.suspend => {
            s.now.as_second() - start.as_second() >= deadline
        }
        _ => false,
    }
}

fn manage_non_indexed(s: &Situation, active: &[&PodFacts], held: usize, plan: &mut Plan) {
    let parallelism = s.spec.parallelism as usize;
    let want = match s.spec.completions {
        // Work queue: once one pod succeeded, no new ones start.
        None if s.succeeded > 0 => active.len(),
        None => parallelism,
        Some(c) => ((c - s.succeeded).max(0) as usize).min(parallelism),
    };
    let have = active.len() + held;
    if have > want {
        plan.remove = removal_order(active)
            .into_iter()
            .take(active.len().saturating_sub(want.saturating_sub(held)))
            .collect();
    } else {
        plan.create = vec![None; want - have];
    }
}

fn manage_indexed(s: &Situation, active: &[&PodFacts], held: usize, plan: &mut Plan) {
    let completions = s.spec.completions.unwrap_or(0).max(0);
    let mut keep: HashMap<i32, &PodFacts> = HashMap::new();
    let mut surplus = Vec::new();
    for pod in removal_order_rev(active) {
        match pod.index {
            Some(i) if i < completions && !s.completed_indexes.contains(&i) => {
                if keep.insert(i, pod).is_some() {
                    surplus.push(pod.name.clone());
                }
            }
            _ => surplus.push(pod.name.clone()),
        }
    }
    let busy: HashSet<i32> = s
        .pods
        .iter()
        .filter(|p| s.spec.only_failed_phase && p.is_terminating())
        .filter_map(|p| p.index)
        .chain(keep.keys().copied())
        .collect();
    let remaining = (completions as usize).saturating_sub(s.completed_indexes.len());
    let want = remaining.min(s.spec.parallelism as usize);
    let have = keep.len() + held;
    if have > want {
        // Drop the highest indexes first, keeping the low ones running.
        let mut kept: Vec<(i32, String)> = keep.iter().map(|(i, p)| (*i, p.name.clone())).collect();
        kept.sort();
        let excess = keep.len().saturating_sub(want.saturating_sub(held));
        surplus.extend(kept.into_iter().rev().take(excess).map(|(_, n)| n));
    } else {
        plan.create = (0..completions)
            .filter(|i| !s.completed_indexes.contains(i) && !busy.contains(i))
            .take(want - have)
            .map(Some)
            .collect();
    }
    plan.remove = surplus;
}

/// Upstream removes the least progressed pods first: not ready before ready, then the
/// newest.
fn removal_order(active: &[&PodFacts]) -> Vec<String> {
    let mut pods = active.to_vec();
    pods.sort_by(|a, b| a.ready.cmp(&b.ready).then(b.created.cmp(&a.created)));
    pods.into_iter().map(|p| p.name.clone()).collect()
}

/// The most progressed pods first (so that duplicates keep the best one).
fn removal_order_rev<'a>(active: &[&'a PodFacts]) -> Vec<&'a PodFacts> {
    let mut pods = active.to_vec();
    pods.sort_by(|a, b| {
        b.ready
            .cmp(&a.ready)
            .then(a.created.cmp(&b.created))
            .then(a.name.cmp(&b.name))
    });
    pods
}

/// The outcome an earlier sync recorded in the conditions, if any.
pub fn decided(conditions: &[JobCondition]) -> Option<Finish> {
    let holds = |c: &&JobCondition| c.status == "True";
    if let Some(c) = conditions
        .iter()
        .filter(holds)
        .find(|c| c.type_ == "FailureTarget" || c.type_ == "Failed")
    {
        return Some(Finish::Failure {
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
        });
    }
    conditions
        .iter()
        .filter(holds)
        .any(|c| c.type_ == "SuccessCriteriaMet" || c.type_ == "Complete")
        .then_some(Finish::Success)
}

/// The Job has its terminal condition (`Complete` or `Failed`).
pub fn is_finished(job: &Job) -> bool {
    terminal_condition(job).is_some()
}

/// When the terminal condition was set.
pub fn finished_at_time(job: &Job) -> Option<Timestamp> {
    terminal_condition(job).map(|c| {
        c.last_transition_time
            .as_ref()
            .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
    })
}

fn terminal_condition(job: &Job) -> Option<&JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

/// Set condition `type_` to `status` (adding it if missing, unless it would be added as
/// not-`True`, as upstream's `ensureJobConditionStatus`); true when something changed.
pub fn set_condition(
    conditions: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    let time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status == status {
            return false;
        }
        c.status = status.into();
        c.reason = Some(reason.into());
        c.message = Some(message.into());
        c.last_probe_time = time.clone();
        c.last_transition_time = time;
        return true;
    }
    if status != "True" {
        return false;
    }
    conditions.push(JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: time.clone(),
        last_transition_time: time,
    });
    true
}

/// Add newly succeeded indexes to `completedIndexes`.
pub fn with_completed(existing: &str, completions: i32, new: &[i32]) -> String {
    let mut set = indexes::parse(existing, completions);
    set.extend(new.iter().copied().filter(|i| *i < completions));
    indexes::format(&set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn pod(name: &str, phase: Phase) -> PodFacts {
        PodFacts {
            name: name.into(),
            uid: format!("uid-{name}"),
            phase,
            terminating: false,
            ready: false,
            tracked: true,
            index: None,
            finished_at: None,
            created: Some(ts(100)),
        }
    }

    fn spec(completions: Option<i32>, parallelism: i32) -> JobSpecFacts {
        JobSpecFacts {
            completions,
            parallelism,
            indexed: false,
            backoff_limit: 6,
            active_deadline_seconds: None,
            suspend: false,
            only_failed_phase: false,
        }
    }

    fn situation<'a>(
        spec: JobSpecFacts,
        pods: &'a [PodFacts],
        done: &'a BTreeSet<i32>,
    ) -> Situation<'a> {
        Situation {
            spec,
            pods,
            succeeded: 0,
            failed: 0,
            completed_indexes: done,
            decided: None,
            start_time: Some(ts(1000)),
            now: ts(1010),
            backoff_remaining: Duration::ZERO,
        }
    }

    #[test]
    fn active_is_bounded_by_parallelism_and_remaining() {
        let none = BTreeSet::new();
        let p = plan(&situation(spec(Some(3), 2), &[], &none));
        assert_eq!(p.create, vec![None, None]);
        let pods = [pod("a", Phase::Running)];
        let mut s = situation(spec(Some(3), 2), &pods, &none);
        s.succeeded = 2;
        assert_eq!(plan(&s), Plan::default());
        s.succeeded = 3;
        let p = plan(&s);
        assert_eq!(p.finish, Some(Finish::Success));
        assert_eq!(p.terminate, vec!["a".to_string()]);
    }

    #[test]
    fn scaling_down_removes_unready_newest_first() {
        let none = BTreeSet::new();
        let mut a = pod("a", Phase::Running);
        a.ready = true;
        let mut b = pod("b", Phase::Running);
        b.created = Some(ts(200));
        let c = pod("c", Phase::Running);
        let pods = [a, b, c];
        let p = plan(&situation(spec(Some(5), 1), &pods, &none));
        assert_eq!(p.remove, vec!["b".to_string(), "c".to_string()]);
    }

    #[test]
    fn backoff_limit_and_deadline_fail_the_job() {
        let none = BTreeSet::new();
        let pods = [pod("a", Phase::Running)];
        let mut s = situation(spec(Some(3), 1), &pods, &none);
        s.failed = 7;
        let p = plan(&s);
        assert!(
            matches!(&p.finish, Some(Finish::Failure { reason, .. }) if reason == REASON_BACKOFF_LIMIT)
        );
        assert_eq!(p.terminate, vec!["a".to_string()]);
        assert!(p.create.is_empty());

        let mut s = situation(spec(Some(3), 1), &pods, &none);
        s.spec.active_deadline_seconds = Some(10);
        assert!(
            matches!(&plan(&s).finish, Some(Finish::Failure { reason, .. }) if reason == REASON_DEADLINE)
        );
        s.spec.active_deadline_seconds = Some(30);
        let p = plan(&s);
        assert_eq!(
            (p.finish, p.requeue_after),
            (None, Some(Duration::from_secs(20)))
        );
        // The deadline does not run while suspended.
        s.spec.active_deadline_seconds = Some(10);
        s.spec.suspend = true;
        let p = plan(&s);
        assert_eq!((p.finish, p.remove), (None, vec!["a".to_string()]));
    }

    #[test]
    fn work_queue_stops_starting_pods_after_a_success() {
        let none = BTreeSet::new();
        let pods = [pod("a", Phase::Running)];
        let mut s = situation(spec(None, 3), &pods, &none);
        assert_eq!(plan(&s).create.len(), 2);
        s.succeeded = 1;
        assert_eq!(plan(&s), Plan::default());
        let mut s = situation(spec(None, 3), &[], &none);
        s.succeeded = 1;
        assert_eq!(plan(&s).finish, Some(Finish::Success));
    }

    #[test]
    fn indexed_fills_lowest_missing_indexes_and_drops_duplicates() {
        let done: BTreeSet<i32> = [0].into();
        let mut one = pod("one", Phase::Running);
        one.index = Some(1);
        one.ready = true;
        let mut dup = pod("dup", Phase::Running);
        dup.index = Some(1);
        let mut stale = pod("stale", Phase::Running);
        stale.index = Some(0);
        let pods = [one, dup, stale];
        let mut sp = spec(Some(5), 3);
        sp.indexed = true;
        let p = plan(&situation(sp.clone(), &pods, &done));
        let mut removed = p.remove.clone();
        removed.sort();
        assert_eq!(removed, vec!["dup".to_string(), "stale".to_string()]);
        assert_eq!(p.create, vec![Some(2), Some(3)]);

        let all: BTreeSet<i32> = (0..5).collect();
        assert_eq!(
            plan(&situation(sp, &[], &all)).finish,
            Some(Finish::Success)
        );
    }

    #[test]
    fn replacements_wait_for_the_failure_backoff() {
        let none = BTreeSet::new();
        let mut s = situation(spec(Some(2), 2), &[], &none);
        s.backoff_remaining = Duration::from_secs(7);
        let p = plan(&s);
        assert!(p.create.is_empty());
        assert_eq!(p.requeue_after, Some(Duration::from_secs(7)));
    }

    #[test]
    fn backoff_doubles_and_resets_on_success() {
        let mut failed = pod("f", Phase::Failed);
        failed.finished_at = Some(ts(100));
        let mut b = Backoff::default();
        b.record(&[(&failed, false)], ts(100));
        assert_eq!(b.remaining(ts(103)), Duration::from_secs(7));
        b.record(&[(&failed, false)], ts(100));
        assert_eq!(b.remaining(ts(105)), Duration::from_secs(15));
        let mut ok = pod("s", Phase::Succeeded);
        ok.finished_at = Some(ts(110));
        b.record(&[(&ok, true)], ts(110));
        assert_eq!(b, Backoff::default());
        assert_eq!(b.remaining(ts(110)), Duration::ZERO);
    }

    #[test]
    fn outcomes_count_deleted_pods_as_failed() {
        let mut p = pod("a", Phase::Running);
        assert_eq!(p.outcome(false), None);
        p.terminating = true;
        assert_eq!(p.outcome(false), Some(false));
        assert_eq!(p.outcome(true), None);
        let uncounted: HashSet<String> = ["uid-b".to_string()].into();
        let pods = [p, pod("b", Phase::Succeeded), pod("c", Phase::Succeeded)];
        let new: Vec<&str> = newly_finished(&pods, &uncounted, false)
            .iter()
            .map(|(p, _)| p.name.as_str())
            .collect();
        assert_eq!(new, vec!["a", "c"]);
    }

    #[test]
    fn conditions_are_added_once_and_flip_in_place() {
        let mut conditions = Vec::new();
        assert!(!set_condition(
            &mut conditions,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            ts(1)
        ));
        assert!(set_condition(
            &mut conditions,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            ts(1)
        ));
        assert!(!set_condition(
            &mut conditions,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            ts(2)
        ));
        assert!(set_condition(
            &mut conditions,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            ts(3)
        ));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].reason.as_deref(), Some("JobResumed"));
        assert!(decided(&conditions).is_none());
        set_condition(
            &mut conditions,
            "SuccessCriteriaMet",
            "True",
            REASON_COMPLETIONS,
            MESSAGE_COMPLETIONS,
            ts(4),
        );
        assert_eq!(decided(&conditions), Some(Finish::Success));
    }

    #[test]
    fn completed_indexes_merge() {
        assert_eq!(with_completed("0,2", 5, &[1, 4, 9]), "0-2,4");
    }
}
