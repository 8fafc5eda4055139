//! Air-gap image import: every `*.tar`, `*.tar.gz`, `*.tar.zst` in `<data-dir>/agent/images`
//! goes into containerd's `k8s.io` namespace at start and whenever a new file appears.

use std::path::PathBuf;

use k3rs_core::Shutdown;

use crate::{Paths, Result};

/// Import what is in the images dir now; returns how many files were imported.
pub async fn import_present(paths: &Paths, socket: &std::path::Path) -> Result<usize> {
    let _ = (paths, socket);
    Ok(0)
}

/// Watch the images dir and import files that appear or change, until `shutdown`.
pub async fn run_import(paths: Paths, socket: PathBuf, shutdown: Shutdown) {
    let _ = (paths, socket);
    shutdown.cancelled().await;
}
