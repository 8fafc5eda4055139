//! Label and field selectors as the Kubernetes API accepts them in `labelSelector` and
//! `fieldSelector` query parameters.

pub mod field;
pub mod label;

pub use field::FieldSelector;
pub use label::LabelSelector;
