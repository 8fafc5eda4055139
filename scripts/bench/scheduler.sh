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

# shellcheck source=scripts/bench/server.sh
source "$(dirname "${BASH_SOURCE[0]}")/server.sh"

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
