//! Events about pods as the kubelet reports them (`Pulled`, `Created`, `Started`,
//! `Killing`, `BackOff`, `Unhealthy`, `Failed`, `FailedMount`), so `kubectl describe pod`
//! tells the story. Writing them (series, counts, recreating an Event the API lost) is
//! [`k3rs_events`]'s; this module only says what a pod Event looks like and keeps the pod
//! worker from ever waiting on one.

use k3rs_events::{Event, EventType, Series};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use tokio::sync::mpsc;
use tracing::debug;

/// The kubelet's event recorder: fire and forget, written in order by one task.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::UnboundedSender<(Event, ObjectReference)>,
}

impl Recorder {
    /// Start the writer task (it ends when the last clone of the recorder is dropped).
    pub fn new(client: kube::Client, node: String) -> Recorder {
        let writer = k3rs_events::Recorder::new(client, "kubelet", &node, Series::default())
            .with_host(&node);
        let (queue, mut pending) = mpsc::unbounded_channel::<(Event, ObjectReference)>();
        k3rs_core::task::spawn(async move {
            while let Some((event, regarding)) = pending.recv().await {
                if let Err(err) = writer.publish(&event, &regarding).await {
                    debug!(error = %err, "writing event");
                }
            }
        });
        Recorder { queue }
    }

    pub fn normal(&self, pod: &Pod, field: Option<&str>, reason: &str, message: String) {
        self.emit(pod, field, EventType::Normal, reason, message);
    }

    pub fn warning(&self, pod: &Pod, field: Option<&str>, reason: &str, message: String) {
        self.emit(pod, field, EventType::Warning, reason, message);
    }

    /// Queue the event: one that cannot be written never holds up a pod.
    fn emit(
        &self,
        pod: &Pod,
        field: Option<&str>,
        type_: EventType,
        reason: &str,
        message: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(message),
            action: String::new(),
            secondary: None,
        };
        let _ = self.queue.send((event, pod_reference(pod, field)));
    }
}

/// The `involvedObject` of an event about `pod` (and one of its containers, by `field`).
fn pod_reference(pod: &Pod, field: Option<&str>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        field_path: field.map(str::to_string),
        ..Default::default()
    }
}

/// `spec.containers{name}` / `spec.initContainers{name}`, the fieldPath upstream uses.
pub fn container_field(init: bool, name: &str) -> String {
    match init {
        true => format!("spec.initContainers{{{name}}}"),
        false => format!("spec.containers{{{name}}}"),
    }
}
