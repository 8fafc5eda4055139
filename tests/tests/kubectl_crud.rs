//! Declarative and object-editing kubectl verbs against a real server, checking what gets
//! printed and what gets stored: `create -f` / `apply -f` (files and stdin, last-applied
//! annotation, three-way merge, "unchanged"), `label`, `annotate`, `patch` (strategic, merge,
//! json), `edit` with a scripted editor, `replace`, `delete` (name, selector, `--all`),
//! `describe`, namespaces created from YAML, and Secret `stringData`.

use std::process::{Command, Output, Stdio};

use k3rs_e2e::{fails, ok, K3rs, ROOT_CA};
use serde_json::Value;

/// `kubectl get <args> -o name`, without the background-published root-CA configmaps.
fn user_object_names(server: &K3rs, args: &[&str]) -> String {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "name"]);
    ok(server.kubectl(&full))
        .lines()
        .filter(|line| !line.ends_with(ROOT_CA))
        .map(|line| format!("{line}\n"))
        .collect()
}

fn resource_version(object: &Value) -> &str {
    object["metadata"]["resourceVersion"]
        .as_str()
        .expect("resourceVersion")
}

fn deployment(name: &str, image: &str) -> String {
    format!(
        "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: main
        image: {image}
        ports: [{{containerPort: 8080, name: http}}]
        env: [{{name: MODE, value: prod}}]
"
    )
}

const CONFIGMAP: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: demo}
data:
  color: blue
  size: large
";

#[test]
fn create_from_file_and_stdin_stores_the_objects() {
    let server = K3rs::start();
    let file = server.write_file("cm.yaml", CONFIGMAP);
    assert_eq!(
        ok(server.kubectl(&["create", "-f", &file])),
        "configmap/settings created\n"
    );
    let cm = server.stored("configmap", "settings");
    assert_eq!(cm["data"]["color"], "blue");
    assert_eq!(cm["metadata"]["labels"]["app"], "demo");
    assert_eq!(cm["metadata"]["namespace"], "default");
    assert!(cm["metadata"]["creationTimestamp"].is_string(), "{cm}");
    assert!(
        cm["metadata"]["annotations"].is_null(),
        "create adds no annotations: {cm}"
    );

    let out = server.kubectl_stdin(&["create", "-f", "-"], &deployment("web", "nginx:1.25"));
    assert_eq!(ok(out), "deployment.apps/web created\n");
    let web = server.stored("deployment", "web");
    assert_eq!(web["metadata"]["generation"], 1, "{web}");
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.25"
    );

    // A multi-document file creates each object, in order.
    let multi = server.write_file(
        "multi.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: two}\n",
    );
    let out = ok(server.kubectl_version("1.32", &["create", "-f", &multi]));
    assert_eq!(out, "configmap/one created\nconfigmap/two created\n");
    let names = user_object_names(&server, &["cm"]);
    assert_eq!(names, "configmap/one\nconfigmap/settings\nconfigmap/two\n");
}

fn apply_updates_deployment_keeping_other_fields(version: Option<&str>) {
    let server = K3rs::start();
    let file = server.write_file("web.yaml", &deployment("web", "nginx:1.25"));
    let out = ok(server.kubectl_release(version, &["apply", "-f", &file]));
    assert_eq!(out, "deployment.apps/web created\n");
    let first = server.stored("deployment", "web");
    assert_eq!(first["metadata"]["generation"], 1);
    let last_applied = first["metadata"]["annotations"]
        ["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap_or_else(|| panic!("no last-applied annotation: {first}"));
    let last_applied: Value = serde_json::from_str(last_applied).unwrap();
    assert_eq!(
        last_applied["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.25"
    );

    // Change only the image: the rest of the container survives, generation is bumped.
    let file = server.write_file("web.yaml", &deployment("web", "nginx:1.26"));
    let out = ok(server.kubectl_release(version, &["apply", "-f", &file]));
    assert_eq!(out, "deployment.apps/web configured\n");
    let second = server.stored("deployment", "web");
    assert_eq!(second["metadata"]["generation"], 2, "{second}");
    assert_eq!(second["metadata"]["uid"], first["metadata"]["uid"]);
    let container = &second["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.26", "{container}");
    assert_eq!(container["name"], "main");
    assert_eq!(container["ports"][0]["containerPort"], 8080, "{container}");
    assert_eq!(container["ports"][0]["name"], "http", "{container}");
    assert_eq!(container["env"][0]["value"], "prod", "{container}");
    assert_eq!(second["spec"]["replicas"], 2);
    let annotation = second["metadata"]["annotations"]
        ["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap();
    assert!(annotation.contains("nginx:1.26"), "{annotation}");

    // The same input again is a no-op: nothing is written.
    let out = ok(server.kubectl_release(version, &["apply", "-f", &file]));
    assert_eq!(out, "deployment.apps/web unchanged\n");
    // (Compare what apply owns, not resourceVersion: a deployment controller may write status.)
    let third = server.stored("deployment", "web");
    assert_eq!(third["metadata"]["generation"], 2);
    assert_eq!(third["spec"], second["spec"]);
    assert_eq!(
        third["metadata"]["annotations"],
        second["metadata"]["annotations"]
    );
}

#[test]
fn apply_updates_deployment_keeping_other_fields_kubectl_133() {
    apply_updates_deployment_keeping_other_fields(None);
}

#[test]
fn apply_updates_deployment_keeping_other_fields_kubectl_132() {
    apply_updates_deployment_keeping_other_fields(Some("1.32"));
}

#[test]
fn apply_from_stdin_removes_fields_dropped_from_the_input() {
    let server = K3rs::start();
    let out = server.kubectl_stdin(&["apply", "-f", "-"], CONFIGMAP);
    assert_eq!(ok(out), "configmap/settings created\n");
    // Someone else adds a label: apply must leave it alone (it never owned it).
    ok(server.kubectl(&["label", "cm", "settings", "owner=ops"]));

    let smaller = CONFIGMAP
        .replace("  size: large\n", "")
        .replace("blue", "green");
    let out = server.kubectl_stdin(&["apply", "-f", "-"], &smaller);
    assert_eq!(ok(out), "configmap/settings configured\n");
    let cm = server.stored("configmap", "settings");
    assert_eq!(cm["data"], serde_json::json!({"color": "green"}), "{cm}");
    assert_eq!(
        cm["metadata"]["labels"],
        serde_json::json!({"app": "demo", "owner": "ops"})
    );

    let out = server.kubectl_stdin(&["apply", "-f", "-"], &smaller);
    assert_eq!(ok(out), "configmap/settings unchanged\n");
}

#[test]
fn label_overwrite_and_remove() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], CONFIGMAP));

    assert_eq!(
        ok(server.kubectl(&["label", "cm", "settings", "tier=web"])),
        "configmap/settings labeled\n"
    );
    let before = server.stored("configmap", "settings");
    assert_eq!(before["metadata"]["labels"]["tier"], "web");

    let err = fails(server.kubectl(&["label", "cm", "settings", "tier=db"]));
    assert!(
        err.contains("'tier' already has a value (web), and --overwrite is false"),
        "{err}"
    );
    let after_refusal = server.stored("configmap", "settings");
    assert_eq!(resource_version(&after_refusal), resource_version(&before));

    let out = ok(server.kubectl_version(
        "1.32",
        &["label", "cm", "settings", "tier=db", "--overwrite"],
    ));
    assert_eq!(out, "configmap/settings labeled\n");
    assert_eq!(
        server.stored("configmap", "settings")["metadata"]["labels"]["tier"],
        "db"
    );

    let out = ok(server.kubectl(&["label", "cm", "settings", "tier-"]));
    assert_eq!(out, "configmap/settings unlabeled\n");
    let labels = &server.stored("configmap", "settings")["metadata"]["labels"];
    assert_eq!(labels, &serde_json::json!({"app": "demo"}));

    // Labelling by selector touches only the matching objects.
    ok(server.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n",
    ));
    ok(server.kubectl(&["label", "cm", "-l", "app=demo", "picked=yes"]));
    let picked = ok(server.kubectl(&["get", "cm", "-l", "picked=yes", "-o", "name"]));
    assert_eq!(picked, "configmap/settings\n");
}

#[test]
fn annotate_adds_overwrites_and_removes() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], CONFIGMAP));
    let out = ok(server.kubectl(&["annotate", "cm", "settings", "note=first draft"]));
    assert_eq!(out, "configmap/settings annotated\n");
    let cm = server.stored("configmap", "settings");
    assert_eq!(cm["metadata"]["annotations"]["note"], "first draft");

    let err = fails(server.kubectl(&["annotate", "cm", "settings", "note=second"]));
    assert!(err.contains("--overwrite is false"), "{err}");
    ok(server.kubectl_version(
        "1.32",
        &["annotate", "cm", "settings", "note=second", "--overwrite"],
    ));
    let cm = server.stored("configmap", "settings");
    assert_eq!(cm["metadata"]["annotations"]["note"], "second");

    ok(server.kubectl(&["annotate", "cm", "settings", "note-"]));
    let cm = server.stored("configmap", "settings");
    assert!(cm["metadata"]["annotations"].get("note").is_none(), "{cm}");
    assert_eq!(cm["data"]["color"], "blue", "data untouched");
}

#[test]
fn patch_strategic_merge_and_json() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], &deployment("web", "nginx:1.25")));
    ok(server.kubectl_stdin(&["create", "-f", "-"], CONFIGMAP));

    // Strategic merge (the default) merges containers by name.
    let patch =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"main","image":"nginx:1.27"}]}}}}"#;
    assert_eq!(
        ok(server.kubectl(&["patch", "deploy", "web", "-p", patch])),
        "deployment.apps/web patched\n"
    );
    let web = server.stored("deployment", "web");
    let containers = web["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "{web}");
    assert_eq!(containers[0]["image"], "nginx:1.27");
    assert_eq!(
        containers[0]["ports"][0]["containerPort"], 8080,
        "ports kept: {web}"
    );
    assert_eq!(web["metadata"]["generation"], 2);

    // A strategic patch with a new container name adds a container.
    let patch =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#;
    ok(server.kubectl_version("1.32", &["patch", "deploy", "web", "-p", patch]));
    let web = server.stored("deployment", "web");
    let names: Vec<&str> = web["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["main", "sidecar"], "{web}");

    // Merge patch: null deletes a key.
    let out = ok(server.kubectl(&[
        "patch",
        "cm",
        "settings",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"size":null,"shape":"round"}}"#,
    ]));
    assert_eq!(out, "configmap/settings patched\n");
    let cm = server.stored("configmap", "settings");
    assert_eq!(
        cm["data"],
        serde_json::json!({"color": "blue", "shape": "round"})
    );

    // JSON patch: replace, add, remove.
    let ops = r#"[{"op":"replace","path":"/data/color","value":"red"},
                  {"op":"add","path":"/metadata/labels/extra","value":"1"},
                  {"op":"remove","path":"/data/shape"}]"#;
    ok(server.kubectl(&["patch", "cm", "settings", "--type", "json", "-p", ops]));
    let cm = server.stored("configmap", "settings");
    assert_eq!(cm["data"], serde_json::json!({"color": "red"}));
    assert_eq!(cm["metadata"]["labels"]["extra"], "1");

    // A patch that changes nothing prints "(no change)" and writes nothing.
    let out = ok(server.kubectl(&[
        "patch",
        "cm",
        "settings",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"color":"red"}}"#,
    ]));
    assert_eq!(out, "configmap/settings patched (no change)\n");
    assert_eq!(
        resource_version(&server.stored("configmap", "settings")),
        resource_version(&cm)
    );
}

/// Runs `kubectl edit` with `EDITOR` set to a shell script that applies `sed_expression`.
/// Mirrors the harness's environment (KUBECONFIG, KUBECACHEDIR, HOME).
fn kubectl_edit(server: &K3rs, args: &[&str], sed_expression: &str) -> Output {
    let script = server.dir.path().join("editor.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nsed -i '{sed_expression}' \"$1\"\n"),
    )
    .unwrap();
    let chmod = Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    assert!(chmod.success());
    let mut full = vec!["edit"];
    full.extend_from_slice(args);
    Command::new("kubectl")
        .args(&full)
        .env("KUBECONFIG", &server.kubeconfig)
        .env("KUBECACHEDIR", server.dir.path().join("kubecache"))
        .env("HOME", server.dir.path())
        .env("EDITOR", &script)
        .env_remove("KUBE_EDITOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run kubectl edit")
}

#[test]
fn edit_with_a_scripted_editor_saves_the_change() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], CONFIGMAP));
    let before = server.stored("configmap", "settings");

    let out = kubectl_edit(
        &server,
        &["configmap", "settings"],
        "s/color: blue/color: purple/",
    );
    assert_eq!(ok(out), "configmap/settings edited\n");
    let after = server.stored("configmap", "settings");
    assert_eq!(after["data"]["color"], "purple");
    assert_eq!(after["data"]["size"], "large");
    assert_ne!(resource_version(&after), resource_version(&before));

    // An editor that changes nothing: "Edit cancelled", nothing written.
    let out = kubectl_edit(&server, &["configmap", "settings"], "s/no-such-text/x/");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Edit cancelled, no changes made."),
        "{stderr}"
    );
    assert_eq!(
        resource_version(&server.stored("configmap", "settings")),
        resource_version(&after)
    );

    // Editing a deployment's image in the YAML bumps its generation.
    ok(server.kubectl_stdin(&["create", "-f", "-"], &deployment("web", "nginx:1.25")));
    let out = kubectl_edit(
        &server,
        &["deployment/web"],
        "s/image: nginx:1.25/image: nginx:1.28/",
    );
    assert_eq!(ok(out), "deployment.apps/web edited\n");
    let web = server.stored("deployment", "web");
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.28"
    );
    assert_eq!(web["metadata"]["generation"], 2);
}

#[test]
fn replace_from_file_swaps_the_whole_object() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], CONFIGMAP));
    let before = server.stored("configmap", "settings");

    let replacement = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  only: this
";
    let file = server.write_file("replacement.yaml", replacement);
    assert_eq!(
        ok(server.kubectl(&["replace", "-f", &file])),
        "configmap/settings replaced\n"
    );
    let after = server.stored("configmap", "settings");
    assert_eq!(after["data"], serde_json::json!({"only": "this"}));
    assert!(
        after["metadata"]["labels"].is_null(),
        "labels replaced away: {after}"
    );
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    assert_eq!(
        after["metadata"]["creationTimestamp"],
        before["metadata"]["creationTimestamp"]
    );

    // Round trip through `get -o yaml | sed | replace -f -`.
    let yaml = ok(server.kubectl(&["get", "cm", "settings", "-o", "yaml"]));
    let out = server.kubectl_stdin(
        &["replace", "-f", "-"],
        &yaml.replace("only: this", "only: that"),
    );
    assert_eq!(ok(out), "configmap/settings replaced\n");
    assert_eq!(
        server.stored("configmap", "settings")["data"]["only"],
        "that"
    );

    let file = server.write_file("replacement.yaml", &replacement.replace("this", "v132"));
    ok(server.kubectl_version("1.32", &["replace", "-f", &file]));
    assert_eq!(
        server.stored("configmap", "settings")["data"]["only"],
        "v132"
    );
}

#[test]
fn delete_by_name_selector_and_all() {
    let server = K3rs::start();
    let yaml: String = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|n| {
            let group = if *n < "c" { "one" } else { "two" };
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {n}, labels: {{group: {group}}}}}\n---\n")
        })
        .collect();
    ok(server.kubectl_stdin(&["create", "-f", "-"], &yaml));

    assert_eq!(
        ok(server.kubectl(&["delete", "cm", "a"])),
        "configmap \"a\" deleted\n"
    );
    let err = fails(server.kubectl(&["get", "cm", "a"]));
    assert!(err.contains(r#"configmaps "a" not found"#), "{err}");

    let out = ok(server.kubectl_version("1.32", &["delete", "cm", "-l", "group=two"]));
    assert_eq!(
        out,
        "configmap \"c\" deleted\nconfigmap \"d\" deleted\nconfigmap \"e\" deleted\n"
    );
    assert_eq!(user_object_names(&server, &["cm"]), "configmap/b\n");

    // --all in one namespace leaves other namespaces alone.
    ok(server.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keep, namespace: kube-public}\n",
    ));
    // (`--all` also deletes the root-CA configmap if it has been published yet.)
    let out = ok(server.kubectl(&["delete", "cm", "--all"]));
    assert!(out.starts_with("configmap \"b\" deleted\n"), "{out}");
    assert_eq!(user_object_names(&server, &["cm"]), "");
    assert_eq!(
        user_object_names(&server, &["cm", "-n", "kube-public"]),
        "configmap/keep\n"
    );

    // delete -f removes what the file describes.
    let file = server.write_file("cm.yaml", CONFIGMAP);
    ok(server.kubectl(&["create", "-f", &file]));
    assert_eq!(
        ok(server.kubectl(&["delete", "-f", &file])),
        "configmap \"settings\" deleted\n"
    );
    let err = fails(server.kubectl(&["delete", "cm", "settings"]));
    assert!(
        err.contains(r#"Error from server (NotFound): configmaps "settings" not found"#),
        "{err}"
    );
}

#[test]
fn describe_shows_configmap_and_deployment_sections() {
    let server = K3rs::start();
    ok(server.kubectl_stdin(&["create", "-f", "-"], CONFIGMAP));
    ok(server.kubectl_stdin(&["create", "-f", "-"], &deployment("web", "nginx:1.25")));

    for version in [None, Some("1.32")] {
        // Column alignment depends on the longest key, so compare with whitespace squashed.
        let text = squash(&ok(
            server.kubectl_release(version, &["describe", "configmap", "settings"])
        ));
        for expected in [
            "Name: settings\nNamespace: default\nLabels: app=demo\nAnnotations: <none>",
            // kubectl prints the keys in Go map order, which varies from run to run.
            "Data\n====\n",
            "color:\n----\nblue\n",
            "size:\n----\nlarge\n",
            "BinaryData\n====",
            "Events: <none>",
        ] {
            assert!(
                text.contains(expected),
                "{version:?} missing {expected:?}:\n{text}"
            );
        }

        let text = squash(&ok(
            server.kubectl_release(version, &["describe", "deployment", "web"])
        ));
        for expected in [
            "Name: web\nNamespace: default",
            "Selector: app=web",
            "Replicas: 2 desired | ",
            "| 0 available |",
            "StrategyType: RollingUpdate",
            "Pod Template:\nLabels: app=web\nContainers:\nmain:\nImage: nginx:1.25\nPort: 8080/TCP",
            "Environment:\nMODE: prod",
        ] {
            assert!(
                text.contains(expected),
                "{version:?} missing {expected:?}:\n{text}"
            );
        }
    }
}

/// Each line with runs of whitespace collapsed to one space and trimmed.
fn squash(text: &str) -> String {
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn namespace_from_yaml_holds_objects_and_missing_namespace_is_not_found() {
    let server = K3rs::start();
    let out = server.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n",
    );
    assert_eq!(ok(out), "namespace/team-a created\n");
    let table = ok(server.kubectl(&["get", "ns", "team-a"]));
    let cells: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&cells[..2], ["team-a", "Active"], "{table}");
    let ns = server.stored("namespace", "team-a");
    assert_eq!(
        ns["spec"]["finalizers"],
        serde_json::json!(["kubernetes"]),
        "{ns}"
    );
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "team-a",
        "{ns}"
    );

    let out = server.kubectl_stdin(&["create", "-n", "team-a", "-f", "-"], CONFIGMAP);
    assert_eq!(ok(out), "configmap/settings created\n");
    assert_eq!(
        user_object_names(&server, &["cm", "-n", "team-a"]),
        "configmap/settings\n"
    );
    let all = ok(server.kubectl(&["get", "cm", "-A"]));
    assert!(
        all.lines()
            .any(|l| l.starts_with("team-a ") && l.contains("settings")),
        "{all}"
    );

    let err = fails(server.kubectl_stdin(&["create", "-n", "nope", "-f", "-"], CONFIGMAP));
    assert!(err.contains(r#"Error from server (NotFound): error when creating "STDIN": namespaces "nope" not found"#), "{err}");
    let err = fails(server.kubectl_stdin(&["apply", "-n", "nope", "-f", "-"], CONFIGMAP));
    assert!(err.contains(r#"namespaces "nope" not found"#), "{err}");
    let all = user_object_names(&server, &["cm", "-A"]);
    assert_eq!(
        all, "configmap/settings\n",
        "nothing stored for the missing namespace"
    );
}

#[test]
fn server_dry_run_creates_nothing() {
    let server = K3rs::start();
    let out = server.kubectl_stdin(&["create", "--dry-run=server", "-f", "-"], CONFIGMAP);
    assert_eq!(ok(out), "configmap/settings created (server dry run)\n");
    let err = fails(server.kubectl(&["get", "cm", "settings"]));
    assert!(err.contains(r#"configmaps "settings" not found"#), "{err}");
}

/// `stringData` is write-only: the API server merges it into base64 `data` and never stores it.
#[test]
fn secret_string_data_is_stored_as_base64_data() {
    let server = K3rs::start();
    let yaml = "\
apiVersion: v1
kind: Secret
metadata: {name: creds}
type: kubernetes.io/basic-auth
data: {username: b2xk}
stringData: {username: admin, password: hunter2}
";
    ok(server.kubectl_stdin(&["apply", "-f", "-"], yaml));
    let secret = server.stored("secret", "creds");
    assert!(
        secret.get("stringData").is_none(),
        "stringData must not be stored: {secret}"
    );
    // stringData wins over data for the same key.
    assert_eq!(
        secret["data"],
        serde_json::json!({"username": "YWRtaW4=", "password": "aHVudGVyMg=="}),
        "{secret}"
    );
    let table = ok(server.kubectl(&["get", "secret", "creds"]));
    assert!(table.contains("kubernetes.io/basic-auth   2"), "{table}");
}
