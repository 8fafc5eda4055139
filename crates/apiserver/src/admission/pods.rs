//! Pods: what upstream's admission plugins add on create (ServiceAccount with its projected
//! token volume, DefaultTolerationSeconds, Priority), the QoS class, validation of pod specs
//! (also inside workload templates), and which fields a pod update may change.

use std::collections::HashSet;

use k3rs_core::quantity::Quantity;
use k3rs_core::validation;
use serde_json::{json, Map, Value};

use super::fields::{self, Path};
use crate::error::FieldCause;

/// Where the service-account token volume is mounted in every container.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const TOKEN_VOLUME_PREFIX: &str = "kube-api-access-";
/// Upstream's default token lifetime for the projected volume (an hour plus a few seconds,
/// so kubelets can tell it from a user-set hour).
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
const DEFAULT_TOLERATION_SECONDS: i64 = 300;
const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// Priorities of the built-in PriorityClasses.
fn builtin_priority(class: &str) -> Option<i64> {
    match class {
        "system-node-critical" => Some(2_000_001_000),
        "system-cluster-critical" => Some(2_000_000_000),
        _ => None,
    }
}

fn default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

fn containers_mut<'a>(
    spec: &'a mut Map<String, Value>,
    list: &str,
) -> Vec<&'a mut Map<String, Value>> {
    spec.get_mut(list)
        .and_then(Value::as_array_mut)
        .map(|a| a.iter_mut().filter_map(Value::as_object_mut).collect())
        .unwrap_or_default()
}

/// Create-time admission of a Pod; `suffix` names the token volume (`kube-api-access-<suffix>`).
pub fn admit_create(obj: &mut Value, suffix: &str) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    // ServiceAccount admission.
    let account = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            spec.get("serviceAccount")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or("default")
        .to_string();
    spec.insert("serviceAccountName".into(), json!(account));
    spec.insert("serviceAccount".into(), json!(account));
    if spec.get("automountServiceAccountToken") != Some(&json!(false)) {
        mount_token(spec, suffix);
    }
    // SetDefaults_Pod.
    default(spec, "enableServiceLinks", json!(true));
    for list in ["initContainers", "containers"] {
        for c in containers_mut(spec, list) {
            requests_from_limits(c);
        }
    }
    // Priority admission.
    let class = spec
        .get("priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let priority = builtin_priority(class).unwrap_or(0);
    default(spec, "priority", json!(priority));
    default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    // DefaultTolerationSeconds admission.
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if !tolerations.is_array() {
        *tolerations = json!([]);
    }
    let list = tolerations.as_array_mut().expect("made an array above");
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        if !list.iter().any(|t| tolerates_no_execute(t, key)) {
            list.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
            }));
        }
    }
}

/// Whether a toleration already covers the `NoExecute` taint `key`, by upstream's
/// DefaultTolerationSeconds rule: key and effect only (empty means any), whatever its
/// operator and value say. This is the admission plugin's own rule, not taint matching
/// (`k3rs_core::scheduling::tolerates`): upstream adds no default when a pod mentions the
/// taint at all.
fn tolerates_no_execute(toleration: &Value, key: &str) -> bool {
    let field = |name: &str| toleration.get(name).and_then(Value::as_str).unwrap_or("");
    (field("key") == key || field("key").is_empty())
        && (field("effect") == "NoExecute" || field("effect").is_empty())
}

/// Limits without requests make the requests equal to the limits.
fn requests_from_limits(container: &mut Map<String, Value>) {
    let Some(limits) = container
        .get("resources")
        .and_then(|r| r.get("limits"))
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    let resources = container
        .entry("resources")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(resources) = resources else {
        return;
    };
    let requests = resources.entry("requests").or_insert_with(|| json!({}));
    if let Some(requests) = requests.as_object_mut() {
        for (name, value) in limits {
            requests.entry(name).or_insert(value);
        }
    }
}

/// The projected token volume and its read-only mount in every container.
fn mount_token(spec: &mut Map<String, Value>, suffix: &str) {
    let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
    if !volumes.is_array() {
        *volumes = json!([]);
    }
    let volumes = volumes.as_array_mut().expect("made an array above");
    let existing = volumes.iter().find_map(|v| {
        v.get("name")
            .and_then(Value::as_str)
            .filter(|n| n.starts_with(TOKEN_VOLUME_PREFIX))
            .map(str::to_string)
    });
    let name = match existing {
        Some(name) => name,
        None => {
            let name = format!("{TOKEN_VOLUME_PREFIX}{suffix}");
            volumes.push(json!({
                "name": name,
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
                    ],
                },
            }));
            name
        }
    };
    for list in ["initContainers", "containers"] {
        for c in containers_mut(spec, list) {
            let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
            if !mounts.is_array() {
                *mounts = json!([]);
            }
            let mounts = mounts.as_array_mut().expect("made an array above");
            let mounted = mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH));
            if !mounted {
                mounts.push(json!({"name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH}));
            }
        }
    }
}

/// A container's `requests`/`limits` entry, exactly, so `0.1` and `100m` compare equal.
/// Clients may send a bare JSON number, which reads as the same quantity as its text.
fn quantity_of(resources: &Value, kind: &str, name: &str) -> Option<Quantity> {
    match resources.get(kind)?.get(name)? {
        Value::String(s) => Quantity::parse(s),
        Value::Number(n) => Quantity::parse(&n.to_string()),
        _ => None,
    }
}

/// Upstream's QoS class: BestEffort without any cpu/memory request or limit, Guaranteed
/// when every container limits both and requests equal limits, else Burstable.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .filter_map(|l| spec.get(*l).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let resources = c.get("resources").cloned().unwrap_or(json!({}));
        for name in ["cpu", "memory"] {
            let request = quantity_of(&resources, "requests", name);
            let limit = quantity_of(&resources, "limits", name);
            if request.is_some_and(|r| r > Quantity::ZERO) || limit.is_some() {
                any = true;
            }
            match (request, limit) {
                (Some(r), Some(l)) if r == l => {}
                (None, Some(_)) => {}
                _ => guaranteed = false,
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// Upstream's `ValidatePodSpec`, for the parts clients run into. `path` is where the spec
/// sits (`spec`, or `spec.template.spec` in a workload).
pub fn validate_spec(spec: &Value, path: &Path) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let volumes = validate_volumes(spec, path, &mut causes);
    let containers = spec.get("containers").and_then(Value::as_array);
    if containers.is_none_or(Vec::is_empty) {
        causes.push(fields::required(&path.child("containers"), ""));
    }
    let mut names = HashSet::new();
    for list in ["initContainers", "containers"] {
        let items = spec.get(list).and_then(Value::as_array);
        for (i, c) in items.into_iter().flatten().enumerate() {
            validate_container(
                c,
                &path.child(list).index(i),
                &volumes,
                &mut names,
                &mut causes,
            );
        }
    }
    if let Some(policy) = spec.get("restartPolicy").filter(|v| !v.is_null()) {
        if !policy
            .as_str()
            .is_some_and(|p| RESTART_POLICIES.contains(&p))
        {
            causes.push(fields::not_supported(
                &path.child("restartPolicy"),
                policy,
                RESTART_POLICIES,
            ));
        }
    }
    causes
}

fn validate_volumes(spec: &Value, path: &Path, causes: &mut Vec<FieldCause>) -> HashSet<String> {
    let mut names = HashSet::new();
    let items = spec.get("volumes").and_then(Value::as_array);
    for (i, volume) in items.into_iter().flatten().enumerate() {
        let name_path = path.child("volumes").index(i).child("name");
        let name = volume
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if name.is_empty() {
            causes.push(fields::required(&name_path, ""));
            continue;
        }
        for message in validation::dns1123_label_errors(name) {
            causes.push(fields::invalid(&name_path, &json!(name), &message));
        }
        if !names.insert(name.to_string()) {
            causes.push(fields::duplicate(&name_path, &json!(name)));
        }
    }
    names
}

fn validate_container(
    c: &Value,
    path: &Path,
    volumes: &HashSet<String>,
    names: &mut HashSet<String>,
    causes: &mut Vec<FieldCause>,
) {
    let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
    let name_path = path.child("name");
    if name.is_empty() {
        causes.push(fields::required(&name_path, ""));
    } else {
        for message in validation::dns1123_label_errors(name) {
            causes.push(fields::invalid(&name_path, &json!(name), &message));
        }
        if !names.insert(name.to_string()) {
            causes.push(fields::duplicate(&name_path, &json!(name)));
        }
    }
    if c.get("image")
        .and_then(Value::as_str)
        .is_none_or(|i| i.trim().is_empty())
    {
        causes.push(fields::required(&path.child("image"), ""));
    }
    let mut port_names = HashSet::new();
    let ports = c.get("ports").and_then(Value::as_array);
    for (i, port) in ports.into_iter().flatten().enumerate() {
        let port_path = path.child("ports").index(i);
        if let Some(port_name) = port
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            for problem in fields::port_name_problems(port_name) {
                causes.push(fields::invalid(
                    &port_path.child("name"),
                    &json!(port_name),
                    problem,
                ));
            }
            if !port_names.insert(port_name.to_string()) {
                causes.push(fields::duplicate(
                    &port_path.child("name"),
                    &json!(port_name),
                ));
            }
        }
        let container_port = port.get("containerPort").filter(|v| *v != 0);
        fields::port_number(&port_path.child("containerPort"), container_port, causes);
        if let Some(host_port) = port.get("hostPort").filter(|v| !v.is_null() && *v != 0) {
            fields::port_number(&port_path.child("hostPort"), Some(host_port), causes);
        }
        if let Some(protocol) = port.get("protocol").filter(|v| !v.is_null()) {
            if !protocol.as_str().is_some_and(|p| PROTOCOLS.contains(&p)) {
                causes.push(fields::not_supported(
                    &port_path.child("protocol"),
                    protocol,
                    PROTOCOLS,
                ));
            }
        }
    }
    let mounts = c.get("volumeMounts").and_then(Value::as_array);
    for (i, mount) in mounts.into_iter().flatten().enumerate() {
        let mount_path = path.child("volumeMounts").index(i);
        let volume = mount
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if volume.is_empty() {
            causes.push(fields::required(&mount_path.child("name"), ""));
        } else if !volumes.contains(volume) {
            causes.push(fields::not_found(&mount_path.child("name"), &json!(volume)));
        }
        if mount
            .get("mountPath")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            causes.push(fields::required(&mount_path.child("mountPath"), ""));
        }
    }
}

/// Upstream's list of what a pod update may change.
const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A pod's spec may only change in the few fields upstream allows.
pub fn validate_update(old: &Value, new: &Value) -> Vec<FieldCause> {
    let (Some(old_spec), Some(new_spec)) = (old.get("spec"), new.get("spec")) else {
        return Vec::new();
    };
    let mut allowed = new_spec.clone();
    let Some(map) = allowed.as_object_mut() else {
        return Vec::new();
    };
    for list in ["containers", "initContainers"] {
        let old_images: Vec<Value> = old_spec
            .get(list)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|c| c.get("image").cloned().unwrap_or(Value::Null))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(containers) = map.get_mut(list).and_then(Value::as_array_mut) {
            if containers.len() == old_images.len() {
                for (c, image) in containers.iter_mut().zip(old_images) {
                    if let Some(c) = c.as_object_mut() {
                        c.insert("image".into(), image);
                    }
                }
            }
        }
    }
    for field in ["activeDeadlineSeconds", "terminationGracePeriodSeconds"] {
        match old_spec.get(field) {
            Some(v) => map.insert(field.to_string(), v.clone()),
            None => map.remove(field),
        };
    }
    let old_tolerations = old_spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let new_tolerations = new_spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if old_tolerations.iter().all(|t| new_tolerations.contains(t)) {
        match old_spec.get("tolerations") {
            Some(v) => map.insert("tolerations".into(), v.clone()),
            None => map.remove("tolerations"),
        };
    }
    // Scheduling gates may only be removed.
    let gates = |s: &Value| {
        s.get("schedulingGates")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    if gates(new_spec).iter().all(|g| gates(old_spec).contains(g)) {
        match old_spec.get("schedulingGates") {
            Some(v) => map.insert("schedulingGates".into(), v.clone()),
            None => map.remove("schedulingGates"),
        };
    }
    // Binding sets the node once (there is no `pods/binding` subresource yet).
    if old_spec
        .get("nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        match old_spec.get("nodeName") {
            Some(v) => map.insert("nodeName".into(), v.clone()),
            None => map.remove("nodeName"),
        };
    }
    if allowed == *old_spec {
        return Vec::new();
    }
    vec![fields::forbidden(
        &Path::new("spec"),
        &format!("pod updates may not change fields other than {UPDATABLE}"),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(causes: &[FieldCause]) -> Vec<String> {
        causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn default_toleration_seconds_look_at_key_and_effect_only() {
        let key = "node.kubernetes.io/not-ready";
        for covered in [
            json!({"key": key, "operator": "Equal", "value": "x", "effect": "NoExecute"}),
            json!({"key": key, "operator": "Exists"}),
            json!({"operator": "Exists"}),
        ] {
            assert!(tolerates_no_execute(&covered, key), "{covered}");
        }
        for other in [
            json!({"key": key, "operator": "Exists", "effect": "NoSchedule"}),
            json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists"}),
        ] {
            assert!(!tolerates_no_execute(&other, key), "{other}");
        }
    }

    #[test]
    fn create_admission_adds_account_token_tolerations_and_priority() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c", "image": "busybox"}],
            "initContainers": [{"name": "i", "image": "busybox", "resources": {"limits": {"cpu": "1"}}}],
            "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}],
        }});
        admit_create(&mut pod, "abcde");
        let spec = &pod["spec"];
        assert_eq!(spec["serviceAccountName"], "default");
        assert_eq!(spec["serviceAccount"], "default");
        assert_eq!(spec["enableServiceLinks"], true);
        assert_eq!(spec["priority"], 0);
        assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
        assert_eq!(spec["volumes"][0]["name"], "kube-api-access-abcde");
        assert_eq!(
            spec["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
                ["expirationSeconds"],
            3607
        );
        for list in ["containers", "initContainers"] {
            assert_eq!(
                spec[list][0]["volumeMounts"][0],
                json!({"name": "kube-api-access-abcde", "readOnly": true, "mountPath": TOKEN_MOUNT_PATH})
            );
        }
        let tolerations = spec["tolerations"].as_array().unwrap();
        assert_eq!(tolerations.len(), 2, "{tolerations:?}");
        assert_eq!(tolerations[0]["tolerationSeconds"], 5);
        assert_eq!(tolerations[1]["key"], "node.kubernetes.io/not-ready");
        assert_eq!(
            spec["initContainers"][0]["resources"]["requests"]["cpu"],
            "1"
        );
        assert!(validate_spec(spec, &Path::new("spec")).is_empty());

        let mut no_token = json!({"spec": {"automountServiceAccountToken": false, "serviceAccountName": "builder", "priorityClassName": "system-node-critical", "containers": [{"name": "c", "image": "x"}]}});
        admit_create(&mut no_token, "abcde");
        assert!(no_token["spec"].get("volumes").is_none());
        assert_eq!(no_token["spec"]["serviceAccount"], "builder");
        assert_eq!(no_token["spec"]["priority"], 2_000_001_000);
    }

    #[test]
    fn qos_classes() {
        let pod = |resources: Value| json!({"containers": [{"name": "c", "resources": resources}]});
        assert_eq!(qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&pod(json!({"requests": {"cpu": "100m"}}))),
            "Burstable"
        );
        assert_eq!(
            qos_class(&pod(
                json!({"requests": {"cpu": "0.1", "memory": "1Gi"}, "limits": {"cpu": "100m", "memory": "1073741824"}})
            )),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&pod(json!({"limits": {"cpu": "1"}}))),
            "Burstable"
        );
        assert_eq!(k3rs_core::quantity::parse("1.5Ki"), Some(1536.0));
    }

    #[test]
    fn validation_names_fields() {
        let spec = json!({
            "restartPolicy": "Sometimes",
            "volumes": [{"name": "cache", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}],
            "initContainers": [{"name": "web", "image": "busybox"}],
            "containers": [
                {"name": "web", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "Side_Car", "ports": [{"containerPort": 0, "name": "http"}, {"containerPort": 70000, "name": "http"}]},
            ],
        });
        let got = messages(&validate_spec(&spec, &Path::new("spec")));
        for expected in [
            "spec.volumes[1].name: Duplicate value: \"cache\"",
            "spec.containers[0].name: Duplicate value: \"web\"",
            "spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
            "spec.containers[1].image: Required value",
            "spec.containers[1].ports[0].containerPort: Required value",
            "spec.containers[1].ports[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[1].ports[1].name: Duplicate value: \"http\"",
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
        ] {
            assert!(got.contains(&expected.to_string()), "missing {expected}: {got:#?}");
        }
        assert!(got
            .iter()
            .any(|m| m.starts_with("spec.containers[1].name: Invalid value: \"Side_Car\"")));
        assert_eq!(
            messages(&validate_spec(&json!({}), &Path::new("spec.template.spec"))),
            ["spec.template.spec.containers: Required value"]
        );
    }

    #[test]
    fn updates_may_change_images_and_add_tolerations_only() {
        let old = json!({"spec": {"containers": [{"name": "c", "image": "a:1"}], "tolerations": [{"key": "x"}]}});
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("a:2");
        new["spec"]["tolerations"] = json!([{"key": "x"}, {"key": "y"}]);
        new["spec"]["activeDeadlineSeconds"] = json!(30);
        new["spec"]["nodeName"] = json!("n1");
        assert!(validate_update(&old, &new).is_empty());

        let mut removed = old.clone();
        removed["spec"]["tolerations"] = json!([]);
        let mut renamed = old.clone();
        renamed["spec"]["containers"][0]["name"] = json!("d");
        for bad in [removed, renamed] {
            let got = messages(&validate_update(&old, &bad));
            assert_eq!(got.len(), 1);
            assert!(got[0].starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"), "{got:?}");
        }
    }
}
