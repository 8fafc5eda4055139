//! `GET /containerLogs/{namespace}/{pod}/{container}`: a container's log, read from the
//! CRI log files containerd writes (the pod worker points each sandbox at
//! `paths.pod_log_dir(ns, name, uid)` and each container instance at
//! `<container>/<restartCount>.log` inside it).
//!
//! Which instance to read follows upstream's kubelet: the Pod's status names the running
//! or last terminated container (by ID), and `previous` the last terminated one, with
//! upstream's messages when there is none. When the Pod cannot be read from the API, the
//! files alone decide: the newest is the current instance, the one before it the previous.
//! `follow` keeps reading until that container is no longer running in the runtime and
//! its file stopped growing, or until the client goes away.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, StatusCode};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::log_format::{tail_start, LogOptions, Renderer};
use super::lookup::{self, PodRef};
use super::{HttpError, SharedState};
use crate::cri::api;
use crate::runtime::RuntimeService;

const READ_CHUNK: usize = 64 * 1024;
/// How often a followed log that reached its end is checked for new bytes.
const FOLLOW_POLL: Duration = Duration::from_millis(200);
/// How often, while following, the runtime is asked whether the container still runs.
const FOLLOW_STATE_CHECK: Duration = Duration::from_secs(1);

/// The log file chosen for a request, and the runtime container writing it (if known).
struct Source {
    path: PathBuf,
    container_id: Option<String>,
}

pub async fn container_logs(
    State(state): State<SharedState>,
    UrlPath((namespace, pod, container)): UrlPath<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    match serve(state, namespace, pod, container, query).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn serve(
    state: SharedState,
    namespace: String,
    pod_name: String,
    container: String,
    query: Option<String>,
) -> Result<Response, HttpError> {
    let query = query.unwrap_or_default();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let options = LogOptions::from_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        chrono::Utc::now(),
    )
    .map_err(HttpError::bad_request)?;

    let source = choose_source(&state, &namespace, &pod_name, &container, options.previous).await?;
    debug!(path = %source.path.display(), follow = options.follow, "serving container log");
    let file = tokio::fs::File::open(&source.path).await.map_err(|e| {
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to open log file {:?}: {e}", source.path),
        )
    })?;

    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
    let runtime = state.config.runtime.clone();
    let shutdown = state.shutdown.clone();
    k3rs_core::task::spawn(async move {
        let copy = copy_log(
            file,
            &options,
            runtime.as_ref(),
            source.container_id.as_deref(),
            &tx,
        );
        tokio::select! {
            result = copy => {
                if let Err(err) = result {
                    warn!(path = %source.path.display(), error = %err, "reading container log");
                    let _ = tx.send(Err(err)).await;
                }
            }
            _ = shutdown.cancelled() => {}
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response())
}

/// Decide which file answers the request, or why none does.
async fn choose_source(
    state: &SharedState,
    namespace: &str,
    pod_name: &str,
    container: &str,
    previous: bool,
) -> Result<Source, HttpError> {
    let pods: kube::Api<Pod> = kube::Api::namespaced(state.config.client.clone(), namespace);
    let pod = match pods.get_opt(pod_name).await {
        Ok(pod) => pod,
        Err(err) => {
            // The API being unreachable must not hide logs that are right here.
            warn!(error = %err, "reading the pod for its log; choosing from the files alone");
            None
        }
    };
    let Some(pod) = pod else {
        return source_from_files(state, namespace, pod_name, container, previous).await;
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let spec = pod.spec.as_ref();
    let in_spec = spec.is_some_and(|s| {
        s.containers.iter().any(|c| c.name == container)
            || s.init_containers
                .iter()
                .flatten()
                .any(|c| c.name == container)
            || s.ephemeral_containers
                .iter()
                .flatten()
                .any(|c| c.name == container)
    });
    if !in_spec {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            format!("container {container:?} not found in pod {pod_name:?}"),
        ));
    }
    let wanted = wanted_container_id(&pod, container, previous).map_err(HttpError::bad_request)?;
    let pod_ref = PodRef {
        namespace: namespace.to_string(),
        name: pod_name.to_string(),
        uid: Some(uid.clone()),
    };
    let instances = lookup::container_instances(state.config.runtime.as_ref(), &pod_ref, container)
        .await
        .map_err(HttpError::internal)?;
    let dir = state
        .config
        .paths
        .pod_log_dir(namespace, pod_name, &uid)
        .join(container);
    if let Some(instance) = instances.iter().find(|c| c.id == wanted) {
        let path = dir.join(format!("{}.log", lookup::restart_count(instance)));
        if path.exists() {
            return Ok(Source {
                path,
                container_id: Some(instance.id.clone()),
            });
        }
    }
    // The runtime no longer has that container (or its file moved): fall back to the files.
    let files = log_files(&dir).map_err(|e| HttpError::internal(e.to_string()))?;
    let restart = pick_file(&files, previous, false)
        .ok_or_else(|| HttpError::bad_request(not_available(container, pod_name, previous)))?;
    Ok(Source {
        path: dir.join(format!("{restart}.log")),
        container_id: None,
    })
}

/// Without the Pod: find its log directory by name, newest sandbox first.
async fn source_from_files(
    state: &SharedState,
    namespace: &str,
    pod_name: &str,
    container: &str,
    previous: bool,
) -> Result<Source, HttpError> {
    let pod_ref = PodRef {
        namespace: namespace.to_string(),
        name: pod_name.to_string(),
        uid: None,
    };
    let sandbox_uid = lookup::sandbox(state.config.runtime.as_ref(), &pod_ref)
        .await
        .ok()
        .flatten()
        .and_then(|s| s.labels.get(crate::cri::labels::POD_UID).cloned());
    let dir = pod_log_dir(
        &state.config.paths.pod_logs,
        namespace,
        pod_name,
        sandbox_uid.as_deref(),
    )
    .map_err(|e| HttpError::internal(e.to_string()))?
    .ok_or_else(|| {
        HttpError::new(
            StatusCode::NOT_FOUND,
            format!("pod {pod_name:?} does not exist"),
        )
    })?
    .join(container);
    let files = log_files(&dir).map_err(|e| HttpError::internal(e.to_string()))?;
    let uid = dir
        .parent()
        .and_then(|d| d.file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(&format!("{namespace}_{pod_name}_")))
        .map(str::to_string);
    let instances = lookup::container_instances(
        state.config.runtime.as_ref(),
        &PodRef { uid, ..pod_ref },
        container,
    )
    .await
    .unwrap_or_default();
    let newest_live = match (files.last(), instances.first()) {
        (Some(newest), Some(instance)) => {
            lookup::restart_count(instance) == *newest && is_live(instance)
        }
        _ => false,
    };
    let restart = pick_file(&files, previous, newest_live)
        .ok_or_else(|| HttpError::bad_request(not_available(container, pod_name, previous)))?;
    let container_id = instances
        .iter()
        .find(|c| lookup::restart_count(c) == restart)
        .map(|c| c.id.clone());
    Ok(Source {
        path: dir.join(format!("{restart}.log")),
        container_id,
    })
}

fn is_live(container: &api::Container) -> bool {
    container.state == api::ContainerState::ContainerRunning as i32
        || container.state == api::ContainerState::ContainerCreated as i32
}

fn not_available(container: &str, pod: &str, previous: bool) -> String {
    if previous {
        format!("previous terminated container {container:?} in pod {pod:?} not found")
    } else {
        format!("container {container:?} in pod {pod:?} is waiting to start - no logs yet")
    }
}

/// The runtime container whose log the request wants, from the Pod's status, with
/// upstream's kubelet's messages when there is none to read.
fn wanted_container_id(pod: &Pod, container: &str, previous: bool) -> Result<String, String> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.as_ref();
    let statuses = status.into_iter().flat_map(|s| {
        s.container_statuses
            .iter()
            .flatten()
            .chain(s.init_container_statuses.iter().flatten())
            .chain(s.ephemeral_container_statuses.iter().flatten())
    });
    let found: Option<&ContainerStatus> = statuses.into_iter().find(|s| s.name == container);
    let Some(found) = found else {
        return Err(format!(
            "container {container:?} in pod {pod_name:?} is waiting to start - no logs yet"
        ));
    };
    let state = found.state.as_ref();
    let last_terminated = found
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.container_id.as_deref())
        .filter(|id| !id.is_empty());
    let running = state.and_then(|s| s.running.as_ref()).is_some();
    let terminated = state.and_then(|s| s.terminated.as_ref());
    let waiting = state.and_then(|s| s.waiting.as_ref());
    let id = if previous {
        last_terminated.ok_or_else(|| {
            format!("previous terminated container {container:?} in pod {pod_name:?} not found")
        })?
    } else if running {
        found.container_id.as_deref().unwrap_or_default()
    } else if let Some(terminated) = terminated {
        match terminated
            .container_id
            .as_deref()
            .filter(|id| !id.is_empty())
        {
            Some(id) => id,
            None => last_terminated.ok_or_else(|| {
                format!("container {container:?} in pod {pod_name:?} is terminated")
            })?,
        }
    } else if let Some(id) = last_terminated {
        id
    } else if let Some(waiting) = waiting {
        let reason = waiting.reason.as_deref().unwrap_or_default();
        let why = match reason {
            "ErrImagePull" => "image can't be pulled".to_string(),
            "ImagePullBackOff" => "trying and failing to pull image".to_string(),
            other => other.to_string(),
        };
        return Err(format!(
            "container {container:?} in pod {pod_name:?} is waiting to start: {why}"
        ));
    } else {
        return Err(format!(
            "container {container:?} in pod {pod_name:?} is waiting to start - no logs yet"
        ));
    };
    // Status IDs carry the runtime's scheme: `containerd://<id>`.
    Ok(id.split_once("://").map_or(id, |(_, id)| id).to_string())
}

/// The log directory of a pod by namespace and name: the one of `uid` when given and
/// present, else the most recently changed one.
fn pod_log_dir(
    logs: &Path,
    namespace: &str,
    name: &str,
    uid: Option<&str>,
) -> std::io::Result<Option<PathBuf>> {
    let prefix = format!("{namespace}_{name}_");
    let entries = match std::fs::read_dir(logs) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut candidates = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        // A pod named `web` must not pick up `web_x`'s logs: uids have no underscore.
        if rest.contains('_') {
            continue;
        }
        if uid == Some(rest) {
            return Ok(Some(entry.path()));
        }
        let changed = entry.metadata()?.modified()?;
        candidates.push((changed, entry.path()));
    }
    Ok(candidates.into_iter().max().map(|(_, path)| path))
}

/// The restart counts that have a log file in a container's directory, ascending.
fn log_files(dir: &Path) -> std::io::Result<Vec<u32>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut restarts = Vec::new();
    for entry in entries {
        if let Some(n) = entry?.file_name().to_str().and_then(restart_of_file) {
            restarts.push(n);
        }
    }
    restarts.sort_unstable();
    Ok(restarts)
}

/// `3.log` → 3; anything else (rotated files, temporaries) is not an instance's log.
fn restart_of_file(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".log")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Choose among the instances' files (ascending): the newest for the current log; for
/// `previous`, the newest that has terminated, i.e. skipping the newest while it is live.
fn pick_file(files: &[u32], previous: bool, newest_live: bool) -> Option<u32> {
    match (previous, newest_live) {
        (false, _) | (true, false) => files.last().copied(),
        (true, true) => files.len().checked_sub(2).map(|i| files[i]),
    }
}

/// Send the log to the client: the tail, then (with `follow`) what is appended until the
/// container stops. Returns when done or when the client went away.
async fn copy_log(
    mut file: tokio::fs::File,
    options: &LogOptions,
    runtime: &dyn RuntimeService,
    container_id: Option<&str>,
    tx: &mpsc::Sender<std::io::Result<Bytes>>,
) -> std::io::Result<()> {
    if let Some(lines) = options.tail_lines {
        let start = find_tail_start(&mut file, lines).await?;
        file.seek(std::io::SeekFrom::Start(start)).await?;
    }
    let mut renderer = Renderer::new(options);
    let mut buffer = vec![0u8; READ_CHUNK];
    let mut out = Vec::with_capacity(READ_CHUNK);
    let mut last_state_check: Option<tokio::time::Instant> = None;
    // Set once the container was seen stopped: the next time the end of the file is
    // reached (after a pause for its last words to land), the log is complete.
    let mut stopped = false;
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            if options.follow && !stopped {
                if last_state_check.is_none_or(|at| at.elapsed() >= FOLLOW_STATE_CHECK) {
                    last_state_check = Some(tokio::time::Instant::now());
                    stopped = !container_running(runtime, container_id).await;
                }
                tokio::select! {
                    _ = tokio::time::sleep(FOLLOW_POLL) => continue,
                    _ = tx.closed() => return Ok(()),
                }
            }
            renderer.finish(&mut out);
            if !out.is_empty() {
                let _ = tx.send(Ok(Bytes::from(out))).await;
            }
            return Ok(());
        }
        renderer.feed(&buffer[..n], &mut out);
        if !out.is_empty() {
            if tx
                .send(Ok(Bytes::from(std::mem::take(&mut out))))
                .await
                .is_err()
            {
                return Ok(());
            }
            out.reserve(READ_CHUNK);
        }
        if renderer.done() {
            return Ok(());
        }
    }
}

/// Whether the runtime still runs the container (unknown containers do not run).
async fn container_running(runtime: &dyn RuntimeService, container_id: Option<&str>) -> bool {
    let Some(id) = container_id else {
        return false;
    };
    let filter = api::ContainerFilter {
        id: id.to_string(),
        ..Default::default()
    };
    match runtime.list_containers(Some(filter)).await {
        Ok(containers) => containers.iter().any(is_live),
        // A runtime restart must not end a follow: keep waiting.
        Err(_) => true,
    }
}

/// The offset where the last `lines` lines of the file start, reading backwards in
/// growing windows so a short tail of a long log reads little.
async fn find_tail_start(file: &mut tokio::fs::File, lines: u64) -> std::io::Result<u64> {
    let size = file.metadata().await?.len();
    let mut window_size = READ_CHUNK as u64;
    loop {
        let start = size.saturating_sub(window_size);
        file.seek(std::io::SeekFrom::Start(start)).await?;
        let mut window = Vec::with_capacity((size - start) as usize);
        (&mut *file)
            .take(size - start)
            .read_to_end(&mut window)
            .await?;
        if let Some(offset) = tail_start(&window, start == 0, lines) {
            return Ok(start + offset as u64);
        }
        window_size *= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
        PodStatus,
    };

    #[test]
    fn log_file_names() {
        assert_eq!(restart_of_file("0.log"), Some(0));
        assert_eq!(restart_of_file("12.log"), Some(12));
        assert_eq!(restart_of_file("0.log.20240101-000000"), None);
        assert_eq!(restart_of_file(".log"), None);
        assert_eq!(restart_of_file("x.log"), None);
    }

    #[test]
    fn current_and_previous_files() {
        assert_eq!(pick_file(&[], false, false), None);
        assert_eq!(pick_file(&[0, 1, 2], false, true), Some(2));
        assert_eq!(pick_file(&[0, 1, 2], true, true), Some(1));
        // Crash-looping: the newest instance is dead, so it is also the previous one.
        assert_eq!(pick_file(&[0, 1, 2], true, false), Some(2));
        assert_eq!(pick_file(&[0], true, true), None);
    }

    #[test]
    fn pod_directories_by_name_and_uid() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "default_web_aaa",
            "default_web_bbb",
            "default_web_x_ccc",
            "other_web_ddd",
        ] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        let found = |uid| {
            pod_log_dir(dir.path(), "default", "web", uid)
                .unwrap()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        };
        assert_eq!(found(Some("bbb")).as_deref(), Some("default_web_bbb"));
        assert!(found(None).unwrap().starts_with("default_web_"));
        assert_ne!(found(None).as_deref(), Some("default_web_x_ccc"));
        assert_eq!(
            pod_log_dir(dir.path(), "default", "nope", None).unwrap(),
            None
        );
        assert_eq!(
            pod_log_dir(&dir.path().join("missing"), "default", "web", None).unwrap(),
            None
        );
    }

    fn pod(status: ContainerStatus) -> Pod {
        Pod {
            metadata: kube::api::ObjectMeta {
                name: Some("web".into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                container_statuses: Some(vec![status]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn terminated(id: &str) -> ContainerState {
        ContainerState {
            terminated: Some(ContainerStateTerminated {
                container_id: Some(id.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn status_names_the_container_as_upstream() {
        let running = ContainerStatus {
            name: "app".into(),
            container_id: Some("containerd://bbb".into()),
            state: Some(ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..Default::default()
            }),
            last_state: Some(terminated("containerd://aaa")),
            ..Default::default()
        };
        let p = pod(running.clone());
        assert_eq!(wanted_container_id(&p, "app", false).unwrap(), "bbb");
        assert_eq!(wanted_container_id(&p, "app", true).unwrap(), "aaa");

        let fresh = ContainerStatus {
            last_state: None,
            ..running
        };
        assert_eq!(
            wanted_container_id(&pod(fresh), "app", true).unwrap_err(),
            "previous terminated container \"app\" in pod \"web\" not found"
        );

        let crash_looping = ContainerStatus {
            name: "app".into(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("CrashLoopBackOff".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            last_state: Some(terminated("containerd://ccc")),
            ..Default::default()
        };
        let p = pod(crash_looping);
        assert_eq!(wanted_container_id(&p, "app", false).unwrap(), "ccc");
        assert_eq!(wanted_container_id(&p, "app", true).unwrap(), "ccc");

        let creating = ContainerStatus {
            name: "app".into(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("ContainerCreating".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            wanted_container_id(&pod(creating), "app", false).unwrap_err(),
            "container \"app\" in pod \"web\" is waiting to start: ContainerCreating"
        );
        assert!(
            wanted_container_id(&pod(ContainerStatus::default()), "app", false)
                .unwrap_err()
                .contains("no logs yet")
        );
    }
}
