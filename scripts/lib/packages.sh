# shellcheck shell=bash
# shellcheck disable=SC2034  # the lists are used by the scripts that source this file
# The Debian packages k3rs needs, in one place, for scripts/install.sh and scripts/test.sh.
# Source it, then call `ensure_packages LIST...` with the lists below.

# What a node runs: containerd, runc and the CNI plugins run the pods; the portmap plugin
# needs iptables; the overlay and the service proxy program nftables; setpriv (util-linux)
# ties containerd's life to k3rs's; ip (iproute2), kill (procps) and modprobe (kmod).
K3RS_RUNTIME_PACKAGES=(containerd runc containernetworking-plugins iptables nftables
    util-linux iproute2 procps kmod ca-certificates)
# What building k3rs needs besides Rust: a C toolchain (ring, SQLite, the pause program),
# protoc for the CRI protobuf definitions.
K3RS_BUILD_PACKAGES=(build-essential pkg-config protobuf-compiler)
# What the test suite and the benchmarks run: busybox-static for the test images, GNU tar,
# python3 (image layouts, UDP probes), ping, openssl and curl, iperf3 and jq (overlay
# benchmark).
K3RS_TEST_PACKAGES=(busybox-static tar python3 iputils-ping openssl curl iperf3 jq)

# Install whichever of the named packages are missing (as root, with apt-get); without
# apt-get or root, name what is missing and fail.
ensure_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    else
        echo "missing packages: ${missing[*]} (install them, or run this script as root on Debian)" >&2
        return 1
    fi
}
