//! Label and field selectors applied to objects of one resource, with the per-kind list of
//! fields that upstream allows in field selectors.

use k3rs_core::selector::{FieldSelector, LabelSelector};
use k3rs_core::ResourceDef;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::query::Params;

/// Fields a kind may be selected by, beyond `metadata.name` and `metadata.namespace`.
fn extra_fields(def: &ResourceDef) -> &'static [&'static str] {
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("events.k8s.io", "events") => &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
        ("", "secrets") => &["type"],
        ("", "nodes") => &["spec.unschedulable"],
        ("", "namespaces") => &["status.phase"],
        ("", "services") => &["spec.clusterIP", "spec.type"],
        ("apps", "replicasets") => &["status.replicas"],
        ("batch", "jobs") => &["status.successful"],
        _ => &[],
    }
}

#[derive(Clone, Debug)]
pub struct Filter {
    label: LabelSelector,
    field: FieldSelector,
}

impl Filter {
    /// The selectors of a request; 400 for a field the kind cannot be selected by.
    pub fn new(def: &ResourceDef, params: &Params) -> ApiResult<Filter> {
        let allowed = extra_fields(def);
        for field in params.field_selector.fields() {
            if field != "metadata.name"
                && field != "metadata.namespace"
                && !allowed.contains(&field)
            {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
        }
        Ok(Filter {
            label: params.label_selector.clone(),
            field: params.field_selector.clone(),
        })
    }

    pub fn is_everything(&self) -> bool {
        self.label.is_empty() && self.field.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if !self.label.matches(object::labels(obj)) {
            return false;
        }
        self.field.matches(&|path: &str| match path {
            // Events are selected by `source` meaning the reporting component.
            "source" => object::field_string(obj, "source.component"),
            "metadata.namespace" => Some(object::namespace(obj).unwrap_or("").to_string()),
            other => object::field_string(obj, other),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_by_node_and_label() {
        let pods = k3rs_core::resource::find("", "v1", "pods").unwrap();
        let params = Params::parse(Some(
            "fieldSelector=spec.nodeName%3Dn1&labelSelector=app%3Dweb",
        ))
        .unwrap();
        let f = Filter::new(pods, &params).unwrap();
        let pod = json!({"metadata": {"name": "a", "labels": {"app": "web"}}, "spec": {"nodeName": "n1"}});
        assert!(f.matches(&pod));
        let other = json!({"metadata": {"name": "a", "labels": {"app": "web"}}, "spec": {"nodeName": "n2"}});
        assert!(!f.matches(&other));
    }

    #[test]
    fn unsupported_fields_are_rejected() {
        let cms = k3rs_core::resource::find("", "v1", "configmaps").unwrap();
        let params = Params::parse(Some("fieldSelector=spec.nodeName%3Dn1")).unwrap();
        let err = Filter::new(cms, &params).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err
            .message
            .contains("field label not supported: spec.nodeName"));
    }
}
