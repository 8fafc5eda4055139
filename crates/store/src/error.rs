//! The store's error type. Variants carry the data a caller needs to build a
//! Kubernetes status (which key, which revisions) so the API server never parses text.

/// Result alias used throughout the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a [`crate::Backend`] operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    #[error("key {key} not found")]
    NotFound { key: String },
    #[error("key {key} was modified: expected revision {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: i64,
        actual: i64,
    },
    #[error("revision {requested} has been compacted; oldest available is {compacted}")]
    Compacted { requested: i64, compacted: i64 },
    #[error("revision {requested} is in the future (current {current})")]
    FutureRevision { requested: i64, current: i64 },
    #[error("datastore error: {context}: {source}")]
    Backend {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("datastore is closed")]
    Closed,
}

impl Error {
    /// Wraps a storage-engine error with a short description of what was being done.
    pub(crate) fn backend(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Backend {
            context: context.into(),
            source: source.into(),
        }
    }

    /// True when a watch ended because its consumer fell behind (see [`WatchLagged`]);
    /// the client should re-list and start a new watch, as after `Compacted`.
    pub fn is_watch_lagged(&self) -> bool {
        matches!(self, Error::Backend { source, .. } if source.is::<WatchLagged>())
    }
}

/// Source of the `Error::Backend` item that ends a watch whose consumer read too slowly
/// and would otherwise have missed events. The API server maps it like `Compacted`
/// (410 Gone / "too old resource version") so the client re-lists.
#[derive(Debug, thiserror::Error)]
#[error("watch consumer fell behind after revision {last_delivered}; {missed} event batches were dropped")]
pub struct WatchLagged {
    /// Last revision the stream delivered before it ended.
    pub last_delivered: i64,
    /// How many committed batches the watcher missed.
    pub missed: u64,
}
