//! Service-account tokens for projected volumes: requested through the TokenRequest API
//! (`serviceaccounts/<sa>/token`), bound to the pod, and replaced as upstream's token
//! manager replaces them: once 80% of the token's lifetime has passed, or it is a day old.
//!
//! The token already in the volume is the record of when it was issued: its JWT claims
//! (`iat`, `exp`) say when it needs replacing. Nothing is kept in memory, so a restarted
//! agent keeps using valid tokens instead of requesting new ones for every pod.

use base64::Engine;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount, ServiceAccountTokenProjection};

use super::api_message;

/// The API's default `expirationSeconds` for projected tokens.
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// Tokens are replaced after a day even when they live longer.
const MAX_AGE_SECONDS: i64 = 24 * 3600;

/// Whether `token` (the bytes in the volume) must be replaced at `now` (Unix seconds):
/// expired, 80% of its lifetime gone, a day old, or unreadable as a JWT.
pub fn needs_refresh(token: &[u8], now: i64) -> bool {
    let Some((issued, expires)) = jwt_times(token) else {
        return true;
    };
    let lifetime = (expires - issued).max(0);
    now >= expires - lifetime / 5 || now >= issued + MAX_AGE_SECONDS
}

/// `(iat, exp)` from a JWT's claims.
fn jwt_times(token: &[u8]) -> Option<(i64, i64)> {
    let token = std::str::from_utf8(token).ok()?.trim();
    let claims = token.split('.').nth(1)?;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&claims).ok()?;
    Some((claims.get("iat")?.as_i64()?, claims.get("exp")?.as_i64()?))
}

/// A new token for the pod's service account, bound to the pod (it stops being valid
/// when the pod is deleted).
pub async fn request(
    client: &kube::Client,
    pod: &Pod,
    projection: &ServiceAccountTokenProjection,
) -> Result<String, String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.as_deref())
        .filter(|name| !name.is_empty())
        .unwrap_or("default");
    let request = TokenRequest {
        spec: TokenRequestSpec {
            // No audience: the API server's own audiences.
            audiences: projection.audience.iter().cloned().collect(),
            expiration_seconds: Some(
                projection
                    .expiration_seconds
                    .unwrap_or(DEFAULT_EXPIRATION_SECONDS),
            ),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        },
        ..TokenRequest::default()
    };
    let accounts: kube::Api<ServiceAccount> = kube::Api::namespaced(client.clone(), namespace);
    let issued = accounts
        .create_token_request(account, &Default::default(), &request)
        .await
        .map_err(|err| format!("failed to fetch token: {}", api_message(&err)))?;
    issued
        .status
        .map(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "failed to fetch token: the TokenRequest came back without a token".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> Vec<u8> {
        let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        format!(
            "{}.{}.{}",
            encode(br#"{"alg":"RS256"}"#),
            encode(claims.to_string().as_bytes()),
            encode(b"signature")
        )
        .into_bytes()
    }

    #[test]
    fn refreshes_at_eighty_percent_of_the_lifetime() {
        let token = jwt(serde_json::json!({"iat": 1000, "exp": 4600}));
        assert!(!needs_refresh(&token, 1000));
        assert!(!needs_refresh(&token, 3879));
        assert!(needs_refresh(&token, 3880));
        assert!(needs_refresh(&token, 5000));
    }

    #[test]
    fn refreshes_long_lived_tokens_after_a_day() {
        let year = 365 * 24 * 3600;
        let token = jwt(serde_json::json!({"iat": 0, "exp": year}));
        assert!(!needs_refresh(&token, MAX_AGE_SECONDS - 1));
        assert!(needs_refresh(&token, MAX_AGE_SECONDS));
    }

    #[test]
    fn unreadable_tokens_are_replaced() {
        assert!(needs_refresh(b"", 0));
        assert!(needs_refresh(b"not-a-jwt", 0));
        assert!(needs_refresh(&jwt(serde_json::json!({"exp": 10})), 0));
    }
}
