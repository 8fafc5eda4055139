//! Table column definitions: the [`Column`] type and the handful of columns
//! (name, age, containers, images, selector) that many resources share.
//!
//! Column names, types and priorities follow upstream kube-apiserver; kubectl
//! upper-cases the names itself and hides priority 1 columns unless `-o wide`.

/// One `meta.k8s.io/v1` `TableColumnDefinition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Human readable name, e.g. `"Name"` or `"Cluster-IP"`.
    pub name: &'static str,
    /// OpenAPI type: `"string"`, `"integer"`, `"number"`, `"boolean"` or `"date"`.
    pub type_: &'static str,
    /// `"name"` for the column holding the object name, otherwise empty.
    pub format: &'static str,
    /// Human readable description of the column.
    pub description: &'static str,
    /// 0 for default columns, 1 for columns shown only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// A default (priority 0) string column.
    pub(crate) const fn string(name: &'static str, description: &'static str) -> Self {
        Self {
            name,
            type_: "string",
            format: "",
            description,
            priority: 0,
        }
    }

    /// A default (priority 0) integer column.
    pub(crate) const fn integer(name: &'static str, description: &'static str) -> Self {
        Self {
            type_: "integer",
            ..Self::string(name, description)
        }
    }

    /// A default (priority 0) boolean column.
    pub(crate) const fn boolean(name: &'static str, description: &'static str) -> Self {
        Self {
            type_: "boolean",
            ..Self::string(name, description)
        }
    }

    /// The same column, shown only with `-o wide`.
    pub(crate) const fn wide(self) -> Self {
        Self {
            priority: 1,
            ..self
        }
    }

    /// The column as `TableColumnDefinition` JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// ObjectMeta's documentation of `name`, used by every NAME column.
pub(crate) const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// ObjectMeta's documentation of `creationTimestamp`, used by every AGE column.
pub(crate) const CREATION_TIMESTAMP_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The NAME column (format `name`).
pub(crate) const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: NAME_DESCRIPTION,
    priority: 0,
};

/// The AGE column: human duration since `metadata.creationTimestamp`.
pub(crate) const AGE: Column = Column::string("Age", CREATION_TIMESTAMP_DESCRIPTION);

/// The wide CONTAINERS column of workload resources.
pub(crate) const CONTAINERS: Column =
    Column::string("Containers", "Names of each container in the template.").wide();

/// The wide IMAGES column of workload resources.
pub(crate) const IMAGES: Column = Column::string(
    "Images",
    "Images referenced by each container in the template.",
)
.wide();

/// The wide SELECTOR column of workload resources.
pub(crate) const SELECTOR: Column = Column::string(
    "Selector",
    "A label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
)
.wide();

/// Columns of the default table convertor (resources without a dedicated
/// printer): NAME and CREATED AT.
pub(crate) fn default_columns() -> Vec<Column> {
    vec![
        NAME,
        Column {
            name: "Created At",
            type_: "date",
            format: "",
            description: CREATION_TIMESTAMP_DESCRIPTION,
            priority: 0,
        },
    ]
}
