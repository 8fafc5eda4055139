//! The agent's client-side load balancer, as k3s's: a TCP proxy on
//! `127.0.0.1:<--lb-server-port>` (default 6444) through which everything the agent
//! sends to the cluster goes (the join, the kubelet, the overlay). It dials the server in
//! use and fails over to another of the cluster's API servers when that one stops
//! answering, so an agent follows the server list instead of being tied to `--server`.
//!
//! TLS passes through untouched: the servers' certificates name 127.0.0.1, and the agent
//! still verifies them against the cluster CA. The list comes from the server
//! (`/v1-k3rs/apiservers`, see [`LoadBalancer::update_servers`]) and is kept in
//! `<data-dir>/agent/etc/k3rs-agent-load-balancer.json`, so that a restarted agent can
//! reach the cluster even when its `--server` is the one that is down.
//!
//! Health: every [`HEALTH_INTERVAL`] each server gets a TCP connect. When the server in
//! use fails one (or a dial) and another server may work, every connection proxied to
//! it is closed, so that clients (watches above all) reconnect through the next healthy
//! server at once instead of waiting for TCP to give up.

mod pool;
mod state;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use pool::Pool;

/// k3s's default `--lb-server-port`.
pub const DEFAULT_PORT: u16 = 6444;
/// Where the server list is kept, under `<data-dir>/agent`.
pub const STATE_FILE: &str = "etc/k3rs-agent-load-balancer.json";

const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(2);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct LoadBalancer {
    inner: Arc<Inner>,
}

struct Inner {
    local: SocketAddr,
    state_file: PathBuf,
    /// `--server` as given, recorded in the state file.
    server_url: String,
    pool: Mutex<Pool>,
    /// One token per server: cancelling it closes every connection proxied there.
    connections: Mutex<HashMap<String, CancellationToken>>,
    shutdown: CancellationToken,
}

impl LoadBalancer {
    /// Listen on `listen` and proxy to `default` (`HOST:PORT` of `--server`, whose URL
    /// is `server_url`) until a list is known; a list saved for the same `--server` by an
    /// earlier run is used at once. Stops when `shutdown` is cancelled.
    pub async fn start(
        listen: SocketAddr,
        server_url: &str,
        default: String,
        state_file: PathBuf,
        shutdown: CancellationToken,
    ) -> Result<LoadBalancer> {
        let listener = TcpListener::bind(listen).await.map_err(|e| {
            anyhow!("the agent load balancer cannot listen on {listen} (--lb-server-port): {e}")
        })?;
        let local = listener.local_addr()?;
        let saved = state::load(&state_file, server_url);
        if !saved.is_empty() {
            info!(servers = %saved.join(", "), file = %state_file.display(), "load balancer: servers from the last run");
        }
        let inner = Arc::new(Inner {
            local,
            state_file,
            server_url: server_url.to_string(),
            pool: Mutex::new(Pool::new(default, saved)),
            connections: Mutex::new(HashMap::new()),
            shutdown,
        });
        k3rs_core::task::spawn(accept_loop(inner.clone(), listener));
        k3rs_core::task::spawn(health_loop(inner.clone()));
        info!(address = %local, "agent load balancer listening");
        Ok(LoadBalancer { inner })
    }

    /// `https://127.0.0.1:<port>`: the URL the agent's clients use.
    pub fn url(&self) -> String {
        format!("https://{}", self.inner.local)
    }

    #[cfg(test)]
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// The server connections go to now, if one is in use.
    #[cfg(test)]
    pub fn current(&self) -> Option<String> {
        self.inner.pool().current().map(str::to_string)
    }

    /// The cluster's API servers as `HOST:PORT`, e.g. from `/v1-k3rs/apiservers`.
    pub fn update_servers(&self, servers: Vec<String>) {
        let (changed, dropped, list) = {
            let mut pool = self.inner.pool();
            let before = pool.servers().to_vec();
            let current = pool.current().map(str::to_string);
            let dropped = pool.set_servers(servers).then_some(current).flatten();
            (before != pool.servers(), dropped, pool.servers().to_vec())
        };
        if let Some(server) = dropped {
            info!(%server, "load balancer: the server in use left the cluster's list");
            self.inner.close(&server);
        }
        if changed {
            info!(servers = %list.join(", "), "load balancer: server list updated");
            if let Err(err) = state::save(&self.inner.state_file, &self.inner.server_url, &list) {
                warn!(error = %err, "saving the load balancer's server list");
            }
        }
    }
}

impl Inner {
    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn token(&self, server: &str) -> CancellationToken {
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        connections
            .entry(server.to_string())
            .or_insert_with(|| self.shutdown.child_token())
            .clone()
    }

    /// Close every connection proxied to `server`.
    fn close(&self, server: &str) {
        let token = self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(server);
        if let Some(token) = token {
            token.cancel();
        }
    }

    /// Record a failed dial or check. If the server was in use and another one may work,
    /// close its connections so that clients move; with nowhere to go they stay open (a
    /// slow but only server keeps its watches).
    fn fail(&self, server: &str, why: &str) {
        let (was_current, alternative) = {
            let mut pool = self.pool();
            (pool.failed(server), pool.has_alternative_to(server))
        };
        if was_current && alternative {
            warn!(%server, reason = why, "load balancer: server in use failed, closing its connections");
            self.close(server);
        } else if was_current {
            warn!(%server, reason = why, "load balancer: the only server failed a check");
        } else {
            debug!(%server, reason = why, "load balancer: server failed");
        }
    }
}

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = inner.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((client, _)) => {
                k3rs_core::task::spawn(proxy(inner.clone(), client));
            }
            Err(err) => {
                warn!(error = %err, "load balancer: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Dial the first server that answers and splice the two connections until either
/// side closes, or the server is given up.
async fn proxy(inner: Arc<Inner>, mut client: TcpStream) {
    let candidates = inner.pool().candidates();
    for server in candidates {
        let dialed = tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(server.as_str())).await;
        let mut upstream = match dialed {
            Ok(Ok(upstream)) => upstream,
            Ok(Err(err)) => {
                inner.fail(&server, &err.to_string());
                continue;
            }
            Err(_) => {
                inner.fail(&server, "connection timed out");
                continue;
            }
        };
        if inner.pool().connected(&server) {
            info!(%server, "load balancer: using server");
        }
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let token = inner.token(&server);
        tokio::select! {
            _ = token.cancelled() => {}
            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        }
        return;
    }
    warn!("load balancer: no API server reachable");
}

async fn health_loop(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(HEALTH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = inner.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let servers = inner.pool().all();
        let mut checks = tokio::task::JoinSet::new();
        for server in servers {
            checks.spawn(async move {
                let result =
                    tokio::time::timeout(HEALTH_TIMEOUT, TcpStream::connect(server.as_str())).await;
                let error = match result {
                    Ok(Ok(_)) => None,
                    Ok(Err(err)) => Some(err.to_string()),
                    Err(_) => Some("health check timed out".to_string()),
                };
                (server, error)
            });
        }
        while let Some(Ok((server, error))) = checks.join_next().await {
            match error {
                None => inner.pool().healthy(&server),
                Some(why) => inner.fail(&server, &why),
            }
        }
    }
}

#[cfg(test)]
mod tests;
