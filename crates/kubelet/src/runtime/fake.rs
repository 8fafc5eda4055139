//! An in-memory container runtime for unit tests: it keeps sandboxes and containers the
//! way containerd reports them (labels, annotations, states, exit codes) and records every
//! call, so a test can drive the pod worker and check which calls it made, in order.
//! Tests change the world between syncs with `exit`, `kill_sandbox` and `fail_next`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use futures::FutureExt;

use super::{Call, RuntimeService};
use crate::cri::api;

/// One recorded call, with the arguments tests check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    Status,
    ListPodSandboxes,
    RunPodSandbox { attempt: u32 },
    PodSandboxStatus(String),
    StopPodSandbox(String),
    RemovePodSandbox(String),
    ListContainers,
    ContainerStatus(String),
    CreateContainer { name: String, attempt: u32 },
    StartContainer(String),
    StopContainer { id: String, timeout: i64 },
    RemoveContainer(String),
    ExecSync { id: String, command: Vec<String> },
    Exec(String),
    Attach(String),
    PortForward(String),
    ListContainerStats,
    ListPodSandboxStats,
    ImageStatus(String),
    PullImage(String),
    ListImages,
    ImageFsInfo,
}

impl Recorded {
    /// Whether the call changes the runtime (everything but lists and status reads).
    pub fn is_change(&self) -> bool {
        !matches!(
            self,
            Recorded::Status
                | Recorded::ListPodSandboxes
                | Recorded::PodSandboxStatus(_)
                | Recorded::ListContainers
                | Recorded::ContainerStatus(_)
                | Recorded::ListContainerStats
                | Recorded::ListPodSandboxStats
                | Recorded::ImageStatus(_)
                | Recorded::ListImages
                | Recorded::ImageFsInfo
        )
    }
}

struct FakeContainer {
    listed: api::Container,
    status: api::ContainerStatus,
}

#[derive(Default)]
struct World {
    sandboxes: Vec<api::PodSandbox>,
    containers: Vec<FakeContainer>,
    images: HashSet<String>,
    calls: Vec<Recorded>,
    /// Errors the next call of that name (`"RunPodSandbox"`, ...) answers with.
    failures: HashMap<&'static str, tonic::Status>,
    /// A logical clock in nanoseconds: every change happens at a later time.
    clock: i64,
    next_id: u64,
}

impl World {
    fn tick(&mut self) -> i64 {
        self.clock += 1_000_000_000;
        self.clock
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    fn fail(&mut self, call: &'static str) -> Result<(), tonic::Status> {
        self.failures.remove(call).map_or(Ok(()), Err)
    }

    fn container(&mut self, id: &str) -> Result<&mut FakeContainer, tonic::Status> {
        self.containers
            .iter_mut()
            .find(|c| c.listed.id == id)
            .ok_or_else(|| tonic::Status::not_found(format!("container {id} not found")))
    }

    fn set_state(&mut self, id: &str, state: api::ContainerState, exit_code: i32) {
        let now = self.tick();
        if let Ok(c) = self.container(id) {
            c.listed.state = state as i32;
            c.status.state = state as i32;
            match state {
                api::ContainerState::ContainerRunning => c.status.started_at = now,
                api::ContainerState::ContainerExited => {
                    c.status.finished_at = now;
                    c.status.exit_code = exit_code;
                }
                _ => {}
            }
        }
    }
}

fn matches(labels: &HashMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The fake runtime. Every image is present unless `images_missing` was called.
pub struct FakeRuntime {
    world: Mutex<World>,
    all_images_present: bool,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        FakeRuntime {
            world: Mutex::default(),
            all_images_present: true,
        }
    }
}

impl FakeRuntime {
    pub fn new() -> FakeRuntime {
        FakeRuntime::default()
    }

    /// A runtime that holds no image until one is pulled.
    pub fn images_missing() -> FakeRuntime {
        FakeRuntime {
            all_images_present: false,
            ..FakeRuntime::default()
        }
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().expect("fake runtime")
    }

    fn record(&self, call: Recorded) -> std::sync::MutexGuard<'_, World> {
        let mut world = self.world();
        world.calls.push(call);
        world
    }

    /// Every call so far, oldest first.
    pub fn calls(&self) -> Vec<Recorded> {
        self.world().calls.clone()
    }

    /// The calls that changed something, oldest first; the log is emptied.
    pub fn take_changes(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.world().calls)
            .into_iter()
            .filter(Recorded::is_change)
            .collect()
    }

    /// The next call named `call` (its CRI name, e.g. `"RunPodSandbox"`) fails.
    pub fn fail_next(&self, call: &'static str, status: tonic::Status) {
        self.world().failures.insert(call, status);
    }

    /// The id of the newest instance of the named container.
    pub fn container_id(&self, name: &str) -> Option<String> {
        let world = self.world();
        world
            .containers
            .iter()
            .filter(|c| c.listed.metadata.as_ref().is_some_and(|m| m.name == name))
            .max_by_key(|c| c.listed.created_at)
            .map(|c| c.listed.id.clone())
    }

    /// The state of a container by id.
    pub fn state_of(&self, id: &str) -> Option<api::ContainerState> {
        let mut world = self.world();
        let state = world.container(id).ok()?.status.state;
        api::ContainerState::try_from(state).ok()
    }

    /// The ids of the sandboxes that are ready.
    pub fn ready_sandboxes(&self) -> Vec<String> {
        self.world()
            .sandboxes
            .iter()
            .filter(|s| s.state == api::PodSandboxState::SandboxReady as i32)
            .map(|s| s.id.clone())
            .collect()
    }

    /// The newest instance of the named container exits with `code` (as if it crashed
    /// or finished on its own).
    pub fn exit(&self, name: &str, code: i32) {
        let id = self.container_id(name).expect("no such container");
        self.world()
            .set_state(&id, api::ContainerState::ContainerExited, code);
    }

    /// The sandbox dies on its own (its pause process was killed): it turns NotReady and
    /// its containers are killed.
    pub fn kill_sandbox(&self, sandbox_id: &str) {
        self.world().stop_sandbox(sandbox_id);
    }
}

impl World {
    fn stop_sandbox(&mut self, sandbox_id: &str) {
        for s in self.sandboxes.iter_mut().filter(|s| s.id == sandbox_id) {
            s.state = api::PodSandboxState::SandboxNotready as i32;
        }
        let running: Vec<String> = self
            .containers
            .iter()
            .filter(|c| {
                c.listed.pod_sandbox_id == sandbox_id
                    && c.status.state == api::ContainerState::ContainerRunning as i32
            })
            .map(|c| c.listed.id.clone())
            .collect();
        for id in running {
            self.set_state(&id, api::ContainerState::ContainerExited, 137);
        }
    }
}

impl RuntimeService for FakeRuntime {
    fn status(&self) -> Call<'_, Option<api::RuntimeStatus>> {
        drop(self.record(Recorded::Status));
        let ready = |kind: &str| api::RuntimeCondition {
            r#type: kind.to_string(),
            status: true,
            ..Default::default()
        };
        let status = api::RuntimeStatus {
            conditions: vec![ready("RuntimeReady"), ready("NetworkReady")],
        };
        async move { Ok(Some(status)) }.boxed()
    }

    fn list_pod_sandboxes(
        &self,
        filter: Option<api::PodSandboxFilter>,
    ) -> Call<'_, Vec<api::PodSandbox>> {
        let world = self.record(Recorded::ListPodSandboxes);
        let selector = filter.map(|f| f.label_selector).unwrap_or_default();
        let items = world
            .sandboxes
            .iter()
            .filter(|s| matches(&s.labels, &selector))
            .cloned()
            .collect();
        async move { Ok(items) }.boxed()
    }

    fn run_pod_sandbox(&self, config: api::PodSandboxConfig) -> Call<'_, String> {
        let attempt = config.metadata.as_ref().map_or(0, |m| m.attempt);
        let mut world = self.record(Recorded::RunPodSandbox { attempt });
        let result = world.fail("RunPodSandbox").map(|()| {
            let id = world.id("sandbox-");
            let created_at = world.tick();
            world.sandboxes.push(api::PodSandbox {
                id: id.clone(),
                metadata: config.metadata,
                state: api::PodSandboxState::SandboxReady as i32,
                created_at,
                labels: config.labels,
                annotations: config.annotations,
                runtime_handler: String::new(),
            });
            id
        });
        async move { result }.boxed()
    }

    fn pod_sandbox_status(&self, sandbox_id: &str) -> Call<'_, Option<api::PodSandboxStatus>> {
        let world = self.record(Recorded::PodSandboxStatus(sandbox_id.to_string()));
        let index = world.sandboxes.iter().position(|s| s.id == sandbox_id);
        let result = match index {
            None => Err(tonic::Status::not_found("no such sandbox")),
            Some(i) => Ok(Some(api::PodSandboxStatus {
                id: sandbox_id.to_string(),
                state: world.sandboxes[i].state,
                network: Some(api::PodSandboxNetworkStatus {
                    ip: format!("10.42.0.{}", i + 2),
                    additional_ips: Vec::new(),
                }),
                ..Default::default()
            })),
        };
        async move { result }.boxed()
    }

    fn stop_pod_sandbox(&self, sandbox_id: &str) -> Call<'_, ()> {
        let mut world = self.record(Recorded::StopPodSandbox(sandbox_id.to_string()));
        world.stop_sandbox(sandbox_id);
        async move { Ok(()) }.boxed()
    }

    fn remove_pod_sandbox(&self, sandbox_id: &str) -> Call<'_, ()> {
        let mut world = self.record(Recorded::RemovePodSandbox(sandbox_id.to_string()));
        world.stop_sandbox(sandbox_id);
        world.sandboxes.retain(|s| s.id != sandbox_id);
        world
            .containers
            .retain(|c| c.listed.pod_sandbox_id != sandbox_id);
        async move { Ok(()) }.boxed()
    }

    fn list_containers(
        &self,
        filter: Option<api::ContainerFilter>,
    ) -> Call<'_, Vec<api::Container>> {
        let world = self.record(Recorded::ListContainers);
        let selector = filter.map(|f| f.label_selector).unwrap_or_default();
        let items = world
            .containers
            .iter()
            .filter(|c| matches(&c.listed.labels, &selector))
            .map(|c| c.listed.clone())
            .collect();
        async move { Ok(items) }.boxed()
    }

    fn container_status(&self, container_id: &str) -> Call<'_, Option<api::ContainerStatus>> {
        let mut world = self.record(Recorded::ContainerStatus(container_id.to_string()));
        let result = world
            .container(container_id)
            .map(|c| Some(c.status.clone()));
        async move { result }.boxed()
    }

    fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        _sandbox_config: api::PodSandboxConfig,
    ) -> Call<'_, String> {
        let metadata = config.metadata.clone().unwrap_or_default();
        let mut world = self.record(Recorded::CreateContainer {
            name: metadata.name.clone(),
            attempt: metadata.attempt,
        });
        let result = world.fail("CreateContainer").map(|()| {
            let id = world.id("container-");
            let created_at = world.tick();
            let state = api::ContainerState::ContainerCreated as i32;
            world.containers.push(FakeContainer {
                listed: api::Container {
                    id: id.clone(),
                    pod_sandbox_id: sandbox_id.to_string(),
                    metadata: Some(metadata.clone()),
                    image: config.image.clone(),
                    image_ref: String::new(),
                    state,
                    created_at,
                    labels: config.labels.clone(),
                    annotations: config.annotations.clone(),
                    ..Default::default()
                },
                status: api::ContainerStatus {
                    id: id.clone(),
                    metadata: Some(metadata),
                    state,
                    created_at,
                    image: config.image,
                    labels: config.labels,
                    annotations: config.annotations,
                    ..Default::default()
                },
            });
            id
        });
        async move { result }.boxed()
    }

    fn start_container(&self, container_id: &str) -> Call<'_, ()> {
        let mut world = self.record(Recorded::StartContainer(container_id.to_string()));
        let result = world.fail("StartContainer").and_then(|()| {
            world.container(container_id)?;
            world.set_state(container_id, api::ContainerState::ContainerRunning, 0);
            Ok(())
        });
        async move { result }.boxed()
    }

    fn stop_container(&self, container_id: &str, timeout_seconds: i64) -> Call<'_, ()> {
        let mut world = self.record(Recorded::StopContainer {
            id: container_id.to_string(),
            timeout: timeout_seconds,
        });
        let result = world.container(container_id).map(|c| c.status.state);
        let result = result.map(|state| {
            if state == api::ContainerState::ContainerRunning as i32 {
                // SIGTERM ends the fake's processes: 128 + 15.
                world.set_state(container_id, api::ContainerState::ContainerExited, 143);
            }
        });
        async move { result }.boxed()
    }

    fn remove_container(&self, container_id: &str) -> Call<'_, ()> {
        let mut world = self.record(Recorded::RemoveContainer(container_id.to_string()));
        world.containers.retain(|c| c.listed.id != container_id);
        async move { Ok(()) }.boxed()
    }

    fn exec_sync(
        &self,
        container_id: &str,
        command: Vec<String>,
        _timeout_seconds: i64,
    ) -> Call<'_, api::ExecSyncResponse> {
        let mut world = self.record(Recorded::ExecSync {
            id: container_id.to_string(),
            command,
        });
        let result = world
            .fail("ExecSync")
            .map(|()| api::ExecSyncResponse::default());
        async move { result }.boxed()
    }

    fn exec(&self, request: api::ExecRequest) -> Call<'_, String> {
        drop(self.record(Recorded::Exec(request.container_id.clone())));
        let url = format!("http://streaming.invalid/exec/{}", request.container_id);
        async move { Ok(url) }.boxed()
    }

    fn attach(&self, request: api::AttachRequest) -> Call<'_, String> {
        drop(self.record(Recorded::Attach(request.container_id.clone())));
        let url = format!("http://streaming.invalid/attach/{}", request.container_id);
        async move { Ok(url) }.boxed()
    }

    fn port_forward(&self, sandbox_id: &str, _ports: Vec<i32>) -> Call<'_, String> {
        drop(self.record(Recorded::PortForward(sandbox_id.to_string())));
        let url = format!("http://streaming.invalid/portforward/{sandbox_id}");
        async move { Ok(url) }.boxed()
    }

    /// The fake measures nothing.
    fn list_container_stats(&self) -> Call<'_, Vec<api::ContainerStats>> {
        drop(self.record(Recorded::ListContainerStats));
        async move { Ok(Vec::new()) }.boxed()
    }

    /// As containerd 1.6, which has no pod-level stats.
    fn list_pod_sandbox_stats(&self) -> Call<'_, Vec<api::PodSandboxStats>> {
        drop(self.record(Recorded::ListPodSandboxStats));
        async move { Err(tonic::Status::unimplemented("ListPodSandboxStats")) }.boxed()
    }

    fn image_status(&self, image: &str) -> Call<'_, Option<api::Image>> {
        let world = self.record(Recorded::ImageStatus(image.to_string()));
        let present = self.all_images_present || world.images.contains(image);
        let found = present.then(|| api::Image {
            id: format!("sha256:{image}"),
            ..Default::default()
        });
        async move { Ok(found) }.boxed()
    }

    fn pull_image(&self, image: &str) -> Call<'_, String> {
        let mut world = self.record(Recorded::PullImage(image.to_string()));
        let result = world.fail("PullImage").map(|()| {
            world.images.insert(image.to_string());
            format!("sha256:{image}")
        });
        async move { result }.boxed()
    }

    fn list_images(&self) -> Call<'_, Vec<api::Image>> {
        let world = self.record(Recorded::ListImages);
        let images = world
            .images
            .iter()
            .map(|image| api::Image {
                id: format!("sha256:{image}"),
                repo_tags: vec![image.clone()],
                ..Default::default()
            })
            .collect();
        async move { Ok(images) }.boxed()
    }

    fn image_fs_info(&self) -> Call<'_, Vec<api::FilesystemUsage>> {
        drop(self.record(Recorded::ImageFsInfo));
        async move { Ok(Vec::new()) }.boxed()
    }
}
