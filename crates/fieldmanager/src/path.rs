//! Field paths: the steps from an object's root to one of its fields, list
//! items or set values, as structured-merge-diff's `fieldpath.PathElement`.
//!
//! A step is a map field (`f:` in FieldsV1, `.name` when printed), an item of an
//! associative list named by its key fields (`k:{"name":"web"}`,
//! `[name="web"]`), a value of a set (`v:"a"`, `[="a"]`) or a list index
//! (`i:0`, `[0]`). Steps have a total order (fields, then keys, then values,
//! then indexes) so that field sets encode deterministically.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

/// One step of a [`Path`].
#[derive(Clone, Debug, PartialEq)]
pub enum PathElement {
    /// A field of a map (`f:name`).
    Field(String),
    /// An item of an associative list, named by its key fields sorted by name
    /// (`k:{"containerPort":80,"protocol":"TCP"}`).
    Key(Vec<(String, Value)>),
    /// A value of a set-like list of scalars (`v:"foo"`).
    Value(Value),
    /// A position in a list (`i:3`); only read from FieldsV1, never produced.
    Index(usize),
}

/// A sequence of steps from the object's root.
pub type Path = Vec<PathElement>;

impl Eq for PathElement {}

impl PathElement {
    /// A field step.
    pub fn field(name: &str) -> Self {
        PathElement::Field(name.to_string())
    }

    /// A key step; sorts the key fields by name as upstream does.
    pub fn key(mut fields: Vec<(String, Value)>) -> Self {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }

    /// The field name when this step is a field.
    pub fn as_field(&self) -> Option<&str> {
        match self {
            PathElement::Field(name) => Some(name),
            _ => None,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The FieldsV1 object key for this step: `f:name`, `k:{...}`, `v:...`, `i:N`.
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut map = Map::new();
                for (name, value) in fields {
                    map.insert(name.clone(), value.clone());
                }
                format!("k:{}", Value::Object(map))
            }
            PathElement::Value(value) => format!("v:{value}"),
            PathElement::Index(index) => format!("i:{index}"),
        }
    }

    /// Parses a FieldsV1 object key (anything but the `.` marker).
    pub fn from_fields_v1_key(key: &str) -> Result<Self, String> {
        let (prefix, rest) = key
            .split_once(':')
            .ok_or_else(|| format!("invalid path element {key:?}: missing type prefix"))?;
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => {
                let value: Value = serde_json::from_str(rest)
                    .map_err(|err| format!("invalid key path element {key:?}: {err}"))?;
                let Value::Object(map) = value else {
                    return Err(format!("invalid key path element {key:?}: not an object"));
                };
                Ok(PathElement::key(map.into_iter().collect()))
            }
            "v" => serde_json::from_str(rest)
                .map(PathElement::Value)
                .map_err(|err| format!("invalid value path element {key:?}: {err}")),
            "i" => rest
                .parse()
                .map(PathElement::Index)
                .map_err(|err| format!("invalid index path element {key:?}: {err}")),
            other => Err(format!(
                "invalid path element {key:?}: unknown type prefix {other:?}"
            )),
        }
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b.iter()) {
                    let ord = an.cmp(bn).then_with(|| compare_values(av, bv));
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for PathElement {
    /// Upstream `PathElement.String()`: `.name`, `[name="web"]`, `[="a"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                f.write_str("[")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}={value}")?;
                }
                f.write_str("]")
            }
            PathElement::Value(value) => write!(f, "[={value}]"),
            PathElement::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// Prints a path the way upstream conflict messages do: `.spec.containers[name="web"].image`.
pub fn path_to_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A total order over JSON values consistent with `Value`'s equality:
/// null < bool < number < string < array < object.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => {
            let by_value = match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                _ => Ordering::Equal,
            };
            // Tie-break on the text so that 1 and 1.0 (unequal Values) differ.
            by_value.then_with(|| x.to_string().cmp(&y.to_string()))
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (x, y) in x.iter().zip(y.iter()) {
                let ord = compare_values(x, y);
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|a, b| a.0.cmp(b.0));
            ys.sort_by(|a, b| a.0.cmp(b.0));
            for ((xk, xv), (yk, yv)) in xs.iter().zip(ys.iter()) {
                let ord = xk.cmp(yk).then_with(|| compare_values(xv, yv));
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_keys_round_trip() {
        for key in [
            "f:spec",
            r#"k:{"name":"web"}"#,
            r#"k:{"containerPort":80,"protocol":"TCP"}"#,
            r#"v:"foregroundDeletion""#,
            "i:3",
        ] {
            let pe = PathElement::from_fields_v1_key(key).unwrap();
            assert_eq!(pe.to_fields_v1_key(), key);
        }
        assert!(PathElement::from_fields_v1_key("x:y").is_err());
        assert!(PathElement::from_fields_v1_key("k:[1]").is_err());
    }

    #[test]
    fn key_fields_are_sorted_and_printed_like_upstream() {
        let pe = PathElement::key(vec![
            ("protocol".into(), json!("TCP")),
            ("containerPort".into(), json!(80)),
        ]);
        assert_eq!(pe.to_string(), r#"[containerPort=80,protocol="TCP"]"#);
        let path = vec![
            PathElement::field("spec"),
            PathElement::field("containers"),
            PathElement::key(vec![("name".into(), json!("web"))]),
            PathElement::field("image"),
        ];
        assert_eq!(
            path_to_string(&path),
            r#".spec.containers[name="web"].image"#
        );
        assert_eq!(PathElement::Value(json!("a")).to_string(), r#"[="a"]"#);
    }

    #[test]
    fn order_is_fields_keys_values_indexes() {
        let mut pes = [
            PathElement::Index(0),
            PathElement::Value(json!("a")),
            PathElement::key(vec![("name".into(), json!("b"))]),
            PathElement::field("z"),
            PathElement::field("a"),
        ];
        pes.sort();
        let keys: Vec<_> = pes.iter().map(PathElement::to_fields_v1_key).collect();
        assert_eq!(keys, ["f:a", "f:z", r#"k:{"name":"b"}"#, r#"v:"a""#, "i:0"]);
    }
}
