//! The `on_reject` hook and the handler's logs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ccai::webhook::{create_handler, HandlerOptions, Rejection, WebhookEvent};

use crate::support::{delivery, error_message, post, recording_options, serve, CLIENT_ID, SECRET};

#[tokio::test]
async fn on_reject_observes_every_rejection_with_its_reason() {
    let rejections: Arc<Mutex<Vec<(u16, String)>>> = Arc::default();
    let sink = rejections.clone();
    let options = HandlerOptions::new(CLIENT_ID, |event: WebhookEvent| async move {
        if event.event_hash == "fail" {
            Err("downstream refused".to_owned())
        } else {
            Ok(())
        }
    })
    .secret(SECRET)
    .on_reject(move |rejection: &Rejection| {
        sink.lock()
            .expect("lock")
            .push((rejection.status().as_u16(), rejection.to_string()));
    });
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = delivery("ok");
    let (fail, fail_signature) = delivery("fail");
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert_eq!(post(addr, &body, None).await.status, 400);
    assert_eq!(post(addr, &body, Some(&fail_signature)).await.status, 401);
    assert_eq!(post(addr, &fail, Some(&fail_signature)).await.status, 500);
    let rejections = rejections.lock().expect("lock");
    assert_eq!(rejections.len(), 3);
    assert_eq!(rejections[0].0, 400);
    assert!(rejections[0].1.contains("missing X-CCAI-Signature"));
    assert_eq!(rejections[1].0, 401);
    assert_eq!(rejections[2].0, 500);
    // The CLI can show the callback's own error.
    assert!(
        rejections[2].1.contains("downstream refused"),
        "{:?}",
        rejections[2]
    );
}

/// A panicking `on_reject` hook is contained: the rejection is still answered.
#[tokio::test]
async fn panicking_on_reject_hook_still_answers() {
    let hooked = Arc::new(AtomicUsize::new(0));
    let h = hooked.clone();
    let (options, seen) = recording_options();
    let options = options.on_reject(move |_: &Rejection| {
        h.fetch_add(1, Ordering::SeqCst);
        panic!("hook bug");
    });
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = delivery("hook-panics");
    let answer = post(addr, &body, None).await;
    assert_eq!(answer.status, 400);
    assert!(error_message(&answer).contains("missing X-CCAI-Signature"));
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert_eq!(hooked.load(Ordering::SeqCst), 1);
    assert_eq!(seen.lock().expect("lock").len(), 1);
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// What was logged so far.
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf8")
    }
}

/// Captures what is logged on this thread, at `level` and above, while the returned guards live.
///
/// tracing caches, for each call site and for all threads, whether anyone listens. While a single
/// dispatcher is registered, it asks the default of whichever thread reaches a call site first:
/// another test's thread, with no subscriber, caches "never", and this test misses the line (it
/// failed about one run in two with only this file's tests running). A second registered
/// dispatcher, which ignores everything, makes tracing ask every registered one instead.
fn capture_logs(
    level: tracing::Level,
) -> (
    Captured,
    (tracing::subscriber::DefaultGuard, tracing::Dispatch),
) {
    let second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, (guard, second))
}

/// On a current-thread runtime the server runs on this thread, so a thread-local subscriber sees
/// everything the handler logs.
#[tokio::test]
async fn logs_name_events_and_reasons_but_not_secrets_or_payloads() {
    let (captured, _guards) = capture_logs(tracing::Level::DEBUG);

    let options = HandlerOptions::new(CLIENT_ID, |event: WebhookEvent| async move {
        if event.event_hash == "fail" {
            Err("callback failure")
        } else {
            Ok(())
        }
    })
    .secret(SECRET)
    .log_events(true);
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = delivery("logged-hash");
    let (fail, fail_signature) = delivery("fail");
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert_eq!(post(addr, &body, Some(&fail_signature)).await.status, 401);
    assert_eq!(post(addr, &fail, Some(&fail_signature)).await.status, 500);
    assert_eq!(
        post(addr, "{payload-marker-text", Some(&signature))
            .await
            .status,
        400
    );

    let logs = captured.text();
    assert!(logs.contains("logged-hash"), "{logs}");
    assert!(logs.contains("does not verify"), "{logs}");
    assert!(logs.contains("callback failure"), "{logs}");
    for needle in [SECRET, &signature, &fail_signature, "payload-marker-text"] {
        assert!(!logs.contains(needle), "logs leak {needle:?}: {logs}");
    }
}

#[tokio::test]
async fn disabling_verification_warns_at_creation() {
    let (captured, _guards) = capture_logs(tracing::Level::INFO);
    let options = HandlerOptions::new(CLIENT_ID, |_: WebhookEvent| async {
        Ok::<_, std::io::Error>(())
    })
    .dangerously_disable_verification();
    let _handler = create_handler(options).expect("handler");
    let logs = captured.text();
    assert!(logs.contains("WARN"), "{logs}");
    assert!(logs.contains("verification is DISABLED"), "{logs}");
}

/// `on_duplicate` sees each repeat the deduplicator answers without calling back, and only
/// those; a panicking hook still leaves the sender its 200.
#[tokio::test]
async fn on_duplicate_observes_each_repeat_and_nothing_else() {
    let repeats: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = repeats.clone();
    let (options, seen) = recording_options();
    let options = options.on_duplicate(move |event: &WebhookEvent| {
        sink.lock().expect("lock").push(event.event_hash.clone());
        if event.event_hash == "boom" {
            panic!("hook bug");
        }
    });
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = delivery("once");
    let (other, other_signature) = delivery("boom");
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert!(repeats.lock().expect("lock").is_empty());
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert_eq!(post(addr, &other, Some(&other_signature)).await.status, 200);
    assert_eq!(post(addr, &other, Some(&other_signature)).await.status, 200);
    // A rejected delivery is no duplicate.
    assert_eq!(post(addr, &body, None).await.status, 400);
    assert_eq!(*repeats.lock().expect("lock"), ["once", "once", "boom"]);
    assert_eq!(
        seen.lock().expect("lock").len(),
        2,
        "each event called back once"
    );
}

/// A deduper whose store is down: every claim fails.
struct DownDeduper;

impl ccai::webhook::Deduper for DownDeduper {
    fn claim<'a>(&'a self, _: &'a str) -> ccai::webhook::DedupFuture<'a, ccai::webhook::Claim> {
        Box::pin(std::future::ready(Err(ccai::webhook::DedupError::Backend(
            "redis-down-marker".into(),
        ))))
    }

    fn complete<'a>(&'a self, _: &'a str) -> ccai::webhook::DedupFuture<'a, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn release<'a>(&'a self, _: &'a str) -> ccai::webhook::DedupFuture<'a, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The warning for a failed deduplication store names the store's own error, once: the
/// rejection's message says what failed and its source why, and the log line shows both.
#[tokio::test]
async fn the_log_line_of_a_failed_store_names_its_cause_once() {
    let (captured, _guards) = capture_logs(tracing::Level::WARN);
    let (options, seen) = recording_options();
    let addr = serve(create_handler(options.deduper(DownDeduper)).expect("handler")).await;
    let (body, signature) = delivery("dedup-down");
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 500);
    assert!(seen.lock().expect("lock").is_empty());

    let logs = captured.text();
    let line = logs
        .lines()
        .find(|line| line.contains("webhook delivery failed"))
        .unwrap_or_else(|| panic!("no warning in:\n{logs}"));
    assert!(
        line.contains("deduplication store failed: redis-down-marker"),
        "{line}"
    );
    assert_eq!(line.matches("redis-down-marker").count(), 1, "{line}");
}
