//! The handler's metrics in inbox mode (feature `metrics`): what the store made of each delivery
//! (`Inserted::New`, `Duplicate`, `Conflict`) is the `outcome` label. A local `DebuggingRecorder`
//! sees what the handler records on this thread (a current-thread runtime).
#![cfg(feature = "metrics")]

use std::sync::Arc;

use ccai::inbox::{SqliteOptions, SqliteStore};
use ccai::server::{create_handler, HandlerOptions};
use ccai::signature::SignedDelivery;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tower::Service;

use crate::receiver::{delivery, CLIENT_ID, SECRET};

fn request(delivery: &SignedDelivery) -> http::Request<String> {
    http::Request::post("/webhook")
        .header("content-type", "application/json")
        .header("X-CCAI-Signature", delivery.signature())
        .body(String::from_utf8_lossy(delivery.body()).into_owned())
        .expect("request")
}

#[test]
fn stored_duplicate_and_conflicting_deliveries_are_counted_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::default()).expect("store"),
    );
    let recorder = DebuggingRecorder::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let statuses = metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let mut handler =
                create_handler(HandlerOptions::inbox(CLIENT_ID, store).secret(SECRET))
                    .expect("handler");
            let first = delivery("inbox-m-1", "+14155550100");
            let conflicting = delivery("inbox-m-1", "+14155550199");
            let mut statuses = Vec::new();
            for request in [request(&first), request(&first), request(&conflicting)] {
                let response = handler.call(request).await.expect("infallible");
                statuses.push(response.status().as_u16());
            }
            statuses
        })
    });
    assert_eq!(statuses, [200, 200, 200]);
    let mut counted = Vec::new();
    for (key, _, _, value) in recorder.snapshotter().snapshot().into_vec() {
        let key = key.key();
        if key.name() != "ccai_deliveries_received_total" {
            continue;
        }
        let outcome = key
            .labels()
            .find(|l| l.key() == "outcome")
            .map(|l| l.value().to_owned())
            .unwrap_or_default();
        if let DebugValue::Counter(n) = value {
            counted.push((outcome, n));
        }
    }
    counted.sort();
    assert_eq!(
        counted,
        [
            ("accepted".to_owned(), 1),
            ("conflict".to_owned(), 1),
            ("duplicate".to_owned(), 1)
        ]
    );
}

/// `ccai_deliveries_dead_total{reason}` counts every way to the dead letter: a consumer's
/// permanent refusal (`failed`) and a delivery whose attempts a shortened schedule used up
/// (`no_attempt_left`), which makes no attempt and so is not in `ccai_forward_attempts_total`.
#[test]
fn every_way_to_the_dead_letter_is_counted_by_reason() {
    use ccai::inbox::{
        AttemptOutcome, AttemptRecord, Consumer, ConsumerFuture, DeliveryStatus, Dispatcher,
        Failure, Finish, InboxEvent, LeaseRequest, NewDelivery, RetrySchedule, Store,
    };

    #[derive(Debug)]
    struct RefusesForGood;

    impl Consumer for RefusesForGood {
        fn deliver<'a>(&'a self, event: &'a InboxEvent) -> ConsumerFuture<'a> {
            let failure = Failure::new(format!("no {}", event.event_hash)).permanent();
            Box::pin(async move { Err(failure) })
        }
    }
    use std::time::{Duration, Instant, SystemTime};

    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::default()).expect("store"),
    );
    let recorder = DebuggingRecorder::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let insert = |hash: &'static str| {
                let body = format!(r#"{{"eventType":"message.sent","eventHash":"{hash}"}}"#);
                store.insert(NewDelivery::new(
                    CLIENT_ID,
                    hash,
                    "message.sent",
                    body.into_bytes(),
                ))
            };
            insert("used-up").await.expect("insert");
            // Two failed attempts at `used-up` under an earlier, longer schedule.
            for _ in 0..2 {
                let lease = LeaseRequest::new("earlier", Duration::from_secs(60));
                let claimed = store
                    .claim("default", lease, 1, SystemTime::now())
                    .await
                    .expect("claim")
                    .remove(0);
                assert_eq!(claimed.event_hash, "used-up");
                let now = SystemTime::now();
                let failed = AttemptRecord::new(now, Duration::ZERO, AttemptOutcome::Failure);
                let finished = store.finish(&claimed.lease, Finish::RetryAt(now), failed);
                assert_eq!(finished.await, Ok(true));
            }
            insert("refused").await.expect("insert");
            // The schedule now allows two attempts: `used-up` has none left, and the consumer
            // refuses `refused` for good on its first.
            let dispatcher = Dispatcher::builder(Arc::clone(&store), RefusesForGood)
                .retry_schedule("1s".parse::<RetrySchedule>().expect("schedule"))
                .poll_interval(Duration::from_millis(20))
                .start();
            let limit = Instant::now() + Duration::from_secs(15);
            for hash in ["used-up", "refused"] {
                loop {
                    let detail = store.get(hash).await.expect("get").expect("stored");
                    if detail.summary.deliveries[0].status == DeliveryStatus::Dead {
                        break;
                    }
                    assert!(Instant::now() < limit, "{hash} never went dead");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            dispatcher.shutdown(Duration::from_secs(5)).await;
        })
    });
    let mut dead = Vec::new();
    let mut attempts = Vec::new();
    for (key, _, _, value) in recorder.snapshotter().snapshot().into_vec() {
        let key = key.key();
        let label = |name: &str| {
            key.labels()
                .find(|l| l.key() == name)
                .map(|l| l.value().to_owned())
                .unwrap_or_default()
        };
        if let DebugValue::Counter(n) = value {
            match key.name() {
                "ccai_deliveries_dead_total" => dead.push((label("reason"), n)),
                "ccai_forward_attempts_total" => attempts.push((label("outcome"), n)),
                _ => {}
            }
        }
    }
    dead.sort();
    assert_eq!(
        dead,
        [("failed".to_owned(), 1), ("no_attempt_left".to_owned(), 1)]
    );
    // Only `refused` was attempted.
    assert_eq!(attempts, [("dead".to_owned(), 1)]);
}

/// A result whose lease another worker took over (the consumer hung past it) is still counted in
/// `ccai_lease_lost_total` and not reported to `on_attempt`: only the attempt that took over is.
/// A finish tried again by the lease that recorded it is not such a result
/// (`postgres_lost_commit.rs`).
#[test]
fn a_result_whose_lease_was_taken_over_is_counted_lost_and_not_reported() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use ccai::inbox::{
        AttemptReport, AttemptResult, CallbackConsumer, DeliveryStatus, Dispatcher, InboxEvent,
        NewDelivery, Store,
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::default()).expect("store"),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let consumer = {
        let calls = Arc::clone(&calls);
        CallbackConsumer::new(move |_event: InboxEvent| {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if call == 0 {
                    // Hangs well past its lease, then succeeds.
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                }
                Ok::<(), std::io::Error>(())
            }
        })
    };
    let reports: Arc<Mutex<Vec<AttemptReport>>> = Arc::default();
    let recorder = DebuggingRecorder::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let record = Arc::clone(&reports);
            let dispatcher = Dispatcher::builder(Arc::clone(&store), consumer)
                .lease(Duration::from_millis(200))
                .heartbeat(false)
                .poll_interval(Duration::from_millis(20))
                .on_attempt(move |report| record.lock().expect("lock").push(report.clone()))
                .start();
            let body = br#"{"eventType":"message.sent","eventHash":"taken-over"}"#;
            let delivery = NewDelivery::new(CLIENT_ID, "taken-over", "message.sent", &body[..]);
            store.insert(delivery).await.expect("insert");
            let limit = Instant::now() + Duration::from_secs(15);
            loop {
                let detail = store.get("taken-over").await.expect("get").expect("stored");
                if detail.summary.deliveries[0].status == DeliveryStatus::Delivered {
                    break;
                }
                assert!(Instant::now() < limit, "never delivered");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // The hung attempt returns 1.5 s after it started, and finds its lease taken.
            dispatcher.shutdown(Duration::from_secs(5)).await;
        })
    });
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let mut lost = 0;
    for (key, _, _, value) in recorder.snapshotter().snapshot().into_vec() {
        if let (true, DebugValue::Counter(n)) = (key.key().name() == "ccai_lease_lost_total", value)
        {
            lost += n;
        }
    }
    assert_eq!(lost, 1);
    let reported: Vec<(AttemptResult, u32)> = reports
        .lock()
        .expect("lock")
        .iter()
        .map(|r| (r.result, r.attempt))
        .collect();
    assert_eq!(reported, [(AttemptResult::Delivered, 2)]);
}
