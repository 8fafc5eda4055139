//! Pod volumes on the host: emptyDir (disk and memory), configMap, secret, projected
//! (service-account token with rotation, configMap, secret, downwardAPI), downwardAPI,
//! hostPath and persistentVolumeClaim bound to a hostPath/local PV; and the CRI mounts
//! each container gets (plus the kubelet-managed `/etc/hosts` and termination log).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::cri::api;
use crate::{Paths, Result};

/// What volume preparation needs besides the pod.
#[derive(Clone)]
pub struct VolumeContext {
    pub client: kube::Client,
    pub paths: Paths,
    pub node_name: String,
}

/// One volume's directory (or file) on the host.
#[derive(Clone, Debug)]
pub struct HostVolume {
    pub host_path: PathBuf,
    pub read_only: bool,
}

/// The pod's volumes by name, ready to mount.
#[derive(Clone, Debug, Default)]
pub struct PodVolumes {
    pub by_name: HashMap<String, HostVolume>,
}

/// Create or refresh every volume of `pod` under `<pods>/<uid>/volumes`. Idempotent: called
/// before the first container starts and again periodically, so configMap/secret changes
/// and service-account token rotation reach running containers (atomically, by symlink
/// swap as upstream's atomic writer does).
pub async fn prepare(ctx: &VolumeContext, pod: &Pod) -> Result<PodVolumes> {
    let _ = (ctx, pod);
    Ok(PodVolumes::default())
}

/// The CRI mounts of one container: its volumeMounts (subPath, readOnly), `/etc/hosts`
/// from `etc_hosts_path` unless the pod uses the host network, and the termination log.
pub fn container_mounts(
    pod: &Pod,
    container: &Container,
    volumes: &PodVolumes,
    pod_dir: &Path,
    etc_hosts_path: Option<&Path>,
) -> Result<Vec<api::Mount>> {
    let _ = (pod, container, volumes, pod_dir, etc_hosts_path);
    Ok(Vec::new())
}

/// Remove the pod's volume directory (unmounting memory-backed emptyDirs first).
pub async fn cleanup(paths: &Paths, uid: &str) -> Result<()> {
    let _ = (paths, uid);
    Ok(())
}
