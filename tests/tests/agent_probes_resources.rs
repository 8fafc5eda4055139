//! Probes and resource limits on the agent's node (needs root, containerd, runc and the
//! CNI plugins; see `k3rs_e2e::agent`): failing liveness probes (exec and httpGet)
//! restart the container with `Unhealthy` and `Killing` events; a readiness probe gates
//! the Ready condition and the Service's Endpoints and EndpointSlices both ways; CPU and
//! memory limits reach the container's cgroup; going over the memory limit is reported as
//! `OOMKilled`.

use std::time::{Duration, Instant};

use k3rs_e2e::agent::{condition, container_status, is_ready, phase, pod_ip, AgentServer, BUSYBOX};
use k3rs_e2e::ok;
use k3rs_e2e::wait::eventually_blocking;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

fn probe_pods() -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: liveness-exec
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "touch /tmp/healthy; exec sleep 3600"]
    livenessProbe:
      exec:
        command: ["cat", "/tmp/healthy"]
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Pod
metadata:
  name: liveness-http
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    # httpd serves 8080; the probe asks 8081, where nothing listens.
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    livenessProbe:
      httpGet:
        port: 8081
        path: /
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Pod
metadata:
  name: gated
  labels: {{app: gated}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports:
    - containerPort: 8080
    readinessProbe:
      exec:
        command: ["test", "-f", "/tmp/ready"]
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: gated
spec:
  selector: {{app: gated}}
  ports:
  - port: 80
    targetPort: 8080
"#
    )
}

fn resource_pods() -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: limited
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    resources:
      requests: {{cpu: 250m, memory: 32Mi}}
      limits: {{cpu: 500m, memory: 64Mi}}
---
apiVersion: v1
kind: Pod
metadata:
  name: oom
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: {BUSYBOX}
    # dd fills a 64 MiB buffer, twice the limit; swap is limited along with memory.
    command: ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]
    resources:
      limits: {{memory: 32Mi}}
"#
    )
}

/// Events of one object, as `kubectl get events` lists them: (reason, message).
fn events(k: &AgentServer, name: &str) -> Vec<(String, String)> {
    let json = ok(k.kubectl(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={name}"),
        "-o",
        "json",
    ]));
    let list: Value = serde_json::from_str(&json).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or("").to_string(),
                e["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn restart_count(pod: &Pod) -> i32 {
    container_status(pod, "app").map_or(0, |c| c.restart_count)
}

/// The pod IPs the Service's Endpoints list as ready and as not ready.
fn endpoints(k: &AgentServer, service: &str) -> (Vec<String>, Vec<String>) {
    let out = k.kubectl(&["get", "endpoints", service, "-o", "json"]);
    if !out.status.success() {
        return (Vec::new(), Vec::new());
    }
    let endpoints: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for subset in endpoints["subsets"].as_array().into_iter().flatten() {
        for (key, list) in [
            ("addresses", &mut ready),
            ("notReadyAddresses", &mut not_ready),
        ] {
            for address in subset[key].as_array().into_iter().flatten() {
                list.push(address["ip"].as_str().unwrap().to_string());
            }
        }
    }
    (ready, not_ready)
}

/// (address, ready) of every endpoint in the Service's EndpointSlices.
fn slice_endpoints(k: &AgentServer, service: &str) -> Vec<(String, bool)> {
    let json = ok(k.kubectl(&[
        "get",
        "endpointslices.discovery.k8s.io",
        "-l",
        &format!("kubernetes.io/service-name={service}"),
        "-o",
        "json",
    ]));
    let list: Value = serde_json::from_str(&json).unwrap();
    let mut found = Vec::new();
    for slice in list["items"].as_array().unwrap() {
        for endpoint in slice["endpoints"].as_array().into_iter().flatten() {
            let ready = endpoint["conditions"]["ready"].as_bool().unwrap_or(false);
            for address in endpoint["addresses"].as_array().unwrap() {
                found.push((address.as_str().unwrap().to_string(), ready));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_restart_and_gate_readiness_and_endpoints() {
    let k = AgentServer::start();
    k.wait_node_ready(Duration::from_secs(30)).await;
    k.apply(&probe_pods());

    // ---- liveness (exec): healthy until the file goes, then restarted.
    let pod = k.wait_pod_ready("liveness-exec").await;
    let first_id = container_status(&pod, "app").unwrap().container_id.clone();
    // Healthy probes for a few periods do not restart it.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        restart_count(&k.pod("liveness-exec").await),
        0,
        "a passing liveness probe restarted the container"
    );
    k.exec("liveness-exec", &["rm", "/tmp/healthy"]);
    let pod = k
        .wait_pod(
            "liveness-exec",
            "restarted by its liveness probe",
            Duration::from_secs(30),
            |p| restart_count(p) >= 1 && is_ready(p),
        )
        .await;
    let status = container_status(&pod, "app").unwrap();
    assert_ne!(
        status.container_id, first_id,
        "a restart is a new container"
    );
    let last = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("lastState.terminated after a liveness restart");
    // SIGKILL after the 1 s grace period (sleep as PID 1 ignores SIGTERM) or SIGTERM.
    assert!(
        matches!(last.exit_code, 137 | 143),
        "exit code of the killed container: {last:?}"
    );
    let events_exec = events(&k, "liveness-exec");
    assert!(
        events_exec
            .iter()
            .any(|(reason, message)| reason == "Unhealthy"
                && message.starts_with("Liveness probe failed")),
        "Unhealthy event: {events_exec:?}"
    );
    assert!(
        events_exec
            .iter()
            .any(|(reason, message)| reason == "Killing"
                && message.contains("failed liveness probe")),
        "Killing event: {events_exec:?}"
    );
    let describe = ok(k.kubectl(&["describe", "pod", "liveness-exec"]));
    for text in [
        "Unhealthy",
        "Liveness probe failed",
        "Killing",
        "Restart Count:  1",
    ] {
        assert!(
            describe.contains(text),
            "describe lacks {text:?}:\n{describe}"
        );
    }

    // ---- liveness (httpGet) on a port nobody serves.
    k.wait_pod(
        "liveness-http",
        "restarted by its httpGet liveness probe",
        Duration::from_secs(30),
        |p| restart_count(p) >= 1,
    )
    .await;
    let events_http = events(&k, "liveness-http");
    assert!(
        events_http
            .iter()
            .any(|(reason, message)| reason == "Unhealthy"
                && message.starts_with("Liveness probe failed")
                && message.contains("8081")),
        "Unhealthy event naming the port: {events_http:?}"
    );

    // ---- readiness: not Ready, not an endpoint, until the file exists.
    let pod = k
        .wait_pod("gated", "running", Duration::from_secs(60), |p| {
            container_status(p, "app")
                .is_some_and(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
        })
        .await;
    let ip = pod_ip(&pod);
    std::thread::sleep(Duration::from_secs(3));
    let pod = k.pod("gated").await;
    assert_eq!(phase(&pod), "Running");
    assert_eq!(condition(&pod, "Ready"), Some("False"), "{:?}", pod.status);
    assert_eq!(condition(&pod, "ContainersReady"), Some("False"));
    assert!(!container_status(&pod, "app").unwrap().ready);
    assert_eq!(container_status(&pod, "app").unwrap().started, Some(true));
    eventually_blocking(
        Duration::from_secs(10),
        "the not-ready pod listed under notReadyAddresses",
        || {
            let (ready, not_ready) = endpoints(&k, "gated");
            assert!(
                !ready.contains(&ip),
                "not-ready pod {ip} in Endpoints addresses"
            );
            not_ready.contains(&ip)
        },
    );
    assert!(
        !slice_endpoints(&k, "gated").contains(&(ip.clone(), true)),
        "a not-ready pod is not a ready EndpointSlice endpoint"
    );
    k.exec("gated", &["touch", "/tmp/ready"]);
    let started = Instant::now();
    k.wait_pod(
        "gated",
        "Ready once /tmp/ready exists",
        Duration::from_secs(10),
        is_ready,
    )
    .await;
    println!("Ready {:?} after the file appeared", started.elapsed());
    eventually_blocking(
        Duration::from_secs(10),
        "the ready pod in the Endpoints addresses",
        || endpoints(&k, "gated").0.contains(&ip),
    );
    eventually_blocking(
        Duration::from_secs(10),
        "the ready pod as a ready EndpointSlice endpoint",
        || slice_endpoints(&k, "gated").contains(&(ip.clone(), true)),
    );

    // And back: a failing readiness probe takes it out again without a restart.
    k.exec("gated", &["rm", "/tmp/ready"]);
    k.wait_pod(
        "gated",
        "not Ready once /tmp/ready is gone",
        Duration::from_secs(10),
        |p| condition(p, "Ready") == Some("False"),
    )
    .await;
    eventually_blocking(
        Duration::from_secs(10),
        "the pod out of the Endpoints addresses",
        || {
            let (ready, not_ready) = endpoints(&k, "gated");
            !ready.contains(&ip) && not_ready.contains(&ip)
        },
    );
    assert_eq!(
        restart_count(&k.pod("gated").await),
        0,
        "readiness failures never restart"
    );
    // A failing readiness probe is an `Unhealthy` event even when the probe printed
    // nothing, as upstream's prober records every failure.
    let events_gated = events(&k, "gated");
    assert!(
        events_gated
            .iter()
            .any(|(reason, message)| reason == "Unhealthy"
                && message.starts_with("Readiness probe failed")),
        "{events_gated:?}"
    );
}

/// Value of a cgroup v1 file of a host process: `controller` is the hierarchy name as it
/// appears in `/proc/<pid>/cgroup` (e.g. `memory`, `cpu,cpuacct`).
fn cgroup_file(pid: u32, controller: &str, file: &str) -> (String, String) {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = cgroups
        .lines()
        .find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
            names
                .split(',')
                .any(|n| n == controller)
                .then(|| path.to_string())
        })
        .unwrap_or_else(|| panic!("process {pid} is in no {controller} cgroup:\n{cgroups}"));
    // The hierarchy is mounted under the joined controller names (`cpu,cpuacct`).
    let mount = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.split(',').any(|n| n == controller) && !name.contains(' '))
        .unwrap();
    let file_path = format!("/sys/fs/cgroup/{mount}{path}/{file}");
    let value =
        std::fs::read_to_string(&file_path).unwrap_or_else(|e| panic!("reading {file_path}: {e}"));
    (path, value.trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_reach_the_cgroup_and_oom_is_reported() {
    let k = AgentServer::start();
    k.wait_node_ready(Duration::from_secs(30)).await;
    k.apply(&resource_pods());

    // ---- limits in the container's cgroup, seen from the host and from inside.
    let pod = k.wait_pod_ready("limited").await;
    let id = container_status(&pod, "app")
        .unwrap()
        .container_id
        .clone()
        .unwrap();
    let pid = k.container_pid(&id);
    let (memory_path, memory_limit) = cgroup_file(pid, "memory", "memory.limit_in_bytes");
    assert_eq!(
        memory_limit,
        (64u64 << 20).to_string(),
        "memory.limit_in_bytes"
    );
    assert!(
        memory_path.starts_with(&format!("{}/", k.cgroup_parent())),
        "container cgroup {memory_path} is under the node's cgroup parent {}",
        k.cgroup_parent()
    );
    let (_, quota) = cgroup_file(pid, "cpu", "cpu.cfs_quota_us");
    let (_, period) = cgroup_file(pid, "cpu", "cpu.cfs_period_us");
    assert_eq!(
        (quota.as_str(), period.as_str()),
        ("50000", "100000"),
        "500m CPU limit as CFS quota/period"
    );
    let (_, shares) = cgroup_file(pid, "cpu", "cpu.shares");
    assert_eq!(shares, "256", "250m CPU request as cpu.shares");
    let inside = k.exec(
        "limited",
        &["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"],
    );
    assert_eq!(
        inside.trim(),
        (64u64 << 20).to_string(),
        "the limit as the container sees it"
    );
    assert_eq!(
        pod.status.as_ref().unwrap().qos_class.as_deref(),
        Some("Burstable")
    );

    // ---- over the limit: OOMKilled.
    let pod = k
        .wait_pod("oom", "terminated", Duration::from_secs(60), |p| {
            container_status(p, "hog")
                .is_some_and(|c| c.state.as_ref().is_some_and(|s| s.terminated.is_some()))
        })
        .await;
    let terminated = container_status(&pod, "hog")
        .unwrap()
        .state
        .as_ref()
        .unwrap()
        .terminated
        .clone()
        .unwrap();
    assert_eq!(
        terminated.reason.as_deref(),
        Some("OOMKilled"),
        "{terminated:?}"
    );
    assert_eq!(terminated.exit_code, 137, "{terminated:?}");
    let pod = k
        .wait_pod("oom", "Failed", Duration::from_secs(10), |p| {
            phase(p) == "Failed"
        })
        .await;
    assert_eq!(container_status(&pod, "hog").unwrap().restart_count, 0);
    let describe = ok(k.kubectl(&["describe", "pod", "oom"]));
    assert!(describe.contains("OOMKilled"), "{describe}");
}
