//! Every namespace gets a `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap
//! (the CA bundle pods use to trust the API server), as upstream's service-account and
//! root-CA publisher controllers do. Until k3rs has its controller manager this runs
//! inside the API server against its own store; it only creates what is missing.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tracing::{debug, warn};

use crate::error::Result;
use crate::object;
use crate::AppState;

const NAMESPACES_PREFIX: &str = "/registry/core/namespaces/";

async fn ensure(state: &AppState, plural: &str, ns: &str, obj: Value) -> Result<()> {
    let def = state.find("", "v1", plural).expect("built in");
    if crate::bootstrap::ensure_object(state, &def, Some(ns), obj).await? {
        debug!(namespace = ns, plural, "created");
    }
    Ok(())
}

async fn ensure_namespace(state: &AppState, namespace: &Value) -> Result<()> {
    if object::is_deleting(namespace) {
        return Ok(());
    }
    let ns = object::name(namespace).unwrap_or_default();
    ensure(
        state,
        "serviceaccounts",
        ns,
        json!({"metadata": {"name": "default"}}),
    )
    .await?;
    let ca = json!({
        "metadata": {"name": "kube-root-ca.crt", "annotations": {
            "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."
        }},
        "data": {"ca.crt": state.config.server_ca_pem},
    });
    ensure(state, "configmaps", ns, ca).await
}

/// Keep every namespace supplied until shutdown.
pub fn spawn(state: AppState) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run_once(&state).await {
                warn!(error = %e, "default service accounts: retrying");
            }
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
}

/// List all namespaces, supply them, then follow new ones until the watch ends.
async fn run_once(state: &AppState) -> Result<()> {
    let def = state.find("", "v1", "namespaces").expect("built in");
    let page = state.store.list(&def, None, None, None, None).await?;
    for ns in &page.items {
        ensure_namespace(state, ns).await?;
    }
    let mut events = state
        .store
        .backend()
        .watch(NAMESPACES_PREFIX, page.revision)
        .await?;
    loop {
        let next = tokio::select! {
            _ = state.shutdown.cancelled() => return Ok(()),
            next = events.next() => next,
        };
        match next {
            Some(Ok(event)) if event.prev.is_none() && event.kind == k3rs_store::EventKind::Put => {
                let ns = crate::storage::decode(&def, &event.kv)?;
                ensure_namespace(state, &ns).await?;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Ok(()),
        }
    }
}
