#!/usr/bin/env bash
# Run the whole k3rs test suite: formatting, lints, unit tests and end-to-end tests
# against real `k3rs server` processes. Installs what it needs first.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

# shellcheck source=scripts/lib/packages.sh
source scripts/lib/packages.sh
ensure_packages "${K3RS_RUNTIME_PACKAGES[@]}" "${K3RS_BUILD_PACKAGES[@]}" \
    "${K3RS_TEST_PACKAGES[@]}"
# kubectl drives the end-to-end tests; a missing one must fail, not skip.
command -v kubectl >/dev/null || { echo "kubectl is required for the end-to-end tests" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy 2>/dev/null || true

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast
# Tests marked #[ignore] need root and network namespaces (the overlay between two
# namespaces, a supervised containerd); CI runs as root, so they run here too.
echo "== cargo test -- --ignored (root-only tests)"
if [ "$(id -u)" != 0 ]; then
    echo "the root-only tests (overlay, containerd) need root" >&2
    exit 1
fi
cargo test --workspace --locked --no-fail-fast -- --ignored
