//! `SqliteOptions::read_timeout`: a read that runs past it is stopped with a clear error, and the
//! store's readers go on serving.

use std::time::{Duration, SystemTime};

use ccai::inbox::{
    ListFilter, ListRequest, NewDelivery, SqliteOptions, SqliteStore, Store, StoreError,
};

/// Events whose bodies are a long run of `a`, and that run's length: 25 MB in all.
const EVENTS: usize = 100;
const TEXT: usize = 256 * 1024;

/// A search that matches no body and is compared in full at every position of every body
/// (SQLite's `instr`): seconds over [`EVENTS`] bodies.
fn slow_search() -> ListFilter {
    ListFilter::new().text(format!("{}b", "a".repeat(4000)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_past_the_read_timeout_is_stopped_and_the_next_read_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions::new()
        .read_timeout(Duration::from_millis(200))
        // One reader kept: the read after the stopped one runs on the same connection.
        .readers(1);
    let store = SqliteStore::open(dir.path().join("inbox.db"), options).expect("open");
    let text = "a".repeat(TEXT);
    for i in 0..EVENTS {
        let hash = format!("h{i}");
        let body = format!(r#"{{"eventHash":"{hash}","data":{{"Message":"{text}"}}}}"#);
        let delivery = NewDelivery::new("1231", hash.as_str(), "message.incoming", body);
        store.insert(delivery).await.expect("insert");
    }

    let stopped = store.list(ListRequest::new(slow_search(), 50)).await;
    match &stopped {
        Err(error @ StoreError::Unavailable(why)) => {
            assert!(
                why.contains("the read took longer than 0.2 s")
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
