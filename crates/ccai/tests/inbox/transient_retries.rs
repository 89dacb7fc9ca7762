//! Writes worth finishing (a release at shutdown, a deduplication record) are tried again when
//! another connection holds the file's write lock past the store's busy timeout for a moment:
//! given up at once, the lease or the claim stayed until it lapsed.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ccai::inbox::{
    CallbackConsumer, DeliveryStatus, Dispatcher, InboxEvent, NewDelivery, SqliteOptions,
    SqliteStore, Store,
};
use ccai::webhook::{Claim, Deduper};

use crate::support::{temp_store, wait_for};

/// Shorter than the store's retries with it (five tries, 0.75 s of pauses), longer than three
/// busy timeouts: the first try alone would fail.
const HOLD: Duration = Duration::from_millis(300);

fn short_busy_timeout() -> SqliteOptions {
    SqliteOptions::default().busy_timeout(Duration::from_millis(50))
}

/// Takes the file's write lock from a connection of its own (another process, as far as the
/// store can tell) and gives it back after [`HOLD`]; returns once it is held.
fn hold_write_lock(path: &Path) -> std::thread::JoinHandle<Duration> {
    let (held, is_held) = std::sync::mpsc::channel();
    let path = path.to_owned();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&path).expect("open raw");
        conn.execute_batch("BEGIN IMMEDIATE")
            .expect("take the write lock");
        let since = Instant::now();
        held.send(()).expect("say it is held");
        std::thread::sleep(HOLD);
        conn.execute_batch("ROLLBACK").expect("give it back");
        since.elapsed()
    });
    is_held.recv().expect("the lock is held");
    holder
}

fn dedup_state(path: &Path, hash: &str) -> Option<String> {
    let conn = rusqlite::Connection::open(path).expect("open raw");
    conn.query_row(
        "SELECT state FROM dedup WHERE event_hash = ?1",
        [hash],
        |row| row.get(0),
    )
    .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_waits_out_a_write_lock_held_a_moment() {
    let t = temp_store(short_busy_timeout());
    let path = Path::new(t.store.path()).to_owned();
    let deduper = t.store.deduper();
    assert_eq!(deduper.claim("h1").await.ok(), Some(Claim::Acquired));
    let holder = hold_write_lock(&path);
    deduper
        .complete("h1")
        .await
        .expect("completed once the lock is back");
    assert!(holder.join().expect("holder") >= HOLD);
    assert_eq!(dedup_state(&path, "h1").as_deref(), Some("completed"));
    assert_eq!(
        deduper.claim("h1").await.ok(),
        Some(Claim::AlreadyCompleted)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_waits_out_a_write_lock_held_a_moment() {
    let t = temp_store(short_busy_timeout());
    let path = Path::new(t.store.path()).to_owned();
    let deduper = t.store.deduper();
    assert_eq!(deduper.claim("h1").await.ok(), Some(Claim::Acquired));
    let holder = hold_write_lock(&path);
    deduper
        .release("h1")
        .await
        .expect("released once the lock is back");
    holder.join().expect("holder");
    assert_eq!(dedup_state(&path, "h1"), None, "no claim in flight");
    // Another process's retry acquires it at once, not after the five-minute lease.
    let other = SqliteStore::open(&path, short_busy_timeout()).expect("open again");
    let claimed = tokio::time::timeout(Duration::from_secs(2), other.deduper().claim("h1")).await;
    assert_eq!(claimed.ok().and_then(Result::ok), Some(Claim::Acquired));
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_released_at_shutdown_after_a_write_lock_held_a_moment() {
    let t = temp_store(short_busy_timeout());
    let path = Path::new(t.store.path()).to_owned();
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let started = Arc::new(AtomicUsize::new(0));
    let consumer = {
        let started = Arc::clone(&started);
        CallbackConsumer::new(move |_event: InboxEvent| {
            started.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<Result<(), std::io::Error>>()
        })
    };
    let dispatcher = Dispatcher::builder(Arc::clone(&store), consumer)
        .lease(Duration::from_secs(60))
        .poll_interval(Duration::from_millis(20))
        .start();
    store
        .insert(NewDelivery::new(
            "1231",
            "stuck",
            "message.sent",
            &b"{}"[..],
        ))
        .await
        .expect("insert");
    wait_for("the attempt to start", Duration::from_secs(15), || async {
        (started.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    let holder = hold_write_lock(&path);
    let report = dispatcher.shutdown(Duration::ZERO).await;
    holder.join().expect("holder");
    assert_eq!(report.released, 1, "{report:?}");
    let stuck = store.get("stuck").await.expect("get").expect("stored");
    let state = &stuck.summary.deliveries[0];
    // Due at once, not in a minute when the lease lapses.
    assert_eq!((state.status, state.attempts), (DeliveryStatus::Pending, 0));
    assert!(
        state
            .next_attempt_at
            .is_some_and(|due| due <= std::time::SystemTime::now()),
        "{state:?}"
    );
}

/// A claim whose caller went away after it was written, before its answer came back (a
/// cancelled request), is released from the claim's `Drop`: that release is tried again too,
/// on a task of its own, so a write lock held a moment does not leave the event claimed until
/// its five-minute lease lapses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_dropped_before_its_answer_is_released_after_a_write_lock_held_a_moment() {
    let t = temp_store(short_busy_timeout());
    let path = Path::new(t.store.path()).to_owned();
    let deduper = t.store.deduper();
    let mut claim = deduper.claim("h1");
    // Polled once: sent to the writer, its answer not read.
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(claim.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "the claim was answered at once");
    wait_for(
        "the claim to be written",
        Duration::from_secs(15),
        || async { (dedup_state(&path, "h1").as_deref() == Some("in_flight")).then_some(()) },
    )
    .await;
    let holder = hold_write_lock(&path);
    drop(claim);
    holder.join().expect("holder");
    wait_for(
        "the claim to be released",
        Duration::from_secs(15),
        || async { dedup_state(&path, "h1").is_none().then_some(()) },
    )
    .await;
    // Another process's retry acquires it at once, not after the five-minute lease.
    let other = SqliteStore::open(&path, short_busy_timeout()).expect("open again");
    let claimed = tokio::time::timeout(Duration::from_secs(2), other.deduper().claim("h1")).await;
    assert_eq!(claimed.ok().and_then(Result::ok), Some(Claim::Acquired));
    other.close().await;
}
