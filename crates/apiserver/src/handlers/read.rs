//! `get` and `list`, with selectors, paging (`limit`/`continue`) and Tables.

use axum::response::Response;
use base64::Engine;
use http::StatusCode;
use serde_json::{json, Value};

use super::Ctx;
use crate::content::{json_response, Render};
use crate::error::{ApiError, ApiResult};
use crate::filter::Filter;
use crate::object;
use crate::query::parse_revision;

pub async fn get(ctx: &Ctx) -> ApiResult<Response> {
    let obj = ctx
        .state
        .store
        .must_get(&ctx.def, ctx.ns(), ctx.name())
        .await?;
    let rv = object::meta_str(&obj, "resourceVersion")
        .unwrap_or_default()
        .to_string();
    Ok(render(ctx, vec![obj], &rv, None, None, false))
}

/// Where the next page starts: a revision (for a consistent snapshot) and the last key read.
#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: i64,
    start: String,
}

fn encode_continue(token: &ContinueToken) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(token).expect("token serializes"))
}

fn decode_continue(raw: &str) -> ApiResult<ContinueToken> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            ApiError::bad_request("continue key is not valid: the token could not be decoded")
        })
}

/// Storage key of an object of the listed resource.
fn key_of(ctx: &Ctx, obj: &Value) -> String {
    ctx.def.key(
        object::namespace(obj),
        object::name(obj).unwrap_or_default(),
    )
}

pub async fn list(ctx: &Ctx) -> ApiResult<Response> {
    let filter = Filter::new(&ctx.def, &ctx.params)?;
    let limit = ctx.params.limit;
    let (mut start_after, mut revision) = match &ctx.params.continue_token {
        Some(raw) => {
            let token = decode_continue(raw)?;
            (Some(token.start), Some(token.rv))
        }
        None => {
            let requested = parse_revision(ctx.params.resource_version.as_deref())?;
            // Only an exact match reads the past; otherwise any state at least as new as
            // the requested one is fine, and the newest is the cheapest to serve.
            let exact = ctx.params.resource_version_match.as_deref() == Some("Exact")
                || (limit.is_some() && ctx.params.resource_version_match.is_none());
            (None, if exact { requested } else { None })
        }
    };
    let mut items = Vec::new();
    let mut next: Option<String> = None;
    let mut remaining = None;
    loop {
        let need = limit.map(|l| l - items.len());
        let chunk = match need {
            Some(n) if filter.is_everything() => Some(n),
            Some(n) => Some(n.max(256)),
            None => None,
        };
        let page = ctx
            .state
            .store
            .list(&ctx.def, ctx.ns(), start_after.as_deref(), chunk, revision)
            .await
            .map_err(|e| {
                if ctx.params.continue_token.is_some() && e.code == StatusCode::GONE {
                    ApiError::gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
                } else {
                    e
                }
            })?;
        revision = Some(page.revision);
        let read = page.items.len();
        for (i, obj) in page.items.into_iter().enumerate() {
            if !filter.matches(&obj) {
                continue;
            }
            let key = key_of(ctx, &obj);
            items.push(obj);
            if limit.is_some_and(|l| items.len() >= l) {
                if i + 1 < read || page.more {
                    next = Some(key);
                    if filter.is_everything() {
                        remaining = page.remaining.map(|r| r + (read - i - 1) as i64);
                    }
                }
                break;
            }
        }
        if next.is_some() || !page.more || limit.is_some_and(|l| items.len() >= l) {
            break;
        }
        match page.last_key {
            Some(last) => start_after = Some(last),
            None => break,
        }
    }
    let revision = revision.unwrap_or_default();
    let token = next.map(|start| {
        encode_continue(&ContinueToken {
            rv: revision,
            start,
        })
    });
    Ok(render(
        ctx,
        items,
        &revision.to_string(),
        token,
        remaining,
        true,
    ))
}

/// A list's `metadata`: its revision, and where paging goes on.
fn list_meta(rv: &str, continue_token: Option<String>, remaining: Option<i64>) -> Value {
    let mut meta = json!({"resourceVersion": rv});
    if let Some(token) = continue_token {
        meta["continue"] = json!(token);
    }
    if let Some(r) = remaining.filter(|r| *r > 0) {
        meta["remainingItemCount"] = json!(r);
    }
    meta
}

/// A single object, a list, or a Table of either, as negotiated.
fn render(
    ctx: &Ctx,
    items: Vec<Value>,
    rv: &str,
    continue_token: Option<String>,
    remaining: Option<i64>,
    is_list: bool,
) -> Response {
    let custom = ctx.state.custom.get(&ctx.def);
    let value = match (ctx.render, is_list) {
        (Render::Table, _) if custom.is_some() => crate::crd::table(
            custom.as_deref().expect("checked above"),
            &items,
            rv,
            continue_token.as_deref(),
            &ctx.params.include_object,
            chrono::Utc::now(),
        ),
        (Render::Table, _) => k3rs_printers::table(
            &ctx.def.group,
            &ctx.def.plural,
            &items,
            rv,
            continue_token.as_deref(),
            &ctx.params.include_object,
            chrono::Utc::now(),
        ),
        (Render::Metadata, false) => items
            .first()
            .map(crate::content::partial_metadata)
            .unwrap_or(Value::Null),
        (Render::Metadata, true) => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": list_meta(rv, continue_token, remaining),
            "items": items.iter().map(crate::content::partial_metadata).collect::<Vec<_>>(),
        }),
        (Render::Object, false) => items.into_iter().next().unwrap_or(Value::Null),
        (Render::Object, true) => {
            json!({
                "kind": ctx.def.list_kind(),
                "apiVersion": ctx.def.api_version(),
                "metadata": list_meta(rv, continue_token, remaining),
                "items": items,
            })
        }
    };
    json_response(StatusCode::OK, &value, &[])
}
