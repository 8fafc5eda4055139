#!/usr/bin/env bash
# Scheduler benchmark: builds release binaries, starts a fresh `k3rs server` on a free
# loopback port with a throwaway data dir, registers 100 fake Ready nodes (no kubelet),
# and prints
#   1. the time from the first of 3,000 pod creates to all of them bound (pods bound/s),
#   2. the time from creating a 1,000-replica Deployment to all its pods bound (needs the
#      deployment and replicaset controllers; the phase times out otherwise),
#   3. the server's CPU time and RSS per phase, and its RSS and peak RSS (VmHWM) after.
# Figures are printed, never judged; the exit status is non-zero only if something fails
# or a phase does not finish. Extra arguments go to `k3rs-loadgen schedule` (--nodes,
# --pods, --replicas, --concurrency, --timeout-seconds).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

echo "# building release binaries" >&2
cargo build --release --quiet -p k3rs -p k3rs-loadgen
target="${CARGO_TARGET_DIR:-$root/target}/release"

work="$(mktemp -d -t k3rs-bench-sched-XXXXXX)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 150); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
kubeconfig="$work/kubeconfig.yaml"
: >"$work/config.yaml"

"$target/k3rs" server \
    --data-dir "$work/data" \
    --https-listen-port "$port" \
    --bind-address 127.0.0.1 \
    --node-ip 127.0.0.1 \
    --write-kubeconfig "$kubeconfig" \
    --config "$work/config.yaml" \
    >"$work/k3rs.log" 2>&1 &
server_pid=$!

# Ready once the kubeconfig exists and /readyz answers over TLS.
ready=""
for _ in $(seq 1 300); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "k3rs server exited early; log:" >&2
        cat "$work/k3rs.log" >&2
        exit 1
    fi
    if [[ -s "$kubeconfig" ]] && curl -sfk --max-time 1 "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
        ready=1
        break
    fi
    sleep 0.1
done
if [[ -z "$ready" ]]; then
    echo "k3rs server not ready in 30 s; log:" >&2
    cat "$work/k3rs.log" >&2
    exit 1
fi

rss_mib() {
    awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$server_pid/status"
}

sleep 2
echo "k3rs server pid $server_pid on 127.0.0.1:$port ($target/k3rs)"
echo "server idle RSS after start: $(rss_mib) MiB"

status=0
"$target/k3rs-loadgen" schedule --kubeconfig "$kubeconfig" --server-pid "$server_pid" "$@" || status=$?

if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "k3rs server died during the load; log tail:" >&2
    tail -n 50 "$work/k3rs.log" >&2
    status=1
fi
if [[ $status -ne 0 ]]; then
    echo "# failures (see above); server log tail:" >&2
    tail -n 20 "$work/k3rs.log" >&2
fi
exit "$status"
