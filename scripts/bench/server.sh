# Sourced by the benchmark scripts: builds the release binaries, starts a fresh
# `k3rs server` on a free loopback port with a throwaway data dir, waits until it is
# ready, and stops it (by process id) and removes the data dir on exit.
# Sets: root, target, work, port, kubeconfig, server_pid, server_started_ns; defines
# rss_mib.
#
# The server runs with --disable-agent, so the API and scheduler benchmarks measure the
# API server alone, unless BENCH_AGENT=1. The sourcing script may set, before sourcing:
#   server_extra_args  an array of extra `k3rs server` flags;
#   bench_before_start a function run once the work dir exists, before the server starts;
#   bench_after_stop   a function run after the server stopped, before the work dir goes.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

echo "# building release binaries" >&2
cargo build --release --quiet -p k3rs -p k3rs-loadgen
target="${CARGO_TARGET_DIR:-$root/target}/release"

work="$(mktemp -d -t k3rs-bench-XXXXXX)"
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
    if declare -F bench_after_stop >/dev/null; then
        bench_after_stop || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
kubeconfig="$work/kubeconfig.yaml"
: >"$work/config.yaml"

server_args=(
    --data-dir "$work/data"
    --https-listen-port "$port"
    --bind-address 127.0.0.1
    --node-ip 127.0.0.1
    --write-kubeconfig "$kubeconfig"
    --config "$work/config.yaml"
)
if [[ "${BENCH_AGENT:-0}" != 1 ]]; then
    server_args+=(--disable-agent)
fi
if declare -p server_extra_args >/dev/null 2>&1; then
    server_args+=("${server_extra_args[@]}")
fi
if declare -F bench_before_start >/dev/null; then
    bench_before_start
fi

server_started_ns=$(date +%s%N)
"$target/k3rs" server "${server_args[@]}" >"$work/k3rs.log" 2>&1 &
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

echo "k3rs server pid $server_pid on 127.0.0.1:$port ($target/k3rs)"
# With the agent, the sourcing script measures from here (node Ready, then idle RSS).
if [[ "${BENCH_AGENT:-0}" != 1 ]]; then
    sleep 2
    echo "server idle RSS after start: $(rss_mib) MiB"
fi
