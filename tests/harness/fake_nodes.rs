//! Nodes without kubelets, for control-plane tests: Node objects created through the API,
//! marked Ready, their Leases renewed, and pod status written the way a kubelet writes it.
//! Nothing here runs containers; it only plays the kubelet's part of the API conversation.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::{json, Value};

/// The RFC 3339 time now, as the API writes timestamps.
pub fn now() -> String {
    // Seconds precision, UTC, like metav1.Time.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// What a fake node offers.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub name: String,
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    pub labels: Value,
    pub taints: Value,
}

impl NodeSpec {
    pub fn new(name: &str) -> Self {
        NodeSpec {
            name: name.into(),
            cpu: "4".into(),
            memory: "8Gi".into(),
            pods: 110,
            labels: json!({}),
            taints: json!([]),
        }
    }

    pub fn labels(mut self, labels: Value) -> Self {
        self.labels = labels;
        self
    }

    pub fn taints(mut self, taints: Value) -> Self {
        self.taints = taints;
        self
    }

    pub fn resources(mut self, cpu: &str, memory: &str, pods: u32) -> Self {
        self.cpu = cpu.into();
        self.memory = memory.into();
        self.pods = pods;
        self
    }
}

/// Register a Node (with `kubernetes.io/hostname` and os/arch labels), mark it Ready and
/// create its Lease in `kube-node-lease`, as a kubelet does on start.
pub async fn add_ready_node(client: &Client, spec: &NodeSpec) -> Node {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut labels = json!({
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
    });
    if let Some(extra) = spec.labels.as_object() {
        for (k, v) in extra {
            labels[k] = v.clone();
        }
    }
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": spec.name, "labels": labels},
        "spec": {"taints": spec.taints},
    }))
    .unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    set_node_ready(client, &spec.name, spec, true).await;
    renew_lease(client, &spec.name).await;
    nodes.get(&spec.name).await.unwrap()
}

/// Write the node's status as a kubelet does: capacity, allocatable, addresses and the
/// Ready condition.
pub async fn set_node_ready(client: &Client, name: &str, spec: &NodeSpec, ready: bool) {
    let nodes: Api<Node> = Api::all(client.clone());
    let now = now();
    let status = json!({"status": {
        "capacity": {"cpu": spec.cpu, "memory": spec.memory, "pods": spec.pods.to_string()},
        "allocatable": {"cpu": spec.cpu, "memory": spec.memory, "pods": spec.pods.to_string()},
        "addresses": [{"type": "InternalIP", "address": "192.0.2.1"}, {"type": "Hostname", "address": name}],
        "conditions": [{
            "type": "Ready",
            "status": if ready { "True" } else { "False" },
            "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
            "message": if ready { "kubelet is posting ready status" } else { "kubelet is not ready" },
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        }],
        "nodeInfo": {"kubeletVersion": "v1.33.5+k3rs1", "operatingSystem": "linux", "architecture": "amd64",
            "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "",
            "containerRuntimeVersion": "", "kubeProxyVersion": ""},
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// Create or renew the node's Lease, as the kubelet does every 10 s.
pub async fn renew_lease(client: &Client, name: &str) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let micro = now().replace('Z', ".000000Z");
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro},
    }))
    .unwrap();
    leases
        .patch(
            name,
            &PatchParams::apply("fake-kubelet").force(),
            &Patch::Apply(&lease),
        )
        .await
        .unwrap();
}

/// Keep renewing the leases of `names` every `every` until the returned task is aborted.
pub fn keep_leases(
    client: Client,
    names: Vec<String>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            for name in &names {
                renew_lease(&client, name).await;
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// Mark a pod Running with every container ready (or not), with a pod IP, as a kubelet
/// reports a started pod.
pub async fn set_pod_running(client: &Client, ns: &str, name: &str, ready: bool, ip: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod = pods.get(name).await.unwrap();
    let now = now();
    let flag = if ready { "True" } else { "False" };
    let containers: Vec<Value> = pod
        .spec
        .as_ref()
        .map(|s| {
            s.containers.iter().map(|c| json!({
            "name": c.name, "image": c.image, "imageID": "", "ready": ready, "restartCount": 0,
            "started": true, "state": {"running": {"startedAt": now}},
        })).collect()
        })
        .unwrap_or_default();
    let status = json!({"status": {
        "phase": "Running",
        "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.0.2.1", "hostIPs": [{"ip": "192.0.2.1"}],
        "startTime": now,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
            {"type": "Ready", "status": flag, "lastTransitionTime": now},
        ],
        "containerStatuses": containers,
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// Mark a pod finished (`Succeeded` or `Failed`), as a kubelet reports a pod whose
/// containers all exited.
pub async fn set_pod_finished(client: &Client, ns: &str, name: &str, succeeded: bool) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let now = now();
    let phase = if succeeded { "Succeeded" } else { "Failed" };
    let status = json!({"status": {
        "phase": phase,
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now},
        ],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// Finish deleting every terminating pod (any namespace) every `every`, as kubelets do
/// once a pod's containers have stopped, until the returned task is aborted.
pub fn reap_terminating_pods(client: Client, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::all(client.clone());
        loop {
            if let Ok(list) = pods.list(&Default::default()).await {
                for pod in list
                    .items
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_some())
                {
                    let ns = pod.metadata.namespace.clone().unwrap_or_default();
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
                    let _ = api
                        .delete(&name, &kube::api::DeleteParams::default().grace_period(0))
                        .await;
                }
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// Mark every pod in `ns` matching `selector` Running and Ready soon after it appears
/// (checked every `every`), as kubelets report started pods, until the task is aborted.
/// Pods being deleted are left alone.
pub fn keep_pods_ready(
    client: Client,
    ns: &str,
    selector: &str,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    let (ns, selector) = (ns.to_string(), selector.to_string());
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let mut next_ip = 10u32;
        loop {
            let params = kube::api::ListParams::default().labels(&selector);
            if let Ok(list) = pods.list(&params).await {
                for pod in &list.items {
                    let ready = pod
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| {
                            c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                    if ready || pod.metadata.deletion_timestamp.is_some() {
                        continue;
                    }
                    next_ip += 1;
                    let ip = format!("10.42.{}.{}", next_ip / 250, next_ip % 250 + 2);
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    // `set_pod_running` panics if the pod went away meanwhile; running it
                    // as its own task turns that into an error this loop ignores.
                    let (client, ns) = (client.clone(), ns.clone());
                    let _ = tokio::spawn(async move {
                        set_pod_running(&client, &ns, &name, true, &ip).await;
                    })
                    .await;
                }
            }
            tokio::time::sleep(every).await;
        }
    })
}
