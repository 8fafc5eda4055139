//! The host's own counters, read one way for every part of the kubelet: the size and free
//! space of a filesystem (statvfs) and the fields of `/proc/meminfo` and `/proc/vmstat`.
//! The Node's capacity and pressure conditions and the stats summary both read them here.

use std::path::Path;

/// Size and use of one filesystem, in bytes and inodes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Filesystem {
    pub capacity: u64,
    /// Free to unprivileged users (what upstream reports as available).
    pub available: u64,
    /// Free in all, including the blocks reserved for root.
    pub free: u64,
    pub inodes: u64,
    pub inodes_free: u64,
}

/// The filesystem holding `path`, or `None` when statvfs fails.
// statvfs counts are 32-bit on some targets, so the conversions are not useless everywhere.
#[allow(clippy::useless_conversion)]
pub fn filesystem(path: &Path) -> Option<Filesystem> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let block = u64::from(s.fragment_size());
    Some(Filesystem {
        capacity: u64::from(s.blocks()) * block,
        available: u64::from(s.blocks_available()) * block,
        free: u64::from(s.blocks_free()) * block,
        inodes: u64::from(s.files()),
        inodes_free: u64::from(s.files_free()),
    })
}

/// The text of `/proc/meminfo`.
pub fn read_meminfo() -> Option<String> {
    std::fs::read_to_string("/proc/meminfo").ok()
}

/// The text of `/proc/vmstat` (empty when it cannot be read).
pub fn read_vmstat() -> String {
    std::fs::read_to_string("/proc/vmstat").unwrap_or_default()
}

/// One field of /proc/meminfo (`MemTotal:  1000 kB`, in bytes) or /proc/vmstat
/// (`pgfault 1234`, a count).
pub fn proc_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let rest = rest.strip_prefix(':').unwrap_or(rest);
        if !rest.starts_with(char::is_whitespace) {
            return None;
        }
        let mut words = rest.split_whitespace();
        let value: u64 = words.next()?.parse().ok()?;
        Some(if words.next() == Some("kB") {
            value * 1024
        } else {
            value
        })
    })
}

/// One field of this host's /proc/meminfo, in bytes.
pub fn meminfo_field(name: &str) -> Option<u64> {
    proc_field(&read_meminfo()?, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_and_vmstat_fields() {
        let meminfo =
            "MemTotal:       24596272 kB\nMemFree:        1000 kB\nMemAvailable:   2048 kB\nHugePages_Total:       0\n";
        assert_eq!(proc_field(meminfo, "MemTotal"), Some(24596272 * 1024));
        assert_eq!(proc_field(meminfo, "MemAvailable"), Some(2048 * 1024));
        assert_eq!(proc_field(meminfo, "HugePages_Total"), Some(0));
        assert_eq!(proc_field(meminfo, "Mem"), None);
        let vmstat = "pgfault 42\npgmajfault 7\n";
        assert_eq!(proc_field(vmstat, "pgfault"), Some(42));
        assert_eq!(proc_field(vmstat, "pgmajfault"), Some(7));
        assert_eq!(proc_field(vmstat, "pg"), None);
    }

    #[test]
    fn the_root_filesystem_has_a_size() {
        let fs = filesystem(Path::new("/")).unwrap();
        assert!(fs.capacity > 0);
        assert!(fs.available <= fs.free && fs.free <= fs.capacity);
        assert!(filesystem(Path::new("/no/such/path")).is_none());
    }
}
