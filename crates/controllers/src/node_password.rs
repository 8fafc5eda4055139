//! Node password cleanup, k3s's: when a Node is deleted, its password Secret
//! (`kube-system/<node>.node-password.k3rs`, written by the supervisor when the agent
//! joined) goes with it, so that a new machine can take the name. An agent that is still
//! running keeps working; its next join stores its password again.
//!
//! Only deletions seen by the node informer count: a Secret whose Node was never
//! registered (a join whose kubelet has not registered yet) must stay.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::DeleteParams;
use kube::runtime::reflector::ObjectRef;
use kube::Api;
use tracing::{debug, info, warn};

use crate::context::Context;
use crate::error::is_not_found;
use crate::{Error, Result};

pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let store = ctx.nodes.store();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), "kube-system");
    let mut events = std::pin::pin!(ctx.nodes.subscribe());
    while let Some(event) = events.next().await {
        let node = match event {
            Ok(node) => node,
            Err(err) => {
                debug!(error = %err, "node stream error");
                continue;
            }
        };
        let Some(name) = node.metadata.name.as_deref() else {
            continue;
        };
        if store.get(&ObjectRef::new(name)).is_some() {
            continue;
        }
        let secret = k3rs_core::cluster::node_password_secret_name(name);
        match secrets.delete(&secret, &DeleteParams::default()).await {
            Ok(_) => info!(node = name, %secret, "node deleted: removed its password secret"),
            Err(err) if is_not_found(&err) => {}
            Err(err) => {
                warn!(node = name, %secret, error = %err, "deleting a node password secret")
            }
        }
    }
    Err(Error::Invalid("the node informer stopped".into()))
}
