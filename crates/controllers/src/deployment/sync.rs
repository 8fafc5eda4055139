//! One sync of one Deployment (upstream's `syncDeployment`): claim its ReplicaSets,
//! then either only resize them (paused, or `spec.replicas` changed) or take the next
//! step of its strategy, and write the status. Decisions come from [`rollout`],
//! [`revision`] and [`status`]; this module only sequences them with the API calls.

use std::collections::HashSet;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::revision::{self, available, replicas};
use super::rollout::{self, desired_replicas, max_surge, max_unavailable};
use super::status::{self, PROGRESSING};
use super::DeploymentController;
use crate::error::{is_conflict, is_not_found, KubeContext};
use crate::pod_control::{controller_ref, owner_reference};
use crate::replicaset::{api_message, selector};
use crate::Result;

pub struct Sync<'a> {
    state: &'a DeploymentController,
    /// The deployment as last read or written.
    d: Deployment,
    deployments: Api<Deployment>,
    sets: Api<ReplicaSet>,
    reference: ObjectReference,
}

impl<'a> Sync<'a> {
    pub fn new(state: &'a DeploymentController, d: Deployment) -> Self {
        let ns = d.namespace().unwrap_or_default();
        let client = state.ctx.client.clone();
        Sync {
            state,
            reference: d.object_ref(&()),
            deployments: Api::namespaced(client.clone(), &ns),
            sets: Api::namespaced(client, &ns),
            d,
        }
    }

    fn spec(&self) -> k8s_openapi::api::apps::v1::DeploymentSpec {
        self.d.spec.clone().unwrap_or_default()
    }

    pub async fn run(mut self) -> Result<Action> {
        let spec = self.spec();
        if selector::is_empty(&spec.selector) {
            return self.selecting_all().await;
        }
        let sets = self.claim_sets().await?;
        if self.d.metadata.deletion_timestamp.is_some() {
            let (new, olds) = revision::split_new(&self.d, sets);
            self.sync_status(new.as_ref(), &olds).await?;
            return Ok(Action::await_change());
        }
        self.check_paused_conditions().await?;
        if spec.paused == Some(true) || self.is_scaling_event(&sets) {
            return self.resize(sets).await;
        }
        if rollout::is_recreate(&self.d) {
            self.recreate(sets).await
        } else {
            self.rolling(sets).await
        }
    }

    async fn selecting_all(&mut self) -> Result<Action> {
        self.state.events.warning(
            &self.reference,
            "SelectingAll",
            "Select",
            "This deployment is selecting all pods. A non-empty selector is required.".into(),
        );
        let observed = self.d.status.as_ref().and_then(|s| s.observed_generation);
        if observed < self.d.metadata.generation {
            let patch = json!({"status": {"observedGeneration": self.d.metadata.generation}});
            self.patch_status(&patch).await?;
        }
        Ok(Action::await_change())
    }

    /// The ReplicaSets this deployment controls, after adopting matching orphans and
    /// releasing ones that stopped matching. Sorted oldest first.
    async fn claim_sets(&mut self) -> Result<Vec<ReplicaSet>> {
        let uid = self.d.metadata.uid.clone().unwrap_or_default();
        let ns = self.d.metadata.namespace.clone();
        let selector = self.spec().selector;
        let deleting = self.d.metadata.deletion_timestamp.is_some();
        let mut claimed = Vec::new();
        for rs in self.state.sets.state() {
            if rs.metadata.namespace != ns {
                continue;
            }
            let matches = selector::matches(&selector, rs.metadata.labels.as_ref());
            match controller_ref(&rs.metadata) {
                Some(owner) if owner.uid == uid => {
                    if matches {
                        claimed.push(ReplicaSet::clone(&rs));
                    } else if !deleting && rs.metadata.deletion_timestamp.is_none() {
                        let rest: Vec<OwnerReference> = rs
                            .metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .filter(|r| r.uid != uid)
                            .cloned()
                            .collect();
                        self.set_owners(&rs, (!rest.is_empty()).then_some(rest))
                            .await?;
                    }
                }
                None if matches && !deleting && rs.metadata.deletion_timestamp.is_none() => {
                    let mut owners = rs.metadata.owner_references.clone().unwrap_or_default();
                    owners.push(owner_reference(&self.d));
                    if let Some(adopted) = self.set_owners(&rs, Some(owners)).await? {
                        claimed.push(adopted);
                    }
                }
                _ => {}
            }
        }
        revision::sort_by_age(&mut claimed);
        Ok(claimed)
    }

    async fn set_owners(
        &self,
        rs: &ReplicaSet,
        owners: Option<Vec<OwnerReference>>,
    ) -> Result<Option<ReplicaSet>> {
        let name = rs.name_any();
        let patch = json!({"metadata": {
            "ownerReferences": owners,
            "uid": rs.metadata.uid,
            "resourceVersion": rs.metadata.resource_version,
        }});
        match self
            .sets
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(rs) => Ok(Some(rs)),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(err).context(format!("updating owners of replicaset {name}")),
        }
    }

    /// Mark pausing and resuming in the `Progressing` condition, so that the time spent
    /// paused never counts against the progress deadline.
    async fn check_paused_conditions(&mut self) -> Result<()> {
        if !status::has_progress_deadline(&self.d) {
            return Ok(());
        }
        let mut current = self.d.status.clone().unwrap_or_default();
        let reason = status::get(&current, PROGRESSING).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(status::TIMED_OUT) {
            return Ok(());
        }
        let paused = self.spec().paused == Some(true);
        let marked = reason.as_deref() == Some(status::PAUSED);
        let now = jiff::Timestamp::now();
        let condition = match (paused, marked) {
            (true, false) => status::condition(
                PROGRESSING,
                "Unknown",
                status::PAUSED,
                "Deployment is paused".into(),
                now,
            ),
            (false, true) => status::condition(
                PROGRESSING,
                "Unknown",
                status::RESUMED,
                "Deployment is resumed".into(),
                now,
            ),
            _ => return Ok(()),
        };
        status::set(&mut current, condition);
        self.write_status(current).await
    }

    /// A ReplicaSet with pods was last sized for a different `spec.replicas`.
    fn is_scaling_event(&self, sets: &[ReplicaSet]) -> bool {
        let desired = desired_replicas(&self.d);
        sets.iter().filter(|rs| replicas(rs) > 0).any(|rs| {
            revision::annotated_count(&rs.metadata, revision::DESIRED_REPLICAS)
                .is_some_and(|n| n != desired)
        })
    }

    /// The new ReplicaSet (its annotations and the deployment's revision brought up to
    /// date, created if `create` and missing) and the old ones.
    async fn new_and_old(
        &mut self,
        sets: Vec<ReplicaSet>,
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let (new, olds) = revision::split_new(&self.d, sets);
        let next_revision = revision::max_revision(&olds) + 1;
        let new = match new {
            Some(existing) => Some(self.sync_new_set(existing, next_revision).await?),
            None if create => Some(self.create_new_set(&olds, next_revision).await?),
            None => None,
        };
        Ok((new, olds))
    }

    async fn sync_new_set(
        &mut self,
        existing: ReplicaSet,
        next_revision: i64,
    ) -> Result<ReplicaSet> {
        let annotations = revision::new_set_annotations(
            &self.d,
            existing.metadata.annotations.as_ref(),
            next_revision,
            None,
        );
        let min_ready = self.spec().min_ready_seconds;
        let current_min_ready = existing.spec.as_ref().and_then(|s| s.min_ready_seconds);
        if existing.metadata.annotations.as_ref() != Some(&annotations)
            || current_min_ready.unwrap_or(0) != min_ready.unwrap_or(0)
        {
            let name = existing.name_any();
            let patch = json!({
                "metadata": {"annotations": annotations, "resourceVersion": existing.metadata.resource_version},
                "spec": {"minReadySeconds": min_ready},
            });
            // Upstream returns here too: the deployment's side follows on the next sync.
            return self
                .sets
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .context(format!("updating replicaset {name}"));
        }
        let rs_revision = revision::annotation(&existing.metadata, revision::REVISION)
            .unwrap_or_default()
            .to_string();
        self.set_deployment_revision(&rs_revision).await?;
        let mut current = self.d.status.clone().unwrap_or_default();
        if status::has_progress_deadline(&self.d) && status::get(&current, PROGRESSING).is_none() {
            let message = format!("Found new replica set \"{}\"", existing.name_any());
            let now = jiff::Timestamp::now();
            status::set(
                &mut current,
                status::condition(PROGRESSING, "True", status::FOUND_NEW_RS, message, now),
            );
            self.write_status(current).await?;
        }
        Ok(existing)
    }

    async fn set_deployment_revision(&mut self, revision: &str) -> Result<()> {
        if revision::annotation(&self.d.metadata, revision::REVISION) == Some(revision) {
            return Ok(());
        }
        let name = self.d.name_any();
        let patch = json!({"metadata": {"annotations": {revision::REVISION: revision}}});
        self.d = self
            .deployments
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .context(format!("setting the revision of deployment {name}"))?;
        Ok(())
    }

    async fn create_new_set(
        &mut self,
        olds: &[ReplicaSet],
        next_revision: i64,
    ) -> Result<ReplicaSet> {
        let desired = desired_replicas(&self.d);
        let surge = max_surge(&self.d);
        let count = if rollout::is_recreate(&self.d) {
            desired
        } else {
            let total: i32 = olds.iter().map(replicas).sum();
            rollout::new_replicas_rolling(desired, surge, total, 0)
        };
        let annotations = revision::new_set_annotations(
            &self.d,
            None,
            next_revision,
            Some((desired, desired + surge)),
        );
        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let wanted = revision::new_replica_set(&self.d, collision_count, count, annotations);
        let name = wanted.name_any();
        let created = match self.sets.create(&PostParams::default(), &wanted).await {
            Ok(rs) => rs,
            Err(err) if is_conflict(&err) => return self.name_taken(&name, err).await,
            Err(err) => return Err(self.failed_create(&name, err).await),
        };
        if count > 0 {
            self.state.events.normal(
                &self.reference,
                "ScalingReplicaSet",
                "Scaling",
                format!("Scaled up replica set {name} from 0 to {count}"),
            );
        }
        self.set_deployment_revision(&next_revision.to_string())
            .await?;
        let mut current = self.d.status.clone().unwrap_or_default();
        if status::has_progress_deadline(&self.d) {
            let message = format!("Created new replica set \"{name}\"");
            let now = jiff::Timestamp::now();
            status::set(
                &mut current,
                status::condition(PROGRESSING, "True", status::NEW_RS_CREATED, message, now),
            );
            self.write_status(current).await?;
        }
        Ok(created)
    }

    /// `<deployment>-<hash>` exists already: ours with this template (our cache was
    /// behind), or a hash collision, which bumps `collisionCount` for a new name.
    async fn name_taken(&mut self, name: &str, err: kube::Error) -> Result<ReplicaSet> {
        let existing = self
            .sets
            .get(name)
            .await
            .context(format!("reading replicaset {name}"))?;
        let uid = self.d.metadata.uid.clone().unwrap_or_default();
        let ours = controller_ref(&existing.metadata).is_some_and(|r| r.uid == uid);
        let wanted = self.d.spec.as_ref().map(|s| &s.template);
        let same = revision::equal_ignoring_hash(
            existing.spec.as_ref().and_then(|s| s.template.as_ref()),
            wanted,
        );
        if ours && same {
            return Ok(existing);
        }
        let collisions = self
            .d
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0)
            + 1;
        self.patch_status(&json!({"status": {"collisionCount": collisions}}))
            .await?;
        Err(err).context(format!("creating replicaset {name} (hash collision)"))
    }

    async fn failed_create(&mut self, name: &str, err: kube::Error) -> crate::Error {
        let message = format!(
            "Failed to create new replica set \"{name}\": {}",
            api_message(&err)
        );
        if status::has_progress_deadline(&self.d) {
            let mut current = self.d.status.clone().unwrap_or_default();
            let now = jiff::Timestamp::now();
            status::set(
                &mut current,
                status::condition(
                    PROGRESSING,
                    "False",
                    status::FAILED_RS_CREATE,
                    message.clone(),
                    now,
                ),
            );
            let _ = self.write_status(current).await;
        }
        self.state
            .events
            .warning(&self.reference, status::FAILED_RS_CREATE, "Create", message);
        crate::Error::Kube {
            action: format!("creating replicaset {name}"),
            source: err,
        }
    }

    /// Set a ReplicaSet's size (and the replica annotations), recording the event;
    /// returns the ReplicaSet as written.
    async fn scale(&self, rs: &ReplicaSet, size: i32) -> Result<ReplicaSet> {
        let desired = desired_replicas(&self.d);
        let max = desired + max_surge(&self.d);
        let current = replicas(rs);
        let annotations_current =
            revision::annotated_count(&rs.metadata, revision::DESIRED_REPLICAS) == Some(desired)
                && revision::annotated_count(&rs.metadata, revision::MAX_REPLICAS) == Some(max);
        if current == size && annotations_current {
            return Ok(rs.clone());
        }
        let name = rs.name_any();
        let patch = json!({
            "metadata": {
                "resourceVersion": rs.metadata.resource_version,
                "annotations": {
                    revision::DESIRED_REPLICAS: desired.to_string(),
                    revision::MAX_REPLICAS: max.to_string(),
                },
            },
            "spec": {"replicas": size},
        });
        let written = self
            .sets
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .context(format!("scaling replicaset {name}"))?;
        if current != size {
            let direction = if size > current { "up" } else { "down" };
            self.state.events.normal(
                &self.reference,
                "ScalingReplicaSet",
                "Scaling",
                format!("Scaled {direction} replica set {name} from {current} to {size}"),
            );
        }
        Ok(written)
    }

    /// Resize without rolling out (paused, or `spec.replicas` changed): one active
    /// ReplicaSet takes the whole size, else sizes change in proportion.
    async fn resize(&mut self, sets: Vec<ReplicaSet>) -> Result<Action> {
        let (new, olds) = self.new_and_old(sets, false).await?;
        let desired = desired_replicas(&self.d);
        if let Some(target) = active_or_latest(new.as_ref(), &olds) {
            if replicas(target) != desired {
                self.scale(target, desired).await?;
            }
        } else if is_saturated(&self.d, new.as_ref()) {
            for old in olds.iter().filter(|rs| replicas(rs) > 0) {
                self.scale(old, 0).await?;
            }
        } else if !rollout::is_recreate(&self.d) {
            let active: Vec<&ReplicaSet> = olds
                .iter()
                .chain(new.as_ref())
                .filter(|rs| replicas(rs) > 0)
                .collect();
            let shares: Vec<rollout::Share> = active
                .iter()
                .map(|rs| rollout::Share {
                    replicas: replicas(rs),
                    max_replicas: revision::annotated_count(&rs.metadata, revision::MAX_REPLICAS),
                    age_rank: olds
                        .iter()
                        .chain(new.as_ref())
                        .position(|o| o.metadata.uid == rs.metadata.uid)
                        .unwrap_or(0),
                })
                .collect();
            let status_replicas = self.d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let sizes =
                rollout::proportional(&shares, desired, max_surge(&self.d), status_replicas);
            for (rs, size) in active.iter().zip(sizes) {
                self.scale(rs, size).await?;
            }
        }
        if self.spec().paused == Some(true) {
            self.cleanup(&olds).await?;
        }
        self.sync_status(new.as_ref(), &olds).await?;
        Ok(Action::await_change())
    }

    async fn rolling(&mut self, sets: Vec<ReplicaSet>) -> Result<Action> {
        let (new, mut olds) = self.new_and_old(sets, true).await?;
        let Some(new) = new else {
            return self.rollout_status(None, &olds).await;
        };
        if self.reconcile_new(&new, &olds).await? {
            return self.rollout_status(Some(&new), &olds).await;
        }
        if self.reconcile_olds(&new, &mut olds).await? {
            return self.rollout_status(Some(&new), &olds).await;
        }
        if status::is_complete(&self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup(&olds).await?;
        }
        self.rollout_status(Some(&new), &olds).await
    }

    /// Grow (or shrink back to `replicas`) the new ReplicaSet; true if it was scaled.
    async fn reconcile_new(&self, new: &ReplicaSet, olds: &[ReplicaSet]) -> Result<bool> {
        let desired = desired_replicas(&self.d);
        let current = replicas(new);
        let size = if current >= desired {
            desired
        } else {
            let total: i32 = olds.iter().map(replicas).sum::<i32>() + current;
            rollout::new_replicas_rolling(desired, max_surge(&self.d), total, current)
        };
        if size == current {
            return Ok(false);
        }
        self.scale(new, size).await?;
        Ok(true)
    }

    /// Shrink old ReplicaSets as far as maxUnavailable allows, unhealthy pods first;
    /// true if any was scaled.
    async fn reconcile_olds(&self, new: &ReplicaSet, olds: &mut [ReplicaSet]) -> Result<bool> {
        let old_total: i32 = olds.iter().map(replicas).sum();
        if old_total == 0 {
            return Ok(false);
        }
        let desired = desired_replicas(&self.d);
        let unavailable = max_unavailable(&self.d);
        let total = old_total + replicas(new);
        let budget =
            rollout::max_scaled_down(total, desired, unavailable, replicas(new), available(new));
        if budget <= 0 {
            return Ok(false);
        }
        let mut scaled = false;
        let health: Vec<(i32, i32)> = olds
            .iter()
            .map(|rs| (replicas(rs), available(rs)))
            .collect();
        for (i, size) in rollout::cleanup_unhealthy(&health, budget)
            .into_iter()
            .enumerate()
        {
            if size != replicas(&olds[i]) {
                olds[i] = self.scale(&olds[i], size).await?;
                scaled = true;
            }
        }
        let available_total: i32 = olds.iter().map(available).sum::<i32>() + available(new);
        let sizes: Vec<i32> = olds.iter().map(replicas).collect();
        for (i, size) in rollout::scale_down_old(&sizes, available_total, desired - unavailable)
            .into_iter()
            .enumerate()
        {
            if size != replicas(&olds[i]) {
                olds[i] = self.scale(&olds[i], size).await?;
                scaled = true;
            }
        }
        Ok(scaled)
    }

    async fn recreate(&mut self, sets: Vec<ReplicaSet>) -> Result<Action> {
        let (mut new, olds) = self.new_and_old(sets.clone(), false).await?;
        let mut scaled_down = false;
        for old in olds.iter().filter(|rs| replicas(rs) > 0) {
            self.scale(old, 0).await?;
            scaled_down = true;
        }
        if scaled_down || self.old_pods_running(new.as_ref(), &olds) {
            let action = self.rollout_status(new.as_ref(), &olds).await?;
            // Old pods leave without touching a ReplicaSet: look again shortly.
            return Ok(
                if scaled_down || self.old_pods_running(new.as_ref(), &olds) {
                    Action::requeue(std::time::Duration::from_secs(1))
                } else {
                    action
                },
            );
        }
        if new.is_none() {
            new = self.new_and_old(sets, true).await?.0;
        }
        if let Some(rs) = new.as_ref() {
            self.scale(rs, desired_replicas(&self.d)).await?;
        }
        if status::is_complete(&self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup(&olds).await?;
        }
        self.rollout_status(new.as_ref(), &olds).await
    }

    /// Pods of old ReplicaSets that have not finished (upstream's `oldPodsRunning`).
    fn old_pods_running(&self, new: Option<&ReplicaSet>, olds: &[ReplicaSet]) -> bool {
        let counted: i32 = olds
            .iter()
            .map(|rs| rs.status.as_ref().map_or(0, |s| s.replicas))
            .sum();
        if counted > 0 {
            return true;
        }
        let old_uids: HashSet<&str> = olds
            .iter()
            .filter(|rs| new.is_none_or(|n| n.metadata.uid != rs.metadata.uid))
            .filter_map(|rs| rs.metadata.uid.as_deref())
            .collect();
        self.state.ctx.pods.store().state().iter().any(|pod| {
            controller_ref(&pod.metadata).is_some_and(|r| old_uids.contains(r.uid.as_str()))
                && !matches!(
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded") | Some("Failed")
                )
        })
    }

    /// Delete the oldest empty ReplicaSets beyond `revisionHistoryLimit`.
    async fn cleanup(&self, olds: &[ReplicaSet]) -> Result<()> {
        let Some(limit) = self.spec().revision_history_limit else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = olds
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let excess = cleanable.len() as i64 - i64::from(limit.max(0));
        if excess <= 0 {
            return Ok(());
        }
        cleanable.sort_by_key(|rs| revision::revision(&rs.metadata));
        for rs in cleanable.into_iter().take(excess as usize) {
            let status = rs.status.clone().unwrap_or_default();
            let settled = status.observed_generation >= rs.metadata.generation;
            if status.replicas != 0 || replicas(rs) != 0 || !settled {
                continue;
            }
            let name = rs.name_any();
            match self.sets.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err).context(format!("deleting old replicaset {name}")),
            }
        }
        Ok(())
    }

    /// Write the status of a rollout step, and come back when its deadline would pass.
    async fn rollout_status(
        &mut self,
        new: Option<&ReplicaSet>,
        olds: &[ReplicaSet],
    ) -> Result<Action> {
        let all: Vec<&ReplicaSet> = olds.iter().chain(new).collect();
        let now = jiff::Timestamp::now();
        let next = status::rollout(&self.d, &all, new, now);
        let recheck = status::recheck_after(&self.d, &next, now);
        self.write_status(next).await?;
        Ok(recheck.map_or_else(Action::await_change, Action::requeue))
    }

    async fn sync_status(&mut self, new: Option<&ReplicaSet>, olds: &[ReplicaSet]) -> Result<()> {
        let all: Vec<&ReplicaSet> = olds.iter().chain(new).collect();
        let next = status::calculate(&self.d, &all, new, jiff::Timestamp::now());
        self.write_status(next).await
    }

    /// Write `next` unless it says what the stored status says.
    async fn write_status(&mut self, next: DeploymentStatus) -> Result<()> {
        let patch = status::patch(&next);
        let current = self.d.status.as_ref().map(status::patch);
        if current.as_ref() == Some(&patch) {
            return Ok(());
        }
        self.patch_status(&patch).await
    }

    async fn patch_status(&mut self, patch: &serde_json::Value) -> Result<()> {
        let name = self.d.name_any();
        match self
            .deployments
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(d) => {
                self.d = d;
                Ok(())
            }
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(err).context(format!("updating status of deployment {name}")),
        }
    }
}

/// The only ReplicaSet with pods, or with none anywhere the newest (upstream's
/// `FindActiveOrLatest`); `None` while several have pods.
fn active_or_latest<'s>(
    new: Option<&'s ReplicaSet>,
    olds: &'s [ReplicaSet],
) -> Option<&'s ReplicaSet> {
    let active: Vec<&ReplicaSet> = olds
        .iter()
        .chain(new)
        .filter(|rs| replicas(rs) > 0)
        .collect();
    match active.len() {
        0 => new.or_else(|| olds.last()),
        1 => Some(active[0]),
        _ => None,
    }
}

/// The new ReplicaSet has every pod, all available, sized for the current spec.
fn is_saturated(d: &Deployment, new: Option<&ReplicaSet>) -> bool {
    let desired = desired_replicas(d);
    new.is_some_and(|rs| {
        replicas(rs) == desired
            && revision::annotated_count(&rs.metadata, revision::DESIRED_REPLICAS) == Some(desired)
            && available(rs) == desired
    })
}
