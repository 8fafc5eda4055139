//! `create`, `update` (PUT) and `patch`, for objects and their `/status`.

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};

use super::Ctx;
use crate::admission::{self, allocator, Target};
use crate::content::{self, json_response};
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::patch::{self, PatchType};

/// How many times a write without a client precondition is retried after losing a race.
const MAX_RETRIES: usize = 8;

/// Namespaced objects may only be created in a namespace that exists and is not being
/// deleted.
async fn check_namespace_open(ctx: &Ctx, name: &str) -> ApiResult<()> {
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
            name
        ))),
        Some(_) => Ok(()),
    }
}

pub async fn create(ctx: &Ctx, body: Bytes) -> ApiResult<Response> {
    let mut obj = content::decode_object(&ctx.headers, &body)?;
    let warnings = admission::prepare_create(&ctx.def, ctx.ns(), &mut obj, &ctx.params)?;
    if let Some(identity) = &ctx.identity {
        crate::node_authz::admit_create(identity, (&ctx.def.group, &ctx.def.plural), &obj)?;
    }
    let warnings = admit_custom(ctx, &ctx.def, &mut obj, None, warnings).await?;
    check_namespace_open(ctx, object::name(&obj).unwrap_or_default()).await?;
    let reservation =
        allocator::on_create(&ctx.state, &ctx.def, &mut obj, ctx.params.dry_run).await?;
    if ctx.params.dry_run {
        reservation.release(&ctx.state).await;
        return Ok(json_response(StatusCode::CREATED, &obj, &warnings));
    }
    let manager = super::apply::manager(ctx.params.field_manager.as_deref(), &ctx.headers);
    obj = super::apply::record(
        &ctx.def,
        ctx.state.custom.get(&ctx.def).as_deref(),
        None,
        &obj,
        &manager,
        Target::Main,
    );
    let stored = store_new(ctx, &ctx.def, ctx.ns(), obj, reservation).await?;
    Ok(json_response(StatusCode::CREATED, &stored, &warnings))
}

/// Create `obj` in the store; allocations made for it are kept if it was stored and
/// given back if not.
async fn store_new(
    ctx: &Ctx,
    def: &k3rs_core::ResourceDef,
    ns: Option<&str>,
    mut obj: Value,
    reservation: allocator::Reservation,
) -> ApiResult<Value> {
    convert::to_storage(def, &mut obj);
    match ctx.state.store.create(def, ns, &obj).await {
        Ok(stored) => {
            reservation.commit(&ctx.state).await;
            crate::crd::after_write(&ctx.state, def).await?;
            Ok(stored)
        }
        Err(e) => {
            reservation.release(&ctx.state).await;
            Err(e)
        }
    }
}

pub async fn update(ctx: &Ctx, body: Bytes) -> ApiResult<Response> {
    let new = content::decode_object(&ctx.headers, &body)?;
    write_existing(ctx, Ownership::Record, |_old| Ok(new.clone())).await
}

pub async fn patch(ctx: &Ctx, body: Bytes) -> ApiResult<Response> {
    let kind = PatchType::from_media_type(&content::content_type(&ctx.headers))?;
    if kind == PatchType::Apply {
        return server_side_apply(ctx, &body).await;
    }
    // Custom resources have no patch strategies to merge by, so upstream refuses.
    if kind == PatchType::Strategic && ctx.state.custom.get(&ctx.def).is_some() {
        return Err(ApiError::unsupported_patch_type());
    }
    write_existing(ctx, Ownership::Record, |old| patch::apply(kind, old, &body)).await
}

/// `application/apply-patch+yaml`: merge the applied configuration with field ownership,
/// creating the object when it does not exist yet.
async fn server_side_apply(ctx: &Ctx, body: &Bytes) -> ApiResult<Response> {
    let config = super::apply::parse_config(body)?;
    let custom = ctx.state.custom.get(&ctx.def);
    let manager = ctx.params.field_manager.as_deref();
    let (def, ns, name) = (&*ctx.def, ctx.ns(), ctx.name());
    if ctx.state.store.get(def, ns, name).await?.is_none() && ctx.target == Target::Main {
        let mut obj = super::apply::apply(
            def,
            custom.as_deref(),
            None,
            &config,
            manager,
            ctx.params.force,
            ctx.target,
        )?;
        if crate::object::name(&obj).is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                crate::object::name(&obj).unwrap_or_default()
            )));
        }
        crate::object::set_str(&mut obj, "name", name);
        let warnings = admission::prepare_create(def, ns, &mut obj, &ctx.params)?;
        let warnings = admit_custom(ctx, def, &mut obj, None, warnings).await?;
        check_namespace_open(ctx, name).await?;
        let reservation =
            allocator::on_create(&ctx.state, def, &mut obj, ctx.params.dry_run).await?;
        if ctx.params.dry_run {
            reservation.release(&ctx.state).await;
            return Ok(json_response(StatusCode::CREATED, &obj, &warnings));
        }
        match store_new(ctx, def, ns, obj, reservation).await {
            Ok(stored) => return Ok(json_response(StatusCode::CREATED, &stored, &warnings)),
            // Created meanwhile: apply to it like to any existing object.
            Err(e) if e.code == StatusCode::CONFLICT => {}
            Err(e) => return Err(e),
        }
    }
    // A resourceVersion in the applied configuration is a precondition; write_existing
    // hands `apply` the current object with an empty one, so none is implied otherwise.
    write_existing(ctx, Ownership::SetByApply, |old| {
        super::apply::apply(
            def,
            custom.as_deref(),
            Some(old),
            &config,
            manager,
            ctx.params.force,
            ctx.target,
        )
    })
    .await
}

/// Checks that depend on stored state: a CustomResourceDefinition is validated and given
/// its status; a custom object is pruned, defaulted and validated against its schema.
async fn admit_custom(
    ctx: &Ctx,
    def: &k3rs_core::ResourceDef,
    obj: &mut Value,
    old: Option<&Value>,
    mut warnings: Vec<String>,
) -> ApiResult<Vec<String>> {
    crate::crd::prepare_definition(&ctx.state, def, obj, old).await?;
    if ctx.state.custom.get(def).is_some() && !def.has_status {
        // Custom objects always track generation (upstream's customResourceStrategy); for
        // kinds with a status subresource admission already did.
        let previous = old
            .and_then(|o| o.pointer("/metadata/generation"))
            .and_then(Value::as_i64);
        let generation = match (old, previous) {
            (None, _) => 1,
            (Some(o), g) if object::spec_part(o) != object::spec_part(obj) => g.unwrap_or(0) + 1,
            (Some(_), g) => g.unwrap_or(1),
        };
        object::meta_mut(obj).insert("generation".into(), serde_json::json!(generation));
    }
    warnings.extend(crate::crd::prepare_object(
        &ctx.state,
        def,
        obj,
        ctx.params.field_validation,
    )?);
    Ok(warnings)
}

/// Who keeps `metadata.managedFields` of a write.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ownership {
    /// Server-side apply computed them along with the object.
    SetByApply,
    /// Every other write: record the change under the request's field manager.
    Record,
}

/// Read-modify-write of an existing object. `change` computes the new object from the
/// current one; a `resourceVersion` in its result is a precondition (409 when stale),
/// otherwise a lost race is retried against the newer object.
async fn write_existing(
    ctx: &Ctx,
    ownership: Ownership,
    change: impl Fn(&Value) -> ApiResult<Value>,
) -> ApiResult<Response> {
    let (def, ns, name) = (&*ctx.def, ctx.ns(), ctx.name());
    let custom = ctx.state.custom.get(def);
    for _ in 0..MAX_RETRIES {
        let old = ctx.state.store.must_get(def, ns, name).await?;
        let old_rv = object::meta_str(&old, "resourceVersion")
            .unwrap_or_default()
            .to_string();
        // The change is computed from the current object with an empty resourceVersion,
        // so that a non-empty one in the result can only have come from the request: that
        // is the client's precondition. A PATCH that does not name one must be retried on
        // a lost race, not answered with 409. (Emptied rather than removed: JSON patches
        // such as kubectl's managedFields upgrade `replace` the field, which must exist.)
        let mut current = old.clone();
        object::set_str(&mut current, "resourceVersion", "");
        let mut new = change(&current)?;
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
        let warnings = admit_custom(ctx, def, &mut new, Some(&old), warnings).await?;
        object::set_str(&mut new, "resourceVersion", &old_rv);
        if ownership == Ownership::Record {
            let manager = super::apply::manager(ctx.params.field_manager.as_deref(), &ctx.headers);
            new = super::apply::record(
                def,
                custom.as_deref(),
                Some(&old),
                &new,
                &manager,
                ctx.target,
            );
        }
        if is_no_op(&old, &new) {
            // Upstream skips no-op writes: the resourceVersion does not move.
            return Ok(json_response(StatusCode::OK, &old, &warnings));
        }
        let expected: i64 = old_rv.parse().unwrap_or_default();
        // Removing the last finalizer of a deleting object completes its deletion.
        if object::is_deleting(&new)
            && object::finalizers(&new).is_empty()
            && namespace_finalizers(def, &new).is_empty()
        {
            if ctx.params.dry_run {
                return Ok(json_response(StatusCode::OK, &new, &warnings));
            }
            match ctx.state.store.delete(def, ns, name, Some(expected)).await {
                Ok(gone) => {
                    allocator::on_delete(&ctx.state, def, &gone).await;
                    return Ok(json_response(StatusCode::OK, &new, &warnings));
                }
                Err(e) if e.code == StatusCode::CONFLICT && precondition.is_none() => continue,
                Err(e) => return Err(e),
            }
        }
        // Cluster IPs and node ports a Service update newly needs or gives up.
        let reservation = if ctx.target == Target::Main {
            allocator::on_update(&ctx.state, def, &old, &mut new, ctx.params.dry_run).await?
        } else {
            allocator::Reservation::none()
        };
        if ctx.params.dry_run {
            reservation.release(&ctx.state).await;
            return Ok(json_response(StatusCode::OK, &new, &warnings));
        }
        convert::to_storage(def, &mut new);
        match ctx.state.store.update(def, ns, &new, expected).await {
            Ok(stored) => {
                reservation.commit(&ctx.state).await;
                crate::crd::after_write(&ctx.state, def).await?;
                return Ok(json_response(StatusCode::OK, &stored, &warnings));
            }
            Err(e) => {
                reservation.release(&ctx.state).await;
                if e.code == StatusCode::CONFLICT && precondition.is_none() {
                    continue;
                }
                return Err(e);
            }
        }
    }
    Err(ApiError::stale(&def.group, &def.plural, name))
}

/// A write that changes nothing: the same object and the same field ownership. Only the
/// time stamps of managedFields entries may differ, and those alone do not make a write.
fn is_no_op(old: &Value, new: &Value) -> bool {
    fn without_times(obj: &Value) -> Value {
        let mut obj = obj.clone();
        if let Some(entries) = obj
            .pointer_mut("/metadata/managedFields")
            .and_then(Value::as_array_mut)
        {
            for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
                entry.remove("time");
            }
        }
        obj
    }
    old == new || without_times(old) == without_times(new)
}

/// A namespace's `spec.finalizers` (`kubernetes`): it is only deleted once the namespace
/// controller has emptied it and removed that entry through `finalize`.
fn namespace_finalizers(def: &k3rs_core::ResourceDef, obj: &Value) -> Vec<String> {
    if !(def.group.is_empty() && def.plural == "namespaces") {
        return Vec::new();
    }
    obj.pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `PUT namespaces/{name}/finalize`: replace only `spec.finalizers`. Removing the last one
/// of a Terminating namespace that has no metadata finalizers deletes it.
pub async fn finalize(ctx: &Ctx, body: Bytes) -> ApiResult<Response> {
    let wanted = content::decode_object(&ctx.headers, &body)?;
    let finalizers = wanted
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or_else(|| json!([]));
    if !finalizers.is_array() {
        return Err(ApiError::bad_request("spec.finalizers must be a list"));
    }
    let precondition = object::meta_str(&wanted, "resourceVersion")
        .filter(|rv| !rv.is_empty())
        .map(str::to_string);
    let (def, name) = (&*ctx.def, ctx.name());
    for _ in 0..MAX_RETRIES {
        let old = ctx.state.store.must_get(def, None, name).await?;
        let old_rv = object::meta_str(&old, "resourceVersion")
            .unwrap_or_default()
            .to_string();
        if precondition.as_ref().is_some_and(|rv| *rv != old_rv) {
            return Err(ApiError::stale(&def.group, &def.plural, name));
        }
        let mut new = old.clone();
        new["spec"]["finalizers"] = finalizers.clone();
        let expected: i64 = old_rv.parse().unwrap_or_default();
        let done = object::is_deleting(&new)
            && object::finalizers(&new).is_empty()
            && namespace_finalizers(def, &new).is_empty();
        if ctx.params.dry_run {
            return Ok(json_response(StatusCode::OK, &new, &[]));
        }
        let written = if done {
            ctx.state
                .store
                .delete(def, None, name, Some(expected))
                .await
        } else {
            ctx.state.store.update(def, None, &new, expected).await
        };
        match written {
            Ok(stored) => {
                let shown = if done { new } else { stored };
                return Ok(json_response(StatusCode::OK, &shown, &[]));
            }
            Err(e) if e.code == StatusCode::CONFLICT && precondition.is_none() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::stale(&def.group, &def.plural, name))
}
