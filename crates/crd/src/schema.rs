//! A version's `openAPIV3Schema` compiled once into a tree of [`Node`]s, and validation of
//! custom objects against it with kube-openapi's messages
//! (`spec.replicas in body must be of type integer: "string"`).
//!
//! Compilation never fails: a CRD is checked by [`crate::validate_crd`] before it is served,
//! so anything odd left here (an uncompilable pattern, an unknown type) is simply ignored.
//! Pruning and defaulting live in `prune.rs` and `defaults.rs`; both walk the same tree.

use crate::field_error::{quote, FieldError, Path};
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A compiled structural schema of one CRD version.
#[derive(Clone, Debug)]
pub struct Schema {
    pub(crate) root: Node,
}

/// What `additionalProperties` allows for keys not listed in `properties`.
#[derive(Clone, Debug)]
pub(crate) enum Additional {
    Allowed(bool),
    Schema(Box<Node>),
}

/// One node of a compiled schema. Field names follow the OpenAPI keywords.
#[derive(Clone, Debug, Default)]
pub(crate) struct Node {
    pub type_: Option<String>,
    pub nullable: bool,
    pub format: Option<String>,
    pub properties: BTreeMap<String, Node>,
    pub additional: Option<Additional>,
    pub items: Option<Box<Node>>,
    pub required: Vec<String>,
    pub enumeration: Option<Vec<Value>>,
    pub pattern: Option<(String, Option<Regex>)>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub exclusive_minimum: bool,
    pub exclusive_maximum: bool,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub unique_items: bool,
    pub min_properties: Option<u64>,
    pub max_properties: Option<u64>,
    pub multiple_of: Option<f64>,
    pub default: Option<Value>,
    pub preserve_unknown: bool,
    pub int_or_string: bool,
    pub embedded: bool,
    pub list_type: Option<String>,
    pub list_map_keys: Vec<String>,
    pub all_of: Vec<Node>,
    pub any_of: Vec<Node>,
    pub one_of: Vec<Node>,
    pub not: Option<Box<Node>>,
}

impl Node {
    pub(crate) fn compile(v: &Value) -> Node {
        let Some(m) = v.as_object() else {
            return Node::default();
        };
        let str_of = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
        let bool_of = |k: &str| m.get(k).and_then(Value::as_bool).unwrap_or(false);
        let u64_of = |k: &str| m.get(k).and_then(Value::as_u64);
        let f64_of = |k: &str| m.get(k).and_then(Value::as_f64);
        let list_of = |k: &str| -> Vec<Node> {
            m.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(Node::compile).collect())
                .unwrap_or_default()
        };
        Node {
            type_: str_of("type").filter(|t| !t.is_empty()),
            nullable: bool_of("nullable"),
            format: str_of("format").filter(|f| !f.is_empty()),
            properties: m
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| {
                    p.iter()
                        .map(|(k, v)| (k.clone(), Node::compile(v)))
                        .collect()
                })
                .unwrap_or_default(),
            additional: match m.get("additionalProperties") {
                Some(Value::Bool(b)) => Some(Additional::Allowed(*b)),
                Some(v @ Value::Object(_)) => Some(Additional::Schema(Box::new(Node::compile(v)))),
                _ => None,
            },
            items: m
                .get("items")
                .filter(|v| v.is_object())
                .map(|v| Box::new(Node::compile(v))),
            required: m
                .get("required")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            enumeration: m.get("enum").and_then(Value::as_array).cloned(),
            pattern: str_of("pattern").map(|p| {
                let re = Regex::new(&p).ok();
                (p, re)
            }),
            minimum: f64_of("minimum"),
            maximum: f64_of("maximum"),
            exclusive_minimum: bool_of("exclusiveMinimum"),
            exclusive_maximum: bool_of("exclusiveMaximum"),
            min_length: u64_of("minLength"),
            max_length: u64_of("maxLength"),
            min_items: u64_of("minItems"),
            max_items: u64_of("maxItems"),
            unique_items: bool_of("uniqueItems"),
            min_properties: u64_of("minProperties"),
            max_properties: u64_of("maxProperties"),
            multiple_of: f64_of("multipleOf"),
            default: m.get("default").cloned(),
            preserve_unknown: bool_of("x-kubernetes-preserve-unknown-fields"),
            int_or_string: bool_of("x-kubernetes-int-or-string"),
            embedded: bool_of("x-kubernetes-embedded-resource"),
            list_type: str_of("x-kubernetes-list-type"),
            list_map_keys: m
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            all_of: list_of("allOf"),
            any_of: list_of("anyOf"),
            one_of: list_of("oneOf"),
            not: m
                .get("not")
                .filter(|v| v.is_object())
                .map(|v| Box::new(Node::compile(v))),
        }
    }

    /// The schema for the value of key `key` of an object described by this node.
    pub(crate) fn field(&self, key: &str) -> Option<&Node> {
        self.properties.get(key).or(match &self.additional {
            Some(Additional::Schema(s)) => Some(s),
            _ => None,
        })
    }
}

impl Schema {
    /// Compile an `openAPIV3Schema` value.
    pub fn compile(open_api_v3_schema: &Value) -> Schema {
        Schema {
            root: Node::compile(open_api_v3_schema),
        }
    }

    /// A schema that accepts and keeps anything (for a version without a schema).
    pub fn preserve_unknown() -> Schema {
        Schema {
            root: Node {
                type_: Some("object".to_string()),
                preserve_unknown: true,
                ..Node::default()
            },
        }
    }

    /// Validate a custom object against the schema. `apiVersion`, `kind` and `metadata` at
    /// the root (and in embedded resources) are handled as upstream: `metadata` is an
    /// ObjectMeta and only its `name`/`generateName` constraints from the schema apply.
    pub fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        validate_node(&self.root, obj, &Path::root(), true, &mut errs);
        errs
    }

    /// Validate a value against the schema node found at `path` (no resource-root rules).
    /// Used to check `default` values and by callers validating a sub-document.
    pub(crate) fn validate_value_at(node: &Node, value: &Value, path: &Path) -> Vec<FieldError> {
        let mut errs = Vec::new();
        validate_node(node, value, path, false, &mut errs);
        errs
    }

    /// `x-kubernetes-list-type` and `x-kubernetes-list-map-keys` of the list at `path`
    /// (field names from the root; any segment steps into a list's items). `None` when the
    /// path is not a list in the schema or no list type is declared.
    pub fn list_type(&self, path: &[&str]) -> Option<(String, Vec<String>)> {
        let mut node = &self.root;
        for seg in path {
            node = if node.type_.as_deref() == Some("array") {
                let items = node.items.as_deref()?;
                // Allow both `["spec", "ports"]` and paths that name an item on the way.
                match items.field(seg) {
                    Some(n) if items.type_.as_deref() == Some("object") => n,
                    _ => items,
                }
            } else {
                node.field(seg)?
            };
        }
        if node.type_.as_deref() != Some("array") {
            return None;
        }
        node.list_type
            .clone()
            .map(|t| (t, node.list_map_keys.clone()))
    }
}

/// The JSON type name kube-openapi reports for a value.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                "integer"
            } else {
                "number"
            }
        }
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn type_matches(type_: &str, v: &Value) -> bool {
    match type_ {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => is_integer(v),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    }
}

fn fmt_num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

fn validate_node(
    node: &Node,
    v: &Value,
    path: &Path,
    resource_root: bool,
    errs: &mut Vec<FieldError>,
) {
    let name = path.as_str();
    let in_body = |what: String| {
        if name.is_empty() {
            format!("body {what}")
        } else {
            format!("{name} in body {what}")
        }
    };

    if v.is_null() && (node.nullable || (node.type_.is_none() && !node.int_or_string)) {
        return;
    }

    // Type.
    if node.int_or_string {
        if !(is_integer(v) || v.is_string()) {
            let actual = json_type(v);
            errs.push(FieldError::type_invalid(
                name,
                &Value::String(actual.to_string()),
                &in_body(format!("must be of type integer,string: {}", quote(actual))),
            ));
            return;
        }
    } else if let Some(t) = &node.type_ {
        if !type_matches(t, v) {
            let actual = json_type(v);
            errs.push(FieldError::type_invalid(
                name,
                &Value::String(actual.to_string()),
                &in_body(format!("must be of type {t}: {}", quote(actual))),
            ));
            return;
        }
    }

    // Format (best effort, unknown formats pass).
    if let Some(format) = &node.format {
        if !format_matches(format, v) {
            errs.push(FieldError::invalid(
                name,
                v,
                &in_body(format!(
                    "must be of type {format}: {}",
                    quote(
                        &v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    )
                )),
            ));
        }
    }

    // Enum.
    if let Some(allowed) = &node.enumeration {
        if !allowed.iter().any(|a| json_equal(a, v)) {
            let supported: Vec<String> = allowed
                .iter()
                .map(|a| match a {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            errs.push(FieldError::not_supported(name, v, &supported));
        }
    }

    match v {
        Value::String(s) => validate_string(node, s, v, path, errs, &in_body),
        Value::Number(_) => validate_number(node, v, path, errs, &in_body),
        Value::Array(items) => validate_array(node, items, v, path, errs, &in_body),
        Value::Object(map) => validate_object(node, map, v, path, resource_root, errs, &in_body),
        _ => {}
    }

    // Logical junctors (value validations only in a structural schema).
    for sub in &node.all_of {
        validate_node(sub, v, path, false, errs);
    }
    if !node.any_of.is_empty()
        && !node
            .any_of
            .iter()
            .any(|s| Schema::validate_value_at(s, v, path).is_empty())
    {
        errs.push(FieldError::invalid(
            name,
            v,
            &in_body("must validate at least one schema (anyOf)".to_string()),
        ));
    }
    if !node.one_of.is_empty() {
        let matching = node
            .one_of
            .iter()
            .filter(|s| Schema::validate_value_at(s, v, path).is_empty())
            .count();
        if matching != 1 {
            errs.push(FieldError::invalid(
                name,
                v,
                &in_body("must validate one and only one schema (oneOf)".to_string()),
            ));
        }
    }
    if let Some(not) = &node.not {
        if Schema::validate_value_at(not, v, path).is_empty() {
            errs.push(FieldError::invalid(
                name,
                v,
                &in_body("must not validate the schema (not)".to_string()),
            ));
        }
    }
}

fn validate_string(
    node: &Node,
    s: &str,
    v: &Value,
    path: &Path,
    errs: &mut Vec<FieldError>,
    in_body: &dyn Fn(String) -> String,
) {
    let name = path.as_str();
    let len = s.chars().count() as u64;
    if let Some(max) = node.max_length {
        if len > max {
            errs.push(FieldError::too_long(name, max));
        }
    }
    if let Some(min) = node.min_length {
        if len < min {
            errs.push(FieldError::invalid(
                name,
                v,
                &in_body(format!("should be at least {min} chars long")),
            ));
        }
    }
    if let Some((pattern, Some(re))) = &node.pattern {
        if !re.is_match(s) {
            errs.push(FieldError::invalid(
                name,
                v,
                &in_body(format!("should match '{pattern}'")),
            ));
        }
    }
}

fn validate_number(
    node: &Node,
    v: &Value,
    path: &Path,
    errs: &mut Vec<FieldError>,
    in_body: &dyn Fn(String) -> String,
) {
    let name = path.as_str();
    let Some(x) = v.as_f64() else { return };
    if let Some(max) = node.maximum {
        if node.exclusive_maximum && x >= max {
            errs.push(FieldError::invalid(
                name,
                v,
                &in_body(format!("should be less than {}", fmt_num(max))),
            ));
        } else if !node.exclusive_maximum && x > max {
            errs.push(FieldError::invalid(
                name,
                v,
                &in_body(format!("should be less than or equal to {}", fmt_num(max))),
            ));
        }
    }
    if let Some(min) = node.minimum {
        if node.exclusive_minimum && x <= min {
            errs.push(FieldError::invalid(
                name,
                v,
                &in_body(format!("should be greater than {}", fmt_num(min))),
            ));
        } else if !node.exclusive_minimum && x < min {
            errs.push(FieldError::invalid(
                name,
                v,
                &in_body(format!(
                    "should be greater than or equal to {}",
                    fmt_num(min)
                )),
            ));
        }
    }
    if let Some(m) = node.multiple_of {
        if m > 0.0 {
            let q = x / m;
            if (q - q.round()).abs() > 1e-9 {
                errs.push(FieldError::invalid(
                    name,
                    v,
                    &in_body(format!("should be a multiple of {}", fmt_num(m))),
                ));
            }
        }
    }
}

fn validate_array(
    node: &Node,
    items: &[Value],
    v: &Value,
    path: &Path,
    errs: &mut Vec<FieldError>,
    in_body: &dyn Fn(String) -> String,
) {
    let name = path.as_str();
    if let Some(max) = node.max_items {
        if items.len() as u64 > max {
            errs.push(FieldError::too_many(name, items.len(), max));
        }
    }
    if let Some(min) = node.min_items {
        if (items.len() as u64) < min {
            errs.push(FieldError::invalid(
                name,
                v,
                &in_body(format!("should have at least {min} items")),
            ));
        }
    }
    if node.unique_items && has_duplicates(items) {
        errs.push(FieldError::invalid(
            name,
            v,
            &in_body("shouldn't contain duplicates".to_string()),
        ));
    }
    if let Some(item_schema) = &node.items {
        for (i, item) in items.iter().enumerate() {
            validate_node(
                item_schema,
                item,
                &path.index(i),
                item_schema.embedded,
                errs,
            );
        }
    }
    match node.list_type.as_deref() {
        Some("set") => {
            for (i, item) in items.iter().enumerate() {
                if items[..i].iter().any(|prev| json_equal(prev, item)) {
                    errs.push(FieldError::duplicate(path.index(i).to_field(), item));
                }
            }
        }
        Some("map") if !node.list_map_keys.is_empty() => {
            let key_of = |item: &Value| -> Value {
                let mut key = Map::new();
                for k in &node.list_map_keys {
                    if let Some(x) = item.get(k) {
                        key.insert(k.clone(), x.clone());
                    }
                }
                Value::Object(key)
            };
            let keys: Vec<Value> = items.iter().map(key_of).collect();
            for (i, key) in keys.iter().enumerate() {
                if keys[..i].iter().any(|prev| json_equal(prev, key)) {
                    errs.push(FieldError::duplicate(path.index(i).to_field(), key));
                }
            }
        }
        _ => {}
    }
}

#[allow(clippy::too_many_arguments)]
fn validate_object(
    node: &Node,
    map: &Map<String, Value>,
    v: &Value,
    path: &Path,
    resource_root: bool,
    errs: &mut Vec<FieldError>,
    in_body: &dyn Fn(String) -> String,
) {
    let name = path.as_str();
    let is_resource = resource_root || node.embedded;
    if node.embedded {
        for k in ["apiVersion", "kind"] {
            if !map.contains_key(k) {
                errs.push(FieldError::required(
                    path.child(k).to_field(),
                    "must not be empty",
                ));
            }
        }
    }
    if let Some(max) = node.max_properties {
        if map.len() as u64 > max {
            errs.push(FieldError::too_many(name, map.len(), max));
        }
    }
    if let Some(min) = node.min_properties {
        if (map.len() as u64) < min {
            errs.push(FieldError::invalid(
                name,
                v,
                &in_body(format!("should have at least {min} properties")),
            ));
        }
    }
    for req in &node.required {
        if !map.contains_key(req) {
            errs.push(FieldError::required(path.child(req).to_field(), ""));
        }
    }
    for (k, value) in map {
        let child = path.child(k);
        if is_resource && k == "metadata" {
            validate_metadata(node.properties.get("metadata"), value, &child, errs);
            continue;
        }
        if is_resource && (k == "apiVersion" || k == "kind") && !node.properties.contains_key(k) {
            continue;
        }
        if let Some(prop) = node.properties.get(k) {
            validate_node(prop, value, &child, false, errs);
        } else {
            match &node.additional {
                Some(Additional::Schema(s)) => validate_node(s, value, &child, false, errs),
                Some(Additional::Allowed(false)) if !node.preserve_unknown => {
                    errs.push(FieldError::forbidden(
                        child.to_field(),
                        &format!("{} in body is a forbidden property", child.as_str()),
                    ));
                }
                _ => {}
            }
        }
    }
}

/// ObjectMeta is validated by the API server itself; a schema may only restrict the
/// `name` and `generateName` strings.
fn validate_metadata(schema: Option<&Node>, meta: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    let Some(schema) = schema else { return };
    for k in ["name", "generateName"] {
        if let (Some(s), Some(v)) = (schema.properties.get(k), meta.get(k)) {
            validate_node(s, v, &path.child(k), false, errs);
        }
    }
}

fn has_duplicates(items: &[Value]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, a)| items[..i].iter().any(|b| json_equal(a, b)))
}

/// JSON equality where `1` and `1.0` are the same number.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| json_equal(a, b)))
        }
        _ => a == b,
    }
}

fn format_matches(format: &str, v: &Value) -> bool {
    match (format, v) {
        ("int32", Value::Number(n)) => match n.as_i64() {
            Some(i) => i32::try_from(i).is_ok(),
            None => n
                .as_f64()
                .is_some_and(|f| f.fract() != 0.0 || f.abs() < 2_147_483_648.0),
        },
        ("int64", Value::Number(n)) => n.is_i64() || !n.is_u64(),
        ("date-time", Value::String(s)) => parse_date_time(s),
        ("date", Value::String(s)) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        ("uuid", Value::String(s)) => is_uuid(s),
        ("ipv4", Value::String(s)) => s.parse::<std::net::Ipv4Addr>().is_ok(),
        ("ipv6", Value::String(s)) => s.parse::<std::net::Ipv6Addr>().is_ok(),
        _ => true,
    }
}

fn parse_date_time(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
        || chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
        || chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").is_ok()
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}
