//! The DaemonSet controller: one pod per eligible node, pinned there by node affinity and
//! bound by the default scheduler; pods on nodes no longer eligible (or gone) removed;
//! finished pods replaced; RollingUpdate (maxUnavailable, maxSurge) and OnDelete updates
//! tracked through ControllerRevisions; the status kubectl reads.
//!
//! It reads pods and nodes from the shared informers and reacts to every node change (a
//! new node, a label or a taint can change every DaemonSet's placement). Deleting a
//! DaemonSet's pods when it is deleted is the garbage collector's job, not this one's.

mod placement;
mod plan;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::context::Recorder;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{ObjectReference, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, warn};

use crate::context::{publish, Context, RETRY_AFTER_ERROR};
use crate::controller_revision::{self as history, REVISION_HASH_LABEL};
use crate::error::{is_conflict, is_not_found, KubeContext, Result};
use crate::pod_control::{
    generate_name_prefix, is_controlled_by, owner_reference, pod_from_template, slow_start_batch,
};
use placement::{add_daemon_tolerations, pin_to_node, placement, target_node};
use plan::{Doomed, NodeView, Plan, Revision, Rollout, TEMPLATE_GENERATION_LABEL};

/// How long to wait for the informer to show our own creates and deletes before acting
/// again anyway (upstream's expectations timeout).
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(30);

/// What every reconcile of the DaemonSet controller shares: the term's context, the
/// ControllerRevision cache and the expectations of pods not yet seen.
struct DaemonSetController {
    ctx: Arc<Context>,
    revisions: Store<ControllerRevision>,
    /// Per DaemonSet uid: writes we made that the pod informer has not shown yet.
    expectations: Mutex<HashMap<String, Pending>>,
}

/// Pods we created (by name) or deleted (name and uid) and have not seen as such yet.
struct Pending {
    creates: HashSet<String>,
    deletes: Vec<Doomed>,
    since: Instant,
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
    let controller = Controller::new(Api::<DaemonSet>::all(client), watcher::Config::default());
    let daemonsets = controller.store();
    let state = Arc::new(DaemonSetController {
        ctx: ctx.clone(),
        revisions,
        expectations: Mutex::default(),
    });
    controller
        .owns_stream(ctx.pods.subscribe())
        .owns_stream(revision_events)
        // Any node change may change where every DaemonSet belongs.
        .watches_stream(ctx.nodes.subscribe(), move |_node| {
            daemonsets
                .state()
                .iter()
                .map(|ds| ObjectRef::from_obj(&**ds))
                .collect::<Vec<_>>()
        })
        .run(reconcile, error_policy, state)
        .for_each(|result| async move {
            if let Err(err) = result {
                debug!(error = %err, "daemonset reconcile failed");
            }
        })
        .await;
    Ok(())
}

fn error_policy(ds: Arc<DaemonSet>, err: &crate::Error, _: Arc<DaemonSetController>) -> Action {
    warn!(daemonset = %ds.name_any(), namespace = ?ds.namespace(), error = %err, "syncing daemonset failed; retrying");
    Action::requeue(RETRY_AFTER_ERROR)
}

async fn reconcile(ds: Arc<DaemonSet>, state: Arc<DaemonSetController>) -> Result<Action> {
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let (Some(namespace), Some(uid), Some(spec)) =
        (ds.namespace(), ds.metadata.uid.clone(), ds.spec.as_ref())
    else {
        return Ok(Action::await_change());
    };
    let _ = state.revisions.wait_until_ready().await;
    let client = state.ctx.client.clone();
    let revision_api: Api<ControllerRevision> = Api::namespaced(client.clone(), &namespace);
    let owned = history::owned_revisions(&state.revisions, &namespace, &uid);
    let collision_count = ds.status.as_ref().and_then(|s| s.collision_count);
    let current =
        history::ensure_current(&revision_api, &*ds, &spec.template, &owned, collision_count)
            .await?;
    let revision = Revision {
        hash: current.hash(),
        generation: ds.metadata.generation.unwrap_or(0),
    };

    let mut template = spec.template.clone();
    if let Some(pod_spec) = template.spec.as_mut() {
        add_daemon_tolerations(pod_spec);
    }
    let pod_spec = template.spec.clone().unwrap_or_default();
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
    let nodes = state.ctx.nodes.store().state();
    let mut by_node: HashMap<&str, Vec<&Pod>> = HashMap::new();
    let mut orphans = Vec::new();
    for pod in &pods {
        // Finished pods already being deleted are gone for our purposes.
        if is_finished(pod) && pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        match target_node(pod) {
            Some(node) => by_node.entry(node).or_default().push(pod),
            None => orphans.push(&**pod),
        }
    }
    let views: Vec<NodeView> = nodes
        .iter()
        .map(|node| {
            let name = node.metadata.name.as_deref().unwrap_or_default();
            NodeView {
                name,
                placement: placement(&pod_spec, node),
                pods: by_node.remove(name).unwrap_or_default(),
            }
        })
        .collect();
    // Whatever is left in `by_node` is for nodes that no longer exist.
    orphans.extend(by_node.into_values().flatten());

    let rollout = rollout(&ds, &views);
    if state.expectations_met(&uid, &namespace) {
        let surge = rollout.max_surge > 0;
        let mut plan = plan::manage(&views, &orphans, surge, revision);
        if plan.is_empty() && is_rolling_update(&ds) {
            plan = plan::rolling_update(&views, revision, rollout);
        }
        if !plan.is_empty() {
            state
                .apply(&ds, &namespace, &uid, &template, revision, plan)
                .await?;
        }
    }

    // Keep the revisions pods still use, the current one, and `revisionHistoryLimit` more.
    let mut live: HashSet<String> = pods
        .iter()
        .filter_map(|p| p.labels().get(REVISION_HASH_LABEL))
        .map(|hash| format!("{}-{hash}", ds.name_any()))
        .collect();
    live.insert(current.name().to_string());
    let limit = spec.revision_history_limit.unwrap_or(10);
    history::prune(
        &revision_api,
        &history::revisions_to_prune(&owned, &live, limit),
    )
    .await?;

    let counts = plan::status(&views, revision, rollout);
    write_status(&client, &ds, &namespace, counts, current.collision_count).await?;
    Ok(match plan::next_availability(&views, rollout) {
        Some(wait) => Action::requeue(Duration::from_secs(wait.unsigned_abs() + 1)),
        None if !state.expectations_met(&uid, &namespace) => {
            Action::requeue(Duration::from_secs(5))
        }
        None => Action::requeue(Duration::from_secs(300)),
    })
}

fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed") | Some("Succeeded")
    )
}

fn is_rolling_update(ds: &DaemonSet) -> bool {
    ds.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

/// maxUnavailable and maxSurge resolved against the number of nodes that should run a
/// pod (percentages rounded up), upstream's defaults being 1 and 0.
fn rollout(ds: &DaemonSet, views: &[NodeView]) -> Rollout {
    let desired = views.iter().filter(|v| v.placement.should_run).count();
    let rolling = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref());
    let max_surge = scaled(rolling.and_then(|r| r.max_surge.as_ref()), desired, 0);
    let mut max_unavailable = scaled(rolling.and_then(|r| r.max_unavailable.as_ref()), desired, 1);
    if max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    Rollout {
        max_unavailable,
        max_surge,
        min_ready_seconds: ds
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0),
        now: jiff::Timestamp::now(),
    }
}

/// An int-or-percent scaled against `total`, percentages rounded up.
fn scaled(value: Option<&IntOrString>, total: usize, default: usize) -> usize {
    match value {
        None => default,
        Some(IntOrString::Int(n)) => usize::try_from(*n).unwrap_or(0),
        Some(IntOrString::String(s)) => {
            match s.strip_suffix('%').and_then(|p| p.parse::<usize>().ok()) {
                Some(percent) => (percent * total).div_ceil(100),
                None => s.parse().unwrap_or(default),
            }
        }
    }
}

impl DaemonSetController {
    /// A fresh recorder for each event: a shared one folds every event with the same
    /// reason about one object into a single series that keeps the first message, which
    /// would hide which pods were created or deleted.
    fn recorder(&self) -> Recorder {
        self.ctx.recorder("daemonset-controller")
    }

    /// True once the informer shows every create and delete we made for this DaemonSet
    /// (or they have been pending too long to wait for).
    fn expectations_met(&self, uid: &str, namespace: &str) -> bool {
        let store = self.ctx.pods.store();
        let mut all = self.expectations.lock().expect("expectations lock");
        let Some(pending) = all.get_mut(uid) else {
            return true;
        };
        let lookup = |name: &str| store.get(&ObjectRef::<Pod>::new(name).within(namespace));
        pending.creates.retain(|name| lookup(name).is_none());
        pending.deletes.retain(|d| {
            lookup(&d.name).is_some_and(|p| {
                p.metadata.uid.as_deref() == Some(d.uid.as_str())
                    && p.metadata.deletion_timestamp.is_none()
            })
        });
        let met = (pending.creates.is_empty() && pending.deletes.is_empty())
            || pending.since.elapsed() > EXPECTATIONS_TIMEOUT;
        if met {
            all.remove(uid);
        }
        met
    }

    fn expect(&self, uid: &str, created: Vec<String>, deleted: Vec<Doomed>) {
        if created.is_empty() && deleted.is_empty() {
            return;
        }
        let mut all = self.expectations.lock().expect("expectations lock");
        let pending = all.entry(uid.to_string()).or_insert_with(|| Pending {
            creates: HashSet::new(),
            deletes: Vec::new(),
            since: Instant::now(),
        });
        pending.creates.extend(created);
        pending.deletes.extend(deleted);
        pending.since = Instant::now();
    }

    /// Carry out `plan`: deletions first, then creations in slow-start batches.
    async fn apply(
        &self,
        ds: &DaemonSet,
        namespace: &str,
        uid: &str,
        template: &PodTemplateSpec,
        revision: Revision<'_>,
        plan: Plan,
    ) -> Result<()> {
        let pods: Api<Pod> = Api::namespaced(self.ctx.client.clone(), namespace);
        let reference = ds.object_ref(&());
        let deleted = self.delete_pods(&pods, &reference, plan.delete).await;
        self.expect(uid, Vec::new(), deleted?);

        let created = Mutex::new(Vec::new());
        let (_, error) = slow_start_batch(plan.create_on.len(), |i| {
            let pod = daemon_pod(ds, template, &plan.create_on[i], revision);
            let (pods, reference, created) = (&pods, &reference, &created);
            async move {
                match pods.create(&PostParams::default(), &pod).await {
                    Ok(pod) => {
                        let name = pod.name_any();
                        created.lock().expect("created lock").push(name.clone());
                        publish(
                            &self.recorder(),
                            reference,
                            false,
                            "SuccessfulCreate",
                            "Create",
                            format!("Created pod: {name}"),
                        )
                        .await;
                        Ok(())
                    }
                    Err(err) => {
                        publish(
                            &self.recorder(),
                            reference,
                            true,
                            "FailedCreate",
                            "Create",
                            format!("Error creating: {err}"),
                        )
                        .await;
                        Err(err)
                    }
                }
            }
        })
        .await;
        self.expect(uid, created.into_inner().expect("created lock"), Vec::new());
        match error {
            Some(err) => Err(err).context(format!("creating pods for daemonset {}", ds.name_any())),
            None => Ok(()),
        }
    }

    /// Delete pods (each only if it is still the pod we saw); returns those deleted.
    async fn delete_pods(
        &self,
        pods: &Api<Pod>,
        reference: &ObjectReference,
        doomed: Vec<Doomed>,
    ) -> Result<Vec<Doomed>> {
        let results = futures::future::join_all(doomed.into_iter().map(|d| async move {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: Some(d.uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match pods.delete(&d.name, &params).await {
                Ok(_) => {
                    publish(
                        &self.recorder(),
                        reference,
                        false,
                        "SuccessfulDelete",
                        "Delete",
                        format!("Deleted pod: {}", d.name),
                    )
                    .await;
                    Ok(Some(d))
                }
                // Already gone, or replaced by a pod we have not seen yet.
                Err(err) if is_not_found(&err) || is_conflict(&err) => Ok(None),
                Err(err) => {
                    publish(
                        &self.recorder(),
                        reference,
                        true,
                        "FailedDelete",
                        "Delete",
                        format!("Error deleting: {err}"),
                    )
                    .await;
                    Err(err).context(format!("deleting pod {}", d.name))
                }
            }
        }))
        .await;
        let mut deleted = Vec::new();
        for result in results {
            deleted.extend(result?);
        }
        Ok(deleted)
    }
}

/// The pod for `node`: the template (with the daemon tolerations), the revision labels,
/// and the node affinity pinning it.
fn daemon_pod(ds: &DaemonSet, template: &PodTemplateSpec, node: &str, revision: Revision) -> Pod {
    let mut pod = pod_from_template(
        template,
        owner_reference(ds),
        ds.namespace().as_deref().unwrap_or_default(),
        None,
        Some(generate_name_prefix(&ds.name_any())),
    );
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(REVISION_HASH_LABEL.into(), revision.hash.into());
    labels.insert(
        TEMPLATE_GENERATION_LABEL.into(),
        revision.generation.to_string(),
    );
    if let Some(spec) = pod.spec.as_mut() {
        pin_to_node(spec, node);
    }
    pod
}

async fn write_status(
    client: &kube::Client,
    ds: &DaemonSet,
    namespace: &str,
    counts: plan::Counts,
    collision_count: Option<i32>,
) -> Result<()> {
    let status = DaemonSetStatus {
        desired_number_scheduled: counts.desired,
        current_number_scheduled: counts.current,
        number_misscheduled: counts.misscheduled,
        number_ready: counts.ready,
        number_available: Some(counts.available),
        number_unavailable: Some(counts.desired - counts.available),
        updated_number_scheduled: Some(counts.updated),
        observed_generation: ds.metadata.generation,
        collision_count,
        conditions: ds.status.as_ref().and_then(|s| s.conditions.clone()),
    };
    if ds.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), namespace);
    match api
        .patch_status(
            &ds.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err).context(format!("updating status of daemonset {}", ds.name_any())),
    }
}
