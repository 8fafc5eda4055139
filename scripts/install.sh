#!/usr/bin/env bash
# Install k3rs on this machine from the source checkout and start `k3rs server`.
#
#   sudo ./scripts/install.sh            # build, install to /usr/local/bin, start the server
#   K3RS_SKIP_START=true ./scripts/install.sh   # build and install only
#
# Extra arguments are passed to `k3rs server` (e.g. --tls-san my.host). Like k3s, the
# server keeps its state in /var/lib/rancher/k3rs and writes the admin kubeconfig to
# /etc/rancher/k3rs/k3rs.yaml. With systemd the server runs as the `k3rs` unit;
# otherwise it runs in the background with its log in /var/log/k3rs.log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin_dir=${K3RS_BIN_DIR:-/usr/local/bin}

info() { printf '[k3rs] %s\n' "$*"; }
fatal() { printf '[k3rs] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fatal "run as root (the server manages /var/lib/rancher/k3rs and /etc/rancher/k3rs)"

# shellcheck source=scripts/lib/packages.sh
source "$here/scripts/lib/packages.sh"
ensure_packages "${K3RS_RUNTIME_PACKAGES[@]}" "${K3RS_BUILD_PACKAGES[@]}" \
    || fatal "install the packages above first"
command -v cargo >/dev/null || fatal "cargo is required to build k3rs (install Rust first)"

info "building k3rs (release)"
(cd "$here" && cargo build --release --locked -p k3rs)
install -m 0755 "$here/target/release/k3rs" "$bin_dir/k3rs"
info "installed $bin_dir/k3rs"

if [ "${K3RS_SKIP_START:-false}" = true ]; then
    exit 0
fi

if [ -d /run/systemd/system ]; then
    cat > /etc/systemd/system/k3rs.service <<UNIT
[Unit]
Description=Lightweight Kubernetes (k3rs)
After=network-online.target

[Service]
Type=simple
ExecStart=$bin_dir/k3rs server $*
KillMode=process
Restart=always
RestartSec=5s

[Install]
WantedBy=multi-user.target
UNIT
    systemctl daemon-reload
    systemctl enable --now k3rs
    info "started the k3rs systemd unit"
else
    if [ -f /run/k3rs.pid ] && kill -0 "$(cat /run/k3rs.pid)" 2>/dev/null; then
        info "stopping the running k3rs server (pid $(cat /run/k3rs.pid))"
        kill "$(cat /run/k3rs.pid)"
        while kill -0 "$(cat /run/k3rs.pid)" 2>/dev/null; do sleep 0.2; done
    fi
    nohup "$bin_dir/k3rs" server "$@" >>/var/log/k3rs.log 2>&1 &
    echo $! > /run/k3rs.pid
    info "started k3rs server (pid $!, log /var/log/k3rs.log)"
fi

kubeconfig=/etc/rancher/k3rs/k3rs.yaml
for _ in $(seq 1 100); do
    if [ -f "$kubeconfig" ] && KUBECONFIG=$kubeconfig kubectl get --raw /readyz >/dev/null 2>&1; then
        info "ready: export KUBECONFIG=$kubeconfig; kubectl get namespaces"
        exit 0
    fi
    sleep 0.2
done
fatal "k3rs server did not become ready; see /var/log/k3rs.log or journalctl -u k3rs"
