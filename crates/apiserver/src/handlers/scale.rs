//! The `scale` subresource (autoscaling/v1 `Scale`) of Deployments, ReplicaSets and
//! StatefulSets: a view of the parent's replica count that `kubectl scale` and
//! autoscalers read and write without touching the rest of the object.

use axum::response::Response;
use bytes::Bytes;
use http::{Method, StatusCode};
use k3rs_core::selector::LabelSelector;
use k3rs_core::ResourceDef;
use k3rs_crd::ScalePaths;
use serde_json::{json, Value};

use super::Ctx;
use crate::content::{self, json_response};
use crate::error::{ApiError, ApiResult, FieldCause};
use crate::object;
use crate::patch::{self, PatchType};

/// The Scale view of a parent object; custom resources say where their replica counts
/// live (`paths`), built-in ones use `.spec.replicas`, `.status.replicas`, `.spec.selector`.
pub fn scale_of(parent: &Value, paths: Option<&ScalePaths>) -> Value {
    let meta = parent.get("metadata").cloned().unwrap_or(json!({}));
    let mut metadata = json!({});
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(field) {
            metadata[field] = v.clone();
        }
    }
    let (spec_replicas, status_replicas, selector) = match paths {
        Some(p) => (
            p.read_spec_replicas(parent).unwrap_or(0),
            p.read_status_replicas(parent),
            p.read_label_selector(parent).unwrap_or_default(),
        ),
        None => (
            parent
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            parent
                .pointer("/status/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            parent
                .pointer("/spec/selector")
                .and_then(|s| LabelSelector::from_label_selector_json(s).ok())
                .map(|s| s.to_string())
                .unwrap_or_default(),
        ),
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": spec_replicas},
        "status": {"replicas": status_replicas, "selector": selector},
    })
}

/// The discovery entry of a resource's scale subresource.
pub fn discovery_entry(def: &ResourceDef) -> Value {
    json!({
        "name": format!("{}/scale", def.plural),
        "singularName": "",
        "namespaced": def.namespaced(),
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
        "verbs": ["get", "patch", "update"],
    })
}

pub async fn handle(ctx: &Ctx, method: &Method, body: Option<Bytes>) -> ApiResult<Response> {
    let (def, ns, name) = (&*ctx.def, ctx.ns(), ctx.name());
    let custom = ctx.state.custom.get(def);
    let paths = custom.as_ref().and_then(|info| info.scale.as_ref());
    for _ in 0..8 {
        let parent = ctx.state.store.must_get(def, ns, name).await?;
        let current = scale_of(&parent, paths);
        let wanted = match (method, &body) {
            (&Method::GET, _) => return Ok(json_response(StatusCode::OK, &current, &[])),
            (&Method::PUT, Some(body)) => content::decode_object(&ctx.headers, body)?,
            (&Method::PATCH, Some(body)) => {
                let kind = PatchType::from_media_type(&content::content_type(&ctx.headers))?;
                patch::apply(kind, &current, body)?
            }
            _ => {
                return Err(ApiError::method_not_allowed(format!(
                    "the server does not allow this method on the requested resource ({method})"
                )))
            }
        };
        let rv = object::meta_str(&parent, "resourceVersion")
            .unwrap_or_default()
            .to_string();
        let precondition = object::meta_str(&wanted, "resourceVersion").filter(|v| !v.is_empty());
        if precondition.is_some_and(|p| p != rv) {
            return Err(ApiError::stale(&def.group, &def.plural, name));
        }
        let replicas = match wanted.pointer("/spec/replicas") {
            None | Some(Value::Null) => 0,
            Some(v) => match v.as_i64() {
                Some(n) if (0..=i32::MAX as i64).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid(
                        "Scale",
                        name,
                        vec![FieldCause {
                            field: "spec.replicas".into(),
                            message: format!(
                                "Invalid value: {v}: must be greater than or equal to 0"
                            ),
                            reason: "FieldValueInvalid",
                        }],
                    ))
                }
            },
        };
        if current.pointer("/spec/replicas").and_then(Value::as_i64) == Some(replicas) {
            return Ok(json_response(StatusCode::OK, &current, &[]));
        }
        let mut updated = parent.clone();
        match paths {
            Some(p) => {
                p.write_spec_replicas(&mut updated, replicas);
            }
            None => updated["spec"]["replicas"] = json!(replicas),
        }
        let generation = parent
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        object::meta_mut(&mut updated).insert("generation".into(), json!(generation + 1));
        let manager = super::apply::manager(ctx.params.field_manager.as_deref(), &ctx.headers);
        let updated = super::apply::record_subresource(
            def,
            custom.as_deref(),
            &parent,
            &updated,
            &manager,
            "scale",
        );
        if ctx.params.dry_run {
            return Ok(json_response(
                StatusCode::OK,
                &scale_of(&updated, paths),
                &[],
            ));
        }
        match ctx
            .state
            .store
            .update(def, ns, &updated, rv.parse().unwrap_or_default())
            .await
        {
            Ok(stored) => {
                return Ok(json_response(
                    StatusCode::OK,
                    &scale_of(&stored, paths),
                    &[],
                ))
            }
            Err(e) if e.code == StatusCode::CONFLICT && precondition.is_none() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::stale(&def.group, &def.plural, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_view_of_a_deployment() {
        let d = json!({"metadata": {"name": "web", "namespace": "default", "resourceVersion": "7", "labels": {"x": "y"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 2}});
        let s = scale_of(&d, None);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"], json!({"replicas": 2, "selector": "app=web"}));
        assert_eq!(s["metadata"]["resourceVersion"], "7");
        assert!(s["metadata"].get("labels").is_none());
    }
}
