//! The dispatcher against real stores and a real axum target on 127.0.0.1.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ccai::inbox::{
    AttemptOutcome, AttemptReport, AttemptResult, CallbackConsumer, DeliveryStatus, Dispatcher,
    DispatcherBuilder, EventDetail, HttpForward, InboxEvent, NewDelivery, ReplayTarget,
    RetrySchedule, SqliteOptions, Store,
};

use crate::support::{serve_app, start_target, start_target_on, temp_store, wait_for, Answer};

const PATIENCE: Duration = Duration::from_secs(15);

fn fast_schedule(delays: &str) -> RetrySchedule {
    delays
        .parse::<RetrySchedule>()
        .expect("schedule")
        .jitter(0.0)
}

fn event(hash: &str) -> NewDelivery {
    // Unusual spacing and key order: the bytes must arrive as they are.
    let body = format!("{{ \"eventHash\" : \"{hash}\",\n  \"eventType\":\"message.sent\", \"data\":{{\"To\":\"+1415\"}} }}");
    NewDelivery::new("1231", hash, "message.sent", body.into_bytes())
        .signature("c2lnLXZhbHVlLWZvci10ZXN0cy1vbmx5LWJhc2U2NA==")
        .content_type("application/json; charset=utf-8")
}

async fn detail(store: &dyn Store, hash: &str) -> EventDetail {
    store.get(hash).await.expect("get").expect("stored")
}

async fn wait_status(store: &Arc<dyn Store>, hash: &str, status: DeliveryStatus) -> EventDetail {
    wait_for(&format!("{hash} to be {status}"), PATIENCE, || async {
        let d = detail(&**store, hash).await;
        (d.summary.deliveries[0].status == status).then_some(d)
    })
    .await
}

/// A dispatcher forwarding to `url` on the retry `schedule`, polling fast.
fn forward_to(store: &Arc<dyn Store>, url: &str, schedule: &str) -> DispatcherBuilder {
    Dispatcher::builder(Arc::clone(store), HttpForward::new(url).expect("url"))
        .retry_schedule(fast_schedule(schedule))
        .poll_interval(Duration::from_millis(20))
}

/// Like [`forward_to`], started, and the reports of the attempts it records, in order.
fn start_reporting(
    store: &Arc<dyn Store>,
    url: &str,
    schedule: &str,
) -> (Dispatcher, Arc<Mutex<Vec<AttemptReport>>>) {
    let reports: Arc<Mutex<Vec<AttemptReport>>> = Arc::default();
    let record = reports.clone();
    let dispatcher = forward_to(store, url, schedule)
        .on_attempt(move |report| record.lock().expect("lock").push(report.clone()))
        .start();
    (dispatcher, reports)
}

/// Waits until `counter` reads `count`.
async fn wait_count(what: &str, counter: &AtomicUsize, count: usize) {
    wait_for(what, PATIENCE, || async {
        (counter.load(Ordering::SeqCst) == count).then_some(())
    })
    .await
}

/// Waits until `reports` holds `count` reports, and returns them.
async fn wait_reports(
    what: &str,
    reports: &Mutex<Vec<AttemptReport>>,
    count: usize,
) -> Vec<AttemptReport> {
    wait_for(what, PATIENCE, || async {
        let r = reports.lock().expect("lock").clone();
        (r.len() == count).then_some(r)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_exact_bytes_signature_and_content_type() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let target = start_target(vec![Answer::status(200)]).await;
    let dispatcher = Dispatcher::builder(
        Arc::clone(&store),
        HttpForward::new(&target.url()).expect("url"),
    )
    .poll_interval(Duration::from_secs(3600))
    .start();
    let sent = event("fwd1");
    store.insert(sent.clone()).await.expect("insert");
    // The poll interval is an hour: only the wake-up can make this quick.
    dispatcher.wake();
    let delivered = wait_status(&store, "fwd1", DeliveryStatus::Delivered).await;
    let received = target.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, sent.body);
    assert_eq!(
        received[0]
            .headers
            .get("x-ccai-signature")
            .and_then(|v| v.to_str().ok()),
        sent.signature.as_deref()
    );
    assert_eq!(
        received[0]
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(delivered.attempts.len(), 1);
    assert_eq!(delivered.attempts[0].outcome, AttemptOutcome::Success);
    assert_eq!(delivered.attempts[0].http_status, Some(200));
    let report = dispatcher.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.released, 0);
}

/// An `https://` forward URL on a plain HTTP server: the recorded error said only "received
/// corrupt message of type InvalidContentType". It now says the server does not speak TLS and
/// to use `http://`, as `ccai trigger` and `replay --to` do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_url_on_a_plain_http_target_is_told_to_use_http() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let target = start_target(vec![Answer::status(200)]).await;
    let url = format!("https://{}/hook", target.addr);
    let dispatcher = forward_to(&store, &url, &["50ms"; 40].join(",")).start();
    store.insert(event("tls1")).await.expect("insert");
    let failed = wait_for("a failed attempt", PATIENCE, || async {
        detail(&*store, "tls1").await.attempts.first().cloned()
    })
    .await;
    let error = failed.error.unwrap_or_default();
    assert!(
        error.starts_with(
            "connection failed: the TLS handshake failed: the server does not speak TLS"
        ) && error.contains("use http:// instead of https://"),
        "{error}"
    );
    // Nothing was delivered: the target saw no request it could read.
    assert!(target.received().is_empty());
    dispatcher.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_is_down_then_up_gets_the_event() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    // Find a free port, then leave it closed: the target is down.
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr")
    };
    let dispatcher = forward_to(
        &store,
        &format!("http://{addr}/hook"),
        &["50ms"; 40].join(","),
    )
    .start();
    store.insert(event("down1")).await.expect("insert");
    wait_for("two failed attempts", PATIENCE, || async {
        (detail(&*store, "down1").await.attempts.len() >= 2).then_some(())
    })
    .await;
    let target = start_target_on(addr, vec![Answer::status(204)]).await;
    let delivered = wait_status(&store, "down1", DeliveryStatus::Delivered).await;
    let attempts = &delivered.attempts;
    let last = attempts.last().expect("attempts");
    assert_eq!(
        (last.outcome, last.http_status),
        (AttemptOutcome::Success, Some(204))
    );
    for failed in &attempts[..attempts.len() - 1] {
        assert_eq!(failed.outcome, AttemptOutcome::Failure);
        assert!(
            failed
                .error
                .as_deref()
                .unwrap_or("")
                .contains("connection failed"),
            "{failed:?}"
        );
        // The cause, without the wrapper texts of reqwest ("error sending request") and hyper
        // ("client error (Connect)") above it.
        let error = failed.error.as_deref().unwrap_or("");
        assert!(
            !error.contains("error sending request") && !error.contains("client error"),
            "{failed:?}"
        );
        assert!(
            failed
                .error
                .as_deref()
                .unwrap_or("")
                .to_lowercase()
                .contains("connection refused"),
            "{failed:?}"
        );
    }
    assert_eq!(target.received().len(), 1);
    dispatcher.shutdown(Duration::from_secs(5)).await;
}

/// A 503's or 429's `Retry-After` is honoured, up to the dispatcher's cap: the 503 asks for 1 s
/// (under the default cap), the 429 for an hour with the cap at 300 ms, and another 503 for more
/// seconds than a u64 holds (still a long wait, so capped, not ignored). The second attempt never
/// comes before the wait, and the capped ones come soon after the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_of_a_503_or_429_is_honoured_up_to_the_cap() {
    let cases = [
        (503, "1", None, Duration::from_millis(950)),
        (
            429,
            "3600",
            Some(Duration::from_millis(300)),
            Duration::from_millis(290),
        ),
        (
            503,
            "99999999999999999999",
            Some(Duration::from_millis(300)),
            Duration::from_millis(290),
        ),
    ];
    for (status, asked, cap, least) in cases {
        let t = temp_store(SqliteOptions::default());
        let store: Arc<dyn Store> = Arc::new(t.store.clone());
        let busy = Answer {
            status,
            retry_after: Some(asked),
            location: None,
        };
        let target = start_target(vec![busy, Answer::status(200)]).await;
        let mut builder = forward_to(&store, &target.url(), "50ms,50ms");
        if let Some(cap) = cap {
            builder = builder.retry_after_cap(cap);
        }
        let dispatcher = builder.start();
        store.insert(event("ra1")).await.expect("insert");
        let delivered = wait_status(&store, "ra1", DeliveryStatus::Delivered).await;
        let received = target.received();
        assert_eq!(received.len(), 2);
        let gap = received[1].at.duration_since(received[0].at);
        assert!(
            gap >= least,
            "{status}: retried after {gap:?} despite Retry-After: {asked}"
        );
        assert_eq!(delivered.attempts[0].http_status, Some(status));
        assert!(delivered.attempts[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains(&status.to_string()));
        dispatcher.shutdown(Duration::from_secs(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_after_the_last_attempt_of_the_schedule() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let target = start_target(vec![Answer::status(500)]).await;
    let dispatcher = forward_to(&store, &target.url(), "50ms,50ms").start();
    store.insert(event("dead1")).await.expect("insert");
    let dead = wait_status(&store, "dead1", DeliveryStatus::Dead).await;
    assert_eq!(dead.attempts.len(), 3);
    assert!(dead
        .attempts
        .iter()
        .all(|a| a.http_status == Some(500) && a.outcome == AttemptOutcome::Failure));
    assert!(dead.attempts[0]
        .error
        .as_deref()
        .unwrap_or("")
        .contains("target says hello"));
    // Dead means no more attempts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(target.received().len(), 3);
    // 410 Gone is dead at once.
    let gone = start_target(vec![Answer::status(410)]).await;
    let t2 = temp_store(SqliteOptions::default());
    let store2: Arc<dyn Store> = Arc::new(t2.store.clone());
    let d2 = forward_to(&store2, &gone.url(), "50ms,50ms").start();
    store2.insert(event("gone1")).await.expect("insert");
    let dead = wait_status(&store2, "gone1", DeliveryStatus::Dead).await;
    assert_eq!(dead.attempts.len(), 1);
    d2.shutdown(Duration::from_secs(5)).await;
    dispatcher.shutdown(Duration::from_secs(5)).await;
}

/// A consumer that hangs loses its lease; the event is delivered again, and the stale attempt's
/// late result is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_consumer_loses_its_lease_and_the_event_is_redelivered() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let stale_returned = Arc::new(AtomicUsize::new(0));
    let consumer = {
        let (calls, stale_returned) = (Arc::clone(&calls), Arc::clone(&stale_returned));
        CallbackConsumer::new(move |_event: InboxEvent| {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            let stale_returned = Arc::clone(&stale_returned);
            async move {
                if call == 0 {
                    // Hangs well past its lease, then claims success.
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    stale_returned.fetch_add(1, Ordering::SeqCst);
                }
                Ok::<(), std::io::Error>(())
            }
        })
    };
    let dispatcher = Dispatcher::builder(Arc::clone(&store), consumer)
        .lease(Duration::from_millis(200))
        .heartbeat(false)
        .poll_interval(Duration::from_millis(20))
        .start();
    store.insert(event("hung1")).await.expect("insert");
    let delivered = wait_status(&store, "hung1", DeliveryStatus::Delivered).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    wait_count("the stale attempt to return", &stale_returned, 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = detail(&*store, "hung1").await;
    let outcomes: Vec<AttemptOutcome> = after.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [AttemptOutcome::LeaseExpired, AttemptOutcome::Success]
    );
    assert_eq!(
        after.summary.deliveries[0].delivered_at,
        delivered.summary.deliveries[0].delivered_at
    );
    dispatcher.shutdown(Duration::from_secs(5)).await;
}

/// With heartbeats, a slow consumer keeps its lease and is not redelivered. The consumer takes
/// two leases; each heartbeat has two thirds of a lease (1 s) to reach the store. With a 300 ms
/// lease, a write stalled 200 ms by a busy CI machine let the lease lapse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_a_slow_attempt_leased() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let consumer = {
        let calls = Arc::clone(&calls);
        CallbackConsumer::new(move |_event: InboxEvent| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_millis(3000)).await;
                Ok::<(), std::io::Error>(())
            }
        })
    };
    let dispatcher = Dispatcher::builder(Arc::clone(&store), consumer)
        .lease(Duration::from_millis(1500))
        .poll_interval(Duration::from_millis(20))
        .start();
    store.insert(event("slow1")).await.expect("insert");
    let delivered = wait_status(&store, "slow1", DeliveryStatus::Delivered).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(delivered.attempts.len(), 1);
    dispatcher.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_waits_then_releases_unfinished_work() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let started = Arc::new(AtomicUsize::new(0));
    let consumer = {
        let started = Arc::clone(&started);
        CallbackConsumer::new(move |event: InboxEvent| {
            started.fetch_add(1, Ordering::SeqCst);
            async move {
                if event.event_hash == "stuck" {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok::<(), std::io::Error>(())
            }
        })
    };
    let dispatcher = Dispatcher::builder(Arc::clone(&store), consumer)
        .lease(Duration::from_secs(60))
        .poll_interval(Duration::from_millis(20))
        .start();
    store.insert(event("stuck")).await.expect("insert");
    store.insert(event("quick")).await.expect("insert");
    wait_count("both attempts to start", &started, 2).await;
    let report = dispatcher.shutdown(Duration::from_secs(1)).await;
    assert_eq!((report.finished, report.released), (1, 1), "{report:?}");
    assert_eq!(
        detail(&*store, "quick").await.summary.deliveries[0].status,
        DeliveryStatus::Delivered
    );
    let stuck = detail(&*store, "stuck").await;
    let state = &stuck.summary.deliveries[0];
    assert_eq!((state.status, state.attempts), (DeliveryStatus::Pending, 0));
    assert!(stuck.attempts.is_empty(), "a release is not an attempt");
    // Due at once on the next start (the old lease was a minute long).
    let delivered_to = Arc::new(Mutex::new(Vec::new()));
    let consumer = {
        let delivered_to = Arc::clone(&delivered_to);
        CallbackConsumer::new(move |event: InboxEvent| {
            delivered_to
                .lock()
                .expect("lock")
                .push((event.event_hash.clone(), event.attempt));
            async { Ok::<(), std::io::Error>(()) }
        })
    };
    let next = Dispatcher::builder(Arc::clone(&store), consumer)
        .poll_interval(Duration::from_millis(20))
        .start();
    wait_status(&store, "stuck", DeliveryStatus::Delivered).await;
    assert_eq!(
        *delivered_to.lock().expect("lock"),
        [("stuck".to_owned(), 1)]
    );
    next.shutdown(Duration::from_secs(5)).await;
}

/// An attempt whose lease lapsed and the claim that took its delivery over run in one
/// dispatcher at once. The stale one ends first; the live one must still be released at
/// shutdown, not left in progress until its lease lapses too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reclaimed_delivery_is_released_at_shutdown_after_its_stale_attempt_ends() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let stale_ended = Arc::new(AtomicUsize::new(0));
    let consumer = {
        let (calls, stale_ended) = (Arc::clone(&calls), Arc::clone(&stale_ended));
        CallbackConsumer::new(move |_: InboxEvent| {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            let stale_ended = Arc::clone(&stale_ended);
            async move {
                if call == 0 {
                    // Outlives its 1 s lease (no heartbeat), then ends.
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    stale_ended.fetch_add(1, Ordering::SeqCst);
                } else {
                    std::future::pending::<()>().await;
                }
                Ok::<(), std::io::Error>(())
            }
        })
    };
    let dispatcher = Dispatcher::builder(Arc::clone(&store), consumer)
        .concurrency(2)
        .lease(Duration::from_secs(1))
        .heartbeat(false)
        .poll_interval(Duration::from_millis(20))
        .start();
    store.insert(event("reclaimed")).await.expect("insert");
    wait_count("the delivery to be claimed again", &calls, 2).await;
    wait_count("the stale attempt to end", &stale_ended, 1).await;
    // Time for its refused finish and its bookkeeping. Without it the test could pass on a
    // regression (the stale attempt aborted first), never fail on correct code.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = dispatcher.shutdown(Duration::ZERO).await;
    let state = detail(&*store, "reclaimed").await.summary.deliveries[0].clone();
    assert_eq!(report.released, 1, "{report:?}");
    assert_eq!(state.status, DeliveryStatus::Pending, "{state:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_consumer_gets_the_event_and_its_attempt_number() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let consumer = {
        let seen = Arc::clone(&seen);
        CallbackConsumer::new(move |event: InboxEvent| {
            seen.lock().expect("lock").push(event.clone());
            async move {
                if event.attempt == 1 {
                    return Err(std::io::Error::other("first attempt fails"));
                }
                Ok(())
            }
        })
    };
    let dispatcher = Dispatcher::builder(Arc::clone(&store), consumer)
        .retry_schedule(fast_schedule("50ms"))
        .poll_interval(Duration::from_millis(20))
        .start();
    let sent = event("cb1").received_at(SystemTime::now() - Duration::from_secs(1));
    store.insert(sent.clone()).await.expect("insert");
    let delivered = wait_status(&store, "cb1", DeliveryStatus::Delivered).await;
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[0].attempt, seen[1].attempt), (1, 2));
    assert_eq!(seen[1].body, sent.body);
    assert_eq!(seen[1].signature, sent.signature);
    assert_eq!(seen[1].event_type, "message.sent");
    assert_eq!(seen[1].event_hash, "cb1");
    let shown = format!("{:?}", seen[1]);
    assert!(
        !shown.contains("c2lnLXZhbHVl") && !shown.contains("+1415"),
        "{shown}"
    );
    assert_eq!(
        delivered.attempts[0].error.as_deref(),
        Some("first attempt fails")
    );
    dispatcher.shutdown(Duration::from_secs(5)).await;
}

/// A redirect is not followed: it is a failed attempt (the target must be configured with its
/// final URL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let redirect = Answer {
        status: 307,
        retry_after: None,
        location: Some("/elsewhere"),
    };
    let target = start_target(vec![redirect]).await;
    let dispatcher = forward_to(&store, &target.url(), "").start();
    store.insert(event("redir1")).await.expect("insert");
    let dead = wait_status(&store, "redir1", DeliveryStatus::Dead).await;
    assert_eq!(dead.attempts.len(), 1);
    assert_eq!(dead.attempts[0].http_status, Some(307));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        target.received().len(),
        1,
        "the redirect must not be followed"
    );
    dispatcher.shutdown(Duration::from_secs(5)).await;
}

#[test]
fn invalid_forward_urls_are_refused_without_echoing_them() {
    for url in [
        "",
        "not a url",
        "ftp://user:pw-s3cr3t@example.com/x",
        "/relative/path",
        "user:pw-s3cr3t@example.com/hook",
    ] {
        let error = HttpForward::new(url).expect_err(url).to_string();
        assert!(error.contains("expected an absolute http"), "{error}");
        assert!(
            !error.contains("s3cr3t") && !error.contains("example.com") && !error.contains("user"),
            "{error}"
        );
    }
    // Debug shows where, not the path or query (which may carry a token).
    let forward = HttpForward::new("https://example.com/hook?token=s3cr3t").expect("valid");
    let shown = format!("{forward:?}");
    assert!(
        !shown.contains("s3cr3t") && shown.contains("example.com"),
        "{shown}"
    );
}

/// Two dispatchers (as two instances would run) claiming from one store deliver every event
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_share_the_work_without_delivering_twice() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let target = start_target(vec![Answer::status(200)]).await;
    let start = |owner: &str| {
        Dispatcher::builder(
            Arc::clone(&store),
            HttpForward::new(&target.url()).expect("url"),
        )
        .owner(owner)
        .concurrency(3)
        .poll_interval(Duration::from_millis(20))
        .start()
    };
    let (a, b) = (start("instance-a"), start("instance-b"));
    for i in 0..200 {
        store
            .insert(event(&format!("many{i}")))
            .await
            .expect("insert");
    }
    wait_for("every event delivered", PATIENCE, || async {
        let stats = store.stats(SystemTime::now()).await.expect("stats");
        (stats.count(DeliveryStatus::Delivered) == 200).then_some(())
    })
    .await;
    let received = target.received();
    assert_eq!(received.len(), 200, "an event was delivered twice or lost");
    let mut bodies: Vec<&[u8]> = received.iter().map(|r| r.body.as_ref()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 200);
    a.shutdown(Duration::from_secs(5)).await;
    b.shutdown(Duration::from_secs(5)).await;
}

/// `on_attempt` hears each recorded outcome: failures with their next time, then the delivery; and
/// the last failure as dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_reported_after_they_are_recorded() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let target = start_target(vec![
        Answer::status(500),
        Answer::status(500),
        Answer::status(200),
    ])
    .await;
    let (dispatcher, reports) = start_reporting(&store, &target.url(), "50ms,50ms,50ms");
    store.insert(event("rep1")).await.expect("insert");
    wait_status(&store, "rep1", DeliveryStatus::Delivered).await;
    let got = wait_reports("three reports", &reports, 3).await;
    for (i, report) in got.iter().enumerate() {
        assert_eq!(report.event_hash, "rep1");
        assert_eq!(report.event_type, "message.sent");
        assert_eq!(report.attempt, i as u32 + 1);
        assert_eq!(report.max_attempts, 4);
    }
    assert!(matches!(got[0].result, AttemptResult::RetryAt(_)));
    assert_eq!(got[0].http_status, Some(500));
    assert!(got[0].error.is_some());
    assert!(matches!(got[1].result, AttemptResult::RetryAt(_)));
    assert_eq!(got[2].result, AttemptResult::Delivered);
    assert_eq!(got[2].http_status, Some(200));
    // The wait as chosen (no jitter here), not what is left of it when the report arrives.
    let waits: Vec<_> = got.iter().map(|r| r.retry_in).collect();
    let wait = Some(Duration::from_millis(50));
    assert_eq!(waits, [wait, wait, None]);
    dispatcher.shutdown(Duration::from_secs(5)).await;

    // The last failure is reported as dead.
    let failing = start_target(vec![Answer::status(500)]).await;
    let (d2, dead) = start_reporting(&store, &failing.url(), "50ms");
    store.insert(event("rep2")).await.expect("insert");
    wait_status(&store, "rep2", DeliveryStatus::Dead).await;
    let got = wait_reports("two reports", &dead, 2).await;
    assert!(matches!(got[0].result, AttemptResult::RetryAt(_)));
    assert_eq!(got[1].result, AttemptResult::Dead);
    assert_eq!(got[1].retry_in, None);
    d2.shutdown(Duration::from_secs(5)).await;
}

/// A replay is never out of attempts: replaying a delivered event sends it again each time, even
/// on a schedule of one attempt (the replay starts the schedule over).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_event_replayed_twice_is_sent_three_times() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let target = start_target(vec![Answer::status(200)]).await;
    let dispatcher = forward_to(&store, &target.url(), "").start();
    store.insert(event("rp1")).await.expect("insert");
    wait_status(&store, "rp1", DeliveryStatus::Delivered).await;
    for sends in [2, 3] {
        let replayed = store
            .replay(ReplayTarget::Hash("rp1".into()))
            .await
            .map(|r| r.due);
        assert_eq!(replayed, Ok(1));
        dispatcher.wake();
        wait_for(&format!("send {sends} of rp1"), PATIENCE, || async {
            (target.received().len() == sends).then_some(())
        })
        .await;
        wait_status(&store, "rp1", DeliveryStatus::Delivered).await;
    }
    let delivered = detail(&*store, "rp1").await;
    assert_eq!(delivered.attempts.len(), 3);
    assert!(delivered
        .attempts
        .iter()
        .all(|a| a.outcome == AttemptOutcome::Success && a.http_status == Some(200)));
    dispatcher.shutdown(Duration::from_secs(5)).await;
}

/// A consumer that does not finish within the attempt timeout fails that attempt (recorded as
/// such) and the event is tried again on the schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_past_its_timeout_fails_and_is_retried() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let consumer = CallbackConsumer::new(|event: InboxEvent| async move {
        if event.attempt == 1 {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Ok::<(), std::io::Error>(())
    });
    let dispatcher = Dispatcher::builder(Arc::clone(&store), consumer)
        .retry_schedule(fast_schedule("50ms"))
        .attempt_timeout(Duration::from_millis(200))
        .poll_interval(Duration::from_millis(20))
        .start();
    store.insert(event("to1")).await.expect("insert");
    let delivered = wait_status(&store, "to1", DeliveryStatus::Delivered).await;
    assert_eq!(delivered.attempts.len(), 2);
    assert_eq!(delivered.attempts[0].outcome, AttemptOutcome::Failure);
    let error = delivered.attempts[0].error.as_deref().unwrap_or("");
    assert!(error.contains("did not finish within"), "{error}");
    assert_eq!(delivered.attempts[1].outcome, AttemptOutcome::Success);
    dispatcher.shutdown(Duration::from_secs(5)).await;
}

/// `concurrency(n)` bounds the attempts in flight: with slow consumers and many due events, the
/// most running at once is `n`, and it is reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_attempts_run_at_once_than_the_concurrency() {
    const CONCURRENCY: usize = 3;
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    for i in 0..12 {
        store
            .insert(event(&format!("cc{i}")))
            .await
            .expect("insert");
    }
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let consumer = {
        let (running, most) = (Arc::clone(&running), Arc::clone(&most));
        CallbackConsumer::new(move |_event: InboxEvent| {
            let (running, most) = (Arc::clone(&running), Arc::clone(&most));
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<(), std::io::Error>(())
            }
        })
    };
    let dispatcher = Dispatcher::builder(Arc::clone(&store), consumer)
        .concurrency(CONCURRENCY)
        .poll_interval(Duration::from_millis(20))
        .start();
    for i in 0..12 {
        wait_status(&store, &format!("cc{i}"), DeliveryStatus::Delivered).await;
    }
    assert_eq!(most.load(Ordering::SeqCst), CONCURRENCY);
    dispatcher.shutdown(Duration::from_secs(5)).await;
}

/// A concurrency of `usize::MAX` is clamped to `MAX_CONCURRENCY`: it used to panic the
/// dispatcher's task (a semaphore that large), silently: nothing was ever delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_concurrency_still_delivers() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let target = start_target(vec![Answer::status(200)]).await;
    let dispatcher = forward_to(&store, &target.url(), "1s")
        .concurrency(usize::MAX)
        .start();
    store.insert(event("wide")).await.expect("insert");
    dispatcher.wake();
    wait_status(&store, "wide", DeliveryStatus::Delivered).await;
    assert_eq!(target.received().len(), 1);
    dispatcher.shutdown(Duration::from_secs(5)).await;
}

/// A target whose error page echoes the request's headers (a debugging endpoint, a framework's
/// error page) must not put the forwarded signature, a credential that verifies forever, into the
/// attempt's error: it is stored, shown and logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_echoing_the_signature_does_not_get_it_recorded() {
    use axum::http::HeaderMap;
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|headers: HeaderMap| async move {
            let signature = headers
                .get("x-ccai-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            // Once verbatim, once as PHP's json_encode writes it (`/` escaped).
            let escaped = signature.replace('/', "\\/");
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("bad request, signature {signature} ({escaped})"),
            )
        }),
    );
    let (addr, server) = serve_app(app).await;
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let signature = "xsVK2WCReT+/qDcdybJWueN8wuNu8eI4eemZ7RZ/uFs=";
    store
        .insert(event("echoed").signature(signature))
        .await
        .expect("insert");
    let dispatcher = forward_to(&store, &format!("http://{addr}/hook"), "").start();
    let dead = wait_status(&store, "echoed", DeliveryStatus::Dead).await;
    dispatcher.shutdown(Duration::from_secs(5)).await;
    server.abort();
    let error = dead.attempts[0].error.clone().unwrap_or_default();
    assert!(error.contains("HTTP 500"), "{error}");
    assert!(error.contains("[REDACTED]"), "{error}");
    for shown in [
        error.as_str(),
        dead.summary.deliveries[0]
            .last_error
            .as_deref()
            .unwrap_or(""),
    ] {
        for leaked in [signature, r"xsVK2WCReT+\/qDcdybJWueN8wuNu8eI4eemZ7RZ\/uFs="] {
            assert!(!shown.contains(leaked), "{shown}");
        }
    }
    // The signature itself was forwarded, untouched.
    assert_eq!(dead.signature.as_deref(), Some(signature));
}

/// An echo of the signature that the 512-byte excerpt of the answer cut in two was not found,
/// so all but its last character (the `=` padding every signature ends with) was recorded:
/// the whole credential. The answer's leading spaces (trimmed) leave room for it in the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_echo_cut_by_the_excerpt_is_not_recorded() {
    let signature = "xsVK2WCReT+/qDcdybJWueN8wuNu8eI4eemZ7RZ/uFs=";
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|headers: axum::http::HeaderMap| async move {
            let echoed = headers
                .get("x-ccai-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            // The echo starts at byte 469: the excerpt's 512 bytes end one short of its end.
            let body = format!("{}{}{echoed}", " ".repeat(300), "x".repeat(169));
            (axum::http::StatusCode::INTERNAL_SERVER_ERROR, body)
        }),
    );
    let (addr, server) = serve_app(app).await;
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    store
        .insert(event("cut-echo").signature(signature))
        .await
        .expect("insert");
    let dispatcher = forward_to(&store, &format!("http://{addr}/hook"), "").start();
    let dead = wait_status(&store, "cut-echo", DeliveryStatus::Dead).await;
    dispatcher.shutdown(Duration::from_secs(5)).await;
    server.abort();
    let error = dead.attempts[0].error.clone().unwrap_or_default();
    assert!(error.contains("HTTP 500"), "{error}");
    assert!(
        error.contains("xxxx"),
        "the answer is still excerpted: {error}"
    );
    let almost_all = &signature[..signature.len() - 1];
    for shown in [
        error.as_str(),
        dead.summary.deliveries[0]
            .last_error
            .as_deref()
            .unwrap_or(""),
    ] {
        assert!(!shown.contains(almost_all), "{shown}");
        assert!(shown.contains("[REDACTED]"), "{shown}");
    }
}

/// `ShutdownReport::finished` counts the attempts that finished within the grace period: it
/// counted every attempt the dispatcher had run since it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reports_only_the_attempts_it_waited_for() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let dispatcher = Dispatcher::builder(
        Arc::clone(&store),
        CallbackConsumer::new(|_event: InboxEvent| async { Ok::<(), std::io::Error>(()) }),
    )
    .poll_interval(Duration::from_millis(20))
    .start();
    for hash in ["done1", "done2", "done3"] {
        store.insert(event(hash)).await.expect("insert");
        dispatcher.wake();
        wait_status(&store, hash, DeliveryStatus::Delivered).await;
    }
    // Many poll intervals, for the loop to reap the attempts' tasks (their ends come just after
    // the outcomes the test sees), even on a busy machine; the last one may still be ending.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = dispatcher.shutdown(Duration::from_secs(5)).await;
    assert!(report.finished <= 1, "{report:?}");
    assert_eq!(report.released, 0);
}

/// With a long poll interval the loop sits idle between wake-ups and reaps nothing: the
/// attempts that ended before the shutdown were still counted as finished within its grace
/// period. Only the one that ends after the shutdown began counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_count_attempts_that_ended_before_it_while_idle() {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let consumer = {
        let (gate, ended, started) = (Arc::clone(&gate), Arc::clone(&ended), Arc::clone(&started));
        CallbackConsumer::new(move |event: InboxEvent| {
            let (gate, ended) = (Arc::clone(&gate), Arc::clone(&ended));
            started.fetch_add(1, Ordering::SeqCst);
            async move {
                if event.event_hash == "held" {
                    let _permit = gate.acquire().await;
                }
                ended.fetch_add(1, Ordering::SeqCst);
                Ok::<(), std::io::Error>(())
            }
        })
    };
    // All four are claimed in the dispatcher's first turn (five workers: it then waits), and
    // with an hour between polls and no wake-up the loop stays idle after it.
    for hash in ["early1", "early2", "early3", "held"] {
        store.insert(event(hash)).await.expect("insert");
    }
    let dispatcher = Dispatcher::builder(Arc::clone(&store), consumer)
        .concurrency(5)
        .poll_interval(Duration::from_secs(3600))
        .start();
    for hash in ["early1", "early2", "early3"] {
        wait_status(&store, hash, DeliveryStatus::Delivered).await;
    }
    wait_count("the held attempt to start", &started, 4).await;
    // Time for the three tasks to end after their outcomes are recorded.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ended.load(Ordering::SeqCst), 3);
    // The shutdown's first poll sends the stop; the held attempt ends after it.
    let (report, ()) = tokio::join!(dispatcher.shutdown(Duration::from_secs(10)), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        gate.add_permits(1);
    });
    assert_eq!(ended.load(Ordering::SeqCst), 4);
    assert_eq!((report.finished, report.released), (1, 0), "{report:?}");
    wait_status(&store, "held", DeliveryStatus::Delivered).await;
}

/// An echo of the signature as other encoders write it was recorded whole: `+` as `\u002B`
/// (System.Text.Json's default, in an ASP.NET target's error), or percent-encoded (a target
/// echoing a query string or a form).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_echoed_in_another_encoding_is_not_recorded() {
    let signature = "xsVK2WCReT+/qDcdybJWueN8wuNu8eI4eemZ7RZ/uFs=";
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|headers: axum::http::HeaderMap| async move {
            let echoed = headers
                .get("x-ccai-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let dotnet = echoed.replace('+', "\\u002B");
            let percent = echoed
                .replace('+', "%2B")
                .replace('/', "%2f")
                .replace('=', "%3D");
            (
                axum::http::StatusCode::BAD_REQUEST,
                format!("{{\"signature\":\"{dotnet}\"}} sig={percent}&x=1"),
            )
        }),
    );
    let (addr, server) = serve_app(app).await;
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    store
        .insert(event("encoded-echo").signature(signature))
        .await
        .expect("insert");
    let dispatcher = forward_to(&store, &format!("http://{addr}/hook"), "").start();
    let dead = wait_status(&store, "encoded-echo", DeliveryStatus::Dead).await;
    dispatcher.shutdown(Duration::from_secs(5)).await;
    server.abort();
    let error = dead.attempts[0].error.clone().unwrap_or_default();
    assert_eq!(
        error,
        "HTTP 400 Bad Request: {\"signature\":\"[REDACTED]\"} sig=[REDACTED]&x=1"
    );
    assert_eq!(
        dead.summary.deliveries[0].last_error.as_deref(),
        Some(error.as_str())
    );
}

/// A delivery with more attempts made than the retry schedule allows (the schedule was shortened
/// since) goes dead without another try; the reason said that every earlier attempt "ended
/// without an outcome (the worker died or hung)", sending whoever reads it after crashes that
/// never happened: here both earlier attempts are recorded failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reason_for_no_attempt_left_does_not_invent_crashes() {
    use ccai::inbox::{AttemptRecord, Finish, LeaseRequest};
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    store.insert(event("shortened")).await.expect("insert");
    for _ in 0..2 {
        let claimed = store
            .claim(
                "default",
                LeaseRequest::new("earlier", Duration::from_secs(60)),
                1,
                SystemTime::now(),
            )
            .await
            .expect("claim");
        let failed = AttemptRecord::new(SystemTime::now(), Duration::ZERO, AttemptOutcome::Failure)
            .error("HTTP 500");
        let again = Finish::RetryAt(SystemTime::now());
        assert!(store
            .finish(&claimed[0].lease, again, failed)
            .await
            .expect("finish"));
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let dispatcher = Dispatcher::builder(
        Arc::clone(&store),
        CallbackConsumer::new(move |_event: InboxEvent| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), std::io::Error>(()) }
        }),
    )
    .retry_schedule(fast_schedule("1s"))
    .poll_interval(Duration::from_millis(20))
    .start();
    let dead = wait_status(&store, "shortened", DeliveryStatus::Dead).await;
    dispatcher.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no attempt is left to make"
    );
    let reason = dead.summary.deliveries[0]
        .last_error
        .clone()
        .unwrap_or_default();
    assert!(reason.contains("no attempt left"), "{reason}");
    assert!(reason.contains("2 attempts made"), "{reason}");
    assert!(reason.contains("allows 2"), "{reason}");
    assert!(!reason.contains("ended without an outcome"), "{reason}");
    // Dead without an attempt of its own (both backends: the conformance suite).
    assert_eq!(dead.summary.deliveries[0].attempts, 2);
    assert_eq!(dead.attempts.len(), 2, "{:?}", dead.attempts);
}

/// An outcome the store cannot record for a moment (another process holds the write lock a
/// little longer than the busy timeout) is recorded once the store takes it again. It was given
/// up at once: the delivery stayed in progress until its lease lapsed, then was handed on again
/// and the lapse counted as an attempt, so that a store that is often busy could make an event
/// dead after every attempt of it had succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_the_store_cannot_record_for_a_moment_is_recorded_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.db");
    let options = SqliteOptions::default().busy_timeout(Duration::from_millis(50));
    let sqlite = ccai::inbox::SqliteStore::open(&path, options).expect("open");
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    store.insert(event("busy")).await.expect("insert");
    let calls = Arc::new(AtomicUsize::new(0));
    let consumer = {
        let calls = Arc::clone(&calls);
        CallbackConsumer::new(move |_event: InboxEvent| {
            let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
            let path = path.clone();
            async move {
                if first {
                    // Another process takes the write lock as the attempt ends, and keeps it
                    // for 300 ms: the outcome's write fails with `Locked` at first.
                    let (locked, taken) = tokio::sync::oneshot::channel();
                    std::thread::spawn(move || {
                        let other = rusqlite::Connection::open(&path).expect("open raw");
                        other.execute_batch("BEGIN IMMEDIATE").expect("lock");
                        let _ = locked.send(());
                        std::thread::sleep(Duration::from_millis(300));
                        other.execute_batch("ROLLBACK").expect("unlock");
                    });
                    taken.await.expect("the lock is taken");
                }
                Ok::<(), std::io::Error>(())
            }
        })
    };
    let dispatcher = Dispatcher::builder(Arc::clone(&store), consumer)
        .lease(Duration::from_secs(2))
        .heartbeat(false)
        .poll_interval(Duration::from_millis(20))
        .start();
    let delivered = wait_status(&store, "busy", DeliveryStatus::Delivered).await;
    dispatcher.shutdown(Duration::from_secs(5)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "handed on once");
    let outcomes: Vec<AttemptOutcome> = delivered.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, [AttemptOutcome::Success]);
    assert_eq!(delivered.summary.deliveries[0].attempts, 1);
}

/// A heartbeat that fails (another process holds the write lock past the busy timeout) is
/// tried again as soon as the store may take it, not a third of the lease later. A failed write
/// can take the whole busy timeout; with one longer than a third of the lease (5 s against 10 s
/// in `ccai listen`), the next heartbeat came after the lease had lapsed, and another
/// dispatcher (or this one) handed the event on a second time while the first attempt ran.
///
/// Here: a 9 s lease, heartbeats every 3 s, a 4 s busy timeout. The consumer's first call has
/// another connection hold the write lock for 7.3 s: the heartbeat at 3 s fails at 7 s. Tried
/// again at once, it extends the lease when the lock goes, 1.7 s before it would lapse; it used
/// to come at 10 s, when a second dispatcher (on its own handle) had claimed the event at 9 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_heartbeat_is_retried_before_the_lease_lapses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.db");
    let options = SqliteOptions::default().busy_timeout(Duration::from_secs(4));
    let open = || -> Arc<dyn Store> {
        Arc::new(ccai::inbox::SqliteStore::open(&path, options.clone()).expect("open"))
    };
    let (first, second) = (open(), open());
    first.insert(event("held")).await.expect("insert");
    let (started, running) = tokio::sync::oneshot::channel();
    let started = Arc::new(Mutex::new(Some(started)));
    let lock_path = path.clone();
    let consumer = CallbackConsumer::new(move |_event: InboxEvent| {
        let started = started.lock().expect("lock").take();
        let path = lock_path.clone();
        async move {
            if let Some(started) = started {
                let (locked, taken) = tokio::sync::oneshot::channel();
                std::thread::spawn(move || {
                    let other = rusqlite::Connection::open(&path).expect("open raw");
                    other.execute_batch("BEGIN IMMEDIATE").expect("lock");
                    let _ = locked.send(());
                    std::thread::sleep(Duration::from_millis(7300));
                    other.execute_batch("ROLLBACK").expect("unlock");
                });
                taken.await.expect("the lock is taken");
                let _ = started.send(());
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<(), std::io::Error>(())
        }
    });
    let holder = Dispatcher::builder(Arc::clone(&first), consumer)
        .lease(Duration::from_secs(9))
        .poll_interval(Duration::from_secs(3600))
        .start();
    holder.wake();
    running.await.expect("the first attempt runs");
    let taken_over = Arc::new(AtomicUsize::new(0));
    let other = {
        let taken_over = Arc::clone(&taken_over);
        Dispatcher::builder(
            Arc::clone(&second),
            CallbackConsumer::new(move |_event: InboxEvent| {
                taken_over.fetch_add(1, Ordering::SeqCst);
                async { Ok::<(), std::io::Error>(()) }
            }),
        )
        .lease(Duration::from_secs(9))
        .poll_interval(Duration::from_millis(20))
        .start()
    };
    let delivered = wait_status(&first, "held", DeliveryStatus::Delivered).await;
    other.shutdown(Duration::from_secs(5)).await;
    holder.shutdown(Duration::from_secs(5)).await;
    assert_eq!(taken_over.load(Ordering::SeqCst), 0, "handed on twice");
    let outcomes: Vec<AttemptOutcome> = delivered.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, [AttemptOutcome::Success]);
}
