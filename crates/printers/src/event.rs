//! Events, both core/v1 and events.k8s.io/v1 (which renames fields: `regarding`,
//! `note`, `deprecatedSource`, `deprecatedFirstTimestamp`, ...). LAST SEEN falls
//! back to FIRST SEEN, which falls back to `eventTime`; a series overrides both
//! the last-seen time and the count.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::columns::{Column, NAME};
use crate::duration::since;
use crate::fields::{at, int_at, name, opt_int_at, str_at, time_at};

pub(crate) fn columns() -> Vec<Column> {
    vec![
        Column::string("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
        Column::string("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
        Column::string("Reason", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
        Column::string("Object", "The object that this event is about."),
        Column::string("Subobject", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.").wide(),
        Column::string("Source", "The component reporting this event. Should be a short machine understandable string.").wide(),
        Column::string("Message", "A human-readable description of the status of this operation."),
        Column::string("First Seen", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)").wide(),
        Column::string("Count", "The number of times this event has occurred.").wide(),
        Column { priority: 1, ..NAME },
    ]
}

/// Field names of the two Event shapes.
struct Shape {
    involved: &'static str,
    message: &'static str,
    source: &'static str,
    first: &'static str,
    last: &'static str,
    count: &'static str,
}

const CORE: Shape = Shape {
    involved: "involvedObject",
    message: "message",
    source: "source",
    first: "firstTimestamp",
    last: "lastTimestamp",
    count: "count",
};

const EVENTS_API: Shape = Shape {
    involved: "regarding",
    message: "note",
    source: "deprecatedSource",
    first: "deprecatedFirstTimestamp",
    last: "deprecatedLastTimestamp",
    count: "deprecatedCount",
};

/// "component, host" with reporting controller/instance as fallbacks.
fn source(event: &Value, shape: &Shape) -> String {
    let first_non_empty = |a: &'static str, b: &'static str| {
        let primary = str_at(event, &[shape.source, a]);
        if primary.is_empty() {
            str_at(event, &[b]).to_string()
        } else {
            primary.to_string()
        }
    };
    let component = first_non_empty("component", "reportingController");
    let instance = first_non_empty("host", "reportingInstance");
    if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    }
}

pub(crate) fn cells(event: &Value, now: DateTime<Utc>, events_api: bool) -> Vec<Value> {
    let shape = if events_api { &EVENTS_API } else { &CORE };
    let first_seen = match time_at(event, &[shape.first]) {
        Some(t) => since(Some(t), now),
        None => since(time_at(event, &["eventTime"]), now),
    };
    let mut last_seen = match time_at(event, &[shape.last]) {
        Some(t) => since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = int_at(event, &[shape.count]);
    if let Some(series) = at(event, &["series"]).filter(|s| s.is_object()) {
        last_seen = since(time_at(series, &["lastObservedTime"]), now);
        count = opt_int_at(series, &["count"]).unwrap_or(0);
    } else if count == 0 {
        // Singleton events of the new API have no count.
        count = 1;
    }
    let kind = str_at(event, &[shape.involved, "kind"]).to_lowercase();
    let involved_name = str_at(event, &[shape.involved, "name"]);
    let target = if involved_name.is_empty() {
        kind
    } else {
        format!("{kind}/{involved_name}")
    };
    vec![
        json!(last_seen),
        json!(str_at(event, &["type"])),
        json!(str_at(event, &["reason"])),
        json!(target),
        json!(str_at(event, &[shape.involved, "fieldPath"])),
        json!(source(event, shape)),
        json!(str_at(event, &[shape.message]).trim()),
        json!(first_seen),
        json!(count),
        json!(name(event)),
    ]
}
