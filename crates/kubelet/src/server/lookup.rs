//! Which runtime sandbox or container a kubelet API path names. Paths say
//! `namespace/pod[/uid]/container`; the runtime knows sandboxes and containers by the
//! `io.kubernetes.*` labels the pod worker puts on them, so lookups are label-filtered CRI
//! list calls. When a pod name was reused (several uids), the newest ready sandbox wins.

use std::collections::HashMap;

use crate::cri::{api, labels};
use crate::runtime::RuntimeService;
use crate::{Error, Result};

/// A pod as the kubelet API paths name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    /// Set by the `/{uid}/` path variants: only this instance of the pod.
    pub uid: Option<String>,
}

impl PodRef {
    fn selector(&self) -> HashMap<String, String> {
        let mut selector = HashMap::from([
            (labels::POD_NAMESPACE.to_string(), self.namespace.clone()),
            (labels::POD_NAME.to_string(), self.name.clone()),
        ]);
        if let Some(uid) = &self.uid {
            selector.insert(labels::POD_UID.to_string(), uid.clone());
        }
        selector
    }
}

/// The pod's current sandbox: ready ones before stopped ones, then the newest.
pub async fn sandbox(
    runtime: &dyn RuntimeService,
    pod: &PodRef,
) -> Result<Option<api::PodSandbox>> {
    let filter = api::PodSandboxFilter {
        label_selector: pod.selector(),
        ..Default::default()
    };
    let items = runtime
        .list_pod_sandboxes(Some(filter))
        .await
        .map_err(|status| Error::cri("ListPodSandbox", status))?;
    Ok(items.into_iter().max_by_key(|s| {
        (
            s.state == api::PodSandboxState::SandboxReady as i32,
            s.created_at,
        )
    }))
}

/// Every instance (restart) of one container of the pod that the runtime still has,
/// newest first.
pub async fn container_instances(
    runtime: &dyn RuntimeService,
    pod: &PodRef,
    container: &str,
) -> Result<Vec<api::Container>> {
    let mut selector = pod.selector();
    selector.insert(labels::CONTAINER_NAME.to_string(), container.to_string());
    let filter = api::ContainerFilter {
        label_selector: selector,
        ..Default::default()
    };
    let mut items = runtime
        .list_containers(Some(filter))
        .await
        .map_err(|status| Error::cri("ListContainers", status))?;
    items.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    Ok(items)
}

/// The running instance of a container, if there is one.
pub async fn running_container(
    runtime: &dyn RuntimeService,
    pod: &PodRef,
    container: &str,
) -> Result<Option<api::Container>> {
    Ok(container_instances(runtime, pod, container)
        .await?
        .into_iter()
        .find(is_running))
}

pub fn is_running(container: &api::Container) -> bool {
    container.state == api::ContainerState::ContainerRunning as i32
}

/// The restart count of a container instance: the pod worker's annotation, or the CRI
/// attempt number it mirrors.
pub fn restart_count(container: &api::Container) -> u32 {
    container
        .annotations
        .get(labels::RESTART_COUNT)
        .and_then(|v| v.parse().ok())
        .or_else(|| container.metadata.as_ref().map(|m| m.attempt))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_names_the_pod_and_optionally_its_uid() {
        let mut pod = PodRef {
            namespace: "default".into(),
            name: "web".into(),
            uid: None,
        };
        let s = pod.selector();
        assert_eq!(s.len(), 2);
        assert_eq!(s[labels::POD_NAME], "web");
        pod.uid = Some("1234".into());
        assert_eq!(pod.selector()[labels::POD_UID], "1234");
    }

    #[test]
    fn restart_count_prefers_the_annotation() {
        let mut c = api::Container {
            metadata: Some(api::ContainerMetadata {
                name: "app".into(),
                attempt: 2,
            }),
            ..Default::default()
        };
        assert_eq!(restart_count(&c), 2);
        c.annotations
            .insert(labels::RESTART_COUNT.to_string(), "5".to_string());
        assert_eq!(restart_count(&c), 5);
    }
}
