//! The controller manager and the scheduler hold their Leases in kube-system, renew them,
//! and a restarted server takes them over at once.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

use k3rs_e2e::wait::eventually;
use k3rs_e2e::K3rs;

async fn holder(leases: &Api<Lease>, name: &str) -> Option<(String, String)> {
    let lease = leases.get_opt(name).await.ok()??;
    let spec = lease.spec?;
    Some((spec.holder_identity?, format!("{:?}", spec.renew_time?)))
}

#[tokio::test]
async fn control_plane_leases_are_held_renewed_and_taken_over_after_restart() {
    let mut k = K3rs::start_with(&["--node-name", "leader-test"]);
    let leases: Api<Lease> = Api::namespaced(k.client().await, "kube-system");
    let mut first = Vec::new();
    for name in ["kube-controller-manager", "kube-scheduler"] {
        let (identity, renewed) = eventually(Duration::from_secs(20), name, || async {
            holder(&leases, name).await
        })
        .await;
        assert!(identity.starts_with("leader-test_"), "{identity}");
        // Renewed every 2 s.
        eventually(Duration::from_secs(20), "a renewal", || async {
            holder(&leases, name)
                .await
                .filter(|(_, r)| *r != renewed)
                .map(|_| ())
        })
        .await;
        first.push(identity);
    }
    k.restart();
    let leases: Api<Lease> = Api::namespaced(k.client().await, "kube-system");
    for (name, old) in ["kube-controller-manager", "kube-scheduler"]
        .iter()
        .zip(first)
    {
        // Well inside the 15 s lease duration: the new run recognised its predecessor.
        let (identity, _) = eventually(Duration::from_secs(10), "takeover", || async {
            holder(&leases, name).await.filter(|(id, _)| *id != old)
        })
        .await;
        assert!(identity.starts_with("leader-test_"), "{identity}");
    }
}
