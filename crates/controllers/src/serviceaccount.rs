//! Namespace supplies, as upstream's service-account and root-CA publisher controllers:
//! every namespace that is not terminating gets the `default` ServiceAccount and the
//! `kube-root-ca.crt` ConfigMap (the CA bundle pods use to trust the API server). Both
//! are recreated when deleted, and the ConfigMap's content is put back when edited.
//!
//! Only those two objects are watched (by name, across namespaces), never every
//! ServiceAccount or ConfigMap of the cluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{debug, warn};

use crate::context::{Context, RETRY_AFTER_ERROR};
use crate::error::{is_conflict, KubeContext};
use crate::{Error, Result};

pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
const ROOT_CA_KEY: &str = "ca.crt";
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
/// Upstream's wording, so `kubectl describe configmap kube-root-ca.crt` reads the same.
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

struct Supplies {
    client: Client,
    ca_pem: String,
    accounts: Store<ServiceAccount>,
    config_maps: Store<ConfigMap>,
}

/// The ConfigMap every namespace should hold.
fn root_ca_config_map(ca_pem: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(ROOT_CA_CONFIG_MAP.into()),
            annotations: Some(BTreeMap::from([(
                DESCRIPTION_ANNOTATION.to_string(),
                DESCRIPTION.to_string(),
            )])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            ROOT_CA_KEY.to_string(),
            ca_pem.to_string(),
        )])),
        ..Default::default()
    }
}

/// The repaired ConfigMap when `existing` was edited, as upstream does it: the data is
/// exactly the CA bundle again and the description is present (other metadata stays).
fn repaired_root_ca(existing: &ConfigMap, ca_pem: &str) -> Option<ConfigMap> {
    let want = BTreeMap::from([(ROOT_CA_KEY.to_string(), ca_pem.to_string())]);
    let described = existing
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
        .is_some_and(|d| !d.is_empty());
    if existing.data.as_ref() == Some(&want) && described {
        return None;
    }
    let mut fixed = existing.clone();
    fixed.data = Some(want);
    fixed
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into());
    Some(fixed)
}

fn terminating(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
}

/// Create `obj` unless it exists; a 409 means someone (or an earlier pass) got there first.
async fn create_missing<K>(api: Api<K>, obj: &K, what: &str) -> Result<()>
where
    K: Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => {
            debug!(what, "created");
            Ok(())
        }
        Err(err) if is_conflict(&err) => Ok(()),
        Err(err) => Err(err).context(format!("creating {what}")),
    }
}

async fn reconcile(ns: Arc<Namespace>, supplies: Arc<Supplies>) -> Result<Action> {
    if terminating(&ns) {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let account = ObjectRef::new(DEFAULT_SERVICE_ACCOUNT).within(&name);
    if supplies.accounts.get(&account).is_none() {
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(DEFAULT_SERVICE_ACCOUNT.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let api = Api::namespaced(supplies.client.clone(), &name);
        create_missing(api, &sa, &format!("serviceaccount {name}/default")).await?;
    }
    let api: Api<ConfigMap> = Api::namespaced(supplies.client.clone(), &name);
    let what = format!("configmap {name}/{ROOT_CA_CONFIG_MAP}");
    let config_map = ObjectRef::new(ROOT_CA_CONFIG_MAP).within(&name);
    match supplies.config_maps.get(&config_map) {
        None => create_missing(api, &root_ca_config_map(&supplies.ca_pem), &what).await?,
        Some(existing) => {
            if let Some(fixed) = repaired_root_ca(&existing, &supplies.ca_pem) {
                // The cached resourceVersion makes this a compare-and-swap: a conflict
                // means a newer version is on its way and will be looked at again.
                api.replace(ROOT_CA_CONFIG_MAP, &PostParams::default(), &fixed)
                    .await
                    .context(format!("restoring {what}"))?;
            }
        }
    }
    Ok(Action::await_change())
}

fn error_policy(ns: Arc<Namespace>, err: &Error, _: Arc<Supplies>) -> Action {
    warn!(namespace = %ns.name_any(), error = %err, "namespace supplies: retrying");
    Action::requeue(RETRY_AFTER_ERROR)
}

/// A reflected watch of the objects named `name` in every namespace.
fn named_everywhere<K>(
    client: &Client,
    name: &str,
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()>
        + reflector::Lookup<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let stream = watcher(Api::<K>::all(client.clone()), config)
        .default_backoff()
        .reflect(writer)
        .touched_objects();
    (store, stream)
}

/// Which namespace an object belongs to, as the namespace's reference.
fn its_namespace<K: Resource>(obj: K) -> Option<ObjectRef<Namespace>> {
    obj.meta().namespace.as_deref().map(ObjectRef::new)
}

pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let client = ctx.client.clone();
    let (accounts, account_events) =
        named_everywhere::<ServiceAccount>(&client, DEFAULT_SERVICE_ACCOUNT);
    let (config_maps, config_map_events) =
        named_everywhere::<ConfigMap>(&client, ROOT_CA_CONFIG_MAP);
    let supplies = Arc::new(Supplies {
        client: client.clone(),
        ca_pem: ctx.server_ca_pem.clone(),
        accounts,
        config_maps,
    });
    Controller::new(Api::<Namespace>::all(client), watcher::Config::default())
        .watches_stream(account_events, its_namespace)
        .watches_stream(config_map_events, its_namespace)
        .run(reconcile, error_policy, supplies)
        .for_each(|result| async move {
            if let Err(err) = result {
                debug!(error = %err, "namespace supplies controller");
            }
        })
        .await;
    Err(Error::Invalid(
        "the namespace supplies controller stopped".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_config_map_carries_the_bundle_and_description() {
        let cm = root_ca_config_map("PEM");
        assert_eq!(cm.metadata.name.as_deref(), Some("kube-root-ca.crt"));
        assert_eq!(cm.data.as_ref().unwrap()["ca.crt"], "PEM");
        assert!(
            cm.metadata.annotations.as_ref().unwrap()["kubernetes.io/description"]
                .starts_with("Contains a CA bundle")
        );
        assert_eq!(repaired_root_ca(&cm, "PEM"), None);
    }

    #[test]
    fn an_edited_config_map_is_put_back() {
        let mut cm = root_ca_config_map("PEM");
        cm.metadata.resource_version = Some("7".into());
        cm.metadata.labels = Some(BTreeMap::from([("keep".into(), "me".into())]));
        cm.data.as_mut().unwrap().insert("extra".into(), "x".into());
        let fixed = repaired_root_ca(&cm, "PEM").unwrap();
        assert_eq!(
            fixed.data.unwrap(),
            BTreeMap::from([("ca.crt".to_string(), "PEM".to_string())])
        );
        assert_eq!(fixed.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(fixed.metadata.labels.unwrap()["keep"], "me");

        let mut stale = root_ca_config_map("OLD");
        stale.metadata.annotations = None;
        let fixed = repaired_root_ca(&stale, "NEW").unwrap();
        assert_eq!(fixed.data.unwrap()["ca.crt"], "NEW");
        assert!(fixed
            .metadata
            .annotations
            .unwrap()
            .contains_key("kubernetes.io/description"));
    }

    #[test]
    fn terminating_namespaces_are_left_alone() {
        let mut ns = Namespace::default();
        assert!(!terminating(&ns));
        ns.status = Some(k8s_openapi::api::core::v1::NamespaceStatus {
            phase: Some("Terminating".into()),
            ..Default::default()
        });
        assert!(terminating(&ns));
    }
}
