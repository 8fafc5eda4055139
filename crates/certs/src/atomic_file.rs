//! Writing credential files safely: the final file appears complete and with its final
//! permissions in one step (temp file + rename), so a crash never leaves a truncated key
//! and a reader never sees a private key that is briefly world-readable.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::{Error, Result};

/// Write `contents` to `path` with exactly `mode` (e.g. `0o600`; k3s's
/// `--write-kubeconfig-mode`), creating parent directories, atomically (temp file in the
/// same directory, fsync, rename).
pub fn write_file_with_mode(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;

    let file_name = path
        .file_name()
        .ok_or_else(|| Error::invalid(path, "not a file path"))?
        .to_string_lossy();
    // The random suffix keeps two concurrent writers from clobbering each other's temp file.
    let tmp = parent.join(format!(
        ".{file_name}.tmp.{}.{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));

    let result = write_then_rename(&tmp, path, contents, mode);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_then_rename(tmp: &Path, path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    // Creating with `mode` means the file is never more open than requested, even for
    // an instant; the umask can only remove bits, so set_permissions below restores the
    // exact mode (e.g. 0644 under a 077 umask).
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)
        .map_err(|e| Error::io(tmp, e))?;
    file.write_all(contents).map_err(|e| Error::io(tmp, e))?;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(tmp, e))?;
    file.sync_all().map_err(|e| Error::io(tmp, e))?;
    drop(file);
    fs::rename(tmp, path).map_err(|e| Error::io(path, e))?;
    // Persist the rename itself; best effort because some filesystems refuse to fsync
    // a directory and the data is already safe in the file.
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Read a file as UTF-8, or `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Create `dir` (and parents) and make it private (0700), as k3s does for its TLS dir.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_with_exact_mode_and_creates_parents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/file");
        write_file_with_mode(&path, b"one", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);

        write_file_with_mode(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temp files left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }
}
