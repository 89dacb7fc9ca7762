//! `HandlerOptions::wake_on`: the handler in inbox mode wakes a dispatcher after each new event,
//! over real HTTP on 127.0.0.1 and a real SQLite file.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ccai::event::WebhookEvent;
use ccai::inbox::{
    CallbackConsumer, DeliveryStatus, Dispatcher, InboxEvent, Inserted, NewDelivery, SqliteOptions,
    SqliteStore, Store,
};
use ccai::server::{create_handler, HandlerOptions, WebhookHandler};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};

use crate::receiver::{delivery, CLIENT_ID, SECRET};
use crate::support::wait_for;

/// Long enough for anything that works; a dispatcher left to its poll would take an hour.
const PATIENCE: Duration = Duration::from_secs(15);

async fn serve(handler: WebhookHandler) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route_service("/webhook", handler);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn post_status(addr: SocketAddr, body: &[u8], signature: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{addr}/webhook"))
        .header("X-CCAI-Signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

type Stored = Arc<Mutex<Vec<(String, Inserted)>>>;

/// Inbox mode with `wake_on(wake)` and an `on_stored` hook recording what it is told.
fn waking_handler(store: Arc<dyn Store>, wake: Arc<Notify>) -> (WebhookHandler, Stored) {
    let stored: Stored = Arc::default();
    let record = stored.clone();
    let handler = create_handler(
        HandlerOptions::inbox(CLIENT_ID, store)
            .secret(SECRET)
            .on_stored(move |event: &WebhookEvent, inserted| {
                record
                    .lock()
                    .expect("lock")
                    .push((event.event_hash.clone(), inserted));
            })
            .wake_on(wake),
    )
    .expect("handler");
    (handler, stored)
}

/// Whether `wake` holds a notification now (taking it): polled once, never waited on.
async fn notified_now(wake: &Notify) -> bool {
    tokio::select! {
        biased;
        () = wake.notified() => true,
        () = std::future::ready(()) => false,
    }
}

/// A dispatcher that polls once an hour hands a newly stored event on at once: only the
/// handler's wake can have told it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_event_wakes_a_dispatcher_that_polls_hourly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::new()).expect("open"),
    );
    // Stored before the start: its being handed on shows that the dispatcher made its first
    // claim. That claim got one delivery for two free workers, so the dispatcher then waits for
    // a wake or its hour before it claims again (whether the attempt has ended or not).
    store
        .insert(NewDelivery::new(
            CLIENT_ID,
            "before",
            "message.sent",
            &b"{}"[..],
        ))
        .await
        .expect("insert");
    let (seen, mut handed_on) = mpsc::unbounded_channel();
    let consumer = CallbackConsumer::new(move |event: InboxEvent| {
        let seen = seen.clone();
        async move { seen.send(event.event_hash) }
    });
    let dispatcher = Dispatcher::builder(Arc::clone(&store), consumer)
        .poll_interval(Duration::from_secs(3600))
        .concurrency(2)
        .start();
    let (handler, stored) = waking_handler(Arc::clone(&store), dispatcher.waker());
    let addr = serve(handler).await;

    let first = tokio::time::timeout(PATIENCE, handed_on.recv()).await;
    assert_eq!(first.expect("the first claim").as_deref(), Some("before"));

    let sent = delivery("after", "+14155550100");
    assert_eq!(post_status(addr, sent.body(), sent.signature()).await, 200);
    let next = tokio::time::timeout(PATIENCE, handed_on.recv())
        .await
        .expect("the stored event was not handed on: the handler did not wake the dispatcher");
    assert_eq!(next.as_deref(), Some("after"));
    for hash in ["before", "after"] {
        wait_for(&format!("{hash} to be delivered"), PATIENCE, || async {
            let detail = store.get(hash).await.expect("get").expect("stored");
            (detail.summary.deliveries[0].status == DeliveryStatus::Delivered).then_some(())
        })
        .await;
    }
    // The user's own hook ran too.
    assert_eq!(
        *stored.lock().expect("lock"),
        vec![("after".to_owned(), Inserted::New)]
    );
    dispatcher.shutdown(Duration::from_secs(5)).await;
}

/// Only a new event notifies: a repeat or a conflicting repeat adds nothing to hand on, while
/// `on_stored` is still told of each.
#[tokio::test]
async fn only_a_new_event_notifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::new()).expect("open"),
    );
    let wake = Arc::new(Notify::new());
    let (handler, stored) = waking_handler(store, Arc::clone(&wake));
    let addr = serve(handler).await;

    let first = delivery("wake-once", "+14155550100");
    let conflicting = delivery("wake-once", "+14155559999");
    assert!(!notified_now(&wake).await, "nothing stored yet");
    assert_eq!(
        post_status(addr, first.body(), first.signature()).await,
        200
    );
    assert!(notified_now(&wake).await, "a new event notifies");
    assert_eq!(
        post_status(addr, first.body(), first.signature()).await,
        200
    );
    assert_eq!(
        post_status(addr, conflicting.body(), conflicting.signature()).await,
        200
    );
    assert!(!notified_now(&wake).await, "a repeat does not notify");
    let outcomes: Vec<Inserted> = stored
        .lock()
        .expect("lock")
        .iter()
        .map(|(_, i)| *i)
        .collect();
    assert_eq!(
        outcomes,
        [Inserted::New, Inserted::Duplicate, Inserted::Conflict]
    );
}

/// A receiver with two destinations runs a dispatcher for each, and gives the handler each one's
/// waker: a newly stored event is handed on at once to both, though both poll once an hour. A
/// second `wake_on` replaced the first, whose dispatcher then waited for its poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_on_for_each_of_two_dispatchers_wakes_both() {
    const DESTINATIONS: [&str; 2] = ["crm", "analytics"];
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions::new().destinations(DESTINATIONS);
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("inbox.db"), options).expect("open"));
    // As above: each dispatcher's first claim hands this one on, and finds nothing more, so it
    // then waits for a wake or its hour.
    store
        .insert(NewDelivery::new(
            CLIENT_ID,
            "before",
            "message.sent",
            &b"{}"[..],
        ))
        .await
        .expect("insert");
    let mut dispatchers = Vec::new();
    let mut handed_on = Vec::new();
    for destination in DESTINATIONS {
        let (seen, receiving) = mpsc::unbounded_channel();
        let consumer = CallbackConsumer::new(move |event: InboxEvent| {
            let seen = seen.clone();
            async move { seen.send(event.event_hash) }
        });
        dispatchers.push(
            Dispatcher::builder(Arc::clone(&store), consumer)
                .destination(destination)
                .poll_interval(Duration::from_secs(3600))
                .concurrency(2)
                .start(),
        );
        handed_on.push(receiving);
    }
    for (destination, receiving) in DESTINATIONS.iter().zip(&mut handed_on) {
        let first = tokio::time::timeout(PATIENCE, receiving.recv()).await;
        let first = first.unwrap_or_else(|_| panic!("{destination}: the first claim"));
        assert_eq!(first.as_deref(), Some("before"), "{destination}");
    }
    let handler = create_handler(
        HandlerOptions::inbox(CLIENT_ID, Arc::clone(&store))
            .secret(SECRET)
            .wake_on(dispatchers[0].waker())
            .wake_on(dispatchers[1].waker()),
    )
    .expect("handler");
    let addr = serve(handler).await;

    let sent = delivery("after", "+14155550100");
    assert_eq!(post_status(addr, sent.body(), sent.signature()).await, 200);
    for (destination, receiving) in DESTINATIONS.iter().zip(&mut handed_on) {
        let next = tokio::time::timeout(PATIENCE, receiving.recv())
            .await
            .unwrap_or_else(|_| panic!("{destination}: the new event was not handed on"));
        assert_eq!(next.as_deref(), Some("after"), "{destination}");
    }
    for dispatcher in dispatchers {
        dispatcher.shutdown(Duration::from_secs(5)).await;
    }
}
