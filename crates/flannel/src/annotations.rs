//! The Node annotations through which nodes tell each other how to reach their pods,
//! named and valued exactly as flannel's kube subnet manager writes them, so tools that
//! read flannel's annotations (and flannel itself, on a mixed cluster) understand ours.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Node;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::mac::MacAddress;
use crate::{Backend, Error, Result};

/// `vxlan` or `host-gw`.
pub const BACKEND_TYPE: &str = "flannel.alpha.coreos.com/backend-type";
/// Backend parameters as JSON: `{"VNI":1,"VtepMAC":"…"}` for vxlan, `null` for host-gw.
pub const BACKEND_DATA: &str = "flannel.alpha.coreos.com/backend-data";
/// The address other nodes send this node's pod traffic to.
pub const PUBLIC_IP: &str = "flannel.alpha.coreos.com/public-ip";
/// Set by the user to force `public-ip` (e.g. a NATed node's reachable address).
pub const PUBLIC_IP_OVERWRITE: &str = "flannel.alpha.coreos.com/public-ip-overwrite";
/// Marks the node's lease as managed through the Kubernetes API (always `"true"`).
pub const KUBE_SUBNET_MANAGER: &str = "flannel.alpha.coreos.com/kube-subnet-manager";

/// Flannel's VXLAN network identifier, which k3s keeps at its default.
pub const VNI: u32 = 1;

/// The `backend-data` of a vxlan node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VxlanBackendData {
    #[serde(rename = "VNI")]
    pub vni: u32,
    #[serde(rename = "VtepMAC")]
    pub vtep_mac: MacAddress,
}

/// The `backend-data` value for this node.
pub fn render_backend_data(backend: Backend, vtep_mac: MacAddress) -> String {
    match backend {
        Backend::Vxlan => serde_json::to_string(&VxlanBackendData { vni: VNI, vtep_mac })
            .expect("plain struct serializes"),
        Backend::HostGw | Backend::None => "null".to_string(),
    }
}

/// The flannel annotations this node must carry.
pub fn own_annotations(
    backend: Backend,
    vtep_mac: MacAddress,
    public_ip: Ipv4Addr,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (BACKEND_TYPE.to_string(), backend.as_str().to_string()),
        (
            BACKEND_DATA.to_string(),
            render_backend_data(backend, vtep_mac),
        ),
        (PUBLIC_IP.to_string(), public_ip.to_string()),
        (KUBE_SUBNET_MANAGER.to_string(), "true".to_string()),
    ])
}

/// A JSON merge patch setting the annotations of `desired` that `current` lacks or holds
/// with another value; `None` when the node already carries them all. Other annotations
/// are left alone.
pub fn annotation_patch(
    current: Option<&BTreeMap<String, String>>,
    desired: &BTreeMap<String, String>,
) -> Option<serde_json::Value> {
    let changed: serde_json::Map<String, serde_json::Value> = desired
        .iter()
        .filter(|(key, value)| current.and_then(|c| c.get(*key)) != Some(*value))
        .map(|(key, value)| (key.clone(), json!(value)))
        .collect();
    (!changed.is_empty()).then(|| json!({ "metadata": { "annotations": changed } }))
}

/// The user's `public-ip-overwrite` of `node`, if set. An unparsable value is an error
/// naming the annotation rather than being silently ignored.
pub fn public_ip_overwrite(node: &Node) -> Result<Option<Ipv4Addr>> {
    let Some(value) = node
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PUBLIC_IP_OVERWRITE))
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(None);
    };
    value.trim().parse().map(Some).map_err(|_| {
        Error::Config(format!(
            "annotation {PUBLIC_IP_OVERWRITE}={value:?} on node {}: not an IPv4 address",
            node.metadata.name.as_deref().unwrap_or_default()
        ))
    })
}

/// The public IP this node announces: the user's overwrite if any; else, with
/// `--flannel-external-ip`, the node's ExternalIP; else the address of the flannel
/// interface.
pub fn own_public_ip(node: &Node, external_ip: bool, iface_address: Ipv4Addr) -> Result<Ipv4Addr> {
    if let Some(ip) = public_ip_overwrite(node)? {
        return Ok(ip);
    }
    if !external_ip {
        return Ok(iface_address);
    }
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "ExternalIP")
        .find_map(|a| a.address.parse::<Ipv4Addr>().ok())
        .ok_or_else(|| {
            Error::Config(format!(
                "--flannel-external-ip: node {} has no IPv4 ExternalIP address (set --node-external-ip)",
                node.metadata.name.as_deref().unwrap_or_default()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeStatus};

    fn mac() -> MacAddress {
        "5e:08:1d:56:15:e3".parse().unwrap()
    }

    fn node(annotations: &[(&str, &str)], external: Option<&str>) -> Node {
        let mut node = Node::default();
        node.metadata.name = Some("node-a".into());
        node.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        node.status = Some(NodeStatus {
            addresses: Some(
                external
                    .into_iter()
                    .map(|ip| NodeAddress {
                        type_: "ExternalIP".into(),
                        address: ip.into(),
                    })
                    .chain([NodeAddress {
                        type_: "InternalIP".into(),
                        address: "192.168.5.10".into(),
                    }])
                    .collect(),
            ),
            ..Default::default()
        });
        node
    }

    #[test]
    fn vxlan_and_host_gw_values_as_flannel_writes_them() {
        assert_eq!(
            render_backend_data(Backend::Vxlan, mac()),
            r#"{"VNI":1,"VtepMAC":"5e:08:1d:56:15:e3"}"#
        );
        assert_eq!(render_backend_data(Backend::HostGw, mac()), "null");
        let annotations = own_annotations(Backend::Vxlan, mac(), "192.168.5.10".parse().unwrap());
        assert_eq!(
            annotations,
            BTreeMap::from([
                (
                    "flannel.alpha.coreos.com/backend-type".to_string(),
                    "vxlan".to_string()
                ),
                (
                    "flannel.alpha.coreos.com/backend-data".to_string(),
                    r#"{"VNI":1,"VtepMAC":"5e:08:1d:56:15:e3"}"#.to_string()
                ),
                (
                    "flannel.alpha.coreos.com/public-ip".to_string(),
                    "192.168.5.10".to_string()
                ),
                (
                    "flannel.alpha.coreos.com/kube-subnet-manager".to_string(),
                    "true".to_string()
                ),
            ])
        );
        let parsed: VxlanBackendData = serde_json::from_str(&annotations[BACKEND_DATA]).unwrap();
        assert_eq!(
            parsed,
            VxlanBackendData {
                vni: 1,
                vtep_mac: mac()
            }
        );
    }

    #[test]
    fn patch_holds_only_what_differs() {
        let desired = own_annotations(Backend::HostGw, mac(), "10.0.0.1".parse().unwrap());
        let patch = annotation_patch(None, &desired).unwrap();
        assert_eq!(
            patch["metadata"]["annotations"].as_object().unwrap().len(),
            4
        );

        let mut current = desired.clone();
        current.insert("other".into(), "kept".into());
        assert_eq!(annotation_patch(Some(&current), &desired), None);

        current.insert(PUBLIC_IP.into(), "10.0.0.9".into());
        assert_eq!(
            annotation_patch(Some(&current), &desired).unwrap(),
            json!({"metadata": {"annotations": {PUBLIC_IP: "10.0.0.1"}}})
        );
    }

    #[test]
    fn public_ip_overwrite_then_external_ip_then_interface() {
        let iface: Ipv4Addr = "192.168.5.10".parse().unwrap();
        let plain = node(&[], Some("203.0.113.7"));
        assert_eq!(own_public_ip(&plain, false, iface).unwrap(), iface);
        assert_eq!(
            own_public_ip(&plain, true, iface).unwrap().to_string(),
            "203.0.113.7"
        );
        let overwritten = node(
            &[(PUBLIC_IP_OVERWRITE, "198.51.100.4")],
            Some("203.0.113.7"),
        );
        for external in [false, true] {
            assert_eq!(
                own_public_ip(&overwritten, external, iface)
                    .unwrap()
                    .to_string(),
                "198.51.100.4"
            );
        }
        let err = own_public_ip(&node(&[], None), true, iface)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--flannel-external-ip: node node-a"),
            "{err}"
        );
        let err = own_public_ip(&node(&[(PUBLIC_IP_OVERWRITE, "nope")], None), false, iface)
            .unwrap_err()
            .to_string();
        assert!(err.contains(PUBLIC_IP_OVERWRITE), "{err}");
    }
}
