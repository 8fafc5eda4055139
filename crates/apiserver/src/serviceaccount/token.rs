//! Service-account tokens: ES256-signed JWTs with the claims kube-apiserver puts in bound
//! tokens (`kubernetes.io` with the namespace, service account and bound object), and
//! their verification.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An object a token is bound to: it stops being valid when the object is gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundRef {
    pub name: String,
    pub uid: String,
}

/// The `kubernetes.io` private claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    pub namespace: String,
    pub serviceaccount: BoundRef,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pod: Option<BoundRef>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub secret: Option<BoundRef>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub node: Option<BoundRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub iss: String,
    pub jti: String,
    pub sub: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer {0:?} is not accepted")]
    WrongIssuer(String),
    #[error("token audiences {0:?} are not accepted")]
    WrongAudience(Vec<String>),
    #[error("service-account signing key: {0}")]
    Key(String),
}

/// Signs and verifies service-account tokens with the cluster's service-account key.
pub struct TokenSigner {
    key_pair: EcdsaKeyPair,
    key_id: String,
    pub issuer: String,
    /// Audiences this API server accepts (the default audiences of new tokens).
    pub audiences: Vec<String>,
}

impl TokenSigner {
    /// `key_pem`: PKCS#8 ECDSA P-256 private key.
    pub fn new(key_pem: &str, issuer: String, audiences: Vec<String>) -> Result<Self, TokenError> {
        let der =
            pem_body(key_pem).ok_or_else(|| TokenError::Key("not a PEM private key".into()))?;
        let key_pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
                .map_err(|e| TokenError::Key(format!("not a PKCS#8 P-256 key: {e}")))?;
        // Key id: hash of the public key, stable across restarts, so verifiers can pick keys.
        let key_id = URL_SAFE_NO_PAD.encode(Sha256::digest(key_pair.public_key().as_ref()));
        Ok(Self {
            key_pair,
            key_id,
            issuer,
            audiences,
        })
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let header = serde_json::json!({"alg": "ES256", "kid": self.key_id});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).map_err(|_| TokenError::Malformed)?)
        );
        let signature = self
            .key_pair
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| TokenError::Key("signing failed".into()))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// Check signature, issuer, time window and audiences (any of `audiences`, or of the
    /// server's own when empty). Bound objects are checked by the caller.
    pub fn verify(
        &self,
        token: &str,
        audiences: &[String],
        now: i64,
    ) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let signing_input = &token[..header.len() + 1 + payload.len()];
        UnparsedPublicKey::new(
            &ECDSA_P256_SHA256_FIXED,
            self.key_pair.public_key().as_ref(),
        )
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| TokenError::BadSignature)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(TokenError::Malformed)?;
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer(claims.iss));
        }
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        if now < claims.nbf {
            return Err(TokenError::NotYetValid);
        }
        let accepted = if audiences.is_empty() {
            &self.audiences
        } else {
            audiences
        };
        if !claims.aud.iter().any(|a| accepted.contains(a)) {
            return Err(TokenError::WrongAudience(claims.aud));
        }
        Ok(claims)
    }
}

fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// The user name of a service account, as it appears in RBAC subjects.
pub fn username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// Groups every service account belongs to.
pub fn groups(namespace: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{namespace}"),
        "system:authenticated".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TokenSigner {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
        );
        TokenSigner::new(
            &pem,
            "https://kubernetes.default.svc.cluster.local".into(),
            vec!["k3rs".into()],
        )
        .unwrap()
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            aud: vec!["k3rs".into()],
            exp,
            iat: 100,
            nbf: 100,
            iss: "https://kubernetes.default.svc.cluster.local".into(),
            jti: "j".into(),
            sub: username("default", "builder"),
            kubernetes: KubernetesClaims {
                namespace: "default".into(),
                serviceaccount: BoundRef {
                    name: "builder".into(),
                    uid: "u1".into(),
                },
                pod: None,
                secret: None,
                node: None,
            },
        }
    }

    #[test]
    fn round_trip_and_rejections() {
        let s = signer();
        let token = s.sign(&claims(1000)).unwrap();
        assert_eq!(s.verify(&token, &[], 500).unwrap(), claims(1000));
        assert_eq!(s.verify(&token, &[], 1000), Err(TokenError::Expired));
        assert_eq!(s.verify(&token, &[], 50), Err(TokenError::NotYetValid));
        assert!(matches!(
            s.verify(&token, &["other".into()], 500),
            Err(TokenError::WrongAudience(_))
        ));
        let forged = format!("{}x", &token[..token.rfind('.').unwrap() + 1]);
        assert!(s.verify(&forged, &[], 500).is_err());
        assert_eq!(s.verify("a.b", &[], 500), Err(TokenError::Malformed));
        // A token from another key is refused.
        let other = signer().sign(&claims(1000)).unwrap();
        assert_eq!(s.verify(&other, &[], 500), Err(TokenError::BadSignature));
    }
}
