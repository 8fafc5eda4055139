//! Service accounts as callers: signed tokens from the `serviceaccounts/token` subresource
//! (TokenRequest), and authenticating requests that carry one. A token stays valid only
//! while the service account (and the pod or secret it is bound to) still exists with the
//! same uid.

pub mod token;

use serde_json::{json, Value};

use crate::auth::Identity;
use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::AppState;
use token::{BoundRef, Claims, KubernetesClaims};

/// Default and minimum lifetimes of requested tokens, as upstream.
const DEFAULT_EXPIRATION: i64 = 3600;
const MIN_EXPIRATION: i64 = 600;
/// Longest lifetime granted (upstream's default --service-account-max-token-expiration is
/// unlimited; a day keeps leaked tokens short-lived while covering kubelet rotation).
const MAX_EXPIRATION: i64 = 48 * 3600;

/// Upstream keeps tokens of a terminating pod valid for a minute past its deletion
/// timestamp (the JWT leeway), so a pod can still talk to the API while shutting down.
fn deleted_long_ago(pod: &Value) -> bool {
    object::meta_str(pod, "deletionTimestamp")
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| {
            chrono::Utc::now() - t.with_timezone(&chrono::Utc) > chrono::Duration::seconds(60)
        })
}

async fn uid_of(
    state: &AppState,
    plural: &str,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<Option<String>> {
    let def = state.find("", "v1", plural).expect("built in");
    Ok(state
        .store
        .get(&def, ns, name)
        .await?
        .filter(|o| plural != "pods" || !deleted_long_ago(o))
        .and_then(|o| object::meta_str(&o, "uid").map(str::to_string)))
}

/// The identity behind a service-account token, if the token is valid and everything it is
/// bound to still exists.
pub async fn authenticate(
    state: &AppState,
    bearer: &str,
    audiences: &[String],
) -> Option<(Identity, Claims)> {
    let now = chrono::Utc::now().timestamp();
    let claims = state.tokens.verify(bearer, audiences, now).ok()?;
    let k = &claims.kubernetes;
    let ns = Some(k.namespace.as_str());
    let still = |uid: Option<String>, want: &str| uid.as_deref() == Some(want);
    if !still(
        uid_of(state, "serviceaccounts", ns, &k.serviceaccount.name)
            .await
            .ok()?,
        &k.serviceaccount.uid,
    ) {
        return None;
    }
    if let Some(pod) = &k.pod {
        if !still(uid_of(state, "pods", ns, &pod.name).await.ok()?, &pod.uid) {
            return None;
        }
    }
    if let Some(secret) = &k.secret {
        if !still(
            uid_of(state, "secrets", ns, &secret.name).await.ok()?,
            &secret.uid,
        ) {
            return None;
        }
    }
    let identity = Identity {
        user: token::username(&k.namespace, &k.serviceaccount.name),
        groups: token::groups(&k.namespace),
        uid: k.serviceaccount.uid.clone(),
        extra: [(
            "authentication.kubernetes.io/credential-id".to_string(),
            vec![format!("JTI={}", claims.jti)],
        )]
        .into_iter()
        .collect(),
    };
    Some((identity, claims))
}

/// `POST .../serviceaccounts/<name>/token`: issue a token for the service account.
pub async fn token_request(
    state: &AppState,
    ns: &str,
    name: &str,
    mut request: Value,
) -> ApiResult<Value> {
    let sa_uid = uid_of(state, "serviceaccounts", Some(ns), name)
        .await?
        .ok_or_else(|| ApiError::not_found("", "serviceaccounts", name))?;
    let spec = request.get("spec").cloned().unwrap_or(json!({}));
    let audiences: Vec<String> = match spec.get("audiences").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        _ => state.tokens.audiences.clone(),
    };
    let expiration = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_EXPIRATION);
    if expiration < MIN_EXPIRATION {
        return Err(ApiError::invalid(
            "TokenRequest",
            name,
            vec![crate::error::FieldCause {
                field: "spec.expirationSeconds".into(),
                message: format!(
                    "Invalid value: {expiration}: may not specify a duration less than 10 minutes"
                ),
                reason: "FieldValueInvalid",
            }],
        ));
    }
    let expiration = expiration.min(MAX_EXPIRATION);
    let mut claims_k = KubernetesClaims {
        namespace: ns.to_string(),
        serviceaccount: BoundRef {
            name: name.to_string(),
            uid: sa_uid,
        },
        pod: None,
        secret: None,
        node: None,
    };
    if let Some(bound) = spec.get("boundObjectRef").filter(|b| b.is_object()) {
        let kind = bound
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let bound_name = bound
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let plural = match kind {
            "Pod" => "pods",
            "Secret" => "secrets",
            other => {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token to object of kind {other:?}; Pod and Secret are supported"
                )))
            }
        };
        let uid = uid_of(state, plural, Some(ns), bound_name)
            .await?
            .ok_or_else(|| ApiError::not_found("", plural, bound_name))?;
        if let Some(want) = bound
            .get("uid")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
        {
            if want != uid {
                return Err(ApiError::conflict("", plural, bound_name, &format!(
                    "the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"
                )));
            }
        }
        let bound = BoundRef {
            name: bound_name.to_string(),
            uid,
        };
        match kind {
            "Pod" => claims_k.pod = Some(bound),
            _ => claims_k.secret = Some(bound),
        }
    }
    let now = chrono::Utc::now();
    let claims = Claims {
        aud: audiences.clone(),
        exp: now.timestamp() + expiration,
        iat: now.timestamp(),
        nbf: now.timestamp(),
        iss: state.tokens.issuer.clone(),
        jti: uuid::Uuid::new_v4().to_string(),
        sub: token::username(ns, name),
        kubernetes: claims_k,
    };
    let token = state
        .tokens
        .sign(&claims)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let expires = chrono::DateTime::from_timestamp(claims.exp, 0)
        .unwrap_or(now)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    request["apiVersion"] = json!("authentication.k8s.io/v1");
    request["kind"] = json!("TokenRequest");
    request["metadata"] =
        json!({"name": name, "namespace": ns, "creationTimestamp": object::now_rfc3339()});
    request["spec"]["audiences"] = json!(audiences);
    request["spec"]["expirationSeconds"] = json!(expiration);
    request["status"] = json!({"token": token, "expirationTimestamp": expires});
    Ok(request)
}
