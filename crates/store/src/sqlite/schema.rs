//! Database layout and connection setup.
//!
//! `log` holds one row per write (the history etcd would keep): `deleted = 1` marks a
//! delete tombstone, `prev_revision` points at the key's previous row (0 for a create),
//! which is how watch events get their `prev` value and how compaction finds superseded
//! rows. Keys are stored as BLOBs so SQLite orders them bytewise, like etcd. `meta` holds
//! the revision counter and the compacted revision, because compaction may delete the
//! newest row (a tombstone) and revisions must never go backwards across restarts.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::{Error, Result};

pub(crate) const META_REVISION: &str = "revision";
pub(crate) const META_COMPACTED: &str = "compacted";
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    revision        INTEGER PRIMARY KEY,
    key             BLOB    NOT NULL,
    deleted         INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision   INTEGER NOT NULL,
    value           BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_revision ON log (key, revision);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0);
";

/// Opens the writer connection, creating the file and schema if needed.
pub(crate) fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)
        .map_err(|e| Error::backend(format!("opening {}", path.display()), e))?;
    configure(&conn).map_err(|e| Error::backend("configuring database", e))?;
    // auto_vacuum can only be chosen before the first table exists; INCREMENTAL lets
    // compaction hand freed pages back to the filesystem without a full VACUUM.
    let fresh: bool = conn
        .query_row(
            "SELECT count(*) = 0 FROM sqlite_master WHERE type = 'table'",
            [],
            |row| row.get(0),
        )
        .map_err(|e| Error::backend("inspecting schema", e))?;
    if fresh {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(|e| Error::backend("setting auto_vacuum", e))?;
    }
    conn.execute_batch(SCHEMA)
        .map_err(|e| Error::backend("creating schema", e))?;
    Ok(conn)
}

/// Opens a connection for history reads (old-revision lists, watch replay).
pub(crate) fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::backend(format!("opening {} for reading", path.display()), e))?;
    configure(&conn).map_err(|e| Error::backend("configuring reader", e))?;
    conn.pragma_update(None, "query_only", true)
        .map_err(|e| Error::backend("configuring reader", e))?;
    Ok(conn)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL fsyncs the WAL on every commit: an acknowledged write survives a power loss,
    // not just kill -9. Group commit in the writer amortises the fsync.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Hot data lives in the in-memory index; keep SQLite's own cache small (2 MiB).
    conn.pragma_update(None, "cache_size", -2048)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

pub(crate) fn read_meta(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |row| {
        row.get(0)
    })
    .optional()
    .map(|v| v.unwrap_or(0))
}
