//! Regressions for what a review found in the SQLite store and the dispatcher: each test failed
//! before its fix.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ccai::inbox::{
    CallbackConsumer, DeliveryStatus, Dispatcher, ListFilter, ListRequest, NewDelivery,
    ReplayTarget, Retention, RetrySchedule, SqliteOptions, SqliteStore, Store, StoreError,
};

use crate::support::{claim_one, finish_dead, temp_store, wait_for};

fn event(hash: &str) -> NewDelivery {
    NewDelivery::new(
        "1231",
        hash,
        "message.sent",
        format!("{{\"eventHash\":\"{hash}\"}}"),
    )
}

/// A consumer that panics used to leave its delivery in progress, retried every lease forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_consumer_reaches_the_dead_letter() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let dispatcher = Dispatcher::builder(
        Arc::clone(&store),
        CallbackConsumer::new(move |_event| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if true {
                    panic!("consumer bug");
                }
                Ok::<(), std::io::Error>(())
            }
        }),
    )
    .retry_schedule(
        "20ms"
            .parse::<RetrySchedule>()
            .expect("schedule")
            .jitter(0.0),
    )
    .lease(Duration::from_secs(10))
    .poll_interval(Duration::from_millis(20))
    .start();
    store.insert(event("panics")).await.expect("insert");
    let dead = wait_for(
        "the panicking event to be dead",
        Duration::from_secs(15),
        || {
            let store = Arc::clone(&store);
            async move {
                let d = store.get("panics").await.expect("get").expect("stored");
                (d.summary.deliveries[0].status == DeliveryStatus::Dead).then_some(d)
            }
        },
    )
    .await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the schedule allows two attempts"
    );
    assert!(
        dead.attempts
            .iter()
            .all(|a| a.error.as_deref().unwrap_or("").contains("panicked")),
        "{:?}",
        dead.attempts
    );
    dispatcher.shutdown(Duration::from_secs(5)).await;
}

/// Replaying an event whose body was purged used to forward an empty body with the signature.
#[tokio::test]
async fn purged_bodies_are_not_replayed() {
    let t = temp_store(SqliteOptions::default());
    let store = &t.store;
    let old = SystemTime::now() - Duration::from_secs(40 * 24 * 3600);
    store
        .insert(event("old").received_at(old))
        .await
        .expect("insert");
    let claimed = claim_one(store).await.expect("claim");
    finish_dead(store, &claimed[0].lease).await;
    let purged = store
        .purge(Retention::default(), SystemTime::now())
        .await
        .expect("purge");
    assert_eq!(purged.bodies_purged, 1);
    let dead = ListFilter::new().status(DeliveryStatus::Dead);
    assert_eq!(
        store.requeue_dead(dead.clone()).await.expect("requeue").due,
        0
    );
    assert_eq!(
        store
            .replay(ReplayTarget::Hash("old".into()))
            .await
            .expect("replay")
            .due,
        0
    );
    let page = store.list(ListRequest::new(dead, 10)).await.expect("list");
    assert_eq!(page.events.len(), 1, "still dead, nothing to send");
}

/// A replayed dead event gets its whole schedule again, not a single attempt.
#[tokio::test]
async fn replaying_a_dead_event_by_hash_starts_its_schedule_over() {
    let t = temp_store(SqliteOptions::default());
    let store = &t.store;
    store.insert(event("dead")).await.expect("insert");
    let claimed = claim_one(store).await.expect("claim");
    finish_dead(store, &claimed[0].lease).await;
    assert_eq!(
        store
            .replay(ReplayTarget::Hash("dead".into()))
            .await
            .expect("replay")
            .due,
        1
    );
    let again = claim_one(store).await.expect("claim again");
    assert_eq!(again[0].attempt, 1);
}

/// A negative schema version is a corrupt file, not an empty store that fails on every call.
#[test]
fn a_negative_schema_version_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.db");
    let conn = rusqlite::Connection::open(&path).expect("create");
    conn.execute_batch("PRAGMA user_version = -3")
        .expect("version");
    drop(conn);
    let err = SqliteStore::open(&path, SqliteOptions::default()).expect_err("refused");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}

/// Opening a current store needs no write lock: a reader opens while another process writes.
#[tokio::test]
async fn a_current_store_opens_while_another_process_holds_the_write_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.db");
    let first = SqliteStore::open(&path, SqliteOptions::default()).expect("create");
    first.insert(event("seen")).await.expect("insert");
    let holder = rusqlite::Connection::open(&path).expect("second connection");
    holder.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    let reader = SqliteStore::open(
        &path,
        SqliteOptions::default().busy_timeout(Duration::from_millis(100)),
    )
    .expect("opens without the write lock");
    assert!(reader.get("seen").await.expect("get").is_some());
    holder.execute_batch("ROLLBACK").expect("release");
}
