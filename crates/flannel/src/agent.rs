//! The overlay's loop: watch Nodes, keep this node's flannel annotations and
//! `subnet.env` current, and make the kernel match the desired state on every relevant
//! Node change, on every change to `flannel.1` or the flannel interface, and every 30
//! seconds regardless (a hand-deleted route comes back within one period).

use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt;
use ipnet::{IpNet, Ipv4Net};
use k3rs_core::Shutdown;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use tracing::{debug, info, warn, Instrument};

use crate::dataplane::Dataplane;
use crate::desired::{desired_state, DesiredState, LocalNode, Underlay, VTEP_DEVICE};
use crate::mac::MacAddress;
use crate::{
    annotations, cni_mtu, ethtool, mac, nftables, peers, subnet_env, Backend, Config, Error, Result,
};

/// The periodic full pass.
const RESYNC_PERIOD: Duration = Duration::from_secs(30);
/// How soon a failed pass is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Run the overlay of this node until `shutdown`. With backend `none` there is nothing
/// to run (as in k3s, which then starts no flannel at all) and it returns at once.
///
/// Errors in the settings (an interface that does not exist, host-gw peers off the L2
/// segment, `--flannel-external-ip` without an ExternalIP) end it on the first pass;
/// later failures are logged and retried.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<()> {
    if config.backend == Backend::None {
        info!(node = %config.node_name, "flannel backend none: no overlay on this node");
        return Ok(());
    }
    let span = tracing::info_span!("flannel", node = %config.node_name, backend = %config.backend);
    run_overlay(config, shutdown).instrument(span).await
}

/// The cluster CIDR as the IPv4 network the backends work on.
fn ipv4_cluster_cidr(cidr: &IpNet) -> Result<Ipv4Net> {
    match cidr {
        IpNet::V4(v4) => Ok(v4.trunc()),
        IpNet::V6(_) => Err(Error::Config(format!(
            "--cluster-cidr {cidr}: the flannel backends need an IPv4 cluster CIDR"
        ))),
    }
}

/// What the loop remembers between passes.
struct Overlay {
    config: Config,
    cluster_cidr: Ipv4Net,
    vtep_mac: MacAddress,
    nodes: Api<Node>,
    store: Store<Node>,
    dataplane: Dataplane,
    underlay: Option<Underlay>,
    applied: Option<DesiredState>,
    ruleset: Option<String>,
    problems: Vec<String>,
    first_pass_done: bool,
    waiting_for: Option<&'static str>,
}

async fn run_overlay(config: Config, shutdown: Shutdown) -> Result<()> {
    let cluster_cidr = ipv4_cluster_cidr(&config.cluster_cidr)?;
    let vtep_mac = mac::load_or_create(&config.vtep_mac_path, &config.node_name)?;
    let dataplane = Dataplane::connect(config.netns.clone()).await?;
    let mut link_events = dataplane.link_events().await?;
    let nodes: Api<Node> = Api::all(config.client.clone());
    let (store, writer) = reflector::store();
    let mut node_events =
        reflector::reflector(writer, watcher(nodes.clone(), watcher::Config::default()))
            .default_backoff()
            .boxed();
    let mut resync = tokio::time::interval(RESYNC_PERIOD);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let mut overlay = Overlay {
        config,
        cluster_cidr,
        vtep_mac,
        nodes,
        store,
        dataplane,
        underlay: None,
        applied: None,
        ruleset: None,
        problems: Vec::new(),
        first_pass_done: false,
        waiting_for: None,
    };
    let mut listed = false;
    loop {
        let force = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            event = node_events.next() => match event {
                None => return Err(Error::Config("the Node watch ended".into())),
                Some(Err(err)) => {
                    warn!(error = %err, "watching Nodes");
                    continue;
                }
                Some(Ok(watcher::Event::InitDone)) => {
                    listed = true;
                    false
                }
                Some(Ok(_)) if !listed => continue,
                Some(Ok(_)) => false,
            },
            change = link_events.next() => match change {
                None => return Err(Error::Config("the link change subscription ended".into())),
                Some(change) if overlay.concerns(&change) => {
                    debug!(?change, "link change");
                    true
                }
                Some(_) => continue,
            },
            _ = resync.tick() => true,
        };
        if !listed {
            continue;
        }
        match overlay.pass(force).await {
            Ok(()) => {}
            Err(err @ (Error::Config(_) | Error::HostGw(_))) if !overlay.first_pass_done => {
                return Err(err)
            }
            Err(err) => {
                warn!(error = %err, "overlay pass failed; retrying");
                overlay.underlay = None;
                resync.reset_after(RETRY_AFTER);
            }
        }
    }
}

impl Overlay {
    /// Whether a link change may need a pass: anything about `flannel.1` or the
    /// flannel interface (pods' veths come and go without one).
    fn concerns(&self, change: &crate::dataplane::LinkChange) -> bool {
        change.name.as_deref() == Some(VTEP_DEVICE)
            || self
                .underlay
                .as_ref()
                .is_some_and(|u| u.index == change.index)
    }

    fn wait(&mut self, what: &'static str) {
        if self.waiting_for != Some(what) {
            info!("waiting for {what}");
            self.waiting_for = Some(what);
        }
    }

    /// One pass. Without `force`, the kernel is only touched when the desired state
    /// changed since the last pass (Node heartbeats arrive every few seconds).
    async fn pass(&mut self, force: bool) -> Result<()> {
        let own_ref = ObjectRef::<Node>::new(&self.config.node_name);
        let Some(own) = self.store.get(&own_ref) else {
            self.wait("this node to be registered");
            return Ok(());
        };
        let Some(subnet) = peers::pod_subnet(&own) else {
            self.wait("this node's spec.podCIDR");
            return Ok(());
        };
        self.waiting_for = None;
        if !self.cluster_cidr.contains(&subnet) {
            return Err(Error::Config(format!(
                "node {} has podCIDR {subnet}, outside --cluster-cidr {}",
                self.config.node_name, self.cluster_cidr
            )));
        }
        let underlay = match (&self.underlay, force) {
            (Some(underlay), false) => underlay.clone(),
            _ => {
                let underlay = self
                    .dataplane
                    .underlay(self.config.iface.as_deref(), self.config.node_ip)
                    .await?;
                self.underlay = Some(underlay.clone());
                underlay
            }
        };

        let public_ip =
            annotations::own_public_ip(&own, self.config.external_ip, underlay.address)?;
        self.announce(&own, public_ip).await?;

        let mtu = cni_mtu(self.config.backend, underlay.mtu);
        let env =
            subnet_env::render_subnet_env(&self.cluster_cidr, &subnet, mtu, self.config.ip_masq);
        if subnet_env::write_if_changed(&self.config.subnet_env_path, &env)? {
            info!(path = %self.config.subnet_env_path.display(), %subnet, mtu, "wrote subnet.env");
        }

        let local = LocalNode {
            name: self.config.node_name.clone(),
            backend: self.config.backend,
            subnet,
            cluster_cidr: self.cluster_cidr,
            vtep_mac: self.vtep_mac,
            underlay: underlay.clone(),
        };
        let nodes = self.store.state();
        let peers = peers::peers(
            nodes.iter().map(|n| n.as_ref()),
            &self.config.node_name,
            &self.cluster_cidr,
        );
        let (desired, problems) = desired_state(&local, &peers);
        let problems: Vec<String> = problems.into_iter().map(|p| p.reason).collect();
        if !problems.is_empty() && !self.first_pass_done {
            return Err(Error::HostGw(problems.join("; ")));
        }
        if problems != self.problems {
            for problem in &problems {
                warn!("--flannel-backend host-gw: {problem}");
            }
            self.problems = problems;
        }

        if force || self.applied.as_ref() != Some(&desired) {
            let applied = self.dataplane.apply(&desired).await?;
            if applied.changed_anything() {
                info!(
                    peers = peers.len(),
                    routes = desired.routes.len(),
                    routes_added = applied.routes_added,
                    routes_removed = applied.routes_removed,
                    neighbours_added = applied.neighbours_added,
                    neighbours_removed = applied.neighbours_removed,
                    fdb_added = applied.fdb_added,
                    fdb_removed = applied.fdb_removed,
                    vtep_created = applied.vtep_created,
                    "overlay updated"
                );
            }
            if self.config.tx_checksum_offload_off
                && desired.vtep.is_some()
                && (applied.vtep_created || !self.first_pass_done)
            {
                ethtool::disable_tx_checksum_offload(VTEP_DEVICE, self.config.netns.clone())
                    .await?;
                info!(device = VTEP_DEVICE, "turned off tx-checksum-ip-generic");
            }
            self.applied = Some(desired);
        }

        let ruleset = nftables::render_ruleset(&self.cluster_cidr, &subnet, self.config.ip_masq);
        if force || self.ruleset.as_ref() != Some(&ruleset) {
            nftables::apply_ruleset(ruleset.clone(), self.config.netns.clone()).await?;
            self.ruleset = Some(ruleset);
        }
        if !self.first_pass_done {
            info!(%subnet, public_ip = %public_ip, iface = %underlay.name, mtu, "overlay up");
        }
        self.first_pass_done = true;
        Ok(())
    }

    /// Patch this node's flannel annotations when they differ from what they should be.
    async fn announce(&self, own: &Node, public_ip: Ipv4Addr) -> Result<()> {
        let desired = annotations::own_annotations(self.config.backend, self.vtep_mac, public_ip);
        let current = own
            .metadata
            .annotations
            .as_ref()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        if let Some(patch) = annotations::annotation_patch(current.as_ref(), &desired) {
            self.nodes
                .patch(
                    &self.config.node_name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(|e| Error::api(format!("annotating node {}", self.config.node_name), e))?;
            info!(%public_ip, "announced this node's flannel annotations");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_cidr_must_be_ipv4() {
        assert_eq!(
            ipv4_cluster_cidr(&"10.42.0.0/16".parse().unwrap())
                .unwrap()
                .to_string(),
            "10.42.0.0/16"
        );
        let err = ipv4_cluster_cidr(&"fd00:42::/56".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--cluster-cidr fd00:42::/56"), "{err}");
    }
}
