//! CustomResourceDefinitions end to end: a CronTab CRD with two served versions is accepted
//! and established at once, appears in discovery with its short name, serves objects through
//! both versions with its printer columns, applies schema defaults, validates (pattern,
//! bounds, required, enum) and prunes unknown fields, exposes the scale and status
//! subresources, refuses strategic merge patches, rejects invalid definitions with 422, and
//! takes its objects and its discovery entry with it when deleted. Also drives the CRD with
//! kube-rs `DynamicObject`s.

use std::process::Output;
use std::time::Duration;

use k3rs_e2e::wait::{eventually, eventually_blocking};
use k3rs_e2e::{fails, ok, K3rs};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use serde_json::{json, Value};

const CRD_NAME: &str = "crontabs.stable.example.com";

const CRONTAB_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.labelSelector
    additionalPrinterColumns:
    - name: Spec
      type: string
      jsonPath: .spec.cronSpec
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    - name: Image
      type: string
      jsonPath: .spec.image
      priority: 1
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [cronSpec]
            properties:
              cronSpec:
                type: string
                pattern: '^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$'
              image:
                type: string
              replicas:
                type: integer
                minimum: 1
                maximum: 10
                default: 1
              mode:
                type: string
                enum: [fast, slow]
          status:
            type: object
            properties:
              replicas:
                type: integer
              labelSelector:
                type: string
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              cronSpec: {type: string}
              image: {type: string}
              replicas: {type: integer}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#;

/// A CronTab manifest; `spec` is indented YAML for the `spec:` block.
fn crontab(version: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: stable.example.com/{version}\nkind: CronTab\nmetadata:\n  name: {name}\nspec:\n{spec}\n"
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn get_json(server: &K3rs, args: &[&str]) -> Value {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&ok(server.kubectl(&full))).unwrap()
}

/// Starts a server and installs the CronTab CRD.
fn server_with_crd() -> K3rs {
    let server = K3rs::start();
    let out = ok(server.kubectl_stdin(&["apply", "-f", "-"], CRONTAB_CRD));
    assert!(
        out.contains(
            "customresourcedefinition.apiextensions.k8s.io/crontabs.stable.example.com created"
        ),
        "{out}"
    );
    server
}

/// The text of the column `name` in `row`, using the header line's column offsets.
fn column<'a>(header: &str, row: &'a str, name: &str) -> &'a str {
    let start = header
        .find(name)
        .unwrap_or_else(|| panic!("no {name} in {header}"));
    let after = start + name.len();
    let end = header[after..]
        .find(|c: char| !c.is_whitespace())
        .map_or(row.len(), |offset| after + offset);
    row.get(start..end.min(row.len())).unwrap_or("").trim()
}

#[test]
fn crd_is_established_discovered_and_served_in_both_versions() {
    let server = server_with_crd();

    let crds = ok(server.kubectl(&["get", "crd"]));
    assert!(crds.lines().any(|l| l.starts_with(CRD_NAME)), "{crds}");

    let crd = get_json(&server, &["crd", CRD_NAME]);
    let conditions = crd["status"]["conditions"].as_array().expect("conditions");
    for wanted in ["NamesAccepted", "Established"] {
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == wanted && c["status"] == "True"),
            "{wanted} not True: {conditions:?}"
        );
    }
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "CronTab");
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));

    // Discovery knows the resource right away, with its short name.
    let resources = ok(server.kubectl(&["api-resources"]));
    let row = resources
        .lines()
        .find(|l| l.starts_with("crontabs "))
        .unwrap_or_else(|| panic!("crontabs not in api-resources:\n{resources}"));
    let fields: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        fields,
        ["crontabs", "ct", "stable.example.com/v1", "true", "CronTab"]
    );
    let empty = server.kubectl(&["get", "ct"]);
    assert!(
        stderr(&empty).contains("No resources found in default namespace."),
        "{}",
        stderr(&empty)
    );
    ok(empty);

    // One object through each served version.
    ok(server.kubectl_stdin(
        &["apply", "-f", "-"],
        &crontab(
            "v1",
            "first",
            "  cronSpec: \"*/5 * * * *\"\n  image: my-cron:1",
        ),
    ));
    ok(server.kubectl_stdin(
        &["apply", "-f", "-"],
        &crontab(
            "v1beta1",
            "beta",
            "  cronSpec: \"* * * * */2\"\n  image: my-cron:2\n  replicas: 4",
        ),
    ));

    // Printer columns from the storage version, the date column as an age.
    let table = ok(server.kubectl(&["get", "ct"]));
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["NAME", "SPEC", "REPLICAS", "AGE"],
        "{table}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{table}");
    let first = rows.iter().find(|r| r.starts_with("first ")).unwrap();
    assert_eq!(column(header, first, "SPEC"), "*/5 * * * *", "{table}");
    assert_eq!(column(header, first, "REPLICAS"), "1", "{table}");
    let age = column(header, first, "AGE");
    assert!(
        age.ends_with('s') && age[..age.len() - 1].parse::<u32>().is_ok(),
        "AGE {age:?} in {table}"
    );
    let beta = rows.iter().find(|r| r.starts_with("beta ")).unwrap();
    assert_eq!(column(header, beta, "SPEC"), "* * * * */2", "{table}");
    assert_eq!(column(header, beta, "REPLICAS"), "4", "{table}");

    // Priority-1 columns only with -o wide.
    let wide = ok(server.kubectl(&["get", "ct", "-o", "wide"]));
    assert_eq!(
        wide.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["NAME", "SPEC", "REPLICAS", "IMAGE", "AGE"],
        "{wide}"
    );
    assert!(wide.contains("my-cron:1"), "{wide}");

    // The other version by its full name; it has no printer columns of its own.
    let beta_table = ok(server.kubectl(&["get", "crontabs.v1beta1.stable.example.com"]));
    assert_eq!(
        beta_table
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["NAME", "AGE"],
        "{beta_table}"
    );
    assert_eq!(beta_table.lines().count(), 3, "{beta_table}");
    let as_beta = get_json(&server, &["crontabs.v1beta1.stable.example.com", "first"]);
    assert_eq!(as_beta["apiVersion"], "stable.example.com/v1beta1");
    assert_eq!(as_beta["spec"]["image"], "my-cron:1");

    // The default from the schema is stored and shown.
    let yaml = ok(server.kubectl(&["get", "ct", "first", "-o", "yaml"]));
    assert!(yaml.contains("  replicas: 1\n"), "{yaml}");
    let first = get_json(&server, &["ct", "first"]);
    assert_eq!(first["apiVersion"], "stable.example.com/v1");
    assert_eq!(first["spec"]["replicas"], 1);
    assert_eq!(first["metadata"]["generation"], 1);

    // Every custom resource starts at generation 1, whichever version created it
    // (upstream customResourceStrategy.PrepareForCreate).
    let beta = get_json(&server, &["ct", "beta"]);
    assert_eq!(beta["spec"]["replicas"], 4);
    assert_eq!(
        beta["metadata"]["generation"], 1,
        "object created through v1beta1 has no generation: {beta}"
    );
}

#[test]
fn crd_schema_validates_prunes_and_defaults() {
    let server = server_with_crd();

    // kubectl's default (strict) validation names the unknown field.
    let with_bogus = crontab("v1", "bogus", "  cronSpec: \"* * * * *\"\n  bogus: 1");
    let err = fails(server.kubectl_stdin(&["apply", "-f", "-"], &with_bogus));
    assert!(err.contains(r#"unknown field "spec.bogus""#), "{err}");
    let err = fails(server.kubectl_stdin(&["create", "-f", "-"], &with_bogus));
    assert!(err.contains(r#"unknown field "spec.bogus""#), "{err}");

    // Without validation the field is pruned, and the default still applies.
    let out = ok(server.kubectl_stdin(&["apply", "--validate=false", "-f", "-"], &with_bogus));
    assert!(
        out.contains("crontab.stable.example.com/bogus created"),
        "{out}"
    );
    let stored = get_json(&server, &["ct", "bogus"]);
    assert_eq!(
        stored["spec"],
        json!({"cronSpec": "* * * * *", "replicas": 1}),
        "{stored}"
    );

    let cases = [
        (
            "pattern",
            "  cronSpec: \"not a cron\"",
            vec![r#"spec.cronSpec: Invalid value: "not a cron": spec.cronSpec in body should match"#],
        ),
        (
            "maximum",
            "  cronSpec: \"* * * * *\"\n  replicas: 11",
            vec!["spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"],
        ),
        (
            "required",
            "  image: x",
            vec!["spec.cronSpec: Required value"],
        ),
        (
            "enum",
            "  cronSpec: \"* * * * *\"\n  mode: medium",
            vec![r#"spec.mode: Unsupported value: "medium": supported values: "fast", "slow""#],
        ),
        (
            "several",
            "  cronSpec: \"* * * * *\"\n  replicas: 0\n  mode: medium",
            vec![
                "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
                r#"spec.mode: Unsupported value: "medium""#,
            ],
        ),
    ];
    for (name, spec, wanted) in cases {
        let err = fails(server.kubectl_stdin(&["apply", "-f", "-"], &crontab("v1", name, spec)));
        assert!(
            err.contains(&format!(r#"The CronTab "{name}" is invalid"#)),
            "{name}: {err}"
        );
        for w in wanted {
            assert!(err.contains(w), "{name}: want {w:?} in {err}");
        }
    }
    let names = ok(server.kubectl(&["get", "ct", "-o", "name"]));
    assert_eq!(names, "crontab.stable.example.com/bogus\n");

    // An update is validated too.
    let err = fails(server.kubectl(&[
        "patch",
        "ct",
        "bogus",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":20}}"#,
    ]));
    assert!(
        err.contains("spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10"),
        "{err}"
    );
}

#[test]
fn crd_scale_and_status_subresources_and_patch_types() {
    let server = server_with_crd();
    ok(server.kubectl_stdin(
        &["create", "-f", "-"],
        &format!(
            "{}status:\n  replicas: 5\n",
            crontab(
                "v1",
                "first",
                "  cronSpec: \"*/5 * * * *\"\n  image: my-cron:1"
            )
        ),
    ));
    // Status is not taken from a create when the status subresource is on.
    let created = get_json(&server, &["ct", "first"]);
    assert!(created.get("status").is_none(), "{created}");

    let out = ok(server.kubectl(&["scale", "ct", "first", "--replicas=3"]));
    assert_eq!(out, "crontab.stable.example.com/first scaled\n");
    let scaled = get_json(&server, &["ct", "first"]);
    assert_eq!(scaled["spec"]["replicas"], 3);
    assert_eq!(scaled["metadata"]["generation"], 2);
    let scale: Value = serde_json::from_str(&ok(server.kubectl(&[
        "get",
        "--raw",
        "/apis/stable.example.com/v1/namespaces/default/crontabs/first/scale",
    ])))
    .unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 3);

    // Status subresource: status changes, spec and generation do not.
    ok(server.kubectl(&[
        "patch",
        "ct",
        "first",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":2,"labelSelector":"app=cron"},"spec":{"image":"ignored"}}"#,
    ]));
    let after_status = get_json(&server, &["ct", "first"]);
    assert_eq!(after_status["status"]["replicas"], 2);
    assert_eq!(after_status["spec"]["image"], "my-cron:1");
    assert_eq!(after_status["metadata"]["generation"], 2);
    let scale: Value = serde_json::from_str(&ok(server.kubectl(&[
        "get",
        "--raw",
        "/apis/stable.example.com/v1/namespaces/default/crontabs/first/scale",
    ])))
    .unwrap();
    assert_eq!(scale["status"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=cron");

    // The main resource ignores status.
    ok(server.kubectl(&[
        "patch",
        "ct",
        "first",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":7},"spec":{"image":"my-cron:2"}}"#,
    ]));
    let after_main = get_json(&server, &["ct", "first"]);
    assert_eq!(after_main["status"]["replicas"], 2);
    assert_eq!(after_main["spec"]["image"], "my-cron:2");
    assert_eq!(after_main["metadata"]["generation"], 3);

    // JSON patch.
    ok(server.kubectl(&[
        "patch",
        "ct",
        "first",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/image","value":"my-cron:3"},{"op":"add","path":"/spec/mode","value":"fast"}]"#,
    ]));
    let after_json = get_json(&server, &["ct", "first"]);
    assert_eq!(after_json["spec"]["image"], "my-cron:3");
    assert_eq!(after_json["spec"]["mode"], "fast");

    // Strategic merge patch is not defined for custom resources.
    let err = fails(server.kubectl(&["patch", "ct", "first", "-p", r#"{"spec":{"image":"x"}}"#]));
    assert!(
        err.contains(
            "application/strategic-merge-patch+json is not supported by stable.example.com/v1, Kind=CronTab"
        ),
        "{err}"
    );
    assert_eq!(
        get_json(&server, &["ct", "first"])["spec"]["image"],
        "my-cron:3"
    );
    // Upstream's 415 lists the patch types a custom resource accepts.
    assert!(
        err.contains(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn invalid_crds_are_rejected_with_422_naming_the_field() {
    let server = K3rs::start();
    let client = server.client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client);

    let widget = |name: &str, versions: Value| -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {
                "group": "bad.example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": versions,
            }
        }))
        .unwrap()
    };
    let version = |name: &str, storage: bool, schema: Value| json!({"name": name, "served": true, "storage": storage, "schema": {"openAPIV3Schema": schema}});
    let object = json!({"type": "object"});
    let cases = [
        (
            widget(
                "widgets.bad.example.com",
                json!([version("v1", false, object.clone())]),
            ),
            "spec.versions",
            "must have exactly one version marked as storage version",
        ),
        (
            widget(
                "widgets.bad.example.com",
                json!([
                    version("v1", true, object.clone()),
                    version("v2", true, object.clone())
                ]),
            ),
            "spec.versions",
            "must have exactly one version marked as storage version",
        ),
        (
            widget(
                "gadgets.bad.example.com",
                json!([version("v1", true, object.clone())]),
            ),
            "metadata.name",
            r#"must be spec.names.plural+"."+spec.group"#,
        ),
        (
            widget(
                "widgets.bad.example.com",
                json!([version(
                    "v1",
                    true,
                    json!({"type": "object", "properties": {"spec": {"properties": {"size": {"type": "integer"}}}}})
                )]),
            ),
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].type",
            "Required value: must not be empty for specified object fields",
        ),
    ];
    for (crd, field, message) in cases {
        let err = match crds.create(&PostParams::default(), &crd).await {
            Err(kube::Error::Api(status)) => status,
            other => panic!("{field}: expected a rejection, got {other:?}"),
        };
        assert_eq!(err.code, 422, "{err:?}");
        assert_eq!(err.reason, "Invalid", "{err:?}");
        assert!(
            err.message.contains(field) && err.message.contains(message),
            "want {field} / {message} in {:?}",
            err.message
        );
    }
    assert!(crds
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());

    // kubectl prints the same (its own OpenAPI validation does not mask it).
    let missing_type = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.bad.example.com}
spec:
  group: bad.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            properties:
              size: {type: integer}
"#;
    let err = fails(server.kubectl_stdin(&["apply", "-f", "-"], missing_type));
    assert!(
        err.contains(r#"The CustomResourceDefinition "widgets.bad.example.com" is invalid: spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value"#),
        "{err}"
    );
}

#[test]
fn deleting_crd_deletes_objects_and_discovery() {
    let server = server_with_crd();
    ok(server.kubectl(&["create", "namespace", "other"]));
    for (ns, name) in [("default", "a"), ("default", "b"), ("other", "c")] {
        ok(server.kubectl_stdin(
            &["apply", "-n", ns, "-f", "-"],
            &crontab("v1", name, "  cronSpec: \"* * * * *\""),
        ));
    }
    let all = ok(server.kubectl(&["get", "ct", "-A", "-o", "name"]));
    assert_eq!(all.lines().count(), 3, "{all}");

    let out = ok(server.kubectl(&["delete", "crd", CRD_NAME]));
    assert_eq!(
        out,
        "customresourcedefinition.apiextensions.k8s.io \"crontabs.stable.example.com\" deleted\n"
    );
    let crds = server.kubectl(&["get", "crd"]);
    assert!(
        stderr(&crds).contains("No resources found"),
        "{}",
        stderr(&crds)
    );

    // Gone from discovery: kubectl with a fresh discovery cache no longer knows `ct`.
    eventually_blocking(
        Duration::from_secs(10),
        "crontabs gone from discovery",
        || {
            let resources = ok(server.kubectl(&["api-resources"]));
            !resources.lines().any(|l| l.starts_with("crontabs "))
        },
    );
    let err = fails(server.kubectl(&["get", "ct"]));
    assert!(
        err.contains(r#"the server doesn't have a resource type "ct""#)
            || err.contains("the server could not find the requested resource"),
        "{err}"
    );
    let raw = fails(server.kubectl(&[
        "get",
        "--raw",
        "/apis/stable.example.com/v1/namespaces/default/crontabs",
    ]));
    assert!(
        raw.contains("NotFound") || raw.contains("not find"),
        "{raw}"
    );

    // Defining it again starts empty: the old objects were deleted with it.
    ok(server.kubectl_stdin(&["apply", "-f", "-"], CRONTAB_CRD));
    eventually_blocking(Duration::from_secs(10), "crontabs served again", || {
        server
            .kubectl(&["get", "ct", "-A", "-o", "name"])
            .status
            .success()
    });
    assert_eq!(ok(server.kubectl(&["get", "ct", "-A", "-o", "name"])), "");
}

#[tokio::test]
async fn dynamic_objects_against_the_crd() {
    let server = server_with_crd();
    let client = server.client().await;

    let gvk = GroupVersionKind::gvk("stable.example.com", "v1", "CronTab");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "crontabs");
    let crontabs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);

    let mut obj = DynamicObject::new("dyn", &resource).within("default");
    obj.data = json!({"spec": {"cronSpec": "0 * * * *", "image": "dyn:1"}});
    let created = crontabs.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(
        created.data["spec"]["replicas"], 1,
        "default applied: {created:?}"
    );
    assert_eq!(created.metadata.generation, Some(1));

    let listed = crontabs.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].data["spec"]["image"], "dyn:1");

    let patched = crontabs
        .patch(
            "dyn",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["replicas"], 4);

    let with_status = crontabs
        .patch_status(
            "dyn",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(with_status.data["status"]["replicas"], 4);

    // Server-side apply with a field manager of our own.
    let applied = crontabs
        .patch(
            "dyn",
            &PatchParams::apply("e2e-test"),
            &Patch::Apply(json!({
                "apiVersion": "stable.example.com/v1",
                "kind": "CronTab",
                "metadata": {"name": "dyn"},
                "spec": {"cronSpec": "0 * * * *", "mode": "slow"}
            })),
        )
        .await
        .unwrap();
    assert_eq!(applied.data["spec"]["mode"], "slow");
    assert!(applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .any(
            |m| m.manager.as_deref() == Some("e2e-test") && m.operation.as_deref() == Some("Apply")
        ),);

    // A schema violation is a 422.
    let mut bad = DynamicObject::new("bad", &resource).within("default");
    bad.data = json!({"spec": {"cronSpec": "0 * * * *", "mode": "medium"}});
    match crontabs.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(status.message.contains("spec.mode"), "{status:?}");
        }
        other => panic!("expected 422, got {other:?}"),
    }

    // The older version sees the same object.
    let beta_gvk = GroupVersionKind::gvk("stable.example.com", "v1beta1", "CronTab");
    let beta_resource = ApiResource::from_gvk_with_plural(&beta_gvk, "crontabs");
    let beta: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &beta_resource);
    let seen = beta.get("dyn").await.unwrap();
    assert_eq!(
        seen.types.unwrap().api_version,
        "stable.example.com/v1beta1"
    );
    assert_eq!(seen.data["spec"]["replicas"], 4);

    crontabs
        .delete("dyn", &DeleteParams::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "dyn deleted", || async {
        let list = crontabs.list(&ListParams::default()).await.unwrap();
        list.items.is_empty().then_some(())
    })
    .await;
}
