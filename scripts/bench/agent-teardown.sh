#!/usr/bin/env bash
# Remove what a stopped k3rs agent left on this machine, found by its node name and data
# dir and acted on by process id, never by process name:
#
#   scripts/bench/agent-teardown.sh NODE DATA_DIR
#
# Stopping k3rs stops containerd but, by design, not the containers. This kills the runc
# shims of this node's containerd and every process left in the node's cgroups
# (/sys/fs/cgroup/*/k3rs-NODE), removes those cgroups bottom-up, unmounts everything
# under DATA_DIR and /run/k3rs/NODE (deepest first), deletes the network namespaces the
# node's pods were in (the `cni-*` ones whose inode one of those processes had; their
# veths go with them), cni0 when no pod is left on it, and /run/k3rs/NODE.
# The end-to-end harness (tests/harness/agent.rs) does the same in Rust.
set -uo pipefail

[ $# -eq 2 ] || { echo "usage: $0 NODE DATA_DIR" >&2; exit 2; }
node=$1
data_dir=$(realpath -m "$2")
run_dir=/run/k3rs/$node
left=()

# Process ids whose command line (arguments joined by spaces) contains every argument.
pids_matching() {
    local pid cmdline needle ok
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        [ "$pid" = "$$" ] && continue
        # The process may be gone by now: the redirection's error is silenced too.
        cmdline=$(tr '\0' ' ' 2>/dev/null <"$dir/cmdline") || continue
        ok=1
        for needle in "$@"; do
            [[ $cmdline == *"$needle"* ]] || { ok=""; break; }
        done
        [ -n "$ok" ] && echo "$pid"
    done
}

kill_and_wait() {
    local pid
    [ $# -gt 0 ] || return 0
    kill -KILL "$@" 2>/dev/null
    for _ in $(seq 1 100); do
        for pid in "$@"; do
            [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] && break
            pid=""
        done
        [ -z "$pid" ] && return 0
        sleep 0.05
    done
}

# containerd normally dies with k3rs (death signal); then the shims of this node.
kill_and_wait $(pids_matching "$data_dir/agent/etc/containerd/config.toml")
kill_and_wait $(pids_matching containerd-shim "$run_dir/containerd/containerd.sock")

# Processes in the node's cgroups, then the cgroups, children first. The network
# namespaces of those processes are noted first: they are the pods' namespaces.
mapfile -t cgroups < <(find /sys/fs/cgroup -mindepth 1 -maxdepth 2 -type d -name "k3rs-$node" 2>/dev/null)
host_netns=$(stat -L -c %i /proc/self/ns/net)
declare -A pod_netns=()
for root in "${cgroups[@]}"; do
    while IFS= read -r pid; do
        inode=$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null) || continue
        [ "$inode" != "$host_netns" ] && pod_netns[$inode]=1
    done < <(find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null)
done
for _ in $(seq 1 50); do
    pids=()
    for root in "${cgroups[@]}"; do
        while IFS= read -r state; do
            [ "$(cat "$state")" = THAWED ] || echo THAWED >"$state" 2>/dev/null
        done < <(find "$root" -name freezer.state 2>/dev/null)
        mapfile -t -O "${#pids[@]}" pids < <(find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null)
    done
    [ ${#pids[@]} -eq 0 ] && break
    kill -KILL "${pids[@]}" 2>/dev/null
    sleep 0.1
done
for root in "${cgroups[@]}"; do
    find "$root" -depth -type d 2>/dev/null | while IFS= read -r dir; do
        for _ in $(seq 1 50); do
            rmdir "$dir" 2>/dev/null && break
            [ -d "$dir" ] || break
            sleep 0.1
        done
    done
    [ -d "$root" ] && left+=("cgroup $root")
done

# Mounts under the data dir and the run dir, deepest first (mountinfo escapes spaces).
while IFS= read -r mount; do
    umount -l "$mount" 2>/dev/null || left+=("mount $mount")
done < <(awk -v a="$data_dir" -v b="$run_dir" '
    { p = $5; gsub(/\\040/, " ", p) }
    p == a || index(p, a "/") == 1 || p == b || index(p, b "/") == 1 { print gsub("/", "/", p) "\t" p }
' /proc/self/mountinfo | sort -rn | cut -f2-)

# The pods' network namespaces (their veths go with them), then an unused bridge.
for ns in /var/run/netns/cni-*; do
    [ -e "$ns" ] || continue
    inode=$(stat -L -c %i "$ns" 2>/dev/null) || continue
    if [ -n "${pod_netns[$inode]:-}" ]; then
        ip netns delete "${ns##*/}" 2>/dev/null || left+=("netns ${ns##*/}")
    fi
done
# Another agent's pods may still hang on cni0: only an empty bridge goes. The kernel
# drops a deleted netns's veth a moment later (work queue): give the ports 3 s to go.
for _ in $(seq 30); do
    [ -n "$(ls /sys/class/net/cni0/brif 2>/dev/null)" ] || break
    sleep 0.1
done
if [ -d /sys/class/net/cni0 ] && [ -z "$(ls /sys/class/net/cni0/brif 2>/dev/null)" ]; then
    ip link delete cni0 2>/dev/null || left+=("link cni0")
fi

rm -rf "$run_dir" 2>/dev/null || left+=("$run_dir")
rmdir /run/k3rs 2>/dev/null

if [ ${#left[@]} -gt 0 ]; then
    printf 'agent teardown left: %s\n' "${left[@]}" >&2
    exit 1
fi
