//! Permanent ARP entries on `flannel.1`: each peer's `10.42.Y.0` answers to its VTEP
//! MAC. This crate owns every permanent IPv4 neighbour of that device.

use std::collections::BTreeSet;
use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::Handle;

use crate::desired::{Neighbour, VTEP_DEVICE};
use crate::mac::MacAddress;
use crate::{Error, Result};

fn ours(message: &NeighbourMessage, vtep_index: u32) -> Option<Neighbour> {
    if message.header.ifindex != vtep_index || message.header.state != NeighbourState::Permanent {
        return None;
    }
    let mut address = None;
    let mut mac = None;
    for attribute in &message.attributes {
        match attribute {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => address = Some(*ip),
            NeighbourAttribute::LinkLayerAddress(bytes) => {
                mac = MacAddress::try_from(bytes.as_slice()).ok()
            }
            _ => {}
        }
    }
    Some(Neighbour {
        address: address?,
        mac: mac?,
        device: VTEP_DEVICE.to_string(),
    })
}

pub(super) async fn current(handle: &Handle, vtep_index: u32) -> Result<BTreeSet<Neighbour>> {
    let messages: Vec<NeighbourMessage> = handle
        .neighbours()
        .get()
        .set_address_family(AddressFamily::Inet)
        .execute()
        .try_collect()
        .await
        .map_err(|e| Error::netlink("listing neighbours", e))?;
    Ok(messages
        .iter()
        .filter_map(|m| ours(m, vtep_index))
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
    handle
        .neighbours()
        .del(message)
        .execute()
        .await
        .map_err(|e| {
            Error::netlink(
                format!(
                    "removing neighbour {} dev {}",
                    neighbour.address, neighbour.device
                ),
                e,
            )
        })
}
