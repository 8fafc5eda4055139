#!/usr/bin/env bash
# shellcheck disable=SC2016  # the single-quoted scripts run inside the fresh root, not here
# Check the README's two commands on a fresh Debian 12 root, not on this (hand-grown)
# machine: debootstrap a minimal bookworm root, clone this checkout into it, then
#
#   1. with the uplink (packages and crates must be downloaded):
#        K3RS_SKIP_START=true ./scripts/install.sh      (prerequisites + release build)
#        the test packages and `cargo fetch`             (what test.sh would download)
#   2. in an isolated network namespace (no route out, as every k3rs test must run):
#        ./scripts/install.sh                             (starts `k3rs server`)
#        kubectl get nodes                                (the node turns Ready)
#        ./scripts/test.sh                                (the whole suite, offline)
#
# The root is entered the way a container runtime would: its own mount namespace with the
# root pivoted to "/" (runc cannot set up containers under a plain chroot). What the
# machine image itself provides is bind-mounted read-only: the Rust toolchain (rustup),
# kubectl, and the CA certificates the package registries are reached through.
#
#   sudo ./scripts/fresh-root-check.sh [WORK_DIR]     (default /var/tmp/k3rs-fresh-root)
#
# Prints how long each step took. Needs root, debootstrap and a Debian mirror.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${1:-/var/tmp/k3rs-fresh-root}
root=$work/root
netns=k3rs-fresh-$$
[ "$(id -u)" = 0 ] || { echo "fresh-root-check: run as root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "fresh-root-check: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }

cleanup() {
    ip netns del "$netns" 2>/dev/null || true
}
trap cleanup EXIT

step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%T)"; }

if [ ! -x "$root/bin/bash" ]; then
    step "debootstrap bookworm"
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    time debootstrap --variant=minbase bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >/dev/null
fi
# The machine image's CA certificates (the registries may sit behind a TLS proxy).
cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
cp /etc/resolv.conf "$root/etc/resolv.conf"
# A second run reuses the clone (and its build) and moves it to this checkout's HEAD.
if [ -d "$root/root/k3rs/.git" ]; then
    git -C "$root/root/k3rs" fetch -q "$here" HEAD && git -C "$root/root/k3rs" reset -q --hard FETCH_HEAD
else
    git clone -q "$here" "$root/root/k3rs"
fi
ip netns add "$netns"
ip -n "$netns" link set lo up

# enter NET COMMAND...: NET is "uplink" or "isolated".
enter() {
    local net=$1
    shift
    local nsenter=()
    [ "$net" = isolated ] && nsenter=(nsenter "--net=/run/netns/$netns")
    "${nsenter[@]}" unshare -m --propagation private bash -c '
        R=$1; shift
        mount --bind "$R" "$R"
        mount -t proc proc "$R/proc"
        # A sysfs of its own shows the network namespace it was mounted in (the tests look
        # for links in /sys/class/net); the cgroup tree stays the host one, as runc needs it.
        mount -t sysfs sysfs "$R/sys"
        mount --rbind /sys/fs/cgroup "$R/sys/fs/cgroup"
        mount --rbind /dev "$R/dev"
        mount -t tmpfs tmpfs "$R/run"
        mkdir -p "$R/root/.rustup" "$R/root/.cargo/bin" "$R/usr/lib/google-cloud-sdk"
        mount --bind -o ro /root/.rustup "$R/root/.rustup"
        mount --bind -o ro /root/.cargo/bin "$R/root/.cargo/bin"
        if [ -d /usr/lib/google-cloud-sdk ]; then
            mount --bind -o ro /usr/lib/google-cloud-sdk "$R/usr/lib/google-cloud-sdk"
            ln -sfn ../lib/google-cloud-sdk/bin/kubectl "$R/usr/bin/kubectl"
        fi
        cd "$R" && mkdir -p .oldroot && pivot_root . .oldroot && cd / && umount -l /.oldroot
        update-ca-certificates >/dev/null 2>&1 || true
        exec env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
            PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            "$@"
    ' enter "$root" "$@"
}

step "install.sh: prerequisites and release build (uplink)"
time enter uplink bash -c 'cd /root/k3rs && K3RS_SKIP_START=true ./scripts/install.sh'
step "test packages and crates (uplink)"
time enter uplink bash -c 'cd /root/k3rs && source scripts/lib/packages.sh &&
    ensure_packages "${K3RS_TEST_PACKAGES[@]}" && cargo fetch --locked -q'
step "install.sh: start k3rs server, node Ready (isolated)"
time enter isolated bash -c 'cd /root/k3rs && ./scripts/install.sh &&
    export KUBECONFIG=/etc/rancher/k3rs/k3rs.yaml; status=1;
    for _ in $(seq 60); do
        kubectl get nodes 2>/dev/null | grep -q " Ready " && { status=0; break; }; sleep 1;
    done;
    kubectl get nodes -o wide; kill "$(cat /run/k3rs.pid)"; exit $status'
step "test.sh (isolated, offline)"
time enter isolated env CARGO_NET_OFFLINE=true bash -c 'cd /root/k3rs && ./scripts/test.sh'
step "done"
