//! The API-completeness scenarios driven by kubectl 1.32 (the other files mostly use the
//! version the dispatcher picks, 1.33): a CRD and its objects with printer columns, server-
//! side apply with a conflict, a service-account token checked with `auth can-i --as`,
//! strategic merge patching, `scale`, and deletion propagation.

use std::time::Duration;

use k3rs_e2e::wait::eventually_blocking;
use k3rs_e2e::{fails, ok, K3rs};

fn k132(server: &K3rs, args: &[&str]) -> std::process::Output {
    server.kubectl_version("1.32", args)
}

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}, scale: {specReplicasPath: .spec.size, statusReplicasPath: .status.size}}
    additionalPrinterColumns:
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              color: {type: string, enum: [red, blue]}
              size: {type: integer, minimum: 0, default: 1}
          status:
            type: object
            properties:
              size: {type: integer}
"#;

#[test]
fn custom_resources_with_kubectl_1_32() {
    let server = K3rs::start();
    let crd = server.write_file("crd.yaml", CRD);
    ok(k132(&server, &["apply", "-f", &crd]));
    let widget = server.write_file(
        "w.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {color: red}\n",
    );
    ok(k132(&server, &["apply", "-f", &widget]));
    let table = ok(k132(&server, &["get", "wd"]));
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "COLOR", "SIZE"], "{table}");
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row, ["w1", "red", "1"], "{table}");

    let bad = server.write_file(
        "bad.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2}\nspec: {color: pink}\n",
    );
    let err = fails(k132(&server, &["apply", "-f", &bad]));
    assert!(
        err.contains("spec.color: Unsupported value: \"pink\""),
        "{err}"
    );

    ok(k132(&server, &["scale", "widget", "w1", "--replicas=4"]));
    let size = ok(k132(
        &server,
        &["get", "wd", "w1", "-o", "jsonpath={.spec.size}"],
    ));
    assert_eq!(size, "4");
}

#[test]
fn server_side_apply_and_patches_with_kubectl_1_32() {
    // No garbage collector: the orphan finalizer recorded at the end must stay visible.
    let server = K3rs::start_with(&["--disable-controller-manager"]);
    let deploy = |image: &str, replicas: u32| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n      - {{name: web, image: \"{image}\", ports: [{{containerPort: 80}}]}}\n"
        )
    };
    let file = server.write_file("web.yaml", &deploy("nginx:1", 2));
    ok(k132(&server, &["apply", "--server-side", "-f", &file]));
    ok(k132(&server, &["scale", "deploy", "web", "--replicas=5"]));
    let file = server.write_file("web.yaml", &deploy("nginx:1", 3));
    let err = fails(k132(&server, &["apply", "--server-side", "-f", &file]));
    assert!(err.contains("Apply failed with 1 conflict"), "{err}");
    assert!(err.contains(".spec.replicas"), "{err}");
    ok(k132(
        &server,
        &["apply", "--server-side", "--force-conflicts", "-f", &file],
    ));

    ok(k132(
        &server,
        &["set", "image", "deploy/web", "web=nginx:2"],
    ));
    let patched = ok(k132(
        &server,
        &[
            "patch",
            "deploy",
            "web",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"A","value":"1"}]}]}}}}"#,
        ],
    ));
    assert!(patched.contains("patched"), "{patched}");
    let container =
        server.stored("deploy", "web")["spec"]["template"]["spec"]["containers"][0].clone();
    assert_eq!(container["image"], "nginx:2", "{container}");
    assert_eq!(container["ports"][0]["containerPort"], 80, "{container}");
    assert_eq!(container["env"][0]["name"], "A", "{container}");
    assert_eq!(server.stored("deploy", "web")["spec"]["replicas"], 3);

    ok(k132(
        &server,
        &[
            "delete",
            "deploy",
            "web",
            "--cascade=orphan",
            "--wait=false",
        ],
    ));
    let finalizers = server.stored("deploy", "web")["metadata"]["finalizers"].clone();
    assert_eq!(finalizers, serde_json::json!(["orphan"]));
}

#[test]
fn service_account_tokens_and_rbac_with_kubectl_1_32() {
    let server = K3rs::start();
    ok(k132(&server, &["create", "serviceaccount", "robot"]));
    let token = ok(k132(&server, &["create", "token", "robot"]));
    assert_eq!(token.trim().split('.').count(), 3, "not a JWT: {token}");
    let as_robot = ["--as=system:serviceaccount:default:robot"];
    let no = k132(&server, &["auth", "can-i", "list", "pods", as_robot[0]]);
    assert_eq!(String::from_utf8_lossy(&no.stdout).trim(), "no");
    ok(k132(
        &server,
        &[
            "create",
            "rolebinding",
            "robot-view",
            "--clusterrole=view",
            "--serviceaccount=default:robot",
        ],
    ));
    eventually_blocking(Duration::from_secs(5), "the binding to take effect", || {
        let out = k132(&server, &["auth", "can-i", "list", "pods", as_robot[0]]);
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    });
    let secrets = k132(&server, &["auth", "can-i", "get", "secrets", as_robot[0]]);
    assert_eq!(String::from_utf8_lossy(&secrets.stdout).trim(), "no");
    let whoami = ok(k132(&server, &["auth", "whoami"]));
    assert!(
        whoami.contains("system:admin") && whoami.contains("system:masters"),
        "{whoami}"
    );
}
