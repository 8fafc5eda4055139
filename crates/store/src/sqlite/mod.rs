//! The embedded default backend: SQLite in WAL mode, one writer thread with group
//! commit, an in-memory index of the live keys for fast current reads, and the history
//! log in SQLite for watches and reads at older revisions.
//!
//! Data flow: a write goes over a channel to the writer thread (`writer.rs`), which
//! commits it, updates the index (`live_index.rs`) and broadcasts the event. Reads at
//! the current revision come from the index; older reads and watch replays query the
//! log on separate read connections (`history.rs`, `watch.rs`).

mod history;
mod live_index;
mod schema;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{broadcast, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::info;

use self::history::History;
use self::live_index::LiveState;
use self::writer::{Command, WriteOp, Writer};
use crate::compactor::spawn_weak_compactor;
use crate::{Backend, Error, Event, KeyValue, ListOptions, ListResult, Result, WatchStream};

/// Events committed together, in revision order.
pub(crate) type EventBatch = Arc<[Event]>;

/// How many committed batches a watcher may fall behind before its stream ends.
const WATCH_BUFFER: usize = 4096;
/// Revisions deleted per compaction transaction, so writes interleave with compaction.
const COMPACT_CHUNK: i64 = 1000;

/// Tuning for [`Sqlite::open`].
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// How often the built-in compactor runs; `Duration::ZERO` disables it.
    pub compact_interval: Duration,
    /// Compaction keeps at least this many recent revisions of history.
    pub retain_revisions: i64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            compact_interval: Duration::from_secs(5 * 60),
            retain_revisions: 1000,
        }
    }
}

/// State shared between the async front and the writer thread.
pub(crate) struct Shared {
    live: RwLock<LiveState>,
}

impl Shared {
    pub(crate) fn live(&self) -> RwLockReadGuard<'_, LiveState> {
        self.live.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn live_mut(&self) -> RwLockWriteGuard<'_, LiveState> {
        self.live.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// SQLite-backed [`Backend`]. Open with [`Sqlite::open`]; call [`Backend::close`] on
/// shutdown so the WAL is checkpointed and background work stops.
pub struct Sqlite {
    path: PathBuf,
    shared: Arc<Shared>,
    history: Arc<History>,
    /// `None` once closed; dropping the last sender stops the writer thread.
    commands: RwLock<Option<mpsc::Sender<Command>>>,
    /// Kept only to subscribe new watches; `None` once closed.
    events: RwLock<Option<broadcast::Sender<EventBatch>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    compactor: CancellationToken,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Sqlite {
    /// Opens (creating parent directories, the file and the schema if needed) the
    /// database at `path`, loads the live keys into memory, starts the writer thread and,
    /// unless disabled in `opts`, the periodic compactor.
    pub async fn open(path: &Path, opts: SqliteOptions) -> Result<Arc<Self>> {
        let path = path.to_path_buf();
        let load_path = path.clone();
        let (conn, state) = tokio::task::spawn_blocking(move || -> Result<_> {
            if let Some(parent) = load_path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    Error::backend(format!("creating directory {}", parent.display()), e)
                })?;
            }
            let conn = schema::open_writer(&load_path)?;
            let load = || -> rusqlite::Result<LiveState> {
                let revision = schema::read_meta(&conn, schema::META_REVISION)?;
                // Defensive: the counter must never fall behind the log it numbers.
                let logged: i64 =
                    conn.query_row("SELECT coalesce(max(revision), 0) FROM log", [], |r| {
                        r.get(0)
                    })?;
                let compacted = schema::read_meta(&conn, schema::META_COMPACTED)?;
                LiveState::load(&conn, revision.max(logged), compacted)
            };
            let state = load().map_err(|e| Error::backend("loading live keys", e))?;
            Ok((conn, state))
        })
        .await
        .map_err(|e| Error::backend("opening datastore", e))??;

        info!(
            path = %path.display(),
            revision = state.revision,
            compacted = state.compacted,
            keys = state.keys.len(),
            "opened datastore"
        );
        let revision = state.revision;
        let shared = Arc::new(Shared {
            live: RwLock::new(state),
        });
        let (events, _) = broadcast::channel(WATCH_BUFFER);
        let (commands, receiver) = mpsc::channel();
        let writer = Writer::new(conn, Arc::clone(&shared), events.clone(), revision);
        let writer_thread = std::thread::Builder::new()
            .name("k3rs-store-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| Error::backend("starting writer thread", e))?;

        let store = Arc::new(Sqlite {
            history: Arc::new(History::new(path.clone())),
            path,
            shared,
            commands: RwLock::new(Some(commands)),
            events: RwLock::new(Some(events)),
            writer_thread: Mutex::new(Some(writer_thread)),
            closed: AtomicBool::new(false),
            compactor: CancellationToken::new(),
        });
        if !opts.compact_interval.is_zero() {
            spawn_weak_compactor(
                Arc::downgrade(&store),
                opts.compact_interval,
                opts.retain_revisions,
                store.compactor.clone(),
            );
        }
        Ok(store)
    }

    /// The database file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn ensure_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn send(&self, command: Command) -> Result<()> {
        let commands = self.commands.read().unwrap_or_else(PoisonError::into_inner);
        let sender = commands.as_ref().ok_or(Error::Closed)?;
        sender.send(command).map_err(|_| Error::Closed)
    }

    async fn write(&self, op: WriteOp) -> Result<KeyValue> {
        let (reply, response) = oneshot::channel();
        self.send(Command::Write { op, reply })?;
        response.await.map_err(|_| Error::Closed)?
    }
}

#[async_trait::async_trait]
impl Backend for Sqlite {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.ensure_open()?;
        let found = self.shared.live().keys.get(key).cloned();
        Ok(found.map(|kv| (*kv).clone()))
    }

    async fn list(&self, opts: ListOptions<'_>) -> Result<ListResult> {
        self.ensure_open()?;
        // The guard must not live across the await below (it is not Send), hence the block.
        let revision = {
            let live = self.shared.live();
            let revision = opts.revision.unwrap_or(live.revision);
            if revision == live.revision {
                let page = live.page(opts.prefix, opts.start_after, opts.limit);
                drop(live);
                // Copy values outside the lock so the writer is never held up by a list.
                return Ok(ListResult {
                    items: page.items.iter().map(|kv| (**kv).clone()).collect(),
                    revision,
                    more: page.more,
                    remaining: page.remaining,
                });
            }
            if revision > live.revision {
                return Err(Error::FutureRevision {
                    requested: revision,
                    current: live.revision,
                });
            }
            if revision < live.compacted {
                return Err(Error::Compacted {
                    requested: revision,
                    compacted: live.compacted,
                });
            }
            revision
        };
        self.history
            .list_at(
                opts.prefix.to_owned(),
                opts.start_after.map(str::to_owned),
                opts.limit,
                revision,
            )
            .await
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        self.ensure_open()?;
        Ok(self.shared.live().count(prefix))
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        self.write(WriteOp::Create {
            key: key.to_owned(),
            value,
        })
        .await
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected_revision: i64) -> Result<KeyValue> {
        self.write(WriteOp::Update {
            key: key.to_owned(),
            value,
            expected: expected_revision,
        })
        .await
    }

    async fn delete(&self, key: &str, expected_revision: Option<i64>) -> Result<KeyValue> {
        self.write(WriteOp::Delete {
            key: key.to_owned(),
            expected: expected_revision,
        })
        .await
    }

    async fn watch(&self, prefix: &str, after_revision: i64) -> Result<WatchStream> {
        self.ensure_open()?;
        // Subscribe before reading the revision: see watch.rs for why this order matters.
        let receiver = self
            .events
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .ok_or(Error::Closed)?
            .subscribe();
        let (upto, compacted) = {
            let live = self.shared.live();
            (live.revision, live.compacted)
        };
        if after_revision < compacted {
            return Err(Error::Compacted {
                requested: after_revision,
                compacted,
            });
        }
        Ok(watch::stream(
            Arc::clone(&self.history),
            receiver,
            prefix.to_owned(),
            after_revision,
            upto,
        ))
    }

    async fn current_revision(&self) -> Result<i64> {
        self.ensure_open()?;
        Ok(self.shared.live().revision)
    }

    async fn compacted_revision(&self) -> Result<i64> {
        self.ensure_open()?;
        Ok(self.shared.live().compacted)
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        self.ensure_open()?;
        let (current, mut compacted) = {
            let live = self.shared.live();
            (live.revision, live.compacted)
        };
        if revision > current {
            return Err(Error::FutureRevision {
                requested: revision,
                current,
            });
        }
        if revision <= compacted {
            return Ok(());
        }
        // Small steps: each is one short transaction on the writer thread, so writes
        // queued behind compaction wait for one chunk at most.
        while compacted < revision {
            let step = revision.min(compacted + COMPACT_CHUNK);
            let (reply, response) = oneshot::channel();
            self.send(Command::Compact {
                revision: step,
                reply,
            })?;
            response.await.map_err(|_| Error::Closed)??;
            compacted = step;
        }
        let (reply, response) = oneshot::channel();
        self.send(Command::Maintain { reply })?;
        response.await.map_err(|_| Error::Closed)?;
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.compactor.cancel();
        // Dropping the senders lets the writer finish what is queued, checkpoint and
        // exit; watches see the broadcast close and end with `Closed`.
        self.commands
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.events
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let thread = self
            .writer_thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| Error::backend("stopping writer", e))?
                .map_err(|_| Error::backend("stopping writer", "writer thread panicked"))?;
        }
        info!(path = %self.path.display(), "closed datastore");
        Ok(())
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        // Without close() the writer still drains its queue and exits on its own once
        // the command sender (dropped with `self`) is gone.
        self.compactor.cancel();
    }
}
