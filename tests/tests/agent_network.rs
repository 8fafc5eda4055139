//! Pods on the agent's node as real containers on the single-node pod network (needs root,
//! containerd, runc and the CNI plugins; see `k3rs_e2e::agent`): a Deployment of busybox
//! httpd pods becomes Ready, every pod gets an address from the node's pod CIDR behind
//! the `cni0` bridge, and the pods ping and fetch from each other (and the host reaches
//! them) by pod IP.

use k3rs_e2e::agent::{gateway_of, http_get, ipv4_in_cidr, pod_ip, AgentServer, BUSYBOX};
use k3rs_e2e::ok;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::ResourceExt;

fn deployment() -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: {BUSYBOX}
        command: ["sh", "-c", "mkdir -p /www && echo \"hello from $(hostname)\" > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports:
        - containerPort: 8080
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_pods_get_pod_cidr_addresses_and_reach_each_other() {
    let k = AgentServer::start();
    k.wait_node_ready(std::time::Duration::from_secs(30)).await;
    let cidr = k.pod_cidr().await;

    k.apply(&deployment());
    let started = std::time::Instant::now();
    let rollout = k.kubectl(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    if !rollout.status.success() {
        let pods = ok(k.kubectl(&["get", "pods", "-o", "wide"]));
        let first = pods
            .lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("");
        panic!(
            "rollout did not finish: {}\n{pods}\n{}",
            String::from_utf8_lossy(&rollout.stderr),
            k.diagnose(first)
        );
    }
    println!("3 replicas Ready {:?} after apply", started.elapsed());

    let api: Api<Pod> = Api::namespaced(k.client().await, "default");
    let pods = api
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    assert_eq!(pods.len(), 3);
    let mut ips = Vec::new();
    for pod in &pods {
        let ip = pod_ip(pod);
        assert!(
            ipv4_in_cidr(&ip, &cidr),
            "{} has {ip}, outside {cidr}",
            pod.name_any()
        );
        let status = pod.status.as_ref().unwrap();
        let listed: Vec<&str> = status
            .pod_ips
            .iter()
            .flatten()
            .map(|p| p.ip.as_str())
            .collect();
        assert_eq!(listed, vec![ip.as_str()], "podIPs of {}", pod.name_any());
        assert_eq!(status.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            pod.spec.as_ref().unwrap().node_name.as_deref(),
            Some(k.node.as_str())
        );
        ips.push((pod.name_any(), ip));
    }
    let distinct: std::collections::BTreeSet<_> = ips.iter().map(|(_, ip)| ip).collect();
    assert_eq!(distinct.len(), 3, "pod IPs are distinct: {ips:?}");

    // The bridge is the gateway of the pod CIDR.
    let gateway = gateway_of(&cidr);
    let prefix = cidr.split('/').nth(1).unwrap();
    let bridge = ok(std::process::Command::new("ip")
        .args(["-d", "addr", "show", "cni0"])
        .output()
        .unwrap());
    assert!(bridge.contains(" bridge "), "cni0 is a bridge:\n{bridge}");
    assert!(
        bridge.contains(&format!("inet {gateway}/{prefix} ")),
        "cni0 has {gateway}/{prefix}:\n{bridge}"
    );

    for (name, ip) in &ips {
        // Inside, eth0 carries the pod IP and the hostname is the pod name.
        let addr = k.exec(name, &["ip", "-4", "addr", "show", "eth0"]);
        assert!(
            addr.contains(&format!("inet {ip}/{prefix} ")),
            "{name} eth0:\n{addr}"
        );
        assert_eq!(k.exec(name, &["hostname"]).trim(), name);
        let route = k.exec(name, &["ip", "route"]);
        assert!(
            route.contains(&format!("default via {gateway}")),
            "{name} routes:\n{route}"
        );

        // Every other pod answers ping and HTTP on its pod IP.
        for (other, other_ip) in &ips {
            if other == name {
                continue;
            }
            let ping = k.exec(name, &["ping", "-c1", "-W2", other_ip]);
            assert!(
                ping.contains("1 packets received"),
                "{name} -> {other}:\n{ping}"
            );
            let page = k.exec(name, &["wget", "-qO-", &format!("http://{other_ip}:8080/")]);
            assert_eq!(
                page,
                format!("hello from {other}\n"),
                "{name} fetching from {other}"
            );
        }

        // The host reaches the pod through the bridge.
        let (status, body) = http_get(&format!("{ip}:8080"), "/");
        assert!(status.contains(" 200 "), "{status}");
        assert_eq!(body, format!("hello from {name}\n"));
    }
}
