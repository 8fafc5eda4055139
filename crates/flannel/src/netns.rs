//! Running kernel-facing work inside another network namespace, for the dev cluster and
//! tests where each node is a namespace of one machine.
//!
//! A netlink socket belongs to the namespace of the thread that opened it, and a child
//! process starts in the namespace of the thread that forked it. So the work runs on a
//! fresh thread that first joins the namespace, and never on a pooled runtime thread,
//! which would carry the namespace into unrelated tasks.

use std::path::PathBuf;

use nix::sched::CloneFlags;

use crate::{Error, Result};

/// Run `work` on its own thread, inside the network namespace at `netns` (a path such
/// as `/run/netns/NAME` or `/proc/PID/ns/net`), or in this process's namespace when
/// `None`. Awaits the thread without blocking the runtime.
pub async fn run_in<T, F>(netns: Option<PathBuf>, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("flannel-netns".into())
        .spawn(move || {
            let result = enter(netns.as_ref()).and_then(|()| work());
            let _ = sender.send(result);
        })
        .map_err(|e| Error::io("starting a thread for network namespace work", e))?;
    receiver
        .await
        .map_err(|_| Error::Config("network namespace worker thread panicked".into()))?
}

/// Move the calling thread into the network namespace at `netns`.
fn enter(netns: Option<&PathBuf>) -> Result<()> {
    let Some(path) = netns else {
        return Ok(());
    };
    let file =
        std::fs::File::open(path).map_err(|e| Error::file("opening network namespace", path, e))?;
    nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| {
        Error::file(
            "entering network namespace",
            path,
            std::io::Error::from_raw_os_error(e as i32),
        )
    })
}
