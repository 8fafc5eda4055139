//! Three real nodes (a server and two joined agents, each in its own network namespace;
//! see `k3rs_e2e::cluster`) on the VXLAN overlay: every node gets a flannel-style
//! `flannel.1` and its own /24 behind `cni0`; pods pinned to different nodes ping and
//! fetch from each other by pod IP and see each other's pod IP as the source (no
//! masquerade inside the cluster CIDR); and a Node that is deleted (its agent stopped)
//! takes its route, neighbour and FDB entry off the other nodes. Needs root.

use std::time::{Duration, Instant};

use k3rs_e2e::agent::{gateway_of, pod_ip};
use k3rs_e2e::cluster::{node_ip, Backend, Cluster};
use k3rs_e2e::ok;

fn pod_cidr(cluster: &Cluster, node: &str) -> String {
    ok(cluster.kubectl(&["get", "node", node, "-o", "jsonpath={.spec.podCIDR}"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_vxlan_reach_each_other_and_forget_a_deleted_node() {
    let mut cluster = Cluster::start(3, Backend::Vxlan);
    let names: Vec<String> = cluster.nodes.iter().map(|n| n.name.clone()).collect();

    // Distinct /24s, one per node.
    let cidrs: Vec<String> = names.iter().map(|n| pod_cidr(&cluster, n)).collect();
    for cidr in &cidrs {
        assert!(
            cidr.starts_with("10.42.") && cidr.ends_with(".0/24"),
            "podCIDR {cidr:?} is not a /24 of 10.42.0.0/16"
        );
    }
    let mut unique = cidrs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "podCIDRs are not distinct: {cidrs:?}");

    // flannel.1 as flannel makes it.
    for name in &names {
        let link = cluster.node_exec_ok(name, &["ip", "-d", "link", "show", "flannel.1"]);
        for expected in ["vxlan id 1 ", "dstport 8472", "nolearning", "mtu 1450"] {
            assert!(
                link.contains(expected),
                "{name}: flannel.1 lacks {expected:?}:\n{link}"
            );
        }
    }

    // A web pod on every node.
    let pods: Vec<String> = (1..=3).map(|i| format!("web{i}")).collect();
    for (pod, node) in pods.iter().zip(&names) {
        cluster.run_web_pod(pod, node);
    }
    let mut ips = Vec::new();
    for (pod, cidr) in pods.iter().zip(&cidrs) {
        let ip = pod_ip(&cluster.wait_pod_ready(pod).await);
        assert!(
            k3rs_e2e::agent::ipv4_in_cidr(&ip, cidr),
            "{pod} got {ip}, outside its node's {cidr}"
        );
        ips.push(ip);
    }

    // cni0 carries the node's gateway address (it exists once a pod runs).
    for (name, cidr) in names.iter().zip(&cidrs) {
        let addr = cluster.node_exec_ok(name, &["ip", "-d", "addr", "show", "cni0"]);
        let expected = format!("inet {}/24", gateway_of(cidr));
        assert!(
            addr.contains(&expected),
            "{name}: cni0 lacks {expected}:\n{addr}"
        );
    }

    // Each pod routes the cluster CIDR through its node's cni0, as flannel's CNI config
    // has it, besides its default route.
    for (pod, cidr) in pods.iter().zip(&cidrs) {
        let routes = ok(cluster.exec(pod, &["ip", "route"]));
        let expected = format!("10.42.0.0/16 via {}", gateway_of(cidr));
        assert!(
            routes.contains(&expected) && routes.contains("default via"),
            "{pod}: routes lack {expected:?} or a default route:\n{routes}"
        );
    }

    // Every pod pings and fetches every other pod across the overlay.
    for (from, from_ip) in pods.iter().zip(&ips) {
        for ((to, to_ip), to_node) in pods.iter().zip(&ips).zip(&names) {
            if from == to {
                continue;
            }
            let ping = cluster.exec(from, &["ping", "-c", "2", "-W", "3", to_ip]);
            assert!(
                ping.status.success(),
                "{from} ({from_ip}) cannot ping {to} ({to_ip}):\n{}",
                String::from_utf8_lossy(&ping.stdout)
            );
            // No -T: busybox's wget crashes with it in this image.
            let page = cluster.exec(from, &["wget", "-qO-", &format!("http://{to_ip}:80/")]);
            let body = String::from_utf8_lossy(&page.stdout);
            assert!(
                page.status.success() && body.contains(&format!("hello from {to_node}")),
                "{from} fetched from {to} ({to_ip}): {:?} {body:?} {}",
                page.status,
                String::from_utf8_lossy(&page.stderr)
            );
        }
    }
    // The receiving httpd logged the senders' pod IPs (not a node address).
    for (to, to_ip) in pods.iter().zip(&ips) {
        let log = ok(cluster.kubectl(&["logs", to]));
        for from_ip in ips.iter().filter(|ip| *ip != to_ip) {
            assert!(
                log.contains(&format!("{from_ip}]:")),
                "{to}'s httpd log does not show the sender {from_ip}:\n{log}"
            );
        }
    }

    // Node 3 goes away: its agent stops and its Node is deleted.
    let gone = names[2].clone();
    let gone_cidr = cidrs[2].clone();
    let gone_vtep = gone_cidr.trim_end_matches("/24").to_string();
    let gone_underlay = node_ip(3);
    for name in &names[..2] {
        let fdb = cluster.node_exec_ok(name, &["bridge", "fdb", "show", "dev", "flannel.1"]);
        assert!(
            fdb.contains(&format!("dst {gone_underlay} ")),
            "{name}: no FDB entry for {gone} before the deletion:\n{fdb}"
        );
    }
    cluster.stop_node(&gone);
    ok(cluster.kubectl(&["delete", "node", &gone]));
    let started = Instant::now();
    for name in &names[..2] {
        loop {
            let routes = cluster.node_exec_ok(name, &["ip", "route"]);
            let neigh = cluster.node_exec_ok(name, &["ip", "neigh", "show", "dev", "flannel.1"]);
            let fdb = cluster.node_exec_ok(name, &["bridge", "fdb", "show", "dev", "flannel.1"]);
            let route_left = routes.lines().any(|l| l.starts_with(&gone_cidr));
            let neigh_left = neigh
                .lines()
                .any(|l| l.starts_with(&format!("{gone_vtep} ")));
            let fdb_left = fdb.contains(&format!("dst {gone_underlay} "));
            if !route_left && !neigh_left && !fdb_left {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{name} still has state for deleted node {gone} after 30 s:\n\
                 routes:\n{routes}\nneigh:\n{neigh}\nfdb:\n{fdb}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // The other peer is still there.
        let routes = cluster.node_exec_ok(name, &["ip", "route"]);
        assert_eq!(
            routes
                .lines()
                .filter(|l| l.contains("dev flannel.1"))
                .count(),
            1,
            "{name} should keep exactly one overlay route:\n{routes}"
        );
    }
    eprintln!(
        "deleted node's overlay state gone from the others in {:?}",
        started.elapsed()
    );
    // Pods on the remaining nodes still reach each other.
    let ping = cluster.exec(&pods[0], &["ping", "-c", "1", "-W", "3", &ips[1]]);
    assert!(ping.status.success(), "web1 lost web2 after node 3 left");

    // The deleted node's password Secret went with it (the others' stay).
    let secret = |node: &str| {
        cluster
            .kubectl(&[
                "get",
                "secret",
                "-n",
                "kube-system",
                &format!("{node}.node-password.k3rs"),
            ])
            .status
            .success()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while secret(&gone) {
        assert!(
            Instant::now() < deadline,
            "{gone}'s password Secret outlived its Node by 10 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(secret(&names[1]), "{}'s password Secret is gone", names[1]);
}
