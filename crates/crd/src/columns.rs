//! Server-side Table columns of custom resources: the `additionalPrinterColumns` of a version
//! (or the default `Age` column when none are declared), always preceded by `Name`, and the
//! cell value of a column for one object, typed like upstream's table convertor.

use crate::jsonpath::JsonPath;
use crate::VersionInfo;
use serde_json::Value;

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATION_TIMESTAMP_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// One `additionalPrinterColumns` entry (also used for the implicit `Name`/`Age` columns).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrinterColumn {
    pub name: String,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i32,
    pub json_path: String,
}

impl PrinterColumn {
    /// Read one entry of `additionalPrinterColumns`.
    pub fn from_value(v: &Value) -> PrinterColumn {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        PrinterColumn {
            name: s("name"),
            type_: s("type"),
            format: s("format"),
            description: s("description"),
            priority: v.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32,
            json_path: s("jsonPath"),
        }
    }

    /// The `columnDefinitions` entry of a `meta.k8s.io/v1` Table.
    pub fn to_table_definition(&self) -> Value {
        serde_json::json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }

    /// The `Name` column every custom resource table starts with.
    pub fn name_column() -> PrinterColumn {
        PrinterColumn {
            name: "Name".to_string(),
            type_: "string".to_string(),
            format: "name".to_string(),
            description: NAME_DESCRIPTION.to_string(),
            priority: 0,
            json_path: ".metadata.name".to_string(),
        }
    }

    /// The `Age` column a CRD version gets when it declares no printer columns.
    pub fn age_column() -> PrinterColumn {
        PrinterColumn {
            name: "Age".to_string(),
            type_: "date".to_string(),
            format: String::new(),
            description: CREATION_TIMESTAMP_DESCRIPTION.to_string(),
            priority: 0,
            json_path: ".metadata.creationTimestamp".to_string(),
        }
    }
}

/// Table columns of a CRD version: `Name`, then the declared printer columns, or `Age` when
/// the version declares none (as the upstream CRD handler does).
pub fn table_columns(info: &VersionInfo) -> Vec<PrinterColumn> {
    let mut columns = vec![PrinterColumn::name_column()];
    if info.printer_columns.is_empty() {
        columns.push(PrinterColumn::age_column());
    } else {
        columns.extend(info.printer_columns.iter().cloned());
    }
    columns
}

/// The cell of `col` for `obj`: `null` when the path finds nothing or the value does not fit
/// the column type. `string` columns render like kubectl (strings plain, numbers and
/// booleans as text, objects/arrays as JSON) and join several results with `,`; `integer`,
/// `number` and `boolean` cells stay JSON values; `date` cells are the raw timestamp string
/// (the caller renders the age relative to its clock).
pub fn column_value(obj: &Value, col: &PrinterColumn) -> Value {
    let Ok(path) = JsonPath::parse(&col.json_path) else {
        return Value::Null;
    };
    let results = path.find(obj);
    let Some(first) = results.first().copied() else {
        return Value::Null;
    };
    match col.type_.as_str() {
        "string" => {
            if results.len() == 1 && first.is_null() {
                return Value::Null;
            }
            Value::String(
                results
                    .iter()
                    .map(|v| text(v))
                    .collect::<Vec<_>>()
                    .join(","),
            )
        }
        "integer" => match first {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map(Value::from)
                .unwrap_or(Value::Null),
            _ => Value::Null,
        },
        "number" => match first {
            Value::Number(_) => first.clone(),
            _ => Value::Null,
        },
        "boolean" => match first {
            Value::Bool(_) => first.clone(),
            _ => Value::Null,
        },
        "date" => match first {
            Value::String(_) => first.clone(),
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
