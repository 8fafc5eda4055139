//! Who may use the kubelet API: callers are authenticated by a client certificate from the
//! API server's client CA (user = CN, groups = O) or a bearer token the API server vouches
//! for (TokenReview), and authorized by a SubjectAccessReview against the Node object,
//! mapped from the request as upstream's kubelet maps it. Positive answers are cached
//! briefly so that a burst of requests (`kubectl logs -f` on many pods, a stats scrape)
//! costs one review, not one each; denials are never cached, so a new RoleBinding takes
//! effect on the next try.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, Method, StatusCode};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use super::SharedState;

/// How long an allowed review or an accepted token is trusted without asking again.
const POSITIVE_TTL: Duration = Duration::from_secs(60);
/// Caches are swept of expired entries once they grow past this many.
const SWEEP_AT: usize = 1024;

/// An authenticated caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
    pub uid: String,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The identity proven by the connection's verified client certificate, if any; the
/// listener inserts it into every request of the connection.
#[derive(Clone, Debug, Default)]
pub struct PeerUser(pub Option<User>);

/// What a request asks of the Node, in SubjectAccessReview terms.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attributes {
    pub verb: &'static str,
    pub subresource: &'static str,
}

/// Map a request as upstream's kubelet does: the verb from the HTTP method, the
/// subresource from the path (`/stats/*` → `stats`, `/logs/*` → `log`, `/metrics/*` →
/// `metrics`, everything else, exec and containerLogs included, → `proxy`).
pub fn attributes(method: &Method, path: &str) -> Attributes {
    let verb = match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    };
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    let subresource = if under("/stats") {
        "stats"
    } else if under("/metrics") {
        "metrics"
    } else if under("/logs") {
        "log"
    } else {
        "proxy"
    };
    Attributes { verb, subresource }
}

/// The kubelet's forbidden message, naming what was asked.
pub fn forbidden_message(user: &str, attrs: &Attributes) -> String {
    format!(
        "Forbidden (user={user}, verb={}, resource=nodes, subresource={})",
        attrs.verb, attrs.subresource
    )
}

/// Answers kept until they expire.
type Expiring<K, V> = Mutex<HashMap<K, (V, Instant)>>;
/// Who asked (user and groups) and what.
type AccessKey = (String, Vec<String>, Attributes);

/// Token and access review caches, shared by every connection.
#[derive(Default)]
pub struct Caches {
    /// sha256(token) → the user.
    tokens: Expiring<[u8; 32], User>,
    /// Allowed requests.
    allowed: Expiring<AccessKey, ()>,
}

fn cached<K: std::hash::Hash + Eq, V: Clone>(map: &Expiring<K, V>, key: &K) -> Option<V> {
    let map = map.lock().expect("cache lock");
    map.get(key)
        .filter(|(_, expires)| *expires > Instant::now())
        .map(|(v, _)| v.clone())
}

fn remember<K: std::hash::Hash + Eq, V>(map: &Expiring<K, V>, key: K, value: V) {
    let mut map = map.lock().expect("cache lock");
    let now = Instant::now();
    if map.len() >= SWEEP_AT {
        map.retain(|_, (_, expires)| *expires > now);
    }
    map.insert(key, (value, now + POSITIVE_TTL));
}

/// Ask the API server whose `token` is; `None` if it is not valid.
async fn review_token(state: &SharedState, token: &str) -> Option<User> {
    let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if let Some(user) = cached(&state.caches.tokens, &key) {
        return Some(user);
    }
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_string()),
            audiences: None,
        },
        ..Default::default()
    };
    let api: kube::Api<TokenReview> = kube::Api::all(state.config.client.clone());
    let status = match api.create(&PostParams::default(), &review).await {
        Ok(answer) => answer.status?,
        Err(err) => {
            warn!(error = %err, "TokenReview failed");
            return None;
        }
    };
    if status.authenticated != Some(true) {
        return None;
    }
    let info = status.user?;
    let user = User {
        name: info.username?,
        groups: info.groups.unwrap_or_default(),
        uid: info.uid.unwrap_or_default(),
        extra: info.extra.unwrap_or_default(),
    };
    remember(&state.caches.tokens, key, user.clone());
    Some(user)
}

/// Whether `user` may do `attrs` on this node, by SubjectAccessReview.
async fn review_access(
    state: &SharedState,
    user: &User,
    attrs: &Attributes,
) -> Result<bool, String> {
    let key = (user.name.clone(), user.groups.clone(), attrs.clone());
    if cached(&state.caches.allowed, &key).is_some() {
        return Ok(true);
    }
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.name.clone()),
            groups: Some(user.groups.clone()),
            uid: (!user.uid.is_empty()).then(|| user.uid.clone()),
            extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(attrs.verb.to_string()),
                version: Some("v1".into()),
                resource: Some("nodes".into()),
                subresource: Some(attrs.subresource.to_string()),
                name: Some(state.config.node_name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: kube::Api<SubjectAccessReview> = kube::Api::all(state.config.client.clone());
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| format!("SubjectAccessReview failed: {e}"))?;
    let allowed = answer.status.is_some_and(|s| s.allowed);
    if allowed {
        remember(&state.caches.allowed, key, ());
    }
    Ok(allowed)
}

fn plain(code: StatusCode, message: String) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// Middleware: 401 without credentials, 403 unless the review allows the request.
pub async fn require_access(
    State(state): State<SharedState>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req.extensions().get::<PeerUser>().and_then(|p| p.0.clone());
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let user = match (peer, bearer) {
        (Some(user), _) => Some(user),
        (None, Some(token)) => review_token(&state, &token).await,
        (None, None) => None,
    };
    let Some(user) = user else {
        return plain(StatusCode::UNAUTHORIZED, "Unauthorized".into());
    };
    let attrs = attributes(req.method(), req.uri().path());
    match review_access(&state, &user, &attrs).await {
        Ok(true) => {
            req.extensions_mut().insert(user);
            next.run(req).await
        }
        Ok(false) => {
            debug!(user = %user.name, verb = attrs.verb, subresource = attrs.subresource, "forbidden");
            plain(StatusCode::FORBIDDEN, forbidden_message(&user.name, &attrs))
        }
        Err(err) => {
            warn!(error = %err, "authorization failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "Authorization error (user={}, verb={}, resource=nodes, subresource={}): {err}",
                    user.name, attrs.verb, attrs.subresource
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_paths_and_methods_as_upstream() {
        let a = attributes(&Method::GET, "/containerLogs/default/web/nginx");
        assert_eq!((a.verb, a.subresource), ("get", "proxy"));
        let a = attributes(&Method::POST, "/exec/default/web/nginx");
        assert_eq!((a.verb, a.subresource), ("create", "proxy"));
        let a = attributes(&Method::GET, "/portForward/default/web");
        assert_eq!(a.subresource, "proxy");
        let a = attributes(&Method::GET, "/stats/summary");
        assert_eq!((a.verb, a.subresource), ("get", "stats"));
        assert_eq!(attributes(&Method::GET, "/stats").subresource, "stats");
        // Only whole path segments count: `/statsx` is not under `/stats`.
        assert_eq!(attributes(&Method::GET, "/statsx").subresource, "proxy");
        assert_eq!(attributes(&Method::GET, "/logs/syslog").subresource, "log");
        assert_eq!(
            attributes(&Method::GET, "/metrics/resource").subresource,
            "metrics"
        );
        assert_eq!(attributes(&Method::DELETE, "/healthz").verb, "delete");
        assert_eq!(attributes(&Method::PUT, "/run/a/b/c").verb, "update");
    }

    #[test]
    fn forbidden_names_the_request() {
        let a = attributes(&Method::GET, "/stats/summary");
        assert_eq!(
            forbidden_message("bob", &a),
            "Forbidden (user=bob, verb=get, resource=nodes, subresource=stats)"
        );
    }

    #[test]
    fn positive_answers_expire() {
        let map: Expiring<u8, u8> = Mutex::default();
        remember(&map, 1, 7);
        assert_eq!(cached(&map, &1), Some(7));
        map.lock()
            .unwrap()
            .insert(2, (9, Instant::now() - Duration::from_secs(1)));
        assert_eq!(cached(&map, &2), None);
        assert_eq!(cached(&map, &3), None);
    }
}
