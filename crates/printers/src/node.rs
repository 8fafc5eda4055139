//! Nodes: STATUS from the Ready condition plus SchedulingDisabled, ROLES from
//! `node-role.kubernetes.io/<role>` and `kubernetes.io/role` labels, and the
//! wide addresses and node info.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::columns::{Column, AGE, NAME};
use crate::duration::since;
use crate::fields::{array_at, creation_timestamp, name, object_at, opt_bool_at, str_at};

const ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";
const ROLE_LABEL: &str = "kubernetes.io/role";

pub(crate) fn columns() -> Vec<Column> {
    const ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
    vec![
        NAME,
        Column::string("Status", "The status of the node"),
        Column::string("Roles", "The roles of the node"),
        AGE,
        Column::string("Version", "Kubelet Version reported by the node."),
        Column::string("Internal-IP", ADDRESSES).wide(),
        Column::string("External-IP", ADDRESSES).wide(),
        Column::string("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).").wide(),
        Column::string("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).").wide(),
        Column::string("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).").wide(),
    ]
}

/// "Ready", "NotReady" or "Unknown", plus ",SchedulingDisabled" when cordoned.
fn status(node: &Value) -> String {
    // Upstream keeps the last condition of each type, so search from the end.
    let ready = array_at(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| str_at(c, &["type"]) == "Ready");
    let mut parts = vec![match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if opt_bool_at(node, &["spec", "unschedulable"]) == Some(true) {
        parts.push("SchedulingDisabled");
    }
    parts.join(",")
}

/// Sorted, de-duplicated roles, or "<none>".
fn roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    for (key, value) in object_at(node, &["metadata", "labels"])
        .into_iter()
        .flatten()
    {
        if let Some(role) = key.strip_prefix(ROLE_LABEL_PREFIX) {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if key == ROLE_LABEL {
            if let Some(role) = value.as_str().filter(|r| !r.is_empty()) {
                roles.insert(role.to_string());
            }
        }
    }
    if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    }
}

/// First address of the given type, or "<none>".
fn address(node: &Value, type_: &str) -> String {
    array_at(node, &["status", "addresses"])
        .iter()
        .find(|a| str_at(a, &["type"]) == type_)
        .map(|a| str_at(a, &["address"]).to_string())
        .unwrap_or_else(|| "<none>".to_string())
}

/// A `status.nodeInfo` field, or "<unknown>" when empty.
fn node_info(node: &Value, field: &str) -> String {
    match str_at(node, &["status", "nodeInfo", field]) {
        "" => "<unknown>".to_string(),
        value => value.to_string(),
    }
}

pub(crate) fn cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(node)),
        json!(status(node)),
        json!(roles(node)),
        json!(since(creation_timestamp(node), now)),
        json!(str_at(node, &["status", "nodeInfo", "kubeletVersion"])),
        json!(address(node, "InternalIP")),
        json!(address(node, "ExternalIP")),
        json!(node_info(node, "osImage")),
        json!(node_info(node, "kernelVersion")),
        json!(node_info(node, "containerRuntimeVersion")),
    ]
}
