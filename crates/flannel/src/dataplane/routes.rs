//! Routes to peers' pod subnets. This crate owns the main-table IPv4 routes that lead
//! into the cluster CIDR (but are not the whole CIDR) through a gateway on `flannel.1`
//! or the flannel interface; routes the CNI bridge or the user made are never touched.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, RouteMessageBuilder};

use crate::desired::Route;
use crate::{Error, Result};

/// Which routes count as ours.
pub(super) struct Scope {
    pub cluster_cidr: Ipv4Net,
    /// Index and name of `flannel.1` (if any) and the flannel interface.
    pub devices: Vec<(u32, String)>,
}

impl Scope {
    pub fn index_of(&self, name: &str) -> Option<u32> {
        self.devices
            .iter()
            .find(|(_, n)| n == name)
            .map(|(i, _)| *i)
    }

    fn name_of(&self, index: u32) -> Option<&str> {
        self.devices
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, n)| n.as_str())
    }
}

fn table_of(message: &RouteMessage) -> u32 {
    message
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(table) => Some(*table),
            _ => None,
        })
        .unwrap_or(u32::from(message.header.table))
}

/// `message` as one of our routes, if it is one.
fn ours(message: &RouteMessage, scope: &Scope) -> Option<Route> {
    if message.header.address_family != AddressFamily::Inet
        || table_of(message) != u32::from(RouteHeader::RT_TABLE_MAIN)
    {
        return None;
    }
    let mut destination = None;
    let mut gateway = None;
    let mut device = None;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => destination = Some(*ip),
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => gateway = Some(*ip),
            RouteAttribute::Oif(index) => device = scope.name_of(*index),
            _ => {}
        }
    }
    let destination = Ipv4Net::new(destination?, message.header.destination_prefix_length).ok()?;
    if !scope.cluster_cidr.contains(&destination)
        || destination.prefix_len() <= scope.cluster_cidr.prefix_len()
    {
        return None;
    }
    Some(Route {
        destination,
        gateway: gateway?,
        device: device?.to_string(),
        onlink: message.header.flags.contains(RouteFlags::Onlink),
    })
}

/// Our routes as they are now, each with the kernel's message for deleting it exactly.
pub(super) async fn current(
    handle: &Handle,
    scope: &Scope,
) -> Result<BTreeMap<Route, RouteMessage>> {
    let messages: Vec<RouteMessage> = handle
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute()
        .try_collect()
        .await
        .map_err(|e| Error::netlink("listing routes", e))?;
    Ok(messages
        .into_iter()
        .filter_map(|m| Some((ours(&m, scope)?, m)))
        .collect())
}

pub(super) async fn add(handle: &Handle, device_index: u32, route: &Route) -> Result<()> {
    let mut builder = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(route.destination.network(), route.destination.prefix_len())
        .gateway(route.gateway)
        .output_interface(device_index)
        // What `ip route add` and flannel use; `ip route` then prints no `proto`.
        .protocol(RouteProtocol::Boot);
    if route.onlink {
        builder = builder.onlink();
    }
    handle
        .route()
        .add(builder.build())
        .replace()
        .execute()
        .await
        .map_err(|e| {
            Error::netlink(
                format!(
                    "adding route {} via {} dev {}",
                    route.destination, route.gateway, route.device
                ),
                e,
            )
        })
}

pub(super) async fn remove(handle: &Handle, message: &RouteMessage) -> Result<()> {
    handle
        .route()
        .del(message.clone())
        .execute()
        .await
        .map_err(|e| Error::netlink("removing a stale route", e))
}
