//! `SqliteOptions::read_timeout`: a read that runs past it is stopped with a clear error, and the
//! store's readers go on serving.

use std::time::{Duration, SystemTime};

use ccai::inbox::{
    AttemptOutcome, AttemptRecord, Finish, LeaseRequest, ListFilter, ListRequest, NewDelivery,
    ReplayTarget, SqliteOptions, SqliteStore, Store, StoreError, DEFAULT_DESTINATION,
};

/// Events whose bodies are a long run of `a`, and that run's length: 25 MB in all.
const EVENTS: usize = 100;
const TEXT: usize = 256 * 1024;

/// A search that matches no body and is compared in full at every position of every body
/// (SQLite's `instr`), as long as a search may be: about 3 ms a body, 0.3 s over [`EVENTS`].
fn slow_search() -> ListFilter {
    ListFilter::new().text(format!("{}b", "a".repeat(ListFilter::MAX_TEXT_LEN - 1)))
}

/// Stores [`EVENTS`] events `h0`, `h1`, … whose bodies are [`TEXT`] `a`s.
async fn fill(store: &SqliteStore) {
    let text = "a".repeat(TEXT);
    for i in 0..EVENTS {
        let hash = format!("h{i}");
        let body = format!(r#"{{"eventHash":"{hash}","data":{{"Message":"{text}"}}}}"#);
        let delivery = NewDelivery::new("1231", hash.as_str(), "message.incoming", body);
        store.insert(delivery).await.expect("insert");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_past_the_read_timeout_is_stopped_and_the_next_read_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions::new()
        .read_timeout(Duration::from_millis(50))
        // One reader kept: the read after the stopped one runs on the same connection.
        .readers(1);
    let store = SqliteStore::open(dir.path().join("inbox.db"), options).expect("open");
    fill(&store).await;

    let stopped = store.list(ListRequest::new(slow_search(), 50)).await;
    match &stopped {
        Err(error @ StoreError::Unavailable(why)) => {
            assert!(
                why.contains("the read took longer than 0.05 s")
                    && why.contains("narrow the filter"),
                "{why}"
            );
            let message = error.to_string();
            assert!(!message.contains('\n'), "one line: {message:?}");
        }
        other => panic!("the slow search was not stopped: {other:?}"),
    }

    // The same reader connection answers the next reads, a search among them.
    let stats = store.stats(SystemTime::now()).await.expect("stats after");
    assert_eq!(stats.events, EVENTS as u64);
    let found = store
        .list(ListRequest::new(
            ListFilter::new().text(r#""eventHash":"h7""#),
            50,
        ))
        .await
        .expect("an ordinary search after");
    assert_eq!(found.events.len(), 1);
    assert_eq!(found.events[0].event_hash, "h7");
    store.close().await;
}

/// The writer's statements are never under the read timeout (one stopped half-way would undo a
/// batch of writes): on a store whose reads are stopped after 1 ms, writes that scan every body
/// (a requeue and a replay by text, as `ccai events replay --contains` runs), claims and finishes
/// all go through, while a read with the same filter is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_never_stopped_by_the_read_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions::new().read_timeout(Duration::from_millis(1));
    let store = SqliteStore::open(dir.path().join("inbox.db"), options).expect("open");
    fill(&store).await;
    // Every body but one is scanned to its end, 25 MB in all: far more than 1 ms.
    let one = ListFilter::new().text(r#""eventHash":"h7""#);
    match store.list(ListRequest::new(one.clone(), 50)).await {
        Err(StoreError::Unavailable(why)) if why.contains("longer than 0.001 s") => {}
        other => panic!("the read was not stopped: {other:?}"),
    }

    let now = SystemTime::now();
    let lease = LeaseRequest::new("worker", Duration::from_secs(60));
    let claimed = store
        .claim(DEFAULT_DESTINATION, lease.clone(), EVENTS, now)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), EVENTS);
    for delivery in &claimed {
        let attempt = AttemptRecord::new(now, Duration::from_millis(5), AttemptOutcome::Failure);
        let finished = store.finish(&delivery.lease, Finish::Dead, attempt).await;
        assert_eq!(finished, Ok(true), "{}", delivery.event_hash);
    }
    let requeued = store
        .requeue_dead(one.clone())
        .await
        .expect("requeue by text");
    assert_eq!(requeued.due, 1);
    let replayed = store
        .replay(ReplayTarget::Filter(one))
        .await
        .expect("replay by text");
    assert_eq!(replayed.due, 1);
    let due = store
        .claim(DEFAULT_DESTINATION, lease, EVENTS, SystemTime::now())
        .await
        .expect("claim again");
    let hashes: Vec<&str> = due.iter().map(|d| d.event_hash.as_str()).collect();
    assert_eq!(hashes, ["h7"]);
    store.close().await;
}
