//! The patch formats of PATCH requests: JSON patch (RFC 6902), JSON merge patch
//! (RFC 7386) and strategic merge patch.
//!
//! Strategic merge here knows the merge keys of the common built-in lists (containers by
//! name, ports by port number, env by name, ...) and the `$patch`, `$retainKeys`,
//! `$setElementOrder` and `$deleteFromPrimitiveList` directives, which is what kubectl's
//! client-side apply, `kubectl patch` and `kubectl edit` produce.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// Patch types accepted, by media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_media_type(media: &str) -> ApiResult<PatchType> {
        match media {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchType::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// Apply `body` of type `kind` to `target`, returning the patched object.
pub fn apply(kind: PatchType, target: &Value, body: &[u8]) -> ApiResult<Value> {
    match kind {
        PatchType::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            let mut doc = target.clone();
            json_patch::patch(&mut doc, &patch)
                .map_err(|e| ApiError::invalid_patch(e.to_string()))?;
            Ok(doc)
        }
        PatchType::Merge => {
            let patch = parse_object(body)?;
            let mut doc = target.clone();
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
        PatchType::Strategic => {
            let patch = parse_object(body)?;
            let mut doc = target.clone();
            strategic_merge(&mut doc, &patch);
            Ok(doc)
        }
        PatchType::Apply => Err(ApiError::unsupported_media_type(
            "application/apply-patch+yaml (server-side apply is not supported yet)",
        )),
    }
}

fn parse_object(body: &[u8]) -> ApiResult<Value> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid patch body: {e}")))?;
    if !patch.is_object() {
        return Err(ApiError::bad_request("a merge patch must be a JSON object"));
    }
    Ok(patch)
}

/// The key identifying items of a list field, when the list merges item by item.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates"
        | "secrets" => Some("name"),
        "podIPs" | "hostIPs" => Some("ip"),
        // NodeStatus.addresses merge by type.
        "addresses" if items.iter().any(|i| i.get("address").is_some()) => Some("type"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "hostAliases" => Some("ip"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "topologySpreadConstraints" => Some("topologyKey"),
        "ports" => {
            // Container ports merge by containerPort and Service ports (which always carry
            // a targetPort once stored) by port; other `ports` lists, such as a
            // NetworkPolicy's, have no strategy and are replaced.
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                Some("containerPort")
            } else if items
                .iter()
                .any(|i| i.get("targetPort").is_some() || i.get("nodePort").is_some())
            {
                Some("port")
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Primitive lists whose patch strategy is "merge" (set union) rather than replace.
fn merges_primitives(field: &str) -> bool {
    field == "finalizers"
}

pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Some(patch_map) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = patch_map.clone();
            replaced.remove("$patch");
            *target = Value::Object(replaced);
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let map = target.as_object_mut().expect("made an object above");
    if let Some(retain) = patch_map.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        map.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (key, value) in patch_map {
        // Ordering directives apply once the lists are merged, below.
        if key == "$patch" || key == "$retainKeys" || key.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(remove)) = (
                map.get_mut(field).and_then(Value::as_array_mut),
                value.as_array(),
            ) {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        match value {
            Value::Null => {
                map.remove(key);
            }
            Value::Object(_) => {
                let slot = map.entry(key.clone()).or_insert(Value::Null);
                strategic_merge(slot, value);
                if slot.is_null() {
                    map.remove(key);
                }
            }
            Value::Array(items) => {
                let current = map.remove(key);
                map.insert(key.clone(), merge_list(key, current, items));
            }
            other => {
                map.insert(key.clone(), other.clone());
            }
        }
    }
    for (key, order) in patch_map {
        if let (Some(field), Some(order)) =
            (key.strip_prefix("$setElementOrder/"), order.as_array())
        {
            if let Some(list) = map.get_mut(field).and_then(Value::as_array_mut) {
                reorder(field, list, order);
            }
        }
    }
}

/// `$setElementOrder/<field>`: put the listed items first, in the given order (matched by
/// merge key, or by value for primitive lists), then the server-only items in their order.
fn reorder(field: &str, list: &mut Vec<Value>, order: &[Value]) {
    let key = merge_key(field, list);
    let same = |item: &Value, wanted: &Value| match key {
        Some(k) => item.get(k).is_some() && item.get(k) == wanted.get(k),
        None => item == wanted,
    };
    let mut rest: Vec<Value> = std::mem::take(list);
    for wanted in order {
        if let Some(i) = rest.iter().position(|item| same(item, wanted)) {
            list.push(rest.remove(i));
        }
    }
    list.extend(rest);
}

fn merge_list(field: &str, current: Option<Value>, patch: &[Value]) -> Value {
    let replace_all = patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    let patch_items: Vec<Value> = patch
        .iter()
        .filter(|i| i.get("$patch").and_then(Value::as_str) != Some("replace"))
        .cloned()
        .collect();
    let mut current = match current {
        Some(Value::Array(items)) if !replace_all => items,
        _ => return Value::Array(patch_items),
    };
    if merges_primitives(field) {
        for item in patch_items {
            if !current.contains(&item) {
                current.push(item);
            }
        }
        return Value::Array(current);
    }
    // The merge key may show in either list (patches carry only what changed).
    let known: Vec<Value> = current.iter().chain(&patch_items).cloned().collect();
    let Some(key) = merge_key(field, &known) else {
        return Value::Array(patch_items);
    };
    for item in patch_items {
        let id = item.get(key).cloned();
        let position = id
            .as_ref()
            .and_then(|id| current.iter().position(|c| c.get(key) == Some(id)));
        let deleting = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, deleting) {
            (Some(i), true) => {
                current.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut current[i], &item),
            (None, false) => {
                let mut fresh = Value::Object(Map::new());
                strategic_merge(&mut fresh, &item);
                current.push(fresh);
            }
        }
    }
    Value::Array(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut deploy = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "busybox"}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
            "containers": [{"name": "web", "image": "nginx:2"}, {"name": "side", "$patch": "delete"}]
        }}}});
        strategic_merge(&mut deploy, &patch);
        let containers = deploy["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0]["image"], "nginx:2");
        assert_eq!(containers[0]["ports"][0]["containerPort"], 80);
    }

    #[test]
    fn service_ports_merge_and_network_policy_ports_replace() {
        let mut svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}]}});
        strategic_merge(
            &mut svc,
            &json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
        );
        assert_eq!(svc["spec"]["ports"].as_array().unwrap().len(), 2);
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 9090);
        let mut policy = json!({"spec": {"ingress": [{"ports": [{"port": 80}, {"port": 443}]}]}});
        strategic_merge(
            &mut policy,
            &json!({"spec": {"ingress": [{"ports": [{"port": 53}]}]}}),
        );
        assert_eq!(policy["spec"]["ingress"][0]["ports"], json!([{"port": 53}]));
    }

    #[test]
    fn set_element_order_reorders_merged_lists() {
        let mut pod = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]},
            "metadata": {"finalizers": ["x", "y"]}});
        let patch = json!({
            "spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                     "containers": [{"name": "b", "image": "2"}]},
            "metadata": {"$setElementOrder/finalizers": ["y", "x"]}
        });
        strategic_merge(&mut pod, &patch);
        let names: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(pod["spec"]["containers"][0]["image"], "2");
        assert_eq!(pod["metadata"]["finalizers"], json!(["y", "x"]));
    }

    #[test]
    fn directives_and_nulls() {
        let mut obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x"]},
            "spec": {"args": ["a", "b"], "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let patch = json!({
            "metadata": {"labels": {"a": null, "c": "3"}, "finalizers": ["y"]},
            "spec": {"args": ["z"], "strategy": {"$retainKeys": ["type"], "type": "Recreate"}}
        });
        strategic_merge(&mut obj, &patch);
        assert_eq!(obj["metadata"]["labels"], json!({"b": "2", "c": "3"}));
        assert_eq!(obj["metadata"]["finalizers"], json!(["x", "y"]));
        assert_eq!(obj["spec"]["args"], json!(["z"]));
        assert_eq!(obj["spec"]["strategy"], json!({"type": "Recreate"}));
        let patch = json!({"$deleteFromPrimitiveList/finalizers": ["x"], "metadata": {"$patch": "replace", "name": "n"}});
        strategic_merge(
            &mut obj["metadata"],
            &json!({"$deleteFromPrimitiveList/finalizers": ["x"]}),
        );
        assert_eq!(obj["metadata"]["finalizers"], json!(["y"]));
        strategic_merge(&mut obj, &patch);
        assert_eq!(obj["metadata"], json!({"name": "n"}));
    }

    #[test]
    fn json_and_merge_patches() {
        let obj = json!({"data": {"a": "1"}});
        let out = apply(
            PatchType::Json,
            &obj,
            br#"[{"op":"add","path":"/data/b","value":"2"}]"#,
        )
        .unwrap();
        assert_eq!(out["data"]["b"], "2");
        let err = apply(
            PatchType::Json,
            &obj,
            br#"[{"op":"remove","path":"/nope"}]"#,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        let out = apply(PatchType::Merge, &obj, br#"{"data":{"a":null}}"#).unwrap();
        assert_eq!(out["data"], json!({}));
        assert!(apply(PatchType::Merge, &obj, b"[1]").is_err());
        assert!(PatchType::from_media_type("text/plain").is_err());
    }
}
