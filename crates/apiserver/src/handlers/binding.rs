//! The pod subresources that act rather than store: `pods/binding` (the scheduler's
//! assignment of a pod to a node) and `pods/eviction` (a deletion that respects
//! PodDisruptionBudgets, used by `kubectl drain`).

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use k3rs_core::selector::LabelSelector;
use serde_json::{json, Value};

use super::Ctx;
use crate::content::{self, json_response};
use crate::error::{ApiError, ApiResult};
use crate::object;

/// The `Status` both subresources answer with on success (201, as upstream).
fn created() -> Response {
    json_response(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        &[],
    )
}

/// Assign the pod to `target.name`: set `spec.nodeName` once, and the `PodScheduled`
/// condition to True. A pod already assigned, or being deleted, is a 409.
pub async fn bind(ctx: &Ctx, body: Bytes) -> ApiResult<Response> {
    let binding = content::decode_object(&ctx.headers, &body)?;
    let name = ctx.name();
    if let Some(bound_name) = object::name(&binding).filter(|n| !n.is_empty() && *n != name) {
        return Err(ApiError::bad_request(format!(
            "the name of the Binding ({bound_name}) does not match the pod ({name})"
        )));
    }
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("Binding target.name (the node) is required"))?;
    if let Some(kind) = binding.pointer("/target/kind").and_then(Value::as_str) {
        if !kind.is_empty() && kind != "Node" {
            return Err(ApiError::bad_request(format!(
                "Binding target.kind must be Node, not {kind:?}"
            )));
        }
    }
    let def = &*ctx.def;
    for _ in 0..8 {
        let pod = ctx.state.store.must_get(def, ctx.ns(), name).await?;
        if object::is_deleting(&pod) {
            return Err(ApiError::conflict_plain(format!(
                "Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is being deleted, cannot be assigned to a host"
            )));
        }
        if let Some(current) = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return Err(ApiError::conflict_plain(format!(
                "Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is already assigned to node \"{current}\""
            )));
        }
        let mut updated = pod.clone();
        updated["spec"]["nodeName"] = json!(node);
        if let Some(annotations) = binding
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
        {
            let meta = object::meta_mut(&mut updated);
            let target = meta.entry("annotations").or_insert_with(|| json!({}));
            if let Some(target) = target.as_object_mut() {
                for (k, v) in annotations {
                    target.insert(k.clone(), v.clone());
                }
            }
        }
        set_scheduled_condition(&mut updated);
        if ctx.params.dry_run {
            return Ok(created());
        }
        let rv = object::meta_str(&pod, "resourceVersion")
            .unwrap_or("0")
            .parse()
            .unwrap_or(0);
        match ctx.state.store.update(def, ctx.ns(), &updated, rv).await {
            Ok(_) => return Ok(created()),
            Err(e) if e.code == StatusCode::CONFLICT => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::stale("", "pods", name))
}

/// `PodScheduled=True`, replacing an earlier `False` (Unschedulable) entry.
fn set_scheduled_condition(pod: &mut Value) {
    let now = object::now_rfc3339();
    let status = pod
        .as_object_mut()
        .map(|o| o.entry("status").or_insert_with(|| json!({})));
    let Some(status) = status.and_then(Value::as_object_mut) else {
        return;
    };
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    let Some(list) = conditions.as_array_mut() else {
        *conditions = json!([]);
        return set_scheduled_condition(pod);
    };
    list.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
    list.push(json!({
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": now,
    }));
}

/// Evict the pod: refused with 429 while a PodDisruptionBudget selecting it allows no
/// disruption (as upstream; k3rs has no disruption controller yet, so a budget's
/// `status.disruptionsAllowed` is whatever was written to it), otherwise a normal delete
/// with the Eviction's `deleteOptions`.
pub async fn evict(ctx: &Ctx, body: Bytes) -> ApiResult<Response> {
    let eviction = content::decode_object(&ctx.headers, &body)?;
    let name = ctx.name();
    let pod = ctx.state.store.must_get(&ctx.def, ctx.ns(), name).await?;
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    let finished = matches!(phase, Some("Succeeded") | Some("Failed") | Some("Pending"));
    if !finished && !object::is_deleting(&pod) {
        if let Some(budget) = blocking_budget(ctx, &pod).await? {
            return Err(ApiError::too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.",
                "DisruptionBudget",
                format!(
                    "The disruption budget {budget} needs more healthy pods to allow the eviction"
                ),
            ));
        }
    }
    let options = eviction
        .get("deleteOptions")
        .cloned()
        .unwrap_or(Value::Null);
    let options = Bytes::from(serde_json::to_vec(&options).unwrap_or_default());
    super::delete::delete(ctx, options).await?;
    Ok(created())
}

/// The name of a PodDisruptionBudget in the pod's namespace that selects it and allows no
/// disruption right now.
async fn blocking_budget(ctx: &Ctx, pod: &Value) -> ApiResult<Option<String>> {
    let Some(def) = ctx.state.find("policy", "v1", "poddisruptionbudgets") else {
        return Ok(None);
    };
    let labels = object::labels(pod).cloned().unwrap_or(json!({}));
    let page = ctx
        .state
        .store
        .list(&def, ctx.ns(), None, None, None)
        .await?;
    for budget in &page.items {
        let Some(selector) = budget.pointer("/spec/selector") else {
            continue;
        };
        let Ok(selector) = LabelSelector::from_label_selector_json(selector) else {
            continue;
        };
        if !selector.matches(Some(&labels)) {
            continue;
        }
        let allowed = budget
            .pointer("/status/disruptionsAllowed")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if allowed < 1 {
            return Ok(Some(object::name(budget).unwrap_or_default().to_string()));
        }
    }
    Ok(None)
}
