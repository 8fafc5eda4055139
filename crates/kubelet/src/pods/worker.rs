//! One task per pod: brings the runtime in line with the pod's spec (sandbox, init
//! containers in order, containers with restarts and back-off, probes), shuts it down
//! gracefully when it is deleted, and writes its status whenever what it sees changes.
//!
//! Each sync observes, plans, applies: it reloads what the runtime holds for the pod (so a
//! restarted agent adopts running containers without special cases), asks the pure
//! planner (`plan.rs`) what to do, and carries the actions out through the
//! `RuntimeService` seam. Deciding happens in the planner; this file does the IO and keeps
//! what applying teaches it (waiting reasons, back-off steps, probe verdicts, IPs) for
//! the next plan and the status.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{SecondsFormat, Utc};
use k3rs_core::ClusterConfig;
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::backoff::{Backoff, ContainerKey};
use super::events::{container_field, Recorder};
use super::plan::{self, phase, Action, ContainerRef, KillReason, PlanInputs, ProbeFailure, Start};
use super::probe::{self, ProbeKind, ProbeUpdate};
use super::runtime_state::{ContainerRecord, PodRuntimeState};
use super::spec;
use super::status::{self, StatusInputs, Waiting};
use super::{dns, env};
use crate::cri::api;
use crate::runtime::RuntimeService;
use crate::volumes::{self, PodVolumes, VolumeContext};
use crate::{Error, Paths, Result};

/// Volumes are refreshed this often (configMap/secret changes, token rotation).
const VOLUME_REFRESH: Duration = Duration::from_secs(60);
/// A pod is re-synced at least this often even without events.
const RESYNC: Duration = Duration::from_secs(10);

/// What every worker shares.
pub struct Shared {
    /// The kubelet's API identity: pod status, deletion, env sources.
    pub client: kube::Client,
    pub node_name: String,
    pub cluster: ClusterConfig,
    pub runtime: Arc<dyn RuntimeService>,
    pub paths: Paths,
    pub events: Recorder,
    pub volumes: VolumeContext,
    pub host_resolv_conf: String,
    pub host_ips: Vec<String>,
}

pub enum Message {
    Update(Box<Pod>),
    /// The pod is gone from the API (force-deleted, or deleted while we were away).
    Deleted,
    /// The runtime's view of the pod changed (from the relist).
    Relist,
}

enum Flow {
    Continue,
    Finished,
}

pub struct Worker {
    shared: Arc<Shared>,
    pod: Pod,
    uid: String,
    gone: bool,
    volumes: Option<(PodVolumes, Instant)>,
    sandbox_ips: HashMap<String, Vec<String>>,
    probes: HashMap<String, JoinHandle<()>>,
    readiness: HashMap<String, bool>,
    started: HashMap<String, bool>,
    /// Running containers (by id) a liveness or startup probe condemned.
    probe_failures: HashMap<String, ProbeFailure>,
    waiting: HashMap<String, Waiting>,
    messages: HashMap<String, String>,
    backoff: Backoff,
    /// The exited container instance each back-off step was taken for, by container name.
    counted_exits: HashMap<String, String>,
    last_status: Option<Value>,
    wake_at: Option<Instant>,
    probe_tx: mpsc::Sender<ProbeUpdate>,
    probe_rx: mpsc::Receiver<ProbeUpdate>,
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

impl Worker {
    pub fn new(shared: Arc<Shared>, pod: Pod) -> Worker {
        let (probe_tx, probe_rx) = mpsc::channel(64);
        Worker {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            shared,
            pod,
            gone: false,
            volumes: None,
            sandbox_ips: HashMap::new(),
            probes: HashMap::new(),
            readiness: HashMap::new(),
            started: HashMap::new(),
            probe_failures: HashMap::new(),
            waiting: HashMap::new(),
            messages: HashMap::new(),
            backoff: Backoff::new(),
            counted_exits: HashMap::new(),
            last_status: None,
            wake_at: None,
            probe_tx,
            probe_rx,
        }
    }

    pub async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Message>) {
        let key = pod_key(&self.pod);
        loop {
            match self.sync().await {
                Ok(Flow::Finished) => break,
                Ok(Flow::Continue) => {}
                Err(err) => {
                    warn!(pod = %key, error = %err, "pod sync failed, retrying");
                    self.wake_in(Duration::from_secs(2));
                }
            }
            let wake = self
                .wake_at
                .take()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + RESYNC);
            tokio::select! {
                message = inbox.recv() => match message {
                    None => break,
                    Some(m) => self.receive(m),
                },
                Some(update) = self.probe_rx.recv() => self.on_probe(update).await,
                _ = tokio::time::sleep_until(wake) => {}
            }
            // Coalesce a burst of messages into one sync.
            while let Ok(m) = inbox.try_recv() {
                self.receive(m);
            }
        }
        for (_, task) in self.probes.drain() {
            task.abort();
        }
        debug!(pod = %key, "pod worker finished");
    }

    fn receive(&mut self, message: Message) {
        match message {
            Message::Update(pod) => self.pod = *pod,
            Message::Deleted => self.gone = true,
            Message::Relist => {}
        }
    }

    fn wake_in(&mut self, after: Duration) {
        let at = Instant::now() + after;
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    async fn on_probe(&mut self, update: ProbeUpdate) {
        let field = container_field(false, &update.container_name);
        let failed_check = match update.kind {
            // The initial "not ready yet" is no failure; a ready container turning
            // unready is (even when the probe printed nothing).
            ProbeKind::Readiness => {
                let before = self
                    .readiness
                    .insert(update.container_id.clone(), update.success);
                !update.success && before == Some(true)
            }
            ProbeKind::Startup => {
                self.started
                    .insert(update.container_id.clone(), update.success);
                !update.success
            }
            ProbeKind::Liveness => !update.success,
        };
        // A failed liveness or startup probe gets the container killed and restarted by
        // the next sync, as upstream.
        if !update.success && update.kind != ProbeKind::Readiness {
            self.probe_failures.insert(
                update.container_id.clone(),
                ProbeFailure {
                    kind: update.kind,
                    message: update.message.clone(),
                },
            );
        }
        if failed_check {
            self.shared.events.warning(
                &self.pod,
                Some(&field),
                "Unhealthy",
                format!("{} probe failed: {}", update.kind, update.message),
            );
        }
    }

    /// The planner's verdict on what the runtime holds now.
    fn plan(&self, state: &PodRuntimeState, now: Instant) -> Vec<Action> {
        plan::plan(&PlanInputs {
            pod: &self.pod,
            gone: self.gone,
            runtime: state,
            probe_failures: &self.probe_failures,
            backoff: &self.backoff,
            counted_exits: &self.counted_exits,
            now,
        })
    }

    /// What the runtime holds for the pod. The termination message of an exit is read the
    /// first time the exit is seen, before a restart can overwrite it.
    async fn observe(&mut self) -> Result<PodRuntimeState> {
        let state = PodRuntimeState::load(self.shared.runtime.as_ref(), &self.uid).await?;
        for records in state.containers.values() {
            if let Some(exited) = records.first().filter(|r| r.exited()) {
                self.remember_message(exited);
            }
        }
        Ok(state)
    }

    /// Observe, plan, apply. Pod-wide actions (terminate, stop) and a sandbox change come
    /// first and alone; after a new sandbox the pod is observed and planned again, since
    /// what its containers need depends on it. Then volumes, container actions, probes and
    /// the status.
    async fn sync(&mut self) -> Result<Flow> {
        let mut state = self.observe().await?;
        let mut now = Instant::now();
        let mut actions = self.plan(&state, now);
        if let Some(flow) = self.apply_pod_actions(&state, &actions).await? {
            return Ok(flow);
        }
        if actions
            .iter()
            .any(|a| matches!(a, Action::CreateSandbox { .. }))
        {
            state = self.observe().await?;
            now = Instant::now();
            actions = self.plan(&state, now);
        }
        let Some(sandbox_id) = state.ready_sandbox().map(|s| s.id.clone()) else {
            // Nothing may run again (a `Never` pod whose sandbox died after its containers
            // ran): only the status is kept current.
            self.write_status(&state).await?;
            return Ok(Flow::Continue);
        };

        if !self.ensure_volumes().await {
            self.write_status(&state).await?;
            return Ok(Flow::Continue);
        }

        let mut changed = false;
        for action in actions {
            changed |= self.apply_to_container(&sandbox_id, action, now).await?;
        }
        if changed {
            state = self.observe().await?;
        }
        self.sync_probes(&state);
        self.write_status(&state).await?;
        // The status just written may have finished the pod: what still runs stops now.
        let stop = match self.plan(&state, Instant::now()).first() {
            Some(Action::StopPod { grace }) => Some(*grace),
            _ => None,
        };
        if let Some(grace) = stop {
            self.stop_pod(&state, grace).await;
        }
        Ok(Flow::Continue)
    }

    /// Apply the pod-wide and sandbox actions of a plan. `Some` when the sync ends here:
    /// the pod was terminated or stopped, or its new sandbox could not be created.
    async fn apply_pod_actions(
        &mut self,
        state: &PodRuntimeState,
        actions: &[Action],
    ) -> Result<Option<Flow>> {
        for action in actions {
            match action {
                Action::TerminatePod { grace } => {
                    self.terminate(state, *grace).await?;
                    return Ok(Some(Flow::Finished));
                }
                Action::StopPod { grace } => {
                    self.stop_pod(state, *grace).await;
                    return Ok(Some(Flow::Continue));
                }
                Action::KillSandbox { id, reason } => {
                    debug!(pod = %pod_key(&self.pod), sandbox = %id, ?reason, "stopping sandbox");
                    // Best effort: the new sandbox is what matters.
                    let _ = self.shared.runtime.stop_pod_sandbox(id).await;
                }
                Action::CreateSandbox { attempt } => {
                    if let Err(err) = self.create_sandbox(*attempt).await {
                        self.shared.events.warning(
                            &self.pod,
                            None,
                            "FailedCreatePodSandBox",
                            format!("Failed to create pod sandbox: {err}"),
                        );
                        self.write_status(state).await?;
                        self.wake_in(Duration::from_secs(5));
                        return Ok(Some(Flow::Continue));
                    }
                }
                Action::StartContainer { .. }
                | Action::KillContainer { .. }
                | Action::BackOff { .. } => {}
            }
        }
        Ok(None)
    }

    /// Apply one container action in the ready sandbox; whether the runtime changed.
    async fn apply_to_container(
        &mut self,
        sandbox_id: &str,
        action: Action,
        now: Instant,
    ) -> Result<bool> {
        match action {
            Action::StartContainer { container, start } => {
                let Some(c) = container.spec(&self.pod).cloned() else {
                    return Ok(false);
                };
                let init = container.is_init();
                match start {
                    Start::First => self.start_container(sandbox_id, &c, 0, init).await?,
                    Start::Created { id } => self.start_created(&id, &c, init).await,
                    Start::Restart {
                        restart_count,
                        exited_id,
                        exited_attempt,
                        count_exit,
                    } => {
                        if count_exit {
                            self.count_exit(&c.name, &exited_id, now);
                        }
                        self.start_container(sandbox_id, &c, restart_count, init)
                            .await?;
                        // Keep the exited instance for `--previous` logs and lastState;
                        // drop older ones.
                        self.remove_older_than(&c.name, exited_attempt).await;
                    }
                }
                Ok(true)
            }
            Action::KillContainer {
                container,
                id,
                reason,
                grace,
            } => {
                self.kill_container(&container, &id, reason, grace).await;
                Ok(true)
            }
            Action::BackOff {
                container,
                exited_id,
                until,
                delay,
                count_exit,
            } => {
                if count_exit {
                    self.count_exit(&container.name, &exited_id, now);
                }
                self.back_off(&container, until, delay);
                Ok(false)
            }
            // Applied by `apply_pod_actions`; a plan with them has no container actions.
            Action::TerminatePod { .. }
            | Action::StopPod { .. }
            | Action::KillSandbox { .. }
            | Action::CreateSandbox { .. } => Ok(false),
        }
    }

    /// The back-off takes its next step for this exit (once per exit).
    fn count_exit(&mut self, name: &str, exited_id: &str, now: Instant) {
        let key = ContainerKey::new(self.uid.clone(), name);
        self.backoff.next_delay(&key, now);
        self.counted_exits
            .insert(name.to_string(), exited_id.to_string());
    }

    /// Wait out a back-off: CrashLoopBackOff as the container's waiting state (a `BackOff`
    /// event when it starts), and a wake-up when the wait is over.
    fn back_off(&mut self, container: &ContainerRef, until: Instant, delay: Duration) {
        let message = format!(
            "back-off {}s restarting failed container={} pod={}_{}({})",
            delay.as_secs(),
            container.name,
            self.pod.metadata.name.as_deref().unwrap_or_default(),
            self.pod.metadata.namespace.as_deref().unwrap_or_default(),
            self.uid
        );
        let first = !self.waiting.contains_key(&container.name);
        self.waiting.insert(
            container.name.clone(),
            Waiting {
                reason: "CrashLoopBackOff".into(),
                message,
            },
        );
        if first {
            self.shared.events.warning(
                &self.pod,
                Some(&container_field(container.is_init(), &container.name)),
                "BackOff",
                "Back-off restarting failed container".into(),
            );
        }
        let remaining = until.saturating_duration_since(Instant::now());
        self.wake_in(remaining + Duration::from_millis(50));
    }

    /// Kill a running container that is to be restarted, as upstream announces it.
    async fn kill_container(
        &mut self,
        container: &ContainerRef,
        id: &str,
        reason: KillReason,
        grace: i64,
    ) {
        match reason {
            KillReason::ProbeFailed(failure) => {
                self.probe_failures.remove(id);
                self.shared.events.normal(
                    &self.pod,
                    Some(&container_field(container.is_init(), &container.name)),
                    "Killing",
                    format!(
                        "Container {} failed {} probe, will be restarted",
                        container.name,
                        failure.kind.as_str().to_lowercase()
                    ),
                );
                debug!(pod = %pod_key(&self.pod), container = %container.name, message = %failure.message, "probe failure");
            }
            KillReason::SpecChanged => {
                self.shared.events.normal(
                    &self.pod,
                    Some(&container_field(container.is_init(), &container.name)),
                    "Killing",
                    format!(
                        "Container {} definition changed, will be restarted",
                        container.name
                    ),
                );
            }
        }
        self.stop_container(id, grace).await;
    }

    /// Prepare or refresh volumes; on failure report it and retry shortly.
    async fn ensure_volumes(&mut self) -> bool {
        if let Some((_, at)) = &self.volumes {
            if at.elapsed() < VOLUME_REFRESH {
                return true;
            }
        }
        match volumes::prepare(&self.shared.volumes, &self.pod).await {
            Ok(v) => {
                self.volumes = Some((v, Instant::now()));
                self.wake_in(VOLUME_REFRESH);
                true
            }
            Err(err) => {
                self.shared
                    .events
                    .warning(&self.pod, None, "FailedMount", err.to_string());
                let waiting = Waiting {
                    reason: "ContainerCreating".into(),
                    message: String::new(),
                };
                for c in self.all_containers() {
                    self.waiting.insert(c.name.clone(), waiting.clone());
                }
                self.wake_in(Duration::from_secs(2));
                // Already-prepared volumes stay usable; only a first failure blocks.
                self.volumes.is_some()
            }
        }
    }

    fn all_containers(&self) -> Vec<Container> {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let mut all = spec.init_containers.unwrap_or_default();
        all.extend(spec.containers);
        all
    }

    fn sandbox_inputs(&self, attempt: u32) -> api::PodSandboxConfig {
        let pod = &self.pod;
        let meta = &pod.metadata;
        spec::sandbox_config(spec::SandboxInputs {
            attempt,
            hostname: dns::pod_hostname(pod),
            log_directory: self
                .shared
                .paths
                .pod_log_dir(
                    meta.namespace.as_deref().unwrap_or_default(),
                    meta.name.as_deref().unwrap_or_default(),
                    &self.uid,
                )
                .display()
                .to_string(),
            dns: dns::dns_config(pod, &self.shared.cluster, &self.shared.host_resolv_conf),
            cgroup_parent: spec::pod_cgroup_parent(&self.shared.paths.cgroup_parent, pod),
            pod,
        })
    }

    /// Run the pod's `attempt`-th sandbox and write its /etc/hosts.
    async fn create_sandbox(&mut self, attempt: u32) -> Result<String> {
        let config = self.sandbox_inputs(attempt);
        let started = Instant::now();
        let id = self
            .shared
            .runtime
            .run_pod_sandbox(config)
            .await
            .map_err(|s| Error::cri("RunPodSandbox", s))?;
        debug!(pod = %pod_key(&self.pod), elapsed_ms = started.elapsed().as_millis() as u64, "sandbox started");
        let ips = self.sandbox_ips(&id).await?;
        if !spec::host_network(&self.pod) {
            let hosts = dns::etc_hosts(&self.pod, &ips, &self.shared.cluster.cluster_domain);
            let path = self.etc_hosts_path();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
            }
            std::fs::write(&path, hosts)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        }
        // A new sandbox means every container starts again from scratch.
        for (_, task) in self.probes.drain() {
            task.abort();
        }
        Ok(id)
    }

    fn etc_hosts_path(&self) -> std::path::PathBuf {
        self.shared.paths.pod_dir(&self.uid).join("etc-hosts")
    }

    async fn sandbox_ips(&mut self, sandbox_id: &str) -> Result<Vec<String>> {
        if let Some(ips) = self.sandbox_ips.get(sandbox_id) {
            return Ok(ips.clone());
        }
        if spec::host_network(&self.pod) {
            return Ok(self.shared.host_ips.clone());
        }
        let status = self
            .shared
            .runtime
            .pod_sandbox_status(sandbox_id)
            .await
            .map_err(|s| Error::cri("PodSandboxStatus", s))?;
        let mut ips = Vec::new();
        if let Some(network) = status.and_then(|s| s.network) {
            if !network.ip.is_empty() {
                ips.push(network.ip);
            }
            ips.extend(network.additional_ips.into_iter().map(|i| i.ip));
        }
        self.sandbox_ips.insert(sandbox_id.to_string(), ips.clone());
        Ok(ips)
    }

    fn remember_message(&mut self, record: &ContainerRecord) {
        if self.messages.contains_key(&record.id) {
            return;
        }
        let path =
            volumes::termination_log_path(&self.shared.paths.pod_dir(&self.uid), &record.name);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        // Upstream caps termination messages at 4 KiB.
        let text: String = text.chars().take(4096).collect();
        self.messages.insert(record.id.clone(), text);
    }

    async fn remove_older_than(&mut self, name: &str, keep_attempt: u32) {
        let runtime = self.shared.runtime.clone();
        let Ok(state) = PodRuntimeState::load(runtime.as_ref(), &self.uid).await else {
            return;
        };
        for r in state.containers.get(name).into_iter().flatten() {
            if r.attempt < keep_attempt && !r.running() {
                let _ = runtime.remove_container(&r.id).await;
                self.messages.remove(&r.id);
            }
        }
    }

    /// Make sure the image is there: with `Always` (or when missing) ask the runtime to
    /// pull it; no registry may be reachable, so air-gap images should use IfNotPresent.
    async fn ensure_image(&mut self, c: &Container, init: bool) -> Option<String> {
        let image = c.image.clone().unwrap_or_default();
        let field = container_field(init, &c.name);
        let policy = c
            .image_pull_policy
            .clone()
            .unwrap_or_else(|| "IfNotPresent".into());
        let present = self
            .shared
            .runtime
            .image_status(&image)
            .await
            .ok()
            .flatten();
        if let Some(found) = &present {
            if policy != "Always" {
                self.shared.events.normal(
                    &self.pod,
                    Some(&field),
                    "Pulled",
                    format!("Container image \"{image}\" already present on machine"),
                );
                return Some(found.id.clone());
            }
        }
        if policy == "Never" {
            self.waiting.insert(
                c.name.clone(),
                Waiting {
                    reason: "ErrImageNeverPull".into(),
                    message: format!(
                        "Container image \"{image}\" is not present with pull policy of Never"
                    ),
                },
            );
            return None;
        }
        self.shared.events.normal(
            &self.pod,
            Some(&field),
            "Pulling",
            format!("Pulling image \"{image}\""),
        );
        match self.shared.runtime.pull_image(&image).await {
            Ok(image_ref) => Some(image_ref),
            Err(status) => {
                let message = format!("Failed to pull image \"{image}\": {}", status.message());
                self.shared
                    .events
                    .warning(&self.pod, Some(&field), "Failed", message.clone());
                let reason = if self
                    .waiting
                    .get(&c.name)
                    .is_some_and(|w| w.reason.contains("Image"))
                {
                    "ImagePullBackOff"
                } else {
                    "ErrImagePull"
                };
                self.waiting.insert(
                    c.name.clone(),
                    Waiting {
                        reason: reason.into(),
                        message,
                    },
                );
                self.wake_in(Duration::from_secs(10));
                None
            }
        }
    }

    async fn start_container(
        &mut self,
        sandbox_id: &str,
        c: &Container,
        attempt: u32,
        init: bool,
    ) -> Result<()> {
        let field = container_field(init, &c.name);
        let Some(image_ref) = self.ensure_image(c, init).await else {
            return Ok(());
        };
        let pod_ips = self.sandbox_ips(sandbox_id).await?;
        let host_ip = self.shared.host_ips.first().cloned().unwrap_or_default();
        let envs = match env::container_env(
            &self.shared.client,
            &self.pod,
            c,
            &self.shared.node_name,
            &pod_ips,
            &host_ip,
        )
        .await
        {
            Ok(e) => e,
            Err(err) => {
                self.container_failed(c, &field, "CreateContainerConfigError", err.to_string());
                return Ok(());
            }
        };
        let pod_dir = self.shared.paths.pod_dir(&self.uid);
        let etc_hosts = (!spec::host_network(&self.pod)).then(|| self.etc_hosts_path());
        let pod_volumes = self
            .volumes
            .as_ref()
            .map(|(v, _)| v.clone())
            .unwrap_or_default();
        let mounts = match volumes::container_mounts(
            &self.pod,
            c,
            &pod_volumes,
            &pod_dir,
            etc_hosts.as_deref(),
        ) {
            Ok(m) => m,
            Err(err) => {
                self.container_failed(c, &field, "CreateContainerConfigError", err.to_string());
                return Ok(());
            }
        };
        let config = spec::container_config(spec::ContainerInputs {
            pod: &self.pod,
            container: c,
            image_ref,
            attempt,
            envs,
            mounts,
        });
        let sandbox_config = self.sandbox_inputs(0);
        let created = self
            .shared
            .runtime
            .create_container(sandbox_id, config, sandbox_config)
            .await;
        let id = match created {
            Ok(id) => id,
            Err(status) => {
                let message = status.message().to_string();
                self.container_failed(c, &field, "CreateContainerError", message);
                return Ok(());
            }
        };
        self.shared.events.normal(
            &self.pod,
            Some(&field),
            "Created",
            format!("Created container: {}", c.name),
        );
        self.start_created(&id, c, init).await;
        Ok(())
    }

    /// A container could not be created: a `Failed` event, the reason as its waiting
    /// state, and another try in a few seconds.
    fn container_failed(&mut self, c: &Container, field: &str, reason: &str, message: String) {
        self.shared.events.warning(
            &self.pod,
            Some(field),
            "Failed",
            format!("Error: {message}"),
        );
        self.waiting.insert(
            c.name.clone(),
            Waiting {
                reason: reason.into(),
                message,
            },
        );
        self.wake_in(Duration::from_secs(5));
    }

    async fn start_created(&mut self, id: &str, c: &Container, init: bool) {
        let field = container_field(init, &c.name);
        match self.shared.runtime.start_container(id).await {
            Ok(_) => {
                self.waiting.remove(&c.name);
                self.shared.events.normal(
                    &self.pod,
                    Some(&field),
                    "Started",
                    format!("Started container {}", c.name),
                );
                self.run_post_start(id, c).await;
            }
            Err(status) => {
                self.shared.events.warning(
                    &self.pod,
                    Some(&field),
                    "Failed",
                    format!("Error: {}", status.message()),
                );
            }
        }
    }

    async fn run_post_start(&mut self, id: &str, c: &Container) {
        let Some(exec) = c
            .lifecycle
            .as_ref()
            .and_then(|l| l.post_start.as_ref())
            .and_then(|h| h.exec.as_ref())
        else {
            return;
        };
        let command = exec.command.clone().unwrap_or_default();
        let result = self.shared.runtime.exec_sync(id, command, 30).await;
        let failed = match result {
            Ok(r) => (r.exit_code != 0).then(|| "non-zero exit".to_string()),
            Err(s) => Some(s.message().to_string()),
        };
        if let Some(why) = failed {
            self.shared.events.warning(
                &self.pod,
                Some(&container_field(false, &c.name)),
                "FailedPostStartHook",
                format!("PostStartHook failed: {why}"),
            );
            self.stop_container(id, 0).await;
        }
    }

    /// Probes for every running container that declares some; tasks of containers that
    /// stopped are dropped.
    fn sync_probes(&mut self, state: &PodRuntimeState) {
        let running: HashMap<String, (&ContainerRecord, Container)> = self
            .pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .filter_map(|c| {
                let r = state.latest(&c.name).filter(|r| r.running())?;
                Some((r.id.clone(), (r, c.clone())))
            })
            .collect();
        self.probes.retain(|id, task| {
            let keep = running.contains_key(id);
            if !keep {
                task.abort();
            }
            keep
        });
        self.readiness.retain(|id, _| running.contains_key(id));
        self.started.retain(|id, _| running.contains_key(id));
        // Verdicts about instances that no longer run have nothing left to kill.
        self.probe_failures.retain(|id, _| running.contains_key(id));
        let pod_ip = state
            .ready_sandbox()
            .and_then(|s| self.sandbox_ips.get(&s.id))
            .and_then(|ips| ips.first().cloned());
        for (id, (record, c)) in running {
            if self.probes.contains_key(&id) {
                continue;
            }
            if c.liveness_probe.is_none()
                && c.readiness_probe.is_none()
                && c.startup_probe.is_none()
            {
                continue;
            }
            if c.readiness_probe.is_some() {
                self.readiness.entry(id.clone()).or_insert(false);
            }
            if c.startup_probe.is_some() {
                self.started.entry(id.clone()).or_insert(false);
            }
            let started_at = SystemTime::UNIX_EPOCH
                + Duration::from_nanos(record.status.started_at.max(0) as u64);
            let task = probe::spawn_container_probes(
                self.shared.runtime.clone(),
                &self.pod,
                &c,
                id.clone(),
                pod_ip.clone(),
                started_at,
                self.probe_tx.clone(),
            );
            self.probes.insert(id, task);
        }
    }

    async fn write_status(&mut self, state: &PodRuntimeState) -> Result<()> {
        let pod_ips = match state.ready_sandbox() {
            Some(s) => {
                let id = s.id.clone();
                self.sandbox_ips(&id).await.unwrap_or_default()
            }
            None => Vec::new(),
        };
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let terminating = self.gone || self.pod.metadata.deletion_timestamp.is_some();
        let status = status::pod_status(&StatusInputs {
            pod: &self.pod,
            runtime: state,
            pod_ips: &pod_ips,
            host_ips: &self.shared.host_ips,
            readiness: &self.readiness,
            started: &self.started,
            waiting: &self.waiting,
            messages: &self.messages,
            now: &now,
            terminating,
        });
        if self.last_status.as_ref() == Some(&status) || self.gone {
            return Ok(());
        }
        let api: Api<Pod> = Api::namespaced(
            self.shared.client.clone(),
            self.pod.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let name = self.pod.metadata.name.clone().unwrap_or_default();
        let patch = json!({"metadata": {"uid": self.uid}, "status": status});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(updated) => {
                if phase(&updated) != phase(&self.pod) {
                    info!(pod = %pod_key(&self.pod), phase = phase(&updated), "pod phase");
                }
                self.pod.status = updated.status;
                self.last_status = Some(status);
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {
                self.gone = e.code == 404;
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn stop_container(&mut self, id: &str, grace: i64) {
        if let Err(status) = self.shared.runtime.stop_container(id, grace).await {
            if status.code() != tonic::Code::NotFound {
                warn!(container = %id, error = %status.message(), "stopping container");
            }
        }
    }

    /// Run preStop hooks, then stop every running container within `grace` seconds
    /// (SIGTERM, then SIGKILL), then stop the sandbox (which releases the pod's IP).
    async fn stop_pod(&mut self, state: &PodRuntimeState, grace: i64) {
        let deadline = Instant::now() + Duration::from_secs(grace as u64);
        let spec = self.pod.spec.clone().unwrap_or_default();
        let mut stops = Vec::new();
        for records in state.containers.values() {
            for r in records.iter().filter(|r| r.running()) {
                let c = spec
                    .containers
                    .iter()
                    .chain(spec.init_containers.iter().flatten())
                    .find(|c| c.name == r.name)
                    .cloned();
                let runtime = self.shared.runtime.clone();
                let id = r.id.clone();
                if grace > 0 {
                    self.shared.events.normal(
                        &self.pod,
                        Some(&container_field(false, &r.name)),
                        "Killing",
                        format!("Stopping container {}", r.name),
                    );
                }
                stops.push(async move {
                    if let Some(exec) = c
                        .as_ref()
                        .and_then(|c| c.lifecycle.as_ref())
                        .and_then(|l| l.pre_stop.as_ref())
                        .and_then(|h| h.exec.as_ref())
                    {
                        let _ = tokio::time::timeout(
                            deadline.saturating_duration_since(Instant::now()),
                            runtime.exec_sync(&id, exec.command.clone().unwrap_or_default(), grace),
                        )
                        .await;
                    } else if let Some(sleep) = c
                        .as_ref()
                        .and_then(|c| c.lifecycle.as_ref())
                        .and_then(|l| l.pre_stop.as_ref())
                        .and_then(|h| h.sleep.as_ref())
                    {
                        let wait = Duration::from_secs(sleep.seconds.max(0) as u64);
                        tokio::time::sleep(
                            wait.min(deadline.saturating_duration_since(Instant::now())),
                        )
                        .await;
                    }
                    // Rounded up: truncating took up to a second off the grace period.
                    let remaining = deadline
                        .saturating_duration_since(Instant::now())
                        .as_millis()
                        .div_ceil(1000) as i64;
                    let _ = runtime.stop_container(&id, remaining).await;
                });
            }
        }
        futures::future::join_all(stops).await;
        for (_, task) in self.probes.drain() {
            task.abort();
        }
        for s in state
            .sandboxes
            .iter()
            .filter(|s| s.state == api::PodSandboxState::SandboxReady as i32)
        {
            if let Err(status) = self.shared.runtime.stop_pod_sandbox(&s.id).await {
                warn!(sandbox = %s.id, error = %status.message(), "stopping sandbox");
            }
        }
    }

    /// Shut the pod down, clean up after it, and (when it was deleted through the API)
    /// remove the object, which completes the graceful deletion.
    async fn terminate(&mut self, state: &PodRuntimeState, grace: i64) -> Result<()> {
        self.stop_pod(state, grace).await;
        if !self.gone {
            let state = self.observe().await?;
            self.write_status(&state).await?;
        }
        for s in &state.sandboxes {
            if let Err(status) = self.shared.runtime.remove_pod_sandbox(&s.id).await {
                warn!(sandbox = %s.id, error = %status.message(), "removing sandbox");
            }
        }
        if let Err(err) = volumes::cleanup(&self.shared.paths, &self.uid).await {
            warn!(pod = %pod_key(&self.pod), error = %err, "cleaning up volumes");
        }
        let meta = &self.pod.metadata;
        let log_dir = self.shared.paths.pod_log_dir(
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
            &self.uid,
        );
        let _ = std::fs::remove_dir_all(log_dir);
        if !self.gone {
            let api: Api<Pod> = Api::namespaced(
                self.shared.client.clone(),
                meta.namespace.as_deref().unwrap_or_default(),
            );
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(self.uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api
                .delete(meta.name.as_deref().unwrap_or_default(), &params)
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(err) => return Err(err.into()),
            }
        }
        info!(pod = %pod_key(&self.pod), "pod terminated");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
