//! The flannel-style pod network of a k3rs node, as k3s runs flannel inside its agent.
//!
//! Each node announces its pod subnet's way in through flannel's Node annotations and
//! reads everyone else's. With the vxlan backend it keeps a `flannel.1` VTEP (VNI 1,
//! UDP 8472) and one route, ARP entry and FDB entry per peer; with host-gw a direct route
//! per peer; with none nothing at all. It also writes `/run/flannel/subnet.env` and an
//! nftables table for masquerade and forwarding.
//!
//! Layout: what to have is computed by pure functions ([`desired`], [`annotations`],
//! [`peers`], [`subnet_env`], [`nftables::render_ruleset`]); [`dataplane`] applies it over
//! rtnetlink; [`agent`] watches Nodes and runs the loop.
//!
//! Must not: allocate pod CIDRs (the controller manager's node IPAM does), write the CNI
//! config (the kubelet does, with [`cni_mtu`]), or touch routes, neighbours or nftables
//! tables it does not own.

pub mod agent;
pub mod annotations;
mod backend;
pub mod dataplane;
pub mod desired;
mod error;
pub mod ethtool;
pub mod mac;
pub mod netns;
pub mod nftables;
pub mod peers;
pub mod subnet_env;

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

pub use agent::run;
pub use backend::{cni_mtu, Backend, VXLAN_OVERHEAD};
pub use dataplane::{flannel_iface, iface_for_ip};
pub use error::{Error, Result};
pub use subnet_env::render_subnet_env;

/// Where flannel writes its subnet file.
pub const DEFAULT_SUBNET_ENV_PATH: &str = "/run/flannel/subnet.env";

/// Settings of the overlay of one node.
#[derive(Clone)]
pub struct Config {
    pub node_name: String,
    /// Identity `system:node:<name>`: watches Nodes, patches its own.
    pub client: kube::Client,
    pub backend: Backend,
    /// `--flannel-iface`; default: the interface holding `node_ip`.
    pub iface: Option<String>,
    pub node_ip: IpAddr,
    /// `--flannel-external-ip`: announce the node's ExternalIP as its public IP.
    pub external_ip: bool,
    pub cluster_cidr: IpNet,
    /// Default [`DEFAULT_SUBNET_ENV_PATH`]; one per node in the dev cluster.
    pub subnet_env_path: PathBuf,
    /// Where the VTEP MAC is kept across restarts (under the agent data dir).
    pub vtep_mac_path: PathBuf,
    /// Turn off `tx-checksum-ip-generic` on `flannel.1` (the VXLAN checksum workaround
    /// for kernels/NICs that corrupt checksums of encapsulated packets).
    pub tx_checksum_offload_off: bool,
    /// Masquerade pod traffic leaving the cluster CIDR (`FLANNEL_IPMASQ`).
    pub ip_masq: bool,
    /// Work inside this network namespace instead of the process's own (dev cluster,
    /// tests); `None` in production.
    pub netns: Option<PathBuf>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("node_name", &self.node_name)
            .field("backend", &self.backend)
            .field("iface", &self.iface)
            .field("node_ip", &self.node_ip)
            .field("external_ip", &self.external_ip)
            .field("cluster_cidr", &self.cluster_cidr)
            .field("subnet_env_path", &self.subnet_env_path)
            .field("vtep_mac_path", &self.vtep_mac_path)
            .field("tx_checksum_offload_off", &self.tx_checksum_offload_off)
            .field("ip_masq", &self.ip_masq)
            .field("netns", &self.netns)
            .finish_non_exhaustive()
    }
}
