//! The kernel state this node should have, computed from its own settings and the peers
//! it sees: the VTEP device, one route, neighbour and FDB entry per VXLAN peer, one route
//! per host-gw peer. Pure functions only; [`crate::dataplane`] makes the kernel match.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::annotations::VNI;
use crate::mac::MacAddress;
use crate::peers::Peer;
use crate::{cni_mtu, Backend};

/// The VTEP device, named as flannel names it for VNI 1.
pub const VTEP_DEVICE: &str = "flannel.1";
/// The UDP port of flannel's VXLAN backend (the Linux default, not IANA's 4789).
pub const VXLAN_PORT: u16 = 8472;

/// The interface pod traffic leaves the node by (`--flannel-iface`, or the one holding
/// the node IP), as read from the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Underlay {
    pub name: String,
    pub index: u32,
    pub mtu: u32,
    /// The source of VXLAN packets: the node IP when it is on this interface.
    pub address: Ipv4Addr,
    /// Every IPv4 network directly connected through this interface.
    pub networks: Vec<Ipv4Net>,
}

/// This node, as the overlay sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalNode {
    pub name: String,
    pub backend: Backend,
    pub subnet: Ipv4Net,
    pub cluster_cidr: Ipv4Net,
    pub vtep_mac: MacAddress,
    pub underlay: Underlay,
}

/// The VXLAN device to have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VxlanLink {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    pub local: Ipv4Addr,
    pub underlay_index: u32,
    pub mtu: u32,
    pub mac: MacAddress,
    /// `10.42.X.0/32`: the network address of the node's subnet, so peers' routes
    /// `via 10.42.X.0` land on this device.
    pub address: Ipv4Net,
}

/// A route in the main table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    pub destination: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub device: String,
    /// The gateway is reachable on the device though no connected network holds it
    /// (VXLAN: `10.42.Y.0` is only on the peer's `flannel.1`).
    pub onlink: bool,
}

/// A permanent ARP entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Neighbour {
    pub address: Ipv4Addr,
    pub mac: MacAddress,
    pub device: String,
}

/// A permanent forwarding-database entry of the VXLAN device: frames for `mac` go in
/// UDP to `destination`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FdbEntry {
    pub mac: MacAddress,
    pub destination: Ipv4Addr,
    pub device: String,
}

/// Everything the applier makes true, and the bounds of what it owns: routes into the
/// cluster CIDR through [`VTEP_DEVICE`] or the underlay, and all neighbour and FDB
/// entries of [`VTEP_DEVICE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredState {
    pub cluster_cidr: Ipv4Net,
    pub underlay: String,
    /// `None` with host-gw: a `flannel.1` left from an earlier vxlan run is removed.
    pub vtep: Option<VxlanLink>,
    pub routes: BTreeSet<Route>,
    pub neighbours: BTreeSet<Neighbour>,
    pub fdb: BTreeSet<FdbEntry>,
}

/// A peer the backend cannot serve; reported, and left without routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub node: String,
    pub reason: String,
}

/// The VXLAN device of a vxlan node: VNI 1 on UDP 8472, sourced from the underlay
/// address, its MTU leaving room for the encapsulation.
pub fn desired_links(local: &LocalNode) -> Vec<VxlanLink> {
    if local.backend != Backend::Vxlan {
        return Vec::new();
    }
    vec![VxlanLink {
        name: VTEP_DEVICE.to_string(),
        vni: VNI,
        port: VXLAN_PORT,
        local: local.underlay.address,
        underlay_index: local.underlay.index,
        mtu: cni_mtu(Backend::Vxlan, local.underlay.mtu),
        mac: local.vtep_mac,
        address: Ipv4Net::new(local.subnet.network(), 32).expect("32 is a valid prefix"),
    }]
}

/// The peers this node routes to with its own backend: same backend, a subnet of
/// their own, and (vxlan) a VTEP MAC.
fn served<'a>(local: &'a LocalNode, peers: &'a [Peer]) -> impl Iterator<Item = &'a Peer> + 'a {
    peers.iter().filter(move |p| {
        p.name != local.name
            && p.backend == local.backend
            && p.subnet != local.subnet
            && local.cluster_cidr.contains(&p.subnet)
            && (local.backend != Backend::Vxlan || p.vtep_mac.is_some())
    })
}

/// Whether `ip` is on a network directly connected through the underlay, as host-gw's
/// next hops must be.
fn on_link(underlay: &Underlay, ip: Ipv4Addr) -> bool {
    underlay.networks.iter().any(|net| net.contains(&ip))
}

/// One route per served peer: vxlan `10.42.Y.0/24 via 10.42.Y.0 dev flannel.1 onlink`,
/// host-gw `10.42.Y.0/24 via <public IP> dev <underlay>`. host-gw peers whose public IP
/// is not on a connected network of the underlay come back as problems.
pub fn desired_routes(local: &LocalNode, peers: &[Peer]) -> (BTreeSet<Route>, Vec<Problem>) {
    let mut routes = BTreeSet::new();
    let mut problems = Vec::new();
    for peer in served(local, peers) {
        match local.backend {
            Backend::Vxlan => {
                routes.insert(Route {
                    destination: peer.subnet,
                    gateway: peer.subnet.network(),
                    device: VTEP_DEVICE.to_string(),
                    onlink: true,
                });
            }
            Backend::HostGw if on_link(&local.underlay, peer.public_ip) => {
                routes.insert(Route {
                    destination: peer.subnet,
                    gateway: peer.public_ip,
                    device: local.underlay.name.clone(),
                    onlink: false,
                });
            }
            Backend::HostGw => problems.push(Problem {
                node: peer.name.clone(),
                reason: format!(
                    "node {} has public IP {}, which is not on a network directly connected to {} ({}): host-gw needs all nodes on one L2 segment (use vxlan)",
                    peer.name,
                    peer.public_ip,
                    local.underlay.name,
                    local
                        .underlay
                        .networks
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
            Backend::None => {}
        }
    }
    (routes, problems)
}

/// One permanent ARP entry per vxlan peer: its `10.42.Y.0` is its VTEP MAC, so the
/// kernel never broadcasts ARP into the overlay (the device does not learn).
pub fn desired_neighbours(local: &LocalNode, peers: &[Peer]) -> BTreeSet<Neighbour> {
    if local.backend != Backend::Vxlan {
        return BTreeSet::new();
    }
    served(local, peers)
        .filter_map(|p| {
            Some(Neighbour {
                address: p.subnet.network(),
                mac: p.vtep_mac?,
                device: VTEP_DEVICE.to_string(),
            })
        })
        .collect()
}

/// One permanent FDB entry per vxlan peer: frames for its VTEP MAC go to its public IP.
pub fn desired_fdb(local: &LocalNode, peers: &[Peer]) -> BTreeSet<FdbEntry> {
    if local.backend != Backend::Vxlan {
        return BTreeSet::new();
    }
    served(local, peers)
        .filter_map(|p| {
            Some(FdbEntry {
                mac: p.vtep_mac?,
                destination: p.public_ip,
                device: VTEP_DEVICE.to_string(),
            })
        })
        .collect()
}

/// The whole desired state of this node, with the peers it could not serve.
pub fn desired_state(local: &LocalNode, peers: &[Peer]) -> (DesiredState, Vec<Problem>) {
    let (routes, problems) = desired_routes(local, peers);
    let state = DesiredState {
        cluster_cidr: local.cluster_cidr,
        underlay: local.underlay.name.clone(),
        vtep: desired_links(local).into_iter().next(),
        routes,
        neighbours: desired_neighbours(local, peers),
        fdb: desired_fdb(local, peers),
    };
    (state, problems)
}

/// What to remove from and add to `current` to reach `desired`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changes<T> {
    pub remove: Vec<T>,
    pub add: Vec<T>,
}

impl<T> Changes<T> {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }
}

pub fn changes<T: Ord + Clone>(current: &BTreeSet<T>, desired: &BTreeSet<T>) -> Changes<T> {
    Changes {
        remove: current.difference(desired).cloned().collect(),
        add: desired.difference(current).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::{peers, tests::flannel_node};

    fn local(backend: Backend) -> LocalNode {
        LocalNode {
            name: "node-a".into(),
            backend,
            subnet: "10.42.0.0/24".parse().unwrap(),
            cluster_cidr: "10.42.0.0/16".parse().unwrap(),
            vtep_mac: MacAddress::for_node("node-a"),
            underlay: Underlay {
                name: "eth0".into(),
                index: 2,
                mtu: 1500,
                address: "192.168.5.10".parse().unwrap(),
                networks: vec!["192.168.5.0/24".parse().unwrap()],
            },
        }
    }

    fn three_nodes(backend: Backend) -> Vec<k8s_openapi::api::core::v1::Node> {
        vec![
            flannel_node("node-a", "10.42.0.0/24", backend, "192.168.5.10"),
            flannel_node("node-b", "10.42.1.0/24", backend, "192.168.5.11"),
            flannel_node("node-c", "10.42.2.0/24", backend, "192.168.5.12"),
        ]
    }

    fn state_for(
        local: &LocalNode,
        nodes: &[k8s_openapi::api::core::v1::Node],
    ) -> (DesiredState, Vec<Problem>) {
        desired_state(local, &peers(nodes, &local.name, &local.cluster_cidr))
    }

    #[test]
    fn vxlan_device_like_flannel() {
        let links = desired_links(&local(Backend::Vxlan));
        assert_eq!(
            links,
            vec![VxlanLink {
                name: "flannel.1".into(),
                vni: 1,
                port: 8472,
                local: "192.168.5.10".parse().unwrap(),
                underlay_index: 2,
                mtu: 1450,
                mac: MacAddress::for_node("node-a"),
                address: "10.42.0.0/32".parse().unwrap(),
            }]
        );
        assert!(desired_links(&local(Backend::HostGw)).is_empty());
    }

    #[test]
    fn vxlan_state_from_three_nodes() {
        let (state, problems) = state_for(&local(Backend::Vxlan), &three_nodes(Backend::Vxlan));
        assert!(problems.is_empty());
        let mac_b = MacAddress::for_node("node-b");
        let mac_c = MacAddress::for_node("node-c");
        assert_eq!(
            state.routes,
            BTreeSet::from([
                Route {
                    destination: "10.42.1.0/24".parse().unwrap(),
                    gateway: "10.42.1.0".parse().unwrap(),
                    device: "flannel.1".into(),
                    onlink: true,
                },
                Route {
                    destination: "10.42.2.0/24".parse().unwrap(),
                    gateway: "10.42.2.0".parse().unwrap(),
                    device: "flannel.1".into(),
                    onlink: true,
                },
            ])
        );
        assert_eq!(
            state.neighbours,
            BTreeSet::from([
                Neighbour {
                    address: "10.42.1.0".parse().unwrap(),
                    mac: mac_b,
                    device: "flannel.1".into()
                },
                Neighbour {
                    address: "10.42.2.0".parse().unwrap(),
                    mac: mac_c,
                    device: "flannel.1".into()
                },
            ])
        );
        assert_eq!(
            state.fdb,
            BTreeSet::from([
                FdbEntry {
                    mac: mac_b,
                    destination: "192.168.5.11".parse().unwrap(),
                    device: "flannel.1".into()
                },
                FdbEntry {
                    mac: mac_c,
                    destination: "192.168.5.12".parse().unwrap(),
                    device: "flannel.1".into()
                },
            ])
        );
        assert_eq!(state.vtep.unwrap().address.to_string(), "10.42.0.0/32");
    }

    #[test]
    fn removing_a_node_removes_exactly_its_entries() {
        let local = local(Backend::Vxlan);
        let nodes = three_nodes(Backend::Vxlan);
        let (before, _) = state_for(&local, &nodes);
        let (after, _) = state_for(&local, &[nodes[0].clone(), nodes[1].clone()]);

        let routes = changes(&before.routes, &after.routes);
        assert!(routes.add.is_empty());
        assert_eq!(routes.remove.len(), 1);
        assert_eq!(routes.remove[0].destination.to_string(), "10.42.2.0/24");

        let neighbours = changes(&before.neighbours, &after.neighbours);
        assert_eq!(neighbours.remove.len(), 1);
        assert_eq!(neighbours.remove[0].address.to_string(), "10.42.2.0");
        assert!(neighbours.add.is_empty());

        let fdb = changes(&before.fdb, &after.fdb);
        assert_eq!(fdb.remove.len(), 1);
        assert_eq!(fdb.remove[0].mac, MacAddress::for_node("node-c"));
        assert!(fdb.add.is_empty());

        assert!(changes(&after.routes, &after.routes).is_empty());
    }

    #[test]
    fn a_peer_moving_changes_its_fdb_entry_only() {
        let local = local(Backend::Vxlan);
        let mut nodes = three_nodes(Backend::Vxlan);
        let (before, _) = state_for(&local, &nodes);
        nodes[2] = flannel_node("node-c", "10.42.2.0/24", Backend::Vxlan, "192.168.5.99");
        let (after, _) = state_for(&local, &nodes);
        assert_eq!(before.routes, after.routes);
        assert_eq!(before.neighbours, after.neighbours);
        let fdb = changes(&before.fdb, &after.fdb);
        assert_eq!(fdb.remove[0].destination.to_string(), "192.168.5.12");
        assert_eq!(fdb.add[0].destination.to_string(), "192.168.5.99");
    }

    #[test]
    fn peers_of_another_backend_or_overlapping_subnets_are_not_served() {
        let local = local(Backend::Vxlan);
        let nodes = vec![
            flannel_node("node-b", "10.42.1.0/24", Backend::HostGw, "192.168.5.11"),
            flannel_node("node-c", "10.42.0.0/24", Backend::Vxlan, "192.168.5.12"),
        ];
        let (state, problems) = state_for(&local, &nodes);
        assert!(problems.is_empty());
        assert!(state.routes.is_empty() && state.neighbours.is_empty() && state.fdb.is_empty());
    }

    #[test]
    fn host_gw_routes_via_public_ips_on_the_underlay() {
        let (state, problems) = state_for(&local(Backend::HostGw), &three_nodes(Backend::HostGw));
        assert!(problems.is_empty());
        assert!(state.vtep.is_none() && state.neighbours.is_empty() && state.fdb.is_empty());
        let routes: Vec<String> = state
            .routes
            .iter()
            .map(|r| {
                format!(
                    "{} via {} dev {} onlink={}",
                    r.destination, r.gateway, r.device, r.onlink
                )
            })
            .collect();
        assert_eq!(
            routes,
            [
                "10.42.1.0/24 via 192.168.5.11 dev eth0 onlink=false",
                "10.42.2.0/24 via 192.168.5.12 dev eth0 onlink=false"
            ]
        );
    }

    #[test]
    fn host_gw_refuses_peers_off_the_segment() {
        let nodes = vec![
            flannel_node("node-b", "10.42.1.0/24", Backend::HostGw, "192.168.5.11"),
            flannel_node("node-c", "10.42.2.0/24", Backend::HostGw, "172.16.0.12"),
        ];
        let (state, problems) = state_for(&local(Backend::HostGw), &nodes);
        assert_eq!(state.routes.len(), 1);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].node, "node-c");
        assert!(
            problems[0].reason.contains("172.16.0.12"),
            "{}",
            problems[0].reason
        );
        assert!(
            problems[0].reason.contains("192.168.5.0/24"),
            "{}",
            problems[0].reason
        );
    }
}
