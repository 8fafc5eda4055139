//! The agent's own Node, as `k3rs server` registers it (needs root, containerd, runc and
//! the CNI plugins; see `k3rs_e2e::agent`): Ready within seconds, with the labels, taints,
//! capacity, node info and images a kubelet reports, and a Lease it keeps renewing. With
//! `--disable-agent` there is no node at all.

use std::time::{Duration, Instant};

use k3rs_e2e::agent::AgentServer;
use k3rs_e2e::{ok, K3rs};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;

/// Go's name for this machine's architecture, as `kubernetes.io/arch` uses it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => panic!("unexpected architecture {other}"),
    }
}

/// Online CPUs of this machine, from `/sys/devices/system/cpu/online` (e.g. `0-3,6`).
fn online_cpus() -> u64 {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    text.trim()
        .split(',')
        .map(|range| match range.split_once('-') {
            Some((a, b)) => b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

/// MemTotal in bytes.
fn mem_total_bytes() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    kib * 1024
}

/// A memory quantity as the API prints it (`16384Ki`, `8Gi`, `123456`) in bytes.
fn quantity_bytes(q: &str) -> u64 {
    let (number, factor) = [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
    ]
    .iter()
    .find_map(|(suffix, factor)| q.strip_suffix(suffix).map(|n| (n, *factor)))
    .unwrap_or((q, 1));
    number
        .parse::<u64>()
        .unwrap_or_else(|_| panic!("unexpected memory quantity {q:?}"))
        * factor
}

/// containerd's version as `containerd --version` prints it (third field).
fn containerd_version() -> String {
    let out = ok(std::process::Command::new("containerd")
        .arg("--version")
        .output()
        .unwrap());
    out.split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("unexpected `containerd --version`: {out}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_node_is_registered_ready_with_labels_taints_capacity_images_and_lease() {
    let k = AgentServer::start_with(&[
        "--node-label",
        "e2e.k3rs.io/tier=edge",
        "--node-taint",
        "e2e.k3rs.io/dedicated=agent:PreferNoSchedule",
    ]);
    // From the API answering to the kubelet posting Ready.
    let (node, took) = k.wait_node_ready(Duration::from_secs(60)).await;
    println!("node Ready {took:?} after the API answered");
    assert!(
        took <= Duration::from_secs(10),
        "node took {took:?} to become Ready after the API answered"
    );
    let name = k.node.as_str();

    // Labels: the well-known ones, the control-plane role of a server, --node-label.
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let label = |key: &str| labels.get(key).map(String::as_str);
    assert_eq!(label("kubernetes.io/os"), Some("linux"), "{labels:?}");
    assert_eq!(label("kubernetes.io/arch"), Some(go_arch()), "{labels:?}");
    assert_eq!(label("kubernetes.io/hostname"), Some(name), "{labels:?}");
    assert_eq!(
        label("node-role.kubernetes.io/control-plane"),
        Some("true"),
        "{labels:?}"
    );
    assert_eq!(label("e2e.k3rs.io/tier"), Some("edge"), "{labels:?}");

    // The --node-taint, exactly once.
    let spec = node.spec.clone().unwrap_or_default();
    let taints = spec.taints.clone().unwrap_or_default();
    let ours: Vec<_> = taints
        .iter()
        .filter(|t| t.key == "e2e.k3rs.io/dedicated")
        .collect();
    assert_eq!(ours.len(), 1, "taints: {taints:?}");
    assert_eq!(ours[0].value.as_deref(), Some("agent"));
    assert_eq!(ours[0].effect, "PreferNoSchedule");
    // Node IPAM gave it the first /24 of the default cluster CIDR.
    assert_eq!(spec.pod_cidr.as_deref(), Some("10.42.0.0/24"), "{spec:?}");

    let status = node.status.clone().unwrap();
    // Capacity and allocatable from the machine.
    let capacity = status.capacity.clone().unwrap_or_default();
    assert_eq!(
        capacity.get("cpu").map(|q| q.0.clone()),
        Some(online_cpus().to_string()),
        "capacity: {capacity:?}"
    );
    let memory = quantity_bytes(&capacity.get("memory").expect("memory capacity").0);
    assert_eq!(memory, mem_total_bytes(), "capacity memory vs MemTotal");
    assert_eq!(capacity.get("pods").map(|q| q.0.as_str()), Some("110"));
    let allocatable = status.allocatable.clone().unwrap_or_default();
    for key in ["cpu", "memory", "pods"] {
        assert!(
            allocatable.contains_key(key),
            "allocatable: {allocatable:?}"
        );
    }
    assert!(quantity_bytes(&allocatable["memory"].0) <= memory);

    // Addresses from --node-ip and the node name.
    let addresses: Vec<(String, String)> = status
        .addresses
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|a| (a.type_, a.address))
        .collect();
    assert!(
        addresses.contains(&("InternalIP".into(), "127.0.0.1".into())),
        "{addresses:?}"
    );
    assert!(
        addresses.contains(&("Hostname".into(), name.into())),
        "{addresses:?}"
    );

    // Node info: the runtime it really talks to, and the server's own version.
    let info = status.node_info.clone().unwrap();
    assert_eq!(
        info.container_runtime_version,
        format!("containerd://{}", containerd_version())
    );
    let version: serde_json::Value =
        serde_json::from_str(&ok(k.kubectl(&["version", "-o", "json"]))).unwrap();
    assert_eq!(
        info.kubelet_version, version["serverVersion"]["gitVersion"],
        "kubeletVersion is the server's version"
    );
    assert_eq!(info.operating_system, "linux");
    assert_eq!(info.architecture, go_arch());
    assert!(
        !info.kernel_version.is_empty() && !info.os_image.is_empty(),
        "{info:?}"
    );
    assert!(!info.boot_id.is_empty(), "{info:?}");

    // Conditions: Ready, and no pressure.
    let conditions = status.conditions.clone().unwrap_or_default();
    for kind in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        let condition = conditions
            .iter()
            .find(|c| c.type_ == kind)
            .unwrap_or_else(|| panic!("no {kind} condition: {conditions:?}"));
        assert_eq!(condition.status, "False", "{condition:?}");
    }
    let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.reason.as_deref(), Some("KubeletReady"), "{ready:?}");

    // kubectl's view: Ready, with the control-plane role.
    let row = ok(k.kubectl(&["get", "node", name, "--no-headers"]));
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(columns[0], name, "{row}");
    assert_eq!(columns[1], "Ready", "{row}");
    assert!(
        columns[2].split(',').any(|role| role == "control-plane"),
        "{row}"
    );

    // The imported images are reported in the node status.
    let client = k.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let started = Instant::now();
    let images = loop {
        let node = nodes.get(name).await.unwrap();
        let images = node.status.and_then(|s| s.images).unwrap_or_default();
        let has = |image: &str| {
            images.iter().any(|i| {
                i.names
                    .as_ref()
                    .is_some_and(|n| n.iter().any(|n| n == image))
            })
        };
        if has("docker.io/library/busybox:1.35") && has("docker.io/rancher/mirrored-pause:3.6") {
            break images;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "status.images lacks busybox:1.35 or pause:3.6 after 30 s: {images:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let busybox = images
        .iter()
        .find(|i| {
            i.names
                .as_ref()
                .unwrap()
                .iter()
                .any(|n| n == "docker.io/library/busybox:1.35")
        })
        .unwrap();
    assert!(busybox.size_bytes.unwrap_or(0) > 500_000, "{busybox:?}");

    // The Lease: held by the node and renewed (every 10 s).
    let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    let lease = leases.get(name).await.unwrap();
    let spec = lease.spec.clone().unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some(name));
    assert_eq!(spec.lease_duration_seconds, Some(40));
    let owner = &lease.metadata.owner_references.clone().unwrap_or_default();
    assert!(
        owner.iter().any(|o| o.kind == "Node" && o.name == name),
        "the Lease is owned by its Node: {owner:?}"
    );
    let first = spec.renew_time.expect("renewTime").0;
    let started = Instant::now();
    loop {
        let renewed = leases
            .get(name)
            .await
            .unwrap()
            .spec
            .unwrap()
            .renew_time
            .unwrap()
            .0;
        if renewed > first {
            println!("lease renewed after {:?}", started.elapsed());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the Lease was not renewed within 15 s (renewTime still {first:?})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[test]
fn disable_agent_registers_no_node_and_starts_no_runtime() {
    // `K3rs::start` passes --disable-agent.
    let k = K3rs::start();
    std::thread::sleep(Duration::from_secs(2));
    let nodes = ok(k.kubectl(&["get", "nodes", "-o", "name"]));
    assert_eq!(nodes, "", "no node without an agent");
    let data = k.data_dir();
    assert!(!data.join("agent").exists(), "no agent dir in the data dir");
    let pid = k.pid().unwrap();
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    assert_eq!(
        children.trim(),
        "",
        "k3rs --disable-agent started no child process"
    );
}
