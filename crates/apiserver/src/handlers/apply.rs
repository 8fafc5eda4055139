//! Field ownership on every write: server-side apply (`application/apply-patch+yaml`) and
//! the `metadata.managedFields` bookkeeping of creates, updates and patches, using
//! `k3rs-fieldmanager`.

use http::HeaderMap;
use k3rs_core::ResourceDef;
use k3rs_fieldmanager::{self as fm, ApplyError, BuiltinListTypes, FieldSet};
use serde_json::{json, Value};

use crate::admission::Target;
use crate::error::{ApiError, ApiResult};

/// The manager a write is recorded under: `?fieldManager=`, else the client's user agent
/// up to the first `/` (as upstream), else `unknown`.
pub fn manager(field_manager: Option<&str>, headers: &HeaderMap) -> String {
    if let Some(m) = field_manager.filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

fn subresource(target: Target) -> &'static str {
    match target {
        Target::Main => "",
        Target::Status => "status",
    }
}

/// Fields a write through `target` cannot change, so they move no ownership.
fn reset_fields(def: &ResourceDef, target: Target) -> FieldSet {
    if def.has_status {
        fm::status_reset_fields(subresource(target))
    } else {
        FieldSet::new()
    }
}

/// List semantics of a custom resource, from its schema's `x-kubernetes-list-type` and
/// `x-kubernetes-list-map-keys`; lists that declare nothing are atomic, as upstream.
struct SchemaListTypes<'a>(&'a k3rs_crd::Schema);

impl fm::ListTypes for SchemaListTypes<'_> {
    fn list_type(&self, path: &[fm::PathElement]) -> fm::ListType {
        let fields: Vec<&str> = path
            .iter()
            .filter_map(|p| match p {
                fm::PathElement::Field(name) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        match self.0.list_type(&fields) {
            Some((kind, keys)) if kind == "map" => {
                fm::ListType::Map(keys.iter().map(|k| fm::intern_key(k)).collect())
            }
            Some((kind, _)) if kind == "set" => fm::ListType::Set,
            _ => fm::ListType::Atomic,
        }
    }
}

/// The list semantics to track ownership with: the built-in table, or a custom
/// resource's schema.
fn list_types<'a>(custom: Option<&'a k3rs_crd::VersionInfo>) -> Box<dyn fm::ListTypes + 'a> {
    match custom {
        Some(info) => Box::new(SchemaListTypes(&info.schema)),
        None => Box::new(BuiltinListTypes),
    }
}

/// Record a create (`old` = None) or update by `manager` in `new`'s managedFields.
pub fn record(
    def: &ResourceDef,
    custom: Option<&k3rs_crd::VersionInfo>,
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    target: Target,
) -> Value {
    fm::update_with_reset(
        old,
        new,
        manager,
        subresource(target),
        &def.api_version(),
        list_types(custom).as_ref(),
        &reset_fields(def, target),
    )
}

/// Record a write through another subresource (e.g. `scale`) to the parent object.
pub fn record_subresource(
    def: &ResourceDef,
    custom: Option<&k3rs_crd::VersionInfo>,
    old: &Value,
    new: &Value,
    manager: &str,
    subresource: &str,
) -> Value {
    fm::update(
        Some(old),
        new,
        manager,
        subresource,
        &def.api_version(),
        list_types(custom).as_ref(),
    )
}

/// Parse an apply body (YAML or JSON, which is YAML too).
pub fn parse_config(body: &[u8]) -> ApiResult<Value> {
    let config: Value = serde_yaml::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "an applied configuration must be an object",
        ));
    }
    Ok(config)
}

/// Server-side apply of `config` by `manager` onto `live` (None: the object is created).
pub fn apply(
    def: &ResourceDef,
    custom: Option<&k3rs_crd::VersionInfo>,
    live: Option<&Value>,
    config: &Value,
    manager: Option<&str>,
    force: bool,
    target: Target,
) -> ApiResult<Value> {
    let manager = manager.filter(|m| !m.is_empty()).ok_or_else(|| {
        ApiError::invalid(
            "PatchOptions",
            "",
            vec![crate::error::FieldCause {
                field: "fieldManager".into(),
                message: "Required value: is required for apply patch".into(),
                reason: "FieldValueRequired",
            }],
        )
    })?;
    let mut live = live.cloned();
    if let Some(live) = live.as_mut() {
        // kubectl's migration from client-side apply: the fields it applied before become
        // this manager's, so that dropping them from the configuration removes them.
        let has_apply_entry = fm::read_managed_fields(live)
            .iter()
            .any(|e| e.manager == manager && e.operation == fm::Operation::Apply);
        if manager == "kubectl" && !has_apply_entry {
            fm::upgrade_client_side_apply(live, manager, list_types(custom).as_ref());
        }
    }
    fm::apply_with_reset(
        live.as_ref(),
        config,
        manager,
        force,
        subresource(target),
        &def.api_version(),
        list_types(custom).as_ref(),
        &reset_fields(def, target),
    )
    .map_err(|e| match e {
        ApplyError::Conflicts(conflicts) => {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": c.cause_message(), "field": c.path}))
                .collect();
            let mut err = ApiError::conflict_plain(ApplyError::Conflicts(conflicts).to_string());
            err.details = Some(json!({"causes": causes}));
            err
        }
        other => ApiError::bad_request(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manager_names() {
        let mut h = HeaderMap::new();
        assert_eq!(manager(None, &h), "unknown");
        h.insert(
            http::header::USER_AGENT,
            "kubectl/v1.33.1 (linux/amd64)".parse().unwrap(),
        );
        assert_eq!(manager(None, &h), "kubectl");
        assert_eq!(manager(Some("helm"), &h), "helm");
    }

    #[test]
    fn apply_then_conflict() {
        let def = k3rs_core::resource::find("", "v1", "configmaps").unwrap();
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "1"}});
        let created = apply(def, None, None, &config, Some("alice"), false, Target::Main).unwrap();
        assert_eq!(created["data"]["k"], "1");
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "2"}});
        let err = apply(
            def,
            None,
            Some(&created),
            &other,
            Some("bob"),
            false,
            Target::Main,
        )
        .unwrap_err();
        assert_eq!(err.code, 409);
        assert!(err.message.contains("alice"), "{}", err.message);
        let forced = apply(
            def,
            None,
            Some(&created),
            &other,
            Some("bob"),
            true,
            Target::Main,
        )
        .unwrap();
        assert_eq!(forced["data"]["k"], "2");
        assert_eq!(
            apply(def, None, None, &config, None, false, Target::Main)
                .unwrap_err()
                .code,
            422
        );
    }
}
