//! The join wire contract between `k3rs agent` and a server's supervisor endpoints (k3s's
//! `/cacerts` and `/v1-k3s/...`): the paths, the headers a certificate request carries,
//! the cluster settings document an agent receives, and the overlay backends. Both sides
//! use these values, so they agree on the protocol by construction.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::ClusterConfig;

/// The supervisor's paths, on the API server's port.
pub mod path {
    /// The cluster CA bundle; no authentication (the agent checks it against its token).
    pub const CACERTS: &str = "/cacerts";
    pub const PING: &str = "/ping";
    /// The [`AgentConfig`](super::AgentConfig) document.
    pub const CONFIG: &str = "/v1-k3rs/config";
    pub const READYZ: &str = "/v1-k3rs/readyz";
    /// The API servers of the cluster, as a JSON list of URLs.
    pub const APISERVERS: &str = "/v1-k3rs/apiservers";
    pub const SERVER_CA: &str = "/v1-k3rs/server-ca.crt";
    pub const CLIENT_CA: &str = "/v1-k3rs/client-ca.crt";
    /// Certificate requests: a CSR in the body, the certificate chain in the answer.
    pub const SERVING_KUBELET: &str = "/v1-k3rs/serving-kubelet.crt";
    pub const CLIENT_KUBELET: &str = "/v1-k3rs/client-kubelet.crt";
    pub const CLIENT_KUBE_PROXY: &str = "/v1-k3rs/client-kube-proxy.crt";
    pub const CLIENT_CONTROLLER: &str = "/v1-k3rs/client-k3rs-controller.crt";
}

/// Header names an agent sends with certificate requests (k3s: `K3s-Node-Name`, ...).
pub const NODE_NAME_HEADER: &str = "K3rs-Node-Name";
pub const NODE_PASSWORD_HEADER: &str = "K3rs-Node-Password";
pub const NODE_IP_HEADER: &str = "K3rs-Node-IP";
/// User of the agent-side controllers' client certificate (k3s: `system:k3s-controller`).
pub const CONTROLLER_USER: &str = "system:k3rs-controller";

/// How pod traffic crosses between nodes (`--flannel-backend`). The server chooses it for
/// the whole cluster; agents follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum FlannelBackend {
    /// Encapsulate in VXLAN (VNI 1, UDP 8472) through `flannel.1`: works across routed
    /// networks. k3s's default.
    #[default]
    Vxlan,
    /// Route each node's pod subnet straight to that node: no encapsulation, but every
    /// node must sit on one L2 segment.
    HostGw,
    /// No overlay at all: the user brings a CNI.
    None,
}

impl FlannelBackend {
    /// The value of `--flannel-backend` and of flannel's `backend-type` annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            FlannelBackend::Vxlan => "vxlan",
            FlannelBackend::HostGw => "host-gw",
            FlannelBackend::None => "none",
        }
    }
}

impl fmt::Display for FlannelBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `--flannel-backend` value k3rs does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --flannel-backend {0:?}: expected vxlan, host-gw or none")]
pub struct UnknownBackend(pub String);

impl FromStr for FlannelBackend {
    type Err = UnknownBackend;

    fn from_str(text: &str) -> Result<Self, UnknownBackend> {
        match text {
            "vxlan" => Ok(FlannelBackend::Vxlan),
            "host-gw" => Ok(FlannelBackend::HostGw),
            "none" => Ok(FlannelBackend::None),
            other => Err(UnknownBackend(other.to_string())),
        }
    }
}

// On the wire the backend is its flag value, as k3s sends it.
impl Serialize for FlannelBackend {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FlannelBackend {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `GET /v1-k3rs/config`: the cluster-wide settings an agent must not choose itself (pod
/// and service networks, cluster DNS and domain, overlay backend) and the API servers it
/// may talk to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentConfig {
    #[serde(rename = "clusterCIDR")]
    pub cluster_cidr: IpNet,
    #[serde(rename = "serviceCIDR")]
    pub service_cidr: IpNet,
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: IpAddr,
    pub cluster_domain: String,
    /// `FIRST-LAST`, e.g. `30000-32767`.
    pub service_node_port_range: String,
    pub flannel_backend: FlannelBackend,
    /// API server URLs (`https://<ip>:<port>`), this server first.
    pub servers: Vec<String>,
}

impl AgentConfig {
    pub fn new(
        cluster: &ClusterConfig,
        flannel_backend: FlannelBackend,
        servers: Vec<String>,
    ) -> Self {
        AgentConfig {
            cluster_cidr: cluster.cluster_cidr,
            service_cidr: cluster.service_cidr,
            cluster_dns: cluster.cluster_dns,
            cluster_domain: cluster.cluster_domain.clone(),
            service_node_port_range: format!(
                "{}-{}",
                cluster.node_port_range.start(),
                cluster.node_port_range.end()
            ),
            flannel_backend,
            servers,
        }
    }

    /// The cluster settings as the rest of k3rs uses them.
    pub fn cluster(&self) -> Result<ClusterConfig, String> {
        let bad_range = || {
            format!(
                "serviceNodePortRange {:?} is not FIRST-LAST",
                self.service_node_port_range
            )
        };
        let (first, last) = self
            .service_node_port_range
            .split_once('-')
            .ok_or_else(bad_range)?;
        let first: u16 = first.trim().parse().map_err(|_| bad_range())?;
        let last: u16 = last.trim().parse().map_err(|_| bad_range())?;
        if first == 0 || first > last {
            return Err(bad_range());
        }
        Ok(ClusterConfig {
            cluster_cidr: self.cluster_cidr,
            service_cidr: self.service_cidr,
            cluster_dns: self.cluster_dns,
            cluster_domain: self.cluster_domain.clone(),
            node_port_range: first..=last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_parse_and_name_the_flag_on_error() {
        for backend in [
            FlannelBackend::Vxlan,
            FlannelBackend::HostGw,
            FlannelBackend::None,
        ] {
            assert_eq!(backend.as_str().parse::<FlannelBackend>().unwrap(), backend);
        }
        let err = "wireguard"
            .parse::<FlannelBackend>()
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid --flannel-backend \"wireguard\""),
            "{err}"
        );
    }

    #[test]
    fn agent_config_round_trips_with_the_backend_as_its_flag_value() {
        let cluster = ClusterConfig::default();
        let config = AgentConfig::new(
            &cluster,
            FlannelBackend::HostGw,
            vec!["https://10.0.0.1:6443".into()],
        );
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["flannelBackend"], "host-gw");
        assert_eq!(json["clusterCIDR"], cluster.cluster_cidr.to_string());
        let back: AgentConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, config);
        assert_eq!(back.cluster().unwrap(), cluster);
    }
}
