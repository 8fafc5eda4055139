//! kubectl's imperative generators against a real server — `create configmap --from-literal`,
//! `create secret generic`, `create deployment`, `create namespace NAME` — which send
//! protobuf request bodies; checks the printed result and the stored objects.

use k3rs_e2e::{fails, ok, K3rs};
use serde_json::Value;

fn stored(server: &K3rs, args: &[&str]) -> Value {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&ok(server.kubectl(&full))).unwrap()
}

#[test]
fn create_configmap_from_literals() {
    let server = K3rs::start();
    for (version, name) in [(None, "settings"), (Some("1.32"), "settings-132")] {
        let out = server.kubectl_release(
            version,
            &[
                "create",
                "configmap",
                name,
                "--from-literal=color=blue",
                "--from-literal=size=large",
            ],
        );
        assert_eq!(
            ok(out),
            format!("configmap/{name} created\n"),
            "{version:?}"
        );
        let cm = stored(&server, &["configmap", name]);
        assert_eq!(
            cm["data"],
            serde_json::json!({"color": "blue", "size": "large"}),
            "{cm}"
        );
        assert_eq!(cm["metadata"]["namespace"], "default");
    }
    let table = ok(server.kubectl(&["get", "cm", "settings"]));
    assert!(
        table.lines().nth(1).unwrap().starts_with("settings   2 "),
        "{table}"
    );

    let err = fails(server.kubectl(&["create", "configmap", "settings", "--from-literal=a=b"]));
    assert!(
        err.contains(r#"configmaps "settings" already exists"#),
        "{err}"
    );
    assert_eq!(
        stored(&server, &["configmap", "settings"])["data"]["color"],
        "blue"
    );
}

#[test]
fn create_secret_generic_from_literals() {
    let server = K3rs::start();
    for (version, name) in [(None, "creds"), (Some("1.32"), "creds-132")] {
        let out = server.kubectl_release(
            version,
            &[
                "create",
                "secret",
                "generic",
                name,
                "--from-literal=user=admin",
                "--from-literal=password=hunter2",
            ],
        );
        assert_eq!(ok(out), format!("secret/{name} created\n"), "{version:?}");
        let secret = stored(&server, &["secret", name]);
        assert_eq!(secret["type"], "Opaque");
        assert_eq!(
            secret["data"],
            serde_json::json!({"user": "YWRtaW4=", "password": "aHVudGVyMg=="}),
            "{secret}"
        );
    }
    let table = ok(server.kubectl(&["get", "secret", "creds"]));
    let cells: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&cells[..3], ["creds", "Opaque", "2"], "{table}");
}

#[test]
fn create_deployment_with_image_and_replicas() {
    let server = K3rs::start();
    for (version, name) in [(None, "web"), (Some("1.32"), "web-132")] {
        let out = server.kubectl_release(
            version,
            &[
                "create",
                "deployment",
                name,
                "--image=nginx:1.25",
                "--replicas=2",
                "--port=80",
            ],
        );
        assert_eq!(
            ok(out),
            format!("deployment.apps/{name} created\n"),
            "{version:?}"
        );
        let deployment = stored(&server, &["deployment", name]);
        assert_eq!(deployment["spec"]["replicas"], 2);
        assert_eq!(deployment["spec"]["selector"]["matchLabels"]["app"], name);
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "nginx:1.25", "{deployment}");
        assert_eq!(container["name"], "nginx");
        assert_eq!(container["ports"][0]["containerPort"], 80);
        assert_eq!(deployment["metadata"]["generation"], 1);
    }
    let table = ok(server.kubectl(&["get", "deploy", "web"]));
    let cells: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        [cells[0], cells[1], cells[3]],
        ["web", "0/2", "0"],
        "{table}"
    );
}

#[test]
fn create_namespace_by_name() {
    let server = K3rs::start();
    for (version, name) in [(None, "team-a"), (Some("1.32"), "team-b")] {
        let out = server.kubectl_release(version, &["create", "namespace", name]);
        assert_eq!(
            ok(out),
            format!("namespace/{name} created\n"),
            "{version:?}"
        );
        let ns = stored(&server, &["namespace", name]);
        assert_eq!(ns["status"]["phase"], "Active", "{ns}");
    }
    let out = ok(server.kubectl(&[
        "create",
        "configmap",
        "in-team",
        "-n",
        "team-a",
        "--from-literal=a=b",
    ]));
    assert_eq!(out, "configmap/in-team created\n");
    let stored_cm = stored(&server, &["configmap", "in-team", "-n", "team-a"]);
    assert_eq!(stored_cm["data"]["a"], "b");

    let err = fails(server.kubectl(&["create", "namespace", "team-a"]));
    assert!(
        err.contains(r#"namespaces "team-a" already exists"#),
        "{err}"
    );
    let err = fails(server.kubectl(&[
        "create",
        "configmap",
        "c",
        "-n",
        "nope",
        "--from-literal=a=b",
    ]));
    assert!(err.contains(r#"namespaces "nope" not found"#), "{err}");
}
