//! The single writer thread: owns the read-write SQLite connection and applies every
//! write with group commit.
//!
//! SQLite allows one writer at a time and each commit costs an fsync, so instead of
//! letting callers contend for the lock, all writes queue on a channel. The thread takes
//! whatever is queued (up to `MAX_BATCH`), checks each request against the live state
//! including the earlier requests of the same batch, gives each accepted write the next
//! revision, commits once, then updates the in-memory index, publishes the events (in
//! revision order, since there is only this one publisher) and answers the callers.
//! Compaction runs here too, in small chunks, so it never holds the write lock long.

use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection, Transaction};
use tokio::sync::{broadcast, oneshot};
use tracing::{debug, warn};

use super::schema::{META_COMPACTED, META_REVISION};
use super::{EventBatch, Shared};
use crate::{Error, Event, EventKind, KeyValue, Result};

/// Upper bound on writes per transaction; keeps a commit's latency bounded.
const MAX_BATCH: usize = 512;
/// Pages handed back to the filesystem per maintenance round (4 KiB each).
const VACUUM_PAGES: i64 = 4096;

pub(crate) enum WriteOp {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: i64,
    },
    Delete {
        key: String,
        expected: Option<i64>,
    },
}

pub(crate) enum Command {
    Write {
        op: WriteOp,
        reply: oneshot::Sender<Result<KeyValue>>,
    },
    /// Compact up to `revision`; the caller splits big ranges into chunks.
    Compact {
        revision: i64,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Return freed pages and truncate the WAL after a compaction.
    Maintain { reply: oneshot::Sender<()> },
}

type Pending = (WriteOp, oneshot::Sender<Result<KeyValue>>);

pub(crate) struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    events: broadcast::Sender<EventBatch>,
    /// Last committed revision (the writer is the only one that advances it).
    revision: i64,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        shared: Arc<Shared>,
        events: broadcast::Sender<EventBatch>,
        revision: i64,
    ) -> Self {
        Writer {
            conn,
            shared,
            events,
            revision,
        }
    }

    /// Runs until every command sender is gone, then checkpoints the WAL.
    pub(crate) fn run(mut self, commands: Receiver<Command>) {
        let mut deferred: Option<Command> = None;
        loop {
            let command = match deferred.take() {
                Some(command) => command,
                None => match commands.recv() {
                    Ok(command) => command,
                    Err(_) => break,
                },
            };
            match command {
                Command::Write { op, reply } => {
                    let mut batch = vec![(op, reply)];
                    while batch.len() < MAX_BATCH {
                        match commands.try_recv() {
                            Ok(Command::Write { op, reply }) => batch.push((op, reply)),
                            Ok(other) => {
                                deferred = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit_batch(batch);
                }
                Command::Compact { revision, reply } => {
                    let _ = reply.send(self.compact(revision));
                }
                Command::Maintain { reply } => {
                    self.maintain();
                    let _ = reply.send(());
                }
            }
        }
        self.maintain();
        debug!(revision = self.revision, "store writer stopped");
    }

    fn commit_batch(&mut self, batch: Vec<Pending>) {
        let (ops, senders): (Vec<WriteOp>, Vec<_>) = batch.into_iter().unzip();
        let mut overlay: HashMap<String, Option<Arc<KeyValue>>> = HashMap::new();
        let mut results = Vec::with_capacity(ops.len());
        let mut events = Vec::with_capacity(ops.len());
        let outcome = {
            let shared = Arc::clone(&self.shared);
            let live = shared.live();
            let mut next = self.revision;
            let result = (|| -> rusqlite::Result<()> {
                let tx = self.conn.transaction()?;
                for op in ops {
                    let current = |key: &str| match overlay.get(key) {
                        Some(entry) => entry.clone(),
                        None => live.keys.get(key).cloned(),
                    };
                    match apply(&tx, op, next + 1, current)? {
                        Ok(event) => {
                            next += 1;
                            let kv = event.kv.clone();
                            let after = match event.kind {
                                EventKind::Put => Some(Arc::new(kv.clone())),
                                EventKind::Delete => None,
                            };
                            overlay.insert(kv.key.clone(), after);
                            events.push(event);
                            results.push(Ok(kv));
                        }
                        Err(rejected) => results.push(Err(rejected)),
                    }
                }
                if next != self.revision {
                    tx.execute(
                        "UPDATE meta SET value = ?1 WHERE name = ?2",
                        params![next, META_REVISION],
                    )?;
                }
                tx.commit()
            })();
            result.map(|()| next)
        };

        match outcome {
            Ok(next) => {
                if next != self.revision {
                    let mut live = self.shared.live_mut();
                    for (key, value) in overlay {
                        match value {
                            Some(kv) => live.keys.insert(key, kv),
                            None => live.keys.remove(&key),
                        };
                    }
                    live.revision = next;
                    drop(live);
                    self.revision = next;
                    // No receivers is not an error: nobody is watching.
                    let _ = self.events.send(Arc::from(events));
                }
                for (reply, result) in senders.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                // The transaction rolled back when it was dropped; nothing was applied.
                warn!(error = %error, "store write batch failed");
                for reply in senders {
                    let _ = reply.send(Err(Error::backend(
                        "committing write batch",
                        error.to_string(),
                    )));
                }
            }
        }
    }

    fn compact(&mut self, revision: i64) -> Result<()> {
        let compacted = self.shared.live().compacted;
        if revision <= compacted {
            return Ok(());
        }
        if revision > self.revision {
            return Err(Error::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        let result = (|| -> rusqlite::Result<()> {
            let tx = self.conn.transaction()?;
            // A row is superseded at `revision` when a later row of the same key at or
            // below `revision` points back at it; rows superseded earlier are gone already.
            tx.execute(
                "DELETE FROM log WHERE revision IN (
                    SELECT prev_revision FROM log
                     WHERE revision > ?1 AND revision <= ?2 AND prev_revision > 0)",
                params![compacted, revision],
            )?;
            // Tombstones only matter to watches and old reads, which now start after them.
            tx.execute(
                "DELETE FROM log WHERE revision > ?1 AND revision <= ?2 AND deleted = 1",
                params![compacted, revision],
            )?;
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE name = ?2",
                params![revision, META_COMPACTED],
            )?;
            tx.commit()
        })();
        result.map_err(|e| Error::backend(format!("compacting to revision {revision}"), e))?;
        self.shared.live_mut().compacted = revision;
        Ok(())
    }

    /// Best effort housekeeping; failures only cost disk space.
    fn maintain(&mut self) {
        if let Err(error) = self
            .conn
            .execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES});"))
        {
            warn!(error = %error, "incremental vacuum failed");
        }
        // RESTART/TRUNCATE checkpoints wait for readers through the busy handler; with
        // the timeout at zero a busy checkpoint just gives up instead of stalling writes.
        let _ = self.conn.busy_timeout(Duration::ZERO);
        if let Err(error) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            debug!(error = %error, "wal checkpoint skipped");
        }
        let _ = self.conn.busy_timeout(super::schema::BUSY_TIMEOUT);
    }
}

/// Checks one write against the state before it and appends its log row. The outer
/// error aborts the batch (SQLite failed); the inner one rejects only this write.
fn apply(
    tx: &Transaction<'_>,
    op: WriteOp,
    revision: i64,
    current: impl Fn(&str) -> Option<Arc<KeyValue>>,
) -> rusqlite::Result<Result<Event>> {
    let (event, deleted) = match op {
        WriteOp::Create { key, value } => {
            if current(&key).is_some() {
                return Ok(Err(Error::AlreadyExists { key }));
            }
            let kv = KeyValue {
                key,
                value,
                create_revision: revision,
                mod_revision: revision,
            };
            let event = Event {
                kind: EventKind::Put,
                kv,
                prev: None,
            };
            (event, false)
        }
        WriteOp::Update {
            key,
            value,
            expected,
        } => {
            let Some(prev) = current(&key) else {
                return Ok(Err(Error::NotFound { key }));
            };
            if prev.mod_revision != expected {
                return Ok(Err(Error::Conflict {
                    key,
                    expected,
                    actual: prev.mod_revision,
                }));
            }
            let kv = KeyValue {
                key,
                value,
                create_revision: prev.create_revision,
                mod_revision: revision,
            };
            let event = Event {
                kind: EventKind::Put,
                kv,
                prev: Some((*prev).clone()),
            };
            (event, false)
        }
        WriteOp::Delete { key, expected } => {
            let Some(prev) = current(&key) else {
                return Ok(Err(Error::NotFound { key }));
            };
            if let Some(expected) = expected {
                if prev.mod_revision != expected {
                    return Ok(Err(Error::Conflict {
                        key,
                        expected,
                        actual: prev.mod_revision,
                    }));
                }
            }
            let kv = KeyValue {
                mod_revision: revision,
                ..(*prev).clone()
            };
            let event = Event {
                kind: EventKind::Delete,
                kv,
                prev: Some((*prev).clone()),
            };
            (event, true)
        }
    };
    let prev_revision = event.prev.as_ref().map_or(0, |p| p.mod_revision);
    // Tombstones store no value: the deleted value is the row prev_revision points at.
    let value: &[u8] = if deleted { &[] } else { &event.kv.value };
    tx.prepare_cached(
        "INSERT INTO log (revision, key, deleted, create_revision, prev_revision, value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        revision,
        event.kv.key.as_bytes(),
        deleted,
        event.kv.create_revision,
        prev_revision,
        value
    ])?;
    Ok(Ok(event))
}
