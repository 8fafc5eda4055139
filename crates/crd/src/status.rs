//! The status a CRD gets once accepted, as upstream's naming and establishing controllers
//! would set it: `NamesAccepted` (with a conflict check against the other CRDs of the same
//! group), `Established`, `acceptedNames` and `storedVersions`.

use crate::definition::{group, spec_names, storage_version, Names};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashSet;

fn crd_name(crd: &Value) -> &str {
    crd.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Names another CRD holds: its `status.acceptedNames`, or its `spec.names` when it has
/// not been accepted yet.
fn held_names(crd: &Value) -> Names {
    match crd.pointer("/status/acceptedNames") {
        Some(n)
            if n.get("plural")
                .and_then(Value::as_str)
                .is_some_and(|p| !p.is_empty()) =>
        {
            Names::from_value(n)
        }
        _ => spec_names(crd),
    }
}

/// `"<name>" is already in use` unless `requested` is fresh or already accepted by this CRD.
fn check(requested: &str, accepted: &str, taken: &HashSet<String>) -> Result<(), String> {
    if requested == accepted || !taken.contains(requested) {
        Ok(())
    } else {
        Err(format!("\"{requested}\" is already in use"))
    }
}

/// The full `status` for `crd` after acceptance. `others` are the other stored CRDs (the
/// CRD itself, matched by name, and other groups are ignored). On a name conflict
/// `NamesAccepted` is `False` with upstream's reason (`PluralConflict`, `SingularConflict`,
/// `ShortNamesConflict`, `KindConflict` or `ListKindConflict`) and the conflicting names
/// keep their previously accepted value; `Established` becomes `True` only once names were
/// accepted (and stays `True` afterwards). Conditions of other types are kept, and a
/// condition's `lastTransitionTime` only changes with its status.
pub fn accepted_status(crd: &Value, others: &[Value], now: DateTime<Utc>) -> Value {
    let own_group = group(crd);
    let own_name = crd_name(crd);
    let mut resources: HashSet<String> = HashSet::new();
    let mut kinds: HashSet<String> = HashSet::new();
    for other in others {
        if group(other) != own_group || crd_name(other) == own_name {
            continue;
        }
        let n = held_names(other);
        resources.insert(n.plural);
        resources.insert(n.singular);
        resources.extend(n.short_names);
        kinds.insert(n.kind);
        kinds.insert(n.list_kind);
    }
    resources.remove("");
    kinds.remove("");

    let old_status = crd.get("status").cloned().unwrap_or_else(|| json!({}));
    let requested = spec_names(crd);
    let accepted = match old_status.get("acceptedNames") {
        Some(n) if n.is_object() => Names::from_value(n),
        _ => Names::default(),
    };
    let mut new_names = accepted.clone();
    let mut conflict: Option<(&str, String)> = None;
    let mut record = |reason: &'static str, err: String| conflict = Some((reason, err));

    match check(&requested.plural, &accepted.plural, &resources) {
        Ok(()) => new_names.plural = requested.plural.clone(),
        Err(e) => record("PluralConflict", e),
    }
    match check(&requested.singular, &accepted.singular, &resources) {
        Ok(()) => new_names.singular = requested.singular.clone(),
        Err(e) => record("SingularConflict", e),
    }
    let accepted_short: HashSet<&String> = accepted.short_names.iter().collect();
    let short_conflict = requested
        .short_names
        .iter()
        .find(|s| !accepted_short.contains(s) && resources.contains(*s));
    match short_conflict {
        Some(s) => record("ShortNamesConflict", format!("\"{s}\" is already in use")),
        None => new_names.short_names = requested.short_names.clone(),
    }
    match check(&requested.kind, &accepted.kind, &kinds) {
        Ok(()) => new_names.kind = requested.kind.clone(),
        Err(e) => record("KindConflict", e),
    }
    match check(&requested.list_kind, &accepted.list_kind, &kinds) {
        Ok(()) => new_names.list_kind = requested.list_kind.clone(),
        Err(e) => record("ListKindConflict", e),
    }
    new_names.categories = requested.categories.clone();

    let old_conditions: Vec<Value> = old_status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let old_condition = |t: &str| {
        old_conditions
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
    };
    let stamp = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        let since = old_condition(type_)
            .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| Value::String(stamp.clone()));
        json!({
            "type": type_,
            "status": status,
            "lastTransitionTime": since,
            "reason": reason,
            "message": message,
        })
    };

    let names_accepted = match &conflict {
        None => condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
        Some((reason, message)) => condition("NamesAccepted", "False", reason, message),
    };
    let was_established = old_condition("Established")
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some("True");
    let established = if conflict.is_none() || was_established {
        condition(
            "Established",
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
        )
    } else {
        condition(
            "Established",
            "False",
            "NotAccepted",
            "not all names are accepted",
        )
    };
    let mut conditions = vec![names_accepted, established];
    conditions.extend(
        old_conditions
            .iter()
            .filter(|c| {
                !matches!(
                    c.get("type").and_then(Value::as_str),
                    Some("NamesAccepted" | "Established")
                )
            })
            .cloned(),
    );

    let mut stored: Vec<Value> = old_status
        .get("storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(v) = storage_version(crd) {
        if !stored.iter().any(|s| s.as_str() == Some(v)) {
            stored.push(Value::String(v.to_string()));
        }
    }

    let mut status = match old_status {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    status.insert("conditions".to_string(), Value::Array(conditions));
    status.insert("acceptedNames".to_string(), new_names.to_value());
    status.insert("storedVersions".to_string(), Value::Array(stored));
    Value::Object(status)
}
