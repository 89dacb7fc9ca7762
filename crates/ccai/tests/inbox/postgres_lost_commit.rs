//! An outcome whose COMMIT reached PostgreSQL and committed, but whose answer never came back
//! (a connection dropped after the commit, an answer slower than the operation timeout): the
//! store answers a transient error, and the dispatcher records the outcome again. That second
//! try found the lease token gone (the first one had finished the delivery) and was read as a
//! lease taken over by another worker: the outcome counted as a lost lease, its `on_attempt`
//! report and its dead-letter count were skipped, and a warning said the result was dropped
//! although it was recorded. A finish is now answered `true` again for the lease that finished
//! the delivery. A proxy on 127.0.0.1 passes the finish to the server and loses its answer, once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ccai::inbox::{
    AttemptOutcome, AttemptRecord, AttemptReport, AttemptResult, Consumer, ConsumerFuture,
    DeliveryStatus, Dispatcher, Failure, Finish, InboxEvent, Inserted, LeaseRequest, NewDelivery,
    PostgresOptions, PostgresStore, RetrySchedule, Store, StoreError,
};

use crate::postgres::{proxy, Fault, TempSchema};
use crate::support::wait_for;

/// How long the store waits for an answer before it gives up on the connection.
const OPERATION_TIMEOUT: Duration = Duration::from_millis(500);

/// A store on a fresh schema, reached through a proxy that loses the answers on the first
/// connection that sends `trigger`.
async fn store_losing_one_answer(
    url: &str,
    schema: &TempSchema,
    trigger: &'static [u8],
) -> PostgresStore {
    let (proxied, _) = proxy(url, Some(Fault::LoseAnswersOnceAfter(trigger))).await;
    PostgresStore::connect(
        &proxied,
        PostgresOptions::default()
            .schema(schema.name.clone())
            .connect_timeout(Duration::from_secs(1))
            .operation_timeout(OPERATION_TIMEOUT)
            .listen(false),
    )
    .await
    .expect("connect")
}

fn delivery(hash: &str) -> NewDelivery {
    NewDelivery::new(
        "1231",
        hash,
        "message.sent",
        format!(r#"{{"eventHash":"{hash}"}}"#),
    )
}

/// The store answers the lost commit with a transient error; the same finish again is answered
/// as recorded, and records nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finish_whose_commit_answer_is_lost_is_recorded_once_and_its_retry_says_so() {
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "lostfinish");
    // The record's error is a parameter of the finish's execution, sent with its COMMIT.
    let store = store_losing_one_answer(&url, &schema, b"refusal-whose-answer-is-lost").await;
    assert_eq!(store.insert(delivery("lf0")).await, Ok(Inserted::New));
    let claimed = crate::support::claim_one(&store)
        .await
        .expect("claim")
        .remove(0);
    let record = AttemptRecord::new(SystemTime::now(), Duration::ZERO, AttemptOutcome::Failure)
        .error("refusal-whose-answer-is-lost");
    let lost = tokio::time::timeout(
        Duration::from_secs(5),
        store.finish(&claimed.lease, Finish::Dead, record.clone()),
    )
    .await
    .expect("the finish is answered in time");
    match lost {
        Err(error @ StoreError::Unavailable(_)) => assert!(error.is_transient(), "{error}"),
        other => panic!("a finish whose answer is lost: {other:?}"),
    }
    // It committed all the same.
    let detail = store.get("lf0").await.expect("get").expect("stored");
    assert_eq!(detail.summary.deliveries[0].status, DeliveryStatus::Dead);
    assert_eq!(detail.attempts.len(), 1);
    // The dispatcher's retry: recorded (by its own first try), not a lease taken over.
    assert_eq!(
        store.finish(&claimed.lease, Finish::Dead, record).await,
        Ok(true)
    );
    let detail = store.get("lf0").await.expect("get").expect("stored");
    assert_eq!(detail.attempts.len(), 1, "{:?}", detail.attempts);
    assert_eq!(detail.summary.deliveries[0].attempts, 1);
    store.close().await;
}

#[derive(Debug)]
struct RefusesForGood;

impl Consumer for RefusesForGood {
    fn deliver<'a>(&'a self, _event: &'a InboxEvent) -> ConsumerFuture<'a> {
        Box::pin(async { Err(Failure::new("refusal-whose-record-is-lost").permanent()) })
    }
}

/// What a dispatcher made of the outcome whose answer was lost.
#[derive(Debug, Default)]
struct Seen {
    reports: Vec<AttemptReport>,
    /// `ccai_lease_lost_total` (with the `metrics` feature).
    leases_lost: u64,
    /// `ccai_deliveries_dead_total` by reason (with the `metrics` feature).
    dead: Vec<(String, u64)>,
}

/// Runs a dispatcher (retry schedule `schedule`) on a store whose answer to the first request
/// that sends `trigger` is lost, until `hash` is dead; `prepare` runs on the store first.
/// Its own current-thread runtime, so that a local metrics recorder sees the dispatcher's counts.
fn dead_through_a_lost_answer(
    url: &str,
    trigger: &'static [u8],
    schedule: &str,
    hash: &'static str,
    prepare: impl AsyncFnOnce(&dyn Store),
) -> Seen {
    let schema = TempSchema::new(url, "lostdead");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let schedule: RetrySchedule = schedule.parse().expect("schedule");
    let run = async {
        let store: Arc<dyn Store> = Arc::new(store_losing_one_answer(url, &schema, trigger).await);
        assert_eq!(store.insert(delivery(hash)).await, Ok(Inserted::New));
        prepare(store.as_ref()).await;
        let reports: Arc<Mutex<Vec<AttemptReport>>> = Arc::default();
        let record = Arc::clone(&reports);
        let dispatcher = Dispatcher::builder(Arc::clone(&store), RefusesForGood)
            .retry_schedule(schedule)
            .lease(Duration::from_secs(30))
            .poll_interval(Duration::from_millis(20))
            .on_attempt(move |report| record.lock().expect("lock").push(report.clone()))
            .start();
        wait_for(
            &format!("{hash} to be dead"),
            Duration::from_secs(15),
            || {
                let store = Arc::clone(&store);
                async move {
                    let detail = store.get(hash).await.ok().flatten()?;
                    (detail.summary.deliveries[0].status == DeliveryStatus::Dead).then_some(())
                }
            },
        )
        .await;
        // The worker answers after the store: its retry, its report.
        let limit = Instant::now() + Duration::from_secs(5);
        while reports.lock().expect("lock").is_empty() && Instant::now() < limit {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        dispatcher.shutdown(Duration::from_secs(5)).await;
        store.close().await;
        let reports = reports.lock().expect("lock").clone();
        reports
    };
    counted(|| runtime.block_on(run))
}

#[cfg(feature = "metrics")]
fn counted(run: impl FnOnce() -> Vec<AttemptReport>) -> Seen {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let reports = metrics::with_local_recorder(&recorder, run);
    let mut seen = Seen {
        reports,
        ..Seen::default()
    };
    for (key, _, _, value) in recorder.snapshotter().snapshot().into_vec() {
        let key = key.key();
        let DebugValue::Counter(n) = value else {
            continue;
        };
        match key.name() {
            "ccai_lease_lost_total" => seen.leases_lost += n,
            "ccai_deliveries_dead_total" => {
                let reason = key.labels().find(|l| l.key() == "reason");
                seen.dead
                    .push((reason.map(|l| l.value().to_owned()).unwrap_or_default(), n));
            }
            _ => {}
        }
    }
    seen
}

#[cfg(not(feature = "metrics"))]
fn counted(run: impl FnOnce() -> Vec<AttemptReport>) -> Seen {
    Seen {
        reports: run(),
        ..Seen::default()
    }
}

/// The dead letter's count, as `counted` sees it: nothing without the `metrics` feature.
fn dead_counted(reason: &str) -> Vec<(String, u64)> {
    if cfg!(feature = "metrics") {
        vec![(reason.to_owned(), 1)]
    } else {
        Vec::new()
    }
}

/// A consumer's refusal for good, recorded by a commit whose answer was lost: reported, counted
/// dead, no lease lost.
#[test]
fn a_refusal_whose_record_answer_is_lost_is_reported_and_counted_once() {
    let url = crate::postgres_url_or_skip!();
    let seen = dead_through_a_lost_answer(
        &url,
        b"refusal-whose-record-is-lost",
        "1s",
        "lost-refusal",
        async |_: &dyn Store| {},
    );
    let results: Vec<(AttemptResult, Option<&str>)> = seen
        .reports
        .iter()
        .map(|r| (r.result, r.error.as_deref()))
        .collect();
    assert_eq!(
        (results, seen.leases_lost, &seen.dead),
        (
            vec![(AttemptResult::Dead, Some("refusal-whose-record-is-lost"))],
            0,
            &dead_counted("failed")
        )
    );
}

/// A delivery with no attempt left, sent to the dead letter by a commit whose answer was lost:
/// reported, counted dead, no lease lost.
#[test]
fn a_give_up_whose_answer_is_lost_is_reported_and_counted_once() {
    let url = crate::postgres_url_or_skip!();
    // Two failed attempts under an earlier, longer schedule; the dispatcher's allows two.
    let seen = dead_through_a_lost_answer(
        &url,
        b"no attempt left",
        "1s",
        "lost-give-up",
        async |store: &dyn Store| {
            for _ in 0..2 {
                let lease = LeaseRequest::new("earlier", Duration::from_secs(60));
                let claimed = store
                    .claim("default", lease, 1, SystemTime::now())
                    .await
                    .expect("claim")
                    .remove(0);
                let now = SystemTime::now();
                let failed = AttemptRecord::new(now, Duration::ZERO, AttemptOutcome::Failure);
                let finished = store.finish(&claimed.lease, Finish::RetryAt(now), failed);
                assert_eq!(finished.await, Ok(true));
            }
        },
    );
    let results: Vec<(AttemptResult, u32)> =
        seen.reports.iter().map(|r| (r.result, r.attempt)).collect();
    assert_eq!(
        (results, seen.leases_lost, &seen.dead),
        (
            vec![(AttemptResult::Dead, 2)],
            0,
            &dead_counted("no_attempt_left")
        )
    );
}
