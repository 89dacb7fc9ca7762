//! `StoreDeduper`: the `Deduper` protocol on the store's file, durable across reopening.

use std::sync::Arc;
use std::time::Duration;

use ccai::inbox::{SqliteOptions, SqliteStore};
use ccai::webhook::{Claim, Deduper};

use crate::support::temp_store;

#[tokio::test]
async fn claim_complete_release_follow_the_deduper_protocol() {
    let t = temp_store(SqliteOptions::default());
    let deduper = t.store.deduper();
    assert_eq!(deduper.claim("h1").await.ok(), Some(Claim::Acquired));
    // The callback failed: give it back, the retry acquires it.
    deduper.release("h1").await.expect("release");
    assert_eq!(deduper.claim("h1").await.ok(), Some(Claim::Acquired));
    deduper.complete("h1").await.expect("complete");
    assert_eq!(
        deduper.claim("h1").await.ok(),
        Some(Claim::AlreadyCompleted)
    );
    // Releasing a completed event does nothing.
    deduper.release("h1").await.expect("release");
    assert_eq!(
        deduper.claim("h1").await.ok(),
        Some(Claim::AlreadyCompleted)
    );
    // Completing without a claim records it too.
    deduper.complete("h2").await.expect("complete");
    assert_eq!(
        deduper.claim("h2").await.ok(),
        Some(Claim::AlreadyCompleted)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_act_on_the_outcome_of_the_claim_in_flight() {
    let t = temp_store(SqliteOptions::default());
    let deduper: Arc<dyn Deduper> = Arc::new(t.store.deduper());
    assert_eq!(deduper.claim("w").await.ok(), Some(Claim::Acquired));
    let waiting = {
        let deduper = Arc::clone(&deduper);
        tokio::spawn(async move { deduper.claim("w").await.ok() })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        !waiting.is_finished(),
        "a repeat must wait while the event is in flight"
    );
    deduper.release("w").await.expect("release");
    assert_eq!(waiting.await.expect("task"), Some(Claim::Acquired));
    let waiting = {
        let deduper = Arc::clone(&deduper);
        tokio::spawn(async move { deduper.claim("w").await.ok() })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!waiting.is_finished());
    deduper.complete("w").await.expect("complete");
    assert_eq!(waiting.await.expect("task"), Some(Claim::AlreadyCompleted));
}

#[tokio::test]
async fn completed_events_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dedup.db");
    {
        let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
        let deduper = store.deduper();
        assert_eq!(deduper.claim("kept").await.ok(), Some(Claim::Acquired));
        deduper.complete("kept").await.expect("complete");
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("reopen");
    let deduper = store.deduper();
    assert_eq!(
        deduper.claim("kept").await.ok(),
        Some(Claim::AlreadyCompleted)
    );
    assert_eq!(deduper.claim("other").await.ok(), Some(Claim::Acquired));
}

/// A process that died while processing blocks the event only until its lease lapses.
#[tokio::test]
async fn a_claim_of_a_dead_process_lapses_with_its_lease() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lease.db");
    {
        let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
        let deduper = store.deduper().lease(Duration::from_millis(300));
        assert_eq!(deduper.claim("orphan").await.ok(), Some(Claim::Acquired));
        // Dropped without completing or releasing: the process "died".
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("reopen");
    let deduper = store.deduper().poll_interval(Duration::from_millis(20));
    let claimed = tokio::time::timeout(Duration::from_secs(10), deduper.claim("orphan"))
        .await
        .expect("the lease must lapse");
    assert_eq!(claimed.ok(), Some(Claim::Acquired));
}

/// Two dedupers on one file (as two processes would have) see each other's completions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedupers_sharing_a_file_coordinate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shared.db");
    let a = SqliteStore::open(&path, SqliteOptions::default()).expect("open a");
    let b = SqliteStore::open(&path, SqliteOptions::default()).expect("open b");
    let (da, db) = (
        a.deduper(),
        b.deduper().poll_interval(Duration::from_millis(20)),
    );
    assert_eq!(da.claim("x").await.ok(), Some(Claim::Acquired));
    let waiting = tokio::spawn(async move { db.claim("x").await.ok() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished());
    da.complete("x").await.expect("complete");
    let outcome = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("woken by polling")
        .expect("task");
    assert_eq!(outcome, Some(Claim::AlreadyCompleted));
}

/// A purge forgets completed records once their rows' retention has passed (as it deletes old
/// events), and keeps younger ones: a late sender retry within the retention still deduplicates.
#[tokio::test]
async fn a_purge_forgets_completed_records_past_the_row_retention() {
    use ccai::inbox::{Retention, Store};
    use std::time::SystemTime;
    let t = temp_store(SqliteOptions::default());
    let deduper = t.store.deduper();
    deduper.complete("old").await.expect("complete");
    let day = Duration::from_secs(86_400);
    // Ten days on, with rows kept 90 days: remembered.
    let soon = SystemTime::now() + 10 * day;
    t.store
        .purge(Retention::default(), soon)
        .await
        .expect("purge");
    assert_eq!(
        deduper.claim("old").await.ok(),
        Some(Claim::AlreadyCompleted)
    );
    // 91 days on: forgotten, so the event may be processed again.
    let later = SystemTime::now() + 91 * day;
    t.store
        .purge(Retention::default(), later)
        .await
        .expect("purge");
    assert_eq!(deduper.claim("old").await.ok(), Some(Claim::Acquired));
}

/// A claim its process never completed nor released (it crashed) is forgotten too, once its
/// lease lapsed longer ago than the rows' retention; a live or recent one is kept. Before, such
/// records stayed for ever.
#[tokio::test]
async fn a_purge_forgets_abandoned_claims_past_the_row_retention() {
    use ccai::inbox::{Retention, Store};
    use std::time::SystemTime;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
    let deduper = store.deduper();
    assert_eq!(deduper.claim("abandoned").await.ok(), Some(Claim::Acquired));
    let records = || {
        let conn = rusqlite::Connection::open(&path).expect("open the file");
        conn.query_row("SELECT count(*) FROM dedup", [], |row| row.get::<_, i64>(0))
            .expect("count")
    };
    assert_eq!(records(), 1);
    let day = Duration::from_secs(86_400);
    store
        .purge(Retention::default(), SystemTime::now() + 10 * day)
        .await
        .expect("purge");
    assert_eq!(records(), 1, "kept within the retention");
    store
        .purge(Retention::default(), SystemTime::now() + 91 * day)
        .await
        .expect("purge");
    assert_eq!(records(), 0, "forgotten past it");
}

/// A claim whose caller went away while the write was queued (a cancelled request) is
/// released: the next claim acquires the event at once instead of waiting out the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_caller_went_away_is_released() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cancelled.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
    let deduper = store.deduper().poll_interval(Duration::from_millis(20));
    // Another connection holds the write lock, so the claim waits in the writer.
    let blocker = rusqlite::Connection::open(&path).expect("open blocker");
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let cancelled =
        tokio::time::timeout(Duration::from_millis(200), deduper.claim("cancelled")).await;
    assert!(
        cancelled.is_err(),
        "the claim was still waiting for the writer"
    );
    blocker.execute_batch("COMMIT").expect("let go");
    let claimed = tokio::time::timeout(Duration::from_secs(3), deduper.claim("cancelled"))
        .await
        .expect("not held by the caller that went away");
    assert_eq!(claimed.ok(), Some(Claim::Acquired));
}

/// When a lease lapses and another process takes the event over, the first owner's release
/// frees its own claim only: the new owner keeps the event, and a third caller waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_owner_releases_its_own_claim_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lapsed.db");
    let open = || SqliteStore::open(&path, SqliteOptions::default()).expect("open");
    let (a, b, c) = (open(), open(), open());
    let lease = Duration::from_millis(200);
    let da = a.deduper().lease(lease);
    let db = b.deduper().lease(Duration::from_secs(60));
    let dc = c.deduper().poll_interval(Duration::from_millis(20));
    assert_eq!(da.claim("e").await.ok(), Some(Claim::Acquired));
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert_eq!(
        db.claim("e").await.ok(),
        Some(Claim::Acquired),
        "taken over"
    );
    da.release("e").await.expect("release");
    let third = tokio::time::timeout(Duration::from_millis(300), dc.claim("e")).await;
    assert!(third.is_err(), "the new owner still holds it: {third:?}");
    db.complete("e").await.expect("complete");
    assert_eq!(dc.claim("e").await.ok(), Some(Claim::AlreadyCompleted));
}

/// Within one process a claim is alive however long it runs: a repeat waits for its outcome
/// rather than taking the event over when the lease lapses (as the in-memory deduper does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_held_in_this_process_is_not_taken_over() {
    let t = temp_store(SqliteOptions::default());
    let lease = Duration::from_millis(100);
    let deduper: Arc<dyn Deduper> = Arc::new(
        t.store
            .deduper()
            .lease(lease)
            .poll_interval(Duration::from_millis(20)),
    );
    assert_eq!(deduper.claim("slow").await.ok(), Some(Claim::Acquired));
    tokio::time::sleep(lease * 3).await;
    let repeat = {
        let deduper = Arc::clone(&deduper);
        tokio::spawn(async move { deduper.claim("slow").await.ok() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!repeat.is_finished(), "the first claim is still running");
    deduper.complete("slow").await.expect("complete");
    assert_eq!(repeat.await.expect("task"), Some(Claim::AlreadyCompleted));
}

/// Two claims of one process queued while the writer stalls past the lease: one acquires, the
/// other waits for its outcome (both used to find the lease lapsed and acquire).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_claims_queued_past_the_lease_do_not_both_acquire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stalled.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
    let lease = Duration::from_millis(200);
    let deduper: Arc<dyn Deduper> = Arc::new(
        store
            .deduper()
            .lease(lease)
            .poll_interval(Duration::from_millis(20)),
    );
    let blocker = rusqlite::Connection::open(&path).expect("open blocker");
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let claim = || {
        let deduper = Arc::clone(&deduper);
        tokio::spawn(async move { deduper.claim("stalled").await.ok() })
    };
    // The second is made once the first's lease has lapsed, both still queued.
    let first = claim();
    tokio::time::sleep(lease + Duration::from_millis(50)).await;
    let second = claim();
    tokio::time::sleep(Duration::from_millis(100)).await;
    blocker.execute_batch("COMMIT").expect("let go");
    let claims = [first, second];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let finished: Vec<_> = claims.iter().map(|c| c.is_finished()).collect();
    assert_eq!(
        finished.iter().filter(|f| **f).count(),
        1,
        "one acquired, one waits: {finished:?}"
    );
    deduper.complete("stalled").await.expect("complete");
    let mut outcomes = Vec::new();
    for claim in claims {
        outcomes.push(claim.await.expect("task"));
    }
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        outcomes,
        [Some(Claim::Acquired), Some(Claim::AlreadyCompleted)]
    );
}
