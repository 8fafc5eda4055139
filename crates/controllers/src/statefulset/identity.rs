//! A StatefulSet pod's stable identity: its name `<set>-<ordinal>`, its labels, its DNS
//! name (hostname and the governing service as subdomain), and its storage, the claims
//! `<claim>-<set>-<ordinal>` made from `volumeClaimTemplates` that outlive the pod.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::controller_revision::REVISION_HASH_LABEL;
use crate::pod_control::{owner_reference, pod_from_template};

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

pub fn pod_name(set: &str, ordinal: i32) -> String {
    format!("{set}-{ordinal}")
}

pub fn claim_name(claim: &str, set: &str, ordinal: i32) -> String {
    format!("{claim}-{set}-{ordinal}")
}

/// The pod for `ordinal`, made from `template` (the template of revision `revision`).
pub fn stateful_pod(
    set: &StatefulSet,
    template: &PodTemplateSpec,
    ordinal: i32,
    revision: &str,
) -> Pod {
    let set_name = set.name_any();
    let name = pod_name(&set_name, ordinal);
    let mut pod = pod_from_template(
        template,
        owner_reference(set),
        set.namespace().as_deref().unwrap_or_default(),
        Some(name.clone()),
        None,
    );
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_HASH_LABEL.into(), revision.into());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = Some(name);
    let service = set.spec.as_ref().and_then(|s| s.service_name.clone());
    if let Some(service) = service.filter(|s| !s.is_empty()) {
        spec.subdomain = Some(service);
    }
    let templates = set
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_deref())
        .unwrap_or_default();
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    for claim in templates {
        let claim_template = claim.metadata.name.clone().unwrap_or_default();
        volumes.retain(|v| v.name != claim_template);
        volumes.push(Volume {
            name: claim_template.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(&claim_template, &set_name, ordinal),
                read_only: None,
            }),
            ..Default::default()
        });
    }
    if volumes.is_empty() {
        spec.volumes = None;
    }
    pod
}

/// The claims `ordinal` needs: each template named for the pod, labelled with the set's
/// selector, and owned by the set when `whenDeleted: Delete` asks for them to go with it.
pub fn claims(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let Some(spec) = set.spec.as_ref() else {
        return Vec::new();
    };
    let set_name = set.name_any();
    let delete_with_set = spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .and_then(|p| p.when_deleted.as_deref())
        == Some("Delete");
    let owners = delete_with_set.then(|| {
        vec![OwnerReference {
            controller: None,
            block_owner_deletion: None,
            ..owner_reference(set)
        }]
    });
    spec.volume_claim_templates
        .iter()
        .flatten()
        .map(|template| {
            let mut labels = template.metadata.labels.clone().unwrap_or_default();
            if let Some(selector) = spec.selector.match_labels.as_ref() {
                labels.extend(selector.clone());
            }
            let name = template.metadata.name.as_deref().unwrap_or_default();
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(name, &set_name, ordinal)),
                    namespace: set.meta().namespace.clone(),
                    labels: Some(labels),
                    annotations: template.metadata.annotations.clone(),
                    owner_references: owners.clone(),
                    ..Default::default()
                },
                spec: template.spec.clone(),
                status: None,
            }
        })
        .collect()
}

/// `whenScaled: Delete`: claims of pods removed by a scale down go too.
pub fn delete_claims_on_scale_down(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref())
        .and_then(|p| p.when_scaled.as_deref())
        == Some("Delete")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(policy: serde_json::Value) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u"},
            "spec": {
                "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}],
                        "volumes": [{"name": "www", "emptyDir": {}}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
                "persistentVolumeClaimRetentionPolicy": policy,
            },
        }))
        .unwrap()
    }

    #[test]
    fn pods_carry_identity_and_claims() {
        let set = set(json!({"whenDeleted": "Retain", "whenScaled": "Retain"}));
        let template = set.spec.as_ref().unwrap().template.clone();
        let pod = stateful_pod(&set, &template, 2, "web-abc");
        assert_eq!(pod.metadata.name.as_deref(), Some("web-2"));
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[POD_NAME_LABEL], "web-2");
        assert_eq!(labels[POD_INDEX_LABEL], "2");
        assert_eq!(labels[REVISION_HASH_LABEL], "web-abc");
        let spec = pod.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("web-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let volumes = spec.volumes.unwrap();
        assert_eq!(volumes.len(), 1);
        assert_eq!(
            volumes[0]
                .persistent_volume_claim
                .as_ref()
                .unwrap()
                .claim_name,
            "www-web-2"
        );
        let claims = claims(&set, 2);
        assert_eq!(claims[0].metadata.name.as_deref(), Some("www-web-2"));
        assert_eq!(claims[0].metadata.labels.as_ref().unwrap()["app"], "nginx");
        assert!(claims[0].metadata.owner_references.is_none());
        assert!(!delete_claims_on_scale_down(&set));
    }

    #[test]
    fn retention_policy_delete_owns_claims() {
        let set = set(json!({"whenDeleted": "Delete", "whenScaled": "Delete"}));
        let owners = claims(&set, 0)[0]
            .metadata
            .owner_references
            .clone()
            .unwrap();
        assert_eq!(owners[0].kind, "StatefulSet");
        assert_eq!(owners[0].controller, None);
        assert!(delete_claims_on_scale_down(&set));
    }
}
