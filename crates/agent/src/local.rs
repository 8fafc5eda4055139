//! The server's own node: `k3rs server` (unless `--disable-agent`) runs the node agent in
//! its process with credentials issued from its own PKI, where `k3rs agent` would join.
//! [`client`] is also how the server's other in-process components (controllers,
//! scheduler) get their own identities: each is a client of the API over HTTPS.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::{Context, Result};
use k3rs_certs::Pki;
use k3rs_core::{ClusterConfig, Shutdown};

use crate::{Config, NodeCredentials};

/// A client of this server's API authenticated by a fresh client certificate for `user`.
/// `component` names the writer in managedFields, through the User-Agent.
pub async fn client(
    pki: &Pki,
    api: SocketAddr,
    component: &str,
    user: &str,
    groups: &[&str],
) -> Result<kube::Client> {
    let (cert, key) = pki
        .issue_client_cert(user, groups)
        .with_context(|| format!("client certificate for {user}"))?;
    let yaml =
        k3rs_certs::render_kubeconfig(&format!("https://{api}"), &pki.server_ca_pem, &cert, &key);
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).context("in-process kubeconfig")?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .context("in-process kubeconfig")?;
    // The API server names a writer's managedFields entries after its User-Agent, as
    // upstream's components show up as `kube-controller-manager` and `kube-scheduler`.
    let agent = format!("{component}/{}", k3rs_core::KUBE_GIT_VERSION);
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_str(&agent).context("user agent")?,
    ));
    kube::Client::try_from(config).context("in-process API client")
}

/// What the in-process agent of a server needs besides its settings.
pub struct LocalNode<'a> {
    pub pki: &'a Pki,
    /// Where this process's API server is reached from inside it.
    pub api: SocketAddr,
    pub data_dir: &'a Path,
    pub node_name: &'a str,
    pub node_ips: &'a [IpAddr],
    pub cluster: &'a ClusterConfig,
}

/// Start the agent of this server's own node, with a client certificate for
/// `system:node:<name>` and a serving certificate for its names and addresses.
pub async fn start(
    config: &Config,
    node: LocalNode<'_>,
    shutdown: Shutdown,
) -> Result<tokio::task::JoinHandle<()>> {
    let user = format!("system:node:{}", node.node_name);
    let client = client(node.pki, node.api, "kubelet", &user, &["system:nodes"]).await?;
    let mut sans_ip = node.node_ips.to_vec();
    sans_ip.extend(config.node_external_ips.iter().copied());
    let (serving_cert_pem, serving_key_pem) = node
        .pki
        .issue_serving_cert(node.node_name, &[node.node_name.to_string()], &sans_ip)
        .context("kubelet serving certificate")?;
    let credentials = NodeCredentials {
        node_name: node.node_name.to_string(),
        node_ips: node.node_ips.to_vec(),
        data_dir: node.data_dir.to_path_buf(),
        cluster: node.cluster.clone(),
        client,
        serving_cert_pem,
        serving_key_pem,
        client_ca_pem: node.pki.client_ca_pem.clone(),
        control_plane: true,
        backend: config.flannel_backend,
    };
    crate::node::start(config, credentials, shutdown)
}
