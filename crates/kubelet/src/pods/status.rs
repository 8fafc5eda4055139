//! The Pod's status computed from what the runtime holds: phase, conditions, container
//! statuses (state, lastState, restartCount, ready, started, imageID) and IPs, following
//! upstream's kubelet (`getPhase`, `generateContainersReadyCondition`, ...). Pure: the
//! worker gathers the inputs and writes the result.

use std::collections::HashMap;

use chrono::{SecondsFormat, TimeZone, Utc};
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{json, Value};

use super::runtime_state::{ContainerRecord, PodRuntimeState};

/// Why a container has no running instance (or waits to restart).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

pub struct StatusInputs<'a> {
    pub pod: &'a Pod,
    pub runtime: &'a PodRuntimeState,
    pub pod_ips: &'a [String],
    pub host_ips: &'a [String],
    /// Readiness by container id (containers with a readiness probe).
    pub readiness: &'a HashMap<String, bool>,
    /// Startup probe success by container id (containers with a startup probe).
    pub started: &'a HashMap<String, bool>,
    pub waiting: &'a HashMap<String, Waiting>,
    /// Termination messages by container id.
    pub messages: &'a HashMap<String, String>,
    pub now: &'a str,
    /// The pod is being shut down by the kubelet (deleted or finished).
    pub terminating: bool,
}

pub fn timestamp(nanos: i64) -> Option<String> {
    if nanos <= 0 {
        return None;
    }
    Utc.timestamp_opt(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn terminated(record: &ContainerRecord, messages: &HashMap<String, String>) -> Value {
    let s = &record.status;
    let reason = match s.reason.as_str() {
        "" if s.exit_code == 0 => "Completed",
        "" => "Error",
        other => other,
    };
    let mut t = json!({
        "exitCode": s.exit_code,
        "reason": reason,
        "containerID": format!("containerd://{}", record.id),
    });
    if let Some(at) = timestamp(s.started_at) {
        t["startedAt"] = json!(at);
    }
    if let Some(at) = timestamp(s.finished_at) {
        t["finishedAt"] = json!(at);
    }
    let message = messages
        .get(&record.id)
        .cloned()
        .unwrap_or_else(|| s.message.clone());
    if !message.is_empty() {
        t["message"] = json!(message);
    }
    json!({"terminated": t})
}

/// (status JSON, is it ready, has it terminated successfully/failed/not at all)
fn container_status(c: &Container, init: bool, i: &StatusInputs<'_>) -> (Value, bool, Outcome) {
    let latest = i.runtime.latest(&c.name);
    let waiting = i.waiting.get(&c.name);
    let mut status = json!({
        "name": c.name,
        "image": c.image.clone().unwrap_or_default(),
        "imageID": "",
        "ready": false,
        "restartCount": latest.map(|r| r.restart_count()).unwrap_or(0),
        "started": false,
        "lastState": {},
        "state": {},
    });
    let Some(record) = latest else {
        let w = waiting.cloned().unwrap_or(Waiting {
            reason: if init {
                "PodInitializing"
            } else {
                "ContainerCreating"
            }
            .into(),
            message: String::new(),
        });
        status["state"] = waiting_state(&w);
        return (status, false, Outcome::NotRun);
    };
    status["imageID"] = json!(record.status.image_ref);
    status["containerID"] = json!(format!("containerd://{}", record.id));
    let mut outcome = Outcome::Running;
    let mut ready = false;
    if record.running() {
        let mut running = json!({});
        if let Some(at) = timestamp(record.status.started_at) {
            running["startedAt"] = json!(at);
        }
        status["state"] = json!({"running": running});
        let started = i.started.get(&record.id).copied().unwrap_or(true);
        status["started"] = json!(started);
        ready = !i.terminating
            && started
            && i.readiness
                .get(&record.id)
                .copied()
                .unwrap_or(!has_readiness_probe(c));
        if init {
            // A running init container is never "ready".
            ready = false;
        }
        if let Some(prev) = i.runtime.previous(&c.name) {
            status["lastState"] = terminated(prev, i.messages);
        }
    } else if record.exited() {
        let succeeded = record.status.exit_code == 0;
        match waiting {
            // Exited and waiting to be restarted (back-off): the exit is the last state.
            Some(w) if !i.terminating => {
                status["state"] = waiting_state(w);
                status["lastState"] = terminated(record, i.messages);
                outcome = Outcome::Restarting;
            }
            _ => {
                status["state"] = terminated(record, i.messages);
                if let Some(prev) = i.runtime.previous(&c.name) {
                    status["lastState"] = terminated(prev, i.messages);
                }
                outcome = if succeeded {
                    Outcome::Succeeded
                } else {
                    Outcome::Failed
                };
            }
        }
    } else {
        status["state"] = waiting_state(waiting.unwrap_or(&Waiting {
            reason: "ContainerCreating".into(),
            message: String::new(),
        }));
        outcome = Outcome::NotRun;
    }
    status["ready"] = json!(ready);
    (status, ready, outcome)
}

fn waiting_state(w: &Waiting) -> Value {
    let mut v = json!({"reason": w.reason});
    if !w.message.is_empty() {
        v["message"] = json!(w.message);
    }
    json!({"waiting": v})
}

fn has_readiness_probe(c: &Container) -> bool {
    c.readiness_probe.is_some()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    NotRun,
    Running,
    /// Exited, waiting to be restarted.
    Restarting,
    Succeeded,
    Failed,
}

fn condition(kind: &str, ok: bool, reason: &str, message: &str, old: &[Value], now: &str) -> Value {
    let status = if ok { "True" } else { "False" };
    let transition = old
        .iter()
        .find(|c| c["type"] == kind && c["status"] == status)
        .map(|c| c["lastTransitionTime"].clone())
        .unwrap_or_else(|| json!(now));
    let mut c = json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": transition});
    if !ok && !reason.is_empty() {
        c["reason"] = json!(reason);
        if !message.is_empty() {
            c["message"] = json!(message);
        }
    }
    c
}

/// The whole `status` of the pod.
pub fn pod_status(i: &StatusInputs<'_>) -> Value {
    let pod = i.pod;
    let spec = pod.spec.clone().unwrap_or_default();
    let old = serde_json::to_value(pod.status.clone().unwrap_or_default()).unwrap_or_default();
    let old_conditions: Vec<Value> = old["conditions"].as_array().cloned().unwrap_or_default();
    let restart_policy = spec
        .restart_policy
        .clone()
        .unwrap_or_else(|| "Always".into());

    let mut init_statuses = Vec::new();
    let mut incomplete_init = Vec::new();
    let mut init_failed = false;
    for c in spec.init_containers.iter().flatten() {
        let (status, _, outcome) = container_status(c, true, i);
        if outcome != Outcome::Succeeded {
            incomplete_init.push(c.name.clone());
        }
        if outcome == Outcome::Failed && restart_policy == "Never" {
            init_failed = true;
        }
        init_statuses.push(status);
    }
    let initialized = incomplete_init.is_empty();

    let mut statuses = Vec::new();
    let mut unready = Vec::new();
    let (mut running, mut waiting, mut succeeded, mut failed) = (0, 0, 0, 0);
    for c in &spec.containers {
        let (status, ready, outcome) = container_status(c, false, i);
        if !ready {
            unready.push(c.name.clone());
        }
        match outcome {
            Outcome::Running => running += 1,
            Outcome::NotRun => waiting += 1,
            // Waiting to restart after an exit: the pod is still running.
            Outcome::Restarting => running += 1,
            Outcome::Succeeded => succeeded += 1,
            Outcome::Failed => failed += 1,
        }
        statuses.push(status);
    }
    let stopped = succeeded + failed;
    let old_phase = old["phase"].as_str().unwrap_or("Pending").to_string();
    let phase = if old_phase == "Succeeded" || old_phase == "Failed" {
        old_phase
    } else if init_failed {
        "Failed".into()
    } else if !initialized || waiting > 0 {
        "Pending".into()
    } else if running > 0 {
        "Running".into()
    } else if stopped > 0 {
        match restart_policy.as_str() {
            "Always" => "Running".into(),
            "OnFailure" if failed > 0 => "Running".into(),
            "OnFailure" => "Succeeded".into(),
            _ if failed > 0 => "Failed".into(),
            _ => "Succeeded".into(),
        }
    } else {
        "Pending".into()
    };
    let terminal = phase == "Succeeded" || phase == "Failed";

    let sandbox_ready = i.runtime.ready_sandbox().is_some();
    let mut conditions = vec![condition(
        "PodReadyToStartContainers",
        sandbox_ready,
        "",
        "",
        &old_conditions,
        i.now,
    )];
    let init_message = format!(
        "containers with incomplete status: [{}]",
        incomplete_init.join(" ")
    );
    conditions.push(condition(
        "Initialized",
        initialized || terminal,
        "ContainersNotInitialized",
        &init_message,
        &old_conditions,
        i.now,
    ));
    let all_ready = unready.is_empty() && initialized && !terminal;
    let (reason, message) = if terminal {
        ("PodCompleted".to_string(), String::new())
    } else if !initialized {
        ("ContainersNotInitialized".to_string(), init_message.clone())
    } else {
        (
            "ContainersNotReady".to_string(),
            format!("containers with unready status: [{}]", unready.join(" ")),
        )
    };
    conditions.push(condition(
        "Ready",
        all_ready,
        &reason,
        &message,
        &old_conditions,
        i.now,
    ));
    conditions.push(condition(
        "ContainersReady",
        all_ready,
        &reason,
        &message,
        &old_conditions,
        i.now,
    ));
    if let Some(scheduled) = old_conditions.iter().find(|c| c["type"] == "PodScheduled") {
        conditions.push(scheduled.clone());
    }

    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": i.host_ips.first(),
        "hostIPs": i.host_ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>(),
        "containerStatuses": statuses,
        "startTime": old.get("startTime").filter(|v| !v.is_null()).cloned().unwrap_or_else(|| json!(i.now)),
    });
    if !init_statuses.is_empty() {
        status["initContainerStatuses"] = json!(init_statuses);
    }
    if let Some(ip) = i.pod_ips.first() {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!(i
            .pod_ips
            .iter()
            .map(|ip| json!({"ip": ip}))
            .collect::<Vec<_>>());
    }
    if let Some(qos) = old.get("qosClass").filter(|v| !v.is_null()) {
        status["qosClass"] = qos.clone();
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::api;

    fn pod(policy: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": {"restartPolicy": policy, "containers": [{"name": "a", "image": "busybox:1.35"}]},
            "status": {"phase": "Pending", "qosClass": "BestEffort",
                "conditions": [{"type": "PodScheduled", "status": "True"}]}
        }))
        .unwrap()
    }

    fn record(state: api::ContainerState, exit: i32, attempt: u32) -> ContainerRecord {
        ContainerRecord {
            id: format!("id{attempt}"),
            name: "a".into(),
            attempt,
            status: api::ContainerStatus {
                state: state as i32,
                exit_code: exit,
                image_ref: "sha256:abc".into(),
                started_at: 1_700_000_000_000_000_000,
                finished_at: if state == api::ContainerState::ContainerExited {
                    1_700_000_010_000_000_000
                } else {
                    0
                },
                ..Default::default()
            },
        }
    }

    fn sandbox() -> api::PodSandbox {
        api::PodSandbox {
            id: "s".into(),
            state: api::PodSandboxState::SandboxReady as i32,
            ..Default::default()
        }
    }

    fn compute(pod: &Pod, runtime: &PodRuntimeState, waiting: &HashMap<String, Waiting>) -> Value {
        let empty = HashMap::new();
        let messages = HashMap::new();
        pod_status(&StatusInputs {
            pod,
            runtime,
            pod_ips: &["10.42.0.5".to_string()],
            host_ips: &["192.0.2.1".to_string()],
            readiness: &empty,
            started: &empty,
            waiting,
            messages: &messages,
            now: "2026-01-01T00:00:00Z",
            terminating: false,
        })
    }

    #[test]
    fn running_container_makes_a_ready_running_pod() {
        let mut runtime = PodRuntimeState {
            sandboxes: vec![sandbox()],
            ..Default::default()
        };
        runtime.containers.insert(
            "a".into(),
            vec![record(api::ContainerState::ContainerRunning, 0, 0)],
        );
        let s = compute(&pod("Always"), &runtime, &HashMap::new());
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.42.0.5");
        assert_eq!(s["containerStatuses"][0]["ready"], true);
        assert_eq!(s["containerStatuses"][0]["containerID"], "containerd://id0");
        let ready = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "True");
        assert!(s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "PodScheduled"));
    }

    #[test]
    fn crash_loop_shows_waiting_with_last_state() {
        let mut runtime = PodRuntimeState {
            sandboxes: vec![sandbox()],
            ..Default::default()
        };
        runtime.containers.insert(
            "a".into(),
            vec![record(api::ContainerState::ContainerExited, 1, 2)],
        );
        let waiting = HashMap::from([(
            "a".to_string(),
            Waiting {
                reason: "CrashLoopBackOff".into(),
                message: "back-off".into(),
            },
        )]);
        let s = compute(&pod("Always"), &runtime, &waiting);
        assert_eq!(s["phase"], "Running");
        let c = &s["containerStatuses"][0];
        assert_eq!(c["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(c["lastState"]["terminated"]["exitCode"], 1);
        assert_eq!(c["lastState"]["terminated"]["reason"], "Error");
        assert_eq!(c["restartCount"], 2);
    }

    #[test]
    fn never_policy_phases() {
        let mut runtime = PodRuntimeState {
            sandboxes: vec![sandbox()],
            ..Default::default()
        };
        runtime.containers.insert(
            "a".into(),
            vec![record(api::ContainerState::ContainerExited, 0, 0)],
        );
        assert_eq!(
            compute(&pod("Never"), &runtime, &HashMap::new())["phase"],
            "Succeeded"
        );
        runtime.containers.insert(
            "a".into(),
            vec![record(api::ContainerState::ContainerExited, 3, 0)],
        );
        let s = compute(&pod("Never"), &runtime, &HashMap::new());
        assert_eq!(s["phase"], "Failed");
        assert_eq!(
            s["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            3
        );
    }

    #[test]
    fn nothing_created_yet_is_pending() {
        let runtime = PodRuntimeState::default();
        let s = compute(&pod("Always"), &runtime, &HashMap::new());
        assert_eq!(s["phase"], "Pending");
        assert_eq!(
            s["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ContainerCreating"
        );
    }
}
