//! Multi-node clusters on one machine for the `cluster_*` end-to-end tests: every node is
//! a real `k3rs` process in its own network namespace, joined over a private bridge, as
//! `scripts/dev-cluster.sh` builds them by hand.
//!
//! Layout: the bridge [`BRIDGE`] on the host carries the host address `172.31.251.1/24`
//! (so the test process reaches the API; no other route is added, nothing goes to the
//! uplink); node `i` (1-based) lives in netns `k3rs-e2e-node<i>` with `172.31.251.1<i>/24`
//! on a veth into the bridge. Node 1 runs `k3rs server`, the others `k3rs agent`. Each
//! process is started through `nsenter --net=...`, never `ip netns exec`, which remounts
//! /sys and hides the cgroup v1 hierarchies runc needs.
//!
//! A cluster holds the agent lock of [`crate::agent`] for its whole life (its nodes own
//! cgroups and `/var/run/netns/cni-*` entries like a single-node agent does), and records
//! what it will leave in [`FOOTPRINT_PATH`] first, so the next cluster cleans up after a
//! test process that was killed. Dropping a [`Cluster`] (also while a test panics) stops
//! every node by its process id and tears each down with [`crate::agent::teardown`], then
//! deletes the namespaces and the bridge.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use serde::{Deserialize, Serialize};

use crate::agent::{
    check_prerequisites, is_ready, kill_matching, lock_exclusive, stage_images, teardown,
    test_images, Footprint, LOCK_PATH, POD_WAIT,
};
use crate::{binary, ok};

/// What a running cluster will leave behind, removed after its teardown.
pub const FOOTPRINT_PATH: &str = "/tmp/k3rs-e2e-cluster.footprint.json";
/// The underlay bridge on the host.
pub const BRIDGE: &str = "k3rs-e2e0";
/// The underlay /24; the host is `.1`, node `i` is `.(10 + i)`.
const UNDERLAY: &str = "172.31.251";
/// The supervisor and API port of the server node.
pub const SERVER_PORT: u16 = 6443;

/// The overlay backend a cluster's server hands to its agents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Vxlan,
    HostGw,
    None,
}

impl Backend {
    pub fn flag(self) -> &'static str {
        match self {
            Backend::Vxlan => "vxlan",
            Backend::HostGw => "host-gw",
            Backend::None => "none",
        }
    }
}

/// The underlay address of node `index` (1-based).
pub fn node_ip(index: usize) -> String {
    format!("{UNDERLAY}.{}", 10 + index)
}

/// The network namespace (and node name) of node `index`.
pub fn node_netns(index: usize) -> String {
    format!("{NETNS_PREFIX}{index}")
}

const NETNS_PREFIX: &str = "k3rs-e2e-node";

/// The host side of node `index`'s veth.
fn host_veth(index: usize) -> String {
    format!("k3rs-e2e-v{index}")
}

/// Everything one cluster may leave on the machine.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct ClusterFootprint {
    dir: PathBuf,
    netns: Vec<String>,
    nodes: Vec<Footprint>,
}

impl ClusterFootprint {
    fn save(&self) {
        let json = serde_json::to_string_pretty(self).unwrap();
        std::fs::write(FOOTPRINT_PATH, json)
            .unwrap_or_else(|e| panic!("writing {FOOTPRINT_PATH}: {e}"));
    }
}

/// One node's process (server or agent).
pub struct ClusterNode {
    pub index: usize,
    /// Node name, also its netns name.
    pub name: String,
    pub ip: String,
    pub dir: PathBuf,
    child: Option<Child>,
    footprint: Footprint,
    /// The k3rs command line, for [`Cluster::restart_node`].
    args: Vec<String>,
}

impl ClusterNode {
    /// Run `k3rs <args>` in the node's netns, appending to its log.
    fn spawn(&mut self, args: Vec<String>) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", node_netns(self.index)))
            .arg("--")
            .arg(binary())
            .args(&args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn nsenter k3rs");
        self.child = Some(child);
        self.args = args;
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("k3rs.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the process still runs (an agent whose join failed for good exits).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Wait until the log has a line containing `needle`; returns that line, or panics
    /// after `timeout` with the end of the log.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "{}: no log line with {needle:?} within {timeout:?}; log tail:\n{}",
                self.name,
                self.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Wait (up to `timeout`) for the process to exit by itself; whether it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.running() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        true
    }

    /// SIGTERM, then SIGKILL after 20 s; reaps the process.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if matches!(child.try_wait(), Ok(None)) {
            eprintln!(
                "{} (pid {pid}) ignored SIGTERM for 20 s; killing it",
                self.name
            );
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    /// Stop the node and remove what it left (containers, cgroups, mounts, pod netns).
    fn teardown(&mut self) -> Vec<String> {
        self.stop();
        teardown(&self.footprint)
    }
}

impl Drop for ClusterNode {
    /// A node handed out by [`Cluster::start_agent`] and dropped by a test is only
    /// stopped: an agent whose join failed started nothing else (and one that claims an
    /// existing node's name shares that node's paths, which must stay).
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How to start one agent node (see [`Cluster::start_agent`]).
pub struct AgentOptions {
    pub index: usize,
    pub name: String,
    pub token: String,
    pub password_file: Option<PathBuf>,
}

/// A running multi-node cluster. Node 0 of [`Cluster::nodes`] is the server.
pub struct Cluster {
    pub nodes: Vec<ClusterNode>,
    pub backend: Backend,
    /// The admin kubeconfig, pointing at node 1's underlay address.
    pub kubeconfig: PathBuf,
    footprint: ClusterFootprint,
    dir: tempfile::TempDir,
    _lock: File,
}

impl Cluster {
    /// Start a server and `count - 1` agents with `backend`, and wait until every node
    /// is Ready. Takes the agent lock, cleans up after a crashed earlier cluster first.
    pub fn start(count: usize, backend: Backend) -> Cluster {
        assert!((1..=9).contains(&count), "1 to 9 nodes, not {count}");
        check_prerequisites();
        let images = test_images();
        let lock = lock_exclusive(Path::new(LOCK_PATH));
        clean_leftovers();
        let _ = binary();

        let dir = tempfile::Builder::new()
            .prefix("k3rs-e2e-cluster-")
            .tempdir()
            .unwrap();
        let mut cluster = Cluster {
            nodes: Vec::new(),
            backend,
            kubeconfig: dir.path().join("kubeconfig.yaml"),
            footprint: ClusterFootprint {
                dir: dir.path().to_path_buf(),
                ..Default::default()
            },
            dir,
            _lock: lock,
        };
        cluster.footprint.save();
        run_ok("ip", &["link", "add", BRIDGE, "type", "bridge"]);
        run_ok("ip", &["link", "set", BRIDGE, "mtu", "1500", "up"]);
        run_ok(
            "ip",
            &["addr", "add", &format!("{UNDERLAY}.1/24"), "dev", BRIDGE],
        );

        // From here a panic drops the cluster, which tears down what exists.
        cluster.add_netns(1);
        let server = cluster.spawn_node(1, &node_netns(1), images, |node| {
            vec![
                "server".into(),
                "--flannel-backend".into(),
                backend.flag().into(),
                "--write-kubeconfig".into(),
                node.dir.join("kubeconfig.yaml").display().to_string(),
            ]
        });
        cluster.nodes.push(server);
        cluster.wait_server();
        let token = cluster.server_token();
        for index in 2..=count {
            let node = cluster.start_agent(AgentOptions {
                index,
                name: node_netns(index),
                token: token.clone(),
                password_file: None,
            });
            cluster.adopt(node);
        }
        // Without a pod network (`none`) a node stays NotReady until someone installs a
        // CNI, as on k3s: then wait only for every Node to register.
        let ready_only = backend != Backend::None;
        cluster.wait_nodes(count, ready_only, Duration::from_secs(120));
        cluster
    }

    /// The server's join token (`K10<ca-hash>::server:<password>`).
    pub fn server_token(&self) -> String {
        let path = self.nodes[0].data_dir().join("server/token");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
            .trim()
            .to_string()
    }

    /// Create netns and veth of node `index` (idempotent per index in one cluster).
    fn add_netns(&mut self, index: usize) {
        let netns = node_netns(index);
        if self.footprint.netns.contains(&netns) {
            return;
        }
        self.footprint.netns.push(netns.clone());
        self.footprint.save();
        run_ok("ip", &["netns", "add", &netns]);
        let veth = host_veth(index);
        run_ok(
            "ip",
            &[
                "link", "add", &veth, "mtu", "1500", "type", "veth", "peer", "name", "eth0",
                "netns", &netns,
            ],
        );
        run_ok("ip", &["link", "set", &veth, "master", BRIDGE, "up"]);
        let ns = format!("/run/netns/{netns}");
        let addr = format!("{}/24", node_ip(index));
        for args in [
            vec!["ip", "link", "set", "lo", "up"],
            vec!["ip", "addr", "add", &addr, "dev", "eth0"],
            vec!["ip", "link", "set", "eth0", "up"],
        ] {
            let mut full = vec![format!("--net={ns}"), "--".into()];
            full.extend(args.iter().map(|s| s.to_string()));
            run_ok(
                "nsenter",
                &full.iter().map(String::as_str).collect::<Vec<_>>(),
            );
        }
    }

    /// Start a `k3rs` process as node `index` named `name` (in netns of `index`).
    fn spawn_node(
        &mut self,
        index: usize,
        name: &str,
        images: &Path,
        role_args: impl FnOnce(&ClusterNode) -> Vec<String>,
    ) -> ClusterNode {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let footprint = Footprint {
            node: name.to_string(),
            dir: dir.clone(),
            data_dir: dir.join("data"),
            run_dir: crate::agent::run_dir(name),
            // cni0 lives in the node's netns, never the host's: the host's is not ours.
            bridge_existed: true,
        };
        self.footprint.nodes.push(footprint.clone());
        self.footprint.save();
        let mut node = ClusterNode {
            index,
            name: name.to_string(),
            ip: node_ip(index),
            dir,
            child: None,
            footprint,
            args: Vec::new(),
        };
        stage_images(images, &node.data_dir());
        let config = node.dir.join("config.yaml");
        std::fs::write(&config, "").unwrap();
        let mut args = role_args(&node);
        args.extend([
            "--data-dir".into(),
            node.data_dir().display().to_string(),
            "--node-name".into(),
            name.into(),
            "--node-ip".into(),
            node.ip.clone(),
            "--config".into(),
            config.display().to_string(),
            "--flannel-subnet-env".into(),
            node.dir.join("subnet.env").display().to_string(),
            "--kubelet-arg".into(),
            "port=10250".into(),
            "--kubelet-arg".into(),
            crate::agent::EVICTION_HARD.into(),
        ]);
        node.spawn(args);
        node
    }

    /// Start an agent (not waiting for it to join). The netns of `index` is created if
    /// this cluster has none yet; the node's password file defaults to its own dir. The
    /// caller owns the node: dropping it only kills its process (see [`ClusterNode`]);
    /// hand a node that really joined to [`Cluster::adopt`] for the full teardown.
    pub fn start_agent(&mut self, options: AgentOptions) -> ClusterNode {
        self.add_netns(options.index);
        let images = test_images();
        let server = format!("https://{}:{SERVER_PORT}", node_ip(1));
        let name = options.name.clone();
        self.spawn_node(options.index, &name, images, |node| {
            let password = options
                .password_file
                .clone()
                .unwrap_or_else(|| node.dir.join("node-password"));
            vec![
                "agent".into(),
                "--server".into(),
                server,
                "--token".into(),
                options.token,
                "--node-password-file".into(),
                password.display().to_string(),
            ]
        })
    }

    /// Keep `node` with the cluster's nodes, torn down with them.
    pub fn adopt(&mut self, node: ClusterNode) {
        self.nodes.push(node);
    }

    /// Wait for the server's kubeconfig and `/readyz`, and write the host's kubeconfig.
    fn wait_server(&mut self) {
        let written = self.nodes[0].dir.join("kubeconfig.yaml");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                self.nodes[0].running(),
                "k3rs server exited early; log:\n{}",
                self.nodes[0].log_tail(60)
            );
            if let Ok(text) = std::fs::read_to_string(&written) {
                // The server writes its kubeconfig for its own machine (127.0.0.1, like
                // k3s); the host reaches it through the bridge.
                let host = text.replace(
                    &format!("https://127.0.0.1:{SERVER_PORT}"),
                    &format!("https://{}:{SERVER_PORT}", node_ip(1)),
                );
                std::fs::write(&self.kubeconfig, host).unwrap();
                if self.kubectl(&["get", "--raw", "/readyz"]).status.success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "k3rs server not ready in 60 s; log:\n{}",
                self.nodes[0].log_tail(60)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Wait until at least `count` Nodes report Ready=True.
    pub fn wait_nodes_ready(&self, count: usize, timeout: Duration) {
        self.wait_nodes(count, true, timeout)
    }

    /// Wait until at least `count` Nodes exist (and are Ready, if `ready`).
    pub fn wait_nodes(&self, count: usize, ready: bool, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.kubectl(&["get", "nodes", "--no-headers"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let ready = text
                .lines()
                .filter(|l| !ready || l.split_whitespace().nth(1) == Some("Ready"))
                .count();
            if ready >= count {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{ready} of {count} nodes Ready after {timeout:?}:\n{text}\n{}",
                    self.logs(40)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The last `lines` lines of every node's log.
    pub fn logs(&self, lines: usize) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- log tail of {}:\n{}\n", n.name, n.log_tail(lines)))
            .collect()
    }

    pub fn node(&self, name: &str) -> &ClusterNode {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    pub fn node_mut(&mut self, name: &str) -> &mut ClusterNode {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// kubectl against the cluster (admin).
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        crate::run_kubectl("kubectl", &self.kubeconfig, self.dir.path(), args, stdin)
    }

    /// `kubectl apply -f -` (panics with kubectl's output if it fails).
    pub fn apply(&self, yaml: &str) {
        ok(self.kubectl_stdin(&["apply", "-f", "-"], Some(yaml)));
    }

    /// `kubectl exec POD -- ARGS...` (not asserting success).
    pub fn exec(&self, pod: &str, args: &[&str]) -> Output {
        let mut full = vec!["exec", pod, "--"];
        full.extend_from_slice(args);
        self.kubectl(&full)
    }

    /// Run a command inside node `name`'s network namespace; its output.
    pub fn node_exec(&self, name: &str, args: &[&str]) -> Output {
        let node = self.node(name);
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", node_netns(node.index)))
            .arg("--")
            .args(args)
            .output()
            .expect("run nsenter")
    }

    /// Like [`Cluster::node_exec`], panicking if the command fails.
    pub fn node_exec_ok(&self, name: &str, args: &[&str]) -> String {
        ok(self.node_exec(name, args))
    }

    /// A `kube::Client` with the admin kubeconfig.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }

    /// A busybox pod pinned to `node` that serves `hello from <node>` over HTTP on
    /// port 80 and logs every request (`httpd -f -v`) with the client's address.
    pub fn run_web_pod(&self, pod: &str, node: &str) {
        self.apply(&format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: {pod}
spec:
  nodeSelector:
    kubernetes.io/hostname: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: {image}
    imagePullPolicy: Never
    command: [sh, -c, "echo hello from {node} > /tmp/index.html && exec httpd -f -v -p 80 -h /tmp"]
"#,
            image = crate::agent::BUSYBOX
        ));
    }

    /// Wait until pod `name` (default namespace) is Ready; returns it.
    pub async fn wait_pod_ready(&self, name: &str) -> Pod {
        let pods: Api<Pod> = Api::namespaced(self.client().await, "default");
        let deadline = Instant::now() + POD_WAIT;
        loop {
            if let Ok(Some(pod)) = pods.get_opt(name).await {
                if is_ready(&pod) {
                    return pod;
                }
            }
            if Instant::now() > deadline {
                let describe = self.kubectl(&["describe", "pod", name]);
                panic!(
                    "pod {name} not Ready within {POD_WAIT:?}:\n{}\n{}",
                    String::from_utf8_lossy(&describe.stdout),
                    self.logs(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The Node object `name`, if the API has it.
    pub async fn node_object(&self, name: &str) -> Option<Node> {
        let nodes: Api<Node> = Api::all(self.client().await);
        nodes.get_opt(name).await.unwrap()
    }

    /// Stop node `name`'s process (SIGTERM; containers keep running) and start it again
    /// with the same command line; for the server, wait until it answers again.
    pub fn restart_node(&mut self, name: &str) {
        let node = self.node_mut(name);
        node.stop();
        let args = std::mem::take(&mut node.args);
        node.spawn(args);
        if self.nodes[0].name == name {
            self.wait_server();
        }
    }

    /// Stop node `name` and remove what it left on the machine (its netns stays until
    /// the cluster is dropped).
    pub fn stop_node(&mut self, name: &str) {
        let left = self.node_mut(name).teardown();
        assert!(left.is_empty(), "teardown of {name} left: {left:?}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs(60));
        }
        // Agents first, so none of them outlives the server it talks to by long.
        let mut left = Vec::new();
        for node in self.nodes.iter_mut().rev() {
            left.extend(node.teardown());
        }
        left.extend(remove_links(&self.footprint));
        if !left.is_empty() {
            eprintln!("cluster teardown left:\n{}", left.join("\n"));
        }
        let _ = std::fs::remove_file(FOOTPRINT_PATH);
    }
}

/// Delete the nodes' namespaces (their veth ends go with them) and the bridge.
fn remove_links(footprint: &ClusterFootprint) -> Vec<String> {
    let mut left = Vec::new();
    // Each node's veth first: deleting one end removes the pair at once, whereas a deleted
    // netns takes its end (and so the pair) down later, from a kernel work queue, and the
    // next cluster's `ip link add` of the same name would find it still there.
    for netns in &footprint.netns {
        let Some(index) = netns
            .strip_prefix(NETNS_PREFIX)
            .and_then(|i| i.parse::<usize>().ok())
        else {
            continue;
        };
        let veth = host_veth(index);
        if Path::new("/sys/class/net").join(&veth).exists()
            && !Command::new("ip")
                .args(["link", "delete", &veth])
                .status()
                .is_ok_and(|s| s.success())
        {
            left.push(format!("link {veth}"));
        }
    }
    for netns in &footprint.netns {
        if Path::new("/run/netns").join(netns).exists()
            && !Command::new("ip")
                .args(["netns", "delete", netns])
                .status()
                .is_ok_and(|s| s.success())
        {
            left.push(format!("network namespace {netns}"));
        }
    }
    if Path::new("/sys/class/net").join(BRIDGE).exists()
        && !Command::new("ip")
            .args(["link", "delete", BRIDGE])
            .status()
            .is_ok_and(|s| s.success())
    {
        left.push(format!("link {BRIDGE}"));
    }
    left
}

/// Clean up after a cluster whose test process died (its footprint is still on disk).
/// Call with the agent lock held.
fn clean_leftovers() {
    if let Ok(text) = std::fs::read_to_string(FOOTPRINT_PATH) {
        match serde_json::from_str::<ClusterFootprint>(&text) {
            Ok(footprint) => {
                eprintln!("cleaning up after an earlier cluster test that did not finish");
                for node in &footprint.nodes {
                    let data_dir = node.data_dir.to_string_lossy().into_owned();
                    kill_matching(|cmdline| {
                        cmdline.contains(&data_dir)
                            && (cmdline.contains(" server ") || cmdline.contains(" agent "))
                    });
                    let left = teardown(node);
                    if !left.is_empty() {
                        eprintln!("cleanup left:\n{}", left.join("\n"));
                    }
                }
                remove_links(&footprint);
                let _ = std::fs::remove_dir_all(&footprint.dir);
            }
            Err(e) => eprintln!("ignoring unreadable {FOOTPRINT_PATH}: {e}"),
        }
        let _ = std::fs::remove_file(FOOTPRINT_PATH);
    }
    // The names are fixed: whatever still carries them is a leftover of ours.
    let mut stale = ClusterFootprint::default();
    for index in 1..=9 {
        stale.netns.push(node_netns(index));
    }
    remove_links(&stale);
}

/// Run a command, panicking with its output if it fails.
fn run_ok(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}
