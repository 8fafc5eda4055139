//! What kubectl streams through the API server from the kubelet of the agent's node
//! (needs root, containerd, runc and the CNI plugins; see `k3rs_e2e::agent`): `logs`
//! (`-f`, `--tail`, `--previous`, `--timestamps`), `exec` (output, exit codes, stdin),
//! `cp` both ways, `port-forward`, and `attach`.

use std::time::{Duration, Instant};

use k3rs_e2e::agent::{container_status, http_get, AgentServer, BUSYBOX};
use k3rs_e2e::{free_port, ok};

fn pods() -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: logger
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: state
    emptyDir: {{}}
  containers:
  - name: logger
    image: {BUSYBOX}
    volumeMounts:
    - {{name: state, mountPath: /state}}
    # Each run numbers itself (the emptyDir outlives container restarts), prints five
    # lines and exits 1 once told to through a file.
    command:
    - sh
    - -c
    - |
      n=$(cat /state/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /state/n
      for i in 1 2 3 4 5; do echo "run $n line $i"; done
      while [ ! -f /state/stop-$n ]; do sleep 0.1; done
      echo "run $n done"
      exit 1
---
apiVersion: v1
kind: Pod
metadata:
  name: ticker
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: ticker
    image: {BUSYBOX}
    command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"]
---
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: {BUSYBOX}
    command: ["sh", "-c", "mkdir -p /www && echo port-forward works > /www/index.html && exec httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Pod
metadata:
  name: echoer
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: echoer
    image: {BUSYBOX}
    stdin: true
    command: ["sh", "-c", "while read line; do echo \"got: $line\"; done"]
"#
    )
}

/// 256 KiB of bytes that are not text, so that `kubectl cp` must carry them verbatim.
fn blob() -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..256 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_exec_cp_port_forward_and_attach_through_kubectl() {
    let k = AgentServer::start();
    k.wait_node_ready(Duration::from_secs(30)).await;
    k.apply(&pods());
    for pod in ["logger", "ticker", "web", "echoer"] {
        k.wait_pod_ready(pod).await;
    }

    // ---- logs: all, --tail, --timestamps.
    let first_run: String = (1..=5).map(|i| format!("run 1 line {i}\n")).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = ok(k.kubectl(&["logs", "logger"]));
        if logs == first_run {
            break;
        }
        assert!(Instant::now() < deadline, "kubectl logs logger:\n{logs}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        ok(k.kubectl(&["logs", "logger", "--tail=2"])),
        "run 1 line 4\nrun 1 line 5\n"
    );
    let stamped = ok(k.kubectl(&["logs", "logger", "--timestamps", "--tail=1"]));
    let (stamp, line) = stamped.trim_end().split_once(' ').unwrap();
    assert_eq!(line, "run 1 line 5");
    assert!(
        stamp.len() >= 20
            && stamp.as_bytes()[4] == b'-'
            && stamp.contains('T')
            && stamp.ends_with('Z'),
        "RFC 3339 timestamp: {stamped:?}"
    );

    // ---- logs --previous after the container exits and is restarted.
    k.exec("logger", &["touch", "/state/stop-1"]);
    k.wait_pod(
        "logger",
        "restarted once and Ready",
        Duration::from_secs(30),
        |p| container_status(p, "logger").is_some_and(|c| c.restart_count == 1 && c.ready),
    )
    .await;
    let second_run: String = (1..=5).map(|i| format!("run 2 line {i}\n")).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = ok(k.kubectl(&["logs", "logger"]));
        if logs == second_run {
            break;
        }
        assert!(Instant::now() < deadline, "logs of the second run:\n{logs}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        ok(k.kubectl(&["logs", "logger", "--previous"])),
        format!("{first_run}run 1 done\n")
    );

    // ---- logs -f delivers lines written after it started.
    let now = ok(k.kubectl(&["logs", "ticker", "--tail=1"]));
    let last: u64 = now
        .strip_prefix("tick ")
        .and_then(|n| n.strip_suffix('\n'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("kubectl logs ticker --tail=1 printed {now:?}"));
    let mut follow = k.kubectl_background(&["logs", "-f", "ticker"], false);
    let lines = follow.read_until(Duration::from_secs(10), |line| {
        line.strip_prefix("tick ")
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= last + 3)
    });
    follow.stop();
    // Everything from the start, in order, with no gaps.
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(
            line,
            &format!("tick {}", i + 1),
            "logs -f output: {lines:?}"
        );
    }

    // ---- exec: output, stderr and exit codes.
    assert_eq!(k.exec("web", &["echo", "hello"]), "hello\n");
    let out = k.kubectl(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "kubectl exec exit code");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err\n"));
    let missing = k.kubectl(&["exec", "web", "--", "cat", "/no/such/file"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("No such file"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let no_binary = k.kubectl(&["exec", "web", "--", "/no-such-binary"]);
    assert!(
        !no_binary.status.success(),
        "exec of a missing binary fails"
    );

    // exec -i: stdin reaches the process and EOF ends it.
    let counted = ok(k.kubectl_stdin(&["exec", "-i", "web", "--", "wc", "-c"], "hello world\n"));
    assert_eq!(counted.trim(), "12");
    let echoed = ok(k.kubectl_stdin(
        &[
            "exec",
            "-i",
            "web",
            "--",
            "sh",
            "-c",
            "cat > /tmp/in; cat /tmp/in",
        ],
        "line one\nline two\n",
    ));
    assert_eq!(echoed, "line one\nline two\n");

    // ---- cp: into the pod and back, byte for byte.
    let local = k.dir.path().join("blob.bin");
    let data = blob();
    std::fs::write(&local, &data).unwrap();
    ok(k.kubectl(&["cp", local.to_str().unwrap(), "web:/tmp/blob.bin"]));
    assert_eq!(
        k.exec("web", &["sh", "-c", "wc -c < /tmp/blob.bin"]).trim(),
        data.len().to_string()
    );
    let back = k.dir.path().join("blob-back.bin");
    ok(k.kubectl(&["cp", "web:/tmp/blob.bin", back.to_str().unwrap()]));
    let copied = std::fs::read(&back).unwrap();
    assert!(
        copied == data,
        "kubectl cp round trip changed the bytes ({} bytes back)",
        copied.len()
    );

    // ---- port-forward: two HTTP requests through one forwarder.
    let local_port = free_port();
    let mapping = format!("{local_port}:8080");
    let mut forward = k.kubectl_background(&["port-forward", "pod/web", &mapping], false);
    forward.read_until(Duration::from_secs(15), |line| {
        line.contains(&format!("Forwarding from 127.0.0.1:{local_port}"))
    });
    for _ in 0..2 {
        let (status, body) = http_get(&format!("127.0.0.1:{local_port}"), "/");
        assert!(status.contains(" 200 "), "{status}");
        assert_eq!(body, "port-forward works\n");
    }
    forward.stop();

    // ---- attach -i: our stdin reaches the container's, its stdout comes back.
    let mut attach = k.kubectl_background(&["attach", "-i", "echoer"], true);
    // The first line may be written before the stream is attached: keep sending.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut answered = false;
    while !answered && Instant::now() < deadline {
        attach.write_stdin(b"ping\n");
        answered = attach
            .try_read_until(Duration::from_secs(1), |line| line == "got: ping")
            .is_ok();
    }
    let stderr = attach.stderr();
    attach.stop();
    assert!(
        answered,
        "kubectl attach -i echoer never echoed our line; stderr:\n{stderr}"
    );
}
