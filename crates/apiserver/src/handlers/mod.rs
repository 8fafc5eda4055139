//! The generic REST handler: one dispatcher for every resource, routing by path and verb
//! to `read`, `write` and `delete`.

pub mod apply;
mod binding;
mod delete;
mod read;
pub mod scale;
mod write;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method};
use k3rs_core::ResourceDef;

use crate::admission::Target;
use crate::content::{self, Render};
use crate::error::{ApiError, ApiResult};
use crate::path::{self, ResourcePath};
use crate::query::Params;
use crate::AppState;

/// Everything a verb handler needs to know about the request.
pub struct Ctx {
    pub state: AppState,
    pub def: Arc<ResourceDef>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub target: Target,
    pub params: Params,
    pub headers: HeaderMap,
    pub render: Render,
    /// Who asks (absent only for public paths).
    pub identity: Option<crate::auth::Identity>,
}

impl Ctx {
    pub fn ns(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
}

pub async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    match route(state, req).await {
        Ok(resp) => resp,
        Err(err) => err.into_response(),
    }
}

async fn route(state: AppState, req: Request) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let path = path::parse(parts.uri.path()).ok_or_else(ApiError::no_route)?;
    let def = state
        .find(&path.group, &path.version, &path.plural)
        .ok_or_else(ApiError::no_route)?;
    let body = || async {
        axum::body::to_bytes(body, content::MAX_BODY_BYTES)
            .await
            .map_err(|_| ApiError::too_large(content::MAX_BODY_BYTES))
    };
    let identity = parts.extensions.get::<crate::auth::Identity>().cloned();
    // Create-only kinds that are computed, not stored.
    if crate::reviews::is_review(&def) || path.subresource.as_deref() == Some("token") {
        if parts.method != Method::POST {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({})",
                parts.method
            )));
        }
        let caller = identity.ok_or_else(ApiError::unauthorized)?;
        let request = content::decode_object(&parts.headers, &body().await?)?;
        let answer = match (def.plural.as_str(), path.subresource.as_deref(), &path.name) {
            ("serviceaccounts", Some("token"), Some(name)) => {
                let ns = path.namespace.as_deref().unwrap_or_default();
                crate::serviceaccount::token_request(&state, ns, name, request).await?
            }
            (_, None, None) if crate::reviews::is_review(&def) => {
                crate::reviews::create(&state, &def, path.namespace.as_deref(), &caller, request)
                    .await?
            }
            _ => return Err(ApiError::no_route()),
        };
        return Ok(content::json_response(
            http::StatusCode::CREATED,
            &answer,
            &[],
        ));
    }
    if let Some(subresource) = crate::kubelet_proxy::subresource(&def, &path) {
        let namespace = path.namespace.unwrap_or_default();
        let name = path.name.unwrap_or_default();
        return crate::kubelet_proxy::handle(state, subresource, namespace, name, parts).await;
    }
    if let Some(action) = pod_action(&def, &path) {
        if parts.method != Method::POST {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({})",
                parts.method
            )));
        }
        let ctx = Ctx {
            render: content::Render::Object,
            state,
            def: def.clone(),
            namespace: path.namespace,
            name: path.name,
            target: Target::Main,
            params: Params::parse(parts.uri.query())?,
            headers: parts.headers,
            identity: identity.clone(),
        };
        let body = body().await?;
        return match action {
            PodAction::Bind => binding::bind(&ctx, body).await,
            PodAction::Evict => binding::evict(&ctx, body).await,
        };
    }
    if def.group.is_empty()
        && def.plural == "namespaces"
        && path.subresource.as_deref() == Some("finalize")
        && path.name.is_some()
    {
        if parts.method != Method::PUT {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({})",
                parts.method
            )));
        }
        let ctx = Ctx {
            render: content::Render::Object,
            state,
            def: def.clone(),
            namespace: None,
            name: path.name,
            target: Target::Main,
            params: Params::parse(parts.uri.query())?,
            headers: parts.headers,
            identity: identity.clone(),
        };
        return write::finalize(&ctx, body().await?).await;
    }
    let scale = path.subresource.as_deref() == Some("scale")
        && def.has_scale
        && path.namespace.is_some() == def.namespaced();
    let target = if scale {
        Target::Main
    } else {
        check_scope(&def, &path)?
    };
    let mut params = Params::parse(parts.uri.query())?;
    params.watch |= path.legacy_watch;
    let ctx = Ctx {
        // A Scale is never rendered as a Table.
        render: if scale {
            content::Render::Object
        } else {
            content::negotiate(&parts.headers)?
        },
        state,
        def: def.clone(),
        namespace: path.namespace,
        name: path.name,
        target,
        params,
        headers: parts.headers,
        identity,
    };
    if scale {
        let body = match parts.method {
            Method::PUT | Method::PATCH => Some(body().await?),
            _ => None,
        };
        return scale::handle(&ctx, &parts.method, body).await;
    }
    let collection = ctx.name.is_none();
    match (parts.method, collection) {
        (Method::GET, true) if ctx.params.watch => {
            crate::watch::watch(
                &ctx.state,
                def,
                ctx.namespace.clone(),
                None,
                &ctx.params,
                ctx.render,
            )
            .await
        }
        (Method::GET, true) => read::list(&ctx).await,
        (Method::GET, false) if ctx.params.watch => {
            crate::watch::watch(
                &ctx.state,
                def,
                ctx.namespace.clone(),
                ctx.name.clone(),
                &ctx.params,
                ctx.render,
            )
            .await
        }
        (Method::GET, false) => read::get(&ctx).await,
        (Method::POST, true) => write::create(&ctx, body().await?).await,
        (Method::PUT, false) => write::update(&ctx, body().await?).await,
        (Method::PATCH, false) => write::patch(&ctx, body().await?).await,
        (Method::DELETE, false) => delete::delete(&ctx, body().await?).await,
        (Method::DELETE, true) => delete::delete_collection(&ctx, body().await?).await,
        (method, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        ))),
    }
}

enum PodAction {
    Bind,
    Evict,
}

/// `pods/binding` and `pods/eviction` of a named pod in a namespace.
fn pod_action(def: &ResourceDef, path: &ResourcePath) -> Option<PodAction> {
    if !(def.group.is_empty() && def.plural == "pods")
        || path.namespace.is_none()
        || path.name.is_none()
    {
        return None;
    }
    match path.subresource.as_deref() {
        Some("binding") => Some(PodAction::Bind),
        Some("eviction") => Some(PodAction::Evict),
        _ => None,
    }
}

/// Reject paths that put a resource in the wrong scope or name an unknown subresource.
fn check_scope(def: &ResourceDef, path: &ResourcePath) -> ApiResult<Target> {
    if !def.namespaced() && path.namespace.is_some() {
        return Err(ApiError::no_route());
    }
    if def.namespaced() && path.namespace.is_none() && path.name.is_some() {
        return Err(ApiError::no_route());
    }
    match path.subresource.as_deref() {
        None => Ok(Target::Main),
        Some("status") if def.has_status => Ok(Target::Status),
        Some(_) => Err(ApiError::no_route()),
    }
}

/// Bytes of an optional body (DELETE may come with or without `DeleteOptions`).
pub fn optional_json(body: &Bytes) -> ApiResult<Option<serde_json::Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))
}
