//! Finishing the deletion of a `Terminating` namespace: delete everything in it, then drop
//! the `kubernetes` finalizer so the namespace itself goes away.
//!
//! Upstream this is the namespace controller's job; until k3rs has its controller manager
//! the API server does it for its own store, so `kubectl delete namespace` completes.
//! Objects inside that carry finalizers are only marked, and the namespace waits for them.

use std::time::Duration;

use serde_json::{json, Value};
use tracing::{debug, info, warn};

use crate::error::Result;
use crate::object;
use crate::AppState;

/// How often a namespace still holding finalized objects is looked at again.
const RETRY: Duration = Duration::from_secs(2);

/// Remove the contents of namespace `ns`; true when nothing is left.
async fn purge(state: &AppState, ns: &str) -> Result<bool> {
    let mut empty = true;
    for def in state.resources().iter().filter(|d| d.namespaced()) {
        // Two API versions may share storage (events); purge each prefix once.
        if def.group != def.storage_group {
            continue;
        }
        let page = state.store.list(def, Some(ns), None, None, None).await?;
        for obj in page.items {
            let name = object::name(&obj).unwrap_or_default().to_string();
            if !object::finalizers(&obj).is_empty() {
                empty = false;
                if !object::is_deleting(&obj) {
                    let mut marked = obj.clone();
                    object::set_str(&mut marked, "deletionTimestamp", &object::now_rfc3339());
                    object::meta_mut(&mut marked)
                        .insert("deletionGracePeriodSeconds".into(), json!(0));
                    let rv = object::meta_str(&obj, "resourceVersion")
                        .unwrap_or("0")
                        .parse()
                        .unwrap_or(0);
                    let _ = state.store.update(def, Some(ns), &marked, rv).await;
                }
                continue;
            }
            match state.store.delete(def, Some(ns), &name, None).await {
                Ok(gone) => {
                    // A deleted Service gives back its cluster IP and node ports.
                    crate::admission::allocator::on_delete(state, def, &gone).await;
                    debug!(namespace = ns, resource = %def.plural, name, "deleted");
                }
                Err(e) if e.code == http::StatusCode::NOT_FOUND => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(empty)
}

/// Drop the `kubernetes` finalizer; the namespace is deleted when no finalizer remains.
async fn finalize(state: &AppState, ns: &str) -> Result<()> {
    let def = state.find("", "v1", "namespaces").expect("built in");
    let Some(mut obj) = state.store.get(&def, None, ns).await? else {
        return Ok(());
    };
    let rv: i64 = object::meta_str(&obj, "resourceVersion")
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    if let Some(list) = obj
        .pointer_mut("/spec/finalizers")
        .and_then(Value::as_array_mut)
    {
        list.retain(|f| f != "kubernetes");
    }
    let spec_done = obj
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_none_or(|f| f.is_empty());
    if spec_done && object::finalizers(&obj).is_empty() {
        state.store.delete(&def, None, ns, Some(rv)).await?;
        info!(namespace = ns, "namespace deleted");
    } else {
        state.store.update(&def, None, &obj, rv).await?;
    }
    Ok(())
}

/// Drive namespace `ns` from Terminating to gone, retrying while objects with
/// finalizers remain or the server is shutting down.
pub fn spawn(state: AppState, ns: String) {
    tokio::spawn(async move {
        loop {
            match purge(&state, &ns).await {
                Ok(true) => {
                    if let Err(e) = finalize(&state, &ns).await {
                        warn!(namespace = %ns, error = %e, "finalizing namespace failed; retrying");
                    } else {
                        return;
                    }
                }
                Ok(false) => {}
                Err(e) => warn!(namespace = %ns, error = %e, "emptying namespace failed; retrying"),
            }
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
    });
}

/// Resume namespaces left Terminating by a previous run.
pub async fn resume(state: &AppState) -> Result<()> {
    let def = state.find("", "v1", "namespaces").expect("built in");
    for ns in state.store.list(&def, None, None, None, None).await?.items {
        if object::is_deleting(&ns) {
            spawn(
                state.clone(),
                object::name(&ns).unwrap_or_default().to_string(),
            );
        }
    }
    Ok(())
}
