//! CustomResourceDefinitions (`apiextensions.k8s.io/v1`) as pure functions over
//! `serde_json::Value`: everything the API server needs to accept a CRD and then serve its
//! custom resources.
//!
//! - [`validate_crd`] checks a CRD on create/update (names, versions, structural schemas,
//!   subresources, printer columns, immutable fields) with upstream's field errors;
//! - [`accepted_status`] computes `status` once accepted (`NamesAccepted`, `Established`,
//!   `acceptedNames`, `storedVersions`);
//! - [`resource_defs`] gives the [`k3rs_core::ResourceDef`]s to route and discover;
//! - [`version_info`] compiles one version's [`Schema`] to validate, prune and default custom
//!   objects, with its printer columns ([`table_columns`], [`column_value`]) and scale paths.
//!
//! No IO and no storage access here: the API server owns both and calls in.

mod columns;
mod defaults;
mod definition;
mod field_error;
pub mod jsonpath;
mod prune;
mod schema;
mod status;
mod structural;
mod validation;

pub use columns::{column_value, table_columns, PrinterColumn};
pub use definition::{
    apply_crd_defaults, resource_defs, spec_names, storage_version, version_info, Names,
    ScalePaths, VersionInfo,
};
pub use field_error::FieldError;
pub use jsonpath::{JsonPath, JsonPathError};
pub use schema::Schema;
pub use status::accepted_status;
pub use validation::validate_crd;

#[cfg(test)]
mod tests;
