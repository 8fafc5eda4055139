//! The overlay backends (`--flannel-backend`) and what each costs in MTU.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// How pod traffic crosses between nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// Encapsulate in VXLAN (VNI 1, UDP 8472) through `flannel.1`: works across routed
    /// networks.
    Vxlan,
    /// Route each node's pod subnet straight to that node: no encapsulation, but every
    /// node must sit on one L2 segment.
    HostGw,
    /// No overlay at all: the user brings a CNI.
    None,
}

/// Bytes the VXLAN encapsulation adds over IPv4: outer IPv4 (20) + UDP (8) + VXLAN (8)
/// + inner Ethernet (14).
pub const VXLAN_OVERHEAD: u32 = 50;

impl Backend {
    /// The value of `--flannel-backend` and of the `backend-type` annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Vxlan => "vxlan",
            Backend::HostGw => "host-gw",
            Backend::None => "none",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Backend {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "vxlan" => Ok(Backend::Vxlan),
            "host-gw" => Ok(Backend::HostGw),
            "none" => Ok(Backend::None),
            other => Err(Error::Config(format!(
                "invalid --flannel-backend {other:?}: expected vxlan, host-gw or none"
            ))),
        }
    }
}

/// The MTU pods get (the CNI bridge and veths, `FLANNEL_MTU`) on a node whose flannel
/// interface has `iface_mtu`: VXLAN leaves room for its headers, host-gw and none carry
/// pod packets as they are.
pub fn cni_mtu(backend: Backend, iface_mtu: u32) -> u32 {
    match backend {
        Backend::Vxlan => iface_mtu.saturating_sub(VXLAN_OVERHEAD),
        Backend::HostGw | Backend::None => iface_mtu,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_flag_values_and_names_the_flag_on_error() {
        for backend in [Backend::Vxlan, Backend::HostGw, Backend::None] {
            assert_eq!(backend.as_str().parse::<Backend>().unwrap(), backend);
        }
        let err = "wireguard".parse::<Backend>().unwrap_err().to_string();
        assert!(
            err.starts_with("invalid --flannel-backend \"wireguard\""),
            "{err}"
        );
    }

    #[test]
    fn vxlan_mtu_leaves_room_for_the_headers() {
        assert_eq!(cni_mtu(Backend::Vxlan, 1500), 1450);
        assert_eq!(cni_mtu(Backend::Vxlan, 9001), 8951);
        assert_eq!(cni_mtu(Backend::HostGw, 1500), 1500);
        assert_eq!(cni_mtu(Backend::None, 1400), 1400);
    }
}
