//! Authentication and RBAC authorization as users meet them: the bootstrap cluster roles
//! (with aggregation), `kubectl auth can-i` / `whoami` for the admin, ServiceAccount tokens
//! from `kubectl create token` used with a kubeconfig of their own (forbidden until a
//! RoleBinding grants `view`, scoped to the namespace, `resourceNames`, no impersonation,
//! forbidden again once the binding is revoked), TokenReview and SubjectAccessReview through
//! kube-rs, tokens dying with their ServiceAccount or bound Pod, and the TokenRequest
//! minimum duration.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use k3rs_e2e::wait::{eventually, eventually_blocking};
use k3rs_e2e::{fails, ok, K3rs};
use serde_json::{json, Value};

const NS: &str = "team";
const SA: &str = "robot";
const SA_USER: &str = "system:serviceaccount:team:robot";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A kubeconfig that knows the server and its CA but carries no credentials: the token
/// comes from `--token`, never from the admin client certificate.
fn token_kubeconfig(server: &K3rs) -> PathBuf {
    let ca = server.data_dir().join("server/tls/server-ca.crt");
    let path = server.dir.path().join("token-kubeconfig.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: k3rs
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority: {ca}
users:
- name: token-user
  user: {{}}
contexts:
- name: k3rs
  context: {{cluster: k3rs, user: token-user, namespace: {NS}}}
current-context: k3rs
",
            port = server.port,
            ca = ca.display()
        ),
    )
    .unwrap();
    path
}

/// kubectl authenticated only by `token`.
fn as_token(server: &K3rs, token: &str, args: &[&str]) -> Output {
    let kubeconfig = token_kubeconfig(server);
    let mut full: Vec<&str> = vec![
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--token",
        token,
    ];
    full.extend_from_slice(args);
    server.kubectl(&full)
}

/// Decodes one base64url (unpadded) JWT segment.
fn base64url_decode(segment: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in segment.trim_end_matches('=').bytes() {
        let value = ALPHABET
            .iter()
            .position(|&c| c == byte)
            .unwrap_or_else(|| panic!("not base64url: {segment}")) as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

/// The claims of a JWT.
fn jwt_claims(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token}");
    serde_json::from_slice(&base64url_decode(parts[1])).unwrap()
}

/// A namespace with a ServiceAccount, and a fresh token for it.
fn setup_service_account(server: &K3rs) -> String {
    ok(server.kubectl(&["create", "namespace", NS]));
    assert_eq!(
        ok(server.kubectl(&["-n", NS, "create", "serviceaccount", SA])),
        "serviceaccount/robot created\n"
    );
    create_token(server, &[])
}

fn create_token(server: &K3rs, extra: &[&str]) -> String {
    let mut args = vec!["-n", NS, "create", "token", SA];
    args.extend_from_slice(extra);
    ok(server.kubectl(&args)).trim().to_owned()
}

fn forbidden_list(resource: &str, namespace: &str) -> String {
    format!(
        r#"Error from server (Forbidden): {resource} is forbidden: User "{SA_USER}" cannot list resource "{resource}" in API group "" in the namespace "{namespace}""#
    )
}

async fn post(client: &kube::Client, path: &str, body: Value) -> Value {
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    client.request::<Value>(request).await.unwrap()
}

async fn token_review(client: &kube::Client, token: &str) -> Value {
    post(
        client,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}),
    )
    .await
}

#[test]
fn bootstrap_cluster_roles_and_the_admin_identity() {
    let server = K3rs::start();
    let roles = ok(server.kubectl(&[
        "get",
        "clusterrole",
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:discovery",
        "-o",
        "name",
    ]));
    assert_eq!(
        roles,
        "clusterrole.rbac.authorization.k8s.io/cluster-admin\n\
         clusterrole.rbac.authorization.k8s.io/admin\n\
         clusterrole.rbac.authorization.k8s.io/edit\n\
         clusterrole.rbac.authorization.k8s.io/view\n\
         clusterrole.rbac.authorization.k8s.io/system:discovery\n"
    );
    let binding = ok(server.kubectl(&["get", "clusterrolebinding", "cluster-admin", "-o", "json"]));
    let binding: Value = serde_json::from_str(&binding).unwrap();
    assert_eq!(binding["roleRef"]["name"], "cluster-admin");
    assert_eq!(
        binding["subjects"],
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}])
    );

    // `view` is aggregated: its rules come from the aggregate-to-view roles.
    let view: Value = serde_json::from_str(&ok(server.kubectl(&[
        "get",
        "clusterrole",
        "view",
        "-o",
        "json",
    ])))
    .unwrap();
    assert_eq!(
        view["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]
            ["rbac.authorization.k8s.io/aggregate-to-view"],
        "true"
    );
    let rules = view["rules"].as_array().expect("aggregated rules");
    let grants = |group: &str, resource: &str, verb: &str| {
        rules.iter().any(|r| {
            r["apiGroups"].as_array().unwrap().contains(&json!(group))
                && r["resources"]
                    .as_array()
                    .unwrap()
                    .contains(&json!(resource))
                && r["verbs"].as_array().unwrap().contains(&json!(verb))
        })
    };
    assert!(grants("", "pods", "list"), "{rules:?}");
    assert!(grants("apps", "deployments", "watch"), "{rules:?}");
    assert!(!grants("", "secrets", "get"), "view must not read secrets");

    // The admin may do anything.
    for args in [
        vec!["auth", "can-i", "create", "pods"],
        vec!["auth", "can-i", "*", "*"],
        vec!["auth", "can-i", "delete", "nodes"],
        vec!["auth", "can-i", "get", "secrets", "-n", "kube-system"],
    ] {
        assert_eq!(ok(server.kubectl(&args)), "yes\n", "{args:?}");
    }

    let whoami = ok(server.kubectl(&["auth", "whoami"]));
    let lines: Vec<Vec<&str>> = whoami
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["ATTRIBUTE", "VALUE"], "{whoami}");
    assert_eq!(lines[1], ["Username", "system:admin"], "{whoami}");
    assert_eq!(
        lines[2],
        ["Groups", "[system:masters", "system:authenticated]"],
        "{whoami}"
    );
    let review: Value =
        serde_json::from_str(&ok(server.kubectl(&["auth", "whoami", "-o", "json"]))).unwrap();
    assert_eq!(review["kind"], "SelfSubjectReview");
    assert_eq!(review["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(review["status"]["userInfo"]["username"], "system:admin");
    assert!(review["status"]["userInfo"]["groups"]
        .as_array()
        .unwrap()
        .contains(&json!("system:masters")));
}

#[test]
fn service_account_token_is_authorized_by_role_bindings() {
    let server = K3rs::start();
    let token = setup_service_account(&server);
    let claims = jwt_claims(&token);
    assert_eq!(claims["sub"], SA_USER, "{claims}");
    assert_eq!(claims["kubernetes.io"]["namespace"], NS, "{claims}");
    assert_eq!(
        claims["kubernetes.io"]["serviceaccount"]["name"], SA,
        "{claims}"
    );

    // Authenticated, but allowed nothing yet.
    let err = fails(as_token(&server, &token, &["get", "pods"]));
    assert!(err.contains(&forbidden_list("pods", NS)), "{err}");
    let whoami = ok(as_token(&server, &token, &["auth", "whoami"]));
    assert!(
        whoami
            .lines()
            .any(|l| l.starts_with("Username") && l.trim_end().ends_with(SA_USER)),
        "{whoami}"
    );
    assert!(
        whoami
            .contains("[system:serviceaccounts system:serviceaccounts:team system:authenticated]"),
        "{whoami}"
    );
    let as_sa = format!("--as={SA_USER}");
    let no = server.kubectl(&["auth", "can-i", "list", "pods", &as_sa, "-n", NS]);
    assert_eq!(stdout(&no), "no\n");
    assert_eq!(no.status.code(), Some(1), "can-i exits 1 on no");

    // Grant `view` in the namespace.
    let out = ok(server.kubectl(&[
        "-n",
        NS,
        "create",
        "rolebinding",
        "robot-view",
        "--clusterrole=view",
        "--serviceaccount=team:robot",
    ]));
    assert_eq!(
        out,
        "rolebinding.rbac.authorization.k8s.io/robot-view created\n"
    );
    ok(server.kubectl(&[
        "-n",
        NS,
        "create",
        "configmap",
        "settings",
        "--from-literal=a=1",
    ]));
    eventually_blocking(Duration::from_secs(5), "the binding to take effect", || {
        as_token(&server, &token, &["get", "pods"]).status.success()
    });
    let pods = as_token(&server, &token, &["get", "pods"]);
    assert!(
        String::from_utf8_lossy(&pods.stderr).contains("No resources found in team namespace."),
        "{pods:?}"
    );
    let cm = ok(as_token(
        &server,
        &token,
        &["get", "configmap", "settings", "-o", "name"],
    ));
    assert_eq!(cm, "configmap/settings\n");

    // Still nothing elsewhere, and no secrets (view does not grant them).
    let err = fails(as_token(&server, &token, &["get", "pods", "-n", "default"]));
    assert!(err.contains(&forbidden_list("pods", "default")), "{err}");
    let err = fails(as_token(&server, &token, &["get", "secrets"]));
    assert!(err.contains(&forbidden_list("secrets", NS)), "{err}");
    let err = fails(as_token(
        &server,
        &token,
        &["delete", "configmap", "settings"],
    ));
    assert!(
        err.contains(&format!(
            r#"configmaps "settings" is forbidden: User "{SA_USER}" cannot delete resource "configmaps" in API group "" in the namespace "team""#
        )),
        "{err}"
    );

    let can = |args: &[&str]| {
        let mut full = vec!["auth", "can-i"];
        full.extend_from_slice(args);
        stdout(&server.kubectl(&full))
    };
    assert_eq!(can(&["list", "pods", &as_sa, "-n", NS]), "yes\n");
    assert_eq!(can(&["list", "pods", &as_sa, "-n", "default"]), "no\n");
    assert_eq!(can(&["list", "secrets", &as_sa, "-n", NS]), "no\n");
    assert_eq!(can(&["create", "pods", &as_sa, "-n", NS]), "no\n");
    // The token's own view of itself.
    assert_eq!(
        stdout(&as_token(
            &server,
            &token,
            &["auth", "can-i", "watch", "deployments.apps"]
        )),
        "yes\n"
    );

    let list = ok(server.kubectl(&["auth", "can-i", "--list", &as_sa, "-n", NS]));
    let header: Vec<&str> = list.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "Resources",
            "Non-Resource",
            "URLs",
            "Resource",
            "Names",
            "Verbs"
        ],
        "{list}"
    );
    let row = |resource: &str| -> Vec<String> {
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(resource))
            .unwrap_or_else(|| panic!("no {resource} in\n{list}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row("pods"), ["pods", "[]", "[]", "[get", "list", "watch]"]);
    assert_eq!(
        row("deployments.apps"),
        ["deployments.apps", "[]", "[]", "[get", "list", "watch]"]
    );
    assert_eq!(
        row("selfsubjectaccessreviews.authorization.k8s.io"),
        [
            "selfsubjectaccessreviews.authorization.k8s.io",
            "[]",
            "[]",
            "[create]"
        ]
    );
    assert!(!list.lines().any(|l| l.starts_with("secrets ")), "{list}");

    // A Role limited by resourceNames.
    for name in ["s1", "s2"] {
        ok(server.kubectl(&[
            "-n",
            NS,
            "create",
            "secret",
            "generic",
            name,
            "--from-literal=k=v",
        ]));
    }
    ok(server.kubectl(&[
        "-n",
        NS,
        "create",
        "role",
        "one-secret",
        "--verb=get",
        "--resource=secrets",
        "--resource-name=s1",
    ]));
    ok(server.kubectl(&[
        "-n",
        NS,
        "create",
        "rolebinding",
        "one-secret",
        "--role=one-secret",
        "--serviceaccount=team:robot",
    ]));
    eventually_blocking(
        Duration::from_secs(5),
        "the secret role to take effect",
        || {
            as_token(&server, &token, &["get", "secret", "s1"])
                .status
                .success()
        },
    );
    assert_eq!(
        ok(as_token(
            &server,
            &token,
            &["get", "secret", "s1", "-o", "name"]
        )),
        "secret/s1\n"
    );
    let err = fails(as_token(&server, &token, &["get", "secret", "s2"]));
    assert!(
        err.contains(&format!(
            r#"secrets "s2" is forbidden: User "{SA_USER}" cannot get resource "secrets" in API group "" in the namespace "team""#
        )),
        "{err}"
    );
    let err = fails(as_token(&server, &token, &["get", "secrets"]));
    assert!(err.contains(&forbidden_list("secrets", NS)), "{err}");
    assert_eq!(
        stdout(&as_token(
            &server,
            &token,
            &["auth", "can-i", "get", "secrets/s1"]
        )),
        "yes\n"
    );
    assert_eq!(
        stdout(&as_token(
            &server,
            &token,
            &["auth", "can-i", "get", "secrets/s2"]
        )),
        "no\n"
    );

    // Impersonation needs the impersonate verb.
    for user in ["system:admin", "someone"] {
        let err = fails(as_token(&server, &token, &["get", "pods", "--as", user]));
        assert!(
            err.contains(&format!(
                r#"users "{user}" is forbidden: User "{SA_USER}" cannot impersonate resource "users" in API group "" at the cluster scope"#
            )),
            "{err}"
        );
    }
    let err = fails(as_token(
        &server,
        &token,
        &[
            "get",
            "pods",
            "--as",
            SA_USER,
            "--as-group",
            "system:masters",
        ],
    ));
    assert!(err.contains("cannot impersonate resource"), "{err}");

    // Revoking the binding takes the access away again.
    ok(server.kubectl(&["-n", NS, "delete", "rolebinding", "robot-view"]));
    eventually_blocking(
        Duration::from_secs(5),
        "the revocation to take effect",
        || !as_token(&server, &token, &["get", "pods"]).status.success(),
    );
    let err = fails(as_token(&server, &token, &["get", "pods"]));
    assert!(err.contains(&forbidden_list("pods", NS)), "{err}");
    assert_eq!(
        stdout(&server.kubectl(&["auth", "can-i", "list", "pods", &as_sa, "-n", NS])),
        "no\n"
    );
}

#[tokio::test]
async fn token_and_subject_access_reviews() {
    let server = K3rs::start();
    let token = setup_service_account(&server);
    let client = server.client().await;

    let review = token_review(&client, &token).await;
    assert_eq!(review["kind"], "TokenReview");
    assert_eq!(review["status"]["authenticated"], true, "{review}");
    assert_eq!(review["status"]["user"]["username"], SA_USER, "{review}");
    let groups = review["status"]["user"]["groups"].as_array().unwrap();
    for group in [
        "system:serviceaccounts",
        "system:serviceaccounts:team",
        "system:authenticated",
    ] {
        assert!(groups.contains(&json!(group)), "{review}");
    }

    let garbage = token_review(&client, "garbage").await;
    assert_eq!(garbage["status"]["authenticated"], false, "{garbage}");
    assert!(
        garbage["status"]
            .get("user")
            .is_none_or(|u| u["username"].is_null() || u["username"] == ""),
        "{garbage}"
    );
    // A well-formed token signed by someone else is no better.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    let forged = token_review(&client, &parts.join(".")).await;
    assert_eq!(forged["status"]["authenticated"], false, "{forged}");

    // SubjectAccessReview on behalf of the ServiceAccount.
    ok(server.kubectl(&[
        "-n",
        NS,
        "create",
        "rolebinding",
        "robot-view",
        "--clusterrole=view",
        "--serviceaccount=team:robot",
    ]));
    let sar = |verb: &str, resource: &str, namespace: &str| {
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": SA_USER,
                "groups": ["system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"],
                "resourceAttributes": {"namespace": namespace, "verb": verb, "resource": resource}
            }
        })
    };
    let path = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    eventually(
        Duration::from_secs(5),
        "the service account to list pods",
        || async {
            let allowed = post(&client, path, sar("list", "pods", NS)).await;
            (allowed["status"]["allowed"] == true).then_some(())
        },
    )
    .await;
    for (verb, resource, namespace) in [
        ("get", "secrets", NS),
        ("list", "pods", "default"),
        ("delete", "pods", NS),
    ] {
        let denied = post(&client, path, sar(verb, resource, namespace)).await;
        assert_eq!(denied["kind"], "SubjectAccessReview");
        assert_eq!(
            denied["status"]["allowed"], false,
            "{verb} {resource} in {namespace}: {denied}"
        );
    }
    // The admin group is allowed everything.
    let masters = post(
        &client,
        path,
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": "someone", "groups": ["system:masters"],
                     "resourceAttributes": {"verb": "delete", "resource": "nodes"}}
        }),
    )
    .await;
    assert_eq!(masters["status"]["allowed"], true, "{masters}");

    // Deleting the ServiceAccount invalidates its tokens.
    ok(as_token(&server, &token, &["get", "pods"]));
    ok(server.kubectl(&["-n", NS, "delete", "serviceaccount", SA]));
    eventually(
        Duration::from_secs(5),
        "the token to stop authenticating",
        || async {
            let review = token_review(&client, &token).await;
            (review["status"]["authenticated"] == false).then_some(())
        },
    )
    .await;
    let err = fails(as_token(&server, &token, &["get", "pods"]));
    assert!(
        err.contains("error: You must be logged in to the server (Unauthorized)"),
        "{err}"
    );
    // A new ServiceAccount of the same name does not revive old tokens.
    ok(server.kubectl(&["-n", NS, "create", "serviceaccount", SA]));
    let review = token_review(&client, &token).await;
    assert_eq!(review["status"]["authenticated"], false, "{review}");
}

#[test]
fn pod_bound_token_and_token_duration() {
    let server = K3rs::start();
    setup_service_account(&server);

    // Below the TokenRequest minimum.
    let err = fails(server.kubectl(&["-n", NS, "create", "token", SA, "--duration=5m"]));
    assert!(
        err.contains("may not specify a duration less than 10 minutes"),
        "{err}"
    );
    let ten = create_token(&server, &["--duration=10m"]);
    let claims = jwt_claims(&ten);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600,
        "{claims}"
    );

    // A Pod that never gets scheduled (no node carries the label).
    ok(server.kubectl_stdin(
        &["-n", NS, "apply", "-f", "-"],
        "apiVersion: v1
kind: Pod
metadata: {name: holder}
spec:
  serviceAccountName: robot
  nodeSelector: {e2e.k3rs.io/nowhere: \"true\"}
  containers: [{name: main, image: registry.example/none:1}]
",
    ));
    let pod_uid = ok(server.kubectl(&[
        "-n",
        NS,
        "get",
        "pod",
        "holder",
        "-o",
        "jsonpath={.metadata.uid}",
    ]));
    let bound = create_token(
        &server,
        &[
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "holder",
        ],
    );
    let claims = jwt_claims(&bound);
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "holder", "{claims}");
    assert_eq!(
        claims["kubernetes.io"]["pod"]["uid"],
        pod_uid.as_str(),
        "{claims}"
    );
    let whoami = ok(as_token(&server, &bound, &["auth", "whoami"]));
    assert!(whoami.contains(SA_USER), "{whoami}");

    // Binding to a Pod that does not exist is refused.
    let err = fails(server.kubectl(&[
        "-n",
        NS,
        "create",
        "token",
        SA,
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "ghost",
    ]));
    assert!(err.contains(r#"pods "ghost" not found"#), "{err}");

    ok(server.kubectl(&["-n", NS, "delete", "pod", "holder", "--wait=false"]));
    eventually_blocking(
        Duration::from_secs(5),
        "the pod-bound token to stop working",
        || {
            !as_token(&server, &bound, &["auth", "whoami"])
                .status
                .success()
        },
    );
    let err = fails(as_token(&server, &bound, &["auth", "whoami"]));
    assert!(err.contains("Unauthorized"), "{err}");
    // The unbound token of the same ServiceAccount still works.
    ok(as_token(&server, &ten, &["auth", "whoami"]));
}

#[tokio::test]
async fn service_account_user_info_carries_uid_and_credential_id() {
    let server = K3rs::start();
    let token = setup_service_account(&server);
    let client = server.client().await;
    let sa_uid = ok(server.kubectl(&["-n", NS, "get", "sa", SA, "-o", "jsonpath={.metadata.uid}"]));
    let jti = jwt_claims(&token)["jti"]
        .as_str()
        .expect("jti claim")
        .to_owned();

    // Upstream's ServiceAccount authenticator sets the user's UID to the ServiceAccount's
    // and records the token's JTI as `authentication.kubernetes.io/credential-id`.
    let review = token_review(&client, &token).await;
    let user = &review["status"]["user"];
    assert_eq!(
        user["uid"],
        sa_uid.as_str(),
        "TokenReview user has no uid: {review}"
    );
    assert_eq!(
        user["extra"]["authentication.kubernetes.io/credential-id"],
        json!([format!("JTI={jti}")]),
        "{review}"
    );
    let whoami: Value = serde_json::from_str(&ok(as_token(
        &server,
        &token,
        &["auth", "whoami", "-o", "json"],
    )))
    .unwrap();
    assert_eq!(
        whoami["status"]["userInfo"]["uid"],
        sa_uid.as_str(),
        "{whoami}"
    );
}
