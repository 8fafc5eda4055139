//! The mounts the kubelet itself makes on the host: tmpfs for memory-backed emptyDirs and
//! for secret and projected volumes (so secrets never reach the disk, as upstream). They
//! are made and removed with the system's `mount`/`umount`, and whether a directory is
//! mounted is read from `/proc/self/mountinfo` rather than remembered, so an agent that
//! restarts (or a host that rebooted) sees the truth.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The mount points of this process's mount namespace.
#[derive(Clone, Debug, Default)]
pub struct MountTable {
    points: Vec<PathBuf>,
}

impl MountTable {
    pub fn read() -> Result<MountTable> {
        let text = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| Error::io("reading /proc/self/mountinfo", e))?;
        Ok(MountTable::parse(&text))
    }

    /// Parse `mountinfo` lines: the fifth field is the mount point, with spaces, tabs,
    /// newlines and backslashes written as octal escapes.
    pub fn parse(text: &str) -> MountTable {
        let points = text
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .map(|point| PathBuf::from(unescape_octal(point)))
            .collect();
        MountTable { points }
    }

    pub fn is_mount_point(&self, path: &Path) -> bool {
        let path = resolved(path);
        self.points.contains(&path)
    }

    /// Mount points at or below `dir`, deepest first (the order to unmount them in).
    pub fn under(&self, dir: &Path) -> Vec<PathBuf> {
        let dir = resolved(dir);
        let mut found: Vec<PathBuf> = self
            .points
            .iter()
            .filter(|p| p.starts_with(&dir))
            .cloned()
            .collect();
        found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        found.dedup();
        found
    }
}

/// The kernel lists mount points with symlinks resolved; compare like with like.
fn resolved(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match escape.and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount a tmpfs at `dir`, limited to `size_bytes` when given (else the kernel's default,
/// half of RAM; pages count only when used), its root directory with `mode` when given
/// (else tmpfs's default, 1777).
pub async fn mount_tmpfs(dir: &Path, size_bytes: Option<u64>, mode: Option<u32>) -> Result<()> {
    let mut options = Vec::new();
    if let Some(size) = size_bytes {
        options.push(format!("size={size}"));
    }
    if let Some(mode) = mode {
        options.push(format!("mode={mode:o}"));
    }
    let mut command = tokio::process::Command::new("mount");
    command.args(["-t", "tmpfs"]);
    if !options.is_empty() {
        command.args(["-o", &options.join(",")]);
    }
    command.arg("tmpfs").arg(dir);
    run(command, &format!("mounting tmpfs at {}", dir.display())).await
}

pub async fn unmount(dir: &Path) -> Result<()> {
    let mut command = tokio::process::Command::new("umount");
    command.arg(dir);
    run(command, &format!("unmounting {}", dir.display())).await
}

async fn run(mut command: tokio::process::Command, what: &str) -> Result<()> {
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| Error::io(what.to_string(), e))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "{what}: {} ({})",
            String::from_utf8_lossy(&output.stderr).trim(),
            output.status
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:35 / /var/lib/k3rs/agent/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/cache rw - tmpfs tmpfs rw,size=65536k
41 22 0:36 / /var/lib/k3rs/agent/kubelet/pods/u1/volumes/kubernetes.io~secret/my\\040creds rw - tmpfs tmpfs rw
42 41 0:37 / /var/lib/k3rs/agent/kubelet/pods/u1/volumes/kubernetes.io~secret/my\\040creds/inner rw - tmpfs tmpfs rw
43 22 0:38 / /var/lib/k3rs/agent/kubelet/pods/u10/volumes/x rw - tmpfs tmpfs rw
";

    #[test]
    fn finds_mount_points_with_escapes() {
        let table = MountTable::parse(MOUNTINFO);
        let pod = Path::new("/var/lib/k3rs/agent/kubelet/pods/u1");
        assert!(table.is_mount_point(&pod.join("volumes/kubernetes.io~secret/my creds")));
        assert!(!table.is_mount_point(&pod.join("volumes")));
        let under = table.under(pod);
        assert_eq!(under.len(), 3, "{under:?}");
        // Nested mounts come before the mounts they sit on; u10 is another pod.
        assert!(under[0].ends_with("my creds/inner"));
    }

    #[test]
    fn octal_escapes() {
        assert_eq!(unescape_octal("a\\040b\\134c\\011"), "a b\\c\t");
        assert_eq!(unescape_octal("plain\\x"), "plain\\x");
    }
}
