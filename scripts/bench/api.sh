#!/usr/bin/env bash
# API server benchmark: builds release binaries, starts a fresh `k3rs server` on a free
# loopback port with a throwaway data dir, and prints
#   1. the server's idle RSS,
#   2. ConfigMap create/get/list throughput with p50/p99 latency at 1, 8 and 32 clients,
#   3. watch delivery latency to 100 watchers,
#   4. the server's RSS after the load.
# Figures are printed, never judged; the exit status is non-zero only if the server fails.
# Extra arguments are passed to k3rs-loadgen (see `k3rs-loadgen --help`).
set -euo pipefail

# shellcheck source=scripts/bench/server.sh
source "$(dirname "${BASH_SOURCE[0]}")/server.sh"

status=0
"$target/k3rs-loadgen" --kubeconfig "$kubeconfig" --server-pid "$server_pid" "$@" || status=$?

if kill -0 "$server_pid" 2>/dev/null; then
    echo "server RSS after load: $(rss_mib) MiB"
else
    echo "k3rs server died during the load; log tail:" >&2
    tail -n 50 "$work/k3rs.log" >&2
    status=1
fi
if [[ $status -ne 0 ]]; then
    echo "# server failures (see above); log tail:" >&2
    tail -n 20 "$work/k3rs.log" >&2
fi
exit "$status"
