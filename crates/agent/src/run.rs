//! `k3rs agent`: join, check the node's credentials, then run the node agent (overlay
//! and kubelet) until the shutdown signal.

use anyhow::{Context, Result};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::PostParams;

use k3rs_core::Shutdown;

use crate::join::{join, JoinSettings, Joined, Stop, Supervisor};
use crate::loadbalancer::LoadBalancer;
use crate::NodeCredentials;

/// How often the agent asks for the cluster's API servers. k3s agents watch the
/// `kubernetes` Endpoints; servers come and go rarely, so polling is enough.
const SERVER_LIST_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

/// Who the API server says the node's client is (a SelfSubjectReview).
async fn whoami(joined: &Joined) -> Result<String> {
    let reviews: kube::Api<SelfSubjectReview> = kube::Api::all(joined.client.clone());
    let review = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .context("asking the API server who this node is")?;
    let user = review.status.and_then(|s| s.user_info).unwrap_or_default();
    Ok(format!(
        "{} (groups {})",
        user.username.unwrap_or_default(),
        user.groups.unwrap_or_default().join(", ")
    ))
}

/// The kubelet API must be able to serve with the serving certificate and verify API
/// server clients with the client CA: build exactly that TLS configuration once.
fn check_serving(joined: &Joined) -> Result<()> {
    k3rs_certs::tls::server_config(
        &joined.serving_cert_pem,
        &joined.serving_key_pem,
        &joined.client_ca_pem,
    )
    .context("the kubelet serving certificate is unusable")?;
    Ok(())
}

fn summary(joined: &Joined, identity: &str) -> String {
    let ips: Vec<String> = joined.node_ips.iter().map(ToString::to_string).collect();
    let cluster = &joined.cluster;
    [
        format!("joined {} as node {}", joined.server_url, joined.node_name),
        format!("  API identity:     {identity}"),
        format!(
            "  cluster CA hash:  {}",
            k3rs_certs::ca_hash(&joined.server_ca_pem)
        ),
        format!("  node IPs:         {}", ips.join(", ")),
        format!("  cluster CIDR:     {}", cluster.cluster_cidr),
        format!("  service CIDR:     {}", cluster.service_cidr),
        format!("  cluster DNS:      {}", cluster.cluster_dns),
        format!("  cluster domain:   {}", cluster.cluster_domain),
        format!("  flannel backend:  {}", joined.flannel_backend),
        format!("  servers:          {}", joined.servers.join(", ")),
        format!("  load balancer:    {}", joined.load_balancer.url()),
        format!(
            "  kubeconfig:       {}",
            joined.kubelet_kubeconfig.display()
        ),
        format!(
            "  kube-proxy:       {}",
            joined.kube_proxy_kubeconfig.display()
        ),
        format!(
            "  controllers:      {}",
            joined.controller_kubeconfig.display()
        ),
    ]
    .join("\n")
}

/// Keep the load balancer's server list current with `/v1-k3rs/apiservers`.
async fn follow_servers(supervisor: Supervisor, load_balancer: LoadBalancer, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(SERVER_LIST_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let answer = match supervisor.get("/v1-k3rs/apiservers").await {
            Ok(body) => body,
            Err(Stop::Retry(err) | Stop::Fatal(err)) => {
                tracing::debug!(error = %err, "asking for the API server list");
                continue;
            }
        };
        match serde_json::from_slice::<Vec<String>>(&answer) {
            Ok(servers) if !servers.is_empty() => load_balancer.update_servers(servers),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "GET /v1-k3rs/apiservers: unexpected answer"),
        }
    }
}

/// Join the cluster of `settings.server` and run this node until `shutdown`, or until a
/// component that the node cannot do without stops (it triggers `shutdown` itself).
pub async fn run(settings: JoinSettings, shutdown: Shutdown) -> Result<()> {
    let joined = tokio::select! {
        joined = join(&settings, shutdown.token()) => joined?,
        _ = shutdown.cancelled() => return Ok(()),
    };
    let identity = whoami(&joined).await?;
    check_serving(&joined)?;
    tracing::info!("{}", summary(&joined, &identity));
    k3rs_core::task::spawn(follow_servers(
        joined.supervisor.clone(),
        joined.load_balancer.clone(),
        shutdown.clone(),
    ));
    // The server decides the cluster's overlay; the local flag only applies to servers.
    let node = NodeCredentials {
        node_name: joined.node_name.clone(),
        node_ips: joined.node_ips.clone(),
        data_dir: settings.data_dir.clone(),
        cluster: joined.cluster.clone(),
        client: joined.client.clone(),
        serving_cert_pem: joined.serving_cert_pem.clone(),
        serving_key_pem: joined.serving_key_pem.clone(),
        client_ca_pem: joined.client_ca_pem.clone(),
        control_plane: false,
        backend: joined.flannel_backend,
    };
    let agent = crate::node::start(&settings.agent, node, shutdown.clone())?;
    shutdown.cancelled().await;
    // The kubelet stops containerd (never the containers) on the way out.
    if tokio::time::timeout(std::time::Duration::from_secs(10), agent)
        .await
        .is_err()
    {
        tracing::warn!("agent did not stop in time");
    }
    tracing::info!("k3rs agent stopped");
    Ok(())
}
