//! The Node object: registration, status (conditions, capacity, images) and the Lease.

use ipnet::IpNet;
use k3rs_core::Shutdown;

use crate::cri::Cri;
use crate::{Config, Result};

/// What registration learned, for the status loop.
pub struct Registration {}

pub async fn register(config: &Config, runtime_version: &str) -> Result<Registration> {
    let _ = (config, runtime_version);
    Ok(Registration {})
}

pub async fn wait_pod_cidr(
    client: &kube::Client,
    node: &str,
    shutdown: &Shutdown,
) -> Result<IpNet> {
    let _ = (client, node, shutdown);
    Ok("10.42.0.0/24".parse().unwrap())
}

pub async fn run_status(
    config: Config,
    cri: Cri,
    registration: Registration,
    shutdown: Shutdown,
) -> Result<()> {
    let _ = (config, cri, registration);
    shutdown.cancelled().await;
    Ok(())
}
