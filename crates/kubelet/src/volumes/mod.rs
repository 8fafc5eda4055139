//! Pod volumes on the host: emptyDir (disk and memory), configMap, secret, projected
//! (service-account token with rotation, configMap, secret, downwardAPI), downwardAPI,
//! hostPath and persistentVolumeClaim bound to a hostPath/local PV; and the CRI mounts
//! each container gets (plus the kubelet-managed `/etc/hosts` and termination log).
//!
//! Layout, as upstream's kubelet: `<pods>/<uid>/volumes/<plugin>/<volume>` with plugin
//! names like `kubernetes.io~configmap`; hostPath and persistent volumes are mounted from
//! where they are. Secret and projected volumes sit on a tmpfs so secrets never reach the
//! disk. Everything is derived from the pod and what is on disk and mounted, never from
//! memory, so the agent can restart at any time. `fsGroup` ownership changes are not
//! made (files are root-owned and world-readable by default, as their modes say).

mod atomic_writer;
mod claim;
pub(crate) mod downward_api;
mod empty_dir;
mod host_mounts;
mod host_path;
mod mounts;
mod projected;
mod projection;
mod token;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Pod, Volume};
use tracing::warn;

use crate::{Error, Paths, Result};
use host_mounts::MountTable;

pub use mounts::{container_mounts, termination_log_path};

/// Plugin directory names, as upstream (tools that look for them keep working).
pub const EMPTY_DIR_PLUGIN: &str = "kubernetes.io~empty-dir";
pub const CONFIG_MAP_PLUGIN: &str = "kubernetes.io~configmap";
pub const SECRET_PLUGIN: &str = "kubernetes.io~secret";
pub const PROJECTED_PLUGIN: &str = "kubernetes.io~projected";
pub const DOWNWARD_API_PLUGIN: &str = "kubernetes.io~downward-api";

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
    /// Every container mounts it read-only (API-data volumes, read-only claims).
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
/// swap as upstream's atomic writer does). Unchanged contents are not rewritten.
///
/// Every volume is tried; if any fails, the error lists each failure as upstream's
/// `FailedMount` event does (`MountVolume.SetUp failed for volume "x" : configmap "y" not
/// found`), one per line, and volumes that failed keep their previous contents.
pub async fn prepare(ctx: &VolumeContext, pod: &Pod) -> Result<PodVolumes> {
    let uid = pod_uid(pod)?;
    let volumes_dir = ctx.paths.pod_dir(uid).join("volumes");
    let mounts = MountTable::read()?;
    let mut sources = projected::Sources::new(&ctx.client, &ctx.node_name, pod);
    let mut prepared = PodVolumes::default();
    let mut failures = Vec::new();
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        match set_up(volume, pod, &volumes_dir, &mounts, &mut sources, ctx).await {
            Ok(host) => {
                prepared.by_name.insert(volume.name.clone(), host);
            }
            Err(why) => failures.push(format!(
                "MountVolume.SetUp failed for volume {:?} : {why}",
                volume.name
            )),
        }
    }
    if failures.is_empty() {
        Ok(prepared)
    } else {
        Err(Error::Other(failures.join("\n")))
    }
}

async fn set_up(
    volume: &Volume,
    pod: &Pod,
    volumes_dir: &Path,
    mounts: &MountTable,
    sources: &mut projected::Sources<'_>,
    ctx: &VolumeContext,
) -> Result<HostVolume, String> {
    // Volume names become directory names (the API allows only DNS labels anyway).
    if !is_plain_name(&volume.name) {
        return Err(format!("invalid volume name {:?}", volume.name));
    }
    let dir = |plugin: &str| volumes_dir.join(plugin).join(&volume.name);
    let writable = |host_path: PathBuf| HostVolume {
        host_path,
        read_only: false,
    };
    // API-data volumes are read-only in every container, as upstream mounts them.
    let api_data = |host_path: PathBuf| HostVolume {
        host_path,
        read_only: true,
    };
    if let Some(source) = &volume.empty_dir {
        let dir = dir(EMPTY_DIR_PLUGIN);
        empty_dir::set_up(&dir, source, pod, mounts)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(writable(dir));
    }
    if let Some(source) = &volume.config_map {
        let dir = dir(CONFIG_MAP_PLUGIN);
        let payload = sources.config_map_files(source).await?;
        make_volume_dir(&dir, Backing::Disk, mounts).await?;
        write_files(&dir, payload).await?;
        return Ok(api_data(dir));
    }
    if let Some(source) = &volume.secret {
        let dir = dir(SECRET_PLUGIN);
        let payload = sources.secret_files(source).await?;
        make_volume_dir(&dir, Backing::Memory, mounts).await?;
        write_files(&dir, payload).await?;
        return Ok(api_data(dir));
    }
    if let Some(source) = &volume.downward_api {
        let dir = dir(DOWNWARD_API_PLUGIN);
        let payload = sources.downward_api_files(source).await?;
        make_volume_dir(&dir, Backing::Disk, mounts).await?;
        write_files(&dir, payload).await?;
        return Ok(api_data(dir));
    }
    if let Some(source) = &volume.projected {
        let dir = dir(PROJECTED_PLUGIN);
        // Mount first: the current token is read from the volume to decide on rotation.
        make_volume_dir(&dir, Backing::Memory, mounts).await?;
        let payload = sources.projected_files(source, &dir).await?;
        write_files(&dir, payload).await?;
        return Ok(api_data(dir));
    }
    if let Some(source) = &volume.host_path {
        let path = PathBuf::from(&source.path);
        host_path::check_type(&path, source.type_.as_deref())?;
        return Ok(writable(path));
    }
    if let Some(source) = &volume.persistent_volume_claim {
        return claim::resolve(&ctx.client, sources.namespace(), source).await;
    }
    Err(format!(
        "volume type {:?} is not supported by this node (supported: emptyDir, configMap, \
         secret, projected, downwardAPI, hostPath, persistentVolumeClaim)",
        volume_type(volume)
    ))
}

/// The name of the volume's source field (`nfs`, `csi`, ...), for the error above.
fn volume_type(volume: &Volume) -> String {
    let fields = serde_json::to_value(volume).unwrap_or_default();
    fields
        .as_object()
        .and_then(|fields| fields.keys().find(|key| *key != "name").cloned())
        .unwrap_or_else(|| "none".to_string())
}

/// Where a volume's files live.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backing {
    Disk,
    /// A tmpfs of its own, so the contents never reach the disk.
    Memory,
}

async fn make_volume_dir(dir: &Path, backing: Backing, mounts: &MountTable) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    if backing == Backing::Memory && !mounts.is_mount_point(dir) {
        // Only the kubelet writes here; containers mount it read-only.
        host_mounts::mount_tmpfs(dir, None, Some(0o755))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Write the payload into a directory `make_volume_dir` made, off the async threads.
async fn write_files(dir: &Path, payload: atomic_writer::Payload) -> Result<(), String> {
    let target = dir.to_path_buf();
    tokio::task::spawn_blocking(move || atomic_writer::write(&target, &payload))
        .await
        .map_err(|e| format!("writing {}: {e}", dir.display()))?
        .map(drop)
        .map_err(|e| e.to_string())
}

fn pod_uid(pod: &Pod) -> Result<&str> {
    pod.metadata
        .uid
        .as_deref()
        .filter(|uid| is_plain_name(uid))
        .ok_or_else(|| {
            Error::Other(format!(
                "pod {:?} has no usable uid",
                pod.metadata.name.as_deref().unwrap_or_default()
            ))
        })
}

/// A single path component: uids become directory names that get removed recursively.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/')
}

/// Remove the pod's directory: unmount every tmpfs in it first, and refuse to delete
/// anything while a mount remains (deleting through a mount would erase its contents).
/// Call it once the pod's containers are gone.
pub async fn cleanup(paths: &Paths, uid: &str) -> Result<()> {
    if !is_plain_name(uid) {
        return Err(Error::Other(format!(
            "refusing to clean up pod dir {uid:?}"
        )));
    }
    let dir = paths.pod_dir(uid);
    if std::fs::symlink_metadata(&dir).is_err() {
        return Ok(());
    }
    for point in MountTable::read()?.under(&dir) {
        host_mounts::unmount(&point).await?;
    }
    let remaining = MountTable::read()?.under(&dir);
    if !remaining.is_empty() {
        return Err(Error::Other(format!(
            "pod dir {} still has mounts: {remaining:?}",
            dir.display()
        )));
    }
    let target = dir.clone();
    tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&target))
        .await
        .map_err(|e| Error::Other(format!("removing {}: {e}", dir.display())))?
        .map_err(|e| Error::io(format!("removing {}", dir.display()), e))
}

/// The uids of pod directories on disk that belong to none of `live_uids`: pods deleted
/// while the agent was down. Pass them to `cleanup` once their containers are gone.
pub fn orphaned_pod_dirs<I, S>(paths: &Paths, live_uids: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let live: std::collections::HashSet<String> = live_uids
        .into_iter()
        .map(|uid| uid.as_ref().to_string())
        .collect();
    let entries = match std::fs::read_dir(&paths.pods) {
        Ok(entries) => entries,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!(dir = %paths.pods.display(), error = %e, "cannot list pod dirs");
            }
            return Vec::new();
        }
    };
    let mut orphans: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|uid| !live.contains(uid))
        .collect();
    orphans.sort();
    orphans
}

/// An API error as its message (`configmaps "x" is forbidden: ...`), without the
/// debug dump `kube::Error` displays.
pub(crate) fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphans_are_dirs_without_a_live_pod() {
        let data = tempfile::tempdir().unwrap();
        let paths = Paths::new(data.path(), "n1");
        assert!(orphaned_pod_dirs(&paths, Vec::<String>::new()).is_empty());
        for uid in ["a", "b", "c"] {
            std::fs::create_dir_all(paths.pod_dir(uid)).unwrap();
        }
        std::fs::write(paths.pods.join("stray-file"), "").unwrap();
        assert_eq!(orphaned_pod_dirs(&paths, ["b"]), vec!["a", "c"]);
    }

    #[test]
    fn unsupported_volume_types_are_named() {
        let volume = Volume {
            name: "shared".into(),
            nfs: Some(k8s_openapi::api::core::v1::NFSVolumeSource {
                server: "nas".into(),
                path: "/export".into(),
                read_only: None,
            }),
            ..Volume::default()
        };
        assert_eq!(volume_type(&volume), "nfs");
        assert_eq!(volume_type(&Volume::default()), "none");
    }

    #[tokio::test]
    async fn cleanup_removes_the_pod_dir_and_refuses_odd_uids() {
        let data = tempfile::tempdir().unwrap();
        let paths = Paths::new(data.path(), "n1");
        let dir = paths
            .pod_dir("u1")
            .join("volumes/kubernetes.io~empty-dir/x");
        std::fs::create_dir_all(&dir).unwrap();
        cleanup(&paths, "u1").await.unwrap();
        assert!(!paths.pod_dir("u1").exists());
        cleanup(&paths, "u1").await.unwrap();
        assert!(cleanup(&paths, "..").await.is_err());
        assert!(cleanup(&paths, "a/b").await.is_err());
    }
}
