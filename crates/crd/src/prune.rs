//! Structural pruning: drop every field the schema does not specify, as the API server does
//! before storing a custom object. `apiVersion`, `kind` and `metadata` survive at the root and
//! in embedded resources; `x-kubernetes-preserve-unknown-fields` keeps unknown fields but
//! still prunes inside the fields it does specify. The dropped paths are returned so the
//! server can report them for `fieldValidation=Strict|Warn`.

use crate::field_error::Path;
use crate::schema::{Additional, Node, Schema};
use serde_json::Value;

/// `apiVersion`/`kind` strings and the `metadata` object of a resource.
fn is_meta_field(key: &str, value: &Value) -> bool {
    match key {
        "apiVersion" | "kind" => value.is_string(),
        "metadata" => value.is_object(),
        _ => false,
    }
}

impl Schema {
    /// Remove fields not in the schema, returning the removed paths
    /// (`spec.unknown`, `spec.items[0].extra`) in document order.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        let mut pruned = Vec::new();
        prune(obj, Some(&self.root), &Path::root(), true, &mut pruned);
        pruned
    }
}

fn additional_schema(node: &Node) -> Option<Option<&Node>> {
    match &node.additional {
        Some(Additional::Schema(s)) => Some(Some(s)),
        // `additionalProperties: true` without a schema: values are kept but, having no
        // schema, everything inside them is pruned (upstream behaviour).
        Some(Additional::Allowed(true)) => Some(None),
        _ => None,
    }
}

fn prune(v: &mut Value, node: Option<&Node>, path: &Path, is_root: bool, pruned: &mut Vec<String>) {
    if let Some(n) = node {
        if n.preserve_unknown {
            skip_prune(v, n, path, pruned);
            return;
        }
    }
    match v {
        Value::Object(map) => {
            let Some(n) = node else {
                for k in map.keys() {
                    pruned.push(path.child(k).to_field());
                }
                map.clear();
                return;
            };
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let child = path.child(&k);
                if (is_root || n.embedded) && is_meta_field(&k, &map[&k]) {
                    // ObjectMeta is pruned by its own decoder, type fields are never pruned.
                    continue;
                }
                if let Some(prop) = n.properties.get(&k) {
                    prune(map.get_mut(&k).unwrap(), Some(prop), &child, false, pruned);
                } else if let Some(add) = additional_schema(n) {
                    prune(map.get_mut(&k).unwrap(), add, &child, false, pruned);
                } else {
                    pruned.push(child.to_field());
                    map.shift_remove(&k);
                }
            }
        }
        Value::Array(items) => {
            let item_schema = node.and_then(|n| n.items.as_deref());
            for (i, item) in items.iter_mut().enumerate() {
                let embedded = item_schema.is_some_and(|s| s.embedded);
                prune(item, item_schema, &path.index(i), embedded, pruned);
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields`: keep unknown fields, prune inside known ones.
fn skip_prune(v: &mut Value, node: &Node, path: &Path, pruned: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if node.embedded && is_meta_field(k, child) {
                    continue;
                }
                let p = path.child(k);
                if let Some(prop) = node.properties.get(k) {
                    prune(child, Some(prop), &p, false, pruned);
                } else if let Some(Additional::Schema(s)) = &node.additional {
                    prune(child, Some(s), &p, false, pruned);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = node.items.as_deref() {
                for (i, item) in items.iter_mut().enumerate() {
                    skip_prune(item, item_schema, &path.index(i), pruned);
                }
            }
        }
        _ => {}
    }
}
