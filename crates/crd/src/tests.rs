//! End-to-end checks of the crate's API on a realistic `CronTab` CRD.

use crate::*;
use chrono::TimeZone;
use k3rs_core::Scope;
use serde_json::{json, Value};

fn crontab_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["cronSpec"],
                "properties": {
                    "cronSpec": {
                        "type": "string",
                        "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"
                    },
                    "image": {"type": "string", "minLength": 1, "maxLength": 20},
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                    "color": {"type": "string", "enum": ["red", "blue"]},
                    "port": {"x-kubernetes-int-or-string": true},
                    "ratio": {"type": "number", "exclusiveMinimum": true, "minimum": 0, "nullable": true},
                    "tags": {
                        "type": "array",
                        "maxItems": 3,
                        "items": {"type": "string"},
                        "x-kubernetes-list-type": "set"
                    },
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string"},
                                "protocol": {"type": "string", "default": "TCP"}
                            }
                        }
                    },
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "template": {
                        "type": "object",
                        "properties": {
                            "restartPolicy": {"type": "string", "default": "Always"},
                            "settings": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": true,
                                "properties": {
                                    "level": {"type": "integer"},
                                    "nested": {"type": "object", "properties": {"a": {"type": "string"}}}
                                }
                            }
                        }
                    },
                    "created": {"type": "string", "format": "date-time"}
                }
            },
            "status": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer"},
                    "labelSelector": {"type": "string"},
                    "conditions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "type": {"type": "string"},
                                "status": {"type": "string"}
                            }
                        }
                    }
                }
            }
        }
    })
}

fn crontab_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "scope": "Namespaced",
            "names": {
                "plural": "crontabs",
                "singular": "crontab",
                "kind": "CronTab",
                "shortNames": ["ct"],
                "categories": ["all"]
            },
            "versions": [
                {
                    "name": "v1",
                    "served": true,
                    "storage": true,
                    "schema": {"openAPIV3Schema": crontab_schema()},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.labelSelector"
                        }
                    },
                    "additionalPrinterColumns": [
                        {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                        {"name": "Ready", "type": "string",
                         "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                        {"name": "Tags", "type": "string", "jsonPath": ".spec.tags[*]", "priority": 1},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                    ]
                },
                {
                    "name": "v1beta1",
                    "served": true,
                    "storage": false,
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": true
                    }}
                }
            ]
        }
    })
}

fn messages(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(|e| e.to_string()).collect()
}

fn schema() -> Schema {
    version_info(&crontab_crd(), "v1").unwrap().schema
}

fn object(spec: Value) -> Value {
    json!({
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "my-cron", "namespace": "default", "labels": {"app": "x"}},
        "spec": spec
    })
}

#[test]
fn realistic_crd_is_valid() {
    assert_eq!(
        messages(&validate_crd(&crontab_crd(), None)),
        Vec::<String>::new()
    );
    // An update that changes nothing immutable is fine too.
    let old = crontab_crd();
    let mut new = crontab_crd();
    new["spec"]["names"]["shortNames"] = json!(["ct", "cron"]);
    assert!(validate_crd(&new, Some(&old)).is_empty());
}

#[test]
fn storage_version_count_and_unique_versions() {
    let mut crd = crontab_crd();
    crd["spec"]["versions"][0]["storage"] = json!(false);
    assert_eq!(
        messages(&validate_crd(&crd, None)),
        [
            r#"spec.versions: Invalid value: ["v1","v1beta1"]: must have exactly one version marked as storage version"#
        ]
    );
    crd["spec"]["versions"][0]["storage"] = json!(true);
    crd["spec"]["versions"][1]["storage"] = json!(true);
    let errs = validate_crd(&crd, None);
    assert_eq!(errs.len(), 1);
    assert!(errs[0]
        .message
        .ends_with("must have exactly one version marked as storage version"));

    let mut crd = crontab_crd();
    crd["spec"]["versions"][1]["name"] = json!("v1");
    assert_eq!(
        messages(&validate_crd(&crd, None)),
        [r#"spec.versions: Invalid value: ["v1","v1"]: must contain unique version names"#]
    );

    let mut crd = crontab_crd();
    crd["spec"]["versions"] = json!([]);
    let errs = validate_crd(&crd, None);
    assert_eq!(errs[0].field, "spec.versions");
    assert!(errs[0]
        .message
        .contains("exactly one version marked as storage"));
}

#[test]
fn names_and_group_rules() {
    let mut crd = crontab_crd();
    crd["metadata"]["name"] = json!("crontab.stable.example.com");
    assert_eq!(
        messages(&validate_crd(&crd, None)),
        [
            r#"metadata.name: Invalid value: "crontab.stable.example.com": must be spec.names.plural+"."+spec.group"#
        ]
    );

    let mut crd = crontab_crd();
    crd["spec"]["names"]["plural"] = json!("CronTabs");
    crd["metadata"]["name"] = json!("CronTabs.stable.example.com");
    let errs = validate_crd(&crd, None);
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["metadata.name", "spec.names.plural"]);
    assert!(errs[1]
        .message
        .starts_with(r#"Invalid value: "CronTabs": a DNS-1035 label must consist of lower case"#));
    assert_eq!(errs[1].reason, "FieldValueInvalid");

    let mut crd = crontab_crd();
    crd["spec"]["group"] = json!("example");
    crd["metadata"]["name"] = json!("crontabs.example");
    assert_eq!(
        messages(&validate_crd(&crd, None)),
        [r#"spec.group: Invalid value: "example": should be a domain with at least one dot"#]
    );

    let mut crd = crontab_crd();
    crd["spec"]["scope"] = json!("Global");
    crd["spec"]["names"]["listKind"] = json!("CronTab");
    crd["spec"]["names"]["shortNames"] = json!(["CT"]);
    let msgs = messages(&validate_crd(&crd, None));
    assert!(msgs.contains(
        &r#"spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced""#
            .to_string()
    ));
    assert!(msgs.contains(
        &r#"spec.names.listKind: Invalid value: "CronTab": kind and listKind may not be the same"#
            .to_string()
    ));
    assert!(msgs
        .iter()
        .any(|m| m.starts_with("spec.names.shortNames[0]: Invalid value")));

    let mut crd = crontab_crd();
    crd["spec"]["names"]["kind"] = json!("");
    let msgs = messages(&validate_crd(&crd, None));
    assert!(msgs.contains(&"spec.names.kind: Required value".to_string()));
}

#[test]
fn schemas_must_be_structural() {
    let mut crd = crontab_crd();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = json!({
        "properties": {
            "spec": {
                "properties": {
                    "list": {"type": "array"},
                    "items": {"type": "array", "items": {"properties": {"x": {"type": "string"}}}},
                    "both": {
                        "type": "object",
                        "properties": {"a": {"type": "string"}},
                        "additionalProperties": {"type": "string"}
                    },
                    "ok": {"x-kubernetes-preserve-unknown-fields": true},
                    "ios": {"x-kubernetes-int-or-string": true}
                }
            },
            "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}
        }
    });
    let msgs = messages(&validate_crd(&crd, None));
    let p = "spec.versions[0].schema.openAPIV3Schema";
    let expected = [
        format!("{p}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"),
        format!("{p}.properties[spec].properties[both].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"),
        format!("{p}.properties[spec].properties[items].items.type: Required value: must not be empty for specified array items"),
        format!("{p}.properties[spec].properties[list].items: Required value: must be specified"),
        format!("{p}.properties[spec].type: Required value: must not be empty for specified object fields"),
        format!("{p}.type: Required value: must not be empty at the root"),
    ];
    assert_eq!(msgs, expected);

    let mut crd = crontab_crd();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = json!({"type": "string"});
    assert_eq!(
        messages(&validate_crd(&crd, None)),
        [
            r#"spec.versions[0].schema.openAPIV3Schema.type: Invalid value: "string": must be object at the root"#
        ]
    );

    let mut crd = crontab_crd();
    crd["spec"]["versions"][1]
        .as_object_mut()
        .unwrap()
        .remove("schema");
    assert_eq!(
        messages(&validate_crd(&crd, None)),
        ["spec.versions[1].schema.openAPIV3Schema: Required value: schemas are required"]
    );

    // Value validations only under the junctors, int-or-string anyOf allowed.
    let mut crd = crontab_crd();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = json!({
        "type": "object",
        "properties": {
            "a": {"x-kubernetes-int-or-string": true,
                  "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "b": {"type": "string", "anyOf": [{"type": "string", "pattern": "["}]},
            "c": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
            "d": {"$ref": "#/definitions/x", "type": "string"}
        }
    });
    let msgs = messages(&validate_crd(&crd, None));
    let p = "spec.versions[0].schema.openAPIV3Schema.properties";
    assert_eq!(msgs.len(), 4, "{msgs:#?}");
    assert_eq!(
        msgs[0],
        format!("{p}[b].anyOf[0].pattern: Invalid value: \"[\": must be a valid regular expression, but isn't: unclosed character class")
    );
    assert_eq!(
        msgs[1],
        format!("{p}[b].anyOf[0].type: Forbidden: must be empty to be structural")
    );
    assert_eq!(msgs[2], format!("{p}[c].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"));
    assert_eq!(
        msgs[3],
        format!("{p}[d].$ref: Forbidden: $ref is not supported")
    );
}

#[test]
fn defaults_must_validate() {
    let mut crd = crontab_crd();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["replicas"]["default"] = json!("one");
    assert_eq!(
        messages(&validate_crd(&crd, None)),
        [concat!(
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[replicas].default: ",
            r#"Invalid value: "string": spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[replicas].default in body must be of type integer: "string""#
        )]
    );
}

#[test]
fn subresources_columns_and_updates() {
    let mut crd = crontab_crd();
    crd["spec"]["versions"][0]["subresources"]["scale"]["specReplicasPath"] = json!(".status.x");
    crd["spec"]["versions"][0]["additionalPrinterColumns"][0]["type"] = json!("text");
    crd["spec"]["versions"][0]["additionalPrinterColumns"][1]["jsonPath"] = json!("spec.x");
    assert_eq!(
        messages(&validate_crd(&crd, None)),
        [
            r#"spec.versions[0].subresources.scale.specReplicasPath: Invalid value: ".status.x": should be a json path under .spec"#,
            r#"spec.versions[0].additionalPrinterColumns[0].type: Invalid value: "text": must be one of boolean,date,integer,number,string"#,
            r#"spec.versions[0].additionalPrinterColumns[1].JSONPath: Invalid value: "spec.x": must be a simple json path starting with ."#,
        ]
    );

    let old = {
        let mut c = crontab_crd();
        c["status"] = accepted_status(&c, &[], chrono::Utc::now());
        c
    };
    let mut new = old.clone();
    new["spec"]["group"] = json!("other.example.com");
    new["spec"]["names"]["plural"] = json!("crons");
    new["spec"]["scope"] = json!("Cluster");
    new["metadata"]["name"] = json!("crons.other.example.com");
    let msgs = messages(&validate_crd(&new, Some(&old)));
    assert_eq!(
        msgs,
        [
            r#"spec.scope: Invalid value: "Cluster": field is immutable"#,
            r#"spec.group: Invalid value: "other.example.com": field is immutable"#,
            r#"spec.names.plural: Invalid value: "crons": field is immutable"#,
        ]
    );

    // A stored version cannot disappear from spec.versions.
    let mut new = old.clone();
    new["status"]["storedVersions"] = json!(["v1beta1", "v1"]);
    new["spec"]["versions"].as_array_mut().unwrap().remove(1);
    assert_eq!(
        messages(&validate_crd(&new, Some(&old))),
        [r#"status.storedVersions[0]: Invalid value: "v1beta1": must appear in spec.versions"#]
    );
}

#[test]
fn status_after_acceptance() {
    let now = chrono::Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
    let crd = crontab_crd();
    let status = accepted_status(&crd, &[], now);
    assert_eq!(
        status,
        json!({
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "lastTransitionTime": "2025-01-02T03:04:05Z",
                 "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "lastTransitionTime": "2025-01-02T03:04:05Z",
                 "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
            ],
            "acceptedNames": {
                "plural": "crontabs", "singular": "crontab", "kind": "CronTab",
                "listKind": "CronTabList", "shortNames": ["ct"], "categories": ["all"]
            },
            "storedVersions": ["v1"]
        })
    );

    // Re-accepting keeps the transition times.
    let mut accepted = crd.clone();
    accepted["status"] = status.clone();
    let later = now + chrono::Duration::hours(1);
    assert_eq!(accepted_status(&accepted, &[], later), status);

    // Another CRD of the group already holds the plural.
    let mut other = crontab_crd();
    other["metadata"]["name"] = json!("crontabs2.stable.example.com");
    other["spec"]["names"] = json!({"plural": "crontabs", "kind": "OtherTab"});
    let status = accepted_status(&crd, &[other.clone(), crd.clone()], now);
    assert_eq!(status["conditions"][0]["status"], "False");
    assert_eq!(status["conditions"][0]["reason"], "PluralConflict");
    assert_eq!(
        status["conditions"][0]["message"],
        "\"crontabs\" is already in use"
    );
    assert_eq!(status["conditions"][1]["status"], "False");
    assert_eq!(status["conditions"][1]["reason"], "NotAccepted");
    assert_eq!(status["acceptedNames"]["kind"], "CronTab");
    assert_eq!(status["acceptedNames"]["plural"], "");

    // Same kind in the group.
    other["spec"]["names"] = json!({"plural": "others", "kind": "CronTab"});
    let status = accepted_status(&crd, &[other.clone()], now);
    // Kind and list kind both clash; as upstream, the last conflict checked is reported.
    assert_eq!(status["conditions"][0]["reason"], "ListKindConflict");
    assert_eq!(
        status["conditions"][0]["message"],
        "\"CronTabList\" is already in use"
    );
    other["spec"]["names"] = json!({"plural": "others", "kind": "CronTab", "listKind": "Other"});
    let status = accepted_status(&crd, &[other.clone()], now);
    assert_eq!(status["conditions"][0]["reason"], "KindConflict");

    // A different group never conflicts.
    other["spec"]["group"] = json!("other.example.com");
    let status = accepted_status(&crd, &[other], now);
    assert_eq!(status["conditions"][0]["status"], "True");
}

#[test]
fn resource_defs_per_served_version() {
    let mut crd = crontab_crd();
    let defs = resource_defs(&crd);
    assert_eq!(defs.len(), 2);
    let v1 = &defs[0];
    assert_eq!(v1.group, "stable.example.com");
    assert_eq!(v1.version, "v1");
    assert_eq!(v1.kind, "CronTab");
    assert_eq!(v1.plural, "crontabs");
    assert_eq!(v1.singular, "crontab");
    assert_eq!(v1.scope, Scope::Namespaced);
    assert_eq!(v1.short_names, ["ct"]);
    assert_eq!(v1.categories, ["all"]);
    assert!(v1.has_status && v1.has_scale);
    assert_eq!(v1.verbs.len(), 8);
    assert_eq!(v1.list_kind(), "CronTabList");
    assert_eq!(
        v1.key(Some("default"), "a"),
        "/registry/stable.example.com/crontabs/default/a"
    );
    assert!(!defs[1].has_status && !defs[1].has_scale);
    assert_eq!(defs[1].version, "v1beta1");

    crd["spec"]["versions"][1]["served"] = json!(false);
    crd["spec"]["scope"] = json!("Cluster");
    let defs = resource_defs(&crd);
    assert_eq!(defs.len(), 1);
    assert_eq!(defs[0].scope, Scope::Cluster);

    let info = version_info(&crd, "v1").unwrap();
    assert!(info.storage && info.served && info.has_status);
    assert_eq!(
        info.scale,
        Some(ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: Some(".status.labelSelector".into()),
        })
    );
    let scale = info.scale.unwrap();
    let mut o = object(json!({"cronSpec": "* * * * *", "replicas": 2}));
    o["status"] = json!({"labelSelector": "app=x"});
    assert_eq!(scale.read_spec_replicas(&o), Some(2));
    assert_eq!(scale.read_status_replicas(&o), 0);
    assert_eq!(scale.read_label_selector(&o).as_deref(), Some("app=x"));
    assert!(scale.write_spec_replicas(&mut o, 5));
    assert_eq!(o["spec"]["replicas"], 5);
    let mut bare = json!({"metadata": {"name": "x"}});
    assert!(scale.write_spec_replicas(&mut bare, 1));
    assert_eq!(bare["spec"], json!({"replicas": 1}));
    assert!(version_info(&crd, "v2").is_none());
    assert!(!version_info(&crd, "v1beta1").unwrap().served);
}

#[test]
fn object_validation_errors_have_upstream_paths() {
    let s = schema();
    let ok = object(
        json!({"cronSpec": "*/5 * * * *", "image": "busybox", "replicas": 3,
                           "color": "red", "port": "http", "ratio": null,
                           "created": "2024-01-01T00:00:00Z"}),
    );
    assert_eq!(messages(&s.validate(&ok)), Vec::<String>::new());

    let bad = object(json!({"replicas": "many", "color": "pink"}));
    assert_eq!(
        messages(&s.validate(&bad)),
        [
            "spec.cronSpec: Required value",
            r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#,
            r#"spec.color: Unsupported value: "pink": supported values: "red", "blue""#,
        ]
    );
    let errs = s.validate(&bad);
    assert_eq!(errs[0].reason, "FieldValueRequired");
    assert_eq!(errs[1].reason, "FieldValueTypeInvalid");
    assert_eq!(errs[2].reason, "FieldValueNotSupported");

    let bad = object(
        json!({"cronSpec": "every minute", "replicas": 0, "image": "",
                            "port": 1.5, "ratio": 0, "tags": ["a", "b", "a", "c"],
                            "created": "yesterday"}),
    );
    assert_eq!(
        messages(&s.validate(&bad)),
        [
            r#"spec.cronSpec: Invalid value: "every minute": spec.cronSpec in body should match '^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$'"#,
            r#"spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"#,
            r#"spec.image: Invalid value: "": spec.image in body should be at least 1 chars long"#,
            r#"spec.port: Invalid value: "number": spec.port in body must be of type integer,string: "number""#,
            r#"spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"#,
            r#"spec.tags: Too many: 4: must have at most 3 items"#,
            r#"spec.tags[2]: Duplicate value: "a""#,
            r#"spec.created: Invalid value: "yesterday": spec.created in body must be of type date-time: "yesterday""#,
        ]
    );

    let bad = object(
        json!({"cronSpec": "* * * * *", "replicas": 11, "image": "a-very-long-image-name-here",
                            "ports": [{"name": "a"}, {"name": "a"}, {"protocol": "UDP"}],
                            "labels": {"x": 1}}),
    );
    assert_eq!(
        messages(&s.validate(&bad)),
        [
            "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
            "spec.image: Too long: may not be more than 20 bytes",
            "spec.ports[2].name: Required value",
            "spec.ports[1]: Duplicate value: {\"name\":\"a\"}",
            r#"spec.labels.x: Invalid value: "integer": spec.labels.x in body must be of type string: "integer""#,
        ]
    );

    // Metadata is ObjectMeta: not checked against the schema, except name constraints.
    let mut crd = crontab_crd();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["metadata"] =
        json!({"type": "object", "properties": {"name": {"type": "string", "maxLength": 5}}});
    assert!(validate_crd(&crd, None).is_empty());
    let s = version_info(&crd, "v1").unwrap().schema;
    assert_eq!(
        messages(&s.validate(&object(json!({"cronSpec": "* * * * *"})))),
        ["metadata.name: Too long: may not be more than 5 bytes"]
    );
    let mut o = object(json!({"cronSpec": "* * * * *"}));
    o["metadata"]["name"] = json!("short");
    assert!(s.validate(&o).is_empty());
}

#[test]
fn int_or_string_and_embedded_resources() {
    let s = Schema::compile(&json!({
        "type": "object",
        "properties": {
            "port": {"x-kubernetes-int-or-string": true,
                     "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": true,
                "x-kubernetes-preserve-unknown-fields": true
            }
        }
    }));
    assert!(s.validate(&json!({"port": 80})).is_empty());
    assert!(s.validate(&json!({"port": "http"})).is_empty());
    assert_eq!(
        messages(&s.validate(&json!({"port": true}))),
        [
            r#"port: Invalid value: "boolean": port in body must be of type integer,string: "boolean""#
        ]
    );
    assert_eq!(
        messages(&s.validate(&json!({"template": {"spec": {}}}))),
        [
            "template.apiVersion: Required value: must not be empty",
            "template.kind: Required value: must not be empty"
        ]
    );
}

#[test]
fn pruning_removes_unknown_fields() {
    let s = schema();
    let mut o = object(json!({
        "cronSpec": "* * * * *",
        "unknown": 1,
        "ports": [{"name": "a", "extra": true}],
        "labels": {"a": "b"},
        "template": {
            "bogus": "x",
            "settings": {"anything": {"goes": 1}, "level": 2, "nested": {"a": "x", "b": "gone"}}
        }
    }));
    o["extraTop"] = json!("x");
    o["status"] = json!({"replicas": 1, "observed": 2});
    let pruned = s.prune(&mut o);
    assert_eq!(
        pruned,
        [
            "spec.unknown",
            "spec.ports[0].extra",
            "spec.template.bogus",
            "spec.template.settings.nested.b",
            "extraTop",
            "status.observed",
        ]
    );
    assert_eq!(
        o,
        json!({
            "apiVersion": "stable.example.com/v1",
            "kind": "CronTab",
            "metadata": {"name": "my-cron", "namespace": "default", "labels": {"app": "x"}},
            "spec": {
                "cronSpec": "* * * * *",
                "ports": [{"name": "a"}],
                "labels": {"a": "b"},
                "template": {"settings": {"anything": {"goes": 1}, "level": 2, "nested": {"a": "x"}}}
            },
            "status": {"replicas": 1}
        })
    );

    // A version whose root preserves unknown fields keeps everything.
    let beta = version_info(&crontab_crd(), "v1beta1").unwrap().schema;
    let mut o = object(json!({"whatever": {"deep": [1, 2]}}));
    let before = o.clone();
    assert!(beta.prune(&mut o).is_empty());
    assert_eq!(o, before);
}

#[test]
fn defaults_apply_to_present_parents() {
    let s = schema();
    let mut o = object(
        json!({"cronSpec": "* * * * *", "ports": [{"name": "a"}, {"name": "b", "protocol": "UDP"}]}),
    );
    s.apply_defaults(&mut o);
    assert_eq!(o["spec"]["replicas"], 1);
    assert_eq!(o["spec"]["ports"][0]["protocol"], "TCP");
    assert_eq!(o["spec"]["ports"][1]["protocol"], "UDP");
    // `template` is absent: its defaults do not create it.
    assert!(o["spec"].get("template").is_none());

    let mut o = object(json!({"replicas": null, "template": {}}));
    s.apply_defaults(&mut o);
    assert_eq!(o["spec"]["replicas"], 1);
    assert_eq!(o["spec"]["template"], json!({"restartPolicy": "Always"}));

    // No spec at all: nothing is created.
    let mut o = json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "x"}});
    s.apply_defaults(&mut o);
    assert!(o.get("spec").is_none());

    // A defaulted object is defaulted further.
    let s = Schema::compile(&json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "default": {},
            "properties": {"size": {"type": "integer", "default": 3}}}}
    }));
    let mut o = json!({"metadata": {"name": "x"}});
    s.apply_defaults(&mut o);
    assert_eq!(o["spec"], json!({"size": 3}));
}

#[test]
fn list_types_for_server_side_apply() {
    let s = schema();
    assert_eq!(
        s.list_type(&["spec", "ports"]),
        Some(("map".to_string(), vec!["name".to_string()]))
    );
    assert_eq!(
        s.list_type(&["spec", "tags"]),
        Some(("set".to_string(), vec![]))
    );
    assert_eq!(s.list_type(&["status", "conditions"]), None);
    assert_eq!(s.list_type(&["spec", "image"]), None);
    assert_eq!(s.list_type(&["spec", "nope"]), None);
}

#[test]
fn printer_columns_and_values() {
    let crd = crontab_crd();
    let info = version_info(&crd, "v1").unwrap();
    let cols = table_columns(&info);
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Name", "Spec", "Replicas", "Ready", "Tags", "Age"]);
    assert_eq!(cols[4].priority, 1);

    let mut o = object(json!({"cronSpec": "* * * * *", "replicas": 2, "tags": ["a", "b"]}));
    o["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
    o["status"] = json!({"conditions": [
        {"type": "Synced", "status": "False"},
        {"type": "Ready", "status": "True"}
    ]});
    let cells: Vec<Value> = cols.iter().map(|c| column_value(&o, c)).collect();
    assert_eq!(
        cells,
        [
            json!("my-cron"),
            json!("* * * * *"),
            json!(2),
            json!("True"),
            json!("a,b"),
            json!("2025-01-01T00:00:00Z"),
        ]
    );

    // Missing values are null cells; wrong types too.
    let o = object(json!({"cronSpec": "x"}));
    assert_eq!(column_value(&o, &cols[2]), Value::Null);
    assert_eq!(column_value(&o, &cols[3]), Value::Null);
    let label = PrinterColumn::from_value(
        &json!({"name": "App", "type": "string", "jsonPath": ".metadata.labels.app"}),
    );
    assert_eq!(column_value(&o, &label), json!("x"));
    let first = PrinterColumn::from_value(
        &json!({"name": "P", "type": "string", "jsonPath": ".spec.list[0].name"}),
    );
    let o = object(json!({"list": [{"name": "n0"}, {"name": "n1"}]}));
    assert_eq!(column_value(&o, &first), json!("n0"));
    let as_string = PrinterColumn::from_value(
        &json!({"name": "R", "type": "string", "jsonPath": ".spec.replicas"}),
    );
    assert_eq!(
        column_value(&object(json!({"replicas": 4})), &as_string),
        json!("4")
    );

    // Without declared columns a version shows Name and Age.
    let beta = version_info(&crd, "v1beta1").unwrap();
    let cols = table_columns(&beta);
    assert_eq!(
        cols,
        [PrinterColumn::name_column(), PrinterColumn::age_column()]
    );
    assert_eq!(cols[1].json_path, ".metadata.creationTimestamp");
    assert_eq!(cols[1].type_, "date");
}

#[test]
fn crd_defaults_fill_singular_list_kind_and_conversion() {
    let mut crd = crontab_crd();
    apply_crd_defaults(&mut crd);
    assert_eq!(crd["spec"]["names"]["listKind"], "CronTabList");
    assert_eq!(crd["spec"]["names"]["singular"], "crontab");
    assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
    assert!(validate_crd(&crd, None).is_empty());
    assert_eq!(storage_version(&crd), Some("v1"));
}
