//! `SqliteStore`: the conformance suite, and what only a file-backed store has (migrations, a
//! newer schema, another process holding the lock).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ccai::inbox::{
    BatchHistogram, Inserted, NewDelivery, SqliteOptions, SqliteStore, Store, StoreError,
    Synchronous, SCHEMA_VERSION,
};

use crate::conformance::{Config, StoreFactory, StoreInstance};

pub(crate) struct SqliteFactory;

pub(crate) struct SqliteInstance {
    store: Option<SqliteStore>,
    options: SqliteOptions,
    dir: tempfile::TempDir,
}

impl SqliteInstance {
    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("inbox.db")
    }
}

impl StoreInstance for SqliteInstance {
    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone().expect("open"))
    }

    fn batch_sizes(&self) -> Option<BatchHistogram> {
        self.store.as_ref().map(SqliteStore::batch_sizes)
    }

    async fn reopen(&mut self) {
        self.store = None;
        self.store = Some(SqliteStore::open(self.path(), self.options.clone()).expect("reopen"));
    }

    async fn drop_columns_and_reopen(
        &mut self,
        table: &str,
        columns: &[&str],
    ) -> Result<(), StoreError> {
        if let Some(store) = self.store.take() {
            store.close().await;
        }
        let conn = rusqlite::Connection::open(self.path()).expect("open raw");
        for column in columns {
            conn.execute_batch(&format!("ALTER TABLE {table} DROP COLUMN {column}"))
                .expect("drop column");
        }
        drop(conn);
        self.store = Some(SqliteStore::open(self.path(), self.options.clone())?);
        Ok(())
    }
}

impl StoreFactory for SqliteFactory {
    type Instance = SqliteInstance;

    async fn create(&self, config: Config) -> SqliteInstance {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = SqliteOptions::default()
            .queue_capacity(config.queue_capacity)
            .destinations(config.destinations);
        let store = SqliteStore::open(dir.path().join("inbox.db"), options.clone()).expect("open");
        SqliteInstance {
            store: Some(store),
            options,
            dir,
        }
    }
}

crate::store_conformance!(SqliteFactory);

fn user_version(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("open raw");
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("user_version")
}

#[tokio::test]
async fn an_empty_file_is_migrated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").expect("create empty file");
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
    let insert = NewDelivery::new("1231", "h", "message.sent", &b"{}"[..]);
    assert_eq!(store.insert(insert).await, Ok(Inserted::New));
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    // The WAL journal is on.
    let conn = rusqlite::Connection::open(&path).expect("open raw");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
    drop(store);
    // Opening again does not migrate twice.
    let again = SqliteStore::open(&path, SqliteOptions::default()).expect("reopen");
    assert!(again.get("h").await.expect("get").is_some());
}

/// `create(false)`, for tools that only inspect: a missing file, an empty one and an empty
/// SQLite database are refused and left as they were; an inbox opens and works.
#[tokio::test]
async fn without_create_only_an_existing_inbox_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inspect = || SqliteOptions::default().create(false);
    let no_inbox = |result: Result<SqliteStore, StoreError>, what: &str| match result {
        Err(StoreError::InvalidRequest(why)) => {
            assert!(why.contains("holds no inbox"), "{what}: {why}")
        }
        other => panic!("{what}: {other:?}"),
    };
    let missing = dir.path().join("missing.db");
    no_inbox(SqliteStore::open(&missing, inspect()), "missing");
    assert!(!missing.exists(), "a missing file is not created");
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").expect("create empty file");
    no_inbox(SqliteStore::open(&empty, inspect()), "empty");
    assert_eq!(std::fs::metadata(&empty).expect("stat").len(), 0);
    // A SQLite database with no tables (one was made and dropped): no inbox tables are added.
    let bare = dir.path().join("bare.db");
    rusqlite::Connection::open(&bare)
        .and_then(|conn| conn.execute_batch("CREATE TABLE t (x); DROP TABLE t;"))
        .expect("bare database");
    no_inbox(SqliteStore::open(&bare, inspect()), "bare database");
    let tables: i64 = rusqlite::Connection::open(&bare)
        .and_then(|conn| conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)))
        .expect("count tables");
    assert_eq!(tables, 0);
    assert_eq!(user_version(&bare), 0);
    // An inbox opens, and works.
    let inbox = dir.path().join("inbox.db");
    let store = SqliteStore::open(&inbox, SqliteOptions::default()).expect("create");
    store
        .insert(NewDelivery::new("1231", "h", "message.sent", &b"{}"[..]))
        .await
        .expect("insert");
    store.close().await;
    let reopened = SqliteStore::open(&inbox, inspect()).expect("an inbox opens");
    assert!(reopened.get("h").await.expect("get").is_some());
    reopened.close().await;
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_the_file_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("newer.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("create");
        conn.execute_batch(&format!(
            "CREATE TABLE future (x); INSERT INTO future VALUES (1); PRAGMA user_version = {};",
            SCHEMA_VERSION + 5
        ))
        .expect("write a future store");
    }
    let before = std::fs::read(&path).expect("read");
    let error = SqliteStore::open(&path, SqliteOptions::default()).expect_err("must refuse");
    assert!(
        matches!(error, StoreError::NewerSchema { found, known, .. } if found == SCHEMA_VERSION + 5 && known == SCHEMA_VERSION)
    );
    let message = error.to_string();
    assert!(
        message.contains("newer ccai") && message.contains("upgrade ccai or open another store"),
        "{message}"
    );
    assert!(!error.is_transient());
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "the file must be byte-identical"
    );
    assert!(!dir.path().join("newer.db-wal").exists());
}

#[tokio::test]
async fn a_file_that_is_not_an_inbox_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![b'x'; 4096]).expect("write");
    let error = SqliteStore::open(&garbage, SqliteOptions::default()).expect_err("not SQLite");
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    assert_eq!(std::fs::read(&garbage).expect("read"), vec![b'x'; 4096]);

    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .and_then(|c| c.execute_batch("CREATE TABLE users (name TEXT);"))
        .expect("foreign database");
    let error = SqliteStore::open(&foreign, SqliteOptions::default()).expect_err("foreign");
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    assert!(
        error.to_string().contains("no inbox schema version"),
        "{error}"
    );
    // Refused before anything was written: the other program's database keeps its journal.
    let mode: String = rusqlite::Connection::open(&foreign)
        .and_then(|c| c.query_row("PRAGMA journal_mode", [], |row| row.get(0)))
        .expect("journal mode");
    assert_eq!(mode, "delete");
    assert!(!dir.path().join("foreign.db-wal").exists());
}

#[tokio::test]
async fn another_holder_of_the_write_lock_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("locked.db");
    SqliteStore::open(&path, SqliteOptions::default())
        .expect("create")
        .close()
        .await;
    // Another process (here another connection) holds the write lock.
    let other = rusqlite::Connection::open(&path).expect("open raw");
    other.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let options = SqliteOptions::default().busy_timeout(Duration::from_millis(100));
    // Opening a current store needs no write lock; writing does, and says who holds it.
    let store = SqliteStore::open(&path, options).expect("opens for reading");
    let error = store.check_writable().await.expect_err("locked");
    assert!(matches!(error, StoreError::Locked(_)), "{error:?}");
    assert!(
        error.to_string().contains("locked by another process"),
        "{error}"
    );
    assert!(error.is_transient());
    other.execute_batch("ROLLBACK").expect("unlock");
    assert!(store.check_writable().await.is_ok());
}

#[tokio::test]
async fn a_write_blocked_by_another_process_fails_transiently_and_the_store_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("busy.db");
    let options = SqliteOptions::default().busy_timeout(Duration::from_millis(100));
    let store = SqliteStore::open(&path, options).expect("open");
    let other = rusqlite::Connection::open(&path).expect("open raw");
    other
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let blocked = store
        .insert(NewDelivery::new("1231", "b1", "message.sent", &b"{}"[..]))
        .await;
    assert!(matches!(blocked, Err(StoreError::Locked(_))), "{blocked:?}");
    other.execute_batch("ROLLBACK").expect("release");
    // Nothing half-written; the retry succeeds.
    assert!(store.get("b1").await.expect("get").is_none());
    let retried = store
        .insert(NewDelivery::new("1231", "b1", "message.sent", &b"{}"[..]))
        .await;
    assert_eq!(retried, Ok(Inserted::New));
}

#[tokio::test]
async fn committed_pages_reach_the_database_file_while_the_store_is_open() {
    // The writer's own automatic checkpoint waits for 10,000 WAL pages: only the background
    // checkpointer can copy these few hundred inserts into the database file this soon.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("checkpointed.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
    let body = format!(
        r#"{{"eventType":"message.sent","padding":"{}"}}"#,
        "x".repeat(700)
    );
    for i in 0..300 {
        let d = NewDelivery::new(
            "1231",
            format!("c{i}"),
            "message.sent",
            body.clone().into_bytes(),
        );
        assert_eq!(store.insert(d).await, Ok(Inserted::New));
    }
    let bodies = 300 * body.len() as u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let size = std::fs::metadata(&path).expect("the file").len();
        if size >= bodies {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file holds {size} bytes, less than the {bodies} bytes of bodies committed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(store);
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("reopen");
    assert_eq!(
        store.stats(SystemTime::now()).await.expect("stats").events,
        300
    );
}

#[tokio::test]
async fn normal_synchronous_mode_stores_and_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("normal.db");
    let options = SqliteOptions::default().synchronous(Synchronous::Normal);
    let store = SqliteStore::open(&path, options.clone()).expect("open");
    for i in 0..10 {
        let d = NewDelivery::new("1231", format!("n{i}"), "message.sent", &b"{}"[..]);
        assert_eq!(store.insert(d).await, Ok(Inserted::New));
    }
    drop(store);
    let store = SqliteStore::open(&path, options).expect("reopen");
    assert_eq!(
        store.stats(SystemTime::now()).await.expect("stats").events,
        10
    );
}

/// `close` leaves the one file: a process that exits right after dropping its last handle left
/// `-wal` and `-shm` beside it (the writer thread was cut short). Every clone is closed with it.
/// (What close answers, every backend alike: `conformance.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_leaves_one_file_for_every_clone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
    let clone = store.clone();
    for i in 0..20 {
        let d = NewDelivery::new("1231", format!("c{i}"), "message.sent", &b"{}"[..]);
        assert_eq!(store.insert(d).await, Ok(Inserted::New));
    }
    assert!(dir.path().join("inbox.db-wal").exists(), "WAL mode");
    store.close().await;
    for side in ["inbox.db-wal", "inbox.db-shm"] {
        assert!(!dir.path().join(side).exists(), "{side} left after close");
    }
    let late = NewDelivery::new("1231", "late", "message.sent", &b"{}"[..]);
    match clone.insert(late).await {
        Err(StoreError::Unavailable(why)) => assert!(why.contains("the store is closed"), "{why}"),
        other => panic!("a write through a clone after close: {other:?}"),
    }
    assert!(clone.stats(SystemTime::now()).await.is_err());
}

/// Every close waits until the store is closed, not only the first: a second close (from
/// another task, or after one dropped mid-await by a timeout) returned as soon as its no-op
/// write was answered, while the writer thread still folded the WAL back (`-wal` still there).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_close_waits_for_the_store_to_close() {
    let big = |i: usize| {
        NewDelivery::new(
            "1231",
            format!("b{i}"),
            "message.sent",
            vec![b'x'; 16 << 10],
        )
    };
    for dropped_first in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = dir.path().join("inbox.db-wal");
        let store =
            SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::default()).expect("open");
        let inserts: Vec<_> = (0..2000)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.insert(big(i)).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let closes: Vec<_> = if dropped_first {
            // Long enough to take the writer's thread, too short for the closing checkpoint.
            let _ = tokio::time::timeout(Duration::from_millis(2), store.close()).await;
            vec![store.clone()]
        } else {
            vec![store.clone(), store.clone()]
        }
        .into_iter()
        .map(|store| {
            let wal = wal.clone();
            tokio::spawn(async move {
                store.close().await;
                wal.exists()
            })
        })
        .collect();
        for close in closes {
            assert!(
                !close.await.expect("task"),
                "a close returned with -wal still there"
            );
        }
        for insert in inserts {
            insert.await.expect("task").ok();
        }
    }
}

/// Options past what the store can use are clamped: a queue or batch of `usize::MAX` panicked at
/// open or killed the writer thread (every write then failed), and a busy timeout of
/// `Duration::MAX` panicked at open.
#[tokio::test]
async fn extreme_options_are_clamped_and_the_store_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions::default()
        .queue_capacity(usize::MAX)
        .max_batch(usize::MAX)
        .busy_timeout(Duration::MAX);
    assert_eq!(options.queue_capacity, ccai::inbox::MAX_QUEUE_CAPACITY);
    assert_eq!(options.max_batch, ccai::inbox::MAX_BATCH);
    assert_eq!(options.busy_timeout, ccai::inbox::MAX_BUSY_TIMEOUT);
    // The fields are public: set directly, the store clamps what it uses.
    let mut direct = SqliteOptions::default();
    direct.queue_capacity = usize::MAX;
    direct.max_batch = usize::MAX;
    direct.busy_timeout = Duration::MAX;
    for (i, options) in [options, direct].into_iter().enumerate() {
        let path = dir.path().join(format!("extreme-{i}.db"));
        let store = SqliteStore::open(&path, options).expect("open");
        for n in 0..3 {
            let d = NewDelivery::new("1231", format!("x{i}-{n}"), "message.sent", &b"{}"[..]);
            assert_eq!(store.insert(d).await, Ok(Inserted::New));
        }
    }
}

#[test]
fn debug_output_redacts_signatures_and_bodies() {
    let d = NewDelivery::new("1231", "h", "message.sent", &b"secret-payload-text"[..])
        .signature("c2lnbmF0dXJlLXZhbHVlLWJhc2U2NC1wYWRkZWQ9PQ==");
    let shown = format!("{d:?}");
    assert!(!shown.contains("secret-payload-text"), "{shown}");
    assert!(!shown.contains("c2lnbmF0dXJl"), "{shown}");
    assert!(shown.contains("REDACTED"), "{shown}");
}

#[test]
fn an_empty_destination_list_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions::default().destinations(Vec::<String>::new());
    let error = SqliteStore::open(dir.path().join("x.db"), options).expect_err("refused");
    assert!(matches!(error, StoreError::InvalidRequest(_)), "{error:?}");
}

/// Past 32,768 events the writer merges the recent keys into the on-disk key table: duplicates,
/// lookups by hash and a reopened store must not notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_found_across_the_key_merge_and_a_reopen() {
    const EVENTS: usize = 40_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.db");
    let options = SqliteOptions::default().synchronous(Synchronous::Normal);
    let store = SqliteStore::open(&path, options.clone()).expect("open");
    let hash = |n: usize| format!("{:016x}", (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let delivery = move |n: usize| {
        NewDelivery::new(
            "1231",
            hash(n),
            "message.sent",
            format!("{{\"n\":{n}}}").into_bytes(),
        )
    };
    let mut tasks = Vec::new();
    for task in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for n in (task..EVENTS).step_by(32) {
                loop {
                    match store.insert(delivery(n)).await {
                        Ok(inserted) => {
                            assert_eq!(inserted, Inserted::New, "event {n}");
                            break;
                        }
                        Err(e) if e.is_transient() => {
                            tokio::time::sleep(Duration::from_millis(1)).await
                        }
                        Err(e) => panic!("insert {n}: {e}"),
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("inserter");
    }
    // The merge runs one slice per write batch after the threshold; writes drive it to its end.
    for n in 0..200 {
        assert_eq!(
            store.insert(delivery(n)).await,
            Ok(Inserted::Duplicate),
            "event {n}"
        );
    }
    let merged: i64 = rusqlite::Connection::open(&path)
        .and_then(|c| c.query_row("SELECT count(*) FROM event_keys", [], |row| row.get(0)))
        .expect("count merged keys");
    assert!(merged >= 32_768, "only {merged} keys were merged");
    let conflict = NewDelivery::new("1231", hash(7), "message.sent", &b"another body"[..]);
    assert_eq!(store.insert(conflict).await, Ok(Inserted::Conflict));
    for n in [0, 12_345, EVENTS - 1] {
        let found = store.get(&hash(n)).await.expect("get").expect("stored");
        assert_eq!(
            found.body.as_deref(),
            Some(format!("{{\"n\":{n}}}").as_bytes())
        );
    }
    drop(store);

    let store = SqliteStore::open(&path, options).expect("reopen");
    for n in (0..EVENTS).step_by(397) {
        assert_eq!(
            store.insert(delivery(n)).await,
            Ok(Inserted::Duplicate),
            "event {n} after reopening"
        );
    }
    assert_eq!(
        store.stats(SystemTime::now()).await.expect("stats").events,
        EVENTS as u64
    );
}

/// The store's file replaced under it: its WAL, left at `<path>-wal`, would be replayed into the
/// replacement at the next open after a kill. The store empties it within about a second, idle
/// or noticed by a write, once a reader still reading the old file lets it.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_of_a_replaced_store_file_is_emptied_so_no_later_open_replays_it() {
    for noticed_by_a_write in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        let wal = dir.path().join("inbox.db-wal");
        // Short, so that the reader below makes the first try fail and a later one succeed.
        let options = SqliteOptions::default().busy_timeout(Duration::from_millis(200));
        let store = SqliteStore::open(&path, options.clone()).expect("open");
        for i in 0..20 {
            let d = NewDelivery::new("1231", format!("old-{i}"), "message.sent", &b"{}"[..]);
            assert_eq!(store.insert(d).await, Ok(Inserted::New));
        }
        // Closed before the rename: a dropped store closes later, on its own thread.
        let other = dir.path().join("other.db");
        let replacement = SqliteStore::open(&other, SqliteOptions::default()).expect("open");
        for i in 0..3 {
            let d = NewDelivery::new("1231", format!("new-{i}"), "message.sent", &b"{}"[..]);
            assert_eq!(replacement.insert(d).await, Ok(Inserted::New));
        }
        replacement.close().await;

        // A reader of the old file, in the middle of a read, holds on to the WAL for a while. A
        // commit after its start keeps a frame in the WAL it must not be emptied of meanwhile
        // (had everything been copied before the read began, the read would need no WAL).
        let reader = noticed_by_a_write.then(|| {
            let conn = rusqlite::Connection::open(&path).expect("reader");
            conn.execute_batch("BEGIN; SELECT count(*) FROM events;")
                .expect("a read under way");
            conn
        });
        if noticed_by_a_write {
            let d = NewDelivery::new("1231", "old-last", "message.sent", &b"{}"[..]);
            assert_eq!(store.insert(d).await, Ok(Inserted::New));
        }
        std::fs::rename(&other, &path).expect("rename over the store");
        if noticed_by_a_write {
            let d = NewDelivery::new("1231", "after", "message.sent", &b"{}"[..]);
            assert!(matches!(
                store.insert(d).await,
                Err(StoreError::Unavailable(_))
            ));
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert!(
                std::fs::metadata(&wal).expect("the WAL").len() > 0,
                "emptied while a reader needed it"
            );
        }
        drop(reader);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&wal).expect("the WAL").len() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "noticed by a write: {noticed_by_a_write}: the WAL was not emptied"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // What a kill would leave, copied elsewhere: the next open finds the replacement as it was.
        let crashed = tempfile::tempdir().expect("tempdir");
        for name in ["inbox.db", "inbox.db-wal", "inbox.db-shm"] {
            std::fs::copy(dir.path().join(name), crashed.path().join(name)).expect("copy");
        }
        let conn = rusqlite::Connection::open(crashed.path().join("inbox.db")).expect("open");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .expect("integrity_check");
        assert_eq!(check, "ok");
        let hashes: Vec<String> = conn
            .prepare("SELECT event_hash FROM events ORDER BY id")
            .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
            .expect("events");
        assert_eq!(
            hashes,
            ["new-0", "new-1", "new-2"],
            "noticed by a write: {noticed_by_a_write}"
        );
        store.close().await;
    }
}
