//! ControllerRevisions: the template history of DaemonSets and StatefulSets, stored the
//! way upstream stores it so `kubectl rollout history` and `kubectl rollout undo` work
//! unchanged.
//!
//! Each revision is named `<owner>-<hash>`, carries the `controller-revision-hash` label
//! and a `revision` number, is controlled by its owner, and holds as `data` the patch that
//! restores the owner's template: `{"spec":{"template":{..., "$patch":"replace"}}}`.
//! kubectl applies that data as a strategic merge patch to roll back.
//!
//! This module owns finding, creating, renumbering and pruning revisions; what a revision
//! means for pods is the owning controller's business. It reads revisions from a
//! reflector store the controller keeps; it never lists them.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::Resource;
use serde_json::{json, Value};

use crate::error::{is_conflict, is_not_found, KubeContext, Result};
use crate::pod_control::{is_controlled_by, owner_reference, template_hash};

/// Label on revisions (and on DaemonSet/StatefulSet pods) naming the revision.
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";

/// How many name collisions we try before giving up on this reconcile.
const MAX_COLLISION_RETRIES: i32 = 8;

/// The revision data for `template`: the patch that puts this template back.
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut template = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Some(map) = template.as_object_mut() {
        map.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// The template a revision restores (its data without the `$patch` directive).
pub fn revision_template(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision.data.as_ref()?.0.pointer("/spec/template")?.clone();
    template.as_object_mut()?.remove("$patch");
    serde_json::from_value(template).ok()
}

/// The hash naming a revision of `patch`; the collision count changes it when a name is
/// already taken by different data.
pub fn revision_hash(patch: &Value, collision_count: Option<i32>) -> String {
    template_hash(patch, collision_count)
}

/// `owner`'s revisions in `namespace`, oldest revision number first.
pub fn owned_revisions(
    store: &Store<ControllerRevision>,
    namespace: &str,
    owner_uid: &str,
) -> Vec<Arc<ControllerRevision>> {
    let mut owned: Vec<_> = store
        .state()
        .into_iter()
        .filter(|r| {
            r.metadata.namespace.as_deref() == Some(namespace)
                && is_controlled_by(&r.metadata, owner_uid)
        })
        .collect();
    owned.sort_by_key(|r| r.revision);
    owned
}

/// One more than the highest revision number.
pub fn next_revision_number(revisions: &[Arc<ControllerRevision>]) -> i64 {
    revisions.iter().map(|r| r.revision).max().unwrap_or(0) + 1
}

/// The newest revision holding exactly `patch`, if any.
pub fn find_equal<'a>(
    revisions: &'a [Arc<ControllerRevision>],
    patch: &Value,
) -> Option<&'a Arc<ControllerRevision>> {
    revisions
        .iter()
        .filter(|r| r.data.as_ref().is_some_and(|d| &d.0 == patch))
        .max_by_key(|r| r.revision)
}

/// Names of the revisions to delete so that at most `limit` revisions not in `live`
/// remain, oldest first (upstream's history truncation).
pub fn revisions_to_prune(
    revisions: &[Arc<ControllerRevision>],
    live: &HashSet<String>,
    limit: i32,
) -> Vec<String> {
    let mut dead: Vec<_> = revisions
        .iter()
        .filter(|r| !r.metadata.name.as_ref().is_some_and(|n| live.contains(n)))
        .collect();
    dead.sort_by_key(|r| r.revision);
    let excess = dead
        .len()
        .saturating_sub(usize::try_from(limit).unwrap_or(0));
    dead.into_iter()
        .take(excess)
        .filter_map(|r| r.metadata.name.clone())
        .collect()
}

/// The revision for an owner's current template and the collision count it took.
pub struct Current {
    pub revision: ControllerRevision,
    pub collision_count: Option<i32>,
}

impl Current {
    pub fn name(&self) -> &str {
        self.revision.metadata.name.as_deref().unwrap_or_default()
    }

    /// The `controller-revision-hash` label of the revision.
    pub fn hash(&self) -> &str {
        self.revision
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_HASH_LABEL))
            .map(String::as_str)
            .unwrap_or_default()
    }
}

/// Find or create the revision of `template` for `owner`. An existing equal revision that
/// is not the newest is renumbered to the next revision (as after `kubectl rollout undo`);
/// a name taken by different data bumps the collision count and tries again.
pub async fn ensure_current<K>(
    api: &Api<ControllerRevision>,
    owner: &K,
    template: &PodTemplateSpec,
    revisions: &[Arc<ControllerRevision>],
    collision_count: Option<i32>,
) -> Result<Current>
where
    K: Resource<DynamicType = ()>,
{
    let patch = template_patch(template);
    let next = next_revision_number(revisions);
    if let Some(equal) = find_equal(revisions, &patch) {
        let mut revision = (**equal).clone();
        if revision.revision + 1 < next {
            revision = renumber(api, &revision, next).await?;
        }
        return Ok(Current {
            revision,
            collision_count,
        });
    }
    let owner_name = owner.meta().name.clone().unwrap_or_default();
    let owner_uid = owner.meta().uid.clone().unwrap_or_default();
    let mut count = collision_count;
    for _ in 0..MAX_COLLISION_RETRIES {
        let hash = revision_hash(&patch, count);
        let wanted = build(owner, template, &hash, patch.clone(), next);
        match api.create(&PostParams::default(), &wanted).await {
            Ok(revision) => {
                return Ok(Current {
                    revision,
                    collision_count: count,
                })
            }
            Err(err) if is_conflict(&err) => {
                let name = format!("{owner_name}-{hash}");
                let existing = api
                    .get(&name)
                    .await
                    .context(format!("reading controller revision {name}"))?;
                let same = is_controlled_by(&existing.metadata, &owner_uid)
                    && existing.data.as_ref().is_some_and(|d| d.0 == patch);
                if same {
                    // Our own earlier write the store has not shown us yet.
                    return Ok(Current {
                        revision: existing,
                        collision_count: count,
                    });
                }
                count = Some(count.unwrap_or(0) + 1);
            }
            Err(err) => {
                return Err(err).context(format!("creating controller revision for {owner_name}"))
            }
        }
    }
    Err(crate::Error::Invalid(format!(
        "too many controller revision name collisions for {owner_name}"
    )))
}

/// Delete the revisions named in `names` (already gone is fine).
pub async fn prune(api: &Api<ControllerRevision>, names: &[String]) -> Result<()> {
    for name in names {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(err).context(format!("deleting controller revision {name}")),
        }
    }
    Ok(())
}

async fn renumber(
    api: &Api<ControllerRevision>,
    revision: &ControllerRevision,
    number: i64,
) -> Result<ControllerRevision> {
    let name = revision.metadata.name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"revision": number})),
    )
    .await
    .context(format!("renumbering controller revision {name}"))
}

/// A new revision object: labels of the template plus the hash label, controlled by
/// `owner`.
fn build<K: Resource<DynamicType = ()>>(
    owner: &K,
    template: &PodTemplateSpec,
    hash: &str,
    patch: Value,
    number: i64,
) -> ControllerRevision {
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.into(), hash.into());
    let owner_name = owner.meta().name.clone().unwrap_or_default();
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{owner_name}-{hash}")),
            namespace: owner.meta().namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![owner_reference(owner)]),
            ..Default::default()
        },
        data: Some(RawExtension(patch)),
        revision: number,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": image}]},
        }))
        .unwrap()
    }

    fn revision(name: &str, number: i64, image: &str) -> Arc<ControllerRevision> {
        Arc::new(ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(RawExtension(template_patch(&template(image)))),
            revision: number,
        })
    }

    #[test]
    fn patch_replaces_the_whole_template() {
        let patch = template_patch(&template("nginx"));
        assert_eq!(patch["spec"]["template"]["$patch"], "replace");
        assert_eq!(
            patch["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx"
        );
        let back = revision_template(&revision("a", 1, "nginx")).unwrap();
        assert_eq!(back, template("nginx"));
    }

    #[test]
    fn finds_the_newest_equal_revision() {
        let revisions = vec![
            revision("a", 1, "v1"),
            revision("b", 2, "v2"),
            revision("c", 3, "v1"),
        ];
        let patch = template_patch(&template("v1"));
        assert_eq!(find_equal(&revisions, &patch).unwrap().revision, 3);
        assert!(find_equal(&revisions, &template_patch(&template("v9"))).is_none());
        assert_eq!(next_revision_number(&revisions), 4);
        assert_eq!(next_revision_number(&[]), 1);
    }

    #[test]
    fn prunes_the_oldest_dead_revisions() {
        let revisions: Vec<_> = (1..=5)
            .map(|i| revision(&format!("r{i}"), i, &format!("v{i}")))
            .collect();
        let live: HashSet<String> = ["r1".to_string(), "r5".to_string()].into();
        assert_eq!(revisions_to_prune(&revisions, &live, 1), vec!["r2", "r3"]);
        assert!(revisions_to_prune(&revisions, &live, 10).is_empty());
        assert_eq!(revisions_to_prune(&revisions, &live, 0).len(), 3);
    }
}
