//! Agent settings from the flags, and starting the kubelet in this process. `k3rs server`
//! runs it on its own node unless `--disable-agent` is given.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use k3rs_certs::Pki;
use k3rs_core::{ClusterConfig, Shutdown};
use k8s_openapi::api::core::v1::Taint;

use crate::cli::AgentArgs;

/// Validated agent flags.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub node_external_ips: Vec<IpAddr>,
    pub labels: Vec<(String, String)>,
    pub taints: Vec<Taint>,
    pub pause_image: String,
    pub container_runtime_endpoint: Option<PathBuf>,
    pub kubelet_port: u16,
    pub eviction_hard: k3rs_kubelet::node::eviction::Thresholds,
    /// `--flannel-backend`; a joined agent follows the server's instead.
    pub flannel_backend: k3rs_flannel::Backend,
    pub flannel_iface: Option<String>,
    pub flannel_external_ip: bool,
    pub flannel_subnet_env: PathBuf,
    pub flannel_tx_checksum_off: bool,
}

fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'))
    });
    name_ok && prefix_ok
}

fn is_label_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= 63
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && value.as_bytes()[0].is_ascii_alphanumeric()
            && value.as_bytes()[value.len() - 1].is_ascii_alphanumeric())
}

fn parse_label(text: &str) -> Result<(String, String)> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid --node-label {text:?}: expected KEY=VALUE"))?;
    if !is_label_key(key) {
        bail!("invalid --node-label {text:?}: {key:?} is not a valid label key");
    }
    if !is_label_value(value) {
        bail!("invalid --node-label {text:?}: {value:?} is not a valid label value");
    }
    Ok((key.to_string(), value.to_string()))
}

fn parse_taint(text: &str) -> Result<Taint> {
    let bad = |why: &str| anyhow!("invalid --node-taint {text:?}: {why}");
    let (key_value, effect) = text
        .rsplit_once(':')
        .ok_or_else(|| bad("expected KEY[=VALUE]:EFFECT"))?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(bad(
            "effect must be NoSchedule, PreferNoSchedule or NoExecute",
        ));
    }
    let (key, value) = match key_value.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (key_value, None),
    };
    if !is_label_key(key) {
        return Err(bad("the key is not a valid label key"));
    }
    if value.is_some_and(|v| !is_label_value(v)) {
        return Err(bad("the value is not a valid label value"));
    }
    Ok(Taint {
        key: key.to_string(),
        value: value.map(str::to_string),
        effect: effect.to_string(),
        time_added: None,
    })
}

impl AgentSettings {
    pub fn from_args(args: &AgentArgs) -> Result<AgentSettings> {
        let node_external_ips = args
            .node_external_ip
            .iter()
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| anyhow!("invalid --node-external-ip {v:?}: not an IP address"))
            })
            .collect::<Result<_>>()?;
        let labels = args
            .node_label
            .iter()
            .map(|l| parse_label(l))
            .collect::<Result<_>>()?;
        let taints = args
            .node_taint
            .iter()
            .map(|t| parse_taint(t))
            .collect::<Result<_>>()?;
        let mut kubelet_port = k3rs_kubelet::DEFAULT_KUBELET_PORT;
        let mut eviction_hard = Default::default();
        for arg in &args.kubelet_arg {
            let (key, value) = arg
                .split_once('=')
                .ok_or_else(|| anyhow!("invalid --kubelet-arg {arg:?}: expected KEY=VALUE"))?;
            match key.trim_start_matches("--") {
                "port" => {
                    kubelet_port = value.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                        anyhow!("invalid --kubelet-arg {arg:?}: expected a port number 1-65535")
                    })?
                }
                "eviction-hard" => {
                    eviction_hard = k3rs_kubelet::node::eviction::Thresholds::parse(value)
                        .map_err(|err| anyhow!("invalid --kubelet-arg {arg:?}: {err}"))?
                }
                _ => bail!("invalid --kubelet-arg {arg:?}: k3rs supports port and eviction-hard"),
            }
        }
        let flannel_backend: k3rs_flannel::Backend =
            args.flannel_backend.as_deref().unwrap_or("vxlan").parse()?;
        let container_runtime_endpoint = args
            .container_runtime_endpoint
            .as_deref()
            .map(|e| PathBuf::from(e.strip_prefix("unix://").unwrap_or(e)));
        Ok(AgentSettings {
            node_external_ips,
            labels,
            taints,
            pause_image: args
                .pause_image
                .clone()
                .unwrap_or_else(|| k3rs_kubelet::DEFAULT_PAUSE_IMAGE.to_string()),
            container_runtime_endpoint,
            kubelet_port,
            eviction_hard,
            flannel_backend,
            flannel_iface: args.flannel_iface.clone(),
            flannel_external_ip: args.flannel_external_ip,
            flannel_subnet_env: PathBuf::from(
                args.flannel_subnet_env
                    .as_deref()
                    .unwrap_or(k3rs_flannel::DEFAULT_SUBNET_ENV_PATH),
            ),
            flannel_tx_checksum_off: args.flannel_tx_checksum_off,
        })
    }
}

/// Who the node is and what the cluster looks like: from the server's own PKI for its
/// in-process agent, or from the join protocol for `k3rs agent`.
pub struct NodeIdentity {
    pub node_name: String,
    pub node_ips: Vec<IpAddr>,
    pub data_dir: PathBuf,
    pub cluster: ClusterConfig,
    /// `system:node:<name>` in `system:nodes`.
    pub client: kube::Client,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub client_ca_pem: String,
    pub control_plane: bool,
    pub backend: k3rs_flannel::Backend,
}

/// Start the node agent: the overlay (unless `none`) and the kubelet. The pod MTU is
/// known before the kubelet writes its CNI config. A node whose IP is on loopback (a
/// single-node server bound to 127.0.0.1, as in tests) can have no peers, so it runs no
/// overlay and keeps the standard MTU.
pub fn start(
    settings: &AgentSettings,
    node: NodeIdentity,
    shutdown: Shutdown,
) -> Result<tokio::task::JoinHandle<()>> {
    use k3rs_flannel::Backend;
    let node_ip = node
        .node_ips
        .iter()
        .find(|ip| ip.is_ipv4())
        .or(node.node_ips.first())
        .copied()
        .ok_or_else(|| anyhow!("the node has no IP address; set --node-ip"))?;
    let overlay = node.backend != Backend::None && !node_ip.is_loopback();
    let cni_mtu = match overlay {
        true => {
            let (_, mtu) = k3rs_flannel::flannel_iface(settings.flannel_iface.as_deref(), node_ip)
                .context("--flannel-iface")?;
            k3rs_flannel::cni_mtu(node.backend, mtu)
        }
        false => 1500,
    };
    if overlay {
        let config = k3rs_flannel::Config {
            node_name: node.node_name.clone(),
            client: node.client.clone(),
            backend: node.backend,
            iface: settings.flannel_iface.clone(),
            node_ip,
            external_ip: settings.flannel_external_ip,
            cluster_cidr: node.cluster.cluster_cidr,
            subnet_env_path: settings.flannel_subnet_env.clone(),
            vtep_mac_path: node.data_dir.join("agent/flannel/vtep-mac"),
            tx_checksum_offload_off: settings.flannel_tx_checksum_off,
            ip_masq: true,
            netns: None,
        };
        let overlay_shutdown = shutdown.clone();
        tokio::spawn(async move {
            // Without its overlay a node cannot serve pods: stop, as k3s does.
            if let Err(err) = k3rs_flannel::run(config, overlay_shutdown.clone()).await {
                tracing::error!(error = %err, "overlay network failed");
                overlay_shutdown.trigger();
            }
        });
    } else if node.backend != Backend::None {
        tracing::warn!(%node_ip, "node IP is a loopback address: no overlay network");
    }
    let config = k3rs_kubelet::Config {
        node_name: node.node_name,
        data_dir: node.data_dir,
        node_ips: node.node_ips,
        node_external_ips: settings.node_external_ips.clone(),
        labels: settings.labels.clone(),
        taints: settings.taints.clone(),
        control_plane: node.control_plane,
        cluster: node.cluster,
        client: node.client,
        container_runtime_endpoint: settings.container_runtime_endpoint.clone(),
        pause_image: settings.pause_image.clone(),
        kubelet_port: settings.kubelet_port,
        eviction_hard: settings.eviction_hard.clone(),
        serving_cert_pem: node.serving_cert_pem,
        serving_key_pem: node.serving_key_pem,
        client_ca_pem: node.client_ca_pem,
        cni_mtu,
        write_cni_config: node.backend != Backend::None,
    };
    Ok(tokio::spawn(async move {
        if let Err(err) = k3rs_kubelet::run(config, shutdown).await {
            tracing::error!(error = %err, "agent stopped");
        }
    }))
}

/// What the in-process agent of a server needs besides its settings.
pub struct LocalNode<'a> {
    pub pki: &'a Pki,
    /// Where this process's API server is reached from inside it.
    pub api: std::net::SocketAddr,
    pub data_dir: &'a Path,
    pub node_name: &'a str,
    pub node_ips: &'a [IpAddr],
    pub cluster: &'a ClusterConfig,
}

/// Start the agent of this server's own node, with a client certificate for
/// `system:node:<name>` and a serving certificate for its names and addresses.
pub async fn start_local(
    settings: &AgentSettings,
    node: LocalNode<'_>,
    shutdown: Shutdown,
) -> Result<tokio::task::JoinHandle<()>> {
    let user = format!("system:node:{}", node.node_name);
    let client =
        crate::server::local_client(node.pki, node.api, "kubelet", &user, &["system:nodes"])
            .await?;
    let mut sans_ip = node.node_ips.to_vec();
    sans_ip.extend(settings.node_external_ips.iter().copied());
    let (serving_cert_pem, serving_key_pem) = node
        .pki
        .issue_serving_cert(node.node_name, &[node.node_name.to_string()], &sans_ip)
        .context("kubelet serving certificate")?;
    let identity = NodeIdentity {
        node_name: node.node_name.to_string(),
        node_ips: node.node_ips.to_vec(),
        data_dir: node.data_dir.to_path_buf(),
        cluster: node.cluster.clone(),
        client,
        serving_cert_pem,
        serving_key_pem,
        client_ca_pem: node.pki.client_ca_pem.clone(),
        control_plane: true,
        backend: settings.flannel_backend,
    };
    start(settings, identity, shutdown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_taints() {
        assert_eq!(
            parse_label("example.com/tier=edge").unwrap(),
            ("example.com/tier".into(), "edge".into())
        );
        assert!(parse_label("novalue")
            .unwrap_err()
            .to_string()
            .starts_with("invalid --node-label"));
        assert!(parse_label("a=b c").is_err());
        let t = parse_taint("dedicated=gpu:NoSchedule").unwrap();
        assert_eq!(
            (t.key.as_str(), t.value.as_deref(), t.effect.as_str()),
            ("dedicated", Some("gpu"), "NoSchedule")
        );
        let t = parse_taint("edge:NoExecute").unwrap();
        assert_eq!(t.value, None);
        assert!(parse_taint("x=y:Sometimes")
            .unwrap_err()
            .to_string()
            .contains("effect"));
    }
}
