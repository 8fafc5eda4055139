//! Which ReplicaSet of a Deployment is the new one, revision numbers, and the
//! annotations a Deployment keeps on its ReplicaSets (`kubectl rollout history` and
//! proportional scaling read them).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::Value;

use crate::pod_control::{owner_reference, template_hash};

pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// Deployment annotations that are not copied to its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// Upstream's cap on the length of the revision history annotation.
const MAX_HISTORY_CHARS: usize = 2000;

/// Two templates are the same rollout target if they differ at most in the
/// `pod-template-hash` label and in fields left at their zero value.
pub fn equal_ignoring_hash(a: Option<&PodTemplateSpec>, b: Option<&PodTemplateSpec>) -> bool {
    without_hash(a) == without_hash(b)
}

fn without_hash(template: Option<&PodTemplateSpec>) -> Value {
    let mut value = normalized(template);
    if let Some(labels) = value
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    prune(&mut value);
    value
}

/// A template as JSON without zero values (`false`, `0`, `""`, `null`, empty objects and
/// lists). Clients differ in whether they send them (kubectl's rollback sends a
/// template without them, protobuf clients with them); upstream compares Go structs,
/// where an omitted field and its zero value are the same.
pub fn normalized(template: Option<&PodTemplateSpec>) -> Value {
    let mut value = serde_json::to_value(template).unwrap_or(Value::Null);
    prune(&mut value);
    value
}

/// Drop zero values recursively; true if `value` itself is one.
fn prune(value: &mut Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !*b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => {
            for item in items.iter_mut() {
                prune(item);
            }
            items.is_empty()
        }
        Value::Object(fields) => {
            fields.retain(|_, v| !prune(v));
            fields.is_empty()
        }
    }
}

fn template(rs: &ReplicaSet) -> Option<&PodTemplateSpec> {
    rs.spec.as_ref().and_then(|s| s.template.as_ref())
}

pub fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

pub fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// Oldest first (then by name), upstream's `ReplicaSetsByCreationTimestamp`.
pub fn sort_by_age(sets: &mut [ReplicaSet]) {
    sets.sort_by(|a, b| {
        let key = |rs: &ReplicaSet| {
            (
                rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
                rs.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
}

/// Split `sets` (sorted oldest first) into the new ReplicaSet (the oldest whose
/// template is the deployment's) and all the others.
pub fn split_new(d: &Deployment, sets: Vec<ReplicaSet>) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
    let wanted = d.spec.as_ref().map(|s| &s.template);
    let position = sets
        .iter()
        .position(|rs| equal_ignoring_hash(template(rs), wanted));
    let mut olds = sets;
    let new = position.map(|i| olds.remove(i));
    (new, olds)
}

pub fn revision(meta: &ObjectMeta) -> i64 {
    annotation(meta, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

pub fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

pub fn annotated_count(meta: &ObjectMeta, key: &str) -> Option<i32> {
    annotation(meta, key)?.parse().ok()
}

pub fn max_revision(sets: &[ReplicaSet]) -> i64 {
    sets.iter()
        .map(|rs| revision(&rs.metadata))
        .max()
        .unwrap_or(0)
}

/// The new ReplicaSet's annotations (upstream's `SetNewReplicaSetAnnotations`): the
/// deployment's own annotations copied, the revision raised to `new_revision` (keeping
/// the revisions it had in the history annotation when a rollback reuses it), and for
/// a ReplicaSet about to be created the replica annotations.
pub fn new_set_annotations(
    d: &Deployment,
    current: Option<&BTreeMap<String, String>>,
    new_revision: i64,
    replica_counts: Option<(i32, i32)>,
) -> BTreeMap<String, String> {
    let mut annotations = current.cloned().unwrap_or_default();
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if !NOT_COPIED.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    let old = annotations.get(REVISION).cloned();
    let old_number: i64 = old.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0);
    if old_number < new_revision {
        annotations.insert(REVISION.into(), new_revision.to_string());
        if let Some(old) = old {
            let history = match annotations.get(REVISION_HISTORY) {
                Some(h) if !h.is_empty() => trim_history(&format!("{h},{old}")),
                _ => old,
            };
            annotations.insert(REVISION_HISTORY.into(), history);
        }
    }
    if let Some((desired, max)) = replica_counts {
        annotations.insert(DESIRED_REPLICAS.into(), desired.to_string());
        annotations.insert(MAX_REPLICAS.into(), max.to_string());
    }
    annotations
}

fn trim_history(history: &str) -> String {
    let mut revisions: Vec<&str> = history.split(',').collect();
    while revisions.len() > 1 && revisions.join(",").len() > MAX_HISTORY_CHARS {
        revisions.remove(0);
    }
    revisions.join(",")
}

/// The ReplicaSet a deployment's current template becomes: named `<deployment>-<hash>`,
/// its template and selector carrying `pod-template-hash`.
pub fn new_replica_set(
    d: &Deployment,
    collision_count: Option<i32>,
    replicas: i32,
    annotations: BTreeMap<String, String>,
) -> ReplicaSet {
    let spec = d.spec.clone().unwrap_or_default();
    let hash = template_hash(&normalized(Some(&spec.template)), collision_count);
    let mut template = spec.template;
    let mut meta = template.metadata.take().unwrap_or_default();
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .insert(HASH_LABEL.into(), hash.clone());
    let labels = meta.labels.clone();
    template.metadata = Some(meta);
    let mut selector: LabelSelector = spec.selector;
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(HASH_LABEL.into(), hash.clone());
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}-{hash}",
                d.metadata.name.as_deref().unwrap_or_default()
            )),
            namespace: d.metadata.namespace.clone(),
            labels,
            annotations: Some(annotations),
            owner_references: Some(vec![owner_reference(d)]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "d1",
                "annotations": {"kubernetes.io/change-cause": "v2", REVISION: "4"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}},
            },
        }))
        .unwrap()
    }

    fn set(name: &str, image: &str, hash: &str, created: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"replicas": 1, "selector": {},
                "template": {"metadata": {"labels": {"app": "web", HASH_LABEL: hash}},
                    "spec": {"containers": [{"name": "c", "image": image}]}}},
        }))
        .unwrap()
    }

    #[test]
    fn finds_the_new_set_by_template() {
        let d = deployment();
        let mut sets = vec![
            set("web-b", "nginx:2", "b", "2024-01-02T00:00:00Z"),
            set("web-a", "nginx:1", "a", "2024-01-01T00:00:00Z"),
        ];
        sort_by_age(&mut sets);
        let (new, olds) = split_new(&d, sets);
        assert_eq!(new.unwrap().metadata.name.as_deref(), Some("web-b"));
        assert_eq!(olds.len(), 1);
    }

    #[test]
    fn zero_values_do_not_make_a_new_template() {
        let d = deployment();
        let mut noisy = d.spec.clone().unwrap().template;
        noisy.spec.as_mut().unwrap().containers[0].stdin = Some(false);
        noisy.metadata.as_mut().unwrap().generation = Some(0);
        let wanted = d.spec.as_ref().map(|s| &s.template);
        assert!(equal_ignoring_hash(Some(&noisy), wanted));
        assert_eq!(normalized(Some(&noisy)), normalized(wanted));
        noisy.spec.as_mut().unwrap().containers[0].stdin = Some(true);
        assert!(!equal_ignoring_hash(Some(&noisy), wanted));
    }

    #[test]
    fn new_set_is_named_by_hash_and_labelled() {
        let d = deployment();
        let rs = new_replica_set(&d, None, 2, BTreeMap::new());
        let hash = template_hash(&normalized(Some(&d.spec.as_ref().unwrap().template)), None);
        assert_eq!(rs.metadata.name, Some(format!("web-{hash}")));
        let spec = rs.spec.as_ref().unwrap();
        assert_eq!(
            spec.selector.match_labels.as_ref().unwrap()[HASH_LABEL],
            hash
        );
        assert_eq!(rs.metadata.owner_references.as_ref().unwrap()[0].uid, "d1");
        assert!(equal_ignoring_hash(
            spec.template.as_ref(),
            Some(&d.spec.as_ref().unwrap().template)
        ));
        assert_ne!(
            rs.metadata.name,
            new_replica_set(&d, Some(1), 2, BTreeMap::new())
                .metadata
                .name
        );
    }

    #[test]
    fn annotations_copy_and_keep_revision_history() {
        let d = deployment();
        let fresh = new_set_annotations(&d, None, 1, Some((3, 4)));
        assert_eq!(fresh["kubernetes.io/change-cause"], "v2");
        assert_eq!(fresh[REVISION], "1");
        assert_eq!(fresh[MAX_REPLICAS], "4");
        assert!(!fresh.contains_key(REVISION_HISTORY));
        // A rollback reuses revision 1 as revision 3.
        let reused = new_set_annotations(&d, Some(&fresh), 3, None);
        assert_eq!(reused[REVISION], "3");
        assert_eq!(reused[REVISION_HISTORY], "1");
        let again = new_set_annotations(&d, Some(&reused), 5, None);
        assert_eq!(again[REVISION_HISTORY], "1,3");
        // A lower revision never replaces a higher one.
        assert_eq!(
            new_set_annotations(&d, Some(&again), 2, None)[REVISION],
            "5"
        );
    }
}
