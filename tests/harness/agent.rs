//! Servers that also run the agent on their own node (containerd, runc, CNI, kubelet), for
//! the `agent_*` end-to-end tests. They need root and the real runtime; a missing piece
//! fails the test with a message saying what to install, it never skips.
//!
//! One agent at a time: every agent owns the machine's `cni0` bridge, `10.42.0.0/24` and
//! the netns and cgroup trees its pods create, so an exclusive lock on [`LOCK_PATH`] is held
//! for the whole life of a server, across tests in one binary and across test binaries.
//! Each server gets its own node name (its cgroup parent and `/run/k3rs/<node>` follow)
//! and its own kubelet port.
//!
//! Stopping k3rs stops containerd but, by design, not the containers, so dropping an
//! [`AgentServer`] (also while a test panics) stops the server and then removes what the
//! node left behind: runc shims and container processes (by process id), cgroups, mounts,
//! the pods' network namespaces (found by the namespace inode of their processes; their
//! veths go with them), `cni0` if this server created it, and `/run/k3rs/<node>`. What a
//! server will leave is written to [`FOOTPRINT_PATH`] before it starts, so the next lock
//! holder cleans up after a test process that was killed before it could.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ContainerStatus, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::Api;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{free_port, ok, K3rs};

/// Hard eviction thresholds for test nodes. Upstream's default `nodefs.available<10%`
/// turns a CI machine whose disk is 90 % full (a fresh build fills it) into a
/// DiskPressure node whose pods are never scheduled; the tests are about everything
/// else, so they only guard against a really full disk.
pub const EVICTION_HARD: &str =
    "eviction-hard=memory.available<100Mi,nodefs.available<512Mi,imagefs.available<512Mi";

/// Held (exclusively) for the whole life of an agent server.
pub const LOCK_PATH: &str = "/tmp/k3rs-e2e-agent.lock";
/// What the current lock holder's server will leave behind, removed after its teardown.
pub const FOOTPRINT_PATH: &str = "/tmp/k3rs-e2e-agent.footprint.json";
/// Pod images the agent imports at start (built by `scripts/build-images.sh`). No pause
/// image: the agent carries its own, so the tests show a node needs none from outside.
pub const IMAGE_TARBALLS: &[&str] = &["busybox.tar"];
/// The image every agent test runs; present on the node, never pulled.
pub const BUSYBOX: &str = "busybox:1.35";
/// Where network namespaces of pod sandboxes are mounted by containerd.
const NETNS_DIR: &str = "/var/run/netns";
const BRIDGE: &str = "cni0";

/// Everything a test waits for in a pod gets this long, unless it says otherwise.
pub const POD_WAIT: Duration = Duration::from_secs(60);

/// The machine state one agent server may leave behind, recorded before it starts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Footprint {
    pub node: String,
    /// The server's temp dir (data dir, logs, kubeconfig); removed by a crash cleanup.
    pub dir: PathBuf,
    pub data_dir: PathBuf,
    /// `/run/k3rs/<node>`: containerd state and socket, host-local IPAM state.
    pub run_dir: PathBuf,
    /// Whether `cni0` existed before (then it is someone else's and stays).
    pub bridge_existed: bool,
}

impl Footprint {
    fn record(node: &str, dir: &Path, data_dir: &Path) -> Footprint {
        Footprint {
            node: node.to_string(),
            dir: dir.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            run_dir: run_dir(node),
            bridge_existed: link_exists(BRIDGE),
        }
    }
}

/// `/run/k3rs/<node>`, as `crates/kubelet/src/paths.rs` derives it.
pub fn run_dir(node: &str) -> PathBuf {
    PathBuf::from("/run/k3rs").join(node)
}

/// A `k3rs server` running the agent, with the agent lock held. Derefs to [`K3rs`].
pub struct AgentServer {
    // Field order is drop order: the server's temp dir goes before the lock is released.
    server: K3rs,
    /// This server's node name (unique per server).
    pub node: String,
    /// The kubelet API port (`--kubelet-arg port=N`).
    pub kubelet_port: u16,
    footprint: Footprint,
    _lock: File,
}

impl Deref for AgentServer {
    type Target = K3rs;
    fn deref(&self) -> &K3rs {
        &self.server
    }
}

impl DerefMut for AgentServer {
    fn deref_mut(&mut self) -> &mut K3rs {
        &mut self.server
    }
}

impl AgentServer {
    /// Start a server with its agent and default flags.
    pub fn start() -> AgentServer {
        Self::start_with(&[])
    }

    /// Start a server with its agent and `extra` flags. Takes the agent lock (waiting for
    /// other agent tests), cleans up after a crashed earlier holder, puts the test images
    /// into the data dir, and returns once the API answers (the node may not be Ready yet:
    /// see [`AgentServer::wait_node_ready`]).
    pub fn start_with(extra: &[&str]) -> AgentServer {
        check_prerequisites();
        let images = test_images();
        let lock = lock_exclusive(Path::new(LOCK_PATH));
        clean_after_crashed_holder();

        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let node = format!(
            "e2e-agent-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        );
        let kubelet_port = free_port();
        let port_arg = format!("port={kubelet_port}");
        let mut args = vec![
            "--node-name",
            &node,
            "--kubelet-arg",
            &port_arg,
            "--kubelet-arg",
            EVICTION_HARD,
        ];
        args.extend_from_slice(extra);

        let mut footprint = None;
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            K3rs::start_agent(&args, |dir, data_dir| {
                let recorded = Footprint::record(&node, dir, data_dir);
                let json = serde_json::to_string_pretty(&recorded).unwrap();
                std::fs::write(FOOTPRINT_PATH, json)
                    .unwrap_or_else(|e| panic!("writing {FOOTPRINT_PATH}: {e}"));
                footprint = Some(recorded);
                stage_images(images, data_dir);
            })
        }));
        match started {
            Ok(server) => AgentServer {
                server,
                node,
                kubelet_port,
                footprint: footprint.expect("the data dir was prepared"),
                _lock: lock,
            },
            Err(panic) => {
                // The server did not come up (its process is already killed): clean up
                // what its agent may have started before failing the test.
                if let Some(footprint) = footprint {
                    teardown(&footprint);
                    let _ = std::fs::remove_file(FOOTPRINT_PATH);
                }
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// Wait until this server's Node reports Ready=True; returns the Node and how long
    /// that took from this call.
    pub async fn wait_node_ready(&self, timeout: Duration) -> (Node, Duration) {
        let nodes: Api<Node> = Api::all(self.client().await);
        let started = Instant::now();
        loop {
            if let Ok(Some(node)) = nodes.get_opt(&self.node).await {
                let ready = node
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                if ready {
                    return (node, started.elapsed());
                }
            }
            if started.elapsed() > timeout {
                panic!(
                    "node {} not Ready within {timeout:?}; node:\n{}\nserver log tail:\n{}",
                    self.node,
                    String::from_utf8_lossy(
                        &self
                            .kubectl(&["get", "node", &self.node, "-o", "yaml"])
                            .stdout
                    ),
                    self.log_tail(60)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The renewTime of the node's Lease in `kube-node-lease`, if it has one.
    pub async fn lease_renew_time(&self) -> Option<MicroTime> {
        let leases: Api<Lease> = Api::namespaced(self.client().await, "kube-node-lease");
        leases
            .get_opt(&self.node)
            .await
            .ok()
            .flatten()
            .and_then(|lease| lease.spec)
            .and_then(|spec| spec.renew_time)
    }

    /// Wait until the node's Lease is renewed after `since`: proof that a (re)started
    /// kubelet is up, where the node's Ready condition may still be the old process's.
    pub async fn wait_lease_renewed(&self, since: &MicroTime, timeout: Duration) {
        let started = Instant::now();
        loop {
            if self.lease_renew_time().await.is_some_and(|t| t.0 > since.0) {
                return;
            }
            if started.elapsed() > timeout {
                panic!(
                    "the Lease of node {} was not renewed within {timeout:?}\nserver log tail:\n{}",
                    self.node,
                    self.log_tail(60)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The node's pod CIDR (set by node IPAM after registration), e.g. `10.42.0.0/24`.
    pub async fn pod_cidr(&self) -> String {
        let nodes: Api<Node> = Api::all(self.client().await);
        let node = nodes.get(&self.node).await.unwrap();
        node.spec
            .and_then(|s| s.pod_cidr)
            .unwrap_or_else(|| panic!("node {} has no podCIDR", self.node))
    }

    /// `kubectl apply -f -` of `yaml` (panics with kubectl's output if it fails).
    pub fn apply(&self, yaml: &str) {
        ok(self.kubectl_stdin(&["apply", "-f", "-"], yaml));
    }

    /// A pod of the default namespace as the API has it now.
    pub async fn pod(&self, name: &str) -> Pod {
        let pods: Api<Pod> = Api::namespaced(self.client().await, "default");
        pods.get(name)
            .await
            .unwrap_or_else(|e| panic!("get pod {name}: {e}"))
    }

    /// Wait until pod `name` (default namespace) satisfies `check`; on timeout panics with
    /// `what`, the pod's description and the end of the server log.
    pub async fn wait_pod(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Pod) -> bool,
    ) -> Pod {
        let pods: Api<Pod> = Api::namespaced(self.client().await, "default");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(pod)) = pods.get_opt(name).await {
                if check(&pod) {
                    return pod;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for pod {name}: {what}\n{}",
                    self.diagnose(name)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until pod `name` is Ready.
    pub async fn wait_pod_ready(&self, name: &str) -> Pod {
        self.wait_pod(name, "Ready", POD_WAIT, is_ready).await
    }

    /// Wait until pod `name` is gone from the API.
    pub async fn wait_pod_gone(&self, name: &str, timeout: Duration) {
        let pods: Api<Pod> = Api::namespaced(self.client().await, "default");
        let deadline = Instant::now() + timeout;
        while let Ok(Some(_)) = pods.get_opt(name).await {
            if Instant::now() > deadline {
                panic!(
                    "pod {name} still exists after {timeout:?}\n{}",
                    self.diagnose(name)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kubectl describe pod`, the pod's YAML and the end of the server log, for failures.
    pub fn diagnose(&self, pod: &str) -> String {
        let describe = self.kubectl(&["describe", "pod", pod]);
        format!(
            "--- kubectl describe pod {pod}:\n{}{}\n--- server log tail:\n{}",
            String::from_utf8_lossy(&describe.stdout),
            String::from_utf8_lossy(&describe.stderr),
            self.log_tail(60)
        )
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `kubectl exec POD -- ARGS...`, its stdout (panics if it fails).
    pub fn exec(&self, pod: &str, args: &[&str]) -> String {
        let mut full = vec!["exec", pod, "--"];
        full.extend_from_slice(args);
        ok(self.kubectl(&full))
    }

    /// `kubectl exec POD -c CONTAINER -- ARGS...`, its stdout (panics if it fails).
    pub fn exec_in(&self, pod: &str, container: &str, args: &[&str]) -> String {
        let mut full = vec!["exec", pod, "-c", container, "--"];
        full.extend_from_slice(args);
        ok(self.kubectl(&full))
    }

    /// The host PID of a container's (or sandbox's) first process, from the runc shim's
    /// bundle in this node's containerd state dir. `id` may carry the `containerd://` prefix.
    pub fn container_pid(&self, id: &str) -> u32 {
        let id = id.strip_prefix("containerd://").unwrap_or(id);
        let path = self
            .footprint
            .run_dir
            .join("containerd/io.containerd.runtime.v2.task/k8s.io")
            .join(id)
            .join("init.pid");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{} holds {text:?}, not a PID", path.display()))
    }

    /// The host-local IPAM file that records `ip` as allocated on this node.
    pub fn ipam_lease(&self, ip: &str) -> PathBuf {
        self.footprint.run_dir.join("cni/networks/cbr0").join(ip)
    }

    /// The node's cgroup parent as the kubelet uses it, e.g. `/k3rs-<node>/kubepods`.
    pub fn cgroup_parent(&self) -> String {
        format!("/k3rs-{}/kubepods", self.node)
    }

    /// Start `kubectl ARGS...` in the background with stdout (and stderr) piped, for
    /// following commands (`logs -f`, `port-forward`, `attach`). Kill it with
    /// [`Background::stop`] (or by dropping it).
    pub fn kubectl_background(&self, args: &[&str], stdin: bool) -> Background {
        let child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.path().join("kubecache"))
            .env("HOME", self.dir.path())
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run kubectl: {e}"));
        Background::new(child)
    }

    /// Stop the server (SIGTERM, then SIGKILL after 20 s) if it runs, and wait for it.
    fn stop_quietly(&mut self) {
        let Some(pid) = self.server.pid() else { return };
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && process_running(pid) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if process_running(pid) {
            eprintln!("k3rs (pid {pid}) did not stop within 20 s of SIGTERM; killing it");
        }
        // Reaps the child (and kills it first if it still runs).
        self.server.kill9();
    }
}

impl Drop for AgentServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- k3rs log tail of node {} (test failed):\n{}",
                self.node,
                self.log_tail(80)
            );
            let containerd_log = self.data_dir().join("agent/containerd/containerd.log");
            let text = std::fs::read_to_string(&containerd_log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "--- containerd log tail:\n{}",
                lines[lines.len().saturating_sub(30)..].join("\n")
            );
        }
        self.stop_quietly();
        let left = teardown(&self.footprint);
        if !left.is_empty() {
            eprintln!(
                "agent teardown of node {} left:\n{}",
                self.node,
                left.join("\n")
            );
        }
        let _ = std::fs::remove_file(FOOTPRINT_PATH);
    }
}

/// A kubectl running in the background; its output is collected by reader threads.
pub struct Background {
    child: Child,
    stdout: std::sync::mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Background {
    fn new(mut child: Child) -> Background {
        let (lines, stdout) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                text.push_str(&line);
                text.push('\n');
                *sink.lock().unwrap() = text.clone();
            }
        });
        Background {
            child,
            stdout,
            stderr,
        }
    }

    /// Write to the command's stdin (it must have been started with `stdin: true`).
    pub fn write_stdin(&mut self, data: &[u8]) {
        let stdin = self.child.stdin.as_mut().expect("started with stdin");
        stdin.write_all(data).unwrap();
        stdin.flush().unwrap();
    }

    /// Read stdout lines until one satisfies `done` (returned with everything before it),
    /// panicking after `timeout` with what was read and the command's stderr.
    pub fn read_until(&mut self, timeout: Duration, done: impl Fn(&str) -> bool) -> Vec<String> {
        match self.try_read_until(timeout, done) {
            Ok(lines) => lines,
            Err(seen) => panic!(
                "background kubectl: expected line not seen within {timeout:?}; stdout so far:\n{}\nstderr:\n{}\nexited: {:?}",
                seen.join("\n"),
                self.stderr(),
                self.child.try_wait().ok().flatten()
            ),
        }
    }

    /// Like [`Background::read_until`], but a timeout returns the lines read so far as
    /// the error.
    pub fn try_read_until(
        &mut self,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    let finished = done(&line);
                    seen.push(line);
                    if finished {
                        return Ok(seen);
                    }
                }
                Err(_) => return Err(seen),
            }
        }
    }

    /// What the command wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Kill the command (by its process id) and reap it.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    condition(pod, "Ready") == Some("True")
}

/// The status (`"True"`, `"False"`) of one of the pod's conditions.
pub fn condition<'a>(pod: &'a Pod, kind: &str) -> Option<&'a str> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.as_str())
}

/// The pod's phase (`Pending`, `Running`, ...), empty if it has none yet.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The pod's IP, panicking if it has none.
pub fn pod_ip(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_else(|| panic!("pod {:?} has no IP", pod.metadata.name))
}

/// The status of one (regular) container of the pod, if reported.
pub fn container_status<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == name)
}

/// The status of one init container of the pod, if reported.
pub fn init_container_status<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    pod.status
        .as_ref()?
        .init_container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == name)
}

/// Whether the process `pid` exists and is not a zombie.
pub fn process_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may contain spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Whether `ip` is inside `cidr` (IPv4 only, which is all the pod network hands out).
pub fn ipv4_in_cidr(ip: &str, cidr: &str) -> bool {
    let (net, bits) = cidr.split_once('/').expect("CIDR has a prefix length");
    let bits: u32 = bits.parse().expect("prefix length");
    let (Ok(ip), Ok(net)) = (
        ip.parse::<std::net::Ipv4Addr>(),
        net.parse::<std::net::Ipv4Addr>(),
    ) else {
        return false;
    };
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    u32::from(ip) & mask == u32::from(net) & mask
}

/// The first host address of an IPv4 CIDR (the bridge's gateway address), e.g.
/// `10.42.0.0/24` -> `10.42.0.1`.
pub fn gateway_of(cidr: &str) -> String {
    let net: std::net::Ipv4Addr = cidr.split('/').next().unwrap().parse().unwrap();
    std::net::Ipv4Addr::from(u32::from(net) + 1).to_string()
}

/// A plain HTTP/1.0 GET of `path` on `addr`; returns (status line, body).
pub fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .unwrap_or_else(|e| panic!("read the response from {addr}: {e}"));
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response from {addr}: {response:?}"));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// Decode base64url without padding (JWT segments).
pub fn base64url_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => panic!("not base64url: {text:?}"),
        }
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        acc = (acc << 6) | value(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The JSON payload of a JWT.
pub fn jwt_payload(token: &str) -> Value {
    let parts: Vec<&str> = token.trim().split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts: {token:?}");
    serde_json::from_slice(&base64url_decode(parts[1]))
        .unwrap_or_else(|e| panic!("JWT payload is not JSON: {e}"))
}

/// Fail (never skip) when something the agent needs is missing, saying what to install.
pub fn check_prerequisites() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let mut missing = Vec::new();
        let uid = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
            })
            .unwrap_or_default();
        if uid != "0" {
            missing.push(
                "root (the agent tests create cgroups, mounts and network namespaces)".to_string(),
            );
        }
        for (tool, package) in [
            ("containerd", "containerd"),
            ("ctr", "containerd"),
            ("runc", "runc"),
            ("setpriv", "util-linux"),
            ("ip", "iproute2"),
            ("iptables", "iptables"),
            ("nft", "nftables"),
            ("nsenter", "util-linux"),
            ("python3", "python3"),
            ("kubectl", "kubectl"),
            ("umount", "mount"),
            ("gcc", "gcc libc6-dev"),
        ] {
            if !on_path(tool) {
                missing.push(format!("{tool} (package {package})"));
            }
        }
        for plugin in ["bridge", "host-local", "portmap", "loopback"] {
            if !Path::new("/usr/lib/cni").join(plugin).exists() {
                missing.push(format!(
                    "/usr/lib/cni/{plugin} (package containernetworking-plugins)"
                ));
            }
        }
        if !Path::new("/bin/busybox").exists() {
            missing.push("/bin/busybox (package busybox-static)".into());
        }
        assert!(
            missing.is_empty(),
            "the agent end-to-end tests need, and this machine lacks:\n  {}\n\
             (scripts/test.sh installs them with apt when run as root)",
            missing.join("\n  ")
        );
    });
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// The test image tarballs, built once per test process into `<target>/test-images`
/// (rebuilt only when `scripts/build-images.sh` is newer than them), under a file lock so
/// test binaries running at the same time do not write them at once.
pub fn test_images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join("target"));
        let dir = target.join("test-images");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let lock_path = target.join("test-images.lock");
        let _lock = lock_exclusive(&lock_path);
        let script = root.join("scripts/build-images.sh");
        let script_time = std::fs::metadata(&script)
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| panic!("{} is missing: {e}", script.display()));
        let fresh = IMAGE_TARBALLS.iter().all(|name| {
            std::fs::metadata(dir.join(name))
                .and_then(|m| m.modified())
                .is_ok_and(|built| built >= script_time)
        });
        if !fresh {
            let out = Command::new("bash")
                .arg(&script)
                .arg(&dir)
                .output()
                .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "{} failed ({}):\n{}{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // An unchanged tarball is left untouched by the script; mark it checked.
            for name in IMAGE_TARBALLS {
                let file = File::options().write(true).open(dir.join(name)).unwrap();
                file.set_modified(std::time::SystemTime::now()).unwrap();
            }
        }
        dir
    })
}

/// Open (creating) `path` and take an exclusive lock on it, waiting for other holders;
/// released when the file is closed, also when the process dies.
pub fn lock_exclusive(path: &Path) -> File {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    file.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
    file
}

/// Copy the test images where the agent imports air-gap images at start.
pub fn stage_images(images: &Path, data_dir: &Path) {
    let target = data_dir.join("agent/images");
    std::fs::create_dir_all(&target)
        .unwrap_or_else(|e| panic!("creating {}: {e}", target.display()));
    for name in IMAGE_TARBALLS {
        std::fs::copy(images.join(name), target.join(name))
            .unwrap_or_else(|e| panic!("copying {name} into {}: {e}", target.display()));
    }
}

/// Clean up after a test process that died holding the lock (its footprint is still on
/// disk). Call with the lock held.
fn clean_after_crashed_holder() {
    let Ok(text) = std::fs::read_to_string(FOOTPRINT_PATH) else {
        return;
    };
    match serde_json::from_str::<Footprint>(&text) {
        Ok(footprint) => {
            eprintln!(
                "cleaning up after an earlier agent test that did not finish (node {})",
                footprint.node
            );
            // Its k3rs (and containerd, by its death signal) may still run.
            kill_matching(|cmdline| {
                cmdline.contains(&*footprint.data_dir.to_string_lossy())
                    && cmdline.contains("server")
            });
            let left = teardown(&footprint);
            if !left.is_empty() {
                eprintln!("cleanup left:\n{}", left.join("\n"));
            }
            let _ = std::fs::remove_dir_all(&footprint.dir);
        }
        Err(e) => eprintln!("ignoring unreadable {FOOTPRINT_PATH}: {e}"),
    }
    let _ = std::fs::remove_file(FOOTPRINT_PATH);
}

/// Remove everything a (stopped) agent server left on the machine; returns what could
/// not be removed. Safe to run more than once and on a footprint whose server never
/// started. Everything is found by this node's name, data dir and run dir, and by
/// process id; nothing is killed by name.
pub fn teardown(footprint: &Footprint) -> Vec<String> {
    let mut left = Vec::new();
    let data_dir = footprint.data_dir.to_string_lossy().into_owned();
    let run_dir = footprint.run_dir.to_string_lossy().into_owned();
    let containerd_config = format!("{data_dir}/agent/etc/containerd/config.toml");
    let socket = format!("{run_dir}/containerd/containerd.sock");

    // containerd normally dies with k3rs (death signal); make sure, then its shims.
    kill_matching(|cmdline| cmdline.contains(&containerd_config));
    kill_matching(|cmdline| {
        cmdline.contains("containerd-shim")
            && (cmdline.contains(&socket) || cmdline.contains(&run_dir))
    });

    // Every process still in the node's cgroups, then the cgroups, deepest first. The
    // network namespaces those processes are in are the pods' ones: noted before the
    // kill, and deleted below.
    let cgroup_name = format!("k3rs-{}", footprint.node);
    let cgroups = node_cgroups(&cgroup_name);
    let host_netns = netns_inode("/proc/self/ns/net");
    let mut pod_netns = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut pids = BTreeSet::new();
        for dir in &cgroups {
            if let Ok(state) = std::fs::read_to_string(dir.join("freezer.state")) {
                // A frozen process cannot die.
                if state.trim() != "THAWED" {
                    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
                }
            }
            if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                pids.extend(procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
            }
        }
        let alive: Vec<u32> = pids.into_iter().filter(|p| process_running(*p)).collect();
        pod_netns.extend(
            alive
                .iter()
                .filter_map(|pid| netns_inode(&format!("/proc/{pid}/ns/net")))
                .filter(|inode| Some(*inode) != host_netns),
        );
        if alive.is_empty() {
            break;
        }
        for pid in &alive {
            kill9(*pid);
        }
        if Instant::now() > deadline {
            left.push(format!("processes in cgroup {cgroup_name}: {alive:?}"));
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for dir in cgroups.iter().rev() {
        // A killed process leaves its cgroup a moment after it is reaped.
        let deadline = Instant::now() + Duration::from_secs(5);
        while dir.exists() && std::fs::remove_dir(dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if dir.exists() {
            left.push(format!("cgroup {}", dir.display()));
        }
    }

    // Mounts under the data dir and the run dir, deepest first.
    let mut mounts: Vec<String> = mount_points()
        .into_iter()
        .filter(|m| under(m, &data_dir) || under(m, &run_dir))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.matches('/').count()));
    for mount in &mounts {
        let out = Command::new("umount").args(["-l", mount]).output();
        if !out.is_ok_and(|o| o.status.success()) {
            left.push(format!("mount {mount}"));
        }
    }

    // The pods' network namespaces (their veths go with them), then our bridge once no
    // pod is left on it.
    for netns in cni_netns() {
        let path = format!("{NETNS_DIR}/{netns}");
        if !netns_inode(&path).is_some_and(|inode| pod_netns.contains(&inode)) {
            continue;
        }
        let out = Command::new("ip")
            .args(["netns", "delete", &netns])
            .output();
        if !out.is_ok_and(|o| o.status.success()) {
            left.push(format!("network namespace {netns}"));
        }
    }
    // The kernel destroys a deleted netns (and its veth ends on the bridge) a moment
    // later, from a work queue: give the ports a few seconds to go.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !footprint.bridge_existed
        && link_exists(BRIDGE)
        && !bridge_ports().is_empty()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    if link_exists(BRIDGE) && !footprint.bridge_existed && bridge_ports().is_empty() {
        let out = Command::new("ip").args(["link", "delete", BRIDGE]).output();
        if !out.is_ok_and(|o| o.status.success()) {
            left.push(format!("link {BRIDGE}"));
        }
    }

    if footprint.run_dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&footprint.run_dir) {
            left.push(format!("{run_dir}: {e}"));
        }
    }
    // `/run/k3rs` itself only if no other node uses it.
    let _ = std::fs::remove_dir("/run/k3rs");
    left
}

fn under(path: &str, dir: &str) -> bool {
    path == dir || path.starts_with(&format!("{dir}/"))
}

fn kill9(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// SIGKILL every process (other than this one) whose command line matches, and wait
/// (up to 5 s) for them to go.
pub fn kill_matching(matches: impl Fn(&str) -> bool) {
    let me = std::process::id();
    let pids: Vec<u32> = processes()
        .into_iter()
        .filter(|(pid, cmdline)| *pid != me && matches(cmdline))
        .map(|(pid, _)| pid)
        .collect();
    for pid in &pids {
        kill9(*pid);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| process_running(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every process and its command line (arguments joined by spaces).
fn processes() -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let raw = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            Some((pid, cmdline))
        })
        .collect()
}

/// `/sys/fs/cgroup/<controller>/<name>` and every cgroup below it, parents before
/// children, in every cgroup v1 hierarchy (or the v2 one).
fn node_cgroups(name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup").join(name)];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for entry in entries.flatten() {
            // `cpu` -> `cpu,cpuacct` style links would list a hierarchy twice.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                roots.push(entry.path().join(name));
            }
        }
    }
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        if !dir.is_dir() {
            return;
        }
        found.push(dir.to_path_buf());
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut children: Vec<PathBuf> = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            children.sort();
            for child in children {
                walk(&child, found);
            }
        }
    }
    for root in roots {
        walk(&root, &mut found);
    }
    found
}

/// Mount points of this mount namespace, unescaped (`\040` is a space).
fn mount_points() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mount_path)
        .collect()
}

fn unescape_mount_path(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let octal = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap();
            out.push(u8::from_str_radix(octal, 8).unwrap());
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Names of the `cni-*` network namespaces containerd's CRI plugin mounts.
fn cni_netns() -> BTreeSet<String> {
    std::fs::read_dir(NETNS_DIR)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|name| name.starts_with("cni-"))
                .collect()
        })
        .unwrap_or_default()
}

/// The inode of a network namespace file (`/proc/<pid>/ns/net` or a bind mount of one
/// under `/var/run/netns`): equal inodes are the same namespace.
fn netns_inode(path: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Interfaces enslaved to `cni0` (the pods' host-side veths).
fn bridge_ports() -> BTreeSet<String> {
    std::fs::read_dir(Path::new("/sys/class/net").join(BRIDGE).join("brif"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_membership_and_gateway() {
        assert!(ipv4_in_cidr("10.42.0.7", "10.42.0.0/24"));
        assert!(!ipv4_in_cidr("10.42.1.7", "10.42.0.0/24"));
        assert!(!ipv4_in_cidr("fe80::1", "10.42.0.0/24"));
        assert_eq!(gateway_of("10.42.3.0/24"), "10.42.3.1");
    }

    #[test]
    fn base64url_and_jwt() {
        assert_eq!(base64url_decode("aGVsbG8"), b"hello");
        assert_eq!(base64url_decode("aGk_Pz4-"), b"hi??>>");
        let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig";
        assert_eq!(jwt_payload(token)["sub"], "x");
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mount_path(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
    }
}
