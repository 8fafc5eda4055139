//! Which pods back a Service, and as what: the selector match, the pod's IPv4 address, the
//! port each Service port resolves to on that pod, its DNS hostname, and the trigger time
//! written next to the endpoints. Pure functions shared by the Endpoints and EndpointSlice
//! controllers, so both publish the same pods under the same rules.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::pod_control;

/// Label marking the endpoints of a headless Service (`clusterIP: None`).
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// When the change that triggered this endpoints write happened (upstream's latency SLI).
pub const ANNOTATION_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// The selector of a Service whose endpoints the controllers manage. `None` for
/// ExternalName Services (no endpoints at all) and for Services without a selector, whose
/// endpoints are written by the user (an empty selector counts as none, as upstream).
pub fn managed_selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

/// Equality-based selection: every key of `selector` carries the same value in `labels`.
pub fn selects(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The pod is one the Service selects (same namespace, labels match).
pub fn service_selects_pod(service: &Service, pod: &Pod) -> bool {
    match managed_selector(service) {
        Some(selector) => {
            pod.metadata.namespace == service.metadata.namespace
                && selects(selector, pod.metadata.labels.as_ref())
        }
        None => false,
    }
}

/// No cluster IP is set (`None` or empty): DNS answers with the pod addresses directly.
pub fn is_headless(service: &Service) -> bool {
    let ip = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref());
    matches!(ip, None | Some("") | Some("None"))
}

/// The Service's `publishNotReadyAddresses`: every pod counts as ready.
pub fn publishes_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// The Service's ports (empty when it has none).
pub fn service_ports(service: &Service) -> &[ServicePort] {
    service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or(&[])
}

/// The pod's IPv4 address (k3rs Services are single-stack IPv4).
pub fn pod_ipv4(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let listed = status.pod_ips.iter().flatten().map(|p| p.ip.as_str());
    listed
        .chain(status.pod_ip.as_deref())
        .find(|ip| ip.parse::<Ipv4Addr>().is_ok())
        .map(str::to_string)
}

/// Succeeded or Failed: its containers will not run again.
pub fn is_terminal(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Succeeded") | Some("Failed"))
}

/// Upstream's `ShouldPodBeInEndpoints`: not terminal, has an address, and (unless
/// `include_terminating`) not being deleted.
pub fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    !is_terminal(pod)
        && pod_ipv4(pod).is_some()
        && (include_terminating || !pod_control::is_terminating(pod))
}

/// The pod's DNS hostname under the Service: set when the pod names the Service as its
/// `subdomain` (how StatefulSet pods get `web-0.web.ns.svc`).
pub fn hostname(pod: &Pod, service: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    let same_service = spec.subdomain.is_some()
        && spec.subdomain == service.metadata.name
        && pod.metadata.namespace == service.metadata.namespace;
    same_service.then(|| hostname.to_string())
}

/// The pod port a Service port sends to (upstream's `FindPort`): a number as is, a name
/// looked up among the pod's container ports with the same protocol (sidecar init
/// containers included). `None` when the pod has no such named port.
pub fn resolve_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) if *n == 0 => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// The `targetRef` naming the pod behind an address.
pub fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// The pods of `all` that `service` selects.
pub fn selected_pods<'a, P: AsRef<Pod>>(service: &Service, all: &'a [P]) -> Vec<&'a Pod> {
    all.iter()
        .map(AsRef::as_ref)
        .filter(|pod| service_selects_pod(service, pod))
        .collect()
}

/// The latest change among the Service and the pods behind it: creation times and the
/// pods' last readiness transitions. Upstream tracks the exact change that triggered the
/// sync; the latest visible change is the same thing whenever a pod or the Service moved.
pub fn trigger_time(service: &Service, pods: &[&Pod]) -> Option<jiff::Timestamp> {
    let ready_changes = pods.iter().filter_map(|pod| {
        pod.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready")?
            .last_transition_time
            .as_ref()
            .map(|t| t.0)
    });
    let created = pods
        .iter()
        .map(|pod| &pod.metadata)
        .chain(std::iter::once(&service.metadata))
        .filter_map(|meta| meta.creation_timestamp.as_ref().map(|t| t.0));
    ready_changes.chain(created).max()
}

/// The labels upstream copies onto a Service's endpoints: the Service's own, plus the
/// headless marker when it has no cluster IP. `reserved` keys are the controller's own
/// and never copied from the Service.
pub fn endpoint_labels(service: &Service, reserved: &[&str]) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = service
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != LABEL_HEADLESS && !reserved.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if is_headless(service) {
        labels.insert(LABEL_HEADLESS.into(), String::new());
    }
    labels
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn service(value: serde_json::Value) -> Service {
        serde_json::from_value(value).unwrap()
    }

    pub fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn selector_rules() {
        let with = service(json!({"metadata": {"name": "s", "namespace": "ns"},
            "spec": {"selector": {"app": "a"}}}));
        let empty = service(json!({"metadata": {"name": "s"}, "spec": {"selector": {}}}));
        let external = service(json!({"metadata": {"name": "s"},
            "spec": {"type": "ExternalName", "selector": {"app": "a"}}}));
        assert!(managed_selector(&with).is_some());
        assert!(managed_selector(&empty).is_none());
        assert!(managed_selector(&external).is_none());
        let matching = pod(
            json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "a", "x": "y"}}}),
        );
        let other_ns =
            pod(json!({"metadata": {"name": "p", "namespace": "o", "labels": {"app": "a"}}}));
        let other =
            pod(json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "b"}}}));
        assert!(service_selects_pod(&with, &matching));
        assert!(!service_selects_pod(&with, &other_ns));
        assert!(!service_selects_pod(&with, &other));
    }

    #[test]
    fn named_ports_resolve_per_pod_and_protocol() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "ports": [{"name": "http", "containerPort": 8080},
                                    {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}],
            "initContainers": [{"name": "side", "restartPolicy": "Always",
                "ports": [{"name": "metrics", "containerPort": 9090}]}]}}));
        let port = |v| serde_json::from_value::<ServicePort>(v).unwrap();
        assert_eq!(
            resolve_port(&p, &port(json!({"port": 80, "targetPort": "http"}))),
            Some(8080)
        );
        assert_eq!(
            resolve_port(&p, &port(json!({"port": 80, "targetPort": 81}))),
            Some(81)
        );
        assert_eq!(resolve_port(&p, &port(json!({"port": 80}))), Some(80));
        assert_eq!(
            resolve_port(&p, &port(json!({"port": 53, "targetPort": "dns"}))),
            None
        );
        assert_eq!(
            resolve_port(
                &p,
                &port(json!({"port": 53, "targetPort": "dns", "protocol": "UDP"}))
            ),
            Some(53)
        );
        assert_eq!(
            resolve_port(&p, &port(json!({"port": 1, "targetPort": "metrics"}))),
            Some(9090)
        );
        assert_eq!(
            resolve_port(&p, &port(json!({"port": 1, "targetPort": "nope"}))),
            None
        );
    }

    #[test]
    fn eligibility_hostname_and_labels() {
        let svc = service(
            json!({"metadata": {"name": "web", "namespace": "ns", "labels": {"team": "a"}},
            "spec": {"clusterIP": "None", "selector": {"app": "a"}}}),
        );
        let running = pod(json!({"metadata": {"name": "web-0", "namespace": "ns"},
            "spec": {"hostname": "web-0", "subdomain": "web", "containers": []},
            "status": {"phase": "Running", "podIP": "10.42.0.5", "podIPs": [{"ip": "fd00::5"}, {"ip": "10.42.0.5"}]}}));
        assert_eq!(pod_ipv4(&running).as_deref(), Some("10.42.0.5"));
        assert_eq!(hostname(&running, &svc).as_deref(), Some("web-0"));
        assert!(should_be_in_endpoints(&running, false));
        let mut deleting = running.clone();
        deleting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        assert!(!should_be_in_endpoints(&deleting, false));
        assert!(should_be_in_endpoints(&deleting, true));
        let done = pod(
            json!({"metadata": {"name": "j"}, "status": {"phase": "Succeeded", "podIP": "10.42.0.6"}}),
        );
        assert!(!should_be_in_endpoints(&done, true));
        let no_ip = pod(json!({"metadata": {"name": "n"}, "status": {"phase": "Pending"}}));
        assert!(!should_be_in_endpoints(&no_ip, true));
        let labels = endpoint_labels(&svc, &["kubernetes.io/service-name"]);
        assert_eq!(labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(labels.get(LABEL_HEADLESS).map(String::as_str), Some(""));
    }
}
