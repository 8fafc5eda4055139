//! The kubelet API on port 10250: TLS with a serving certificate from the cluster CA,
//! client certificates verified against the API server's client CA, requests authorized
//! by SubjectAccessReview (`auth`). Serves `containerLogs` (`logs`), `exec`, `attach`,
//! `portForward` (`streaming`, proxied to the runtime's streaming server by `upgrade`),
//! `stats/summary` (`stats`) and `healthz`.
//!
//! It reads what the pod worker and the runtime leave behind (log files, CRI labels) and
//! never changes a pod: that is the pod worker's job.

mod auth;
mod log_format;
mod logs;
mod lookup;
mod stats;
mod streaming;
mod upgrade;

use std::sync::Arc;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use k3rs_core::Shutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use crate::runtime::RuntimeService;
use crate::{Error, Paths, Result};

pub struct ServerConfig {
    pub port: u16,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub client_ca_pem: String,
    pub client: kube::Client,
    pub node_name: String,
    pub runtime: Arc<dyn RuntimeService>,
    pub paths: Paths,
}

/// What every handler shares.
struct ServerState {
    config: ServerConfig,
    caches: auth::Caches,
    cpu_history: stats::CpuHistory,
    shutdown: Shutdown,
}

type SharedState = Arc<ServerState>;

/// How long open streams (exec sessions, followed logs) get to finish after shutdown.
const GRACE: Duration = Duration::from_secs(5);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed request: the status and the plain-text message upstream's kubelet would send.
#[derive(Debug)]
struct HttpError {
    status: http::StatusCode,
    message: String,
}

impl HttpError {
    fn new(status: http::StatusCode, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(http::StatusCode::BAD_REQUEST, message)
    }

    fn internal(message: impl ToString) -> HttpError {
        HttpError::new(http::StatusCode::INTERNAL_SERVER_ERROR, message.to_string())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.message,
        )
            .into_response()
    }
}

fn router(state: SharedState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(logs::container_logs),
        )
        .route(
            "/exec/{namespace}/{pod}/{container}",
            get(streaming::exec).post(streaming::exec),
        )
        .route(
            "/exec/{namespace}/{pod}/{uid}/{container}",
            get(streaming::exec).post(streaming::exec),
        )
        .route(
            "/attach/{namespace}/{pod}/{container}",
            get(streaming::attach).post(streaming::attach),
        )
        .route(
            "/attach/{namespace}/{pod}/{uid}/{container}",
            get(streaming::attach).post(streaming::attach),
        )
        .route(
            "/portForward/{namespace}/{pod}",
            get(streaming::port_forward).post(streaming::port_forward),
        )
        .route(
            "/portForward/{namespace}/{pod}/{uid}",
            get(streaming::port_forward).post(streaming::port_forward),
        )
        .route("/stats/summary", get(stats::summary))
        .fallback(|| async { HttpError::new(http::StatusCode::NOT_FOUND, "404 page not found") })
        // Unknown paths are authorized too (as `proxy`), so probing reveals nothing.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_access,
        ))
        .with_state(state)
}

/// Serve the kubelet API until `shutdown`.
pub async fn run(config: ServerConfig, shutdown: Shutdown) -> Result<()> {
    let tls = k3rs_certs::tls::server_config(
        &config.serving_cert_pem,
        &config.serving_key_pem,
        &config.client_ca_pem,
    )
    .map_err(|e| Error::Other(format!("kubelet API TLS configuration: {e}")))?;
    let address = std::net::SocketAddr::from(([0, 0, 0, 0], config.port));
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| Error::io(format!("listening on {address}"), e))?;
    info!(%address, "kubelet API listening");
    let state = Arc::new(ServerState {
        config,
        caches: auth::Caches::default(),
        cpu_history: stats::CpuHistory::default(),
        shutdown: shutdown.clone(),
    });
    serve(listener, TlsAcceptor::from(tls), router(state), shutdown).await;
    Ok(())
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, app: Router, shutdown: Shutdown) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = tcp.set_nodelay(true);
        let connection =
            serve_connection(tcp, peer, acceptor.clone(), app.clone(), graceful.watcher());
        k3rs_core::task::spawn(connection);
    }
    if tokio::time::timeout(GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        debug!("kubelet API connections still open after the grace period; closing them");
    }
}

/// One client connection: the TLS handshake, then HTTP/1.1 or HTTP/2 (with upgrades)
/// until the client closes it.
async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(err)) => {
            debug!(%peer, error = %err, "TLS handshake failed");
            return;
        }
        Err(_) => {
            debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let peer_user = auth::PeerUser(certificate_user(&tls));
    let service = app.map_request(move |mut req: http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(peer_user.clone());
        req
    });
    let builder = Builder::new(TokioExecutor::new());
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(tls), TowerToHyperService::new(service));
    if let Err(err) = watcher.watch(conn.into_owned()).await {
        debug!(%peer, error = %err, "connection ended with an error");
    }
}

/// The user of a client certificate rustls already verified against the client CA.
fn certificate_user(
    tls: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
) -> Option<auth::User> {
    let cert = tls.get_ref().1.peer_certificates()?.first()?;
    match k3rs_certs::client_identity(cert.as_ref()) {
        Ok((name, mut groups)) => {
            // As upstream's authenticator does for every authenticated request.
            if !groups.iter().any(|g| g == "system:authenticated") {
                groups.push("system:authenticated".into());
            }
            Some(auth::User {
                name,
                groups,
                ..Default::default()
            })
        }
        Err(err) => {
            debug!(error = %err, "client certificate without a usable identity");
            None
        }
    }
}
