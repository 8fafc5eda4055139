//! The garbage collector and the namespace controller end to end, with ConfigMaps, Secrets,
//! unbound Pods and custom resources as owners and dependents (no workload controller
//! involved): background, foreground and orphan propagation, a dependent with two owners,
//! a reference to an owner that never existed, a custom resource as owner; and
//! `kubectl delete namespace` emptying a namespace (custom resources included), waiting
//! for an object with a finalizer, and finishing once it is released.

use std::time::Duration;

use k3rs_e2e::wait::eventually;
use k3rs_e2e::{fails, ok, K3rs};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Client, Resource, ResourceExt};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
/// Custom resources may wait for the collector's next discovery.
const WAIT_DISCOVERY: Duration = Duration::from_secs(60);

const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.gc.example.com
spec:
  group: gc.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

fn widgets(client: &Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("gc.example.com", "v1", "Widget");
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

async fn create_widget(client: &Client, ns: &str, name: &str) -> DynamicObject {
    let gvk = GroupVersionKind::gvk("gc.example.com", "v1", "Widget");
    let mut widget = DynamicObject::new(name, &ApiResource::from_gvk(&gvk));
    widget.data = json!({"spec": {"size": 1}});
    widgets(client, ns)
        .create(&PostParams::default(), &widget)
        .await
        .unwrap()
}

fn reference<K: Resource<DynamicType = ()>>(owner: &K, block: bool) -> OwnerReference {
    reference_to(
        &K::api_version(&()),
        &K::kind(&()),
        &owner.name_any(),
        &owner.uid().unwrap(),
        block,
    )
}

fn reference_to(
    api_version: &str,
    kind: &str,
    name: &str,
    uid: &str,
    block: bool,
) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
        block_owner_deletion: Some(block),
        controller: None,
    }
}

async fn configmap(
    client: &Client,
    ns: &str,
    name: &str,
    owners: Vec<OwnerReference>,
    finalizers: &[&str],
) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    cm.metadata.owner_references = Some(owners).filter(|o| !o.is_empty());
    cm.metadata.finalizers = Some(finalizers.iter().map(|f| f.to_string()).collect())
        .filter(|f: &Vec<String>| !f.is_empty());
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap()
}

async fn secret(client: &Client, ns: &str, name: &str, owners: Vec<OwnerReference>) -> Secret {
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.into());
    secret.metadata.owner_references = Some(owners);
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap()
}

async fn pod(client: &Client, ns: &str, name: &str, owners: Vec<OwnerReference>) -> Pod {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": owners},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap()
}

async fn get_cm(client: &Client, ns: &str, name: &str) -> Option<ConfigMap> {
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()
}

async fn gone<K>(api: &Api<K>, name: &str) -> Option<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.unwrap().is_none().then_some(())
}

async fn drop_finalizers(client: &Client, ns: &str, name: &str) {
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
}

fn owner_uids(cm: &ConfigMap) -> Vec<String> {
    cm.metadata
        .owner_references
        .iter()
        .flatten()
        .map(|r| r.uid.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_collector_follows_owner_references() {
    let k = K3rs::start();
    let client = k.client().await;
    let ns = "default";
    let cms = Api::<ConfigMap>::namespaced(client.clone(), ns);
    let secrets = Api::<Secret>::namespaced(client.clone(), ns);
    let pods = Api::<Pod>::namespaced(client.clone(), ns);

    // Background: every kind of dependent goes once its owner is deleted.
    let owner = configmap(&client, ns, "bg-owner", vec![], &[]).await;
    configmap(&client, ns, "bg-cm", vec![reference(&owner, true)], &[]).await;
    secret(&client, ns, "bg-secret", vec![reference(&owner, false)]).await;
    pod(&client, ns, "bg-pod", vec![reference(&owner, false)]).await;
    // Two owners: losing one keeps the object, minus the reference to the gone owner.
    let second = configmap(&client, ns, "second-owner", vec![], &[]).await;
    configmap(
        &client,
        ns,
        "shared",
        vec![reference(&owner, false), reference(&second, false)],
        &[],
    )
    .await;
    // An owner that never existed: the dependent is collected.
    configmap(
        &client,
        ns,
        "dangling",
        vec![reference_to(
            "v1",
            "ConfigMap",
            "nobody",
            "5b9c1f0e-0000-4000-8000-00000000dead",
            false,
        )],
        &[],
    )
    .await;
    ok(k.kubectl(&["delete", "configmap", "bg-owner"]));
    eventually(WAIT, "background dependents deleted", || async {
        gone(&cms, "bg-cm").await?;
        gone(&secrets, "bg-secret").await?;
        gone(&pods, "bg-pod").await?;
        gone(&cms, "dangling").await
    })
    .await;
    let second_uid = second.uid().unwrap();
    eventually(WAIT, "reference to the deleted owner removed", || async {
        let shared = get_cm(&client, ns, "shared")
            .await
            .expect("shared survives");
        (owner_uids(&shared) == [second_uid.clone()]).then_some(())
    })
    .await;

    // Foreground: dependents go first; the owner stays (deleting) while a blocking
    // dependent is held by a finalizer, and goes once it is released.
    let owner = configmap(&client, ns, "fg-owner", vec![], &[]).await;
    configmap(&client, ns, "fg-free", vec![reference(&owner, true)], &[]).await;
    configmap(
        &client,
        ns,
        "fg-held",
        vec![reference(&owner, true)],
        &["example.com/hold"],
    )
    .await;
    ok(k.kubectl(&[
        "delete",
        "configmap",
        "fg-owner",
        "--cascade=foreground",
        "--wait=false",
    ]));
    eventually(WAIT, "foreground dependents deleted first", || async {
        gone(&cms, "fg-free").await?;
        let held = get_cm(&client, ns, "fg-held").await?;
        held.metadata.deletion_timestamp.as_ref()?;
        Some(())
    })
    .await;
    // Nothing releases the held dependent yet: the owner must still be there, deleting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = get_cm(&client, ns, "fg-owner")
        .await
        .expect("owner waits for its dependents");
    assert!(waiting.metadata.deletion_timestamp.is_some());
    assert!(
        waiting
            .finalizers()
            .iter()
            .any(|f| f == "foregroundDeletion"),
        "{:?}",
        waiting.metadata
    );
    drop_finalizers(&client, ns, "fg-held").await;
    eventually(
        WAIT,
        "foreground owner deleted after its dependents",
        || async {
            gone(&cms, "fg-held").await?;
            gone(&cms, "fg-owner").await
        },
    )
    .await;

    // Orphan: kubectl waits for the owner to go; the dependent stays, unowned.
    let owner = configmap(&client, ns, "orphan-owner", vec![], &[]).await;
    configmap(
        &client,
        ns,
        "orphan-dep",
        vec![reference(&owner, true)],
        &[],
    )
    .await;
    ok(k.kubectl(&[
        "delete",
        "configmap",
        "orphan-owner",
        "--cascade=orphan",
        "--timeout=60s",
    ]));
    fails(k.kubectl(&["get", "configmap", "orphan-owner"]));
    let orphan = get_cm(&client, ns, "orphan-dep")
        .await
        .expect("orphan survives");
    assert!(owner_uids(&orphan).is_empty(), "{:?}", orphan.metadata);

    // A custom resource as owner (its kind appears after the server started).
    ok(k.kubectl_stdin(&["apply", "-f", "-"], WIDGET_CRD));
    let widget = create_widget(&client, ns, "w1").await;
    let widget_ref = reference_to(
        "gc.example.com/v1",
        "Widget",
        "w1",
        &widget.uid().unwrap(),
        true,
    );
    configmap(&client, ns, "widget-part", vec![widget_ref], &[]).await;
    // Give the collector a moment to see the dependent alive with a live owner.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        get_cm(&client, ns, "widget-part").await.is_some(),
        "collected while its owner lives"
    );
    ok(k.kubectl(&["delete", "widgets.gc.example.com", "w1"]));
    eventually(
        WAIT_DISCOVERY,
        "dependent of a custom resource deleted",
        || async { gone(&cms, "widget-part").await },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_namespace_empties_it_first() {
    let k = K3rs::start();
    let client = k.client().await;
    ok(k.kubectl_stdin(&["apply", "-f", "-"], WIDGET_CRD));

    // A namespace with ordinary content and a custom resource: kubectl returns once it is gone.
    ok(k.kubectl(&["create", "namespace", "quick"]));
    configmap(&client, "quick", "settings", vec![], &[]).await;
    secret(&client, "quick", "token", vec![]).await;
    pod(&client, "quick", "worker", vec![]).await;
    create_widget(&client, "quick", "gizmo").await;
    ok(k.kubectl(&["delete", "namespace", "quick", "--timeout=60s"]));
    let out = fails(k.kubectl(&["get", "namespace", "quick"]));
    assert!(
        out.contains("NotFound") || out.contains("not found"),
        "{out}"
    );

    // A namespace held by an object with a finalizer: everything else goes, the
    // namespace stays Terminating until the finalizer is removed.
    ok(k.kubectl(&["create", "namespace", "held"]));
    configmap(&client, "held", "plain", vec![], &[]).await;
    configmap(&client, "held", "keeper", vec![], &["example.com/hold"]).await;
    create_widget(&client, "held", "gadget").await;
    ok(k.kubectl(&["delete", "namespace", "held", "--wait=false"]));
    let namespaces = Api::<Namespace>::all(client.clone());
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "held");
    eventually(
        WAIT,
        "content deleted except the finalized object",
        || async {
            gone(&cms, "plain").await?;
            gone(&widgets(&client, "held"), "gadget").await?;
            get_cm(&client, "held", "keeper")
                .await?
                .metadata
                .deletion_timestamp?;
            Some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ns = namespaces
        .get("held")
        .await
        .expect("namespace waits for the finalizer");
    assert_eq!(
        ns.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Terminating")
    );
    drop_finalizers(&client, "held", "keeper").await;
    eventually(WAIT, "namespace gone", || async {
        gone(&namespaces, "held").await
    })
    .await;

    // The name is free again, and a new namespace starts empty.
    ok(k.kubectl(&["create", "namespace", "held"]));
    assert!(get_cm(&client, "held", "keeper").await.is_none());
}

/// Needs the API server to serve `namespaces/{name}/finalize` and to keep a Terminating
/// namespace through status writes (until then the controller does not write conditions).
#[tokio::test(flavor = "multi_thread")]

async fn terminating_namespace_reports_what_remains() {
    let k = K3rs::start();
    let client = k.client().await;
    ok(k.kubectl(&["create", "namespace", "blocked"]));
    configmap(&client, "blocked", "keeper", vec![], &["example.com/hold"]).await;
    ok(k.kubectl(&["delete", "namespace", "blocked", "--wait=false"]));
    let namespaces = Api::<Namespace>::all(client.clone());
    let conditions = eventually(WAIT, "conditions naming what remains", || async {
        let ns = namespaces.get_opt("blocked").await.unwrap()?;
        let conditions = serde_json::to_value(ns.status?.conditions?).unwrap();
        let find = |t: &str| -> Option<Value> {
            conditions
                .as_array()?
                .iter()
                .find(|c| c["type"] == t)
                .cloned()
        };
        let remaining = find("NamespaceContentRemaining")?;
        (remaining["status"] == "True").then_some(())?;
        Some((
            remaining,
            find("NamespaceFinalizersRemaining")?,
            find("NamespaceDeletionDiscoveryFailure")?,
        ))
    })
    .await;
    let (remaining, finalizers, discovery) = conditions;
    assert_eq!(remaining["reason"], "SomeResourcesRemain");
    assert_eq!(
        remaining["message"],
        "Some resources are remaining: configmaps. has 1 resource instances"
    );
    assert_eq!(finalizers["status"], "True");
    assert_eq!(finalizers["reason"], "SomeFinalizersRemain");
    assert_eq!(
        finalizers["message"],
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    );
    assert_eq!(discovery["status"], "False");
    assert_eq!(discovery["reason"], "ResourcesDiscovered");
    let described = ok(k.kubectl(&["describe", "namespace", "blocked"]));
    assert!(
        described.contains("NamespaceFinalizersRemaining"),
        "{described}"
    );
    drop_finalizers(&client, "blocked", "keeper").await;
    eventually(WAIT, "namespace gone", || async {
        gone(&namespaces, "blocked").await
    })
    .await;
}
