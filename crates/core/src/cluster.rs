//! Cluster-wide network settings shared by the API server, the controllers and the agent.

use std::net::IpAddr;
use std::ops::RangeInclusive;

use ipnet::IpNet;

/// The address plan of a cluster, as set by `--cluster-cidr`, `--service-cidr`,
/// `--cluster-dns`, `--cluster-domain` and `--service-node-port-range`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    pub cluster_cidr: IpNet,
    pub service_cidr: IpNet,
    pub cluster_dns: IpAddr,
    pub cluster_domain: String,
    pub node_port_range: RangeInclusive<u16>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            cluster_cidr: "10.42.0.0/16".parse().expect("static CIDR"),
            service_cidr: "10.43.0.0/16".parse().expect("static CIDR"),
            cluster_dns: "10.43.0.10".parse().expect("static IP"),
            cluster_domain: "cluster.local".to_string(),
            node_port_range: 30000..=32767,
        }
    }
}

impl ClusterConfig {
    /// The first usable address of the service CIDR: the `kubernetes` Service's ClusterIP
    /// and a SAN of the serving certificate.
    pub fn kubernetes_service_ip(&self) -> IpAddr {
        nth_address(&self.service_cidr, 1)
    }
}

/// The address `offset` places after the network address of `net`.
pub fn nth_address(net: &IpNet, offset: u128) -> IpAddr {
    match net {
        IpNet::V4(v4) => {
            let base = u32::from(v4.network()) as u128;
            IpAddr::V4(std::net::Ipv4Addr::from((base + offset) as u32))
        }
        IpNet::V6(v6) => {
            let base = u128::from(v6.network());
            IpAddr::V6(std::net::Ipv6Addr::from(base + offset))
        }
    }
}

/// The Secret in `kube-system` holding a node's password hash (written by the server's
/// supervisor at join, deleted with the Node): `<node>.node-password.k3rs`.
pub fn node_password_secret_name(node: &str) -> String {
    format!("{node}.node-password.k3rs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_k3s() {
        let c = ClusterConfig::default();
        assert_eq!(c.kubernetes_service_ip().to_string(), "10.43.0.1");
        assert!(c.service_cidr.contains(&c.cluster_dns));
    }
}
