//! Role-based access control for k3rs, as kube-apiserver's RBAC authorizer does it.
//!
//! This crate is pure: no IO, no clock, no logging. Roles, ClusterRoles, RoleBindings and
//! ClusterRoleBindings come in as `serde_json::Value`s in their Kubernetes JSON shape; the
//! API server keeps them current (from its store or watch cache) and rebuilds a [`Policy`]
//! snapshot when they change. Decisions follow upstream
//! `plugin/pkg/auth/authorizer/rbac`: deny unless some binding whose subjects match the
//! user references a role with a matching rule.
//!
//! What this crate must not do: special-case `system:masters` (the API server lets that
//! group through before asking RBAC, as kube-apiserver's privileged-group authorizer does),
//! or write anything. [`aggregate`] computes what the ClusterRole aggregation controller
//! must write; [`bootstrap_policy`] is the default policy the API server creates at start.
//!
//! Modules: [`attributes`] (the question and the answer), [`rule`] (one PolicyRule and its
//! matching), [`subject`] (who a binding names), [`policy`] (the indexed snapshot and the
//! decision), [`aggregate`] (aggregationRule resolution), [`bootstrap`] (the default roles
//! and bindings), [`error`] (role resolution errors, worded as upstream's).

pub mod aggregate;
pub mod attributes;
pub mod bootstrap;
pub mod error;
pub mod policy;
pub mod rule;
pub mod subject;

pub use aggregate::aggregate;
pub use attributes::{Attributes, Decision};
pub use bootstrap::bootstrap_policy;
pub use error::{Error, Result};
pub use policy::{Policy, RulesReview};
pub use rule::Rule;
pub use subject::Subject;

/// API group of the RBAC kinds (`rbac.authorization.k8s.io`).
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

#[cfg(test)]
mod tests;
