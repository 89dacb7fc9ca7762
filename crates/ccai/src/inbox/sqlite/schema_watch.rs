//! Notices a newer ccai migrating the store's file while this process has it open.
//!
//! Opening refuses a file whose schema is newer than this build knows, but a newer ccai may open
//! the same file later, while this one runs, and migrate it. SQLite prepares this process's
//! statements again after the change and its writes go on succeeding, under the old schema's
//! assumptions (a column the newer schema relies on left empty, a table it keeps in step not
//! kept). So the writer checks, inside each batch's transaction (under the write lock: no
//! migration can commit between the check and the batch's commit), that the schema version is
//! still the one it opened the store at, and once it is not, refuses every write.
//!
//! `PRAGMA data_version` changes only when another connection commits, and the writer reads it in
//! each batch anyway (to catch up on other processes' events, `keys.rs`): `user_version` is read
//! again only when it changed. A store no other process writes pays nothing more.

use std::sync::OnceLock;

use rusqlite::Connection;

use super::convert::store_error;
use super::schema::{user_version, SCHEMA_VERSION};
use crate::inbox::error::schema_changed;
use crate::inbox::StoreError;

/// The writer thread's view of the schema version.
#[derive(Debug, Default)]
pub(crate) struct SchemaWatch {
    /// `PRAGMA data_version` when `user_version` was last found current; `None` before the
    /// first check.
    checked_at: Option<i64>,
}

impl SchemaWatch {
    /// Checks, inside a write transaction, that the schema version is still [`SCHEMA_VERSION`];
    /// returns `PRAGMA data_version`. Once it is not, records why in `changed` (logging it once)
    /// and returns that error, which every later write gets too.
    pub(crate) fn check(
        &mut self,
        conn: &Connection,
        path: &str,
        changed: &OnceLock<StoreError>,
    ) -> Result<i64, StoreError> {
        let data_version: i64 = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
            .map_err(|e| store_error(path, e))?;
        if self.checked_at == Some(data_version) {
            return Ok(data_version);
        }
        let found = user_version(conn, path)?;
        if found != SCHEMA_VERSION {
            return Err(changed
                .get_or_init(|| {
                    let error = schema_changed(path, found, SCHEMA_VERSION);
                    tracing::error!(target: "ccai::inbox", %error, "the store's schema changed under it");
                    error
                })
                .clone());
        }
        self.checked_at = Some(data_version);
        Ok(data_version)
    }
}

/// For a write outside the batches (the key index's upkeep, rare and long): fails with SQLite's
/// "schema changed" error unless the schema version, read inside the write transaction, is
/// still [`SCHEMA_VERSION`]. The next batch's [`SchemaWatch::check`] then says why.
pub(crate) fn schema_unchanged(conn: &Connection) -> rusqlite::Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    Err(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_SCHEMA),
        Some(format!(
            "the schema version changed to {found} under this process (it writes {SCHEMA_VERSION})"
        )),
    ))
}
