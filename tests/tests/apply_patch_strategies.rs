//! Strategic merge patch semantics as kubectl uses them on built-in kinds: lists merged by
//! their keys (containers by name, container ports by containerPort, env and volumes by name,
//! Service ports by port), the `$patch: delete` / `$patch: replace` directives, `$retainKeys`,
//! `$deleteFromPrimitiveList`, `$setElementOrder` from `kubectl apply`, `kubectl set image`;
//! and deletion propagation: foreground / orphan finalizers and a Terminating namespace that
//! refuses new content until its last finalizer is gone.

use std::time::{Duration, Instant};

use k3rs_e2e::wait::eventually_blocking;
use k3rs_e2e::{fails, ok, K3rs};
use serde_json::{json, Value};

fn get_json(server: &K3rs, args: &[&str]) -> Value {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&ok(server.kubectl(&full))).unwrap()
}

fn patch(server: &K3rs, resource: &str, name: &str, kind: &str, body: &str) -> String {
    ok(server.kubectl(&["patch", resource, name, "--type", kind, "-p", body]))
}

/// Values of `key` in each element of the array at `value`.
fn keys(value: &Value, key: &str) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|item| match &item[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sm
  finalizers: [example.com/a, example.com/b]
spec:
  replicas: 1
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 2, maxUnavailable: 0}
  selector: {matchLabels: {app: sm}}
  template:
    metadata: {labels: {app: sm}}
    spec:
      nodeSelector: {disk: ssd, zone: z1}
      volumes:
      - {name: v1, emptyDir: {}}
      - {name: v2, emptyDir: {}}
      containers:
      - name: a
        image: img/a:1
        ports: [{containerPort: 80, name: http}, {containerPort: 443, name: https}]
        env: [{name: FOO, value: \"1\"}, {name: BAR, value: \"2\"}]
      - name: b
        image: img/b:1
";

#[test]
fn strategic_merge_patch_on_a_deployment() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["apply", "-f", "-"], DEPLOYMENT));

    // Containers by name, ports by containerPort, env and volumes by name.
    let out = patch(
        &server,
        "deploy",
        "sm",
        "strategic",
        r#"{"spec":{"template":{"spec":{
            "containers":[{"name":"a","image":"img/a:2",
                "ports":[{"containerPort":80,"protocol":"TCP","name":"web"}],
                "env":[{"name":"BAR","value":"3"},{"name":"BAZ","value":"4"}]}],
            "volumes":[{"name":"v3","emptyDir":{}}]}}}}"#,
    );
    assert_eq!(out, "deployment.apps/sm patched\n");
    let deploy = get_json(&server, &["deploy", "sm"]);
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(keys(&pod["containers"], "name"), ["a", "b"]);
    let a = &pod["containers"][0];
    assert_eq!(a["image"], "img/a:2");
    assert_eq!(pod["containers"][1]["image"], "img/b:1");
    assert_eq!(
        a["ports"],
        json!([
            {"containerPort": 80, "name": "web", "protocol": "TCP"},
            {"containerPort": 443, "name": "https", "protocol": "TCP"}
        ])
    );
    assert_eq!(
        a["env"],
        json!([
            {"name": "FOO", "value": "1"},
            {"name": "BAR", "value": "3"},
            {"name": "BAZ", "value": "4"}
        ])
    );
    assert_eq!(keys(&pod["volumes"], "name"), ["v1", "v2", "v3"]);
    assert_eq!(pod["nodeSelector"], json!({"disk": "ssd", "zone": "z1"}));

    // `$patch: delete` removes one container; `$patch: replace` swaps a whole map.
    patch(
        &server,
        "deploy",
        "sm",
        "strategic",
        r#"{"spec":{"template":{"spec":{
            "containers":[{"name":"b","$patch":"delete"}],
            "nodeSelector":{"$patch":"replace","disk":"hdd"}}}}}"#,
    );
    let deploy = get_json(&server, &["deploy", "sm"]);
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(keys(&pod["containers"], "name"), ["a"]);
    assert_eq!(pod["containers"][0]["image"], "img/a:2");
    assert_eq!(pod["nodeSelector"], json!({"disk": "hdd"}));

    // A plain merge patch of the same map merges it instead.
    patch(
        &server,
        "deploy",
        "sm",
        "strategic",
        r#"{"spec":{"template":{"spec":{"nodeSelector":{"zone":"z2"}}}}}"#,
    );
    assert_eq!(
        get_json(&server, &["deploy", "sm"])["spec"]["template"]["spec"]["nodeSelector"],
        json!({"disk": "hdd", "zone": "z2"})
    );

    // `$retainKeys` drops rollingUpdate when the strategy becomes Recreate.
    assert_eq!(
        get_json(&server, &["deploy", "sm"])["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}})
    );
    patch(
        &server,
        "deploy",
        "sm",
        "strategic",
        r#"{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}"#,
    );
    assert_eq!(
        get_json(&server, &["deploy", "sm"])["spec"]["strategy"],
        json!({"type": "Recreate"})
    );

    // `$deleteFromPrimitiveList` on finalizers.
    patch(
        &server,
        "deploy",
        "sm",
        "strategic",
        r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["example.com/a"]}}"#,
    );
    assert_eq!(
        get_json(&server, &["deploy", "sm"])["metadata"]["finalizers"],
        json!(["example.com/b"])
    );

    // A JSON merge patch replaces lists wholesale, for contrast.
    patch(
        &server,
        "deploy",
        "sm",
        "merge",
        r#"{"spec":{"template":{"spec":{"volumes":[{"name":"only","emptyDir":{}}]}}}}"#,
    );
    assert_eq!(
        keys(
            &get_json(&server, &["deploy", "sm"])["spec"]["template"]["spec"]["volumes"],
            "name"
        ),
        ["only"]
    );
    patch(
        &server,
        "deploy",
        "sm",
        "merge",
        r#"{"metadata":{"finalizers":null}}"#,
    );
}

#[test]
fn apply_reorders_containers_and_set_image_touches_one() {
    let server = K3rs::start();
    let manifest = |order: &[&str]| {
        let mut yaml = String::from(
            "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: order
spec:
  replicas: 1
  selector: {matchLabels: {app: order}}
  template:
    metadata: {labels: {app: order}}
    spec:
      containers:
",
        );
        for name in order {
            yaml.push_str(&format!("      - {{name: {name}, image: img/{name}:1}}\n"));
        }
        yaml
    };
    ok(server.kubectl_stdin(
        &["apply", "-f", "-"],
        &manifest(&["first", "second", "third"]),
    ));
    let out = ok(server.kubectl_stdin(
        &["apply", "-f", "-"],
        &manifest(&["third", "first", "second"]),
    ));
    assert_eq!(out, "deployment.apps/order configured\n");
    let containers =
        &get_json(&server, &["deploy", "order"])["spec"]["template"]["spec"]["containers"];
    assert_eq!(keys(containers, "name"), ["third", "first", "second"]);

    // Reorder plus removal plus addition in one apply.
    ok(server.kubectl_stdin(
        &["apply", "-f", "-"],
        &manifest(&["second", "fourth", "third"]),
    ));
    let containers =
        &get_json(&server, &["deploy", "order"])["spec"]["template"]["spec"]["containers"];
    assert_eq!(keys(containers, "name"), ["second", "fourth", "third"]);

    let out = ok(server.kubectl(&["set", "image", "deploy/order", "fourth=img/fourth:2"]));
    assert_eq!(out, "deployment.apps/order image updated\n");
    let containers =
        &get_json(&server, &["deploy", "order"])["spec"]["template"]["spec"]["containers"];
    assert_eq!(keys(containers, "name"), ["second", "fourth", "third"]);
    assert_eq!(
        keys(containers, "image"),
        ["img/second:1", "img/fourth:2", "img/third:1"]
    );
    let err = fails(server.kubectl(&["set", "image", "deploy/order", "nope=img/x:1"]));
    assert!(
        err.contains(r#"unable to find container named "nope""#),
        "{err}"
    );
}

#[test]
fn service_ports_merge_by_port_and_pod_containers_by_name() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(
        &["apply", "-f", "-"],
        "\
apiVersion: v1
kind: Service
metadata: {name: svc}
spec:
  selector: {app: x}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: 8443}
",
    ));
    patch(
        &server,
        "svc",
        "svc",
        "strategic",
        r#"{"spec":{"ports":[{"port":80,"name":"http","targetPort":9090},{"port":8081,"name":"extra","targetPort":8081}]}}"#,
    );
    let svc = get_json(&server, &["svc", "svc"]);
    assert_eq!(
        svc["spec"]["ports"],
        json!([
            {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 9090},
            {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443},
            {"name": "extra", "port": 8081, "protocol": "TCP", "targetPort": 8081}
        ])
    );
    patch(
        &server,
        "svc",
        "svc",
        "strategic",
        r#"{"spec":{"ports":[{"port":443,"$patch":"delete"}]}}"#,
    );
    assert_eq!(
        keys(&get_json(&server, &["svc", "svc"])["spec"]["ports"], "name"),
        ["http", "extra"]
    );

    // A Pod (never scheduled: no node has the label) takes image changes by container name.
    ok(server.kubectl_stdin(
        &["apply", "-f", "-"],
        "\
apiVersion: v1
kind: Pod
metadata: {name: p, labels: {a: \"1\"}}
spec:
  nodeSelector: {e2e.k3rs.io/nowhere: \"true\"}
  containers:
  - {name: one, image: img/one:1}
  - {name: two, image: img/two:1}
",
    ));
    patch(
        &server,
        "pod",
        "p",
        "strategic",
        r#"{"metadata":{"labels":{"b":"2"}},"spec":{"containers":[{"name":"two","image":"img/two:2"}]}}"#,
    );
    let pod = get_json(&server, &["pod", "p"]);
    assert_eq!(pod["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    assert_eq!(
        keys(&pod["spec"]["containers"], "image"),
        ["img/one:1", "img/two:2"]
    );
}

#[test]
fn delete_propagation_policies_are_recorded_as_finalizers() {
    // Without the garbage collector, which would act on the finalizers at once: this is
    // about what the API server records.
    let server = K3rs::start_with(&["--disable-controller-manager"]);
    for name in ["fg", "or"] {
        ok(server.kubectl(&["create", "deployment", name, "--image=img/x:1"]));
        // Our own finalizer keeps the object around to be looked at.
        patch(
            &server,
            "deploy",
            name,
            "merge",
            r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
        );
    }
    let out = ok(server.kubectl(&[
        "delete",
        "deploy",
        "fg",
        "--cascade=foreground",
        "--wait=false",
    ]));
    assert_eq!(out, "deployment.apps \"fg\" deleted\n");
    let fg = get_json(&server, &["deploy", "fg"]);
    assert!(fg["metadata"]["deletionTimestamp"].is_string(), "{fg}");
    assert!(
        fg["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .contains(&json!("foregroundDeletion")),
        "{fg}"
    );

    ok(server.kubectl(&["delete", "deploy", "or", "--cascade=orphan", "--wait=false"]));
    let orphan = get_json(&server, &["deploy", "or"]);
    assert!(
        orphan["metadata"]["deletionTimestamp"].is_string(),
        "{orphan}"
    );
    assert!(
        orphan["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .contains(&json!("orphan")),
        "{orphan}"
    );

    // Releasing all finalizers lets them go.
    for name in ["fg", "or"] {
        patch(
            &server,
            "deploy",
            name,
            "merge",
            r#"{"metadata":{"finalizers":null}}"#,
        );
    }
    eventually_blocking(
        Duration::from_secs(10),
        "the deployments to be gone",
        || ok(server.kubectl(&["get", "deploy", "-o", "name"])).is_empty(),
    );
}

#[test]
fn terminating_namespace_refuses_new_content() {
    let server = K3rs::start();
    ok(server.kubectl(&["create", "namespace", "term"]));
    ok(server.kubectl(&[
        "-n",
        "term",
        "create",
        "configmap",
        "held",
        "--from-literal=a=1",
    ]));
    ok(server.kubectl(&[
        "-n",
        "term",
        "patch",
        "configmap",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]));
    let out = ok(server.kubectl(&["delete", "namespace", "term", "--wait=false"]));
    assert_eq!(out, "namespace \"term\" deleted\n");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ns = get_json(&server, &["namespace", "term"]);
        if ns["status"]["phase"] == "Terminating" {
            assert!(ns["metadata"]["deletionTimestamp"].is_string(), "{ns}");
            break;
        }
        assert!(Instant::now() < deadline, "{ns}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let table = ok(server.kubectl(&["get", "namespace", "term"]));
    assert!(
        table.lines().nth(1).unwrap().split_whitespace().nth(1) == Some("Terminating"),
        "{table}"
    );

    let refused = "is forbidden: unable to create new content in namespace term because it is being terminated";
    let generator_err = fails(server.kubectl(&[
        "-n",
        "term",
        "create",
        "configmap",
        "new",
        "--from-literal=a=1",
    ]));
    assert!(generator_err.contains(refused), "{generator_err}");
    let manifest_err = fails(server.kubectl_stdin(
        &["-n", "term", "apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new2}\ndata: {a: \"1\"}\n",
    ));
    assert!(manifest_err.contains(refused), "{manifest_err}");
    // The object held by its finalizer is still readable while the namespace drains.
    ok(server.kubectl(&["-n", "term", "get", "configmap", "held"]));

    ok(server.kubectl(&[
        "-n",
        "term",
        "patch",
        "configmap",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]));
    eventually_blocking(Duration::from_secs(15), "namespace term to go away", || {
        !server
            .kubectl(&["get", "namespace", "term"])
            .status
            .success()
    });
    let err = fails(server.kubectl(&["get", "namespace", "term"]));
    assert!(err.contains(r#"namespaces "term" not found"#), "{err}");

    // Upstream names the object being created (the create handler takes the name from the
    // body before admission): `configmaps "new" is forbidden: ...`.
    assert!(
        generator_err.contains(&format!(r#"configmaps "new" {refused}"#)),
        "{generator_err}"
    );
    assert!(
        manifest_err.contains(&format!(r#"configmaps "new2" {refused}"#)),
        "{manifest_err}"
    );
}
