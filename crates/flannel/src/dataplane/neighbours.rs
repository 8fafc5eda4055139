//! Permanent ARP entries on `flannel.1`: each peer's `10.42.Y.0` answers to its VTEP
//! MAC. This crate owns every permanent IPv4 neighbour of that device.

use std::collections::BTreeSet;
use std::net::IpAddr;

use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::Handle;

use super::neighbour_table;
use crate::desired::{Neighbour, VTEP_DEVICE};
use crate::{Error, Result};

pub(super) async fn current(handle: &Handle, vtep_index: u32) -> Result<BTreeSet<Neighbour>> {
    let messages =
        neighbour_table::dump(handle, AddressFamily::Inet, vtep_index, "neighbours").await?;
    Ok(messages
        .iter()
        .filter(|m| m.header.state == NeighbourState::Permanent)
        .filter_map(neighbour_table::address_and_mac)
        .map(|(address, mac)| Neighbour {
            address,
            mac,
            device: VTEP_DEVICE.to_string(),
        })
        .collect())
}

pub(super) async fn add(handle: &Handle, vtep_index: u32, neighbour: &Neighbour) -> Result<()> {
    handle
        .neighbours()
        .add(vtep_index, IpAddr::V4(neighbour.address))
        .link_layer_address(&neighbour.mac.octets())
        .state(NeighbourState::Permanent)
        .replace()
        .execute()
        .await
        .map_err(|e| {
            Error::netlink(
                format!(
                    "adding neighbour {} lladdr {} dev {}",
                    neighbour.address, neighbour.mac, neighbour.device
                ),
                e,
            )
        })
}

pub(super) async fn remove(handle: &Handle, vtep_index: u32, neighbour: &Neighbour) -> Result<()> {
    let mut message = NeighbourMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.ifindex = vtep_index;
    message
        .attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
            neighbour.address,
        )));
    let what = format!("neighbour {} dev {}", neighbour.address, neighbour.device);
    neighbour_table::delete(handle, message, what).await
}
