//! Link change notifications (the `RTNLGRP_LINK` multicast group), so a deleted
//! `flannel.1` is recreated within moments instead of at the next periodic pass.

use std::path::PathBuf;

use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::SocketAddr;
use rtnetlink::MulticastGroup;

use crate::{netns, Error, Result};

/// One link appearing, changing or going away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkChange {
    pub index: u32,
    pub name: Option<String>,
    pub removed: bool,
}

/// A subscription to link changes in one network namespace.
pub struct LinkEvents {
    messages: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    // Dropping the handle would end the connection task and with it the stream.
    _handle: rtnetlink::Handle,
}

impl LinkEvents {
    pub(super) async fn subscribe(netns: Option<PathBuf>) -> Result<LinkEvents> {
        let runtime = tokio::runtime::Handle::current();
        let (connection, handle, messages) = netns::run_in(netns, move || {
            let _entered = runtime.enter();
            rtnetlink::new_multicast_connection(&[MulticastGroup::Link])
                .map_err(|e| Error::io("subscribing to link changes", e))
        })
        .await?;
        k3rs_core::task::spawn(connection);
        Ok(LinkEvents {
            messages,
            _handle: handle,
        })
    }

    /// The next link change; `None` once the subscription has ended.
    pub async fn next(&mut self) -> Option<LinkChange> {
        loop {
            let (message, _) = self.messages.next().await?;
            let (link, removed) = match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => (link, false),
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => (link, true),
                _ => continue,
            };
            return Some(change_of(&link, removed));
        }
    }
}

fn change_of(link: &LinkMessage, removed: bool) -> LinkChange {
    LinkChange {
        index: link.header.index,
        name: link.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(name) => Some(name.clone()),
            _ => None,
        }),
        removed,
    }
}
