//! `k3rs server` as a library: wire the PKI, the datastore, the API server (with its
//! supervisor endpoints for joining nodes), the control plane and, unless
//! `--disable-agent`, this server's own node agent together, and run until shutdown.
//! The binary validates the flags into a [`Config`] and handles the signals.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use k3rs_certs::{Pki, PkiConfig};
use k3rs_core::join::FlannelBackend;
use k3rs_core::{ClusterConfig, Shutdown};
use tracing::{info, warn, Instrument};

/// Validated server settings.
#[derive(Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub bind_address: IpAddr,
    pub https_port: u16,
    pub advertise_address: IpAddr,
    pub node_ips: Vec<IpAddr>,
    pub node_name: String,
    pub tls_sans: Vec<String>,
    pub kubeconfig: PathBuf,
    pub kubeconfig_mode: u32,
    pub token: Option<String>,
    pub cluster: ClusterConfig,
    pub controllers: k3rs_controllers::Options,
    pub disable_controller_manager: bool,
    pub disable_scheduler: bool,
    /// `None` with `--disable-agent`.
    pub agent: Option<k3rs_agent::Config>,
    /// `--agent-token`: accepted from agents only.
    pub agent_token: Option<k3rs_certs::Token>,
    /// `--flannel-backend`, handed to joining agents.
    pub flannel_backend: FlannelBackend,
    /// Datastore tuning (compaction).
    pub store: k3rs_store::SqliteOptions,
}

impl Config {
    fn server_dir(&self) -> PathBuf {
        self.data_dir.join("server")
    }
}

fn pki_config(settings: &Config) -> PkiConfig {
    let mut sans_ip: Vec<IpAddr> = settings.node_ips.clone();
    sans_ip.push(settings.advertise_address);
    if !settings.bind_address.is_unspecified() {
        sans_ip.push(settings.bind_address);
    }
    sans_ip.push(settings.cluster.kubernetes_service_ip());
    let mut sans_dns = vec![settings.node_name.clone()];
    for san in &settings.tls_sans {
        match san.parse::<IpAddr>() {
            Ok(ip) => sans_ip.push(ip),
            Err(_) => sans_dns.push(san.clone()),
        }
    }
    sans_ip.sort();
    sans_ip.dedup();
    PkiConfig {
        tls_dir: settings.server_dir().join("tls"),
        sans_dns,
        sans_ip,
        cluster_domain: settings.cluster.cluster_domain.clone(),
    }
}

fn create_private_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Start the controller manager and the scheduler as clients of the API just started.
/// The scheduler is `system:kube-scheduler` with upstream's role for it. The controllers
/// run as `system:kube-controller-manager` in `system:masters`: upstream gives each
/// controller its own service account instead, which k3rs does not do yet.
async fn start_control_plane(
    settings: &Config,
    pki: &Pki,
    api: SocketAddr,
    shutdown: Shutdown,
) -> Result<()> {
    let controller_client = k3rs_agent::local::client(
        pki,
        api,
        "kube-controller-manager",
        "system:kube-controller-manager",
        &["system:masters"],
    )
    .await?;
    let scheduler_client =
        k3rs_agent::local::client(pki, api, "kube-scheduler", "system:kube-scheduler", &[]).await?;
    let config = k3rs_controllers::Config {
        controller_client,
        scheduler_client,
        cluster: settings.cluster.clone(),
        options: settings.controllers.clone(),
        server_ca_pem: pki.server_ca_pem.clone(),
        identity: settings.node_name.clone(),
        run_controllers: !settings.disable_controller_manager,
        run_scheduler: !settings.disable_scheduler,
    };
    k3rs_core::task::spawn(
        async move {
            if let Err(err) = k3rs_controllers::run(config, shutdown).await {
                tracing::error!(error = %err, "control plane stopped");
            }
        }
        .instrument(tracing::info_span!("control-plane")),
    );
    Ok(())
}

/// Run the server until `shutdown` (the process's SIGTERM/SIGINT, handled in `main`).
pub async fn run(settings: Config, shutdown: Shutdown) -> Result<()> {
    let started = std::time::Instant::now();
    let server_dir = settings.server_dir();
    create_private_dir(&server_dir)?;
    let pki = Pki::load_or_create(&pki_config(&settings)).context("certificates")?;
    let token = k3rs_certs::ensure_server_token(
        &server_dir.join("token"),
        &pki.server_ca_pem,
        settings.token.as_deref(),
    )
    .context("server token")?;
    let agent_token = k3rs_certs::ensure_agent_token(
        &server_dir.join("agent-token"),
        &pki.server_ca_pem,
        settings.agent_token.as_ref(),
    )
    .context("agent token")?;
    let store = k3rs_store::Sqlite::open(
        &server_dir.join("db").join("state.db"),
        settings.store.clone(),
    )
    .await
    .context("datastore")?;
    // Upstream's kube-apiserver-kubelet-client identity: kubelets authorize it through
    // RBAC's system:kubelet-api-admin role.
    let (kubelet_client_cert_pem, kubelet_client_key_pem) = pki
        .issue_client_cert("kube-apiserver-kubelet-client", &["system:masters"])
        .context("kubelet client certificate")?;
    let config = k3rs_apiserver::Config {
        listen: SocketAddr::new(settings.bind_address, settings.https_port),
        advertise: SocketAddr::new(settings.advertise_address, settings.https_port),
        tls: pki.rustls_server_config().context("TLS configuration")?,
        token,
        cluster: settings.cluster.clone(),
        store: store.clone(),
        server_ca_pem: pki.server_ca_pem.clone(),
        service_account_key_pem: pki.service_account_key_pem.clone(),
        kubelet_client_cert_pem,
        kubelet_client_key_pem,
    };
    let server = k3rs_apiserver::Server::bind(config, shutdown.clone())
        .await?
        .with_supervisor(k3rs_apiserver::supervisor::Settings {
            pki: std::sync::Arc::new(pki.clone()),
            agent_token,
            flannel_backend: settings.flannel_backend,
        });
    let port = server.local_addr().port();
    // In-process clients and the kubeconfig dial the loopback address unless the API
    // only listens on one address (e.g. the node's, in a network namespace).
    let api = match settings.bind_address.is_unspecified() {
        true => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        false => SocketAddr::new(settings.bind_address, port),
    };
    let kubeconfig = k3rs_certs::render_kubeconfig(
        &format!("https://{api}"),
        &pki.server_ca_pem,
        &pki.admin_cert_pem,
        &pki.admin_key_pem,
    );
    k3rs_certs::write_file_with_mode(
        &settings.kubeconfig,
        kubeconfig.as_bytes(),
        settings.kubeconfig_mode,
    )
    .with_context(|| format!("writing kubeconfig {}", settings.kubeconfig.display()))?;
    info!(
        port,
        node = %settings.node_name,
        kubeconfig = %settings.kubeconfig.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "k3rs server is up"
    );
    if !(settings.disable_controller_manager && settings.disable_scheduler) {
        start_control_plane(&settings, &pki, api, shutdown.clone()).await?;
    }
    let mut agent_task = None;
    if let Some(agent) = &settings.agent {
        let node = k3rs_agent::local::LocalNode {
            pki: &pki,
            api,
            data_dir: &settings.data_dir,
            node_name: &settings.node_name,
            node_ips: &settings.node_ips,
            cluster: &settings.cluster,
        };
        agent_task = Some(k3rs_agent::local::start(agent, node, shutdown.clone()).await?);
    }
    let served = server.run().await;
    // The agent stops containerd (never the containers) on the way out.
    if let Some(task) = agent_task {
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            warn!("agent did not stop in time");
        }
    }
    if let Err(err) =
        tokio::time::timeout(Duration::from_secs(5), k3rs_store::Backend::close(&*store)).await
    {
        warn!(error = %err, "datastore did not close in time");
    }
    served?;
    info!("k3rs server stopped");
    Ok(())
}
