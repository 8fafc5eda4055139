//! The Node object: registration, status (conditions, capacity, addresses, images) and
//! the heartbeat Lease in `kube-node-lease`.

mod conditions;
pub mod eviction;
pub mod machine;

use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use ipnet::IpNet;
use k3rs_core::Shutdown;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use tracing::warn;

use crate::runtime::RuntimeService;
use crate::{Config, Error, Result};

/// Upstream's lease duration and renew interval.
const LEASE_SECONDS: i32 = 40;
const RENEW_INTERVAL: Duration = Duration::from_secs(10);
/// A status with no change is still posted this often (upstream's nodeStatusReportFrequency).
const REPORT_FREQUENCY: Duration = Duration::from_secs(300);
/// How often the runtime's image list is read for `status.images`.
const IMAGES_INTERVAL: Duration = Duration::from_secs(10);

/// What registration learned, for the status loop.
pub struct Registration {
    pub runtime_version: String,
    pub node_uid: String,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn labels(config: &Config) -> serde_json::Map<String, Value> {
    let arch = machine::architecture();
    let mut labels = serde_json::Map::new();
    for (k, v) in [
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", arch),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", arch),
        ("kubernetes.io/hostname", config.node_name.as_str()),
        ("node.kubernetes.io/instance-type", "k3rs"),
        ("beta.kubernetes.io/instance-type", "k3rs"),
    ] {
        labels.insert(k.into(), json!(v));
    }
    if config.control_plane {
        labels.insert(
            "node-role.kubernetes.io/control-plane".into(),
            json!("true"),
        );
        labels.insert("node-role.kubernetes.io/master".into(), json!("true"));
    }
    for (k, v) in &config.labels {
        labels.insert(k.clone(), json!(v));
    }
    labels
}

fn addresses(config: &Config) -> Vec<Value> {
    let mut out: Vec<Value> = config
        .node_ips
        .iter()
        .map(|ip| json!({"type": "InternalIP", "address": ip.to_string()}))
        .collect();
    out.extend(
        config
            .node_external_ips
            .iter()
            .map(|ip| json!({"type": "ExternalIP", "address": ip.to_string()})),
    );
    out.push(json!({"type": "Hostname", "address": config.node_name}));
    out
}

/// Create the Node, or bring an existing one (a restart, or a re-joining machine) up to
/// date. Taints from `--node-taint` are only set at creation, as upstream.
pub async fn register(config: &Config, runtime_version: &str) -> Result<Registration> {
    let nodes: Api<Node> = Api::all(config.client.clone());
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": config.node_name,
            "labels": labels(config),
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {
            "providerID": format!("k3rs://{}", config.node_name),
            "taints": config.taints,
        },
    }))
    .map_err(|e| Error::Other(format!("node object: {e}")))?;
    let mut attempt = 0u32;
    let created = loop {
        match nodes.create(&PostParams::default(), &node).await {
            Ok(node) => break node,
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let patch = json!({"metadata": {"labels": labels(config)}});
                break nodes
                    .patch(
                        &config.node_name,
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await?;
            }
            // The API may still be starting (in-process) or briefly unreachable.
            Err(err) if attempt < 50 => {
                attempt += 1;
                if attempt % 10 == 1 {
                    warn!(error = %err, "registering node, retrying");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => return Err(err.into()),
        }
    };
    let registration = Registration {
        runtime_version: runtime_version.to_string(),
        node_uid: created.metadata.uid.unwrap_or_default(),
    };
    // Post a first status right away so the node has addresses and capacity before the
    // scheduler looks at it.
    post_status(
        config,
        &registration,
        &conditions::Observed::default(),
        &[],
        &[],
    )
    .await?;
    Ok(registration)
}

/// Wait until node IPAM has given this node a pod CIDR.
pub async fn wait_pod_cidr(
    client: &kube::Client,
    node: &str,
    shutdown: &Shutdown,
) -> Result<IpNet> {
    let nodes: Api<Node> = Api::all(client.clone());
    loop {
        if let Some(cidr) = nodes
            .get_opt(node)
            .await?
            .and_then(|n| n.spec)
            .and_then(|s| s.pod_cidr)
        {
            return cidr
                .parse()
                .map_err(|_| Error::Other(format!("node {node} has an invalid podCIDR {cidr:?}")));
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Err(Error::Other("shutting down".into())),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

async fn post_status(
    config: &Config,
    registration: &Registration,
    observed: &conditions::Observed,
    previous: &[Value],
    images: &[Value],
) -> Result<Vec<Value>> {
    let nodes: Api<Node> = Api::all(config.client.clone());
    let capacity = machine::capacity(&config.data_dir);
    let conditions = conditions::render(observed, &config.eviction_hard, previous, &now());
    let status = json!({
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": addresses(config),
            "conditions": conditions,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": config.kubelet_port}},
            "nodeInfo": machine::node_info(&registration.runtime_version),
            "images": images,
        }
    });
    nodes
        .patch_status(
            &config.node_name,
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await?;
    Ok(conditions)
}

async fn observe(config: &Config, runtime: &dyn RuntimeService) -> conditions::Observed {
    let (runtime_ready, runtime_message, cri_network) = match runtime.status().await {
        Ok(status) => {
            let conditions = status.map(|s| s.conditions).unwrap_or_default();
            let get = |t: &str| conditions.iter().find(|c| c.r#type == t);
            let runtime = get("RuntimeReady");
            (
                runtime.is_none_or(|c| c.status),
                runtime.map(|c| c.message.clone()).unwrap_or_default(),
                get("NetworkReady").is_none_or(|c| c.status),
            )
        }
        Err(status) => (false, status.message().to_string(), false),
    };
    // containerd reports NetworkReady once a CNI config is in its conf dir: ours, or with
    // `--flannel-backend none` the one the user brings.
    let network_ready = cri_network;
    let fs = machine::filesystem(&config.data_dir);
    let (pid_limit, pids_used) = machine::pids();
    conditions::Observed {
        runtime_ready,
        runtime_message,
        network_ready,
        memory_capacity: machine::memory_total(),
        memory_available: machine::memory_available(),
        disk_capacity: fs.capacity,
        disk_available: fs.available,
        inodes_total: fs.inodes,
        inodes_free: fs.inodes_free,
        pid_limit,
        pids_used,
    }
}

/// The images the runtime holds, biggest first, at most 50 as upstream reports.
async fn images(runtime: &dyn RuntimeService) -> Vec<Value> {
    let Ok(mut list) = runtime.list_images().await else {
        return Vec::new();
    };
    list.sort_by_key(|i| std::cmp::Reverse(i.size));
    list.into_iter()
        .take(50)
        .map(|i| {
            let mut names = i.repo_digests.clone();
            names.extend(i.repo_tags.iter().cloned());
            json!({"names": names, "sizeBytes": i.size})
        })
        .collect()
}

async fn renew_lease(config: &Config, registration: &Registration) -> Result<()> {
    let leases: Api<Lease> = Api::namespaced(config.client.clone(), "kube-node-lease");
    let renew = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": config.node_name,
            "namespace": "kube-node-lease",
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Node", "name": config.node_name,
                "uid": registration.node_uid,
            }],
        },
        "spec": {
            "holderIdentity": config.node_name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": renew,
        },
    });
    let params = PatchParams::apply("kubelet").force();
    leases
        .patch(&config.node_name, &params, &Patch::Apply(&lease))
        .await?;
    Ok(())
}

/// Keep the Lease renewed and the status current until `shutdown`.
pub async fn run_status(
    config: Config,
    runtime: Arc<dyn RuntimeService>,
    registration: Registration,
    shutdown: Shutdown,
) -> Result<()> {
    let mut conditions: Vec<Value> = Vec::new();
    let mut last_signature = String::new();
    let mut last_post = tokio::time::Instant::now() - REPORT_FREQUENCY;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_lease = tokio::time::Instant::now() - RENEW_INTERVAL;
    let mut images_now: Vec<Value> = Vec::new();
    let mut last_images = tokio::time::Instant::now() - IMAGES_INTERVAL;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        if last_lease.elapsed() >= RENEW_INTERVAL {
            match renew_lease(&config, &registration).await {
                Ok(()) => last_lease = tokio::time::Instant::now(),
                Err(err) => warn!(error = %err, "renewing node lease"),
            }
        }
        // Status is checked every second (so Ready shows up quickly) but only posted
        // when a condition or the image list changed, or every REPORT_FREQUENCY.
        let observed = observe(&config, runtime.as_ref()).await;
        // The image list changes only on imports and pulls: ask for it every 10 s.
        if last_images.elapsed() >= IMAGES_INTERVAL {
            images_now = images(runtime.as_ref()).await;
            last_images = tokio::time::Instant::now();
        }
        let images = &images_now;
        let signature = format!(
            "{:?}",
            (
                conditions::evaluate(&observed, &config.eviction_hard),
                images.iter().map(|i| i.to_string()).collect::<Vec<_>>()
            )
        );
        if signature != last_signature || last_post.elapsed() >= REPORT_FREQUENCY {
            match post_status(&config, &registration, &observed, &conditions, images).await {
                Ok(c) => {
                    conditions = c;
                    last_signature = signature;
                    last_post = tokio::time::Instant::now();
                }
                Err(err) => warn!(error = %err, "posting node status"),
            }
        }
    }
}
