#!/usr/bin/env bash
# A multi-node k3rs cluster on one machine, each node in its own network namespace.
#
#   scripts/dev-cluster.sh up N [--backend vxlan|host-gw|none]   start N nodes
#   scripts/dev-cluster.sh join N                                 add agent node N (2-9)
#   scripts/dev-cluster.sh down                                   stop and remove everything
#   scripts/dev-cluster.sh kubectl ARGS...                        kubectl against the cluster
#   scripts/dev-cluster.sh exec NODE CMD...                       run CMD in node NODE's netns
#
# The "underlay" is a Linux bridge `k3rs-dev0` on the host with the private address
# 172.31.250.1/24 and no other route: the host reaches the nodes (for kubectl), nothing
# is routed to the uplink. Node X lives in netns `k3rs-nodeX` with 172.31.250.1X/24 on a
# veth into the bridge. Node 1 runs `k3rs server`, the others `k3rs agent` joining it
# with the token from node 1's data dir. Every process is started with
# `nsenter --net=/run/netns/...`, not `ip netns exec`: the latter remounts /sys, which
# hides the cgroup v1 hierarchies runc needs.
#
# State (data dirs, logs, pids, kubeconfig) lives under $K3RS_DEV_DIR
# (default /tmp/k3rs-dev-cluster). `down` stops processes by the PIDs recorded there and
# by the node's own paths (data dir, /run/k3rs/<node>, cgroup /k3rs-<node>), never by name.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=${K3RS_DEV_DIR:-/tmp/k3rs-dev-cluster}
bridge=${K3RS_DEV_BRIDGE:-k3rs-dev0}
prefix=${K3RS_DEV_NET:-172.31.250}
netns_prefix=${K3RS_DEV_NETNS:-k3rs-node}
k3rs=${K3RS_BIN:-$here/target/debug/k3rs}

die() { echo "dev-cluster: $*" >&2; exit 1; }
node_ip() { echo "$prefix.$((10 + $1))"; }
node_name() { echo "${netns_prefix}$1"; }
in_node() { local n=$1; shift; nsenter --net="/run/netns/${netns_prefix}$n" "$@"; }

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

require_root() { [ "$(id -u)" = 0 ] || die "must run as root (it creates network namespaces and cgroups)"; }

images() {
    local out=$here/target/test-images
    if [ ! -f "$out/busybox.tar" ]; then
        bash "$here/scripts/build-images.sh" "$out" >&2
    fi
    echo "$out"
}

wait_for() { # SECONDS DESCRIPTION COMMAND...
    local secs=$1 what=$2; shift 2
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.5
    done
}

add_netns() { # N: the node's namespace with a veth into the bridge
    local n=$1 ns; ns=$(node_name "$n")
    ip netns add "$ns"
    ip link add "k3rs-dev-v$n" mtu 1500 type veth peer name eth0 netns "$ns"
    ip link set "k3rs-dev-v$n" master "$bridge" up
    in_node "$n" ip link set lo up
    in_node "$n" ip addr add "$(node_ip "$n")/24" dev eth0
    in_node "$n" ip link set eth0 up
}

# Add agent node N to a running cluster (does not wait for it).
join() {
    require_root
    local n=${1:-}
    [[ $n =~ ^[2-9]$ ]] || die "join needs a node number 2-9, got '${n}'"
    [ -f "$state/nodes" ] || die "no cluster is up in $state"
    [ ! -e "/run/netns/$(node_name "$n")" ] || die "node $n exists already"
    local count; count=$(cat "$state/nodes")
    [ "$n" -le "$count" ] || echo "$n" >"$state/nodes"
    add_netns "$n"
    start_node "$n" "$(cat "$state/backend")"
}

start_node() { # N BACKEND
    local n=$1 backend=$2 name ip dir
    name=$(node_name "$n"); ip=$(node_ip "$n"); dir=$state/node$n
    mkdir -p "$dir/data/agent/images"
    cp "$(images)"/busybox.tar "$dir/data/agent/images/"
    : >"$dir/config.yaml"
    local common=(--data-dir "$dir/data" --node-name "$name" --node-ip "$ip"
        --config "$dir/config.yaml" --flannel-subnet-env "$dir/subnet.env"
        --kubelet-arg port=10250)
    local cmd
    if [ "$n" = 1 ]; then
        # No --bind-address: the server's in-process clients dial 127.0.0.1, so it must
        # listen there too; in its own netns 0.0.0.0 is only loopback and 172.31.250.11.
        cmd=(server "${common[@]}" --flannel-backend "$backend"
            --write-kubeconfig "$dir/kubeconfig.yaml")
    else
        local token
        token=$(cat "$state/node1/data/server/token") || die "node 1 has no token yet"
        cmd=(agent "${common[@]}" --server "https://$(node_ip 1):6443" --token "$token"
            --node-password-file "$dir/node-password")
    fi
    # setsid: the node keeps running after this script exits; its PID is recorded.
    setsid nsenter --net="/run/netns/$name" -- "$k3rs" "${cmd[@]}" \
        </dev/null >>"$dir/k3rs.log" 2>&1 &
    echo $! >"$dir/pid"
}

up() {
    require_root
    local count=${1:-}; shift || true
    local backend=vxlan
    while [ $# -gt 0 ]; do
        case $1 in
            --backend) backend=${2:-}; shift 2 ;;
            --backend=*) backend=${1#*=}; shift ;;
            *) die "unknown option $1" ;;
        esac
    done
    [[ $count =~ ^[1-9]$ ]] || die "up needs a node count 1-9, got '${count}'"
    case $backend in vxlan | host-gw | none) ;; *) die "--backend must be vxlan, host-gw or none, got '$backend'" ;; esac
    [ -x "$k3rs" ] || (cd "$here" && cargo build -q -p k3rs) || die "cannot build $k3rs"
    [ ! -e "$state/nodes" ] || die "a cluster is already up in $state (run: $0 down)"
    mkdir -p "$state"
    echo "$count" >"$state/nodes"
    echo "$backend" >"$state/backend"

    ip link add "$bridge" type bridge
    ip link set "$bridge" mtu 1500 up
    ip addr add "$prefix.1/24" dev "$bridge"
    for n in $(seq 1 "$count"); do add_netns "$n"; done

    start_node 1 "$backend"
    wait_for 60 "token" test -s "$state/node1/data/server/token" ||
        die "server did not write its token within 60 s; see $state/node1/k3rs.log"
    wait_for 60 "kubeconfig" test -s "$state/node1/kubeconfig.yaml" ||
        die "server did not write $state/node1/kubeconfig.yaml; see $state/node1/k3rs.log"
    # The server writes a kubeconfig for its own machine (127.0.0.1, as k3s does); the
    # host reaches node 1 through the bridge instead.
    sed "s#https://127.0.0.1:#https://$(node_ip 1):#" "$state/node1/kubeconfig.yaml" \
        >"$state/kubeconfig.yaml"
    for n in $(seq 2 "$count"); do start_node "$n" "$backend"; done
    if wait_for 120 "nodes" all_ready "$count"; then
        echo "cluster up: $count nodes ($backend)"
    else
        echo "dev-cluster: not all nodes Ready within 120 s; logs in $state/node*/k3rs.log" >&2
    fi
    KUBECONFIG=$state/kubeconfig.yaml kubectl get nodes -o wide || true
    echo "kubeconfig: $state/kubeconfig.yaml"
}

all_ready() {
    local ready
    ready=$(KUBECONFIG=$state/kubeconfig.yaml kubectl get nodes --no-headers 2>/dev/null |
        awk '$2 == "Ready"' | wc -l)
    [ "$ready" -ge "$1" ]
}

# Processes whose command line contains $1 (never this script or its parents).
pids_matching() {
    local pid
    for pid in $(ls /proc | grep -E '^[0-9]+$'); do
        [ "$pid" = $$ ] && continue
        { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$1" && echo "$pid"
    done
    true
}

kill_pids() { # PIDS...: SIGKILL and wait up to 5 s
    [ $# -gt 0 ] || return 0
    kill -KILL "$@" 2>/dev/null || true
    local end=$((SECONDS + 5))
    while [ $SECONDS -lt $end ]; do
        local alive=0 p
        for p in "$@"; do [ -e "/proc/$p" ] && alive=1; done
        [ $alive = 0 ] && return 0
        sleep 0.1
    done
}

teardown_node() { # N
    local n=$1 name dir run
    name=$(node_name "$n"); dir=$state/node$n; run=/run/k3rs/$name
    if [ -f "$dir/pid" ]; then
        local pid; pid=$(cat "$dir/pid")
        if kill -TERM "$pid" 2>/dev/null; then
            local end=$((SECONDS + 20))
            while [ -e "/proc/$pid" ] && [ $SECONDS -lt $end ]; do sleep 0.2; done
            kill_pids "$pid"
        fi
        rm -f "$dir/pid"
    fi
    # containerd dies with k3rs; its shims and containers do not.
    # shellcheck disable=SC2046
    kill_pids $(pids_matching "$dir/data/agent/etc/containerd/config.toml")
    # shellcheck disable=SC2046
    kill_pids $(pids_matching "$run/containerd")
    # Everything still in the node's cgroups, noting the pods' network namespaces.
    local cgroups pod_inodes="" p
    cgroups=$(find /sys/fs/cgroup -maxdepth 2 -type d -name "k3rs-$name" 2>/dev/null || true)
    for _ in 1 2 3 4 5; do
        local pids=""
        for cg in $cgroups; do
            [ -f "$cg/freezer.state" ] && echo THAWED >"$cg/freezer.state" 2>/dev/null
            pids="$pids $(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)"
        done
        pids=$(echo "$pids" | tr ' ' '\n' | grep -E '^[0-9]+$' | sort -u || true)
        [ -n "$pids" ] || break
        for p in $pids; do
            pod_inodes="$pod_inodes $(stat -L -c %i "/proc/$p/ns/net" 2>/dev/null || true)"
        done
        # shellcheck disable=SC2086
        kill_pids $pids
    done
    for cg in $cgroups; do
        find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
    # Mounts under the data dir and run dir, deepest first.
    { awk '{print $5}' /proc/self/mountinfo | grep -E "^($dir/data|$run)(/|$)" || true; } |
        awk '{print length, $0}' | sort -rn | cut -d' ' -f2- |
        while read -r m; do umount -l "$m" || true; done
    # The pods' network namespaces, found by inode.
    for f in /var/run/netns/cni-*; do
        [ -e "$f" ] || continue
        local inode; inode=$(stat -L -c %i "$f" 2>/dev/null || true)
        case " $pod_inodes " in *" $inode "*) ip netns delete "$(basename "$f")" || true ;; esac
    done
    rm -rf "$run"
    ip netns delete "$name" 2>/dev/null || true
    ip link delete "k3rs-dev-v$n" 2>/dev/null || true
}

down() {
    require_root
    local count=9
    [ -f "$state/nodes" ] && count=$(cat "$state/nodes")
    # Agents first, so the server sees them go; then the server.
    for n in $(seq "$count" -1 1); do teardown_node "$n"; done
    ip link delete "$bridge" 2>/dev/null || true
    rmdir /run/k3rs 2>/dev/null || true
    rm -rf "$state"
    echo "cluster down"
}

case ${1:-} in
    up) shift; up "$@" ;;
    down) down ;;
    join) shift; join "$@" ;;
    kubectl) shift; KUBECONFIG=$state/kubeconfig.yaml exec kubectl "$@" ;;
    exec) shift; n=${1:?node number}; shift; in_node "$n" "$@" ;;
    *) usage ;;
esac
