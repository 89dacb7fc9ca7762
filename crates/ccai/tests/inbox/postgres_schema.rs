//! [`TempSchema`]: each PostgreSQL test's own schema, dropped at the end even when a session of
//! the test still holds a lock in it.

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use crate::postgres::{raw, unique_schema};

/// Drops its schema (and everything in it) when dropped.
pub(crate) struct TempSchema {
    pub url: String,
    pub name: String,
}

impl TempSchema {
    pub(crate) fn new(url: &str, tag: &str) -> Self {
        Self {
            url: url.to_owned(),
            name: unique_schema(tag),
        }
    }
}

impl Drop for TempSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Its own thread and runtime: this may run inside (or outside) any runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(drop_schema(&url, &name))
        })
        .join();
        match dropped {
            Ok(Ok(0)) => {}
            Ok(Ok(ended)) => eprintln!(
                "the test schema {} was dropped after ending {ended} session(s) that still held \
                 locks in it (a transaction the test left open)",
                self.name
            ),
            _ => eprintln!("could not drop the test schema {}", self.name),
        }
    }
}

/// How long the drop waits for a lock in the schema before it ends the sessions holding one.
const LOCK_WAIT: &str = "2s";

/// The sessions (other than this one) holding a lock on the schema `$1` or a relation in it, ended;
/// how many.
const END_HOLDERS: &str = "
SELECT count(pg_terminate_backend(pid)) FROM (
  SELECT DISTINCT l.pid
    FROM pg_locks l
    JOIN pg_namespace n ON n.nspname = $1
    LEFT JOIN pg_class c ON l.locktype = 'relation' AND c.oid = l.relation
   WHERE l.granted AND l.pid <> pg_backend_pid()
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND (c.relnamespace = n.oid
          OR (l.locktype = 'object' AND l.classid = 'pg_namespace'::regclass AND l.objid = n.oid))
) holders";

/// Drops the schema `name`; returns how many sessions holding locks in it were ended first. It
/// waited for them for ever, and with it the whole test run (CI's time limit, not a failure,
/// ended it): a transaction that a failing assertion's unwinding left open, whose connection's
/// task never runs while a `#[tokio::test]` runtime's one thread waits here, or one behind a
/// frozen proxy. The test is over: nothing needs those sessions any more.
async fn drop_schema(url: &str, name: &str) -> Result<u64, tokio_postgres::Error> {
    let client = raw(url).await;
    client
        .batch_execute(&format!("SET lock_timeout = '{LOCK_WAIT}'"))
        .await?;
    let statement = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
    let mut ended = 0;
    let mut rounds = 0;
    loop {
        match client.batch_execute(&statement).await {
            Ok(()) => return Ok(ended),
            Err(error) if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) && rounds < 3 => {
                rounds += 1;
                let row = client.query_one(END_HOLDERS, &[&name]).await?;
                ended += u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
            }
            Err(error) => return Err(error),
        }
    }
}

/// A transaction of the test still holds a lock in the schema as the schema is dropped, and
/// nothing is left to end it: this runtime's one thread waits in the drop, so the task of the
/// dropped client's connection, which would close its socket (and so end the transaction),
/// never runs. The drop waited for ever; it now ends that session and goes on.
#[tokio::test]
async fn a_schema_is_dropped_even_when_a_lock_in_it_outlives_its_client() {
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "heldlock");
    let name = schema.name.clone();
    let locker = raw(&url).await;
    // Two queries: in one, the schema would be created in the transaction too, unseen by the
    // drop.
    locker
        .batch_execute(&format!(
            "CREATE SCHEMA \"{name}\"; CREATE TABLE \"{name}\".t (x int)"
        ))
        .await
        .expect("create the schema");
    locker
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE \"{name}\".t IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .expect("hold a lock in the schema");
    drop(locker);
    // On another thread, so that a drop that waits for ever fails this test rather than hangs
    // it; this thread waits too, as a test's own drop would.
    let started = Instant::now();
    let (dropped, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(schema);
        let _ = dropped.send(());
    });
    let waited = done.recv_timeout(Duration::from_secs(60));
    assert!(
        waited.is_ok(),
        "the schema's drop still waits after {:?}",
        started.elapsed()
    );
    let client = raw(&url).await;
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
            &[&name],
        )
        .await
        .expect("pg_namespace")
        .get(0);
    assert_eq!(left, 0, "the schema is gone");
}
