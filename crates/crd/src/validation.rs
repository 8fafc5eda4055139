//! Validation of a CustomResourceDefinition on create and update, after upstream's
//! `ValidateCustomResourceDefinition{,Update}`: metadata name, group, scope, names, versions
//! (one storage version, unique names, a structural schema each, subresources, printer
//! columns), conversion, stored versions and the immutable fields.
//!
//! `singular` and `listKind` may be omitted: they are checked as the API server would
//! default them (see [`crate::apply_crd_defaults`]).

use crate::definition::{spec_names, versions};
use crate::field_error::{FieldError, Path};
use crate::jsonpath::JsonPath;
use crate::structural::validate_schema;
use k3rs_core::validation::{dns1035_label_errors, dns1123_subdomain_errors};
use serde_json::Value;
use std::collections::HashSet;

const COLUMN_TYPES: [&str; 5] = ["boolean", "date", "integer", "number", "string"];
const COLUMN_FORMATS: [&str; 8] = [
    "byte",
    "date",
    "date-time",
    "double",
    "float",
    "int32",
    "int64",
    "password",
];

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn string(s: &str) -> Value {
    Value::String(s.to_string())
}

/// Validate a CRD on create (`old: None`) or update (`old: Some(previous)`).
pub fn validate_crd(new: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_metadata(new, &mut errs);
    validate_spec(new, &mut errs);
    validate_stored_versions(new, old, &mut errs);
    if let Some(old) = old {
        validate_update(new, old, &mut errs);
    }
    errs
}

fn validate_metadata(crd: &Value, errs: &mut Vec<FieldError>) {
    let name = str_at(crd, "/metadata/name");
    let path = Path::new("metadata").child("name");
    if name.is_empty() {
        if str_at(crd, "/metadata/generateName").is_empty() {
            errs.push(FieldError::required(
                path.to_field(),
                "name or generateName is required",
            ));
        }
        return;
    }
    for msg in dns1123_subdomain_errors(name) {
        errs.push(FieldError::invalid(path.to_field(), &string(name), &msg));
    }
    let names = spec_names(crd);
    let group = str_at(crd, "/spec/group");
    if name != format!("{}.{}", names.plural, group) {
        errs.push(FieldError::invalid(
            path.to_field(),
            &string(name),
            r#"must be spec.names.plural+"."+spec.group"#,
        ));
    }
}

fn validate_spec(crd: &Value, errs: &mut Vec<FieldError>) {
    let spec_path = Path::new("spec");
    let field = |k: &str| spec_path.child(k).to_field();

    let group = str_at(crd, "/spec/group");
    if group.is_empty() {
        errs.push(FieldError::required(field("group"), ""));
    } else {
        let msgs = dns1123_subdomain_errors(group);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                field("group"),
                &string(group),
                &msgs.join(","),
            ));
        } else if !group.contains('.') {
            errs.push(FieldError::invalid(
                field("group"),
                &string(group),
                "should be a domain with at least one dot",
            ));
        }
    }

    match str_at(crd, "/spec/scope") {
        "" => errs.push(FieldError::required(field("scope"), "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(FieldError::not_supported(
            field("scope"),
            &string(other),
            &["Cluster".to_string(), "Namespaced".to_string()],
        )),
    }

    let versions_path = spec_path.child("versions");
    let versions = versions(crd);
    let mut storage_count = 0;
    let mut seen = HashSet::new();
    let mut unique = true;
    for (i, v) in versions.iter().enumerate() {
        let vp = versions_path.index(i);
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage_count += 1;
        }
        if !seen.insert(name) {
            unique = false;
        }
        let msgs = dns1035_label_errors(name);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                vp.child("name").to_field(),
                &string(name),
                &msgs.join(","),
            ));
        }
        validate_version(v, &vp, errs);
    }
    let version_names = Value::Array(
        versions
            .iter()
            .map(|v| v.get("name").cloned().unwrap_or(Value::Null))
            .collect(),
    );
    if !unique {
        errs.push(FieldError::invalid(
            versions_path.to_field(),
            &version_names,
            "must contain unique version names",
        ));
    }
    if storage_count != 1 {
        errs.push(FieldError::invalid(
            versions_path.to_field(),
            &version_names,
            "must have exactly one version marked as storage version",
        ));
    }

    validate_names(crd, &spec_path.child("names"), errs);
    validate_conversion(crd, &spec_path.child("conversion"), errs);

    if crd.pointer("/spec/preserveUnknownFields") == Some(&Value::Bool(true)) {
        errs.push(FieldError::invalid(
            field("preserveUnknownFields"),
            &Value::Bool(true),
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        ));
    }
}

fn validate_names(crd: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    let names = spec_names(crd);
    let field = |k: &str| path.child(k).to_field();
    for (key, value) in [
        ("plural", &names.plural),
        ("singular", &names.singular),
        ("kind", &names.kind),
        ("listKind", &names.list_kind),
    ] {
        if value.is_empty() {
            errs.push(FieldError::required(field(key), ""));
        }
    }
    for (key, value) in [("plural", &names.plural), ("singular", &names.singular)] {
        let msgs = dns1035_label_errors(value);
        if !value.is_empty() && !msgs.is_empty() {
            errs.push(FieldError::invalid(
                field(key),
                &string(value),
                &msgs.join(","),
            ));
        }
    }
    for (key, value) in [("kind", &names.kind), ("listKind", &names.list_kind)] {
        let msgs = dns1035_label_errors(&value.to_lowercase());
        if !value.is_empty() && !msgs.is_empty() {
            errs.push(FieldError::invalid(
                field(key),
                &string(value),
                &format!(
                    "may have mixed case, but should otherwise match: {}",
                    msgs.join(",")
                ),
            ));
        }
    }
    for (list, key) in [
        (&names.short_names, "shortNames"),
        (&names.categories, "categories"),
    ] {
        for (i, s) in list.iter().enumerate() {
            let msgs = dns1035_label_errors(s);
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(
                    path.child(key).index(i).to_field(),
                    &string(s),
                    &msgs.join(","),
                ));
            }
        }
    }
    if !names.kind.is_empty() && names.kind == names.list_kind {
        errs.push(FieldError::invalid(
            field("listKind"),
            &string(&names.list_kind),
            "kind and listKind may not be the same",
        ));
    }
}

fn validate_version(v: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    let schema_path = path.child("schema").child("openAPIV3Schema");
    match v.pointer("/schema/openAPIV3Schema") {
        None | Some(Value::Null) => {
            errs.push(FieldError::required(
                schema_path.to_field(),
                "schemas are required",
            ));
        }
        Some(schema) => errs.extend(validate_schema(schema, &schema_path)),
    }

    if let Some(scale) = v.pointer("/subresources/scale").filter(|s| !s.is_null()) {
        let scale_path = path.child("subresources").child("scale");
        for (key, prefix, required) in [
            ("specReplicasPath", ".spec.", true),
            ("statusReplicasPath", ".status.", true),
            ("labelSelectorPath", ".status.", false),
        ] {
            let p = scale_path.child(key).to_field();
            let value = scale.get(key).and_then(Value::as_str).unwrap_or("");
            if value.is_empty() {
                if required {
                    errs.push(FieldError::required(p, ""));
                }
                continue;
            }
            if let Some(e) = simple_json_path(value, &p) {
                errs.push(e);
            } else if !value.starts_with(prefix) {
                errs.push(FieldError::invalid(
                    p,
                    &string(value),
                    &format!(
                        "should be a json path under {}",
                        prefix.trim_end_matches('.')
                    ),
                ));
            }
        }
    }

    if let Some(cols) = v.get("additionalPrinterColumns").and_then(Value::as_array) {
        for (i, col) in cols.iter().enumerate() {
            let cp = path.child("additionalPrinterColumns").index(i);
            validate_column(col, &cp, errs);
        }
    }
}

fn simple_json_path(s: &str, field: &str) -> Option<FieldError> {
    if !s.starts_with('.') {
        return Some(FieldError::invalid(
            field,
            &string(s),
            "must be a simple json path starting with .",
        ));
    }
    if let Err(e) = JsonPath::parse(s) {
        return Some(FieldError::invalid(
            field,
            &string(s),
            &format!("must be a valid JSONPath: {}", e.reason),
        ));
    }
    None
}

fn validate_column(col: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    let field = |k: &str| path.child(k).to_field();
    let get = |k: &str| col.get(k).and_then(Value::as_str).unwrap_or("");
    if get("name").is_empty() {
        errs.push(FieldError::required(field("name"), ""));
    }
    let types = format!("must be one of {}", COLUMN_TYPES.join(","));
    match get("type") {
        "" => errs.push(FieldError::required(field("type"), &types)),
        t if !COLUMN_TYPES.contains(&t) => {
            errs.push(FieldError::invalid(field("type"), &string(t), &types))
        }
        _ => {}
    }
    let format = get("format");
    if !format.is_empty() && !COLUMN_FORMATS.contains(&format) {
        errs.push(FieldError::invalid(
            field("format"),
            &string(format),
            &format!("must be one of {}", COLUMN_FORMATS.join(",")),
        ));
    }
    let json_path = get("jsonPath");
    if json_path.is_empty() {
        errs.push(FieldError::required(field("JSONPath"), ""));
    } else if let Some(e) = simple_json_path(json_path, &field("JSONPath")) {
        errs.push(e);
    }
}

fn validate_conversion(crd: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    let Some(conversion) = crd.pointer("/spec/conversion").filter(|c| !c.is_null()) else {
        return;
    };
    let strategy = conversion
        .get("strategy")
        .and_then(Value::as_str)
        .unwrap_or("");
    let field = |k: &str| path.child(k).to_field();
    let client_config = conversion
        .pointer("/webhook/clientConfig")
        .or_else(|| conversion.get("webhookClientConfig"))
        .filter(|c| !c.is_null());
    match strategy {
        "" => errs.push(FieldError::required(field("strategy"), "")),
        "None" => {
            if conversion.get("webhook").is_some_and(|w| !w.is_null()) {
                errs.push(FieldError::forbidden(
                    field("webhook"),
                    "should not be set when strategy is not set to Webhook",
                ));
            }
        }
        "Webhook" => match client_config {
            None => errs.push(FieldError::required(
                path.child("webhook").child("clientConfig").to_field(),
                "required when strategy is set to Webhook",
            )),
            Some(cc) => {
                let has_url = cc.get("url").is_some_and(|u| !u.is_null());
                let has_service = cc.get("service").is_some_and(|s| !s.is_null());
                if has_url == has_service {
                    errs.push(FieldError::required(
                        path.child("webhook").child("clientConfig").to_field(),
                        "exactly one of url or service is required",
                    ));
                }
            }
        },
        other => errs.push(FieldError::not_supported(
            field("strategy"),
            &string(other),
            &["None".to_string(), "Webhook".to_string()],
        )),
    }
}

/// Every stored version must still be listed in `spec.versions` (a version can only be
/// dropped after it was removed from `status.storedVersions`).
fn validate_stored_versions(new: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let stored = new
        .pointer("/status/storedVersions")
        .or_else(|| old.and_then(|o| o.pointer("/status/storedVersions")))
        .and_then(Value::as_array);
    let Some(stored) = stored else { return };
    let defined: HashSet<&str> = versions(new)
        .iter()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .collect();
    let path = Path::new("status").child("storedVersions");
    for (i, v) in stored.iter().enumerate() {
        if !v.as_str().is_some_and(|s| defined.contains(s)) {
            errs.push(FieldError::invalid(
                path.index(i).to_field(),
                v,
                "must appear in spec.versions",
            ));
        }
    }
}

fn is_established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Established")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn validate_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let mut immutable = |field: &str, new_value: &str, old_value: &str| {
        if new_value != old_value {
            errs.push(FieldError::invalid(
                field,
                &string(new_value),
                "field is immutable",
            ));
        }
    };
    let (new_names, old_names) = (spec_names(new), spec_names(old));
    if is_established(old) {
        immutable(
            "spec.scope",
            str_at(new, "/spec/scope"),
            str_at(old, "/spec/scope"),
        );
        immutable("spec.names.kind", &new_names.kind, &old_names.kind);
    }
    immutable(
        "spec.group",
        str_at(new, "/spec/group"),
        str_at(old, "/spec/group"),
    );
    immutable("spec.names.plural", &new_names.plural, &old_names.plural);
}
