//! Event recording the way client-go's recorder does it: a core/v1 Event per distinct
//! (object, reason, message), and repeats of it increment `count` and `lastTimestamp` on
//! that same Event, which `kubectl describe` shows as "(x3 over 2m)".
//!
//! kube-runtime's recorder keys its series without the message, so "Created pod: a" then
//! "Created pod: b" would show as the first one twice; and it keeps a cache per series.
//! Here the only state is a bounded table from series key to Event name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event as CoreEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::Client;
use serde_json::json;

use crate::error::is_not_found;

/// Series remembered before the table is cleared; a forgotten series just starts a new
/// Event, as upstream's LRU does.
const MAX_SERIES: usize = 4096;

/// A series key -> (namespace, Event name, count) table shared by the recorders of one term.
pub type Series = Arc<Mutex<HashMap<String, (String, String, i32)>>>;

/// Records events for one reporting controller (the `From` column of `kubectl describe`).
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    controller: String,
    instance: String,
    series: Series,
}

impl Recorder {
    pub fn new(client: Client, controller: &str, instance: &str, series: Series) -> Self {
        Recorder {
            client,
            controller: controller.to_string(),
            instance: instance.to_string(),
            series,
        }
    }

    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let namespace = regarding
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".to_string());
        let message = event.note.clone().unwrap_or_default();
        let key = format!(
            "{}\0{}\0{}\0{}\0{}\0{}",
            self.controller,
            namespace,
            regarding.uid.as_deref().unwrap_or_default(),
            regarding.name.as_deref().unwrap_or_default(),
            event.reason,
            message,
        );
        let now = jiff::Timestamp::now();
        let api: Api<CoreEvent> = Api::namespaced(self.client.clone(), &namespace);
        let known = self
            .series
            .lock()
            .expect("event series lock")
            .get(&key)
            .cloned();
        if let Some((_, name, count)) = known {
            let patch = json!({"count": count + 1, "lastTimestamp": Time(now)});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.remember(key, namespace, name, count + 1);
                    return Ok(());
                }
                // Expired or deleted: start the series again.
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err),
            }
        }
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or("object"),
            now.as_nanosecond()
        );
        let core = CoreEvent {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: regarding.clone(),
            reason: Some(event.reason.clone()),
            message: Some(message),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_string(),
            ),
            source: Some(EventSource {
                component: Some(self.controller.clone()),
                host: None,
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            count: Some(1),
            action: Some(event.action.clone()).filter(|a| !a.is_empty()),
            reporting_component: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        api.create(&PostParams::default(), &core).await?;
        self.remember(key, namespace, name, 1);
        Ok(())
    }

    fn remember(&self, key: String, namespace: String, name: String, count: i32) {
        let mut series = self.series.lock().expect("event series lock");
        if series.len() >= MAX_SERIES && !series.contains_key(&key) {
            series.clear();
        }
        series.insert(key, (namespace, name, count));
    }
}
