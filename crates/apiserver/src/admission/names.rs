//! Validation of object names and labels, with upstream's wording so kubectl users see
//! familiar 422 messages.

use k3rs_core::{validation, ResourceDef};
use serde_json::Value;

use crate::error::{ApiError, ApiResult, FieldCause};
use crate::object;

/// RBAC objects may be named with any valid path segment (`system:node` and friends).
fn is_path_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('%')
}

fn path_segment_errors(s: &str) -> Vec<String> {
    if is_path_segment(s) {
        Vec::new()
    } else {
        vec!["may not be '.' or '..' and may not contain '/' or '%'".to_string()]
    }
}

/// The rule names of a kind follow: its list of problems with a name (empty when valid).
fn name_rule(def: &ResourceDef) -> fn(&str) -> Vec<String> {
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => validation::dns1123_label_errors,
        ("", "services") => validation::dns1035_label_errors,
        ("rbac.authorization.k8s.io", _) => path_segment_errors,
        _ => validation::dns1123_subdomain_errors,
    }
}

/// Check `metadata.name` and `metadata.labels`; 422 naming every bad field.
pub fn validate(def: &ResourceDef, obj: &Value) -> ApiResult<()> {
    let name = object::name(obj).unwrap_or_default();
    let mut causes = Vec::new();
    for message in name_rule(def)(name) {
        causes.push(FieldCause {
            field: "metadata.name".into(),
            message: format!("Invalid value: \"{name}\": {message}"),
            reason: "FieldValueInvalid",
        });
    }
    // Upstream's ValidateLabels: each problem of each key, then of each value.
    if let Some(labels) = object::labels(obj).and_then(Value::as_object) {
        for (key, value) in labels {
            for message in validation::qualified_name_errors(key) {
                causes.push(FieldCause {
                    field: "metadata.labels".into(),
                    message: format!("Invalid value: \"{key}\": {message}"),
                    reason: "FieldValueInvalid",
                });
            }
            let problems = match value.as_str() {
                Some(v) => validation::label_value_errors(v),
                None => vec!["must be a string".to_string()],
            };
            for message in problems {
                causes.push(FieldCause {
                    field: "metadata.labels".into(),
                    message: format!("Invalid value: {value}: {message}"),
                    reason: "FieldValueInvalid",
                });
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&def.kind, name, causes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        let rule = |plural: &str| {
            let def = k3rs_core::resource::builtins()
                .iter()
                .find(|d| d.plural == plural)
                .unwrap();
            name_rule(def)
        };
        assert!(rule("configmaps")("web-1.example").is_empty());
        assert!(!rule("configmaps")("Web").is_empty());
        assert!(!rule("configmaps")(&"a".repeat(254)).is_empty());
        assert!(rule("namespaces")("kube-system").is_empty());
        assert!(!rule("namespaces")("a.b").is_empty());
        assert!(!rule("services")("1abc").is_empty());
        assert!(rule("clusterroles")("system:node").is_empty());
        assert!(!rule("clusterroles")("a/b").is_empty());
    }

    #[test]
    fn reports_each_bad_field() {
        let cms = k3rs_core::resource::find("", "v1", "configmaps").unwrap();
        let obj = serde_json::json!({"metadata": {"name": "Bad_Name", "labels": {"ok": "yes", "x": "-no"}}});
        let err = validate(cms, &obj).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(err
            .message
            .starts_with("ConfigMap \"Bad_Name\" is invalid: ["));
    }
}
