//! Authentication: who is calling. Client certificates verified against the client CA
//! (CN = user, O = groups) and bearer tokens. Authorization (RBAC) is a later layer.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header;

use crate::error::ApiError;
use crate::AppState;

/// An authenticated caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
    /// Stable id of the user where one exists (a service account's uid).
    pub uid: String,
    /// Extra attributes, e.g. `authentication.kubernetes.io/credential-id`.
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

impl Identity {
    /// `UserInfo` as TokenReview and SelfSubjectReview report it.
    pub fn user_info(&self) -> serde_json::Value {
        let mut info = serde_json::json!({"username": self.user, "groups": self.groups});
        if !self.uid.is_empty() {
            info["uid"] = serde_json::json!(self.uid);
        }
        if !self.extra.is_empty() {
            info["extra"] = serde_json::json!(self.extra);
        }
        info
    }
}

/// The identity proven by the TLS client certificate of the connection, if any.
/// Inserted into every request of the connection by the TLS acceptor.
#[derive(Clone, Debug, Default)]
pub struct PeerIdentity(pub Option<Identity>);

/// Paths anyone may read, as upstream's `system:public-info-viewer` allows.
fn is_public(path: &str) -> bool {
    matches!(path, "/version" | "/healthz" | "/livez" | "/readyz")
        || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

/// Compare secrets without an early exit on the first differing byte.
fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who a bearer token belongs to: the server token (an administrator) or a
/// service-account token. Also returns the audiences the token was accepted for.
pub async fn authenticate_token(
    state: &AppState,
    token: &str,
    audiences: &[String],
) -> Option<(Identity, Vec<String>)> {
    let server = &state.config.token;
    // The whole `K10...::server:password` token and its password part are both accepted.
    if secret_eq(token.as_bytes(), server.password.as_bytes())
        || secret_eq(token.as_bytes(), server.to_string_full().as_bytes())
    {
        let identity = Identity {
            user: "system:k3rs:server-token".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            ..Default::default()
        };
        return Some((identity, state.tokens.audiences.clone()));
    }
    let (identity, claims) = crate::serviceaccount::authenticate(state, token, audiences).await?;
    Some((identity, claims.aud))
}

/// Resolve the caller from the connection's certificate identity or a bearer token.
pub async fn authenticate(
    state: &AppState,
    peer: Option<Identity>,
    bearer: Option<String>,
) -> Option<Identity> {
    if let Some(mut id) = peer {
        if !id.groups.iter().any(|g| g == "system:authenticated") {
            id.groups.push("system:authenticated".into());
        }
        return Some(id);
    }
    authenticate_token(state, bearer?.as_str(), &[])
        .await
        .map(|(id, _)| id)
}

/// Middleware: attach the caller's [`Identity`] or answer 401.
pub async fn require_authentication(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    // Take what is needed out of the request first: the body is not shareable across
    // the awaits below.
    let peer = req
        .extensions()
        .get::<PeerIdentity>()
        .and_then(|p| p.0.clone());
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    match authenticate(&state, peer, bearer).await {
        Some(id) => {
            let id = match impersonate(&state, id, req.headers()) {
                Ok(id) => id,
                Err(err) => return err.into_response(),
            };
            crate::access_log::record_user(&id.user);
            req.extensions_mut().insert(id);
            next.run(req).await
        }
        None if is_public(req.uri().path()) => next.run(req).await,
        None => ApiError::unauthorized().into_response(),
    }
}

/// `Impersonate-User` / `Impersonate-Group` (`kubectl --as`, `--as-group`): act as another
/// user when the caller may `impersonate` them, as upstream's impersonation filter does.
fn impersonate(
    state: &AppState,
    caller: Identity,
    headers: &http::HeaderMap,
) -> Result<Identity, ApiError> {
    let Some(user) = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return Ok(caller);
    };
    let mut groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let check = |attrs: crate::authz::RequestAttributes| {
        if state
            .authorizer
            .authorize(&caller.user, &caller.groups, &attrs)
            .is_allowed()
        {
            Ok(())
        } else {
            Err(attrs.forbidden(&caller.user, ""))
        }
    };
    let impersonation =
        |resource: &str, namespace: &str, name: &str| crate::authz::RequestAttributes {
            verb: "impersonate".into(),
            resource_request: true,
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Default::default()
        };
    match user
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
    {
        Some((ns, name)) => {
            check(impersonation("serviceaccounts", ns, name))?;
            for g in crate::serviceaccount::token::groups(ns) {
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }
        None => check(impersonation("users", "", &user))?,
    }
    for group in &groups {
        if group != "system:authenticated" && !group.starts_with("system:serviceaccounts") {
            check(impersonation("groups", "", group))?;
        }
    }
    if !groups.iter().any(|g| g == "system:authenticated") {
        groups.push("system:authenticated".into());
    }
    Ok(Identity {
        user,
        groups,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_paths() {
        assert!(is_public("/version"));
        assert!(is_public("/readyz"));
        assert!(!is_public("/api/v1/pods"));
        assert!(!is_public("/openapi/v3"));
    }

    #[test]
    fn secret_comparison() {
        assert!(secret_eq(b"abc", b"abc"));
        assert!(!secret_eq(b"abc", b"abd"));
        assert!(!secret_eq(b"abc", b"abcd"));
    }
}
