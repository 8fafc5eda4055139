//! The review APIs: create-only, never stored. TokenReview (is this token valid, and
//! whose is it?), SubjectAccessReview and its local/self variants (may this user do
//! that?), SelfSubjectRulesReview (`kubectl auth can-i --list`) and SelfSubjectReview
//! (`kubectl auth whoami`).

use std::sync::Arc;

use k3rs_core::{ResourceDef, Scope};
use serde_json::{json, Value};

use crate::auth::Identity;
use crate::authz::RequestAttributes;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

const AUTHN: &str = "authentication.k8s.io";
const AUTHZ: &str = "authorization.k8s.io";

/// Resource definitions of the review kinds, for routing and discovery.
pub fn resource_defs() -> Vec<ResourceDef> {
    let def = |group: &str, kind: &str, plural: &str, scope: Scope| ResourceDef {
        group: group.into(),
        version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        scope,
        verbs: vec!["create".into()],
        short_names: vec![],
        categories: vec![],
        has_status: false,
        has_scale: false,
        storage_group: group.into(),
    };
    vec![
        def(AUTHN, "TokenReview", "tokenreviews", Scope::Cluster),
        def(
            AUTHN,
            "SelfSubjectReview",
            "selfsubjectreviews",
            Scope::Cluster,
        ),
        def(
            AUTHZ,
            "SubjectAccessReview",
            "subjectaccessreviews",
            Scope::Cluster,
        ),
        def(
            AUTHZ,
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            Scope::Cluster,
        ),
        def(
            AUTHZ,
            "LocalSubjectAccessReview",
            "localsubjectaccessreviews",
            Scope::Namespaced,
        ),
        def(
            AUTHZ,
            "SelfSubjectRulesReview",
            "selfsubjectrulesreviews",
            Scope::Cluster,
        ),
    ]
}

/// Whether `def` is one of the review kinds served by [`create`].
pub fn is_review(def: &ResourceDef) -> bool {
    (def.group == AUTHN || def.group == AUTHZ) && def.plural.ends_with("reviews")
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn str_of<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Attributes of a SubjectAccessReview spec.
fn review_attributes(spec: &Value, namespace_override: Option<&str>) -> RequestAttributes {
    if let Some(r) = spec.get("resourceAttributes").filter(|r| r.is_object()) {
        RequestAttributes {
            verb: str_of(r, "/verb").to_string(),
            resource_request: true,
            group: str_of(r, "/group").to_string(),
            resource: str_of(r, "/resource").to_string(),
            subresource: str_of(r, "/subresource").to_string(),
            namespace: namespace_override
                .unwrap_or(str_of(r, "/namespace"))
                .to_string(),
            name: str_of(r, "/name").to_string(),
            path: String::new(),
        }
    } else {
        RequestAttributes {
            verb: str_of(spec, "/nonResourceAttributes/verb").to_string(),
            path: str_of(spec, "/nonResourceAttributes/path").to_string(),
            ..Default::default()
        }
    }
}

fn access_status(
    state: &AppState,
    user: &str,
    groups: &[String],
    attrs: &RequestAttributes,
) -> Value {
    let decision = state.authorizer.authorize(user, groups, attrs);
    let mut status = json!({"allowed": decision.is_allowed()});
    if !decision.reason().is_empty() {
        status["reason"] = json!(decision.reason());
    }
    status
}

/// Answer a review. `caller` is the authenticated user making the request.
pub async fn create(
    state: &AppState,
    def: &Arc<ResourceDef>,
    namespace: Option<&str>,
    caller: &Identity,
    mut review: Value,
) -> ApiResult<Value> {
    let spec = review.get("spec").cloned().unwrap_or(json!({}));
    let status = match def.plural.as_str() {
        "tokenreviews" => {
            let token = str_of(&spec, "/token");
            let audiences = strings(spec.get("audiences"));
            match crate::auth::authenticate_token(state, token, &audiences).await {
                Some((id, token_audiences)) => json!({
                    "authenticated": true,
                    "user": id.user_info(),
                    "audiences": token_audiences,
                }),
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            }
        }
        "selfsubjectreviews" => {
            json!({"userInfo": caller.user_info()})
        }
        "subjectaccessreviews" | "localsubjectaccessreviews" => {
            let user = str_of(&spec, "/user");
            let groups = strings(spec.get("groups"));
            if user.is_empty() && groups.is_empty() {
                return Err(ApiError::invalid(
                    &def.kind,
                    "",
                    vec![crate::error::FieldCause {
                        field: "spec.user".into(),
                        message:
                            "Invalid value: \"\": at least one of user or group must be specified"
                                .into(),
                        reason: "FieldValueInvalid",
                    }],
                ));
            }
            access_status(state, user, &groups, &review_attributes(&spec, namespace))
        }
        "selfsubjectaccessreviews" => access_status(
            state,
            &caller.user,
            &caller.groups,
            &review_attributes(&spec, None),
        ),
        "selfsubjectrulesreviews" => {
            let ns = str_of(&spec, "/namespace");
            let policy = state.authorizer.policy();
            let mut status = policy
                .rules_review(&caller.user, &caller.groups, ns)
                .to_status();
            if caller.groups.iter().any(|g| g == "system:masters") {
                status["resourceRules"] =
                    json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]);
                status["nonResourceRules"] = json!([{"verbs": ["*"], "nonResourceURLs": ["*"]}]);
            }
            status
        }
        other => {
            return Err(ApiError::method_not_allowed(format!(
                "{other} cannot be created"
            )))
        }
    };
    review["apiVersion"] = json!(def.api_version());
    review["kind"] = json!(def.kind);
    if !review.get("metadata").is_some_and(Value::is_object) {
        review["metadata"] = json!({});
    }
    review["metadata"]["creationTimestamp"] = Value::Null;
    review["status"] = status;
    Ok(review)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_attributes_from_spec() {
        let spec =
            json!({"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "a"}});
        let a = review_attributes(&spec, Some("b"));
        assert_eq!(
            (a.verb.as_str(), a.resource.as_str(), a.namespace.as_str()),
            ("list", "pods", "b")
        );
        let spec = json!({"nonResourceAttributes": {"verb": "get", "path": "/healthz"}});
        let a = review_attributes(&spec, None);
        assert!(!a.resource_request);
        assert_eq!(a.path, "/healthz");
        assert!(resource_defs().iter().all(is_review));
    }
}
