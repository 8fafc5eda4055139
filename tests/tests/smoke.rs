//! The server starts, answers kubectl, and stops cleanly on SIGTERM.

use k3rs_e2e::{ok, K3rs};

#[test]
fn server_starts_serves_and_stops() {
    let mut server = K3rs::start();
    let namespaces = ok(server.kubectl(&["get", "namespaces"]));
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(namespaces.contains(ns), "{namespaces}");
    }
    let version = ok(server.kubectl(&["version"]));
    assert!(version.contains("Server Version: v1.33"), "{version}");
    let status = server.stop();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        server.log()
    );
}
