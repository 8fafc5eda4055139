//! Starting a node's components: the overlay (unless `none`) and the kubelet, each a
//! task with its span (the kubelet opens its own). The pod MTU the overlay leaves is
//! known before the kubelet writes its CNI config.

use anyhow::{anyhow, Context, Result};
use k3rs_core::Shutdown;
use tracing::Instrument;

use crate::{Config, NodeCredentials};

/// Start the node agent: the overlay (unless `none`) and the kubelet. The pod MTU is
/// known before the kubelet writes its CNI config. A node whose IP is on loopback (a
/// single-node server bound to 127.0.0.1, as in tests) can have no peers, so it runs no
/// overlay and keeps the standard MTU.
pub fn start(
    config: &Config,
    node: NodeCredentials,
    shutdown: Shutdown,
) -> Result<tokio::task::JoinHandle<()>> {
    use k3rs_core::join::FlannelBackend as Backend;
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
            let (_, mtu) = k3rs_flannel::flannel_iface(config.flannel_iface.as_deref(), node_ip)
                .context("--flannel-iface")?;
            k3rs_flannel::cni_mtu(node.backend, mtu)
        }
        false => 1500,
    };
    if overlay {
        let overlay = k3rs_flannel::Config {
            node_name: node.node_name.clone(),
            client: node.client.clone(),
            backend: node.backend,
            iface: config.flannel_iface.clone(),
            node_ip,
            external_ip: config.flannel_external_ip,
            cluster_cidr: node.cluster.cluster_cidr,
            subnet_env_path: config.flannel_subnet_env.clone(),
            vtep_mac_path: node.data_dir.join("agent/flannel/vtep-mac"),
            tx_checksum_offload_off: config.flannel_tx_checksum_off,
            ip_masq: true,
            netns: None,
        };
        let overlay_shutdown = shutdown.clone();
        let span = tracing::info_span!("flannel", node = %node.node_name);
        k3rs_core::task::spawn(
            async move {
                // Without its overlay a node cannot serve pods: stop, as k3s does.
                if let Err(err) = k3rs_flannel::run(overlay, overlay_shutdown.clone()).await {
                    tracing::error!(error = %err, "overlay network failed");
                    overlay_shutdown.trigger();
                }
            }
            .instrument(span),
        );
    } else if node.backend != Backend::None {
        tracing::warn!(%node_ip, "node IP is a loopback address: no overlay network");
    }
    let kubelet = k3rs_kubelet::Config {
        node_name: node.node_name,
        data_dir: node.data_dir,
        node_ips: node.node_ips,
        node_external_ips: config.node_external_ips.clone(),
        labels: config.labels.clone(),
        taints: config.taints.clone(),
        control_plane: node.control_plane,
        cluster: node.cluster,
        client: node.client,
        container_runtime_endpoint: config.container_runtime_endpoint.clone(),
        pause_image: config.pause_image.clone(),
        kubelet_port: config.kubelet_port,
        eviction_hard: config.eviction_hard.clone(),
        serving_cert_pem: node.serving_cert_pem,
        serving_key_pem: node.serving_key_pem,
        client_ca_pem: node.client_ca_pem,
        cni_mtu,
        write_cni_config: node.backend != Backend::None,
    };
    // The kubelet opens its own span (`kubelet{node=...}`).
    Ok(k3rs_core::task::spawn(async move {
        if let Err(err) = k3rs_kubelet::run(kubelet, shutdown).await {
            tracing::error!(error = %err, "agent stopped");
        }
    }))
}
