//! Event recording the way client-go's recorder does it, for every k3rs component that
//! reports Events (the controllers and the kubelet): a core/v1 Event per distinct series
//! (reporter, object, field, reason, message), and repeats of it increment `count` and
//! `lastTimestamp` on that same Event, which `kubectl describe` shows as "(x3 over 2m)".
//!
//! An Event of a known series that is gone from the API (deleted, or expired by the
//! server's event TTL) is created again under the same name with the series' count and
//! first timestamp, as client-go does, instead of the repeat being lost.
//!
//! kube-runtime's recorder keys its series without the message, so "Created pod: a" then
//! "Created pod: b" would show as the first one twice; and it keeps a cache per series.
//! Here the only state is a bounded table from series key to Event, shared by the
//! recorders that are handed the same [`Series`]. This crate writes Events and nothing
//! else: deciding what to report is the caller's business.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event as CoreEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

pub use kube::runtime::events::{Event, EventType};

/// Series remembered before the table is cleared; a forgotten series just starts a new
/// Event, as upstream's LRU does.
const MAX_SERIES: usize = 4096;

/// An Event could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing event {namespace}/{name}: {source}")]
    Write {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What is known of one series: where its Event is, how often it happened, since when.
#[derive(Clone, Debug)]
struct SeriesEvent {
    namespace: String,
    name: String,
    count: i32,
    first: Timestamp,
}

/// The series key -> Event table; clones share it. Recorders of one component (or of one
/// leadership term) share one, so each series has one Event however many recorders
/// report it.
#[derive(Clone, Default)]
pub struct Series(Arc<Mutex<HashMap<String, SeriesEvent>>>);

impl Series {
    fn get(&self, key: &str) -> Option<SeriesEvent> {
        self.0.lock().expect("event series lock").get(key).cloned()
    }

    fn remember(&self, key: String, event: SeriesEvent) {
        let mut series = self.0.lock().expect("event series lock");
        if series.len() >= MAX_SERIES && !series.contains_key(&key) {
            series.clear();
        }
        series.insert(key, event);
    }
}

/// Records events for one reporting component (the `From` column of `kubectl describe`).
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
    instance: String,
    host: Option<String>,
    series: Series,
}

impl Recorder {
    /// A recorder reporting as `component` (`deployment-controller`, `kubelet`), from
    /// `instance` (`reportingInstance`: the process or node).
    pub fn new(client: Client, component: &str, instance: &str, series: Series) -> Self {
        Recorder {
            client,
            component: component.to_string(),
            instance: instance.to_string(),
            host: None,
            series,
        }
    }

    /// Also name the node the component runs on in `source.host`, as the kubelet does.
    pub fn with_host(mut self, host: &str) -> Self {
        self.host = Some(host.to_string());
        self
    }

    /// Write `event` about `regarding`: a new Event for a new series, a bumped count for a
    /// repeat, and the Event created again if the API no longer has it.
    pub async fn publish(&self, event: &Event, regarding: &ObjectReference) -> Result<()> {
        let namespace = regarding
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".to_string());
        let message = event.note.clone().unwrap_or_default();
        let key = series_key(
            &self.component,
            &namespace,
            regarding,
            &event.reason,
            &message,
        );
        let now = Timestamp::now();
        let api: Api<CoreEvent> = Api::namespaced(self.client.clone(), &namespace);
        let write_error = |name: &str, source| Error::Write {
            namespace: namespace.clone(),
            name: name.to_string(),
            source,
        };
        let series = match self.series.get(&key) {
            Some(known) => {
                let series = SeriesEvent {
                    count: known.count + 1,
                    ..known
                };
                let patch = json!({"count": series.count, "lastTimestamp": Time(now)});
                match api
                    .patch(&series.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {
                        self.series.remember(key, series);
                        return Ok(());
                    }
                    // Expired or deleted: write it again, count and all.
                    Err(err) if is_not_found(&err) => series,
                    Err(err) => return Err(write_error(&series.name, err)),
                }
            }
            None => SeriesEvent {
                namespace: namespace.clone(),
                name: format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or("object"),
                    now.as_nanosecond()
                ),
                count: 1,
                first: now,
            },
        };
        let core = self.core_event(event, regarding, message, &series, now);
        api.create(&PostParams::default(), &core)
            .await
            .map_err(|err| write_error(&series.name, err))?;
        self.series.remember(key, series);
        Ok(())
    }

    fn core_event(
        &self,
        event: &Event,
        regarding: &ObjectReference,
        message: String,
        series: &SeriesEvent,
        now: Timestamp,
    ) -> CoreEvent {
        CoreEvent {
            metadata: ObjectMeta {
                name: Some(series.name.clone()),
                namespace: Some(series.namespace.clone()),
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
                component: Some(self.component.clone()),
                host: self.host.clone(),
            }),
            first_timestamp: Some(Time(series.first)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            count: Some(series.count),
            action: Some(event.action.clone()).filter(|a| !a.is_empty()),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        }
    }
}

/// What makes two events one series: who reports, about which object (and field of it),
/// why and what.
fn series_key(
    component: &str,
    namespace: &str,
    regarding: &ObjectReference,
    reason: &str,
    message: &str,
) -> String {
    [
        component,
        namespace,
        regarding.uid.as_deref().unwrap_or_default(),
        regarding.name.as_deref().unwrap_or_default(),
        regarding.field_path.as_deref().unwrap_or_default(),
        reason,
        message,
    ]
    .join("\0")
}

fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(field: Option<&str>) -> ObjectReference {
        ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some("ns".into()),
            name: Some("web".into()),
            uid: Some("u1".into()),
            field_path: field.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn series_differ_by_message_and_field() {
        let key =
            |field, reason, message| series_key("kubelet", "ns", &pod(field), reason, message);
        assert_eq!(key(None, "Pulled", "a"), key(None, "Pulled", "a"));
        assert_ne!(key(None, "Pulled", "a"), key(None, "Pulled", "b"));
        assert_ne!(key(None, "Pulled", "a"), key(None, "Created", "a"));
        assert_ne!(
            key(Some("spec.containers{a}"), "Pulled", "a"),
            key(Some("spec.containers{b}"), "Pulled", "a")
        );
    }

    #[test]
    fn the_series_table_is_bounded() {
        let series = Series::default();
        let event = |n| SeriesEvent {
            namespace: "ns".into(),
            name: format!("e{n}"),
            count: 1,
            first: Timestamp::UNIX_EPOCH,
        };
        for n in 0..MAX_SERIES + 1 {
            series.remember(n.to_string(), event(n));
        }
        assert_eq!(series.0.lock().unwrap().len(), 1);
        assert_eq!(
            series.get(&MAX_SERIES.to_string()).unwrap().name,
            format!("e{MAX_SERIES}")
        );
    }

    /// The (method, body) of each request the fake API server saw.
    type Requests = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

    /// A fake API server: records each request and answers PATCH with `patch_status`.
    fn fake_api(patch_status: u16) -> (Client, Requests) {
        use http::{Request, Response};
        use kube::client::Body;
        let seen: Requests = Default::default();
        let log = seen.clone();
        let service = tower::service_fn(move |req: Request<Body>| {
            let log = log.clone();
            async move {
                let method = req.method().to_string();
                let body = req.into_body().collect_bytes().await.unwrap();
                let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                log.lock().unwrap().push((method.clone(), value.clone()));
                let (status, answer) = match method.as_str() {
                    "PATCH" if patch_status == 404 => (
                        404,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                               "reason": "NotFound", "message": "events not found", "code": 404}),
                    ),
                    _ => (
                        200,
                        json!({"apiVersion": "v1", "kind": "Event",
                                      "metadata": {"name": "e", "namespace": "ns"},
                                      "involvedObject": {}}),
                    ),
                };
                let response = Response::builder()
                    .status(status)
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap();
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        (Client::new(service, "default"), seen)
    }

    fn started() -> Event {
        Event {
            type_: EventType::Normal,
            reason: "Started".into(),
            note: Some("Started container web".into()),
            action: String::new(),
            secondary: None,
        }
    }

    #[tokio::test]
    async fn repeats_bump_the_count_of_one_event() {
        let (client, seen) = fake_api(200);
        let recorder =
            Recorder::new(client, "kubelet", "node-1", Series::default()).with_host("node-1");
        for _ in 0..3 {
            recorder.publish(&started(), &pod(None)).await.unwrap();
        }
        let seen = seen.lock().unwrap();
        let methods: Vec<&str> = seen.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(methods, ["POST", "PATCH", "PATCH"]);
        assert_eq!(seen[0].1["count"], 1);
        assert_eq!(
            seen[0].1["source"],
            json!({"component": "kubelet", "host": "node-1"})
        );
        assert_eq!(seen[2].1["count"], 3);
    }

    #[tokio::test]
    async fn an_event_gone_from_the_api_is_created_again_with_its_count() {
        let (client, seen) = fake_api(404);
        let recorder = Recorder::new(
            client,
            "deployment-controller",
            "server-1",
            Series::default(),
        );
        recorder.publish(&started(), &pod(None)).await.unwrap();
        recorder.publish(&started(), &pod(None)).await.unwrap();
        let seen = seen.lock().unwrap();
        let methods: Vec<&str> = seen.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(methods, ["POST", "PATCH", "POST"]);
        let (first, again) = (&seen[0].1, &seen[2].1);
        assert_eq!(again["metadata"]["name"], first["metadata"]["name"]);
        assert_eq!(again["count"], 2);
        assert_eq!(again["firstTimestamp"], first["firstTimestamp"]);
    }
}
