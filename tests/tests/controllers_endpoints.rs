//! The endpoints and EndpointSlice controllers against a real `k3rs server`: pods are
//! created directly and their status written the way a kubelet would, and the tests
//! follow what Services publish: ready and not-ready addresses, named target ports
//! resolved per pod, conditions and topology in slices, slices split at 100 endpoints,
//! selector and port changes, deletions, and what kubectl prints.

use std::collections::BTreeMap;
use std::time::Duration;

use k3rs_e2e::fake_nodes::{add_ready_node, keep_leases, set_pod_running, NodeSpec};
use k3rs_e2e::wait::eventually;
use k3rs_e2e::{ok, K3rs};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

async fn create_pod(client: &Client, name: &str, labels: Value, http_port: i32, node: &str) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx:1.27",
            "ports": [{"name": "http", "containerPort": http_port}]}]},
    }))
    .unwrap();
    Api::<Pod>::default_namespaced(client.clone())
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
}

async fn create_service(client: &Client, service: Value) {
    let svc: Service = serde_json::from_value(service).unwrap();
    Api::<Service>::default_namespaced(client.clone())
        .create(&PostParams::default(), &svc)
        .await
        .unwrap();
}

async fn patch_service(client: &Client, name: &str, patch: Value) {
    Api::<Service>::default_namespaced(client.clone())
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

async fn endpoints(client: &Client, name: &str) -> Option<Endpoints> {
    Api::<Endpoints>::default_namespaced(client.clone())
        .get_opt(name)
        .await
        .unwrap()
}

async fn slices(client: &Client, service: &str) -> Vec<EndpointSlice> {
    let selector = format!("kubernetes.io/service-name={service}");
    Api::<EndpointSlice>::default_namespaced(client.clone())
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items
}

/// Per subset: (ports as `name:port`, ready IPs, not-ready IPs), each sorted.
type Subsets = Vec<(Vec<String>, Vec<String>, Vec<String>)>;

fn subsets(ep: &Endpoints) -> Subsets {
    let ips = |list: &Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>| {
        let mut ips: Vec<String> = list.iter().flatten().map(|a| a.ip.clone()).collect();
        ips.sort();
        ips
    };
    let mut out: Subsets = ep
        .subsets
        .iter()
        .flatten()
        .map(|s| {
            let mut ports: Vec<String> = s
                .ports
                .iter()
                .flatten()
                .map(|p| format!("{}:{}", p.name.clone().unwrap_or_default(), p.port))
                .collect();
            ports.sort();
            (ports, ips(&s.addresses), ips(&s.not_ready_addresses))
        })
        .collect();
    out.sort();
    out
}

/// Every endpoint of the Service's slices: IP -> (ports, ready, serving, terminating).
fn slice_endpoints(slices: &[EndpointSlice]) -> BTreeMap<String, (Vec<String>, bool, bool, bool)> {
    let mut out = BTreeMap::new();
    for slice in slices {
        let ports: Vec<String> = slice
            .ports
            .iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}:{}",
                    p.name.clone().unwrap_or_default(),
                    p.port.unwrap_or(0)
                )
            })
            .collect();
        for ep in &slice.endpoints {
            let c = ep.conditions.clone().unwrap_or_default();
            out.insert(
                ep.addresses[0].clone(),
                (
                    ports.clone(),
                    c.ready.unwrap_or(false),
                    c.serving.unwrap_or(false),
                    c.terminating.unwrap_or(false),
                ),
            );
        }
    }
    out
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_publish_their_pods_as_endpoints_and_slices() {
    let k = K3rs::start();
    let client = k.client().await;
    add_ready_node(
        &client,
        &NodeSpec::new("n1").labels(json!({"topology.kubernetes.io/zone": "zone-a"})),
    )
    .await;
    let leases = keep_leases(client.clone(), vec!["n1".into()], Duration::from_secs(5));

    // Two pods serve "http" on 8080, one on 9090; one pod belongs to another app.
    for (name, port) in [("web-1", 8080), ("web-2", 8080), ("web-3", 9090)] {
        create_pod(&client, name, json!({"app": "web"}), port, "n1").await;
    }
    create_pod(&client, "other", json!({"app": "other"}), 8080, "n1").await;
    set_pod_running(&client, "default", "web-1", true, "10.42.0.11").await;
    set_pod_running(&client, "default", "web-2", true, "10.42.0.12").await;
    set_pod_running(&client, "default", "web-3", false, "10.42.0.13").await;
    set_pod_running(&client, "default", "other", true, "10.42.0.20").await;
    create_service(
        &client,
        json!({
            "metadata": {"name": "web", "labels": {"team": "blue"}},
            "spec": {"selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }),
    )
    .await;

    // Endpoints: one subset per resolved port; the not-ready pod in notReadyAddresses.
    let ep = eventually(WAIT, "endpoints of web", || async {
        let ep = endpoints(&client, "web").await?;
        let want: Subsets = vec![
            (
                strings(&["http:8080"]),
                strings(&["10.42.0.11", "10.42.0.12"]),
                vec![],
            ),
            (strings(&["http:9090"]), vec![], strings(&["10.42.0.13"])),
        ];
        (subsets(&ep) == want).then_some(ep)
    })
    .await;
    let labels = ep.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("team").map(String::as_str),
        Some("blue"),
        "{labels:?}"
    );
    let annotations = ep.metadata.annotations.clone().unwrap_or_default();
    assert!(
        annotations.contains_key("endpoints.kubernetes.io/last-change-trigger-time"),
        "{annotations:?}"
    );
    let subset = &ep.subsets.as_ref().unwrap()[0];
    let address = subset
        .addresses
        .as_ref()
        .unwrap()
        .iter()
        .find(|a| a.ip == "10.42.0.11")
        .unwrap();
    assert_eq!(address.node_name.as_deref(), Some("n1"));
    let target = address.target_ref.as_ref().unwrap();
    assert_eq!(target.kind.as_deref(), Some("Pod"));
    assert_eq!(target.name.as_deref(), Some("web-1"));
    assert_eq!(target.namespace.as_deref(), Some("default"));
    assert!(target.uid.is_some());
    assert_eq!(
        subset.ports.as_ref().unwrap()[0].protocol.as_deref(),
        Some("TCP")
    );

    // Slices: one per port set, conditions per pod, owned by the Service.
    let found = eventually(WAIT, "endpointslices of web", || async {
        let found = slices(&client, "web").await;
        (slice_endpoints(&found).len() == 3 && found.len() == 2).then_some(found)
    })
    .await;
    let by_ip = slice_endpoints(&found);
    assert_eq!(
        by_ip["10.42.0.11"],
        (strings(&["http:8080"]), true, true, false)
    );
    assert_eq!(
        by_ip["10.42.0.13"],
        (strings(&["http:9090"]), false, false, false)
    );
    let svc = Api::<Service>::default_namespaced(client.clone())
        .get("web")
        .await
        .unwrap();
    for slice in &found {
        assert!(slice.metadata.name.as_deref().unwrap().starts_with("web-"));
        assert_eq!(slice.address_type, "IPv4");
        let labels = slice.metadata.labels.clone().unwrap();
        assert_eq!(labels["kubernetes.io/service-name"], "web");
        assert_eq!(
            labels["endpointslice.kubernetes.io/managed-by"],
            "endpointslice-controller.k8s.io"
        );
        assert_eq!(labels["team"], "blue");
        let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("Service", "web")
        );
        assert_eq!(Some(&owner.uid), svc.metadata.uid.as_ref());
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        for ep in &slice.endpoints {
            assert_eq!(ep.zone.as_deref(), Some("zone-a"));
            assert_eq!(ep.node_name.as_deref(), Some("n1"));
            assert_eq!(ep.target_ref.as_ref().unwrap().kind.as_deref(), Some("Pod"));
        }
    }

    // Settled: nothing is rewritten without a change.
    let versions = |ep: &Endpoints, s: &[EndpointSlice]| {
        let mut v = vec![ep.metadata.resource_version.clone()];
        v.extend(s.iter().map(|s| s.metadata.resource_version.clone()));
        v
    };
    let before = versions(
        &endpoints(&client, "web").await.unwrap(),
        &slices(&client, "web").await,
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = versions(
        &endpoints(&client, "web").await.unwrap(),
        &slices(&client, "web").await,
    );
    assert_eq!(before, after, "endpoints rewritten without a change");

    // What kubectl shows.
    let table = ok(k.kubectl(&["get", "endpoints", "web"]));
    assert!(table.contains("ENDPOINTS"), "{table}");
    assert!(
        table.contains("10.42.0.11:8080") && table.contains("10.42.0.12:8080"),
        "{table}"
    );
    let table = ok(k.kubectl(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
    ]));
    for column in [
        "ADDRESSTYPE",
        "PORTS",
        "ENDPOINTS",
        "IPv4",
        "8080",
        "9090",
        "10.42.0.11",
        "10.42.0.13",
    ] {
        assert!(table.contains(column), "missing {column}:\n{table}");
    }
    let described = ok(k.kubectl(&["describe", "service", "web"]));
    let line = described
        .lines()
        .find(|l| l.starts_with("Endpoints:"))
        .unwrap_or_default();
    assert!(line.contains("10.42.0.11:8080"), "{described}");

    // The not-ready pod turns ready.
    set_pod_running(&client, "default", "web-3", true, "10.42.0.13").await;
    eventually(WAIT, "web-3 ready in endpoints and slices", || async {
        let ep = endpoints(&client, "web").await?;
        let moved =
            subsets(&ep).contains(&(strings(&["http:9090"]), strings(&["10.42.0.13"]), vec![]));
        let by_ip = slice_endpoints(&slices(&client, "web").await);
        (moved && by_ip.get("10.42.0.13").is_some_and(|e| e.1 && e.2)).then_some(())
    })
    .await;

    // A deleted pod leaves Endpoints; in slices it is gone or marked terminating.
    Api::<Pod>::default_namespaced(client.clone())
        .delete("web-1", &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "web-1 out of endpoints", || async {
        let ep = endpoints(&client, "web").await?;
        let listed = subsets(&ep)
            .iter()
            .any(|(_, r, n)| r.contains(&"10.42.0.11".into()) || n.contains(&"10.42.0.11".into()));
        let by_ip = slice_endpoints(&slices(&client, "web").await);
        let in_slice = by_ip.get("10.42.0.11");
        let slice_ok = in_slice.is_none_or(|(_, ready, _, terminating)| !ready && *terminating);
        (!listed && slice_ok).then_some(())
    })
    .await;

    // New ports: a numeric target port applies to every pod alike.
    patch_service(
        &client,
        "web",
        json!({"spec": {"ports": [{"name": "web", "port": 80, "targetPort": 7000}]}}),
    )
    .await;
    eventually(WAIT, "endpoints on the new port", || async {
        let ep = endpoints(&client, "web").await?;
        let want: Subsets = vec![(
            strings(&["web:7000"]),
            strings(&["10.42.0.12", "10.42.0.13"]),
            vec![],
        )];
        let by_ip = slice_endpoints(&slices(&client, "web").await);
        let slices_ok = ["10.42.0.12", "10.42.0.13"].iter().all(|ip| {
            by_ip
                .get(*ip)
                .is_some_and(|e| e.0 == strings(&["web:7000"]))
        });
        (subsets(&ep) == want && slices_ok).then_some(())
    })
    .await;

    // A new selector picks other pods.
    patch_service(
        &client,
        "web",
        json!({"spec": {"selector": {"app": "other"}}}),
    )
    .await;
    eventually(WAIT, "endpoints follow the selector", || async {
        let ep = endpoints(&client, "web").await?;
        let want: Subsets = vec![(strings(&["web:7000"]), strings(&["10.42.0.20"]), vec![])];
        let by_ip = slice_endpoints(&slices(&client, "web").await);
        (subsets(&ep) == want && by_ip.keys().eq(["10.42.0.20"].iter())).then_some(())
    })
    .await;

    // Deleting the Service deletes its Endpoints (slices go with the garbage collector).
    Api::<Service>::default_namespaced(client.clone())
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "endpoints of a deleted service removed", || async {
        endpoints(&client, "web").await.is_none().then_some(())
    })
    .await;
    leases.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_services_split_slices_and_user_endpoints_stay() {
    let k = K3rs::start();
    let client = k.client().await;
    // Pods are bound to a node up front, so no scheduler writes race with their status.
    add_ready_node(&client, &NodeSpec::new("n1").resources("4", "8Gi", 200)).await;
    let leases = keep_leases(client.clone(), vec!["n1".into()], Duration::from_secs(5));

    // A selector-less Service keeps the Endpoints its user writes.
    create_service(
        &client,
        json!({
            "metadata": {"name": "manual"},
            "spec": {"ports": [{"port": 80}]},
        }),
    )
    .await;
    let manual: Endpoints = serde_json::from_value(json!({
        "metadata": {"name": "manual"},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 80}]}],
    }))
    .unwrap();
    Api::<Endpoints>::default_namespaced(client.clone())
        .create(&PostParams::default(), &manual)
        .await
        .unwrap();

    // 150 pods, every third not ready, behind a Service publishing not-ready addresses.
    let names: Vec<String> = (0..150).map(|i| format!("big-{i}")).collect();
    futures::future::join_all(
        names
            .iter()
            .map(|n| create_pod(&client, n, json!({"app": "big"}), 8080, "n1")),
    )
    .await;
    futures::future::join_all(names.iter().enumerate().map(|(i, n)| {
        let ip = format!("10.42.{}.{}", i / 100 + 1, i % 100 + 1);
        let client = client.clone();
        async move { set_pod_running(&client, "default", n, i % 3 != 0, &ip).await }
    }))
    .await;
    create_service(
        &client,
        json!({
            "metadata": {"name": "big"},
            "spec": {"selector": {"app": "big"}, "publishNotReadyAddresses": true,
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }),
    )
    .await;

    let found = eventually(WAIT, "150 endpoints in two slices", || async {
        let found = slices(&client, "big").await;
        (slice_endpoints(&found).len() == 150).then_some(found)
    })
    .await;
    // How the 150 are cut depends on how the pods arrived; never more than 100 a slice.
    let sizes: Vec<usize> = found.iter().map(|s| s.endpoints.len()).collect();
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    assert!(sizes.iter().all(|n| *n <= 100), "{sizes:?}");
    let by_ip = slice_endpoints(&found);
    // publishNotReadyAddresses: all ready; serving still tells the pod's own readiness.
    assert!(by_ip.values().all(|e| e.1));
    assert_eq!(by_ip.values().filter(|e| !e.2).count(), 50);
    eventually(WAIT, "150 ready addresses", || async {
        let ep = endpoints(&client, "big").await?;
        let s = subsets(&ep);
        (s.len() == 1 && s[0].1.len() == 150 && s[0].2.is_empty()).then_some(())
    })
    .await;

    // Without publishNotReadyAddresses the not-ready third moves to notReadyAddresses.
    patch_service(
        &client,
        "big",
        json!({"spec": {"publishNotReadyAddresses": false}}),
    )
    .await;
    eventually(WAIT, "not-ready addresses split out", || async {
        let ep = endpoints(&client, "big").await?;
        let s = subsets(&ep);
        let by_ip = slice_endpoints(&slices(&client, "big").await);
        let slices_ok = by_ip.len() == 150 && by_ip.values().filter(|e| !e.1).count() == 50;
        (s.len() == 1 && s[0].1.len() == 100 && s[0].2.len() == 50 && slices_ok).then_some(())
    })
    .await;

    let kept = endpoints(&client, "manual")
        .await
        .expect("user endpoints kept");
    assert_eq!(
        subsets(&kept),
        vec![(strings(&[":80"]), strings(&["192.0.2.10"]), vec![])]
    );
    assert!(slices(&client, "manual").await.iter().all(|s| {
        s.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("endpointslice.kubernetes.io/managed-by"))
            .map(String::as_str)
            != Some("endpointslice-controller.k8s.io")
    }));
    leases.abort();
}
