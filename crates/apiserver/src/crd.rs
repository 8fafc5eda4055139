//! CustomResourceDefinitions: accepting a CRD (validation, defaults, the NamesAccepted and
//! Established conditions), serving its resources from the registry at once, validating,
//! pruning and defaulting custom objects against their structural schema, their Tables,
//! and deleting their objects with the CRD.
//!
//! The schema machinery is in `k3rs-crd`; this module connects it to the store and the
//! registry. Every API server sharing the datastore follows CRD changes through a watch.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use k3rs_core::ResourceDef;
use k3rs_crd::VersionInfo;
use serde_json::{json, Value};
use tracing::info;

use crate::error::{ApiError, ApiResult, FieldCause};
use crate::object;
use crate::query::FieldValidation;
use crate::AppState;

const CRD_PREFIX: &str = "/registry/apiextensions.k8s.io/customresourcedefinitions/";

type VersionKey = (String, String, String);

/// Schema and presentation of every served custom resource version.
#[derive(Default)]
pub struct CustomResources {
    versions: RwLock<HashMap<VersionKey, Arc<VersionInfo>>>,
}

impl CustomResources {
    /// The schema of a custom resource version; `None` for built-in resources.
    pub fn get(&self, def: &ResourceDef) -> Option<Arc<VersionInfo>> {
        self.versions
            .read()
            .expect("crd lock")
            .get(&(def.group.clone(), def.version.clone(), def.plural.clone()))
            .cloned()
    }
}

fn is_crd(def: &ResourceDef) -> bool {
    def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions"
}

fn established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
}

/// Rebuild the served custom resources from the stored CRDs; returns the store revision.
pub async fn sync(state: &AppState) -> ApiResult<i64> {
    let def = state
        .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .expect("built in");
    let page = state.store.list(&def, None, None, None, None).await?;
    let mut defs = Vec::new();
    let mut versions = HashMap::new();
    for crd in page
        .items
        .iter()
        .filter(|c| established(c) && !object::is_deleting(c))
    {
        for rd in k3rs_crd::resource_defs(crd) {
            if let Some(info) = k3rs_crd::version_info(crd, &rd.version) {
                versions.insert(
                    (rd.group.clone(), rd.version.clone(), rd.plural.clone()),
                    Arc::new(info),
                );
            }
            defs.push(rd);
        }
    }
    *state.custom.versions.write().expect("crd lock") = versions;
    state.registry.set_custom(defs);
    Ok(page.revision)
}

/// Follow CRD changes made through any API server sharing the datastore.
pub fn spawn_watch(state: AppState, revision: i64) {
    crate::resync::spawn(
        state,
        CRD_PREFIX,
        revision,
        "custom resources",
        |state| async move { sync(&state).await },
    );
}

fn invalid(kind: &str, name: &str, errors: Vec<k3rs_crd::FieldError>) -> ApiError {
    ApiError::invalid(
        kind,
        name,
        errors
            .into_iter()
            .map(|e| FieldCause {
                field: e.field,
                message: e.message,
                reason: e.reason,
            })
            .collect(),
    )
}

/// Validate and default a CRD being written, and give it its accepted status.
pub async fn prepare_definition(
    state: &AppState,
    def: &ResourceDef,
    new: &mut Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    if !is_crd(def) {
        return Ok(());
    }
    k3rs_crd::apply_crd_defaults(new);
    let errors = k3rs_crd::validate_crd(new, old);
    if !errors.is_empty() {
        return Err(invalid(
            &def.kind,
            object::name(new).unwrap_or_default(),
            errors,
        ));
    }
    let page = state.store.list(def, None, None, None, None).await?;
    let name = object::name(new).unwrap_or_default();
    let others: Vec<Value> = page
        .items
        .into_iter()
        .filter(|c| object::name(c) != Some(name))
        .collect();
    new["status"] = k3rs_crd::accepted_status(new, &others, chrono::Utc::now());
    Ok(())
}

/// After a CRD write: serve its resources now, without waiting for the watch.
pub async fn after_write(state: &AppState, def: &ResourceDef) -> ApiResult<()> {
    if is_crd(def) {
        sync(state).await?;
    }
    Ok(())
}

/// Before a CRD is deleted: delete every object of it (all versions share storage).
pub async fn before_delete(state: &AppState, def: &ResourceDef, crd: &Value) -> ApiResult<()> {
    if !is_crd(def) {
        return Ok(());
    }
    let mut deleted = 0;
    for rd in k3rs_crd::resource_defs(crd).into_iter().take(1) {
        let page = state.store.list(&rd, None, None, None, None).await?;
        for obj in page.items {
            let name = object::name(&obj).unwrap_or_default().to_string();
            match state
                .store
                .delete(&rd, object::namespace(&obj), &name, None)
                .await
            {
                Ok(_) => deleted += 1,
                Err(e) if e.code == http::StatusCode::NOT_FOUND => {}
                Err(e) => return Err(e),
            }
        }
    }
    info!(
        crd = object::name(crd).unwrap_or_default(),
        deleted, "deleted custom objects with their definition"
    );
    Ok(())
}

/// Prune, default and validate a custom object. Unknown fields follow `fieldValidation`
/// (Strict: 400; Warn: warnings; Ignore: dropped silently).
pub fn prepare_object(
    state: &AppState,
    def: &ResourceDef,
    obj: &mut Value,
    validation: FieldValidation,
) -> ApiResult<Vec<String>> {
    let Some(info) = state.custom.get(def) else {
        return Ok(Vec::new());
    };
    let pruned = info.schema.prune(obj);
    if !pruned.is_empty() && validation == FieldValidation::Strict {
        let fields: Vec<String> = pruned
            .iter()
            .map(|p| format!("unknown field \"{p}\""))
            .collect();
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            fields.join(", "),
            kind = def.kind,
            version = def.version
        )));
    }
    info.schema.apply_defaults(obj);
    let errors = info.schema.validate(obj);
    if !errors.is_empty() {
        return Err(invalid(
            &def.kind,
            object::name(obj).unwrap_or_default(),
            errors,
        ));
    }
    Ok(match validation {
        FieldValidation::Warn => pruned
            .iter()
            .map(|p| format!("unknown field \"{p}\""))
            .collect(),
        _ => Vec::new(),
    })
}

/// A Table of custom objects with the version's printer columns.
pub fn table(
    info: &VersionInfo,
    objects: &[Value],
    resource_version: &str,
    continue_token: Option<&str>,
    include_object: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let columns = k3rs_crd::table_columns(info);
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = columns
                .iter()
                .map(|col| match k3rs_crd::column_value(obj, col) {
                    // Dates are shown as ages, as upstream's CRD table convertor does.
                    Value::String(ts) if col.type_ == "date" => {
                        match chrono::DateTime::parse_from_rfc3339(&ts) {
                            Ok(t) => json!(k3rs_printers::human_duration(now - t.with_timezone(&chrono::Utc))),
                            Err(_) => json!("<unknown>"),
                        }
                    }
                    other => other,
                })
                .collect();
            let object = match include_object {
                "None" => Value::Null,
                "Object" => obj.clone(),
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))}),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    let mut metadata = json!({});
    if !resource_version.is_empty() {
        metadata["resourceVersion"] = json!(resource_version);
    }
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns.iter().map(|c| c.to_table_definition()).collect::<Vec<_>>(),
        "rows": rows,
    })
}
