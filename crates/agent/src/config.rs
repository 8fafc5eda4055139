//! What the node agent runs with: the validated node flags shared by `k3rs server` and
//! `k3rs agent` ([`Config`]), and who the node is in the cluster ([`NodeCredentials`]),
//! which comes from the server's PKI for its own node or from a join.

use std::net::IpAddr;
use std::path::PathBuf;

use k3rs_core::join::FlannelBackend;
use k3rs_core::ClusterConfig;
use k8s_openapi::api::core::v1::Taint;

/// The node agent's settings (`--node-label`, `--kubelet-arg`, `--flannel-iface`, ...),
/// already validated by the binary.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_external_ips: Vec<IpAddr>,
    pub labels: Vec<(String, String)>,
    pub taints: Vec<Taint>,
    pub pause_image: String,
    pub container_runtime_endpoint: Option<PathBuf>,
    pub kubelet_port: u16,
    pub eviction_hard: k3rs_kubelet::node::eviction::Thresholds,
    /// `--flannel-backend`; a joined agent follows the server's instead.
    pub flannel_backend: FlannelBackend,
    pub flannel_iface: Option<String>,
    pub flannel_external_ip: bool,
    pub flannel_subnet_env: PathBuf,
    pub flannel_tx_checksum_off: bool,
}

/// Who the node is and what the cluster looks like: from the server's own PKI for its
/// in-process agent, or from the join protocol for `k3rs agent`.
pub struct NodeCredentials {
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
    /// The cluster's overlay, as the server decided it.
    pub backend: FlannelBackend,
}
