//! Server-side Table printing for k3rs: the column definitions and row cells
//! kube-apiserver returns when `kubectl get` asks for
//! `application/json;as=Table;v=v1;g=meta.k8s.io`, computed from objects in
//! their stored Kubernetes JSON shape.
//!
//! This crate is pure: no IO, no clock (callers pass `now`). Columns, their
//! order, priorities and cell formatting follow upstream
//! `pkg/printers/internalversion`; like upstream's server-side convertor, every
//! row carries the wide (priority 1) cells too and kubectl decides what to show.
//! Resources without a dedicated printer get the default NAME and CREATED AT.

mod cluster;
mod columns;
mod config;
mod duration;
mod event;
mod fields;
mod ingress;
mod node;
mod pod;
mod printer;
mod rbac;
mod selector;
mod service;
mod storage;
mod table;
mod workload;

#[cfg(test)]
mod tests;

pub use columns::Column;
pub use duration::human_duration;

use printer::Printer;

/// Columns for a resource identified by API group ("" = core) and plural.
/// Unknown resources get the default NAME + AGE (Created At) columns, like
/// upstream's default table convertor.
pub fn columns(group: &str, plural: &str) -> Vec<Column> {
    Printer::for_resource(group, plural).columns()
}

/// Cells for one object, aligned with [`columns`]; values are JSON strings,
/// integers or booleans. `now` is the time used to compute AGE etc.
pub fn cells(
    group: &str,
    plural: &str,
    obj: &serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<serde_json::Value> {
    Printer::for_resource(group, plural).cells(obj, now)
}

/// Build the full meta.k8s.io/v1 Table JSON:
/// `{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":..,"continue":..},
/// "columnDefinitions":[{name,type,format,description,priority}],"rows":[{"cells":[..],"object":..}]}`.
///
/// `include_object`: "None" (object is null) | "Metadata" (default; a
/// PartialObjectMetadata) | "Object" (the full object). Empty
/// `resource_version` and continue tokens are omitted, as upstream does.
pub fn table(
    group: &str,
    plural: &str,
    objects: &[serde_json::Value],
    resource_version: &str,
    continue_token: Option<&str>,
    include_object: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> serde_json::Value {
    table::build(
        group,
        plural,
        objects,
        resource_version,
        continue_token,
        include_object,
        now,
    )
}
