//! The scheduler inside `k3rs server`, against fake nodes (no kubelet): where it binds
//! pods (node selectors, affinity, taints, resources, host ports, spreading,
//! anti-affinity, not-ready nodes), and how it reports pods that fit nowhere (the
//! `PodScheduled` condition, `FailedScheduling`/`Scheduled` events in `kubectl describe`),
//! binding them once a node that fits appears.

use std::collections::BTreeMap;
use std::time::Duration;

use k3rs_e2e::fake_nodes::{add_ready_node, keep_leases, set_node_ready, NodeSpec};
use k3rs_e2e::wait::eventually;
use k3rs_e2e::{ok, K3rs};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use kube::Client;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

async fn create_pod(client: &Client, name: &str, labels: Value, spec: Value) {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "app", "image": "registry.k8s.io/pause:3.10"}]);
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }))
    .unwrap();
    Api::<Pod>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
}

/// A single-container pod requesting `cpu`.
fn requesting(cpu: &str) -> Value {
    json!({"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": cpu}}}]})
}

async fn node_of(client: &Client, name: &str) -> Option<String> {
    let pod = Api::<Pod>::namespaced(client.clone(), "default")
        .get(name)
        .await
        .ok()?;
    pod.spec?.node_name.filter(|n| !n.is_empty())
}

async fn wait_bound(client: &Client, name: &str) -> String {
    eventually(WAIT, &format!("pod {name} bound"), || node_of(client, name)).await
}

/// The pod's `PodScheduled=False` message once the scheduler has written it.
async fn wait_unschedulable(client: &Client, name: &str) -> String {
    eventually(
        WAIT,
        &format!("pod {name} marked unschedulable"),
        || async {
            let pod = Api::<Pod>::namespaced(client.clone(), "default")
                .get(name)
                .await
                .ok()?;
            let condition = pod
                .status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "PodScheduled")?;
            (condition.status == "False" && condition.reason.as_deref() == Some("Unschedulable"))
                .then_some(condition.message.unwrap_or_default())
        },
    )
    .await
}

/// Add ready nodes and keep their leases fresh for the rest of the test.
async fn add_nodes(client: &Client, specs: &[NodeSpec]) -> tokio::task::JoinHandle<()> {
    for spec in specs {
        add_ready_node(client, spec).await;
    }
    let names = specs.iter().map(|s| s.name.clone()).collect();
    keep_leases(client.clone(), names, Duration::from_secs(5))
}

fn gpu_taint() -> Value {
    json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
}

#[tokio::test]
async fn placement_honours_selectors_affinity_taints_resources_and_ports() {
    let k = K3rs::start();
    let client = k.client().await;
    let leases = add_nodes(
        &client,
        &[
            NodeSpec::new("n1").labels(json!({"disk": "ssd", "zone": "a"})),
            NodeSpec::new("n2")
                .labels(json!({"zone": "a"}))
                .taints(gpu_taint()),
            NodeSpec::new("n3")
                .labels(json!({"zone": "b"}))
                .resources("1", "2Gi", 3),
        ],
    )
    .await;

    create_pod(
        &client,
        "ssd",
        json!({}),
        json!({"nodeSelector": {"disk": "ssd"}}),
    )
    .await;
    create_pod(
        &client,
        "pinned",
        json!({}),
        json!({
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}}},
        }),
    )
    .await;
    // 2 CPUs: n3 has 1, n2 is tainted.
    create_pod(&client, "big", json!({}), requesting("2")).await;
    // Zone b only, by a required expression.
    let mut zone_b = requesting("100m");
    zone_b["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}]}}});
    create_pod(&client, "zone-b", json!({}), zone_b).await;

    assert_eq!(wait_bound(&client, "ssd").await, "n1");
    assert_eq!(wait_bound(&client, "pinned").await, "n2");
    assert_eq!(wait_bound(&client, "big").await, "n1");
    assert_eq!(wait_bound(&client, "zone-b").await, "n3");

    // One host port per node: three pods (tolerating the taint) take all three nodes and
    // a fourth fits nowhere.
    let port_pod = json!({
        "tolerations": [{"key": "dedicated", "operator": "Exists"}],
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
            "ports": [{"containerPort": 80, "hostPort": 9000}]}],
    });
    for i in 0..3 {
        create_pod(&client, &format!("port-{i}"), json!({}), port_pod.clone()).await;
    }
    let mut used = Vec::new();
    for i in 0..3 {
        used.push(wait_bound(&client, &format!("port-{i}")).await);
    }
    used.sort();
    assert_eq!(used, ["n1", "n2", "n3"]);
    create_pod(&client, "port-3", json!({}), port_pod).await;
    assert_eq!(
        wait_unschedulable(&client, "port-3").await,
        "0/3 nodes are available: 3 node(s) didn't have free ports for the requested pod ports. \
         preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
    // Freeing a port lets it in.
    let freed = node_of(&client, "port-1").await.unwrap();
    Api::<Pod>::namespaced(client.clone(), "default")
        .delete("port-1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert_eq!(wait_bound(&client, "port-3").await, freed);

    // A pod for another scheduler is left alone.
    create_pod(
        &client,
        "other",
        json!({}),
        json!({"schedulerName": "my-scheduler"}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(node_of(&client, "other").await, None);
    leases.abort();
}

#[tokio::test]
async fn unschedulable_pod_is_reported_then_bound_when_a_node_fits() {
    let k = K3rs::start();
    let client = k.client().await;
    let mut leases = vec![
        add_nodes(
            &client,
            &[NodeSpec::new("n1"), NodeSpec::new("n2").taints(gpu_taint())],
        )
        .await,
    ];

    create_pod(&client, "huge", json!({}), requesting("10")).await;
    let message = wait_unschedulable(&client, "huge").await;
    assert_eq!(
        message,
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}. \
         preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, \
         1 Preemption is not helpful for scheduling."
    );
    let described = eventually(WAIT, "FailedScheduling in describe", || async {
        let out = ok(k.kubectl(&["describe", "pod", "huge"]));
        (out.contains("FailedScheduling") && out.contains("0/2 nodes are available")).then_some(out)
    })
    .await;
    assert!(described.contains("default-scheduler"), "{described}");
    assert!(described.contains("Warning"), "{described}");

    // A node big enough arrives: the waiting pod is bound to it.
    leases.push(add_nodes(&client, &[NodeSpec::new("n3").resources("16", "32Gi", 110)]).await);
    assert_eq!(wait_bound(&client, "huge").await, "n3");
    let described = eventually(WAIT, "Scheduled in describe", || async {
        let out = ok(k.kubectl(&["describe", "pod", "huge"]));
        out.contains("Successfully assigned default/huge to n3")
            .then_some(out)
    })
    .await;
    assert!(described.contains("Scheduled"), "{described}");
    let pod = Api::<Pod>::namespaced(client.clone(), "default")
        .get("huge")
        .await
        .unwrap();
    let scheduled = pod
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap();
    assert_eq!(scheduled.status, "True");

    // A node that is not Ready takes nothing, however empty and large it is.
    let down = NodeSpec::new("down").resources("64", "256Gi", 110);
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "down", "labels": {"kubernetes.io/hostname": "down"}},
    }))
    .unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    set_node_ready(&client, "down", &down, false).await;
    for i in 0..6 {
        create_pod(&client, &format!("small-{i}"), json!({}), requesting("10m")).await;
    }
    for i in 0..6 {
        assert_ne!(wait_bound(&client, &format!("small-{i}")).await, "down");
    }
    for lease in leases {
        lease.abort();
    }
}

#[tokio::test]
async fn replicas_spread_and_anti_affinity_keeps_pods_apart() {
    let k = K3rs::start();
    let client = k.client().await;
    let leases = add_nodes(
        &client,
        &[
            NodeSpec::new("n1"),
            NodeSpec::new("n2"),
            NodeSpec::new("n3"),
        ],
    )
    .await;

    // Six replicas of one owner. The owner is a ConfigMap, an object no workload
    // controller acts on, so the pods stay exactly as created.
    let owner = Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let owner_ref = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
        "uid": owner.metadata.uid.unwrap(), "controller": true}]);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for i in 0..6 {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("web-{i}"), "labels": {"app": "web"}, "ownerReferences": owner_ref},
            "spec": requesting("100m"),
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..6 {
        *per_node
            .entry(wait_bound(&client, &format!("web-{i}")).await)
            .or_default() += 1;
    }
    assert_eq!(
        per_node,
        BTreeMap::from([("n1".into(), 2), ("n2".into(), 2), ("n3".into(), 2)])
    );

    // Required anti-affinity by hostname: one db per node, a fourth waits.
    let db = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    for i in 0..4 {
        create_pod(
            &client,
            &format!("db-{i}"),
            json!({"app": "db"}),
            db.clone(),
        )
        .await;
    }
    let (db_nodes, waiting) = eventually(WAIT, "three db pods bound, one waiting", || async {
        let mut db_nodes = BTreeMap::new();
        let mut waiting = None;
        for i in 0..4 {
            match node_of(&client, &format!("db-{i}")).await {
                Some(node) => {
                    db_nodes.insert(node, i);
                }
                None => waiting = Some(i),
            }
        }
        (db_nodes.len() == 3 && waiting.is_some()).then_some((db_nodes, waiting))
    })
    .await;
    let waiting = format!("db-{}", waiting.unwrap());
    assert_eq!(
        wait_unschedulable(&client, &waiting).await,
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. \
         preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
    // Removing one db frees its node for the waiting one.
    let (freed_node, freed) = db_nodes
        .iter()
        .next()
        .map(|(n, i)| (n.clone(), *i))
        .unwrap();
    pods.delete(
        &format!("db-{freed}"),
        &DeleteParams::default().grace_period(0),
    )
    .await
    .unwrap();
    eventually(WAIT, "pods gone", || async {
        pods.get_opt(&format!("db-{freed}"))
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(wait_bound(&client, &waiting).await, freed_node);
    leases.abort();
}
