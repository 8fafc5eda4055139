//! What the other nodes announce: their pod subnet (`spec.podCIDR`) and the flannel
//! annotations. A node without either is not a peer yet (it is still registering, or
//! runs no flannel) and gets no routes.

use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net};
use k8s_openapi::api::core::v1::Node;

use crate::annotations::{self, VxlanBackendData};
use crate::mac::MacAddress;
use crate::Backend;

/// Another node, as far as the overlay needs to know it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    pub name: String,
    pub subnet: Ipv4Net,
    pub public_ip: Ipv4Addr,
    pub backend: Backend,
    /// The MAC of its `flannel.1` (vxlan only).
    pub vtep_mac: Option<MacAddress>,
}

/// The IPv4 pod CIDR of `node`: the IPv4 entry of `spec.podCIDRs`, else `spec.podCIDR`.
pub fn pod_subnet(node: &Node) -> Option<Ipv4Net> {
    let spec = node.spec.as_ref()?;
    spec.pod_cidrs
        .iter()
        .flatten()
        .chain(spec.pod_cidr.iter())
        .filter_map(|cidr| cidr.parse::<IpNet>().ok())
        .find_map(|net| match net {
            IpNet::V4(v4) => Some(v4.trunc()),
            IpNet::V6(_) => None,
        })
}

/// `node` as a peer, or `None` while it lacks a pod CIDR or complete flannel
/// annotations. The user's `public-ip-overwrite` wins over the announced `public-ip`
/// (flannel copies it over on the node itself; honouring it here too means a peer
/// that has not caught up yet is reached at the address the user gave).
pub fn peer_from_node(node: &Node) -> Option<Peer> {
    let name = node.metadata.name.clone()?;
    let subnet = pod_subnet(node)?;
    let annotations = node.metadata.annotations.as_ref()?;
    let backend: Backend = annotations.get(annotations::BACKEND_TYPE)?.parse().ok()?;
    let public_ip = match annotations::public_ip_overwrite(node) {
        Ok(Some(ip)) => ip,
        _ => annotations
            .get(annotations::PUBLIC_IP)?
            .trim()
            .parse()
            .ok()?,
    };
    let vtep_mac = match backend {
        Backend::Vxlan => {
            let data: VxlanBackendData =
                serde_json::from_str(annotations.get(annotations::BACKEND_DATA)?).ok()?;
            (data.vni == annotations::VNI).then_some(data.vtep_mac)
        }
        Backend::HostGw | Backend::None => None,
    };
    Some(Peer {
        name,
        subnet,
        public_ip,
        backend,
        vtep_mac,
    })
}

/// Every node but `own_name` that is a peer with a subnet inside the cluster CIDR, in
/// name order.
pub fn peers<'a>(
    nodes: impl IntoIterator<Item = &'a Node>,
    own_name: &str,
    cluster_cidr: &Ipv4Net,
) -> Vec<Peer> {
    let mut peers: Vec<Peer> = nodes
        .into_iter()
        .filter(|n| n.metadata.name.as_deref() != Some(own_name))
        .filter_map(peer_from_node)
        .filter(|p| cluster_cidr.contains(&p.subnet))
        .collect();
    peers.sort();
    peers
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;

    /// A node as a flannel peer announces itself.
    pub(crate) fn flannel_node(name: &str, cidr: &str, backend: Backend, public_ip: &str) -> Node {
        let mut node = Node::default();
        node.metadata.name = Some(name.into());
        node.spec = Some(NodeSpec {
            pod_cidr: Some(cidr.into()),
            pod_cidrs: Some(vec![cidr.into()]),
            ..Default::default()
        });
        node.metadata.annotations = Some(
            annotations::own_annotations(
                backend,
                MacAddress::for_node(name),
                public_ip.parse().unwrap(),
            )
            .into_iter()
            .collect(),
        );
        node
    }

    #[test]
    fn reads_flannel_annotations() {
        let node = flannel_node("node-b", "10.42.1.0/24", Backend::Vxlan, "192.168.5.11");
        assert_eq!(
            peer_from_node(&node).unwrap(),
            Peer {
                name: "node-b".into(),
                subnet: "10.42.1.0/24".parse().unwrap(),
                public_ip: "192.168.5.11".parse().unwrap(),
                backend: Backend::Vxlan,
                vtep_mac: Some(MacAddress::for_node("node-b")),
            }
        );
    }

    #[test]
    fn overwrite_wins_and_incomplete_nodes_are_no_peers() {
        let mut node = flannel_node("node-b", "10.42.1.0/24", Backend::HostGw, "192.168.5.11");
        node.metadata.annotations.as_mut().unwrap().insert(
            annotations::PUBLIC_IP_OVERWRITE.into(),
            "198.51.100.4".into(),
        );
        let peer = peer_from_node(&node).unwrap();
        assert_eq!(peer.public_ip.to_string(), "198.51.100.4");
        assert_eq!(peer.vtep_mac, None);

        let mut no_cidr = node.clone();
        no_cidr.spec = None;
        assert_eq!(peer_from_node(&no_cidr), None);

        let mut no_annotations = node.clone();
        no_annotations.metadata.annotations = None;
        assert_eq!(peer_from_node(&no_annotations), None);

        let mut other_backend = node.clone();
        other_backend
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(annotations::BACKEND_TYPE.into(), "wireguard".into());
        assert_eq!(peer_from_node(&other_backend), None);

        let mut bad_vxlan = flannel_node("node-c", "10.42.2.0/24", Backend::Vxlan, "192.168.5.12");
        bad_vxlan
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(annotations::BACKEND_DATA.into(), "null".into());
        assert_eq!(peer_from_node(&bad_vxlan), None);
    }

    #[test]
    fn dual_stack_node_uses_its_ipv4_cidr() {
        let mut node = flannel_node("node-b", "10.42.1.0/24", Backend::Vxlan, "192.168.5.11");
        node.spec.as_mut().unwrap().pod_cidrs =
            Some(vec!["fd00:42:1::/64".into(), "10.42.1.0/24".into()]);
        node.spec.as_mut().unwrap().pod_cidr = Some("fd00:42:1::/64".into());
        assert_eq!(pod_subnet(&node).unwrap().to_string(), "10.42.1.0/24");
    }

    #[test]
    fn excludes_itself_and_foreign_subnets() {
        let cluster: Ipv4Net = "10.42.0.0/16".parse().unwrap();
        let nodes = [
            flannel_node("node-c", "10.42.2.0/24", Backend::Vxlan, "192.168.5.12"),
            flannel_node("node-a", "10.42.0.0/24", Backend::Vxlan, "192.168.5.10"),
            flannel_node("node-x", "10.99.0.0/24", Backend::Vxlan, "192.168.5.99"),
            flannel_node("node-b", "10.42.1.0/24", Backend::Vxlan, "192.168.5.11"),
        ];
        let names: Vec<String> = peers(&nodes, "node-a", &cluster)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["node-b", "node-c"]);
    }
}
