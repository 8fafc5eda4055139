//! An agent through a server restart, on a real two-node cluster (see
//! `k3rs_e2e::cluster`): it talks to the cluster through its load balancer on
//! 127.0.0.1:6444 (kubeconfigs and the saved server list say so), and after the server
//! is stopped and started again it renews its Lease and starts new pods without being
//! restarted itself, while its running pods keep running. Needs root. (What the agent's
//! identities may do is `cluster_identities`.)

use std::time::{Duration, Instant};

use k3rs_e2e::cluster::{node_ip, node_netns, Backend, Cluster, SERVER_PORT};
use k3rs_e2e::ok;

fn lease_renew_time(cluster: &Cluster, node: &str) -> String {
    ok(cluster.kubectl(&[
        "get",
        "lease",
        "-n",
        "kube-node-lease",
        node,
        "-o",
        "jsonpath={.spec.renewTime}",
    ]))
}

fn container_id(cluster: &Cluster, pod: &str) -> String {
    ok(cluster.kubectl(&[
        "get",
        "pod",
        pod,
        "-o",
        "jsonpath={.status.containerStatuses[0].containerID}",
    ]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_goes_through_its_load_balancer_and_survives_a_server_restart() {
    let mut cluster = Cluster::start(2, Backend::Vxlan);
    let agent = node_netns(2);
    let agent_dir = cluster.node(&agent).data_dir().join("agent");

    // Every kubeconfig of the agent names the load balancer, not the server.
    for file in [
        "kubelet.kubeconfig",
        "kubeproxy.kubeconfig",
        "k3rscontroller.kubeconfig",
    ] {
        let text = std::fs::read_to_string(agent_dir.join(file)).unwrap();
        assert!(
            text.contains("server: https://127.0.0.1:6444"),
            "{file}:\n{text}"
        );
    }
    // The cluster's server list, saved for the --server it joined.
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(agent_dir.join("etc/k3rs-agent-load-balancer.json")).unwrap(),
    )
    .unwrap();
    let server = format!("{}:{SERVER_PORT}", node_ip(1));
    assert_eq!(state["ServerURL"], format!("https://{server}"), "{state}");
    assert_eq!(
        state["ServerAddresses"],
        serde_json::json!([server]),
        "{state}"
    );

    cluster.run_web_pod("before", &agent);
    cluster.wait_pod_ready("before").await;
    let before_id = container_id(&cluster, "before");

    let agent_pid = cluster.node(&agent).pid();
    let stopped = Instant::now();
    cluster.restart_node(&node_netns(1));
    println!("server back after {:?}", stopped.elapsed());
    let renewed_at_restart = lease_renew_time(&cluster, &agent);

    // The agent renews its Lease through the restarted server (every 10 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = lease_renew_time(&cluster, &agent);
        if now != renewed_at_restart {
            println!(
                "agent renewed its Lease {:?} after the server stopped",
                stopped.elapsed()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not renew its Lease within 30 s of the server's restart:\n{}",
            cluster.logs(40)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // It still starts pods, its running pod was left alone, and it never restarted.
    cluster.run_web_pod("after", &agent);
    cluster.wait_pod_ready("after").await;
    cluster.wait_pod_ready("before").await;
    assert_eq!(container_id(&cluster, "before"), before_id);
    assert!(cluster.node_mut(&agent).running(), "the agent exited");
    assert_eq!(cluster.node(&agent).pid(), agent_pid);
    let log = cluster.node(&agent).log();
    assert!(
        log.contains("agent load balancer listening"),
        "agent log:\n{log}"
    );
}
