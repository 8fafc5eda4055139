//! The `kube` crate as a client of a real `k3rs server`: typed and dynamic APIs, selectors,
//! paging, optimistic concurrency, the three patch formats, `/status`, discovery and
//! finalizers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k3rs_e2e::wait::eventually;
use k3rs_e2e::K3rs;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::discovery::{Discovery, Scope};
use kube::Client;
use serde_json::json;

fn config_map(name: &str, labels: &[(&str, &str)], data: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "labels": labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        },
        "data": data.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
    }))
    .unwrap()
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [
                    {"name": "app", "image": "registry.example/app:1", "env": [{"name": "A", "value": "1"}]},
                    {"name": "sidecar", "image": "registry.example/sidecar:1"}
                ]}
            }
        }
    }))
    .unwrap()
}

/// Names of the listed objects, leaving out the `kube-root-ca.crt` ConfigMap that the
/// server publishes into every namespace.
fn names<K: kube::Resource>(items: &[K]) -> Vec<String> {
    items
        .iter()
        .map(|o| o.meta().name.clone().unwrap_or_default())
        .filter(|n| n != "kube-root-ca.crt")
        .collect()
}

fn api_error(err: kube::Error) -> Box<kube::core::Status> {
    match err {
        kube::Error::Api(status) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn create_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

#[tokio::test]
async fn typed_create_get_list_with_selectors_and_delete() {
    let server = K3rs::start();
    let client = server.client().await;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    create_namespace(&client, "e2e-kube").await;
    let ns = namespaces.get("e2e-kube").await.unwrap();
    assert_eq!(ns.metadata.name.as_deref(), Some("e2e-kube"));
    assert!(ns.metadata.uid.is_some());
    let all = namespaces.list(&ListParams::default()).await.unwrap();
    let all_names = names(&all.items);
    for expected in ["default", "kube-system", "e2e-kube"] {
        assert!(all_names.contains(&expected.to_string()), "{all_names:?}");
    }

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "e2e-kube");
    for (name, app) in [("web-1", "web"), ("web-2", "web"), ("db-1", "db")] {
        let created = cms
            .create(
                &PostParams::default(),
                &config_map(name, &[("app", app)], &[("k", name)]),
            )
            .await
            .unwrap();
        assert_eq!(created.metadata.namespace.as_deref(), Some("e2e-kube"));
        assert!(created.metadata.resource_version.is_some());
        assert!(created.metadata.creation_timestamp.is_some());
    }
    let got = cms.get("web-2").await.unwrap();
    assert_eq!(got.data.unwrap()["k"], "web-2");

    let web = cms
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(names(&web.items), ["web-1", "web-2"]);
    let not_web = cms
        .list(&ListParams::default().labels("app!=web"))
        .await
        .unwrap();
    assert_eq!(names(&not_web.items), ["db-1"]);
    let set = cms
        .list(&ListParams::default().labels("app in (db,nothing)"))
        .await
        .unwrap();
    assert_eq!(names(&set.items), ["db-1"]);
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=web-1"))
        .await
        .unwrap();
    assert_eq!(names(&by_name.items), ["web-1"]);
    let both = cms
        .list(
            &ListParams::default()
                .labels("app=web")
                .fields("metadata.name!=web-1"),
        )
        .await
        .unwrap();
    assert_eq!(names(&both.items), ["web-2"]);
    // A namespace field selector across all namespaces.
    let everywhere: Api<ConfigMap> = Api::all(client.clone());
    let in_ns = everywhere
        .list(&ListParams::default().fields("metadata.namespace=e2e-kube"))
        .await
        .unwrap();
    assert_eq!(names(&in_ns.items).len(), 3);

    cms.delete("db-1", &DeleteParams::default()).await.unwrap();
    let err = api_error(cms.get("db-1").await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    let left = cms.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&left.items), ["web-1", "web-2"]);

    // Creating the same name twice is a 409 AlreadyExists.
    let err = api_error(
        cms.create(&PostParams::default(), &config_map("web-1", &[], &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
}

#[tokio::test]
async fn paging_returns_every_object_exactly_once_from_one_snapshot() {
    let server = K3rs::start();
    let client = server.client().await;
    create_namespace(&client, "paging").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "paging");
    // Nine ConfigMaps of the test plus the published kube-root-ca.crt: five pages of two.
    let created: Vec<String> = (0..9).map(|i| format!("cm-{i:02}")).collect();
    let expected: BTreeSet<String> = created
        .iter()
        .cloned()
        .chain(["kube-root-ca.crt".to_string()])
        .collect();
    for name in &created {
        cms.create(
            &PostParams::default(),
            &config_map(name, &[("paged", "yes")], &[]),
        )
        .await
        .unwrap();
    }

    // The server publishes kube-root-ca.crt into new namespaces shortly after creation.
    eventually(
        Duration::from_secs(10),
        "kube-root-ca.crt in the namespace",
        || async { cms.get_opt("kube-root-ca.crt").await.unwrap() },
    )
    .await;

    for (params, expected) in [
        (ListParams::default().limit(2), expected.clone()),
        // With a selector the server must skip non-matching objects between pages.
        (
            ListParams::default().limit(2).labels("paged=yes"),
            created.iter().cloned().collect::<BTreeSet<String>>(),
        ),
    ] {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        let mut snapshot_rv = None;
        loop {
            let mut p = params.clone();
            if let Some(t) = &token {
                p = p.continue_token(t);
            }
            let page = cms.list(&p).await.unwrap();
            pages += 1;
            assert!(page.items.len() <= 2, "page of {}", page.items.len());
            seen.extend(page.items.iter().filter_map(|c| c.metadata.name.clone()));
            if pages == 1 {
                snapshot_rv = page.metadata.resource_version.clone();
                // Written after the first page: a consistent list must not show it.
                cms.create(
                    &PostParams::default(),
                    &config_map(&format!("late-{}", seen.len()), &[("paged", "yes")], &[]),
                )
                .await
                .unwrap();
            } else {
                assert_eq!(page.metadata.resource_version, snapshot_rv);
            }
            match page.metadata.continue_.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => break,
            }
            assert!(pages < 20, "paging does not end: {seen:?}");
        }
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "duplicates across pages: {seen:?}"
        );
        assert_eq!(unique, expected, "pages: {seen:?}");
        assert_eq!(pages, 5);
        // Clean up the late object so the next round sees the same set.
        for late in cms
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .filter(|n| n.starts_with("late-"))
        {
            cms.delete(&late, &DeleteParams::default()).await.unwrap();
        }
    }

    // A garbage continue token is a 400, not a full list.
    let err = api_error(
        cms.list(&ListParams::default().limit(2).continue_token("not-a-token"))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
}

#[tokio::test]
async fn replace_with_stale_resource_version_conflicts_and_patches_apply() {
    let server = K3rs::start();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = cms
        .create(
            &PostParams::default(),
            &config_map("cc", &[("a", "1")], &[("k1", "v1")]),
        )
        .await
        .unwrap();

    let mut fresh = created.clone();
    fresh
        .data
        .as_mut()
        .unwrap()
        .insert("k1".into(), "v1b".into());
    let replaced = cms
        .replace("cc", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );

    let mut stale = created.clone();
    stale
        .data
        .as_mut()
        .unwrap()
        .insert("k1".into(), "lost".into());
    let err = api_error(
        cms.replace("cc", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.reason.as_str()),
        (409, "Conflict"),
        "{err:?}"
    );
    assert!(
        err.message.contains("the object has been modified"),
        "{}",
        err.message
    );
    let now = cms.get("cc").await.unwrap();
    assert_eq!(now.data.as_ref().unwrap()["k1"], "v1b");
    assert_eq!(
        now.metadata.resource_version,
        replaced.metadata.resource_version
    );

    // Merge patch: adds a key, removes one with null, keeps the rest.
    let merged = cms
        .patch(
            "cc",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"data": {"k2": "v2"}, "metadata": {"labels": {"a": null, "b": "2"}}}),
            ),
        )
        .await
        .unwrap();
    let data = merged.data.clone().unwrap();
    assert_eq!(
        data,
        BTreeMap::from([("k1".into(), "v1b".into()), ("k2".into(), "v2".into())])
    );
    assert_eq!(
        merged.metadata.labels.clone().unwrap(),
        BTreeMap::from([("b".to_string(), "2".to_string())])
    );

    // JSON patch (RFC 6902) with a test op, sent raw: kube's `Patch::Json` needs a feature.
    let body = json!([
        {"op": "test", "path": "/data/k2", "value": "v2"},
        {"op": "replace", "path": "/data/k1", "value": "json"},
        {"op": "remove", "path": "/data/k2"}
    ]);
    let request = http::Request::patch("/api/v1/namespaces/default/configmaps/cc")
        .header("content-type", "application/json-patch+json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    let patched: ConfigMap = client.request(request).await.unwrap();
    assert_eq!(
        patched.data.clone().unwrap(),
        BTreeMap::from([("k1".into(), "json".into())])
    );
    // A failing `test` op changes nothing and is reported, not half-applied.
    let request = http::Request::patch("/api/v1/namespaces/default/configmaps/cc")
        .header("content-type", "application/json-patch+json")
        .body(
            serde_json::to_vec(&json!([
                {"op": "replace", "path": "/data/k1", "value": "half"},
                {"op": "test", "path": "/data/k1", "value": "nope"}
            ]))
            .unwrap(),
        )
        .unwrap();
    let err = api_error(client.request::<ConfigMap>(request).await.unwrap_err());
    assert_eq!(err.code, 422, "{err:?}");
    assert_eq!(cms.get("cc").await.unwrap().data.unwrap()["k1"], "json");

    // Strategic merge on a Deployment: containers merge by name.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let patched = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "registry.example/app:2", "env": [{"name": "B", "value": "2"}]}
            ]}}}})),
        )
        .await
        .unwrap();
    let containers = patched.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(names_of_containers(&containers), ["app", "sidecar"]);
    assert_eq!(
        containers[0].image.as_deref(),
        Some("registry.example/app:2")
    );
    let env: BTreeMap<String, Option<String>> = containers[0]
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.value))
        .collect();
    assert_eq!(
        env,
        BTreeMap::from([
            ("A".to_string(), Some("1".to_string())),
            ("B".to_string(), Some("2".to_string()))
        ]),
        "env merges by name"
    );
    assert_eq!(
        containers[1].image.as_deref(),
        Some("registry.example/sidecar:1")
    );
    assert_eq!(patched.metadata.generation, Some(2));

    // Delete returns the object; a second delete is 404.
    let gone = cms.delete("cc", &DeleteParams::default()).await.unwrap();
    assert!(gone.is_left(), "{gone:?}");
    let err = api_error(
        cms.delete("cc", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 404);
}

fn names_of_containers(containers: &[k8s_openapi::api::core::v1::Container]) -> Vec<&str> {
    containers.iter().map(|c| c.name.as_str()).collect()
}

#[tokio::test]
async fn status_subresource_changes_only_status() {
    // No controllers: the deployment controller would write the status this test checks.
    let server = K3rs::start_with(&["--disable-controller-manager"]);
    let client = server.client().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let created = deployments
        .create(&PostParams::default(), &deployment("st"))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    // replace_status with a changed spec: the spec change is ignored.
    let mut desired = created.clone();
    desired.spec.as_mut().unwrap().replicas = Some(7);
    desired.status =
        Some(serde_json::from_value(json!({"replicas": 3, "observedGeneration": 1})).unwrap());
    let after = deployments
        .replace_status("st", &PostParams::default(), &desired)
        .await
        .unwrap();
    assert_eq!(after.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(after.status.as_ref().unwrap().replicas, Some(3));
    assert_eq!(after.metadata.generation, Some(1));

    // patch_status likewise.
    let after = deployments
        .patch_status(
            "st",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 9}, "status": {"readyReplicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(after.spec.as_ref().unwrap().replicas, Some(1));
    let status = after.status.clone().unwrap();
    assert_eq!((status.replicas, status.ready_replicas), (Some(3), Some(2)));
    let stored = deployments.get("st").await.unwrap();
    assert_eq!(stored.spec.unwrap().replicas, Some(1));
    assert_eq!(stored.status.unwrap().ready_replicas, Some(2));

    // And the main resource ignores status.
    let after = deployments
        .patch(
            "st",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}, "status": {"replicas": 100}})),
        )
        .await
        .unwrap();
    assert_eq!(after.spec.as_ref().unwrap().replicas, Some(4));
    assert_eq!(after.status.as_ref().unwrap().replicas, Some(3));
    assert_eq!(after.metadata.generation, Some(2));
}

#[tokio::test]
async fn dynamic_api_and_discovery() {
    let server = K3rs::start();
    let client = server.client().await;

    let gvk = GroupVersionKind::gvk("", "v1", "ConfigMap");
    let resource = ApiResource::from_gvk(&gvk);
    let dynamic: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    let mut obj = DynamicObject::new("dyn", &resource).within("default");
    obj.data = json!({"data": {"x": "y"}});
    let created = dynamic.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(created.data["data"]["x"], "y");
    let listed = dynamic.list(&ListParams::default()).await.unwrap();
    assert!(
        listed
            .items
            .iter()
            .any(|o| o.metadata.name.as_deref() == Some("dyn") && o.data["data"]["x"] == "y"),
        "{listed:?}"
    );
    // The typed API sees the same object.
    let typed: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    assert_eq!(typed.get("dyn").await.unwrap().data.unwrap()["x"], "y");

    let deploy_gvk = GroupVersionKind::gvk("apps", "v1", "Deployment");
    let deploy_resource = ApiResource::from_gvk(&deploy_gvk);
    let dyn_deploys: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &deploy_resource);
    let mut d = DynamicObject::new("dyn-deploy", &deploy_resource);
    d.data = serde_json::to_value(deployment("dyn-deploy")).unwrap();
    d.data.as_object_mut().unwrap().remove("metadata");
    dyn_deploys
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let listed = dyn_deploys.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&listed.items), ["dyn-deploy"]);

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = discovery
        .resolve_gvk(&deploy_gvk)
        .expect("apps/v1 Deployment discovered");
    assert_eq!(ar.plural, "deployments");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(caps.supports_operation("watch"), "{caps:?}");
    assert!(
        caps.subresources
            .iter()
            .any(|(sub, _)| sub.plural == "status"),
        "{caps:?}"
    );
    let (pods, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Pod"))
        .expect("core v1 Pod discovered");
    assert_eq!(pods.plural, "pods");
    assert_eq!(caps.scope, Scope::Namespaced);
    let (_, ns_caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Namespace"))
        .expect("core v1 Namespace discovered");
    assert_eq!(ns_caps.scope, Scope::Cluster);
    assert!(discovery.has_group("apps"));
}

#[tokio::test]
async fn finalizer_keeps_object_until_removed() {
    let server = K3rs::start();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut cm = config_map("held", &[], &[("k", "v")]);
    cm.metadata.finalizers = Some(vec!["e2e.k3rs.io/hold".into()]);
    cms.create(&PostParams::default(), &cm).await.unwrap();

    let answer = cms.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = answer.left().expect("the marked object is returned");
    assert!(marked.metadata.deletion_timestamp.is_some());

    let still = cms.get("held").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some(), "{still:?}");
    assert_eq!(
        still.metadata.finalizers.as_deref(),
        Some(&["e2e.k3rs.io/hold".to_string()][..])
    );
    assert_eq!(still.data.unwrap()["k"], "v");
    // Deleting again changes nothing.
    cms.delete("held", &DeleteParams::default()).await.unwrap();
    let again = cms.get("held").await.unwrap();
    assert_eq!(
        again.metadata.resource_version,
        still.metadata.resource_version
    );
    // No new finalizers on a deleting object.
    let err = api_error(
        cms.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"finalizers": ["e2e.k3rs.io/hold", "e2e.k3rs.io/more"]}}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 403, "{err:?}");

    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let err = api_error(cms.get("held").await.unwrap_err());
    assert_eq!(err.code, 404);
    assert!(
        !names(&cms.list(&ListParams::default()).await.unwrap().items)
            .contains(&"held".to_string())
    );
}
