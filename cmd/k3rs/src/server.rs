//! `k3rs server`'s flags, validated into a [`k3rs_server::Config`]: defaults, rules that
//! involve several flags, `--kube-controller-manager-arg` and the datastore tuning knobs.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use k3rs_core::ClusterConfig;
use k3rs_server::Config;

use crate::cli::ServerArgs;

const DEFAULT_CLUSTER_CIDR: &str = "10.42.0.0/16";
const DEFAULT_SERVICE_CIDR: &str = "10.43.0.0/16";

/// The address of the interface holding the default route. Connecting a UDP socket only
/// asks the kernel for a route; no packet is sent.
fn default_route_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// The server's settings from its flags; every problem is one line naming the flag.
pub fn config(args: &ServerArgs) -> Result<Config> {
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
    // The node's own flags matter only when this server runs its node.
    let agent = match args.disable_agent {
        true => None,
        false => Some(crate::agent_flags::node_agent_config(&args.agent)?),
    };
    Ok(Config {
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
        flannel_backend: args.agent.flannel_backend.unwrap_or_default(),
        store: store_options()?,
        agent,
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(extra: &[&str]) -> Result<Config> {
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
        config(&server)
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
