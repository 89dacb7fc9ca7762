//! The inbox's `#[non_exhaustive]` types built outside the crate, through their constructors: a
//! consumer unit-tested with `InboxEvent::new`, and a `Store` of one's own that returns only
//! values it built itself (this file stops compiling if one of them cannot be built), run by a
//! real dispatcher and read back through the admin API.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ccai::event::DeliveryMethod;
use ccai::inbox::{
    Accepted, AttemptInfo, AttemptOutcome, AttemptRecord, ClaimedDelivery, Consumer,
    ConsumerFuture, Cursor, DeliveryState, DeliveryStatus, Dispatcher, EventDetail, EventSummary,
    Failure, Finish, InboxEvent, Inserted, Lease, LeaseRequest, ListFilter, ListRequest,
    NewDelivery, Page, PurgeReport, ReplayReport, ReplayTarget, Retention, SqliteOptions, Stats,
    Store, StoreFuture, DEFAULT_DESTINATION,
};

use crate::support::{temp_store, wait_for, TempStore};

const SIGNATURE: &str = "c2lnLXZhbHVlLWZvci10ZXN0cy1vbmx5LWJhc2U2NA==";

/// A consumer of one's own: takes JSON bodies, refuses anything else for good, and keeps what it
/// took.
#[derive(Debug, Clone, Default)]
struct JsonOnly {
    taken: Arc<Mutex<Vec<InboxEvent>>>,
}

impl Consumer for JsonOnly {
    fn deliver<'a>(&'a self, event: &'a InboxEvent) -> ConsumerFuture<'a> {
        Box::pin(async move {
            if serde_json::from_slice::<serde_json::Value>(&event.body).is_err() {
                return Err(Failure::new("the body is not JSON").permanent());
            }
            self.taken.lock().expect("lock").push(event.clone());
            Ok(Accepted::new())
        })
    }
}

#[tokio::test]
async fn a_consumer_is_unit_tested_with_events_built_outside_the_crate() {
    let consumer = JsonOnly::default();
    let json = InboxEvent::new(
        "1231",
        "evt_1",
        "message.sent",
        &br#"{"eventHash":"evt_1"}"#[..],
    )
    .signature(SIGNATURE)
    .method(DeliveryMethod::Put)
    .attempt(2);
    assert_eq!(consumer.deliver(&json).await, Ok(Accepted::new()));
    let not_json = InboxEvent::new("1231", "evt_2", "message.sent", &b"<xml/>"[..]);
    let failure = consumer.deliver(&not_json).await.expect_err("refused");
    assert!(failure.permanent, "{failure:?}");

    let taken = consumer.taken.lock().expect("lock");
    assert_eq!(taken.len(), 1);
    let event = &taken[0];
    assert_eq!((event.event_hash.as_str(), event.attempt), ("evt_1", 2));
    assert_eq!(event.signature.as_deref(), Some(SIGNATURE));
    assert_eq!(event.method, DeliveryMethod::Put);
    assert_eq!(event.destination, DEFAULT_DESTINATION);
}

/// Sets `value` with `set` when there is one: how an optional field goes through a builder setter.
fn maybe<T, V>(built: T, value: Option<V>, set: impl FnOnce(T, V) -> T) -> T {
    match value {
        Some(value) => set(built, value),
        None => built,
    }
}

/// A `Store` written outside the crate: a real SQLite store underneath, every value it returns
/// rebuilt field by field through the public constructors (enums and plain numbers pass as they
/// are: nothing stops building those).
#[derive(Debug)]
struct Rebuilt {
    inner: TempStore,
}

impl Rebuilt {
    fn claimed(c: ClaimedDelivery) -> ClaimedDelivery {
        let lease = Lease::new(
            c.lease.delivery_id,
            c.lease.owner.as_str(),
            c.lease.token.as_str(),
            c.lease.until,
        );
        let event = InboxEvent::new(c.client_id, c.event_hash, c.event_type, c.body)
            .method(c.method)
            .received_at(c.received_at)
            .attempt(c.attempt)
            .destination(c.destination);
        let event = maybe(event, c.signature, InboxEvent::signature);
        let event = maybe(event, c.content_type, InboxEvent::content_type);
        ClaimedDelivery::new(lease, event)
    }

    fn summary(s: EventSummary) -> EventSummary {
        let deliveries = s.deliveries.into_iter().map(|d| {
            let state = DeliveryState::new(d.destination, d.status, d.attempts)
                .total_attempts(d.total_attempts);
            let state = maybe(state, d.next_attempt_at, DeliveryState::next_attempt_at);
            let state = maybe(state, d.last_error, DeliveryState::last_error);
            maybe(state, d.delivered_at, DeliveryState::delivered_at)
        });
        let summary = EventSummary::new(s.client_id, s.event_hash, s.event_type, s.received_at)
            .duplicates(s.duplicates)
            .conflicts(s.conflicts)
            .deliveries(deliveries.collect());
        maybe(summary, s.body_len, EventSummary::body_len)
    }

    fn detail(d: EventDetail) -> EventDetail {
        let attempts = d.attempts.into_iter().map(|a| {
            let info = AttemptInfo::new(a.destination, a.started_at, a.duration, a.outcome);
            let info = maybe(info, a.http_status, AttemptInfo::http_status);
            maybe(info, a.error, AttemptInfo::error)
        });
        let detail = EventDetail::new(Self::summary(d.summary), d.body_sha256)
            .method(d.method)
            .attempts(attempts.collect());
        let detail = maybe(detail, d.body, EventDetail::body);
        let detail = maybe(detail, d.signature, EventDetail::signature);
        let detail = maybe(detail, d.content_type, EventDetail::content_type);
        maybe(
            detail,
            d.last_conflict_sha256,
            EventDetail::last_conflict_sha256,
        )
    }
}

impl Store for Rebuilt {
    fn insert<'a>(&'a self, delivery: NewDelivery) -> StoreFuture<'a, Inserted> {
        self.inner.store.insert(delivery)
    }

    fn claim<'a>(
        &'a self,
        destination: &'a str,
        lease: LeaseRequest,
        limit: usize,
        now: SystemTime,
    ) -> StoreFuture<'a, Vec<ClaimedDelivery>> {
        Box::pin(async move {
            let claimed = self
                .inner
                .store
                .claim(destination, lease, limit, now)
                .await?;
            Ok(claimed.into_iter().map(Self::claimed).collect())
        })
    }

    fn finish<'a>(
        &'a self,
        lease: &'a Lease,
        finish: Finish,
        attempt: AttemptRecord,
    ) -> StoreFuture<'a, bool> {
        self.inner.store.finish(lease, finish, attempt)
    }

    fn extend_lease<'a>(&'a self, lease: &'a Lease, until: SystemTime) -> StoreFuture<'a, bool> {
        self.inner.store.extend_lease(lease, until)
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, bool> {
        self.inner.store.release(lease)
    }

    fn list<'a>(&'a self, request: ListRequest) -> StoreFuture<'a, Page> {
        Box::pin(async move {
            let page = self.inner.store.list(request).await?;
            let next = page.next.map(|cursor| Cursor::from_id(cursor.id()));
            let events = page.events.into_iter().map(Self::summary).collect();
            Ok(Page::new(events, next))
        })
    }

    fn get<'a>(&'a self, event_hash: &'a str) -> StoreFuture<'a, Option<EventDetail>> {
        Box::pin(async move { Ok(self.inner.store.get(event_hash).await?.map(Self::detail)) })
    }

    fn get_for<'a>(
        &'a self,
        client_id: &'a str,
        event_hash: &'a str,
    ) -> StoreFuture<'a, Option<EventDetail>> {
        Box::pin(async move {
            let found = self.inner.store.get_for(client_id, event_hash).await?;
            Ok(found.map(Self::detail))
        })
    }

    fn replay<'a>(&'a self, target: ReplayTarget) -> StoreFuture<'a, ReplayReport> {
        Box::pin(async move {
            let report = self.inner.store.replay(target).await?;
            Ok(ReplayReport::new(report.due, report.purged))
        })
    }

    fn requeue_dead<'a>(&'a self, filter: ListFilter) -> StoreFuture<'a, ReplayReport> {
        Box::pin(async move {
            let report = self.inner.store.requeue_dead(filter).await?;
            Ok(ReplayReport::new(report.due, report.purged))
        })
    }

    fn purge<'a>(&'a self, retention: Retention, now: SystemTime) -> StoreFuture<'a, PurgeReport> {
        Box::pin(async move {
            let report = self.inner.store.purge(retention, now).await?;
            Ok(PurgeReport::new(
                report.bodies_purged,
                report.events_deleted,
            ))
        })
    }

    fn stats<'a>(&'a self, now: SystemTime) -> StoreFuture<'a, Stats> {
        Box::pin(async move {
            let inner = self.inner.store.stats(now).await?;
            let mut stats = Stats::default();
            stats.events = inner.events;
            stats.deliveries = inner.deliveries;
            stats.duplicates = inner.duplicates;
            stats.conflicts = inner.conflicts;
            stats.oldest_pending_age = inner.oldest_pending_age;
            Ok(stats)
        })
    }

    fn close<'a>(&'a self) -> ccai::inbox::CloseFuture<'a> {
        Store::close(&self.inner.store)
    }
}

#[tokio::test]
async fn a_store_written_outside_the_crate_runs_a_dispatcher_and_the_admin_api() {
    let store: Arc<dyn Store> = Arc::new(Rebuilt {
        inner: temp_store(SqliteOptions::default()),
    });
    let json = &br#"{"eventHash":"evt_json"}"#[..];
    let sent = NewDelivery::new("1231", "evt_json", "message.sent", json)
        .signature(SIGNATURE)
        .content_type("application/json");
    assert_eq!(store.insert(sent.clone()).await, Ok(Inserted::New));
    assert_eq!(store.insert(sent).await, Ok(Inserted::Duplicate));
    let xml = NewDelivery::new("1231", "evt_xml", "message.sent", &b"<xml/>"[..]);
    assert_eq!(store.insert(xml).await, Ok(Inserted::New));

    let consumer = JsonOnly::default();
    let dispatcher = Dispatcher::builder(Arc::clone(&store), consumer.clone())
        .poll_interval(Duration::from_millis(20))
        .start();
    dispatcher.wake();
    let settled = |hash: &'static str, status: DeliveryStatus| {
        let store = Arc::clone(&store);
        wait_for(hash, Duration::from_secs(15), move || {
            let store = Arc::clone(&store);
            async move {
                let detail = store.get(hash).await.expect("get").expect("stored");
                (detail.summary.deliveries[0].status == status).then_some(detail)
            }
        })
    };
    let delivered = settled("evt_json", DeliveryStatus::Delivered).await;
    let dead = settled("evt_xml", DeliveryStatus::Dead).await;
    dispatcher.shutdown(Duration::from_secs(5)).await;

    // The consumer got the event through the rebuilt claim, as it was received.
    let taken = consumer.taken.lock().expect("lock").clone();
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(
        (taken[0].event_hash.as_str(), taken[0].attempt),
        ("evt_json", 1)
    );
    assert_eq!(taken[0].body, json);
    assert_eq!(taken[0].signature.as_deref(), Some(SIGNATURE));
    assert_eq!(taken[0].content_type.as_deref(), Some("application/json"));

    // The details, rebuilt with their optional fields.
    assert_eq!(delivered.body.as_deref(), Some(json));
    assert_eq!(delivered.signature.as_deref(), Some(SIGNATURE));
    assert_eq!(delivered.summary.duplicates, 1);
    assert_eq!(delivered.summary.body_len, Some(json.len()));
    assert!(delivered.summary.deliveries[0].delivered_at.is_some());
    assert_eq!(delivered.attempts.len(), 1);
    assert_eq!(delivered.attempts[0].outcome, AttemptOutcome::Success);
    let error = dead.summary.deliveries[0].last_error.as_deref();
    assert!(error.is_some_and(|e| e.contains("not JSON")), "{error:?}");
    assert_eq!(dead.attempts[0].outcome, AttemptOutcome::Failure);
    let for_account = store.get_for("1231", "evt_xml").await.expect("get_for");
    assert_eq!(for_account.map(|d| d.body_sha256), Some(dead.body_sha256));

    // Two pages of one, the second found through the rebuilt cursor.
    let first = store
        .list(ListRequest::new(ListFilter::new(), 1))
        .await
        .expect("list");
    assert_eq!(first.events[0].event_hash, "evt_xml");
    let second = store
        .list(ListRequest::new(ListFilter::new(), 1).after(first.next))
        .await
        .expect("list");
    assert_eq!(second.events[0].event_hash, "evt_json");
    assert_eq!(second.next, None);

    let stats = store.stats(SystemTime::now()).await.expect("stats");
    assert_eq!((stats.events, stats.duplicates), (2, 1));
    assert_eq!(stats.count(DeliveryStatus::Delivered), 1);
    assert_eq!(stats.count(DeliveryStatus::Dead), 1);

    // Bodies purged, rows kept: the rebuilt detail says so.
    let purged = store
        .purge(
            Retention::new(Duration::ZERO, Duration::MAX),
            SystemTime::now() + Duration::from_secs(1),
        )
        .await
        .expect("purge");
    assert_eq!(purged, PurgeReport::new(2, 0));
    let detail = store.get("evt_json").await.expect("get").expect("kept");
    assert_eq!((detail.body, detail.summary.body_len), (None, None));
    store.close().await;
}
