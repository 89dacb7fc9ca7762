//! The HTTP handler in inbox mode and with the durable deduper, over real HTTP on 127.0.0.1 and a
//! real SQLite file: stored before the 200, 503 when the store cannot commit, duplicates counted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ccai::event::WebhookEvent;
use ccai::inbox::{Inserted, SqliteOptions, SqliteStore, Store, StoreError};
use ccai::server::{create_handler, HandlerOptions, Rejection, WebhookHandler};
use ccai::signature::SignedDelivery;
use ccai::webhook::{Claim, Deduper, MemoryDeduper};
use tokio::net::TcpListener;

pub(crate) const CLIENT_ID: &str = "1231";
pub(crate) const SECRET: &str = "inbox-receiver-secret";

async fn serve(handler: WebhookHandler) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route_service("/webhook", handler);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

pub(crate) fn delivery(hash: &str, to: &str) -> SignedDelivery {
    let mut data = serde_json::Map::new();
    data.insert("To".into(), to.into());
    SignedDelivery::builder("message.sent", hash)
        .data(data)
        .sign(CLIENT_ID, SECRET)
}

async fn post(addr: SocketAddr, body: &[u8], signature: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://{addr}/webhook"))
        .header("Content-Type", "application/json; charset=utf-8")
        .header("X-CCAI-Signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .expect("request")
}

type Seen = Arc<Mutex<Vec<(String, Inserted)>>>;

fn inbox_handler(store: Arc<SqliteStore>) -> (WebhookHandler, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let handler = create_handler(
        HandlerOptions::inbox(CLIENT_ID, store)
            .secret(SECRET)
            .on_stored(move |event: &WebhookEvent, inserted| {
                record
                    .lock()
                    .expect("lock")
                    .push((event.event_hash.clone(), inserted));
            }),
    )
    .expect("handler");
    (handler, seen)
}

#[tokio::test]
async fn a_delivery_is_stored_exactly_before_the_200() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::new()).expect("open"),
    );
    let (handler, seen) = inbox_handler(store.clone());
    let addr = serve(handler).await;

    let sent = delivery("stored-1", "+14155550100");
    let answer = post(addr, sent.body(), sent.signature()).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), r#"{"success":true}"#);

    // Already committed when the 200 arrived: the exact bytes, signature and content type.
    let stored = store.get("stored-1").await.expect("get").expect("stored");
    assert_eq!(stored.body.as_deref(), Some(sent.body()));
    assert_eq!(stored.signature.as_deref(), Some(sent.signature()));
    assert_eq!(
        stored.content_type.as_deref(),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(stored.summary.client_id, CLIENT_ID);
    assert_eq!(stored.summary.event_type, "message.sent");
    assert_eq!(stored.summary.duplicates, 0);
    assert_eq!(
        *seen.lock().expect("lock"),
        vec![("stored-1".to_owned(), Inserted::New)]
    );
}

#[tokio::test]
async fn repeats_are_acknowledged_and_counted_and_conflicts_keep_the_first_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::new()).expect("open"),
    );
    let (handler, seen) = inbox_handler(store.clone());
    let addr = serve(handler).await;

    let first = delivery("repeat-1", "+14155550100");
    for _ in 0..3 {
        assert_eq!(
            post(addr, first.body(), first.signature()).await.status(),
            200
        );
    }
    // Same hash, other data: the signature still verifies (it covers the hash only).
    let other = delivery("repeat-1", "+14155559999");
    assert_eq!(
        post(addr, other.body(), other.signature()).await.status(),
        200
    );

    let stored = store.get("repeat-1").await.expect("get").expect("stored");
    assert_eq!(
        stored.body.as_deref(),
        Some(first.body()),
        "the first body is kept"
    );
    assert_eq!(stored.summary.duplicates, 2);
    assert_eq!(stored.summary.conflicts, 1);
    assert!(stored.last_conflict_sha256.is_some());
    let outcomes: Vec<Inserted> = seen.lock().expect("lock").iter().map(|(_, i)| *i).collect();
    assert_eq!(
        outcomes,
        vec![
            Inserted::New,
            Inserted::Duplicate,
            Inserted::Duplicate,
            Inserted::Conflict
        ]
    );
}

#[tokio::test]
async fn a_rejected_delivery_is_not_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::new()).expect("open"),
    );
    let (handler, seen) = inbox_handler(store.clone());
    let addr = serve(handler).await;

    let forged = SignedDelivery::builder("message.sent", "forged-1").sign(CLIENT_ID, "wrong");
    assert_eq!(
        post(addr, forged.body(), forged.signature()).await.status(),
        401
    );
    assert!(store.get("forged-1").await.expect("get").is_none());
    assert!(seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn a_store_that_cannot_commit_answers_503_and_the_retry_is_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.db");
    let store = Arc::new(
        SqliteStore::open(
            &path,
            SqliteOptions::new().busy_timeout(Duration::from_millis(100)),
        )
        .expect("open"),
    );
    let (handler, seen) = inbox_handler(store.clone());
    let addr = serve(handler).await;

    // Another process holds the write lock (a real SQLite lock on the same file).
    let blocker = rusqlite::Connection::open(&path).expect("second connection");
    blocker
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("take the write lock");

    let sent = delivery("blocked-1", "+14155550100");
    let answer = post(addr, sent.body(), sent.signature()).await;
    assert_eq!(answer.status(), 503);
    assert_eq!(
        answer
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let text = answer.text().await.expect("body");
    assert!(text.contains("retry later"), "{text}");
    assert!(seen.lock().expect("lock").is_empty());

    blocker.execute_batch("ROLLBACK").expect("release the lock");
    let retry = post(addr, sent.body(), sent.signature()).await;
    assert_eq!(retry.status(), 200);
    let stored = store.get("blocked-1").await.expect("get").expect("stored");
    assert_eq!(stored.body.as_deref(), Some(sent.body()));
}

/// `Rejection::Unavailable`'s documentation promises the store's own error as its cause, for an
/// `on_reject` hook to tell an overload from an outage.
#[tokio::test]
async fn the_on_reject_hook_gets_the_store_error_behind_a_503() {
    let logs = crate::logs::captured();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::new()).expect("open"),
    );
    let causes: Arc<Mutex<Vec<Option<StoreError>>>> = Arc::default();
    let record = causes.clone();
    let handler = create_handler(
        HandlerOptions::inbox(CLIENT_ID, store.clone())
            .secret(SECRET)
            .on_reject(move |rejection| {
                if let Rejection::Unavailable(cause) = rejection {
                    record
                        .lock()
                        .expect("lock")
                        .push(cause.downcast_ref::<StoreError>().cloned());
                }
            }),
    )
    .expect("handler");
    let addr = serve(handler).await;
    store.close().await;

    let sent = delivery("closed-1", "+14155550100");
    let answer = post(addr, sent.body(), sent.signature()).await;
    assert_eq!(answer.status(), 503);
    let causes = causes.lock().expect("lock").clone();
    assert!(
        matches!(causes.as_slice(), [Some(StoreError::Unavailable(why))] if why.contains("closed")),
        "{causes:?}"
    );
    // The handler's warning names the store's error, once: the rejection's message says what
    // failed, its source why.
    let path = dir.path().display().to_string();
    let text = String::from_utf8_lossy(&logs.lock().expect("lock")).into_owned();
    let line = text
        .lines()
        .find(|line| line.contains("webhook delivery failed") && line.contains(&path))
        .unwrap_or_else(|| panic!("no warning for {path} in:\n{text}"));
    assert!(
        line.contains("the delivery could not be stored: ") && line.contains("closed"),
        "{line}"
    );
    assert_eq!(line.matches(&path).count(), 1, "{line}");
}

#[tokio::test]
async fn the_durable_deduper_keeps_a_processed_event_processed_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.db");
    let calls = Arc::new(AtomicUsize::new(0));
    let sent = delivery("dedup-1", "+14155550100");

    for _restart in 0..2 {
        let store = SqliteStore::open(&path, SqliteOptions::new()).expect("open");
        let counter = calls.clone();
        let handler = create_handler(
            HandlerOptions::new(CLIENT_ID, move |_: WebhookEvent| {
                counter.fetch_add(1, Ordering::SeqCst);
                async { Ok::<(), std::io::Error>(()) }
            })
            .secret(SECRET)
            .deduper(store.deduper()),
        )
        .expect("handler");
        let addr = serve(handler).await;
        for _ in 0..3 {
            assert_eq!(
                post(addr, sent.body(), sent.signature()).await.status(),
                200
            );
        }
    }
    // Six deliveries over two handlers on the same file: processed once.
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// The in-process consumer end to end: the handler stores a delivery and answers 200, wakes the
/// dispatcher, which hands the event to an async callback once (a repeat of the delivery is
/// acknowledged but not handed on again), then records it delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_consumer_gets_each_delivery_once_through_the_handler() {
    use ccai::inbox::{
        CallbackConsumer, DeliveryStatus, Dispatcher, InboxEvent, DEFAULT_DESTINATION,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::new()).expect("open"),
    );
    let handed: Arc<Mutex<Vec<InboxEvent>>> = Arc::default();
    let consumer = {
        let handed = Arc::clone(&handed);
        CallbackConsumer::new(move |event: InboxEvent| {
            handed.lock().expect("lock").push(event);
            async { Ok::<(), std::io::Error>(()) }
        })
    };
    // An hour between polls: only the handler's wake-up can make this quick.
    let dispatcher = Dispatcher::builder(store.clone(), consumer)
        .poll_interval(Duration::from_secs(3600))
        .start();
    let waker = dispatcher.waker();
    let handler = create_handler(
        HandlerOptions::inbox(CLIENT_ID, store.clone())
            .secret(SECRET)
            .on_stored(move |_event: &WebhookEvent, _inserted| waker.notify_one()),
    )
    .expect("handler");
    let addr = serve(handler).await;

    let sent = delivery("cb-http-1", "+14155550100");
    for _ in 0..2 {
        let answer = post(addr, sent.body(), sent.signature()).await;
        assert_eq!(answer.status(), 200);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let detail = store.get("cb-http-1").await.expect("get").expect("stored");
        let delivery = &detail.summary.deliveries[0];
        assert_eq!(delivery.destination, DEFAULT_DESTINATION);
        if delivery.status == DeliveryStatus::Delivered {
            assert_eq!(detail.summary.duplicates, 1);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered: {delivery:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing more arrives: the repeat was not handed on.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let handed = handed.lock().expect("lock").clone();
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].event_hash, "cb-http-1");
    assert_eq!(handed[0].attempt, 1);
    assert_eq!(handed[0].body, sent.body());
    assert_eq!(handed[0].signature.as_deref(), Some(sent.signature()));
    dispatcher.shutdown(Duration::from_secs(5)).await;
}

/// An account id no store can hold (longer than 1024 bytes, or with a NUL) is refused when the
/// handler is built: accepted, every verified delivery was answered 503 "retry later", for ever.
#[tokio::test]
async fn an_account_id_no_store_can_hold_is_refused_at_build() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::new()).expect("open"),
    );
    let long = "1".repeat(ccai::event::MAX_FIELD_LEN + 1);
    for client_id in [long.as_str(), "12\u{0}31"] {
        let built = create_handler(HandlerOptions::inbox(client_id, store.clone()).secret(SECRET));
        assert!(built.is_err(), "built for {} bytes", client_id.len());
    }
    // The longest id a store holds still works end to end.
    let longest = "1".repeat(ccai::event::MAX_FIELD_LEN);
    let handler =
        create_handler(HandlerOptions::inbox(longest.as_str(), store.clone()).secret(SECRET))
            .expect("handler");
    let addr = serve(handler).await;
    let mut data = serde_json::Map::new();
    data.insert("To".into(), "+14155550100".into());
    let sent = SignedDelivery::builder("message.sent", "long-account")
        .data(data)
        .sign(&longest, SECRET);
    assert_eq!(
        post(addr, sent.body(), sent.signature()).await.status(),
        200
    );
    assert!(store.get("long-account").await.expect("get").is_some());
}

/// In inbox mode the store deduplicates; a deduper given, or deduplication turned off, changes
/// nothing, and `Debug` says so.
#[tokio::test]
async fn in_inbox_mode_the_store_deduplicates_whatever_the_deduper_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::new()).expect("open"),
    );
    let deduper = Arc::new(MemoryDeduper::new());
    let settings = [
        HandlerOptions::inbox(CLIENT_ID, store.clone()).shared_deduper(deduper.clone()),
        HandlerOptions::inbox(CLIENT_ID, store.clone()).deduper(MemoryDeduper::new()),
        HandlerOptions::inbox(CLIENT_ID, store.clone()).without_deduplication(),
        HandlerOptions::inbox(CLIENT_ID, store.clone()),
    ];
    for (n, options) in settings.into_iter().enumerate() {
        let options = options.secret(SECRET);
        assert!(
            format!("{options:?}").contains(r#"deduplication: "store""#),
            "{options:?}"
        );
        let handler = create_handler(options).expect("handler");
        assert!(
            format!("{handler:?}").contains(r#"deduplication: "store""#),
            "{handler:?}"
        );
        let addr = serve(handler).await;
        let hash = format!("inbox-dedup-{n}");
        let sent = delivery(&hash, "+14155550100");
        for _ in 0..2 {
            assert_eq!(
                post(addr, sent.body(), sent.signature()).await.status(),
                200
            );
        }
        let stored = store.get(&hash).await.expect("get").expect("stored");
        assert_eq!(stored.summary.duplicates, 1, "setting {n}");
    }
    // The deduper given was never consulted: the event is still unclaimed there.
    for n in 0..4 {
        assert_eq!(
            deduper.claim(&format!("inbox-dedup-{n}")).await.ok(),
            Some(Claim::Acquired)
        );
    }
}
