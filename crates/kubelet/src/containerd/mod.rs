//! containerd supervision, as k3s does it: a generated config (`config`), our own root,
//! state dir and socket derived from the node's paths, one containerd process
//! (`process`) restarted with a short back-off whenever it dies, and stopped on shutdown.
//!
//! Stopping containerd never stops containers: their runc shims are separate processes,
//! and the next containerd re-attaches to them. This module must not touch containers,
//! images or CNI; it only keeps the runtime process alive.

pub mod config;
pub mod process;
pub mod socket;

use std::path::PathBuf;
use std::time::Duration;

use k3rs_core::Shutdown;
use tracing::{error, info, warn, Instrument};

use crate::{Error, Paths, Result};
use process::{Containerd, Spawner};
use socket::SocketState;

/// How long a fresh containerd may take to listen on its socket at the first start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// SIGTERM to SIGKILL on shutdown.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often a containerd we did not start is checked for being gone.
const ADOPTED_PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// A run at least this long counts as healthy: after it, the back-off starts over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// The longest wait between two starts.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(10);

/// Start containerd for this node (or reuse one already serving our socket) and keep it
/// running until `shutdown`. Returns the CRI socket path.
///
/// Returns once containerd listens, so a broken installation or config fails here with
/// containerd's own error message; restarts after that happen in the background.
pub async fn supervise(paths: &Paths, pause_image: &str, shutdown: Shutdown) -> Result<PathBuf> {
    for dir in [
        &paths.containerd_root,
        &paths.containerd_state,
        &paths.cni_conf_dir,
    ] {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let restrict_oom_score_adj = !config::may_lower_oom_score_adj();
    if restrict_oom_score_adj {
        info!("no CAP_SYS_RESOURCE: pods keep containerd's oom_score_adj or higher");
    }
    config::write(
        paths,
        &config::render(paths, pause_image, restrict_oom_score_adj),
    )?;

    let socket = paths.containerd_socket();
    let spawner = Spawner::new()?;
    let current = match start(&spawner, paths).await? {
        Current::Ours(mut containerd) => {
            containerd.wait_listening(&socket, START_TIMEOUT).await?;
            info!(
                pid = containerd.pid(),
                socket = %socket.display(),
                log = %process::log_path(paths).display(),
                "containerd started"
            );
            Current::Ours(containerd)
        }
        adopted => adopted,
    };

    let supervisor = Supervisor {
        spawner,
        paths: paths.clone(),
    };
    k3rs_core::task::spawn(
        supervisor
            .run(current, shutdown)
            .instrument(tracing::info_span!("containerd")),
    );
    Ok(socket)
}

/// The containerd serving our socket.
enum Current {
    /// Started and supervised by us.
    Ours(Box<Containerd>),
    /// Someone else's (say, left over from a previous k3rs that was not started through
    /// setpriv): used as is, and replaced by ours once it goes away.
    Adopted,
}

/// Start ours unless a live containerd already serves the socket; a stale socket file
/// is removed first so containerd can bind it.
async fn start(spawner: &Spawner, paths: &Paths) -> Result<Current> {
    let socket = paths.containerd_socket();
    match socket::clear_stale(&socket).await? {
        SocketState::Live => {
            warn!(socket = %socket.display(), "a containerd not started by this agent already serves the socket; using it");
            Ok(Current::Adopted)
        }
        SocketState::Stale => {
            info!(socket = %socket.display(), "removed a stale containerd socket");
            Ok(Current::Ours(Box::new(
                Containerd::start(spawner, paths).await?,
            )))
        }
        SocketState::Absent => Ok(Current::Ours(Box::new(
            Containerd::start(spawner, paths).await?,
        ))),
    }
}

struct Supervisor {
    /// Kept (with its thread) until containerd is stopped: see `process::Spawner`.
    spawner: Spawner,
    paths: Paths,
}

impl Supervisor {
    async fn run(self, mut current: Current, shutdown: Shutdown) {
        let mut failures = 0u32;
        loop {
            match &mut current {
                Current::Ours(containerd) => {
                    tokio::select! {
                        exit = containerd.exited() => {
                            let ran = containerd.uptime();
                            failures = if ran >= HEALTHY_RUN { 1 } else { failures.saturating_add(1) };
                            let status = match exit {
                                Ok(status) => status.to_string(),
                                Err(err) => format!("unknown status ({err})"),
                            };
                            warn!(
                                pid = containerd.pid(),
                                %status,
                                ran_secs = ran.as_secs(),
                                log_tail = %containerd.log_tail().replace('\n', " | "),
                                "containerd exited"
                            );
                        }
                        _ = shutdown.cancelled() => {
                            containerd.stop(STOP_GRACE).await;
                            return;
                        }
                    }
                }
                Current::Adopted => {
                    tokio::select! {
                        _ = tokio::time::sleep(ADOPTED_PROBE_INTERVAL) => {}
                        _ = shutdown.cancelled() => return,
                    }
                    match socket::probe(&self.paths.containerd_socket()).await {
                        Ok(SocketState::Live) => continue,
                        Ok(_) => info!("the adopted containerd is gone; starting our own"),
                        Err(err) => {
                            warn!(error = %err, "probing the containerd socket");
                            continue;
                        }
                    }
                }
            }

            // Not running: start one, after a back-off that grows while starts keep failing.
            loop {
                let delay = restart_delay(failures);
                info!(
                    delay_ms = delay.as_millis() as u64,
                    "restarting containerd after a back-off"
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return,
                }
                match start(&self.spawner, &self.paths).await {
                    Ok(next) => {
                        if let Current::Ours(containerd) = &next {
                            info!(pid = containerd.pid(), "containerd restarted");
                        }
                        current = next;
                        break;
                    }
                    Err(err) => {
                        failures = failures.saturating_add(1);
                        error!(error = %err, "could not restart containerd");
                    }
                }
            }
        }
    }
}

/// Back-off before the next start after `failures` consecutive short-lived runs (or
/// failed starts): 0.5 s, doubling up to 10 s, so a containerd that cannot start does
/// not spin while one that crashed once is back almost at once.
fn restart_delay(failures: u32) -> Duration {
    let half_seconds = 1u64 << failures.saturating_sub(1).min(5);
    Duration::from_millis(500 * half_seconds).min(MAX_RESTART_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delay_grows_then_caps() {
        let millis: Vec<u128> = (1..9).map(|n| restart_delay(n).as_millis()).collect();
        assert_eq!(millis, [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
        assert_eq!(restart_delay(u32::MAX), MAX_RESTART_DELAY);
    }
}

/// Against the real thing: needs root, containerd, runc, setpriv and what
/// `scripts/build-images.sh` needs (busybox-static). Run with `--ignored`.
#[cfg(test)]
mod live_tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::cri::Cri;
    use crate::runtime::RuntimeService;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs root, containerd, runc and busybox-static"]
    async fn supervised_containerd_serves_cri_with_imported_images() {
        let data = tempfile::tempdir().unwrap();
        let node = format!("live-test-{}", std::process::id());
        let paths = Paths::new(data.path(), &node);
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-images.sh");
        let built = std::process::Command::new(&script)
            .arg(&paths.images)
            .status()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(built.success(), "{} failed", script.display());

        let shutdown = Shutdown::new();
        let socket = supervise(&paths, crate::DEFAULT_PAUSE_IMAGE, shutdown.clone())
            .await
            .unwrap();
        assert_eq!(socket, paths.containerd_socket());
        let cri = Cri::connect(&socket).unwrap();
        let version = cri.wait_ready(Duration::from_secs(30)).await.unwrap();
        assert!(version.starts_with("containerd://"), "{version}");

        // The pause image comes from k3rs itself, once: the script builds busybox only.
        assert!(crate::images::import_builtin_pause(&cri).await.unwrap());
        assert!(!crate::images::import_builtin_pause(&cri).await.unwrap());
        assert_eq!(
            crate::images::import_present(&paths, &socket)
                .await
                .unwrap(),
            1
        );
        // Already imported: nothing to do the second time.
        assert_eq!(
            crate::images::import_present(&paths, &socket)
                .await
                .unwrap(),
            0
        );
        let listed = RuntimeService::list_images(&cri).await.unwrap();
        let tags: BTreeSet<String> = listed.into_iter().flat_map(|i| i.repo_tags).collect();
        for name in [
            "docker.io/library/busybox:1.35",
            "docker.io/library/busybox:latest",
            crate::DEFAULT_PAUSE_IMAGE,
        ] {
            assert!(tags.contains(name), "{name} missing from {tags:?}");
        }

        // Shutdown stops containerd: the socket stops answering.
        shutdown.trigger();
        let deadline = std::time::Instant::now() + STOP_GRACE + Duration::from_secs(5);
        // A connection reset (the listener closing under a pending connect) means the
        // same as a refused one here: containerd is going away.
        while matches!(socket::probe(&socket).await, Ok(SocketState::Live)) {
            assert!(std::time::Instant::now() < deadline, "containerd still up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = std::fs::remove_dir_all(paths.containerd_state.parent().unwrap());
    }
}
