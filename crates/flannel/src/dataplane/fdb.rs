//! Permanent FDB entries of `flannel.1` (the `bridge fdb` table of the VXLAN device):
//! frames for a peer's VTEP MAC are sent in UDP to that peer's public IP. This crate
//! owns every entry of that device that has a remote destination.

use std::collections::BTreeSet;
use std::net::IpAddr;

use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::Handle;

use super::neighbour_table;
use crate::desired::{FdbEntry, VTEP_DEVICE};
use crate::{Error, Result};

pub(super) async fn current(handle: &Handle, vtep_index: u32) -> Result<BTreeSet<FdbEntry>> {
    let messages =
        neighbour_table::dump(handle, AddressFamily::Bridge, vtep_index, "FDB entries").await?;
    Ok(messages
        .iter()
        .filter_map(neighbour_table::address_and_mac)
        .map(|(destination, mac)| FdbEntry {
            mac,
            destination,
            device: VTEP_DEVICE.to_string(),
        })
        .collect())
}

pub(super) async fn add(handle: &Handle, vtep_index: u32, entry: &FdbEntry) -> Result<()> {
    handle
        .neighbours()
        .add_bridge(vtep_index, &entry.mac.octets())
        .destination(IpAddr::V4(entry.destination))
        // NTF_SELF: the entry belongs to the VXLAN device's own table, not to a bridge.
        .flags(NeighbourFlags::Own)
        .state(NeighbourState::Permanent)
        .replace()
        .execute()
        .await
        .map_err(|e| {
            Error::netlink(
                format!(
                    "adding FDB entry {} dst {} dev {}",
                    entry.mac, entry.destination, entry.device
                ),
                e,
            )
        })
}

pub(super) async fn remove(handle: &Handle, vtep_index: u32, entry: &FdbEntry) -> Result<()> {
    let mut message = NeighbourMessage::default();
    message.header.family = AddressFamily::Bridge;
    message.header.ifindex = vtep_index;
    message.header.flags = NeighbourFlags::Own;
    message
        .attributes
        .push(NeighbourAttribute::LinkLayerAddress(
            entry.mac.octets().to_vec(),
        ));
    message
        .attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
            entry.destination,
        )));
    let what = format!(
        "FDB entry {} dst {} dev {}",
        entry.mac, entry.destination, entry.device
    );
    neighbour_table::delete(handle, message, what).await
}
