//! The k3rs API server: a Kubernetes-compatible REST API over HTTPS, backed by the
//! revisioned store.
//!
//! Every built-in resource is served by one generic code path driven by the resource table
//! in `k3rs-core` (routing, storage keys, discovery, OpenAPI, Tables); per-kind behaviour
//! (defaults, validation, printing) lives in small modules keyed by kind. This crate is the
//! only user of `k3rs-store`: every other component talks to it over HTTPS.

mod access_log;
mod admission;
mod auth;
mod authz;
mod bootstrap;
mod content;
mod convert;
mod crd;
mod discovery;
mod error;
mod filter;
mod handlers;
mod kubelet_proxy;
mod node_authz;
mod object;
mod openapi;
mod patch;
mod path;
mod query;
mod registry;
mod resync;
mod reviews;
mod schema;
mod serve;
mod serviceaccount;
mod storage;
pub mod supervisor;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use k3rs_certs::token::Token;
use k3rs_core::{ClusterConfig, ResourceDef, Shutdown};
use k3rs_store::Backend;
use tracing::info;

pub use discovery::{KUBE_GIT_VERSION, KUBE_MINOR};
pub use error::ApiError;

/// Everything the API server needs to run.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// The address clients are told to use (discovery's serverAddressByClientCIDRs).
    pub advertise: SocketAddr,
    pub tls: Arc<rustls::ServerConfig>,
    /// Bearer token accepted as an administrator.
    pub token: Token,
    pub cluster: ClusterConfig,
    pub store: Arc<dyn Backend>,
    /// The CA clients trust for this server, published to every namespace.
    pub server_ca_pem: String,
    /// PKCS#8 ECDSA P-256 key that signs service-account tokens.
    pub service_account_key_pem: String,
    /// Client certificate and key (PEM) the API server presents to kubelets when it
    /// proxies `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward`.
    pub kubelet_client_cert_pem: String,
    pub kubelet_client_key_pem: String,
}

/// Shared by every request handler.
#[derive(Clone)]
pub struct AppState {
    config: Arc<Config>,
    store: storage::ObjectStore,
    registry: Arc<registry::Registry>,
    tokens: Arc<serviceaccount::token::TokenSigner>,
    authorizer: Arc<authz::Authorizer>,
    custom: Arc<crd::CustomResources>,
    shutdown: Shutdown,
    /// Join endpoints' signing keys and agent settings; `None` until
    /// [`Server::with_supervisor`] (the endpoints then refuse to sign).
    supervisor: Option<Arc<supervisor::Settings>>,
}

impl AppState {
    /// A snapshot of the resources served now.
    fn resources(&self) -> registry::Resources {
        self.registry.snapshot()
    }

    fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.registry.find(group, version, plural)
    }
}

/// Errors that stop the API server from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("bootstrapping default objects: {0}")]
    Bootstrap(ApiError),
    #[error("serving: {0}")]
    Serve(std::io::Error),
    #[error("service-account key: {0}")]
    ServiceAccountKey(serviceaccount::token::TokenError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A bound, bootstrapped server ready to [`Server::run`]. Binding first lets the caller
/// learn the port (tests bind port 0) and write the kubeconfig before serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: AppState,
}

impl Server {
    pub async fn bind(config: Config, shutdown: Shutdown) -> Result<Server> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        // Issuer and audiences as k3s sets them for its embedded kube-apiserver.
        let issuer = format!(
            "https://kubernetes.default.svc.{}",
            config.cluster.cluster_domain
        );
        let tokens = serviceaccount::token::TokenSigner::new(
            &config.service_account_key_pem,
            issuer.clone(),
            vec![issuer, "k3rs".into()],
        )
        .map_err(Error::ServiceAccountKey)?;
        let state = AppState {
            store: storage::ObjectStore::new(config.store.clone()),
            config: Arc::new(config),
            registry: Arc::new(registry::Registry::builtin()),
            tokens: Arc::new(tokens),
            authorizer: Arc::new(authz::Authorizer::empty()),
            custom: Arc::default(),
            shutdown,
            supervisor: None,
        };
        bootstrap::ensure_defaults(&state)
            .await
            .map_err(Error::Bootstrap)?;
        authz::ensure_default_policy(&state)
            .await
            .map_err(Error::Bootstrap)?;
        Ok(Server { listener, state })
    }

    /// Let agents join through this server's supervisor endpoints (`/cacerts`,
    /// `/v1-k3rs/...`), signing their certificates with the cluster CAs.
    pub fn with_supervisor(mut self, settings: supervisor::Settings) -> Server {
        self.state.supervisor = Some(Arc::new(settings));
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub async fn run(self) -> Result<()> {
        info!(addr = %self.local_addr(), "API server listening");
        let revision = self
            .state
            .authorizer
            .reload(&self.state)
            .await
            .map_err(Error::Bootstrap)?;
        authz::spawn_refresh(self.state.clone(), revision);
        let revision = crd::sync(&self.state).await.map_err(Error::Bootstrap)?;
        crd::spawn_watch(self.state.clone(), revision);
        let tls = self.state.config.tls.clone();
        let shutdown = self.state.shutdown.clone();
        let app = router(self.state);
        serve::serve(self.listener, tls, app, shutdown)
            .await
            .map_err(Error::Serve)
    }
}

/// Bind, bootstrap and serve until `shutdown` fires.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<()> {
    Server::bind(config, shutdown).await?.run().await
}

fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/version",
            get(|| async { axum::Json(discovery::version()) }),
        )
        .route("/healthz", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(ready))
        .route("/api", get(api_versions))
        .route("/apis", get(api_groups))
        .route("/apis/{group}", get(api_group))
        .route("/api/{version}", get(core_resources))
        .route("/apis/{group}/{version}", get(group_resources))
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(openapi_root))
        .route("/openapi/v3/{*path}", get(openapi_group_version))
        .fallback(handlers::dispatch)
        // Layers run bottom-up: log, authenticate, authorize, then the handler.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authz::require_authorization,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_authentication,
        ))
        // The join endpoints authenticate join tokens themselves, before (outside) the
        // API's authentication.
        .merge(supervisor::routes())
        .layer(axum::middleware::from_fn(access_log::log_request))
        .with_state(state)
}

async fn health() -> &'static str {
    "ok"
}

/// Ready once the datastore answers.
async fn ready(State(state): State<AppState>) -> Response {
    match state.config.store.current_revision().await {
        Ok(_) => "ok".into_response(),
        Err(err) => (StatusCode::SERVICE_UNAVAILABLE, format!("datastore: {err}")).into_response(),
    }
}

fn json(value: serde_json::Value) -> Response {
    content::json_response(StatusCode::OK, &value, &[])
}

async fn api_versions(State(state): State<AppState>) -> Response {
    json(discovery::core_versions(
        &state.config.advertise.to_string(),
    ))
}

async fn api_groups(State(state): State<AppState>) -> Response {
    json(discovery::group_list(&state.resources()))
}

async fn api_group(State(state): State<AppState>, Path(group): Path<String>) -> Response {
    match discovery::group(&state.resources(), &group) {
        Some(doc) => json(doc),
        None => ApiError::no_route().into_response(),
    }
}

async fn core_resources(State(state): State<AppState>, Path(version): Path<String>) -> Response {
    match discovery::resource_list(&state.resources(), "", &version) {
        Some(doc) => json(doc),
        None => ApiError::no_route().into_response(),
    }
}

async fn group_resources(
    State(state): State<AppState>,
    Path((group, version)): Path<(String, String)>,
) -> Response {
    match discovery::resource_list(&state.resources(), &group, &version) {
        Some(doc) => json(doc),
        None => ApiError::no_route().into_response(),
    }
}

async fn openapi_v2(headers: http::HeaderMap) -> Response {
    let protobuf = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("protobuf"));
    let (body, content_type) = openapi::v2(protobuf);
    ([(http::header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn openapi_root(State(state): State<AppState>) -> Response {
    json(openapi::root(&state.resources()))
}

async fn openapi_group_version(
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Response {
    match openapi::group_version(&state.resources(), &path) {
        Some(doc) => json(doc),
        None => ApiError::no_route().into_response(),
    }
}
