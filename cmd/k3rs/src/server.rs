//! `k3rs server`: validate the flags, then wire the PKI, the datastore and the API server
//! together and run until SIGTERM/SIGINT.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ipnet::IpNet;
use k3rs_certs::{Pki, PkiConfig};
use k3rs_core::{ClusterConfig, Shutdown};
use tracing::{info, warn};

use crate::cli::ServerArgs;

pub const DEFAULT_DATA_DIR: &str = "/var/lib/rancher/k3rs";
pub const DEFAULT_KUBECONFIG: &str = "/etc/rancher/k3rs/k3rs.yaml";

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
    pub agent: Option<crate::agent::AgentSettings>,
    /// `--agent-token`: accepted from agents only.
    pub agent_token: Option<k3rs_certs::Token>,
    /// `--flannel-backend`, handed to joining agents.
    pub flannel_backend: k3rs_flannel::Backend,
}

fn parse_ip(flag: &str, value: &str) -> Result<IpAddr> {
    value
        .trim()
        .parse()
        .map_err(|_| anyhow!("invalid --{flag} {value:?}: not an IP address"))
}

fn parse_cidr(flag: &str, value: &str) -> Result<IpNet> {
    let net: IpNet = value
        .trim()
        .parse()
        .map_err(|_| anyhow!("invalid --{flag} {value:?}: not a CIDR such as 10.42.0.0/16"))?;
    if net.network() != net.addr() {
        bail!(
            "invalid --{flag} {value:?}: host bits are set; did you mean {}?",
            net.trunc()
        );
    }
    Ok(net)
}

fn parse_port_range(value: &str) -> Result<std::ops::RangeInclusive<u16>> {
    let bad = || {
        anyhow!(
            "invalid --service-node-port-range {value:?}: expected FIRST-LAST, e.g. 30000-32767"
        )
    };
    let (a, b) = value.split_once('-').ok_or_else(bad)?;
    let first: u16 = a.trim().parse().map_err(|_| bad())?;
    let last: u16 = b.trim().parse().map_err(|_| bad())?;
    if first == 0 || first > last {
        return Err(bad());
    }
    Ok(first..=last)
}

/// The address of the interface holding the default route. Connecting a UDP socket only
/// asks the kernel for a route; no packet is sent.
fn default_route_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_lowercase())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl Settings {
    pub fn from_args(args: &ServerArgs) -> Result<Settings> {
        let data_dir = PathBuf::from(args.data_dir.as_deref().unwrap_or(DEFAULT_DATA_DIR));
        let bind_address = parse_ip(
            "bind-address",
            args.bind_address.as_deref().unwrap_or("0.0.0.0"),
        )?;
        let https_port: u16 = match args.https_listen_port.as_deref() {
            None => 6443,
            Some(v) => v.trim().parse().map_err(|_| {
                anyhow!("invalid --https-listen-port {v:?}: expected a port number 0-65535")
            })?,
        };
        let cluster_cidr = parse_cidr(
            "cluster-cidr",
            args.cluster_cidr.as_deref().unwrap_or("10.42.0.0/16"),
        )?;
        let service_cidr = parse_cidr(
            "service-cidr",
            args.service_cidr.as_deref().unwrap_or("10.43.0.0/16"),
        )?;
        if cluster_cidr.contains(&service_cidr.network())
            || service_cidr.contains(&cluster_cidr.network())
        {
            bail!("invalid --service-cidr {service_cidr}: overlaps --cluster-cidr {cluster_cidr}");
        }
        let cluster_dns = match args.cluster_dns.as_deref() {
            Some(v) => parse_ip("cluster-dns", v)?,
            None => k3rs_core::cluster::nth_address(&service_cidr, 10),
        };
        if !service_cidr.contains(&cluster_dns) {
            bail!("invalid --cluster-dns {cluster_dns}: not inside --service-cidr {service_cidr}");
        }
        let cluster_domain = args
            .cluster_domain
            .clone()
            .unwrap_or_else(|| "cluster.local".into());
        if cluster_domain.is_empty()
            || !cluster_domain.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
        {
            bail!("invalid --cluster-domain {cluster_domain:?}: not a DNS domain");
        }
        let node_port_range = parse_port_range(
            args.service_node_port_range
                .as_deref()
                .unwrap_or("30000-32767"),
        )?;
        let node_ips = match args.node_ip.is_empty() {
            true => vec![default_route_ip().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))],
            false => args
                .node_ip
                .iter()
                .map(|v| parse_ip("node-ip", v))
                .collect::<Result<_>>()?,
        };
        let advertise_address = match args.advertise_address.as_deref() {
            Some(v) => parse_ip("advertise-address", v)?,
            None => node_ips[0],
        };
        let kubeconfig_mode = match args.write_kubeconfig_mode.as_deref() {
            None => 0o600,
            Some(v) => u32::from_str_radix(v.trim(), 8)
                .ok()
                .filter(|m| *m <= 0o777)
                .ok_or_else(|| anyhow!("invalid --write-kubeconfig-mode {v:?}: expected an octal file mode such as 0644"))?,
        };
        let token = match (&args.token, &args.token_file) {
            (Some(t), _) if !t.is_empty() => Some(t.clone()),
            (_, Some(file)) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| anyhow!("invalid --token-file {file}: {e}"))?;
                let text = text.trim().to_string();
                if text.is_empty() {
                    bail!("invalid --token-file {file}: the file is empty");
                }
                Some(text)
            }
            _ => None,
        };
        if let Some(t) = &token {
            k3rs_certs::Token::parse(t).map_err(|e| anyhow!("invalid --token: {e}"))?;
        }
        let node_name = args.node_name.clone().unwrap_or_else(hostname);
        if node_name.is_empty()
            || node_name.len() > 253
            || !node_name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            bail!("invalid --node-name {node_name:?}: must be a lowercase DNS subdomain");
        }
        Ok(Settings {
            data_dir,
            bind_address,
            https_port,
            advertise_address,
            node_ips,
            node_name,
            tls_sans: args
                .tls_san
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            kubeconfig: PathBuf::from(
                args.write_kubeconfig
                    .as_deref()
                    .unwrap_or(DEFAULT_KUBECONFIG),
            ),
            kubeconfig_mode,
            token,
            controllers: controller_options(&args.kube_controller_manager_arg)?,
            disable_controller_manager: args.disable_controller_manager,
            disable_scheduler: args.disable_scheduler,
            agent_token: crate::token::agent_token_from_args(args)?,
            flannel_backend: args
                .agent
                .flannel_backend
                .as_deref()
                .unwrap_or("vxlan")
                .parse()?,
            agent: match args.disable_agent {
                true => None,
                false => Some(crate::agent::AgentSettings::from_args(&args.agent)?),
            },
            cluster: ClusterConfig {
                cluster_cidr,
                service_cidr,
                cluster_dns,
                cluster_domain,
                node_port_range,
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
            parse_duration(value).ok_or_else(|| {
                anyhow!("invalid --kube-controller-manager-arg {arg:?}: expected a duration such as 40s")
            })
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
        options.compact_interval = parse_duration(&v).ok_or_else(|| {
            anyhow!("invalid K3RS_COMPACT_INTERVAL {v:?}: expected e.g. 30s or 5m")
        })?;
    }
    if let Ok(v) = std::env::var("K3RS_COMPACT_RETAIN") {
        options.retain_revisions = v.parse().ok().filter(|n: &i64| *n > 0).ok_or_else(|| {
            anyhow!("invalid K3RS_COMPACT_RETAIN {v:?}: expected a positive number of revisions")
        })?;
    }
    Ok(options)
}

/// `90`, `90s`, `5m` or `1h`.
fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let (number, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, "s"),
    };
    let n: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

/// A client of this server's API authenticated by a fresh client certificate for `user`.
pub async fn local_client(
    pki: &Pki,
    api: SocketAddr,
    component: &str,
    user: &str,
    groups: &[&str],
) -> Result<kube::Client> {
    let (cert, key) = pki
        .issue_client_cert(user, groups)
        .with_context(|| format!("client certificate for {user}"))?;
    let yaml =
        k3rs_certs::render_kubeconfig(&format!("https://{api}"), &pki.server_ca_pem, &cert, &key);
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).context("in-process kubeconfig")?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .context("in-process kubeconfig")?;
    // The API server names a writer's managedFields entries after its User-Agent, as
    // upstream's components show up as `kube-controller-manager` and `kube-scheduler`.
    let agent = format!("{component}/v1.33.5+k3rs1");
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_str(&agent).context("user agent")?,
    ));
    kube::Client::try_from(config).context("in-process API client")
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
    let controller_client = local_client(
        pki,
        api,
        "kube-controller-manager",
        "system:kube-controller-manager",
        &["system:masters"],
    )
    .await?;
    let scheduler_client =
        local_client(pki, api, "kube-scheduler", "system:kube-scheduler", &[]).await?;
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
    tokio::spawn(async move {
        if let Err(err) = k3rs_controllers::run(config, shutdown).await {
            tracing::error!(error = %err, "control plane stopped");
        }
    });
    Ok(())
}

/// Resolve when the process receives SIGTERM or SIGINT.
async fn termination_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received, shutting down"),
        _ = int.recv() => info!("SIGINT received, shutting down"),
    }
}

pub async fn run(settings: Settings) -> Result<()> {
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
    let shutdown = Shutdown::new();
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
            flannel_backend: settings.flannel_backend.to_string(),
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
        let node = crate::agent::LocalNode {
            pki: &pki,
            api,
            data_dir: &settings.data_dir,
            node_name: &settings.node_name,
            node_ips: &settings.node_ips,
            cluster: &settings.cluster,
        };
        agent_task = Some(crate::agent::start_local(agent, node, shutdown.clone()).await?);
    }
    let signal_shutdown = shutdown.clone();
    tokio::spawn(async move {
        termination_signal().await;
        signal_shutdown.trigger();
    });
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
        let cli = crate::cli::Cli::try_parse_from(args).unwrap();
        let crate::cli::Command::Server(server) = cli.command else {
            panic!("server subcommand expected");
        };
        Settings::from_args(&server)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1x"), None);
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
