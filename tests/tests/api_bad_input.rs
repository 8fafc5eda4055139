//! Bad requests sent as raw HTTP: each gets the right code and a `Status` body, and none
//! of them changes what is stored. Also authentication: no credentials is 401, the
//! server token works as a bearer token.

use http::{HeaderMap, Method, StatusCode};
use k3rs_e2e::K3rs;
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

struct Answer {
    code: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

async fn call(
    client: &Client,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    bearer: Option<&str>,
) -> Answer {
    let mut request = http::Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = client
        .send(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let code = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect_bytes().await.unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        code,
        headers,
        body,
        text,
    }
}

async fn post_json(client: &Client, path: &str, body: &[u8]) -> Answer {
    call(
        client,
        Method::POST,
        path,
        Some("application/json"),
        body.to_vec(),
        None,
    )
    .await
}

/// Assert a failure answer: HTTP code, a `Status` body with the same code and `reason`.
fn assert_status(answer: &Answer, code: u16, reason: &str) {
    assert_eq!(answer.code.as_u16(), code, "body: {}", answer.text);
    assert_eq!(answer.body["kind"], "Status", "body: {}", answer.text);
    assert_eq!(answer.body["apiVersion"], "v1", "body: {}", answer.text);
    assert_eq!(answer.body["status"], "Failure", "body: {}", answer.text);
    assert_eq!(answer.body["reason"], reason, "body: {}", answer.text);
    assert_eq!(answer.body["code"], code, "body: {}", answer.text);
    assert!(
        answer.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "body: {}",
        answer.text
    );
}

/// Everything a bad request could have touched, with the list revisions.
async fn snapshot(client: &Client) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        "/api/v1/configmaps",
        "/api/v1/secrets",
        "/api/v1/namespaces",
    ] {
        let answer = call(client, Method::GET, path, None, Vec::new(), None).await;
        assert_eq!(answer.code, StatusCode::OK, "{}", answer.text);
        out.push(answer.body);
    }
    out
}

fn config_map(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

async fn seed(client: &Client) {
    let answer = post_json(
        client,
        CONFIGMAPS,
        config_map("existing").to_string().as_bytes(),
    )
    .await;
    assert_eq!(answer.code, StatusCode::CREATED, "{}", answer.text);
}

#[tokio::test]
async fn bad_bodies_are_rejected_and_change_nothing() {
    let server = K3rs::start();
    let client = server.client().await;
    seed(&client).await;
    let before = snapshot(&client).await;

    let answer = post_json(&client, CONFIGMAPS, b"{\"metadata\": {\"name\": ").await;
    assert_status(&answer, 400, "BadRequest");

    let answer = call(
        &client,
        Method::POST,
        CONFIGMAPS,
        Some("application/yaml"),
        b"metadata:\n  name: [unclosed\n data: : :\n".to_vec(),
        None,
    )
    .await;
    assert_status(&answer, 400, "BadRequest");

    // A JSON array is not an object.
    let answer = post_json(&client, CONFIGMAPS, b"[1, 2]").await;
    assert_status(&answer, 400, "BadRequest");

    // A Secret posted to configmaps.
    let secret =
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {}});
    let answer = post_json(&client, CONFIGMAPS, secret.to_string().as_bytes()).await;
    assert_status(&answer, 400, "BadRequest");
    assert!(answer.text.contains("Secret"), "{}", answer.text);
    // An apiVersion of another group.
    let mut wrong_group = config_map("wg");
    wrong_group["apiVersion"] = json!("apps/v1");
    let answer = post_json(&client, CONFIGMAPS, wrong_group.to_string().as_bytes()).await;
    assert_status(&answer, 400, "BadRequest");
    // A namespace in the body different from the URL's.
    let mut other_ns = config_map("ons");
    other_ns["metadata"]["namespace"] = json!("kube-system");
    let answer = post_json(&client, CONFIGMAPS, other_ns.to_string().as_bytes()).await;
    assert_status(&answer, 400, "BadRequest");
    // An invalid name is 422 Invalid naming the field.
    let answer = post_json(
        &client,
        CONFIGMAPS,
        config_map("Not_Valid").to_string().as_bytes(),
    )
    .await;
    assert_status(&answer, 422, "Invalid");
    assert!(answer.text.contains("metadata.name"), "{}", answer.text);
    // No name at all.
    let answer = post_json(
        &client,
        CONFIGMAPS,
        json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {}})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_status(&answer, 422, "Invalid");

    // More than 3 MiB.
    let mut huge = config_map("huge");
    huge["data"]["k"] = json!("x".repeat(3 * 1024 * 1024 + 1024));
    let answer = post_json(&client, CONFIGMAPS, huge.to_string().as_bytes()).await;
    assert_status(&answer, 413, "RequestEntityTooLarge");

    // Unknown field, strictly validated: 400 naming the field.
    let mut unknown = config_map("unknown");
    unknown["dta"] = json!({"a": "b"});
    let answer = post_json(
        &client,
        &format!("{CONFIGMAPS}?fieldValidation=Strict"),
        unknown.to_string().as_bytes(),
    )
    .await;
    assert_status(&answer, 400, "BadRequest");
    assert!(
        answer.text.contains("unknown field \\\"dta\\\""),
        "{}",
        answer.text
    );
    // An invalid fieldValidation value.
    let answer = post_json(
        &client,
        &format!("{CONFIGMAPS}?fieldValidation=Loud"),
        config_map("loud").to_string().as_bytes(),
    )
    .await;
    assert_status(&answer, 400, "BadRequest");

    // Unsupported media types, for a create and for a patch.
    let answer = call(
        &client,
        Method::POST,
        CONFIGMAPS,
        Some("text/plain"),
        config_map("plain").to_string().into_bytes(),
        None,
    )
    .await;
    assert_status(&answer, 415, "UnsupportedMediaType");
    let answer = call(
        &client,
        Method::PATCH,
        &format!("{CONFIGMAPS}/existing"),
        Some("application/json"),
        br#"{"data": {"k": "patched"}}"#.to_vec(),
        None,
    )
    .await;
    assert_status(&answer, 415, "UnsupportedMediaType");
    // A merge patch that is not an object, and a JSON patch that is not a list.
    for (ct, body) in [
        ("application/merge-patch+json", &b"[1]"[..]),
        ("application/json-patch+json", &b"{\"op\": \"add\"}"[..]),
        ("application/strategic-merge-patch+json", &b"{nope"[..]),
    ] {
        let answer = call(
            &client,
            Method::PATCH,
            &format!("{CONFIGMAPS}/existing"),
            Some(ct),
            body.to_vec(),
            None,
        )
        .await;
        assert_status(&answer, 400, "BadRequest");
    }

    // PUT on a missing object, and a PUT whose body names another object.
    let answer = call(
        &client,
        Method::PUT,
        &format!("{CONFIGMAPS}/missing"),
        Some("application/json"),
        config_map("missing").to_string().into_bytes(),
        None,
    )
    .await;
    assert_status(&answer, 404, "NotFound");
    assert_eq!(answer.body["details"]["name"], "missing", "{}", answer.text);
    let answer = call(
        &client,
        Method::PUT,
        &format!("{CONFIGMAPS}/existing"),
        Some("application/json"),
        config_map("other-name").to_string().into_bytes(),
        None,
    )
    .await;
    assert_status(&answer, 400, "BadRequest");
    // Creating into a namespace that does not exist.
    let answer = post_json(
        &client,
        "/api/v1/namespaces/no-such-ns/configmaps",
        config_map("x").to_string().as_bytes(),
    )
    .await;
    assert_status(&answer, 404, "NotFound");

    assert_eq!(
        snapshot(&client).await,
        before,
        "a rejected request changed the store"
    );

    // With fieldValidation=Warn the unknown field is dropped, the object is created and
    // the client is warned.
    let answer = post_json(
        &client,
        &format!("{CONFIGMAPS}?fieldValidation=Warn"),
        unknown.to_string().as_bytes(),
    )
    .await;
    assert_eq!(answer.code, StatusCode::CREATED, "{}", answer.text);
    let warnings: Vec<&str> = answer
        .headers
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("299 ") && w.contains("dta")),
        "{warnings:?}"
    );
    assert!(answer.body.get("dta").is_none(), "{}", answer.text);
    assert_eq!(answer.body["data"]["k"], "v");
}

#[tokio::test]
async fn bad_paths_and_queries_are_rejected_and_change_nothing() {
    let server = K3rs::start();
    let client = server.client().await;
    seed(&client).await;
    let labelled = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "labelled", "labels": {"drop": "me"}}});
    let answer = post_json(&client, CONFIGMAPS, labelled.to_string().as_bytes()).await;
    assert_eq!(answer.code, StatusCode::CREATED, "{}", answer.text);
    let before = snapshot(&client).await;

    let get = |path: String| {
        let client = client.clone();
        async move { call(&client, Method::GET, &path, None, Vec::new(), None).await }
    };
    for path in [
        "/api/v1/namespaces/default/widgets",
        "/apis/nope.example.com/v1/things",
        "/apis/apps/v9/deployments",
        "/api/v1/namespaces/default/configmaps/existing/nosuchsub",
        // A cluster-scoped resource under a namespace.
        "/api/v1/namespaces/default/nodes",
    ] {
        let answer = get(path.to_string()).await;
        assert_status(&answer, 404, "NotFound");
    }
    let answer = get(format!("{CONFIGMAPS}/absent")).await;
    assert_status(&answer, 404, "NotFound");

    for query in [
        "labelSelector=a%20in%20(b",
        "labelSelector=%21%21",
        "labelSelector=a%3D%3D%3Db",
        "fieldSelector=spec.foo%3Dbar",
        "fieldSelector=data.k%3Dv",
        "limit=many",
        "resourceVersion=abc",
        "timeoutSeconds=soon",
    ] {
        let answer = get(format!("{CONFIGMAPS}?{query}")).await;
        assert_status(&answer, 400, "BadRequest");
    }
    let answer = get(format!("{CONFIGMAPS}?fieldSelector=spec.foo%3Dbar")).await;
    assert!(answer.text.contains("spec.foo"), "{}", answer.text);

    // A delete of the collection with a bad selector deletes nothing.
    let answer = call(
        &client,
        Method::DELETE,
        &format!("{CONFIGMAPS}?labelSelector=a%20in%20(b"),
        None,
        Vec::new(),
        None,
    )
    .await;
    assert_status(&answer, 400, "BadRequest");
    // A method a collection does not have.
    let answer = call(
        &client,
        Method::PUT,
        CONFIGMAPS,
        Some("application/json"),
        config_map("x").to_string().into_bytes(),
        None,
    )
    .await;
    assert_status(&answer, 405, "MethodNotAllowed");
    // A delete with stale preconditions is a 409.
    let answer = call(
        &client,
        Method::DELETE,
        &format!("{CONFIGMAPS}/existing"),
        Some("application/json"),
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"resourceVersion": "1"}})
            .to_string()
            .into_bytes(),
        None,
    )
    .await;
    assert_status(&answer, 409, "Conflict");

    assert_eq!(
        snapshot(&client).await,
        before,
        "a rejected request changed the store"
    );

    // A delete of the collection with a selector removes only the matching objects.
    let answer = call(
        &client,
        Method::DELETE,
        &format!("{CONFIGMAPS}?labelSelector=drop%3Dme"),
        None,
        Vec::new(),
        None,
    )
    .await;
    assert_eq!(answer.code, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["kind"], "ConfigMapList", "{}", answer.text);
    let list = get(CONFIGMAPS.to_string()).await;
    let left: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str())
        .filter(|n| *n != "kube-root-ca.crt")
        .collect();
    assert_eq!(left, ["existing"]);
}

/// A client that trusts the server CA but presents no certificate and no token.
async fn anonymous_client(server: &K3rs) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(&server.kubeconfig).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    config.auth_info = Default::default();
    Client::try_from(config).unwrap()
}

#[tokio::test]
async fn requests_without_credentials_are_unauthorized_and_the_token_authenticates() {
    let server = K3rs::start();
    let admin = server.client().await;
    seed(&admin).await;
    let before = snapshot(&admin).await;
    let anonymous = anonymous_client(&server).await;

    let answer = call(&anonymous, Method::GET, CONFIGMAPS, None, Vec::new(), None).await;
    assert_status(&answer, 401, "Unauthorized");
    let answer = post_json(
        &anonymous,
        CONFIGMAPS,
        config_map("anon").to_string().as_bytes(),
    )
    .await;
    assert_status(&answer, 401, "Unauthorized");
    let answer = call(&anonymous, Method::GET, "/api", None, Vec::new(), None).await;
    assert_status(&answer, 401, "Unauthorized");
    let answer = call(
        &anonymous,
        Method::GET,
        CONFIGMAPS,
        None,
        Vec::new(),
        Some("K10abc::server:wrong"),
    )
    .await;
    assert_status(&answer, 401, "Unauthorized");
    // Health and version stay public.
    for path in ["/version", "/readyz", "/healthz", "/livez"] {
        let answer = call(&anonymous, Method::GET, path, None, Vec::new(), None).await;
        assert_eq!(answer.code, StatusCode::OK, "{path}: {}", answer.text);
    }
    assert_eq!(snapshot(&admin).await, before);

    let token = std::fs::read_to_string(server.data_dir().join("server/token")).unwrap();
    let token = token.trim();
    let password = token.rsplit_once("::server:").unwrap().1;
    for bearer in [token, password] {
        let answer = call(
            &anonymous,
            Method::GET,
            CONFIGMAPS,
            None,
            Vec::new(),
            Some(bearer),
        )
        .await;
        assert_eq!(answer.code, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.body["items"][0]["metadata"]["name"], "existing");
    }
    let answer = call(
        &anonymous,
        Method::POST,
        CONFIGMAPS,
        Some("application/json"),
        config_map("by-token").to_string().into_bytes(),
        Some(token),
    )
    .await;
    assert_eq!(answer.code, StatusCode::CREATED, "{}", answer.text);
}
