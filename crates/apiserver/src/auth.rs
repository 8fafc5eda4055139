//! Authentication: who is calling. Client certificates verified against the client CA
//! (CN = user, O = groups) and bearer tokens. Authorization (RBAC) is a later layer.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header;

use crate::error::ApiError;
use crate::AppState;

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
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

/// Resolve the caller of a request from its certificate or `Authorization: Bearer`.
pub fn authenticate(state: &AppState, req: &Request) -> Option<Identity> {
    if let Some(PeerIdentity(Some(id))) = req.extensions().get::<PeerIdentity>() {
        return Some(id.clone());
    }
    let auth = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = auth.strip_prefix("Bearer ")?.trim();
    let server = &state.config.token;
    // The whole `K10...::server:password` token and its password part are both accepted.
    if secret_eq(token.as_bytes(), server.password.as_bytes())
        || secret_eq(token.as_bytes(), server.to_string_full().as_bytes())
    {
        return Some(Identity {
            user: "system:k3rs:server-token".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        });
    }
    None
}

/// Middleware: attach the caller's [`Identity`] or answer 401.
pub async fn require_authentication(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    match authenticate(&state, &req) {
        Some(id) => {
            req.extensions_mut().insert(id);
            next.run(req).await
        }
        None if is_public(req.uri().path()) => next.run(req).await,
        None => ApiError::unauthorized().into_response(),
    }
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
