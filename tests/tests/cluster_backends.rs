//! The other overlay backends on real two-node clusters (see `k3rs_e2e::cluster`):
//! `host-gw` routes each node's pod /24 via the peer's underlay address, with no VXLAN
//! device, and pods on different nodes ping and fetch from each other; `none` creates no
//! `flannel.1` and no overlay routes on any node. Needs root.

use k3rs_e2e::agent::pod_ip;
use k3rs_e2e::cluster::{node_ip, Backend, Cluster};
use k3rs_e2e::ok;

fn pod_cidr(cluster: &Cluster, node: &str) -> String {
    ok(cluster.kubectl(&["get", "node", node, "-o", "jsonpath={.spec.podCIDR}"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_gw_routes_pods_between_nodes() {
    let cluster = Cluster::start(2, Backend::HostGw);
    let names: Vec<String> = cluster.nodes.iter().map(|n| n.name.clone()).collect();
    let cidrs: Vec<String> = names.iter().map(|n| pod_cidr(&cluster, n)).collect();
    assert_ne!(cidrs[0], cidrs[1], "both nodes got {}", cidrs[0]);

    for (i, name) in names.iter().enumerate() {
        let link = cluster.node_exec(name, &["ip", "link", "show", "flannel.1"]);
        assert!(!link.status.success(), "{name}: host-gw made a flannel.1");
        let peer = 1 - i;
        let routes = cluster.node_exec_ok(name, &["ip", "route"]);
        let expected = format!("{} via {} dev eth0", cidrs[peer], node_ip(peer + 1));
        assert!(
            routes.lines().any(|l| l.starts_with(&expected)),
            "{name}: no route {expected:?}:\n{routes}"
        );
    }

    for (pod, node) in ["gw1", "gw2"].iter().zip(&names) {
        cluster.run_web_pod(pod, node);
    }
    let ip1 = pod_ip(&cluster.wait_pod_ready("gw1").await);
    let ip2 = pod_ip(&cluster.wait_pod_ready("gw2").await);
    for (from, from_ip, to, to_ip, to_node) in [
        ("gw1", &ip1, "gw2", &ip2, &names[1]),
        ("gw2", &ip2, "gw1", &ip1, &names[0]),
    ] {
        let ping = cluster.exec(from, &["ping", "-c", "2", "-W", "3", to_ip]);
        assert!(
            ping.status.success(),
            "{from} cannot ping {to} ({to_ip}) over host-gw:\n{}",
            String::from_utf8_lossy(&ping.stdout)
        );
        let page = cluster.exec(from, &["wget", "-qO-", &format!("http://{to_ip}:80/")]);
        let body = String::from_utf8_lossy(&page.stdout);
        assert!(
            body.contains(&format!("hello from {to_node}")),
            "{from} fetched {body:?} from {to}"
        );
        let log = ok(cluster.kubectl(&["logs", to]));
        assert!(
            log.contains(&format!("{from_ip}]:")),
            "{to} did not see {from}'s pod IP {from_ip} as the source:\n{log}"
        );
    }
}

#[test]
fn none_backend_creates_no_overlay() {
    let cluster = Cluster::start(2, Backend::None);
    for node in &cluster.nodes {
        let link = cluster.node_exec(&node.name, &["ip", "link", "show", "flannel.1"]);
        assert!(
            !link.status.success(),
            "{}: --flannel-backend none made a flannel.1",
            node.name
        );
        let routes = cluster.node_exec_ok(&node.name, &["ip", "route"]);
        assert!(
            !routes.contains("10.42."),
            "{}: --flannel-backend none left pod routes:\n{routes}",
            node.name
        );
    }
}
