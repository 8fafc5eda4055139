//! Authorizer tests across modules: bindings and scoping, aggregation, and the default policy.

use serde_json::{json, Value};

use crate::{aggregate, bootstrap_policy, Attributes, Decision, Policy, Rule};

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules})
}

fn role(namespace: &str, name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name, "namespace": namespace}, "rules": rules})
}

fn cluster_binding(name: &str, role: &str, subjects: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

fn binding(namespace: &str, name: &str, kind: &str, role: &str, subjects: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": subjects,
    })
}

fn groups(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Whether `user` (with `groups`) may `verb` `resource` (`pods`, `pods/log`) of `group` in
/// `namespace`, naming `name`.
#[allow(clippy::too_many_arguments)]
fn can(
    policy: &Policy,
    user: &str,
    user_groups: &[String],
    verb: &str,
    group: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> bool {
    policy
        .authorize(&Attributes::resource(
            user,
            user_groups,
            verb,
            group,
            resource,
            namespace,
            name,
        ))
        .is_allowed()
}

fn can_url(policy: &Policy, user: &str, user_groups: &[String], verb: &str, path: &str) -> bool {
    policy
        .authorize(&Attributes::non_resource(user, user_groups, verb, path))
        .is_allowed()
}

fn pod_reader() -> Value {
    cluster_role(
        "pod-reader",
        json!([{"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods", "pods/log"]}]),
    )
}

#[test]
fn policy_is_shareable_across_request_tasks() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policy>();
}

#[test]
fn subjects_of_all_kinds() {
    let policy = Policy::new(
        vec![],
        vec![pod_reader()],
        vec![],
        vec![
            cluster_binding(
                "users",
                "pod-reader",
                json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}]),
            ),
            cluster_binding(
                "groups",
                "pod-reader",
                json!([{"kind": "Group", "name": "devs"}]),
            ),
            cluster_binding(
                "sa",
                "pod-reader",
                json!([{"kind": "ServiceAccount", "name": "builder", "namespace": "ci"}]),
            ),
            cluster_binding(
                "all-sa-of-ns",
                "pod-reader",
                json!([{"kind": "Group", "name": "system:serviceaccounts:tools"}]),
            ),
        ],
    );
    let none: Vec<String> = vec![];
    assert!(can(
        &policy, "alice", &none, "get", "", "pods", "default", "p"
    ));
    assert!(!can(
        &policy, "bob", &none, "get", "", "pods", "default", "p"
    ));
    assert!(can(
        &policy,
        "bob",
        &groups(&["devs"]),
        "list",
        "",
        "pods",
        "",
        ""
    ));
    assert!(can(
        &policy,
        "system:serviceaccount:ci:builder",
        &none,
        "get",
        "",
        "pods/log",
        "x",
        "p"
    ));
    assert!(!can(
        &policy,
        "system:serviceaccount:ci:other",
        &none,
        "get",
        "",
        "pods",
        "x",
        "p"
    ));
    assert!(!can(
        &policy, "builder", &none, "get", "", "pods", "ci", "p"
    ));
    let tools = groups(&[
        "system:serviceaccounts",
        "system:serviceaccounts:tools",
        "system:authenticated",
    ]);
    assert!(can(
        &policy,
        "system:serviceaccount:tools:x",
        &tools,
        "watch",
        "",
        "pods",
        "",
        ""
    ));
    // Rules still apply: wrong verb, wrong group.
    assert!(!can(
        &policy, "alice", &none, "delete", "", "pods", "default", "p"
    ));
    assert!(!can(
        &policy, "alice", &none, "get", "apps", "pods", "default", "p"
    ));

    let decision = policy.authorize(&Attributes::resource(
        "system:serviceaccount:ci:builder",
        &none,
        "get",
        "",
        "pods",
        "default",
        "p",
    ));
    assert_eq!(
        decision,
        Decision::Allow {
            reason: r#"RBAC: allowed by ClusterRoleBinding "sa" of ClusterRole "pod-reader" to ServiceAccount "builder/ci""#.into()
        }
    );
    let decision = policy.authorize(&Attributes::resource(
        "bob",
        &groups(&["devs"]),
        "get",
        "",
        "pods",
        "",
        "p",
    ));
    assert_eq!(
        decision.reason(),
        r#"RBAC: allowed by ClusterRoleBinding "groups" of ClusterRole "pod-reader" to Group "devs""#
    );
    // Denials carry no reason unless something failed to resolve.
    assert_eq!(
        policy.authorize(&Attributes::resource(
            "bob", &none, "get", "", "pods", "", "p"
        )),
        Decision::Deny {
            reason: String::new()
        }
    );
}

#[test]
fn role_bindings_grant_only_in_their_namespace() {
    let policy = Policy::new(
        vec![
            role(
                "dev",
                "cm-editor",
                json!([{"verbs": ["*"], "apiGroups": [""], "resources": ["configmaps"]}]),
            ),
            role(
                "prod",
                "cm-editor",
                json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}]),
            ),
        ],
        vec![pod_reader()],
        vec![
            // RoleBinding to a ClusterRole: the ClusterRole's rules, in dev only.
            binding(
                "dev",
                "read-pods",
                "ClusterRole",
                "pod-reader",
                json!([{"kind": "User", "name": "alice"}]),
            ),
            binding(
                "dev",
                "edit-cms",
                "Role",
                "cm-editor",
                json!([{"kind": "User", "name": "alice"}]),
            ),
            // ServiceAccount subject without namespace: the binding's namespace.
            binding(
                "dev",
                "sa-cms",
                "Role",
                "cm-editor",
                json!([{"kind": "ServiceAccount", "name": "default"}]),
            ),
            // A Role from another namespace cannot be referenced.
            binding(
                "staging",
                "edit-cms",
                "Role",
                "cm-editor",
                json!([{"kind": "User", "name": "alice"}]),
            ),
        ],
        vec![],
    );
    let none: Vec<String> = vec![];
    assert!(can(&policy, "alice", &none, "get", "", "pods", "dev", "p"));
    assert!(can(&policy, "alice", &none, "list", "", "pods", "dev", ""));
    assert!(!can(
        &policy, "alice", &none, "get", "", "pods", "prod", "p"
    ));
    // Cluster-wide requests (all namespaces, cluster-scoped) are not granted by RoleBindings.
    assert!(!can(&policy, "alice", &none, "list", "", "pods", "", ""));
    assert!(can(
        &policy,
        "alice",
        &none,
        "delete",
        "",
        "configmaps",
        "dev",
        "c"
    ));
    assert!(!can(
        &policy,
        "alice",
        &none,
        "get",
        "",
        "configmaps",
        "prod",
        "c"
    ));
    assert!(!can(
        &policy,
        "alice",
        &none,
        "get",
        "",
        "configmaps",
        "staging",
        "c"
    ));
    assert!(can(
        &policy,
        "system:serviceaccount:dev:default",
        &none,
        "create",
        "",
        "configmaps",
        "dev",
        ""
    ));
    assert!(!can(
        &policy,
        "system:serviceaccount:prod:default",
        &none,
        "create",
        "",
        "configmaps",
        "prod",
        ""
    ));

    let decision = policy.authorize(&Attributes::resource(
        "alice", &none, "get", "", "pods", "dev", "p",
    ));
    assert_eq!(
        decision.reason(),
        r#"RBAC: allowed by RoleBinding "read-pods/dev" of ClusterRole "pod-reader" to User "alice""#
    );
    let decision = policy.authorize(&Attributes::resource(
        "system:serviceaccount:dev:default",
        &none,
        "get",
        "",
        "configmaps",
        "dev",
        "c",
    ));
    assert_eq!(
        decision.reason(),
        r#"RBAC: allowed by RoleBinding "sa-cms/dev" of Role "cm-editor" to ServiceAccount "default/dev""#
    );
    // The staging binding's missing Role shows up in the denial.
    let decision = policy.authorize(&Attributes::resource(
        "alice",
        &none,
        "get",
        "",
        "configmaps",
        "staging",
        "c",
    ));
    assert_eq!(
        decision,
        Decision::Deny {
            reason: r#"RBAC: role.rbac.authorization.k8s.io "cm-editor" not found"#.into()
        }
    );
}

#[test]
fn missing_roles_and_bad_role_refs() {
    let mut bad_kind = cluster_binding("weird", "x", json!([{"kind": "User", "name": "alice"}]));
    bad_kind["roleRef"]["kind"] = json!("Thing");
    let policy = Policy::new(
        vec![],
        vec![],
        vec![],
        vec![
            cluster_binding("gone", "nope", json!([{"kind": "User", "name": "alice"}])),
            cluster_binding(
                "gone-again",
                "nope",
                json!([{"kind": "User", "name": "alice"}]),
            ),
            bad_kind,
            cluster_binding(
                "not-me",
                "also-nope",
                json!([{"kind": "User", "name": "bob"}]),
            ),
        ],
    );
    let decision = policy.authorize(&Attributes::resource(
        "alice",
        &[],
        "get",
        "",
        "pods",
        "",
        "",
    ));
    assert_eq!(
        decision.reason(),
        r#"RBAC: [clusterrole.rbac.authorization.k8s.io "nope" not found, unsupported role reference kind: "Thing"]"#
    );
    assert!(!decision.is_allowed());
    let review = policy.rules_review("alice", &[], "default");
    assert!(review.resource_rules.is_empty());
    assert!(review.evaluation_error.contains("\"nope\" not found"));
}

#[test]
fn non_resource_urls_need_cluster_role_bindings() {
    let policy = Policy::new(
        vec![],
        vec![
            cluster_role(
                "health",
                json!([{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/healthz/*"]}]),
            ),
            cluster_role(
                "metrics",
                json!([{"verbs": ["get"], "nonResourceURLs": ["/metrics"]}]),
            ),
        ],
        vec![binding(
            "default",
            "m",
            "ClusterRole",
            "metrics",
            json!([{"kind": "User", "name": "prom"}]),
        )],
        vec![cluster_binding(
            "health",
            "health",
            json!([{"kind": "User", "name": "prom"}]),
        )],
    );
    assert!(can_url(&policy, "prom", &[], "get", "/healthz"));
    assert!(can_url(&policy, "prom", &[], "get", "/healthz/etcd"));
    assert!(!can_url(&policy, "prom", &[], "post", "/healthz"));
    assert!(!can_url(&policy, "prom", &[], "get", "/livez"));
    // A RoleBinding never grants non-resource URLs, even if the caller passes a namespace.
    assert!(!can_url(&policy, "prom", &[], "get", "/metrics"));
    let mut a = Attributes::non_resource("prom", &[], "get", "/metrics");
    a.namespace = "default";
    assert!(!policy.authorize(&a).is_allowed());
}

#[test]
fn rules_for_and_rules_review() {
    let policy = Policy::new(
        vec![role(
            "dev",
            "cm",
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]}]),
        )],
        vec![
            pod_reader(),
            cluster_role(
                "health",
                json!([{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]),
            ),
        ],
        vec![binding(
            "dev",
            "cm",
            "Role",
            "cm",
            json!([{"kind": "Group", "name": "devs"}]),
        )],
        vec![
            cluster_binding(
                "health",
                "health",
                json!([{"kind": "Group", "name": "system:authenticated"}]),
            ),
            cluster_binding(
                "pods",
                "pod-reader",
                json!([{"kind": "Group", "name": "devs"}]),
            ),
            // Same role twice: its rules are listed once.
            cluster_binding(
                "pods-again",
                "pod-reader",
                json!([{"kind": "User", "name": "alice"}]),
            ),
        ],
    );
    let user_groups = groups(&["devs", "system:authenticated"]);
    let rules = policy.rules_for("alice", &user_groups, "dev");
    assert_eq!(
        rules,
        vec![
            json!({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}),
            json!({"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods", "pods/log"]}),
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]}),
        ]
    );
    // Without a namespace, only ClusterRoleBindings count.
    assert_eq!(policy.rules_for("alice", &user_groups, "").len(), 2);

    let review = policy.rules_review("alice", &user_groups, "dev");
    assert_eq!(
        review.to_status(),
        json!({
            "resourceRules": [
                {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods", "pods/log"]},
                {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]},
            ],
            "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}],
            "incomplete": false,
        })
    );
}

#[test]
fn aggregation_chains_view_into_edit_into_admin() {
    let labelled = |name: &str, labels: Value, rules: Value| {
        let mut r = cluster_role(name, rules);
        r["metadata"]["labels"] = labels;
        r
    };
    let aggregated = |name: &str, labels: Value, selector_label: &str| {
        let mut r = labelled(name, labels, json!(null));
        r["aggregationRule"] =
            json!({"clusterRoleSelectors": [{"matchLabels": {selector_label: "true"}}]});
        r
    };
    let read_pods = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]});
    let write_pods = json!({"verbs": ["create"], "apiGroups": [""], "resources": ["pods"]});
    let bind = json!({"verbs": ["create"], "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"]});
    let roles = vec![
        aggregated("admin", json!({}), "to-admin"),
        aggregated("edit", json!({"to-admin": "true"}), "to-edit"),
        aggregated("view", json!({"to-edit": "true"}), "to-view"),
        labelled(
            "z-view-source",
            json!({"to-view": "true"}),
            json!([read_pods]),
        ),
        // A duplicate rule is listed once.
        labelled(
            "a-edit-source",
            json!({"to-edit": "true"}),
            json!([write_pods, read_pods]),
        ),
        labelled("b-admin-source", json!({"to-admin": "true"}), json!([bind])),
        labelled(
            "unrelated",
            json!({"other": "true"}),
            json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]),
        ),
    ];
    let changed = aggregate(&roles);
    let rules_of = |name: &str| -> Value {
        changed
            .iter()
            .find(|r| r["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} not changed"))["rules"]
            .clone()
    };
    assert_eq!(changed.len(), 3);
    assert_eq!(rules_of("view"), json!([read_pods]));
    // Sources sorted by name: a-edit-source before view.
    assert_eq!(rules_of("edit"), json!([write_pods, read_pods]));
    assert_eq!(rules_of("admin"), json!([bind, write_pods, read_pods]));
    // Output keeps the input order and the rest of each object.
    let names: Vec<&str> = changed
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "edit", "view"]);
    assert_eq!(
        changed[1]["metadata"]["labels"],
        json!({"to-admin": "true"})
    );

    // Applying the result again changes nothing.
    let mut applied = roles.clone();
    for role in &changed {
        let slot = applied
            .iter_mut()
            .find(|r| r["metadata"]["name"] == role["metadata"]["name"])
            .unwrap();
        *slot = role.clone();
    }
    assert!(aggregate(&applied).is_empty());

    // Semantic comparison: an already aggregated role with `resourceNames: []` is unchanged.
    let mut view = aggregated("v", json!({}), "to-view");
    view["rules"] =
        json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": []}]);
    assert!(aggregate(&[view.clone(), roles[3].clone()]).is_empty());
    // Nothing selected: rules become empty.
    let lonely = aggregate(&[view]);
    assert_eq!(lonely[0]["rules"], json!([]));
}

#[test]
fn aggregation_tolerates_cycles_and_bad_selectors() {
    let mut a = cluster_role(
        "a",
        json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["a"]}]),
    );
    a["metadata"]["labels"] = json!({"x": "1"});
    a["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {"y": "1"}}]});
    let mut b = cluster_role(
        "b",
        json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["b"]}]),
    );
    b["metadata"]["labels"] = json!({"y": "1"});
    b["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {"x": "1"}}]});
    let mut bad = cluster_role("bad", json!([]));
    bad["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchExpressions": [{"key": "k", "operator": "Bogus"}]}]});
    let out = aggregate(&[a, b, bad.clone()]);
    // Terminates; `bad` is left alone and reported.
    assert!(out.iter().all(|r| r["metadata"]["name"] != "bad"));
    let errors = crate::aggregate::aggregation_errors(&[bad]);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].to_string().contains("clusterRoleSelectors[0]"),
        "{}",
        errors[0]
    );
}

/// The bootstrap policy with admin/edit/view aggregated, as a running cluster has it.
fn aggregated_bootstrap() -> (Vec<Value>, Vec<Value>) {
    let (mut roles, bindings) = bootstrap_policy();
    for changed in aggregate(&roles) {
        let slot = roles
            .iter_mut()
            .find(|r| r["metadata"]["name"] == changed["metadata"]["name"])
            .unwrap();
        *slot = changed;
    }
    (roles, bindings)
}

#[test]
fn bootstrap_objects_are_labelled_and_annotated() {
    let (roles, bindings) = bootstrap_policy();
    for object in roles.iter().chain(&bindings) {
        assert_eq!(
            object["metadata"]["labels"]["kubernetes.io/bootstrapping"], "rbac-defaults",
            "{object}"
        );
        assert_eq!(
            object["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
            "true",
            "{object}"
        );
    }
    let names: Vec<&str> = roles
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap())
        .collect();
    for expected in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:aggregate-to-admin",
        "system:aggregate-to-edit",
        "system:aggregate-to-view",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
        "system:node",
        "system:node-proxier",
        "system:kube-scheduler",
        "system:kube-controller-manager",
        "system:monitoring",
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "system:controller:deployment-controller",
        "system:controller:replicaset-controller",
        "system:controller:daemon-set-controller",
        "system:controller:statefulset-controller",
        "system:controller:job-controller",
        "system:controller:cronjob-controller",
        "system:controller:endpoint-controller",
        "system:controller:endpointslice-controller",
        "system:controller:namespace-controller",
        "system:controller:service-account-controller",
        "system:controller:node-controller",
        "system:controller:generic-garbage-collector",
        "system:controller:ttl-after-finished-controller",
    ] {
        assert!(names.contains(&expected), "missing {expected}");
    }
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "duplicate role names");

    // Every binding references an existing role; every controller role has its binding.
    for b in &bindings {
        let role = b["roleRef"]["name"].as_str().unwrap();
        assert!(names.contains(&role), "{role}");
    }
    let cluster_admin = &roles[names.iter().position(|n| *n == "cluster-admin").unwrap()];
    assert_eq!(
        cluster_admin["rules"],
        json!([
            {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
            {"verbs": ["*"], "nonResourceURLs": ["*"]},
        ])
    );
    let view = &roles[names.iter().position(|n| *n == "view").unwrap()];
    assert_eq!(
        view["aggregationRule"],
        json!({"clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]})
    );
    assert_eq!(
        view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
        "true"
    );
    // Rule lists are sorted like upstream's builder.
    for r in &roles {
        for rule in r["rules"].as_array().unwrap() {
            let rule = Rule::from_json(rule);
            for list in [
                &rule.verbs,
                &rule.api_groups,
                &rule.resources,
                &rule.non_resource_urls,
            ] {
                assert!(
                    list.windows(2).all(|w| w[0] < w[1]),
                    "{list:?} in {}",
                    r["metadata"]["name"]
                );
            }
        }
    }
}

#[test]
fn bootstrap_default_bindings() {
    let (roles, bindings) = aggregated_bootstrap();
    let policy = Policy::new(vec![], roles, vec![], bindings);
    let authenticated = groups(&["system:authenticated"]);
    for path in [
        "/version",
        "/version/",
        "/api",
        "/api/v1",
        "/apis",
        "/apis/apps/v1",
        "/openapi/v3",
        "/healthz",
        "/livez",
        "/readyz",
    ] {
        assert!(
            can_url(&policy, "alice", &authenticated, "get", path),
            "{path}"
        );
    }
    assert!(!can_url(
        &policy,
        "alice",
        &authenticated,
        "get",
        "/metrics"
    ));
    assert!(!can_url(&policy, "alice", &authenticated, "get", "/logs"));
    assert!(!can_url(&policy, "alice", &authenticated, "post", "/api"));
    assert!(can(
        &policy,
        "alice",
        &authenticated,
        "create",
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "",
        ""
    ));
    assert!(can(
        &policy,
        "alice",
        &authenticated,
        "create",
        "authorization.k8s.io",
        "selfsubjectrulesreviews",
        "",
        ""
    ));
    assert!(can(
        &policy,
        "alice",
        &authenticated,
        "create",
        "authentication.k8s.io",
        "selfsubjectreviews",
        "",
        ""
    ));
    assert!(!can(
        &policy,
        "alice",
        &authenticated,
        "get",
        "",
        "pods",
        "default",
        "p"
    ));
    assert!(!can(
        &policy,
        "alice",
        &authenticated,
        "list",
        "",
        "namespaces",
        "",
        ""
    ));

    // Unauthenticated callers get only the public info.
    let anonymous = groups(&["system:unauthenticated"]);
    assert!(can_url(
        &policy,
        "system:anonymous",
        &anonymous,
        "get",
        "/version"
    ));
    assert!(can_url(
        &policy,
        "system:anonymous",
        &anonymous,
        "get",
        "/healthz"
    ));
    assert!(!can_url(
        &policy,
        "system:anonymous",
        &anonymous,
        "get",
        "/api"
    ));
    assert!(!can(
        &policy,
        "system:anonymous",
        &anonymous,
        "create",
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "",
        ""
    ));
    let decision = policy.authorize(&Attributes::non_resource(
        "system:anonymous",
        &anonymous,
        "get",
        "/version",
    ));
    assert_eq!(
        decision.reason(),
        r#"RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole "system:public-info-viewer" to Group "system:unauthenticated""#
    );

    // cluster-admin stays bound to system:masters (the API server short-circuits it anyway).
    let masters = groups(&["system:masters", "system:authenticated"]);
    let decision = policy.authorize(&Attributes::resource(
        "root", &masters, "delete", "", "nodes", "", "n1",
    ));
    assert_eq!(
        decision.reason(),
        r#"RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters""#
    );
    assert!(can_url(&policy, "root", &masters, "get", "/metrics"));

    // System components.
    let none: Vec<String> = vec![];
    assert!(can(
        &policy,
        "system:kube-proxy",
        &none,
        "watch",
        "discovery.k8s.io",
        "endpointslices",
        "",
        ""
    ));
    assert!(!can(
        &policy,
        "system:kube-proxy",
        &none,
        "get",
        "",
        "secrets",
        "default",
        "s"
    ));
    assert!(can(
        &policy,
        "system:kube-scheduler",
        &none,
        "create",
        "",
        "pods/binding",
        "default",
        "p"
    ));
    assert!(can(
        &policy,
        "system:kube-scheduler",
        &none,
        "update",
        "coordination.k8s.io",
        "leases",
        "kube-system",
        "kube-scheduler"
    ));
    assert!(!can(
        &policy,
        "system:kube-scheduler",
        &none,
        "update",
        "coordination.k8s.io",
        "leases",
        "kube-system",
        "other"
    ));
    assert!(can(
        &policy,
        "system:kube-controller-manager",
        &none,
        "list",
        "apps",
        "deployments",
        "",
        ""
    ));
    let sa = |name: &str| format!("system:serviceaccount:kube-system:{name}");
    let sa_groups = groups(&[
        "system:serviceaccounts",
        "system:serviceaccounts:kube-system",
        "system:authenticated",
    ]);
    assert!(can(
        &policy,
        &sa("deployment-controller"),
        &sa_groups,
        "create",
        "apps",
        "replicasets",
        "default",
        ""
    ));
    assert!(!can(
        &policy,
        &sa("deployment-controller"),
        &sa_groups,
        "create",
        "",
        "pods",
        "default",
        ""
    ));
    assert!(can(
        &policy,
        &sa("replicaset-controller"),
        &sa_groups,
        "create",
        "",
        "pods",
        "default",
        ""
    ));
    assert!(can(
        &policy,
        &sa("namespace-controller"),
        &sa_groups,
        "deletecollection",
        "apps",
        "deployments",
        "ns",
        ""
    ));
    assert!(can(
        &policy,
        &sa("generic-garbage-collector"),
        &sa_groups,
        "patch",
        "example.com",
        "widgets",
        "ns",
        "w"
    ));
    assert!(can(
        &policy,
        &sa("endpointslice-controller"),
        &sa_groups,
        "update",
        "",
        "services/finalizers",
        "ns",
        "s"
    ));
    assert!(can(
        &policy,
        &sa("ttl-after-finished-controller"),
        &sa_groups,
        "delete",
        "batch",
        "jobs",
        "ns",
        "j"
    ));
    // Service accounts may read the issuer discovery documents.
    assert!(can_url(
        &policy,
        &sa("x"),
        &sa_groups,
        "get",
        "/openid/v1/jwks"
    ));
    // Kubelets (group system:nodes) get the system:node role.
    assert!(can(
        &policy,
        "system:node:n1",
        &groups(&["system:nodes"]),
        "get",
        "",
        "pods",
        "default",
        "p"
    ));
}

#[test]
fn bootstrap_admin_edit_view_after_aggregation() {
    let (roles, bindings) = aggregated_bootstrap();
    let rb = |name: &str, role: &str, user: &str| {
        binding(
            "team",
            name,
            "ClusterRole",
            role,
            json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}]),
        )
    };
    let policy = Policy::new(
        vec![],
        roles.clone(),
        vec![
            rb("v", "view", "viewer"),
            rb("e", "edit", "editor"),
            rb("a", "admin", "boss"),
        ],
        bindings,
    );
    let none: Vec<String> = vec![];
    let check = |user: &str, verb: &str, group: &str, resource: &str| {
        can(
            &policy,
            user,
            &none,
            verb,
            group,
            resource,
            "team",
            if matches!(verb, "create" | "list") {
                ""
            } else {
                "x"
            },
        )
    };

    // view: read most things, no secrets, no writes, no exec.
    for (group, resource) in [
        ("", "pods"),
        ("", "pods/log"),
        ("", "services"),
        ("", "configmaps"),
        ("apps", "deployments"),
        ("batch", "jobs"),
        ("", "namespaces"),
        ("discovery.k8s.io", "endpointslices"),
        ("networking.k8s.io", "ingresses"),
    ] {
        assert!(
            check("viewer", "get", group, resource),
            "view get {group}/{resource}"
        );
        assert!(
            check("viewer", "list", group, resource),
            "view list {group}/{resource}"
        );
    }
    assert!(!check("viewer", "get", "", "secrets"));
    assert!(!check("viewer", "list", "", "secrets"));
    assert!(!check("viewer", "create", "", "pods"));
    assert!(!check("viewer", "create", "", "pods/exec"));
    assert!(!check(
        "viewer",
        "get",
        "rbac.authorization.k8s.io",
        "roles"
    ));
    // ... and only in the bound namespace.
    assert!(!can(
        &policy, "viewer", &none, "get", "", "pods", "other", "x"
    ));

    // edit: view plus writes, secrets, exec; no RBAC, no quotas.
    assert!(check("editor", "create", "apps", "deployments"));
    assert!(check("editor", "patch", "apps", "deployments/scale"));
    assert!(check("editor", "get", "", "secrets"));
    assert!(check("editor", "create", "", "secrets"));
    assert!(check("editor", "create", "", "pods/exec"));
    assert!(check("editor", "get", "", "pods/exec"));
    assert!(check("editor", "get", "", "pods"));
    assert!(check("editor", "impersonate", "", "serviceaccounts"));
    assert!(check("editor", "create", "", "serviceaccounts/token"));
    assert!(check("editor", "delete", "coordination.k8s.io", "leases"));
    assert!(!check(
        "editor",
        "create",
        "rbac.authorization.k8s.io",
        "rolebindings"
    ));
    assert!(!check("editor", "create", "", "resourcequotas"));
    assert!(!check("editor", "update", "", "pods/status"));

    // admin: edit plus roles and bindings in the namespace.
    assert!(check(
        "boss",
        "create",
        "rbac.authorization.k8s.io",
        "rolebindings"
    ));
    assert!(check(
        "boss",
        "delete",
        "rbac.authorization.k8s.io",
        "roles"
    ));
    assert!(check(
        "boss",
        "create",
        "authorization.k8s.io",
        "localsubjectaccessreviews"
    ));
    assert!(check("boss", "create", "apps", "deployments"));
    assert!(check("boss", "get", "", "secrets"));
    assert!(!check(
        "boss",
        "create",
        "rbac.authorization.k8s.io",
        "clusterroles"
    ));
    assert!(!check("boss", "create", "", "resourcequotas"));

    // The aggregated rules in upstream order: edit = aggregate-to-edit + view, admin = edit +
    // aggregate-to-admin.
    let rules = |name: &str| {
        roles
            .iter()
            .find(|r| r["metadata"]["name"] == name)
            .unwrap()["rules"]
            .as_array()
            .unwrap()
            .clone()
    };
    let view = rules("view");
    let edit = rules("edit");
    let admin = rules("admin");
    assert_eq!(view, rules("system:aggregate-to-view"));
    assert_eq!(edit[..13], rules("system:aggregate-to-edit")[..]);
    assert_eq!(edit[13..], view[..]);
    assert_eq!(admin[..edit.len()], edit[..]);
    assert_eq!(admin[edit.len()..], rules("system:aggregate-to-admin")[..]);
    assert_eq!(
        edit[0],
        json!({"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"]})
    );
    // Aggregating the aggregated policy again changes nothing.
    assert!(aggregate(&roles).is_empty());
}
