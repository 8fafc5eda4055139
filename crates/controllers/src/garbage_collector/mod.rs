//! The garbage collector: deletes objects whose owners are gone, and carries out the
//! Foreground and Orphan propagation policies the API server records as the
//! `foregroundDeletion` and `orphan` finalizers.
//!
//! It watches the metadata of every resource that can be listed, watched and deleted
//! (re-discovered periodically, so new custom resources are covered; Pods and Nodes come
//! from the process's shared informers instead of a second watch) and keeps an
//! ownership [`graph`]. Graph changes queue work; workers decide with upstream's rules
//! ([`decision`]) and act through the API. Before deleting anything, a worker re-reads
//! the dependent and confirms every owner it believes gone with a GET by name and uid, as
//! upstream does, so a late watch event never causes a wrong deletion. Deletes carry a uid
//! precondition, so a re-created object of the same name is never hit.
//!
//! Objects whose owners were never observed are only looked at once the first list of
//! every resource is in (or after [`SYNC_TIMEOUT`]), so start-up does not flood the API
//! with verification GETs.

pub mod discovery;

mod decision;
mod graph;
mod queue;

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::context::Recorder;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Node as CoreNode, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    DeleteParams, DynamicObject, PartialObjectMeta, Patch, PatchParams, Preconditions,
};
use kube::discovery::ApiResource;
use kube::runtime::reflector::{Lookup, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::{watch, Notify};
use tokio::task::{AbortHandle, JoinSet};
use tracing::{debug, info, warn};

use crate::context::{self, Context, RETRY_AFTER_ERROR};
use crate::error::{is_conflict, is_not_found, KubeContext};
use crate::Result;

use self::decision::{decide, Decision, OwnerState, Policy};
use self::discovery::{group_of, Resource};
use self::graph::{Graph, Node, Work, FOREGROUND, ORPHAN};
use self::queue::WorkQueue;

/// How often the served resources are discovered again.
const DISCOVERY_PERIOD: Duration = Duration::from_secs(30);
/// Longest wait for the first list of every resource before workers start anyway.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
/// Concurrent workers talking to the API.
const WORKERS: usize = 8;
/// Retry pause for a reference whose kind is not (yet) served.
const UNRESOLVABLE_RETRY: Duration = Duration::from_secs(10);
/// Shortest gap between discoveries asked for by references to unknown kinds.
const EARLY_DISCOVERY_GAP: Duration = Duration::from_secs(2);
/// Attempts at a read-modify-write of an object's metadata before giving up for now.
const PATCH_ATTEMPTS: usize = 5;

pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let collector = Arc::new(Collector {
        client: ctx.client.clone(),
        graph: Mutex::default(),
        queue: WorkQueue::default(),
        kinds: RwLock::default(),
        unknown_kind: Notify::new(),
        recorder: ctx.recorder("garbage-collector-controller"),
    });
    let mut tasks = JoinSet::new();
    let pods = informer_resource::<Pod>(true);
    let nodes = informer_resource::<CoreNode>(false);
    tasks.spawn(follow_informer(
        collector.clone(),
        pods.clone(),
        ctx.pods.store(),
        ctx.pods.subscribe(),
    ));
    tasks.spawn(follow_informer(
        collector.clone(),
        nodes.clone(),
        ctx.nodes.store(),
        ctx.nodes.subscribe(),
    ));

    let (synced_tx, synced_rx) = watch::channel(0usize);
    let mut watched = Watched::default();
    while !collector
        .refresh(&mut watched, &mut tasks, Some(&synced_tx))
        .await
    {
        tokio::time::sleep(RETRY_AFTER_ERROR).await;
    }
    for _ in 0..WORKERS {
        tasks.spawn(worker(collector.clone(), synced_rx.clone()));
    }

    let mut rediscover = tokio::time::interval(DISCOVERY_PERIOD);
    rediscover.tick().await;
    let mut promote = tokio::time::interval(Duration::from_secs(1));
    let mut last_discovery = Instant::now();
    loop {
        tokio::select! {
            _ = rediscover.tick() => {
                collector.refresh(&mut watched, &mut tasks, None).await;
                last_discovery = Instant::now();
                collector.forget_missing_from_store(&pods, &ctx.pods.store());
                collector.forget_missing_from_store(&nodes, &ctx.nodes.store());
            }
            // A reference to a kind not known yet is most likely a new custom resource.
            _ = collector.unknown_kind.notified() => {
                tokio::time::sleep_until((last_discovery + EARLY_DISCOVERY_GAP).into()).await;
                collector.refresh(&mut watched, &mut tasks, None).await;
                last_discovery = Instant::now();
            }
            _ = promote.tick() => collector.queue.promote_due(),
            Some(done) = tasks.join_next() => {
                if let Err(err) = done {
                    if err.is_panic() {
                        warn!(error = %err, "garbage collector task panicked");
                    }
                }
            }
        }
    }
}

/// Resources watched by this collector, by `group/plural`.
type Watched = HashMap<String, (Arc<Resource>, AbortHandle)>;

struct Collector {
    client: Client,
    graph: Mutex<Graph>,
    queue: WorkQueue<Work>,
    /// Every served resource by (group, kind), to resolve owner references.
    kinds: RwLock<HashMap<(String, String), Arc<Resource>>>,
    /// Signalled when an owner reference names a kind discovery did not return.
    unknown_kind: Notify,
    recorder: Recorder,
}

fn resource_key(r: &Resource) -> String {
    format!("{}/{}", r.ar.group, r.ar.plural)
}

/// Whether the collector opens its own metadata watch on `r`: events are never owners
/// or dependents worth tracking (upstream ignores them too), and Pods and Nodes come from
/// the shared informers.
fn watched_by_metadata(r: &Resource) -> bool {
    let core = r.ar.group.is_empty();
    r.is_collectable()
        && r.ar.plural != "events"
        && !(core && (r.ar.plural == "pods" || r.ar.plural == "nodes"))
}

fn informer_resource<K: kube::Resource<DynamicType = ()>>(namespaced: bool) -> Arc<Resource> {
    Arc::new(Resource {
        ar: ApiResource::erase::<K>(&()),
        namespaced,
        verbs: ["list", "watch", "delete"].map(String::from).to_vec(),
    })
}

impl Collector {
    fn apply(&self, change: impl FnOnce(&mut Graph) -> Vec<Work>) {
        let work = change(&mut self.graph.lock().expect("graph lock"));
        self.queue.extend(work);
    }

    fn observe(&self, resource: &Arc<Resource>, meta: &ObjectMeta) {
        if let Some(node) = Node::from_meta(resource.clone(), meta) {
            self.apply(|g| g.upsert(node));
        }
    }

    fn forget(&self, uid: &str) {
        self.apply(|g| g.remove(uid));
    }

    /// After a (re-)list: objects of `resource` the list did not return are gone.
    fn forget_unlisted(&self, resource: &Resource, listed: &HashSet<String>) {
        let gone: Vec<String> = {
            let g = self.graph.lock().expect("graph lock");
            g.uids_of(resource)
                .into_iter()
                .filter(|uid| !listed.contains(uid))
                .collect()
        };
        for uid in gone {
            self.forget(&uid);
        }
    }

    /// The shared informers do not pass on deletions missed while their watch was down;
    /// compare with their store now and then.
    fn forget_missing_from_store<K>(&self, resource: &Resource, store: &Store<K>)
    where
        K: kube::Resource<DynamicType = ()> + Lookup<DynamicType = ()> + Clone + 'static,
    {
        let listed: HashSet<String> = store
            .state()
            .iter()
            .filter_map(|o| o.meta().uid.clone())
            .collect();
        self.forget_unlisted(resource, &listed);
    }

    fn node(&self, uid: &str) -> Option<Node> {
        self.graph.lock().expect("graph lock").get(uid).cloned()
    }

    fn kind(&self, group: &str, kind: &str) -> Option<Arc<Resource>> {
        self.kinds
            .read()
            .expect("kinds lock")
            .get(&(group.to_string(), kind.to_string()))
            .cloned()
    }

    fn api(&self, resource: &Resource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) if resource.namespaced => {
                Api::namespaced_with(self.client.clone(), ns, &resource.ar)
            }
            _ => Api::all_with(self.client.clone(), &resource.ar),
        }
    }

    /// Discover resources; start watches on new ones and (when discovery was complete)
    /// stop those no longer served. Returns whether discovery succeeded. `synced` counts
    /// the watches whose first list is still outstanding.
    async fn refresh(
        self: &Arc<Self>,
        watched: &mut Watched,
        tasks: &mut JoinSet<()>,
        synced: Option<&watch::Sender<usize>>,
    ) -> bool {
        let found = match discovery::discover(&self.client).await {
            Ok(found) => found,
            Err(err) => {
                warn!(error = %err, "discovery failed");
                return false;
            }
        };
        for failure in &found.failures {
            warn!(failure, "discovery of a group failed");
        }
        *self.kinds.write().expect("kinds lock") = found
            .resources
            .iter()
            .map(|r| ((r.ar.group.clone(), r.ar.kind.clone()), r.clone()))
            .collect();
        let wanted: HashMap<String, Arc<Resource>> = found
            .resources
            .into_iter()
            .filter(|r| watched_by_metadata(r))
            .map(|r| (resource_key(&r), r))
            .collect();
        let mut started = false;
        for (key, resource) in &wanted {
            if watched.contains_key(key) {
                continue;
            }
            started = true;
            let sync = synced.map(|tx| {
                tx.send_modify(|n| *n += 1);
                tx.clone()
            });
            debug!(resource = %key, "watching");
            let handle = tasks.spawn(watch_resource(self.clone(), resource.clone(), sync));
            watched.insert(key.clone(), (resource.clone(), handle));
        }
        // References that waited for an unknown kind may resolve now.
        if started {
            self.queue.promote_all();
        }
        if found.failures.is_empty() {
            let stale: Vec<String> = watched
                .keys()
                .filter(|k| !wanted.contains_key(*k))
                .cloned()
                .collect();
            for key in stale {
                if let Some((resource, handle)) = watched.remove(&key) {
                    info!(resource = %key, "resource no longer served; forgetting its objects");
                    handle.abort();
                    self.forget_unlisted(&resource, &HashSet::new());
                }
            }
        }
        true
    }

    async fn handle(&self, work: &Work) -> Result<()> {
        match work {
            Work::Dependent(uid) => self.collect_dependent(uid).await,
            Work::Owner(uid) => self.process_owner(uid).await,
        }
    }

    /// Delete a dependent whose owners are all gone, or drop its references to gone
    /// owners when others remain.
    async fn collect_dependent(&self, uid: &str) -> Result<()> {
        let Some(node) = self.node(uid) else {
            return Ok(());
        };
        // Already being deleted; a foreground-deleting one is handled as an owner.
        if node.deleting || node.owners.is_empty() {
            return Ok(());
        }
        if self.decide_for(&node).await? == Decision::Nothing {
            return Ok(());
        }
        // Decide again on the latest version: the graph may lag behind the API.
        let api = self.api(&node.resource, node.namespace.as_deref());
        let Some(latest) = api
            .get_metadata_opt(&node.name)
            .await
            .context(format!("reading {}", node.name))?
        else {
            return Ok(());
        };
        let Some(latest) = Node::from_meta(node.resource.clone(), &latest.metadata)
            .filter(|n| n.uid == node.uid && !n.deleting)
        else {
            return Ok(());
        };
        match self.decide_for(&latest).await? {
            Decision::Nothing => Ok(()),
            Decision::RemoveReferences(owners) => {
                info!(namespace = ?latest.namespace, name = %latest.name, ?owners, "removing references to absent owners");
                self.remove_references(&latest, &owners).await
            }
            Decision::Delete(policy) => {
                info!(kind = %latest.resource.ar.kind, namespace = ?latest.namespace, name = %latest.name, ?policy, "deleting object whose owners are gone");
                self.delete(&latest, policy).await
            }
        }
    }

    async fn decide_for(&self, node: &Node) -> Result<Decision> {
        let mut states = Vec::with_capacity(node.owners.len());
        for owner in &node.owners {
            states.push((owner.uid.clone(), self.owner_state(node, owner).await?));
        }
        let has_dependents = self
            .graph
            .lock()
            .expect("graph lock")
            .has_dependents(&node.uid);
        Ok(decide(&states, has_dependents, &node.finalizers))
    }

    /// Where an owner reference of `dependent` points: verified against the API when the
    /// graph does not know the owner.
    async fn owner_state(&self, dependent: &Node, owner: &graph::Owner) -> Result<OwnerState> {
        let Some(resource) = self.kind(group_of(&owner.api_version), &owner.kind) else {
            // Perhaps a custom resource not discovered yet: look again later.
            self.unknown_kind.notify_one();
            self.queue
                .push_after(Work::Dependent(dependent.uid.clone()), UNRESOLVABLE_RETRY);
            return Ok(OwnerState::Unresolvable);
        };
        let namespace = match (resource.namespaced, &dependent.namespace) {
            (false, _) => None,
            (true, Some(ns)) => Some(ns.clone()),
            (true, None) => {
                // A cluster-scoped object cannot be owned by a namespaced one.
                self.report_invalid_reference(dependent, owner).await;
                return Ok(OwnerState::Unresolvable);
            }
        };
        let known = self
            .graph
            .lock()
            .expect("graph lock")
            .get(&owner.uid)
            .map(|o| (o.namespace == namespace, o.deleting_dependents()));
        match known {
            Some((true, waiting)) => return Ok(state_of(waiting)),
            // The uid lives in another namespace: the reference cannot reach it, and
            // the lookup below (in the dependent's namespace) decides.
            Some((false, _)) => self.report_invalid_reference(dependent, owner).await,
            None => {}
        }
        if self.graph.lock().expect("graph lock").is_absent(&owner.uid) {
            return Ok(OwnerState::Dangling);
        }
        let found = self
            .api(&resource, namespace.as_deref())
            .get_metadata_opt(&owner.name)
            .await
            .context(format!("reading owner {} {}", owner.kind, owner.name))?;
        match found {
            Some(meta) if meta.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
                let waiting = meta.metadata.deletion_timestamp.is_some()
                    && meta
                        .metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == FOREGROUND);
                Ok(state_of(waiting))
            }
            _ => {
                self.graph
                    .lock()
                    .expect("graph lock")
                    .mark_absent(&owner.uid);
                Ok(OwnerState::Dangling)
            }
        }
    }

    /// An owner being deleted: orphan its dependents, or wait for its blocking
    /// dependents to go (queueing them for deletion), then drop its finalizer.
    async fn process_owner(&self, uid: &str) -> Result<()> {
        let Some(owner) = self.node(uid) else {
            return Ok(());
        };
        let dependents: Vec<Node> = self
            .graph
            .lock()
            .expect("graph lock")
            .dependents_of(uid)
            .into_iter()
            .cloned()
            .collect();
        if owner.orphaning_dependents() {
            for dependent in &dependents {
                self.remove_references(dependent, &[uid.to_string()])
                    .await?;
            }
            info!(kind = %owner.resource.ar.kind, name = %owner.name, orphaned = dependents.len(), "dependents orphaned");
            return self.remove_finalizer(&owner, ORPHAN).await;
        }
        if !owner.deleting_dependents() {
            return Ok(());
        }
        let blocking: Vec<&Node> = dependents
            .iter()
            .filter(|d| {
                d.owners
                    .iter()
                    .any(|o| o.uid == uid && o.block_owner_deletion)
            })
            .collect();
        if blocking.is_empty() {
            debug!(kind = %owner.resource.ar.kind, name = %owner.name, "no blocking dependents left");
            return self.remove_finalizer(&owner, FOREGROUND).await;
        }
        self.queue.extend(
            dependents
                .iter()
                .filter(|d| !d.deleting)
                .map(|d| Work::Dependent(d.uid.clone())),
        );
        Ok(())
    }

    async fn remove_references(&self, node: &Node, owners: &[String]) -> Result<()> {
        self.patch_metadata(node, |meta| {
            let refs = meta.owner_references.clone().unwrap_or_default();
            let kept: Vec<_> = refs
                .iter()
                .filter(|r| !owners.contains(&r.uid))
                .cloned()
                .collect();
            // An empty list is dropped altogether, as upstream leaves it.
            (kept.len() != refs.len())
                .then(|| json!({ "ownerReferences": Some(kept).filter(|k| !k.is_empty()) }))
        })
        .await
    }

    async fn remove_finalizer(&self, node: &Node, finalizer: &str) -> Result<()> {
        self.patch_metadata(node, |meta| {
            let finalizers = meta.finalizers.clone().unwrap_or_default();
            let kept: Vec<&String> = finalizers.iter().filter(|f| *f != finalizer).collect();
            (kept.len() != finalizers.len())
                .then(|| json!({ "finalizers": Some(kept).filter(|k| !k.is_empty()) }))
        })
        .await
    }

    /// Read-modify-write of `node`'s metadata with a resourceVersion precondition:
    /// `change` returns the metadata fields to merge, or `None` when nothing is to do.
    async fn patch_metadata(
        &self,
        node: &Node,
        change: impl Fn(&ObjectMeta) -> Option<serde_json::Value>,
    ) -> Result<()> {
        let api = self.api(&node.resource, node.namespace.as_deref());
        let action = || format!("updating {} {}", node.resource.ar.kind, node.name);
        for _ in 0..PATCH_ATTEMPTS {
            let Some(current) = api.get_metadata_opt(&node.name).await.context(action())? else {
                return Ok(());
            };
            let meta = current.metadata;
            if meta.uid.as_deref() != Some(node.uid.as_str()) {
                return Ok(());
            }
            let Some(mut fields) = change(&meta) else {
                return Ok(());
            };
            fields["resourceVersion"] = json!(meta.resource_version);
            let patch = json!({ "metadata": fields });
            match api
                .patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(err) if is_not_found(&err) => return Ok(()),
                Err(err) if is_conflict(&err) => continue,
                Err(err) => return Err(err).context(action()),
            }
        }
        Err(crate::Error::Invalid(format!(
            "{}: kept conflicting after {PATCH_ATTEMPTS} attempts",
            action()
        )))
    }

    async fn delete(&self, node: &Node, policy: Policy) -> Result<()> {
        let params = DeleteParams {
            propagation_policy: Some(policy.to_kube()),
            preconditions: Some(Preconditions {
                uid: Some(node.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let api = self.api(&node.resource, node.namespace.as_deref());
        match api.delete(&node.name, &params).await {
            Ok(_) => Ok(()),
            // Gone already, or replaced by a new object of the same name.
            Err(err) if is_not_found(&err) || is_conflict(&err) => Ok(()),
            Err(err) => {
                Err(err).context(format!("deleting {} {}", node.resource.ar.kind, node.name))
            }
        }
    }

    async fn report_invalid_reference(&self, dependent: &Node, owner: &graph::Owner) {
        let namespace = dependent.namespace.clone().unwrap_or_default();
        let regarding = ObjectReference {
            api_version: Some(dependent.resource.ar.api_version.clone()),
            kind: Some(dependent.resource.ar.kind.clone()),
            name: Some(dependent.name.clone()),
            namespace: dependent.namespace.clone(),
            uid: Some(dependent.uid.clone()),
            ..ObjectReference::default()
        };
        let note = format!(
            "ownerRef [{}/{}, namespace: {namespace}, name: {}, uid: {}] does not exist in namespace {namespace:?}",
            owner.api_version, owner.kind, owner.name, owner.uid
        );
        context::publish(
            &self.recorder,
            &regarding,
            true,
            "OwnerRefInvalidNamespace",
            "GarbageCollect",
            note,
        )
        .await;
    }
}

fn state_of(waiting_for_dependents: bool) -> OwnerState {
    if waiting_for_dependents {
        OwnerState::WaitingForDependents
    } else {
        OwnerState::Solid
    }
}

async fn worker(collector: Arc<Collector>, mut synced: watch::Receiver<usize>) {
    if tokio::time::timeout(SYNC_TIMEOUT, synced.wait_for(|n| *n == 0))
        .await
        .is_err()
    {
        warn!("not every resource listed in time; collecting anyway");
    }
    loop {
        let work = collector.queue.pop().await;
        if let Err(err) = collector.handle(&work).await {
            warn!(?work, error = %err, "garbage collection failed; retrying");
            collector.queue.push_after(work, RETRY_AFTER_ERROR);
        }
    }
}

/// Feed the graph from a metadata watch of one resource.
async fn watch_resource(
    collector: Arc<Collector>,
    resource: Arc<Resource>,
    mut synced: Option<watch::Sender<usize>>,
) {
    // An `Api` of `PartialObjectMeta` asks for metadata only.
    let api: Api<PartialObjectMeta<DynamicObject>> =
        Api::all_with(collector.client.clone(), &resource.ar);
    let mut events =
        std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
    let mut listed = HashSet::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listed.clear(),
            Ok(Event::InitApply(obj)) => {
                listed.extend(obj.metadata.uid.clone());
                collector.observe(&resource, &obj.metadata);
            }
            Ok(Event::InitDone) => {
                collector.forget_unlisted(&resource, &listed);
                listed = HashSet::new();
                if let Some(tx) = synced.take() {
                    tx.send_modify(|n| *n = n.saturating_sub(1));
                }
            }
            Ok(Event::Apply(obj)) => collector.observe(&resource, &obj.metadata),
            Ok(Event::Delete(obj)) => {
                if let Some(uid) = &obj.metadata.uid {
                    collector.forget(uid);
                }
            }
            Err(err) => {
                debug!(resource = %resource_key(&resource), error = %err, "metadata watch failed; retrying");
            }
        }
    }
}

/// Feed the graph from a shared informer. Its stream carries deletions as the object's
/// last state; an object no longer in the store (or replaced there by a new uid) is gone.
async fn follow_informer<K>(
    collector: Arc<Collector>,
    resource: Arc<Resource>,
    store: Store<K>,
    changes: impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
) where
    K: kube::Resource<DynamicType = ()>
        + Lookup<DynamicType = ()>
        + Clone
        + Debug
        + Send
        + Sync
        + 'static,
{
    let mut changes = std::pin::pin!(changes);
    while let Some(change) = changes.next().await {
        let Ok(obj) = change else { continue };
        let Some(uid) = obj.meta().uid.clone() else {
            continue;
        };
        match store.get(&ObjectRef::from_obj(&obj)) {
            Some(current) if current.meta().uid.as_deref() == Some(uid.as_str()) => {
                collector.observe(&resource, current.meta());
            }
            _ => collector.forget(&uid),
        }
    }
}
