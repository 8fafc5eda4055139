//! Node IPAM, node lifecycle (health, taints, taint-based eviction) and namespace supplies
//! (default ServiceAccount, `kube-root-ca.crt`) as the controller manager inside
//! `k3rs server` runs them, driven by fake kubelets (`k3rs_e2e::fake_nodes`).

use std::collections::HashSet;
use std::time::Duration;

use k3rs_e2e::fake_nodes::{
    add_ready_node, keep_leases, renew_lease, set_node_ready, set_pod_running, NodeSpec,
};
use k3rs_e2e::wait::eventually;
use k3rs_e2e::{ok, K3rs, ROOT_CA};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Node, Pod, ServiceAccount, Taint};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

async fn pod_cidr(client: &Client, name: &str) -> Option<String> {
    let node = Api::<Node>::all(client.clone()).get(name).await.ok()?;
    let spec = node.spec?;
    let cidr = spec.pod_cidr?;
    assert_eq!(
        spec.pod_cidrs.as_deref(),
        Some(std::slice::from_ref(&cidr)),
        "podCIDRs of {name} must list podCIDR"
    );
    Some(cidr)
}

async fn wait_cidr(client: &Client, name: &str) -> String {
    eventually(WAIT, &format!("a pod CIDR for {name}"), || {
        pod_cidr(client, name)
    })
    .await
}

async fn delete_node(client: &Client, name: &str) {
    Api::<Node>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, &format!("node {name} gone"), || async {
        Api::<Node>::all(client.clone())
            .get_opt(name)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
}

/// A bare Node: IPAM needs nothing more, and no kubelet status keeps the test short.
async fn create_node(client: &Client, name: &str) {
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
}

#[tokio::test]
async fn node_cidrs_are_unique_reused_and_survive_restarts() {
    let mut k = K3rs::start();
    let client = k.client().await;
    for name in ["n1", "n2", "n3"] {
        create_node(&client, name).await;
    }
    assert_eq!(wait_cidr(&client, "n1").await, "10.42.0.0/24");
    assert_eq!(wait_cidr(&client, "n2").await, "10.42.1.0/24");
    assert_eq!(wait_cidr(&client, "n3").await, "10.42.2.0/24");

    // A deleted node's range is free again: the lowest free one goes first.
    delete_node(&client, "n2").await;
    create_node(&client, "n4").await;
    assert_eq!(wait_cidr(&client, "n4").await, "10.42.1.0/24");

    // A node registered with its own CIDR keeps it, and nobody else gets it.
    let preset: Node = serde_json::from_value(json!({
        "metadata": {"name": "preset"},
        "spec": {"podCIDR": "10.42.3.0/24", "podCIDRs": ["10.42.3.0/24"]},
    }))
    .unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &preset)
        .await
        .unwrap();
    create_node(&client, "n5").await;
    assert_eq!(wait_cidr(&client, "n5").await, "10.42.4.0/24");
    assert_eq!(wait_cidr(&client, "preset").await, "10.42.3.0/24");

    // After a restart the allocations are read back from the nodes, never handed out twice.
    k.restart();
    let client = k.client().await;
    create_node(&client, "n6").await;
    assert_eq!(wait_cidr(&client, "n6").await, "10.42.5.0/24");
    let mut seen = HashSet::new();
    for (name, want) in [
        ("n1", "10.42.0.0/24"),
        ("n4", "10.42.1.0/24"),
        ("n3", "10.42.2.0/24"),
        ("preset", "10.42.3.0/24"),
        ("n5", "10.42.4.0/24"),
        ("n6", "10.42.5.0/24"),
    ] {
        let cidr = pod_cidr(&client, name).await;
        assert_eq!(cidr.as_deref(), Some(want), "pod CIDR of {name}");
        assert!(seen.insert(want), "{want} given twice");
    }
    // And a freed range is reused after the restart too.
    delete_node(&client, "n1").await;
    create_node(&client, "n7").await;
    assert_eq!(wait_cidr(&client, "n7").await, "10.42.0.0/24");
}

async fn create_pod(
    client: &Client,
    ns: &str,
    name: &str,
    node: &str,
    tolerations: Option<serde_json::Value>,
) {
    let mut spec = json!({
        "nodeName": node,
        "containers": [{"name": "c", "image": "busybox"}],
    });
    if let Some(t) = tolerations {
        spec["tolerations"] = t;
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }))
    .unwrap();
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
}

/// Whether the pod is gone or being deleted.
async fn evicted(client: &Client, ns: &str, name: &str) -> bool {
    match Api::<Pod>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()
    {
        None => true,
        Some(pod) => pod.metadata.deletion_timestamp.is_some(),
    }
}

fn taints(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
}

fn has_taint(node: &Node, key: &str, effect: &str) -> bool {
    taints(node)
        .iter()
        .any(|t| t.key == key && t.effect == effect)
}

fn node_condition(node: &Node, type_: &str) -> Option<(String, Option<String>)> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

fn pod_condition(pod: &Pod, type_: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

async fn has_event(client: &Client, object: &str, reason: &str, message: &str) -> bool {
    let events = Api::<Event>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    events.items.iter().any(|e| {
        e.involved_object.name.as_deref() == Some(object)
            && e.reason.as_deref() == Some(reason)
            && e.message.as_deref() == Some(message)
    })
}

#[tokio::test]
async fn silent_nodes_are_tainted_and_their_pods_evicted() {
    let k = K3rs::start_with(&[
        "--kube-controller-manager-arg",
        "node-monitor-grace-period=5s",
        "--kube-controller-manager-arg",
        "node-monitor-period=1s",
    ]);
    let client = k.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let alive = NodeSpec::new("alive");
    let silent = NodeSpec::new("silent");
    add_ready_node(&client, &alive).await;
    add_ready_node(&client, &silent).await;
    let alive_leases = keep_leases(client.clone(), vec!["alive".into()], Duration::from_secs(1));

    // Default tolerations from admission: unreachable for 300 s.
    create_pod(&client, "default", "patient", "silent", None).await;
    set_pod_running(&client, "default", "patient", true, "10.42.1.5").await;
    create_pod(&client, "default", "hasty", "silent", Some(json!([
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 3},
    ]))).await;
    create_pod(
        &client,
        "default",
        "forever",
        "silent",
        Some(json!([
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
        ])),
    )
    .await;
    create_pod(&client, "default", "bystander", "alive", None).await;
    set_pod_running(&client, "default", "bystander", true, "10.42.0.5").await;
    create_pod(
        &client,
        "default",
        "maintainer",
        "alive",
        Some(json!([
            {"key": "example.com/maintenance", "operator": "Exists", "effect": "NoExecute"},
        ])),
    )
    .await;

    // The silent node goes Unknown and gets the unreachable taints.
    let node = eventually(
        WAIT,
        "silent node Unknown and tainted unreachable",
        || async {
            let node = nodes.get("silent").await.unwrap();
            let unknown = node_condition(&node, "Ready")
                == Some(("Unknown".into(), Some("NodeStatusUnknown".into())));
            (unknown
                && has_taint(&node, "node.kubernetes.io/unreachable", "NoExecute")
                && has_taint(&node, "node.kubernetes.io/unreachable", "NoSchedule"))
            .then_some(node)
        },
    )
    .await;
    for type_ in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        assert_eq!(
            node_condition(&node, type_).map(|c| c.0).as_deref(),
            Some("Unknown"),
            "{type_}"
        );
    }
    let time_added = taints(&node)
        .iter()
        .find(|t| t.effect == "NoExecute")
        .and_then(|t| t.time_added.clone());
    assert!(time_added.is_some(), "NoExecute taint has timeAdded");

    // The pod tolerating it for 3 s goes; the others stay.
    eventually(WAIT, "pod hasty evicted", || async {
        evicted(&client, "default", "hasty").await.then_some(())
    })
    .await;
    if let Some(pod) = pods.get_opt("hasty").await.unwrap() {
        assert_eq!(
            pod_condition(&pod, "DisruptionTarget").as_deref(),
            Some("True")
        );
    }
    eventually(WAIT, "TaintManagerEviction event for hasty", || async {
        has_event(
            &client,
            "hasty",
            "TaintManagerEviction",
            "Marking for deletion Pod default/hasty",
        )
        .await
        .then_some(())
    })
    .await;
    eventually(WAIT, "NodeNotReady event for the node", || async {
        has_event(
            &client,
            "silent",
            "NodeNotReady",
            "Node silent status is now: NodeNotReady",
        )
        .await
        .then_some(())
    })
    .await;
    // Nobody reports readiness for pods on the silent node any more.
    eventually(WAIT, "pod patient marked not ready", || async {
        let pod = pods.get("patient").await.unwrap();
        (pod_condition(&pod, "Ready").as_deref() == Some("False")).then_some(())
    })
    .await;
    for name in ["patient", "forever", "bystander", "maintainer"] {
        assert!(!evicted(&client, "default", name).await, "{name} must stay");
    }
    let bystander = pods.get("bystander").await.unwrap();
    assert_eq!(pod_condition(&bystander, "Ready").as_deref(), Some("True"));
    let healthy = nodes.get("alive").await.unwrap();
    assert_eq!(
        node_condition(&healthy, "Ready").map(|c| c.0).as_deref(),
        Some("True")
    );
    assert!(
        taints(&healthy).is_empty(),
        "alive node has no taints: {:?}",
        taints(&healthy)
    );

    // A NoExecute taint a pod does not tolerate at all evicts it at once; foreign taints
    // are kept as they are.
    ok(k.kubectl(&[
        "taint",
        "node",
        "alive",
        "example.com/maintenance=yes:NoExecute",
    ]));
    eventually(WAIT, "pod bystander evicted", || async {
        evicted(&client, "default", "bystander").await.then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !evicted(&client, "default", "maintainer").await,
        "maintainer tolerates the taint"
    );
    let healthy = nodes.get("alive").await.unwrap();
    assert!(has_taint(&healthy, "example.com/maintenance", "NoExecute"));

    // The kubelet comes back: Ready again and the taints lifted.
    renew_lease(&client, "silent").await;
    set_node_ready(&client, "silent", &silent, true).await;
    let silent_leases = keep_leases(
        client.clone(),
        vec!["silent".into()],
        Duration::from_secs(1),
    );
    eventually(WAIT, "silent node Ready and untainted", || async {
        let node = nodes.get("silent").await.unwrap();
        let ready = node_condition(&node, "Ready").map(|c| c.0).as_deref() == Some("True");
        (ready && taints(&node).is_empty()).then_some(())
    })
    .await;
    // And it stays so while the lease is renewed.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let node = nodes.get("silent").await.unwrap();
    assert_eq!(
        node_condition(&node, "Ready").map(|c| c.0).as_deref(),
        Some("True")
    );
    assert!(taints(&node).is_empty());
    assert!(!evicted(&client, "default", "patient").await);

    // A kubelet reporting NotReady gets the not-ready taints.
    set_node_ready(&client, "silent", &silent, false).await;
    eventually(WAIT, "not-ready taints", || async {
        let node = nodes.get("silent").await.unwrap();
        (has_taint(&node, "node.kubernetes.io/not-ready", "NoExecute")
            && has_taint(&node, "node.kubernetes.io/not-ready", "NoSchedule")
            && !has_taint(&node, "node.kubernetes.io/unreachable", "NoExecute"))
        .then_some(())
    })
    .await;
    alive_leases.abort();
    silent_leases.abort();
}

#[tokio::test]
async fn namespaces_get_a_default_service_account_and_the_root_ca() {
    let k = K3rs::start();
    let client = k.client().await;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "supplied"}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "supplied");
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "supplied");

    let sa = eventually(WAIT, "default service account", || async {
        accounts.get_opt("default").await.unwrap()
    })
    .await;
    let cm = eventually(WAIT, "kube-root-ca.crt", || async {
        config_maps.get_opt(ROOT_CA).await.unwrap()
    })
    .await;
    let ca = cm.data.as_ref().unwrap()["ca.crt"].clone();
    assert!(ca.contains("-----BEGIN CERTIFICATE-----"), "{ca}");
    let description = &cm.metadata.annotations.as_ref().unwrap()["kubernetes.io/description"];
    assert!(
        description.starts_with("Contains a CA bundle"),
        "{description}"
    );
    // The bundle is the cluster's server CA.
    let server_ca = k.data_dir().join("server/tls/server-ca.crt");
    assert_eq!(std::fs::read_to_string(server_ca).unwrap(), ca);

    // Deleted: recreated.
    accounts
        .delete("default", &DeleteParams::default())
        .await
        .unwrap();
    let old_uid = sa.metadata.uid.clone();
    eventually(WAIT, "default service account recreated", || async {
        accounts
            .get_opt("default")
            .await
            .unwrap()
            .filter(|sa| sa.metadata.uid != old_uid)
    })
    .await;
    config_maps
        .delete(ROOT_CA, &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "kube-root-ca.crt recreated", || async {
        config_maps
            .get_opt(ROOT_CA)
            .await
            .unwrap()
            .filter(|c| c.metadata.uid != cm.metadata.uid)
    })
    .await;

    // Edited: put back.
    let edit = json!({"data": {"ca.crt": "tampered", "extra": "x"}, "metadata": {"annotations": {"kubernetes.io/description": null}}});
    config_maps
        .patch(ROOT_CA, &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    eventually(WAIT, "kube-root-ca.crt restored", || async {
        let cm = config_maps.get(ROOT_CA).await.unwrap();
        let data = cm.data.unwrap_or_default();
        let described = cm
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("kubernetes.io/description");
        (data.len() == 1 && data.get("ca.crt") == Some(&ca) && described).then_some(())
    })
    .await;

    // Existing namespaces are supplied too, and a terminating one is not.
    for existing in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), existing);
        eventually(
            WAIT,
            &format!("default service account in {existing}"),
            || async { api.get_opt("default").await.unwrap() },
        )
        .await;
    }
}
