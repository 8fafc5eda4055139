//! Field-level validation errors worded as upstream's `field.Error` types, so kubectl users
//! see the messages they know (`spec.ports[0].port: Invalid value: 0: ...`).

use serde_json::Value;

use crate::error::{ApiError, FieldCause};

/// A field path under construction: `spec.containers[1].name`.
#[derive(Clone, Debug)]
pub struct Path(String);

impl Path {
    pub fn new(root: &str) -> Self {
        Path(root.to_string())
    }

    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    pub fn index(&self, i: usize) -> Self {
        Path(format!("{}[{i}]", self.0))
    }

    #[cfg(test)]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a value is shown in a message: JSON, as kube-apiserver 1.33+ prints it.
fn show(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

pub fn invalid(path: &Path, value: &Value, detail: &str) -> FieldCause {
    FieldCause {
        field: path.0.clone(),
        message: format!("Invalid value: {}: {detail}", show(value)),
        reason: "FieldValueInvalid",
    }
}

pub fn required(path: &Path, detail: &str) -> FieldCause {
    let message = if detail.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {detail}")
    };
    FieldCause {
        field: path.0.clone(),
        message,
        reason: "FieldValueRequired",
    }
}

pub fn duplicate(path: &Path, value: &Value) -> FieldCause {
    FieldCause {
        field: path.0.clone(),
        message: format!("Duplicate value: {}", show(value)),
        reason: "FieldValueDuplicate",
    }
}

pub fn forbidden(path: &Path, detail: &str) -> FieldCause {
    FieldCause {
        field: path.0.clone(),
        message: format!("Forbidden: {detail}"),
        reason: "FieldValueForbidden",
    }
}

pub fn not_found(path: &Path, value: &Value) -> FieldCause {
    FieldCause {
        field: path.0.clone(),
        message: format!("Not found: {}", show(value)),
        reason: "FieldValueNotFound",
    }
}

pub fn not_supported(path: &Path, value: &Value, supported: &[&str]) -> FieldCause {
    let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
    FieldCause {
        field: path.0.clone(),
        message: format!(
            "Unsupported value: {}: supported values: {}",
            show(value),
            list.join(", ")
        ),
        reason: "FieldValueNotSupported",
    }
}

/// 422 for `obj` when there are causes.
pub fn check(kind: &str, obj: &Value, causes: Vec<FieldCause>) -> Result<(), ApiError> {
    if causes.is_empty() {
        return Ok(());
    }
    let name = crate::object::name(obj).unwrap_or_default();
    Err(ApiError::invalid(kind, name, causes))
}

/// `field is immutable`, for a value that changed on update.
pub fn immutable(path: &Path, new: &Value) -> FieldCause {
    invalid(path, new, "field is immutable")
}

/// Upstream's port-range message.
pub const PORT_RANGE_MSG: &str = "must be between 1 and 65535, inclusive";

/// A port number field: required when absent or 0, else 1-65535.
pub fn port_number(path: &Path, value: Option<&Value>, causes: &mut Vec<FieldCause>) {
    match value {
        None | Some(Value::Null) => causes.push(required(path, "")),
        Some(v) => match v.as_i64() {
            Some(n) if (1..=65535).contains(&n) => {}
            _ => causes.push(invalid(path, v, PORT_RANGE_MSG)),
        },
    }
}

/// Problems of an IANA service name (named ports), each a separate message as upstream.
pub fn port_name_problems(name: &str) -> Vec<&'static str> {
    let mut problems = Vec::new();
    if name.len() > 15 {
        problems.push("must be no more than 15 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        problems.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if name.contains("--") {
        problems.push("must not contain consecutive hyphens");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        problems.push("must contain at least one letter (a-z)");
    }
    if name.starts_with('-') || name.ends_with('-') {
        problems.push("must not begin or end with a hyphen");
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_follow_upstream() {
        let p = Path::new("spec").child("ports").index(0).child("port");
        assert_eq!(p.as_str(), "spec.ports[0].port");
        assert_eq!(
            invalid(&p, &json!(0), PORT_RANGE_MSG).message,
            "Invalid value: 0: must be between 1 and 65535, inclusive"
        );
        assert_eq!(
            duplicate(&Path::new("x"), &json!("web")).message,
            "Duplicate value: \"web\""
        );
        assert_eq!(
            not_supported(&Path::new("t"), &json!("X"), &["A", "B"]).message,
            "Unsupported value: \"X\": supported values: \"A\", \"B\""
        );
        assert!(port_name_problems("http").is_empty());
        assert_eq!(port_name_problems("80").len(), 1);
        assert_eq!(port_name_problems("Foo_").len(), 1);
        assert_eq!(port_name_problems("--x-").len(), 2);
    }
}
