//! Checks on a raw `openAPIV3Schema` before a CRD is accepted: the OpenAPI subset CRDs allow
//! (no `$ref`, `patternProperties`, `uniqueItems: true`, ...), the structural-schema
//! invariants (every specified node has a `type`, `items` for arrays, restricted `metadata`,
//! nothing but value validations under `allOf`/`anyOf`/`oneOf`/`not`), the Kubernetes
//! extensions, and that `default`s validate against their schema and survive pruning.
//! Messages are upstream's; errors are sorted as upstream sorts them.

use crate::field_error::{FieldError, Path};
use crate::schema::{Node, Schema};
use serde_json::{json, Map, Value};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

const TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];

/// Every problem with `schema` found at `path` (e.g. `spec.versions[0].schema.openAPIV3Schema`).
pub(crate) fn validate_schema(schema: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(m) = schema.as_object() else {
        errs.push(FieldError::invalid(
            path.to_field(),
            schema,
            "must be an object",
        ));
        return errs;
    };
    openapi_subset(m, path, &mut errs);
    invariants(m, Level::Root, path, &mut errs);
    defaults(m, path, &mut errs);
    errs.sort_by_key(|e| e.to_string());
    errs.dedup();
    errs
}

fn obj<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a Map<String, Value>> {
    m.get(k).and_then(Value::as_object)
}

fn type_of(m: &Map<String, Value>) -> &str {
    m.get("type").and_then(Value::as_str).unwrap_or("")
}

fn flag(m: &Map<String, Value>, k: &str) -> bool {
    m.get(k).and_then(Value::as_bool).unwrap_or(false)
}

/// Calls `f` on every sub-schema with its path: properties, additionalProperties, items and
/// the logical junctors.
fn for_each_child(
    m: &Map<String, Value>,
    path: &Path,
    f: &mut dyn FnMut(&Map<String, Value>, &Path),
) {
    if let Some(props) = obj(m, "properties") {
        for (k, v) in props {
            if let Some(c) = v.as_object() {
                f(c, &path.child("properties").key(k));
            }
        }
    }
    if let Some(c) = obj(m, "additionalProperties") {
        f(c, &path.child("additionalProperties"));
    }
    if let Some(c) = obj(m, "items") {
        f(c, &path.child("items"));
    }
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = m.get(junctor).and_then(Value::as_array) {
            for (i, v) in list.iter().enumerate() {
                if let Some(c) = v.as_object() {
                    f(c, &path.child(junctor).index(i));
                }
            }
        }
    }
    if let Some(c) = obj(m, "not") {
        f(c, &path.child("not"));
    }
}

/// The OpenAPI v3 features CRDs do not support, and the Kubernetes extensions' own rules.
fn openapi_subset(m: &Map<String, Value>, path: &Path, errs: &mut Vec<FieldError>) {
    let field = |k: &str| path.child(k).to_field();
    for (key, what) in [
        ("id", "id is not supported"),
        ("additionalItems", "additionalItems is not supported"),
        ("patternProperties", "patternProperties is not supported"),
        ("definitions", "definitions is not supported"),
        ("dependencies", "dependencies is not supported"),
        ("$ref", "$ref is not supported"),
        ("$schema", "$schema is not supported"),
    ] {
        if m.contains_key(key) {
            errs.push(FieldError::forbidden(field(key), what));
        }
    }
    match m.get("type") {
        None => {}
        Some(Value::String(t)) if t.is_empty() || TYPES.contains(&t.as_str()) => {}
        Some(Value::String(t)) if t == "null" => {
            errs.push(FieldError::forbidden(
                field("type"),
                "type cannot be set to null",
            ));
        }
        Some(t) => errs.push(FieldError::not_supported(
            field("type"),
            t,
            &TYPES.map(str::to_string),
        )),
    }
    if m.get("items").is_some_and(Value::is_array) {
        errs.push(FieldError::forbidden(
            field("items"),
            "items must be a schema object and not an array",
        ));
    }
    if flag(m, "uniqueItems") {
        errs.push(FieldError::forbidden(
            field("uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    if let Some(add) = m.get("additionalProperties") {
        let has_props = obj(m, "properties").is_some_and(|p| !p.is_empty());
        if has_props && (add.is_object() || add == &Value::Bool(false)) {
            errs.push(FieldError::forbidden(
                field("additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
    }
    if let Some(Value::Bool(false)) = m.get("x-kubernetes-preserve-unknown-fields") {
        errs.push(FieldError::invalid(
            field("x-kubernetes-preserve-unknown-fields"),
            &Value::Bool(false),
            "must be true or undefined",
        ));
    }
    if let Some(Value::String(p)) = m.get("pattern") {
        if let Err(e) = regex::Regex::new(p) {
            errs.push(FieldError::invalid(
                field("pattern"),
                &Value::String(p.clone()),
                &format!(
                    "must be a valid regular expression, but isn't: {}",
                    regex_error(&e)
                ),
            ));
        }
    }
    list_extensions(m, path, errs);
    if let Some(t) = m.get("x-kubernetes-map-type") {
        if !matches!(t.as_str(), Some("granular" | "atomic")) {
            errs.push(FieldError::not_supported(
                field("x-kubernetes-map-type"),
                t,
                &["granular".to_string(), "atomic".to_string()],
            ));
        }
    }
    for_each_child(m, path, &mut |c, p| openapi_subset(c, p, errs));
}

/// The one-line cause of a regex error (its `Display` draws the pattern over several lines).
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.replace('\n', " "))
}

fn list_extensions(m: &Map<String, Value>, path: &Path, errs: &mut Vec<FieldError>) {
    let field = |k: &str| path.child(k).to_field();
    let keys = m
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match m.get("x-kubernetes-list-type") {
        None => {
            if !keys.is_empty() {
                errs.push(FieldError::invalid(
                    field("x-kubernetes-list-type"),
                    &Value::Null,
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                ));
            }
        }
        Some(t) => {
            let supported = ["atomic", "set", "map"].map(str::to_string);
            let Some(t) = t.as_str().filter(|t| supported.iter().any(|s| s == t)) else {
                errs.push(FieldError::not_supported(
                    field("x-kubernetes-list-type"),
                    t,
                    &supported,
                ));
                return;
            };
            if type_of(m) != "array" {
                errs.push(FieldError::invalid(
                    field("x-kubernetes-list-type"),
                    &Value::String(t.to_string()),
                    "must only be used if type is array",
                ));
            }
            let items = obj(m, "items");
            match t {
                "map" => {
                    if keys.is_empty() {
                        errs.push(FieldError::required(
                            field("x-kubernetes-list-map-keys"),
                            "must not be empty if x-kubernetes-list-type is map",
                        ));
                    }
                    if let Some(items) = items {
                        if type_of(items) != "object" {
                            errs.push(FieldError::invalid(
                                path.child("items").child("type").to_field(),
                                &Value::String(type_of(items).to_string()),
                                "must be object if parent array's x-kubernetes-list-type is map",
                            ));
                        }
                        let props = obj(items, "properties");
                        for (i, k) in keys.iter().enumerate() {
                            let name = k.as_str().unwrap_or("");
                            if props.and_then(|p| p.get(name)).is_none() {
                                errs.push(FieldError::invalid(
                                    field("x-kubernetes-list-map-keys").to_string()
                                        + &format!("[{i}]"),
                                    k,
                                    "entries must all be names of item properties",
                                ));
                            }
                        }
                    }
                }
                _ => {
                    if !keys.is_empty() {
                        errs.push(FieldError::forbidden(
                            field("x-kubernetes-list-map-keys"),
                            "must only be used if x-kubernetes-list-type is map",
                        ));
                    }
                    if t == "set" {
                        if let Some(items) = items {
                            let scalar = matches!(
                                type_of(items),
                                "string" | "integer" | "number" | "boolean"
                            ) || flag(items, "x-kubernetes-int-or-string");
                            let atomic =
                                items.get("x-kubernetes-map-type") == Some(&json!("atomic"));
                            if !scalar && !atomic {
                                errs.push(FieldError::invalid(
                                    path.child("items").child("x-kubernetes-map-type").to_field(),
                                    &Value::Null,
                                    "must be atomic as item of a list with x-kubernetes-list-type=set",
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
}

fn is_int_or_string_any_of(list: Option<&Value>) -> bool {
    list.and_then(Value::as_array).is_some_and(|a| {
        a.len() == 2 && a[0] == json!({"type": "integer"}) && a[1] == json!({"type": "string"})
    })
}

/// Structural invariants (upstream `validateStructuralInvariants`).
fn invariants(m: &Map<String, Value>, level: Level, path: &Path, errs: &mut Vec<FieldError>) {
    let field = |k: &str| path.child(k).to_field();
    let t = type_of(m);
    let int_or_string = flag(m, "x-kubernetes-int-or-string");
    let preserve = flag(m, "x-kubernetes-preserve-unknown-fields");
    let embedded = flag(m, "x-kubernetes-embedded-resource");

    if t == "array" && !m.contains_key("items") {
        errs.push(FieldError::required(field("items"), "must be specified"));
    }
    if let Some(items) = obj(m, "items") {
        invariants(items, Level::Item, &path.child("items"), errs);
    }
    if let Some(props) = obj(m, "properties") {
        for (k, v) in props {
            if let Some(c) = v.as_object() {
                invariants(c, Level::Field, &path.child("properties").key(k), errs);
            }
        }
    }
    if m.contains_key("additionalProperties") {
        if level == Level::Root {
            errs.push(FieldError::forbidden(
                field("additionalProperties"),
                "must not be used at the root",
            ));
        }
        if let Some(add) = obj(m, "additionalProperties") {
            invariants(add, Level::Field, &path.child("additionalProperties"), errs);
        }
    }
    if int_or_string && preserve {
        errs.push(FieldError::invalid(
            field("x-kubernetes-preserve-unknown-fields"),
            &Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string && embedded {
        errs.push(FieldError::invalid(
            field("x-kubernetes-embedded-resource"),
            &Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }

    // Value validations under the junctors, with the two int-or-string exceptions.
    let skip_any_of = is_int_or_string_any_of(m.get("anyOf"));
    if !skip_any_of {
        if let Some(list) = m.get("anyOf").and_then(Value::as_array) {
            for (i, v) in list.iter().enumerate() {
                nested(v, false, &path.child("anyOf").index(i), errs);
            }
        }
    }
    if let Some(list) = m.get("allOf").and_then(Value::as_array) {
        for (i, v) in list.iter().enumerate() {
            let skip = i == 0 && is_int_or_string_any_of(v.get("anyOf"));
            nested(v, skip, &path.child("allOf").index(i), errs);
        }
    }
    if let Some(list) = m.get("oneOf").and_then(Value::as_array) {
        for (i, v) in list.iter().enumerate() {
            nested(v, false, &path.child("oneOf").index(i), errs);
        }
    }
    if let Some(v) = m.get("not") {
        nested(v, false, &path.child("not"), errs);
    }

    if embedded && t != "object" {
        if t.is_empty() {
            errs.push(FieldError::required(
                field("type"),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        } else {
            errs.push(FieldError::invalid(
                field("type"),
                &Value::String(t.to_string()),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
    } else if t.is_empty() && !int_or_string && !preserve {
        let detail = match level {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(field("type"), detail));
    }
    if int_or_string && !t.is_empty() {
        errs.push(FieldError::invalid(
            field("type"),
            &Value::String(t.to_string()),
            "must be empty if x-kubernetes-int-or-string is true",
        ));
    }
    if embedded && m.contains_key("additionalProperties") {
        errs.push(FieldError::forbidden(
            field("additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if level == Level::Root && !t.is_empty() && t != "object" {
        errs.push(FieldError::invalid(
            field("type"),
            &Value::String(t.to_string()),
            "must be object at the root",
        ));
    }

    let check_metadata = level == Level::Root || embedded;
    let props = obj(m, "properties");
    if check_metadata {
        for k in ["kind", "apiVersion"] {
            if let Some(p) = props.and_then(|p| obj(p, k)) {
                if type_of(p) != "string" {
                    errs.push(FieldError::invalid(
                        path.child("properties").key(k).child("type").to_field(),
                        &Value::String(type_of(p).to_string()),
                        "must be string",
                    ));
                }
            }
        }
        if let Some(meta) = props.and_then(|p| obj(p, "metadata")) {
            if type_of(meta) != "object" {
                errs.push(FieldError::invalid(
                    path.child("properties")
                        .key("metadata")
                        .child("type")
                        .to_field(),
                    &Value::String(type_of(meta).to_string()),
                    "must be object",
                ));
            }
        }
    }
    if level == Level::Root {
        if let Some(meta) = props.and_then(|p| obj(p, "metadata")) {
            let only_names = obj(meta, "properties")
                .is_none_or(|p| p.keys().all(|k| k == "name" || k == "generateName"));
            let only_allowed = meta
                .keys()
                .all(|k| matches!(k.as_str(), "type" | "properties" | "description" | "title"));
            if !only_names || !only_allowed {
                errs.push(FieldError::forbidden(
                    path.child("properties").key("metadata").to_field(),
                    "must not specify anything other than name and generateName, but metadata is implicitly specified",
                ));
            }
        }
    }
    if embedded && !preserve && props.is_none_or(|p| p.is_empty()) {
        errs.push(FieldError::required(
            field("properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// A schema under `allOf`/`anyOf`/`oneOf`/`not` may only carry value validations.
fn nested(v: &Value, skip_any_of: bool, path: &Path, errs: &mut Vec<FieldError>) {
    let Some(m) = v.as_object() else { return };
    let field = |k: &str| path.child(k).to_field();
    for (key, detail) in [
        ("type", "must be empty to be structural"),
        ("additionalProperties", "must be undefined to be structural"),
        ("default", "must be undefined to be structural"),
        ("title", "must be empty to be structural"),
        ("description", "must be empty to be structural"),
        (
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        ),
        (
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        ),
    ] {
        if m.contains_key(key) {
            errs.push(FieldError::forbidden(field(key), detail));
        }
    }
    for key in [
        "nullable",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
    ] {
        if flag(m, key) {
            errs.push(FieldError::forbidden(
                field(key),
                "must be false to be structural",
            ));
        }
    }
    if let Some(props) = obj(m, "properties") {
        if props.contains_key("metadata") {
            errs.push(FieldError::forbidden(
                path.child("properties").key("metadata").to_field(),
                "must not be specified in a nested context",
            ));
        }
        for (k, c) in props {
            nested(c, false, &path.child("properties").key(k), errs);
        }
    }
    if let Some(items) = m.get("items") {
        nested(items, false, &path.child("items"), errs);
    }
    if !skip_any_of {
        if let Some(list) = m.get("anyOf").and_then(Value::as_array) {
            for (i, c) in list.iter().enumerate() {
                nested(c, false, &path.child("anyOf").index(i), errs);
            }
        }
    }
    for junctor in ["allOf", "oneOf"] {
        if let Some(list) = m.get(junctor).and_then(Value::as_array) {
            for (i, c) in list.iter().enumerate() {
                nested(c, false, &path.child(junctor).index(i), errs);
            }
        }
    }
    if let Some(c) = m.get("not") {
        nested(c, false, &path.child("not"), errs);
    }
}

/// Every `default` must validate against its own schema and contain no pruned fields.
/// Junctors are skipped: defaults there are already forbidden.
fn defaults(m: &Map<String, Value>, path: &Path, errs: &mut Vec<FieldError>) {
    if let Some(default) = m.get("default") {
        let default_path = path.child("default");
        let node = Node::compile(&Value::Object(m.clone()));
        let schema = Schema { root: node };
        let mut errors = Schema::validate_value_at(&schema.root, default, &default_path);
        if errors.is_empty() {
            let mut copy = default.clone();
            let pruned = prune_value(&schema, &mut copy);
            if !pruned.is_empty() {
                errors.push(FieldError::invalid(
                    default_path.to_field(),
                    default,
                    &format!(
                        "must not have unknown fields, but found {}",
                        pruned.join(", ")
                    ),
                ));
            }
        }
        errs.extend(errors);
    }
    if let Some(props) = obj(m, "properties") {
        for (k, v) in props {
            if let Some(c) = v.as_object() {
                defaults(c, &path.child("properties").key(k), errs);
            }
        }
    }
    if let Some(c) = obj(m, "additionalProperties") {
        defaults(c, &path.child("additionalProperties"), errs);
    }
    if let Some(c) = obj(m, "items") {
        defaults(c, &path.child("items"), errs);
    }
}

/// Prune a default value as a nested (non-resource-root) value.
fn prune_value(schema: &Schema, value: &mut Value) -> Vec<String> {
    // A default of an object is never a resource root, so wrap it to disable the root rules.
    let mut wrapper = json!({ "v": value.take() });
    let holder = Schema {
        root: Node {
            type_: Some("object".to_string()),
            properties: [("v".to_string(), schema.root.clone())]
                .into_iter()
                .collect(),
            ..Node::default()
        },
    };
    let pruned = holder.prune(&mut wrapper);
    *value = wrapper["v"].take();
    pruned
        .into_iter()
        .map(|p| p.strip_prefix("v.").unwrap_or(&p).to_string())
        .collect()
}
