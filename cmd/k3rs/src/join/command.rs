//! `k3rs agent`: join, check the node's credentials, then run the node agent (overlay
//! and kubelet) until SIGTERM/SIGINT.

use anyhow::{Context, Result};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::PostParams;

use super::{join, Joined, Settings, Stop, Supervisor};
use crate::loadbalancer::LoadBalancer;

/// How often the agent asks for the cluster's API servers. k3s agents watch the
/// `kubernetes` Endpoints; servers come and go rarely, so polling is enough.
const SERVER_LIST_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

/// Resolve when the process receives SIGTERM or SIGINT.
async fn termination_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
    }
    Ok(())
}

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
async fn follow_servers(
    supervisor: Supervisor,
    load_balancer: LoadBalancer,
    shutdown: k3rs_core::Shutdown,
) {
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

pub async fn run(settings: Settings) -> Result<()> {
    let shutdown = k3rs_core::Shutdown::new();
    let joined = tokio::select! {
        joined = join(&settings, shutdown.token()) => joined?,
        signal = termination_signal() => return signal,
    };
    let identity = whoami(&joined).await?;
    check_serving(&joined)?;
    tracing::info!("{}", summary(&joined, &identity));
    tokio::spawn(follow_servers(
        joined.supervisor.clone(),
        joined.load_balancer.clone(),
        shutdown.clone(),
    ));
    // The server decides the cluster's overlay; the local flag only applies to servers.
    let backend: k3rs_flannel::Backend = joined.flannel_backend.parse()?;
    let node = crate::agent::NodeIdentity {
        node_name: joined.node_name.clone(),
        node_ips: joined.node_ips.clone(),
        data_dir: settings.data_dir.clone(),
        cluster: joined.cluster.clone(),
        client: joined.client.clone(),
        serving_cert_pem: joined.serving_cert_pem.clone(),
        serving_key_pem: joined.serving_key_pem.clone(),
        client_ca_pem: joined.client_ca_pem.clone(),
        control_plane: false,
        backend,
    };
    let agent = crate::agent::start(&settings.agent, node, shutdown.clone())?;
    tokio::select! {
        signal = termination_signal() => signal?,
        _ = shutdown.cancelled() => {}
    }
    shutdown.trigger();
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
