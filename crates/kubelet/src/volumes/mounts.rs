//! The CRI mounts of one container: one per volumeMount (with `subPath`/`subPathExpr`,
//! read-only and propagation), the kubelet-managed `/etc/hosts`, and a fresh termination
//! log file bound at `terminationMessagePath`.
//!
//! Sub-paths are resolved on the host and must stay inside their volume: a container can
//! put symlinks in a shared emptyDir, and a later sub-path mount through one must not
//! reach the rest of the host. The check resolves the path just before the container is
//! created; upstream additionally pins it with a bind mount, which this kubelet does not.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};
use tracing::warn;

use super::PodVolumes;
use crate::cri::api;
use crate::pods::env;
use crate::{Error, Result};

const ETC_HOSTS: &str = "/etc/hosts";
const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// The CRI mounts of one container: its volumeMounts (subPath, readOnly), `/etc/hosts`
/// from `etc_hosts_path` (pass `None` for host-network pods, which see the node's file),
/// and the termination log. Call it once per container start: each call makes a new,
/// empty termination log file (read it back with `termination_log_path`).
pub fn container_mounts(
    pod: &Pod,
    container: &Container,
    volumes: &PodVolumes,
    pod_dir: &Path,
    etc_hosts_path: Option<&Path>,
) -> Result<Vec<api::Mount>> {
    let mut mounts = Vec::new();
    let mut mount_etc_hosts = etc_hosts_path.is_some();
    let mut sub_path_env: Option<HashMap<String, String>> = None;
    for volume_mount in container.volume_mounts.iter().flatten() {
        // A volume mounted over /etc/hosts wins over the kubelet's file.
        if volume_mount.mount_path == ETC_HOSTS {
            mount_etc_hosts = false;
        }
        let volume = volumes.by_name.get(&volume_mount.name).ok_or_else(|| {
            Error::Other(format!(
                "cannot find volume {:?} to mount into container {:?}",
                volume_mount.name, container.name
            ))
        })?;
        let sub_path = match volume_mount.sub_path_expr.as_deref() {
            Some(expression) if !expression.is_empty() => {
                let env = sub_path_env.get_or_insert_with(|| env::sub_path_env(pod, container));
                env::expand(expression, |name| env.get(name).cloned())
            }
            _ => volume_mount.sub_path.clone().unwrap_or_default(),
        };
        let host_path = if sub_path.is_empty() {
            volume.host_path.clone()
        } else {
            sub_path_on_host(&volume.host_path, &sub_path).map_err(|why| {
                warn!(
                    container = %container.name,
                    volume = %volume_mount.name,
                    sub_path = %sub_path,
                    error = %why,
                    "cannot prepare subPath"
                );
                Error::Other(why.for_user(&volume_mount.name, &container.name))
            })?
        };
        let propagation = propagation(volume_mount.mount_propagation.as_deref(), container)?;
        mounts.push(api::Mount {
            container_path: absolute(&volume_mount.mount_path),
            host_path: host_path.to_string_lossy().into_owned(),
            readonly: volume_mount.read_only.unwrap_or(false) || volume.read_only,
            propagation: propagation as i32,
            ..api::Mount::default()
        });
    }
    if let Some(hosts) = etc_hosts_path.filter(|_| mount_etc_hosts) {
        mounts.push(api::Mount {
            container_path: ETC_HOSTS.into(),
            host_path: hosts.to_string_lossy().into_owned(),
            ..api::Mount::default()
        });
    }
    let message_path = container
        .termination_message_path
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_TERMINATION_MESSAGE_PATH);
    let log = new_termination_log(pod_dir, &container.name)?;
    mounts.push(api::Mount {
        container_path: absolute(message_path),
        host_path: log.to_string_lossy().into_owned(),
        ..api::Mount::default()
    });
    Ok(mounts)
}

fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

fn propagation(mode: Option<&str>, container: &Container) -> Result<api::MountPropagation> {
    match mode.unwrap_or("None") {
        "None" | "" => Ok(api::MountPropagation::PropagationPrivate),
        "HostToContainer" => Ok(api::MountPropagation::PropagationHostToContainer),
        "Bidirectional" => {
            let privileged = container
                .security_context
                .as_ref()
                .and_then(|s| s.privileged)
                .unwrap_or(false);
            if privileged {
                Ok(api::MountPropagation::PropagationBidirectional)
            } else {
                Err(Error::Other(
                    "Bidirectional mount propagation is available only to privileged containers"
                        .into(),
                ))
            }
        }
        other => Err(Error::Other(format!(
            "invalid MountPropagation mode: {other:?}"
        ))),
    }
}

/// Why a sub-path cannot be used. Details about the host stay in the log; the user gets
/// upstream's terse message.
#[derive(Debug)]
enum SubPathError {
    Invalid(String),
    Host(String),
}

impl SubPathError {
    fn for_user(&self, volume: &str, container: &str) -> String {
        match self {
            SubPathError::Invalid(message) => message.clone(),
            SubPathError::Host(_) => format!(
                "failed to create subPath directory for volumeMount {volume:?} of container {container:?}"
            ),
        }
    }
}

impl std::fmt::Display for SubPathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubPathError::Invalid(message) | SubPathError::Host(message) => f.write_str(message),
        }
    }
}

/// The host path of `sub_path` inside the volume at `root`, created as a directory (with
/// the volume root's mode) when missing, resolved through symlinks and checked to stay
/// inside the volume.
fn sub_path_on_host(root: &Path, sub_path: &str) -> Result<PathBuf, SubPathError> {
    let relative = Path::new(sub_path);
    if relative.is_absolute() {
        return Err(SubPathError::Invalid(format!(
            "error SubPath {sub_path:?} must not be an absolute path"
        )));
    }
    if relative.components().any(|c| c == Component::ParentDir) {
        return Err(SubPathError::Invalid(format!(
            "unable to provision SubPath {sub_path:?}: must not contain '..'"
        )));
    }
    let host_error = |what: &str, path: &Path, e: std::io::Error| {
        SubPathError::Host(format!("{what} {}: {e}", path.display()))
    };
    let root = fs::canonicalize(root).map_err(|e| host_error("resolving", root, e))?;
    let mode = fs::metadata(&root)
        .map_err(|e| host_error("reading", &root, e))?
        .permissions()
        .mode()
        & 0o7777;
    // Walk one component at a time, resolving what exists, so a symlink planted in the
    // volume cannot lead the creation outside it.
    let mut current = root.clone();
    for component in relative.components() {
        let Component::Normal(name) = component else {
            continue;
        };
        let next = current.join(name);
        match fs::symlink_metadata(&next) {
            Ok(_) => {
                current = fs::canonicalize(&next).map_err(|e| host_error("resolving", &next, e))?;
                if !current.starts_with(&root) {
                    return Err(SubPathError::Host(format!(
                        "subPath {} leads outside its volume, to {}",
                        next.display(),
                        current.display()
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(&next).map_err(|e| host_error("creating", &next, e))?;
                // `mkdir` applied the umask; give it the volume's own mode, as upstream.
                fs::set_permissions(&next, fs::Permissions::from_mode(mode))
                    .map_err(|e| host_error("setting mode of", &next, e))?;
                current = next;
            }
            Err(e) => return Err(host_error("reading", &next, e)),
        }
    }
    Ok(current)
}

/// Where a container's termination logs live: one file per start, numbered.
fn termination_log_dir(pod_dir: &Path, container_name: &str) -> PathBuf {
    pod_dir.join("containers").join(container_name)
}

/// The termination log file of the container's latest start (`container_mounts` made
/// it); read it after the container exits for its termination message. The path may not
/// exist if the container never started.
pub fn termination_log_path(pod_dir: &Path, container_name: &str) -> PathBuf {
    let dir = termination_log_dir(pod_dir, container_name);
    let latest = numbered_files(&dir).into_iter().max().unwrap_or(0);
    dir.join(latest.to_string())
}

fn numbered_files(dir: &Path) -> Vec<u64> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// A new, empty, world-writable termination log (the container may run as any user), one
/// number above the latest. The previous one is kept (its message may still be read for
/// `lastState`); older ones are removed.
fn new_termination_log(pod_dir: &Path, container_name: &str) -> Result<PathBuf> {
    let dir = termination_log_dir(pod_dir, container_name);
    fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let existing = numbered_files(&dir);
    let latest = existing.iter().copied().max();
    let next = latest.map_or(0, |n| n + 1);
    let path = dir.join(next.to_string());
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o666)
        .open(&path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666))
        .map_err(|e| Error::io(format!("setting mode of {}", path.display()), e))?;
    for old in existing.into_iter().filter(|n| Some(*n) != latest) {
        // A leftover file is harmless; it goes with the pod directory.
        let _ = fs::remove_file(dir.join(old.to_string()));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::HostVolume;
    use k8s_openapi::api::core::v1::{
        EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec, SecurityContext, VolumeMount,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn volume_mount(name: &str, path: &str) -> VolumeMount {
        VolumeMount {
            name: name.into(),
            mount_path: path.into(),
            ..VolumeMount::default()
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        pod_dir: PathBuf,
        volumes: PodVolumes,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let pod_dir = dir.path().join("pods/u1");
        let cache = pod_dir.join("volumes/kubernetes.io~empty-dir/cache");
        let config = pod_dir.join("volumes/kubernetes.io~configmap/config");
        fs::create_dir_all(&cache).unwrap();
        fs::create_dir_all(&config).unwrap();
        let volumes = PodVolumes {
            by_name: HashMap::from([
                (
                    "cache".to_string(),
                    HostVolume {
                        host_path: cache,
                        read_only: false,
                    },
                ),
                (
                    "config".to_string(),
                    HostVolume {
                        host_path: config,
                        read_only: true,
                    },
                ),
            ]),
        };
        Fixture {
            _dir: dir,
            pod_dir,
            volumes,
        }
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-1".into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec::default()),
            ..Pod::default()
        }
    }

    #[test]
    fn volume_mounts_hosts_and_termination_log() {
        let fx = fixture();
        let container = Container {
            name: "app".into(),
            volume_mounts: Some(vec![
                VolumeMount {
                    read_only: Some(true),
                    ..volume_mount("cache", "/cache")
                },
                volume_mount("config", "etc/app"),
                VolumeMount {
                    sub_path: Some("a/b".into()),
                    mount_propagation: Some("HostToContainer".into()),
                    ..volume_mount("cache", "/deep")
                },
            ]),
            termination_message_path: Some("/tmp/message".into()),
            ..Container::default()
        };
        let hosts = fx.pod_dir.join("etc-hosts");
        let mounts =
            container_mounts(&pod(), &container, &fx.volumes, &fx.pod_dir, Some(&hosts)).unwrap();
        let summary: Vec<(&str, bool, i32)> = mounts
            .iter()
            .map(|m| (m.container_path.as_str(), m.readonly, m.propagation))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("/cache", true, 0),
                ("/etc/app", true, 0),
                ("/deep", false, 1),
                ("/etc/hosts", false, 0),
                ("/tmp/message", false, 0),
            ]
        );
        let cache = &fx.volumes.by_name["cache"].host_path;
        let deep = fs::canonicalize(cache).unwrap().join("a/b");
        assert_eq!(mounts[2].host_path, deep.to_string_lossy());
        assert!(deep.is_dir());
        assert_eq!(
            fs::metadata(&deep).unwrap().permissions().mode() & 0o777,
            fs::metadata(cache).unwrap().permissions().mode() & 0o777
        );

        let log = PathBuf::from(&mounts[4].host_path);
        assert_eq!(log, termination_log_path(&fx.pod_dir, "app"));
        assert_eq!(
            fs::metadata(&log).unwrap().permissions().mode() & 0o777,
            0o666
        );
    }

    #[test]
    fn termination_logs_are_new_per_start_and_keep_the_previous() {
        let fx = fixture();
        let container = Container {
            name: "app".into(),
            ..Container::default()
        };
        let first = container_mounts(&pod(), &container, &fx.volumes, &fx.pod_dir, None).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].container_path, "/dev/termination-log");
        fs::write(&first[0].host_path, "crashed").unwrap();
        let before_restart = termination_log_path(&fx.pod_dir, "app");
        assert_eq!(fs::read_to_string(&before_restart).unwrap(), "crashed");

        container_mounts(&pod(), &container, &fx.volumes, &fx.pod_dir, None).unwrap();
        container_mounts(&pod(), &container, &fx.volumes, &fx.pod_dir, None).unwrap();
        let latest = termination_log_path(&fx.pod_dir, "app");
        assert_ne!(latest, before_restart);
        assert_eq!(fs::read_to_string(&latest).unwrap(), "");
        let dir = termination_log_dir(&fx.pod_dir, "app");
        let mut kept = numbered_files(&dir);
        kept.sort();
        assert_eq!(kept, vec![1, 2]);
    }

    #[test]
    fn etc_hosts_yields_to_a_volume_mounted_there() {
        let fx = fixture();
        let container = Container {
            name: "app".into(),
            volume_mounts: Some(vec![volume_mount("cache", "/etc/hosts")]),
            ..Container::default()
        };
        let hosts = fx.pod_dir.join("etc-hosts");
        let mounts =
            container_mounts(&pod(), &container, &fx.volumes, &fx.pod_dir, Some(&hosts)).unwrap();
        let hosts_mounts: Vec<_> = mounts
            .iter()
            .filter(|m| m.container_path == "/etc/hosts")
            .collect();
        assert_eq!(hosts_mounts.len(), 1);
        assert!(hosts_mounts[0].host_path.ends_with("cache"));
    }

    #[test]
    fn sub_path_expr_expands_pod_fields() {
        let fx = fixture();
        let container = Container {
            name: "app".into(),
            env: Some(vec![EnvVar {
                name: "POD_NAME".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        api_version: Some("v1".into()),
                        field_path: "metadata.name".into(),
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            }]),
            volume_mounts: Some(vec![VolumeMount {
                sub_path_expr: Some("logs/$(POD_NAME)".into()),
                ..volume_mount("cache", "/logs")
            }]),
            ..Container::default()
        };
        let mounts = container_mounts(&pod(), &container, &fx.volumes, &fx.pod_dir, None).unwrap();
        assert!(
            mounts[0].host_path.ends_with("cache/logs/web-1"),
            "{}",
            mounts[0].host_path
        );
    }

    #[test]
    fn refusals() {
        let fx = fixture();
        let with = |mount: VolumeMount| Container {
            name: "app".into(),
            volume_mounts: Some(vec![mount]),
            ..Container::default()
        };
        let err = |container: Container| {
            container_mounts(&pod(), &container, &fx.volumes, &fx.pod_dir, None)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(with(volume_mount("nope", "/x"))),
            "cannot find volume \"nope\" to mount into container \"app\""
        );
        assert_eq!(
            err(with(VolumeMount {
                sub_path: Some("/etc".into()),
                ..volume_mount("cache", "/x")
            })),
            "error SubPath \"/etc\" must not be an absolute path"
        );
        assert_eq!(
            err(with(VolumeMount {
                sub_path: Some("a/../../x".into()),
                ..volume_mount("cache", "/x")
            })),
            "unable to provision SubPath \"a/../../x\": must not contain '..'"
        );
        assert_eq!(
            err(with(VolumeMount {
                mount_propagation: Some("Bidirectional".into()),
                ..volume_mount("cache", "/x")
            })),
            "Bidirectional mount propagation is available only to privileged containers"
        );
        let privileged = Container {
            security_context: Some(SecurityContext {
                privileged: Some(true),
                ..SecurityContext::default()
            }),
            ..with(VolumeMount {
                mount_propagation: Some("Bidirectional".into()),
                ..volume_mount("cache", "/x")
            })
        };
        container_mounts(&pod(), &privileged, &fx.volumes, &fx.pod_dir, None).unwrap();
    }

    #[test]
    fn sub_paths_cannot_escape_through_symlinks() {
        let fx = fixture();
        let cache = &fx.volumes.by_name["cache"].host_path;
        std::os::unix::fs::symlink("/etc", cache.join("escape")).unwrap();
        let container = Container {
            name: "app".into(),
            volume_mounts: Some(vec![VolumeMount {
                sub_path: Some("escape/new".into()),
                ..volume_mount("cache", "/x")
            }]),
            ..Container::default()
        };
        let err = container_mounts(&pod(), &container, &fx.volumes, &fx.pod_dir, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "failed to create subPath directory for volumeMount \"cache\" of container \"app\""
        );
        assert!(!Path::new("/etc/new").exists());

        // Links that stay inside the volume are fine (configMap keys are such links).
        fs::create_dir(cache.join("real")).unwrap();
        std::os::unix::fs::symlink("real", cache.join("alias")).unwrap();
        let inside = sub_path_on_host(cache, "alias").unwrap();
        assert!(inside.ends_with("cache/real"));
    }
}
