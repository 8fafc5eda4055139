//! Permanent FDB entries of `flannel.1` (the `bridge fdb` table of the VXLAN device):
//! frames for a peer's VTEP MAC are sent in UDP to that peer's public IP. This crate
//! owns every entry of that device that has a remote destination.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::Handle;

use crate::desired::{FdbEntry, VTEP_DEVICE};
use crate::mac::MacAddress;
use crate::{Error, Result};

fn ours(message: &NeighbourMessage, vtep_index: u32) -> Option<FdbEntry> {
    if message.header.ifindex != vtep_index {
        return None;
    }
    let mut destination = None;
    let mut mac = None;
    for attribute in &message.attributes {
        match attribute {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => destination = Some(*ip),
            // Bridge-family dumps carry the remote address as raw bytes.
            NeighbourAttribute::Destination(NeighbourAddress::Other(bytes)) => {
                destination = <[u8; 4]>::try_from(bytes.as_slice())
                    .ok()
                    .map(Ipv4Addr::from)
            }
            NeighbourAttribute::LinkLayerAddress(bytes) => {
                mac = MacAddress::try_from(bytes.as_slice()).ok()
            }
            _ => {}
        }
    }
    Some(FdbEntry {
        mac: mac?,
        destination: destination?,
        device: VTEP_DEVICE.to_string(),
    })
}

pub(super) async fn current(handle: &Handle, vtep_index: u32) -> Result<BTreeSet<FdbEntry>> {
    let messages: Vec<NeighbourMessage> = handle
        .neighbours()
        .get()
        .set_address_family(AddressFamily::Bridge)
        .execute()
        .try_collect()
        .await
        .map_err(|e| Error::netlink("listing FDB entries", e))?;
    Ok(messages
        .iter()
        .filter_map(|m| ours(m, vtep_index))
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
    handle
        .neighbours()
        .del(message)
        .execute()
        .await
        .map_err(|e| {
            Error::netlink(
                format!(
                    "removing FDB entry {} dst {} dev {}",
                    entry.mac, entry.destination, entry.device
                ),
                e,
            )
        })
}
