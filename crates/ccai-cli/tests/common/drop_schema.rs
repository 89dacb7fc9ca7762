//! Dropping a test's (or the bench's) PostgreSQL schema with `psql`, even while a session still
//! holds a lock in it. Also built into the ingest bench (`#[path]`).

use std::process::Command;

/// How long the drop waits for a lock in the schema before it ends the sessions holding one.
const LOCK_WAIT: &str = "2s";

/// Drops the schema `name` (and everything in it) from the database of `base` (a PostgreSQL URL;
/// its query, such as our own `schema=`, is left out: psql does not take it). It waited for ever
/// for a session holding a lock in the schema, and with it the whole test run: a transaction a
/// failing test left open, a `ccai listen` not yet stopped. The test is over: after
/// [`LOCK_WAIT`], the sessions holding locks on the schema or a relation in it are ended, and
/// the drop tried again (three rounds at most). `name` is one of our own (`[a-z0-9_]`).
pub(crate) fn drop_schema(base: &str, name: &str) -> Result<(), String> {
    let base = base.split('?').next().unwrap_or(base);
    // One DO block: each failed try is rolled back to its own savepoint (its locks let go), and
    // `lock_not_available` is matched by name, whatever the server's language.
    let sql = format!(
        "SET lock_timeout = '{LOCK_WAIT}';
DO $drop$
DECLARE
  rounds int := 0;
BEGIN
  LOOP
    BEGIN
      DROP SCHEMA IF EXISTS \"{name}\" CASCADE;
      RETURN;
    EXCEPTION WHEN lock_not_available THEN
      IF rounds >= 3 THEN
        RAISE;
      END IF;
      rounds := rounds + 1;
      PERFORM pg_terminate_backend(holders.pid) FROM (
        SELECT DISTINCT l.pid
          FROM pg_locks l
          JOIN pg_namespace n ON n.nspname = '{name}'
          LEFT JOIN pg_class c ON l.locktype = 'relation' AND c.oid = l.relation
         WHERE l.granted AND l.pid <> pg_backend_pid()
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND (c.relnamespace = n.oid
                OR (l.locktype = 'object' AND l.classid = 'pg_namespace'::regclass
                    AND l.objid = n.oid))
      ) holders;
    END;
  END LOOP;
END
$drop$;"
    );
    let out = Command::new("psql")
        .args([base, "-qX", "-v", "ON_ERROR_STOP=1", "-c", &sql])
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}
