//! `create`, `update` (PUT) and `patch`, for objects and their `/status`.

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;

use super::Ctx;
use crate::admission;
use crate::content::{self, json_response};
use crate::convert;
use crate::error::{ApiError, Result};
use crate::object;
use crate::patch::{self, PatchType};

/// How many times a write without a client precondition is retried after losing a race.
const MAX_RETRIES: usize = 8;

/// Namespaced objects may only be created in a namespace that exists and is not being
/// deleted.
async fn check_namespace_open(ctx: &Ctx) -> Result<()> {
    let Some(ns) = ctx.ns().filter(|_| ctx.def.namespaced()) else {
        return Ok(());
    };
    let namespaces = ctx
        .state
        .find("", "v1", "namespaces")
        .expect("namespaces are built in");
    match ctx.state.store.get(&namespaces, None, ns).await? {
        None => Err(ApiError::namespace_not_found(ns)),
        Some(n) if object::is_deleting(&n) => Err(ApiError::forbidden(format!(
            "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            ctx.def.plural,
            ctx.name.as_deref().unwrap_or("")
        ))),
        Some(_) => Ok(()),
    }
}

pub async fn create(ctx: &Ctx, body: Bytes) -> Result<Response> {
    let mut obj = content::decode_object(&ctx.headers, &body)?;
    let warnings = admission::prepare_create(&ctx.def, ctx.ns(), &mut obj, &ctx.params)?;
    check_namespace_open(ctx).await?;
    if ctx.params.dry_run {
        return Ok(json_response(StatusCode::CREATED, &obj, &warnings));
    }
    convert::to_storage(&ctx.def, &mut obj);
    let stored = ctx.state.store.create(&ctx.def, ctx.ns(), &obj).await?;
    Ok(json_response(StatusCode::CREATED, &stored, &warnings))
}

pub async fn update(ctx: &Ctx, body: Bytes) -> Result<Response> {
    let new = content::decode_object(&ctx.headers, &body)?;
    write_existing(ctx, |_old| Ok(new.clone())).await
}

pub async fn patch(ctx: &Ctx, body: Bytes) -> Result<Response> {
    let kind = PatchType::from_media_type(&content::content_type(&ctx.headers))?;
    write_existing(ctx, |old| patch::apply(kind, old, &body)).await
}

/// Read-modify-write of an existing object. `change` computes the new object from the
/// current one; a `resourceVersion` in its result is a precondition (409 when stale),
/// otherwise a lost race is retried against the newer object.
async fn write_existing(ctx: &Ctx, change: impl Fn(&Value) -> Result<Value>) -> Result<Response> {
    let (def, ns, name) = (&*ctx.def, ctx.ns(), ctx.name());
    for _ in 0..MAX_RETRIES {
        let old = ctx.state.store.must_get(def, ns, name).await?;
        let old_rv = object::meta_str(&old, "resourceVersion")
            .unwrap_or_default()
            .to_string();
        let mut new = change(&old)?;
        let precondition = object::meta_str(&new, "resourceVersion")
            .filter(|rv| !rv.is_empty())
            .map(str::to_string);
        if let Some(rv) = &precondition {
            if *rv != old_rv {
                return Err(ApiError::stale(&def.group, &def.plural, name));
            }
        }
        let warnings =
            admission::prepare_update(def, ns, name, &old, &mut new, ctx.target, &ctx.params)?;
        object::set_str(&mut new, "resourceVersion", &old_rv);
        if new == old {
            // Upstream skips no-op writes: the resourceVersion does not move.
            return Ok(json_response(StatusCode::OK, &old, &warnings));
        }
        if ctx.params.dry_run {
            return Ok(json_response(StatusCode::OK, &new, &warnings));
        }
        let expected: i64 = old_rv.parse().unwrap_or_default();
        // Removing the last finalizer of a deleting object completes its deletion.
        if object::is_deleting(&new) && object::finalizers(&new).is_empty() {
            match ctx.state.store.delete(def, ns, name, Some(expected)).await {
                Ok(_) => {
                    return Ok(json_response(StatusCode::OK, &new, &warnings));
                }
                Err(e) if e.code == StatusCode::CONFLICT && precondition.is_none() => continue,
                Err(e) => return Err(e),
            }
        }
        convert::to_storage(def, &mut new);
        match ctx.state.store.update(def, ns, &new, expected).await {
            Ok(stored) => return Ok(json_response(StatusCode::OK, &stored, &warnings)),
            Err(e) if e.code == StatusCode::CONFLICT && precondition.is_none() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::stale(&def.group, &def.plural, name))
}
