//! The supervisor: the join endpoints k3s serves on the API server's port, in front of
//! authentication, so that a machine holding only a join token can become a node.
//!
//! | path                               | who                | what                              |
//! |------------------------------------|--------------------|-----------------------------------|
//! | `GET /cacerts`                     | anyone             | server CA bundle (PEM)            |
//! | `GET /ping`                        | anyone             | `pong`                            |
//! | `GET /v1-k3rs/config`              | agents             | cluster settings ([`AgentConfig`])|
//! | `GET /v1-k3rs/readyz`              | agents             | `ok` once the datastore answers   |
//! | `GET /v1-k3rs/apiservers`          | agents             | API server addresses (JSON)       |
//! | `GET /v1-k3rs/{server,client}-ca.crt` | agents          | the two CAs                       |
//! | `POST /v1-k3rs/serving-kubelet.crt`| agents + node pw   | kubelet serving cert for a CSR    |
//! | `POST /v1-k3rs/client-kubelet.crt` | agents + node pw   | `system:node:<name>` client cert  |
//! | `POST /v1-k3rs/client-kube-proxy.crt` | agents          | `system:kube-proxy` client cert   |
//! | `POST /v1-k3rs/client-k3rs-controller.crt` | agents     | `system:k3rs-controller` cert     |
//!
//! "Agents" are callers with the server token, the agent token, a valid bootstrap token
//! or a node's own client certificate (`caller`). The node password
//! ([`node_password`]) keeps a second machine from taking over an existing node name.
//! Answers are plain text (or JSON) as k3s's; tokens and passwords are never logged.

pub mod agent_config;
mod caller;
mod certificates;
pub mod node_password;

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http::request::Parts;
use http::{header, HeaderValue, StatusCode};
use k3rs_certs::token::Token;
use k3rs_certs::Pki;

use k3rs_core::join::{path, AgentConfig, FlannelBackend};

use crate::AppState;

/// What the supervisor needs beyond the API server's [`crate::Config`]: the CA keys to
/// sign agents' certificates, the agent-only token and the settings agents inherit.
#[derive(Clone)]
pub struct Settings {
    pub pki: Arc<Pki>,
    /// `--agent-token`: accepted for agents only (user `node`); the server token keeps
    /// working for agents and servers.
    pub agent_token: Option<Token>,
    /// `--flannel-backend` of the server, handed to every agent.
    pub flannel_backend: FlannelBackend,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("agent_token", &self.agent_token)
            .field("flannel_backend", &self.flannel_backend)
            .finish_non_exhaustive()
    }
}

/// A refused or failed supervisor request: status and a one-line message for the agent.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn internal(message: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<crate::error::ApiError> for Refusal {
    fn from(err: crate::error::ApiError) -> Refusal {
        Refusal::new(err.code, err.message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = text(self.status, format!("{}\n", self.message));
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"k3rs\""),
            );
        }
        response
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The supervisor's routes. Mounted outside the authentication layer: every handler
/// authenticates its caller itself (or, for `/cacerts` and `/ping`, needs no caller).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(path::CACERTS, get(cacerts))
        .route(
            path::PING,
            get(|| async { text(StatusCode::OK, "pong".into()) }),
        )
        .route(path::CONFIG, get(config))
        .route(path::READYZ, get(readyz))
        .route(path::APISERVERS, get(apiservers))
        .route(path::SERVER_CA, get(server_ca))
        .route(path::CLIENT_CA, get(client_ca))
        .route(path::SERVING_KUBELET, post(certificates::serving_kubelet))
        .route(path::CLIENT_KUBELET, post(certificates::client_kubelet))
        .route(
            path::CLIENT_KUBE_PROXY,
            post(certificates::client_kube_proxy),
        )
        .route(
            path::CLIENT_CONTROLLER,
            post(certificates::client_controller),
        )
}

/// The supervisor settings, or 503 when this server was started without them (it can
/// then hand out its CA but not sign certificates).
pub(crate) fn settings(state: &AppState) -> Result<&Settings, Refusal> {
    state.supervisor.as_deref().ok_or_else(|| {
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this server does not accept agents (its supervisor is not configured)",
        )
    })
}

/// The CA bundle agents pin: byte for byte what the join token's hash was computed over.
async fn cacerts(State(state): State<AppState>) -> Response {
    text(StatusCode::OK, state.config.server_ca_pem.clone())
}

async fn config(State(state): State<AppState>, req: Parts) -> Result<Response, Refusal> {
    caller::authenticate(&state, &req).await?;
    let backend = state
        .supervisor
        .as_deref()
        .map(|s| s.flannel_backend)
        .unwrap_or_default();
    let servers = agent_config::server_urls(&state).await?;
    let body = AgentConfig::new(&state.config.cluster, backend, servers);
    Ok(axum::Json(body).into_response())
}

async fn readyz(State(state): State<AppState>, req: Parts) -> Result<Response, Refusal> {
    caller::authenticate(&state, &req).await?;
    match state.config.store.current_revision().await {
        Ok(_) => Ok(text(StatusCode::OK, "ok".into())),
        Err(err) => Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("datastore not ready: {err}"),
        )),
    }
}

async fn apiservers(State(state): State<AppState>, req: Parts) -> Result<Response, Refusal> {
    caller::authenticate(&state, &req).await?;
    let addresses = agent_config::server_addresses(&state).await?;
    Ok(axum::Json(addresses).into_response())
}

async fn server_ca(State(state): State<AppState>, req: Parts) -> Result<Response, Refusal> {
    caller::authenticate(&state, &req).await?;
    Ok(text(StatusCode::OK, state.config.server_ca_pem.clone()))
}

async fn client_ca(State(state): State<AppState>, req: Parts) -> Result<Response, Refusal> {
    caller::authenticate(&state, &req).await?;
    let settings = settings(&state)?;
    Ok(text(StatusCode::OK, settings.pki.client_ca_pem.clone()))
}
