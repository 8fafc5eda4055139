//! The Node's conditions as upstream's kubelet words them, computed from what the status
//! loop observed. A condition keeps its lastTransitionTime while its status stays.

use serde_json::{json, Value};

use super::eviction::{Threshold, Thresholds};

/// What the status loop saw this round.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub runtime_ready: bool,
    /// Why the runtime is not ready (CRI `Status` conditions), for the Ready message.
    pub runtime_message: String,
    pub network_ready: bool,
    pub memory_capacity: u64,
    pub memory_available: u64,
    pub disk_capacity: u64,
    pub disk_available: u64,
    pub inodes_total: u64,
    pub inodes_free: u64,
    pub pid_limit: u64,
    pub pids_used: u64,
}

/// (type, status, reason, message) for every condition the kubelet owns, with the
/// pressure conditions decided by the hard eviction thresholds.
pub fn evaluate(
    o: &Observed,
    limits: &Thresholds,
) -> Vec<(&'static str, &'static str, &'static str, String)> {
    let crossed = |t: Option<Threshold>, available: u64, capacity: u64| {
        t.is_some_and(|t| t.crossed(available, capacity))
    };
    let memory_pressure = crossed(
        limits.memory_available,
        o.memory_available,
        o.memory_capacity,
    );
    // Images live on the node's filesystem, so nodefs and imagefs are one statvfs.
    let disk_pressure = o.disk_capacity > 0
        && (crossed(limits.nodefs_available, o.disk_available, o.disk_capacity)
            || crossed(limits.imagefs_available, o.disk_available, o.disk_capacity)
            || crossed(limits.nodefs_inodes_free, o.inodes_free, o.inodes_total)
            || crossed(limits.imagefs_inodes_free, o.inodes_free, o.inodes_total));
    let pid_pressure = o.pid_limit > 0
        && crossed(
            limits.pid_available,
            o.pid_limit - o.pids_used.min(o.pid_limit),
            o.pid_limit,
        );
    let mut out = vec![
        match memory_pressure {
            true => (
                "MemoryPressure",
                "True",
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available".to_string(),
            ),
            false => (
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available".to_string(),
            ),
        },
        match disk_pressure {
            true => (
                "DiskPressure",
                "True",
                "KubeletHasDiskPressure",
                "kubelet has disk pressure".to_string(),
            ),
            false => (
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure".to_string(),
            ),
        },
        match pid_pressure {
            true => (
                "PIDPressure",
                "True",
                "KubeletHasInsufficientPID",
                "kubelet has insufficient PID available".to_string(),
            ),
            false => (
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available".to_string(),
            ),
        },
    ];
    let ready = match (o.runtime_ready, o.network_ready) {
        (true, true) => ("Ready", "True", "KubeletReady", "kubelet is posting ready status".to_string()),
        (false, _) => ("Ready", "False", "KubeletNotReady", format!("container runtime is down: {}", o.runtime_message)),
        (true, false) => ("Ready", "False", "KubeletNotReady", "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:cni plugin not initialized".to_string()),
    };
    out.push(ready);
    out.push(match o.network_ready {
        true => (
            "NetworkUnavailable",
            "False",
            "FlannelIsUp",
            "Flannel is running on this node".to_string(),
        ),
        false => (
            "NetworkUnavailable",
            "True",
            "NoRouteCreated",
            "Node created without a route".to_string(),
        ),
    });
    out
}

/// The conditions as JSON, keeping each previous lastTransitionTime whose status did not
/// change; heartbeat times are `now`.
pub fn render(
    observed: &Observed,
    limits: &Thresholds,
    previous: &[Value],
    now: &str,
) -> Vec<Value> {
    evaluate(observed, limits)
        .into_iter()
        .map(|(kind, status, reason, message)| {
            let old = previous.iter().find(|c| c["type"] == kind);
            let transition = match old {
                Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
                _ => json!(now),
            };
            json!({
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": transition,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Observed {
        Observed {
            runtime_ready: true,
            network_ready: true,
            memory_capacity: 16 << 30,
            memory_available: 8 << 30,
            disk_capacity: 100,
            disk_available: 50,
            inodes_total: 100,
            inodes_free: 50,
            pid_limit: 1000,
            pids_used: 10,
            ..Default::default()
        }
    }

    #[test]
    fn healthy_node_is_ready_without_pressure() {
        let c = evaluate(&healthy(), &Thresholds::default());
        let ready = c.iter().find(|c| c.0 == "Ready").unwrap();
        assert_eq!((ready.1, ready.2), ("True", "KubeletReady"));
        assert!(c
            .iter()
            .filter(|c| c.0.ends_with("Pressure"))
            .all(|c| c.1 == "False"));
    }

    #[test]
    fn pressure_and_not_ready() {
        let mut o = healthy();
        o.memory_available = 1;
        o.disk_available = 5;
        o.network_ready = false;
        let c = evaluate(&o, &Thresholds::default());
        let get = |t: &str| c.iter().find(|c| c.0 == t).unwrap().1;
        assert_eq!(get("MemoryPressure"), "True");
        assert_eq!(get("DiskPressure"), "True");
        assert_eq!(get("Ready"), "False");
        assert_eq!(get("NetworkUnavailable"), "True");
    }

    #[test]
    fn a_given_eviction_hard_replaces_the_defaults() {
        let mut o = healthy();
        o.disk_available = 5;
        let limits = Thresholds::parse("nodefs.available<1%").unwrap();
        let c = evaluate(&o, &limits);
        let get = |t: &str| c.iter().find(|c| c.0 == t).unwrap().1;
        assert_eq!(get("DiskPressure"), "False");
        o.memory_available = 1;
        assert_eq!(evaluate(&o, &limits)[0], evaluate(&healthy(), &limits)[0]);
    }

    #[test]
    fn transition_time_kept_while_status_stays() {
        let limits = Thresholds::default();
        let first = render(&healthy(), &limits, &[], "t1");
        let second = render(&healthy(), &limits, &first, "t2");
        let ready = second.iter().find(|c| c["type"] == "Ready").unwrap();
        assert_eq!(ready["lastTransitionTime"], "t1");
        assert_eq!(ready["lastHeartbeatTime"], "t2");
    }
}
