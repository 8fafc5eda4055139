//! Node IPAM: gives every Node a pod CIDR (`spec.podCIDR` / `spec.podCIDRs`) carved out of
//! the cluster CIDR, as upstream's range allocator does under k3s (a /24 per node for
//! IPv4, a /64 for IPv6).
//!
//! The allocation lives in the Node objects themselves; the in-memory allocator is rebuilt
//! from them at the start of each leadership term: every CIDR already written in a node
//! is marked used before anything new is handed out, so a restart never gives a CIDR
//! twice. A CIDR returns to the pool when its node is deleted, and the lowest free one is
//! handed out first. This module owns nothing else on the Node.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::context::Recorder;
use futures::StreamExt;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::context::{publish, Context};
use crate::error::is_not_found;
use crate::{Error, Result};

/// Prefix length of each node's range (k3s's `--node-cidr-mask-size` defaults).
const IPV4_NODE_MASK: u8 = 24;
const IPV6_NODE_MASK: u8 = 64;
/// How often nodes still waiting for a CIDR are retried, and deletions the shared
/// informer could not report (a relist after a broken watch) are noticed.
const RESYNC: Duration = Duration::from_secs(5);

/// The cluster CIDR cut into equal node ranges, numbered from 0, with the used ones marked.
#[derive(Debug)]
pub struct CidrAllocator {
    cluster: IpNet,
    node_prefix: u8,
    count: u128,
    used: BTreeSet<u128>,
}

impl CidrAllocator {
    /// Node ranges of `node_prefix` bits inside `cluster`; a cluster smaller than one
    /// node range is handed out whole.
    pub fn new(cluster: IpNet, node_prefix: u8) -> Self {
        let cluster = cluster.trunc();
        let node_prefix = node_prefix.clamp(cluster.prefix_len(), cluster.max_prefix_len());
        let bits = u32::from(node_prefix - cluster.prefix_len());
        CidrAllocator {
            cluster,
            node_prefix,
            count: 1u128.checked_shl(bits).unwrap_or(u128::MAX),
            used: BTreeSet::new(),
        }
    }

    /// The default node prefix for the family of `cluster`.
    pub fn for_cluster(cluster: IpNet) -> Self {
        let prefix = match cluster {
            IpNet::V4(_) => IPV4_NODE_MASK,
            IpNet::V6(_) => IPV6_NODE_MASK,
        };
        Self::new(cluster, prefix)
    }

    fn host_bits(&self) -> u32 {
        u32::from(self.cluster.max_prefix_len() - self.node_prefix)
    }

    fn base(&self) -> u128 {
        address_bits(&self.cluster.network())
    }

    fn subnet(&self, index: u128) -> IpNet {
        let addr = self.base() + (index << self.host_bits());
        match self.cluster {
            IpNet::V4(_) => IpNet::V4(
                Ipv4Net::new((addr as u32).into(), self.node_prefix).expect("prefix within /32"),
            ),
            IpNet::V6(_) => {
                IpNet::V6(Ipv6Net::new(addr.into(), self.node_prefix).expect("prefix within /128"))
            }
        }
    }

    /// The node ranges `cidr` overlaps, as an inclusive index range; None when it lies
    /// outside the cluster CIDR (or is of the other family).
    fn indices(&self, cidr: &IpNet) -> Option<(u128, u128)> {
        let cidr = cidr.trunc();
        let same_family = matches!(
            (cidr, self.cluster),
            (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
        );
        if !same_family
            || !(self.cluster.contains(&cidr.network()) || cidr.contains(&self.cluster.network()))
        {
            return None;
        }
        let base = self.base();
        let first = address_bits(&cidr.network()).max(base);
        let last = address_bits(&cidr.broadcast()).min(address_bits(&self.cluster.broadcast()));
        Some((
            (first - base) >> self.host_bits(),
            (last - base) >> self.host_bits(),
        ))
    }

    /// Mark `cidr` (normally one node range) used; false if it is outside the cluster CIDR.
    pub fn occupy(&mut self, cidr: &IpNet) -> bool {
        let Some((first, last)) = self.indices(cidr) else {
            return false;
        };
        let mut i = first;
        loop {
            self.used.insert(i);
            if i == last {
                return true;
            }
            i += 1;
        }
    }

    /// Return `cidr` to the pool.
    pub fn release(&mut self, cidr: &IpNet) {
        if let Some((first, last)) = self.indices(cidr) {
            self.used.retain(|i| *i < first || *i > last);
        }
    }

    /// The lowest free node range, now marked used; None when the cluster CIDR is full.
    pub fn allocate(&mut self) -> Option<IpNet> {
        // `used` is sorted, so the first gap in it is the lowest free index.
        let mut candidate = 0u128;
        for used in &self.used {
            if *used != candidate {
                break;
            }
            candidate += 1;
        }
        if candidate >= self.count {
            return None;
        }
        self.used.insert(candidate);
        Some(self.subnet(candidate))
    }
}

fn address_bits(addr: &std::net::IpAddr) -> u128 {
    match addr {
        std::net::IpAddr::V4(v4) => u128::from(u32::from(*v4)),
        std::net::IpAddr::V6(v6) => u128::from(*v6),
    }
}

/// What the controller knows about one node's CIDR when it looks at it.
#[derive(Clone, Debug, PartialEq)]
pub enum Observed {
    /// The node no longer exists.
    Gone,
    /// The node's spec already carries this CIDR.
    Assigned(IpNet),
    /// The node has no CIDR yet.
    Unassigned,
}

/// What to do about a node.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Nothing,
    /// Write this CIDR into the node's spec.
    Assign(IpNet),
    /// The node needs a CIDR and none is left.
    Exhausted,
}

/// The allocator plus which node holds which CIDR, so deletions release the right range.
#[derive(Debug)]
pub struct NodeCidrs {
    allocator: CidrAllocator,
    by_node: HashMap<String, IpNet>,
}

impl NodeCidrs {
    pub fn new(allocator: CidrAllocator) -> Self {
        NodeCidrs {
            allocator,
            by_node: HashMap::new(),
        }
    }

    /// Update the books for `node` and say what it needs.
    pub fn observe(&mut self, node: &str, observed: Observed) -> Decision {
        match observed {
            Observed::Gone => {
                self.forget(node);
                Decision::Nothing
            }
            Observed::Assigned(cidr) => {
                if self.by_node.get(node) != Some(&cidr) {
                    self.forget(node);
                    if !self.allocator.occupy(&cidr) {
                        warn!(node, %cidr, "node's pod CIDR is outside the cluster CIDR");
                    }
                    self.by_node.insert(node.to_string(), cidr);
                }
                Decision::Nothing
            }
            // Already allocated but not yet visible in the node (a write in flight, a
            // failed write being retried, or a node recreated under the same name).
            Observed::Unassigned => match self.by_node.get(node) {
                Some(cidr) => Decision::Assign(*cidr),
                None => match self.allocator.allocate() {
                    Some(cidr) => {
                        self.by_node.insert(node.to_string(), cidr);
                        Decision::Assign(cidr)
                    }
                    None => Decision::Exhausted,
                },
            },
        }
    }

    /// Drop `node`'s allocation (the node is gone, or writing the CIDR failed).
    pub fn forget(&mut self, node: &str) {
        if let Some(cidr) = self.by_node.remove(node) {
            // Two nodes created by hand with the same CIDR must not free it for a third.
            if !self.by_node.values().any(|other| *other == cidr) {
                self.allocator.release(&cidr);
            }
        }
    }

    /// Nodes this allocator has books for.
    pub fn nodes(&self) -> Vec<String> {
        self.by_node.keys().cloned().collect()
    }
}

/// The node's current pod CIDR as written in its spec.
fn observed(node: Option<&Node>) -> Observed {
    let Some(node) = node else {
        return Observed::Gone;
    };
    let spec = node.spec.as_ref();
    let cidr = spec
        .and_then(|s| s.pod_cidr.as_deref())
        .or_else(|| spec.and_then(|s| s.pod_cidrs.as_ref()?.first().map(String::as_str)));
    match cidr.map(str::parse::<IpNet>) {
        Some(Ok(cidr)) => Observed::Assigned(cidr),
        Some(Err(_)) => {
            warn!(node = ?node.metadata.name, cidr = ?cidr, "node has an unparsable pod CIDR");
            // Nothing can be allocated over a value the API already holds.
            Observed::Gone
        }
        None => Observed::Unassigned,
    }
}

struct Ipam {
    ctx: Arc<Context>,
    store: Store<Node>,
    recorder: Recorder,
    cidrs: NodeCidrs,
    /// Nodes that still need a CIDR (none was free, or writing it failed).
    waiting: HashSet<String>,
    /// Nodes already told that no CIDR is left, so the event is not repeated each retry.
    told_exhausted: HashSet<String>,
    /// CIDRs written but not yet seen in the shared store, so that events older than the
    /// write do not cause it again.
    written: HashMap<String, IpNet>,
}

impl Ipam {
    fn current(&self, name: &str) -> Option<Arc<Node>> {
        self.store.get(&ObjectRef::new(name))
    }

    /// Bring one node in line, from its latest state in the shared store (which is never
    /// older than the event that led here).
    async fn sync(&mut self, name: &str) {
        let node = self.current(name);
        match self.cidrs.observe(name, observed(node.as_deref())) {
            Decision::Nothing => {
                self.waiting.remove(name);
                self.told_exhausted.remove(name);
                self.written.remove(name);
            }
            Decision::Assign(cidr) if self.written.get(name) == Some(&cidr) => {}
            Decision::Assign(cidr) => {
                let Some(node) = node else { return };
                self.assign(&node, name, cidr).await;
            }
            Decision::Exhausted => {
                self.waiting.insert(name.to_string());
                if let Some(node) = node {
                    if self.told_exhausted.insert(name.to_string()) {
                        warn!(node = name, "no pod CIDR left in the cluster CIDR");
                        self.status_event(&node, "CIDRNotAvailable").await;
                    }
                }
            }
        }
    }

    async fn assign(&mut self, node: &Node, name: &str, cidr: IpNet) {
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        let patch = json!({"spec": {"podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()]}});
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                info!(node = name, %cidr, "assigned pod CIDR");
                self.written.insert(name.to_string(), cidr);
                self.waiting.remove(name);
                self.told_exhausted.remove(name);
            }
            Err(err) if is_not_found(&err) => {
                self.cidrs.forget(name);
                self.waiting.remove(name);
            }
            Err(err) => {
                warn!(node = name, %cidr, error = %err, "writing the pod CIDR failed; retrying");
                // Released, so that a node that can never be written does not hold a range.
                self.cidrs.forget(name);
                self.waiting.insert(name.to_string());
                self.status_event(node, "CIDRAssignmentFailed").await;
            }
        }
    }

    /// Upstream's RecordNodeStatusChange: "Node n1 status is now: <status>".
    async fn status_event(&self, node: &Node, status: &str) {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        publish(
            &self.recorder,
            &node.object_ref(&()),
            false,
            status,
            "AllocatePodCIDR",
            format!("Node {name} status is now: {status}"),
        )
        .await;
    }

    /// Retry waiting nodes and release nodes whose deletion no event reported.
    async fn resync(&mut self) {
        for name in self.cidrs.nodes() {
            if self.current(&name).is_none() {
                self.cidrs.forget(&name);
                self.written.remove(&name);
            }
        }
        // A write the store still does not show after a whole period is looked at again
        // (a node deleted and recreated under the same name while the watch was down).
        let unconfirmed: Vec<String> = self.written.keys().cloned().collect();
        for name in unconfirmed {
            let node = self.current(&name);
            if observed(node.as_deref()) == Observed::Unassigned {
                self.written.remove(&name);
                self.waiting.insert(name);
            }
        }
        let mut waiting: Vec<String> = self.waiting.iter().cloned().collect();
        // By name, so that retries hand out ranges in a predictable order.
        waiting.sort();
        for name in waiting {
            self.sync(&name).await;
        }
    }
}

pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let store = ctx.nodes.store();
    let mut ipam = Ipam {
        recorder: ctx.recorder("cidrAllocator"),
        cidrs: NodeCidrs::new(CidrAllocator::for_cluster(ctx.cluster.cluster_cidr)),
        store: store.clone(),
        ctx: ctx.clone(),
        waiting: HashSet::new(),
        told_exhausted: HashSet::new(),
        written: HashMap::new(),
    };
    let mut existing = store.state();
    existing.sort_by(|a, b| {
        let key = |n: &Node| {
            (
                n.metadata.creation_timestamp.clone(),
                n.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    // Every CIDR already written is taken before anything is handed out; then the nodes
    // waiting for one get them oldest first.
    for node in &existing {
        if let (Some(name), found @ Observed::Assigned(_)) =
            (node.metadata.name.as_deref(), observed(Some(node)))
        {
            ipam.cidrs.observe(name, found);
        }
    }
    for node in &existing {
        if let Some(name) = node.metadata.name.as_deref() {
            ipam.sync(name).await;
        }
    }
    let mut events = std::pin::pin!(ctx.nodes.subscribe());
    let mut resync = tokio::time::interval(RESYNC);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(node)) => {
                    if let Some(name) = node.metadata.name.as_deref() {
                        ipam.sync(name).await;
                    }
                }
                Some(Err(err)) => debug!(error = %err, "node stream error"),
                None => return Err(Error::Invalid("the node informer stopped".into())),
            },
            _ = resync.tick() => ipam.resync().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn books() -> NodeCidrs {
        NodeCidrs::new(CidrAllocator::for_cluster(net("10.42.0.0/16")))
    }

    #[test]
    fn hands_out_lowest_free_24s_in_order() {
        let mut a = CidrAllocator::for_cluster(net("10.42.0.0/16"));
        assert_eq!(a.allocate(), Some(net("10.42.0.0/24")));
        assert_eq!(a.allocate(), Some(net("10.42.1.0/24")));
        assert_eq!(a.allocate(), Some(net("10.42.2.0/24")));
        a.release(&net("10.42.1.0/24"));
        assert_eq!(a.allocate(), Some(net("10.42.1.0/24")));
        assert_eq!(a.allocate(), Some(net("10.42.3.0/24")));
    }

    #[test]
    fn occupied_ranges_are_skipped_and_outsiders_refused() {
        let mut a = CidrAllocator::for_cluster(net("10.42.0.0/16"));
        assert!(a.occupy(&net("10.42.0.0/24")));
        assert!(a.occupy(&net("10.42.2.0/24")));
        assert!(!a.occupy(&net("10.99.0.0/24")));
        assert!(!a.occupy(&net("fd00::/64")));
        assert_eq!(a.allocate(), Some(net("10.42.1.0/24")));
        assert_eq!(a.allocate(), Some(net("10.42.3.0/24")));
        // A larger range covers every /24 inside it.
        assert!(a.occupy(&net("10.42.4.0/23")));
        assert_eq!(a.allocate(), Some(net("10.42.6.0/24")));
    }

    #[test]
    fn exhaustion_and_small_clusters() {
        let mut a = CidrAllocator::for_cluster(net("10.42.0.0/23"));
        assert_eq!(a.allocate(), Some(net("10.42.0.0/24")));
        assert_eq!(a.allocate(), Some(net("10.42.1.0/24")));
        assert_eq!(a.allocate(), None);
        let mut tiny = CidrAllocator::for_cluster(net("10.42.0.0/26"));
        assert_eq!(tiny.allocate(), Some(net("10.42.0.0/26")));
        assert_eq!(tiny.allocate(), None);
    }

    #[test]
    fn ipv6_gets_64s() {
        let mut a = CidrAllocator::for_cluster(net("fd00:42::/56"));
        assert_eq!(a.allocate(), Some(net("fd00:42::/64")));
        assert_eq!(a.allocate(), Some(net("fd00:42:0:1::/64")));
    }

    #[test]
    fn existing_cidrs_are_honoured_and_released_on_deletion() {
        let mut b = books();
        assert_eq!(
            b.observe("a", Observed::Assigned(net("10.42.1.0/24"))),
            Decision::Nothing
        );
        assert_eq!(
            b.observe("b", Observed::Unassigned),
            Decision::Assign(net("10.42.0.0/24"))
        );
        assert_eq!(
            b.observe("c", Observed::Unassigned),
            Decision::Assign(net("10.42.2.0/24"))
        );
        // The write shows up in the node: nothing more to do.
        assert_eq!(
            b.observe("b", Observed::Assigned(net("10.42.0.0/24"))),
            Decision::Nothing
        );
        b.observe("a", Observed::Gone);
        assert_eq!(
            b.observe("d", Observed::Unassigned),
            Decision::Assign(net("10.42.1.0/24"))
        );
    }

    #[test]
    fn a_pending_allocation_is_repeated_not_duplicated() {
        let mut b = books();
        let first = b.observe("a", Observed::Unassigned);
        assert_eq!(first, Decision::Assign(net("10.42.0.0/24")));
        // A stale event before the write is visible asks for the same range again.
        assert_eq!(b.observe("a", Observed::Unassigned), first);
        // A failed write gives the range back.
        b.forget("a");
        assert_eq!(
            b.observe("z", Observed::Unassigned),
            Decision::Assign(net("10.42.0.0/24"))
        );
    }

    #[test]
    fn a_shared_cidr_stays_used_until_its_last_holder_goes() {
        let mut b = books();
        b.observe("a", Observed::Assigned(net("10.42.0.0/24")));
        b.observe("b", Observed::Assigned(net("10.42.0.0/24")));
        b.observe("a", Observed::Gone);
        assert_eq!(
            b.observe("c", Observed::Unassigned),
            Decision::Assign(net("10.42.1.0/24"))
        );
    }

    #[test]
    fn exhausted_books_say_so() {
        let mut b = NodeCidrs::new(CidrAllocator::for_cluster(net("10.42.0.0/24")));
        b.observe("a", Observed::Unassigned);
        assert_eq!(b.observe("b", Observed::Unassigned), Decision::Exhausted);
        b.observe("a", Observed::Gone);
        assert_eq!(
            b.observe("b", Observed::Unassigned),
            Decision::Assign(net("10.42.0.0/24"))
        );
    }

    #[test]
    fn reads_the_cidr_from_the_node() {
        let node: Node = serde_json::from_value(
            json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.42.3.0/24"}}),
        )
        .unwrap();
        assert_eq!(
            observed(Some(&node)),
            Observed::Assigned(net("10.42.3.0/24"))
        );
        let bare: Node = serde_json::from_value(json!({"metadata": {"name": "n"}})).unwrap();
        assert_eq!(observed(Some(&bare)), Observed::Unassigned);
        assert_eq!(observed(None), Observed::Gone);
    }
}
