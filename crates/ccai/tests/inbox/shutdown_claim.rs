//! A shutdown that comes while the dispatcher waits for a claim: the store's `claim` is held on
//! a gate (a `Store` of the test's own over a real SQLite store), so the window is entered on
//! purpose rather than by luck.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ccai::inbox::{
    AttemptRecord, CallbackConsumer, ClaimedDelivery, DeliveryStatus, Dispatcher, EventDetail,
    Finish, InboxEvent, Inserted, Lease, LeaseRequest, ListFilter, ListRequest, NewDelivery, Page,
    PurgeReport, ReplayReport, ReplayTarget, Retention, SqliteOptions, SqliteStore, Stats, Store,
    StoreFuture,
};
use tokio::sync::{Notify, Semaphore};

use crate::support::{temp_store, wait_for};

const PATIENCE: Duration = Duration::from_secs(15);

/// Every call goes to `inner`; every `claim` after the first waits for a permit of `gate`
/// (`entered` is notified as it starts waiting).
#[derive(Debug)]
struct GatedClaims {
    inner: SqliteStore,
    claims: AtomicUsize,
    gate: Semaphore,
    entered: Notify,
}

impl Store for GatedClaims {
    fn insert<'a>(&'a self, delivery: NewDelivery) -> StoreFuture<'a, Inserted> {
        self.inner.insert(delivery)
    }

    fn claim<'a>(
        &'a self,
        destination: &'a str,
        lease: LeaseRequest,
        limit: usize,
        now: SystemTime,
    ) -> StoreFuture<'a, Vec<ClaimedDelivery>> {
        Box::pin(async move {
            if self.claims.fetch_add(1, Ordering::SeqCst) > 0 {
                self.entered.notify_one();
                let _permit = self.gate.acquire().await;
            }
            // Now, not when the claim was asked: what was inserted while it waited is due.
            let _ = now;
            self.inner
                .claim(destination, lease, limit, SystemTime::now())
                .await
        })
    }

    fn finish<'a>(
        &'a self,
        lease: &'a Lease,
        finish: Finish,
        attempt: AttemptRecord,
    ) -> StoreFuture<'a, bool> {
        self.inner.finish(lease, finish, attempt)
    }

    fn extend_lease<'a>(&'a self, lease: &'a Lease, until: SystemTime) -> StoreFuture<'a, bool> {
        self.inner.extend_lease(lease, until)
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, bool> {
        self.inner.release(lease)
    }

    fn list<'a>(&'a self, request: ListRequest) -> StoreFuture<'a, Page> {
        self.inner.list(request)
    }

    fn get<'a>(&'a self, event_hash: &'a str) -> StoreFuture<'a, Option<EventDetail>> {
        self.inner.get(event_hash)
    }

    fn get_for<'a>(
        &'a self,
        client_id: &'a str,
        event_hash: &'a str,
    ) -> StoreFuture<'a, Option<EventDetail>> {
        self.inner.get_for(client_id, event_hash)
    }

    fn replay<'a>(&'a self, target: ReplayTarget) -> StoreFuture<'a, ReplayReport> {
        self.inner.replay(target)
    }

    fn requeue_dead<'a>(&'a self, filter: ListFilter) -> StoreFuture<'a, ReplayReport> {
        self.inner.requeue_dead(filter)
    }

    fn purge<'a>(&'a self, retention: Retention, now: SystemTime) -> StoreFuture<'a, PurgeReport> {
        self.inner.purge(retention, now)
    }

    fn stats<'a>(&'a self, now: SystemTime) -> StoreFuture<'a, Stats> {
        self.inner.stats(now)
    }

    fn close<'a>(&'a self) -> ccai::inbox::CloseFuture<'a> {
        Store::close(&self.inner)
    }
}

async fn status(store: &GatedClaims, hash: &str) -> (DeliveryStatus, usize) {
    let detail = store.get(hash).await.expect("get").expect("stored");
    (
        detail.summary.deliveries[0].status,
        detail.summary.deliveries[0].attempts as usize,
    )
}

/// An attempt that ended after the stop while the loop waited for a claim was reaped at the
/// top of the next turn without being counted (`finished` 0), and what that claim returned
/// was started after the stop. Now the attempt is counted and the late claim is given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_ending_while_a_claim_waits_is_counted_and_late_claims_are_released() {
    let t = temp_store(SqliteOptions::default());
    let store = Arc::new(GatedClaims {
        inner: t.store.clone(),
        claims: AtomicUsize::new(0),
        gate: Semaphore::new(0),
        entered: Notify::new(),
    });
    let consumer_gate = Arc::new(Semaphore::new(0));
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let consumer = {
        let (gate, seen) = (Arc::clone(&consumer_gate), Arc::clone(&seen));
        CallbackConsumer::new(move |event: InboxEvent| {
            let gate = Arc::clone(&gate);
            seen.lock().expect("lock").push(event.event_hash.clone());
            async move {
                let _permit = gate.acquire().await;
                Ok::<(), std::io::Error>(())
            }
        })
    };
    let entered = store.entered.notified();
    store
        .insert(NewDelivery::new("1231", "held", "message.sent", &b"{}"[..]))
        .await
        .expect("insert");
    let dyn_store: Arc<dyn Store> = store.clone();
    // Two workers: the first claim takes "held", the next waits on the gate for the other.
    let dispatcher = Dispatcher::builder(dyn_store, consumer)
        .concurrency(2)
        .poll_interval(Duration::from_millis(20))
        .start();
    tokio::time::timeout(PATIENCE, entered)
        .await
        .expect("the second claim to wait");
    assert_eq!(seen.lock().expect("lock").as_slice(), ["held"]);
    store
        .insert(NewDelivery::new("1231", "late", "message.sent", &b"{}"[..]))
        .await
        .expect("insert");

    let (report, ()) = tokio::join!(dispatcher.shutdown(Duration::from_secs(10)), async {
        // The stop is sent at the shutdown's first poll; then "held" ends, after it.
        tokio::time::sleep(Duration::from_millis(200)).await;
        consumer_gate.add_permits(1);
        wait_for("held to be delivered", PATIENCE, || async {
            (status(&store, "held").await.0 == DeliveryStatus::Delivered).then_some(())
        })
        .await;
        // Time for its task to end, then the waiting claim returns "late".
        tokio::time::sleep(Duration::from_millis(200)).await;
        store.gate.add_permits(1);
    });
    assert_eq!((report.finished, report.released), (1, 1), "{report:?}");
    // "late" was claimed as the stop came: given back untried, due at the next start.
    assert_eq!(seen.lock().expect("lock").as_slice(), ["held"]);
    assert_eq!(status(&store, "late").await, (DeliveryStatus::Pending, 0));
}
