//! Resource quantities and what a pod asks of a node: requests (with upstream's
//! init-container and sidecar rules and the pod overhead), the non-zero requests used for
//! scoring, and what a node offers (`status.allocatable`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
// Exact parsing (no f64 rounding), shared with admission and the kubelet so a pod's
// requests count the same everywhere.
use k3rs_core::quantity::{parse_milli, parse_units};

/// What scoring assumes a container without a CPU request uses (upstream's
/// `DefaultMilliCPURequest`), so that request-less pods still spread.
pub const DEFAULT_MILLI_CPU: i64 = 100;
/// Same for memory (upstream's `DefaultMemoryRequest`, 200 MiB).
pub const DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

/// An amount of each resource: CPU in millicores, everything else in base units.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Extended resources (`nvidia.com/gpu`, `hugepages-2Mi`, ...).
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// Read a `requests`/`limits`/`allocatable` map. `pods` is not a resource a pod
    /// requests, so it is left out here (see [`allowed_pods`]).
    pub fn from_map(map: &BTreeMap<String, Quantity>) -> Resources {
        let mut resources = Resources::default();
        for (name, quantity) in map {
            resources.set(name, &quantity.0);
        }
        resources
    }

    fn set(&mut self, name: &str, quantity: &str) {
        match name {
            "cpu" => self.milli_cpu = parse_milli(quantity).unwrap_or(0),
            "memory" => self.memory = parse_units(quantity).unwrap_or(0),
            "ephemeral-storage" => self.ephemeral_storage = parse_units(quantity).unwrap_or(0),
            "pods" => {}
            other => {
                self.scalar
                    .insert(other.to_string(), parse_units(quantity).unwrap_or(0));
            }
        }
    }

    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        for (name, value) in &other.scalar {
            *self.scalar.entry(name.clone()).or_default() += value;
        }
    }

    pub fn subtract(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        for (name, value) in &other.scalar {
            *self.scalar.entry(name.clone()).or_default() -= value;
        }
        self.scalar.retain(|_, v| *v != 0);
    }

    /// Each resource at the larger of the two amounts.
    pub fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (name, value) in &other.scalar {
            let entry = self.scalar.entry(name.clone()).or_default();
            *entry = (*entry).max(*value);
        }
    }
}

/// What a pod requests: upstream's `PodRequests`. Regular containers and restartable
/// init containers (sidecars) run together; each ordinary init container runs alone
/// next to the sidecars started before it; the pod needs the larger of the two, plus
/// its `overhead`.
pub fn pod_requests(spec: &PodSpec) -> Resources {
    let mut running = Resources::default();
    for container in &spec.containers {
        running.add(&container_requests(container));
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for init in spec.init_containers.iter().flatten() {
        let requests = container_requests(init);
        if init.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&requests);
            init_peak.max_with(&sidecars);
        } else {
            let mut alone = sidecars.clone();
            alone.add(&requests);
            init_peak.max_with(&alone);
        }
    }
    running.add(&sidecars);
    running.max_with(&init_peak);
    if let Some(overhead) = &spec.overhead {
        running.add(&Resources::from_map(overhead));
    }
    running
}

/// CPU and memory as scoring counts them: a container that requests nothing is taken
/// to use [`DEFAULT_MILLI_CPU`] and [`DEFAULT_MEMORY`].
pub fn non_zero_requests(spec: &PodSpec) -> (i64, i64) {
    let mut cpu = 0;
    let mut memory = 0;
    for container in &spec.containers {
        let requests = container_requests(container);
        cpu += if requests.milli_cpu == 0 {
            DEFAULT_MILLI_CPU
        } else {
            requests.milli_cpu
        };
        memory += if requests.memory == 0 {
            DEFAULT_MEMORY
        } else {
            requests.memory
        };
    }
    (cpu, memory)
}

/// A container's requests; a resource with only a limit requests its limit, as the API
/// defaults it upstream.
fn container_requests(container: &Container) -> Resources {
    let Some(resources) = &container.resources else {
        return Resources::default();
    };
    let mut merged = resources.limits.clone().unwrap_or_default();
    merged.extend(resources.requests.clone().unwrap_or_default());
    Resources::from_map(&merged)
}

/// A node's allocatable resources and how many pods it takes (`allocatable.pods`,
/// 110 when unset, as the kubelet's default).
pub fn node_allocatable(node: &Node) -> (Resources, i64) {
    let allocatable = node
        .status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()));
    match allocatable {
        Some(map) => {
            let pods = map
                .get("pods")
                .and_then(|q| parse_units(&q.0))
                .unwrap_or(110);
            (Resources::from_map(map), pods)
        }
        None => (Resources::default(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_parse_like_the_api() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("1"), Some(1000));
        assert_eq!(parse_milli("0.1"), Some(100));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_units("128Mi"), Some(128 * 1024 * 1024));
        assert_eq!(parse_units("1G"), Some(1_000_000_000));
        assert_eq!(parse_units("8Gi"), Some(8 * 1024 * 1024 * 1024));
        assert_eq!(parse_units("1e3"), Some(1000));
        assert_eq!(parse_units("500m"), Some(1));
        assert_eq!(parse_units("12abc"), None);
    }

    #[test]
    fn init_containers_sidecars_and_overhead_follow_upstream() {
        let spec: PodSpec = serde_json::from_value(json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}},
                {"name": "b", "resources": {"limits": {"cpu": "200m"}}},
            ],
            "initContainers": [
                {"name": "big-init", "resources": {"requests": {"cpu": "1", "memory": "50Mi"}}},
                {"name": "sidecar", "restartPolicy": "Always",
                 "resources": {"requests": {"cpu": "50m", "memory": "10Mi"}}},
            ],
            "overhead": {"cpu": "10m"},
        }))
        .unwrap();
        let requests = pod_requests(&spec);
        // cpu: max(100 + 200 + 50 sidecar, 1000 init alone) + 10 overhead.
        assert_eq!(requests.milli_cpu, 1010);
        // memory: max(100Mi + 10Mi, 50Mi) + 0.
        assert_eq!(requests.memory, 110 * 1024 * 1024);
        // Scoring: b has no memory request, so it counts the default.
        assert_eq!(
            non_zero_requests(&spec),
            (300, 100 * 1024 * 1024 + DEFAULT_MEMORY)
        );
    }
}
