//! `GET /v1-k3rs/config`: the cluster-wide settings an agent must not choose itself
//! (pod and service networks, cluster DNS and domain, flannel backend) and the API
//! servers it may talk to. The JSON type is shared with the agent (`k3rs agent`), so
//! both sides agree on the format by construction.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use k3rs_core::ClusterConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Refusal;
use crate::AppState;

/// The flannel backend agents get when the server did not say (k3s's default).
pub const DEFAULT_FLANNEL_BACKEND: &str = "vxlan";

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
    /// `vxlan`, `host-gw` or `none`.
    pub flannel_backend: String,
    /// API server URLs (`https://<ip>:<port>`), this server first.
    pub servers: Vec<String>,
}

impl AgentConfig {
    pub fn new(cluster: &ClusterConfig, flannel_backend: &str, servers: Vec<String>) -> Self {
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
            flannel_backend: flannel_backend.to_string(),
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

/// Addresses in the `subsets` of an Endpoints object, as `ip:port`.
fn endpoint_addresses(endpoints: &Value) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for subset in endpoints
        .get("subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let port = subset
            .get("ports")
            .and_then(Value::as_array)
            .and_then(|ports| ports.first())
            .and_then(|p| p.get("port"))
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok());
        let Some(port) = port else { continue };
        for address in subset
            .get("addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(ip) = address
                .get("ip")
                .and_then(Value::as_str)
                .and_then(|ip| ip.parse::<IpAddr>().ok())
            {
                out.push(SocketAddr::new(ip, port));
            }
        }
    }
    out
}

/// This server's advertised address, then every other address of the `kubernetes`
/// Endpoints (servers sharing the datastore), without duplicates.
pub(crate) async fn server_addresses(state: &AppState) -> Result<Vec<SocketAddr>, Refusal> {
    let mut addresses = vec![state.config.advertise];
    if let Some(def) = state.find("", "v1", "endpoints") {
        if let Some(endpoints) = state
            .store
            .get(&def, Some("default"), "kubernetes")
            .await
            .map_err(Refusal::from)?
        {
            for address in endpoint_addresses(&endpoints) {
                if !addresses.contains(&address) {
                    addresses.push(address);
                }
            }
        }
    }
    Ok(addresses)
}

pub(crate) async fn server_urls(state: &AppState) -> Result<Vec<String>, Refusal> {
    Ok(server_addresses(state)
        .await?
        .into_iter()
        .map(|a| format!("https://{a}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trip_and_cluster_config() {
        let cluster = ClusterConfig::default();
        let config = AgentConfig::new(&cluster, "vxlan", vec!["https://192.0.2.1:6443".into()]);
        let text = serde_json::to_string(&config).unwrap();
        assert!(text.contains("\"clusterCIDR\":\"10.42.0.0/16\""), "{text}");
        assert!(text.contains("\"clusterDNS\":\"10.43.0.10\""), "{text}");
        assert!(
            text.contains("\"serviceNodePortRange\":\"30000-32767\""),
            "{text}"
        );
        let back: AgentConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, config);
        let again = back.cluster().unwrap();
        assert_eq!(again.cluster_cidr, cluster.cluster_cidr);
        assert_eq!(again.node_port_range, cluster.node_port_range);
        let broken = AgentConfig {
            service_node_port_range: "5-1".into(),
            ..config
        };
        assert!(broken.cluster().is_err());
    }

    #[test]
    fn endpoints_to_addresses() {
        let endpoints = json!({"subsets": [
            {"addresses": [{"ip": "192.0.2.1"}, {"ip": "192.0.2.2"}], "ports": [{"port": 6443}]},
            {"addresses": [{"ip": "not-an-ip"}], "ports": [{"port": 6443}]},
            {"addresses": [{"ip": "192.0.2.3"}]},
        ]});
        let got: Vec<String> = endpoint_addresses(&endpoints)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["192.0.2.1:6443", "192.0.2.2:6443"]);
    }
}
