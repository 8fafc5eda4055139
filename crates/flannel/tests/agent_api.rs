//! `k3rs_flannel::run` against a real `k3rs server` (API only, `--disable-agent`) with
//! two nodes, each a network namespace: the nodes get pod CIDRs from the server's node
//! IPAM, announce themselves through flannel's annotations, write subnet.env, reach each
//! other over flannel.1, and a deleted Node's entries leave the other node.
//!
//! Run as root: `cargo test -p k3rs-flannel --test agent_api -- --ignored`. The server
//! listens on loopback; the namespaces, the server process (by pid) and the temp dir are
//! removed at the end, also on failure.

// Test tasks need no span: spawning them bare is fine.
#![allow(clippy::disallowed_methods)]

mod support;

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k3rs_core::Shutdown;
use k3rs_flannel::{annotations, Backend, Config};
use k8s_openapi::api::core::v1::Node;
use kube::api::{DeleteParams, PostParams};
use kube::Api;

/// A `k3rs server --disable-agent` on loopback, killed by pid on drop.
struct Server {
    child: Child,
    dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--quiet", "-p", "k3rs"])
            .current_dir(&root)
            .status()
            .unwrap();
        assert!(status.success(), "cargo build -p k3rs failed");
        let binary = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join("target"))
            .join("debug/k3rs");
        let dir = tempfile::Builder::new()
            .prefix("k3rs-flannel-")
            .tempdir()
            .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(dir.path().join("config.yaml"), "").unwrap();
        let log = std::fs::File::create(dir.path().join("k3rs.log")).unwrap();
        let child = Command::new(binary)
            .args([
                "server",
                "--disable-agent",
                "--bind-address",
                "127.0.0.1",
                "--node-ip",
                "127.0.0.1",
            ])
            .arg("--https-listen-port")
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--write-kubeconfig")
            .arg(dir.path().join("kubeconfig.yaml"))
            .arg("--config")
            .arg(dir.path().join("config.yaml"))
            .env_remove("KUBECONFIG")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        Server { child, dir }
    }

    async fn client(&mut self) -> kube::Client {
        let path = self.dir.path().join("kubeconfig.yaml");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "k3rs exited; log:\n{}",
                self.log()
            );
            if path.exists() {
                let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
                let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                    .await
                    .unwrap();
                let client = kube::Client::try_from(config).unwrap();
                if client.apiserver_version().await.is_ok() {
                    return client;
                }
            }
            assert!(
                Instant::now() < deadline,
                "k3rs not ready; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("k3rs.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two namespaces joined by a veth pair; deleted on drop.
struct Namespaces {
    names: [String; 2],
    veths: [String; 2],
}

fn exec_in(netns: &str, args: &[&str]) -> String {
    let output = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{netns}"))
        .arg("--")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?} in {netns}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl Namespaces {
    fn new() -> Namespaces {
        support::require_tools();
        let pid = std::process::id() % 100_000;
        let ns = Namespaces {
            names: [format!("k3rsfl-api-a-{pid}"), format!("k3rsfl-api-b-{pid}")],
            veths: [format!("kfapia{pid}"), format!("kfapib{pid}")],
        };
        for name in &ns.names {
            assert!(Command::new("ip")
                .args(["netns", "add", name])
                .status()
                .unwrap()
                .success());
        }
        assert!(Command::new("ip")
            .args([
                "link",
                "add",
                &ns.veths[0],
                "netns",
                &ns.names[0],
                "type",
                "veth",
                "peer",
                "name"
            ])
            .args([&ns.veths[1], "netns", &ns.names[1]])
            .status()
            .unwrap()
            .success());
        for i in 0..2 {
            exec_in(&ns.names[i], &["ip", "link", "set", "lo", "up"]);
            exec_in(
                &ns.names[i],
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("198.18.232.{}/24", i + 1),
                    "dev",
                    &ns.veths[i],
                ],
            );
            exec_in(&ns.names[i], &["ip", "link", "set", &ns.veths[i], "up"]);
        }
        ns
    }

    fn ping(&self, i: usize, from: Ipv4Addr, to: Ipv4Addr) -> bool {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.names[i]))
            .args([
                "--",
                "ping",
                "-c",
                "1",
                "-W",
                "1",
                "-I",
                &from.to_string(),
                &to.to_string(),
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn vtep_address(node: &Node) -> Ipv4Addr {
    k3rs_flannel::peers::pod_subnet(node).unwrap().network()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and network namespaces"]
async fn two_nodes_announce_route_and_forget() {
    let namespaces = Namespaces::new();
    let mut server = Server::start();
    let client = server.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    for name in ["flannel-a", "flannel-b"] {
        let node: Node = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name}
        }))
        .unwrap();
        nodes.create(&PostParams::default(), &node).await.unwrap();
    }

    let shutdown = Shutdown::new();
    let mut tasks = Vec::new();
    for (i, name) in ["flannel-a", "flannel-b"].into_iter().enumerate() {
        let config = Config {
            node_name: name.into(),
            client: client.clone(),
            backend: Backend::Vxlan,
            iface: None,
            node_ip: IpAddr::V4(Ipv4Addr::new(198, 18, 232, i as u8 + 1)),
            external_ip: false,
            cluster_cidr: "10.42.0.0/16".parse().unwrap(),
            subnet_env_path: server.dir.path().join(format!("{name}/subnet.env")),
            vtep_mac_path: server.dir.path().join(format!("{name}/vtep-mac")),
            tx_checksum_offload_off: true,
            ip_masq: true,
            netns: Some(PathBuf::from(format!("/run/netns/{}", namespaces.names[i]))),
        };
        tasks.push(tokio::spawn(k3rs_flannel::run(config, shutdown.clone())));
    }

    // Both nodes announce themselves the way flannel does.
    let started = Instant::now();
    let [a, b] = wait_for(
        "both nodes annotated",
        Duration::from_secs(60),
        async || {
            let a = nodes.get("flannel-a").await.ok()?;
            let b = nodes.get("flannel-b").await.ok()?;
            let annotated = |n: &Node| {
                n.metadata.annotations.as_ref().is_some_and(|a| {
                    a.get(annotations::KUBE_SUBNET_MANAGER).map(String::as_str) == Some("true")
                })
            };
            (annotated(&a) && annotated(&b)).then_some([a, b])
        },
    )
    .await;
    let annotations_a = a.metadata.annotations.clone().unwrap();
    println!("flannel-a annotations: {annotations_a:#?}");
    assert_eq!(annotations_a[annotations::BACKEND_TYPE], "vxlan");
    assert_eq!(annotations_a[annotations::PUBLIC_IP], "198.18.232.1");
    let vtep_mac = std::fs::read_to_string(server.dir.path().join("flannel-a/vtep-mac")).unwrap();
    assert_eq!(
        annotations_a[annotations::BACKEND_DATA],
        format!(r#"{{"VNI":1,"VtepMAC":"{}"}}"#, vtep_mac.trim())
    );

    let subnet_env =
        std::fs::read_to_string(server.dir.path().join("flannel-a/subnet.env")).unwrap();
    println!("flannel-a subnet.env:\n{subnet_env}");
    let subnet_a = k3rs_flannel::peers::pod_subnet(&a).unwrap();
    assert!(subnet_env.starts_with("FLANNEL_NETWORK=10.42.0.0/16\n"));
    assert!(subnet_env.contains(&format!(
        "FLANNEL_SUBNET={}/24\n",
        Ipv4Addr::from(u32::from(subnet_a.network()) + 1)
    )));
    assert!(subnet_env.ends_with("FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"));

    let (vtep_a, vtep_b) = (vtep_address(&a), vtep_address(&b));
    wait_for(
        "flannel-a to reach flannel-b over flannel.1",
        Duration::from_secs(30),
        async || namespaces.ping(0, vtep_a, vtep_b).then_some(()),
    )
    .await;
    println!("both nodes reachable {:?} after start", started.elapsed());
    assert!(namespaces.ping(1, vtep_b, vtep_a));

    // flannel-b leaves the cluster: flannel-a forgets exactly its entries.
    nodes
        .delete("flannel-b", &DeleteParams::default())
        .await
        .unwrap();
    let deleted = Instant::now();
    let subnet_b = k3rs_flannel::peers::pod_subnet(&b).unwrap().to_string();
    wait_for(
        "flannel-a to drop flannel-b",
        Duration::from_secs(10),
        async || {
            let routes = exec_in(
                &namespaces.names[0],
                &["ip", "route", "show", "dev", "flannel.1"],
            );
            let neighbours = exec_in(
                &namespaces.names[0],
                &["ip", "neigh", "show", "dev", "flannel.1"],
            );
            let fdb = exec_in(
                &namespaces.names[0],
                &["bridge", "fdb", "show", "dev", "flannel.1"],
            );
            (!routes.contains(&subnet_b)
                && !neighbours.contains(&vtep_b.to_string())
                && !fdb.contains("198.18.232.2"))
            .then_some(())
        },
    )
    .await;
    println!(
        "flannel-b's entries gone from flannel-a {:?} after the delete",
        deleted.elapsed()
    );

    // A deleted flannel.1 is back within moments (link events, not the 30 s resync).
    exec_in(&namespaces.names[0], &["ip", "link", "del", "flannel.1"]);
    let removed = Instant::now();
    wait_for(
        "flannel.1 to come back",
        Duration::from_secs(10),
        async || {
            let link = Command::new("nsenter")
                .arg(format!("--net=/run/netns/{}", namespaces.names[0]))
                .args(["--", "ip", "-d", "link", "show", "flannel.1"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&link.stdout)
                .contains("vxlan id 1")
                .then_some(())
        },
    )
    .await;
    println!("flannel.1 recreated {:?} after deletion", removed.elapsed());

    shutdown.trigger();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
