//! A `PostgresStore` read that runs too long is stopped by the server (a `statement_timeout` a
//! little below the operation timeout) and fails with `StoreError::ReadStopped`, which a page's
//! live refresh does not repeat; one that waits for another session's lock is stopped a little
//! sooner (its `lock_timeout`) with the same error, saying so; writes keep the session's own
//! `statement_timeout` and `lock_timeout`.

use std::time::{Duration, Instant, SystemTime};

use ccai::inbox::{
    Inserted, ListFilter, ListRequest, NewDelivery, PostgresOptions, PostgresStore, ReplayTarget,
    Retention, Store, StoreError,
};

use crate::postgres::{raw, TempSchema};
use crate::postgres_url_or_skip;

/// A store on `schema` giving up on each operation after 1 s, with one pooled connection: the
/// reads and writes after a stopped read use the very connection it ran on.
async fn store_with_one_connection(url: &str, schema: &TempSchema) -> PostgresStore {
    PostgresStore::connect(
        url,
        PostgresOptions::default()
            .schema(schema.name.clone())
            .operation_timeout(Duration::from_secs(1))
            .pool_size(1)
            .listen(false),
    )
    .await
    .expect("connect")
}

fn delivery(hash: &str) -> NewDelivery {
    NewDelivery::new("1231", hash, "message.sent", format!(r#"{{"n":"{hash}"}}"#))
}

/// What every stopped read's message must leave out: the statement, and the search text.
fn assert_stopped(error: Result<impl std::fmt::Debug, StoreError>, advice: &str) {
    let Err(StoreError::ReadStopped(message)) = &error else {
        panic!("expected ReadStopped, got {error:?}");
    };
    assert!(
        message.contains("the read took longer than 0.75 s and was stopped by the server"),
        "{message}"
    );
    assert!(message.contains(advice), "{message}");
    assert!(
        message.contains("(schema ccai_test_"),
        "names the store: {message}"
    );
    for leak in ["SELECT", "position", "aaaa", "statement timeout"] {
        assert!(!message.contains(leak), "{leak:?} in {message}");
    }
}

#[tokio::test]
async fn a_slow_search_is_stopped_by_the_server_and_the_store_reads_on() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "slowread");
    let store = store_with_one_connection(&url, &schema).await;
    assert_eq!(store.insert(delivery("h1")).await, Ok(Inserted::New));
    // 60 bodies of 4 MB of `a`s, made by the server (compressed, they take little room): a
    // search for 1,023 `a`s then a `b` compares about a kilobyte at each of their 240 million
    // positions, for seconds.
    let client = raw(&url).await;
    let s = &schema.name;
    client
        .batch_execute(&format!(
            "INSERT INTO \"{s}\".events (client_id, event_hash, event_type, body, body_len,
                                          body_sha256, received_at)
             SELECT '1231', 'big' || i, 'message.sent', convert_to(repeat('a', 4000000), 'UTF8'),
                    4000000, '', 0
               FROM generate_series(1, 60) i"
        ))
        .await
        .expect("large bodies");

    let crafted = format!("{}b", "a".repeat(1023));
    let started = Instant::now();
    let search = ListRequest::new(ListFilter::new().text(crafted.clone()), 50);
    let stopped = store.list(search).await;
    let took = started.elapsed();
    assert_stopped(stopped, "narrow the filter");
    // The server stopped it (0.75 s), before the client would have given up (1 s) and closed the
    // connection as for a database that does not answer.
    assert!(took < Duration::from_secs(1), "took {took:?}");

    // The same connection reads on, its transaction ended, with no time limit left over.
    let page = store
        .list(ListRequest::new(ListFilter::new(), 100))
        .await
        .expect("a list after the stopped one");
    assert_eq!(page.events.len(), 61);
    let found = store.get("h1").await.expect("get").expect("h1");
    assert_eq!(found.summary.event_hash, "h1");
    assert_eq!(
        store.stats(SystemTime::now()).await.expect("stats").events,
        61
    );
    assert_eq!(store.insert(delivery("h2")).await, Ok(Inserted::New));
    store.close().await;
}

#[tokio::test]
async fn reads_without_a_filter_stopped_by_the_server_say_to_try_again_later() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "slowget");
    let store = store_with_one_connection(&url, &schema).await;
    assert_eq!(store.insert(delivery("h1")).await, Ok(Inserted::New));
    // Each event takes 2 s to read (the events behind a view that sleeps for each row, as on an
    // overloaded server): the reads run until the server stops them.
    let client = raw(&url).await;
    let s = &schema.name;
    client
        .batch_execute(&format!(
            "ALTER TABLE \"{s}\".events RENAME TO events_stored;
             CREATE FUNCTION \"{s}\".slowly() RETURNS boolean LANGUAGE sql
               AS 'SELECT pg_sleep(2) IS NOT NULL';
             CREATE VIEW \"{s}\".events AS
               SELECT * FROM \"{s}\".events_stored WHERE \"{s}\".slowly()"
        ))
        .await
        .expect("slow events");
    let later = "this read takes no filter, so try again later";
    assert_stopped(store.get("h1").await, later);
    assert_stopped(store.stats(SystemTime::now()).await, later);
    client
        .batch_execute(&format!(
            "DROP VIEW \"{s}\".events;
             ALTER TABLE \"{s}\".events_stored RENAME TO events"
        ))
        .await
        .expect("events back");
    assert!(store.get("h1").await.expect("get").is_some());
    assert_eq!(
        store.stats(SystemTime::now()).await.expect("stats").events,
        1
    );
    store.close().await;
}

/// That `read` waited for another session's lock until the server stopped it (its lock_timeout,
/// 0.562 s of the statement_timeout's 0.75 s), and says so, not to narrow its filter.
fn assert_waited_for_a_lock(read: Result<impl std::fmt::Debug, StoreError>) {
    let Err(error @ StoreError::ReadStopped(message)) = &read else {
        panic!("expected ReadStopped, got {read:?}");
    };
    assert!(error.is_transient(), "{error:?}");
    assert!(
        message.contains(
            "the read waited longer than 0.562 s for a lock that another session holds on the \
             store's tables"
        ),
        "{message}"
    );
    assert!(
        message.contains("and was stopped by the server"),
        "{message}"
    );
    assert!(message.contains("try again later"), "{message}");
    assert!(
        message.contains("look for the session holding the lock in pg_locks and pg_stat_activity"),
        "{message}"
    );
    assert!(
        message.contains("(schema ccai_test_"),
        "names the store: {message}"
    );
    for wrong in [
        "narrow the filter",
        "took longer than",
        "check the database server's load",
    ] {
        assert!(!message.contains(wrong), "{wrong:?} in {message}");
    }
    for leak in ["SELECT", "lock timeout", "canceling"] {
        assert!(!message.contains(leak), "{leak:?} in {message}");
    }
}

#[tokio::test]
async fn reads_waiting_for_another_sessions_lock_say_so_not_to_narrow_the_filter() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "lockedread");
    let store = store_with_one_connection(&url, &schema).await;
    assert_eq!(store.insert(delivery("h1")).await, Ok(Inserted::New));
    // Another session holds the tables (an `ALTER TABLE`, a `VACUUM FULL`) in a transaction
    // left open: every read waits for it.
    let mut client = raw(&url).await;
    let holder = client.transaction().await.expect("begin");
    let s = &schema.name;
    holder
        .batch_execute(&format!(
            "LOCK TABLE \"{s}\".events, \"{s}\".deliveries IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .expect("lock");
    let search = || ListRequest::new(ListFilter::new().text("n"), 10);
    assert_waited_for_a_lock(store.list(search()).await);
    assert_waited_for_a_lock(store.list(ListRequest::new(ListFilter::new(), 10)).await);
    assert_waited_for_a_lock(store.get("h1").await);
    assert_waited_for_a_lock(store.stats(SystemTime::now()).await);
    assert_waited_for_a_lock(store.destinations().await);
    holder.rollback().await.expect("release");

    // Released, the same connection reads and writes on.
    let page = store.list(search()).await.expect("list");
    assert_eq!(page.events.len(), 1);
    assert!(store.get("h1").await.expect("get").is_some());
    assert_eq!(
        store.stats(SystemTime::now()).await.expect("stats").events,
        1
    );
    store.destinations().await.expect("destinations");
    assert_eq!(store.insert(delivery("h2")).await, Ok(Inserted::New));
    store.close().await;
}

#[tokio::test]
async fn writes_on_a_session_that_read_keep_its_own_statement_and_lock_timeouts() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "readwrite");
    let store = store_with_one_connection(&url, &schema).await;
    let client = raw(&url).await;
    let s = &schema.name;
    // Each write to the tables notes the statement_timeout and lock_timeout it ran under.
    client
        .batch_execute(&format!(
            "CREATE TABLE \"{s}\".seen (setting text);
             CREATE FUNCTION \"{s}\".note() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 INSERT INTO \"{s}\".seen VALUES (
                   current_setting('statement_timeout') || '/' || current_setting('lock_timeout'));
                 RETURN NULL;
               END $$;
             CREATE TRIGGER note AFTER INSERT OR UPDATE OR DELETE ON \"{s}\".events
               FOR EACH STATEMENT EXECUTE FUNCTION \"{s}\".note();
             CREATE TRIGGER note AFTER INSERT OR UPDATE OR DELETE ON \"{s}\".deliveries
               FOR EACH STATEMENT EXECUTE FUNCTION \"{s}\".note();"
        ))
        .await
        .expect("triggers");
    let session_default: String = client
        .query_one(
            "SELECT current_setting('statement_timeout') || '/' || current_setting('lock_timeout')",
            &[],
        )
        .await
        .expect("show")
        .get(0);

    // Each write follows a read on the one pooled connection.
    let list = || store.list(ListRequest::new(ListFilter::new().text("n"), 10));
    list().await.expect("list");
    assert_eq!(store.insert(delivery("h1")).await, Ok(Inserted::New));
    store.stats(SystemTime::now()).await.expect("stats");
    let claimed = crate::support::claim_one(&store).await.expect("claim");
    store.get("h1").await.expect("get");
    crate::support::finish_dead(&store, &claimed[0].lease).await;
    list().await.expect("list");
    store
        .requeue_dead(ListFilter::new().text("n"))
        .await
        .expect("requeue");
    list().await.expect("list");
    let replayed = store
        .replay(ReplayTarget::Filter(ListFilter::new().text("n")))
        .await;
    replayed.expect("replay");
    list().await.expect("list");
    store.check_writable().await.expect("writable");
    list().await.expect("list");
    let purge_at = SystemTime::now() + Duration::from_secs(1);
    let retention = Retention::new(Duration::ZERO, Duration::ZERO);
    store.purge(retention, purge_at).await.expect("purge");

    let seen: Vec<String> = client
        .query(&format!("SELECT DISTINCT setting FROM \"{s}\".seen"), &[])
        .await
        .expect("seen")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(seen, vec![session_default]);
    let writes: i64 = client
        .query_one(&format!("SELECT count(*) FROM \"{s}\".seen"), &[])
        .await
        .expect("count")
        .get(0);
    assert!(writes >= 6, "{writes} writes noted");
    store.close().await;
}

#[tokio::test]
async fn reads_run_under_an_operation_timeout_longer_than_the_servers_largest_limit() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "longlimit");
    // PostgreSQL takes a statement_timeout or lock_timeout of at most 2^31 - 1 ms (24.8 days):
    // a program's longer operation_timeout must not make every read fail on `SET LOCAL`.
    for timeout in [Duration::from_secs(30 * 86_400), Duration::MAX] {
        let store = PostgresStore::connect(
            &url,
            PostgresOptions::default()
                .schema(schema.name.clone())
                .operation_timeout(timeout)
                .pool_size(1)
                .listen(false),
        )
        .await
        .expect("connect");
        let _ = store.insert(delivery("h1")).await.expect("insert");
        let page = store
            .list(ListRequest::new(ListFilter::new().text("n"), 10))
            .await
            .expect("list");
        assert_eq!(page.events.len(), 1);
        assert!(store.get("h1").await.expect("get").is_some());
        assert_eq!(
            store.stats(SystemTime::now()).await.expect("stats").events,
            1
        );
        store.destinations().await.expect("destinations");
        store.close().await;
    }
}
