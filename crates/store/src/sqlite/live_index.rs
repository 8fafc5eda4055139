//! In-memory copy of the current live state, so reads at the current revision (the
//! API server's hot path) never touch SQLite or wait for the writer's fsync.
//!
//! Only the writer thread mutates it, after its transaction commits, and it updates the
//! map and the revision under one lock, so a reader always sees a state that exists in
//! the database at exactly `revision`. Values are behind `Arc` so that a list holds the
//! lock only long enough to collect pointers; the byte copies happen outside it.
//! Memory cost is roughly the size of all live values (3,000 pods of ~3 KB ≈ 9 MB).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use rusqlite::Connection;

use crate::KeyValue;

#[derive(Default)]
pub(crate) struct LiveState {
    pub(crate) revision: i64,
    pub(crate) compacted: i64,
    pub(crate) keys: BTreeMap<String, Arc<KeyValue>>,
}

/// A page collected under the read lock.
pub(crate) struct LivePage {
    pub(crate) items: Vec<Arc<KeyValue>>,
    pub(crate) more: bool,
    pub(crate) remaining: Option<i64>,
}

impl LiveState {
    /// Loads the latest live row of every key.
    pub(crate) fn load(conn: &Connection, revision: i64, compacted: i64) -> rusqlite::Result<Self> {
        // SQLite takes bare columns from the row holding MAX(revision).
        let mut stmt = conn.prepare(
            "SELECT key, value, create_revision, revision, deleted FROM
               (SELECT key, value, create_revision, MAX(revision) AS revision, deleted
                  FROM log GROUP BY key)
             WHERE deleted = 0",
        )?;
        let mut keys = BTreeMap::new();
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let key: Vec<u8> = row.get(0)?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let kv = KeyValue {
                key: key.clone(),
                value: row.get(1)?,
                create_revision: row.get(2)?,
                mod_revision: row.get(3)?,
            };
            keys.insert(key, Arc::new(kv));
        }
        Ok(LiveState {
            revision,
            compacted,
            keys,
        })
    }

    pub(crate) fn page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
    ) -> LivePage {
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let mut range = self
            .keys
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v);
        let limit = limit.unwrap_or(usize::MAX);
        let items: Vec<_> = range.by_ref().take(limit).cloned().collect();
        let remaining = range.count() as i64;
        LivePage {
            items,
            more: remaining > 0,
            remaining: (remaining > 0).then_some(remaining),
        }
    }

    pub(crate) fn count(&self, prefix: &str) -> i64 {
        self.keys
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .count() as i64
    }
}
