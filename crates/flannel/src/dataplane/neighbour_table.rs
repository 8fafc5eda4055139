//! What the ARP table ([`super::neighbours`]) and the VXLAN FDB ([`super::fdb`]) share:
//! both are the kernel's neighbour table, dumped per address family and read back as
//! (IPv4 address, MAC) pairs of one device, and deleted by a message naming the entry.

use std::net::Ipv4Addr;

use futures::TryStreamExt;
use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::Handle;

use crate::mac::MacAddress;
use crate::{Error, Result};

/// Every entry of `family` on the device `ifindex`.
pub(super) async fn dump(
    handle: &Handle,
    family: AddressFamily,
    ifindex: u32,
    what: &str,
) -> Result<Vec<NeighbourMessage>> {
    let messages: Vec<NeighbourMessage> = handle
        .neighbours()
        .get()
        .set_address_family(family)
        .execute()
        .try_collect()
        .await
        .map_err(|e| Error::netlink(format!("listing {what}"), e))?;
    Ok(messages
        .into_iter()
        .filter(|m| m.header.ifindex == ifindex)
        .collect())
}

/// The entry's IPv4 address and MAC, when it has both.
pub(super) fn address_and_mac(message: &NeighbourMessage) -> Option<(Ipv4Addr, MacAddress)> {
    let mut address = None;
    let mut mac = None;
    for attribute in &message.attributes {
        match attribute {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => address = Some(*ip),
            // Bridge-family (FDB) dumps carry the remote address as raw bytes.
            NeighbourAttribute::Destination(NeighbourAddress::Other(bytes)) => {
                address = <[u8; 4]>::try_from(bytes.as_slice())
                    .ok()
                    .map(Ipv4Addr::from)
            }
            NeighbourAttribute::LinkLayerAddress(bytes) => {
                mac = MacAddress::try_from(bytes.as_slice()).ok()
            }
            _ => {}
        }
    }
    Some((address?, mac?))
}

/// Delete the entry `message` names; `what` describes it in the error.
pub(super) async fn delete(handle: &Handle, message: NeighbourMessage, what: String) -> Result<()> {
    handle
        .neighbours()
        .del(message)
        .execute()
        .await
        .map_err(|e| Error::netlink(format!("removing {what}"), e))
}
