//! Refuses a file whose tables lack columns of the current schema (dropped outside ccai), naming
//! them: every later command would otherwise fail with SQLite's "no such column".

use rusqlite::Connection;

use super::convert::store_error;
use crate::inbox::columns::{check_table, SHARED_TABLES};
use crate::inbox::StoreError;

/// The tables only the SQLite store has, with their columns.
const SQLITE_TABLES: &[(&str, &[&str])] = &[
    (
        "dedup",
        &["event_hash", "state", "lease_until", "updated_at", "owner"],
    ),
    ("event_keys", &["run", "key", "event_id"]),
    ("event_keys_merged", &["one", "upto", "purged_upto"]),
    ("event_key_runs", &["run", "after"]),
];

/// Fails with [`StoreError::MissingColumns`] for the first table of the current schema that
/// lacks a column. Reads only.
pub(crate) fn check(conn: &Connection, path: &str) -> Result<(), StoreError> {
    let mut statement = conn
        .prepare("SELECT name FROM pragma_table_info(?1)")
        .map_err(|e| store_error(path, e))?;
    for (table, expected) in SHARED_TABLES.iter().chain(SQLITE_TABLES) {
        let found = statement
            .query_map([table], |row| row.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| store_error(path, e))?;
        check_table(path, table, expected, &found)?;
    }
    Ok(())
}

/// As [`check`], for a file of an older schema: fails for the first table of the current schema
/// that has columns in `old` (an empty database with that schema) and lacks one of them in
/// `conn`. Reads only.
pub(crate) fn check_like(
    conn: &Connection,
    old: &Connection,
    path: &str,
) -> Result<(), StoreError> {
    let columns = |conn: &Connection, table: &str| -> Result<Vec<String>, StoreError> {
        conn.prepare_cached("SELECT name FROM pragma_table_info(?1)")
            .and_then(|mut statement| {
                statement
                    .query_map([table], |row| row.get::<_, String>(0))
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            })
            .map_err(|e| store_error(path, e))
    };
    for (table, _) in SHARED_TABLES.iter().chain(SQLITE_TABLES) {
        let expected = columns(old, table)?;
        // Not there yet in that version: a migration creates it.
        if expected.is_empty() {
            continue;
        }
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        check_table(path, table, &expected, &columns(conn, table)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::inbox::sqlite::{SqliteOptions, SqliteStore};

    /// The lists name every table of a new store and every column of each, no more: a
    /// migration that adds a column without adding it here fails this test.
    #[test]
    fn the_lists_are_the_new_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        drop(SqliteStore::open(&path, SqliteOptions::default()).expect("open"));
        let conn = Connection::open(&path).expect("open raw");
        let mut tables = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .expect("prepare");
        let tables: BTreeSet<String> = tables
            .query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .expect("tables");
        let listed: BTreeSet<String> = SHARED_TABLES
            .iter()
            .chain(SQLITE_TABLES)
            .map(|(table, _)| (*table).to_owned())
            .collect();
        assert_eq!(tables, listed);
        for (table, expected) in SHARED_TABLES.iter().chain(SQLITE_TABLES) {
            let found: Vec<String> = conn
                .prepare("SELECT name FROM pragma_table_info(?1)")
                .and_then(|mut s| {
                    s.query_map([table], |row| row.get(0))
                        .and_then(|rows| rows.collect())
                })
                .expect("columns");
            assert_eq!(&found, expected, "{table}");
        }
    }

    #[test]
    fn a_dropped_column_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        drop(SqliteStore::open(&path, SqliteOptions::default()).expect("open"));
        let conn = Connection::open(&path).expect("open raw");
        check(&conn, "inbox.db").expect("a new store has every column");
        conn.execute_batch(
            "ALTER TABLE dedup DROP COLUMN owner; ALTER TABLE dedup DROP COLUMN updated_at;",
        )
        .expect("drop");
        assert_eq!(
            check(&conn, "inbox.db"),
            Err(StoreError::MissingColumns {
                path: "inbox.db".into(),
                table: "dedup".into(),
                columns: vec!["updated_at".into(), "owner".into()],
            })
        );
        conn.execute_batch("DROP TABLE event_key_runs; ALTER TABLE dedup ADD COLUMN owner; ALTER TABLE dedup ADD COLUMN updated_at;")
            .expect("drop the table");
        let err = check(&conn, "inbox.db").expect_err("a table that is gone");
        assert_eq!(
            err.to_string(),
            "the store inbox.db was changed outside ccai: it has no event_key_runs table: \
             restore it from a backup or open another store"
        );
    }
}
