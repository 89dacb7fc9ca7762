//! `SqliteOptions::read_timeout`: a read that runs past it is stopped with a clear error, and the
//! store's readers go on serving.

use std::time::{Duration, Instant, SystemTime};

use ccai::inbox::{
    AttemptOutcome, AttemptRecord, DeliveryStatus, Finish, LeaseRequest, ListFilter, ListRequest,
    NewDelivery, ReplayReport, ReplayTarget, SqliteOptions, SqliteStore, Store, StoreError,
    DEFAULT_DESTINATION,
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
        Err(error @ StoreError::ReadStopped(why)) => {
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

    // The same reader connection answers the next reads, a search among them: one each body
    // matches at its start (a search that matches few bodies reads all 25 MB, 40 ms here, too
    // near the 50 ms under load).
    let stats = store.stats(SystemTime::now()).await.expect("stats after");
    assert_eq!(stats.events, EVENTS as u64);
    let found = store
        .list(ListRequest::new(
            ListFilter::new().text(r#"{"eventHash":"h"#),
            10,
        ))
        .await
        .expect("an ordinary search after");
    let hashes: Vec<&str> = found.events.iter().map(|e| e.event_hash.as_str()).collect();
    assert_eq!(
        hashes,
        ["h99", "h98", "h97", "h96", "h95", "h94", "h93", "h92", "h91", "h90"]
    );
    store.close().await;
}

/// The writer's statements are never under the read timeout (one stopped half-way would undo a
/// batch of writes): on a store whose reads are stopped after 1 ms, claims, finishes, and a
/// requeue and a replay by type (which read every event) all go through, while a read is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_never_stopped_by_the_read_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions::new().read_timeout(Duration::from_millis(1));
    let store = SqliteStore::open(dir.path().join("inbox.db"), options).expect("open");
    fill(&store).await;
    // Every body but one is scanned to its end, 25 MB in all: far more than 1 ms.
    let one = ListFilter::new().text(r#""eventHash":"h7""#);
    match store.list(ListRequest::new(one, 50)).await {
        Err(StoreError::ReadStopped(why)) if why.contains("longer than 0.001 s") => {}
        other => panic!("the read was not stopped: {other:?}"),
    }

    let now = SystemTime::now();
    let lease = LeaseRequest::new("worker", Duration::from_secs(60));
    kill_all(&store, &lease, now).await;
    let every = || ListFilter::new().event_type("message.incoming");
    let requeued = store.requeue_dead(every()).await.expect("requeue by type");
    assert_eq!(requeued.due, EVENTS as u64);
    let replayed = store
        .replay(ReplayTarget::Filter(every()))
        .await
        .expect("replay by type");
    assert_eq!(replayed.due, EVENTS as u64);
    let due = store
        .claim(DEFAULT_DESTINATION, lease, EVENTS, SystemTime::now())
        .await
        .expect("claim again");
    assert_eq!(due.len(), EVENTS);
    store.close().await;
}

/// Claims every delivery and finishes it dead.
async fn kill_all(store: &SqliteStore, lease: &LeaseRequest, now: SystemTime) {
    let claimed = store
        .claim(DEFAULT_DESTINATION, lease.clone(), EVENTS + 1, now)
        .await
        .expect("claim");
    for delivery in &claimed {
        let attempt = AttemptRecord::new(now, Duration::from_millis(5), AttemptOutcome::Failure);
        let finished = store.finish(&delivery.lease, Finish::Dead, attempt).await;
        assert_eq!(finished, Ok(true), "{}", delivery.event_hash);
    }
}

/// A replay or a requeue of the dead by text searches the bodies as a read does, before it
/// writes: a crafted text is stopped at the read timeout, with the read's transient error, and
/// nothing is made due. (Run by the writer thread, as it was, it held up every insert until it
/// ended, for minutes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_or_requeue_by_a_crafted_text_is_stopped_at_the_read_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.db");
    let options = SqliteOptions::new().read_timeout(Duration::from_millis(50));
    let store = SqliteStore::open(&path, options.clone()).expect("open");
    fill(&store).await;
    let lease = LeaseRequest::new("worker", Duration::from_secs(60));
    kill_all(&store, &lease, SystemTime::now()).await;

    let stopped = |result: Result<ReplayReport, StoreError>, what: &str| match result {
        Err(error @ StoreError::ReadStopped(_)) => {
            assert!(error.is_transient(), "{what}");
            assert!(
                error.to_string().contains("took longer than 0.05 s"),
                "{what}: {error}"
            );
        }
        other => panic!("{what}: not stopped: {other:?}"),
    };
    stopped(
        store.replay(ReplayTarget::Filter(slow_search())).await,
        "replay",
    );
    stopped(store.requeue_dead(slow_search()).await, "requeue");
    let stats = store.stats(SystemTime::now()).await.expect("stats");
    assert_eq!(
        stats.count(DeliveryStatus::Dead),
        EVENTS as u64,
        "all still dead"
    );
    store.close().await;
    // Closed: refused as any write to it is, not searched.
    let closed = store.replay(ReplayTarget::Filter(slow_search())).await;
    assert!(
        matches!(&closed, Err(StoreError::Unavailable(why)) if why.contains("the store is closed")),
        "{closed:?}"
    );

    // A store that takes no writes says so before it searches: the search would be stopped.
    let store = SqliteStore::open(&path, options.read_only(true)).expect("open read-only");
    let replayed = store.replay(ReplayTarget::Filter(slow_search())).await;
    assert!(
        matches!(replayed, Err(StoreError::ReadOnly { .. })),
        "{replayed:?}"
    );
    let requeued = store.requeue_dead(slow_search()).await;
    assert!(
        matches!(requeued, Err(StoreError::ReadOnly { .. })),
        "{requeued:?}"
    );
    store.close().await;
}

/// While a replay by text searches, inserts are stored and answered: the search runs on a reader
/// connection, and only the update of the events it found waits for the writer. Here the search
/// (as long as a search may be, over 25 MB) is still running when the inserts sent after it began
/// have all been answered; it finds the one event with the text, and that event alone is due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_go_on_while_a_replay_by_text_searches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions::new().read_timeout(Duration::from_secs(600));
    let store = SqliteStore::open(dir.path().join("inbox.db"), options).expect("open");
    fill(&store).await;
    let needle = format!("{}b", "a".repeat(ListFilter::MAX_TEXT_LEN - 1));
    let body = format!(r#"{{"eventHash":"found","data":{{"Message":"{needle}"}}}}"#);
    let found = NewDelivery::new("1231", "found", "message.incoming", body);
    store.insert(found).await.expect("insert");
    let lease = LeaseRequest::new("worker", Duration::from_secs(60));
    kill_all(&store, &lease, SystemTime::now()).await;

    let replaying = store.clone();
    let filter = ListFilter::new().text(needle);
    let mut replay = Box::pin(async move {
        let report = replaying.replay(ReplayTarget::Filter(filter)).await;
        (report, Instant::now())
    });
    // Polled once here, so that it is under way (its search, or before, its write queued)
    // before the first insert is sent.
    tokio::select! {
        biased;
        (report, _) = &mut replay => panic!("the replay ended at once: {report:?}"),
        () = std::future::ready(()) => {}
    }
    let replay = tokio::spawn(replay);
    let mut inserted = Instant::now();
    for i in 0..5 {
        let hash = format!("new{i}");
        let delivery = NewDelivery::new("1231", hash.as_str(), "message.sent", "{}");
        store
            .insert(delivery)
            .await
            .expect("insert during the replay");
        inserted = Instant::now();
    }
    // Answered before the replay made anything due: a replay run by the writer commits before
    // the inserts queued behind it do.
    let found = store.get("found").await.expect("get").expect("stored");
    assert_eq!(
        found.summary.deliveries[0].status,
        DeliveryStatus::Dead,
        "the inserts waited for the replay"
    );
    let (report, replayed) = replay.await.expect("the replay task");
    assert_eq!(report.map(|r| (r.due, r.purged)), Ok((1, 0)));
    assert!(
        inserted < replayed,
        "the inserts were answered after the replay"
    );
    let due = store
        .claim(DEFAULT_DESTINATION, lease, EVENTS + 10, SystemTime::now())
        .await
        .expect("claim");
    let mut hashes: Vec<&str> = due.iter().map(|d| d.event_hash.as_str()).collect();
    hashes.sort_unstable();
    assert_eq!(hashes, ["found", "new0", "new1", "new2", "new3", "new4"]);
    store.close().await;
}

/// The error of a read stopped at its deadline gives advice that fits the read: narrowing the
/// filter helps a list, while an event's details and the counters take no filter. Here one event
/// has half a million dead deliveries (written into the file directly), so that reading its
/// details, or counting the dead, takes longer than 1 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_read_s_advice_fits_the_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.db");
    let store = SqliteStore::open(&path, SqliteOptions::new()).expect("open");
    let delivery = NewDelivery::new("1231", "h1", "message.incoming", "{}");
    store.insert(delivery).await.expect("insert");
    store.close().await;
    let conn = rusqlite::Connection::open(&path).expect("open the file");
    conn.execute(
        "INSERT INTO deliveries (event_id, destination, status, attempts)
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500000)
         SELECT (SELECT id FROM events), 'd' || i, 'dead', 1 FROM n",
        [],
    )
    .expect("deliveries");
    drop(conn);
    let options = SqliteOptions::new().read_timeout(Duration::from_millis(1));
    let store = SqliteStore::open(&path, options).expect("open again");

    let stopped = |result: Result<(), StoreError>, what: &str| match result {
        Err(StoreError::ReadStopped(why)) if why.contains("took longer than 0.001 s") => why,
        other => panic!("{what}: not stopped: {other:?}"),
    };
    let listed = stopped(
        store
            .list(ListRequest::new(
                ListFilter::new().event_type("message.incoming"),
                1,
            ))
            .await
            .map(drop),
        "list",
    );
    assert!(listed.contains("narrow the filter"), "{listed}");
    let got = stopped(store.get("h1").await.map(drop), "get");
    let counted = stopped(store.stats(SystemTime::now()).await.map(drop), "stats");
    for why in [got, counted] {
        assert!(!why.contains("filter ("), "no filter to narrow: {why}");
        assert!(why.contains("try again later"), "{why}");
    }
    store.close().await;
}
