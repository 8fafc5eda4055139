//! The error type of the control loops, and helpers to tell a missing object or a lost
//! race (both usually harmless for a reconcile) from a real failure.

use thiserror::Error;

/// What can stop a controller or a reconcile.
#[derive(Debug, Error)]
pub enum Error {
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{controller} stopped: {reason}")]
    Stopped { controller: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach what was being attempted to a kube error: `api.create(..).await.context("creating pod web-1")`.
pub trait KubeContext<T> {
    fn context(self, action: impl Into<String>) -> Result<T>;
}

impl<T> KubeContext<T> for std::result::Result<T, kube::Error> {
    fn context(self, action: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::Kube {
            action: action.into(),
            source,
        })
    }
}

/// True for a 404 from the API (the object is gone: usually nothing left to do).
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404)
}

/// True for a 409 (a conflicting write or an object that already exists).
pub fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 409)
}
