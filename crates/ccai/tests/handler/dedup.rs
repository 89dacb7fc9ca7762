//! Deduplication by `eventHash`: repeats, concurrency, failed and abandoned callbacks, and a
//! deduper whose release fails.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ccai::webhook::{create_handler, HandlerOptions, MemoryDeduper, WebhookEvent};

use crate::support::{
    delivery, fails_once_options, post, recording_options, serve, signed_request, url, CLIENT_ID,
    SECRET,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_repeats_run_each_callback_exactly_once() {
    let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let c = counts.clone();
    let options = HandlerOptions::new(CLIENT_ID, move |event: WebhookEvent| {
        let c = c.clone();
        async move {
            *c.lock().expect("lock").entry(event.event_hash).or_default() += 1;
            // Stay in flight for a while so that repeats arrive meanwhile (and wait).
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            Ok::<_, std::io::Error>(())
        }
    })
    .secret(SECRET);
    let addr = serve(create_handler(options).expect("handler")).await;
    let client = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let client = client.clone();
        let hash = format!("event-{}", (i * 7) % 200);
        tasks.spawn(async move {
            let (body, signature) = delivery(&hash);
            client
                .post(url(addr))
                .header("X-CCAI-Signature", signature)
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
    }
    let mut ok = 0;
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.expect("task").expect("request"), 200);
        ok += 1;
    }
    assert_eq!(ok, 1000);
    let counts = counts.lock().expect("lock");
    assert_eq!(counts.len(), 200);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}

#[tokio::test]
async fn failing_callback_is_retried_and_then_deduplicated() {
    let (options, calls) = fails_once_options("transient");
    let options = options.secret(SECRET);
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = delivery("fails-once");
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 500);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Processed: a replay is acknowledged without calling back.
    let replay = post(addr, &body, Some(&signature)).await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.body, r#"{"success":true}"#);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn without_deduplication_every_repeat_is_processed() {
    let (options, seen) = recording_options();
    let addr = serve(create_handler(options.without_deduplication()).expect("handler")).await;
    let (body, signature) = delivery("repeat");
    for _ in 0..3 {
        assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    }
    assert_eq!(seen.lock().expect("lock").len(), 3);

    // And a custom deduper is used when given.
    let deduper = Arc::new(MemoryDeduper::new());
    let (options, seen) = recording_options();
    let addr =
        serve(create_handler(options.shared_deduper(deduper.clone())).expect("handler")).await;
    for _ in 0..3 {
        assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    }
    assert_eq!(seen.lock().expect("lock").len(), 1);
    // The given deduper recorded the event as completed (`MemoryDeduper::state` is no longer
    // public: asked through the trait instead).
    assert_eq!(
        ccai::dedup::Deduper::claim(&*deduper, "repeat")
            .await
            .expect("claim"),
        ccai::dedup::Claim::AlreadyCompleted
    );
}

/// A repeat that arrives while the first delivery's callback runs waits for it; the first one
/// fails, so the repeat is processed (and not lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeat_during_a_failing_callback_is_processed_after_it() {
    let calls = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(tokio::sync::Notify::new());
    let gate = Arc::new(tokio::sync::Notify::new());
    let (c, s, g) = (calls.clone(), started.clone(), gate.clone());
    let options = HandlerOptions::new(CLIENT_ID, move |_: WebhookEvent| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        let (s, g) = (s.clone(), g.clone());
        async move {
            if n == 0 {
                s.notify_one();
                g.notified().await;
                Err(std::io::Error::other("first attempt fails"))
            } else {
                Ok(())
            }
        }
    })
    .secret(SECRET);
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = delivery("slow-then-fails");
    let (b, sig) = (body.clone(), signature.clone());
    let first = tokio::spawn(async move { post(addr, &b, Some(&sig)).await.status });
    started.notified().await;
    let (b, sig) = (body.clone(), signature.clone());
    let second = tokio::spawn(async move { post(addr, &b, Some(&sig)).await.status });
    // The first callback is still running: no repeat may have run the callback.
    tokio::task::yield_now().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    gate.notify_one();
    assert_eq!(first.await.expect("first"), 500);
    assert_eq!(second.await.expect("second"), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A request abandoned while its callback runs (client gone: the service future is dropped)
/// releases its claim, so the retry is processed instead of waiting forever.
#[tokio::test]
async fn abandoned_request_releases_its_claim() {
    use http_body_util::BodyExt;
    use tower::Service;

    let calls = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(tokio::sync::Notify::new());
    let (c, s) = (calls.clone(), started.clone());
    let options = HandlerOptions::new(CLIENT_ID, move |_: WebhookEvent| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        let s = s.clone();
        async move {
            if n == 0 {
                s.notify_one();
                std::future::pending::<()>().await;
            }
            Ok::<_, std::io::Error>(())
        }
    })
    .secret(SECRET);
    let mut handler = create_handler(options).expect("handler");
    let (body, signature) = delivery("abandoned");
    let request = || signed_request(&body, &signature);
    let first = handler.call(request());
    tokio::select! {
        _ = first => panic!("the first callback never finishes"),
        _ = started.notified() => {}
    }
    // `first` is dropped here, as hyper drops it when the client disconnects.
    let response = handler.call(request()).await.expect("infallible");
    assert_eq!(response.status(), 200);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], br#"{"success":true}"#);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// Polls `future` with a no-op waker, at most `polls` times, without any async runtime.
fn poll_without_runtime<F: std::future::Future + Unpin>(
    future: &mut F,
    polls: usize,
) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    (0..polls).find_map(|_| match std::pin::Pin::new(&mut *future).poll(&mut cx) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    })
}

/// Outside any tokio runtime, a request abandoned while its callback runs still releases its
/// claim (the in-memory release completes at once), so the retry is processed.
#[test]
fn abandoned_request_releases_its_claim_without_a_runtime() {
    use tower::Service;

    assert!(tokio::runtime::Handle::try_current().is_err());
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let options = HandlerOptions::new(CLIENT_ID, move |_: WebhookEvent| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                std::future::pending::<()>().await;
            }
            Ok::<_, std::io::Error>(())
        }
    })
    .secret(SECRET);
    let mut handler = create_handler(options).expect("handler");
    let (body, signature) = delivery("abandoned-no-runtime");
    let request = || signed_request(&body, &signature);
    let mut first = handler.call(request());
    assert!(poll_without_runtime(&mut first, 1).is_none());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    drop(first);
    let mut second = handler.call(request());
    let response = poll_without_runtime(&mut second, 100)
        .expect("the retry is not left waiting for the abandoned claim")
        .expect("infallible");
    assert_eq!(response.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A deduper whose first `release` fails.
struct FlakyRelease {
    inner: MemoryDeduper,
    failures: AtomicUsize,
}

impl ccai::webhook::Deduper for FlakyRelease {
    fn claim<'a>(&'a self, hash: &'a str) -> ccai::webhook::DedupFuture<'a, ccai::webhook::Claim> {
        self.inner.claim(hash)
    }

    fn complete<'a>(&'a self, hash: &'a str) -> ccai::webhook::DedupFuture<'a, ()> {
        self.inner.complete(hash)
    }

    fn release<'a>(&'a self, hash: &'a str) -> ccai::webhook::DedupFuture<'a, ()> {
        let fail = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            Box::pin(std::future::ready(Err(ccai::webhook::DedupError::Backend(
                "store unavailable".into(),
            ))))
        } else {
            self.inner.release(hash)
        }
    }
}

/// The callback failed and so did releasing its claim: the release is retried, so the next
/// delivery is processed instead of waiting forever.
#[tokio::test]
async fn failed_release_after_a_failed_callback_is_retried() {
    let (options, calls) = fails_once_options("first attempt fails");
    let options = options.secret(SECRET).deduper(FlakyRelease {
        inner: MemoryDeduper::new(),
        failures: AtomicUsize::new(1),
    });
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = delivery("release-fails");
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 500);
    let retry = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        post(addr, &body, Some(&signature)),
    )
    .await
    .expect("the retry is not left waiting for the failed claim");
    assert_eq!(retry.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
