//! What the workload controllers (ReplicaSet, DaemonSet, StatefulSet, Job) share about
//! the pods they own: controller references, making a pod from a template, readiness and
//! availability, template hashes, and creating many pods in slow-start batches.

use std::future::Future;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use serde::Serialize;

/// The owner reference marked `controller: true`, if any.
pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// True when `meta`'s controller is the object with `uid`.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_ref(meta).is_some_and(|r| r.uid == uid)
}

/// A controller reference to `owner` (controller and blockOwnerDeletion set, as
/// upstream's controllers write them).
pub fn owner_reference<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    let meta = owner.meta();
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A pod built from `template`, owned by `owner`. Either `name` is given (StatefulSet) or
/// the API server generates one from `generate_name` (e.g. `web-7d4b9c8f6d-`).
pub fn pod_from_template(
    template: &PodTemplateSpec,
    owner: OwnerReference,
    namespace: &str,
    name: Option<String>,
    generate_name: Option<String>,
) -> Pod {
    let template_meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            name,
            generate_name,
            namespace: Some(namespace.to_string()),
            labels: template_meta.labels,
            annotations: template_meta.annotations,
            finalizers: template_meta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Upstream's `generateName` for pods of a controller: the name plus `-`, shortened so
/// that the generated suffix still fits in 63 characters.
pub fn generate_name_prefix(owner_name: &str) -> String {
    const MAX_PREFIX: usize = 58;
    let mut prefix = format!("{owner_name}-");
    if prefix.len() > MAX_PREFIX {
        prefix.truncate(MAX_PREFIX);
    }
    prefix
}

/// Running or pending and not being deleted: the pods a controller counts as its own.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded") | Some("Failed"))
        && pod.metadata.deletion_timestamp.is_none()
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// The pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// When the pod became Ready, if it is.
pub fn ready_since(pod: &Pod) -> Option<jiff::Timestamp> {
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(
        condition
            .last_transition_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
    )
}

/// Ready for at least `min_ready_seconds` at `now` (upstream's `IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: jiff::Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(since) => since.as_second() + i64::from(min_ready_seconds) <= now.as_second(),
    }
}

/// A short, stable hash of a pod template (plus the owner's collision count), rendered
/// with upstream's alphabet of consonants and digits that cannot spell words. Used for
/// `pod-template-hash` and `controller-revision-hash`.
pub fn template_hash(template: &impl Serialize, collision_count: Option<i32>) -> String {
    // FNV-1a (32 bit) over the template's JSON, as upstream hashes the printed template.
    let mut hash: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u32::from(*b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    feed(&serde_json::to_vec(template).unwrap_or_default());
    if let Some(count) = collision_count {
        feed(&count.to_le_bytes());
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rendered = String::new();
    loop {
        rendered.push(ALPHABET[(hash % 27) as usize] as char);
        hash /= 27;
        if hash == 0 {
            return rendered;
        }
    }
}

/// Run `create(i)` for `i in 0..count` in batches of 1, 2, 4, ... (upstream's
/// slow start): a template that cannot be created fails once, not `count` times, while a
/// good one reaches full parallelism quickly. Returns how many succeeded and the first
/// error, if any; no batch starts after a failed one.
pub async fn slow_start_batch<F, Fut, E>(count: usize, create: F) -> (usize, Option<E>)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut done = 0;
    let mut batch = 1;
    while done < count {
        let size = batch.min(count - done);
        let results = futures::future::join_all((done..done + size).map(&create)).await;
        let mut first_error = None;
        let mut succeeded = 0;
        for result in results {
            match result {
                Ok(()) => succeeded += 1,
                Err(e) if first_error.is_none() => first_error = Some(e),
                Err(_) => {}
            }
        }
        if first_error.is_some() {
            return (done + succeeded, first_error);
        }
        done += size;
        batch *= 2;
    }
    (done, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_hashes_are_stable_and_differ() {
        let a = serde_json::json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
        let b = serde_json::json!({"spec": {"containers": [{"name": "a", "image": "y"}]}});
        assert_eq!(template_hash(&a, None), template_hash(&a, None));
        assert_ne!(template_hash(&a, None), template_hash(&b, None));
        assert_ne!(template_hash(&a, None), template_hash(&a, Some(1)));
        assert!(template_hash(&a, None).len() <= 11);
    }

    #[tokio::test]
    async fn slow_start_stops_after_a_failing_batch() {
        let (done, err) = slow_start_batch(10, |i| async move {
            if i >= 3 {
                Err("quota")
            } else {
                Ok(())
            }
        })
        .await;
        // Batches 1 (0) and 2 (1,2) succeed; batch of 4 (3..7) fails entirely.
        assert_eq!((done, err), (3, Some("quota")));
        assert_eq!(
            slow_start_batch(7, |_| async { Ok::<_, ()>(()) }).await,
            (7, None)
        );
    }
}
