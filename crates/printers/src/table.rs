//! Assembling the `meta.k8s.io/v1` Table document: list metadata, column
//! definitions and one row per object with the requested object rendering
//! (`includeObject=None|Metadata|Object`).

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::printer::Printer;

/// The `object` field of a row for the given `includeObject` mode.
fn row_object(obj: &Value, include_object: &str) -> Value {
    match include_object {
        "None" => Value::Null,
        "Object" => obj.clone(),
        // "Metadata" is the default, also for unknown values.
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

/// See [`crate::table`].
pub(crate) fn build(
    group: &str,
    plural: &str,
    objects: &[Value],
    resource_version: &str,
    continue_token: Option<&str>,
    include_object: &str,
    now: DateTime<Utc>,
) -> Value {
    let printer = Printer::for_resource(group, plural);
    let mut metadata = Map::new();
    if !resource_version.is_empty() {
        metadata.insert("resourceVersion".into(), json!(resource_version));
    }
    if let Some(token) = continue_token.filter(|t| !t.is_empty()) {
        metadata.insert("continue".into(), json!(token));
    }
    let columns: Vec<Value> = printer.columns().iter().map(|c| c.to_json()).collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(printer.cells(obj, now)));
            if let Some(conditions) = printer.row_conditions(obj) {
                row.insert("conditions".into(), conditions);
            }
            row.insert("object".into(), row_object(obj, include_object));
            Value::Object(row)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}
