//! The pure half of the EndpointSlice controller: the endpoints a Service should have,
//! grouped by port set, and the plan turning the existing slices into them (upstream's
//! reconciler). Existing slices are updated in place where possible: endpoints that are
//! still wanted stay in their slice, new ones fill slices that are being rewritten anyway,
//! then one unchanged slice with room, and only then new slices of at most
//! [`MAX_ENDPOINTS_PER_SLICE`]; a slice about to be deleted is reused for a new one.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::endpoints::service_pods::{
    hostname, pod_ipv4, publishes_not_ready, resolve_port, service_ports, should_be_in_endpoints,
    target_ref, ANNOTATION_TRIGGER_TIME,
};
use crate::pod_control;

pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
pub const ADDRESS_TYPE: &str = "IPv4";
const LABEL_ZONE: &str = "topology.kubernetes.io/zone";

/// A port set in canonical (sorted) order: endpoints serving the same set share slices.
pub type PortKey = Vec<(String, i32, String, Option<String>)>;

/// The endpoints serving one port set, ports in the Service's order.
#[derive(Clone, Debug, Default)]
pub struct PortGroup {
    pub ports: Vec<EndpointPort>,
    pub endpoints: Vec<Endpoint>,
}

/// What every slice of the Service carries besides its endpoints.
pub struct Target<'a> {
    pub service: &'a Service,
    pub labels: BTreeMap<String, String>,
    pub trigger_time: Option<String>,
}

/// The writes that bring a Service's slices to the desired state.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<Arc<EndpointSlice>>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

pub fn port_key(ports: &[EndpointPort]) -> PortKey {
    let mut key: PortKey = ports
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or_default(),
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                p.app_protocol.clone(),
            )
        })
        .collect();
    key.sort();
    key
}

/// The Service's endpoints by port set (upstream's `podToEndpoint`): terminating pods are
/// kept with `terminating: true`; `ready` is `serving && !terminating`, or always true
/// with `publishNotReadyAddresses`.
pub fn desired_groups(
    service: &Service,
    pods: &[&Pod],
    zone_of_node: impl Fn(&str) -> Option<String>,
) -> BTreeMap<PortKey, PortGroup> {
    let publish_not_ready = publishes_not_ready(service);
    let mut groups: BTreeMap<PortKey, PortGroup> = BTreeMap::new();
    for pod in pods {
        if !should_be_in_endpoints(pod, true) {
            continue;
        }
        let Some(ip) = pod_ipv4(pod) else { continue };
        let ports: Vec<EndpointPort> = service_ports(service)
            .iter()
            .filter_map(|p| {
                Some(EndpointPort {
                    name: Some(p.name.clone().unwrap_or_default()),
                    port: Some(resolve_port(pod, p)?),
                    protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: p.app_protocol.clone(),
                })
            })
            .collect();
        if ports.is_empty() && !service_ports(service).is_empty() {
            continue;
        }
        let serving = pod_control::is_ready(pod);
        let terminating = pod_control::is_terminating(pod);
        let node_name = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        let endpoint = Endpoint {
            addresses: vec![ip],
            conditions: Some(EndpointConditions {
                ready: Some(publish_not_ready || (serving && !terminating)),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname: hostname(pod, service),
            zone: node_name.as_deref().and_then(&zone_of_node),
            node_name,
            target_ref: Some(target_ref(pod)),
            ..Default::default()
        };
        let group = groups.entry(port_key(&ports)).or_insert_with(|| PortGroup {
            ports,
            endpoints: Vec::new(),
        });
        group.endpoints.push(endpoint);
    }
    groups
}

/// The zone label of a node, for [`desired_groups`].
pub fn node_zone(labels: Option<&BTreeMap<String, String>>) -> Option<String> {
    labels?.get(LABEL_ZONE).cloned()
}

/// The labels of the Service's slices: its own (minus the reserved ones) plus ours.
pub fn slice_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = crate::endpoints::service_pods::endpoint_labels(
        service,
        &[LABEL_SERVICE_NAME, LABEL_MANAGED_BY],
    );
    labels.insert(
        LABEL_SERVICE_NAME.into(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(LABEL_MANAGED_BY.into(), CONTROLLER_NAME.into());
    labels
}

/// A slice this controller manages for the Service with `uid` (its controller reference).
pub fn owned_by(slice: &EndpointSlice, uid: Option<&str>) -> bool {
    uid.is_some_and(|uid| pod_control::is_controlled_by(&slice.metadata, uid))
}

/// A slice being built: based on an existing one (kept name) or new.
struct Draft {
    base: Option<Arc<EndpointSlice>>,
    ports: Vec<EndpointPort>,
    endpoints: Vec<Endpoint>,
}

/// Compute the writes turning `existing` (every slice labelled with the Service's name and
/// our manager) into `desired`.
pub fn plan(
    target: &Target,
    existing: &[Arc<EndpointSlice>],
    desired: BTreeMap<PortKey, PortGroup>,
) -> Plan {
    let uid = target.service.metadata.uid.as_deref();
    let mut plan = Plan::default();
    let mut by_ports: BTreeMap<PortKey, Vec<Arc<EndpointSlice>>> = BTreeMap::new();
    for slice in existing {
        if slice.address_type == ADDRESS_TYPE && owned_by(slice, uid) {
            let key = port_key(slice.ports.as_deref().unwrap_or_default());
            by_ports.entry(key).or_default().push(slice.clone());
        } else {
            plan.delete.push(slice.clone());
        }
    }
    let mut drafts: Vec<Draft> = Vec::new();
    if desired.values().all(|g| g.endpoints.is_empty()) {
        keep_placeholder(target, by_ports, &mut drafts, &mut plan);
    } else {
        for (key, group) in desired {
            let slices = by_ports.remove(&key).unwrap_or_default();
            place_group(target, group, slices, &mut drafts, &mut plan);
        }
        // Port sets nobody serves any more.
        plan.delete.extend(by_ports.into_values().flatten());
    }
    finish(target, drafts, plan)
}

/// No endpoints at all: upstream keeps exactly one empty "placeholder" slice, so that
/// consumers can tell "no endpoints" from "not processed yet".
fn keep_placeholder(
    target: &Target,
    by_ports: BTreeMap<PortKey, Vec<Arc<EndpointSlice>>>,
    drafts: &mut Vec<Draft>,
    plan: &mut Plan,
) {
    let mut kept = false;
    for slice in by_ports.into_values().flatten() {
        let is_placeholder =
            slice.endpoints.is_empty() && slice.ports.as_ref().is_none_or(|p| p.is_empty());
        if kept || !is_placeholder {
            plan.delete.push(slice);
        } else {
            kept = true;
            if !labels_match(&slice, &target.labels) {
                drafts.push(Draft {
                    base: Some(slice),
                    ports: Vec::new(),
                    endpoints: Vec::new(),
                });
            }
        }
    }
    if !kept {
        drafts.push(Draft {
            base: None,
            ports: Vec::new(),
            endpoints: Vec::new(),
        });
    }
}

/// Place one port set's endpoints into its existing slices, then into new ones.
fn place_group(
    target: &Target,
    group: PortGroup,
    slices: Vec<Arc<EndpointSlice>>,
    drafts: &mut Vec<Draft>,
    plan: &mut Plan,
) {
    let mut wanted: BTreeMap<String, Endpoint> = group
        .endpoints
        .into_iter()
        .map(|e| (endpoint_key(&e), e))
        .collect();
    let first_draft = drafts.len();
    let mut untouched: Vec<Arc<EndpointSlice>> = Vec::new();
    for slice in slices {
        let mut changed = !labels_match(&slice, &target.labels);
        let mut kept = Vec::new();
        for current in &slice.endpoints {
            match wanted.remove(&endpoint_key(current)) {
                Some(want) => {
                    changed |= !same_endpoint(current, &want);
                    kept.push(want);
                }
                None => changed = true,
            }
        }
        if kept.is_empty() {
            plan.delete.push(slice);
        } else if changed {
            drafts.push(Draft {
                base: Some(slice),
                ports: group.ports.clone(),
                endpoints: kept,
            });
        } else {
            untouched.push(slice);
        }
    }
    let mut leftover: Vec<Endpoint> = wanted.into_values().rev().collect();
    // 1. Slices being rewritten anyway take new endpoints first.
    for draft in &mut drafts[first_draft..] {
        while draft.endpoints.len() < MAX_ENDPOINTS_PER_SLICE {
            let Some(next) = leftover.pop() else { break };
            draft.endpoints.push(next);
        }
    }
    // 2. The rest, if they all fit, go into the fullest unchanged slice with room.
    if !leftover.is_empty() {
        let fits = untouched
            .iter()
            .enumerate()
            .filter(|(_, s)| s.endpoints.len() + leftover.len() <= MAX_ENDPOINTS_PER_SLICE)
            .max_by_key(|(_, s)| s.endpoints.len())
            .map(|(i, _)| i);
        if let Some(i) = fits {
            let slice = untouched.remove(i);
            let mut endpoints = slice.endpoints.clone();
            endpoints.extend(leftover.drain(..).rev());
            drafts.push(Draft {
                base: Some(slice),
                ports: group.ports.clone(),
                endpoints,
            });
        }
    }
    // 3. New slices for whatever is left.
    leftover.reverse();
    for chunk in leftover.chunks(MAX_ENDPOINTS_PER_SLICE) {
        drafts.push(Draft {
            base: None,
            ports: group.ports.clone(),
            endpoints: chunk.to_vec(),
        });
    }
}

/// Turn drafts into creates and updates; a create takes over a slice that would be
/// deleted (same Service, same address type) instead, as upstream's `finalize`.
fn finish(target: &Target, drafts: Vec<Draft>, mut plan: Plan) -> Plan {
    let uid = target.service.metadata.uid.as_deref();
    for mut draft in drafts {
        if draft.base.is_none() {
            let reusable = plan
                .delete
                .iter()
                .position(|s| s.address_type == ADDRESS_TYPE && owned_by(s, uid));
            draft.base = reusable.map(|i| plan.delete.remove(i));
        }
        match &draft.base {
            Some(_) => plan.update.push(render(target, draft)),
            None => plan.create.push(render(target, draft)),
        }
    }
    plan
}

fn render(target: &Target, draft: Draft) -> EndpointSlice {
    let mut metadata = match &draft.base {
        Some(base) => base.metadata.clone(),
        None => ObjectMeta {
            generate_name: Some(pod_control::generate_name_prefix(
                target.service.metadata.name.as_deref().unwrap_or_default(),
            )),
            namespace: target.service.metadata.namespace.clone(),
            owner_references: Some(vec![pod_control::owner_reference(target.service)]),
            ..Default::default()
        },
    };
    metadata.managed_fields = None;
    metadata.labels = Some(target.labels.clone());
    let annotations = metadata.annotations.get_or_insert_with(BTreeMap::new);
    match &target.trigger_time {
        Some(at) => annotations.insert(ANNOTATION_TRIGGER_TIME.into(), at.clone()),
        None => annotations.remove(ANNOTATION_TRIGGER_TIME),
    };
    if annotations.is_empty() {
        metadata.annotations = None;
    }
    let mut endpoints = draft.endpoints;
    endpoints.sort_by_key(endpoint_key);
    EndpointSlice {
        metadata,
        address_type: ADDRESS_TYPE.into(),
        endpoints,
        ports: Some(draft.ports),
    }
}

fn labels_match(slice: &EndpointSlice, labels: &BTreeMap<String, String>) -> bool {
    slice.metadata.labels.as_ref() == Some(labels)
}

/// Endpoints are matched across syncs by their address (one per pod IP).
fn endpoint_key(endpoint: &Endpoint) -> String {
    endpoint.addresses.first().cloned().unwrap_or_default()
}

/// Equal in every field this controller writes (ignoring anything the API server may
/// default on its side).
fn same_endpoint(a: &Endpoint, b: &Endpoint) -> bool {
    let conditions = |e: &Endpoint| {
        let c = e.conditions.clone().unwrap_or_default();
        (c.ready, c.serving, c.terminating)
    };
    let target = |e: &Endpoint| {
        e.target_ref.as_ref().map(|t| {
            (
                t.kind.clone(),
                t.namespace.clone(),
                t.name.clone(),
                t.uid.clone(),
            )
        })
    };
    a.addresses == b.addresses
        && conditions(a) == conditions(b)
        && a.hostname == b.hostname
        && a.node_name == b.node_name
        && a.zone == b.zone
        && target(a) == target(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::service_pods::tests::{pod, service};
    use serde_json::json;

    fn web() -> Service {
        service(
            json!({"metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"team": "a"}},
            "spec": {"clusterIP": "10.43.0.10", "selector": {"app": "a"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}),
        )
    }

    fn running(i: usize, ready: bool, http_port: i32) -> Pod {
        pod(json!({
            "metadata": {"name": format!("p{i}"), "namespace": "ns", "uid": format!("uid-{i}"), "labels": {"app": "a"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": http_port}]}]},
            "status": {"phase": "Running", "podIP": format!("10.42.{}.{}", i / 200, i % 200 + 1), "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
    }

    fn target(svc: &Service) -> Target<'_> {
        Target {
            service: svc,
            labels: slice_labels(svc),
            trigger_time: None,
        }
    }

    /// Pretend the API server stored the plan's writes, naming created slices.
    fn stored(plan: Plan, existing: &[Arc<EndpointSlice>]) -> Vec<Arc<EndpointSlice>> {
        let deleted: Vec<_> = plan
            .delete
            .iter()
            .map(|s| s.metadata.name.clone())
            .collect();
        let updated: Vec<_> = plan
            .update
            .iter()
            .map(|s| s.metadata.name.clone())
            .collect();
        let mut out: Vec<Arc<EndpointSlice>> = existing
            .iter()
            .filter(|s| !deleted.contains(&s.metadata.name) && !updated.contains(&s.metadata.name))
            .cloned()
            .collect();
        out.extend(plan.update.into_iter().map(Arc::new));
        for (n, mut slice) in plan.create.into_iter().enumerate() {
            slice.metadata.name = Some(format!("web-{}{n}", existing.len()));
            out.push(Arc::new(slice));
        }
        out
    }

    fn sync(
        svc: &Service,
        pods: &[Pod],
        existing: &[Arc<EndpointSlice>],
    ) -> (Plan, Vec<Arc<EndpointSlice>>) {
        let refs: Vec<&Pod> = pods.iter().collect();
        let desired = desired_groups(svc, &refs, |_| Some("zone-a".into()));
        let p = plan(&target(svc), existing, desired);
        let summary = Plan {
            create: p.create.clone(),
            update: p.update.clone(),
            delete: p.delete.clone(),
        };
        (summary, stored(p, existing))
    }

    #[test]
    fn endpoints_carry_conditions_and_metadata() {
        let svc = web();
        let mut terminating = running(3, true, 8080);
        terminating.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        let pods = [running(1, true, 8080), running(2, false, 8080), terminating];
        let (plan, _) = sync(&svc, &pods, &[]);
        assert_eq!(plan.create.len(), 1);
        let slice = &plan.create[0];
        assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
        let labels = slice.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_SERVICE_NAME], "web");
        assert_eq!(labels[LABEL_MANAGED_BY], CONTROLLER_NAME);
        assert_eq!(labels["team"], "a");
        let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Service", "svc-uid", Some(true))
        );
        let port = &slice.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.port),
            (Some("http"), Some(8080))
        );
        let conds: Vec<_> = slice
            .endpoints
            .iter()
            .map(|e| {
                let c = e.conditions.clone().unwrap();
                (c.ready.unwrap(), c.serving.unwrap(), c.terminating.unwrap())
            })
            .collect();
        assert_eq!(
            conds,
            vec![
                (true, true, false),
                (false, false, false),
                (false, true, true)
            ]
        );
        assert_eq!(slice.endpoints[0].zone.as_deref(), Some("zone-a"));
        assert_eq!(slice.endpoints[0].node_name.as_deref(), Some("n1"));
    }

    #[test]
    fn large_services_split_and_update_in_place() {
        let svc = web();
        let mut pods: Vec<Pod> = (0..150).map(|i| running(i, false, 8080)).collect();
        let (plan, stored1) = sync(&svc, &pods, &[]);
        assert_eq!(
            plan.create
                .iter()
                .map(|s| s.endpoints.len())
                .collect::<Vec<_>>(),
            vec![100, 50]
        );
        // Nothing changed: nothing to write.
        let (plan, _) = sync(&svc, &pods, &stored1);
        assert!(plan.is_empty(), "{plan:?}");
        // One pod turns ready: only its slice is rewritten, in place.
        pods[120] = running(120, true, 8080);
        let (plan, stored2) = sync(&svc, &pods, &stored1);
        assert!(plan.create.is_empty() && plan.delete.is_empty());
        assert_eq!(plan.update.len(), 1);
        // Ten new pods fit in the half-full slice.
        pods.extend((150..160).map(|i| running(i, true, 8080)));
        let (plan, stored3) = sync(&svc, &pods, &stored2);
        assert_eq!(
            (plan.create.len(), plan.update.len(), plan.delete.len()),
            (0, 1, 0)
        );
        assert_eq!(plan.update[0].endpoints.len(), 60);
        // All pods gone: one placeholder remains, reusing an existing slice.
        let (plan, stored4) = sync(&svc, &[], &stored3);
        assert_eq!(
            (plan.create.len(), plan.update.len(), plan.delete.len()),
            (0, 1, 1)
        );
        assert_eq!(stored4.len(), 1);
        assert!(stored4[0].endpoints.is_empty());
        let (plan, _) = sync(&svc, &[], &stored4);
        assert!(plan.is_empty());
    }

    #[test]
    fn port_sets_and_foreign_slices() {
        let svc = web();
        let pods = [running(1, true, 8080), running(2, true, 9090)];
        let (plan, stored1) = sync(&svc, &pods, &[]);
        assert_eq!(plan.create.len(), 2);
        // A slice left by an older Service of the same name is deleted, not reused.
        let mut foreign = (*stored1[0]).clone();
        foreign.metadata.name = Some("web-old".into());
        foreign.metadata.owner_references.as_mut().unwrap()[0].uid = "old-uid".into();
        let mut existing = stored1.clone();
        existing.push(Arc::new(foreign));
        let (plan, _) = sync(&svc, &pods, &existing);
        assert!(plan.create.is_empty() && plan.update.is_empty());
        assert_eq!(plan.delete[0].metadata.name.as_deref(), Some("web-old"));
        // Both pods move to one port: the emptied slice is deleted, the other updated.
        let pods = [running(1, true, 8080), running(2, true, 8080)];
        let (plan, stored2) = sync(&svc, &pods, &stored1);
        assert_eq!(
            (plan.create.len(), plan.update.len(), plan.delete.len()),
            (0, 1, 1)
        );
        assert_eq!(stored2.len(), 1);
        assert_eq!(stored2[0].endpoints.len(), 2);
    }
}
