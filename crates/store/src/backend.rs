//! The storage contract the API server is written against, and its value types.
//!
//! Keep storage-engine details out of here: the SQLite backend and a later etcd backend
//! must both fit behind [`Backend`] unchanged.

use crate::Result;

/// One live key as stored: its value and the revisions that created and last modified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the create that started this incarnation of the key.
    pub create_revision: i64,
    /// Revision of the last write to the key (for a deleted key: the delete's revision).
    pub mod_revision: i64,
}

/// What kind of write produced an [`Event`]. Creates and updates are both `Put`
/// (distinguished by `prev`), as in etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One committed write, as seen by a watch. Its revision is `kv.mod_revision`.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventKind,
    /// The new value; for `Delete` the last value with `mod_revision` = the delete's revision.
    pub kv: KeyValue,
    /// The value before this event; `None` for a create.
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision this event was committed at.
    pub fn revision(&self) -> i64 {
        self.kv.mod_revision
    }
}

/// A page of a prefix listing.
#[derive(Clone, Debug)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// The revision the list was read at; pass it back as `ListOptions::revision` to read
    /// further pages from the same snapshot, or to `watch` to follow changes after it.
    pub revision: i64,
    /// True when more items follow the last one returned.
    pub more: bool,
    /// How many items follow the last one returned, when `more` is true.
    pub remaining: Option<i64>,
}

/// What to list.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListOptions<'a> {
    /// Only keys starting with this prefix (byte order); `""` lists everything.
    pub prefix: &'a str,
    /// Exclusive lower bound, normally the last key of the previous page.
    pub start_after: Option<&'a str>,
    /// At most this many items; `None` = all.
    pub limit: Option<usize>,
    /// Read at this revision (consistent paging); `None` = current.
    pub revision: Option<i64>,
}

/// Stream of watch events; an `Err` item is always the last item.
pub type WatchStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<Event>> + Send>>;

/// A revisioned key-value store with etcd semantics.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;
    async fn list(&self, opts: ListOptions<'_>) -> Result<ListResult>;
    /// Number of live keys starting with `prefix`, at the current revision.
    async fn count(&self, prefix: &str) -> Result<i64>;
    /// Create; `AlreadyExists` if the key is live.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue>;
    /// Compare-and-swap on the previous mod_revision. `NotFound` / `Conflict`.
    async fn update(&self, key: &str, value: Vec<u8>, expected_revision: i64) -> Result<KeyValue>;
    /// Delete, optionally only if mod_revision matches. Returns the deleted KeyValue
    /// with mod_revision = the delete's revision.
    async fn delete(&self, key: &str, expected_revision: Option<i64>) -> Result<KeyValue>;
    /// Every event with revision > `after_revision` for keys starting with `prefix`, in
    /// revision order, without gaps or duplicates, then live events until the stream is
    /// dropped. `Compacted` (from the call or as the first item) if `after_revision` is
    /// below the compacted revision. A consumer that falls too far behind gets an `Err`
    /// item (see [`crate::WatchLagged`]) and the stream ends: never a silent gap.
    async fn watch(&self, prefix: &str, after_revision: i64) -> Result<WatchStream>;
    async fn current_revision(&self) -> Result<i64>;
    async fn compacted_revision(&self) -> Result<i64>;
    /// Drop history at or below `revision` that is no longer the latest value of a key
    /// as of `revision`. Reads and watches at or after `revision` stay complete.
    async fn compact(&self, revision: i64) -> Result<()>;
    /// Flush and stop background work. Later calls fail with `Closed`.
    async fn close(&self) -> Result<()>;
}
