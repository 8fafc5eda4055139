//! What the pod worker should do next, decided from what it knows, in the spirit of
//! upstream kubelet's `computePodActions`: the pod's spec and deletion state, the runtime's
//! view of the pod (sandboxes and containers, through CRI), probe verdicts, the restart
//! back-off and the current time go in; a list of actions comes out.
//!
//! Pure: no IO, no clock of its own, no mutation. The worker (`worker.rs`) observes,
//! calls [`plan`], and applies the actions through the runtime; whatever applying
//! teaches it (a failed pull, a new back-off step) goes back in as input next time.
//!
//! A plan is one of:
//! - a pod-wide action alone: [`Action::TerminatePod`] (deleted) or [`Action::StopPod`]
//!   (finished, something still runs);
//! - a sandbox change: stop the pod's sandboxes, then [`Action::CreateSandbox`]. What the
//!   containers need depends on the new sandbox, so the worker looks again and re-plans;
//! - container actions against the ready sandbox: init containers one at a time and in
//!   order, then the regular containers (start, restart, kill, back off);
//! - nothing (all is as it should be, or nothing may be done: a `Never` pod whose
//!   sandbox died after its containers ran).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::backoff::{Backoff, ContainerKey};
use super::probe::ProbeKind;
use super::runtime_state::{ContainerRecord, PodRuntimeState};
use super::spec::container_hash;
use crate::cri::api;

/// The grace period when neither the deletion nor the spec gives one, as upstream.
const DEFAULT_GRACE_SECONDS: i64 = 30;
/// A pod that vanished from the API (force-deleted) gets at most this much grace: nobody
/// waits for it any more, but its processes still deserve a SIGTERM first.
const GONE_GRACE_SECONDS: i64 = 2;

/// A probe's verdict that the running container must be killed and restarted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeFailure {
    /// Liveness or startup.
    pub kind: ProbeKind,
    /// What the probe said, for the log.
    pub message: String,
}

/// Everything the decision depends on.
pub struct PlanInputs<'a> {
    pub pod: &'a Pod,
    /// The pod is gone from the API (force-deleted, or deleted while the agent was away).
    pub gone: bool,
    pub runtime: &'a PodRuntimeState,
    /// Running containers, by id, that a failed liveness or startup probe condemned.
    pub probe_failures: &'a HashMap<String, ProbeFailure>,
    pub backoff: &'a Backoff,
    /// Per container name, the exited instance whose exit the back-off last counted: an
    /// exit advances the back-off once, however often it is looked at.
    pub counted_exits: &'a HashMap<String, String>,
    pub now: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerKind {
    Init,
    Regular,
}

/// A container of the pod's spec: `spec.initContainers[index]` or `spec.containers[index]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRef {
    pub kind: ContainerKind,
    pub index: usize,
    pub name: String,
}

impl ContainerRef {
    pub fn is_init(&self) -> bool {
        self.kind == ContainerKind::Init
    }

    /// The container's spec in `pod`.
    pub fn spec<'p>(&self, pod: &'p Pod) -> Option<&'p Container> {
        let spec = pod.spec.as_ref()?;
        match self.kind {
            ContainerKind::Init => spec.init_containers.as_ref()?.get(self.index),
            ContainerKind::Regular => spec.containers.get(self.index),
        }
    }
}

/// How a container is to be started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// Its first run: the runtime has no instance of it.
    First,
    /// Again after an exit, as its `restart_count`-th restart. `exited_id` is the instance
    /// it replaces, kept for `--previous` logs and `lastState` (`exited_attempt` and older
    /// ones are removed); `count_exit` says the back-off has yet to count that exit.
    Restart {
        restart_count: u32,
        exited_id: String,
        exited_attempt: u32,
        count_exit: bool,
    },
    /// Created but never started (the agent stopped in between): start that instance.
    Created { id: String },
}

/// Why a running container is killed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KillReason {
    /// Its liveness or startup probe failed; it will be restarted.
    ProbeFailed(ProbeFailure),
    /// The pod's spec of the container changed (a new image): a `StartContainer` follows
    /// in the same plan, whatever the restart policy, as upstream.
    SpecChanged,
}

/// Why one of the pod's sandboxes is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxChange {
    /// The newest sandbox is not ready: it died, or was stopped.
    NotReady,
    /// An older sandbox, left from before the newest one.
    Superseded,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The pod was deleted: run preStop hooks, stop every container within `grace`
    /// seconds (the time left after the hooks), stop and remove the sandboxes, clean up,
    /// and (unless it is already gone) remove the object to complete the deletion.
    TerminatePod { grace: i64 },
    /// The pod finished (Succeeded or Failed) and something of it still runs: stop it all
    /// within `grace` seconds and stop the sandbox, which frees the pod's IP.
    StopPod { grace: i64 },
    /// Stop a sandbox before the pod gets a new one (it still holds its network).
    KillSandbox { id: String, reason: SandboxChange },
    /// Run a new sandbox, the pod's `attempt`-th.
    CreateSandbox { attempt: u32 },
    StartContainer {
        container: ContainerRef,
        start: Start,
    },
    KillContainer {
        container: ContainerRef,
        id: String,
        reason: KillReason,
        /// Seconds between SIGTERM and SIGKILL.
        grace: i64,
    },
    /// The container exited and must wait until `until` before it restarts
    /// (CrashLoopBackOff); `delay` is the whole wait of this back-off step.
    BackOff {
        container: ContainerRef,
        exited_id: String,
        until: Instant,
        delay: Duration,
        count_exit: bool,
    },
}

pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// The phase the pod's status holds (what the worker wrote last).
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

pub fn is_terminal_phase(phase: &str) -> bool {
    phase == "Succeeded" || phase == "Failed"
}

/// The seconds a container gets between SIGTERM and SIGKILL: the deletion's grace period
/// if the pod is being deleted, else the spec's.
pub fn grace_period(pod: &Pod) -> i64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(DEFAULT_GRACE_SECONDS)
        .max(0)
}

/// The actions that bring the runtime in line with the pod, in the order to apply them.
pub fn plan(i: &PlanInputs<'_>) -> Vec<Action> {
    let pod = i.pod;
    if i.gone || pod.metadata.deletion_timestamp.is_some() {
        let grace = match i.gone {
            true => grace_period(pod).min(GONE_GRACE_SECONDS),
            false => grace_period(pod),
        };
        return vec![Action::TerminatePod { grace }];
    }
    if is_terminal_phase(phase(pod)) {
        // Finished pods keep their status; what still runs is stopped at once.
        let running = i.runtime.containers.values().flatten().any(|r| r.running());
        let sandbox_ready = i.runtime.sandboxes.iter().any(is_ready);
        return match running || sandbox_ready {
            true => vec![Action::StopPod { grace: 0 }],
            false => Vec::new(),
        };
    }
    if i.runtime.ready_sandbox().is_none() {
        return sandbox_actions(i);
    }
    let mut actions = Vec::new();
    if plan_init_containers(i, &mut actions) == InitProgress::AllSucceeded {
        plan_containers(i, &mut actions);
    }
    actions
}

fn is_ready(sandbox: &api::PodSandbox) -> bool {
    sandbox.state == api::PodSandboxState::SandboxReady as i32
}

/// No ready sandbox: a new one, after stopping the old (a dead sandbox may still hold its
/// network). Every container then starts again in it, by the restart policy.
fn sandbox_actions(i: &PlanInputs<'_>) -> Vec<Action> {
    let ran_before = i.runtime.containers.values().flatten().next().is_some();
    if ran_before && restart_policy(i.pod) == "Never" {
        // The sandbox died after its containers ran; nothing may be restarted.
        return Vec::new();
    }
    let mut actions: Vec<Action> = i
        .runtime
        .sandboxes
        .iter()
        .enumerate()
        .map(|(n, s)| Action::KillSandbox {
            id: s.id.clone(),
            reason: match n {
                0 => SandboxChange::NotReady,
                _ => SandboxChange::Superseded,
            },
        })
        .collect();
    actions.push(Action::CreateSandbox {
        attempt: i.runtime.sandboxes.len() as u32,
    });
    actions
}

#[derive(Debug, PartialEq, Eq)]
enum InitProgress {
    AllSucceeded,
    /// An init container runs, waits, or failed for good: the regular containers wait.
    Pending,
}

/// Init containers run one at a time, in order, each to success before the next.
fn plan_init_containers(i: &PlanInputs<'_>, actions: &mut Vec<Action>) -> InitProgress {
    let inits = i
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default();
    for (index, c) in inits.iter().enumerate() {
        let container = ContainerRef {
            kind: ContainerKind::Init,
            index,
            name: c.name.clone(),
        };
        match i.runtime.latest(&c.name) {
            None => {
                actions.push(Action::StartContainer {
                    container,
                    start: Start::First,
                });
                return InitProgress::Pending;
            }
            Some(r) if r.running() => return InitProgress::Pending,
            Some(r) if r.exited() && r.status.exit_code == 0 => continue,
            Some(r) if r.exited() => {
                // A failed init container is retried unless the policy is Never, under
                // which the pod has failed (the status says so).
                if restart_policy(i.pod) != "Never" {
                    actions.push(restart_or_back_off(i, container, r));
                }
                return InitProgress::Pending;
            }
            Some(r) => {
                actions.push(Action::StartContainer {
                    container,
                    start: Start::Created { id: r.id.clone() },
                });
                return InitProgress::Pending;
            }
        }
    }
    InitProgress::AllSucceeded
}

fn plan_containers(i: &PlanInputs<'_>, actions: &mut Vec<Action>) {
    let containers = i.pod.spec.as_ref().map(|s| s.containers.as_slice());
    for (index, c) in containers.unwrap_or_default().iter().enumerate() {
        let container = ContainerRef {
            kind: ContainerKind::Regular,
            index,
            name: c.name.clone(),
        };
        match i.runtime.latest(&c.name) {
            None => actions.push(Action::StartContainer {
                container,
                start: Start::First,
            }),
            Some(r) if r.running() && spec_changed(c, r) => {
                actions.push(Action::KillContainer {
                    container: container.clone(),
                    id: r.id.clone(),
                    reason: KillReason::SpecChanged,
                    grace: grace_period(i.pod),
                });
                // Not an exit of its own: the back-off does not count it.
                actions.push(Action::StartContainer {
                    container,
                    start: Start::Restart {
                        restart_count: r.restart_count() + 1,
                        exited_id: r.id.clone(),
                        exited_attempt: r.attempt,
                        count_exit: false,
                    },
                });
            }
            Some(r) if r.running() => {
                if let Some(failure) = i.probe_failures.get(&r.id) {
                    actions.push(Action::KillContainer {
                        container,
                        id: r.id.clone(),
                        reason: KillReason::ProbeFailed(failure.clone()),
                        grace: grace_period(i.pod),
                    });
                }
            }
            Some(r) if r.exited() => {
                if should_restart(restart_policy(i.pod), r.status.exit_code) {
                    actions.push(restart_or_back_off(i, container, r));
                }
            }
            Some(r) => actions.push(Action::StartContainer {
                container,
                start: Start::Created { id: r.id.clone() },
            }),
        }
    }
}

/// Whether the instance was created from another spec than the pod's now. Instances that
/// carry no hash (created before the kubelet recorded one) are taken as current.
fn spec_changed(c: &Container, record: &ContainerRecord) -> bool {
    record
        .spec_hash()
        .is_some_and(|hash| hash != container_hash(c))
}

/// Whether a regular container that exited with `exit_code` is restarted.
fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Always" => true,
        "OnFailure" => exit_code != 0,
        _ => false,
    }
}

/// Restart an exited container now, or wait out its back-off. The first look at an exit
/// takes the next back-off step (upstream: none for the first exit, then 10 s doubling
/// to 5 min); later looks at the same exit wait for what is left of it.
fn restart_or_back_off(
    i: &PlanInputs<'_>,
    container: ContainerRef,
    exited: &ContainerRecord,
) -> Action {
    let uid = i.pod.metadata.uid.as_deref().unwrap_or_default();
    let key = ContainerKey::new(uid, container.name.clone());
    let counted = i.counted_exits.get(&container.name) == Some(&exited.id);
    let (left, delay) = match counted {
        true => (
            i.backoff.in_backoff(&key, i.now),
            i.backoff.current_delay(&key),
        ),
        false => {
            let delay = i.backoff.peek_delay(&key, i.now);
            ((!delay.is_zero()).then_some(delay), delay)
        }
    };
    match left {
        Some(left) => Action::BackOff {
            container,
            exited_id: exited.id.clone(),
            until: i.now + left,
            delay,
            count_exit: !counted,
        },
        None => Action::StartContainer {
            container,
            start: Start::Restart {
                restart_count: exited.restart_count() + 1,
                exited_id: exited.id.clone(),
                exited_attempt: exited.attempt,
                count_exit: !counted,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::labels;
    use serde_json::json;

    fn pod(policy: &str, inits: &[&str], containers: &[&str]) -> Pod {
        let named = |names: &[&str]| -> Vec<serde_json::Value> {
            names
                .iter()
                .map(|n| json!({"name": n, "image": "busybox"}))
                .collect()
        };
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "uid-1"},
            "spec": {
                "restartPolicy": policy,
                "initContainers": named(inits),
                "containers": named(containers),
            },
            "status": {"phase": "Pending"},
        }))
        .unwrap()
    }

    fn sandbox(id: &str, ready: bool, created_at: i64) -> api::PodSandbox {
        api::PodSandbox {
            id: id.into(),
            state: match ready {
                true => api::PodSandboxState::SandboxReady as i32,
                false => api::PodSandboxState::SandboxNotready as i32,
            },
            created_at,
            ..Default::default()
        }
    }

    /// The view of a pod with one ready sandbox and the given container instances
    /// (name, id, state, exit code, restart count), newest first per name.
    fn view(instances: &[(&str, &str, api::ContainerState, i32, u32)]) -> PodRuntimeState {
        let mut state = PodRuntimeState {
            sandboxes: vec![sandbox("sb-1", true, 1)],
            ..Default::default()
        };
        for (name, id, s, exit_code, restarts) in instances {
            add(&mut state, name, id, *s, *exit_code, *restarts);
        }
        state
    }

    fn add(
        state: &mut PodRuntimeState,
        name: &str,
        id: &str,
        s: api::ContainerState,
        exit_code: i32,
        restarts: u32,
    ) {
        let record = ContainerRecord {
            id: id.into(),
            name: name.into(),
            attempt: restarts,
            status: api::ContainerStatus {
                id: id.into(),
                state: s as i32,
                exit_code,
                annotations: HashMap::from([(
                    labels::RESTART_COUNT.to_string(),
                    restarts.to_string(),
                )]),
                ..Default::default()
            },
        };
        state
            .containers
            .entry(name.into())
            .or_default()
            .insert(0, record);
    }

    use api::ContainerState::{ContainerCreated, ContainerExited, ContainerRunning};

    /// The worker's knowledge besides the pod and the runtime.
    struct Known {
        probe_failures: HashMap<String, ProbeFailure>,
        backoff: Backoff,
        counted_exits: HashMap<String, String>,
        gone: bool,
    }

    impl Known {
        fn new() -> Known {
            Known {
                probe_failures: HashMap::new(),
                backoff: Backoff::new(),
                counted_exits: HashMap::new(),
                gone: false,
            }
        }

        fn plan(&self, pod: &Pod, runtime: &PodRuntimeState, now: Instant) -> Vec<Action> {
            plan(&PlanInputs {
                pod,
                gone: self.gone,
                runtime,
                probe_failures: &self.probe_failures,
                backoff: &self.backoff,
                counted_exits: &self.counted_exits,
                now,
            })
        }

        /// What the worker does with an exit the plan asks it to count.
        fn count(&mut self, action: &Action, now: Instant) {
            let (container, exited_id) = match action {
                Action::BackOff {
                    container,
                    exited_id,
                    count_exit: true,
                    ..
                } => (container, exited_id),
                Action::StartContainer {
                    container,
                    start:
                        Start::Restart {
                            exited_id,
                            count_exit: true,
                            ..
                        },
                } => (container, exited_id),
                _ => return,
            };
            let key = ContainerKey::new("uid-1", container.name.clone());
            self.backoff.next_delay(&key, now);
            self.counted_exits
                .insert(container.name.clone(), exited_id.clone());
        }
    }

    fn regular(index: usize, name: &str) -> ContainerRef {
        ContainerRef {
            kind: ContainerKind::Regular,
            index,
            name: name.into(),
        }
    }

    fn init(index: usize, name: &str) -> ContainerRef {
        ContainerRef {
            kind: ContainerKind::Init,
            index,
            name: name.into(),
        }
    }

    fn first(container: ContainerRef) -> Action {
        Action::StartContainer {
            container,
            start: Start::First,
        }
    }

    fn restarted(container: ContainerRef, exited_id: &str, restart_count: u32) -> Action {
        Action::StartContainer {
            container,
            start: Start::Restart {
                restart_count,
                exited_id: exited_id.into(),
                exited_attempt: restart_count - 1,
                count_exit: true,
            },
        }
    }

    #[test]
    fn a_new_pod_gets_a_sandbox_then_its_containers() {
        let pod = pod("Always", &[], &["app", "sidecar"]);
        let known = Known::new();
        let now = Instant::now();
        let empty = PodRuntimeState::default();
        assert_eq!(
            known.plan(&pod, &empty, now),
            [Action::CreateSandbox { attempt: 0 }]
        );
        assert_eq!(
            known.plan(&pod, &view(&[]), now),
            [first(regular(0, "app")), first(regular(1, "sidecar"))]
        );
        let running = view(&[
            ("app", "c1", ContainerRunning, 0, 0),
            ("sidecar", "c2", ContainerRunning, 0, 0),
        ]);
        assert_eq!(known.plan(&pod, &running, now), []);
    }

    #[test]
    fn restart_policies_decide_which_exits_restart() {
        let known = Known::new();
        let now = Instant::now();
        let cases = [
            ("Always", 0, true),
            ("Always", 1, true),
            ("OnFailure", 0, false),
            ("OnFailure", 2, true),
            ("Never", 0, false),
            ("Never", 1, false),
        ];
        for (policy, exit_code, restarts) in cases {
            let pod = pod(policy, &[], &["app"]);
            let runtime = view(&[("app", "c1", ContainerExited, exit_code, 0)]);
            let expected = match restarts {
                true => vec![restarted(regular(0, "app"), "c1", 1)],
                false => vec![],
            };
            assert_eq!(
                known.plan(&pod, &runtime, now),
                expected,
                "{policy}, exit {exit_code}"
            );
        }
    }

    #[test]
    fn init_containers_run_one_at_a_time_in_order() {
        let pod = pod("Always", &["migrate", "warm"], &["app"]);
        let known = Known::new();
        let now = Instant::now();
        assert_eq!(
            known.plan(&pod, &view(&[]), now),
            [first(init(0, "migrate"))]
        );
        let running = view(&[("migrate", "i1", ContainerRunning, 0, 0)]);
        assert_eq!(known.plan(&pod, &running, now), []);
        let first_done = view(&[("migrate", "i1", ContainerExited, 0, 0)]);
        assert_eq!(known.plan(&pod, &first_done, now), [first(init(1, "warm"))]);
        let all_done = view(&[
            ("migrate", "i1", ContainerExited, 0, 0),
            ("warm", "i2", ContainerExited, 0, 0),
        ]);
        assert_eq!(known.plan(&pod, &all_done, now), [first(regular(0, "app"))]);
        // An init container created but not started (agent restart in between).
        let created = view(&[("migrate", "i1", ContainerCreated, 0, 0)]);
        assert_eq!(
            known.plan(&pod, &created, now),
            [Action::StartContainer {
                container: init(0, "migrate"),
                start: Start::Created { id: "i1".into() },
            }]
        );
    }

    #[test]
    fn a_failed_init_container_is_retried_unless_the_policy_is_never() {
        let now = Instant::now();
        let known = Known::new();
        let failed = view(&[("migrate", "i1", ContainerExited, 1, 0)]);
        for policy in ["Always", "OnFailure"] {
            let pod = pod(policy, &["migrate", "warm"], &["app"]);
            assert_eq!(
                known.plan(&pod, &failed, now),
                [restarted(init(0, "migrate"), "i1", 1)],
                "{policy}"
            );
        }
        // Never: the pod has failed; neither the next init container nor the app start.
        let pod = pod("Never", &["migrate", "warm"], &["app"]);
        assert_eq!(known.plan(&pod, &failed, now), []);
    }

    #[test]
    fn crash_loop_back_off_doubles_from_ten_seconds_to_five_minutes() {
        let pod = pod("Always", &[], &["app"]);
        let mut known = Known::new();
        let mut now = Instant::now();
        let mut runtime = view(&[("app", "c0", ContainerExited, 1, 0)]);
        let mut waits = Vec::new();
        for restarts in 0..9u32 {
            let exited_id = format!("c{restarts}");
            // The first look at the exit: restart now, or back off.
            let actions = known.plan(&pod, &runtime, now);
            assert_eq!(actions.len(), 1);
            known.count(&actions[0], now);
            let start = match &actions[0] {
                Action::StartContainer { .. } => {
                    waits.push(0);
                    now
                }
                Action::BackOff {
                    until,
                    delay,
                    exited_id: id,
                    ..
                } => {
                    assert_eq!(id, &exited_id);
                    assert_eq!(*until, now + *delay);
                    waits.push(delay.as_secs());
                    // Looking again during the wait: still backing off, nothing counted
                    // twice, the same deadline.
                    let later = now + Duration::from_secs(1);
                    let again = known.plan(&pod, &runtime, later);
                    assert!(
                        matches!(&again[..], [Action::BackOff { until: u, count_exit: false, .. }] if u == until),
                        "{again:?}"
                    );
                    // At the deadline: restart, without counting the exit again.
                    let restart = known.plan(&pod, &runtime, *until);
                    assert!(
                        matches!(
                            &restart[..],
                            [Action::StartContainer {
                                start: Start::Restart {
                                    count_exit: false,
                                    ..
                                },
                                ..
                            }]
                        ),
                        "{restart:?}"
                    );
                    *until
                }
                other => panic!("unexpected {other:?}"),
            };
            // Restarted; it crashes again a second later.
            now = start + Duration::from_secs(1);
            add(
                &mut runtime,
                "app",
                &format!("c{}", restarts + 1),
                ContainerExited,
                1,
                restarts + 1,
            );
        }
        assert_eq!(waits, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn crash_loop_back_off_starts_over_after_ten_minutes_of_running() {
        let pod = pod("Always", &[], &["app"]);
        let mut known = Known::new();
        let start = Instant::now();
        let mut runtime = view(&[("app", "c0", ContainerExited, 1, 0)]);
        // Exit 1 restarts at once, exit 2 waits 10 s.
        let actions = known.plan(&pod, &runtime, start);
        known.count(&actions[0], start);
        add(&mut runtime, "app", "c1", ContainerExited, 1, 1);
        let crash = start + Duration::from_secs(1);
        let actions = known.plan(&pod, &runtime, crash);
        assert!(matches!(&actions[..], [Action::BackOff { delay, .. }] if delay.as_secs() == 10));
        known.count(&actions[0], crash);
        // Restarted after the wait, it then runs for more than ten minutes.
        add(&mut runtime, "app", "c2", ContainerExited, 1, 2);
        let healthy = crash + Duration::from_secs(10) + Duration::from_secs(601);
        assert_eq!(
            known.plan(&pod, &runtime, healthy),
            [restarted(regular(0, "app"), "c2", 3)]
        );
    }

    #[test]
    fn failed_liveness_or_startup_probes_kill_the_container_with_the_pod_grace() {
        let mut pod = pod("Always", &[], &["app", "sidecar"]);
        pod.spec.as_mut().unwrap().termination_grace_period_seconds = Some(7);
        let mut known = Known::new();
        let runtime = view(&[
            ("app", "c1", ContainerRunning, 0, 0),
            ("sidecar", "c2", ContainerRunning, 0, 0),
        ]);
        let failure = ProbeFailure {
            kind: ProbeKind::Liveness,
            message: "HTTP probe failed with statuscode: 500".into(),
        };
        known.probe_failures.insert("c2".into(), failure.clone());
        // A verdict about an instance that is gone kills nothing.
        known.probe_failures.insert(
            "old".into(),
            ProbeFailure {
                kind: ProbeKind::Startup,
                message: String::new(),
            },
        );
        assert_eq!(
            known.plan(&pod, &runtime, Instant::now()),
            [Action::KillContainer {
                container: regular(1, "sidecar"),
                id: "c2".into(),
                reason: KillReason::ProbeFailed(failure),
                grace: 7,
            }]
        );
    }

    #[test]
    fn a_changed_image_restarts_the_container_whatever_the_policy() {
        let known = Known::new();
        let now = Instant::now();
        for policy in ["Always", "OnFailure", "Never"] {
            let mut pod = pod(policy, &[], &["app"]);
            let mut runtime = view(&[("app", "c1", ContainerRunning, 0, 2)]);
            // Created by an agent that recorded no hash: left alone.
            pod.spec.as_mut().unwrap().containers[0].image = Some("busybox:2".into());
            assert_eq!(known.plan(&pod, &runtime, now), [], "{policy}");

            let created_from = container_hash(&Container {
                image: Some("busybox".into()),
                ..Container::default()
            });
            runtime.containers.get_mut("app").unwrap()[0]
                .status
                .annotations
                .insert(labels::CONTAINER_HASH.into(), created_from);
            assert_eq!(
                known.plan(&pod, &runtime, now),
                [
                    Action::KillContainer {
                        container: regular(0, "app"),
                        id: "c1".into(),
                        reason: KillReason::SpecChanged,
                        grace: 30,
                    },
                    Action::StartContainer {
                        container: regular(0, "app"),
                        start: Start::Restart {
                            restart_count: 3,
                            exited_id: "c1".into(),
                            exited_attempt: 2,
                            count_exit: false,
                        },
                    },
                ],
                "{policy}"
            );
            // The same image as the spec: nothing to do.
            pod.spec.as_mut().unwrap().containers[0].image = Some("busybox".into());
            assert_eq!(known.plan(&pod, &runtime, now), [], "{policy}");
        }
    }

    #[test]
    fn deletion_terminates_the_pod_with_its_grace_period() {
        let mut pod = pod("Always", &[], &["app"]);
        let runtime = view(&[("app", "c1", ContainerRunning, 0, 0)]);
        let mut known = Known::new();
        let now = Instant::now();
        pod.metadata.deletion_timestamp =
            Some(serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap());
        assert_eq!(
            known.plan(&pod, &runtime, now),
            [Action::TerminatePod { grace: 30 }]
        );
        pod.spec.as_mut().unwrap().termination_grace_period_seconds = Some(45);
        assert_eq!(
            known.plan(&pod, &runtime, now),
            [Action::TerminatePod { grace: 45 }]
        );
        // `kubectl delete --grace-period=5` wins over the spec.
        pod.metadata.deletion_grace_period_seconds = Some(5);
        assert_eq!(
            known.plan(&pod, &runtime, now),
            [Action::TerminatePod { grace: 5 }]
        );
        // Force-deleted (gone from the API): a short grace all the same.
        pod.metadata.deletion_timestamp = None;
        pod.metadata.deletion_grace_period_seconds = None;
        known.gone = true;
        assert_eq!(
            known.plan(&pod, &runtime, now),
            [Action::TerminatePod { grace: 2 }]
        );
    }

    #[test]
    fn a_finished_pod_only_has_what_still_runs_stopped() {
        let mut pod = pod("Never", &[], &["app", "sidecar"]);
        pod.status.as_mut().unwrap().phase = Some("Succeeded".into());
        let known = Known::new();
        let now = Instant::now();
        let sidecar_running = view(&[
            ("app", "c1", ContainerExited, 0, 0),
            ("sidecar", "c2", ContainerRunning, 0, 0),
        ]);
        assert_eq!(
            known.plan(&pod, &sidecar_running, now),
            [Action::StopPod { grace: 0 }]
        );
        let mut all_stopped = view(&[
            ("app", "c1", ContainerExited, 0, 0),
            ("sidecar", "c2", ContainerExited, 0, 0),
        ]);
        // The sandbox still holds the pod's IP.
        assert_eq!(
            known.plan(&pod, &all_stopped, now),
            [Action::StopPod { grace: 0 }]
        );
        all_stopped.sandboxes[0].state = api::PodSandboxState::SandboxNotready as i32;
        assert_eq!(known.plan(&pod, &all_stopped, now), []);
    }

    #[test]
    fn a_dead_sandbox_is_replaced_and_every_container_started_again() {
        let pod = pod("Always", &[], &["app", "sidecar"]);
        let mut known = Known::new();
        let now = Instant::now();
        // The sandbox died; stopping it killed its containers.
        let mut runtime = view(&[
            ("app", "c1", ContainerExited, 137, 0),
            ("sidecar", "c2", ContainerExited, 137, 2),
        ]);
        runtime.sandboxes[0].state = api::PodSandboxState::SandboxNotready as i32;
        runtime.sandboxes.push(sandbox("sb-0", false, 0));
        assert_eq!(
            known.plan(&pod, &runtime, now),
            [
                Action::KillSandbox {
                    id: "sb-1".into(),
                    reason: SandboxChange::NotReady,
                },
                Action::KillSandbox {
                    id: "sb-0".into(),
                    reason: SandboxChange::Superseded,
                },
                Action::CreateSandbox { attempt: 2 },
            ]
        );
        // Once the new sandbox is ready, every container starts again in it.
        runtime.sandboxes.insert(0, sandbox("sb-2", true, 2));
        let actions = known.plan(&pod, &runtime, now);
        assert_eq!(
            actions,
            [
                restarted(regular(0, "app"), "c1", 1),
                restarted(regular(1, "sidecar"), "c2", 3),
            ]
        );
        for action in &actions {
            known.count(action, now);
        }

        // Under Never, containers that ran are not run again: no new sandbox either.
        let pod = self::pod("Never", &[], &["app"]);
        let mut dead = view(&[("app", "c1", ContainerExited, 137, 0)]);
        dead.sandboxes[0].state = api::PodSandboxState::SandboxNotready as i32;
        assert_eq!(known.plan(&pod, &dead, now), []);
        // ...but a Never pod whose sandbox died before anything ran gets a new one.
        dead.containers.clear();
        assert_eq!(
            known.plan(&pod, &dead, now),
            [
                Action::KillSandbox {
                    id: "sb-1".into(),
                    reason: SandboxChange::NotReady,
                },
                Action::CreateSandbox { attempt: 1 },
            ]
        );
    }
}
