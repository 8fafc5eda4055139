//! Structural defaulting: a property with a `default` is filled in when its parent object is
//! present and the property is missing (or `null` while not nullable). Defaults never create
//! parents on the way, but a defaulted object is itself defaulted further, as upstream.

use crate::schema::{Additional, Node, Schema};
use serde_json::Value;

impl Schema {
    /// Apply `default` values from the schema to `obj` in place.
    pub fn apply_defaults(&self, obj: &mut Value) {
        apply(obj, &self.root);
    }
}

fn apply(v: &mut Value, node: &Node) {
    match v {
        Value::Object(map) => {
            for (k, prop) in &node.properties {
                let Some(default) = &prop.default else {
                    continue;
                };
                match map.get(k) {
                    None => {
                        map.insert(k.clone(), default.clone());
                    }
                    Some(Value::Null) if !prop.nullable => {
                        map.insert(k.clone(), default.clone());
                    }
                    _ => {}
                }
            }
            for (k, child) in map.iter_mut() {
                if let Some(prop) = node.properties.get(k) {
                    apply(child, prop);
                } else if let Some(Additional::Schema(s)) = &node.additional {
                    apply(child, s);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = &node.items {
                for item in items {
                    apply(item, item_schema);
                }
            }
        }
        _ => {}
    }
}
