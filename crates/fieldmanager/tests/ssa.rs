//! Server-side apply and managedFields behaviour, scenario by scenario, as
//! kube-apiserver shows it to kubectl and controllers.

use k3rs_fieldmanager::{
    apply, read_managed_fields, update, upgrade_client_side_apply, ApplyError, BuiltinListTypes,
    FieldSet, ManagedFieldsEntry, Operation, PathElement, LAST_APPLIED_ANNOTATION,
};
use serde_json::{json, Value};

const APPS: &str = "apps/v1";

fn deployment(replicas: i64, labels: Value, containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers}
            }
        }
    })
}

fn apply_ok(live: Option<&Value>, config: &Value, manager: &str) -> Value {
    apply(live, config, manager, false, "", APPS, &BuiltinListTypes).unwrap()
}

fn entry<'a>(entries: &'a [ManagedFieldsEntry], manager: &str) -> &'a ManagedFieldsEntry {
    entries
        .iter()
        .find(|e| e.manager == manager)
        .unwrap_or_else(|| panic!("no entry for {manager} in {entries:?}"))
}

fn owns(obj: &Value, manager: &str, path: &[PathElement]) -> bool {
    read_managed_fields(obj)
        .iter()
        .any(|e| e.manager == manager && e.fields.has(path))
}

fn f(name: &str) -> PathElement {
    PathElement::field(name)
}

fn container(name: &str) -> PathElement {
    PathElement::key(vec![("name".into(), json!(name))])
}

fn replicas_path() -> Vec<PathElement> {
    vec![f("spec"), f("replicas")]
}

fn image_path(name: &str) -> Vec<PathElement> {
    vec![
        f("spec"),
        f("template"),
        f("spec"),
        f("containers"),
        container(name),
        f("image"),
    ]
}

#[test]
fn deployment_managed_fields_round_trip_through_fields_v1() {
    // As kube-apiserver stores them for `kubectl apply --server-side` and the
    // deployment controller.
    let managed = json!([
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": "2024-05-01T10:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {
                            "f:containers": {
                                "k:{\"name\":\"web\"}": {
                                    ".": {},
                                    "f:image": {},
                                    "f:name": {},
                                    "f:ports": {
                                        "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                            ".": {},
                                            "f:containerPort": {}
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": "2024-05-01T10:00:05Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {
                    "f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}},
                    "f:finalizers": {".": {}, "v:\"example.com/cleanup\"": {}}
                },
                "f:status": {
                    "f:conditions": {
                        ".": {},
                        "k:{\"type\":\"Available\"}": {
                            ".": {},
                            "f:lastTransitionTime": {},
                            "f:status": {},
                            "f:type": {}
                        }
                    },
                    "f:observedGeneration": {},
                    "f:replicas": {}
                }
            },
            "subresource": "status"
        }
    ]);
    let obj = json!({"metadata": {"name": "web", "managedFields": managed}});
    let entries = read_managed_fields(&obj);
    assert_eq!(entries.len(), 2);
    for (entry, raw) in entries.iter().zip(managed.as_array().unwrap()) {
        let set = FieldSet::from_fields_v1(&raw["fieldsV1"]).unwrap();
        assert_eq!(set, entry.fields);
        assert_eq!(set.to_fields_v1(), raw["fieldsV1"]);
        assert_eq!(&entry.to_json(), raw);
    }
    let kubectl = &entries[0].fields;
    assert!(kubectl.has(&image_path("web")));
    assert!(kubectl.has(&[
        f("spec"),
        f("template"),
        f("spec"),
        f("containers"),
        container("web")
    ]));
    assert!(!kubectl.has(&[f("spec"), f("template")]));
    let controller = &entries[1];
    assert_eq!(controller.operation, Operation::Update);
    assert!(controller.fields.has(&[
        f("metadata"),
        f("finalizers"),
        PathElement::Value(json!("example.com/cleanup"))
    ]));
    let mut written = obj.clone();
    k3rs_fieldmanager::write_managed_fields(&mut written, &entries);
    assert_eq!(written, obj);
}

#[test]
fn create_by_apply_sets_fields_and_one_apply_entry() {
    let config = deployment(
        2,
        json!({"app": "web"}),
        json!([{"name": "web", "image": "nginx:1"}]),
    );
    let created = apply_ok(None, &config, "kubectl");
    assert_eq!(created["spec"]["replicas"], 2);
    assert_eq!(created["metadata"]["labels"]["app"], "web");
    let entries = read_managed_fields(&created);
    assert_eq!(entries.len(), 1);
    let kubectl = &entries[0];
    assert_eq!(kubectl.manager, "kubectl");
    assert_eq!(kubectl.operation, Operation::Apply);
    assert_eq!(kubectl.api_version, APPS);
    assert!(kubectl.time.is_some());
    assert_eq!(
        kubectl.fields.to_fields_v1(),
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {"f:matchLabels": {"f:app": {}}},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                        ".": {}, "f:image": {}, "f:name": {}
                    }}}
                }
            }
        })
    );
    let time = created["metadata"]["managedFields"][0]["time"]
        .as_str()
        .unwrap();
    assert!(time.ends_with('Z') && time.len() == 20, "{time}");
}

#[test]
fn reapplying_without_a_label_removes_it() {
    let v1 = deployment(
        1,
        json!({"app": "web", "tier": "front"}),
        json!([{"name": "web", "image": "nginx:1"}]),
    );
    let live = apply_ok(None, &v1, "kubectl");
    let v2 = deployment(
        1,
        json!({"app": "web"}),
        json!([{"name": "web", "image": "nginx:1"}]),
    );
    let live = apply_ok(Some(&live), &v2, "kubectl");
    assert_eq!(live["metadata"]["labels"], json!({"app": "web"}));
    assert!(!owns(
        &live,
        "kubectl",
        &[f("metadata"), f("labels"), f("tier")]
    ));

    // Dropping the last label removes the emptied map too.
    let mut v3 = v2.clone();
    v3["metadata"].as_object_mut().unwrap().remove("labels");
    let live = apply_ok(Some(&live), &v3, "kubectl");
    assert!(live["metadata"].get("labels").is_none(), "{live}");
}

#[test]
fn changing_a_field_owned_by_another_manager_conflicts() {
    let containers = json!([{"name": "web", "image": "nginx:1"}]);
    let live = apply_ok(
        None,
        &deployment(1, json!({"app": "web"}), containers.clone()),
        "a",
    );
    let config = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}
    });
    let err = apply(
        Some(&live),
        &config,
        "b",
        false,
        "",
        APPS,
        &BuiltinListTypes,
    )
    .unwrap_err();
    let ApplyError::Conflicts(conflicts) = &err else {
        panic!("{err:?}");
    };
    let found: Vec<_> = conflicts
        .iter()
        .map(|c| (c.manager.as_str(), c.path.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("a", ".spec.replicas"),
            ("a", ".spec.template.spec.containers[name=\"web\"].image"),
        ]
    );
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
    );

    // One conflict with an Update owner reads like upstream's.
    let scaled = {
        let mut new = live.clone();
        new["spec"]["replicas"] = json!(5);
        update(
            Some(&live),
            &new,
            "kubectl-client-side-apply",
            "",
            APPS,
            &BuiltinListTypes,
        )
    };
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": "web"}, "spec": {"replicas": 3}});
    let err = apply(
        Some(&scaled),
        &config,
        "b",
        false,
        "",
        APPS,
        &BuiltinListTypes,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn force_takes_ownership() {
    let live = apply_ok(
        None,
        &deployment(
            1,
            json!({"app": "web"}),
            json!([{"name": "web", "image": "nginx:1"}]),
        ),
        "a",
    );
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": "web"}, "spec": {"replicas": 3}});
    let live = apply(Some(&live), &config, "b", true, "", APPS, &BuiltinListTypes).unwrap();
    assert_eq!(live["spec"]["replicas"], 3);
    assert!(owns(&live, "b", &replicas_path()));
    assert!(!owns(&live, "a", &replicas_path()));
    assert!(owns(&live, "a", &image_path("web")));

    // a re-applying its old value now conflicts with b.
    let a_config = deployment(
        1,
        json!({"app": "web"}),
        json!([{"name": "web", "image": "nginx:1"}]),
    );
    let err = apply(
        Some(&live),
        &a_config,
        "a",
        false,
        "",
        APPS,
        &BuiltinListTypes,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"b\": .spec.replicas"
    );
}

#[test]
fn same_value_is_shared_and_survives_one_owner_leaving() {
    let full = deployment(
        2,
        json!({"app": "web"}),
        json!([{"name": "web", "image": "nginx:1"}]),
    );
    let live = apply_ok(None, &full, "a");
    let b_config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                          "metadata": {"name": "web"}, "spec": {"replicas": 2}});
    let live = apply_ok(Some(&live), &b_config, "b");
    assert!(owns(&live, "a", &replicas_path()));
    assert!(owns(&live, "b", &replicas_path()));

    // a stops applying replicas: b still owns it, so it stays.
    let mut a_config = full.clone();
    a_config["spec"].as_object_mut().unwrap().remove("replicas");
    let live = apply_ok(Some(&live), &a_config, "a");
    assert_eq!(live["spec"]["replicas"], 2);
    assert!(!owns(&live, "a", &replicas_path()));
    assert!(owns(&live, "b", &replicas_path()));

    // b stops too: now nobody owns it and it goes.
    let b_config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                          "metadata": {"name": "web", "labels": {"owner": "b"}}});
    let live = apply_ok(Some(&live), &b_config, "b");
    assert!(live["spec"].get("replicas").is_none(), "{live}");
    assert_eq!(live["metadata"]["labels"]["owner"], "b");
}

#[test]
fn update_after_apply_moves_changed_fields() {
    let live = apply_ok(
        None,
        &deployment(
            1,
            json!({"app": "web"}),
            json!([{"name": "web", "image": "nginx:1"}]),
        ),
        "kubectl",
    );
    let mut new = live.clone();
    new["spec"]["replicas"] = json!(4);
    new["metadata"]["annotations"] = json!({"note": "scaled"});
    let updated = update(Some(&live), &new, "hpa", "", APPS, &BuiltinListTypes);
    assert_eq!(updated["spec"]["replicas"], 4);
    let entries = read_managed_fields(&updated);
    let hpa = entry(&entries, "hpa");
    assert_eq!(hpa.operation, Operation::Update);
    assert_eq!(
        hpa.fields.to_fields_v1(),
        json!({"f:metadata": {"f:annotations": {".": {}, "f:note": {}}}, "f:spec": {"f:replicas": {}}})
    );
    assert!(!owns(&updated, "kubectl", &replicas_path()));
    assert!(owns(&updated, "kubectl", &image_path("web")));

    // A no-op update changes nothing, not even times.
    let again = update(Some(&updated), &updated, "hpa", "", APPS, &BuiltinListTypes);
    assert_eq!(again, updated);
}

#[test]
fn update_on_create_and_before_first_apply() {
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "c", "namespace": "d", "labels": {"a": "1"}},
                     "data": {"k": "v"}});
    let created = update(None, &obj, "kubectl-create", "", "v1", &BuiltinListTypes);
    let entries = read_managed_fields(&created);
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].fields.to_fields_v1(),
        json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
    );

    // An object without managedFields: its fields go to before-first-apply.
    let mut new = obj.clone();
    new["data"]["k"] = json!("w");
    let updated = update(Some(&obj), &new, "editor", "", "v1", &BuiltinListTypes);
    let entries = read_managed_fields(&updated);
    let before = entry(&entries, "before-first-apply");
    assert_eq!(before.operation, Operation::Update);
    assert!(before.fields.has(&[f("metadata"), f("labels"), f("a")]));
    assert!(!before.fields.has(&[f("data"), f("k")]));
    assert!(entry(&entries, "editor").fields.has(&[f("data"), f("k")]));
}

#[test]
fn containers_merge_by_name() {
    let live = apply_ok(
        None,
        &deployment(
            1,
            json!({"app": "web"}),
            json!([{"name": "web", "image": "nginx:1"}, {"name": "sidecar", "image": "envoy:1"}]),
        ),
        "a",
    );
    // b applies only web's image; a's sidecar stays.
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}});
    let live = apply(Some(&live), &config, "b", true, "", APPS, &BuiltinListTypes).unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"],
        json!([{"name": "web", "image": "nginx:2"}, {"name": "sidecar", "image": "envoy:1"}])
    );
    assert!(owns(&live, "b", &image_path("web")));
    assert!(!owns(&live, "a", &image_path("web")));
    assert!(owns(&live, "a", &image_path("sidecar")));

    // b adds a container of its own, then stops applying it: it is removed,
    // while web (co-owned by a) stays.
    let with_extra = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:2"}, {"name": "debug", "image": "busybox"}]}}}});
    let live = apply_ok(Some(&live), &with_extra, "b");
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let live = apply_ok(Some(&live), &config, "b");
    let names: Vec<_> = live["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["web", "sidecar"]);
}

#[test]
fn atomic_lists_are_replaced_and_owned_whole() {
    let config = |args: Value| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c", "image": "busybox", "args": args}],
                        "tolerations": [{"key": "a", "operator": "Exists"}]}})
    };
    let live = apply(
        None,
        &config(json!(["sleep", "1"])),
        "a",
        false,
        "",
        "v1",
        &BuiltinListTypes,
    )
    .unwrap();
    let live = apply(
        Some(&live),
        &config(json!(["sleep"])),
        "a",
        false,
        "",
        "v1",
        &BuiltinListTypes,
    )
    .unwrap();
    assert_eq!(live["spec"]["containers"][0]["args"], json!(["sleep"]));
    let args = [f("spec"), f("containers"), container("c"), f("args")];
    assert!(owns(&live, "a", &args));

    // Another manager changing the atomic list conflicts on the list as a whole.
    let other = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                       "spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}});
    let err = apply(Some(&live), &other, "b", false, "", "v1", &BuiltinListTypes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"a\": .spec.tolerations"
    );
    let live = apply(Some(&live), &other, "b", true, "", "v1", &BuiltinListTypes).unwrap();
    assert_eq!(
        live["spec"]["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
}

#[test]
fn invalid_configurations_are_rejected() {
    let no_name = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "spec": {"containers": [{"image": "x"}]}});
    let err = apply(None, &no_name, "a", false, "", "v1", &BuiltinListTypes).unwrap_err();
    assert!(matches!(err, ApplyError::Invalid(_)));
    assert!(
        err.to_string().contains("omits key field \"name\""),
        "{err}"
    );

    let managed = json!({"metadata": {"name": "p", "managedFields": [{}]}});
    let err = apply(None, &managed, "a", false, "", "v1", &BuiltinListTypes).unwrap_err();
    assert_eq!(err.to_string(), "metadata.managedFields must be nil");
}

#[test]
fn upgrade_from_client_side_apply_then_apply_prunes() {
    // What client-side `kubectl apply` leaves behind.
    let mut last_applied = deployment(
        1,
        json!({"app": "web", "legacy": "yes"}),
        json!([{"name": "web", "image": "nginx:1"}]),
    );
    let mut live = last_applied.clone();
    live["metadata"]["annotations"] = json!({LAST_APPLIED_ANNOTATION: last_applied.to_string()});
    let live = update(
        None,
        &live,
        "kubectl-client-side-apply",
        "",
        APPS,
        &BuiltinListTypes,
    );
    last_applied["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("legacy");
    let config = last_applied;

    // Without the upgrade the label would stay (owned by client-side apply).
    let not_upgraded = apply_ok(Some(&live), &config, "kubectl");
    assert_eq!(not_upgraded["metadata"]["labels"]["legacy"], "yes");

    let mut upgraded = live.clone();
    upgrade_client_side_apply(&mut upgraded, "kubectl", &BuiltinListTypes);
    let entries = read_managed_fields(&upgraded);
    let kubectl = entry(&entries, "kubectl");
    assert_eq!(kubectl.operation, Operation::Apply);
    assert!(kubectl
        .fields
        .has(&[f("metadata"), f("labels"), f("legacy")]));
    let csa = entry(&entries, "kubectl-client-side-apply");
    assert!(!csa.fields.has(&[f("metadata"), f("labels"), f("legacy")]));
    assert!(csa
        .fields
        .has(&[f("metadata"), f("annotations"), f(LAST_APPLIED_ANNOTATION)]));

    let applied = apply_ok(Some(&upgraded), &config, "kubectl");
    assert_eq!(applied["metadata"]["labels"], json!({"app": "web"}));
    // The annotation now records the server-side configuration.
    let annotation = applied["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
        .as_str()
        .unwrap();
    let recorded: Value = serde_json::from_str(annotation).unwrap();
    assert_eq!(recorded["metadata"]["labels"], json!({"app": "web"}));
}

#[test]
fn subresource_entries_are_separate() {
    let live = apply_ok(
        None,
        &deployment(
            1,
            json!({"app": "web"}),
            json!([{"name": "web", "image": "nginx:1"}]),
        ),
        "kubectl",
    );
    let mut new = live.clone();
    new["status"] = json!({"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]});
    let updated = update(
        Some(&live),
        &new,
        "kube-controller-manager",
        "status",
        APPS,
        &BuiltinListTypes,
    );
    let entries = read_managed_fields(&updated);
    let kcm = entry(&entries, "kube-controller-manager");
    assert_eq!(kcm.subresource, "status");
    assert!(kcm.fields.has(&[
        f("status"),
        f("conditions"),
        PathElement::key(vec![("type".into(), json!("Available"))]),
        f("status")
    ]));
    assert_eq!(entry(&entries, "kubectl").subresource, "");
}

#[test]
fn reset_fields_are_neither_written_nor_owned() {
    use k3rs_fieldmanager::{apply_with_reset, status_reset_fields, update_with_reset};
    let mut config = deployment(
        1,
        json!({"app": "web"}),
        json!([{"name": "web", "image": "nginx:1"}]),
    );
    config["status"] = json!({"replicas": 7});
    let live = apply_with_reset(
        None,
        &config,
        "kubectl",
        false,
        "",
        APPS,
        &BuiltinListTypes,
        &status_reset_fields(""),
    )
    .unwrap();
    assert!(live.get("status").is_none(), "{live}");
    assert!(owns(&live, "kubectl", &replicas_path()));

    let mut new = live.clone();
    new["status"] = json!({"replicas": 1});
    let updated = update_with_reset(
        Some(&live),
        &new,
        "kube-controller-manager",
        "status",
        APPS,
        &BuiltinListTypes,
        &status_reset_fields("status"),
    );
    assert!(owns(
        &updated,
        "kube-controller-manager",
        &[f("status"), f("replicas")]
    ));
}

#[test]
fn sets_and_defaulted_keys() {
    let service = |ports: Value, finalizers: Value| {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "s", "finalizers": finalizers},
               "spec": {"ports": ports}})
    };
    let live = apply(
        None,
        &service(json!([{"port": 80, "name": "http"}]), json!(["a/x"])),
        "a",
        false,
        "",
        "v1",
        &BuiltinListTypes,
    )
    .unwrap();
    // The live port gained protocol TCP by defaulting; the key still matches.
    let mut defaulted = live.clone();
    defaulted["spec"]["ports"][0]["protocol"] = json!("TCP");
    let defaulted = update(
        Some(&live),
        &defaulted,
        "defaulter",
        "",
        "v1",
        &BuiltinListTypes,
    );
    let port = PathElement::key(vec![
        ("port".into(), json!(80)),
        ("protocol".into(), json!("TCP")),
    ]);
    assert!(owns(
        &defaulted,
        "a",
        &[f("spec"), f("ports"), port.clone(), f("name")]
    ));
    assert!(owns(
        &defaulted,
        "defaulter",
        &[f("spec"), f("ports"), port, f("protocol")]
    ));

    // b adds a finalizer; a drops its own: the set keeps b's only.
    let b = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "finalizers": ["b/y"]}});
    let live = apply(
        Some(&defaulted),
        &b,
        "b",
        false,
        "",
        "v1",
        &BuiltinListTypes,
    )
    .unwrap();
    assert_eq!(live["metadata"]["finalizers"], json!(["a/x", "b/y"]));
    let live = apply(
        Some(&live),
        &service(json!([{"port": 80, "name": "http"}]), json!([])),
        "a",
        false,
        "",
        "v1",
        &BuiltinListTypes,
    )
    .unwrap();
    assert_eq!(live["metadata"]["finalizers"], json!(["b/y"]));

    // Re-applying the same configuration keeps the entry's time.
    let again = apply(
        Some(&live),
        &service(json!([{"port": 80, "name": "http"}]), json!([])),
        "a",
        false,
        "",
        "v1",
        &BuiltinListTypes,
    )
    .unwrap();
    assert_eq!(again, live);
}
