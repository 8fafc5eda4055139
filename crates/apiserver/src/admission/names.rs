//! Validation of object names and labels, with upstream's wording so kubectl users see
//! familiar 422 messages.

use k3rs_core::ResourceDef;
use serde_json::Value;

use crate::error::{ApiError, FieldCause, Result};
use crate::object;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
pub(super) const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

pub(super) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn is_dns1035_label(s: &str) -> bool {
    is_dns_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// RBAC objects may be named with any valid path segment (`system:node` and friends).
fn is_path_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('%')
}

/// Which rule names of a kind follow, and the message when they don't.
fn name_rule(def: &ResourceDef) -> (fn(&str) -> bool, &'static str) {
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => (is_dns_label, LABEL_MSG),
        ("", "services") => (is_dns1035_label, DNS1035_MSG),
        ("rbac.authorization.k8s.io", _) => (
            is_path_segment,
            "may not be '.' or '..' and may not contain '/' or '%'",
        ),
        _ => (is_dns_subdomain, SUBDOMAIN_MSG),
    }
}

fn is_label_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

fn is_qualified_name(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty() && is_dns_subdomain(prefix) && is_label_name(name)
        }
        None => is_label_name(key),
    }
}

fn is_label_value(v: &str) -> bool {
    v.is_empty() || is_label_name(v)
}

/// Check `metadata.name` and `metadata.labels`; 422 naming every bad field.
pub fn validate(def: &ResourceDef, obj: &Value) -> Result<()> {
    let name = object::name(obj).unwrap_or_default();
    let mut causes = Vec::new();
    let (rule, message) = name_rule(def);
    if !rule(name) {
        causes.push(FieldCause {
            field: "metadata.name".into(),
            message: format!("Invalid value: \"{name}\": {message}"),
            reason: "FieldValueInvalid",
        });
    }
    if let Some(labels) = object::labels(obj).and_then(Value::as_object) {
        for (key, value) in labels {
            if !is_qualified_name(key) {
                causes.push(FieldCause {
                    field: "metadata.labels".into(),
                    message: format!("Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"),
                    reason: "FieldValueInvalid",
                });
            }
            match value.as_str() {
                Some(v) if is_label_value(v) => {}
                _ => causes.push(FieldCause {
                    field: "metadata.labels".into(),
                    message: format!("Invalid value: {value}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"),
                    reason: "FieldValueInvalid",
                }),
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
        assert!(is_dns_subdomain("web-1.example"));
        assert!(!is_dns_subdomain("Web"));
        assert!(!is_dns_subdomain("a..b"));
        assert!(is_dns_label("kube-system"));
        assert!(!is_dns_label("a.b"));
        assert!(!is_dns1035_label("1abc"));
        assert!(is_path_segment("system:node"));
        assert!(is_qualified_name("app.kubernetes.io/name"));
        assert!(!is_qualified_name("-bad"));
        assert!(is_label_value(""));
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
