//! `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward`: the API server finds the
//! pod's node and proxies the request to that node's kubelet (`/containerLogs`, `/exec`,
//! `/attach`, `/portForward` on its port 10250), streaming logs back and joining upgraded
//! connections for the others.
//!
//! WebSocket and SPDY. kubectl 1.30+ first tries WebSocket: `v5.channel.k8s.io` for
//! exec/attach/cp, `SPDY/3.1+portforward.k8s.io` (SPDY frames tunnelled in WebSocket
//! messages) for port-forward; it falls back to plain SPDY when client-go's
//! `httpstream.IsUpgradeFailure` says the WebSocket upgrade failed, which is the case for
//! any answer to the handshake other than `101` with a protocol it asked for. Upstream's
//! API server terminates those WebSockets itself and speaks SPDY to the kubelet. Ours
//! passes upgrades through, and the kubelet's runtime (containerd 1.6's streaming server,
//! upstream's streaming library of its day) knows neither protocol, only SPDY and the
//! older WebSocket channel protocols. So the kubelet refuses such a WebSocket upgrade with
//! a `400` before touching the runtime, this proxy passes that answer back unchanged, and
//! kubectl retries over SPDY, which is passed through end to end.
//!
//! Authorization: the request was already authorized as upstream's request-info resolver
//! maps it (`get pods/log`; `create` for POST, `get` for GET on the others). Like upstream
//! since 1.30 (`AuthorizePodWebsocketUpgradeCreatePermission`), a GET that opens an exec,
//! attach or port-forward stream must also be allowed to `create` it: kubectl's WebSocket
//! attempts use GET, and `get` alone must not grant a shell.

mod connection;
mod location;

use axum::response::Response;
use http::request::Parts;
use http::Method;
use k3rs_core::ResourceDef;

pub use location::Subresource;

use crate::authz::RequestAttributes;
use crate::error::{ApiError, ApiResult};
use crate::path::ResourcePath;
use crate::AppState;

/// The kubelet-served subresource a path names, if it names one.
pub fn subresource(def: &ResourceDef, path: &ResourcePath) -> Option<Subresource> {
    if !(def.group.is_empty() && def.plural == "pods") || path.namespace.is_none() {
        return None;
    }
    path.name.as_ref()?;
    Subresource::parse(path.subresource.as_deref()?)
}

/// Proxy one request for `subresource` of pod `namespace/name` to the pod's kubelet.
pub async fn handle(
    state: AppState,
    subresource: Subresource,
    namespace: String,
    name: String,
    parts: Parts,
) -> ApiResult<Response> {
    let allowed_methods: &[Method] = if subresource.is_stream() {
        &[Method::GET, Method::POST]
    } else {
        &[Method::GET]
    };
    if !allowed_methods.contains(&parts.method) {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            parts.method
        )));
    }
    if subresource.is_stream() && parts.method == Method::GET {
        authorize_create(&state, &parts, subresource, &namespace, &name)?;
    }

    let pods = state
        .find("", "v1", "pods")
        .ok_or_else(ApiError::no_route)?;
    let pod = state.store.must_get(&pods, Some(&namespace), &name).await?;
    let query = parts.uri.query().unwrap_or_default().to_string();
    let container = match subresource {
        Subresource::PortForward => None,
        _ => Some(location::container(
            &pod,
            location::query_value(&query, "container").as_deref(),
        )?),
    };
    let node_name = pod["spec"]["nodeName"].as_str().unwrap_or_default();
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let nodes = state
        .find("", "v1", "nodes")
        .ok_or_else(ApiError::no_route)?;
    let node = state.store.must_get(&nodes, None, node_name).await?;
    let address = location::kubelet_address(&node)?;

    let mut target = location::kubelet_path(subresource, &namespace, &name, container.as_deref());
    let kubelet_query = location::kubelet_query(subresource, &query);
    if !kubelet_query.is_empty() {
        target.push('?');
        target.push_str(&kubelet_query);
    }
    tracing::debug!(
        subresource = subresource.name(),
        pod = %format!("{namespace}/{name}"),
        node = node_name,
        kubelet = %address.authority(),
        "proxying to the kubelet"
    );
    connection::forward(&state, &address, &target, parts).await
}

/// The second check a GET stream needs: `create` on the same subresource.
fn authorize_create(
    state: &AppState,
    parts: &Parts,
    subresource: Subresource,
    namespace: &str,
    name: &str,
) -> ApiResult<()> {
    let Some(identity) = parts.extensions.get::<crate::auth::Identity>() else {
        return Err(ApiError::unauthorized());
    };
    let attrs = RequestAttributes {
        verb: "create".into(),
        resource_request: true,
        group: String::new(),
        resource: "pods".into(),
        subresource: subresource.name().into(),
        namespace: namespace.into(),
        name: name.into(),
        path: parts.uri.path().to_string(),
    };
    let decision = state
        .authorizer
        .authorize(&identity.user, &identity.groups, &attrs);
    if decision.is_allowed() {
        Ok(())
    } else {
        Err(attrs.forbidden(&identity.user, decision.reason()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(plural: &str) -> ResourceDef {
        crate::registry::Registry::builtin()
            .find("", "v1", plural)
            .map(|d| (*d).clone())
            .unwrap()
    }

    #[test]
    fn recognises_kubelet_subresources() {
        let pods = def("pods");
        let p = |s: &str| crate::path::parse(s).unwrap();
        assert_eq!(
            subresource(&pods, &p("/api/v1/namespaces/default/pods/web/log")),
            Some(Subresource::Log)
        );
        assert_eq!(
            subresource(&pods, &p("/api/v1/namespaces/default/pods/web/portforward")),
            Some(Subresource::PortForward)
        );
        assert_eq!(
            subresource(&pods, &p("/api/v1/namespaces/default/pods/web/status")),
            None
        );
        assert_eq!(
            subresource(
                &def("services"),
                &p("/api/v1/namespaces/default/services/web/exec")
            ),
            None
        );
    }
}
