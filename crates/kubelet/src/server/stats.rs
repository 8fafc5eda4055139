//! `GET /stats/summary`: the node's and its pods' resource usage, shaped like upstream's
//! `stats/v1alpha1` Summary. The node's figures come from /proc and statvfs, the pods'
//! from CRI: `ListPodSandboxStats` where the runtime implements it, otherwise (containerd
//! 1.6) the pod is the sum of its containers' `ListContainerStats`. CPU rates
//! (`usageNanoCores`) the runtime leaves out are computed from the previous answer's
//! cumulative counters, so they appear from the second request on.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::{HttpError, SharedState};
use crate::cri::{api, labels};
use crate::host_stats::{self, proc_field};

/// The previous cumulative CPU reading of each container (and of the node, key `""`), to
/// turn counters into rates.
#[derive(Default)]
pub struct CpuHistory {
    readings: Mutex<HashMap<String, (i64, u64)>>,
}

impl CpuHistory {
    /// Record `usage` (core-nanoseconds) at `at` (ns since the epoch); returns the average
    /// rate since the previous reading, in nanocores.
    fn rate(&self, key: &str, at: i64, usage: u64) -> Option<u64> {
        let mut readings = self.readings.lock().expect("cpu history lock");
        let previous = readings.insert(key.to_string(), (at, usage));
        let (then, before) = previous?;
        nanocores(then, before, at, usage)
    }

    /// Forget containers that are gone.
    fn retain(&self, live: &std::collections::HashSet<String>) {
        let mut readings = self.readings.lock().expect("cpu history lock");
        readings.retain(|key, _| key.is_empty() || live.contains(key));
    }
}

/// Average CPU use between two cumulative readings (times in ns).
fn nanocores(then: i64, before: u64, now: i64, usage: u64) -> Option<u64> {
    let elapsed = now.checked_sub(then).filter(|d| *d > 0)? as u128;
    let used = usage.checked_sub(before)? as u128;
    Some((used * 1_000_000_000 / elapsed) as u64)
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    node: NodeStats,
    pods: Vec<PodStats>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct NodeStats {
    node_name: String,
    start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<CpuStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<MemoryStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<NetworkStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fs: Option<FsStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime: Option<RuntimeStats>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct RuntimeStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    image_fs: Option<FsStats>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodStats {
    pod_ref: PodReference,
    start_time: String,
    containers: Vec<ContainerStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<CpuStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<MemoryStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<NetworkStats>,
    #[serde(rename = "ephemeral-storage")]
    #[serde(skip_serializing_if = "Option::is_none")]
    ephemeral_storage: Option<FsStats>,
    #[serde(rename = "process_stats", skip_serializing_if = "Option::is_none")]
    process_stats: Option<ProcessStats>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodReference {
    name: String,
    namespace: String,
    uid: String,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct ContainerStats {
    name: String,
    start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<CpuStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<MemoryStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rootfs: Option<FsStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logs: Option<FsStats>,
}

#[derive(Serialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
struct CpuStats {
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_nano_cores: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_core_nano_seconds: Option<u64>,
}

#[derive(Serialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
struct MemoryStats {
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    available_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_set_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rss_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page_faults: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    major_page_faults: Option<u64>,
}

#[derive(Serialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
struct FsStats {
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    available_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    used_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inodes_free: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inodes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inodes_used: Option<u64>,
}

#[derive(Serialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
struct NetworkStats {
    time: String,
    name: String,
    rx_bytes: u64,
    rx_errors: u64,
    tx_bytes: u64,
    tx_errors: u64,
    interfaces: Vec<InterfaceStats>,
}

#[derive(Serialize, Default, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct InterfaceStats {
    name: String,
    rx_bytes: u64,
    rx_errors: u64,
    tx_bytes: u64,
    tx_errors: u64,
}

/// Upstream names these two fields in snake case.
#[derive(Serialize, Default)]
struct ProcessStats {
    process_count: u64,
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn rfc3339_nanos(ns: i64) -> String {
    rfc3339(DateTime::from_timestamp_nanos(ns))
}

pub async fn summary(State(state): State<SharedState>) -> Response {
    match build(&state).await {
        Ok(summary) => axum::Json(summary).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn build(state: &SharedState) -> Result<Summary, HttpError> {
    let now = Utc::now();
    let now_ns = now.timestamp_nanos_opt().unwrap_or_default();
    let image_fs = image_filesystem(state.config.runtime.as_ref(), &now).await;
    let node = NodeStats {
        node_name: state.config.node_name.clone(),
        start_time: boot_time().map(rfc3339).unwrap_or_default(),
        cpu: node_cpu(&state.cpu_history, now_ns, &now),
        memory: node_memory(&now),
        network: node_network(&now),
        fs: filesystem(&state.config.paths.agent, &now),
        runtime: Some(RuntimeStats {
            image_fs: image_fs.clone(),
        }),
    };
    let pods = pod_stats(state, image_fs.as_ref(), &now).await?;
    Ok(Summary { node, pods })
}

/// Pods from CRI: sandboxes, their running containers and those containers' stats.
async fn pod_stats(
    state: &SharedState,
    image_fs: Option<&FsStats>,
    now: &DateTime<Utc>,
) -> Result<Vec<PodStats>, HttpError> {
    let runtime = state.config.runtime.as_ref();
    let ready = api::PodSandboxFilter {
        state: Some(api::PodSandboxStateValue {
            state: api::PodSandboxState::SandboxReady as i32,
        }),
        ..Default::default()
    };
    let sandboxes = runtime
        .list_pod_sandboxes(Some(ready))
        .await
        .map_err(|s| HttpError::internal(format!("ListPodSandbox: {}", s.message())))?;
    let running = api::ContainerFilter {
        state: Some(api::ContainerStateValue {
            state: api::ContainerState::ContainerRunning as i32,
        }),
        ..Default::default()
    };
    let containers = runtime
        .list_containers(Some(running))
        .await
        .map_err(|s| HttpError::internal(format!("ListContainers: {}", s.message())))?;
    let container_stats = runtime
        .list_container_stats()
        .await
        .map_err(|s| HttpError::internal(format!("ListContainerStats: {}", s.message())))?;
    // Pod-level figures (network above all) where the runtime has them; containerd 1.6
    // answers Unimplemented and the pods are summed from their containers instead.
    let sandbox_stats: HashMap<String, api::PodSandboxStats> =
        match runtime.list_pod_sandbox_stats().await {
            Ok(stats) => stats
                .into_iter()
                .filter_map(|s| Some((s.attributes.as_ref()?.id.clone(), s)))
                .collect(),
            Err(_) => HashMap::new(),
        };

    let stats_by_id: HashMap<&str, &api::ContainerStats> = container_stats
        .iter()
        .filter_map(|s| Some((s.attributes.as_ref()?.id.as_str(), s)))
        .collect();
    let live: std::collections::HashSet<String> = containers.iter().map(|c| c.id.clone()).collect();
    state.cpu_history.retain(&live);

    let mut pods = Vec::new();
    for sandbox in &sandboxes {
        let label = |key: &str| sandbox.labels.get(key).cloned().unwrap_or_default();
        let pod_ref = PodReference {
            name: label(labels::POD_NAME),
            namespace: label(labels::POD_NAMESPACE),
            uid: label(labels::POD_UID),
        };
        let log_dir =
            state
                .config
                .paths
                .pod_log_dir(&pod_ref.namespace, &pod_ref.name, &pod_ref.uid);
        let mut entries = Vec::new();
        for container in containers.iter().filter(|c| c.pod_sandbox_id == sandbox.id) {
            let Some(stats) = stats_by_id.get(container.id.as_str()) else {
                continue;
            };
            let name = container
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            let logs = directory_usage(&log_dir.join(&name));
            entries.push(container_entry(
                &state.cpu_history,
                container,
                stats,
                image_fs,
                logs,
                now,
            ));
        }
        let pod_level = sandbox_stats
            .get(&sandbox.id)
            .and_then(|s| s.linux.as_ref());
        let cpu = match pod_level.and_then(|l| l.cpu.as_ref()) {
            Some(cpu) => Some(cpu_stats(&state.cpu_history, &sandbox.id, cpu)),
            None => sum_cpu(entries.iter().filter_map(|c| c.cpu.as_ref()), now),
        };
        let memory = match pod_level.and_then(|l| l.memory.as_ref()) {
            Some(memory) => Some(memory_stats(memory)),
            None => sum_memory(entries.iter().filter_map(|c| c.memory.as_ref()), now),
        };
        let network = pod_level
            .and_then(|l| l.network.as_ref())
            .map(network_stats);
        let process_stats = pod_level
            .and_then(|l| l.process.as_ref())
            .and_then(|p| p.process_count.as_ref())
            .map(|c| ProcessStats {
                process_count: c.value,
            });
        let ephemeral_storage = sum_fs(
            entries
                .iter()
                .flat_map(|c| c.rootfs.iter().chain(c.logs.iter())),
            image_fs,
            now,
        );
        pods.push(PodStats {
            pod_ref,
            start_time: rfc3339_nanos(sandbox.created_at),
            containers: entries,
            cpu,
            memory,
            network,
            ephemeral_storage,
            process_stats,
        });
    }
    Ok(pods)
}

fn container_entry(
    history: &CpuHistory,
    container: &api::Container,
    stats: &api::ContainerStats,
    image_fs: Option<&FsStats>,
    logs_used: Option<u64>,
    now: &DateTime<Utc>,
) -> ContainerStats {
    let capacity = |used: Option<u64>, inodes_used: Option<u64>| FsStats {
        time: rfc3339(*now),
        available_bytes: image_fs.and_then(|f| f.available_bytes),
        capacity_bytes: image_fs.and_then(|f| f.capacity_bytes),
        used_bytes: used,
        inodes_free: image_fs.and_then(|f| f.inodes_free),
        inodes: image_fs.and_then(|f| f.inodes),
        inodes_used,
    };
    let rootfs = stats.writable_layer.as_ref().map(|layer| {
        capacity(
            layer.used_bytes.as_ref().map(|v| v.value),
            layer.inodes_used.as_ref().map(|v| v.value),
        )
    });
    ContainerStats {
        name: container
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default(),
        start_time: rfc3339_nanos(container.created_at),
        cpu: stats
            .cpu
            .as_ref()
            .map(|cpu| cpu_stats(history, &container.id, cpu)),
        memory: stats.memory.as_ref().map(memory_stats),
        rootfs,
        logs: logs_used.map(|used| capacity(Some(used), None)),
    }
}

fn cpu_stats(history: &CpuHistory, key: &str, cpu: &api::CpuUsage) -> CpuStats {
    let total = cpu.usage_core_nano_seconds.as_ref().map(|v| v.value);
    // Keep the history current even when the runtime gives the rate itself.
    let computed = total.and_then(|t| history.rate(key, cpu.timestamp, t));
    let rate = cpu.usage_nano_cores.as_ref().map(|v| v.value).or(computed);
    CpuStats {
        time: rfc3339_nanos(cpu.timestamp),
        usage_nano_cores: rate,
        usage_core_nano_seconds: total,
    }
}

fn memory_stats(memory: &api::MemoryUsage) -> MemoryStats {
    let value = |v: &Option<api::UInt64Value>| v.as_ref().map(|v| v.value);
    MemoryStats {
        time: rfc3339_nanos(memory.timestamp),
        // containerd reports 0 for a container without a memory limit, where upstream
        // leaves the field out.
        available_bytes: value(&memory.available_bytes).filter(|v| *v > 0),
        usage_bytes: value(&memory.usage_bytes),
        working_set_bytes: value(&memory.working_set_bytes),
        rss_bytes: value(&memory.rss_bytes),
        page_faults: value(&memory.page_faults),
        major_page_faults: value(&memory.major_page_faults),
    }
}

fn network_stats(network: &api::NetworkUsage) -> NetworkStats {
    let interface = |i: &api::NetworkInterfaceUsage| InterfaceStats {
        name: i.name.clone(),
        rx_bytes: i.rx_bytes.as_ref().map_or(0, |v| v.value),
        rx_errors: i.rx_errors.as_ref().map_or(0, |v| v.value),
        tx_bytes: i.tx_bytes.as_ref().map_or(0, |v| v.value),
        tx_errors: i.tx_errors.as_ref().map_or(0, |v| v.value),
    };
    let default = network
        .default_interface
        .as_ref()
        .map(interface)
        .unwrap_or_default();
    let mut interfaces = vec![default.clone()];
    interfaces.extend(network.interfaces.iter().map(interface));
    NetworkStats {
        time: rfc3339_nanos(network.timestamp),
        name: default.name,
        rx_bytes: default.rx_bytes,
        rx_errors: default.rx_errors,
        tx_bytes: default.tx_bytes,
        tx_errors: default.tx_errors,
        interfaces,
    }
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    }
}

fn sum_cpu<'a>(parts: impl Iterator<Item = &'a CpuStats>, now: &DateTime<Utc>) -> Option<CpuStats> {
    parts.fold(None, |total: Option<CpuStats>, c| {
        let mut total = total.unwrap_or_else(|| CpuStats {
            time: rfc3339(*now),
            ..Default::default()
        });
        total.usage_nano_cores = add(total.usage_nano_cores, c.usage_nano_cores);
        total.usage_core_nano_seconds =
            add(total.usage_core_nano_seconds, c.usage_core_nano_seconds);
        Some(total)
    })
}

fn sum_memory<'a>(
    parts: impl Iterator<Item = &'a MemoryStats>,
    now: &DateTime<Utc>,
) -> Option<MemoryStats> {
    parts.fold(None, |total: Option<MemoryStats>, m| {
        let mut total = total.unwrap_or_else(|| MemoryStats {
            time: rfc3339(*now),
            ..Default::default()
        });
        total.usage_bytes = add(total.usage_bytes, m.usage_bytes);
        total.working_set_bytes = add(total.working_set_bytes, m.working_set_bytes);
        total.rss_bytes = add(total.rss_bytes, m.rss_bytes);
        total.page_faults = add(total.page_faults, m.page_faults);
        total.major_page_faults = add(total.major_page_faults, m.major_page_faults);
        Some(total)
    })
}

fn sum_fs<'a>(
    parts: impl Iterator<Item = &'a FsStats>,
    filesystem: Option<&FsStats>,
    now: &DateTime<Utc>,
) -> Option<FsStats> {
    let mut used = None;
    let mut inodes_used = None;
    let mut any = false;
    for part in parts {
        any = true;
        used = add(used, part.used_bytes);
        inodes_used = add(inodes_used, part.inodes_used);
    }
    any.then(|| FsStats {
        time: rfc3339(*now),
        available_bytes: filesystem.and_then(|f| f.available_bytes),
        capacity_bytes: filesystem.and_then(|f| f.capacity_bytes),
        used_bytes: used,
        inodes_free: filesystem.and_then(|f| f.inodes_free),
        inodes: filesystem.and_then(|f| f.inodes),
        inodes_used,
    })
}

/// The runtime's image filesystem: its use from CRI, its size from statvfs.
async fn image_filesystem(
    runtime: &dyn crate::runtime::RuntimeService,
    now: &DateTime<Utc>,
) -> Option<FsStats> {
    let usage = runtime.image_fs_info().await.ok()?.into_iter().next()?;
    let mountpoint = usage.fs_id.as_ref()?.mountpoint.clone();
    let mut fs = filesystem(Path::new(&mountpoint), now)?;
    fs.used_bytes = usage.used_bytes.map(|v| v.value);
    fs.inodes_used = usage.inodes_used.map(|v| v.value);
    Some(fs)
}

/// Size and use of the filesystem holding `path`.
fn filesystem(path: &Path, now: &DateTime<Utc>) -> Option<FsStats> {
    let fs = host_stats::filesystem(path)?;
    Some(FsStats {
        time: rfc3339(*now),
        available_bytes: Some(fs.available),
        capacity_bytes: Some(fs.capacity),
        used_bytes: Some(fs.capacity.saturating_sub(fs.free)),
        inodes_free: Some(fs.inodes_free),
        inodes: Some(fs.inodes),
        inodes_used: Some(fs.inodes.saturating_sub(fs.inodes_free)),
    })
}

/// Bytes of the regular files directly in `dir` (a container's log files).
fn directory_usage(dir: &Path) -> Option<u64> {
    let entries = std::fs::read_dir(dir).ok()?;
    Some(
        entries
            .filter_map(|e| e.ok()?.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum(),
    )
}

fn boot_time() -> Option<DateTime<Utc>> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let seconds: i64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    DateTime::from_timestamp(seconds, 0)
}

/// Busy CPU time of the whole machine in core-nanoseconds, from /proc/stat's `cpu` line.
fn cpu_busy_nanoseconds(stat: &str, ticks_per_second: u64) -> Option<u64> {
    let fields: Vec<u64> = stat
        .lines()
        .find(|l| l.starts_with("cpu "))?
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    Some(busy * (1_000_000_000 / ticks_per_second.max(1)))
}

fn node_cpu(history: &CpuHistory, now_ns: i64, now: &DateTime<Utc>) -> Option<CpuStats> {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100, |t| t as u64);
    let total = cpu_busy_nanoseconds(&std::fs::read_to_string("/proc/stat").ok()?, ticks)?;
    Some(CpuStats {
        time: rfc3339(*now),
        usage_nano_cores: history.rate("", now_ns, total),
        usage_core_nano_seconds: Some(total),
    })
}

/// Node memory as upstream reports it: the working set is what is in use minus the
/// page cache the kernel can drop first (inactive file pages).
fn memory_from_proc(meminfo: &str, vmstat: &str, now: &DateTime<Utc>) -> Option<MemoryStats> {
    let total = proc_field(meminfo, "MemTotal")?;
    let free = proc_field(meminfo, "MemFree")?;
    let usage = total.saturating_sub(free);
    let inactive_file = proc_field(meminfo, "Inactive(file)").unwrap_or(0);
    let working_set = usage.saturating_sub(inactive_file);
    Some(MemoryStats {
        time: rfc3339(*now),
        available_bytes: Some(total.saturating_sub(working_set)),
        usage_bytes: Some(usage),
        working_set_bytes: Some(working_set),
        rss_bytes: proc_field(meminfo, "AnonPages"),
        page_faults: proc_field(vmstat, "pgfault"),
        major_page_faults: proc_field(vmstat, "pgmajfault"),
    })
}

fn node_memory(now: &DateTime<Utc>) -> Option<MemoryStats> {
    let meminfo = host_stats::read_meminfo()?;
    memory_from_proc(&meminfo, &host_stats::read_vmstat(), now)
}

/// Interfaces of /proc/net/dev other than loopback.
fn interfaces_from_proc(net_dev: &str) -> Vec<InterfaceStats> {
    net_dev
        .lines()
        .skip(2)
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let name = name.trim();
            if name == "lo" {
                return None;
            }
            let c: Vec<u64> = counters
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            // Receive: bytes packets errs ...; transmit starts at the 9th column.
            Some(InterfaceStats {
                name: name.to_string(),
                rx_bytes: *c.first()?,
                rx_errors: *c.get(2)?,
                tx_bytes: *c.get(8)?,
                tx_errors: *c.get(10)?,
            })
        })
        .collect()
}

/// The interface of the default IPv4 route, from /proc/net/route.
fn default_route_interface(route: &str) -> Option<String> {
    route.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&"00000000") && fields.get(7) == Some(&"00000000"))
            .then(|| fields[0].to_string())
    })
}

fn node_network(now: &DateTime<Utc>) -> Option<NetworkStats> {
    let interfaces = interfaces_from_proc(&std::fs::read_to_string("/proc/net/dev").ok()?);
    let default_name = std::fs::read_to_string("/proc/net/route")
        .ok()
        .and_then(|r| default_route_interface(&r));
    let default = interfaces
        .iter()
        .find(|i| Some(&i.name) == default_name.as_ref())
        .or(interfaces.first())
        .cloned()
        .unwrap_or_default();
    Some(NetworkStats {
        time: rfc3339(*now),
        name: default.name,
        rx_bytes: default.rx_bytes,
        rx_errors: default.rx_errors,
        tx_bytes: default.tx_bytes,
        tx_errors: default.tx_errors,
        interfaces,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_rates_from_counters() {
        assert_eq!(
            nanocores(0, 0, 1_000_000_000, 500_000_000),
            Some(500_000_000)
        );
        assert_eq!(nanocores(10, 5, 10, 9), None, "no time passed");
        assert_eq!(nanocores(0, 9, 10, 5), None, "counter went back (restart)");
        let history = CpuHistory::default();
        assert_eq!(history.rate("c", 0, 100), None);
        assert_eq!(
            history.rate("c", 2_000_000_000, 2_000_000_100),
            Some(1_000_000_000)
        );
        history.retain(&Default::default());
        assert_eq!(history.rate("c", 3_000_000_000, 0), None);
    }

    #[test]
    fn node_cpu_from_proc_stat() {
        let stat = "cpu  100 10 50 1000 20 5 5 0 0 0\ncpu0 1 2 3 4\nbtime 1700000000\n";
        // (100+10+50+5+5+0) ticks of 10 ms.
        assert_eq!(cpu_busy_nanoseconds(stat, 100), Some(170 * 10_000_000));
        assert_eq!(cpu_busy_nanoseconds("intr 1", 100), None);
    }

    #[test]
    fn node_memory_from_proc() {
        let meminfo = "MemTotal:       1000 kB\nMemFree:         200 kB\nMemAvailable:    600 kB\nInactive(file):  300 kB\nAnonPages:       100 kB\n";
        let vmstat = "pgfault 42\npgmajfault 3\n";
        let m = memory_from_proc(meminfo, vmstat, &Utc::now()).unwrap();
        assert_eq!(m.usage_bytes, Some(800 * 1024));
        assert_eq!(m.working_set_bytes, Some(500 * 1024));
        assert_eq!(m.available_bytes, Some(500 * 1024));
        assert_eq!(m.rss_bytes, Some(100 * 1024));
        assert_eq!((m.page_faults, m.major_page_faults), (Some(42), Some(3)));
        // `pgfault` must not match `pgfault_x`-like prefixes.
        assert_eq!(proc_field("pgfaultx 1\n", "pgfault"), None);
    }

    #[test]
    fn node_network_from_proc() {
        let dev = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 2000 20 1 0 0 0 0 0 3000 30 2 0 0 0 0 0\n";
        let i = interfaces_from_proc(dev);
        assert_eq!(
            i,
            [InterfaceStats {
                name: "eth0".into(),
                rx_bytes: 2000,
                rx_errors: 1,
                tx_bytes: 3000,
                tx_errors: 2
            }]
        );
        let route =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                     eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_interface(route).as_deref(), Some("eth0"));
    }

    #[test]
    fn pods_are_summed_from_containers() {
        let now = Utc::now();
        let a = CpuStats {
            time: String::new(),
            usage_nano_cores: Some(5),
            usage_core_nano_seconds: Some(100),
        };
        let b = CpuStats {
            usage_nano_cores: None,
            ..a.clone()
        };
        let sum = sum_cpu([a, b].iter(), &now).unwrap();
        assert_eq!(
            (sum.usage_nano_cores, sum.usage_core_nano_seconds),
            (Some(5), Some(200))
        );
        assert!(sum_cpu([].iter(), &now).is_none());
    }
}
