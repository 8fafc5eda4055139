//! Node passwords, as k3s keeps them: every agent holds a random password of its own and
//! sends it with its kubelet certificate requests; the first request for a node name
//! stores a salted hash of it in the immutable Secret `kube-system/<node>.node-password.k3rs`,
//! and later requests for that name must present the same password. A second machine
//! that claims an existing node name (a copy-pasted `--node-name`, a cloned VM) is thus
//! refused instead of silently taking over the first machine's node.
//!
//! The hash is PBKDF2-HMAC-SHA256 in a PHC-style string,
//! `$pbkdf2-sha256$i=<iterations>$<salt>$<hash>` (unpadded base64).

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use http::StatusCode;
use ring::pbkdf2;
use serde_json::{json, Value};

use super::Refusal;
use crate::AppState;

const NAMESPACE: &str = "kube-system";
const SCHEME: &str = "pbkdf2-sha256";
/// Enough to make offline guessing of a leaked hash slow while keeping a join fast; the
/// passwords themselves are 128 random bits, so this is defence in depth.
const ITERATIONS: u32 = 60_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

pub use k3rs_core::cluster::node_password_secret_name as secret_name;

/// A salted hash of `password` to store.
pub fn hash(password: &str) -> String {
    let salt: [u8; SALT_LEN] = rand::random();
    hash_with(password, &salt, ITERATIONS)
}

fn hash_with(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut out = [0u8; HASH_LEN];
    let rounds = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        password.as_bytes(),
        &mut out,
    );
    format!(
        "${SCHEME}$i={iterations}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    )
}

/// Whether `password` matches a string made by [`hash`] (in constant time). A malformed
/// stored hash matches nothing.
pub fn verify(stored: &str, password: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(""), Some(SCHEME), Some(iterations), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let Some(iterations) = iterations
        .strip_prefix("i=")
        .and_then(|i| i.parse::<u32>().ok())
        .filter(|i| (1..=10_000_000).contains(i))
        .and_then(NonZeroU32::new)
    else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD_NO_PAD.decode(salt), STANDARD_NO_PAD.decode(hash)) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

fn stored_hash(secret: &Value) -> Option<String> {
    let encoded = secret.get("data")?.get("hash")?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

fn mismatch(node: &str) -> Refusal {
    Refusal::new(
        StatusCode::FORBIDDEN,
        format!(
            "node {node:?} already joined the cluster from another machine (its node password \
             differs); choose another --node-name or use --with-node-id, or, if this machine \
             replaces the old one, delete Secret {NAMESPACE}/{}",
            secret_name(node)
        ),
    )
}

fn check(secret: &Value, node: &str, password: &str) -> Result<(), Refusal> {
    match stored_hash(secret) {
        Some(hash) if verify(&hash, password) => Ok(()),
        Some(_) => Err(mismatch(node)),
        None => Err(Refusal::internal(format!(
            "Secret {NAMESPACE}/{} has no usable hash; delete it to let node {node:?} join again",
            secret_name(node)
        ))),
    }
}

/// Verify `password` for `node` against its Secret, or create the Secret when the node
/// has none yet. Refuses with 403 when another password was stored first.
pub(crate) async fn ensure(state: &AppState, node: &str, password: &str) -> Result<(), Refusal> {
    let def = state
        .find("", "v1", "secrets")
        .ok_or_else(|| Refusal::internal("secrets are not served"))?;
    let name = secret_name(node);
    if let Some(secret) = state
        .store
        .get(&def, Some(NAMESPACE), &name)
        .await
        .map_err(Refusal::from)?
    {
        return check(&secret, node, password);
    }
    let secret = json!({
        "metadata": {"name": name, "namespace": NAMESPACE},
        "type": "Opaque",
        "immutable": true,
        "data": {"hash": base64::engine::general_purpose::STANDARD.encode(hash(password))},
    });
    let created = crate::bootstrap::ensure_object(state, &def, Some(NAMESPACE), secret)
        .await
        .map_err(Refusal::from)?;
    if created {
        tracing::info!(node, secret = %name, "stored node password");
        return Ok(());
    }
    // Another request for the same name created it first: it must agree with that one.
    let secret = state
        .store
        .get(&def, Some(NAMESPACE), &name)
        .await
        .map_err(Refusal::from)?
        .ok_or_else(|| Refusal::internal(format!("Secret {NAMESPACE}/{name} vanished")))?;
    check(&secret, node, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash("correct horse");
        let b = hash("correct horse");
        assert_ne!(a, b, "a fresh salt every time");
        assert!(a.starts_with("$pbkdf2-sha256$i=60000$"));
        assert!(verify(&a, "correct horse"));
        assert!(verify(&b, "correct horse"));
        assert!(!verify(&a, "correct horse "));
        assert!(!verify(&a, ""));
    }

    #[test]
    fn malformed_hashes_match_nothing() {
        let good = hash_with("pw", b"0123456789abcdef", 10);
        assert!(verify(&good, "pw"));
        for bad in [
            String::new(),
            "pw".into(),
            good.replace("pbkdf2-sha256", "scrypt"),
            good.replace("i=10", "i=0"),
            good.replace("i=10", "i=x"),
            format!("{good}$extra"),
            good.replace('$', "$$"),
        ] {
            assert!(!verify(&bad, "pw"), "{bad}");
        }
    }

    #[test]
    fn secret_check_explains_a_takeover() {
        let stored = json!({"data": {"hash": base64::engine::general_purpose::STANDARD.encode(hash_with("first", b"salt", 10))}});
        assert!(check(&stored, "n1", "first").is_ok());
        let refusal = check(&stored, "n1", "second").unwrap_err();
        assert_eq!(refusal.status, StatusCode::FORBIDDEN);
        assert!(refusal.message.contains("n1.node-password.k3rs"));
        assert!(!refusal.message.contains("second"));
        let broken = json!({"data": {}});
        assert_eq!(
            check(&broken, "n1", "first").unwrap_err().status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
