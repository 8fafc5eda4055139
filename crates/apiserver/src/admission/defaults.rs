//! Defaults the API server fills in, as upstream's `SetDefaults_*` functions do, so stored
//! objects look the same as on a kube-apiserver.

use k3rs_core::ResourceDef;
use serde_json::{json, Map, Value};

/// Insert `value` at `key` if the key is absent or null.
fn default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

/// The object at `path` under `obj`, created as `{}` when absent.
fn object_at<'a>(obj: &'a mut Value, path: &[&str]) -> Option<&'a mut Map<String, Value>> {
    let mut cur = obj;
    for part in path {
        let map = cur.as_object_mut()?;
        if !map.get(*part).is_some_and(Value::is_object) {
            map.insert(part.to_string(), json!({}));
        }
        cur = map.get_mut(*part)?;
    }
    cur.as_object_mut()
}

pub fn apply(def: &ResourceDef, obj: &mut Value) {
    match (def.group.as_str(), def.kind.as_str()) {
        ("", "Namespace") => namespace(obj),
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                pod_spec(spec);
            }
            if let Some(status) = object_at(obj, &["status"]) {
                default(status, "phase", json!("Pending"));
            }
        }
        ("", "Service") => service(obj),
        ("", "Secret") => {
            if let Some(map) = obj.as_object_mut() {
                default(map, "type", json!("Opaque"));
            }
        }
        ("apps", "Deployment") => {
            if let Some(spec) = object_at(obj, &["spec"]) {
                default(spec, "replicas", json!(1));
                default(spec, "revisionHistoryLimit", json!(10));
                default(spec, "progressDeadlineSeconds", json!(600));
                strategy(
                    spec,
                    "strategy",
                    json!({"maxUnavailable": "25%", "maxSurge": "25%"}),
                );
            }
            template(obj, &["spec", "template", "spec"]);
        }
        ("apps", "ReplicaSet") => {
            if let Some(spec) = object_at(obj, &["spec"]) {
                default(spec, "replicas", json!(1));
            }
            template(obj, &["spec", "template", "spec"]);
        }
        ("apps", "DaemonSet") => {
            if let Some(spec) = object_at(obj, &["spec"]) {
                default(spec, "revisionHistoryLimit", json!(10));
                strategy(
                    spec,
                    "updateStrategy",
                    json!({"maxUnavailable": 1, "maxSurge": 0}),
                );
            }
            template(obj, &["spec", "template", "spec"]);
        }
        ("apps", "StatefulSet") => {
            if let Some(spec) = object_at(obj, &["spec"]) {
                default(spec, "replicas", json!(1));
                default(spec, "podManagementPolicy", json!("OrderedReady"));
                default(spec, "revisionHistoryLimit", json!(10));
                strategy(spec, "updateStrategy", json!({"partition": 0}));
                default(
                    spec,
                    "persistentVolumeClaimRetentionPolicy",
                    json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                );
            }
            template(obj, &["spec", "template", "spec"]);
        }
        ("batch", "Job") => {
            job_spec(obj.get_mut("spec"));
            template(obj, &["spec", "template", "spec"]);
        }
        ("batch", "CronJob") => {
            if let Some(spec) = object_at(obj, &["spec"]) {
                default(spec, "concurrencyPolicy", json!("Allow"));
                default(spec, "suspend", json!(false));
                default(spec, "successfulJobsHistoryLimit", json!(3));
                default(spec, "failedJobsHistoryLimit", json!(1));
            }
            if let Some(job) = obj.pointer_mut("/spec/jobTemplate") {
                job_spec(job.get_mut("spec"));
            }
            template(obj, &["spec", "jobTemplate", "spec", "template", "spec"]);
        }
        _ => {}
    }
}

/// A workload's update strategy: `RollingUpdate` when no type is given (also when the
/// client sent an empty object, as protobuf clients do), with its parameters defaulted.
fn strategy(spec: &mut Map<String, Value>, field: &str, rolling_defaults: Value) {
    let strategy = spec.entry(field.to_string()).or_insert_with(|| json!({}));
    if !strategy.is_object() {
        *strategy = json!({});
    }
    let map = strategy.as_object_mut().expect("made an object above");
    if map
        .get("type")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        map.insert("type".into(), json!("RollingUpdate"));
    }
    if map.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let rolling = map
            .entry("rollingUpdate".to_string())
            .or_insert_with(|| json!({}));
        if let (Some(rolling), Some(defaults)) =
            (rolling.as_object_mut(), rolling_defaults.as_object())
        {
            for (k, v) in defaults {
                default(rolling, k, v.clone());
            }
        }
    }
}

fn namespace(obj: &mut Value) {
    let name = crate::object::name(obj).unwrap_or_default().to_string();
    if let Some(labels) = object_at(obj, &["metadata", "labels"]) {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    if let Some(spec) = object_at(obj, &["spec"]) {
        default(spec, "finalizers", json!(["kubernetes"]));
    }
    if let Some(status) = object_at(obj, &["status"]) {
        default(status, "phase", json!("Active"));
    }
}

fn service(obj: &mut Value) {
    let Some(spec) = object_at(obj, &["spec"]) else {
        return;
    };
    default(spec, "type", json!("ClusterIP"));
    default(spec, "sessionAffinity", json!("None"));
    default(spec, "internalTrafficPolicy", json!("Cluster"));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if ty != "ExternalName" {
        default(spec, "ipFamilies", json!(["IPv4"]));
        default(spec, "ipFamilyPolicy", json!("SingleStack"));
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            default(port, "protocol", json!("TCP"));
            if let Some(p) = port.get("port").cloned() {
                default(port, "targetPort", p);
            }
        }
    }
}

fn job_spec(spec: Option<&mut Value>) {
    let Some(spec) = spec.and_then(Value::as_object_mut) else {
        return;
    };
    // Upstream: both unset means one pod to completion; a parallelism without completions
    // is a work-queue Job, which finishes when any pod succeeds, so completions stays unset.
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism").is_none_or(Value::is_null)
    {
        default(spec, "completions", json!(1));
    }
    default(spec, "parallelism", json!(1));
    default(spec, "backoffLimit", json!(6));
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
}

/// Pod-spec defaults inside a workload's pod template.
fn template(obj: &mut Value, path: &[&str]) {
    let pointer = format!("/{}", path.join("/"));
    if let Some(spec) = obj.pointer_mut(&pointer) {
        pod_spec(spec);
    }
}

fn pod_spec(spec: &mut Value) {
    let Some(map) = spec.as_object_mut() else {
        return;
    };
    default(map, "restartPolicy", json!("Always"));
    default(map, "dnsPolicy", json!("ClusterFirst"));
    default(map, "terminationGracePeriodSeconds", json!(30));
    default(map, "schedulerName", json!("default-scheduler"));
    default(map, "securityContext", json!({}));
    for list in ["initContainers", "containers"] {
        if let Some(containers) = map.get_mut(list).and_then(Value::as_array_mut) {
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                container(c);
            }
        }
    }
}

fn container(c: &mut Map<String, Value>) {
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    default(c, "resources", json!({}));
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    default(c, "imagePullPolicy", json!(pull_policy(image)));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            default(port, "protocol", json!("TCP"));
        }
    }
}

/// `Always` for `:latest` or untagged images, otherwise `IfNotPresent`, as upstream.
fn pull_policy(image: &str) -> &'static str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        _ if image.contains('@') => "IfNotPresent",
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_and_deployment_defaults() {
        let pods = k3rs_core::resource::find("", "v1", "pods").unwrap();
        let mut pod = json!({"spec": {"containers": [{"name": "c", "image": "busybox"}, {"name": "d", "image": "reg:5000/x:1.2"}]}});
        apply(pods, &mut pod);
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            pod["spec"]["containers"][1]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(pod["status"]["phase"], "Pending");

        let deploy = k3rs_core::resource::find("apps", "v1", "deployments").unwrap();
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "a:1"}]}}}});
        apply(deploy, &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(d["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    }

    #[test]
    fn service_ports_default_target_port() {
        let svc = k3rs_core::resource::find("", "v1", "services").unwrap();
        let mut s = json!({"spec": {"ports": [{"port": 80}]}});
        apply(svc, &mut s);
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(s["spec"]["ports"][0]["protocol"], "TCP");
        assert_eq!(s["spec"]["type"], "ClusterIP");
    }
}
