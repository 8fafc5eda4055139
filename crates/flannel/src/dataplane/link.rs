//! Links and addresses: finding the flannel interface, and keeping `flannel.1` exactly
//! as wanted. A device whose VXLAN parameters differ (VNI, port, local address, lower
//! device, learning) is deleted and created again, since the kernel cannot change
//! most of them in place; MTU, MAC and up state are fixed in place.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkUnspec, LinkVxlan};

use crate::desired::{Underlay, VxlanLink};
use crate::mac::MacAddress;
use crate::{Error, Result};

/// A link as far as the overlay cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSummary {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
}

/// One address of one link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressSummary {
    pub index: u32,
    pub address: IpAddr,
    pub prefix_len: u8,
}

/// Pick the flannel interface from what the kernel has: `iface` by name if given, else
/// the link holding `node_ip`. Its VXLAN source is `node_ip` when the node IP is one of
/// its IPv4 addresses, else its first IPv4 address.
pub fn choose_underlay(
    links: &[LinkSummary],
    addresses: &[AddressSummary],
    iface: Option<&str>,
    node_ip: IpAddr,
) -> Result<Underlay> {
    let link = match iface {
        Some(name) => links
            .iter()
            .find(|l| l.name == name)
            .ok_or_else(|| Error::Config(format!("--flannel-iface {name}: no such interface")))?,
        None => {
            let index = addresses
                .iter()
                .find(|a| a.address == node_ip)
                .map(|a| a.index)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "node IP {node_ip} is not assigned to any interface: set --flannel-iface or --node-ip"
                    ))
                })?;
            links.iter().find(|l| l.index == index).ok_or_else(|| {
                Error::Config(format!("the interface of node IP {node_ip} disappeared"))
            })?
        }
    };
    let ipv4: Vec<(Ipv4Addr, u8)> = addresses
        .iter()
        .filter(|a| a.index == link.index)
        .filter_map(|a| match a.address {
            IpAddr::V4(v4) => Some((v4, a.prefix_len)),
            IpAddr::V6(_) => None,
        })
        .collect();
    let address = match node_ip {
        IpAddr::V4(v4) if ipv4.iter().any(|(a, _)| *a == v4) => v4,
        _ => ipv4.first().map(|(a, _)| *a).ok_or_else(|| {
            Error::Config(format!(
                "--flannel-iface {}: the interface has no IPv4 address",
                link.name
            ))
        })?,
    };
    Ok(Underlay {
        name: link.name.clone(),
        index: link.index,
        mtu: link.mtu,
        address,
        networks: ipv4
            .iter()
            .filter_map(|(a, len)| Ipv4Net::new(*a, *len).ok().map(|n| n.trunc()))
            .collect(),
    })
}

fn name_of(message: &LinkMessage) -> Option<&str> {
    message.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.as_str()),
        _ => None,
    })
}

fn mtu_of(message: &LinkMessage) -> u32 {
    message
        .attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Mtu(mtu) => Some(*mtu),
            _ => None,
        })
        .unwrap_or(0)
}

fn mac_of(message: &LinkMessage) -> Option<MacAddress> {
    message.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(bytes) => MacAddress::try_from(bytes.as_slice()).ok(),
        _ => None,
    })
}

/// The VXLAN attributes of a link, or `None` when it is not a VXLAN device.
fn vxlan_of(message: &LinkMessage) -> Option<&[InfoVxlan]> {
    let infos = message.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => Some(infos),
        _ => None,
    })?;
    if !infos
        .iter()
        .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Vxlan)))
    {
        return None;
    }
    infos.iter().find_map(|i| match i {
        LinkInfo::Data(InfoData::Vxlan(data)) => Some(data.as_slice()),
        _ => None,
    })
}

/// Whether an existing VXLAN device has the parameters that cannot change in place.
fn vxlan_matches(data: &[InfoVxlan], want: &VxlanLink) -> bool {
    let has = |wanted: &InfoVxlan| data.iter().any(|d| d == wanted);
    has(&InfoVxlan::Id(want.vni))
        && has(&InfoVxlan::Port(want.port))
        && has(&InfoVxlan::Local(want.local))
        && has(&InfoVxlan::Link(want.underlay_index))
        && has(&InfoVxlan::Learning(false))
}

async fn dump_links(handle: &Handle) -> Result<Vec<LinkMessage>> {
    handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| Error::netlink("listing links", e))
}

pub(super) async fn summaries(handle: &Handle) -> Result<Vec<LinkSummary>> {
    Ok(dump_links(handle)
        .await?
        .iter()
        .filter_map(|m| {
            Some(LinkSummary {
                index: m.header.index,
                name: name_of(m)?.to_string(),
                mtu: mtu_of(m),
            })
        })
        .collect())
}

async fn dump_addresses(handle: &Handle) -> Result<Vec<AddressMessage>> {
    handle
        .address()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| Error::netlink("listing addresses", e))
}

fn address_of(message: &AddressMessage) -> Option<IpAddr> {
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    // point-to-point links and the same as IFA_LOCAL elsewhere.
    let local = message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

pub(super) async fn addresses(handle: &Handle) -> Result<Vec<AddressSummary>> {
    Ok(dump_addresses(handle)
        .await?
        .iter()
        .filter_map(|m| {
            Some(AddressSummary {
                index: m.header.index,
                address: address_of(m)?,
                prefix_len: m.header.prefix_len,
            })
        })
        .collect())
}

/// Delete the link called `name` if there is one.
pub(super) async fn delete_named(handle: &Handle, name: &str) -> Result<()> {
    let links = dump_links(handle).await?;
    if let Some(link) = links.iter().find(|m| name_of(m) == Some(name)) {
        handle
            .link()
            .del(link.header.index)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("deleting {name}"), e))?;
        tracing::info!(
            device = name,
            "removed the VXLAN device of an earlier backend"
        );
    }
    Ok(())
}

/// Make `flannel.1` match `want`: create it if missing, recreate it if its VXLAN
/// parameters differ, fix MTU/MAC/up in place, and give it exactly `want.address`.
/// Returns its index and whether it was (re)created.
pub(super) async fn ensure_vtep(handle: &Handle, want: &VxlanLink) -> Result<(u32, bool)> {
    let links = dump_links(handle).await?;
    let mut existing = links
        .iter()
        .find(|m| name_of(m) == Some(want.name.as_str()));
    if let Some(link) = existing {
        if !vxlan_of(link).is_some_and(|data| vxlan_matches(data, want)) {
            tracing::warn!(device = %want.name, "VXLAN device has other parameters than wanted; recreating it");
            handle
                .link()
                .del(link.header.index)
                .execute()
                .await
                .map_err(|e| Error::netlink(format!("deleting {}", want.name), e))?;
            existing = None;
        }
    }
    let (index, created) = match existing {
        Some(link) => {
            let index = link.header.index;
            let up = link.header.flags.contains(LinkFlags::Up);
            if mtu_of(link) != want.mtu || mac_of(link) != Some(want.mac) || !up {
                handle
                    .link()
                    .set(
                        LinkUnspec::new_with_index(index)
                            .mtu(want.mtu)
                            .address(want.mac.octets().to_vec())
                            .up()
                            .build(),
                    )
                    .execute()
                    .await
                    .map_err(|e| {
                        Error::netlink(format!("setting MTU, MAC and up on {}", want.name), e)
                    })?;
            }
            (index, false)
        }
        None => {
            handle
                .link()
                .add(
                    LinkVxlan::new(&want.name, want.vni)
                        .dev(want.underlay_index)
                        .port(want.port)
                        .local(want.local)
                        .learning(false)
                        .mtu(want.mtu)
                        .address(want.mac.octets().to_vec())
                        .up()
                        .build(),
                )
                .execute()
                .await
                .map_err(|e| Error::netlink(format!("creating {}", want.name), e))?;
            let index = dump_links(handle)
                .await?
                .iter()
                .find(|m| name_of(m) == Some(want.name.as_str()))
                .map(|m| m.header.index)
                .ok_or_else(|| {
                    Error::Config(format!("{} vanished right after being created", want.name))
                })?;
            tracing::info!(device = %want.name, vni = want.vni, port = want.port, local = %want.local, mtu = want.mtu, "created the VXLAN device");
            (index, true)
        }
    };
    ensure_only_address(handle, index, &want.name, want.address).await?;
    Ok((index, created))
}

/// Give the device exactly one IPv4 address, `want`.
async fn ensure_only_address(handle: &Handle, index: u32, name: &str, want: Ipv4Net) -> Result<()> {
    let mut present = false;
    for message in dump_addresses(handle).await? {
        if message.header.index != index || message.header.family != AddressFamily::Inet {
            continue;
        }
        if address_of(&message) == Some(IpAddr::V4(want.addr()))
            && message.header.prefix_len == want.prefix_len()
        {
            present = true;
            continue;
        }
        handle
            .address()
            .del(message)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("removing a stale address from {name}"), e))?;
    }
    if !present {
        handle
            .address()
            .add(index, IpAddr::V4(want.addr()), want.prefix_len())
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("adding {want} to {name}"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Vec<LinkSummary> {
        vec![
            LinkSummary {
                index: 1,
                name: "lo".into(),
                mtu: 65536,
            },
            LinkSummary {
                index: 2,
                name: "eth0".into(),
                mtu: 1500,
            },
            LinkSummary {
                index: 3,
                name: "eth1".into(),
                mtu: 9000,
            },
        ]
    }

    fn addresses() -> Vec<AddressSummary> {
        let a = |index, ip: &str, prefix_len| AddressSummary {
            index,
            address: ip.parse().unwrap(),
            prefix_len,
        };
        vec![
            a(1, "127.0.0.1", 8),
            a(2, "192.168.5.10", 24),
            a(2, "192.168.6.10", 24),
            a(2, "fd00::10", 64),
            a(3, "10.9.0.4", 16),
        ]
    }

    #[test]
    fn by_node_ip() {
        let underlay = choose_underlay(
            &links(),
            &addresses(),
            None,
            "192.168.6.10".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(
            underlay,
            Underlay {
                name: "eth0".into(),
                index: 2,
                mtu: 1500,
                address: "192.168.6.10".parse().unwrap(),
                networks: vec![
                    "192.168.5.0/24".parse().unwrap(),
                    "192.168.6.0/24".parse().unwrap()
                ],
            }
        );
        // An IPv6 node IP finds its interface and uses that interface's IPv4 address.
        let underlay =
            choose_underlay(&links(), &addresses(), None, "fd00::10".parse().unwrap()).unwrap();
        assert_eq!(underlay.address.to_string(), "192.168.5.10");
    }

    #[test]
    fn by_flag_and_errors_name_the_flag() {
        let underlay = choose_underlay(
            &links(),
            &addresses(),
            Some("eth1"),
            "192.168.5.10".parse().unwrap(),
        )
        .unwrap();
        assert_eq!((underlay.name.as_str(), underlay.mtu), ("eth1", 9000));
        assert_eq!(underlay.address.to_string(), "10.9.0.4");

        let err = choose_underlay(
            &links(),
            &addresses(),
            Some("wg0"),
            "192.168.5.10".parse().unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "--flannel-iface wg0: no such interface");
        let err = choose_underlay(&links(), &addresses(), None, "192.168.9.9".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--flannel-iface"), "{err}");
        let mut v6_only = addresses();
        v6_only.retain(|a| a.index != 2 || a.address.is_ipv6());
        let err = choose_underlay(&links(), &v6_only, None, "fd00::10".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--flannel-iface eth0: the interface has no IPv4 address"
        );
    }
}
