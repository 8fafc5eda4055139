//! Reads from the history log: lists at an older revision (consistent paging) and
//! the replay part of a watch.
//!
//! These run on blocking threads with their own read connections, so they never wait
//! for the writer (WAL readers see a snapshot). Each read runs inside one transaction
//! and checks the compacted revision from that same snapshot: compaction deletes rows
//! and raises the mark atomically, so a read either sees complete history or reports
//! `Compacted`, never a silent gap.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, Transaction};

use super::schema::{open_reader, read_meta, META_COMPACTED, META_REVISION};
use crate::key_range::prefix_end;
use crate::{Error, Event, EventKind, KeyValue, ListResult, Result};

/// Read connections kept open between calls; more are opened on demand.
const POOLED_READERS: usize = 2;

pub(crate) struct History {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
}

impl History {
    pub(crate) fn new(path: PathBuf) -> Self {
        History {
            path,
            pool: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` in a read transaction on a pooled connection, off the async runtime.
    async fn read<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let pooled = this
                .pool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let mut conn = match pooled {
                Some(conn) => conn,
                None => open_reader(&this.path)?,
            };
            let result = conn
                .transaction()
                .map_err(|e| Error::backend("starting read transaction", e))
                .and_then(|tx| read(&tx));
            let mut pool = this.pool.lock().unwrap_or_else(PoisonError::into_inner);
            if pool.len() < POOLED_READERS {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| Error::backend("history read task", e))?
    }

    /// Lists live keys under `prefix` as of `revision`.
    pub(crate) async fn list_at(
        self: &Arc<Self>,
        prefix: String,
        start_after: Option<String>,
        limit: Option<usize>,
        revision: i64,
    ) -> Result<ListResult> {
        self.read(move |tx| {
            check_revision(tx, revision)?;
            let items = query_keys(tx, &prefix, start_after.as_deref(), limit, revision)?;
            let mut more = false;
            let mut remaining = None;
            if let (Some(limit), Some(last)) = (limit, items.last()) {
                if items.len() >= limit {
                    let after = count_keys(tx, &prefix, &last.key, revision)?;
                    more = after > 0;
                    remaining = more.then_some(after);
                }
            }
            Ok(ListResult {
                items,
                revision,
                more,
                remaining,
            })
        })
        .await
    }

    /// Events for keys under `prefix` with `after < revision <= upto`, at most `limit`.
    /// Returns them with the revision the scan covered up to.
    pub(crate) async fn events(
        self: &Arc<Self>,
        prefix: String,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<(Vec<Event>, i64)> {
        self.read(move |tx| {
            let compacted = meta(tx, META_COMPACTED)?;
            if after < compacted {
                return Err(Error::Compacted {
                    requested: after,
                    compacted,
                });
            }
            query_events(tx, &prefix, after, upto, limit)
        })
        .await
    }
}

fn meta(tx: &Transaction<'_>, name: &str) -> Result<i64> {
    read_meta(tx, name).map_err(|e| Error::backend("reading store metadata", e))
}

fn check_revision(tx: &Transaction<'_>, revision: i64) -> Result<()> {
    let compacted = meta(tx, META_COMPACTED)?;
    if revision < compacted {
        return Err(Error::Compacted {
            requested: revision,
            compacted,
        });
    }
    let current = meta(tx, META_REVISION)?;
    if revision > current {
        return Err(Error::FutureRevision {
            requested: revision,
            current,
        });
    }
    Ok(())
}

/// `AND` terms selecting the rows of keys in the prefix range after `start_after`.
fn key_filter(prefix: &str, start_after: Option<&str>, params: &mut Vec<Value>) -> String {
    let mut sql = String::new();
    match start_after {
        Some(after) if after >= prefix => {
            sql.push_str(" AND key > ?");
            params.push(Value::Blob(after.as_bytes().to_vec()));
        }
        _ => {
            sql.push_str(" AND key >= ?");
            params.push(Value::Blob(prefix.as_bytes().to_vec()));
        }
    }
    if let Some(end) = prefix_end(prefix) {
        sql.push_str(" AND key < ?");
        params.push(Value::Blob(end));
    }
    sql
}

fn query_keys(
    tx: &Transaction<'_>,
    prefix: &str,
    start_after: Option<&str>,
    limit: Option<usize>,
    revision: i64,
) -> Result<Vec<KeyValue>> {
    let mut params = Vec::new();
    let filter = key_filter(prefix, start_after, &mut params);
    params.push(Value::Integer(revision));
    // Walking the (key, revision) index in key order lets LIMIT stop early; for each
    // row the correlated lookup keeps only the key's newest row at or before
    // `revision`, and keys whose newest row is a tombstone did not exist then.
    let mut sql = format!(
        "SELECT key, value, create_revision, revision FROM log l
          WHERE deleted = 0{filter}
            AND revision = (SELECT max(revision) FROM log m
                             WHERE m.key = l.key AND m.revision <= ?)
          ORDER BY key"
    );
    if let Some(limit) = limit {
        sql.push_str(" LIMIT ?");
        params.push(Value::Integer(limit.min(i64::MAX as usize) as i64));
    }
    let run = || -> rusqlite::Result<Vec<KeyValue>> {
        let mut stmt = tx.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(params.iter()), |row| {
            let key: Vec<u8> = row.get(0)?;
            Ok(KeyValue {
                key: String::from_utf8_lossy(&key).into_owned(),
                value: row.get(1)?,
                create_revision: row.get(2)?,
                mod_revision: row.get(3)?,
            })
        })?;
        rows.collect()
    };
    run().map_err(|e| Error::backend(format!("listing {prefix} at revision {revision}"), e))
}

fn count_keys(tx: &Transaction<'_>, prefix: &str, after: &str, revision: i64) -> Result<i64> {
    let mut params = vec![Value::Integer(revision)];
    let filter = key_filter(prefix, Some(after), &mut params);
    let sql = format!(
        "SELECT count(*) FROM
           (SELECT MAX(revision), deleted FROM log WHERE revision <= ?{filter} GROUP BY key)
         WHERE deleted = 0"
    );
    tx.query_row(&sql, params_from_iter(params.iter()), |row| row.get(0))
        .map_err(|e| Error::backend(format!("counting {prefix} at revision {revision}"), e))
}

fn query_events(
    tx: &Transaction<'_>,
    prefix: &str,
    after: i64,
    upto: i64,
    limit: usize,
) -> Result<(Vec<Event>, i64)> {
    let mut params = vec![Value::Integer(after), Value::Integer(upto)];
    let mut filter = String::new();
    if !prefix.is_empty() {
        filter.push_str(" AND l.key >= ?");
        params.push(Value::Blob(prefix.as_bytes().to_vec()));
        if let Some(end) = prefix_end(prefix) {
            filter.push_str(" AND l.key < ?");
            params.push(Value::Blob(end));
        }
    }
    params.push(Value::Integer(limit as i64));
    let sql = format!(
        "SELECT l.revision, l.key, l.deleted, l.create_revision, l.value,
                l.prev_revision, p.value, p.create_revision
           FROM log l LEFT JOIN log p ON p.revision = l.prev_revision
          WHERE l.revision > ? AND l.revision <= ?{filter}
          ORDER BY l.revision LIMIT ?"
    );
    let run = || -> rusqlite::Result<Vec<Event>> {
        let mut stmt = tx.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(params.iter()))?;
        let mut events = Vec::new();
        while let Some(row) = rows.next()? {
            let revision: i64 = row.get(0)?;
            let key: Vec<u8> = row.get(1)?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let deleted: bool = row.get(2)?;
            let create_revision: i64 = row.get(3)?;
            let prev_revision: i64 = row.get(5)?;
            let prev = match row.get::<_, Option<Vec<u8>>>(6)? {
                Some(value) => Some(KeyValue {
                    key: key.clone(),
                    value,
                    create_revision: row.get(7)?,
                    mod_revision: prev_revision,
                }),
                None => None,
            };
            let value = if deleted {
                // A tombstone's value is its predecessor's; compaction keeps that row
                // for as long as the tombstone is above the compacted revision.
                prev.as_ref().map(|p| p.value.clone()).unwrap_or_default()
            } else {
                row.get(4)?
            };
            events.push(Event {
                kind: if deleted {
                    EventKind::Delete
                } else {
                    EventKind::Put
                },
                kv: KeyValue {
                    key,
                    value,
                    create_revision,
                    mod_revision: revision,
                },
                prev,
            });
        }
        Ok(events)
    };
    let events = run().map_err(|e| Error::backend("replaying history", e))?;
    let covered = if events.len() >= limit {
        events.last().map_or(upto, Event::revision)
    } else {
        upto
    };
    Ok((events, covered))
}
