//! Bootstrap tokens, `<id>.<secret>`, as kubeadm defines them and `k3s token create`
//! hands them out: a public six-character id and a sixteen-character secret, both
//! `[a-z0-9]`, stored as the Secret `kube-system/bootstrap-token-<id>` of type
//! `bootstrap.kubernetes.io/token`.
//!
//! The id names the token (it is shown by `token list` and may be logged); the secret
//! is the credential and never appears in `Debug` output, logs or errors.

/// Secret type of a bootstrap token.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// Namespace the token Secrets live in.
pub const NAMESPACE: &str = "kube-system";
/// The group every k3rs bootstrap token adds, as k3s's `default-node-token` group.
pub const DEFAULT_GROUP: &str = "system:bootstrappers:k3rs:default-node-token";

const ID_LEN: usize = 6;
const SECRET_LEN: usize = 16;
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapToken")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn is_token_part(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Whether `id` is a well-formed token id (six characters `[a-z0-9]`).
pub fn is_valid_id(id: &str) -> bool {
    is_token_part(id, ID_LEN)
}

/// `bootstrap-token-<id>`.
pub fn secret_name(id: &str) -> String {
    format!("bootstrap-token-{id}")
}

impl BootstrapToken {
    /// `<id>.<secret>` exactly, or `None`: anything else is some other kind of credential.
    pub fn parse(s: &str) -> Option<BootstrapToken> {
        let (id, secret) = s.split_once('.')?;
        (is_token_part(id, ID_LEN) && is_token_part(secret, SECRET_LEN)).then(|| BootstrapToken {
            id: id.to_owned(),
            secret: secret.to_owned(),
        })
    }

    /// A new random token.
    pub fn generate() -> BootstrapToken {
        let random = |len: usize| -> String {
            (0..len)
                .map(|_| {
                    // 252 is the largest multiple of 36 below 256: rejecting bytes at or
                    // above it keeps every character equally likely.
                    loop {
                        let b: u8 = rand::random();
                        if b < 252 {
                            return ALPHABET[usize::from(b) % ALPHABET.len()] as char;
                        }
                    }
                })
                .collect()
        };
        BootstrapToken {
            id: random(ID_LEN),
            secret: random(SECRET_LEN),
        }
    }

    /// The credential, `<id>.<secret>`. Named loudly so it is not printed by accident.
    pub fn reveal(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    pub fn secret_name(&self) -> String {
        secret_name(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_the_kubeadm_shape() {
        let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        assert_eq!(t.id, "abcdef");
        assert_eq!(t.reveal(), "abcdef.0123456789abcdef");
        assert_eq!(t.secret_name(), "bootstrap-token-abcdef");
        for bad in [
            "abcdef0123456789abcdef",
            "abcde.0123456789abcdef",
            "abcdef.0123456789abcde",
            "ABCDEF.0123456789abcdef",
            "abcdef.0123456789abcdeF",
            "server:password",
            "",
        ] {
            assert!(BootstrapToken::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn generated_tokens_parse_and_differ() {
        let a = BootstrapToken::generate();
        let b = BootstrapToken::generate();
        assert_eq!(BootstrapToken::parse(&a.reveal()).unwrap(), a);
        assert_ne!(a, b);
        assert!(is_valid_id(&a.id));
        assert!(!format!("{a:?}").contains(&a.secret));
    }
}
