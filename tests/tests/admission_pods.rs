//! Pod admission and immutable fields against a real `k3rs server`: the defaults upstream's
//! admission plugins add (service account and its token volume, tolerations, priority, QoS),
//! pod validation with exact field paths, what a pod update may change, and the immutable
//! fields of workloads, ConfigMaps and Secrets.

use k3rs_e2e::{fails, ok, K3rs};
use serde_json::Value;

const POD: &str = "\
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: web
    image: nginx:1.27
    ports: [{name: http, containerPort: 80}]
";

fn get_json(server: &K3rs, args: &[&str]) -> Value {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&ok(server.kubectl(&full))).unwrap()
}

#[test]
fn pods_get_upstream_admission_defaults() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], POD));
    let yaml = ok(server.kubectl(&["get", "pod", "web", "-o", "yaml"]));
    for expected in [
        "serviceAccountName: default",
        "serviceAccount: default",
        "enableServiceLinks: true",
        "priority: 0",
        "preemptionPolicy: PreemptLowerPriority",
        "qosClass: BestEffort",
        "key: node.kubernetes.io/not-ready",
        "key: node.kubernetes.io/unreachable",
        "tolerationSeconds: 300",
        "mountPath: /var/run/secrets/kubernetes.io/serviceaccount",
        "name: kube-root-ca.crt",
        "expirationSeconds: 3607",
        "fieldPath: metadata.namespace",
    ] {
        assert!(yaml.contains(expected), "missing {expected:?} in:\n{yaml}");
    }
    let pod = get_json(&server, &["pod", "web"]);
    let volume = &pod["spec"]["volumes"][0];
    let name = volume["name"].as_str().unwrap();
    assert!(name.starts_with("kube-api-access-"), "{name}");
    assert_eq!(name.len(), "kube-api-access-".len() + 5);
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"][0],
        serde_json::json!({"name": name, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"})
    );

    // No token when the pod opts out; QoS from resources.
    let opted_out = "\
apiVersion: v1
kind: Pod
metadata: {name: quiet}
spec:
  automountServiceAccountToken: false
  serviceAccountName: builder
  containers:
  - name: c
    image: busybox
    resources: {limits: {cpu: 100m, memory: 64Mi}}
";
    ok(server.kubectl_stdin(&["create", "-f", "-"], opted_out));
    let pod = get_json(&server, &["pod", "quiet"]);
    assert!(pod["spec"].get("volumes").is_none(), "{pod}");
    assert_eq!(pod["spec"]["serviceAccount"], "builder");
    assert_eq!(pod["status"]["qosClass"], "Guaranteed");
    assert_eq!(
        pod["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "100m"
    );
    ok(server.kubectl(&[
        "run",
        "burst",
        "--image=busybox",
        "--overrides={\"spec\":{\"containers\":[{\"name\":\"burst\",\"image\":\"busybox\",\"resources\":{\"requests\":{\"cpu\":\"10m\"}}}]}}",
    ]));
    let pod = get_json(&server, &["pod", "burst"]);
    assert_eq!(pod["status"]["qosClass"], "Burstable");
}

const INVALID_POD: &str = "\
apiVersion: v1
kind: Pod
metadata: {name: broken}
spec:
  restartPolicy: Sometimes
  volumes: [{name: cache, emptyDir: {}}, {name: cache, emptyDir: {}}]
  initContainers: [{name: web, image: busybox}]
  containers:
  - name: web
    image: nginx
    volumeMounts: [{name: data, mountPath: /data}]
  - name: side
    ports: [{containerPort: 70000}]
";

#[test]
fn invalid_pods_name_each_field() {
    let server = K3rs::start();
    let err = fails(server.kubectl_stdin(&["create", "-f", "-"], INVALID_POD));
    for expected in [
        r#"The Pod "broken" is invalid"#,
        r#"spec.volumes[1].name: Duplicate value: "cache""#,
        r#"spec.containers[0].name: Duplicate value: "web""#,
        r#"spec.containers[0].volumeMounts[0].name: Not found: "data""#,
        "spec.containers[1].image: Required value",
        "spec.containers[1].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#,
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    let empty = "apiVersion: v1\nkind: Pod\nmetadata: {name: empty}\nspec: {containers: []}\n";
    let err = fails(server.kubectl_stdin(&["create", "-f", "-"], empty));
    assert!(err.contains("spec.containers: Required value"), "{err}");
    // Workload templates are pod specs too.
    let deployment = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: hollow}
spec:
  selector: {matchLabels: {app: h}}
  template:
    metadata: {labels: {app: h}}
    spec: {containers: [{name: c}]}
";
    let err = fails(server.kubectl_stdin(&["create", "-f", "-"], deployment));
    assert!(
        err.contains("spec.template.spec.containers[0].image: Required value"),
        "{err}"
    );
    let err = fails(server.kubectl(&["get", "pod", "broken"]));
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn pod_updates_are_limited_to_upstreams_fields() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], POD));
    ok(server.kubectl(&["set", "image", "pod/web", "web=nginx:1.28"]));
    ok(server.kubectl(&["label", "pod", "web", "tier=front"]));
    ok(server.kubectl(&[
        "patch",
        "pod",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/tolerations/-","value":{"key":"dedicated","operator":"Exists"}}]"#,
    ]));
    let pod = get_json(&server, &["pod", "web"]);
    assert_eq!(pod["spec"]["containers"][0]["image"], "nginx:1.28");
    assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 3);

    for patch in [
        r#"{"spec":{"restartPolicy":"Never"}}"#,
        r#"{"spec":{"tolerations":[]}}"#,
    ] {
        let err = fails(server.kubectl(&["patch", "pod", "web", "--type=merge", "-p", patch]));
        assert!(
            err.contains(r#"The Pod "web" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations)"#),
            "{patch}: {err}"
        );
    }
}

#[test]
fn immutable_fields_are_refused() {
    let server = K3rs::start();
    ok(server.kubectl(&["create", "deployment", "web", "--image=nginx"]));
    let err = fails(server.kubectl(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"selector":{"matchLabels":{"app":"other"}},"template":{"metadata":{"labels":{"app":"other"}}}}}"#,
    ]));
    assert!(
        err.contains(
            r#"spec.selector: Invalid value: {"matchLabels":{"app":"other"}}: field is immutable"#
        ),
        "{err}"
    );
    ok(server.kubectl(&["scale", "deployment", "web", "--replicas=3"]));

    let config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: frozen}\nimmutable: true\ndata: {a: b}\n";
    ok(server.kubectl_stdin(&["create", "-f", "-"], config));
    let err = fails(server.kubectl(&[
        "patch",
        "configmap",
        "frozen",
        "--type=merge",
        "-p",
        r#"{"data":{"a":"c"}}"#,
    ]));
    assert!(
        err.contains(r#"The ConfigMap "frozen" is invalid: data: Forbidden: field is immutable when `immutable` is set"#),
        "{err}"
    );
    ok(server.kubectl(&["label", "configmap", "frozen", "still=editable"]));

    ok(server.kubectl(&["create", "secret", "generic", "creds", "--from-literal=a=b"]));
    let err = fails(server.kubectl(&[
        "patch",
        "secret",
        "creds",
        "--type=merge",
        "-p",
        r#"{"type":"kubernetes.io/basic-auth"}"#,
    ]));
    assert!(
        err.contains(r#"type: Invalid value: "kubernetes.io/basic-auth": field is immutable"#),
        "{err}"
    );

    ok(server.kubectl(&["create", "job", "pi", "--image=busybox"]));
    let job = get_json(&server, &["job", "pi"]);
    let uid = job["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"],
        "pi"
    );
    let err = fails(server.kubectl(&[
        "patch",
        "job",
        "pi",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"busybox:2"}]"#,
    ]));
    assert!(err.contains("spec.template: Invalid value"), "{err}");
    assert!(err.contains("field is immutable"), "{err}");
}
