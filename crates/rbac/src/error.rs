//! Errors met while resolving a binding's role or an aggregation rule. Their messages match
//! kube-apiserver's, because they reach users in Forbidden responses and rules reviews.

/// Why a binding's rules (or an aggregation rule) could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A RoleBinding references a Role missing from its namespace.
    #[error("role.rbac.authorization.k8s.io {name:?} not found")]
    RoleNotFound { namespace: String, name: String },
    /// A binding references a ClusterRole that does not exist.
    #[error("clusterrole.rbac.authorization.k8s.io {name:?} not found")]
    ClusterRoleNotFound { name: String },
    /// `roleRef.kind` is neither `Role` nor `ClusterRole`. (A ClusterRoleBinding naming a
    /// `Role` gets [`Error::RoleNotFound`], as upstream looks it up in namespace `""`.)
    #[error("unsupported role reference kind: {kind:?}")]
    UnsupportedRoleRefKind { kind: String },
    /// An `aggregationRule.clusterRoleSelectors` entry is not a valid label selector.
    #[error("clusterrole {cluster_role:?}: invalid clusterRoleSelectors[{index}]: {message}")]
    InvalidSelector {
        cluster_role: String,
        index: usize,
        message: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
