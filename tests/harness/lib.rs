//! Test harness for end-to-end tests: starts real `k3rs server` processes on loopback
//! with a temporary data dir, and hands out kubectl invocations and `kube` clients.
//!
//! Every process is killed by its process id when the handle is dropped, so a failing
//! test leaves nothing running.

// Test tasks need no span: spawning them bare is fine.
#![allow(clippy::disallowed_methods)]

pub mod agent;
pub mod cluster;
pub mod fake_nodes;
pub mod wait;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `k3rs` binary, built once per test process.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "k3rs"])
            .current_dir(&root)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p k3rs failed");
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join("target"));
        target.join("debug").join("k3rs")
    })
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The ConfigMap the server publishes into every namespace in the background; tests that
/// compare lists of ConfigMaps leave it out.
pub const ROOT_CA: &str = "kube-root-ca.crt";

/// Directory of the versioned kubectl binaries the dispatcher picks from.
pub const KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";

/// A running (or stopped) `k3rs server`.
pub struct K3rs {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub kubeconfig: PathBuf,
    extra_args: Vec<String>,
    /// Run the agent (kubelet + containerd); most API tests start with `--disable-agent`.
    agent: bool,
}

impl K3rs {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("k3rs.log")
    }

    /// Start a server with default flags plus `extra`.
    pub fn start_with(extra: &[&str]) -> K3rs {
        let dir = tempfile::Builder::new()
            .prefix("k3rs-e2e-")
            .tempdir()
            .unwrap();
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        let mut server = K3rs {
            child: None,
            port: free_port(),
            kubeconfig,
            dir,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            agent: false,
        };
        server.spawn();
        server
    }

    pub fn start() -> K3rs {
        Self::start_with(&[])
    }

    /// Start a server that also runs the agent on its own node, with default flags plus
    /// `extra`; `prepare(dir, data_dir)` runs before the process starts (to put air-gap
    /// images in place). Agent tests use `agent::AgentServer`, which wraps this with the
    /// agent lock, the test images and the teardown of what the node leaves behind.
    pub fn start_agent(extra: &[&str], prepare: impl FnOnce(&Path, &Path)) -> K3rs {
        let dir = tempfile::Builder::new()
            .prefix("k3rs-e2e-")
            .tempdir()
            .unwrap();
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        let mut server = K3rs {
            child: None,
            port: free_port(),
            kubeconfig,
            dir,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            agent: true,
        };
        prepare(server.dir.path(), &server.data_dir());
        server.spawn();
        server
    }

    /// The command line used for this server (without the binary).
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "server".into(),
            "--data-dir".into(),
            self.data_dir().display().to_string(),
            "--https-listen-port".into(),
            self.port.to_string(),
            "--bind-address".into(),
            "127.0.0.1".into(),
            "--node-ip".into(),
            "127.0.0.1".into(),
            "--node-name".into(),
            "e2e-node".into(),
            "--write-kubeconfig".into(),
            self.kubeconfig.display().to_string(),
            // Keep the tests away from the machine's own /etc/rancher/k3rs.
            "--config".into(),
            self.dir.path().join("config.yaml").display().to_string(),
        ];
        if !self.agent {
            args.push("--disable-agent".into());
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    fn spawn(&mut self) {
        let config = self.dir.path().join("config.yaml");
        if !config.exists() {
            std::fs::write(&config, "").unwrap();
        }
        let _ = std::fs::remove_file(&self.kubeconfig);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new(binary())
            .args(self.args())
            .env_remove("KUBECONFIG")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn k3rs");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Wait until the kubeconfig exists and `/readyz` answers.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("k3rs exited early with {status}; log:\n{}", self.log());
                }
            }
            if self.kubeconfig.exists() {
                let out = self.kubectl(&["get", "--raw", "/readyz"]);
                if out.status.success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "k3rs not ready in 30s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([signal, &pid.to_string()])
                .status();
        }
    }

    /// SIGTERM and wait (up to 15 s) for the process to exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("-TERM");
        let mut child = self.child.take().expect("server running");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("k3rs did not stop within 15s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again on the same data dir and port.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }

    /// Start again after a stop or kill.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "server still running");
        self.spawn();
    }

    /// Run the kubectl dispatcher (`kubectl` on PATH) against this server.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_cmd("kubectl", args, None)
    }

    /// Run a specific kubectl release, e.g. `"1.32"`.
    pub fn kubectl_version(&self, version: &str, args: &[&str]) -> Output {
        let bin = format!("{KUBECTL_DIR}/kubectl.{version}");
        self.kubectl_cmd(&bin, args, None)
    }

    /// Run kubectl `version` (e.g. `Some("1.32")`), or the dispatcher when `None`: the
    /// tests that run each scenario with several kubectl releases loop over these.
    pub fn kubectl_release(&self, version: Option<&str>, args: &[&str]) -> Output {
        match version {
            None => self.kubectl(args),
            Some(version) => self.kubectl_version(version, args),
        }
    }

    /// Run kubectl with `stdin` piped in.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        self.kubectl_cmd("kubectl", args, Some(stdin))
    }

    fn kubectl_cmd(&self, bin: &str, args: &[&str], stdin: Option<&str>) -> Output {
        run_kubectl(bin, &self.kubeconfig, self.dir.path(), args, stdin)
    }

    /// Write `contents` to a file in the server's temp dir; returns its path.
    pub fn write_file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// A stored object as `kubectl get RESOURCE NAME -o json` prints it.
    pub fn stored(&self, resource: &str, name: &str) -> serde_json::Value {
        let json = ok(self.kubectl(&["get", resource, name, "-o", "json"]));
        serde_json::from_str(&json).unwrap()
    }

    /// A `kube::Client` authenticated as the admin kubeconfig's user.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }
}

impl Drop for K3rs {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Output of a command as text, panicking with both streams if it failed.
pub fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Standard error of a command that must have failed.
pub fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "command unexpectedly succeeded:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run `bin` (kubectl) with `kubeconfig`, a discovery cache and HOME of its own under
/// `dir` (each server or cluster gets its own), feeding `stdin` if given.
pub(crate) fn run_kubectl(
    bin: &str,
    kubeconfig: &Path,
    dir: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    use std::io::Write;
    let mut child = Command::new(bin)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("KUBECACHEDIR", dir.join("kubecache"))
        .env("HOME", dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}
