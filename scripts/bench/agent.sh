#!/usr/bin/env bash
# Agent benchmark: builds release binaries and the test images, starts a fresh
# `k3rs server` with its agent (containerd, runc, CNI; needs root) on a free loopback port
# with a throwaway data dir and the images in place, and prints
#   1. the time from starting `k3rs server` to its Node's Ready condition True (the API is
#      polled every 50 ms),
#   2. pod start latency (image present), from a pod's create request to a watch event
#      showing it Ready, timed on the client: of one pod alone, then of 100 bare busybox
#      pods created at once as p50/p90/p99/max, with the time until all 100 are Ready,
#   3. RSS of the k3rs process, of containerd and of the runc shims (summed), idle before
#      the pods and with the 100 pods running.
# Targets (issue 5): node Ready <= 5 s after start; pod start p99 <= 2 s; k3rs RSS with
# 100 pods <= 120 MB. Figures are printed with their targets, never judged; the exit
# status is non-zero only if something fails or does not finish.
#
# Agent runs on one machine are serialized with the end-to-end tests through the lock
# /tmp/k3rs-e2e-agent.lock (one cni0, one 10.42.0.0/24). On exit the server is stopped and
# what its node left (containers, cgroups, mounts, netns) is removed by agent-teardown.sh.
#
#   sudo scripts/bench/agent.sh [PODS]     (default 100)
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pods=${1:-100}

[[ $(id -u) -eq 0 ]] || { echo "the agent benchmark needs root (containerd, cgroups, netns)" >&2; exit 1; }
for tool in containerd runc setpriv ip iptables python3 kubectl; do
    command -v "$tool" >/dev/null || { echo "$tool is required (see scripts/test.sh)" >&2; exit 1; }
done
for plugin in bridge host-local portmap loopback; do
    [[ -x /usr/lib/cni/$plugin ]] || { echo "/usr/lib/cni/$plugin is required (containernetworking-plugins)" >&2; exit 1; }
done

exec {agent_lock}>/tmp/k3rs-e2e-agent.lock
if ! flock -n "$agent_lock"; then
    echo "# waiting for the agent lock (an agent test or benchmark is running)" >&2
    flock "$agent_lock"
fi

images="${CARGO_TARGET_DIR:-$bench_dir/../../target}/test-images"
"$bench_dir/../build-images.sh" "$images" >/dev/null

node="bench-agent-$$"
kubelet_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
server_extra_args=(--node-name "$node" --kubelet-arg "port=$kubelet_port")

bench_before_start() {
    mkdir -p "$work/data/agent/images"
    cp "$images/busybox.tar" "$work/data/agent/images/"
}
bench_after_stop() {
    "$bench_dir/agent-teardown.sh" "$node" "$work/data"
}

BENCH_AGENT=1
# shellcheck source=scripts/bench/server.sh
source "$bench_dir/server.sh"

# The admin client credentials, for the measuring client below.
for field in certificate-authority-data:ca.crt client-certificate-data:client.crt client-key-data:client.key; do
    key=${field%%:*}
    case $key in
        certificate-authority-data) path='{.clusters[0].cluster.certificate-authority-data}' ;;
        client-certificate-data) path='{.users[0].user.client-certificate-data}' ;;
        client-key-data) path='{.users[0].user.client-key-data}' ;;
    esac
    kubectl --kubeconfig "$kubeconfig" config view --raw -o jsonpath="$path" | base64 -d >"$work/${field##*:}"
done

status=0
PORT=$port NODE=$node PODS=$pods WORK=$work SERVER_PID=$server_pid \
    SERVER_STARTED_NS=$server_started_ns \
    python3 - <<'PY' || status=$?
import http.client
import json
import math
import os
import ssl
import sys
import threading
import time

port = int(os.environ["PORT"])
node = os.environ["NODE"]
pods = int(os.environ["PODS"])
work = os.environ["WORK"]
server_pid = int(os.environ["SERVER_PID"])
started_ns = int(os.environ["SERVER_STARTED_NS"])

context = ssl.create_default_context(cafile=f"{work}/ca.crt")
context.load_cert_chain(f"{work}/client.crt", f"{work}/client.key")


def connect(timeout=30):
    return http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=timeout)


def call(conn, method, path, body=None):
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    payload = resp.read()
    return resp.status, (json.loads(payload) if payload else None)


def ready(obj):
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def processes():
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    yield int(entry), f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue


def memory(label):
    config = f"{work}/data/agent/etc/containerd/config.toml"
    socket = f"/run/k3rs/{node}/containerd/containerd.sock"
    containerd = sum(rss_kib(p) for p, c in processes() if c.startswith("containerd ") and config in c)
    shims = [p for p, c in processes() if "containerd-shim" in c and socket in c]
    shim_kib = sum(rss_kib(p) for p in shims)
    k3rs = rss_kib(server_pid)
    print(
        f"{label}: k3rs {k3rs / 1024:.1f} MiB, containerd {containerd / 1024:.1f} MiB, "
        f"shims {shim_kib / 1024:.1f} MiB ({len(shims)} processes)"
    )
    return k3rs


def cpu_seconds(pid, children=False):
    """User+system CPU time of a process (and of its reaped children) in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields after the command: state is [0], utime [11], stime [12], cutime [13], cstime [14].
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_usage():
    """CPU seconds so far of k3rs, of containerd (with the CNI plugins it ran), of this
    node's shims (with runc), and the machine's busy and total time."""
    config = f"{work}/data/agent/etc/containerd/config.toml"
    socket = f"/run/k3rs/{node}/containerd/containerd.sock"
    containerd = sum(cpu_seconds(p, True) for p, c in processes() if c.startswith("containerd ") and config in c)
    shims = sum(cpu_seconds(p, True) for p, c in processes() if "containerd-shim" in c and socket in c)
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    total = sum(values) / os.sysconf("SC_CLK_TCK")
    idle = (values[3] + values[4]) / os.sysconf("SC_CLK_TCK")
    return [cpu_seconds(server_pid), containerd, shims, total - idle, total]


def percentile(values, p):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


conn = connect()
with open("/proc/loadavg") as f:
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f.read().split()[:3])} at start")

# ---- 1. node Ready after start.
deadline = time.monotonic() + 60
while True:
    code, obj = call(conn, "GET", f"/api/v1/nodes/{node}")
    if code == 200 and ready(obj):
        break
    if time.monotonic() > deadline:
        sys.exit(f"node {node} not Ready 60 s after start")
    time.sleep(0.05)
node_ready_s = (time.time_ns() - started_ns) / 1e9
print(f"node Ready after server start: {node_ready_s:.2f} s (target <= 5 s)")

# The namespace's service account must exist before pods can be created.
deadline = time.monotonic() + 30
while call(conn, "GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] != 200:
    if time.monotonic() > deadline:
        sys.exit("no default service account after 30 s")
    time.sleep(0.1)
time.sleep(5)
memory("idle RSS (node Ready + 5 s)")

def pod_manifest(name, label):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": label}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "main", "image": "busybox:1.35", "command": ["sleep", "3600"]}],
        },
    }


# ---- 2a. one pod alone (polled every 10 ms), then deleted again.
started = time.monotonic()
code, body = call(conn, "POST", "/api/v1/namespaces/default/pods", pod_manifest("bench-alone", "alone"))
assert code == 201, body
while True:
    code, obj = call(conn, "GET", "/api/v1/namespaces/default/pods/bench-alone")
    if code == 200 and ready(obj):
        break
    if time.monotonic() - started > 60:
        sys.exit("the lone pod was not Ready within 60 s")
    time.sleep(0.01)
print(f"pod start latency of one pod alone (create -> Ready): {time.monotonic() - started:.2f} s")
call(conn, "DELETE", "/api/v1/namespaces/default/pods/bench-alone")
while call(conn, "GET", "/api/v1/namespaces/default/pods/bench-alone")[0] == 200:
    time.sleep(0.1)

# ---- 2b. many pods at once: watch first, then create them all.
code, listed = call(conn, "GET", "/api/v1/namespaces/default/pods?labelSelector=bench%3Dagent")
assert code == 200, listed
resource_version = listed["metadata"]["resourceVersion"]
ready_at = {}
all_ready = threading.Event()


def watch():
    watcher = connect(timeout=300)
    watcher.request(
        "GET",
        "/api/v1/namespaces/default/pods?watch=1&labelSelector=bench%3Dagent"
        f"&resourceVersion={resource_version}",
        headers={"Accept": "application/json"},
    )
    resp = watcher.getresponse()
    while not all_ready.is_set():
        line = resp.readline()
        if not line:
            break
        event = json.loads(line)
        obj = event.get("object") or {}
        name = (obj.get("metadata") or {}).get("name")
        if event.get("type") in ("ADDED", "MODIFIED") and name and name not in ready_at and ready(obj):
            ready_at[name] = time.monotonic()
            if len(ready_at) == pods:
                all_ready.set()


threading.Thread(target=watch, daemon=True).start()
time.sleep(0.5)

names = [f"bench-{i:03d}" for i in range(pods)]
created_at = {}
failures = []


def create(chunk):
    client = connect()
    for name in chunk:
        pod = pod_manifest(name, "agent")
        created_at[name] = time.monotonic()
        code, body = call(client, "POST", "/api/v1/namespaces/default/pods", pod)
        if code != 201:
            failures.append(f"{name}: {code} {body}")


threads = [threading.Thread(target=create, args=(names[i::10],)) for i in range(10)]
cpu_before = cpu_usage()
first_create = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
if failures:
    sys.exit("pod creates failed:\n" + "\n".join(failures[:10]))
created_s = time.monotonic() - first_create
if not all_ready.wait(180):
    sys.exit(f"only {len(ready_at)} of {pods} pods Ready 180 s after the creates")
cpu = [after - before for after, before in zip(cpu_usage(), cpu_before)]
latencies = [ready_at[n] - created_at[n] for n in names]
print(
    f"pod start latency ({pods} pods, create -> Ready): p50 {percentile(latencies, 50):.2f} s, "
    f"p90 {percentile(latencies, 90):.2f} s, p99 {percentile(latencies, 99):.2f} s, "
    f"max {max(latencies):.2f} s (target p99 <= 2 s)"
)
print(
    f"{pods} pods created in {created_s:.2f} s, all Ready "
    f"{max(ready_at.values()) - first_create:.2f} s after the first create"
)

print(
    f"CPU time while they started: k3rs {cpu[0]:.1f} s, containerd (+CNI plugins) {cpu[1]:.1f} s, "
    f"shims (+runc) {cpu[2]:.1f} s; the machine was busy {cpu[3]:.1f} s of {cpu[4]:.1f} CPU-s"
)

# ---- 3. memory with the pods running.
time.sleep(5)
k3rs_kib = memory(f"RSS with {pods} pods running (+ 5 s)")
print(f"k3rs RSS with {pods} pods: {k3rs_kib * 1024 / 1e6:.1f} MB (target <= 120 MB)")
PY

if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "k3rs server died during the benchmark; log tail:" >&2
    tail -n 50 "$work/k3rs.log" >&2
    status=1
fi
if [[ $status -ne 0 ]]; then
    echo "# failures (see above); server log tail:" >&2
    tail -n 20 "$work/k3rs.log" >&2
fi
exit "$status"
