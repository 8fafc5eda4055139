//! Behaviour tests for the SQLite backend through the public `Backend` trait.

// Test tasks need no span: spawning them bare is fine.
#![allow(clippy::disallowed_methods)]

mod compactor;
mod concurrency;
mod crud;
mod durability;
mod paging;
mod watch;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k3rs_store::{Backend, Sqlite, SqliteOptions};

/// Opens a store with the periodic compactor off, so tests control compaction.
pub async fn open(path: &Path) -> Arc<Sqlite> {
    Sqlite::open(
        path,
        SqliteOptions {
            compact_interval: Duration::ZERO,
            ..SqliteOptions::default()
        },
    )
    .await
    .expect("open store")
}

pub fn db_path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("server/db/state.db")
}

pub async fn value_of(store: &dyn Backend, key: &str) -> Option<String> {
    store
        .get(key)
        .await
        .unwrap()
        .map(|kv| String::from_utf8(kv.value).unwrap())
}
