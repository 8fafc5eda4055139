//! Pod garbage collection (upstream's podgc controller): force-deletes pods that nobody
//! else will ever finish deleting.
//!
//! - Pods bound to a node that no longer exists: no kubelet will stop them.
//! - Pods being deleted that were never bound: no kubelet owns them either.
//!
//! A graceful delete of a bound pod only marks it; its kubelet completes the deletion. When
//! the node is gone that never happens, so this loop deletes with grace period 0.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, Preconditions};
use kube::Api;
use tracing::{debug, info};

use crate::context::Context;
use crate::error::is_not_found;
use crate::Result;

/// How often pods are checked (upstream: 20 s).
const PERIOD: Duration = Duration::from_secs(10);

/// Why a pod should be force-deleted, if it should.
fn orphaned(pod: &Pod, nodes: &HashSet<String>) -> Option<&'static str> {
    let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    match node {
        Some(node) if !node.is_empty() && !nodes.contains(node) => Some("node is gone"),
        None | Some("") if pod.metadata.deletion_timestamp.is_some() => {
            Some("being deleted and never scheduled")
        }
        _ => None,
    }
}

pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let nodes_api: Api<Node> = Api::all(ctx.client.clone());
    loop {
        tokio::time::sleep(PERIOD).await;
        let nodes: HashSet<String> = ctx
            .nodes
            .store()
            .state()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        for pod in ctx.pods.store().state() {
            let Some(why) = orphaned(&pod, &nodes) else {
                continue;
            };
            // The node store may lag behind: confirm the node is really gone.
            if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
                if why == "node is gone" {
                    match nodes_api.get_opt(node).await {
                        Ok(None) => {}
                        _ => continue,
                    }
                }
            }
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: pod.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match Api::<Pod>::namespaced(ctx.client.clone(), ns)
                .delete(name, &params)
                .await
            {
                Ok(_) => info!(
                    namespace = ns,
                    pod = name,
                    reason = why,
                    "force-deleted orphaned pod"
                ),
                Err(err) if is_not_found(&err) => {}
                Err(err) => debug!(namespace = ns, pod = name, error = %err, "pod GC failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(node: Option<&str>, deleting: bool) -> Pod {
        let mut v = json!({"metadata": {"name": "p"}, "spec": {"containers": []}});
        if let Some(n) = node {
            v["spec"]["nodeName"] = json!(n);
        }
        if deleting {
            v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_pods_no_kubelet_will_finish_are_collected() {
        let nodes: HashSet<String> = ["n1".to_string()].into();
        assert_eq!(orphaned(&pod(Some("n1"), true), &nodes), None);
        assert_eq!(orphaned(&pod(None, false), &nodes), None);
        assert!(orphaned(&pod(Some("n2"), false), &nodes).is_some());
        assert!(orphaned(&pod(None, true), &nodes).is_some());
    }
}
