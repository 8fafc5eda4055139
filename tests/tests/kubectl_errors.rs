//! kubectl error paths against a real server: NotFound, AlreadyExists, invalid names,
//! field validation (strict by default, `--validate=false`, `--validate=warn`), unknown kinds,
//! missing namespaces, stale-resourceVersion conflicts and failed patches — checking the
//! exact messages and that every failed write leaves the store untouched.

use k3rs_e2e::{fails, ok, K3rs, ROOT_CA};
use serde_json::Value;

/// What the tests' writes could have touched: every configmap, secret, deployment, pod and
/// namespace by name, with the resourceVersion of the kinds no controller writes to (so a
/// background status update cannot make a check flaky). Skips the root-CA configmaps.
fn snapshot(server: &K3rs) -> Vec<String> {
    let json = ok(server.kubectl(&["get", "cm,secret,deploy,pod,ns", "-A", "-o", "json"]));
    let list: Value = serde_json::from_str(&json).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["metadata"]["name"] != ROOT_CA)
        .map(|item| {
            let kind = item["kind"].as_str().unwrap();
            let meta = &item["metadata"];
            let mut line = format!("{kind} {}/{}", meta["namespace"], meta["name"]);
            if kind == "ConfigMap" || kind == "Secret" {
                line.push_str(&format!("@{}", meta["resourceVersion"]));
            }
            line
        })
        .collect()
}

const CONFIGMAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {k: original}\n";

#[test]
fn get_of_a_missing_object_is_not_found() {
    let server = K3rs::start();
    for version in [None, Some("1.32")] {
        let err = fails(server.kubectl_release(version, &["get", "configmap", "x"]));
        assert_eq!(
            err, "Error from server (NotFound): configmaps \"x\" not found\n",
            "{version:?}"
        );
        let err =
            fails(server.kubectl_release(version, &["get", "deploy", "x", "-n", "kube-system"]));
        assert_eq!(
            err,
            "Error from server (NotFound): deployments.apps \"x\" not found\n"
        );
        let err = fails(server.kubectl_release(version, &["get", "ns", "nope"]));
        assert_eq!(
            err,
            "Error from server (NotFound): namespaces \"nope\" not found\n"
        );
        let err = fails(server.kubectl_release(version, &["get", "widgets"]));
        assert!(
            err.contains(r#"the server doesn't have a resource type "widgets""#),
            "{err}"
        );
    }
}

#[test]
fn creating_a_duplicate_is_already_exists_and_keeps_the_original() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], CONFIGMAP));
    let original = server.stored("cm", "x");
    let before = snapshot(&server);

    let file = server.write_file("dup.yaml", &CONFIGMAP.replace("original", "changed"));
    for version in [None, Some("1.32")] {
        let err = fails(server.kubectl_release(version, &["create", "-f", &file]));
        let expected = format!(
            "Error from server (AlreadyExists): error when creating \"{file}\": configmaps \"x\" already exists\n"
        );
        assert_eq!(err, expected, "{version:?}");
    }
    assert_eq!(server.stored("cm", "x"), original);
    assert_eq!(snapshot(&server), before);
}

#[test]
fn an_invalid_name_is_rejected_with_the_field_path() {
    let server = K3rs::start();
    let before = snapshot(&server);
    let bad = CONFIGMAP.replace("name: x", "name: Bad_Name");
    for version in [None, Some("1.32")] {
        let file = server.write_file("bad.yaml", &bad);
        let err = fails(server.kubectl_release(version, &["create", "-f", &file]));
        assert!(
            err.contains(
                r#"The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name""#
            ),
            "{err}"
        );
        assert!(err.contains("a lowercase RFC 1123 subdomain"), "{err}");
        let err = fails(server.kubectl_release(version, &["apply", "-f", &file]));
        assert!(
            err.contains(r#"is invalid: metadata.name: Invalid value: "Bad_Name""#),
            "{err}"
        );
    }
    // Other invalid fields name their path too.
    let bad_label = CONFIGMAP.replace("name: x}", "name: x, labels: {\"bad key!\": v}}");
    let err = fails(server.kubectl_stdin(&["create", "-f", "-"], &bad_label));
    assert!(
        err.contains(r#"The ConfigMap "x" is invalid: metadata.labels: Invalid value: "bad key!""#),
        "{err}"
    );
    assert_eq!(snapshot(&server), before);
}

const DEPLOYMENT_WITH_UNKNOWN_FIELD: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: strict}
spec:
  foo: bar
  selector: {matchLabels: {app: s}}
  template:
    metadata: {labels: {app: s}}
    spec: {containers: [{name: c, image: nginx}]}
";

#[test]
fn unknown_fields_fail_under_default_strict_validation() {
    let server = K3rs::start();
    let before = snapshot(&server);
    let file = server.write_file("strict.yaml", DEPLOYMENT_WITH_UNKNOWN_FIELD);
    for version in [None, Some("1.32")] {
        for verb in ["create", "apply"] {
            let err = fails(server.kubectl_release(version, &[verb, "-f", &file]));
            assert!(
                err.contains(r#"unknown field "spec.foo""#),
                "{version:?} {verb}: {err}"
            );
            assert!(err.starts_with("Error from server (BadRequest)"), "{err}");
        }
    }
    let err = fails(server.kubectl(&["get", "deploy", "strict"]));
    assert!(err.contains("not found"), "{err}");
    assert_eq!(snapshot(&server), before);
}

/// `kubectl patch` sends no `fieldValidation`, so the server's default (Warn) applies:
/// the unknown field is dropped and reported in a warning.
#[test]
fn patch_with_an_unknown_field_warns_and_drops_it() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], CONFIGMAP));
    let before = server.stored("cm", "x");
    let out = server.kubectl(&[
        "patch",
        "cm",
        "x",
        "--type",
        "merge",
        "-p",
        r#"{"bogus":1}"#,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(ok(out), "configmap/x patched (no change)\n");
    assert_eq!(server.stored("cm", "x"), before);
    assert!(
        stderr.contains(r#"Warning: unknown field "bogus""#),
        "{stderr}"
    );
}

#[test]
fn validate_false_drops_unknown_fields() {
    let server = K3rs::start();
    let file = server.write_file("strict.yaml", DEPLOYMENT_WITH_UNKNOWN_FIELD);
    let out = ok(server.kubectl(&["create", "--validate=false", "-f", &file]));
    assert_eq!(out, "deployment.apps/strict created\n");
    let stored_deployment = server.stored("deploy", "strict");
    assert!(
        stored_deployment["spec"].get("foo").is_none(),
        "{stored_deployment}"
    );
    assert_eq!(
        stored_deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx"
    );

    let cm = CONFIGMAP.replace("\ndata:", "\nfoo: bar\ndata:");
    let file = server.write_file("cm.yaml", &cm);
    ok(server.kubectl_version("1.32", &["apply", "--validate=false", "-f", &file]));
    let stored_cm = server.stored("cm", "x");
    assert!(stored_cm.get("foo").is_none(), "{stored_cm}");
    assert_eq!(stored_cm["data"]["k"], "original");
}

#[test]
fn validate_warn_succeeds_with_a_warning() {
    let server = K3rs::start();
    let cm = CONFIGMAP.replace("\ndata:", "\nfoo: bar\ndata:");
    for (version, name) in [(None, "x"), (Some("1.32"), "other")] {
        let file = server.write_file("cm.yaml", &cm.replace("name: x", &format!("name: {name}")));
        let out = server.kubectl_release(version, &["create", "--validate=warn", "-f", &file]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(ok(out), format!("configmap/{name} created\n"));
        assert!(
            stderr.contains(r#"Warning: unknown field "foo""#),
            "{version:?}: {stderr}"
        );
        let stored_cm = server.stored("cm", name);
        assert!(stored_cm.get("foo").is_none(), "{stored_cm}");
        assert_eq!(stored_cm["data"]["k"], "original");
    }
}

const WIDGET: &str = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n";
const CORE_WIDGET: &str = "apiVersion: v1\nkind: Widget\nmetadata: {name: w}\n";

#[test]
fn unknown_kind_fails_with_a_mapping_error_without_client_validation() {
    let server = K3rs::start();
    let before = snapshot(&server);
    for (yaml, version) in [(WIDGET, "example.com/v1"), (CORE_WIDGET, "v1")] {
        for verb in ["create", "apply"] {
            let err = fails(server.kubectl_stdin(&[verb, "--validate=false", "-f", "-"], yaml));
            let expected = format!(
                "error: resource mapping not found for name: \"w\" namespace: \"\" from \"STDIN\": \
                 no matches for kind \"Widget\" in version \"{version}\"\nensure CRDs are installed first\n"
            );
            assert_eq!(err, expected, "{verb}");
        }
    }
    assert_eq!(snapshot(&server), before);
}

/// With default validation kubectl first looks the kind up in the OpenAPI documents
/// (`/openapi/v3`, then `/openapi/v2`); a real API server lets it fall through to the same
/// mapping error as above.
#[test]
fn unknown_kind_fails_with_a_mapping_error_under_default_validation() {
    let server = K3rs::start();
    let before = snapshot(&server);
    for version in [None, Some("1.32")] {
        let file = server.write_file("widget.yaml", WIDGET);
        for verb in ["create", "apply"] {
            let err = fails(server.kubectl_release(version, &[verb, "-f", &file]));
            assert!(
                err.contains(r#"no matches for kind "Widget" in version "example.com/v1""#),
                "{version:?} {verb}: {err}"
            );
        }
    }
    assert_eq!(snapshot(&server), before);
}

#[test]
fn creating_in_a_missing_namespace_is_not_found() {
    let server = K3rs::start();
    let before = snapshot(&server);
    let in_nope = CONFIGMAP.replace("name: x}", "name: x, namespace: nope}");
    for version in [None, Some("1.32")] {
        let file = server.write_file("cm.yaml", &in_nope);
        let err = fails(server.kubectl_release(version, &["create", "-f", &file]));
        let expected =
            format!("Error from server (NotFound): error when creating \"{file}\": namespaces \"nope\" not found\n");
        assert_eq!(err, expected, "{version:?}");
    }
    assert_eq!(snapshot(&server), before);
}

#[test]
fn replace_with_a_stale_resource_version_conflicts() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], CONFIGMAP));
    let stale = ok(server.kubectl(&["get", "cm", "x", "-o", "yaml"]));
    ok(server.kubectl(&["label", "cm", "x", "moved=on"]));
    let current = server.stored("cm", "x");

    let file = server.write_file("stale.yaml", &stale.replace("original", "lost update"));
    let err = fails(server.kubectl(&["replace", "-f", &file]));
    let expected = format!(
        "Error from server (Conflict): error when replacing \"{file}\": Operation cannot be fulfilled on \
         configmaps \"x\": the object has been modified; please apply your changes to the latest version and try again\n"
    );
    assert_eq!(err, expected);
    assert_eq!(server.stored("cm", "x"), current);
}

#[test]
fn failed_patches_and_updates_leave_the_store_unchanged() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], CONFIGMAP));
    let object = server.stored("cm", "x");
    let before = snapshot(&server);

    // JSON patch `test` that does not hold.
    let err = fails(server.kubectl(&[
        "patch", "cm", "x", "--type", "json", "-p", r#"[{"op":"test","path":"/data/k","value":"other"},{"op":"replace","path":"/data/k","value":"patched"}]"#,
    ]));
    assert!(err.contains("The request is invalid"), "{err}");
    // JSON patch removing a path that does not exist.
    let err = fails(server.kubectl(&[
        "patch",
        "cm",
        "x",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/data/missing"}]"#,
    ]));
    assert!(!err.is_empty());
    // A patch that would make the object invalid.
    let err = fails(server.kubectl(&[
        "patch",
        "cm",
        "x",
        "-p",
        r#"{"metadata":{"labels":{"bad key!":"v"}}}"#,
    ]));
    assert!(err.contains("is invalid"), "{err}");
    // Patching a missing object.
    let err = fails(server.kubectl(&["patch", "cm", "missing", "-p", r#"{"data":{"a":"b"}}"#]));
    assert_eq!(
        err,
        "Error from server (NotFound): configmaps \"missing\" not found\n"
    );
    // Changing the name through replace.
    let renamed = server.write_file(
        "renamed.yaml",
        &CONFIGMAP.replace("name: x", "name: renamed"),
    );
    let err = fails(server.kubectl(&["replace", "-f", &renamed]));
    assert!(err.contains(r#"configmaps "renamed" not found"#), "{err}");
    // Deleting a missing object.
    let err = fails(server.kubectl(&["delete", "cm", "missing"]));
    assert_eq!(
        err,
        "Error from server (NotFound): configmaps \"missing\" not found\n"
    );

    assert_eq!(server.stored("cm", "x"), object);
    assert_eq!(snapshot(&server), before);
}
