//! Revisioned key-value store for the k3rs API server (the k3s "kine" idea).
//!
//! Every write (create, update, delete) gets the next value of one global revision
//! counter, exactly like etcd. Reads can be served at the current revision or at an
//! older, not yet compacted one (consistent paging), and a watch replays every event
//! after a given revision and then follows live writes without gaps or duplicates.
//!
//! The [`Backend`] trait is what the API server programs against; it must stay free of
//! storage specifics so that an etcd backend can sit behind it later. The embedded
//! default is [`Sqlite`]. Nothing in this crate knows about HTTP or Kubernetes objects:
//! keys are plain strings ordered bytewise and values are opaque bytes.

mod backend;
mod compactor;
mod error;
mod key_range;
mod sqlite;

pub use backend::{Backend, Event, EventKind, KeyValue, ListOptions, ListResult, WatchStream};
pub use compactor::spawn_compactor;
pub use error::{Error, Result, WatchLagged};
pub use sqlite::{Sqlite, SqliteOptions};
