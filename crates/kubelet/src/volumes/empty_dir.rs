//! emptyDir volumes: a directory in the pod's volume dir, or with `medium: Memory` a tmpfs
//! mounted there, sized like upstream: the smaller of `sizeLimit` and the pod's memory
//! limit (when every container declares one). A disk-backed `sizeLimit` is only enforced
//! upstream by eviction, which this kubelet does not do.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use k3rs_core::quantity::Quantity;
use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, Pod};

use super::host_mounts::{self, MountTable};
use crate::{Error, Result};

/// Create the directory (world-writable, so containers running as any user can use it,
/// as upstream) and mount the tmpfs for memory-backed volumes unless already mounted.
pub async fn set_up(
    dir: &Path,
    source: &EmptyDirVolumeSource,
    pod: &Pod,
    mounts: &MountTable,
) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    match source.medium.as_deref().unwrap_or("") {
        "" => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
                .map_err(|e| Error::io(format!("setting mode of {}", dir.display()), e))?;
            Ok(())
        }
        "Memory" if mounts.is_mount_point(dir) => Ok(()),
        // tmpfs's default root mode (1777) lets containers of any user write, like the
        // 0777 of disk-backed ones.
        "Memory" => host_mounts::mount_tmpfs(dir, memory_size(source, pod)?, None).await,
        other => Err(Error::Other(format!(
            "emptyDir medium {other:?} is not supported (use \"\" or \"Memory\")"
        ))),
    }
}

/// The tmpfs size in bytes: the smaller of `sizeLimit` and the pod's memory limit, or
/// `None` (the kernel's default) when neither is known.
pub fn memory_size(source: &EmptyDirVolumeSource, pod: &Pod) -> Result<Option<u64>> {
    let size_limit = match &source.size_limit {
        Some(q) => Some(
            Quantity::parse(&q.0)
                .ok_or_else(|| Error::Other(format!("invalid emptyDir sizeLimit {:?}", q.0)))?,
        ),
        None => None,
    };
    let candidates = [size_limit, pod_memory_limit(pod)];
    let smallest = candidates
        .into_iter()
        .flatten()
        .filter(|q| !q.is_zero())
        .min();
    Ok(smallest.map(|q| u64::try_from(q.value()).unwrap_or(u64::MAX)))
}

/// The pod's memory limit as its cgroup gets it: the sum over its containers or the
/// largest init container's, whichever is larger; `None` if any container has no limit.
fn pod_memory_limit(pod: &Pod) -> Option<Quantity> {
    let spec = pod.spec.as_ref()?;
    let limit = |c: &k8s_openapi::api::core::v1::Container| {
        let q = c.resources.as_ref()?.limits.as_ref()?.get("memory")?;
        Quantity::parse(&q.0)
    };
    let mut sum = Quantity::ZERO;
    for container in &spec.containers {
        sum = sum.saturating_add(limit(container)?);
    }
    let mut largest_init = Quantity::ZERO;
    for container in spec.init_containers.iter().flatten() {
        largest_init = largest_init.max(limit(container)?);
    }
    Some(sum.max(largest_init))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

    fn container(memory: Option<&str>) -> Container {
        Container {
            resources: memory.map(|m| ResourceRequirements {
                limits: Some([("memory".to_string(), ApiQuantity(m.into()))].into()),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                init_containers: Some(init),
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    fn memory(size_limit: Option<&str>) -> EmptyDirVolumeSource {
        EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: size_limit.map(|s| ApiQuantity(s.into())),
        }
    }

    #[test]
    fn tmpfs_size_is_the_smaller_of_limit_and_pod_memory() {
        let limited = pod(
            vec![container(Some("64Mi")), container(Some("64Mi"))],
            vec![container(Some("100Mi"))],
        );
        assert_eq!(
            memory_size(&memory(None), &limited).unwrap(),
            Some(128 << 20)
        );
        assert_eq!(
            memory_size(&memory(Some("16Mi")), &limited).unwrap(),
            Some(16 << 20)
        );
        assert_eq!(
            memory_size(&memory(Some("1Gi")), &limited).unwrap(),
            Some(128 << 20)
        );
        let unlimited = pod(vec![container(Some("64Mi")), container(None)], vec![]);
        assert_eq!(memory_size(&memory(None), &unlimited).unwrap(), None);
        assert_eq!(
            memory_size(&memory(Some("1M")), &unlimited).unwrap(),
            Some(1_000_000)
        );
        assert!(memory_size(&memory(Some("lots")), &unlimited).is_err());
    }

    #[tokio::test]
    async fn disk_backed_dirs_are_world_writable() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("kubernetes.io~empty-dir/cache");
        let source = EmptyDirVolumeSource::default();
        set_up(&volume, &source, &Pod::default(), &MountTable::default())
            .await
            .unwrap();
        let mode = std::fs::metadata(&volume).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o777);
        let odd = EmptyDirVolumeSource {
            medium: Some("HugePages".into()),
            size_limit: None,
        };
        assert!(
            set_up(&volume, &odd, &Pod::default(), &MountTable::default())
                .await
                .is_err()
        );
    }
}
