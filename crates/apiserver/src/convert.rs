//! Conversion between served API versions and the stored form.
//!
//! Only one pair of built-in resources shares storage: `events.k8s.io/v1` Events are kept
//! in the core `v1` shape (as upstream does), renaming the fields that differ.

use k3rs_core::ResourceDef;
use serde_json::{Map, Value};

/// core/v1 field name <-> events.k8s.io/v1 field name.
const EVENT_RENAMES: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

fn is_events_v1(def: &ResourceDef) -> bool {
    def.group == "events.k8s.io" && def.kind == "Event"
}

fn rename(obj: &mut Value, pairs: impl Iterator<Item = (&'static str, &'static str)>) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let mut renamed = Map::new();
    for (from, to) in pairs {
        if let Some(v) = map.remove(from) {
            renamed.insert(to.to_string(), v);
        }
    }
    map.extend(renamed);
}

/// Turn a stored object into the shape of the version `def` serves.
pub fn to_served(def: &ResourceDef, obj: &mut Value) {
    if is_events_v1(def)
        && obj.get("apiVersion").and_then(Value::as_str) != Some("events.k8s.io/v1")
    {
        rename(obj, EVENT_RENAMES.iter().copied());
    }
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(def.api_version()));
        map.insert("kind".into(), Value::String(def.kind.clone()));
    }
}

/// Turn an object of the version `def` serves into its stored shape.
pub fn to_storage(def: &ResourceDef, obj: &mut Value) {
    if def.group.is_empty() && def.kind == "Secret" {
        merge_string_data(obj);
    }
    if is_events_v1(def) {
        rename(obj, EVENT_RENAMES.iter().map(|(core, ev)| (*ev, *core)));
        if let Some(map) = obj.as_object_mut() {
            map.insert("apiVersion".into(), Value::String("v1".into()));
        }
    }
}

/// `Secret.stringData` is write-only: its entries are base64-encoded into `data`
/// (winning over the same keys there) and the field is dropped, as upstream.
fn merge_string_data(obj: &mut Value) {
    use base64::Engine;
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let Some(Value::Object(string_data)) = map.remove("stringData") else {
        return;
    };
    let data = map
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    let data = data.as_object_mut().expect("made an object above");
    for (key, value) in string_data {
        let text = value.as_str().unwrap_or_default();
        data.insert(
            key,
            Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_string_data_is_merged_into_data() {
        let secrets = k3rs_core::resource::find("", "v1", "secrets").unwrap();
        let mut s = json!({"data": {"username": "b2xk"}, "stringData": {"username": "admin", "password": "hunter2"}});
        to_storage(secrets, &mut s);
        assert_eq!(
            s,
            json!({"data": {"username": "YWRtaW4=", "password": "aHVudGVyMg=="}})
        );
    }

    #[test]
    fn events_round_trip_between_versions() {
        let v1 = k3rs_core::resource::find("events.k8s.io", "v1", "events").unwrap();
        let mut ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "regarding": {"kind": "Pod", "name": "a"}, "note": "hello", "reason": "Started"});
        to_storage(v1, &mut ev);
        assert_eq!(ev["involvedObject"]["name"], "a");
        assert_eq!(ev["message"], "hello");
        assert_eq!(ev["apiVersion"], "v1");
        to_served(v1, &mut ev);
        assert_eq!(ev["note"], "hello");
        assert_eq!(ev["apiVersion"], "events.k8s.io/v1");
        assert!(ev.get("message").is_none());
    }
}
