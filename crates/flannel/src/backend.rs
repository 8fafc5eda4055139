//! The overlay backends (`--flannel-backend`) and what each costs in MTU.

/// How pod traffic crosses between nodes: the join contract's type, which the server
/// hands to every agent.
pub use k3rs_core::join::FlannelBackend as Backend;

/// Bytes the VXLAN encapsulation adds over IPv4: outer IPv4 (20) + UDP (8) + VXLAN (8)
/// + inner Ethernet (14).
pub const VXLAN_OVERHEAD: u32 = 50;

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
    fn vxlan_mtu_leaves_room_for_the_headers() {
        assert_eq!(cni_mtu(Backend::Vxlan, 1500), 1450);
        assert_eq!(cni_mtu(Backend::Vxlan, 9001), 8951);
        assert_eq!(cni_mtu(Backend::HostGw, 1500), 1500);
        assert_eq!(cni_mtu(Backend::None, 1400), 1400);
    }
}
