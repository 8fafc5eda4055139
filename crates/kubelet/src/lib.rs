//! The node agent's kubelet: registers the Node, keeps its Lease and status, and runs the
//! pods bound to it as real containers through CRI v1 (containerd + runc).
//!
//! It is a client of the API like any other node's kubelet (`kube::Client` over HTTPS),
//! supervises its own containerd unless `--container-runtime-endpoint` names another CRI
//! socket, imports air-gap image tarballs, writes the single-node CNI config, and serves
//! the kubelet API (logs, exec, attach, port-forward, stats) on port 10250. Everything it
//! keeps on disk is derived from the data dir and node name (`paths`), so several agents
//! can share one machine.

pub mod cni;
pub mod containerd;
pub mod cri;
mod error;
pub mod host_stats;
pub mod images;
pub mod node;
pub mod paths;
pub mod pods;
pub mod runtime;
pub mod server;
pub mod volumes;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k3rs_core::{ClusterConfig, Shutdown};
use tracing::{info, warn, Instrument};

pub use error::{Error, Result};
pub use paths::Paths;

/// Sandbox image used when `--pause-image` is not given: k3rs carries it
/// (`images::pause`) and imports it into containerd at start.
pub const DEFAULT_PAUSE_IMAGE: &str = "docker.io/rancher/mirrored-pause:3.6";
/// The kubelet API port, as upstream.
pub const DEFAULT_KUBELET_PORT: u16 = 10250;

/// Everything one agent needs; built by `cmd/k3rs` from the flags.
#[derive(Clone)]
pub struct Config {
    pub node_name: String,
    pub data_dir: PathBuf,
    /// The node's InternalIP addresses (`--node-ip`, default: the default-route address).
    pub node_ips: Vec<IpAddr>,
    /// ExternalIP addresses (`--node-external-ip`).
    pub node_external_ips: Vec<IpAddr>,
    /// `--node-label KEY=VALUE`.
    pub labels: Vec<(String, String)>,
    /// `--node-taint KEY[=VALUE]:EFFECT`, parsed.
    pub taints: Vec<k8s_openapi::api::core::v1::Taint>,
    /// Servers label their node `node-role.kubernetes.io/control-plane`.
    pub control_plane: bool,
    pub cluster: ClusterConfig,
    /// The kubelet's identity (`system:node:<name>` in `system:nodes`).
    pub client: kube::Client,
    /// `--container-runtime-endpoint`: use this CRI socket instead of our own containerd.
    pub container_runtime_endpoint: Option<PathBuf>,
    pub pause_image: String,
    /// Kubelet API listener (default `0.0.0.0:10250`).
    pub kubelet_port: u16,
    /// `--kubelet-arg eviction-hard=...`: when the pressure conditions turn True.
    pub eviction_hard: node::eviction::Thresholds,
    /// PEM certificate and key the kubelet API serves, signed by the cluster's server CA.
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// CA whose client certificates the kubelet API accepts (the API server's).
    pub client_ca_pem: String,
    /// The MTU of the pod bridge (`cni0`); the overlay sets it lower later.
    pub cni_mtu: u32,
    /// Write the single-node CNI config (`false` for `--flannel-backend none`).
    pub write_cni_config: bool,
}

impl Config {
    pub fn paths(&self) -> Paths {
        Paths::new(&self.data_dir, &self.node_name)
    }
}

/// Nudge containerd until it reports NetworkReady: its CNI directory watch starts a
/// moment after its first load, and a config written in between is missed.
async fn ensure_cni_loaded(
    runtime: &dyn runtime::RuntimeService,
    paths: &Paths,
    network: &cni::Network,
) {
    for attempt in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let ready = runtime.status().await.ok().flatten().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.r#type == "NetworkReady" && c.status)
        });
        if ready {
            return;
        }
        if attempt % 2 == 1 {
            if let Err(err) = cni::rewrite_config(paths, network) {
                warn!(error = %err, "rewriting the CNI config");
            }
        }
    }
    warn!("the container runtime still reports its network as not ready");
}

/// Run the agent until `shutdown`. Containers keep running when it stops: a restarted
/// agent adopts them from the runtime.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<()> {
    let span = tracing::info_span!("kubelet", node = %config.node_name);
    run_inner(config, shutdown).instrument(span).await
}

async fn run_inner(config: Config, shutdown: Shutdown) -> Result<()> {
    let started = std::time::Instant::now();
    let paths = config.paths();
    for dir in [
        &paths.agent,
        &paths.images,
        &paths.cni_conf_dir,
        &paths.pods,
        &paths.pod_logs,
    ] {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }

    let socket = match &config.container_runtime_endpoint {
        Some(socket) => socket.clone(),
        None => containerd::supervise(&paths, &config.pause_image, shutdown.clone()).await?,
    };
    let cri = cri::Cri::connect(&socket)?;
    let runtime_version = cri.wait_ready(Duration::from_secs(30)).await?;
    info!(runtime = %runtime_version, socket = %socket.display(), "container runtime ready");

    // The sandbox image before anything else: without it no pod can start. Another
    // `--pause-image` is the user's to provide (an air-gap archive, or a registry).
    if config.pause_image == DEFAULT_PAUSE_IMAGE {
        images::import_builtin_pause(&cri).await.map_err(|err| {
            Error::Other(format!(
                "{err}: without a sandbox image no pod can start (k3rs imports its own \
                 with `ctr` into the containerd at {}; --pause-image selects another image)",
                socket.display()
            ))
        })?;
    }

    let runtime: Arc<dyn runtime::RuntimeService> = Arc::new(cri);

    // Air-gap images next, so the first pods find them.
    match images::import_present(&paths, &socket).await {
        Ok(n) if n > 0 => info!(archives = n, "imported air-gap images"),
        Ok(_) => {}
        Err(err) => warn!(error = %err, "importing air-gap images"),
    }
    k3rs_core::task::spawn(
        images::run_import(paths.clone(), socket.clone(), shutdown.clone())
            .instrument(tracing::info_span!("images")),
    );

    let registration = node::register(&config, &runtime_version).await?;
    info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "node registered"
    );

    // The pod CIDR arrives from node IPAM shortly after registration.
    if config.write_cni_config {
        let pod_cidr = node::wait_pod_cidr(&config.client, &config.node_name, &shutdown).await?;
        let network = cni::Network {
            pod_cidr,
            cluster_cidr: config.cluster.cluster_cidr,
            mtu: config.cni_mtu,
        };
        cni::write_config(&paths, &network)?;
        info!(%pod_cidr, "CNI config written");
        let (runtime, paths) = (runtime.clone(), paths.clone());
        k3rs_core::task::spawn(async move {
            ensure_cni_loaded(runtime.as_ref(), &paths, &network).await
        });
    }

    let server = server::ServerConfig {
        port: config.kubelet_port,
        serving_cert_pem: config.serving_cert_pem.clone(),
        serving_key_pem: config.serving_key_pem.clone(),
        client_ca_pem: config.client_ca_pem.clone(),
        client: config.client.clone(),
        node_name: config.node_name.clone(),
        runtime: runtime.clone(),
        paths: paths.clone(),
    };
    let server_shutdown = shutdown.clone();
    k3rs_core::task::spawn(
        async move {
            if let Err(err) = server::run(server, server_shutdown).await {
                warn!(error = %err, "kubelet API stopped");
            }
        }
        .instrument(tracing::info_span!("kubelet-api")),
    );

    let status = node::run_status(
        config.clone(),
        runtime.clone(),
        registration,
        shutdown.clone(),
    );
    let pods = pods::run(config.clone(), runtime, shutdown.clone());
    tokio::select! {
        result = status => result?,
        result = pods => result?,
    }
    Ok(())
}
