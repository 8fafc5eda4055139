//! One containerd process: how it is started, how we learn that it listens or died, and
//! how it is stopped. Restart policy lives in the supervisor (`super`), not here.
//!
//! containerd must not outlive k3rs, even when k3rs is killed with SIGKILL and cannot
//! clean up: it runs as `setpriv --pdeathsig SIGKILL -- containerd ...` (setpriv execs
//! containerd, so the death signal stays armed in containerd itself). The kernel sends
//! that signal when the *thread* that forked the child exits, not the process, so every
//! containerd is forked by a dedicated spawner thread that lives exactly as long as its
//! supervisor. (A tokio worker would usually do, but `block_in_place` can turn a worker
//! into a blocking-pool thread that exits when idle, killing containerd with it.)
//! The runc shims are containerd's children and have no death signal, so containers keep
//! running when containerd stops; the next containerd re-attaches to their shims.

use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::socket::{self, SocketState};
use crate::{Error, Paths, Result};

type SpawnRequest = (Command, oneshot::Sender<std::io::Result<Child>>);

/// Forks containerd processes from one long-lived thread (see the module doc). Dropping
/// the spawner ends that thread, which kills any containerd it started that still runs:
/// stop containerd before dropping it.
pub struct Spawner {
    requests: std::sync::mpsc::Sender<SpawnRequest>,
}

impl Spawner {
    /// Start the spawner thread; must be called inside a tokio runtime, whose process
    /// driver then reaps the children.
    pub fn new() -> Result<Spawner> {
        let runtime = tokio::runtime::Handle::current();
        let (requests, incoming) = std::sync::mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("containerd-spawner".into())
            .spawn(move || {
                let _runtime = runtime.enter();
                for (mut command, reply) in incoming {
                    let _ = reply.send(command.spawn());
                }
            })
            .map_err(|e| Error::io("starting the containerd spawner thread", e))?;
        Ok(Spawner { requests })
    }

    async fn spawn(&self, command: Command) -> std::io::Result<Child> {
        let (reply, spawned) = oneshot::channel();
        let gone = || std::io::Error::other("the containerd spawner thread has stopped");
        self.requests.send((command, reply)).map_err(|_| gone())?;
        spawned.await.map_err(|_| gone())?
    }
}

/// A running containerd started by us.
pub struct Containerd {
    child: Child,
    pid: u32,
    started: Instant,
    log: PathBuf,
    /// Where this run's output starts in the log, for error messages.
    log_offset: u64,
}

/// containerd's log file (stdout and stderr, appended across restarts), as k3s keeps it.
pub fn log_path(paths: &Paths) -> PathBuf {
    paths.containerd_root.join("containerd.log")
}

impl Containerd {
    /// Start containerd with the config already written at `paths.containerd_config`.
    pub async fn start(spawner: &Spawner, paths: &Paths) -> Result<Containerd> {
        let log = log_path(paths);
        let mut log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| Error::io(format!("opening {}", log.display()), e))?;
        // A marker between runs makes the appended log readable after restarts.
        writeln!(
            log_file,
            "--- k3rs: starting containerd at {} ---",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
        .map_err(|e| Error::io(format!("writing {}", log.display()), e))?;
        let log_offset = log_file
            .metadata()
            .map_err(|e| Error::io(format!("reading {}", log.display()), e))?
            .len();
        let stderr = log_file
            .try_clone()
            .map_err(|e| Error::io(format!("opening {}", log.display()), e))?;

        let mut command = Command::new("setpriv");
        command
            .args(["--pdeathsig", "SIGKILL", "--", "containerd", "--config"])
            .arg(&paths.containerd_config)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(stderr)
            // Its own process group: a Ctrl-C on k3rs's terminal reaches only k3rs, which
            // then stops containerd itself, after the parts that use it.
            .process_group(0)
            .kill_on_drop(false);
        let child = spawner.spawn(command).await.map_err(|e| {
            let hint = if e.kind() == ErrorKind::NotFound {
                " (setpriv comes with util-linux)"
            } else {
                ""
            };
            Error::io(format!("starting containerd through setpriv{hint}"), e)
        })?;
        let pid = child.id().unwrap_or_default();
        Ok(Containerd {
            child,
            pid,
            started: Instant::now(),
            log,
            log_offset,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How long this process has been running.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Wait until containerd accepts connections on `socket`. Fails with the end of its
    /// log if it exits first or does not listen within `timeout`.
    pub async fn wait_listening(&mut self, socket: &Path, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .map_err(|e| Error::io("checking on containerd", e))?
            {
                return Err(Error::Runtime(format!(
                    "containerd exited ({status}) while starting; end of {}:\n{}",
                    self.log.display(),
                    self.log_tail()
                )));
            }
            if socket::probe(socket).await? == SocketState::Live {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let tail = self.log_tail();
                self.stop(Duration::from_secs(1)).await;
                return Err(Error::Runtime(format!(
                    "containerd did not listen on {} within {timeout:?}; end of {}:\n{tail}",
                    socket.display(),
                    self.log.display(),
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resolves when the process exits.
    pub async fn exited(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// The last few lines containerd wrote in this run, for error messages.
    pub fn log_tail(&self) -> String {
        const MAX_BYTES: u64 = 4096;
        const MAX_LINES: usize = 6;
        let read = || -> std::io::Result<String> {
            let mut file = std::fs::File::open(&self.log)?;
            let end = file.metadata()?.len();
            let start = self.log_offset.max(end.saturating_sub(MAX_BYTES));
            file.seek(SeekFrom::Start(start))?;
            let mut bytes = Vec::new();
            file.take(MAX_BYTES).read_to_end(&mut bytes)?;
            let text = String::from_utf8_lossy(&bytes);
            let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            // Reading from the middle of the file starts with a partial line.
            if start > self.log_offset && lines.len() > 1 {
                lines.remove(0);
            }
            let keep = lines.len().saturating_sub(MAX_LINES);
            Ok(lines[keep..].join("\n"))
        };
        match read() {
            Ok(text) if text.is_empty() => "(nothing logged)".into(),
            Ok(text) => text,
            Err(e) => format!("(log unreadable: {e})"),
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`. Containers keep running.
    pub async fn stop(&mut self, grace: Duration) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // `id()` is `None` once the child is reaped: never signal a recycled pid (or, with
        // pid 0, our own process group).
        let Some(pid) = self.child.id() else {
            return;
        };
        if let Err(err) = kill(Pid::from_raw(pid as i32), Signal::SIGTERM) {
            warn!(pid = self.pid, error = %err, "could not send SIGTERM to containerd");
        }
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => info!(pid = self.pid, %status, "containerd stopped"),
            Ok(Err(err)) => warn!(pid = self.pid, error = %err, "waiting for containerd"),
            Err(_) => {
                warn!(
                    pid = self.pid,
                    grace_secs = grace.as_secs(),
                    "containerd ignored SIGTERM; killing it"
                );
                if let Err(err) = self.child.start_kill() {
                    warn!(pid = self.pid, error = %err, "could not kill containerd");
                }
                let _ = self.child.wait().await;
            }
        }
    }
}
