//! Schema checks for built-in kinds, using the real Kubernetes types from `k8s-openapi`.
//!
//! A body is decoded into its typed struct (which rejects wrong types, bad base64, bad
//! quantities...) and encoded back; any field of the input that did not survive the round
//! trip is not declared in the schema. The caller decides by `fieldValidation` whether that
//! is an error, a warning, or silently dropped. This gives upstream-equivalent unknown-field
//! detection without a hand-written schema per kind.

use k3rs_core::ResourceDef;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

/// Outcome of checking an object against its kind's schema.
#[derive(Debug, Default)]
pub struct SchemaCheck {
    /// Paths such as `spec.containers[0].imagePullPolic` that the schema does not declare.
    pub unknown_fields: Vec<String>,
}

/// Check `obj` (with `apiVersion` and `kind` already set) against the schema of `def`.
/// Returns the decoding error text when the object does not fit its type at all.
pub fn check(def: &ResourceDef, obj: &Value) -> Result<SchemaCheck, String> {
    use k8s_openapi::api;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    let check = match (def.group.as_str(), def.kind.as_str()) {
        ("", "Namespace") => roundtrip::<api::core::v1::Namespace>(obj),
        ("", "Pod") => roundtrip::<api::core::v1::Pod>(obj),
        ("", "Service") => roundtrip::<api::core::v1::Service>(obj),
        ("", "Endpoints") => roundtrip::<api::core::v1::Endpoints>(obj),
        ("", "ConfigMap") => roundtrip::<api::core::v1::ConfigMap>(obj),
        ("", "Secret") => roundtrip::<api::core::v1::Secret>(obj),
        ("", "ServiceAccount") => roundtrip::<api::core::v1::ServiceAccount>(obj),
        ("", "Node") => roundtrip::<api::core::v1::Node>(obj),
        ("", "Event") => roundtrip::<api::core::v1::Event>(obj),
        ("", "LimitRange") => roundtrip::<api::core::v1::LimitRange>(obj),
        ("", "ResourceQuota") => roundtrip::<api::core::v1::ResourceQuota>(obj),
        ("", "PersistentVolume") => roundtrip::<api::core::v1::PersistentVolume>(obj),
        ("", "PersistentVolumeClaim") => roundtrip::<api::core::v1::PersistentVolumeClaim>(obj),
        ("apps", "Deployment") => roundtrip::<api::apps::v1::Deployment>(obj),
        ("apps", "ReplicaSet") => roundtrip::<api::apps::v1::ReplicaSet>(obj),
        ("apps", "DaemonSet") => roundtrip::<api::apps::v1::DaemonSet>(obj),
        ("apps", "StatefulSet") => roundtrip::<api::apps::v1::StatefulSet>(obj),
        ("apps", "ControllerRevision") => roundtrip::<api::apps::v1::ControllerRevision>(obj),
        ("batch", "Job") => roundtrip::<api::batch::v1::Job>(obj),
        ("batch", "CronJob") => roundtrip::<api::batch::v1::CronJob>(obj),
        ("discovery.k8s.io", "EndpointSlice") => {
            roundtrip::<api::discovery::v1::EndpointSlice>(obj)
        }
        ("events.k8s.io", "Event") => roundtrip::<api::events::v1::Event>(obj),
        ("networking.k8s.io", "Ingress") => roundtrip::<api::networking::v1::Ingress>(obj),
        ("networking.k8s.io", "IngressClass") => {
            roundtrip::<api::networking::v1::IngressClass>(obj)
        }
        ("networking.k8s.io", "NetworkPolicy") => {
            roundtrip::<api::networking::v1::NetworkPolicy>(obj)
        }
        ("coordination.k8s.io", "Lease") => roundtrip::<api::coordination::v1::Lease>(obj),
        ("policy", "PodDisruptionBudget") => roundtrip::<api::policy::v1::PodDisruptionBudget>(obj),
        ("rbac.authorization.k8s.io", "Role") => roundtrip::<api::rbac::v1::Role>(obj),
        ("rbac.authorization.k8s.io", "ClusterRole") => {
            roundtrip::<api::rbac::v1::ClusterRole>(obj)
        }
        ("rbac.authorization.k8s.io", "RoleBinding") => {
            roundtrip::<api::rbac::v1::RoleBinding>(obj)
        }
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            roundtrip::<api::rbac::v1::ClusterRoleBinding>(obj)
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            roundtrip::<api::scheduling::v1::PriorityClass>(obj)
        }
        ("storage.k8s.io", "StorageClass") => roundtrip::<api::storage::v1::StorageClass>(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            roundtrip::<apiextensions::CustomResourceDefinition>(obj)
        }
        // Kinds without a typed schema (custom resources) are checked elsewhere.
        _ => Ok(SchemaCheck::default()),
    }?;
    Ok(check)
}

fn roundtrip<T: DeserializeOwned + Serialize>(obj: &Value) -> Result<SchemaCheck, String> {
    let typed: T = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    collect_unknown(obj, &back, "", &mut unknown);
    Ok(SchemaCheck {
        unknown_fields: unknown,
    })
}

/// Paths present in `input` but missing from `known`. Empty values (null, "", {}, [])
/// are not reported: the typed encoder drops some of them even when declared.
fn collect_unknown(input: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(input), Value::Object(known)) => {
            for (key, value) in input {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match known.get(key) {
                    Some(k) => collect_unknown(value, k, &child, out),
                    None if is_empty(value) => {}
                    None => out.push(child),
                }
            }
        }
        (Value::Array(input), Value::Array(known)) => {
            for (i, (a, b)) in input.iter().zip(known).enumerate() {
                collect_unknown(a, b, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Remove the given dotted/indexed paths from `obj` (unknown fields being dropped).
pub fn prune(obj: &mut Value, paths: &[String]) {
    for path in paths {
        remove_path(obj, path);
    }
}

fn remove_path(obj: &mut Value, path: &str) {
    // Split `a.b[2].c` into steps; the last step is the key to drop.
    let mut steps: Vec<Step> = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        let key_end = rest.find('[').unwrap_or(rest.len());
        steps.push(Step::Key(rest[..key_end].to_string()));
        rest = &rest[key_end..];
        while let Some(close) = rest.find(']') {
            if let Ok(i) = rest[1..close].parse() {
                steps.push(Step::Index(i));
            }
            rest = &rest[close + 1..];
        }
    }
    let Some(Step::Key(last)) = steps.pop() else {
        return;
    };
    let mut cur = obj;
    for step in steps {
        let next = match step {
            Step::Key(k) => cur.get_mut(&k),
            Step::Index(i) => cur.get_mut(i),
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(map) = cur.as_object_mut() {
        map.remove(&last);
    }
}

enum Step {
    Key(String),
    Index(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pods() -> &'static ResourceDef {
        k3rs_core::resource::find("", "v1", "pods").unwrap()
    }

    #[test]
    fn finds_unknown_fields_and_prunes_them() {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "labels": {}, "bogus": 1},
            "spec": {"containers": [{"name": "c", "image": "busybox", "imagePullPolic": "x"}]}
        });
        let check = check(pods(), &pod).unwrap();
        assert_eq!(
            check.unknown_fields,
            vec!["metadata.bogus", "spec.containers[0].imagePullPolic"]
        );
        prune(&mut pod, &check.unknown_fields);
        assert!(pod["metadata"].get("bogus").is_none());
        assert!(pod["spec"]["containers"][0].get("imagePullPolic").is_none());
        assert_eq!(pod["spec"]["containers"][0]["image"], "busybox");
    }

    #[test]
    fn wrong_types_are_rejected() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
            "spec": {"containers": "nope"}});
        assert!(check(pods(), &pod).is_err());
    }
}
