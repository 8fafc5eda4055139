//! Writing a volume's files so that containers see each update all at once, as upstream's
//! AtomicWriter does for configMap, secret, downwardAPI and projected volumes.
//!
//! The files of one version live in a timestamped directory (`..2026_11_24_21_00_00.123`);
//! `..data` is a symlink to the current one, replaced by `rename(2)` of a freshly made
//! `..data_tmp` link (atomic on Linux); each top-level name the user sees is a symlink
//! through `..data` (`key -> ..data/key`). A reader that opens `key` therefore gets either
//! the old or the new version, never a mix. Writing the same payload again changes
//! nothing on disk, so the periodic refresh is cheap.
//!
//! One writer per target directory at a time: the caller (one worker per pod) ensures it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

/// One file's contents and permission bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// Files by path relative to the volume directory (`key`, `dir/key`).
pub type Payload = BTreeMap<String, FileProjection>;

const DATA_LINK: &str = "..data";
const DATA_LINK_TMP: &str = "..data_tmp";
/// Upstream's limits on the paths users may give.
const MAX_PATH_LENGTH: usize = 4096;
const MAX_FILE_NAME_LENGTH: usize = 255;

/// Make `target` hold exactly `payload`. Returns whether anything was written.
pub fn write(target: &Path, payload: &Payload) -> Result<bool> {
    let files = checked_paths(payload)?;
    fs::create_dir_all(target).map_err(|e| io_at("creating", target, e))?;
    let old_dir = current_dir_name(target)?;
    if let Some(old) = &old_dir {
        if holds_exactly(&target.join(old), &files)? {
            // Links a user removed by hand (or a crash) come back on the next refresh.
            link_visible_names(target, &files)?;
            return Ok(false);
        }
    }
    let old_names = match &old_dir {
        Some(old) => top_level_names(&target.join(old))?,
        None => BTreeSet::new(),
    };

    let new_dir = make_version_dir(target)?;
    for (path, file) in &files {
        write_file(&target.join(&new_dir).join(path), file)?;
    }
    let tmp_link = target.join(DATA_LINK_TMP);
    remove_if_present(&tmp_link)?;
    std::os::unix::fs::symlink(&new_dir, &tmp_link).map_err(|e| io_at("linking", &tmp_link, e))?;
    fs::rename(&tmp_link, target.join(DATA_LINK))
        .map_err(|e| io_at("switching", &target.join(DATA_LINK), e))?;

    let new_names = link_visible_names(target, &files)?;
    for stale in old_names.difference(&new_names) {
        let link = target.join(stale);
        // Only our own links: never delete something a user put there.
        if fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()) {
            remove_if_present(&link)?;
        }
    }
    remove_old_versions(target, &new_dir)?;
    Ok(true)
}

/// The current contents of `path` in the volume at `target`, if it has been written.
pub fn current_file(target: &Path, path: &str) -> Option<Vec<u8>> {
    fs::read(target.join(DATA_LINK).join(path)).ok()
}

/// Validate every payload path as upstream does (relative, no `..`, not starting with
/// `..`, bounded lengths) and normalise away `.` components and repeated slashes.
fn checked_paths(payload: &Payload) -> Result<BTreeMap<PathBuf, &FileProjection>> {
    let mut files = BTreeMap::new();
    for (path, file) in payload {
        let invalid = |why: &str| Error::Other(format!("invalid path {path:?}: {why}"));
        if path.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if path.len() > MAX_PATH_LENGTH {
            return Err(invalid("must be at most 4096 characters"));
        }
        let mut clean = PathBuf::new();
        for component in Path::new(path).components() {
            match component {
                Component::Normal(name) if name.len() > MAX_FILE_NAME_LENGTH => {
                    return Err(invalid("file names must be at most 255 characters"))
                }
                Component::Normal(name) => clean.push(name),
                Component::CurDir => {}
                Component::ParentDir => return Err(invalid("must not contain '..'")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(invalid("must be a relative path"))
                }
            }
        }
        let first = clean
            .components()
            .next()
            .ok_or_else(|| invalid("must name a file"))?;
        if first.as_os_str().to_string_lossy().starts_with("..") {
            return Err(invalid("must not start with '..'"));
        }
        files.insert(clean, file);
    }
    Ok(files)
}

/// The name of the version directory `..data` points to.
fn current_dir_name(target: &Path) -> Result<Option<String>> {
    match fs::read_link(target.join(DATA_LINK)) {
        Ok(dir) => Ok(Some(dir.to_string_lossy().into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_at("reading", &target.join(DATA_LINK), e)),
    }
}

/// Whether `dir` holds exactly `files`: the same paths, contents and permission bits.
fn holds_exactly(dir: &Path, files: &BTreeMap<PathBuf, &FileProjection>) -> Result<bool> {
    let existing = match files_under(dir) {
        Ok(existing) => existing,
        // The version the link names is gone (removed by hand): rewrite.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(false)
        }
        Err(e) => return Err(e),
    };
    if existing.len() != files.len() || !existing.iter().eq(files.keys()) {
        return Ok(false);
    }
    for (path, file) in files {
        let full = dir.join(path);
        let meta = fs::metadata(&full).map_err(|e| io_at("reading", &full, e))?;
        if meta.permissions().mode() & 0o7777 != file.mode & 0o7777
            || meta.len() != file.data.len() as u64
            || fs::read(&full).map_err(|e| io_at("reading", &full, e))? != file.data
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Every regular file below `dir`, as paths relative to it.
fn files_under(dir: &Path) -> Result<BTreeSet<PathBuf>> {
    let mut files = BTreeSet::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let full = dir.join(&relative);
        for entry in fs::read_dir(&full).map_err(|e| io_at("listing", &full, e))? {
            let entry = entry.map_err(|e| io_at("listing", &full, e))?;
            let kind = entry.file_type().map_err(|e| io_at("listing", &full, e))?;
            let path = relative.join(entry.file_name());
            if kind.is_dir() {
                pending.push(path);
            } else {
                files.insert(path);
            }
        }
    }
    Ok(files)
}

fn top_level_names(dir: &Path) -> Result<BTreeSet<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(io_at("listing", dir, e)),
    };
    let mut names = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_at("listing", dir, e))?;
        names.insert(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// A new, empty version directory named after the current time (UTC) plus a random
/// suffix, so two writes within one second never collide.
fn make_version_dir(target: &Path) -> Result<String> {
    let stamp = chrono::Utc::now().format("%Y_%m_%d_%H_%M_%S");
    loop {
        let name = format!("..{stamp}.{}", rand::random::<u32>());
        let path = target.join(&name);
        match fs::DirBuilder::new().mode(0o755).create(&path) {
            Ok(()) => {
                // The umask may have narrowed the mode; containers of any user read here.
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                    .map_err(|e| io_at("setting mode of", &path, e))?;
                return Ok(name);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_at("creating", &path, e)),
        }
    }
}

fn write_file(path: &Path, file: &FileProjection) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| io_at("creating", parent, e))?;
    }
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(file.mode & 0o7777)
        .open(path)
        .map_err(|e| io_at("creating", path, e))?;
    out.write_all(&file.data)
        .map_err(|e| io_at("writing", path, e))?;
    // Set the mode explicitly: `open` applied the umask to it.
    fs::set_permissions(path, fs::Permissions::from_mode(file.mode & 0o7777))
        .map_err(|e| io_at("setting mode of", path, e))
}

/// Make sure every top-level name of `files` is a link through `..data`; returns the names.
fn link_visible_names(
    target: &Path,
    files: &BTreeMap<PathBuf, &FileProjection>,
) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for path in files.keys() {
        let Some(first) = path.components().next() else {
            continue;
        };
        let name = first.as_os_str().to_string_lossy().into_owned();
        if names.insert(name.clone()) {
            let link = target.join(&name);
            if fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(Path::new(DATA_LINK).join(&name), &link)
                    .map_err(|e| io_at("linking", &link, e))?;
            }
        }
    }
    Ok(names)
}

/// Remove every version directory except `keep` (the previous version, and any left
/// behind by a crash between writing a version and switching to it).
fn remove_old_versions(target: &Path, keep: &str) -> Result<()> {
    for entry in fs::read_dir(target).map_err(|e| io_at("listing", target, e))? {
        let entry = entry.map_err(|e| io_at("listing", target, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && name.starts_with("..") && name != keep {
            fs::remove_dir_all(entry.path()).map_err(|e| io_at("removing", &entry.path(), e))?;
        }
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_at("removing", path, e)),
        _ => Ok(()),
    }
}

fn io_at(action: &str, path: &Path, source: std::io::Error) -> Error {
    Error::io(format!("{action} {}", path.display()), source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(entries: &[(&str, &str, u32)]) -> Payload {
        entries
            .iter()
            .map(|(path, data, mode)| {
                (
                    path.to_string(),
                    FileProjection {
                        data: data.as_bytes().to_vec(),
                        mode: *mode,
                    },
                )
            })
            .collect()
    }

    fn data_dir(target: &Path) -> String {
        fs::read_link(target.join(DATA_LINK))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    fn names(target: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(target)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_versions_behind_links() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("vol");
        let first = payload(&[("a", "one", 0o644), ("conf/b.txt", "two", 0o400)]);
        assert!(write(&target, &first).unwrap());

        let version = data_dir(&target);
        assert!(version.starts_with("..20"), "{version}");
        assert_eq!(fs::read_to_string(target.join("a")).unwrap(), "one");
        assert_eq!(
            fs::read_to_string(target.join("conf/b.txt")).unwrap(),
            "two"
        );
        assert_eq!(
            fs::read_link(target.join("a")).unwrap(),
            Path::new("..data/a")
        );
        assert_eq!(
            fs::read_link(target.join("conf")).unwrap(),
            Path::new("..data/conf")
        );
        let mode = |p: &str| fs::metadata(target.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode("a"), 0o644);
        assert_eq!(mode("conf/b.txt"), 0o400);
        assert_eq!(current_file(&target, "a").unwrap(), b"one");

        // The same payload again leaves everything as it is.
        assert!(!write(&target, &first).unwrap());
        assert_eq!(data_dir(&target), version);
    }

    #[test]
    fn updates_switch_versions_and_drop_stale_names() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("vol");
        write(&target, &payload(&[("a", "one", 0o644), ("b", "x", 0o644)])).unwrap();
        let first = data_dir(&target);

        // A mode change alone is an update too.
        assert!(write(&target, &payload(&[("a", "one", 0o600), ("b", "x", 0o644)])).unwrap());
        let second = data_dir(&target);
        assert_ne!(first, second);

        assert!(write(
            &target,
            &payload(&[("a", "uno", 0o600), ("c", "new", 0o644)])
        )
        .unwrap());
        let third = data_dir(&target);
        assert_eq!(fs::read_to_string(target.join("a")).unwrap(), "uno");
        assert_eq!(fs::read_to_string(target.join("c")).unwrap(), "new");
        assert_eq!(names(&target), vec![third.as_str(), "..data", "a", "c"]);
    }

    #[test]
    fn empty_payload_empties_the_volume() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("vol");
        write(&target, &payload(&[("a", "one", 0o644)])).unwrap();
        assert!(write(&target, &Payload::new()).unwrap());
        assert_eq!(names(&target), vec![data_dir(&target).as_str(), "..data"]);
        assert!(!write(&target, &Payload::new()).unwrap());
    }

    #[test]
    fn leftovers_of_an_interrupted_write_are_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("vol");
        write(&target, &payload(&[("a", "one", 0o644)])).unwrap();
        fs::create_dir(target.join("..2020_01_01_00_00_00.1")).unwrap();
        std::os::unix::fs::symlink("nowhere", target.join(DATA_LINK_TMP)).unwrap();
        fs::remove_file(target.join("a")).unwrap();

        // Unchanged contents: only the missing link is restored.
        assert!(!write(&target, &payload(&[("a", "one", 0o644)])).unwrap());
        assert_eq!(fs::read_to_string(target.join("a")).unwrap(), "one");

        assert!(write(&target, &payload(&[("a", "two", 0o644)])).unwrap());
        assert_eq!(
            names(&target),
            vec![data_dir(&target).as_str(), "..data", "a"]
        );
    }

    #[test]
    fn rejects_paths_that_escape_or_hide() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "..hidden", "./..x"] {
            let err = write(dir.path(), &payload(&[(bad, "x", 0o644)])).unwrap_err();
            assert!(err.to_string().contains("invalid path"), "{bad}: {err}");
        }
        // `.` components and doubled slashes are tidied, not refused.
        write(dir.path(), &payload(&[("./d//f", "x", 0o644)])).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("d/f")).unwrap(), "x");
    }
}
