//! The crate's error type: every variant says which file or which operation failed,
//! and none of them carries key material or token passwords.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, writing or creating a file or directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A file exists but its content is unusable (bad PEM, key that does not match its
    /// certificate, a CA certificate without its key, ...).
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },

    /// rcgen refused to generate a key or certificate.
    #[error("generating {what}: {source}")]
    Generate { what: String, source: rcgen::Error },

    /// In-memory PEM or DER (not read from a file) could not be parsed.
    #[error("parsing {what}: {reason}")]
    Parse { what: String, reason: String },

    /// rustls rejected the certificate or key while building a TLS config.
    #[error("building TLS config: {source}")]
    Tls { source: rustls::Error },

    /// rustls rejected the client CA while building the client certificate verifier.
    #[error("building client certificate verifier: {source}")]
    ClientVerifier {
        source: rustls::server::VerifierBuilderError,
    },

    /// A join token is malformed. The reason never quotes the token.
    #[error("invalid token: {reason}")]
    InvalidToken { reason: String },

    /// `--token` differs from the token the server was first started with.
    #[error(
        "{}: the token given with --token does not match the token this server was created with; \
         a server's token cannot be changed (remove --token or pass the original value)",
        path.display()
    )]
    TokenMismatch { path: PathBuf },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn generate(what: impl Into<String>, source: rcgen::Error) -> Self {
        Error::Generate {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn parse(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Parse {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
