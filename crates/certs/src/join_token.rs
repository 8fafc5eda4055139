//! The token a joining agent is given (`--token`), in every form k3s accepts:
//!
//! | form                                   | CA pinned | credential                      |
//! |----------------------------------------|-----------|---------------------------------|
//! | `K10<sha256>::<user>:<password>`       | yes       | password (agents use user node) |
//! | `K10<sha256>::<id>.<secret>`           | yes       | bootstrap token                 |
//! | `<password>` (short)                   | no        | password                        |
//! | `<id>.<secret>`                        | no        | bootstrap token                 |
//!
//! Verifying the CA lives here too: the agent downloads the CA bundle without trusting
//! it and compares its SHA-256 with the token's hash *before* it sends any credential.

use crate::bootstrap_token::BootstrapToken;
use crate::token::{ca_hash, Token};
use crate::{Error, Result};

/// User name agents authenticate as, whatever user the token names (as k3s agents do):
/// the server gives `node` agent rights only, even with the server token's password.
pub const AGENT_USER: &str = "node";

/// What the agent presents to the supervisor.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// HTTP basic auth `node:<password>`.
    Password(String),
    /// `Authorization: Bearer <id>.<secret>`.
    Bootstrap(BootstrapToken),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Password(_) => f.write_str("Password(<redacted>)"),
            Credential::Bootstrap(t) => write!(f, "Bootstrap({t:?})"),
        }
    }
}

/// A parsed `--token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// Lowercase hex SHA-256 of the server CA PEM; `None` for a short token.
    pub ca_hash: Option<String>,
    pub credential: Credential,
}

/// The CA bundle a server presented does not hash to the token's CA hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the server's CA certificate does not match the token (token CA hash {expected}, \
     server CA hash {actual}); refusing to send credentials to it"
)]
pub struct CaMismatch {
    pub expected: String,
    pub actual: String,
}

impl JoinToken {
    /// Parse any of the forms in the module table. Errors never quote the token.
    pub fn parse(s: &str) -> Result<JoinToken> {
        let s = s.trim();
        if let Some(token) = BootstrapToken::parse(s) {
            return Ok(JoinToken {
                ca_hash: None,
                credential: Credential::Bootstrap(token),
            });
        }
        // `K10<hash>::<id>.<secret>`: the generic parser wants `user:password` after `::`.
        if let Some((head, creds)) = s.split_once("::") {
            if let Some(token) = BootstrapToken::parse(creds) {
                if !head.starts_with("K10") {
                    return Err(invalid("full tokens must start with \"K10\""));
                }
                // Reuse the generic parser for the hash part alone.
                let parsed = Token::parse(&format!("{head}::x:x"))?;
                return Ok(JoinToken {
                    ca_hash: parsed.ca_hash,
                    credential: Credential::Bootstrap(token),
                });
            }
        }
        let token = Token::parse(s)?;
        Ok(JoinToken {
            ca_hash: token.ca_hash,
            credential: Credential::Password(token.password),
        })
    }

    /// Check a CA bundle downloaded from the server against the token's hash. A short
    /// token has no hash and accepts any bundle (trust on first use).
    pub fn verify_ca(&self, ca_pem: &str) -> std::result::Result<(), CaMismatch> {
        let Some(expected) = &self.ca_hash else {
            return Ok(());
        };
        let actual = ca_hash(ca_pem);
        if actual.as_bytes() == expected.as_bytes() {
            Ok(())
        } else {
            Err(CaMismatch {
                expected: expected.clone(),
                actual,
            })
        }
    }
}

fn invalid(reason: &str) -> Error {
    Error::InvalidToken {
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn full_password_token_pins_the_ca() {
        let hash = ca_hash(CA);
        let t = JoinToken::parse(&format!("K10{hash}::server:pw:with:colons\n")).unwrap();
        assert_eq!(t.ca_hash.as_deref(), Some(hash.as_str()));
        assert_eq!(t.credential, Credential::Password("pw:with:colons".into()));
        assert_eq!(t.verify_ca(CA), Ok(()));
        let err = t.verify_ca(&CA.replace("MIIB", "MIIC")).unwrap_err();
        assert_eq!(err.expected, hash);
        assert_ne!(err.actual, hash);
        assert!(err.to_string().contains("does not match the token"));
    }

    #[test]
    fn short_tokens_trust_any_ca() {
        let t = JoinToken::parse("s3cret").unwrap();
        assert_eq!(t.ca_hash, None);
        assert_eq!(t.credential, Credential::Password("s3cret".into()));
        assert_eq!(t.verify_ca("anything"), Ok(()));
    }

    #[test]
    fn bootstrap_tokens_full_and_short() {
        let hash = ca_hash(CA);
        let full = JoinToken::parse(&format!("K10{hash}::abcdef.0123456789abcdef")).unwrap();
        assert_eq!(full.ca_hash.as_deref(), Some(hash.as_str()));
        let Credential::Bootstrap(token) = &full.credential else {
            panic!("bootstrap expected");
        };
        assert_eq!(token.id, "abcdef");
        let short = JoinToken::parse("abcdef.0123456789abcdef").unwrap();
        assert_eq!(short.ca_hash, None);
        assert_eq!(short.credential, full.credential);
    }

    #[test]
    fn malformed_tokens_name_no_secret() {
        for bad in [
            "K10abc::abcdef.0123456789abcdef".to_string(),
            "K11::abcdef.0123456789abcdef".to_string(),
            format!("K10{}::nopassword", ca_hash(CA)),
            String::new(),
        ] {
            let err = JoinToken::parse(&bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid token"), "{err}");
            assert!(!err.contains("0123456789abcdef"), "{err}");
            assert!(!err.contains("nopassword"), "{err}");
        }
    }

    #[test]
    fn debug_hides_credentials() {
        let t = JoinToken::parse("K10::node:topsecret").unwrap();
        assert!(!format!("{t:?}").contains("topsecret"));
        let t = JoinToken::parse("abcdef.0123456789abcdef").unwrap();
        assert!(!format!("{t:?}").contains("0123456789abcdef"));
    }
}
