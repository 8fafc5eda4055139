//! Joining a cluster as an agent (`k3rs agent --server URL --token TOKEN`), the k3s way:
//!
//! 1. `GET /cacerts` without trusting the server, and compare the bundle's SHA-256 with
//!    the token's CA hash **before any credential is sent** (a mismatch is fatal). A short
//!    token has no hash: the CA is trusted on first use and remembered; a later change is
//!    refused.
//! 2. From then on, every request verifies the server against that CA and carries the
//!    token (`node:<password>` basic auth, or a bootstrap token as bearer).
//! 3. `GET /v1-k3rs/config` for the cluster settings, then certificates for keys made
//!    here: kubelet client (`system:node:<name>`) and serving, kube-proxy and
//!    k3rs-controller clients. The
//!    kubelet requests carry the node password ([`node_identity`]).
//! 4. Kubeconfigs in `<data-dir>/agent`, and a `kube::Client` for the node.
//!
//! All of it goes through the agent's load balancer on `127.0.0.1:<--lb-server-port>`
//! ([`crate::loadbalancer`]), which starts on `--server` and follows the cluster's list
//! of API servers from then on; the kubeconfigs name the load balancer, not a server.
//!
//! Refusals and unreachable servers are retried with back-off (1 s doubling to 30 s), as
//! k3s agents do; a CA that does not match the token, or a server whose certificate does
//! not verify against the CA it handed out, stops the agent. Nothing is registered by a
//! failed join: the server stores the node password only after the token and the
//! certificate request were accepted, and the Node object is the kubelet's job.

mod backoff;
mod credentials;
mod node_password;
mod settings;
mod supervisor;
mod transport;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use k3rs_certs::csr::Expected;
use k3rs_certs::JoinToken;
use k3rs_core::join::{
    path, AgentConfig, FlannelBackend, NODE_IP_HEADER, NODE_NAME_HEADER, NODE_PASSWORD_HEADER,
};
use k3rs_core::ClusterConfig;
use tracing::{info, warn};

pub use settings::{JoinSettings, ServerUrl, DEFAULT_NODE_PASSWORD_FILE};
pub use supervisor::Supervisor;

use crate::loadbalancer::LoadBalancer;

use credentials::{
    CERT_MODE, CLIENT_CONTROLLER, CLIENT_KUBELET, CLIENT_KUBE_PROXY, SERVING_KUBELET,
};
use node_password::NodePassword;
use transport::Pinned;

/// What a successful join hands to the kubelet and the overlay.
#[derive(Clone)]
pub struct Joined {
    pub node_name: String,
    /// `--node-ip`, or the address this machine reaches the server from.
    pub node_ips: Vec<IpAddr>,
    /// The server joined through, e.g. `https://10.0.0.1:6443`.
    pub server_url: String,
    /// API servers the cluster reports (this one first), as URLs.
    pub servers: Vec<String>,
    /// The local proxy every client of the agent goes through.
    pub load_balancer: LoadBalancer,
    /// Authenticated supervisor requests (through the load balancer), e.g. to refresh
    /// the server list.
    pub supervisor: Supervisor,
    /// The node's identity: `system:node:<name>` in `system:nodes`.
    pub client: kube::Client,
    /// `<data-dir>/agent/kubelet.kubeconfig` (the same identity, on disk).
    pub kubelet_kubeconfig: PathBuf,
    /// `<data-dir>/agent/kubeproxy.kubeconfig` (`system:kube-proxy`).
    pub kube_proxy_kubeconfig: PathBuf,
    /// `<data-dir>/agent/k3rscontroller.kubeconfig` (`system:k3rs-controller`), for the
    /// agent's own controllers such as the overlay.
    pub controller_kubeconfig: PathBuf,
    /// Kubelet HTTPS certificate (leaf, then the server CA) and key.
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// The CA whose client certificates the kubelet API accepts.
    pub client_ca_pem: String,
    /// The CA the API server's certificate chains to.
    pub server_ca_pem: String,
    pub cluster: ClusterConfig,
    /// The cluster's overlay, as the server says.
    pub flannel_backend: FlannelBackend,
}

impl std::fmt::Debug for Joined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Joined")
            .field("node_name", &self.node_name)
            .field("node_ips", &self.node_ips)
            .field("server_url", &self.server_url)
            .field("servers", &self.servers)
            .field("cluster", &self.cluster)
            .field("flannel_backend", &self.flannel_backend)
            .finish_non_exhaustive()
    }
}

/// Why an attempt ended without a join.
#[derive(Debug)]
pub enum Stop {
    /// Retrying cannot help (wrong CA, unusable local files).
    Fatal(anyhow::Error),
    /// The server refused or could not be reached; try again later.
    Retry(anyhow::Error),
}

/// Join the cluster of `settings.server`, retrying until it works or fails for good.
/// Cancel it by dropping the future (e.g. in a `select!` against SIGTERM); the load
/// balancer it starts runs until `shutdown`.
pub async fn join(
    settings: &JoinSettings,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Joined> {
    let url = settings.server.url.clone();
    let identity = node_password::ensure(
        &settings.node_name,
        settings.with_node_id,
        &settings.node_password_file,
    )?;
    let load_balancer = LoadBalancer::start(
        SocketAddr::from(([127, 0, 0, 1], settings.lb_server_port)),
        &settings.server.url,
        settings.server_address(),
        settings.agent_dir().join(crate::loadbalancer::STATE_FILE),
        shutdown,
    )
    .await?;
    let via = ServerUrl::parse(&load_balancer.url())
        .map_err(|why| anyhow::anyhow!("load balancer URL: {why}"))?;
    let mut backoff = backoff::Backoff::default();
    let mut warned_first_use = false;
    loop {
        match attempt(
            settings,
            &load_balancer,
            &via,
            &identity,
            &mut warned_first_use,
        )
        .await
        {
            Ok(joined) => return Ok(joined),
            Err(Stop::Fatal(err)) => return Err(err.context(format!("joining {url}"))),
            Err(Stop::Retry(err)) => {
                let delay = backoff.next_delay();
                warn!("joining {url}: {err:#}; retrying in {}s", delay.as_secs());
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Without a CA hash in the token, the first CA seen is remembered in `server-ca.crt`;
/// a different one later is refused rather than silently trusted.
fn trust_on_first_use(
    token: &JoinToken,
    agent_dir: &Path,
    ca_pem: &str,
    warned: &mut bool,
) -> Result<(), Stop> {
    if token.ca_hash.is_some() {
        return Ok(());
    }
    let known = agent_dir.join("server-ca.crt");
    match std::fs::read_to_string(&known) {
        Ok(previous) if previous == ca_pem => Ok(()),
        Ok(_) => Err(Stop::Fatal(anyhow::anyhow!(
            "the server's CA differs from the one this node trusted when it first joined ({}); \
             use the full K10 token from the server's token file, or remove that file to trust the new CA",
            known.display()
        ))),
        Err(_) => {
            if !*warned {
                warn!(
                    ca_hash = %k3rs_certs::ca_hash(ca_pem),
                    "the token has no CA hash: trusting the server's CA on first use; \
                     use the full token (K10<hash>::...) from the server's token file to verify it"
                );
                *warned = true;
            }
            Ok(())
        }
    }
}

/// The local address this machine uses to reach the server: the node IP the server and
/// the other nodes can reach it on. Asking the kernel for a route sends no packet.
async fn address_towards(server: &ServerUrl) -> Result<IpAddr, Stop> {
    let target: SocketAddr = tokio::net::lookup_host((server.host.as_str(), server.port))
        .await
        .map_err(|e| Stop::Retry(anyhow::anyhow!("resolving {}: {e}", server.host)))?
        .next()
        .ok_or_else(|| Stop::Retry(anyhow::anyhow!("{} has no address", server.host)))?;
    let bind: SocketAddr = match target {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("static address"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("static address"),
    };
    let socket = std::net::UdpSocket::bind(bind)
        .and_then(|s| s.connect(target).map(|_| s))
        .and_then(|s| s.local_addr())
        .map_err(|e| Stop::Retry(anyhow::anyhow!("no route to {target}: {e}")))?;
    Ok(socket.ip())
}

fn header(name: &'static str, value: &str) -> Result<(HeaderName, HeaderValue), Stop> {
    let value = HeaderValue::from_str(value)
        .map_err(|_| Stop::Fatal(anyhow::anyhow!("{name} cannot be sent as a header")))?;
    // `from_bytes` lower-cases the name, as HTTP/1.1 header names are case-insensitive.
    let name = HeaderName::from_bytes(name.as_bytes()).expect("supervisor header names are valid");
    Ok((name, value))
}

/// One join attempt; every request goes to `via`, the load balancer's URL.
async fn attempt(
    settings: &JoinSettings,
    load_balancer: &LoadBalancer,
    via: &ServerUrl,
    identity: &NodePassword,
    warned_first_use: &mut bool,
) -> Result<Joined, Stop> {
    let server = &settings.server;
    let dir = settings.agent_dir();

    // 1. The CA, checked against the token before anything secret is sent.
    let ca_pem = transport::fetch_unverified_ca(via).await?;
    settings
        .token
        .verify_ca(&ca_pem)
        .map_err(|e| Stop::Fatal(e.into()))?;
    trust_on_first_use(&settings.token, &dir, &ca_pem, warned_first_use)?;

    // 2. The server must prove it holds a certificate of that CA.
    let pinned = Pinned::new(via, &ca_pem).map_err(Stop::Fatal)?;
    pinned
        .request(Method::GET, path::CACERTS, &[], Bytes::new())
        .await?;
    let supervisor = Supervisor::new(pinned, &settings.token.credential)?;

    // 3. Cluster settings.
    let body = supervisor.get(path::CONFIG).await?;
    let config: AgentConfig = serde_json::from_slice(&body).map_err(|e| {
        Stop::Retry(anyhow::anyhow!(
            "GET /v1-k3rs/config: unexpected answer: {e}"
        ))
    })?;
    let cluster = config
        .cluster()
        .map_err(|e| Stop::Retry(anyhow::anyhow!("GET /v1-k3rs/config: {e}")))?;
    load_balancer.update_servers(server_addresses(&config.servers));
    let client_ca_pem = String::from_utf8(supervisor.get(path::CLIENT_CA).await?.to_vec())
        .map_err(|_| Stop::Retry(anyhow::anyhow!("GET /v1-k3rs/client-ca.crt: not PEM")))?;

    // 4. Certificates.
    let node_ips = match settings.node_ips.is_empty() {
        true => vec![address_towards(server).await?],
        false => settings.node_ips.clone(),
    };
    let mut serving_ips = node_ips.clone();
    serving_ips.extend(settings.agent.node_external_ips.iter().copied());
    let ip_list: Vec<String> = serving_ips.iter().map(IpAddr::to_string).collect();
    let mut password = header(NODE_PASSWORD_HEADER, &identity.password)?;
    password.1.set_sensitive(true);
    let node_headers = [
        header(NODE_NAME_HEADER, &identity.name)?,
        password,
        header(NODE_IP_HEADER, &ip_list.join(","))?,
    ];
    let kubelet_user = format!("system:node:{}", identity.name);
    let client = credentials::ensure(
        &supervisor,
        &dir,
        &CLIENT_KUBELET,
        &Expected {
            common_name: kubelet_user.clone(),
            organizations: vec!["system:nodes".into()],
            ..Expected::default()
        },
        &client_ca_pem,
        &node_headers,
    )
    .await?;
    let serving = credentials::ensure(
        &supervisor,
        &dir,
        &SERVING_KUBELET,
        &Expected {
            common_name: identity.name.clone(),
            organizations: vec![],
            dns_names: vec![identity.name.clone()],
            ip_addresses: serving_ips.clone(),
        },
        &ca_pem,
        &node_headers,
    )
    .await?;
    let proxy = credentials::ensure(
        &supervisor,
        &dir,
        &CLIENT_KUBE_PROXY,
        &Expected {
            common_name: "system:kube-proxy".into(),
            ..Expected::default()
        },
        &client_ca_pem,
        &[],
    )
    .await?;
    let controller = credentials::ensure(
        &supervisor,
        &dir,
        &CLIENT_CONTROLLER,
        &Expected {
            common_name: k3rs_core::join::CONTROLLER_USER.into(),
            ..Expected::default()
        },
        &client_ca_pem,
        &[],
    )
    .await?;

    // 5. CAs and kubeconfigs on disk; the node's API client.
    credentials::write_if_changed(&dir.join("server-ca.crt"), &ca_pem, CERT_MODE)?;
    credentials::write_if_changed(&dir.join("client-ca.crt"), &client_ca_pem, CERT_MODE)?;
    let kubelet_kubeconfig = dir.join("kubelet.kubeconfig");
    let kubelet_yaml =
        k3rs_certs::render_kubeconfig(&via.url, &ca_pem, &client.cert_pem, &client.key_pem);
    credentials::write_if_changed(&kubelet_kubeconfig, &kubelet_yaml, credentials::KEY_MODE)?;
    let kube_proxy_kubeconfig = dir.join("kubeproxy.kubeconfig");
    let proxy_yaml =
        k3rs_certs::render_kubeconfig(&via.url, &ca_pem, &proxy.cert_pem, &proxy.key_pem);
    credentials::write_if_changed(&kube_proxy_kubeconfig, &proxy_yaml, credentials::KEY_MODE)?;
    let controller_kubeconfig = dir.join("k3rscontroller.kubeconfig");
    let controller_yaml =
        k3rs_certs::render_kubeconfig(&via.url, &ca_pem, &controller.cert_pem, &controller.key_pem);
    credentials::write_if_changed(
        &controller_kubeconfig,
        &controller_yaml,
        credentials::KEY_MODE,
    )?;
    let api = node_client(&kubelet_yaml).await.map_err(Stop::Fatal)?;
    info!(node = %identity.name, server = %server.url, "joined");

    Ok(Joined {
        node_name: identity.name.clone(),
        node_ips,
        server_url: server.url.clone(),
        servers: config.servers.clone(),
        load_balancer: load_balancer.clone(),
        supervisor,
        client: api,
        kubelet_kubeconfig,
        kube_proxy_kubeconfig,
        controller_kubeconfig,
        serving_cert_pem: serving.cert_pem,
        serving_key_pem: serving.key_pem,
        client_ca_pem,
        server_ca_pem: ca_pem,
        cluster,
        flannel_backend: config.flannel_backend,
    })
}

/// `HOST:PORT` of each `https://HOST:PORT` server URL (others are skipped).
pub fn server_addresses(urls: &[String]) -> Vec<String> {
    urls.iter()
        .filter_map(|url| url.strip_prefix("https://"))
        .map(|rest| rest.trim_end_matches('/').to_string())
        .filter(|address| !address.is_empty())
        .collect()
}

/// A `kube::Client` from the kubelet kubeconfig, named `kubelet` to the API server.
async fn node_client(kubeconfig_yaml: &str) -> anyhow::Result<kube::Client> {
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(kubeconfig_yaml).context("kubelet kubeconfig")?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .context("kubelet kubeconfig")?;
    let agent = format!("kubelet/{}", k3rs_core::KUBE_GIT_VERSION);
    config.headers.push((
        http::header::USER_AGENT,
        HeaderValue::from_str(&agent).context("user agent")?,
    ));
    kube::Client::try_from(config).context("kubelet API client")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_use_is_remembered_and_a_change_refused() {
        let dir = tempfile::tempdir().unwrap();
        let short = JoinToken::parse("password").unwrap();
        let mut warned = false;
        assert!(trust_on_first_use(&short, dir.path(), "CA1", &mut warned).is_ok());
        assert!(warned);
        std::fs::write(dir.path().join("server-ca.crt"), "CA1").unwrap();
        assert!(trust_on_first_use(&short, dir.path(), "CA1", &mut warned).is_ok());
        let Err(Stop::Fatal(err)) = trust_on_first_use(&short, dir.path(), "CA2", &mut warned)
        else {
            panic!("a changed CA must be fatal");
        };
        assert!(err.to_string().contains("differs"), "{err}");
        // A token with a hash was already checked against the server's CA.
        let full =
            JoinToken::parse(&format!("K10{}::node:pw", k3rs_certs::ca_hash("CA2"))).unwrap();
        assert!(trust_on_first_use(&full, dir.path(), "CA2", &mut warned).is_ok());
    }
}
