//! CRI configs for a pod's sandbox and containers, built from the Pod spec: names,
//! labels, log paths, namespaces, cgroup parents by QoS class, and resources.

use std::collections::HashMap;

use k3rs_core::quantity::{parse_milli, parse_units};
use k8s_openapi::api::core::v1::{Container, Pod};
use sha2::{Digest, Sha256};

use crate::cri::{api, labels};

/// The pod's QoS class as the API server computed it (admission fills `status.qosClass`).
pub fn qos_class(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.qos_class.as_deref())
        .unwrap_or("BestEffort")
}

/// cgroupfs parent of the pod, as upstream lays it out under the node's kubepods cgroup:
/// Guaranteed pods directly, the others under `burstable/` or `besteffort/`.
pub fn pod_cgroup_parent(node_parent: &str, pod: &Pod) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    match qos_class(pod) {
        "Guaranteed" => format!("{node_parent}/pod{uid}"),
        "Burstable" => format!("{node_parent}/burstable/pod{uid}"),
        _ => format!("{node_parent}/besteffort/pod{uid}"),
    }
}

pub fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// The labels every sandbox and container of the pod carries.
pub fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    let meta = &pod.metadata;
    let mut out: HashMap<String, String> = meta
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    out.insert(
        labels::POD_NAME.into(),
        meta.name.clone().unwrap_or_default(),
    );
    out.insert(
        labels::POD_NAMESPACE.into(),
        meta.namespace.clone().unwrap_or_default(),
    );
    out.insert(labels::POD_UID.into(), meta.uid.clone().unwrap_or_default());
    out
}

fn namespace_options(pod: &Pod) -> api::NamespaceOption {
    let spec = pod.spec.as_ref();
    let node = api::NamespaceMode::Node as i32;
    let pod_mode = api::NamespaceMode::Pod as i32;
    api::NamespaceOption {
        network: if host_network(pod) { node } else { pod_mode },
        pid: match (
            spec.and_then(|s| s.host_pid),
            spec.and_then(|s| s.share_process_namespace),
        ) {
            (Some(true), _) => node,
            (_, Some(true)) => pod_mode,
            _ => api::NamespaceMode::Container as i32,
        },
        ipc: if spec.and_then(|s| s.host_ipc).unwrap_or(false) {
            node
        } else {
            pod_mode
        },
        ..Default::default()
    }
}

pub struct SandboxInputs<'a> {
    pub attempt: u32,
    pub hostname: String,
    pub log_directory: String,
    pub dns: Option<api::DnsConfig>,
    pub cgroup_parent: String,
    pub pod: &'a Pod,
}

pub fn sandbox_config(i: SandboxInputs<'_>) -> api::PodSandboxConfig {
    let pod = i.pod;
    let meta = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.clone().unwrap_or_default())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| api::PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => api::Protocol::Udp as i32,
                Some("SCTP") => api::Protocol::Sctp as i32,
                _ => api::Protocol::Tcp as i32,
            },
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    let sysctls = spec
        .security_context
        .as_ref()
        .and_then(|s| s.sysctls.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.name, s.value))
        .collect();
    let run_as_user = spec.security_context.as_ref().and_then(|s| s.run_as_user);
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            attempt: i.attempt,
        }),
        hostname: if host_network(pod) {
            String::new()
        } else {
            i.hostname
        },
        log_directory: i.log_directory,
        dns_config: i.dns,
        port_mappings,
        labels: pod_labels(pod),
        annotations: meta
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: i.cgroup_parent,
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(pod)),
                run_as_user: run_as_user.map(|v| api::Int64Value { value: v }),
                ..Default::default()
            }),
            sysctls,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The text of one `requests`/`limits` entry, for the exact parsers of `k3rs_core`.
fn quantity<'a>(
    resources: Option<
        &'a std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
    name: &str,
) -> Option<&'a str> {
    resources?.get(name).map(|q| q.0.as_str())
}

/// CPU and memory requests/limits as cgroup settings, as upstream's kubelet converts them
/// (`MilliCPUToShares`, `milliCPUToQuota`): shares = request in millicores * 1024 / 1000
/// within [2, 262144], falling back to the limit when no request is set; quota = limit in
/// millicores * period / 1000, at least 1ms; memory limit in bytes rounded up. Integer
/// arithmetic on exact quantities, so `0.1` and `100m` give the same cgroup values.
pub fn linux_resources(container: &Container) -> api::LinuxContainerResources {
    const PERIOD: i64 = 100_000;
    const MIN_SHARES: i64 = 2;
    const MAX_SHARES: i64 = 262_144;
    const MIN_QUOTA: i64 = 1000;
    let resources = container.resources.as_ref();
    let requests = resources.and_then(|r| r.requests.as_ref());
    let limits = resources.and_then(|r| r.limits.as_ref());
    let cpu_limit = quantity(limits, "cpu").and_then(parse_milli);
    let cpu_request = quantity(requests, "cpu")
        .and_then(parse_milli)
        .filter(|&m| m != 0)
        .or(cpu_limit);
    let memory_limit = quantity(limits, "memory")
        .and_then(parse_units)
        .unwrap_or(0);
    api::LinuxContainerResources {
        cpu_shares: match cpu_request {
            Some(m) if m > 0 => (m.saturating_mul(1024) / 1000).clamp(MIN_SHARES, MAX_SHARES),
            _ => MIN_SHARES,
        },
        cpu_period: if cpu_limit.is_some() { PERIOD } else { 0 },
        cpu_quota: match cpu_limit {
            Some(m) if m > 0 => (m.saturating_mul(PERIOD) / 1000).max(MIN_QUOTA),
            _ => 0,
        },
        memory_limit_in_bytes: memory_limit.max(0),
        ..Default::default()
    }
}

/// What the `io.kubernetes.container.hash` annotation holds: a hash of the container's
/// image, the only field of a container a pod update may change. Hashing only it (not the
/// whole serialized spec, as upstream) keeps the value stable across serialization
/// changes, so an agent upgrade never restarts containers. A stable hash (SHA-256, not
/// std's hasher), since the value outlives the agent that wrote it.
pub fn container_hash(c: &Container) -> String {
    let digest = Sha256::digest(c.image.as_deref().unwrap_or_default().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

pub struct ContainerInputs<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub image_ref: String,
    pub attempt: u32,
    pub envs: Vec<api::KeyValue>,
    pub mounts: Vec<api::Mount>,
}

pub fn container_config(i: ContainerInputs<'_>) -> api::ContainerConfig {
    let c = i.container;
    let pod = i.pod;
    let mut container_labels = pod_labels(pod);
    // Only the identifying labels on containers, as upstream.
    container_labels.retain(|k, _| k.starts_with("io.kubernetes."));
    container_labels.insert(labels::CONTAINER_NAME.into(), c.name.clone());
    let grace = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    let annotations = HashMap::from([
        (labels::RESTART_COUNT.to_string(), i.attempt.to_string()),
        (labels::GRACE_PERIOD.to_string(), grace.to_string()),
        (labels::CONTAINER_HASH.to_string(), container_hash(c)),
        (
            "io.kubernetes.container.terminationMessagePath".to_string(),
            c.termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
        ),
    ]);
    let sc = c.security_context.as_ref();
    let pod_sc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let run_as_user = sc
        .and_then(|s| s.run_as_user)
        .or(pod_sc.and_then(|s| s.run_as_user));
    let run_as_group = sc
        .and_then(|s| s.run_as_group)
        .or(pod_sc.and_then(|s| s.run_as_group));
    let capabilities = sc
        .and_then(|s| s.capabilities.as_ref())
        .map(|caps| api::Capability {
            add_capabilities: caps.add.clone().unwrap_or_default(),
            drop_capabilities: caps.drop.clone().unwrap_or_default(),
            ..Default::default()
        });
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: c.name.clone(),
            attempt: i.attempt,
        }),
        image: Some(api::ImageSpec {
            image: i.image_ref,
            user_specified_image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: c.command.clone().unwrap_or_default(),
        args: c.args.clone().unwrap_or_default(),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: i.envs,
        mounts: i.mounts,
        labels: container_labels,
        annotations,
        log_path: format!("{}/{}.log", c.name, i.attempt),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(api::LinuxContainerConfig {
            resources: Some(linux_resources(c)),
            security_context: Some(api::LinuxContainerSecurityContext {
                capabilities,
                privileged: sc.and_then(|s| s.privileged).unwrap_or(false),
                namespace_options: Some(namespace_options(pod)),
                run_as_user: run_as_user.map(|v| api::Int64Value { value: v }),
                run_as_group: run_as_group.map(|v| api::Int64Value { value: v }),
                readonly_rootfs: sc
                    .and_then(|s| s.read_only_root_filesystem)
                    .unwrap_or(false),
                no_new_privs: sc.and_then(|s| s.allow_privilege_escalation) == Some(false),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn resources_become_cgroup_settings() {
        let c: Container = serde_json::from_value(json!({
            "name": "c",
            "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m", "memory": "64Mi"}}
        }))
        .unwrap();
        let r = linux_resources(&c);
        assert_eq!(r.cpu_shares, 256);
        assert_eq!((r.cpu_period, r.cpu_quota), (100_000, 50_000));
        assert_eq!(r.memory_limit_in_bytes, 64 << 20);
        let none: Container = serde_json::from_value(json!({"name": "c"})).unwrap();
        let r = linux_resources(&none);
        assert_eq!(
            (r.cpu_shares, r.cpu_quota, r.memory_limit_in_bytes),
            (2, 0, 0)
        );
        // Exact quantities: 0.1 is 100 millicores, not 101; the limit stands in for an
        // absent request; tiny limits get the 1ms minimum quota.
        let decimal: Container = serde_json::from_value(json!({
            "name": "c",
            "resources": {"limits": {"cpu": "0.1", "memory": "0.5Ki"}}
        }))
        .unwrap();
        let r = linux_resources(&decimal);
        assert_eq!((r.cpu_shares, r.cpu_quota), (102, 10_000));
        assert_eq!(r.memory_limit_in_bytes, 512);
        let tiny: Container = serde_json::from_value(json!({
            "name": "c", "resources": {"limits": {"cpu": "1m"}, "requests": {"cpu": "1m"}}
        }))
        .unwrap();
        let r = linux_resources(&tiny);
        assert_eq!((r.cpu_shares, r.cpu_quota), (2, 1000));
    }

    #[test]
    fn cgroup_parent_by_qos_and_host_network() {
        let p = pod(
            json!({"metadata": {"uid": "u1"}, "status": {"qosClass": "Burstable"},
            "spec": {"hostNetwork": true, "containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}}),
        );
        assert_eq!(
            pod_cgroup_parent("/k3rs-n/kubepods", &p),
            "/k3rs-n/kubepods/burstable/podu1"
        );
        let config = sandbox_config(SandboxInputs {
            attempt: 0,
            hostname: "x".into(),
            log_directory: "/l".into(),
            dns: None,
            cgroup_parent: "/p".into(),
            pod: &p,
        });
        let ns = config
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .namespace_options
            .unwrap();
        assert_eq!(ns.network, api::NamespaceMode::Node as i32);
        assert_eq!(config.port_mappings[0].host_port, 8080);
        assert_eq!(config.hostname, "");
    }
}
