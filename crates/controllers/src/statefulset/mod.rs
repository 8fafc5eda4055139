//! The StatefulSet controller: pods with stable names `<set>-<ordinal>`, created (with
//! their claims) in order or in parallel, scaled down from the highest ordinal, updated
//! from the highest ordinal down to the partition (or only when deleted, for OnDelete),
//! with ControllerRevisions recording every template, and the status kubectl reads.
//!
//! Pods and their names are deterministic, so a stale informer can only make us repeat a
//! create (409, harmless) or a delete (guarded by a uid precondition); no expectations
//! are needed. Deleting the set's pods when it is deleted is the garbage collector's job.

mod identity;
mod plan;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::context::Recorder;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim, Pod, PodTemplateSpec};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, warn};

use crate::context::{publish, Context, RETRY_AFTER_ERROR};
use crate::controller_revision::{self as history, Current};
use crate::error::{is_conflict, is_not_found, KubeContext, Result};
use crate::pod_control::{is_controlled_by, slow_start_batch};
use plan::{Made, Revisions, Settings, Step};

/// What every reconcile of the StatefulSet controller shares: the term's context and the
/// ControllerRevision cache.
struct StatefulSetController {
    ctx: Arc<Context>,
    revisions: Store<ControllerRevision>,
}

pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let client = ctx.client.clone();
    let (revisions, writer) = reflector::store();
    let revision_events = watcher(
        Api::<ControllerRevision>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(writer)
    .touched_objects();
    let state = Arc::new(StatefulSetController {
        ctx: ctx.clone(),
        revisions,
    });
    Controller::new(Api::<StatefulSet>::all(client), watcher::Config::default())
        .owns_stream(ctx.pods.subscribe())
        .owns_stream(revision_events)
        .run(reconcile, error_policy, state)
        .for_each(|result| async move {
            if let Err(err) = result {
                debug!(error = %err, "statefulset reconcile failed");
            }
        })
        .await;
    Ok(())
}

fn error_policy(
    set: Arc<StatefulSet>,
    err: &crate::Error,
    _: Arc<StatefulSetController>,
) -> Action {
    warn!(statefulset = %set.name_any(), namespace = ?set.namespace(), error = %err, "syncing statefulset failed; retrying");
    Action::requeue(RETRY_AFTER_ERROR)
}

async fn reconcile(set: Arc<StatefulSet>, state: Arc<StatefulSetController>) -> Result<Action> {
    if set.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let (Some(namespace), Some(uid), Some(spec)) =
        (set.namespace(), set.metadata.uid.clone(), set.spec.as_ref())
    else {
        return Ok(Action::await_change());
    };
    let _ = state.revisions.wait_until_ready().await;
    let client = state.ctx.client.clone();
    let revision_api: Api<ControllerRevision> = Api::namespaced(client.clone(), &namespace);
    let owned = history::owned_revisions(&state.revisions, &namespace, &uid);
    let collision_count = set.status.as_ref().and_then(|s| s.collision_count);
    let update = history::ensure_current(
        &revision_api,
        &*set,
        &spec.template,
        &owned,
        collision_count,
    )
    .await?;
    // The current revision is the one the status names, while it still exists.
    let current = set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.as_deref())
        .and_then(|name| {
            owned
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(name))
        })
        .map(|r| (**r).clone())
        .unwrap_or_else(|| update.revision.clone());
    let current_name = current.metadata.name.clone().unwrap_or_default();
    let revisions = Revisions {
        current: &current_name,
        update: update.name(),
    };

    let pods: Vec<Arc<Pod>> = state
        .ctx
        .pods
        .store()
        .state()
        .into_iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(namespace.as_str())
                && is_controlled_by(&p.metadata, &uid)
        })
        .collect();
    let pod_refs: Vec<&Pod> = pods.iter().map(|p| &**p).collect();
    let set_name = set.name_any();
    let settings = settings(&set, &set_name);
    let steps = plan::plan(&settings, &pod_refs, revisions);
    if !steps.is_empty() {
        let templates = Templates {
            current: history::revision_template(&current).unwrap_or_else(|| spec.template.clone()),
            current_name: &current_name,
            update: &spec.template,
            update_name: update.name(),
        };
        state.apply(&set, &namespace, &templates, steps).await?;
    }

    // Keep the revisions pods still use, current and update, and the history limit.
    let mut live: HashSet<String> = pods
        .iter()
        .filter_map(|p| plan::revision_of(p).map(str::to_string))
        .collect();
    live.insert(current_name.clone());
    live.insert(update.name().to_string());
    let limit = spec.revision_history_limit.unwrap_or(10);
    history::prune(
        &revision_api,
        &history::revisions_to_prune(&owned, &live, limit),
    )
    .await?;

    let counts = plan::status(&settings, &pod_refs, revisions);
    write_status(&client, &set, &namespace, &counts, revisions, &update).await?;
    Ok(match plan::next_availability(&settings, &pod_refs) {
        Some(wait) => Action::requeue(Duration::from_secs(wait.unsigned_abs() + 1)),
        None => Action::requeue(Duration::from_secs(300)),
    })
}

fn settings<'a>(set: &StatefulSet, name: &'a str) -> Settings<'a> {
    let spec = set.spec.as_ref();
    let strategy = spec.and_then(|s| s.update_strategy.as_ref());
    Settings {
        name,
        replicas: spec.and_then(|s| s.replicas).unwrap_or(1).max(0),
        start: spec
            .and_then(|s| s.ordinals.as_ref())
            .and_then(|o| o.start)
            .unwrap_or(0)
            .max(0),
        parallel: spec.and_then(|s| s.pod_management_policy.as_deref()) == Some("Parallel"),
        rolling: strategy
            .and_then(|u| u.type_.as_deref())
            .is_none_or(|t| t == "RollingUpdate"),
        partition: strategy
            .and_then(|u| u.rolling_update.as_ref())
            .and_then(|r| r.partition)
            .unwrap_or(0),
        min_ready_seconds: spec.and_then(|s| s.min_ready_seconds).unwrap_or(0),
        now: jiff::Timestamp::now(),
    }
}

/// The templates of the current and update revisions, for new pods.
struct Templates<'a> {
    current: PodTemplateSpec,
    current_name: &'a str,
    update: &'a PodTemplateSpec,
    update_name: &'a str,
}

impl StatefulSetController {
    /// A fresh recorder for each event: a shared one folds every event with the same
    /// reason about one object into a single series that keeps the first message, which
    /// would hide which pods were created or deleted.
    fn recorder(&self) -> Recorder {
        self.ctx.recorder("statefulset-controller")
    }

    /// Deletions first, then creations (in slow-start batches).
    async fn apply(
        &self,
        set: &StatefulSet,
        namespace: &str,
        templates: &Templates<'_>,
        steps: Vec<Step>,
    ) -> Result<()> {
        let pods: Api<Pod> = Api::namespaced(self.ctx.client.clone(), namespace);
        let reference = set.object_ref(&());
        let set_name = set.name_any();
        let mut creates = Vec::new();
        let mut deletes = Vec::new();
        for step in steps {
            match step {
                Step::Create { ordinal, from } => creates.push((ordinal, from)),
                Step::Delete {
                    ordinal,
                    name,
                    uid,
                    condemned,
                } => deletes.push((ordinal, name, uid, condemned)),
            }
        }
        let deleted = futures::future::join_all(deletes.into_iter().map(
            |(ordinal, name, uid, condemned)| {
                let (pods, reference) = (&pods, &reference);
                async move {
                    self.delete_pod(pods, reference, set, &name, &uid).await?;
                    if condemned && identity::delete_claims_on_scale_down(set) {
                        self.delete_claims(set, namespace, ordinal).await?;
                    }
                    Ok::<_, crate::Error>(())
                }
            },
        ))
        .await;
        deleted.into_iter().collect::<Result<Vec<_>>>()?;

        let (_, error) = slow_start_batch(creates.len(), |i| {
            let (ordinal, from) = creates[i];
            let (template, revision) = match from {
                Made::Current => (&templates.current, templates.current_name),
                Made::Update => (templates.update, templates.update_name),
            };
            let pod = identity::stateful_pod(set, template, ordinal, revision);
            let (pods, reference, set_name) = (&pods, &reference, &set_name);
            async move {
                self.create_claims(set, namespace, reference, ordinal)
                    .await?;
                let name = identity::pod_name(set_name, ordinal);
                match pods.create(&PostParams::default(), &pod).await {
                    Ok(_) => {
                        let note =
                            format!("create Pod {name} in StatefulSet {set_name} successful");
                        publish(
                            &self.recorder(),
                            reference,
                            false,
                            "SuccessfulCreate",
                            "Create",
                            note,
                        )
                        .await;
                        Ok(())
                    }
                    // Made by an earlier pass the informer has not shown us yet.
                    Err(err) if is_conflict(&err) => Ok(()),
                    Err(err) => {
                        let note = format!(
                            "create Pod {name} in StatefulSet {set_name} failed error: {err}"
                        );
                        publish(
                            &self.recorder(),
                            reference,
                            true,
                            "FailedCreate",
                            "Create",
                            note,
                        )
                        .await;
                        Err(err).context(format!("creating pod {name}"))
                    }
                }
            }
        })
        .await;
        error.map_or(Ok(()), Err)
    }

    async fn delete_pod(
        &self,
        pods: &Api<Pod>,
        reference: &ObjectReference,
        set: &StatefulSet,
        name: &str,
        uid: &str,
    ) -> Result<()> {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        let set_name = set.name_any();
        match pods.delete(name, &params).await {
            Ok(_) => {
                let note = format!("delete Pod {name} in StatefulSet {set_name} successful");
                publish(
                    &self.recorder(),
                    reference,
                    false,
                    "SuccessfulDelete",
                    "Delete",
                    note,
                )
                .await;
                Ok(())
            }
            // Already gone, or replaced by a pod we have not seen yet.
            Err(err) if is_not_found(&err) || is_conflict(&err) => Ok(()),
            Err(err) => {
                let note =
                    format!("delete Pod {name} in StatefulSet {set_name} failed error: {err}");
                publish(
                    &self.recorder(),
                    reference,
                    true,
                    "FailedDelete",
                    "Delete",
                    note,
                )
                .await;
                Err(err).context(format!("deleting pod {name}"))
            }
        }
    }

    /// Create the pod's claims that do not exist yet; existing claims are kept as they are
    /// (they carry the data of an earlier pod of the same ordinal).
    async fn create_claims(
        &self,
        set: &StatefulSet,
        namespace: &str,
        reference: &ObjectReference,
        ordinal: i32,
    ) -> Result<()> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.ctx.client.clone(), namespace);
        let set_name = set.name_any();
        let pod = identity::pod_name(&set_name, ordinal);
        for claim in identity::claims(set, ordinal) {
            let name = claim.name_any();
            match api.create(&PostParams::default(), &claim).await {
                Ok(_) => {
                    let note =
                        format!("create Claim {name} Pod {pod} in StatefulSet {set_name} success");
                    publish(
                        &self.recorder(),
                        reference,
                        false,
                        "SuccessfulCreate",
                        "Create",
                        note,
                    )
                    .await;
                }
                Err(err) if is_conflict(&err) => {}
                Err(err) => {
                    let note = format!("create Claim {name} for Pod {pod} in StatefulSet {set_name} failed error: {err}");
                    publish(
                        &self.recorder(),
                        reference,
                        true,
                        "FailedCreate",
                        "Create",
                        note,
                    )
                    .await;
                    return Err(err).context(format!("creating claim {name}"));
                }
            }
        }
        Ok(())
    }

    async fn delete_claims(&self, set: &StatefulSet, namespace: &str, ordinal: i32) -> Result<()> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.ctx.client.clone(), namespace);
        for claim in identity::claims(set, ordinal) {
            let name = claim.name_any();
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err).context(format!("deleting claim {name}")),
            }
        }
        Ok(())
    }
}

async fn write_status(
    client: &kube::Client,
    set: &StatefulSet,
    namespace: &str,
    counts: &plan::Counts,
    revisions: Revisions<'_>,
    update: &Current,
) -> Result<()> {
    let current_revision = if counts.complete {
        revisions.update
    } else {
        revisions.current
    };
    let status = StatefulSetStatus {
        replicas: counts.replicas,
        ready_replicas: Some(counts.ready),
        available_replicas: Some(counts.available),
        current_replicas: Some(counts.current),
        updated_replicas: Some(counts.updated),
        current_revision: Some(current_revision.to_string()),
        update_revision: Some(revisions.update.to_string()),
        observed_generation: set.metadata.generation,
        collision_count: Some(update.collision_count.unwrap_or(0)),
        conditions: set.status.as_ref().and_then(|s| s.conditions.clone()),
    };
    if set.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    match api
        .patch_status(
            &set.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err).context(format!("updating status of statefulset {}", set.name_any())),
    }
}
