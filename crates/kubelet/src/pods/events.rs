//! Events about pods as the kubelet reports them (`Pulled`, `Created`, `Started`,
//! `Killing`, `BackOff`, `Unhealthy`, `Failed`, `FailedMount`), so `kubectl describe pod`
//! tells the story. Repeats of the same (pod, reason, message) bump the count of one Event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{SecondsFormat, Utc};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tracing::debug;

/// Bound on remembered (pod, reason, message) keys; older ones are forgotten, which only
/// means a new Event instead of a bumped count.
const MAX_REMEMBERED: usize = 4096;

#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    node: String,
    seen: Arc<Mutex<HashMap<String, (String, i32)>>>,
}

impl Recorder {
    pub fn new(client: kube::Client, node: String) -> Recorder {
        Recorder {
            client,
            node,
            seen: Default::default(),
        }
    }

    pub fn normal(&self, pod: &Pod, field: Option<&str>, reason: &str, message: String) {
        self.emit(pod, field, "Normal", reason, message);
    }

    pub fn warning(&self, pod: &Pod, field: Option<&str>, reason: &str, message: String) {
        self.emit(pod, field, "Warning", reason, message);
    }

    /// Fire and forget: an event that cannot be written never holds up a pod.
    fn emit(&self, pod: &Pod, field: Option<&str>, kind: &str, reason: &str, message: String) {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let key = format!("{uid}/{}/{reason}/{message}", field.unwrap_or(""));
        let (event_name, count) = {
            let mut seen = self.seen.lock().expect("event table");
            if seen.len() > MAX_REMEMBERED {
                seen.clear();
            }
            let entry = seen
                .entry(key)
                .or_insert_with(|| (format!("{name}.{:016x}", rand::random::<u64>()), 0));
            entry.1 += 1;
            entry.clone()
        };
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": event_name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": "v1", "kind": "Pod", "name": name, "namespace": namespace,
                "uid": uid, "fieldPath": field,
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": "kubelet", "host": self.node},
            "reportingComponent": "kubelet",
            "reportingInstance": self.node,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": count,
        });
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        k3rs_core::task::spawn(async move {
            let result = if count == 1 {
                match serde_json::from_value::<Event>(event) {
                    Ok(e) => api.create(&PostParams::default(), &e).await.map(|_| ()),
                    Err(_) => return,
                }
            } else {
                let patch = json!({"count": count, "lastTimestamp": now});
                api.patch(&event_name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
            };
            if let Err(err) = result {
                debug!(error = %err, "writing event");
            }
        });
    }
}

/// `spec.containers{name}` / `spec.initContainers{name}`, the fieldPath upstream uses.
pub fn container_field(init: bool, name: &str) -> String {
    match init {
        true => format!("spec.initContainers{{{name}}}"),
        false => format!("spec.containers{{{name}}}"),
    }
}
