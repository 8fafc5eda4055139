//! `delete` and `deletecollection`: preconditions, finalizers and graceful pod deletion.
//!
//! An object with finalizers is only marked (`deletionTimestamp`); it disappears when its
//! last finalizer is removed (see `write`). A pod bound to a node with a grace period is
//! likewise marked, and its kubelet finishes the deletion.

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};

use super::{optional_json, Ctx};
use crate::content::json_response;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::filter::Filter;
use crate::object;

/// The parts of `DeleteOptions` the server acts on.
struct DeleteOptions {
    grace_period: Option<i64>,
    uid: Option<String>,
    resource_version: Option<String>,
    dry_run: bool,
    /// Finalizer that records a Foreground or Orphan propagation policy for the garbage
    /// collector.
    propagation_finalizer: Option<&'static str>,
}

fn options(ctx: &Ctx, body: &Bytes) -> ApiResult<DeleteOptions> {
    let body = if crate::content::content_type(&ctx.headers) == k3rs_kubeproto::MEDIA_TYPE
        && !body.is_empty()
    {
        k3rs_kubeproto::decode_object(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    } else {
        optional_json(body)?.unwrap_or(Value::Null)
    };
    let orphan = body.get("orphanDependents").and_then(Value::as_bool);
    let policy = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| ctx.params.propagation_policy.clone());
    let propagation_finalizer = match (policy.as_deref(), orphan) {
        (Some("Foreground"), _) => Some("foregroundDeletion"),
        (Some("Orphan"), _) | (None, Some(true)) => Some("orphan"),
        (Some("Background"), _) | (None, _) => None,
        (Some(other), _) => {
            return Err(ApiError::invalid("DeleteOptions", "", vec![crate::error::FieldCause {
                field: "propagationPolicy".into(),
                message: format!("Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""),
                reason: "FieldValueNotSupported",
            }]))
        }
    };
    let pre = body.get("preconditions");
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let dry_run = ctx.params.dry_run
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        grace_period: body
            .get("gracePeriodSeconds")
            .and_then(Value::as_i64)
            .or(ctx.params.grace_period_seconds),
        uid: text(pre.and_then(|p| p.get("uid"))),
        resource_version: text(pre.and_then(|p| p.get("resourceVersion"))),
        dry_run,
        propagation_finalizer,
    })
}

pub async fn delete(ctx: &Ctx, body: Bytes) -> ApiResult<Response> {
    let opts = options(ctx, &body)?;
    let name = ctx.name().to_string();
    let deleted = delete_one(ctx, &name, ctx.ns(), &opts).await?;
    Ok(json_response(StatusCode::OK, &deleted, &[]))
}

pub async fn delete_collection(ctx: &Ctx, body: Bytes) -> ApiResult<Response> {
    let opts = options(ctx, &body)?;
    let filter = Filter::new(&ctx.def, &ctx.params)?;
    let page = ctx
        .state
        .store
        .list(&ctx.def, ctx.ns(), None, None, None)
        .await?;
    let mut deleted = Vec::new();
    for obj in page.items.iter().filter(|o| filter.matches(o)) {
        let name = object::name(obj).unwrap_or_default().to_string();
        match delete_one(ctx, &name, object::namespace(obj), &opts).await {
            Ok(gone) => deleted.push(gone),
            // Deleted by someone else meanwhile: that is what was asked for.
            Err(e) if e.code == StatusCode::NOT_FOUND => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "kind": ctx.def.list_kind(),
        "apiVersion": ctx.def.api_version(),
        "metadata": {"resourceVersion": page.revision.to_string()},
        "items": deleted,
    });
    Ok(json_response(StatusCode::OK, &list, &[]))
}

/// Whether deleting `obj` must wait (finalizers, or a pod's kubelet still stopping it).
fn deferred_grace(ctx: &Ctx, obj: &Value, opts: &DeleteOptions) -> Option<i64> {
    let is_bound_pod = ctx.def.group.is_empty()
        && ctx.def.plural == "pods"
        && obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
    if is_bound_pod {
        let grace = opts.grace_period.unwrap_or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30)
        });
        if grace > 0 {
            return Some(grace);
        }
    }
    let has_finalizers = !object::finalizers(obj).is_empty()
        || opts.propagation_finalizer.is_some()
        || ctx.def.plural == "namespaces"
            && obj
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
    has_finalizers.then_some(0)
}

async fn delete_one(
    ctx: &Ctx,
    name: &str,
    ns: Option<&str>,
    opts: &DeleteOptions,
) -> ApiResult<Value> {
    let def = &*ctx.def;
    for _ in 0..8 {
        let obj = ctx.state.store.must_get(def, ns, name).await?;
        let rv = object::meta_str(&obj, "resourceVersion")
            .unwrap_or_default()
            .to_string();
        if let Some(uid) = &opts.uid {
            let actual = object::meta_str(&obj, "uid").unwrap_or_default();
            if uid != actual {
                return Err(ApiError::conflict(
                    &def.group,
                    &def.plural,
                    name,
                    &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
                ));
            }
        }
        if let Some(want) = &opts.resource_version {
            if *want != rv {
                return Err(ApiError::conflict(&def.group, &def.plural, name, &format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rv}"
                )));
            }
        }
        let expected: i64 = rv.parse().unwrap_or_default();
        let grace = deferred_grace(ctx, &obj, opts);
        if let Some(grace) = grace {
            if object::is_deleting(&obj) {
                return Ok(obj);
            }
            let mut marked = obj.clone();
            let when = chrono::Utc::now() + chrono::Duration::seconds(grace);
            object::set_str(
                &mut marked,
                "deletionTimestamp",
                &when.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            );
            object::meta_mut(&mut marked).insert("deletionGracePeriodSeconds".into(), json!(grace));
            if let Some(finalizer) = opts.propagation_finalizer {
                let mut finalizers = object::finalizers(&marked);
                if !finalizers.iter().any(|f| f == finalizer) {
                    finalizers.push(finalizer.to_string());
                }
                object::meta_mut(&mut marked).insert("finalizers".into(), json!(finalizers));
            }
            if def.plural == "namespaces" {
                marked["status"]["phase"] = json!("Terminating");
            }
            if opts.dry_run {
                return Ok(marked);
            }
            convert::to_storage(def, &mut marked);
            match ctx.state.store.update(def, ns, &marked, expected).await {
                // A Terminating namespace is emptied and finalized by the namespace
                // controller.
                Ok(stored) => return Ok(stored),
                Err(e) if e.code == StatusCode::CONFLICT => continue,
                Err(e) => return Err(e),
            }
        }
        if opts.dry_run {
            return Ok(obj);
        }
        crate::crd::before_delete(&ctx.state, def, &obj).await?;
        match ctx.state.store.delete(def, ns, name, Some(expected)).await {
            Ok(gone) => {
                crate::admission::allocator::on_delete(&ctx.state, def, &gone).await;
                crate::crd::after_write(&ctx.state, def).await?;
                return Ok(gone);
            }
            Err(e) if e.code == StatusCode::CONFLICT && opts.resource_version.is_none() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::stale(&def.group, &def.plural, name))
}
