//! Label selectors as the workload controllers apply them to pods and ReplicaSets.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `labels` satisfy `selector` (an empty selector selects everything; callers
/// that must not select everything check [`is_empty`] first).
pub fn matches(selector: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    crate::matching::selector_matches(selector, labels.unwrap_or(&empty))
}

/// A selector without requirements.
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn selector(v: serde_json::Value) -> LabelSelector {
        serde_json::from_value(v).unwrap()
    }

    fn labels(v: serde_json::Value) -> BTreeMap<String, String> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn labels_and_expressions() {
        let s = selector(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
            ],
        }));
        assert!(matches(
            &s,
            Some(&labels(json!({"app": "web", "tier": "a"})))
        ));
        assert!(!matches(
            &s,
            Some(&labels(json!({"app": "web", "tier": "c"})))
        ));
        assert!(!matches(
            &s,
            Some(&labels(json!({"app": "web", "tier": "a", "canary": "1"})))
        ));
        assert!(!matches(
            &s,
            Some(&labels(json!({"app": "web", "tier": "a", "env": "prod"})))
        ));
        assert!(!matches(&s, None));
        assert!(is_empty(&selector(json!({}))));
        assert!(!is_empty(&s));
    }
}
