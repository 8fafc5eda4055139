//! DaemonSets and StatefulSets against a real `k3rs server`, with fake nodes playing the
//! kubelet's part: placement over nodes (taints, nodeSelector, new and deleted pods),
//! ordered and parallel StatefulSet pods with their claims, scale down, rolling updates
//! with ControllerRevisions, and `kubectl rollout status|history|undo`.

// Test tasks need no span: spawning them bare is fine.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k3rs_e2e::fake_nodes::{
    add_ready_node, keep_pods_ready, reap_terminating_pods, renew_lease, set_node_ready,
    set_pod_running, NodeSpec,
};
use k3rs_e2e::wait::eventually;
use k3rs_e2e::{ok, K3rs};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams};
use kube::Client;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

async fn pods(client: &Client, selector: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap()
}

fn image(pod: &Pod) -> String {
    pod.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

fn label<'a>(pod: &'a Pod, key: &str) -> &'a str {
    pod.metadata.labels.as_ref().unwrap()[key].as_str()
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The node a daemon pod is pinned to by its required node affinity.
fn pinned_node(pod: &Pod) -> String {
    let terms = &pod
        .spec
        .as_ref()
        .unwrap()
        .affinity
        .as_ref()
        .expect("daemon pod has an affinity")
        .node_affinity
        .as_ref()
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()
        .node_selector_terms;
    assert_eq!(terms.len(), 1);
    let field = &terms[0].match_fields.as_ref().unwrap()[0];
    assert_eq!(
        (field.key.as_str(), field.operator.as_str()),
        ("metadata.name", "In")
    );
    field.values.as_ref().unwrap()[0].clone()
}

/// Live (not terminating) pods matching `selector`, by the node they are pinned to.
async fn daemon_pods_by_node(client: &Client, selector: &str) -> Vec<(String, Pod)> {
    let mut live: Vec<(String, Pod)> = pods(client, selector)
        .await
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| (pinned_node(&p), p))
        .collect();
    live.sort_by(|a, b| a.0.cmp(&b.0));
    live
}

async fn revisions(client: &Client, selector: &str) -> Vec<(i64, String)> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), "default");
    let mut list: Vec<(i64, String)> = api
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| (r.revision, r.metadata.name.unwrap()))
        .collect();
    list.sort();
    list
}

/// `add_ready_node`, retrying the kubelet's status write: the API server answers a PATCH
/// racing with the node IPAM controller's podCIDR write with 409 instead of retrying it.
async fn add_node(client: &Client, spec: NodeSpec) {
    let (c, s) = (client.clone(), spec.clone());
    if tokio::spawn(async move { add_ready_node(&c, &s).await })
        .await
        .is_ok()
    {
        return;
    }
    eventually(WAIT, "node status written", || {
        let (c, s) = (client.clone(), spec.clone());
        async move {
            tokio::spawn(async move {
                set_node_ready(&c, &s.name, &s, true).await;
                renew_lease(&c, &s.name).await;
            })
            .await
            .ok()
        }
    })
    .await;
}

const DAEMONSET: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: "agent:1"}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_places_replaces_and_rolls_out() {
    let k = K3rs::start();
    let client = k.client().await;
    for node in ["n1", "n2"] {
        add_node(&client, NodeSpec::new(node)).await;
    }
    let tainted = NodeSpec::new("n3")
        .taints(json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]));
    add_node(&client, tainted).await;
    let _reaper = reap_terminating_pods(client.clone(), Duration::from_millis(200));
    let _kubelet = keep_pods_ready(
        client.clone(),
        "default",
        "app=agent",
        Duration::from_millis(200),
    );
    let file = k.write_file("ds.yaml", DAEMONSET);
    ok(k.kubectl(&["apply", "-f", &file]));

    // One pod per untainted node, pinned there, with the daemon labels and tolerations.
    let placed = eventually(WAIT, "daemon pods on n1 and n2", || async {
        let live = daemon_pods_by_node(&client, "app=agent").await;
        let nodes: Vec<&str> = live.iter().map(|(n, _)| n.as_str()).collect();
        (nodes == ["n1", "n2"]).then_some(live)
    })
    .await;
    let pod = &placed[0].1;
    assert_eq!(label(pod, "pod-template-generation"), "1");
    let hash = label(pod, "controller-revision-hash").to_string();
    let tolerations: BTreeSet<String> = pod
        .spec
        .as_ref()
        .unwrap()
        .tolerations
        .iter()
        .flatten()
        .filter_map(|t| t.key.clone())
        .collect();
    for key in [
        "not-ready",
        "unreachable",
        "disk-pressure",
        "memory-pressure",
        "pid-pressure",
        "unschedulable",
    ] {
        assert!(
            tolerations.contains(&format!("node.kubernetes.io/{key}")),
            "{key} in {tolerations:?}"
        );
    }
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("DaemonSet", Some(true))
    );
    assert_eq!(
        revisions(&client, "app=agent").await,
        vec![(1, format!("agent-{hash}"))]
    );

    // A new node gets a pod; a deleted pod is replaced.
    add_node(&client, NodeSpec::new("n4")).await;
    let live = eventually(WAIT, "a daemon pod on n4", || async {
        let live = daemon_pods_by_node(&client, "app=agent").await;
        (live.len() == 3 && live[2].0 == "n4").then_some(live)
    })
    .await;
    let doomed = name(&live[0].1);
    ok(k.kubectl(&["delete", "pod", &doomed, "--wait=false"]));
    eventually(WAIT, "a replacement pod on n1", || async {
        let live = daemon_pods_by_node(&client, "app=agent").await;
        let on_n1: Vec<String> = live
            .iter()
            .filter(|(n, _)| n == "n1")
            .map(|(_, p)| name(p))
            .collect();
        (on_n1.len() == 1 && on_n1[0] != doomed).then_some(())
    })
    .await;
    ok(k.kubectl(&["rollout", "status", "daemonset/agent", "--timeout=60s"]));
    let ds: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    let status = ds.get("agent").await.unwrap().status.unwrap();
    assert_eq!(
        (
            status.desired_number_scheduled,
            status.current_number_scheduled,
            status.number_ready
        ),
        (3, 3, 3)
    );
    assert_eq!(
        (status.number_misscheduled, status.updated_number_scheduled),
        (0, Some(3))
    );

    // A rolling update replaces pods one node at a time (maxUnavailable 1): at every
    // moment at least two of the three nodes have a ready pod.
    let watching = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn({
        let (client, watching) = (client.clone(), watching.clone());
        async move {
            let mut fewest = usize::MAX;
            while watching.load(Ordering::SeqCst) {
                let live = daemon_pods_by_node(&client, "app=agent").await;
                let ready: BTreeSet<String> = live
                    .iter()
                    .filter(|(_, p)| is_ready(p))
                    .map(|(n, _)| n.clone())
                    .collect();
                fewest = fewest.min(ready.len());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            fewest
        }
    });
    ok(k.kubectl(&["set", "image", "daemonset/agent", "agent=agent:2"]));
    ok(k.kubectl(&["rollout", "status", "daemonset/agent", "--timeout=60s"]));
    watching.store(false, Ordering::SeqCst);
    assert!(
        sampler.await.unwrap() >= 2,
        "more than one node lost its pod at once"
    );
    let live = daemon_pods_by_node(&client, "app=agent").await;
    assert_eq!(live.len(), 3);
    assert!(live
        .iter()
        .all(|(_, p)| image(p) == "agent:2" && label(p, "pod-template-generation") == "2"));
    let revs = revisions(&client, "app=agent").await;
    assert_eq!(revs.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2]);
    let events = ok(k.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=agent",
    ]));
    assert!(
        events.contains("SuccessfulCreate") && events.contains("SuccessfulDelete"),
        "{events}"
    );

    // kubectl reads the history from the ControllerRevisions and rolls back through them.
    let history = ok(k.kubectl(&["rollout", "history", "daemonset/agent"]));
    let listed: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(listed, ["1", "2"], "{history}");
    ok(k.kubectl(&["rollout", "undo", "daemonset/agent"]));
    ok(k.kubectl(&["rollout", "status", "daemonset/agent", "--timeout=60s"]));
    eventually(WAIT, "pods back on agent:1", || async {
        let live = daemon_pods_by_node(&client, "app=agent").await;
        (live.len() == 3 && live.iter().all(|(_, p)| image(p) == "agent:1")).then_some(())
    })
    .await;
    let revs = revisions(&client, "app=agent").await;
    assert_eq!(
        revs,
        vec![(2, revs[0].1.clone()), (3, format!("agent-{hash}"))]
    );

    // A nodeSelector keeps pods only on matching nodes.
    ok(k.kubectl(&["label", "node", "n2", "role=edge"]));
    ok(k.kubectl(&[
        "patch",
        "daemonset",
        "agent",
        "-p",
        r#"{"spec":{"template":{"spec":{"nodeSelector":{"role":"edge"}}}}}"#,
    ]));
    eventually(WAIT, "a single pod on n2", || async {
        let live = daemon_pods_by_node(&client, "app=agent").await;
        (live.len() == 1 && live[0].0 == "n2").then_some(())
    })
    .await;
    eventually(WAIT, "status for one node", || async {
        let status = ds.get("agent").await.unwrap().status?;
        (status.desired_number_scheduled == 1 && status.number_misscheduled == 0).then_some(())
    })
    .await;
}

const STATEFULSET: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: nginx
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: "nginx:1"}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"#;

async fn set_status(client: &Client, name: &str) -> k8s_openapi::api::apps::v1::StatefulSetStatus {
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    api.get(name).await.unwrap().status.unwrap_or_default()
}

async fn pod_names(client: &Client, selector: &str) -> Vec<String> {
    let mut names: Vec<String> = pods(client, selector).await.iter().map(name).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_orders_scales_and_rolls_out() {
    let k = K3rs::start();
    let client = k.client().await;
    add_node(&client, NodeSpec::new("n1")).await;
    let _reaper = reap_terminating_pods(client.clone(), Duration::from_millis(200));
    let file = k.write_file("sts.yaml", STATEFULSET);
    ok(k.kubectl(&["apply", "-f", &file]));

    // OrderedReady: web-1 only once web-0 is Running and Ready, and so on; each pod's
    // claim exists before it.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    for ordinal in 0..3 {
        let pod_name = format!("web-{ordinal}");
        let pod = eventually(WAIT, &pod_name, || async {
            pods(&client, "app=web")
                .await
                .into_iter()
                .find(|p| name(p) == pod_name)
        })
        .await;
        assert!(claims.get(&format!("www-web-{ordinal}")).await.is_ok());
        assert_eq!(label(&pod, "statefulset.kubernetes.io/pod-name"), pod_name);
        assert_eq!(
            label(&pod, "apps.kubernetes.io/pod-index"),
            ordinal.to_string()
        );
        assert!(label(&pod, "controller-revision-hash").starts_with("web-"));
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some(pod_name.as_str()));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "www")
            .unwrap();
        assert_eq!(
            volume.persistent_volume_claim.as_ref().unwrap().claim_name,
            format!("www-web-{ordinal}")
        );
        // The next pod waits for this one (checked again after a pause, since waiting is
        // what is being tested).
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(pods(&client, "app=web").await.len(), ordinal + 1);
        set_pod_running(
            &client,
            "default",
            &pod_name,
            true,
            &format!("10.42.0.{}", ordinal + 10),
        )
        .await;
    }
    ok(k.kubectl(&["rollout", "status", "statefulset/web", "--timeout=60s"]));
    let status = set_status(&client, "web").await;
    assert_eq!(
        (
            status.replicas,
            status.ready_replicas,
            status.current_replicas
        ),
        (3, Some(3), Some(3))
    );
    assert_eq!(status.current_revision, status.update_revision);
    let events = ok(k.kubectl(&["describe", "statefulset", "web"]));
    assert!(
        events.contains("create Pod web-0 in StatefulSet web successful"),
        "{events}"
    );

    // A rolling update with partition 2 replaces only web-2.
    let _kubelet = keep_pods_ready(
        client.clone(),
        "default",
        "app=web",
        Duration::from_millis(200),
    );
    let old_revision = status.current_revision.clone().unwrap();
    ok(k.kubectl(&["patch", "statefulset", "web", "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}},"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:2"}]}}}}"#]));
    ok(k.kubectl(&["rollout", "status", "statefulset/web", "--timeout=60s"]));
    let status = eventually(WAIT, "web-2 updated and ready", || async {
        let status = set_status(&client, "web").await;
        (status.updated_replicas == Some(1) && status.ready_replicas == Some(3)).then_some(status)
    })
    .await;
    let update_revision = status.update_revision.clone().unwrap();
    assert_ne!(update_revision, old_revision);
    assert_eq!(
        status.current_revision.as_deref(),
        Some(old_revision.as_str())
    );
    let by_name = |pods: &[Pod], n: &str| pods.iter().find(|p| name(p) == n).cloned().unwrap();
    let now = pods(&client, "app=web").await;
    assert_eq!(image(&by_name(&now, "web-2")), "nginx:2");
    assert_eq!(
        label(&by_name(&now, "web-2"), "controller-revision-hash"),
        update_revision
    );
    assert_eq!(image(&by_name(&now, "web-1")), "nginx:1");
    assert_eq!(image(&by_name(&now, "web-0")), "nginx:1");

    // Partition 0 finishes the rollout; the update revision becomes current.
    ok(k.kubectl(&[
        "patch",
        "statefulset",
        "web",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ]));
    ok(k.kubectl(&["rollout", "status", "statefulset/web", "--timeout=60s"]));
    let now = pods(&client, "app=web").await;
    assert!(now.iter().all(|p| image(p) == "nginx:2"));
    let status = set_status(&client, "web").await;
    assert_eq!(
        status.current_revision.as_deref(),
        Some(update_revision.as_str())
    );
    assert_eq!(status.updated_replicas, Some(3));
    let revs = revisions(&client, "app=web").await;
    assert_eq!(revs, vec![(1, old_revision), (2, update_revision)]);
    let history = ok(k.kubectl(&["rollout", "history", "statefulset/web"]));
    let listed: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(listed, ["1", "2"], "{history}");

    // Scaling down removes the highest ordinal first; the claims stay (Retain).
    let watching = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn({
        let (client, watching) = (client.clone(), watching.clone());
        async move {
            let mut seen = Vec::new();
            while watching.load(Ordering::SeqCst) {
                let names = pod_names(&client, "app=web").await;
                if seen.last() != Some(&names) {
                    seen.push(names);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        }
    });
    ok(k.kubectl(&["scale", "statefulset", "web", "--replicas=1"]));
    eventually(WAIT, "only web-0 left", || async {
        (pod_names(&client, "app=web").await == ["web-0"]).then_some(())
    })
    .await;
    watching.store(false, Ordering::SeqCst);
    for names in sampler.await.unwrap() {
        let expected: Vec<String> = (0..names.len()).map(|i| format!("web-{i}")).collect();
        assert_eq!(names, expected, "pods during scale down");
    }
    for ordinal in 0..3 {
        assert!(claims.get(&format!("www-web-{ordinal}")).await.is_ok());
    }

    // Parallel creates every pod at once, ready or not.
    let parallel = STATEFULSET
        .replace("name: web}", "name: par}")
        .replace("app: web", "app: par")
        .replace(
            "serviceName: nginx",
            "serviceName: nginx\n  podManagementPolicy: Parallel",
        );
    let file = k.write_file("par.yaml", &parallel);
    ok(k.kubectl(&["apply", "-f", &file]));
    eventually(WAIT, "three parallel pods", || async {
        let now = pods(&client, "app=par").await;
        (now.len() == 3 && now.iter().all(|p| !is_ready(p))).then_some(())
    })
    .await;
    assert_eq!(
        pod_names(&client, "app=par").await,
        ["par-0", "par-1", "par-2"]
    );
}
