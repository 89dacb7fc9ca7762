//! Several receivers on one PostgreSQL schema, each with its own pool (as separate processes
//! would have): each event stored once, forwarded once, and work a dead instance held is
//! reclaimed by another.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ccai::inbox::{
    AttemptOutcome, AttemptRecord, Consumer, ConsumerFuture, DeliveryStatus, Dispatcher, Finish,
    HttpForward, InboxEvent, Inserted, LeaseRequest, NewDelivery, PostgresOptions, PostgresStore,
    RetrySchedule, Store,
};

use crate::postgres::TempSchema;
use crate::support::{start_target, wait_for, Target};

fn event(hash: &str) -> NewDelivery {
    NewDelivery::new(
        "1231",
        hash,
        "message.sent",
        format!(r#"{{"eventType":"message.sent","eventHash":"{hash}"}}"#),
    )
    .signature(format!("sig-{hash}"))
    .content_type("application/json")
}

/// Two stores on one fresh schema, each with its own pool.
async fn two_instances(url: &str, tag: &str) -> (TempSchema, PostgresStore, PostgresStore) {
    let schema = TempSchema::new(url, tag);
    let options = PostgresOptions::default()
        .schema(schema.name.clone())
        .pool_size(8);
    let a = PostgresStore::connect(url, options.clone())
        .await
        .expect("connect a");
    let b = PostgresStore::connect(url, options)
        .await
        .expect("connect b");
    (schema, a, b)
}

/// Forwards over HTTP, counting the attempts this instance made.
#[derive(Debug)]
struct Counted {
    forward: HttpForward,
    attempts: Arc<AtomicUsize>,
}

impl Consumer for Counted {
    fn deliver<'a>(&'a self, event: &'a InboxEvent) -> ConsumerFuture<'a> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        self.forward.deliver(event)
    }
}

fn dispatcher(
    store: &PostgresStore,
    target: &Target,
    owner: &str,
) -> (Dispatcher, Arc<AtomicUsize>) {
    let schedule: RetrySchedule = "100ms,100ms,100ms".parse().expect("schedule");
    let attempts = Arc::new(AtomicUsize::new(0));
    let consumer = Counted {
        forward: HttpForward::new(&target.url()).expect("url"),
        attempts: Arc::clone(&attempts),
    };
    let dispatcher = Dispatcher::builder(Arc::new(store.clone()), consumer)
        .owner(owner)
        .concurrency(4)
        .lease(Duration::from_secs(10))
        .poll_interval(Duration::from_millis(200))
        .retry_schedule(schedule)
        .wake_on(store.notifier())
        .start();
    (dispatcher, attempts)
}

/// How many times the target received each event hash.
fn received_per_hash(target: &Target) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in target.received() {
        let body: serde_json::Value = serde_json::from_slice(&request.body).expect("json body");
        let hash = body["eventHash"].as_str().expect("eventHash").to_owned();
        *counts.entry(hash).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_events_inserted_on_two_instances_are_stored_once() {
    let url = crate::postgres_url_or_skip!();
    let (_schema, a, b) = two_instances(&url, "dedupe").await;
    // Every hash arrives at both instances at once (a sender's retry reaching another receiver).
    let inserts = (0..300).flat_map(|i| {
        let hash = format!("same{i}");
        [a.clone(), b.clone()].map(|store| {
            let hash = hash.clone();
            tokio::spawn(async move { store.insert(event(&hash)).await })
        })
    });
    let mut outcomes: HashMap<Inserted, usize> = HashMap::new();
    for insert in inserts.collect::<Vec<_>>() {
        let outcome = insert.await.expect("task").expect("insert");
        *outcomes.entry(outcome).or_insert(0) += 1;
    }
    assert_eq!(outcomes.get(&Inserted::New), Some(&300), "{outcomes:?}");
    assert_eq!(
        outcomes.get(&Inserted::Duplicate),
        Some(&300),
        "{outcomes:?}"
    );
    let stats = a.stats(SystemTime::now()).await.expect("stats");
    assert_eq!((stats.events, stats.duplicates), (300, 300));
    assert_eq!(stats.count(DeliveryStatus::Pending), 300);
    assert_eq!(
        b.stats(SystemTime::now()).await.expect("stats").events,
        300,
        "both instances see the same store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_on_two_instances_forward_each_event_once() {
    let url = crate::postgres_url_or_skip!();
    let (_schema, a, b) = two_instances(&url, "forward").await;
    let target = start_target(Vec::new()).await;
    let (first, first_attempts) = dispatcher(&a, &target, "instance-a");
    let (second, second_attempts) = dispatcher(&b, &target, "instance-b");
    // Unique events spread over both instances; every third also delivered to the other one.
    let mut inserts = Vec::new();
    for i in 0..240 {
        let hash = format!("fw{i}");
        let (home, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let mut copies = vec![home.clone()];
        if i % 3 == 0 {
            copies.push(other.clone());
        }
        for store in copies {
            let hash = hash.clone();
            inserts.push(tokio::spawn(
                async move { store.insert(event(&hash)).await },
            ));
        }
    }
    for insert in inserts {
        insert.await.expect("task").expect("insert");
    }
    wait_for("every event forwarded", Duration::from_secs(30), || async {
        (target.received().len() >= 240).then_some(())
    })
    .await;
    // Give a second forwarding time to happen, if it were going to.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let counts = received_per_hash(&target);
    assert_eq!(counts.len(), 240);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "forwarded more than once: {twice:?}");
    let stats = b.stats(SystemTime::now()).await.expect("stats");
    assert_eq!(stats.count(DeliveryStatus::Delivered), 240);
    assert_eq!(stats.duplicates, 80);
    let (by_a, by_b) = (
        first_attempts.load(Ordering::Relaxed),
        second_attempts.load(Ordering::Relaxed),
    );
    assert_eq!(by_a + by_b, 240);
    assert!(
        by_a > 0 && by_b > 0,
        "both instances dispatched: {by_a} + {by_b}"
    );
    let (r1, r2) = tokio::join!(
        first.shutdown(Duration::from_secs(5)),
        second.shutdown(Duration::from_secs(5))
    );
    assert_eq!(r1.released + r2.released, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_held_by_a_dead_instance_is_reclaimed_by_the_other() {
    let url = crate::postgres_url_or_skip!();
    let (_schema, a, b) = two_instances(&url, "reclaim").await;
    assert_eq!(a.insert(event("held")).await, Ok(Inserted::New));
    // Instance a claims the event, then "dies": it never finishes or heartbeats.
    let held = a
        .claim(
            "default",
            LeaseRequest::new("instance-a", Duration::from_millis(500)),
            10,
            SystemTime::now(),
        )
        .await
        .expect("claim")
        .remove(0);
    let target = start_target(Vec::new()).await;
    let (survivor, _) = dispatcher(&b, &target, "instance-b");
    wait_for(
        "the lapsed lease reclaimed",
        Duration::from_secs(10),
        || async { (!target.received().is_empty()).then_some(()) },
    )
    .await;
    let detail = wait_for("the delivery recorded", Duration::from_secs(5), || async {
        let detail = b.get("held").await.expect("get").expect("stored");
        (detail.summary.deliveries[0].status == DeliveryStatus::Delivered).then_some(detail)
    })
    .await;
    let outcomes: Vec<AttemptOutcome> = detail.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [AttemptOutcome::LeaseExpired, AttemptOutcome::Success]
    );
    assert!(detail.attempts[0]
        .error
        .as_deref()
        .unwrap_or("")
        .contains("instance-a"));
    // The dead instance coming back cannot finish what it no longer holds.
    let late = AttemptRecord::new(SystemTime::now(), Duration::ZERO, AttemptOutcome::Success);
    assert_eq!(
        a.finish(&held.lease, Finish::Delivered, late).await,
        Ok(false)
    );
    assert_eq!(target.received().len(), 1);
    survivor.shutdown(Duration::from_secs(5)).await;
}

/// What the workers of [`concurrent_claims_hold_each_delivery_once_and_count_each_attempt`] saw.
#[derive(Default)]
struct Seen {
    /// Per delivery: the attempt number of each claim that took it.
    claims: HashMap<i64, Vec<u32>>,
    /// Per delivery: leases left to lapse (abandoned, or lost before their outcome was recorded).
    lapsed: HashMap<i64, usize>,
    /// Per delivery: outcomes recorded as failures to retry.
    retried: HashMap<i64, usize>,
    /// Deliveries recorded as delivered.
    delivered: std::collections::HashSet<i64>,
}

/// Three instances with three workers each claim and finish the same deliveries at once, with
/// short leases some of which lapse (a worker that dies): each delivery is held by one lease at
/// a time (delivered once; its claims see attempts 1, 2, 3, … each once), and every attempt is
/// counted once (a retry, a lapsed lease, the delivery).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_hold_each_delivery_once_and_count_each_attempt() {
    const EVENTS: usize = 120;
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "claimrace");
    let options = PostgresOptions::default()
        .schema(schema.name.clone())
        .pool_size(4)
        .listen(false);
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(
            PostgresStore::connect(&url, options.clone())
                .await
                .expect("connect"),
        ));
    }
    let mut inserts = tokio::task::JoinSet::new();
    for i in 0..EVENTS {
        let store = Arc::clone(&stores[i % stores.len()]);
        inserts.spawn(async move { store.insert(event(&format!("race{i}"))).await });
    }
    while let Some(inserted) = inserts.join_next().await {
        assert_eq!(inserted.expect("task"), Ok(Inserted::New));
    }
    let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..9u64 {
        let store = Arc::clone(&stores[(w % 3) as usize]);
        let seen = Arc::clone(&seen);
        workers.spawn(async move {
            let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ (w + 1);
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            while seen.lock().unwrap().delivered.len() < EVENTS {
                assert!(
                    std::time::Instant::now() < deadline,
                    "not all delivered in time"
                );
                let limit = 1 + (next() % 5) as usize;
                let lease = LeaseRequest::new(format!("w{w}"), Duration::from_millis(300));
                let claimed = store
                    .claim("default", lease, limit, SystemTime::now())
                    .await
                    .expect("claim");
                if claimed.is_empty() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                for c in claimed {
                    let id = c.lease.delivery_id;
                    seen.lock()
                        .unwrap()
                        .claims
                        .entry(id)
                        .or_default()
                        .push(c.attempt);
                    let roll = next() % 20;
                    if roll >= 16 {
                        // This worker "dies": the lease lapses.
                        *seen.lock().unwrap().lapsed.entry(id).or_default() += 1;
                        continue;
                    }
                    let (finish, outcome) = if roll < 11 {
                        (Finish::Delivered, AttemptOutcome::Success)
                    } else {
                        (Finish::RetryAt(SystemTime::now()), AttemptOutcome::Failure)
                    };
                    let record = AttemptRecord::new(SystemTime::now(), Duration::ZERO, outcome);
                    let held = store
                        .finish(&c.lease, finish, record)
                        .await
                        .expect("finish");
                    let mut seen = seen.lock().unwrap();
                    if !held {
                        // Too slow: the lease lapsed and another claim took it (and counted it).
                        *seen.lapsed.entry(id).or_default() += 1;
                    } else if outcome == AttemptOutcome::Success {
                        assert!(seen.delivered.insert(id), "delivery {id} delivered twice");
                    } else {
                        *seen.retried.entry(id).or_default() += 1;
                    }
                }
            }
        });
    }
    while let Some(worker) = workers.join_next().await {
        worker.expect("worker");
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let client = crate::postgres::raw(&url).await;
    let rows = client
        .query(
            &format!(
                "SELECT d.id, d.status, d.attempts,
                        count(a.id) FILTER (WHERE a.outcome = 'success'),
                        count(a.id) FILTER (WHERE a.outcome = 'failure'),
                        count(a.id) FILTER (WHERE a.outcome = 'lease_expired'),
                        count(a.id)
                   FROM \"{0}\".deliveries d LEFT JOIN \"{0}\".attempts a ON a.delivery_id = d.id
                  GROUP BY d.id",
                schema.name
            ),
            &[],
        )
        .await
        .expect("attempts");
    assert_eq!(rows.len(), EVENTS);
    for row in rows {
        let id: i64 = row.get(0);
        let count = |i: usize| usize::try_from(row.get::<_, i64>(i)).unwrap();
        assert_eq!(row.get::<_, &str>(1), "delivered", "delivery {id}");
        assert_eq!(row.get::<_, i32>(2) as usize, count(6), "delivery {id}");
        assert_eq!(count(3), 1, "delivery {id}");
        assert_eq!(
            count(4),
            seen.retried.get(&id).copied().unwrap_or(0),
            "delivery {id}"
        );
        assert_eq!(
            count(5),
            seen.lapsed.get(&id).copied().unwrap_or(0),
            "delivery {id}"
        );
        let mut attempts = seen.claims[&id].clone();
        attempts.sort_unstable();
        let expected: Vec<u32> = (1..=attempts.len() as u32).collect();
        assert_eq!(
            attempts, expected,
            "delivery {id}: the attempt each claim saw"
        );
        assert_eq!(attempts.len(), count(6), "delivery {id}");
    }
    for store in stores {
        store.close().await;
    }
}

/// A dispatcher that may run more attempts at once than one claim of the PostgreSQL store took
/// (1,000) read the short claim as "nothing more is due", and waited for the poll interval with
/// work due and workers free. A claim takes as many as a dispatcher asks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_with_more_workers_than_one_claim_took_does_not_wait_with_work_due() {
    const EVENTS: usize = 1200;
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "wide");
    let store = Arc::new(
        PostgresStore::connect(
            &url,
            PostgresOptions::default()
                .schema(schema.name.clone())
                .listen(false),
        )
        .await
        .expect("connect"),
    );
    let mut inserts = tokio::task::JoinSet::new();
    for i in 0..EVENTS {
        let store = Arc::clone(&store);
        inserts.spawn(async move { store.insert(event(&format!("wide{i}"))).await });
    }
    while let Some(inserted) = inserts.join_next().await {
        assert_eq!(inserted.expect("task"), Ok(Inserted::New));
    }
    let handed_on = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&handed_on);
    let consumer = ccai::inbox::CallbackConsumer::new(move |_event| {
        counter.fetch_add(1, Ordering::Relaxed);
        async { Ok::<(), std::io::Error>(()) }
    });
    // No wake-ups: only a claim that comes back full claims again before the poll interval.
    let dispatcher = Dispatcher::builder(Arc::clone(&store) as Arc<dyn Store>, consumer)
        .concurrency(EVENTS)
        .poll_interval(Duration::from_secs(600))
        .start();
    wait_for("every event handed on", Duration::from_secs(20), || async {
        (handed_on.load(Ordering::Relaxed) == EVENTS).then_some(())
    })
    .await;
    dispatcher.shutdown(Duration::from_secs(5)).await;
    store.close().await;
}
