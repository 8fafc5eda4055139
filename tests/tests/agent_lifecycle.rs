//! Pod lifecycle on the agent's node (needs root, containerd, runc and the CNI plugins;
//! see `k3rs_e2e::agent`): init containers run in order before the main container;
//! `restartPolicy: Never` pods end Succeeded or Failed by their exit code; deleting a pod
//! stops its processes, frees its IP and removes the object; graceful termination runs
//! the preStop hook, then SIGTERM, and SIGKILL only after the grace period.

use std::time::{Duration, Instant};

use k3rs_e2e::agent::{
    condition, container_status, init_container_status, phase, pod_ip, process_running,
    AgentServer, BUSYBOX,
};
use k3rs_e2e::ok;

fn pods(host_dir: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: init-demo
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: work
    emptyDir: {{}}
  initContainers:
  - name: first
    image: {BUSYBOX}
    command: ["sh", "-c", "sleep 1; echo one >> /work/order"]
    volumeMounts: [{{name: work, mountPath: /work}}]
  - name: second
    image: {BUSYBOX}
    # Fails (and so blocks the pod) unless the first one finished before it started.
    command: ["sh", "-c", "test \"$(cat /work/order)\" = one && echo two >> /work/order"]
    volumeMounts: [{{name: work, mountPath: /work}}]
  containers:
  - name: main
    image: {BUSYBOX}
    command: ["sh", "-c", "cat /work/order; exec sleep 3600"]
    volumeMounts: [{{name: work, mountPath: /work}}]
---
apiVersion: v1
kind: Pod
metadata:
  name: succeeds
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: {BUSYBOX}
    command: ["sh", "-c", "echo done; exit 0"]
---
apiVersion: v1
kind: Pod
metadata:
  name: fails
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: {BUSYBOX}
    command: ["sh", "-c", "echo failing; exit 1"]
---
apiVersion: v1
kind: Pod
metadata:
  name: victim
spec:
  # sleep as PID 1 ignores SIGTERM: it goes with the SIGKILL after the grace period.
  terminationGracePeriodSeconds: 3
  containers:
  - name: main
    image: {BUSYBOX}
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: graceful
spec:
  terminationGracePeriodSeconds: 20
  volumes:
  - name: host
    hostPath: {{path: "{host_dir}", type: DirectoryOrCreate}}
  containers:
  - name: main
    image: {BUSYBOX}
    volumeMounts: [{{name: host, mountPath: /host}}]
    command:
    - sh
    - -c
    - |
      trap 'if [ -f /host/prestop ]; then echo "TERM after preStop" > /host/term; else echo "TERM before preStop" > /host/term; fi; exit 0' TERM
      while true; do sleep 0.1; done
    lifecycle:
      preStop:
        exec:
          command: ["sh", "-c", "echo ran > /host/prestop"]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_phases_deletion_and_graceful_termination() {
    let k = AgentServer::start();
    k.wait_node_ready(Duration::from_secs(30)).await;
    let host_dir = k.dir.path().join("graceful");
    k.apply(&pods(host_dir.to_str().unwrap()));

    // ---- init containers, in order, before the main container.
    let pod = k.wait_pod_ready("init-demo").await;
    assert_eq!(condition(&pod, "Initialized"), Some("True"));
    for name in ["first", "second"] {
        let status = init_container_status(&pod, name)
            .unwrap_or_else(|| panic!("no status of init container {name}: {:?}", pod.status));
        let terminated = status
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .unwrap_or_else(|| panic!("init container {name} is not terminated: {status:?}"));
        assert_eq!(terminated.exit_code, 0, "{name}: {terminated:?}");
        assert_eq!(terminated.reason.as_deref(), Some("Completed"), "{name}");
        assert_eq!(status.restart_count, 0, "{name} ran once");
    }
    let first = init_container_status(&pod, "first").unwrap();
    let second = init_container_status(&pod, "second").unwrap();
    let first_done = first
        .state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap()
        .finished_at
        .clone()
        .unwrap()
        .0;
    let second_start = second
        .state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap()
        .started_at
        .clone()
        .unwrap()
        .0;
    assert!(
        first_done <= second_start,
        "second started before first finished"
    );
    assert_eq!(
        ok(k.kubectl(&["logs", "init-demo", "-c", "main"])),
        "one\ntwo\n"
    );
    assert_eq!(ok(k.kubectl(&["logs", "init-demo", "-c", "first"])), "");

    // ---- restartPolicy Never: the exit code decides the phase.
    let pod = k
        .wait_pod("succeeds", "Succeeded", Duration::from_secs(60), |p| {
            phase(p) == "Succeeded"
        })
        .await;
    let terminated = container_status(&pod, "main")
        .unwrap()
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(
        (terminated.exit_code, terminated.reason.as_deref()),
        (0, Some("Completed"))
    );
    assert_eq!(condition(&pod, "Ready"), Some("False"));
    assert_eq!(ok(k.kubectl(&["logs", "succeeds"])), "done\n");
    let pod = k
        .wait_pod("fails", "Failed", Duration::from_secs(60), |p| {
            phase(p) == "Failed"
        })
        .await;
    let status = container_status(&pod, "main").unwrap();
    let terminated = status.state.clone().unwrap().terminated.unwrap();
    assert_eq!(
        (terminated.exit_code, terminated.reason.as_deref()),
        (1, Some("Error"))
    );
    assert_eq!(status.restart_count, 0, "never restarted");
    assert_eq!(ok(k.kubectl(&["logs", "fails"])), "failing\n");

    // ---- deleting a pod: processes gone, IP freed, object gone.
    let pod = k.wait_pod_ready("victim").await;
    let ip = pod_ip(&pod);
    let container_pid = k.container_pid(
        container_status(&pod, "main")
            .unwrap()
            .container_id
            .as_deref()
            .unwrap(),
    );
    assert!(process_running(container_pid));
    let cmdline = std::fs::read(format!("/proc/{container_pid}/cmdline")).unwrap();
    assert_eq!(
        cmdline, b"sleep\x003600\x00",
        "the PID is the container's process"
    );
    let lease = k.ipam_lease(&ip);
    assert!(
        lease.exists(),
        "host-local records {ip} at {}",
        lease.display()
    );
    let started = Instant::now();
    ok(k.kubectl(&["delete", "pod", "victim", "--wait=true", "--timeout=60s"]));
    let took = started.elapsed();
    println!("victim deleted in {took:?} (grace period 3 s)");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(20),
        "deletion waits for the 3 s grace period, then kills: took {took:?}"
    );
    assert!(
        !process_running(container_pid),
        "the container's process is gone"
    );
    assert!(!lease.exists(), "host-local released {ip}");
    let gone = k.kubectl(&["get", "pod", "victim"]);
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("NotFound"),
        "pod object removed"
    );

    // ---- graceful termination: preStop, then SIGTERM, which the container handles.
    let pod = k.wait_pod_ready("graceful").await;
    let pid = k.container_pid(
        container_status(&pod, "main")
            .unwrap()
            .container_id
            .as_deref()
            .unwrap(),
    );
    let started = Instant::now();
    ok(k.kubectl(&["delete", "pod", "graceful", "--wait=true", "--timeout=60s"]));
    let took = started.elapsed();
    println!("graceful deleted in {took:?}");
    assert_eq!(
        std::fs::read_to_string(host_dir.join("prestop")).unwrap(),
        "ran\n"
    );
    assert_eq!(
        std::fs::read_to_string(host_dir.join("term")).unwrap_or_default(),
        "TERM after preStop\n",
        "the container got SIGTERM after the preStop hook"
    );
    assert!(
        took < Duration::from_secs(15),
        "a container that exits on SIGTERM ends the deletion early, not after the 20 s grace period: {took:?}"
    );
    assert!(!process_running(pid));
}
