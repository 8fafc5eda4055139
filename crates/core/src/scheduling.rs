//! Scheduling rules shared by the API server's admission and the controllers, as pure
//! functions over the core/v1 types: today, whether a toleration tolerates a taint.

use k8s_openapi::api::core::v1::{Taint, Toleration};

/// Upstream's `Toleration.ToleratesTaint`: the same effect (or any, when the toleration
/// names none), the same key (or any, when the toleration's key is empty, which
/// validation allows only with `Exists`), and the value as the operator says (`Equal`,
/// the default, compares values; `Exists` matches any value). An unknown operator
/// tolerates nothing.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or_default() {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn toleration(v: serde_json::Value) -> Toleration {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn tolerations_follow_upstream_rules() {
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoSchedule".into(),
            time_added: None,
        };
        let tol = |v| tolerates(&toleration(v), &taint);
        assert!(tol(
            json!({"key": "k", "value": "v", "effect": "NoSchedule"})
        ));
        assert!(tol(json!({"key": "k", "operator": "Equal", "value": "v"})));
        assert!(tol(json!({"key": "k", "operator": "Exists"})));
        assert!(tol(json!({"operator": "Exists"})));
        assert!(tol(json!({"operator": "Exists", "effect": "NoSchedule"})));
        assert!(!tol(json!({"key": "k", "value": "w"})));
        assert!(!tol(json!({"key": "k"})));
        assert!(!tol(
            json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})
        ));
        assert!(!tol(json!({"key": "other", "operator": "Exists"})));
        assert!(!tol(json!({"key": "k", "operator": "Gt", "value": "v"})));
    }

    #[test]
    fn a_taint_without_value_matches_an_equal_toleration_without_value() {
        let taint = Taint {
            key: "node.kubernetes.io/not-ready".into(),
            value: None,
            effect: "NoExecute".into(),
            time_added: None,
        };
        assert!(tolerates(
            &toleration(json!({"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"})),
            &taint
        ));
        assert!(!tolerates(
            &toleration(json!({"key": "node.kubernetes.io/not-ready", "value": "x"})),
            &taint
        ));
    }
}
