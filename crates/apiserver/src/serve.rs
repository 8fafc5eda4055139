//! The HTTPS listener: TLS handshakes, the client-certificate identity of each
//! connection, HTTP/1.1 and HTTP/2, and a bounded graceful stop.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use k3rs_core::Shutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use crate::auth::{Identity, PeerIdentity};

/// How long open connections (watches included) get to finish after shutdown.
const GRACE: Duration = Duration::from_secs(5);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
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
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        k3rs_core::task::spawn(async move {
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
            let identity = peer_identity(&tls);
            let service = app.map_request(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(identity.clone());
                req
            });
            let builder = Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(
                TokioIo::new(tls),
                TowerToHyperService::new(service),
            );
            if let Err(err) = watcher.watch(conn.into_owned()).await {
                debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }
    info!("API server listener closed; draining connections");
    if tokio::time::timeout(GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("connections still open after the grace period; closing them");
    }
    Ok(())
}

fn peer_identity(tls: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> PeerIdentity {
    let (_, session) = tls.get_ref();
    let Some(cert) = session.peer_certificates().and_then(|c| c.first()) else {
        return PeerIdentity(None);
    };
    match k3rs_certs::client_identity(cert.as_ref()) {
        Ok((user, groups)) => PeerIdentity(Some(Identity {
            user,
            groups,
            ..Default::default()
        })),
        Err(err) => {
            debug!(error = %err, "client certificate without a usable identity");
            PeerIdentity(None)
        }
    }
}
