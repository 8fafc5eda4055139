//! Who is asking the supervisor: join credentials, checked as k3s checks them.
//!
//! - HTTP basic `server:<server password>` or `node:<server password>`: the server token.
//! - HTTP basic `node:<agent password>`: the `--agent-token` (never valid for `server`).
//! - `Authorization: Bearer <id>.<secret>`: a bootstrap token Secret that is unexpired
//!   and allowed for authentication.
//! - A client certificate `system:node:<name>` in `system:nodes`: a node renewing its
//!   own certificates; it may only speak for `<name>`.
//!
//! Every refusal is the same 401 without saying which part was wrong, and nothing here
//! logs a password or a token secret (a bootstrap token's id is public and may be).

use base64::Engine as _;
use chrono::{DateTime, Utc};
use http::request::Parts;
use http::{header, HeaderMap, StatusCode};
use k3rs_certs::bootstrap_token::{self, BootstrapToken};
use serde_json::Value;

use super::Refusal;
use crate::auth::PeerIdentity;
use crate::AppState;

/// An authenticated supervisor caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// `server:<server password>`: another server (and allowed everything an agent is).
    Server,
    /// An agent authenticated by the server or agent token.
    Agent,
    /// An agent authenticated by the bootstrap token with this id.
    Bootstrap { id: String },
    /// A node presenting its own kubelet client certificate.
    Node { name: String },
}

impl Caller {
    /// For logs: how the caller authenticated (never the credential itself).
    pub fn describe(&self) -> String {
        match self {
            Caller::Server => "server token".into(),
            Caller::Agent => "join token".into(),
            Caller::Bootstrap { id } => format!("bootstrap token {id}"),
            Caller::Node { name } => format!("node certificate of {name}"),
        }
    }
}

fn unauthorized() -> Refusal {
    Refusal::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized: the token was not accepted",
    )
}

/// Compare secrets without an early exit on the first differing byte.
fn secret_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Credentials found in a request's `Authorization` header.
#[derive(PartialEq, Eq)]
enum Presented {
    Basic { user: String, password: String },
    Bearer(String),
    None,
}

fn presented(headers: &HeaderMap) -> Presented {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Presented::None;
    };
    if let Some(encoded) = value.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        return match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((user, password)) => Presented::Basic {
                user: user.to_owned(),
                password: password.to_owned(),
            },
            None => Presented::None,
        };
    }
    match value.strip_prefix("Bearer ") {
        Some(token) => Presented::Bearer(token.trim().to_owned()),
        None => Presented::None,
    }
}

/// The node a verified client certificate speaks for, when it is a kubelet's.
fn node_identity(peer: Option<&PeerIdentity>) -> Option<String> {
    let identity = peer?.0.as_ref()?;
    let name = identity.user.strip_prefix("system:node:")?;
    (!name.is_empty() && identity.groups.iter().any(|g| g == "system:nodes"))
        .then(|| name.to_owned())
}

/// Authenticate the caller of a supervisor request, or refuse with 401.
pub(crate) async fn authenticate(state: &AppState, req: &Parts) -> Result<Caller, Refusal> {
    let peer = req.extensions.get::<PeerIdentity>();
    match presented(&req.headers) {
        Presented::Basic { user, password } => {
            let server = &state.config.token;
            let agent = state
                .supervisor
                .as_ref()
                .and_then(|s| s.agent_token.as_ref());
            let is_server_password = secret_eq(&password, &server.password);
            let is_agent_password = agent.is_some_and(|a| secret_eq(&password, &a.password));
            match user.as_str() {
                "server" if is_server_password => Ok(Caller::Server),
                "node" if is_server_password || is_agent_password => Ok(Caller::Agent),
                _ => Err(unauthorized()),
            }
        }
        Presented::Bearer(value) => {
            let token = BootstrapToken::parse(&value).ok_or_else(unauthorized)?;
            check_bootstrap_token(state, &token).await
        }
        Presented::None => match node_identity(peer) {
            Some(name) => Ok(Caller::Node { name }),
            None => Err(unauthorized()),
        },
    }
}

async fn check_bootstrap_token(
    state: &AppState,
    token: &BootstrapToken,
) -> Result<Caller, Refusal> {
    let def = state
        .find("", "v1", "secrets")
        .ok_or_else(|| Refusal::internal("secrets are not served"))?;
    let secret = state
        .store
        .get(&def, Some(bootstrap_token::NAMESPACE), &token.secret_name())
        .await
        .map_err(Refusal::from)?;
    let verdict = match &secret {
        Some(secret) => bootstrap_secret_accepts(secret, token, Utc::now()),
        None => Err("no such token"),
    };
    match verdict {
        Ok(()) => Ok(Caller::Bootstrap {
            id: token.id.clone(),
        }),
        Err(reason) => {
            tracing::debug!(id = %token.id, reason, "bootstrap token refused");
            Err(unauthorized())
        }
    }
}

/// Whether the bootstrap token Secret `secret` accepts `token` at `now`: the right type,
/// the same secret, usable for authentication and not expired (as upstream's bootstrap
/// token authenticator decides). The reason names no secret.
pub(crate) fn bootstrap_secret_accepts(
    secret: &Value,
    token: &BootstrapToken,
    now: DateTime<Utc>,
) -> Result<(), &'static str> {
    if secret.get("type").and_then(Value::as_str) != Some(bootstrap_token::SECRET_TYPE) {
        return Err("wrong secret type");
    }
    let field = |key: &str| -> Option<String> {
        let encoded = secret.get("data")?.get(key)?.as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        String::from_utf8(bytes).ok()
    };
    if field("token-id").as_deref() != Some(token.id.as_str()) {
        return Err("token id does not match its secret");
    }
    match field("token-secret") {
        Some(stored) if secret_eq(&stored, &token.secret) => {}
        _ => return Err("wrong secret"),
    }
    if field("usage-bootstrap-authentication").as_deref() != Some("true") {
        return Err("not allowed for authentication");
    }
    if let Some(expiration) = field("expiration") {
        let expires =
            DateTime::parse_from_rfc3339(expiration.trim()).map_err(|_| "unreadable expiration")?;
        if expires <= now {
            return Err("expired");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn secret(expiration: Option<&str>, usage: &str) -> Value {
        let mut data = json!({
            "token-id": b64("abcdef"),
            "token-secret": b64("0123456789abcdef"),
            "usage-bootstrap-authentication": b64(usage),
        });
        if let Some(e) = expiration {
            data["expiration"] = json!(b64(e));
        }
        json!({"type": "bootstrap.kubernetes.io/token", "data": data})
    }

    #[test]
    fn bootstrap_secrets() {
        let token = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        let now = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            bootstrap_secret_accepts(&secret(None, "true"), &token, now),
            Ok(())
        );
        assert_eq!(
            bootstrap_secret_accepts(&secret(Some("2030-01-02T00:00:00Z"), "true"), &token, now),
            Ok(())
        );
        assert_eq!(
            bootstrap_secret_accepts(&secret(Some("2029-12-31T23:59:59Z"), "true"), &token, now),
            Err("expired")
        );
        assert_eq!(
            bootstrap_secret_accepts(&secret(None, "false"), &token, now),
            Err("not allowed for authentication")
        );
        let wrong = BootstrapToken::parse("abcdef.0123456789abcdee").unwrap();
        assert_eq!(
            bootstrap_secret_accepts(&secret(None, "true"), &wrong, now),
            Err("wrong secret")
        );
        let mut opaque = secret(None, "true");
        opaque["type"] = json!("Opaque");
        assert_eq!(
            bootstrap_secret_accepts(&opaque, &token, now),
            Err("wrong secret type")
        );
    }

    #[test]
    fn authorization_headers() {
        let mut headers = HeaderMap::new();
        assert!(presented(&headers) == Presented::None);
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {}", b64("node:pw:with:colons"))
                .parse()
                .unwrap(),
        );
        assert!(
            presented(&headers)
                == Presented::Basic {
                    user: "node".into(),
                    password: "pw:with:colons".into()
                }
        );
        headers.insert(header::AUTHORIZATION, "Bearer abc.def".parse().unwrap());
        assert!(presented(&headers) == Presented::Bearer("abc.def".into()));
        headers.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert!(presented(&headers) == Presented::None);
    }

    #[test]
    fn only_kubelet_certificates_name_a_node() {
        let id = |user: &str, groups: &[&str]| {
            PeerIdentity(Some(crate::auth::Identity {
                user: user.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                ..Default::default()
            }))
        };
        assert_eq!(
            node_identity(Some(&id("system:node:n1", &["system:nodes"]))),
            Some("n1".into())
        );
        assert_eq!(node_identity(Some(&id("system:node:n1", &[]))), None);
        assert_eq!(
            node_identity(Some(&id("system:admin", &["system:masters"]))),
            None
        );
        assert_eq!(node_identity(Some(&PeerIdentity(None))), None);
        assert_eq!(node_identity(None), None);
    }
}
