//! Facts about this machine for the Node's status: capacity, nodeInfo, and the free
//! memory, disk and PIDs the pressure conditions look at. Read from /proc, /sys and
//! statvfs (through [`crate::host_stats`]) each time: cheap, and always current.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::host_stats::{self, Filesystem};

/// Kubelet's default pod limit.
pub const MAX_PODS: u32 = 110;

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The machine's online CPUs, as upstream's kubelet counts them for capacity: all of
/// them, whatever this process's affinity or cgroup quota (which
/// `available_parallelism` would apply).
pub fn cpu_count() -> usize {
    online_cpus(&read_trimmed("/sys/devices/system/cpu/online"))
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// Count a CPU list such as `0-3,6`.
fn online_cpus(list: &str) -> Option<usize> {
    list.split(',')
        .filter(|r| !r.is_empty())
        .map(|range| match range.split_once('-') {
            Some((a, b)) => (b.parse::<usize>().ok()? + 1).checked_sub(a.parse::<usize>().ok()?),
            None => range.parse::<usize>().ok().map(|_| 1),
        })
        .sum()
}

pub fn memory_total() -> u64 {
    host_stats::meminfo_field("MemTotal").unwrap_or(0)
}

pub fn memory_available() -> u64 {
    host_stats::meminfo_field("MemAvailable").unwrap_or(0)
}

/// The filesystem holding `path`; all zero when it cannot be read.
pub fn filesystem(path: &Path) -> Filesystem {
    host_stats::filesystem(path).unwrap_or_default()
}

/// (limit, in use) of process IDs. The in-use count is the kernel's number of tasks
/// from `/proc/loadavg` (its fourth field, `running/total`): one read instead of listing
/// `/proc` every second.
pub fn pids() -> (u64, u64) {
    let limit = read_trimmed("/proc/sys/kernel/pid_max")
        .parse()
        .unwrap_or(32768);
    (
        limit,
        tasks_in_loadavg(&read_trimmed("/proc/loadavg")).unwrap_or(0),
    )
}

fn tasks_in_loadavg(text: &str) -> Option<u64> {
    text.split_whitespace()
        .nth(3)?
        .split_once('/')?
        .1
        .parse()
        .ok()
}

/// The Node's `status.capacity` (k3s reserves nothing, so allocatable is the same).
pub fn capacity(data_dir: &Path) -> BTreeMap<String, Quantity> {
    let disk = filesystem(data_dir).capacity;
    let memory_kib = memory_total() / 1024;
    BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu_count().to_string())),
        ("memory".to_string(), Quantity(format!("{memory_kib}Ki"))),
        ("pods".to_string(), Quantity(MAX_PODS.to_string())),
        (
            "ephemeral-storage".to_string(),
            Quantity(format!("{}Ki", disk / 1024)),
        ),
        ("hugepages-1Gi".to_string(), Quantity("0".into())),
        ("hugepages-2Mi".to_string(), Quantity("0".into())),
    ])
}

/// Kubernetes' name for this CPU architecture.
pub fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn os_image() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// `status.nodeInfo`.
pub fn node_info(runtime_version: &str) -> k8s_openapi::api::core::v1::NodeSystemInfo {
    k8s_openapi::api::core::v1::NodeSystemInfo {
        architecture: architecture().into(),
        boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
        container_runtime_version: runtime_version.into(),
        kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
        kube_proxy_version: k3rs_core::KUBE_GIT_VERSION.into(),
        kubelet_version: k3rs_core::KUBE_GIT_VERSION.into(),
        machine_id: read_trimmed("/etc/machine-id"),
        operating_system: "linux".into(),
        os_image: os_image(),
        system_uuid: read_trimmed("/sys/class/dmi/id/product_uuid"),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_cpu_lists() {
        assert_eq!(online_cpus("0-1"), Some(2));
        assert_eq!(online_cpus("0-3,6,8-9"), Some(7));
        assert_eq!(online_cpus("0"), Some(1));
        assert_eq!(online_cpus("x"), None);
        assert_eq!(online_cpus("3-1"), None);
    }

    #[test]
    fn task_count_from_loadavg() {
        assert_eq!(tasks_in_loadavg("0.52 0.58 0.59 3/1234 98765"), Some(1234));
        assert_eq!(tasks_in_loadavg("garbage"), None);
    }

    #[test]
    fn capacity_has_the_kubelet_resources() {
        let c = capacity(Path::new("/"));
        for key in ["cpu", "memory", "pods", "ephemeral-storage"] {
            assert!(c.contains_key(key), "{key}");
        }
        assert_eq!(c["pods"].0, "110");
    }
}
