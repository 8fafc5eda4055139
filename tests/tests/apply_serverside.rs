//! `kubectl apply --server-side` against a real server: managedFields recorded per manager
//! and operation, fields dropped from the applied configuration are removed, conflicts
//! between field managers (and with `kubectl scale`) are reported with the manager and
//! field, `--force-conflicts` takes ownership, migration from client-side apply, Update
//! entries from `kubectl label`/`annotate`, server dry-run, and managedFields that are
//! written directly (reset with `[{}]`, replaced by JSON patch).

use k3rs_e2e::{fails, ok, K3rs};
use serde_json::{json, Value};

fn get_json(server: &K3rs, resource: &str, name: &str) -> Value {
    serde_json::from_str(&ok(server.kubectl(&[
        "get",
        resource,
        name,
        "--show-managed-fields",
        "-o",
        "json",
    ])))
    .unwrap()
}

/// `(manager, operation, subresource)` of every managedFields entry, in stored order.
fn managers(object: &Value) -> Vec<(String, String, String)> {
    object["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap_or_default().to_owned(),
                        e["operation"].as_str().unwrap_or_default().to_owned(),
                        e["subresource"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The fieldsV1 of the entry for `manager` with `operation`.
fn fields_of<'a>(object: &'a Value, manager: &str, operation: &str) -> &'a Value {
    object["metadata"]["managedFields"]
        .as_array()
        .and_then(|entries| {
            entries
                .iter()
                .find(|e| e["manager"] == manager && e["operation"] == operation)
        })
        .map(|e| &e["fieldsV1"])
        .unwrap_or_else(|| panic!("no {manager}/{operation} entry in {object}"))
}

fn entry(manager: &str, operation: &str, subresource: &str) -> (String, String, String) {
    (manager.into(), operation.into(), subresource.into())
}

fn config_map(labels: &str, data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  labels: {labels}\ndata: {data}\n"
    )
}

fn deployment(replicas: u32, image: &str) -> String {
    format!(
        "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: main
        image: {image}
"
    )
}

#[test]
fn apply_records_ownership_removes_dropped_fields_and_reports_conflicts() {
    let server = K3rs::start();
    let out = ok(server.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        &config_map(r#"{a: "1", b: "2"}"#, "{k: v}"),
    ));
    assert_eq!(out, "configmap/ssa serverside-applied\n");
    let cm = get_json(&server, "configmap", "ssa");
    assert_eq!(managers(&cm), [entry("kubectl", "Apply", "")]);
    let entry0 = &cm["metadata"]["managedFields"][0];
    assert_eq!(entry0["apiVersion"], "v1");
    assert_eq!(entry0["fieldsType"], "FieldsV1");
    assert!(entry0["time"].is_string(), "{entry0}");
    assert_eq!(
        entry0["fieldsV1"],
        json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:a": {}, "f:b": {}}}})
    );
    // Hidden unless asked for.
    let plain: Value = serde_json::from_str(&ok(server.kubectl(&[
        "get",
        "configmap",
        "ssa",
        "-o",
        "json",
    ])))
    .unwrap();
    assert!(plain["metadata"].get("managedFields").is_none(), "{plain}");

    // Re-applying without a label removes it: kubectl owned it alone.
    ok(server.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        &config_map(r#"{a: "1"}"#, "{k: v}"),
    ));
    let cm = get_json(&server, "configmap", "ssa");
    assert_eq!(cm["metadata"]["labels"], json!({"a": "1"}));
    assert_eq!(
        fields_of(&cm, "kubectl", "Apply"),
        &json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:a": {}}}})
    );

    // Another manager wanting a different value of kubectl's field conflicts.
    let theirs = config_map(r#"{c: "3"}"#, "{k: other}");
    let err = fails(server.kubectl_stdin(
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        &theirs,
    ));
    assert!(
        err.contains(r#"Apply failed with 1 conflict: conflict with "kubectl": .data.k"#),
        "{err}"
    );
    assert!(err.contains("--force-conflicts"), "{err}");
    let cm = get_json(&server, "configmap", "ssa");
    assert_eq!(cm["data"]["k"], "v", "a conflict changes nothing");
    assert_eq!(cm["metadata"]["labels"], json!({"a": "1"}));

    // Forcing takes the field over; the rest of kubectl's fields stay with it.
    let out = ok(server.kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        &theirs,
    ));
    assert_eq!(out, "configmap/ssa serverside-applied\n");
    let cm = get_json(&server, "configmap", "ssa");
    assert_eq!(cm["data"]["k"], "other");
    assert_eq!(cm["metadata"]["labels"], json!({"a": "1", "c": "3"}));
    assert_eq!(
        fields_of(&cm, "other", "Apply"),
        &json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:c": {}}}})
    );
    assert_eq!(
        fields_of(&cm, "kubectl", "Apply"),
        &json!({"f:metadata": {"f:labels": {"f:a": {}}}})
    );

    // kubectl applying its old value again now conflicts with "other".
    let err = fails(server.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        &config_map(r#"{a: "1"}"#, "{k: v}"),
    ));
    assert!(err.contains(r#"conflict with "other": .data.k"#), "{err}");
}

#[test]
fn migration_from_client_side_apply() {
    let server = K3rs::start();
    let manifest = config_map(r#"{keep: "1", drop: "1"}"#, "{k: v}");
    assert_eq!(
        ok(server.kubectl_stdin(&["apply", "-f", "-"], &manifest)),
        "configmap/ssa created\n"
    );
    let cm = get_json(&server, "configmap", "ssa");
    assert_eq!(
        managers(&cm),
        [entry("kubectl-client-side-apply", "Update", "")]
    );
    assert!(
        cm["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );

    assert_eq!(
        ok(server.kubectl_stdin(&["apply", "--server-side", "-f", "-"], &manifest)),
        "configmap/ssa serverside-applied\n"
    );
    let out = ok(server.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        &config_map(r#"{keep: "1"}"#, "{k: v}"),
    ));
    assert_eq!(out, "configmap/ssa serverside-applied\n");
    let cm = get_json(&server, "configmap", "ssa");
    assert_eq!(cm["metadata"]["labels"], json!({"keep": "1"}), "{cm}");
    assert_eq!(cm["data"], json!({"k": "v"}));
    let kubectl_fields = fields_of(&cm, "kubectl", "Apply");
    assert!(
        kubectl_fields["f:metadata"]["f:labels"]
            .get("f:keep")
            .is_some(),
        "{kubectl_fields}"
    );

    // kubectl upgrades the client-side-apply ownership into its Apply entry with a JSON
    // patch replacing metadata.managedFields; afterwards no client-side-apply manager is left.
    assert!(
        !managers(&cm)
            .iter()
            .any(|(manager, _, _)| manager == "kubectl-client-side-apply"),
        "client-side-apply entry survived the upgrade: {:?}",
        cm["metadata"]["managedFields"]
    );
}

#[test]
fn scale_label_annotate_and_dry_run_with_server_side_apply() {
    // Without the deployment controller, whose own managedFields entries
    // (`kube-controller-manager`) would join kubectl's.
    let server = K3rs::start_with(&["--disable-controller-manager"]);
    ok(server.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        &deployment(2, "registry.example/web:1"),
    ));
    assert_eq!(
        ok(server.kubectl(&["scale", "deploy", "web", "--replicas=4"])),
        "deployment.apps/web scaled\n"
    );
    let deploy = get_json(&server, "deploy", "web");
    assert_eq!(deploy["spec"]["replicas"], 4);
    assert_eq!(
        managers(&deploy),
        [
            entry("kubectl", "Apply", ""),
            entry("kubectl", "Update", "scale")
        ]
    );
    assert_eq!(
        fields_of(&deploy, "kubectl", "Update"),
        &json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(
        fields_of(&deploy, "kubectl", "Apply")["f:spec"]
            .get("f:replicas")
            .is_none(),
        "the scale took replicas over"
    );

    // Applying another replica count conflicts with the scale subresource's manager.
    let err = fails(server.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        &deployment(3, "registry.example/web:1"),
    ));
    assert!(
        err.contains(
            r#"Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas"#
        ),
        "{err}"
    );
    assert_eq!(get_json(&server, "deploy", "web")["spec"]["replicas"], 4);
    ok(server.kubectl_stdin(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &deployment(3, "registry.example/web:1"),
    ));
    let deploy = get_json(&server, "deploy", "web");
    assert_eq!(deploy["spec"]["replicas"], 3);
    assert_eq!(managers(&deploy), [entry("kubectl", "Apply", "")]);

    // Imperative edits are Update entries of their own managers.
    assert_eq!(
        ok(server.kubectl(&["label", "deploy", "web", "team=a"])),
        "deployment.apps/web labeled\n"
    );
    assert_eq!(
        ok(server.kubectl(&["annotate", "deploy", "web", "note=x"])),
        "deployment.apps/web annotated\n"
    );
    let deploy = get_json(&server, "deploy", "web");
    let all = managers(&deploy);
    assert!(
        all.contains(&entry("kubectl-label", "Update", "")),
        "{all:?}"
    );
    assert!(
        all.contains(&entry("kubectl-annotate", "Update", "")),
        "{all:?}"
    );
    assert_eq!(
        fields_of(&deploy, "kubectl-label", "Update"),
        &json!({"f:metadata": {"f:labels": {".": {}, "f:team": {}}}})
    );
    assert_eq!(
        fields_of(&deploy, "kubectl-annotate", "Update"),
        &json!({"f:metadata": {"f:annotations": {".": {}, "f:note": {}}}})
    );

    // Server dry-run reports the result but stores nothing.
    let before = get_json(&server, "deploy", "web");
    let out = ok(server.kubectl_stdin(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        &deployment(3, "registry.example/web:2"),
    ));
    assert_eq!(
        out,
        "deployment.apps/web serverside-applied (server dry run)\n"
    );
    let after = get_json(&server, "deploy", "web");
    assert_eq!(
        after["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/web:1"
    );
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert_eq!(
        after["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    // Dry-run of a create stores nothing either.
    let out = ok(server.kubectl_stdin(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        &config_map(r#"{a: "1"}"#, "{k: v}"),
    ));
    assert_eq!(out, "configmap/ssa serverside-applied (server dry run)\n");
    let err = fails(server.kubectl(&["get", "configmap", "ssa"]));
    assert!(err.contains(r#"configmaps "ssa" not found"#), "{err}");
}

#[test]
fn unchanged_apply_and_direct_managed_field_writes() {
    let server = K3rs::start();
    ok(server.kubectl(&[
        "create",
        "configmap",
        "ssa",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ]));

    // Reset: a single empty entry strips managedFields (documented upstream).
    ok(server.kubectl(&[
        "patch",
        "configmap",
        "ssa",
        "--type=merge",
        "-p",
        r#"{"metadata":{"managedFields":[{}]}}"#,
    ]));
    let cm = get_json(&server, "configmap", "ssa");
    assert!(
        managers(&cm).is_empty(),
        "managedFields not reset: {:?}",
        cm["metadata"]["managedFields"]
    );

    // A JSON patch may set them outright (`add`: after the reset there are none to replace).
    ok(server.kubectl(&[
        "patch",
        "configmap",
        "ssa",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/managedFields","value":[{"manager":"someone","operation":"Apply","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:a":{}}}}]}]"#,
    ]));
    let cm = get_json(&server, "configmap", "ssa");
    assert_eq!(managers(&cm), [entry("someone", "Apply", "")], "{cm}");

    // Applying values equal to the live ones still makes the applier a co-owner.
    ok(server.kubectl_stdin(
        &["apply", "--server-side", "--field-manager=x", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {b: \"2\"}\n",
    ));
    let cm = get_json(&server, "configmap", "ssa");
    assert_eq!(
        fields_of(&cm, "x", "Apply"),
        &json!({"f:data": {"f:b": {}}}),
        "{cm}"
    );
}
