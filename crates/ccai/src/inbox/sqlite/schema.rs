//! The versioned schema: migrations applied when a store is opened, kept in `PRAGMA
//! user_version`. A file whose version is newer than this build knows is refused untouched.

use rusqlite::Connection;

use super::convert::store_error;
use crate::inbox::StoreError;

/// Each migration brings the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: events, one delivery per destination, attempts, the durable deduper's records.
    "CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        client_id TEXT NOT NULL,
        event_hash TEXT NOT NULL,
        event_type TEXT NOT NULL,
        body BLOB,
        body_len INTEGER NOT NULL,
        body_sha256 TEXT NOT NULL,
        signature TEXT,
        content_type TEXT,
        received_at INTEGER NOT NULL,
        duplicates INTEGER NOT NULL DEFAULT 0,
        conflicts INTEGER NOT NULL DEFAULT 0,
        last_conflict_sha256 TEXT,
        -- Hash first: the same index finds an event by its hash alone (`get`).
        UNIQUE (event_hash, client_id)
    );
    CREATE INDEX events_by_type ON events (event_type, id);
    CREATE INDEX events_by_received ON events (received_at);
    -- Keeps the duplicate and conflict totals of the stats off a scan of every event.
    CREATE INDEX events_repeated ON events (duplicates, conflicts)
        WHERE duplicates > 0 OR conflicts > 0;
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        destination TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER,
        lease_owner TEXT,
        lease_token TEXT,
        lease_until INTEGER,
        last_error TEXT,
        delivered_at INTEGER,
        UNIQUE (event_id, destination)
    );
    CREATE INDEX deliveries_due ON deliveries (destination, next_attempt_at) WHERE status = 'pending';
    CREATE INDEX deliveries_leased ON deliveries (destination, lease_until) WHERE status = 'in_progress';
    CREATE INDEX deliveries_by_status ON deliveries (status, event_id);
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
        started_at INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        http_status INTEGER,
        error TEXT
    );
    CREATE INDEX attempts_by_delivery ON attempts (delivery_id);
    CREATE TABLE dedup (
        event_hash TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        lease_until INTEGER,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;",
];

/// The newest schema version this build knows.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn user_version(conn: &Connection, path: &str) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| store_error(path, e))
}

/// Refuses a file written by a newer ccai, without writing to it. Call before anything that
/// writes (even `journal_mode`).
pub(crate) fn check_not_newer(conn: &Connection, path: &str) -> Result<(), StoreError> {
    check_version(user_version(conn, path)?, path)
}

/// Refuses a schema version that is invalid (negative) or newer than this ccai knows.
fn check_version(found: i64, path: &str) -> Result<(), StoreError> {
    if found < 0 {
        return Err(StoreError::Corrupt(format!(
            "{path} has an invalid schema version ({found})"
        )));
    }
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Brings the schema up to [`SCHEMA_VERSION`] in one transaction (several processes opening the
/// same new file migrate it once).
pub(crate) fn migrate(conn: &mut Connection, path: &str) -> Result<(), StoreError> {
    // Already current (the usual case): nothing to write, so no write lock is needed, and a
    // reader (`ccai events list`) opens while another process writes.
    if user_version(conn, path)? == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| store_error(path, e))?;
    let found = user_version(&tx, path)?;
    check_version(found, path)?;
    if found == 0 {
        let tables: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |row| row.get(0),
            )
            .map_err(|e| store_error(path, e))?;
        if tables > 0 {
            return Err(StoreError::Corrupt(format!(
                "{path} is a SQLite database with tables but no inbox schema version"
            )));
        }
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(migration)
            .map_err(|e| store_error(path, e))?;
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .map_err(|e| store_error(path, e))?;
    }
    tx.commit().map_err(|e| store_error(path, e))
}
