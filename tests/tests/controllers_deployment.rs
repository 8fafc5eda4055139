//! The Deployment and ReplicaSet controllers inside `k3rs server`, driven through
//! kubectl as a user would: create, scale, rolling update within maxSurge and
//! maxUnavailable, history, undo, restart, revisionHistoryLimit, Recreate, pause and
//! resume, pod replacement, and a ReplicaSet adopting and releasing pods.
//!
//! No kubelet runs and no node is needed: the tests mark pods Running and Ready the way a
//! kubelet would (whether or not a scheduler bound them), and finish the deletion of
//! terminating pods as a kubelet does once their containers stopped.

use std::collections::BTreeSet;
use std::time::Duration;

use k3rs_e2e::fake_nodes::now;
use k3rs_e2e::wait::eventually;
use k3rs_e2e::{ok, K3rs};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

async fn pods(client: &Client, selector: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
}

fn active(pods: &[Pod]) -> Vec<&Pod> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded") | Some("Failed")
            )
        })
        .collect()
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn image(pod: &Pod) -> String {
    pod.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

/// Report every active, not yet ready pod matching `selector` as running and ready, as
/// its kubelet would. Pods deleted meanwhile are skipped.
async fn make_ready(client: &Client, selector: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    for pod in pods(client, selector).await {
        if is_ready(&pod) || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let now = now();
        let ip = format!("10.42.0.{}", rand_octet(&pod.name_any()));
        let status = json!({"status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "startTime": now,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
            ],
        }});
        let _ = api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await;
    }
}

fn rand_octet(name: &str) -> u8 {
    (name
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 250
        + 2) as u8
}

/// Finish deleting terminating pods, as the kubelet does once their containers stop.
async fn finish_terminating(client: &Client, selector: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    for pod in pods(client, selector).await {
        if pod.metadata.deletion_timestamp.is_some() {
            let _ = api
                .delete(&pod.name_any(), &DeleteParams::default().grace_period(0))
                .await;
        }
    }
}

/// The deployment's ReplicaSets, oldest first.
async fn replica_sets(client: &Client, selector: &str) -> Vec<ReplicaSet> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let mut sets = api
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items;
    sets.sort_by_key(|rs| rs.metadata.creation_timestamp.clone().map(|t| t.0));
    sets
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().unwrap().replicas.unwrap_or(0)
}

fn annotation(meta: &kube::api::ObjectMeta, key: &str) -> Option<String> {
    meta.annotations.as_ref()?.get(key).cloned()
}

/// Mark pods ready until `kubectl rollout status` could report success, then check
/// that it does.
async fn roll_out(server: &K3rs, client: &Client, name: &str, selector: &str) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    eventually(WAIT, &format!("deployment {name} rolled out"), || async {
        make_ready(client, selector).await;
        finish_terminating(client, selector).await;
        let d = deployments.get(name).await.unwrap();
        let status = d.status.clone()?;
        let want = d.spec.as_ref()?.replicas?;
        let done = status.observed_generation >= d.metadata.generation
            && status.updated_replicas.unwrap_or(0) == want
            && status.replicas.unwrap_or(0) == want
            && status.available_replicas.unwrap_or(0) == want;
        done.then_some(())
    })
    .await;
    let out = ok(server.kubectl(&[
        "rollout",
        "status",
        &format!("deployment/{name}"),
        "--timeout=60s",
    ]));
    assert!(
        out.contains(&format!("deployment \"{name}\" successfully rolled out")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_history_undo_restart_and_scaling() {
    let server = K3rs::start();
    let client = server.client().await;
    let sel = "app=web";

    ok(server.kubectl(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1",
        "--replicas=3",
    ]));
    let (rs, created) = eventually(WAIT, "a replica set with 3 pods", || async {
        let sets = replica_sets(&client, sel).await;
        let rs = sets.first()?.clone();
        let pods = pods(&client, sel).await;
        (pods.len() == 3).then_some((rs, pods))
    })
    .await;
    let d = server.stored("deployment", "web");
    let hash = rs.labels()["pod-template-hash"].clone();
    assert_eq!(rs.name_any(), format!("web-{hash}"));
    let owner = &rs.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Deployment", "web", Some(true))
    );
    assert_eq!(owner.uid, d["metadata"]["uid"].as_str().unwrap());
    assert_eq!(
        rs.spec
            .as_ref()
            .unwrap()
            .selector
            .match_labels
            .as_ref()
            .unwrap()["pod-template-hash"],
        hash
    );
    assert_eq!(
        annotation(&rs.metadata, "deployment.kubernetes.io/revision").as_deref(),
        Some("1")
    );
    assert_eq!(
        annotation(&rs.metadata, "deployment.kubernetes.io/desired-replicas").as_deref(),
        Some("3")
    );
    assert_eq!(
        annotation(&rs.metadata, "deployment.kubernetes.io/max-replicas").as_deref(),
        Some("4")
    );
    for pod in &created {
        assert!(
            pod.name_any().starts_with(&format!("web-{hash}-")),
            "{}",
            pod.name_any()
        );
        assert_eq!(pod.labels()["pod-template-hash"], hash);
        let owner = &pod.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("ReplicaSet", rs.uid().unwrap().as_str())
        );
    }

    roll_out(&server, &client, "web", sel).await;
    let table = ok(server.kubectl(&["get", "deploy", "web"]));
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["web", "3/3", "3", "3"], "{table}");
    let d = server.stored("deployment", "web");
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let conditions = d["status"]["conditions"].as_array().unwrap();
    let reason = |t: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == t)
            .map(|c| c["reason"].clone())
    };
    assert_eq!(reason("Available").unwrap(), "MinimumReplicasAvailable");
    assert_eq!(reason("Progressing").unwrap(), "NewReplicaSetAvailable");

    // Scale up and down through the scale subresource.
    ok(server.kubectl(&["scale", "deployment", "web", "--replicas=5"]));
    roll_out(&server, &client, "web", sel).await;
    assert_eq!(active(&pods(&client, sel).await).len(), 5);
    ok(server.kubectl(&["scale", "deployment", "web", "--replicas=2"]));
    eventually(WAIT, "scaled down to 2 pods", || async {
        finish_terminating(&client, sel).await;
        (active(&pods(&client, sel).await).len() == 2).then_some(())
    })
    .await;
    roll_out(&server, &client, "web", sel).await;

    // A deleted pod is replaced.
    let victim = active(&pods(&client, sel).await)[0].name_any();
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.delete(&victim, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually(WAIT, "the deleted pod replaced", || async {
        let pods = pods(&client, sel).await;
        let names: BTreeSet<String> = active(&pods).iter().map(|p| p.name_any()).collect();
        (names.len() == 2 && !names.contains(&victim)).then_some(())
    })
    .await;
    roll_out(&server, &client, "web", sel).await;

    // Rolling update with maxSurge 1 / maxUnavailable 0: never fewer than 2 ready pods,
    // never more than 3 pods wanted.
    ok(server.kubectl(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"strategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}}}}"#,
    ]));
    ok(server.kubectl(&[
        "annotate",
        "deployment",
        "web",
        "kubernetes.io/change-cause=to nginx 2",
    ]));
    ok(server.kubectl(&["set", "image", "deployment/web", "nginx=nginx:2"]));
    let steps = std::sync::Mutex::new(BTreeSet::new());
    eventually(WAIT, "rolling update to nginx:2", || async {
        let sets = replica_sets(&client, sel).await;
        let wanted: i32 = sets.iter().map(spec_replicas).sum();
        assert!(
            wanted <= 3,
            "more than replicas + maxSurge wanted: {wanted}"
        );
        let pods = pods(&client, sel).await;
        let ready = active(&pods).into_iter().filter(|p| is_ready(p)).count();
        assert!(
            ready >= 2,
            "fewer than replicas - maxUnavailable ready: {ready}"
        );
        steps
            .lock()
            .unwrap()
            .insert(sets.iter().map(spec_replicas).collect::<Vec<_>>());
        make_ready(&client, sel).await;
        finish_terminating(&client, sel).await;
        let live = active(&pods);
        let done = sets.len() == 2
            && spec_replicas(&sets[0]) == 0
            && live.len() == 2
            && live.iter().all(|p| image(p) == "nginx:2" && is_ready(p));
        done.then_some(())
    })
    .await;
    let steps = steps.into_inner().unwrap();
    assert!(steps.len() >= 3, "the rollout went in steps: {steps:?}");
    roll_out(&server, &client, "web", sel).await;
    let sets = replica_sets(&client, sel).await;
    assert_eq!(
        annotation(&sets[0].metadata, "deployment.kubernetes.io/revision").as_deref(),
        Some("1")
    );
    assert_eq!(
        annotation(&sets[1].metadata, "deployment.kubernetes.io/revision").as_deref(),
        Some("2")
    );
    assert_eq!(
        annotation(&sets[1].metadata, "kubernetes.io/change-cause").as_deref(),
        Some("to nginx 2")
    );
    let d = server.stored("deployment", "web");
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let history = ok(server.kubectl(&["rollout", "history", "deployment/web"]));
    assert!(history.lines().any(|l| l.starts_with("1 ")), "{history}");
    assert!(
        history
            .lines()
            .any(|l| l.starts_with("2 ") && l.contains("to nginx 2")),
        "{history}"
    );

    // Undo to revision 1: the first ReplicaSet comes back as revision 3.
    ok(server.kubectl(&["rollout", "undo", "deployment/web", "--to-revision=1"]));
    roll_out(&server, &client, "web", sel).await;
    let sets = replica_sets(&client, sel).await;
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0].name_any(), rs.name_any());
    assert_eq!(spec_replicas(&sets[0]), 2);
    assert_eq!(spec_replicas(&sets[1]), 0);
    assert_eq!(
        annotation(&sets[0].metadata, "deployment.kubernetes.io/revision").as_deref(),
        Some("3")
    );
    assert!(active(&pods(&client, sel).await)
        .iter()
        .all(|p| image(p) == "nginx:1"));

    // Restart: a third ReplicaSet with the same image.
    ok(server.kubectl(&["rollout", "restart", "deployment/web"]));
    eventually(WAIT, "a ReplicaSet for the restart", || async {
        (replica_sets(&client, sel).await.len() == 3).then_some(())
    })
    .await;
    roll_out(&server, &client, "web", sel).await;
    let sets = replica_sets(&client, sel).await;
    assert_eq!(
        annotation(&sets[2].metadata, "deployment.kubernetes.io/revision").as_deref(),
        Some("4")
    );
    assert_eq!(spec_replicas(&sets[2]), 2);

    let describe = ok(server.kubectl(&["describe", "deployment", "web"]));
    assert!(describe.contains("ScalingReplicaSet"), "{describe}");
    assert!(
        describe.contains(&format!(
            "Scaled up replica set {} from 0 to 3",
            rs.name_any()
        )),
        "{describe}"
    );

    // Only one old ReplicaSet is kept.
    ok(server.kubectl(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"revisionHistoryLimit":1}}"#,
    ]));
    eventually(WAIT, "old ReplicaSets pruned", || async {
        (replica_sets(&client, sel).await.len() == 2).then_some(())
    })
    .await;
    let left: Vec<String> = replica_sets(&client, sel)
        .await
        .iter()
        .map(|rs| rs.name_any())
        .collect();
    // The oldest revision (2, nginx:2) went; revision 3 (the first ReplicaSet) stays.
    assert!(left.contains(&rs.name_any()), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_and_pause() {
    let server = K3rs::start();
    let client = server.client().await;
    let sel = "app=db";
    let manifest = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: db}
spec:
  replicas: 2
  strategy: {type: Recreate}
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: "postgres:15"}]}
"#;
    ok(server.kubectl_stdin(&["apply", "-f", "-"], manifest));
    roll_out(&server, &client, "db", sel).await;

    ok(server.kubectl(&["set", "image", "deployment/db", "db=postgres:16"]));
    eventually(WAIT, "recreated on postgres:16", || async {
        let pods = pods(&client, sel).await;
        let new = pods.iter().filter(|p| image(p) == "postgres:16").count();
        let old = pods.iter().filter(|p| image(p) == "postgres:15").count();
        assert!(
            new == 0 || old == 0,
            "new pods started while {old} old ones remain"
        );
        finish_terminating(&client, sel).await;
        make_ready(&client, sel).await;
        (new == 2 && old == 0).then_some(())
    })
    .await;
    roll_out(&server, &client, "db", sel).await;

    // Paused: a template change is recorded but not rolled out.
    ok(server.kubectl(&["rollout", "pause", "deployment/db"]));
    ok(server.kubectl(&["set", "image", "deployment/db", "db=postgres:17"]));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    eventually(WAIT, "the paused change observed", || async {
        let d = deployments.get("db").await.unwrap();
        let status = d.status?;
        let paused = status
            .conditions?
            .iter()
            .any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("DeploymentPaused"));
        (status.observed_generation >= d.metadata.generation && paused).then_some(())
    })
    .await;
    assert_eq!(replica_sets(&client, sel).await.len(), 2);
    assert!(pods(&client, sel)
        .await
        .iter()
        .all(|p| image(p) == "postgres:16"));
    ok(server.kubectl(&["rollout", "resume", "deployment/db"]));
    roll_out(&server, &client, "db", sel).await;
    let live = pods(&client, sel).await;
    assert!(
        active(&live).iter().all(|p| image(p) == "postgres:17"),
        "{live:?}"
    );
    assert_eq!(replica_sets(&client, sel).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_set_adopts_and_releases_pods() {
    let server = K3rs::start();
    let client = server.client().await;
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "stray", "labels": {"app": "cache"}},
        "spec": {"containers": [{"name": "c", "image": "redis:7"}]},
    }))
    .unwrap();
    pods_api
        .create(&PostParams::default(), &orphan)
        .await
        .unwrap();
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "cache"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "cache"}},
            "template": {"metadata": {"labels": {"app": "cache"}},
                "spec": {"containers": [{"name": "c", "image": "redis:7"}]}},
        },
    }))
    .unwrap();
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let rs = sets.create(&PostParams::default(), &rs).await.unwrap();
    let uid = rs.uid().unwrap();

    eventually(WAIT, "the stray pod adopted and one pod added", || async {
        let stray = pods_api.get("stray").await.ok()?;
        let owned = stray
            .owner_references()
            .iter()
            .any(|r| r.uid == uid && r.controller == Some(true));
        let pods = pods(&client, "app=cache").await;
        (owned && active(&pods).len() == 2).then_some(())
    })
    .await;
    make_ready(&client, "app=cache").await;
    eventually(WAIT, "replica set status", || async {
        let status = sets.get("cache").await.unwrap().status?;
        (status.replicas == 2
            && status.ready_replicas == Some(2)
            && status.available_replicas == Some(2)
            && status.fully_labeled_replicas == Some(2))
        .then_some(())
    })
    .await;
    let describe = ok(server.kubectl(&["describe", "rs", "cache"]));
    assert!(
        describe.contains("SuccessfulCreate") && describe.contains("Created pod: cache-"),
        "{describe}"
    );

    // Relabelled, the pod is released and replaced.
    ok(server.kubectl(&["label", "pod", "stray", "app=other", "--overwrite"]));
    eventually(WAIT, "the stray pod released and replaced", || async {
        let stray = pods_api.get("stray").await.ok()?;
        let released = stray.owner_references().is_empty();
        let pods = pods(&client, "app=cache").await;
        let counted = sets.get("cache").await.unwrap().status?.replicas;
        (released && active(&pods).len() == 2 && counted == 2).then_some(())
    })
    .await;
    let table = ok(server.kubectl(&["get", "rs", "cache"]));
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["cache", "2", "2"], "{table}");
}
