//! `SqliteStore` opened with `SqliteOptions::read_only`: reads work, on a closed store and beside
//! a running writer; every write answers `StoreError::ReadOnly`; nothing in the file changes; the
//! schema is checked, never migrated.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ccai::inbox::{
    AttemptOutcome, AttemptRecord, DeliveryStatus, Finish, LeaseRequest, ListFilter, ListRequest,
    NewDelivery, ReplayTarget, Retention, SqliteOptions, SqliteStore, Store, StoreError,
    SCHEMA_VERSION,
};

fn delivery(hash: &str) -> NewDelivery {
    NewDelivery::new(
        "1231",
        hash,
        "message.sent",
        format!("{{\"h\":\"{hash}\"}}").into_bytes(),
    )
}

/// A store with two events, one of them dead, closed cleanly (no `-wal`, no `-shm`).
async fn closed_store(dir: &Path) -> PathBuf {
    let path = dir.join("inbox.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
    for hash in ["h1", "h2"] {
        store.insert(delivery(hash)).await.expect("insert");
    }
    let lease = LeaseRequest::new("w", Duration::from_secs(30));
    let claimed = store
        .claim("default", lease, 1, SystemTime::now())
        .await
        .expect("claim");
    let record = AttemptRecord::new(SystemTime::now(), Duration::ZERO, AttemptOutcome::Failure);
    let finished = store.finish(&claimed[0].lease, Finish::Dead, record).await;
    assert_eq!(finished, Ok(true));
    store.close().await;
    assert!(!dir.join("inbox.db-wal").exists());
    path
}

fn read_only() -> SqliteOptions {
    SqliteOptions::new().read_only(true)
}

fn is_read_only(result: Result<impl std::fmt::Debug, StoreError>, path: &Path) {
    match result {
        Err(StoreError::ReadOnly {
            path: shown,
            refused,
        }) => {
            assert_eq!(shown, path.display().to_string());
            assert_eq!(refused, "it takes no writes");
        }
        other => panic!("not refused as read-only: {other:?}"),
    }
}

#[tokio::test]
async fn a_read_only_store_reads_and_refuses_every_write_saying_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = closed_store(dir.path()).await;
    let before = std::fs::read(&path).expect("read");

    let store = SqliteStore::open(&path, read_only()).expect("open read-only");
    let page = store
        .list(ListRequest::new(ListFilter::new(), 10))
        .await
        .expect("list");
    assert_eq!(page.events.len(), 2);
    let detail = store.get("h1").await.expect("get").expect("stored");
    assert_eq!(detail.body.as_deref(), Some(&b"{\"h\":\"h1\"}"[..]));
    let stats = store.stats(SystemTime::now()).await.expect("stats");
    assert_eq!((stats.events, stats.count(DeliveryStatus::Dead)), (2, 1));

    is_read_only(store.insert(delivery("h3")).await, &path);
    let lease = LeaseRequest::new("w", Duration::from_secs(30));
    is_read_only(
        store.claim("default", lease, 1, SystemTime::now()).await,
        &path,
    );
    is_read_only(store.replay(ReplayTarget::Hash("h1".into())).await, &path);
    let dead = ListFilter::new().status(DeliveryStatus::Dead);
    is_read_only(store.requeue_dead(dead).await, &path);
    let retention = Retention::new(Duration::ZERO, Duration::ZERO);
    let later = SystemTime::now() + Duration::from_secs(3600);
    is_read_only(store.purge(retention, later).await, &path);
    is_read_only(store.check_writable().await, &path);
    assert!(matches!(
        store.write_failure(),
        Some(StoreError::ReadOnly { .. })
    ));
    let error = store.insert(delivery("h4")).await.expect_err("refused");
    assert!(!error.is_transient(), "the same handle never will write");
    assert!(
        error.to_string().contains("was opened read-only")
            && error.to_string().contains("open it writable"),
        "{error}"
    );
    store.close().await;

    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "the file is as it was"
    );
}

/// Beside a running writer (its `-wal` and `-shm` there), reads see its commits, even those
/// not yet checkpointed into the file.
#[tokio::test]
async fn a_read_only_store_sees_a_running_writers_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = closed_store(dir.path()).await;
    let writer = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
    writer.insert(delivery("h3")).await.expect("insert");
    assert!(dir.path().join("inbox.db-wal").exists());

    let reader = SqliteStore::open(&path, read_only()).expect("open read-only");
    assert_eq!(
        reader.stats(SystemTime::now()).await.expect("stats").events,
        3
    );
    writer.insert(delivery("h4")).await.expect("insert");
    assert!(reader.get("h4").await.expect("get").is_some());
    reader.close().await;
    writer.close().await;
}

#[tokio::test]
async fn a_read_only_open_migrates_nothing_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = closed_store(dir.path()).await;
    let set_version = |version: i64| {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.pragma_update(None, "user_version", version)
            .expect("user_version");
    };

    // An older schema: one writable open must migrate it first.
    set_version(SCHEMA_VERSION - 1);
    let before = std::fs::read(&path).expect("read");
    match SqliteStore::open(&path, read_only()) {
        Err(StoreError::ReadOnly { refused, .. }) => assert!(
            refused.contains(&format!("its schema {}", SCHEMA_VERSION - 1))
                && refused.contains("needs one writable open first"),
            "{refused}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&path).expect("read"), before, "not migrated");

    // A newer one: refused as ever.
    set_version(SCHEMA_VERSION + 1);
    let newer = SqliteStore::open(&path, read_only()).expect_err("newer");
    assert!(
        matches!(newer, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1),
        "{newer:?}"
    );

    // No file, or an empty one: no inbox, and none is created.
    let missing = dir.path().join("missing.db");
    let refused = SqliteStore::open(&missing, read_only()).expect_err("missing");
    assert!(
        matches!(refused, StoreError::InvalidRequest(_)),
        "{refused:?}"
    );
    assert!(!missing.exists());
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").expect("create");
    let refused = SqliteStore::open(&empty, read_only()).expect_err("empty");
    assert!(
        matches!(refused, StoreError::InvalidRequest(_)),
        "{refused:?}"
    );
    assert_eq!(std::fs::metadata(&empty).expect("metadata").len(), 0);
}

/// In a folder this process may write (another user's file in `/tmp`, a group's folder), a read
/// creates no `-wal` or `-shm` beside a closed store: left there, owned by the reader, they would
/// keep the file's owner from writing the store again (and, in a sticky folder, from removing
/// them).
#[tokio::test]
async fn a_read_only_store_leaves_nothing_beside_a_closed_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = closed_store(dir.path()).await;

    let store = SqliteStore::open(&path, read_only()).expect("open read-only");
    assert_eq!(
        store.stats(SystemTime::now()).await.expect("stats").events,
        2
    );
    store.close().await;

    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["inbox.db"], "nothing created beside the store");
}

/// A writer started after the read-only store opened (the owner's `ccai listen` started beside a
/// `ccai ui`) is seen by the next read: a store closed cleanly is read as immutable, which would
/// never see it.
#[tokio::test]
async fn a_read_only_store_sees_a_writer_started_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = closed_store(dir.path()).await;
    let reader = SqliteStore::open(&path, read_only()).expect("open read-only");
    let events = || async { reader.stats(SystemTime::now()).await.expect("stats").events };
    assert_eq!(events().await, 2);

    let writer = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
    writer.insert(delivery("h3")).await.expect("insert");
    assert_eq!(events().await, 3, "beside the running writer");
    writer.close().await;
    assert_eq!(events().await, 3, "once it closed");
    reader.close().await;
}
