//! Air-gap image import, as k3s does it: every `*.tar`, `*.tar.gz`/`*.tgz` and
//! `*.tar.zst` in `<data-dir>/agent/images` goes into containerd's `k8s.io` namespace at
//! start, and again whenever a file appears or its size or mtime changes. A bad archive
//! is logged with its name and skipped until it changes; it never stops the agent.
//!
//! Which version of which file went into which containerd is remembered in memory per
//! containerd socket, so `import_present` at start and the `run_import` watcher do not
//! import the same file twice, and two agents in one process do not skip each other's.
//!
//! The default sandbox image is not among those files: k3rs carries it (`pause`) and
//! imports it from memory at start, before the air-gap archives (so an archive that
//! names the same image still wins).

mod archive;
mod ctr;
pub mod pause;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime};

use k3rs_core::Shutdown;
use tracing::{info, warn};

use crate::containerd::socket::{self, SocketState};
use crate::cri::{api, Cri};
use crate::{Error, Paths, Result, DEFAULT_PAUSE_IMAGE};
use archive::Compression;

/// How often the images dir is looked at.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// A version of a file, as far as we can tell without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: SystemTime,
}

/// Archive path -> the version last handed to this containerd (imported or rejected).
type Imported = HashMap<PathBuf, Stamp>;

/// One record per containerd socket; the async lock is held for a whole pass over the
/// dir, so a pass that finds a file already being imported waits for that import.
static LEDGERS: LazyLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<Imported>>>>> =
    LazyLock::new(Default::default);

fn ledger(socket: &Path) -> Arc<tokio::sync::Mutex<Imported>> {
    let mut ledgers = LEDGERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    ledgers.entry(socket.to_path_buf()).or_default().clone()
}

/// An image archive in the images dir.
#[derive(Clone, Debug)]
struct Archive {
    path: PathBuf,
    compression: Compression,
    stamp: Stamp,
}

/// The archives in `dir`, by name. A missing dir holds none.
fn scan(dir: &Path) -> Result<Vec<Archive>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
    };
    let mut archives = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
        let Some(compression) = entry.file_name().to_str().and_then(archive::compression_of) else {
            continue;
        };
        let path = entry.path();
        // Follows symlinks: an archive may be linked in from elsewhere, as with k3s.
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        if !metadata.is_file() {
            continue;
        }
        archives.push(Archive {
            path,
            compression,
            stamp: Stamp {
                len: metadata.len(),
                modified: metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            },
        });
    }
    archives.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(archives)
}

/// Make the pause image built into k3rs available as [`DEFAULT_PAUSE_IMAGE`] in the
/// containerd behind `cri`: imported with `ctr` unless containerd already holds this very
/// image under that name (the same image ID, which covers the binary and the platform).
/// Returns whether it had to be imported.
pub async fn import_builtin_pause(cri: &Cri) -> Result<bool> {
    let started = Instant::now();
    let layout = pause::image_layout(
        DEFAULT_PAUSE_IMAGE,
        pause::PAUSE_BINARY,
        pause::Platform::this_build(),
    )
    .map_err(|e| Error::io("building the built-in pause image", e))?;
    let size = layout.tar.len();

    let mut images = cri.images.clone();
    let present = images
        .image_status(api::ImageStatusRequest {
            image: Some(api::ImageSpec {
                image: DEFAULT_PAUSE_IMAGE.to_string(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .ok()
        .and_then(|response| response.into_inner().image);
    if present.is_some_and(|image| image.id == layout.config_digest) {
        info!(image = DEFAULT_PAUSE_IMAGE, id = %layout.config_digest, "built-in pause image already present");
        return Ok(false);
    }

    let socket = cri.socket.clone();
    let what = format!("the built-in pause image {DEFAULT_PAUSE_IMAGE}");
    tokio::task::spawn_blocking(move || ctr::import_bytes(&socket, &what, &layout.tar))
        .await
        .map_err(|join| Error::Other(format!("the pause image import task failed: {join}")))??;
    info!(
        image = DEFAULT_PAUSE_IMAGE,
        size,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "imported the built-in pause image"
    );
    Ok(true)
}

/// Import what is in the images dir now; returns how many files were imported.
pub async fn import_present(paths: &Paths, socket: &std::path::Path) -> Result<usize> {
    let ledger = ledger(socket);
    let mut imported = ledger.lock().await;
    let mut count = 0;
    for archive in scan(&paths.images)? {
        if imported.get(&archive.path) == Some(&archive.stamp) {
            continue;
        }
        if import_one(socket, &archive, &mut imported).await {
            count += 1;
        }
    }
    Ok(count)
}

/// Watch the images dir and import files that appear or change, until `shutdown`.
pub async fn run_import(paths: Paths, socket: PathBuf, shutdown: Shutdown) {
    let ledger = ledger(&socket);
    // What the previous pass saw: a new or changed file is imported once it has kept the
    // same size and mtime for one interval, so a copy in progress is not imported half
    // done. Files already there at the first pass are imported at once.
    let mut previous: Option<HashMap<PathBuf, Stamp>> = None;
    loop {
        match scan(&paths.images) {
            Ok(archives) => {
                let mut imported = ledger.lock().await;
                imported.retain(|path, _| archives.iter().any(|a| &a.path == path));
                for archive in &archives {
                    if imported.get(&archive.path) == Some(&archive.stamp) {
                        continue;
                    }
                    let settled = previous
                        .as_ref()
                        .is_none_or(|seen| seen.get(&archive.path) == Some(&archive.stamp));
                    if !settled {
                        continue;
                    }
                    tokio::select! {
                        _ = import_one(&socket, archive, &mut imported) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
                previous = Some(archives.into_iter().map(|a| (a.path, a.stamp)).collect());
            }
            Err(err) => warn!(error = %err, "cannot list the images dir"),
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Import one archive and record its version. Returns whether it was imported; a
/// failure is logged, and recorded too (so a bad file is not retried every pass) unless
/// containerd was not there to ask, which is retried on the next pass.
async fn import_one(socket: &Path, archive: &Archive, imported: &mut Imported) -> bool {
    let started = Instant::now();
    let result = {
        let (socket, path) = (socket.to_path_buf(), archive.path.clone());
        let compression = archive.compression;
        tokio::task::spawn_blocking(move || ctr::import(&socket, &path, compression)).await
    };
    let file = archive.path.display();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(Ok(names)) => {
            imported.insert(archive.path.clone(), archive.stamp);
            info!(%file, images = %names.join(", "), elapsed_ms, "imported image archive");
            true
        }
        Ok(Err(err)) => {
            if socket::probe(socket).await.ok() == Some(SocketState::Live) {
                imported.insert(archive.path.clone(), archive.stamp);
                warn!(%file, error = %err, elapsed_ms, "image archive not imported; skipped until it changes");
            } else {
                warn!(%file, error = %err, "containerd is not up; retrying the import later");
            }
            false
        }
        Err(join) => {
            imported.insert(archive.path.clone(), archive.stamp);
            warn!(%file, error = %join, "image import task failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_lists_archives_by_name_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.tar.zst", "a.tar", "c.tgz", "notes.txt", ".hidden.tar"] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        std::fs::create_dir(dir.path().join("dir.tar")).unwrap();
        let found: Vec<_> = scan(dir.path())
            .unwrap()
            .into_iter()
            .map(|a| {
                let name = a.path.file_name().unwrap().to_string_lossy().into_owned();
                (name, a.compression, a.stamp.len)
            })
            .collect();
        assert_eq!(
            found,
            [
                ("a.tar".to_string(), Compression::None, 5),
                ("b.tar.zst".to_string(), Compression::Zstd, 9),
                ("c.tgz".to_string(), Compression::Gzip, 5),
            ]
        );
        assert!(scan(&dir.path().join("missing")).unwrap().is_empty());
    }
}
