//! The endpoints controller: for every Service with a selector, an `Endpoints` object of
//! the same name listing the selected pods' addresses (ready ones in `addresses`, others in
//! `notReadyAddresses`), grouped into subsets by the ports each pod resolves. Services
//! without a selector keep user-written Endpoints untouched; deleting a Service deletes
//! its Endpoints (they carry no ownerReference upstream), and Endpoints left behind by
//! Services deleted while no controller ran are removed when a term starts.
//!
//! Pods come from the shared informer; pod changes reach a Service through
//! [`triggers`], batched. Writes are plain create/replace against the watched state, so a
//! stale cache ends in a conflict and a quick retry, never in a wrong write.

pub(crate) mod service_pods;
pub(crate) mod triggers;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{Controller, WatchStreamExt};
use kube::{Api, Resource, ResourceExt};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::context::{self, Context, RETRY_AFTER_ERROR};
use crate::error::{is_conflict, is_not_found, Error, KubeContext};
use crate::Result;
use service_pods::{
    endpoint_labels, hostname, managed_selector, pod_ipv4, publishes_not_ready, resolve_port,
    selected_pods, service_ports, should_be_in_endpoints, target_ref, trigger_time,
    ANNOTATION_TRIGGER_TIME,
};
use triggers::{batched, services_for_pod, Membership};

/// Upstream's cap on addresses in one Endpoints object (EndpointSlices have no cap).
pub const MAX_ADDRESSES: usize = 1000;
/// Set on Endpoints truncated to [`MAX_ADDRESSES`].
pub const ANNOTATION_OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// Endpoints used as leader-election locks by old components: never ours.
const ANNOTATION_LEADER: &str = "control-plane.alpha.kubernetes.io/leader";
/// How long pod changes are gathered before a Service is reconciled.
pub const BATCH_PERIOD: Duration = Duration::from_millis(500);
/// Retry delay after a write lost against a newer state (the cache catches up quickly).
pub const RETRY_AFTER_CONFLICT: Duration = Duration::from_millis(500);

const CONTROLLER_NAME: &str = "endpoint-controller";

/// What every reconcile of the Endpoints controller shares: the term's context, the
/// Endpoints cache and the Service membership index.
struct EndpointsController {
    ctx: Arc<Context>,
    endpoints: Store<Endpoints>,
    membership: Membership,
}

pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let client = ctx.client.clone();
    let (services, services_writer) = reflector::store::<Service>();
    let (deleted_tx, deleted_rx) = mpsc::unbounded_channel::<Service>();
    let service_events = reflector::reflector(
        services_writer,
        watcher::watcher(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .inspect_ok(move |event| {
        if let Event::Delete(svc) = event {
            let _ = deleted_tx.send(svc.clone());
        }
    })
    .touched_objects();

    let (endpoints, endpoints_writer) = reflector::store::<Endpoints>();
    let endpoints_events = reflector::reflector(
        endpoints_writer,
        watcher::watcher(
            Api::<Endpoints>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();

    let state = Arc::new(EndpointsController {
        ctx: ctx.clone(),
        endpoints: endpoints.clone(),
        membership: Membership::default(),
    });
    let pod_triggers = {
        let (services, state) = (services.clone(), state.clone());
        batched(
            ctx.pods.subscribe(),
            move |pod| services_for_pod(&services, &state.membership, pod),
            BATCH_PERIOD,
        )
    };
    // An edited or deleted Endpoints is put back by reconciling its Service, if any.
    let services_for_endpoints = services.clone();
    let controller = Controller::for_stream(service_events, services.clone())
        .watches_stream(endpoints_events, move |ep: Endpoints| {
            let svc = ObjectRef::<Service>::new(&ep.name_any()).within(&ep.namespace()?);
            services_for_endpoints.get(&svc).map(|_| svc)
        })
        .reconcile_on(pod_triggers)
        .run(reconcile, error_policy, state.clone())
        .for_each(|result| async move {
            if let Err(err) = result {
                debug!(error = %err, "endpoints reconcile");
            }
        });
    let cleanup = remove_orphans(state, services, deleted_rx);
    futures::join!(controller, cleanup);
    Ok(())
}

async fn reconcile(service: Arc<Service>, state: Arc<EndpointsController>) -> Result<Action> {
    let namespace = service.namespace().unwrap_or_default();
    let name = service.name_any();
    if managed_selector(&service).is_none() {
        state.membership.forget(&namespace, &name);
        return Ok(Action::await_change());
    }
    let all_pods = state.ctx.pods.store().state();
    let pods = selected_pods(&service, &all_pods);
    state.membership.record(
        &namespace,
        &name,
        pods.iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect(),
    );
    let desired = desired_subsets(&service, &pods);
    let current = state
        .endpoints
        .get(&ObjectRef::new(&name).within(&namespace));
    if let Some(current) = &current {
        if current.annotations().contains_key(ANNOTATION_LEADER) {
            return Ok(Action::await_change());
        }
    }
    let labels = endpoint_labels(&service, &[]);
    if current
        .as_deref()
        .is_some_and(|c| up_to_date(c, &desired, &labels))
    {
        return Ok(Action::await_change());
    }
    let trigger = trigger_time(&service, &pods);
    let endpoints = build(&service, current.as_deref(), desired, labels, trigger);
    write(&state, &service, endpoints, current.is_none()).await?;
    Ok(Action::await_change())
}

async fn write(
    state: &EndpointsController,
    service: &Service,
    endpoints: Endpoints,
    create: bool,
) -> Result<()> {
    let namespace = service.namespace().unwrap_or_default();
    let api: Api<Endpoints> = Api::namespaced(state.ctx.client.clone(), &namespace);
    let name = service.name_any();
    let result = if create {
        api.create(&PostParams::default(), &endpoints).await
    } else {
        api.replace(&name, &PostParams::default(), &endpoints).await
    };
    let Err(err) = result else {
        return Ok(());
    };
    // Conflicts and 404s mean the cache was behind: retry quietly. Upstream also stays
    // quiet on 403, which is a namespace being deleted.
    let transient = is_conflict(&err)
        || is_not_found(&err)
        || matches!(&err, kube::Error::Api(s) if s.code == 403);
    if !transient {
        let (reason, note) = if create {
            (
                "FailedToCreateEndpoint",
                format!("Failed to create endpoint for service {namespace}/{name}: {err}"),
            )
        } else {
            (
                "FailedToUpdateEndpoint",
                format!("Failed to update endpoint {namespace}/{name}: {err}"),
            )
        };
        let recorder = state.ctx.recorder(CONTROLLER_NAME);
        context::publish(
            &recorder,
            &service.object_ref(&()),
            true,
            reason,
            "Sync",
            note,
        )
        .await;
    }
    Err(err).context(format!("writing endpoints {namespace}/{name}"))
}

fn error_policy(_service: Arc<Service>, err: &Error, _state: Arc<EndpointsController>) -> Action {
    match err {
        Error::Kube { source, .. } if is_conflict(source) || is_not_found(source) => {
            Action::requeue(RETRY_AFTER_CONFLICT)
        }
        _ => {
            warn!(error = %err, "endpoints sync failed; retrying");
            Action::requeue(RETRY_AFTER_ERROR)
        }
    }
}

/// Delete the Endpoints of Services as they are deleted, and once per term those whose
/// Service is gone (deleted while no controller watched).
async fn remove_orphans(
    state: Arc<EndpointsController>,
    services: Store<Service>,
    mut deleted: mpsc::UnboundedReceiver<Service>,
) {
    if services.wait_until_ready().await.is_ok() && state.endpoints.wait_until_ready().await.is_ok()
    {
        for ep in state.endpoints.state() {
            let svc = ObjectRef::<Service>::new(&ep.name_any())
                .within(&ep.namespace().unwrap_or_default());
            if services.get(&svc).is_none() && !ep.annotations().contains_key(ANNOTATION_LEADER) {
                info!(endpoints = %svc, "deleting endpoints of a deleted service");
                delete_endpoints(&state, &svc.namespace.unwrap_or_default(), &svc.name).await;
            }
        }
    }
    while let Some(svc) = deleted.recv().await {
        let namespace = svc.namespace().unwrap_or_default();
        state.membership.forget(&namespace, &svc.name_any());
        delete_endpoints(&state, &namespace, &svc.name_any()).await;
    }
}

async fn delete_endpoints(state: &EndpointsController, namespace: &str, name: &str) {
    let api: Api<Endpoints> = Api::namespaced(state.ctx.client.clone(), namespace);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(err) if is_not_found(&err) => {}
        Err(err) => warn!(namespace, name, error = %err, "deleting endpoints failed"),
    }
}

/// The current Endpoints already say what we would write (the trigger time alone never
/// causes a write, as upstream).
fn up_to_date(current: &Endpoints, desired: &Desired, labels: &BTreeMap<String, String>) -> bool {
    let subsets = current.subsets.as_deref().unwrap_or_default();
    let over_capacity = current.annotations().contains_key(ANNOTATION_OVER_CAPACITY);
    subsets == desired.subsets.as_slice()
        && current.labels() == labels
        && over_capacity == desired.over_capacity
}

/// The Endpoints to write: the current object's metadata (for its resourceVersion and
/// foreign annotations) with our labels, annotations and subsets.
fn build(
    service: &Service,
    current: Option<&Endpoints>,
    desired: Desired,
    labels: BTreeMap<String, String>,
    trigger: Option<jiff::Timestamp>,
) -> Endpoints {
    let mut metadata = match current {
        Some(current) => current.metadata.clone(),
        None => ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            ..Default::default()
        },
    };
    metadata.managed_fields = None;
    metadata.labels = Some(labels);
    let annotations = metadata.annotations.get_or_insert_with(BTreeMap::new);
    match trigger {
        Some(at) => annotations.insert(ANNOTATION_TRIGGER_TIME.into(), format_time(at)),
        None => annotations.remove(ANNOTATION_TRIGGER_TIME),
    };
    if desired.over_capacity {
        annotations.insert(ANNOTATION_OVER_CAPACITY.into(), "truncated".into());
    } else {
        annotations.remove(ANNOTATION_OVER_CAPACITY);
    }
    if annotations.is_empty() {
        metadata.annotations = None;
    }
    Endpoints {
        metadata,
        subsets: (!desired.subsets.is_empty()).then_some(desired.subsets),
    }
}

/// RFC 3339 in UTC with nanoseconds when there are any (Go's `time.RFC3339Nano`).
pub(crate) fn format_time(at: jiff::Timestamp) -> String {
    at.to_string()
}

/// What the Endpoints of a Service should list.
#[derive(Debug, PartialEq)]
struct Desired {
    subsets: Vec<EndpointSubset>,
    /// More than [`MAX_ADDRESSES`] were found and the rest left out.
    over_capacity: bool,
}

/// The ports (sorted) a pod serves the Service on; pods with the same set share a subset.
type PortSet = Vec<(Option<String>, i32, Option<String>, Option<String>)>;

/// Upstream's syncService and RepackSubsets, as one pure function: each eligible pod
/// becomes an address (ready or not), grouped by the set of ports it resolves.
fn desired_subsets(service: &Service, pods: &[&Pod]) -> Desired {
    let tolerate_unready = publishes_not_ready(service);
    let ports = service_ports(service);
    let headless = service_pods::is_headless(service);
    let mut groups: BTreeMap<PortSet, (Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        BTreeMap::new();
    for pod in pods {
        if !should_be_in_endpoints(pod, tolerate_unready) {
            continue;
        }
        let Some(ip) = pod_ipv4(pod) else { continue };
        let port_set: PortSet = if ports.is_empty() {
            // A Service without ports has endpoints only when headless (DNS-only).
            if !headless {
                continue;
            }
            Vec::new()
        } else {
            let mut resolved: PortSet = ports
                .iter()
                .filter_map(|p| {
                    let number = resolve_port(pod, p)?;
                    Some((
                        p.name.clone().filter(|n| !n.is_empty()),
                        number,
                        p.protocol.clone(),
                        p.app_protocol.clone(),
                    ))
                })
                .collect();
            if resolved.is_empty() {
                continue;
            }
            resolved.sort();
            resolved
        };
        let address = EndpointAddress {
            ip,
            hostname: hostname(pod, service),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(target_ref(pod)),
        };
        let (ready, not_ready) = groups.entry(port_set).or_default();
        if tolerate_unready || crate::pod_control::is_ready(pod) {
            ready.push(address);
        } else {
            not_ready.push(address);
        }
    }
    let mut budget = MAX_ADDRESSES;
    let total: usize = groups.values().map(|(r, n)| r.len() + n.len()).sum();
    // Over capacity, ready addresses are kept before not-ready ones.
    for (ready, _) in groups.values_mut() {
        ready.truncate(budget);
        budget -= ready.len();
    }
    for (_, not_ready) in groups.values_mut() {
        not_ready.truncate(budget);
        budget -= not_ready.len();
    }
    let subsets = groups
        .into_iter()
        .filter(|(_, (r, n))| !r.is_empty() || !n.is_empty())
        .map(|(port_set, (mut ready, mut not_ready))| {
            sort_addresses(&mut ready);
            sort_addresses(&mut not_ready);
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!port_set.is_empty()).then(|| {
                    port_set
                        .into_iter()
                        .map(|(name, port, protocol, app_protocol)| EndpointPort {
                            name,
                            port,
                            protocol,
                            app_protocol,
                        })
                        .collect()
                }),
            }
        })
        .collect();
    Desired {
        subsets,
        over_capacity: total > MAX_ADDRESSES,
    }
}

fn sort_addresses(addresses: &mut [EndpointAddress]) {
    addresses.sort_by(|a, b| {
        let uid = |x: &EndpointAddress| x.target_ref.as_ref().and_then(|t| t.uid.clone());
        (&a.ip, uid(a)).cmp(&(&b.ip, uid(b)))
    });
}

#[cfg(test)]
mod tests {
    use super::service_pods::tests::{pod, service};
    use super::*;
    use serde_json::json;

    fn running(name: &str, ip: &str, ready: bool, http_port: i32) -> Pod {
        pod(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": {"app": "a"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": http_port}]}]},
            "status": {"phase": "Running", "podIP": ip, "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
    }

    fn web(extra: serde_json::Value) -> Service {
        let mut svc = json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"clusterIP": "10.43.0.10", "selector": {"app": "a"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}});
        for (k, v) in extra.as_object().unwrap() {
            svc["spec"][k] = v.clone();
        }
        service(svc)
    }

    fn ips(list: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        list.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn ready_and_not_ready_pods_grouped_by_resolved_port() {
        let pods = [
            running("b", "10.42.0.2", true, 8080),
            running("a", "10.42.0.1", true, 8080),
            running("c", "10.42.0.3", false, 8080),
            running("d", "10.42.0.4", true, 9090),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let desired = desired_subsets(&web(json!({})), &refs);
        assert!(!desired.over_capacity);
        assert_eq!(desired.subsets.len(), 2);
        let first = &desired.subsets[0];
        assert_eq!(first.ports.as_ref().unwrap()[0].port, 8080);
        assert_eq!(
            first.ports.as_ref().unwrap()[0].name.as_deref(),
            Some("http")
        );
        assert_eq!(ips(&first.addresses), vec!["10.42.0.1", "10.42.0.2"]);
        assert_eq!(ips(&first.not_ready_addresses), vec!["10.42.0.3"]);
        let address = &first.addresses.as_ref().unwrap()[0];
        assert_eq!(address.node_name.as_deref(), Some("n1"));
        let target = address.target_ref.as_ref().unwrap();
        assert_eq!(
            (
                target.kind.as_deref(),
                target.name.as_deref(),
                target.uid.as_deref()
            ),
            (Some("Pod"), Some("a"), Some("uid-a"))
        );
        assert_eq!(desired.subsets[1].ports.as_ref().unwrap()[0].port, 9090);
        assert_eq!(ips(&desired.subsets[1].addresses), vec!["10.42.0.4"]);
    }

    #[test]
    fn publish_not_ready_terminating_and_missing_ports() {
        let mut terminating = running("t", "10.42.0.9", true, 8080);
        terminating.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        let mut no_port = running("n", "10.42.0.8", true, 8080);
        no_port.spec.as_mut().unwrap().containers[0].ports = None;
        let pods = [running("c", "10.42.0.3", false, 8080), terminating, no_port];
        let refs: Vec<&Pod> = pods.iter().collect();
        let normal = desired_subsets(&web(json!({})), &refs);
        assert_eq!(normal.subsets.len(), 1);
        assert!(normal.subsets[0].addresses.is_none());
        assert_eq!(
            ips(&normal.subsets[0].not_ready_addresses),
            vec!["10.42.0.3"]
        );
        // publishNotReadyAddresses lists every pod, terminating ones too, as ready.
        let tolerant = desired_subsets(&web(json!({"publishNotReadyAddresses": true})), &refs);
        assert_eq!(
            ips(&tolerant.subsets[0].addresses),
            vec!["10.42.0.3", "10.42.0.9"]
        );
        assert!(tolerant.subsets[0].not_ready_addresses.is_none());
    }

    #[test]
    fn portless_services_and_capacity() {
        let pods: Vec<Pod> = (0..1001)
            .map(|i| {
                running(
                    &format!("p{i}"),
                    &format!("10.42.{}.{}", i / 250, i % 250),
                    i != 0,
                    8080,
                )
            })
            .collect();
        let refs: Vec<&Pod> = pods.iter().collect();
        let portless = web(json!({"ports": null}));
        assert!(desired_subsets(&portless, &refs[..3]).subsets.is_empty());
        let headless = web(json!({"ports": null, "clusterIP": "None"}));
        let desired = desired_subsets(&headless, &refs[..3]);
        assert_eq!(desired.subsets.len(), 1);
        assert!(desired.subsets[0].ports.is_none());
        let full = desired_subsets(&web(json!({})), &refs);
        assert!(full.over_capacity);
        // The one not-ready pod is the one dropped.
        assert_eq!(full.subsets[0].addresses.as_ref().unwrap().len(), 1000);
        assert!(full.subsets[0].not_ready_addresses.is_none());
    }

    #[test]
    fn unchanged_endpoints_are_not_rewritten() {
        let pods = [running("a", "10.42.0.1", true, 8080)];
        let refs: Vec<&Pod> = pods.iter().collect();
        let svc = web(json!({}));
        let labels = endpoint_labels(&svc, &[]);
        let written = build(
            &svc,
            None,
            desired_subsets(&svc, &refs),
            labels.clone(),
            None,
        );
        assert!(up_to_date(&written, &desired_subsets(&svc, &refs), &labels));
        let moved = [running("a", "10.42.0.1", false, 8080)];
        let refs: Vec<&Pod> = moved.iter().collect();
        assert!(!up_to_date(
            &written,
            &desired_subsets(&svc, &refs),
            &labels
        ));
    }
}
