//! The applier: makes the kernel match a [`DesiredState`] over rtnetlink, idempotently.
//! Every pass reads what is there, removes what this crate owns but no longer wants and
//! adds what is missing, so a restart, a deleted device or a hand edit all converge.
//!
//! Must not: decide anything. What to have is [`crate::desired`]'s job; this module only
//! reads, compares and writes.

mod events;
mod fdb;
mod link;
mod neighbour_table;
mod neighbours;
mod routes;

use std::path::{Path, PathBuf};

pub use events::{LinkChange, LinkEvents};
pub use link::{choose_underlay, AddressSummary, LinkSummary};

use crate::desired::{changes, DesiredState, Underlay, VTEP_DEVICE};
use crate::{netns, Error, Result};

/// A netlink connection to one network namespace.
pub struct Dataplane {
    handle: rtnetlink::Handle,
    netns: Option<PathBuf>,
}

/// What one pass changed, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// `flannel.1` was (re)created, so per-device settings such as the checksum
    /// workaround must be applied again.
    pub vtep_created: bool,
    pub routes_added: usize,
    pub routes_removed: usize,
    pub neighbours_added: usize,
    pub neighbours_removed: usize,
    pub fdb_added: usize,
    pub fdb_removed: usize,
}

impl Applied {
    pub fn changed_anything(&self) -> bool {
        *self != Applied::default()
    }
}

impl Dataplane {
    /// Open a netlink connection in `netns` (a namespace file such as
    /// `/run/netns/NAME`), or in this process's namespace.
    pub async fn connect(netns: Option<PathBuf>) -> Result<Dataplane> {
        let runtime = tokio::runtime::Handle::current();
        let (connection, handle, _) = netns::run_in(netns.clone(), move || {
            // The socket registers with the runtime's reactor while the thread is in
            // the target namespace; it stays bound to that namespace afterwards.
            let _entered = runtime.enter();
            rtnetlink::new_connection().map_err(|e| Error::io("opening a netlink socket", e))
        })
        .await?;
        k3rs_core::task::spawn(connection);
        Ok(Dataplane { handle, netns })
    }

    /// The namespace this connection works in (`None`: the process's own).
    pub fn netns(&self) -> Option<&Path> {
        self.netns.as_deref()
    }

    /// Subscribe to link changes in the same namespace, to notice a deleted
    /// `flannel.1` or an underlay MTU change without waiting for the periodic pass.
    pub async fn link_events(&self) -> Result<LinkEvents> {
        LinkEvents::subscribe(self.netns.clone()).await
    }

    /// The flannel interface: `iface` if given (`--flannel-iface`), else the one that
    /// holds `node_ip`.
    pub async fn underlay(
        &self,
        iface: Option<&str>,
        node_ip: std::net::IpAddr,
    ) -> Result<Underlay> {
        let links = link::summaries(&self.handle).await?;
        let addresses = link::addresses(&self.handle).await?;
        choose_underlay(&links, &addresses, iface, node_ip)
    }

    /// Make the kernel match `desired`.
    pub async fn apply(&self, desired: &DesiredState) -> Result<Applied> {
        let mut applied = Applied::default();
        let vtep_index = match &desired.vtep {
            Some(want) => {
                let (index, created) = link::ensure_vtep(&self.handle, want).await?;
                applied.vtep_created = created;
                Some(index)
            }
            None => {
                link::delete_named(&self.handle, VTEP_DEVICE).await?;
                None
            }
        };
        let names = link::summaries(&self.handle).await?;
        let underlay = names
            .iter()
            .find(|l| l.name == desired.underlay)
            .ok_or_else(|| {
                Error::Config(format!(
                    "flannel interface {} disappeared",
                    desired.underlay
                ))
            })?;
        let scope = routes::Scope {
            cluster_cidr: desired.cluster_cidr,
            devices: names
                .iter()
                .filter(|l| Some(l.index) == vtep_index || l.index == underlay.index)
                .map(|l| (l.index, l.name.clone()))
                .collect(),
        };

        let current_routes = routes::current(&self.handle, &scope).await?;
        let route_changes = changes(&current_routes.keys().cloned().collect(), &desired.routes);
        let (current_neighbours, current_fdb) = match vtep_index {
            Some(index) => (
                neighbours::current(&self.handle, index).await?,
                fdb::current(&self.handle, index).await?,
            ),
            None => Default::default(),
        };
        let neighbour_changes = changes(&current_neighbours, &desired.neighbours);
        let fdb_changes = changes(&current_fdb, &desired.fdb);

        // Tear down in routing order (route, then ARP, then FDB) and build up in the
        // reverse, so no route ever points at a next hop the kernel cannot resolve.
        for route in &route_changes.remove {
            routes::remove(&self.handle, &current_routes[route]).await?;
        }
        if let Some(index) = vtep_index {
            for neighbour in &neighbour_changes.remove {
                neighbours::remove(&self.handle, index, neighbour).await?;
            }
            for entry in &fdb_changes.remove {
                fdb::remove(&self.handle, index, entry).await?;
            }
            for entry in &fdb_changes.add {
                fdb::add(&self.handle, index, entry).await?;
            }
            for neighbour in &neighbour_changes.add {
                neighbours::add(&self.handle, index, neighbour).await?;
            }
        }
        for route in &route_changes.add {
            let index = scope.index_of(&route.device).ok_or_else(|| {
                Error::Config(format!(
                    "route {} needs missing device {}",
                    route.destination, route.device
                ))
            })?;
            routes::add(&self.handle, index, route).await?;
        }

        applied.routes_added = route_changes.add.len();
        applied.routes_removed = route_changes.remove.len();
        applied.neighbours_added = neighbour_changes.add.len();
        applied.neighbours_removed = neighbour_changes.remove.len();
        applied.fdb_added = fdb_changes.add.len();
        applied.fdb_removed = fdb_changes.remove.len();
        Ok(applied)
    }
}

/// The interface holding `ip` and its MTU, so the agent can write the CNI config with
/// the right MTU before pods start. Usable from sync code and from inside a runtime
/// (it runs its own small runtime on a separate thread).
pub fn iface_for_ip(ip: std::net::IpAddr) -> Result<(String, u32)> {
    flannel_iface(None, ip)
}

/// The flannel interface and its MTU as [`crate::run`] will pick it: `iface`
/// (`--flannel-iface`) if given, else the interface holding `node_ip`.
pub fn flannel_iface(iface: Option<&str>, node_ip: std::net::IpAddr) -> Result<(String, u32)> {
    let iface = iface.map(str::to_string);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting a runtime for the interface lookup", e))?;
        runtime.block_on(async move {
            let dataplane = Dataplane::connect(None).await?;
            let underlay = dataplane.underlay(iface.as_deref(), node_ip).await?;
            Ok((underlay.name, underlay.mtu))
        })
    })
    .join()
    .map_err(|_| Error::Config("interface lookup thread panicked".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reading links and addresses needs no privileges, so these run everywhere.
    #[test]
    fn loopback_from_sync_code() {
        let (name, mtu) = iface_for_ip("127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(name, "lo");
        assert!(mtu >= 1500, "{mtu}");
    }

    #[tokio::test]
    async fn loopback_from_inside_a_runtime() {
        let (name, _) = flannel_iface(Some("lo"), "192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(name, "lo");
        let err = iface_for_ip("192.0.2.1".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--flannel-iface"), "{err}");
    }
}
