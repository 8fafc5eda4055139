//! `k3rs server`: validate the flags, then wire the PKI, the datastore and the API server
//! together and run until SIGTERM/SIGINT.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use k3rs_certs::{Pki, PkiConfig};
use k3rs_core::join::FlannelBackend;
use k3rs_core::{ClusterConfig, Shutdown};
use tracing::{info, warn, Instrument};

use crate::cli::ServerArgs;

const DEFAULT_CLUSTER_CIDR: &str = "10.42.0.0/16";
const DEFAULT_SERVICE_CIDR: &str = "10.43.0.0/16";

/// Validated server settings.
#[derive(Debug)]
pub struct Settings {
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
}

/// The address of the interface holding the default route. Connecting a UDP socket only
/// asks the kernel for a route; no packet is sent.
fn default_route_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

impl Settings {
    pub fn from_args(args: &ServerArgs) -> Result<Settings> {
        let cluster_cidr = args.cluster_cidr.unwrap_or(DEFAULT_CLUSTER_CIDR.parse()?);
        let service_cidr = args.service_cidr.unwrap_or(DEFAULT_SERVICE_CIDR.parse()?);
        if cluster_cidr.contains(&service_cidr.network())
            || service_cidr.contains(&cluster_cidr.network())
        {
            bail!("invalid --service-cidr {service_cidr}: overlaps --cluster-cidr {cluster_cidr}");
        }
        let cluster_dns = args
            .cluster_dns
            .unwrap_or_else(|| k3rs_core::cluster::nth_address(&service_cidr, 10));
        if !service_cidr.contains(&cluster_dns) {
            bail!("invalid --cluster-dns {cluster_dns}: not inside --service-cidr {service_cidr}");
        }
        let node_ips = match args.node_ip.is_empty() {
            true => vec![default_route_ip().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))],
            false => args.node_ip.clone(),
        };
        let token =
            crate::agent_flags::secret("token", args.token.as_deref(), args.token_file.as_deref())?;
        if let Some(t) = &token {
            k3rs_certs::Token::parse(t).map_err(|e| anyhow!("invalid --token: {e}"))?;
        }
        let agent = crate::agent_flags::node_agent_config(&args.agent)?;
        Ok(Settings {
            data_dir: args
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(k3rs_agent::DEFAULT_DATA_DIR)),
            bind_address: args
                .bind_address
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            https_port: args.https_listen_port.unwrap_or(6443),
            advertise_address: args.advertise_address.unwrap_or(node_ips[0]),
            node_ips,
            node_name: crate::agent_flags::node_name(args.node_name.as_ref())?,
            tls_sans: args
                .tls_san
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            kubeconfig: args
                .write_kubeconfig
                .clone()
                .unwrap_or_else(|| PathBuf::from(k3rs_agent::DEFAULT_KUBECONFIG)),
            kubeconfig_mode: args.write_kubeconfig_mode.unwrap_or(0o600),
            token,
            controllers: controller_options(&args.kube_controller_manager_arg)?,
            disable_controller_manager: args.disable_controller_manager,
            disable_scheduler: args.disable_scheduler,
            agent_token: crate::token::agent_token_from_args(args)?,
            flannel_backend: agent.flannel_backend,
            agent: (!args.disable_agent).then_some(agent),
            cluster: ClusterConfig {
                cluster_cidr,
                service_cidr,
                cluster_dns,
                cluster_domain: args
                    .cluster_domain
                    .clone()
                    .unwrap_or_else(|| "cluster.local".into()),
                node_port_range: args
                    .service_node_port_range
                    .clone()
                    .unwrap_or(30000..=32767),
            },
        })
    }

    fn server_dir(&self) -> PathBuf {
        self.data_dir.join("server")
    }
}

/// The `--kube-controller-manager-arg KEY=VALUE` settings k3rs understands; any other key
/// is refused rather than silently ignored.
fn controller_options(args: &[String]) -> Result<k3rs_controllers::Options> {
    let mut options = k3rs_controllers::Options::default();
    for arg in args {
        let (key, value) = arg.split_once('=').ok_or_else(|| {
            anyhow!("invalid --kube-controller-manager-arg {arg:?}: expected KEY=VALUE")
        })?;
        let key = key.trim_start_matches("--");
        let duration = || {
            crate::parse::duration(value)
                .map_err(|why| anyhow!("invalid --kube-controller-manager-arg {arg:?}: {why}"))
        };
        match key {
            "node-monitor-grace-period" => options.node_monitor_grace_period = duration()?,
            "node-monitor-period" => options.node_monitor_period = duration()?,
            "leader-elect" => {
                options.leader_elect = value.parse().map_err(|_| {
                    anyhow!("invalid --kube-controller-manager-arg {arg:?}: expected true or false")
                })?
            }
            _ => bail!(
                "invalid --kube-controller-manager-arg {arg:?}: k3rs supports node-monitor-grace-period, node-monitor-period and leader-elect"
            ),
        }
    }
    Ok(options)
}

fn pki_config(settings: &Settings) -> PkiConfig {
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

/// Datastore tuning. Not flags: `K3RS_COMPACT_INTERVAL` (e.g. `30s`, `5m`) and
/// `K3RS_COMPACT_RETAIN` (revisions) exist for tests and benchmarks that need compaction
/// to happen quickly.
fn store_options() -> Result<k3rs_store::SqliteOptions> {
    let mut options = k3rs_store::SqliteOptions::default();
    if let Ok(v) = std::env::var("K3RS_COMPACT_INTERVAL") {
        options.compact_interval = crate::parse::duration(&v)
            .map_err(|why| anyhow!("invalid K3RS_COMPACT_INTERVAL {v:?}: {why}"))?;
    }
    if let Ok(v) = std::env::var("K3RS_COMPACT_RETAIN") {
        options.retain_revisions = v.parse().ok().filter(|n: &i64| *n > 0).ok_or_else(|| {
            anyhow!("invalid K3RS_COMPACT_RETAIN {v:?}: expected a positive number of revisions")
        })?;
    }
    Ok(options)
}

/// Start the controller manager and the scheduler as clients of the API just started.
/// The scheduler is `system:kube-scheduler` with upstream's role for it. The controllers
/// run as `system:kube-controller-manager` in `system:masters`: upstream gives each
/// controller its own service account instead, which k3rs does not do yet.
async fn start_control_plane(
    settings: &Settings,
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
pub async fn run(settings: Settings, shutdown: Shutdown) -> Result<()> {
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
    let store = k3rs_store::Sqlite::open(&server_dir.join("db").join("state.db"), store_options()?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(extra: &[&str]) -> Result<Settings> {
        let mut args = vec![
            "k3rs",
            "server",
            "--node-name",
            "n1",
            "--node-ip",
            "192.0.2.10",
        ];
        args.extend_from_slice(extra);
        let cli = crate::cli::Cli::try_parse_from(args)
            .map_err(|e| anyhow!(crate::one_line_clap_error(&e).unwrap_or(e.to_string())))?;
        let crate::cli::Command::Server(server) = cli.command else {
            panic!("server subcommand expected");
        };
        Settings::from_args(&server)
    }

    #[test]
    fn defaults_match_k3s() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.https_port, 6443);
        assert_eq!(s.cluster.cluster_dns.to_string(), "10.43.0.10");
        assert_eq!(s.cluster.node_port_range, 30000..=32767);
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/rancher/k3rs"));
        assert_eq!(s.kubeconfig_mode, 0o600);
    }

    #[test]
    fn bad_values_name_the_flag() {
        let err = |args: &[&str]| settings(args).unwrap_err().to_string();
        assert!(err(&["--cluster-cidr", "10.42.0.0/33"]).starts_with("invalid --cluster-cidr"));
        assert!(err(&["--cluster-dns", "10.99.0.10"]).contains("not inside --service-cidr"));
        assert!(err(&["--service-node-port-range", "5-1"])
            .starts_with("invalid --service-node-port-range"));
        assert!(err(&["--https-listen-port", "70000"]).starts_with("invalid --https-listen-port"));
        assert!(
            err(&["--write-kubeconfig-mode", "999"]).starts_with("invalid --write-kubeconfig-mode")
        );
        assert!(err(&["--token-file", "/nonexistent/token"]).starts_with("invalid --token-file"));
        assert!(err(&["--service-cidr", "10.42.0.0/24"]).contains("overlaps"));
        for e in [
            err(&["--cluster-cidr", "x"]),
            err(&["--bind-address", "nope"]),
        ] {
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
