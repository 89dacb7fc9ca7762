//! The versioned schema: migrations applied when a store is opened, kept in `PRAGMA
//! user_version`. A file whose version is newer than this build knows is refused untouched, as
//! is one whose tables lack columns of the current schema (`columns.rs`).

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
    // 2: the unique index on (event_hash, client_id) gives way to the merged key index of
    // `keys.rs` (random hashes made that index slow inserts down as the store grew). SQLite drops
    // a table constraint only by rebuilding the table (foreign keys are off meanwhile; see
    // `migrate`); ids keep their values. `migrate_in_transaction` then indexes the events
    // already there (`keys::index_existing`: the key is a SHA-256, computed in Rust).
    "CREATE TABLE events_v2 (
        -- AUTOINCREMENT: an id is never handed out twice, even after the newest events were
        -- purged, so another writer's new events always come after those a writer has seen.
        id INTEGER PRIMARY KEY AUTOINCREMENT,
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
        last_conflict_sha256 TEXT
    );
    INSERT INTO events_v2 SELECT id, client_id, event_hash, event_type, body, body_len,
        body_sha256, signature, content_type, received_at, duplicates, conflicts,
        last_conflict_sha256 FROM events;
    DROP TABLE events;
    ALTER TABLE events_v2 RENAME TO events;
    CREATE INDEX events_by_type ON events (event_type, id);
    CREATE INDEX events_by_received ON events (received_at);
    CREATE INDEX events_repeated ON events (duplicates, conflicts)
        WHERE duplicates > 0 OR conflicts > 0;
    CREATE TABLE event_keys (
        key INTEGER NOT NULL,
        event_id INTEGER NOT NULL,
        PRIMARY KEY (key, event_id)
    ) WITHOUT ROWID;
    -- The events with an id up to `upto` have their keys in event_keys.
    CREATE TABLE event_keys_merged (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        upto INTEGER NOT NULL
    );
    INSERT INTO event_keys_merged (one, upto) VALUES (1, 0);",
    // 3: `event_keys` becomes a set of runs, each merge appending one (`keys.rs`): inserting
    // each merge into one table sorted by key rewrote every leaf of it, a cost per event that
    // grew with the store. The keys already there become run 0.
    "CREATE TABLE event_keys_v3 (
        run INTEGER NOT NULL,
        key INTEGER NOT NULL,
        event_id INTEGER NOT NULL,
        PRIMARY KEY (run, key, event_id)
    ) WITHOUT ROWID;
    INSERT INTO event_keys_v3 (run, key, event_id) SELECT 0, key, event_id FROM event_keys;
    DROP TABLE event_keys;
    ALTER TABLE event_keys_v3 RENAME TO event_keys;
    -- The runs in event_keys: a lookup seeks (run, key) in each. A run other than 0 holds
    -- the keys of events with ids in (after, run].
    CREATE TABLE event_key_runs (run INTEGER PRIMARY KEY, after INTEGER NOT NULL DEFAULT 0);
    INSERT INTO event_key_runs (run) VALUES (0);",
    // 4: the highest event id a purge has deleted. A merge checks that an event still exists
    // only at or below it (`keys.rs`): checking every merged key read a page of `events` per
    // key, most of a merge's time. The events already stored count as purged, in case a process
    // of an older version (which does not raise the mark) still runs on the file.
    "ALTER TABLE event_keys_merged ADD COLUMN purged_upto INTEGER NOT NULL DEFAULT 0;
    UPDATE event_keys_merged SET purged_upto = (SELECT coalesce(max(id), 0) FROM events);",
    // 5: who holds an in-flight deduplication claim (a random token), so that a release frees
    // that claim only: not the claim of whoever took the event over after its lease lapsed, and
    // not another's after a claim whose caller went away. Claims made before have none.
    "ALTER TABLE dedup ADD COLUMN owner INTEGER;",
    // 6: the HTTP method a delivery came with, so that it is forwarded with the same (NULL:
    // POST, as every delivery stored before).
    "ALTER TABLE events ADD COLUMN method TEXT;",
];

/// The newest schema version this build knows.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) fn user_version(conn: &Connection, path: &str) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| store_error(path, e))
}

/// Refuses a file written by a newer ccai, a database of something else, and an inbox of any
/// version whose tables lack columns of that version, without writing to any. Call before
/// anything that writes (even `journal_mode`, which would turn another program's database to
/// WAL). `migrate` checks again in its transaction, for a file that another process changed
/// meanwhile, and checks the columns of a file it migrates.
pub(crate) fn check_before_writing(conn: &Connection, path: &str) -> Result<(), StoreError> {
    let found = user_version(conn, path)?;
    check_version(found, path)?;
    if found == 0 {
        check_no_foreign_tables(conn, path)?;
    }
    check_columns(conn, path, found)
}

/// Refuses an inbox of schema `version` whose tables lack a column of that version: the current
/// one lacks what the code reads, an older one what its migrations read or keep (they would
/// fail half-way with SQLite's "no such column").
fn check_columns(conn: &Connection, path: &str, version: i64) -> Result<(), StoreError> {
    if version == SCHEMA_VERSION {
        super::columns::check(conn, path)
    } else if version > 0 {
        let old = schema_at(version).map_err(|e| store_error(path, e))?;
        super::columns::check_like(conn, &old, path)
    } else {
        Ok(())
    }
}

/// An empty database in memory with the schema `version` had: the migrations up to it.
fn schema_at(version: i64) -> rusqlite::Result<Connection> {
    let conn = Connection::open_in_memory()?;
    for migration in MIGRATIONS
        .iter()
        .take(usize::try_from(version).unwrap_or(0))
    {
        conn.execute_batch(migration)?;
    }
    Ok(conn)
}

/// Whether the file holds an inbox (of any schema version).
pub(crate) fn holds_inbox(conn: &Connection, path: &str) -> Result<bool, StoreError> {
    Ok(user_version(conn, path)? > 0)
}

/// Refuses a database without an inbox schema version that has tables: another program's.
fn check_no_foreign_tables(conn: &Connection, path: &str) -> Result<(), StoreError> {
    let tables: i64 = conn
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
    Ok(())
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
    // Rebuilding a table that others reference needs foreign keys off (a no-op inside a
    // transaction, so before it); `foreign_key_check` below proves nothing was left dangling.
    conn.pragma_update(None, "foreign_keys", false)
        .map_err(|e| store_error(path, e))?;
    let result = migrate_in_transaction(conn, path);
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(|e| store_error(path, e))?;
    result
}

fn migrate_in_transaction(conn: &mut Connection, path: &str) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| store_error(path, e))?;
    let found = user_version(&tx, path)?;
    check_version(found, path)?;
    if found == 0 {
        check_no_foreign_tables(&tx, path)?;
    }
    check_columns(&tx, path, found)?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(migration)
            .map_err(|e| store_error(path, e))?;
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .map_err(|e| store_error(path, e))?;
    }
    if found < 2 {
        super::keys::index_existing(&tx).map_err(|e| store_error(path, e))?;
    }
    let dangling: i64 = tx
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| {
            row.get(0)
        })
        .map_err(|e| store_error(path, e))?;
    if dangling > 0 {
        return Err(StoreError::Corrupt(format!(
            "{path}: {dangling} rows reference events that do not exist; the file was not migrated"
        )));
    }
    // Before the commit: a file refused for a column it lacks is left as it was.
    super::columns::check(&tx, path)?;
    tx.commit().map_err(|e| store_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::sqlite::{SqliteOptions, SqliteStore};
    use crate::inbox::{DeliveryStatus, Inserted, NewDelivery, Store, StoreError};

    /// A file as version 1 left it: one event with its delivery and an attempt.
    fn version_1_file(path: &std::path::Path) {
        let conn = Connection::open(path).expect("open");
        conn.execute_batch(MIGRATIONS[0]).expect("version 1");
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO events (id, client_id, event_hash, event_type, body, body_len, body_sha256,
                                 received_at, duplicates)
                  VALUES (7, '1231', 'old-hash', 'message.sent', x'7b7d', 2,
                          '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', 1000, 2);
             INSERT INTO deliveries (id, event_id, destination, status, attempts)
                  VALUES (3, 7, 'default', 'dead', 7);
             INSERT INTO attempts (delivery_id, started_at, duration_ms, outcome)
                  VALUES (3, 1001, 5, 'failed');",
        )
        .expect("a version-1 event");
    }

    #[tokio::test]
    async fn version_2_keys_become_run_0_and_still_deduplicate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(MIGRATIONS[0]).expect("version 1");
            conn.execute_batch(MIGRATIONS[1]).expect("version 2");
            conn.execute_batch(&format!(
                "PRAGMA user_version = 2;
                 INSERT INTO events (id, client_id, event_hash, event_type, body, body_len,
                                     body_sha256, received_at)
                      VALUES (7, '1231', 'merged-hash', 'message.sent', x'7b7d', 2,
                              '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', 1000);
                 INSERT INTO event_keys (key, event_id) VALUES ({}, 7);
                 UPDATE event_keys_merged SET upto = 7;",
                super::super::keys::hash_key("merged-hash")
            ))
            .expect("a version-2 event with its key merged");
        }
        let store = SqliteStore::open(&path, SqliteOptions::default()).expect("migrates");
        // Only the merged key finds it: the event is below the watermark.
        assert!(store.get("merged-hash").await.expect("get").is_some());
        let again = NewDelivery::new("1231", "merged-hash", "message.sent", b"{}".to_vec());
        assert_eq!(
            store.insert(again).await.expect("insert"),
            Inserted::Duplicate
        );
        drop(store);
        let conn = Connection::open(&path).expect("open");
        let (run, runs): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT run FROM event_keys WHERE event_id = 7),
                        (SELECT count(*) FROM event_key_runs WHERE run > 0)",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .expect("keys");
        assert_eq!(
            (run, runs),
            (0, 0),
            "the key is in run 0, and no run besides"
        );
    }

    #[tokio::test]
    async fn version_1_files_keep_their_events_and_deduplicate_them_after_the_upgrade() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        version_1_file(&path);
        let store = SqliteStore::open(&path, SqliteOptions::default()).expect("migrates");
        let event = store.get("old-hash").await.expect("get").expect("kept");
        assert_eq!(event.summary.duplicates, 2);
        assert_eq!(
            event.attempts.len(),
            1,
            "attempts survive the table rebuild"
        );
        assert_eq!(
            event.summary.deliveries.first().map(|d| d.status),
            Some(DeliveryStatus::Dead)
        );
        // Stored before the upgrade, still a duplicate after it.
        let again = NewDelivery::new("1231", "old-hash", "message.sent", b"{}".to_vec());
        assert_eq!(
            store.insert(again).await.expect("insert"),
            Inserted::Duplicate
        );
        let new = NewDelivery::new("1231", "new-hash", "message.sent", b"{}".to_vec());
        assert_eq!(store.insert(new).await.expect("insert"), Inserted::New);
        drop(store);

        let conn = Connection::open(&path).expect("open");
        assert_eq!(
            user_version(&conn, "test").expect("version"),
            SCHEMA_VERSION
        );
        let foreign_keys: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE sql LIKE '%REFERENCES events%'",
                [],
                |row| row.get(0),
            )
            .expect("schema");
        assert_eq!(
            foreign_keys, 1,
            "deliveries still reference the rebuilt events table"
        );
        let unique_index: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE tbl_name = 'events' AND name LIKE 'sqlite_autoindex%'",
                [],
                |row| row.get(0),
            )
            .expect("schema");
        assert_eq!(unique_index, 0, "the random-keyed unique index is gone");
        let (keys, upto, purged_upto): (i64, i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM event_keys), upto, purged_upto FROM event_keys_merged",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .expect("keys");
        // The old event was indexed by the upgrade; the new one waits in memory for a merge.
        // Events from before version 4 count as purged: merges check they still exist.
        assert_eq!(
            (keys, upto, purged_upto),
            (1, 7, 7),
            "the upgrade indexed the events it found"
        );
    }

    /// A file as version `n` left it: two events (one with its key merged, one not), a dead and
    /// a pending delivery, an attempt and a completed dedup row.
    fn version_n_file(path: &std::path::Path, n: usize) {
        let conn = Connection::open(path).expect("open");
        for m in &MIGRATIONS[..n] {
            conn.execute_batch(m).expect("migration");
        }
        conn.execute_batch(&format!("PRAGMA user_version = {n};"))
            .unwrap();
        conn.execute_batch(
            "INSERT INTO events (id, client_id, event_hash, event_type, body, body_len, body_sha256,
                                 received_at, duplicates)
                  VALUES (7, '1231', 'old-hash', 'message.sent', x'7b7d', 2,
                          '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', 1000, 2);
             INSERT INTO events (id, client_id, event_hash, event_type, body, body_len, body_sha256,
                                 received_at)
                  VALUES (9, '1231', 'unmerged', 'message.sent', x'7b7d', 2,
                          '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', 1000);
             INSERT INTO deliveries (id, event_id, destination, status, attempts, next_attempt_at)
                  VALUES (3, 7, 'default', 'dead', 7, NULL), (4, 9, 'default', 'pending', 0, 0);
             INSERT INTO attempts (delivery_id, started_at, duration_ms, outcome)
                  VALUES (3, 1001, 5, 'failed');
             INSERT INTO dedup (event_hash, state, lease_until, updated_at) VALUES ('d1', 'completed', NULL, 5);",
        ).unwrap();
        if n >= 2 {
            let key = super::super::keys::hash_key("old-hash");
            if n == 2 {
                conn.execute(
                    "INSERT INTO event_keys (key, event_id) VALUES (?1, 7)",
                    [key],
                )
                .unwrap();
            } else {
                conn.execute(
                    "INSERT INTO event_keys (run, key, event_id) VALUES (0, ?1, 7)",
                    [key],
                )
                .unwrap();
            }
            conn.execute_batch("UPDATE event_keys_merged SET upto = 7;")
                .unwrap();
        }
    }

    #[tokio::test]
    async fn every_old_version_migrates_and_keeps_its_data() {
        use crate::dedup::{Claim, Deduper};
        for n in 1..SCHEMA_VERSION as usize {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("inbox.db");
            version_n_file(&path, n);
            let store = SqliteStore::open(&path, SqliteOptions::default())
                .unwrap_or_else(|e| panic!("v{n}: {e:?}"));
            let event = store
                .get("old-hash")
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("v{n}: lost"));
            assert_eq!(event.summary.duplicates, 2, "v{n}");
            assert_eq!(event.attempts.len(), 1, "v{n}");
            assert!(store.get("unmerged").await.unwrap().is_some(), "v{n}");
            for h in ["old-hash", "unmerged"] {
                let again = NewDelivery::new("1231", h, "message.sent", b"{}".to_vec());
                assert_eq!(
                    store.insert(again).await.unwrap(),
                    Inserted::Duplicate,
                    "v{n} {h}"
                );
            }
            let new = NewDelivery::new("1231", "new-hash", "message.sent", b"{}".to_vec());
            assert_eq!(store.insert(new).await.unwrap(), Inserted::New, "v{n}");
            assert_eq!(
                store.deduper().claim("d1").await.unwrap(),
                Claim::AlreadyCompleted,
                "v{n}"
            );
            let claimed = store
                .claim(
                    "default",
                    crate::inbox::LeaseRequest::new("w", std::time::Duration::from_secs(30)),
                    10,
                    std::time::SystemTime::now(),
                )
                .await
                .unwrap();
            assert_eq!(claimed.len(), 2, "v{n}");
            drop(store);
            let conn = Connection::open(&path).unwrap();
            assert_eq!(user_version(&conn, "t").unwrap(), SCHEMA_VERSION);
            let fk: i64 = conn
                .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(fk, 0);
        }
    }

    #[test]
    fn a_failed_migration_leaves_the_version_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        version_n_file(&path, 5);
        // Make migration 6 fail half-way: the column it adds exists already.
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("ALTER TABLE events ADD COLUMN method TEXT;")
                .unwrap();
        }
        SqliteStore::open(&path, SqliteOptions::default())
            .expect_err("migration 6 cannot add a column that exists");
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn, "t").unwrap(), 5);
    }

    /// An old file that lacks a column the migrations do not touch is refused before them: its
    /// version (and tables) stay as they were.
    #[test]
    fn an_old_file_lacking_a_column_is_refused_and_not_migrated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        version_n_file(&path, 5);
        Connection::open(&path)
            .and_then(|conn| conn.execute_batch("ALTER TABLE attempts DROP COLUMN http_status"))
            .expect("drop");
        let refused = SqliteStore::open(&path, SqliteOptions::default()).expect_err("refused");
        assert!(
            matches!(&refused, StoreError::MissingColumns { table, columns, .. }
                if table == "attempts" && columns == &["http_status"]),
            "{refused:?}"
        );
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn, "t").unwrap(), 5);
        let method: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('events') WHERE name = 'method'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(method, 0, "migration 6 was rolled back");
    }

    /// Every file in `dir`, by name, with the SHA-256 of its bytes.
    fn hashed_files(dir: &std::path::Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
        use sha2::{Digest, Sha256};
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let bytes = std::fs::read(e.path()).unwrap();
                (e.file_name(), Sha256::digest(bytes).to_vec())
            })
            .collect();
        files.sort();
        files
    }

    /// A file of any older version lacking a column (or a table) it needs, changed outside
    /// ccai, is refused as a current one is, naming it, before anything is written: the
    /// migrations would fail on it with SQLite's "no such column", after the switch to WAL had
    /// changed the file already.
    #[test]
    fn an_old_file_lacking_a_column_is_refused_before_anything_is_written() {
        let damages = [
            (
                "ALTER TABLE events DROP COLUMN last_conflict_sha256",
                "events",
                Some("last_conflict_sha256"),
            ),
            ("DROP TABLE dedup", "dedup", None),
        ];
        for n in 1..SCHEMA_VERSION as usize {
            for (damage, damaged, column) in damages {
                let dir = tempfile::tempdir().expect("tempdir");
                let path = dir.path().join("inbox.db");
                version_n_file(&path, n);
                Connection::open(&path)
                    .and_then(|conn| conn.execute_batch(damage))
                    .expect("damage");
                let before = hashed_files(dir.path());
                let refused =
                    SqliteStore::open(&path, SqliteOptions::default()).expect_err("refused");
                match column {
                    Some(column) => assert!(
                        matches!(&refused, StoreError::MissingColumns { table, columns, .. }
                            if table == damaged && columns == &[column]),
                        "v{n} {damage}: {refused:?}"
                    ),
                    None => assert!(
                        matches!(&refused, StoreError::MissingTable { table, .. }
                            if table == damaged),
                        "v{n} {damage}: {refused:?}"
                    ),
                }
                assert_eq!(hashed_files(dir.path()), before, "v{n} {damage}: changed");
            }
        }
    }

    #[test]
    fn a_newer_file_is_refused_byte_for_byte_untouched() {
        for wal in [false, true] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("inbox.db");
            {
                let conn = Connection::open(&path).unwrap();
                if wal {
                    conn.execute_batch("PRAGMA journal_mode=WAL").unwrap();
                }
                conn.execute_batch("CREATE TABLE future(x); PRAGMA user_version = 99;")
                    .unwrap();
            }
            // Every file in the folder, by name, with its bytes.
            let files = || -> Vec<_> {
                std::fs::read_dir(dir.path())
                    .unwrap()
                    .map(|e| {
                        let e = e.unwrap();
                        (e.file_name(), std::fs::read(e.path()).unwrap())
                    })
                    .collect()
            };
            let before = files();
            let err = SqliteStore::open(&path, SqliteOptions::default()).unwrap_err();
            assert!(matches!(err, StoreError::NewerSchema { .. }), "{err:?}");
            let after = files();
            assert_eq!(
                before.len(),
                after.len(),
                "wal={wal} {:?}",
                after.iter().map(|a| &a.0).collect::<Vec<_>>()
            );
            assert!(before == after, "wal={wal}: bytes changed");
        }
    }
}
