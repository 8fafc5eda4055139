//! The API servers an agent may talk to, for `GET /v1-k3rs/config` (whose document,
//! [`k3rs_core::join::AgentConfig`], is shared with the agent) and `/v1-k3rs/apiservers`.

use std::net::{IpAddr, SocketAddr};

use serde_json::Value;

use super::Refusal;
use crate::AppState;

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
