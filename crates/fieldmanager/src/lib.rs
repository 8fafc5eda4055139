//! Server-side apply and `metadata.managedFields` for k3rs, the equivalent of
//! kube-apiserver's `fieldmanager` package over sigs.k8s.io/structured-merge-diff,
//! for objects held as `serde_json::Value`.
//!
//! [`apply`] merges an applied configuration into the live object, prunes
//! what the applier stopped applying and reports conflicts with other
//! managers; [`update`] records who changed what in ordinary writes;
//! [`upgrade_client_side_apply`] hands client-side `kubectl apply`'s fields to
//! a server-side applier. Field ownership is a [`FieldSet`] per
//! [`ManagedFieldsEntry`], encoded as FieldsV1.
//!
//! With no OpenAPI at runtime, list semantics come from a [`ListTypes`]: the
//! built-in table [`list_type`] or a caller's override (CRD schemas). Maps are
//! always granular. This crate is pure: no IO; the clock is read only to stamp
//! entries. Defaulting, subresource reset fields, validation and storage are
//! the API server's job.

mod apply;
mod fieldset;
mod managed;
mod merge;
mod path;
mod schema;
mod update;

pub use apply::{
    apply, apply_with_reset, status_reset_fields, upgrade_client_side_apply, ApplyError, Conflict,
    BEFORE_FIRST_APPLY_MANAGER, CLIENT_SIDE_APPLY_MANAGER, KUBECTL_MANAGER,
    LAST_APPLIED_ANNOTATION,
};
pub use fieldset::{stripped_fields, FieldSet};
pub use managed::{
    read_managed_fields, write_managed_fields, ManagedFieldsEntry, Operation,
    ANCIENT_CHANGES_MANAGER, FIELDS_V1, MAX_UPDATE_MANAGERS,
};
pub use merge::{compare, merge, remove_fields, Comparison};
pub use path::{compare_values, path_to_string, Path, PathElement};
pub use schema::{intern_key, list_type, BuiltinListTypes, ListType, ListTypes};
pub use update::{update, update_with_reset};

/// Errors decoding managedFields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A `fieldsV1` value that is not a valid field set.
    #[error("invalid fieldsV1: {0}")]
    InvalidFieldsV1(String),
    /// A managedFields entry that cannot be decoded.
    #[error("invalid managedFields entry: {0}")]
    InvalidEntry(String),
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
