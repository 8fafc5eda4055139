//! The namespace controller: empties a Terminating namespace and then finalizes it.
//!
//! For a namespace with a deletionTimestamp whose `spec.finalizers` still holds
//! `kubernetes`, every namespaced resource the cluster serves (built-ins and custom
//! resources, found by discovery) is deleted, by deletecollection where served. Objects
//! with finalizers are only marked by the API server; the namespace waits for them,
//! reporting what remains in its status conditions ([`conditions`]). Once nothing is
//! left, `kubernetes` is removed through the `namespaces/{name}/finalize` subresource and
//! the API server deletes the namespace.

mod conditions;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{
    DeleteParams, DynamicObject, ListParams, PartialObjectMeta, Patch, PatchParams, PostParams,
};
use kube::discovery::verbs;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::context::{Context, RETRY_AFTER_ERROR};
use crate::error::{is_conflict, is_not_found, KubeContext};
use crate::garbage_collector::discovery::{self, Discovered, Resource};
use crate::{Error, Result};

use self::conditions::Pass;

/// The finalizer this controller owns in `spec.finalizers`.
const FINALIZER: &str = "kubernetes";
/// How soon a namespace still holding content is looked at again.
const CONTENT_RETRY: Duration = Duration::from_secs(2);
/// How long one discovery is reused across passes.
const DISCOVERY_TTL: Duration = Duration::from_secs(10);
/// Resources emptied at the same time.
const PARALLEL_DELETES: usize = 8;

/// What every reconcile of the namespace controller shares: the client and the last
/// discovery of the resources to empty.
struct NamespaceController {
    client: Client,
    discovery: Mutex<Option<(Instant, Arc<Discovered>)>>,
}

pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let state = Arc::new(NamespaceController {
        client: ctx.client.clone(),
        discovery: Mutex::new(None),
    });
    Controller::new(
        Api::<Namespace>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .run(reconcile, error_policy, state)
    .for_each(|_| async {})
    .await;
    Ok(())
}

fn error_policy(ns: Arc<Namespace>, err: &Error, _: Arc<NamespaceController>) -> Action {
    warn!(namespace = %ns.name_any(), error = %err, "namespace deletion failed; retrying");
    Action::requeue(RETRY_AFTER_ERROR)
}

async fn reconcile(ns: Arc<Namespace>, state: Arc<NamespaceController>) -> Result<Action> {
    if ns.metadata.deletion_timestamp.is_none() || !has_finalizer(&ns) {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let pass = empty(&state, &name).await;
    state.report(&ns, &pass).await?;
    if !pass.is_complete() {
        return Ok(Action::requeue(CONTENT_RETRY));
    }
    state.finalize(&ns).await?;
    info!(namespace = %name, "namespace finalized");
    Ok(Action::await_change())
}

fn has_finalizer(ns: &Namespace) -> bool {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
}

/// One pass: delete everything in namespace `ns`, then count what is left.
async fn empty(state: &NamespaceController, ns: &str) -> Pass {
    let mut pass = Pass::default();
    let found = match state.discover().await {
        Ok(found) => found,
        Err(err) => {
            pass.discovery_failures.push(err.to_string());
            return pass;
        }
    };
    pass.discovery_failures.clone_from(&found.failures);
    let deletable: Vec<Arc<Resource>> = found
        .resources
        .iter()
        .filter(|r| r.namespaced && r.supports(verbs::DELETE) && r.supports(verbs::LIST))
        .cloned()
        .collect();
    let results: Vec<_> = futures::stream::iter(deletable)
        .map(|r| empty_resource(state.client.clone(), r, ns.to_string()))
        .buffer_unordered(PARALLEL_DELETES)
        .collect()
        .await;
    for (resource, result) in results {
        match result {
            Ok(left) => {
                if !left.is_empty() {
                    pass.remaining.insert(resource.clone(), left.len());
                }
                for finalizer in left
                    .iter()
                    .flat_map(|o| o.metadata.finalizers.iter().flatten())
                {
                    *pass.finalizers.entry(finalizer.clone()).or_default() += 1;
                }
            }
            Err(err) => pass.deletion_failures.push(format!("{resource}: {err}")),
        }
    }
    pass.deletion_failures.sort();
    pass
}

/// Delete every object of `resource` in `ns`; returns the resource's name and the
/// objects still there afterwards (marked for deletion, waiting on finalizers).
async fn empty_resource(
    client: Client,
    resource: Arc<Resource>,
    ns: String,
) -> (
    String,
    Result<Vec<PartialObjectMeta<DynamicObject>>, kube::Error>,
) {
    let name = resource.qualified_name();
    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &resource.ar);
    let result = async {
        if resource.supports(verbs::DELETE_COLLECTION) {
            api.delete_collection(&DeleteParams::background(), &ListParams::default())
                .await?;
        } else {
            for obj in api.list_metadata(&ListParams::default()).await? {
                match api
                    .delete(&obj.name_any(), &DeleteParams::background())
                    .await
                {
                    Ok(_) => {}
                    Err(err) if is_not_found(&err) => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(api.list_metadata(&ListParams::default()).await?.items)
    }
    .await;
    (name, result)
}

impl NamespaceController {
    async fn discover(&self) -> Result<Arc<Discovered>, kube::Error> {
        if let Some((at, found)) = &*self.discovery.lock().expect("discovery lock") {
            if at.elapsed() < DISCOVERY_TTL {
                return Ok(found.clone());
            }
        }
        let found = Arc::new(discovery::discover(&self.client).await?);
        if found.failures.is_empty() {
            *self.discovery.lock().expect("discovery lock") = Some((Instant::now(), found.clone()));
        }
        Ok(found)
    }

    /// Write the conditions of `pass` into the namespace's status when they changed.
    async fn report(&self, ns: &Namespace, pass: &Pass) -> Result<()> {
        let existing = ns
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let wanted = conditions::updated(&existing, pass, jiff::Timestamp::now());
        if wanted == existing {
            return Ok(());
        }
        let name = ns.name_any();
        let api = Api::<Namespace>::all(self.client.clone());
        let patch = json!({ "status": { "conditions": wanted } });
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(err).context(format!("updating status of namespace {name}")),
        }
    }

    /// Remove `kubernetes` from `spec.finalizers` through the `finalize` subresource.
    async fn finalize(&self, ns: &Namespace) -> Result<()> {
        let name = ns.name_any();
        let mut finalized = ns.clone();
        if let Some(spec) = finalized.spec.as_mut() {
            if let Some(list) = spec.finalizers.as_mut() {
                list.retain(|f| f != FINALIZER);
            }
        }
        let api = Api::<Namespace>::all(self.client.clone());
        let pp = PostParams::default();
        match api
            .replace_subresource::<Namespace>("finalize", &name, &pp, &finalized)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) if is_conflict(&err) => {
                Err(err).context(format!("finalizing namespace {name} (changed meanwhile)"))
            }
            Err(err) => Err(err).context(format!("finalizing namespace {name}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceSpec;

    #[test]
    fn only_namespaces_holding_our_finalizer_are_ours() {
        let mut ns = Namespace::default();
        assert!(!has_finalizer(&ns));
        ns.spec = Some(NamespaceSpec {
            finalizers: Some(vec!["example.com/other".into()]),
        });
        assert!(!has_finalizer(&ns));
        ns.spec = Some(NamespaceSpec {
            finalizers: Some(vec![FINALIZER.into()]),
        });
        assert!(has_finalizer(&ns));
    }
}
