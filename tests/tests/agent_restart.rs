//! Restarting the server (and with it the agent) leaves pods running (needs root,
//! containerd, runc and the CNI plugins; see `k3rs_e2e::agent`): after a SIGKILL and
//! after a clean stop, the containers keep their processes, IDs and IPs, the restarted
//! agent adopts them without restarting anything, and new pods still start.

use std::collections::BTreeMap;
use std::time::Duration;

use k3rs_e2e::agent::{
    container_status, is_ready, phase, pod_ip, process_running, AgentServer, BUSYBOX,
};

fn pod(name: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {BUSYBOX}
    command: ["sh", "-c", "mkdir -p /www && echo {name} > /www/index.html && exec httpd -f -p 8080 -h /www"]
"#
    )
}

/// What must not change across a restart: container ID, host PID, pod IP.
#[derive(Debug, PartialEq, Eq)]
struct Running {
    container_id: String,
    pid: u32,
    ip: String,
}

async fn snapshot(k: &AgentServer, names: &[&str]) -> BTreeMap<String, Running> {
    let mut all = BTreeMap::new();
    for name in names {
        let pod = k.wait_pod_ready(name).await;
        let status = container_status(&pod, "main").unwrap();
        assert_eq!(status.restart_count, 0, "{name} was restarted: {status:?}");
        let container_id = status.container_id.clone().unwrap();
        let pid = k.container_pid(&container_id);
        all.insert(
            name.to_string(),
            Running {
                container_id,
                pid,
                ip: pod_ip(&pod),
            },
        );
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_survive_server_restarts_and_are_adopted() {
    let mut k = AgentServer::start();
    k.wait_node_ready(Duration::from_secs(30)).await;
    k.apply(&format!("{}---{}", pod("keep-1"), pod("keep-2")));
    let before = snapshot(&k, &["keep-1", "keep-2"]).await;

    // ---- SIGKILL: no chance to clean up; the containers run on under their shims.
    let renewed = k.lease_renew_time().await.expect("the node has a Lease");
    k.kill9();
    std::thread::sleep(Duration::from_secs(1));
    for (name, running) in &before {
        assert!(
            process_running(running.pid),
            "{name}'s process {} died with k3rs",
            running.pid
        );
    }
    k.start_again();
    // The node's status is still the old kubelet's: wait for the new one to renew the
    // Lease, then give it a few relist periods, in which adopting must restart nothing.
    let started = std::time::Instant::now();
    k.wait_lease_renewed(&renewed, Duration::from_secs(30))
        .await;
    println!("new kubelet up {:?} after the restart", started.elapsed());
    std::thread::sleep(Duration::from_secs(3));
    k.wait_node_ready(Duration::from_secs(30)).await;
    let after = snapshot(&k, &["keep-1", "keep-2"]).await;
    assert_eq!(after, before, "containers adopted as they were");
    // The new kubelet serves the old pods' logs and exec.
    assert_eq!(k.exec("keep-1", &["cat", "/www/index.html"]), "keep-1\n");

    // A new pod starts next to them, and the network between them works.
    k.apply(&pod("after-kill"));
    let new = k.wait_pod_ready("after-kill").await;
    let new_ip = pod_ip(&new);
    assert!(
        before.values().all(|r| r.ip != new_ip),
        "{new_ip} was already taken"
    );
    let page = k.exec(
        "keep-1",
        &["wget", "-qO-", &format!("http://{new_ip}:8080/")],
    );
    assert_eq!(page, "after-kill\n");
    let page = k.exec(
        "after-kill",
        &[
            "wget",
            "-qO-",
            &format!("http://{}:8080/", before["keep-2"].ip),
        ],
    );
    assert_eq!(page, "keep-2\n");

    // ---- A clean stop (SIGTERM) stops containerd but not the containers either.
    let before = snapshot(&k, &["keep-1", "keep-2", "after-kill"]).await;
    let renewed = k.lease_renew_time().await.expect("the node has a Lease");
    k.stop();
    for (name, running) in &before {
        assert!(
            process_running(running.pid),
            "{name}'s process {} stopped with k3rs",
            running.pid
        );
    }
    k.start_again();
    k.wait_lease_renewed(&renewed, Duration::from_secs(30))
        .await;
    std::thread::sleep(Duration::from_secs(3));
    k.wait_node_ready(Duration::from_secs(30)).await;
    let after = snapshot(&k, &["keep-1", "keep-2", "after-kill"]).await;
    assert_eq!(after, before, "containers adopted after a clean restart");
    k.apply(&pod("after-stop"));
    let pod = k.wait_pod_ready("after-stop").await;
    assert!(is_ready(&pod) && phase(&pod) == "Running");
}
