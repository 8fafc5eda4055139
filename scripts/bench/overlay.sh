#!/usr/bin/env bash
# Overlay benchmark on the namespace dev cluster (scripts/dev-cluster.sh), in one run:
#
#  1. TCP throughput with iperf3, 1 stream and 4 streams, 10 s each (BENCH_SECONDS):
#     node-to-node over the underlay (veth + bridge), pod-to-pod across two nodes over
#     VXLAN, and pod-to-pod over host-gw; printed in Gbit/s and as a ratio to the underlay.
#     Each is measured once per link rate in BENCH_LINK_RATES (default
#     "unlimited 10gbit 1gbit"): `unlimited` is the bare veth, which has no wire and so
#     measures CPU per packet on this machine; a rate shapes both nodes' uplink (tbf on
#     eth0) like a NIC of that speed, which measures what the overlay costs on a wire.
#  2. How long a new node takes to become reachable from pods on the others after it turns
#     Ready: a ping from an existing pod to a pod on the new node every 100 ms.
#
# The busybox test image has no iperf3, so iperf3 runs from the host inside the pod's
# network namespace (`nsenter --net=/proc/<pid>/ns/net`, the pid of the pod's container),
# which measures exactly the pod network path. Needs root; installs iperf3 with apt if
# missing. Everything it starts is torn down by `dev-cluster.sh down`, also on failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dev=$here/scripts/dev-cluster.sh
seconds=${BENCH_SECONDS:-10}
export K3RS_DEV_DIR=${K3RS_DEV_DIR:-/tmp/k3rs-bench-cluster}

[ "$(id -u)" = 0 ] || { echo "overlay.sh: must run as root" >&2; exit 1; }
if ! command -v iperf3 >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null
fi
command -v jq >/dev/null || { echo "overlay.sh: needs jq (apt-get install jq)" >&2; exit 1; }

server_pid=""
cleanup() {
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
    "$dev" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

kc() { "$dev" kubectl "$@"; }

pod() { # NAME NODE
    kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  nodeSelector: {kubernetes.io/hostname: $2}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox:1.35
    imagePullPolicy: Never
    command: [sleep, "3600"]
EOF
}

# The host PID of a pod's container (its netns is the pod's).
pod_pid() { # POD NODE
    local id
    id=$(kc get pod "$1" -o jsonpath='{.status.containerStatuses[0].containerID}')
    cat "/run/k3rs/$2/containerd/io.containerd.runtime.v2.task/k8s.io/${id#containerd://}/init.pid"
}

# iperf3 client in netns file $1 to $2 with $3 streams; prints Gbit/s.
iperf() { # CLIENT_NETNS_FILE SERVER_IP STREAMS
    nsenter --net="$1" iperf3 -c "$2" -P "$3" -t "$seconds" -J |
        jq -r '.end.sum_received.bits_per_second / 1e9'
}

# Start an iperf3 server in netns file $1 (recorded for cleanup).
iperf_server() {
    [ -z "$server_pid" ] || { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
    nsenter --net="$1" iperf3 -s >/dev/null 2>&1 &
    server_pid=$!
    sleep 0.5
}

read -r -a rates <<<"${BENCH_LINK_RATES:-unlimited 10gbit 1gbit}"

# Shape both nodes' uplink to RATE, or remove the shaping (`unlimited`). The burst
# holds a few 64 KB GSO frames, so tbf never has to split them.
shape() { # RATE
    local n
    for n in 1 2; do
        if [ "$1" = unlimited ]; then
            nsenter --net=/run/netns/k3rs-node$n tc qdisc del dev eth0 root 2>/dev/null || true
        else
            nsenter --net=/run/netns/k3rs-node$n tc qdisc replace dev eth0 root tbf \
                rate "$1" burst 1mb latency 20ms
        fi
    done
}

declare -A result
measure() { # LABEL CLIENT_NETNS_FILE SERVER_NETNS_FILE SERVER_IP
    iperf_server "$3"
    result[$1,1]=$(iperf "$2" "$4" 1)
    result[$1,4]=$(iperf "$2" "$4" 4)
    echo "  $1: 1 stream ${result[$1,1]} Gbit/s, 4 streams ${result[$1,4]} Gbit/s" >&2
}

pods_across() { # BACKEND: two-node cluster, a pod on each; sets pod IPs and netns files
    "$dev" up 2 --backend "$1" >/dev/null
    pod bench1 k3rs-node1
    pod bench2 k3rs-node2
    kc wait --for=condition=Ready pod/bench1 pod/bench2 --timeout=90s >/dev/null
    client_ns=/proc/$(pod_pid bench1 k3rs-node1)/ns/net
    server_ns=/proc/$(pod_pid bench2 k3rs-node2)/ns/net
    server_ip=$(kc get pod bench2 -o jsonpath='{.status.podIP}')
}

echo "== VXLAN (and the underlay between the same two nodes)" >&2
pods_across vxlan
for rate in "${rates[@]}"; do
    shape "$rate"
    measure "underlay@$rate" /run/netns/k3rs-node1 /run/netns/k3rs-node2 172.31.250.12
    measure "vxlan@$rate" "$client_ns" "$server_ns" "$server_ip"
done
shape unlimited

# Time to reachability of a new node, on the running VXLAN cluster.
echo "== a third node joins" >&2
"$dev" join 3 >/dev/null
joined=$(date +%s.%N)
until kc get node k3rs-node3 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True; do
    sleep 0.1
done
ready=$(date +%s.%N)
pod bench3 k3rs-node3
kc wait --for=condition=Ready pod/bench3 --timeout=90s >/dev/null
pod_ready=$(date +%s.%N)
target=$(kc get pod bench3 -o jsonpath='{.status.podIP}')
# ping from bench1's netns every 100 ms until bench3 answers (bounded: 60 s).
reach=""
for _ in $(seq 1 600); do
    if nsenter --net="$client_ns" ping -c 1 -W 0.1 "$target" >/dev/null 2>&1; then
        reach=$(date +%s.%N); break
    fi
    sleep 0.1
done
[ -n "$reach" ] || { echo "overlay.sh: node 3's pod never became reachable" >&2; exit 1; }
"$dev" down >/dev/null

echo "== host-gw" >&2
pods_across host-gw
for rate in "${rates[@]}"; do
    shape "$rate"
    measure "host-gw@$rate" "$client_ns" "$server_ns" "$server_ip"
done
"$dev" down >/dev/null

ratio() { echo "$1 $2" | awk '{ printf "%.2f", ($2 > 0 ? $1 / $2 : 0) }'; }
echo
echo "TCP throughput (iperf3, ${seconds}s per run), Gbit/s and ratio to the underlay at the same link rate:"
printf '%-28s %10s %7s %10s %7s\n' path "1 stream" ratio "4 streams" ratio
for rate in "${rates[@]}"; do
    for path in underlay vxlan host-gw; do
        key="$path@$rate"
        printf '%-28s %10.2f %7s %10.2f %7s\n' "$key" "${result[$key,1]}" \
            "$(ratio "${result[$key,1]}" "${result[underlay@$rate,1]}")" "${result[$key,4]}" \
            "$(ratio "${result[$key,4]}" "${result[underlay@$rate,4]}")"
    done
done
echo
awk -v j="$joined" -v r="$ready" -v p="$pod_ready" -v x="$reach" 'BEGIN {
    printf "new node: Ready %.2f s after its agent started; its pod Ready %.2f s later;\n", r - j, p - r
    printf "          reachable from a pod on node 1 %.2f s after the node turned Ready (%.2f s after its pod was Ready)\n", x - r, x - p
}'
