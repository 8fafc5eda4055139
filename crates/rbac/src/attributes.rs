//! What is being asked ([`Attributes`], upstream's `authorizer.Attributes`) and the answer
//! ([`Decision`]).

/// One request to authorize, as the API server's request-info filter describes it.
///
/// For resource requests, `verb` is the API verb (`get`, `list`, `watch`, `create`, `update`,
/// `patch`, `delete`, `deletecollection`, or a special verb such as `impersonate`, `bind`,
/// `escalate`, `approve`). For non-resource requests (`resource_request == false`) it is the
/// lowercased HTTP method and only `path` matters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attributes<'a> {
    /// Authenticated user name, e.g. `alice` or `system:serviceaccount:default:builder`.
    pub user: &'a str,
    /// The user's groups, e.g. `system:authenticated`, `system:serviceaccounts:default`.
    pub groups: &'a [String],
    /// API verb, or lowercased HTTP method for non-resource requests.
    pub verb: &'a str,
    /// `true` for `/api/...` and `/apis/...` resource requests.
    pub resource_request: bool,
    /// API group, `""` for the core group.
    pub api_group: &'a str,
    /// Resource plural, e.g. `pods`.
    pub resource: &'a str,
    /// Subresource, e.g. `log`; `""` for none.
    pub subresource: &'a str,
    /// Namespace of the request, `""` for cluster scope (and for all-namespace lists).
    pub namespace: &'a str,
    /// Object name, `""` when the request names none (create, list, watch, deletecollection).
    pub name: &'a str,
    /// Request path, used for non-resource requests (e.g. `/version`, `/healthz`).
    pub path: &'a str,
}

impl<'a> Attributes<'a> {
    /// A resource request; `resource` may be `pods` or `pods/log` (split at the first `/`).
    pub fn resource(
        user: &'a str,
        groups: &'a [String],
        verb: &'a str,
        api_group: &'a str,
        resource: &'a str,
        namespace: &'a str,
        name: &'a str,
    ) -> Self {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        Attributes {
            user,
            groups,
            verb,
            resource_request: true,
            api_group,
            resource,
            subresource,
            namespace,
            name,
            path: "",
        }
    }

    /// A non-resource request (`verb` is the lowercased HTTP method).
    pub fn non_resource(user: &'a str, groups: &'a [String], verb: &'a str, path: &'a str) -> Self {
        Attributes {
            user,
            groups,
            verb,
            path,
            ..Attributes::default()
        }
    }
}

/// The authorizer's answer. `Deny` means "RBAC has no rule allowing this" (upstream's
/// `DecisionNoOpinion`); another authorizer in a chain may still allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; `reason` names the binding, role and subject, as upstream:
    /// `RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters"`.
    Allow { reason: String },
    /// Not allowed. Like upstream, `reason` is empty unless resolving the user's bindings
    /// failed (e.g. `RBAC: clusterrole.rbac.authorization.k8s.io "foo" not found`); the API
    /// server appends a non-empty reason to its Forbidden message after `": "`.
    Deny { reason: String },
}

impl Decision {
    /// `true` for [`Decision::Allow`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The reason string of either variant.
    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow { reason } | Decision::Deny { reason } => reason,
        }
    }
}
