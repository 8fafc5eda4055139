//! Server-side apply: merging an applied configuration into the live object,
//! pruning what the applier stopped applying, detecting conflicts with other
//! managers, and kubectl's client-side-apply to server-side-apply upgrade.
//!
//! This follows structured-merge-diff's `Updater.Apply` and the apiserver
//! `fieldmanager` chain (strip-meta, before-first-apply, last-applied updater,
//! manager cap). It neither stores nor validates objects beyond list keys:
//! defaulting, reset fields of subresources, admission and persistence belong
//! to the API server.

use std::fmt;

use serde_json::{Map, Value};

use crate::fieldset::FieldSet;
use crate::managed::{
    cap_update_managers, drop_empty, has_managed_fields, now, read_managed_fields,
    strip_managed_fields, write_managed_fields, ManagedFieldsEntry, Operation, MAX_UPDATE_MANAGERS,
};
use crate::merge::{compare, merge, remove_fields};
use crate::path::{path_to_string, PathElement};
use crate::schema::ListTypes;

/// The annotation client-side `kubectl apply` keeps its last configuration in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manager client-side `kubectl apply` writes as.
pub const CLIENT_SIDE_APPLY_MANAGER: &str = "kubectl-client-side-apply";

/// The manager `kubectl apply --server-side` applies as by default.
pub const KUBECTL_MANAGER: &str = "kubectl";

/// The manager pre-existing fields are attributed to when an object without
/// managedFields is first written.
pub const BEFORE_FIRST_APPLY_MANAGER: &str = "before-first-apply";

/// Upstream's limit on the total size of annotations.
const ANNOTATIONS_SIZE_LIMIT: usize = 256 * 1024;

/// A field the applier would change that another manager owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The owning manager's name.
    pub manager: String,
    /// The field, printed like `.spec.containers[name="web"].image`.
    pub path: String,
    /// How the owner wrote the field.
    pub operation: Operation,
    /// The version the owner wrote in.
    pub api_version: String,
    /// The owner's subresource, `""` for the main resource.
    pub subresource: String,
}

impl Conflict {
    /// The owner as upstream prints it: `"m"`, `"m" with subresource "status"`,
    /// and for Update owners `... using apps/v1`.
    pub fn manager_description(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    /// The `StatusCause` message of a `FieldManagerConflict` cause; its field is [`Conflict::path`].
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.manager_description())
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conflict with {}: {}",
            self.manager_description(),
            self.path
        )
    }
}

/// Why an apply was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change (HTTP 409, reason Conflict).
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The applied configuration is malformed (HTTP 422 / 400).
    #[error("{0}")]
    Invalid(String),
}

/// Upstream's `getConflictMessage`.
fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!("Apply failed with 1 conflict: {only}");
    }
    let mut owners: Vec<String> = Vec::new();
    for conflict in conflicts {
        let owner = conflict.manager_description();
        if !owners.contains(&owner) {
            owners.push(owner);
        }
    }
    owners.sort();
    let mut lines = Vec::new();
    for owner in &owners {
        lines.push(format!("conflicts with {owner}:"));
        for conflict in conflicts
            .iter()
            .filter(|c| c.manager_description() == *owner)
        {
            lines.push(format!("- {}", conflict.path));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Server-side apply of `config` by `manager` onto `live` (`None`: create).
///
/// Fields in `config` are set (maps merge, associative lists merge by key,
/// atomic lists and scalars are replaced); fields the manager applied last
/// time but no longer applies are removed unless another manager owns them.
/// Changing a field another manager owns is a conflict unless `force`, which
/// takes the field over. Returns the merged object with its managedFields.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    subresource: &str,
    api_version: &str,
    schema: &dyn ListTypes,
) -> Result<Value, ApplyError> {
    apply_with_reset(
        live,
        config,
        manager,
        force,
        subresource,
        api_version,
        schema,
        &FieldSet::new(),
    )
}

/// [`apply`] for an endpoint with reset fields (upstream's
/// `ResetFieldsStrategy`, e.g. [`status_reset_fields`]): the configuration's
/// values under `reset` are dropped, and nobody gains or loses ownership there.
#[allow(clippy::too_many_arguments)]
pub fn apply_with_reset(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    subresource: &str,
    api_version: &str,
    schema: &dyn ListTypes,
    reset: &FieldSet,
) -> Result<Value, ApplyError> {
    if !config.is_object() {
        return Err(ApplyError::Invalid(
            "the applied configuration must be a JSON object".into(),
        ));
    }
    if config
        .pointer("/metadata/managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApplyError::Invalid(
            "metadata.managedFields must be nil".into(),
        ));
    }
    if let Some(live) = live {
        let kind = |v: &Value| v.get("kind").and_then(Value::as_str).map(str::to_owned);
        if let (Some(theirs), Some(ours)) = (kind(live), kind(config)) {
            if theirs != ours {
                return Err(ApplyError::Invalid(format!(
                    "the applied configuration is a {ours}, the object is a {theirs}"
                )));
            }
        }
    }
    let mut config = without_nulls(config);
    if !reset.is_empty() {
        remove_fields(&mut config, reset, &FieldSet::new(), schema);
    }

    let mut live_obj = live.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    strip_managed_fields(&mut live_obj);
    let mut entries = live.map(read_managed_fields).unwrap_or_default();
    if live.is_some_and(|l| !has_managed_fields(l)) {
        entries.extend(before_first_apply(
            &live_obj,
            api_version,
            subresource,
            schema,
        ));
    }

    let applied = FieldSet::try_from_object(&config, schema).map_err(ApplyError::Invalid)?;
    let mut merged = merge(&live_obj, &config, schema).map_err(ApplyError::Invalid)?;

    let existing = entries
        .iter()
        .position(|e| e.is_for(manager, Operation::Apply, api_version, subresource));
    let previous = existing.map(|i| entries[i].clone());
    let me = match existing {
        Some(i) => {
            entries[i].fields = applied;
            entries[i].api_version = api_version.to_string();
            i
        }
        None => {
            entries.push(ManagedFieldsEntry::new(
                manager,
                Operation::Apply,
                api_version,
                subresource,
                applied,
            ));
            entries.len() - 1
        }
    };

    // Prune what this manager applied before and nobody owns any more.
    if let Some(previous) = &previous {
        let owned = entries
            .iter()
            .fold(FieldSet::new(), |acc, e| acc.union(&e.fields));
        let orphaned = previous.fields.difference(&owned);
        if !orphaned.is_empty() {
            remove_fields(&mut merged, &orphaned, &owned, schema);
        }
    }

    let comparison = compare(&live_obj, &merged, schema).without(reset);
    let changed = comparison.changed();
    let mut conflicts = Vec::new();
    let mut taken = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if i == me {
            continue;
        }
        let contested = entry.fields.intersection(&changed);
        if contested.is_empty() {
            continue;
        }
        conflicts.extend(contested.paths().iter().map(|path| Conflict {
            manager: entry.manager.clone(),
            path: path_to_string(path),
            operation: entry.operation,
            api_version: entry.api_version.clone(),
            subresource: entry.subresource.clone(),
        }));
        taken.push((i, contested));
    }
    if !force && !conflicts.is_empty() {
        conflicts.sort_by(|a, b| {
            (a.manager_description(), &a.path).cmp(&(b.manager_description(), &b.path))
        });
        return Err(ApplyError::Conflicts(conflicts));
    }
    for (i, contested) in taken {
        entries[i].fields = entries[i].fields.difference(&contested);
    }
    if !comparison.removed.is_empty() {
        for (i, entry) in entries.iter_mut().enumerate() {
            if i != me {
                entry.fields = entry.fields.difference(&comparison.removed);
            }
        }
    }

    let object_changed = merged != live_obj;
    let entry = &mut entries[me];
    match &previous {
        Some(previous) if !object_changed && previous.fields == entry.fields => {
            entry.time = previous.time;
        }
        _ => entry.time = Some(now()),
    }
    drop_empty(&mut entries);
    cap_update_managers(&mut entries, MAX_UPDATE_MANAGERS);

    if manager == KUBECTL_MANAGER {
        sync_last_applied(&mut merged, &config);
    }
    write_managed_fields(&mut merged, &entries);
    Ok(merged)
}

/// The entry attributing all of an untracked object's fields to
/// `before-first-apply`, or nothing for an empty object.
pub(crate) fn before_first_apply(
    live: &Value,
    api_version: &str,
    subresource: &str,
    schema: &dyn ListTypes,
) -> Option<ManagedFieldsEntry> {
    let fields = FieldSet::from_object(live, schema);
    (!fields.is_empty()).then(|| {
        ManagedFieldsEntry::new(
            BEFORE_FIRST_APPLY_MANAGER,
            Operation::Update,
            api_version,
            subresource,
            fields,
        )
    })
}

/// A copy of `value` without null map values: a null in an applied
/// configuration means "not specified".
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Upstream's `lastAppliedUpdater`: when kubectl server-side applies to an
/// object that carries the client-side-apply annotation, the annotation is
/// rewritten to the new configuration so a later client-side apply diffs
/// against it (or dropped when it would exceed the annotation size limit).
fn sync_last_applied(merged: &mut Value, config: &Value) {
    let Some(Value::Object(annotations)) = merged.pointer_mut("/metadata/annotations") else {
        return;
    };
    if !annotations.contains_key(LAST_APPLIED_ANNOTATION) {
        return;
    }
    let mut config = config.clone();
    if let Some(Value::Object(metadata)) = config.get_mut("metadata") {
        if let Some(Value::Object(theirs)) = metadata.get_mut("annotations") {
            theirs.remove(LAST_APPLIED_ANNOTATION);
            if theirs.is_empty() {
                metadata.remove("annotations");
            }
        }
    }
    // Go's encoding/json sorts map keys and its encoder ends with a newline.
    let text = format!("{}\n", sorted_keys(&config));
    if text.len() > ANNOTATIONS_SIZE_LIMIT {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    } else {
        annotations.insert(LAST_APPLIED_ANNOTATION.into(), Value::String(text));
    }
}

fn sorted_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

/// The usual reset fields of a resource with a status subresource: writes to
/// the main resource ignore `status`, writes to `status` ignore `spec`.
/// Resources with other rules (e.g. Pods also keep some metadata out of
/// status writes) build their own set.
pub fn status_reset_fields(subresource: &str) -> FieldSet {
    let mut reset = FieldSet::new();
    match subresource {
        "" => reset.insert(&[PathElement::field("status")]),
        "status" => reset.insert(&[PathElement::field("spec")]),
        _ => {}
    }
    reset
}

/// kubectl's client-side-apply to server-side-apply migration: the fields of
/// the `kubectl.kubernetes.io/last-applied-configuration` annotation that the
/// live object still has become owned by `manager` (operation Apply) and stop
/// being owned by `kubectl-client-side-apply`, so that a later apply by
/// `manager` without them removes them. Does nothing without a parseable
/// annotation. The API server calls this before [`apply`] when `manager` is
/// `kubectl` and has no Apply entry yet.
pub fn upgrade_client_side_apply(live: &mut Value, manager: &str, schema: &dyn ListTypes) {
    let Some(text) = live
        .pointer(&format!(
            "/metadata/annotations/{}",
            LAST_APPLIED_ANNOTATION
                .replace('~', "~0")
                .replace('/', "~1")
        ))
        .and_then(Value::as_str)
    else {
        return;
    };
    let Ok(last_applied) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let mut live_obj = live.clone();
    strip_managed_fields(&mut live_obj);
    let live_fields = FieldSet::from_object(&live_obj, schema);
    let moved = FieldSet::from_object(&last_applied, schema).intersection(&live_fields);
    if moved.is_empty() {
        return;
    }

    let api_version = live_obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut entries = read_managed_fields(live);
    if !has_managed_fields(live) {
        entries.extend(before_first_apply(&live_obj, &api_version, "", schema));
    }
    let csa_version = entries
        .iter()
        .find(|e| e.manager == CLIENT_SIDE_APPLY_MANAGER && e.operation == Operation::Update)
        .map(|e| e.api_version.clone());
    for entry in entries.iter_mut() {
        let previous_owner = (entry.manager == CLIENT_SIDE_APPLY_MANAGER
            || entry.manager == BEFORE_FIRST_APPLY_MANAGER)
            && entry.operation == Operation::Update
            && entry.subresource.is_empty();
        if previous_owner {
            entry.fields = entry.fields.difference(&moved);
        }
    }
    match entries
        .iter_mut()
        .find(|e| e.is_for(manager, Operation::Apply, "", ""))
    {
        Some(entry) => entry.fields = entry.fields.union(&moved),
        None => entries.push(ManagedFieldsEntry::new(
            manager,
            Operation::Apply,
            csa_version.as_deref().unwrap_or(&api_version),
            "",
            moved,
        )),
    }
    drop_empty(&mut entries);
    write_managed_fields(live, &entries);
}
