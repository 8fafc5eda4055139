//! Authorization: `system:masters` passes (as kube-apiserver's privileged-group
//! authorizer), kubelets meet the node rules first ([`crate::node_authz`]), and
//! everyone is checked against RBAC. The policy is an in-memory
//! snapshot of the four RBAC kinds, rebuilt whenever the store reports a change to them,
//! so a request never reads the datastore to be authorized.

use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::Method;
use k3rs_rbac::{Attributes, Decision, Policy};
use serde_json::{json, Value};
use tracing::{debug, info};

use crate::auth::Identity;
use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::path;
use crate::AppState;

const RBAC_PREFIX: &str = "/registry/rbac.authorization.k8s.io/";

/// What a request asks to do, in authorizer terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestAttributes {
    pub verb: String,
    pub resource_request: bool,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub path: String,
}

impl RequestAttributes {
    /// Derive the attributes from method, path and query, as upstream's request-info
    /// resolver does.
    pub fn from_request(method: &Method, uri_path: &str, query: Option<&str>) -> Self {
        let Some(p) = path::parse(uri_path) else {
            return RequestAttributes {
                verb: method.as_str().to_ascii_lowercase(),
                path: uri_path.to_string(),
                ..Default::default()
            };
        };
        let watch = p.legacy_watch
            || query.is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
        let verb = match (method, p.name.is_some()) {
            (&Method::GET, _) if watch => "watch",
            (&Method::GET, false) => "list",
            (&Method::GET, true) => "get",
            (&Method::POST, _) => "create",
            (&Method::PUT, _) => "update",
            (&Method::PATCH, _) => "patch",
            (&Method::DELETE, false) => "deletecollection",
            (&Method::DELETE, true) => "delete",
            _ => "unknown",
        };
        RequestAttributes {
            verb: verb.into(),
            resource_request: true,
            group: p.group,
            resource: p.plural,
            subresource: p.subresource.unwrap_or_default(),
            namespace: p.namespace.unwrap_or_default(),
            name: p.name.unwrap_or_default(),
            path: uri_path.to_string(),
        }
    }

    /// The forbidden message upstream prints for this request.
    pub fn forbidden(&self, user: &str, reason: &str) -> ApiError {
        let suffix = if reason.is_empty() {
            String::new()
        } else {
            format!(": {reason}")
        };
        if !self.resource_request {
            return ApiError::forbidden(format!(
                "forbidden: User \"{user}\" cannot {} path \"{}\"{suffix}",
                self.verb, self.path
            ));
        }
        let qualified = if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        let subject = if self.name.is_empty() {
            qualified
        } else {
            format!("{qualified} \"{}\"", self.name)
        };
        let resource = if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        };
        let scope = if self.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{}\"", self.namespace)
        };
        ApiError::forbidden(format!(
            "{subject} is forbidden: User \"{user}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}{suffix}",
            self.verb, self.group
        ))
    }
}

/// The RBAC snapshot and the decision procedure.
pub struct Authorizer {
    policy: RwLock<Arc<Policy>>,
}

impl Authorizer {
    pub fn empty() -> Self {
        Authorizer {
            policy: RwLock::new(Arc::new(Policy::new(vec![], vec![], vec![], vec![]))),
        }
    }

    pub fn authorize(&self, user: &str, groups: &[String], attrs: &RequestAttributes) -> Decision {
        if groups.iter().any(|g| g == "system:masters") {
            return Decision::Allow {
                reason: "member of system:masters".into(),
            };
        }
        let resource = if attrs.subresource.is_empty() {
            attrs.resource.clone()
        } else {
            format!("{}/{}", attrs.resource, attrs.subresource)
        };
        let a = if attrs.resource_request {
            Attributes::resource(
                user,
                groups,
                &attrs.verb,
                &attrs.group,
                &resource,
                &attrs.namespace,
                &attrs.name,
            )
        } else {
            Attributes::non_resource(user, groups, &attrs.verb, &attrs.path)
        };
        self.policy.read().expect("policy lock").authorize(&a)
    }

    pub fn policy(&self) -> Arc<Policy> {
        self.policy.read().expect("policy lock").clone()
    }

    /// Rebuild the snapshot from the store.
    pub async fn reload(&self, state: &AppState) -> ApiResult<i64> {
        let mut lists: Vec<Vec<Value>> = Vec::new();
        let mut revision = 0;
        for plural in [
            "roles",
            "clusterroles",
            "rolebindings",
            "clusterrolebindings",
        ] {
            let def = state
                .find(k3rs_rbac::RBAC_GROUP, "v1", plural)
                .expect("RBAC kinds are built in");
            let page = state.store.list(&def, None, None, None, None).await?;
            revision = revision.max(page.revision);
            lists.push(page.items);
        }
        let [roles, mut cluster_roles, role_bindings, bindings]: [Vec<Value>; 4] =
            lists.try_into().expect("four lists");
        // Aggregated ClusterRoles get their rules here, and they are written back so that
        // `kubectl get clusterrole` shows them (upstream's aggregation controller).
        let cluster_role_def = state
            .find(k3rs_rbac::RBAC_GROUP, "v1", "clusterroles")
            .expect("built in");
        for before in apply_aggregation(&mut cluster_roles) {
            let name = object::name(&before).unwrap_or_default();
            let Some(after) = cluster_roles.iter().find(|r| object::name(r) == Some(name)) else {
                continue;
            };
            let rv = object::meta_str(&before, "resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if let Err(e) = state.store.update(&cluster_role_def, None, after, rv).await {
                // Another writer got there first; the next reload retries.
                debug!(error = %e, role = name, "writing aggregated rules");
            }
        }
        let policy = Policy::new(roles, cluster_roles, role_bindings, bindings);
        *self.policy.write().expect("policy lock") = Arc::new(policy);
        Ok(revision)
    }
}

/// Keep the snapshot current: reload after every burst of RBAC changes.
pub fn spawn_refresh(state: AppState, revision: i64) {
    crate::resync::spawn(
        state,
        RBAC_PREFIX,
        revision,
        "RBAC policy",
        |state| async move { state.authorizer.reload(&state).await },
    );
}

/// Create the default roles and bindings that are missing (existing ones are left alone,
/// so an administrator's changes survive restarts). Aggregated roles are written with
/// their aggregated rules.
pub async fn ensure_default_policy(state: &AppState) -> ApiResult<()> {
    let (mut cluster_roles, bindings) = k3rs_rbac::bootstrap_policy();
    apply_aggregation(&mut cluster_roles);
    let mut created = 0;
    for (plural, objects) in [
        ("clusterroles", cluster_roles),
        ("clusterrolebindings", bindings),
    ] {
        let def = state
            .find(k3rs_rbac::RBAC_GROUP, "v1", plural)
            .expect("built in");
        for obj in objects {
            if crate::bootstrap::ensure_object(state, &def, None, obj).await? {
                created += 1;
            }
        }
    }
    if created > 0 {
        info!(created, "created default RBAC roles and bindings");
    }
    Ok(())
}

/// Give aggregated ClusterRoles their aggregated rules in place; returns the roles that
/// changed, as they were before, so a caller can write the new rules back.
fn apply_aggregation(cluster_roles: &mut [Value]) -> Vec<Value> {
    let mut previous = Vec::new();
    for aggregated in k3rs_rbac::aggregate(cluster_roles) {
        let name = object::name(&aggregated).map(str::to_string);
        if let Some(slot) = cluster_roles
            .iter_mut()
            .find(|r| object::name(r).map(str::to_string) == name)
        {
            previous.push(std::mem::replace(slot, aggregated));
        }
    }
    previous
}

/// Middleware: 403 unless the caller may do what the request asks.
pub async fn require_authorization(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(identity) = req.extensions().get::<Identity>().cloned() else {
        // Unauthenticated requests only reach here for public paths.
        return next.run(req).await;
    };
    // The access log worked them out already (it wraps every request).
    let attrs = match req.extensions().get::<RequestAttributes>() {
        Some(attrs) => attrs.clone(),
        None => RequestAttributes::from_request(req.method(), req.uri().path(), req.uri().query()),
    };
    let decision = match crate::node_authz::check(&state, &identity, &attrs).await {
        Ok(crate::node_authz::Verdict::Defer) => {
            state
                .authorizer
                .authorize(&identity.user, &identity.groups, &attrs)
        }
        Ok(crate::node_authz::Verdict::Allow) => Decision::Allow {
            reason: "node authorizer".into(),
        },
        Ok(crate::node_authz::Verdict::Deny(reason)) => Decision::Deny { reason },
        Err(err) => return err.into_response(),
    };
    match decision {
        Decision::Allow { .. } => next.run(req).await,
        Decision::Deny { reason } => {
            debug!(user = %identity.user, verb = %attrs.verb, path = %attrs.path, "forbidden");
            let mut err = attrs.forbidden(&identity.user, &reason);
            if attrs.resource_request {
                err.details =
                    Some(json!({"name": attrs.name, "group": attrs.group, "kind": attrs.resource}));
            }
            err.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_of_requests() {
        let a = RequestAttributes::from_request(
            &Method::GET,
            "/api/v1/namespaces/default/pods",
            Some("watch=true"),
        );
        assert_eq!(
            (a.verb.as_str(), a.resource.as_str(), a.namespace.as_str()),
            ("watch", "pods", "default")
        );
        let a = RequestAttributes::from_request(
            &Method::DELETE,
            "/apis/apps/v1/namespaces/x/deployments",
            None,
        );
        assert_eq!(a.verb, "deletecollection");
        let a = RequestAttributes::from_request(&Method::GET, "/version", None);
        assert!(!a.resource_request);
        assert_eq!(a.verb, "get");
        let a = RequestAttributes::from_request(
            &Method::POST,
            "/api/v1/namespaces/d/serviceaccounts/sa/token",
            None,
        );
        assert_eq!(
            (a.verb.as_str(), a.subresource.as_str()),
            ("create", "token")
        );
    }

    #[test]
    fn forbidden_messages_match_upstream() {
        let a = RequestAttributes::from_request(
            &Method::GET,
            "/api/v1/namespaces/default/pods/web",
            None,
        );
        assert_eq!(
            a.forbidden("bob", "").message,
            "pods \"web\" is forbidden: User \"bob\" cannot get resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        let a = RequestAttributes::from_request(&Method::GET, "/api/v1/nodes", None);
        assert_eq!(
            a.forbidden("bob", "").message,
            "nodes is forbidden: User \"bob\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
        );
    }

    #[test]
    fn masters_bypass_rbac() {
        let authz = Authorizer::empty();
        let attrs = RequestAttributes::from_request(&Method::GET, "/api/v1/nodes", None);
        assert!(authz
            .authorize("admin", &["system:masters".into()], &attrs)
            .is_allowed());
        assert!(!authz
            .authorize("bob", &["system:authenticated".into()], &attrs)
            .is_allowed());
    }
}
