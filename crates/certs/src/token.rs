//! Join tokens in k3s's format, `K10<ca-hash>::<user>:<password>`.
//!
//! The CA hash (SHA-256 of the server CA PEM) lets a joining node pin the cluster CA
//! before it trusts anything the server says; the password authenticates the node.
//! A short token (just a password) is accepted wherever k3s accepts one.
//! Passwords never appear in `Debug` output, logs or error messages.

use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::atomic_file::{read_optional, write_file_with_mode};
use crate::{Error, Result};

const PREFIX: &str = "K10";
/// User name of the server token (and of a short token).
pub const SERVER_USER: &str = "server";

#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// Lowercase hex SHA-256 of the server CA PEM; `None` for a short token.
    pub ca_hash: Option<String>,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("ca_hash", &self.ca_hash)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Token {
    /// Parse `K10<64 hex>::<user>:<password>` or a short token `<password>` (user
    /// `server`). Surrounding whitespace (e.g. the newline of a token file) is ignored.
    /// `K10::<user>:<password>` (no hash) is accepted with `ca_hash: None`.
    pub fn parse(s: &str) -> Result<Token> {
        let s = s.trim();
        if s.is_empty() {
            return Err(invalid("empty"));
        }
        if s.chars().any(char::is_control) {
            return Err(invalid("contains control characters"));
        }
        let Some(rest) = s.strip_prefix(PREFIX) else {
            // A short token is a bare password. One that contains "::" is almost certainly
            // a full token with a mangled prefix, which is better reported than accepted.
            if s.contains("::") {
                return Err(invalid("full tokens must start with \"K10\""));
            }
            return Ok(Token {
                ca_hash: None,
                username: SERVER_USER.to_owned(),
                password: s.to_owned(),
            });
        };
        let (hash, credentials) = rest
            .split_once("::")
            .ok_or_else(|| invalid("missing \"::\" after the CA hash"))?;
        let ca_hash = match hash {
            "" => None,
            h if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(h.to_ascii_lowercase())
            }
            h => {
                return Err(invalid(format!(
                    "CA hash must be 64 hex characters (SHA-256), got {} characters",
                    h.len()
                )))
            }
        };
        let (username, password) = credentials
            .split_once(':')
            .ok_or_else(|| invalid("missing \"<user>:<password>\" after \"::\""))?;
        if username.is_empty() {
            return Err(invalid("empty user name"));
        }
        if password.is_empty() {
            return Err(invalid("empty password"));
        }
        Ok(Token {
            ca_hash,
            username: username.to_owned(),
            password: password.to_owned(),
        })
    }

    /// `K10<hash>::<user>:<password>` (`K10::<user>:<password>` without a hash).
    pub fn to_string_full(&self) -> String {
        format!(
            "{PREFIX}{}::{}:{}",
            self.ca_hash.as_deref().unwrap_or(""),
            self.username,
            self.password
        )
    }
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidToken {
        reason: reason.into(),
    }
}

/// Lowercase hex SHA-256 of the PEM bytes, exactly as k3s hashes its CA bundle.
pub fn ca_hash(ca_pem: &str) -> String {
    let digest = Sha256::digest(ca_pem.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// Make sure `<data-dir>/server/token` exists and return the server token.
///
/// First run: the password is the password part of `requested` (`--token`, short or
/// full; the user name and CA hash in it are ignored) or 16 random bytes as 32 hex
/// characters. The file (mode 0600) holds `K10<ca_hash(server_ca_pem)>::server:<password>\n`.
///
/// Later runs: the stored password is kept. A `requested` token with a different
/// password is an error, since nodes already joined with the old one. When the CA hash
/// in the file is stale the file is rewritten with the current hash, as k3s rewrites
/// its token file on every start.
pub fn ensure_server_token(
    path: &Path,
    server_ca_pem: &str,
    requested: Option<&str>,
) -> Result<Token> {
    let requested = requested
        .filter(|r| !r.trim().is_empty())
        .map(Token::parse)
        .transpose()?;
    let hash = ca_hash(server_ca_pem);

    if let Some(stored) = read_optional(path)? {
        let stored = Token::parse(&stored).map_err(|e| match e {
            Error::InvalidToken { reason } => {
                Error::invalid(path, format!("invalid token: {reason}"))
            }
            other => other,
        })?;
        if let Some(req) = &requested {
            if req.password != stored.password {
                return Err(Error::TokenMismatch {
                    path: path.to_owned(),
                });
            }
        }
        let token = Token {
            ca_hash: Some(hash),
            username: SERVER_USER.to_owned(),
            password: stored.password.clone(),
        };
        if token != stored {
            write_token(path, &token)?;
        }
        return Ok(token);
    }

    let password = match requested {
        Some(req) => req.password,
        None => random_password(),
    };
    let token = Token {
        ca_hash: Some(hash),
        username: SERVER_USER.to_owned(),
        password,
    };
    write_token(path, &token)?;
    tracing::info!(path = %path.display(), "created server token");
    Ok(token)
}

/// The agent token (`--agent-token`), kept in `path` (`<data-dir>/server/agent-token`,
/// as k3s keeps it) in its full `K10<ca-hash>::node:<password>` form so that agents can
/// be given that file's content. A given token replaces the stored one; without one the
/// stored token stays in force across restarts; `None` when there never was one.
pub fn ensure_agent_token(
    path: &Path,
    server_ca_pem: &str,
    requested: Option<&Token>,
) -> Result<Option<Token>> {
    let password = match requested {
        Some(req) => req.password.clone(),
        None => match read_optional(path)? {
            Some(stored) => {
                Token::parse(&stored)
                    .map_err(|e| match e {
                        Error::InvalidToken { reason } => {
                            Error::invalid(path, format!("invalid token: {reason}"))
                        }
                        other => other,
                    })?
                    .password
            }
            None => return Ok(None),
        },
    };
    let token = Token {
        ca_hash: Some(ca_hash(server_ca_pem)),
        username: crate::join_token::AGENT_USER.to_owned(),
        password,
    };
    if read_optional(path)?.is_none_or(|stored| stored.trim() != token.to_string_full()) {
        write_token(path, &token)?;
    }
    Ok(Some(token))
}

fn write_token(path: &Path, token: &Token) -> Result<()> {
    let mut content = token.to_string_full();
    content.push('\n');
    write_file_with_mode(path, content.as_bytes(), 0o600)
}

fn random_password() -> String {
    let bytes: [u8; 16] = rand::random();
    let mut hex = String::with_capacity(32);
    for b in bytes {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn agent_token_is_kept_and_replaced_by_a_given_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent-token");
        assert_eq!(ensure_agent_token(&path, "CA", None).unwrap(), None);
        assert!(!path.exists());
        let given = Token::parse("first-secret").unwrap();
        let stored = ensure_agent_token(&path, "CA", Some(&given))
            .unwrap()
            .unwrap();
        assert_eq!(stored.username, "node");
        assert_eq!(stored.password, "first-secret");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.trim(),
            format!("K10{}::node:first-secret", ca_hash("CA"))
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A restart without the flag keeps it; a new flag value replaces it.
        assert_eq!(ensure_agent_token(&path, "CA", None).unwrap(), Some(stored));
        let other = Token::parse("second-secret").unwrap();
        let replaced = ensure_agent_token(&path, "CA", Some(&other))
            .unwrap()
            .unwrap();
        assert_eq!(replaced.password, "second-secret");
        assert_eq!(
            ensure_agent_token(&path, "CA", None)
                .unwrap()
                .unwrap()
                .password,
            "second-secret"
        );
    }

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn full_token_round_trips() {
        let s = format!("K10{HASH}::server:s3cret:with:colons");
        let t = Token::parse(&s).unwrap();
        assert_eq!(t.ca_hash.as_deref(), Some(HASH));
        assert_eq!(t.username, "server");
        assert_eq!(t.password, "s3cret:with:colons");
        assert_eq!(t.to_string_full(), s);
        assert_eq!(Token::parse(&t.to_string_full()).unwrap(), t);
        // Upper-case hashes are normalised; surrounding whitespace is ignored.
        let upper = Token::parse(&format!(" K10{}::node:pw\n", HASH.to_uppercase())).unwrap();
        assert_eq!(upper.ca_hash.as_deref(), Some(HASH));
        assert_eq!(upper.username, "node");
    }

    #[test]
    fn short_token_is_a_server_password() {
        let t = Token::parse("abc:def").unwrap();
        assert_eq!(t.ca_hash, None);
        assert_eq!(t.username, "server");
        assert_eq!(t.password, "abc:def");
        assert_eq!(t.to_string_full(), "K10::server:abc:def");
        assert_eq!(Token::parse(&t.to_string_full()).unwrap(), t);
    }

    #[test]
    fn malformed_tokens_are_rejected_without_echoing_them() {
        let bad = [
            String::new(),
            "   ".into(),
            format!("K11{HASH}::server:pw"),           // wrong prefix
            format!("X10{HASH}::server:pw"),           // wrong prefix
            format!("K10{}::server:pw", &HASH[..63]),  // bad hash length
            format!("K10{HASH}00::server:pw"),         // bad hash length
            format!("K10{}g::server:pw", &HASH[..63]), // not hex
            format!("K10{HASH}server:pw"),             // no "::"
            format!("K10{HASH}::serverpw"),            // no user:password
            format!("K10{HASH}:::pw"),                 // empty user
            format!("K10{HASH}::server:"),             // empty password
            "pass\nword".into(),
        ];
        for s in bad {
            let err = Token::parse(&s).expect_err(&s.escape_debug().to_string());
            assert!(matches!(err, Error::InvalidToken { .. }));
            if s.len() > 3 {
                assert!(!err.to_string().contains(&s[3..]), "{err}");
            }
        }
    }

    #[test]
    fn debug_redacts_password() {
        let t = Token::parse("topsecret").unwrap();
        assert!(!format!("{t:?}").contains("topsecret"));
    }

    #[test]
    fn ca_hash_is_sha256_hex_of_pem() {
        // sha256("abc")
        assert_eq!(
            ca_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn server_token_is_created_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server/token");
        let ca = "-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n";
        let first = ensure_server_token(&path, ca, None).unwrap();
        assert_eq!(first.ca_hash.as_deref(), Some(ca_hash(ca).as_str()));
        assert_eq!(first.username, "server");
        assert_eq!(first.password.len(), 32);
        assert!(first.password.bytes().all(|b| b.is_ascii_hexdigit()));
        let content = std::fs::read_to_string(&path).unwrap();
        assert_eq!(content, format!("{}\n", first.to_string_full()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        assert_eq!(ensure_server_token(&path, ca, None).unwrap(), first);
        // Passing the same token again (short or full) is fine.
        assert_eq!(
            ensure_server_token(&path, ca, Some(&first.password)).unwrap(),
            first
        );
        assert_eq!(
            ensure_server_token(&path, ca, Some(&first.to_string_full())).unwrap(),
            first
        );
    }

    #[test]
    fn server_token_uses_requested_password_and_refuses_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let ca = "ca";
        let t = ensure_server_token(&path, ca, Some("my-token")).unwrap();
        assert_eq!(t.password, "my-token");
        assert_eq!(
            t.to_string_full(),
            format!("K10{}::server:my-token", ca_hash(ca))
        );

        let err = ensure_server_token(&path, ca, Some("other-token")).unwrap_err();
        assert!(matches!(err, Error::TokenMismatch { .. }));
        let msg = err.to_string();
        assert!(
            !msg.contains("my-token") && !msg.contains("other-token"),
            "{msg}"
        );
        // The file is untouched.
        assert_eq!(ensure_server_token(&path, ca, None).unwrap(), t);
    }

    #[test]
    fn stale_ca_hash_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let old = ensure_server_token(&path, "old ca", Some("pw")).unwrap();
        let new = ensure_server_token(&path, "new ca", None).unwrap();
        assert_eq!(new.password, old.password);
        assert_eq!(new.ca_hash.as_deref(), Some(ca_hash("new ca").as_str()));
        let content = std::fs::read_to_string(&path).unwrap();
        assert_eq!(content.trim_end(), new.to_string_full());
    }
}
