//! Reading fields out of objects stored as Kubernetes-shaped JSON.
//!
//! Printers see objects exactly as stored, so any field may be missing or of an
//! unexpected type; these accessors treat such a field as absent (the Go zero
//! value upstream would see) instead of failing.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The value at a `/`-free path of object keys, e.g. `at(obj, &["spec", "type"])`.
pub(crate) fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

/// The string at `path`, or `""` when missing (Go's zero value).
pub(crate) fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    at(value, path).and_then(Value::as_str).unwrap_or("")
}

/// The string at `path` when present and a string (Go's `*string`).
pub(crate) fn opt_str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path).and_then(Value::as_str)
}

/// The integer at `path`, or 0 when missing.
pub(crate) fn int_at(value: &Value, path: &[&str]) -> i64 {
    opt_int_at(value, path).unwrap_or(0)
}

/// The integer at `path` when present (Go's `*int32`).
pub(crate) fn opt_int_at(value: &Value, path: &[&str]) -> Option<i64> {
    at(value, path).and_then(Value::as_i64)
}

/// The boolean at `path` when present (Go's `*bool`).
pub(crate) fn opt_bool_at(value: &Value, path: &[&str]) -> Option<bool> {
    at(value, path).and_then(Value::as_bool)
}

/// The array at `path`, or an empty slice when missing.
pub(crate) fn array_at<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at `path`, if it is one.
pub(crate) fn object_at<'a>(
    value: &'a Value,
    path: &[&str],
) -> Option<&'a serde_json::Map<String, Value>> {
    at(value, path).and_then(Value::as_object)
}

/// Number of entries of the map (or array) at `path`.
pub(crate) fn len_at(value: &Value, path: &[&str]) -> i64 {
    let len = match at(value, path) {
        Some(Value::Object(map)) => map.len(),
        Some(Value::Array(items)) => items.len(),
        _ => 0,
    };
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// The RFC 3339 timestamp at `path`, if present and parseable. Works for both
/// `Time` ("2024-01-02T03:04:05Z") and `MicroTime` ("...05.123456Z").
pub(crate) fn time_at(value: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    let text = opt_str_at(value, path)?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `metadata.name`.
pub(crate) fn name(obj: &Value) -> &str {
    str_at(obj, &["metadata", "name"])
}

/// `metadata.creationTimestamp`.
pub(crate) fn creation_timestamp(obj: &Value) -> Option<DateTime<Utc>> {
    time_at(obj, &["metadata", "creationTimestamp"])
}

/// Whether `metadata.deletionTimestamp` is set.
pub(crate) fn is_deleting(obj: &Value) -> bool {
    at(obj, &["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null())
}

/// `s`, or `"<none>"` when it is empty.
pub(crate) fn or_none(s: impl Into<String>) -> String {
    let s = s.into();
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s
    }
}

/// An IntOrString value as upstream prints it ("3", "25%").
pub(crate) fn int_or_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}
