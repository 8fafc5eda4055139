//! Fields that may not change on update, per kind (Services and Pods have their own
//! modules): workload selectors, Job templates, immutable ConfigMaps and Secrets, and
//! PersistentVolumeClaim specs.

use serde_json::{json, Value};

use super::fields::{self, Path};
use crate::error::FieldCause;

const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";
const STATEFULSET_UPDATABLE: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";
const PVC_UPDATABLE: &str =
    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims";

/// The value at `pointer`, with null meaning absent.
fn at<'a>(obj: &'a Value, pointer: &str) -> Option<&'a Value> {
    obj.pointer(pointer).filter(|v| !v.is_null())
}

/// `path` may not change once it has a value.
fn keep(old: &Value, new: &Value, pointer: &str, path: &Path, causes: &mut Vec<FieldCause>) {
    if let Some(before) = at(old, pointer) {
        let after = at(new, pointer);
        if after != Some(before) {
            causes.push(fields::immutable(path, after.unwrap_or(&Value::Null)));
        }
    }
}

pub fn validate_update(group: &str, kind: &str, old: &Value, new: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let spec = Path::new("spec");
    match (group, kind) {
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") => {
            keep(
                old,
                new,
                "/spec/selector",
                &spec.child("selector"),
                &mut causes,
            );
        }
        ("apps", "StatefulSet") => {
            keep(
                old,
                new,
                "/spec/selector",
                &spec.child("selector"),
                &mut causes,
            );
            let fixed = |o: &Value| -> Value {
                let mut s = o.get("spec").cloned().unwrap_or(json!({}));
                if let Some(map) = s.as_object_mut() {
                    for field in [
                        "replicas",
                        "ordinals",
                        "template",
                        "updateStrategy",
                        "revisionHistoryLimit",
                        "persistentVolumeClaimRetentionPolicy",
                        "minReadySeconds",
                        "selector",
                    ] {
                        map.remove(field);
                    }
                }
                s
            };
            if fixed(old) != fixed(new) {
                causes.push(fields::forbidden(&spec, STATEFULSET_UPDATABLE));
            }
        }
        ("batch", "Job") => {
            keep(
                old,
                new,
                "/spec/selector",
                &spec.child("selector"),
                &mut causes,
            );
            keep(
                old,
                new,
                "/spec/template",
                &spec.child("template"),
                &mut causes,
            );
            keep(
                old,
                new,
                "/spec/completions",
                &spec.child("completions"),
                &mut causes,
            );
        }
        ("", "ConfigMap" | "Secret") => {
            if at(old, "/immutable") == Some(&json!(true)) {
                for field in ["data", "binaryData"] {
                    if old.get(field) != new.get(field) {
                        causes.push(fields::forbidden(&Path::new(field), IMMUTABLE_SET));
                    }
                }
                if at(new, "/immutable") != Some(&json!(true)) {
                    causes.push(fields::forbidden(&Path::new("immutable"), IMMUTABLE_SET));
                }
            }
            if kind == "Secret" {
                keep(old, new, "/type", &Path::new("type"), &mut causes);
            }
        }
        ("", "PersistentVolumeClaim") => {
            let changed = |pointer: &str| {
                at(old, pointer).is_some_and(|before| at(new, pointer) != Some(before))
            };
            if changed("/spec/storageClassName") || changed("/spec/accessModes") {
                causes.push(fields::forbidden(&spec, PVC_UPDATABLE));
            }
        }
        _ => {}
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(causes: &[FieldCause]) -> Vec<String> {
        causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn selectors_and_templates() {
        let old = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}, "replicas": 1}});
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(3);
        assert!(validate_update("apps", "Deployment", &old, &new).is_empty());
        new["spec"]["selector"] = json!({"matchLabels": {"app": "b"}});
        assert_eq!(
            messages(&validate_update("apps", "Deployment", &old, &new)),
            ["spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"b\"}}: field is immutable"]
        );
        let mut sts = old.clone();
        sts["spec"]["serviceName"] = json!("other");
        assert_eq!(
            validate_update("apps", "StatefulSet", &old, &sts)[0].field,
            "spec"
        );
        let job =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "a"}]}}}});
        let mut changed = job.clone();
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("b");
        assert_eq!(
            validate_update("batch", "Job", &job, &changed)[0].field,
            "spec.template"
        );
    }

    #[test]
    fn immutable_config_and_secrets() {
        let old = json!({"immutable": true, "data": {"a": "b"}, "type": "Opaque"});
        let mut new = old.clone();
        new["data"]["a"] = json!("c");
        assert_eq!(
            messages(&validate_update("", "ConfigMap", &old, &new)),
            ["data: Forbidden: field is immutable when `immutable` is set"]
        );
        let mut retyped = json!({"data": {}, "type": "Opaque"});
        let plain = retyped.clone();
        retyped["type"] = json!("kubernetes.io/tls");
        assert_eq!(
            messages(&validate_update("", "Secret", &plain, &retyped)),
            ["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
        );
        let pvc =
            json!({"spec": {"storageClassName": "local-path", "accessModes": ["ReadWriteOnce"]}});
        let mut grown = pvc.clone();
        grown["spec"]["resources"] = json!({"requests": {"storage": "2Gi"}});
        assert!(validate_update("", "PersistentVolumeClaim", &pvc, &grown).is_empty());
        grown["spec"]["storageClassName"] = json!("other");
        assert_eq!(
            validate_update("", "PersistentVolumeClaim", &pvc, &grown)[0].field,
            "spec"
        );
    }
}
