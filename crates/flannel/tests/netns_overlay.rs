//! The applier against real kernels: two network namespaces ("nodes") joined by a veth
//! pair on an isolated link (no route to the machine's uplink), each made to match its
//! desired state over rtnetlink and nft, then pinged across.
//!
//! Run as root: `cargo test -p k3rs-flannel --test netns_overlay -- --ignored --test-threads=1`.
//! Everything created lives in the two namespaces, which are deleted at the end, also on
//! failure.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use k3rs_flannel::dataplane::{Applied, Dataplane};
use k3rs_flannel::desired::{desired_state, DesiredState, LocalNode};
use k3rs_flannel::mac::MacAddress;
use k3rs_flannel::{annotations, ethtool, nftables, peers, Backend};
use k8s_openapi::api::core::v1::{Node, NodeSpec};

/// Two namespaces and a veth pair between them; removed on drop.
struct TwoNodes {
    names: [String; 2],
    veths: [String; 2],
    addresses: [Ipv4Addr; 2],
}

fn run(args: &[&str]) -> Output {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"));
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

impl TwoNodes {
    fn new(tag: &str) -> TwoNodes {
        support::require_tools();
        let pid = std::process::id() % 100_000;
        let nodes = TwoNodes {
            names: [
                format!("k3rsfl-{tag}-a-{pid}"),
                format!("k3rsfl-{tag}-b-{pid}"),
            ],
            veths: [format!("kf{tag}a{pid}"), format!("kf{tag}b{pid}")],
            // 198.18.0.0/15 is reserved for benchmarking: no real network uses it.
            addresses: [
                "198.18.231.1".parse().unwrap(),
                "198.18.231.2".parse().unwrap(),
            ],
        };
        for name in &nodes.names {
            run(&["ip", "netns", "add", name]);
        }
        run(&[
            "ip",
            "link",
            "add",
            &nodes.veths[0],
            "netns",
            &nodes.names[0],
            "type",
            "veth",
            "peer",
            "name",
            &nodes.veths[1],
            "netns",
            &nodes.names[1],
        ]);
        for i in 0..2 {
            let address = format!("{}/24", nodes.addresses[i]);
            nodes.exec(i, &["ip", "link", "set", "lo", "up"]);
            nodes.exec(i, &["ip", "addr", "add", &address, "dev", &nodes.veths[i]]);
            nodes.exec(i, &["ip", "link", "set", &nodes.veths[i], "up"]);
        }
        nodes
    }

    fn netns(&self, i: usize) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.names[i]))
    }

    fn command(&self, i: usize, args: &[&str]) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.netns(i).display()))
            .arg("--")
            .args(args);
        command
    }

    /// Run a command in node `i`; it must succeed. Returns its stdout.
    fn exec(&self, i: usize, args: &[&str]) -> String {
        let output = self.command(i, args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?} in {} failed: {}",
            self.names[i],
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn ping(&self, i: usize, from: &str, to: &str) -> bool {
        self.command(
            i,
            &["ping", "-c", "2", "-W", "2", "-i", "0.2", "-I", from, to],
        )
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
    }

    /// Send one UDP datagram from `from` in node `i` to `to`:`port` in node `j`, and
    /// return the source address node `j` saw.
    fn udp_source_seen(&self, i: usize, from: &str, j: usize, to: &str, port: u16) -> String {
        let receiver = self
            .command(
                j,
                &[
                    "python3",
                    "-c",
                    &format!(
                        "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('{to}', {port})); s.settimeout(5); print(s.recvfrom(100)[1][0])"
                    ),
                ],
            )
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        self.exec(
            i,
            &[
                "python3",
                "-c",
                &format!(
                    "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('{from}', 0)); s.sendto(b'hi', ('{to}', {port}))"
                ),
            ],
        );
        let output = receiver.wait_with_output().unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// A bridge standing in for the CNI's `cni0`, holding the pod gateway address.
    fn add_pod_bridge(&self, i: usize, gateway: &str) {
        self.exec(i, &["ip", "link", "add", "cni0", "type", "bridge"]);
        self.exec(i, &["ip", "addr", "add", gateway, "dev", "cni0"]);
        self.exec(i, &["ip", "link", "set", "cni0", "up"]);
    }
}

impl Drop for TwoNodes {
    fn drop(&mut self) {
        // Deleting a namespace deletes every link in it (veths, flannel.1, bridges) and
        // its nftables tables.
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

fn node(name: &str, cidr: &str, backend: Backend, public_ip: Ipv4Addr) -> Node {
    let mut node = Node::default();
    node.metadata.name = Some(name.into());
    node.spec = Some(NodeSpec {
        pod_cidr: Some(cidr.into()),
        pod_cidrs: Some(vec![cidr.into()]),
        ..Default::default()
    });
    node.metadata.annotations = Some(
        annotations::own_annotations(backend, MacAddress::for_node(name), public_ip)
            .into_iter()
            .collect(),
    );
    node
}

async fn desired_for(
    dataplane: &Dataplane,
    me: &str,
    node_ip: Ipv4Addr,
    backend: Backend,
    nodes: &[Node],
) -> DesiredState {
    let cluster_cidr = "10.42.0.0/16".parse().unwrap();
    let own = nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(me))
        .unwrap();
    let underlay = dataplane.underlay(None, IpAddr::V4(node_ip)).await.unwrap();
    let local = LocalNode {
        name: me.into(),
        backend,
        subnet: peers::pod_subnet(own).unwrap(),
        cluster_cidr,
        vtep_mac: MacAddress::for_node(me),
        underlay,
    };
    let (state, problems) = desired_state(&local, &peers::peers(nodes, me, &cluster_cidr));
    assert!(problems.is_empty(), "{problems:?}");
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and network namespaces"]
async fn vxlan_between_two_namespaces() {
    let nodes = TwoNodes::new("vx");
    let [a_ip, b_ip] = nodes.addresses;
    // node-c exists only in the API: its entries prove removal is exact.
    let all = vec![
        node("node-a", "10.42.1.0/24", Backend::Vxlan, a_ip),
        node("node-b", "10.42.2.0/24", Backend::Vxlan, b_ip),
        node(
            "node-c",
            "10.42.3.0/24",
            Backend::Vxlan,
            "198.18.231.3".parse().unwrap(),
        ),
    ];
    let a = Dataplane::connect(Some(nodes.netns(0))).await.unwrap();
    let b = Dataplane::connect(Some(nodes.netns(1))).await.unwrap();
    let a_state = desired_for(&a, "node-a", a_ip, Backend::Vxlan, &all).await;
    let b_state = desired_for(&b, "node-b", b_ip, Backend::Vxlan, &all).await;

    let applied = a.apply(&a_state).await.unwrap();
    assert!(applied.vtep_created);
    assert_eq!(
        (
            applied.routes_added,
            applied.neighbours_added,
            applied.fdb_added
        ),
        (2, 2, 2)
    );
    b.apply(&b_state).await.unwrap();
    // A second pass over an unchanged kernel changes nothing.
    assert_eq!(a.apply(&a_state).await.unwrap(), Applied::default());

    for (i, subnet) in [(0, "10.42.1.0/24"), (1, "10.42.2.0/24")] {
        let ruleset = nftables::render_ruleset(
            &"10.42.0.0/16".parse().unwrap(),
            &subnet.parse().unwrap(),
            true,
        );
        nftables::apply_ruleset(ruleset.clone(), Some(nodes.netns(i)))
            .await
            .unwrap();
        // Loading again replaces the table instead of adding to it.
        nftables::apply_ruleset(ruleset, Some(nodes.netns(i)))
            .await
            .unwrap();
    }
    ethtool::disable_tx_checksum_offload("flannel.1", Some(nodes.netns(0)))
        .await
        .unwrap();

    let link = nodes.exec(0, &["ip", "-d", "link", "show", "flannel.1"]);
    println!("node-a: ip -d link show flannel.1\n{link}");
    for expected in [
        "mtu 1450",
        &format!("link/ether {}", MacAddress::for_node("node-a")),
        "vxlan id 1",
        &format!("local {a_ip} dev {}", nodes.veths[0]),
        "dstport 8472",
        "nolearning",
    ] {
        assert!(link.contains(expected), "missing {expected:?}");
    }
    let addresses = nodes.exec(0, &["ip", "-4", "addr", "show", "flannel.1"]);
    assert!(addresses.contains("inet 10.42.1.0/32"), "{addresses}");
    let routes = nodes.exec(0, &["ip", "route", "show", "dev", "flannel.1"]);
    println!("node-a: ip route show dev flannel.1\n{routes}");
    assert!(
        routes.contains("10.42.2.0/24 via 10.42.2.0 onlink"),
        "{routes}"
    );
    assert!(
        routes.contains("10.42.3.0/24 via 10.42.3.0 onlink"),
        "{routes}"
    );
    let neighbours = nodes.exec(0, &["ip", "neigh", "show", "dev", "flannel.1"]);
    println!("node-a: ip neigh show dev flannel.1\n{neighbours}");
    assert!(neighbours.contains(&format!(
        "10.42.2.0 lladdr {} PERMANENT",
        MacAddress::for_node("node-b")
    )));
    let fdb = nodes.exec(0, &["bridge", "fdb", "show", "dev", "flannel.1"]);
    println!("node-a: bridge fdb show dev flannel.1\n{fdb}");
    assert!(
        fdb.contains(&format!(
            "{} dst {b_ip} self permanent",
            MacAddress::for_node("node-b")
        )),
        "{fdb}"
    );
    let table = nodes.exec(0, &["nft", "list", "table", "ip", "k3rs-flannel"]);
    assert!(table.contains("masquerade"), "{table}");

    // The VTEP addresses reach each other through the tunnel.
    assert!(
        nodes.ping(0, "10.42.1.0", "10.42.2.0"),
        "ping over flannel.1 failed"
    );

    // Pod to pod keeps the pod address; pod to outside the cluster is masqueraded.
    nodes.add_pod_bridge(0, "10.42.1.1/24");
    nodes.add_pod_bridge(1, "10.42.2.1/24");
    assert_eq!(
        nodes.udp_source_seen(0, "10.42.1.1", 1, "10.42.2.1", 9471),
        "10.42.1.1"
    );
    assert_eq!(
        nodes.udp_source_seen(0, "10.42.1.1", 1, &b_ip.to_string(), 9472),
        a_ip.to_string()
    );

    // A deleted flannel.1 comes back with its routes, neighbours and FDB entries.
    nodes.exec(0, &["ip", "link", "del", "flannel.1"]);
    let applied = a.apply(&a_state).await.unwrap();
    assert!(applied.vtep_created);
    assert_eq!(
        (
            applied.routes_added,
            applied.neighbours_added,
            applied.fdb_added
        ),
        (2, 2, 2)
    );
    assert!(
        nodes.ping(0, "10.42.1.0", "10.42.2.0"),
        "ping after recreation failed"
    );

    // A wrong MTU is fixed in place; a wrong VNI means a new device.
    nodes.exec(0, &["ip", "link", "set", "flannel.1", "mtu", "1300"]);
    assert!(!a.apply(&a_state).await.unwrap().vtep_created);
    assert!(nodes
        .exec(0, &["ip", "link", "show", "flannel.1"])
        .contains("mtu 1450"));
    nodes.exec(0, &["ip", "link", "del", "flannel.1"]);
    nodes.exec(
        0,
        &[
            "ip",
            "link",
            "add",
            "flannel.1",
            "type",
            "vxlan",
            "id",
            "5",
            "dstport",
            "4789",
            "dev",
            &nodes.veths[0],
        ],
    );
    assert!(a.apply(&a_state).await.unwrap().vtep_created);
    assert!(nodes
        .exec(0, &["ip", "-d", "link", "show", "flannel.1"])
        .contains("vxlan id 1 "));
    assert!(
        nodes.ping(0, "10.42.1.0", "10.42.2.0"),
        "ping after VNI repair failed"
    );

    // node-b leaves: exactly its entries go, node-c's stay.
    let without_b: Vec<Node> = all
        .iter()
        .filter(|n| n.metadata.name.as_deref() != Some("node-b"))
        .cloned()
        .collect();
    let a_state = desired_for(&a, "node-a", a_ip, Backend::Vxlan, &without_b).await;
    let applied = a.apply(&a_state).await.unwrap();
    assert_eq!(
        (
            applied.routes_removed,
            applied.neighbours_removed,
            applied.fdb_removed,
            applied.routes_added
        ),
        (1, 1, 1, 0)
    );
    let routes = nodes.exec(0, &["ip", "route", "show", "dev", "flannel.1"]);
    let neighbours = nodes.exec(0, &["ip", "neigh", "show", "dev", "flannel.1"]);
    let fdb = nodes.exec(0, &["bridge", "fdb", "show", "dev", "flannel.1"]);
    println!("node-a after node-b left:\n{routes}{neighbours}{fdb}");
    assert!(!routes.contains("10.42.2.0") && routes.contains("10.42.3.0/24 via 10.42.3.0 onlink"));
    assert!(!neighbours.contains("10.42.2.0") && neighbours.contains("10.42.3.0"));
    let mac_b = MacAddress::for_node("node-b").to_string();
    assert!(!fdb.contains(&mac_b) && fdb.contains(&MacAddress::for_node("node-c").to_string()));
    assert!(
        !nodes.ping(0, "10.42.1.0", "10.42.2.0"),
        "node-b is still reachable after leaving"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and network namespaces"]
async fn host_gw_between_two_namespaces() {
    let nodes = TwoNodes::new("hg");
    let [a_ip, b_ip] = nodes.addresses;
    let all = vec![
        node("node-a", "10.42.1.0/24", Backend::HostGw, a_ip),
        node("node-b", "10.42.2.0/24", Backend::HostGw, b_ip),
    ];
    let a = Dataplane::connect(Some(nodes.netns(0))).await.unwrap();
    let b = Dataplane::connect(Some(nodes.netns(1))).await.unwrap();
    // A flannel.1 left from an earlier vxlan run is removed.
    nodes.exec(
        0,
        &[
            "ip",
            "link",
            "add",
            "flannel.1",
            "type",
            "vxlan",
            "id",
            "1",
            "dstport",
            "8472",
            "dev",
            &nodes.veths[0],
        ],
    );
    let a_state = desired_for(&a, "node-a", a_ip, Backend::HostGw, &all).await;
    let b_state = desired_for(&b, "node-b", b_ip, Backend::HostGw, &all).await;
    a.apply(&a_state).await.unwrap();
    b.apply(&b_state).await.unwrap();
    assert!(!nodes.exec(0, &["ip", "link", "show"]).contains("flannel.1"));
    let routes = nodes.exec(0, &["ip", "route", "show", "10.42.2.0/24"]);
    assert!(
        routes.contains(&format!("10.42.2.0/24 via {b_ip} dev {}", nodes.veths[0])),
        "{routes}"
    );

    nodes.add_pod_bridge(0, "10.42.1.1/24");
    nodes.add_pod_bridge(1, "10.42.2.1/24");
    assert!(
        nodes.ping(0, "10.42.1.1", "10.42.2.1"),
        "ping over host-gw failed"
    );

    // node-b leaves.
    let a_state = desired_for(&a, "node-a", a_ip, Backend::HostGw, &all[..1]).await;
    assert_eq!(a.apply(&a_state).await.unwrap().routes_removed, 1);
    assert!(nodes
        .exec(0, &["ip", "route", "show", "10.42.2.0/24"])
        .trim()
        .is_empty());
    // The connected route of the veth is not ours and stays.
    assert!(nodes
        .exec(0, &["ip", "route", "show", "198.18.231.0/24"])
        .contains("proto kernel"));
}
