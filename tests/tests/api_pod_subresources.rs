//! `pods/binding` and `pods/eviction` against a real server: what the scheduler and
//! `kubectl drain` rely on.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, EvictParams, PostParams};
use serde_json::json;

use k3rs_e2e::{ok, K3rs};

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"schedulerName": "none", "containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap()
}

async fn bind(pods: &Api<Pod>, name: &str, node: &str) -> Result<(), kube::Error> {
    let binding = json!({"apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": name}, "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
    pods.create_subresource::<_, serde_json::Value>(
        "binding",
        name,
        &PostParams::default(),
        &binding,
    )
    .await
    .map(|_| ())
}

#[tokio::test]
async fn binding_assigns_a_pod_once() {
    let k = K3rs::start();
    let client = k.client().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(&PostParams::default(), &pod("p1"))
        .await
        .unwrap();
    bind(&pods, "p1", "n1").await.unwrap();
    let bound = pods.get("p1").await.unwrap();
    assert_eq!(bound.spec.unwrap().node_name.as_deref(), Some("n1"));
    let conditions = bound.status.unwrap().conditions.unwrap();
    assert!(conditions
        .iter()
        .any(|c| c.type_ == "PodScheduled" && c.status == "True"));
    match bind(&pods, "p1", "n2").await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 409);
            assert!(
                s.message.contains("already assigned to node \"n1\""),
                "{}",
                s.message
            );
        }
        other => panic!("second binding: {other:?}"),
    }
    match bind(&pods, "missing", "n1").await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        other => panic!("binding a missing pod: {other:?}"),
    }
    // Discovery lists both subresources, so RBAC rules and kubectl can name them.
    let resources = ok(k.kubectl(&["get", "--raw", "/api/v1"]));
    assert!(resources.contains("\"pods/binding\"") && resources.contains("\"pods/eviction\""));
}

#[tokio::test]
async fn eviction_deletes_unless_a_budget_forbids_it() {
    let k = K3rs::start();
    let client = k.client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("free"))
        .await
        .unwrap();
    pods.evict("free", &EvictParams::default()).await.unwrap();
    assert!(pods.get_opt("free").await.unwrap().is_none());

    pods.create(&PostParams::default(), &pod("guarded"))
        .await
        .unwrap();
    // A running pod selected by a budget that allows no disruption stays.
    k3rs_e2e::fake_nodes::set_pod_running(&client, "default", "guarded", true, "10.42.0.9").await;
    ok(k.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec:\n  minAvailable: 1\n  selector: {matchLabels: {app: web}}\n",
    ));
    // kubectl rather than kube-rs: kube-rs retries 429 answers with back-off for minutes.
    let refused = k3rs_e2e::fails(k.kubectl_stdin(
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/pods/guarded/eviction",
            "-f",
            "-",
        ],
        r#"{"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "guarded"}}"#,
    ));
    assert!(refused.contains("disruption budget"), "{refused}");
    assert!(pods.get_opt("guarded").await.unwrap().is_some());
}
