//! The protobuf schema of every Kubernetes message, generated at build time.
//!
//! `build.rs` reads the prost structs of `k8s-pb` (field numbers, types, labels) and the
//! serde code of `k8s-openapi` (exact JSON names) and writes a static table; this module
//! includes it and answers "which message is `apps/v1, Kind=Deployment`". It holds no
//! decoding logic.

/// Protobuf scalar type of a field, or the message it refers to.
// The generated table uses only the types Kubernetes uses today; the rest keep the
// decoder complete for any proto2 scalar.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueType {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Float,
    Double,
    /// Index into [`MESSAGES`].
    Message(u16),
}

/// How many values a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Single,
    Repeated,
    /// `map<key, value>`: repeated entries {1: key, 2: value}.
    Map(ValueType),
}

/// One field of a message.
#[derive(Debug)]
pub(crate) struct FieldSchema {
    pub(crate) number: u32,
    pub(crate) json_name: &'static str,
    pub(crate) shape: Shape,
    pub(crate) value: ValueType,
    /// An optional Go string field: Go's `omitempty` drops `""`, and the Go protobuf
    /// encoder writes non-pointer strings even when empty, so `""` is dropped too.
    pub(crate) omit_empty_string: bool,
    /// Go embeds this message with `json:",inline"`: its fields go into the parent object.
    pub(crate) inline: bool,
}

/// One message: its full protobuf name and its fields (a range of [`FIELDS`], sorted by
/// number).
#[derive(Debug)]
pub(crate) struct MessageSchema {
    pub(crate) name: &'static str,
    first_field: usize,
    field_count: usize,
}

impl MessageSchema {
    pub(crate) fn fields(&self) -> &'static [FieldSchema] {
        FIELDS
            .get(self.first_field..self.first_field + self.field_count)
            .unwrap_or_default()
    }

    pub(crate) fn field(&self, number: u32) -> Option<&'static FieldSchema> {
        let fields = self.fields();
        fields
            .binary_search_by_key(&number, |f| f.number)
            .ok()
            .map(|i| &fields[i])
    }
}

// Short names keep the generated table small.
use Shape as S;
use ValueType as V;

include!(concat!(env!("OUT_DIR"), "/schema_table.rs"));

/// Index of [`MESSAGES`] entry with this full name (`k8s.io.api.core.v1.Pod`).
pub(crate) fn message_index(full_name: &str) -> Option<u16> {
    MESSAGES
        .binary_search_by(|m| m.name.cmp(full_name))
        .ok()
        .and_then(|i| u16::try_from(i).ok())
}

pub(crate) fn message(index: u16) -> &'static MessageSchema {
    &MESSAGES[usize::from(index)]
}

/// The protobuf package (without version) that holds an API group's types.
fn group_package(group: &str) -> String {
    match group {
        "" => "api.core".to_string(),
        "meta.k8s.io" => "apimachinery.pkg.apis.meta".to_string(),
        "apiextensions.k8s.io" => "apiextensions_apiserver.pkg.apis.apiextensions".to_string(),
        "apiregistration.k8s.io" => "kube_aggregator.pkg.apis.apiregistration".to_string(),
        "rbac.authorization.k8s.io" => "api.rbac".to_string(),
        "internal.apiserver.k8s.io" => "api.apiserverinternal".to_string(),
        "metrics.k8s.io" => "metrics.pkg.apis.metrics".to_string(),
        "custom.metrics.k8s.io" => "metrics.pkg.apis.custom_metrics".to_string(),
        "external.metrics.k8s.io" => "metrics.pkg.apis.external_metrics".to_string(),
        "testapigroup.apimachinery.k8s.io" => "apimachinery.pkg.apis.testapigroup".to_string(),
        other => format!("api.{}", other.split('.').next().unwrap_or(other)),
    }
}

/// Finds the message for an `apiVersion` and `kind`.
///
/// Options kinds (`DeleteOptions`, `ListOptions`, ...) are registered in every group
/// version but defined once in `meta.k8s.io/v1`, so a kind missing from the group's
/// package is looked up there.
pub(crate) fn message_for_kind(api_version: &str, kind: &str) -> Option<u16> {
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let package = group_package(group);
    message_index(&format!("k8s.io.{package}.{version}.{kind}"))
        .or_else(|| message_index(&format!("k8s.io.apimachinery.pkg.apis.meta.v1.{kind}")))
}
