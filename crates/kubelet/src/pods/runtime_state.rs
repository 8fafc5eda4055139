//! What the runtime holds for one pod: its sandboxes and containers (found by the
//! `io.kubernetes.pod.uid` label) with their full CRI statuses. Loading it is how the
//! worker learns about the world, so a restarted agent adopts what is already running.

use std::collections::HashMap;

use crate::cri::{api, labels};
use crate::runtime::RuntimeService;
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub attempt: u32,
    pub status: api::ContainerStatus,
}

impl ContainerRecord {
    pub fn state(&self) -> api::ContainerState {
        api::ContainerState::try_from(self.status.state)
            .unwrap_or(api::ContainerState::ContainerUnknown)
    }

    pub fn running(&self) -> bool {
        self.state() == api::ContainerState::ContainerRunning
    }

    pub fn exited(&self) -> bool {
        self.state() == api::ContainerState::ContainerExited
    }

    /// The hash of the spec the container was created from (`spec::container_hash`);
    /// `None` for containers created by an agent that did not record it.
    pub fn spec_hash(&self) -> Option<&str> {
        self.status
            .annotations
            .get(labels::CONTAINER_HASH)
            .map(String::as_str)
    }

    /// The restart count stored on the container when it was created.
    pub fn restart_count(&self) -> u32 {
        self.status
            .annotations
            .get(labels::RESTART_COUNT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.attempt)
    }
}

#[derive(Clone, Debug, Default)]
pub struct PodRuntimeState {
    /// Newest first.
    pub sandboxes: Vec<api::PodSandbox>,
    /// Per container name, newest attempt first.
    pub containers: HashMap<String, Vec<ContainerRecord>>,
}

impl PodRuntimeState {
    pub async fn load(runtime: &dyn RuntimeService, uid: &str) -> Result<PodRuntimeState> {
        let selector = HashMap::from([(labels::POD_UID.to_string(), uid.to_string())]);
        let mut sandboxes = runtime
            .list_pod_sandboxes(Some(api::PodSandboxFilter {
                label_selector: selector.clone(),
                ..Default::default()
            }))
            .await
            .map_err(|s| Error::cri("ListPodSandbox", s))?;
        sandboxes.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        let list = runtime
            .list_containers(Some(api::ContainerFilter {
                label_selector: selector,
                ..Default::default()
            }))
            .await
            .map_err(|s| Error::cri("ListContainers", s))?;
        let mut containers: HashMap<String, Vec<ContainerRecord>> = HashMap::new();
        for c in list {
            let name = c
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            let attempt = c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0);
            let status = match runtime.container_status(&c.id).await {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                // Removed between the list and the status call.
                Err(s) if s.code() == tonic::Code::NotFound => continue,
                Err(s) => return Err(Error::cri("ContainerStatus", s)),
            };
            containers
                .entry(name.clone())
                .or_default()
                .push(ContainerRecord {
                    id: c.id,
                    name,
                    attempt,
                    status,
                });
        }
        for records in containers.values_mut() {
            records.sort_by(|a, b| {
                b.attempt
                    .cmp(&a.attempt)
                    .then(b.status.created_at.cmp(&a.status.created_at))
            });
        }
        Ok(PodRuntimeState {
            sandboxes,
            containers,
        })
    }

    /// The newest sandbox if it is ready.
    pub fn ready_sandbox(&self) -> Option<&api::PodSandbox> {
        self.sandboxes
            .first()
            .filter(|s| s.state == api::PodSandboxState::SandboxReady as i32)
    }

    pub fn latest(&self, container: &str) -> Option<&ContainerRecord> {
        self.containers.get(container).and_then(|v| v.first())
    }

    pub fn previous(&self, container: &str) -> Option<&ContainerRecord> {
        self.containers.get(container).and_then(|v| v.get(1))
    }
}
