//! `metadata.managedFields`: decoding, encoding, manager identity and the cap
//! on the number of Update entries.
//!
//! Entries are identified as upstream's `BuildManagerIdentifier` does: by
//! manager, operation and subresource, plus the apiVersion for Update entries
//! only (an applier keeps one entry across versions). Encoding sorts entries as
//! kube-apiserver does: Apply before Update, then by time, manager, apiVersion
//! and subresource.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::fieldset::FieldSet;
use crate::Error;

/// The only `fieldsType` Kubernetes defines.
pub const FIELDS_V1: &str = "FieldsV1";

/// Upstream's `DefaultMaxUpdateManagers`.
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// The bucket older Update entries are merged into past the cap.
pub const ANCIENT_CHANGES_MANAGER: &str = "ancient-changes";

/// The kind of write that produced an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update or a non-apply patch.
    Update,
}

impl Operation {
    /// The wire spelling, `Apply` or `Update`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedFieldsEntry {
    /// The field manager's name.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The group/version the fields were written in.
    pub api_version: String,
    /// When the entry last changed, to the second.
    pub time: Option<DateTime<Utc>>,
    /// Always `FieldsV1`.
    pub fields_type: String,
    /// The owned fields.
    pub fields: FieldSet,
    /// `""` for the main resource, else e.g. `status` or `scale`.
    pub subresource: String,
}

impl ManagedFieldsEntry {
    /// A new entry stamped now.
    pub fn new(
        manager: &str,
        operation: Operation,
        api_version: &str,
        subresource: &str,
        fields: FieldSet,
    ) -> Self {
        ManagedFieldsEntry {
            manager: manager.to_string(),
            operation,
            api_version: api_version.to_string(),
            time: Some(now()),
            fields_type: FIELDS_V1.to_string(),
            fields,
            subresource: subresource.to_string(),
        }
    }

    /// Whether this entry belongs to the writer described by the arguments
    /// (upstream's manager identifier: the apiVersion counts for Update only).
    pub fn is_for(
        &self,
        manager: &str,
        operation: Operation,
        api_version: &str,
        subresource: &str,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == subresource
            && (operation == Operation::Apply || self.api_version == api_version)
    }

    /// Whether two entries have the same manager identifier.
    pub fn same_identity(&self, other: &ManagedFieldsEntry) -> bool {
        self.is_for(
            &other.manager,
            other.operation,
            &other.api_version,
            &other.subresource,
        )
    }

    /// Decodes one entry of `metadata.managedFields`.
    pub fn from_json(value: &Value) -> Result<Self, Error> {
        let invalid = |what: &str| Error::InvalidEntry(what.to_string());
        let obj = value.as_object().ok_or_else(|| invalid("not an object"))?;
        let text = |key: &str| obj.get(key).and_then(Value::as_str).unwrap_or_default();
        let operation = match text("operation") {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            other => return Err(invalid(&format!("unknown operation {other:?}"))),
        };
        let fields_type = text("fieldsType");
        if !fields_type.is_empty() && fields_type != FIELDS_V1 {
            return Err(invalid(&format!("unknown fieldsType {fields_type:?}")));
        }
        let time = match obj.get("time").and_then(Value::as_str) {
            Some(time) => Some(
                DateTime::parse_from_rfc3339(time)
                    .map_err(|err| invalid(&format!("time {time:?}: {err}")))?
                    .with_timezone(&Utc),
            ),
            None => None,
        };
        Ok(ManagedFieldsEntry {
            manager: text("manager").to_string(),
            operation,
            api_version: text("apiVersion").to_string(),
            time,
            fields_type: FIELDS_V1.to_string(),
            fields: FieldSet::from_fields_v1(obj.get("fieldsV1").unwrap_or(&Value::Null))?,
            subresource: text("subresource").to_string(),
        })
    }

    /// Encodes the entry in the field order of `metav1.ManagedFieldsEntry`.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("manager".into(), Value::String(self.manager.clone()));
        obj.insert(
            "operation".into(),
            Value::String(self.operation.as_str().into()),
        );
        obj.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(time) = self.time {
            obj.insert(
                "time".into(),
                Value::String(time.to_rfc3339_opts(SecondsFormat::Secs, true)),
            );
        }
        obj.insert("fieldsType".into(), Value::String(FIELDS_V1.into()));
        obj.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            obj.insert(
                "subresource".into(),
                Value::String(self.subresource.clone()),
            );
        }
        Value::Object(obj)
    }
}

/// The current time, truncated to the second as managedFields store it.
pub(crate) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_default()
}

/// Whether `metadata.managedFields` is present as a non-empty list.
pub(crate) fn has_managed_fields(obj: &Value) -> bool {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|entries| !entries.is_empty())
}

/// The entries of `metadata.managedFields`; malformed entries are skipped.
pub fn read_managed_fields(obj: &Value) -> Vec<ManagedFieldsEntry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter_map(|entry| ManagedFieldsEntry::from_json(entry).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Sets `metadata.managedFields` to `entries` in upstream order, dropping it
/// when there are none.
pub fn write_managed_fields(obj: &mut Value, entries: &[ManagedFieldsEntry]) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let mut sorted: Vec<&ManagedFieldsEntry> = entries.iter().collect();
    sorted.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| {
                let seconds = |e: &ManagedFieldsEntry| e.time.map_or(0, |t| t.timestamp());
                seconds(p).cmp(&seconds(q))
            })
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
    let encoded: Vec<Value> = sorted.iter().map(|e| e.to_json()).collect();
    if encoded.is_empty() {
        if let Some(Value::Object(metadata)) = root.get_mut("metadata") {
            metadata.remove("managedFields");
        }
        return;
    }
    let metadata = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    if let Value::Object(metadata) = metadata {
        metadata.insert("managedFields".into(), Value::Array(encoded));
    }
}

/// Removes `metadata.managedFields` from an object.
pub(crate) fn strip_managed_fields(obj: &mut Value) {
    if let Some(Value::Object(metadata)) = obj.get_mut("metadata") {
        metadata.remove("managedFields");
    }
}

/// Drops entries that own nothing.
pub(crate) fn drop_empty(entries: &mut Vec<ManagedFieldsEntry>) {
    entries.retain(|e| !e.fields.is_empty());
}

/// Upstream's `capManagersManager`: past `max` Update entries, the oldest are
/// merged, per apiVersion, into an `ancient-changes` bucket.
pub(crate) fn cap_update_managers(entries: &mut Vec<ManagedFieldsEntry>, max: usize) {
    let mut updaters: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].operation == Operation::Update)
        .collect();
    if updaters.len() <= max {
        return;
    }
    updaters.sort_by_key(|&i| entries[i].time);
    let mut remaining = updaters.len();
    let mut first_of_version: Vec<(String, usize)> = Vec::new();
    let mut removed = vec![false; entries.len()];
    for &i in &updaters {
        if remaining <= max {
            break;
        }
        let version = entries[i].api_version.clone();
        match first_of_version.iter().find(|(v, _)| *v == version) {
            Some(&(_, bucket)) => {
                let merged = entries[bucket].fields.union(&entries[i].fields);
                let time = entries[i].time;
                let bucket_entry = &mut entries[bucket];
                bucket_entry.manager = ANCIENT_CHANGES_MANAGER.to_string();
                bucket_entry.subresource.clear();
                bucket_entry.fields = merged;
                bucket_entry.time = time;
                removed[i] = true;
                remaining -= 1;
            }
            None => first_of_version.push((version, i)),
        }
    }
    let mut index = 0;
    entries.retain(|_| {
        let keep = !removed[index];
        index += 1;
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entry_round_trip() {
        let raw = json!({
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": "2024-05-01T10:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:status": {"f:replicas": {}}},
            "subresource": "status"
        });
        let entry = ManagedFieldsEntry::from_json(&raw).unwrap();
        assert_eq!(entry.operation, Operation::Update);
        assert_eq!(entry.subresource, "status");
        assert_eq!(entry.to_json(), raw);
    }

    #[test]
    fn identity_ignores_api_version_for_appliers() {
        let apply = ManagedFieldsEntry::new("m", Operation::Apply, "v1", "", FieldSet::new());
        assert!(apply.is_for("m", Operation::Apply, "v2", ""));
        let update = ManagedFieldsEntry::new("m", Operation::Update, "v1", "", FieldSet::new());
        assert!(!update.is_for("m", Operation::Update, "v2", ""));
        assert!(!update.is_for("m", Operation::Update, "v1", "status"));
    }

    #[test]
    fn write_sorts_and_drops_empty_lists() {
        let mut fields = FieldSet::new();
        fields.insert(&[crate::PathElement::field("a")]);
        let mut entries = vec![
            ManagedFieldsEntry::new("b", Operation::Update, "v1", "", fields.clone()),
            ManagedFieldsEntry::new("a", Operation::Apply, "v1", "", fields.clone()),
        ];
        entries[1].time = entries[0].time.map(|t| t + chrono::Duration::seconds(5));
        let mut obj = json!({"metadata": {"name": "x"}});
        write_managed_fields(&mut obj, &entries);
        let managers: Vec<_> = read_managed_fields(&obj)
            .into_iter()
            .map(|e| e.manager)
            .collect();
        assert_eq!(managers, ["a", "b"]);
        write_managed_fields(&mut obj, &[]);
        assert_eq!(obj, json!({"metadata": {"name": "x"}}));
    }

    #[test]
    fn caps_update_managers() {
        let mut fields = FieldSet::new();
        fields.insert(&[crate::PathElement::field("a")]);
        let base = now();
        let mut entries: Vec<_> = (0..12)
            .map(|i| {
                let mut e = ManagedFieldsEntry::new(
                    &format!("m{i}"),
                    Operation::Update,
                    "v1",
                    "",
                    fields.clone(),
                );
                e.time = Some(base + chrono::Duration::seconds(i));
                e
            })
            .collect();
        cap_update_managers(&mut entries, MAX_UPDATE_MANAGERS);
        assert_eq!(entries.len(), 10);
        assert!(entries.iter().any(|e| e.manager == ANCIENT_CHANGES_MANAGER));
        assert!(!entries
            .iter()
            .any(|e| e.manager == "m0" || e.manager == "m1"));
    }
}
