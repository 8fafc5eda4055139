//! Field errors shaped like apimachinery's `field.Error`: a dotted field path, a message that
//! starts with the error type ("Required value", "Invalid value: ...") and the `reason` the API
//! server puts into a `Status` cause. Also the small path builder used by every validator.

use serde_json::Value;
use std::fmt;

/// One validation failure, as it appears in a `Status` cause (`field`, `message`, `reason`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Field path such as `spec.versions[0].schema.openAPIV3Schema.type`.
    pub field: String,
    /// Error body such as `Required value: must not be empty at the root`.
    pub message: String,
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`,
    /// `FieldValueForbidden`, `FieldValueDuplicate`, `FieldValueTooLong`,
    /// `FieldValueTooMany` or `FieldValueTypeInvalid`.
    pub reason: &'static str,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

fn with_detail(head: String, detail: &str) -> String {
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

impl FieldError {
    /// `Required value[: detail]`.
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        FieldError {
            field: field.into(),
            message: with_detail("Required value".to_string(), detail),
            reason: "FieldValueRequired",
        }
    }

    /// `Invalid value: <value>[: detail]`.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        FieldError {
            field: field.into(),
            message: with_detail(format!("Invalid value: {}", render_value(value)), detail),
            reason: "FieldValueInvalid",
        }
    }

    /// Like [`FieldError::invalid`] but for a value of the wrong JSON type.
    pub fn type_invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueTypeInvalid",
            ..FieldError::invalid(field, value, detail)
        }
    }

    /// `Unsupported value: <value>: supported values: "a", "b"`.
    pub fn not_supported(field: impl Into<String>, value: &Value, supported: &[String]) -> Self {
        let list = supported
            .iter()
            .map(|s| quote(s))
            .collect::<Vec<_>>()
            .join(", ");
        let detail = if supported.is_empty() {
            String::new()
        } else {
            format!("supported values: {list}")
        };
        FieldError {
            field: field.into(),
            message: with_detail(
                format!("Unsupported value: {}", render_value(value)),
                &detail,
            ),
            reason: "FieldValueNotSupported",
        }
    }

    /// `Forbidden[: detail]`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        FieldError {
            field: field.into(),
            message: with_detail("Forbidden".to_string(), detail),
            reason: "FieldValueForbidden",
        }
    }

    /// `Duplicate value: <value>`.
    pub fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        FieldError {
            field: field.into(),
            message: format!("Duplicate value: {}", render_value(value)),
            reason: "FieldValueDuplicate",
        }
    }

    /// `Too long: may not be more than <max> bytes` (the value is not echoed, as upstream).
    pub fn too_long(field: impl Into<String>, max: u64) -> Self {
        FieldError {
            field: field.into(),
            message: format!("Too long: may not be more than {max} bytes"),
            reason: "FieldValueTooLong",
        }
    }

    /// `Too many: <actual>: must have at most <max> items`.
    pub fn too_many(field: impl Into<String>, actual: usize, max: u64) -> Self {
        FieldError {
            field: field.into(),
            message: format!("Too many: {actual}: must have at most {max} items"),
            reason: "FieldValueTooMany",
        }
    }
}

/// A Go `%q`-like quoted string (JSON escaping is close enough for what users see).
pub(crate) fn quote(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// How apimachinery prints a bad value: strings quoted, numbers and booleans plain, `null`
/// as `"null"`, anything else as compact JSON.
pub(crate) fn render_value(value: &Value) -> String {
    match value {
        Value::Null => quote("null"),
        Value::String(s) => quote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// A field path under construction: `spec`, `spec.versions[0]`, `...properties[spec]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Path(String);

impl Path {
    pub(crate) fn root() -> Self {
        Path(String::new())
    }

    pub(crate) fn new(name: &str) -> Self {
        Path(name.to_string())
    }

    pub(crate) fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{}", self.0, name))
        }
    }

    pub(crate) fn index(&self, i: usize) -> Self {
        Path(format!("{}[{}]", self.0, i))
    }

    /// `[key]` as used for schema map keys: `properties[spec]`.
    pub(crate) fn key(&self, key: &str) -> Self {
        Path(format!("{}[{}]", self.0, key))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn to_field(&self) -> String {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_follow_apimachinery() {
        let e = FieldError::required("spec.size", "");
        assert_eq!(e.to_string(), "spec.size: Required value");
        let e = FieldError::not_supported(
            "spec.color",
            &json!("pink"),
            &["red".to_string(), "blue".to_string()],
        );
        assert_eq!(
            e.to_string(),
            r#"spec.color: Unsupported value: "pink": supported values: "red", "blue""#
        );
        let e = FieldError::invalid("spec.replicas", &json!(0), "too small");
        assert_eq!(e.to_string(), "spec.replicas: Invalid value: 0: too small");
        let e = FieldError::invalid("x", &Value::Null, "d");
        assert_eq!(e.message, r#"Invalid value: "null": d"#);
        assert_eq!(
            Path::new("spec")
                .child("versions")
                .index(0)
                .child("schema")
                .key("x")
                .as_str(),
            "spec.versions[0].schema[x]"
        );
    }
}
